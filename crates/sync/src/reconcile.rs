//! After a walk: every asset whose `assignedCount` differs from the assignments held here has its
//! assignments read again (`?adamId=&pricingParam=`) and replaced. This is how removals are found
//! (deltas do not list them) and how a walk over changing data is made exact.

use std::collections::HashMap;

use allot_apple_client::{walk, AssignmentsQuery, Bearer};
use allot_apple_wire::ResponseAsset;
use allot_store::generation;

use crate::run::{AssignmentSink, SyncError};
use crate::SyncEngine;

impl SyncEngine {
    /// Returns how many assignments were removed.
    pub(crate) async fn reconcile(
        &self,
        token_id: i64,
        bearer: &Bearer,
        assets: &[ResponseAsset],
        run: i64,
    ) -> Result<i64, SyncError> {
        let store = &self.inner.store;
        let held: HashMap<(String, String), i64> = store
            .assignment_counts(token_id)
            .await?
            .into_iter()
            .map(|(a, p, n)| ((a, p), n))
            .collect();
        let differing: Vec<&ResponseAsset> = assets
            .iter()
            .filter(|a| {
                held.get(&(a.adam_id.clone(), a.pricing_param.clone()))
                    .copied()
                    .unwrap_or(0)
                    != i64::from(a.assigned_count)
            })
            .collect();
        if differing.is_empty() {
            return Ok(0);
        }
        tracing::debug!(
            token = token_id,
            assets = differing.len(),
            "re-reading assignments of assets whose counts differ"
        );
        let mut removed = 0;
        // Each re-read is a later step of this run, so it replaces the walk's rows for that asset.
        let gen = generation(run, 1);
        for a in differing {
            let q = AssignmentsQuery {
                adam_id: Some(a.adam_id.clone()),
                pricing_param: Some(a.pricing_param.clone()),
                ..Default::default()
            };
            let mut sink = AssignmentSink::new(self, token_id, gen);
            let apple = &self.inner.apple;
            walk(
                5,
                |i| apple.assignments_page(bearer, &q, i),
                |p| p.assignments.len(),
                &mut sink,
            )
            .await?;
            sink.flush().await?;
            removed += store
                .delete_stale_asset_assignments(token_id, &a.adam_id, &a.pricing_param, gen)
                .await? as i64;
        }
        Ok(removed)
    }
}
