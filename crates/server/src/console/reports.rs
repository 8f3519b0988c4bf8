//! Reports: volume-purchased apps with license counts (CSV and JSON export), unused licenses
//! (assigned but not installed for N days), tokens by expiry date.

#[allow(unused_imports)]
use super::Labels as _;
use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use serde::Deserialize;

use super::{format, render, Chrome, Notice, PageError, PageResult, Viewer};
use crate::api::reports::licenses_export;
use crate::AppState;

#[derive(Debug, Default, Deserialize)]
pub(crate) struct ReportQuery {
    days: Option<i64>,
    notice: Option<String>,
}

pub(crate) struct UnusedLine {
    app: String,
    label: String,
    license: String,
    status: String,
    since: String,
    deployment: i64,
}

#[derive(Template)]
#[template(path = "reports.html")]
struct ReportsPage {
    chrome: Chrome,
    days: i64,
    unused: Vec<UnusedLine>,
    /// Name, organization · location, expiry date, in words.
    expiry: Vec<(String, String, String, String)>,
}

pub(crate) async fn page(
    State(state): State<AppState>,
    viewer: Viewer,
    Query(q): Query<ReportQuery>,
) -> PageResult {
    let days = q.days.unwrap_or(7).clamp(0, 3650);
    let now = allot_sync::now_ms();
    let mut unused = Vec::new();
    for u in crate::api::reports::visible_unused(&state, now - days * 86_400_000, 500).await? {
        let app = state
            .store
            .metadata(&u.adam_id)
            .await?
            .map(|m| m.name)
            .unwrap_or_else(|| format!("adamId {}", u.adam_id));
        unused.push(UnusedLine {
            app,
            label: u.label,
            license: u.license.unwrap_or_default(),
            status: u.status,
            since: format::ago(u.since, now),
            deployment: u.deployment_id,
        });
    }
    let mut tokens = crate::access::filter(state.store.token_briefs().await?, |t| t.id);
    tokens.sort_by_key(|t| t.expires_at);
    let expiry = tokens
        .into_iter()
        .map(|t| {
            let days = (t.expires_at - now).div_euclid(86_400_000);
            (
                t.name,
                format!("{} · {}", t.org_name, t.location_name),
                format::time(t.expires_at),
                match days {
                    d if d < 0 => "expired".to_owned(),
                    d => format!("in {d} days"),
                },
            )
        })
        .collect();
    Ok(render(&ReportsPage {
        chrome: viewer.chrome("reports", Notice { notice: q.notice }.take()),
        days,
        unused,
        expiry,
    }))
}

/// `/reports/licenses.csv` and `.json`: the report as a download, for the signed-in viewer.
pub(crate) async fn licenses(
    State(state): State<AppState>,
    _viewer: Viewer,
    Path(format): Path<String>,
) -> PageResult {
    if format != "csv" && format != "json" {
        return Err(PageError::new(
            StatusCode::NOT_FOUND,
            "the licenses report comes as .csv or .json",
        ));
    }
    Ok(licenses_export(&state, None, &format).await?)
}

impl super::Labels for ReportsPage {}
