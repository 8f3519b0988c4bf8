//! Claiming licenses: the license rule picks device or user; held licenses are reused; users who
//! have not joined the program are registered and invited first; the rest are reserved (one
//! conditional UPDATE, so racing deployments never over-assign) and associated at Apple in batches
//! of the published limit.

use std::collections::{BTreeMap, HashSet};

use allot_apple_client::AppleError;
use allot_apple_wire::{limit, AssetRef, ManageAssetsRequest};
use allot_domain::{license_for, Choice, License};
use allot_store::{PersonFacts, TargetRow, TokenRow};

use super::users::Gate;
use super::{now_ms, status, DeployError, Executor, Step, PAGE};

impl Executor {
    /// Targets in `statuses` move toward a license: assigned (already held), invitation pending,
    /// requested at Apple, waiting, failed or needing a user.
    pub(crate) async fn claim(&self, step: &Step, statuses: &[&str]) -> Result<(), DeployError> {
        let store = self.store();
        let d = &step.d;
        let mut after = 0;
        loop {
            let page = store
                .member_targets_page(d.id, &step.kind_name, statuses, after, PAGE)
                .await?;
            let Some(last) = page.last() else { break };
            after = last.target.member_id;
            self.keep_lease(step.d.id).await?;
            let (held_devices, held_users) = self.holders_of(step, &page).await?;
            let mut device_claims = Vec::new();
            let mut user_claims: BTreeMap<i64, Vec<TargetRow>> = BTreeMap::new();
            let mut to_register: BTreeMap<i64, Vec<(TargetRow, PersonFacts)>> = BTreeMap::new();
            let mut to_invite = Vec::new();
            let mut users_seen = HashSet::new();
            // Targets whose new state needs nothing from Apple, written together.
            let mut settled: Vec<(TargetRow, String)> = Vec::new();
            for m in page {
                let read_as = m.target.status.clone();
                // A registration in flight is followed by `follow_events`.
                if !m.active
                    || (read_as == status::INVITATION_PENDING && m.target.event_id.is_some())
                {
                    continue;
                }
                let mut t = m.target;
                t.enrollment_id = (!m.install_ids.is_empty()).then(|| m.install_ids.join(","));
                let person = m.person.filter(|p| !p.removed);
                match license_for(step.facts, step.kind, person.is_some()) {
                    Choice::NeedsUser => {
                        if read_as != status::NEEDS_USER {
                            t.status = status::NEEDS_USER.into();
                            t.detail = Some("this device has no primary user, and this content needs a user license here: set the device's user".into());
                            settled.push((t, read_as));
                        }
                    }
                    Choice::Claim(License::Device) => {
                        let serial = m.serial_number.unwrap_or_default();
                        t.license = Some("device".into());
                        t.holder = Some(serial.clone());
                        if let Some(token) = held_devices.get(&serial) {
                            t.token_id = Some(*token);
                            settled.push((already_licensed(t), read_as));
                        } else {
                            device_claims.push(t);
                        }
                    }
                    Choice::Claim(License::User) => {
                        let Some(p) = person else { continue };
                        t.license = Some("user".into());
                        t.holder = Some(p.client_user_id.clone());
                        if let Some(token) = held_users.get(&p.client_user_id) {
                            t.token_id = Some(*token);
                            settled.push((already_licensed(t), read_as));
                        } else if !users_seen.insert(p.client_user_id.clone()) {
                            // Another target of this page claims for the same person; the
                            // next step finds the license held.
                        } else {
                            match self.user_gate(step, &p).await? {
                                Gate::Ready(token) => user_claims.entry(token).or_default().push(t),
                                Gate::Register(token) => {
                                    to_register.entry(token).or_default().push((t, p))
                                }
                                Gate::Invited(token, user) => to_invite.push((t, token, user)),
                            }
                        }
                    }
                }
            }
            store
                .update_targets_from(&pairs(&settled), now_ms())
                .await?;
            self.register(step, to_register).await?;
            self.invite(to_invite).await?;
            self.claim_page(step, &step.tokens, "device", device_claims)
                .await?;
            for (token, batch) in user_claims {
                if let Some(t) = step.token(token) {
                    self.claim_page(step, std::slice::from_ref(t), "user", batch)
                        .await?;
                }
            }
        }
        Ok(())
    }

