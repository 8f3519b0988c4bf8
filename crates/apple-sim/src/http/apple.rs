//! What every Apple endpoint shares: the error answer, the authenticated request context
//! (content type → credentials → rate limit → injected faults), query parsing and paging.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use allot_apple_wire::{codes, limit, Common, ErrorResponse, PageInfo};
use axum::extract::FromRequestParts;
use axum::http::{header, request::Parts, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::de::DeserializeOwned;

use crate::faults::FaultKind;
use crate::settings::ExpirationField;
use crate::world::World;
use crate::Shared;

/// An error answered the way Apple answers: the documented status, an `ErrorResponse` body and,
/// for outages and rate limits, `Retry-After`.
#[derive(Debug)]
pub struct AppleError {
    pub body: ErrorResponse,
    pub retry_after: Option<u64>,
}

impl AppleError {
    pub fn new(number: i32) -> Self {
        Self {
            body: ErrorResponse::new(number),
            retry_after: None,
        }
    }

    pub fn msg(number: i32, message: impl Into<String>) -> Self {
        Self {
            body: ErrorResponse::with_message(number, message),
            retry_after: None,
        }
    }
}

impl From<ErrorResponse> for AppleError {
    fn from(body: ErrorResponse) -> Self {
        Self {
            body,
            retry_after: None,
        }
    }
}

/// Marks a response as an Apple error, so the "errors with HTTP 200" mode can find it.
#[derive(Clone, Copy)]
pub struct IsAppleError;

impl IntoResponse for AppleError {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(codes::http_status(self.body.error_number))
            .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut res = (status, Json(self.body)).into_response();
        if let Some(s) = self.retry_after {
            res.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(s));
        }
        res.extensions_mut().insert(IsAppleError);
        res
    }
}

pub type AppleResult<T> = Result<T, AppleError>;

/// The endpoint name of a request path (`/mdm/v2/assets/associate` → `assets/associate`).
pub fn endpoint_of(path: &str) -> String {
    path.trim_start_matches("/mdm/v2/")
        .trim_matches('/')
        .to_owned()
}

/// An authenticated request to a location.
pub struct Ctx {
    pub location: usize,
    pub endpoint: String,
    pub bearer: String,
}

impl FromRequestParts<Shared> for Ctx {
    type Rejection = AppleError;

    async fn from_request_parts(parts: &mut Parts, shared: &Shared) -> AppleResult<Self> {
        let endpoint = endpoint_of(parts.uri.path());
        if parts.method == Method::POST {
            check_json_content_type(parts)?;
        }
        let bearer = bearer_of(parts)?;
        let (location, delay) = {
            let mut w = shared.lock().expect("world lock");
            w.count_request(&endpoint);
            let location = w.authenticate(&bearer)?;
            rate_limit(&mut w, location)?;
            (location, injected_fault(&mut w, &endpoint)?)
        };
        if let Some(delay) = delay {
            tokio::time::sleep(delay).await;
        }
        Ok(Ctx {
            location,
            endpoint,
            bearer,
        })
    }
}

fn check_json_content_type(parts: &Parts) -> AppleResult<()> {
    let ok = parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("application/json"));
    if ok {
        Ok(())
    } else {
        Err(AppleError::new(codes::CONTENT_TYPE_NOT_SUPPORTED))
    }
}

/// `Authorization: Bearer <sToken>`: 9601 when absent, 9722 when not of that form.
fn bearer_of(parts: &Parts) -> AppleResult<String> {
    let Some(value) = parts.headers.get(header::AUTHORIZATION) else {
        return Err(AppleError::new(codes::LOGIN_REQUIRED));
    };
    let value = value
        .to_str()
        .map_err(|_| AppleError::new(codes::INVALID_AUTHORIZATION_HEADER))?;
    match value.split_once(' ') {
        Some((scheme, token))
            if scheme.eq_ignore_ascii_case("Bearer") && !token.trim().is_empty() =>
        {
            Ok(token.trim().to_owned())
        }
        _ => Err(AppleError::new(codes::INVALID_AUTHORIZATION_HEADER)),
    }
}

/// `maxRequestPerSecond` per location, counted in one-second windows.
fn rate_limit(w: &mut World, location: usize) -> AppleResult<()> {
    let max = w.settings.limit(limit::MAX_REQUEST_PER_SECOND, 15) as u32;
    if max == 0 {
        return Ok(());
    }
    let now = Instant::now();
    let window = w.rate_windows.entry(location).or_insert((now, 0));
    if now.duration_since(window.0) >= Duration::from_secs(1) {
        *window = (now, 0);
    }
    window.1 += 1;
    if window.1 > max {
        w.stats.rate_limited += 1;
        return Err(AppleError {
            body: ErrorResponse::new(codes::TOO_MANY_REQUESTS),
            retry_after: Some(1),
        });
    }
    Ok(())
}

