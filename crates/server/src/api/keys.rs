//! `/api/v1/api-keys`: keys for automation, each with a name and a role, listed with their last
//! use, revoked when no longer wanted (kept, revoked, for the record). A key is shown once, when
//! it is made; only its hash is stored.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::api::{confirmed, Confirm};
use crate::auth::Admin;
use crate::error::{ApiError, ApiJson, ErrorBody};
use crate::AppState;

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ApiKeyView {
    pub id: i64,
    pub name: String,
    /// `admin` or `read_only`.
    pub role: String,
    /// RFC 3339.
    pub created_at: String,
    /// RFC 3339, to the minute; none if never used.
    pub last_used_at: Option<String>,
    /// RFC 3339; a revoked key is refused.
    pub revoked_at: Option<String>,
    /// Set by `ALLOT_ADMIN_API_KEY` (a new value there revokes it).
    pub from_config: bool,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ApiKeyList {
    pub keys: Vec<ApiKeyView>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NewApiKey {
    /// What the key is for (`jamf-sync`, `reporting`): 1–100 printable characters.
    pub name: String,
    /// `admin` or `read_only` (default).
    pub role: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct NewApiKeyView {
    #[serde(flatten)]
    pub key: ApiKeyView,
    /// The key itself: shown only now.
    pub secret: String,
}

use crate::api::rfc3339 as time;

fn view(k: allot_store::ApiKeyRow) -> ApiKeyView {
    ApiKeyView {
        id: k.id,
        name: k.name,
        role: k.role,
        created_at: time(k.created_at),
        last_used_at: k.last_used_at.map(time),
        revoked_at: k.revoked_at.map(time),
        from_config: k.from_config,
    }
}

/// Every API key, revoked ones too, newest first.
#[utoipa::path(get, path = "/api/v1/api-keys", tag = "console",
    responses((status = 200, body = ApiKeyList), (status = 403, body = ErrorBody)), security(("api_key" = [])))]
pub async fn list(State(state): State<AppState>, _a: Admin) -> Result<Json<ApiKeyList>, ApiError> {
    let keys = state.store.api_keys().await?;
    Ok(Json(ApiKeyList {
        keys: keys.into_iter().map(view).collect(),
    }))
}

/// Makes a key; its secret is in this answer only.
#[utoipa::path(post, path = "/api/v1/api-keys", tag = "console", request_body = NewApiKey,
    responses((status = 201, body = NewApiKeyView), (status = 422, body = ErrorBody)), security(("api_key" = [])))]
pub async fn create(
    State(state): State<AppState>,
    _a: Admin,
    ApiJson(req): ApiJson<NewApiKey>,
) -> Result<(StatusCode, Json<NewApiKeyView>), ApiError> {
    let name = crate::input::check_text("name", &req.name, 100).map_err(ApiError::invalid)?;
    if name.is_empty() {
        return Err(ApiError::invalid(
            "a key needs a name that says what it is for",
        ));
    }
    let role = match req.role.as_deref().unwrap_or("read_only") {
        "admin" => "admin",
        "read_only" | "read-only" => "read_only",
        other => {
            return Err(ApiError::invalid(format!(
                "role {other:?} must be admin or read_only"
            )))
        }
    };
    let secret = allot_secrets::random_token("allot_");
    let now = allot_sync::now_ms();
    state
        .store
        .insert_api_key(&name, &allot_secrets::hash_api_key(&secret), role, now)
        .await?;
    let row = state
        .store
        .api_key_by_hash(&allot_secrets::hash_api_key(&secret))
        .await?
        .ok_or_else(|| ApiError::internal("a new key was not found"))?;
    Ok((
        StatusCode::CREATED,
        Json(NewApiKeyView {
            key: view(row),
            secret,
        }),
    ))
}

/// Revokes a key: it is refused from now on.
#[utoipa::path(delete, path = "/api/v1/api-keys/{id}", tag = "console", params(("id" = i64, Path), Confirm),
    responses((status = 204), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)), security(("api_key" = [])))]
pub async fn revoke(
    State(state): State<AppState>,
    _a: Admin,
    Path(id): Path<i64>,
    Query(c): Query<Confirm>,
) -> Result<StatusCode, ApiError> {
    confirmed(&c, "revoking an API key")?;
    if state.store.revoke_api_key(id, allot_sync::now_ms()).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found(format!(
            "no API key {id} that is not revoked already"
        )))
    }
}
