//! Subscriptions (spec §15): auto-renewable subscription seats sold into a location, identified
//! by `parentAdamId` (the app) and `adamId` (the subscription product), both JSON integers here
//! (unlike the asset endpoints' strings). Lists are cursor-paged (§11.3).

use serde::{Deserialize, Serialize};

use crate::Common;

/// `POST subscriptions/enable` and `subscriptions/disable`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SubscriptionManagementResponse {
    #[serde(default)]
    pub subscription_management: bool,
    #[serde(flatten)]
    pub common: Common,
}

/// Seats that renew at the end of the period and seats that end with it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SeatCounts {
    #[serde(default)]
    pub renewing: i64,
    #[serde(default)]
    pub expiring: i64,
}

impl SeatCounts {
    pub fn sum(&self) -> i64 {
        self.renewing + self.expiring
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubscriptionCounts {
    #[serde(default)]
    pub assigned: SeatCounts,
    #[serde(default)]
    pub available: SeatCounts,
    #[serde(default)]
    pub total: SeatCounts,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ResponseSubscription {
    pub parent_adam_id: i64,
    pub adam_id: i64,
    /// `ACTIVE`, `INACTIVE`, `PAUSED`.
    #[serde(default)]
    pub status: String,
    /// `YYYY-MM-DD`.
    #[serde(default)]
    pub period_end_date: Option<String>,
    #[serde(default)]
    pub counts: SubscriptionCounts,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SubscriptionsResponse {
    #[serde(default)]
    pub subscriptions: Vec<ResponseSubscription>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
    #[serde(default)]
    pub version_id: String,
    #[serde(flatten)]
    pub common: Common,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SubscriptionAssignment {
    pub adam_id: i64,
    pub client_user_id: String,
    #[serde(default)]
    pub renewing: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SubscriptionAssignmentsResponse {
    #[serde(default)]
    pub assignments: Vec<SubscriptionAssignment>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
    #[serde(default)]
    pub version_id: String,
    #[serde(flatten)]
    pub common: Common,
}

/// `POST subscriptions/associate` (`renewing`) and `subscriptions/disassociate` (`deferred`: at the
/// end of the billing period).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ManageSubscriptionsRequest {
    #[serde(default)]
    pub adam_ids: Vec<i64>,
    #[serde(default)]
    pub client_user_ids: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub renewing: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deferred: Option<bool>,
}

/// The `SUBSCRIPTION_COUNT` notification: the counts after a purchase, renewal or refund (no
/// `assigned`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SubscriptionCountNotification {
    pub parent_adam_id: i64,
    pub adam_id: i64,
    #[serde(default)]
    pub counts: SubscriptionCounts,
}

/// The `SUBSCRIPTION_MANAGEMENT` notification: an associate or disassociate event's outcome.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SubscriptionManagementNotification {
    #[serde(rename = "type")]
    pub kind: String,
    pub result: String,
    #[serde(default)]
    pub event_id: Option<String>,
    #[serde(default)]
    pub assignments: Vec<SubscriptionAssignment>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<crate::ErrorResponse>,
}
