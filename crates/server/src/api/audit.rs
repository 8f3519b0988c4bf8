//! `GET /api/v1/audit`: the changes made through the API and the console, newest first — as JSON
//! pages or a CSV download (times in UTC).

use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::rfc3339;
use crate::auth::Caller;
use crate::error::{ApiError, ErrorBody};
use crate::AppState;

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AuditView {
    pub at: String,
    /// `API key NAME` or `console account NAME`.
    pub actor: String,
    /// Where the request came from.
    pub address: String,
    pub method: String,
    pub path: String,
    /// The HTTP status it was answered with (2xx and 3xx: done).
    pub status: i64,
    /// For a setting (an account's or key's role and scope, an alert endpoint, a time zone): what
    /// it was and what it became.
    pub detail: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct AuditList {
    pub entries: Vec<AuditView>,
    pub total: i64,
}

#[derive(Debug, Default, Deserialize, IntoParams)]
pub struct AuditQuery {
    /// Only this actor (`API key ops`, `console account admin`).
    pub actor: Option<String>,
    /// Only paths containing this text (`/deployments`, `tokens`).
    pub path: Option<String>,
    /// Only changes at or after this time (RFC 3339).
    pub since: Option<String>,
    /// `json` (default) or `csv`.
    pub format: Option<String>,
    pub limit: Option<i64>,
    pub offset: Option<i64>,
}

/// The audit log's entries for a query (the API and the console).
pub(crate) async fn entries(
    state: &AppState,
    q: &AuditQuery,
    limit: i64,
) -> Result<(Vec<AuditView>, i64), ApiError> {
    let since = match q.since.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
        Some(s) => Some(
            chrono::DateTime::parse_from_rfc3339(s)
                .map_err(|_| {
                    ApiError::invalid(format!(
                        "since {s:?} must be a time such as 2026-12-01T00:00:00Z"
                    ))
                })?
                .timestamp_millis(),
        ),
        None => None,
    };
    let text = |v: &Option<String>| {
        v.as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
    };
    let (rows, total) = state
        .store
        .audit(
            text(&q.actor).as_deref(),
            text(&q.path).as_deref(),
            since,
            limit,
            q.offset.unwrap_or(0).max(0),
        )
        .await?;
    Ok((
        rows.into_iter()
            .map(|e| AuditView {
                at: rfc3339(e.at),
                actor: e.actor,
                address: e.address,
                method: e.method,
                path: e.path,
                status: e.status,
                detail: e.detail,
            })
            .collect(),
        total,
    ))
}

/// The audit log as a CSV download (times in UTC), for the API and the console.
pub(crate) fn csv(entries: Vec<AuditView>) -> Result<Response, ApiError> {
    crate::api::reports::csv_download(
        "allot-audit.csv",
        &[
            "at", "actor", "address", "method", "path", "status", "detail",
        ],
        entries.into_iter().map(|e| {
            vec![
                e.at,
                e.actor,
                e.address,
                e.method,
                e.path,
                e.status.to_string(),
                e.detail.unwrap_or_default(),
            ]
        }),
    )
}

/// Who changed what, when, from where, and how it went.
#[utoipa::path(get, path = "/api/v1/audit", tag = "alerts", params(AuditQuery),
    responses((status = 200, description = "JSON pages (`format=json`, the default) or a CSV download (`format=csv`)", content((AuditList = "application/json"), (String = "text/csv"))), (status = 422, body = ErrorBody)), security(("api_key" = [])))]
pub async fn list(
    State(state): State<AppState>,
    _c: Caller,
    Query(q): Query<AuditQuery>,
) -> Result<Response, ApiError> {
    match q.format.as_deref().unwrap_or("json") {
        "json" => {
            let limit = q.limit.unwrap_or(100);
            if !(1..=1000).contains(&limit) {
                return Err(ApiError::invalid("limit must be between 1 and 1000"));
            }
            let (entries, total) = entries(&state, &q, limit).await?;
            Ok(Json(AuditList { entries, total }).into_response())
        }
        "csv" => {
            let (entries, _) =
                entries(&state, &q, q.limit.unwrap_or(100_000).clamp(1, 100_000)).await?;
            csv(entries)
        }
        other => Err(ApiError::invalid(format!(
            "format {other:?} must be json or csv"
        ))),
    }
}
