//! `GET /assignments` (spec §7).

use serde::{Deserialize, Serialize};

use crate::{Common, PageInfo};

/// One license bound to a user (`clientUserId`) or a device (`serialNumber`); exactly one is set.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Assignment {
    pub adam_id: String,
    pub pricing_param: String,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub client_user_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub serial_number: Option<String>,
    /// With `includeUserState=true`.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub user_status: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub id_hash: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GetAssignmentsResponse {
    #[serde(default)]
    pub assignments: Vec<Assignment>,
    #[serde(flatten)]
    pub page: PageInfo,
    #[serde(flatten)]
    pub common: Common,
}
