//! Collections: the list with a form for a new one (static, or chosen by a rule with a preview of
//! who it chooses before it is saved), and one collection's page: its rule or its members (added
//! by pasting serial numbers or e-mails), the deployments that use it, deleting it. The devices
//! list's "add the selected devices" lands here too.

use allot_domain::{CollectionKind, MembershipRule};
use askama::Template;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use serde::Deserialize;

use super::format::{self, Pager};
use super::{back, render, Chrome, Fields, Notice, PageError, PageResult, Viewer};
use crate::api::collections::{checked_rule, describe, find, preview_of, RulePreview};
use crate::AppState;

const MEMBERS_PER_PAGE: i64 = 100;
/// The most lines one paste may add.
const MAX_PASTED: usize = 10_000;

/// The rule's fields as the form shows them (lists as comma-separated text).
#[derive(Debug, Default, Clone)]
pub(crate) struct RuleForm {
    pub kind: String,
    pub platforms: Vec<String>,
    pub model: String,
    pub min_os: String,
    pub users_in: String,
    pub domains: String,
    pub departments: String,
    pub name_contains: String,
}

fn split_list(s: &str) -> Vec<String> {
    s.split([',', ';', '\n'])
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

impl RuleForm {
    fn from_fields(f: &Fields, kind: &str) -> Self {
        Self {
            kind: kind.to_owned(),
            platforms: f.all("platform"),
            model: f.get("model").to_owned(),
            min_os: f.get("min_os").to_owned(),
            users_in: f.get("users_in").to_owned(),
            domains: f.get("domains").to_owned(),
            departments: f.get("departments").to_owned(),
            name_contains: f.get("name_contains").to_owned(),
        }
    }

    fn from_rule(kind: &str, r: &MembershipRule) -> Self {
        Self {
            kind: kind.to_owned(),
            platforms: r.platforms.clone(),
            model: r.model_contains.clone().unwrap_or_default(),
            min_os: r.min_os_version.clone().unwrap_or_default(),
            users_in: r
                .users_in_collection
                .map(|c| c.to_string())
                .unwrap_or_default(),
            domains: r.email_domains.join(", "),
            departments: r.departments.join(", "),
            name_contains: r.name_contains.clone().unwrap_or_default(),
        }
    }

    fn rule(&self) -> Result<MembershipRule, PageError> {
        let users_in = match self.users_in.as_str() {
            "" => None,
            s => Some(s.parse::<i64>().map_err(|_| {
                PageError::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "choose the users' collection from the list",
                )
            })?),
        };
        let opt = |s: &str| (!s.is_empty()).then(|| s.to_owned());
        Ok(MembershipRule {
            platforms: self.platforms.clone(),
            model_contains: opt(&self.model),
            min_os_version: opt(&self.min_os),
            users_in_collection: users_in,
            email_domains: split_list(&self.domains),
            departments: split_list(&self.departments),
            name_contains: opt(&self.name_contains),
        })
    }

    pub fn has_platform(&self, p: &str) -> bool {
        self.platforms.iter().any(|x| x == p)
    }
}

pub(crate) struct CollectionLine {
    pub id: i64,
    pub name: String,
    pub kind: String,
    pub description: String,
    pub members: i64,
    /// The rule in words; empty for a static collection.
    pub rule: String,
    /// When the rule's members were last written, in words.
    pub evaluated: String,
    pub deployments: usize,
}

async fn line(
    state: &AppState,
    c: allot_store::CollectionRow,
    deployments: usize,
    now: i64,
) -> Result<CollectionLine, PageError> {
    let rule = match &c.rule {
        Some(r) => describe(state, r).await?,
        None => String::new(),
    };
    Ok(CollectionLine {
        evaluated: c
            .rule_evaluated_at
            .map(|t| format!("members as of {}", format::ago(t, now)))
            .unwrap_or_default(),
        id: c.id,
        name: c.name,
        kind: c.kind,
        description: c.description,
        members: c.members,
        rule,
        deployments,
    })
}

/// The users collections a device rule may read.
async fn user_collections(state: &AppState) -> Result<Vec<(i64, String)>, PageError> {
    Ok(state.store.collection_names("users").await?)
}

