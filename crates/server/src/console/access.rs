//! Access (`/access`, administrators of every location): console accounts and API keys — each
//! with its role, the tokens it works with and its last use; accounts made, changed (role, scope,
//! disabled, a new password), keys made (the secret shown once), changed and revoked. The same
//! functions as the API's, so both check the same rules.

use askama::Template;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};

use super::{back, format, render, Chrome, Fields, Notice, PageError, PageResult, Viewer};
use crate::access::ScopeView;
use crate::api::accounts::{change_account, create_account, AccountChange, NewAccount};
use crate::api::keys::{create_key, ApiKeyChange, NewApiKey};
use crate::roles::Role;
use crate::AppState;

pub(crate) struct AccountLine {
    pub id: i64,
    pub username: String,
    pub role: &'static str,
    pub scope: String,
    /// Names and categories as the form's fields hold them.
    pub scope_tokens: String,
    pub scope_categories: String,
    pub disabled: bool,
    pub last_sign_in: String,
    pub is_me: bool,
}

pub(crate) struct KeyLine {
    pub id: i64,
    pub name: String,
    pub role: &'static str,
    pub scope: String,
    pub scope_tokens: String,
    pub scope_categories: String,
    pub last_used: String,
    pub revoked: bool,
}

#[derive(Template)]
#[template(path = "access.html")]
struct AccessPage {
    chrome: Chrome,
    accounts: Vec<AccountLine>,
    keys: Vec<KeyLine>,
    roles: Vec<(&'static str, &'static str)>,
    /// A new key's secret, shown once.
    new_key: Option<(String, String)>,
}

fn scope_fields(v: Option<&ScopeView>) -> (String, String, String) {
    (
        crate::access::words(v),
        v.map(|v| v.tokens.join(", ")).unwrap_or_default(),
        v.map(|v| v.categories.join(", ")).unwrap_or_default(),
    )
}

async fn access_page(
    state: &AppState,
    viewer: &Viewer,
    notice: Option<String>,
    new_key: Option<(String, String)>,
) -> PageResult {
    let now = allot_sync::now_ms();
    let names = super::token_names(state).await?;
    let accounts = state
        .store
        .accounts()
        .await?
        .into_iter()
        .map(|a| {
            let (scope, scope_tokens, scope_categories) =
                scope_fields(crate::access::view_named(&names, a.scope.as_deref()).as_ref());
            AccountLine {
                id: a.id,
                is_me: a.id == viewer.account_id,
                username: a.username,
                role: Role::stored(&a.role).as_str(),
                scope,
                scope_tokens,
                scope_categories,
                disabled: a.disabled_at.is_some(),
                last_sign_in: a
                    .last_sign_in_at
                    .map(|t| format::ago(t, now))
                    .unwrap_or_else(|| "never".into()),
            }
        })
        .collect();
    let keys = state
        .store
        .api_keys()
        .await?
        .into_iter()
        .map(|k| {
            let (scope, scope_tokens, scope_categories) =
                scope_fields(crate::access::view_named(&names, k.scope.as_deref()).as_ref());
            KeyLine {
                id: k.id,
                name: k.name,
                role: Role::stored(&k.role).as_str(),
                scope,
                scope_tokens,
                scope_categories,
                last_used: k
                    .last_used_at
                    .map(|t| format::ago(t, now))
                    .unwrap_or_else(|| "never".into()),
                revoked: k.revoked_at.is_some(),
            }
        })
        .collect();
    Ok(render(&AccessPage {
        chrome: viewer.chrome("access", notice),
        accounts,
        keys,
        roles: [Role::Viewer, Role::Operator, Role::Admin]
            .into_iter()
            .map(|r| (r.as_str(), r.describe()))
            .collect(),
        new_key,
    }))
}

pub(crate) async fn page(
    State(state): State<AppState>,
    viewer: Viewer,
    Query(n): Query<Notice>,
) -> PageResult {
    access_page(&state, &viewer, n.take(), None).await
}

/// A scope from the form's two fields (names and categories, separated by commas); both empty:
/// every token.
fn scope_of(f: &Fields) -> ScopeView {
    let split = |s: &str| -> Vec<String> {
        s.split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect()
    };
    ScopeView {
        tokens: split(f.get("scope_tokens")),
        categories: split(f.get("scope_categories")),
    }
}

pub(crate) async fn add_account(
    State(state): State<AppState>,
    viewer: Viewer,
    body: Bytes,
) -> PageResult {
    let f = Fields::parse(&body);
    viewer.may_change(f.get("csrf"))?;
    let a = create_account(
        &state,
        NewAccount {
            username: f.get("username").to_owned(),
            password: f.get("password").to_owned(),
            role: Some(f.get("role").to_owned()),
            scope: Some(scope_of(&f)),
        },
    )
    .await?;
    Ok(back(
        "/access",
        &format!("Added the {} account {}", a.role, a.username),
    ))
}

pub(crate) async fn account(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(id): Path<i64>,
    body: Bytes,
) -> PageResult {
    let f = Fields::parse(&body);
    viewer.may_change(f.get("csrf"))?;
    let password = f.get("password");
    let a = change_account(
        &state,
        Some(viewer.account_id),
        id,
        AccountChange {
            role: Some(f.get("role").to_owned()),
            scope: Some(scope_of(&f)),
            disabled: Some(f.get("disabled") == "true"),
            password: (!password.is_empty()).then(|| password.to_owned()),
        },
    )
    .await?;
    Ok(back(
        "/access",
        &format!(
            "Saved {}: {}{}{}",
            a.username,
            a.role,
            if a.disabled_at.is_some() {
                ", disabled"
            } else {
                ""
            },
            if password.is_empty() {
                ""
            } else {
                ", new password (its sessions ended)"
            }
        ),
    ))
}

pub(crate) async fn add_key(
    State(state): State<AppState>,
    viewer: Viewer,
    body: Bytes,
) -> PageResult {
    let f = Fields::parse(&body);
    viewer.may_change(f.get("csrf"))?;
    let k = create_key(
        &state,
        NewApiKey {
            name: f.get("name").to_owned(),
            role: Some(f.get("role").to_owned()),
            scope: Some(scope_of(&f)),
        },
    )
    .await?;
    access_page(
        &state,
        &viewer,
        Some(format!("Made the {} key {}", k.key.role, k.key.name)),
        Some((k.key.name, k.secret)),
    )
    .await
}

pub(crate) async fn key(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(id): Path<i64>,
    body: Bytes,
) -> PageResult {
    let f = Fields::parse(&body);
    viewer.may_change(f.get("csrf"))?;
    let k = crate::api::keys::change_key(
        &state,
        None,
        id,
        ApiKeyChange {
            role: Some(f.get("role").to_owned()),
            scope: Some(scope_of(&f)),
        },
    )
    .await?;
    Ok(back(
        "/access",
        &format!("Saved key {}: {}", k.name, k.role),
    ))
}

pub(crate) async fn revoke_key(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(id): Path<i64>,
    body: Bytes,
) -> PageResult {
    let f = Fields::parse(&body);
    viewer.may_change(f.get("csrf"))?;
    if !state.store.revoke_api_key(id, allot_sync::now_ms()).await? {
        return Err(PageError::new(
            axum::http::StatusCode::NOT_FOUND,
            format!("no API key {id} that is not revoked already"),
        ));
    }
    Ok(back("/access", &format!("Revoked key {id}")))
}
