//! What state a content token is in, as the console and API show it. One function decides it, so
//! every surface agrees.

use serde::{Deserialize, Serialize};

/// Apple Business Manager or Apple School Manager.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Program {
    Business,
    Education,
}

impl Program {
    pub fn as_str(self) -> &'static str {
        match self {
            Program::Business => "business",
            Program::Education => "education",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "business" | "abm" => Some(Program::Business),
            "education" | "asm" | "school" => Some(Program::Education),
            _ => None,
        }
    }
}

/// Who manages the token's location at Apple.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Claim {
    /// Our `mdmInfo` is on the location.
    Ours,
    /// Another MDM's `mdmInfo` is on it: we read, but change nothing until an explicit take-over.
    OtherMdm,
}

impl Claim {
    pub fn as_str(self) -> &'static str {
        match self {
            Claim::Ours => "ours",
            Claim::OtherMdm => "other_mdm",
        }
    }

    pub fn parse(s: &str) -> Self {
        if s == "other_mdm" {
            Claim::OtherMdm
        } else {
            Claim::Ours
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TokenState {
    Healthy,
    Syncing,
    /// No successful sync for longer than twice the delta interval.
    Stale,
    /// The last sync failed (the error is shown beside the state).
    Failing,
    /// Expires within 30 days.
    Expiring,
    Expired,
    /// Apple revoked it (9625), usually because a newer token was downloaded.
    Revoked,
    ClaimedByOtherMdm,
}

impl TokenState {
    pub fn as_str(self) -> &'static str {
        match self {
            TokenState::Healthy => "healthy",
            TokenState::Syncing => "syncing",
            TokenState::Stale => "stale",
            TokenState::Failing => "failing",
            TokenState::Expiring => "expiring",
            TokenState::Expired => "expired",
            TokenState::Revoked => "revoked",
            TokenState::ClaimedByOtherMdm => "claimed_by_other_mdm",
        }
    }
}

/// Facts about a token, in Unix milliseconds.
#[derive(Debug, Clone, Copy)]
pub struct HealthInputs {
    pub now: i64,
    pub expires_at: i64,
    pub revoked: bool,
    /// Apple answered 9621 though `expDate` says otherwise.
    pub expired_at_apple: bool,
    pub claim: Claim,
    pub syncing: bool,
    pub last_sync_failed: bool,
    /// The last successful sync of either kind.
    pub last_success: Option<i64>,
    pub created_at: i64,
    pub delta_interval_ms: i64,
}

pub const DAY_MS: i64 = 86_400_000;

/// A token expiring at or before this is `Expiring` (30 days ahead).
pub fn expiring_before(now: i64) -> i64 {
    now + 30 * DAY_MS
}

/// A token whose last success (or, never synced, its creation) is before this is `Stale`: two
/// change-sync intervals have passed without one.
pub fn stale_before(now: i64, delta_interval_ms: i64) -> i64 {
    now - 2 * delta_interval_ms
}

/// The most urgent state wins: a revoked or expired token cannot sync at all; a location another
/// MDM holds must not be changed; then failures, a running sync, staleness, expiry ahead.
pub fn state(i: &HealthInputs) -> TokenState {
    if i.revoked {
        TokenState::Revoked
    } else if i.expired_at_apple || i.expires_at <= i.now {
        TokenState::Expired
    } else if i.claim == Claim::OtherMdm {
        TokenState::ClaimedByOtherMdm
    } else if i.syncing {
        TokenState::Syncing
    } else if i.last_sync_failed {
        TokenState::Failing
    } else if i.last_success.unwrap_or(i.created_at) < stale_before(i.now, i.delta_interval_ms) {
        TokenState::Stale
    } else if i.expires_at <= expiring_before(i.now) {
        TokenState::Expiring
    } else {
        TokenState::Healthy
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> HealthInputs {
        HealthInputs {
            now: 1_000 * DAY_MS,
            expires_at: 1_200 * DAY_MS,
            revoked: false,
            expired_at_apple: false,
            claim: Claim::Ours,
            syncing: false,
            last_sync_failed: false,
            last_success: Some(1_000 * DAY_MS - 1000),
            created_at: 900 * DAY_MS,
            delta_interval_ms: DAY_MS / 2,
        }
    }

    #[test]
    fn each_state_and_its_precedence() {
        assert_eq!(state(&base()), TokenState::Healthy);
        assert_eq!(
            state(&HealthInputs {
                expires_at: 1_010 * DAY_MS,
                ..base()
            }),
            TokenState::Expiring
        );
        assert_eq!(
            state(&HealthInputs {
                last_success: Some(998 * DAY_MS),
                ..base()
            }),
            TokenState::Stale
        );
        assert_eq!(
            state(&HealthInputs {
                last_sync_failed: true,
                ..base()
            }),
            TokenState::Failing
        );
        assert_eq!(
            state(&HealthInputs {
                syncing: true,
                last_sync_failed: true,
                ..base()
            }),
            TokenState::Syncing
        );
        assert_eq!(
            state(&HealthInputs {
                claim: Claim::OtherMdm,
                syncing: true,
                ..base()
            }),
            TokenState::ClaimedByOtherMdm
        );
        assert_eq!(
            state(&HealthInputs {
                expires_at: 999 * DAY_MS,
                claim: Claim::OtherMdm,
                ..base()
            }),
            TokenState::Expired
        );
        assert_eq!(
            state(&HealthInputs {
                expired_at_apple: true,
                ..base()
            }),
            TokenState::Expired
        );
        assert_eq!(
            state(&HealthInputs {
                revoked: true,
                expires_at: 0,
                ..base()
            }),
            TokenState::Revoked
        );
        // A token never synced is judged from when it was added.
        assert_eq!(
            state(&HealthInputs {
                last_success: None,
                created_at: 1_000 * DAY_MS - 5,
                ..base()
            }),
            TokenState::Healthy
        );
    }

    #[test]
    fn programs_parse_leniently() {
        assert_eq!(Program::parse(" Education"), Some(Program::Education));
        assert_eq!(Program::parse("ABM"), Some(Program::Business));
        assert_eq!(Program::parse("retail"), None);
    }
}
