//! The content metadata lookup (spec §18.1): names, icons, bundle ids, platforms, versions.
//! Apple's examples disagree on three points (spec §20.24): `id` is a number or a string, and
//! `artwork` a template object or an array of sizes; every documented form is read. Fields we do
//! not know are ignored, so one new field never fails a whole answer.

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer, Serialize};

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
    #[serde(deserialize_with = "string_or_number")]
    pub id: String,
    #[serde(default)]
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
    #[serde(
        rename = "minimumOSVersion",
        alias = "minimumOsVersion",
        skip_serializing_if = "Option::is_none",
        default
    )]
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
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub watch_bundle_id: Option<String>,
}

/// `artwork`: one image whose `url` is a template (`{w}x{h}bb.{f}`), or a list of sizes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Artwork {
    Template(ArtworkImage),
    Sizes(Vec<ArtworkImage>),
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ArtworkImage {
    pub url: String,
    #[serde(default)]
    pub width: u32,
    #[serde(default)]
    pub height: u32,
}

impl Artwork {
    /// The URL of a square icon as near `size` pixels as Apple offers, in PNG where the URL is a
    /// template; `None` when there is no image.
    pub fn icon_url(&self, size: u32) -> Option<String> {
        let image = match self {
            Artwork::Template(t) => t,
            Artwork::Sizes(sizes) => sizes
                .iter()
                .filter(|i| !i.url.is_empty())
                .min_by_key(|i| (i64::from(i.width.max(i.height)) - i64::from(size)).abs())?,
        };
        if image.url.is_empty() {
            return None;
        }
        Some(
            image
                .url
                .replace("{w}", &size.to_string())
                .replace("{h}", &size.to_string())
                .replace("{f}", "png"),
        )
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Offer {
    #[serde(default)]
    pub version: OfferVersion,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OfferVersion {
    #[serde(default)]
    pub display: String,
    #[serde(default, deserialize_with = "number_or_string")]
    pub external_id: i64,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Scalar {
    Str(String),
    Int(i64),
    Float(f64),
}

/// An id Apple sends as `"1234"` or `1234`.
pub(crate) fn string_or_number<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    Ok(match Scalar::deserialize(d)? {
        Scalar::Str(s) => s,
        Scalar::Int(i) => i.to_string(),
        Scalar::Float(f) => format!("{f:.0}"),
    })
}

/// A number Apple sends as `1234` or `"1234"`; anything else reads as 0 (unknown).
pub(crate) fn number_or_string<'de, D: Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
    Ok(match Option::<Scalar>::deserialize(d)? {
        Some(Scalar::Int(i)) => i,
        Some(Scalar::Str(s)) => s.trim().parse().unwrap_or(0),
        Some(Scalar::Float(f)) => f as i64,
        None => 0,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The form of one of Apple's examples: string ids, a template artwork.
    const TEMPLATE_FORM: &str = r#"{
      "results": { "361309726": {
        "id": "361309726", "name": "Pages", "bundleId": "com.apple.Pages",
        "artwork": { "url": "https://is1.example/image/{w}x{h}bb.{f}", "width": 1024, "height": 1024,
                     "bgColor": "ffffff", "hasP3": false },
        "deviceFamilies": ["iphone", "ipad", "mac"], "kind": "iosSoftware", "minimumOSVersion": "17.0",
        "isVppDeviceBasedLicensingEnabled": true, "isB2BCustomApp": false,
        "offers": [{ "version": { "display": " 14.2", "externalId": 867530900 }, "price": 0 }],
        "genreNames": ["Productivity"], "userRating": { "value": 4.5 } } },
      "version": 2, "isAuthenticated": false,
      "meta": { "storefront": { "id": "143441", "cc": "US" }, "language": { "tag": "en-us" } }
    }"#;

    /// The other: numeric ids, artwork as an array of sizes, version 1.
    const SIZES_FORM: &str = r#"{
      "results": { "361309726": {
        "id": 361309726, "name": "Pages", "bundleId": "com.apple.Pages",
        "artwork": [ { "width": 60, "height": 60, "url": "https://is1.example/60.png" },
                     { "width": 512, "height": 512, "url": "https://is1.example/512.png" },
                     { "width": 1024, "height": 1024, "url": "https://is1.example/1024.png" } ],
        "deviceFamilies": ["iphone"], "minimumOSVersion": "16.0",
        "offers": [{ "version": { "display": "14.2", "externalId": "867530900" } }],
        "somethingNew": { "nested": [1, 2, 3] } } },
      "version": 1, "isAuthenticated": false
    }"#;

    #[test]
    fn both_documented_forms_parse() {
        for (form, icon) in [
            (TEMPLATE_FORM, "https://is1.example/image/512x512bb.png"),
            (SIZES_FORM, "https://is1.example/512.png"),
        ] {
            let res: LookupResponse = serde_json::from_str(form).unwrap();
            let pages = &res.results["361309726"];
            assert_eq!(pages.id, "361309726");
            assert_eq!(pages.name, "Pages");
            assert_eq!(pages.artwork.as_ref().unwrap().icon_url(512).unwrap(), icon);
            assert!(pages.minimum_os_version.is_some());
            assert_eq!(pages.offers[0].version.external_id, 867530900);
        }
    }

    #[test]
    fn sizes_pick_the_nearest_and_fields_keep_apples_names() {
        let res: LookupResponse = serde_json::from_str(SIZES_FORM).unwrap();
        let art = res.results["361309726"].artwork.clone().unwrap();
        assert_eq!(art.icon_url(100).unwrap(), "https://is1.example/60.png");
        assert_eq!(art.icon_url(900).unwrap(), "https://is1.example/1024.png");
        assert_eq!(Artwork::Sizes(vec![]).icon_url(512), None);
        let json = serde_json::to_value(&res.results["361309726"]).unwrap();
        assert_eq!(json["minimumOSVersion"], "16.0");
        assert!(json.get("minimumOsVersion").is_none());
    }
}
