//! `/api/v1/deployments`: create (the plan is checked first), list, show with per-target status,
//! delete, and a user's request for an Available app.

use std::collections::BTreeMap;

use allot_deploy::{plan_deployment, Action};
use allot_domain::OnShortage;
use allot_store::{DeploymentRow, NewDeployment};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::api::deployments::PlanBody;
use crate::auth::{Caller, Writer};
use crate::error::{ApiError, ApiJson, ErrorBody};
use crate::AppState;

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DeploymentView {
    pub id: i64,
    pub adam_id: String,
    pub pricing_param: String,
    pub collection_id: i64,
    pub token_ids: Vec<i64>,
    pub action: String,
    pub on_shortage: String,
    /// `keep`, `revoke` or `uninstall`: what happens to members that leave the collection.
    pub on_leave: String,
    pub options: OptionsView,
    /// Who created it: `API key NAME` or `console account NAME`.
    pub created_by: Option<String>,
    /// RFC 3339.
    pub created_at: String,
    /// Set when the deployment was deleted with `then` revoke or uninstall: it is no longer in
    /// force and goes once it has given back what it holds.
    pub ending: Option<String>,
    /// Targets per status.
    pub statuses: BTreeMap<String, u64>,
}

/// How the app is installed.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct OptionsView {
    pub remove_on_unenroll: bool,
    pub prevent_backup: bool,
    pub removable: bool,
    pub take_over: bool,
    pub auto_update: bool,
    /// Declarative app management where devices support it (this deployment's choice; the
    /// server's `ALLOT_DECLARATIVE` turns it on for all).
    pub declarative: bool,
}

fn view(d: DeploymentRow, counts: Vec<(String, i64)>) -> DeploymentView {
    let statuses: BTreeMap<String, u64> = counts
        .into_iter()
        .map(|(s, n)| (s, n.max(0) as u64))
        .collect();
    DeploymentView {
        id: d.id,
        adam_id: d.adam_id,
        pricing_param: d.pricing,
        collection_id: d.collection_id,
        token_ids: d.token_ids,
        action: d.action,
        on_shortage: d.on_shortage,
        on_leave: d.on_leave,
        options: OptionsView {
            remove_on_unenroll: d.options.remove_on_unenroll,
            prevent_backup: d.options.prevent_backup,
            removable: d.options.removable,
            take_over: d.options.take_over,
            auto_update: d.options.auto_update,
            declarative: d.options.declarative,
        },
        created_by: d.created_by,
        created_at: rfc3339(d.created_at),
        ending: d.ending,
        statuses,
    }
}

/// Creates a deployment and starts it: Required (install), Available (the license is claimed when
/// the user asks), Uninstall (remove, then give the license back) or Revoke (give it back).
#[utoipa::path(post, path = "/api/v1/deployments", tag = "deployments", request_body = PlanBody,
    responses((status = 201, body = DeploymentView), (status = 409, description = "an identical deployment exists, or one in force contradicts it (send supersede: true)", body = ErrorBody), (status = 422, body = ErrorBody)), security(("api_key" = [])))]
pub async fn create(
    State(state): State<AppState>,
    a: Writer,
    ApiJson(body): ApiJson<PlanBody>,
) -> Result<(StatusCode, Json<DeploymentView>), ApiError> {
    let d = create_deployment(&state, &body, &format!("API key {}", a.0.key_name)).await?;
    Ok((StatusCode::CREATED, Json(view(d, Vec::new()))))
}

