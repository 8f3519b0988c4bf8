//! Alerts and outgoing webhooks (#13): what needs an operator is raised as an alert once per
//! episode (`detect`), written with its deliveries in one transaction, and delivered to the
//! endpoints that want it (`outbox`), signed and retried for a day.

pub mod detect;
pub mod outbox;

use std::sync::Arc;
use std::time::Duration;

use allot_store::Store;

/// Every event an endpoint can ask for (`test` is sent only by "send test event").
pub const EVENTS: [&str; 10] = [
    "token.expiring",
    "token.expired",
    "token.revoked",
    "token.claimed",
    "sync.failing",
    "sync.recovered",
    "licenses.low",
    "deployment.finished",
    "ledger.drift",
    "mdm.failing",
];

/// The alerts service: checks and deliveries, woken when something is raised.
#[derive(Clone)]
pub struct Alerts {
    store: Store,
    outbox: Arc<outbox::Outbox>,
    wake: Arc<tokio::sync::Notify>,
    /// `licenses.low` at or below this many free licenses.
    pub low_threshold: i64,
}

impl Alerts {
    pub fn new(store: Store, outbox: outbox::Outbox, low_threshold: i64) -> Self {
        Self {
            store,
            outbox: Arc::new(outbox),
            wake: Arc::new(tokio::sync::Notify::new()),
            low_threshold,
        }
    }

    /// Delivers what is due now (and what a raise just queued).
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    /// Runs the checks every `check_every` and the deliveries every few seconds (at once when
    /// woken), until the process ends.
    pub fn start(
        &self,
        executor: allot_deploy::Executor,
        check_every: Duration,
    ) -> tokio::task::JoinHandle<()> {
        let me = self.clone();
        tokio::spawn(async move {
            let mut last_check: Option<tokio::time::Instant> = None;
            // The ledger's three queries cost more: every tenth check.
            let mut checks = 0_u64;
            loop {
                if last_check.is_none_or(|t| t.elapsed() >= check_every) {
                    last_check = Some(tokio::time::Instant::now());
                    let with_ledger = checks.is_multiple_of(10);
                    checks += 1;
                    match detect::check(
                        &me.store,
                        executor.mdm_health(),
                        me.low_threshold,
                        with_ledger,
                        allot_sync::now_ms(),
                    )
                    .await
                    {
                        Ok(_) => {}
                        Err(e) => tracing::warn!(error = %e, "checking for alerts failed"),
                    }
                }
                if let Err(e) = me.outbox.deliver_due(allot_sync::now_ms()).await {
                    tracing::warn!(error = %e, "delivering webhooks failed");
                }
                tokio::select! {
                    _ = tokio::time::sleep(check_every.min(Duration::from_secs(2))) => {}
                    _ = me.wake.notified() => {}
                }
            }
        })
    }
}
