//! Every `Store` method, on both backends.

use super::*;

store_suite! {
    async fn users_round_trip(db: TestDb) {
        let s = db.open().await;
        s.upsert_users(&[user("b", None), user("a", Some("agent-1"))]).await.unwrap();
        assert_eq!(s.get_user("a").await.unwrap(), user("a", Some("agent-1")));
        let ids: Vec<_> = s.list_users().await.unwrap().into_iter().map(|u| u.teams_id).collect();
        assert_eq!(ids, ["a", "b"]);

        let mut changed = user("b", Some("agent-2"));
        changed.business_phones = vec![];
        changed.mobile_phone = Some("+44 7700 900000".into());
        changed.updated_at = t(60);
        s.upsert_users(&[changed.clone()]).await.unwrap();
        assert_eq!(s.get_user("b").await.unwrap(), changed);
        assert_eq!(s.list_users().await.unwrap().len(), 2);
        assert!(matches!(s.get_user("zz").await, Err(StoreError::NotFound)));
    }

    async fn the_directory_version_moves_with_every_user_or_agent_change_and_only_then(db: TestDb) {
        let s = db.open().await;
        let empty = s.directory_version().await.unwrap();
        s.upsert_users(&[user("a", None), user("b", None)]).await.unwrap();
        let two = s.directory_version().await.unwrap();
        assert_ne!(two, empty);
        assert_eq!(s.directory_version().await.unwrap(), two, "nothing changed");
        s.upsert_users(&[user("b", None)]).await.unwrap();
        assert_eq!(s.directory_version().await.unwrap(), two, "the same record again");
        s.deactivate_users(&["a".to_string()]).await.unwrap();
        let one_active = s.directory_version().await.unwrap();
        assert_ne!(one_active, two, "a deactivation");
        let mut edited = user("b", None);
        edited.updated_at = t(600);
        s.upsert_users(&[edited]).await.unwrap();
        let edited = s.directory_version().await.unwrap();
        assert_ne!(edited, one_active, "an update");
        let agent = AgentRecord {
            connector: "genesys".into(),
            agent_id: "agent-1".into(),
            email: None,
            username: None,
            display_name: None,
            updated_at: t(5),
        };
        s.replace_agents("genesys", &[agent]).await.unwrap();
        assert_ne!(s.directory_version().await.unwrap(), edited, "an agent");
    }

    async fn upsert_keeps_the_last_of_duplicates_in_one_batch(db: TestDb) {
        let s = db.open().await;
        let mut second = user("a", None);
        second.upn = "second@example.com".into();
        s.upsert_users(&[user("a", None), second.clone()]).await.unwrap();
        assert_eq!(s.get_user("a").await.unwrap(), second);
    }

    async fn users_are_read_in_id_order_a_page_at_a_time(db: TestDb) {
        let s = db.open().await;
        let ids: Vec<String> = (0..7).map(|i| format!("u{i}")).collect();
        let users: Vec<_> = ids.iter().rev().map(|id| user(id, None)).collect();
        s.upsert_users(&users).await.unwrap();
        let mut seen = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let page = s.list_users_page(after.as_deref(), 3).await.unwrap();
            assert!(page.len() <= 3);
            after = page.last().map(|u| u.teams_id.clone());
            let last = page.len() < 3;
            seen.extend(page);
            if last {
                break;
            }
        }
        assert_eq!(seen, s.list_users().await.unwrap(), "whole records, in id order");
        assert_eq!(seen.iter().map(|u| &u.teams_id).collect::<Vec<_>>(), ids.iter().collect::<Vec<_>>());
        assert!(s.list_users_page(Some("u6"), 3).await.unwrap().is_empty());

        let mut each = Vec::new();
        presence_bridge::store::each_user(s.as_ref(), |u| each.push(u.teams_id)).await.unwrap();
        assert_eq!(each, ids);
    }

    async fn users_are_read_by_id_in_more_than_one_statement(db: TestDb) {
        let s = db.open().await;
        let n = presence_bridge::store::USERS_PER_READ + 5;
        let users: Vec<_> = (0..n).map(|i| user(&format!("u{i:05}"), None)).collect();
        s.upsert_users(&users).await.unwrap();
        // Every stored one but the first, an unknown id, and one id twice.
        let mut ids: Vec<String> = users[1..].iter().map(|u| u.teams_id.clone()).collect();
        ids.push("nobody".into());
        ids.push(users[2].teams_id.clone());
        let mut got = s.get_users(&ids).await.unwrap();
        got.sort_by(|a, b| a.teams_id.cmp(&b.teams_id));
        got.dedup_by(|a, b| a.teams_id == b.teams_id);
        assert_eq!(got, users[1..], "whole records of the stored ones");
        assert!(s.get_users(&[]).await.unwrap().is_empty());
    }

    async fn matches_are_written_without_touching_the_rest_of_the_user(db: TestDb) {
        let s = db.open().await;
        let mut b = user("b", None);
        b.cc_connector = Some("genesys".into());
        s.upsert_users(&[user("a", None), b.clone(), user("c", Some("agent-9"))]).await.unwrap();
        // A directory change lands between matching's read and its write: it is kept.
        b.display_name = Some("Renamed".into());
        s.upsert_users(&[b.clone()]).await.unwrap();
        let set = |id: &str, m: Option<(&str, &str)>| UserMatch {
            teams_id: id.into(),
            connector: m.map(|m| m.0.into()),
            agent_id: m.map(|m| m.1.into()),
        };
        let changed = s
            .set_user_matches(
                &[
                    set("a", Some(("innovaphone", "x"))),
                    set("b", None),
                    set("c", Some(("genesys", "agent-1"))),
                    set("nobody", Some(("genesys", "agent-2"))),
                    set("c", Some(("genesys", "agent-3"))),
                ],
                t(90),
            )
            .await
            .unwrap();
        assert_eq!(changed, 3, "a user missing from the store is not created");
        let a = s.get_user("a").await.unwrap();
        assert_eq!((a.cc_connector.as_deref(), a.cc_agent_id.as_deref()), (Some("innovaphone"), Some("x")));
        assert_eq!(a.updated_at, t(90));
        assert_eq!(a.business_phones, user("a", None).business_phones);
        let mut want_b = b;
        (want_b.cc_connector, want_b.updated_at) = (None, t(90));
        assert_eq!(s.get_user("b").await.unwrap(), want_b);
        let c = s.get_user("c").await.unwrap();
        assert_eq!(c.cc_agent_id.as_deref(), Some("agent-3"), "the last of duplicates wins");
        assert!(matches!(s.get_user("nobody").await, Err(StoreError::NotFound)));

        // Enough to span several statements.
        let many: Vec<_> = (0..5_000).map(|i| user(&format!("m{i:05}"), None)).collect();
        s.upsert_users(&many).await.unwrap();
        let matches: Vec<_> = many.iter().map(|u| set(&u.teams_id, Some(("genesys", &u.teams_id)))).collect();
        assert_eq!(s.set_user_matches(&matches, t(91)).await.unwrap(), 5_000);
        let u = s.get_user("m04999").await.unwrap();
        assert_eq!(u.cc_agent_id.as_deref(), Some("m04999"));
        // More than one page of `each_user`, each user once.
        let mut each = Vec::new();
        presence_bridge::store::each_user(s.as_ref(), |u| each.push(u.teams_id)).await.unwrap();
        assert_eq!(each.len(), 5_003);
        assert!(each.windows(2).all(|w| w[0] < w[1]));
    }

    async fn many_users_span_several_statements(db: TestDb) {
        let s = db.open().await;
        let users: Vec<_> = (0..1_234).map(|i| user(&format!("u{i:05}"), None)).collect();
        s.upsert_users(&users).await.unwrap();
        assert_eq!(s.list_users().await.unwrap(), users);
        let gone: Vec<String> = (0..1_000).map(|i| format!("u{i:05}")).collect();
        assert_eq!(s.deactivate_users(&gone).await.unwrap(), 1_000);
        let active = s.list_users().await.unwrap().iter().filter(|u| u.active).count();
        assert_eq!(active, 234);
    }

    async fn deactivate_counts_only_changes(db: TestDb) {
        let s = db.open().await;
        s.upsert_users(&[user("a", None), user("b", None)]).await.unwrap();
        let ids = vec!["a".to_string(), "missing".to_string()];
        assert_eq!(s.deactivate_users(&ids).await.unwrap(), 1);
        assert_eq!(s.deactivate_users(&ids).await.unwrap(), 0);
        assert_eq!(s.deactivate_users(&[]).await.unwrap(), 0);
        assert!(!s.get_user("a").await.unwrap().active);
        assert!(s.get_user("b").await.unwrap().active);
    }

    async fn user_by_agent_finds_the_match(db: TestDb) {
        let s = db.open().await;
        s.upsert_users(&[user("a", Some("agent-1")), user("b", Some("agent-2"))]).await.unwrap();
        assert_eq!(s.user_by_agent("genesys", "agent-2").await.unwrap().teams_id, "b");
        assert!(matches!(s.user_by_agent("genesys", "agent-3").await, Err(StoreError::NotFound)));
        assert!(matches!(s.user_by_agent("other", "agent-1").await, Err(StoreError::NotFound)));
    }

    async fn agents_are_replaced_per_connector(db: TestDb) {
        let s = db.open().await;
        let agent = |c: &str, id: &str| AgentRecord {
            connector: c.into(),
            agent_id: id.into(),
            email: Some(format!("{id}@cc.example")),
            username: None,
            display_name: Some(id.to_uppercase()),
            updated_at: t(5),
        };
        s.replace_agents("genesys", &[agent("genesys", "g2"), agent("genesys", "g1")]).await.unwrap();
        s.replace_agents("connect", &[agent("connect", "c1")]).await.unwrap();
        assert_eq!(s.list_agents(Some("genesys")).await.unwrap(), [agent("genesys", "g1"), agent("genesys", "g2")]);
        assert_eq!(s.list_agents(None).await.unwrap().len(), 3);

        s.replace_agents("genesys", &[agent("genesys", "g3")]).await.unwrap();
        assert_eq!(s.list_agents(Some("genesys")).await.unwrap(), [agent("genesys", "g3")]);
        assert_eq!(s.list_agents(Some("connect")).await.unwrap(), [agent("connect", "c1")]);
        s.replace_agents("connect", &[]).await.unwrap();
        assert!(s.list_agents(Some("connect")).await.unwrap().is_empty());
    }

    async fn observed_and_writes_upsert_per_user_and_side(db: TestDb) {
        let s = db.open().await;
        let obs = |side, status: serde_json::Value, at| ObservedStatus {
            user_id: "a".into(),
            side,
            status,
            observed_at: t(at),
            source: "graph_poll".into(),
        };
        s.put_observed(&[obs(Side::Teams, json!({"availability": "Busy"}), 1)]).await.unwrap();
        s.put_observed(&[
            obs(Side::ContactCenter, json!("Available"), 2),
            obs(Side::Teams, json!({"availability": "Away"}), 3),
        ])
        .await
        .unwrap();
        assert_eq!(
            s.list_observed().await.unwrap(),
            [obs(Side::ContactCenter, json!("Available"), 2), obs(Side::Teams, json!({"availability": "Away"}), 3)]
        );

        let write = |side, seq: Option<&str>| WriteRecord {
            user_id: "a".into(),
            side,
            status: json!({"clear": true}),
            written_at: t(9),
            sequence: seq.map(Into::into),
        };
        s.put_writes(&[write(Side::Teams, None)]).await.unwrap();
        s.put_writes(&[write(Side::Teams, Some("seq-7"))]).await.unwrap();
        assert_eq!(s.list_writes().await.unwrap(), [write(Side::Teams, Some("seq-7"))]);
    }

    async fn user_states_upsert(db: TestDb) {
        let s = db.open().await;
        s.save_user_states(&[("b".into(), json!({"v": 1}).into()), ("a".into(), json!([1, 2]).into())]).await.unwrap();
        s.save_user_states(&[("b".into(), json!({"v": 2, "nested": {"x": null}}).into())]).await.unwrap();
        assert_eq!(
            s.load_user_states().await.unwrap(),
            [("a".to_string(), json!([1, 2]).into()), ("b".to_string(), json!({"v": 2, "nested": {"x": null}}).into())]
        );
    }

    async fn subscriptions_crud(db: TestDb) {
        let s = db.open().await;
        let mut sub = SubscriptionRecord {
            id: "sub-1".into(),
            kind: "presence".into(),
            shard: Some(3),
            account_id: Some("acct-1".into()),
            resource: "/communications/presences?$filter=id in ('a')".into(),
            client_state: "secret-state".into(),
            expires_at: t(3600),
            created_at: t(0),
            last_renewed_at: None,
            last_reauthorized_at: None,
            state: "active".into(),
            last_error: None,
        };
        s.upsert_subscription(&sub).await.unwrap();
        assert_eq!(s.get_subscription("sub-1").await.unwrap(), sub);
        sub.expires_at = t(7200);
        sub.last_renewed_at = Some(t(3000));
        sub.state = "failing".into();
        sub.last_error = Some("403".into());
        s.upsert_subscription(&sub).await.unwrap();
        assert_eq!(s.list_subscriptions().await.unwrap(), [sub.clone()]);
        s.delete_subscription("sub-1").await.unwrap();
        assert!(matches!(s.get_subscription("sub-1").await, Err(StoreError::NotFound)));
        assert!(matches!(s.delete_subscription("sub-1").await, Err(StoreError::NotFound)));
    }

    async fn accounts_conflict_and_not_found(db: TestDb) {
        let s = db.open().await;
        let a = account("acct-1", "sync1@example.com");
        s.insert_account(&a).await.unwrap();
        assert_eq!(s.get_account("acct-1").await.unwrap(), a);
        let same_id = account("acct-1", "other@example.com");
        assert!(matches!(s.insert_account(&same_id).await, Err(StoreError::Conflict(_))));
        let same_upn = account("acct-2", "sync1@example.com");
        assert!(matches!(s.insert_account(&same_upn).await, Err(StoreError::Conflict(_))));

        let mut updated = a.clone();
        updated.encrypted_refresh_token = vec![9; 300];
        updated.state = "revoked".into();
        updated.last_refresh_at = Some(t(10));
        updated.last_error = Some("invalid_grant".into());
        s.update_account(&updated).await.unwrap();
        assert_eq!(s.list_accounts().await.unwrap(), [updated]);
        let ghost = account("ghost", "ghost@example.com");
        assert!(matches!(s.update_account(&ghost).await, Err(StoreError::NotFound)));

        s.insert_account(&same_upn.clone()).await.expect_err("upn still taken");
        s.delete_account("acct-1").await.unwrap();
        s.insert_account(&same_upn).await.unwrap();
        assert!(matches!(s.get_account("acct-1").await, Err(StoreError::NotFound)));
        assert!(matches!(s.delete_account("acct-1").await, Err(StoreError::NotFound)));
    }

    async fn kv_put_get_delete(db: TestDb) {
        let s = db.open().await;
        assert_eq!(s.get_kv("delta").await.unwrap(), None);
        s.put_kv("delta", "https://graph/delta?token=1").await.unwrap();
        s.put_kv("delta", "https://graph/delta?token=2").await.unwrap();
        assert_eq!(s.get_kv("delta").await.unwrap().as_deref(), Some("https://graph/delta?token=2"));
        s.delete_kv("delta").await.unwrap();
        s.delete_kv("delta").await.unwrap();
        assert_eq!(s.get_kv("delta").await.unwrap(), None);
    }

    async fn audit_is_newest_first_and_pruned(db: TestDb) {
        let s = db.open().await;
        let entry = |user: &str, at| AuditEntry {
            id: 0,
            user_id: user.into(),
            at: t(at),
            input: json!({"side": "teams", "status": "Busy"}).into(),
            rule: Some("teams_to_cc[0]".into()),
            action: "write_cc".into(),
            reason: format!("at {at}"),
        };
        s.append_audit(&[entry("a", 1), entry("a", 3), entry("b", 2), entry("a", 2)]).await.unwrap();
        let got = s.list_audit("a", 10).await.unwrap();
        let reasons: Vec<_> = got.iter().map(|e| e.reason.as_str()).collect();
        assert_eq!(reasons, ["at 3", "at 2", "at 1"]);
        assert!(got.iter().all(|e| e.id > 0));
        assert_eq!(got[0], AuditEntry { id: got[0].id, ..entry("a", 3) });
        assert_eq!(s.list_audit("a", 1).await.unwrap().len(), 1);
        assert_eq!(s.prune_audit(t(2)).await.unwrap(), 1);
        assert_eq!(s.list_audit("a", 10).await.unwrap().len(), 2);
        assert_eq!(s.list_audit("b", 10).await.unwrap().len(), 1);
        // Whole-second and sub-second timestamps compare by time, not by text.
        let whole = Utc.timestamp_opt(1_750_000_100, 0).unwrap();
        s.append_audit(&[AuditEntry { at: whole, ..entry("c", 0) }]).await.unwrap();
        assert_eq!(s.prune_audit(whole + Duration::milliseconds(1)).await.unwrap(), 4);
        assert_eq!(s.prune_audit(whole + Duration::days(1)).await.unwrap(), 0);
    }

    async fn inbox_claim_ack_release(db: TestDb) {
        let s = db.open().await;
        s.inbox_push(&[]).await.unwrap();
        s.inbox_push(&(0..5).map(item).collect::<Vec<_>>()).await.unwrap();
        assert_eq!(s.inbox_len().await.unwrap(), 5);

        let first = s.inbox_claim(3, 60).await.unwrap();
        let ns: Vec<_> = first.iter().map(|i| i.payload["n"].as_u64().unwrap()).collect();
        assert_eq!(ns, [0, 1, 2], "oldest first");
        assert_eq!(first[0].payload, item(0).payload);
        assert_eq!(first[0].received_at, item(0).received_at);
        assert_eq!(first[0].user_id.as_deref(), Some("u0"));
        assert!(first.iter().all(|i| i.attempts == 0 && i.kind == "observation"));

        let second = s.inbox_claim(10, 60).await.unwrap();
        assert_eq!(second.len(), 2, "leased items are not handed out again");
        assert!(s.inbox_claim(10, 60).await.unwrap().is_empty());

        s.inbox_ack(&[first[0].id, first[1].id]).await.unwrap();
        s.inbox_release(&[first[2].id]).await.unwrap();
        assert_eq!(s.inbox_len().await.unwrap(), 3);
        let again = s.inbox_claim(10, 60).await.unwrap();
        assert_eq!(again.len(), 1);
        assert_eq!((again[0].id, again[0].attempts), (first[2].id, 1));
        s.inbox_release(&[again[0].id]).await.unwrap();
        assert_eq!(s.inbox_claim(10, 60).await.unwrap()[0].attempts, 2);

        let rest: Vec<_> = second.iter().chain(&again).map(|i| i.id).collect();
        s.inbox_ack(&rest).await.unwrap();
        s.inbox_ack(&rest).await.unwrap();
        assert_eq!(s.inbox_len().await.unwrap(), 0);
    }

    async fn inbox_expired_lease_is_reclaimable(db: TestDb) {
        let s = db.open().await;
        s.inbox_push(&[item(1)]).await.unwrap();
        // A zero-second lease has run out as soon as it is taken.
        let taken = s.inbox_claim(1, 0).await.unwrap();
        assert_eq!(taken.len(), 1);
        let retaken = s.inbox_claim(1, 60).await.unwrap();
        assert_eq!(retaken.iter().map(|i| i.id).collect::<Vec<_>>(), [taken[0].id]);
        assert!(s.inbox_claim(1, 60).await.unwrap().is_empty());
    }

    async fn inbox_concurrent_claimers_never_share(db: TestDb) {
        let s = db.open().await;
        let total = 2_000;
        s.inbox_push(&(0..total).map(item).collect::<Vec<_>>()).await.unwrap();
        // Two stores on one database stand for two replicas.
        let replicas = [s.clone(), db.open().await];
        let claimers: Vec<_> = (0..4)
            .map(|n| {
                let s = replicas[n % 2].clone();
                tokio::spawn(async move {
                    let mut got = Vec::new();
                    loop {
                        let batch = s.inbox_claim(37, 600).await.unwrap();
                        if batch.is_empty() {
                            break got;
                        }
                        got.extend(batch.into_iter().map(|i| i.id));
                    }
                })
            })
            .collect();
        let mut seen = HashSet::new();
        let mut busy_claimers = 0;
        for c in claimers {
            let got = c.await.unwrap();
            busy_claimers += usize::from(!got.is_empty());
            for id in got {
                assert!(seen.insert(id), "item {id} claimed twice");
            }
        }
        assert_eq!(seen.len(), total);
        assert!(busy_claimers >= 1);
    }

    async fn inbox_push_and_ack_span_several_statements(db: TestDb) {
        let s = db.open().await;
        s.inbox_push(&(0..2_500).map(item).collect::<Vec<_>>()).await.unwrap();
        assert_eq!(s.inbox_len().await.unwrap(), 2_500);
        let claimed = s.inbox_claim(5_000, 60).await.unwrap();
        let ns: Vec<_> = claimed.iter().map(|i| i.payload["n"].as_u64().unwrap() as usize).collect();
        assert_eq!(ns, (0..2_500).collect::<Vec<_>>());
        // One ack spanning several statements.
        let ids: Vec<_> = claimed.iter().map(|i| i.id).collect();
        s.inbox_ack(&ids).await.unwrap();
        assert_eq!(s.inbox_len().await.unwrap(), 0);
    }

    async fn data_survives_a_restart(db: TestDb) {
        let s = db.open().await;
        s.upsert_users(&[user("a", Some("agent-1"))]).await.unwrap();
        s.put_kv("cursor", "42").await.unwrap();
        s.inbox_push(&[item(7)]).await.unwrap();
        s.insert_account(&account("acct", "sync@example.com")).await.unwrap();
        drop(s);

        let s = db.open().await;
        assert_eq!(s.get_user("a").await.unwrap(), user("a", Some("agent-1")));
        assert_eq!(s.get_kv("cursor").await.unwrap().as_deref(), Some("42"));
        assert_eq!(s.inbox_claim(10, 60).await.unwrap()[0].payload, item(7).payload);
        assert_eq!(s.get_account("acct").await.unwrap(), account("acct", "sync@example.com"));
    }

    async fn opening_twice_is_harmless(db: TestDb) {
        let first = db.open().await;
        first.put_kv("k", "v").await.unwrap();
        let second = db.open().await;
        let third = db.open().await;
        assert_eq!(third.get_kv("k").await.unwrap().as_deref(), Some("v"));
        second.ping().await.unwrap();
        assert_eq!(first.backend(), second.backend());
    }
}
