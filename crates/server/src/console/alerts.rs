//! Alerts (`/alerts`): what was raised, open first, and the webhook endpoints that receive them —
//! added (the signing secret shown once), sent a test event, removed, and each one's deliveries
//! with the receiver's answers.

#[allow(unused_imports)]
use super::Labels as _;
use askama::Template;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};

use super::{back, format, render, Chrome, Fields, Notice, PageResult, Viewer};
use crate::alerts::EVENTS;
use crate::api::webhooks::{add_webhook, deliveries_of, send_test, DeliveryView};
use crate::AppState;

pub(crate) struct AlertLine {
    pub kind: String,
    pub summary: String,
    pub raised: String,
    /// Empty while open.
    pub resolved: String,
}

pub(crate) struct EndpointLine {
    pub id: i64,
    pub url: String,
    pub events: String,
    pub description: String,
    pub pending: i64,
    pub failed: i64,
    pub last_delivered: String,
}

#[derive(Template)]
#[template(path = "alerts.html")]
struct AlertsPage {
    chrome: Chrome,
    alerts: Vec<AlertLine>,
    endpoints: Vec<EndpointLine>,
    events: Vec<(&'static str, &'static str)>,
    /// A new endpoint's signing secret, shown once.
    new_secret: Option<(i64, String)>,
}

async fn alerts_page(
    state: &AppState,
    viewer: &Viewer,
    notice: Option<String>,
    new_secret: Option<(i64, String)>,
) -> PageResult {
    let now = allot_sync::now_ms();
    let all = state.store.alerts(false, 100).await?;
    let alerts = crate::api::webhooks::visible_alerts(state, all)
        .await?
        .into_iter()
        .map(|a| AlertLine {
            kind: a.kind,
            summary: a.summary,
            raised: format!(
                "{} ({})",
                format::time(a.raised_at),
                format::ago(a.raised_at, now)
            ),
            resolved: a
                .resolved_at
                .map(|t| format!("over {}", format::ago(t, now)))
                .unwrap_or_default(),
        })
        .collect();
    let endpoints = state
        .store
        .webhooks()
        .await?
        .into_iter()
        .map(|w| EndpointLine {
            id: w.id,
            url: w.url,
            events: if w.events == ["*"] {
                "every event".into()
            } else {
                w.events
                    .iter()
                    .map(|e| allot_domain::labels::label(e))
                    .collect::<Vec<_>>()
                    .join(", ")
            },
            description: w.description,
            pending: w.pending,
            failed: w.failed,
            last_delivered: w
                .last_delivered_at
                .map(|t| format::ago(t, now))
                .unwrap_or_else(|| "never".into()),
        })
        .collect();
    Ok(render(&AlertsPage {
        chrome: viewer.chrome("alerts", notice),
        alerts,
        endpoints,
        events: EVENTS
            .iter()
            .map(|e| (*e, allot_domain::labels::label(e)))
            .collect(),
        new_secret,
    }))
}

pub(crate) async fn page(
    State(state): State<AppState>,
    viewer: Viewer,
    Query(n): Query<Notice>,
) -> PageResult {
    alerts_page(&state, &viewer, n.take(), None).await
}

/// Adds an endpoint (`url`, `event` repeated or `all`, `secret`, `description`); the page then
/// shows its secret once.
pub(crate) async fn add(State(state): State<AppState>, viewer: Viewer, body: Bytes) -> PageResult {
    let f = Fields::parse(&body);
    viewer.may_change(f.get("csrf"))?;
    let events = if f.get("all") == "true" {
        vec!["*".to_owned()]
    } else {
        f.all("event")
    };
    let secret = f.get("secret");
    let w = add_webhook(
        &state,
        f.get("url"),
        &events,
        (!secret.is_empty()).then_some(secret),
        f.get("description"),
        &format!("console account {}", viewer.username),
    )
    .await?;
    let shown = w.secret.clone().unwrap_or_default();
    alerts_page(
        &state,
        &viewer,
        Some(format!("Added the endpoint {}", w.url)),
        Some((w.id, shown)),
    )
    .await
}

pub(crate) async fn test(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(id): Path<i64>,
    body: Bytes,
) -> PageResult {
    let f = Fields::parse(&body);
    viewer.may_change(f.get("csrf"))?;
    send_test(&state, id, &format!("console account {}", viewer.username)).await?;
    Ok(back(
        &format!("/alerts/webhooks/{id}"),
        "A test event is on its way",
    ))
}

pub(crate) async fn delete(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(id): Path<i64>,
    body: Bytes,
) -> PageResult {
    let f = Fields::parse(&body);
    viewer.may_change(f.get("csrf"))?;
    crate::api::webhooks::remove_webhook(&state, id).await?;
    Ok(back(
        "/alerts",
        "Removed the endpoint and its waiting deliveries",
    ))
}

#[derive(Template)]
#[template(path = "webhook.html")]
struct EndpointPage {
    chrome: Chrome,
    id: i64,
    url: String,
    deliveries: Vec<DeliveryView>,
}

pub(crate) async fn endpoint(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(id): Path<i64>,
    Query(n): Query<Notice>,
) -> PageResult {
    let deliveries = deliveries_of(&state, id).await?;
    let url = state
        .store
        .webhook(id)
        .await?
        .map(|w| w.url)
        .unwrap_or_default();
    Ok(render(&EndpointPage {
        chrome: viewer.chrome("alerts", n.take()),
        id,
        url,
        deliveries,
    }))
}

impl super::Labels for AlertsPage {}
impl super::Labels for EndpointPage {}
