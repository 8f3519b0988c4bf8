//! The MDM channel: NanoMDM's webhook (the envelope, the check-in and command-report plists inside
//! it, its HMAC signature), the commands a license manager sends, NanoMDM's command API, and a fake
//! NanoMDM with simulated devices (see `shared/mdm/mdm-integration.md`).

pub mod commands;
pub mod declarative;
pub mod fake;
pub mod nanomdm;
pub mod untrusted_plist;
pub mod webhook;

pub use commands::Command;
pub use nanomdm::{Enqueued, IdResult, MdmError, NanoMdm, NanoMdmConfig, PushCert};
/// The plist crate, whose types the reports are made of.
pub use plist;
pub use webhook::{CheckIn, Delivery, Event, WebhookError};
