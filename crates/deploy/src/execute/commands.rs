//! The MDM side: installs (InstallApplication with PurchaseMethod 1, or InstallMedia for books)
//! and removals (RemoveApplication / RemoveMedia) sent through NanoMDM, at most 100 devices per
//! command; installs still in progress confirmed with ManagedApplicationList; and the devices'
//! reports, which arrive through the webhook.

use allot_mdm::plist::Value;
use allot_mdm::webhook::Report;
use allot_mdm::Command;
use allot_store::TargetRow;

use super::{now_ms, status, DeployError, Executor, Step, PAGE};

/// Enrollment ids per command: short URLs, and one bad id cannot hold up many devices.
const IDS_PER_COMMAND: usize = 100;

/// What a device's `State` (or a ManagedApplicationList `Status`) says of an install.
enum Progress {
    Installed,
    Installing(String),
    Failed(String),
}

fn progress(state: Option<&str>, rejection: Option<&str>) -> Progress {
    if let Some(r) = rejection {
        return Progress::Failed(format!("the device rejected the install ({r})"));
    }
    match state {
        None | Some("Managed") | Some("Installed") => Progress::Installed,
        Some(s @ ("UserRejected" | "ManagementRejected" | "UpdateRejected" | "Failed")) => {
            Progress::Failed(format!("the install ended in state {s}"))
        }
        Some("UserInstalledApp") => {
            Progress::Failed("the user installed the app themselves, so it is not managed".into())
        }
        Some("ManagedButUninstalled") => {
            Progress::Failed("the app is managed but was removed from the device".into())
        }
        Some(s) => Progress::Installing(s.to_owned()),
    }
}

/// Whether an install report says the app is on the device (or on its way).
fn reports_installed(report_status: &str, report: Option<&Report>) -> bool {
    report_status == "Acknowledged"
        && report
            .and_then(|r| r.get("ManagedApplicationList"))
            .is_none()
        && text(report, "State").is_some()
        && matches!(
            progress(text(report, "State"), text(report, "RejectionReason")),
            Progress::Installed | Progress::Installing(_)
        )
}

fn text<'a>(report: Option<&'a Report>, key: &str) -> Option<&'a str> {
    report.and_then(|r| r.get(key)).and_then(Value::as_string)
}

impl Executor {
    /// Available: pending targets are offered; their license waits until the user asks.
    pub(crate) async fn offer(&self, step: &Step) -> Result<(), DeployError> {
        self.store()
            .move_targets(
                step.d.id,
                status::PENDING,
                status::AVAILABLE,
                "offered: the license is claimed when the user asks",
                now_ms(),
            )
            .await?;
        Ok(())
    }

    /// The install for a device of this platform (none: a person's devices): a Mac needs
    /// `InstallAsManaged` and takes no `Attributes`.
    fn install_command(&self, step: &Step, platform: Option<&str>) -> Command {
        let mac = platform == Some("macOS");
        if step.facts.is_book {
            Command::InstallMedia {
                itunes_store_id: step.adam,
            }
        } else {
            let o = &step.d.options;
            Command::InstallApplication {
                itunes_store_id: step.adam,
                managed_on_mac: mac,
                management_flags: o.management_flags(),
                // Removable is the device's default: said only when the admin turned it off.
                removable: (!o.removable && !mac).then_some(false),
                take_over: o.take_over,
            }
        }
    }

    /// Licensed targets get the content through the MDM; installs in progress are confirmed.
    pub(crate) async fn install(&self, step: &Step) -> Result<(), DeployError> {
        let store = self.store();
        let mut after = 0;
        loop {
            let page = store
                .member_targets_page(
                    step.d.id,
                    &step.kind_name,
                    &[status::LICENSE_ASSIGNED],
                    after,
                    PAGE,
                )
                .await?;
            let Some(last) = page.last() else { break };
            after = last.target.member_id;
            self.keep_lease(step.d.id).await?;
            // Macs and the rest get different installs.
            let mut sendable = Vec::new();
            let mut macs = Vec::new();
            let mut declared = Vec::new();
            let declares = self.declares(step);
            let mut noted = Vec::new();
            for m in page {
                if !m.active {
                    continue;
                }
                if declares
                    && self.mdm().is_some()
                    && !m.install_ids.is_empty()
                    && Self::device_declares(&m)
                {
                    declared.push(m.target);
                    continue;
                }
                let mut t = m.target;
                let mac = m.platform.as_deref() == Some("macOS");
                let note = match (self.mdm(), m.install_ids.is_empty()) {
                    (None, _) => Some("licensed; no MDM is configured here, so install it from your MDM"),
                    (Some(_), true) if m.serial_number.is_some() => Some("licensed; the device has not enrolled through NanoMDM, so no install can be sent"),
                    (Some(_), true) => Some("licensed; the user has no enrolled device to install on yet"),
                    (Some(_), false) => {
                        t.enrollment_id = Some(m.install_ids.join(","));
                        if mac {
                            macs.push(t);
                        } else {
                            sendable.push(t);
                        }
                        continue;
                    }
                };
                if t.detail.as_deref() != note {
                    t.detail = note.map(str::to_owned);
                    noted.push((t, status::LICENSE_ASSIGNED.to_owned()));
                }
            }
            store
                .update_targets_from(&super::claim::pairs(&noted), now_ms())
                .await?;
            self.send(
                step,
                &self.install_command(step, None),
                sendable,
                status::LICENSE_ASSIGNED,
                status::INSTALL_SENT,
            )
            .await?;
            self.send(
                step,
                &self.install_command(step, Some("macOS")),
                macs,
                status::LICENSE_ASSIGNED,
                status::INSTALL_SENT,
            )
            .await?;
            self.declare(declared, status::LICENSE_ASSIGNED).await?;
        }
        self.confirm(step).await
    }

