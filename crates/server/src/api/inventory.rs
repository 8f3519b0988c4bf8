//! `/api/v1/users` and `/api/v1/devices`: the people and devices licenses go to, added one by one
//! or imported from CSV (later learned from the MDM too).

use allot_store::{DeviceRow, NewDevice, NewPerson, PersonRow};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};

use utoipa::{IntoParams, ToSchema};

use crate::auth::{Caller, Writer};
use crate::error::{ApiError, ApiJson, ErrorBody};
use crate::AppState;

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct UserView {
    pub id: i64,
    /// Allot's stable identifier of the person at Apple (an opaque GUID).
    pub client_user_id: String,
    pub name: String,
    pub email: Option<String>,
    pub managed_apple_id: Option<String>,
    /// For collections' rules.
    pub department: Option<String>,
    pub removed: bool,
}

impl From<PersonRow> for UserView {
    fn from(p: PersonRow) -> Self {
        Self {
            id: p.id,
            client_user_id: p.client_user_id,
            name: p.name,
            email: p.email,
            managed_apple_id: p.managed_apple_id,
            department: p.department,
            removed: p.removed_at.is_some(),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DeviceView {
    pub id: i64,
    pub serial_number: String,
    pub enrollment_id: Option<String>,
    /// `iOS`, `iPadOS` or `macOS`.
    pub platform: String,
    pub model: String,
    pub name: String,
    pub primary_user_id: Option<i64>,
    pub enrolled: bool,
    /// The OS version the device last reported (its enrollment, or the periodic
    /// DeviceInformation every `ALLOT_DEVICE_INFO_HOURS`); none until it has.
    pub os_version: Option<String>,
    /// RFC 3339: when the device last said what it runs.
    pub os_version_reported_at: Option<String>,
}

impl From<DeviceRow> for DeviceView {
    fn from(d: DeviceRow) -> Self {
        Self {
            id: d.id,
            serial_number: d.serial_number,
            enrollment_id: d.enrollment_id,
            platform: d.platform,
            model: d.model,
            name: d.name,
            primary_user_id: d.primary_person_id,
            enrolled: d.enrolled,
            os_version: d.os_version,
            os_version_reported_at: d.info_reported_at.map(crate::api::rfc3339),
        }
    }
}

/// A plausible address: one `@`, a dotted domain, no spaces.
pub(crate) fn valid_email(e: &str) -> bool {
    let Some((local, domain)) = e.split_once('@') else {
        return false;
    };
    !local.is_empty()
        && !domain.contains('@')
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !e.contains(char::is_whitespace)
}

/// Apple serial numbers are letters and digits.
pub(crate) fn check_serial(s: &str) -> Result<String, String> {
    let s = s.trim().to_ascii_uppercase();
    if s.is_empty() || s.len() > 64 || !s.chars().all(|c| c.is_ascii_alphanumeric()) {
        return Err(format!(
            "serial number {s:?} must be 1 to 64 letters and digits"
        ));
    }
    Ok(s)
}

pub(crate) fn check_platform(p: &str) -> Result<String, String> {
    match p.trim().to_ascii_lowercase().as_str() {
        "ios" | "iphone" => Ok("iOS".into()),
        "ipados" | "ipad" => Ok("iPadOS".into()),
        "macos" | "mac" => Ok("macOS".into()),
        other => Err(format!("platform {other:?} must be iOS, iPadOS or macOS")),
    }
}

pub(crate) fn check_person(name: &str, email: Option<&str>) -> Result<NewPerson, String> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 200 || name.contains(char::is_control) {
        return Err("a user needs a name of at most 200 printable characters".into());
    }
    let email = email.map(str::trim).filter(|e| !e.is_empty());
    if let Some(e) = email {
        if !valid_email(e) {
            return Err(format!("{e:?} is not an email address"));
        }
    }
    Ok(NewPerson {
        name: name.to_owned(),
        email: email.map(str::to_lowercase),
        managed_apple_id: None,
        department: None,
    })
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NewUserRequest {
    pub name: String,
    pub email: Option<String>,
    /// A Managed Apple Account: joining the program then needs no invitation.
    pub managed_apple_id: Option<String>,
    /// The person's department (collections' rules can choose by it).
    pub department: Option<String>,
}

async fn add_person(state: &AppState, mut p: NewPerson) -> Result<(PersonRow, bool), ApiError> {
    let now = allot_sync::now_ms();
    if let Some(email) = p.email.clone() {
        if let Some(existing) = state.store.person_by_email(&email).await? {
            p.email = None;
            state.store.update_person(existing.id, &p, now).await?;
            return Ok((
                state
                    .store
                    .person(existing.id)
                    .await?
                    .expect("just updated"),
                false,
            ));
        }
    }
    let id = uuid::Uuid::new_v4().to_string();
    Ok((state.store.insert_person(&p, &id, now).await?, true))
}

/// Adds a user (or updates the one with this email).
#[utoipa::path(post, path = "/api/v1/users", tag = "inventory", request_body = NewUserRequest,
    responses((status = 201, body = UserView), (status = 200, description = "updated", body = UserView), (status = 422, body = ErrorBody)), security(("api_key" = [])))]
pub async fn add_user(
    State(state): State<AppState>,
    _a: Writer,
    ApiJson(req): ApiJson<NewUserRequest>,
) -> Result<(StatusCode, Json<UserView>), ApiError> {
    let mut p = check_person(&req.name, req.email.as_deref()).map_err(ApiError::invalid)?;
    p.managed_apple_id = req
        .managed_apple_id
        .map(|m| m.trim().to_owned())
        .filter(|m| !m.is_empty());
    p.department = req
        .department
        .as_deref()
        .map(|d| crate::input::check_text("department", d, 200))
        .transpose()
        .map_err(ApiError::invalid)?
        .filter(|d| !d.is_empty());
    let (row, created) = add_person(&state, p).await?;
    Ok((
        if created {
            StatusCode::CREATED
        } else {
            StatusCode::OK
        },
        Json(row.into()),
    ))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    pub search: Option<String>,
    pub limit: Option<i64>,
    pub offset: Option<i64>,
}

fn paging(q: &ListQuery) -> Result<(i64, i64), ApiError> {
    let limit = q.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::invalid("limit must be between 1 and 1000"));
    }
    Ok((limit, q.offset.unwrap_or(0).max(0)))
}

