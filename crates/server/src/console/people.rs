//! Users (with their VPP terms status per location, and resending the invitation) and devices
//! (with their licenses and the apps Allot installed).

use std::collections::HashMap;

#[allow(unused_imports)]
use super::Labels as _;
use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::Form;
use serde::Deserialize;

use super::auth::CsrfForm;
use super::format::{self, Pager};
use super::{back, render, Chrome, Notice, PageError, PageResult, Viewer};
use crate::api::program::terms;
use crate::AppState;

const PER_PAGE: i64 = 50;

#[derive(Debug, Default, Deserialize)]
pub(crate) struct ListQuery {
    #[serde(default)]
    search: String,
    /// VPP terms status: `invited`, `accepted`, `retired` or `none` (users only).
    #[serde(default)]
    terms: String,
    page: Option<i64>,
    notice: Option<String>,
}

pub(crate) struct Program {
    pub token: String,
    pub terms: String,
    pub invitation: Option<String>,
}

/// A person's VPP terms status on every location that knows them, with the invitation link while
/// they have not accepted (the users list's and the person's page).
pub(crate) async fn program_of(
    state: &AppState,
    client_user_id: &str,
    token_names: &HashMap<i64, String>,
) -> Result<Vec<Program>, PageError> {
    let mut program = Vec::new();
    let records = crate::access::filter(
        state.store.apple_user_records(client_user_id).await?,
        |(token_id, _)| *token_id,
    );
    for (token_id, u) in records {
        program.push(program_line(state, token_id, &u, token_names).await);
    }
    Ok(program)
}

/// `program_of` for a page of people at once: one read of their records and of the names of
/// the tokens that know them (not every token's).
async fn programs_of(
    state: &AppState,
    client_user_ids: &[String],
) -> Result<HashMap<String, Vec<Program>>, PageError> {
    let records = crate::access::filter(
        state.store.apple_user_records_of(client_user_ids).await?,
        |(token_id, _)| *token_id,
    );
    let mut token_ids: Vec<i64> = records.iter().map(|(t, _)| *t).collect();
    token_ids.sort_unstable();
    token_ids.dedup();
    let names: HashMap<i64, String> = if token_ids.is_empty() {
        HashMap::new()
    } else {
        state
            .store
            .token_labels_of(&token_ids)
            .await?
            .into_iter()
            .map(|t| (t.id, t.name))
            .collect()
    };
    let mut out: HashMap<String, Vec<Program>> = HashMap::new();
    for (token_id, u) in records {
        let line = program_line(state, token_id, &u, &names).await;
        out.entry(u.client_user_id).or_default().push(line);
    }
    Ok(out)
}

async fn program_line(
    state: &AppState,
    token_id: i64,
    u: &allot_store::UserRow,
    token_names: &HashMap<i64, String>,
) -> Program {
    let invitation = match (&u.invite_code, u.status.as_str()) {
        (Some(code), "Registered") => state.engine.apple().invitation_url(code).await.ok(),
        _ => None,
    };
    Program {
        token: token_names
            .get(&token_id)
            .cloned()
            .unwrap_or_else(|| format!("token {token_id}")),
        terms: terms(&u.status).into(),
        invitation,
    }
}

pub(crate) struct UserLine {
    id: i64,
    name: String,
    email: String,
    managed: String,
    removed: bool,
    program: Vec<Program>,
    invited: bool,
}

#[derive(Template)]
#[template(path = "users.html")]
struct UsersPage {
    chrome: Chrome,
    search: String,
    terms: String,
    rows: Vec<UserLine>,
    pager: Pager,
}

