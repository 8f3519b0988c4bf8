//! The HTTP client proper.

use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use allot_apple_wire::metadata::LookupResponse;
use allot_apple_wire::{
    limit, url_key, ClientConfigRequest, ClientConfigResponse, ErrorResponse, EventResponse,
    GetAssetsResponse, GetAssignmentsResponse, GetUsersResponse, ManageAssetsRequest,
    ManageSubscriptionsRequest, ManageUsersRequest, RevokeAssetsRequest, ServiceConfigResponse,
    StatusResponse, SubscriptionAssignmentsResponse, SubscriptionManagementResponse,
    SubscriptionsResponse,
};
use reqwest::{Method, StatusCode};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::error::{AppleError, AppleResult};
use crate::pacer::Pacer;

/// A content token as sent in `Authorization: Bearer …`. `Debug` never shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct Bearer(pub(crate) String);

impl Bearer {
    pub fn new(token_text: &str) -> Self {
        Self(token_text.trim().to_owned())
    }

    fn key(&self) -> u64 {
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        self.0.hash(&mut h);
        h.finish()
    }
}

/// How a request carries the location's token: the license API's `Authorization: Bearer`, the
/// metadata lookup's `itvt` cookie (not paced with the token's license requests), or not at all.
#[derive(Clone, Copy)]
enum Auth<'a> {
    None,
    Bearer(&'a Bearer),
    Cookie(&'a Bearer),
}

impl std::fmt::Debug for Bearer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Bearer(…)")
    }
}

#[derive(Debug, Clone)]
pub struct ClientOptions {
    /// `…/mdm/v2/`.
    pub base_url: String,
    /// Attempts for a read before giving up.
    pub read_attempts: u32,
    /// Attempts for a write that Apple refused with 429/503.
    pub write_attempts: u32,
    /// First backoff when Apple gives no `Retry-After`; doubles per attempt.
    pub backoff: Duration,
    pub max_backoff: Duration,
    /// Fraction of `maxRequestPerSecond` to use, leaving room for clock jitter.
    pub rate_margin: f64,
    pub timeout: Duration,
    /// What HTTPS to Apple trusts (`ALLOT_CA_FILE` behind a TLS-inspecting proxy).
    pub trust: allot_trust::Trust,
}

impl ClientOptions {
    pub fn new(base_url: &str) -> Self {
        Self {
            base_url: format!("{}/", base_url.trim_end_matches('/')),
            read_attempts: 6,
            write_attempts: 4,
            backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(60),
            rate_margin: 0.95,
            timeout: Duration::from_secs(60),
            trust: allot_trust::Trust::system(),
        }
    }
}

/// Filters of Get Assignments.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AssignmentsQuery {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub adam_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pricing_param: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_user_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub serial_number: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub since_version_id: Option<String>,
}

/// Filters of Get Users.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct UsersQuery {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_user_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub since_version_id: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ErrorProbe {
    error_number: Option<i32>,
    error_message: Option<String>,
    error_info: Option<allot_apple_wire::ErrorInfo>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Read,
    Write,
}

pub struct AppleClient {
    http: reqwest::Client,
    opts: ClientOptions,
    pacer: Arc<Pacer>,
    config: RwLock<Option<(Instant, ServiceConfigResponse)>>,
}

/// `service/config` is re-read after this long (Apple: every 5 minutes).
const CONFIG_TTL: Duration = Duration::from_secs(300);

impl AppleClient {
    pub fn new(opts: ClientOptions) -> Self {
        let http = opts
            .trust
            .client_builder()
            .timeout(opts.timeout)
            .user_agent(concat!("Allot/", env!("CARGO_PKG_VERSION")))
            .build()
            .expect("an HTTP client (its certificates were checked when loaded)");
        Self {
            http,
            opts,
            pacer: Arc::default(),
            config: RwLock::new(None),
        }
    }

    pub fn base_url(&self) -> &str {
        &self.opts.base_url
    }

