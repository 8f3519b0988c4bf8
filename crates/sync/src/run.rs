//! One sync of one token. Full: every user, assignment and asset, streamed into the store page by
//! page; rows that disappeared at Apple disappear here. Delta: users and assignments changed since
//! the last `versionId`, assets re-read. Both end by comparing each asset's `assignedCount` with
//! the assignments held here and re-reading the assets that differ, which catches what deltas do
//! not show (removals) and what a walk over changing data missed.

use allot_apple_client::{
    walk, AppleError, AssignmentsQuery, Bearer, PageSink, SinkError, UsersQuery, WalkError,
};
use allot_apple_wire::{codes, GetAssignmentsResponse, GetUsersResponse, MdmInfo, ResponseAsset};
use allot_domain::Claim;
use allot_store::{generation, AssignmentRow, Holder, StoreError, SyncCounts, TokenRow, UserRow};

use std::collections::HashMap;

use crate::{now_ms, Progress, SyncEngine};

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SyncKind {
    Full,
    Delta,
}

impl SyncKind {
    pub fn as_str(self) -> &'static str {
        match self {
            SyncKind::Full => "full",
            SyncKind::Delta => "delta",
        }
    }
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct SyncOutcome {
    pub run_id: i64,
    pub kind: SyncKind,
    pub reason: String,
    pub counts: SyncCounts,
    /// Something to tell the administrator that did not stop the sync.
    pub warning: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error("a sync of this token is already running")]
    AlreadyRunning,
    #[error("no token with id {0}")]
    NotFound(i64),
    #[error("this sync stalled past its lease and another run of the token took over; it stopped")]
    LeaseLost,
    #[error(transparent)]
    Apple(#[from] AppleError),
    #[error("{0}")]
    Walk(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("the stored token cannot be decrypted: {0}")]
    Secret(#[from] allot_secrets::SecretError),
}

impl From<WalkError> for SyncError {
    fn from(e: WalkError) -> Self {
        match e {
            WalkError::Apple(a) => SyncError::Apple(a),
            other => SyncError::Walk(other.to_string()),
        }
    }
}

impl From<crate::TokenError> for SyncError {
    fn from(e: crate::TokenError) -> Self {
        match e {
            crate::TokenError::Secret(s) => SyncError::Secret(s),
            crate::TokenError::Store(s) => SyncError::Store(s),
            other => SyncError::Walk(other.to_string()),
        }
    }
}

/// Requests the five-at-a-time walks may have in flight.
const PARALLEL: usize = 5;

impl SyncEngine {
    /// Starts a sync in the background; returns its run id, or `AlreadyRunning`.
    pub async fn start_sync(
        &self,
        token_id: i64,
        kind: SyncKind,
        reason: &str,
    ) -> Result<i64, SyncError> {
        self.start_sync_in(token_id, kind, reason, None).await
    }

    /// Starts a sync in the background, in `slot` when the caller holds one (the schedule takes
    /// a free slot before the lease, so it never leases more tokens than it can run now).
    pub(crate) async fn start_sync_in(
        &self,
        token_id: i64,
        kind: SyncKind,
        reason: &str,
        slot: Option<tokio::sync::OwnedSemaphorePermit>,
    ) -> Result<i64, SyncError> {
        let run = self.begin(token_id, kind, reason).await?;
        let me = self.clone();
        let reason = reason.to_owned();
        tokio::spawn(async move {
            if let Err(e) = me.finish(token_id, run, kind, &reason, slot).await {
                tracing::warn!(token = token_id, run, error = %e, "sync failed");
            }
            me.inner.slot_freed.notify_one();
        });
        Ok(run)
    }

    /// Runs a sync to its end.
    pub async fn sync(
        &self,
        token_id: i64,
        kind: SyncKind,
        reason: &str,
    ) -> Result<SyncOutcome, SyncError> {
        let run = self.begin(token_id, kind, reason).await?;
        self.finish(token_id, run, kind, reason, None).await
    }

    /// Takes the token's lease and records the run.
    async fn begin(&self, token_id: i64, kind: SyncKind, reason: &str) -> Result<i64, SyncError> {
        let store = &self.inner.store;
        store
            .token(token_id)
            .await?
            .ok_or(SyncError::NotFound(token_id))?;
        let now = now_ms();
        let until = now + self.inner.config.lease.as_millis() as i64;
        // The lease names this run, not this instance: a second sync of the token started here
        // (a manual one, the schedule) is refused like one started by another instance.
        let lease = format!(
            "{}/{}",
            self.inner.lease_owner,
            uuid::Uuid::new_v4().simple()
        );
        if !store.try_lease(token_id, &lease, now, until).await? {
            return Err(SyncError::AlreadyRunning);
        }
        let run = match store
            .start_sync_run(token_id, kind.as_str(), reason, now)
            .await
        {
            Ok(run) => run,
            Err(e) => {
                store.release_lease(token_id, &lease).await?;
                return Err(e.into());
            }
        };
        self.run_leases().insert(run, lease);
        self.set_progress(
            token_id,
            Progress {
                run_id: run,
                kind: kind.as_str().into(),
                phase: "waiting".into(),
                pages: 0,
                pages_total: 0,
            },
        );
        Ok(run)
    }

    async fn finish(
        &self,
        token_id: i64,
        run: i64,
        kind: SyncKind,
        reason: &str,
        slot: Option<tokio::sync::OwnedSemaphorePermit>,
    ) -> Result<SyncOutcome, SyncError> {
        let store = &self.inner.store;
        let result = {
            let _slot = match slot {
                Some(s) => s,
                None => self
                    .inner
                    .slots
                    .clone()
                    .acquire_owned()
                    .await
                    .expect("the semaphore is never closed"),
            };
            self.run(token_id, run, kind, reason).await
        };
        let now = now_ms();
        match &result {
            Ok(o) => {
                store
                    .finish_sync_run(run, "succeeded", o.counts, o.warning.as_deref(), now)
                    .await?;
                tracing::info!(token = token_id, run, kind = o.kind.as_str(), counts = ?o.counts, "sync finished");
            }
            Err(e) => {
                let msg = e.to_string();
                store
                    .finish_sync_run(run, "failed", SyncCounts::default(), Some(&msg), now)
                    .await?;
                store.set_last_error(token_id, Some(&msg), now).await?;
                if let SyncError::Apple(a @ (AppleError::TokenExpired | AppleError::TokenRevoked)) =
                    e
                {
                    store
                        .set_auth_error(token_id, a.error_number(), now)
                        .await?;
                }
            }
        }
        let lease = self.run_leases().remove(&run);
        if let Some(lease) = lease {
            store.release_lease(token_id, &lease).await?;
        }
        self.inner
            .progress
            .lock()
            .expect("progress lock")
            .remove(&token_id);
        result
    }

    fn run_leases(&self) -> std::sync::MutexGuard<'_, HashMap<i64, String>> {
        self.inner.run_leases.lock().expect("run leases lock")
    }

    /// Renews the lease of a run of this process; an error if another run took it (this one
    /// was stalled past its lease and must stop).
    pub(crate) async fn keep_lease(&self, token_id: i64, run: i64) -> Result<(), SyncError> {
        let lease = self.run_leases().get(&run).cloned();
        let Some(lease) = lease else {
            return Err(SyncError::LeaseLost);
        };
        let now = now_ms();
        let until = now + self.inner.config.lease.as_millis() as i64;
        if self
            .inner
            .store
            .try_lease(token_id, &lease, now, until)
            .await?
        {
            Ok(())
        } else {
            Err(SyncError::LeaseLost)
        }
    }

    /// After a restart: the sync leases of this instance's previous process are freed and its
    /// runs marked interrupted, so their tokens sync again at once.
    pub async fn recover_after_restart(&self) -> Result<u64, SyncError> {
        let store = &self.inner.store;
        store
            .release_leases_of_instance(&self.inner.lease_owner)
            .await?;
        Ok(store.interrupt_abandoned_runs(now_ms()).await?)
    }

    fn set_progress(&self, token_id: i64, p: Progress) {
        self.inner
            .progress
            .lock()
            .expect("progress lock")
            .insert(token_id, p);
    }

    fn update_progress(&self, token_id: i64, f: impl FnOnce(&mut Progress)) {
        if let Some(p) = self
            .inner
            .progress
            .lock()
            .expect("progress lock")
            .get_mut(&token_id)
        {
            f(p);
        }
    }

    async fn run(
        &self,
        token_id: i64,
        run: i64,
        mut kind: SyncKind,
        reason: &str,
    ) -> Result<SyncOutcome, SyncError> {
        let store = &self.inner.store;
        let apple = &self.inner.apple;
        let t = store
            .token(token_id)
            .await?
            .ok_or(SyncError::NotFound(token_id))?;
        let bearer = self.bearer(&t)?;
        let mut reason = reason.to_owned();
        let mut warnings = Vec::new();

        // Who holds the location, and is our database older than what we last told Apple?
        self.update_progress(token_id, |p| p.phase = "checking the token".into());
        let config = apple.client_config(&bearer).await?;
        store
            .set_location(
                token_id,
                config.location_name.as_deref().unwrap_or(""),
                config.country_iso2a_code.as_deref().unwrap_or(""),
            )
            .await?;
        let ours = self.is_ours(config.mdm_info.as_ref());
        let mut claim = t.claim;
        if !ours && claim == Claim::Ours {
            claim = Claim::OtherMdm;
            store
                .set_claim(
                    token_id,
                    claim,
                    crate::tokens::other_mdm_json(claim, &config).as_deref(),
                    now_ms(),
                )
                .await?;
            warnings.push("another MDM has claimed this location: Allot no longer changes it until you take it over".to_owned());
            tracing::warn!(token = token_id, "another MDM claimed the location");
        }
        let remote_serial = if ours {
            serial_of(config.mdm_info.as_ref())
        } else {
            0
        };
        if remote_serial > t.sync_serial {
            kind = SyncKind::Full;
            reason = "restore".into();
            tracing::warn!(
                token = token_id,
                local = t.sync_serial,
                remote = remote_serial,
                "database is older than Apple's record of our syncs: full resync"
            );
        } else if kind == SyncKind::Delta
            && (t.full_sync_wanted || t.assignments_version.is_none() || t.users_version.is_none())
        {
            kind = SyncKind::Full;
        }
        store.set_sync_run_kind(run, kind.as_str(), &reason).await?;
        if kind == SyncKind::Full {
            // Until this run finishes, the next one must be full too.
            store.set_full_sync_wanted(token_id, true).await?;
        }
        self.update_progress(token_id, |p| p.kind = kind.as_str().into());

        let before = store.count_assignments(token_id).await?;
        let mut counts = SyncCounts::default();
        let gen = generation(run, 0);
        let (users_version, assignments_version) = match kind {
            SyncKind::Full => self.walk_full(&t, &bearer, gen, &mut counts).await?,
            SyncKind::Delta => match self.walk_delta(&t, &bearer, gen, &mut counts).await {
                Err(SyncError::Apple(AppleError::Api(e)))
                    if e.error_number == codes::INVALID_VERSION_ID =>
                {
                    // Apple no longer knows our version: start over with everything.
                    kind = SyncKind::Full;
                    reason = "version_expired".into();
                    store.set_sync_run_kind(run, kind.as_str(), &reason).await?;
                    store.set_full_sync_wanted(token_id, true).await?;
                    self.walk_full(&t, &bearer, gen, &mut counts).await?
                }
                other => other?,
            },
        };

        // Assets: always re-read whole, then compared with the assignments held here.
        self.update_progress(token_id, |p| p.phase = "licenses".into());
        let assets = self.read_assets(&bearer).await?;
        counts.assets_changed = self.store_assets(token_id, &assets, gen).await?;
        let removed_with_assets = store.delete_stale_assets(token_id, gen).await? as i64;
        counts.assets_changed += removed_with_assets;
        self.update_progress(token_id, |p| p.phase = "reconciling".into());
        let reconciled = self.reconcile(token_id, &bearer, &assets, run).await?;
        counts.assignments_removed += reconciled;

        let after = store.count_assignments(token_id).await?;
        counts.assignments_added = (after - before + counts.assignments_removed).max(0);

        self.update_progress(token_id, |p| p.phase = "subscriptions".into());
        if let Err(e) = self.sync_subscriptions(token_id, &bearer).await {
            warnings.push(format!("subscriptions could not be read: {e}"));
        }
        self.update_progress(token_id, |p| p.phase = "app metadata".into());
        if let Err(e) = self.refresh_metadata(&t, &mut warnings).await {
            warnings.push(format!("app names and icons could not be refreshed: {e}"));
        }

        // Tell Apple (in our mdmInfo) how many syncs we have made: a restored database knows fewer.
        let serial = t.sync_serial.max(remote_serial) + 1;
        if claim == Claim::Ours {
            let secret = self.notification_secret(&t);
            match self
                .claim(&bearer, token_id, serial, secret.as_deref())
                .await
            {
                Ok(Some(w)) => warnings.push(w),
                Ok(None) => {}
                Err(e) => warnings.push(format!(
                    "our identity on the location could not be updated: {e}"
                )),
            }
        }
        store
            .mark_synced(
                token_id,
                kind == SyncKind::Full,
                Some(&assignments_version),
                Some(&users_version),
                serial,
                now_ms(),
            )
            .await?;
        // License counts over time, for the console's charts (only what changed is written).
        store.record_license_history(token_id, now_ms()).await?;
        let warning = (!warnings.is_empty()).then(|| warnings.join("; "));
        if let Some(w) = &warning {
            store.set_last_error(token_id, Some(w), now_ms()).await?;
        }
        Ok(SyncOutcome {
            run_id: run,
            kind,
            reason,
            counts,
            warning,
        })
    }

    /// Every user and assignment; returns the versions to take deltas from.
    async fn walk_full(
        &self,
        t: &TokenRow,
        bearer: &Bearer,
        gen: i64,
        counts: &mut SyncCounts,
    ) -> Result<(String, String), SyncError> {
        let store = &self.inner.store;
        let apple = &self.inner.apple;
        self.update_progress(t.id, |p| p.phase = "users".into());
        let mut users = UserSink::new(self, t.id, gen);
        let uq = UsersQuery::default();
        let summary = walk(
            PARALLEL,
            |i| apple.users_page(bearer, &uq, i),
            |p| p.users.len(),
            &mut users,
        )
        .await?;
        counts.users_changed += users.rows as i64;
        store.delete_stale_users(t.id, gen).await?;
        let users_version = summary.version_id;

        self.update_progress(t.id, |p| p.phase = "assignments".into());
        let mut sink = AssignmentSink::new(self, t.id, gen);
        let aq = AssignmentsQuery::default();
        let summary = walk(
            PARALLEL,
            |i| apple.assignments_page(bearer, &aq, i),
            |p| p.assignments.len(),
            &mut sink,
        )
        .await?;
        sink.flush().await?;
        counts.assignments_removed += store.delete_stale_assignments(t.id, gen).await? as i64;
        if summary.changed_during_walk {
            // Pick up what was added while we walked; removals are caught by the reconciliation.
            let since = AssignmentsQuery {
                since_version_id: Some(summary.version_id.clone()),
                ..Default::default()
            };
            walk(
                PARALLEL,
                |i| apple.assignments_page(bearer, &since, i),
                |p| p.assignments.len(),
                &mut sink,
            )
            .await?;
            sink.flush().await?;
        }
        Ok((users_version, summary.version_id))
    }

    /// Users and assignments changed since the stored versions.
    async fn walk_delta(
        &self,
        t: &TokenRow,
        bearer: &Bearer,
        gen: i64,
        counts: &mut SyncCounts,
    ) -> Result<(String, String), SyncError> {
        let apple = &self.inner.apple;
        self.update_progress(t.id, |p| p.phase = "users".into());
        let mut users = UserSink::new(self, t.id, gen);
        let uq = UsersQuery {
            since_version_id: t.users_version.clone(),
            ..Default::default()
        };
        let u = walk(
            PARALLEL,
            |i| apple.users_page(bearer, &uq, i),
            |p| p.users.len(),
            &mut users,
        )
        .await?;
        counts.users_changed += users.rows as i64;
        self.update_progress(t.id, |p| p.phase = "assignments".into());
        let mut sink = AssignmentSink::new(self, t.id, gen);
        let aq = AssignmentsQuery {
            since_version_id: t.assignments_version.clone(),
            ..Default::default()
        };
        let a = walk(
            PARALLEL,
            |i| apple.assignments_page(bearer, &aq, i),
            |p| p.assignments.len(),
            &mut sink,
        )
        .await?;
        sink.flush().await?;
        Ok((u.version_id, a.version_id))
    }

    async fn read_assets(&self, bearer: &Bearer) -> Result<Vec<ResponseAsset>, SyncError> {
        let apple = &self.inner.apple;
        let mut sink = AssetCollector::default();
        walk(
            PARALLEL,
            |i| apple.assets_page(bearer, i),
            |p| p.assets.len(),
            &mut sink,
        )
        .await?;
        Ok(sink.0)
    }

    /// Stores the assets; returns how many differ from what was held.
    async fn store_assets(
        &self,
        token_id: i64,
        assets: &[ResponseAsset],
        gen: i64,
    ) -> Result<i64, SyncError> {
        let store = &self.inner.store;
        let before: std::collections::HashMap<(String, String), allot_store::AssetRow> = store
            .assets(token_id)
            .await?
            .into_iter()
            .map(|a| ((a.adam_id.clone(), a.pricing.clone()), a))
            .collect();
        let rows: Vec<allot_store::AssetRow> = assets.iter().map(asset_row).collect();
        let changed = rows
            .iter()
            .filter(|r| before.get(&(r.adam_id.clone(), r.pricing.clone())) != Some(*r))
            .count() as i64;
        store.upsert_assets(token_id, &rows, gen, now_ms()).await?;
        Ok(changed)
    }

    /// Notices on any page that another MDM has taken the location.
    pub(crate) fn page_owner_changed(&self, info: Option<&MdmInfo>) -> bool {
        !self.is_ours(info)
    }
}

