//! `/api/v1/tokens`: content tokens, their state, and their syncs.

use allot_domain::{token_health, HealthInputs, Program};
use allot_store::{SyncRun, TokenRow};
use allot_sync::{AddToken, SyncKind};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::api::{confirmed, Confirm};
use crate::auth::{Caller, Writer};
use crate::error::{ApiError, ApiJson, ErrorBody};
use crate::AppState;

/// A content token as the API shows it. The token itself is never returned.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TokenView {
    pub id: i64,
    pub name: String,
    pub description: String,
    pub categories: Vec<String>,
    pub apple_account: String,
    /// `business` or `education`.
    pub program_type: String,
    pub organization: String,
    pub location: String,
    pub u_id: String,
    /// `healthy`, `syncing`, `stale`, `failing`, `expiring`, `expired`, `revoked`, `claimed_by_other_mdm`.
    pub state: String,
    /// The last error or warning, in words.
    pub last_error: Option<String>,
    pub expires_at: String,
    pub days_to_expiry: i64,
    pub last_update: String,
    pub last_delta_sync: Option<String>,
    pub last_full_sync: Option<String>,
    /// The MDM holding the location, when it is not this Allot.
    pub claimed_by: Option<String>,
    pub sync: Option<SyncProgressView>,
    /// When the schedule next syncs it (RFC 3339) and how (`delta` or `full`); none while it
    /// cannot sync (expired, revoked).
    pub next_sync_at: Option<String>,
    pub next_sync_kind: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SyncProgressView {
    pub run_id: i64,
    pub kind: String,
    pub phase: String,
    pub pages: i64,
    pub pages_total: i64,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SyncRunView {
    pub id: i64,
    pub kind: String,
    pub reason: String,
    /// `running`, `succeeded`, `failed`, `interrupted`.
    pub status: String,
    pub started_at: String,
    pub finished_at: Option<String>,
    pub pages: i64,
    pub assets_changed: i64,
    pub assignments_added: i64,
    pub assignments_removed: i64,
    pub users_changed: i64,
    pub error: Option<String>,
}

use crate::api::rfc3339 as time;

pub(crate) fn run_view(r: SyncRun) -> SyncRunView {
    SyncRunView {
        id: r.id,
        kind: r.kind,
        reason: r.reason,
        status: r.status,
        started_at: time(r.started_at),
        finished_at: r.finished_at.map(time),
        pages: r.pages,
        assets_changed: r.assets_changed,
        assignments_added: r.assignments_added,
        assignments_removed: r.assignments_removed,
        users_changed: r.users_changed,
        error: r.error,
    }
}

/// A token's state (healthy, syncing, expiring, …) from its row and latest run, without the rest
/// of its view: the front page judges every token but shows only those in trouble.
pub(crate) fn health(
    state: &AppState,
    t: &allot_store::TokenBrief,
    latest_status: Option<&str>,
    now: i64,
) -> token_health::TokenState {
    let syncing = state.engine.progress(t.id).is_some()
        || t.lease_until.is_some_and(|u| u > now)
        || latest_status == Some("running");
    token_health::state(&HealthInputs {
        now,
        expires_at: t.expires_at,
        revoked: t.auth_error == Some(9625),
        expired_at_apple: t.auth_error == Some(9621),
        claim: t.claim,
        syncing,
        last_sync_failed: latest_status == Some("failed"),
        last_success: t.last_delta_sync_at.max(t.last_full_sync_at),
        created_at: t.created_at,
        delta_interval_ms: state.engine.config().delta_interval.as_millis() as i64,
    })
}

pub(crate) fn view(state: &AppState, t: TokenRow, latest: Option<&SyncRun>) -> TokenView {
    let now = allot_sync::now_ms();
    let progress = state.engine.progress(t.id);
    let health = health(
        state,
        &allot_store::TokenBrief::from(&t),
        latest.map(|r| r.status.as_str()),
        now,
    );
    let next = allot_sync::next_due(
        &t,
        state.engine.config().delta_interval,
        state.engine.config().full_interval,
        now,
    );
    let claimed_by = t
        .other_mdm
        .as_deref()
        .and_then(|j| serde_json::from_str::<serde_json::Value>(j).ok())
        .and_then(|v| v.get("name").and_then(|n| n.as_str()).map(str::to_owned));
    TokenView {
        id: t.id,
        state: health.as_str().into(),
        name: t.name,
        description: t.description,
        categories: t.categories,
        apple_account: t.apple_account,
        program_type: t.program.as_str().into(),
        organization: t.org_name,
        location: t.location_name,
        u_id: t.uid,
        last_error: t.last_error,
        expires_at: time(t.expires_at),
        days_to_expiry: (t.expires_at - now).div_euclid(86_400_000),
        last_update: time(t.updated_at),
        last_delta_sync: t.last_delta_sync_at.map(time),
        last_full_sync: t.last_full_sync_at.map(time),
        claimed_by,
        next_sync_at: next.map(|(_, at)| time(at.max(now))),
        next_sync_kind: next.map(|(k, _)| k.as_str().to_owned()),
        sync: progress.map(|p| SyncProgressView {
            run_id: p.run_id,
            kind: p.kind,
            phase: p.phase,
            pages: p.pages,
            pages_total: p.pages_total,
        }),
    }
}

/// A token by id, or by name when the path is not a number.
/// A token outside the caller's scope is not found, as if it did not exist.
pub(crate) async fn find(state: &AppState, key: &str) -> Result<TokenRow, ApiError> {
    let mut found = None;
    if let Ok(id) = key.parse::<i64>() {
        found = state.store.token(id).await?;
    }
    if found.is_none() {
        found = state.store.token_by_name(key).await?;
    }
    found
        .filter(|t| crate::access::sees(t.id))
        .ok_or_else(|| ApiError::not_found(format!("no token with id or name {key:?}")))
}

/// Every token the viewer sees, by name, with its state judged from its brief and the status of
/// its latest run.
pub(crate) async fn judged(
    state: &AppState,
) -> Result<Vec<(allot_store::TokenBrief, allot_domain::TokenState)>, ApiError> {
    let briefs = state.store.token_briefs().await?;
    judge(state, briefs).await
}

/// `judged` for the tokens that may be in trouble only (the front page): the store leaves out
/// those that cannot be, so thousands of healthy tokens are not read to find a few.
pub(crate) async fn judged_needing_attention(
    state: &AppState,
) -> Result<Vec<(allot_store::TokenBrief, allot_domain::TokenState)>, ApiError> {
    use allot_domain::token_health::{expiring_before, stale_before};
    let now = allot_sync::now_ms();
    let delta_ms = state.engine.config().delta_interval.as_millis() as i64;
    let briefs = state
        .store
        .token_briefs_needing_attention(expiring_before(now), stale_before(now, delta_ms))
        .await?;
    judge(state, briefs).await
}

async fn judge(
    state: &AppState,
    briefs: Vec<allot_store::TokenBrief>,
) -> Result<Vec<(allot_store::TokenBrief, allot_domain::TokenState)>, ApiError> {
    let statuses = state.store.latest_sync_statuses().await?;
    let now = allot_sync::now_ms();
    Ok(crate::access::filter(briefs, |t| t.id)
        .into_iter()
        .map(|t| {
            let status = statuses.get(&t.id).map(String::as_str);
            let judged = health(state, &t, status, now);
            (t, judged)
        })
        .collect())
}

/// These tokens' views (by name), with their latest runs.
pub(crate) async fn views_of(state: &AppState, ids: &[i64]) -> Result<Vec<TokenView>, ApiError> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let tokens = state.store.tokens_by_ids(ids).await?;
    views_with_runs(state, tokens).await
}

