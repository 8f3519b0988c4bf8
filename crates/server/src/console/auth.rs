//! Signing in to the console. Sessions live in the database (a random cookie, stored as its
//! SHA-256), last 12 hours, and carry a CSRF token every form sends back; the cookie is HttpOnly
//! and SameSite=Strict. The first admin account is made on first run.

use askama::Template;
use axum::extract::{FromRequestParts, Query, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{AppendHeaders, IntoResponse, Redirect, Response};
use axum::Form;
use serde::Deserialize;

use super::throttle::Attempt;
use super::{render, Chrome, PageError, PageResult};
use crate::roles::Role;
use crate::AppState;

const COOKIE: &str = "allot_session";
/// Set on a successful sign-in: this browser has signed in as that name before (see `throttle`).
const KNOWN_COOKIE: &str = "allot_known";
const KNOWN_MAX_AGE_S: i64 = 90 * 86_400;
const SESSION_MS: i64 = 12 * 3600 * 1000;

/// The signed-in person looking at a page.
pub(crate) struct Viewer {
    pub account_id: i64,
    pub username: String,
    pub role: Role,
    pub csrf: String,
    /// The time zone the account chose (`None`: the browser's).
    pub time_zone: Option<String>,
    /// The account's stored scope (`access`); `None`: every token.
    pub scope: Option<String>,
}

impl Viewer {
    pub fn chrome(&self, section: &'static str, notice: Option<String>) -> Chrome {
        Chrome {
            user: self.username.clone(),
            admin: self.role == Role::Admin,
            operator: self.role >= Role::Operator,
            role: self.role.as_str(),
            csrf: self.csrf.clone(),
            section,
            notice,
        }
    }

    /// An action: the role table (`roles`) let this account's role through when the page was
    /// extracted; never a viewer's, and only from this session's own forms.
    pub fn may_change(&self, csrf: &str) -> Result<(), PageError> {
        if self.role == Role::Viewer {
            return Err(PageError::forbidden(format!(
                "{} is a viewer account: it can look at everything and change nothing",
                self.username
            )));
        }
        self.form_is_ours(csrf)
    }

    /// A form that only reads (a plan): any account, with the session's CSRF token — as a
    /// read-only API key may ask for a plan too.
    pub fn form_is_ours(&self, csrf: &str) -> Result<(), PageError> {
        if !allot_secrets::same_secret(csrf.as_bytes(), self.csrf.as_bytes()) {
            return Err(PageError::forbidden(
                "this form has expired (or came from another site): reload the page and try again",
            ));
        }
        Ok(())
    }
}

pub(crate) fn cookie_value(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_owned())
}

fn session_cookie(headers: &HeaderMap) -> Option<String> {
    cookie_value(headers, COOKIE)
}

/// Not signed in: to the sign-in page, then back.
pub(crate) struct SignIn(String);

impl IntoResponse for SignIn {
    fn into_response(self) -> Response {
        Redirect::to(&format!(
            "/login?next={}",
            super::format::query_escape(&self.0)
        ))
        .into_response()
    }
}

impl FromRequestParts<AppState> for Viewer {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        let here = parts
            .uri
            .path_and_query()
            .map(|p| p.as_str().to_owned())
            .unwrap_or_else(|| "/".into());
        let Some(cookie) = session_cookie(&parts.headers) else {
            return Err(SignIn(here).into_response());
        };
        let found = state
            .store
            .session(&allot_secrets::hash_api_key(&cookie), allot_sync::now_ms())
            .await
            .map_err(|e| PageError::from(e).into_response())?;
        match found {
            Some((account, csrf)) => {
                let role = Role::stored(&account.role);
                let route = parts
                    .extensions
                    .get::<axum::extract::MatchedPath>()
                    .map(|m| m.as_str().to_owned())
                    .unwrap_or_default();
                let need = crate::roles::required(&parts.method, &route);
                if role < need {
                    return Err(PageError::forbidden(format!(
                        "{} is a {} account: it {}; this needs an {} account",
                        account.username,
                        role.as_str(),
                        role.describe(),
                        need.as_str()
                    ))
                    .into_response());
                }
                if account.scope.is_some() && crate::roles::needs_every_location(&route) {
                    return Err(PageError::forbidden(format!(
                        "{} works with some tokens only; this page is for administrators of every location",
                        account.username
                    ))
                    .into_response());
                }
                let scope = crate::access::resolve(state, account.scope.as_deref())
                    .await
                    .map_err(|e| PageError::from(e).into_response())?;
                crate::access::set(scope);
                crate::audit::set_actor(format!("console account {}", account.username));
                Ok(Viewer {
                    account_id: account.id,
                    username: account.username,
                    role,
                    csrf,
                    time_zone: account.time_zone,
                    scope: account.scope,
                })
            }
            None => Err(SignIn(here).into_response()),
        }
    }
}

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage {
    error: Option<String>,
    next: String,
}

#[derive(Deserialize)]
pub(crate) struct NextQuery {
    next: Option<String>,
}

/// Only paths of this site: never an open redirect.
fn local_path(next: Option<&str>) -> String {
    match next {
        Some(n) if n.starts_with('/') && !n.starts_with("//") && !n.contains('\\') => n.to_owned(),
        _ => "/tokens".into(),
    }
}

