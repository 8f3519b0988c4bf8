//! `/api/v1/reports`: "volume-purchased apps with license counts", unused licenses (assigned but
//! not installed for N days) and tokens by expiry date, each as CSV or JSON.

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
    /// Apple's pricing of these licenses (`STDQ`, `PLUS`): what tells two rows of one app apart.
    pub pricing_param: String,
}

/// Every app and book of every token (or one token) with its license counts.
#[utoipa::path(get, path = "/api/v1/reports/licenses", tag = "reports", params(ReportQuery),
    responses((status = 200, description = "CSV (`format=csv`, the default) or JSON rows (`format=json`)", content(([LicenseRow] = "application/json"), (String = "text/csv"))), (status = 422, body = ErrorBody)), security(("api_key" = [])))]
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

/// Licenses unused since `before`, of the deployments the caller sees (the API's and the
/// console's).
pub(crate) async fn visible_unused(
    state: &AppState,
    before: i64,
    limit: i64,
) -> Result<Vec<allot_store::UnusedLicense>, ApiError> {
    let unused = state.store.unused_licenses(before, limit).await?;
    if !crate::access::is_scoped() {
        return Ok(unused);
    }
    let visible = crate::api::deployments_exec::visible_ids(state).await?;
    Ok(unused
        .into_iter()
        .filter(|u| visible.contains(&u.deployment_id))
        .collect())
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
            tokens_in: crate::access::token_ids(),
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
                pricing_param: a.pricing,
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
            let opt = |v: Option<i64>| v.map(|n| n.to_string()).unwrap_or_default();
            csv_download(
                "licenses.csv",
                &[
                    "name",
                    "adamId",
                    "type",
                    "token",
                    "programType",
                    "totalPurchased",
                    "used",
                    "available",
                    "percentUsed",
                    "pricingParam",
                ],
                rows.iter().map(|r| {
                    vec![
                        r.name.clone(),
                        r.adam_id.clone(),
                        r.kind.clone(),
                        r.token.clone(),
                        r.program_type.clone(),
                        opt(r.total_purchased),
                        r.used.to_string(),
                        opt(r.available),
                        r.percent_used
                            .map(|p| format!("{p:.1}"))
                            .unwrap_or_default(),
                        r.pricing_param.clone(),
                    ]
                }),
            )
        }
        other => Err(ApiError::invalid(format!(
            "format {other:?} must be csv or json"
        ))),
    }
}

/// A cell a spreadsheet shows as text: one that would start a formula (`=`, `+`, `-`, `@`, a tab
/// or carriage return) gets a leading `'`, unless it is a plain number.
fn spreadsheet_safe(cell: &str) -> std::borrow::Cow<'_, str> {
    let formula = cell.starts_with(['=', '+', '-', '@', '\t', '\r']);
    if formula && cell.parse::<f64>().is_err() {
        format!("'{cell}").into()
    } else {
        cell.into()
    }
}

/// Rows as a CSV download.
pub(crate) fn csv_download(
    filename: &str,
    header: &[&str],
    rows: impl Iterator<Item = Vec<String>>,
) -> Result<Response, ApiError> {
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(header).map_err(ApiError::internal)?;
    for r in rows {
        w.write_record(r.iter().map(|c| spreadsheet_safe(c).into_owned()))
            .map_err(ApiError::internal)?;
    }
    let body = w.into_inner().map_err(ApiError::internal)?;
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_owned()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{filename}\""),
            ),
        ],
        body,
    )
        .into_response())
}

fn format_of(f: &Option<String>) -> Result<&str, ApiError> {
    match f.as_deref().unwrap_or("csv") {
        f @ ("csv" | "json") => Ok(f),
        other => Err(ApiError::invalid(format!(
            "format {other:?} must be csv or json"
        ))),
    }
}

