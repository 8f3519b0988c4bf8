//! Guessing passwords is slowed down, without handing anyone a way to lock others out:
//! - a user name from one address: `PER_NAME_AND_ADDRESS` failures in `WINDOW`, then that pair
//!   waits (someone guessing `admin` from one place does not lock out the real admin elsewhere);
//! - one address, whatever the names: `PER_ADDRESS` failures (junk names cannot flood the table);
//! - one user name from everywhere: `PER_NAME` failures (a guess spread over many addresses),
//!   except for a browser that signed in as that name before (it shows a `known` mark, a MAC of
//!   the name under this process's key), so the legitimate user keeps a way in.
//!
//! Memory is bounded: each table keeps at most `REMEMBERED` entries, and a full table forgets the
//! entry with the fewest failures (then the oldest), so junk with one failure each never pushes
//! out a name being guessed.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use hmac::{Hmac, Mac};
use sha2::Sha256;

const PER_NAME_AND_ADDRESS: u32 = 5;
const PER_ADDRESS: u32 = 20;
const PER_NAME: u32 = 50;
const WINDOW: Duration = Duration::from_secs(15 * 60);
/// Entries each table keeps at most.
const REMEMBERED: usize = 10_000;

/// Failures per key within a window: (count, when the window started).
struct Table {
    limit: u32,
    entries: HashMap<String, (u32, Instant)>,
}

impl Table {
    fn new(limit: u32) -> Self {
        Self {
            limit,
            entries: HashMap::new(),
        }
    }

    fn wait(&self, key: &str) -> Option<Duration> {
        let (n, first) = self.entries.get(key)?;
        let left = WINDOW.checked_sub(first.elapsed())?;
        (*n >= self.limit).then_some(left)
    }

    fn failed(&mut self, key: &str) {
        if !self.entries.contains_key(key) && self.entries.len() >= REMEMBERED {
            self.entries
                .retain(|_, (_, first)| first.elapsed() < WINDOW);
            if self.entries.len() >= REMEMBERED {
                let weakest = self
                    .entries
                    .iter()
                    .min_by_key(|(_, (n, first))| (*n, std::cmp::Reverse(first.elapsed())))
                    .map(|(k, _)| k.clone());
                if let Some(k) = weakest {
                    self.entries.remove(&k);
                }
            }
        }
        let entry = self
            .entries
            .entry(key.to_owned())
            .or_insert((0, Instant::now()));
        if entry.1.elapsed() >= WINDOW {
            *entry = (0, Instant::now());
        }
        entry.0 += 1;
    }

    fn forget(&mut self, key: &str) {
        self.entries.remove(key);
    }
}

pub struct SignInThrottle {
    key: [u8; 32],
    tables: Mutex<[Table; 3]>,
}

impl Default for SignInThrottle {
    fn default() -> Self {
        Self {
            key: rand::random(),
            tables: Mutex::new([
                Table::new(PER_NAME_AND_ADDRESS),
                Table::new(PER_ADDRESS),
                Table::new(PER_NAME),
            ]),
        }
    }
}

/// Who is signing in: the name (any case) and the address it comes from.
pub struct Attempt<'a> {
    pub username: &'a str,
    pub address: &'a str,
    /// The `known` mark the browser shows, if any.
    pub known: Option<&'a str>,
}

impl Attempt<'_> {
    fn keys(&self) -> [String; 3] {
        let name = self.username.to_lowercase();
        [
            format!("{name}\u{0}{}", self.address),
            self.address.to_owned(),
            name,
        ]
    }
}

impl SignInThrottle {
    /// How long this attempt must wait, if it must.
    pub fn wait(&self, a: &Attempt) -> Option<Duration> {
        let tables = self.tables.lock().expect("throttle lock");
        let keys = a.keys();
        let known = a.known.is_some_and(|m| self.is_known(a.username, m));
        (0..3)
            .filter(|&i| !(i == 2 && known))
            .filter_map(|i| tables[i].wait(&keys[i]))
            .max()
    }

