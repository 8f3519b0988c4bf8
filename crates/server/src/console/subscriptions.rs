//! Subscriptions: every subscription Apple sold into a managed token's location, its seats split
//! renewing/expiring with when Apple said so, what the end of the period will do (the renewal
//! forecast, also as CSV), who holds a seat; an administrator enables their management on a
//! token and gives or takes back seats.

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::Form;
use serde::Deserialize;

use super::{back, format, render, Chrome, Notice, PageError, PageResult, Viewer};
use crate::api::subscriptions::SubscriptionView;
use crate::AppState;

pub(crate) struct SeatLine {
    user: String,
    email: String,
    seat: String,
    leaving: bool,
}

pub(crate) struct SubscriptionLine {
    s: SubscriptionView,
    app: String,
    as_of: String,
    seats: Vec<SeatLine>,
    intents: Vec<crate::api::subscriptions::IntentView>,
}

#[derive(Template)]
#[template(path = "subscriptions.html")]
struct SubscriptionsPage {
    chrome: Chrome,
    subscriptions: Vec<SubscriptionLine>,
    /// Tokens of ours without subscription management yet: (id, name).
    can_enable: Vec<(i64, String)>,
    /// Users collections, for standing intents: (id, name).
    collections: Vec<(i64, String)>,
}

pub(crate) async fn page(
    State(state): State<AppState>,
    viewer: Viewer,
    Query(q): Query<Notice>,
) -> PageResult {
    let now = allot_sync::now_ms();
    let all_intents = state.store.subscription_intents(None).await?;
    let mut lines = Vec::new();
    for s in crate::api::subscriptions::views(&state, None).await? {
        let users = state.store.users(s.token_id).await?;
        let seats = state
            .store
            .subscription_seats(s.token_id, s.adam_id)
            .await?
            .into_iter()
            .map(|x| SeatLine {
                email: users
                    .iter()
                    .find(|u| u.client_user_id == x.client_user_id)
                    .and_then(|u| u.email.clone())
                    .unwrap_or_default(),
                user: x.client_user_id,
                seat: if x.renewing {
                    "renews".into()
                } else {
                    "ends with the period".into()
                },
                leaving: x.leaving,
            })
            .collect();
        let as_of = chrono::DateTime::parse_from_rfc3339(&s.updated_at)
            .map(|t| format::ago(t.timestamp_millis(), now))
            .unwrap_or_default();
        let mut intents = Vec::new();
        for i in all_intents
            .iter()
            .filter(|i| i.token_id == s.token_id && i.adam_id == s.adam_id)
        {
            intents.push(crate::api::subscriptions::intent_view(&state, i.clone()).await?);
        }
        lines.push(SubscriptionLine {
            intents,
            app: s
                .app_name
                .clone()
                .unwrap_or_else(|| format!("adamId {}", s.parent_adam_id)),
            as_of,
            seats,
            s,
        });
    }
    let mut can_enable = Vec::new();
    for t in crate::access::filter(state.store.tokens().await?, |t| t.id) {
        if t.claim == allot_domain::Claim::Ours
            && state.store.subscription_management(t.id).await?.is_none()
        {
            can_enable.push((t.id, t.name));
        }
    }
    let collections = state
        .store
        .collections()
        .await?
        .into_iter()
        .filter(|c| c.kind == "users")
        .map(|c| (c.id, c.name))
        .collect();
    Ok(render(&SubscriptionsPage {
        chrome: viewer.chrome("subscriptions", q.take()),
        subscriptions: lines,
        can_enable,
        collections,
    }))
}

#[derive(Deserialize)]
pub(crate) struct EnableForm {
    csrf: String,
    token: i64,
}

pub(crate) async fn enable(
    State(state): State<AppState>,
    viewer: Viewer,
    Form(f): Form<EnableForm>,
) -> PageResult {
    viewer.may_change(&f.csrf)?;
    let t = crate::api::tokens::find(&state, &f.token.to_string()).await?;
    let n = state
        .engine
        .enable_subscriptions(t.id)
        .await
        .map_err(crate::error::ApiError::from)?;
    Ok(back(
        "/subscriptions",
        &format!("Subscriptions are managed for this token; Apple has sold {n} into it so far"),
    ))
}

