//! Deployments in the console: the list, the plan shown before confirming, the detail with its
//! per-status breakdown and live targets, and Uninstall / Revoke / Delete.

use std::collections::HashMap;

#[allow(unused_imports)]
use super::Labels as _;
use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::Form;
use serde::Deserialize;

use super::format::{self, Pager};
use super::{back, render, Chrome, Notice, PageError, PageResult, Viewer};
use crate::api::deployments::{plan_for, PlanBody};
use crate::api::deployments_exec::create_deployment;
use crate::AppState;

const PER_PAGE: i64 = 100;

use allot_deploy::status::MOVING;

/// An app's name, or its adamId when its metadata is not known yet.
pub(crate) async fn app_name(state: &AppState, adam: &str) -> Result<String, PageError> {
    Ok(state
        .store
        .metadata(adam)
        .await?
        .map(|m| m.name)
        .unwrap_or_else(|| format!("adamId {adam}")))
}

pub(crate) struct DeploymentLine {
    id: i64,
    app: String,
    collection: String,
    action: String,
    on_shortage: String,
    statuses: Vec<(String, i64)>,
    created: String,
}

#[derive(Template)]
#[template(path = "deployments.html")]
struct DeploymentsPage {
    chrome: Chrome,
    rows: Vec<DeploymentLine>,
}

pub(crate) async fn page(
    State(state): State<AppState>,
    viewer: Viewer,
    Query(n): Query<Notice>,
) -> PageResult {
    let collections: HashMap<i64, String> = state
        .store
        .collections()
        .await?
        .into_iter()
        .map(|c| (c.id, c.name))
        .collect();
    let mut rows = Vec::new();
    let mut counts = state.store.all_target_counts().await?;
    let all = state.store.deployments().await?;
    for d in all
        .into_iter()
        .rev()
        .filter(|d| crate::access::sees_all(&d.token_ids))
    {
        rows.push(DeploymentLine {
            id: d.id,
            app: app_name(&state, &d.adam_id).await?,
            collection: collections
                .get(&d.collection_id)
                .cloned()
                .unwrap_or_else(|| format!("collection {}", d.collection_id)),
            statuses: counts.remove(&d.id).unwrap_or_default(),
            action: d.action,
            on_shortage: d.on_shortage,
            created: format::time(d.created_at),
        });
    }
    Ok(render(&DeploymentsPage {
        chrome: viewer.chrome("deployments", n.take()),
        rows,
    }))
}

/// A deployment as its forms describe it.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct DeployForm {
    csrf: String,
    adam_id: String,
    #[serde(default)]
    pricing: String,
    /// One token's id, or empty for every token holding the app.
    #[serde(default)]
    token: String,
    collection: String,
    #[serde(default)]
    action: String,
    #[serde(default)]
    on_shortage: String,
    /// `true` when the admin confirmed taking over targets that deployments in force contradict.
    #[serde(default)]
    supersede: String,
    /// keep, revoke or uninstall.
    #[serde(default)]
    on_leave: String,
    /// Install options that differ from the defaults, as checkboxes (`true` when ticked).
    #[serde(default)]
    keep_on_unenroll: String,
    #[serde(default)]
    prevent_backup: String,
    #[serde(default)]
    not_removable: String,
    #[serde(default)]
    no_take_over: String,
    #[serde(default)]
    no_auto_update: String,
    /// `true`: declarative app management where the devices support it.
    #[serde(default)]
    declarative: String,
    /// The app page's token order: `token_1`, `token_2`, … (a token's id each, empty for none).
    #[serde(flatten)]
    order: HashMap<String, String>,
}

impl DeployForm {
    /// The tokens to draw from, in order: `token` (ids separated by commas, as the plan passes
    /// them on) or the app page's `token_N` choices, each token once.
    fn token_order(&self) -> Vec<String> {
        let mut ranked: Vec<(u32, String)> = if self.token.trim().is_empty() {
            self.order
                .iter()
                .filter_map(|(k, v)| {
                    let n = k.strip_prefix("token_")?.parse::<u32>().ok()?;
                    Some((n, v.trim().to_owned()))
                })
                .collect()
        } else {
            (0..)
                .zip(self.token.split(',').map(|t| t.trim().to_owned()))
                .collect()
        };
        ranked.sort();
        let mut out: Vec<String> = Vec::new();
        for (_, t) in ranked {
            if !t.is_empty() && !out.contains(&t) {
                out.push(t);
            }
        }
        out
    }

