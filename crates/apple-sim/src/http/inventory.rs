//! `GET /assets`, `GET /assignments`, `GET /users`: filtered, paginated, versioned reads.

use allot_apple_wire::{
    codes, user_status, GetAssetsResponse, GetAssignmentsResponse, GetUsersResponse,
};
use axum::extract::{RawQuery, State};
use axum::Json;

use super::apple::{common, page, AppleError, AppleResult, Ctx, Query};
use crate::model::{Holder, Location};
use crate::world::World;
use crate::Shared;

fn pricing_ok(p: Option<&str>) -> AppleResult<()> {
    match p {
        None | Some("STDQ") | Some("PLUS") => Ok(()),
        Some(_) => Err(AppleError::msg(
            codes::INVALID_ARGUMENT,
            "Invalid argument: pricingParam must be STDQ or PLUS",
        )),
    }
}

/// The sequence a `sinceVersionId` stands for (9721 when this location never issued it).
fn since(loc: &Location, q: &Query) -> AppleResult<Option<u64>> {
    q.str("sinceVersionId")
        .map(|v| {
            loc.versions
                .resolve(v)
                .ok_or_else(|| AppleError::new(codes::INVALID_VERSION_ID))
        })
        .transpose()
}

pub async fn assets(
    State(shared): State<Shared>,
    ctx: Ctx,
    RawQuery(raw): RawQuery,
) -> AppleResult<Json<GetAssetsResponse>> {
    let q = Query::parse(raw.as_deref())?;
    pricing_ok(q.str("pricingParam"))?;
    let product_type = q.str("productType");
    if product_type.is_some_and(|t| t != "App" && t != "Book") {
        return Err(AppleError::msg(
            codes::INVALID_ARGUMENT,
            "Invalid argument: productType must be App or Book",
        ));
    }
    let (revocable, device, unlimited) = (
        q.bool("revocable")?,
        q.bool("deviceAssignable")?,
        q.bool("unlimited")?,
    );
    let bounds = [
        q.int("minAssignedCount")?,
        q.int("maxAssignedCount")?,
        q.int("minAvailableCount")?,
        q.int("maxAvailableCount")?,
    ];
    let index = q.int("pageIndex")?;
    let mut w = shared.lock().expect("world lock");
    let loc = &w.locations[ctx.location];
    let matching: Vec<_> = loc
        .assets
        .iter()
        .filter(|a| {
            q.str("adamId").is_none_or(|id| a.adam_id == id)
                && q.str("pricingParam").is_none_or(|p| a.pricing_param == p)
                && product_type.is_none_or(|t| a.product_type == t)
                && revocable.is_none_or(|r| a.revocable == r)
                && device.is_none_or(|d| a.device_assignable == d)
                && !(unlimited == Some(false) && a.unlimited)
                && bounds[0].is_none_or(|m| a.assigned >= m)
                && bounds[1].is_none_or(|m| a.assigned <= m)
                && bounds[2].is_none_or(|m| a.available() >= m)
                && bounds[3].is_none_or(|m| a.available() <= m)
        })
        .collect();
    let (range, page_info) = page(
        matching.len(),
        w.settings.assets_page_size,
        index,
        loc.versions.current(),
    )?;
    let on_page = &matching[range];
    let mut res = GetAssetsResponse {
        page: page_info,
        common: common(&w, &ctx),
        ..Default::default()
    };
    if unlimited == Some(true) {
        res.assets = on_page
            .iter()
            .filter(|a| !a.unlimited)
            .map(|a| a.to_response())
            .collect();
        res.unlimited_assets = Some(
            on_page
                .iter()
                .filter(|a| a.unlimited)
                .map(|a| a.to_unlimited_response())
                .collect(),
        );
    } else {
        res.assets = on_page.iter().map(|a| a.to_response()).collect();
    }
    after_page(&mut w, &ctx, res.page.current_page_index);
    Ok(Json(res))
}

