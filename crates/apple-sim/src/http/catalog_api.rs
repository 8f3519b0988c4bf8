//! "Apps and Books (Metadata) for Organizations" (spec §18.2), as `api.ent.apple.com/v1` and
//! `api.edu.apple.com/v1` answer it: `GET /v1/catalog/{storefront}/stoken-authenticated-apps`.
//! Each request needs a developer token whose ES256 signature verifies with the public key the
//! simulator was given, and a location's content token as the `itvt` cookie. An app is answered
//! in the storefronts that sell it; custom apps and apps no longer sold only to their owners.

use allot_apple_wire::catalog::{
    CatalogAttributes, CatalogError, CatalogErrors, CatalogResource, CatalogResponse,
    LatestVersionInfo, PlatformAttributes,
};
use allot_apple_wire::metadata::ArtworkImage;
use axum::extract::{Path, RawQuery, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use base64::Engine;
use p256::ecdsa::signature::Verifier;
use p256::ecdsa::{Signature, VerifyingKey};
use p256::pkcs8::DecodePublicKey;

use super::apple::Query;
use crate::faults::FaultKind;
use crate::settings::Settings;
use crate::Shared;

/// Apple accepts developer tokens that live at most six months.
const MAX_TOKEN_LIFETIME_SECS: i64 = 15_777_000;

/// The P-256 public key of a PEM ("BEGIN PUBLIC KEY"), or why not.
pub fn public_key(pem: &str) -> Result<VerifyingKey, String> {
    VerifyingKey::from_public_key_pem(pem.trim()).map_err(|_| {
        "settings.metadataApiPublicKey must be a P-256 public key in PEM (\"-----BEGIN PUBLIC KEY-----\")"
            .to_owned()
    })
}

fn error(status: StatusCode, code: &str, title: &str, detail: String) -> Response {
    let body = CatalogErrors {
        errors: vec![CatalogError {
            status: status.as_u16().to_string(),
            code: code.to_owned(),
            title: title.to_owned(),
            detail: Some(detail),
        }],
    };
    (status, Json(body)).into_response()
}

fn unauthorized(detail: impl Into<String>) -> Response {
    error(
        StatusCode::UNAUTHORIZED,
        "40100",
        "Unauthenticated",
        detail.into(),
    )
}

/// Checks `Authorization: Bearer <JWT>` as Apple would: ES256, the key's `kid`, the team's `iss`,
/// a live `exp`, a lifetime of at most six months, and the signature.
fn check_developer_token(s: &Settings, headers: &HeaderMap, now: i64) -> Result<(), String> {
    let pem = s.metadata_api_public_key.as_deref().ok_or(
        "no developer key is registered with this simulator (settings.metadataApiPublicKey)",
    )?;
    let key = public_key(pem)?;
    let jwt = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .ok_or("no developer token (Authorization: Bearer <JWT>)")?
        .trim();
    let parts: Vec<&str> = jwt.split('.').collect();
    let [head, claims, sig] = parts[..] else {
        return Err("the developer token is not a JWT".into());
    };
    let dec = |p: &str| -> Result<Vec<u8>, String> {
        base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(p)
            .map_err(|_| "the developer token is not base64url".to_owned())
    };
    let json = |p: &str| -> Result<serde_json::Value, String> {
        serde_json::from_slice(&dec(p)?).map_err(|_| "the developer token is not JSON".to_owned())
    };
    let (head_json, claims_json) = (json(head)?, json(claims)?);
    if head_json["alg"] != "ES256" {
        return Err("the developer token must be signed ES256".into());
    }
    if let Some(kid) = &s.metadata_api_key_id {
        if head_json["kid"].as_str() != Some(kid) {
            return Err("the developer token's kid is not a registered key".into());
        }
    }
    if let Some(team) = &s.metadata_api_team_id {
        if claims_json["iss"].as_str() != Some(team) {
            return Err("the developer token's iss is not the key's team".into());
        }
    }
    let iat = claims_json["iat"]
        .as_i64()
        .ok_or("the developer token has no iat")?;
    let exp = claims_json["exp"]
        .as_i64()
        .ok_or("the developer token has no exp")?;
    if exp <= now {
        return Err("the developer token has expired".into());
    }
    if iat > now + 300 || exp - iat > MAX_TOKEN_LIFETIME_SECS {
        return Err("the developer token's iat or lifetime is not accepted".into());
    }
    let sig = Signature::from_slice(&dec(sig)?)
        .map_err(|_| "the developer token's signature is malformed".to_owned())?;
    key.verify(format!("{head}.{claims}").as_bytes(), &sig)
        .map_err(|_| "the developer token's signature does not verify".to_owned())
}

pub async fn apps(
    State(shared): State<Shared>,
    Path(storefront): Path<String>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Response {
    let Ok(q) = Query::parse(raw.as_deref()) else {
        return error(
            StatusCode::BAD_REQUEST,
            "40000",
            "Invalid Parameter Value",
            "malformed query string".into(),
        );
    };
    let storefront = storefront.to_lowercase();
    let mut w = shared.lock().expect("world lock");
    w.count_request("catalog");
    let now = w.now().timestamp();
    if let Some(fault) = w.faults.take_request_fault("catalog") {
        w.stats.faults_served += 1;
        let (status, retry) = match fault {
            FaultKind::RateLimited { retry_after } => {
                (StatusCode::TOO_MANY_REQUESTS, retry_after.unwrap_or(1))
            }
            FaultKind::Unavailable { retry_after } => {
                (StatusCode::SERVICE_UNAVAILABLE, retry_after.unwrap_or(1))
            }
            _ => (StatusCode::INTERNAL_SERVER_ERROR, 0),
        };
        let mut r = error(
            status,
            &format!("{}00", status.as_u16()),
            "Injected fault",
            "a fault injected through the control API".into(),
        );
        if retry > 0 {
            r.headers_mut().insert(
                header::RETRY_AFTER,
                retry.to_string().parse().expect("a number"),
            );
        }
        return r;
    }
    if let Err(why) = check_developer_token(&w.settings, &headers, now) {
        return unauthorized(why);
    }
    let Some(owner) = super::metadata::cookie_location(&w, &headers) else {
        return unauthorized("the itvt cookie is missing or is not a valid content token");
    };
    let ids: Vec<&str> = q
        .str("ids")
        .unwrap_or("")
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect();
    if ids.is_empty() || ids.len() > 100 {
        return error(
            StatusCode::BAD_REQUEST,
            "40005",
            "Invalid Parameter Value",
            "ids must name 1 to 100 apps".into(),
        );
    }
    let latest = q
        .str("extend[apps]")
        .is_some_and(|v| v.split(',').any(|e| e == "latestVersionInfo"));
    let base = w.base_url.clone();
    let owned = |adam_id: &str| {
        w.locations[owner]
            .assets
            .iter()
            .any(|a| a.adam_id == adam_id)
    };
    let data = ids
        .iter()
        .filter_map(|id| w.catalog.get(*id))
        .filter(|m| m.kind != "ebook")
        .filter(|m| m.public() || owned(&m.adam_id))
        .filter(|m| m.storefronts.is_empty() || m.storefronts.contains(&storefront))
        .map(|m| {
            let platform = if m.kind == "macSoftware" {
                "osx"
            } else {
                "ios"
            };
            let attrs = PlatformAttributes {
                bundle_id: m.bundle_id.clone(),
                artwork: Some(ArtworkImage {
                    url: format!("{base}/artwork/{}/{{w}}x{{h}}bb.{{f}}", m.adam_id),
                    width: 1024,
                    height: 1024,
                }),
                external_version_id: crate::catalog::external_id(&m.version),
                minimum_os_version: Some(m.minimum_os_version.clone()),
                latest_version_info: latest.then(|| LatestVersionInfo {
                    version_display: m.version.clone(),
                }),
            };
            CatalogResource {
                id: m.adam_id.clone(),
                kind: "apps".into(),
                href: Some(format!("/v1/catalog/{storefront}/apps/{}", m.adam_id)),
                attributes: CatalogAttributes {
                    name: m.name.clone(),
                    artist_name: Some(m.artist.clone()),
                    device_families: m.device_families.clone(),
                    is_vpp_device_based_licensing_enabled: m.device_based_licensing,
                    is_b2b_custom_app: m.b2b_custom,
                    url: Some(format!("{base}/{storefront}/app/id{}", m.adam_id)),
                    genre_names: vec![m.genre.clone()],
                    platform_attributes: [(platform.to_owned(), attrs)].into(),
                },
            }
        })
        .collect();
    Json(CatalogResponse { data }).into_response()
}