    /// `service/config`, cached for five minutes.
    pub async fn service_config(&self) -> AppleResult<ServiceConfigResponse> {
        if let Some((at, cfg)) = self.config.read().expect("config lock").as_ref() {
            if at.elapsed() < CONFIG_TTL {
                return Ok(cfg.clone());
            }
        }
        // Unpaced (it needs no token) and retried like any read.
        let url = format!("{}service/config", self.opts.base_url);
        let mut attempt = 0;
        let cfg: ServiceConfigResponse = loop {
            attempt += 1;
            let started = std::time::Instant::now();
            let (status, result) = self
                .once(
                    Auth::None,
                    Method::GET,
                    &url,
                    None,
                    Kind::Read,
                    "service/config",
                )
                .await;
            record("service/config", status, &result, started.elapsed());
            match result {
                Ok(c) => break c,
                Err(e)
                    if attempt < self.opts.read_attempts
                        && matches!(
                            e,
                            AppleError::RateLimited { .. }
                                | AppleError::Unavailable { .. }
                                | AppleError::ServerError { .. }
                                | AppleError::Transport(_)
                                | AppleError::Http { .. }
                        ) =>
                {
                    let backoff = (self.opts.backoff * 2u32.saturating_pow(attempt - 1))
                        .min(self.opts.max_backoff);
                    tokio::time::sleep(e.retry_after().unwrap_or(backoff)).await;
                }
                Err(e) => return Err(e),
            }
        };
        *self.config.write().expect("config lock") = Some((Instant::now(), cfg.clone()));
        Ok(cfg)
    }

    async fn limit(&self, key: &str, default: i32) -> i32 {
        match self.service_config().await {
            Ok(c) => c.limits.get(key).copied().unwrap_or(default),
            Err(_) => default,
        }
    }

    /// A published per-request limit (`maxSerialNumbers`, …), Apple's example value if unknown.
    pub async fn request_limit(&self, key: &str) -> usize {
        let default = match key {
            limit::MAX_ASSETS => 25,
            limit::MAX_USERS
            | limit::MAX_REVOKE_CLIENT_USER_IDS
            | limit::MAX_REVOKE_SERIAL_NUMBERS => 100,
            _ => 1000,
        };
        self.limit(key, default).await.max(1) as usize
    }

    /// The invitation a Registered user opens to join the program: `urls.invitationEmail` with
    /// the user's `inviteCode` in place of its `%25inviteCode%25` placeholder.
    pub async fn invitation_url(&self, invite_code: &str) -> AppleResult<String> {
        let cfg = self.service_config().await?;
        let template = cfg
            .urls
            .get(allot_apple_wire::url_key::INVITATION_EMAIL)
            .ok_or_else(|| {
                AppleError::Decode("service/config names no invitationEmail URL".into())
            })?;
        Ok(template.replace("%25inviteCode%25", invite_code))
    }

    /// The URL of an endpoint: from `service/config` when it names one, else the base URL.
    async fn url(&self, key: &str, path: &str) -> String {
        if let Ok(cfg) = self.service_config().await {
            if let Some(u) = cfg.urls.get(key) {
                return u.clone();
            }
        }
        format!("{}{path}", self.opts.base_url)
    }

    /// A GET of an endpoint named `key` in `service/config` (`path` under the base URL otherwise).
    async fn read<T: DeserializeOwned>(
        &self,
        token: &Bearer,
        key: &str,
        path: &str,
        query: Option<String>,
    ) -> AppleResult<T> {
        let url = self.url(key, path).await;
        let url = match query {
            Some(q) => format!("{url}?{q}"),
            None => url,
        };
        self.send(
            Auth::Bearer(token),
            Method::GET,
            url,
            None,
            Kind::Read,
            path,
        )
        .await
    }

    /// A POST of a JSON body: never replayed unless Apple refused it.
    async fn write<B: Serialize, T: DeserializeOwned>(
        &self,
        token: &Bearer,
        key: &str,
        path: &str,
        body: &B,
    ) -> AppleResult<T> {
        let url = self.url(key, path).await;
        self.send(
            Auth::Bearer(token),
            Method::POST,
            url,
            Some(json(body)),
            Kind::Write,
            path,
        )
        .await
    }

    pub async fn client_config(&self, token: &Bearer) -> AppleResult<ClientConfigResponse> {
        self.read(token, url_key::CLIENT_CONFIG, "client/config", None)
            .await
    }

    pub async fn set_client_config(
        &self,
        token: &Bearer,
        req: &ClientConfigRequest,
    ) -> AppleResult<ClientConfigResponse> {
        self.write(token, url_key::CLIENT_CONFIG, "client/config", req)
            .await
    }

    pub async fn assets_page(&self, token: &Bearer, page: i32) -> AppleResult<GetAssetsResponse> {
        self.read(
            token,
            url_key::GET_ASSETS,
            "assets",
            Some(format!("pageIndex={page}")),
        )
        .await
    }

