//! The license ledger in the console: where Allot's intents and Apple's assignments disagree
//! (orphans, leaks, missing licenses), the clean-up (its list first, then the revoke), and what
//! clean-ups asked of Apple.

#[allow(unused_imports)]
use super::Labels as _;
use askama::Template;
use axum::extract::{Query, State};
use axum::Form;
use serde::Deserialize;

use super::{back, format, render, Chrome, Notice, PageResult, Viewer};
use crate::AppState;

/// Rows shown (and cleaned) at most per kind.
const SHOWN: i64 = 2_000;

#[derive(Debug, Default, Deserialize)]
pub(crate) struct LedgerQuery {
    #[serde(default)]
    kind: String,
    notice: Option<String>,
}

pub(crate) struct LedgerLine {
    kind: String,
    token: String,
    app: String,
    holder: String,
    since: String,
    reason: String,
}

#[derive(Template)]
#[template(path = "ledger.html")]
struct LedgerPage {
    chrome: Chrome,
    kind: String,
    rows: Vec<LedgerLine>,
    orphans: usize,
    leaks: usize,
    missing: usize,
    /// When, who, what, holder, outcome.
    actions: Vec<(String, String, String, String, String)>,
    /// The clean-up's list, shown before anything is revoked.
    confirming: bool,
}

async fn app_name(state: &AppState, adam_id: &str) -> Result<String, allot_store::StoreError> {
    Ok(state
        .store
        .metadata(adam_id)
        .await?
        .map(|m| m.name)
        .unwrap_or_else(|| format!("adamId {adam_id}")))
}

async fn lines(
    state: &AppState,
    kind: &str,
) -> Result<(Vec<LedgerLine>, [usize; 3]), super::PageError> {
    let now = allot_sync::now_ms();
    let all = crate::api::ledger::ledger_rows(state, None, SHOWN).await?;
    let counts = ["orphan", "leak", "missing"].map(|k| all.iter().filter(|r| r.kind == k).count());
    let mut names = std::collections::HashMap::new();
    let mut out = Vec::new();
    for r in all
        .into_iter()
        .filter(|r| kind.is_empty() || r.kind == kind)
    {
        if !names.contains_key(&r.adam_id) {
            names.insert(r.adam_id.clone(), app_name(state, &r.adam_id).await?);
        }
        let reason = match r.kind.as_str() {
            "orphan" => "Apple holds it; no deployment in force serves it".to_owned(),
            "leak" => format!(
                "deployment {} gave it up; Apple still holds it",
                r.deployment_id.unwrap_or_default()
            ),
            _ => format!(
                "deployment {} counts on it; Apple holds none (claimed again at the next pass)",
                r.deployment_id.unwrap_or_default()
            ),
        };
        out.push(LedgerLine {
            app: names[&r.adam_id].clone(),
            holder: match (&r.email, r.holder_kind.as_str()) {
                (Some(e), _) => format!("{e} (user)"),
                (None, k) => format!("{} ({k})", r.holder),
            },
            since: r.since.map(|s| format::ago(s, now)).unwrap_or_default(),
            kind: r.kind,
            token: r.token,
            reason,
        });
    }
    Ok((out, counts))
}

pub(crate) async fn page(
    State(state): State<AppState>,
    viewer: Viewer,
    Query(q): Query<LedgerQuery>,
) -> PageResult {
    let kind = match q.kind.as_str() {
        k @ ("orphan" | "leak" | "missing") => k.to_owned(),
        _ => String::new(),
    };
    let (rows, [orphans, leaks, missing]) = lines(&state, &kind).await?;
    let actions = crate::access::filter(state.store.ledger_actions(50).await?, |a| a.token_id)
        .into_iter()
        .map(|a| {
            (
                format::time(a.at),
                a.actor,
                format!("{} {} · adamId {}", a.kind, a.holder_kind, a.adam_id),
                a.holder,
                a.outcome,
            )
        })
        .collect();
    Ok(render(&LedgerPage {
        chrome: viewer.chrome(
            "ledger",
            Notice {
                notice: q.notice.clone(),
            }
            .take(),
        ),
        kind,
        rows,
        orphans,
        leaks,
        missing,
        actions,
        confirming: false,
    }))
}

#[derive(Debug, Deserialize)]
pub(crate) struct CleanForm {
    csrf: String,
    /// `orphan` or `leak`.
    #[serde(default)]
    kind: String,
    /// `true` once the admin has read the list.
    #[serde(default)]
    confirm: String,
}

/// The clean-up: first the list of what would be revoked (nothing changes), then, confirmed, the
/// revoke at Apple.
pub(crate) async fn clean(
    State(state): State<AppState>,
    viewer: Viewer,
    Form(f): Form<CleanForm>,
) -> PageResult {
    viewer.may_change(&f.csrf)?;
    let kind = match f.kind.as_str() {
        k @ ("orphan" | "leak") => k,
        _ => {
            return Err(super::PageError::new(
                axum::http::StatusCode::UNPROCESSABLE_ENTITY,
                "only orphans and leaks can be cleaned up (missing licenses are claimed again)",
            ))
        }
    };
    if f.confirm != "true" {
        let (rows, [orphans, leaks, missing]) = lines(&state, kind).await?;
        return Ok(render(&LedgerPage {
            chrome: viewer.chrome("ledger", None),
            kind: kind.to_owned(),
            rows,
            orphans,
            leaks,
            missing,
            actions: Vec::new(),
            confirming: true,
        }));
    }
    let rows: Vec<_> = crate::api::ledger::ledger_rows(&state, None, SHOWN)
        .await?
        .into_iter()
        .filter(|r| r.kind == kind)
        .collect();
    let done = allot_deploy::ledger::clean(
        &state.engine,
        rows,
        &format!("console account {}", viewer.username),
    )
    .await
    .map_err(|e| super::PageError::new(axum::http::StatusCode::BAD_GATEWAY, e.to_string()))?;
    let asked = done.iter().filter(|a| a.outcome == "requested").count();
    Ok(back(
        "/ledger",
        &format!(
            "Asked Apple to take back {asked} of {} licenses; the list updates as Apple confirms",
            done.len()
        ),
    ))
}

impl super::Labels for LedgerPage {}