/// Creates a deployment (its plan refuses what cannot run) and starts its first step.
pub(crate) async fn create_deployment(
    state: &AppState,
    body: &PlanBody,
    created_by: &str,
) -> Result<DeploymentRow, ApiError> {
    let req = crate::api::deployments::plan_request(state, body).await?;
    let on_leave = crate::api::deployments::on_leave(body.on_leave.as_deref(), "onLeave")?;
    let mut options = body.options.clone().unwrap_or_default().resolve();
    if let Some(declarative) = body.declarative {
        options.declarative = declarative;
    }
    let plan = plan_deployment(&state.store, &req)
        .await
        .map_err(crate::api::deployments::plan_error)?;
    refuse_conflicts(&plan.overlaps, body.supersede)?;
    let d = state
        .store
        .insert_deployment(
            &NewDeployment {
                adam_id: req.adam_id.clone(),
                pricing: req.pricing.clone(),
                token_ids: req.tokens.iter().map(|t| t.id).collect(),
                collection_id: req.collection.id,
                action: req.action.as_str().into(),
                on_shortage: if req.on_shortage == OnShortage::Wait {
                    "wait"
                } else {
                    "fail"
                }
                .into(),
                on_leave: on_leave.as_str().into(),
                options,
                created_by: Some(created_by.to_owned()),
            },
            allot_sync::now_ms(),
        )
        .await?;
    crate::audit::detail(format!(
        "deployment {}: {} adamId {} ({}) to collection {:?}, tokens {}, when short {}, on leave {}",
        d.id,
        d.action,
        d.adam_id,
        d.pricing,
        req.collection.name,
        if req.tokens.is_empty() {
            "any".to_owned()
        } else {
            req.tokens
                .iter()
                .map(|t| t.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        },
        d.on_shortage,
        d.on_leave
    ));
    let executor = state.executor.clone();
    let first = d.clone();
    tokio::spawn(async move {
        if let Err(e) = executor.run(&first).await {
            tracing::warn!(deployment = first.id, error = %e, "first deployment step failed");
        }
    });
    Ok(d)
}

/// Deployments that a token or a collection being deleted would leave unable to finish: those
/// drawing from the token by name or holding its content only there, or targeting the
/// collection. `then` keep: they are deleted first (their licenses stay, as with any delete);
/// revoke or uninstall: they end (giving back what they hold) and the caller defers its delete
/// until they are gone — `Ok(true)`; no choice: the delete is refused, naming them.
pub(crate) async fn end_or_refuse(
    state: &AppState,
    what: &str,
    users: Vec<DeploymentRow>,
    then: Option<allot_domain::OnLeave>,
) -> Result<bool, ApiError> {
    if users.is_empty() {
        return Ok(false);
    }
    let Some(then) = then else {
        let ids: Vec<String> = users.iter().map(|d| d.id.to_string()).collect();
        return Err(ApiError::conflict(format!(
            "{what} is used by deployment{} {}: delete {} first, or add ?then=keep to delete {} with it (licenses already assigned stay), or ?then=revoke or ?then=uninstall to give their licenses back first",
            if ids.len() == 1 { "" } else { "s" },
            ids.join(", "),
            if ids.len() == 1 { "it" } else { "them" },
            if ids.len() == 1 { "it" } else { "them" },
        )));
    };
    if then != allot_domain::OnLeave::Keep {
        for d in users {
            end_deployment(state, d.id, then).await?;
        }
        return Ok(true);
    }
    for d in users {
        if !state.store.delete_deployment(d.id).await? {
            return Err(ApiError::conflict(format!(
                "deployment {} has a request to Apple in flight; try again in a minute",
                d.id
            )));
        }
    }
    Ok(false)
}

/// The deployments using a token: named in their token list, or drawing from every token while
/// only this one holds the content.
pub(crate) async fn deployments_using_token(
    state: &AppState,
    token_id: i64,
) -> Result<Vec<DeploymentRow>, ApiError> {
    let mut out = Vec::new();
    // Whether only this token holds a content: one lookup per content, not per deployment.
    let mut only_here: std::collections::HashMap<(String, String), bool> = Default::default();
    for d in state.store.deployments().await? {
        let uses = if d.token_ids.is_empty() {
            let key = (d.adam_id.clone(), d.pricing.clone());
            match only_here.get(&key) {
                Some(v) => *v,
                None => {
                    let holders = state.store.asset_holdings(&d.adam_id, &d.pricing).await?;
                    let v = holders.len() == 1 && holders[0].0 == token_id;
                    only_here.insert(key, v);
                    v
                }
            }
        } else {
            d.token_ids.contains(&token_id)
        };
        if uses {
            out.push(d);
        }
    }
    Ok(out)
}

use crate::api::rfc3339;

/// One intent per content and target: an identical deployment is refused, and one that wants the
/// opposite of deployments in force for shared targets is refused unless asked for explicitly.
fn refuse_conflicts(
    overlaps: &[allot_deploy::plan::Overlap],
    supersede: bool,
) -> Result<(), ApiError> {
    if let Some(same) = overlaps.iter().find(|o| o.identical) {
        return Err(ApiError::conflict(format!(
            "deployment {} already does this ({} of this content to this collection)",
            same.deployment_id, same.action
        )));
    }
    let against: Vec<String> = overlaps
        .iter()
        .filter(|o| o.contradicts)
        .map(|o| {
            format!(
                "deployment {} ({}, {} shared target{}, owned by {})",
                o.deployment_id,
                o.action,
                o.shared_targets,
                if o.shared_targets == 1 { "" } else { "s" },
                if o.owner == "new" { "this one" } else { "it" }
            )
        })
        .collect();
    if !against.is_empty() && !supersede {
        return Err(ApiError::conflict(format!(
            "this contradicts {}: send supersede: true (CLI --supersede) to create it anyway",
            against.join(", ")
        )));
    }
    Ok(())
}

/// The ids of the deployments the caller sees (its scope's; every one unscoped).
pub(crate) async fn visible_ids(
    state: &AppState,
) -> Result<std::collections::HashSet<i64>, ApiError> {
    Ok(state
        .store
        .deployments()
        .await?
        .into_iter()
        .filter(|d| crate::access::sees_all(&d.token_ids))
        .map(|d| d.id)
        .collect())
}

/// A deployment by id; one drawing from tokens outside the caller's scope is not found.
pub(crate) async fn find_deployment(state: &AppState, id: i64) -> Result<DeploymentRow, ApiError> {
    state
        .store
        .deployment(id)
        .await?
        .filter(|d| crate::access::sees_all(&d.token_ids))
        .ok_or_else(|| ApiError::not_found(format!("no deployment {id}")))
}

#[derive(Serialize, ToSchema)]
pub struct DeploymentList {
    pub deployments: Vec<DeploymentView>,
}

#[utoipa::path(get, path = "/api/v1/deployments", tag = "deployments", responses((status = 200, body = DeploymentList)), security(("api_key" = [])))]
pub async fn list(
    State(state): State<AppState>,
    _c: Caller,
) -> Result<Json<DeploymentList>, ApiError> {
    let deployments = state.store.deployments().await?;
    let mut counts = state.store.all_target_counts().await?;
    let out = deployments
        .into_iter()
        .filter(|d| crate::access::sees_all(&d.token_ids))
        .map(|d| {
            let c = counts.remove(&d.id).unwrap_or_default();
            view(d, c)
        })
        .collect();
    Ok(Json(DeploymentList { deployments: out }))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct TargetFilter {
    /// Only targets in this status: pending, available, requested, waiting_for_license,
    /// needs_user, invitation_pending, license_requested, license_assigned, install_sent,
    /// installing, installed, failed, remove_sent, release_pending, license_releasing,
    /// uninstalled, license_reclaimed, no_license.
    pub status: Option<String>,
    /// Targets per page, at most 1000 (default 500).
    pub limit: Option<i64>,
    pub offset: Option<i64>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TargetView {
    /// Serial number (devices), or email or name (users).
    pub target: String,
    pub status: String,
    /// `device` or `user`.
    pub license: Option<String>,
    /// The serial number or clientUserId holding the license.
    pub holder: Option<String>,
    pub token_id: Option<i64>,
    /// What went wrong, in words.
    pub detail: Option<String>,
    /// When `superseded`: the deployment that owns this target.
    pub superseded_by: Option<i64>,
    /// RFC 3339: when Apple (the license) or the device (the install) last confirmed the status;
    /// none when nothing outside Allot has yet.
    pub confirmed_at: Option<String>,
    /// Delivered by a declaration (declarative app management) rather than MDM commands; its
    /// status then comes from the device's status reports.
    pub declarative: bool,
}

#[derive(Serialize, ToSchema)]
pub struct DeploymentDetail {
    #[serde(flatten)]
    pub deployment: DeploymentView,
    pub targets: Vec<TargetView>,
}

#[utoipa::path(get, path = "/api/v1/deployments/{id}", tag = "deployments", params(("id" = i64, Path), TargetFilter),
    responses((status = 200, body = DeploymentDetail), (status = 404, body = ErrorBody)), security(("api_key" = [])))]
pub async fn show(
    State(state): State<AppState>,
    _c: Caller,
    Path(id): Path<i64>,
    f: Result<Query<TargetFilter>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<DeploymentDetail>, ApiError> {
    let Query(f) = f.map_err(|e| ApiError::invalid(e.body_text()))?;
    if let Some(s) = f.status.as_deref() {
        if !allot_deploy::status::ALL.contains(&s) {
            return Err(ApiError::invalid(format!(
                "status {s:?} is not a target status; use one of {}",
                allot_deploy::status::ALL.join(", ")
            )));
        }
    }
    let d = find_deployment(&state, id).await?;
    let limit = f.limit.unwrap_or(500);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::invalid("limit must be between 1 and 1000"));
    }
    // Counts first: the targets read after them are at least as new (the two reads are not one
    // snapshot, and a target finishing in between must not show as finished but not yet moved).
    let counts = state.store.target_counts(id).await?;
    let targets = state
        .store
        .targets_page(id, f.status.as_deref(), limit, f.offset.unwrap_or(0).max(0))
        .await?;
    let shown = targets
        .into_iter()
        .map(|t| TargetView {
            target: t.label,
            status: t.status.clone(),
            license: t.license,
            holder: t.holder,
            token_id: t.token_id,
            detail: match (t.status.as_str(), t.superseded_by) {
                ("superseded", Some(owner)) => Some(format!(
                    "deployment {owner} owns this target; this deployment leaves it alone"
                )),
                _ => t.detail,
            },
            superseded_by: t.superseded_by,
            confirmed_at: t.confirmed_at.map(rfc3339),
            declarative: t.declarative,
        })
        .collect();
    Ok(Json(DeploymentDetail {
        deployment: view(d, counts),
        targets: shown,
    }))
}

