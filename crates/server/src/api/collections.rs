//! `/api/v1/collections`: collections of users or of devices, with static members or a rule
//! (evaluated in SQL; its members are written on save and at every reconcile pass).

use allot_domain::{CollectionKind, MembershipRule};
use allot_store::CollectionRow;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::api::inventory::{find_person, DeviceView, UserView};
use crate::api::{confirmed, Confirm};
use crate::auth::{Caller, Writer};
use crate::error::{ApiError, ApiJson, ErrorBody};
use crate::AppState;

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CollectionView {
    pub id: i64,
    pub name: String,
    /// `users` or `devices`.
    pub kind: String,
    pub description: String,
    pub members: i64,
    /// A rule-based collection's rule (absent for static membership).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rule: Option<MembershipRule>,
    /// When the rule's members were last written (Unix ms).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rule_evaluated_at: Option<i64>,
}

impl From<CollectionRow> for CollectionView {
    fn from(c: CollectionRow) -> Self {
        Self {
            id: c.id,
            name: c.name,
            kind: c.kind,
            description: c.description,
            members: c.members,
            rule: c.rule,
            rule_evaluated_at: c.rule_evaluated_at,
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct CollectionList {
    pub collections: Vec<CollectionView>,
}

#[utoipa::path(get, path = "/api/v1/collections", tag = "inventory", responses((status = 200, body = CollectionList)), security(("api_key" = [])))]
pub async fn list(
    State(state): State<AppState>,
    _c: Caller,
) -> Result<Json<CollectionList>, ApiError> {
    Ok(Json(CollectionList {
        collections: state
            .store
            .collections()
            .await?
            .into_iter()
            .map(Into::into)
            .collect(),
    }))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewCollectionRequest {
    pub name: String,
    /// `users` or `devices`.
    pub kind: String,
    #[serde(default)]
    pub description: String,
    /// Members chosen by a rule instead of one by one.
    pub rule: Option<MembershipRule>,
}

#[utoipa::path(post, path = "/api/v1/collections", tag = "inventory", request_body = NewCollectionRequest,
    responses((status = 201, body = CollectionView), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)), security(("api_key" = [])))]
pub async fn create(
    State(state): State<AppState>,
    _a: Writer,
    ApiJson(req): ApiJson<NewCollectionRequest>,
) -> Result<(StatusCode, Json<CollectionView>), ApiError> {
    let kind = CollectionKind::parse(&req.kind).ok_or_else(|| {
        ApiError::invalid(format!("kind {:?} must be users or devices", req.kind))
    })?;
    let row = add_collection(&state, &req.name, kind, &req.description, req.rule).await?;
    Ok((StatusCode::CREATED, Json(row.into())))
}

/// Makes a collection (the API and the console): its name checked, its rule checked and
/// evaluated with it, a taken name refused in words.
pub(crate) async fn add_collection(
    state: &AppState,
    name: &str,
    kind: CollectionKind,
    description: &str,
    rule: Option<MembershipRule>,
) -> Result<CollectionRow, ApiError> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 200 || name.contains(char::is_control) {
        return Err(ApiError::invalid(
            "a collection needs a name of at most 200 printable characters",
        ));
    }
    let rule = match rule {
        Some(r) => Some(checked_rule(state, kind, r, None).await?),
        None => None,
    };
    let row = state
        .store
        .insert_collection_with_rule(
            name,
            kind.as_str(),
            description.trim(),
            rule.as_ref(),
            allot_sync::now_ms(),
        )
        .await
        .map_err(|e| match e {
            allot_store::StoreError::Conflict(_) => {
                ApiError::conflict(format!("a collection named {name:?} exists already"))
            }
            e => e.into(),
        })?;
    // Deployments on a rule's new members move at the next pass; start it now.
    state.executor.wake();
    Ok(row)
}

pub(crate) async fn find(state: &AppState, key: &str) -> Result<CollectionRow, ApiError> {
    if let Ok(id) = key.parse::<i64>() {
        if let Some(c) = state.store.collection(Some(id), None).await? {
            return Ok(c);
        }
    }
    state
        .store
        .collection(None, Some(key))
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no collection with id or name {key:?}")))
}