/// The serial we wrote into our `mdmInfo.metadata` (`Allot x.y.z; sync N`).
fn serial_of(info: Option<&MdmInfo>) -> i64 {
    info.and_then(|m| m.metadata.as_deref())
        .and_then(|s| s.rsplit_once("sync "))
        .and_then(|(_, n)| n.trim().parse().ok())
        .unwrap_or(0)
}

pub(crate) fn asset_row(a: &ResponseAsset) -> allot_store::AssetRow {
    let unlimited = a.total_count == allot_apple_wire::UNLIMITED_TOTAL;
    allot_store::AssetRow {
        adam_id: a.adam_id.clone(),
        pricing: a.pricing_param.clone(),
        product_type: a.product_type.clone(),
        total: i64::from(a.total_count),
        assigned: i64::from(a.assigned_count),
        available: i64::from(a.available_count),
        retired: i64::from(a.retired_count),
        device_assignable: a.device_assignable,
        revocable: a.revocable,
        unlimited,
        platforms: a.supported_platforms.clone(),
    }
}

pub(crate) fn assignment_row(a: &allot_apple_wire::Assignment) -> Option<AssignmentRow> {
    let holder = match (&a.client_user_id, &a.serial_number) {
        (Some(u), _) if !u.is_empty() => Holder::User(u.clone()),
        (_, Some(s)) if !s.is_empty() => Holder::Device(s.clone()),
        _ => return None,
    };
    Some(AssignmentRow {
        adam_id: a.adam_id.clone(),
        pricing: a.pricing_param.clone(),
        holder,
    })
}

