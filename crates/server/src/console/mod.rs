//! The web console: server-rendered pages (askama templates in `templates/`, a small stylesheet
//! and script in `assets/`, nothing from the internet). People sign in with console accounts of
//! a role (`roles`: a viewer sees and changes nothing, an operator deploys and manages inventory,
//! an admin does everything) and an optional scope of tokens (`access`); every page and action
//! is checked against the role table as the signed-in `Viewer` is extracted, and every action
//! checks the form's CSRF token.

mod access;
mod account;
mod alerts;
mod apps;
mod audit;
mod auth;
mod collections;
mod connector;
mod deployments;
mod format;
mod ledger;
mod overview;
mod people;
mod person;
mod reports;
mod subscriptions;
mod throttle;
mod tokens;

use askama::Template;
use axum::extract::DefaultBodyLimit;
use axum::http::{header, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::Router;

use crate::error::ApiError;
use crate::AppState;

pub use auth::ensure_admin_account;
pub(crate) use auth::Viewer;
pub use throttle::SignInThrottle;

/// What every page shows around its content.
pub(crate) struct Chrome {
    pub user: String,
    /// The account may do everything (tokens, accounts, keys, alert endpoints, the audit log).
    pub admin: bool,
    /// The account may deploy, sync and manage inventory (operators and admins).
    pub operator: bool,
    /// The role's name, shown beside the account's.
    pub role: &'static str,
    pub csrf: String,
    /// The navigation entry to highlight.
    pub section: &'static str,
    /// A message about what just happened.
    pub notice: Option<String>,
}

/// A page that could not be shown: its status and a message a person can act on.
pub(crate) struct PageError {
    pub status: StatusCode,
    pub message: String,
}

impl PageError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
        }
    }

    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, message)
    }
}

impl From<ApiError> for PageError {
    fn from(e: ApiError) -> Self {
        Self::new(e.status, e.message)
    }
}

impl From<allot_store::StoreError> for PageError {
    fn from(e: allot_store::StoreError) -> Self {
        ApiError::from(e).into()
    }
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage {
    chrome: Chrome,
    title: String,
    message: String,
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let title = match self.status {
            StatusCode::FORBIDDEN => "Not allowed",
            StatusCode::NOT_FOUND => "Not found",
            s if s.is_server_error() => "Something went wrong",
            _ => "That did not work",
        };
        let page = ErrorPage {
            chrome: Chrome {
                user: String::new(),
                admin: false,
                operator: false,
                role: "",
                csrf: String::new(),
                section: "",
                notice: None,
            },
            title: title.into(),
            message: self.message,
        };
        (self.status, render(&page)).into_response()
    }
}

pub(crate) type PageResult = Result<Response, PageError>;

/// A template as an HTML response.
pub(crate) fn render<T: Template>(t: &T) -> Response {
    match t.render() {
        Ok(html) => Html(html).into_response(),
        Err(e) => ApiError::internal(format!("rendering a page: {e}")).into_response(),
    }
}

/// Back to a page, with a message about what happened.
pub(crate) fn back(to: &str, notice: &str) -> Response {
    let sep = if to.contains('?') { '&' } else { '?' };
    Redirect::to(&format!("{to}{sep}notice={}", format::query_escape(notice))).into_response()
}

/// Status words in templates: `{{ self.label(s) }}` gives a status identifier's label (one table,
/// `allot_domain::labels`, shared with the CLI and the CSV exports).
pub(crate) trait Labels {
    fn label<'a>(&self, id: &'a str) -> &'a str {
        allot_domain::labels::label(id)
    }
}

/// Every token's name by id, for pages that name the token of each row.
pub(crate) async fn token_names(
    state: &crate::AppState,
) -> Result<std::collections::HashMap<i64, String>, allot_store::StoreError> {
    Ok(state
        .store
        .token_labels()
        .await?
        .into_iter()
        .map(|t| (t.id, t.name))
        .collect())
}

/// A submitted form whose fields may repeat (checkboxes), read from its urlencoded body.
pub(crate) struct Fields(Vec<(String, String)>);

impl Fields {
    pub fn parse(body: &[u8]) -> Self {
        Self(
            form_urlencoded::parse(body)
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect(),
        )
    }

    /// The first value of a field, trimmed ("" when absent).
    pub fn get(&self, name: &str) -> &str {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.trim())
            .unwrap_or("")
    }

    /// Every non-empty value of a field, in order.
    pub fn all(&self, name: &str) -> Vec<String> {
        self.0
            .iter()
            .filter(|(k, v)| k == name && !v.trim().is_empty())
            .map(|(_, v)| v.trim().to_owned())
            .collect()
    }
}