#[derive(Deserialize)]
pub(crate) struct SeatForm {
    csrf: String,
    token: i64,
    /// One clientUserId per line or separated by commas.
    users: String,
    /// `renewing`, `expiring` (assign); `deferred`, `now` (remove).
    how: String,
}

pub(crate) async fn seats(
    State(state): State<AppState>,
    viewer: Viewer,
    Path((adam_id, action)): Path<(i64, String)>,
    Form(f): Form<SeatForm>,
) -> PageResult {
    viewer.may_change(&f.csrf)?;
    let users: Vec<String> = f
        .users
        .split([',', '\n', '\r'])
        .map(str::trim)
        .filter(|u| !u.is_empty())
        .map(str::to_owned)
        .collect();
    if users.is_empty() || users.len() > 1000 {
        return Err(PageError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "name 1 to 1,000 users by their clientUserId, one per line",
        ));
    }
    let change = match (action.as_str(), f.how.as_str()) {
        ("assign", "renewing") => allot_sync::SeatChange::Assign { renewing: true },
        ("assign", "expiring") => allot_sync::SeatChange::Assign { renewing: false },
        ("remove", "deferred") => allot_sync::SeatChange::Remove { deferred: true },
        ("remove", "now") => allot_sync::SeatChange::Remove { deferred: false },
        _ => {
            return Err(PageError::new(
                StatusCode::NOT_FOUND,
                "seats are assigned (renewing or expiring) or removed (deferred or now)",
            ))
        }
    };
    let event = state
        .engine
        .change_seats(f.token, adam_id, &users, change)
        .await
        .map_err(crate::error::ApiError::from)?;
    Ok(back(
        "/subscriptions",
        &format!(
            "Apple accepted the request for {} user(s) (event {event}); the seats below change when it ends",
            users.len()
        ),
    ))
}

/// `/subscriptions/forecast.csv`: the renewal forecast as a download.
pub(crate) async fn forecast_csv(State(state): State<AppState>, _viewer: Viewer) -> PageResult {
    Ok(crate::api::reports::subscriptions_export(&state, "csv").await?)
}

#[derive(Deserialize)]
pub(crate) struct IntendForm {
    csrf: String,
    token: i64,
    collection: i64,
    /// `renewing` or `expiring`.
    how: String,
}

/// A standing intent from the page: everyone in the collection holds a seat.
pub(crate) async fn intend(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(adam_id): Path<i64>,
    Form(f): Form<IntendForm>,
) -> PageResult {
    viewer.may_change(&f.csrf)?;
    let t = crate::api::tokens::find(&state, &f.token.to_string()).await?;
    let req = crate::api::subscriptions::NewIntent {
        token: t.id.to_string(),
        collection: f.collection.to_string(),
        renewing: f.how != "expiring",
    };
    let v = crate::api::subscriptions::new_intent(&state, adam_id, &req).await?;
    Ok(back(
        "/subscriptions",
        &format!(
            "Everyone in {} holds a seat from now on: {} of {} now, {} waiting for a free seat, {} being registered with Apple",
            v.collection, v.seated, v.members, v.waiting, v.not_registered
        ),
    ))
}

#[derive(Deserialize)]
pub(crate) struct EndForm {
    csrf: String,
    /// `keep` or `remove`.
    then: String,
}

pub(crate) async fn end_intent(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(id): Path<i64>,
    Form(f): Form<EndForm>,
) -> PageResult {
    viewer.may_change(&f.csrf)?;
    crate::api::subscriptions::end_intent(&state, id, &f.then).await?;
    Ok(back(
        "/subscriptions",
        if f.then == "remove" {
            "The intent ended; its seats go back at the end of the period"
        } else {
            "The intent ended; its seats stay with the people who hold them"
        },
    ))
}
