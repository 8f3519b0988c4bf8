//! When each token syncs: a delta twice a day and a full sync weekly by default, each token at its
//! own phase of the interval (from its location id), so 3,000 tokens spread over the day instead
//! of starting together.

use std::time::Duration;

use allot_store::TokenRow;

use crate::{now_ms, SyncEngine, SyncError, SyncKind};

/// A stable position of `uid` within `period` milliseconds.
fn phase(uid: &str, period: i64) -> i64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    uid.hash(&mut h);
    (h.finish() % period.max(1) as u64) as i64
}

/// The first time at or after `earliest` that falls on the token's phase of `period`.
fn on_phase(uid: &str, period: i64, earliest: i64) -> i64 {
    let p = phase(uid, period);
    let k = (earliest - p).div_euclid(period);
    let t = k * period + p;
    if t >= earliest {
        t
    } else {
        t + period
    }
}

/// What sync a token needs next and when (Unix ms); `None` for tokens that cannot sync (revoked,
/// expired).
pub fn next_due(
    t: &TokenRow,
    delta: Duration,
    full: Duration,
    now: i64,
) -> Option<(SyncKind, i64)> {
    if t.auth_error.is_some() || t.expires_at <= now {
        return None;
    }
    let (delta, full) = (delta.as_millis() as i64, full.as_millis() as i64);
    if t.full_sync_wanted || t.last_full_sync_at.is_none() {
        return Some((SyncKind::Full, now));
    }
    // Never sooner than half an interval after the last run, then on the token's phase.
    let full_at = on_phase(&t.uid, full, t.last_full_sync_at.unwrap_or(0) + full / 2);
    let last_delta = t.last_delta_sync_at.or(t.last_full_sync_at).unwrap_or(0);
    let delta_at = on_phase(&t.uid, delta, last_delta + delta / 2);
    if full_at <= delta_at {
        Some((SyncKind::Full, full_at))
    } else {
        Some((SyncKind::Delta, delta_at))
    }
}

impl SyncEngine {
    /// Runs due syncs until the task is dropped; checks every `tick`, and as soon as one of this
    /// instance's syncs ends (a slot is free for the next due token).
    pub async fn run_schedule(self, tick: Duration) {
        let mut intents_at = tokio::time::Instant::now();
        loop {
            if let Err(e) = self.schedule_once(now_ms()).await {
                tracing::warn!(error = %e, "sync schedule pass failed");
            }
            // A due token another instance holds is taken over when its lease runs out (that
            // instance may have died): look again then rather than a whole tick later.
            let pause = match self.inner.lease_ends.lock().expect("lease ends").take() {
                Some(at) => {
                    Duration::from_millis((at - now_ms()).clamp(0, i64::MAX) as u64 + 50).min(tick)
                }
                None => tick,
            };
            // Subscription intents follow their collections between syncs.
            if intents_at.elapsed() >= tick || tick.is_zero() {
                self.reconcile_all_subscription_intents().await;
                intents_at = tokio::time::Instant::now();
            }
            tokio::select! {
                _ = tokio::time::sleep(pause) => {}
                _ = self.inner.slot_freed.notified() => {}
            }
        }
    }

    /// Starts the syncs that are due now, as many as this instance has free slots: a due token
    /// is leased only when a slot can run it at once, so several instances share the due tokens
    /// instead of the first one leasing them all and queueing them (where a lease could also
    /// run out before the sync starts). Returns how many started.
    pub async fn schedule_once(&self, now: i64) -> Result<usize, SyncError> {
        let store = &self.inner.store;
        store.interrupt_abandoned_runs(now).await?;
        let mut started = 0;
        for t in store.tokens().await? {
            let Some((kind, at)) = next_due(
                &t,
                self.inner.config.delta_interval,
                self.inner.config.full_interval,
                now,
            ) else {
                continue;
            };
            if at > now {
                continue;
            }
            // Leased: running here or on another instance.
            if let Some(until) = t.lease_until.filter(|until| *until > now) {
                let mut ends = self.inner.lease_ends.lock().expect("lease ends");
                *ends = Some(ends.map_or(until, |e| e.min(until)));
                continue;
            }
            let Ok(slot) = self.inner.slots.clone().try_acquire_owned() else {
                // Every slot is busy; the next free one calls the schedule again.
                break;
            };
            match self.start_sync_in(t.id, kind, "schedule", Some(slot)).await {
                Ok(_) => started += 1,
                Err(SyncError::AlreadyRunning) => {}
                Err(e) => {
                    tracing::warn!(token = t.id, error = %e, "could not start a scheduled sync")
                }
            }
        }
        Ok(started)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const H: i64 = 3_600_000;

    fn token(uid: &str) -> TokenRow {
        TokenRow {
            id: 1,
            name: "t".into(),
            description: String::new(),
            categories: vec![],
            apple_account: String::new(),
            program: allot_domain::Program::Business,
            uid: uid.into(),
            org_name: String::new(),
            location_name: String::new(),
            country: String::new(),
            secret: vec![],
            notification_secret: None,
            expires_at: i64::MAX,
            claim: allot_domain::Claim::Ours,
            other_mdm: None,
            auth_error: None,
            last_error: None,
            last_error_at: None,
            assignments_version: Some("v".into()),
            users_version: Some("v".into()),
            last_delta_sync_at: Some(1000 * H),
            last_full_sync_at: Some(1000 * H),
            sync_serial: 1,
            lease_owner: None,
            lease_until: None,
            full_sync_wanted: false,
            created_at: 0,
            updated_at: 0,
        }
    }

    #[test]
    fn deltas_come_twice_a_day_on_each_tokens_phase() {
        let (d, f) = (
            Duration::from_secs(12 * 3600),
            Duration::from_secs(7 * 86400),
        );
        let (kind, at) = next_due(&token("2049025000431439"), d, f, 1000 * H).unwrap();
        assert_eq!(kind, SyncKind::Delta);
        assert!(
            (1006 * H..1018 * H).contains(&at),
            "between half and one and a half intervals: {}",
            at / H
        );
        // 3,000 locations spread over the 12 hours.
        let mut per_hour = [0; 12];
        for i in 0..3000 {
            let (_, at) = next_due(&token(&format!("20490250{i:08}")), d, f, 1000 * H).unwrap();
            per_hour[((at - 1006 * H) / H) as usize] += 1;
        }
        assert!(per_hour.iter().all(|&n| n > 150 && n < 350), "{per_hour:?}");
    }

    #[test]
    fn full_syncs_come_weekly_and_when_wanted() {
        let (d, f) = (
            Duration::from_secs(12 * 3600),
            Duration::from_secs(7 * 86400),
        );
        let mut t = token("1");
        t.last_delta_sync_at = Some(1000 * H + 24 * 7 * H);
        let (kind, _) = next_due(&t, d, f, 1000 * H + 24 * 7 * H).unwrap();
        assert_eq!(kind, SyncKind::Delta);
        t.last_delta_sync_at = Some(1000 * H + 24 * 11 * H);
        assert_eq!(
            next_due(&t, d, f, 0).unwrap().0,
            SyncKind::Full,
            "a week and a half after the last full sync"
        );
        t.full_sync_wanted = true;
        assert_eq!(next_due(&t, d, f, 5).unwrap(), (SyncKind::Full, 5));
        t.auth_error = Some(9625);
        assert_eq!(next_due(&t, d, f, 5), None, "a revoked token does not sync");
    }
}
