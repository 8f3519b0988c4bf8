//! The simulator, driven over HTTP the way an MDM (and our client) drives Apple.

mod auth;
mod config;
mod control;
mod events;
mod inventory;
mod limits;
mod metadata;
mod notifications;
mod subscriptions;
mod support;
