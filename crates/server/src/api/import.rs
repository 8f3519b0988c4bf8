//! CSV imports of users and devices (`POST /api/v1/users/import`, `/api/v1/devices/import`).
//! The file is read a record at a time and written a few thousand lines at a time, so memory
//! stays bounded whatever the file's size (within the body limit). Lines apply in order: within a
//! chunk a later line for the same serial number or email replaces the earlier one before the
//! write (400,000 repeats of one serial are a few statements, not 400,000), and a later chunk
//! updates what an earlier one wrote.

use std::collections::HashMap;

use allot_store::{NewDevice, NewPerson};
use axum::body::Bytes;
use axum::extract::State;
use axum::Json;

use super::inventory::{check_person, check_platform, check_serial, ImportReport};
use crate::auth::Writer;
use crate::error::{ApiError, ErrorBody};
use crate::input::check_text;
use crate::AppState;

/// Lines checked and merged before one write.
const CHUNK_LINES: usize = 5_000;

/// A CSV file's header and its records, with the line each starts on.
struct CsvFile<'a> {
    headers: Vec<String>,
    records: csv::StringRecordsIntoIter<&'a [u8]>,
}

impl<'a> CsvFile<'a> {
    /// Every named column must be known and the required ones present.
    fn open(body: &'a [u8], known: &[&str], required: &[&str]) -> Result<Self, ApiError> {
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
        Ok(Self {
            headers,
            records: r.into_records(),
        })
    }

    /// The next line: its number and its record, or why it cannot be read.
    fn next_line(&mut self) -> Option<(u64, Result<csv::StringRecord, String>)> {
        let rec = self.records.next()?;
        let line = match &rec {
            Ok(r) => r.position().map_or(0, |p| p.line()),
            Err(e) => e.position().map_or(0, |p| p.line()),
        };
        Some((
            line,
            rec.map_err(|e| e.to_string()).and_then(|r| {
                if r.iter().any(|cell| cell.contains('\0')) {
                    Err("the line contains a NUL character".to_owned())
                } else {
                    Ok(r)
                }
            }),
        ))
    }

    fn col<'r>(&self, row: &'r csv::StringRecord, name: &str) -> Option<&'r str> {
        self.headers
            .iter()
            .position(|h| h == name)
            .and_then(|i| row.get(i))
            .filter(|v| !v.is_empty())
    }
}

/// Rows of one chunk by key, in first-seen order: a repeated key's row is folded into the earlier
/// one by `apply`, which does what the database's upsert would do with the later line.
struct Merged<T> {
    rows: Vec<T>,
    at: HashMap<String, usize>,
    merged: u64,
    apply: fn(&mut T, T),
}

impl<T> Merged<T> {
    fn new(apply: fn(&mut T, T)) -> Self {
        Self {
            rows: Vec::new(),
            at: HashMap::new(),
            merged: 0,
            apply,
        }
    }

    fn push(&mut self, key: Option<String>, row: T) {
        match key.and_then(|k| match self.at.get(&k) {
            Some(&i) => Some(i),
            None => {
                self.at.insert(k, self.rows.len());
                None
            }
        }) {
            Some(i) => {
                (self.apply)(&mut self.rows[i], row);
                self.merged += 1;
            }
            None => self.rows.push(row),
        }
    }

    fn len(&self) -> usize {
        self.rows.len()
    }
}

/// A later line for the same email, as the people upsert applies it.
fn apply_person(earlier: &mut NewPerson, later: NewPerson) {
    earlier.name = later.name;
    if later.managed_apple_id.is_some() {
        earlier.managed_apple_id = later.managed_apple_id;
    }
    if later.department.is_some() {
        earlier.department = later.department;
    }
}

/// A later line for the same serial number, as the devices upsert applies it: empty fields keep
/// what the earlier line gave.
fn apply_device(earlier: &mut NewDevice, later: NewDevice) {
    earlier.platform = later.platform;
    if !later.model.is_empty() {
        earlier.model = later.model;
    }
    if !later.name.is_empty() {
        earlier.name = later.name;
    }
    if later.enrollment_id.is_some() {
        earlier.enrollment_id = later.enrollment_id;
    }
    if later.primary_person_id.is_some() {
        earlier.primary_person_id = later.primary_person_id;
    }
}

/// Imports users from CSV: `name,email,managed_apple_id,department` (all but the name
/// optional). Users are matched by email.
#[utoipa::path(post, path = "/api/v1/users/import", tag = "inventory", request_body(content = String, content_type = "text/csv"),
    responses((status = 200, body = ImportReport), (status = 422, body = ErrorBody)), security(("api_key" = [])))]
