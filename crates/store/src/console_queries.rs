//! Queries of the web console (accounts, sessions, license history, reports), written once for
//! both backends like `queries.rs`.

macro_rules! impl_console_queries {
    ($store:ty) => {
        const ACCOUNT_COLUMNS: &str =
            "a.id, a.username, a.role, a.time_zone, a.scope, a.disabled_at, a.created_at, a.last_sign_in_at";

        fn account_row<R: sqlx::Row>(r: &R) -> Result<$crate::types::AccountRow, sqlx::Error>
        where
            for<'a> &'a str: sqlx::ColumnIndex<R>,
            for<'a> i64: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
            for<'a> String: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
        {
            Ok($crate::types::AccountRow {
                id: r.try_get("id")?,
                username: r.try_get("username")?,
                role: r.try_get("role")?,
                time_zone: r.try_get("time_zone")?,
                scope: r.try_get("scope")?,
                disabled_at: r.try_get("disabled_at")?,
                created_at: r.try_get("created_at")?,
                last_sign_in_at: r.try_get("last_sign_in_at")?,
            })
        }

        /// An account and the one more column a query selected `AS extra` (a hash, a CSRF token).
        fn account_with_extra<R: sqlx::Row>(r: &R) -> Result<($crate::types::AccountRow, String), sqlx::Error>
        where
            for<'a> &'a str: sqlx::ColumnIndex<R>,
            for<'a> i64: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
            for<'a> String: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
        {
            Ok((account_row(r)?, r.try_get("extra")?))
        }

        impl $store {
            pub async fn insert_account(&self, username: &str, password_hash: &str, role: &str, scope: Option<&str>, now: i64) -> Result<i64, StoreError> {
                sqlx::query_scalar("INSERT INTO console_accounts (username, password_hash, role, scope, created_at) VALUES ($1,$2,$3,$4,$5) RETURNING id")
                    .bind(username)
                    .bind(password_hash)
                    .bind(role)
                    .bind(scope)
                    .bind(now)
                    .fetch_one(&self.pool)
                    .await
                    .map_err(StoreError::from_insert)
            }

            pub async fn count_accounts(&self) -> Result<i64, StoreError> {
                Ok(sqlx::query_scalar("SELECT COUNT(*) FROM console_accounts").fetch_one(&self.pool).await?)
            }

            /// An account and its password hash, by user name.
            pub async fn account_by_username(&self, username: &str) -> Result<Option<($crate::types::AccountRow, String)>, StoreError> {
                let sql = format!("SELECT {ACCOUNT_COLUMNS}, a.password_hash AS extra FROM console_accounts a WHERE a.username = $1");
                let row = sqlx::query(&sql).bind(username).fetch_optional(&self.pool).await?;
                Ok(row.as_ref().map(account_with_extra).transpose()?)
            }

            /// Every console account, by name.
            pub async fn accounts(&self) -> Result<Vec<$crate::types::AccountRow>, StoreError> {
                let sql = format!("SELECT {ACCOUNT_COLUMNS} FROM console_accounts a ORDER BY a.username");
                let rows = sqlx::query(&sql).fetch_all(&self.pool).await?;
                Ok(rows.iter().map(account_row).collect::<Result<_, _>>()?)
            }

            pub async fn account(&self, id: i64) -> Result<Option<$crate::types::AccountRow>, StoreError> {
                let sql = format!("SELECT {ACCOUNT_COLUMNS} FROM console_accounts a WHERE a.id = $1");
                let row = sqlx::query(&sql).bind(id).fetch_optional(&self.pool).await?;
                Ok(row.as_ref().map(account_row).transpose()?)
            }

            /// An account's role, scope and whether it is disabled (which ends its sessions, in the
            /// same transaction); false when there is no such account.
            pub async fn set_account_access(&self, id: i64, role: &str, scope: Option<&str>, disabled_at: Option<i64>) -> Result<bool, StoreError> {
                let mut tx = self.write_tx().await?;
                let n = sqlx::query(
                    "UPDATE console_accounts SET role = $2, scope = $3, disabled_at = CASE WHEN $4 IS NULL THEN NULL ELSE COALESCE(disabled_at, $4) END WHERE id = $1",
                )
                .bind(id)
                .bind(role)
                .bind(scope)
                .bind(disabled_at)
                .execute(&mut *tx)
                .await?
                .rows_affected();
                if disabled_at.is_some() {
                    sqlx::query("DELETE FROM console_sessions WHERE account_id = $1").bind(id).execute(&mut *tx).await?;
                }
                tx.commit().await?;
                Ok(n == 1)
            }

            /// A new password (an administrator's reset): the account's sessions end with the old one.
            pub async fn set_account_password(&self, id: i64, password_hash: &str) -> Result<bool, StoreError> {
                let mut tx = self.write_tx().await?;
                let n = sqlx::query("UPDATE console_accounts SET password_hash = $2 WHERE id = $1")
                    .bind(id)
                    .bind(password_hash)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                sqlx::query("DELETE FROM console_sessions WHERE account_id = $1").bind(id).execute(&mut *tx).await?;
                tx.commit().await?;
                Ok(n == 1)
            }

            pub async fn record_sign_in(&self, id: i64, now: i64) -> Result<(), StoreError> {
                sqlx::query("UPDATE console_accounts SET last_sign_in_at = $2 WHERE id = $1").bind(id).bind(now).execute(&self.pool).await?;
                Ok(())
            }

            /// The time zone an account reads times in (`None`: the browser's).
            pub async fn set_account_time_zone(&self, id: i64, time_zone: Option<&str>) -> Result<(), StoreError> {
                sqlx::query("UPDATE console_accounts SET time_zone = $2 WHERE id = $1").bind(id).bind(time_zone).execute(&self.pool).await?;
                Ok(())
            }

            pub async fn insert_session(&self, token_hash: &str, account_id: i64, csrf: &str, expires_at: i64) -> Result<(), StoreError> {
                sqlx::query("INSERT INTO console_sessions (token_hash, account_id, csrf, expires_at) VALUES ($1,$2,$3,$4)")
                    .bind(token_hash)
                    .bind(account_id)
                    .bind(csrf)
                    .bind(expires_at)
                    .execute(&self.pool)
                    .await?;
                Ok(())
            }

            /// The live session with this hash: its account and CSRF token.
            pub async fn session(&self, token_hash: &str, now: i64) -> Result<Option<($crate::types::AccountRow, String)>, StoreError> {
                let sql = format!(
                    "SELECT {ACCOUNT_COLUMNS}, s.csrf AS extra FROM console_sessions s JOIN console_accounts a ON a.id = s.account_id \
                     WHERE s.token_hash = $1 AND s.expires_at > $2 AND a.disabled_at IS NULL"
                );
                let row = sqlx::query(&sql).bind(token_hash).bind(now).fetch_optional(&self.pool).await?;
                Ok(row.as_ref().map(account_with_extra).transpose()?)
            }

            /// Signs out (and clears expired sessions on the way).
            pub async fn delete_session(&self, token_hash: &str, now: i64) -> Result<(), StoreError> {
                sqlx::query("DELETE FROM console_sessions WHERE token_hash = $1 OR expires_at <= $2")
                    .bind(token_hash)
                    .bind(now)
                    .execute(&self.pool)
                    .await?;
                Ok(())
            }

            /// Records the counts of the token's assets that changed since their last record.
            pub async fn record_license_history(&self, token_id: i64, now: i64) -> Result<u64, StoreError> {
                Ok(sqlx::query(
                    "INSERT INTO license_history (token_id, adam_id, pricing, at, total, assigned) \
                     SELECT a.token_id, a.adam_id, a.pricing, $2, a.total, a.assigned FROM assets a \
                     WHERE a.token_id = $1 AND NOT EXISTS ( \
                       SELECT 1 FROM license_history h WHERE h.token_id = a.token_id AND h.adam_id = a.adam_id AND h.pricing = a.pricing \
                       AND h.total = a.total AND h.assigned = a.assigned \
                       AND h.at = (SELECT MAX(l.at) FROM license_history l WHERE l.token_id = a.token_id AND l.adam_id = a.adam_id AND l.pricing = a.pricing)) \
                     ON CONFLICT DO NOTHING",
                )
                .bind(token_id)
                .bind(now)
                .execute(&self.pool)
                .await?
                .rows_affected())
            }

            /// The same for one asset, after a notification moved its counts (so the chart moves
            /// between syncs too).
            pub async fn record_asset_history(&self, token_id: i64, adam_id: &str, pricing: &str, now: i64) -> Result<u64, StoreError> {
                Ok(sqlx::query(
                    "INSERT INTO license_history (token_id, adam_id, pricing, at, total, assigned) \
                     SELECT a.token_id, a.adam_id, a.pricing, $2, a.total, a.assigned FROM assets a \
                     WHERE a.token_id = $1 AND a.adam_id = $3 AND a.pricing = $4 AND NOT EXISTS ( \
                       SELECT 1 FROM license_history h WHERE h.token_id = a.token_id AND h.adam_id = a.adam_id AND h.pricing = a.pricing \
                       AND h.total = a.total AND h.assigned = a.assigned \
                       AND h.at = (SELECT MAX(l.at) FROM license_history l WHERE l.token_id = a.token_id AND l.adam_id = a.adam_id AND l.pricing = a.pricing)) \
                     ON CONFLICT DO NOTHING",
                )
                .bind(token_id)
                .bind(now)
                .bind(adam_id)
                .bind(pricing)
                .execute(&self.pool)
                .await?
                .rows_affected())
            }

            /// When the token last heard from Apple through a notification.
            pub async fn last_notification(&self, token_id: i64) -> Result<Option<i64>, StoreError> {
                Ok(sqlx::query_scalar("SELECT MAX(received_at) FROM notifications_seen WHERE token_id = $1")
                    .bind(token_id)
                    .fetch_one(&self.pool)
                    .await?)
            }

            /// An asset's counts over time, oldest first: (at, total, assigned).
            pub async fn license_history(&self, token_id: i64, adam_id: &str, pricing: &str) -> Result<Vec<(i64, i64, i64)>, StoreError> {
                Ok(sqlx::query_as(
                    "SELECT at, total, assigned FROM license_history WHERE token_id = $1 AND adam_id = $2 AND pricing = $3 ORDER BY at",
                )
                .bind(token_id)
                .bind(adam_id)
                .bind(pricing)
                .fetch_all(&self.pool)
                .await?)
            }

            /// Who holds licenses of an asset on a token, with the latest deployment status of each
            /// holder: (holder kind, holder, status, detail), a page at a time.
            pub async fn asset_assignments(
                &self,
                token_id: i64,
                adam_id: &str,
                pricing: &str,
                status: Option<&str>,
                limit: i64,
                offset: i64,
            ) -> Result<(Vec<$crate::types::AssignmentStatus>, i64), StoreError> {
                let from = "FROM assignments a LEFT JOIN ( \
                       SELECT t.holder, t.license, t.status, t.detail, ROW_NUMBER() OVER (PARTITION BY t.holder, t.license ORDER BY t.updated_at DESC) AS n \
                       FROM deployment_targets t JOIN deployments d ON d.id = t.deployment_id WHERE d.adam_id = $2 AND d.pricing = $3) s \
                     ON s.holder = a.holder AND s.license = a.holder_kind AND s.n = 1 \
                     WHERE a.token_id = $1 AND a.adam_id = $2 AND a.pricing = $3 AND ($4 IS NULL OR COALESCE(s.status, 'unknown') = $4)";
                let total: i64 = sqlx::query_scalar(&format!("SELECT COUNT(*) {from}"))
                    .bind(token_id)
                    .bind(adam_id)
                    .bind(pricing)
                    .bind(status)
                    .fetch_one(&self.pool)
                    .await?;
                // People by name and e-mail (Allot's), else the e-mail Apple knows.
                #[allow(clippy::type_complexity)]
                let rows: Vec<(String, String, Option<String>, Option<String>, Option<String>, Option<i64>)> = sqlx::query_as(&format!(
                    "SELECT a.holder_kind, a.holder, s.status, s.detail, \
                       CASE WHEN a.holder_kind <> 'user' THEN NULL \
                            ELSE COALESCE( \
                              (SELECT p.name || COALESCE(' <' || p.email || '>', '') FROM people p WHERE p.client_user_id = a.holder), \
                              (SELECT u.email FROM apple_users u WHERE u.token_id = a.token_id AND u.client_user_id = a.holder)) END, \
                       CASE WHEN a.holder_kind = 'user' THEN (SELECT p.id FROM people p WHERE p.client_user_id = a.holder) \
                            ELSE (SELECT dv.id FROM devices dv WHERE dv.serial_number = a.holder) END \
                     {from} ORDER BY a.holder_kind, a.holder LIMIT $5 OFFSET $6"
                ))
                .bind(token_id)
                .bind(adam_id)
                .bind(pricing)
                .bind(status)
                .bind(limit)
                .bind(offset)
                .fetch_all(&self.pool)
                .await?;
                Ok((
                    rows.into_iter()
                        .map(|(kind, holder, status, detail, holder_name, holder_id)| $crate::types::AssignmentStatus {
                            kind,
                            holder,
                            status,
                            detail,
                            holder_name,
                            holder_id,
                        })
                        .collect(),
                    total,
                ))
            }

            /// The apps and books deployments installed on a device (adamIds).
            /// For a page of the devices list, in four statements whatever its length: the device
            /// licenses each serial holds (serial, token, adamId), the apps Allot installed on each
            /// device (device id, adamId), the names of their people and of those apps.
            pub async fn device_page_details(
                &self,
                serials: &[String],
                device_ids: &[i64],
                person_ids: &[i64],
            ) -> Result<$crate::types::DevicePageDetails, StoreError> {
                let marks = |n: usize| (1..=n).map(|i| format!("${i}")).collect::<Vec<_>>().join(",");
                let mut out = $crate::types::DevicePageDetails::default();
                if !serials.is_empty() {
                    let sql = format!(
                        "SELECT holder, token_id, adam_id FROM assignments WHERE holder_kind = 'device' AND holder IN ({}) ORDER BY token_id, adam_id",
                        marks(serials.len())
                    );
                    let mut q = sqlx::query_as::<_, (String, i64, String)>(&sql);
                    for s in serials {
                        q = q.bind(s);
                    }
                    out.licenses = q.fetch_all(&self.pool).await?;
                }
                if !device_ids.is_empty() {
                    let sql = format!(
                        "SELECT DISTINCT t.member_id, d.adam_id FROM deployment_targets t JOIN deployments d ON d.id = t.deployment_id \
                         JOIN collections c ON c.id = d.collection_id \
                         WHERE c.kind = 'devices' AND t.status = 'installed' AND t.member_id IN ({}) ORDER BY t.member_id, d.adam_id",
                        marks(device_ids.len())
                    );
                    let mut q = sqlx::query_as::<_, (i64, String)>(&sql);
                    for id in device_ids {
                        q = q.bind(id);
                    }
                    out.installed = q.fetch_all(&self.pool).await?;
                }
                if !person_ids.is_empty() {
                    let sql = format!("SELECT id, name FROM people WHERE id IN ({})", marks(person_ids.len()));
                    let mut q = sqlx::query_as::<_, (i64, String)>(&sql);
                    for id in person_ids {
                        q = q.bind(id);
                    }
                    out.people = q.fetch_all(&self.pool).await?.into_iter().collect();
                }
                let mut adams: Vec<&str> = out
                    .licenses
                    .iter()
                    .map(|l| l.2.as_str())
                    .chain(out.installed.iter().map(|i| i.1.as_str()))
                    .collect();
                adams.sort_unstable();
                adams.dedup();
                if !adams.is_empty() {
                    let sql = format!("SELECT adam_id, name FROM app_metadata WHERE adam_id IN ({})", marks(adams.len()));
                    let mut q = sqlx::query_as::<_, (String, String)>(&sql);
                    for a in &adams {
                        q = q.bind(*a);
                    }
                    out.app_names = q.fetch_all(&self.pool).await?.into_iter().collect();
                }
                Ok(out)
            }

            pub async fn installed_on_device(&self, device_id: i64) -> Result<Vec<String>, StoreError> {
                Ok(sqlx::query_scalar(
                    "SELECT DISTINCT d.adam_id FROM deployment_targets t JOIN deployments d ON d.id = t.deployment_id \
                     JOIN collections c ON c.id = d.collection_id \
                     WHERE c.kind = 'devices' AND t.member_id = $1 AND t.status = 'installed' ORDER BY d.adam_id",
                )
                .bind(device_id)
                .fetch_all(&self.pool)
                .await?)
            }

            /// Licenses assigned by deployments but not installed since before `before`.
            pub async fn unused_licenses(&self, before: i64, limit: i64) -> Result<Vec<$crate::types::UnusedLicense>, StoreError> {
                let rows: Vec<(i64, String, String, Option<String>, Option<String>, String, i64)> = sqlx::query_as(
                    "SELECT t.deployment_id, d.adam_id, t.label, t.license, t.holder, t.status, t.updated_at \
                     FROM deployment_targets t JOIN deployments d ON d.id = t.deployment_id \
                     WHERE t.status IN ('license_assigned', 'install_sent', 'installing') AND t.updated_at <= $1 \
                     ORDER BY t.updated_at LIMIT $2",
                )
                .bind(before)
                .bind(limit)
                .fetch_all(&self.pool)
                .await?;
                Ok(rows
                    .into_iter()
                    .map(|(deployment_id, adam_id, label, license, holder, status, since)| $crate::types::UnusedLicense {
                        deployment_id,
                        adam_id,
                        label,
                        license,
                        holder,
                        status,
                        since,
                    })
                    .collect())
            }
        }
    };
}

pub(crate) use impl_console_queries;
