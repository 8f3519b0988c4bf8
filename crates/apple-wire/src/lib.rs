//! Wire types of Apple's Apps and Books content-management service (v2).
//!
//! One crate for both sides of the wire: the simulator serialises these types and the client
//! deserialises them. Field names follow Apple's JSON exactly (see
//! `shared/apple/apps-and-books-api.md`); optional fields are `Option` and omitted when absent,
//! lists default to empty, so a response with fields we do not know still parses.

pub mod assets;
pub mod assignments;
pub mod catalog;
pub mod config;
pub mod error;
pub mod events;
pub mod metadata;
pub mod notification;
pub mod subscriptions;
pub mod token;
pub mod users;

pub use assets::*;
pub use assignments::*;
pub use config::*;
pub use error::*;
pub use events::*;
pub use notification::*;
pub use subscriptions::*;
pub use token::{ContentToken, TokenError};
pub use users::*;

use serde::{Deserialize, Serialize};

/// Apple's timestamp format: ISO-8601 with a numeric offset without a colon
/// (`2030-11-08T22:33:22+0000`).
pub const APPLE_DATE_FORMAT: &str = "%Y-%m-%dT%H:%M:%S%z";

/// Formats a UTC instant the way Apple writes `expDate` and `tokenExpirationDate`.
pub fn format_apple_date(t: chrono::DateTime<chrono::Utc>) -> String {
    t.format(APPLE_DATE_FORMAT).to_string()
}

/// Parses Apple's timestamps; accepts `+0000`, `+00:00` and `Z` offsets.
pub fn parse_apple_date(s: &str) -> Option<chrono::DateTime<chrono::Utc>> {
    let s = s.trim();
    chrono::DateTime::parse_from_str(s, APPLE_DATE_FORMAT)
        .or_else(|_| chrono::DateTime::parse_from_rfc3339(s))
        .ok()
        .map(|t| t.with_timezone(&chrono::Utc))
}

/// Fields present on (almost) every authenticated response (spec §2.1).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Common {
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub mdm_info: Option<MdmInfo>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub token_expiration_date: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub u_id: Option<String>,
}

/// Page-index pagination fields of Get Assets / Get Assignments / Get Users (spec §11.1).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PageInfo {
    #[serde(default)]
    pub current_page_index: i32,
    /// Present only when another page exists; its absence marks the last page.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub next_page_index: Option<i32>,
    #[serde(default)]
    pub size: i32,
    #[serde(default)]
    pub total_pages: i32,
    #[serde(default)]
    pub version_id: String,
}

/// `STDQ` unless told otherwise: Apple's articles omit `pricingParam` in requests.
pub const DEFAULT_PRICING_PARAM: &str = "STDQ";

/// Product type of an asset.
pub const PRODUCT_APP: &str = "App";
pub const PRODUCT_BOOK: &str = "Book";

/// `totalCount` of an unlimited asset when `unlimited` is omitted from Get Assets.
pub const UNLIMITED_TOTAL: i32 = i32::MAX;