use crate::api::rfc3339 as time;

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct UnusedQuery {
    /// Assigned but not installed for at least this many days (default 7).
    pub days: Option<i64>,
    /// `csv` (default) or `json`.
    pub format: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct UnusedRow {
    pub name: String,
    pub adam_id: String,
    pub deployment_id: i64,
    /// Serial number, email or name.
    pub target: String,
    pub license: Option<String>,
    pub holder: Option<String>,
    pub status: String,
    /// Since when it has been waiting (RFC 3339).
    pub since: String,
}

/// Licenses deployments assigned that are not installed after `days` days.
#[utoipa::path(get, path = "/api/v1/reports/unused-licenses", tag = "reports", params(UnusedQuery),
    responses((status = 200, description = "CSV (`format=csv`, the default) or JSON rows (`format=json`)", content(([UnusedRow] = "application/json"), (String = "text/csv"))), (status = 422, body = ErrorBody)), security(("api_key" = [])))]
pub async fn unused(
    State(state): State<AppState>,
    _c: Caller,
    q: Result<Query<UnusedQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(q) = q.map_err(|e| ApiError::invalid(e.body_text()))?;
    let format = format_of(&q.format)?;
    let days = q.days.unwrap_or(7);
    if !(0..=3650).contains(&days) {
        return Err(ApiError::invalid("days must be between 0 and 3650"));
    }
    let before = allot_sync::now_ms() - days * 86_400_000;
    let mut rows = Vec::new();
    for u in visible_unused(&state, before, 100_000).await? {
        rows.push(UnusedRow {
            name: state
                .store
                .metadata(&u.adam_id)
                .await?
                .map(|m| m.name)
                .unwrap_or_else(|| format!("adamId {}", u.adam_id)),
            adam_id: u.adam_id,
            deployment_id: u.deployment_id,
            target: u.label,
            license: u.license,
            holder: u.holder,
            status: u.status,
            since: time(u.since),
        });
    }
    if format == "json" {
        return Ok(Json(rows).into_response());
    }
    csv_download(
        "unused-licenses.csv",
        &[
            "name",
            "adamId",
            "deploymentId",
            "target",
            "license",
            "holder",
            "status",
            "since",
        ],
        rows.into_iter().map(|r| {
            vec![
                r.name,
                r.adam_id,
                r.deployment_id.to_string(),
                r.target,
                r.license.unwrap_or_default(),
                r.holder.unwrap_or_default(),
                // CSV is for people: the status in words (JSON keeps the identifier).
                allot_domain::labels::label(&r.status).to_owned(),
                r.since,
            ]
        }),
    )
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ExpiryQuery {
    /// `csv` (default) or `json`.
    pub format: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ExpiryRow {
    pub token: String,
    pub organization: String,
    pub location: String,
    pub program_type: String,
    pub expires_at: String,
    /// Negative once expired.
    pub days_left: i64,
}

/// Every token, soonest expiry first.
#[utoipa::path(get, path = "/api/v1/reports/token-expiry", tag = "reports", params(ExpiryQuery),
    responses((status = 200, description = "CSV (`format=csv`, the default) or JSON rows (`format=json`)", content(([ExpiryRow] = "application/json"), (String = "text/csv"))), (status = 422, body = ErrorBody)), security(("api_key" = [])))]
pub async fn expiry(
    State(state): State<AppState>,
    _c: Caller,
    q: Result<Query<ExpiryQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(q) = q.map_err(|e| ApiError::invalid(e.body_text()))?;
    let format = format_of(&q.format)?;
    let now = allot_sync::now_ms();
    let mut tokens = crate::access::filter(state.store.tokens().await?, |t| t.id);
    tokens.sort_by_key(|t| t.expires_at);
    let rows: Vec<ExpiryRow> = tokens
        .into_iter()
        .map(|t| ExpiryRow {
            token: t.name,
            organization: t.org_name,
            location: t.location_name,
            program_type: t.program.as_str().into(),
            expires_at: time(t.expires_at),
            days_left: (t.expires_at - now).div_euclid(86_400_000),
        })
        .collect();
    if format == "json" {
        return Ok(Json(rows).into_response());
    }
    csv_download(
        "token-expiry.csv",
        &[
            "token",
            "organization",
            "location",
            "programType",
            "expiresAt",
            "daysLeft",
        ],
        rows.into_iter().map(|r| {
            vec![
                r.token,
                r.organization,
                r.location,
                r.program_type,
                r.expires_at,
                r.days_left.to_string(),
            ]
        }),
    )
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SubscriptionForecastRow {
    pub token: String,
    pub app: String,
    pub parent_adam_id: i64,
    pub adam_id: i64,
    pub status: String,
    pub period_end: String,
    pub seats_total: i64,
    pub seats_assigned: i64,
    /// Charged again at the period's end.
    pub seats_renewing: i64,
    /// End with the period.
    pub seats_expiring: i64,
    pub users_losing_access: i64,
    /// The cost of doing nothing: seats that renew with nobody on them.
    pub unused_renewing_seats: i64,
    /// When Apple last said these counts.
    pub as_of: String,
}

/// "Subscription renewal forecast": per subscription, what the end of its billing period does if
/// nobody acts, soonest period end first.
#[utoipa::path(get, path = "/api/v1/reports/subscriptions", tag = "reports", params(ExpiryQuery),
    responses((status = 200, description = "CSV (`format=csv`, the default) or JSON rows (`format=json`)", content(([SubscriptionForecastRow] = "application/json"), (String = "text/csv"))), (status = 422, body = ErrorBody)), security(("api_key" = [])))]
