//! The REST API under `/api/v1/`, and its OpenAPI document.

pub mod accounts;
pub mod apps;
pub mod audit;
pub mod collections;
pub mod deployments;
pub mod deployments_exec;
pub mod import;
pub mod inventory;
pub mod keys;
pub mod ledger;
pub mod mdm;
pub mod program;
pub mod reports;
pub mod subscriptions;
pub mod tokens;
pub mod webhooks;

use axum::extract::DefaultBodyLimit;
use axum::routing::get;
use axum::{Json, Router};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::AppState;

#[derive(OpenApi)]
#[openapi(
    info(title = "Allot API", description = "Apple Apps and Books license management. Authenticate with `Authorization: Bearer <API key>`."),
    paths(
        tokens::list, tokens::add, tokens::show, tokens::renew, tokens::sync, tokens::sync_status, tokens::take_over, tokens::delete, apps::list, apps::metadata, apps::threshold,
        inventory::add_user, inventory::list_users, inventory::remove_user, import::import_users,
        inventory::add_device, inventory::list_devices, inventory::show_device, import::import_devices,
        collections::list, collections::create, collections::show, collections::add_members, collections::remove_members, collections::delete,
        collections::preview, collections::set_rule,
        webhooks::create, webhooks::list, webhooks::show, webhooks::delete, webhooks::deliveries, webhooks::test, webhooks::alerts, audit::list,
        deployments::plan, deployments_exec::create, deployments_exec::list, deployments_exec::show, deployments_exec::delete,
        deployments_exec::request, deployments_exec::retry, program::show_user, program::resend_invitation, program::resend_all, reports::licenses, reports::unused, reports::expiry, reports::subscriptions,
        subscriptions::list, subscriptions::enable, subscriptions::seats, subscriptions::assign, subscriptions::remove,
        subscriptions::create_intent, subscriptions::intents, subscriptions::delete_intent,
        accounts::add, accounts::list, accounts::change, keys::list, keys::create, keys::change, keys::revoke, ledger::diff, ledger::clean, ledger::actions, mdm::status
    ),
    components(schemas(
        tokens::TokenView, tokens::TokenList, tokens::TokenDetail, tokens::AddTokenRequest, tokens::RenewRequest,
        tokens::SyncRequest, tokens::SyncStarted, tokens::SyncStatus, tokens::SyncRunView, tokens::SyncProgressView,
        apps::AppView, apps::AppList, apps::AppMetadataView, apps::ThresholdRequest, apps::ThresholdView, crate::error::ErrorBody, crate::error::ErrorDetail,
        inventory::UserView, inventory::UserList, inventory::NewUserRequest, inventory::DeviceView, inventory::DeviceList,
        inventory::NewDeviceRequest, inventory::ImportReport, inventory::ImportError,
        collections::CollectionView, collections::CollectionList, collections::NewCollectionRequest, collections::CollectionDetail,
        collections::MembersRequest, collections::MembersChanged,
        collections::RulePreviewRequest, collections::RulePreview, collections::RuleMatch, collections::SetRuleRequest, collections::RuleApplied,
        allot_domain::MembershipRule,
        webhooks::WebhookView, webhooks::WebhookList, webhooks::NewWebhookRequest, webhooks::DeliveryView, webhooks::DeliveryList, webhooks::TestSent, webhooks::AlertView, webhooks::AlertList, audit::AuditView, audit::AuditList, deployments::PlanBody,
        deployments_exec::DeploymentView, deployments_exec::DeploymentList, deployments_exec::DeploymentDetail, deployments_exec::TargetView, deployments_exec::InstallRequest,
        program::UserDetail, program::ProgramStatus, program::Resent, deployments_exec::Retried, reports::LicenseRow,
        accounts::NewAccount, accounts::AccountView, accounts::AccountList, accounts::AccountChange, crate::access::ScopeView, keys::ApiKeyChange, keys::ApiKeyView, ledger::LedgerRowView, keys::ApiKeyList, keys::NewApiKey, keys::NewApiKeyView, reports::UnusedRow, reports::ExpiryRow,
        reports::SubscriptionForecastRow, subscriptions::SubscriptionView, subscriptions::SubscriptionList, subscriptions::SeatCountsView,
        subscriptions::ForecastView, subscriptions::EnableResult, subscriptions::SeatView, subscriptions::SeatList,
        subscriptions::AssignSeats, subscriptions::RemoveSeats, subscriptions::SeatRequestAccepted,
        subscriptions::NewIntent, subscriptions::IntentView, subscriptions::IntentList
    )),
    modifiers(&ApiKeyScheme, &CommonErrors),
    tags((name = "tokens", description = "Content tokens and their syncs"), (name = "apps", description = "License information for store apps"),
        (name = "inventory", description = "Users, devices and collections"),
        (name = "alerts", description = "Alerts and the webhook endpoints that receive them"),
        (name = "deployments", description = "Apps and books onto collections"),
        (name = "reports", description = "Exports"),
        (name = "subscriptions", description = "Subscription seats (Apple's auto-renewable subscriptions sold into a location)"),
        (name = "console", description = "Web console accounts and API keys"))
)]
pub struct ApiDoc;

