//! Declarative app management: on devices that support it (iOS and iPadOS 17.2+, macOS 26+) a
//! deployment that asks for it (or `ALLOT_DECLARATIVE`) declares its app
//! (`com.apple.configuration.app.managed`) instead of sending InstallApplication — never both for
//! one app on one device. The declarations a device gets are its effective intents
//! (`Store::declared_apps`); a device whose declarations changed is told with the
//! `DeclarativeManagement` command; its status reports (`app.managed.list`) become the targets'
//! observed state, as command reports do.

use std::sync::atomic::Ordering;

use allot_domain::CollectionKind;
use allot_mdm::declarative::{reason_words, AppDeclaration, AppStatus, Declarations};
use allot_mdm::Command;
use allot_store::{DeclaredApp, DeviceTarget, DmApp, MemberTarget, TargetRow};

use super::{now_ms, status, DeployError, Executor, Step, PAGE};
use crate::Action;

/// Devices told of new declarations per pass.
const PROMPTS_PER_PASS: i64 = 500;

/// The declarations a device gets for its declared apps.
pub fn declarations_for(apps: &[DeclaredApp]) -> Declarations {
    let apps: Vec<AppDeclaration> = apps
        .iter()
        .map(|a| AppDeclaration {
            adam_id: a.adam_id.clone(),
            // Available targets are declared once the user asked (their license claimed).
            required: true,
            device_license: a.license.as_deref() != Some("user"),
            auto_update: a.options.auto_update,
            include_in_backup: !a.options.prevent_backup,
        })
        .collect();
    Declarations::for_apps(&apps)
}

/// Where an app stands by the device's word.
enum Observed {
    Installed,
    Installing(String),
    Failed(String),
    /// Not on the device (removed, or required but uninstalled).
    Absent,
}

fn observed(app: Option<&AppStatus>) -> Observed {
    let Some(a) = app else {
        return Observed::Absent;
    };
    if a.removed {
        return Observed::Absent;
    }
    match a.state.as_deref() {
        Some("managed") => Observed::Installed,
        Some("failed") => Observed::Failed(if a.reasons.is_empty() {
            "the device reported the install failed".into()
        } else {
            a.reasons
                .iter()
                .map(|(code, d)| reason_words(code, d.as_deref()))
                .collect::<Vec<_>>()
                .join("; ")
        }),
        Some("managed-but-uninstalled" | "not-present" | "optional") | None => Observed::Absent,
        Some(s) => Observed::Installing(s.to_owned()),
    }
}

impl Executor {
    /// Whether this step's installs are declared on the devices that support it.
    pub(crate) fn declares(&self, step: &Step) -> bool {
        (step.d.options.declarative || self.declarative_all)
            && step.kind == CollectionKind::Devices
            && !step.facts.is_book
            && matches!(step.action, Action::Required | Action::Available)
    }

    /// Whether a member's device takes declarations.
    pub(crate) fn device_declares(m: &MemberTarget) -> bool {
        allot_domain::os::supports_declarative_apps(
            m.platform.as_deref().unwrap_or_default(),
            m.os_version.as_deref(),
        )
    }

    /// Licensed targets on declarative devices: the app is declared (the target waits for the
    /// device's status report) and the devices are told.
    pub(crate) async fn declare(
        &self,
        targets: Vec<TargetRow>,
        from: &str,
    ) -> Result<(), DeployError> {
        let mut devices = Vec::new();
        for mut t in targets {
            t.status = status::INSTALL_SENT.into();
            t.declarative = true;
            t.command_uuid = None;
            t.detail = Some(
                "declared to the device (declarative app management); waiting for its status report"
                    .into(),
            );
            if self
                .store()
                .update_target_from(&t, &[from], now_ms())
                .await?
            {
                devices.push(t.member_id);
            }
        }
        self.declarations_changed(&devices).await
    }

