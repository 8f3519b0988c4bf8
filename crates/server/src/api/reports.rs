//! `/api/v1/reports`: "volume-purchased apps with license counts", as CSV or JSON.

use allot_store::AppFilter;
use axum::extract::{Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::auth::Caller;
use crate::error::{ApiError, ErrorBody};
use crate::AppState;

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ReportQuery {
    /// `csv` (default) or `json`.
    pub format: Option<String>,
    /// Only this token (id or name).
    pub token: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct LicenseRow {
    pub name: String,
    pub adam_id: String,
    /// `app` or `book`.
    #[serde(rename = "type")]
    pub kind: String,
    pub token: String,
    pub program_type: String,
    /// Empty (CSV) or null (JSON) for unlimited apps.
    pub total_purchased: Option<i64>,
    pub used: i64,
    pub available: Option<i64>,
    /// Used as a share of purchased, rounded to one decimal.
    pub percent_used: Option<f64>,
}

/// Every app and book of every token (or one token) with its license counts.
#[utoipa::path(get, path = "/api/v1/reports/licenses", tag = "reports", params(ReportQuery),
    responses((status = 200, description = "CSV (text/csv) or JSON rows", body = [LicenseRow]), (status = 422, body = ErrorBody)), security(("api_key" = [])))]
pub async fn licenses(
    State(state): State<AppState>,
    _c: Caller,
    q: Result<Query<ReportQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(q) = q.map_err(|e| ApiError::invalid(e.body_text()))?;
    licenses_export(
        &state,
        q.token.as_deref(),
        q.format.as_deref().unwrap_or("csv"),
    )
    .await
}

/// The licenses report as a CSV download or JSON (the API's and the console's).
pub(crate) async fn licenses_export(
    state: &AppState,
    token: Option<&str>,
    format: &str,
) -> Result<Response, ApiError> {
    let token_id = match token {
        Some(t) => Some(crate::api::tokens::find(state, t).await?.id),
        None => None,
    };
    let (rows, _) = state
        .store
        .app_licenses(&AppFilter {
            token_id,
            limit: i64::MAX / 2,
            ..Default::default()
        })
        .await?;
    let rows: Vec<LicenseRow> = rows
        .into_iter()
        .map(|a| {
            let total = (!a.unlimited).then_some(a.total);
            LicenseRow {
                name: a.name.unwrap_or_else(|| format!("adamId {}", a.adam_id)),
                adam_id: a.adam_id,
                kind: a.product_type.to_ascii_lowercase(),
                token: a.token_name,
                program_type: a.program,
                total_purchased: total,
                used: a.assigned,
                available: (!a.unlimited).then_some(a.available),
                percent_used: total
                    .filter(|t| *t > 0)
                    .map(|t| (a.assigned as f64 * 1000.0 / t as f64).round() / 10.0),
            }
        })
        .collect();
    match format {
        "json" => Ok(Json(rows).into_response()),
        "csv" => {
            let mut w = csv::Writer::from_writer(Vec::new());
            w.write_record([
                "name",
                "adamId",
                "type",
                "token",
                "programType",
                "totalPurchased",
                "used",
                "available",
                "percentUsed",
            ])
            .map_err(ApiError::internal)?;
            let opt = |v: Option<i64>| v.map(|n| n.to_string()).unwrap_or_default();
            for r in &rows {
                w.write_record([
                    r.name.as_str(),
                    &r.adam_id,
                    &r.kind,
                    &r.token,
                    &r.program_type,
                    &opt(r.total_purchased),
                    &r.used.to_string(),
                    &opt(r.available),
                    &r.percent_used
                        .map(|p| format!("{p:.1}"))
                        .unwrap_or_default(),
                ])
                .map_err(ApiError::internal)?;
            }
            let body = w.into_inner().map_err(ApiError::internal)?;
            Ok((
                [
                    (header::CONTENT_TYPE, "text/csv; charset=utf-8"),
                    (
                        header::CONTENT_DISPOSITION,
                        "attachment; filename=\"licenses.csv\"",
                    ),
                ],
                body,
            )
                .into_response())
        }
        other => Err(ApiError::invalid(format!(
            "format {other:?} must be csv or json"
        ))),
    }
}
