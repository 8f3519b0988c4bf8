//! Executing a deployment: a reconcile step, run again and again, that moves every target toward
//! what the deployment wants. Idempotent: each step starts from what the store says.
//!
//! This first version executes **Required deployments of device-licensed apps to device
//! collections**: licenses are reserved (so racing deployments never over-assign), associated at
//! Apple in batches of `maxSerialNumbers`, followed to completion, and the app is installed
//! through NanoMDM; device reports through the webhook finish each target. Deployments that would
//! need user licenses, and the other actions, are refused at creation until they are built.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use allot_apple_client::{AppleError, AssignmentsQuery};
use allot_apple_wire::{codes, event_status, limit, AssetRef, ManageAssetsRequest};
use allot_domain::{license_for, AssetFacts, Choice, CollectionKind, License};
use allot_mdm::{Command, NanoMdm};
use allot_store::{AssignmentRow, DeploymentRow, Holder, Store, StoreError, TargetRow, TokenRow};
use allot_sync::SyncEngine;

/// Target states.
pub mod status {
    pub const PENDING: &str = "pending";
    pub const WAITING: &str = "waiting_for_license";
    pub const LICENSE_REQUESTED: &str = "license_requested";
    pub const LICENSE_ASSIGNED: &str = "license_assigned";
    pub const INSTALL_SENT: &str = "install_sent";
    pub const INSTALLED: &str = "installed";
    pub const FAILED: &str = "failed";
    pub const NEEDS_USER: &str = "needs_user";
}

#[derive(Debug, thiserror::Error)]
pub enum DeployError {
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Apple(#[from] AppleError),
}

#[derive(Clone)]
pub struct Executor {
    engine: SyncEngine,
    mdm: Option<Arc<NanoMdm>>,
    /// Apple asks for at least 30 s between polls of one event.
    poll_interval: Duration,
    polled: Arc<Mutex<HashMap<String, Instant>>>,
    reclaim_grace: Duration,
    /// One step of a deployment at a time in this process (the create handler's first step and
    /// the loop's may otherwise overlap).
    steps: Arc<Mutex<HashMap<i64, Arc<tokio::sync::Mutex<()>>>>>,
}

fn now_ms() -> i64 {
    allot_sync::now_ms()
}

/// Targets read at a time.
const PAGE: i64 = 1000;

impl Executor {
    pub fn new(engine: SyncEngine, mdm: Option<NanoMdm>, poll_interval: Duration) -> Self {
        Self {
            engine,
            mdm: mdm.map(Arc::new),
            poll_interval,
            polled: Arc::default(),
            reclaim_grace: Duration::from_secs(86_400),
            steps: Arc::default(),
        }
    }

    fn store(&self) -> &Store {
        self.engine.store()
    }

    pub(crate) fn engine(&self) -> &SyncEngine {
        &self.engine
    }

    /// How long a departed device keeps its licenses (default a day).
    pub fn with_reclaim_grace(mut self, grace: Duration) -> Self {
        self.reclaim_grace = grace;
        self
    }

    /// The tokens a deployment draws from, in order (usable ones only).
    async fn tokens(&self, d: &DeploymentRow) -> Result<Vec<TokenRow>, DeployError> {
        let now = now_ms();
        let all = self.store().tokens().await?;
        let mut out = Vec::new();
        if d.token_ids.is_empty() {
            for t in all {
                if crate::unusable(&t, now).is_none()
                    && self
                        .store()
                        .assets(t.id)
                        .await?
                        .iter()
                        .any(|a| a.adam_id == d.adam_id && a.pricing == d.pricing)
                {
                    out.push(t);
                }
            }
        } else {
            for id in &d.token_ids {
                if let Some(t) = all.iter().find(|t| t.id == *id) {
                    if crate::unusable(t, now).is_none() {
                        out.push(t.clone());
                    }
                }
            }
        }
        Ok(out)
    }

    /// One reconcile step of every deployment, then the reclaim policy.
    pub async fn run_all(&self) -> Result<(), DeployError> {
        for d in self.store().deployments().await? {
            if let Err(e) = self.run(&d).await {
                tracing::warn!(deployment = d.id, error = %e, "deployment step failed");
            }
        }
        self.reclaim_departed(self.reclaim_grace).await?;
        Ok(())
    }

