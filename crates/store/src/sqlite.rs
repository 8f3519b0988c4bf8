//! SQLite: one file, WAL journal, foreign keys on.

use std::str::FromStr;
use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};

#[derive(Clone)]
pub struct SqliteStore {
    pool: sqlx::SqlitePool,
}

impl SqliteStore {
    /// A file path, a `sqlite:` URL, or `sqlite::memory:`.
    pub async fn connect(url: &str) -> Result<Self, crate::StoreError> {
        let memory = url.contains(":memory:");
        let opts = if url.starts_with("sqlite:") {
            SqliteConnectOptions::from_str(url)?
        } else {
            SqliteConnectOptions::new().filename(url)
        };
        let opts = opts
            .create_if_missing(true)
            .foreign_keys(true)
            .journal_mode(if memory {
                SqliteJournalMode::Memory
            } else {
                SqliteJournalMode::Wal
            })
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(Duration::from_secs(30))
            // 16 MiB of page cache per connection: a full sync inserts a million rows in key
            // order that is not insertion order, which thrashes the 2 MiB default.
            .pragma("cache_size", "-16384")
            .pragma("temp_store", "memory");
        // An in-memory database exists per connection: keep to one.
        let pool = SqlitePoolOptions::new()
            .max_connections(if memory { 1 } else { 8 })
            .connect_with(opts)
            .await?;
        sqlx::migrate!("migrations/sqlite").run(&pool).await?;
        let store = Self { pool };
        // Statistics for the tables that lack them or changed much (a new database, a migrated
        // one), as SQLite advises for long-lived connections; then hourly (`optimize`).
        store.run_optimize("PRAGMA optimize=0x10002").await?;
        Ok(store)
    }
}

impl SqliteStore {
    /// Refreshes the query planner's statistics where SQLite judges them stale (`PRAGMA
    /// optimize`, each table sampled rather than read whole): cheap when nothing changed.
    pub(crate) async fn optimize(&self) -> Result<(), StoreError> {
        self.run_optimize("PRAGMA optimize").await
    }

    async fn run_optimize(&self, pragma: &str) -> Result<(), StoreError> {
        let mut c = self.pool.acquire().await?;
        sqlx::query("PRAGMA analysis_limit = 1000")
            .execute(&mut *c)
            .await?;
        sqlx::query(pragma).execute(&mut *c).await?;
        Ok(())
    }

    pub(crate) async fn backup_into(&self, path: &std::path::Path) -> Result<(), StoreError> {
        if path.exists() {
            return Err(StoreError::Config(format!(
                "{} exists already: choose a new file (a backup never overwrites one)",
                path.display()
            )));
        }
        let path = path
            .to_str()
            .ok_or_else(|| StoreError::Config("the backup's path is not UTF-8".into()))?;
        sqlx::query("VACUUM INTO $1")
            .bind(path)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Every write transaction holds SQLite's write lock from its first statement (`BEGIN
    /// IMMEDIATE`): a deferred one that reads first fails at once (SQLITE_BUSY, or BUSY_SNAPSHOT
    /// when another connection wrote in between) when it upgrades, instead of waiting its turn.
    pub(crate) async fn write_tx(
        &self,
    ) -> Result<sqlx::Transaction<'static, sqlx::Sqlite>, sqlx::Error> {
        self.pool.begin_with("BEGIN IMMEDIATE").await
    }

