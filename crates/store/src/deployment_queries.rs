//! Deployment queries, written once for both backends like `queries.rs`.

macro_rules! impl_deployment_queries {
    ($store:ty) => {
        const TARGET_COLUMNS: &str =
            "deployment_id, member_id, label, status, license, holder, enrollment_id, token_id, event_id, command_uuid, detail, claimed";

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
                claimed: r.try_get("claimed")?,
            })
        }

        fn deployment_row<R: sqlx::Row>(r: &R) -> Result<$crate::inventory::DeploymentRow, sqlx::Error>
        where
            for<'a> &'a str: sqlx::ColumnIndex<R>,
            for<'a> i64: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
            for<'a> String: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
        {
            let tokens: String = r.try_get("token_ids")?;
            Ok($crate::inventory::DeploymentRow {
                id: r.try_get("id")?,
                adam_id: r.try_get("adam_id")?,
                pricing: r.try_get("pricing")?,
                token_ids: serde_json::from_str(&tokens).unwrap_or_default(),
                collection_id: r.try_get("collection_id")?,
                action: r.try_get("action")?,
                on_shortage: r.try_get("on_shortage")?,
                created_at: r.try_get("created_at")?,
            })
        }

        impl $store {
            pub async fn insert_deployment(&self, d: &$crate::inventory::NewDeployment, now: i64) -> Result<$crate::inventory::DeploymentRow, StoreError> {
                let row = sqlx::query(
                    "INSERT INTO deployments (adam_id, pricing, token_ids, collection_id, action, on_shortage, created_at) \
                     VALUES ($1,$2,$3,$4,$5,$6,$7) RETURNING id, adam_id, pricing, token_ids, collection_id, action, on_shortage, created_at",
                )
                .bind(&d.adam_id)
                .bind(&d.pricing)
                .bind(serde_json::to_string(&d.token_ids).expect("ids serialise"))
                .bind(d.collection_id)
                .bind(&d.action)
                .bind(&d.on_shortage)
                .bind(now)
                .fetch_one(&self.pool)
                .await?;
                Ok(deployment_row(&row)?)
            }

            pub async fn deployments(&self) -> Result<Vec<$crate::inventory::DeploymentRow>, StoreError> {
                let rows = sqlx::query("SELECT id, adam_id, pricing, token_ids, collection_id, action, on_shortage, created_at FROM deployments ORDER BY id")
                    .fetch_all(&self.pool)
                    .await?;
                Ok(rows.iter().map(deployment_row).collect::<Result<_, _>>()?)
            }

            pub async fn deployment(&self, id: i64) -> Result<Option<$crate::inventory::DeploymentRow>, StoreError> {
                let row = sqlx::query("SELECT id, adam_id, pricing, token_ids, collection_id, action, on_shortage, created_at FROM deployments WHERE id = $1")
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
                let marks: Vec<String> = (0..from.len()).map(|i| format!("${}", i + 12)).collect();
                let sql = format!(
                    "UPDATE deployment_targets SET status = $3, license = $4, holder = $5, enrollment_id = $6, token_id = $7, \
                     event_id = $8, command_uuid = $9, detail = $10, updated_at = $11 \
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
                    .bind(now);
                for f in from {
                    q = q.bind(*f);
                }
                Ok(q.execute(&self.pool).await?.rows_affected() == 1)
            }

            /// Writes a target's state (every field but the key and label).
            pub async fn update_target(&self, t: &$crate::inventory::TargetRow, now: i64) -> Result<(), StoreError> {
                sqlx::query(
                    "UPDATE deployment_targets SET status = $3, license = $4, holder = $5, enrollment_id = $6, token_id = $7, \
                     event_id = $8, command_uuid = $9, detail = $10, updated_at = $11 WHERE deployment_id = $1 AND member_id = $2",
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
                let mut tx = self.pool.begin().await?;
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
                for t in targets {
                    sqlx::query(
                        "UPDATE deployment_targets SET status = 'license_requested', license = $3, holder = $4, enrollment_id = $5, \
                         token_id = $6, event_id = NULL, detail = NULL, updated_at = $7 WHERE deployment_id = $1 AND member_id = $2",
                    )
                    .bind(t.deployment_id)
                    .bind(t.member_id)
                    .bind(&t.license)
                    .bind(&t.holder)
                    .bind(&t.enrollment_id)
                    .bind(token_id)
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
                sqlx::query(
                    "UPDATE assets SET reserved = CASE WHEN reserved > $4 THEN reserved - $4 ELSE 0 END \
                     WHERE token_id = $1 AND adam_id = $2 AND pricing = $3",
                )
                .bind(token_id)
                .bind(adam_id)
                .bind(pricing)
                .bind(n)
                .execute(&self.pool)
                .await?;
                Ok(())
            }

            /// Ends claims in one transaction: for each target still `license_requested`, its
            /// reservation is released, the assignment (when Apple granted it) recorded with its
            /// counts, and its new state written — so a crash cannot release a reservation twice,
            /// and a batch of a thousand costs one commit.
            pub async fn finish_claims(
                &self,
                token_id: i64,
                items: &[($crate::inventory::TargetRow, Option<$crate::types::AssignmentRow>)],
                generation: i64,
                now: i64,
            ) -> Result<(), StoreError> {
                let mut tx = self.write_tx().await?;
                for (target, granted) in items {
                    let still_requested: Option<String> =
                        sqlx::query_scalar("SELECT status FROM deployment_targets WHERE deployment_id = $1 AND member_id = $2")
                            .bind(target.deployment_id)
                            .bind(target.member_id)
                            .fetch_optional(&mut *tx)
                            .await?;
                    if still_requested.as_deref() != Some("license_requested") {
                        // Finished already (by another step or instance).
                        continue;
                    }
                    let (adam, pricing): (String, String) = match granted {
                        Some(a) => (a.adam_id.clone(), a.pricing.clone()),
                        None => sqlx::query_as("SELECT adam_id, pricing FROM deployments WHERE id = $1")
                            .bind(target.deployment_id)
                            .fetch_one(&mut *tx)
                            .await?,
                    };
                    sqlx::query(
                        "UPDATE assets SET reserved = CASE WHEN reserved > 0 THEN reserved - 1 ELSE 0 END \
                         WHERE token_id = $1 AND adam_id = $2 AND pricing = $3",
                    )
                    .bind(token_id)
                    .bind(&adam)
                    .bind(&pricing)
                    .execute(&mut *tx)
                    .await?;
                    if let Some(a) = granted {
                        add_assignment_in(&mut tx, token_id, a, generation).await?;
                    }
                    sqlx::query(
                        "UPDATE deployment_targets SET status = $3, event_id = NULL, detail = $4, updated_at = $5, claimed = $6 \
                         WHERE deployment_id = $1 AND member_id = $2",
                    )
                    .bind(target.deployment_id)
                    .bind(target.member_id)
                    .bind(&target.status)
                    .bind(&target.detail)
                    .bind(now)
                    .bind(granted.is_some())
                    .execute(&mut *tx)
                    .await?;
                }
                tx.commit().await?;
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