pub(crate) async fn views_with_runs(
    state: &AppState,
    tokens: Vec<allot_store::TokenRow>,
) -> Result<Vec<TokenView>, ApiError> {
    let ids: Vec<i64> = tokens.iter().map(|t| t.id).collect();
    let runs: std::collections::HashMap<i64, allot_store::SyncRun> = state
        .store
        .latest_sync_runs_of(&ids)
        .await?
        .into_iter()
        .map(|r| (r.token_id, r))
        .collect();
    Ok(tokens
        .into_iter()
        .map(|t| {
            let latest = runs.get(&t.id);
            view(state, t, latest)
        })
        .collect())
}

/// The tokens the viewer sees in a state (`""`: any) whose name, organization, location or a
/// category holds `search` (any case), by name: `limit` of them from `offset`, and how many there
/// are; a state that does not exist is refused. Without a state or search the page is read by itself; with one, every token's brief is
/// judged and searched, and only the page's tokens are read in full.
pub(crate) async fn select(
    state: &AppState,
    wanted: &str,
    search: &str,
    limit: i64,
    offset: i64,
) -> Result<(Vec<TokenView>, i64), ApiError> {
    if !wanted.is_empty() && !STATES.contains(&wanted) {
        return Err(ApiError::invalid(format!(
            "state {wanted:?} must be one of {}",
            STATES.join(", ")
        )));
    }
    let needle = search.trim().to_lowercase();
    if needle.is_empty() && wanted.is_empty() {
        let (tokens, total) = state
            .store
            .tokens_page(crate::access::token_ids().as_deref(), limit, offset)
            .await?;
        return Ok((views_with_runs(state, tokens).await?, total));
    }
    let matching: Vec<i64> = judged(state)
        .await?
        .into_iter()
        .filter(|(_, s)| wanted.is_empty() || s.as_str() == wanted)
        .map(|(t, _)| t)
        .filter(|t| {
            needle.is_empty()
                || [
                    &t.name,
                    &t.org_name,
                    &t.location_name,
                    &t.categories.join(", "),
                ]
                .iter()
                .any(|f| f.to_lowercase().contains(&needle))
        })
        .map(|t| t.id)
        .collect();
    let shown: Vec<i64> = matching
        .iter()
        .skip(offset.max(0) as usize)
        .take(limit.max(0) as usize)
        .copied()
        .collect();
    Ok((views_of(state, &shown).await?, matching.len() as i64))
}

