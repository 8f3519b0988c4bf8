//! Executing a deployment: a reconcile step, run again and again, that moves every target toward
//! what the deployment wants. Idempotent: each step starts from what the store says, and every
//! target transition applies only from the state it was read in.
//!
//! - `claim`: licenses for Required targets (and Available ones a user asked for) — device
//!   licenses, or user licenses once the user has joined the program (`users`: registration and
//!   invitation) — reserved first, so racing deployments never over-assign.
//! - `events`: Apple's answers to those requests (and to releases and registrations).
//! - `commands`: InstallApplication / InstallMedia / RemoveApplication / RemoveMedia /
//!   InviteToProgram through the MDM, and the devices' reports.
//! - `release`: licenses given back — Uninstall after removal, Revoke, and a failed install that
//!   this deployment had licensed.

mod claim;
mod commands;
mod declarative;
mod events;
mod mdm_health;
mod observe;
mod release;
mod users;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use allot_apple_client::{AppleError, Bearer};
use allot_domain::{AssetFacts, CollectionKind, OnLeave};
use allot_mdm::NanoMdm;
use allot_store::{AssetRow, DeploymentRow, MemberTarget, Store, StoreError, TokenRow};
use allot_sync::SyncEngine;

use crate::Action;
pub use declarative::declarations_for;
pub use mdm_health::{MdmHealth, MAX_PUSH_ATTEMPTS};

/// Target states.
pub mod status {
    pub const PENDING: &str = "pending";
    /// Available: offered; the license is claimed when the user asks.
    pub const AVAILABLE: &str = "available";
    /// Available: the user asked; claimed next.
    pub const REQUESTED: &str = "requested";
    pub const WAITING: &str = "waiting_for_license";
    pub const NEEDS_USER: &str = "needs_user";
    /// The user is registered with Apple and invited; the license waits for them to accept.
    pub const INVITATION_PENDING: &str = "invitation_pending";
    pub const LICENSE_REQUESTED: &str = "license_requested";
    pub const LICENSE_ASSIGNED: &str = "license_assigned";
    pub const INSTALL_SENT: &str = "install_sent";
    /// The device accepted the install and is still at it; confirmed by ManagedApplicationList.
    pub const INSTALLING: &str = "installing";
    pub const INSTALLED: &str = "installed";
    /// Statuses that still move without anyone doing anything (a deployment with none of them
    /// has settled).
    pub const MOVING: &[&str] = &[
        "pending",
        "requested",
        "license_requested",
        "license_assigned",
        "install_sent",
        "installing",
        "remove_sent",
        "release_pending",
        "license_releasing",
    ];
    pub const FAILED: &str = "failed";
    /// To be removed from the device, then its license given back: the member left the
    /// collection (`on_leave` uninstall) or the deployment was deleted with `then` uninstall.
    pub const REMOVE_PENDING: &str = "remove_pending";
    pub const REMOVE_SENT: &str = "remove_sent";
    /// The license is to be given back (removed from the device, revoked, or a failed install).
    pub const RELEASE_PENDING: &str = "release_pending";
    pub const LICENSE_RELEASING: &str = "license_releasing";
    /// Removed; it held no license to give back.
    pub const UNINSTALLED: &str = "uninstalled";
    pub const LICENSE_RECLAIMED: &str = "license_reclaimed";
    /// Revoke: it held no license to give back.
    pub const NO_LICENSE: &str = "no_license";
    /// Another deployment in force owns this target (`superseded_by`); this one leaves it alone.
    pub const SUPERSEDED: &str = "superseded";
    /// The device cannot run the content (its platform is not one the app supports); no license
    /// is spent on it.
    pub const NOT_COMPATIBLE: &str = "not_compatible";
    /// The member left the collection: nothing more is done for it, and the license it holds is
    /// kept (`on_leave` keep); it is pending again if it comes back.
    pub const LEFT: &str = "left";

    /// Every status, for filters and documentation.
    pub const ALL: &[&str] = &[
        PENDING,
        AVAILABLE,
        REQUESTED,
        WAITING,
        NEEDS_USER,
        INVITATION_PENDING,
        LICENSE_REQUESTED,
        LICENSE_ASSIGNED,
        INSTALL_SENT,
        INSTALLING,
        INSTALLED,
        FAILED,
        REMOVE_PENDING,
        REMOVE_SENT,
        RELEASE_PENDING,
        LICENSE_RELEASING,
        UNINSTALLED,
        LICENSE_RECLAIMED,
        NO_LICENSE,
        SUPERSEDED,
        NOT_COMPATIBLE,
        LEFT,
    ];

