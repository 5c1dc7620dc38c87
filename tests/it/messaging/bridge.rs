//! The done-means list of the bridge, each over loopback.

use presence_bridge::sim::graph::{FaultKind, FaultRule};
use presence_bridge::sim::openmessaging::signature;
use serde_json::{Value, json};

use super::*;

fn text_of(m: &Value) -> String {
    m["body"]["content"].as_str().unwrap_or_default().to_owned()
}

#[tokio::test]
async fn a_teams_message_reaches_genesys_and_the_agent_reply_lands_in_the_same_chat() {
    let env = Env::new().await;
    let daemon = env.daemon(env.config(|_| {})).await;
    env.subscribed().await;

    env.customer_says("<p>Hello <b>support</b>, the <i>printer</i> is down</p>")
        .await;
    let got = env.genesys_messages(1).await;
    let m = &got[0];
    let from = &m["channel"]["from"];
    let tenant = &env.graph_sim.state.options.tenant_id;
    assert!(
        from["id"]
            .as_str()
            .unwrap()
            .starts_with(&format!("teams:{tenant}:{CUSTOMER}:")),
        "{from}"
    );
    assert_eq!(from["idType"], "Opaque");
    assert_eq!(from["firstName"], "Carol");
    assert_eq!(from["lastName"], "Customer");
    assert_eq!(from["nickname"], CUSTOMER_UPN);
    assert_eq!(m["text"], "Hello **support**, the _printer_ is down");
    assert_eq!(m["type"], "Text");
    assert_eq!(m["direction"], "Inbound");
    let attrs = &m["channel"]["metadata"]["customAttributes"];
    assert_eq!(attrs["teamsChatId"], env.chat.as_str());
    assert_eq!(attrs["teamsUserPrincipalName"], CUSTOMER_UPN);
    let teams_id = env.graph_sim.state.chat_messages(&env.chat)[0]["id"].clone();
    assert_eq!(m["channel"]["messageId"], teams_id);

    // The agent answers: posted into the same chat as the support account, then a receipt.
    let (genesys_id, status) = env.om.agent_says(from, "Hi Carol <3, on it", &[]).await;
    assert_eq!(status, 200);
    let chat = env.chat_messages(2).await;
    assert_eq!(chat[1]["from"]["user"]["id"], SUPPORT);
    assert_eq!(text_of(&chat[1]), "Hi Carol &lt;3, on it");
    let om = env.om.clone();
    eventually("a Delivered receipt", WAIT, || {
        let om = om.clone();
        async move { !om.receipts().is_empty() }
    })
    .await;
    let r = &env.om.receipts()[0];
    assert_eq!(
        (r["id"].as_str(), r["status"].as_str()),
        (Some(genesys_id.as_str()), Some("Delivered"))
    );
    assert_eq!(r["channel"]["to"]["id"], from["id"]);

    // The reply came back through the subscription; it is not looped to Genesys. The next
    // customer message (queued after it, same chat) arrives, and it is the only other one.
    env.customer_says("<p>thanks</p>").await;
    let got = env.genesys_messages(2).await;
    assert_eq!(got.len(), 2, "{got:?}");
    assert_eq!(got[1]["text"], "thanks");
    assert_eq!(
        got[1]["channel"]["from"]["id"], from["id"],
        "same thread within the window"
    );

    // Typing goes nowhere (Graph cannot show it) and is accepted.
    assert_eq!(env.om.agent_types(from).await, 200);
    daemon.shutdown().await;
}

#[tokio::test]
async fn a_reply_is_quoted_by_default() {
    let env = Env::new().await;
    let daemon = env.daemon(env.config(|_| {})).await;
    env.subscribed().await;
    let first = env.customer_says("<p>Is it fixed?</p>").await;
    env.genesys_messages(1).await;
    env.graph_sim
        .state
        .user_says(
            &env.chat,
            CUSTOMER,
            "<p>Any news?</p>",
            vec![],
            vec![],
            Some(&first),
        )
        .await;
    let got = env.genesys_messages(2).await;
    assert_eq!(
        got[1]["text"],
        "> Carol Customer wrote:\n> Is it fixed?\n\nAny news?"
    );
    daemon.shutdown().await;
}

