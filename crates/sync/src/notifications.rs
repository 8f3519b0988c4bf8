//! Apple's notifications, applied at once so counts are current between syncs: authenticated with
//! the token's notification secret (constant-time), de-duplicated by `notificationId`.

use allot_apple_wire::{
    event_type, NotificationEnvelope, NotificationPayload, ResponseUser, DEFAULT_PRICING_PARAM,
    RESULT_SUCCESS,
};
use allot_store::{AssignmentRow, StoreError, UserRow};

use crate::run::{assignment_row, best_user_rows};
use crate::{now_ms, SyncEngine};

#[derive(Debug, thiserror::Error)]
pub enum NotificationError {
    #[error("no token with id {0}")]
    UnknownToken(i64),
    #[error(
        "the notification's Authorization header does not carry this token's notification secret"
    )]
    Unauthorized,
    #[error("the notification is not valid JSON of Apple's notification format: {0}")]
    Malformed(String),
    #[error("the notification is about location {got}, but this token's location is {want}")]
    WrongLocation { want: String, got: String },
    #[error(transparent)]
    Store(#[from] StoreError),
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct NotificationOutcome {
    pub notification_type: String,
    /// Delivered before: nothing was applied again.
    pub duplicate: bool,
    /// Records (assignments, users, counts) changed.
    pub applied: usize,
}

pub(crate) fn user_rows(users: &[ResponseUser]) -> Vec<UserRow> {
    best_user_rows(
        users
            .iter()
            .filter(|u| !u.client_user_id.is_empty())
            .map(|u| UserRow {
                client_user_id: u.client_user_id.clone(),
                status: u.status.clone(),
                email: u.email.clone(),
                invite_code: u.invite_code.clone(),
                id_hash: u.id_hash.clone(),
            })
            .collect(),
    )
}

/// Apple's notification ids are UUIDs; a longer one is not Apple's.
const MAX_NOTIFICATION_ID: usize = 128;
/// More licenses than any purchase or refund moves at once (Apple's counts are 32-bit).
const MAX_PLAUSIBLE_COUNT_DELTA: i64 = i32::MAX as i64;

impl SyncEngine {
    pub async fn receive_notification(
        &self,
        token_id: i64,
        authorization: Option<&str>,
        body: &[u8],
    ) -> Result<NotificationOutcome, NotificationError> {
        let store = &self.inner.store;
        let t = store
            .token(token_id)
            .await?
            .ok_or(NotificationError::UnknownToken(token_id))?;
        let secret = self
            .notification_secret(&t)
            .ok_or(NotificationError::Unauthorized)?;
        let given = authorization
            .and_then(|h| h.strip_prefix("Bearer "))
            .unwrap_or("");
        if !allot_secrets::same_secret(given.trim().as_bytes(), secret.as_bytes()) {
            return Err(NotificationError::Unauthorized);
        }
        let envelope: NotificationEnvelope = serde_json::from_slice(body)
            .map_err(|e| NotificationError::Malformed(e.to_string()))?;
        if envelope.u_id != t.uid {
            return Err(NotificationError::WrongLocation {
                want: t.uid,
                got: envelope.u_id,
            });
        }
        let payload = envelope
            .payload()
            .map_err(|e| NotificationError::Malformed(e.to_string()))?;
        let kind = envelope.notification_type.clone();
        let id = &envelope.notification_id;
        if id.is_empty() || id.len() > MAX_NOTIFICATION_ID || id.contains(char::is_control) {
            return Err(NotificationError::Malformed(format!(
                "notificationId must be 1 to {MAX_NOTIFICATION_ID} printable characters"
            )));
        }
        if !store
            .mark_notification_seen(&envelope.notification_id, token_id, &kind, now_ms())
            .await?
        {
            return Ok(NotificationOutcome {
                notification_type: kind,
                duplicate: true,
                applied: 0,
            });
        }
        match self.apply(token_id, payload).await {
            Ok(applied) => {
                tracing::debug!(token = token_id, kind, applied, "notification applied");
                Ok(NotificationOutcome {
                    notification_type: kind,
                    duplicate: false,
                    applied,
                })
            }
            Err(e) => {
                // Not applied: forget we saw it, so Apple's retry (after our 5xx) is applied
                // rather than dropped as a duplicate.
                if let Err(f) = store.forget_notification(&envelope.notification_id).await {
                    tracing::warn!(error = %f, "could not forget a notification that failed to apply");
                }
                Err(e.into())
            }
        }
    }

    async fn apply(
        &self,
        token_id: i64,
        payload: NotificationPayload,
    ) -> Result<usize, StoreError> {
        let store = &self.inner.store;
        let gen = store.current_generation(token_id).await?;
        Ok(match payload {
            NotificationPayload::Test | NotificationPayload::Other(_) => 0,
            NotificationPayload::AssetCount(c) => {
                let pricing = if c.pricing_param.is_empty() {
                    DEFAULT_PRICING_PARAM
                } else {
                    c.pricing_param.as_str()
                };
                if c.count_delta.abs() > MAX_PLAUSIBLE_COUNT_DELTA {
                    // No purchase moves counts that far: read the asset from Apple instead.
                    tracing::warn!(token = token_id, adam_id = %c.adam_id, delta = c.count_delta, "implausible ASSET_COUNT delta: re-reading from Apple");
                    self.sync_soon(token_id);
                    return Ok(0);
                }
                if !store
                    .adjust_asset_total(token_id, &c.adam_id, pricing, c.count_delta, now_ms())
                    .await?
                {
                    // A product we do not know yet (a first purchase): a delta sync reads it.
                    self.sync_soon(token_id);
                } else {
                    store
                        .record_asset_history(token_id, &c.adam_id, pricing, now_ms())
                        .await?;
                }
                1
            }
            NotificationPayload::AssetManagement(m) => {
                // Apple's word on each holder of the event, for the deployment step waiting on
                // it (which then needs no status poll). A failure without an error number says
                // nothing about the holders: the step asks Apple.
                let verdict = match (&m.error, m.result == RESULT_SUCCESS) {
                    (_, true) => Some(None),
                    (Some(e), false) => Some(Some((e.error_number, e.error_message.clone()))),
                    (None, false) => None,
                };
                let mut told = 0;
                if let (Some(verdict), false) = (verdict, m.event_id.is_empty()) {
                    let results: Vec<(String, Option<(i32, String)>)> = m
                        .assignments
                        .iter()
                        .filter_map(|a| {
                            a.serial_number.clone().or_else(|| a.client_user_id.clone())
                        })
                        .map(|h| (h, verdict.clone()))
                        .collect();
                    told = store
                        .record_event_results(&m.event_id, &results, now_ms())
                        .await? as usize;
                }
                if m.result != RESULT_SUCCESS {
                    return Ok(told);
                }
                let rows: Vec<AssignmentRow> =
                    m.assignments.iter().filter_map(assignment_row).collect();
                let n = if m.kind == event_type::ASSOCIATE {
                    store
                        .add_assignments(token_id, &rows, gen, now_ms())
                        .await?
                } else {
                    store.remove_assignments(token_id, &rows).await?
                } as usize
                    + told;
                let mut assets: Vec<(&str, &str)> = m
                    .assignments
                    .iter()
                    .map(|a| (a.adam_id.as_str(), a.pricing_param.as_str()))
                    .collect();
                assets.sort_unstable();
                assets.dedup();
                for (adam, pricing) in assets {
                    let pricing = if pricing.is_empty() {
                        DEFAULT_PRICING_PARAM
                    } else {
                        pricing
                    };
                    store
                        .record_asset_history(token_id, adam, pricing, now_ms())
                        .await?;
                }
                n
            }
            NotificationPayload::UserManagement(u) => {
                if u.result != RESULT_SUCCESS {
                    return Ok(0);
                }
                let rows = user_rows(&u.users);
                store.upsert_users(token_id, &rows, gen).await?;
                self.intents_soon(token_id);
                rows.len()
            }
            NotificationPayload::UserAssociated(u) => {
                let rows = user_rows(&u.associated_users);
                store.upsert_users(token_id, &rows, gen).await?;
                rows.len()
            }
            NotificationPayload::SubscriptionCount(c) => {
                self.apply_subscription_count(token_id, &c).await?
            }
            NotificationPayload::SubscriptionManagement(m) => {
                self.apply_subscription_management(token_id, &m).await?
            }
        })
    }

    /// Asks for a delta sync of a token as soon as the schedule can run it.
    pub fn sync_soon(&self, token_id: i64) {
        let me = self.clone();
        tokio::spawn(async move {
            match me
                .start_sync(token_id, crate::SyncKind::Delta, "notification")
                .await
            {
                Ok(_) | Err(crate::SyncError::AlreadyRunning) => {}
                Err(e) => {
                    tracing::warn!(token = token_id, error = %e, "could not start a sync after a notification")
                }
            }
        });
    }
}