#[derive(Template)]
#[template(path = "collections.html")]
struct CollectionsPage {
    chrome: Chrome,
    rows: Vec<CollectionLine>,
    name: String,
    description: String,
    /// `static` or `rule`.
    membership: String,
    form: RuleForm,
    preview: Option<RulePreview>,
    user_collections: Vec<(i64, String)>,
}

async fn list_page(
    state: &AppState,
    viewer: &Viewer,
    notice: Option<String>,
    fields: Option<&Fields>,
    preview: Option<RulePreview>,
) -> PageResult {
    let now = allot_sync::now_ms();
    let deployments = state.store.deployments().await?;
    let mut rows = Vec::new();
    for c in state.store.collections().await? {
        let used = deployments
            .iter()
            .filter(|d| d.collection_id == c.id)
            .count();
        rows.push(line(state, c, used, now).await?);
    }
    let kind = fields.map(|f| f.get("kind")).unwrap_or("devices");
    Ok(render(&CollectionsPage {
        chrome: viewer.chrome("collections", notice),
        rows,
        name: fields.map(|f| f.get("name")).unwrap_or("").to_owned(),
        description: fields
            .map(|f| f.get("description"))
            .unwrap_or("")
            .to_owned(),
        membership: fields
            .map(|f| f.get("membership"))
            .filter(|m| !m.is_empty())
            .unwrap_or("static")
            .to_owned(),
        form: fields
            .map(|f| RuleForm::from_fields(f, kind))
            .unwrap_or_else(|| RuleForm {
                kind: kind.into(),
                ..Default::default()
            }),
        preview,
        user_collections: user_collections(state).await?,
    }))
}

pub(crate) async fn page(
    State(state): State<AppState>,
    viewer: Viewer,
    Query(n): Query<Notice>,
) -> PageResult {
    list_page(&state, &viewer, n.take(), None, None).await
}

fn kind_of(s: &str) -> Result<CollectionKind, PageError> {
    CollectionKind::parse(s).ok_or_else(|| {
        PageError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "choose whether the collection holds users or devices",
        )
    })
}

/// A rule form's step: a preview only reads (any account, and is not an audited change); the
/// other steps change (admins).
fn allowed(viewer: &Viewer, f: &Fields) -> Result<(), PageError> {
    if f.get("step") == "preview" {
        viewer.form_is_ours(f.get("csrf"))?;
        crate::audit::not_a_change();
        Ok(())
    } else {
        viewer.may_change(f.get("csrf"))
    }
}

/// The new-collection form: `step=preview` shows who the rule chooses (nothing is saved),
/// `step=create` makes the collection.
pub(crate) async fn create(
    State(state): State<AppState>,
    viewer: Viewer,
    body: Bytes,
) -> PageResult {
    let f = Fields::parse(&body);
    allowed(&viewer, &f)?;
    let kind = kind_of(f.get("kind"))?;
    let by_rule = f.get("membership") == "rule";
    let rule = if by_rule {
        Some(RuleForm::from_fields(&f, kind.as_str()).rule()?)
    } else {
        None
    };
    if f.get("step") == "preview" {
        let Some(rule) = rule else {
            return list_page(
                &state,
                &viewer,
                Some("A static collection has no rule to preview: add members on its page".into()),
                Some(&f),
                None,
            )
            .await;
        };
        let preview = preview_of(&state, kind, rule).await?;
        return list_page(&state, &viewer, None, Some(&f), Some(preview)).await;
    }
    let row = crate::api::collections::add_collection(
        &state,
        f.get("name"),
        kind,
        f.get("description"),
        rule,
    )
    .await?;
    Ok(back(
        &format!("/collections/{}", row.id),
        &format!("Created {:?} with {} members", row.name, row.members),
    ))
}

pub(crate) struct MemberLine {
    pub id: i64,
    pub link: String,
    pub label: String,
    pub detail: String,
}

pub(crate) struct DeploymentLine {
    pub id: i64,
    pub app: String,
    pub action: String,
    pub ending: bool,
}

