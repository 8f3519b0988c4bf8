//! The signed-in account's own settings: the time zone its pages show times in (the browser's
//! until one is chosen; exports stay in UTC).

use askama::Template;
use axum::body::Bytes;
use axum::extract::{Query, Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::format;
use super::{back, render, Chrome, Fields, Notice, PageError, PageResult, Viewer};
use crate::AppState;

/// The cookie the pages' time zone travels in (not HttpOnly: the script sets the browser's).
pub(crate) const ZONE_COOKIE: &str = "allot_tz";

pub(crate) fn zone_cookie(zone: &str) -> String {
    format!("{ZONE_COOKIE}={zone}; Path=/; SameSite=Strict; Max-Age=31536000")
}

/// Every console page is made in the time zone its cookie names (UTC when none or nonsense).
pub(crate) async fn with_time_zone(req: Request, next: Next) -> Response {
    let tz = super::auth::cookie_value(req.headers(), ZONE_COOKIE)
        .and_then(|z| format::time_zone(&z))
        .unwrap_or(chrono_tz::Tz::UTC);
    format::in_time_zone(tz, next.run(req)).await
}

#[derive(Template)]
#[template(path = "account.html")]
struct AccountPage {
    chrome: Chrome,
    /// The zone chosen ("" for the browser's).
    chosen: String,
    /// The zone pages use now.
    current: &'static str,
    zones: Vec<&'static str>,
    /// An example time in the current zone.
    example: String,
    /// What the account's role may do, and the tokens it works with.
    role_words: &'static str,
    scope_words: String,
}

pub(crate) async fn page(
    State(state): State<AppState>,
    viewer: Viewer,
    Query(n): Query<Notice>,
) -> PageResult {
    let scope = crate::access::view(&state, viewer.scope.as_deref()).await?;
    Ok(render(&AccountPage {
        role_words: viewer.role.describe(),
        scope_words: crate::access::words(scope.as_ref()),
        chosen: viewer.time_zone.clone().unwrap_or_default(),
        current: format::time_zone_name(),
        zones: chrono_tz::TZ_VARIANTS.iter().map(|z| z.name()).collect(),
        example: format::time(allot_sync::now_ms()),
        chrome: viewer.chrome("account", n.take()),
    }))
}

/// Saves the time zone (any account may: it changes only how its own pages read).
pub(crate) async fn save(State(state): State<AppState>, viewer: Viewer, body: Bytes) -> PageResult {
    let f = Fields::parse(&body);
    viewer.form_is_ours(f.get("csrf"))?;
    let zone = match f.get("time_zone") {
        "" => None,
        z => Some(
            format::time_zone(z)
                .ok_or_else(|| {
                    PageError::new(
                        StatusCode::UNPROCESSABLE_ENTITY,
                        format!(
                            "{z:?} is not a time zone such as Europe/Paris or America/New_York"
                        ),
                    )
                })?
                .name(),
        ),
    };
    state
        .store
        .set_account_time_zone(viewer.account_id, zone)
        .await?;
    crate::audit::detail(format!(
        "time zone: {} → {}",
        viewer.time_zone.as_deref().unwrap_or("the browser's"),
        zone.unwrap_or("the browser's")
    ));
    let (cookie, notice) = match zone {
        Some(z) => (zone_cookie(z), format!("Times now show in {z}")),
        // Forget the cookie: the script sets the browser's zone again.
        None => (
            format!("{ZONE_COOKIE}=; Path=/; SameSite=Strict; Max-Age=0"),
            "Times now show in your browser's time zone".to_owned(),
        ),
    };
    Ok(([(header::SET_COOKIE, cookie)], back("/account", &notice)).into_response())
}
