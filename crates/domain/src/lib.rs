//! Allot's domain types and rules, without I/O.

pub mod compat;
pub mod intent;
pub mod labels;
pub mod licensing;
pub mod membership;
pub mod options;
pub mod os;
pub mod token_health;

pub use intent::{Intent, IntentAction};
pub use licensing::{
    license_for, plan, AssetFacts, Choice, CollectionKind, License, OnShortage, Outcome, Plan,
    PlanTarget,
};
pub use membership::MembershipRule;
pub use options::{InstallOptions, OnLeave};
pub use token_health::{Claim, HealthInputs, Program, TokenState};