/// Streams assignment pages into the store, `ASSIGNMENT_PAGES_A_WRITE` pages a transaction: a
/// full sync's pages land all over the key, so larger transactions rewrite each B-tree page less
/// often (docs/performance.md). Each write runs while the next pages are fetched (one write at a
/// time, in order); rows held back are written by `flush`, which every walk ends with and which
/// waits for the last write. A crash before it loses nothing the next run does not read again
/// (nothing is marked synced until the end).
pub(crate) struct AssignmentSink<'a> {
    engine: &'a SyncEngine,
    token_id: i64,
    gen: i64,
    pub rows: usize,
    pages: i64,
    pending: Vec<AssignmentRow>,
    /// Pages whose rows are in `pending`.
    held: usize,
    /// The write under way, if any.
    writing: Option<tokio::task::JoinHandle<Result<(), allot_store::StoreError>>>,
}

impl<'a> AssignmentSink<'a> {
    pub(crate) fn new(engine: &'a SyncEngine, token_id: i64, gen: i64) -> Self {
        Self {
            engine,
            token_id,
            gen,
            rows: 0,
            pages: 0,
            pending: Vec::new(),
            held: 0,
            writing: None,
        }
    }

    /// Waits for the write under way, if any.
    async fn written(&mut self) -> Result<(), allot_store::StoreError> {
        match self.writing.take() {
            Some(w) => w
                .await
                .map_err(|e| allot_store::StoreError::Config(format!("a write stopped: {e}")))?,
            None => Ok(()),
        }
    }

