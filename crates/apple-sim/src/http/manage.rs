//! Asynchronous management: validate synchronously (an error means nothing was queued), then
//! queue an event and answer its `eventId` (spec §8–§10).

use std::collections::HashSet;
use std::time::{Duration, Instant};

use allot_apple_wire::{
    codes, limit, AssetRef, EventResponse, ManageAssetsRequest, ManageUsersRequest,
    RevokeAssetsRequest, StatusResponse, DEFAULT_PRICING_PARAM,
};
use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::Json;

use super::apple::{common, parse_body, AppleError, AppleResult, Ctx, Query};
use crate::events::{Event, EventKind, Target, Task};
use crate::world::World;
use crate::Shared;

fn duplicates<T: std::hash::Hash + Eq>(items: impl IntoIterator<Item = T>) -> bool {
    let mut seen = HashSet::new();
    items.into_iter().any(|i| !seen.insert(i))
}

fn no_empty_ids(ids: &[String], what: &str) -> AppleResult<()> {
    if ids.iter().any(|i| i.trim().is_empty()) {
        return Err(AppleError::msg(
            codes::INVALID_ARGUMENT,
            format!("Invalid argument: an empty {what}"),
        ));
    }
    Ok(())
}

/// Queues an event and answers its id.
pub(crate) fn queue(
    w: &mut World,
    ctx: &Ctx,
    kind: EventKind,
    tasks: Vec<Task>,
) -> Json<EventResponse> {
    let due = Instant::now() + Duration::from_millis(w.settings.event_delay_ms);
    let event = Event::new(ctx.location, kind, tasks, due);
    let id = event.id.clone();
    w.pending_events.push_back(id.clone());
    w.events.insert(id.clone(), event);
    Json(EventResponse {
        event_id: id,
        common: common(w, ctx),
    })
}

/// Checks shared by associate and disassociate (9718, 9719, 9700–9705), then per-asset rules.
fn validate_manage(
    w: &World,
    ctx: &Ctx,
    req: &ManageAssetsRequest,
    kind: EventKind,
) -> AppleResult<Vec<AssetRef>> {
    let s = &w.settings;
    if req.assets.is_empty() {
        return Err(AppleError::new(codes::NO_ASSETS));
    }
    if req.client_user_ids.is_empty() && req.serial_numbers.is_empty() {
        return Err(AppleError::new(codes::NO_TARGETS));
    }
    let assets: Vec<AssetRef> = req
        .assets
        .iter()
        .map(|a| {
            AssetRef::new(
                a.adam_id.trim(),
                a.pricing_param.as_deref().unwrap_or(DEFAULT_PRICING_PARAM),
            )
        })
        .collect();
    let distinct: HashSet<_> = assets.iter().collect();
    if distinct.len() > s.limit(limit::MAX_ASSETS, 25) {
        return Err(AppleError::new(codes::TOO_MANY_ASSETS));
    }
    if req.client_user_ids.len() > s.limit(limit::MAX_CLIENT_USER_IDS, 1000) {
        return Err(AppleError::new(codes::TOO_MANY_CLIENT_USER_IDS));
    }
    if req.serial_numbers.len() > s.limit(limit::MAX_SERIAL_NUMBERS, 1000) {
        return Err(AppleError::new(codes::TOO_MANY_SERIAL_NUMBERS));
    }
    if distinct.len() < assets.len() {
        return Err(AppleError::new(codes::DUPLICATE_ASSETS));
    }
    if duplicates(&req.client_user_ids) {
        return Err(AppleError::new(codes::DUPLICATE_CLIENT_USER_IDS));
    }
    if duplicates(&req.serial_numbers) {
        return Err(AppleError::new(codes::DUPLICATE_SERIAL_NUMBERS));
    }
    no_empty_ids(&req.client_user_ids, "clientUserId")?;
    no_empty_ids(&req.serial_numbers, "serialNumber")?;
    let loc = &w.locations[ctx.location];
    for a in &assets {
        if a.pricing() != "STDQ" && a.pricing() != "PLUS" {
            return Err(AppleError::msg(
                codes::INVALID_ARGUMENT,
                "Invalid argument: pricingParam must be STDQ or PLUS",
            ));
        }
        let Some(i) = loc.asset_idx(&a.adam_id, a.pricing()) else {
            return Err(AppleError::msg(
                codes::INVALID_ARGUMENT,
                format!(
                    "Invalid argument: this location holds no asset {} {}",
                    a.adam_id,
                    a.pricing()
                ),
            ));
        };
        let rec = &loc.assets[i as usize];
        if kind == EventKind::Associate && !req.serial_numbers.is_empty() && !rec.device_assignable
        {
            return Err(AppleError::new(codes::NOT_DEVICE_ASSIGNABLE));
        }
        if kind == EventKind::Disassociate && !rec.revocable {
            return Err(AppleError::new(codes::NOT_REVOCABLE));
        }
    }
    Ok(assets)
}

async fn manage(
    shared: Shared,
    ctx: Ctx,
    body: Bytes,
    kind: EventKind,
) -> AppleResult<Json<EventResponse>> {
    let req: ManageAssetsRequest = parse_body(&body)?;
    let mut w = shared.lock().expect("world lock");
    let assets = validate_manage(&w, &ctx, &req, kind)?;
    let mut tasks =
        Vec::with_capacity(assets.len() * (req.client_user_ids.len() + req.serial_numbers.len()));
    for asset in &assets {
        for u in &req.client_user_ids {
            tasks.push(Task::Asset {
                asset: asset.clone(),
                target: Target::User(u.clone()),
            });
        }
        for s in &req.serial_numbers {
            tasks.push(Task::Asset {
                asset: asset.clone(),
                target: Target::Device(s.clone()),
            });
        }
    }
    Ok(queue(&mut w, &ctx, kind, tasks))
}

