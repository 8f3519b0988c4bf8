//! NanoMDM's (MicroMDM-compatible) webhook: one JSON POST per device request. Check-in topics
//! carry `checkin_event`, `mdm.Connect` carries `acknowledge_event`; the device's plist is inside
//! as base64 `raw_payload`. Unknown topics are events too, to be ignored, not rejected.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use hmac::{Hmac, Mac};
use serde::Deserialize;
use sha2::Sha256;

use crate::untrusted_plist::Limits;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum WebhookError {
    #[error("the webhook's X-Hmac-Signature is missing or does not match the configured key")]
    BadSignature,
    #[error("the webhook body is not NanoMDM's event JSON: {0}")]
    Malformed(String),
}

/// Checks `X-Hmac-Signature`: base64(HMAC-SHA256(key, exact body)), compared in constant time.
pub fn verify_signature(
    key: &[u8],
    body: &[u8],
    signature: Option<&str>,
) -> Result<(), WebhookError> {
    let given = signature
        .and_then(|s| STANDARD.decode(s.trim()).ok())
        .ok_or(WebhookError::BadSignature)?;
    let mut mac = Hmac::<Sha256>::new_from_slice(key).map_err(|_| WebhookError::BadSignature)?;
    mac.update(body);
    mac.verify_slice(&given)
        .map_err(|_| WebhookError::BadSignature)
}

/// Signs a body as NanoMDM does (for the fake NanoMDM and tests).
pub fn sign(key: &[u8], body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(body);
    STANDARD.encode(mac.finalize().into_bytes())
}

#[derive(Debug, Deserialize)]
struct Envelope {
    topic: String,
    #[serde(default)]
    event_id: Option<String>,
    #[serde(default)]
    created_at: Option<String>,
    #[serde(default)]
    checkin_event: Option<Inner>,
    #[serde(default)]
    acknowledge_event: Option<Inner>,
}

#[derive(Debug, Deserialize)]
struct Inner {
    #[serde(default)]
    udid: Option<String>,
    #[serde(default)]
    enrollment_id: Option<String>,
    #[serde(default)]
    ids: Option<Ids>,
    #[serde(default)]
    raw_payload: Option<String>,
    #[serde(default)]
    token_update_tally: Option<i64>,
    #[serde(default)]
    status: Option<String>,
    #[serde(default)]
    command_uuid: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Ids {
    id: String,
}

/// A command report's keys.
pub type Report = plist::Dictionary;

/// A failed command report in words: the `ErrorChain`'s descriptions with code and domain.
pub fn error_words(status: &str, report: Option<&Report>) -> String {
    if status == "CommandFormatError" {
        return "the device could not read the command (CommandFormatError)".into();
    }
    let chain: Vec<String> = report
        .and_then(|r| r.get("ErrorChain"))
        .and_then(|c| c.as_array())
        .map(|items| {
            items
                .iter()
                .filter_map(|i| i.as_dictionary())
                .map(|e| {
                    let text = e
                        .get("USEnglishDescription")
                        .or_else(|| e.get("LocalizedDescription"))
                        .and_then(|v| v.as_string())
                        .unwrap_or("error");
                    let code = e
                        .get("ErrorCode")
                        .and_then(|v| v.as_signed_integer())
                        .unwrap_or_default();
                    let domain = e
                        .get("ErrorDomain")
                        .and_then(|v| v.as_string())
                        .unwrap_or("");
                    format!("{text} ({domain} {code})")
                })
                .collect()
        })
        .unwrap_or_default();
    if chain.is_empty() {
        "the device reported an error".into()
    } else {
        format!("the device reported: {}", chain.join("; "))
    }
}

/// What a check-in says about the device.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CheckIn {
    /// NanoMDM's enrollment id (where commands go): `ids.id`, else the UDID or EnrollmentID.
    pub enrollment_id: String,
    pub serial_number: Option<String>,
    pub product_name: Option<String>,
    pub model: Option<String>,
    pub device_name: Option<String>,
    pub os_version: Option<String>,
    /// The APNs topic of NanoMDM's push certificate (Authenticate's `Topic`).
    pub topic: Option<String>,
}

