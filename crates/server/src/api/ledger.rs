//! `GET /api/v1/ledger/diff`: where Allot's intents and Apple's assignments disagree — licenses
//! Apple holds that no deployment in force serves (`orphan`: the previous MDM's, one made in Apple
//! Business Manager, one whose deployment was deleted), licenses a target gave up or gave back
//! that Apple still holds (`leak`), and targets that say they are licensed with no license at
//! Apple (`missing`; the next step claims them again). Compared with the synced copy of Apple's
//! assignments, which notifications keep current; `refresh=true` runs a full sync of each token
//! first (answered once the syncs end).

use allot_store::LedgerRow;
use allot_sync::SyncKind;
use axum::extract::{Query, State};
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::auth::Caller;
use crate::error::{ApiError, ErrorBody};
use crate::AppState;

#[derive(Debug, Deserialize, IntoParams)]
pub struct DiffQuery {
    /// One token (id or name); default every token.
    pub token: Option<String>,
    /// Re-read the tokens from Apple first (a full sync each).
    pub refresh: Option<bool>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct LedgerRowView {
    /// `orphan`, `leak` or `missing`.
    pub kind: String,
    pub token: String,
    pub adam_id: String,
    pub pricing_param: String,
    /// `device` or `user`.
    pub holder_kind: String,
    /// Serial number or clientUserId.
    pub holder: String,
    pub email: Option<String>,
    /// RFC 3339: when the target last changed (leaks, missing); none for orphans.
    pub since: Option<String>,
    pub deployment_id: Option<i64>,
    /// Who created that deployment (an API key's or a console account's name).
    pub created_by: Option<String>,
    /// Why, in words.
    pub reason: String,
}

/// Rows of each kind at most.
const LIMIT: i64 = 10_000;

fn view(r: LedgerRow) -> LedgerRowView {
    let reason = match r.kind.as_str() {
        "orphan" => "Apple holds this license and no deployment in force serves it".to_owned(),
        "leak" => format!(
            "deployment {} gave this target up, and Apple still holds the license it claimed",
            r.deployment_id.unwrap_or_default()
        ),
        _ => format!(
            "deployment {} says this target is licensed; Apple holds no license for it (the next step claims it again)",
            r.deployment_id.unwrap_or_default()
        ),
    };
    LedgerRowView {
        kind: r.kind,
        token: r.token,
        adam_id: r.adam_id,
        pricing_param: r.pricing_param,
        holder_kind: r.holder_kind,
        holder: r.holder,
        email: r.email,
        since: r.since.map(crate::api::rfc3339),
        deployment_id: r.deployment_id,
        created_by: r.created_by,
        reason,
    }
}

/// The differences between Allot's intents and Apple's assignments.
#[utoipa::path(get, path = "/api/v1/ledger/diff", tag = "deployments", params(DiffQuery),
    responses((status = 200, body = [LedgerRowView]), (status = 404, body = ErrorBody)), security(("api_key" = [])))]