    fn body(&self) -> PlanBody {
        let opt = |s: &str| (!s.trim().is_empty()).then(|| s.trim().to_owned());
        PlanBody {
            adam_id: self.adam_id.clone(),
            pricing_param: opt(&self.pricing),
            tokens: self.token_order(),
            collection: self.collection.clone(),
            action: opt(&self.action),
            on_shortage: opt(&self.on_shortage),
            supersede: self.supersede == "true",
            on_leave: opt(&self.on_leave),
            options: Some(crate::api::deployments::OptionsBody {
                remove_on_unenroll: Some(self.keep_on_unenroll != "true"),
                prevent_backup: Some(self.prevent_backup == "true"),
                removable: Some(self.not_removable != "true"),
                take_over: Some(self.no_take_over != "true"),
                auto_update: Some(self.no_auto_update != "true"),
                declarative: Some(self.declarative == "true"),
            }),
            declarative: None,
        }
    }
}

#[derive(Template)]
#[template(path = "deployment_plan.html")]
struct PlanPage {
    chrome: Chrome,
    form: DeployForm,
    app: String,
    collection: String,
    action: String,
    summary: String,
    targets: u64,
    license_type: String,
    already: u64,
    claims: u64,
    waiting: u64,
    failing: u64,
    needs_user: u64,
    reclaims: u64,
    tokens: Vec<(String, u64, u64)>,
    needs_user_targets: String,
    /// Deployments in force this one overlaps: id, action, shared targets, who owns them, and
    /// whether it contradicts this one.
    overlaps: Vec<(i64, String, i64, String, bool)>,
    contradicts: bool,
    identical: Option<i64>,
}

impl PlanPage {
    /// Required and Available claim licenses; Uninstall and Revoke give them back.
    fn claims_licenses(&self) -> bool {
        matches!(self.action.as_str(), "required" | "available")
    }

    /// The confirming button says what confirming does.
    fn confirm_words(&self) -> &'static str {
        match self.action.as_str() {
            "required" => "Confirm and install",
            "available" => "Confirm and offer it",
            "uninstall" => "Confirm and uninstall",
            "revoke" => "Confirm and take the licenses back",
            _ => "Confirm",
        }
    }
}

/// The plan, before anything happens; confirming it creates the deployment.
pub(crate) async fn plan(
    State(state): State<AppState>,
    viewer: Viewer,
    Form(f): Form<DeployForm>,
) -> PageResult {
    viewer.form_is_ours(&f.csrf)?;
    let p = plan_for(&state, &f.body()).await?;
    let collection = crate::api::collections::find(&state, &f.collection).await?;
    let mut form = f.clone();
    form.token = f.token_order().join(",");
    form.action = p.action.as_str().into();
    if form.on_shortage.is_empty() {
        form.on_shortage = "fail".into();
    }
    Ok(render(&PlanPage {
        chrome: viewer.chrome("deployments", None),
        app: app_name(&state, &f.adam_id).await?,
        collection: collection.name,
        action: p.action.as_str().into(),
        summary: p.summary,
        targets: p.targets,
        license_type: p.license_type,
        already: p.already_licensed,
        claims: p.claims,
        waiting: p.waiting,
        failing: p.failing,
        needs_user: p.needs_user,
        reclaims: p.reclaims,
        tokens: p
            .tokens
            .into_iter()
            .map(|t| (t.token, t.free, t.claims))
            .collect(),
        needs_user_targets: p.needs_user_targets.join(", "),
        contradicts: p.overlaps.iter().any(|o| o.contradicts),
        identical: p
            .overlaps
            .iter()
            .find(|o| o.identical)
            .map(|o| o.deployment_id),
        overlaps: p
            .overlaps
            .into_iter()
            .map(|o| {
                let owner = if o.owner == "new" {
                    "this deployment".to_owned()
                } else {
                    format!("deployment {}", o.deployment_id)
                };
                (
                    o.deployment_id,
                    o.action,
                    o.shared_targets,
                    owner,
                    o.contradicts,
                )
            })
            .collect(),
        form,
    }))
}