    /// Installed targets of a declarative deployment whose device now takes declarations (it
    /// updated its OS, or the deployment turned it on) move to a declaration: the device takes
    /// the installed app under it, so it is not removed on the way.
    pub(crate) async fn adopt_installed(&self, step: &Step) -> Result<(), DeployError> {
        if !self.declares(step) {
            return Ok(());
        }
        let store = self.store();
        let mut after = 0;
        let mut devices = Vec::new();
        loop {
            let page = store
                .member_targets_page(
                    step.d.id,
                    &step.kind_name,
                    &[status::INSTALLED],
                    after,
                    PAGE,
                )
                .await?;
            let Some(last) = page.last() else { break };
            after = last.target.member_id;
            for m in page {
                if m.target.declarative || !m.active || !Self::device_declares(&m) {
                    continue;
                }
                let mut t = m.target;
                t.declarative = true;
                t.detail = Some(
                    "now managed by a declaration (the installed app is taken over, not reinstalled)"
                        .into(),
                );
                if store
                    .update_target_from(&t, &[status::INSTALLED], now_ms())
                    .await?
                {
                    devices.push(t.member_id);
                }
            }
        }
        self.declarations_changed(&devices).await
    }

    /// A removal on a device whose app a declaration manages: the declaration is withdrawn
    /// (Apple refuses RemoveApplication for it) and the target waits for the device to report
    /// the app gone. False if the app is not under a declaration there.
    pub(crate) async fn withdraw(
        &self,
        step: &Step,
        m: &MemberTarget,
        from: &str,
    ) -> Result<bool, DeployError> {
        if step.kind != CollectionKind::Devices {
            return Ok(false);
        }
        let declared_here = m.target.declarative
            || match &step.bundle_id {
                Some(bundle) => self
                    .store()
                    .dm_apps(m.target.member_id)
                    .await?
                    .iter()
                    .any(|a| &a.bundle_id == bundle),
                None => false,
            };
        if !declared_here {
            return Ok(false);
        }
        let mut t = m.target.clone();
        t.status = status::REMOVE_SENT.into();
        t.declarative = true;
        t.command_uuid = None;
        t.detail =
            Some("declaration withdrawn; waiting for the device to report the app removed".into());
        if !self
            .store()
            .update_target_from(&t, &[from], now_ms())
            .await?
        {
            return Ok(true);
        }
        // The device may have synced and reported the app gone while this target still waited
        // its turn (another change had withdrawn the declaration): that report is not sent
        // again, so what it said is read back now.
        let gone = match &step.bundle_id {
            Some(bundle) => !self
                .store()
                .dm_apps(t.member_id)
                .await?
                .iter()
                .any(|a| &a.bundle_id == bundle),
            None => false,
        };
        if gone {
            let mut settled = t.clone();
            settled.status = status::RELEASE_PENDING.into();
            settled.detail = Some("removed from the device (its declaration withdrawn)".into());
            self.store()
                .update_target_from(&settled, &[status::REMOVE_SENT], now_ms())
                .await?;
        }
        self.declarations_changed(&[t.member_id]).await?;
        Ok(true)
    }

    /// These devices' declarations may have changed: marked (so a crash loses nothing), then
    /// told at once.
    async fn declarations_changed(&self, devices: &[i64]) -> Result<(), DeployError> {
        if devices.is_empty() {
            return Ok(());
        }
        self.store()
            .mark_declarations_dirty(devices, now_ms())
            .await?;
        self.tell_declarations().await
    }

