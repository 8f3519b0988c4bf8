//! PostgreSQL, for several Allot instances sharing one database.

use std::str::FromStr;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};

#[derive(Clone)]
pub struct PgStore {
    pool: sqlx::PgPool,
}

impl PgStore {
    pub async fn connect(url: &str) -> Result<Self, crate::StoreError> {
        // No JIT: Allot's statements are short, and a table whose size is misjudged (never
        // analyzed) made PostgreSQL spend 95 ms compiling a 15 ms count of a collection's members.
        let options = PgConnectOptions::from_str(url)?.options([("jit", "off")]);
        let pool = PgPoolOptions::new()
            .max_connections(10)
            .connect_with(options)
            .await?;
        sqlx::migrate!("migrations/postgres").run(&pool).await?;
        let store = Self { pool };
        store.analyze_stale().await?;
        Ok(store)
    }
}

/// Tables whose statistics are missing (never analyzed though not empty: even a small table
/// misjudged sends the planner astray) or stale (changed by more than a tenth since: autovacuum's own rule).
const STALE: &str = "(last_analyze IS NULL AND last_autoanalyze IS NULL AND n_live_tup > 0) \
    OR n_mod_since_analyze > GREATEST(n_live_tup / 10, 1000)";

impl PgStore {
    /// Statistics for the tables that lack them or changed by more than a tenth since they were
    /// last analyzed (autovacuum's own rule, which does this where it runs; without it — it can be turned off —
    /// a bulk-loaded table keeps no statistics and its plans go wrong: the front page of the
    /// console bench took 78 ms before and 14 ms after). Cheap when nothing changed: run as the
    /// store opens.
    pub(crate) async fn analyze_stale(&self) -> Result<(), StoreError> {
        self.maintain("ANALYZE", STALE).await
    }

    /// `analyze_stale`, and where autovacuum is off, what it would also do: vacuum the tables
    /// with many new or dead rows, which sets the visibility map that index-only scans need (the
    /// license list's page 500: 79 ms with a sort of every row, 12 ms from its index). Run by
    /// the server in the background at start-up and hourly.
    pub(crate) async fn optimize(&self) -> Result<(), StoreError> {
        let autovacuum: String = sqlx::query_scalar("SELECT current_setting('autovacuum')")
            .fetch_one(&self.pool)
            .await?;
        if autovacuum == "on" {
            return self.analyze_stale().await;
        }
        self.maintain(
            "VACUUM (ANALYZE)",
            &format!(
                "{STALE} OR n_dead_tup > 50 + n_live_tup / 5 OR n_ins_since_vacuum > 1000 + n_live_tup / 5"
            ),
        )
        .await
    }

    async fn maintain(&self, command: &str, due: &str) -> Result<(), StoreError> {
        let tables: Vec<String> = sqlx::query_scalar(&format!(
            "SELECT quote_ident(schemaname) || '.' || quote_ident(relname) FROM pg_stat_user_tables \
             WHERE ({due}) AND schemaname = ANY (current_schemas(false))"
        ))
        .fetch_all(&self.pool)
        .await?;
        for table in tables {
            sqlx::query(&format!("{command} {table}"))
                .execute(&self.pool)
                .await?;
        }
        Ok(())
    }