    /// Starts writing the rows held back, once the previous write is done.
    async fn write_behind(&mut self) -> Result<(), allot_store::StoreError> {
        self.written().await?;
        if self.pending.is_empty() {
            return Ok(());
        }
        self.held = 0;
        let mut rows = std::mem::take(&mut self.pending);
        rows.sort();
        rows.dedup();
        let (store, token_id, gen) = (self.engine.inner.store.clone(), self.token_id, self.gen);
        self.writing = Some(tokio::spawn(async move {
            store.upsert_assignments(token_id, &rows, gen).await
        }));
        Ok(())
    }

    /// Writes the rows held back and waits until everything is written (at the end of every
    /// walk).
    pub(crate) async fn flush(&mut self) -> Result<(), allot_store::StoreError> {
        self.write_behind().await?;
        self.written().await
    }
}

impl PageSink<GetAssignmentsResponse> for AssignmentSink<'_> {
    async fn page(&mut self, page: GetAssignmentsResponse) -> Result<(), SinkError> {
        if self
            .engine
            .page_owner_changed(page.common.mdm_info.as_ref())
        {
            // Known from the run's ownership check; a claim made mid-walk is caught by the next run.
            tracing::debug!(
                token = self.token_id,
                "a page carries another MDM's mdmInfo"
            );
        }
        let before = self.pending.len();
        self.pending
            .extend(page.assignments.iter().filter_map(assignment_row));
        self.rows += self.pending.len() - before;
        self.held += 1;
        if self.held >= allot_store::ASSIGNMENT_PAGES_A_WRITE {
            self.write_behind().await?;
        }
        self.pages += 1;
        let (pages, total) = (self.pages, i64::from(page.page.total_pages));
        self.engine.update_progress(self.token_id, |p| {
            p.pages = pages;
            p.pages_total = total;
        });
        if pages % 20 == 0 || pages == total {
            let run = self.gen / allot_store::GENERATION_STEPS;
            self.engine
                .inner
                .store
                .sync_progress(run, pages, total)
                .await?;
            // A long walk keeps its lease.
            self.engine.keep_lease(self.token_id, run).await?;
        }
        Ok(())
    }
}

