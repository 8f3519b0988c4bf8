//! Giving licenses back: Revoke targets, Uninstall targets once the device removed the content,
//! and failed installs this deployment had licensed. Each target is marked `license_releasing`
//! before Apple is asked, so a crash leaves a target whose outcome is read back, not resent.

use std::collections::BTreeMap;

use allot_apple_client::AppleError;
use allot_apple_wire::{codes, limit, AssetRef, ManageAssetsRequest};
use allot_store::TargetRow;

use super::events::final_status;
use super::{now_ms, status, DeployError, Executor, Step, PAGE};

impl Executor {
    /// Revoke: every pending target is to give its license back.
    pub(crate) async fn mark_for_release(&self, step: &Step) -> Result<(), DeployError> {
        self.store()
            .move_targets(
                step.d.id,
                status::PENDING,
                status::RELEASE_PENDING,
                "to be revoked",
                now_ms(),
            )
            .await?;
        Ok(())
    }

    /// Targets in `release_pending` give back the license they hold on the deployment's tokens:
    /// the device's, else its user's (device collections), or the person's.
    pub(crate) async fn release(&self, step: &Step) -> Result<(), DeployError> {
        let store = self.store();
        let d = &step.d;
        let mut after = 0;
        loop {
            let page = store
                .member_targets_page(
                    d.id,
                    &step.kind_name,
                    &[status::RELEASE_PENDING],
                    after,
                    PAGE,
                )
                .await?;
            let Some(last) = page.last() else { break };
            after = last.target.member_id;
            self.keep_lease(step.d.id).await?;
            let (devices, people) = self.holders_of(step, &page).await?;
            // (token, kind) → targets to release there.
            let mut batches: BTreeMap<(i64, &str), Vec<TargetRow>> = BTreeMap::new();
            for m in page {
                let mut t = m.target;
                let device = m
                    .serial_number
                    .and_then(|s| devices.get(&s).map(|tok| (s, *tok)));
                let user = m
                    .person
                    .map(|p| p.client_user_id)
                    .and_then(|u| people.get(&u).map(|tok| (u, *tok)));
                // A license this deployment claimed is given back from what the target recorded,
                // whatever the local copy says meanwhile (a sync may be re-reading it): asking
                // Apple to take back what it no longer has is harmless.
                let claimed = match (&t.license, &t.holder, t.token_id) {
                    (Some(l), Some(h), Some(tok)) if t.claimed && step.token(tok).is_some() => {
                        Some((if l == "user" { "user" } else { "device" }, h.clone(), tok))
                    }
                    _ => None,
                };
                let (kind, holder, token) = match (claimed, device, user) {
                    (Some(c), _, _) => c,
                    (None, Some((s, tok)), _) => ("device", s, tok),
                    (None, None, Some((u, tok))) => ("user", u, tok),
                    (None, None, None) => {
                        t.status = self.settled_status(step, t.member_id, false).await?.into();
                        if t.status == status::LEFT {
                            t.detail = Some("left the collection; it held no license".into());
                        } else if step.action == crate::Action::Revoke {
                            t.detail = Some("it held no license to give back".into());
                        } else if step.action == crate::Action::Uninstall {
                            t.detail = Some("removed; it held no license".into());
                        }
                        store
                            .update_target_from(&t, &[status::RELEASE_PENDING], now_ms())
                            .await?;
                        continue;
                    }
                };
                t.license = Some(kind.into());
                t.holder = Some(holder);
                t.token_id = Some(token);
                batches.entry((token, kind)).or_default().push(t);
            }
            for ((token_id, kind), targets) in batches {
                self.release_batch(step, token_id, kind, targets).await?;
            }
        }
        Ok(())
    }

    async fn release_batch(
        &self,
        step: &Step,
        token_id: i64,
        kind: &str,
        targets: Vec<TargetRow>,
    ) -> Result<(), DeployError> {
        let store = self.store();
        let d = &step.d;
        let Some(token) = step.token(token_id) else {
            return Ok(());
        };
        let bearer = self.bearer(token)?;
        let max = self
            .engine()
            .apple()
            .request_limit(if kind == "user" {
                limit::MAX_CLIENT_USER_IDS
            } else {
                limit::MAX_SERIAL_NUMBERS
            })
            .await;
        for chunk in targets.chunks(max) {
            // Marked first: a crash before Apple answers leaves targets that are read back.
            let marked = self.mark_releasing(chunk).await?;
            if marked.is_empty() {
                continue;
            }
            let holders: Vec<String> = marked.iter().filter_map(|t| t.holder.clone()).collect();
            let mut req = ManageAssetsRequest {
                assets: vec![AssetRef::new(&d.adam_id, &d.pricing)],
                ..Default::default()
            };
            if kind == "user" {
                req.client_user_ids = holders;
            } else {
                req.serial_numbers = holders;
            }
            match self.engine().apple().disassociate(&bearer, &req).await {
                Ok(e) => {
                    self.event_started(token, &e.event_id);
                    let members: Vec<i64> = marked.iter().map(|t| t.member_id).collect();
                    store
                        .set_targets_event(
                            d.id,
                            &members,
                            status::LICENSE_RELEASING,
                            &e.event_id,
                            now_ms(),
                        )
                        .await?;
                }
                // Read back by the next step's `follow_events`.
                Err(AppleError::OutcomeUnknown(_)) => {}
                Err(e) => {
                    let not_revocable =
                        matches!(&e, AppleError::Api(b) if b.error_number == codes::NOT_REVOCABLE);
                    let mut refused = Vec::with_capacity(marked.len());
                    for mut t in marked {
                        t.status = final_status(step.action, false).into();
                        t.detail = Some(if not_revocable {
                            "Apple does not take this license back (error 9706: books stay with the user's Apple Account)".into()
                        } else {
                            format!("Apple refused to take the license back: {e}")
                        });
                        if step.action == crate::Action::Uninstall && not_revocable {
                            t.status = status::UNINSTALLED.into();
                        } else if step.action == crate::Action::Revoke {
                            t.status = status::FAILED.into();
                        }
                        if self.settled_status(step, t.member_id, false).await? == status::LEFT {
                            t.status = status::LEFT.into();
                        }
                        refused.push((t, None));
                    }
                    store.finish_releases(token_id, &refused, now_ms()).await?;
                }
            }
        }
        Ok(())
    }

    /// Marks targets `license_releasing` (from `release_pending`), all in one statement; the
    /// ones marked. Should another step have moved some meanwhile (one instance steps a
    /// deployment at a time, so this is rare), each is marked alone to learn which: one already
    /// marked by the batch is then left to the read-back, as after a crash.
    async fn mark_releasing(&self, chunk: &[TargetRow]) -> Result<Vec<TargetRow>, DeployError> {
        let store = self.store();
        let marked: Vec<TargetRow> = chunk
            .iter()
            .map(|t| {
                let mut t = t.clone();
                t.status = status::LICENSE_RELEASING.into();
                t.event_id = None;
                t
            })
            .collect();
        let items: Vec<(&TargetRow, &str)> = marked
            .iter()
            .map(|t| (t, status::RELEASE_PENDING))
            .collect();
        if store.update_targets_from(&items, now_ms()).await? == marked.len() as u64 {
            return Ok(marked);
        }
        let mut alone = Vec::new();
        for t in marked {
            if store
                .update_target_from(&t, &[status::RELEASE_PENDING], now_ms())
                .await?
            {
                alone.push(t);
            }
        }
        Ok(alone)
    }
}
