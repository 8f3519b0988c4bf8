//! `/api/v1/api-keys`: keys for automation, each with a name, a role and an optional scope of
//! tokens, listed with their last use, revoked when no longer wanted (kept, revoked, for the
//! record). A key is shown once, when it is made; only its hash is stored. Managing keys is for
//! administrators of every location.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::access::ScopeView;
use crate::api::{confirmed, Confirm};
use crate::auth::{Caller, Writer};
use crate::error::{ApiError, ApiJson, ErrorBody};
use crate::roles::Role;
use crate::AppState;

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ApiKeyView {
    pub id: i64,
    pub name: String,
    /// `admin`, `operator` or `viewer`.
    pub role: String,
    /// The tokens it works with; absent: every token.
    pub scope: Option<ScopeView>,
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
    /// `admin`, `operator` or `viewer` (default; `read_only` is read as `viewer`).
    pub role: Option<String>,
    /// The tokens the key works with; none: every token.
    pub scope: Option<ScopeView>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ApiKeyChange {
    /// A new role.
    pub role: Option<String>,
    /// A new scope; `{}`: every token.
    pub scope: Option<ScopeView>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct NewApiKeyView {
    #[serde(flatten)]
    pub key: ApiKeyView,
    /// The key itself: shown only now.
    pub secret: String,
}

use crate::api::rfc3339 as time;

pub(crate) fn view(
    names: &std::collections::HashMap<i64, String>,
    k: allot_store::ApiKeyRow,
) -> ApiKeyView {
    ApiKeyView {
        id: k.id,
        scope: crate::access::view_named(names, k.scope.as_deref()),
        name: k.name,
        role: Role::stored(&k.role).as_str().into(),
        created_at: time(k.created_at),
        last_used_at: k.last_used_at.map(time),
        revoked_at: k.revoked_at.map(time),
        from_config: k.from_config,
    }
}

/// Every API key, revoked ones too, newest first.
#[utoipa::path(get, path = "/api/v1/api-keys", tag = "console",
    responses((status = 200, body = ApiKeyList), (status = 403, body = ErrorBody)), security(("api_key" = [])))]
pub async fn list(State(state): State<AppState>, _c: Caller) -> Result<Json<ApiKeyList>, ApiError> {
    let names = crate::console::token_names(&state).await?;
    let keys = state.store.api_keys().await?;
    Ok(Json(ApiKeyList {
        keys: keys.into_iter().map(|k| view(&names, k)).collect(),
    }))
}

/// Makes a key; its secret is in this answer only.
#[utoipa::path(post, path = "/api/v1/api-keys", tag = "console", request_body = NewApiKey,
    responses((status = 201, body = NewApiKeyView), (status = 422, body = ErrorBody)), security(("api_key" = [])))]
pub async fn create(
    State(state): State<AppState>,
    _a: Writer,
    ApiJson(req): ApiJson<NewApiKey>,
) -> Result<(StatusCode, Json<NewApiKeyView>), ApiError> {
    Ok((StatusCode::CREATED, Json(create_key(&state, req).await?)))
}

/// Makes a key (shared by the API and the console's Access page).
pub(crate) async fn create_key(
    state: &AppState,
    req: NewApiKey,
) -> Result<NewApiKeyView, ApiError> {
    let name = crate::input::check_text("name", &req.name, 100).map_err(ApiError::invalid)?;
    if name.is_empty() {
        return Err(ApiError::invalid(
            "a key needs a name that says what it is for",
        ));
    }
    let role = Role::from_request(req.role.as_deref()).map_err(ApiError::invalid)?;
    let scope = crate::access::to_stored(state, req.scope.as_ref()).await?;
    let secret = allot_secrets::random_token("allot_");
    let now = allot_sync::now_ms();
    state
        .store
        .insert_api_key(
            &name,
            &allot_secrets::hash_api_key(&secret),
            role.as_str(),
            scope.as_deref(),
            now,
        )
        .await?;
    let row = state
        .store
        .api_key_by_hash(&allot_secrets::hash_api_key(&secret))
        .await?
        .ok_or_else(|| ApiError::internal("a new key was not found"))?;
    let key = view(&crate::console::token_names(state).await?, row);
    crate::audit::detail(format!(
        "key {}: {}",
        key.name,
        crate::api::accounts::access_words(&key.role, key.scope.as_ref(), false)
    ));
    Ok(NewApiKeyView { key, secret })
}

/// Changes a key's role or scope (only what the body names).
#[utoipa::path(put, path = "/api/v1/api-keys/{id}", tag = "console", request_body = ApiKeyChange, params(("id" = i64, Path)),
    responses((status = 200, body = ApiKeyView), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)), security(("api_key" = [])))]
pub async fn change(
    State(state): State<AppState>,
    Writer(c): Writer,
    Path(id): Path<i64>,
    ApiJson(req): ApiJson<ApiKeyChange>,
) -> Result<Json<ApiKeyView>, ApiError> {
    Ok(Json(change_key(&state, Some(c.key_id), id, req).await?))
}

/// Changes a key's role or scope (shared by the API and the console's Access page); a key
/// cannot lower or scope itself.
pub(crate) async fn change_key(
    state: &AppState,
    by_key: Option<i64>,
    id: i64,
    req: ApiKeyChange,
) -> Result<ApiKeyView, ApiError> {
    let keys = state.store.api_keys().await?;
    let k = keys
        .into_iter()
        .find(|k| k.id == id && k.revoked_at.is_none())
        .ok_or_else(|| ApiError::not_found(format!("no API key {id} that is not revoked")))?;
    let role = match req.role.as_deref() {
        Some(r) => Role::from_request(Some(r)).map_err(ApiError::invalid)?,
        None => Role::stored(&k.role),
    };
    let scope = match &req.scope {
        Some(s) => crate::access::to_stored(state, Some(s)).await?,
        None => k.scope.clone(),
    };
    if by_key == Some(id) && (role != Role::Admin || scope.is_some()) {
        return Err(ApiError::invalid(
            "a key cannot lower or scope itself: use another administrator's key",
        ));
    }
    state
        .store
        .set_api_key_access(id, role.as_str(), scope.as_deref())
        .await?;
    let names = crate::console::token_names(state).await?;
    let row = state
        .store
        .api_keys()
        .await?
        .into_iter()
        .find(|k| k.id == id)
        .ok_or_else(|| ApiError::not_found(format!("no API key {id}")))?;
    let before = view(&names, k);
    let after = view(&names, row);
    crate::audit::detail(format!(
        "key {}: {} → {}",
        after.name,
        crate::api::accounts::access_words(&before.role, before.scope.as_ref(), false),
        crate::api::accounts::access_words(&after.role, after.scope.as_ref(), false)
    ));
    Ok(after)
}

/// Revokes a key: it is refused from now on.
#[utoipa::path(delete, path = "/api/v1/api-keys/{id}", tag = "console", params(("id" = i64, Path), Confirm),
    responses((status = 204), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)), security(("api_key" = [])))]
pub async fn revoke(
    State(state): State<AppState>,
    _a: Writer,
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
