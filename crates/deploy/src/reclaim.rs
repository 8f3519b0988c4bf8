//! Reclaim policies: the device licenses of devices that left management (MDM check-out, or marked
//! gone), and the user licenses of people who left (removed), are given back to Apple once a grace
//! period has passed, so a device or person can come back within it without losing their apps.

use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

use allot_apple_wire::{limit, user_status, ManageUsersRequest, RequestUser, RevokeAssetsRequest};

use crate::execute::{DeployError, Executor};

impl Executor {
    /// Gives back the licenses of up to 100 departed devices; returns how many devices are done.
    pub async fn reclaim_departed(&self, grace: Duration) -> Result<usize, DeployError> {
        let store = self.engine().store();
        let now = allot_sync::now_ms();
        let devices = store
            .devices_to_reclaim(now - grace.as_millis() as i64, 100)
            .await?;
        if devices.is_empty() {
            return Ok(0);
        }
        // Serial numbers to revoke, per token.
        let mut per_token: BTreeMap<i64, Vec<(String, allot_store::AssignmentRow)>> =
            BTreeMap::new();
        for d in &devices {
            for (token, a) in store.licenses_held("device", &d.serial_number).await? {
                per_token
                    .entry(token)
                    .or_default()
                    .push((d.serial_number.clone(), a));
            }
        }
        let mut unfinished: HashSet<String> = HashSet::new();
        for (token_id, held) in per_token {
            let serials: Vec<String> = held
                .iter()
                .map(|(s, _)| s.clone())
                .collect::<std::collections::BTreeSet<_>>()
                .into_iter()
                .collect();
            let Some(token) = store.token(token_id).await? else {
                continue;
            };
            if let Some(why) = crate::unusable(&token, now) {
                tracing::warn!(token = token_id, "cannot reclaim licenses: {why}");
                unfinished.extend(serials);
                continue;
            }
            let bearer = self
                .engine()
                .bearer_of(&token)
                .map_err(|e| DeployError::Invalid(e.to_string()))?;
            let max = self
                .engine()
                .apple()
                .request_limit(limit::MAX_REVOKE_SERIAL_NUMBERS)
                .await;
            for chunk in serials.chunks(max) {
                // Revoking is idempotent at Apple (what is not there is not removed), so a pass
                // interrupted before it was recorded may safely ask again.
                match self
                    .engine()
                    .apple()
                    .revoke(
                        &bearer,
                        &RevokeAssetsRequest {
                            client_user_ids: vec![],
                            serial_numbers: chunk.to_vec(),
                        },
                    )
                    .await
                {
                    Ok(_) => {
                        for (_, a) in held.iter().filter(|(s, _)| chunk.contains(s)) {
                            store.remove_assignment(token_id, a).await?;
                        }
                    }
                    Err(e) => {
                        tracing::warn!(token = token_id, error = %e, "revoking the licenses of departed devices failed; the next pass tries again");
                        unfinished.extend(chunk.iter().cloned());
                    }
                }
            }
        }
        let mut done = 0;
        for d in devices
            .iter()
            .filter(|d| !unfinished.contains(&d.serial_number))
        {
            store
                .mark_device_reclaimed(d.id, allot_sync::now_ms())
                .await?;
            tracing::info!(serial = %d.serial_number, "licenses of a departed device given back");
            done += 1;
        }
        Ok(done)
    }

    /// Gives back the user licenses of up to 100 people who left: their licenses are revoked and
    /// their Apple user retired on every location that knows them. Both are idempotent at Apple,
    /// so a pass interrupted before it was recorded may safely run again.
    pub async fn reclaim_departed_people(&self, grace: Duration) -> Result<usize, DeployError> {
        let store = self.engine().store();
        let now = allot_sync::now_ms();
        let mut done = 0;
        for person in store
            .people_to_reclaim(now - grace.as_millis() as i64, 100)
            .await?
        {
            let cuid = &person.client_user_id;
            let held = store.licenses_held("user", cuid).await?;
            let records = store.apple_user_records(cuid).await?;
            let mut tokens: Vec<i64> = held.iter().map(|(t, _)| *t).collect();
            tokens.extend(
                records
                    .iter()
                    .filter(|(_, u)| {
                        u.status == user_status::REGISTERED || u.status == user_status::ASSOCIATED
                    })
                    .map(|(t, _)| *t),
            );
            tokens.sort_unstable();
            tokens.dedup();
            let mut finished = true;
            for token_id in tokens {
                let Some(token) = store.token(token_id).await? else {
                    continue;
                };
                if let Some(why) = crate::unusable(&token, now) {
                    tracing::warn!(
                        token = token_id,
                        "cannot reclaim a departed person's licenses: {why}"
                    );
                    finished = false;
                    continue;
                }
                let bearer = self
                    .engine()
                    .bearer_of(&token)
                    .map_err(|e| DeployError::Invalid(e.to_string()))?;
                let apple = self.engine().apple();
                let revoked = apple
                    .revoke(
                        &bearer,
                        &RevokeAssetsRequest {
                            client_user_ids: vec![cuid.clone()],
                            serial_numbers: vec![],
                        },
                    )
                    .await;
                let retired = apple
                    .retire_users(
                        &bearer,
                        &ManageUsersRequest {
                            users: vec![RequestUser {
                                client_user_id: cuid.clone(),
                                ..Default::default()
                            }],
                        },
                    )
                    .await;
                match (revoked, retired) {
                    (Ok(_), Ok(_)) => {
                        for (_, a) in held.iter().filter(|(t, _)| *t == token_id) {
                            store.remove_assignment(token_id, a).await?;
                        }
                        // Their VPP terms status reads "retired" at once, not after the next sync.
                        if let Some((_, mut u)) =
                            records.iter().find(|(t, _)| *t == token_id).cloned()
                        {
                            u.status = user_status::RETIRED.into();
                            let gen = store.current_generation(token_id).await?;
                            store.upsert_users(token_id, &[u], gen).await?;
                        }
                    }
                    (r1, r2) => {
                        let e = r1
                            .err()
                            .or(r2.err())
                            .map(|e| e.to_string())
                            .unwrap_or_default();
                        tracing::warn!(token = token_id, error = %e, "reclaiming a departed person's licenses failed; the next pass tries again");
                        finished = false;
                    }
                }
            }
            if finished {
                store
                    .mark_person_reclaimed(&person, allot_sync::now_ms())
                    .await?;
                tracing::info!(
                    person = person.id,
                    "licenses of a person who left given back"
                );
                done += 1;
            }
        }
        Ok(done)
    }
}