    pub fn failed(&self, a: &Attempt) {
        let mut tables = self.tables.lock().expect("throttle lock");
        for (t, k) in tables.iter_mut().zip(a.keys()) {
            t.failed(&k);
        }
    }

    /// A success clears the name's failures from that address; the address's own count stays
    /// (one right password does not excuse nineteen guesses at other names).
    pub fn succeeded(&self, a: &Attempt) {
        let mut tables = self.tables.lock().expect("throttle lock");
        let [pair, _, _] = a.keys();
        tables[0].forget(&pair);
    }

    /// The mark a browser keeps after signing in as `username`.
    pub fn known_mark(&self, username: &str) -> String {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.key).expect("any key length");
        mac.update(username.to_lowercase().as_bytes());
        mac.finalize()
            .into_bytes()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    fn is_known(&self, username: &str, mark: &str) -> bool {
        allot_secrets::same_secret(self.known_mark(username).as_bytes(), mark.as_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at<'a>(username: &'a str, address: &'a str) -> Attempt<'a> {
        Attempt {
            username,
            address,
            known: None,
        }
    }

    #[test]
    fn a_guesser_locks_only_their_own_pair() {
        let t = SignInThrottle::default();
        for _ in 0..4 {
            t.failed(&at("Ada", "10.0.0.9"));
        }
        assert!(t.wait(&at("ada", "10.0.0.9")).is_none());
        t.failed(&at("ada", "10.0.0.9"));
        assert!(t.wait(&at("ADA", "10.0.0.9")).is_some_and(|d| d <= WINDOW));
        assert!(
            t.wait(&at("ada", "10.0.0.1")).is_none(),
            "the real Ada, elsewhere"
        );
        assert!(t.wait(&at("bob", "10.0.0.9")).is_none());
        t.succeeded(&at("ada", "10.0.0.9"));
        assert!(t.wait(&at("ada", "10.0.0.9")).is_none());
    }

    #[test]
    fn junk_names_from_one_address_stop_at_the_address_limit() {
        let t = SignInThrottle::default();
        for i in 0..PER_ADDRESS {
            assert!(t.wait(&at(&format!("junk{i}"), "10.0.0.9")).is_none());
            t.failed(&at(&format!("junk{i}"), "10.0.0.9"));
        }
        assert!(t.wait(&at("admin", "10.0.0.9")).is_some());
        assert!(t.wait(&at("admin", "10.0.0.1")).is_none());
    }

    #[test]
    fn a_full_table_forgets_junk_before_a_name_being_guessed() {
        let t = SignInThrottle::default();
        for _ in 0..5 {
            t.failed(&at("admin", "10.0.0.9"));
        }
        // Far more junk than the table holds, each from its own address.
        for i in 0..(REMEMBERED + 500) {
            t.failed(&at(&format!("junk{i}"), &format!("a{i}")));
        }
        assert!(
            t.wait(&at("admin", "10.0.0.9")).is_some(),
            "junk did not flush the guessed name"
        );
        let tables = t.tables.lock().unwrap();
        assert!(tables.iter().all(|t| t.entries.len() <= REMEMBERED));
    }

    #[test]
    fn a_spread_out_guess_locks_the_name_except_for_a_known_browser() {
        let t = SignInThrottle::default();
        for i in 0..PER_NAME {
            t.failed(&at("admin", &format!("10.1.0.{i}")));
        }
        assert!(t.wait(&at("admin", "192.0.2.1")).is_some());
        let mark = t.known_mark("Admin");
        let known = Attempt {
            username: "admin",
            address: "192.0.2.1",
            known: Some(&mark),
        };
        assert!(t.wait(&known).is_none(), "the real admin keeps a way in");
        let forged = Attempt {
            known: Some("00ff"),
            ..known
        };
        assert!(t.wait(&forged).is_some());
        assert_ne!(t.known_mark("admin"), t.known_mark("bob"));
    }
}