pub async fn subscriptions(
    State(state): State<AppState>,
    _c: Caller,
    q: Result<Query<ExpiryQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(q) = q.map_err(|e| ApiError::invalid(e.body_text()))?;
    let format = format_of(&q.format)?;
    subscriptions_export(&state, format).await
}

/// The forecast as JSON rows or a CSV download (the API's and the console's).
pub(crate) async fn subscriptions_export(
    state: &AppState,
    format: &str,
) -> Result<Response, ApiError> {
    let mut views = crate::api::subscriptions::views(state, None).await?;
    views.sort_by(|a, b| {
        (
            a.period_end.as_deref().unwrap_or("9999"),
            &a.token,
            a.adam_id,
        )
            .cmp(&(
                b.period_end.as_deref().unwrap_or("9999"),
                &b.token,
                b.adam_id,
            ))
    });
    let rows: Vec<SubscriptionForecastRow> = views
        .into_iter()
        .map(|v| SubscriptionForecastRow {
            app: v
                .app_name
                .unwrap_or_else(|| format!("adamId {}", v.parent_adam_id)),
            token: v.token,
            parent_adam_id: v.parent_adam_id,
            adam_id: v.adam_id,
            status: v.status,
            period_end: v.period_end.unwrap_or_default(),
            seats_total: v.total.renewing + v.total.expiring,
            seats_assigned: v.assigned.renewing + v.assigned.expiring,
            seats_renewing: v.forecast.renewing_seats,
            seats_expiring: v.forecast.expiring_seats,
            users_losing_access: v.forecast.users_losing_access,
            unused_renewing_seats: v.forecast.unused_renewing_seats,
            as_of: v.updated_at,
        })
        .collect();
    if format == "json" {
        return Ok(Json(rows).into_response());
    }
    csv_download(
        "subscription-forecast.csv",
        &[
            "token",
            "app",
            "parentAdamId",
            "adamId",
            "status",
            "periodEnd",
            "seatsTotal",
            "seatsAssigned",
            "seatsRenewing",
            "seatsExpiring",
            "usersLosingAccess",
            "unusedRenewingSeats",
            "asOf",
        ],
        rows.into_iter().map(|r| {
            vec![
                r.token,
                r.app,
                r.parent_adam_id.to_string(),
                r.adam_id.to_string(),
                r.status,
                r.period_end,
                r.seats_total.to_string(),
                r.seats_assigned.to_string(),
                r.seats_renewing.to_string(),
                r.seats_expiring.to_string(),
                r.users_losing_access.to_string(),
                r.unused_renewing_seats.to_string(),
                r.as_of,
            ]
        }),
    )
}

#[cfg(test)]
mod tests {
    use super::spreadsheet_safe;

    #[test]
    fn formulas_are_shown_as_text() {
        assert_eq!(spreadsheet_safe("=HYPERLINK(\"x\")"), "'=HYPERLINK(\"x\")");
        assert_eq!(spreadsheet_safe("@SUM(A1)"), "'@SUM(A1)");
        assert_eq!(spreadsheet_safe("+1 555"), "'+1 555");
        assert_eq!(spreadsheet_safe("-5"), "-5");
        assert_eq!(spreadsheet_safe("Pages"), "Pages");
    }
}