    #[cfg(test)]
    mod tests {
        /// People read every status in words (`allot_domain::labels`), never its identifier.
        #[test]
        fn every_status_has_a_label() {
            for s in super::ALL {
                let l = allot_domain::labels::label(s);
                assert!(l != *s && !l.contains('_'), "{s} reads {l}");
            }
        }
    }
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
    /// How often each enrolled device is asked for its managed apps.
    app_list_interval: Duration,
    /// The first wait before a push that failed is tried again.
    push_backoff: Duration,
    /// The first wait before NanoMDM is called again after it failed (then doubling).
    mdm_backoff: Duration,
    /// How often each enrolled device is asked for its DeviceInformation (OS version, model).
    device_info_interval: Duration,
    /// Every deployment declares its apps where devices support it (`ALLOT_DECLARATIVE`).
    declarative_all: bool,
    /// Up to when declarative targets' changes were swept for devices to tell (this process).
    declarations_swept: Arc<std::sync::atomic::AtomicI64>,
    health: Arc<mdm_health::HealthCell>,
    /// Rings when something happened that a pass should look at now (a notification, a device's
    /// report), so the loop need not wait for its interval.
    wake: Arc<tokio::sync::Notify>,
    /// One step of a deployment at a time in this process (the create handler's first step and
    /// the loop's may otherwise overlap).
    steps: Arc<Mutex<HashMap<i64, Arc<tokio::sync::Mutex<()>>>>>,
}

pub(crate) fn now_ms() -> i64 {
    allot_sync::now_ms()
}

/// Targets read at a time.
pub(crate) const PAGE: i64 = 1000;

/// How long an instance holds a deployment without renewing (each page of targets renews it):
/// another instance may take over this long after one dies mid-step.
const STEP_LEASE_MS: i64 = 2 * 60 * 1000;

/// What one step of a deployment knows before it looks at targets.
pub(crate) struct Step {
    pub d: DeploymentRow,
    pub action: Action,
    pub kind: CollectionKind,
    /// `users` or `devices`, as the store names collection kinds.
    pub kind_name: String,
    /// Usable tokens holding the asset, in the deployment's order.
    pub tokens: Vec<TokenRow>,
    pub facts: AssetFacts,
    pub adam: i64,
    /// For RemoveApplication.
    pub bundle_id: Option<String>,
    /// The device platforms that can run the content (none known: every one).
    pub compatible: Option<Vec<&'static str>>,
    /// The OS the app needs at least (its metadata's `minimumOSVersion`).
    pub minimum_os: Option<allot_domain::compat::MinimumOs>,
    /// Deleted with `then` revoke or uninstall: giving back what it holds.
    pub ending: Option<OnLeave>,
}

impl Step {
    pub fn token_ids(&self) -> Vec<i64> {
        self.tokens.iter().map(|t| t.id).collect()
    }

    pub fn token(&self, id: i64) -> Option<&TokenRow> {
        self.tokens.iter().find(|t| t.id == id)
    }

    /// Waiting or failing when licenses run out, as the admin chose.
    pub fn shortage_status(&self) -> &'static str {
        if self.d.on_shortage == "wait" {
            status::WAITING
        } else {
            status::FAILED
        }
    }
}

impl Executor {
    pub fn new(engine: SyncEngine, mdm: Option<NanoMdm>, poll_interval: Duration) -> Self {
        Self {
            engine,
            mdm: mdm.map(Arc::new),
            poll_interval,
            polled: Arc::default(),
            reclaim_grace: Duration::from_secs(86_400),
            app_list_interval: Duration::from_secs(86_400),
            push_backoff: Duration::from_secs(60),
            mdm_backoff: Duration::from_secs(30),
            device_info_interval: Duration::from_secs(86_400),
            declarative_all: false,
            declarations_swept: Arc::default(),
            health: Arc::default(),
            wake: Arc::default(),
            steps: Arc::default(),
        }
    }

    pub(crate) fn store(&self) -> &Store {
        self.engine.store()
    }

    pub(crate) fn engine(&self) -> &SyncEngine {
        &self.engine
    }

    pub(crate) fn mdm(&self) -> Option<&NanoMdm> {
        self.mdm.as_deref()
    }

