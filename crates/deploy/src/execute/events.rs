//! Following Apple's answers: the events of license requests, releases and user registrations
//! (polled at most every `poll_interval`), or — when a request's outcome is unknown — the holder's
//! assignments read back. Each target's claim or release ends in one transaction.

use allot_apple_client::{AssignmentsQuery, Bearer};
use allot_apple_wire::{codes, event_status};
use allot_store::{AssignmentRow, Holder, TargetRow};

use super::{now_ms, status, DeployError, Executor, Step, PAGE};
use crate::Action;

fn holder_of(t: &TargetRow) -> Option<Holder> {
    let h = t.holder.clone()?;
    Some(if t.license.as_deref() == Some("user") {
        Holder::User(h)
    } else {
        Holder::Device(h)
    })
}

impl Executor {
    pub(crate) async fn follow_events(&self, step: &Step) -> Result<(), DeployError> {
        let store = self.store();
        let d = &step.d;
        for (event, token_id) in store.pending_events(d.id).await? {
            let Some(token) = store.token(token_id).await? else {
                continue;
            };
            let bearer = self.bearer(&token)?;
            let (group, verdicts) = match &event {
                Some(id) => {
                    // What Apple's notifications said so far; a status poll (at most every
                    // poll interval) only for what they have not.
                    let mut told = store.event_results(id).await?;
                    let group = store.targets_of_event(d.id, Some(id), i64::MAX / 2).await?;
                    let untold = group.iter().any(|t| {
                        t.token_id == Some(token_id)
                            && !t.holder.as_ref().is_some_and(|h| told.contains_key(h))
                    });
                    if untold && self.due(id) {
                        let s = self.engine().apple().status(&bearer, id).await?;
                        if s.event_status != event_status::PENDING {
                            // The event is over: the holders not listed as failed are done.
                            for f in &s.failures {
                                if let Some(info) = &f.error_info {
                                    for h in info.serial_numbers.iter().chain(&info.client_user_ids)
                                    {
                                        told.entry(h.clone()).or_insert_with(|| {
                                            Some((f.error_number, f.error_message.clone()))
                                        });
                                    }
                                }
                            }
                            for h in group.iter().filter_map(|t| t.holder.clone()) {
                                told.entry(h).or_insert(None);
                            }
                        }
                    }
                    if told.is_empty() {
                        continue;
                    }
                    // One event covers at most one request's targets.
                    (group, Some(told))
                }
                None => (store.targets_of_event(d.id, None, PAGE).await?, None),
            };
            let mut waiting = false;
            // Claims end together, and releases: one transaction each for the event's targets.
            let mut claims = Vec::new();
            let mut releases = Vec::new();
            for t in group.into_iter().filter(|t| t.token_id == Some(token_id)) {
                let holder = t.holder.clone().unwrap_or_default();
                let verdict = match &verdicts {
                    Some(v) => match v.get(&holder) {
                        Some(said) => Some(said.clone()),
                        None => {
                            waiting = true;
                            continue;
                        }
                    },
                    None => None,
                };
                match t.status.as_str() {
                    status::LICENSE_REQUESTED => {
                        claims.push(self.requested(step, &bearer, t, verdict).await?)
                    }
                    status::LICENSE_RELEASING => {
                        releases.extend(self.releasing(step, &bearer, t, verdict).await?)
                    }
                    status::INVITATION_PENDING => self.registered(token_id, t, verdict).await?,
                    _ => {}
                }
            }
            if !claims.is_empty() {
                let gen = store.current_generation(token_id).await?;
                store
                    .finish_claims(token_id, &claims, gen, now_ms())
                    .await?;
            }
            if !releases.is_empty() {
                store.finish_releases(token_id, &releases, now_ms()).await?;
            }
            if let (Some(id), false) = (&event, waiting) {
                // Nothing waits on it any more (and nothing should on week-old results).
                store
                    .forget_event_results(id, now_ms() - 7 * 86_400_000)
                    .await?;
            }
        }
        Ok(())
    }

    /// Whether Apple has the holder's assignment of the asset (for unknown outcomes).
    async fn holds(
        &self,
        step: &Step,
        bearer: &Bearer,
        t: &TargetRow,
    ) -> Result<bool, DeployError> {
        let mut q = AssignmentsQuery {
            adam_id: Some(step.d.adam_id.clone()),
            pricing_param: Some(step.d.pricing.clone()),
            ..Default::default()
        };
        match holder_of(t) {
            Some(Holder::User(u)) => q.client_user_id = Some(u),
            Some(Holder::Device(s)) => q.serial_number = Some(s),
            None => return Ok(false),
        }
        let page = self
            .engine()
            .apple()
            .assignments_page(bearer, &q, 0)
            .await?;
        Ok(!page.assignments.is_empty())
    }

