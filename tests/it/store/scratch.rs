//! A throwaway Postgres schema for one test or bench run (also compiled into
//! `benches/store.rs`).

/// A fresh schema on the server at `base`; `url` connects with it as the search path.
pub struct ScratchSchema {
    admin: sqlx::PgPool,
    name: String,
    pub url: String,
}

impl ScratchSchema {
    pub async fn create(base: &str, prefix: &str) -> Self {
        let name = format!("{prefix}_{}", uuid::Uuid::new_v4().simple());
        let admin = sqlx::PgPool::connect(base)
            .await
            .expect("postgres reachable");
        sqlx::query(&format!("CREATE SCHEMA {name}"))
            .execute(&admin)
            .await
            .expect("create schema");
        let mut url = url::Url::parse(base).expect("postgres url");
        url.query_pairs_mut()
            .append_pair("options", &format!("-c search_path={name}"));
        Self {
            admin,
            name,
            url: url.to_string(),
        }
    }

    pub async fn drop(self) {
        sqlx::query(&format!("DROP SCHEMA {} CASCADE", self.name))
            .execute(&self.admin)
            .await
            .expect("drop schema");
        self.admin.close().await;
    }
}
