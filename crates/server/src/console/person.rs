//! One person's page (`/users/{id}`): their VPP terms status on every location that knows them,
//! the licenses they hold on every token, and what each deployment wants for them, with its age.

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;

use super::deployments::app_name;
use super::people::{program_of, Program};
#[allow(unused_imports)]
use super::Labels as _;
use super::{format, render, Chrome, PageError, PageResult, Viewer};
use crate::AppState;

pub(crate) struct HeldLine {
    app: String,
    link: String,
    token: String,
}

pub(crate) struct TargetLine {
    deployment: i64,
    action: String,
    app: String,
    status: String,
    detail: String,
    confirmed: String,
}

#[derive(Template)]
#[template(path = "user.html")]
struct UserPage {
    chrome: Chrome,
    name: String,
    email: String,
    client_user_id: String,
    removed: bool,
    program: Vec<Program>,
    held: Vec<HeldLine>,
    targets: Vec<TargetLine>,
}

impl super::Labels for UserPage {}

/// The licenses a user (`user`, by clientUserId) or device (`device`, by serial) holds.
async fn held_lines(
    state: &AppState,
    kind: &str,
    holder: &str,
    tokens: &std::collections::HashMap<i64, String>,
) -> Result<Vec<HeldLine>, PageError> {
    let mut held = Vec::new();
    let licenses = crate::access::filter(
        state.store.licenses_held(kind, holder).await?,
        |(token_id, _)| *token_id,
    );
    for (token_id, a) in licenses {
        held.push(HeldLine {
            app: app_name(state, &a.adam_id).await?,
            link: format::app_link(token_id, &a.adam_id, &a.pricing),
            token: tokens
                .get(&token_id)
                .cloned()
                .unwrap_or_else(|| format!("token {token_id}")),
        });
    }
    Ok(held)
}

/// What every deployment wants for a member of a `users` or `devices` collection, with its age.
async fn target_lines(
    state: &AppState,
    kind: &str,
    member_id: i64,
) -> Result<Vec<TargetLine>, PageError> {
    let now = allot_sync::now_ms();
    let mut out = Vec::new();
    for (deployment, action, adam, status, detail, confirmed) in
        state.store.targets_of_member(kind, member_id).await?
    {
        out.push(TargetLine {
            deployment,
            action,
            app: app_name(state, &adam).await?,
            status,
            detail: detail.unwrap_or_default(),
            confirmed: confirmed
                .map(|t| format::ago(t, now))
                .unwrap_or_else(|| "not yet".into()),
        });
    }
    Ok(out)
}

pub(crate) async fn page(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(id): Path<i64>,
    Query(n): Query<super::Notice>,
) -> PageResult {
    let p = state
        .store
        .person(id)
        .await?
        .ok_or_else(|| PageError::new(StatusCode::NOT_FOUND, format!("no user {id}")))?;
    let tokens = super::token_names(&state).await?;
    let program = program_of(&state, &p.client_user_id, &tokens).await?;
    let held = held_lines(&state, "user", &p.client_user_id, &tokens).await?;
    let targets = target_lines(&state, "users", p.id).await?;
    Ok(render(&UserPage {
        chrome: viewer.chrome("users", n.take()),
        name: p.name,
        email: p.email.unwrap_or_default(),
        client_user_id: p.client_user_id,
        removed: p.removed_at.is_some(),
        program,
        held,
        targets,
    }))
}

pub(crate) struct ReportedApp {
    bundle_id: String,
    status: String,
    version: String,
    reported: String,
}

#[derive(Template)]
#[template(path = "device.html")]
struct DevicePage {
    chrome: Chrome,
    serial: String,
    name: String,
    model: String,
    os: String,
    enrolled: bool,
    seen: String,
    /// The primary user: (id, name), when there is one.
    user: Option<(i64, String)>,
    held: Vec<HeldLine>,
    targets: Vec<TargetLine>,
    apps: Vec<ReportedApp>,
    declared: Vec<ReportedApp>,
}

impl super::Labels for DevicePage {}

/// One device's page (`/devices/{serial}`): what it runs and said last, its primary user, the
/// licenses it holds, what each deployment wants for it, and the apps it reported.
pub(crate) async fn device_page(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(serial): Path<String>,
    Query(n): Query<super::Notice>,
) -> PageResult {
    let serial = serial.trim().to_ascii_uppercase();
    let d = state
        .store
        .device_by_serial(&serial)
        .await?
        .ok_or_else(|| {
            PageError::new(
                StatusCode::NOT_FOUND,
                format!("no device with serial number {serial}"),
            )
        })?;
    let tokens = super::token_names(&state).await?;
    let now = allot_sync::now_ms();
    let held = held_lines(&state, "device", &d.serial_number, &tokens).await?;
    let targets = target_lines(&state, "devices", d.id).await?;
    let apps = state
        .store
        .device_apps(d.id)
        .await?
        .into_iter()
        .map(|a| ReportedApp {
            bundle_id: a.bundle_id,
            status: a.status,
            version: a
                .external_version_id
                .map(|v| v.to_string())
                .unwrap_or_default(),
            reported: format::ago(a.reported_at, now),
        })
        .collect();
    let declared = state
        .store
        .dm_apps(d.id)
        .await?
        .into_iter()
        .map(|a| ReportedApp {
            bundle_id: a.bundle_id,
            status: match a.reasons {
                Some(r) => format!("{}: {r}", a.state),
                None => a.state,
            },
            version: a
                .external_version_id
                .map(|v| v.to_string())
                .unwrap_or_default(),
            reported: format::ago(a.reported_at, now),
        })
        .collect();
    let user = match d.primary_person_id {
        Some(id) => state.store.person(id).await?.map(|p| (p.id, p.name)),
        None => None,
    };
    Ok(render(&DevicePage {
        chrome: viewer.chrome("devices", n.take()),
        os: match (&d.os_version, d.info_reported_at) {
            (Some(v), Some(at)) => format!("{} {v} (said {})", d.platform, format::ago(at, now)),
            (Some(v), None) => format!("{} {v}", d.platform),
            _ => format!("{} (version not known yet)", d.platform),
        },
        seen: d
            .last_seen_at
            .map(|t| format::ago(t, now))
            .unwrap_or_else(|| "never".into()),
        serial: d.serial_number,
        name: d.name,
        model: d.model,
        enrolled: d.enrolled,
        user,
        held,
        targets,
        apps,
        declared,
    }))
}