    /// A license request's outcome, to be finished with the others of its event: `verdict` is
    /// `None` when unknown (read back), else Apple's failure for this holder, if any.
    async fn requested(
        &self,
        step: &Step,
        bearer: &Bearer,
        mut t: TargetRow,
        verdict: Option<Option<(i32, String)>>,
    ) -> Result<(TargetRow, Option<AssignmentRow>), DeployError> {
        let verdict = match verdict {
            Some(v) => v,
            None if self.holds(step, bearer, &t).await? => None,
            None => Some((0, String::new())),
        };
        let granted = match verdict {
            None => {
                t.status = status::LICENSE_ASSIGNED.into();
                t.detail = None;
                holder_of(&t).map(|holder| AssignmentRow {
                    adam_id: step.d.adam_id.clone(),
                    pricing: step.d.pricing.clone(),
                    holder,
                })
            }
            Some((n, _)) if n == codes::NOT_ENOUGH_LICENSES => {
                t.status = step.shortage_status().into();
                t.detail = Some("no license available".into());
                None
            }
            Some((0, _)) => {
                t.status = status::PENDING.into();
                t.detail = Some(
                    "Apple has no record of the license request; it will be made again".into(),
                );
                None
            }
            Some((n, _)) => {
                t.status = status::FAILED.into();
                t.detail = Some(format!(
                    "Apple refused the license: {} (error {n})",
                    codes::message(n)
                ));
                None
            }
        };
        Ok((t, granted))
    }

    /// A release's outcome, to be finished with the others of its event (the target and the
    /// assignment Apple let go, if it did). Unknown: if Apple still has the license, it is asked
    /// again (after reading back, never blindly), and there is nothing to finish.
    async fn releasing(
        &self,
        step: &Step,
        bearer: &Bearer,
        mut t: TargetRow,
        verdict: Option<Option<(i32, String)>>,
    ) -> Result<Option<(TargetRow, Option<AssignmentRow>)>, DeployError> {
        let verdict = match verdict {
            Some(v) => v,
            None if self.holds(step, bearer, &t).await? => {
                t.status = status::RELEASE_PENDING.into();
                self.store()
                    .update_target_from(&t, &[status::LICENSE_RELEASING], now_ms())
                    .await?;
                return Ok(None);
            }
            None => None,
        };
        let released = match verdict {
            None => holder_of(&t).map(|holder| AssignmentRow {
                adam_id: step.d.adam_id.clone(),
                pricing: step.d.pricing.clone(),
                holder,
            }),
            Some((n, _)) => {
                t.detail = Some(format!(
                    "{}Apple did not take the license back: {} (error {n})",
                    t.detail
                        .as_deref()
                        .map(|d| format!("{d}; "))
                        .unwrap_or_default(),
                    codes::message(n)
                ));
                None
            }
        };
        let settled = self
            .settled_status(step, t.member_id, released.is_some())
            .await?;
        t.status = settled.into();
        if released.is_some() && settled == status::LEFT {
            t.detail = Some("left the collection; its license was given back".into());
        } else if released.is_some() {
            t.detail = Some(released_words(step.action, t.detail.as_deref()));
        }
        Ok(Some((t, released)))
    }

    /// A registration's outcome: the user is read back (9716 means they exist already).
    async fn registered(
        &self,
        token_id: i64,
        mut t: TargetRow,
        verdict: Option<Option<(i32, String)>>,
    ) -> Result<(), DeployError> {
        match verdict.flatten() {
            Some((n, _)) if n != codes::USER_ALREADY_EXISTS => {
                t.status = status::FAILED.into();
                t.detail = Some(format!(
                    "Apple could not register the user: {} (error {n})",
                    codes::message(n)
                ));
            }
            _ => {
                let cuid = t.holder.clone().unwrap_or_default();
                self.refresh_user(token_id, &cuid).await?;
                t.detail = Some("registered with Apple".into());
            }
        }
        t.event_id = None;
        self.store()
            .update_target_from(&t, &[status::INVITATION_PENDING], now_ms())
            .await?;
        Ok(())
    }
}

/// Where a target ends once its license question is settled.
pub(crate) fn final_status(action: Action, released: bool) -> &'static str {
    match action {
        // A failed install whose license went back: still a failure.
        Action::Required | Action::Available => status::FAILED,
        Action::Uninstall | Action::Revoke if released => status::LICENSE_RECLAIMED,
        Action::Uninstall => status::UNINSTALLED,
        Action::Revoke => status::NO_LICENSE,
    }
}

pub(crate) fn released_words(action: Action, before: Option<&str>) -> String {
    match (action, before) {
        (Action::Required | Action::Available, Some(why)) => {
            format!("{why}; its license was given back")
        }
        (Action::Uninstall, _) => "removed; its license was given back".into(),
        _ => "its license was given back".into(),
    }
}
