//! Rows of the inventory: people, devices, collections.

use serde::Serialize;

#[derive(Debug, Clone, Default)]
pub struct NewPerson {
    pub name: String,
    pub email: Option<String>,
    pub managed_apple_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PersonRow {
    pub id: i64,
    pub client_user_id: String,
    pub name: String,
    pub email: Option<String>,
    pub managed_apple_id: Option<String>,
    pub removed_at: Option<i64>,
    pub created_at: i64,
}

#[derive(Debug, Clone, Default)]
pub struct NewDevice {
    pub serial_number: String,
    pub enrollment_id: Option<String>,
    /// `iOS`, `iPadOS` or `macOS`.
    pub platform: String,
    pub model: String,
    pub name: String,
    pub primary_person_id: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DeviceRow {
    pub id: i64,
    pub serial_number: String,
    pub enrollment_id: Option<String>,
    pub platform: String,
    pub model: String,
    pub name: String,
    pub primary_person_id: Option<i64>,
    pub enrolled: bool,
    pub last_seen_at: Option<i64>,
    pub unenrolled_at: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CollectionRow {
    pub id: i64,
    pub name: String,
    /// `users` or `devices`.
    pub kind: String,
    pub description: String,
    pub members: i64,
}
