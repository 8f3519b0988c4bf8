//! Outgoing webhooks: deliveries taken from the outbox (`webhook_deliveries`, written in the same
//! transaction as the alert), signed, POSTed, and retried with doubling waits for a day before
//! they are marked failed. At least once: a receiver may see an event twice after a crash, and
//! tells repeats apart by the event's `id`.

use std::time::Duration;

use hmac::{Hmac, Mac};
use serde_json::json;
use sha2::Sha256;

use allot_store::{DueDelivery, Store};

/// How long a delivery keeps trying before it is marked failed.
pub const GIVE_UP_AFTER_MS: i64 = 24 * 3600 * 1000;
/// The longest wait between two attempts (the first is `webhook_retry`, then it doubles).
const LONGEST_RETRY_MS: i64 = 3600 * 1000;
/// A delivery being attempted is held this long from other instances.
const HOLD_MS: i64 = 60_000;

/// `t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>">`: the timestamp is signed with the
/// body, so a receiver refuses a replayed delivery by its age.
pub fn signature(secret: &[u8], unix_seconds: i64, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes any key length");
    mac.update(unix_seconds.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    let hex: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("t={unix_seconds},v1={hex}")
}

/// The JSON body receivers get (docs/api.md, "Webhooks").
pub fn body(d: &DueDelivery) -> Vec<u8> {
    let data: serde_json::Value = serde_json::from_str(&d.data).unwrap_or(serde_json::Value::Null);
    let at = chrono::DateTime::from_timestamp_millis(d.raised_at)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        .unwrap_or_default();
    serde_json::to_vec(&json!({
        "id": d.event_id,
        "type": d.kind,
        "createdAt": at,
        "summary": d.summary,
        "data": data,
    }))
    .expect("JSON")
}

/// The wait before the next attempt once `attempts` have failed, the first being `first_ms`.
pub fn retry_delay_ms(first_ms: i64, attempts: i64) -> i64 {
    let doublings = (attempts - 1).clamp(0, 20) as u32;
    (first_ms.saturating_mul(1_i64 << doublings)).min(LONGEST_RETRY_MS)
}

pub struct Outbox {
    store: Store,
    secrets: allot_secrets::SecretBox,
    http: reqwest::Client,
    first_retry_ms: i64,
    /// Alerts by e-mail (`mailto:` endpoints), when SMTP is configured.
    mailer: Option<Mailer>,
}

/// The TLS mode an SMTP URL asks for, with the CA file's certificates added to the roots; `None`
/// for a URL without TLS.
fn tls_with_ca(
    url: &str,
    pem: &[u8],
) -> Result<Option<lettre::transport::smtp::client::Tls>, String> {
    use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
    let parsed = reqwest::Url::parse(url).map_err(|e| e.to_string())?;
    let host = parsed.host_str().ok_or("no host")?.to_owned();
    let mode = parsed
        .query_pairs()
        .find(|(k, _)| k == "tls")
        .map(|(_, v)| v.into_owned());
    let params = || -> Result<TlsParameters, String> {
        let ca = Certificate::from_pem(pem).map_err(|e| e.to_string())?;
        TlsParameters::builder(host.clone())
            .add_root_certificate(ca)
            .build_rustls()
            .map_err(|e| e.to_string())
    };
    Ok(match (parsed.scheme(), mode.as_deref()) {
        ("smtps", _) => Some(Tls::Wrapper(params()?)),
        ("smtp", Some("required")) => Some(Tls::Required(params()?)),
        ("smtp", Some("opportunistic")) => Some(Tls::Opportunistic(params()?)),
        _ => None,
    })
}

/// The SMTP transport and the sender of alert e-mails.
pub struct Mailer {
    transport: lettre::AsyncSmtpTransport<lettre::Tokio1Executor>,
    from: lettre::message::Mailbox,
}

impl Mailer {
    /// From `ALLOT_SMTP_URL` and `ALLOT_SMTP_FROM`; the error says which is wrong. A TLS
    /// connection (`smtps://`, or `smtp://…?tls=required|opportunistic`) trusts the public roots
    /// and `ALLOT_CA_FILE`'s certificates, as every other outgoing connection does.
    pub fn new(smtp: &crate::config::Smtp, trust: &allot_trust::Trust) -> anyhow::Result<Self> {
        let shown = || crate::config::redact_url(&smtp.url);
        let mut builder = lettre::AsyncSmtpTransport::<lettre::Tokio1Executor>::from_url(&smtp.url)
            .map_err(|e| anyhow::anyhow!("ALLOT_SMTP_URL {}: {e}", shown()))?
            .timeout(Some(Duration::from_secs(20)));
        if !trust.extra_pem().is_empty() {
            if let Some(tls) = tls_with_ca(&smtp.url, trust.extra_pem()).map_err(|e| {
                anyhow::anyhow!("ALLOT_SMTP_URL {} with ALLOT_CA_FILE: {e}", shown())
            })? {
                builder = builder.tls(tls);
            }
        }
        let transport = builder.build();
        let from = smtp
            .from
            .parse()
            .map_err(|e| anyhow::anyhow!("ALLOT_SMTP_FROM {:?}: {e}", smtp.from))?;
        Ok(Self { transport, from })
    }

    /// One alert to one address: the summary as the subject, the event as the text.
    async fn send(&self, to: &str, d: &DueDelivery) -> Result<(), String> {
        use lettre::AsyncTransport;
        let to: lettre::message::Mailbox = to.parse().map_err(|e| format!("{to:?}: {e}"))?;
        let data: serde_json::Value =
            serde_json::from_str(&d.data).unwrap_or(serde_json::Value::Null);
        let text = format!(
            "{}\n\nEvent: {} ({})\nRaised: {}\n\n{}\n\n-- \nAllot. Alerts go to this address because ALLOT_ALERT_EMAIL names it.\n",
            d.summary,
            d.kind,
            d.event_id,
            chrono::DateTime::from_timestamp_millis(d.raised_at)
                .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
                .unwrap_or_default(),
            serde_json::to_string_pretty(&data).unwrap_or_default(),
        );
        let subject: String = d
            .summary
            .chars()
            .filter(|c| !c.is_control())
            .take(200)
            .collect();
        let message = lettre::Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(format!("[Allot] {subject}"))
            .header(lettre::message::header::ContentType::TEXT_PLAIN)
            .body(text)
            .map_err(|e| e.to_string())?;
        self.transport.send(message).await.map(|_| ()).map_err(|e| {
            let mut s = e.to_string();
            let mut src = std::error::Error::source(&e);
            while let Some(inner) = src {
                s.push_str(": ");
                s.push_str(&inner.to_string());
                src = inner.source();
            }
            s.chars().take(300).collect()
        })
    }
}

impl Outbox {
    pub fn new(
        store: Store,
        secrets: allot_secrets::SecretBox,
        trust: &allot_trust::Trust,
        first_retry: Duration,
        mailer: Option<Mailer>,
    ) -> anyhow::Result<Self> {
        let http = trust
            .client_builder()
            .timeout(Duration::from_secs(10))
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("Allot/", env!("CARGO_PKG_VERSION"), " (webhooks)"))
            .build()?;
        Ok(Self {
            store,
            secrets,
            http,
            first_retry_ms: first_retry.as_millis() as i64,
            mailer,
        })
    }

    /// Attempts every delivery that is due; returns how many were delivered.
    pub async fn deliver_due(&self, now: i64) -> Result<usize, allot_store::StoreError> {
        let due = self.store.claim_due_deliveries(now, HOLD_MS, 50).await?;
        let mut delivered = 0;
        for d in due {
            let (http_status, error) = self.attempt(&d).await;
            let now = allot_sync::now_ms();
            let attempts = d.attempts + 1;
            let ok = http_status.is_some_and(|s| (200..300).contains(&s));
            let (status, next) = if ok {
                delivered += 1;
                ("delivered", now)
            } else if now - d.created_at >= GIVE_UP_AFTER_MS {
                ("failed", now)
            } else {
                (
                    "pending",
                    now + retry_delay_ms(self.first_retry_ms, attempts),
                )
            };
            if !ok {
                tracing::info!(
                    delivery = d.id,
                    endpoint = d.endpoint_id,
                    attempts,
                    error = error.as_deref().unwrap_or(""),
                    "webhook delivery failed"
                );
            }
            self.store
                .finish_delivery(d.id, status, http_status, error.as_deref(), next, now)
                .await?;
        }
        Ok(delivered)
    }

    /// One POST: the receiver's status (and its words when it was not 2xx), or the error.
    async fn attempt(&self, d: &DueDelivery) -> (Option<i64>, Option<String>) {
        if let Some(to) = d.url.strip_prefix("mailto:") {
            return match &self.mailer {
                // 250: SMTP's "accepted", as the delivery log shows it.
                Some(m) => match m.send(to, d).await {
                    Ok(()) => (Some(250), None),
                    Err(e) => (None, Some(e)),
                },
                None => (
                    None,
                    Some("no SMTP server is configured (ALLOT_SMTP_URL)".into()),
                ),
            };
        }
        let secret = match self.secrets.open(&d.sealed_secret) {
            Ok(s) => s,
            Err(_) => {
                return (
                    None,
                    Some("the endpoint's secret cannot be read with this server's key".into()),
                )
            }
        };
        let body = body(d);
        let now_s = allot_sync::now_ms() / 1000;
        let res = self
            .http
            .post(&d.url)
            .header("content-type", "application/json")
            .header("x-allot-event", &d.kind)
            .header("x-allot-event-id", &d.event_id)
            .header("x-allot-signature", signature(&secret, now_s, &body))
            .body(body)
            .send()
            .await;
        match res {
            Ok(r) => {
                let status = i64::from(r.status().as_u16());
                if r.status().is_success() {
                    (Some(status), None)
                } else {
                    let text = r.text().await.unwrap_or_default();
                    let words: String =
                        text.chars().filter(|c| !c.is_control()).take(300).collect();
                    (Some(status), Some(format!("HTTP {status}: {words}")))
                }
            }
            Err(e) => (None, Some(words_of(&e))),
        }
    }
}