    pub async fn assignments_page(
        &self,
        token: &Bearer,
        q: &AssignmentsQuery,
        page: i32,
    ) -> AppleResult<GetAssignmentsResponse> {
        self.read(
            token,
            url_key::GET_ASSIGNMENTS,
            "assignments",
            Some(query_string(q, page)),
        )
        .await
    }

    pub async fn users_page(
        &self,
        token: &Bearer,
        q: &UsersQuery,
        page: i32,
    ) -> AppleResult<GetUsersResponse> {
        self.read(
            token,
            url_key::GET_USERS,
            "users",
            Some(query_string(q, page)),
        )
        .await
    }

    // ---- subscriptions (§15): not in service/config's urls; paths under the base URL ----

    /// Declares that we manage subscriptions for this location (idempotent).
    pub async fn enable_subscriptions(
        &self,
        token: &Bearer,
    ) -> AppleResult<SubscriptionManagementResponse> {
        self.write(
            token,
            "subscriptionsEnable",
            "subscriptions/enable",
            &serde_json::json!({}),
        )
        .await
    }

    /// One page of subscriptions; pass the previous page's `nextCursor`.
    pub async fn subscriptions(
        &self,
        token: &Bearer,
        cursor: Option<&str>,
    ) -> AppleResult<SubscriptionsResponse> {
        let q = cursor.map(|c| serde_urlencoded::to_string([("cursor", c)]).unwrap_or_default());
        self.read(token, "subscriptions", "subscriptions", q).await
    }

    /// One page of subscription seats and who holds them.
    pub async fn subscription_assignments(
        &self,
        token: &Bearer,
        cursor: Option<&str>,
    ) -> AppleResult<SubscriptionAssignmentsResponse> {
        let q = cursor.map(|c| serde_urlencoded::to_string([("cursor", c)]).unwrap_or_default());
        self.read(
            token,
            "subscriptionsAssignments",
            "subscriptions/assignments",
            q,
        )
        .await
    }

    pub async fn associate_subscriptions(
        &self,
        token: &Bearer,
        req: &ManageSubscriptionsRequest,
    ) -> AppleResult<EventResponse> {
        self.write(
            token,
            "subscriptionsAssociate",
            "subscriptions/associate",
            req,
        )
        .await
    }

    pub async fn disassociate_subscriptions(
        &self,
        token: &Bearer,
        req: &ManageSubscriptionsRequest,
    ) -> AppleResult<EventResponse> {
        self.write(
            token,
            "subscriptionsDisassociate",
            "subscriptions/disassociate",
            req,
        )
        .await
    }

    pub async fn associate(
        &self,
        token: &Bearer,
        req: &ManageAssetsRequest,
    ) -> AppleResult<EventResponse> {
        self.write(token, url_key::ASSOCIATE_ASSETS, "assets/associate", req)
            .await
    }

    pub async fn disassociate(
        &self,
        token: &Bearer,
        req: &ManageAssetsRequest,
    ) -> AppleResult<EventResponse> {
        self.write(
            token,
            url_key::DISASSOCIATE_ASSETS,
            "assets/disassociate",
            req,
        )
        .await
    }

    pub async fn revoke(
        &self,
        token: &Bearer,
        req: &RevokeAssetsRequest,
    ) -> AppleResult<EventResponse> {
        self.write(token, url_key::REVOKE_ASSETS, "assets/revoke", req)
            .await
    }

    pub async fn create_users(
        &self,
        token: &Bearer,
        req: &ManageUsersRequest,
    ) -> AppleResult<EventResponse> {
        self.write(token, url_key::CREATE_USERS, "users/create", req)
            .await
    }

    pub async fn update_users(
        &self,
        token: &Bearer,
        req: &ManageUsersRequest,
    ) -> AppleResult<EventResponse> {
        self.write(token, url_key::UPDATE_USERS, "users/update", req)
            .await
    }

    pub async fn retire_users(
        &self,
        token: &Bearer,
        req: &ManageUsersRequest,
    ) -> AppleResult<EventResponse> {
        self.write(token, url_key::RETIRE_USERS, "users/retire", req)
            .await
    }

    /// `GET /status`. Callers polling a PENDING event should wait at least 30 s between calls.
    pub async fn status(&self, token: &Bearer, event_id: &str) -> AppleResult<StatusResponse> {
        let q = serde_urlencoded::to_string([("eventId", event_id)]).unwrap_or_default();
        self.read(token, url_key::EVENT_STATUS, "status", Some(q))
            .await
    }

