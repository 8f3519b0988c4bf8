//! The MDM's side of each device: the periodic ManagedApplicationList (which devices are due a
//! question, at most one outstanding each, what they answered, the targets served on a device)
//! and pushes that failed, retried with backoff — written once for both backends like
//! `queries.rs`.

macro_rules! impl_app_list_queries {
    ($store:ty) => {
        impl $store {
            /// Enrolled devices due a ManagedApplicationList: not asked since `asked_before` (a new
            /// device counts from when it was added) and no question outstanding — or one
            /// outstanding since before `lost_before` (its answer was lost). Longest unasked first.
            pub async fn devices_due_for_app_list(&self, asked_before: i64, lost_before: i64, limit: i64) -> Result<Vec<(i64, String)>, StoreError> {
                let rows = sqlx::query(
                    "SELECT id, enrollment_id FROM devices WHERE enrolled AND enrollment_id IS NOT NULL \
                     AND ((apps_command IS NULL AND COALESCE(apps_asked_at, created_at) < $1) \
                          OR (apps_command IS NOT NULL AND apps_asked_at < $2)) \
                     ORDER BY COALESCE(apps_asked_at, 0), id LIMIT $3",
                )
                .bind(asked_before)
                .bind(lost_before)
                .bind(limit)
                .fetch_all(&self.pool)
                .await?;
                rows.iter()
                    .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
                    .collect::<Result<_, sqlx::Error>>()
                    .map_err(Into::into)
            }

            /// Records the question sent to these devices.
            pub async fn mark_app_list_asked(&self, device_ids: &[i64], command_uuid: &str, now: i64) -> Result<(), StoreError> {
                for chunk in device_ids.chunks(BATCH) {
                    let marks: Vec<String> = (0..chunk.len()).map(|i| format!("${}", i + 3)).collect();
                    let sql = format!(
                        "UPDATE devices SET apps_command = $1, apps_asked_at = $2 WHERE id IN ({})",
                        marks.join(",")
                    );
                    let mut q = sqlx::query(&sql).bind(command_uuid).bind(now);
                    for id in chunk {
                        q = q.bind(*id);
                    }
                    q.execute(&self.pool).await?;
                }
                Ok(())
            }

            /// The device is asked for its managed apps at the next pass (unless a question is
            /// outstanding): something it reported needs checking against the intents in force.
            pub async fn app_list_due_now(&self, enrollment_id: &str) -> Result<(), StoreError> {
                sqlx::query("UPDATE devices SET apps_asked_at = 0 WHERE enrollment_id = $1 AND apps_command IS NULL")
                    .bind(enrollment_id)
                    .execute(&self.pool)
                    .await?;
                Ok(())
            }

            /// The device a periodic question went to, by its command and enrollment.
            pub async fn device_for_app_list(&self, command_uuid: &str, enrollment_id: &str) -> Result<Option<i64>, StoreError> {
                Ok(sqlx::query_scalar("SELECT id FROM devices WHERE apps_command = $1 AND enrollment_id = $2")
                    .bind(command_uuid)
                    .bind(enrollment_id)
                    .fetch_optional(&self.pool)
                    .await?)
            }

            /// What the device said, replacing what it said before, in one transaction; its
            /// question is answered.
            pub async fn record_device_apps(&self, device_id: i64, apps: &[$crate::inventory::DeviceApp], now: i64) -> Result<(), StoreError> {
                let mut tx = self.write_tx().await?;
                sqlx::query("DELETE FROM device_apps WHERE device_id = $1").bind(device_id).execute(&mut *tx).await?;
                for chunk in apps.chunks(BATCH) {
                    let sql = format!(
                        "INSERT INTO device_apps (device_id, bundle_id, status, external_version_id, reported_at) VALUES {} \
                         ON CONFLICT (device_id, bundle_id) DO NOTHING",
                        values(chunk.len(), 5, 1)
                    );
                    let mut q = sqlx::query(&sql);
                    for a in chunk {
                        q = q.bind(device_id).bind(&a.bundle_id).bind(&a.status).bind(a.external_version_id).bind(a.reported_at);
                    }
                    q.execute(&mut *tx).await?;
                }
                sqlx::query("UPDATE devices SET apps_command = NULL, apps_reported_at = $2 WHERE id = $1")
                    .bind(device_id)
                    .bind(now)
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                Ok(())
            }

            pub async fn device_apps(&self, device_id: i64) -> Result<Vec<$crate::inventory::DeviceApp>, StoreError> {
                let rows = sqlx::query(
                    "SELECT bundle_id, status, external_version_id, reported_at FROM device_apps WHERE device_id = $1 ORDER BY bundle_id",
                )
                .bind(device_id)
                .fetch_all(&self.pool)
                .await?;
                rows.iter()
                    .map(|r| {
                        Ok($crate::inventory::DeviceApp {
                            bundle_id: r.try_get(0)?,
                            status: r.try_get(1)?,
                            external_version_id: r.try_get(2)?,
                            reported_at: r.try_get(3)?,
                        })
                    })
                    .collect::<Result<_, sqlx::Error>>()
                    .map_err(Into::into)
            }

            /// Records pushes: failed ones (enrollment id, NanoMDM's words) are retried from
            /// `next_at(attempts)`; delivered ones are cleared.
            pub async fn record_pushes(&self, failed: &[(String, String)], delivered: &[String], backoff_ms: i64, now: i64) -> Result<(), StoreError> {
                for (id, error) in failed {
                    // Doubling waits: backoff, 2×, 4×, … (at most 64×).
                    sqlx::query(
                        "UPDATE devices SET push_error = $2, push_attempts = push_attempts + 1, push_failed_at = $3, \
                         push_next_at = $3 + $4 * (CASE WHEN push_attempts >= 6 THEN 64 ELSE (1 << push_attempts) END) \
                         WHERE enrollment_id = $1",
                    )
                    .bind(id)
                    .bind(error)
                    .bind(now)
                    .bind(backoff_ms)
                    .execute(&self.pool)
                    .await?;
                }
                for id in delivered {
                    self.clear_push_error(id).await?;
                }
                Ok(())
            }

            /// The device checked in (or a push reached it): nothing to retry.
            pub async fn clear_push_error(&self, enrollment_id: &str) -> Result<(), StoreError> {
                sqlx::query(
                    "UPDATE devices SET push_error = NULL, push_attempts = 0, push_next_at = NULL \
                     WHERE enrollment_id = $1 AND push_error IS NOT NULL",
                )
                .bind(enrollment_id)
                .execute(&self.pool)
                .await?;
                Ok(())
            }

            /// Enrollment ids whose push is due again (fewer than `max_attempts` so far).
            pub async fn pushes_due(&self, now: i64, max_attempts: i64, limit: i64) -> Result<Vec<String>, StoreError> {
                Ok(sqlx::query_scalar(
                    "SELECT enrollment_id FROM devices WHERE enrolled AND enrollment_id IS NOT NULL AND push_error IS NOT NULL \
                     AND push_attempts < $2 AND push_next_at <= $1 ORDER BY push_next_at LIMIT $3",
                )
                .bind(now)
                .bind(max_attempts)
                .bind(limit)
                .fetch_all(&self.pool)
                .await?)
            }

            /// Devices whose last push failed: serial number, enrollment id, error, attempts,
            /// next attempt (none once they ran out); at most `limit`, and how many there are.
            pub async fn push_failures(&self, limit: i64) -> Result<(Vec<(String, String, String, i64, Option<i64>)>, i64), StoreError> {
                let rows = sqlx::query(
                    "SELECT serial_number, enrollment_id, push_error, push_attempts, push_next_at FROM devices \
                     WHERE push_error IS NOT NULL AND enrollment_id IS NOT NULL ORDER BY push_next_at LIMIT $1",
                )
                .bind(limit)
                .fetch_all(&self.pool)
                .await?;
                let total: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM devices WHERE push_error IS NOT NULL")
                    .fetch_one(&self.pool)
                    .await?;
                let list = rows
                    .iter()
                    .map(|r| {
                        Ok((
                            r.try_get(0)?,
                            r.try_get(1)?,
                            r.try_get(2)?,
                            i64::from(r.try_get::<i32, _>(3)?),
                            r.try_get(4)?,
                        ))
                    })
                    .collect::<Result<_, sqlx::Error>>()?;
                Ok((list, total))
            }

            /// Devices that failed a push since `since` (the connector's "in the last hour").
            pub async fn push_failures_since(&self, since: i64) -> Result<i64, StoreError> {
                Ok(sqlx::query_scalar("SELECT COUNT(*) FROM devices WHERE push_failed_at >= $1")
                    .bind(since)
                    .fetch_one(&self.pool)
                    .await?)
            }

            /// Enrolled devices due a DeviceInformation refresh: nothing heard of their OS since
            /// `reported_before` and no question outstanding since `lost_before`. Longest unheard
            /// first.
            pub async fn devices_due_for_info(&self, reported_before: i64, lost_before: i64, limit: i64) -> Result<Vec<(i64, String)>, StoreError> {
                let rows = sqlx::query(
                    "SELECT id, enrollment_id FROM devices WHERE enrolled AND enrollment_id IS NOT NULL \
                     AND COALESCE(info_reported_at, 0) < $1 \
                     AND NOT EXISTS (SELECT 1 FROM device_queries q WHERE q.enrollment_id = devices.enrollment_id AND q.asked_at >= $2) \
                     ORDER BY COALESCE(info_reported_at, 0), id LIMIT $3",
                )
                .bind(reported_before)
                .bind(lost_before)
                .bind(limit)
                .fetch_all(&self.pool)
                .await?;
                rows.iter()
                    .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
                    .collect::<Result<_, sqlx::Error>>()
                    .map_err(Into::into)
            }

            /// Records one DeviceInformation question sent to these enrollments.
            pub async fn mark_device_queries(&self, enrollment_ids: &[String], command_uuid: &str, now: i64) -> Result<(), StoreError> {
                for chunk in enrollment_ids.chunks(BATCH) {
                    let sql = format!(
                        "INSERT INTO device_queries (enrollment_id, command_uuid, asked_at) VALUES {} \
                         ON CONFLICT (enrollment_id) DO UPDATE SET command_uuid = excluded.command_uuid, asked_at = excluded.asked_at",
                        values(chunk.len(), 3, 1)
                    );
                    let mut q = sqlx::query(&sql);
                    for id in chunk {
                        q = q.bind(id).bind(command_uuid).bind(now);
                    }
                    q.execute(&self.pool).await?;
                }
                Ok(())
            }

            /// What a known device said of itself (its Authenticate or a DeviceInformation
            /// answer): its OS version and model, with the time; the question, if any, is answered.
            pub async fn record_device_info(&self, device_id: i64, os_version: Option<&str>, model: Option<&str>, at: i64) -> Result<(), StoreError> {
                let mut tx = self.write_tx().await?;
                sqlx::query(
                    "UPDATE devices SET os_version = COALESCE($2, os_version), model = COALESCE(NULLIF($3, ''), model), \
                     info_reported_at = $4, os_version_num = COALESCE($5, os_version_num) WHERE id = $1",
                )
                .bind(device_id)
                .bind(os_version)
                .bind(model)
                .bind(at)
                .bind(os_version_num(os_version))
                .execute(&mut *tx)
                .await?;
                sqlx::query("DELETE FROM device_queries WHERE enrollment_id = (SELECT enrollment_id FROM devices WHERE id = $1)")
                    .bind(device_id)
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                Ok(())
            }

            /// Claims the right to ask an unknown enrollment for its DeviceInformation: true if
            /// nobody asked since `asked_before` (the question is then recorded as this one).
            pub async fn claim_device_query(&self, enrollment_id: &str, command_uuid: &str, now: i64, asked_before: i64) -> Result<bool, StoreError> {
                let n = sqlx::query(
                    "INSERT INTO device_queries (enrollment_id, command_uuid, asked_at) VALUES ($1, $2, $3) \
                     ON CONFLICT (enrollment_id) DO UPDATE SET command_uuid = excluded.command_uuid, asked_at = excluded.asked_at \
                     WHERE device_queries.asked_at < $4",
                )
                .bind(enrollment_id)
                .bind(command_uuid)
                .bind(now)
                .bind(asked_before)
                .execute(&self.pool)
                .await?
                .rows_affected();
                Ok(n == 1)
            }

            /// Forgets a question that could not be sent, so the next event asks again.
            pub async fn forget_device_query(&self, enrollment_id: &str, command_uuid: &str) -> Result<(), StoreError> {
                sqlx::query("DELETE FROM device_queries WHERE enrollment_id = $1 AND command_uuid = $2")
                    .bind(enrollment_id)
                    .bind(command_uuid)
                    .execute(&self.pool)
                    .await?;
                Ok(())
            }

            /// Whether this answer is to a DeviceInformation Allot asked (the question is kept, so
            /// a device that answers without a serial number is not asked again for a day).
            pub async fn is_device_query(&self, command_uuid: &str, enrollment_id: &str) -> Result<bool, StoreError> {
                let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM device_queries WHERE command_uuid = $1 AND enrollment_id = $2")
                    .bind(command_uuid)
                    .bind(enrollment_id)
                    .fetch_one(&self.pool)
                    .await?;
                Ok(n > 0)
            }

            /// Commands sent before `sent_before` and still unanswered get a detail that says why
            /// nothing moves; how many targets wait on the device (all of them, for the status).
            pub async fn note_waiting_commands(&self, sent_before: i64) -> Result<i64, StoreError> {
                sqlx::query(
                    "UPDATE deployment_targets SET detail = 'sent more than a day ago and not answered: the device has not checked in since (is it on, online and still enrolled? a push may have failed: allot mdm status)' \
                     WHERE status IN ('install_sent', 'remove_sent') AND detail IS NULL AND updated_at < $1",
                )
                .bind(sent_before)
                .execute(&self.pool)
                .await?;
                Ok(sqlx::query_scalar("SELECT COUNT(*) FROM deployment_targets WHERE status IN ('install_sent', 'remove_sent')")
                    .fetch_one(&self.pool)
                    .await?)
            }

            /// Settled targets served on a device, of deployments in force: the device's own
            /// (device collections) and its primary user's (user collections).
            pub async fn targets_on_device(&self, device_id: i64) -> Result<Vec<$crate::inventory::DeviceTarget>, StoreError> {
                self.device_targets_where(
                    "d.ending IS NULL AND t.status IN ('installed', 'installing', 'uninstalled', 'license_reclaimed') \
                     AND ((c.kind = 'devices' AND t.member_id = $1) \
                          OR (c.kind = 'users' AND t.member_id = (SELECT primary_person_id FROM devices WHERE id = $1)))",
                    device_id,
                )
                .await
            }

            /// Targets on a device (`condition` over `t`, `d`, `c`, with the device as `$1`), each
            /// with what its deployment wants there.
            pub(crate) async fn device_targets_where(&self, condition: &str, device_id: i64) -> Result<Vec<$crate::inventory::DeviceTarget>, StoreError> {
                let columns: Vec<String> = TARGET_COLUMNS.split(", ").map(|c| format!("t.{c}")).collect();
                let rows = sqlx::query(&format!(
                    "SELECT {}, d.action, d.install_options, m.bundle_id AS app_bundle, m.external_version_id AS store_version \
                     FROM deployment_targets t JOIN deployments d ON d.id = t.deployment_id \
                     JOIN collections c ON c.id = d.collection_id \
                     LEFT JOIN app_metadata m ON m.adam_id = d.adam_id \
                     WHERE {condition}",
                    columns.join(", ")
                ))
                .bind(device_id)
                .fetch_all(&self.pool)
                .await?;
                rows.iter()
                    .map(|r| {
                        let options: String = r.try_get("install_options")?;
                        let options: allot_domain::InstallOptions = serde_json::from_str(&options).unwrap_or_default();
                        Ok($crate::inventory::DeviceTarget {
                            target: target_row(r)?,
                            action: r.try_get("action")?,
                            auto_update: options.auto_update,
                            bundle_id: r.try_get("app_bundle")?,
                            store_version: r.try_get("store_version")?,
                        })
                    })
                    .collect::<Result<_, sqlx::Error>>()
                    .map_err(Into::into)
            }
        }
    };
}

pub(crate) use impl_app_list_queries;