    pub(crate) fn bearer(&self, token: &TokenRow) -> Result<Bearer, DeployError> {
        self.engine
            .bearer_of(token)
            .map_err(|e| DeployError::Invalid(e.to_string()))
    }

    /// How long a departed device or person keeps its licenses (default a day).
    pub fn with_reclaim_grace(mut self, grace: Duration) -> Self {
        self.reclaim_grace = grace;
        self
    }

    /// How long a device or person that left management keeps its licenses.
    pub fn reclaim_grace(&self) -> Duration {
        self.reclaim_grace
    }

    /// How often each enrolled device is asked for its managed apps (default a day).
    pub fn with_app_list_interval(mut self, every: Duration) -> Self {
        self.app_list_interval = every;
        self
    }

    /// How often each enrolled device is asked for its OS version and model (default a day).
    pub fn with_device_info_interval(mut self, every: Duration) -> Self {
        self.device_info_interval = every;
        self
    }

    /// Declarative app management for every deployment, where devices support it.
    pub fn with_declarative(mut self, all: bool) -> Self {
        self.declarative_all = all;
        self
    }

    /// The first wait before NanoMDM is called again after a failure (default 30 s; doubling up
    /// to 15 minutes while it keeps failing).
    pub fn with_mdm_backoff(mut self, first: Duration) -> Self {
        self.mdm_backoff = first;
        self
    }

    /// Whether any target waits on a request to Apple (its answer is polled for).
    pub async fn requests_in_flight(&self) -> Result<bool, DeployError> {
        Ok(self.store().requests_in_flight().await? > 0)
    }

    /// Asks the loop for a pass now.
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    /// Resolves at the next `wake` (or at once if one came since the last pass began).
    pub async fn woken(&self) {
        self.wake.notified().await;
    }

    /// The tokens a deployment draws from, in order (usable ones holding the asset), with the
    /// asset as the first of them holds it.
    async fn tokens(
        &self,
        d: &DeploymentRow,
    ) -> Result<(Vec<TokenRow>, Option<AssetRow>), DeployError> {
        let now = now_ms();
        let holdings = self.store().asset_holdings(&d.adam_id, &d.pricing).await?;
        let all = self.store().tokens().await?;
        let ordered: Vec<TokenRow> = if d.token_ids.is_empty() {
            all
        } else {
            d.token_ids
                .iter()
                .filter_map(|id| all.iter().find(|t| t.id == *id).cloned())
                .collect()
        };
        let mut out = Vec::new();
        let mut asset = None;
        for t in ordered {
            if crate::unusable(&t, now).is_some() {
                continue;
            }
            if let Some((_, a)) = holdings.iter().find(|(id, _)| *id == t.id) {
                asset.get_or_insert_with(|| a.clone());
                out.push(t);
            }
        }
        Ok((out, asset))
    }

    /// One reconcile step of every deployment, then the reclaim policies.
    pub async fn run_all(&self) -> Result<(), DeployError> {
        // Rule-based collections first, so this pass's targets follow today's inventory.
        for (id, added, removed) in self.store().refresh_rule_collections(now_ms()).await? {
            tracing::info!(
                collection = id,
                added,
                removed,
                "a collection's rule changed its members"
            );
        }
        for d in self.store().deployments().await? {
            if let Err(e) = self.run(&d).await {
                tracing::warn!(deployment = d.id, error = %e, "deployment step failed");
            }
        }
        self.reclaim_departed(self.reclaim_grace).await?;
        self.reclaim_departed_people(self.reclaim_grace).await?;
        self.ask_app_lists().await?;
        self.ask_device_facts().await?;
        self.retry_pushes().await?;
        self.tell_declarations().await?;
        self.note_waiting().await?;
        self.delete_freed().await?;
        Ok(())
    }

    /// Collections and tokens deleted with `then` revoke or uninstall go once the deployments
    /// that used them have given back what they held.
    async fn delete_freed(&self) -> Result<(), DeployError> {
        let (collections, tokens) = self.store().freed_for_deletion().await?;
        for id in collections {
            self.store().delete_collection(id).await?;
            tracing::info!(
                collection = id,
                "collection deleted once its deployments had ended"
            );
        }
        for id in tokens {
            if let Err(e) = self.engine.delete_token(id).await {
                tracing::warn!(token = id, error = %e, "could not delete a token whose deployments had ended");
            } else {
                tracing::info!(
                    token = id,
                    "token deleted once the deployments using it had ended"
                );
            }
        }
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
        // Across instances: one steps a deployment at a time; the lease runs out if it dies.
        let owner = self.engine.lease_owner().to_owned();
        let now = now_ms();
        if !self
            .store()
            .try_lease_deployment(d.id, &owner, now, now + STEP_LEASE_MS)
            .await?
        {
            return Ok(());
        }
        // Read again under the lease: the caller's copy may predate a delete (`ending`).
        let result = match self.store().deployment(d.id).await {
            Ok(Some(fresh)) => self.step(&fresh).await,
            Ok(None) => Ok(()),
            Err(e) => Err(e.into()),
        };
        self.store().release_deployment_lease(d.id, &owner).await?;
        result
    }