    /// One reconcile step of a deployment. Targets are walked in pages, so memory stays bounded
    /// whatever the size of the collection.
    pub async fn run(&self, d: &DeploymentRow) -> Result<(), DeployError> {
        let lock = self
            .steps
            .lock()
            .expect("steps lock")
            .entry(d.id)
            .or_default()
            .clone();
        let _step = lock.lock().await;
        let store = self.store();
        let tokens = self.tokens(d).await?;
        let Some(facts) = self.facts(d, &tokens).await? else {
            return Ok(());
        };
        store
            .sync_device_targets(d.id, d.collection_id, now_ms())
            .await?;
        self.follow_events(d).await?;
        self.claim(d, &tokens, facts).await?;
        self.install(d).await?;
        Ok(())
    }

    async fn facts(
        &self,
        d: &DeploymentRow,
        tokens: &[TokenRow],
    ) -> Result<Option<AssetFacts>, DeployError> {
        for t in tokens {
            if let Some(a) = self
                .store()
                .assets(t.id)
                .await?
                .into_iter()
                .find(|a| a.adam_id == d.adam_id && a.pricing == d.pricing)
            {
                return Ok(Some(AssetFacts {
                    is_book: a.product_type == "Book",
                    device_assignable: a.device_assignable,
                }));
            }
        }
        Ok(None)
    }

    /// Pending and waiting targets get licenses: already held, or reserved then associated.
    async fn claim(
        &self,
        d: &DeploymentRow,
        tokens: &[TokenRow],
        facts: AssetFacts,
    ) -> Result<(), DeployError> {
        let store = self.store();
        let ids: Vec<i64> = tokens.iter().map(|t| t.id).collect();
        let max = self
            .engine
            .apple()
            .request_limit(limit::MAX_SERIAL_NUMBERS)
            .await;
        let mut after = 0;
        loop {
            let page = store
                .device_targets_page(d.id, &[status::PENDING, status::WAITING], after, PAGE)
                .await?;
            let Some(last) = page.last() else { break };
            after = last.target.member_id;
            let serials: Vec<String> = page.iter().map(|p| p.serial_number.clone()).collect();
            let holders = store
                .holders_among(&ids, &d.adam_id, &d.pricing, "device", &serials)
                .await?;
            let mut to_claim = Vec::new();
            for p in page {
                let mut t = p.target;
                if !p.enrolled {
                    continue;
                }
                match license_for(facts, CollectionKind::Devices, p.has_user) {
                    Choice::Claim(License::Device) => {}
                    Choice::Claim(License::User) | Choice::NeedsUser => {
                        t.status = status::NEEDS_USER.into();
                        t.detail = Some("this app is user-licensed here, and user licenses are not deployed yet".into());
                        store
                            .update_target_from(&t, &[status::PENDING, status::WAITING], now_ms())
                            .await?;
                        continue;
                    }
                }
                t.license = Some("device".into());
                t.holder = Some(p.serial_number.clone());
                t.enrollment_id = p.enrollment_id.clone();
                if holders.contains(&p.serial_number) {
                    t.status = status::LICENSE_ASSIGNED.into();
                    t.detail = None;
                    store
                        .update_target_from(&t, &[status::PENDING, status::WAITING], now_ms())
                        .await?;
                } else {
                    to_claim.push(t);
                }
            }
            self.claim_page(d, tokens, max, to_claim).await?;
        }
        Ok(())
    }

