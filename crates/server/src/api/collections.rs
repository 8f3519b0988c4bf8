//! `/api/v1/collections`: collections of users or of devices, with static members.

use allot_domain::CollectionKind;
use allot_store::CollectionRow;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::api::inventory::{find_person, DeviceView, UserView};
use crate::api::{confirmed, Confirm};
use crate::auth::{Admin, Caller};
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
}

impl From<CollectionRow> for CollectionView {
    fn from(c: CollectionRow) -> Self {
        Self {
            id: c.id,
            name: c.name,
            kind: c.kind,
            description: c.description,
            members: c.members,
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
}

#[utoipa::path(post, path = "/api/v1/collections", tag = "inventory", request_body = NewCollectionRequest,
    responses((status = 201, body = CollectionView), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)), security(("api_key" = [])))]
pub async fn create(
    State(state): State<AppState>,
    _a: Admin,
    ApiJson(req): ApiJson<NewCollectionRequest>,
) -> Result<(StatusCode, Json<CollectionView>), ApiError> {
    let kind = CollectionKind::parse(&req.kind).ok_or_else(|| {
        ApiError::invalid(format!("kind {:?} must be users or devices", req.kind))
    })?;
    let name = req.name.trim();
    if name.is_empty() || name.chars().count() > 200 || name.contains(char::is_control) {
        return Err(ApiError::invalid(
            "a collection needs a name of at most 200 printable characters",
        ));
    }
    let row = state
        .store
        .insert_collection(
            name,
            kind.as_str(),
            req.description.trim(),
            allot_sync::now_ms(),
        )
        .await
        .map_err(|e| match e {
            allot_store::StoreError::Conflict(_) => {
                ApiError::conflict(format!("a collection named {name:?} exists already"))
            }
            e => e.into(),
        })?;
    Ok((StatusCode::CREATED, Json(row.into())))
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

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MembersRequest {
    /// Users by id or email, or devices by id or serial number, by the collection's kind.
    pub members: Vec<String>,
}

/// Resolves every member, or says which are unknown (then nothing changes).
async fn resolve(
    state: &AppState,
    c: &CollectionRow,
    members: &[String],
) -> Result<Vec<i64>, ApiError> {
    let mut ids = Vec::with_capacity(members.len());
    let mut unknown = Vec::new();
    for m in members.iter().map(|m| m.trim()).filter(|m| !m.is_empty()) {
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

#[derive(Serialize, ToSchema)]
pub struct MembersChanged {
    pub changed: u64,
}

#[utoipa::path(post, path = "/api/v1/collections/{collection}/members", tag = "inventory", request_body = MembersRequest, params(("collection" = String, Path)),
    responses((status = 200, body = MembersChanged), (status = 422, body = ErrorBody)), security(("api_key" = [])))]
pub async fn add_members(
    State(state): State<AppState>,
    _a: Admin,
    Path(key): Path<String>,
    ApiJson(req): ApiJson<MembersRequest>,
) -> Result<Json<MembersChanged>, ApiError> {
    let c = find(&state, &key).await?;
    let ids = resolve(&state, &c, &req.members).await?;
    Ok(Json(MembersChanged {
        changed: state.store.add_collection_members(c.id, &ids).await?,
    }))
}

#[utoipa::path(delete, path = "/api/v1/collections/{collection}/members", tag = "inventory", request_body = MembersRequest, params(("collection" = String, Path)),
    responses((status = 200, body = MembersChanged), (status = 422, body = ErrorBody)), security(("api_key" = [])))]
pub async fn remove_members(
    State(state): State<AppState>,
    _a: Admin,
    Path(key): Path<String>,
    ApiJson(req): ApiJson<MembersRequest>,
) -> Result<Json<MembersChanged>, ApiError> {
    let c = find(&state, &key).await?;
    let ids = resolve(&state, &c, &req.members).await?;
    Ok(Json(MembersChanged {
        changed: state.store.remove_collection_members(c.id, &ids).await?,
    }))
}

#[utoipa::path(delete, path = "/api/v1/collections/{collection}", tag = "inventory", params(("collection" = String, Path), Confirm, crate::api::Then),
    responses((status = 204), (status = 202, description = "its deployments are ending (then=revoke|uninstall); it goes when they are gone"), (status = 400, body = ErrorBody), (status = 409, description = "deployments use it", body = ErrorBody)), security(("api_key" = [])))]
pub async fn delete(
    State(state): State<AppState>,
    _a: Admin,
    Path(key): Path<String>,
    Query(c): Query<Confirm>,
    Query(then): Query<crate::api::Then>,
) -> Result<StatusCode, ApiError> {
    confirmed(&c, "deleting a collection")?;
    let then = then.ends_deployments()?;
    let col = find(&state, &key).await?;
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