    async fn step(&self, d: &DeploymentRow) -> Result<(), DeployError> {
        let Some(step) = self.prepare(d).await? else {
            if d.ending.is_some() && self.store().delete_deployment(d.id).await? {
                // Nothing left to give back through (no usable token holds the content any
                // more): it ends here, and what it still held shows in the ledger.
                tracing::warn!(
                    deployment = d.id,
                    "an ending deployment lost its token; what it held is left to the ledger"
                );
            }
            return Ok(());
        };
        let store = self.store();
        if let Some(then) = step.ending {
            return self.wind_down(&step, then).await;
        }
        store
            .sync_targets(
                d.id,
                d.collection_id,
                &step.kind_name,
                &d.on_leave,
                now_ms(),
            )
            .await?;
        // One intent per content and target: targets another deployment owns are left to it.
        store.supersede_targets(d.id, now_ms()).await?;
        // Nothing is spent on a device that cannot run the content: the wrong platform, or an
        // OS older than the app's minimum.
        if step.action.claims()
            && step.kind == CollectionKind::Devices
            && (step.compatible.is_some() || step.minimum_os.is_some())
        {
            store
                .mark_incompatible(
                    d.id,
                    step.compatible.as_deref(),
                    step.minimum_os.as_ref(),
                    now_ms(),
                )
                .await?;
        }
        self.follow_events(&step).await?;
        match step.action {
            Action::Required => {
                self.recheck_licenses(&step).await?;
                self.claim(
                    &step,
                    &[
                        status::PENDING,
                        status::WAITING,
                        status::NEEDS_USER,
                        status::INVITATION_PENDING,
                    ],
                )
                .await?;
                self.install(&step).await?;
                self.adopt_installed(&step).await?;
            }
            Action::Available => {
                self.offer(&step).await?;
                self.claim(
                    &step,
                    &[
                        status::REQUESTED,
                        status::WAITING,
                        status::INVITATION_PENDING,
                    ],
                )
                .await?;
                self.install(&step).await?;
            }
            Action::Uninstall => self.remove(&step, status::PENDING).await?,
            Action::Revoke => self.mark_for_release(&step).await?,
        }
        // Members that left with `on_leave` uninstall.
        if step.action.claims() {
            self.remove(&step, status::REMOVE_PENDING).await?;
        }
        self.release(&step).await?;
        Ok(())
    }

    /// A step of a deployment deleted with `then` revoke or uninstall: what it holds (and no
    /// deployment in force wants) is removed and given back; the rest is let go; once nothing is
    /// left the deployment is gone.
    async fn wind_down(&self, step: &Step, then: OnLeave) -> Result<(), DeployError> {
        let store = self.store();
        store
            .wind_down_targets(step.d.id, then.as_str(), now_ms())
            .await?;
        self.follow_events(step).await?;
        self.remove(step, status::REMOVE_PENDING).await?;
        self.release(step).await?;
        store
            .wind_down_targets(step.d.id, then.as_str(), now_ms())
            .await?;
        Ok(())
    }