    /// Claims licenses for one page of targets from the tokens in order; the rest wait or fail.
    async fn claim_page(
        &self,
        d: &DeploymentRow,
        tokens: &[TokenRow],
        max: usize,
        mut to_claim: Vec<TargetRow>,
    ) -> Result<(), DeployError> {
        let store = self.store();
        for token in tokens {
            if to_claim.is_empty() {
                break;
            }
            let bearer = self
                .engine
                .bearer_of(token)
                .map_err(|e| DeployError::Invalid(e.to_string()))?;
            let free = store.claimable(token.id, &d.adam_id, &d.pricing).await?;
            let n = (free.min(to_claim.len() as i64)) as usize;
            if n == 0 {
                continue;
            }
            let mut batch: Vec<TargetRow> = to_claim[..n].to_vec();
            // Reserved and marked together: a crash from here on leaves targets that say what was
            // reserved, and following them up (outcome unknown) releases it.
            if !store
                .reserve_for_targets(token.id, &d.adam_id, &d.pricing, &batch, now_ms())
                .await?
            {
                continue;
            }
            to_claim.drain(..n);
            for t in &mut batch {
                t.status = status::LICENSE_REQUESTED.into();
                t.token_id = Some(token.id);
            }
            for chunk in batch.chunks(max) {
                let serials: Vec<String> = chunk.iter().filter_map(|t| t.holder.clone()).collect();
                let req = ManageAssetsRequest {
                    assets: vec![AssetRef::new(&d.adam_id, &d.pricing)],
                    client_user_ids: vec![],
                    serial_numbers: serials,
                };
                match self.engine.apple().associate(&bearer, &req).await {
                    Ok(e) => {
                        for t in chunk {
                            let mut t = t.clone();
                            t.event_id = Some(e.event_id.clone());
                            store
                                .update_target_from(&t, &[status::LICENSE_REQUESTED], now_ms())
                                .await?;
                        }
                    }
                    // Apple may or may not have it: read back later, never send blindly again.
                    Err(AppleError::OutcomeUnknown(_)) => {
                        for t in chunk {
                            let mut t = t.clone();
                            t.detail = Some("checking with Apple".into());
                            store
                                .update_target_from(&t, &[status::LICENSE_REQUESTED], now_ms())
                                .await?;
                        }
                    }
                    Err(e) => {
                        for t in chunk {
                            let mut t = t.clone();
                            t.status = status::PENDING.into();
                            t.detail = Some(format!("Apple refused the license request: {e}"));
                            store.finish_claim(token.id, &t, None, 0, now_ms()).await?;
                        }
                    }
                }
            }
        }
        // No license left anywhere.
        let wait = d.on_shortage == "wait";
        for mut t in to_claim {
            t.status = if wait {
                status::WAITING
            } else {
                status::FAILED
            }
            .into();
            t.detail = Some(
                if wait {
                    "waiting for a free license"
                } else {
                    "no license available"
                }
                .into(),
            );
            store
                .update_target_from(&t, &[status::PENDING, status::WAITING], now_ms())
                .await?;
        }
        Ok(())
    }

    /// Requested licenses: Apple's event (polled at most every `poll_interval`), or, when the
    /// request's outcome is unknown, the device's assignments read back.
    async fn follow_events(&self, d: &DeploymentRow) -> Result<(), DeployError> {
        let store = self.store();
        for (event, token_id) in store.pending_events(d.id).await? {
            let Some(token) = store.token(token_id).await? else {
                continue;
            };
            let bearer = self
                .engine
                .bearer_of(&token)
                .map_err(|e| DeployError::Invalid(e.to_string()))?;
            let mut failed: HashMap<String, i32> = HashMap::new();
            let group = match &event {
                Some(id) => {
                    if !self.due(id) {
                        continue;
                    }
                    let s = self.engine.apple().status(&bearer, id).await?;
                    if s.event_status == event_status::PENDING {
                        continue;
                    }
                    for f in &s.failures {
                        for serial in f
                            .error_info
                            .as_ref()
                            .map(|i| i.serial_numbers.clone())
                            .unwrap_or_default()
                        {
                            failed.insert(serial, f.error_number);
                        }
                    }
                    // One event covers at most maxSerialNumbers targets.
                    store.targets_of_event(d.id, Some(id), i64::MAX / 2).await?
                }
                None => {
                    let group = store.targets_of_event(d.id, None, PAGE).await?;
                    for t in &group {
                        let q = AssignmentsQuery {
                            adam_id: Some(d.adam_id.clone()),
                            pricing_param: Some(d.pricing.clone()),
                            serial_number: t.holder.clone(),
                            ..Default::default()
                        };
                        let page = self.engine.apple().assignments_page(&bearer, &q, 0).await?;
                        if page.assignments.is_empty() {
                            failed.insert(t.holder.clone().unwrap_or_default(), 0);
                        }
                    }
                    group
                }
            };
            let gen = store.current_generation(token_id).await?;
            for mut t in group.into_iter().filter(|t| t.token_id == Some(token_id)) {
                let serial = t.holder.clone().unwrap_or_default();
                let granted = match failed.get(&serial) {
                    None => {
                        t.status = status::LICENSE_ASSIGNED.into();
                        t.detail = None;
                        Some(AssignmentRow {
                            adam_id: d.adam_id.clone(),
                            pricing: d.pricing.clone(),
                            holder: Holder::Device(serial),
                        })
                    }
                    Some(&n) if n == codes::NOT_ENOUGH_LICENSES => {
                        t.status = if d.on_shortage == "wait" {
                            status::WAITING
                        } else {
                            status::FAILED
                        }
                        .into();
                        t.detail = Some("no license available".into());
                        None
                    }
                    Some(0) => {
                        t.status = status::PENDING.into();
                        t.detail = Some(
                            "Apple has no record of the license request; it will be made again"
                                .into(),
                        );
                        None
                    }
                    Some(&n) => {
                        t.status = status::FAILED.into();
                        t.detail = Some(format!(
                            "Apple refused the license: {} (error {n})",
                            allot_apple_wire::codes::message(n)
                        ));
                        None
                    }
                };
                // Released, recorded and moved on together (one transaction).
                store
                    .finish_claim(token_id, &t, granted.as_ref(), gen, now_ms())
                    .await?;
            }
        }
        Ok(())
    }

