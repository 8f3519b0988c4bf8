//! Asynchronous management: requests, `EventResponse` and `GET /status` (spec §8, §10).

use serde::{Deserialize, Serialize};

use crate::{AssetRef, Common, ErrorResponse};

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ManageAssetsRequest {
    #[serde(default)]
    pub assets: Vec<AssetRef>,
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub client_user_ids: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub serial_numbers: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RevokeAssetsRequest {
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub client_user_ids: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub serial_numbers: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EventResponse {
    pub event_id: String,
    #[serde(flatten)]
    pub common: Common,
}

/// Overall event states.
pub mod event_status {
    pub const PENDING: &str = "PENDING";
    pub const COMPLETE: &str = "COMPLETE";
    pub const FAILED: &str = "FAILED";
}

/// Event types.
pub mod event_type {
    pub const ASSOCIATE: &str = "ASSOCIATE";
    pub const DISASSOCIATE: &str = "DISASSOCIATE";
    pub const REVOKE: &str = "REVOKE";
    pub const CREATE: &str = "CREATE";
    pub const UPDATE: &str = "UPDATE";
    pub const RETIRE: &str = "RETIRE";
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StatusResponse {
    pub event_status: String,
    pub event_type: String,
    pub num_requested: i32,
    pub num_completed: i32,
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub failures: Vec<ErrorResponse>,
    #[serde(flatten)]
    pub common: Common,
}
