//! PostgreSQL, for several Allot instances sharing one database.

use sqlx::postgres::PgPoolOptions;

#[derive(Clone)]
pub struct PgStore {
    pool: sqlx::PgPool,
}

impl PgStore {
    pub async fn connect(url: &str) -> Result<Self, crate::StoreError> {
        let pool = PgPoolOptions::new()
            .max_connections(10)
            .connect(url)
            .await?;
        sqlx::migrate!("migrations/postgres").run(&pool).await?;
        Ok(Self { pool })
    }
}

impl PgStore {
    /// A transaction (PostgreSQL's row locks need nothing more; see `SqliteStore::write_tx`).
    pub(crate) async fn write_tx(
        &self,
    ) -> Result<sqlx::Transaction<'static, sqlx::Postgres>, sqlx::Error> {
        self.pool.begin().await
    }

    /// Rows passed as one JSON array parameter (`$3`), as a table `j` of `value`s.
    pub(crate) const JSON_ROWS: &'static str = "json_array_elements($3::json) AS j(value)";

    /// The devices list's search: the condition on `$1` and its value (the trigram indexes on
    /// the lower-cased columns serve these LIKEs).
    pub(crate) fn device_search(s: &str) -> (&'static str, String) {
        (crate::DEVICE_LIKE, crate::like_contains(s))
    }

    /// The search's count reads `devices` like its page.
    pub(crate) fn device_search_count(_: &str) -> Option<&'static str> {
        None
    }
}

crate::queries::impl_queries!(PgStore);
crate::inventory_queries::impl_inventory_queries!(PgStore);
crate::deployment_queries::impl_deployment_queries!(PgStore);
crate::target_queries::impl_target_queries!(PgStore);
crate::console_queries::impl_console_queries!(PgStore);
crate::app_list_queries::impl_app_list_queries!(PgStore);
crate::declarative_queries::impl_declarative_queries!(PgStore);
crate::subscription_queries::impl_subscription_queries!(PgStore);
crate::alert_queries::impl_alert_queries!(PgStore);