pub(crate) async fn users(
    State(state): State<AppState>,
    viewer: Viewer,
    Query(q): Query<ListQuery>,
) -> PageResult {
    let page = format::page_number(q.page);
    let search = (!q.search.trim().is_empty()).then(|| q.search.trim().to_owned());
    let apple_status = match q.terms.as_str() {
        "" => None,
        "invited" => Some("Registered"),
        "accepted" => Some("Associated"),
        "retired" => Some("Retired"),
        "none" => Some("none"),
        other => {
            return Err(PageError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                format!("VPP terms status {other:?} must be invited, accepted, retired or none"),
            ))
        }
    };
    let (people, total) = state
        .store
        .people(
            search.as_deref(),
            apple_status,
            PER_PAGE,
            (page - 1) * PER_PAGE,
        )
        .await?;
    let ids: Vec<String> = people.iter().map(|p| p.client_user_id.clone()).collect();
    let mut programs = programs_of(&state, &ids).await?;
    let mut rows = Vec::with_capacity(people.len());
    for p in people {
        let program = programs.remove(&p.client_user_id).unwrap_or_default();
        rows.push(UserLine {
            invited: program.iter().any(|p| p.terms == "invited"),
            id: p.id,
            name: p.name,
            email: p.email.unwrap_or_default(),
            managed: p.managed_apple_id.unwrap_or_default(),
            removed: p.removed_at.is_some(),
            program,
        });
    }
    let link = |n: i64| {
        let page = n.to_string();
        format!(
            "/users{}",
            format::query(&[("search", &q.search), ("terms", &q.terms), ("page", &page)])
        )
    };
    Ok(render(&UsersPage {
        chrome: viewer.chrome(
            "users",
            Notice {
                notice: q.notice.clone(),
            }
            .take(),
        ),
        pager: Pager::new(page, PER_PAGE, total, link),
        terms: q.terms.clone(),
        search: q.search,
        rows,
    }))
}

pub(crate) async fn invite(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(id): Path<i64>,
    Form(f): Form<CsrfForm>,
) -> PageResult {
    viewer.may_change(&f.csrf)?;
    let p = state
        .store
        .person(id)
        .await?
        .ok_or_else(|| PageError::new(StatusCode::NOT_FOUND, format!("no user {id}")))?;
    let n = state
        .store
        .resend_invitation(&p.client_user_id, allot_sync::now_ms())
        .await?;
    Ok(back(
        "/users",
        &if n == 0 {
            format!("{} has no invitation waiting on a deployment", p.name)
        } else {
            format!("The invitation goes out again to {}'s devices", p.name)
        },
    ))
}

/// The users list's bulk action: every invitation still waiting goes out again.
pub(crate) async fn invite_all(
    State(state): State<AppState>,
    viewer: Viewer,
    Form(f): Form<CsrfForm>,
) -> PageResult {
    viewer.may_change(&f.csrf)?;
    let n = state
        .store
        .resend_all_invitations(allot_sync::now_ms())
        .await?;
    state.executor.wake();
    Ok(back(
        "/users",
        &match n {
            0 => "No invitation is waiting".to_owned(),
            n => format!("{n} waiting invitation(s) go out again to the people's devices"),
        },
    ))
}

pub(crate) struct DeviceLine {
    serial: String,
    name: String,
    model: String,
    platform: String,
    /// What it last said it runs (empty: not known yet).
    os_version: String,
    enrolled: bool,
    seen: String,
    licenses: String,
    apps: String,
    /// The primary user: (id, name) when set.
    user: Option<(i64, String)>,
}

#[derive(Template)]
#[template(path = "devices.html")]
struct DevicesPage {
    chrome: Chrome,
    search: String,
    rows: Vec<DeviceLine>,
    pager: Pager,
    /// The MDM connector in words (empty: no MDM configured).
    mdm: String,
    /// Whether its last call failed.
    mdm_failing: bool,
    /// Devices whose last push failed: serial number, error, attempts.
    push_failures: Vec<(String, String, i64)>,
    push_total: i64,
    push_last_hour: i64,
    /// Static collections of devices, for the bulk "add to collection".
    static_collections: Vec<(i64, String)>,
}