struct ApiKeyScheme;

impl Modify for ApiKeyScheme {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "api_key",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// The errors any operation can answer, each with the one error body, added where an operation
/// does not document them itself: 400 (a query, path or character that cannot be read), 401 and
/// 403 (key missing, revoked, read-only), 404 (an id in the path or a name in the body), 413 and
/// 415 (a body too large or not JSON), 422 (values that break a rule) and 500.
struct CommonErrors;

impl Modify for CommonErrors {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::{ContentBuilder, Ref, RefOr, ResponseBuilder};
        let error = |what: &str| {
            RefOr::T(
                ResponseBuilder::new()
                    .description(what)
                    .content(
                        "application/json",
                        ContentBuilder::new()
                            .schema(Some(Ref::from_schema_name("ErrorBody")))
                            .build(),
                    )
                    .build(),
            )
        };
        for (path, item) in openapi.paths.paths.iter_mut() {
            let has_path_id = path.contains('{');
            let operations = [
                item.get.as_mut(),
                item.post.as_mut(),
                item.put.as_mut(),
                item.delete.as_mut(),
                item.patch.as_mut(),
            ];
            for op in operations {
                let Some(op) = op else { continue };
                let secured = op.security.as_ref().is_some_and(|s| !s.is_empty());
                let body = op.request_body.is_some();
                let mut add = |code: &str, what: &str| {
                    op.responses
                        .responses
                        .entry(code.to_owned())
                        .or_insert_with(|| error(what));
                };
                add(
                    "400",
                    "the request cannot be read (query string, path, JSON, a NUL character)",
                );
                if secured {
                    add("401", "no API key, an unknown one or a revoked one");
                    add(
                        "403",
                        "the API key's role does not allow this (a viewer changes nothing; tokens, accounts, keys, alert endpoints and the audit log are for admins)",
                    );
                }
                add(
                    "404",
                    if has_path_id {
                        "nothing has that id or name"
                    } else {
                        "something the request names (a collection, a token, a user) does not exist"
                    },
                );
                if body {
                    add("413", "the body is too large");
                    add("415", "the body is not of the documented content type");
                }
                add("422", "a value breaks a rule; the message says which");
                add("500", "a failure on the server (logged)");
            }
        }
    }
}

async fn openapi() -> Json<utoipa::openapi::OpenApi> {
    Json(ApiDoc::openapi())
}

/// CSV imports may be large (half a million devices is about 30 MB).
const IMPORT_LIMIT: usize = 64 * 1024 * 1024;

/// Builds the router and, from the same list, `ROUTES`: every path with its methods, which a
/// test compares with the OpenAPI document so that the two cannot drift apart.
macro_rules! api_routes {
    ($($path:literal => [$($method:ident $handler:path),+] $(limit $limit:expr)?;)*) => {
        /// Every API route and its methods, as the router serves them.
        pub const ROUTES: &[(&str, &[&str])] = &[$(($path, &[$(stringify!($method)),+])),*];

        pub fn router() -> Router<AppState> {
            Router::new()
                .route("/api/v1/openapi.json", get(openapi))
                $(.route($path, {
                    let r = axum::routing::MethodRouter::new()$(.$method($handler))+;
                    $(let r = r.layer(DefaultBodyLimit::max($limit));)?
                    r
                }))*
        }
    };
}

