//! The scenario file format (documented in `docs/simulator.md`): hand-written organizations,
//! generated ones for scale, and settings. `World` is built from it.

use std::collections::HashSet;

use allot_apple_wire::{
    user_status, ContentToken, MdmInfo, DEFAULT_PRICING_PARAM, PRODUCT_APP, PRODUCT_BOOK,
};
use chrono::{DateTime, Duration, Utc};
use serde::Deserialize;

use crate::catalog::AppMeta;
use crate::generate::GenerateSpec;
use crate::model::{AssetRecord, Holder, Location, Program, UserRecord};
use crate::settings::Settings;
use crate::world::World;

/// The built-in demo organization, used when no `--scenario` is given.
pub const DEMO_SCENARIO: &str = include_str!("../scenarios/demo.json");

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Scenario {
    #[serde(default)]
    pub settings: Settings,
    #[serde(default)]
    pub organizations: Vec<OrgSpec>,
    #[serde(default)]
    pub generate: Vec<GenerateSpec>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct OrgSpec {
    pub name: String,
    #[serde(default)]
    pub program: Program,
    #[serde(default = "default_country")]
    pub country: String,
    /// Managed Apple Accounts of the organization end with `@` + this (default derived from name).
    pub managed_apple_id_domain: Option<String>,
    #[serde(default)]
    pub locations: Vec<LocationSpec>,
}

fn default_country() -> String {
    "US".into()
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LocationSpec {
    pub name: String,
    pub u_id: Option<String>,
    /// Days until the content token expires (default 365; negative = already expired).
    pub token_expires_in_days: Option<i64>,
    #[serde(default)]
    pub token_revoked: bool,
    /// Another MDM already manages this location.
    pub mdm_info: Option<MdmInfo>,
    #[serde(default)]
    pub assets: Vec<AssetSpec>,
    #[serde(default)]
    pub users: Vec<UserSpec>,
    #[serde(default)]
    pub assignments: Vec<AssignmentSpec>,
    /// The MDM has enabled subscription management here (implied by `subscriptions`).
    #[serde(default)]
    pub subscription_management: bool,
    #[serde(default)]
    pub subscriptions: Vec<SubscriptionSpec>,
    #[serde(default)]
    pub subscription_assignments: Vec<SeatSpec>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SubscriptionSpec {
    pub parent_adam_id: i64,
    pub adam_id: i64,
    /// Seats that renew at the period's end, and seats that end with it.
    #[serde(default)]
    pub renewing: i64,
    #[serde(default)]
    pub expiring: i64,
    /// Days from now to the period's end (default 30).
    pub period_ends_in_days: Option<i64>,
    /// `ACTIVE` (default), `INACTIVE` or `PAUSED`.
    pub status: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SeatSpec {
    pub adam_id: i64,
    pub client_user_id: String,
    #[serde(default = "yes")]
    pub renewing: bool,
}

fn yes() -> bool {
    true
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AssetSpec {
    pub adam_id: String,
    pub pricing_param: Option<String>,
    /// `App` (default) or `Book`.
    pub product_type: Option<String>,
    #[serde(default)]
    pub total_count: i64,
    #[serde(default)]
    pub unlimited: bool,
    pub device_assignable: Option<bool>,
    pub revocable: Option<bool>,
    pub supported_platforms: Option<Vec<String>>,
    pub name: Option<String>,
    pub bundle_id: Option<String>,
    pub version: Option<String>,
    pub artist: Option<String>,
    pub genre: Option<String>,
    /// A custom (B2B) app: named by the lookup only with this location's `itvt` cookie.
    #[serde(rename = "isB2BCustomApp", default)]
    pub b2b_custom_app: bool,
    /// No longer for sale: likewise named only with an owner's cookie.
    #[serde(default)]
    pub removed_from_sale: bool,
    #[serde(rename = "minimumOSVersion")]
    pub minimum_os_version: Option<String>,
    /// Sold only in these storefronts (`gb`, …): the metadata API finds it there alone.
    pub storefronts: Option<Vec<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UserSpec {
    pub client_user_id: String,
    pub email: Option<String>,
    /// `Registered` (default), `Associated` or `Retired`.
    pub status: Option<String>,
    /// The Apple Account bound to an Associated user (made up when absent).
    pub apple_account: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AssignmentSpec {
    pub adam_id: String,
    pub pricing_param: Option<String>,
    pub client_user_id: Option<String>,
    pub serial_number: Option<String>,
}

impl Scenario {
    /// Parses a scenario file, with the line and column of any mistake.
    pub fn parse(text: &str) -> Result<Self, String> {
        let s: Scenario = serde_json::from_str(text).map_err(|e| format!("scenario: {e}"))?;
        s.settings
            .validate()
            .map_err(|e| format!("scenario: {e}"))?;
        Ok(s)
    }

    pub fn demo() -> Self {
        Self::parse(DEMO_SCENARIO).expect("the built-in demo scenario is valid")
    }

    /// Builds the world. Errors name the organization and location at fault.
    pub fn build(self, now: DateTime<Utc>) -> Result<World, String> {
        let mut world = World::new(self.settings);
        let mut uids = HashSet::new();
        for org in self.organizations {
            let domain = org
                .managed_apple_id_domain
                .clone()
                .unwrap_or_else(|| default_domain(&org.name));
            for spec in org.locations {
                let at = format!("organization {:?}, location {:?}", org.name, spec.name);
                let n = world.locations.len() as u64;
                let uid = spec.u_id.clone().unwrap_or_else(|| default_uid(n));
                if !uid.chars().all(|c| c.is_ascii_digit()) || uid.is_empty() {
                    return Err(format!("{at}: uId {uid:?} must be a decimal number"));
                }
                if !uids.insert(uid.clone()) {
                    return Err(format!("{at}: uId {uid} is used twice"));
                }
                let mut loc = Location::new(
                    uid,
                    spec.name.clone(),
                    org.name.clone(),
                    org.program,
                    org.country.clone(),
                    domain.clone(),
                );
                loc.mdm_info = spec.mdm_info.clone();
                fill_location(&mut world, &mut loc, &spec).map_err(|e| format!("{at}: {e}"))?;
                fill_subscriptions(&mut loc, &spec, now).map_err(|e| format!("{at}: {e}"))?;
                let expires = now + Duration::days(spec.token_expires_in_days.unwrap_or(365));
                let token = make_token(&loc.uid, 0, &org.name, expires);
                let idx = world.add_location(loc, token);
                if spec.token_revoked {
                    let bearer = world.current_token[idx].clone();
                    world.tokens.get_mut(&bearer).expect("just added").revoked = true;
                }
            }
        }
        for spec in self.generate {
            crate::generate::generate(&mut world, &spec, now)?;
        }
        Ok(world)
    }
}

fn fill_location(world: &mut World, loc: &mut Location, spec: &LocationSpec) -> Result<(), String> {
    for a in &spec.assets {
        let product_type = a.product_type.clone().unwrap_or_else(|| PRODUCT_APP.into());
        if product_type != PRODUCT_APP && product_type != PRODUCT_BOOK {
            return Err(format!(
                "asset {}: productType must be App or Book",
                a.adam_id
            ));
        }
        let is_book = product_type == PRODUCT_BOOK;
        if is_book && a.device_assignable == Some(true) {
            return Err(format!(
                "asset {}: books are never device-assignable",
                a.adam_id
            ));
        }
        if a.total_count < 0 {
            return Err(format!(
                "asset {}: totalCount cannot be negative",
                a.adam_id
            ));
        }
        let pricing = a
            .pricing_param
            .clone()
            .unwrap_or_else(|| DEFAULT_PRICING_PARAM.into());
        if loc.asset_idx(&a.adam_id, &pricing).is_some() {
            return Err(format!("asset {} {pricing} is listed twice", a.adam_id));
        }
        let platforms = a
            .supported_platforms
            .clone()
            .unwrap_or_else(|| vec!["iOS".into()]);
        let device = a.device_assignable.unwrap_or(!is_book);
        loc.add_asset(AssetRecord {
            adam_id: a.adam_id.clone(),
            pricing_param: pricing,
            product_type,
            total: a.total_count,
            assigned: 0,
            retired: 0,
            device_assignable: device,
            revocable: a.revocable.unwrap_or(!is_book),
            unlimited: a.unlimited,
            platforms: platforms.clone(),
        });
        let meta = world.catalog.entry(a.adam_id.clone()).or_insert_with(|| {
            AppMeta::derived(&a.adam_id, a.name.as_deref(), is_book, &platforms, device)
        });
        if let Some(b) = &a.bundle_id {
            meta.bundle_id = Some(b.clone());
        }
        if let Some(v) = &a.version {
            meta.version = v.clone();
        }
        if let Some(v) = &a.artist {
            meta.artist = v.clone();
        }
        if let Some(v) = &a.genre {
            meta.genre = v.clone();
        }
        if let Some(v) = &a.minimum_os_version {
            meta.minimum_os_version = v.clone();
        }
        meta.b2b_custom |= a.b2b_custom_app;
        meta.removed_from_sale |= a.removed_from_sale;
        if let Some(s) = &a.storefronts {
            meta.storefronts = s.iter().map(|s| s.to_lowercase()).collect();
        }
    }
    for u in &spec.users {
        let status = match u.status.as_deref().unwrap_or(user_status::REGISTERED) {
            "Registered" => user_status::REGISTERED,
            "Associated" => user_status::ASSOCIATED,
            "Retired" => user_status::RETIRED,
            other => {
                return Err(format!(
                    "user {}: status {other:?} is not Registered, Associated or Retired",
                    u.client_user_id
                ))
            }
        };
        if status != user_status::RETIRED && loc.users.active(&u.client_user_id).is_some() {
            return Err(format!("user {} has two active records", u.client_user_id));
        }
        let account = (status == user_status::ASSOCIATED).then(|| {
            u.apple_account
                .clone()
                .unwrap_or_else(|| format!("{}@{}", slug(&u.client_user_id), loc.managed_domain))
        });
        let n = loc.users.len() as u64;
        loc.users.push(UserRecord {
            client_user_id: u.client_user_id.clone(),
            email: u.email.clone(),
            invite_code: crate::events::invite_code(&loc.uid, &u.client_user_id, n),
            apple_account: account,
            status,
            modified: 0,
        });
    }
    for a in &spec.assignments {
        let pricing = a.pricing_param.as_deref().unwrap_or(DEFAULT_PRICING_PARAM);
        let asset = loc.asset_idx(&a.adam_id, pricing).ok_or_else(|| {
            format!(
                "assignment names asset {} {pricing}, which the location does not own",
                a.adam_id
            )
        })?;
        let holder =
            match (&a.client_user_id, &a.serial_number) {
                (Some(u), None) => Holder::User(loc.users.active(u).ok_or_else(|| {
                    format!("assignment names user {u}, who has no active record")
                })?),
                (None, Some(s)) => {
                    if !loc.assets[asset as usize].device_assignable {
                        return Err(format!(
                            "asset {} is not device-assignable, but is assigned to device {s}",
                            a.adam_id
                        ));
                    }
                    Holder::Device(loc.intern_serial(s))
                }
                _ => {
                    return Err(format!(
                        "assignment of {} needs exactly one of clientUserId and serialNumber",
                        a.adam_id
                    ))
                }
            };
        match loc.assign(asset, holder, 0) {
            Ok(true) => {}
            Ok(false) => return Err(format!("assignment of {} is listed twice", a.adam_id)),
            Err(_) => {
                return Err(format!(
                    "asset {} has more assignments than totalCount",
                    a.adam_id
                ))
            }
        }
    }
    Ok(())
}

fn fill_subscriptions(
    loc: &mut Location,
    spec: &LocationSpec,
    now: DateTime<Utc>,
) -> Result<(), String> {
    let subs = &mut loc.subscriptions;
    subs.enabled = spec.subscription_management || !spec.subscriptions.is_empty();
    for s in &spec.subscriptions {
        if subs.get(s.adam_id).is_some() {
            return Err(format!("subscription {} is listed twice", s.adam_id));
        }
        if s.renewing < 0 || s.expiring < 0 {
            return Err(format!(
                "subscription {}: seat counts cannot be negative",
                s.adam_id
            ));
        }
        let status = s.status.clone().unwrap_or_else(|| "ACTIVE".into());
        if !["ACTIVE", "INACTIVE", "PAUSED"].contains(&status.as_str()) {
            return Err(format!(
                "subscription {}: status {status:?} is not ACTIVE, INACTIVE or PAUSED",
                s.adam_id
            ));
        }
        let end = (now + Duration::days(s.period_ends_in_days.unwrap_or(30))).date_naive();
        subs.purchase(s.parent_adam_id, s.adam_id, s.renewing, true, end);
        subs.purchase(s.parent_adam_id, s.adam_id, s.expiring, false, end);
        subs.list.last_mut().expect("just added").status = status;
    }
    for seat in &spec.subscription_assignments {
        if loc.users.active(&seat.client_user_id).is_none() {
            return Err(format!(
                "subscription seat names user {}, who has no active record",
                seat.client_user_id
            ));
        }
        loc.subscriptions
            .associate(seat.adam_id, &seat.client_user_id, seat.renewing)
            .map_err(|n| match n {
                allot_apple_wire::codes::SUBSCRIPTION_ADAM_ID_INVALID => format!(
                    "subscription seat names subscription {}, which the location does not have",
                    seat.adam_id
                ),
                _ => format!(
                    "subscription {} has more seats assigned than bought",
                    seat.adam_id
                ),
            })?;
    }
    Ok(())
}

/// `2049025` followed by nine digits: shaped like Apple's example `uId`s.
pub fn default_uid(n: u64) -> String {
    format!("2049025{:09}", 100_000_000 + n)
}

fn default_domain(org: &str) -> String {
    format!("appleid.{}.example", slug(org))
}

fn slug(s: &str) -> String {
    let s: String = s
        .to_lowercase()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    s.trim_matches('-').to_owned()
}

/// Issues a content token for a location. The inner `token` is derived from the location and a
/// serial number, so a renewed token differs from the old one.
pub fn make_token(
    uid: &str,
    serial: u64,
    org_name: &str,
    expires_at: DateTime<Utc>,
) -> ContentToken {
    use base64::Engine;
    use sha2::{Digest, Sha256};
    let inner = Sha256::digest(format!("allot-sim-token/{uid}/{serial}").as_bytes());
    let inner = base64::engine::general_purpose::STANDARD.encode(inner);
    ContentToken::issue(&inner, expires_at, org_name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn demo_builds() {
        let w = Scenario::demo().build(Utc::now()).unwrap();
        assert!(w.locations.len() >= 4);
        for (i, loc) in w.locations.iter().enumerate() {
            for a in &loc.assets {
                assert!(
                    a.assigned <= a.total || a.unlimited,
                    "{} over-assigned",
                    a.adam_id
                );
            }
            assert!(w.authenticate(&w.current_token[i]).is_ok() || loc.name.contains("Expired"));
        }
    }

    #[test]
    fn mistakes_name_their_place() {
        let bad = r#"{"organizations":[{"name":"O","locations":[{"name":"L",
            "assets":[{"adamId":"1","totalCount":1}],
            "assignments":[{"adamId":"1","serialNumber":"A"},{"adamId":"1","serialNumber":"B"}]}]}]}"#;
        let err = Scenario::parse(bad)
            .unwrap()
            .build(Utc::now())
            .err()
            .unwrap();
        assert!(
            err.contains("location \"L\"") && err.contains("more assignments than totalCount"),
            "{err}"
        );
        let err = Scenario::parse(r#"{"organisations":[]}"#).err().unwrap();
        assert!(err.contains("unknown field `organisations`"), "{err}");
        let err = Scenario::parse(r#"{"settings":{"usersPageSize":0}}"#)
            .err()
            .unwrap();
        assert!(err.contains("usersPageSize"), "{err}");
    }
}