pub async fn associate(
    State(shared): State<Shared>,
    ctx: Ctx,
    body: Bytes,
) -> AppleResult<Json<EventResponse>> {
    manage(shared, ctx, body, EventKind::Associate).await
}

pub async fn disassociate(
    State(shared): State<Shared>,
    ctx: Ctx,
    body: Bytes,
) -> AppleResult<Json<EventResponse>> {
    manage(shared, ctx, body, EventKind::Disassociate).await
}

pub async fn revoke(
    State(shared): State<Shared>,
    ctx: Ctx,
    body: Bytes,
) -> AppleResult<Json<EventResponse>> {
    let req: RevokeAssetsRequest = parse_body(&body)?;
    let mut w = shared.lock().expect("world lock");
    if req.client_user_ids.is_empty() && req.serial_numbers.is_empty() {
        return Err(AppleError::new(codes::NO_TARGETS));
    }
    if req.client_user_ids.len() > w.settings.limit(limit::MAX_REVOKE_CLIENT_USER_IDS, 100) {
        return Err(AppleError::new(codes::TOO_MANY_CLIENT_USER_IDS));
    }
    if req.serial_numbers.len() > w.settings.limit(limit::MAX_REVOKE_SERIAL_NUMBERS, 100) {
        return Err(AppleError::new(codes::TOO_MANY_SERIAL_NUMBERS));
    }
    if duplicates(&req.client_user_ids) {
        return Err(AppleError::new(codes::DUPLICATE_CLIENT_USER_IDS));
    }
    if duplicates(&req.serial_numbers) {
        return Err(AppleError::new(codes::DUPLICATE_SERIAL_NUMBERS));
    }
    no_empty_ids(&req.client_user_ids, "clientUserId")?;
    no_empty_ids(&req.serial_numbers, "serialNumber")?;
    let tasks = req
        .client_user_ids
        .into_iter()
        .map(|u| Task::Revoke(Target::User(u)))
        .chain(
            req.serial_numbers
                .into_iter()
                .map(|s| Task::Revoke(Target::Device(s))),
        )
        .collect();
    Ok(queue(&mut w, &ctx, EventKind::Revoke, tasks))
}

/// A plausible address: one `@`, something before it, a dotted domain after it, no spaces.
pub fn valid_email(e: &str) -> bool {
    let Some((local, domain)) = e.split_once('@') else {
        return false;
    };
    !local.is_empty()
        && !domain.contains('@')
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !e.chars().any(char::is_whitespace)
}

async fn manage_users(
    shared: Shared,
    ctx: Ctx,
    body: Bytes,
    kind: EventKind,
) -> AppleResult<Json<EventResponse>> {
    let req: ManageUsersRequest = parse_body(&body)?;
    let mut w = shared.lock().expect("world lock");
    if req.users.is_empty() {
        return Err(AppleError::new(codes::NO_USERS));
    }
    if req.users.len() > w.settings.limit(limit::MAX_USERS, 100) {
        return Err(AppleError::new(codes::TOO_MANY_USERS));
    }
    if duplicates(req.users.iter().map(|u| &u.client_user_id)) {
        return Err(AppleError::new(codes::DUPLICATE_USERS));
    }
    if req.users.iter().any(|u| u.client_user_id.trim().is_empty()) {
        return Err(AppleError::msg(
            codes::INVALID_ARGUMENT,
            "Invalid argument: every user needs a clientUserId",
        ));
    }
    if req
        .users
        .iter()
        .any(|u| u.email.as_deref().is_some_and(|e| !valid_email(e)))
    {
        return Err(AppleError::new(codes::INVALID_EMAIL));
    }
    let tasks = req.users.into_iter().map(Task::User).collect();
    Ok(queue(&mut w, &ctx, kind, tasks))
}

pub async fn create_users(
    State(shared): State<Shared>,
    ctx: Ctx,
    body: Bytes,
) -> AppleResult<Json<EventResponse>> {
    manage_users(shared, ctx, body, EventKind::Create).await
}

pub async fn update_users(
    State(shared): State<Shared>,
    ctx: Ctx,
    body: Bytes,
) -> AppleResult<Json<EventResponse>> {
    manage_users(shared, ctx, body, EventKind::Update).await
}

pub async fn retire_users(
    State(shared): State<Shared>,
    ctx: Ctx,
    body: Bytes,
) -> AppleResult<Json<EventResponse>> {
    manage_users(shared, ctx, body, EventKind::Retire).await
}

/// Events are visible only to the location that made them.
pub async fn status(
    State(shared): State<Shared>,
    ctx: Ctx,
    RawQuery(raw): RawQuery,
) -> AppleResult<Json<StatusResponse>> {
    let q = Query::parse(raw.as_deref())?;
    let id = q.str("eventId").ok_or_else(|| {
        AppleError::msg(
            codes::INVALID_ARGUMENT,
            "Invalid argument: eventId is required",
        )
    })?;
    let w = shared.lock().expect("world lock");
    let event = w
        .events
        .get(id)
        .filter(|e| e.location == ctx.location)
        .ok_or_else(|| AppleError::new(codes::EVENT_NOT_FOUND))?;
    let mut res = event.status();
    res.common = common(&w, &ctx);
    Ok(Json(res))
}

#[cfg(test)]
mod tests {
    #[test]
    fn emails() {
        for ok in ["a@b.co", "first.last@school.example.edu"] {
            assert!(super::valid_email(ok), "{ok}");
        }
        for bad in [
            "", "a", "a@b", "@b.co", "a@@b.co", "a b@c.co", "a@.co", "a@b.co.",
        ] {
            assert!(!super::valid_email(bad), "{bad}");
        }
    }
}
