//! Apple's error body and the v2 error catalogue (spec §14.1).

use serde::{Deserialize, Serialize};

use crate::AssetRef;

/// The body of every error, synchronous or asynchronous.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ErrorResponse {
    pub error_number: i32,
    #[serde(default)]
    pub error_message: String,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub error_info: Option<ErrorInfo>,
}

/// The entities an error affected.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ErrorInfo {
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub assets: Vec<AssetRef>,
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub client_user_ids: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub serial_numbers: Vec<String>,
}

impl ErrorResponse {
    /// An error with the catalogue's message for `number`.
    pub fn new(number: i32) -> Self {
        Self {
            error_number: number,
            error_message: codes::message(number).to_owned(),
            error_info: None,
        }
    }

    /// An error with a more specific message than the catalogue's.
    pub fn with_message(number: i32, message: impl Into<String>) -> Self {
        Self {
            error_number: number,
            error_message: message.into(),
            error_info: None,
        }
    }
}

impl std::fmt::Display for ErrorResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Apple error {}: {}",
            self.error_number, self.error_message
        )
    }
}

/// Error numbers of the v2 service. Never match on messages: Apple's wording varies.
pub mod codes {
    pub const LOGIN_REQUIRED: i32 = 9601;
    pub const INVALID_ARGUMENT: i32 = 9602;
    pub const INTERNAL_ERROR: i32 = 9603;
    pub const USER_NOT_FOUND: i32 = 9609;
    pub const TOKEN_EXPIRED: i32 = 9621;
    pub const TOKEN_REVOKED: i32 = 9625;
    pub const SERVICE_GONE: i32 = 9634;
    pub const APPLE_ACCOUNT_NOT_ASSOCIABLE: i32 = 9635;
    pub const FACILITATOR_NOT_ALLOWED: i32 = 9637;
    pub const APPLE_ACCOUNT_ALREADY_BOUND: i32 = 9641;
    pub const MAINTENANCE: i32 = 9644;
    pub const TOO_MANY_REQUESTS: i32 = 9646;
    pub const LEGACY_TOKEN: i32 = 9647;
    pub const PAGE_OUT_OF_RANGE: i32 = 9650;
    pub const TOO_MANY_ASSETS: i32 = 9700;
    pub const TOO_MANY_CLIENT_USER_IDS: i32 = 9701;
    pub const TOO_MANY_SERIAL_NUMBERS: i32 = 9702;
    pub const DUPLICATE_ASSETS: i32 = 9703;
    pub const DUPLICATE_CLIENT_USER_IDS: i32 = 9704;
    pub const DUPLICATE_SERIAL_NUMBERS: i32 = 9705;
    pub const NOT_REVOCABLE: i32 = 9706;
    pub const NOT_DEVICE_ASSIGNABLE: i32 = 9707;
    pub const EVENT_NOT_FOUND: i32 = 9708;
    pub const NOT_ENOUGH_LICENSES: i32 = 9709;
    pub const NOTIFICATION_URL_AND_TOKEN: i32 = 9710;
    pub const NOTIFICATION_TOO_LONG: i32 = 9711;
    pub const NOTIFICATION_URL_INVALID: i32 = 9712;
    pub const MDM_METADATA_TOO_LONG: i32 = 9713;
    pub const TOO_MANY_USERS: i32 = 9714;
    pub const DUPLICATE_USERS: i32 = 9715;
    pub const USER_ALREADY_EXISTS: i32 = 9716;
    pub const INVALID_EMAIL: i32 = 9717;
    pub const NO_ASSETS: i32 = 9718;
    pub const NO_TARGETS: i32 = 9719;
    pub const NO_USERS: i32 = 9720;
    pub const INVALID_VERSION_ID: i32 = 9721;
    pub const INVALID_AUTHORIZATION_HEADER: i32 = 9722;
    pub const MDM_INFO_INCOMPLETE: i32 = 9723;
    pub const MDM_ID_TOO_LONG: i32 = 9724;
    pub const MDM_NAME_TOO_LONG: i32 = 9725;
    pub const METHOD_NOT_SUPPORTED: i32 = 9726;
    pub const CONTENT_TYPE_NOT_SUPPORTED: i32 = 9727;
    pub const NOTIFICATION_URL_UNREACHABLE: i32 = 9728;
    pub const SERVICE_UNAVAILABLE: i32 = 9729;
    pub const SUBSCRIPTION_REQUEST_INVALID: i32 = 9811;
    pub const CURSOR_INVALID: i32 = 9812;
    pub const SUBSCRIPTION_ADAM_ID_INVALID: i32 = 9813;
    pub const SUBSCRIPTION_USER_NOT_REGISTERED: i32 = 9814;
    pub const SUBSCRIPTION_NOT_ASSIGNED: i32 = 9815;
    pub const SUBSCRIPTION_LIMITS_EXCEEDED: i32 = 9816;
    pub const SUBSCRIPTION_THROUGH_GROUP: i32 = 9817;
    pub const SUBSCRIPTIONS_EXIST: i32 = 9818;

