//! The content metadata lookup (spec §18.1), its artwork, and the invitation page a user opens
//! from `urls.invitationEmail` to join the program.

use allot_apple_wire::metadata::{
    Artwork, ArtworkImage, Language, LookupItem, LookupMeta, LookupResponse, Offer, OfferVersion,
    Storefront,
};
use axum::extract::{Path, RawQuery, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::{Form, Json};
use serde::Deserialize;

use super::apple::Query;
use crate::catalog::AppMeta;
use crate::settings::LookupForm;
use crate::Shared;

/// The location whose content token the request carries as the `itvt` cookie, if valid.
pub(crate) fn cookie_location(w: &crate::world::World, headers: &HeaderMap) -> Option<usize> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|pair| pair.trim().strip_prefix("itvt="))
        .and_then(|token| w.authenticate(token.trim()).ok())
}

/// `?id=<adamId>[,<adamId>…]&platform=…&cc=…&l=…`: known ids are answered, unknown ones are
/// absent (Apple answers an empty `results` for no access or unknown ids). Custom apps and apps no
/// longer for sale are answered only with the `itvt` cookie of a location that owns them.
pub async fn lookup(
    State(shared): State<Shared>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Response {
    let Ok(q) = Query::parse(raw.as_deref()) else {
        return (StatusCode::BAD_REQUEST, "malformed query string").into_response();
    };
    let cc = q.str("cc").unwrap_or("us").to_lowercase();
    let language = q.str("l").unwrap_or("en-us").to_lowercase();
    let mut w = shared.lock().expect("world lock");
    w.count_request("lookup");
    let owner = cookie_location(&w, &headers);
    let form = w.settings.lookup_form;
    let base = w.base_url.clone();
    let visible = |m: &AppMeta| {
        m.public()
            || owner.is_some_and(|l| w.locations[l].assets.iter().any(|a| a.adam_id == m.adam_id))
    };
    let results = q
        .str("id")
        .unwrap_or("")
        .split(',')
        .filter_map(|id| w.catalog.get(id.trim()))
        .filter(|m| visible(m))
        .map(|m| {
            let template = format!("{base}/artwork/{}/{{w}}x{{h}}bb.{{f}}", m.adam_id);
            let artwork = match form {
                LookupForm::Template => Artwork::Template(ArtworkImage {
                    url: template,
                    width: 1024,
                    height: 1024,
                }),
                LookupForm::Sizes => Artwork::Sizes(
                    [60, 100, 512]
                        .map(|size| ArtworkImage {
                            url: template
                                .replace("{w}", &size.to_string())
                                .replace("{h}", &size.to_string())
                                .replace("{f}", "png"),
                            width: size,
                            height: size,
                        })
                        .to_vec(),
                ),
            };
            let item = LookupItem {
                id: m.adam_id.clone(),
                name: m.name.clone(),
                name_raw: Some(m.name.clone()),
                bundle_id: m.bundle_id.clone(),
                artist_name: Some(m.artist.clone()),
                artwork: Some(artwork),
                device_families: m.device_families.clone(),
                kind: Some(m.kind.clone()),
                minimum_os_version: Some(m.minimum_os_version.clone()),
                is_vpp_device_based_licensing_enabled: m.device_based_licensing,
                is_b2b_custom_app: m.b2b_custom,
                offers: vec![Offer {
                    version: OfferVersion {
                        display: m.version.clone(),
                        external_id: crate::catalog::external_id(&m.version),
                    },
                }],
                genre_names: vec![m.genre.clone()],
                url: Some(format!("{base}/app/id{}", m.adam_id)),
                watch_bundle_id: None,
            };
            (m.adam_id.clone(), item)
        })
        .collect();
    let res = LookupResponse {
        results,
        version: if form == LookupForm::Sizes { 1 } else { 2 },
        is_authenticated: false,
        meta: Some(LookupMeta {
            storefront: Storefront {
                id: "143441".into(),
                cc: cc.clone(),
            },
            language: Language { tag: language },
        }),
    };
    let mut json = serde_json::to_value(res).expect("lookup answers serialize");
    if form == LookupForm::Sizes {
        // This example's ids are numbers.
        for item in json["results"]
            .as_object_mut()
            .into_iter()
            .flat_map(|r| r.values_mut())
        {
            if let Some(n) = item["id"].as_str().and_then(|id| id.parse::<i64>().ok()) {
                item["id"] = n.into();
            }
        }
    }
    Json(json).into_response()
}

/// `/artwork/<adamId>/<w>x<h>bb.png`.
pub async fn artwork(
    State(shared): State<Shared>,
    Path((adam_id, file)): Path<(String, String)>,
) -> Response {
    if !shared
        .lock()
        .expect("world lock")
        .catalog
        .contains_key(&adam_id)
    {
        return (StatusCode::NOT_FOUND, "no such artwork").into_response();
    }
    let size = file
        .strip_suffix("bb.png")
        .and_then(|d| d.split_once('x'))
        .and_then(|(w, h)| Some((w.parse::<u32>().ok()?, h.parse::<u32>().ok()?)))
        .map(|(w, h)| w.max(h).clamp(16, 1024));
    match size {
        Some(s) => (
            [
                (header::CONTENT_TYPE, "image/png"),
                (header::CACHE_CONTROL, "max-age=86400"),
            ],
            crate::icon::png(&adam_id, s),
        )
            .into_response(),
        None => (
            StatusCode::NOT_FOUND,
            "artwork names look like 512x512bb.png",
        )
            .into_response(),
    }
}

fn find_invite(w: &crate::world::World, code: &str) -> Option<(usize, String, String, String)> {
    w.locations.iter().enumerate().find_map(|(i, loc)| {
        loc.users
            .records()
            .iter()
            .find(|u| u.is_active() && u.apple_account.is_none() && u.invite_code == code)
            .map(|u| {
                (
                    i,
                    u.client_user_id.clone(),
                    loc.org_name.clone(),
                    loc.name.clone(),
                )
            })
    })
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The page behind an invitation URL, with a button to join.
pub async fn invite_page(State(shared): State<Shared>, RawQuery(raw): RawQuery) -> Response {
    let code = Query::parse(raw.as_deref())
        .ok()
        .and_then(|q| q.str("inviteCode").map(str::to_owned))
        .unwrap_or_default();
    let w = shared.lock().expect("world lock");
    match find_invite(&w, &code) {
        Some((_, _, org, location)) => Html(format!(
            "<!doctype html><title>Join {org}</title><h1>Join {org}'s volume purchase program</h1>\
             <p>Location: {location}. Joining lets {org} assign apps and books to your Apple Account.</p>\
             <form method=post><input type=hidden name=inviteCode value=\"{code}\">\
             <label>Apple Account <input name=appleAccount type=email></label> <button>Join</button></form>",
            org = escape(&org),
            location = escape(&location),
            code = escape(&code)
        ))
        .into_response(),
        None => (StatusCode::NOT_FOUND, Html("<!doctype html><p>This invitation is not valid or was already used.</p>")).into_response(),
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct JoinForm {
    invite_code: String,
    apple_account: Option<String>,
}

/// Accepting: the user becomes Associated and USER_ASSOCIATED goes to the MDM.
pub async fn invite_accept(State(shared): State<Shared>, Form(form): Form<JoinForm>) -> Response {
    let mut w = shared.lock().expect("world lock");
    let Some((loc, cuid, org, _)) = find_invite(&w, &form.invite_code) else {
        return (
            StatusCode::NOT_FOUND,
            Html(
                "<!doctype html><p>This invitation is not valid or was already used.</p>"
                    .to_owned(),
            ),
        )
            .into_response();
    };
    let account = form.apple_account.filter(|a| !a.trim().is_empty());
    match crate::control_ops::accept_invitation(&mut w, loc, &cuid, account.as_deref()) {
        Ok(()) => Html(format!(
            "<!doctype html><p>You have joined {}'s program.</p>",
            escape(&org)
        ))
        .into_response(),
        Err(e) => (
            StatusCode::CONFLICT,
            Html(format!("<!doctype html><p>{}</p>", escape(&e))),
        )
            .into_response(),
    }
}
