//! `GET /users` and `POST /users/{create,update,retire}` (spec §9).

use serde::{Deserialize, Serialize};

use crate::{Common, PageInfo};

/// User states.
pub mod user_status {
    pub const REGISTERED: &str = "Registered";
    pub const ASSOCIATED: &str = "Associated";
    pub const RETIRED: &str = "Retired";
    pub const DELETED: &str = "Deleted";
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ResponseUser {
    pub client_user_id: String,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub email: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub invite_code: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub id_hash: Option<String>,
    pub status: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GetUsersResponse {
    #[serde(default)]
    pub users: Vec<ResponseUser>,
    #[serde(flatten)]
    pub page: PageInfo,
    #[serde(flatten)]
    pub common: Common,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RequestUser {
    #[serde(default)]
    pub client_user_id: String,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub email: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub managed_apple_id: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ManageUsersRequest {
    #[serde(default)]
    pub users: Vec<RequestUser>,
}
