//! Subscriptions (spec §15): enabling their management, the cursor-paged lists of subscriptions,
//! seats and admins, and seats given and taken back through events whose outcome comes as
//! `SUBSCRIPTION_MANAGEMENT` notifications.

use std::collections::HashSet;

use allot_apple_wire::{
    codes, limit, ManageSubscriptionsRequest, SubscriptionAssignment,
    SubscriptionAssignmentsResponse, SubscriptionManagementResponse, SubscriptionsResponse,
};
use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::Json;
use base64::Engine;
use serde::{Deserialize, Serialize};

use super::apple::{common, parse_body, AppleError, AppleResult, Ctx, Query};
use super::manage::queue;
use crate::events::{EventKind, Task};
use crate::Shared;

/// An opaque cursor: where the next page starts. Anything else is 9812.
fn cursor_of(offset: usize) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("allot-sim:{offset}"))
}

fn offset_of(q: &Query) -> AppleResult<usize> {
    let Some(c) = q.str("cursor") else {
        return Ok(0);
    };
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(c.trim())
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .and_then(|s| s.strip_prefix("allot-sim:").and_then(|n| n.parse().ok()))
        .ok_or_else(|| AppleError::new(codes::CURSOR_INVALID))
}

fn id_filter(q: &Query, key: &str) -> AppleResult<Option<i64>> {
    q.int(key)
}

/// One page of `items` from `offset`, and the cursor of the next if there is one.
fn page<T: Clone>(
    items: &[T],
    offset: usize,
    size: usize,
) -> AppleResult<(Vec<T>, Option<String>)> {
    if offset > items.len() {
        return Err(AppleError::new(codes::CURSOR_INVALID));
    }
    let end = (offset + size.max(1)).min(items.len());
    let next = (end < items.len()).then(|| cursor_of(end));
    Ok((items[offset..end].to_vec(), next))
}

pub async fn enable(
    State(shared): State<Shared>,
    ctx: Ctx,
) -> Json<SubscriptionManagementResponse> {
    let mut w = shared.lock().expect("world lock");
    let loc = &mut w.locations[ctx.location];
    loc.subscriptions.enabled = true;
    loc.subscriptions.version += 1;
    Json(SubscriptionManagementResponse {
        subscription_management: true,
        common: common(&w, &ctx),
    })
}

pub async fn disable(
    State(shared): State<Shared>,
    ctx: Ctx,
) -> AppleResult<Json<SubscriptionManagementResponse>> {
    let mut w = shared.lock().expect("world lock");
    let loc = &mut w.locations[ctx.location];
    if !loc.subscriptions.list.is_empty() {
        return Err(AppleError::new(codes::SUBSCRIPTIONS_EXIST));
    }
    loc.subscriptions.enabled = false;
    loc.subscriptions.version += 1;
    Ok(Json(SubscriptionManagementResponse {
        subscription_management: false,
        common: common(&w, &ctx),
    }))
}

pub async fn list(
    State(shared): State<Shared>,
    ctx: Ctx,
    RawQuery(raw): RawQuery,
) -> AppleResult<Json<SubscriptionsResponse>> {
    let q = Query::parse(raw.as_deref())?;
    let (parent, adam) = (id_filter(&q, "parentAdamId")?, id_filter(&q, "adamId")?);
    let offset = offset_of(&q)?;
    let w = shared.lock().expect("world lock");
    let subs = &w.locations[ctx.location].subscriptions;
    let all: Vec<_> = subs
        .list
        .iter()
        .filter(|s| parent.is_none_or(|p| s.parent_adam_id == p))
        .filter(|s| adam.is_none_or(|a| s.adam_id == a))
        .map(|s| subs.to_response(s))
        .collect();
    let (items, next) = page(&all, offset, w.settings.assets_page_size)?;
    Ok(Json(SubscriptionsResponse {
        subscriptions: items,
        next_cursor: next,
        version_id: subs.version.to_string(),
        common: common(&w, &ctx),
    }))
}

