//! The MDM connector's health as Allot sees it: the last answer NanoMDM gave (or the error), how
//! many calls in a row failed — after which Allot leaves NanoMDM alone for a doubling wait
//! (`next_attempt_at`) rather than hammering a server that is down or refusing its key — and
//! pushes that did not reach their devices, retried with doubling waits (an iOS device checks in
//! only when pushed), at most `MAX_PUSH_ATTEMPTS` times, until the device checks in.

use std::sync::Mutex;
use std::time::Duration;

use allot_mdm::{Enqueued, MdmError};

use super::{now_ms, DeployError, Executor};

/// Pushes retried per device before Allot gives up (waits of 1, 2, 4 … 64 × the backoff).
pub const MAX_PUSH_ATTEMPTS: i64 = 8;
/// Enrollment ids per push request.
const IDS_PER_PUSH: usize = 100;
/// The longest wait between attempts while NanoMDM keeps failing.
const MAX_MDM_BACKOFF_MS: i64 = 15 * 60 * 1000;

/// The connector's last outcome.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MdmHealth {
    /// Targets whose command was sent and not answered yet.
    pub commands_waiting: i64,
    /// When NanoMDM's webhook last reached this server.
    pub last_webhook_at: Option<i64>,
    pub last_success_at: Option<i64>,
    pub last_error: Option<String>,
    pub last_error_at: Option<i64>,
    pub consecutive_failures: u64,
    /// While NanoMDM fails: Allot sends nothing to it before this time (waits doubling from the
    /// first backoff up to 15 minutes), then tries again.
    pub next_attempt_at: Option<i64>,
}

#[derive(Debug, Default)]
pub(crate) struct HealthCell(Mutex<MdmHealth>);

impl HealthCell {
    pub(crate) fn ok(&self) {
        let mut h = self.0.lock().expect("health lock");
        h.last_success_at = Some(now_ms());
        h.consecutive_failures = 0;
        h.next_attempt_at = None;
    }

    /// A call failed: the next one waits `first × 2^(failures − 1)`, at most 15 minutes.
    pub(crate) fn failed(&self, e: &MdmError, first: Duration) {
        let mut h = self.0.lock().expect("health lock");
        let now = now_ms();
        h.last_error = Some(e.to_string());
        h.last_error_at = Some(now);
        h.consecutive_failures += 1;
        let doublings = h.consecutive_failures.saturating_sub(1).min(20) as u32;
        let wait = (first.as_millis() as i64)
            .saturating_mul(1 << doublings)
            .min(MAX_MDM_BACKOFF_MS);
        h.next_attempt_at = Some(now + wait);
    }

    /// While backing off: the error words and when Allot tries again.
    pub(crate) fn backing_off(&self) -> Option<(String, i64)> {
        let h = self.0.lock().expect("health lock");
        match (h.next_attempt_at, &h.last_error) {
            (Some(at), Some(e)) if at > now_ms() => Some((e.clone(), at)),
            _ => None,
        }
    }

    pub(crate) fn get(&self) -> MdmHealth {
        self.0.lock().expect("health lock").clone()
    }

    pub(crate) fn webhook(&self) {
        self.0.lock().expect("health lock").last_webhook_at = Some(now_ms());
    }

    pub(crate) fn waiting(&self, n: i64) {
        self.0.lock().expect("health lock").commands_waiting = n;
    }
}

impl Executor {
    /// The MDM connector's health (none: no MDM configured).
    pub fn mdm_health(&self) -> Option<MdmHealth> {
        self.mdm().map(|_| self.health.get())
    }

    /// NanoMDM's push certificate for the topic devices enroll with (none: no MDM configured).
    pub async fn push_cert(&self, topic: &str) -> Option<Result<allot_mdm::PushCert, MdmError>> {
        Some(self.mdm()?.push_cert(topic).await)
    }

    /// A call to NanoMDM failed: recorded, and NanoMDM is left alone for a while.
    pub(crate) fn mdm_failed(&self, e: &MdmError) {
        self.health.failed(e, self.mdm_backoff);
    }

    /// NanoMDM, unless Allot is waiting after its failures (then nothing is sent this pass).
    pub(crate) fn mdm_now(&self) -> Option<&allot_mdm::NanoMdm> {
        self.mdm().filter(|_| self.health.backing_off().is_none())
    }

    /// NanoMDM's webhook reached this server.
    pub fn webhook_received(&self) {
        self.health.webhook();
    }

    /// Commands unanswered for a day say why on their targets; the count goes to the status.
    pub(crate) async fn note_waiting(&self) -> Result<(), DeployError> {
        if self.mdm().is_none() {
            return Ok(());
        }
        let n = self
            .store()
            .note_waiting_commands(now_ms() - 86_400_000)
            .await?;
        self.health.waiting(n);
        Ok(())
    }

    /// What an enqueue said of the pushes: failed ones are retried later, delivered ones
    /// cleared.
    pub(crate) async fn note_pushes(&self, res: &Enqueued) -> Result<(), DeployError> {
        self.health.ok();
        let failed: Vec<(String, String)> = res
            .ids
            .iter()
            .filter(|(_, r)| r.queued)
            .filter_map(|(id, r)| r.push_error.clone().map(|e| (id.clone(), e)))
            .collect();
        if failed.is_empty() {
            return Ok(());
        }
        self.store()
            .record_pushes(&failed, &[], self.push_backoff_ms(), now_ms())
            .await?;
        Ok(())
    }

    fn push_backoff_ms(&self) -> i64 {
        self.push_backoff.as_millis() as i64
    }

    /// Pushes due again go out through NanoMDM's `/push`, a batch at a time.
    pub(crate) async fn retry_pushes(&self) -> Result<(), DeployError> {
        let Some(mdm) = self.mdm_now() else {
            return Ok(());
        };
        let due = self
            .store()
            .pushes_due(now_ms(), MAX_PUSH_ATTEMPTS, 500)
            .await?;
        for chunk in due.chunks(IDS_PER_PUSH) {
            match mdm.push(chunk).await {
                Ok(results) => {
                    self.health.ok();
                    let mut failed = Vec::new();
                    let mut delivered = Vec::new();
                    for (id, err) in results {
                        match err {
                            Some(e) => failed.push((id, e)),
                            None => delivered.push(id),
                        }
                    }
                    self.store()
                        .record_pushes(&failed, &delivered, self.push_backoff_ms(), now_ms())
                        .await?;
                }
                Err(e) => {
                    self.mdm_failed(&e);
                    tracing::warn!(error = %e, "push retry not sent; the next pass tries again");
                    break;
                }
            }
        }
        Ok(())
    }

    /// The first wait before a failed push is tried again (default a minute; then doubling).
    pub fn with_push_backoff(mut self, first: Duration) -> Self {
        self.push_backoff = first;
        self
    }
}
