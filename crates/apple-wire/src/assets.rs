//! `GET /assets` (spec §6).

use serde::{Deserialize, Serialize};

use crate::{Common, PageInfo};

/// An asset as named in requests: the pair (`adamId`, `pricingParam`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AssetRef {
    pub adam_id: String,
    /// Optional in requests (defaults to `STDQ`); always present in responses.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub pricing_param: Option<String>,
}

impl AssetRef {
    pub fn new(adam_id: impl Into<String>, pricing_param: impl Into<String>) -> Self {
        Self {
            adam_id: adam_id.into(),
            pricing_param: Some(pricing_param.into()),
        }
    }

    /// `pricingParam`, or `STDQ` when omitted.
    pub fn pricing(&self) -> &str {
        self.pricing_param
            .as_deref()
            .unwrap_or(crate::DEFAULT_PRICING_PARAM)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ResponseAsset {
    pub adam_id: String,
    pub pricing_param: String,
    pub product_type: String,
    pub assigned_count: i32,
    pub available_count: i32,
    #[serde(default)]
    pub retired_count: i32,
    pub total_count: i32,
    pub device_assignable: bool,
    pub revocable: bool,
    #[serde(default)]
    pub supported_platforms: Vec<String>,
}

/// An unlimited asset: no `availableCount`, `totalCount` or `retiredCount`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UnlimitedResponseAsset {
    pub adam_id: String,
    pub assigned_count: i32,
    pub device_assignable: bool,
    pub pricing_param: String,
    pub product_type: String,
    pub revocable: bool,
    #[serde(default)]
    pub supported_platforms: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GetAssetsResponse {
    #[serde(default)]
    pub assets: Vec<ResponseAsset>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub unlimited_assets: Option<Vec<UnlimitedResponseAsset>>,
    #[serde(flatten)]
    pub page: PageInfo,
    #[serde(flatten)]
    pub common: Common,
}