    /// Store metadata of up to a few hundred ids (spec §18.1), in `language` (`en-us`, …). With
    /// the location's token as the `itvt` cookie Apple also answers for the organization's custom
    /// apps and for apps no longer for sale.
    pub async fn lookup(
        &self,
        ids: &[String],
        platform: &str,
        country: &str,
        language: &str,
        token: Option<&Bearer>,
    ) -> AppleResult<LookupResponse> {
        let url = self.url(url_key::CONTENT_METADATA_LOOKUP, "lookup").await;
        let q = serde_urlencoded::to_string([
            ("version", "2"),
            ("id", &ids.join(",")),
            ("p", "mdm-lockup"),
            ("caller", "MDM"),
            ("platform", platform),
            ("cc", &country.to_lowercase()),
            ("l", language),
        ])
        .unwrap_or_default();
        let auth = token.map_or(Auth::None, Auth::Cookie);
        self.send(
            auth,
            Method::GET,
            format!("{url}?{q}"),
            None,
            Kind::Read,
            "lookup",
        )
        .await
    }

    /// Sends one request with pacing, error classification and the retry rules above.
    async fn send<T: DeserializeOwned>(
        &self,
        auth: Auth<'_>,
        method: Method,
        url: String,
        body: Option<Vec<u8>>,
        kind: Kind,
        what: &str,
    ) -> AppleResult<T> {
        let token = match auth {
            Auth::Bearer(t) => Some(t),
            _ => None,
        };
        let key = token.map_or(0, Bearer::key);
        let attempts = if kind == Kind::Read {
            self.opts.read_attempts
        } else {
            self.opts.write_attempts
        };
        let mut attempt = 0;
        loop {
            attempt += 1;
            if token.is_some() {
                let rps = self.rate().await;
                let held = std::time::Instant::now();
                self.pacer.acquire(key, rps).await;
                allot_telemetry::add(
                    "allot_apple_pacing_seconds_total",
                    &[],
                    held.elapsed().as_secs_f64(),
                );
            }
            let started = std::time::Instant::now();
            let (status, result) = self
                .once(auth, method.clone(), &url, body.clone(), kind, what)
                .await;
            record(what, status, &result, started.elapsed());
            let err = match result {
                Ok(v) => return Ok(v),
                Err(e) => e,
            };
            let retryable = match (&err, kind) {
                (e, _) if e.is_refusal_to_retry() => true,
                (
                    AppleError::Transport(_)
                    | AppleError::Http { .. }
                    | AppleError::ServerError { .. },
                    Kind::Read,
                ) => true,
                _ => false,
            };
            if !retryable || attempt >= attempts {
                return Err(err);
            }
            let backoff =
                (self.opts.backoff * 2u32.saturating_pow(attempt - 1)).min(self.opts.max_backoff);
            let wait = err.retry_after().unwrap_or(backoff);
            tracing::debug!(what, attempt, ?wait, error = %err, "retrying Apple request");
            allot_telemetry::count("allot_apple_retries_total", &[("endpoint", what)]);
            if err.retry_after().is_some() {
                allot_telemetry::add(
                    "allot_apple_retry_after_seconds_total",
                    &[],
                    wait.as_secs_f64(),
                );
            }
            self.pacer.block(key, wait);
        }
    }

    async fn rate(&self) -> f64 {
        let rps = self.limit(limit::MAX_REQUEST_PER_SECOND, 15).await;
        if rps <= 0 {
            0.0
        } else {
            f64::from(rps) * self.opts.rate_margin
        }
    }

    /// One request; the HTTP status Apple answered with, if it answered, beside the outcome.
    async fn once<T: DeserializeOwned>(
        &self,
        auth: Auth<'_>,
        method: Method,
        url: &str,
        body: Option<Vec<u8>>,
        kind: Kind,
        what: &str,
    ) -> (Option<u16>, AppleResult<T>) {
        let mut req = self.http.request(method, url);
        match auth {
            Auth::Bearer(t) => req = req.bearer_auth(&t.0),
            Auth::Cookie(t) => req = req.header(reqwest::header::COOKIE, format!("itvt={}", t.0)),
            Auth::None => {}
        }
        if let Some(b) = body {
            req = req
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(b);
        }
        let res = match req.send().await {
            Ok(r) => r,
            // Never connected: nothing reached Apple, so even a write may go again.
            Err(e) if e.is_connect() => {
                return (
                    None,
                    Err(AppleError::Unavailable {
                        number: 0,
                        retry_after: None,
                    }),
                )
            }
            Err(e) if kind == Kind::Write => {
                tracing::warn!(what, error = %e, "write to Apple broke off after sending");
                return (None, Err(AppleError::OutcomeUnknown(what.to_owned())));
            }
            Err(e) => {
                return (
                    None,
                    Err(AppleError::Transport(e.without_url().to_string())),
                )
            }
        };
        let status = res.status();
        (Some(status.as_u16()), answer(res, kind, what).await)
    }
}

