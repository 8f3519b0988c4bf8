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

/// `ALLOT_ALERT_EMAIL`'s patterns as one `mailto:` endpoint per address with the events it gets
/// (`*`, or the names its patterns match).
pub fn email_endpoints(config: &[(String, Vec<String>)]) -> Vec<(String, String)> {
    let mut by_address: Vec<(String, Vec<&str>)> = Vec::new();
    for (pattern, addresses) in config {
        let events: Vec<&str> = if pattern == "*" {
            vec!["*"]
        } else if let Some(prefix) = pattern.strip_suffix('*') {
            EVENTS
                .iter()
                .copied()
                .filter(|e| e.starts_with(prefix))
                .collect()
        } else {
            EVENTS.iter().copied().filter(|e| e == pattern).collect()
        };
        for a in addresses {
            let url = format!("mailto:{}", a.to_lowercase());
            let i = match by_address.iter().position(|(u, _)| *u == url) {
                Some(i) => i,
                None => {
                    by_address.push((url, Vec::new()));
                    by_address.len() - 1
                }
            };
            for e in &events {
                if !by_address[i].1.contains(e) {
                    by_address[i].1.push(e);
                }
            }
        }
    }
    by_address
        .into_iter()
        .map(|(u, events)| {
            let events = if events.contains(&"*") {
                "*".to_owned()
            } else {
                events.join(",")
            };
            (u, events)
        })
        .collect()
}

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

#[cfg(test)]
mod tests {
    #[test]
    fn e_mail_patterns_become_one_endpoint_per_address() {
        let config = crate::config::parse_alert_email(
            "token.*=IT@x.example; licenses.low=buyer@x.example,it@x.example; *=ops@x.example",
        )
        .unwrap();
        let e = super::email_endpoints(&config);
        assert_eq!(
            e,
            vec![
                (
                    "mailto:it@x.example".to_string(),
                    "token.expiring,token.expired,token.revoked,token.claimed,licenses.low"
                        .to_string()
                ),
                (
                    "mailto:buyer@x.example".to_string(),
                    "licenses.low".to_string()
                ),
                ("mailto:ops@x.example".to_string(), "*".to_string()),
            ]
        );
        assert!(crate::config::parse_alert_email("tokens=it@x.example")
            .unwrap_err()
            .contains("not an event"));
        assert!(crate::config::parse_alert_email("*=not-an-address")
            .unwrap_err()
            .contains("not an e-mail"));
        assert!(crate::config::parse_alert_email("it@x.example")
            .unwrap_err()
            .contains("EVENT=ADDRESS"));
    }
}
