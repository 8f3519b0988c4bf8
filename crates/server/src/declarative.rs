//! `/mdm/declarative/`: Apple's declarations protocol for the apps Allot deploys, reached through
//! NanoMDM's `-dm` forwarding (`-dm https://allot.example/mdm/declarative/`). NanoMDM names the
//! device in `X-Enrollment-ID` and, with `-dm-send-hmac-key`, signs each request's body in
//! `X-Hmac-Signature` (checked when `ALLOT_DM_HMAC_KEY` is set). GET `tokens`,
//! `declaration-items` and `declaration/{kind}/{identifier}` serve what the device's effective
//! intents declare; PUT `status` takes its status reports (`app.managed.list`).

use allot_deploy::declarations_for;
use allot_mdm::declarative::{parse_status, Declarations};
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, put};
use axum::{Json, Router};

use crate::error::ApiError;
use crate::{input, AppState};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/mdm/declarative/tokens", get(tokens))
        .route("/mdm/declarative/declaration-items", get(items))
        .route(
            "/mdm/declarative/declaration/{kind}/{identifier}",
            get(declaration),
        )
        .route("/mdm/declarative/status", put(status))
}

/// The device a forwarded request speaks for, once its signature (if one is required) holds.
fn enrollment(state: &AppState, headers: &HeaderMap, body: &[u8]) -> Result<String, ApiError> {
    if let Some(key) = &state.dm_hmac_key {
        let signature = headers
            .get("x-hmac-signature")
            .and_then(|v| v.to_str().ok());
        allot_mdm::webhook::verify_signature(key, body, signature).map_err(|_| {
            ApiError::new(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "X-Hmac-Signature does not match the body: set NanoMDM's -dm-send-hmac-key to ALLOT_DM_HMAC_KEY",
            )
        })?;
    }
    let id = headers
        .get("x-enrollment-id")
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| {
            ApiError::bad_request("X-Enrollment-ID is missing: NanoMDM's -dm forwarding sets it")
        })?;
    input::check_enrollment_id(id).map_err(ApiError::bad_request)?;
    Ok(id.to_owned())
}

/// What the device's effective intents declare (a device Allot does not know gets the
/// activation and status subscription alone).
async fn declarations(state: &AppState, enrollment: &str) -> Result<Declarations, ApiError> {
    let apps = match state.store.device_by_enrollment(enrollment).await? {
        Some(d) => state.store.declared_apps(d.id).await?,
        None => Vec::new(),
    };
    Ok(declarations_for(&apps))
}

async fn tokens(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<serde_json::Value>, ApiError> {
    let id = enrollment(&state, &headers, &body)?;
    let now = crate::api::rfc3339(allot_sync::now_ms());
    Ok(Json(declarations(&state, &id).await?.tokens_json(&now)))
}

async fn items(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<serde_json::Value>, ApiError> {
    let id = enrollment(&state, &headers, &body)?;
    Ok(Json(declarations(&state, &id).await?.items_json()))
}

async fn declaration(
    State(state): State<AppState>,
    Path((kind, identifier)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<serde_json::Value>, ApiError> {
    let id = enrollment(&state, &headers, &body)?;
    let all = declarations(&state, &id).await?;
    match all.get(&kind, &identifier) {
        Some(d) => Ok(Json(d.to_json().clone())),
        None => Err(ApiError::not_found(format!(
            "no {} declaration {:?} for this device",
            input::device_text(&kind, 40),
            input::device_text(&identifier, 100)
        ))),
    }
}

async fn status(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<StatusCode, ApiError> {
    let id = enrollment(&state, &headers, &body)?;
    let apps = parse_status(&body).map_err(|e| ApiError::bad_request(e.to_string()))?;
    if let Some(apps) = apps {
        let moved = state
            .executor
            .declarative_status(&id, &apps)
            .await
            .map_err(ApiError::internal)?;
        if moved > 0 {
            state.executor.wake();
        }
    }
    Ok(StatusCode::OK)
}
