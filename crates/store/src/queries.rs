//! Every query, written once. SQLite and PostgreSQL both accept `$N` parameters, `ON CONFLICT`,
//! `RETURNING` and multi-row `VALUES`; this macro stamps the same methods onto each backend's
//! store, so the two cannot drift apart.

/// `($s,$s+1,…),(…)` for `rows` rows of `cols` columns, numbered from `start`.
pub(crate) fn values(rows: usize, cols: usize, start: usize) -> String {
    let mut s = String::with_capacity(rows * cols * 5);
    for r in 0..rows {
        if r > 0 {
            s.push(',');
        }
        s.push('(');
        for c in 0..cols {
            if c > 0 {
                s.push(',');
            }
            s.push('$');
            s.push_str(&(start + r * cols + c).to_string());
        }
        s.push(')');
    }
    s
}

/// One assignment, if new: `$1` token, `$2` adamId, `$3` pricing, `$4` holder kind, `$5` holder,
/// `$6` generation.
pub(crate) const INSERT_ONE_ASSIGNMENT: &str = "INSERT INTO assignments (token_id, adam_id, pricing, holder_kind, holder, generation) \
     VALUES ($1,$2,$3,$4,$5,$6) ON CONFLICT (token_id, adam_id, pricing, holder_kind, holder) DO NOTHING";

/// The counts of an asset after `$4` new assignments: `$1` token, `$2` adamId, `$3` pricing.
pub(crate) const COUNT_MORE_ASSIGNED: &str = "UPDATE assets SET assigned = assigned + $4, \
     available = CASE WHEN available > $4 THEN available - $4 ELSE 0 END WHERE token_id = $1 AND adam_id = $2 AND pricing = $3";

/// `$4` reservations of an asset given back (claims ended): `$1` token, `$2` adamId, `$3` pricing.
pub(crate) const RELEASE_RESERVED: &str =
    "UPDATE assets SET reserved = CASE WHEN reserved > $4 THEN reserved - $4 ELSE 0 END \
     WHERE token_id = $1 AND adam_id = $2 AND pricing = $3";

/// One assignment removed: `$1` token, `$2` adamId, `$3` pricing, `$4` holder kind, `$5` holder.
pub(crate) const DELETE_ONE_ASSIGNMENT: &str =
    "DELETE FROM assignments WHERE token_id = $1 AND adam_id = $2 AND pricing = $3 AND holder_kind = $4 AND holder = $5";

/// The counts of an asset after `$4` assignments went: `$1` token, `$2` adamId, `$3` pricing.
pub(crate) const COUNT_LESS_ASSIGNED: &str = "UPDATE assets SET assigned = CASE WHEN assigned > $4 THEN assigned - $4 ELSE 0 END, \
     available = CASE WHEN unlimited THEN available ELSE available + $4 END WHERE token_id = $1 AND adam_id = $2 AND pricing = $3";

/// Assignments grouped by asset, each holder as `[kind, id]` (one statement per asset).
pub(crate) fn holders_by_asset(
    rows: &[crate::AssignmentRow],
) -> std::collections::BTreeMap<(&str, &str), Vec<[&str; 2]>> {
    let mut by_asset: std::collections::BTreeMap<(&str, &str), Vec<[&str; 2]>> =
        std::collections::BTreeMap::new();
    for a in rows {
        by_asset
            .entry((a.adam_id.as_str(), a.pricing.as_str()))
            .or_default()
            .push([a.holder.kind(), a.holder.id()]);
    }
    by_asset
}

/// Rows per multi-row statement: well under both backends' parameter limits.
pub(crate) const BATCH: usize = 500;

/// An asset row's sort key (`assets.name_key`): its app's lower-cased name, else its adamId.
pub(crate) const NAME_KEY: &str =
    "LOWER(COALESCE((SELECT m2.name FROM app_metadata m2 WHERE m2.adam_id = assets.adam_id), assets.adam_id))";

/// An asset row's search text (`assets.search_key`): name, bundle id (lower-cased) and adamId,
/// one a line, so a search cannot match across two of them.
pub(crate) const SEARCH_KEY: &str = "LOWER(COALESCE((SELECT m2.name || CHR_NL || COALESCE(m2.bundle_id, '') FROM app_metadata m2 WHERE m2.adam_id = assets.adam_id), '')) || CHR_NL || assets.adam_id";

/// Both keys of an asset row, for `UPDATE assets SET {set} WHERE … AND {stale}`: the assignments,
/// and the condition that one of them is out of date (so unchanged rows are not rewritten).
pub(crate) fn asset_keys() -> (String, String) {
    let search = SEARCH_KEY.replace("CHR_NL", "'\n'");
    (
        format!("name_key = {NAME_KEY}, search_key = {search}"),
        format!("(name_key <> {NAME_KEY} OR search_key <> {search})"),
    )
}

pub(crate) fn json_list(v: &[String]) -> String {
    serde_json::to_string(v).expect("strings serialise")
}

pub(crate) fn parse_list(s: &str) -> Vec<String> {
    serde_json::from_str(s).unwrap_or_default()
}

