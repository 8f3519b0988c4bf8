//! `/api/v1/console-accounts`: the people who sign in to the web console, each with a role
//! (admin, operator, viewer) and an optional scope of tokens. Passwords are stored as argon2
//! hashes and never returned. Managing accounts is for administrators of every location.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::access::ScopeView;
use crate::auth::{Caller, Writer};
use crate::error::{ApiError, ApiJson, ErrorBody};
use crate::roles::Role;
use crate::AppState;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NewAccount {
    /// 1–64 letters, digits, `.`, `_`, `-` or `@`.
    pub username: String,
    /// At least 12 characters.
    pub password: String,
    /// `admin`, `operator` or `viewer` (default; `read_only` is read as `viewer`).
    pub role: Option<String>,
    /// The tokens the account works with; none: every token.
    pub scope: Option<ScopeView>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AccountView {
    pub id: i64,
    pub username: String,
    /// `admin`, `operator` or `viewer`.
    pub role: String,
    /// The tokens it works with; absent: every token.
    pub scope: Option<ScopeView>,
    /// RFC 3339; a disabled account cannot sign in.
    pub disabled_at: Option<String>,
    /// RFC 3339.
    pub last_sign_in_at: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AccountList {
    pub accounts: Vec<AccountView>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AccountChange {
    /// A new role.
    pub role: Option<String>,
    /// A new scope; `{}` (no tokens, no categories): every token.
    pub scope: Option<ScopeView>,
    /// True: it cannot sign in and its sessions end; false: it can again.
    pub disabled: Option<bool>,
    /// A new password (at least 12 characters); its sessions end.
    pub password: Option<String>,
}

pub(crate) fn check_username(username: &str) -> Result<(), ApiError> {
    let ok = !username.is_empty()
        && username.len() <= 64
        && username
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-@".contains(c));
    if ok {
        Ok(())
    } else {
        Err(ApiError::invalid(
            "username must be 1–64 letters, digits, '.', '_', '-' or '@'",
        ))
    }
}

pub(crate) fn check_password(password: &str) -> Result<(), ApiError> {
    if password.chars().count() < 12 {
        return Err(ApiError::invalid("password must be at least 12 characters"));
    }
    Ok(())
}

pub(crate) fn view(names: &TokenNames, a: allot_store::AccountRow) -> AccountView {
    AccountView {
        id: a.id,
        scope: crate::access::view_named(names, a.scope.as_deref()),
        username: a.username,
        role: Role::stored(&a.role).as_str().into(),
        disabled_at: a.disabled_at.map(crate::api::rfc3339),
        last_sign_in_at: a.last_sign_in_at.map(crate::api::rfc3339),
    }
}

type TokenNames = std::collections::HashMap<i64, String>;

/// A role, scope and state in words, for the audit log.
pub(crate) fn access_words(role: &str, scope: Option<&ScopeView>, disabled: bool) -> String {
    format!(
        "{role} of {}{}",
        crate::access::words(scope),
        if disabled { " (disabled)" } else { "" }
    )
}

/// Makes an account (shared by the API and the console's Access page).
pub(crate) async fn create_account(
    state: &AppState,
    req: NewAccount,
) -> Result<AccountView, ApiError> {
    let username = req.username.trim().to_owned();
    check_username(&username)?;
    check_password(&req.password)?;
    let role = Role::from_request(req.role.as_deref()).map_err(ApiError::invalid)?;
    let scope = crate::access::to_stored(state, req.scope.as_ref()).await?;
    let id = state
        .store
        .insert_account(
            &username,
            &allot_secrets::hash_password(&req.password),
            role.as_str(),
            scope.as_deref(),
            allot_sync::now_ms(),
        )
        .await
        .map_err(|e| match e {
            allot_store::StoreError::Conflict(_) => {
                ApiError::conflict(format!("an account {username:?} exists already"))
            }
            e => e.into(),
        })?;
    let row = state
        .store
        .account(id)
        .await?
        .ok_or_else(|| ApiError::internal("a new account was not found"))?;
    let v = view(&crate::console::token_names(state).await?, row);
    crate::audit::detail(format!(
        "account {}: {}",
        v.username,
        access_words(&v.role, v.scope.as_ref(), false)
    ));
    Ok(v)
}

/// Changes an account's role, scope, state or password (shared by the API and the console).
pub(crate) async fn change_account(
    state: &AppState,
    by_account: Option<i64>,
    id: i64,
    req: AccountChange,
) -> Result<AccountView, ApiError> {
    let a = state
        .store
        .account(id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no console account {id}")))?;
    let names = crate::console::token_names(state).await?;
    let before = view(&names, a.clone());
    let role = match req.role.as_deref() {
        Some(r) => Role::from_request(Some(r)).map_err(ApiError::invalid)?,
        None => Role::stored(&a.role),
    };
    let scope = match &req.scope {
        Some(s) => crate::access::to_stored(state, Some(s)).await?,
        None => a.scope.clone(),
    };
    let disabled_at = match req.disabled {
        Some(true) => Some(a.disabled_at.unwrap_or_else(allot_sync::now_ms)),
        Some(false) => None,
        None => a.disabled_at,
    };
    if by_account == Some(id) && (role != Role::Admin || disabled_at.is_some() || scope.is_some()) {
        return Err(ApiError::invalid(
            "an account cannot lower, scope or disable itself: ask another administrator",
        ));
    }
    if let Some(p) = &req.password {
        check_password(p)?;
    }
    state
        .store
        .set_account_access(id, role.as_str(), scope.as_deref(), disabled_at)
        .await?;
    if let Some(p) = &req.password {
        state
            .store
            .set_account_password(id, &allot_secrets::hash_password(p))
            .await?;
    }
    let row = state
        .store
        .account(id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no console account {id}")))?;
    let after = view(&names, row);
    crate::audit::detail(format!(
        "account {}: {} → {}{}",
        after.username,
        access_words(
            &before.role,
            before.scope.as_ref(),
            before.disabled_at.is_some()
        ),
        access_words(
            &after.role,
            after.scope.as_ref(),
            after.disabled_at.is_some()
        ),
        if req.password.is_some() {
            ", password set"
        } else {
            ""
        }
    ));
    Ok(after)
}

/// Adds a console account.
#[utoipa::path(post, path = "/api/v1/console-accounts", tag = "console", request_body = NewAccount,
    responses((status = 201, body = AccountView), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)), security(("api_key" = [])))]
pub async fn add(
    State(state): State<AppState>,
    _a: Writer,
    ApiJson(req): ApiJson<NewAccount>,
) -> Result<(StatusCode, Json<AccountView>), ApiError> {
    Ok((
        StatusCode::CREATED,
        Json(create_account(&state, req).await?),
    ))
}

/// Every console account with its role, scope, state and last sign-in.
#[utoipa::path(get, path = "/api/v1/console-accounts", tag = "console",
    responses((status = 200, body = AccountList)), security(("api_key" = [])))]
pub async fn list(
    State(state): State<AppState>,
    _c: Caller,
) -> Result<Json<AccountList>, ApiError> {
    let names = crate::console::token_names(&state).await?;
    let accounts = state.store.accounts().await?;
    Ok(Json(AccountList {
        accounts: accounts.into_iter().map(|a| view(&names, a)).collect(),
    }))
}

/// Changes an account: role, scope, disabled, password (only what the body names).
#[utoipa::path(put, path = "/api/v1/console-accounts/{id}", tag = "console", request_body = AccountChange, params(("id" = i64, Path)),
    responses((status = 200, body = AccountView), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)), security(("api_key" = [])))]
pub async fn change(
    State(state): State<AppState>,
    _a: Writer,
    Path(id): Path<i64>,
    ApiJson(req): ApiJson<AccountChange>,
) -> Result<Json<AccountView>, ApiError> {
    Ok(Json(change_account(&state, None, id, req).await?))
}
