//! Subscriptions (Apple's §15), for tokens whose administrator asked Allot to manage them: enabled
//! at Apple once, then read whole (cursor pages) at every sync, kept current between syncs by
//! `SUBSCRIPTION_COUNT` and `SUBSCRIPTION_MANAGEMENT`, and seats given or taken back for users —
//! what Allot shows is what Apple last said, never what it asked for.

use std::time::Duration;

use allot_apple_client::{AppleError, Bearer};
use allot_apple_wire::{
    event_status, event_type, ManageSubscriptionsRequest, ResponseSubscription,
    SubscriptionCountNotification, SubscriptionManagementNotification, RESULT_SUCCESS,
};
use allot_domain::Claim;
use allot_store::{SeatRow, StoreError, SubscriptionRow};

use crate::{now_ms, SyncEngine};

#[derive(Debug, thiserror::Error)]
pub enum SubscriptionError {
    #[error("no token with id {0}")]
    NotFound(i64),
    #[error("token {name} is managed by another MDM{other}: take it over before managing its subscriptions")]
    NotOurs { name: String, other: String },
    #[error("subscriptions are not managed for token {0}: enable them first")]
    NotEnabled(String),
    #[error(transparent)]
    Apple(#[from] AppleError),
    #[error("{0}")]
    Other(String),
}

impl From<StoreError> for SubscriptionError {
    fn from(e: StoreError) -> Self {
        Self::Other(e.to_string())
    }
}

/// Pages of one list before we stop trusting the cursor (Apple's lists are small).
const MAX_PAGES: usize = 10_000;

/// What an administrator asks of a user's seat.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SeatChange {
    /// Give a seat that renews at the period's end, or one that ends with it.
    Assign { renewing: bool },
    /// Take it back now, or (deferred) at the period's end so the user keeps what was paid for.
    Remove { deferred: bool },
}

fn row(token_id: i64, s: &ResponseSubscription) -> SubscriptionRow {
    let c = &s.counts;
    SubscriptionRow {
        token_id,
        parent_adam_id: s.parent_adam_id,
        adam_id: s.adam_id,
        status: s.status.clone(),
        period_end: s.period_end_date.clone(),
        assigned_renewing: c.assigned.renewing,
        assigned_expiring: c.assigned.expiring,
        available_renewing: c.available.renewing,
        available_expiring: c.available.expiring,
        total_renewing: c.total.renewing,
        total_expiring: c.total.expiring,
        updated_at: 0,
    }
}

impl SyncEngine {
    /// Tells Apple we manage this location's subscriptions (so they can be bought into it), and
    /// reads them. Refused for a token another MDM holds.
    pub async fn enable_subscriptions(&self, token_id: i64) -> Result<usize, SubscriptionError> {
        let store = &self.inner.store;
        let t = store
            .token(token_id)
            .await?
            .ok_or(SubscriptionError::NotFound(token_id))?;
        if t.claim != Claim::Ours {
            return Err(SubscriptionError::NotOurs {
                name: t.name,
                other: t
                    .other_mdm
                    .as_deref()
                    .map(|m| format!(" ({m})"))
                    .unwrap_or_default(),
            });
        }
        let bearer = self
            .bearer(&t)
            .map_err(|e| SubscriptionError::Other(e.to_string()))?;
        // Idempotent at Apple: an unknown outcome is simply asked again.
        let mut attempt = 0;
        loop {
            attempt += 1;
            match self.inner.apple.enable_subscriptions(&bearer).await {
                Ok(_) => break,
                Err(AppleError::OutcomeUnknown(_)) if attempt < 3 => continue,
                Err(e) => return Err(e.into()),
            }
        }
        store
            .enable_subscription_management(token_id, now_ms())
            .await?;
        self.refresh_subscriptions(token_id, &bearer)
            .await
            .map_err(SubscriptionError::Other)
    }