/// Deletes a deployment. `then=keep` (default): its targets go now and the licenses it assigned
/// stay (refused while a request to Apple is in flight); `then=revoke` or `then=uninstall`: it is
/// no longer in force at once and stays, listed with `ending`, until it has given back (and
/// removed) what it holds and no other deployment wants; then it goes.
#[utoipa::path(delete, path = "/api/v1/deployments/{id}", tag = "deployments", params(("id" = i64, Path), crate::api::Confirm, crate::api::ThenDeployment),
    responses((status = 204, description = "deleted"), (status = 202, description = "ending: giving back what it holds", body = DeploymentView), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)), security(("api_key" = [])))]
pub async fn delete(
    State(state): State<AppState>,
    _a: Writer,
    Path(id): Path<i64>,
    Query(c): Query<crate::api::Confirm>,
    Query(then): Query<crate::api::ThenDeployment>,
) -> Result<axum::response::Response, ApiError> {
    use axum::response::IntoResponse;
    crate::api::confirmed(&c, "deleting a deployment")?;
    let then = crate::api::deployments::on_leave(then.then.as_deref(), "then")?;
    match end_deployment(&state, id, then).await? {
        None => Ok(StatusCode::NO_CONTENT.into_response()),
        Some(d) => {
            let counts = state.store.target_counts(d.id).await?;
            Ok((StatusCode::ACCEPTED, Json(view(d, counts))).into_response())
        }
    }
}

