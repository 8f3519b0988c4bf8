//! The REST API under `/api/v1/`, and its OpenAPI document.

pub mod apps;
pub mod tokens;

use axum::routing::{get, post, put};
use axum::{Json, Router};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::AppState;

#[derive(OpenApi)]
#[openapi(
    info(title = "Allot API", description = "Apple Apps and Books license management. Authenticate with `Authorization: Bearer <API key>`."),
    paths(tokens::list, tokens::add, tokens::show, tokens::renew, tokens::sync, tokens::sync_status, tokens::take_over, tokens::delete, apps::list),
    components(schemas(
        tokens::TokenView, tokens::TokenList, tokens::TokenDetail, tokens::AddTokenRequest, tokens::RenewRequest,
        tokens::SyncRequest, tokens::SyncStarted, tokens::SyncStatus, tokens::SyncRunView, tokens::SyncProgressView,
        apps::AppView, apps::AppList, crate::error::ErrorBody, crate::error::ErrorDetail
    )),
    modifiers(&ApiKeyScheme),
    tags((name = "tokens", description = "Content tokens and their syncs"), (name = "apps", description = "License information for store apps"))
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
}
