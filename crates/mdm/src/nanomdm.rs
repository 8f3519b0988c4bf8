//! NanoMDM's command API: `PUT {base}{prefix}/enqueue/{id,id,…}` with HTTP Basic auth (user
//! `nanomdm`, or `nanohub` behind NanoHUB), the raw command plist as body. The answer is read per
//! enrollment: HTTP 200, 207 and even 500 can mean "queued" (a push failure is only a delayed
//! wake-up), so what was queued is decided from the body (§1.3).

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::commands::Command;

#[derive(Debug, Clone)]
pub struct NanoMdmConfig {
    /// `http://nanomdm:9000`.
    pub base_url: String,
    /// `/v1` for NanoMDM, `/api/v1/nanomdm` for NanoHUB.
    pub prefix: String,
    /// `nanomdm` or `nanohub`.
    pub user: String,
    pub api_key: String,
    /// What HTTPS to NanoMDM trusts (`ALLOT_CA_FILE`: NanoMDM often has a private CA's certificate).
    pub trust: allot_trust::Trust,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum MdmError {
    #[error("NanoMDM refused the API key (HTTP 401): check the MDM API key")]
    Unauthorized,
    /// Nothing was queued for anyone (bad plist, duplicate CommandUUID, an unknown id on the SQL
    /// backends, a database error).
    #[error("NanoMDM queued nothing: {0}")]
    Rejected(String),
    #[error("cannot reach NanoMDM: {0}")]
    Transport(String),
    #[error("NanoMDM's answer could not be read: {0}")]
    Decode(String),
    /// An error status whose body is not NanoMDM's JSON (a proxy in front of it, a crash).
    #[error("NanoMDM answered {0}")]
    Status(String),
}

/// What happened for one enrollment id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdResult {
    pub queued: bool,
    /// The device was not woken now; it still picks the command up at its next check-in.
    pub push_error: Option<String>,
    pub command_error: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Enqueued {
    pub command_uuid: String,
    pub ids: BTreeMap<String, IdResult>,
}

#[derive(Debug, Deserialize, Default)]
struct ApiResult {
    #[serde(default)]
    status: BTreeMap<String, IdStatus>,
    #[serde(default)]
    command_error: Option<String>,
    /// A push that failed for every id (no push certificate for the topic): the command is
    /// still queued.
    #[serde(default)]
    push_error: Option<String>,
}

#[derive(Debug, Deserialize, Default)]
struct IdStatus {
    #[serde(default)]
    push_error: Option<String>,
    #[serde(default)]
    command_error: Option<String>,
}

pub struct NanoMdm {
    http: reqwest::Client,
    cfg: NanoMdmConfig,
}

/// Enrollment ids are percent-encoded as path segments; a comma can never be part of one.
fn encode_id(id: &str) -> String {
    id.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b':' | b'@' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

impl NanoMdm {
    pub fn new(cfg: NanoMdmConfig) -> Self {
        let http = cfg
            .trust
            .client_builder()
            .timeout(std::time::Duration::from_secs(30))
            .build()
            .expect("an HTTP client");
        Self { http, cfg }
    }

    /// Queues one command for the ids (one CommandUUID shared by all of them).
    pub async fn enqueue(
        &self,
        ids: &[String],
        command: &Command,
        command_uuid: &str,
        push: bool,
    ) -> Result<Enqueued, MdmError> {
        if ids.is_empty() || ids.iter().any(|i| i.is_empty() || i.contains(',')) {
            return Err(MdmError::Rejected(
                "enrollment ids must be non-empty and contain no comma".into(),
            ));
        }
        let path: Vec<String> = ids.iter().map(|i| encode_id(i)).collect();
        let mut url = format!(
            "{}{}/enqueue/{}",
            self.cfg.base_url.trim_end_matches('/'),
            self.cfg.prefix,
            path.join(",")
        );
        if !push {
            url.push_str("?nopush=1");
        }
        let kind = command.request_type();
        let result = match self
            .call(self.http.put(url).body(command.to_plist(command_uuid)))
            .await
        {
            Ok(r) => r,
            Err(e) => {
                allot_telemetry::count(
                    "allot_mdm_commands_total",
                    &[("command", kind), ("outcome", "failed")],
                );
                return Err(e);
            }
        };
        if let Some(e) = result.command_error {
            allot_telemetry::count(
                "allot_mdm_commands_total",
                &[("command", kind), ("outcome", "refused")],
            );
            return Err(MdmError::Rejected(e));
        }
        let ids = ids
            .iter()
            .map(|id| {
                let mut s = result
                    .status
                    .get(id)
                    .map(|s| (s.push_error.clone(), s.command_error.clone()))
                    .unwrap_or_default();
                if s.0.is_none() && push {
                    s.0 = result.push_error.clone();
                }
                (
                    id.clone(),
                    IdResult {
                        queued: s.1.is_none(),
                        push_error: s.0,
                        command_error: s.1,
                    },
                )
            })
            .collect();
        let ids: BTreeMap<String, IdResult> = ids;
        let queued = ids.values().filter(|r| r.queued).count();
        for (outcome, n) in [("queued", queued), ("refused", ids.len() - queued)] {
            if n > 0 {
                allot_telemetry::add(
                    "allot_mdm_commands_total",
                    &[("command", kind), ("outcome", outcome)],
                    n as f64,
                );
            }
        }
        if push {
            count_pushes(ids.values().map(|r| r.push_error.is_none()));
        }
        Ok(Enqueued {
            command_uuid: command_uuid.to_owned(),
            ids,
        })
    }
}

/// NanoMDM's push certificate for a topic.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct PushCert {
    pub topic: String,
    /// RFC 3339: when the certificate expires.
    pub not_after: String,
}

impl NanoMdm {
    /// The push certificate NanoMDM holds for a topic (`GET {prefix}/pushcert?topic=…`).
    pub async fn push_cert(&self, topic: &str) -> Result<PushCert, MdmError> {
        let url = format!(
            "{}{}/pushcert",
            self.cfg.base_url.trim_end_matches('/'),
            self.cfg.prefix
        );
        let res = self
            .http
            .get(url)
            .query(&[("topic", topic)])
            .basic_auth(&self.cfg.user, Some(&self.cfg.api_key))
            .send()
            .await
            .map_err(|e| MdmError::Transport(e.without_url().to_string()))?;
        let status = res.status();
        if status == reqwest::StatusCode::UNAUTHORIZED {
            return Err(MdmError::Unauthorized);
        }
        let body = res
            .bytes()
            .await
            .map_err(|e| MdmError::Transport(e.to_string()))?;
        if !status.is_success() {
            let text = String::from_utf8_lossy(&body);
            return Err(MdmError::Rejected(format!(
                "HTTP {status}: {}",
                text.trim().chars().take(300).collect::<String>()
            )));
        }
        serde_json::from_slice(&body).map_err(|e| MdmError::Decode(format!("HTTP {status}: {e}")))
    }

