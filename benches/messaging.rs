//! Messaging bridge benchmarks (printed figures, no assertions):
//! - Teams HTML to plain text, messages per second on one core;
//! - `X-Hub-Signature-256` checks of a typical outbound webhook body, per second;
//! - attachment links opened (signature, expiry, disk read of a 100 KB file), per second.
//!
//! Run: `cargo bench --bench messaging`.

use std::hint::black_box;
use std::time::{Duration, Instant};

use base64::Engine;
use presence_bridge::integrations::messaging::files::FileHost;
use presence_bridge::integrations::messaging::text::html_to_text;
use presence_bridge::integrations::messaging::webhook::verify;
use secrecy::SecretString;

fn rate(what: &str, n: u64, took: Duration) {
    println!(
        "{what}: {:.0}/s ({n} in {:.2} s)",
        n as f64 / took.as_secs_f64(),
        took.as_secs_f64()
    );
}

fn main() {
    let html = "<p>Hello <b>support</b>, the printer in <i>building 4</i> shows error \
                <a href=\"https://contoso.example/kb?id=42&amp;x=1\">E-042</a> again.</p>\
                <ul><li>restarted it</li><li>checked the paper &amp; toner</li></ul>";
    let n = 200_000u64;
    let t = Instant::now();
    for _ in 0..n {
        black_box(html_to_text(black_box(html)));
    }
    rate("html_to_text", n, t.elapsed());

    let secret = SecretString::from("open-messaging-webhook-secret");
    let body = serde_json::to_vec(&serde_json::json!({
        "id": "5d3fa2c1b1e84f0f8b1b0d6d1c1e2f3a",
        "channel": {"id": "integration", "platform": "Open", "type": "Private",
            "to": {"id": "teams:tenant:user:abcdef", "idType": "Opaque"},
            "time": "2026-11-30T10:00:00.000Z", "messageId": "5d3fa2c1"},
        "type": "Text", "text": "Thanks, we are looking into it.", "direction": "Outbound"
    }))
    .unwrap();
    let sig = {
        use hmac::{Hmac, Mac};
        let mut m = Hmac::<sha2::Sha256>::new_from_slice(b"open-messaging-webhook-secret").unwrap();
        m.update(&body);
        format!(
            "sha256={}",
            base64::engine::general_purpose::STANDARD.encode(m.finalize().into_bytes())
        )
    };
    let n = 500_000u64;
    let t = Instant::now();
    for _ in 0..n {
        assert!(verify(&secret, Some(black_box(&sig)), black_box(&body)));
    }
    rate("webhook signature checks", n, t.elapsed());

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let dir = std::env::temp_dir().join(format!("pb-bench-files-{}", std::process::id()));
        let key = SecretString::from(base64::engine::general_purpose::STANDARD.encode([3u8; 32]));
        let host = FileHost::new(
            dir.clone(),
            &key,
            "http://127.0.0.1:1",
            Duration::from_secs(3600),
        )
        .unwrap();
        let now = chrono::Utc::now();
        let link = host
            .put(
                "bench",
                "file.bin",
                "application/octet-stream",
                &vec![7u8; 100 * 1024],
                now,
            )
            .await
            .unwrap();
        let u = url::Url::parse(&link).unwrap();
        let token = u.path_segments().unwrap().nth(2).unwrap().to_owned();
        let q: std::collections::HashMap<_, _> = u.query_pairs().into_owned().collect();
        let expires: i64 = q["expires"].parse().unwrap();
        let n = 20_000u64;
        let t = Instant::now();
        for _ in 0..n {
            black_box(host.open(&token, expires, &q["sig"], now).await.unwrap());
        }
        rate("attachment links opened (100 KB)", n, t.elapsed());
        let _ = std::fs::remove_dir_all(dir);
    });
}
