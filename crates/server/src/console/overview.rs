//! The front page answers "is anything wrong?": tokens in trouble, deployments with targets that
//! failed or wait, apps low on licenses, subscriptions whose period's end will take people off,
//! and the MDM connector — each with a link to where it is dealt with, or "all clear".

use askama::Template;
use axum::extract::{Query, State};

use allot_domain::TokenState;

use super::{format, render, Chrome, Notice, PageError, PageResult, Viewer};
use crate::AppState;

/// Statuses that need an administrator's eye on a deployment.
const NEEDS_A_LOOK: &[&str] = &["failed", "waiting_for_license", "needs_user"];

/// Tokens in trouble named one by one, the worst first; the rest are counted by state, each
/// count linking to the tokens page showing that state (hundreds of tokens expiring in one month
/// are a number, not a wall of names, and cost the front page no read of their rows).
const TOKENS_NAMED: usize = 10;

/// The order of concern: a revoked token stops everything, an expiring one can wait a little.
fn severity(s: TokenState) -> u8 {
    match s {
        TokenState::Revoked => 0,
        TokenState::Expired => 1,
        TokenState::ClaimedByOtherMdm => 2,
        TokenState::Failing => 3,
        TokenState::Stale => 4,
        TokenState::Expiring => 5,
        TokenState::Syncing | TokenState::Healthy => 6,
    }
}

/// Of the tokens in trouble (in name order), the ones to name, worst first, and how many more
/// there are of each state, worst first.
fn named_and_counted(
    judged: impl IntoIterator<Item = (i64, TokenState)>,
    named: usize,
) -> (Vec<i64>, Vec<(TokenState, usize)>) {
    let mut troubled: Vec<(i64, TokenState)> = judged
        .into_iter()
        .filter(|(_, s)| !matches!(s, TokenState::Healthy | TokenState::Syncing))
        .collect();
    troubled.sort_by_key(|(_, s)| severity(*s));
    let ids = troubled.iter().take(named).map(|(id, _)| *id).collect();
    let mut more: Vec<(TokenState, usize)> = Vec::new();
    for (_, s) in troubled.into_iter().skip(named) {
        match more.last_mut() {
            Some((last, n)) if *last == s => *n += 1,
            _ => more.push((s, 1)),
        }
    }
    (ids, more)
}

async fn tokens_in_trouble(state: &AppState) -> Result<Vec<Trouble>, PageError> {
    let judged = crate::api::tokens::judged_needing_attention(state)
        .await?
        .into_iter()
        .map(|(t, s)| (t.id, s));
    let (named, more) = named_and_counted(judged, TOKENS_NAMED);
    let mut views = crate::api::tokens::views_of(state, &named).await?;
    views.sort_by_key(|v| named.iter().position(|id| *id == v.id));
    let mut items: Vec<Trouble> = super::tokens::lines_of(views)
        .into_iter()
        .map(|t| Trouble {
            what: t.name,
            detail: match &t.error {
                Some(e) => format!("{} — {e}", t.state_words),
                None => format!("{} (expires {})", t.state_words, t.expiry_words),
            },
            link: "/tokens".into(),
        })
        .collect();
    items.extend(more.into_iter().map(|(s, n)| Trouble {
        what: format!(
            "{n} more {} {}",
            if n == 1 { "token" } else { "tokens" },
            match s {
                TokenState::Revoked => "revoked",
                TokenState::Expired => "expired",
                TokenState::ClaimedByOtherMdm => "claimed by another MDM",
                TokenState::Failing => "failing to sync",
                TokenState::Stale => "not synced lately",
                _ => "expiring within 30 days",
            }
        ),
        detail: String::new(),
        link: format!("/tokens?state={}", s.as_str()),
    }));
    Ok(items)
}

pub(crate) struct Trouble {
    pub what: String,
    pub detail: String,
    pub link: String,
}

pub(crate) struct Section {
    pub title: &'static str,
    pub id: &'static str,
    pub items: Vec<Trouble>,
}

#[derive(Template)]
#[template(path = "overview.html")]
struct OverviewPage {
    chrome: Chrome,
    /// Only the sections with something in them.
    sections: Vec<Section>,
    connector: Option<String>,
}

