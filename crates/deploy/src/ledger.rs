//! `ledger clean`: licenses the ledger diff lists as orphans or leaks are given back to Apple, in
//! batches of Apple's published limits (the client paces each token), and every one is recorded
//! with who asked and what Apple answered. A request whose outcome is unknown is not resent: the
//! next diff says whether the license is still there.

use std::collections::BTreeMap;

use allot_apple_client::AppleError;
use allot_apple_wire::{limit, AssetRef, ManageAssetsRequest};
use allot_store::{LedgerAction, LedgerRow};
use allot_sync::SyncEngine;

use crate::DeployError;

/// One disassociate request's scope: token, adamId, pricing, holder kind.
type Batch = (i64, String, String, String);

/// Gives back the licenses of these rows (orphans and leaks; others are refused) and records
/// each. Returns what was done, row by row, in the rows' order.
pub async fn clean(
    engine: &SyncEngine,
    rows: Vec<LedgerRow>,
    actor: &str,
) -> Result<Vec<LedgerAction>, DeployError> {
    let store = engine.store();
    let now = allot_sync::now_ms();
    let action = |r: &LedgerRow, event_id: Option<String>, outcome: String| LedgerAction {
        at: now,
        actor: actor.to_owned(),
        kind: r.kind.clone(),
        token_id: r.token_id,
        adam_id: r.adam_id.clone(),
        pricing: r.pricing_param.clone(),
        holder_kind: r.holder_kind.clone(),
        holder: r.holder.clone(),
        event_id,
        outcome,
    };
    let mut done: Vec<(usize, LedgerAction)> = Vec::new();
    // (token, adamId, pricing, kind) → rows to give back there, by their place in `rows`.
    let mut batches: BTreeMap<Batch, Vec<(usize, LedgerRow)>> = BTreeMap::new();
    for (i, r) in rows.into_iter().enumerate() {
        if r.kind == "orphan" || r.kind == "leak" {
            batches
                .entry((
                    r.token_id,
                    r.adam_id.clone(),
                    r.pricing_param.clone(),
                    r.holder_kind.clone(),
                ))
                .or_default()
                .push((i, r));
        } else {
            let a = action(
                &r,
                None,
                "not revoked: a missing license is claimed again by its deployment".into(),
            );
            done.push((i, a));
        }
    }
    for ((token_id, adam_id, pricing, kind), rows) in batches {
        let token = store.token(token_id).await?;
        let usable = token
            .as_ref()
            .map(|t| crate::unusable(t, now))
            .unwrap_or_else(|| Some("its token was deleted".into()));
        let (Some(token), None) = (token, usable.clone()) else {
            let why = usable.unwrap_or_default();
            done.extend(
                rows.iter()
                    .map(|(i, r)| (*i, action(r, None, format!("not revoked: {why}")))),
            );
            continue;
        };
        let bearer = engine
            .bearer_of(&token)
            .map_err(|e| DeployError::Invalid(e.to_string()))?;
        let max = engine
            .apple()
            .request_limit(if kind == "user" {
                limit::MAX_CLIENT_USER_IDS
            } else {
                limit::MAX_SERIAL_NUMBERS
            })
            .await;
        for chunk in rows.chunks(max.max(1)) {
            let holders: Vec<String> = chunk.iter().map(|(_, r)| r.holder.clone()).collect();
            let mut req = ManageAssetsRequest {
                assets: vec![AssetRef::new(&adam_id, &pricing)],
                ..Default::default()
            };
            if kind == "user" {
                req.client_user_ids = holders;
            } else {
                req.serial_numbers = holders;
            }
            let (event, outcome) = match engine.apple().disassociate(&bearer, &req).await {
                Ok(e) => (Some(e.event_id), "requested".to_owned()),
                Err(AppleError::OutcomeUnknown(_)) => (
                    None,
                    "unknown: Apple's answer was lost; run the diff again to see whether it is still held"
                        .to_owned(),
                ),
                Err(e) => (None, format!("Apple refused: {e}")),
            };
            let asked: Vec<(usize, LedgerAction)> = chunk
                .iter()
                .map(|(i, r)| (*i, action(r, event.clone(), outcome.clone())))
                .collect();
            // Recorded as each request is answered: a crash later in the clean-up loses no
            // record of what Apple was already asked.
            let rows: Vec<LedgerAction> = asked.iter().map(|(_, a)| a.clone()).collect();
            store.record_ledger_actions(&rows).await?;
            done.extend(asked);
        }
    }
    // What was not asked (missing licenses, unusable tokens) is recorded too, with why not.
    let skipped: Vec<LedgerAction> = done
        .iter()
        .filter(|(_, a)| a.event_id.is_none() && a.outcome.starts_with("not revoked"))
        .map(|(_, a)| a.clone())
        .collect();
    store.record_ledger_actions(&skipped).await?;
    done.sort_by_key(|(i, _)| *i);
    Ok(done.into_iter().map(|(_, a)| a).collect())
}
