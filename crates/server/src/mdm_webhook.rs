//! `POST /mdm/webhook`: NanoMDM's webhook. Devices are learned from check-ins: Authenticate adds
//! or updates a device with its serial number (an enrollment again makes the commands NanoMDM
//! wiped go again), CheckOut marks it unenrolled (its licenses are then reclaimed by policy). An
//! enrollment known only from a TokenUpdate or Connect (its Authenticate was lost) is asked for its
//! DeviceInformation and learned from the answer.
//! NanoMDM sends each event once and drops it unless answered exactly 200.

use allot_mdm::{webhook, Event};
use allot_store::{NewDevice, StoreError};
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use serde_json::json;

use crate::api::inventory::check_serial;
use crate::error::ApiError;
use crate::{input, AppState};

/// The setting holding the APNs topic devices enroll with.
pub(crate) const PUSH_TOPIC: &str = "mdm_push_topic";

/// How long event ids are remembered; an event older than this is refused outright, since its
/// id may be forgotten.
const REPLAY_WINDOW_MS: i64 = 7 * 86_400_000;

pub async fn receive(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<serde_json::Value>, ApiError> {
    let Some(key) = &state.mdm_webhook_key else {
        return Err(ApiError::not_found(
            "the MDM webhook is off: set ALLOT_MDM_WEBHOOK_HMAC_KEY to NanoMDM's -webhook-hmac-key",
        ));
    };
    let signature = headers
        .get("x-hmac-signature")
        .and_then(|v| v.to_str().ok());
    webhook::verify_signature(key, &body, signature)
        .map_err(|e| ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", e.to_string()))?;
    let delivery =
        webhook::parse_delivery(&body).map_err(|e| ApiError::bad_request(e.to_string()))?;
    let now = allot_sync::now_ms();
    // NanoMDM's time for the event; without one (older senders), the time it arrived.
    let at = match &delivery.created_at {
        Some(t) => chrono::DateTime::parse_from_rfc3339(t)
            .map_err(|_| {
                ApiError::bad_request(format!(
                    "created_at {:?} is not an RFC 3339 time",
                    input::device_text(t, 64)
                ))
            })?
            .timestamp_millis(),
        None => now,
    };
    if at < now - REPLAY_WINDOW_MS {
        return Err(ApiError::bad_request(
            "the event is more than 7 days old: refused, since it cannot be told from a replay",
        ));
    }
    if let Some(id) = event_enrollment(&delivery.event) {
        input::check_enrollment_id(id).map_err(ApiError::bad_request)?;
    }
    if let Some(id) = &delivery.event_id {
        if id.len() > 128 || id.contains(char::is_control) {
            return Err(ApiError::bad_request(
                "event_id must be at most 128 printable characters",
            ));
        }
        if !state
            .store
            .record_mdm_event(id, now, now - REPLAY_WINDOW_MS)
            .await?
        {
            return Err(ApiError::conflict(format!(
                "event {id} was applied already: a body is applied once"
            )));
        }
    }
    let delivery_id = delivery.event_id.clone();
    state.executor.webhook_received();
    // The device spoke: a push that failed before has nothing left to wake.
    if let Some(id) = event_enrollment(&delivery.event) {
        state.store.clear_push_error(id).await?;
    }
    let event = delivery.event;
    let store = &state.store;
    // Applied, or not at all: an event that failed half-way is forgotten, so that the same body
    // sent again (by hand, or by an MDM that retries) is applied rather than refused as a replay.
    let applied: Result<Json<serde_json::Value>, ApiError> = async {
    Ok(Json(match event {
        Event::Authenticate(c) => match learn_authenticated(store, &c, at, now).await? {
            Learned::Device { id, created, resent } => {
                json!({ "event": "mdm.Authenticate", "device": id, "created": created, "resent": resent })
            }
            Learned::Stale(id) => return Ok(Json(stale("mdm.Authenticate", id))),
            // User Enrollment: no serial number, so no device licenses; users are licensed instead.
            Learned::NoSerial => json!({ "event": "mdm.Authenticate", "device": null }),
        },
        Event::CheckOut { enrollment_id } => {
            let device = store.device_by_enrollment(&enrollment_id).await?;
            if let Some(d) = &device {
                if !store.advance_device_event(d.id, at).await? {
                    return Ok(Json(stale("mdm.CheckOut", d.id)));
                }
                if store.set_device_unenrolled(d.id, now).await? {
                    tracing::info!(serial = %d.serial_number, "device left management");
                }
            }
            json!({ "event": "mdm.CheckOut", "device": device.map(|d| d.id) })
        }
        Event::TokenUpdate { enrollment_id, .. } => {
            // Its Authenticate may have been lost (NanoMDM tries once): ask the device itself.
            let asked = store.device_by_enrollment(&enrollment_id).await?.is_none()
                && state
                    .executor
                    .ask_device_information(&enrollment_id)
                    .await
                    .map_err(ApiError::internal)?;
            json!({ "event": "mdm.TokenUpdate", "askedForDeviceInformation": asked })
        }
        Event::Connect {
            enrollment_id,
            status,
            command_uuid,
            report,
        } if command_uuid.is_some()
            && store
                .is_device_query(command_uuid.as_deref().unwrap_or_default(), &enrollment_id)
                .await? =>
        {
            // The answer to a DeviceInformation about an enrollment Allot did not know.
            let answers = report
                .as_ref()
                .and_then(|r| r.get("QueryResponses"))
                .and_then(allot_mdm::plist::Value::as_dictionary);
            let text = |k: &str| {
                answers
                    .and_then(|a| a.get(k))
                    .and_then(allot_mdm::plist::Value::as_string)
                    .map(str::to_owned)
            };
            let c = allot_mdm::CheckIn {
                enrollment_id: enrollment_id.clone(),
                serial_number: text("SerialNumber"),
                product_name: text("ProductName"),
                model: text("Model"),
                device_name: text("DeviceName"),
                os_version: text("OSVersion"),
                topic: None,
            };
            if let Some(known) = store.device_by_enrollment(&enrollment_id).await? {
                // The periodic refresh: what the device says of its OS and model now.
                let model = c.product_name.as_deref().or(c.model.as_deref()).map(|m| input::device_text(m, 200));
                store
                    .record_device_info(known.id, os_version(&c).as_deref(), model.as_deref(), at)
                    .await?;
                return Ok(Json(json!({ "event": "mdm.Connect", "device": known.id, "osVersion": os_version(&c) })));
            }
            match (status.as_str(), learn_device(store, &c, at, now).await?) {
                (_, Learned::Device { id, created, .. }) => {
                    tracing::info!(enrollment = %enrollment_id, device = id, "device learned from its DeviceInformation");
                    state.executor.wake();
                    json!({ "event": "mdm.Connect", "device": id, "created": created })
                }
                (_, Learned::Stale(id)) => return Ok(Json(stale("mdm.Connect", id))),
                (s, Learned::NoSerial) => json!({ "event": "mdm.Connect", "status": s, "device": null }),
            }
        }
        Event::Connect {
            enrollment_id,
            status,
            command_uuid,
            report,
        } => {
            if store.device_by_enrollment(&enrollment_id).await?.is_none() {
                state
                    .executor
                    .ask_device_information(&enrollment_id)
                    .await
                    .map_err(ApiError::internal)?;
            }
            let updated = match &command_uuid {
                Some(uuid) => state
                    .executor
                    .command_result(&enrollment_id, uuid, &status, report.as_ref())
                    .await
                    .map_err(ApiError::internal)?,
                None => 0,
            };
            if updated > 0 {
                state.executor.wake();
            }
            json!({ "event": "mdm.Connect", "status": status, "targets": updated })
        }
        Event::Other(topic) => json!({ "event": topic, "ignored": true }),
    }))
    }
    .await;
    if applied.is_err() {
        if let Some(id) = &delivery_id {
            if let Err(e) = store.forget_mdm_event(id).await {
                tracing::warn!(error = %e, "could not forget a webhook event that failed to apply");
            }
        }
    }
    applied
}

/// The enrollment an event names, to check before it is used.
fn event_enrollment(e: &Event) -> Option<&str> {
    match e {
        Event::Authenticate(c) => Some(&c.enrollment_id),
        Event::TokenUpdate { enrollment_id, .. }
        | Event::CheckOut { enrollment_id }
        | Event::Connect { enrollment_id, .. } => Some(enrollment_id),
        Event::Other(_) => None,
    }
}

/// An event older than one already applied to the device: acknowledged, not applied.
fn stale(topic: &str, device: i64) -> serde_json::Value {
    json!({ "event": topic, "device": device, "stale": true,
            "ignored": "a newer event for this device was applied already" })
}

/// An Authenticate: the push certificate's topic is kept (for the connector status to ask NanoMDM
/// about it), then the device learned.
async fn learn_authenticated(
    store: &allot_store::Store,
    c: &allot_mdm::CheckIn,
    at: i64,
    now: i64,
) -> Result<Learned, ApiError> {
    if let Some(topic) = c
        .topic
        .as_deref()
        .filter(|t| t.len() <= 255 && !t.contains(char::is_control))
    {
        store.setting_or_insert(PUSH_TOPIC, topic).await?;
    }
    learn_device(store, c, at, now).await
}

/// What a device's check-in (or DeviceInformation answer) taught.
enum Learned {
    Device {
        id: i64,
        created: bool,
        resent: u64,
    },
    /// Older than an event already applied to the device.
    Stale(i64),
    /// No serial number (User Enrollment, or a refused query): nothing to learn.
    NoSerial,
}

/// Adds or updates the device a check-in describes: its serial number follows the API's rules,
/// the words it chose are cleaned, and enrolling again makes what NanoMDM wiped go again.
async fn learn_device(
    store: &allot_store::Store,
    c: &allot_mdm::CheckIn,
    at: i64,
    now: i64,
) -> Result<Learned, ApiError> {
    let Some(serial) = &c.serial_number else {
        return Ok(Learned::NoSerial);
    };
    let serial = check_serial(serial).map_err(ApiError::bad_request)?;
    if let Some(d) = store.device_by_serial(&serial).await? {
        if !store.advance_device_event(d.id, at).await? {
            return Ok(Learned::Stale(d.id));
        }
    }
    let device = NewDevice {
        serial_number: serial.clone(),
        enrollment_id: Some(c.enrollment_id.clone()),
        platform: c.platform().into(),
        model: input::device_text(
            c.product_name
                .as_deref()
                .or(c.model.as_deref())
                .unwrap_or(""),
            200,
        ),
        name: input::device_text(c.device_name.as_deref().unwrap_or(""), 200),
        primary_person_id: None,
        os_version: os_version(c),
    };
    let (d, created) = store
        .upsert_device(&device, now)
        .await
        .map_err(|e| match e {
            StoreError::Conflict(_) => ApiError::conflict(format!(
                "enrollment {} already belongs to another device",
                c.enrollment_id
            )),
            e => e.into(),
        })?;
    store.advance_device_event(d.id, at).await?;
    let resent = store.resend_to_enrollment(&c.enrollment_id, now).await?;
    tracing::info!(serial = %serial, enrollment = %c.enrollment_id, created, resent, "device enrolled");
    Ok(Learned::Device {
        id: d.id,
        created,
        resent,
    })
}

/// The OS version a device reported, if it reads as one (`17.4.1`); anything else is dropped.
fn os_version(c: &allot_mdm::CheckIn) -> Option<String> {
    c.os_version
        .as_deref()
        .and_then(allot_domain::os::OsVersion::parse)
        .map(|v| v.to_string())
}
