//! `/api/v1/users` and `/api/v1/devices`: the people and devices licenses go to, added one by one
//! or imported from CSV (later learned from the MDM too).

use allot_store::{DeviceRow, NewDevice, NewPerson, PersonRow};
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};

use crate::input::check_text;
use utoipa::{IntoParams, ToSchema};

use crate::auth::{Admin, Caller};
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

fn check_person(name: &str, email: Option<&str>) -> Result<NewPerson, String> {
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
    })
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NewUserRequest {
    pub name: String,
    pub email: Option<String>,
    /// A Managed Apple Account: joining the program then needs no invitation.
    pub managed_apple_id: Option<String>,
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
    _a: Admin,
    ApiJson(req): ApiJson<NewUserRequest>,
) -> Result<(StatusCode, Json<UserView>), ApiError> {
    let mut p = check_person(&req.name, req.email.as_deref()).map_err(ApiError::invalid)?;
    p.managed_apple_id = req
        .managed_apple_id
        .map(|m| m.trim().to_owned())
        .filter(|m| !m.is_empty());
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
    _a: Admin,
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
}

/// Adds a device (or updates the one with this serial number).
#[utoipa::path(post, path = "/api/v1/devices", tag = "inventory", request_body = NewDeviceRequest,
    responses((status = 201, body = DeviceView), (status = 200, description = "updated", body = DeviceView), (status = 422, body = ErrorBody)), security(("api_key" = [])))]
pub async fn add_device(
    State(state): State<AppState>,
    _a: Admin,
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
    let d = NewDevice {
        serial_number: serial,
        enrollment_id: None,
        platform,
        model: crate::input::check_text("model", &req.model, 200).map_err(ApiError::invalid)?,
        name: crate::input::check_text("name", &req.name, 200).map_err(ApiError::invalid)?,
        primary_person_id: primary,
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
pub struct ImportReport {
    pub created: u64,
    pub updated: u64,
    /// Lines that were not imported, with why (line 1 is the header).
    pub errors: Vec<ImportError>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ImportError {
    pub line: u64,
    pub message: String,
}

/// A CSV line: its number (the header is line 1) and its cells, or why it cannot be read.
type CsvLine = (u64, Result<Vec<String>, String>);

/// Reads CSV with a header; every named column must be known and the required ones present.
fn csv_rows(
    body: &[u8],
    known: &[&str],
    required: &[&str],
) -> Result<(Vec<String>, Vec<CsvLine>), ApiError> {
    let mut r = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .flexible(false)
        .from_reader(body);
    let headers: Vec<String> = r
        .headers()
        .map_err(|e| ApiError::invalid(format!("the CSV header cannot be read: {e}")))?
        .iter()
        .map(|h| h.trim_start_matches('\u{feff}').to_ascii_lowercase())
        .collect();
    if let Some(bad) = headers.iter().find(|h| !known.contains(&h.as_str())) {
        return Err(ApiError::invalid(format!(
            "unknown column {bad:?}; the columns are {}",
            known.join(", ")
        )));
    }
    if let Some(missing) = required.iter().find(|c| !headers.iter().any(|h| h == *c)) {
        return Err(ApiError::invalid(format!(
            "the CSV needs a {missing:?} column; the columns are {}",
            known.join(", ")
        )));
    }
    let rows = r
        .records()
        .enumerate()
        .map(|(i, rec)| {
            (
                i as u64 + 2,
                rec.map_err(|e| e.to_string()).and_then(|r| {
                    if r.iter().any(|cell| cell.contains('\0')) {
                        return Err("the line contains a NUL character".to_owned());
                    }
                    Ok(r.iter().map(str::to_owned).collect())
                }),
            )
        })
        .collect();
    Ok((headers, rows))
}

fn col<'a>(headers: &[String], row: &'a [String], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .position(|h| h == name)
        .and_then(|i| row.get(i))
        .map(String::as_str)
        .filter(|v| !v.is_empty())
}

/// Imports users from CSV: `name,email,managed_apple_id` (email and Managed Apple Account
/// optional). Users are matched by email.
#[utoipa::path(post, path = "/api/v1/users/import", tag = "inventory", request_body(content = String, content_type = "text/csv"),
    responses((status = 200, body = ImportReport), (status = 422, body = ErrorBody)), security(("api_key" = [])))]