fn words_of(e: &reqwest::Error) -> String {
    let mut s = e.to_string();
    let mut src = std::error::Error::source(e);
    while let Some(inner) = src {
        s.push_str(": ");
        s.push_str(&inner.to_string());
        src = inner.source();
    }
    s.chars().take(300).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_signature_covers_the_time_and_the_body() {
        let s = signature(b"whsec_test", 1_700_000_000, b"{\"id\":\"e1\"}");
        assert!(s.starts_with("t=1700000000,v1="));
        assert_eq!(s.len(), "t=1700000000,v1=".len() + 64);
        assert_ne!(
            s,
            signature(b"whsec_test", 1_700_000_001, b"{\"id\":\"e1\"}")
        );
        assert_ne!(
            s,
            signature(b"whsec_other", 1_700_000_000, b"{\"id\":\"e1\"}")
        );
    }

    #[test]
    fn retries_double_from_thirty_seconds_to_an_hour() {
        assert_eq!(retry_delay_ms(30_000, 1), 30_000);
        assert_eq!(retry_delay_ms(30_000, 2), 60_000);
        assert_eq!(retry_delay_ms(30_000, 5), 480_000);
        assert_eq!(retry_delay_ms(30_000, 12), 3_600_000);
        assert_eq!(retry_delay_ms(30_000, 100), 3_600_000);
    }
}
