//! The tokens page (connector status): one row per token with its state, expiry and syncs, live
//! while a sync runs; adding a token by uploading its file; Sync, Renew, Take over, Delete.

use allot_domain::Program;
use allot_sync::{AddToken, SyncKind};
use askama::Template;
use axum::extract::{Multipart, Path, Query, State};
use axum::http::StatusCode;
use axum::Form;

use super::auth::CsrfForm;
use super::format::Pager;
use super::{back, format, render, Chrome, Notice, PageError, PageResult, Viewer};
use crate::api::tokens::{find, TokenView};
use crate::AppState;
use serde::Deserialize;

pub(crate) struct TokenLine {
    pub id: i64,
    pub name: String,
    pub categories: String,
    pub organization: String,
    pub location: String,
    pub program: String,
    pub state: String,
    pub state_words: String,
    pub progress: Option<String>,
    pub error: Option<String>,
    pub expires: String,
    pub expiry_words: String,
    pub last_update: String,
    pub last_delta: String,
    pub last_full: String,
    pub syncing: bool,
    /// Worth refreshing: a sync runs, or the first one is about to.
    pub live: bool,
    pub claimed: bool,
    pub claimed_by: String,
    /// The description and the Apple account given at upload.
    pub details: String,
    /// "next: delta sync in 3 h".
    pub next_sync: String,
}

fn day(rfc3339: &str) -> String {
    rfc3339.get(..10).unwrap_or(rfc3339).to_owned()
}

/// `2026-11-21T08:23:16Z` → `2026-11-21 08:23 UTC`.
fn when(t: &Option<String>) -> String {
    t.as_deref()
        .map(|s| format!("{} UTC", s.get(..16).unwrap_or(s).replace('T', " ")))
        .unwrap_or_else(|| "never".into())
}

fn line(v: TokenView) -> TokenLine {
    let progress = v.sync.as_ref().map(|p| {
        if p.pages_total > 0 {
            format!(
                "{} sync: {} — {} of {} pages",
                p.kind, p.phase, p.pages, p.pages_total
            )
        } else {
            format!("{} sync: {}", p.kind, p.phase)
        }
    });
    let state_words = match (v.state.as_str(), &v.claimed_by) {
        ("claimed_by_other_mdm", Some(other)) => format!("claimed by {other}"),
        ("claimed_by_other_mdm", None) => "claimed by another MDM".to_owned(),
        (s, _) => s.to_owned(),
    };
    let details = [v.description.trim(), v.apple_account.trim()]
        .iter()
        .filter(|s| !s.is_empty())
        .copied()
        .collect::<Vec<_>>()
        .join(" · ");
    let next_sync = match (&v.next_sync_at, &v.next_sync_kind) {
        (Some(at), Some(kind)) => chrono::DateTime::parse_from_rfc3339(at)
            .map(|t| {
                let ms = t.timestamp_millis();
                let now = allot_sync::now_ms();
                if ms <= now + 60_000 {
                    format!("next: {kind} sync now")
                } else {
                    format!("next: {kind} sync {}", super::format::from_now(ms, now))
                }
            })
            .unwrap_or_default(),
        _ => String::new(),
    };
    TokenLine {
        id: v.id,
        categories: v.categories.join(", "),
        organization: v.organization,
        location: v.location,
        program: if v.program_type == "education" {
            "Education".into()
        } else {
            "Business".into()
        },
        syncing: v.state == "syncing" || progress.is_some(),
        live: v.state == "syncing"
            || progress.is_some()
            || (v.last_full_sync.is_none()
                && v.last_delta_sync.is_none()
                && !matches!(
                    v.state.as_str(),
                    "claimed_by_other_mdm" | "expired" | "revoked" | "failing"
                )),
        claimed: v.state == "claimed_by_other_mdm",
        details,
        next_sync,
        claimed_by: v.claimed_by.unwrap_or_else(|| "another MDM".into()),
        state: v.state,
        state_words,
        progress,
        error: v.last_error,
        expiry_words: match v.days_to_expiry {
            d if d < 0 => "expired".into(),
            0 => "today".into(),
            1 => "in 1 day".into(),
            d => format!("in {d} days"),
        },
        expires: day(&v.expires_at),
        last_update: when(&Some(v.last_update)),
        last_delta: when(&v.last_delta_sync),
        last_full: when(&v.last_full_sync),
        name: v.name,
    }
}

/// The rows the page shows, in words (times in the viewer's zone): only for the rows shown, as
/// 3,000 tokens' worth of formatting is most of a page's time.
pub(crate) fn lines_of(views: impl IntoIterator<Item = TokenView>) -> Vec<TokenLine> {
    views.into_iter().map(line).collect()
}

