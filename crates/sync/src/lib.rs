//! Keeps Allot's copy of every location exact: adding and renewing content tokens, full and delta
//! syncs that stream into the store in bounded memory, Apple's notifications applied between
//! syncs, and the schedule that runs it all.

mod metadata;
mod notifications;
mod reconcile;
mod run;
mod schedule;
mod subscriptions;
mod tokens;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use allot_apple_client::AppleClient;
use allot_secrets::SecretBox;
use allot_store::Store;

pub use notifications::{NotificationError, NotificationOutcome};
pub use run::{SyncError, SyncKind, SyncOutcome};
pub use schedule::next_due;
pub use subscriptions::{IntentPass, SeatChange, SubscriptionError};
pub use tokens::{AddToken, TokenError};

/// Intervals and limits of syncing.
#[derive(Debug, Clone)]
pub struct SyncConfig {
    /// Delta sync interval (default 12 h: twice a day).
    pub delta_interval: Duration,
    /// Full sync interval (default 7 days).
    pub full_interval: Duration,
    /// How long a sync may hold a token before another instance may take over.
    pub lease: Duration,
    /// Syncs running at once across all tokens.
    pub max_concurrent: usize,
    /// Re-fetch app metadata older than this.
    pub metadata_max_age: Duration,
    /// The `l` of metadata lookups: the language of app names.
    pub metadata_language: String,
    /// More mismatched assets than this after a walk: walk all assignments again instead of
    /// re-reading them asset by asset.
    pub reconcile_asset_limit: usize,
    /// This instance's name in leases. Stable across restarts (the server keeps it in its data
    /// folder), so an instance that died mid-step takes its work back at once; none: random.
    pub lease_owner: Option<String>,
    /// The metadata API for organizations (§18.2), when a developer key is configured: asked
    /// first, the content metadata lookup (§18.1) answering for what it does not know.
    pub catalog: Option<std::sync::Arc<allot_apple_client::CatalogClient>>,
    /// Storefronts tried after the location's own for apps one region sells alone.
    pub catalog_storefronts: Vec<String>,
    /// Least time between two polls of a subscription seat event (Apple: 30 s).
    pub subscription_event_poll: Duration,
}

impl Default for SyncConfig {
    fn default() -> Self {
        Self {
            delta_interval: Duration::from_secs(12 * 3600),
            full_interval: Duration::from_secs(7 * 86400),
            lease: Duration::from_secs(600),
            max_concurrent: 4,
            metadata_max_age: Duration::from_secs(7 * 86400),
            metadata_language: "en-us".into(),
            reconcile_asset_limit: 50,
            lease_owner: None,
            catalog: None,
            catalog_storefronts: allot_apple_wire::catalog::FALLBACK_STOREFRONTS
                .map(String::from)
                .to_vec(),
            subscription_event_poll: Duration::from_secs(30),
        }
    }
}

/// Who we are to Apple: the `mdmInfo` we put on locations we manage.
#[derive(Debug, Clone)]
pub struct Instance {
    pub id: String,
    pub name: String,
    pub version: String,
    /// Where Apple reaches this instance for notifications (`https://allot.example.com`); none
    /// means notifications are not configured and syncs alone keep data current.
    pub public_url: Option<String>,
}

/// Live progress of a running sync, for progress bars.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Progress {
    pub run_id: i64,
    pub kind: String,
    pub phase: String,
    pub pages: i64,
    pub pages_total: i64,
}

#[derive(Clone)]
pub struct SyncEngine {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub store: Store,
    pub apple: AppleClient,
    pub secrets: SecretBox,
    pub instance: Instance,
    pub config: SyncConfig,
    pub progress: Mutex<HashMap<i64, Progress>>,
    /// Syncs this instance runs at once (`max_concurrent`).
    pub slots: Arc<tokio::sync::Semaphore>,
    /// Rings when a scheduled sync ends: a slot is free for the next due token.
    pub slot_freed: tokio::sync::Notify,
    /// The soonest a lease on a due token runs out (Unix ms), seen by the last schedule pass.
    pub lease_ends: Mutex<Option<i64>>,
    /// Identifies this instance as a lease owner; each sync run's lease is this name and a run id.
    pub lease_owner: String,
    /// The lease name of each sync run this process has under way, by run id.
    pub run_leases: Mutex<HashMap<i64, String>>,
    /// Subscription intents' requests to Apple in flight (token, subscription or 0 for a
    /// registration, user) and when asked: not asked again for ten minutes.
    pub seats_in_flight: Mutex<HashMap<(i64, i64, String), std::time::Instant>>,
}

impl SyncEngine {
    pub fn new(
        store: Store,
        apple: AppleClient,
        secrets: SecretBox,
        instance: Instance,
        config: SyncConfig,
    ) -> Self {
        let slots = Arc::new(tokio::sync::Semaphore::new(config.max_concurrent.max(1)));
        let lease_owner = config
            .lease_owner
            .clone()
            .unwrap_or_else(|| format!("allot-{}", uuid::Uuid::new_v4().simple()));
        Self {
            inner: Arc::new(Inner {
                store,
                apple,
                secrets,
                instance,
                config,
                progress: Mutex::default(),
                slots,
                slot_freed: tokio::sync::Notify::new(),
                lease_ends: Mutex::default(),
                lease_owner,
                run_leases: Mutex::default(),
                seats_in_flight: Mutex::default(),
            }),
        }
    }

    pub fn store(&self) -> &Store {
        &self.inner.store
    }

    pub fn config(&self) -> &SyncConfig {
        &self.inner.config
    }

    pub fn instance(&self) -> &Instance {
        &self.inner.instance
    }

    /// The Apple client (one per process, so one pacer governs each token's requests).
    /// Seals a secret with the server's key (webhook secrets, like tokens, are kept encrypted).
    pub fn seal(&self, plain: &[u8]) -> Vec<u8> {
        self.inner.secrets.seal(plain)
    }

    pub fn apple(&self) -> &AppleClient {
        &self.inner.apple
    }

    /// A stored token's bearer credential, decrypted.
    pub fn bearer_of(
        &self,
        t: &allot_store::TokenRow,
    ) -> Result<allot_apple_client::Bearer, TokenError> {
        self.bearer(t)
    }

    /// The running sync of a token, if any (this instance only).
    pub fn progress(&self, token_id: i64) -> Option<Progress> {
        self.inner
            .progress
            .lock()
            .expect("progress lock")
            .get(&token_id)
            .cloned()
    }

    /// The notification URL Apple is given for a token.
    /// This process's name in leases (token syncs, deployment steps).
    pub fn lease_owner(&self) -> &str {
        &self.inner.lease_owner
    }

    /// Where this instance is reached from outside, if configured.
    pub fn public_url(&self) -> Option<&str> {
        self.inner.instance.public_url.as_deref()
    }

    pub fn notification_url(&self, token_id: i64) -> Option<String> {
        self.inner
            .instance
            .public_url
            .as_ref()
            .map(|u| format!("{}/apple/notifications/{token_id}", u.trim_end_matches('/')))
    }
}

/// Unix milliseconds now.
pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}
