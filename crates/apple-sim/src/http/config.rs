//! `GET /service/config` and `GET|POST /client/config` (spec §4, §5).

use allot_apple_wire::{
    codes, limit, notification_type, url_key, ClientConfigRequest, ClientConfigResponse,
    ResponseErrorCode, ServiceConfigResponse,
};
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Uri};
use axum::Json;

use super::apple::{common, endpoint_of, injected_fault, parse_body, AppleError, AppleResult, Ctx};
use crate::model::NotificationConfig;
use crate::Shared;

/// Paths of this simulator that stand in for Apple's other hosts.
pub const LOOKUP_PATH: &str = "/WebObjects/MZStorePlatform.woa/wa/lookup";
pub const INVITE_PATH: &str = "/WebObjects/MZFinance.woa/wa/associateVPPUserWithITSAccount";

/// Needs no credentials (a Bearer header is accepted and ignored).
pub async fn service_config(
    State(shared): State<Shared>,
    uri: Uri,
    _h: HeaderMap,
) -> AppleResult<Json<ServiceConfigResponse>> {
    let mut w = shared.lock().expect("world lock");
    let endpoint = endpoint_of(uri.path());
    w.count_request(&endpoint);
    injected_fault(&mut w, &endpoint)?;
    let base = w.base_url.clone();
    let v2 = |p: &str| format!("{base}/mdm/v2/{p}");
    let urls = [
        (
            url_key::INVITATION_EMAIL,
            format!("{base}{INVITE_PATH}?inviteCode=%25inviteCode%25&mt=8"),
        ),
        (url_key::CLIENT_CONFIG, v2("client/config")),
        (url_key::CREATE_USERS, v2("users/create")),
        (url_key::GET_ASSIGNMENTS, v2("assignments")),
        (url_key::REVOKE_ASSETS, v2("assets/revoke")),
        (
            url_key::CONTENT_METADATA_LOOKUP,
            format!("{base}{LOOKUP_PATH}"),
        ),
        (url_key::GET_USERS, v2("users")),
        (url_key::EVENT_STATUS, v2("status")),
        (url_key::ASSOCIATE_ASSETS, v2("assets/associate")),
        (url_key::DISASSOCIATE_ASSETS, v2("assets/disassociate")),
        (url_key::UPDATE_USERS, v2("users/update")),
        (url_key::GET_ASSETS, v2("assets")),
        (url_key::RETIRE_USERS, v2("users/retire")),
    ];
    Ok(Json(ServiceConfigResponse {
        error_codes: codes::CATALOGUE
            .iter()
            .map(|(n, _, m)| ResponseErrorCode {
                error_message: (*m).to_owned(),
                error_number: *n,
            })
            .collect(),
        limits: w.settings.limits.clone(),
        notification_types: [
            notification_type::ASSET_MANAGEMENT,
            notification_type::ASSET_COUNT,
            notification_type::USER_MANAGEMENT,
            notification_type::USER_ASSOCIATED,
        ]
        .map(String::from)
        .to_vec(),
        urls: urls.into_iter().map(|(k, v)| (k.to_owned(), v)).collect(),
    }))
}

fn client_config(w: &crate::world::World, ctx: &Ctx) -> ClientConfigResponse {
    let loc = &w.locations[ctx.location];
    let c = common(w, ctx);
    ClientConfigResponse {
        country_iso2a_code: Some(loc.country.clone()),
        default_platform: Some(loc.program.default_platform().to_owned()),
        location_name: Some(loc.name.clone()),
        mdm_info: c.mdm_info,
        notification_auth_token: loc.notification.as_ref().map(|n| n.auth_token.clone()),
        notification_url: loc.notification.as_ref().map(|n| n.url.clone()),
        subscribed_notification_types: loc.notification_types.clone(),
        token_expiration_date: c.token_expiration_date,
        u_id: c.u_id,
        website_url: Some(loc.program.website_url().to_owned()),
    }
}

pub async fn get_client_config(
    State(shared): State<Shared>,
    ctx: Ctx,
) -> Json<ClientConfigResponse> {
    Json(client_config(&shared.lock().expect("world lock"), &ctx))
}