#[derive(Serialize, ToSchema)]
pub struct UserList {
    pub users: Vec<UserView>,
    pub total: i64,
}

#[utoipa::path(get, path = "/api/v1/users", tag = "inventory", params(ListQuery), responses((status = 200, body = UserList)), security(("api_key" = [])))]
pub async fn list_users(
    State(state): State<AppState>,
    _c: Caller,
    q: Result<Query<ListQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<UserList>, ApiError> {
    let Query(q) = q.map_err(|e| ApiError::invalid(e.body_text()))?;
    let (limit, offset) = paging(&q)?;
    let (rows, total) = state
        .store
        .people(
            q.search.as_deref().filter(|s| !s.trim().is_empty()),
            None,
            limit,
            offset,
        )
        .await?;
    Ok(Json(UserList {
        users: rows.into_iter().map(Into::into).collect(),
        total,
    }))
}

/// A user by id or email.
pub(crate) async fn find_person(state: &AppState, key: &str) -> Result<PersonRow, ApiError> {
    if let Ok(id) = key.parse::<i64>() {
        if let Some(p) = state.store.person(id).await? {
            return Ok(p);
        }
    }
    state
        .store
        .person_by_email(key)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no user with id or email {key:?}")))
}

/// Marks a user as gone: their licenses are reclaimed by policy.
#[utoipa::path(delete, path = "/api/v1/users/{user}", tag = "inventory", params(("user" = String, Path, description = "id or email"), crate::api::Confirm),
    responses((status = 204), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)), security(("api_key" = [])))]
pub async fn remove_user(
    State(state): State<AppState>,
    _a: Writer,
    Path(key): Path<String>,
    Query(c): Query<crate::api::Confirm>,
) -> Result<StatusCode, ApiError> {
    crate::api::confirmed(&c, "removing a user (their licenses are then reclaimed)")?;
    let p = find_person(&state, &key).await?;
    state
        .store
        .remove_person(p.id, allot_sync::now_ms())
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// One managed app as the device last reported it (ManagedApplicationList).
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DeviceAppView {
    pub bundle_id: String,
    /// Apple's state: `Managed`, `Installing`, `ManagedButUninstalled`, …
    pub status: String,
    /// The store version installed (`ExternalVersionIdentifier`), where the device said.
    pub external_version_id: Option<i64>,
    /// RFC 3339: when the device said so.
    pub reported_at: String,
}

/// One app a declaration manages, as the device's last status report (`app.managed.list`) said.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DeclaredAppView {
    pub bundle_id: String,
    /// Apple's state: `queued`, `downloading`, `installing`, `managed`, `failed`, …
    pub state: String,
    /// Apple's reasons (a failure's), in words with their codes.
    pub reasons: Option<String>,
    /// The store version installed (`external-version-id`), where the device said.
    pub external_version_id: Option<i64>,
    /// RFC 3339: when the device said so.
    pub reported_at: String,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DeviceDetail {
    #[serde(flatten)]
    pub device: DeviceView,
    /// The managed apps the device last reported, with their time (asked about once a day).
    pub apps: Vec<DeviceAppView>,
    /// The apps declarations manage on the device, as its status reports said (they report
    /// changes as they happen; such apps are not in `apps`).
    pub declared_apps: Vec<DeclaredAppView>,
}

/// One device (by serial number or id), with the managed apps it last reported.
#[utoipa::path(get, path = "/api/v1/devices/{device}", tag = "inventory", params(("device" = String, Path, description = "serial number or id")),
    responses((status = 200, body = DeviceDetail), (status = 404, body = ErrorBody)), security(("api_key" = [])))]
