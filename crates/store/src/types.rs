//! Rows as the rest of Allot sees them. Times are Unix milliseconds.

use allot_domain::{Claim, Program};
use serde::Serialize;

#[derive(Debug, Clone)]
pub struct NewToken {
    pub name: String,
    pub description: String,
    pub categories: Vec<String>,
    pub apple_account: String,
    pub program: Program,
    pub uid: String,
    pub org_name: String,
    pub location_name: String,
    pub country: String,
    /// The content token, encrypted.
    pub secret: Vec<u8>,
    /// The notification secret, encrypted.
    pub notification_secret: Option<Vec<u8>>,
    pub expires_at: i64,
    pub claim: Claim,
    pub other_mdm: Option<String>,
}

#[derive(Clone)]
pub struct TokenRow {
    pub id: i64,
    pub name: String,
    pub description: String,
    pub categories: Vec<String>,
    pub apple_account: String,
    pub program: Program,
    pub uid: String,
    pub org_name: String,
    pub location_name: String,
    pub country: String,
    pub secret: Vec<u8>,
    pub notification_secret: Option<Vec<u8>>,
    pub expires_at: i64,
    pub claim: Claim,
    /// JSON `mdmInfo` of the MDM holding the location when it is not us.
    pub other_mdm: Option<String>,
    /// 9621 or 9625 when Apple refused the token.
    pub auth_error: Option<i32>,
    pub last_error: Option<String>,
    pub last_error_at: Option<i64>,
    pub assignments_version: Option<String>,
    pub users_version: Option<String>,
    pub last_delta_sync_at: Option<i64>,
    pub last_full_sync_at: Option<i64>,
    pub sync_serial: i64,
    pub lease_owner: Option<String>,
    pub lease_until: Option<i64>,
    pub full_sync_wanted: bool,
    pub created_at: i64,
    pub updated_at: i64,
}

/// Secrets stay out of logs.
impl std::fmt::Debug for TokenRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenRow")
            .field("id", &self.id)
            .field("name", &self.name)
            .field("uid", &self.uid)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AssetRow {
    pub adam_id: String,
    pub pricing: String,
    pub product_type: String,
    pub total: i64,
    pub assigned: i64,
    pub available: i64,
    pub retired: i64,
    pub device_assignable: bool,
    pub revocable: bool,
    pub unlimited: bool,
    pub platforms: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(tag = "kind", content = "id", rename_all = "lowercase")]
pub enum Holder {
    User(String),
    Device(String),
}

