//! License information for store apps: the list (search, filters, sort, 50 rows a page however
//! many there are) and an app's page (counts, a usage bar, the chart of licenses used over time,
//! every assignment with its install status, and deploying from there).

#[allow(unused_imports)]
use super::Labels as _;
use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use serde::Deserialize;

use super::format::{self, Pager};
use super::{render, Chrome, Notice, PageError, PageResult, Viewer};
use crate::api::apps::{app_filter, AppQuery};
use crate::AppState;

const PER_PAGE: i64 = 50;

#[derive(Debug, Default, Deserialize)]
pub(crate) struct ListQuery {
    #[serde(default)]
    search: String,
    #[serde(default)]
    token: String,
    #[serde(default)]
    category: String,
    #[serde(default, rename = "type")]
    kind: String,
    #[serde(default)]
    platform: String,
    #[serde(default)]
    sort: String,
    #[serde(default)]
    low: Option<String>,
    page: Option<i64>,
    notice: Option<String>,
}

/// The filters as the form shows them.
pub(crate) struct Filters {
    search: String,
    token: String,
    category: String,
    kind: String,
    platform: String,
    sort: String,
    low: bool,
}

pub(crate) struct AppLine {
    name: String,
    adam_id: String,
    /// The pricing, where it tells this row from another of the same app (or is not Apple's
    /// standard `STDQ`).
    pricing: Option<String>,
    bundle_id: Option<String>,
    icon: Option<String>,
    kind: String,
    platforms: String,
    token: String,
    program: String,
    total: String,
    used: i64,
    available: String,
    percent: i64,
    low: bool,
    link: String,
    /// When Apple last confirmed the counts (the token's last sync or notification), in words.
    as_of: String,
}

/// When Apple last told Allot the token's counts: its last sync (full or changes) or its last
/// notification, whichever is later.
async fn counts_confirmed(
    state: &AppState,
    token: &allot_store::TokenRow,
) -> Result<Option<i64>, PageError> {
    let notified = state.store.last_notification(token.id).await?;
    Ok(
        [token.last_full_sync_at, token.last_delta_sync_at, notified]
            .into_iter()
            .flatten()
            .max(),
    )
}

/// "as of 5 min ago" (or "not confirmed with Apple yet").
pub(crate) fn as_of(confirmed: Option<i64>, now: i64) -> String {
    match confirmed {
        Some(at) => format!("as of {}", format::ago(at, now)),
        None => "not confirmed with Apple yet".into(),
    }
}

#[derive(Template)]
#[template(path = "apps.html")]
struct AppsPage {
    chrome: Chrome,
    f: Filters,
    rows: Vec<AppLine>,
    pager: Pager,
    categories: Vec<String>,
    platforms: Vec<String>,
    sorts: Vec<(String, String)>,
}