    /// Every v2 error with its documented HTTP status and a message in our words.
    /// Asynchronous-only errors carry the status they would have if ever sent synchronously.
    pub const CATALOGUE: &[(i32, u16, &str)] = &[
        (9601, 401, "Login required."),
        (9602, 400, "Invalid argument."),
        (9603, 500, "Internal error. Try again later."),
        (9609, 400, "Registered user not found."),
        (9621, 401, "The token has expired. Download a new token from school.apple.com or business.apple.com."),
        (9623, 400, "Invalid Apple Push Notification token."),
        (9625, 401, "The token has been revoked by the server."),
        (9634, 410, "This service is no longer available."),
        (9635, 400, "The Apple Account cannot be associated with this user."),
        (9637, 403, "This operation is not allowed for facilitator accounts."),
        (9641, 400, "The Apple Account is already associated with another user."),
        (9644, 503, "The service is in maintenance mode. Try again later."),
        (9646, 429, "Too many requests for this organization. Back off and retry."),
        (9647, 403, "This operation is not supported for legacy tokens."),
        (9650, 400, "Page index out of range."),
        (9700, 400, "Too many assets in the request."),
        (9701, 400, "Too many clientUserIds in the request."),
        (9702, 400, "Too many serialNumbers in the request."),
        (9703, 400, "Duplicate assets in the request."),
        (9704, 400, "Duplicate clientUserIds in the request."),
        (9705, 400, "Duplicate serialNumbers in the request."),
        (9706, 400, "The asset's licenses are not revocable."),
        (9707, 400, "The asset cannot be assigned to devices."),
        (9708, 400, "Event not found."),
        (9709, 400, "Not enough licenses available."),
        (9710, 400, "notificationUrl and notificationAuthToken must be given together."),
        (9711, 400, "notificationUrl or notificationAuthToken is too long."),
        (9712, 400, "notificationUrl is not a valid HTTPS URL."),
        (9713, 400, "mdmInfo.metadata is too long."),
        (9714, 400, "Too many users in the request."),
        (9715, 400, "Duplicate users in the request."),
        (9716, 400, "A registered user with this clientUserId already exists."),
        (9717, 400, "Invalid email address."),
        (9718, 400, "The request has no assets."),
        (9719, 400, "The request needs clientUserIds or serialNumbers."),
        (9720, 400, "The request has no users."),
        (9721, 400, "Invalid version ID."),
        (9722, 401, "Invalid Authorization header: it must be `Bearer {sToken}`."),
        (9723, 400, "mdmInfo needs name, id and metadata."),
        (9724, 400, "mdmInfo.id is too long."),
        (9725, 400, "mdmInfo.name is too long."),
        (9726, 405, "HTTP method not supported for this endpoint."),
        (9727, 415, "Content-Type not supported for this endpoint."),
        (9728, 400, "The notification URL is unreachable."),
        (9729, 503, "The service is temporarily unavailable. Try again later."),
        (9811, 400, "The subscription association request is invalid."),
        (9812, 400, "The cursor is invalid."),
        (9813, 400, "The subscription adamId is invalid."),
        (9814, 400, "No registered user has this clientUserId."),
        (9815, 400, "The user is not assigned the requested subscription."),
        (9816, 400, "The request exceeds the subscription limits."),
        (9817, 400, "The user already has the subscription through a group."),
        (9818, 400, "Subscriptions exist: subscription management cannot be disabled."),
    ];

    fn lookup(number: i32) -> Option<&'static (i32, u16, &'static str)> {
        CATALOGUE.iter().find(|(n, _, _)| *n == number)
    }

    /// The catalogue message for `number` ("Unknown error." for numbers we do not know).
    pub fn message(number: i32) -> &'static str {
        lookup(number).map_or("Unknown error.", |e| e.2)
    }

    /// The documented HTTP status of a synchronous error (500 for unknown numbers).
    pub fn http_status(number: i32) -> u16 {
        lookup(number).map_or(500, |e| e.1)
    }

    /// Errors that happen only while an event runs, never as a synchronous answer.
    pub const ASYNC_ONLY: &[i32] = &[9603, 9635, 9641, 9644, 9709, 9716];
}
