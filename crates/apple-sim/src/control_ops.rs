//! Changes that happen on Apple's side without the MDM asking: purchases, refunds, transfers,
//! a user accepting an invitation, another writer touching the data mid-walk.

use allot_apple_wire::{
    notification_type, user_status, AssetCountNotification, SubscriptionCountNotification,
    SubscriptionManagementNotification, UserAssociatedNotification, DEFAULT_PRICING_PARAM,
    PRODUCT_APP, PRODUCT_BOOK,
};
use serde::Deserialize;

use crate::catalog::AppMeta;

/// The `productType` of the control API's purchases that buys subscription seats.
pub const PRODUCT_SUBSCRIPTION: &str = "Subscription";
use crate::model::{AssetRecord, Holder};
use crate::world::World;

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Purchase {
    pub adam_id: String,
    pub pricing_param: Option<String>,
    pub count: i64,
    /// For an asset the location did not have yet.
    pub product_type: Option<String>,
    pub name: Option<String>,
    pub supported_platforms: Option<Vec<String>>,
    pub device_assignable: Option<bool>,
    /// A custom (B2B) app, made for this organization.
    #[serde(rename = "isB2BCustomApp", default)]
    pub is_b2b_custom_app: bool,
    /// `productType: "Subscription"`: seats of subscription `adamId` (a number) of app
    /// `parentAdamId`, renewing at the period's end unless `renewing` is false.
    pub parent_adam_id: Option<i64>,
    pub renewing: Option<bool>,
    /// `YYYY-MM-DD`, for a new subscription (default: a month from now).
    pub period_end_date: Option<String>,
}

fn count_changed(w: &mut World, location: usize, adam_id: &str, pricing: &str, delta: i64) {
    let payload = AssetCountNotification {
        adam_id: adam_id.to_owned(),
        pricing_param: pricing.to_owned(),
        count_delta: delta,
    };
    crate::notify::enqueue(
        w,
        location,
        notification_type::ASSET_COUNT,
        serde_json::to_value(payload).expect("serialisable"),
    );
}

/// Buys `count` more licenses (creating the asset if new) and sends ASSET_COUNT; or, for a
/// subscription, seats, with SUBSCRIPTION_COUNT.
pub fn purchase(w: &mut World, location: usize, p: &Purchase) -> Result<(), String> {
    if p.count <= 0 {
        return Err("count must be a positive number of licenses".into());
    }
    if p.product_type.as_deref() == Some(PRODUCT_SUBSCRIPTION) {
        return purchase_seats(w, location, p);
    }
    let pricing = p
        .pricing_param
        .clone()
        .unwrap_or_else(|| DEFAULT_PRICING_PARAM.into());
    let loc = &mut w.locations[location];
    let idx = match loc.asset_idx(&p.adam_id, &pricing) {
        Some(i) => i,
        None => {
            let product_type = p.product_type.clone().unwrap_or_else(|| PRODUCT_APP.into());
            if product_type != PRODUCT_APP && product_type != PRODUCT_BOOK {
                return Err("productType must be App or Book".into());
            }
            let is_book = product_type == PRODUCT_BOOK;
            let platforms = p
                .supported_platforms
                .clone()
                .unwrap_or_else(|| vec!["iOS".into()]);
            let device = !is_book && p.device_assignable.unwrap_or(true);
            w.catalog
                .entry(p.adam_id.clone())
                .or_insert_with(|| {
                    AppMeta::derived(&p.adam_id, p.name.as_deref(), is_book, &platforms, device)
                })
                .b2b_custom |= p.is_b2b_custom_app;
            w.locations[location].add_asset(AssetRecord {
                adam_id: p.adam_id.clone(),
                pricing_param: pricing.clone(),
                product_type,
                total: 0,
                assigned: 0,
                retired: 0,
                device_assignable: device,
                revocable: !is_book,
                unlimited: false,
                platforms,
            })
        }
    };
    let loc = &mut w.locations[location];
    loc.assets[idx as usize].total += p.count;
    loc.write();
    count_changed(w, location, &p.adam_id, &pricing, p.count);
    Ok(())
}