pub(crate) async fn page(
    State(state): State<AppState>,
    viewer: Viewer,
    Query(q): Query<ListQuery>,
) -> PageResult {
    let low = q.low.as_deref().is_some_and(|v| v == "true" || v == "on");
    let page = format::page_number(q.page);
    let api_query = AppQuery {
        token: Some(q.token.clone()),
        search: Some(q.search.clone()),
        kind: Some(q.kind.clone()),
        platform: Some(q.platform.clone()),
        category: Some(q.category.clone()),
        low: Some(low),
        sort: Some(q.sort.clone()),
        limit: Some(PER_PAGE),
        offset: Some((page - 1) * PER_PAGE),
    };
    let filter = app_filter(&state, &api_query).await?;
    let (rows, total) = state.store.app_licenses(&filter).await?;
    // The filter's choices: the categories (a few distinct lists); token names are suggested
    // as the field is used (`/tokens/names`), not written into every page by the thousand.
    let categories = state
        .store
        .token_categories(crate::access::token_ids().as_deref())
        .await?;
    let low_s = if low { "true" } else { "" };
    let link = |n: i64| {
        let page = n.to_string();
        format!(
            "/apps{}",
            format::query(&[
                ("search", &q.search),
                ("token", &q.token),
                ("category", &q.category),
                ("type", &q.kind),
                ("platform", &q.platform),
                ("sort", &q.sort),
                ("low", low_s),
                ("page", &page),
            ])
        )
    };
    let now = allot_sync::now_ms();
    // Two rows of one app on one token differ by pricing alone: say so on both.
    let shared: std::collections::HashSet<(i64, String)> = rows
        .iter()
        .filter(|a| {
            rows.iter()
                .filter(|b| b.token_id == a.token_id && b.adam_id == a.adam_id)
                .count()
                > 1
        })
        .map(|a| (a.token_id, a.adam_id.clone()))
        .collect();
    let lines = rows
        .into_iter()
        .map(|a| {
            let percent = format::percent(a.assigned, a.total);
            AppLine {
                as_of: as_of(a.confirmed_at, now),
                pricing: (a.pricing != "STDQ" || shared.contains(&(a.token_id, a.adam_id.clone())))
                    .then(|| format!("{} pricing", a.pricing)),
                link: format::app_link(a.token_id, &a.adam_id, &a.pricing),
                name: a.name.unwrap_or_else(|| format!("adamId {}", a.adam_id)),
                bundle_id: a.bundle_id,
                icon: a.icon_url,
                kind: if a.product_type == "Book" {
                    "book"
                } else {
                    "app"
                }
                .into(),
                platforms: a.platforms.join(", "),
                token: a.token_name,
                program: a.program,
                total: if a.unlimited {
                    "unlimited".into()
                } else {
                    a.total.to_string()
                },
                used: a.assigned,
                available: if a.unlimited {
                    "—".into()
                } else {
                    a.available.to_string()
                },
                percent: if a.unlimited { 0 } else { percent },
                low: !a.unlimited && a.available * 10 <= a.total,
                adam_id: a.adam_id,
            }
        })
        .collect();
    Ok(render(&AppsPage {
        chrome: viewer.chrome(
            "apps",
            Notice {
                notice: q.notice.clone(),
            }
            .take(),
        ),
        pager: Pager::new(page, PER_PAGE, total, link),
        rows: lines,
        categories,
        platforms: ["iOS", "macOS", "tvOS", "watchOS", "visionOS"]
            .map(String::from)
            .to_vec(),
        sorts: [
            ("name", "name"),
            ("token", "token"),
            ("total", "most licenses"),
            ("used", "most used"),
            ("available", "fewest free"),
        ]
        .map(|(v, l)| (v.to_owned(), l.to_owned()))
        .to_vec(),
        f: Filters {
            search: q.search,
            token: q.token,
            category: q.category,
            kind: q.kind,
            platform: q.platform,
            sort: if q.sort.is_empty() {
                "name".into()
            } else {
                q.sort
            },
            low,
        },
    }))
}

pub(crate) struct CollectionOption {
    id: i64,
    label: String,
}

pub(crate) struct AssignmentLine {
    kind: String,
    holder: String,
    /// The holder's page, when Allot knows the person or device.
    link: Option<String>,
    status: String,
    detail: String,
}

