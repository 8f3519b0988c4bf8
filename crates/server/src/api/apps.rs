//! `/api/v1/apps`: license information for store apps — one row per app (or book) per token.

use allot_store::{AppFilter, AppSort};
use axum::extract::{Path, Query, State};
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::auth::{Caller, Writer};
use crate::error::{ApiError, ApiJson, ErrorBody};
use crate::AppState;

#[derive(Debug, Default, Clone, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct AppQuery {
    /// A token's id or name.
    pub token: Option<String>,
    /// Part of the name, bundle id or adamId.
    pub search: Option<String>,
    /// `app` or `book`.
    #[serde(rename = "type")]
    pub kind: Option<String>,
    /// A platform: `iOS`, `macOS`, `tvOS`, `watchOS` or `visionOS`.
    pub platform: Option<String>,
    /// One of the tokens' categories.
    pub category: Option<String>,
    /// `true`: only apps with at most a tenth of their licenses free.
    pub low: Option<bool>,
    /// `name` (default), `token`, `total`, `used` or `available` (fewest free first).
    pub sort: Option<String>,
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
    /// When Apple last confirmed these counts (the token's last sync or notification, whichever
    /// is later); null before the first sync.
    pub counts_confirmed_at: Option<String>,
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
    let filter = app_filter(&state, &q).await?;
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
            counts_confirmed_at: a.confirmed_at.map(super::rfc3339),
        })
        .collect();
    Ok(Json(AppList { apps, total }))
}

/// What Apple's metadata services last said of an app: what the compatibility checks and
/// automatic updates go by, with when it was said.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AppMetadataView {
    pub adam_id: String,
    pub name: String,
    pub bundle_id: Option<String>,
    pub icon_url: Option<String>,
    /// `iosSoftware`, `macSoftware`, `ebook`.
    pub kind: Option<String>,
    /// Apple's `deviceFamilies`: `iphone`, `ipad`, `mac`, `tvos`, …
    pub device_families: Vec<String>,
    /// The lowest OS version it runs on.
    #[serde(rename = "minimumOSVersion")]
    pub minimum_os_version: Option<String>,
    /// The store's current version.
    pub latest_version: Option<String>,
    /// That version's number as devices report it (`ExternalVersionIdentifier`).
    pub external_version_id: Option<i64>,
    /// Apple allows device licenses for it.
    pub device_licensing: bool,
    /// The organization's own custom (B2B) app.
    pub custom_app: bool,
    /// `lookup` (content metadata lookup) or `metadata-api` (Apps and Books for Organizations).
    pub source: String,
    /// The storefront the metadata API found it in.
    pub storefront: Option<String>,
    /// When Apple said it (RFC 3339).
    pub fetched_at: String,
}

#[utoipa::path(get, path = "/api/v1/apps/{adam_id}/metadata", tag = "apps", params(("adam_id" = String, Path, description = "the app's or book's adamId")),
    responses((status = 200, body = AppMetadataView), (status = 404, body = ErrorBody)), security(("api_key" = [])))]
pub async fn metadata(
    State(state): State<AppState>,
    _c: Caller,
    Path(adam_id): Path<String>,
) -> Result<Json<AppMetadataView>, ApiError> {
    let m = state.store.metadata(adam_id.trim()).await?.ok_or_else(|| {
        ApiError::not_found(format!(
            "no metadata for adamId {:?}: no token holds it, or the sync that reads its metadata has not run yet",
            adam_id.chars().take(40).collect::<String>()
        ))
    })?;
    Ok(Json(AppMetadataView {
        adam_id: m.adam_id,
        name: m.name,
        bundle_id: m.bundle_id,
        icon_url: m.icon_url,
        kind: m.kind,
        device_families: m.platforms,
        minimum_os_version: m.minimum_os_version,
        latest_version: m.version,
        external_version_id: m.external_version_id,
        device_licensing: m.device_licensing,
        custom_app: m.custom_app,
        source: m.source,
        storefront: m.storefront,
        fetched_at: crate::api::rfc3339(m.fetched_at),
    }))
}

fn non_empty(s: &Option<String>) -> Option<String> {
    s.as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}