    /// Sends a request with the API's Basic auth and reads NanoMDM's JSON answer, whatever its
    /// status (200, 207 and 500 all carry per-id results).
    async fn call(&self, req: reqwest::RequestBuilder) -> Result<ApiResult, MdmError> {
        let res = req
            .basic_auth(&self.cfg.user, Some(&self.cfg.api_key))
            .send()
            .await
            .map_err(|e| MdmError::Transport(e.without_url().to_string()))?;
        if res.status() == reqwest::StatusCode::UNAUTHORIZED {
            return Err(MdmError::Unauthorized);
        }
        let status = res.status();
        let body = res
            .bytes()
            .await
            .map_err(|e| MdmError::Transport(e.to_string()))?;
        serde_json::from_slice(&body).map_err(|e| {
            if status.is_success() {
                MdmError::Decode(format!("HTTP {status}: {e}"))
            } else {
                let text = String::from_utf8_lossy(&body);
                MdmError::Status(format!(
                    "HTTP {status}: {}",
                    text.trim().chars().take(200).collect::<String>()
                ))
            }
        })
    }

    /// Wakes devices: `POST {prefix}/push/{ids}`. Per id, the push error, if any (a top-level
    /// `push_error` applies to every id).
    pub async fn push(&self, ids: &[String]) -> Result<BTreeMap<String, Option<String>>, MdmError> {
        if ids.is_empty() || ids.iter().any(|i| i.is_empty() || i.contains(',')) {
            return Err(MdmError::Rejected(
                "enrollment ids must be non-empty and contain no comma".into(),
            ));
        }
        let path: Vec<String> = ids.iter().map(|i| encode_id(i)).collect();
        let url = format!(
            "{}{}/push/{}",
            self.cfg.base_url.trim_end_matches('/'),
            self.cfg.prefix,
            path.join(",")
        );
        let result = self.call(self.http.post(url)).await?;
        let errors: BTreeMap<String, Option<String>> = ids
            .iter()
            .map(|id| {
                let own = result.status.get(id).and_then(|s| s.push_error.clone());
                (id.clone(), own.or_else(|| result.push_error.clone()))
            })
            .collect();
        count_pushes(errors.values().map(Option::is_none));
        Ok(errors)
    }
}

/// Pushes by outcome, in the metrics (`allot_mdm_pushes_total`).
fn count_pushes(sent: impl Iterator<Item = bool>) {
    let (mut ok, mut failed) = (0.0, 0.0);
    for s in sent {
        if s {
            ok += 1.0;
        } else {
            failed += 1.0;
        }
    }
    for (outcome, n) in [("sent", ok), ("failed", failed)] {
        if n > 0.0 {
            allot_telemetry::add("allot_mdm_pushes_total", &[("outcome", outcome)], n);
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn ids_are_path_segments() {
        assert_eq!(
            super::encode_id("00008020-000915083C80012E"),
            "00008020-000915083C80012E"
        );
        assert_eq!(super::encode_id("UDID:user@x"), "UDID:user@x");
        assert_eq!(super::encode_id("a b/c"), "a%20b%2Fc");
    }
}