pub(crate) async fn devices(
    State(state): State<AppState>,
    viewer: Viewer,
    Query(q): Query<ListQuery>,
) -> PageResult {
    let page = format::page_number(q.page);
    let search = (!q.search.trim().is_empty()).then(|| q.search.trim().to_owned());
    let (devices, total) = state
        .store
        .devices(search.as_deref(), PER_PAGE, (page - 1) * PER_PAGE)
        .await?;
    let now = allot_sync::now_ms();
    // What each listed device holds, in four statements for the page.
    let serials: Vec<String> = devices.iter().map(|d| d.serial_number.clone()).collect();
    let ids: Vec<i64> = devices.iter().map(|d| d.id).collect();
    let people: Vec<i64> = devices.iter().filter_map(|d| d.primary_person_id).collect();
    let details = state
        .store
        .device_page_details(&serials, &ids, &people)
        .await?;
    let app_name = |adam: &str| {
        details
            .app_names
            .get(adam)
            .cloned()
            .unwrap_or_else(|| format!("adamId {adam}"))
    };
    let mut rows = Vec::with_capacity(devices.len());
    for d in devices {
        let licensed: Vec<String> = details
            .licenses
            .iter()
            .filter(|(serial, token, _)| *serial == d.serial_number && crate::access::sees(*token))
            .map(|(_, _, adam)| app_name(adam))
            .collect();
        let apps: Vec<String> = details
            .installed
            .iter()
            .filter(|(id, _)| *id == d.id)
            .map(|(_, adam)| app_name(adam))
            .collect();
        let user = d
            .primary_person_id
            .and_then(|id| details.people.get(&id).map(|name| (id, name.clone())));
        rows.push(DeviceLine {
            user,
            serial: d.serial_number,
            name: d.name,
            model: d.model,
            platform: d.platform,
            os_version: d.os_version.unwrap_or_default(),
            enrolled: d.enrolled,
            seen: d
                .last_seen_at
                .map(|t| format!("seen {}", format::ago(t, now)))
                .unwrap_or_default(),
            licenses: licensed.join(", "),
            apps: apps.join(", "),
        });
    }
    let link = |n: i64| {
        let page = n.to_string();
        format!(
            "/devices{}",
            format::query(&[("search", &q.search), ("page", &page)])
        )
    };
    let (failures, _) = state.store.push_failures(10).await?;
    let connector = super::connector::mdm_connector(&state).await?;
    let static_collections = state
        .store
        .collections()
        .await?
        .into_iter()
        .filter(|c| c.kind == "devices" && c.rule.is_none())
        .map(|c| (c.id, c.name))
        .collect();
    Ok(render(&DevicesPage {
        static_collections,
        mdm: connector.words,
        mdm_failing: connector.failing,
        push_last_hour: connector.push_last_hour,
        push_total: connector.push_total,
        push_failures: failures
            .into_iter()
            .map(|(serial, _, error, attempts, _)| (serial, error, attempts))
            .collect(),
        chrome: viewer.chrome(
            "devices",
            Notice {
                notice: q.notice.clone(),
            }
            .take(),
        ),
        pager: Pager::new(page, PER_PAGE, total, link),
        search: q.search,
        rows,
    }))
}

#[derive(Debug, Deserialize)]
pub(crate) struct DeviceLinksForm {
    csrf: String,
    #[serde(default)]
    serial: String,
    /// The primary user's email (or id); empty: unchanged.
    #[serde(default)]
    user: String,
    /// NanoMDM's enrollment id; empty: unchanged.
    #[serde(default)]
    enrollment_id: String,
}

/// Sets a device's primary user (what user licenses and "needs a user" targets wait for) and its
/// enrollment id (for a device NanoMDM's webhook never announced).
pub(crate) async fn set_device_links(
    State(state): State<AppState>,
    viewer: Viewer,
    Form(f): Form<DeviceLinksForm>,
) -> PageResult {
    viewer.may_change(&f.csrf)?;
    let serial = f.serial.trim().to_ascii_uppercase();
    let Some(device) = state.store.device_by_serial(&serial).await? else {
        return Err(PageError::new(
            StatusCode::NOT_FOUND,
            format!("no device with serial number {serial:?}"),
        ));
    };
    let person = match f.user.trim() {
        "" => None,
        u => Some(crate::api::inventory::find_person(&state, u).await?.id),
    };
    let enrollment = match f.enrollment_id.trim() {
        "" => None,
        e => {
            crate::input::check_enrollment_id(e)
                .map_err(|m| PageError::new(StatusCode::UNPROCESSABLE_ENTITY, m))?;
            Some(e)
        }
    };
    if person.is_none() && enrollment.is_none() {
        return Err(PageError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "give a primary user, an enrollment id, or both",
        ));
    }
    state
        .store
        .set_device_links(device.id, person, enrollment, allot_sync::now_ms())
        .await
        .map_err(|e| match e {
            allot_store::StoreError::Conflict(_) => PageError::new(
                StatusCode::CONFLICT,
                "another device has that enrollment id",
            ),
            e => e.into(),
        })?;
    state.executor.wake();
    Ok(back(
        &format!("/devices/{}", format::query_escape(&device.serial_number)),
        &format!("Updated {}", device.serial_number),
    ))
}

impl super::Labels for UsersPage {}
