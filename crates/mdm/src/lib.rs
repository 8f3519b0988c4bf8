//! The MDM channel. Today: NanoMDM's webhook — the envelope, the check-in and command-report
//! plists inside it, and its HMAC signature (see `shared/mdm/mdm-integration.md` §1.5).

pub mod webhook;

pub use webhook::{CheckIn, Event, WebhookError};
