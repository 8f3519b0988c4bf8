//! Inventory queries (people, devices, collections), written once for both backends like
//! `queries.rs`.

/// Binds a rule condition's values (`inventory::rule_condition`) onto a query, in order.
macro_rules! bind_rule_args {
    ($q:expr, $args:expr) => {{
        let mut q = $q;
        for a in $args {
            q = match a {
                $crate::inventory::RuleArg::Text(t) => q.bind(t.clone()),
                $crate::inventory::RuleArg::Int(i) => q.bind(*i),
            };
        }
        q
    }};
}

macro_rules! impl_inventory_queries {
    ($store:ty) => {
        const PERSON_COLUMNS: &str = "id, client_user_id, name, email, managed_apple_id, department, removed_at, created_at";
        /// What adding a known serial number changes (an import or an enrollment updates it).
        const DEVICE_UPSERT: &str = "ON CONFLICT (serial_number) DO UPDATE SET enrollment_id = COALESCE(excluded.enrollment_id, devices.enrollment_id), \
             platform = excluded.platform, model = CASE WHEN excluded.model = '' THEN devices.model ELSE excluded.model END, \
             name = CASE WHEN excluded.name = '' THEN devices.name ELSE excluded.name END, \
             primary_person_id = COALESCE(excluded.primary_person_id, devices.primary_person_id), enrolled = TRUE, \
             unenrolled_at = NULL, licenses_reclaimed_at = NULL, last_seen_at = excluded.last_seen_at, updated_at = excluded.updated_at, \
             os_version = COALESCE(excluded.os_version, devices.os_version), \
             os_version_num = COALESCE(excluded.os_version_num, devices.os_version_num), \
             info_reported_at = COALESCE(excluded.info_reported_at, devices.info_reported_at)";
        /// The ordering number of an OS version a device reported (`None` if it is not a version).
        fn os_version_num(v: Option<&str>) -> Option<i64> {
            v.and_then(allot_domain::os::OsVersion::parse).map(|v| v.ordinal())
        }
        const DEVICE_COLUMNS: &str =
            "id, serial_number, enrollment_id, platform, model, name, primary_person_id, enrolled, last_seen_at, unenrolled_at, os_version, info_reported_at";

        fn person_row<R: sqlx::Row>(r: &R) -> Result<$crate::inventory::PersonRow, sqlx::Error>
        where
            for<'a> &'a str: sqlx::ColumnIndex<R>,
            for<'a> i64: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
            for<'a> String: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
        {
            Ok($crate::inventory::PersonRow {
                id: r.try_get("id")?,
                client_user_id: r.try_get("client_user_id")?,
                name: r.try_get("name")?,
                email: r.try_get("email")?,
                managed_apple_id: r.try_get("managed_apple_id")?,
                department: r.try_get("department")?,
                removed_at: r.try_get("removed_at")?,
                created_at: r.try_get("created_at")?,
            })
        }

        fn device_row<R: sqlx::Row>(r: &R) -> Result<$crate::inventory::DeviceRow, sqlx::Error>
        where
            for<'a> &'a str: sqlx::ColumnIndex<R>,
            for<'a> i64: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
            for<'a> String: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
            for<'a> bool: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
        {
            Ok($crate::inventory::DeviceRow {
                id: r.try_get("id")?,
                serial_number: r.try_get("serial_number")?,
                enrollment_id: r.try_get("enrollment_id")?,
                platform: r.try_get("platform")?,
                model: r.try_get("model")?,
                name: r.try_get("name")?,
                primary_person_id: r.try_get("primary_person_id")?,
                enrolled: r.try_get("enrolled")?,
                last_seen_at: r.try_get("last_seen_at")?,
                unenrolled_at: r.try_get("unenrolled_at")?,
                os_version: r.try_get("os_version")?,
                info_reported_at: r.try_get("info_reported_at")?,
            })
        }

        impl $store {
            // ---- people ----

            pub async fn insert_person(
                &self,
                p: &$crate::inventory::NewPerson,
                client_user_id: &str,
                now: i64,
            ) -> Result<$crate::inventory::PersonRow, StoreError> {
                let sql = format!(
                    "INSERT INTO people (client_user_id, name, email, managed_apple_id, department, created_at, updated_at) \
                     VALUES ($1,$2,$3,$4,$6,$5,$5) RETURNING {PERSON_COLUMNS}"
                );
                let row = sqlx::query(&sql)
                    .bind(client_user_id)
                    .bind(&p.name)
                    .bind(&p.email)
                    .bind(&p.managed_apple_id)
                    .bind(now)
                    .bind(&p.department)
                    .fetch_one(&self.pool)
                    .await
                    .map_err(StoreError::from_insert)?;
                Ok(person_row(&row)?)
            }

            /// Adds or updates many people (imports), matched by email; each new one gets the
            /// clientUserId given with it. Emails must be distinct. Returns (created, updated).
            pub async fn upsert_people(&self, people: &[($crate::inventory::NewPerson, String)], now: i64) -> Result<(u64, u64), StoreError> {
                let (mut created, mut updated) = (0, 0);
                for chunk in people.chunks(BATCH) {
                    let mut tx = self.write_tx().await?;
                    let emails: Vec<&String> = chunk.iter().filter_map(|(p, _)| p.email.as_ref()).collect();
                    let existing = if emails.is_empty() {
                        0
                    } else {
                        let marks: Vec<String> = (0..emails.len()).map(|i| format!("${}", i + 1)).collect();
                        let sql = format!("SELECT COUNT(*) FROM people WHERE email IN ({})", marks.join(","));
                        let mut q = sqlx::query_scalar::<_, i64>(&sql);
                        for e in &emails {
                            q = q.bind(*e);
                        }
                        q.fetch_one(&mut *tx).await? as u64
                    };
                    let sql = format!(
                        "INSERT INTO people (client_user_id, name, email, managed_apple_id, department, created_at, updated_at) VALUES {} \
                         ON CONFLICT (email) DO UPDATE SET name = excluded.name, \
                         managed_apple_id = COALESCE(excluded.managed_apple_id, people.managed_apple_id), \
                         department = COALESCE(excluded.department, people.department), removed_at = NULL, \
                         updated_at = excluded.updated_at",
                        (0..chunk.len())
                            .map(|i| {
                                let b = i * 5;
                                format!("(${},${},${},${},${},$1,$1)", b + 2, b + 3, b + 4, b + 5, b + 6)
                            })
                            .collect::<Vec<_>>()
                            .join(",")
                    );
                    let mut q = sqlx::query(&sql).bind(now);
                    for (p, cuid) in chunk {
                        q = q.bind(cuid).bind(&p.name).bind(&p.email).bind(&p.managed_apple_id).bind(&p.department);
                    }
                    q.execute(&mut *tx).await.map_err(StoreError::from_insert)?;
                    tx.commit().await?;
                    updated += existing;
                    created += chunk.len() as u64 - existing;
                }
                Ok((created, updated))
            }

            /// Updates name and Managed Apple Account of a person; a removed person comes back.
            pub async fn update_person(&self, id: i64, p: &$crate::inventory::NewPerson, now: i64) -> Result<(), StoreError> {
                sqlx::query(
                    "UPDATE people SET name = $2, email = COALESCE($3, email), managed_apple_id = COALESCE($4, managed_apple_id), \
                     department = COALESCE($6, department), removed_at = NULL, updated_at = $5 WHERE id = $1",
                )
                .bind(id)
                .bind(&p.name)
                .bind(&p.email)
                .bind(&p.managed_apple_id)
                .bind(now)
                .bind(&p.department)
                .execute(&self.pool)
                .await
                .map_err(StoreError::from_insert)?;
                Ok(())
            }

            pub async fn person(&self, id: i64) -> Result<Option<$crate::inventory::PersonRow>, StoreError> {
                let row = sqlx::query(&format!("SELECT {PERSON_COLUMNS} FROM people WHERE id = $1")).bind(id).fetch_optional(&self.pool).await?;
                Ok(row.as_ref().map(person_row).transpose()?)
            }

            pub async fn person_by_email(&self, email: &str) -> Result<Option<$crate::inventory::PersonRow>, StoreError> {
                let row = sqlx::query(&format!("SELECT {PERSON_COLUMNS} FROM people WHERE LOWER(email) = LOWER($1)"))
                    .bind(email)
                    .fetch_optional(&self.pool)
                    .await?;
                Ok(row.as_ref().map(person_row).transpose()?)
            }

            /// People matching `search` (name or email), by name; and how many match.
            /// People by name or e-mail, and by their standing with Apple on any location
            /// (`apple_status`: `Registered`, `Associated`, `Retired`, or `none` for people no
            /// location knows yet).
            pub async fn people(&self, search: Option<&str>, apple_status: Option<&str>, limit: i64, offset: i64) -> Result<(Vec<$crate::inventory::PersonRow>, i64), StoreError> {
                // Only the filters asked for are conditions: an always-true `$2 IS NULL OR …`
                // would still be tested on every row the name order walks.
                let (mut filter, pattern) = match search {
                    Some(s) => {
                        let (rows, p) = Self::person_search(s);
                        (rows, Some(p))
                    }
                    None => ("FROM people WHERE $1 IS NULL".to_owned(), None),
                };
                match apple_status {
                    None => filter.push_str(" AND $2 IS NULL"),
                    Some("none") => filter.push_str(
                        " AND $2 = 'none' AND NOT EXISTS (SELECT 1 FROM apple_users u WHERE u.client_user_id = people.client_user_id)",
                    ),
                    Some(_) => filter.push_str(
                        " AND EXISTS (SELECT 1 FROM apple_users u WHERE u.client_user_id = people.client_user_id AND u.status = $2)",
                    ),
                }
                let total: i64 = if search.is_none() && apple_status.is_none() {
                    sqlx::query_scalar("SELECT COUNT(*) FROM people").fetch_one(&self.pool).await?
                } else {
                    sqlx::query_scalar(&format!("SELECT COUNT(*) {filter}"))
                        .bind(&pattern)
                        .bind(apple_status)
                        .fetch_one(&self.pool)
                        .await?
                };
                let rows = sqlx::query(&format!("SELECT {PERSON_COLUMNS} {filter} ORDER BY LOWER(name), id LIMIT $3 OFFSET $4"))
                    .bind(&pattern)
                    .bind(apple_status)
                    .bind(limit)
                    .bind(offset)
                    .fetch_all(&self.pool)
                    .await?;
                Ok((rows.iter().map(person_row).collect::<Result<_, _>>()?, total))
            }

            /// The person left: kept (their licenses are reclaimed by policy), marked removed.
            pub async fn remove_person(&self, id: i64, now: i64) -> Result<bool, StoreError> {
                let n = sqlx::query("UPDATE people SET removed_at = $2, updated_at = $2 WHERE id = $1 AND removed_at IS NULL")
                    .bind(id)
                    .bind(now)
                    .execute(&self.pool)
                    .await?
                    .rows_affected();
                Ok(n == 1)
            }

            // ---- devices ----

            /// Adds a device, or updates the one with this serial number (it is enrolled again).
            /// Returns the row and whether it is new.
            pub async fn upsert_device(&self, d: &$crate::inventory::NewDevice, now: i64) -> Result<($crate::inventory::DeviceRow, bool), StoreError> {
                let existed = self.device_by_serial(&d.serial_number).await?.is_some();
                let sql = format!(
                    "INSERT INTO devices (serial_number, enrollment_id, platform, model, name, primary_person_id, enrolled, \
                     last_seen_at, created_at, updated_at, os_version, info_reported_at, os_version_num) \
                     VALUES ($1,$2,$3,$4,$5,$6,TRUE,$7,$7,$7,$8,$9,$10) {DEVICE_UPSERT} RETURNING {DEVICE_COLUMNS}"
                );
                // What the device said of its OS comes in the same statement, so that no pass
                // sees it new and unknown and asks it again.
                let row = sqlx::query(&sql)
                    .bind(&d.serial_number)
                    .bind(&d.enrollment_id)
                    .bind(&d.platform)
                    .bind(&d.model)
                    .bind(&d.name)
                    .bind(d.primary_person_id)
                    .bind(now)
                    .bind(&d.os_version)
                    .bind(d.os_version.as_ref().map(|_| now))
                    .bind(os_version_num(d.os_version.as_deref()))
                    .fetch_one(&self.pool)
                    .await
                    .map_err(StoreError::from_insert)?;
                Ok((device_row(&row)?, !existed))
            }

            /// Adds or updates many devices (imports): a few statements per 500, in one
            /// transaction each. Serial numbers must be distinct. Returns (created, updated).
            pub async fn upsert_devices(&self, devices: &[$crate::inventory::NewDevice], now: i64) -> Result<(u64, u64), StoreError> {
                let (mut created, mut updated) = (0, 0);
                for chunk in devices.chunks(BATCH) {
                    let mut tx = self.write_tx().await?;
                    let marks: Vec<String> = (0..chunk.len()).map(|i| format!("${}", i + 1)).collect();
                    let sql = format!("SELECT COUNT(*) FROM devices WHERE serial_number IN ({})", marks.join(","));
                    let mut q = sqlx::query_scalar::<_, i64>(&sql);
                    for d in chunk {
                        q = q.bind(&d.serial_number);
                    }
                    let existing = q.fetch_one(&mut *tx).await? as u64;
                    let sql = format!(
                        "INSERT INTO devices (serial_number, enrollment_id, platform, model, name, primary_person_id, enrolled, \
                         last_seen_at, created_at, updated_at) VALUES {} {DEVICE_UPSERT}",
                        (0..chunk.len())
                            .map(|i| {
                                let b = i * 6;
                                format!("(${},${},${},${},${},${},TRUE,$1,$1,$1)", b + 2, b + 3, b + 4, b + 5, b + 6, b + 7)
                            })
                            .collect::<Vec<_>>()
                            .join(",")
                    );
                    let mut q = sqlx::query(&sql).bind(now);
                    for d in chunk {
                        q = q
                            .bind(&d.serial_number)
                            .bind(&d.enrollment_id)
                            .bind(&d.platform)
                            .bind(&d.model)
                            .bind(&d.name)
                            .bind(d.primary_person_id);
                    }
                    q.execute(&mut *tx).await.map_err(StoreError::from_insert)?;
                    tx.commit().await?;
                    updated += existing;
                    created += chunk.len() as u64 - existing;
                }
                Ok((created, updated))
            }

            /// People's ids by email (lower case), for the emails that match.
            pub async fn people_by_emails(&self, emails: &[String]) -> Result<std::collections::HashMap<String, i64>, StoreError> {
                let mut out = std::collections::HashMap::new();
                for chunk in emails.chunks(BATCH) {
                    let marks: Vec<String> = (0..chunk.len()).map(|i| format!("${}", i + 1)).collect();
                    let sql = format!("SELECT email, id FROM people WHERE email IN ({})", marks.join(","));
                    let mut q = sqlx::query_as::<_, (String, i64)>(&sql);
                    for e in chunk {
                        q = q.bind(e.to_lowercase());
                    }
                    out.extend(q.fetch_all(&self.pool).await?);
                }
                Ok(out)
            }

            /// Devices' ids by serial number (upper-cased), for pasted lists.
            pub async fn devices_by_serials(&self, serials: &[String]) -> Result<std::collections::HashMap<String, i64>, StoreError> {
                let mut out = std::collections::HashMap::new();
                for chunk in serials.chunks(BATCH) {
                    let marks: Vec<String> = (0..chunk.len()).map(|i| format!("${}", i + 1)).collect();
                    let sql = format!("SELECT serial_number, id FROM devices WHERE serial_number IN ({})", marks.join(","));
                    let mut q = sqlx::query_as::<_, (String, i64)>(&sql);
                    for s in chunk {
                        q = q.bind(s.to_ascii_uppercase());
                    }
                    out.extend(q.fetch_all(&self.pool).await?);
                }
                Ok(out)
            }

            /// Gives devices that said their OS before `os_version_num` existed its number (once,
            /// at start-up; a device that says it again fills it too). Returns how many.
            pub async fn fill_os_version_numbers(&self) -> Result<u64, StoreError> {
                let (mut filled, mut after) = (0, 0i64);
                loop {
                    let rows: Vec<(i64, String)> = sqlx::query_as(
                        "SELECT id, os_version FROM devices WHERE os_version IS NOT NULL AND os_version_num IS NULL \
                         AND id > $1 ORDER BY id LIMIT 1000",
                    )
                    .bind(after)
                    .fetch_all(&self.pool)
                    .await?;
                    let Some(last) = rows.last().map(|r| r.0) else {
                        return Ok(filled);
                    };
                    let mut tx = self.write_tx().await?;
                    for (id, v) in &rows {
                        // A version that does not parse stays without a number: never refused.
                        let Some(n) = os_version_num(Some(v)) else {
                            continue;
                        };
                        filled += 1;
                        sqlx::query("UPDATE devices SET os_version_num = $2 WHERE id = $1")
                            .bind(id)
                            .bind(n)
                            .execute(&mut *tx)
                            .await?;
                    }
                    tx.commit().await?;
                    if rows.len() < 1000 {
                        return Ok(filled);
                    }
                    after = last;
                }
            }

            pub async fn device(&self, id: i64) -> Result<Option<$crate::inventory::DeviceRow>, StoreError> {
                let row = sqlx::query(&format!("SELECT {DEVICE_COLUMNS} FROM devices WHERE id = $1")).bind(id).fetch_optional(&self.pool).await?;
                Ok(row.as_ref().map(device_row).transpose()?)
            }

            pub async fn device_by_serial(&self, serial: &str) -> Result<Option<$crate::inventory::DeviceRow>, StoreError> {
                let row = sqlx::query(&format!("SELECT {DEVICE_COLUMNS} FROM devices WHERE serial_number = $1"))
                    .bind(serial)
                    .fetch_optional(&self.pool)
                    .await?;
                Ok(row.as_ref().map(device_row).transpose()?)
            }

            /// Sets a device's primary user and enrollment id (what is `None` stays), leaving its
            /// enrolment state alone. `Conflict` if another device has that enrollment id.
            pub async fn set_device_links(&self, id: i64, primary_person_id: Option<i64>, enrollment_id: Option<&str>, now: i64) -> Result<(), StoreError> {
                sqlx::query(
                    "UPDATE devices SET primary_person_id = COALESCE($2, primary_person_id), \
                     enrollment_id = COALESCE($3, enrollment_id), updated_at = $4 WHERE id = $1",
                )
                .bind(id)
                .bind(primary_person_id)
                .bind(enrollment_id)
                .bind(now)
                .execute(&self.pool)
                .await
                .map_err(StoreError::from_insert)?;
                Ok(())
            }

            pub async fn device_by_enrollment(&self, enrollment_id: &str) -> Result<Option<$crate::inventory::DeviceRow>, StoreError> {
                let row = sqlx::query(&format!("SELECT {DEVICE_COLUMNS} FROM devices WHERE enrollment_id = $1"))
                    .bind(enrollment_id)
                    .fetch_optional(&self.pool)
                    .await?;
                Ok(row.as_ref().map(device_row).transpose()?)
            }

            pub async fn devices(&self, search: Option<&str>, limit: i64, offset: i64) -> Result<(Vec<$crate::inventory::DeviceRow>, i64), StoreError> {
                let (filter, pattern) = match search {
                    Some(s) => {
                        let (rows, p) = Self::device_search(s);
                        (rows, Some(p))
                    }
                    None => ("FROM devices WHERE $1 IS NULL".to_owned(), None),
                };
                // Unfiltered, the count needs no condition per row (500,000 devices: a third of the time).
                let count_sql = match (search.and_then(Self::device_search_count), &pattern) {
                    (_, None) => "SELECT COUNT(*) FROM devices".to_owned(),
                    (Some(sql), Some(_)) => sql.to_owned(),
                    (None, Some(_)) => format!("SELECT COUNT(*) {filter}"),
                };
                let mut count = sqlx::query_scalar::<_, i64>(&count_sql);
                if let Some(p) = &pattern {
                    count = count.bind(p);
                }
                let page_sql = format!("SELECT {DEVICE_COLUMNS} {filter} ORDER BY serial_number LIMIT $2 OFFSET $3");
                let page = sqlx::query(&page_sql).bind(&pattern).bind(limit).bind(offset);
                // The count and the page on two connections at once: a search matching 100,000
                // devices spends 11 ms counting and 20 ms sorting, each on its own.
                let (total, rows) = tokio::try_join!(count.fetch_one(&self.pool), page.fetch_all(&self.pool))?;
                Ok((rows.iter().map(device_row).collect::<Result<_, _>>()?, total))
            }

            /// The device left management (MDM check-out, or removed by an administrator).
            pub async fn set_device_unenrolled(&self, id: i64, now: i64) -> Result<bool, StoreError> {
                let n = sqlx::query("UPDATE devices SET enrolled = FALSE, unenrolled_at = $2, updated_at = $2 WHERE id = $1 AND enrolled")
                    .bind(id)
                    .bind(now)
                    .execute(&self.pool)
                    .await?
                    .rows_affected();
                Ok(n == 1)
            }

            /// Records a webhook event's id; false when it was recorded before (a replay).
            /// Ids older than `forget_before` are dropped on the way.
            pub async fn record_mdm_event(&self, event_id: &str, now: i64, forget_before: i64) -> Result<bool, StoreError> {
                sqlx::query("DELETE FROM mdm_events WHERE received_at < $1")
                    .bind(forget_before)
                    .execute(&self.pool)
                    .await?;
                let n = sqlx::query("INSERT INTO mdm_events (event_id, received_at) VALUES ($1, $2) ON CONFLICT (event_id) DO NOTHING")
                    .bind(event_id)
                    .bind(now)
                    .execute(&self.pool)
                    .await?
                    .rows_affected();
                Ok(n == 1)
            }

            /// Forgets a webhook event that could not be applied, so it may come again.
            pub async fn forget_mdm_event(&self, event_id: &str) -> Result<(), StoreError> {
                sqlx::query("DELETE FROM mdm_events WHERE event_id = $1").bind(event_id).execute(&self.pool).await?;
                Ok(())
            }

            /// Moves the device's newest applied event time to `at`; false when a newer event was
            /// applied already (this one is stale and must not override it).
            pub async fn advance_device_event(&self, device_id: i64, at: i64) -> Result<bool, StoreError> {
                let n = sqlx::query("UPDATE devices SET last_event_at = $2 WHERE id = $1 AND (last_event_at IS NULL OR last_event_at <= $2)")
                    .bind(device_id)
                    .bind(at)
                    .execute(&self.pool)
                    .await?
                    .rows_affected();
                Ok(n == 1)
            }

            pub async fn set_primary_person(&self, device_id: i64, person_id: Option<i64>, now: i64) -> Result<(), StoreError> {
                sqlx::query("UPDATE devices SET primary_person_id = $2, updated_at = $3 WHERE id = $1")
                    .bind(device_id)
                    .bind(person_id)
                    .bind(now)
                    .execute(&self.pool)
                    .await?;
                Ok(())
            }

            /// Holders (`user`/`device`, id) with a license of the asset on any of the tokens.
            pub async fn asset_holders(&self, token_ids: &[i64], adam_id: &str, pricing: &str) -> Result<Vec<(String, String)>, StoreError> {
                let mut out = Vec::new();
                for t in token_ids {
                    let rows = sqlx::query("SELECT holder_kind, holder FROM assignments WHERE token_id = $1 AND adam_id = $2 AND pricing = $3")
                        .bind(*t)
                        .bind(adam_id)
                        .bind(pricing)
                        .fetch_all(&self.pool)
                        .await?;
                    for r in rows {
                        out.push((r.try_get("holder_kind")?, r.try_get("holder")?));
                    }
                }
                Ok(out)
            }

            /// Devices that left management at or before `before` and whose licenses have not been
            /// given back yet.
            pub async fn devices_to_reclaim(&self, before: i64, limit: i64) -> Result<Vec<$crate::inventory::DeviceRow>, StoreError> {
                let rows = sqlx::query(&format!(
                    "SELECT {DEVICE_COLUMNS} FROM devices WHERE NOT enrolled AND unenrolled_at <= $1 AND licenses_reclaimed_at IS NULL \
                     ORDER BY unenrolled_at LIMIT $2"
                ))
                .bind(before)
                .bind(limit)
                .fetch_all(&self.pool)
                .await?;
                Ok(rows.iter().map(device_row).collect::<Result<_, _>>()?)
            }

            /// The device's licenses were given back: its deployment targets say so.
            pub async fn mark_device_reclaimed(&self, device_id: i64, now: i64) -> Result<(), StoreError> {
                let mut tx = self.write_tx().await?;
                sqlx::query("UPDATE devices SET licenses_reclaimed_at = $2 WHERE id = $1").bind(device_id).bind(now).execute(&mut *tx).await?;
                sqlx::query(
                    "UPDATE deployment_targets SET status = 'license_reclaimed', detail = 'the device left management; its license was given back', \
                     updated_at = $2 WHERE member_id = $1 AND license = 'device' AND status IN ('license_assigned', 'install_sent', 'installing', 'installed')",
                )
                .bind(device_id)
                .bind(now)
                .execute(&mut *tx)
                .await?;
                tx.commit().await?;
                Ok(())
            }

            // ---- collections ----

            pub async fn insert_collection(&self, name: &str, kind: &str, description: &str, now: i64) -> Result<$crate::inventory::CollectionRow, StoreError> {
                self.insert_collection_with_rule(name, kind, description, None, now).await
            }

            /// A collection, static (`rule` None) or rule-based, its rule's members written in the
            /// same transaction (so it is never seen without them).
            pub async fn insert_collection_with_rule(
                &self,
                name: &str,
                kind: &str,
                description: &str,
                rule: Option<&allot_domain::MembershipRule>,
                now: i64,
            ) -> Result<$crate::inventory::CollectionRow, StoreError> {
                let rule_json = rule.map(|r| serde_json::to_string(r).expect("a rule serializes"));
                let mut tx = self.write_tx().await?;
                let id: i64 = sqlx::query_scalar("INSERT INTO collections (name, kind, description, created_at, rule) VALUES ($1,$2,$3,$4,$5) RETURNING id")
                    .bind(name)
                    .bind(kind)
                    .bind(description)
                    .bind(now)
                    .bind(&rule_json)
                    .fetch_one(&mut *tx)
                    .await
                    .map_err(StoreError::from_insert)?;
                if let Some(rule) = rule {
                    Self::write_rule_members(&mut tx, id, kind, rule, now).await?;
                }
                tx.commit().await?;
                Ok(self.collection(Some(id), None).await?.expect("the collection was just made"))
            }

            /// Makes a collection rule-based (or static again, keeping its members as they are)
            /// and writes its members; returns (added, removed).
            pub async fn set_collection_rule(&self, id: i64, rule: Option<&allot_domain::MembershipRule>, now: i64) -> Result<(u64, u64), StoreError> {
                let rule_json = rule.map(|r| serde_json::to_string(r).expect("a rule serializes"));
                let mut tx = self.write_tx().await?;
                let kind: Option<String> = sqlx::query_scalar("UPDATE collections SET rule = $2, rule_evaluated_at = NULL WHERE id = $1 RETURNING kind")
                    .bind(id)
                    .bind(&rule_json)
                    .fetch_optional(&mut *tx)
                    .await?;
                let changed = match (kind, rule) {
                    (Some(kind), Some(rule)) => Self::write_rule_members(&mut tx, id, &kind, rule, now).await?,
                    _ => (0, 0),
                };
                tx.commit().await?;
                Ok(changed)
            }

            /// Brings every rule-based collection's members up to date (collections whose rule
            /// reads another collection come after it, by id, and catch up at the next pass);
            /// returns the collections whose members changed.
            pub async fn refresh_rule_collections(&self, now: i64) -> Result<Vec<(i64, u64, u64)>, StoreError> {
                /// A rule is evaluated again when a device or person changed this close to (or
                /// after) its last evaluation — a write in flight then may carry an older time —
                /// and at least this often whatever changed.
                const MARGIN_MS: i64 = 60_000;
                const AT_LEAST_MS: i64 = 3_600_000;
                let rules: Vec<(i64, String, String, Option<i64>)> =
                    sqlx::query_as("SELECT id, kind, rule, rule_evaluated_at FROM collections WHERE rule IS NOT NULL AND deleting_at IS NULL ORDER BY id")
                        .fetch_all(&self.pool)
                        .await?;
                if rules.is_empty() {
                    return Ok(Vec::new());
                }
                // The newest inventory change (both read through their updated_at index).
                let devices: Option<i64> = sqlx::query_scalar("SELECT MAX(updated_at) FROM devices").fetch_one(&self.pool).await?;
                let people: Option<i64> = sqlx::query_scalar("SELECT MAX(updated_at) FROM people").fetch_one(&self.pool).await?;
                let inventory_changed = devices.max(people).unwrap_or(0);
                let mut changed = Vec::new();
                for (id, kind, json, evaluated) in rules {
                    let Ok(rule) = serde_json::from_str::<allot_domain::MembershipRule>(&json) else {
                        tracing::warn!(collection = id, "a collection's rule could not be read; its members are left as they are");
                        continue;
                    };
                    // Nothing it reads changed since it was evaluated: its members are still true.
                    // (A rule that reads another collection is always evaluated: members carry no time.)
                    let fresh = evaluated.is_some_and(|at| inventory_changed + MARGIN_MS < at && now - at < AT_LEAST_MS);
                    if fresh && rule.users_in_collection.is_none() {
                        continue;
                    }
                    let mut tx = self.write_tx().await?;
                    let (added, removed) = Self::write_rule_members(&mut tx, id, &kind, &rule, now).await?;
                    tx.commit().await?;
                    if added + removed > 0 {
                        changed.push((id, added, removed));
                    }
                }
                Ok(changed)
            }

            /// The rule's members, set-based: those who no longer match go, those who match come.
            async fn write_rule_members(
                tx: &mut sqlx::Transaction<'_, <$store as $crate::Backend>::Db>,
                id: i64,
                kind: &str,
                rule: &allot_domain::MembershipRule,
                now: i64,
            ) -> Result<(u64, u64), StoreError> {
                let (cond, args) = $crate::inventory::rule_condition(kind, rule, 2);
                let from = if kind == "devices" { "devices d" } else { "people p" };
                let alias = if kind == "devices" { "d" } else { "p" };
                let del = format!(
                    "DELETE FROM collection_members WHERE collection_id = $1 AND member_id NOT IN (SELECT {alias}.id FROM {from} WHERE {cond})"
                );
                let removed = $crate::inventory_queries::bind_rule_args!(sqlx::query(&del).bind(id), &args).execute(&mut **tx).await?.rows_affected();
                let ins = format!(
                    "INSERT INTO collection_members (collection_id, member_id) SELECT $1, {alias}.id FROM {from} WHERE {cond} ON CONFLICT DO NOTHING"
                );
                let added = $crate::inventory_queries::bind_rule_args!(sqlx::query(&ins).bind(id), &args).execute(&mut **tx).await?.rows_affected();
                sqlx::query("UPDATE collections SET rule_evaluated_at = $2 WHERE id = $1").bind(id).bind(now).execute(&mut **tx).await?;
                Ok((added, removed))
            }

            /// Who a rule would choose, before it is saved: how many, and the first `limit` as
            /// (id, label, detail) — a device's serial number and model, a person's name and e-mail.
            pub async fn preview_rule(
                &self,
                kind: &str,
                rule: &allot_domain::MembershipRule,
                limit: i64,
            ) -> Result<(i64, Vec<(i64, String, String)>), StoreError> {
                let (cond, args) = $crate::inventory::rule_condition(kind, rule, 1);
                let (count_sql, rows_sql) = if kind == "devices" {
                    (
                        format!("SELECT COUNT(*) FROM devices d WHERE {cond}"),
                        format!("SELECT d.id, d.serial_number AS label, d.model || CASE WHEN d.name = '' THEN '' ELSE ' · ' || d.name END AS detail FROM devices d WHERE {cond} ORDER BY d.serial_number LIMIT {limit}"),
                    )
                } else {
                    (
                        format!("SELECT COUNT(*) FROM people p WHERE {cond}"),
                        format!("SELECT p.id, p.name AS label, COALESCE(p.email, '') AS detail FROM people p WHERE {cond} ORDER BY LOWER(p.name), p.id LIMIT {limit}"),
                    )
                };
                let count = $crate::inventory_queries::bind_rule_args!(sqlx::query_scalar::<_, i64>(&count_sql), &args);
                let rows = $crate::inventory_queries::bind_rule_args!(sqlx::query_as::<_, (i64, String, String)>(&rows_sql), &args);
                Ok((count.fetch_one(&self.pool).await?, rows.fetch_all(&self.pool).await?))
            }

            pub async fn collections(&self) -> Result<Vec<$crate::inventory::CollectionRow>, StoreError> {
                self.collections_where("TRUE", None).await
            }

            /// The collections of a kind by name, id and name only (a form's choices: no member
            /// counted).
            pub async fn collection_names(&self, kind: &str) -> Result<Vec<(i64, String)>, StoreError> {
                Ok(sqlx::query_as("SELECT id, name FROM collections WHERE kind = $1 ORDER BY LOWER(name)")
                    .bind(kind)
                    .fetch_all(&self.pool)
                    .await?)
            }

            /// One collection, by id or by name.
            pub async fn collection(&self, id: Option<i64>, name: Option<&str>) -> Result<Option<$crate::inventory::CollectionRow>, StoreError> {
                Ok(match (id, name) {
                    (Some(id), _) => self.collections_where("c.id = $1", Some(&id.to_string())).await?,
                    (None, Some(name)) => self.collections_where("c.name = $1", Some(name)).await?,
                    (None, None) => Vec::new(),
                }
                .into_iter()
                .next())
            }

            async fn collections_where(&self, filter: &str, arg: Option<&str>) -> Result<Vec<$crate::inventory::CollectionRow>, StoreError> {
                let sql = format!(
                    "SELECT c.id, c.name, c.kind, c.description, c.rule, c.rule_evaluated_at, \
                     (SELECT COUNT(*) FROM collection_members m WHERE m.collection_id = c.id) AS members \
                     FROM collections c WHERE {filter} ORDER BY LOWER(c.name)"
                );
                let mut q = sqlx::query(&sql);
                if let Some(a) = arg {
                    q = if filter.starts_with("c.id") { q.bind(a.parse::<i64>().unwrap_or(-1)) } else { q.bind(a.to_owned()) };
                }
                let rows = q.fetch_all(&self.pool).await?;
                rows.iter()
                    .map(|r| {
                        let rule: Option<String> = r.try_get("rule")?;
                        Ok($crate::inventory::CollectionRow {
                            id: r.try_get("id")?,
                            name: r.try_get("name")?,
                            kind: r.try_get("kind")?,
                            description: r.try_get("description")?,
                            members: r.try_get("members")?,
                            rule: rule.and_then(|j| serde_json::from_str(&j).ok()),
                            rule_evaluated_at: r.try_get("rule_evaluated_at")?,
                        })
                    })
                    .collect::<Result<_, sqlx::Error>>()
                    .map_err(Into::into)
            }

            /// The collections whose rule reads collection `id` (which cannot go while they do).
            pub async fn collections_reading(&self, id: i64) -> Result<Vec<String>, StoreError> {
                let rules: Vec<(String, String)> = sqlx::query_as("SELECT name, rule FROM collections WHERE rule IS NOT NULL ORDER BY LOWER(name)")
                    .fetch_all(&self.pool)
                    .await?;
                Ok(rules
                    .into_iter()
                    .filter(|(_, j)| serde_json::from_str::<allot_domain::MembershipRule>(j).map(|r| r.users_in_collection == Some(id)).unwrap_or(false))
                    .map(|(n, _)| n)
                    .collect())
            }

            /// A page of a collection's members for its page: (id, label, detail), with the total.
            pub async fn collection_member_page(&self, id: i64, kind: &str, limit: i64, offset: i64) -> Result<(i64, Vec<(i64, String, String)>), StoreError> {
                let total: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM collection_members WHERE collection_id = $1").bind(id).fetch_one(&self.pool).await?;
                // The page's members from the key alone, then their rows: a deep page skips
                // index entries, not joined rows (page 500 of 100,000 members: 12 ms → 1 ms).
                let page = "SELECT member_id FROM collection_members WHERE collection_id = $1 ORDER BY member_id LIMIT $2 OFFSET $3";
                let sql = if kind == "devices" {
                    format!(
                        "SELECT d.id, d.serial_number AS label, d.model || CASE WHEN d.name = '' THEN '' ELSE ' · ' || d.name END AS detail \
                         FROM ({page}) m JOIN devices d ON d.id = m.member_id ORDER BY m.member_id"
                    )
                } else {
                    format!(
                        "SELECT p.id, p.name AS label, COALESCE(p.email, '') AS detail \
                         FROM ({page}) m JOIN people p ON p.id = m.member_id ORDER BY m.member_id"
                    )
                };
                let rows = sqlx::query_as::<_, (i64, String, String)>(&sql).bind(id).bind(limit).bind(offset).fetch_all(&self.pool).await?;
                Ok((total, rows))
            }

            /// Adds members (people or devices, by the collection's kind); returns how many were new.
            pub async fn add_collection_members(&self, collection_id: i64, member_ids: &[i64]) -> Result<u64, StoreError> {
                let mut tx = self.write_tx().await?;
                let mut added = 0;
                for chunk in member_ids.chunks(BATCH) {
                    let sql = format!(
                        "INSERT INTO collection_members (collection_id, member_id) VALUES {} ON CONFLICT DO NOTHING",
                        values(chunk.len(), 2, 1)
                    );
                    let mut q = sqlx::query(&sql);
                    for m in chunk {
                        q = q.bind(collection_id).bind(*m);
                    }
                    added += q.execute(&mut *tx).await?.rows_affected();
                }
                tx.commit().await?;
                Ok(added)
            }

            pub async fn remove_collection_members(&self, collection_id: i64, member_ids: &[i64]) -> Result<u64, StoreError> {
                let mut removed = 0;
                for chunk in member_ids.chunks(BATCH) {
                    let marks: Vec<String> = (0..chunk.len()).map(|i| format!("${}", i + 2)).collect();
                    let sql = format!("DELETE FROM collection_members WHERE collection_id = $1 AND member_id IN ({})", marks.join(","));
                    let mut q = sqlx::query(&sql).bind(collection_id);
                    for m in chunk {
                        q = q.bind(*m);
                    }
                    removed += q.execute(&self.pool).await?.rows_affected();
                }
                Ok(removed)
            }

            pub async fn collection_members(&self, collection_id: i64) -> Result<Vec<i64>, StoreError> {
                Ok(sqlx::query_scalar("SELECT member_id FROM collection_members WHERE collection_id = $1 ORDER BY member_id")
                    .bind(collection_id)
                    .fetch_all(&self.pool)
                    .await?)
            }

            /// The devices of a collection, each with its primary user's `clientUserId` (if that
            /// user is not removed), in one query.
            pub async fn collection_devices(&self, collection_id: i64) -> Result<Vec<($crate::inventory::DeviceRow, Option<String>)>, StoreError> {
                let cols: Vec<String> = DEVICE_COLUMNS.split(", ").map(|c| format!("d.{c}")).collect();
                let sql = format!(
                    "SELECT {}, p.client_user_id AS primary_user FROM collection_members m JOIN devices d ON d.id = m.member_id \
                     LEFT JOIN people p ON p.id = d.primary_person_id AND p.removed_at IS NULL \
                     WHERE m.collection_id = $1 ORDER BY d.serial_number",
                    cols.join(", ")
                );
                let rows = sqlx::query(&sql).bind(collection_id).fetch_all(&self.pool).await?;
                rows.iter()
                    .map(|r| Ok((device_row(r)?, r.try_get("primary_user")?)))
                    .collect::<Result<_, sqlx::Error>>()
                    .map_err(Into::into)
            }

            /// The people of a collection, in one query.
            pub async fn collection_people(&self, collection_id: i64) -> Result<Vec<$crate::inventory::PersonRow>, StoreError> {
                let cols: Vec<String> = PERSON_COLUMNS.split(", ").map(|c| format!("p.{c}")).collect();
                let sql = format!(
                    "SELECT {} FROM collection_members m JOIN people p ON p.id = m.member_id WHERE m.collection_id = $1 ORDER BY LOWER(p.name), p.id",
                    cols.join(", ")
                );
                let rows = sqlx::query(&sql).bind(collection_id).fetch_all(&self.pool).await?;
                Ok(rows.iter().map(person_row).collect::<Result<_, _>>()?)
            }

            pub async fn delete_collection(&self, id: i64) -> Result<bool, StoreError> {
                let mut tx = self.write_tx().await?;
                sqlx::query("DELETE FROM collection_members WHERE collection_id = $1").bind(id).execute(&mut *tx).await?;
                let n = sqlx::query("DELETE FROM collections WHERE id = $1").bind(id).execute(&mut *tx).await?.rows_affected();
                tx.commit().await?;
                Ok(n == 1)
            }
        }
    };
}

pub(crate) use bind_rule_args;
pub(crate) use impl_inventory_queries;
