//! Scopes: the tokens (locations) a console account or API key works with — a school district's
//! admins each run their own school. A scope names tokens and token categories; a scoped identity
//! sees only those tokens' apps, counts, deployments, reports and ledger rows, and draws licenses
//! only from them. People, devices and collections stay shared.
//!
//! The authenticating extractors (`Caller`, `Viewer`) resolve the scope to a set of token ids for
//! the request being served; `sees` and `filter` read it from there, so a lookup of a token
//! (`api::tokens::find`) and every list of token rows check it in one way.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use axum::extract::Request;
use axum::middleware::Next;
use axum::response::Response;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::error::ApiError;
use crate::AppState;

/// A scope as the API reads and writes it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ScopeView {
    /// Tokens by name or id (answers give names).
    #[serde(default)]
    pub tokens: Vec<String>,
    /// Token categories: every token with one of them, including tokens added later.
    #[serde(default)]
    pub categories: Vec<String>,
}

impl ScopeView {
    fn is_empty(&self) -> bool {
        self.tokens.is_empty() && self.categories.is_empty()
    }
}

/// A scope as stored (the `scope` column): token ids, so a renamed token stays in it.
#[derive(Debug, Default, Serialize, Deserialize)]
struct Stored {
    #[serde(default)]
    tokens: Vec<i64>,
    #[serde(default)]
    categories: Vec<String>,
}

/// The column value for a requested scope (`None`: every token). Unknown tokens are refused,
/// naming them.
pub(crate) async fn to_stored(
    state: &AppState,
    scope: Option<&ScopeView>,
) -> Result<Option<String>, ApiError> {
    let Some(scope) = scope.filter(|s| !s.is_empty()) else {
        return Ok(None);
    };
    let all = state.store.token_labels().await?;
    let mut stored = Stored::default();
    for key in &scope.tokens {
        let key = key.trim();
        let t = all
            .iter()
            .find(|t| t.id.to_string() == key)
            .or_else(|| all.iter().find(|t| t.name == key))
            .ok_or_else(|| ApiError::invalid(format!("scope: no token with id or name {key:?}")))?;
        if !stored.tokens.contains(&t.id) {
            stored.tokens.push(t.id);
        }
    }
    for c in &scope.categories {
        let c = crate::input::check_text("scope category", c, 100).map_err(ApiError::invalid)?;
        if !c.is_empty() && !stored.categories.contains(&c) {
            stored.categories.push(c);
        }
    }
    Ok(Some(
        serde_json::to_string(&stored).map_err(|e| ApiError::internal(e.to_string()))?,
    ))
}

fn parse(stored: &str) -> Stored {
    // Written only by `to_stored`; anything unreadable scopes to nothing rather than everything.
    serde_json::from_str(stored).unwrap_or_default()
}

/// A stored scope as the API shows it (token names; a deleted token is left out).
pub(crate) async fn view(
    state: &AppState,
    stored: Option<&str>,
) -> Result<Option<ScopeView>, ApiError> {
    if stored.is_none() {
        return Ok(None);
    }
    Ok(view_named(
        &crate::console::token_names(state).await?,
        stored,
    ))
}

/// The same with every token's name at hand (lists of accounts or keys).
pub(crate) fn view_named(
    names: &std::collections::HashMap<i64, String>,
    stored: Option<&str>,
) -> Option<ScopeView> {
    let s = parse(stored?);
    Some(ScopeView {
        tokens: s
            .tokens
            .iter()
            .filter_map(|id| names.get(id).cloned())
            .collect(),
        categories: s.categories,
    })
}

/// The scope in words, for pages: "every token" or the names and categories.
pub(crate) fn words(view: Option<&ScopeView>) -> String {
    match view {
        None => "every token".into(),
        Some(v) => {
            let mut parts: Vec<String> = v.tokens.clone();
            parts.extend(v.categories.iter().map(|c| format!("category {c}")));
            if parts.is_empty() {
                "no token".into()
            } else {
                parts.join(", ")
            }
        }
    }
}

/// The token ids a stored scope covers now (`None`: every token).
pub(crate) async fn resolve(
    state: &AppState,
    stored: Option<&str>,
) -> Result<Option<Arc<HashSet<i64>>>, ApiError> {
    let Some(stored) = stored else {
        return Ok(None);
    };
    let s = parse(stored);
    let tokens = state.store.token_labels().await?;
    let ids = tokens
        .iter()
        .filter(|t| {
            s.tokens.contains(&t.id) || t.categories.iter().any(|c| s.categories.contains(c))
        })
        .map(|t| t.id)
        .collect();
    Ok(Some(Arc::new(ids)))
}

type Slot = Arc<Mutex<Option<Arc<HashSet<i64>>>>>;

tokio::task_local! {
    static SCOPE: Slot;
}

/// Gives every request a place for its scope, filled when its caller is authenticated.
pub(crate) async fn per_request(req: Request, next: Next) -> Response {
    SCOPE.scope(Slot::default(), next.run(req)).await
}

/// The scope of the request being served (set by the authenticating extractors).
pub(crate) fn set(scope: Option<Arc<HashSet<i64>>>) {
    let _ = SCOPE.try_with(|s| *s.lock().expect("scope slot") = scope);
}

/// The token ids the request may see; `None`: every token (unscoped, or not a request).
pub(crate) fn current() -> Option<Arc<HashSet<i64>>> {
    SCOPE
        .try_with(|s| s.lock().expect("scope slot").clone())
        .ok()
        .flatten()
}

/// The token ids the request may see, as a list for SQL (`None`: every token).
pub(crate) fn token_ids() -> Option<Vec<i64>> {
    current().map(|s| {
        let mut ids: Vec<i64> = s.iter().copied().collect();
        ids.sort_unstable();
        ids
    })
}

/// True when the request may see this token.
pub(crate) fn sees(token_id: i64) -> bool {
    current().is_none_or(|s| s.contains(&token_id))
}

/// True when the request may see something drawing from these tokens (a deployment, a plan):
/// unscoped, or every one of them in scope — "every usable token" (none named) is not.
pub(crate) fn sees_all(token_ids: &[i64]) -> bool {
    match current() {
        None => true,
        Some(s) => !token_ids.is_empty() && token_ids.iter().all(|t| s.contains(t)),
    }
}

/// True when the request is scoped to some tokens.
pub(crate) fn is_scoped() -> bool {
    current().is_some()
}

/// The rows of tokens the request may see.
pub(crate) fn filter<T>(rows: Vec<T>, token_of: impl Fn(&T) -> i64) -> Vec<T> {
    match current() {
        None => rows,
        Some(s) => rows
            .into_iter()
            .filter(|r| s.contains(&token_of(r)))
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unreadable_stored_scope_covers_nothing() {
        let s = parse("not json");
        assert!(s.tokens.is_empty() && s.categories.is_empty());
    }

    #[test]
    fn words_name_tokens_and_categories() {
        assert_eq!(words(None), "every token");
        let v = ScopeView {
            tokens: vec!["North High".into()],
            categories: vec!["schools".into()],
        };
        assert_eq!(words(Some(&v)), "North High, category schools");
    }

    #[tokio::test]
    async fn filter_and_sees_follow_the_request_scope() {
        let slot = Slot::default();
        SCOPE
            .scope(slot, async {
                assert!(sees(7));
                set(Some(Arc::new([1, 2].into_iter().collect())));
                assert!(sees(1) && !sees(7));
                assert_eq!(filter(vec![1, 2, 7], |t| *t), vec![1, 2]);
            })
            .await;
        // Outside a request (the reconcile loop): every token.
        assert!(sees(7));
    }
}