#[derive(Serialize, ToSchema)]
pub struct TokenList {
    pub tokens: Vec<TokenView>,
    /// How many tokens match (all of them without `limit`).
    pub total: i64,
}

/// The states a token can be in, as `TokenView::state` and the `state` filter name them.
pub(crate) const STATES: [&str; 8] = [
    "healthy",
    "syncing",
    "stale",
    "failing",
    "expiring",
    "expired",
    "revoked",
    "claimed_by_other_mdm",
];

#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct TokenListQuery {
    /// Only tokens in this state: `healthy`, `syncing`, `stale`, `failing`, `expiring`,
    /// `expired`, `revoked` or `claimed_by_other_mdm`.
    pub state: Option<String>,
    /// Part of a name, organization, location or category, any case.
    pub search: Option<String>,
    /// At most this many, by name (default: every one).
    pub limit: Option<i64>,
    /// Skip this many first.
    pub offset: Option<i64>,
}

/// The content tokens with their state, by name: every one, or those in a state or matching a
/// search, a page at a time with `limit` and `offset` (thousands of tokens).
#[utoipa::path(get, path = "/api/v1/tokens", tag = "tokens", params(TokenListQuery),
    responses((status = 200, body = TokenList), (status = 401, body = ErrorBody), (status = 422, body = ErrorBody)), security(("api_key" = [])))]
