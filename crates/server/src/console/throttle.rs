//! Guessing passwords is slowed down: after `MAX_FAILURES` failed sign-ins for one user name within
//! `WINDOW`, that name is refused until the window has passed (per process; memory stays bounded).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

const MAX_FAILURES: u32 = 5;
const WINDOW: Duration = Duration::from_secs(15 * 60);
/// User names remembered at most (the oldest are forgotten first).
const REMEMBERED: usize = 10_000;

#[derive(Default)]
pub struct SignInThrottle {
    failures: Mutex<HashMap<String, (u32, Instant)>>,
}

impl SignInThrottle {
    /// How long `username` must wait before trying again, if it must.
    pub fn wait(&self, username: &str) -> Option<Duration> {
        let failures = self.failures.lock().expect("throttle lock");
        let (n, first) = failures.get(&username.to_lowercase())?;
        let left = WINDOW.checked_sub(first.elapsed())?;
        (*n >= MAX_FAILURES).then_some(left)
    }

    pub fn failed(&self, username: &str) {
        let mut failures = self.failures.lock().expect("throttle lock");
        if failures.len() >= REMEMBERED {
            failures.retain(|_, (_, first)| first.elapsed() < WINDOW);
            if failures.len() >= REMEMBERED {
                failures.clear();
            }
        }
        let entry = failures
            .entry(username.to_lowercase())
            .or_insert((0, Instant::now()));
        if entry.1.elapsed() >= WINDOW {
            *entry = (0, Instant::now());
        }
        entry.0 += 1;
    }

    pub fn succeeded(&self, username: &str) {
        self.failures
            .lock()
            .expect("throttle lock")
            .remove(&username.to_lowercase());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn five_failures_lock_the_name_only() {
        let t = SignInThrottle::default();
        for _ in 0..4 {
            t.failed("Ada");
        }
        assert!(t.wait("ada").is_none());
        t.failed("ada");
        assert!(t.wait("ADA").is_some_and(|d| d <= WINDOW));
        assert!(t.wait("bob").is_none());
        t.succeeded("ada");
        assert!(t.wait("ada").is_none());
    }
}
