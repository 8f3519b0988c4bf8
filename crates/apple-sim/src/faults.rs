//! Faults the control API injects: outages, rate-limit bursts, slow answers, a write between two
//! pages of a walk, failing tasks, dropped or duplicated notifications.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "camelCase", deny_unknown_fields)]
pub enum FaultKind {
    /// HTTP 503, error 9729, with `Retry-After` seconds.
    #[serde(rename_all = "camelCase")]
    Unavailable { retry_after: Option<u64> },
    /// HTTP 429, error 9646, with `Retry-After` seconds.
    #[serde(rename_all = "camelCase")]
    RateLimited { retry_after: Option<u64> },
    /// HTTP 500, error 9603.
    Internal,
    /// HTTP 503, error 9644.
    Maintenance,
    /// HTTP 410, error 9634.
    Gone,
    /// Answer normally, but only after a delay.
    #[serde(rename_all = "camelCase")]
    Slow { delay_ms: u64 },
    /// After serving page `page` of a paginated endpoint, change the location's data (a new
    /// device assignment), so the walk sees a new `versionId` on its next page.
    #[serde(rename_all = "camelCase")]
    WriteAfterPage { page: i32 },
    /// The next asynchronous tasks fail with this error (9603, 9644, …).
    #[serde(rename_all = "camelCase")]
    TaskFailure { error_number: i32 },
    /// The next notifications are never sent.
    DropNotification,
    /// The next notifications are delivered twice (same `notificationId`).
    DuplicateNotification,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Fault {
    #[serde(flatten)]
    pub kind: FaultKind,
    /// How many times it fires (default 1).
    #[serde(default = "one")]
    pub count: u32,
    /// Only for this endpoint (`assets`, `assignments`, `users`, `status`, `assets/associate`,
    /// `client/config`, …); every endpoint when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
}

fn one() -> u32 {
    1
}

#[derive(Debug, Default, Clone, Serialize)]
pub struct FaultQueue {
    pub faults: Vec<Fault>,
}

impl FaultQueue {
    pub fn push(&mut self, f: Fault) {
        if f.count > 0 {
            self.faults.push(f);
        }
    }

    pub fn clear(&mut self) {
        self.faults.clear();
    }

    /// Takes one firing of the first fault that matches.
    fn take(&mut self, mut matches: impl FnMut(&Fault) -> bool) -> Option<FaultKind> {
        let pos = self.faults.iter().position(&mut matches)?;
        let f = &mut self.faults[pos];
        f.count -= 1;
        let kind = f.kind.clone();
        if f.count == 0 {
            self.faults.remove(pos);
        }
        Some(kind)
    }

    fn endpoint_matches(f: &Fault, endpoint: &str) -> bool {
        f.endpoint
            .as_deref()
            .is_none_or(|e| e.trim_matches('/') == endpoint)
    }

    /// A fault that replaces or delays the answer to a request.
    pub fn take_request_fault(&mut self, endpoint: &str) -> Option<FaultKind> {
        self.take(|f| {
            matches!(
                f.kind,
                FaultKind::Unavailable { .. }
                    | FaultKind::RateLimited { .. }
                    | FaultKind::Internal
                    | FaultKind::Maintenance
                    | FaultKind::Gone
                    | FaultKind::Slow { .. }
            ) && Self::endpoint_matches(f, endpoint)
        })
    }

    pub fn take_write_after_page(&mut self, endpoint: &str, page: i32) -> bool {
        self.take(|f| {
            matches!(f.kind, FaultKind::WriteAfterPage { page: p } if p == page)
                && Self::endpoint_matches(f, endpoint)
        })
        .is_some()
    }

    pub fn take_task_failure(&mut self) -> Option<i32> {
        match self.take(|f| matches!(f.kind, FaultKind::TaskFailure { .. }))? {
            FaultKind::TaskFailure { error_number } => Some(error_number),
            _ => None,
        }
    }

    pub fn take_drop(&mut self) -> bool {
        self.take(|f| f.kind == FaultKind::DropNotification)
            .is_some()
    }

    pub fn take_duplicate(&mut self) -> bool {
        self.take(|f| f.kind == FaultKind::DuplicateNotification)
            .is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn faults_fire_count_times_for_their_endpoint_only() {
        let mut q = FaultQueue::default();
        q.push(
            serde_json::from_str(
                r#"{"kind":"unavailable","retryAfter":2,"count":2,"endpoint":"assets"}"#,
            )
            .unwrap(),
        );
        assert_eq!(q.take_request_fault("users"), None);
        assert_eq!(
            q.take_request_fault("assets"),
            Some(FaultKind::Unavailable {
                retry_after: Some(2)
            })
        );
        assert!(q.take_request_fault("assets").is_some());
        assert_eq!(q.take_request_fault("assets"), None);
    }

    #[test]
    fn unknown_fault_kinds_are_rejected() {
        assert!(serde_json::from_str::<Fault>(r#"{"kind":"explode"}"#).is_err());
        assert!(
            serde_json::from_str::<Fault>(r#"{"kind":"unavailable","retryAftr":2}"#).is_err(),
            "a typo is refused"
        );
    }
}