/// Text a query may carry back to the page (notices), cut to a sane length.
#[derive(Debug, Default, serde::Deserialize)]
pub(crate) struct Notice {
    pub notice: Option<String>,
}

impl Notice {
    pub fn take(self) -> Option<String> {
        self.notice
            .map(|n| n.chars().take(300).collect::<String>())
            .filter(|n| !n.trim().is_empty())
    }
}

async fn stylesheet() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "max-age=3600"),
        ],
        include_str!("../../assets/console.css"),
    )
}

async fn script() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "max-age=3600"),
        ],
        include_str!("../../assets/console.js"),
    )
}

/// Token files are a few kilobytes; uploads are limited well above that.
const UPLOAD_LIMIT: usize = 256 * 1024;

/// Builds the console's router and, from the same list, `ROUTES` (every path with its methods),
/// which the role test walks so that no page or action escapes the role table.
macro_rules! console_routes {
    ($($path:literal => [$($method:ident $handler:path),+];)*) => {
        /// Every console route and its methods, as the router serves them.
        pub const ROUTES: &[(&str, &[&str])] = &[$(($path, &[$(stringify!($method)),+])),*];

        pub fn router() -> Router<AppState> {
            Router::new()
                $(.route($path, axum::routing::MethodRouter::new()$(.$method($handler))+))*
                .layer(DefaultBodyLimit::max(UPLOAD_LIMIT))
                .layer(axum::middleware::from_fn(account::with_time_zone))
        }
    };
}

console_routes! {
    "/" => [get overview::page];
    "/console/assets/console.css" => [get stylesheet];
    "/console/assets/console.js" => [get script];
    "/login" => [get auth::login_page, post auth::login];
    "/logout" => [post auth::logout];
    "/tokens" => [get tokens::page, post tokens::add];
    "/tokens/rows" => [get tokens::rows];
    "/tokens/names" => [get tokens::names];
    "/tokens/{id}/sync" => [post tokens::sync];
    "/tokens/{id}/renew" => [post tokens::renew];
    "/tokens/{id}/takeover" => [post tokens::take_over];
    "/tokens/{id}/delete" => [post tokens::delete];
    "/apps" => [get apps::page];
    "/apps/{token}/{adam}" => [get apps::app_page];
    "/apps/{token}/{adam}/threshold" => [post apps::threshold];
    "/deployments" => [get deployments::page, post deployments::create];
    "/deployments/plan" => [post deployments::plan];
    "/deployments/{id}" => [get deployments::detail];
    "/deployments/{id}/targets" => [get deployments::targets];
    "/deployments/{id}/delete" => [post deployments::delete];
    "/deployments/{id}/retry" => [post deployments::retry];
    "/users/invitations" => [post people::invite_all];
    "/users" => [get people::users];
    "/users/{id}" => [get person::page];
    "/users/{id}/invite" => [post people::invite];
    "/devices" => [get people::devices];
    "/devices/links" => [post people::set_device_links];
    "/devices/{serial}" => [get person::device_page];
    "/collections" => [get collections::page, post collections::create];
    "/collections/add-devices" => [post collections::add_devices];
    "/collections/{id}" => [get collections::detail];
    "/collections/{id}/members" => [post collections::members];
    "/collections/{id}/rule" => [post collections::rule];
    "/collections/{id}/delete" => [post collections::delete];
    "/reports" => [get reports::page];
    "/ledger" => [get ledger::page];
    "/ledger/clean" => [post ledger::clean];
    "/reports/licenses.{format}" => [get reports::licenses];
    "/subscriptions" => [get subscriptions::page];
    "/subscriptions/enable" => [post subscriptions::enable];
    "/subscriptions/forecast.csv" => [get subscriptions::forecast_csv];
    "/subscriptions/{adam_id}/{action}" => [post subscriptions::seats];
    "/subscriptions/{adam_id}/intend" => [post subscriptions::intend];
    "/subscriptions/intents/{id}/end" => [post subscriptions::end_intent];
    "/account" => [get account::page, post account::save];
    "/alerts" => [get alerts::page];
    "/audit" => [get audit::page];
    "/access" => [get access::page];
    "/access/accounts" => [post access::add_account];
    "/access/accounts/{id}" => [post access::account];
    "/access/keys" => [post access::add_key];
    "/access/keys/{id}" => [post access::key];
    "/access/keys/{id}/revoke" => [post access::revoke_key];
    "/audit.csv" => [get audit::csv];
    "/alerts/webhooks" => [post alerts::add];
    "/alerts/webhooks/{id}" => [get alerts::endpoint];
    "/alerts/webhooks/{id}/test" => [post alerts::test];
    "/alerts/webhooks/{id}/delete" => [post alerts::delete];
}
