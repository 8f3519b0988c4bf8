//! The audit log: every change made through the API or the console is recorded — who (the API
//! key's or console account's name, set by the authenticating extractor), when, from which
//! address, the method and path (never a body, so never a secret) and the HTTP status it was
//! answered with. One middleware does it for every route, so no handler can forget.

use std::sync::{Arc, Mutex};

use axum::extract::Request;
use axum::middleware::Next;
use axum::response::Response;

#[derive(Default)]
struct Slot {
    actor: Option<String>,
    /// A POST that only reads (a plan, a preview): not a change.
    read_only: bool,
    /// What a setting was and became, set by the handler that changed it.
    detail: Option<String>,
}

tokio::task_local! {
    static SLOT: Arc<Mutex<Slot>>;
}

/// Who is asking, for the request being served (set by the `Caller` and `Viewer` extractors).
pub(crate) fn set_actor(actor: String) {
    let _ = SLOT.try_with(|s| s.lock().expect("audit slot").actor = Some(actor));
}

/// What the setting this request changes was and became, in words (never a secret).
pub(crate) fn detail(text: String) {
    let _ = SLOT.try_with(|s| s.lock().expect("audit slot").detail = Some(text));
}

/// This request changes nothing (a plan or a preview sent as a form).
pub(crate) fn not_a_change() {
    let _ = SLOT.try_with(|s| s.lock().expect("audit slot").read_only = true);
}

/// Paths that are machines talking (Apple, NanoMDM) or sign-in itself, not changes by people.
fn audited(method: &axum::http::Method, path: &str) -> bool {
    use axum::http::Method;
    matches!(
        *method,
        Method::POST | Method::PUT | Method::PATCH | Method::DELETE
    ) && !path.starts_with("/apple/")
        && !path.starts_with("/mdm/")
        && !matches!(path, "/login" | "/logout")
        && !path.ends_with("/plan")
        && !path.ends_with("/preview")
}

/// Records every authenticated change once it has been answered.
pub(crate) async fn record_changes(
    axum::extract::State(state): axum::extract::State<crate::AppState>,
    address: crate::ClientAddress,
    req: Request,
    next: Next,
) -> Response {
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    if !audited(&method, &path) {
        return next.run(req).await;
    }
    let slot = Arc::new(Mutex::new(Slot::default()));
    let res = SLOT.scope(slot.clone(), next.run(req)).await;
    let (actor, read_only, detail) = {
        let s = slot.lock().expect("audit slot");
        (s.actor.clone(), s.read_only, s.detail.clone())
    };
    // Unauthenticated requests were refused before they changed anything.
    if let (Some(actor), false) = (actor, read_only) {
        let entry = allot_store::AuditEntry {
            at: allot_sync::now_ms(),
            actor,
            address: address.0,
            method: method.to_string(),
            path: path.chars().take(500).collect(),
            status: i64::from(res.status().as_u16()),
            detail: detail.map(|d| d.chars().take(1000).collect()),
        };
        if let Err(e) = state.store.record_audit(&entry).await {
            tracing::warn!(error = %e, "could not record a change in the audit log");
        }
    }
    res
}

#[cfg(test)]
mod tests {
    use axum::http::Method;

    #[test]
    fn changes_by_people_are_audited_machines_and_reads_are_not() {
        assert!(super::audited(&Method::POST, "/api/v1/tokens"));
        assert!(super::audited(&Method::DELETE, "/api/v1/deployments/3"));
        assert!(super::audited(&Method::POST, "/collections/2/members"));
        assert!(!super::audited(&Method::GET, "/api/v1/tokens"));
        assert!(!super::audited(&Method::POST, "/apple/notifications/1"));
        assert!(!super::audited(&Method::POST, "/mdm/webhook"));
        assert!(!super::audited(&Method::POST, "/login"));
        assert!(!super::audited(&Method::POST, "/api/v1/deployments/plan"));
        assert!(!super::audited(
            &Method::POST,
            "/api/v1/collections/preview"
        ));
    }
}
