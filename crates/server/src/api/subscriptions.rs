//! `/api/v1/subscriptions`: subscription seats Apple sold into a token's location (§15), what
//! each user holds, seats given and taken back, and what the end of the period will do.

use allot_store::{SeatRow, SubscriptionRow};
use allot_sync::SeatChange;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::auth::{Caller, Writer};
use crate::error::{ApiError, ApiJson, ErrorBody};
use crate::AppState;

#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
pub struct SeatCountsView {
    pub renewing: i64,
    pub expiring: i64,
}

/// What the end of the billing period does if nobody acts.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ForecastView {
    /// Seats charged again for the next period.
    pub renewing_seats: i64,
    /// Seats that end with the period.
    pub expiring_seats: i64,
    /// Users who lose the subscription: on an expiring seat, or taken off at the period's end.
    pub users_losing_access: i64,
    /// The cost of doing nothing: seats that renew with nobody on them.
    pub unused_renewing_seats: i64,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SubscriptionView {
    pub token_id: i64,
    pub token: String,
    /// The app the subscription belongs to, and its name when known.
    pub parent_adam_id: i64,
    pub app_name: Option<String>,
    pub adam_id: i64,
    /// `ACTIVE`, `INACTIVE` or `PAUSED`.
    pub status: String,
    /// `YYYY-MM-DD`.
    pub period_end: Option<String>,
    pub assigned: SeatCountsView,
    pub available: SeatCountsView,
    pub total: SeatCountsView,
    /// Seats whose users come off at the period's end (asked with `deferred`).
    pub leaving: i64,
    pub forecast: ForecastView,
    /// When Apple last said these counts (RFC 3339).
    pub updated_at: String,
}

#[derive(Serialize, ToSchema)]
pub struct SubscriptionList {
    pub subscriptions: Vec<SubscriptionView>,
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct SubscriptionQuery {
    /// A token's id or name.
    pub token: Option<String>,
}

pub(crate) fn forecast(s: &SubscriptionRow, seats: &[SeatRow]) -> ForecastView {
    // Everyone on an expiring seat loses it; so does anyone taken off a renewing seat, whose seat
    // then renews empty.
    let leaving_renewing = seats.iter().filter(|x| x.leaving && x.renewing).count() as i64;
    ForecastView {
        renewing_seats: s.total_renewing,
        expiring_seats: s.total_expiring,
        users_losing_access: s.assigned_expiring + leaving_renewing,
        unused_renewing_seats: s.available_renewing + leaving_renewing,
    }
}

/// Every subscription of the tokens (one, or all) with its forecast.
pub(crate) async fn views(
    state: &AppState,
    token_id: Option<i64>,
) -> Result<Vec<SubscriptionView>, ApiError> {
    let subscriptions =
        crate::access::filter(state.store.subscriptions(token_id).await?, |s| s.token_id);
    if subscriptions.is_empty() {
        // Most organizations have none: spare the front page a read of every token.
        return Ok(Vec::new());
    }
    let mut ids: Vec<i64> = subscriptions.iter().map(|s| s.token_id).collect();
    ids.sort_unstable();
    ids.dedup();
    let tokens = state.store.token_labels_of(&ids).await?;
    let mut out = Vec::new();
    for s in subscriptions {
        let seats = state
            .store
            .subscription_seats(s.token_id, s.adam_id)
            .await?;
        let app_name = state
            .store
            .metadata(&s.parent_adam_id.to_string())
            .await?
            .map(|m| m.name);
        out.push(SubscriptionView {
            token_id: s.token_id,
            token: tokens
                .iter()
                .find(|t| t.id == s.token_id)
                .map(|t| t.name.clone())
                .unwrap_or_default(),
            parent_adam_id: s.parent_adam_id,
            app_name,
            adam_id: s.adam_id,
            status: s.status.clone(),
            period_end: s.period_end.clone(),
            assigned: SeatCountsView {
                renewing: s.assigned_renewing,
                expiring: s.assigned_expiring,
            },
            available: SeatCountsView {
                renewing: s.available_renewing,
                expiring: s.available_expiring,
            },
            total: SeatCountsView {
                renewing: s.total_renewing,
                expiring: s.total_expiring,
            },
            leaving: seats.iter().filter(|x| x.leaving).count() as i64,
            forecast: forecast(&s, &seats),
            updated_at: crate::api::rfc3339(s.updated_at),
        });
    }
    Ok(out)
}

#[utoipa::path(get, path = "/api/v1/subscriptions", tag = "subscriptions", params(SubscriptionQuery),
    responses((status = 200, body = SubscriptionList), (status = 404, body = ErrorBody)), security(("api_key" = [])))]
