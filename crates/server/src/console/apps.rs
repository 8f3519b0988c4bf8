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
}

#[derive(Template)]
#[template(path = "apps.html")]
struct AppsPage {
    chrome: Chrome,
    f: Filters,
    rows: Vec<AppLine>,
    pager: Pager,
    token_names: Vec<String>,
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
    let tokens = state.store.tokens().await?;
    let mut categories: Vec<String> = tokens
        .iter()
        .flat_map(|t| t.categories.iter().cloned())
        .collect();
    categories.sort_by_key(|c| c.to_lowercase());
    categories.dedup_by(|a, b| a.eq_ignore_ascii_case(b));
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
        token_names: tokens.into_iter().map(|t| t.name).collect(),
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
    collections: Vec<CollectionOption>,
    status: String,
    statuses: Vec<String>,
    assignments: Vec<AssignmentLine>,
    pager: Pager,
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
    let token = state.store.token(token_id).await?.ok_or_else(not_found)?;
    let asset = state
        .store
        .asset_holdings(&adam, &pricing)
        .await?
        .into_iter()
        .find(|(id, _)| *id == token_id)
        .map(|(_, a)| a)
        .ok_or_else(not_found)?;
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
    Ok(render(&AppPage {
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
fn chart(history: &[(i64, i64, i64)]) -> String {
    let Some(&(first, _, _)) = history.first() else {
        return String::new();
    };
    let now = allot_sync::now_ms().max(history.last().map(|h| h.0).unwrap_or(first) + 1);
    let top = history
        .iter()
        .map(|h| h.1.max(h.2))
        .max()
        .unwrap_or(1)
        .max(1);
    let (w, h, pad) = (800.0, 160.0, 24.0);
    let x = |t: i64| pad + (t - first) as f64 / (now - first).max(1) as f64 * (w - 2.0 * pad);
    let y = |v: i64| h - pad / 2.0 - v as f64 / top as f64 * (h - pad * 1.5);
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
    format!(
        "<svg class=\"chart\" id=\"usage-chart\" viewBox=\"0 0 {w} {h}\" role=\"img\" aria-label=\"licenses used over time\">\
<polyline fill=\"none\" stroke=\"#c5ccd8\" stroke-dasharray=\"4 3\" stroke-width=\"1.5\" points=\"{}\"/>\
<polyline fill=\"none\" stroke=\"#2f5bd3\" stroke-width=\"2\" points=\"{}\"/>\
<text x=\"{pad}\" y=\"14\" font-size=\"11\" fill=\"#5d6878\">— used, - - - owned (scale {top}) · since {}</text></svg>",
        steps(|r| r.1),
        steps(|r| r.2),
        format::time(first)
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

#[cfg(test)]
mod tests {
    #[test]
    fn the_chart_steps_through_each_change() {
        let svg = super::chart(&[(0, 10, 2), (1000, 10, 5)]);
        assert!(svg.starts_with("<svg"));
        assert_eq!(svg.matches("<polyline").count(), 2);
        assert!(svg.contains("scale 10"));
        assert_eq!(super::chart(&[]), "");
    }
}