#[derive(Serialize, ToSchema)]
pub struct CollectionDetail {
    #[serde(flatten)]
    pub collection: CollectionView,
    /// For a collection of users.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub users: Vec<UserView>,
    /// For a collection of devices.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub devices: Vec<DeviceView>,
}

#[utoipa::path(get, path = "/api/v1/collections/{collection}", tag = "inventory", params(("collection" = String, Path, description = "id or name")),
    responses((status = 200, body = CollectionDetail), (status = 404, body = ErrorBody)), security(("api_key" = [])))]
pub async fn show(
    State(state): State<AppState>,
    _c: Caller,
    Path(key): Path<String>,
) -> Result<Json<CollectionDetail>, ApiError> {
    let c = find(&state, &key).await?;
    let (users, devices) = if c.kind == "users" {
        (
            state
                .store
                .collection_people(c.id)
                .await?
                .into_iter()
                .map(Into::into)
                .collect(),
            Vec::new(),
        )
    } else {
        (
            Vec::new(),
            state
                .store
                .collection_devices(c.id)
                .await?
                .into_iter()
                .map(|(d, _)| d.into())
                .collect(),
        )
    };
    Ok(Json(CollectionDetail {
        collection: c.into(),
        users,
        devices,
    }))
}

/// A rule cleaned and checked: its criteria fit the collection's kind, and a users collection it
/// reads exists, holds users and is not the collection itself.
pub(crate) async fn checked_rule(
    state: &AppState,
    kind: CollectionKind,
    rule: MembershipRule,
    itself: Option<i64>,
) -> Result<MembershipRule, ApiError> {
    let rule = rule.normalized(kind).map_err(ApiError::invalid)?;
    if let Some(id) = rule.users_in_collection {
        match state.store.collection(Some(id), None).await? {
            Some(c) if c.kind == "users" && Some(c.id) != itself => {}
            Some(c) if c.kind != "users" => {
                return Err(ApiError::invalid(format!(
                "usersInCollection: {:?} is a collection of devices; name a collection of users",
                c.name
            )))
            }
            Some(_) => {
                return Err(ApiError::invalid(
                    "usersInCollection cannot name the collection itself",
                ))
            }
            None => {
                return Err(ApiError::invalid(format!(
                    "usersInCollection: there is no collection with id {id}"
                )))
            }
        }
    }
    Ok(rule)
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RulePreviewRequest {
    /// `users` or `devices`.
    pub kind: String,
    pub rule: MembershipRule,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RuleMatch {
    pub id: i64,
    /// A device's serial number, a person's name.
    pub label: String,
    /// A device's model and name, a person's e-mail.
    pub detail: String,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RulePreview {
    /// How many people or devices the rule chooses now.
    pub count: i64,
    /// The first 50 of them.
    pub sample: Vec<RuleMatch>,
    /// The rule as Allot will apply it (texts trimmed, platforms spelled as Apple does).
    pub rule: MembershipRule,
    /// The rule in words.
    pub description: String,
}

/// Who a rule would choose, before it is saved.
#[utoipa::path(post, path = "/api/v1/collections/preview", tag = "inventory", request_body = RulePreviewRequest,
    responses((status = 200, body = RulePreview), (status = 422, body = ErrorBody)), security(("api_key" = [])))]
pub async fn preview(
    State(state): State<AppState>,
    _c: Caller,
    ApiJson(req): ApiJson<RulePreviewRequest>,
) -> Result<Json<RulePreview>, ApiError> {
    let kind = CollectionKind::parse(&req.kind).ok_or_else(|| {
        ApiError::invalid(format!("kind {:?} must be users or devices", req.kind))
    })?;
    Ok(Json(preview_of(&state, kind, req.rule).await?))
}

pub(crate) async fn preview_of(
    state: &AppState,
    kind: CollectionKind,
    rule: MembershipRule,
) -> Result<RulePreview, ApiError> {
    let rule = checked_rule(state, kind, rule, None).await?;
    let (count, rows) = state.store.preview_rule(kind.as_str(), &rule, 50).await?;
    let description = describe(state, &rule).await?;
    Ok(RulePreview {
        count,
        sample: rows
            .into_iter()
            .map(|(id, label, detail)| RuleMatch { id, label, detail })
            .collect(),
        rule,
        description,
    })
}

/// A rule in words, naming the collections it reads.
pub(crate) async fn describe(state: &AppState, rule: &MembershipRule) -> Result<String, ApiError> {
    let other = match rule.users_in_collection {
        Some(id) => state
            .store
            .collection(Some(id), None)
            .await?
            .map(|c| c.name),
        None => None,
    };
    Ok(rule.describe(|id| {
        other
            .clone()
            .map(|n| format!("“{n}”"))
            .unwrap_or_else(|| format!("collection {id}"))
    }))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetRuleRequest {
    /// The new rule; `null` makes the collection static, keeping its members as they are.
    pub rule: Option<MembershipRule>,
}

#[derive(Serialize, ToSchema)]
pub struct RuleApplied {
    pub added: u64,
    pub removed: u64,
    pub collection: CollectionView,
}

/// Gives a collection a rule (its members are rewritten at once), changes it, or removes it.
#[utoipa::path(put, path = "/api/v1/collections/{collection}/rule", tag = "inventory", request_body = SetRuleRequest, params(("collection" = String, Path)),
    responses((status = 200, body = RuleApplied), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)), security(("api_key" = [])))]
