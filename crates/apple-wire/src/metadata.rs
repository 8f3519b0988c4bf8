//! The content metadata lookup (spec §18.1): names, icons, bundle ids, platforms, versions.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LookupResponse {
    /// Keyed by the id string. Empty when nothing is known or access failed.
    #[serde(default)]
    pub results: BTreeMap<String, LookupItem>,
    #[serde(default)]
    pub version: i32,
    #[serde(default)]
    pub is_authenticated: bool,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub meta: Option<LookupMeta>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LookupMeta {
    pub storefront: Storefront,
    pub language: Language,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Storefront {
    pub id: String,
    pub cc: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Language {
    pub tag: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LookupItem {
    pub id: String,
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub name_raw: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub bundle_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub artist_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub artwork: Option<Artwork>,
    #[serde(default)]
    pub device_families: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub kind: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub minimum_os_version: Option<String>,
    #[serde(default)]
    pub is_vpp_device_based_licensing_enabled: bool,
    #[serde(rename = "isB2BCustomApp", default)]
    pub is_b2b_custom_app: bool,
    #[serde(default)]
    pub offers: Vec<Offer>,
    #[serde(default)]
    pub genre_names: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub url: Option<String>,
}

/// The template form of `artwork`: `url` contains `{w}x{h}bb.{f}`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Artwork {
    pub url: String,
    pub width: u32,
    pub height: u32,
}

impl Artwork {
    /// The URL for a square icon of `size` pixels in PNG.
    pub fn png_url(&self, size: u32) -> String {
        self.url
            .replace("{w}", &size.to_string())
            .replace("{h}", &size.to_string())
            .replace("{f}", "png")
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Offer {
    pub version: OfferVersion,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OfferVersion {
    pub display: String,
    pub external_id: i64,
}