api_routes! {
    "/api/v1/tokens" => [get tokens::list, post tokens::add];
    "/api/v1/tokens/{token}" => [get tokens::show, delete tokens::delete];
    "/api/v1/tokens/{token}/file" => [put tokens::renew];
    "/api/v1/tokens/{token}/sync" => [post tokens::sync, get tokens::sync_status];
    "/api/v1/tokens/{token}/takeover" => [post tokens::take_over];
    "/api/v1/tokens/{token}/subscriptions" => [post subscriptions::enable];
    "/api/v1/subscriptions" => [get subscriptions::list];
    "/api/v1/subscriptions/{adam_id}/seats" => [get subscriptions::seats, post subscriptions::assign];
    "/api/v1/subscriptions/{adam_id}/seats/remove" => [post subscriptions::remove];
    "/api/v1/subscriptions/{adam_id}/intents" => [post subscriptions::create_intent];
    "/api/v1/subscriptions/intents" => [get subscriptions::intents];
    "/api/v1/subscriptions/intents/{id}" => [delete subscriptions::delete_intent];
    "/api/v1/apps" => [get apps::list];
    "/api/v1/apps/{adam_id}/metadata" => [get apps::metadata];
    "/api/v1/apps/{adam_id}/alert-threshold" => [put apps::threshold];
    "/api/v1/reports/licenses" => [get reports::licenses];
    "/api/v1/reports/unused-licenses" => [get reports::unused];
    "/api/v1/reports/token-expiry" => [get reports::expiry];
    "/api/v1/reports/subscriptions" => [get reports::subscriptions];
    "/api/v1/console-accounts" => [get accounts::list, post accounts::add];
    "/api/v1/console-accounts/{id}" => [put accounts::change];
    "/api/v1/api-keys" => [get keys::list, post keys::create];
    "/api/v1/api-keys/{id}" => [put keys::change, delete keys::revoke];
    "/api/v1/users" => [get inventory::list_users, post inventory::add_user];
    "/api/v1/users/import" => [post import::import_users] limit IMPORT_LIMIT;
    "/api/v1/users/{user}" => [get program::show_user, delete inventory::remove_user];
    "/api/v1/users/{user}/invitation" => [post program::resend_invitation];
    "/api/v1/devices" => [get inventory::list_devices, post inventory::add_device];
    "/api/v1/devices/import" => [post import::import_devices] limit IMPORT_LIMIT;
    "/api/v1/devices/{device}" => [get inventory::show_device];
    "/api/v1/deployments/plan" => [post deployments::plan];
    "/api/v1/deployments" => [get deployments_exec::list, post deployments_exec::create];
    "/api/v1/deployments/{id}" => [get deployments_exec::show, delete deployments_exec::delete];
    "/api/v1/deployments/{id}/requests" => [post deployments_exec::request];
    "/api/v1/deployments/{id}/retry" => [post deployments_exec::retry];
    "/api/v1/invitations/resend" => [post program::resend_all];
    "/api/v1/webhooks" => [get webhooks::list, post webhooks::create];
    "/api/v1/webhooks/{id}" => [get webhooks::show, delete webhooks::delete];
    "/api/v1/webhooks/{id}/deliveries" => [get webhooks::deliveries];
    "/api/v1/webhooks/{id}/test" => [post webhooks::test];
    "/api/v1/alerts" => [get webhooks::alerts];
    "/api/v1/audit" => [get audit::list];
    "/api/v1/ledger/diff" => [get ledger::diff];
    "/api/v1/ledger/clean" => [post ledger::clean];
    "/api/v1/ledger/actions" => [get ledger::actions];
    "/api/v1/mdm/status" => [get mdm::status];
    "/api/v1/collections" => [get collections::list, post collections::create];
    "/api/v1/collections/preview" => [post collections::preview];
    "/api/v1/collections/{collection}" => [get collections::show, delete collections::delete];
    "/api/v1/collections/{collection}/rule" => [put collections::set_rule];
    "/api/v1/collections/{collection}/members" => [post collections::add_members, delete collections::remove_members];
}

/// `?then=keep|revoke|uninstall`: a delete of something deployments use ends those deployments too.
#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
pub struct Then {
    /// `keep`: the deployments that use it are deleted with it, keeping the licenses they
    /// assigned; `revoke` / `uninstall`: they end first, giving back (and removing) what no
    /// deployment in force still wants, and it is deleted once they are gone (202). Without it,
    /// such a delete answers 409 naming them.
    pub then: Option<String>,
}

impl Then {
    /// None: refuse if deployments use it; Some(choice): end them that way.
    pub(crate) fn ends_deployments(
        &self,
    ) -> Result<Option<allot_domain::OnLeave>, crate::error::ApiError> {
        match self.then.as_deref() {
            None => Ok(None),
            Some(v) => crate::api::deployments::on_leave(Some(v), "then").map(Some),
        }
    }
}

/// `?then=keep|revoke|uninstall` on a deployment's delete.
#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
pub struct ThenDeployment {
    /// What happens to the licenses and apps the deployment gave: `keep` (default: they stay,
    /// and the ledger shows them as orphans), `revoke` (given back to Apple) or `uninstall`
    /// (removed from the devices, then given back). What another deployment in force still gives
    /// the same member is never taken away.
    pub then: Option<String>,
}

/// A time in milliseconds as the API writes every time: RFC 3339, UTC, to the second.
pub(crate) fn rfc3339(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        .unwrap_or_default()
}

/// `?confirm=true`, which every delete and take-over needs.
#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
pub struct Confirm {
    /// Must be `true`: the action cannot be undone.
    #[param(required = true)]
    pub confirm: Option<bool>,
}

pub(crate) fn confirmed(c: &Confirm, what: &str) -> Result<(), crate::error::ApiError> {
    if c.confirm == Some(true) {
        Ok(())
    } else {
        Err(crate::error::ApiError::bad_request(format!(
            "{what} needs ?confirm=true"
        )))
    }
}
