//! What raises alerts: checks run at every schedule tick over what the store (and the MDM
//! connector) say now. Each alert has a dedupe key naming its episode — a token's expiry date and
//! the threshold crossed, the first failed run of a streak, the time an app went low — so checking
//! again raises nothing new, and a condition that ends resolves its open alert.

use allot_domain::Claim;
use allot_store::{NewAlert, Store, StoreError};
use serde_json::json;

const DAY_MS: i64 = 86_400_000;
/// Days before expiry at which `token.expiring` is raised, once each.
pub const EXPIRY_WARNINGS: [i64; 3] = [30, 7, 1];
/// Failed syncs in a row that make `sync.failing`.
pub const FAILING_SYNCS: usize = 3;
/// MDM connector failures in a row that make `mdm.failing`.
pub const FAILING_MDM_CALLS: u64 = 3;

pub fn alert(kind: &str, key: String, summary: String, data: serde_json::Value) -> NewAlert {
    NewAlert {
        event_id: uuid::Uuid::new_v4().to_string(),
        kind: kind.into(),
        dedupe_key: key,
        summary,
        data: data.to_string(),
    }
}

/// Raises what is new and resolves what is over; returns the alerts raised.
pub async fn check(
    store: &Store,
    mdm: Option<allot_deploy::MdmHealth>,
    low_threshold: i64,
    with_ledger: bool,
    now: i64,
) -> Result<Vec<NewAlert>, StoreError> {
    let mut raised = Vec::new();
    let mut raise = |a: NewAlert| raised.push(a);
    tokens(store, now, &mut raise).await?;
    syncs(store, now, &mut raise).await?;
    low_licenses(store, low_threshold, now, &mut raise).await?;
    deployments(store, &mut raise).await?;
    if let Some(h) = mdm {
        mdm_failing(store, &h, now, &mut raise).await?;
    }
    if with_ledger {
        ledger(store, now, &mut raise).await?;
    }
    let mut new = Vec::new();
    for a in raised {
        if store.raise_alert(&a, None, now).await?.is_some() {
            tracing::info!(kind = %a.kind, summary = %a.summary, "alert raised");
            new.push(a);
        }
    }
    Ok(new)
}

async fn tokens(
    store: &Store,
    now: i64,
    raise: &mut impl FnMut(NewAlert),
) -> Result<(), StoreError> {
    let mut open: Vec<String> = Vec::new();
    for t in store.tokens().await? {
        let who = json!({ "tokenId": t.id, "token": t.name, "location": t.location_name, "uId": t.uid, "expiresAt": t.expires_at });
        let revoked = t.auth_error == Some(9625);
        if t.expires_at <= now || t.auth_error == Some(9621) {
            let key = format!("token.expired:{}:{}", t.id, t.expires_at);
            open.push(key.clone());
            raise(alert("token.expired", key, format!("The content token of {} has expired: renew it in Apple Business or School Manager and upload it", t.name), who));
        } else if revoked {
            let key = format!("token.revoked:{}:{}", t.id, t.expires_at);
            open.push(key.clone());
            raise(alert("token.revoked", key, format!("The content token of {} was revoked (a newer one was downloaded): upload the new one", t.name), who));
        } else if let Some(days) = EXPIRY_WARNINGS
            .iter()
            .rev()
            .find(|d| t.expires_at - now <= *d * DAY_MS)
        {
            let key = format!("token.expiring:{}:{}:{days}", t.id, t.expires_at);
            open.push(key.clone());
            let left = ((t.expires_at - now) as f64 / DAY_MS as f64).ceil() as i64;
            raise(alert(
                "token.expiring",
                key,
                format!(
                    "The content token of {} expires in {left} day{}",
                    t.name,
                    if left == 1 { "" } else { "s" }
                ),
                who,
            ));
        }
        if t.claim == Claim::OtherMdm {
            // Apple's mdmInfo of the other MDM, as stored: its name.
            let other = t
                .other_mdm
                .as_deref()
                .and_then(|j| serde_json::from_str::<serde_json::Value>(j).ok())
                .and_then(|v| v.get("name").and_then(|n| n.as_str()).map(str::to_owned))
                .unwrap_or_else(|| "another MDM".into());
            let key = format!("token.claimed:{}:{other}", t.id);
            open.push(key.clone());
            raise(alert("token.claimed", key, format!("{other} has claimed {}: Allot only reads it until an administrator takes it over", t.name), json!({ "tokenId": t.id, "token": t.name, "otherMdm": other })));
        }
    }
    for prefix in [
        "token.expired:",
        "token.revoked:",
        "token.expiring:",
        "token.claimed:",
    ] {
        store.resolve_alerts(prefix, &open, now).await?;
    }
    Ok(())
}

