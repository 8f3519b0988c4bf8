//! API keys: `Authorization: Bearer <key>`. Keys are stored as SHA-256 hashes; the admin key is
//! made on first run and printed once. Two roles: `admin` (everything) and `read_only`. A revoked
//! key is refused; each key's last use is kept (to the minute).

use axum::extract::FromRequestParts;
use axum::http::{header, request::Parts, StatusCode};

use crate::error::ApiError;
use crate::AppState;

#[derive(Debug, Clone)]
pub struct Caller {
    pub key_id: i64,
    pub key_name: String,
    pub admin: bool,
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let unauthorized = || {
            ApiError::new(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "send an API key as `Authorization: Bearer <key>`",
            )
        };
        let key = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .ok_or_else(unauthorized)?;
        let row = state
            .store
            .api_key_by_hash(&allot_secrets::hash_api_key(key))
            .await?
            .ok_or_else(|| {
                ApiError::new(
                    StatusCode::UNAUTHORIZED,
                    "unauthorized",
                    "this API key is not known: check ALLOT_API_KEY or --api-key",
                )
            })?;
        if row.revoked_at.is_some() {
            return Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "this API key was revoked: ask an administrator for a new one",
            ));
        }
        state
            .store
            .touch_api_key(row.id, allot_sync::now_ms())
            .await?;
        crate::audit::set_actor(format!("API key {}", row.name));
        Ok(Caller {
            key_id: row.id,
            key_name: row.name,
            admin: row.role == "admin",
        })
    }
}

/// A caller allowed to change things.
pub struct Admin(pub Caller);

impl FromRequestParts<AppState> for Admin {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let c = Caller::from_request_parts(parts, state).await?;
        if !c.admin {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "forbidden",
                "this API key is read-only",
            ));
        }
        Ok(Admin(c))
    }
}
