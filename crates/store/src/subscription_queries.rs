//! Subscriptions (§15): which tokens we manage them for, the subscriptions with their counts, and
//! the seats users hold — written once for both backends like `queries.rs`.

macro_rules! impl_subscription_queries {
    ($store:ty) => {
        impl $store {
            /// Records that Apple accepted `subscriptions/enable` for the token (idempotent).
            pub async fn enable_subscription_management(&self, token_id: i64, now: i64) -> Result<(), StoreError> {
                sqlx::query(
                    "INSERT INTO subscription_management (token_id, enabled_at) VALUES ($1, $2) \
                     ON CONFLICT (token_id) DO NOTHING",
                )
                .bind(token_id)
                .bind(now)
                .execute(&self.pool)
                .await?;
                Ok(())
            }

            /// (enabled at, last synced at) when subscriptions are managed for the token.
            pub async fn subscription_management(&self, token_id: i64) -> Result<Option<(i64, Option<i64>)>, StoreError> {
                Ok(sqlx::query_as(
                    "SELECT enabled_at, synced_at FROM subscription_management WHERE token_id = $1",
                )
                .bind(token_id)
                .fetch_optional(&self.pool)
                .await?)
            }

            /// Replaces a token's subscriptions and seats with what a full walk read, keeping the
            /// `leaving` mark of seats that are still there; one transaction.
            pub async fn replace_subscriptions(
                &self,
                token_id: i64,
                subs: &[SubscriptionRow],
                seats: &[SeatRow],
                now: i64,
            ) -> Result<(), StoreError> {
                let mut tx = self.write_tx().await?;
                // Seats of one token change under this row's lock: a `leaving` mark written while
                // a full read replaces the seats is neither lost nor applied to rows being deleted.
                sqlx::query("UPDATE subscription_management SET synced_at = synced_at WHERE token_id = $1")
                    .bind(token_id)
                    .execute(&mut *tx)
                    .await?;
                let leaving: std::collections::HashSet<(i64, String)> = sqlx::query_as::<_, (i64, String)>(
                    "SELECT adam_id, client_user_id FROM subscription_seats WHERE token_id = $1 AND leaving",
                )
                .bind(token_id)
                .fetch_all(&mut *tx)
                .await?
                .into_iter()
                .collect();
                sqlx::query("DELETE FROM subscriptions WHERE token_id = $1")
                    .bind(token_id)
                    .execute(&mut *tx)
                    .await?;
                sqlx::query("DELETE FROM subscription_seats WHERE token_id = $1")
                    .bind(token_id)
                    .execute(&mut *tx)
                    .await?;
                for chunk in subs.chunks($crate::queries::BATCH) {
                    let sql = format!(
                        "INSERT INTO subscriptions (token_id, adam_id, parent_adam_id, status, period_end, \
                         assigned_renewing, assigned_expiring, available_renewing, available_expiring, \
                         total_renewing, total_expiring, updated_at) VALUES {}",
                        $crate::queries::values(chunk.len(), 12, 1)
                    );
                    let mut q = sqlx::query(&sql);
                    for s in chunk {
                        q = q
                            .bind(token_id)
                            .bind(s.adam_id)
                            .bind(s.parent_adam_id)
                            .bind(&s.status)
                            .bind(&s.period_end)
                            .bind(s.assigned_renewing)
                            .bind(s.assigned_expiring)
                            .bind(s.available_renewing)
                            .bind(s.available_expiring)
                            .bind(s.total_renewing)
                            .bind(s.total_expiring)
                            .bind(now);
                    }
                    q.execute(&mut *tx).await?;
                }
                for chunk in seats.chunks($crate::queries::BATCH) {
                    let sql = format!(
                        "INSERT INTO subscription_seats (token_id, adam_id, client_user_id, renewing, leaving, updated_at) \
                         VALUES {} ON CONFLICT (token_id, adam_id, client_user_id) DO UPDATE SET renewing = excluded.renewing",
                        $crate::queries::values(chunk.len(), 6, 1)
                    );
                    let mut q = sqlx::query(&sql);
                    for s in chunk {
                        let was_leaving = leaving.contains(&(s.adam_id, s.client_user_id.clone()));
                        q = q
                            .bind(token_id)
                            .bind(s.adam_id)
                            .bind(&s.client_user_id)
                            .bind(s.renewing)
                            .bind(was_leaving || s.leaving)
                            .bind(now);
                    }
                    q.execute(&mut *tx).await?;
                }
                sqlx::query("UPDATE subscription_management SET synced_at = $2 WHERE token_id = $1")
                    .bind(token_id)
                    .bind(now)
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                Ok(())
            }

            /// A `SUBSCRIPTION_COUNT` notification: available and total as Apple says; assigned is
            /// what they leave. A subscription we did not know is added.
            pub async fn apply_subscription_counts(&self, token_id: i64, c: &SubscriptionRow, now: i64) -> Result<(), StoreError> {
                sqlx::query(
                    "INSERT INTO subscriptions (token_id, adam_id, parent_adam_id, status, period_end, \
                     assigned_renewing, assigned_expiring, available_renewing, available_expiring, \
                     total_renewing, total_expiring, updated_at) \
                     VALUES ($1, $2, $3, 'ACTIVE', NULL, $4, $5, $6, $7, $8, $9, $10) \
                     ON CONFLICT (token_id, adam_id) DO UPDATE SET parent_adam_id = excluded.parent_adam_id, \
                     assigned_renewing = excluded.assigned_renewing, assigned_expiring = excluded.assigned_expiring, \
                     available_renewing = excluded.available_renewing, available_expiring = excluded.available_expiring, \
                     total_renewing = excluded.total_renewing, total_expiring = excluded.total_expiring, \
                     updated_at = excluded.updated_at",
                )
                .bind(token_id)
                .bind(c.adam_id)
                .bind(c.parent_adam_id)
                .bind((c.total_renewing - c.available_renewing).max(0))
                .bind((c.total_expiring - c.available_expiring).max(0))
                .bind(c.available_renewing)
                .bind(c.available_expiring)
                .bind(c.total_renewing)
                .bind(c.total_expiring)
                .bind(now)
                .execute(&self.pool)
                .await?;
                Ok(())
            }

            /// Seats Apple gave (a `SUBSCRIPTION_MANAGEMENT` ASSOCIATE), or their renewal changed.
            pub async fn put_seats(&self, token_id: i64, seats: &[SeatRow], now: i64) -> Result<(), StoreError> {
                for chunk in seats.chunks($crate::queries::BATCH) {
                    let sql = format!(
                        "INSERT INTO subscription_seats (token_id, adam_id, client_user_id, renewing, leaving, updated_at) \
                         VALUES {} ON CONFLICT (token_id, adam_id, client_user_id) DO UPDATE SET \
                         renewing = excluded.renewing, leaving = excluded.leaving, updated_at = excluded.updated_at",
                        $crate::queries::values(chunk.len(), 6, 1)
                    );
                    let mut q = sqlx::query(&sql);
                    for s in chunk {
                        q = q
                            .bind(token_id)
                            .bind(s.adam_id)
                            .bind(&s.client_user_id)
                            .bind(s.renewing)
                            .bind(s.leaving)
                            .bind(now);
                    }
                    q.execute(&self.pool).await?;
                }
                Ok(())
            }

            /// Seats Apple took back. Returns how many were held.
            pub async fn remove_seats(&self, token_id: i64, seats: &[(i64, String)]) -> Result<u64, StoreError> {
                let mut removed = 0;
                let mut tx = self.write_tx().await?;
                for (adam_id, user) in seats {
                    removed += sqlx::query(
                        "DELETE FROM subscription_seats WHERE token_id = $1 AND adam_id = $2 AND client_user_id = $3",
                    )
                    .bind(token_id)
                    .bind(*adam_id)
                    .bind(user)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                }
                tx.commit().await?;
                Ok(removed)
            }

            /// Marks seats Apple accepted to take back at the period's end.
            pub async fn mark_seats_leaving(&self, token_id: i64, adam_id: i64, users: &[String], now: i64) -> Result<u64, StoreError> {
                let mut marked = 0;
                let mut tx = self.write_tx().await?;
                // Seats of one token change under this row's lock: a `leaving` mark written while
                // a full read replaces the seats is neither lost nor applied to rows being deleted.
                sqlx::query("UPDATE subscription_management SET synced_at = synced_at WHERE token_id = $1")
                    .bind(token_id)
                    .execute(&mut *tx)
                    .await?;

                for user in users {
                    marked += sqlx::query(
                        "UPDATE subscription_seats SET leaving = TRUE, updated_at = $4 \
                         WHERE token_id = $1 AND adam_id = $2 AND client_user_id = $3",
                    )
                    .bind(token_id)
                    .bind(adam_id)
                    .bind(user)
                    .bind(now)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                }
                tx.commit().await?;
                Ok(marked)
            }

            /// Every subscription (of one token, or all), by token and adamId.
            pub async fn subscriptions(&self, token_id: Option<i64>) -> Result<Vec<SubscriptionRow>, StoreError> {
                let rows = sqlx::query(
                    "SELECT token_id, parent_adam_id, adam_id, status, period_end, assigned_renewing, assigned_expiring, \
                     available_renewing, available_expiring, total_renewing, total_expiring, updated_at \
                     FROM subscriptions WHERE $1 IS NULL OR token_id = $1 ORDER BY token_id, adam_id",
                )
                .bind(token_id)
                .fetch_all(&self.pool)
                .await?;
                rows.iter()
                    .map(|r| {
                        Ok(SubscriptionRow {
                            token_id: r.try_get(0)?,
                            parent_adam_id: r.try_get(1)?,
                            adam_id: r.try_get(2)?,
                            status: r.try_get(3)?,
                            period_end: r.try_get(4)?,
                            assigned_renewing: r.try_get(5)?,
                            assigned_expiring: r.try_get(6)?,
                            available_renewing: r.try_get(7)?,
                            available_expiring: r.try_get(8)?,
                            total_renewing: r.try_get(9)?,
                            total_expiring: r.try_get(10)?,
                            updated_at: r.try_get(11)?,
                        })
                    })
                    .collect::<Result<_, sqlx::Error>>()
                    .map_err(Into::into)
            }

            /// The seats of a token's subscription, by user.
            pub async fn subscription_seats(&self, token_id: i64, adam_id: i64) -> Result<Vec<SeatRow>, StoreError> {
                let rows: Vec<(i64, String, bool, bool)> = sqlx::query_as(
                    "SELECT adam_id, client_user_id, renewing, leaving FROM subscription_seats \
                     WHERE token_id = $1 AND adam_id = $2 ORDER BY client_user_id",
                )
                .bind(token_id)
                .bind(adam_id)
                .fetch_all(&self.pool)
                .await?;
                Ok(rows
                    .into_iter()
                    .map(|(adam_id, client_user_id, renewing, leaving)| SeatRow {
                        adam_id,
                        client_user_id,
                        renewing,
                        leaving,
                    })
                    .collect())
            }

            // ---- standing intents for seats ----

            pub async fn insert_subscription_intent(
                &self,
                token_id: i64,
                adam_id: i64,
                collection_id: i64,
                renewing: bool,
                now: i64,
            ) -> Result<i64, StoreError> {
                sqlx::query_scalar(
                    "INSERT INTO subscription_intents (token_id, adam_id, collection_id, renewing, created_at) \
                     VALUES ($1, $2, $3, $4, $5) RETURNING id",
                )
                .bind(token_id)
                .bind(adam_id)
                .bind(collection_id)
                .bind(renewing)
                .bind(now)
                .fetch_one(&self.pool)
                .await
                .map_err(StoreError::from_insert)
            }

            /// Every intent (of one token, or all), oldest first, with its collection's name.
            pub async fn subscription_intents(&self, token_id: Option<i64>) -> Result<Vec<SubscriptionIntentRow>, StoreError> {
                let rows: Vec<(i64, i64, i64, i64, String, bool, i64)> = sqlx::query_as(
                    "SELECT i.id, i.token_id, i.adam_id, i.collection_id, c.name, i.renewing, i.created_at \
                     FROM subscription_intents i JOIN collections c ON c.id = i.collection_id \
                     WHERE $1 IS NULL OR i.token_id = $1 ORDER BY i.id",
                )
                .bind(token_id)
                .fetch_all(&self.pool)
                .await?;
                Ok(rows
                    .into_iter()
                    .map(|(id, token_id, adam_id, collection_id, collection, renewing, created_at)| SubscriptionIntentRow {
                        id,
                        token_id,
                        adam_id,
                        collection_id,
                        collection,
                        renewing,
                        created_at,
                    })
                    .collect())
            }

            pub async fn delete_subscription_intent(&self, id: i64) -> Result<bool, StoreError> {
                Ok(sqlx::query("DELETE FROM subscription_intents WHERE id = $1")
                    .bind(id)
                    .execute(&self.pool)
                    .await?
                    .rows_affected()
                    == 1)
            }

            /// The people of a users collection (not removed), and whether each is registered with
            /// Apple (Registered or Associated) on the token: one query.
            pub async fn collection_people_registered(
                &self,
                collection_id: i64,
                token_id: i64,
            ) -> Result<Vec<($crate::inventory::PersonRow, bool)>, StoreError> {
                let rows = sqlx::query(
                    "SELECT p.id, p.client_user_id, p.name, p.email, p.managed_apple_id, p.department, p.removed_at, p.created_at, \
                     EXISTS (SELECT 1 FROM apple_users u WHERE u.token_id = $2 AND u.client_user_id = p.client_user_id \
                             AND u.status IN ('Registered', 'Associated')) AS registered \
                     FROM collection_members m JOIN people p ON p.id = m.member_id \
                     WHERE m.collection_id = $1 AND p.removed_at IS NULL ORDER BY p.id",
                )
                .bind(collection_id)
                .bind(token_id)
                .fetch_all(&self.pool)
                .await?;
                rows.iter()
                    .map(|r| {
                        Ok((
                            $crate::inventory::PersonRow {
                                id: r.try_get("id")?,
                                client_user_id: r.try_get("client_user_id")?,
                                name: r.try_get("name")?,
                                email: r.try_get("email")?,
                                managed_apple_id: r.try_get("managed_apple_id")?,
                                department: r.try_get("department")?,
                                removed_at: r.try_get("removed_at")?,
                                created_at: r.try_get("created_at")?,
                            },
                            r.try_get::<bool, _>("registered")?,
                        ))
                    })
                    .collect::<Result<_, sqlx::Error>>()
                    .map_err(Into::into)
            }

            /// The people an intent gave a seat to.
            pub async fn intent_users(&self, intent_id: i64) -> Result<Vec<String>, StoreError> {
                Ok(sqlx::query_scalar(
                    "SELECT client_user_id FROM subscription_intent_users WHERE intent_id = $1 ORDER BY client_user_id",
                )
                .bind(intent_id)
                .fetch_all(&self.pool)
                .await?)
            }

            pub async fn add_intent_users(&self, intent_id: i64, users: &[String]) -> Result<(), StoreError> {
                let mut tx = self.write_tx().await?;
                for u in users {
                    sqlx::query(
                        "INSERT INTO subscription_intent_users (intent_id, client_user_id) VALUES ($1, $2) \
                         ON CONFLICT (intent_id, client_user_id) DO NOTHING",
                    )
                    .bind(intent_id)
                    .bind(u)
                    .execute(&mut *tx)
                    .await?;
                }
tx.commit().await?;
                Ok(())
            }

            pub async fn remove_intent_users(&self, intent_id: i64, users: &[String]) -> Result<(), StoreError> {
                let mut tx = self.write_tx().await?;
                for u in users {
                    sqlx::query("DELETE FROM subscription_intent_users WHERE intent_id = $1 AND client_user_id = $2")
                        .bind(intent_id)
                        .bind(u)
                        .execute(&mut *tx)
                        .await?;
                }
tx.commit().await?;
                Ok(())
            }
        }
    };
}

pub(crate) use impl_subscription_queries;