impl CheckIn {
    /// `iOS`, `iPadOS`, `macOS`, `tvOS`, `watchOS`, `visionOS`, from the product name.
    pub fn platform(&self) -> &'static str {
        let p = self
            .product_name
            .as_deref()
            .or(self.model.as_deref())
            .unwrap_or("");
        if p.starts_with("iPad") {
            "iPadOS"
        } else if p.starts_with("iPhone") || p.starts_with("iPod") {
            "iOS"
        } else if p.starts_with("AppleTV") {
            "tvOS"
        } else if p.starts_with("Watch") {
            "watchOS"
        } else if p.starts_with("RealityDevice") {
            "visionOS"
        } else if p.contains("Mac") {
            "macOS"
        } else {
            "iOS"
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// A device enrolls or re-enrolls (NanoMDM then cleared its command queue).
    Authenticate(CheckIn),
    /// Push token update; `first` when enrollment just completed (tally 1).
    TokenUpdate { enrollment_id: String, first: bool },
    /// The MDM profile was removed.
    CheckOut { enrollment_id: String },
    /// A command report (`Acknowledged`, `Error`, `CommandFormatError`, `NotNow`) or `Idle`.
    Connect {
        enrollment_id: String,
        status: String,
        command_uuid: Option<String>,
        report: Option<plist::Dictionary>,
    },
    /// Another topic, to ignore.
    Other(String),
}

fn enrollment_of(inner: &Inner) -> Option<String> {
    inner
        .ids
        .as_ref()
        .map(|i| i.id.clone())
        .or_else(|| inner.udid.clone())
        .or_else(|| inner.enrollment_id.clone())
        .filter(|s| !s.is_empty())
}

fn decode_plist(raw: Option<&str>) -> Result<Option<plist::Dictionary>, WebhookError> {
    let Some(raw) = raw.filter(|r| !r.trim().is_empty()) else {
        return Ok(None);
    };
    let bytes = STANDARD
        .decode(raw.trim())
        .map_err(|_| WebhookError::Malformed("raw_payload is not base64".into()))?;
    let value = crate::untrusted_plist::parse(&bytes, Limits::default())
        .map_err(|e| WebhookError::Malformed(format!("raw_payload is refused: {e}")))?;
    Ok(value.into_dictionary())
}

fn string(d: &plist::Dictionary, key: &str) -> Option<String> {
    d.get(key)
        .and_then(|v| v.as_string())
        .map(str::to_owned)
        .filter(|s| !s.is_empty())
}

/// One webhook delivery: the event, with NanoMDM's id and time for it.
#[derive(Debug, Clone, PartialEq)]
pub struct Delivery {
    /// NanoMDM's random id of the event (none from older MicroMDM-style senders).
    pub event_id: Option<String>,
    /// When NanoMDM received the device's request (RFC 3339), as NanoMDM wrote it.
    pub created_at: Option<String>,
    pub event: Event,
}

/// Parses one webhook body.
pub fn parse(body: &[u8]) -> Result<Event, WebhookError> {
    parse_delivery(body).map(|d| d.event)
}

/// Parses one webhook body with its event id and time.
pub fn parse_delivery(body: &[u8]) -> Result<Delivery, WebhookError> {
    let env: Envelope =
        serde_json::from_slice(body).map_err(|e| WebhookError::Malformed(e.to_string()))?;
    let event_id = env.event_id.clone().filter(|s| !s.is_empty());
    let created_at = env.created_at.clone().filter(|s| !s.is_empty());
    Ok(Delivery {
        event_id,
        created_at,
        event: parse_event(env)?,
    })
}

fn parse_event(env: Envelope) -> Result<Event, WebhookError> {
    let need = |inner: Option<Inner>, what: &str| {
        inner.ok_or_else(|| WebhookError::Malformed(format!("{} has no {what}", env.topic)))
    };
    let no_id = || {
        WebhookError::Malformed(format!(
            "{} names no enrollment (ids.id, udid or enrollment_id)",
            env.topic
        ))
    };
    Ok(match env.topic.as_str() {
        "mdm.Authenticate" => {
            let inner = need(env.checkin_event, "checkin_event")?;
            let plist = decode_plist(inner.raw_payload.as_deref())?.unwrap_or_default();
            let enrollment_id = enrollment_of(&inner)
                .or_else(|| string(&plist, "UDID"))
                .ok_or_else(no_id)?;
            Event::Authenticate(CheckIn {
                enrollment_id,
                serial_number: string(&plist, "SerialNumber").map(|s| s.to_ascii_uppercase()),
                product_name: string(&plist, "ProductName"),
                model: string(&plist, "Model").or_else(|| string(&plist, "ModelName")),
                device_name: string(&plist, "DeviceName"),
                os_version: string(&plist, "OSVersion"),
                topic: string(&plist, "Topic"),
            })
        }
        "mdm.TokenUpdate" => {
            let inner = need(env.checkin_event, "checkin_event")?;
            let first = inner.token_update_tally == Some(1);
            Event::TokenUpdate {
                enrollment_id: enrollment_of(&inner).ok_or_else(no_id)?,
                first,
            }
        }
        "mdm.CheckOut" => {
            let inner = need(env.checkin_event, "checkin_event")?;
            let plist = decode_plist(inner.raw_payload.as_deref())?.unwrap_or_default();
            let enrollment_id = enrollment_of(&inner)
                .or_else(|| string(&plist, "UDID"))
                .ok_or_else(no_id)?;
            Event::CheckOut { enrollment_id }
        }
        "mdm.Connect" => {
            let inner = need(env.acknowledge_event, "acknowledge_event")?;
            let report = decode_plist(inner.raw_payload.as_deref())?;
            Event::Connect {
                enrollment_id: enrollment_of(&inner).ok_or_else(no_id)?,
                status: inner.status.clone().unwrap_or_default(),
                command_uuid: inner.command_uuid.clone().filter(|s| !s.is_empty()),
                report,
            }
        }
        other => Event::Other(other.to_owned()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plist_b64(pairs: &[(&str, &str)]) -> String {
        let mut d = plist::Dictionary::new();
        for (k, v) in pairs {
            d.insert((*k).into(), plist::Value::String((*v).into()));
        }
        let mut out = Vec::new();
        plist::to_writer_xml(&mut out, &plist::Value::Dictionary(d)).unwrap();
        STANDARD.encode(out)
    }

    #[test]
    fn authenticate_gives_the_serial_number_and_enrollment() {
        let raw = plist_b64(&[
            ("MessageType", "Authenticate"),
            ("UDID", "66ADE930-5FDF-5EC4-8429-15640684C489"),
            ("SerialNumber", "c02mt66kflhh"),
            ("ProductName", "iMac14,2"),
            ("DeviceName", "Lab iMac"),
        ]);
        let body = format!(
            r#"{{"topic":"mdm.Authenticate","event_id":"e","created_at":"2026-01-01T00:00:00Z","checkin_event":{{"udid":"66ADE930-5FDF-5EC4-8429-15640684C489","ids":{{"id":"66ADE930-5FDF-5EC4-8429-15640684C489","type":"Device"}},"raw_payload":"{raw}"}}}}"#
        );
        let Event::Authenticate(c) = parse(body.as_bytes()).unwrap() else {
            panic!("not an Authenticate")
        };
        assert_eq!(c.serial_number.as_deref(), Some("C02MT66KFLHH"));
        assert_eq!(c.enrollment_id, "66ADE930-5FDF-5EC4-8429-15640684C489");
        assert_eq!(
            (c.platform(), c.device_name.as_deref()),
            ("macOS", Some("Lab iMac"))
        );
    }

    #[test]
    fn other_topics_and_older_formats() {
        // MicroMDM style: no `ids`, `url_params: null`, the UDID only.
        let body = r#"{"topic":"mdm.CheckOut","event_id":"x","created_at":"2026-01-01T00:00:00Z","checkin_event":{"udid":"UDID-1","url_params":null,"raw_payload":""}}"#;
        assert_eq!(
            parse(body.as_bytes()).unwrap(),
            Event::CheckOut {
                enrollment_id: "UDID-1".into()
            }
        );
        let garbage = r#"{"topic":"mdm.CheckOut","checkin_event":{"udid":"U","raw_payload":"bm90IGEgcGxpc3Q="}}"#;
        assert!(
            matches!(parse(garbage.as_bytes()), Err(WebhookError::Malformed(m)) if m.contains("not a plist"))
        );
        let body = r#"{"topic":"mdm.TokenUpdate","checkin_event":{"ids":{"id":"U1"},"token_update_tally":1}}"#;
        assert_eq!(
            parse(body.as_bytes()).unwrap(),
            Event::TokenUpdate {
                enrollment_id: "U1".into(),
                first: true
            }
        );
        assert_eq!(
            parse(br#"{"topic":"mdm.DeclarativeManagement","checkin_event":{}}"#).unwrap(),
            Event::Other("mdm.DeclarativeManagement".into())
        );
        let idle =
            r#"{"topic":"mdm.Connect","acknowledge_event":{"ids":{"id":"U1"},"status":"Idle"}}"#;
        assert!(
            matches!(parse(idle.as_bytes()).unwrap(), Event::Connect { status, command_uuid: None, .. } if status == "Idle")
        );
        assert!(matches!(parse(b"[1,2]"), Err(WebhookError::Malformed(_))));
        assert!(
            matches!(parse(br#"{"topic":"mdm.CheckOut","checkin_event":{}}"#), Err(WebhookError::Malformed(m)) if m.contains("enrollment"))
        );
    }

    #[test]
    fn signatures() {
        let sig = sign(b"key", b"{}");
        assert_eq!(verify_signature(b"key", b"{}", Some(&sig)), Ok(()));
        assert_eq!(
            verify_signature(b"key", b"{ }", Some(&sig)),
            Err(WebhookError::BadSignature)
        );
        assert_eq!(
            verify_signature(b"other", b"{}", Some(&sig)),
            Err(WebhookError::BadSignature)
        );
        assert_eq!(
            verify_signature(b"key", b"{}", None),
            Err(WebhookError::BadSignature)
        );
    }
}