#[derive(Template)]
#[template(path = "collection.html")]
struct CollectionPage {
    chrome: Chrome,
    c: CollectionLine,
    form: RuleForm,
    preview: Option<RulePreview>,
    members: Vec<MemberLine>,
    pager: Pager,
    deployments: Vec<DeploymentLine>,
    user_collections: Vec<(i64, String)>,
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct DetailQuery {
    page: Option<i64>,
    notice: Option<String>,
}

async fn detail_page(
    state: &AppState,
    viewer: &Viewer,
    id: i64,
    page: i64,
    notice: Option<String>,
    form: Option<RuleForm>,
    preview: Option<RulePreview>,
) -> PageResult {
    let c = find(state, &id.to_string()).await?;
    let now = allot_sync::now_ms();
    let (total, rows) = state
        .store
        .collection_member_page(
            c.id,
            &c.kind,
            MEMBERS_PER_PAGE,
            (page - 1) * MEMBERS_PER_PAGE,
        )
        .await?;
    let devices = c.kind == "devices";
    let members = rows
        .into_iter()
        .map(|(id, label, detail)| MemberLine {
            link: if devices {
                format!("/devices/{}", format::query_escape(&label))
            } else {
                format!("/users/{id}")
            },
            id,
            label,
            detail,
        })
        .collect();
    let mut deployments = Vec::new();
    for d in state
        .store
        .deployments()
        .await?
        .into_iter()
        .filter(|d| d.collection_id == c.id)
    {
        deployments.push(DeploymentLine {
            id: d.id,
            app: super::deployments::app_name(state, &d.adam_id).await?,
            action: d.action,
            ending: d.ending.is_some(),
        });
    }
    let form = form.unwrap_or_else(|| match &c.rule {
        Some(r) => RuleForm::from_rule(&c.kind, r),
        None => RuleForm {
            kind: c.kind.clone(),
            ..Default::default()
        },
    });
    let link = |n: i64| format!("/collections/{id}?page={n}");
    let used = deployments.len();
    Ok(render(&CollectionPage {
        chrome: viewer.chrome("collections", notice),
        pager: Pager::new(page, MEMBERS_PER_PAGE, total, link),
        c: line(state, c, used, now).await?,
        form,
        preview,
        members,
        deployments,
        user_collections: user_collections(state)
            .await?
            .into_iter()
            .filter(|(c, _)| *c != id)
            .collect(),
    }))
}

pub(crate) async fn detail(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(id): Path<i64>,
    Query(q): Query<DetailQuery>,
) -> PageResult {
    let notice = Notice { notice: q.notice }.take();
    detail_page(
        &state,
        &viewer,
        id,
        format::page_number(q.page),
        notice,
        None,
        None,
    )
    .await
}

/// The words of a paste: serial numbers or e-mails, one per line or separated by commas,
/// semicolons or spaces (a CSV's column pastes as is; its header word is skipped).
fn pasted(s: &str) -> Vec<String> {
    const HEADERS: [&str; 5] = ["serial", "serial_number", "serialnumber", "email", "e-mail"];
    s.split(|c: char| c == ',' || c == ';' || c.is_whitespace())
        .map(|w| w.trim_matches('"').to_owned())
        .filter(|w| !w.is_empty() && !HEADERS.contains(&w.to_ascii_lowercase().as_str()))
        .collect()
}

/// Adds pasted members (`op=add`, `members`) or removes one (`op=remove`, `member` = its id).
pub(crate) async fn members(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(id): Path<i64>,
    body: Bytes,
) -> PageResult {
    let f = Fields::parse(&body);
    viewer.may_change(f.get("csrf"))?;
    let c = find(&state, &id.to_string()).await?;
    crate::api::collections::static_only(&c)?;
    let here = format!("/collections/{id}");
    let notice = match f.get("op") {
        "remove" => {
            let member: i64 = f.get("member").parse().map_err(|_| {
                PageError::new(StatusCode::UNPROCESSABLE_ENTITY, "no member to remove")
            })?;
            let n = state
                .store
                .remove_collection_members(c.id, &[member])
                .await?;
            if n == 0 {
                "That member had already left".to_owned()
            } else {
                "Removed one member".to_owned()
            }
        }
        _ => {
            let list = pasted(f.get("members"));
            if list.is_empty() {
                return Err(PageError::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    if c.kind == "devices" {
                        "paste serial numbers, one per line"
                    } else {
                        "paste e-mail addresses, one per line"
                    },
                ));
            }
            if list.len() > MAX_PASTED {
                return Err(PageError::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    format!(
                        "paste at most {MAX_PASTED} at a time (the API and CSV imports take more)"
                    ),
                ));
            }
            let ids = crate::api::collections::resolve(&state, &c, &list).await?;
            let added = state.store.add_collection_members(c.id, &ids).await?;
            format!(
                "Added {added} of {} (the others were members already)",
                ids.len()
            )
        }
    };
    state.executor.wake();
    Ok(back(&here, &notice))
}