    fn due(&self, event_id: &str) -> bool {
        let mut polled = self.polled.lock().expect("poll lock");
        let now = Instant::now();
        match polled.get(event_id) {
            Some(at) if now.duration_since(*at) < self.poll_interval => false,
            _ => {
                polled.insert(event_id.to_owned(), now);
                true
            }
        }
    }

    /// Licensed targets of a Required deployment get the app through the MDM, 100 per command.
    async fn install(&self, d: &DeploymentRow) -> Result<(), DeployError> {
        let store = self.store();
        let adam: i64 = d
            .adam_id
            .parse()
            .map_err(|_| DeployError::Invalid(format!("adamId {} is not a number", d.adam_id)))?;
        let mut after = 0;
        loop {
            let page = store
                .device_targets_page(d.id, &[status::LICENSE_ASSIGNED], after, PAGE)
                .await?;
            let Some(last) = page.last() else { break };
            after = last.target.member_id;
            let mut sendable = Vec::new();
            for p in page {
                let mut t = p.target;
                let note = match (&self.mdm, &p.enrollment_id) {
                    (None, _) => Some("licensed; no MDM is configured here, so install the app from your MDM"),
                    (Some(_), None) => Some("licensed; the device has not enrolled through NanoMDM, so no install can be sent"),
                    (Some(_), Some(id)) => {
                        t.enrollment_id = Some(id.clone());
                        sendable.push(t);
                        continue;
                    }
                };
                if t.detail.as_deref() != note {
                    t.detail = note.map(str::to_owned);
                    store
                        .update_target_from(&t, &[status::LICENSE_ASSIGNED], now_ms())
                        .await?;
                }
            }
            let Some(mdm) = &self.mdm else { continue };
            for chunk in sendable.chunks(100) {
                let ids: Vec<String> = chunk
                    .iter()
                    .filter_map(|t| t.enrollment_id.clone())
                    .collect();
                let uuid = uuid::Uuid::new_v4().to_string();
                let command = Command::InstallApplication {
                    itunes_store_id: adam,
                    managed_on_mac: false,
                };
                match mdm.enqueue(&ids, &command, &uuid, true).await {
                    Ok(res) => {
                        for t in chunk {
                            let mut t = t.clone();
                            let r = res.ids.get(t.enrollment_id.as_deref().unwrap_or_default());
                            if r.is_some_and(|r| r.queued) {
                                t.status = status::INSTALL_SENT.into();
                                t.command_uuid = Some(uuid.clone());
                                t.detail = None;
                            } else {
                                t.detail = Some(format!(
                                    "NanoMDM did not queue the install: {}",
                                    r.and_then(|r| r.command_error.clone()).unwrap_or_default()
                                ));
                            }
                            store
                                .update_target_from(&t, &[status::LICENSE_ASSIGNED], now_ms())
                                .await?;
                        }
                    }
                    Err(e) => {
                        tracing::warn!(deployment = d.id, error = %e, "install not sent; next step tries again")
                    }
                }
            }
        }
        Ok(())
    }

    /// A device's report on a command (from the webhook).
    pub async fn command_result(
        &self,
        enrollment_id: &str,
        command_uuid: &str,
        report_status: &str,
        report: Option<&allot_mdm::webhook::Report>,
    ) -> Result<usize, DeployError> {
        let store = self.store();
        let mut changed = 0;
        for mut t in store.targets_by_command(command_uuid).await? {
            if t.enrollment_id.as_deref() != Some(enrollment_id) || t.status != status::INSTALL_SENT
            {
                continue;
            }
            match report_status {
                "Acknowledged" => {
                    t.status = status::INSTALLED.into();
                    t.detail = None;
                }
                "Error" | "CommandFormatError" => {
                    t.status = status::FAILED.into();
                    t.detail = Some(allot_mdm::webhook::error_words(report_status, report));
                }
                _ => continue,
            }
            if store
                .update_target_from(&t, &[status::INSTALL_SENT], now_ms())
                .await?
            {
                changed += 1;
            }
        }
        Ok(changed)
    }
}