pub async fn assignments(
    State(shared): State<Shared>,
    ctx: Ctx,
    RawQuery(raw): RawQuery,
) -> AppleResult<Json<GetAssignmentsResponse>> {
    let q = Query::parse(raw.as_deref())?;
    pricing_ok(q.str("pricingParam"))?;
    let exclude_inactive = q.bool("excludeInactiveUsers")?.unwrap_or(false);
    let user_state = q.bool("includeUserState")?.unwrap_or(false);
    let index = q.int("pageIndex")?;
    let mut w = shared.lock().expect("world lock");
    let size = w.settings.assignments_page_size;
    let loc = &w.locations[ctx.location];
    let since = since(loc, &q)?;
    let filtered = q.str("adamId").is_some()
        || q.str("pricingParam").is_some()
        || q.str("clientUserId").is_some()
        || q.str("serialNumber").is_some()
        || exclude_inactive
        || since.is_some();
    let rows = loc.assignments.rows();
    let (page_info, items) = if !filtered {
        // The common case, a full walk: a page is a slice.
        let (range, info) = page(rows.len(), size, index, loc.versions.current())?;
        (
            info,
            rows[range]
                .iter()
                .map(|r| loc.assignment_view(r.asset, r.holder, user_state))
                .collect(),
        )
    } else {
        let assets: Option<Vec<u32>> =
            (q.str("adamId").is_some() || q.str("pricingParam").is_some()).then(|| {
                (0..loc.assets.len() as u32)
                    .filter(|&i| {
                        let a = &loc.assets[i as usize];
                        q.str("adamId").is_none_or(|id| a.adam_id == id)
                            && q.str("pricingParam").is_none_or(|p| a.pricing_param == p)
                    })
                    .collect()
            });
        let users: Option<&[u32]> = q.str("clientUserId").map(|u| loc.users.all_of(u));
        let serial = q.str("serialNumber").map(|s| loc.serial_idx(s));
        let keep = |r: &&crate::model::assignments::Row| {
            assets.as_ref().is_none_or(|a| a.contains(&r.asset))
                && since.is_none_or(|s| r.modified > s)
                && match r.holder {
                    Holder::User(u) => {
                        serial.is_none()
                            && users.is_none_or(|us| us.contains(&u))
                            && (!exclude_inactive || loc.users.get(u).is_active())
                    }
                    Holder::Device(d) => users.is_none() && serial.is_none_or(|s| s == Some(d)),
                }
        };
        let total = rows.iter().filter(keep).count();
        let (range, info) = page(total, size, index, loc.versions.current())?;
        let items = rows
            .iter()
            .filter(keep)
            .skip(range.start)
            .take(range.len())
            .map(|r| loc.assignment_view(r.asset, r.holder, user_state))
            .collect();
        (info, items)
    };
    let res = GetAssignmentsResponse {
        assignments: items,
        page: page_info,
        common: common(&w, &ctx),
    };
    after_page(&mut w, &ctx, res.page.current_page_index);
    Ok(Json(res))
}

pub async fn users(
    State(shared): State<Shared>,
    ctx: Ctx,
    RawQuery(raw): RawQuery,
) -> AppleResult<Json<GetUsersResponse>> {
    let q = Query::parse(raw.as_deref())?;
    let active_only = q.bool("activeOnly")?.unwrap_or(false);
    let retired_only = q.bool("retiredOnly")?.unwrap_or(false);
    let index = q.int("pageIndex")?;
    let mut w = shared.lock().expect("world lock");
    let loc = &w.locations[ctx.location];
    let since = since(loc, &q)?;
    let matching: Vec<_> = loc
        .users
        .records()
        .iter()
        .filter(|u| {
            q.str("clientUserId").is_none_or(|c| u.client_user_id == c)
                && (!active_only || u.is_active())
                && (!retired_only || u.status == user_status::RETIRED)
                && since.is_none_or(|s| u.modified > s)
        })
        .collect();
    let (range, page_info) = page(
        matching.len(),
        w.settings.users_page_size,
        index,
        loc.versions.current(),
    )?;
    let res = GetUsersResponse {
        users: matching[range].iter().map(|u| u.to_response()).collect(),
        page: page_info,
        common: common(&w, &ctx),
    };
    after_page(&mut w, &ctx, res.page.current_page_index);
    Ok(Json(res))
}

/// The "write between two pages" fault: changes the data after a page was served.
fn after_page(w: &mut World, ctx: &Ctx, page: i32) {
    if w.faults.take_write_after_page(&ctx.endpoint, page) {
        crate::control_ops::inject_write(w, ctx.location, ctx.endpoint == "users");
    }
}
