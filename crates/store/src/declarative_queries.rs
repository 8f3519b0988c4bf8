//! Declarative app management, per device: the apps its targets declare, the declarations token
//! it was last told of, and what its status reports (`app.managed.list`) said — written once for
//! both backends like `queries.rs`.

macro_rules! impl_declarative_queries {
    ($store:ty) => {
        impl $store {
            /// The apps declared to a device: its own targets (device collections) delivered by
            /// declaration that want the app there, of deployments in force. By adamId.
            pub async fn declared_apps(&self, device_id: i64) -> Result<Vec<$crate::inventory::DeclaredApp>, StoreError> {
                let rows = sqlx::query(
                    "SELECT d.adam_id, d.action, d.install_options, t.license FROM deployment_targets t \
                     JOIN deployments d ON d.id = t.deployment_id JOIN collections c ON c.id = d.collection_id \
                     WHERE c.kind = 'devices' AND t.member_id = $1 AND t.declarative AND d.ending IS NULL \
                     AND t.status IN ('install_sent', 'installing', 'installed', 'left') \
                     ORDER BY d.adam_id, d.id",
                )
                .bind(device_id)
                .fetch_all(&self.pool)
                .await?;
                let mut out: Vec<$crate::inventory::DeclaredApp> = Vec::new();
                for r in &rows {
                    let adam_id: String = r.try_get(0)?;
                    // One declaration per app: the oldest deployment's, as the intent rule has it.
                    if out.iter().any(|a| a.adam_id == adam_id) {
                        continue;
                    }
                    let options: String = r.try_get(2)?;
                    out.push($crate::inventory::DeclaredApp {
                        adam_id,
                        action: r.try_get(1)?,
                        options: serde_json::from_str(&options).unwrap_or_default(),
                        license: r.try_get(3)?,
                    });
                }
                Ok(out)
            }

            /// These devices' declarations may have changed: the next pass looks.
            pub async fn mark_declarations_dirty(&self, device_ids: &[i64], now: i64) -> Result<(), StoreError> {
                for chunk in device_ids.chunks(BATCH) {
                    let marks: Vec<String> = (0..chunk.len()).map(|i| format!("${}", i + 2)).collect();
                    let sql = format!(
                        "UPDATE devices SET declarations_dirty_at = $1 WHERE id IN ({})",
                        marks.join(",")
                    );
                    let mut q = sqlx::query(&sql).bind(now);
                    for id in chunk {
                        q = q.bind(*id);
                    }
                    q.execute(&self.pool).await?;
                }
                Ok(())
            }

            /// Devices with declarative targets changed since `since` (set-based statements such as
            /// superseding change targets without knowing of declarations) are marked.
            pub async fn mark_declarations_dirty_since(&self, since: i64, now: i64) -> Result<u64, StoreError> {
                Ok(sqlx::query(
                    "UPDATE devices SET declarations_dirty_at = $2 WHERE declarations_dirty_at IS NULL AND id IN \
                     (SELECT t.member_id FROM deployment_targets t JOIN deployments d ON d.id = t.deployment_id \
                      JOIN collections c ON c.id = d.collection_id \
                      WHERE t.declarative AND t.updated_at >= $1 AND c.kind = 'devices')",
                )
                .bind(since)
                .bind(now)
                .execute(&self.pool)
                .await?
                .rows_affected())
            }

            /// Devices whose declarations may have changed: id, enrollment id, the declarations
            /// token they were last told of, and when they were marked. Oldest first.
            pub async fn declarations_dirty(&self, limit: i64) -> Result<Vec<(i64, String, Option<String>, i64)>, StoreError> {
                let rows = sqlx::query(
                    "SELECT id, enrollment_id, declarations_token, declarations_dirty_at FROM devices \
                     WHERE declarations_dirty_at IS NOT NULL AND enrolled AND enrollment_id IS NOT NULL \
                     ORDER BY declarations_dirty_at, id LIMIT $1",
                )
                .bind(limit)
                .fetch_all(&self.pool)
                .await?;
                rows.iter()
                    .map(|r| Ok((r.try_get(0)?, r.try_get(1)?, r.try_get(2)?, r.try_get(3)?)))
                    .collect::<Result<_, sqlx::Error>>()
                    .map_err(Into::into)
            }

            /// The device was told of `token` (or already had it): clean, unless marked again
            /// since `marked_at`.
            pub async fn declarations_told(&self, device_id: i64, token: &str, marked_at: i64) -> Result<(), StoreError> {
                sqlx::query(
                    "UPDATE devices SET declarations_token = $2, \
                     declarations_dirty_at = CASE WHEN declarations_dirty_at = $3 THEN NULL ELSE declarations_dirty_at END \
                     WHERE id = $1",
                )
                .bind(device_id)
                .bind(token)
                .bind(marked_at)
                .execute(&self.pool)
                .await?;
                Ok(())
            }

            /// What a status report said of the device's declared apps (reports carry changes:
            /// each app's state and reasons replace what was known; a removed app is forgotten).
            pub async fn record_dm_apps(&self, device_id: i64, apps: &[$crate::inventory::DmApp], now: i64) -> Result<(), StoreError> {
                let mut tx = self.write_tx().await?;
                for a in apps {
                    if a.removed {
                        sqlx::query("DELETE FROM device_dm_apps WHERE device_id = $1 AND bundle_id = $2")
                            .bind(device_id)
                            .bind(&a.bundle_id)
                            .execute(&mut *tx)
                            .await?;
                        continue;
                    }
                    sqlx::query(
                        "INSERT INTO device_dm_apps (device_id, bundle_id, declaration_identifier, state, reasons, external_version_id, reported_at) \
                         VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (device_id, bundle_id) DO UPDATE SET \
                         declaration_identifier = excluded.declaration_identifier, state = excluded.state, \
                         reasons = excluded.reasons, external_version_id = excluded.external_version_id, \
                         reported_at = excluded.reported_at",
                    )
                    .bind(device_id)
                    .bind(&a.bundle_id)
                    .bind(&a.declaration_identifier)
                    .bind(&a.state)
                    .bind(&a.reasons)
                    .bind(a.external_version_id)
                    .bind(now)
                    .execute(&mut *tx)
                    .await?;
                }
                tx.commit().await?;
                Ok(())
            }

            /// What the device's status reports said of its declared apps, by bundle id.
            pub async fn dm_apps(&self, device_id: i64) -> Result<Vec<$crate::inventory::DmApp>, StoreError> {
                let rows = sqlx::query(
                    "SELECT bundle_id, declaration_identifier, state, reasons, external_version_id, reported_at FROM device_dm_apps \
                     WHERE device_id = $1 ORDER BY bundle_id",
                )
                .bind(device_id)
                .fetch_all(&self.pool)
                .await?;
                rows.iter()
                    .map(|r| {
                        Ok($crate::inventory::DmApp {
                            bundle_id: r.try_get(0)?,
                            declaration_identifier: r.try_get(1)?,
                            state: r.try_get(2)?,
                            reasons: r.try_get(3)?,
                            external_version_id: r.try_get(4)?,
                            removed: false,
                            reported_at: r.try_get(5)?,
                        })
                    })
                    .collect::<Result<_, sqlx::Error>>()
                    .map_err(Into::into)
            }

            /// A device's own targets delivered by declaration, of any deployment (an ending one
            /// too), in the states a status report can move: on their way, installed, or being
            /// removed.
            pub async fn declarative_targets_on_device(&self, device_id: i64) -> Result<Vec<$crate::inventory::DeviceTarget>, StoreError> {
                self.device_targets_where(
                    "c.kind = 'devices' AND t.member_id = $1 AND t.declarative \
                     AND t.status IN ('install_sent', 'installing', 'installed', 'remove_sent')",
                    device_id,
                )
                .await
            }
        }
    };
}

pub(crate) use impl_declarative_queries;