/// A collection's rule: `step=preview` shows who the changed rule chooses, `step=save` applies
/// it (members rewritten at once), `step=static` keeps today's members and drops the rule.
pub(crate) async fn rule(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(id): Path<i64>,
    body: Bytes,
) -> PageResult {
    let f = Fields::parse(&body);
    allowed(&viewer, &f)?;
    let c = find(&state, &id.to_string()).await?;
    let kind = kind_of(&c.kind)?;
    let form = RuleForm::from_fields(&f, &c.kind);
    match f.get("step") {
        "preview" => {
            let mut rule = form.rule()?;
            if rule.users_in_collection == Some(id) {
                rule.users_in_collection = None;
            }
            let preview = preview_of(&state, kind, rule).await?;
            detail_page(&state, &viewer, id, 1, None, Some(form), Some(preview)).await
        }
        "static" => {
            state
                .store
                .set_collection_rule(id, None, allot_sync::now_ms())
                .await?;
            Ok(back(
                &format!("/collections/{id}"),
                "The rule is gone; today's members stay, added and removed by hand from now on",
            ))
        }
        _ => {
            let rule = checked_rule(&state, kind, form.rule()?, Some(id)).await?;
            let (added, removed) = state
                .store
                .set_collection_rule(id, Some(&rule), allot_sync::now_ms())
                .await?;
            state.executor.wake();
            Ok(back(
                &format!("/collections/{id}"),
                &format!("Rule saved: {added} joined, {removed} left"),
            ))
        }
    }
}

pub(crate) async fn delete(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(id): Path<i64>,
    body: Bytes,
) -> PageResult {
    let f = Fields::parse(&body);
    viewer.may_change(f.get("csrf"))?;
    let c = find(&state, &id.to_string()).await?;
    let readers = state.store.collections_reading(c.id).await?;
    if !readers.is_empty() {
        return Err(PageError::new(
            StatusCode::CONFLICT,
            format!(
                "the rules of {} choose the devices of {:?}'s users; change those rules first",
                readers.join(", "),
                c.name
            ),
        ));
    }
    let used = state
        .store
        .deployments()
        .await?
        .into_iter()
        .filter(|d| d.collection_id == c.id)
        .count();
    if used > 0 {
        return Err(PageError::new(
            StatusCode::CONFLICT,
            format!(
                "{used} deployment(s) use {:?}: delete them first (their pages say what happens to the licenses)",
                c.name
            ),
        ));
    }
    state.store.delete_collection(c.id).await?;
    Ok(back("/collections", &format!("Deleted {:?}", c.name)))
}

/// The devices list's bulk action: the ticked devices (`serial`, repeated) join a static
/// collection of devices.
pub(crate) async fn add_devices(
    State(state): State<AppState>,
    viewer: Viewer,
    body: Bytes,
) -> PageResult {
    let f = Fields::parse(&body);
    viewer.may_change(f.get("csrf"))?;
    let serials = f.all("serial");
    if serials.is_empty() {
        return Err(PageError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "tick the devices to add first",
        ));
    }
    let c = find(&state, f.get("collection")).await?;
    if c.kind != "devices" {
        return Err(PageError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            format!("{:?} is a collection of users", c.name),
        ));
    }
    crate::api::collections::static_only(&c)?;
    let ids = crate::api::collections::resolve(&state, &c, &serials).await?;
    let added = state.store.add_collection_members(c.id, &ids).await?;
    state.executor.wake();
    Ok(back(
        &format!("/collections/{}", c.id),
        &format!(
            "Added {added} of the {} selected devices to {:?}",
            serials.len(),
            c.name
        ),
    ))
}

#[cfg(test)]
mod tests {
    use super::pasted;

    #[test]
    fn a_paste_reads_lines_commas_and_a_csv_column() {
        assert_eq!(
            pasted("serial_number\nC02AAA\n\"C02BBB\"\n  c02ccc  C02DDD,C02EEE\n"),
            vec!["C02AAA", "C02BBB", "c02ccc", "C02DDD", "C02EEE"]
        );
        assert_eq!(
            pasted("a@x.example; b@x.example"),
            vec!["a@x.example", "b@x.example"]
        );
    }
}