pub async fn show_device(
    State(state): State<AppState>,
    _c: crate::auth::Caller,
    Path(key): Path<String>,
) -> Result<Json<DeviceDetail>, ApiError> {
    let key = key.trim();
    let mut device = state
        .store
        .device_by_serial(&key.to_ascii_uppercase())
        .await?;
    if device.is_none() {
        if let Ok(id) = key.parse::<i64>() {
            device = state.store.device(id).await?;
        }
    }
    let device = device.ok_or_else(|| {
        ApiError::not_found(format!("no device with serial number or id {key:?}"))
    })?;
    let apps = state
        .store
        .device_apps(device.id)
        .await?
        .into_iter()
        .map(|a| DeviceAppView {
            bundle_id: a.bundle_id,
            status: a.status,
            external_version_id: a.external_version_id,
            reported_at: crate::api::rfc3339(a.reported_at),
        })
        .collect();
    let declared_apps = state
        .store
        .dm_apps(device.id)
        .await?
        .into_iter()
        .map(|a| DeclaredAppView {
            bundle_id: a.bundle_id,
            state: a.state,
            reasons: a.reasons,
            external_version_id: a.external_version_id,
            reported_at: crate::api::rfc3339(a.reported_at),
        })
        .collect();
    Ok(Json(DeviceDetail {
        device: device.into(),
        apps,
        declared_apps,
    }))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NewDeviceRequest {
    pub serial_number: String,
    pub platform: String,
    #[serde(default)]
    pub model: String,
    #[serde(default)]
    pub name: String,
    /// The primary user's id or email.
    pub user: Option<String>,
    /// The MDM's enrollment id (NanoMDM: the UDID), where commands go — for a device whose
    /// enrollment webhook never arrived.
    pub enrollment_id: Option<String>,
}

/// Adds a device (or updates the one with this serial number).
#[utoipa::path(post, path = "/api/v1/devices", tag = "inventory", request_body = NewDeviceRequest,
    responses((status = 201, body = DeviceView), (status = 200, description = "updated", body = DeviceView), (status = 422, body = ErrorBody)), security(("api_key" = [])))]
pub async fn add_device(
    State(state): State<AppState>,
    _a: Writer,
    ApiJson(req): ApiJson<NewDeviceRequest>,
) -> Result<(StatusCode, Json<DeviceView>), ApiError> {
    let serial = check_serial(&req.serial_number).map_err(ApiError::invalid)?;
    let platform = check_platform(&req.platform).map_err(ApiError::invalid)?;
    let primary = match req.user.as_deref().map(str::trim).filter(|u| !u.is_empty()) {
        Some(u) => Some(
            find_person(&state, u)
                .await
                .map_err(|e| ApiError::invalid(e.message))?
                .id,
        ),
        None => None,
    };
    let enrollment_id = match req.enrollment_id.as_deref().map(str::trim) {
        Some(id) if !id.is_empty() => {
            crate::input::check_enrollment_id(id).map_err(ApiError::invalid)?;
            Some(id.to_owned())
        }
        _ => None,
    };
    let d = NewDevice {
        serial_number: serial,
        enrollment_id,
        platform,
        model: crate::input::check_text("model", &req.model, 200).map_err(ApiError::invalid)?,
        name: crate::input::check_text("name", &req.name, 200).map_err(ApiError::invalid)?,
        primary_person_id: primary,
        os_version: None,
    };
    let (row, created) = state.store.upsert_device(&d, allot_sync::now_ms()).await?;
    Ok((
        if created {
            StatusCode::CREATED
        } else {
            StatusCode::OK
        },
        Json(row.into()),
    ))
}

#[derive(Serialize, ToSchema)]
pub struct DeviceList {
    pub devices: Vec<DeviceView>,
    pub total: i64,
}

#[utoipa::path(get, path = "/api/v1/devices", tag = "inventory", params(ListQuery), responses((status = 200, body = DeviceList)), security(("api_key" = [])))]
pub async fn list_devices(
    State(state): State<AppState>,
    _c: Caller,
    q: Result<Query<ListQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<DeviceList>, ApiError> {
    let Query(q) = q.map_err(|e| ApiError::invalid(e.body_text()))?;
    let (limit, offset) = paging(&q)?;
    let (rows, total) = state
        .store
        .devices(
            q.search.as_deref().filter(|s| !s.trim().is_empty()),
            limit,
            offset,
        )
        .await?;
    Ok(Json(DeviceList {
        devices: rows.into_iter().map(Into::into).collect(),
        total,
    }))
}

#[derive(Debug, Default, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ImportReport {
    pub created: u64,
    /// Rows that existed, and lines repeating an earlier line's serial number or email (the later
    /// line wins, as if applied in order).
    pub updated: u64,
    /// Lines that were not imported, with why (line 1 is the header); the first 1,000.
    pub errors: Vec<ImportError>,
    /// Lines not imported beyond those listed in `errors`.
    pub errors_not_listed: u64,
}

impl ImportReport {
    pub(crate) fn refuse(&mut self, line: u64, message: String) {
        if self.errors.len() < 1000 {
            self.errors.push(ImportError { line, message });
        } else {
            self.errors_not_listed += 1;
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ImportError {
    pub line: u64,
    pub message: String,
}