#[derive(Template)]
#[template(path = "app.html")]
struct AppPage {
    chrome: Chrome,
    name: String,
    icon: Option<String>,
    kind: String,
    adam_id: String,
    pricing: String,
    bundle_id: Option<String>,
    platforms: String,
    /// What Apple's metadata says of the current version and the devices it needs, with its age.
    store_facts: Option<String>,
    token: String,
    token_id: i64,
    device_assignable: bool,
    total: String,
    used: i64,
    available: String,
    percent: i64,
    low: bool,
    chart: String,
    /// When Apple last confirmed these counts, in words.
    as_of: String,
    collections: Vec<CollectionOption>,
    /// Tokens holding this app (this one first), for the deploy form's order.
    token_choices: Vec<(i64, String)>,
    status: String,
    statuses: Vec<String>,
    assignments: Vec<AssignmentLine>,
    pager: Pager,
    /// `licenses.low` at or below this many free licenses, and whether it is the app's own.
    threshold: i64,
    own_threshold: bool,
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct AppPageQuery {
    pricing: Option<String>,
    #[serde(default)]
    status: String,
    page: Option<i64>,
    notice: Option<String>,
}

pub(crate) async fn app_page(
    State(state): State<AppState>,
    viewer: Viewer,
    Path((token_id, adam)): Path<(i64, String)>,
    Query(q): Query<AppPageQuery>,
) -> PageResult {
    let pricing = q.pricing.clone().unwrap_or_else(|| "STDQ".into());
    let not_found = || {
        PageError::new(
            StatusCode::NOT_FOUND,
            format!("token {token_id} holds no app or book {adam} ({pricing})"),
        )
    };
    let token = state
        .store
        .token(token_id)
        .await?
        .filter(|t| crate::access::sees(t.id))
        .ok_or_else(not_found)?;
    let holdings = crate::access::filter(
        state.store.asset_holdings(&adam, &pricing).await?,
        |(id, _)| *id,
    );
    let asset = holdings
        .iter()
        .find(|(id, _)| *id == token_id)
        .map(|(_, a)| a.clone())
        .ok_or_else(not_found)?;
    // The deploy form's token order: this token first, the others on offer after it.
    let held_by: Vec<i64> = holdings.iter().map(|(id, _)| *id).collect();
    let names: std::collections::HashMap<i64, String> = state
        .store
        .token_labels_of(&held_by)
        .await?
        .into_iter()
        .map(|t| (t.id, t.name))
        .collect();
    let mut token_choices: Vec<(i64, String)> = holdings
        .iter()
        .map(|(id, a)| {
            let name = names
                .get(id)
                .cloned()
                .unwrap_or_else(|| format!("token {id}"));
            (*id, format!("{name} ({} free)", a.available.max(0)))
        })
        .collect();
    token_choices.sort_by_key(|(id, _)| *id != token_id);
    let meta = state.store.metadata(&adam).await?;
    let page = format::page_number(q.page);
    let status = (!q.status.is_empty()).then_some(q.status.as_str());
    let (held, total) = state
        .store
        .asset_assignments(
            token_id,
            &adam,
            &pricing,
            status,
            PER_PAGE,
            (page - 1) * PER_PAGE,
        )
        .await?;
    let history = state
        .store
        .license_history(token_id, &adam, &pricing)
        .await?;
    let collections = state
        .store
        .collections()
        .await?
        .into_iter()
        .map(|c| CollectionOption {
            id: c.id,
            label: format!("{} ({} {})", c.name, c.members, c.kind),
        })
        .collect();
    let link = |n: i64| {
        let page = n.to_string();
        format!(
            "/apps/{token_id}/{}{}",
            format::query_escape(&adam),
            format::query(&[
                ("pricing", &pricing),
                ("status", &q.status),
                ("page", &page)
            ])
        )
    };
    let mut statuses: Vec<String> = allot_deploy::status::ALL
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
    statuses.push("unknown".into());
    let confirmed = counts_confirmed(&state, &token).await?;
    let own_threshold = state.store.alert_threshold(&adam, &pricing).await?;
    Ok(render(&AppPage {
        threshold: own_threshold.unwrap_or(state.alerts.low_threshold),
        own_threshold: own_threshold.is_some(),
        as_of: as_of(confirmed, allot_sync::now_ms()),
        token_choices,
        chrome: viewer.chrome(
            "apps",
            Notice {
                notice: q.notice.clone(),
            }
            .take(),
        ),
        name: meta
            .as_ref()
            .map(|m| m.name.clone())
            .unwrap_or_else(|| format!("adamId {adam}")),
        icon: meta.as_ref().and_then(|m| m.icon_url.clone()),
        bundle_id: meta.as_ref().and_then(|m| m.bundle_id.clone()),
        store_facts: meta.as_ref().map(store_facts),
        kind: if asset.product_type == "Book" {
            "Book"
        } else {
            "App"
        }
        .into(),
        platforms: asset.platforms.join(", "),
        token: token.name,
        token_id,
        device_assignable: asset.device_assignable,
        total: if asset.unlimited {
            "unlimited".into()
        } else {
            asset.total.to_string()
        },
        used: asset.assigned,
        available: if asset.unlimited {
            "—".into()
        } else {
            asset.available.to_string()
        },
        percent: if asset.unlimited {
            0
        } else {
            format::percent(asset.assigned, asset.total)
        },
        low: !asset.unlimited && asset.available * 10 <= asset.total,
        chart: chart(&history),
        collections,
        statuses,
        assignments: held
            .into_iter()
            .map(|a| AssignmentLine {
                link: match (a.kind.as_str(), a.holder_id) {
                    ("user", Some(id)) => Some(format!("/users/{id}")),
                    ("device", Some(_)) => {
                        Some(format!("/devices/{}", format::query_escape(&a.holder)))
                    }
                    _ => None,
                },
                kind: a.kind,
                // People by name and e-mail, with Apple's clientUserId after for support.
                holder: match a.holder_name {
                    Some(name) if !name.trim().is_empty() => format!("{name} ({})", a.holder),
                    _ => a.holder,
                },
                status: a.status.unwrap_or_else(|| "unknown".into()),
                detail: a.detail.unwrap_or_default(),
            })
            .collect(),
        pager: Pager::new(page, PER_PAGE, total, link),
        status: q.status.clone(),
        adam_id: adam,
        pricing,
    }))
}

/// Licenses used (and owned) over time as an inline SVG: steps between recorded changes, up to
/// now. Empty with fewer than one record.
/// The licenses used (and owned) over time as an inline SVG with axes: counts on the left
/// (0, half, top), dates below (the first record, the middle, now, in the page's time zone), a
/// step line per series; each change is a step (from syncs and from Apple's notifications).
fn chart(history: &[(i64, i64, i64)]) -> String {
    chart_at(history, allot_sync::now_ms())
}

fn chart_at(history: &[(i64, i64, i64)], now: i64) -> String {
    let Some(&(first, _, _)) = history.first() else {
        return String::new();
    };
    let now = now.max(history.last().map(|h| h.0).unwrap_or(first) + 1);
    let top = history
        .iter()
        .map(|h| h.1.max(h.2))
        .max()
        .unwrap_or(1)
        .max(1);
    // Plot area: left margin for the counts, bottom margin for the dates.
    let (w, h, left, right, top_m, bottom) = (800.0, 190.0, 44.0, 12.0, 22.0, 30.0);
    let x = |t: i64| left + (t - first) as f64 / (now - first).max(1) as f64 * (w - left - right);
    let y = |v: i64| h - bottom - v as f64 / top as f64 * (h - bottom - top_m);
    let steps = |pick: fn(&(i64, i64, i64)) -> i64| {
        let mut pts = Vec::new();
        for (i, r) in history.iter().enumerate() {
            if i > 0 {
                pts.push(format!("{:.1},{:.1}", x(r.0), y(pick(&history[i - 1]))));
            }
            pts.push(format!("{:.1},{:.1}", x(r.0), y(pick(r))));
        }
        let last = history.last().expect("not empty");
        pts.push(format!("{:.1},{:.1}", x(now), y(pick(last))));
        pts.join(" ")
    };
    let mut axes = String::new();
    // Counts: gridlines and labels at 0, half and the top.
    let mut ticks = vec![0, top / 2, top];
    ticks.dedup();
    for v in ticks {
        axes.push_str(&format!(
            "<line x1=\"{left}\" x2=\"{:.1}\" y1=\"{y:.1}\" y2=\"{y:.1}\" stroke=\"#e3e7ee\"/>\
<text x=\"{:.1}\" y=\"{:.1}\" font-size=\"11\" fill=\"#5d6878\" text-anchor=\"end\" class=\"y-tick\">{v}</text>",
            w - right,
            left - 6.0,
            y(v) + 4.0,
            y = y(v),
        ));
    }
    // Dates: the first record, the middle, now.
    let mid = first + (now - first) / 2;
    for (t, anchor) in [(first, "start"), (mid, "middle"), (now, "end")] {
        axes.push_str(&format!(
            "<line x1=\"{x:.1}\" x2=\"{x:.1}\" y1=\"{:.1}\" y2=\"{:.1}\" stroke=\"#c5ccd8\"/>\
<text x=\"{x:.1}\" y=\"{:.1}\" font-size=\"11\" fill=\"#5d6878\" text-anchor=\"{anchor}\" class=\"x-tick\">{}</text>",
            h - bottom,
            h - bottom + 4.0,
            h - 8.0,
            if t == now { "now".to_owned() } else { format::time(t) },
            x = x(t),
        ));
    }
    format!(
        "<svg class=\"chart\" id=\"usage-chart\" viewBox=\"0 0 {w} {h}\" role=\"img\" aria-label=\"licenses used and owned over time\">\
{axes}<line x1=\"{left}\" x2=\"{left}\" y1=\"{top_m}\" y2=\"{:.1}\" stroke=\"#c5ccd8\"/>\
<polyline fill=\"none\" stroke=\"#c5ccd8\" stroke-dasharray=\"4 3\" stroke-width=\"1.5\" points=\"{}\"/>\
<polyline fill=\"none\" stroke=\"#2f5bd3\" stroke-width=\"2\" points=\"{}\"/>\
<text x=\"{left}\" y=\"14\" font-size=\"11\" fill=\"#5d6878\">— used · - - - owned · licenses</text></svg>",
        h - bottom,
        steps(|r| r.1),
        steps(|r| r.2),
    )
}

/// "Version 14.2 (external id 867530900) · iOS 17.0 or later · iPhone, iPad, Mac · custom app ·
/// from Apple's metadata API, us storefront · as of 2 hours ago".
fn store_facts(m: &allot_store::MetadataRow) -> String {
    let mut parts = Vec::new();
    if let Some(v) = &m.version {
        parts.push(match m.external_version_id {
            Some(id) => format!("version {v} (external id {id})"),
            None => format!("version {v}"),
        });
    }
    if let Some(os) = &m.minimum_os_version {
        let system = if m.kind.as_deref() == Some("macSoftware") {
            "macOS"
        } else {
            "iOS"
        };
        parts.push(format!("{system} {os} or later"));
    }
    if !m.platforms.is_empty() {
        parts.push(
            m.platforms
                .iter()
                .map(|f| device_family_label(f))
                .collect::<Vec<_>>()
                .join(", "),
        );
    }
    if m.custom_app {
        parts.push("custom app".into());
    }
    parts.push(match (m.source.as_str(), &m.storefront) {
        ("metadata-api", Some(s)) => format!("from Apple's metadata API, {s} storefront"),
        ("metadata-api", None) => "from Apple's metadata API".into(),
        _ => "from Apple's content metadata lookup".into(),
    });
    parts.push(format!(
        "checked with Apple {}",
        format::ago(m.fetched_at, allot_sync::now_ms())
    ));
    let mut text = parts.join(" · ");
    if let Some(first) = text.get(0..1) {
        text = first.to_uppercase() + &text[1..];
    }
    text
}

/// Apple's `deviceFamilies` as people name them.
fn device_family_label(family: &str) -> String {
    match family {
        "iphone" => "iPhone".into(),
        "ipad" => "iPad".into(),
        "ipod" => "iPod touch".into(),
        "mac" => "Mac".into(),
        "tvos" => "Apple TV".into(),
        "watch" => "Apple Watch".into(),
        "vision" | "realityDevice" => "Apple Vision Pro".into(),
        other => other.to_owned(),
    }
}

impl super::Labels for AppPage {}

/// The app page's alert form: its own `licenses.low` threshold, or empty for the global one.
pub(crate) async fn threshold(
    State(state): State<AppState>,
    viewer: Viewer,
    Path((token_id, adam)): Path<(i64, String)>,
    body: axum::body::Bytes,
) -> PageResult {
    let f = super::Fields::parse(&body);
    viewer.may_change(f.get("csrf"))?;
    let pricing = match f.get("pricing") {
        "" => "STDQ",
        p => p,
    };
    let threshold = match f.get("threshold") {
        "" => None,
        n => Some(n.parse::<i64>().map_err(|_| {
            PageError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                format!("{n:?} is not a number of licenses"),
            )
        })?),
    };
    let req = crate::api::apps::ThresholdRequest {
        pricing_param: Some(pricing.to_owned()),
        threshold,
    };
    let v = crate::api::apps::set_threshold(&state, &adam, &req).await?;
    let to = format::app_link(token_id, &adam, pricing);
    Ok(super::back(
        &to,
        &if v.own {
            format!(
                "An alert is raised when {} or fewer licenses are free",
                v.threshold
            )
        } else {
            format!(
                "The global threshold applies again ({} free licenses)",
                v.threshold
            )
        },
    ))
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_chart_steps_through_each_change_with_axes() {
        // 2026-01-15 08:05 UTC, then a change an hour later, drawn two hours in.
        let t0 = 1_768_464_300_000;
        let svg = super::chart_at(&[(t0, 10, 2), (t0 + 3_600_000, 10, 5)], t0 + 7_200_000);
        assert!(svg.starts_with("<svg"));
        assert_eq!(svg.matches("<polyline").count(), 2);
        // Counts 0, 5 and 10 on the left; the first date, the middle and now below.
        for tick in [">0</text>", ">5</text>", ">10</text>"] {
            assert!(svg.contains(tick), "{tick}: {svg}");
        }
        assert!(svg.contains(">2026-01-15 08:05 UTC</text>"), "{svg}");
        assert!(svg.contains(">2026-01-15 09:05 UTC</text>"), "{svg}");
        assert!(svg.contains(">now</text>"));
        assert_eq!(super::chart(&[]), "");
    }
}