    /// Reads every subscription and seat of the token (all cursor pages) and stores them. Returns
    /// how many subscriptions there are.
    pub(crate) async fn refresh_subscriptions(
        &self,
        token_id: i64,
        bearer: &Bearer,
    ) -> Result<usize, String> {
        let apple = &self.inner.apple;
        let mut subs = Vec::new();
        let mut cursor: Option<String> = None;
        for _ in 0..MAX_PAGES {
            let page = apple
                .subscriptions(bearer, cursor.as_deref())
                .await
                .map_err(|e| e.to_string())?;
            subs.extend(page.subscriptions.iter().map(|s| row(token_id, s)));
            match page.next_cursor.filter(|c| !c.is_empty()) {
                Some(c) => cursor = Some(c),
                None => break,
            }
        }
        let mut seats = Vec::new();
        let mut cursor: Option<String> = None;
        for _ in 0..MAX_PAGES {
            let page = apple
                .subscription_assignments(bearer, cursor.as_deref())
                .await
                .map_err(|e| e.to_string())?;
            seats.extend(page.assignments.into_iter().map(|a| SeatRow {
                adam_id: a.adam_id,
                client_user_id: a.client_user_id,
                renewing: a.renewing,
                leaving: false,
            }));
            match page.next_cursor.filter(|c| !c.is_empty()) {
                Some(c) => cursor = Some(c),
                None => break,
            }
        }
        self.inner
            .store
            .replace_subscriptions(token_id, &subs, &seats, now_ms())
            .await
            .map_err(|e| e.to_string())?;
        Ok(subs.len())
    }

    /// Part of a sync: subscriptions are read when the token has them enabled.
    pub(crate) async fn sync_subscriptions(
        &self,
        token_id: i64,
        bearer: &Bearer,
    ) -> Result<(), String> {
        let enabled = self
            .inner
            .store
            .subscription_management(token_id)
            .await
            .map_err(|e| e.to_string())?;
        if enabled.is_some() {
            self.refresh_subscriptions(token_id, bearer).await?;
        }
        Ok(())
    }

    pub(crate) async fn apply_subscription_count(
        &self,
        token_id: i64,
        c: &SubscriptionCountNotification,
    ) -> Result<usize, StoreError> {
        let counts = &c.counts;
        let row = SubscriptionRow {
            token_id,
            parent_adam_id: c.parent_adam_id,
            adam_id: c.adam_id,
            available_renewing: counts.available.renewing,
            available_expiring: counts.available.expiring,
            total_renewing: counts.total.renewing,
            total_expiring: counts.total.expiring,
            ..Default::default()
        };
        self.inner
            .store
            .apply_subscription_counts(token_id, &row, now_ms())
            .await?;
        // The period's end and status come with the next read.
        self.subscriptions_soon(token_id);
        Ok(1)
    }

    pub(crate) async fn apply_subscription_management(
        &self,
        token_id: i64,
        m: &SubscriptionManagementNotification,
    ) -> Result<usize, StoreError> {
        if m.result != RESULT_SUCCESS {
            return Ok(0);
        }
        let store = &self.inner.store;
        let n = if m.kind == event_type::ASSOCIATE {
            let seats: Vec<SeatRow> = m
                .assignments
                .iter()
                .map(|a| SeatRow {
                    adam_id: a.adam_id,
                    client_user_id: a.client_user_id.clone(),
                    renewing: a.renewing,
                    leaving: false,
                })
                .collect();
            store.put_seats(token_id, &seats, now_ms()).await?;
            seats.len()
        } else {
            let gone: Vec<(i64, String)> = m
                .assignments
                .iter()
                .map(|a| (a.adam_id, a.client_user_id.clone()))
                .collect();
            store.remove_seats(token_id, &gone).await? as usize
        };
        // Assigned and available counts move with the seats: read them again.
        self.subscriptions_soon(token_id);
        Ok(n)
    }