    /// A transaction (PostgreSQL's row locks need nothing more; see `SqliteStore::write_tx`).
    pub(crate) async fn write_tx(
        &self,
    ) -> Result<sqlx::Transaction<'static, sqlx::Postgres>, sqlx::Error> {
        self.pool.begin().await
    }

    /// Inserts or refreshes assignments as seen by the sync of `generation`.
    ///
    /// The rows are streamed with `COPY` into a temporary table of this connection, then merged
    /// in one statement: PostgreSQL parses COPY's text far faster than JSON or bound values.
    /// `DISTINCT` because one statement may not update a row twice.
    pub async fn upsert_assignments(
        &self,
        token_id: i64,
        rows: &[crate::AssignmentRow],
        generation: i64,
    ) -> Result<(), crate::StoreError> {
        let mut tx = self.pool.begin().await?;
        if !Self::lock_token(&mut tx, token_id).await? {
            return Err(crate::StoreError::Config(format!(
                "token {token_id} was deleted"
            )));
        }
        sqlx::query(
            "CREATE TEMPORARY TABLE IF NOT EXISTS assignments_in \
             (adam_id TEXT, pricing TEXT, holder_kind TEXT, holder TEXT) ON COMMIT DELETE ROWS",
        )
        .execute(&mut *tx)
        .await?;
        let mut text = String::with_capacity(rows.len() * 48);
        for a in rows {
            for (i, field) in [
                a.adam_id.as_str(),
                a.pricing.as_str(),
                a.holder.kind(),
                a.holder.id(),
            ]
            .into_iter()
            .enumerate()
            {
                if i > 0 {
                    text.push('\t');
                }
                copy_escape(&mut text, field);
            }
            text.push('\n');
        }
        let mut copy = tx
            .copy_in_raw("COPY assignments_in (adam_id, pricing, holder_kind, holder) FROM STDIN")
            .await?;
        copy.send(text.into_bytes()).await?;
        copy.finish().await?;
        sqlx::query(
            "INSERT INTO assignments (token_id, adam_id, pricing, holder_kind, holder, generation) \
             SELECT DISTINCT $1::BIGINT, adam_id, pricing, holder_kind, holder, $2::BIGINT FROM assignments_in \
             ON CONFLICT (token_id, adam_id, pricing, holder_kind, holder) DO UPDATE SET generation = excluded.generation \
             WHERE assignments.generation <> excluded.generation",
        )
        .bind(token_id)
        .bind(generation)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Keeps a token from being deleted until the transaction ends (what a foreign key from
    /// assignments did row by row; 0035 dropped it); false if it is gone already.
    pub(crate) async fn lock_token(
        tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
        token_id: i64,
    ) -> Result<bool, sqlx::Error> {
        Ok(
            sqlx::query("SELECT id FROM tokens WHERE id = $1 FOR KEY SHARE")
                .bind(token_id)
                .fetch_optional(&mut **tx)
                .await?
                .is_some(),
        )
    }

    /// Rows passed as one JSON array parameter (`$n`), as a table `j` of `value`s.
    pub(crate) fn json_rows(n: usize) -> String {
        format!("json_array_elements(${n}::json) AS j(value)")
    }

    /// The devices list's search: the rows it reads (`FROM …`, on `$1`) and `$1`'s value (the
    /// trigram indexes on the lower-cased columns serve these LIKEs). The matches are found first
    /// (`OFFSET 0` keeps PostgreSQL from merging the subquery), then ordered: otherwise it walks
    /// the serial number index hoping to meet 50 matches early, and a serial number's beginning —
    /// what is most often typed — matches a run of serials that may sit anywhere in that order
    /// ("dev04" over 500,000 devices: 400,000 rows read, 271 ms; found first, 57 ms).
    pub(crate) fn device_search(s: &str) -> (String, String) {
        (
            format!(
                "FROM (SELECT * FROM devices WHERE {} OFFSET 0) AS devices",
                crate::DEVICE_LIKE
            ),
            crate::like_contains(s),
        )
    }

    /// The people list's search: the rows it reads and `$1`'s value (the trigram indexes on
    /// the lower-cased name and e-mail serve these LIKEs).
    pub(crate) fn person_search(s: &str) -> (String, String) {
        (
            format!("FROM people WHERE {}", crate::PERSON_LIKE),
            crate::like_contains(s),
        )
    }

    /// The license list's search: the condition on `$2` and its value (the trigram index on
    /// `search_key` serves this LIKE).
    pub(crate) fn asset_search(s: &str) -> (&'static str, String) {
        (crate::ASSET_LIKE, crate::like_contains(s))
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

/// One field of COPY's text format: backslash, tab, newline and carriage return escaped.
fn copy_escape(out: &mut String, field: &str) {
    for c in field.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            c => out.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn copy_fields_are_escaped() {
        let mut s = String::new();
        super::copy_escape(&mut s, "a\tb\\c\nd\re");
        assert_eq!(s, "a\\tb\\\\c\\nd\\re");
    }
}
