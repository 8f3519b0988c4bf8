//! "Apps and Books (Metadata) for Organizations" (spec §18.2): the current metadata API, at
//! `api.ent.apple.com/v1` (business) or `api.edu.apple.com/v1` (education), authenticated by a
//! developer token (an ES256 JWT) and the location's content token as the `itvt` cookie. Unknown
//! fields are ignored; ids Apple does not know are simply absent from `data`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::metadata::{number_or_string, string_or_number, ArtworkImage};

/// The storefronts tried in turn for apps one region sells alone (after the location's own).
pub const FALLBACK_STOREFRONTS: [&str; 6] = ["us", "gb", "de", "fr", "it", "es"];

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CatalogResponse {
    #[serde(default)]
    pub data: Vec<CatalogResource>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CatalogResource {
    #[serde(deserialize_with = "string_or_number")]
    pub id: String,
    /// `apps`, `books`.
    #[serde(rename = "type", default)]
    pub kind: String,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub href: Option<String>,
    #[serde(default)]
    pub attributes: CatalogAttributes,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CatalogAttributes {
    #[serde(default)]
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub artist_name: Option<String>,
    #[serde(default)]
    pub device_families: Vec<String>,
    #[serde(default)]
    pub is_vpp_device_based_licensing_enabled: bool,
    #[serde(rename = "isB2BCustomApp", default)]
    pub is_b2b_custom_app: bool,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub url: Option<String>,
    #[serde(default)]
    pub genre_names: Vec<String>,
    /// `ios` (iPhone, iPad and iOS apps on Mac), `osx` (Mac apps), and others Apple adds.
    #[serde(default)]
    pub platform_attributes: BTreeMap<String, PlatformAttributes>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PlatformAttributes {
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub bundle_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub artwork: Option<ArtworkImage>,
    /// The version's number as devices report it (`ExternalVersionIdentifier`); 0 when absent.
    #[serde(default, deserialize_with = "number_or_string")]
    pub external_version_id: i64,
    #[serde(
        rename = "minimumOSVersion",
        alias = "minimumOsVersion",
        skip_serializing_if = "Option::is_none",
        default
    )]
    pub minimum_os_version: Option<String>,
    /// Present when asked for with `extend[apps]=latestVersionInfo`.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub latest_version_info: Option<LatestVersionInfo>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LatestVersionInfo {
    #[serde(default)]
    pub version_display: String,
}

impl CatalogAttributes {
    /// The attributes of the platform that describes the app best: `ios` for iOS and universal
    /// apps, else `osx`, else any.
    pub fn main_platform(&self) -> Option<(&str, &PlatformAttributes)> {
        ["ios", "osx"]
            .iter()
            .find_map(|k| self.platform_attributes.get_key_value(*k))
            .or_else(|| self.platform_attributes.iter().next())
            .map(|(k, v)| (k.as_str(), v))
    }
}

/// The error body of Apple's JSON:API services.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CatalogErrors {
    #[serde(default)]
    pub errors: Vec<CatalogError>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CatalogError {
    #[serde(default)]
    pub status: String,
    #[serde(default)]
    pub code: String,
    #[serde(default)]
    pub title: String,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub detail: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Shaped as Apple documents it, with fields we do not read.
    const ANSWER: &str = r#"{ "data": [
      { "id": "361309726", "type": "apps", "href": "/v1/catalog/us/apps/361309726",
        "attributes": { "name": "Pages", "artistName": "Apple",
          "deviceFamilies": ["iphone", "ipad", "mac"], "isVppDeviceBasedLicensingEnabled": true,
          "isB2BCustomApp": false, "url": "https://apps.apple.com/us/app/pages/id361309726",
          "offers": [{ "type": "get", "price": 0 }], "userRating": { "value": 4.5 },
          "platformAttributes": {
            "ios": { "bundleId": "com.apple.Pages", "externalVersionId": 867530900,
              "minimumOSVersion": "17.0",
              "artwork": { "url": "https://is1.example/{w}x{h}bb.{f}", "width": 1024, "height": 1024, "bgColor": "fff" },
              "latestVersionInfo": { "versionDisplay": " 14.2", "releaseDate": "2026-10-01" } },
            "osx": { "bundleId": "com.apple.iWork.Pages", "externalVersionId": "867530911" } } },
        "relationships": { "genres": { "data": [] } } },
      { "id": 12, "type": "apps", "attributes": { "name": "Mac Only",
          "platformAttributes": { "osx": { "bundleId": "com.example.mac" } } } }
    ] }"#;

    #[test]
    fn apples_answer_is_read_with_its_extra_fields() {
        let r: CatalogResponse = serde_json::from_str(ANSWER).unwrap();
        assert_eq!(r.data.len(), 2);
        let pages = &r.data[0].attributes;
        let (platform, ios) = pages.main_platform().unwrap();
        assert_eq!(platform, "ios");
        assert_eq!(ios.bundle_id.as_deref(), Some("com.apple.Pages"));
        assert_eq!(ios.external_version_id, 867530900);
        assert_eq!(ios.minimum_os_version.as_deref(), Some("17.0"));
        assert_eq!(
            ios.latest_version_info.as_ref().unwrap().version_display,
            " 14.2"
        );
        assert_eq!(
            pages.platform_attributes["osx"].external_version_id, 867530911,
            "a number sent as a string"
        );
        assert_eq!(r.data[1].id, "12", "a numeric id");
        assert_eq!(r.data[1].attributes.main_platform().unwrap().0, "osx");
    }
}