pub async fn set_rule(
    State(state): State<AppState>,
    _a: Writer,
    Path(key): Path<String>,
    ApiJson(req): ApiJson<SetRuleRequest>,
) -> Result<Json<RuleApplied>, ApiError> {
    let c = find(&state, &key).await?;
    let kind = CollectionKind::parse(&c.kind).unwrap_or(CollectionKind::Devices);
    let rule = match req.rule {
        Some(r) => Some(checked_rule(&state, kind, r, Some(c.id)).await?),
        None => None,
    };
    let (added, removed) = state
        .store
        .set_collection_rule(c.id, rule.as_ref(), allot_sync::now_ms())
        .await?;
    let collection = find(&state, &c.id.to_string()).await?.into();
    Ok(Json(RuleApplied {
        added,
        removed,
        collection,
    }))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MembersRequest {
    /// Users by id or email, or devices by id or serial number, by the collection's kind.
    pub members: Vec<String>,
}

/// Resolves every member, or says which are unknown (then nothing changes).
pub(crate) async fn resolve(
    state: &AppState,
    c: &CollectionRow,
    members: &[String],
) -> Result<Vec<i64>, ApiError> {
    let mut ids = Vec::with_capacity(members.len());
    let mut unknown = Vec::new();
    let members: Vec<String> = members
        .iter()
        .map(|m| m.trim().to_owned())
        .filter(|m| !m.is_empty())
        .collect();
    // The usual forms (e-mails, serial numbers) in a few queries; the rest one by one.
    let known = if c.kind == "users" {
        state.store.people_by_emails(&members).await?
    } else {
        state.store.devices_by_serials(&members).await?
    };
    for m in &members {
        let usual = if c.kind == "users" {
            m.to_lowercase()
        } else {
            m.to_ascii_uppercase()
        };
        if let Some(id) = known.get(&usual) {
            ids.push(*id);
            continue;
        }
        let m = m.as_str();
        let found = if c.kind == "users" {
            find_person(state, m).await.ok().map(|p| p.id)
        } else {
            let by_id = match m.parse::<i64>() {
                Ok(id) => state.store.device(id).await?.map(|d| d.id),
                Err(_) => None,
            };
            match by_id {
                Some(id) => Some(id),
                None => state
                    .store
                    .device_by_serial(&m.to_ascii_uppercase())
                    .await?
                    .map(|d| d.id),
            }
        };
        match found {
            Some(id) => ids.push(id),
            None => unknown.push(m.to_owned()),
        }
    }
    if !unknown.is_empty() {
        let what = if c.kind == "users" {
            "users"
        } else {
            "devices"
        };
        let shown: Vec<_> = unknown.iter().take(20).collect();
        return Err(ApiError::invalid(format!(
            "unknown {what}: {shown:?}{}; nothing was changed",
            if unknown.len() > 20 { " …" } else { "" }
        )));
    }
    Ok(ids)
}

/// Members of a rule-based collection come from its rule alone.
pub(crate) fn static_only(c: &CollectionRow) -> Result<(), ApiError> {
    if c.rule.is_some() {
        return Err(ApiError::conflict(format!(
            "the members of {:?} come from its rule; change the rule, or remove it to add and remove members by hand",
            c.name
        )));
    }
    Ok(())
}

#[derive(Serialize, ToSchema)]
pub struct MembersChanged {
    pub changed: u64,
}

#[utoipa::path(post, path = "/api/v1/collections/{collection}/members", tag = "inventory", request_body = MembersRequest, params(("collection" = String, Path)),
    responses((status = 200, body = MembersChanged), (status = 422, body = ErrorBody)), security(("api_key" = [])))]
