//! Deployment queries, written once for both backends like `queries.rs`.

macro_rules! impl_deployment_queries {
    ($store:ty) => {
        const TARGET_COLUMNS: &str =
            "deployment_id, member_id, label, status, license, holder, enrollment_id, token_id, event_id, command_uuid, detail, claimed, superseded_by, confirmed_at, declarative";

        fn target_row<R: sqlx::Row>(r: &R) -> Result<$crate::inventory::TargetRow, sqlx::Error>
        where
            for<'a> &'a str: sqlx::ColumnIndex<R>,
            for<'a> i64: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
            for<'a> String: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
            for<'a> bool: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
        {
            Ok($crate::inventory::TargetRow {
                deployment_id: r.try_get("deployment_id")?,
                member_id: r.try_get("member_id")?,
                label: r.try_get("label")?,
                status: r.try_get("status")?,
                license: r.try_get("license")?,
                holder: r.try_get("holder")?,
                enrollment_id: r.try_get("enrollment_id")?,
                token_id: r.try_get("token_id")?,
                event_id: r.try_get("event_id")?,
                command_uuid: r.try_get("command_uuid")?,
                detail: r.try_get("detail")?,
                superseded_by: r.try_get("superseded_by")?,
                confirmed_at: r.try_get("confirmed_at")?,
                claimed: r.try_get("claimed")?,
                declarative: r.try_get("declarative")?,
            })
        }

        fn deployment_row<R: sqlx::Row>(r: &R) -> Result<$crate::inventory::DeploymentRow, sqlx::Error>
        where
            for<'a> &'a str: sqlx::ColumnIndex<R>,
            for<'a> i64: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
            for<'a> String: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
        {
            let tokens: String = r.try_get("token_ids")?;
            let options: String = r.try_get("install_options")?;
            Ok($crate::inventory::DeploymentRow {
                id: r.try_get("id")?,
                adam_id: r.try_get("adam_id")?,
                pricing: r.try_get("pricing")?,
                token_ids: serde_json::from_str(&tokens).unwrap_or_default(),
                collection_id: r.try_get("collection_id")?,
                action: r.try_get("action")?,
                on_shortage: r.try_get("on_shortage")?,
                created_at: r.try_get("created_at")?,
                on_leave: r.try_get("on_leave")?,
                options: serde_json::from_str(&options).unwrap_or_default(),
                created_by: r.try_get("created_by")?,
                ending: r.try_get("ending")?,
            })
        }

        const DEPLOYMENT_COLUMNS: &str =
            "id, adam_id, pricing, token_ids, collection_id, action, on_shortage, created_at, on_leave, install_options, created_by, ending";

        impl $store {
            pub async fn insert_deployment(&self, d: &$crate::inventory::NewDeployment, now: i64) -> Result<$crate::inventory::DeploymentRow, StoreError> {
                let row = sqlx::query(&format!(
                    "INSERT INTO deployments (adam_id, pricing, token_ids, collection_id, action, on_shortage, created_at, on_leave, install_options, created_by) \
                     VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10) RETURNING {DEPLOYMENT_COLUMNS}",
                ))
                .bind(&d.adam_id)
                .bind(&d.pricing)
                .bind(serde_json::to_string(&d.token_ids).expect("ids serialise"))
                .bind(d.collection_id)
                .bind(&d.action)
                .bind(&d.on_shortage)
                .bind(now)
                .bind(&d.on_leave)
                .bind(serde_json::to_string(&d.options).expect("options serialise"))
                .bind(&d.created_by)
                .fetch_one(&self.pool)
                .await?;
                Ok(deployment_row(&row)?)
            }

            pub async fn deployments(&self) -> Result<Vec<$crate::inventory::DeploymentRow>, StoreError> {
                let rows = sqlx::query(&format!("SELECT {DEPLOYMENT_COLUMNS} FROM deployments ORDER BY id"))
                    .fetch_all(&self.pool)
                    .await?;
                Ok(rows.iter().map(deployment_row).collect::<Result<_, _>>()?)
            }

            pub async fn deployment(&self, id: i64) -> Result<Option<$crate::inventory::DeploymentRow>, StoreError> {
                let row = sqlx::query(&format!("SELECT {DEPLOYMENT_COLUMNS} FROM deployments WHERE id = $1"))
                    .bind(id)
                    .fetch_optional(&self.pool)
                    .await?;
                Ok(row.as_ref().map(deployment_row).transpose()?)
            }

            /// Adds targets not there yet, as `pending`.
            pub async fn add_targets(&self, deployment_id: i64, members: &[(i64, String)], now: i64) -> Result<u64, StoreError> {
                let mut added = 0;
                for chunk in members.chunks(BATCH) {
                    let sql = format!(
                        "INSERT INTO deployment_targets (deployment_id, member_id, label, status, updated_at) VALUES {} ON CONFLICT DO NOTHING",
                        values(chunk.len(), 5, 1)
                    );
                    let mut q = sqlx::query(&sql);
                    for (m, label) in chunk {
                        q = q.bind(deployment_id).bind(*m).bind(label).bind("pending").bind(now);
                    }
                    added += q.execute(&self.pool).await?.rows_affected();
                }
                Ok(added)
            }

            pub async fn targets(&self, deployment_id: i64) -> Result<Vec<$crate::inventory::TargetRow>, StoreError> {
                let rows = sqlx::query(&format!("SELECT {TARGET_COLUMNS} FROM deployment_targets WHERE deployment_id = $1 ORDER BY label"))
                    .bind(deployment_id)
                    .fetch_all(&self.pool)
                    .await?;
                Ok(rows.iter().map(target_row).collect::<Result<_, _>>()?)
            }

            /// Targets another deployment in force owns become `superseded` (naming the owner),
            /// and superseded targets whose owner is gone come back as `pending`: one intent per
            /// content and target, by `allot_domain::intent` — Uninstall and Revoke outrank
            /// Required and Available, the oldest wins between equals. Targets with a request to
            /// Apple or a removal in flight are left until it ends. (superseded, resumed)
            /// Records that Apple or the device confirmed these targets' status now.
            pub async fn confirm_targets(&self, deployment_id: i64, member_ids: &[i64], now: i64) -> Result<u64, StoreError> {
                let mut n = 0;
                for chunk in member_ids.chunks(BATCH) {
                    let marks: Vec<String> = (0..chunk.len()).map(|i| format!("${}", i + 3)).collect();
                    let sql = format!(
                        "UPDATE deployment_targets SET confirmed_at = $2 WHERE deployment_id = $1 AND member_id IN ({})",
                        marks.join(",")
                    );
                    let mut q = sqlx::query(&sql).bind(deployment_id).bind(now);
                    for id in chunk {
                        q = q.bind(*id);
                    }
                    n += q.execute(&self.pool).await?.rows_affected();
                }
                Ok(n)
            }

            /// Where Allot's intents and Apple's assignments (the synced copy, kept current by
            /// notifications) disagree, on one token or all; at most `limit` rows of each kind.
            pub async fn ledger_diff(&self, token_id: Option<i64>, limit: i64) -> Result<Vec<$crate::inventory::LedgerRow>, StoreError> {
                // Targets that stand for a license Allot keeps (or is still giving back).
                const SERVING: &str = "dt.status NOT IN ('failed','uninstalled','license_reclaimed','no_license','not_compatible','pending','needs_user','available','waiting_for_license','left')";
                const GIVEN_UP: &str = "('failed','uninstalled','license_reclaimed','no_license')";
                const LICENSED: &str = "('license_assigned','install_sent','installing','installed')";
                let email = "(SELECT p.email FROM people p WHERE {kind} = 'user' AND p.client_user_id = {holder})";
                let email_of = |kind: &str, holder: &str| email.replace("{kind}", kind).replace("{holder}", holder);
                let orphans = format!(
                    "SELECT 'orphan' AS kind, a.token_id, t.name AS token, a.adam_id, a.pricing, a.holder_kind, a.holder, \
                     {email} AS email, CAST(NULL AS BIGINT) AS since, CAST(NULL AS BIGINT) AS deployment_id, CAST(NULL AS TEXT) AS created_by \
                     FROM assignments a JOIN tokens t ON t.id = a.token_id \
                     WHERE ($1 IS NULL OR a.token_id = $1) AND NOT EXISTS (SELECT 1 FROM deployment_targets dt \
                        JOIN deployments d ON d.id = dt.deployment_id \
                        WHERE d.adam_id = a.adam_id AND d.pricing = a.pricing AND dt.license = a.holder_kind \
                        AND dt.holder = a.holder AND {SERVING}) \
                     ORDER BY t.name, a.adam_id, a.holder LIMIT $2",
                    email = email_of("a.holder_kind", "a.holder")
                );
                let leaks = format!(
                    "SELECT 'leak' AS kind, dt.token_id, t.name AS token, d.adam_id, d.pricing, dt.license AS holder_kind, dt.holder, \
                     {email} AS email, dt.updated_at AS since, d.id AS deployment_id, d.created_by \
                     FROM deployment_targets dt JOIN deployments d ON d.id = dt.deployment_id JOIN tokens t ON t.id = dt.token_id \
                     WHERE ($1 IS NULL OR dt.token_id = $1) AND dt.status IN {GIVEN_UP} AND dt.claimed \
                     AND EXISTS (SELECT 1 FROM assignments a WHERE a.token_id = dt.token_id AND a.adam_id = d.adam_id \
                        AND a.pricing = d.pricing AND a.holder_kind = dt.license AND a.holder = dt.holder) \
                     AND NOT EXISTS (SELECT 1 FROM deployment_targets s JOIN deployments sd ON sd.id = s.deployment_id \
                        WHERE sd.adam_id = d.adam_id AND sd.pricing = d.pricing AND s.license = dt.license \
                        AND s.holder = dt.holder AND {serving_s}) \
                     ORDER BY t.name, d.adam_id, dt.holder LIMIT $2",
                    email = email_of("dt.license", "dt.holder"),
                    serving_s = SERVING.replace("dt.", "s.")
                );
                let missing = format!(
                    "SELECT 'missing' AS kind, dt.token_id, t.name AS token, d.adam_id, d.pricing, dt.license AS holder_kind, dt.holder, \
                     {email} AS email, dt.updated_at AS since, d.id AS deployment_id, d.created_by \
                     FROM deployment_targets dt JOIN deployments d ON d.id = dt.deployment_id JOIN tokens t ON t.id = dt.token_id \
                     WHERE ($1 IS NULL OR dt.token_id = $1) AND dt.status IN {LICENSED} AND dt.holder IS NOT NULL \
                     AND NOT EXISTS (SELECT 1 FROM assignments a WHERE a.token_id = dt.token_id AND a.adam_id = d.adam_id \
                        AND a.pricing = d.pricing AND a.holder_kind = dt.license AND a.holder = dt.holder) \
                     ORDER BY t.name, d.adam_id, dt.holder LIMIT $2",
                    email = email_of("dt.license", "dt.holder")
                );
                let mut out = Vec::new();
                for sql in [orphans, leaks, missing] {
                    let rows = sqlx::query(&sql).bind(token_id).bind(limit).fetch_all(&self.pool).await?;
                    for r in rows {
                        out.push($crate::inventory::LedgerRow {
                            kind: r.try_get("kind")?,
                            token_id: r.try_get("token_id")?,
                            token: r.try_get("token")?,
                            adam_id: r.try_get("adam_id")?,
                            pricing_param: r.try_get("pricing")?,
                            holder_kind: r.try_get("holder_kind")?,
                            holder: r.try_get("holder")?,
                            email: r.try_get("email")?,
                            since: r.try_get("since")?,
                            deployment_id: r.try_get("deployment_id")?,
                            created_by: r.try_get("created_by")?,
                        });
                    }
                }
                Ok(out)
            }

            /// Records what a ledger clean-up asked of Apple.
            pub async fn record_ledger_actions(&self, actions: &[$crate::inventory::LedgerAction]) -> Result<(), StoreError> {
                for chunk in actions.chunks(BATCH) {
                    let sql = format!(
                        "INSERT INTO ledger_actions (at, actor, kind, token_id, adam_id, pricing, holder_kind, holder, event_id, outcome) VALUES {}",
                        values(chunk.len(), 10, 1)
                    );
                    let mut q = sqlx::query(&sql);
                    for a in chunk {
                        q = q.bind(a.at).bind(&a.actor).bind(&a.kind).bind(a.token_id).bind(&a.adam_id).bind(&a.pricing)
                            .bind(&a.holder_kind).bind(&a.holder).bind(&a.event_id).bind(&a.outcome);
                    }
                    q.execute(&self.pool).await?;
                }
                Ok(())
            }

            /// The latest ledger clean-up actions, newest first.
            pub async fn ledger_actions(&self, limit: i64) -> Result<Vec<$crate::inventory::LedgerAction>, StoreError> {
                let rows = sqlx::query(
                    "SELECT at, actor, kind, token_id, adam_id, pricing, holder_kind, holder, event_id, outcome \
                     FROM ledger_actions ORDER BY id DESC LIMIT $1",
                )
                .bind(limit)
                .fetch_all(&self.pool)
                .await?;
                rows.iter()
                    .map(|r| {
                        Ok($crate::inventory::LedgerAction {
                            at: r.try_get("at")?,
                            actor: r.try_get("actor")?,
                            kind: r.try_get("kind")?,
                            token_id: r.try_get("token_id")?,
                            adam_id: r.try_get("adam_id")?,
                            pricing: r.try_get("pricing")?,
                            holder_kind: r.try_get("holder_kind")?,
                            holder: r.try_get("holder")?,
                            event_id: r.try_get("event_id")?,
                            outcome: r.try_get("outcome")?,
                        })
                    })
                    .collect::<Result<_, sqlx::Error>>()
                    .map_err(Into::into)
            }

            /// Deployments in force of the same content whose collection shares members with
            /// `collection_id` (or is it), with how many members they share; oldest first.
            pub async fn overlapping_deployments(&self, adam_id: &str, pricing: &str, collection_id: i64) -> Result<Vec<($crate::inventory::DeploymentRow, i64)>, StoreError> {
                let rows = sqlx::query(
                    "SELECT d.id, d.adam_id, d.pricing, d.token_ids, d.collection_id, d.action, d.on_shortage, d.created_at, \
                     d.on_leave, d.install_options, d.created_by, d.ending, \
                     (SELECT COUNT(*) FROM collection_members a JOIN collection_members b ON b.member_id = a.member_id \
                      WHERE a.collection_id = $3 AND b.collection_id = d.collection_id) AS shared \
                     FROM deployments d JOIN collections c ON c.id = d.collection_id \
                     WHERE d.adam_id = $1 AND d.pricing = $2 AND d.ending IS NULL \
                     AND c.kind = (SELECT kind FROM collections WHERE id = $3) \
                     AND (d.collection_id = $3 OR EXISTS (SELECT 1 FROM collection_members a JOIN collection_members b \
                          ON b.member_id = a.member_id WHERE a.collection_id = $3 AND b.collection_id = d.collection_id)) \
                     ORDER BY d.id",
                )
                .bind(adam_id)
                .bind(pricing)
                .bind(collection_id)
                .fetch_all(&self.pool)
                .await?;
                rows.iter()
                    .map(|r| Ok((deployment_row(r)?, r.try_get::<i64, _>("shared")?)))
                    .collect::<Result<_, sqlx::Error>>()
                    .map_err(Into::into)
            }

            /// Device targets whose platform is not among `compatible` become `not_compatible`
            /// before any license is claimed for them; ones that became compatible (a device
            /// replaced, Apple's platforms corrected) come back as `pending`. (marked, restored)
            /// Marks the targets of devices that cannot run the content `not_compatible` (their
            /// platform is not in `compatible`, when Apple named platforms, or they run an OS older
            /// than the app's minimum), with why in words; targets whose device can run it again go
            /// back to pending. Returns (marked, restored).
            pub async fn mark_incompatible(
                &self,
                deployment_id: i64,
                compatible: Option<&[&str]>,
                minimum: Option<&allot_domain::compat::MinimumOs>,
                now: i64,
            ) -> Result<(u64, u64), StoreError> {
                // Parameters after $1 and $2: the platforms (text), then the minimum's platforms,
                // its number and, last, its label (only the marking statement names the label).
                let mut texts: Vec<String> = Vec::new();
                let mut mark = |v: String| {
                    texts.push(v);
                    format!("${}", texts.len() + 2)
                };
                let wrong_platform = match compatible {
                    None => "FALSE".to_owned(),
                    Some([]) => "TRUE".to_owned(),
                    Some(list) => {
                        let marks: Vec<String> = list.iter().map(|p| mark((*p).to_owned())).collect();
                        format!("dv.platform NOT IN ({})", marks.join(","))
                    }
                };
                let too_old = match minimum {
                    None => "FALSE".to_owned(),
                    Some(m) => {
                        let marks: Vec<String> = m.platforms.iter().map(|p| mark((*p).to_owned())).collect();
                        format!(
                            "(dv.platform IN ({}) AND dv.os_version_num IS NOT NULL AND dv.os_version_num < ${})",
                            marks.join(","),
                            texts.len() + 3
                        )
                    }
                };
                let ordinal = minimum.map(|m| m.version.ordinal());
                let needs = match minimum {
                    Some(_) => format!("${}", texts.len() + 3 + 1),
                    None => "''".to_owned(),
                };
                let label = minimum.map(|m| m.label());
                let devices = format!("SELECT dv.id FROM devices dv WHERE {wrong_platform} OR {too_old}");
                let mut tx = self.write_tx().await?;
                let marked_sql = format!(
                    "UPDATE deployment_targets SET status = 'not_compatible', \
                     detail = (SELECT CASE WHEN {wrong_platform} \
                         THEN 'this device cannot run the app (' || dv.platform || '): no license is spent on it' \
                         ELSE 'the app needs ' || {needs} || ' or later and this device runs ' || dv.platform || ' ' || dv.os_version || ': no license is spent on it' END \
                       FROM devices dv WHERE dv.id = deployment_targets.member_id), \
                     updated_at = $2 \
                     WHERE deployment_id = $1 AND status IN ('pending','available','requested','waiting_for_license','needs_user') \
                     AND member_id IN ({devices})"
                );
                let mut q = sqlx::query(&marked_sql).bind(deployment_id).bind(now);
                for t in &texts {
                    q = q.bind(t);
                }
                if let (Some(n), Some(l)) = (ordinal, &label) {
                    q = q.bind(n).bind(l);
                }
                let marked = q.execute(&mut *tx).await?.rows_affected();
                let restored_sql = format!(
                    "UPDATE deployment_targets SET status = 'pending', detail = NULL, updated_at = $2 \
                     WHERE deployment_id = $1 AND status = 'not_compatible' AND member_id NOT IN ({devices})"
                );
                let mut q = sqlx::query(&restored_sql).bind(deployment_id).bind(now);
                for t in &texts {
                    q = q.bind(t);
                }
                if let Some(n) = ordinal {
                    q = q.bind(n);
                }
                let restored = q.execute(&mut *tx).await?.rows_affected();
                tx.commit().await?;
                Ok((marked, restored))
            }

            pub async fn supersede_targets(&self, deployment_id: i64, now: i64) -> Result<(u64, u64), StoreError> {
                let mut tx = self.write_tx().await?;
                let Some(row) = sqlx::query(
                    "SELECT d.adam_id, d.pricing, d.action, c.kind FROM deployments d \
                     JOIN collections c ON c.id = d.collection_id WHERE d.id = $1",
                )
                .bind(deployment_id)
                .fetch_optional(&mut *tx)
                .await?
                else {
                    return Ok((0, 0));
                };
                let (adam_id, pricing, action, kind): (String, String, String, String) =
                    (row.try_get(0)?, row.try_get(1)?, row.try_get(2)?, row.try_get(3)?);
                let rank = i64::from(matches!(action.as_str(), "uninstall" | "revoke"));
                // The deployment owning a target over this one: same content, same kind of
                // member, and a higher rank, or the same rank and older.
                let owner = "SELECT o.deployment_id FROM deployment_targets o \
                     JOIN deployments od ON od.id = o.deployment_id \
                     JOIN collections oc ON oc.id = od.collection_id \
                     WHERE o.member_id = deployment_targets.member_id AND od.id <> $1 \
                     AND od.ending IS NULL AND o.status <> 'left' \
                     AND od.adam_id = $3 AND od.pricing = $4 AND oc.kind = $5 \
                     AND (CASE WHEN od.action IN ('uninstall', 'revoke') THEN 1 ELSE 0 END > $6 \
                          OR (CASE WHEN od.action IN ('uninstall', 'revoke') THEN 1 ELSE 0 END = $6 AND od.id < $1)) \
                     ORDER BY CASE WHEN od.action IN ('uninstall', 'revoke') THEN 1 ELSE 0 END DESC, od.id ASC LIMIT 1";
                let resting = "'pending','available','requested','waiting_for_license','needs_user','license_assigned',\
                               'install_sent','installing','installed','failed','uninstalled','no_license','license_reclaimed'";
                let superseded = sqlx::query(&format!(
                    "UPDATE deployment_targets SET status = 'superseded', superseded_by = ({owner}), \
                     command_uuid = NULL, updated_at = $2 \
                     WHERE deployment_id = $1 AND status IN ({resting}) AND EXISTS ({owner})"
                ))
                .bind(deployment_id)
                .bind(now)
                .bind(&adam_id)
                .bind(&pricing)
                .bind(&kind)
                .bind(rank)
                .execute(&mut *tx)
                .await?
                .rows_affected();
                let resumed = sqlx::query(&format!(
                    "UPDATE deployment_targets SET status = 'pending', superseded_by = NULL, detail = NULL, updated_at = $2 \
                     WHERE deployment_id = $1 AND status = 'superseded' AND NOT EXISTS ({owner})"
                ))
                .bind(deployment_id)
                .bind(now)
                .bind(&adam_id)
                .bind(&pricing)
                .bind(&kind)
                .bind(rank)
                .execute(&mut *tx)
                .await?
                .rows_affected();
                tx.commit().await?;
                Ok((superseded, resumed))
            }

            pub async fn targets_by_command(&self, command_uuid: &str) -> Result<Vec<$crate::inventory::TargetRow>, StoreError> {
                let rows = sqlx::query(&format!("SELECT {TARGET_COLUMNS} FROM deployment_targets WHERE command_uuid = $1"))
                    .bind(command_uuid)
                    .fetch_all(&self.pool)
                    .await?;
                Ok(rows.iter().map(target_row).collect::<Result<_, _>>()?)
            }

            /// Writes a target's state only if it is still in one of `from` (a step racing another
            /// step, or another instance, must not undo what that one did). True if written.
            pub async fn update_target_from(&self, t: &$crate::inventory::TargetRow, from: &[&str], now: i64) -> Result<bool, StoreError> {
                let marks: Vec<String> = (0..from.len()).map(|i| format!("${}", i + 13)).collect();
                let sql = format!(
                    "UPDATE deployment_targets SET status = $3, license = $4, holder = $5, enrollment_id = $6, token_id = $7, \
                     event_id = $8, command_uuid = $9, detail = $10, updated_at = $11, declarative = $12 \
                     WHERE deployment_id = $1 AND member_id = $2 AND status IN ({})",
                    marks.join(",")
                );
                let mut q = sqlx::query(&sql)
                    .bind(t.deployment_id)
                    .bind(t.member_id)
                    .bind(&t.status)
                    .bind(&t.license)
                    .bind(&t.holder)
                    .bind(&t.enrollment_id)
                    .bind(t.token_id)
                    .bind(&t.event_id)
                    .bind(&t.command_uuid)
                    .bind(&t.detail)
                    .bind(now)
                    .bind(t.declarative);
                for f in from {
                    q = q.bind(*f);
                }
                Ok(q.execute(&self.pool).await?.rows_affected() == 1)
            }

            /// Writes many targets' states at once, each only if it is still in the status it was
            /// read in (`update_target_from`, a thousand at a time: one statement per chunk,
            /// the rows as one JSON parameter). How many were written.
            pub async fn update_targets_from(&self, items: &[(&$crate::inventory::TargetRow, &str)], now: i64) -> Result<u64, StoreError> {
                let sql = format!(
                    "UPDATE deployment_targets SET status = j.value->>2, license = j.value->>3, holder = j.value->>4, \
                     enrollment_id = j.value->>5, token_id = CAST(j.value->>6 AS BIGINT), event_id = j.value->>7, \
                     command_uuid = j.value->>8, detail = j.value->>9, updated_at = $1, declarative = (CAST(j.value->>10 AS INTEGER) = 1) \
                     FROM {} WHERE deployment_targets.deployment_id = CAST(j.value->>0 AS BIGINT) \
                     AND deployment_targets.member_id = CAST(j.value->>1 AS BIGINT) AND deployment_targets.status = j.value->>11",
                    Self::json_rows(2)
                );
                let mut tx = self.write_tx().await?;
                let mut n = 0;
                for chunk in items.chunks(1000) {
                    let rows: Vec<serde_json::Value> = chunk
                        .iter()
                        .map(|(t, from)| {
                            serde_json::json!([
                                t.deployment_id, t.member_id, t.status, t.license, t.holder, t.enrollment_id, t.token_id,
                                t.event_id, t.command_uuid, t.detail, i32::from(t.declarative), from
                            ])
                        })
                        .collect();
                    n += sqlx::query(&sql)
                        .bind(now)
                        .bind(serde_json::Value::Array(rows).to_string())
                        .execute(&mut *tx)
                        .await?
                        .rows_affected();
                }
                tx.commit().await?;
                Ok(n)
            }

            /// Writes a target's state (every field but the key and label).
            pub async fn update_target(&self, t: &$crate::inventory::TargetRow, now: i64) -> Result<(), StoreError> {
                sqlx::query(
                    "UPDATE deployment_targets SET status = $3, license = $4, holder = $5, enrollment_id = $6, token_id = $7, \
                     event_id = $8, command_uuid = $9, detail = $10, updated_at = $11, declarative = $12 WHERE deployment_id = $1 AND member_id = $2",
                )
                .bind(t.deployment_id)
                .bind(t.member_id)
                .bind(&t.status)
                .bind(&t.license)
                .bind(&t.holder)
                .bind(&t.enrollment_id)
                .bind(t.token_id)
                .bind(&t.event_id)
                .bind(&t.command_uuid)
                .bind(&t.detail)
                .bind(now)
                .bind(t.declarative)
                .execute(&self.pool)
                .await?;
                Ok(())
            }

            /// Reserves `n` licenses if that many are free and not reserved; all or nothing.
            pub async fn reserve_licenses(&self, token_id: i64, adam_id: &str, pricing: &str, n: i64) -> Result<bool, StoreError> {
                let changed = sqlx::query(
                    "UPDATE assets SET reserved = reserved + $4 WHERE token_id = $1 AND adam_id = $2 AND pricing = $3 \
                     AND (unlimited OR available - reserved >= $4)",
                )
                .bind(token_id)
                .bind(adam_id)
                .bind(pricing)
                .bind(n)
                .execute(&self.pool)
                .await?
                .rows_affected();
                Ok(changed == 1)
            }

            /// Reserves one license per target and marks the targets `license_requested` on this
            /// token, in one transaction: if the process dies before Apple answers, the targets
            /// say what was reserved, and following them up releases it. All or nothing.
            pub async fn reserve_for_targets(
                &self,
                token_id: i64,
                adam_id: &str,
                pricing: &str,
                targets: &[$crate::inventory::TargetRow],
                now: i64,
            ) -> Result<bool, StoreError> {
                let mut tx = self.write_tx().await?;
                let reserved = sqlx::query(
                    "UPDATE assets SET reserved = reserved + $4 WHERE token_id = $1 AND adam_id = $2 AND pricing = $3 \
                     AND (unlimited OR available - reserved >= $4)",
                )
                .bind(token_id)
                .bind(adam_id)
                .bind(pricing)
                .bind(targets.len() as i64)
                .execute(&mut *tx)
                .await?
                .rows_affected();
                if reserved != 1 {
                    return Ok(false);
                }
                let sql = format!(
                    "UPDATE deployment_targets SET status = 'license_requested', license = j.value->>2, holder = j.value->>3, \
                     enrollment_id = j.value->>4, token_id = $1, event_id = NULL, detail = NULL, updated_at = $3 \
                     FROM {} WHERE deployment_targets.deployment_id = CAST(j.value->>0 AS BIGINT) \
                     AND deployment_targets.member_id = CAST(j.value->>1 AS BIGINT)",
                    Self::json_rows(2)
                );
                for chunk in targets.chunks(1000) {
                    let rows: Vec<serde_json::Value> = chunk
                        .iter()
                        .map(|t| serde_json::json!([t.deployment_id, t.member_id, t.license, t.holder, t.enrollment_id]))
                        .collect();
                    sqlx::query(&sql)
                        .bind(token_id)
                        .bind(serde_json::Value::Array(rows).to_string())
                        .bind(now)
                        .execute(&mut *tx)
                        .await?;
                }
                tx.commit().await?;
                Ok(true)
            }

            /// The events (and their tokens) that targets of a deployment wait on; `None` for
            /// requests whose outcome is unknown.
            pub async fn pending_events(&self, deployment_id: i64) -> Result<Vec<(Option<String>, i64)>, StoreError> {
                let rows: Vec<(Option<String>, i64)> = sqlx::query_as(
                    "SELECT DISTINCT event_id, token_id FROM deployment_targets \
                     WHERE deployment_id = $1 AND status IN ('license_requested', 'license_releasing', 'invitation_pending') AND token_id IS NOT NULL \
                     AND (status <> 'invitation_pending' OR event_id IS NOT NULL) ORDER BY token_id",
                )
                .bind(deployment_id)
                .fetch_all(&self.pool)
                .await?;
                Ok(rows)
            }

            /// Targets waiting on one event (`None`: on an unknown outcome, at most `limit`).
            pub async fn targets_of_event(&self, deployment_id: i64, event_id: Option<&str>, limit: i64) -> Result<Vec<$crate::inventory::TargetRow>, StoreError> {
                let sql = format!(
                    "SELECT {TARGET_COLUMNS} FROM deployment_targets WHERE deployment_id = $1 AND status IN ('license_requested', 'license_releasing', 'invitation_pending') \
                     AND (($2 IS NULL AND event_id IS NULL AND status <> 'invitation_pending') OR event_id = $2) ORDER BY member_id LIMIT $3"
                );
                let rows = sqlx::query(&sql).bind(deployment_id).bind(event_id).bind(limit).fetch_all(&self.pool).await?;
                Ok(rows.iter().map(target_row).collect::<Result<_, _>>()?)
            }

            /// A page of a deployment's targets, optionally of one status, by label.
            pub async fn targets_page(
                &self,
                deployment_id: i64,
                status: Option<&str>,
                limit: i64,
                offset: i64,
            ) -> Result<Vec<$crate::inventory::TargetRow>, StoreError> {
                let sql = format!(
                    "SELECT {TARGET_COLUMNS} FROM deployment_targets WHERE deployment_id = $1 AND ($2 IS NULL OR status = $2) \
                     ORDER BY label LIMIT $3 OFFSET $4"
                );
                let rows = sqlx::query(&sql).bind(deployment_id).bind(status).bind(limit).bind(offset).fetch_all(&self.pool).await?;
                Ok(rows.iter().map(target_row).collect::<Result<_, _>>()?)
            }

            /// Targets per status.
            pub async fn target_counts(&self, deployment_id: i64) -> Result<Vec<(String, i64)>, StoreError> {
                Ok(sqlx::query_as("SELECT status, COUNT(*) FROM deployment_targets WHERE deployment_id = $1 GROUP BY status ORDER BY status")
                    .bind(deployment_id)
                    .fetch_all(&self.pool)
                    .await?)
            }

            /// Every deployment's targets by status, in one statement (lists of deployments).
            pub async fn all_target_counts(&self) -> Result<std::collections::HashMap<i64, Vec<(String, i64)>>, StoreError> {
                let rows: Vec<(i64, String, i64)> = sqlx::query_as(
                    "SELECT deployment_id, status, COUNT(*) FROM deployment_targets GROUP BY deployment_id, status ORDER BY deployment_id, status",
                )
                .fetch_all(&self.pool)
                .await?;
                let mut out: std::collections::HashMap<i64, Vec<(String, i64)>> = std::collections::HashMap::new();
                for (d, status, n) in rows {
                    out.entry(d).or_default().push((status, n));
                }
                Ok(out)
            }

            /// Which of `holders` hold a license of the asset on any of the tokens, and on which
            /// (the first in `token_ids` order).
            pub async fn holders_among(
                &self,
                token_ids: &[i64],
                adam_id: &str,
                pricing: &str,
                kind: &str,
                holders: &[String],
            ) -> Result<std::collections::HashMap<String, i64>, StoreError> {
                let mut found = std::collections::HashMap::new();
                for t in token_ids {
                    for chunk in holders.chunks(BATCH) {
                        let marks: Vec<String> = (0..chunk.len()).map(|i| format!("${}", i + 5)).collect();
                        let sql = format!(
                            "SELECT holder FROM assignments WHERE token_id = $1 AND adam_id = $2 AND pricing = $3 AND holder_kind = $4 \
                             AND holder IN ({})",
                            marks.join(",")
                        );
                        let mut q = sqlx::query_scalar::<_, String>(&sql).bind(*t).bind(adam_id).bind(pricing).bind(kind);
                        for h in chunk {
                            q = q.bind(h);
                        }
                        for h in q.fetch_all(&self.pool).await? {
                            found.entry(h).or_insert(*t);
                        }
                    }
                }
                Ok(found)
            }

            /// Gives reserved licenses back (a claim failed).
            pub async fn release_licenses(&self, token_id: i64, adam_id: &str, pricing: &str, n: i64) -> Result<(), StoreError> {
                sqlx::query($crate::queries::RELEASE_RESERVED)
                .bind(token_id)
                .bind(adam_id)
                .bind(pricing)
                .bind(n)
                .execute(&self.pool)
                .await?;
                Ok(())
            }

            /// Ends claims in one transaction: targets still `license_requested` take their new
            /// state, their reservations are released and the assignments Apple granted recorded
            /// with their counts — so a crash cannot release a reservation twice, and a batch of
            /// a thousand costs a few statements and one commit.
            pub async fn finish_claims(
                &self,
                token_id: i64,
                items: &[($crate::inventory::TargetRow, Option<$crate::types::AssignmentRow>)],
                generation: i64,
                now: i64,
            ) -> Result<(), StoreError> {
                let sql = format!(
                    // Apple's event confirmed the license (or its refusal).
                    "UPDATE deployment_targets SET status = j.value->>2, event_id = NULL, detail = j.value->>3, updated_at = $1, \
                     claimed = (CAST(j.value->>4 AS INTEGER) = 1), confirmed_at = $1 \
                     FROM {} WHERE deployment_targets.deployment_id = CAST(j.value->>0 AS BIGINT) \
                     AND deployment_targets.member_id = CAST(j.value->>1 AS BIGINT) AND deployment_targets.status = 'license_requested' \
                     RETURNING deployment_targets.deployment_id, deployment_targets.member_id",
                    Self::json_rows(2)
                );
                let mut tx = self.write_tx().await?;
                for chunk in items.chunks(1000) {
                    let rows: Vec<serde_json::Value> = chunk
                        .iter()
                        .map(|(t, granted)| {
                            serde_json::json!([t.deployment_id, t.member_id, t.status, t.detail, i32::from(granted.is_some())])
                        })
                        .collect();
                    // Those still requested: the others were finished already (by another step
                    // or instance).
                    let finished: std::collections::HashSet<(i64, i64)> = sqlx::query_as::<_, (i64, i64)>(&sql)
                        .bind(now)
                        .bind(serde_json::Value::Array(rows).to_string())
                        .fetch_all(&mut *tx)
                        .await?
                        .into_iter()
                        .collect();
                    let mut released: std::collections::BTreeMap<i64, i64> = std::collections::BTreeMap::new();
                    let mut granted = Vec::new();
                    for (t, g) in chunk {
                        if finished.contains(&(t.deployment_id, t.member_id)) {
                            *released.entry(t.deployment_id).or_default() += 1;
                            granted.extend(g.iter().cloned());
                        }
                    }
                    for (deployment_id, n) in released {
                        let asset: Option<(String, String)> = sqlx::query_as("SELECT adam_id, pricing FROM deployments WHERE id = $1")
                            .bind(deployment_id)
                            .fetch_optional(&mut *tx)
                            .await?;
                        if let Some((adam_id, pricing)) = asset {
                            sqlx::query($crate::queries::RELEASE_RESERVED)
                                .bind(token_id)
                                .bind(adam_id)
                                .bind(pricing)
                                .bind(n)
                                .execute(&mut *tx)
                                .await?;
                        }
                    }
                    add_assignments_in(&mut tx, token_id, &granted, generation).await?;
                }
                tx.commit().await?;
                Ok(())
            }

            /// Records what a notification said about holders of an event (`None`: done as asked,
            /// else Apple's error number and message). The first word on a holder stands.
            pub async fn record_event_results(
                &self,
                event_id: &str,
                results: &[(String, Option<(i32, String)>)],
                now: i64,
            ) -> Result<u64, StoreError> {
                let sql = format!(
                    "INSERT INTO event_results (event_id, holder, error_number, error_message, received_at) \
                     SELECT $1, j.value->>0, CAST(j.value->>1 AS INTEGER), j.value->>2, $3 FROM {} WHERE TRUE \
                     ON CONFLICT (event_id, holder) DO NOTHING",
                    Self::json_rows(2)
                );
                let rows: Vec<serde_json::Value> = results
                    .iter()
                    .map(|(holder, e)| match e {
                        None => serde_json::json!([holder, null, null]),
                        Some((n, m)) => serde_json::json!([holder, n, m]),
                    })
                    .collect();
                let mut tx = self.write_tx().await?;
                let n = sqlx::query(&sql)
                    .bind(event_id)
                    .bind(serde_json::Value::Array(rows).to_string())
                    .bind(now)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                tx.commit().await?;
                Ok(n)
            }

            /// What notifications said about an event's holders so far.
            pub async fn event_results(
                &self,
                event_id: &str,
            ) -> Result<std::collections::HashMap<String, Option<(i32, String)>>, StoreError> {
                let rows: Vec<(String, Option<i32>, Option<String>)> = sqlx::query_as(
                    "SELECT holder, error_number, error_message FROM event_results WHERE event_id = $1",
                )
                .bind(event_id)
                .fetch_all(&self.pool)
                .await?;
                Ok(rows
                    .into_iter()
                    .map(|(h, n, m)| (h, n.map(|n| (n, m.unwrap_or_default()))))
                    .collect())
            }

            /// Forgets an event's results once no target waits on it, and any result older than
            /// `before` (events of requests no step follows any more).
            pub async fn forget_event_results(&self, event_id: &str, before: i64) -> Result<(), StoreError> {
                sqlx::query("DELETE FROM event_results WHERE event_id = $1 OR received_at < $2")
                    .bind(event_id)
                    .bind(before)
                    .execute(&self.pool)
                    .await?;
                Ok(())
            }

            /// Records the event Apple gave a batch of requests (license or release), in one
            /// statement, for targets still in `status`.
            pub async fn set_targets_event(
                &self,
                deployment_id: i64,
                member_ids: &[i64],
                status: &str,
                event_id: &str,
                now: i64,
            ) -> Result<u64, StoreError> {
                let mut n = 0;
                for chunk in member_ids.chunks(BATCH) {
                    let marks: Vec<String> = (0..chunk.len()).map(|i| format!("${}", i + 5)).collect();
                    let sql = format!(
                        "UPDATE deployment_targets SET event_id = $3, updated_at = $4 \
                         WHERE deployment_id = $1 AND status = $2 AND member_id IN ({})",
                        marks.join(",")
                    );
                    let mut q = sqlx::query(&sql).bind(deployment_id).bind(status).bind(event_id).bind(now);
                    for m in chunk {
                        q = q.bind(*m);
                    }
                    n += q.execute(&self.pool).await?.rows_affected();
                }
                Ok(n)
            }

            /// Licenses free for new claims: available minus reserved.
            pub async fn claimable(&self, token_id: i64, adam_id: &str, pricing: &str) -> Result<i64, StoreError> {
                let row: Option<(i64, i64, bool)> =
                    sqlx::query_as("SELECT available, reserved, unlimited FROM assets WHERE token_id = $1 AND adam_id = $2 AND pricing = $3")
                        .bind(token_id)
                        .bind(adam_id)
                        .bind(pricing)
                        .fetch_optional(&self.pool)
                        .await?;
                Ok(match row {
                    Some((_, _, true)) => i64::MAX / 4,
                    Some((available, reserved, false)) => (available - reserved).max(0),
                    None => 0,
                })
            }
        }
    };
}

pub(crate) use impl_deployment_queries;
