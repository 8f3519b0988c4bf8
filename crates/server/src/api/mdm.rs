//! `GET /api/v1/mdm/status`: the MDM connector as Allot sees it — NanoMDM's last answer or error,
//! failures in a row, its push certificate and expiry, the last webhook, commands waiting, and the
//! devices whose push did not reach them (retried with backoff until they check in).

use axum::extract::State;
use axum::Json;
use serde::Serialize;
use utoipa::ToSchema;

use crate::auth::Caller;
use crate::error::ApiError;
use crate::AppState;

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PushFailureView {
    pub serial_number: String,
    pub enrollment_id: String,
    /// NanoMDM's words.
    pub error: String,
    pub attempts: i64,
    /// RFC 3339; none once the attempts ran out (the device is pushed again when a command is
    /// next sent to it, and clears when it checks in).
    pub next_attempt_at: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PushCertView {
    pub topic: String,
    /// RFC 3339.
    pub not_after: String,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct MdmStatus {
    /// Whether a NanoMDM is configured (`ALLOT_NANOMDM_URL`).
    pub configured: bool,
    /// `ok`, `failing` (its last call failed) or `not_configured`.
    pub state: String,
    /// RFC 3339: NanoMDM's last good answer since this server started.
    pub last_success_at: Option<String>,
    /// The last error, in words (401: the API key; unreachable; 5xx).
    pub last_error: Option<String>,
    pub last_error_at: Option<String>,
    pub consecutive_failures: u64,
    /// RFC 3339: while NanoMDM fails, Allot sends it nothing before this time (waits doubling
    /// from 30 s to 15 minutes), so a server that is down is not hammered.
    pub next_attempt_at: Option<String>,
    /// RFC 3339: when NanoMDM's webhook last reached this server (none since it started: check
    /// NanoMDM's `-webhook-url` and `-webhook-hmac-key`).
    pub last_webhook_at: Option<String>,
    /// Targets whose command was sent and not answered yet.
    pub commands_waiting: i64,
    /// NanoMDM's push certificate for the topic devices enrolled with (known from their first
    /// Authenticate), with its expiry; none before a device enrolled.
    pub push_certificate: Option<PushCertView>,
    /// Why the push certificate could not be read (none uploaded to NanoMDM: every push fails).
    pub push_certificate_error: Option<String>,
    /// Devices whose last push failed.
    pub push_failures: i64,
    /// Devices whose push failed in the last hour (some may have checked in since).
    pub push_failures_last_hour: i64,
    /// The first 50 of them, soonest retry first.
    pub devices: Vec<PushFailureView>,
}

use crate::api::rfc3339;

#[utoipa::path(get, path = "/api/v1/mdm/status", tag = "inventory",
    responses((status = 200, body = MdmStatus)), security(("api_key" = [])))]
pub async fn status(
    State(state): State<AppState>,
    _c: Caller,
) -> Result<Json<MdmStatus>, ApiError> {
    let health = state.executor.mdm_health();
    let topic = state.store.setting(crate::mdm_webhook::PUSH_TOPIC).await?;
    let (push_certificate, push_certificate_error) = match &topic {
        Some(t) => match state.executor.push_cert(t).await {
            Some(Ok(c)) => (
                Some(PushCertView {
                    topic: c.topic,
                    not_after: c.not_after,
                }),
                None,
            ),
            Some(Err(e)) => (None, Some(e.to_string())),
            None => (None, None),
        },
        None => (None, None),
    };
    let (failures, total) = state.store.push_failures(50).await?;
    let last_hour = state
        .store
        .push_failures_since(allot_sync::now_ms() - 3_600_000)
        .await?;
    let devices = failures
        .into_iter()
        .map(|(serial, id, error, attempts, next)| PushFailureView {
            serial_number: serial,
            enrollment_id: id,
            error,
            next_attempt_at: next
                .filter(|_| attempts < allot_deploy::MAX_PUSH_ATTEMPTS)
                .map(rfc3339),
            attempts,
        })
        .collect();
    Ok(Json(match health {
        None => MdmStatus {
            configured: false,
            state: "not_configured".into(),
            last_success_at: None,
            last_error: None,
            last_error_at: None,
            consecutive_failures: 0,
            next_attempt_at: None,
            last_webhook_at: None,
            commands_waiting: 0,
            push_certificate,
            push_certificate_error,
            push_failures: total,
            push_failures_last_hour: last_hour,
            devices,
        },
        Some(h) => MdmStatus {
            configured: true,
            state: if h.consecutive_failures > 0 {
                "failing"
            } else {
                "ok"
            }
            .into(),
            last_success_at: h.last_success_at.map(rfc3339),
            last_error: h.last_error,
            last_error_at: h.last_error_at.map(rfc3339),
            consecutive_failures: h.consecutive_failures,
            next_attempt_at: h
                .next_attempt_at
                .filter(|t| *t > allot_sync::now_ms())
                .map(rfc3339),
            last_webhook_at: h.last_webhook_at.map(rfc3339),
            commands_waiting: h.commands_waiting,
            push_certificate,
            push_certificate_error,
            push_failures: total,
            push_failures_last_hour: last_hour,
            devices,
        },
    }))
}
