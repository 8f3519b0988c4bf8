//! The REST API under `/api/v1/`, and its OpenAPI document.

pub mod accounts;
pub mod apps;
pub mod collections;
pub mod deployments;
pub mod deployments_exec;
pub mod inventory;
pub mod keys;
pub mod program;
pub mod reports;
pub mod tokens;

use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post, put};
use axum::{Json, Router};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::AppState;

#[derive(OpenApi)]
#[openapi(
    info(title = "Allot API", description = "Apple Apps and Books license management. Authenticate with `Authorization: Bearer <API key>`."),
    paths(
        tokens::list, tokens::add, tokens::show, tokens::renew, tokens::sync, tokens::sync_status, tokens::take_over, tokens::delete, apps::list,
        inventory::add_user, inventory::list_users, inventory::remove_user, inventory::import_users,
        inventory::add_device, inventory::list_devices, inventory::import_devices,
        collections::list, collections::create, collections::show, collections::add_members, collections::remove_members, collections::delete,
        deployments::plan, deployments_exec::create, deployments_exec::list, deployments_exec::show, deployments_exec::delete,
        deployments_exec::request, program::show_user, program::resend_invitation, reports::licenses, reports::unused, reports::expiry,
        accounts::add, keys::list, keys::create, keys::revoke
    ),
    components(schemas(
        tokens::TokenView, tokens::TokenList, tokens::TokenDetail, tokens::AddTokenRequest, tokens::RenewRequest,
        tokens::SyncRequest, tokens::SyncStarted, tokens::SyncStatus, tokens::SyncRunView, tokens::SyncProgressView,
        apps::AppView, apps::AppList, crate::error::ErrorBody, crate::error::ErrorDetail,
        inventory::UserView, inventory::UserList, inventory::NewUserRequest, inventory::DeviceView, inventory::DeviceList,
        inventory::NewDeviceRequest, inventory::ImportReport, inventory::ImportError,
        collections::CollectionView, collections::CollectionList, collections::NewCollectionRequest, collections::CollectionDetail,
        collections::MembersRequest, collections::MembersChanged, deployments::PlanBody,
        deployments_exec::DeploymentView, deployments_exec::DeploymentList, deployments_exec::DeploymentDetail, deployments_exec::TargetView, deployments_exec::InstallRequest,
        program::UserDetail, program::ProgramStatus, reports::LicenseRow,
        accounts::NewAccount, accounts::AccountView, keys::ApiKeyView, keys::ApiKeyList, keys::NewApiKey, keys::NewApiKeyView, reports::UnusedRow, reports::ExpiryRow
    )),
    modifiers(&ApiKeyScheme),
    tags((name = "tokens", description = "Content tokens and their syncs"), (name = "apps", description = "License information for store apps"),
        (name = "inventory", description = "Users, devices and collections"),
        (name = "deployments", description = "Apps and books onto collections"),
        (name = "reports", description = "Exports"),
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

async fn openapi() -> Json<utoipa::openapi::OpenApi> {
    Json(ApiDoc::openapi())
}

/// CSV imports may be large (half a million devices is about 30 MB).
const IMPORT_LIMIT: usize = 64 * 1024 * 1024;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/openapi.json", get(openapi))
        .route("/api/v1/tokens", get(tokens::list).post(tokens::add))
        .route(
            "/api/v1/tokens/{token}",
            get(tokens::show).delete(tokens::delete),
        )
        .route("/api/v1/tokens/{token}/file", put(tokens::renew))
        .route(
            "/api/v1/tokens/{token}/sync",
            post(tokens::sync).get(tokens::sync_status),
        )
        .route("/api/v1/tokens/{token}/takeover", post(tokens::take_over))
        .route("/api/v1/apps", get(apps::list))
        .route("/api/v1/reports/licenses", get(reports::licenses))
        .route("/api/v1/reports/unused-licenses", get(reports::unused))
        .route("/api/v1/reports/token-expiry", get(reports::expiry))
        .route("/api/v1/console-accounts", post(accounts::add))
        .route("/api/v1/api-keys", get(keys::list).post(keys::create))
        .route("/api/v1/api-keys/{id}", axum::routing::delete(keys::revoke))
        .route(
            "/api/v1/users",
            get(inventory::list_users).post(inventory::add_user),
        )
        .route(
            "/api/v1/users/import",
            post(inventory::import_users).layer(DefaultBodyLimit::max(IMPORT_LIMIT)),
        )
        .route(
            "/api/v1/users/{user}",
            get(program::show_user).delete(inventory::remove_user),
        )
        .route(
            "/api/v1/users/{user}/invitation",
            post(program::resend_invitation),
        )
        .route(
            "/api/v1/devices",
            get(inventory::list_devices).post(inventory::add_device),
        )
        .route(
            "/api/v1/devices/import",
            post(inventory::import_devices).layer(DefaultBodyLimit::max(IMPORT_LIMIT)),
        )
        .route("/api/v1/deployments/plan", post(deployments::plan))
        .route(
            "/api/v1/deployments",
            get(deployments_exec::list).post(deployments_exec::create),
        )
        .route(
            "/api/v1/deployments/{id}",
            get(deployments_exec::show).delete(deployments_exec::delete),
        )
        .route(
            "/api/v1/deployments/{id}/requests",
            post(deployments_exec::request),
        )
        .route(
            "/api/v1/collections",
            get(collections::list).post(collections::create),
        )
        .route(
            "/api/v1/collections/{collection}",
            get(collections::show).delete(collections::delete),
        )
        .route(
            "/api/v1/collections/{collection}/members",
            post(collections::add_members).delete(collections::remove_members),
        )
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
