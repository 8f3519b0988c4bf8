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
        since: r
            .since
            .and_then(chrono::DateTime::from_timestamp_millis)
            .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)),
        deployment_id: r.deployment_id,
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
            None => state.store.tokens().await?,
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
    let rows = state.store.ledger_diff(token.map(|t| t.id), LIMIT).await?;
    Ok(Json(rows.into_iter().map(view).collect()))
}