pub async fn list(
    State(state): State<AppState>,
    _c: Caller,
    q: Result<Query<SubscriptionQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<SubscriptionList>, ApiError> {
    let Query(q) = q.map_err(|e| ApiError::invalid(e.body_text()))?;
    let token_id = match q.token.as_deref().map(str::trim).filter(|t| !t.is_empty()) {
        Some(t) => Some(crate::api::tokens::find(&state, t).await?.id),
        None => None,
    };
    Ok(Json(SubscriptionList {
        subscriptions: views(&state, token_id).await?,
    }))
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EnableResult {
    pub subscription_management: bool,
    /// Subscriptions Apple has sold into the location so far.
    pub subscriptions: usize,
}

/// Tells Apple that Allot manages this location's subscriptions (so they can be bought into it),
/// then reads them. Idempotent.
#[utoipa::path(post, path = "/api/v1/tokens/{token}/subscriptions", tag = "subscriptions", params(("token" = String, Path, description = "id or name")),
    responses((status = 200, body = EnableResult), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 502, body = ErrorBody)), security(("api_key" = [])))]
pub async fn enable(
    State(state): State<AppState>,
    _a: Writer,
    Path(key): Path<String>,
) -> Result<Json<EnableResult>, ApiError> {
    let t = crate::api::tokens::find(&state, &key).await?;
    let n = state.engine.enable_subscriptions(t.id).await?;
    Ok(Json(EnableResult {
        subscription_management: true,
        subscriptions: n,
    }))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct SeatQuery {
    /// The token (id or name) whose seats to list.
    pub token: String,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SeatView {
    pub client_user_id: String,
    /// The user's e-mail, when Allot knows the person.
    pub email: Option<String>,
    pub renewing: bool,
    /// Comes off at the period's end.
    pub leaving: bool,
}

#[derive(Serialize, ToSchema)]
pub struct SeatList {
    pub seats: Vec<SeatView>,
}

#[utoipa::path(get, path = "/api/v1/subscriptions/{adam_id}/seats", tag = "subscriptions", params(("adam_id" = i64, Path), SeatQuery),
    responses((status = 200, body = SeatList), (status = 404, body = ErrorBody)), security(("api_key" = [])))]
pub async fn seats(
    State(state): State<AppState>,
    _c: Caller,
    Path(adam_id): Path<i64>,
    q: Result<Query<SeatQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<SeatList>, ApiError> {
    let Query(q) = q.map_err(|e| ApiError::invalid(e.body_text()))?;
    let t = crate::api::tokens::find(&state, q.token.trim()).await?;
    let users = state.store.users(t.id).await?;
    let seats = state
        .store
        .subscription_seats(t.id, adam_id)
        .await?
        .into_iter()
        .map(|s| SeatView {
            email: users
                .iter()
                .find(|u| u.client_user_id == s.client_user_id)
                .and_then(|u| u.email.clone()),
            client_user_id: s.client_user_id,
            renewing: s.renewing,
            leaving: s.leaving,
        })
        .collect();
    Ok(Json(SeatList { seats }))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct AssignSeats {
    /// The token (id or name) whose seats to use.
    pub token: String,
    /// Apple's clientUserIds of the users (1 to 1,000).
    pub client_user_ids: Vec<String>,
    /// A seat that renews at the period's end (default), or one that ends with it.
    #[serde(default = "yes")]
    pub renewing: bool,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RemoveSeats {
    pub token: String,
    pub client_user_ids: Vec<String>,
    /// At the end of the billing period (default: the user keeps what was paid for), or now.
    #[serde(default = "yes")]
    pub deferred: bool,
}

fn yes() -> bool {
    true
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SeatRequestAccepted {
    /// Apple's event; the seats change when it ends, and what it did is read back from Apple.
    pub event_id: String,
}

fn check_users(ids: &[String]) -> Result<Vec<String>, ApiError> {
    if ids.is_empty() || ids.len() > 1000 {
        return Err(ApiError::invalid(
            "clientUserIds must name 1 to 1,000 users (Apple's limit per request)",
        ));
    }
    let mut out: Vec<String> = Vec::new();
    for id in ids {
        let id = id.trim();
        if id.is_empty() || id.len() > 256 || id.contains(char::is_control) {
            return Err(ApiError::invalid(
                "each clientUserId must be 1 to 256 printable characters",
            ));
        }
        if !out.iter().any(|o| o == id) {
            out.push(id.to_owned());
        }
    }
    Ok(out)
}

/// Gives users seats of a subscription.
#[utoipa::path(post, path = "/api/v1/subscriptions/{adam_id}/seats", tag = "subscriptions", params(("adam_id" = i64, Path)), request_body = AssignSeats,
    responses((status = 202, body = SeatRequestAccepted), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)), security(("api_key" = [])))]
pub async fn assign(
    State(state): State<AppState>,
    _a: Writer,
    Path(adam_id): Path<i64>,
    ApiJson(req): ApiJson<AssignSeats>,
) -> Result<(StatusCode, Json<SeatRequestAccepted>), ApiError> {
    let change = SeatChange::Assign {
        renewing: req.renewing,
    };
    seat_request(&state, adam_id, &req.token, &req.client_user_ids, change).await
}

/// Takes seats back, at the period's end by default.
#[utoipa::path(post, path = "/api/v1/subscriptions/{adam_id}/seats/remove", tag = "subscriptions", params(("adam_id" = i64, Path)), request_body = RemoveSeats,
    responses((status = 202, body = SeatRequestAccepted), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)), security(("api_key" = [])))]
