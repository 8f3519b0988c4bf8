//! `/api/v1/apps`: license information for store apps — one row per app (or book) per token.

use allot_store::AppFilter;
use axum::extract::{Query, State};
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::auth::Caller;
use crate::error::{ApiError, ErrorBody};
use crate::AppState;

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct AppQuery {
    /// A token's id or name.
    pub token: Option<String>,
    /// Part of the name, bundle id or adamId.
    pub search: Option<String>,
    /// `app` or `book`.
    #[serde(rename = "type")]
    pub kind: Option<String>,
    /// At most 1000 (default 100).
    pub limit: Option<i64>,
    pub offset: Option<i64>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AppView {
    pub name: String,
    pub adam_id: String,
    pub pricing_param: String,
    /// `app` or `book`.
    #[serde(rename = "type")]
    pub kind: String,
    pub bundle_id: Option<String>,
    pub icon_url: Option<String>,
    pub platforms: Vec<String>,
    pub token_id: i64,
    pub token: String,
    pub program_type: String,
    /// Total licenses (null for unlimited apps).
    pub total: Option<i64>,
    pub used: i64,
    pub available: Option<i64>,
    pub device_assignable: bool,
}

#[derive(Serialize, ToSchema)]
pub struct AppList {
    pub apps: Vec<AppView>,
    pub total: i64,
}

#[utoipa::path(get, path = "/api/v1/apps", tag = "apps", params(AppQuery),
    responses((status = 200, body = AppList), (status = 422, body = ErrorBody)), security(("api_key" = [])))]
pub async fn list(
    State(state): State<AppState>,
    _c: Caller,
    q: Result<Query<AppQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<AppList>, ApiError> {
    let Query(q) = q.map_err(|e| ApiError::invalid(e.body_text()))?;
    let token_id = match &q.token {
        Some(t) => Some(crate::api::tokens::find(&state, t).await?.id),
        None => None,
    };
    let product_type = match q.kind.as_deref().map(str::to_ascii_lowercase).as_deref() {
        None => None,
        Some("app") => Some("App".to_owned()),
        Some("book") => Some("Book".to_owned()),
        Some(other) => {
            return Err(ApiError::invalid(format!(
                "type {other:?} must be app or book"
            )))
        }
    };
    let limit = q.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::invalid("limit must be between 1 and 1000"));
    }
    let filter = AppFilter {
        token_id,
        search: q
            .search
            .filter(|s| !s.trim().is_empty())
            .map(|s| s.trim().to_owned()),
        product_type,
        limit,
        offset: q.offset.unwrap_or(0).max(0),
    };
    let (rows, total) = state.store.app_licenses(&filter).await?;
    let apps = rows
        .into_iter()
        .map(|a| AppView {
            name: a.name.unwrap_or_else(|| format!("adamId {}", a.adam_id)),
            adam_id: a.adam_id,
            pricing_param: a.pricing,
            kind: a.product_type.to_ascii_lowercase(),
            bundle_id: a.bundle_id,
            icon_url: a.icon_url,
            platforms: a.platforms,
            token_id: a.token_id,
            token: a.token_name,
            program_type: a.program,
            total: (!a.unlimited).then_some(a.total),
            used: a.assigned,
            available: (!a.unlimited).then_some(a.available),
            device_assignable: a.device_assignable,
        })
        .collect();
    Ok(Json(AppList { apps, total }))
}
