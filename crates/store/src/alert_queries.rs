//! Alerts and outgoing webhooks: endpoints, events raised once per dedupe key with their
//! deliveries in the same transaction (the outbox), and the delivery log — written once for both
//! backends like `queries.rs`.

macro_rules! impl_alert_queries {
    ($store:ty) => {
        impl $store {
            pub async fn insert_webhook(&self, url: &str, events: &str, sealed_secret: &[u8], description: &str, created_by: Option<&str>, now: i64) -> Result<i64, StoreError> {
                Ok(sqlx::query_scalar(
                    "INSERT INTO webhook_endpoints (url, events, secret, description, created_by, created_at) VALUES ($1,$2,$3,$4,$5,$6) RETURNING id",
                )
                .bind(url)
                .bind(events)
                .bind(sealed_secret)
                .bind(description)
                .bind(created_by)
                .bind(now)
                .fetch_one(&self.pool)
                .await?)
            }

            pub async fn webhooks(&self) -> Result<Vec<$crate::types::WebhookRow>, StoreError> {
                self.webhooks_where("TRUE", None).await
            }

            pub async fn webhook(&self, id: i64) -> Result<Option<$crate::types::WebhookRow>, StoreError> {
                Ok(self.webhooks_where("e.id = $1", Some(id)).await?.into_iter().next())
            }

            async fn webhooks_where(&self, filter: &str, id: Option<i64>) -> Result<Vec<$crate::types::WebhookRow>, StoreError> {
                let sql = format!(
                    "SELECT e.id, e.url, e.events, e.secret, e.description, e.created_by, e.created_at, \
                     (SELECT COUNT(*) FROM webhook_deliveries d WHERE d.endpoint_id = e.id AND d.status = 'pending') AS pending, \
                     (SELECT COUNT(*) FROM webhook_deliveries d WHERE d.endpoint_id = e.id AND d.status = 'failed') AS failed, \
                     (SELECT MAX(d.delivered_at) FROM webhook_deliveries d WHERE d.endpoint_id = e.id) AS last_delivered_at \
                     FROM webhook_endpoints e WHERE {filter} ORDER BY e.id"
                );
                let mut q = sqlx::query(&sql);
                if let Some(id) = id {
                    q = q.bind(id);
                }
                let rows = q.fetch_all(&self.pool).await?;
                rows.iter()
                    .map(|r| {
                        let events: String = r.try_get("events")?;
                        Ok($crate::types::WebhookRow {
                            id: r.try_get("id")?,
                            url: r.try_get("url")?,
                            events: events.split(',').filter(|e| !e.is_empty()).map(str::to_owned).collect(),
                            sealed_secret: r.try_get("secret")?,
                            description: r.try_get("description")?,
                            created_by: r.try_get("created_by")?,
                            created_at: r.try_get("created_at")?,
                            pending: r.try_get("pending")?,
                            failed: r.try_get("failed")?,
                            last_delivered_at: r.try_get("last_delivered_at")?,
                        })
                    })
                    .collect::<Result<_, sqlx::Error>>()
                    .map_err(Into::into)
            }

            /// The configuration's e-mail recipients as `mailto:` endpoints (url, events): those no
            /// longer configured go, the others are added or given their events. `sealed` is the
            /// (unused) secret new ones are stored with.
            pub async fn set_email_endpoints(&self, endpoints: &[(String, String)], sealed: &[u8], now: i64) -> Result<(), StoreError> {
                let mut tx = self.write_tx().await?;
                let existing: Vec<(i64, String)> = sqlx::query_as("SELECT id, url FROM webhook_endpoints WHERE url LIKE 'mailto:%'")
                    .fetch_all(&mut *tx)
                    .await?;
                for (id, url) in &existing {
                    if !endpoints.iter().any(|(u, _)| u == url) {
                        sqlx::query("DELETE FROM webhook_endpoints WHERE id = $1").bind(id).execute(&mut *tx).await?;
                    }
                }
                for (url, events) in endpoints {
                    match existing.iter().find(|(_, u)| u == url) {
                        Some((id, _)) => {
                            sqlx::query("UPDATE webhook_endpoints SET events = $2 WHERE id = $1").bind(id).bind(events).execute(&mut *tx).await?;
                        }
                        None => {
                            sqlx::query(
                                "INSERT INTO webhook_endpoints (url, events, secret, description, created_by, created_at) VALUES ($1,$2,$3,'e-mail (ALLOT_ALERT_EMAIL)','configuration',$4)",
                            )
                            .bind(url)
                            .bind(events)
                            .bind(sealed)
                            .bind(now)
                            .execute(&mut *tx)
                            .await?;
                        }
                    }
                }
                tx.commit().await?;
                Ok(())
            }

            pub async fn delete_webhook(&self, id: i64) -> Result<bool, StoreError> {
                Ok(sqlx::query("DELETE FROM webhook_endpoints WHERE id = $1").bind(id).execute(&self.pool).await?.rows_affected() == 1)
            }

            /// Raises an alert once per dedupe key: the event and a delivery to every endpoint that
            /// wants its kind (or only to `only_endpoint`: a test), in one transaction. `None` when
            /// the key was raised before.
            pub async fn raise_alert(&self, a: &$crate::types::NewAlert, only_endpoint: Option<i64>, now: i64) -> Result<Option<i64>, StoreError> {
                let mut tx = self.write_tx().await?;
                let id: Option<i64> = sqlx::query_scalar(
                    "INSERT INTO alert_events (event_id, kind, dedupe_key, summary, data, raised_at) VALUES ($1,$2,$3,$4,$5,$6) \
                     ON CONFLICT (dedupe_key) DO NOTHING RETURNING id",
                )
                .bind(&a.event_id)
                .bind(&a.kind)
                .bind(&a.dedupe_key)
                .bind(&a.summary)
                .bind(&a.data)
                .bind(now)
                .fetch_optional(&mut *tx)
                .await?;
                let Some(id) = id else {
                    return Ok(None);
                };
                sqlx::query(
                    "INSERT INTO webhook_deliveries (endpoint_id, alert_id, status, next_attempt_at, created_at) \
                     SELECT e.id, $1, 'pending', $2, $2 FROM webhook_endpoints e \
                     WHERE ($4 IS NULL AND (e.events = '*' OR (',' || e.events || ',') LIKE ('%,' || $3 || ',%'))) OR e.id = $4",
                )
                .bind(id)
                .bind(now)
                .bind(&a.kind)
                .bind(only_endpoint)
                .execute(&mut *tx)
                .await?;
                tx.commit().await?;
                Ok(Some(id))
            }

            /// An open alert's condition is over (the front page stops showing it).
            pub async fn resolve_alerts(&self, dedupe_prefix: &str, keep: &[String], now: i64) -> Result<u64, StoreError> {
                let rows: Vec<(i64, String)> = sqlx::query_as(
                    "SELECT id, dedupe_key FROM alert_events WHERE resolved_at IS NULL AND dedupe_key LIKE $1 ESCAPE '\\'",
                )
                .bind(format!("{}%", $crate::like_escape(dedupe_prefix)))
                .fetch_all(&self.pool)
                .await?;
                let mut n = 0;
                for (id, key) in rows.into_iter().filter(|(_, k)| !keep.contains(k)) {
                    let _ = key;
                    n += sqlx::query("UPDATE alert_events SET resolved_at = $2 WHERE id = $1").bind(id).bind(now).execute(&self.pool).await?.rows_affected();
                }
                Ok(n)
            }

            /// Alerts, newest first: open ones only, or all.
            pub async fn alerts(&self, open_only: bool, limit: i64) -> Result<Vec<$crate::types::AlertRow>, StoreError> {
                let rows: Vec<(i64, String, String, String, String, String, i64, Option<i64>)> = sqlx::query_as(
                    "SELECT id, event_id, kind, dedupe_key, summary, data, raised_at, resolved_at FROM alert_events \
                     WHERE ($1 = FALSE OR resolved_at IS NULL) AND kind <> 'test' ORDER BY raised_at DESC, id DESC LIMIT $2",
                )
                .bind(open_only)
                .bind(limit)
                .fetch_all(&self.pool)
                .await?;
                Ok(rows
                    .into_iter()
                    .map(|(id, event_id, kind, dedupe_key, summary, data, raised_at, resolved_at)| $crate::types::AlertRow {
                        id, event_id, kind, dedupe_key, summary, data, raised_at, resolved_at,
                    })
                    .collect())
            }

            /// Deliveries due now, claimed for `hold` ms (another instance skips them meanwhile):
            /// each with its endpoint and event.
            pub async fn claim_due_deliveries(&self, now: i64, hold: i64, limit: i64) -> Result<Vec<$crate::types::DueDelivery>, StoreError> {
                let due: Vec<(i64,)> = sqlx::query_as(
                    "SELECT id FROM webhook_deliveries WHERE status = 'pending' AND next_attempt_at <= $1 ORDER BY next_attempt_at LIMIT $2",
                )
                .bind(now)
                .bind(limit)
                .fetch_all(&self.pool)
                .await?;
                let mut out = Vec::new();
                for (id,) in due {
                    // Claimed only if nobody else moved it meanwhile.
                    let claimed = sqlx::query("UPDATE webhook_deliveries SET next_attempt_at = $3 WHERE id = $1 AND status = 'pending' AND next_attempt_at <= $2")
                        .bind(id)
                        .bind(now)
                        .bind(now + hold)
                        .execute(&self.pool)
                        .await?
                        .rows_affected()
                        == 1;
                    if !claimed {
                        continue;
                    }
                    let row = sqlx::query(
                        "SELECT d.id, d.attempts, d.created_at, e.id AS endpoint_id, e.url, e.secret, a.event_id, a.kind, a.summary, a.data, a.raised_at \
                         FROM webhook_deliveries d JOIN webhook_endpoints e ON e.id = d.endpoint_id JOIN alert_events a ON a.id = d.alert_id WHERE d.id = $1",
                    )
                    .bind(id)
                    .fetch_optional(&self.pool)
                    .await?;
                    if let Some(r) = row {
                        out.push($crate::types::DueDelivery {
                            id: r.try_get("id")?,
                            attempts: r.try_get("attempts")?,
                            created_at: r.try_get("created_at")?,
                            endpoint_id: r.try_get("endpoint_id")?,
                            url: r.try_get("url")?,
                            sealed_secret: r.try_get("secret")?,
                            event_id: r.try_get("event_id")?,
                            kind: r.try_get("kind")?,
                            summary: r.try_get("summary")?,
                            data: r.try_get("data")?,
                            raised_at: r.try_get("raised_at")?,
                        });
                    }
                }
                Ok(out)
            }

            /// One attempt's outcome: delivered, tried again at `next` (pending), or given up.
            pub async fn finish_delivery(&self, id: i64, status: &str, http_status: Option<i64>, error: Option<&str>, next: i64, now: i64) -> Result<(), StoreError> {
                sqlx::query(
                    "UPDATE webhook_deliveries SET status = $2, attempts = attempts + 1, last_attempt_at = $6, last_status = $3, last_error = $4, \
                     next_attempt_at = $5, delivered_at = CASE WHEN $2 = 'delivered' THEN $6 ELSE delivered_at END WHERE id = $1",
                )
                .bind(id)
                .bind(status)
                .bind(http_status)
                .bind(error)
                .bind(next)
                .bind(now)
                .execute(&self.pool)
                .await?;
                Ok(())
            }

            /// The last `n` finished sync runs of every token, newest first: (token, run id, failed).
            pub async fn recent_sync_outcomes(&self, n: i64) -> Result<Vec<(i64, i64, bool)>, StoreError> {
                let rows: Vec<(i64, i64, String)> = sqlx::query_as(
                    "SELECT token_id, id, status FROM (SELECT token_id, id, status, \
                     ROW_NUMBER() OVER (PARTITION BY token_id ORDER BY id DESC) AS k FROM sync_runs WHERE status IN ('succeeded', 'failed')) r \
                     WHERE k <= $1 ORDER BY token_id, id DESC",
                )
                .bind(n)
                .fetch_all(&self.pool)
                .await?;
                Ok(rows.into_iter().map(|(t, id, s)| (t, id, s == "failed")).collect())
            }

            /// Assets deployments in force draw on whose free licenses are at or below `threshold`:
            /// (token, adamId, pricing, available, total).
            /// Apps deployments draw on whose free licenses are at or below their threshold (the
            /// app's own, else `threshold`): (token, adamId, pricing, available, total, threshold).
            pub async fn low_deployed_assets(&self, threshold: i64) -> Result<Vec<(i64, String, String, i64, i64, i64)>, StoreError> {
                Ok(sqlx::query_as(
                    "SELECT a.token_id, a.adam_id, a.pricing, a.available, a.total, \
                     COALESCE(th.threshold, $1) AS threshold FROM assets a \
                     LEFT JOIN alert_thresholds th ON th.adam_id = a.adam_id AND th.pricing = a.pricing \
                     WHERE a.available <= COALESCE(th.threshold, $1) AND a.unlimited = FALSE AND a.total > 0 AND EXISTS ( \
                       SELECT 1 FROM deployments d WHERE d.adam_id = a.adam_id AND d.pricing = a.pricing AND d.ending IS NULL \
                       AND d.action IN ('required', 'available')) \
                     ORDER BY a.token_id, a.adam_id",
                )
                .bind(threshold)
                .fetch_all(&self.pool)
                .await?)
            }

            /// An app's own `licenses.low` threshold; `None` goes back to the global one. True when
            /// something changed.
            pub async fn set_alert_threshold(&self, adam_id: &str, pricing: &str, threshold: Option<i64>) -> Result<bool, StoreError> {
                let n = match threshold {
                    Some(t) => sqlx::query(
                        "INSERT INTO alert_thresholds (adam_id, pricing, threshold) VALUES ($1, $2, $3) \
                         ON CONFLICT (adam_id, pricing) DO UPDATE SET threshold = excluded.threshold",
                    )
                    .bind(adam_id)
                    .bind(pricing)
                    .bind(t)
                    .execute(&self.pool)
                    .await?
                    .rows_affected(),
                    None => sqlx::query("DELETE FROM alert_thresholds WHERE adam_id = $1 AND pricing = $2")
                        .bind(adam_id)
                        .bind(pricing)
                        .execute(&self.pool)
                        .await?
                        .rows_affected(),
                };
                Ok(n > 0)
            }

            /// An app's own `licenses.low` threshold, if it has one.
            pub async fn alert_threshold(&self, adam_id: &str, pricing: &str) -> Result<Option<i64>, StoreError> {
                Ok(sqlx::query_scalar("SELECT threshold FROM alert_thresholds WHERE adam_id = $1 AND pricing = $2")
                    .bind(adam_id)
                    .bind(pricing)
                    .fetch_optional(&self.pool)
                    .await?)
            }

            /// Each deployment's last target change (for "finished" episodes).
            pub async fn last_target_changes(&self) -> Result<std::collections::HashMap<i64, i64>, StoreError> {
                let rows: Vec<(i64, i64)> = sqlx::query_as("SELECT deployment_id, MAX(updated_at) FROM deployment_targets GROUP BY deployment_id")
                    .fetch_all(&self.pool)
                    .await?;
                Ok(rows.into_iter().collect())
            }

            /// What `/metrics` reports, read at scrape time: every gauge and counter the store
            /// knows, as (metric, labels, value).
            pub async fn metric_samples(&self) -> Result<Vec<$crate::types::MetricSample>, StoreError> {
                let mut out: Vec<$crate::types::MetricSample> = Vec::new();
                let licenses: Vec<(String, i64, i64, i64)> = sqlx::query_as(
                    "SELECT t.name, CAST(COALESCE(SUM(a.total), 0) AS BIGINT), CAST(COALESCE(SUM(a.assigned), 0) AS BIGINT), \
                     CAST(COALESCE(SUM(a.available), 0) AS BIGINT) \
                     FROM tokens t LEFT JOIN assets a ON a.token_id = t.id AND a.unlimited = FALSE GROUP BY t.id, t.name ORDER BY t.id",
                )
                .fetch_all(&self.pool)
                .await?;
                for (token, total, assigned, available) in licenses {
                    out.push(("allot_licenses_total", vec![("token", token.clone())], total as f64));
                    out.push(("allot_licenses_assigned", vec![("token", token.clone())], assigned as f64));
                    out.push(("allot_licenses_available", vec![("token", token)], available as f64));
                }
                let targets: Vec<(String, i64)> = sqlx::query_as("SELECT status, COUNT(*) FROM deployment_targets GROUP BY status ORDER BY status")
                    .fetch_all(&self.pool)
                    .await?;
                for (status, n) in targets {
                    out.push(("allot_deployment_targets", vec![("status", status)], n as f64));
                }
                let runs: Vec<(String, String, i64, i64)> = sqlx::query_as(
                    "SELECT kind, status, COUNT(*), CAST(COALESCE(SUM(finished_at - started_at), 0) AS BIGINT) FROM sync_runs WHERE finished_at IS NOT NULL GROUP BY kind, status ORDER BY kind, status",
                )
                .fetch_all(&self.pool)
                .await?;
                for (kind, status, n, ms) in runs {
                    out.push(("allot_sync_runs_total", vec![("kind", kind.clone()), ("outcome", status.clone())], n as f64));
                    out.push(("allot_sync_run_seconds_total", vec![("kind", kind), ("outcome", status)], ms as f64 / 1000.0));
                }
                let notes: Vec<(String, i64)> = sqlx::query_as("SELECT kind, COUNT(*) FROM notifications_seen GROUP BY kind ORDER BY kind")
                    .fetch_all(&self.pool)
                    .await?;
                for (kind, n) in notes {
                    out.push(("allot_notifications_applied_total", vec![("type", kind)], n as f64));
                }
                let deliveries: Vec<(String, i64)> = sqlx::query_as("SELECT status, COUNT(*) FROM webhook_deliveries GROUP BY status ORDER BY status")
                    .fetch_all(&self.pool)
                    .await?;
                for (status, n) in deliveries {
                    out.push(("allot_webhook_deliveries", vec![("outcome", status)], n as f64));
                }
                let open: Vec<(String, i64)> = sqlx::query_as("SELECT kind, COUNT(*) FROM alert_events WHERE resolved_at IS NULL AND kind <> 'test' GROUP BY kind ORDER BY kind")
                    .fetch_all(&self.pool)
                    .await?;
                for (kind, n) in open {
                    out.push(("allot_alerts_open", vec![("event", kind)], n as f64));
                }
                let pushes: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM devices WHERE push_error IS NOT NULL")
                    .fetch_one(&self.pool)
                    .await?;
                out.push(("allot_push_failures", Vec::new(), pushes as f64));
                Ok(out)
            }

            /// Appends one change to the audit log (there is no update or delete).
            pub async fn record_audit(&self, e: &$crate::types::AuditEntry) -> Result<(), StoreError> {
                sqlx::query("INSERT INTO audit_log (at, actor, address, method, path, status, detail) VALUES ($1,$2,$3,$4,$5,$6,$7)")
                    .bind(e.at)
                    .bind(&e.actor)
                    .bind(&e.address)
                    .bind(&e.method)
                    .bind(&e.path)
                    .bind(e.status)
                    .bind(&e.detail)
                    .execute(&self.pool)
                    .await?;
                Ok(())
            }

            /// The audit log, newest first, filtered by actor and by text in the path, with the total.
            pub async fn audit(&self, actor: Option<&str>, path: Option<&str>, since: Option<i64>, limit: i64, offset: i64) -> Result<(Vec<$crate::types::AuditEntry>, i64), StoreError> {
                let pattern = path.map($crate::like_contains);
                let filter = "FROM audit_log WHERE ($1 IS NULL OR actor = $1) AND ($2 IS NULL OR LOWER(path) LIKE $2 ESCAPE '\\') AND ($3 IS NULL OR at >= $3)";
                let total: i64 = sqlx::query_scalar(&format!("SELECT COUNT(*) {filter}"))
                    .bind(actor)
                    .bind(&pattern)
                    .bind(since)
                    .fetch_one(&self.pool)
                    .await?;
                let rows: Vec<(i64, String, String, String, String, i64, Option<String>)> =
                    sqlx::query_as(&format!("SELECT at, actor, address, method, path, status, detail {filter} ORDER BY id DESC LIMIT $4 OFFSET $5"))
                        .bind(actor)
                        .bind(&pattern)
                        .bind(since)
                        .bind(limit)
                        .bind(offset)
                        .fetch_all(&self.pool)
                        .await?;
                Ok((
                    rows.into_iter()
                        .map(|(at, actor, address, method, path, status, detail)| $crate::types::AuditEntry { at, actor, address, method, path, status, detail })
                        .collect(),
                    total,
                ))
            }

            /// An endpoint's deliveries, newest first.
            pub async fn webhook_deliveries(&self, endpoint_id: i64, limit: i64) -> Result<Vec<$crate::types::DeliveryRow>, StoreError> {
                let rows = sqlx::query(
                    "SELECT d.id, a.event_id, a.kind, a.summary, d.status, d.attempts, d.last_status, d.last_error, d.last_attempt_at, d.next_attempt_at, d.delivered_at, d.created_at \
                     FROM webhook_deliveries d JOIN alert_events a ON a.id = d.alert_id WHERE d.endpoint_id = $1 ORDER BY d.id DESC LIMIT $2",
                )
                .bind(endpoint_id)
                .bind(limit)
                .fetch_all(&self.pool)
                .await?;
                rows.iter()
                    .map(|r| {
                        Ok($crate::types::DeliveryRow {
                            id: r.try_get("id")?,
                            event_id: r.try_get("event_id")?,
                            kind: r.try_get("kind")?,
                            summary: r.try_get("summary")?,
                            status: r.try_get("status")?,
                            attempts: r.try_get("attempts")?,
                            last_status: r.try_get("last_status")?,
                            last_error: r.try_get("last_error")?,
                            last_attempt_at: r.try_get("last_attempt_at")?,
                            next_attempt_at: r.try_get("next_attempt_at")?,
                            delivered_at: r.try_get("delivered_at")?,
                            created_at: r.try_get("created_at")?,
                        })
                    })
                    .collect::<Result<_, sqlx::Error>>()
                    .map_err(Into::into)
            }
        }
    };
}

pub(crate) use impl_alert_queries;