pub async fn list(
    State(state): State<AppState>,
    _c: Caller,
    Query(q): Query<TokenListQuery>,
) -> Result<Json<TokenList>, ApiError> {
    let wanted = q.state.as_deref().unwrap_or("").trim();
    let limit = q.limit.unwrap_or(i64::MAX);
    if limit < 1 {
        return Err(ApiError::invalid("limit must be 1 or more"));
    }
    let offset = q.offset.unwrap_or(0);
    if offset < 0 {
        return Err(ApiError::invalid("offset must be 0 or more"));
    }
    let search = q.search.as_deref().unwrap_or("");
    let (tokens, total) = select(&state, wanted, search, limit, offset).await?;
    Ok(Json(TokenList { tokens, total }))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AddTokenRequest {
    pub name: String,
    /// The text of the `.vpptoken` file.
    pub token: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub categories: Vec<String>,
    /// The Apple Account (email) the token belongs to.
    #[serde(default)]
    pub apple_account: String,
    /// `business` or `education`.
    pub program_type: String,
}

/// Adds a content token: decoded, checked with Apple, its location claimed (unless another MDM
/// holds it), and a first full sync started.
#[utoipa::path(post, path = "/api/v1/tokens", tag = "tokens", request_body = AddTokenRequest,
    responses((status = 201, body = TokenView), (status = 409, description = "duplicate name or location", body = ErrorBody),
              (status = 422, description = "malformed, expired or refused token", body = ErrorBody), (status = 502, body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn add(
    State(state): State<AppState>,
    _a: Writer,
    ApiJson(req): ApiJson<AddTokenRequest>,
) -> Result<(StatusCode, Json<TokenView>), ApiError> {
    let program = Program::parse(&req.program_type).ok_or_else(|| {
        ApiError::invalid(format!(
            "programType {:?} must be business or education",
            req.program_type
        ))
    })?;
    let t = state
        .engine
        .add_token(AddToken {
            name: req.name,
            token_text: req.token,
            description: req.description,
            categories: req.categories,
            apple_account: req.apple_account,
            program,
        })
        .await?;
    let id = t.id;
    match state.engine.start_sync(id, SyncKind::Full, "added").await {
        Ok(_) | Err(allot_sync::SyncError::AlreadyRunning) => {}
        Err(e) => tracing::warn!(token = id, error = %e, "first sync did not start"),
    }
    let latest = state.store.latest_sync_run(id).await?;
    Ok((StatusCode::CREATED, Json(view(&state, t, latest.as_ref()))))
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TokenDetail {
    #[serde(flatten)]
    pub token: TokenView,
    pub latest_sync: Option<SyncRunView>,
}

/// One token (by id or name) with its latest sync.
#[utoipa::path(get, path = "/api/v1/tokens/{token}", tag = "tokens", params(("token" = String, Path, description = "id or name")),
    responses((status = 200, body = TokenDetail), (status = 404, body = ErrorBody)), security(("api_key" = [])))]
pub async fn show(
    State(state): State<AppState>,
    _c: Caller,
    Path(key): Path<String>,
) -> Result<Json<TokenDetail>, ApiError> {
    let t = find(&state, &key).await?;
    let latest = state.store.latest_sync_run(t.id).await?;
    let token = view(&state, t, latest.as_ref());
    Ok(Json(TokenDetail {
        token,
        latest_sync: latest.map(run_view),
    }))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RenewRequest {
    /// The text of the new `.vpptoken` file of the same location.
    pub token: String,
}

/// Renews a token with a new file for the same location; all data stays. A delta sync follows.
#[utoipa::path(put, path = "/api/v1/tokens/{token}/file", tag = "tokens", request_body = RenewRequest, params(("token" = String, Path)),
    responses((status = 200, body = TokenView), (status = 422, body = ErrorBody), (status = 404, body = ErrorBody)), security(("api_key" = [])))]
pub async fn renew(
    State(state): State<AppState>,
    _a: Writer,
    Path(key): Path<String>,
    ApiJson(req): ApiJson<RenewRequest>,
) -> Result<Json<TokenView>, ApiError> {
    let t = find(&state, &key).await?;
    let t = state.engine.renew_token(t.id, &req.token).await?;
    let _ = state
        .engine
        .start_sync(t.id, SyncKind::Delta, "renewed")
        .await;
    let latest = state.store.latest_sync_run(t.id).await?;
    Ok(Json(view(&state, t, latest.as_ref())))
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SyncRequest {
    /// `full` (the default: a manual sync is full) or `delta`.
    #[serde(default)]
    pub kind: Option<String>,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SyncStarted {
    pub run_id: i64,
}

/// Starts a sync now.
#[utoipa::path(post, path = "/api/v1/tokens/{token}/sync", tag = "tokens", request_body = SyncRequest, params(("token" = String, Path)),
    responses((status = 202, body = SyncStarted), (status = 409, description = "a sync is running", body = ErrorBody)), security(("api_key" = [])))]
pub async fn sync(
    State(state): State<AppState>,
    _a: Writer,
    Path(key): Path<String>,
    body: axum::body::Bytes,
) -> Result<(StatusCode, Json<SyncStarted>), ApiError> {
    let t = find(&state, &key).await?;
    // The body is optional: none means a full sync.
    let req: SyncRequest = if body.iter().all(u8::is_ascii_whitespace) {
        SyncRequest::default()
    } else {
        serde_json::from_slice(&body)
            .map_err(|e| ApiError::bad_request(format!("the request body is not valid: {e}")))?
    };
    let kind = match req.kind.as_deref() {
        None | Some("full") => SyncKind::Full,
        Some("delta") => SyncKind::Delta,
        Some(other) => {
            return Err(ApiError::invalid(format!(
                "kind {other:?} must be full or delta"
            )))
        }
    };
    let run_id = state.engine.start_sync(t.id, kind, "manual").await?;
    Ok((StatusCode::ACCEPTED, Json(SyncStarted { run_id })))
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SyncStatus {
    pub running: Option<SyncProgressView>,
    pub latest: Option<SyncRunView>,
}

/// The running sync (with progress) and the latest run.
#[utoipa::path(get, path = "/api/v1/tokens/{token}/sync", tag = "tokens", params(("token" = String, Path)),
    responses((status = 200, body = SyncStatus)), security(("api_key" = [])))]