macro_rules! impl_queries {
    ($store:ty) => {
        const ASSET_COLUMNS: &str = "adam_id, pricing, product_type, total, assigned, available, retired, device_assignable, \
             revocable, unlimited, platforms";

        fn asset_row<R: sqlx::Row>(r: &R) -> Result<AssetRow, sqlx::Error>
        where
            for<'a> &'a str: sqlx::ColumnIndex<R>,
            for<'a> i64: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
            for<'a> String: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
            for<'a> bool: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
        {
            Ok(AssetRow {
                adam_id: r.try_get("adam_id")?,
                pricing: r.try_get("pricing")?,
                product_type: r.try_get("product_type")?,
                total: r.try_get("total")?,
                assigned: r.try_get("assigned")?,
                available: r.try_get("available")?,
                retired: r.try_get("retired")?,
                device_assignable: r.try_get("device_assignable")?,
                revocable: r.try_get("revocable")?,
                unlimited: r.try_get("unlimited")?,
                platforms: parse_list(&r.try_get::<String, _>("platforms")?),
            })
        }

        /// Records one assignment inside a transaction, its asset's counts moved with it; true if
        /// it was new (notifications and finished claims share it).
        async fn add_assignment_in(
            tx: &mut sqlx::Transaction<'_, <$store as $crate::Backend>::Db>,
            token_id: i64,
            a: &AssignmentRow,
            generation: i64,
        ) -> Result<bool, sqlx::Error> {
            if !<$store>::lock_token(tx, token_id).await? {
                return Ok(false);
            }
            let n = sqlx::query($crate::queries::INSERT_ONE_ASSIGNMENT)
                .bind(token_id)
                .bind(&a.adam_id)
                .bind(&a.pricing)
                .bind(a.holder.kind())
                .bind(a.holder.id())
                .bind(generation)
                .execute(&mut **tx)
                .await?
                .rows_affected();
            if n == 1 {
                sqlx::query($crate::queries::COUNT_MORE_ASSIGNED)
                    .bind(token_id)
                    .bind(&a.adam_id)
                    .bind(&a.pricing)
                    .bind(1_i64)
                    .execute(&mut **tx)
                    .await?;
            }
            Ok(n == 1)
        }

        /// Adds assignments inside a transaction, one statement per asset, counts moved by how
        /// many were new; how many were.
        async fn add_assignments_in(
            tx: &mut sqlx::Transaction<'_, <$store as $crate::Backend>::Db>,
            token_id: i64,
            rows: &[AssignmentRow],
            generation: i64,
        ) -> Result<u64, sqlx::Error> {
            if rows.is_empty() || !<$store>::lock_token(tx, token_id).await? {
                return Ok(0);
            }
            let by_asset = $crate::queries::holders_by_asset(rows);
            let sql = format!(
                "INSERT INTO assignments (token_id, adam_id, pricing, holder_kind, holder, generation) \
                 SELECT $1, $4, $5, j.value->>0, j.value->>1, $2 FROM {} WHERE TRUE \
                 ON CONFLICT (token_id, adam_id, pricing, holder_kind, holder) DO NOTHING",
                <$store>::json_rows(3)
            );
            let mut added = 0;
            for ((adam_id, pricing), holders) in by_asset {
                let json = serde_json::to_string(&holders).map_err(|e| sqlx::Error::Protocol(e.to_string()))?;
                let n = sqlx::query(&sql)
                    .bind(token_id)
                    .bind(generation)
                    .bind(json)
                    .bind(adam_id)
                    .bind(pricing)
                    .execute(&mut **tx)
                    .await?
                    .rows_affected();
                if n > 0 {
                    sqlx::query($crate::queries::COUNT_MORE_ASSIGNED)
                    .bind(token_id)
                    .bind(adam_id)
                    .bind(pricing)
                    .bind(n as i64)
                    .execute(&mut **tx)
                    .await?;
                }
                added += n;
            }
            Ok(added)
        }

        /// Removes one assignment inside a transaction, counts moved with it; true if it was there.
        /// Removes assignments inside a transaction, one statement per asset, counts moved by how
        /// many were there; how many were.
        async fn remove_assignments_in(
            tx: &mut sqlx::Transaction<'_, <$store as $crate::Backend>::Db>,
            token_id: i64,
            rows: &[AssignmentRow],
        ) -> Result<u64, sqlx::Error> {
            let sql = format!(
                "DELETE FROM assignments WHERE token_id = $1 AND adam_id = $3 AND pricing = $4 \
                 AND (holder_kind, holder) IN (SELECT j.value->>0, j.value->>1 FROM {})",
                <$store>::json_rows(2)
            );
            let mut removed = 0;
            for ((adam_id, pricing), holders) in $crate::queries::holders_by_asset(rows) {
                let json = serde_json::to_string(&holders).map_err(|e| sqlx::Error::Protocol(e.to_string()))?;
                let n = sqlx::query(&sql)
                    .bind(token_id)
                    .bind(json)
                    .bind(adam_id)
                    .bind(pricing)
                    .execute(&mut **tx)
                    .await?
                    .rows_affected();
                if n > 0 {
                    sqlx::query($crate::queries::COUNT_LESS_ASSIGNED)
                        .bind(token_id)
                        .bind(adam_id)
                        .bind(pricing)
                        .bind(n as i64)
                        .execute(&mut **tx)
                        .await?;
                }
                removed += n;
            }
            Ok(removed)
        }

        async fn remove_assignment_in(
            tx: &mut sqlx::Transaction<'_, <$store as $crate::Backend>::Db>,
            token_id: i64,
            a: &AssignmentRow,
        ) -> Result<bool, sqlx::Error> {
            let n = sqlx::query($crate::queries::DELETE_ONE_ASSIGNMENT)
                .bind(token_id)
                .bind(&a.adam_id)
                .bind(&a.pricing)
                .bind(a.holder.kind())
                .bind(a.holder.id())
                .execute(&mut **tx)
                .await?
                .rows_affected();
            if n == 1 {
                sqlx::query($crate::queries::COUNT_LESS_ASSIGNED)
                    .bind(token_id)
                    .bind(&a.adam_id)
                    .bind(&a.pricing)
                    .bind(1_i64)
                    .execute(&mut **tx)
                    .await?;
            }
            Ok(n == 1)
        }

        use sqlx::Row as _;
        use $crate::queries::{json_list, parse_list, values, BATCH};
        use $crate::types::*;
        use $crate::StoreError;

        const TOKEN_COLUMNS: &str = "id, name, description, categories, apple_account, program, uid, org_name, \
            location_name, country, secret, notification_secret, expires_at, claim, other_mdm, auth_error, last_error, \
            last_error_at, assignments_version, users_version, last_delta_sync_at, last_full_sync_at, sync_serial, \
            lease_owner, lease_until, full_sync_wanted, created_at, updated_at";

        fn token_row<R: sqlx::Row>(r: &R) -> Result<TokenRow, sqlx::Error>
        where
            for<'a> &'a str: sqlx::ColumnIndex<R>,
            for<'a> i64: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
            for<'a> String: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
            for<'a> Vec<u8>: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
            for<'a> bool: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
        {
            let program: String = r.try_get("program")?;
            let claim: String = r.try_get("claim")?;
            let categories: String = r.try_get("categories")?;
            Ok(TokenRow {
                id: r.try_get("id")?,
                name: r.try_get("name")?,
                description: r.try_get("description")?,
                categories: parse_list(&categories),
                apple_account: r.try_get("apple_account")?,
                program: allot_domain::Program::parse(&program).unwrap_or(allot_domain::Program::Business),
                uid: r.try_get("uid")?,
                org_name: r.try_get("org_name")?,
                location_name: r.try_get("location_name")?,
                country: r.try_get("country")?,
                secret: r.try_get("secret")?,
                notification_secret: r.try_get("notification_secret")?,
                expires_at: r.try_get("expires_at")?,
                claim: allot_domain::Claim::parse(&claim),
                other_mdm: r.try_get("other_mdm")?,
                auth_error: r.try_get::<Option<i64>, _>("auth_error")?.map(|v| v as i32),
                last_error: r.try_get("last_error")?,
                last_error_at: r.try_get("last_error_at")?,
                assignments_version: r.try_get("assignments_version")?,
                users_version: r.try_get("users_version")?,
                last_delta_sync_at: r.try_get("last_delta_sync_at")?,
                last_full_sync_at: r.try_get("last_full_sync_at")?,
                sync_serial: r.try_get("sync_serial")?,
                lease_owner: r.try_get("lease_owner")?,
                lease_until: r.try_get("lease_until")?,
                full_sync_wanted: r.try_get("full_sync_wanted")?,
                created_at: r.try_get("created_at")?,
                updated_at: r.try_get("updated_at")?,
            })
        }

        const RUN_COLUMNS: &str = "id, token_id, kind, reason, status, started_at, finished_at, pages, pages_total, \
            assets_changed, assignments_added, assignments_removed, users_changed, error";

        fn run_row<R: sqlx::Row>(r: &R) -> Result<SyncRun, sqlx::Error>
        where
            for<'a> &'a str: sqlx::ColumnIndex<R>,
            for<'a> i64: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
            for<'a> String: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
        {
            Ok(SyncRun {
                id: r.try_get("id")?,
                token_id: r.try_get("token_id")?,
                kind: r.try_get("kind")?,
                reason: r.try_get("reason")?,
                status: r.try_get("status")?,
                started_at: r.try_get("started_at")?,
                finished_at: r.try_get("finished_at")?,
                pages: r.try_get("pages")?,
                pages_total: r.try_get("pages_total")?,
                assets_changed: r.try_get("assets_changed")?,
                assignments_added: r.try_get("assignments_added")?,
                assignments_removed: r.try_get("assignments_removed")?,
                users_changed: r.try_get("users_changed")?,
                error: r.try_get("error")?,
            })
        }

        const API_KEY_COLUMNS: &str = "id, name, role, scope, created_at, last_used_at, revoked_at, from_config";

        fn api_key_row<R: sqlx::Row>(r: &R) -> Result<ApiKeyRow, sqlx::Error>
        where
            for<'a> &'a str: sqlx::ColumnIndex<R>,
            for<'a> i64: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
            for<'a> bool: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
            for<'a> String: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
        {
            Ok(ApiKeyRow {
                id: r.try_get("id")?,
                name: r.try_get("name")?,
                role: r.try_get("role")?,
                scope: r.try_get("scope")?,
                created_at: r.try_get("created_at")?,
                last_used_at: r.try_get("last_used_at")?,
                revoked_at: r.try_get("revoked_at")?,
                from_config: r.try_get("from_config")?,
            })
        }

        impl $store {
            // ---- settings ----

            pub async fn setting(&self, key: &str) -> Result<Option<String>, StoreError> {
                Ok(sqlx::query_scalar("SELECT value FROM settings WHERE key = $1").bind(key).fetch_optional(&self.pool).await?)
            }

            /// Stores `value` unless the key has one; returns the value that is stored.
            pub async fn setting_or_insert(&self, key: &str, value: &str) -> Result<String, StoreError> {
                sqlx::query("INSERT INTO settings (key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING")
                    .bind(key)
                    .bind(value)
                    .execute(&self.pool)
                    .await?;
                Ok(self.setting(key).await?.unwrap_or_else(|| value.to_owned()))
            }

            // ---- tokens ----

            pub async fn insert_token(&self, t: &NewToken, now: i64) -> Result<TokenRow, StoreError> {
                let sql = format!(
                    "INSERT INTO tokens (name, description, categories, apple_account, program, uid, org_name, location_name, \
                     country, secret, notification_secret, expires_at, claim, other_mdm, created_at, updated_at) \
                     VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14,$15,$15) RETURNING {TOKEN_COLUMNS}"
                );
                let row = sqlx::query(&sql)
                    .bind(&t.name)
                    .bind(&t.description)
                    .bind(json_list(&t.categories))
                    .bind(&t.apple_account)
                    .bind(t.program.as_str())
                    .bind(&t.uid)
                    .bind(&t.org_name)
                    .bind(&t.location_name)
                    .bind(&t.country)
                    .bind(&t.secret)
                    .bind(&t.notification_secret)
                    .bind(t.expires_at)
                    .bind(t.claim.as_str())
                    .bind(&t.other_mdm)
                    .bind(now)
                    .fetch_one(&self.pool)
                    .await
                    .map_err(StoreError::from_insert)?;
                Ok(token_row(&row)?)
            }

            pub async fn token(&self, id: i64) -> Result<Option<TokenRow>, StoreError> {
                let sql = format!("SELECT {TOKEN_COLUMNS} FROM tokens WHERE id = $1");
                let row = sqlx::query(&sql).bind(id).fetch_optional(&self.pool).await?;
                Ok(row.as_ref().map(token_row).transpose()?)
            }

            pub async fn token_by_uid(&self, uid: &str) -> Result<Option<TokenRow>, StoreError> {
                let sql = format!("SELECT {TOKEN_COLUMNS} FROM tokens WHERE uid = $1");
                let row = sqlx::query(&sql).bind(uid).fetch_optional(&self.pool).await?;
                Ok(row.as_ref().map(token_row).transpose()?)
            }

            pub async fn token_by_name(&self, name: &str) -> Result<Option<TokenRow>, StoreError> {
                let sql = format!("SELECT {TOKEN_COLUMNS} FROM tokens WHERE name = $1");
                let row = sqlx::query(&sql).bind(name).fetch_optional(&self.pool).await?;
                Ok(row.as_ref().map(token_row).transpose()?)
            }

            pub async fn tokens(&self) -> Result<Vec<TokenRow>, StoreError> {
                let sql = format!("SELECT {TOKEN_COLUMNS} FROM tokens ORDER BY name");
                let rows = sqlx::query(&sql).fetch_all(&self.pool).await?;
                Ok(rows.iter().map(token_row).collect::<Result<_, _>>()?)
            }

            /// Every token as lists judge and search it, by name (see `TokenBrief`).
            pub async fn token_briefs(&self) -> Result<Vec<TokenBrief>, StoreError> {
                self.token_briefs_where("TRUE", None).await
            }

            /// The briefs of the tokens that may need attention, by name: an error from Apple's
            /// authentication, expiring at or before `expiring_before`, claimed by another MDM, no
            /// success since `stale_before` (never synced: created before it), or a latest run
            /// that failed. Every token `token_health::state` judges in trouble is among
            /// them (a test checks it over each condition), and few others: the front page judges
            /// these instead of thousands of healthy tokens.
            pub async fn token_briefs_needing_attention(&self, expiring_before: i64, stale_before: i64) -> Result<Vec<TokenBrief>, StoreError> {
                self.token_briefs_where(
                    "auth_error IS NOT NULL OR expires_at <= $1 OR claim <> 'ours' \
                     OR (COALESCE(last_delta_sync_at, 0) < $2 AND COALESCE(last_full_sync_at, 0) < $2 \
                         AND (last_delta_sync_at IS NOT NULL OR last_full_sync_at IS NOT NULL OR created_at < $2)) \
                     OR id IN (SELECT token_id FROM sync_runs WHERE id IN (SELECT MAX(id) FROM sync_runs GROUP BY token_id) \
                               AND status = 'failed')",
                    Some((expiring_before, stale_before)),
                )
                .await
            }

            async fn token_briefs_where(&self, condition: &str, bounds: Option<(i64, i64)>) -> Result<Vec<TokenBrief>, StoreError> {
                let sql = format!(
                    "SELECT id, name, org_name, location_name, categories, expires_at, claim, auth_error, lease_until, \
                     last_delta_sync_at, last_full_sync_at, created_at FROM tokens WHERE {condition} ORDER BY name"
                );
                #[allow(clippy::type_complexity)]
                let mut q = sqlx::query_as::<_, (i64, String, String, String, String, i64, String, Option<i64>, Option<i64>, Option<i64>, Option<i64>, i64)>(&sql);
                if let Some((a, b)) = bounds {
                    q = q.bind(a).bind(b);
                }
                let rows = q.fetch_all(&self.pool).await?;
                Ok(rows
                    .into_iter()
                    .map(|(id, name, org_name, location_name, categories, expires_at, claim, auth_error, lease_until, delta, full, created_at)| TokenBrief {
                        id,
                        name,
                        org_name,
                        location_name,
                        categories: parse_list(&categories),
                        expires_at,
                        claim: allot_domain::Claim::parse(&claim),
                        auth_error: auth_error.map(|v| v as i32),
                        lease_until,
                        last_delta_sync_at: delta,
                        last_full_sync_at: full,
                        created_at,
                    })
                    .collect())
            }

            /// These tokens' rows, by name.
            pub async fn tokens_by_ids(&self, ids: &[i64]) -> Result<Vec<TokenRow>, StoreError> {
                let sql = format!("SELECT {TOKEN_COLUMNS} FROM tokens WHERE {} ORDER BY name", $crate::ids_in("id", Some(ids)));
                let rows = sqlx::query(&sql).fetch_all(&self.pool).await?;
                Ok(rows.iter().map(token_row).collect::<Result<_, _>>()?)
            }

            /// A page of tokens by name (of those in `ids_in`, when given), and how many there are.
            pub async fn tokens_page(&self, ids_in: Option<&[i64]>, limit: i64, offset: i64) -> Result<(Vec<TokenRow>, i64), StoreError> {
                let only = $crate::ids_in("id", ids_in);
                let total: i64 = sqlx::query_scalar(&format!("SELECT COUNT(*) FROM tokens WHERE {only}")).fetch_one(&self.pool).await?;
                let sql = format!("SELECT {TOKEN_COLUMNS} FROM tokens WHERE {only} ORDER BY name LIMIT $1 OFFSET $2");
                let rows = sqlx::query(&sql).bind(limit).bind(offset).fetch_all(&self.pool).await?;
                Ok((rows.iter().map(token_row).collect::<Result<_, _>>()?, total))
            }

            /// Every token's id, name and categories, by name (a filter's choices: thousands of
            /// tokens without reading their secrets and sync state).
            pub async fn token_labels(&self) -> Result<Vec<TokenLabel>, StoreError> {
                let rows: Vec<(i64, String, String)> = sqlx::query_as("SELECT id, name, categories FROM tokens ORDER BY name")
                    .fetch_all(&self.pool)
                    .await?;
                Ok(rows
                    .into_iter()
                    .map(|(id, name, categories)| TokenLabel { id, name, categories: parse_list(&categories) })
                    .collect())
            }

            /// The labels of these tokens only (the rows a page shows), by name.
            pub async fn token_labels_of(&self, ids: &[i64]) -> Result<Vec<TokenLabel>, StoreError> {
                let sql = format!("SELECT id, name, categories FROM tokens WHERE {} ORDER BY name", $crate::ids_in("id", Some(ids)));
                let rows: Vec<(i64, String, String)> = sqlx::query_as(&sql).fetch_all(&self.pool).await?;
                Ok(rows
                    .into_iter()
                    .map(|(id, name, categories)| TokenLabel { id, name, categories: parse_list(&categories) })
                    .collect())
            }

            /// Names of tokens (of those in `ids_in`, when given) containing `search`, any case,
            /// by name: the suggestions of a token field, a few at a time.
            pub async fn token_names_like(&self, search: &str, ids_in: Option<&[i64]>, limit: i64) -> Result<Vec<String>, StoreError> {
                let sql = format!(
                    "SELECT name FROM tokens WHERE {} AND LOWER(name) LIKE $1 ESCAPE '\\' ORDER BY name LIMIT $2",
                    $crate::ids_in("id", ids_in)
                );
                Ok(sqlx::query_scalar(&sql).bind($crate::like_contains(search)).bind(limit).fetch_all(&self.pool).await?)
            }

            /// Every category of the tokens (of those in `ids_in`, when given), each once whatever
            /// its case, alphabetically: a filter's choices, read without a row per token.
            pub async fn token_categories(&self, ids_in: Option<&[i64]>) -> Result<Vec<String>, StoreError> {
                let sql = format!("SELECT DISTINCT categories FROM tokens WHERE {}", $crate::ids_in("id", ids_in));
                let lists: Vec<String> = sqlx::query_scalar(&sql).fetch_all(&self.pool).await?;
                let mut all: Vec<String> = lists.iter().flat_map(|l| parse_list(l)).collect();
                all.sort_by_key(|c| c.to_lowercase());
                all.dedup_by(|a, b| a.eq_ignore_ascii_case(b));
                Ok(all)
            }

            /// A renewed token for the same location: new secret and expiry, errors cleared, data kept.
            pub async fn renew_token(&self, id: i64, secret: &[u8], expires_at: i64, org_name: &str, now: i64) -> Result<(), StoreError> {
                sqlx::query(
                    "UPDATE tokens SET secret = $2, expires_at = $3, org_name = $4, auth_error = NULL, last_error = NULL, \
                     last_error_at = NULL, updated_at = $5 WHERE id = $1",
                )
                .bind(id)
                .bind(secret)
                .bind(expires_at)
                .bind(org_name)
                .bind(now)
                .execute(&self.pool)
                .await?;
                Ok(())
            }

            pub async fn set_claim(&self, id: i64, claim: allot_domain::Claim, other_mdm: Option<&str>, now: i64) -> Result<(), StoreError> {
                sqlx::query("UPDATE tokens SET claim = $2, other_mdm = $3, updated_at = $4 WHERE id = $1")
                    .bind(id)
                    .bind(claim.as_str())
                    .bind(other_mdm)
                    .bind(now)
                    .execute(&self.pool)
                    .await?;
                Ok(())
            }

            pub async fn set_location(&self, id: i64, location_name: &str, country: &str) -> Result<(), StoreError> {
                sqlx::query("UPDATE tokens SET location_name = $2, country = $3 WHERE id = $1")
                    .bind(id)
                    .bind(location_name)
                    .bind(country)
                    .execute(&self.pool)
                    .await?;
                Ok(())
            }

            pub async fn set_notification_secret(&self, id: i64, secret: Option<&[u8]>) -> Result<(), StoreError> {
                sqlx::query("UPDATE tokens SET notification_secret = $2 WHERE id = $1").bind(id).bind(secret).execute(&self.pool).await?;
                Ok(())
            }

            /// Apple refused the token (9621 expired, 9625 revoked).
            pub async fn set_auth_error(&self, id: i64, number: Option<i32>, now: i64) -> Result<(), StoreError> {
                sqlx::query("UPDATE tokens SET auth_error = $2, updated_at = $3 WHERE id = $1")
                    .bind(id)
                    .bind(number.map(i64::from))
                    .bind(now)
                    .execute(&self.pool)
                    .await?;
                Ok(())
            }

            pub async fn set_last_error(&self, id: i64, error: Option<&str>, now: i64) -> Result<(), StoreError> {
                sqlx::query("UPDATE tokens SET last_error = $2, last_error_at = $3 WHERE id = $1")
                    .bind(id)
                    .bind(error)
                    .bind(error.map(|_| now))
                    .execute(&self.pool)
                    .await?;
                Ok(())
            }

            pub async fn set_full_sync_wanted(&self, id: i64, wanted: bool) -> Result<(), StoreError> {
                sqlx::query("UPDATE tokens SET full_sync_wanted = $2 WHERE id = $1").bind(id).bind(wanted).execute(&self.pool).await?;
                Ok(())
            }

            /// A sync finished: record versions for the next delta, when, and the new sync serial.
            pub async fn mark_synced(
                &self,
                id: i64,
                full: bool,
                assignments_version: Option<&str>,
                users_version: Option<&str>,
                serial: i64,
                now: i64,
            ) -> Result<(), StoreError> {
                // A full sync is also the latest delta: both times move.
                let full_at = if full { "last_full_sync_at = $5," } else { "" };
                let sql = format!(
                    "UPDATE tokens SET assignments_version = $2, users_version = $3, sync_serial = $4, {full_at} \
                     last_delta_sync_at = $5, last_error = NULL, last_error_at = NULL, auth_error = NULL, \
                     full_sync_wanted = CASE WHEN $6 THEN FALSE ELSE full_sync_wanted END WHERE id = $1"
                );
                sqlx::query(&sql)
                    .bind(id)
                    .bind(assignments_version)
                    .bind(users_version)
                    .bind(serial)
                    .bind(now)
                    .bind(full)
                    .execute(&self.pool)
                    .await?;
                Ok(())
            }

            pub async fn delete_token(&self, id: i64) -> Result<bool, StoreError> {
                let mut tx = self.write_tx().await?;
                // Children first: one statement each, rather than relying on cascades row by row.
                for table in ["assignments", "assets", "apple_users", "notifications_seen", "sync_runs"] {
                    sqlx::query(&format!("DELETE FROM {table} WHERE token_id = $1")).bind(id).execute(&mut *tx).await?;
                }
                let n = sqlx::query("DELETE FROM tokens WHERE id = $1").bind(id).execute(&mut *tx).await?.rows_affected();
                tx.commit().await?;
                Ok(n > 0)
            }

            /// Takes the token's sync lease if it is free or expired, or renews it for the run that
            /// holds it (`owner` names one run): only one sync of a token runs at a time, within an
            /// instance and across every instance sharing the database.
            pub async fn try_lease(&self, id: i64, owner: &str, now: i64, until: i64) -> Result<bool, StoreError> {
                let n = sqlx::query(
                    "UPDATE tokens SET lease_owner = $2, lease_until = $4 WHERE id = $1 \
                     AND (lease_until IS NULL OR lease_until < $3 OR lease_owner = $2)",
                )
                .bind(id)
                .bind(owner)
                .bind(now)
                .bind(until)
                .execute(&self.pool)
                .await?
                .rows_affected();
                Ok(n == 1)
            }

            /// Frees the sync leases of a process that used this instance's name before (it died:
            /// one process runs per data folder), so a restarted instance syncs at once.
            pub async fn release_leases_of_instance(&self, instance: &str) -> Result<u64, StoreError> {
                let prefix = format!("{instance}/");
                Ok(sqlx::query(
                    "UPDATE tokens SET lease_owner = NULL, lease_until = NULL \
                     WHERE substr(lease_owner, 1, $2) = $1",
                )
                .bind(&prefix)
                .bind(prefix.chars().count() as i32)
                .execute(&self.pool)
                .await?
                .rows_affected())
            }

            pub async fn release_lease(&self, id: i64, owner: &str) -> Result<(), StoreError> {
                sqlx::query("UPDATE tokens SET lease_owner = NULL, lease_until = NULL WHERE id = $1 AND lease_owner = $2")
                    .bind(id)
                    .bind(owner)
                    .execute(&self.pool)
                    .await?;
                Ok(())
            }

            // ---- assets ----

            pub async fn upsert_assets(&self, token_id: i64, rows: &[AssetRow], generation: i64, now: i64) -> Result<(), StoreError> {
                let mut tx = self.write_tx().await?;
                for chunk in rows.chunks(BATCH) {
                    let sql = format!(
                        "INSERT INTO assets (token_id, adam_id, pricing, product_type, total, assigned, available, retired, \
                         device_assignable, revocable, unlimited, platforms, generation, updated_at) VALUES {} \
                         ON CONFLICT (token_id, adam_id, pricing) DO UPDATE SET product_type = excluded.product_type, \
                         total = excluded.total, assigned = excluded.assigned, available = excluded.available, \
                         retired = excluded.retired, device_assignable = excluded.device_assignable, \
                         revocable = excluded.revocable, unlimited = excluded.unlimited, platforms = excluded.platforms, \
                         generation = excluded.generation, updated_at = excluded.updated_at",
                        values(chunk.len(), 14, 1)
                    );
                    let mut q = sqlx::query(&sql);
                    for a in chunk {
                        q = q
                            .bind(token_id)
                            .bind(&a.adam_id)
                            .bind(&a.pricing)
                            .bind(&a.product_type)
                            .bind(a.total)
                            .bind(a.assigned)
                            .bind(a.available)
                            .bind(a.retired)
                            .bind(a.device_assignable)
                            .bind(a.revocable)
                            .bind(a.unlimited)
                            .bind(json_list(&a.platforms))
                            .bind(generation)
                            .bind(now);
                    }
                    q.execute(&mut *tx).await?;
                }
                // New rows sort by their name (or adamId until it is known) and their token's.
                let (keys, _) = $crate::queries::asset_keys();
                sqlx::query(&format!(
                    "UPDATE assets SET {keys}, token_name = (SELECT t.name FROM tokens t WHERE t.id = $1) \
                     WHERE token_id = $1 AND name_key = ''"
                ))
                    .bind(token_id)
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                Ok(())
            }

            /// Removes assets (and their assignments) not seen by the sync of `generation`.
            pub async fn delete_stale_assets(&self, token_id: i64, generation: i64) -> Result<u64, StoreError> {
                let mut tx = self.write_tx().await?;
                sqlx::query(
                    "DELETE FROM assignments WHERE token_id = $1 AND EXISTS (SELECT 1 FROM assets s WHERE s.token_id = $1 \
                     AND s.adam_id = assignments.adam_id AND s.pricing = assignments.pricing AND s.generation < $2)",
                )
                .bind(token_id)
                .bind(generation)
                .execute(&mut *tx)
                .await?;
                let n = sqlx::query("DELETE FROM assets WHERE token_id = $1 AND generation < $2")
                    .bind(token_id)
                    .bind(generation)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                tx.commit().await?;
                Ok(n)
            }

            pub async fn assets(&self, token_id: i64) -> Result<Vec<AssetRow>, StoreError> {
                let rows = sqlx::query(&format!("SELECT {ASSET_COLUMNS} FROM assets WHERE token_id = $1 ORDER BY adam_id, pricing"))
                    .bind(token_id)
                    .fetch_all(&self.pool)
                    .await?;
                Ok(rows.iter().map(asset_row).collect::<Result<_, _>>()?)
            }

            /// Every token's row of one app or book: (token id, its counts), by token id.
            pub async fn asset_holdings(&self, adam_id: &str, pricing: &str) -> Result<Vec<(i64, AssetRow)>, StoreError> {
                let rows = sqlx::query(&format!(
                    "SELECT token_id, {ASSET_COLUMNS} FROM assets WHERE adam_id = $1 AND pricing = $2 ORDER BY token_id"
                ))
                .bind(adam_id)
                .bind(pricing)
                .fetch_all(&self.pool)
                .await?;
                rows.iter()
                    .map(|r| Ok((r.try_get("token_id")?, asset_row(r)?)))
                    .collect::<Result<_, sqlx::Error>>()
                    .map_err(Into::into)
            }

            /// ASSET_COUNT: licenses bought or refunded. False when the asset is not known yet.
            pub async fn adjust_asset_total(&self, token_id: i64, adam_id: &str, pricing: &str, delta: i64, now: i64) -> Result<bool, StoreError> {
                let n = sqlx::query(
                    // Never below zero: a refund we missed the purchase of is corrected by the
                    // next sync, not shown as negative licenses.
                    "UPDATE assets SET total = CASE WHEN total + $4 < 0 THEN 0 ELSE total + $4 END, \
                     available = CASE WHEN available + $4 < 0 THEN 0 ELSE available + $4 END, updated_at = $5 \
                     WHERE token_id = $1 AND adam_id = $2 AND pricing = $3 AND NOT unlimited",
                )
                .bind(token_id)
                .bind(adam_id)
                .bind(pricing)
                .bind(delta)
                .bind(now)
                .execute(&self.pool)
                .await?
                .rows_affected();
                Ok(n == 1)
            }

            // ---- assignments ----

            pub async fn delete_stale_assignments(&self, token_id: i64, generation: i64) -> Result<u64, StoreError> {
                Ok(sqlx::query("DELETE FROM assignments WHERE token_id = $1 AND generation < $2")
                    .bind(token_id)
                    .bind(generation)
                    .execute(&self.pool)
                    .await?
                    .rows_affected())
            }

            /// Removes one asset's assignments not refreshed at `generation` or later.
            pub async fn delete_stale_asset_assignments(
                &self,
                token_id: i64,
                adam_id: &str,
                pricing: &str,
                generation: i64,
            ) -> Result<u64, StoreError> {
                Ok(sqlx::query("DELETE FROM assignments WHERE token_id = $1 AND adam_id = $2 AND pricing = $3 AND generation < $4")
                    .bind(token_id)
                    .bind(adam_id)
                    .bind(pricing)
                    .bind(generation)
                    .execute(&self.pool)
                    .await?
                    .rows_affected())
            }

            pub async fn count_assignments(&self, token_id: i64) -> Result<i64, StoreError> {
                Ok(sqlx::query_scalar("SELECT COUNT(*) FROM assignments WHERE token_id = $1").bind(token_id).fetch_one(&self.pool).await?)
            }

            /// Assignments held locally per asset.
            pub async fn assignment_counts(&self, token_id: i64) -> Result<Vec<(String, String, i64)>, StoreError> {
                let rows = sqlx::query("SELECT adam_id, pricing, COUNT(*) AS n FROM assignments WHERE token_id = $1 GROUP BY adam_id, pricing")
                    .bind(token_id)
                    .fetch_all(&self.pool)
                    .await?;
                rows.iter()
                    .map(|r| Ok((r.try_get("adam_id")?, r.try_get("pricing")?, r.try_get("n")?)))
                    .collect::<Result<_, sqlx::Error>>()
                    .map_err(Into::into)
            }

            /// Assignments from a notification (up to a hundred), in one transaction; how many were
            /// new. Counts move with them, and the claims that asked for them end here: their
            /// targets are licensed and their reservations released (else a license would count
            /// twice, reserved and assigned, until the deployment's next step).
            pub async fn add_assignments(&self, token_id: i64, rows: &[AssignmentRow], generation: i64, now: i64) -> Result<u64, StoreError> {
                let mut tx = self.write_tx().await?;
                let n = add_assignments_in(&mut tx, token_id, rows, generation).await?;
                let by_asset = $crate::queries::holders_by_asset(rows);
                let sql = format!(
                    "UPDATE deployment_targets SET status = 'license_assigned', event_id = NULL, detail = NULL, updated_at = $2, \
                     claimed = TRUE, confirmed_at = $2 \
                     WHERE status = 'license_requested' AND token_id = $1 \
                     AND (license, holder) IN (SELECT j.value->>0, j.value->>1 FROM {}) \
                     AND deployment_id IN (SELECT id FROM deployments WHERE adam_id = $4 AND pricing = $5)",
                    Self::json_rows(3)
                );
                for ((adam_id, pricing), holders) in by_asset {
                    let json = serde_json::to_string(&holders).map_err(|e| StoreError::Config(e.to_string()))?;
                    let ended = sqlx::query(&sql)
                        .bind(token_id)
                        .bind(now)
                        .bind(json)
                        .bind(adam_id)
                        .bind(pricing)
                        .execute(&mut *tx)
                        .await?
                        .rows_affected();
                    if ended > 0 {
                        sqlx::query($crate::queries::RELEASE_RESERVED)
                        .bind(token_id)
                        .bind(adam_id)
                        .bind(pricing)
                        .bind(ended as i64)
                        .execute(&mut *tx)
                        .await?;
                    }
                }
                tx.commit().await?;
                Ok(n)
            }

            /// Assignments a notification says are gone, in one transaction; how many were here.
            /// Counts move with them.
            pub async fn remove_assignments(&self, token_id: i64, rows: &[AssignmentRow]) -> Result<u64, StoreError> {
                let mut tx = self.write_tx().await?;
                let removed = remove_assignments_in(&mut tx, token_id, rows).await?;
                tx.commit().await?;
                Ok(removed)
            }

            /// One assignment from a notification; true if it was new. Counts move with it.
            pub async fn add_assignment(&self, token_id: i64, a: &AssignmentRow, generation: i64) -> Result<bool, StoreError> {
                let mut tx = self.write_tx().await?;
                let new = add_assignment_in(&mut tx, token_id, a, generation).await?;
                tx.commit().await?;
                Ok(new)
            }

            /// One assignment removed (a notification); true if it was there. Counts move with it.
            pub async fn remove_assignment(&self, token_id: i64, a: &AssignmentRow) -> Result<bool, StoreError> {
                let mut tx = self.write_tx().await?;
                let gone = remove_assignment_in(&mut tx, token_id, a).await?;
                tx.commit().await?;
                Ok(gone)
            }

            /// Every assignment of a token, in a stable order (tests, exports).
            pub async fn assignments(&self, token_id: i64) -> Result<Vec<AssignmentRow>, StoreError> {
                let rows = sqlx::query(
                    "SELECT adam_id, pricing, holder_kind, holder FROM assignments WHERE token_id = $1 \
                     ORDER BY adam_id, pricing, holder_kind, holder",
                )
                .bind(token_id)
                .fetch_all(&self.pool)
                .await?;
                rows.iter()
                    .map(|r| {
                        Ok(AssignmentRow {
                            adam_id: r.try_get("adam_id")?,
                            pricing: r.try_get("pricing")?,
                            holder: Holder::from_parts(&r.try_get::<String, _>("holder_kind")?, r.try_get("holder")?),
                        })
                    })
                    .collect::<Result<_, sqlx::Error>>()
                    .map_err(Into::into)
            }

            /// The generation to give rows that arrive between syncs (notifications): above every
            /// step of the latest run, so that a sync running now does not delete them as stale.
            pub async fn current_generation(&self, token_id: i64) -> Result<i64, StoreError> {
                let run: i64 = sqlx::query_scalar("SELECT COALESCE(MAX(id), 0) FROM sync_runs WHERE token_id = $1")
                    .bind(token_id)
                    .fetch_one(&self.pool)
                    .await?;
                Ok($crate::generation(run, $crate::GENERATION_STEPS - 1))
            }

            pub async fn set_sync_run_kind(&self, run: i64, kind: &str, reason: &str) -> Result<(), StoreError> {
                sqlx::query("UPDATE sync_runs SET kind = $2, reason = $3 WHERE id = $1").bind(run).bind(kind).bind(reason).execute(&self.pool).await?;
                Ok(())
            }

            // ---- users ----

            pub async fn upsert_users(&self, token_id: i64, rows: &[UserRow], generation: i64) -> Result<(), StoreError> {
                let mut tx = self.write_tx().await?;
                for chunk in rows.chunks(BATCH) {
                    let sql = format!(
                        "INSERT INTO apple_users (token_id, client_user_id, status, email, invite_code, id_hash, generation) VALUES {} \
                         ON CONFLICT (token_id, client_user_id) DO UPDATE SET status = excluded.status, email = excluded.email, \
                         invite_code = excluded.invite_code, id_hash = excluded.id_hash, generation = excluded.generation",
                        values(chunk.len(), 7, 1)
                    );
                    let mut q = sqlx::query(&sql);
                    for u in chunk {
                        q = q.bind(token_id).bind(&u.client_user_id).bind(&u.status).bind(&u.email).bind(&u.invite_code).bind(&u.id_hash).bind(generation);
                    }
                    q.execute(&mut *tx).await?;
                }
                tx.commit().await?;
                Ok(())
            }

            pub async fn delete_stale_users(&self, token_id: i64, generation: i64) -> Result<u64, StoreError> {
                Ok(sqlx::query("DELETE FROM apple_users WHERE token_id = $1 AND generation < $2")
                    .bind(token_id)
                    .bind(generation)
                    .execute(&self.pool)
                    .await?
                    .rows_affected())
            }

            pub async fn users(&self, token_id: i64) -> Result<Vec<UserRow>, StoreError> {
                let rows = sqlx::query(
                    "SELECT client_user_id, status, email, invite_code, id_hash FROM apple_users WHERE token_id = $1 ORDER BY client_user_id",
                )
                .bind(token_id)
                .fetch_all(&self.pool)
                .await?;
                rows.iter()
                    .map(|r| {
                        Ok(UserRow {
                            client_user_id: r.try_get("client_user_id")?,
                            status: r.try_get("status")?,
                            email: r.try_get("email")?,
                            invite_code: r.try_get("invite_code")?,
                            id_hash: r.try_get("id_hash")?,
                        })
                    })
                    .collect::<Result<_, sqlx::Error>>()
                    .map_err(Into::into)
            }

            // ---- app metadata ----

            pub async fn upsert_metadata(&self, rows: &[MetadataRow], now: i64) -> Result<(), StoreError> {
                for chunk in rows.chunks(BATCH) {
                    let sql = format!(
                        "INSERT INTO app_metadata (adam_id, name, bundle_id, icon_url, platforms, version, kind, artist, genre, \
                         device_licensing, fetched_at, external_version_id, minimum_os_version, custom_app, source, storefront) \
                         VALUES {} ON CONFLICT (adam_id) DO UPDATE SET name = excluded.name, \
                         bundle_id = excluded.bundle_id, icon_url = excluded.icon_url, platforms = excluded.platforms, \
                         version = excluded.version, kind = excluded.kind, artist = excluded.artist, genre = excluded.genre, \
                         device_licensing = excluded.device_licensing, fetched_at = excluded.fetched_at, \
                         external_version_id = excluded.external_version_id, \
                         minimum_os_version = excluded.minimum_os_version, custom_app = excluded.custom_app, \
                         source = excluded.source, storefront = excluded.storefront",
                        values(chunk.len(), 16, 1)
                    );
                    let mut q = sqlx::query(&sql);
                    for m in chunk {
                        q = q
                            .bind(&m.adam_id)
                            .bind(&m.name)
                            .bind(&m.bundle_id)
                            .bind(&m.icon_url)
                            .bind(json_list(&m.platforms))
                            .bind(&m.version)
                            .bind(&m.kind)
                            .bind(&m.artist)
                            .bind(&m.genre)
                            .bind(m.device_licensing)
                            .bind(now)
                            .bind(m.external_version_id)
                            .bind(&m.minimum_os_version)
                            .bind(m.custom_app)
                            .bind(if m.source.is_empty() { "lookup" } else { m.source.as_str() })
                            .bind(&m.storefront);
                    }
                    let mut tx = self.write_tx().await?;
                    q.execute(&mut *tx).await?;
                    // The license list's order follows a name that arrived or changed.
                    let ids: Vec<&str> = chunk.iter().map(|m| m.adam_id.as_str()).collect();
                    let (keys, stale) = $crate::queries::asset_keys();
                    let sql = format!(
                        "UPDATE assets SET {keys} WHERE adam_id IN ({}) AND {stale}",
                        (1..=ids.len()).map(|i| format!("${i}")).collect::<Vec<_>>().join(",")
                    );
                    let mut q = sqlx::query(&sql);
                    for id in ids {
                        q = q.bind(id);
                    }
                    q.execute(&mut *tx).await?;
                    tx.commit().await?;
                }
                Ok(())
            }

            /// adamIds of a token's assets whose metadata is missing or older than `older_than`, with
            /// their product type (`App`, `Book`).
            pub async fn metadata_due(&self, token_id: i64, older_than: i64) -> Result<Vec<(String, String)>, StoreError> {
                Ok(sqlx::query_as(
                    "SELECT a.adam_id, MIN(a.product_type) FROM assets a LEFT JOIN app_metadata m ON m.adam_id = a.adam_id \
                     WHERE a.token_id = $1 AND (m.adam_id IS NULL OR m.fetched_at < $2) GROUP BY a.adam_id ORDER BY a.adam_id",
                )
                .bind(token_id)
                .bind(older_than)
                .fetch_all(&self.pool)
                .await?)
            }

            pub async fn metadata(&self, adam_id: &str) -> Result<Option<MetadataRow>, StoreError> {
                let row = sqlx::query(
                    "SELECT adam_id, name, bundle_id, icon_url, platforms, version, kind, artist, genre, device_licensing, external_version_id, \
                     minimum_os_version, custom_app, source, storefront, fetched_at FROM app_metadata WHERE adam_id = $1",
                )
                .bind(adam_id)
                .fetch_optional(&self.pool)
                .await?;
                row.map(|r| {
                    Ok(MetadataRow {
                        adam_id: r.try_get("adam_id")?,
                        name: r.try_get("name")?,
                        bundle_id: r.try_get("bundle_id")?,
                        icon_url: r.try_get("icon_url")?,
                        platforms: parse_list(&r.try_get::<String, _>("platforms")?),
                        version: r.try_get("version")?,
                        kind: r.try_get("kind")?,
                        artist: r.try_get("artist")?,
                        genre: r.try_get("genre")?,
                        device_licensing: r.try_get("device_licensing")?,
                        external_version_id: r.try_get("external_version_id")?,
                        minimum_os_version: r.try_get("minimum_os_version")?,
                        custom_app: r.try_get("custom_app")?,
                        source: r.try_get("source")?,
                        storefront: r.try_get("storefront")?,
                        fetched_at: r.try_get("fetched_at")?,
                    })
                })
                .transpose()
                .map_err(|e: sqlx::Error| e.into())
            }

            // ---- notifications ----

            /// Records a notification id; false if it was seen before (a duplicate delivery).
            pub async fn mark_notification_seen(&self, id: &str, token_id: i64, kind: &str, now: i64) -> Result<bool, StoreError> {
                let n = sqlx::query(
                    "INSERT INTO notifications_seen (notification_id, token_id, kind, received_at) VALUES ($1,$2,$3,$4) \
                     ON CONFLICT (notification_id) DO NOTHING",
                )
                .bind(id)
                .bind(token_id)
                .bind(kind)
                .bind(now)
                .execute(&self.pool)
                .await?
                .rows_affected();
                Ok(n == 1)
            }

            /// Undoes `mark_notification_seen` for a notification that could not be applied.
            pub async fn forget_notification(&self, id: &str) -> Result<(), StoreError> {
                sqlx::query("DELETE FROM notifications_seen WHERE notification_id = $1").bind(id).execute(&self.pool).await?;
                Ok(())
            }

            // ---- sync runs ----

            pub async fn start_sync_run(&self, token_id: i64, kind: &str, reason: &str, now: i64) -> Result<i64, StoreError> {
                Ok(sqlx::query_scalar(
                    "INSERT INTO sync_runs (token_id, kind, reason, status, started_at) VALUES ($1,$2,$3,'running',$4) RETURNING id",
                )
                .bind(token_id)
                .bind(kind)
                .bind(reason)
                .bind(now)
                .fetch_one(&self.pool)
                .await?)
            }

            pub async fn sync_progress(&self, run: i64, pages: i64, pages_total: i64) -> Result<(), StoreError> {
                sqlx::query("UPDATE sync_runs SET pages = $2, pages_total = $3 WHERE id = $1")
                    .bind(run)
                    .bind(pages)
                    .bind(pages_total)
                    .execute(&self.pool)
                    .await?;
                Ok(())
            }

            pub async fn finish_sync_run(&self, run: i64, status: &str, counts: SyncCounts, error: Option<&str>, now: i64) -> Result<(), StoreError> {
                sqlx::query(
                    "UPDATE sync_runs SET status = $2, assets_changed = $3, assignments_added = $4, assignments_removed = $5, \
                     users_changed = $6, error = $7, finished_at = $8 WHERE id = $1",
                )
                .bind(run)
                .bind(status)
                .bind(counts.assets_changed)
                .bind(counts.assignments_added)
                .bind(counts.assignments_removed)
                .bind(counts.users_changed)
                .bind(error)
                .bind(now)
                .execute(&self.pool)
                .await?;
                Ok(())
            }

            pub async fn sync_run(&self, id: i64) -> Result<Option<SyncRun>, StoreError> {
                let sql = format!("SELECT {RUN_COLUMNS} FROM sync_runs WHERE id = $1");
                let row = sqlx::query(&sql).bind(id).fetch_optional(&self.pool).await?;
                Ok(row.as_ref().map(run_row).transpose()?)
            }

            pub async fn latest_sync_run(&self, token_id: i64) -> Result<Option<SyncRun>, StoreError> {
                let sql = format!("SELECT {RUN_COLUMNS} FROM sync_runs WHERE token_id = $1 ORDER BY id DESC LIMIT 1");
                let row = sqlx::query(&sql).bind(token_id).fetch_optional(&self.pool).await?;
                Ok(row.as_ref().map(run_row).transpose()?)
            }

            /// The status of every token's latest run, where it says something about the token's
            /// state (`running`, `failed`): what judging thousands of tokens needs, in one query.
            pub async fn latest_sync_statuses(&self) -> Result<std::collections::HashMap<i64, String>, StoreError> {
                let rows: Vec<(i64, String)> = sqlx::query_as(
                    "SELECT token_id, status FROM sync_runs WHERE id IN (SELECT MAX(id) FROM sync_runs GROUP BY token_id) \
                     AND status IN ('running', 'failed')",
                )
                .fetch_all(&self.pool)
                .await?;
                Ok(rows.into_iter().collect())
            }

            /// The latest run of each of these tokens, in one query (a page of a token list).
            pub async fn latest_sync_runs_of(&self, ids: &[i64]) -> Result<Vec<SyncRun>, StoreError> {
                let sql = format!(
                    "SELECT {RUN_COLUMNS} FROM sync_runs WHERE id IN (SELECT MAX(id) FROM sync_runs WHERE {} GROUP BY token_id)",
                    $crate::ids_in("token_id", Some(ids))
                );
                let rows = sqlx::query(&sql).fetch_all(&self.pool).await?;
                Ok(rows.iter().map(run_row).collect::<Result<_, _>>()?)
            }

            /// Runs left `running` by a process that died: their token's lease has expired.
            pub async fn interrupt_abandoned_runs(&self, now: i64) -> Result<u64, StoreError> {
                Ok(sqlx::query(
                    "UPDATE sync_runs SET status = 'interrupted', finished_at = $1, error = 'the process stopped during the sync' \
                     WHERE status = 'running' AND token_id IN (SELECT id FROM tokens WHERE lease_until IS NULL OR lease_until < $1)",
                )
                .bind(now)
                .execute(&self.pool)
                .await?
                .rows_affected())
            }

            // ---- API keys ----

            pub async fn insert_api_key(&self, name: &str, key_hash: &str, role: &str, scope: Option<&str>, now: i64) -> Result<i64, StoreError> {
                sqlx::query_scalar("INSERT INTO api_keys (name, key_hash, role, scope, created_at) VALUES ($1,$2,$3,$4,$5) RETURNING id")
                    .bind(name)
                    .bind(key_hash)
                    .bind(role)
                    .bind(scope)
                    .bind(now)
                    .fetch_one(&self.pool)
                    .await
                    .map_err(StoreError::from_insert)
            }

            /// The key configured by ALLOT_ADMIN_API_KEY: recorded as such, and every key that
            /// setting named before is revoked (changing the setting rotates the key).
            pub async fn insert_config_api_key(&self, key_hash: &str, now: i64) -> Result<i64, StoreError> {
                let mut tx = self.write_tx().await?;
                sqlx::query("UPDATE api_keys SET revoked_at = $1 WHERE from_config AND revoked_at IS NULL")
                    .bind(now)
                    .execute(&mut *tx)
                    .await?;
                let id: i64 = sqlx::query_scalar(
                    "INSERT INTO api_keys (name, key_hash, role, created_at, from_config) \
                     VALUES ('admin (ALLOT_ADMIN_API_KEY)', $1, 'admin', $2, TRUE) RETURNING id",
                )
                .bind(key_hash)
                .bind(now)
                .fetch_one(&mut *tx)
                .await
                .map_err(StoreError::from_insert)?;
                tx.commit().await?;
                Ok(id)
            }

            /// The key with this hash, revoked or not.
            pub async fn api_key_by_hash(&self, key_hash: &str) -> Result<Option<ApiKeyRow>, StoreError> {
                let sql = format!("SELECT {API_KEY_COLUMNS} FROM api_keys WHERE key_hash = $1");
                let row = sqlx::query(&sql).bind(key_hash).fetch_optional(&self.pool).await?;
                Ok(row.as_ref().map(api_key_row).transpose()?)
            }

            /// Every key, newest first (hashes are never returned).
            pub async fn api_keys(&self) -> Result<Vec<ApiKeyRow>, StoreError> {
                let sql = format!("SELECT {API_KEY_COLUMNS} FROM api_keys ORDER BY id DESC");
                let rows = sqlx::query(&sql).fetch_all(&self.pool).await?;
                Ok(rows.iter().map(api_key_row).collect::<Result<_, _>>()?)
            }

            /// Revokes a key; false when there is none or it was revoked already.
            pub async fn revoke_api_key(&self, id: i64, now: i64) -> Result<bool, StoreError> {
                let n = sqlx::query("UPDATE api_keys SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL")
                    .bind(id)
                    .bind(now)
                    .execute(&self.pool)
                    .await?
                    .rows_affected();
                Ok(n == 1)
            }

            /// A key's role and scope; false when there is no such key or it was revoked.
            pub async fn set_api_key_access(&self, id: i64, role: &str, scope: Option<&str>) -> Result<bool, StoreError> {
                let n = sqlx::query("UPDATE api_keys SET role = $2, scope = $3 WHERE id = $1 AND revoked_at IS NULL")
                    .bind(id)
                    .bind(role)
                    .bind(scope)
                    .execute(&self.pool)
                    .await?
                    .rows_affected();
                Ok(n == 1)
            }

            /// Records a key's use, at most once a minute (not a write per request).
            pub async fn touch_api_key(&self, id: i64, now: i64) -> Result<(), StoreError> {
                sqlx::query("UPDATE api_keys SET last_used_at = $2 WHERE id = $1 AND (last_used_at IS NULL OR last_used_at < $3)")
                    .bind(id)
                    .bind(now)
                    .bind(now - 60_000)
                    .execute(&self.pool)
                    .await?;
                Ok(())
            }

            pub async fn count_api_keys(&self) -> Result<i64, StoreError> {
                Ok(sqlx::query_scalar("SELECT COUNT(*) FROM api_keys").fetch_one(&self.pool).await?)
            }

            // ---- license information for store apps ----

            pub async fn app_licenses(&self, f: &AppFilter) -> Result<(Vec<AppLicense>, i64), StoreError> {
                // A page is found in two steps: the keys of its rows, read in the sort's index
                // (which holds the key, so rows skipped by the offset are never read), then those
                // rows with their token and metadata. The tokens are joined only for a category.
                let (search_on, search) = match f.search.as_deref() {
                    Some(s) => {
                        let (condition, value) = Self::asset_search(s);
                        (condition, Some(value))
                    }
                    None => ("$2 IS NULL", None),
                };
                // Only the filters asked for are written as conditions (the others as `$n IS NULL`,
                // so each parameter is still named): a condition on a column outside the sort's
                // index, even one that is always true, makes every skipped row be read.
                let only = |on: bool, condition: &'static str, off: &'static str| if on { condition } else { off };
                let from = format!(
                    "FROM assets a {} WHERE {} AND {} AND {search_on} AND {} AND {} AND {} AND {}",
                    only(f.category.is_some(), "JOIN tokens t ON t.id = a.token_id", ""),
                    only(f.token_id.is_some(), "a.token_id = $1", "$1 IS NULL"),
                    $crate::ids_in("a.token_id", f.tokens_in.as_deref()),
                    only(f.product_type.is_some(), "a.product_type = $3", "$3 IS NULL"),
                    only(f.platform.is_some(), "a.platforms LIKE $6", "$6 IS NULL"),
                    only(f.category.is_some(), "LOWER(t.categories) LIKE $7", "$7 IS NULL"),
                    // As the partial index `assets_low` is written, so that it serves it.
                    only(f.low, "$8 = 1 AND NOT a.unlimited AND a.total - a.available * 10 >= 0", "$8 = 0"),
                );
                // Lists are stored as JSON text: match the quoted element.
                let platform = f.platform.as_ref().map(|p| format!("%\"{}\"%", p.replace(['%', '_', '"'], "")));
                let category = f.category.as_ref().map(|c| format!("%\"{}\"%", c.to_lowercase().replace(['%', '_', '"'], "")));
                let low: i64 = f.low.into();
                let order = f.sort.order_by();
                let count_sql = format!("SELECT COUNT(*) {from}");
                let page_sql = format!(
                    "SELECT a.token_id, t.name AS token_name, t.program, a.adam_id, a.pricing, a.product_type, m.name, m.bundle_id, \
                     m.icon_url, a.platforms, a.total, a.assigned, a.available, a.unlimited, a.device_assignable, \
                     t.last_full_sync_at, t.last_delta_sync_at, \
                     (SELECT MAX(n.received_at) FROM notifications_seen n WHERE n.token_id = a.token_id) AS notified_at \
                     FROM (SELECT a.token_id, a.adam_id, a.pricing {from} ORDER BY {order} LIMIT $4 OFFSET $5) p \
                     JOIN assets a ON a.token_id = p.token_id AND a.adam_id = p.adam_id AND a.pricing = p.pricing \
                     JOIN tokens t ON t.id = a.token_id LEFT JOIN app_metadata m ON m.adam_id = a.adam_id ORDER BY {order}"
                );
                let mut answers = Vec::with_capacity(2);
                for sql in [&count_sql, &page_sql] {
                    answers.push(
                        sqlx::query(sql)
                            .bind(f.token_id)
                            .bind(&search)
                            .bind(&f.product_type)
                            .bind(f.limit)
                            .bind(f.offset)
                            .bind(&platform)
                            .bind(&category)
                            .bind(low)
                            .fetch_all(&self.pool)
                            .await?,
                    );
                }
                let rows = answers.pop().unwrap_or_default();
                let total: i64 = match answers.pop().unwrap_or_default().first() {
                    Some(r) => r.try_get(0)?,
                    None => 0,
                };
                let list = rows
                    .iter()
                    .map(|r| {
                        Ok(AppLicense {
                            token_id: r.try_get("token_id")?,
                            token_name: r.try_get("token_name")?,
                            program: r.try_get("program")?,
                            adam_id: r.try_get("adam_id")?,
                            pricing: r.try_get("pricing")?,
                            product_type: r.try_get("product_type")?,
                            name: r.try_get("name")?,
                            bundle_id: r.try_get("bundle_id")?,
                            icon_url: r.try_get("icon_url")?,
                            platforms: parse_list(&r.try_get::<String, _>("platforms")?),
                            total: r.try_get("total")?,
                            assigned: r.try_get("assigned")?,
                            available: r.try_get("available")?,
                            unlimited: r.try_get("unlimited")?,
                            device_assignable: r.try_get("device_assignable")?,
                            confirmed_at: [
                                r.try_get::<Option<i64>, _>("last_full_sync_at")?,
                                r.try_get("last_delta_sync_at")?,
                                r.try_get("notified_at")?,
                            ]
                            .into_iter()
                            .flatten()
                            .max(),
                        })
                    })
                    .collect::<Result<_, sqlx::Error>>()?;
                Ok((list, total))
            }
        }
    };
}

pub(crate) use impl_queries;

#[cfg(test)]
mod tests {
    #[test]
    fn values_numbers_parameters_row_by_row() {
        assert_eq!(super::values(2, 3, 1), "($1,$2,$3),($4,$5,$6)");
    }
}