pub async fn remove(
    State(state): State<AppState>,
    _a: Writer,
    Path(adam_id): Path<i64>,
    ApiJson(req): ApiJson<RemoveSeats>,
) -> Result<(StatusCode, Json<SeatRequestAccepted>), ApiError> {
    let change = SeatChange::Remove {
        deferred: req.deferred,
    };
    seat_request(&state, adam_id, &req.token, &req.client_user_ids, change).await
}

/// Checks the users and the token, asks Apple, and answers its event id.
async fn seat_request(
    state: &AppState,
    adam_id: i64,
    token: &str,
    client_user_ids: &[String],
    change: SeatChange,
) -> Result<(StatusCode, Json<SeatRequestAccepted>), ApiError> {
    let users = check_users(client_user_ids)?;
    let t = crate::api::tokens::find(state, token.trim()).await?;
    let event_id = state
        .engine
        .change_seats(t.id, adam_id, &users, change)
        .await?;
    Ok((StatusCode::ACCEPTED, Json(SeatRequestAccepted { event_id })))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct NewIntent {
    /// The token (id or name) whose seats to use.
    pub token: String,
    /// A users collection (id or name): each of its people holds a seat.
    pub collection: String,
    /// Seats that renew at the period's end (default), or seats that end with it.
    #[serde(default = "yes")]
    pub renewing: bool,
}

/// A standing intent: every person of a users collection holds a seat of a subscription.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct IntentView {
    pub id: i64,
    pub token_id: i64,
    pub token: String,
    pub adam_id: i64,
    pub collection_id: i64,
    pub collection: String,
    pub renewing: bool,
    /// People in the collection.
    pub members: i64,
    /// Of them, holding a seat (not leaving).
    pub seated: i64,
    /// Of them, not registered with Apple at the location yet (being registered).
    pub not_registered: i64,
    /// Registered, without a seat: no seat of the kind is free (or Apple is giving it now).
    pub waiting: i64,
    pub created_at: String,
}

#[derive(Serialize, ToSchema)]
pub struct IntentList {
    pub intents: Vec<IntentView>,
}

pub(crate) async fn intent_view(
    state: &AppState,
    i: allot_store::SubscriptionIntentRow,
) -> Result<IntentView, ApiError> {
    let people = state
        .store
        .collection_people_registered(i.collection_id, i.token_id)
        .await?;
    let seats = state
        .store
        .subscription_seats(i.token_id, i.adam_id)
        .await?;
    let (mut seated, mut not_registered, mut waiting) = (0, 0, 0);
    let mut members = 0;
    for (p, registered) in &people {
        members += 1;
        if seats
            .iter()
            .any(|s| s.client_user_id == p.client_user_id && !s.leaving)
        {
            seated += 1;
        } else if *registered {
            waiting += 1;
        } else {
            not_registered += 1;
        }
    }
    let token = state
        .store
        .token(i.token_id)
        .await?
        .map(|t| t.name)
        .unwrap_or_default();
    Ok(IntentView {
        id: i.id,
        token_id: i.token_id,
        token,
        adam_id: i.adam_id,
        collection_id: i.collection_id,
        collection: i.collection,
        renewing: i.renewing,
        members,
        seated,
        not_registered,
        waiting,
        created_at: crate::api::rfc3339(i.created_at),
    })
}

/// Every person of a users collection holds a seat, for as long as the intent stands: people who
/// join get one, people who leave give theirs back at the period's end.
#[utoipa::path(post, path = "/api/v1/subscriptions/{adam_id}/intents", tag = "subscriptions", params(("adam_id" = i64, Path)), request_body = NewIntent,
    responses((status = 201, body = IntentView), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)), security(("api_key" = [])))]
pub async fn create_intent(
    State(state): State<AppState>,
    _a: Writer,
    Path(adam_id): Path<i64>,
    ApiJson(req): ApiJson<NewIntent>,
) -> Result<(StatusCode, Json<IntentView>), ApiError> {
    let v = new_intent(&state, adam_id, &req).await?;
    Ok((StatusCode::CREATED, Json(v)))
}