pub(crate) async fn create(
    State(state): State<AppState>,
    viewer: Viewer,
    Form(f): Form<DeployForm>,
) -> PageResult {
    viewer.may_change(&f.csrf)?;
    let d = create_deployment(
        &state,
        &f.body(),
        &format!("console account {}", viewer.username),
    )
    .await?;
    Ok(back(
        &format!("/deployments/{}", d.id),
        "Deployment started: its targets move as licenses are claimed and devices report",
    ))
}

pub(crate) struct TargetLine {
    label: String,
    status: String,
    license: String,
    detail: String,
    /// How long ago Apple or the device last confirmed the status.
    confirmed: String,
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct TargetQuery {
    #[serde(default)]
    status: String,
    page: Option<i64>,
    notice: Option<String>,
}

/// A deployment's install options, as an admin reads them.
fn options_words(o: &allot_domain::InstallOptions) -> String {
    [
        if o.remove_on_unenroll {
            "removed when the device leaves management"
        } else {
            "kept when the device leaves management"
        },
        if o.prevent_backup {
            "data not backed up"
        } else {
            "data backed up"
        },
        if o.removable {
            "the user may delete it"
        } else {
            "the user may not delete it"
        },
        if o.take_over {
            "takes over a copy the user installed"
        } else {
            "leaves a copy the user installed alone"
        },
        if o.auto_update {
            "updated automatically"
        } else {
            "not updated automatically"
        },
        if o.declarative {
            "declared (declarative app management) where devices support it"
        } else {
            "sent as MDM commands"
        },
    ]
    .join(" · ")
}

#[derive(Template)]
#[template(path = "deployment.html")]
struct DetailPage {
    chrome: Chrome,
    id: i64,
    app: String,
    adam_id: String,
    pricing: String,
    collection: String,
    collection_id: i64,
    action: String,
    on_shortage: String,
    on_leave: String,
    /// The install options in words.
    options: String,
    created_by: String,
    ending: String,
    created: String,
    all: i64,
    statuses: Vec<(String, i64)>,
    status: String,
    targets: Vec<TargetLine>,
    pager: Pager,
    live: bool,
    refresh: String,
    /// How long devices and people that leave management keep their licenses, in words.
    grace: String,
    /// Failed targets (the bulk retry's count).
    failed: i64,
}

#[derive(Template)]
#[template(path = "deployment_live.html")]
struct LivePart {
    id: i64,
    all: i64,
    statuses: Vec<(String, i64)>,
    status: String,
    targets: Vec<TargetLine>,
    pager: Pager,
    live: bool,
}

/// One page of a deployment's targets, and whether any target is still moving.
async fn target_lines(
    state: &AppState,
    id: i64,
    q: &TargetQuery,
) -> Result<(Vec<TargetLine>, Vec<(String, i64)>, Pager, bool), PageError> {
    if !q.status.is_empty() && !allot_deploy::status::ALL.contains(&q.status.as_str()) {
        return Err(PageError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            format!("{:?} is not a target status", q.status),
        ));
    }
    let page = format::page_number(q.page);
    let counts = state.store.target_counts(id).await?;
    let status = (!q.status.is_empty()).then_some(q.status.as_str());
    let total = match status {
        Some(s) => counts.iter().find(|c| c.0 == s).map_or(0, |c| c.1),
        None => counts.iter().map(|c| c.1).sum(),
    };
    let rows = state
        .store
        .targets_page(id, status, PER_PAGE, (page - 1) * PER_PAGE)
        .await?;
    let live = counts
        .iter()
        .any(|(s, n)| *n > 0 && MOVING.contains(&s.as_str()))
        || counts.is_empty();
    let link = |n: i64| {
        let page = n.to_string();
        format!(
            "/deployments/{id}{}",
            format::query(&[("status", &q.status), ("page", &page)])
        )
    };
    let lines = rows
        .into_iter()
        .map(|t| TargetLine {
            label: t.label,
            detail: match (t.status.as_str(), t.superseded_by) {
                ("superseded", Some(owner)) => format!("deployment {owner} owns this target"),
                _ => t.detail.unwrap_or_default(),
            },
            status: t.status,
            license: t.license.unwrap_or_default(),
            confirmed: t
                .confirmed_at
                .map(|at| format::ago(at, allot_sync::now_ms()))
                .unwrap_or_else(|| "not yet".into()),
        })
        .collect();
    Ok((lines, counts, Pager::new(page, PER_PAGE, total, link), live))
}