impl Holder {
    pub fn kind(&self) -> &'static str {
        match self {
            Holder::User(_) => "user",
            Holder::Device(_) => "device",
        }
    }

    pub fn id(&self) -> &str {
        match self {
            Holder::User(s) | Holder::Device(s) => s,
        }
    }

    pub fn from_parts(kind: &str, id: String) -> Self {
        if kind == "device" {
            Holder::Device(id)
        } else {
            Holder::User(id)
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct AssignmentRow {
    pub adam_id: String,
    pub pricing: String,
    pub holder: Holder,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UserRow {
    pub client_user_id: String,
    pub status: String,
    pub email: Option<String>,
    pub invite_code: Option<String>,
    pub id_hash: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct MetadataRow {
    pub adam_id: String,
    pub name: String,
    pub bundle_id: Option<String>,
    pub icon_url: Option<String>,
    pub platforms: Vec<String>,
    pub version: Option<String>,
    pub kind: Option<String>,
    pub artist: Option<String>,
    pub genre: Option<String>,
    pub device_licensing: bool,
    /// The store's current version as devices report it (`ExternalVersionIdentifier`).
    pub external_version_id: Option<i64>,
    /// The lowest OS version the app runs on (`minimumOSVersion`).
    pub minimum_os_version: Option<String>,
    /// The organization's own custom (B2B) app.
    pub custom_app: bool,
    /// Which of Apple's services answered: `lookup` (§18.1) or `metadata-api` (§18.2).
    pub source: String,
    /// The storefront (`us`, `gb`, …) the metadata API found it in.
    pub storefront: Option<String>,
    /// When Apple said all this (ms); set by the store on write, read back for its age.
    pub fetched_at: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SyncRun {
    pub id: i64,
    pub token_id: i64,
    /// `full` or `delta`.
    pub kind: String,
    /// `manual`, `schedule`, `added`, `restore`, `renewed`, `version_expired`.
    pub reason: String,
    /// `running`, `succeeded`, `failed`, `interrupted`.
    pub status: String,
    pub started_at: i64,
    pub finished_at: Option<i64>,
    pub pages: i64,
    pub pages_total: i64,
    pub assets_changed: i64,
    pub assignments_added: i64,
    pub assignments_removed: i64,
    pub users_changed: i64,
    pub error: Option<String>,
}

/// What a sync changed, for its run record.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct SyncCounts {
    pub assets_changed: i64,
    pub assignments_added: i64,
    pub assignments_removed: i64,
    pub users_changed: i64,
}

/// One row of "license information for store apps": an asset of a token with its metadata.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AppLicense {
    pub token_id: i64,
    pub token_name: String,
    pub program: String,
    pub adam_id: String,
    pub pricing: String,
    pub product_type: String,
    pub name: Option<String>,
    pub bundle_id: Option<String>,
    pub icon_url: Option<String>,
    pub platforms: Vec<String>,
    pub total: i64,
    pub assigned: i64,
    pub available: i64,
    pub unlimited: bool,
    pub device_assignable: bool,
    /// When Apple last confirmed these counts: the token's last sync (full or changes) or
    /// notification, whichever is later (ms); `None` before any.
    pub confirmed_at: Option<i64>,
}

/// A token as lists judge and search it: its names, expiry and what its state is judged from,
/// without its secrets and sync bookkeeping (a page reads thousands; a full row costs ~6× as
/// much to read, measured in `console_bench`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenBrief {
    pub id: i64,
    pub name: String,
    pub org_name: String,
    pub location_name: String,
    pub categories: Vec<String>,
    pub expires_at: i64,
    pub claim: Claim,
    pub auth_error: Option<i32>,
    pub lease_until: Option<i64>,
    pub last_delta_sync_at: Option<i64>,
    pub last_full_sync_at: Option<i64>,
    pub created_at: i64,
}

impl From<&TokenRow> for TokenBrief {
    fn from(t: &TokenRow) -> Self {
        Self {
            id: t.id,
            name: t.name.clone(),
            org_name: t.org_name.clone(),
            location_name: t.location_name.clone(),
            categories: t.categories.clone(),
            expires_at: t.expires_at,
            claim: t.claim,
            auth_error: t.auth_error,
            lease_until: t.lease_until,
            last_delta_sync_at: t.last_delta_sync_at,
            last_full_sync_at: t.last_full_sync_at,
            created_at: t.created_at,
        }
    }
}

/// A token as lists and filters name it, without the rest of its row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenLabel {
    pub id: i64,
    pub name: String,
    pub categories: Vec<String>,
}

#[derive(Debug, Clone, Default)]
pub struct AppFilter {
    pub token_id: Option<i64>,
    /// Only these tokens (a scoped identity's); `None`: every token.
    pub tokens_in: Option<Vec<i64>>,
    /// Matches the app's name, bundle id or adamId.
    pub search: Option<String>,
    /// `App` or `Book`.
    pub product_type: Option<String>,
    /// `iOS`, `macOS`, … (Apple's platform names).
    pub platform: Option<String>,
    /// One of the token's categories.
    pub category: Option<String>,
    /// Only assets with at most a tenth of their licenses free (never unlimited ones).
    pub low: bool,
    pub sort: AppSort,
    pub limit: i64,
    pub offset: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKeyRow {
    pub id: i64,
    pub name: String,
    /// `admin`, `operator` or `viewer`.
    pub role: String,
    /// The tokens it works with (JSON `{"tokens": [ids], "categories": [names]}`); `None`: all.
    pub scope: Option<String>,
    pub created_at: i64,
    pub last_used_at: Option<i64>,
    pub revoked_at: Option<i64>,
    /// The key ALLOT_ADMIN_API_KEY sets (replaced when the setting changes).
    pub from_config: bool,
}

/// A console account (the password hash is never part of it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AccountRow {
    pub id: i64,
    pub username: String,
    /// `admin`, `operator` or `viewer`.
    pub role: String,
    /// The IANA time zone the account reads times in; `None`: the browser's.
    pub time_zone: Option<String>,
    /// The tokens it works with (JSON `{"tokens": [ids], "categories": [names]}`); `None`: all.
    pub scope: Option<String>,
    /// When it was disabled: it cannot sign in and its sessions ended.
    pub disabled_at: Option<i64>,
    pub created_at: i64,
    pub last_sign_in_at: Option<i64>,
}

/// One holder of an asset's license and the status of its latest deployment target, if any.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AssignmentStatus {
    /// `device` or `user`.
    pub kind: String,
    pub holder: String,
    pub status: Option<String>,
    pub detail: Option<String>,
    /// Who a user license's holder is, for people: Allot's name and e-mail of the person, else
    /// the e-mail Apple has.
    pub holder_name: Option<String>,
    /// The holder in Allot's inventory: the person (user licenses) or device (device licenses).
    pub holder_id: Option<i64>,
}

/// A license a deployment assigned that is not installed yet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UnusedLicense {
    pub deployment_id: i64,
    pub adam_id: String,
    pub label: String,
    pub license: Option<String>,
    pub holder: Option<String>,
    pub status: String,
    /// Since when (ms).
    pub since: i64,
}

/// Orders of the license list.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum AppSort {
    #[default]
    Name,
    Token,
    Total,
    Used,
    Available,
}