    /// Targets in `from` (Uninstall: `pending`; members that left, and ending deployments:
    /// `remove_pending`) get the removal command (where they can), or go straight to giving
    /// their license back (a device that is gone, a person without devices).
    pub(crate) async fn remove(&self, step: &Step, from: &str) -> Result<(), DeployError> {
        let store = self.store();
        let command = if step.facts.is_book {
            Some(Command::RemoveMedia {
                itunes_store_id: step.adam,
            })
        } else {
            step.bundle_id
                .clone()
                .map(|identifier| Command::RemoveApplication { identifier })
        };
        let mut after = 0;
        loop {
            let page = store
                .member_targets_page(step.d.id, &step.kind_name, &[from], after, PAGE)
                .await?;
            let Some(last) = page.last() else { break };
            after = last.target.member_id;
            self.keep_lease(step.d.id).await?;
            let mut sendable = Vec::new();
            for m in page {
                let reachable = m.active && !m.install_ids.is_empty() && self.mdm().is_some();
                if reachable && self.withdraw(step, &m, from).await? {
                    continue;
                }
                let mut t = m.target;
                if reachable && command.is_none() {
                    let note =
                        "waiting for the app's bundle id (from Apple's metadata) to remove it";
                    if t.detail.as_deref() != Some(note) {
                        t.detail = Some(note.into());
                        store.update_target_from(&t, &[from], now_ms()).await?;
                    }
                } else if reachable {
                    t.enrollment_id = Some(m.install_ids.join(","));
                    sendable.push(t);
                } else {
                    t.status = status::RELEASE_PENDING.into();
                    t.detail =
                        Some("not removed (no enrolled device to send the removal to)".into());
                    store.update_target_from(&t, &[from], now_ms()).await?;
                }
            }
            if let Some(c) = &command {
                self.send(step, c, sendable, from, status::REMOVE_SENT)
                    .await?;
            }
        }
        Ok(())
    }

    /// Sends one command to the targets' enrollments (a person's target: all their devices), at
    /// most `IDS_PER_COMMAND` enrollments per request; queued targets move `from` → `to`.
    async fn send(
        &self,
        step: &Step,
        command: &Command,
        targets: Vec<TargetRow>,
        from: &str,
        to: &str,
    ) -> Result<(), DeployError> {
        let Some(mdm) = self.mdm() else {
            return Ok(());
        };
        let store = self.store();
        if let Some((error, _)) = self.health.backing_off() {
            // NanoMDM failed just now: nothing is sent until its wait is over.
            return self.note_not_sent(&targets, from, &error).await;
        }
        let mut rest = targets.as_slice();
        while !rest.is_empty() {
            let mut n = 0;
            let mut ids: Vec<String> = Vec::new();
            for t in rest {
                let mine: Vec<&str> = t
                    .enrollment_id
                    .as_deref()
                    .unwrap_or_default()
                    .split(',')
                    .collect();
                if n > 0 && ids.len() + mine.len() > IDS_PER_COMMAND {
                    break;
                }
                ids.extend(mine.into_iter().map(str::to_owned));
                n += 1;
            }
            let (chunk, after) = rest.split_at(n);
            rest = after;
            let uuid = uuid::Uuid::new_v4().to_string();
            match mdm.enqueue(&ids, command, &uuid, true).await {
                Ok(res) => {
                    self.note_pushes(&res).await?;
                    for t in chunk {
                        let mut t = t.clone();
                        let results: Vec<_> = t
                            .enrollment_id
                            .as_deref()
                            .unwrap_or_default()
                            .split(',')
                            .filter_map(|id| res.ids.get(id))
                            .collect();
                        if results.iter().any(|r| r.queued) {
                            t.status = to.into();
                            t.command_uuid = Some(uuid.clone());
                            t.detail = results.iter().find_map(|r| r.push_error.as_deref()).map(|e| {
                                format!(
                                    "queued in NanoMDM, but the push to wake the device failed ({e}); the push is tried again until the device checks in"
                                )
                            });
                        } else {
                            t.detail = Some(format!(
                                "NanoMDM did not queue the {}: {}",
                                command.request_type(),
                                results
                                    .iter()
                                    .find_map(|r| r.command_error.clone())
                                    .unwrap_or_default()
                            ));
                        }
                        store.update_target_from(&t, &[from], now_ms()).await?;
                    }
                }
                Err(e) => {
                    self.mdm_failed(&e);
                    tracing::warn!(deployment = step.d.id, error = %e, "{} not sent; the next step tries again", command.request_type());
                    self.note_not_sent(chunk, from, &e.to_string()).await?;
                }
            }
        }
        Ok(())
    }

