//! `POST /mdm/webhook`: NanoMDM's webhook. Devices are learned from check-ins: Authenticate adds
//! or updates a device with its serial number (an enrollment again makes the commands NanoMDM
//! wiped go again), CheckOut marks it unenrolled (its licenses are then reclaimed by policy).
//! NanoMDM sends each event once and drops it unless answered exactly 200.

use allot_mdm::{webhook, Event};
use allot_store::{NewDevice, StoreError};
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use serde_json::json;

use crate::error::ApiError;
use crate::AppState;

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
    let event = webhook::parse(&body).map_err(|e| ApiError::bad_request(e.to_string()))?;
    let now = allot_sync::now_ms();
    let store = &state.store;
    Ok(Json(match event {
        Event::Authenticate(c) => match &c.serial_number {
            Some(serial) => {
                let device = NewDevice {
                    serial_number: serial.clone(),
                    enrollment_id: Some(c.enrollment_id.clone()),
                    platform: c.platform().into(),
                    model: c
                        .product_name
                        .clone()
                        .or(c.model.clone())
                        .unwrap_or_default(),
                    name: c.device_name.clone().unwrap_or_default(),
                    primary_person_id: None,
                };
                let (d, created) =
                    store
                        .upsert_device(&device, now)
                        .await
                        .map_err(|e| match e {
                            StoreError::Conflict(_) => ApiError::conflict(format!(
                                "enrollment {} already belongs to another device",
                                c.enrollment_id
                            )),
                            e => e.into(),
                        })?;
                // Enrolling again wiped the device's NanoMDM queue: what was sent goes again.
                let resent = store.resend_to_enrollment(&c.enrollment_id, now).await?;
                tracing::info!(serial = %serial, enrollment = %c.enrollment_id, created, resent, "device enrolled");
                json!({ "event": "mdm.Authenticate", "device": d.id, "created": created, "resent": resent })
            }
            // User Enrollment: no serial number, so no device licenses; users are licensed instead.
            None => json!({ "event": "mdm.Authenticate", "device": null }),
        },
        Event::CheckOut { enrollment_id } => {
            let device = store.device_by_enrollment(&enrollment_id).await?;
            if let Some(d) = &device {
                if store.set_device_unenrolled(d.id, now).await? {
                    tracing::info!(serial = %d.serial_number, "device left management");
                }
            }
            json!({ "event": "mdm.CheckOut", "device": device.map(|d| d.id) })
        }
        Event::TokenUpdate { .. } => json!({ "event": "mdm.TokenUpdate" }),
        Event::Connect {
            enrollment_id,
            status,
            command_uuid,
            report,
        } => {
            let updated = match &command_uuid {
                Some(uuid) => state
                    .executor
                    .command_result(&enrollment_id, uuid, &status, report.as_ref())
                    .await
                    .map_err(ApiError::internal)?,
                None => 0,
            };
            json!({ "event": "mdm.Connect", "status": status, "targets": updated })
        }
        Event::Other(topic) => json!({ "event": topic, "ignored": true }),
    }))
}