    /// Where a target ends once its license went back (or it had none to give): `left` for a
    /// member that left the collection or a deployment that is ending, else by the action.
    pub(crate) async fn settled_status(
        &self,
        step: &Step,
        member_id: i64,
        released: bool,
    ) -> Result<&'static str, DeployError> {
        let leaving = step.ending.is_some()
            || (step.action.claims()
                && !self
                    .store()
                    .in_collection(step.d.collection_id, member_id)
                    .await?);
        Ok(if leaving {
            status::LEFT
        } else {
            events::final_status(step.action, released)
        })
    }

    async fn prepare(&self, d: &DeploymentRow) -> Result<Option<Step>, DeployError> {
        let action = Action::parse(&d.action)
            .ok_or_else(|| DeployError::Invalid(format!("unknown action {:?}", d.action)))?;
        let Some(collection) = self.store().collection(Some(d.collection_id), None).await? else {
            return Ok(None);
        };
        let (tokens, asset) = self.tokens(d).await?;
        let Some(asset) = asset else {
            return Ok(None);
        };
        let adam = d
            .adam_id
            .parse()
            .map_err(|_| DeployError::Invalid(format!("adamId {} is not a number", d.adam_id)))?;
        let metadata = self.store().metadata(&d.adam_id).await?;
        let is_book = asset.product_type == "Book";
        let compatible = allot_domain::compat::compatible_platforms(
            is_book,
            &asset.platforms,
            metadata.as_ref().map_or(&[][..], |m| &m.platforms[..]),
        );
        let minimum_os = metadata.as_ref().and_then(|m| {
            allot_domain::compat::MinimumOs::of(
                is_book,
                m.kind.as_deref(),
                m.minimum_os_version.as_deref(),
            )
        });
        let bundle_id = metadata.and_then(|m| m.bundle_id);
        let kind = if collection.kind == "users" {
            CollectionKind::Users
        } else {
            CollectionKind::Devices
        };
        Ok(Some(Step {
            d: d.clone(),
            action,
            kind,
            kind_name: collection.kind,
            tokens,
            facts: AssetFacts {
                is_book,
                device_assignable: asset.device_assignable,
            },
            adam,
            bundle_id,
            compatible,
            minimum_os,
            ending: d.ending.as_deref().and_then(OnLeave::parse),
        }))
    }

    /// Which members of a page already hold a license of the asset on the step's tokens, and on
    /// which token: by serial number (device licenses) and by clientUserId (user licenses).
    pub(crate) async fn holders_of(
        &self,
        step: &Step,
        page: &[MemberTarget],
    ) -> Result<(HashMap<String, i64>, HashMap<String, i64>), DeployError> {
        let (store, d, ids) = (self.store(), &step.d, step.token_ids());
        let serials: Vec<String> = page
            .iter()
            .filter_map(|m| m.serial_number.clone())
            .collect();
        let users: Vec<String> = page
            .iter()
            .filter_map(|m| m.person.as_ref().map(|p| p.client_user_id.clone()))
            .collect();
        Ok((
            store
                .holders_among(&ids, &d.adam_id, &d.pricing, "device", &serials)
                .await?,
            store
                .holders_among(&ids, &d.adam_id, &d.pricing, "user", &users)
                .await?,
        ))
    }

    /// Renews this instance's lease on a deployment between pages of a long step; an error if
    /// another instance holds it now (this step then stops).
    pub(crate) async fn keep_lease(&self, deployment_id: i64) -> Result<(), DeployError> {
        let now = now_ms();
        if self
            .store()
            .try_lease_deployment(
                deployment_id,
                self.engine.lease_owner(),
                now,
                now + STEP_LEASE_MS,
            )
            .await?
        {
            Ok(())
        } else {
            Err(DeployError::Invalid(format!(
                "deployment {deployment_id} is being stepped by another instance"
            )))
        }
    }

    /// Whether an event may be polled now (Apple asks for some time between polls).
    pub(crate) fn due(&self, event_id: &str) -> bool {
        let mut polled = self.polled.lock().expect("poll lock");
        let now = Instant::now();
        // Events are followed for minutes, not days: forget the old ones (a poll a day later
        // is due anyway), so the map does not grow with every request of the process's life.
        if polled.len() > 10_000 {
            let forget = Duration::from_secs(3600).max(self.poll_interval * 2);
            polled.retain(|_, at| now.duration_since(*at) < forget);
        }
        match polled.get(event_id) {
            Some(at) if now.duration_since(*at) < self.poll_interval => false,
            _ => {
                polled.insert(event_id.to_owned(), now);
                true
            }
        }
    }

    /// A request was just made on a token: when Apple's notifications reach this server (the
    /// token has a notification secret), its event is first polled a poll interval from now —
    /// by then they have usually said how it went, and no poll is needed at all.
    pub(crate) fn event_started(&self, token: &TokenRow, event_id: &str) {
        if token.notification_secret.is_some() {
            self.polled
                .lock()
                .expect("poll lock")
                .insert(event_id.to_owned(), Instant::now());
        }
    }

    pub(crate) fn poll_interval(&self) -> Duration {
        self.poll_interval
    }
}