    /// Says on the targets why their command was not sent, so the admin sees why nothing moves.
    async fn note_not_sent(
        &self,
        targets: &[TargetRow],
        from: &str,
        error: &str,
    ) -> Result<(), DeployError> {
        let words = format!(
            "not sent: {error}; tried again once NanoMDM has had time to recover (waits double, at most 15 minutes)"
        );
        for t in targets {
            if t.detail.as_deref() != Some(words.as_str()) {
                let mut t = t.clone();
                t.detail = Some(words.clone());
                self.store()
                    .update_target_from(&t, &[from], now_ms())
                    .await?;
            }
        }
        Ok(())
    }

    /// Installs a device reported as still in progress are checked with ManagedApplicationList
    /// once they have had `poll_interval` to finish — one question at a time per target (an
    /// offline device must not pile them up), asked again after a day without an answer (NanoMDM's
    /// webhook may lose one).
    async fn confirm(&self, step: &Step) -> Result<(), DeployError> {
        const UNANSWERED_MS: i64 = 86_400_000;
        let (Some(mdm), Some(bundle)) = (self.mdm_now(), &step.bundle_id) else {
            return Ok(());
        };
        let store = self.store();
        let now = now_ms();
        let answered = store
            .targets_in(
                step.d.id,
                &[status::INSTALLING],
                now - self.poll_interval().as_millis() as i64,
                PAGE,
            )
            .await?
            .into_iter()
            .filter(|t| t.command_uuid.is_none() && !t.declarative);
        let unanswered = store
            .targets_in(step.d.id, &[status::INSTALLING], now - UNANSWERED_MS, PAGE)
            .await?
            .into_iter()
            .filter(|t| t.command_uuid.is_some());
        for t in answered.chain(unanswered) {
            let ids: Vec<String> = t
                .enrollment_id
                .as_deref()
                .unwrap_or_default()
                .split(',')
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect();
            if ids.is_empty() {
                continue;
            }
            let uuid = uuid::Uuid::new_v4().to_string();
            let command = Command::ManagedApplicationList {
                identifiers: vec![bundle.clone()],
            };
            match mdm.enqueue(&ids, &command, &uuid, true).await {
                Ok(res) => {
                    self.note_pushes(&res).await?;
                    if res.ids.values().any(|r| r.queued) {
                        let mut next = t.clone();
                        next.command_uuid = Some(uuid);
                        store
                            .update_target_from(&next, &[status::INSTALLING], now_ms())
                            .await?;
                    }
                }
                Err(e) => {
                    self.mdm_failed(&e);
                    break;
                }
            }
        }
        Ok(())
    }

    /// A device's report on a command (from the webhook). Returns how many targets moved.
    pub async fn command_result(
        &self,
        enrollment_id: &str,
        command_uuid: &str,
        report_status: &str,
        report: Option<&Report>,
    ) -> Result<usize, DeployError> {
        if let Some(moved) = self
            .app_list_report(enrollment_id, command_uuid, report_status, report)
            .await?
        {
            return Ok(moved);
        }
        let store = self.store();
        let mut changed = 0;
        for t in store.targets_by_command(command_uuid).await? {
            let mine = t
                .enrollment_id
                .as_deref()
                .unwrap_or_default()
                .split(',')
                .any(|id| id == enrollment_id);
            if !mine || report_status == "NotNow" || report_status == "Idle" {
                continue;
            }
            let read_as = t.status.clone();
            let (deployment, member) = (t.deployment_id, t.member_id);
            let Some(next) = self.after_report(t, report_status, report).await? else {
                // A report for a command whose target has moved on (NanoMDM can hand an
                // answered command out again): nothing to change, but not silently.
                tracing::info!(
                    deployment,
                    member,
                    command = command_uuid,
                    status = report_status,
                    target = %read_as,
                    "late report for a finished command: the target stays as it is"
                );
                continue;
            };
            if store
                .update_target_from(&next, &[&read_as], now_ms())
                .await?
            {
                // The device said so: its report confirms the new status.
                store
                    .confirm_targets(next.deployment_id, &[next.member_id], now_ms())
                    .await?;
                changed += 1;
            }
        }
        if changed == 0 && reports_installed(report_status, report) {
            // An install landed that no target was waiting for (NanoMDM handed an old command out
            // again after the intent became an Uninstall, or the target was superseded or
            // ended): the device is asked for its apps at once, and the intents in force
            // reconcile what it says.
            store.app_list_due_now(enrollment_id).await?;
            self.wake();
        }
        Ok(changed)
    }