pub async fn add_members(
    State(state): State<AppState>,
    _a: Writer,
    Path(key): Path<String>,
    ApiJson(req): ApiJson<MembersRequest>,
) -> Result<Json<MembersChanged>, ApiError> {
    let c = find(&state, &key).await?;
    static_only(&c)?;
    let ids = resolve(&state, &c, &req.members).await?;
    Ok(Json(MembersChanged {
        changed: state.store.add_collection_members(c.id, &ids).await?,
    }))
}

#[utoipa::path(delete, path = "/api/v1/collections/{collection}/members", tag = "inventory", request_body = MembersRequest, params(("collection" = String, Path)),
    responses((status = 200, body = MembersChanged), (status = 422, body = ErrorBody)), security(("api_key" = [])))]
pub async fn remove_members(
    State(state): State<AppState>,
    _a: Writer,
    Path(key): Path<String>,
    ApiJson(req): ApiJson<MembersRequest>,
) -> Result<Json<MembersChanged>, ApiError> {
    let c = find(&state, &key).await?;
    static_only(&c)?;
    let ids = resolve(&state, &c, &req.members).await?;
    Ok(Json(MembersChanged {
        changed: state.store.remove_collection_members(c.id, &ids).await?,
    }))
}

#[utoipa::path(delete, path = "/api/v1/collections/{collection}", tag = "inventory", params(("collection" = String, Path), Confirm, crate::api::Then),
    responses((status = 204), (status = 202, description = "its deployments are ending (then=revoke|uninstall); it goes when they are gone"), (status = 400, body = ErrorBody), (status = 409, description = "deployments use it", body = ErrorBody)), security(("api_key" = [])))]
pub async fn delete(
    State(state): State<AppState>,
    _a: Writer,
    Path(key): Path<String>,
    Query(c): Query<Confirm>,
    Query(then): Query<crate::api::Then>,
) -> Result<StatusCode, ApiError> {
    confirmed(&c, "deleting a collection")?;
    let then = then.ends_deployments()?;
    let col = find(&state, &key).await?;
    let readers = state.store.collections_reading(col.id).await?;
    if !readers.is_empty() {
        return Err(ApiError::conflict(format!(
            "the rules of {readers:?} choose the devices of {:?}'s users; change those rules first",
            col.name
        )));
    }
    let users: Vec<_> = state
        .store
        .deployments()
        .await?
        .into_iter()
        .filter(|d| d.collection_id == col.id)
        .collect();
    let deferred = crate::api::deployments_exec::end_or_refuse(
        &state,
        &format!("collection {:?}", col.name),
        users,
        then,
    )
    .await?;
    if deferred {
        // Deleted by the reconcile loop once its deployments are gone.
        state
            .store
            .mark_collection_deleting(col.id, allot_sync::now_ms())
            .await?;
        return Ok(StatusCode::ACCEPTED);
    }
    state.store.delete_collection(col.id).await?;
    Ok(StatusCode::NO_CONTENT)
}