/// One request in the metrics: by endpoint, HTTP status and Apple's error number, and its time.
fn record<T>(what: &str, status: Option<u16>, result: &AppleResult<T>, took: Duration) {
    let status = status.map_or_else(|| "none".to_owned(), |s| s.to_string());
    let error = match result {
        Ok(_) => String::new(),
        Err(e) => e
            .error_number()
            .filter(|n| *n != 0)
            .map_or_else(|| "none".to_owned(), |n| n.to_string()),
    };
    allot_telemetry::count(
        "allot_apple_requests_total",
        &[("endpoint", what), ("status", &status), ("error", &error)],
    );
    allot_telemetry::observe(
        "allot_apple_request_seconds",
        &[("endpoint", what)],
        took.as_secs_f64(),
    );
}

/// Apple's answer read: its error body (sent with any status, 200 included), a refusal by
/// status, or the value.
async fn answer<T: DeserializeOwned>(
    res: reqwest::Response,
    kind: Kind,
    what: &str,
) -> AppleResult<T> {
    let status = res.status();
    let retry_after = res
        .headers()
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(parse_retry_after);
    let bytes = match res.bytes().await {
        Ok(b) => b,
        Err(_) if kind == Kind::Write => return Err(AppleError::OutcomeUnknown(what.to_owned())),
        Err(e) => return Err(AppleError::Transport(e.without_url().to_string())),
    };
    if let Ok(ErrorProbe {
        error_number: Some(n),
        error_message,
        error_info,
    }) = serde_json::from_slice(&bytes)
    {
        let body = ErrorResponse {
            error_number: n,
            error_message: error_message.unwrap_or_default(),
            error_info,
        };
        return Err(AppleError::from_body(body, retry_after));
    }
    if status == StatusCode::TOO_MANY_REQUESTS {
        return Err(AppleError::RateLimited { retry_after });
    }
    if status == StatusCode::SERVICE_UNAVAILABLE {
        return Err(AppleError::Unavailable {
            number: 0,
            retry_after,
        });
    }
    if status.is_server_error() {
        return Err(AppleError::ServerError {
            number: 0,
            retry_after,
        });
    }
    if !status.is_success() {
        return Err(AppleError::Http {
            status: status.as_u16(),
        });
    }
    serde_json::from_slice(&bytes).map_err(|e| AppleError::Decode(format!("{what}: {e}")))
}

fn json<T: Serialize>(v: &T) -> Vec<u8> {
    serde_json::to_vec(v).expect("request types serialise")
}

fn query_string<Q: Serialize>(q: &Q, page: i32) -> String {
    let mut s = serde_urlencoded::to_string(q).unwrap_or_default();
    if !s.is_empty() {
        s.push('&');
    }
    s.push_str(&format!("pageIndex={page}"));
    s
}

/// `Retry-After`: delay-seconds or an HTTP date.
pub fn parse_retry_after(v: &str) -> Option<Duration> {
    let v = v.trim();
    if let Ok(secs) = v.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = chrono::DateTime::parse_from_rfc2822(v).ok()?;
    let secs = (at.with_timezone(&chrono::Utc) - chrono::Utc::now())
        .num_milliseconds()
        .max(0) as u64;
    Some(Duration::from_millis(secs))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_in_seconds_or_as_a_date() {
        assert_eq!(parse_retry_after("120"), Some(Duration::from_secs(120)));
        let soon = (chrono::Utc::now() + chrono::Duration::seconds(30)).to_rfc2822();
        let d = parse_retry_after(&soon).unwrap();
        assert!(
            d > Duration::from_secs(25) && d <= Duration::from_secs(30),
            "{d:?}"
        );
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"),
            Some(Duration::ZERO),
            "a past date means now"
        );
        assert_eq!(parse_retry_after("soon"), None);
    }

    #[test]
    fn bearer_debug_hides_the_token() {
        assert_eq!(format!("{:?}", Bearer::new("c2VjcmV0")), "Bearer(…)");
    }
}