pub async fn sync_status(
    State(state): State<AppState>,
    _c: Caller,
    Path(key): Path<String>,
) -> Result<Json<SyncStatus>, ApiError> {
    let t = find(&state, &key).await?;
    let running = state.engine.progress(t.id).map(|p| SyncProgressView {
        run_id: p.run_id,
        kind: p.kind,
        phase: p.phase,
        pages: p.pages,
        pages_total: p.pages_total,
    });
    let latest = state.store.latest_sync_run(t.id).await?.map(run_view);
    Ok(Json(SyncStatus { running, latest }))
}

/// Takes over a location another MDM holds (our identity replaces theirs at Apple), then syncs.
#[utoipa::path(post, path = "/api/v1/tokens/{token}/takeover", tag = "tokens", params(("token" = String, Path), Confirm),
    responses((status = 200, body = TokenView), (status = 400, body = ErrorBody)), security(("api_key" = [])))]
pub async fn take_over(
    State(state): State<AppState>,
    _a: Writer,
    Path(key): Path<String>,
    Query(c): Query<Confirm>,
) -> Result<Json<TokenView>, ApiError> {
    confirmed(&c, "taking over a location from another MDM")?;
    let t = find(&state, &key).await?;
    let t = state.engine.take_over(t.id).await?;
    let _ = state
        .engine
        .start_sync(t.id, SyncKind::Full, "takeover")
        .await;
    let latest = state.store.latest_sync_run(t.id).await?;
    Ok(Json(view(&state, t, latest.as_ref())))
}

/// Deletes a token and everything synced from it.
#[utoipa::path(delete, path = "/api/v1/tokens/{token}", tag = "tokens", params(("token" = String, Path), Confirm, crate::api::Then),
    responses((status = 204), (status = 202, description = "the deployments using it are ending (then=revoke|uninstall); it goes when they are gone"), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, description = "a sync of the token is running, or deployments use it", body = ErrorBody)), security(("api_key" = [])))]
pub async fn delete(
    State(state): State<AppState>,
    _a: Writer,
    Path(key): Path<String>,
    Query(c): Query<Confirm>,
    Query(then): Query<crate::api::Then>,
) -> Result<StatusCode, ApiError> {
    confirmed(&c, "deleting a token and all data synced from it")?;
    let then = then.ends_deployments()?;
    let t = find(&state, &key).await?;
    if state.engine.progress(t.id).is_some() {
        return Err(ApiError::conflict(
            "a sync of this token is running; delete it when the sync has finished",
        ));
    }
    let users = crate::api::deployments_exec::deployments_using_token(&state, t.id).await?;
    let deferred = crate::api::deployments_exec::end_or_refuse(
        &state,
        &format!("token {:?}", t.name),
        users,
        then,
    )
    .await?;
    if deferred {
        // Deleted by the reconcile loop once the deployments ending now are gone (its token
        // is what gives their licenses back).
        state
            .store
            .mark_token_deleting(t.id, allot_sync::now_ms())
            .await?;
        return Ok(StatusCode::ACCEPTED);
    }
    state.engine.delete_token(t.id).await?;
    Ok(StatusCode::NO_CONTENT)
}