pub async fn assignments(
    State(shared): State<Shared>,
    ctx: Ctx,
    RawQuery(raw): RawQuery,
) -> AppleResult<Json<SubscriptionAssignmentsResponse>> {
    let q = Query::parse(raw.as_deref())?;
    let (parent, adam) = (id_filter(&q, "parentAdamId")?, id_filter(&q, "adamId")?);
    let user = q.str("clientUserId").map(str::to_owned);
    let offset = offset_of(&q)?;
    let w = shared.lock().expect("world lock");
    let subs = &w.locations[ctx.location].subscriptions;
    let of_parent = |adam_id: i64| {
        parent.is_none_or(|p| subs.get(adam_id).is_some_and(|s| s.parent_adam_id == p))
    };
    let all: Vec<SubscriptionAssignment> = subs
        .seats
        .iter()
        .filter(|s| adam.is_none_or(|a| s.adam_id == a) && of_parent(s.adam_id))
        .filter(|s| user.as_ref().is_none_or(|u| &s.client_user_id == u))
        .map(crate::model::Subscriptions::seat_view)
        .collect();
    let (items, next) = page(&all, offset, w.settings.assignments_page_size)?;
    Ok(Json(SubscriptionAssignmentsResponse {
        assignments: items,
        next_cursor: next,
        version_id: subs.version.to_string(),
        common: common(&w, &ctx),
    }))
}

/// Checks shared by associate and disassociate: 9811 (nothing asked, duplicates), 9816 (limits),
/// 9813 (not a subscription of this location), 9814 (no such registered user).
fn validate(
    w: &crate::world::World,
    ctx: &Ctx,
    req: &ManageSubscriptionsRequest,
) -> AppleResult<()> {
    let s = &w.settings;
    if req.adam_ids.is_empty() || req.client_user_ids.is_empty() {
        return Err(AppleError::new(codes::SUBSCRIPTION_REQUEST_INVALID));
    }
    let distinct = |n: usize, set: usize| n == set;
    if !distinct(
        req.adam_ids.len(),
        req.adam_ids.iter().collect::<HashSet<_>>().len(),
    ) || !distinct(
        req.client_user_ids.len(),
        req.client_user_ids.iter().collect::<HashSet<_>>().len(),
    ) || req.client_user_ids.iter().any(|u| u.trim().is_empty())
    {
        return Err(AppleError::new(codes::SUBSCRIPTION_REQUEST_INVALID));
    }
    if req.adam_ids.len() > s.limit(limit::MAX_SUBSCRIPTIONS, 25)
        || req.client_user_ids.len() > s.limit(limit::MAX_SUBSCRIPTION_CLIENT_USER_IDS, 1000)
    {
        return Err(AppleError::new(codes::SUBSCRIPTION_LIMITS_EXCEEDED));
    }
    let loc = &w.locations[ctx.location];
    if let Some(bad) = req
        .adam_ids
        .iter()
        .find(|a| loc.subscriptions.get(**a).is_none())
    {
        return Err(AppleError::msg(
            codes::SUBSCRIPTION_ADAM_ID_INVALID,
            format!("Subscription adamId {bad} is not a subscription of this location."),
        ));
    }
    if let Some(bad) = req
        .client_user_ids
        .iter()
        .find(|u| loc.users.active(u).is_none())
    {
        return Err(AppleError::msg(
            codes::SUBSCRIPTION_USER_NOT_REGISTERED,
            format!("No registered user has clientUserId {bad}."),
        ));
    }
    Ok(())
}

fn seat_tasks(req: &ManageSubscriptionsRequest, flag: bool) -> Vec<Task> {
    req.adam_ids
        .iter()
        .flat_map(|a| {
            req.client_user_ids.iter().map(move |u| Task::Seat {
                adam_id: *a,
                user: u.clone(),
                flag,
            })
        })
        .collect()
}

pub async fn associate(
    State(shared): State<Shared>,
    ctx: Ctx,
    body: Bytes,
) -> AppleResult<Json<allot_apple_wire::EventResponse>> {
    let req: ManageSubscriptionsRequest = parse_body(&body)?;
    let mut w = shared.lock().expect("world lock");
    validate(&w, &ctx, &req)?;
    let tasks = seat_tasks(&req, req.renewing.unwrap_or(true));
    Ok(queue(&mut w, &ctx, EventKind::SubscriptionAssociate, tasks))
}

