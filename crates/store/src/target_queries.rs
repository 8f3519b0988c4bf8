//! Queries that move deployment targets along (members, user registrations, releases,
//! re-enrolment, departed people), written once for both backends like `queries.rs`.

macro_rules! impl_target_queries {
    ($store:ty) => {
        /// Columns of a target joined with its member's person (`p`).
        const MEMBER_PERSON_COLUMNS: &str =
            "p.id AS person_id, p.client_user_id, p.name AS person_name, p.email AS person_email, p.managed_apple_id, p.removed_at";

        fn person_facts<R: sqlx::Row>(r: &R) -> Result<Option<$crate::inventory::PersonFacts>, sqlx::Error>
        where
            for<'a> &'a str: sqlx::ColumnIndex<R>,
            for<'a> i64: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
            for<'a> String: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
        {
            let Some(id) = r.try_get::<Option<i64>, _>("person_id")? else {
                return Ok(None);
            };
            Ok(Some($crate::inventory::PersonFacts {
                id,
                client_user_id: r.try_get("client_user_id")?,
                name: r.try_get("person_name")?,
                email: r.try_get("person_email")?,
                managed_apple_id: r.try_get("managed_apple_id")?,
                removed: r.try_get::<Option<i64>, _>("removed_at")?.is_some(),
            }))
        }

        /// Statuses in which a target holds (or is about to hold) a license of its deployment.
        const HOLDING: &str = "'license_assigned','install_sent','installing','installed'";
        /// Statuses a target must leave by itself: a request to Apple or a removal under way.
        const IN_FLIGHT: &str = "'license_requested','license_releasing','remove_pending','remove_sent','release_pending'";
        /// Another deployment in force (not ending) that gives this target's member the same
        /// content: then a departure or an end takes nothing away. `deployment_targets` is the
        /// outer target; `$1` its deployment.
        const WANTED_ELSEWHERE: &str = "SELECT 1 FROM deployment_targets o JOIN deployments od ON od.id = o.deployment_id \
             JOIN deployments me ON me.id = $1 \
             JOIN collections oc ON oc.id = od.collection_id JOIN collections mc ON mc.id = me.collection_id \
             WHERE o.member_id = deployment_targets.member_id AND od.id <> $1 AND od.ending IS NULL \
             AND od.adam_id = me.adam_id AND od.pricing = me.pricing AND oc.kind = mc.kind \
             AND od.action IN ('required', 'available') AND o.status NOT IN ('left', 'not_compatible')";

        fn status_list(statuses: &[&str]) -> String {
            statuses.iter().map(|s| format!("'{}'", s.replace('\'', ""))).collect::<Vec<_>>().join(",")
        }

        impl $store {
            /// Makes every member of the collection a target (new ones `pending`) in one statement:
            /// enrolled devices, or people who have not left. Members who left the collection are
            /// handled by `on_leave`: `keep` leaves their license (and app) alone; `revoke` gives the
            /// license back (`release_pending`), `uninstall` removes the app first
            /// (`remove_pending`) — unless another deployment in force still wants the content for
            /// them. Either way they end `left`, and are `pending` again if they come back.
            pub async fn sync_targets(&self, deployment_id: i64, collection_id: i64, kind: &str, on_leave: &str, now: i64) -> Result<u64, StoreError> {
                let sql = if kind == "users" {
                    "INSERT INTO deployment_targets (deployment_id, member_id, label, status, updated_at) \
                     SELECT $1, p.id, COALESCE(p.email, p.name), 'pending', $3 FROM collection_members m JOIN people p ON p.id = m.member_id \
                     WHERE m.collection_id = $2 AND p.removed_at IS NULL ON CONFLICT DO NOTHING"
                } else {
                    "INSERT INTO deployment_targets (deployment_id, member_id, label, status, updated_at) \
                     SELECT $1, d.id, d.serial_number, 'pending', $3 FROM collection_members m JOIN devices d ON d.id = m.member_id \
                     WHERE m.collection_id = $2 AND d.enrolled ON CONFLICT DO NOTHING"
                };
                let added = sqlx::query(sql).bind(deployment_id).bind(collection_id).bind(now).execute(&self.pool).await?.rows_affected();
                let outside = "member_id NOT IN (SELECT member_id FROM collection_members WHERE collection_id = $2)";
                if on_leave == "revoke" || on_leave == "uninstall" {
                    let (to, detail) = if on_leave == "revoke" {
                        ("release_pending", "left the collection: its license is given back")
                    } else {
                        ("remove_pending", "left the collection: the app is removed, then its license given back")
                    };
                    sqlx::query(&format!(
                        "UPDATE deployment_targets SET status = '{to}', detail = '{detail}', command_uuid = NULL, updated_at = $3 \
                         WHERE deployment_id = $1 AND status IN ({HOLDING}) AND {outside} AND NOT EXISTS ({WANTED_ELSEWHERE})"
                    ))
                    .bind(deployment_id)
                    .bind(collection_id)
                    .bind(now)
                    .execute(&self.pool)
                    .await?;
                }
                // Members who left whose license stays (on_leave keep, or wanted elsewhere, or none
                // held): this deployment stops acting on them. Requests in flight finish first.
                let kept = if on_leave == "keep" {
                    "left the collection; the license it holds is kept"
                } else {
                    "left the collection; another deployment still wants it here, so its license stays"
                };
                sqlx::query(&format!(
                    "UPDATE deployment_targets SET status = 'left', \
                     detail = CASE WHEN status IN ({HOLDING}) THEN '{kept}' ELSE 'left the collection' END, updated_at = $3 \
                     WHERE deployment_id = $1 AND status NOT IN ('left', {IN_FLIGHT}) \
                     AND NOT (status = 'invitation_pending' AND event_id IS NOT NULL) AND {outside}"
                ))
                .bind(deployment_id)
                .bind(collection_id)
                .bind(now)
                .execute(&self.pool)
                .await?;
                sqlx::query(
                    "UPDATE deployment_targets SET status = 'pending', detail = NULL, updated_at = $3 \
                     WHERE deployment_id = $1 AND status = 'left' \
                     AND member_id IN (SELECT member_id FROM collection_members WHERE collection_id = $2)",
                )
                .bind(deployment_id)
                .bind(collection_id)
                .bind(now)
                .execute(&self.pool)
                .await?;
                Ok(added)
            }

            /// Targets waiting on a request to Apple, over every deployment.
            pub async fn requests_in_flight(&self) -> Result<i64, StoreError> {
                Ok(sqlx::query_scalar(
                    "SELECT COUNT(*) FROM deployment_targets WHERE status IN ('license_requested', 'license_releasing') \
                     OR (status = 'invitation_pending' AND event_id IS NOT NULL)",
                )
                .fetch_one(&self.pool)
                .await?)
            }

            /// Whether a member is in a collection (a target that gave its license back as it left
            /// ends `left`, not `failed`).
            pub async fn in_collection(&self, collection_id: i64, member_id: i64) -> Result<bool, StoreError> {
                let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM collection_members WHERE collection_id = $1 AND member_id = $2")
                    .bind(collection_id)
                    .bind(member_id)
                    .fetch_one(&self.pool)
                    .await?;
                Ok(n > 0)
            }

            /// A collection to delete once no deployment uses it; its members go now (nothing new
            /// joins the deployments ending with it).
            pub async fn mark_collection_deleting(&self, id: i64, now: i64) -> Result<(), StoreError> {
                let mut tx = self.write_tx().await?;
                sqlx::query("DELETE FROM collection_members WHERE collection_id = $1").bind(id).execute(&mut *tx).await?;
                sqlx::query("UPDATE collections SET deleting_at = $2 WHERE id = $1").bind(id).bind(now).execute(&mut *tx).await?;
                tx.commit().await?;
                Ok(())
            }

            /// A token to delete once the deployments ending now are gone.
            pub async fn mark_token_deleting(&self, id: i64, now: i64) -> Result<(), StoreError> {
                sqlx::query("UPDATE tokens SET deleting_at = $2 WHERE id = $1").bind(id).bind(now).execute(&self.pool).await?;
                Ok(())
            }

            /// Collections and tokens marked for deletion that nothing holds back any more:
            /// (collections no deployment uses, tokens once no deployment is ending).
            pub async fn freed_for_deletion(&self) -> Result<(Vec<i64>, Vec<i64>), StoreError> {
                let collections = sqlx::query_scalar(
                    "SELECT c.id FROM collections c WHERE c.deleting_at IS NOT NULL \
                     AND NOT EXISTS (SELECT 1 FROM deployments d WHERE d.collection_id = c.id)",
                )
                .fetch_all(&self.pool)
                .await?;
                let tokens = sqlx::query_scalar(
                    "SELECT t.id FROM tokens t WHERE t.deleting_at IS NOT NULL \
                     AND NOT EXISTS (SELECT 1 FROM deployments d WHERE d.ending IS NOT NULL)",
                )
                .fetch_all(&self.pool)
                .await?;
                Ok((collections, tokens))
            }

            /// Ends a deployment deleted with `then` revoke or uninstall: it is no longer in force
            /// (`ending` set; it owns no target from now on) and its steps give back what it holds.
            pub async fn end_deployment(&self, id: i64, then: &str) -> Result<bool, StoreError> {
                Ok(sqlx::query("UPDATE deployments SET ending = $2 WHERE id = $1")
                    .bind(id)
                    .bind(then)
                    .execute(&self.pool)
                    .await?
                    .rows_affected()
                    == 1)
            }

            /// One step of an ending deployment's wind-down, in one transaction: targets holding a
            /// license that no deployment in force wants go to `remove_pending` (uninstall) or
            /// `release_pending` (revoke); every other target not in flight is dropped (its license,
            /// if any, now serves the deployment that wants it). When none is left the deployment
            /// goes too. Returns the targets still winding down (0: the deployment is gone).
            pub async fn wind_down_targets(&self, deployment_id: i64, then: &str, now: i64) -> Result<i64, StoreError> {
                let mut tx = self.write_tx().await?;
                let (to, detail) = if then == "revoke" {
                    ("release_pending", "its deployment was deleted: its license is given back")
                } else {
                    ("remove_pending", "its deployment was deleted: the app is removed, then its license given back")
                };
                // Members that left earlier and kept the license this deployment claimed give it
                // back too.
                sqlx::query(&format!(
                    "UPDATE deployment_targets SET status = '{to}', detail = '{detail}', command_uuid = NULL, updated_at = $2 \
                     WHERE deployment_id = $1 AND (status IN ({HOLDING}) OR (status = 'left' AND claimed)) \
                     AND NOT EXISTS ({WANTED_ELSEWHERE})"
                ))
                .bind(deployment_id)
                .bind(now)
                .execute(&mut *tx)
                .await?;
                sqlx::query(&format!(
                    "DELETE FROM deployment_targets WHERE deployment_id = $1 AND status NOT IN ({IN_FLIGHT}) \
                     AND NOT (status = 'invitation_pending' AND event_id IS NOT NULL)"
                ))
                .bind(deployment_id)
                .execute(&mut *tx)
                .await?;
                let left: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM deployment_targets WHERE deployment_id = $1")
                    .bind(deployment_id)
                    .fetch_one(&mut *tx)
                    .await?;
                if left == 0 {
                    sqlx::query("DELETE FROM deployments WHERE id = $1").bind(deployment_id).execute(&mut *tx).await?;
                }
                tx.commit().await?;
                Ok(left)
            }

            /// A page of targets in one of `statuses`, after `after_member`, with their members:
            /// a device and its primary user, or a person and their enrolled devices.
            pub async fn member_targets_page(
                &self,
                deployment_id: i64,
                kind: &str,
                statuses: &[&str],
                after_member: i64,
                limit: i64,
            ) -> Result<Vec<$crate::inventory::MemberTarget>, StoreError> {
                let targets = "t.deployment_id, t.member_id, t.label, t.status, t.license, t.holder, t.enrollment_id, t.token_id, \
                               t.event_id, t.command_uuid, t.detail, t.claimed, t.superseded_by, t.confirmed_at, t.declarative";
                let filter = format!(
                    "t.deployment_id = $1 AND t.status IN ({}) AND t.member_id > $2 ORDER BY t.member_id LIMIT $3",
                    status_list(statuses)
                );
                if kind == "users" {
                    let sql = format!(
                        "SELECT {targets}, {MEMBER_PERSON_COLUMNS} FROM deployment_targets t JOIN people p ON p.id = t.member_id WHERE {filter}"
                    );
                    let rows = sqlx::query(&sql).bind(deployment_id).bind(after_member).bind(limit).fetch_all(&self.pool).await?;
                    let mut out = Vec::with_capacity(rows.len());
                    for r in &rows {
                        let person = person_facts(r)?;
                        out.push($crate::inventory::MemberTarget {
                            target: target_row(r)?,
                            serial_number: None,
                            platform: None,
                            os_version: None,
                            active: person.as_ref().is_some_and(|p| !p.removed),
                            install_ids: Vec::new(),
                            person,
                        });
                    }
                    // Their enrolled devices, in one query for the page.
                    let ids: Vec<i64> = out.iter().map(|m| m.target.member_id).collect();
                    for chunk in ids.chunks(BATCH) {
                        let marks: Vec<String> = (0..chunk.len()).map(|i| format!("${}", i + 1)).collect();
                        let sql = format!(
                            "SELECT primary_person_id, enrollment_id FROM devices WHERE enrolled AND enrollment_id IS NOT NULL \
                             AND primary_person_id IN ({}) ORDER BY id",
                            marks.join(",")
                        );
                        let mut q = sqlx::query_as::<_, (i64, String)>(&sql);
                        for id in chunk {
                            q = q.bind(*id);
                        }
                        for (person, enrollment) in q.fetch_all(&self.pool).await? {
                            if let Some(m) = out.iter_mut().find(|m| m.target.member_id == person) {
                                m.install_ids.push(enrollment);
                            }
                        }
                    }
                    Ok(out)
                } else {
                    let sql = format!(
                        "SELECT {targets}, d.serial_number, d.platform, d.os_version, d.enrollment_id AS device_enrollment, d.enrolled, {MEMBER_PERSON_COLUMNS} \
                         FROM deployment_targets t JOIN devices d ON d.id = t.member_id LEFT JOIN people p ON p.id = d.primary_person_id \
                         WHERE {filter}"
                    );
                    let rows = sqlx::query(&sql).bind(deployment_id).bind(after_member).bind(limit).fetch_all(&self.pool).await?;
                    rows.iter()
                        .map(|r| {
                            let enrollment: Option<String> = r.try_get("device_enrollment")?;
                            Ok($crate::inventory::MemberTarget {
                                target: target_row(r)?,
                                serial_number: Some(r.try_get("serial_number")?),
                                platform: Some(r.try_get("platform")?),
                                os_version: r.try_get("os_version")?,
                                active: r.try_get("enrolled")?,
                                install_ids: enrollment.into_iter().collect(),
                                person: person_facts(r)?,
                            })
                        })
                        .collect::<Result<_, sqlx::Error>>()
                        .map_err(Into::into)
                }
            }

            /// Targets of a deployment in one of `statuses` (at most `limit`), oldest update first.
            pub async fn targets_in(&self, deployment_id: i64, statuses: &[&str], updated_before: i64, limit: i64) -> Result<Vec<$crate::inventory::TargetRow>, StoreError> {
                let sql = format!(
                    "SELECT {TARGET_COLUMNS} FROM deployment_targets WHERE deployment_id = $1 AND status IN ({}) AND updated_at <= $2 \
                     ORDER BY updated_at, member_id LIMIT $3",
                    status_list(statuses)
                );
                let rows = sqlx::query(&sql).bind(deployment_id).bind(updated_before).bind(limit).fetch_all(&self.pool).await?;
                Ok(rows.iter().map(target_row).collect::<Result<_, _>>()?)
            }

            /// The user's active record (Registered or Associated) at a token's location, if any.
            pub async fn apple_user(&self, token_id: i64, client_user_id: &str) -> Result<Option<$crate::types::UserRow>, StoreError> {
                let row = sqlx::query(
                    "SELECT client_user_id, status, email, invite_code, id_hash FROM apple_users WHERE token_id = $1 AND client_user_id = $2",
                )
                .bind(token_id)
                .bind(client_user_id)
                .fetch_optional(&self.pool)
                .await?;
                row.map(|r| {
                    Ok($crate::types::UserRow {
                        client_user_id: r.try_get("client_user_id")?,
                        status: r.try_get("status")?,
                        email: r.try_get("email")?,
                        invite_code: r.try_get("invite_code")?,
                        id_hash: r.try_get("id_hash")?,
                    })
                })
                .transpose()
                .map_err(|e: sqlx::Error| e.into())
            }

            /// Every token where the user has a record, with it (VPP terms status per location).
            pub async fn apple_user_records(&self, client_user_id: &str) -> Result<Vec<(i64, $crate::types::UserRow)>, StoreError> {
                self.apple_user_records_of(&[client_user_id.to_owned()]).await
            }

            /// `apple_user_records` for many people at once (a page of them), by person then token.
            pub async fn apple_user_records_of(&self, client_user_ids: &[String]) -> Result<Vec<(i64, $crate::types::UserRow)>, StoreError> {
                let mut out = Vec::new();
                for chunk in client_user_ids.chunks(BATCH) {
                    let marks: Vec<String> = (1..=chunk.len()).map(|i| format!("${i}")).collect();
                    let sql = format!(
                        "SELECT token_id, client_user_id, status, email, invite_code, id_hash FROM apple_users \
                         WHERE client_user_id IN ({}) ORDER BY client_user_id, token_id",
                        marks.join(",")
                    );
                    let mut q = sqlx::query(&sql);
                    for id in chunk {
                        q = q.bind(id);
                    }
                    for r in q.fetch_all(&self.pool).await? {
                        out.push((
                            r.try_get("token_id")?,
                            $crate::types::UserRow {
                                client_user_id: r.try_get("client_user_id")?,
                                status: r.try_get("status")?,
                                email: r.try_get("email")?,
                                invite_code: r.try_get("invite_code")?,
                                id_hash: r.try_get("id_hash")?,
                            },
                        ));
                    }
                }
                Ok(out)
            }

            /// Ends a release in one transaction: the assignment (when Apple let it go) removed
            /// with its counts, and the target's new state written. Only from `license_releasing`.
            pub async fn finish_release(
                &self,
                token_id: i64,
                target: &$crate::inventory::TargetRow,
                released: Option<&$crate::types::AssignmentRow>,
                now: i64,
            ) -> Result<bool, StoreError> {
                Ok(self.finish_releases(token_id, &[(target.clone(), released.cloned())], now).await? == 1)
            }

            /// Ends releases in one transaction: targets still `license_releasing` take their new
            /// state (no longer claimed), and the assignments Apple let go of theirs are removed
            /// with their counts — a thousand in a few statements and one commit, where one each
            /// made a revoke of 100,000 licenses a minute of commits. How many were still
            /// releasing (the others were finished already, by another step or instance).
            pub async fn finish_releases(
                &self,
                token_id: i64,
                items: &[($crate::inventory::TargetRow, Option<$crate::types::AssignmentRow>)],
                now: i64,
            ) -> Result<u64, StoreError> {
                let sql = format!(
                    "UPDATE deployment_targets SET status = j.value->>2, event_id = NULL, detail = j.value->>3, updated_at = $1, \
                     claimed = FALSE FROM {} WHERE deployment_targets.deployment_id = CAST(j.value->>0 AS BIGINT) \
                     AND deployment_targets.member_id = CAST(j.value->>1 AS BIGINT) AND deployment_targets.status = 'license_releasing' \
                     RETURNING deployment_targets.deployment_id, deployment_targets.member_id",
                    Self::json_rows(2)
                );
                let mut tx = self.write_tx().await?;
                let mut n = 0;
                for chunk in items.chunks(1000) {
                    let rows: Vec<serde_json::Value> = chunk
                        .iter()
                        .map(|(t, _)| serde_json::json!([t.deployment_id, t.member_id, t.status, t.detail]))
                        .collect();
                    let finished: std::collections::HashSet<(i64, i64)> = sqlx::query_as::<_, (i64, i64)>(&sql)
                        .bind(now)
                        .bind(serde_json::Value::Array(rows).to_string())
                        .fetch_all(&mut *tx)
                        .await?
                        .into_iter()
                        .collect();
                    let released: Vec<$crate::types::AssignmentRow> = chunk
                        .iter()
                        .filter(|(t, _)| finished.contains(&(t.deployment_id, t.member_id)))
                        .filter_map(|(_, a)| a.clone())
                        .collect();
                    remove_assignments_in(&mut tx, token_id, &released).await?;
                    n += finished.len() as u64;
                }
                tx.commit().await?;
                Ok(n)
            }

            /// A device enrolled again: NanoMDM wiped its queue, so installs and removals sent to
            /// it are sent again by the next step.
            pub async fn resend_to_enrollment(&self, enrollment_id: &str, now: i64) -> Result<u64, StoreError> {
                let mut n = 0;
                for (from, to) in [("install_sent", "license_assigned"), ("installing", "license_assigned"), ("remove_sent", "pending")] {
                    n += sqlx::query(
                        "UPDATE deployment_targets SET status = $2, command_uuid = NULL, \
                         detail = 'the device enrolled again, which cleared its command queue; sending again', updated_at = $4 \
                         WHERE status = $3 AND (',' || enrollment_id || ',') LIKE ('%,' || $1 || ',%') ESCAPE '\\'",
                    )
                    .bind($crate::like_escape(enrollment_id))
                    .bind(to)
                    .bind(from)
                    .bind(now)
                    .execute(&self.pool)
                    .await?
                    .rows_affected();
                }
                Ok(n)
            }

            /// Deletes a deployment and its targets unless a request to Apple is in flight for one
            /// of them (its outcome must be followed, or a reservation would leak). True if deleted.
            pub async fn delete_deployment(&self, id: i64) -> Result<bool, StoreError> {
                let mut tx = self.write_tx().await?;
                let busy: i64 = sqlx::query_scalar(
                    "SELECT COUNT(*) FROM deployment_targets WHERE deployment_id = $1 AND status IN ('license_requested', 'license_releasing')",
                )
                .bind(id)
                .fetch_one(&mut *tx)
                .await?;
                if busy > 0 {
                    return Ok(false);
                }
                // Devices its declarations went to are told they changed (marked at time 0: the
                // next pass looks at them).
                sqlx::query(
                    "UPDATE devices SET declarations_dirty_at = COALESCE(declarations_dirty_at, 0) WHERE id IN \
                     (SELECT member_id FROM deployment_targets WHERE deployment_id = $1 AND declarative)",
                )
                .bind(id)
                .execute(&mut *tx)
                .await?;
                sqlx::query("DELETE FROM deployment_targets WHERE deployment_id = $1").bind(id).execute(&mut *tx).await?;
                let n = sqlx::query("DELETE FROM deployments WHERE id = $1").bind(id).execute(&mut *tx).await?.rows_affected();
                tx.commit().await?;
                Ok(n == 1)
            }

            /// Moves every target of a deployment in `from` to `to`, in one statement.
            pub async fn move_targets(&self, deployment_id: i64, from: &str, to: &str, detail: &str, now: i64) -> Result<u64, StoreError> {
                Ok(sqlx::query("UPDATE deployment_targets SET status = $3, detail = $4, updated_at = $5 WHERE deployment_id = $1 AND status = $2")
                    .bind(deployment_id)
                    .bind(from)
                    .bind(to)
                    .bind(detail)
                    .bind(now)
                    .execute(&self.pool)
                    .await?
                    .rows_affected())
            }

            /// Takes (or extends) the right to step a deployment until `until`; false if another
            /// owner holds it.
            pub async fn try_lease_deployment(&self, id: i64, owner: &str, now: i64, until: i64) -> Result<bool, StoreError> {
                let n = sqlx::query(
                    "UPDATE deployments SET lease_owner = $2, lease_until = $4 WHERE id = $1 \
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

            pub async fn release_deployment_lease(&self, id: i64, owner: &str) -> Result<(), StoreError> {
                sqlx::query("UPDATE deployments SET lease_owner = NULL, lease_until = NULL WHERE id = $1 AND lease_owner = $2")
                    .bind(id)
                    .bind(owner)
                    .execute(&self.pool)
                    .await?;
                Ok(())
            }

            /// One target of a deployment, by its label (serial number, email or name).
            pub async fn target_by_label(&self, deployment_id: i64, label: &str) -> Result<Option<$crate::inventory::TargetRow>, StoreError> {
                let row = sqlx::query(&format!("SELECT {TARGET_COLUMNS} FROM deployment_targets WHERE deployment_id = $1 AND label = $2"))
                    .bind(deployment_id)
                    .bind(label)
                    .fetch_optional(&self.pool)
                    .await?;
                Ok(row.as_ref().map(target_row).transpose()?)
            }

            /// The invitation goes out again: targets waiting on the user forget the one sent.
            pub async fn resend_invitation(&self, client_user_id: &str, now: i64) -> Result<u64, StoreError> {
                Ok(sqlx::query(
                    "UPDATE deployment_targets SET command_uuid = NULL, detail = 'sending the invitation again', updated_at = $2 \
                     WHERE holder = $1 AND license = 'user' AND status = 'invitation_pending' AND event_id IS NULL",
                )
                .bind(client_user_id)
                .bind(now)
                .execute(&self.pool)
                .await?
                .rows_affected())
            }

            /// Every invitation still waiting (no registration in flight) goes out again at the next
            /// pass: the users list's bulk action. Returns how many targets.
            pub async fn resend_all_invitations(&self, now: i64) -> Result<u64, StoreError> {
                Ok(sqlx::query(
                    "UPDATE deployment_targets SET command_uuid = NULL, detail = 'sending the invitation again', updated_at = $1 \
                     WHERE license = 'user' AND status = 'invitation_pending' AND event_id IS NULL",
                )
                .bind(now)
                .execute(&self.pool)
                .await?
                .rows_affected())
            }

            /// A deployment's failed targets start again from `pending` (the reconcile loop claims,
            /// installs, removes or gives back as its action says). Returns how many.
            pub async fn retry_failed_targets(&self, deployment_id: i64, now: i64) -> Result<u64, StoreError> {
                Ok(sqlx::query(
                    "UPDATE deployment_targets SET status = 'pending', command_uuid = NULL, event_id = NULL, \
                     detail = 'retried by an administrator', updated_at = $2 WHERE deployment_id = $1 AND status = 'failed'",
                )
                .bind(deployment_id)
                .bind(now)
                .execute(&self.pool)
                .await?
                .rows_affected())
            }

            /// People who left at or before `before` whose licenses have not been given back yet.
            pub async fn people_to_reclaim(&self, before: i64, limit: i64) -> Result<Vec<$crate::inventory::PersonRow>, StoreError> {
                let rows = sqlx::query(&format!(
                    "SELECT {PERSON_COLUMNS} FROM people WHERE removed_at IS NOT NULL AND removed_at <= $1 AND licenses_reclaimed_at IS NULL \
                     ORDER BY removed_at LIMIT $2"
                ))
                .bind(before)
                .bind(limit)
                .fetch_all(&self.pool)
                .await?;
                Ok(rows.iter().map(person_row).collect::<Result<_, _>>()?)
            }

            /// The person's user licenses were given back: their targets say so.
            pub async fn mark_person_reclaimed(&self, person: &$crate::inventory::PersonRow, now: i64) -> Result<(), StoreError> {
                let mut tx = self.write_tx().await?;
                sqlx::query("UPDATE people SET licenses_reclaimed_at = $2 WHERE id = $1").bind(person.id).bind(now).execute(&mut *tx).await?;
                sqlx::query(
                    "UPDATE deployment_targets SET status = 'license_reclaimed', detail = 'the person left; their license was given back', \
                     updated_at = $2 WHERE holder = $1 AND license = 'user' AND status IN ('license_assigned', 'install_sent', 'installing', 'installed', 'invitation_pending')",
                )
                .bind(&person.client_user_id)
                .bind(now)
                .execute(&mut *tx)
                .await?;
                tx.commit().await?;
                Ok(())
            }

            /// Licenses held by one holder (`device` serial or `user` clientUserId), per token.
            /// What every deployment wants for one person (`users`) or device (`devices`): the
            /// deployment, its action and content, the target's status, why, and when confirmed.
            #[allow(clippy::type_complexity)]
            pub async fn targets_of_member(
                &self,
                kind: &str,
                member_id: i64,
            ) -> Result<Vec<(i64, String, String, String, Option<String>, Option<i64>)>, StoreError> {
                Ok(sqlx::query_as(
                    "SELECT d.id, d.action, d.adam_id, t.status, t.detail, t.confirmed_at FROM deployment_targets t \
                     JOIN deployments d ON d.id = t.deployment_id JOIN collections c ON c.id = d.collection_id \
                     WHERE c.kind = $1 AND t.member_id = $2 ORDER BY d.id",
                )
                .bind(kind)
                .bind(member_id)
                .fetch_all(&self.pool)
                .await?)
            }

            pub async fn licenses_held(&self, kind: &str, holder: &str) -> Result<Vec<(i64, $crate::types::AssignmentRow)>, StoreError> {
                let rows = sqlx::query("SELECT token_id, adam_id, pricing FROM assignments WHERE holder = $1 AND holder_kind = $2 ORDER BY token_id, adam_id")
                    .bind(holder)
                    .bind(kind)
                    .fetch_all(&self.pool)
                    .await?;
                let make = |h: &str| if kind == "user" { $crate::types::Holder::User(h.to_owned()) } else { $crate::types::Holder::Device(h.to_owned()) };
                rows.iter()
                    .map(|r| {
                        Ok((
                            r.try_get("token_id")?,
                            $crate::types::AssignmentRow { adam_id: r.try_get("adam_id")?, pricing: r.try_get("pricing")?, holder: make(holder) },
                        ))
                    })
                    .collect::<Result<_, sqlx::Error>>()
                    .map_err(Into::into)
            }
        }
    };
}

pub(crate) use impl_target_queries;
