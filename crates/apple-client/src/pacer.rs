//! Keeps each token within Apple's request rate, and silent while a `Retry-After` runs.
//! Requests of one token are given evenly spaced start slots; a refusal pushes every later slot
//! of that token past the time Apple named.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

#[derive(Default)]
struct Lane {
    next_slot: Option<Instant>,
    blocked_until: Option<Instant>,
}

#[derive(Default)]
pub struct Pacer {
    lanes: Mutex<HashMap<u64, Lane>>,
}

impl Pacer {
    /// Waits for the next start slot of `key` at `per_second` (0 = unpaced).
    pub async fn acquire(&self, key: u64, per_second: f64) {
        let wait = {
            let mut lanes = self.lanes.lock().expect("pacer lock");
            let lane = lanes.entry(key).or_default();
            let now = Instant::now();
            let mut start = now;
            if let Some(b) = lane.blocked_until {
                start = start.max(b);
            }
            if per_second > 0.0 {
                if let Some(s) = lane.next_slot {
                    start = start.max(s);
                }
                lane.next_slot = Some(start + Duration::from_secs_f64(1.0 / per_second));
            }
            start.saturating_duration_since(now)
        };
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
    }

    /// Apple said "not before `after`": hold every request of `key` until then.
    pub fn block(&self, key: u64, after: Duration) {
        let mut lanes = self.lanes.lock().expect("pacer lock");
        let lane = lanes.entry(key).or_default();
        let until = Instant::now() + after;
        lane.blocked_until = Some(lane.blocked_until.map_or(until, |b| b.max(until)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn slots_are_spaced_and_blocks_hold_back() {
        let p = Pacer::default();
        let t0 = tokio::time::Instant::now();
        for _ in 0..4 {
            p.acquire(1, 10.0).await;
        }
        let spent = t0.elapsed();
        assert!(
            spent >= Duration::from_millis(300) && spent < Duration::from_millis(310),
            "{spent:?}"
        );
        // Another key has its own lane.
        let t1 = tokio::time::Instant::now();
        p.acquire(2, 10.0).await;
        assert!(t1.elapsed() < Duration::from_millis(5));
        p.block(2, Duration::from_secs(3));
        let t2 = tokio::time::Instant::now();
        p.acquire(2, 0.0).await;
        assert!(t2.elapsed() >= Duration::from_secs(3));
    }
}