/// Rows a page: 3,000 tokens stay quick to load and to refresh while syncs run.
const PER_PAGE: usize = 100;

#[derive(Debug, Default, Deserialize)]
pub(crate) struct TokenQuery {
    #[serde(default)]
    search: String,
    #[serde(default)]
    state: String,
    page: Option<i64>,
    notice: Option<String>,
}

/// The page of tokens a query shows (`api::tokens::select`), the pager, and the link that
/// refreshes it.
async fn select(
    state: &AppState,
    q: &TokenQuery,
) -> Result<(Vec<TokenLine>, Pager, String), PageError> {
    let page = format::page_number(q.page);
    let skip = (page - 1) * PER_PAGE as i64;
    let (views, total) =
        crate::api::tokens::select(state, &q.state, &q.search, PER_PAGE as i64, skip).await?;
    let link = |n: i64, path: &str| {
        let page = n.to_string();
        format!(
            "{path}{}",
            format::query(&[("search", &q.search), ("state", &q.state), ("page", &page)])
        )
    };
    let pager = Pager::new(page, PER_PAGE as i64, total, |n| link(n, "/tokens"));
    Ok((lines_of(views), pager, link(page, "/tokens/rows")))
}

#[derive(Template)]
#[template(path = "tokens.html")]
struct TokensPage {
    chrome: Chrome,
    rows: Vec<TokenLine>,
    live: bool,
    pager: Pager,
    refresh: String,
    search: String,
    state: String,
    states: Vec<String>,
    /// The MDM connector, beside Apple's (see `connector`).
    mdm: String,
    mdm_failing: bool,
    push_total: i64,
    push_last_hour: i64,
}

#[derive(Template)]
#[template(path = "tokens_rows.html")]
struct TokenRows {
    chrome: Chrome,
    rows: Vec<TokenLine>,
}

pub(crate) async fn page(
    State(state): State<AppState>,
    viewer: Viewer,
    Query(q): Query<TokenQuery>,
) -> PageResult {
    let (rows, pager, refresh) = select(&state, &q).await?;
    let live = rows.iter().any(|r| r.live);
    let connector = super::connector::mdm_connector(&state).await?;
    Ok(render(&TokensPage {
        mdm: connector.words,
        mdm_failing: connector.failing,
        push_total: connector.push_total,
        push_last_hour: connector.push_last_hour,
        chrome: viewer.chrome(
            "tokens",
            Notice {
                notice: q.notice.clone(),
            }
            .take(),
        ),
        rows,
        live,
        pager,
        refresh,
        states: crate::api::tokens::STATES.map(String::from).to_vec(),
        search: q.search,
        state: q.state,
    }))
}

/// The rows of a page alone, for the page to refresh while syncs run.
pub(crate) async fn rows(
    State(state): State<AppState>,
    viewer: Viewer,
    Query(q): Query<TokenQuery>,
) -> PageResult {
    let (rows, _, _) = select(&state, &q).await?;
    Ok(render(&TokenRows {
        chrome: viewer.chrome("tokens", None),
        rows,
    }))
}

/// How many names a token field suggests at once: the list narrows as the name is typed.
const SUGGESTED: i64 = 30;

#[derive(Debug, Default, Deserialize)]
pub(crate) struct NamesQuery {
    #[serde(default)]
    q: String,
}

#[derive(Template)]
#[template(
    source = "{% for n in names %}<option value=\"{{ n }}\">{% endfor %}",
    ext = "html"
)]
struct TokenNames {
    names: Vec<String>,
}

/// The names of the viewer's tokens containing `q`, as a datalist's options: a token field's
/// suggestions, fetched as it is used rather than thousands of names in every page.
pub(crate) async fn names(
    State(state): State<AppState>,
    _viewer: Viewer,
    Query(q): Query<NamesQuery>,
) -> PageResult {
    let search: String = q.q.trim().chars().take(200).collect();
    let names = state
        .store
        .token_names_like(&search, crate::access::token_ids().as_deref(), SUGGESTED)
        .await?;
    Ok(render(&TokenNames { names }))
}

/// A multipart form's text fields and its one file.
#[derive(Default)]
struct Upload {
    fields: std::collections::HashMap<String, String>,
    file: Option<String>,
}

