//! The audit log (`/audit`): who changed what, when, from where and how it went, filtered by who
//! and by path, 100 a page, and its CSV (times in UTC).

use askama::Template;
use axum::extract::{Query, State};

use super::format::{self, Pager};
use super::{render, Chrome, PageResult, Viewer};
use crate::api::audit::{entries, AuditQuery, AuditView};
use crate::AppState;

const PER_PAGE: i64 = 100;

#[derive(Template)]
#[template(path = "audit.html")]
struct AuditPage {
    chrome: Chrome,
    actor: String,
    path: String,
    rows: Vec<(String, AuditView)>,
    pager: Pager,
    csv: String,
}

#[derive(Debug, Default, serde::Deserialize)]
pub(crate) struct Filters {
    #[serde(default)]
    actor: String,
    #[serde(default)]
    path: String,
    page: Option<i64>,
}

pub(crate) async fn page(
    State(state): State<AppState>,
    viewer: Viewer,
    Query(f): Query<Filters>,
) -> PageResult {
    let page = format::page_number(f.page);
    let q = AuditQuery {
        actor: Some(f.actor.clone()),
        path: Some(f.path.clone()),
        offset: Some((page - 1) * PER_PAGE),
        ..Default::default()
    };
    let (views, total) = entries(&state, &q, PER_PAGE).await?;
    let rows = views
        .into_iter()
        .map(|v| {
            let at = chrono::DateTime::parse_from_rfc3339(&v.at)
                .map(|t| format::time(t.timestamp_millis()))
                .unwrap_or_else(|_| v.at.clone());
            (at, v)
        })
        .collect();
    let link = |n: i64| {
        let page = n.to_string();
        format!(
            "/audit{}",
            format::query(&[("actor", &f.actor), ("path", &f.path), ("page", &page)])
        )
    };
    Ok(render(&AuditPage {
        chrome: viewer.chrome("audit", None),
        pager: Pager::new(page, PER_PAGE, total, link),
        csv: format!(
            "/audit.csv{}",
            format::query(&[("actor", &f.actor), ("path", &f.path)])
        ),
        actor: f.actor,
        path: f.path,
        rows,
    }))
}

pub(crate) async fn csv(
    State(state): State<AppState>,
    _viewer: Viewer,
    Query(f): Query<Filters>,
) -> PageResult {
    let q = AuditQuery {
        actor: Some(f.actor),
        path: Some(f.path),
        format: Some("csv".into()),
        ..Default::default()
    };
    let (views, _) = entries(&state, &q, 100_000).await?;
    Ok(crate::api::audit::csv(views)?)
}