impl AppSort {
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "name" => Self::Name,
            "token" => Self::Token,
            "total" => Self::Total,
            "used" => Self::Used,
            "available" => Self::Available,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Name => "name",
            Self::Token => "token",
            Self::Total => "total",
            Self::Used => "used",
            Self::Available => "available",
        }
    }

    /// SQL ORDER BY of the list (fixed strings, never user text): each is an index of `assets`
    /// (migration 0036), and total, so no row is on two pages.
    pub(crate) fn order_by(self) -> &'static str {
        match self {
            Self::Name => "a.name_key, a.token_name, a.adam_id, a.pricing",
            Self::Token => "a.token_name, a.name_key, a.adam_id, a.pricing",
            Self::Total => "a.total DESC, a.name_key, a.token_name, a.adam_id, a.pricing",
            Self::Used => "a.assigned DESC, a.name_key, a.token_name, a.adam_id, a.pricing",
            Self::Available => {
                "a.unlimited, a.available, a.name_key, a.token_name, a.adam_id, a.pricing"
            }
        }
    }
}

/// A subscription sold into a token's location (§15), as Apple last counted it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct SubscriptionRow {
    pub token_id: i64,
    pub parent_adam_id: i64,
    pub adam_id: i64,
    /// `ACTIVE`, `INACTIVE`, `PAUSED`.
    pub status: String,
    /// `YYYY-MM-DD`: the end of the billing period.
    pub period_end: Option<String>,
    pub assigned_renewing: i64,
    pub assigned_expiring: i64,
    pub available_renewing: i64,
    pub available_expiring: i64,
    pub total_renewing: i64,
    pub total_expiring: i64,
    /// When Apple last said these counts (ms).
    pub updated_at: i64,
}

/// A user's seat of a subscription.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct SeatRow {
    pub adam_id: i64,
    pub client_user_id: String,
    pub renewing: bool,
    /// We asked Apple to take it back at the period's end.
    pub leaving: bool,
}

/// A standing intent for subscription seats: the people of a users collection hold a seat.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct SubscriptionIntentRow {
    pub id: i64,
    pub token_id: i64,
    pub adam_id: i64,
    pub collection_id: i64,
    pub collection: String,
    /// Seats that renew at the period's end, or seats that end with it.
    pub renewing: bool,
    pub created_at: i64,
}

/// An outgoing webhook endpoint.
#[derive(Debug, Clone)]
pub struct WebhookRow {
    pub id: i64,
    pub url: String,
    /// Event names, or `*` for all.
    pub events: Vec<String>,
    /// The signing secret, sealed with the server's key.
    pub sealed_secret: Vec<u8>,
    pub description: String,
    pub created_by: Option<String>,
    pub created_at: i64,
    pub pending: i64,
    pub failed: i64,
    pub last_delivered_at: Option<i64>,
}

/// An alert to raise: once per `dedupe_key`.
#[derive(Debug, Clone)]
pub struct NewAlert {
    pub event_id: String,
    pub kind: String,
    pub dedupe_key: String,
    pub summary: String,
    /// JSON.
    pub data: String,
}

#[derive(Debug, Clone)]
pub struct AlertRow {
    pub id: i64,
    pub event_id: String,
    pub kind: String,
    pub dedupe_key: String,
    pub summary: String,
    pub data: String,
    pub raised_at: i64,
    pub resolved_at: Option<i64>,
}

/// A delivery to attempt now, with what it needs.
#[derive(Debug, Clone)]
pub struct DueDelivery {
    pub id: i64,
    pub attempts: i64,
    pub created_at: i64,
    pub endpoint_id: i64,
    pub url: String,
    pub sealed_secret: Vec<u8>,
    pub event_id: String,
    pub kind: String,
    pub summary: String,
    pub data: String,
    pub raised_at: i64,
}

/// One delivery in an endpoint's log.
#[derive(Debug, Clone)]
pub struct DeliveryRow {
    pub id: i64,
    pub event_id: String,
    pub kind: String,
    pub summary: String,
    /// pending, delivered or failed.
    pub status: String,
    pub attempts: i64,
    pub last_status: Option<i64>,
    pub last_error: Option<String>,
    pub last_attempt_at: Option<i64>,
    pub next_attempt_at: i64,
    pub delivered_at: Option<i64>,
    pub created_at: i64,
}

/// What a page of the devices list shows beside each device (`device_page_details`).
#[derive(Debug, Clone, Default)]
pub struct DevicePageDetails {
    /// (serial number, token id, adamId) of every device license the page's devices hold.
    pub licenses: Vec<(String, i64, String)>,
    /// (device id, adamId) of every app Allot installed on them.
    pub installed: Vec<(i64, String)>,
    /// Their people's names by id.
    pub people: std::collections::HashMap<i64, String>,
    /// The names of those apps by adamId (an app without metadata is absent).
    pub app_names: std::collections::HashMap<String, String>,
}

/// One change in the audit log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEntry {
    pub at: i64,
    /// `API key NAME` or `console account NAME`.
    pub actor: String,
    pub address: String,
    pub method: String,
    pub path: String,
    /// The HTTP status the change was answered with.
    pub status: i64,
    /// For a setting: what it was and what it became, in words.
    pub detail: Option<String>,
}

/// One sample for `/metrics`: the metric's name, its labels, its value.
pub type MetricSample = (&'static str, Vec<(&'static str, String)>, f64);