impl Upload {
    async fn read(mut m: Multipart) -> Result<Self, PageError> {
        let bad = |e: axum::extract::multipart::MultipartError| {
            if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
                return PageError::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "the file is too large for a content token (at most 256 KiB): choose the .vpptoken file Apple gave you",
                );
            }
            PageError::new(
                StatusCode::BAD_REQUEST,
                format!("the form could not be read: {e}"),
            )
        };
        let mut out = Upload::default();
        while let Some(field) = m.next_field().await.map_err(bad)? {
            let name = field.name().unwrap_or_default().to_owned();
            let bytes = field.bytes().await.map_err(bad)?;
            let text = String::from_utf8(bytes.to_vec()).map_err(|_| {
                PageError::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    format!("{name} is not text: choose the .vpptoken file Apple gave you"),
                )
            })?;
            if name == "file" {
                out.file = Some(text);
            } else {
                out.fields.insert(name, text);
            }
        }
        Ok(out)
    }

    fn field(&self, name: &str) -> String {
        self.fields
            .get(name)
            .map(|s| s.trim().to_owned())
            .unwrap_or_default()
    }

    fn file(&self) -> Result<String, PageError> {
        self.file
            .clone()
            .filter(|f| !f.trim().is_empty())
            .ok_or_else(|| {
                PageError::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "choose the content token file (.vpptoken) to upload",
                )
            })
    }
}

pub(crate) async fn add(State(state): State<AppState>, viewer: Viewer, m: Multipart) -> PageResult {
    let up = Upload::read(m).await?;
    viewer.may_change(&up.field("csrf"))?;
    let program = Program::parse(&up.field("program")).ok_or_else(|| {
        PageError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "the program must be Business or Education",
        )
    })?;
    let name = up.field("name");
    let t = state
        .engine
        .add_token(AddToken {
            name: name.clone(),
            token_text: up.file()?,
            description: up.field("description"),
            categories: up
                .field("categories")
                .split(',')
                .map(str::trim)
                .filter(|c| !c.is_empty())
                .map(str::to_owned)
                .collect(),
            apple_account: up.field("apple_account"),
            program,
        })
        .await
        .map_err(crate::error::ApiError::from)?;
    match state.engine.start_sync(t.id, SyncKind::Full, "added").await {
        Ok(_) | Err(allot_sync::SyncError::AlreadyRunning) => {}
        Err(e) => tracing::warn!(token = t.id, error = %e, "first sync did not start"),
    }
    Ok(back(
        "/tokens",
        &format!("Added {name}; its first sync is running"),
    ))
}

pub(crate) async fn sync(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(id): Path<String>,
    Form(f): Form<CsrfForm>,
) -> PageResult {
    viewer.may_change(&f.csrf)?;
    let t = find(&state, &id).await?;
    state
        .engine
        .start_sync(t.id, SyncKind::Full, "manual")
        .await
        .map_err(crate::error::ApiError::from)?;
    Ok(back(
        "/tokens",
        &format!("A full sync of {} started", t.name),
    ))
}

pub(crate) async fn renew(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(id): Path<String>,
    m: Multipart,
) -> PageResult {
    let up = Upload::read(m).await?;
    viewer.may_change(&up.field("csrf"))?;
    let t = find(&state, &id).await?;
    let t = state
        .engine
        .renew_token(t.id, &up.file()?)
        .await
        .map_err(crate::error::ApiError::from)?;
    let _ = state
        .engine
        .start_sync(t.id, SyncKind::Delta, "renewed")
        .await;
    Ok(back(
        "/tokens",
        &format!(
            "Renewed {}: it now expires {}",
            t.name,
            format::time(t.expires_at)
        ),
    ))
}

pub(crate) async fn take_over(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(id): Path<String>,
    Form(f): Form<CsrfForm>,
) -> PageResult {
    viewer.may_change(&f.csrf)?;
    let t = find(&state, &id).await?;
    let t = state
        .engine
        .take_over(t.id)
        .await
        .map_err(crate::error::ApiError::from)?;
    let _ = state
        .engine
        .start_sync(t.id, SyncKind::Full, "takeover")
        .await;
    Ok(back("/tokens", &format!("Allot now manages {}", t.name)))
}

pub(crate) async fn delete(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(id): Path<String>,
    Form(f): Form<CsrfForm>,
) -> PageResult {
    viewer.may_change(&f.csrf)?;
    let t = find(&state, &id).await?;
    if state.engine.progress(t.id).is_some() {
        return Err(PageError::new(
            StatusCode::CONFLICT,
            "a sync of this token is running; delete it when the sync has finished",
        ));
    }
    let users = crate::api::deployments_exec::deployments_using_token(&state, t.id).await?;
    crate::api::deployments_exec::end_or_refuse(
        &state,
        &format!("token {:?}", t.name),
        users,
        None,
    )
    .await?;
    state
        .engine
        .delete_token(t.id)
        .await
        .map_err(crate::error::ApiError::from)?;
    Ok(back("/tokens", &format!("Deleted {}", t.name)))
}