    /// Devices whose declarations may have changed are told with `DeclarativeManagement`
    /// carrying the new tokens, when the token moved; a device whose token did not move is only
    /// marked clean.
    pub(crate) async fn tell_declarations(&self) -> Result<(), DeployError> {
        let store = self.store();
        // Targets changed by set-based statements since the last sweep (a second of slack for
        // clocks between instances); the first sweep of a process looks at everything.
        let now = now_ms();
        let since = self.declarations_swept.load(Ordering::Relaxed);
        store
            .mark_declarations_dirty_since((since - 1000).max(0), now)
            .await?;
        self.declarations_swept.store(now, Ordering::Relaxed);
        for (device, enrollment, told, marked_at) in
            store.declarations_dirty(PROMPTS_PER_PASS).await?
        {
            let declarations = declarations_for(&store.declared_apps(device).await?);
            if told.as_deref() == Some(declarations.token.as_str()) {
                store
                    .declarations_told(device, &declarations.token, marked_at)
                    .await?;
                continue;
            }
            let Some(mdm) = self.mdm_now() else {
                return Ok(());
            };
            let data = declarations
                .tokens_json(&chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
                .to_string()
                .into_bytes();
            let uuid = uuid::Uuid::new_v4().to_string();
            match mdm
                .enqueue(
                    std::slice::from_ref(&enrollment),
                    &Command::DeclarativeManagement { data },
                    &uuid,
                    true,
                )
                .await
            {
                Ok(res) => {
                    self.note_pushes(&res).await?;
                    if res.ids.values().any(|r| r.queued) {
                        store
                            .declarations_told(device, &declarations.token, marked_at)
                            .await?;
                    }
                }
                Err(e) => {
                    self.mdm_failed(&e);
                    tracing::warn!(error = %e, "DeclarativeManagement not sent; the next pass tries again");
                    return Ok(());
                }
            }
        }
        Ok(())
    }

    /// A device's status report on its declared apps: kept, then its declarative targets moved
    /// to what it says. Returns how many moved (none: the device is not known).
    pub async fn declarative_status(
        &self,
        enrollment_id: &str,
        apps: &[AppStatus],
    ) -> Result<usize, DeployError> {
        let store = self.store();
        let Some(device) = store.device_by_enrollment(enrollment_id).await? else {
            return Ok(0);
        };
        let now = now_ms();
        let rows: Vec<DmApp> = apps
            .iter()
            .map(|a| DmApp {
                bundle_id: a.identifier.clone(),
                declaration_identifier: a.declaration_identifier.clone(),
                state: a.state.clone().unwrap_or_else(|| "unknown".into()),
                reasons: (!a.reasons.is_empty()).then(|| {
                    a.reasons
                        .iter()
                        .map(|(c, d)| reason_words(c, d.as_deref()))
                        .collect::<Vec<_>>()
                        .join("; ")
                }),
                external_version_id: a.external_version_id,
                removed: a.removed,
                reported_at: now,
            })
            .collect();
        store.record_dm_apps(device.id, &rows, now).await?;
        let mut moved = 0;
        let mut changed_set = false;
        for dt in store.declarative_targets_on_device(device.id).await? {
            let Some(bundle) = dt.bundle_id.as_deref() else {
                continue;
            };
            // Reports carry changes: an app the report does not name stays as it was.
            let Some(app) = apps.iter().find(|a| a.identifier == bundle) else {
                continue;
            };
            if let Some((next, leaves_set)) = self.after_status(&dt, observed(Some(app))) {
                if store
                    .update_target_from(&next, &[&dt.target.status], now)
                    .await?
                {
                    store
                        .confirm_targets(next.deployment_id, &[next.member_id], now)
                        .await?;
                    moved += 1;
                    changed_set |= leaves_set;
                }
            } else if dt.target.status == status::INSTALLED {
                store
                    .confirm_targets(dt.target.deployment_id, &[dt.target.member_id], now)
                    .await?;
            }
        }
        if changed_set {
            self.declarations_changed(&[device.id]).await?;
        }
        Ok(moved)
    }

    /// A declarative target's next state after what the device said (and whether that takes
    /// the app out of the device's declarations).
    fn after_status(&self, dt: &DeviceTarget, seen: Observed) -> Option<(TargetRow, bool)> {
        let mut t = dt.target.clone();
        match (t.status.as_str(), seen) {
            (status::INSTALL_SENT | status::INSTALLING, Observed::Installed) => {
                t.status = status::INSTALLED.into();
                t.detail = None;
            }
            (status::INSTALL_SENT | status::INSTALLING, Observed::Installing(state)) => {
                if t.status == status::INSTALLING
                    && t.detail.as_deref().is_some_and(|d| d.contains(&state))
                {
                    return None;
                }
                t.status = status::INSTALLING.into();
                t.detail = Some(format!("the device is installing ({state})"));
            }
            (
                status::INSTALL_SENT | status::INSTALLING | status::INSTALLED,
                Observed::Failed(why),
            ) => {
                // Reconciled as a failed command: the license this deployment claimed goes back.
                t.status = if t.claimed {
                    status::RELEASE_PENDING
                } else {
                    status::FAILED
                }
                .into();
                t.detail = Some(format!("install failed: {why}"));
                return Some((t, true));
            }
            (status::INSTALLED, Observed::Absent) => {
                // Declared again at the next pass (the intent still wants it there).
                t.status = status::LICENSE_ASSIGNED.into();
                t.detail =
                    Some("the device reports the app not installed; declaring it again".into());
                return Some((t, true));
            }
            (status::REMOVE_SENT, Observed::Absent) => {
                t.status = status::RELEASE_PENDING.into();
                t.detail = Some("removed from the device (its declaration withdrawn)".into());
            }
            _ => return None,
        }
        Some((t, false))
    }
}
