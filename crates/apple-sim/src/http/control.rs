//! The control API under `/_sim/` (documented in `docs/simulator.md`): what tests and the demo
//! use to make things happen on Apple's side and to read the simulator's state.

use allot_apple_wire::{
    format_apple_date, Assignment, MdmInfo, ResponseAsset, ResponseUser, StatusResponse,
};
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::apple::Query;
use crate::control_ops::{self, Purchase};
use crate::faults::Fault;
use crate::model::NotificationConfig;
use crate::settings::Settings;
use crate::world::{token_file_name, Stats, World};
use crate::Shared;

pub fn router() -> Router<Shared> {
    Router::new()
        .route("/_sim/state", get(state))
        .route("/_sim/locations", get(locations))
        .route("/_sim/locations/{uid}/purchase", post(purchase))
        .route("/_sim/locations/{uid}/refund", post(refund))
        .route(
            "/_sim/locations/{uid}/subscriptions/{adam_id}/end-period",
            post(end_period),
        )
        .route(
            "/_sim/locations/{uid}/users/{client_user_id}/accept",
            post(accept),
        )
        .route("/_sim/locations/{uid}/token/{action}", post(token_action))
        .route("/_sim/locations/{uid}/claim", post(claim))
        .route("/_sim/locations/{uid}/write", post(write))
        .route("/_sim/transfer", post(transfer))
        .route("/_sim/apps/{adam_id}/version", post(publish_version))
        .route(
            "/_sim/faults",
            get(list_faults).post(add_faults).delete(clear_faults),
        )
        .route("/_sim/settings", get(get_settings).patch(patch_settings))
        .route("/_sim/events/run", post(run_events))
        .route("/_sim/notifications", get(notifications))
        .route("/_sim/clock/advance", post(advance_clock))
        .route("/_sim/stats", get(stats))
}

/// A control-API failure: 400 (or 404) with `{"error": "…"}`.
struct ControlError(StatusCode, String);

impl IntoResponse for ControlError {
    fn into_response(self) -> Response {
        (self.0, Json(json!({ "error": self.1 }))).into_response()
    }
}

type ControlResult<T> = Result<T, ControlError>;

fn bad(e: impl Into<String>) -> ControlError {
    ControlError(StatusCode::BAD_REQUEST, e.into())
}

fn location(w: &World, uid: &str) -> ControlResult<usize> {
    w.location_by_uid(uid)
        .ok_or_else(|| ControlError(StatusCode::NOT_FOUND, format!("no location with uId {uid}")))
}

