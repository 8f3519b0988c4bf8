//! `/api/v1/webhooks` and `/api/v1/alerts`: endpoints that receive Allot's alerts (signed JSON,
//! delivered from a durable outbox), their delivery log, a test event; and the alerts raised.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::alerts::EVENTS;
use crate::auth::{Caller, Writer};
use crate::error::{ApiError, ApiJson, ErrorBody};
use crate::AppState;

fn time(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        .unwrap_or_default()
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct WebhookView {
    pub id: i64,
    pub url: String,
    /// The events it receives (`*`: all).
    pub events: Vec<String>,
    pub description: String,
    pub created_by: Option<String>,
    pub created_at: String,
    /// Deliveries waiting for their next attempt.
    pub pending: i64,
    /// Deliveries given up after a day of failures.
    pub failed: i64,
    pub last_delivered_at: Option<String>,
    /// Only when the endpoint is created: the secret deliveries are signed with (kept encrypted,
    /// never shown again).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
}

impl From<allot_store::WebhookRow> for WebhookView {
    fn from(w: allot_store::WebhookRow) -> Self {
        Self {
            id: w.id,
            url: w.url,
            events: w.events,
            description: w.description,
            created_by: w.created_by,
            created_at: time(w.created_at),
            pending: w.pending,
            failed: w.failed,
            last_delivered_at: w.last_delivered_at.map(time),
            secret: None,
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct WebhookList {
    pub webhooks: Vec<WebhookView>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NewWebhookRequest {
    /// Where deliveries are POSTed (`https://`, or `http://` for a receiver on a private network).
    pub url: String,
    /// Event names (`token.expiring`, …) or `["*"]` for every event.
    pub events: Vec<String>,
    /// The signing secret (at least 16 characters); made for you when absent.
    pub secret: Option<String>,
    #[serde(default)]
    pub description: String,
}

/// The URL and events checked, in words a person can act on.
pub(crate) fn checked_endpoint(url: &str, events: &[String]) -> Result<(String, String), String> {
    let url = url.trim();
    let parsed = reqwest::Url::parse(url).map_err(|e| format!("url {url:?} is not a URL: {e}"))?;
    if !matches!(parsed.scheme(), "https" | "http")
        || parsed.host_str().is_none()
        || url.len() > 2000
    {
        return Err(format!(
            "url {url:?} must be an http:// or https:// address of at most 2,000 characters"
        ));
    }
    let mut chosen: Vec<&str> = Vec::new();
    for e in events.iter().map(|e| e.trim()).filter(|e| !e.is_empty()) {
        if e == "*" {
            return Ok((url.to_owned(), "*".into()));
        }
        let Some(known) = EVENTS.iter().find(|k| **k == e) else {
            return Err(format!(
                "unknown event {e:?}: the events are {}, or * for all",
                EVENTS.join(", ")
            ));
        };
        if !chosen.contains(known) {
            chosen.push(known);
        }
    }
    if chosen.is_empty() {
        return Err(format!(
            "choose the events to receive: {}, or * for all",
            EVENTS.join(", ")
        ));
    }
    Ok((url.to_owned(), chosen.join(",")))
}

/// Registers an endpoint; the answer carries its signing secret, once.
#[utoipa::path(post, path = "/api/v1/webhooks", tag = "alerts", request_body = NewWebhookRequest,
    responses((status = 201, body = WebhookView), (status = 422, body = ErrorBody)), security(("api_key" = [])))]
pub async fn create(
    State(state): State<AppState>,
    Writer(caller): Writer,
    ApiJson(req): ApiJson<NewWebhookRequest>,
) -> Result<(StatusCode, Json<WebhookView>), ApiError> {
    let view = add_webhook(
        &state,
        &req.url,
        &req.events,
        req.secret.as_deref(),
        &req.description,
        &caller.key_name,
    )
    .await?;
    Ok((StatusCode::CREATED, Json(view)))
}

/// Registers an endpoint (API, CLI and console): its view with the secret.
pub(crate) async fn add_webhook(
    state: &AppState,
    url: &str,
    events: &[String],
    secret: Option<&str>,
    description: &str,
    who: &str,
) -> Result<WebhookView, ApiError> {
    let (url, events) = checked_endpoint(url, events).map_err(ApiError::invalid)?;
    let secret = match secret.map(str::trim).filter(|s| !s.is_empty()) {
        Some(s) if s.chars().count() < 16 || s.contains(char::is_control) => {
            return Err(ApiError::invalid(
                "a webhook secret needs at least 16 printable characters",
            ))
        }
        Some(s) => s.to_owned(),
        None => allot_secrets::random_token("whsec_"),
    };
    let description =
        crate::input::check_text("description", description, 200).map_err(ApiError::invalid)?;
    let sealed = state.engine.seal(secret.as_bytes());
    let id = state
        .store
        .insert_webhook(
            &url,
            &events,
            &sealed,
            &description,
            Some(who),
            allot_sync::now_ms(),
        )
        .await?;
    let row = state.store.webhook(id).await?.expect("just made");
    crate::audit::detail(format!("endpoint {url}: events {events}"));
    Ok(WebhookView {
        secret: Some(secret),
        ..row.into()
    })
}

#[utoipa::path(get, path = "/api/v1/webhooks", tag = "alerts", responses((status = 200, body = WebhookList)), security(("api_key" = [])))]
pub async fn list(
    State(state): State<AppState>,
    _c: Caller,
) -> Result<Json<WebhookList>, ApiError> {
    Ok(Json(WebhookList {
        webhooks: state
            .store
            .webhooks()
            .await?
            .into_iter()
            .map(Into::into)
            .collect(),
    }))
}

async fn find(state: &AppState, id: i64) -> Result<allot_store::WebhookRow, ApiError> {
    state
        .store
        .webhook(id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no webhook endpoint {id}")))
}

#[utoipa::path(get, path = "/api/v1/webhooks/{id}", tag = "alerts", params(("id" = i64, Path)),
    responses((status = 200, body = WebhookView), (status = 404, body = ErrorBody)), security(("api_key" = [])))]
pub async fn show(
    State(state): State<AppState>,
    _c: Caller,
    Path(id): Path<i64>,
) -> Result<Json<WebhookView>, ApiError> {
    Ok(Json(find(&state, id).await?.into()))
}

/// Removes an endpoint; its waiting deliveries go with it.
#[utoipa::path(delete, path = "/api/v1/webhooks/{id}", tag = "alerts", params(("id" = i64, Path), crate::api::Confirm),
    responses((status = 204), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)), security(("api_key" = [])))]
