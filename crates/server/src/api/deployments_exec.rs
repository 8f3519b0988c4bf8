//! `/api/v1/deployments`: create (after checking what this version can execute), list, show with
//! per-target status.

use std::collections::BTreeMap;

use allot_deploy::{plan_deployment, Action, PlanError, PlanRequest};
use allot_domain::OnShortage;
use allot_store::{DeploymentRow, NewDeployment};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::api::deployments::PlanBody;
use crate::auth::{Admin, Caller};
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
    /// Targets per status.
    pub statuses: BTreeMap<String, u64>,
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
        statuses,
    }
}

/// Creates a deployment and starts it. This version executes Required deployments of
/// device-licensed apps to device collections; anything else is refused with the reason.
#[utoipa::path(post, path = "/api/v1/deployments", tag = "deployments", request_body = PlanBody,
    responses((status = 201, body = DeploymentView), (status = 422, body = ErrorBody)), security(("api_key" = [])))]
pub async fn create(
    State(state): State<AppState>,
    _a: Admin,
    ApiJson(body): ApiJson<PlanBody>,
) -> Result<(StatusCode, Json<DeploymentView>), ApiError> {
    let action = body
        .action
        .as_deref()
        .map(|a| {
            Action::parse(a).ok_or_else(|| {
                ApiError::invalid(format!(
                    "action {a:?} must be required, available, uninstall or revoke"
                ))
            })
        })
        .transpose()?
        .unwrap_or(Action::Required);
    if action != Action::Required {
        return Err(ApiError::invalid("this version executes Required deployments; Available, Uninstall and Revoke come later (their plan is available at /api/v1/deployments/plan)"));
    }
    let on_shortage = match body
        .on_shortage
        .as_deref()
        .map(str::to_ascii_lowercase)
        .as_deref()
    {
        None | Some("fail") => OnShortage::Fail,
        Some("wait") => OnShortage::Wait,
        Some(other) => {
            return Err(ApiError::invalid(format!(
                "onShortage {other:?} must be fail or wait"
            )))
        }
    };
    let pricing = body.pricing_param.clone().unwrap_or_else(|| "STDQ".into());
    let mut tokens = Vec::new();
    for t in &body.tokens {
        tokens.push(crate::api::tokens::find(&state, t).await?);
    }
    let collection = crate::api::collections::find(&state, &body.collection).await?;
    let req = PlanRequest {
        adam_id: body.adam_id.trim().to_owned(),
        pricing: pricing.clone(),
        tokens: tokens.clone(),
        collection: collection.clone(),
        action,
        on_shortage,
    };
    let plan = plan_deployment(&state.store, &req)
        .await
        .map_err(|e| match e {
            PlanError::Invalid(m) => ApiError::invalid(m),
            PlanError::Store(e) => e.into(),
        })?;
    if collection.kind != "devices" || plan.license_type != "device" {
        return Err(ApiError::invalid(
            "this version executes deployments that use device licenses only (a device-assignable app to a collection of devices); user licenses need the invitation flow, which comes later",
        ));
    }
    let d = state
        .store
        .insert_deployment(
            &NewDeployment {
                adam_id: req.adam_id,
                pricing,
                token_ids: tokens.iter().map(|t| t.id).collect(),
                collection_id: collection.id,
                action: "required".into(),
                on_shortage: if on_shortage == OnShortage::Wait {
                    "wait"
                } else {
                    "fail"
                }
                .into(),
            },
            allot_sync::now_ms(),
        )
        .await?;
    let executor = state.executor.clone();
    let first = d.clone();
    tokio::spawn(async move {
        if let Err(e) = executor.run(&first).await {
            tracing::warn!(deployment = first.id, error = %e, "first deployment step failed");
        }
    });
    Ok((StatusCode::CREATED, Json(view(d, Vec::new()))))
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
    let mut out = Vec::new();
    for d in state.store.deployments().await? {
        let counts = state.store.target_counts(d.id).await?;
        out.push(view(d, counts));
    }
    Ok(Json(DeploymentList { deployments: out }))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct TargetFilter {
    /// Only targets in this status (`installed`, `failed`, `waiting_for_license`, …).
    pub status: Option<String>,
    /// Targets per page, at most 1000 (default 500).
    pub limit: Option<i64>,
    pub offset: Option<i64>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TargetView {
    /// Serial number.
    pub target: String,
    pub status: String,
    pub license: Option<String>,
    pub token_id: Option<i64>,
    /// What went wrong, in words.
    pub detail: Option<String>,
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
    let d = state
        .store
        .deployment(id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no deployment {id}")))?;
    let limit = f.limit.unwrap_or(500);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::invalid("limit must be between 1 and 1000"));
    }
    let targets = state
        .store
        .targets_page(id, f.status.as_deref(), limit, f.offset.unwrap_or(0).max(0))
        .await?;
    let shown = targets
        .into_iter()
        .map(|t| TargetView {
            target: t.label,
            status: t.status,
            license: t.license,
            token_id: t.token_id,
            detail: t.detail,
        })
        .collect();
    let counts = state.store.target_counts(id).await?;
    Ok(Json(DeploymentDetail {
        deployment: view(d, counts),
        targets: shown,
    }))
}