pub(crate) async fn detail(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(id): Path<i64>,
    Query(q): Query<TargetQuery>,
) -> PageResult {
    let d = crate::api::deployments_exec::find_deployment(&state, id).await?;
    let collection = state.store.collection(Some(d.collection_id), None).await?;
    let (targets, statuses, pager, live) = target_lines(&state, id, &q).await?;
    Ok(render(&DetailPage {
        chrome: viewer.chrome(
            "deployments",
            Notice {
                notice: q.notice.clone(),
            }
            .take(),
        ),
        id,
        app: app_name(&state, &d.adam_id).await?,
        adam_id: d.adam_id,
        pricing: d.pricing,
        collection: collection.map(|c| c.name).unwrap_or_default(),
        collection_id: d.collection_id,
        action: d.action,
        on_shortage: d.on_shortage,
        on_leave: d.on_leave,
        grace: grace_words(state.executor.reclaim_grace()),
        options: options_words(&d.options),
        created_by: d.created_by.unwrap_or_default(),
        ending: d.ending.unwrap_or_default(),
        created: format::time(d.created_at),
        all: statuses.iter().map(|c| c.1).sum(),
        failed: statuses
            .iter()
            .find(|c| c.0 == allot_deploy::status::FAILED)
            .map_or(0, |c| c.1),
        statuses,
        refresh: format!(
            "/deployments/{id}/targets{}",
            format::query(&[
                ("status", &q.status),
                ("page", &q.page.unwrap_or(1).to_string())
            ])
        ),
        status: q.status,
        targets,
        pager,
        live,
    }))
}

/// The breakdown and the targets, for the detail page to refresh while they move.
pub(crate) async fn targets(
    State(state): State<AppState>,
    _viewer: Viewer,
    Path(id): Path<i64>,
    Query(q): Query<TargetQuery>,
) -> PageResult {
    crate::api::deployments_exec::find_deployment(&state, id).await?;
    let (targets, statuses, pager, live) = target_lines(&state, id, &q).await?;
    Ok(render(&LivePart {
        id,
        all: statuses.iter().map(|c| c.1).sum(),
        statuses,
        status: q.status,
        targets,
        pager,
        live,
    }))
}

#[derive(Debug, Deserialize)]
pub(crate) struct DeleteForm {
    csrf: String,
    /// keep, revoke or uninstall.
    #[serde(default)]
    then: String,
}

pub(crate) async fn delete(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(id): Path<i64>,
    Form(f): Form<DeleteForm>,
) -> PageResult {
    viewer.may_change(&f.csrf)?;
    let then =
        crate::api::deployments::on_leave(Some(f.then.as_str()).filter(|t| !t.is_empty()), "then")?;
    match crate::api::deployments_exec::end_deployment(&state, id, then).await? {
        None => Ok(back("/deployments", &format!("Deleted deployment {id}"))),
        Some(_) => Ok(back(
            &format!("/deployments/{id}"),
            "Deployment ending: it gives back what it holds, then it goes",
        )),
    }
}

/// The bulk retry: every failed target of the deployment starts again.
pub(crate) async fn retry(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(id): Path<i64>,
    Form(f): Form<super::auth::CsrfForm>,
) -> PageResult {
    viewer.may_change(&f.csrf)?;
    let n = crate::api::deployments_exec::retry_failed(&state, id).await?;
    Ok(back(
        &format!("/deployments/{id}"),
        &match n {
            0 => "No failed targets to retry".to_owned(),
            1 => "1 failed target starts again".to_owned(),
            n => format!("{n} failed targets start again"),
        },
    ))
}

impl super::Labels for DeploymentsPage {}
impl super::Labels for DetailPage {}
impl super::Labels for LivePart {}

/// "24 h", "30 min", "3 days".
fn grace_words(d: std::time::Duration) -> String {
    let s = d.as_secs();
    match s {
        0 => "at once".into(),
        1..=3599 => format!("after {} min", s.div_ceil(60)),
        3600..=172_799 => format!("after {} h", s / 3600),
        _ => format!("after {} days", s / 86_400),
    }
}
