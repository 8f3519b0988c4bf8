//! `POST /apple/notifications/{token_id}`: where Apple delivers notifications. Authenticated by
//! the token's notification secret; a 2xx tells Apple to stop retrying, so only a failure to
//! store is answered 5xx (Apple then retries).

use allot_sync::NotificationError;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::Json;

use crate::error::ApiError;
use crate::AppState;

pub async fn receive(
    State(state): State<AppState>,
    Path(token_id): Path<i64>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<serde_json::Value>, ApiError> {
    let auth = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    // Checked at the edge like every body: no text we store can hold a NUL.
    if let Ok(v) = serde_json::from_slice::<serde_json::Value>(&body) {
        if crate::input::json_has_nul(&v) {
            return Err(ApiError::bad_request(
                "the notification contains a NUL character, which no field can hold",
            ));
        }
    }
    match state
        .engine
        .receive_notification(token_id, auth, &body)
        .await
    {
        Ok(o) => {
            counted(
                &o.notification_type,
                if o.duplicate { "duplicate" } else { "applied" },
            );
            if o.applied > 0 {
                state.executor.wake();
            }
            Ok(Json(
                serde_json::json!({ "received": o.notification_type, "duplicate": o.duplicate, "applied": o.applied }),
            ))
        }
        // An unknown token is answered as a wrong secret: the answer does not tell which token
        // ids exist.
        Err(NotificationError::UnknownToken(_) | NotificationError::Unauthorized) => {
            counted("", "refused");
            tracing::warn!(token = token_id, "notification with a wrong secret refused");
            Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "wrong notification secret",
            ))
        }
        Err(e @ (NotificationError::Malformed(_) | NotificationError::WrongLocation { .. })) => {
            counted("", "refused");
            Err(ApiError::bad_request(e.to_string()))
        }
        Err(NotificationError::Store(e)) => Err(e.into()),
    }
}

/// A notification in the metrics, by Apple's type (a name Apple's documentation uses; anything
/// else as `other`, so a sender cannot grow the series) and outcome.
fn counted(kind: &str, outcome: &str) {
    let known = !kind.is_empty()
        && kind.len() <= 40
        && kind.bytes().all(|b| b.is_ascii_uppercase() || b == b'_');
    allot_telemetry::count(
        "allot_notifications_received_total",
        &[
            ("type", if known { kind } else { "other" }),
            ("outcome", outcome),
        ],
    );
}