/// Validates, sends the synchronous test notification when notifications are configured, and
/// only then stores. Fields absent from the request keep their stored values.
pub async fn post_client_config(
    State(shared): State<Shared>,
    ctx: Ctx,
    body: Bytes,
) -> AppleResult<Json<ClientConfigResponse>> {
    let req: ClientConfigRequest = parse_body(&body)?;
    let (uid, allow_http, client) = {
        let w = shared.lock().expect("world lock");
        validate(&w.settings, &req)?;
        (
            w.locations[ctx.location].uid.clone(),
            w.settings.allow_http_loopback_notifications,
            w.notify_client.clone(),
        )
    };
    if let (Some(url), Some(token)) = (&req.notification_url, &req.notification_auth_token) {
        check_url(url, allow_http)?;
        let client =
            client.unwrap_or_else(|| crate::notify::http_client(&allot_trust::Trust::system()));
        if !crate::notify::send_test(&client, url, token, &uid).await {
            return Err(AppleError::new(codes::NOTIFICATION_URL_UNREACHABLE));
        }
    }
    let mut w = shared.lock().expect("world lock");
    let loc = &mut w.locations[ctx.location];
    if let Some(info) = req.mdm_info {
        loc.mdm_info = Some(info);
    }
    if let (Some(url), Some(auth_token)) = (req.notification_url, req.notification_auth_token) {
        loc.notification = Some(NotificationConfig { url, auth_token });
    }
    if let Some(types) = req.notification_types {
        let mut types: Vec<String> = types
            .into_iter()
            .filter(|t| t != notification_type::TEST_NOTIFICATION)
            .collect();
        types.sort();
        types.dedup();
        loc.notification_types = types;
    }
    Ok(Json(client_config(&w, &ctx)))
}

fn validate(settings: &crate::settings::Settings, req: &ClientConfigRequest) -> AppleResult<()> {
    if let Some(info) = &req.mdm_info {
        let (Some(id), Some(name), Some(metadata)) = (&info.id, &info.name, &info.metadata) else {
            return Err(AppleError::new(codes::MDM_INFO_INCOMPLETE));
        };
        if id.chars().count() > settings.limit(limit::MAX_MDM_ID_LENGTH, 100) {
            return Err(AppleError::new(codes::MDM_ID_TOO_LONG));
        }
        if name.chars().count() > settings.limit(limit::MAX_MDM_NAME_LENGTH, 100) {
            return Err(AppleError::new(codes::MDM_NAME_TOO_LONG));
        }
        if metadata.chars().count() > settings.limit(limit::MAX_MDM_METADATA_LENGTH, 255) {
            return Err(AppleError::new(codes::MDM_METADATA_TOO_LONG));
        }
    }
    match (&req.notification_url, &req.notification_auth_token) {
        (Some(_), None) | (None, Some(_)) => {
            return Err(AppleError::new(codes::NOTIFICATION_URL_AND_TOKEN))
        }
        (Some(url), Some(token)) => {
            let max = settings.limit(limit::MAX_NOTIFICATION_LENGTH, 512);
            if url.chars().count() > max || token.chars().count() > max {
                return Err(AppleError::new(codes::NOTIFICATION_TOO_LONG));
            }
        }
        (None, None) => {}
    }
    if let Some(types) = &req.notification_types {
        if let Some(bad) = types
            .iter()
            .find(|t| !notification_type::SUBSCRIBABLE.contains(&t.as_str()))
        {
            return Err(AppleError::msg(
                codes::INVALID_ARGUMENT,
                format!("Invalid argument: unknown notification type {bad}"),
            ));
        }
    }
    Ok(())
}

/// HTTPS with only host and path; plain HTTP only on loopback when allowed (a local receiver).
fn check_url(url: &str, allow_http_loopback: bool) -> AppleResult<()> {
    let bad = || AppleError::new(codes::NOTIFICATION_URL_INVALID);
    let parsed = reqwest::Url::parse(url).map_err(|_| bad())?;
    let host = parsed.host_str().ok_or_else(bad)?;
    let loopback = host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
        || host
            .trim_matches(['[', ']'])
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    match parsed.scheme() {
        "https" => Ok(()),
        "http" if allow_http_loopback && loopback => Ok(()),
        _ => Err(bad()),
    }
}