    /// Reads a token's subscriptions again in the background (after a notification).
    fn subscriptions_soon(&self, token_id: i64) {
        let me = self.clone();
        tokio::spawn(async move {
            let Ok(Some(t)) = me.inner.store.token(token_id).await else {
                return;
            };
            let Ok(bearer) = me.bearer(&t) else {
                return;
            };
            if let Err(e) = me.refresh_subscriptions(token_id, &bearer).await {
                tracing::warn!(token = token_id, error = %e, "could not read subscriptions after a notification");
            }
        });
    }

    /// Gives or takes back seats of one subscription for users (at most 1,000 per request, as
    /// Apple allows). Answers Apple's event id at once; the event is followed in the background,
    /// and what it did is read back from Apple when it ends (a deferred removal is marked as
    /// leaving then).
    pub async fn change_seats(
        &self,
        token_id: i64,
        adam_id: i64,
        users: &[String],
        change: SeatChange,
    ) -> Result<String, SubscriptionError> {
        let store = &self.inner.store;
        let t = store
            .token(token_id)
            .await?
            .ok_or(SubscriptionError::NotFound(token_id))?;
        if store.subscription_management(token_id).await?.is_none() {
            return Err(SubscriptionError::NotEnabled(t.name));
        }
        let bearer = self
            .bearer(&t)
            .map_err(|e| SubscriptionError::Other(e.to_string()))?;
        let mut req = ManageSubscriptionsRequest {
            adam_ids: vec![adam_id],
            client_user_ids: users.to_vec(),
            ..Default::default()
        };
        let res = match change {
            SeatChange::Assign { renewing } => {
                req.renewing = Some(renewing);
                self.inner
                    .apple
                    .associate_subscriptions(&bearer, &req)
                    .await?
            }
            SeatChange::Remove { deferred } => {
                req.deferred = Some(deferred);
                self.inner
                    .apple
                    .disassociate_subscriptions(&bearer, &req)
                    .await?
            }
        };
        let me = self.clone();
        let event_id = res.event_id.clone();
        let users = users.to_vec();
        tokio::spawn(async move {
            me.follow_seat_event(token_id, adam_id, &event_id, &users, change)
                .await;
        });
        Ok(res.event_id)
    }

    async fn follow_seat_event(
        &self,
        token_id: i64,
        adam_id: i64,
        event_id: &str,
        users: &[String],
        change: SeatChange,
    ) {
        let Ok(Some(t)) = self.inner.store.token(token_id).await else {
            return;
        };
        let Ok(bearer) = self.bearer(&t) else {
            return;
        };
        let poll = self.inner.config.subscription_event_poll;
        let deadline = std::time::Instant::now() + Duration::from_secs(3600);
        let status = loop {
            tokio::time::sleep(poll).await;
            match self.inner.apple.status(&bearer, event_id).await {
                Ok(s) if s.event_status != event_status::PENDING => break Some(s),
                Ok(_) => {}
                Err(e) => {
                    tracing::debug!(token = token_id, error = %e, "subscription event status")
                }
            }
            if std::time::Instant::now() > deadline {
                break None;
            }
        };
        if let (Some(s), SeatChange::Remove { deferred: true }) = (&status, change) {
            let failed: Vec<&String> = s
                .failures
                .iter()
                .filter_map(|f| f.error_info.as_ref())
                .flat_map(|i| i.client_user_ids.iter())
                .collect();
            let leaving: Vec<String> = users
                .iter()
                .filter(|u| !failed.contains(u))
                .cloned()
                .collect();
            if let Err(e) = self
                .inner
                .store
                .mark_seats_leaving(token_id, adam_id, &leaving, now_ms())
                .await
            {
                tracing::warn!(token = token_id, error = %e, "could not mark seats as leaving");
            }
        }
        if let Some(s) = &status {
            for f in &s.failures {
                tracing::info!(
                    token = token_id,
                    adam_id,
                    error = f.error_number,
                    "Apple did not change some subscription seats"
                );
            }
        }
        if let Err(e) = self.refresh_subscriptions(token_id, &bearer).await {
            tracing::warn!(token = token_id, error = %e, "could not read subscriptions after a seat change");
        }
    }
}