pub(crate) async fn page(
    State(state): State<AppState>,
    viewer: Viewer,
    Query(q): Query<Notice>,
) -> PageResult {
    let tokens = tokens_in_trouble(&state).await?;
    let mut deployments = Vec::new();
    let all = state.store.deployments().await?;
    let mut all_counts = state.store.all_target_counts().await?;
    for d in all
        .into_iter()
        .filter(|d| crate::access::sees_all(&d.token_ids))
    {
        let counts = all_counts.remove(&d.id).unwrap_or_default();
        let troubled: Vec<String> = counts
            .iter()
            .filter(|(s, n)| *n > 0 && NEEDS_A_LOOK.contains(&s.as_str()))
            .map(|(s, n)| format!("{n} {}", allot_domain::labels::label(s).to_lowercase()))
            .collect();
        if troubled.is_empty() {
            continue;
        }
        let app = state
            .store
            .metadata(&d.adam_id)
            .await?
            .map(|m| m.name)
            .unwrap_or_else(|| format!("adamId {}", d.adam_id));
        deployments.push(Trouble {
            what: format!("Deployment {}: {} {app}", d.id, d.action),
            detail: troubled.join(", "),
            link: format!("/deployments/{}", d.id),
        });
    }
    let (rows, _) = state
        .store
        .app_licenses(&allot_store::AppFilter {
            low: true,
            tokens_in: crate::access::token_ids(),
            sort: allot_store::AppSort::Available,
            limit: 10,
            ..Default::default()
        })
        .await?;
    let low = rows
        .into_iter()
        .filter(|a| !a.unlimited)
        .map(|a| Trouble {
            what: a
                .name
                .clone()
                .unwrap_or_else(|| format!("adamId {}", a.adam_id)),
            detail: format!(
                "{} of {} licenses free on {}",
                a.available, a.total, a.token_name
            ),
            link: format::app_link(a.token_id, &a.adam_id, &a.pricing),
        })
        .collect();
    let subscriptions = crate::api::subscriptions::views(&state, None)
        .await?
        .into_iter()
        .filter(|s| s.forecast.users_losing_access > 0)
        .map(|s| Trouble {
            what: format!(
                "{} (subscription {})",
                s.app_name
                    .clone()
                    .unwrap_or_else(|| format!("adamId {}", s.parent_adam_id)),
                s.adam_id
            ),
            detail: format!(
                "{} people lose it when the period ends{}",
                s.forecast.users_losing_access,
                s.period_end
                    .as_deref()
                    .map(|e| format!(" on {e}"))
                    .unwrap_or_default()
            ),
            link: "/subscriptions".into(),
        })
        .collect();
    let now = allot_sync::now_ms();
    let open = state.store.alerts(true, 20).await?;
    let alerts = crate::api::webhooks::visible_alerts(&state, open)
        .await?
        .into_iter()
        .map(|a| Trouble {
            what: allot_domain::labels::label(&a.kind).to_owned(),
            detail: format!("{} ({})", a.summary, format::ago(a.raised_at, now)),
            link: "/alerts".into(),
        })
        .collect();
    let c = super::connector::mdm_connector(&state).await?;
    let connector = (c.failing || c.push_last_hour > 0).then(|| {
        if c.failing {
            c.words
        } else {
            format!(
                "{} devices could not be pushed in the last hour",
                c.push_last_hour
            )
        }
    });
    let sections = [
        ("Alerts", "overview-alerts", alerts),
        ("Tokens that need you", "overview-tokens", tokens),
        (
            "Deployments with targets that failed or wait",
            "overview-deployments",
            deployments,
        ),
        ("Apps low on licenses", "overview-low", low),
        (
            "Subscriptions that will take people off",
            "overview-subscriptions",
            subscriptions,
        ),
    ]
    .into_iter()
    .filter(|(_, _, items)| !items.is_empty())
    .map(|(title, id, items)| Section { title, id, items })
    .collect();
    Ok(render(&OverviewPage {
        chrome: viewer.chrome("overview", q.take()),
        sections,
        connector,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_worst_tokens_are_named_and_the_rest_counted_by_state() {
        use TokenState::*;
        let judged = [
            (1, Expiring),
            (2, Healthy),
            (3, Failing),
            (4, Expiring),
            (5, Revoked),
            (6, Syncing),
            (7, Expiring),
            (8, Failing),
            (9, Stale),
        ];
        let (named, more) = named_and_counted(judged, 3);
        assert_eq!(named, [5, 3, 8], "revoked, then failing, in name order");
        assert_eq!(more, [(Stale, 1), (Expiring, 3)]);
        let (named, more) = named_and_counted(judged, 10);
        assert_eq!(named, [5, 3, 8, 9, 1, 4, 7]);
        assert!(more.is_empty());
        let (named, more) = named_and_counted([(1, Healthy), (2, Syncing)], 10);
        assert!(named.is_empty() && more.is_empty(), "all clear");
    }
}
