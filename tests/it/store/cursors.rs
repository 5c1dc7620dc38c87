//! Connector cursors (where an event source resumes), on both backends.

use super::*;

fn kv(k: &str, v: &str) -> (String, String) {
    (k.to_owned(), v.to_owned())
}

store_suite! {
    async fn cursors_round_trip_per_connector_and_survive_a_reopen(db: TestDb) {
        let s = db.open().await;
        assert!(s.get_cursors("ac").await.unwrap().is_empty());
        s.put_cursors("ac", &[kv("shard-2", "seq:20"), kv("shard-1", "seq:10")]).await.unwrap();
        s.put_cursors("other", &[kv("shard-1", "seq:99")]).await.unwrap();
        // an update, and the last of two values for one key in one call wins
        s.put_cursors("ac", &[kv("shard-1", "seq:11"), kv("shard-1", "seq:12"), kv("shard-3", "end")])
            .await
            .unwrap();
        let again = db.open().await;
        assert_eq!(
            again.get_cursors("ac").await.unwrap(),
            vec![kv("shard-1", "seq:12"), kv("shard-2", "seq:20"), kv("shard-3", "end")]
        );
        assert_eq!(again.get_cursors("other").await.unwrap(), vec![kv("shard-1", "seq:99")]);

        again.delete_cursors("ac", &["shard-1".to_owned(), "absent".to_owned()]).await.unwrap();
        assert_eq!(
            again.get_cursors("ac").await.unwrap(),
            vec![kv("shard-2", "seq:20"), kv("shard-3", "end")]
        );
        assert_eq!(again.get_cursors("other").await.unwrap().len(), 1, "other connectors untouched");
        again.put_cursors("ac", &[]).await.unwrap();
        again.delete_cursors("ac", &[]).await.unwrap();
    }

    async fn many_cursors_span_several_statements(db: TestDb) {
        let s = db.open().await;
        let many: Vec<(String, String)> =
            (0..2_500).map(|i| (format!("k{i:05}"), format!("v{i}"))).collect();
        s.put_cursors("ac", &many).await.unwrap();
        assert_eq!(s.get_cursors("ac").await.unwrap(), many);
        let keys: Vec<String> = many.iter().take(2_000).map(|c| c.0.clone()).collect();
        s.delete_cursors("ac", &keys).await.unwrap();
        assert_eq!(s.get_cursors("ac").await.unwrap().len(), 500);
    }
}
