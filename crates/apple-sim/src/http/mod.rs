//! The simulator's HTTP surface: Apple's v2 endpoints under `/mdm/v2/`, the metadata lookup and
//! invitation pages that stand in for Apple's other hosts, and the control API under `/_sim/`.

pub mod apple;
pub(crate) mod catalog_api;
mod config;
mod control;
mod inventory;
mod manage;
mod metadata;
mod subscriptions;

use allot_apple_wire::codes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{middleware, Router};

use apple::{method_not_allowed, AppleError, IsAppleError};
pub use config::{INVITE_PATH, LOOKUP_PATH};

use crate::Shared;

pub fn router(shared: Shared) -> Router {
    let v2 = |p: &str| format!("/mdm/v2/{p}");
    Router::new()
        .route(
            &v2("service/config"),
            get(config::service_config).fallback(method_not_allowed),
        )
        .route(
            &v2("client/config"),
            get(config::get_client_config)
                .post(config::post_client_config)
                .fallback(method_not_allowed),
        )
        .route(
            &v2("assets"),
            get(inventory::assets).fallback(method_not_allowed),
        )
        .route(
            &v2("assignments"),
            get(inventory::assignments).fallback(method_not_allowed),
        )
        .route(
            &v2("users"),
            get(inventory::users).fallback(method_not_allowed),
        )
        .route(
            &v2("assets/associate"),
            post(manage::associate).fallback(method_not_allowed),
        )
        .route(
            &v2("assets/disassociate"),
            post(manage::disassociate).fallback(method_not_allowed),
        )
        .route(
            &v2("assets/revoke"),
            post(manage::revoke).fallback(method_not_allowed),
        )
        .route(
            &v2("users/create"),
            post(manage::create_users).fallback(method_not_allowed),
        )
        .route(
            &v2("users/update"),
            post(manage::update_users).fallback(method_not_allowed),
        )
        .route(
            &v2("users/retire"),
            post(manage::retire_users).fallback(method_not_allowed),
        )
        .route(
            &v2("status"),
            get(manage::status).fallback(method_not_allowed),
        )
        .route(
            &v2("subscriptions"),
            get(subscriptions::list).fallback(method_not_allowed),
        )
        .route(
            &v2("subscriptions/enable"),
            post(subscriptions::enable).fallback(method_not_allowed),
        )
        .route(
            &v2("subscriptions/disable"),
            post(subscriptions::disable).fallback(method_not_allowed),
        )
        .route(
            &v2("subscriptions/assignments"),
            get(subscriptions::assignments).fallback(method_not_allowed),
        )
        .route(
            &v2("subscriptions/associate"),
            post(subscriptions::associate).fallback(method_not_allowed),
        )
        .route(
            &v2("subscriptions/disassociate"),
            post(subscriptions::disassociate).fallback(method_not_allowed),
        )
        .route(
            &v2("subscriptions/admins"),
            get(subscriptions::admins).fallback(method_not_allowed),
        )
        .route(
            &v2("subscriptions/admins/add"),
            post(subscriptions::add_admins).fallback(method_not_allowed),
        )
        .route(
            &v2("subscriptions/admins/remove"),
            post(subscriptions::remove_admins).fallback(method_not_allowed),
        )
        .route(LOOKUP_PATH, get(metadata::lookup))
        .route(
            "/v1/catalog/{storefront}/stoken-authenticated-apps",
            get(catalog_api::apps),
        )
        .route("/artwork/{adam_id}/{file}", get(metadata::artwork))
        .route(
            INVITE_PATH,
            get(metadata::invite_page).post(metadata::invite_accept),
        )
        .merge(control::router())
        .fallback(not_found)
        .layer(middleware::map_response_with_state(
            shared.clone(),
            errors_with_http200,
        ))
        .with_state(shared)
}

async fn not_found() -> Response {
    let mut r = AppleError::msg(codes::INVALID_ARGUMENT, "No such endpoint.").into_response();
    *r.status_mut() = StatusCode::NOT_FOUND;
    r
}

/// The "HTTP 200 with an error body" mode Apple has been seen in.
async fn errors_with_http200(State(shared): State<Shared>, mut res: Response) -> Response {
    if res.extensions().get::<IsAppleError>().is_some()
        && shared
            .lock()
            .expect("world lock")
            .settings
            .errors_with_http200
    {
        *res.status_mut() = StatusCode::OK;
    }
    res
}
