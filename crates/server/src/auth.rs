//! API keys: `Authorization: Bearer <key>`. Keys are stored as SHA-256 hashes; the admin key is
//! made on first run and printed once. Each key has a role (`roles`: admin, operator, viewer),
//! checked here against the route's need before any handler runs, and an optional scope
//! (`access`). A revoked key is refused; each key's last use is kept (to the minute).

use axum::extract::{FromRequestParts, MatchedPath};
use axum::http::{header, request::Parts, StatusCode};

use crate::error::ApiError;
use crate::roles::Role;
use crate::AppState;

#[derive(Debug, Clone)]
pub struct Caller {
    pub key_id: i64,
    pub key_name: String,
    pub role: Role,
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
        let role = Role::stored(&row.role);
        let route = parts
            .extensions
            .get::<MatchedPath>()
            .map(|m| m.as_str().to_owned())
            .unwrap_or_default();
        let need = crate::roles::required(&parts.method, &route);
        if role < need {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "forbidden",
                format!(
                    "this API key ({}) is a {}: it {}; {} {route} needs an {} key",
                    row.name,
                    role.as_str(),
                    role.describe(),
                    parts.method,
                    need.as_str()
                ),
            ));
        }
        if row.scope.is_some() && crate::roles::needs_every_location(&route) {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "forbidden",
                format!(
                    "this API key ({}) is scoped to some tokens; {route} is for administrators of every location",
                    row.name
                ),
            ));
        }
        crate::access::set(crate::access::resolve(state, row.scope.as_deref()).await?);
        crate::audit::set_actor(format!("API key {}", row.name));
        Ok(Caller {
            key_id: row.id,
            key_name: row.name,
            role,
        })
    }
}

/// A caller whose key may change what the route changes: the role table (`roles`) said so when
/// it was extracted — the name says at a glance which handlers change things.
pub struct Writer(pub Caller);

impl FromRequestParts<AppState> for Writer {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let c = Caller::from_request_parts(parts, state).await?;
        if c.role == Role::Viewer {
            // A change route the table left open to viewers would be a mistake in the table.
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "forbidden",
                "this API key is a viewer: it looks at everything and changes nothing",
            ));
        }
        Ok(Writer(c))
    }
}