    /// The target's next state after a device's report, if it changes.
    async fn after_report(
        &self,
        mut t: TargetRow,
        report_status: &str,
        report: Option<&Report>,
    ) -> Result<Option<TargetRow>, DeployError> {
        let failed = report_status == "Error" || report_status == "CommandFormatError";
        let words = || allot_mdm::webhook::error_words(report_status, report);
        match t.status.as_str() {
            status::INSTALL_SENT | status::INSTALLING => {
                let outcome = if failed {
                    Progress::Failed(words())
                } else if let Some(list) = report
                    .and_then(|r| r.get("ManagedApplicationList"))
                    .and_then(Value::as_dictionary)
                {
                    let bundle = self.bundle_of(&t).await?;
                    match bundle
                        .as_deref()
                        .and_then(|b| list.get(b))
                        .and_then(Value::as_dictionary)
                    {
                        Some(entry) => {
                            progress(entry.get("Status").and_then(Value::as_string), None)
                        }
                        None => Progress::Failed(
                            "the app is not among the device's managed apps".into(),
                        ),
                    }
                } else {
                    progress(text(report, "State"), text(report, "RejectionReason"))
                };
                match outcome {
                    Progress::Installed => {
                        t.status = status::INSTALLED.into();
                        t.detail = None;
                    }
                    Progress::Installing(state) => {
                        t.status = status::INSTALLING.into();
                        t.detail = Some(format!("the device is installing ({state})"));
                        // Answered: the next confirmation may be asked for.
                        t.command_uuid = None;
                    }
                    Progress::Failed(why) if t.claimed => {
                        // Never leak: the license this deployment claimed goes back.
                        t.status = status::RELEASE_PENDING.into();
                        t.detail = Some(format!("install failed: {why}"));
                    }
                    Progress::Failed(why) => {
                        t.status = status::FAILED.into();
                        t.detail = Some(format!("install failed: {why}"));
                    }
                }
            }
            // A late success for an install that had failed (and given its license back): the app
            // is on the device after all, so the target is licensed again rather than left
            // installed with no license tracked.
            status::FAILED if !failed && self.wants_installed(&t).await? => {
                let installed = report
                    .and_then(|r| r.get("ManagedApplicationList"))
                    .is_none()
                    && matches!(
                        progress(text(report, "State"), text(report, "RejectionReason")),
                        Progress::Installed | Progress::Installing(_)
                    );
                if !installed {
                    return Ok(None);
                }
                t.status = status::PENDING.into();
                t.command_uuid = None;
                t.detail = Some(
                    "the device installed it after all (a late report for an install that had failed); licensing it again"
                        .into(),
                );
            }
            status::REMOVE_SENT if failed => {
                t.status = status::FAILED.into();
                t.detail = Some(format!("the device could not remove it: {}", words()));
            }
            status::REMOVE_SENT => {
                t.status = status::RELEASE_PENDING.into();
                t.detail = Some("removed from the device".into());
            }
            status::INVITATION_PENDING if failed => {
                t.detail = Some(format!(
                    "the device could not show the invitation ({}); send the user the invitation link",
                    words()
                ));
            }
            status::INVITATION_PENDING => {
                t.detail = Some(
                    "invitation shown on the user's device; waiting for them to accept".into(),
                );
            }
            _ => return Ok(None),
        }
        Ok(Some(t))
    }

    /// Whether the target's deployment installs (Required or Available, and in force).
    async fn wants_installed(&self, t: &TargetRow) -> Result<bool, DeployError> {
        Ok(self
            .store()
            .deployment(t.deployment_id)
            .await?
            .is_some_and(|d| {
                d.ending.is_none() && matches!(d.action.as_str(), "required" | "available")
            }))
    }

    async fn bundle_of(&self, t: &TargetRow) -> Result<Option<String>, DeployError> {
        let Some(d) = self.store().deployment(t.deployment_id).await? else {
            return Ok(None);
        };
        Ok(self
            .store()
            .metadata(&d.adam_id)
            .await?
            .and_then(|m| m.bundle_id))
    }
}
