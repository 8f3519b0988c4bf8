//! Notifications Apple POSTs to the MDM's `notificationUrl` (spec §12).

use serde::{Deserialize, Serialize};

use crate::{Assignment, ErrorResponse, ResponseUser};

/// The envelope. `notification` is kept as JSON and decoded by [`NotificationEnvelope::payload`],
/// so that types we do not know (or payloads Apple never documented) still parse.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NotificationEnvelope {
    pub notification_id: String,
    pub notification_type: String,
    #[serde(default)]
    pub notification: serde_json::Value,
    #[serde(default)]
    pub u_id: String,
}

/// `result` values.
pub const RESULT_SUCCESS: &str = "SUCCESS";
pub const RESULT_FAILURE: &str = "FAILURE";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AssetCountNotification {
    pub adam_id: String,
    pub pricing_param: String,
    pub count_delta: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AssetManagementNotification {
    #[serde(rename = "type")]
    pub kind: String,
    pub result: String,
    pub event_id: String,
    #[serde(default)]
    pub assignments: Vec<Assignment>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub error: Option<ErrorResponse>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UserManagementNotification {
    #[serde(rename = "type")]
    pub kind: String,
    pub result: String,
    pub event_id: String,
    #[serde(default)]
    pub users: Vec<ResponseUser>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub error: Option<ErrorResponse>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UserAssociatedNotification {
    #[serde(default)]
    pub associated_users: Vec<ResponseUser>,
}

/// A decoded payload.
#[derive(Debug, Clone, PartialEq)]
pub enum NotificationPayload {
    Test,
    AssetCount(AssetCountNotification),
    AssetManagement(AssetManagementNotification),
    UserManagement(UserManagementNotification),
    UserAssociated(UserAssociatedNotification),
    SubscriptionCount(crate::SubscriptionCountNotification),
    SubscriptionManagement(crate::SubscriptionManagementNotification),
    /// A type this crate does not decode (`UNLIMITED_ASSET`, future types).
    Other(String),
}

impl NotificationEnvelope {
    /// Decodes `notification` according to `notificationType`.
    pub fn payload(&self) -> Result<NotificationPayload, serde_json::Error> {
        use crate::config::notification_type as t;
        let v = self.notification.clone();
        Ok(match self.notification_type.as_str() {
            t::TEST_NOTIFICATION => NotificationPayload::Test,
            t::ASSET_COUNT => NotificationPayload::AssetCount(serde_json::from_value(v)?),
            t::ASSET_MANAGEMENT => NotificationPayload::AssetManagement(serde_json::from_value(v)?),
            t::USER_MANAGEMENT => NotificationPayload::UserManagement(serde_json::from_value(v)?),
            t::USER_ASSOCIATED => NotificationPayload::UserAssociated(serde_json::from_value(v)?),
            t::SUBSCRIPTION_COUNT => {
                NotificationPayload::SubscriptionCount(serde_json::from_value(v)?)
            }
            t::SUBSCRIPTION_MANAGEMENT => {
                NotificationPayload::SubscriptionManagement(serde_json::from_value(v)?)
            }
            other => NotificationPayload::Other(other.to_owned()),
        })
    }
}

/// At most this many elements (assignments or users) in one notification.
pub const MAX_NOTIFICATION_ITEMS: usize = 100;