    /// What Allot shows must be true: a licensed target whose license is gone from Apple's
    /// assignments (synced, or told by a notification) — revoked in Apple Business Manager or by
    /// another tool — goes back to `pending`, so this step claims it again and re-installs.
    /// Only targets licensed from one of the step's usable tokens are checked (an expired
    /// token's licenses are not visible, not gone).
    pub(crate) async fn recheck_licenses(&self, step: &Step) -> Result<u64, DeployError> {
        let store = self.store();
        let licensed = [
            status::LICENSE_ASSIGNED,
            status::INSTALL_SENT,
            status::INSTALLING,
            status::INSTALLED,
        ];
        let (mut after, mut moved) = (0, 0);
        loop {
            let page = store
                .member_targets_page(step.d.id, &step.kind_name, &licensed, after, PAGE)
                .await?;
            let Some(last) = page.last() else { break };
            after = last.target.member_id;
            self.keep_lease(step.d.id).await?;
            let (held_devices, held_users) = self.holders_of(step, &page).await?;
            let mut confirmed = Vec::new();
            let mut gone: Vec<(TargetRow, String)> = Vec::new();
            for m in page {
                let t = &m.target;
                let from_usable = t.token_id.is_some_and(|id| step.token(id).is_some());
                let held = match (t.license.as_deref(), t.holder.as_deref()) {
                    (Some("device"), Some(h)) => held_devices.contains_key(h),
                    (Some("user"), Some(h)) => held_users.contains_key(h),
                    _ => true,
                };
                if held && from_usable && t.status == status::LICENSE_ASSIGNED {
                    // Apple's assignments show the license: the status is confirmed now. (An
                    // install's status is the device's to confirm.)
                    confirmed.push(t.member_id);
                }
                if held || !from_usable {
                    continue;
                }
                let mut back = m.target.clone();
                let read_as = back.status.clone();
                back.status = status::PENDING.into();
                back.command_uuid = None;
                back.token_id = None;
                back.detail = Some(
                    "the license was removed at Apple outside Allot; claiming it again".into(),
                );
                gone.push((back, read_as));
            }
            moved += store.update_targets_from(&pairs(&gone), now_ms()).await?;
            store
                .confirm_targets(step.d.id, &confirmed, now_ms())
                .await?;
        }
        if moved > 0 {
            tracing::info!(
                deployment = step.d.id,
                moved,
                "licenses removed at Apple are claimed again"
            );
        }
        Ok(moved)
    }

    /// Claims licenses (of `kind`) for one page of targets from the tokens in order; the rest
    /// wait or fail.
    async fn claim_page(
        &self,
        step: &Step,
        tokens: &[TokenRow],
        kind: &str,
        mut to_claim: Vec<TargetRow>,
    ) -> Result<(), DeployError> {
        let store = self.store();
        let d = &step.d;
        let max = self
            .engine()
            .apple()
            .request_limit(if kind == "user" {
                limit::MAX_CLIENT_USER_IDS
            } else {
                limit::MAX_SERIAL_NUMBERS
            })
            .await;
        for token in tokens {
            if to_claim.is_empty() {
                break;
            }
            let bearer = self.bearer(token)?;
            let free = store.claimable(token.id, &d.adam_id, &d.pricing).await?;
            let n = (free.min(to_claim.len() as i64)) as usize;
            if n == 0 {
                continue;
            }
            let mut batch: Vec<TargetRow> = to_claim[..n].to_vec();
            // Reserved and marked together: a crash from here on leaves targets that say what was
            // reserved, and following them up (outcome unknown) releases it.
            if !store
                .reserve_for_targets(token.id, &d.adam_id, &d.pricing, &batch, now_ms())
                .await?
            {
                continue;
            }
            to_claim.drain(..n);
            for t in &mut batch {
                t.status = status::LICENSE_REQUESTED.into();
                t.token_id = Some(token.id);
                t.detail = None;
            }
            for chunk in batch.chunks(max) {
                let holders: Vec<String> = chunk.iter().filter_map(|t| t.holder.clone()).collect();
                let mut req = ManageAssetsRequest {
                    assets: vec![AssetRef::new(&d.adam_id, &d.pricing)],
                    ..Default::default()
                };
                if kind == "user" {
                    req.client_user_ids = holders;
                } else {
                    req.serial_numbers = holders;
                }
                match self.engine().apple().associate(&bearer, &req).await {
                    Ok(e) => {
                        self.event_started(token, &e.event_id);
                        let members: Vec<i64> = chunk.iter().map(|t| t.member_id).collect();
                        store
                            .set_targets_event(
                                d.id,
                                &members,
                                status::LICENSE_REQUESTED,
                                &e.event_id,
                                now_ms(),
                            )
                            .await?;
                    }
                    // Apple may or may not have it: read back later, never send blindly again.
                    Err(AppleError::OutcomeUnknown(_)) => {
                        let checking: Vec<(TargetRow, String)> = chunk
                            .iter()
                            .map(|t| {
                                let mut t = t.clone();
                                t.detail = Some("checking with Apple".into());
                                (t, status::LICENSE_REQUESTED.to_owned())
                            })
                            .collect();
                        store
                            .update_targets_from(&pairs(&checking), now_ms())
                            .await?;
                    }
                    Err(e) => {
                        let refused: Vec<_> = chunk
                            .iter()
                            .map(|t| {
                                let mut t = t.clone();
                                t.status = status::FAILED.into();
                                t.detail = Some(format!("Apple refused the license request: {e}"));
                                (t, None)
                            })
                            .collect();
                        store.finish_claims(token.id, &refused, 0, now_ms()).await?;
                    }
                }
            }
        }
        // No license left on any token.
        let short: Vec<(TargetRow, String)> = to_claim
            .into_iter()
            .map(|mut t| {
                let read_as = t.status.clone();
                t.status = step.shortage_status().into();
                t.detail = Some(
                    if t.status == status::WAITING {
                        "waiting for a free license"
                    } else {
                        "no license available"
                    }
                    .into(),
                );
                (t, read_as)
            })
            .collect();
        store.update_targets_from(&pairs(&short), now_ms()).await?;
        Ok(())
    }
}

/// A target whose holder already has the license: assigned, nothing asked of Apple.
fn already_licensed(mut t: TargetRow) -> TargetRow {
    t.status = status::LICENSE_ASSIGNED.into();
    t.detail = Some("already licensed".into());
    t.command_uuid = None;
    t
}

/// Targets with the status each was read in, as `update_targets_from` takes them.
pub(crate) fn pairs(items: &[(TargetRow, String)]) -> Vec<(&TargetRow, &str)> {
    items.iter().map(|(t, from)| (t, from.as_str())).collect()
}
