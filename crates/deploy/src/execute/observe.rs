//! Statuses observed, not remembered: every enrolled device is asked for its managed apps
//! (ManagedApplicationList) once per interval, paced (a bounded number of devices per pass, at
//! most one question outstanding per device), and what it says is kept with its time and
//! compared with what the deployments in force want there: an installed app the device no longer
//! has is installed again, one older than the store's is updated (when the deployment updates
//! automatically), and one an Uninstall removed that came back is removed again.

use std::collections::HashMap;
use std::time::Duration;

use allot_mdm::plist::Value;
use allot_mdm::webhook::Report;
use allot_mdm::Command;
use allot_store::{DeviceApp, DeviceTarget};

use super::{now_ms, status, DeployError, Executor};

/// Devices asked per pass: pacing toward NanoMDM and the devices' check-ins.
const APP_LISTS_PER_PASS: i64 = 500;
/// Enrollment ids per question.
const IDS_PER_COMMAND: usize = 100;
/// A question unanswered this long is taken for lost (NanoMDM's webhook may drop an answer).
const LOST_AFTER: Duration = Duration::from_secs(86_400);

/// States in which the app is on the device (or on its way), as far as a reinstall is concerned.
fn present(status: &str) -> bool {
    !matches!(
        status,
        "ManagedButUninstalled" | "UserRejected" | "ManagementRejected" | "Failed" | "Unknown"
    )
}

/// The periodic questions, each with its own record of what is outstanding.
#[derive(Clone, Copy)]
enum Question {
    AppList,
    DeviceInformation,
}

/// The facts Allot asks a device for: enough to learn it (serial number) and to check what it
/// can run (model, OS version).
fn device_information() -> Command {
    Command::DeviceInformation {
        queries: [
            "SerialNumber",
            "ProductName",
            "Model",
            "DeviceName",
            "OSVersion",
        ]
        .map(str::to_owned)
        .to_vec(),
    }
}

impl Executor {
    /// Sends the periodic ManagedApplicationList to the devices that are due.
    pub(crate) async fn ask_app_lists(&self) -> Result<usize, DeployError> {
        let now = now_ms();
        let due = self
            .store()
            .devices_due_for_app_list(
                now - self.app_list_interval.as_millis() as i64,
                now - LOST_AFTER.as_millis() as i64,
                APP_LISTS_PER_PASS,
            )
            .await?;
        let command = Command::ManagedApplicationList {
            identifiers: Vec::new(),
        };
        self.ask_due(&due, &command, Question::AppList).await
    }

    /// Asks the devices due a refresh for their DeviceInformation (OS version, model): the
    /// compatibility and declarative-management checks read them. Paced like the app lists.
    pub(crate) async fn ask_device_facts(&self) -> Result<usize, DeployError> {
        let now = now_ms();
        let due = self
            .store()
            .devices_due_for_info(
                now - self.device_info_interval.as_millis() as i64,
                now - LOST_AFTER.as_millis() as i64,
                APP_LISTS_PER_PASS,
            )
            .await?;
        self.ask_due(&due, &device_information(), Question::DeviceInformation)
            .await
    }

    /// Sends a periodic question to due devices (id, enrollment id), ≤ 100 per command, and
    /// records it as outstanding; ids NanoMDM did not queue are asked again after LOST_AFTER,
    /// not every pass. Stops at NanoMDM's first error (the next pass tries again).
    async fn ask_due(
        &self,
        due: &[(i64, String)],
        command: &Command,
        question: Question,
    ) -> Result<usize, DeployError> {
        let Some(mdm) = self.mdm_now() else {
            return Ok(0);
        };
        let mut asked = 0;
        for chunk in due.chunks(IDS_PER_COMMAND) {
            let ids: Vec<String> = chunk.iter().map(|(_, e)| e.clone()).collect();
            let uuid = uuid::Uuid::new_v4().to_string();
            match mdm.enqueue(&ids, command, &uuid, true).await {
                Ok(res) => {
                    self.note_pushes(&res).await?;
                    match question {
                        Question::AppList => {
                            let devices: Vec<i64> = chunk.iter().map(|(d, _)| *d).collect();
                            self.store()
                                .mark_app_list_asked(&devices, &uuid, now_ms())
                                .await?
                        }
                        Question::DeviceInformation => {
                            self.store()
                                .mark_device_queries(&ids, &uuid, now_ms())
                                .await?
                        }
                    }
                    asked += ids.len();
                }
                Err(e) => {
                    self.mdm_failed(&e);
                    tracing::warn!(error = %e, "{} not sent; the next pass tries again", command.request_type());
                    break;
                }
            }
        }
        Ok(asked)
    }

