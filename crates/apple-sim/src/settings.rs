//! Knobs of the simulator, set by a scenario file and changed at run time through the control API.

use std::collections::BTreeMap;

use allot_apple_wire::limit;
use serde::{Deserialize, Serialize};

/// Which of Apple's two lookup examples the content metadata lookup answers like (spec §20.24).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub enum LookupForm {
    /// String ids, `artwork` one image with a template URL, `version` 2.
    #[default]
    Template,
    /// Numeric ids, `artwork` an array of sizes, `version` 1.
    Sizes,
}

/// When `tokenExpirationDate` appears on responses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub enum ExpirationField {
    /// On every authenticated response, as in all of Apple's examples.
    #[default]
    Always,
    /// Only within 15 days of expiry, as Apple's prose says.
    WarningWindow,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct Settings {
    /// Records per page of Get Assets.
    pub assets_page_size: usize,
    /// Records per page of Get Assignments.
    pub assignments_page_size: usize,
    /// Records per page of Get Users.
    pub users_page_size: usize,
    /// How long an event stays untouched before processing starts. Tests that want to drive
    /// events by hand set it high and call `POST /_sim/events/run`.
    pub event_delay_ms: u64,
    /// Tasks one event advances per tick, so `numCompleted` grows visibly while PENDING.
    pub event_tasks_per_tick: usize,
    /// Tick of the event processor.
    pub tick_ms: u64,
    /// `limits` of `service/config`; `maxRequestPerSecond` 0 turns rate limiting off. Keys given
    /// in a scenario replace Apple's defaults one by one.
    #[serde(deserialize_with = "merge_with_default_limits")]
    pub limits: BTreeMap<String, i32>,
    /// Answer errors with HTTP 200 and the error body, as Apple has been seen to do.
    pub errors_with_http200: bool,
    pub token_expiration_date: ExpirationField,
    /// Delivery attempts per notification (Apple: up to 3).
    pub notification_attempts: u32,
    /// Pause between attempts (Apple: 1–5 minutes; short by default so tests run fast).
    pub notification_retry_delay_ms: u64,
    /// Accept `http://` notification URLs on loopback hosts (Apple requires HTTPS, which a
    /// local test receiver cannot offer).
    pub allow_http_loopback_notifications: bool,
    /// The shape of the content metadata lookup's answers.
    pub lookup_form: LookupForm,
    /// The metadata API for organizations (spec §18.2) checks each developer token's ES256
    /// signature against this public key (PEM, "BEGIN PUBLIC KEY"); without it every request is
    /// refused, as Apple refuses a key it does not know.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metadata_api_public_key: Option<String>,
    /// The `kid` and `iss` developer tokens must carry, when set.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metadata_api_key_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metadata_api_team_id: Option<String>,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            assets_page_size: 100,
            assignments_page_size: 1000,
            users_page_size: 1000,
            event_delay_ms: 200,
            event_tasks_per_tick: 500,
            tick_ms: 20,
            limits: default_limits(),
            errors_with_http200: false,
            token_expiration_date: ExpirationField::Always,
            notification_attempts: 3,
            notification_retry_delay_ms: 500,
            allow_http_loopback_notifications: true,
            lookup_form: LookupForm::Template,
            metadata_api_public_key: None,
            metadata_api_key_id: None,
            metadata_api_team_id: None,
        }
    }
}

/// The limits of Apple's published example, with `maxRequestPerSecond` 15.
pub fn default_limits() -> BTreeMap<String, i32> {
    [
        (limit::MAX_ASSETS, 25),
        (limit::MAX_CLIENT_USER_IDS, 1000),
        (limit::MAX_SERIAL_NUMBERS, 1000),
        (limit::MAX_REVOKE_CLIENT_USER_IDS, 100),
        (limit::MAX_REVOKE_SERIAL_NUMBERS, 100),
        (limit::MAX_USERS, 100),
        (limit::MAX_SUBSCRIPTIONS, 25),
        (limit::MAX_SUBSCRIPTION_CLIENT_USER_IDS, 1000),
        (limit::MAX_NOTIFICATION_LENGTH, 512),
        (limit::MAX_MDM_NAME_LENGTH, 100),
        (limit::MAX_MDM_METADATA_LENGTH, 255),
        (limit::MAX_MDM_ID_LENGTH, 100),
        (limit::MAX_REQUEST_PER_SECOND, 15),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect()
}

fn merge_with_default_limits<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<BTreeMap<String, i32>, D::Error> {
    let given = BTreeMap::<String, i32>::deserialize(d)?;
    let mut limits = default_limits();
    limits.extend(given);
    Ok(limits)
}

impl Settings {
    /// A limit, or `default` when the map lacks it.
    pub fn limit(&self, key: &str, default: i32) -> usize {
        self.limits.get(key).copied().unwrap_or(default).max(0) as usize
    }

    /// Checks values a person could get wrong in a scenario file.
    pub fn validate(&self) -> Result<(), String> {
        for (name, v) in [
            ("assetsPageSize", self.assets_page_size),
            ("assignmentsPageSize", self.assignments_page_size),
            ("usersPageSize", self.users_page_size),
            ("eventTasksPerTick", self.event_tasks_per_tick),
        ] {
            if v == 0 {
                return Err(format!("settings.{name} must be at least 1"));
            }
        }
        if let Some(pem) = &self.metadata_api_public_key {
            crate::http::catalog_api::public_key(pem)?;
        }
        if self.tick_ms == 0 {
            return Err("settings.tickMs must be at least 1".into());
        }
        if self.notification_attempts == 0 {
            return Err("settings.notificationAttempts must be at least 1".into());
        }
        Ok(())
    }
}