/// Deletes (keep) or ends (revoke, uninstall) a deployment, for the API and the console: the
/// ending deployment when it stays to give back what it holds.
pub(crate) async fn end_deployment(
    state: &AppState,
    id: i64,
    then: allot_domain::OnLeave,
) -> Result<Option<DeploymentRow>, ApiError> {
    let d = find_deployment(state, id).await?;
    crate::audit::detail(format!(
        "deployment {id} ({} adamId {}) ended, then {}",
        d.action,
        d.adam_id,
        then.as_str()
    ));
    if then == allot_domain::OnLeave::Keep {
        if !state.store.delete_deployment(id).await? {
            return Err(ApiError::conflict(
                "licenses are being requested or given back at Apple for this deployment; try again in a minute",
            ));
        }
        return Ok(None);
    }
    if let Some(already) = &d.ending {
        if already != then.as_str() {
            return Err(ApiError::conflict(format!(
                "deployment {id} is already ending with then={already}"
            )));
        }
    } else {
        state.store.end_deployment(id, then.as_str()).await?;
    }
    let ending = state.store.deployment(id).await?;
    if let Some(d) = ending.clone() {
        let executor = state.executor.clone();
        tokio::spawn(async move {
            if let Err(e) = executor.run(&d).await {
                tracing::warn!(deployment = d.id, error = %e, "deployment step failed");
            }
        });
    }
    Ok(ending)
}