/// The store's filter for a query (shared with the console's license page).
pub(crate) async fn app_filter(state: &AppState, q: &AppQuery) -> Result<AppFilter, ApiError> {
    let token_id = match non_empty(&q.token) {
        Some(t) => Some(crate::api::tokens::find(state, &t).await?.id),
        None => None,
    };
    let product_type = match non_empty(&q.kind)
        .map(|k| k.to_ascii_lowercase())
        .as_deref()
    {
        None => None,
        Some("app") => Some("App".to_owned()),
        Some("book") => Some("Book".to_owned()),
        Some(other) => {
            return Err(ApiError::invalid(format!(
                "type {other:?} must be app or book"
            )))
        }
    };
    let platform = match non_empty(&q.platform) {
        None => None,
        Some(p) => Some(
            ["iOS", "macOS", "tvOS", "watchOS", "visionOS"]
                .into_iter()
                .find(|known| known.eq_ignore_ascii_case(&p))
                .ok_or_else(|| {
                    ApiError::invalid(format!(
                        "platform {p:?} must be iOS, macOS, tvOS, watchOS or visionOS"
                    ))
                })?
                .to_owned(),
        ),
    };
    let sort = match non_empty(&q.sort) {
        None => AppSort::Name,
        Some(s) => AppSort::parse(&s).ok_or_else(|| {
            ApiError::invalid(format!(
                "sort {s:?} must be name, token, total, used or available"
            ))
        })?,
    };
    let limit = q.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::invalid("limit must be between 1 and 1000"));
    }
    Ok(AppFilter {
        token_id,
        tokens_in: crate::access::token_ids(),
        search: non_empty(&q.search),
        product_type,
        platform,
        category: non_empty(&q.category),
        low: q.low.unwrap_or(false),
        sort,
        limit,
        offset: q.offset.unwrap_or(0).max(0),
    })
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ThresholdRequest {
    /// `STDQ` (default) or `PLUS`.
    pub pricing_param: Option<String>,
    /// `licenses.low` is raised when free licenses fall to this many or fewer (0–1,000,000);
    /// `null`: the global `ALLOT_ALERT_LOW_LICENSES` again.
    pub threshold: Option<i64>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ThresholdView {
    pub adam_id: String,
    pub pricing_param: String,
    /// The threshold in force for this app.
    pub threshold: i64,
    /// True when the app has its own; false when the global one applies.
    pub own: bool,
}

/// Sets (or clears) an app's own `licenses.low` threshold (shared by the API and the console).
pub(crate) async fn set_threshold(
    state: &AppState,
    adam_id: &str,
    req: &ThresholdRequest,
) -> Result<ThresholdView, ApiError> {
    let adam_id = adam_id.trim();
    let pricing = req.pricing_param.as_deref().unwrap_or("STDQ");
    if pricing != "STDQ" && pricing != "PLUS" {
        return Err(ApiError::invalid("pricingParam must be STDQ or PLUS"));
    }
    if let Some(t) = req.threshold {
        if !(0..=1_000_000).contains(&t) {
            return Err(ApiError::invalid(
                "threshold must be between 0 and 1000000 free licenses",
            ));
        }
    }
    if state
        .store
        .asset_holdings(adam_id, pricing)
        .await?
        .is_empty()
    {
        return Err(ApiError::not_found(format!(
            "no token holds adamId {adam_id} ({pricing})"
        )));
    }
    let before = state.store.alert_threshold(adam_id, pricing).await?;
    state
        .store
        .set_alert_threshold(adam_id, pricing, req.threshold)
        .await?;
    let global = state.alerts.low_threshold;
    let words = |t: Option<i64>| t.map_or_else(|| format!("global ({global})"), |t| t.to_string());
    crate::audit::detail(format!(
        "licenses.low threshold of adamId {adam_id} ({pricing}): {} → {}",
        words(before),
        words(req.threshold)
    ));
    state.alerts.wake();
    Ok(ThresholdView {
        adam_id: adam_id.to_owned(),
        pricing_param: pricing.to_owned(),
        threshold: req.threshold.unwrap_or(global),
        own: req.threshold.is_some(),
    })
}

/// Sets an app's own threshold for `licenses.low` (per app, over the global one).
#[utoipa::path(put, path = "/api/v1/apps/{adam_id}/alert-threshold", tag = "alerts", request_body = ThresholdRequest,
    params(("adam_id" = String, Path, description = "the app's or book's adamId")),
    responses((status = 200, body = ThresholdView), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)), security(("api_key" = [])))]
pub async fn threshold(
    State(state): State<AppState>,
    _a: Writer,
    Path(adam_id): Path<String>,
    ApiJson(req): ApiJson<ThresholdRequest>,
) -> Result<Json<ThresholdView>, ApiError> {
    Ok(Json(set_threshold(&state, &adam_id, &req).await?))
}
