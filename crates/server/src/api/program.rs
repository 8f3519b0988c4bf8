//! A user and their standing in the Apps and Books program, per location: the "VPP terms status"
//! (invited / accepted / retired), the invitation link, and resending the invitation.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde::Serialize;
use utoipa::ToSchema;

use crate::api::inventory::{find_person, UserView};
use crate::auth::{Caller, Writer};
use crate::error::{ApiError, ErrorBody};
use crate::AppState;

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ProgramStatus {
    pub token_id: i64,
    pub token: String,
    /// Apple's status: Registered, Associated, Retired or Deleted.
    pub apple_status: String,
    /// In words: `invited`, `accepted` or `retired`.
    pub terms: String,
    /// The link that lets the user join (while invited).
    pub invitation_url: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct UserDetail {
    #[serde(flatten)]
    pub user: UserView,
    /// One entry per location that knows the user.
    pub program: Vec<ProgramStatus>,
}

/// Apple's user status as the VPP terms status people know.
pub(crate) fn terms(apple_status: &str) -> &'static str {
    match apple_status {
        "Registered" => "invited",
        "Associated" => "accepted",
        _ => "retired",
    }
}

/// A user, with their VPP terms status on every location that knows them.
#[utoipa::path(get, path = "/api/v1/users/{user}", tag = "inventory", params(("user" = String, Path, description = "id or email")),
    responses((status = 200, body = UserDetail), (status = 404, body = ErrorBody)), security(("api_key" = [])))]
pub async fn show_user(
    State(state): State<AppState>,
    _c: Caller,
    Path(key): Path<String>,
) -> Result<Json<UserDetail>, ApiError> {
    let p = find_person(&state, &key).await?;
    let mut program = Vec::new();
    let records = crate::access::filter(
        state.store.apple_user_records(&p.client_user_id).await?,
        |(token_id, _)| *token_id,
    );
    for (token_id, u) in records {
        let Some(token) = state.store.token(token_id).await? else {
            continue;
        };
        let invitation_url = match (&u.invite_code, u.status.as_str()) {
            (Some(code), "Registered") => state.engine.apple().invitation_url(code).await.ok(),
            _ => None,
        };
        program.push(ProgramStatus {
            token_id,
            token: token.name,
            terms: terms(&u.status).into(),
            apple_status: u.status,
            invitation_url,
        });
    }
    Ok(Json(UserDetail {
        user: p.into(),
        program,
    }))
}

/// Sends the invitation again to the user's devices (for every deployment waiting on them).
#[utoipa::path(post, path = "/api/v1/users/{user}/invitation", tag = "inventory", params(("user" = String, Path, description = "id or email")),
    responses((status = 202), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)), security(("api_key" = [])))]
pub async fn resend_invitation(
    State(state): State<AppState>,
    _a: Writer,
    Path(key): Path<String>,
) -> Result<StatusCode, ApiError> {
    let p = find_person(&state, &key).await?;
    let n = state
        .store
        .resend_invitation(&p.client_user_id, allot_sync::now_ms())
        .await?;
    if n == 0 {
        return Err(ApiError::conflict(format!(
            "{} has no invitation waiting: they have joined, or no deployment needs a user license for them yet",
            p.name
        )));
    }
    Ok(StatusCode::ACCEPTED)
}

#[derive(Serialize, ToSchema)]
pub struct Resent {
    /// How many waiting invitations go out again.
    pub resent: u64,
}

/// Every invitation still waiting goes out again to the people's devices (the users list's bulk
/// action): for after a push outage, or a reminder before term starts.
#[utoipa::path(post, path = "/api/v1/invitations/resend", tag = "inventory",
    responses((status = 200, body = Resent)), security(("api_key" = [])))]
pub async fn resend_all(
    State(state): State<AppState>,
    _a: Writer,
) -> Result<Json<Resent>, ApiError> {
    let resent = state
        .store
        .resend_all_invitations(allot_sync::now_ms())
        .await?;
    state.executor.wake();
    Ok(Json(Resent { resent }))
}
