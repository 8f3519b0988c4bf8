//! `GET /service/config` and `GET|POST /client/config` (spec §4, §5).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// One entry of `errorCodes`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ResponseErrorCode {
    pub error_message: String,
    pub error_number: i32,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServiceConfigResponse {
    #[serde(default)]
    pub error_codes: Vec<ResponseErrorCode>,
    /// Open-ended: unknown keys may appear.
    #[serde(default)]
    pub limits: BTreeMap<String, i32>,
    #[serde(default)]
    pub notification_types: Vec<String>,
    #[serde(default)]
    pub urls: BTreeMap<String, String>,
}

/// Names of the `limits` keys.
pub mod limit {
    pub const MAX_ASSETS: &str = "maxAssets";
    pub const MAX_CLIENT_USER_IDS: &str = "maxClientUserIds";
    pub const MAX_SERIAL_NUMBERS: &str = "maxSerialNumbers";
    pub const MAX_REVOKE_CLIENT_USER_IDS: &str = "maxRevokeClientUserIds";
    pub const MAX_REVOKE_SERIAL_NUMBERS: &str = "maxRevokeSerialNumbers";
    pub const MAX_USERS: &str = "maxUsers";
    pub const MAX_SUBSCRIPTIONS: &str = "maxSubscriptions";
    pub const MAX_SUBSCRIPTION_CLIENT_USER_IDS: &str = "maxSubscriptionClientUserIds";
    pub const MAX_NOTIFICATION_LENGTH: &str = "maxNotificationLength";
    pub const MAX_MDM_NAME_LENGTH: &str = "maxMdmNameLength";
    pub const MAX_MDM_METADATA_LENGTH: &str = "maxMdmMetadataLength";
    pub const MAX_MDM_ID_LENGTH: &str = "maxMdmIdLength";
    pub const MAX_REQUEST_PER_SECOND: &str = "maxRequestPerSecond";
}

/// Names of the `urls` keys.
pub mod url_key {
    pub const INVITATION_EMAIL: &str = "invitationEmail";
    pub const CLIENT_CONFIG: &str = "clientConfig";
    pub const CREATE_USERS: &str = "createUsers";
    pub const GET_ASSIGNMENTS: &str = "getAssignments";
    pub const REVOKE_ASSETS: &str = "revokeAssets";
    pub const CONTENT_METADATA_LOOKUP: &str = "contentMetadataLookup";
    pub const GET_USERS: &str = "getUsers";
    pub const EVENT_STATUS: &str = "eventStatus";
    pub const ASSOCIATE_ASSETS: &str = "associateAssets";
    pub const DISASSOCIATE_ASSETS: &str = "disassociateAssets";
    pub const UPDATE_USERS: &str = "updateUsers";
    pub const GET_ASSETS: &str = "getAssets";
    pub const RETIRE_USERS: &str = "retireUsers";
}

/// The literal placeholder in `urls.invitationEmail` that the user's `inviteCode` replaces.
pub const INVITE_CODE_PLACEHOLDER: &str = "%25inviteCode%25";

/// The identity of the MDM managing a location.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MdmInfo {
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub metadata: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub name: Option<String>,
}

/// Notification types (spec §12.2).
pub mod notification_type {
    pub const TEST_NOTIFICATION: &str = "TEST_NOTIFICATION";
    pub const ASSET_COUNT: &str = "ASSET_COUNT";
    pub const ASSET_MANAGEMENT: &str = "ASSET_MANAGEMENT";
    pub const USER_MANAGEMENT: &str = "USER_MANAGEMENT";
    pub const USER_ASSOCIATED: &str = "USER_ASSOCIATED";
    pub const SUBSCRIPTION_MANAGEMENT: &str = "SUBSCRIPTION_MANAGEMENT";
    pub const SUBSCRIPTION_COUNT: &str = "SUBSCRIPTION_COUNT";
    pub const UNLIMITED_ASSET: &str = "UNLIMITED_ASSET";

    /// Types a client may subscribe to.
    pub const SUBSCRIBABLE: &[&str] = &[
        TEST_NOTIFICATION,
        ASSET_MANAGEMENT,
        USER_MANAGEMENT,
        USER_ASSOCIATED,
        ASSET_COUNT,
        SUBSCRIPTION_MANAGEMENT,
        SUBSCRIPTION_COUNT,
        UNLIMITED_ASSET,
    ];
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ClientConfigRequest {
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub mdm_info: Option<MdmInfo>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub notification_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub notification_auth_token: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub notification_types: Option<Vec<String>>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ClientConfigResponse {
    #[serde(
        rename = "countryISO2ACode",
        skip_serializing_if = "Option::is_none",
        default
    )]
    pub country_iso2a_code: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub default_platform: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub location_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub mdm_info: Option<MdmInfo>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub notification_auth_token: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub notification_url: Option<String>,
    #[serde(default)]
    pub subscribed_notification_types: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub token_expiration_date: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub u_id: Option<String>,
    #[serde(
        rename = "websiteURL",
        skip_serializing_if = "Option::is_none",
        default
    )]
    pub website_url: Option<String>,
}