pub async fn disassociate(
    State(shared): State<Shared>,
    ctx: Ctx,
    body: Bytes,
) -> AppleResult<Json<allot_apple_wire::EventResponse>> {
    let req: ManageSubscriptionsRequest = parse_body(&body)?;
    let mut w = shared.lock().expect("world lock");
    validate(&w, &ctx, &req)?;
    let loc = &w.locations[ctx.location];
    // Taking back a seat a user does not hold is refused at once (9815).
    for a in &req.adam_ids {
        for u in &req.client_user_ids {
            if !loc
                .subscriptions
                .seats
                .iter()
                .any(|s| s.adam_id == *a && &s.client_user_id == u)
            {
                return Err(AppleError::msg(
                    codes::SUBSCRIPTION_NOT_ASSIGNED,
                    format!("User {u} is not assigned subscription {a}."),
                ));
            }
        }
    }
    let tasks = seat_tasks(&req, req.deferred.unwrap_or(false));
    Ok(queue(
        &mut w,
        &ctx,
        EventKind::SubscriptionDisassociate,
        tasks,
    ))
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SubscriptionAdmin {
    adam_id: i64,
    client_user_id: String,
    id_hash: Option<String>,
    user_status: String,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AdminsResponse {
    admins: Vec<SubscriptionAdmin>,
    #[serde(skip_serializing_if = "Option::is_none")]
    next_cursor: Option<String>,
    version_id: String,
    #[serde(flatten)]
    common: allot_apple_wire::Common,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ManageAdminsRequest {
    #[serde(default)]
    adam_ids: Vec<i64>,
    #[serde(default)]
    client_user_ids: Vec<String>,
}

pub async fn admins(
    State(shared): State<Shared>,
    ctx: Ctx,
    RawQuery(raw): RawQuery,
) -> AppleResult<Json<AdminsResponse>> {
    let q = Query::parse(raw.as_deref())?;
    let offset = offset_of(&q)?;
    let w = shared.lock().expect("world lock");
    let loc = &w.locations[ctx.location];
    let all: Vec<SubscriptionAdmin> = loc
        .subscriptions
        .admins
        .iter()
        .map(|(a, u)| {
            let user = loc.users.active(u).map(|i| loc.users.get(i));
            SubscriptionAdmin {
                adam_id: *a,
                client_user_id: u.clone(),
                id_hash: user.and_then(|r| r.id_hash()),
                user_status: user.map_or("Retired".into(), |r| r.status.to_string()),
            }
        })
        .collect();
    let (items, next) = page(&all, offset, w.settings.users_page_size)?;
    Ok(Json(AdminsResponse {
        admins: items,
        next_cursor: next,
        version_id: loc.subscriptions.version.to_string(),
        common: common(&w, &ctx),
    }))
}

async fn manage_admins(
    shared: Shared,
    ctx: Ctx,
    body: Bytes,
    add: bool,
) -> AppleResult<Json<AdminsResponse>> {
    let req: ManageAdminsRequest = parse_body(&body)?;
    let probe = ManageSubscriptionsRequest {
        adam_ids: req.adam_ids.clone(),
        client_user_ids: req.client_user_ids.clone(),
        ..Default::default()
    };
    {
        let mut w = shared.lock().expect("world lock");
        validate(&w, &ctx, &probe)?;
        let subs = &mut w.locations[ctx.location].subscriptions;
        for a in &req.adam_ids {
            for u in &req.client_user_ids {
                subs.admins.retain(|(x, y)| !(x == a && y == u));
                if add {
                    subs.admins.push((*a, u.clone()));
                }
            }
        }
        subs.version += 1;
    }
    admins(State(shared), ctx, RawQuery(None)).await
}

pub async fn add_admins(
    State(shared): State<Shared>,
    ctx: Ctx,
    body: Bytes,
) -> AppleResult<Json<AdminsResponse>> {
    manage_admins(shared, ctx, body, true).await
}

pub async fn remove_admins(
    State(shared): State<Shared>,
    ctx: Ctx,
    body: Bytes,
) -> AppleResult<Json<AdminsResponse>> {
    manage_admins(shared, ctx, body, false).await
}