pub(crate) async fn login_page(Query(q): Query<NextQuery>) -> Response {
    render(&LoginPage {
        error: None,
        next: local_path(q.next.as_deref()),
    })
}

#[derive(Deserialize)]
pub(crate) struct LoginForm {
    username: String,
    password: String,
    next: Option<String>,
}

/// A hash no password matches, checked when the name is unknown so that both answers take one
/// password check: the time does not tell which names exist.
fn decoy_hash() -> &'static str {
    static DECOY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DECOY.get_or_init(|| allot_secrets::hash_password(&allot_secrets::random_token("")))
}

pub(crate) async fn login(
    State(state): State<AppState>,
    client: crate::ClientAddress,
    headers: HeaderMap,
    Form(f): Form<LoginForm>,
) -> PageResult {
    let next = local_path(f.next.as_deref());
    let username = f.username.trim();
    let known = cookie_value(&headers, KNOWN_COOKIE);
    let attempt = Attempt {
        username,
        address: &client.0,
        known: known.as_deref(),
    };
    if let Some(wait) = state.sign_ins.wait(&attempt) {
        let page = LoginPage {
            error: Some(format!(
                "too many failed sign-ins: try again in {} minutes",
                wait.as_secs() / 60 + 1
            )),
            next,
        };
        return Ok((StatusCode::TOO_MANY_REQUESTS, render(&page)).into_response());
    }
    let found = state.store.account_by_username(username).await?;
    let hash = found.as_ref().map_or(decoy_hash(), |(_, h)| h.as_str());
    let matches = allot_secrets::verify_password(&f.password, hash);
    let account = found.filter(|_| matches);
    let Some((account, _)) = account else {
        state.sign_ins.failed(&attempt);
        tracing::info!(username = %username, address = %client.0, "console sign-in refused");
        let page = LoginPage {
            error: Some("that user name and password do not match an account".into()),
            next,
        };
        return Ok((StatusCode::UNAUTHORIZED, render(&page)).into_response());
    };
    state.sign_ins.succeeded(&attempt);
    if account.disabled_at.is_some() {
        tracing::info!(username = %account.username, "console sign-in of a disabled account refused");
        let page = LoginPage {
            error: Some("this account is disabled: ask an administrator to enable it again".into()),
            next,
        };
        return Ok((StatusCode::FORBIDDEN, render(&page)).into_response());
    }
    let cookie = allot_secrets::random_token("");
    let csrf = allot_secrets::random_token("");
    let now = allot_sync::now_ms();
    state
        .store
        .insert_session(
            &allot_secrets::hash_api_key(&cookie),
            account.id,
            &csrf,
            now + SESSION_MS,
        )
        .await?;
    state.store.record_sign_in(account.id, now).await?;
    tracing::info!(username = %account.username, "console sign-in");
    let secure = if state
        .engine
        .public_url()
        .is_some_and(|u| u.starts_with("https://"))
    {
        "; Secure"
    } else {
        ""
    };
    let known = state.sign_ins.known_mark(&account.username);
    // The account's own time zone, when it chose one (else the browser's stays).
    let zone = account
        .time_zone
        .as_deref()
        .filter(|z| super::format::time_zone(z).is_some())
        .map(super::account::zone_cookie);
    Ok((
        AppendHeaders([
            (
                header::SET_COOKIE,
                format!(
                    "{COOKIE}={cookie}; Path=/; HttpOnly; SameSite=Strict; Max-Age={}{secure}",
                    SESSION_MS / 1000
                ),
            ),
            (
                header::SET_COOKIE,
                format!(
                    "{KNOWN_COOKIE}={known}; Path=/login; HttpOnly; SameSite=Strict; Max-Age={}{secure}",
                    KNOWN_MAX_AGE_S
                ),
            ),
        ]),
        AppendHeaders(zone.map(|z| (header::SET_COOKIE, z))),
        Redirect::to(&next),
    )
        .into_response())
}

#[derive(Deserialize)]
pub(crate) struct CsrfForm {
    pub csrf: String,
}

pub(crate) async fn logout(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(f): Form<CsrfForm>,
) -> PageResult {
    if let Some(cookie) = session_cookie(&headers) {
        let hash = allot_secrets::hash_api_key(&cookie);
        // Only this session's own form signs it out.
        if let Some((_, csrf)) = state.store.session(&hash, allot_sync::now_ms()).await? {
            if allot_secrets::same_secret(csrf.as_bytes(), f.csrf.as_bytes()) {
                state
                    .store
                    .delete_session(&hash, allot_sync::now_ms())
                    .await?;
            }
        }
    }
    Ok((
        [(
            header::SET_COOKIE,
            format!("{COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0"),
        )],
        Redirect::to("/login"),
    )
        .into_response())
}

/// On first run, an `admin` console account: with the configured password, or a random one
/// returned to be shown once.
pub async fn ensure_admin_account(
    store: &allot_store::Store,
    configured: Option<&str>,
) -> anyhow::Result<Option<String>> {
    if store.count_accounts().await? > 0 {
        return Ok(None);
    }
    let (password, generated) = match configured {
        Some(p) => (p.to_owned(), false),
        None => (allot_secrets::random_token(""), true),
    };
    store
        .insert_account(
            "admin",
            &allot_secrets::hash_password(&password),
            "admin",
            None,
            allot_sync::now_ms(),
        )
        .await?;
    Ok(generated.then_some(password))
}
