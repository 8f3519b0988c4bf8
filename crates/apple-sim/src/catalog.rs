//! Store metadata of apps and books (name, bundle id, version, platforms, icon colours), so that
//! the metadata lookup answers with real-looking data offline.

use serde::{Deserialize, Serialize};

/// A stable integer for a version string, standing in for the store's `externalId` (and the
/// `ExternalVersionIdentifier` devices report for it). Like Apple's, it grows with the version:
/// `1.2.3` is 1002003 (three numeric parts under 1,000); other strings get a hash above them.
pub fn external_id(version: &str) -> i64 {
    let parts: Vec<Option<i64>> = version
        .trim()
        .split('.')
        .map(|p| p.parse::<i64>().ok().filter(|n| (0..1000).contains(n)))
        .collect();
    if parts.len() <= 3 && parts.iter().all(Option::is_some) {
        let mut n = 0;
        for i in 0..3 {
            n = n * 1000 + parts.get(i).copied().flatten().unwrap_or(0);
        }
        return n;
    }
    use sha2::{Digest, Sha256};
    let h = Sha256::digest(version.as_bytes());
    1_000_000_000 + i64::from(u32::from_be_bytes([h[0], h[1], h[2], h[3]]) >> 1)
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AppMeta {
    pub adam_id: String,
    pub name: String,
    pub bundle_id: Option<String>,
    pub artist: String,
    pub version: String,
    pub genre: String,
    /// `iosSoftware`, `macSoftware` or `ebook`.
    pub kind: String,
    /// Lookup `deviceFamilies`: `iphone`, `ipad`, `mac`, …
    pub device_families: Vec<String>,
    /// Lookup `minimumOSVersion`.
    #[serde(default = "default_minimum_os")]
    pub minimum_os_version: String,
    pub device_based_licensing: bool,
    /// A custom (B2B) app: the lookup answers for it only with the `itvt` cookie of a location
    /// that owns it.
    #[serde(default)]
    pub b2b_custom: bool,
    /// No longer for sale: like a custom app, known only with an owner's `itvt` cookie.
    #[serde(default)]
    pub removed_from_sale: bool,
    /// The storefronts (`us`, `gb`, …) that sell it; every one when empty. The metadata API
    /// answers for it only in those.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub storefronts: Vec<String>,
}

fn default_minimum_os() -> String {
    "15.0".into()
}

impl AppMeta {
    /// Whether the lookup answers for this app without the owner's cookie.
    pub fn public(&self) -> bool {
        !self.b2b_custom && !self.removed_from_sale
    }
}

impl AppMeta {
    /// Metadata made up from an asset's facts when a scenario gives none.
    pub fn derived(
        adam_id: &str,
        name: Option<&str>,
        is_book: bool,
        platforms: &[String],
        device: bool,
    ) -> Self {
        let name = name
            .map(str::to_owned)
            .unwrap_or_else(|| format!("App {adam_id}"));
        let slug: String = name
            .to_lowercase()
            .chars()
            .filter(|c| c.is_ascii_alphanumeric())
            .take(24)
            .collect();
        let mut families = Vec::new();
        for p in platforms {
            match p.as_str() {
                "iOS" => families.extend(["iphone", "ipad"].map(String::from)),
                "macOS" => families.push("mac".into()),
                "tvOS" => families.push("tvos".into()),
                "watchOS" => families.push("watch".into()),
                "visionOS" => families.push("vision".into()),
                _ => {}
            }
        }
        let mac_only = platforms.iter().all(|p| p == "macOS") && !platforms.is_empty();
        Self {
            adam_id: adam_id.to_owned(),
            bundle_id: (!is_book).then(|| format!("com.example.{slug}")),
            artist: "Example Developer".into(),
            version: "1.0".into(),
            genre: if is_book {
                "Books".into()
            } else {
                "Productivity".into()
            },
            kind: if is_book {
                "ebook".into()
            } else if mac_only {
                "macSoftware".into()
            } else {
                "iosSoftware".into()
            },
            device_families: families,
            minimum_os_version: default_minimum_os(),
            device_based_licensing: device,
            b2b_custom: false,
            removed_from_sale: false,
            storefronts: Vec::new(),
            name,
        }
    }
}