#[derive(Serialize, ToSchema)]
pub struct Retried {
    /// How many failed targets start again.
    pub retried: u64,
}

/// Failed targets start again: the next pass claims, installs, removes or gives back as the
/// deployment's action says (an app the device could not install is sent again, a license Apple
/// refused is asked for again).
#[utoipa::path(post, path = "/api/v1/deployments/{id}/retry", tag = "deployments", params(("id" = i64, Path)),
    responses((status = 200, body = Retried), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)), security(("api_key" = [])))]
pub async fn retry(
    State(state): State<AppState>,
    _a: Writer,
    Path(id): Path<i64>,
) -> Result<Json<Retried>, ApiError> {
    Ok(Json(Retried {
        retried: retry_failed(&state, id).await?,
    }))
}

pub(crate) async fn retry_failed(state: &AppState, id: i64) -> Result<u64, ApiError> {
    let d = find_deployment(state, id).await?;
    if d.ending.is_some() {
        return Err(ApiError::conflict(format!(
            "deployment {id} is ending: it only gives back what it holds"
        )));
    }
    let n = state
        .store
        .retry_failed_targets(id, allot_sync::now_ms())
        .await?;
    state.executor.wake();
    Ok(n)
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct InstallRequest {
    /// The target asking: a device's serial number, or a user's email (or name).
    pub target: String,
}

/// A user asks for an app of an Available deployment: its license is claimed and it is installed.
#[utoipa::path(post, path = "/api/v1/deployments/{id}/requests", tag = "deployments", params(("id" = i64, Path)), request_body = InstallRequest,
    responses((status = 202, body = TargetView), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)), security(("api_key" = [])))]
pub async fn request(
    State(state): State<AppState>,
    _a: Writer,
    Path(id): Path<i64>,
    ApiJson(body): ApiJson<InstallRequest>,
) -> Result<(StatusCode, Json<TargetView>), ApiError> {
    let d = find_deployment(&state, id).await?;
    if d.action != Action::Available.as_str() {
        return Err(ApiError::conflict(format!(
            "deployment {id} is {}, not available: its targets need not ask",
            d.action
        )));
    }
    let mut t = state
        .store
        .target_by_label(id, body.target.trim())
        .await?
        .ok_or_else(|| {
            ApiError::not_found(format!(
                "{:?} is not a target of deployment {id} (yet: new members join at the next step)",
                body.target
            ))
        })?;
    if t.status == allot_deploy::status::AVAILABLE {
        t.status = allot_deploy::status::REQUESTED.into();
        t.detail = Some("asked for by the user".into());
        state
            .store
            .update_target_from(&t, &[allot_deploy::status::AVAILABLE], allot_sync::now_ms())
            .await?;
        let executor = state.executor.clone();
        tokio::spawn(async move {
            if let Err(e) = executor.run(&d).await {
                tracing::warn!(deployment = d.id, error = %e, "deployment step failed");
            }
        });
    }
    Ok((
        StatusCode::ACCEPTED,
        Json(TargetView {
            target: t.label,
            status: t.status,
            license: t.license,
            holder: t.holder,
            token_id: t.token_id,
            detail: t.detail,
            superseded_by: t.superseded_by,
            confirmed_at: t.confirmed_at.map(rfc3339),
            declarative: t.declarative,
        }),
    ))
}