/// `sync.failing` after FAILING_SYNCS failed runs in a row (the streak named by its first run);
/// `sync.recovered` when a run succeeds after it.
async fn syncs(
    store: &Store,
    now: i64,
    raise: &mut impl FnMut(NewAlert),
) -> Result<(), StoreError> {
    let names: std::collections::HashMap<i64, String> = store
        .tokens()
        .await?
        .into_iter()
        .map(|t| (t.id, t.name))
        .collect();
    let runs = store.recent_sync_outcomes(20).await?;
    let mut open = Vec::new();
    let mut by_token: std::collections::BTreeMap<i64, Vec<(i64, bool)>> = Default::default();
    for (token, run, failed) in runs {
        by_token.entry(token).or_default().push((run, failed));
    }
    for (token, runs) in by_token {
        let Some(name) = names.get(&token) else {
            continue;
        };
        // Newest first: the failed streak at the top, or the streak just before the latest success.
        let streak = |from: usize| -> Vec<i64> {
            runs[from..]
                .iter()
                .take_while(|(_, f)| *f)
                .map(|(r, _)| *r)
                .collect()
        };
        let current = streak(0);
        if current.len() >= FAILING_SYNCS {
            let first = *current.last().expect("not empty");
            let key = format!("sync.failing:{token}:{first}");
            open.push(key.clone());
            raise(alert(
                "sync.failing",
                key,
                format!("{} syncs of {name} failed in a row", current.len()),
                json!({ "tokenId": token, "token": name, "failedRuns": current.len(), "firstFailedRun": first }),
            ));
        } else if current.is_empty() && runs.len() > 1 {
            let before = streak(1);
            if before.len() >= FAILING_SYNCS {
                let first = *before.last().expect("not empty");
                raise(alert(
                    "sync.recovered",
                    format!("sync.recovered:{token}:{first}"),
                    format!("{name} syncs again after {} failures", before.len()),
                    json!({ "tokenId": token, "token": name, "run": runs[0].0 }),
                ));
            }
        }
    }
    store.resolve_alerts("sync.failing:", &open, now).await?;
    Ok(())
}

/// `licenses.low` once per crossing: an app deployments draw on whose free licenses fell to the
/// threshold; resolved when licenses are free again (the next crossing raises anew).
async fn low_licenses(
    store: &Store,
    threshold: i64,
    now: i64,
    raise: &mut impl FnMut(NewAlert),
) -> Result<(), StoreError> {
    let open_alerts = store.alerts(true, 10_000).await?;
    let names: std::collections::HashMap<i64, String> = store
        .tokens()
        .await?
        .into_iter()
        .map(|t| (t.id, t.name))
        .collect();
    let mut keep = Vec::new();
    for (token, adam, pricing, available, total, threshold) in
        store.low_deployed_assets(threshold).await?
    {
        let prefix = format!("licenses.low:{token}:{adam}:{pricing}:");
        if let Some(a) = open_alerts
            .iter()
            .find(|a| a.dedupe_key.starts_with(&prefix))
        {
            keep.push(a.dedupe_key.clone());
            continue;
        }
        let key = format!("{prefix}{now}");
        keep.push(key.clone());
        let app = store
            .metadata(&adam)
            .await?
            .map(|m| m.name)
            .unwrap_or_else(|| format!("adamId {adam}"));
        let token_name = names.get(&token).cloned().unwrap_or_default();
        raise(alert(
            "licenses.low",
            key,
            format!("{app} has {available} of {total} licenses free on {token_name}"),
            json!({ "tokenId": token, "token": token_name, "adamId": adam, "pricingParam": pricing, "name": app, "available": available, "total": total, "threshold": threshold }),
        ));
    }
    store.resolve_alerts("licenses.low:", &keep, now).await?;
    Ok(())
}

