//! `/api/v1/console-accounts`: the people who sign in to the web console (admin or read-only).
//! Passwords are stored as argon2 hashes and never returned.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::auth::Admin;
use crate::error::{ApiError, ApiJson, ErrorBody};
use crate::AppState;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NewAccount {
    /// 1–64 letters, digits, `.`, `_`, `-` or `@`.
    pub username: String,
    /// At least 12 characters.
    pub password: String,
    /// `admin` or `read_only` (default).
    pub role: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AccountView {
    pub id: i64,
    pub username: String,
    pub role: String,
}

/// Adds a console account.
#[utoipa::path(post, path = "/api/v1/console-accounts", tag = "console", request_body = NewAccount,
    responses((status = 201, body = AccountView), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)), security(("api_key" = [])))]
pub async fn add(
    State(state): State<AppState>,
    _a: Admin,
    ApiJson(req): ApiJson<NewAccount>,
) -> Result<(StatusCode, Json<AccountView>), ApiError> {
    let username = req.username.trim().to_owned();
    let ok_name = !username.is_empty()
        && username.len() <= 64
        && username
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-@".contains(c));
    if !ok_name {
        return Err(ApiError::invalid(
            "username must be 1–64 letters, digits, '.', '_', '-' or '@'",
        ));
    }
    if req.password.chars().count() < 12 {
        return Err(ApiError::invalid("password must be at least 12 characters"));
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
    let id = state
        .store
        .insert_account(
            &username,
            &allot_secrets::hash_password(&req.password),
            role,
            allot_sync::now_ms(),
        )
        .await
        .map_err(|e| match e {
            allot_store::StoreError::Conflict(_) => {
                ApiError::conflict(format!("an account {username:?} exists already"))
            }
            e => e.into(),
        })?;
    Ok((
        StatusCode::CREATED,
        Json(AccountView {
            id,
            username,
            role: role.into(),
        }),
    ))
}
