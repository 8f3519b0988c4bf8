//! The API's one error type: a status and a JSON body `{"error": {"code", "message"}}` with a
//! message a person can act on. Internal failures are logged in full and answered briefly.

use axum::extract::rejection::JsonRejection;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;
use utoipa::ToSchema;

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
}

#[derive(Serialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Serialize, ToSchema)]
pub struct ErrorDetail {
    /// Stable, machine-readable: `not_found`, `conflict`, `invalid`, …
    pub code: String,
    pub message: String,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
        }
    }
    pub fn not_found(m: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", m)
    }
    pub fn invalid(m: impl Into<String>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid", m)
    }
    pub fn bad_request(m: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "bad_request", m)
    }
    pub fn conflict(m: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, "conflict", m)
    }
    pub fn internal(e: impl std::fmt::Display) -> Self {
        tracing::error!(error = %e, "internal error");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "something went wrong on the server; it has been logged",
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (
            self.status,
            Json(ErrorBody {
                error: ErrorDetail {
                    code: self.code.into(),
                    message: self.message,
                },
            }),
        )
            .into_response()
    }
}

impl From<JsonRejection> for ApiError {
    fn from(r: JsonRejection) -> Self {
        match r {
            JsonRejection::MissingJsonContentType(_) => Self::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "send the body as JSON with Content-Type: application/json",
            ),
            JsonRejection::BytesRejection(b) if b.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                Self::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "too_large",
                    "the request body is too large",
                )
            }
            other => Self::bad_request(format!(
                "the request body is not valid: {}",
                other.body_text()
            )),
        }
    }
}

impl From<allot_store::StoreError> for ApiError {
    fn from(e: allot_store::StoreError) -> Self {
        match e {
            allot_store::StoreError::Conflict(m) => Self::conflict(m),
            allot_store::StoreError::Database(sqlx_error) => match input_refused(&sqlx_error) {
                Some(why) => Self::bad_request(why),
                None => Self::internal(sqlx_error),
            },
            other => Self::internal(other),
        }
    }
}

/// What the database refused about a value we let through (a safety net: the edge checks these
/// first): the errors PostgreSQL gives for input, not for its own failures.
fn input_refused(e: &allot_store::sqlx::Error) -> Option<&'static str> {
    let code = e.as_database_error()?.code()?;
    Some(match code.as_ref() {
        // character_not_in_repertoire (NUL), untranslatable_character
        "22021" | "22P05" => "a value contains a character that cannot be stored (such as NUL)",
        // numeric_value_out_of_range
        "22003" => "a number is out of range",
        // program_limit_exceeded (an index row too large)
        "54000" => "a value is too long to be stored",
        // string_data_right_truncation
        "22001" => "a value is too long to be stored",
        _ => return None,
    })
}

impl From<allot_sync::TokenError> for ApiError {
    fn from(e: allot_sync::TokenError) -> Self {
        use allot_sync::TokenError as T;
        let msg = e.to_string();
        match e {
            T::Invalid(_)
            | T::Malformed(_)
            | T::Expired(_)
            | T::Rejected(_)
            | T::WrongLocation { .. } => Self::invalid(msg),
            T::DuplicateName(_) | T::DuplicateLocation { .. } => Self::conflict(msg),
            T::AppleUnavailable(_) => Self::new(StatusCode::BAD_GATEWAY, "apple_unavailable", msg),
            T::NotFound(_) => Self::not_found(msg),
            T::Store(s) => s.into(),
            T::Secret(s) => Self::internal(s),
        }
    }
}

impl From<allot_sync::SubscriptionError> for ApiError {
    fn from(e: allot_sync::SubscriptionError) -> Self {
        use allot_apple_client::AppleError as A;
        use allot_sync::SubscriptionError as S;
        let msg = e.to_string();
        match e {
            S::NotFound(_) => Self::not_found(msg),
            S::NotOurs { .. } | S::NotEnabled(_) => Self::conflict(msg),
            // Apple refused the request itself (an unknown user or subscription, a seat not held).
            S::Apple(A::Api(_)) => Self::invalid(msg),
            S::Apple(A::TokenExpired | A::TokenRevoked | A::NotAuthorized(_)) => {
                Self::conflict(msg)
            }
            S::Apple(_) => Self::new(StatusCode::BAD_GATEWAY, "apple_unavailable", msg),
            S::Other(m) => Self::internal(m),
        }
    }
}

impl From<allot_sync::SyncError> for ApiError {
    fn from(e: allot_sync::SyncError) -> Self {
        use allot_sync::SyncError as S;
        match e {
            S::AlreadyRunning => Self::conflict("a sync of this token is already running; follow it at GET /api/v1/tokens/{id}/sync"),
            S::NotFound(id) => Self::not_found(format!("no token with id {id}")),
            other => Self::internal(other),
        }
    }
}

/// JSON bodies whose mistakes become our error body rather than axum's plain text.
pub struct ApiJson<T>(pub T);

impl<S, T> axum::extract::FromRequest<S> for ApiJson<T>
where
    S: Send + Sync,
    T: serde::de::DeserializeOwned,
{
    type Rejection = ApiError;

    async fn from_request(req: axum::extract::Request, state: &S) -> Result<Self, Self::Rejection> {
        let Json(v) = Json::<serde_json::Value>::from_request(req, state).await?;
        if crate::input::json_has_nul(&v) {
            return Err(Self::Rejection::bad_request(
                "the request body contains a NUL character (\\u0000), which no field can hold",
            ));
        }
        let v = serde_json::from_value(v)
            .map_err(|e| ApiError::bad_request(format!("the request body is not valid: {e}")))?;
        Ok(ApiJson(v))
    }
}

/// One error body everywhere: an error answered by axum itself (a query string or path it could
/// not read, a body over the limit, an unknown route, a wrong method) is plain text or empty; it
/// becomes the JSON envelope, with the text as the message. Console pages (HTML) are left alone.
pub async fn json_error_bodies(
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let (method, path) = (req.method().clone(), req.uri().path().to_owned());
    let res = next.run(req).await;
    let status = res.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return res;
    }
    let kind = res
        .headers()
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase();
    if kind.starts_with("application/json") || kind.starts_with("text/html") {
        return res;
    }
    let allow = res.headers().get(axum::http::header::ALLOW).cloned();
    let text = axum::body::to_bytes(res.into_body(), 64 * 1024)
        .await
        .map(|b| String::from_utf8_lossy(&b).trim().to_owned())
        .unwrap_or_default();
    let (code, message) = match status {
        StatusCode::NOT_FOUND if text.is_empty() => {
            ("not_found", format!("no such route: {method} {path}"))
        }
        StatusCode::METHOD_NOT_ALLOWED => (
            "method_not_allowed",
            format!(
                "{method} is not allowed on {path}{}",
                allow
                    .as_ref()
                    .and_then(|a| a.to_str().ok())
                    .map(|a| format!("; allowed: {a}"))
                    .unwrap_or_default()
            ),
        ),
        StatusCode::PAYLOAD_TOO_LARGE => ("too_large", "the request body is too large".to_owned()),
        StatusCode::UNSUPPORTED_MEDIA_TYPE => ("unsupported_media_type", text),
        s if s.is_server_error() => ("internal", "something went wrong on the server".to_owned()),
        _ if text.is_empty() => ("bad_request", "the request could not be read".to_owned()),
        _ => ("bad_request", text),
    };
    let mut out = ApiError::new(status, code, message).into_response();
    if let Some(a) = allow {
        out.headers_mut().insert(axum::http::header::ALLOW, a);
    }
    out
}