/// Gives back `count` free licenses (only free ones can go) and sends ASSET_COUNT.
pub fn refund(
    w: &mut World,
    location: usize,
    adam_id: &str,
    pricing: &str,
    count: i64,
) -> Result<(), String> {
    let loc = &mut w.locations[location];
    let idx = loc
        .asset_idx(adam_id, pricing)
        .ok_or_else(|| format!("location {} has no asset {adam_id} {pricing}", loc.uid))?;
    let rec = &mut loc.assets[idx as usize];
    if rec.unlimited {
        return Err("unlimited assets have no licenses to refund".into());
    }
    if count <= 0 || count > rec.available() {
        return Err(format!(
            "can refund 1 to {} licenses (the free ones), not {count}",
            rec.available()
        ));
    }
    rec.total -= count;
    loc.write();
    count_changed(w, location, adam_id, pricing, -count);
    Ok(())
}

/// Moves free licenses between two locations: ASSET_COUNT −n at one, +n at the other.
pub fn transfer(
    w: &mut World,
    from: usize,
    to: usize,
    adam_id: &str,
    pricing: &str,
    count: i64,
) -> Result<(), String> {
    if from == to {
        return Err("a transfer needs two different locations".into());
    }
    let src = &w.locations[from];
    let idx = src
        .asset_idx(adam_id, pricing)
        .ok_or_else(|| format!("location {} has no asset {adam_id} {pricing}", src.uid))?;
    let a = &src.assets[idx as usize];
    let bought = Purchase {
        adam_id: adam_id.to_owned(),
        pricing_param: Some(pricing.to_owned()),
        count,
        product_type: Some(a.product_type.clone()),
        name: None,
        supported_platforms: Some(a.platforms.clone()),
        device_assignable: Some(a.device_assignable),
        is_b2b_custom_app: false,
        parent_adam_id: None,
        renewing: None,
        period_end_date: None,
    };
    refund(w, from, adam_id, pricing, count)?;
    purchase(w, to, &bought)
}

/// The user joins the program with `account`: Associated, and USER_ASSOCIATED is sent.
pub fn accept_invitation(
    w: &mut World,
    location: usize,
    client_user_id: &str,
    account: Option<&str>,
) -> Result<(), String> {
    let loc = &mut w.locations[location];
    let idx = loc
        .users
        .active(client_user_id)
        .ok_or_else(|| format!("no active user {client_user_id} in location {}", loc.uid))?;
    if loc.users.get(idx).status == user_status::ASSOCIATED {
        return Err(format!("user {client_user_id} has already joined"));
    }
    let account = account
        .map(str::to_owned)
        .unwrap_or_else(|| format!("{client_user_id}@icloud.example"));
    if loc.users.holder_of_account(&account).is_some() {
        return Err(format!(
            "the Apple Account {account} is already bound to another user"
        ));
    }
    let seq = loc.write();
    crate::events::associate_account(loc, idx, &account, seq);
    let user = loc.users.get(idx).to_response();
    let payload = UserAssociatedNotification {
        associated_users: vec![user],
    };
    crate::notify::enqueue(
        w,
        location,
        notification_type::USER_ASSOCIATED,
        serde_json::to_value(payload).expect("serialisable"),
    );
    Ok(())
}

/// Someone else changes the location: a new device assignment (or, for a users walk or when no
/// license is free, a new user). Sends no notification: a walk must notice it by itself.
pub fn inject_write(w: &mut World, location: usize, prefer_user: bool) {
    let n = w.next_counter();
    let loc = &mut w.locations[location];
    let seq = loc.write();
    let free = loc
        .assets
        .iter()
        .position(|a| a.device_assignable && a.available() > 0);
    match free {
        Some(a) if !prefer_user => {
            let s = loc.intern_serial(&format!("SIMWRITE{n:06}"));
            let _ = loc.assign(a as u32, Holder::Device(s), seq);
        }
        _ => {
            let cuid = format!("sim-write-{n}");
            let invite = crate::events::invite_code(&loc.uid, &cuid, n);
            loc.users.push(crate::model::UserRecord {
                client_user_id: cuid,
                email: None,
                invite_code: invite,
                apple_account: None,
                status: user_status::REGISTERED,
                modified: seq,
            });
        }
    }
}