    /// An enrollment Allot does not know (its Authenticate webhook was lost) is asked for its
    /// DeviceInformation, at most once a day; the answer comes back through the webhook. True if
    /// asked now.
    pub async fn ask_device_information(&self, enrollment_id: &str) -> Result<bool, DeployError> {
        let Some(mdm) = self.mdm_now() else {
            return Ok(false);
        };
        let uuid = uuid::Uuid::new_v4().to_string();
        let now = now_ms();
        if !self
            .store()
            .claim_device_query(
                enrollment_id,
                &uuid,
                now,
                now - LOST_AFTER.as_millis() as i64,
            )
            .await?
        {
            return Ok(false);
        }
        match mdm
            .enqueue(
                &[enrollment_id.to_owned()],
                &device_information(),
                &uuid,
                true,
            )
            .await
        {
            Ok(res) => {
                self.note_pushes(&res).await?;
                tracing::info!(
                    enrollment = enrollment_id,
                    "unknown enrollment asked for its DeviceInformation"
                );
                Ok(true)
            }
            Err(e) => {
                self.mdm_failed(&e);
                tracing::warn!(enrollment = enrollment_id, error = %e, "DeviceInformation not sent");
                self.store()
                    .forget_device_query(enrollment_id, &uuid)
                    .await?;
                Ok(false)
            }
        }
    }

    /// A device's answer to the periodic question: kept, then compared with the targets served
    /// on it. Returns how many targets moved; `None` if the command was not a periodic question.
    pub(crate) async fn app_list_report(
        &self,
        enrollment_id: &str,
        command_uuid: &str,
        report_status: &str,
        report: Option<&Report>,
    ) -> Result<Option<usize>, DeployError> {
        let store = self.store();
        let Some(device) = store
            .device_for_app_list(command_uuid, enrollment_id)
            .await?
        else {
            return Ok(None);
        };
        let Some(list) = report
            .and_then(|r| r.get("ManagedApplicationList"))
            .and_then(Value::as_dictionary)
            .filter(|_| report_status == "Acknowledged")
        else {
            // NotNow: asked again at the next check-in; an error: after LOST_AFTER.
            return Ok(Some(0));
        };
        let now = now_ms();
        let apps: Vec<DeviceApp> = list
            .iter()
            .filter_map(|(bundle, entry)| {
                let entry = entry.as_dictionary()?;
                Some(DeviceApp {
                    bundle_id: bundle.clone(),
                    status: entry
                        .get("Status")
                        .and_then(Value::as_string)
                        .unwrap_or("Unknown")
                        .to_owned(),
                    external_version_id: entry
                        .get("ExternalVersionIdentifier")
                        .and_then(Value::as_signed_integer),
                    reported_at: now,
                })
            })
            .collect();
        store.record_device_apps(device, &apps, now).await?;
        let by_bundle: HashMap<&str, &DeviceApp> =
            apps.iter().map(|a| (a.bundle_id.as_str(), a)).collect();
        let mut moved = 0;
        for dt in store.targets_on_device(device).await? {
            if self.reconcile_observed(&dt, &by_bundle, now).await? {
                moved += 1;
            }
        }
        Ok(Some(moved))
    }

    /// One target against what its device said. True if it moved.
    async fn reconcile_observed(
        &self,
        dt: &DeviceTarget,
        apps: &HashMap<&str, &DeviceApp>,
        now: i64,
    ) -> Result<bool, DeployError> {
        let Some(bundle) = dt.bundle_id.as_deref() else {
            return Ok(false);
        };
        if dt.target.declarative {
            // ManagedApplicationList leaves out apps a declaration manages: their status
            // reports speak for them.
            return Ok(false);
        }
        let store = self.store();
        let entry = apps.get(bundle).copied();
        let on_device = entry.is_some_and(|a| present(&a.status));
        let mut t = dt.target.clone();
        let from = t.status.clone();
        match (dt.action.as_str(), from.as_str()) {
            ("required" | "available", status::INSTALLED) if !on_device => {
                t.status = status::LICENSE_ASSIGNED.into();
                t.command_uuid = None;
                t.detail = Some(
                    "the device no longer has the app (its app list said so); installing it again"
                        .into(),
                );
            }
            ("required" | "available", status::INSTALLED)
                // Apple's external version ids grow with each version: a device that reports a
                // newer one than the synced metadata is not sent back.
                if dt.auto_update
                    && matches!((entry.and_then(|a| a.external_version_id), dt.store_version),
                                (Some(has), Some(store)) if has < store) =>
            {
                t.status = status::LICENSE_ASSIGNED.into();
                t.command_uuid = None;
                t.detail = Some(
                    "the device runs an older version than the store's; installing the update"
                        .into(),
                );
            }
            ("required" | "available", status::INSTALLING)
                if entry.is_some_and(|a| a.status == "Managed") =>
            {
                t.status = status::INSTALLED.into();
                t.command_uuid = None;
                t.detail = None;
            }
            ("uninstall", status::UNINSTALLED | status::LICENSE_RECLAIMED) if on_device => {
                t.status = status::PENDING.into();
                t.command_uuid = None;
                t.detail = Some("the app came back on the device; removing it again".into());
            }
            // As wanted: the device's answer confirms it.
            ("required" | "available", status::INSTALLED)
            | ("uninstall", status::UNINSTALLED | status::LICENSE_RECLAIMED) => {
                store
                    .confirm_targets(t.deployment_id, &[t.member_id], now)
                    .await?;
                return Ok(false);
            }
            _ => return Ok(false),
        }
        let moved = store.update_target_from(&t, &[&from], now).await?;
        if moved {
            store
                .confirm_targets(t.deployment_id, &[t.member_id], now)
                .await?;
        }
        Ok(moved)
    }
}
