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
            self.reconcile_subscription_intents(token_id)
                .await
                .map_err(|e| e.to_string())?;
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

    /// Makes the token's subscription intents true in the background, if it has any (after
    /// Apple registered users: they can now get their seats).
    pub(crate) fn intents_soon(&self, token_id: i64) {
        let me = self.clone();
        tokio::spawn(async move {
            match me.inner.store.subscription_intents(Some(token_id)).await {
                Ok(i) if !i.is_empty() => {
                    if let Err(e) = me.reconcile_subscription_intents(token_id).await {
                        tracing::warn!(token = token_id, error = %e, "subscription intents");
                    }
                }
                _ => {}
            }
        });
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
                return;
            }
            if let Err(e) = me.reconcile_subscription_intents(token_id).await {
                tracing::warn!(token = token_id, error = %e, "subscription intents");
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

/// What one pass over a token's subscription intents asked of Apple, and who waits for a seat.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct IntentPass {
    pub registering: usize,
    pub assigning: usize,
    pub removing: usize,
    pub waiting_for_seats: usize,
}

impl SyncEngine {
    /// One pass over every token that has subscription intents (the schedule's tick).
    pub async fn reconcile_all_subscription_intents(&self) {
        let Ok(intents) = self.inner.store.subscription_intents(None).await else {
            return;
        };
        let mut tokens: Vec<i64> = intents.iter().map(|i| i.token_id).collect();
        tokens.sort_unstable();
        tokens.dedup();
        for t in tokens {
            if let Err(e) = self.reconcile_subscription_intents(t).await {
                tracing::warn!(token = t, error = %e, "subscription intents");
            }
        }
    }
}

/// A request of an intent is not repeated while Apple works on it.
const IN_FLIGHT_FOR: Duration = Duration::from_secs(600);

impl SyncEngine {
    fn claim_in_flight(&self, token_id: i64, adam_id: i64, users: Vec<String>) -> Vec<String> {
        let mut m = self.inner.seats_in_flight.lock().expect("in-flight lock");
        let now = std::time::Instant::now();
        m.retain(|_, at| now.duration_since(*at) < IN_FLIGHT_FOR);
        users
            .into_iter()
            .filter(|u| m.insert((token_id, adam_id, u.clone()), now).is_none())
            .collect()
    }

    /// Makes a token's subscription intents true: people of the collection not registered at
    /// the location are registered (Apple needs a registered user for a seat), registered ones
    /// without a seat get one while seats are free (the rest wait), and people an intent gave a
    /// seat to who left the collection give it back at the period's end. Only what differs is
    /// asked, and a request is not repeated while Apple works on it.
    pub async fn reconcile_subscription_intents(
        &self,
        token_id: i64,
    ) -> Result<IntentPass, SubscriptionError> {
        let store = &self.inner.store;
        let intents = store.subscription_intents(Some(token_id)).await?;
        let mut pass = IntentPass::default();
        if intents.is_empty() {
            return Ok(pass);
        }
        let Some(t) = store.token(token_id).await? else {
            return Ok(pass);
        };
        if t.claim != Claim::Ours || store.subscription_management(token_id).await?.is_none() {
            return Ok(pass);
        }
        let bearer = self
            .bearer(&t)
            .map_err(|e| SubscriptionError::Other(e.to_string()))?;
        let mut registered: std::collections::HashSet<String> = Default::default();
        let subs = store.subscriptions(Some(token_id)).await?;
        // Everyone some intent wants on each subscription (collections may overlap).
        let mut wanted: std::collections::HashMap<i64, std::collections::HashSet<String>> =
            Default::default();
        let mut people_of = Vec::new();
        for i in &intents {
            let mut people = Vec::new();
            for (p, is_registered) in store
                .collection_people_registered(i.collection_id, token_id)
                .await?
            {
                if is_registered {
                    registered.insert(p.client_user_id.clone());
                }
                people.push(p);
            }
            wanted
                .entry(i.adam_id)
                .or_default()
                .extend(people.iter().map(|p| p.client_user_id.clone()));
            people_of.push(people);
        }
        for (i, people) in intents.iter().zip(people_of) {
            // Registration first.
            let unregistered: Vec<&allot_store::PersonRow> = people
                .iter()
                .filter(|p| !registered.contains(&p.client_user_id))
                .collect();
            let ask = self.claim_in_flight(
                token_id,
                0,
                unregistered
                    .iter()
                    .map(|p| p.client_user_id.clone())
                    .collect(),
            );
            if !ask.is_empty() {
                let users = unregistered
                    .iter()
                    .filter(|p| ask.contains(&p.client_user_id))
                    .map(|p| allot_apple_wire::RequestUser {
                        client_user_id: p.client_user_id.clone(),
                        email: p.email.clone(),
                        managed_apple_id: p.managed_apple_id.clone(),
                    })
                    .collect::<Vec<_>>();
                let max = self
                    .inner
                    .apple
                    .request_limit(allot_apple_wire::limit::MAX_USERS)
                    .await;
                for chunk in users.chunks(max.max(1)) {
                    let req = allot_apple_wire::ManageUsersRequest {
                        users: chunk.to_vec(),
                    };
                    // Asking again is safe: Apple answers 9716 for a user it has.
                    match self.inner.apple.create_users(&bearer, &req).await {
                        Ok(_) | Err(AppleError::OutcomeUnknown(_)) => {}
                        Err(e) => return Err(e.into()),
                    }
                }
                pass.registering += ask.len();
            }
            let sub = subs.iter().find(|s| s.adam_id == i.adam_id);
            let seats = store.subscription_seats(token_id, i.adam_id).await?;
            let seated = |u: &str| seats.iter().any(|s| s.client_user_id == u && !s.leaving);
            // Seats for registered members without one, while seats are free.
            let missing: Vec<String> = people
                .iter()
                .map(|p| p.client_user_id.clone())
                .filter(|u| registered.contains(u) && !seated(u))
                .collect();
            let free = sub.map_or(0, |s| {
                if i.renewing {
                    s.available_renewing
                } else {
                    s.available_expiring
                }
            });
            let take: Vec<String> = missing
                .iter()
                .take(usize::try_from(free.max(0)).unwrap_or(0).min(1000))
                .cloned()
                .collect();
            pass.waiting_for_seats += missing.len() - take.len();
            let take = self.claim_in_flight(token_id, i.adam_id, take);
            if !take.is_empty() {
                store.add_intent_users(i.id, &take).await?;
                self.change_seats(
                    token_id,
                    i.adam_id,
                    &take,
                    SeatChange::Assign {
                        renewing: i.renewing,
                    },
                )
                .await?;
                pass.assigning += take.len();
            }
            // People it gave a seat to who are no longer wanted by any intent.
            let empty = std::collections::HashSet::new();
            let want = wanted.get(&i.adam_id).unwrap_or(&empty);
            let left: Vec<String> = store
                .intent_users(i.id)
                .await?
                .into_iter()
                .filter(|u| !want.contains(u))
                .collect();
            let holding: Vec<String> = left.iter().filter(|u| seated(u)).cloned().collect();
            let holding = self.claim_in_flight(token_id, -i.adam_id, holding);
            if !holding.is_empty() {
                self.change_seats(
                    token_id,
                    i.adam_id,
                    &holding,
                    SeatChange::Remove { deferred: true },
                )
                .await?;
                pass.removing += holding.len();
            }
            // Forgotten once Apple took the request (or the seat is already gone).
            store.remove_intent_users(i.id, &left).await?;
        }
        Ok(pass)
    }
}
