//! `/api/v1/deployments`: today, the plan a deployment shows before acting.

use allot_deploy::{plan_deployment, Action, DeploymentPlan, PlanError, PlanRequest};
use allot_domain::OnShortage;
use axum::extract::State;
use axum::Json;
use serde::Deserialize;
use utoipa::ToSchema;

use crate::auth::Caller;
use crate::error::{ApiError, ApiJson, ErrorBody};
use crate::AppState;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PlanBody {
    pub adam_id: String,
    /// `STDQ` (default) or `PLUS`.
    pub pricing_param: Option<String>,
    /// Tokens (ids or names) to draw licenses from, in order; default: every token holding the app.
    #[serde(default)]
    pub tokens: Vec<String>,
    /// The collection (id or name).
    pub collection: String,
    /// `required` (default), `available`, `uninstall` or `revoke`.
    pub action: Option<String>,
    /// `fail` (default) or `wait`, when licenses run out.
    pub on_shortage: Option<String>,
    /// Create it even though deployments in force want the opposite for shared targets (the
    /// plan's `overlaps` say which; Uninstall and Revoke own what they share).
    #[serde(default)]
    pub supersede: bool,
    /// What happens to members that leave the collection: `keep` (default: the app and license
    /// stay), `revoke` (the license goes back to Apple) or `uninstall` (the app is removed, then
    /// the license goes back).
    pub on_leave: Option<String>,
    /// How the app is installed (InstallApplication's options); unset ones take the defaults.
    pub options: Option<OptionsBody>,
    /// Declarative app management on the devices that support it (iOS and iPadOS 17.2+, macOS
    /// 26+, device collections): a declaration instead of InstallApplication; the others get
    /// commands. Default false (or `ALLOT_DECLARATIVE`). The same as `options.declarative`.
    pub declarative: Option<bool>,
}

/// InstallApplication's options and automatic updates; defaults as Intune's.
#[derive(Debug, Default, Clone, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct OptionsBody {
    /// Remove the app when the device leaves management (`ManagementFlags` 1; default true).
    pub remove_on_unenroll: Option<bool>,
    /// Do not back up the app's data (`ManagementFlags` 4; default false).
    pub prevent_backup: Option<bool>,
    /// The user may delete the app (`Attributes.Removable`, iOS 14+; default true).
    pub removable: Option<bool>,
    /// Take over an app the user already installed (`ChangeManagementState` Managed; default true).
    pub take_over: Option<bool>,
    /// Send the install again when the store has a newer version than a device reports (default true).
    pub auto_update: Option<bool>,
    /// Declarative app management where devices support it (default false).
    pub declarative: Option<bool>,
}

impl OptionsBody {
    pub(crate) fn resolve(&self) -> allot_domain::InstallOptions {
        let d = allot_domain::InstallOptions::default();
        allot_domain::InstallOptions {
            remove_on_unenroll: self.remove_on_unenroll.unwrap_or(d.remove_on_unenroll),
            prevent_backup: self.prevent_backup.unwrap_or(d.prevent_backup),
            removable: self.removable.unwrap_or(d.removable),
            take_over: self.take_over.unwrap_or(d.take_over),
            auto_update: self.auto_update.unwrap_or(d.auto_update),
            declarative: self.declarative.unwrap_or(d.declarative),
        }
    }
}

/// `keep`, `revoke` or `uninstall`, as a person may write it.
pub(crate) fn on_leave(s: Option<&str>, what: &str) -> Result<allot_domain::OnLeave, ApiError> {
    match s {
        None => Ok(allot_domain::OnLeave::Keep),
        Some(v) => allot_domain::OnLeave::parse(v).ok_or_else(|| {
            ApiError::invalid(format!("{what} {v:?} must be keep, revoke or uninstall"))
        }),
    }
}

/// What a deployment would do: licenses needed, free per token, targets that will claim, wait,
/// fail or need a user. Changes nothing.
#[utoipa::path(post, path = "/api/v1/deployments/plan", tag = "deployments", request_body = PlanBody,
    responses((status = 200, description = "the plan"), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)), security(("api_key" = [])))]
pub async fn plan(
    State(state): State<AppState>,
    _c: Caller,
    ApiJson(body): ApiJson<PlanBody>,
) -> Result<Json<DeploymentPlan>, ApiError> {
    Ok(Json(plan_for(&state, &body).await?))
}

/// The plan of a deployment described by `body` (the API's and the console's).
pub(crate) async fn plan_for(
    state: &AppState,
    body: &PlanBody,
) -> Result<DeploymentPlan, ApiError> {
    let req = plan_request(state, body).await?;
    plan_deployment(&state.store, &req)
        .await
        .map_err(plan_error)
}

pub(crate) fn plan_error(e: PlanError) -> ApiError {
    match e {
        PlanError::Invalid(m) => ApiError::invalid(m),
        PlanError::Store(e) => e.into(),
    }
}

/// Checks and resolves a deployment's description: action, shortage rule, pricing, tokens and
/// collection.
pub(crate) async fn plan_request(
    state: &AppState,
    body: &PlanBody,
) -> Result<PlanRequest, ApiError> {
    let action = match body.action.as_deref() {
        None => Action::Required,
        Some(a) => Action::parse(a).ok_or_else(|| {
            ApiError::invalid(format!(
                "action {a:?} must be required, available, uninstall or revoke"
            ))
        })?,
    };
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
    if pricing != "STDQ" && pricing != "PLUS" {
        return Err(ApiError::invalid("pricingParam must be STDQ or PLUS"));
    }
    let mut tokens = Vec::new();
    for t in &body.tokens {
        tokens.push(crate::api::tokens::find(state, t).await?);
    }
    let adam_id = body.adam_id.trim().to_owned();
    if tokens.is_empty() && crate::access::is_scoped() {
        // "Every usable token" for a scoped identity means every token of its scope.
        let holding = state.store.asset_holdings(&adam_id, &pricing).await?;
        let all = state.store.tokens().await?;
        for (token_id, _) in holding {
            if crate::access::sees(token_id) {
                tokens.extend(all.iter().find(|t| t.id == token_id).cloned());
            }
        }
        if tokens.is_empty() {
            return Err(ApiError::invalid(format!(
                "none of the tokens you work with holds adamId {adam_id} ({pricing})"
            )));
        }
    }
    let collection = crate::api::collections::find(state, &body.collection).await?;
    Ok(PlanRequest {
        adam_id,
        pricing,
        tokens,
        collection,
        action,
        on_shortage,
    })
}