pub(crate) struct UserSink<'a> {
    engine: &'a SyncEngine,
    token_id: i64,
    gen: i64,
    pub rows: usize,
}

impl<'a> UserSink<'a> {
    fn new(engine: &'a SyncEngine, token_id: i64, gen: i64) -> Self {
        Self {
            engine,
            token_id,
            gen,
            rows: 0,
        }
    }
}

impl PageSink<GetUsersResponse> for UserSink<'_> {
    async fn page(&mut self, page: GetUsersResponse) -> Result<(), SinkError> {
        let rows = crate::notifications::user_rows(&page.users);
        self.rows += rows.len();
        self.engine
            .inner
            .store
            .upsert_users(self.token_id, &rows, self.gen)
            .await?;
        Ok(())
    }
}

#[derive(Default)]
struct AssetCollector(Vec<ResponseAsset>);

impl PageSink<allot_apple_wire::GetAssetsResponse> for AssetCollector {
    async fn page(&mut self, page: allot_apple_wire::GetAssetsResponse) -> Result<(), SinkError> {
        self.0.extend(page.assets);
        Ok(())
    }
}

/// Several records of one `clientUserId` (retired ones and the active one): keep the active one,
/// else the last.
pub(crate) fn best_user_rows(rows: Vec<UserRow>) -> Vec<UserRow> {
    let mut by_id: std::collections::BTreeMap<String, UserRow> = std::collections::BTreeMap::new();
    for r in rows {
        let active = |u: &UserRow| u.status == "Registered" || u.status == "Associated";
        match by_id.get(&r.client_user_id) {
            Some(existing) if active(existing) && !active(&r) => {}
            _ => {
                by_id.insert(r.client_user_id.clone(), r);
            }
        }
    }
    by_id.into_values().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serial_is_read_from_our_metadata() {
        let info = |m: &str| MdmInfo {
            id: Some("x".into()),
            name: None,
            metadata: Some(m.into()),
        };
        assert_eq!(serial_of(Some(&info("Allot 0.1.0; sync 42"))), 42);
        assert_eq!(serial_of(Some(&info("2.13.3"))), 0);
        assert_eq!(serial_of(None), 0);
    }

    #[test]
    fn the_active_record_of_a_user_wins() {
        let u = |id: &str, s: &str| UserRow {
            client_user_id: id.into(),
            status: s.into(),
            email: None,
            invite_code: None,
            id_hash: None,
        };
        let rows = best_user_rows(vec![
            u("a", "Associated"),
            u("a", "Retired"),
            u("b", "Retired"),
            u("b", "Registered"),
        ]);
        assert_eq!(rows, vec![u("a", "Associated"), u("b", "Registered")]);
    }
}
