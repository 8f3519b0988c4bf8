//! Reclaim policy: the device licenses of devices that left management (MDM check-out, or marked
//! gone) are given back to Apple once a grace period has passed, so the devices can come back
//! within it without losing their apps.

use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

use allot_apple_wire::{limit, RevokeAssetsRequest};

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
            for (token, a) in store.device_licenses(&d.serial_number).await? {
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
}
