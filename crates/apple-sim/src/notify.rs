//! Notifications to the MDM's `notificationUrl`: queued under the world lock, delivered by a
//! background task with up to `notificationAttempts` attempts until a 2xx.

use std::time::Duration;

use allot_apple_wire::{notification_type, NotificationEnvelope};
use tokio::sync::mpsc;

use crate::world::{SentNotification, World};
use crate::Shared;

pub struct Outgoing {
    /// Index into `World::notifications`, where the outcome is recorded.
    pub log_index: usize,
    pub url: String,
    pub auth_token: String,
    pub body: Vec<u8>,
    pub duplicate: bool,
}

/// Queues a notification for a location if it subscribed to the type.
pub fn enqueue(world: &mut World, location: usize, kind: &str, payload: serde_json::Value) {
    let loc = &world.locations[location];
    let Some(cfg) = loc.notification.clone() else {
        return;
    };
    if !loc.notification_types.iter().any(|t| t == kind) {
        return;
    }
    let envelope = NotificationEnvelope {
        notification_id: uuid::Uuid::new_v4().to_string(),
        notification_type: kind.to_owned(),
        notification: payload,
        u_id: loc.uid.clone(),
    };
    let dropped = world.faults.take_drop();
    let duplicate = !dropped && world.faults.take_duplicate();
    let body = serde_json::to_vec(&envelope).expect("serialisable");
    let log_index = world.notifications.len();
    world.notifications.push(SentNotification {
        envelope,
        url: cfg.url.clone(),
        outcome: if dropped { "dropped" } else { "pending" }.into(),
        attempts: 0,
        duplicated: duplicate,
    });
    if dropped {
        return;
    }
    if let Some(tx) = &world.notifier {
        let _ = tx.send(Outgoing {
            log_index,
            url: cfg.url,
            auth_token: cfg.auth_token,
            body,
            duplicate,
        });
    }
}

/// Delivers queued notifications; each in its own task so a slow receiver delays only itself.
pub async fn run_sender(
    shared: Shared,
    client: reqwest::Client,
    mut rx: mpsc::UnboundedReceiver<Outgoing>,
) {
    while let Some(out) = rx.recv().await {
        let (attempts, delay) = {
            let w = shared.lock().expect("world lock");
            (
                w.settings.notification_attempts,
                w.settings.notification_retry_delay_ms,
            )
        };
        let shared = shared.clone();
        let client = client.clone();
        tokio::spawn(async move {
            let mut tried = 0;
            let mut delivered = false;
            while tried < attempts && !delivered {
                if tried > 0 {
                    tokio::time::sleep(Duration::from_millis(delay)).await;
                }
                tried += 1;
                delivered = post(&client, &out.url, &out.auth_token, out.body.clone()).await;
            }
            if delivered && out.duplicate {
                post(&client, &out.url, &out.auth_token, out.body.clone()).await;
            }
            let mut w = shared.lock().expect("world lock");
            let rec = &mut w.notifications[out.log_index];
            rec.attempts = tried;
            rec.outcome = if delivered { "delivered" } else { "failed" }.into();
        });
    }
}

/// The client notifications are sent with: public and platform roots plus `--ca-file`'s.
pub fn http_client(trust: &allot_trust::Trust) -> reqwest::Client {
    trust
        .client_builder()
        .timeout(Duration::from_secs(10))
        .build()
        .expect("an HTTP client (its certificates were checked when loaded)")
}

async fn post(client: &reqwest::Client, url: &str, auth_token: &str, body: Vec<u8>) -> bool {
    client
        .post(url)
        .bearer_auth(auth_token)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .body(body)
        .send()
        .await
        .is_ok_and(|r| r.status().is_success())
}

/// The synchronous `TEST_NOTIFICATION` of client config: one attempt, which must get a 2xx.
pub async fn send_test(client: &reqwest::Client, url: &str, auth_token: &str, uid: &str) -> bool {
    let envelope = NotificationEnvelope {
        notification_id: uuid::Uuid::new_v4().to_string(),
        notification_type: notification_type::TEST_NOTIFICATION.to_owned(),
        notification: serde_json::json!({}),
        u_id: uid.to_owned(),
    };
    let body = serde_json::to_vec(&envelope).expect("serialisable");
    post(client, url, auth_token, body).await
}
