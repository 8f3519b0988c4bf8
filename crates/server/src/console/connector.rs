//! The MDM connector in words, for the pages that show it (Tokens, beside Apple's connector
//! status, and Devices): NanoMDM's last answer or its failures and when it is tried again, and the
//! devices that could not be pushed.

use crate::console::format;
use crate::AppState;

pub(crate) struct ConnectorLine {
    /// Empty: no MDM configured.
    pub words: String,
    pub failing: bool,
    /// Devices whose last push failed (retried until they check in).
    pub push_total: i64,
    /// Devices whose push failed in the last hour.
    pub push_last_hour: i64,
}

pub(crate) async fn mdm_connector(
    state: &AppState,
) -> Result<ConnectorLine, allot_store::StoreError> {
    let now = allot_sync::now_ms();
    let (_, push_total) = state.store.push_failures(0).await?;
    let push_last_hour = state.store.push_failures_since(now - 3_600_000).await?;
    let (words, failing) = match state.executor.mdm_health() {
        None => (String::new(), false),
        Some(h) if h.consecutive_failures > 0 => (
            format!(
                "NanoMDM is failing: {} ({} calls in a row, the last {}){}",
                h.last_error.clone().unwrap_or_default(),
                h.consecutive_failures,
                h.last_error_at
                    .map(|t| format::ago(t, now))
                    .unwrap_or_default(),
                match h.next_attempt_at {
                    Some(t) if t > now => format!("; tried again {}", format::from_now(t, now)),
                    _ => String::new(),
                }
            ),
            true,
        ),
        Some(h) => (
            match h.last_success_at {
                Some(t) => format!("NanoMDM answered {}", format::ago(t, now)),
                None => "NanoMDM has not been called since this server started".into(),
            },
            false,
        ),
    };
    Ok(ConnectorLine {
        words,
        failing,
        push_total,
        push_last_hour,
    })
}