pub async fn delete(
    State(state): State<AppState>,
    _a: Writer,
    Path(id): Path<i64>,
    Query(c): Query<crate::api::Confirm>,
) -> Result<StatusCode, ApiError> {
    crate::api::confirmed(&c, "removing a webhook endpoint")?;
    remove_webhook(&state, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Removes an endpoint and its waiting deliveries (the API's and the console's).
pub(crate) async fn remove_webhook(state: &AppState, id: i64) -> Result<(), ApiError> {
    let gone = state.store.webhook(id).await?;
    if !state.store.delete_webhook(id).await? {
        return Err(ApiError::not_found(format!("no webhook endpoint {id}")));
    }
    if let Some(w) = gone {
        crate::audit::detail(format!("endpoint {} removed", w.url));
    }
    Ok(())
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DeliveryView {
    pub id: i64,
    pub event_id: String,
    pub event: String,
    pub summary: String,
    /// `pending` (waiting for its next attempt), `delivered` or `failed` (gave up after a day).
    pub status: String,
    pub attempts: i64,
    /// The receiver's last HTTP status.
    pub last_status: Option<i64>,
    /// What went wrong last (the receiver's words, or the connection's error).
    pub last_error: Option<String>,
    pub last_attempt_at: Option<String>,
    pub next_attempt_at: Option<String>,
    pub delivered_at: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct DeliveryList {
    pub deliveries: Vec<DeliveryView>,
}

pub(crate) async fn deliveries_of(
    state: &AppState,
    id: i64,
) -> Result<Vec<DeliveryView>, ApiError> {
    find(state, id).await?;
    Ok(state
        .store
        .webhook_deliveries(id, 100)
        .await?
        .into_iter()
        .map(|d| DeliveryView {
            id: d.id,
            event_id: d.event_id,
            event: d.kind,
            summary: d.summary,
            next_attempt_at: (d.status == "pending").then(|| time(d.next_attempt_at)),
            status: d.status,
            attempts: d.attempts,
            last_status: d.last_status,
            last_error: d.last_error,
            last_attempt_at: d.last_attempt_at.map(time),
            delivered_at: d.delivered_at.map(time),
        })
        .collect())
}

/// The last 100 deliveries to an endpoint, newest first.
#[utoipa::path(get, path = "/api/v1/webhooks/{id}/deliveries", tag = "alerts", params(("id" = i64, Path)),
    responses((status = 200, body = DeliveryList), (status = 404, body = ErrorBody)), security(("api_key" = [])))]
pub async fn deliveries(
    State(state): State<AppState>,
    _c: Caller,
    Path(id): Path<i64>,
) -> Result<Json<DeliveryList>, ApiError> {
    Ok(Json(DeliveryList {
        deliveries: deliveries_of(&state, id).await?,
    }))
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TestSent {
    /// The test event's id, as the receiver sees it.
    pub event_id: String,
}

/// Queues a `test` event to this endpoint alone (follow it in its deliveries).
#[utoipa::path(post, path = "/api/v1/webhooks/{id}/test", tag = "alerts", params(("id" = i64, Path)),
    responses((status = 202, body = TestSent), (status = 404, body = ErrorBody)), security(("api_key" = [])))]
pub async fn test(
    State(state): State<AppState>,
    Writer(caller): Writer,
    Path(id): Path<i64>,
) -> Result<(StatusCode, Json<TestSent>), ApiError> {
    Ok((
        StatusCode::ACCEPTED,
        Json(send_test(&state, id, &caller.key_name).await?),
    ))
}

pub(crate) async fn send_test(state: &AppState, id: i64, who: &str) -> Result<TestSent, ApiError> {
    let w = find(state, id).await?;
    let now = allot_sync::now_ms();
    let event_id = uuid::Uuid::new_v4().to_string();
    let a = allot_store::NewAlert {
        event_id: event_id.clone(),
        kind: "test".into(),
        dedupe_key: format!("test:{event_id}"),
        summary: format!("A test event for {}, sent by {who}", w.url),
        data: serde_json::json!({ "webhookId": w.id, "sentBy": who }).to_string(),
    };
    state.store.raise_alert(&a, Some(w.id), now).await?;
    state.alerts.wake();
    Ok(TestSent { event_id })
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AlertView {
    pub event_id: String,
    /// `token.expiring`, `licenses.low`, …
    pub event: String,
    pub summary: String,
    pub data: serde_json::Value,
    pub raised_at: String,
    /// When its condition ended (absent: still open).
    pub resolved_at: Option<String>,
}

impl From<allot_store::AlertRow> for AlertView {
    fn from(a: allot_store::AlertRow) -> Self {
        Self {
            event_id: a.event_id,
            event: a.kind,
            summary: a.summary,
            data: serde_json::from_str(&a.data).unwrap_or(serde_json::Value::Null),
            raised_at: time(a.raised_at),
            resolved_at: a.resolved_at.map(time),
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct AlertList {
    pub alerts: Vec<AlertView>,
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct AlertQuery {
    /// `true`: only alerts whose condition still holds.
    pub open: Option<bool>,
}

/// Alerts raised, newest first (the last 500).
#[utoipa::path(get, path = "/api/v1/alerts", tag = "alerts", params(AlertQuery), responses((status = 200, body = AlertList)), security(("api_key" = [])))]
pub async fn alerts(
    State(state): State<AppState>,
    _c: Caller,
    Query(q): Query<AlertQuery>,
) -> Result<Json<AlertList>, ApiError> {
    let rows = state.store.alerts(q.open.unwrap_or(false), 500).await?;
    Ok(Json(AlertList {
        alerts: visible_alerts(&state, rows)
            .await?
            .into_iter()
            .map(Into::into)
            .collect(),
    }))
}

/// The alerts the caller may see: a scoped caller sees those about its tokens and deployments
/// and those about no location (the MDM connector, the ledger as a whole).
pub(crate) async fn visible_alerts(
    state: &AppState,
    rows: Vec<allot_store::AlertRow>,
) -> Result<Vec<allot_store::AlertRow>, ApiError> {
    if !crate::access::is_scoped() {
        return Ok(rows);
    }
    let deployments = crate::api::deployments_exec::visible_ids(state).await?;
    Ok(rows
        .into_iter()
        .filter(|a| {
            let data: serde_json::Value = serde_json::from_str(&a.data).unwrap_or_default();
            match (data["tokenId"].as_i64(), data["deploymentId"].as_i64()) {
                (Some(t), _) => crate::access::sees(t),
                (None, Some(d)) => deployments.contains(&d),
                (None, None) => true,
            }
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::checked_endpoint;

    #[test]
    fn endpoints_are_checked_in_words() {
        assert_eq!(
            checked_endpoint(
                " https://hooks.example/allot ",
                &[
                    "licenses.low".into(),
                    "token.expiring".into(),
                    "licenses.low".into()
                ]
            )
            .unwrap(),
            (
                "https://hooks.example/allot".to_string(),
                "licenses.low,token.expiring".to_string()
            )
        );
        assert_eq!(
            checked_endpoint("http://10.0.0.5:8080/", &["*".into()])
                .unwrap()
                .1,
            "*"
        );
        assert!(checked_endpoint("ftp://x.example/", &["*".into()])
            .unwrap_err()
            .contains("http://"));
        assert!(checked_endpoint("not a url", &["*".into()])
            .unwrap_err()
            .contains("not a URL"));
        assert!(
            checked_endpoint("https://x.example/", &["token.exploded".into()])
                .unwrap_err()
                .contains("unknown event")
        );
        assert!(checked_endpoint("https://x.example/", &[])
            .unwrap_err()
            .contains("choose the events"));
    }
}