/// Parses a JSON body with a message naming the mistake (an empty body is `{}`).
fn body<T: for<'de> Deserialize<'de>>(bytes: &[u8]) -> ControlResult<T> {
    let bytes = if bytes.iter().all(u8::is_ascii_whitespace) {
        b"{}".as_slice()
    } else {
        bytes
    };
    serde_json::from_slice(bytes).map_err(|e| bad(format!("request body: {e}")))
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct LocationSummary {
    u_id: String,
    name: String,
    org_name: String,
    program: crate::model::Program,
    country: String,
    /// The current content token (the text of its `.vpptoken` file).
    token: String,
    token_file: String,
    token_expires_at: String,
    token_revoked: bool,
    token_expired: bool,
    mdm_info: Option<MdmInfo>,
    version_id: String,
}

fn summary(w: &World, i: usize) -> LocationSummary {
    let loc = &w.locations[i];
    let t = w.current_token(i);
    LocationSummary {
        u_id: loc.uid.clone(),
        name: loc.name.clone(),
        org_name: loc.org_name.clone(),
        program: loc.program,
        country: loc.country.clone(),
        token: t.token.as_bearer().to_owned(),
        token_file: token_file_name(&loc.name),
        token_expires_at: format_apple_date(t.token.expires_at()),
        token_revoked: t.revoked,
        token_expired: t.force_expired || t.token.expires_at() <= w.now(),
        mdm_info: loc.mdm_info.clone(),
        version_id: loc.versions.current().to_owned(),
    }
}

async fn locations(State(shared): State<Shared>) -> Json<Vec<LocationSummary>> {
    let w = shared.lock().expect("world lock");
    Json((0..w.locations.len()).map(|i| summary(&w, i)).collect())
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct LocationDump {
    #[serde(flatten)]
    summary: LocationSummary,
    notification: Option<NotificationConfig>,
    notification_types: Vec<String>,
    assets: Vec<AssetDump>,
    users: Vec<ResponseUser>,
    assignments: Vec<Assignment>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct AssetDump {
    #[serde(flatten)]
    asset: ResponseAsset,
    unlimited: bool,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct EventDump {
    event_id: String,
    u_id: String,
    #[serde(flatten)]
    status: StatusResponse,
}

/// The full state as JSON, for assertions (`?uId=` for one location).
async fn state(
    State(shared): State<Shared>,
    RawQuery(raw): RawQuery,
) -> ControlResult<Json<serde_json::Value>> {
    let q = Query::parse(raw.as_deref()).map_err(|_| bad("malformed query string"))?;
    let w = shared.lock().expect("world lock");
    let only = q.str("uId").map(|u| location(&w, u)).transpose()?;
    let locations: Vec<LocationDump> = (0..w.locations.len())
        .filter(|i| only.is_none_or(|o| o == *i))
        .map(|i| {
            let loc = &w.locations[i];
            LocationDump {
                summary: summary(&w, i),
                notification: loc.notification.clone(),
                notification_types: loc.notification_types.clone(),
                assets: loc
                    .assets
                    .iter()
                    .map(|a| AssetDump {
                        asset: a.to_response(),
                        unlimited: a.unlimited,
                    })
                    .collect(),
                users: loc
                    .users
                    .records()
                    .iter()
                    .map(|u| u.to_response())
                    .collect(),
                assignments: loc
                    .assignments
                    .rows()
                    .iter()
                    .map(|r| loc.assignment_view(r.asset, r.holder, false))
                    .collect(),
            }
        })
        .collect();
    let mut events: Vec<EventDump> = w
        .events
        .values()
        .filter(|e| only.is_none_or(|o| o == e.location))
        .map(|e| EventDump {
            event_id: e.id.clone(),
            u_id: w.locations[e.location].uid.clone(),
            status: e.status(),
        })
        .collect();
    events.sort_by(|a, b| a.event_id.cmp(&b.event_id));
    Ok(Json(
        json!({ "locations": locations, "events": events, "pendingEvents": w.pending_events.len() }),
    ))
}

async fn purchase(
    State(shared): State<Shared>,
    Path(uid): Path<String>,
    bytes: axum::body::Bytes,
) -> ControlResult<StatusCode> {
    let p: Purchase = body(&bytes)?;
    let mut w = shared.lock().expect("world lock");
    let i = location(&w, &uid)?;
    control_ops::purchase(&mut w, i, &p).map_err(bad)?;
    Ok(StatusCode::NO_CONTENT)
}

/// The billing period of a subscription ends now.
async fn end_period(
    State(shared): State<Shared>,
    Path((uid, adam_id)): Path<(String, i64)>,
) -> ControlResult<Json<serde_json::Value>> {
    let mut w = shared.lock().expect("world lock");
    let i = location(&w, &uid)?;
    let ended = control_ops::end_subscription_period(&mut w, i, adam_id).map_err(bad)?;
    Ok(Json(json!({ "seatsEnded": ended })))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Refund {
    adam_id: String,
    pricing_param: Option<String>,
    count: i64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Version {
    version: String,
}

/// The developer publishes a new version: the metadata lookup answers with it (and its
/// `externalId`) from now on.
async fn publish_version(
    State(shared): State<Shared>,
    Path(adam_id): Path<String>,
    bytes: axum::body::Bytes,
) -> ControlResult<Json<serde_json::Value>> {
    let v: Version = body(&bytes)?;
    let mut w = shared.lock().expect("world lock");
    let Some(meta) = w.catalog.get_mut(&adam_id) else {
        return Err(ControlError(
            StatusCode::NOT_FOUND,
            format!("no app {adam_id} in the catalog"),
        ));
    };
    meta.version = v.version.trim().to_owned();
    Ok(Json(json!({
        "version": meta.version,
        "externalId": crate::catalog::external_id(&meta.version),
    })))
}

async fn refund(
    State(shared): State<Shared>,
    Path(uid): Path<String>,
    bytes: axum::body::Bytes,
) -> ControlResult<StatusCode> {
    let r: Refund = body(&bytes)?;
    let mut w = shared.lock().expect("world lock");
    let i = location(&w, &uid)?;
    control_ops::refund(
        &mut w,
        i,
        &r.adam_id,
        r.pricing_param.as_deref().unwrap_or("STDQ"),
        r.count,
    )
    .map_err(bad)?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Transfer {
    from_u_id: String,
    to_u_id: String,
    adam_id: String,
    pricing_param: Option<String>,
    count: i64,
}

async fn transfer(
    State(shared): State<Shared>,
    bytes: axum::body::Bytes,
) -> ControlResult<StatusCode> {
    let t: Transfer = body(&bytes)?;
    let mut w = shared.lock().expect("world lock");
    let (from, to) = (location(&w, &t.from_u_id)?, location(&w, &t.to_u_id)?);
    control_ops::transfer(
        &mut w,
        from,
        to,
        &t.adam_id,
        t.pricing_param.as_deref().unwrap_or("STDQ"),
        t.count,
    )
    .map_err(bad)?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Accept {
    apple_account: Option<String>,
}

async fn accept(
    State(shared): State<Shared>,
    Path((uid, cuid)): Path<(String, String)>,
    bytes: axum::body::Bytes,
) -> ControlResult<StatusCode> {
    let a: Accept = body(&bytes)?;
    let mut w = shared.lock().expect("world lock");
    let i = location(&w, &uid)?;
    control_ops::accept_invitation(&mut w, i, &cuid, a.apple_account.as_deref()).map_err(bad)?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Renew {
    expires_in_days: Option<i64>,
}

/// `expire`, `revoke`, or `renew` (a new token; the old one is revoked and the token file
/// rewritten).
async fn token_action(
    State(shared): State<Shared>,
    Path((uid, action)): Path<(String, String)>,
    bytes: axum::body::Bytes,
) -> ControlResult<Json<LocationSummary>> {
    let mut w = shared.lock().expect("world lock");
    let i = location(&w, &uid)?;
    let bearer = w.current_token[i].clone();
    match action.as_str() {
        "expire" => {
            w.tokens
                .get_mut(&bearer)
                .expect("current token")
                .force_expired = true
        }
        "revoke" => w.tokens.get_mut(&bearer).expect("current token").revoked = true,
        "renew" => {
            let r: Renew = body(&bytes)?;
            let at = w.now() + chrono::Duration::days(r.expires_in_days.unwrap_or(365));
            w.renew_token(i, at);
            w.write_token_files()
                .map_err(|e| bad(format!("writing the token file: {e}")))?;
        }
        other => {
            return Err(ControlError(
                StatusCode::NOT_FOUND,
                format!("unknown token action {other:?}: use expire, revoke or renew"),
            ))
        }
    }
    Ok(Json(summary(&w, i)))
}

/// Another MDM claims the location (its `mdmInfo` replaces ours).
async fn claim(
    State(shared): State<Shared>,
    Path(uid): Path<String>,
    bytes: axum::body::Bytes,
) -> ControlResult<StatusCode> {
    let info: MdmInfo = body(&bytes)?;
    let mut w = shared.lock().expect("world lock");
    let i = location(&w, &uid)?;
    w.locations[i].mdm_info = Some(MdmInfo {
        id: info.id.or_else(|| Some("0b9a3c5e-other-mdm".into())),
        name: info.name.or_else(|| Some("Another MDM".into())),
        metadata: info.metadata.or_else(|| Some("1.0".into())),
    });
    Ok(StatusCode::NO_CONTENT)
}

async fn write(
    State(shared): State<Shared>,
    Path(uid): Path<String>,
) -> ControlResult<Json<LocationSummary>> {
    let mut w = shared.lock().expect("world lock");
    let i = location(&w, &uid)?;
    control_ops::inject_write(&mut w, i, false);
    Ok(Json(summary(&w, i)))
}

async fn list_faults(State(shared): State<Shared>) -> Json<Vec<Fault>> {
    Json(shared.lock().expect("world lock").faults.faults.clone())
}

/// One fault or a list of them.
async fn add_faults(
    State(shared): State<Shared>,
    bytes: axum::body::Bytes,
) -> ControlResult<StatusCode> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        Many(Vec<Fault>),
        One(Fault),
    }
    let faults = match serde_json::from_slice::<OneOrMany>(&bytes) {
        Ok(OneOrMany::Many(v)) => v,
        Ok(OneOrMany::One(f)) => vec![f],
        // Re-parse as one fault for a message that names the mistake.
        Err(_) => vec![body::<Fault>(&bytes)?],
    };
    let mut w = shared.lock().expect("world lock");
    for f in faults {
        w.faults.push(f);
    }
    Ok(StatusCode::NO_CONTENT)
}

async fn clear_faults(State(shared): State<Shared>) -> StatusCode {
    shared.lock().expect("world lock").faults.clear();
    StatusCode::NO_CONTENT
}

async fn get_settings(State(shared): State<Shared>) -> Json<Settings> {
    Json(shared.lock().expect("world lock").settings.clone())
}

/// Changes only the fields given.
async fn patch_settings(
    State(shared): State<Shared>,
    bytes: axum::body::Bytes,
) -> ControlResult<Json<Settings>> {
    let patch: serde_json::Value = body(&bytes)?;
    let mut w = shared.lock().expect("world lock");
    let mut current = serde_json::to_value(&w.settings).expect("serialisable");
    let (Some(cur), Some(p)) = (current.as_object_mut(), patch.as_object()) else {
        return Err(bad("request body: expected a JSON object of settings"));
    };
    for (k, v) in p {
        if k == "limits" {
            // Limits merge key by key.
            let limits = cur.entry("limits").or_insert(json!({}));
            if let (Some(l), Some(v)) = (limits.as_object_mut(), v.as_object()) {
                l.extend(v.clone());
                continue;
            }
        }
        cur.insert(k.clone(), v.clone());
    }
    let new: Settings =
        serde_json::from_value(current).map_err(|e| bad(format!("settings: {e}")))?;
    new.validate().map_err(bad)?;
    w.settings = new.clone();
    Ok(Json(new))
}

async fn run_events(State(shared): State<Shared>) -> Json<serde_json::Value> {
    let n = crate::events::run_all(&mut shared.lock().expect("world lock"));
    Json(json!({ "ran": n }))
}

async fn notifications(State(shared): State<Shared>) -> Json<serde_json::Value> {
    let w = shared.lock().expect("world lock");
    let pending = w
        .notifications
        .iter()
        .filter(|n| n.outcome == "pending")
        .count();
    Json(json!({ "pending": pending, "notifications": w.notifications }))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Advance {
    seconds: i64,
}

/// Moves the simulator's clock (token expiry is judged by it).
async fn advance_clock(
    State(shared): State<Shared>,
    bytes: axum::body::Bytes,
) -> ControlResult<Json<serde_json::Value>> {
    let a: Advance = body(&bytes)?;
    let mut w = shared.lock().expect("world lock");
    w.clock_offset += chrono::Duration::seconds(a.seconds);
    Ok(Json(json!({ "now": format_apple_date(w.now()) })))
}

async fn stats(State(shared): State<Shared>) -> Json<Stats> {
    Json(shared.lock().expect("world lock").stats.clone())
}