/// `deployment.finished` when nothing of a deployment is moving any more (once per settling: the
/// episode is its last target change), with its failures counted.
async fn deployments(store: &Store, raise: &mut impl FnMut(NewAlert)) -> Result<(), StoreError> {
    let changed = store.last_target_changes().await?;
    let mut all_counts = store.all_target_counts().await?;
    for d in store.deployments().await? {
        if d.ending.is_some() {
            continue;
        }
        let counts = all_counts.remove(&d.id).unwrap_or_default();
        let total: i64 = counts.iter().map(|c| c.1).sum();
        let moving = counts
            .iter()
            .any(|(s, n)| *n > 0 && allot_deploy::status::MOVING.contains(&s.as_str()));
        let Some(at) = changed.get(&d.id) else {
            continue;
        };
        if total == 0 || moving {
            continue;
        }
        let failed = counts.iter().find(|c| c.0 == "failed").map_or(0, |c| c.1);
        let app = store
            .metadata(&d.adam_id)
            .await?
            .map(|m| m.name)
            .unwrap_or_else(|| format!("adamId {}", d.adam_id));
        let statuses: serde_json::Map<String, serde_json::Value> =
            counts.iter().map(|(s, n)| (s.clone(), json!(n))).collect();
        raise(alert(
            "deployment.finished",
            format!("deployment.finished:{}:{at}", d.id),
            if failed > 0 {
                format!(
                    "Deployment {} ({} {app}) settled with {failed} failed target{}",
                    d.id,
                    d.action,
                    if failed == 1 { "" } else { "s" }
                )
            } else {
                format!(
                    "Deployment {} ({} {app}) settled: nothing failed",
                    d.id, d.action
                )
            },
            json!({ "deploymentId": d.id, "adamId": d.adam_id, "name": app, "action": d.action, "failed": failed, "statuses": statuses }),
        ));
    }
    Ok(())
}

/// `mdm.failing` after FAILING_MDM_CALLS failed calls to NanoMDM in a row (the episode: when the
/// streak began); resolved when it answers again.
async fn mdm_failing(
    store: &Store,
    h: &allot_deploy::MdmHealth,
    now: i64,
    raise: &mut impl FnMut(NewAlert),
) -> Result<(), StoreError> {
    let mut open = Vec::new();
    if h.consecutive_failures >= FAILING_MDM_CALLS {
        // The streak began after the last success (or at the first error we know of).
        let since = h.last_success_at.unwrap_or(0);
        let key = format!("mdm.failing:{since}");
        open.push(key.clone());
        let error = h.last_error.clone().unwrap_or_default();
        raise(alert(
            "mdm.failing",
            key,
            format!(
                "NanoMDM failed {} times in a row: {error}",
                h.consecutive_failures
            ),
            json!({ "consecutiveFailures": h.consecutive_failures, "lastError": error, "nextAttemptAt": h.next_attempt_at }),
        ));
    }
    store.resolve_alerts("mdm.failing:", &open, now).await?;
    Ok(())
}

/// `ledger.drift` while the ledger has differences (orphans, leaks, missing licenses): raised when
/// they appear, resolved when a clean-up (or the reconcile loop) leaves none.
async fn ledger(
    store: &Store,
    now: i64,
    raise: &mut impl FnMut(NewAlert),
) -> Result<(), StoreError> {
    const SHOWN: i64 = 10_000;
    let rows = store.ledger_diff(None, SHOWN).await?;
    let mut keep = Vec::new();
    if !rows.is_empty() {
        let count = |k: &str| rows.iter().filter(|r| r.kind == k).count();
        let (orphans, leaks, missing) = (count("orphan"), count("leak"), count("missing"));
        let open = store.alerts(true, 10_000).await?;
        match open
            .iter()
            .find(|a| a.dedupe_key.starts_with("ledger.drift:"))
        {
            Some(a) => keep.push(a.dedupe_key.clone()),
            None => {
                let key = format!("ledger.drift:{now}");
                keep.push(key.clone());
                let more = if rows.len() as i64 >= SHOWN {
                    " or more"
                } else {
                    ""
                };
                raise(alert(
                    "ledger.drift",
                    key,
                    format!("The license ledger differs from Apple: {orphans} orphans, {leaks} leaks, {missing} missing{more}"),
                    json!({ "orphans": orphans, "leaks": leaks, "missing": missing }),
                ));
            }
        }
    }
    store.resolve_alerts("ledger.drift:", &keep, now).await?;
    Ok(())
}