#[tokio::test]
async fn attachments_are_rehosted_behind_signed_expiring_links() {
    let env = Env::new().await;
    let daemon = env
        .daemon(env.config(|m| {
            m.max_attachment_bytes = 4096;
            m.attachment_url_ttl_secs = 600;
        }))
        .await;
    env.subscribed().await;
    let png = b"\x89PNG\r\n\x1a\nimage bytes".to_vec();
    let pdf = b"%PDF-1.7 report".to_vec();
    let big = vec![b'x'; 10_000];
    env.graph_sim
        .state
        .user_says(
            &env.chat,
            CUSTOMER,
            "<p>see attached</p>",
            vec![("image/png".into(), png.clone())],
            vec![
                ("report.pdf".into(), "application/pdf".into(), pdf.clone()),
                ("huge.log".into(), "text/plain".into(), big),
            ],
            None,
        )
        .await;
    let got = env.genesys_messages(1).await;
    let m = &got[0];
    let text = m["text"].as_str().unwrap();
    assert!(text.starts_with("see attached"), "{text}");
    assert!(
        text.contains("\"huge.log\" was not forwarded") && text.contains("4.0 KB limit"),
        "{text}"
    );
    let content = m["content"].as_array().unwrap();
    assert_eq!(content.len(), 2, "{content:?}");
    let http = reqwest::Client::new();
    let mut urls = Vec::new();
    for (c, (mime, bytes)) in content
        .iter()
        .zip([("image/png", &png), ("application/pdf", &pdf)])
    {
        assert_eq!(c["contentType"], "Attachment");
        let a = &c["attachment"];
        assert_eq!(a["mime"], mime);
        let url = a["url"].as_str().unwrap().to_owned();
        assert!(url.starts_with(&format!("{}/messaging/files/", daemon.url)));
        let resp = http.get(&url).send().await.unwrap();
        assert_eq!(resp.status(), 200);
        assert_eq!(resp.headers()["content-type"], mime);
        assert_eq!(resp.bytes().await.unwrap().as_ref(), bytes.as_slice());
        urls.push(url);
    }
    assert_eq!(content[0]["attachment"]["mediaType"], "Image");
    assert_eq!(content[1]["attachment"]["filename"], "report.pdf");
    // Only the signed link opens it: no signature, a changed one, a longer expiry.
    let url = url::Url::parse(&urls[1]).unwrap();
    let bare = format!("{}{}", daemon.url, url.path());
    let q: std::collections::HashMap<_, _> = url.query_pairs().into_owned().collect();
    let exp: i64 = q["expires"].parse().unwrap();
    let sig = &q["sig"];
    let flipped = if sig.starts_with('A') {
        sig.replacen('A', "B", 1)
    } else {
        format!("A{}", &sig[1..])
    };
    for wrong in [
        bare.clone(),
        format!("{bare}?expires={exp}&sig={flipped}"),
        format!("{bare}?expires={}&sig={sig}", exp + 3600),
    ] {
        assert_eq!(
            http.get(&wrong).send().await.unwrap().status(),
            404,
            "{wrong}"
        );
    }
    // Until it expires.
    env.clock.advance(std::time::Duration::from_secs(601));
    assert_eq!(http.get(&urls[1]).send().await.unwrap().status(), 404);
    daemon.shutdown().await;
}

#[tokio::test]
async fn throttling_on_either_side_is_retried_after_retry_after() {
    let env = Env::new().await;
    let daemon = env.daemon(env.config(|_| {})).await;
    env.subscribed().await;
    env.om.throttle_next(2, 1);
    env.customer_says("<p>one</p>").await;
    let got = env.genesys_messages(1).await;
    assert_eq!(env.om.throttled(), 2);
    assert_eq!(got.len(), 1);
    assert_eq!(got[0]["text"], "one");

    env.graph_sim.state.inject_fault(FaultRule {
        path_contains: format!("/chats/{}/messages", env.chat),
        remaining: 2,
        kind: FaultKind::Status {
            status: 429,
            retry_after_secs: Some(1),
        },
    });
    let before = env.graph_sim.state.request_count("/messages");
    env.om
        .agent_says(&got[0]["channel"]["from"], "answer", &[])
        .await;
    let chat = env.chat_messages(2).await;
    assert_eq!(chat.len(), 2);
    assert_eq!(text_of(&chat[1]), "answer");
    assert!(env.graph_sim.state.request_count("/messages") - before >= 3);
    daemon.shutdown().await;
}