pub async fn import_users(
    State(state): State<AppState>,
    _a: Admin,
    body: Bytes,
) -> Result<Json<ImportReport>, ApiError> {
    let (headers, rows) = csv_rows(&body, &["name", "email", "managed_apple_id"], &["name"])?;
    let mut report = ImportReport::default();
    // Checked line by line, then written 500 a statement; an email's later line goes in a later
    // batch, so lines still apply in order.
    let mut rounds: Vec<Vec<(NewPerson, String)>> = Vec::new();
    let mut seen: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
    for (line, row) in rows {
        let checked = row.and_then(|row| {
            let mut p = check_person(
                col(&headers, &row, "name").unwrap_or(""),
                col(&headers, &row, "email"),
            )?;
            p.managed_apple_id = col(&headers, &row, "managed_apple_id")
                .map(|m| check_text("managed_apple_id", m, 200))
                .transpose()?;
            Ok(p)
        });
        match checked {
            Ok(p) => {
                let round = match &p.email {
                    Some(e) => {
                        let r = seen.entry(e.clone()).or_insert(0);
                        *r += 1;
                        *r - 1
                    }
                    None => 0,
                };
                if rounds.len() <= round {
                    rounds.push(Vec::new());
                }
                rounds[round].push((p, uuid::Uuid::new_v4().to_string()));
            }
            Err(message) => report.errors.push(ImportError { line, message }),
        }
    }
    let now = allot_sync::now_ms();
    for people in &rounds {
        let (created, updated) = state.store.upsert_people(people, now).await?;
        report.created += created;
        report.updated += updated;
    }
    Ok(Json(report))
}

/// Imports devices from CSV: `serial_number,platform,model,name,user_email` (serial number and
/// platform required). Devices are matched by serial number.
#[utoipa::path(post, path = "/api/v1/devices/import", tag = "inventory", request_body(content = String, content_type = "text/csv"),
    responses((status = 200, body = ImportReport), (status = 422, body = ErrorBody)), security(("api_key" = [])))]
pub async fn import_devices(
    State(state): State<AppState>,
    _a: Admin,
    body: Bytes,
) -> Result<Json<ImportReport>, ApiError> {
    let (headers, rows) = csv_rows(
        &body,
        &["serial_number", "platform", "model", "name", "user_email"],
        &["serial_number", "platform"],
    )?;
    let mut report = ImportReport::default();
    // Checked line by line first; then written in batches (one line per statement made a
    // 500,000-device import take minutes).
    let mut valid: Vec<(u64, NewDevice, Option<String>)> = Vec::new();
    for (line, row) in rows {
        let checked: Result<(NewDevice, Option<String>), String> = (|| {
            let row = row?;
            let d = NewDevice {
                serial_number: check_serial(col(&headers, &row, "serial_number").unwrap_or(""))?,
                enrollment_id: None,
                platform: check_platform(col(&headers, &row, "platform").unwrap_or(""))?,
                model: check_text("model", col(&headers, &row, "model").unwrap_or(""), 200)?,
                name: check_text("name", col(&headers, &row, "name").unwrap_or(""), 200)?,
                primary_person_id: None,
            };
            Ok((d, col(&headers, &row, "user_email").map(str::to_lowercase)))
        })();
        match checked {
            Ok((d, email)) => valid.push((line, d, email)),
            Err(message) => report.errors.push(ImportError { line, message }),
        }
    }
    let emails: Vec<String> = valid.iter().filter_map(|v| v.2.clone()).collect();
    let people = state.store.people_by_emails(&emails).await?;
    // Lines apply in order: a serial number's second line goes in a second batch, and so on.
    let mut rounds: Vec<Vec<NewDevice>> = Vec::new();
    let mut seen: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
    for (line, mut d, email) in valid {
        if let Some(e) = email {
            match people.get(&e) {
                Some(id) => d.primary_person_id = Some(*id),
                None => {
                    report.errors.push(ImportError {
                        line,
                        message: format!("no user with email {e:?}: import users first"),
                    });
                    continue;
                }
            }
        }
        let round = seen.entry(d.serial_number.clone()).or_insert(0);
        if rounds.len() <= *round {
            rounds.push(Vec::new());
        }
        rounds[*round].push(d);
        *round += 1;
    }
    report.errors.sort_by_key(|e| e.line);
    let now = allot_sync::now_ms();
    for devices in &rounds {
        let (created, updated) = state.store.upsert_devices(devices, now).await?;
        report.created += created;
        report.updated += updated;
    }
    Ok(Json(report))
}