pub async fn import_users(
    State(state): State<AppState>,
    _a: Writer,
    body: Bytes,
) -> Result<Json<ImportReport>, ApiError> {
    let mut file = CsvFile::open(
        &body,
        &["name", "email", "managed_apple_id", "department"],
        &["name"],
    )?;
    let mut report = ImportReport::default();
    let mut chunk = Merged::new(apply_person);
    loop {
        let next = file.next_line();
        if let Some((line, row)) = next.as_ref().map(|(l, r)| (*l, r)) {
            let checked = row.clone().and_then(|row| {
                let mut p = check_person(
                    file.col(&row, "name").unwrap_or(""),
                    file.col(&row, "email"),
                )?;
                p.managed_apple_id = file
                    .col(&row, "managed_apple_id")
                    .map(|m| check_text("managed_apple_id", m, 200))
                    .transpose()?;
                p.department = file
                    .col(&row, "department")
                    .map(|d| check_text("department", d, 200))
                    .transpose()?
                    .filter(|d| !d.is_empty());
                Ok(p)
            });
            match checked {
                Ok(p) => chunk.push(p.email.clone(), p),
                Err(message) => report.refuse(line, message),
            }
        }
        if next.is_none() || chunk.len() >= CHUNK_LINES {
            let people: Vec<(NewPerson, String)> = std::mem::take(&mut chunk.rows)
                .into_iter()
                .map(|p| (p, uuid::Uuid::new_v4().to_string()))
                .collect();
            let (created, updated) = state
                .store
                .upsert_people(&people, allot_sync::now_ms())
                .await?;
            report.created += created;
            report.updated += updated + chunk.merged;
            chunk = Merged::new(apply_person);
        }
        if next.is_none() {
            return Ok(Json(report));
        }
    }
}

/// Imports devices from CSV: `serial_number,platform,model,name,user_email` (serial number and
/// platform required). Devices are matched by serial number.
#[utoipa::path(post, path = "/api/v1/devices/import", tag = "inventory", request_body(content = String, content_type = "text/csv"),
    responses((status = 200, body = ImportReport), (status = 422, body = ErrorBody)), security(("api_key" = [])))]
pub async fn import_devices(
    State(state): State<AppState>,
    _a: Writer,
    body: Bytes,
) -> Result<Json<ImportReport>, ApiError> {
    let mut file = CsvFile::open(
        &body,
        &["serial_number", "platform", "model", "name", "user_email"],
        &["serial_number", "platform"],
    )?;
    let mut report = ImportReport::default();
    let mut chunk: Vec<(u64, NewDevice, Option<String>)> = Vec::new();
    loop {
        let next = file.next_line();
        if let Some((line, row)) = &next {
            let checked: Result<(NewDevice, Option<String>), String> =
                row.clone().and_then(|row| {
                    let d = NewDevice {
                        serial_number: check_serial(file.col(&row, "serial_number").unwrap_or(""))?,
                        enrollment_id: None,
                        platform: check_platform(file.col(&row, "platform").unwrap_or(""))?,
                        model: check_text("model", file.col(&row, "model").unwrap_or(""), 200)?,
                        name: check_text("name", file.col(&row, "name").unwrap_or(""), 200)?,
                        primary_person_id: None,
                        os_version: None,
                    };
                    Ok((d, file.col(&row, "user_email").map(str::to_lowercase)))
                });
            match checked {
                Ok((d, email)) => chunk.push((*line, d, email)),
                Err(message) => report.refuse(*line, message),
            }
        }
        if next.is_none() || chunk.len() >= CHUNK_LINES {
            write_devices(&state, std::mem::take(&mut chunk), &mut report).await?;
        }
        if next.is_none() {
            report.errors.sort_by_key(|e| e.line);
            return Ok(Json(report));
        }
    }
}

/// One chunk: the users named by email found in one query, repeats merged, one write.
async fn write_devices(
    state: &AppState,
    chunk: Vec<(u64, NewDevice, Option<String>)>,
    report: &mut ImportReport,
) -> Result<(), ApiError> {
    let emails: Vec<String> = chunk.iter().filter_map(|v| v.2.clone()).collect();
    let people = state.store.people_by_emails(&emails).await?;
    let mut devices = Merged::new(apply_device);
    for (line, mut d, email) in chunk {
        if let Some(e) = email {
            match people.get(&e) {
                Some(id) => d.primary_person_id = Some(*id),
                None => {
                    report.refuse(
                        line,
                        format!("no user with email {e:?}: import users first"),
                    );
                    continue;
                }
            }
        }
        devices.push(Some(d.serial_number.clone()), d);
    }
    let (created, updated) = state
        .store
        .upsert_devices(&devices.rows, allot_sync::now_ms())
        .await?;
    report.created += created;
    report.updated += updated + devices.merged;
    Ok(())
}