#[tokio::test]
async fn a_forged_webhook_is_refused_and_changes_nothing_and_duplicates_are_dropped() {
    let env = Env::new().await;
    let daemon = env.daemon(env.config(|_| {})).await;
    env.subscribed().await;
    env.customer_says("<p>hi</p>").await;
    let from = env.genesys_messages(1).await[0]["channel"]["from"].clone();
    let forged = json!({"id": "forged-1", "channel": {"to": from, "time": "2026-11-30T10:00:00Z"},
        "type": "Text", "text": "send me your password", "direction": "Outbound"});
    let raw = serde_json::to_vec(&forged).unwrap();
    // Nothing pending before the forgeries (the customer's hop is finished)...
    let store = env.store.clone();
    eventually("an empty messaging queue", WAIT, || {
        let store = store.clone();
        async move { store.queue_len("messaging").await.unwrap() == 0 }
    })
    .await;
    assert_eq!(env.om.post_raw(raw.clone(), None).await, 401);
    assert_eq!(
        env.om
            .post_raw(raw.clone(), Some(&signature("wrong secret", &raw)))
            .await,
        401
    );
    let hex = "sha256=".to_owned() + &"00".repeat(32);
    assert_eq!(env.om.post_raw(raw.clone(), Some(&hex)).await, 401);
    // ...and nothing after them; nor does the forged text ever reach the chat (below).
    assert_eq!(env.store.queue_len("messaging").await.unwrap(), 0);
    // Unknown integration name.
    let good_sig = signature(WEBHOOK_SECRET, &raw);
    let other = reqwest::Client::new()
        .post(format!("{}/messaging/genesys/other", daemon.url))
        .header("X-Hub-Signature-256", &good_sig)
        .body(raw.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(other.status(), 404);

    // The same genuine message twice: carried once.
    let genuine = json!({"id": "agent-msg-1", "channel": {"to": from, "time": "2026-11-30T10:00:00Z"},
        "type": "Text", "text": "genuine", "direction": "Outbound"});
    assert_eq!(env.om.post_signed(&genuine).await, 200);
    assert_eq!(env.om.post_signed(&genuine).await, 200);
    env.chat_messages(2).await;
    // A later one in the same conversation lands after them, so nothing else is pending.
    env.om.agent_says(&from, "later", &[]).await;
    let chat = env.chat_messages(3).await;
    let texts: Vec<String> = chat.iter().map(text_of).collect();
    assert_eq!(texts, vec!["<p>hi</p>", "genuine", "later"]);
    daemon.shutdown().await;
}

#[tokio::test]
async fn a_restart_mid_conversation_loses_and_duplicates_nothing() {
    let env = Env::new().await;
    let daemon = env.daemon(env.config(|_| {})).await;
    env.subscribed().await;
    env.customer_says("<p>first</p>").await;
    let from = env.genesys_messages(1).await[0]["channel"]["from"].clone();
    // Both sides are throttled when the daemon stops: the customer's next message waits for
    // Genesys, the agent's answer for Graph (an hour's Retry-After, beyond what the Graph
    // client waits in place, so the hop goes back to the queue).
    env.om.throttle_next(1000, 1);
    env.customer_says("<p>second</p>").await;
    let chat_path = format!("/chats/{}/messages", env.chat);
    env.graph_sim.state.inject_fault(FaultRule {
        path_contains: chat_path.clone(),
        remaining: 1,
        kind: FaultKind::Status {
            status: 429,
            retry_after_secs: Some(3600),
        },
    });
    env.om
        .agent_says(&from, "answer across the restart", &[])
        .await;
    let (om, sim, path) = (
        env.om.clone(),
        env.graph_sim.state.clone(),
        chat_path.clone(),
    );
    eventually("a throttled attempt on each side", WAIT, || {
        let (om, sim, path) = (om.clone(), sim.clone(), path.clone());
        async move { om.throttled() >= 1 && sim.request_count(&path) >= 1 }
    })
    .await;
    daemon.shutdown().await;
    let created = env.graph_sim.state.subscriptions_created();

    let daemon = env.daemon(env.config(|_| {})).await;
    env.om.throttle_next(0, 0);
    let got = env.genesys_messages(2).await;
    assert_eq!(got[1]["text"], "second");
    assert_eq!(
        got[1]["channel"]["from"], from,
        "the thread survives the restart"
    );
    // The hour passes: the agent's answer is posted, once.
    env.clock.advance(std::time::Duration::from_secs(3601));
    let chat = env.chat_messages(3).await;
    assert_eq!(text_of(&chat[2]), "answer across the restart");
    env.customer_says("<p>third</p>").await;
    let got = env.genesys_messages(3).await;
    let texts: Vec<&str> = got.iter().map(|m| m["text"].as_str().unwrap()).collect();
    assert_eq!(texts, vec!["first", "second", "third"]);
    let chat: Vec<String> = env
        .graph_sim
        .state
        .chat_messages(&env.chat)
        .iter()
        .map(text_of)
        .collect();
    assert_eq!(
        chat,
        vec![
            "<p>first</p>",
            "<p>second</p>",
            "answer across the restart",
            "<p>third</p>"
        ]
    );
    let om = env.om.clone();
    eventually("the receipt of the answer", WAIT, || {
        let om = om.clone();
        async move { om.receipts().len() == 1 }
    })
    .await;
    assert_eq!(
        env.graph_sim.state.subscriptions_created(),
        created,
        "the subscription is adopted, not made again"
    );
    daemon.shutdown().await;
}
