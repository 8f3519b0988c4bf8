//! The client for Apple's Apps and Books service (v2) that everything in Allot uses.
//!
//! * Every response body is checked for `errorNumber`, whatever the HTTP status (Apple sends
//!   errors with 200 too).
//! * Requests of one token are paced to `maxRequestPerSecond` from `service/config` (re-read every
//!   5 minutes); `Retry-After` (seconds or an HTTP date) holds back every request of that token.
//! * Reads are retried with backoff on 429/503/5xx and broken connections. Writes are sent again
//!   only when Apple refused them (429/503: nothing was done); a write whose outcome is unknown is
//!   reported as [`AppleError::OutcomeUnknown`] for the caller to reconcile by reading state.
//! * Page walks run at most 5 requests at once and report whether the data changed mid-walk.

pub mod catalog;
pub mod client;
pub mod error;
pub mod pacer;
pub mod walk;

pub use catalog::{CatalogApiError, CatalogClient, DeveloperKey};
pub use client::{AppleClient, AssignmentsQuery, Bearer, ClientOptions, UsersQuery};
pub use error::{AppleError, AppleResult};
pub use walk::{walk, PageSink, Paged, SinkError, WalkError, WalkSummary};

/// Apple's production base URL.
pub const APPLE_BASE_URL: &str = "https://vpp.itunes.apple.com/mdm/v2/";