fn subscription_count_changed(w: &mut World, location: usize, adam_id: i64) {
    let subs = &w.locations[location].subscriptions;
    let Some(rec) = subs.get(adam_id) else {
        return;
    };
    let mut counts = subs.counts(adam_id);
    // Apple's SUBSCRIPTION_COUNT carries available and total, not assigned.
    counts.assigned = Default::default();
    let payload = SubscriptionCountNotification {
        parent_adam_id: rec.parent_adam_id,
        adam_id,
        counts,
    };
    let mut value = serde_json::to_value(payload).expect("serialisable");
    if let Some(c) = value.get_mut("counts").and_then(|c| c.as_object_mut()) {
        c.remove("assigned");
    }
    crate::notify::enqueue(w, location, notification_type::SUBSCRIPTION_COUNT, value);
}

/// Subscription seats bought into a location that enabled their management.
fn purchase_seats(w: &mut World, location: usize, p: &Purchase) -> Result<(), String> {
    let adam_id: i64 = p
        .adam_id
        .trim()
        .parse()
        .map_err(|_| "a subscription's adamId is a number".to_owned())?;
    let parent = p
        .parent_adam_id
        .ok_or("a subscription needs the parentAdamId of its app")?;
    let today = w.now().date_naive();
    let period_end = match &p.period_end_date {
        Some(d) => chrono::NaiveDate::parse_from_str(d.trim(), "%Y-%m-%d")
            .map_err(|_| "periodEndDate must be YYYY-MM-DD".to_owned())?,
        None => today
            .checked_add_months(chrono::Months::new(1))
            .unwrap_or(today),
    };
    let loc = &mut w.locations[location];
    if !loc.subscriptions.enabled {
        return Err(format!(
            "location {} has not enabled subscription management (POST subscriptions/enable): Apple sells no seats into it",
            loc.uid
        ));
    }
    if loc
        .subscriptions
        .get(adam_id)
        .is_some_and(|s| s.parent_adam_id != parent)
    {
        return Err(format!(
            "subscription {adam_id} belongs to another app than {parent}"
        ));
    }
    loc.subscriptions.purchase(
        parent,
        adam_id,
        p.count,
        p.renewing.unwrap_or(true),
        period_end,
    );
    subscription_count_changed(w, location, adam_id);
    Ok(())
}

/// The billing period of a subscription ends: expiring seats and the users on them go, deferred
/// removals happen (SUBSCRIPTION_MANAGEMENT, DISASSOCIATE), the counts change (SUBSCRIPTION_COUNT).
pub fn end_subscription_period(
    w: &mut World,
    location: usize,
    adam_id: i64,
) -> Result<usize, String> {
    let loc = &mut w.locations[location];
    if loc.subscriptions.get(adam_id).is_none() {
        return Err(format!(
            "location {} has no subscription {adam_id}",
            loc.uid
        ));
    }
    let ended = loc.subscriptions.end_period(adam_id);
    for chunk in ended.chunks(allot_apple_wire::MAX_NOTIFICATION_ITEMS) {
        let note = SubscriptionManagementNotification {
            kind: allot_apple_wire::event_type::DISASSOCIATE.into(),
            result: allot_apple_wire::RESULT_SUCCESS.into(),
            event_id: None,
            assignments: chunk
                .iter()
                .map(crate::model::Subscriptions::seat_view)
                .collect(),
            error: None,
        };
        crate::notify::enqueue(
            w,
            location,
            notification_type::SUBSCRIPTION_MANAGEMENT,
            serde_json::to_value(note).expect("serialisable"),
        );
    }
    subscription_count_changed(w, location, adam_id);
    Ok(ended.len())
}
