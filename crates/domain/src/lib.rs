//! Allot's domain types and rules, without I/O.

pub mod token_health;

pub use token_health::{Claim, HealthInputs, Program, TokenState};
