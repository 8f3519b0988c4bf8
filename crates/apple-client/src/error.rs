//! What can go wrong talking to Apple, in terms a caller can act on.

use std::time::Duration;

use allot_apple_wire::{codes, ErrorResponse};

#[derive(Debug, Clone, thiserror::Error)]
pub enum AppleError {
    #[error("the content token has expired (Apple error 9621): download a new token from Apple Business Manager or Apple School Manager and renew it")]
    TokenExpired,
    #[error("the content token was revoked by Apple (error 9625), usually because a newer token was downloaded: upload the new token")]
    TokenRevoked,
    #[error("Apple does not accept the content token (error {0}): check that the file is the token of this location")]
    NotAuthorized(i32),
    #[error("Apple asks to slow down (error 9646){}", retry_note(.retry_after))]
    RateLimited { retry_after: Option<Duration> },
    /// 503, 9729 or 9644 (maintenance), or no connection at all: nothing was done.
    #[error("Apple's service is unavailable{}{}", number_note(*.number), retry_note(.retry_after))]
    Unavailable {
        number: i32,
        retry_after: Option<Duration>,
    },
    /// 500 / 9603: Apple failed; for a write, whether anything happened is unknown.
    #[error("Apple had an internal error{}{}", number_note(*.number), retry_note(.retry_after))]
    ServerError {
        number: i32,
        retry_after: Option<Duration>,
    },
    #[error("Apple refused the request: error {} ({})", .0.error_number, .0.error_message)]
    Api(ErrorResponse),
    #[error("Apple answered HTTP {status} without an error body")]
    Http { status: u16 },
    #[error("cannot reach Apple: {0}")]
    Transport(String),
    #[error("Apple's answer could not be read: {0}")]
    Decode(String),
    /// A write whose outcome we cannot know: the connection broke after the request left. It must
    /// not be replayed blindly; read the state back to learn whether it happened.
    #[error("the outcome of {0} is unknown (the connection failed after it was sent): read the state back before retrying")]
    OutcomeUnknown(String),
}

fn number_note(n: i32) -> String {
    if n == 0 {
        String::new()
    } else {
        format!(" (error {n})")
    }
}

fn retry_note(d: &Option<Duration>) -> String {
    d.map(|d| format!("; retry after {} s", d.as_secs()))
        .unwrap_or_default()
}

impl AppleError {
    /// Classifies Apple's error body by number (never by message: Apple's wording varies).
    pub fn from_body(body: ErrorResponse, retry_after: Option<Duration>) -> Self {
        match body.error_number {
            codes::TOKEN_EXPIRED => Self::TokenExpired,
            codes::TOKEN_REVOKED => Self::TokenRevoked,
            codes::LOGIN_REQUIRED | codes::INVALID_AUTHORIZATION_HEADER => {
                Self::NotAuthorized(body.error_number)
            }
            codes::TOO_MANY_REQUESTS => Self::RateLimited { retry_after },
            n @ (codes::SERVICE_UNAVAILABLE | codes::MAINTENANCE) => Self::Unavailable {
                number: n,
                retry_after,
            },
            codes::INTERNAL_ERROR => Self::ServerError {
                number: codes::INTERNAL_ERROR,
                retry_after,
            },
            _ => Self::Api(body),
        }
    }

    /// Apple refused without doing anything, and says to come back later: safe to send again,
    /// even for a write.
    pub fn is_refusal_to_retry(&self) -> bool {
        matches!(self, Self::RateLimited { .. } | Self::Unavailable { .. })
    }

    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::RateLimited { retry_after }
            | Self::Unavailable { retry_after, .. }
            | Self::ServerError { retry_after, .. } => *retry_after,
            _ => None,
        }
    }

    /// Apple's error number, when there is one.
    pub fn error_number(&self) -> Option<i32> {
        match self {
            Self::TokenExpired => Some(codes::TOKEN_EXPIRED),
            Self::TokenRevoked => Some(codes::TOKEN_REVOKED),
            Self::NotAuthorized(n) => Some(*n),
            Self::RateLimited { .. } => Some(codes::TOO_MANY_REQUESTS),
            Self::Unavailable { number, .. } | Self::ServerError { number, .. } if *number != 0 => {
                Some(*number)
            }
            Self::Api(b) => Some(b.error_number),
            _ => None,
        }
    }
}

pub type AppleResult<T> = Result<T, AppleError>;