/// Applies an injected fault: an error to answer, or a delay before answering normally.
pub fn injected_fault(w: &mut World, endpoint: &str) -> AppleResult<Option<Duration>> {
    let Some(kind) = w.faults.take_request_fault(endpoint) else {
        return Ok(None);
    };
    w.stats.faults_served += 1;
    let with_retry = |n: i32, s: Option<u64>| AppleError {
        body: ErrorResponse::new(n),
        retry_after: s,
    };
    match kind {
        FaultKind::Unavailable { retry_after } => Err(with_retry(
            codes::SERVICE_UNAVAILABLE,
            retry_after.or(Some(1)),
        )),
        FaultKind::RateLimited { retry_after } => Err(with_retry(
            codes::TOO_MANY_REQUESTS,
            retry_after.or(Some(1)),
        )),
        FaultKind::Internal => Err(AppleError::new(codes::INTERNAL_ERROR)),
        FaultKind::Maintenance => Err(with_retry(codes::MAINTENANCE, Some(1))),
        FaultKind::Gone => Err(AppleError::new(codes::SERVICE_GONE)),
        FaultKind::Slow { delay_ms } => Ok(Some(Duration::from_millis(delay_ms))),
        _ => Ok(None),
    }
}

/// The fields every authenticated response carries.
pub fn common(w: &World, ctx: &Ctx) -> Common {
    let loc = &w.locations[ctx.location];
    let expires = w.tokens.get(&ctx.bearer).map(|t| t.token.expires_at());
    let show = match w.settings.token_expiration_date {
        ExpirationField::Always => true,
        ExpirationField::WarningWindow => {
            expires.is_some_and(|e| e - w.now() <= chrono::Duration::days(15))
        }
    };
    Common {
        mdm_info: loc.mdm_info.clone(),
        token_expiration_date: if show {
            expires.map(allot_apple_wire::format_apple_date)
        } else {
            None
        },
        u_id: Some(loc.uid.clone()),
    }
}

/// Parses a JSON body; anything malformed is 9602 with the parser's words.
pub fn parse_body<T: DeserializeOwned>(body: &[u8]) -> AppleResult<T> {
    serde_json::from_slice(body)
        .map_err(|e| AppleError::msg(codes::INVALID_ARGUMENT, format!("Invalid argument: {e}")))
}

/// Query parameters, typed on demand (a malformed value is 9602 naming the parameter).
pub struct Query(HashMap<String, String>);

impl Query {
    pub fn parse(raw: Option<&str>) -> AppleResult<Self> {
        let pairs: Vec<(String, String)> =
            serde_urlencoded::from_str(raw.unwrap_or("")).map_err(|_| {
                AppleError::msg(
                    codes::INVALID_ARGUMENT,
                    "Invalid argument: malformed query string",
                )
            })?;
        Ok(Self(pairs.into_iter().collect()))
    }

    pub fn str(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(String::as_str)
    }

    pub fn int(&self, key: &str) -> AppleResult<Option<i64>> {
        self.str(key)
            .map(|v| {
                v.parse().map_err(|_| {
                    AppleError::msg(
                        codes::INVALID_ARGUMENT,
                        format!("Invalid argument: {key} must be an integer"),
                    )
                })
            })
            .transpose()
    }

    pub fn bool(&self, key: &str) -> AppleResult<Option<bool>> {
        self.str(key)
            .map(|v| match v {
                "true" | "1" => Ok(true),
                "false" | "0" => Ok(false),
                _ => Err(AppleError::msg(
                    codes::INVALID_ARGUMENT,
                    format!("Invalid argument: {key} must be true or false"),
                )),
            })
            .transpose()
    }
}

/// The rows of page `index` of `total` records, and the page fields. An empty result still has
/// one (empty) page 0, so a delta with no changes answers normally.
pub fn page(
    total: usize,
    size: usize,
    index: Option<i64>,
    version_id: &str,
) -> AppleResult<(std::ops::Range<usize>, PageInfo)> {
    let total_pages = total.div_ceil(size).max(1);
    let index = index.unwrap_or(0);
    if index < 0 || index as usize >= total_pages {
        return Err(AppleError::new(codes::PAGE_OUT_OF_RANGE));
    }
    let index = index as usize;
    let start = index * size;
    let end = (start + size).min(total);
    Ok((
        start..end,
        PageInfo {
            current_page_index: index as i32,
            next_page_index: (index + 1 < total_pages).then_some(index as i32 + 1),
            size: (end - start) as i32,
            total_pages: total_pages as i32,
            version_id: version_id.to_owned(),
        },
    ))
}

/// 9726 for a method an endpoint does not serve.
pub async fn method_not_allowed() -> AppleError {
    AppleError::new(codes::METHOD_NOT_SUPPORTED)
}