    /// Inserts or refreshes assignments as seen by the sync of `generation`.
    ///
    /// The rows go as one JSON parameter per 5,000, unpacked by SQLite (`json_each`): binding six
    /// values a row cost more than SQLite's own work.
    pub async fn upsert_assignments(
        &self,
        token_id: i64,
        rows: &[crate::AssignmentRow],
        generation: i64,
    ) -> Result<(), StoreError> {
        let mut tx = self.write_tx().await?;
        for chunk in rows.chunks(5_000) {
            let json: Vec<[&str; 4]> = chunk
                .iter()
                .map(|a| {
                    [
                        a.adam_id.as_str(),
                        a.pricing.as_str(),
                        a.holder.kind(),
                        a.holder.id(),
                    ]
                })
                .collect();
            let json =
                serde_json::to_string(&json).map_err(|e| StoreError::Config(e.to_string()))?;
            sqlx::query(
                "INSERT INTO assignments (token_id, adam_id, pricing, holder_kind, holder, generation) \
                 SELECT $1, j.value->>0, j.value->>1, j.value->>2, j.value->>3, $2 FROM json_each($3) AS j WHERE TRUE \
                 ON CONFLICT (token_id, adam_id, pricing, holder_kind, holder) DO UPDATE SET generation = excluded.generation",
            )
            .bind(token_id)
            .bind(generation)
            .bind(json)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// A token's row kept from deletion while assignments are written: SQLite's foreign key
    /// does it (PostgreSQL's was dropped for speed, see `PgStore::lock_token`).
    pub(crate) async fn lock_token(
        _tx: &mut sqlx::Transaction<'_, sqlx::Sqlite>,
        _token_id: i64,
    ) -> Result<bool, sqlx::Error> {
        Ok(true)
    }

    /// Rows passed as one JSON array parameter (`$n`), as a table `j` of `value`s.
    pub(crate) fn json_rows(n: usize) -> String {
        format!("json_each(${n}) AS j")
    }

    /// The devices list's search: the rows it reads (`FROM …`, on `$1`) and `$1`'s value. Three
    /// characters or more go through the trigram index (`devices_search`, one phrase: a substring
    /// of any of the three columns, case-insensitive), whose matches are joined to their devices
    /// (`id IN (…)` first built a set of every match: 100,000 matches, 33 → 22 ms); shorter ones
    /// scan.
    pub(crate) fn device_search(s: &str) -> (String, String) {
        if s.chars().count() >= 3 {
            (
                "FROM (SELECT rowid AS match_id FROM devices_search WHERE devices_search MATCH $1) AS m \
                 JOIN devices ON devices.id = m.match_id"
                    .into(),
                format!("\"{}\"", s.replace('"', "\"\"")),
            )
        } else {
            (
                format!("FROM devices WHERE {}", crate::DEVICE_LIKE),
                crate::like_contains(s),
            )
        }
    }

    /// The people list's search, as `device_search`: the trigram index `people_search` (a
    /// substring of the name or e-mail) for three characters or more, a scan for fewer.
    pub(crate) fn person_search(s: &str) -> (String, String) {
        if s.chars().count() >= 3 {
            (
                "FROM (SELECT rowid AS match_id FROM people_search WHERE people_search MATCH $1) AS m \
                 JOIN people ON people.id = m.match_id WHERE TRUE"
                    .into(),
                format!("\"{}\"", s.replace('"', "\"\"")),
            )
        } else {
            (
                format!("FROM people WHERE {}", crate::PERSON_LIKE),
                crate::like_contains(s),
            )
        }
    }

    /// The license list's search: the condition on `$2` and its value. Three characters or more
    /// go through the trigram index (`assets_search`: a substring of the name, bundle id or
    /// adamId, case-insensitive); shorter ones scan.
    pub(crate) fn asset_search(s: &str) -> (&'static str, String) {
        if s.chars().count() >= 3 {
            (
                "a.rowid IN (SELECT rowid FROM assets_search WHERE assets_search MATCH $2)",
                format!("\"{}\"", s.to_lowercase().replace('"', "\"\"")),
            )
        } else {
            (crate::ASSET_LIKE, crate::like_contains(s))
        }
    }

    /// How many devices a search finds, for a search `device_search` sends to the trigram index:
    /// counted in the index itself (every row of it is a device).
    pub(crate) fn device_search_count(s: &str) -> Option<&'static str> {
        (s.chars().count() >= 3)
            .then_some("SELECT COUNT(*) FROM devices_search WHERE devices_search MATCH $1")
    }
}

crate::queries::impl_queries!(SqliteStore);
crate::inventory_queries::impl_inventory_queries!(SqliteStore);
crate::deployment_queries::impl_deployment_queries!(SqliteStore);
crate::target_queries::impl_target_queries!(SqliteStore);
crate::console_queries::impl_console_queries!(SqliteStore);
crate::app_list_queries::impl_app_list_queries!(SqliteStore);
crate::declarative_queries::impl_declarative_queries!(SqliteStore);
crate::subscription_queries::impl_subscription_queries!(SqliteStore);
crate::alert_queries::impl_alert_queries!(SqliteStore);