pub async fn diff(
    State(state): State<AppState>,
    _c: Caller,
    q: Result<Query<DiffQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Vec<LedgerRowView>>, ApiError> {
    let Query(q) = q.map_err(|e| ApiError::invalid(e.body_text()))?;
    let token = match q.token.as_deref() {
        Some(key) => Some(crate::api::tokens::find(&state, key).await?),
        None => None,
    };
    if q.refresh == Some(true) {
        let tokens = match &token {
            Some(t) => vec![t.clone()],
            None => crate::access::filter(state.store.tokens().await?, |t| t.id),
        };
        for t in tokens {
            match state.engine.sync(t.id, SyncKind::Full, "ledger").await {
                Ok(_) | Err(allot_sync::SyncError::AlreadyRunning) => {}
                Err(e) => {
                    return Err(ApiError::new(
                        axum::http::StatusCode::BAD_GATEWAY,
                        "apple_unavailable",
                        format!("token {:?} could not be re-read from Apple: {e}", t.name),
                    ))
                }
            }
        }
    }
    let rows = ledger_rows(&state, token.map(|t| t.id), LIMIT).await?;
    Ok(Json(rows.into_iter().map(view).collect()))
}

/// The ledger's rows of one token, or of every token the caller sees (a scoped caller's tokens
/// one by one, so the limit is not spent on rows it may not see).
pub(crate) async fn ledger_rows(
    state: &AppState,
    token_id: Option<i64>,
    limit: i64,
) -> Result<Vec<LedgerRow>, ApiError> {
    match (token_id, crate::access::token_ids()) {
        (Some(id), _) => Ok(state.store.ledger_diff(Some(id), limit).await?),
        (None, None) => Ok(state.store.ledger_diff(None, limit).await?),
        (None, Some(ids)) => {
            let mut rows = Vec::new();
            for id in ids {
                let left = limit - rows.len() as i64;
                if left <= 0 {
                    break;
                }
                rows.extend(state.store.ledger_diff(Some(id), left).await?);
            }
            Ok(rows)
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CleanBody {
    /// `orphan` or `leak`; default both.
    pub kind: Option<String>,
    /// One token (id or name); default every token.
    pub token: Option<String>,
    /// Only say what would be revoked.
    #[serde(default)]
    pub dry_run: bool,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CleanRowView {
    pub kind: String,
    pub token: String,
    pub adam_id: String,
    pub pricing_param: String,
    pub holder_kind: String,
    pub holder: String,
    pub email: Option<String>,
    /// Dry run: `would be revoked`; else `requested` (Apple took the request: its event id is
    /// given) or why not.
    pub outcome: String,
    pub event_id: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CleanResult {
    pub dry_run: bool,
    pub rows: Vec<CleanRowView>,
}

/// Rows revoked by one clean-up at most (run it again for more).
const CLEAN_LIMIT: i64 = 10_000;

/// Gives back to Apple the licenses the diff lists as orphans or leaks (paced, in batches of
/// Apple's limits), and records each with who asked; `dryRun: true` lists them and changes
/// nothing. Without a dry run, `?confirm=true` is needed. Missing licenses are never revoked.
#[utoipa::path(post, path = "/api/v1/ledger/clean", tag = "deployments", request_body = CleanBody, params(crate::api::Confirm),
    responses((status = 200, body = CleanResult), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)), security(("api_key" = [])))]
pub async fn clean(
    State(state): State<AppState>,
    a: crate::auth::Writer,
    Query(c): Query<crate::api::Confirm>,
    crate::error::ApiJson(body): crate::error::ApiJson<CleanBody>,
) -> Result<Json<CleanResult>, ApiError> {
    let kinds: &[&str] = match body.kind.as_deref().map(str::trim) {
        None => &["orphan", "leak"],
        Some("orphan") => &["orphan"],
        Some("leak") => &["leak"],
        Some(other) => {
            return Err(ApiError::invalid(format!(
                "kind {other:?} must be orphan or leak (missing licenses are claimed again, never revoked)"
            )))
        }
    };
    if !body.dry_run {
        crate::api::confirmed(&c, "revoking licenses at Apple")?;
    }
    let token = match body.token.as_deref() {
        Some(key) => Some(crate::api::tokens::find(&state, key).await?),
        None => None,
    };
    let rows: Vec<LedgerRow> = ledger_rows(&state, token.map(|t| t.id), CLEAN_LIMIT)
        .await?
        .into_iter()
        .filter(|r| kinds.contains(&r.kind.as_str()))
        .collect();
    let emails: Vec<Option<String>> = rows.iter().map(|r| r.email.clone()).collect();
    let names: std::collections::HashMap<i64, String> =
        rows.iter().map(|r| (r.token_id, r.token.clone())).collect();
    if body.dry_run {
        return Ok(Json(CleanResult {
            dry_run: true,
            rows: rows
                .into_iter()
                .map(|r| CleanRowView {
                    kind: r.kind,
                    token: r.token,
                    adam_id: r.adam_id,
                    pricing_param: r.pricing_param,
                    holder_kind: r.holder_kind,
                    holder: r.holder,
                    email: r.email,
                    outcome: "would be revoked".into(),
                    event_id: None,
                })
                .collect(),
        }));
    }
    let done =
        allot_deploy::ledger::clean(&state.engine, rows, &format!("API key {}", a.0.key_name))
            .await
            .map_err(ApiError::internal)?;
    Ok(Json(CleanResult {
        dry_run: false,
        rows: done
            .into_iter()
            .zip(emails)
            .map(|(a, email)| CleanRowView {
                token: names.get(&a.token_id).cloned().unwrap_or_default(),
                kind: a.kind,
                adam_id: a.adam_id,
                pricing_param: a.pricing,
                holder_kind: a.holder_kind,
                holder: a.holder,
                email,
                outcome: a.outcome,
                event_id: a.event_id,
            })
            .collect(),
    }))
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct LedgerActionView {
    /// RFC 3339.
    pub at: String,
    pub actor: String,
    pub kind: String,
    pub token_id: i64,
    pub adam_id: String,
    pub pricing_param: String,
    pub holder_kind: String,
    pub holder: String,
    pub event_id: Option<String>,
    pub outcome: String,
}

/// What ledger clean-ups asked of Apple, newest first (the last 1,000).
#[utoipa::path(get, path = "/api/v1/ledger/actions", tag = "deployments",
    responses((status = 200, body = [LedgerActionView])), security(("api_key" = [])))]
pub async fn actions(
    State(state): State<AppState>,
    _c: Caller,
) -> Result<Json<Vec<LedgerActionView>>, ApiError> {
    Ok(Json(
        crate::access::filter(state.store.ledger_actions(1000).await?, |a| a.token_id)
            .into_iter()
            .map(|a| LedgerActionView {
                at: crate::api::rfc3339(a.at),
                actor: a.actor,
                kind: a.kind,
                token_id: a.token_id,
                adam_id: a.adam_id,
                pricing_param: a.pricing,
                holder_kind: a.holder_kind,
                holder: a.holder,
                event_id: a.event_id,
                outcome: a.outcome,
            })
            .collect(),
    ))
}
