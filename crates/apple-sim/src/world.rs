//! Everything the simulator knows, behind one lock: locations, the tokens that open them, events,
//! app metadata, faults to inject, and what has been sent and served.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::path::PathBuf;

use allot_apple_wire::{codes, ContentToken, ErrorResponse, NotificationEnvelope};
use chrono::{DateTime, Duration, Utc};
use serde::Serialize;

use crate::catalog::AppMeta;
use crate::events::Event;
use crate::faults::FaultQueue;
use crate::model::Location;
use crate::settings::Settings;

/// A content token the simulator issued. Old tokens stay known so that they answer "revoked"
/// rather than "unknown".
#[derive(Debug, Clone)]
pub struct TokenRecord {
    pub location: usize,
    pub token: ContentToken,
    pub revoked: bool,
    /// Set by the control API: treat as expired whatever `expDate` says.
    pub force_expired: bool,
}

/// Why a bearer credential was refused.
pub fn auth_error(number: i32) -> ErrorResponse {
    ErrorResponse::new(number)
}

/// One notification as sent (or dropped), kept for assertions.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SentNotification {
    pub envelope: NotificationEnvelope,
    pub url: String,
    /// `delivered`, `failed` (all attempts refused), `dropped` (fault), `pending`.
    pub outcome: String,
    pub attempts: u32,
    pub duplicated: bool,
}

#[derive(Debug, Default, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Stats {
    /// Requests per endpoint name (`assets`, `assignments`, …), all locations together.
    pub requests: BTreeMap<String, u64>,
    /// Requests refused by the rate limit.
    pub rate_limited: u64,
    /// Requests answered with an injected fault.
    pub faults_served: u64,
    /// Associate tasks for a holder that already had the license (a client asking twice: a
    /// no-op at Apple, but a write a careful client never repeats).
    pub repeated_associations: u64,
}

pub struct World {
    pub settings: Settings,
    pub locations: Vec<Location>,
    pub by_uid: HashMap<String, usize>,
    pub tokens: HashMap<String, TokenRecord>,
    /// The token currently issued for each location (index = location).
    pub current_token: Vec<String>,
    pub events: HashMap<String, Event>,
    /// Events not yet finished, oldest first.
    pub pending_events: VecDeque<String>,
    pub catalog: HashMap<String, AppMeta>,
    pub faults: FaultQueue,
    pub clock_offset: Duration,
    pub stats: Stats,
    pub notifications: Vec<SentNotification>,
    /// Where `--token-dir` writes `.vpptoken` files.
    pub token_dir: Option<PathBuf>,
    /// Public base URL of this simulator (`http://127.0.0.1:9100`), for `service/config` URLs.
    pub base_url: String,
    /// Counter for ids the simulator makes up (serials of injected writes, invite codes, …).
    pub counter: u64,
    /// Where queued notifications go; `None` until the server starts its sender.
    pub notifier: Option<tokio::sync::mpsc::UnboundedSender<crate::notify::Outgoing>>,
    /// The notification sender's HTTPS client (trusting `--ca-file`); `None` until the server starts.
    pub notify_client: Option<reqwest::Client>,
    /// Per-location rate-limit window: its start and the requests counted in it.
    pub rate_windows: HashMap<usize, (std::time::Instant, u32)>,
}

impl World {
    pub fn new(settings: Settings) -> Self {
        Self {
            settings,
            locations: Vec::new(),
            by_uid: HashMap::new(),
            tokens: HashMap::new(),
            current_token: Vec::new(),
            events: HashMap::new(),
            pending_events: VecDeque::new(),
            catalog: HashMap::new(),
            faults: FaultQueue::default(),
            clock_offset: Duration::zero(),
            stats: Stats::default(),
            notifications: Vec::new(),
            token_dir: None,
            base_url: String::new(),
            counter: 0,
            notifier: None,
            notify_client: None,
            rate_windows: HashMap::new(),
        }
    }

    /// The simulator's clock: real time, moved forward by the control API.
    pub fn now(&self) -> DateTime<Utc> {
        Utc::now() + self.clock_offset
    }

    pub fn next_counter(&mut self) -> u64 {
        self.counter += 1;
        self.counter
    }

    /// Adds a location with a freshly issued token.
    pub fn add_location(&mut self, loc: Location, token: ContentToken) -> usize {
        let idx = self.locations.len();
        self.by_uid.insert(loc.uid.clone(), idx);
        self.locations.push(loc);
        self.current_token.push(token.as_bearer().to_owned());
        self.tokens.insert(
            token.as_bearer().to_owned(),
            TokenRecord {
                location: idx,
                token,
                revoked: false,
                force_expired: false,
            },
        );
        idx
    }

    pub fn location_by_uid(&self, uid: &str) -> Option<usize> {
        self.by_uid.get(uid).copied()
    }

    /// Resolves a bearer credential to its location, or the error Apple would answer.
    pub fn authenticate(&self, bearer: &str) -> Result<usize, ErrorResponse> {
        let rec = self
            .tokens
            .get(bearer)
            .ok_or_else(|| auth_error(codes::LOGIN_REQUIRED))?;
        if rec.revoked {
            return Err(auth_error(codes::TOKEN_REVOKED));
        }
        if rec.force_expired || rec.token.expires_at() <= self.now() {
            return Err(auth_error(codes::TOKEN_EXPIRED));
        }
        Ok(rec.location)
    }

    pub fn current_token(&self, location: usize) -> &TokenRecord {
        &self.tokens[&self.current_token[location]]
    }

    /// Issues a new token for a location; the previous one is revoked (as when an administrator
    /// downloads a new token in Apple Business Manager).
    pub fn renew_token(&mut self, location: usize, expires_at: DateTime<Utc>) -> ContentToken {
        let old = self.current_token[location].clone();
        if let Some(rec) = self.tokens.get_mut(&old) {
            rec.revoked = true;
        }
        let n = self.next_counter();
        let loc = &self.locations[location];
        let token = crate::scenario::make_token(&loc.uid, n, &loc.org_name, expires_at);
        self.current_token[location] = token.as_bearer().to_owned();
        self.tokens.insert(
            token.as_bearer().to_owned(),
            TokenRecord {
                location,
                token: token.clone(),
                revoked: false,
                force_expired: false,
            },
        );
        token
    }

    /// Writes every location's current token to the token directory, if one is set.
    pub fn write_token_files(&self) -> std::io::Result<()> {
        let Some(dir) = &self.token_dir else {
            return Ok(());
        };
        std::fs::create_dir_all(dir)?;
        for (i, loc) in self.locations.iter().enumerate() {
            std::fs::write(dir.join(token_file_name(&loc.name)), &self.current_token[i])?;
        }
        Ok(())
    }

    pub fn count_request(&mut self, endpoint: &str) {
        *self.stats.requests.entry(endpoint.to_owned()).or_default() += 1;
    }
}

/// `<location>.vpptoken`, with characters unsafe in file names replaced.
pub fn token_file_name(location_name: &str) -> String {
    let safe: String = location_name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.' {
                c
            } else {
                '-'
            }
        })
        .collect();
    format!("{safe}.vpptoken")
}