/// Creates a standing intent and makes it true a first time (the API's and the console's).
pub(crate) async fn new_intent(
    state: &AppState,
    adam_id: i64,
    req: &NewIntent,
) -> Result<IntentView, ApiError> {
    let state = state.clone();
    let t = crate::api::tokens::find(&state, req.token.trim()).await?;
    let c = crate::api::collections::find(&state, req.collection.trim()).await?;
    if c.kind != "users" {
        return Err(ApiError::invalid(format!(
            "collection {} holds devices: subscription seats go to people (a users collection)",
            c.name
        )));
    }
    if state.store.subscription_management(t.id).await?.is_none() {
        return Err(ApiError::conflict(format!(
            "subscriptions are not managed for token {}: enable them first (POST /api/v1/tokens/{}/subscriptions)",
            t.name, t.id
        )));
    }
    if !state
        .store
        .subscriptions(Some(t.id))
        .await?
        .iter()
        .any(|s| s.adam_id == adam_id)
    {
        return Err(ApiError::invalid(format!(
            "token {} has no subscription {adam_id} (GET /api/v1/subscriptions lists them)",
            t.name
        )));
    }
    let id = state
        .store
        .insert_subscription_intent(t.id, adam_id, c.id, req.renewing, allot_sync::now_ms())
        .await
        .map_err(|e| match e {
            allot_store::StoreError::Conflict(_) => ApiError::conflict(format!(
                "collection {} already holds seats of subscription {adam_id} on token {}",
                c.name, t.name
            )),
            other => other.into(),
        })?;
    state.engine.reconcile_subscription_intents(t.id).await?;
    let row = state
        .store
        .subscription_intents(Some(t.id))
        .await?
        .into_iter()
        .find(|i| i.id == id)
        .ok_or_else(|| ApiError::not_found(format!("no subscription intent {id}")))?;
    intent_view(&state, row).await
}

#[utoipa::path(get, path = "/api/v1/subscriptions/intents", tag = "subscriptions",
    responses((status = 200, body = IntentList)), security(("api_key" = [])))]
pub async fn intents(
    State(state): State<AppState>,
    _c: Caller,
) -> Result<Json<IntentList>, ApiError> {
    let mut out = Vec::new();
    for i in state.store.subscription_intents(None).await? {
        out.push(intent_view(&state, i).await?);
    }
    Ok(Json(IntentList { intents: out }))
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct EndIntent {
    /// Must be `true`.
    #[param(required = true)]
    pub confirm: Option<bool>,
    /// `keep` (default: the seats stay with the people) or `remove` (they give them back at the
    /// period's end).
    pub then: Option<String>,
}

/// Ends an intent; its seats stay, or go back at the period's end with `then=remove`.
#[utoipa::path(delete, path = "/api/v1/subscriptions/intents/{id}", tag = "subscriptions", params(("id" = i64, Path), EndIntent),
    responses((status = 204), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)), security(("api_key" = [])))]
pub async fn delete_intent(
    State(state): State<AppState>,
    _a: Writer,
    Path(id): Path<i64>,
    q: Result<Query<EndIntent>, axum::extract::rejection::QueryRejection>,
) -> Result<StatusCode, ApiError> {
    let Query(q) = q.map_err(|e| ApiError::invalid(e.body_text()))?;
    crate::api::confirmed(
        &crate::api::Confirm { confirm: q.confirm },
        "ending a subscription intent",
    )?;
    end_intent(&state, id, q.then.as_deref().unwrap_or("keep")).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Ends a standing intent: `keep` its seats, or `remove` them at the period's end.
pub(crate) async fn end_intent(state: &AppState, id: i64, then: &str) -> Result<(), ApiError> {
    let remove = match then {
        "keep" => false,
        "remove" => true,
        other => {
            return Err(ApiError::invalid(format!(
                "then {other:?} must be keep or remove"
            )))
        }
    };
    let Some(i) = state
        .store
        .subscription_intents(None)
        .await?
        .into_iter()
        .find(|i| i.id == id)
    else {
        return Err(ApiError::not_found(format!("no subscription intent {id}")));
    };
    let given = state.store.intent_users(id).await?;
    if remove && !given.is_empty() {
        let held: Vec<String> = state
            .store
            .subscription_seats(i.token_id, i.adam_id)
            .await?
            .into_iter()
            .filter(|s| !s.leaving && given.contains(&s.client_user_id))
            .map(|s| s.client_user_id)
            .collect();
        for chunk in held.chunks(1000) {
            state
                .engine
                .change_seats(
                    i.token_id,
                    i.adam_id,
                    chunk,
                    SeatChange::Remove { deferred: true },
                )
                .await?;
        }
    }
    state.store.delete_subscription_intent(id).await?;
    Ok(())
}
