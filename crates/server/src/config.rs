//! Configuration, layered: defaults, then a TOML file, then `ALLOT_*` environment variables.
//! Every value is checked at start-up; a bad one stops the server with a message naming it.
//! Secrets may come from a file (`ALLOT_ADMIN_API_KEY_FILE`, `ALLOT_SECRET_KEY_FILE`,
//! `ALLOT_CONSOLE_ADMIN_PASSWORD_FILE`) and never
//! appear in `Debug` output or logs.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

pub const DEFAULT_APPLE_URL: &str = allot_apple_client::APPLE_BASE_URL;

#[derive(Clone)]
pub struct Config {
    pub listen: SocketAddr,
    /// Holds the SQLite database and the secret key file.
    pub data_dir: PathBuf,
    /// `postgres://…` selects PostgreSQL; none means SQLite in `data_dir`.
    pub database_url: Option<String>,
    pub apple_url: String,
    /// The first admin API key, for automation (otherwise one is made and printed once).
    pub admin_api_key: Option<String>,
    /// The first console account's (`admin`) password (otherwise one is made and printed once).
    pub console_admin_password: Option<String>,
    /// Base64 of 32 bytes; otherwise `data_dir/secret.key` (created on first run).
    pub secret_key: Option<String>,
    /// Where Apple reaches this server for notifications.
    pub public_url: Option<String>,
    pub delta_interval: Duration,
    pub full_interval: Duration,
    pub schedule_tick: Duration,
    /// NanoMDM's `-webhook-hmac-key`: turns on `POST /mdm/webhook` and authenticates it.
    pub mdm_webhook_hmac_key: Option<String>,
    /// NanoMDM's `-dm-send-hmac-key`: the declarations protocol (`/mdm/declarative/`) checks
    /// each forwarded request's `X-Hmac-Signature` with it.
    pub dm_hmac_key: Option<String>,
    /// Every deployment declares its apps where devices support it (`ALLOT_DECLARATIVE`).
    pub declarative: bool,
    /// NanoMDM's base URL (`http://nanomdm:9000`); installs are sent there.
    pub nanomdm_url: Option<String>,
    /// NanoMDM's `-api` key.
    pub nanomdm_api_key: Option<String>,
    /// `/v1` for NanoMDM, `/api/v1/nanomdm` for NanoHUB.
    pub nanomdm_prefix: String,
    /// `nanomdm`, or `nanohub` for NanoHUB.
    pub nanomdm_user: String,
    /// How often every deployment takes a reconcile pass (`ALLOT_RECONCILE_SECONDS`, default
    /// 120); a notification or a device's report starts one at once, and requests to Apple in
    /// flight are followed every `event_poll`.
    pub deploy_tick: Duration,
    /// How long a sync holds its token without renewing (`ALLOT_SYNC_LEASE_SECONDS`, default
    /// 600): when an instance dies mid-sync, another takes the token over this long after.
    pub sync_lease: Duration,
    /// How often each enrolled device is asked for its managed apps (`ALLOT_APP_LIST_HOURS`,
    /// default 24).
    pub app_list_interval: Duration,
    /// The first wait before a push NanoMDM could not deliver is tried again (then doubling).
    pub push_backoff: Duration,
    /// How often each enrolled device is asked for its OS version and model
    /// (`ALLOT_DEVICE_INFO_HOURS`, default 24).
    pub device_info_interval: Duration,
    /// The first wait before NanoMDM is called again after an error (then doubling, at most
    /// 15 minutes).
    pub mdm_backoff: Duration,
    /// App metadata older than this is read again at the next sync (`ALLOT_METADATA_MAX_AGE_HOURS`,
    /// default 24): new versions in the store become automatic updates within a day.
    pub metadata_max_age: Duration,
    /// Least time between two polls of one Apple event (Apple: 30 s).
    pub event_poll: Duration,
    /// How long a device that left management keeps its licenses before they are given back.
    pub reclaim_grace: Duration,
    /// The language of app names and descriptions from Apple's metadata lookup (`en-us`, `fr-fr`).
    pub metadata_language: String,
    /// Take the client's address from the last `X-Forwarded-For` hop (only behind a proxy that
    /// sets it), for the sign-in throttle.
    pub trust_forwarded_for: bool,
    /// What outgoing HTTPS trusts: public and platform roots, plus `ALLOT_CA_FILE`'s certificates.
    pub trust: allot_trust::Trust,
    /// Apple's metadata API for organizations (§18.2), when a developer key is configured.
    pub metadata_api: Option<MetadataApi>,
    /// `licenses.low` is raised when an app deployments use has this many free licenses or fewer
    /// (`ALLOT_ALERT_LOW_LICENSES`, default 5).
    pub alert_low_licenses: i64,
    /// How often alerts are checked for (deliveries go out within seconds of a raise).
    pub alert_check: Duration,
    /// The first wait after a failed webhook delivery (then doubling, at most an hour).
    pub webhook_retry: Duration,
    /// Alerts by e-mail: the SMTP server and the sender (`ALLOT_SMTP_URL`, `ALLOT_SMTP_FROM`).
    pub smtp: Option<Smtp>,
    /// The bearer token `GET /metrics` asks for (`ALLOT_METRICS_TOKEN`); without it metrics are off.
    pub metrics_token: Option<String>,
    /// Who gets which alerts by e-mail: (event pattern, addresses); a pattern is an event name,
    /// `token.*`, or `*` (`ALLOT_ALERT_EMAIL`: `token.*=it@x.example;*=ops@x.example`).
    pub alert_email: Vec<(String, Vec<String>)>,
}

/// The SMTP server alerts are mailed through: `smtps://user:password@host:465` (TLS),
/// `smtp://user:password@host:587?tls=required` (STARTTLS), or `smtp://host:25` (plain, for a
/// relay on the same network).
#[derive(Clone)]
pub struct Smtp {
    pub url: String,
    pub from: String,
}

impl std::fmt::Debug for Smtp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Smtp")
            .field("url", &redact_url(&self.url))
            .field("from", &self.from)
            .finish()
    }
}

/// `ALLOT_ALERT_EMAIL`: `pattern=addr,addr;pattern=addr`, checked.
pub fn parse_alert_email(v: &str) -> Result<Vec<(String, Vec<String>)>, String> {
    let mut out = Vec::new();
    for part in v.split(';').map(str::trim).filter(|p| !p.is_empty()) {
        let Some((pattern, addrs)) = part.split_once('=') else {
            return Err(format!(
                "{part:?} should be EVENT=ADDRESS[,ADDRESS] (EVENT: a name, token.* or *)"
            ));
        };
        let pattern = pattern.trim();
        let known = pattern == "*"
            || crate::alerts::EVENTS.contains(&pattern)
            || pattern.strip_suffix(".*").is_some_and(|p| {
                crate::alerts::EVENTS
                    .iter()
                    .any(|e| e.starts_with(&format!("{p}.")))
            });
        if !known {
            return Err(format!(
                "{pattern:?} is not an event: use {}, a prefix such as token.*, or *",
                crate::alerts::EVENTS.join(", ")
            ));
        }
        let addrs: Vec<String> = addrs
            .split(',')
            .map(|a| a.trim().to_owned())
            .filter(|a| !a.is_empty())
            .collect();
        if let Some(bad) = addrs
            .iter()
            .find(|a| !a.contains('@') || a.contains(char::is_whitespace) || a.len() > 254)
        {
            return Err(format!("{bad:?} is not an e-mail address"));
        }
        if addrs.is_empty() {
            return Err(format!("{pattern}: no address"));
        }
        out.push((pattern.to_owned(), addrs));
    }
    Ok(out)
}

/// The developer key of the metadata API and where to ask it. The key is a secret: it is read from
/// the environment or a file (`ALLOT_METADATA_API_KEY_FILE`, the `.p8`), never stored or shown.
#[derive(Clone)]
pub struct MetadataApi {
    pub key_id: String,
    pub team_id: String,
    pub key_pem: String,
    /// One base URL for every location instead of Apple's two (`api.ent`/`api.edu`).
    pub url: Option<String>,
    /// Storefronts tried after the location's own.
    pub storefronts: Vec<String>,
}

impl MetadataApi {
    pub fn developer_key(&self) -> Result<allot_apple_client::DeveloperKey, String> {
        allot_apple_client::DeveloperKey::from_p8(&self.key_id, &self.team_id, &self.key_pem)
    }
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("listen", &self.listen)
            .field("data_dir", &self.data_dir)
            .field(
                "database",
                &self.database_url.as_ref().map(|u| redact_url(u)),
            )
            .field("apple_url", &self.apple_url)
            .field("public_url", &self.public_url)
            .field("trust", &self.trust)
            .finish_non_exhaustive()
    }
}

/// `postgres://user:secret@host/db` → `postgres://user:…@host/db`.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => {
            let creds = &url[s + 3..at];
            match creds.split_once(':') {
                Some((user, _)) => format!("{}{user}:…{}", &url[..s + 3], &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:8080".parse().expect("a valid address"),
            data_dir: PathBuf::from("allot-data"),
            database_url: None,
            apple_url: DEFAULT_APPLE_URL.into(),
            admin_api_key: None,
            console_admin_password: None,
            secret_key: None,
            public_url: None,
            delta_interval: Duration::from_secs(12 * 3600),
            full_interval: Duration::from_secs(7 * 86400),
            schedule_tick: Duration::from_secs(30),
            mdm_webhook_hmac_key: None,
            dm_hmac_key: None,
            declarative: false,
            nanomdm_url: None,
            nanomdm_api_key: None,
            nanomdm_prefix: "/v1".into(),
            nanomdm_user: "nanomdm".into(),
            deploy_tick: Duration::from_secs(120),
            sync_lease: Duration::from_secs(600),
            app_list_interval: Duration::from_secs(24 * 3600),
            push_backoff: Duration::from_secs(60),
            device_info_interval: Duration::from_secs(24 * 3600),
            mdm_backoff: Duration::from_secs(30),
            metadata_max_age: Duration::from_secs(24 * 3600),
            event_poll: Duration::from_secs(30),
            reclaim_grace: Duration::from_secs(24 * 3600),
            metadata_language: "en-us".into(),
            trust_forwarded_for: false,
            trust: allot_trust::Trust::system(),
            metadata_api: None,
            alert_low_licenses: 5,
            alert_check: Duration::from_secs(60),
            webhook_retry: Duration::from_secs(30),
            smtp: None,
            alert_email: Vec::new(),
            metrics_token: None,
        }
    }
}

/// The TOML file: the same names as the variables, lower case, without `ALLOT_`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    listen: Option<String>,
    data_dir: Option<PathBuf>,
    database_url: Option<String>,
    apple_url: Option<String>,
    admin_api_key: Option<String>,
    console_admin_password: Option<String>,
    secret_key: Option<String>,
    public_url: Option<String>,
    delta_sync_hours: Option<f64>,
    full_sync_days: Option<f64>,
    mdm_webhook_hmac_key: Option<String>,
    dm_hmac_key: Option<String>,
    declarative: Option<bool>,
    nanomdm_url: Option<String>,
    nanomdm_api_key: Option<String>,
    nanomdm_prefix: Option<String>,
    nanomdm_user: Option<String>,
    reclaim_grace_hours: Option<f64>,
    alert_low_licenses: Option<i64>,
    smtp_url: Option<String>,
    metrics_token: Option<String>,
    smtp_from: Option<String>,
    alert_email: Option<String>,
    metadata_language: Option<String>,
    reconcile_seconds: Option<f64>,
    sync_lease_seconds: Option<f64>,
    app_list_hours: Option<f64>,
    device_info_hours: Option<f64>,
    metadata_max_age_hours: Option<f64>,
    trust_forwarded_for: Option<bool>,
    ca_file: Option<PathBuf>,
    metadata_api_key_id: Option<String>,
    metadata_api_team_id: Option<String>,
    metadata_api_key: Option<String>,
    metadata_api_url: Option<String>,
    metadata_api_storefronts: Option<String>,
}

#[derive(Debug, thiserror::Error)]
#[error("configuration: {0}")]
pub struct ConfigError(pub String);

impl Config {
    /// Defaults ← `file` (if given) ← environment (`env` lists the variables, for tests).
    pub fn load(
        file: Option<&std::path::Path>,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Self, ConfigError> {
        let mut c = Config::default();
        let mut f = FileConfig::default();
        if let Some(path) = file {
            let text = std::fs::read_to_string(path)
                .map_err(|e| ConfigError(format!("cannot read {}: {e}", path.display())))?;
            f = toml::from_str(&text)
                .map_err(|e| ConfigError(format!("{}: {e}", path.display())))?;
        }
        let pick = |var: &str, from_file: Option<String>| -> Result<Option<String>, ConfigError> {
            if let Some(v) = env(var) {
                return Ok(Some(v));
            }
            if let Some(path) = env(&format!("{var}_FILE")) {
                let v = std::fs::read_to_string(&path)
                    .map_err(|e| ConfigError(format!("{var}_FILE: cannot read {path}: {e}")))?;
                return Ok(Some(v.trim().to_owned()));
            }
            Ok(from_file)
        };
        if let Some(v) = pick(
            "ALLOT_CA_FILE",
            f.ca_file.map(|p| p.to_string_lossy().into_owned()),
        )? {
            c.trust = allot_trust::Trust::from_ca_file(std::path::Path::new(v.trim()))
                .map_err(|e| ConfigError(format!("ALLOT_CA_FILE: {e}")))?;
        }
        if let Some(v) = pick("ALLOT_LISTEN", f.listen)? {
            c.listen = v.trim().parse().map_err(|_| {
                ConfigError(format!(
                    "ALLOT_LISTEN {v:?} is not an address like 127.0.0.1:8080"
                ))
            })?;
        }
        if let Some(v) = pick(
            "ALLOT_DATA_DIR",
            f.data_dir.map(|p| p.to_string_lossy().into_owned()),
        )? {
            if v.trim().is_empty() {
                return Err(ConfigError("ALLOT_DATA_DIR is empty".into()));
            }
            c.data_dir = PathBuf::from(v);
        }
        if let Some(v) = pick("ALLOT_DATABASE_URL", f.database_url)? {
            let v = v.trim().to_owned();
            if !(v.starts_with("postgres://")
                || v.starts_with("postgresql://")
                || v.starts_with("sqlite:"))
            {
                return Err(ConfigError(
                    "ALLOT_DATABASE_URL must start with postgres:// (or sqlite:)".into(),
                ));
            }
            c.database_url = Some(v);
        }
        if let Some(v) = pick("ALLOT_APPLE_URL", f.apple_url)? {
            let url = v.trim().to_owned();
            if !(url.starts_with("https://") || url.starts_with("http://")) {
                return Err(ConfigError(format!(
                    "ALLOT_APPLE_URL {url:?} is not an http(s) URL"
                )));
            }
            c.apple_url = url;
        }
        if let Some(v) = pick("ALLOT_PUBLIC_URL", f.public_url)? {
            let url = v.trim().trim_end_matches('/').to_owned();
            if !(url.starts_with("https://") || url.starts_with("http://")) {
                return Err(ConfigError(format!(
                    "ALLOT_PUBLIC_URL {url:?} is not an http(s) URL"
                )));
            }
            c.public_url = Some(url);
        }
        if let Some(v) = pick("ALLOT_ADMIN_API_KEY", f.admin_api_key)? {
            if v.trim().len() < 16 {
                return Err(ConfigError(
                    "ALLOT_ADMIN_API_KEY must be at least 16 characters".into(),
                ));
            }
            c.admin_api_key = Some(v.trim().to_owned());
        }
        if let Some(v) = pick("ALLOT_CONSOLE_ADMIN_PASSWORD", f.console_admin_password)? {
            if v.chars().count() < 12 {
                return Err(ConfigError(
                    "ALLOT_CONSOLE_ADMIN_PASSWORD must be at least 12 characters".into(),
                ));
            }
            c.console_admin_password = Some(v.trim_end_matches(['\r', '\n']).to_owned());
        }
        if let Some(v) = pick("ALLOT_SECRET_KEY", f.secret_key)? {
            allot_secrets::SecretBox::from_base64(&v)
                .map_err(|e| ConfigError(format!("ALLOT_SECRET_KEY: {e}")))?;
            c.secret_key = Some(v.trim().to_owned());
        }
        if let Some(v) = pick("ALLOT_MDM_WEBHOOK_HMAC_KEY", f.mdm_webhook_hmac_key)? {
            if v.trim().len() < 16 {
                return Err(ConfigError(
                    "ALLOT_MDM_WEBHOOK_HMAC_KEY must be at least 16 characters".into(),
                ));
            }
            c.mdm_webhook_hmac_key = Some(v.trim().to_owned());
        }
        if let Some(v) = pick("ALLOT_DM_HMAC_KEY", f.dm_hmac_key)? {
            if v.trim().len() < 16 {
                return Err(ConfigError(
                    "ALLOT_DM_HMAC_KEY must be at least 16 characters".into(),
                ));
            }
            c.dm_hmac_key = Some(v.trim().to_owned());
        }
        if let Some(v) = pick("ALLOT_DECLARATIVE", f.declarative.map(|b| b.to_string()))? {
            c.declarative = match v.trim().to_ascii_lowercase().as_str() {
                "true" | "1" | "yes" => true,
                "false" | "0" | "no" => false,
                _ => {
                    return Err(ConfigError(format!(
                        "ALLOT_DECLARATIVE {v:?} must be true or false"
                    )))
                }
            };
        }
        if let Some(v) = pick("ALLOT_NANOMDM_URL", f.nanomdm_url)? {
            let url = v.trim().trim_end_matches('/').to_owned();
            if !(url.starts_with("https://") || url.starts_with("http://")) {
                return Err(ConfigError(format!(
                    "ALLOT_NANOMDM_URL {url:?} is not an http(s) URL"
                )));
            }
            c.nanomdm_url = Some(url);
        }
        c.nanomdm_api_key =
            pick("ALLOT_NANOMDM_API_KEY", f.nanomdm_api_key)?.map(|k| k.trim().to_owned());
        if c.nanomdm_url.is_some() != c.nanomdm_api_key.is_some() {
            return Err(ConfigError(
                "ALLOT_NANOMDM_URL and ALLOT_NANOMDM_API_KEY go together".into(),
            ));
        }
        if let Some(v) = pick("ALLOT_NANOMDM_PREFIX", f.nanomdm_prefix)? {
            c.nanomdm_prefix = v.trim().trim_end_matches('/').to_owned();
        }
        if let Some(v) = pick("ALLOT_NANOMDM_USER", f.nanomdm_user)? {
            c.nanomdm_user = v.trim().to_owned();
        }
        let hours = |name: &str, v: String| -> Result<f64, ConfigError> {
            v.trim()
                .parse::<f64>()
                .ok()
                .filter(|h| h.is_finite() && *h > 0.0)
                .ok_or_else(|| ConfigError(format!("{name} {v:?} must be a positive number")))
        };
        if let Some(v) = pick(
            "ALLOT_DELTA_SYNC_HOURS",
            f.delta_sync_hours.map(|h| h.to_string()),
        )? {
            c.delta_interval =
                Duration::from_secs_f64(hours("ALLOT_DELTA_SYNC_HOURS", v)? * 3600.0);
        }
        if let Some(v) = pick(
            "ALLOT_FULL_SYNC_DAYS",
            f.full_sync_days.map(|d| d.to_string()),
        )? {
            c.full_interval = Duration::from_secs_f64(hours("ALLOT_FULL_SYNC_DAYS", v)? * 86400.0);
        }
        if let Some(v) = pick(
            "ALLOT_RECLAIM_GRACE_HOURS",
            f.reclaim_grace_hours.map(|h| h.to_string()),
        )? {
            let h = v
                .trim()
                .parse::<f64>()
                .ok()
                .filter(|h| h.is_finite() && *h >= 0.0);
            let h = h.ok_or_else(|| {
                ConfigError(format!(
                    "ALLOT_RECLAIM_GRACE_HOURS {v:?} must be a number of hours, 0 or more"
                ))
            })?;
            c.reclaim_grace = Duration::from_secs_f64(h * 3600.0);
        }
        if let Some(v) = pick(
            "ALLOT_ALERT_LOW_LICENSES",
            f.alert_low_licenses.map(|n| n.to_string()),
        )? {
            c.alert_low_licenses = v
                .trim()
                .parse::<i64>()
                .ok()
                .filter(|n| *n >= 0)
                .ok_or_else(|| {
                    ConfigError(format!(
                        "ALLOT_ALERT_LOW_LICENSES {v:?} must be a number of licenses, 0 or more"
                    ))
                })?;
        }
        if let Some(v) = pick("ALLOT_METRICS_TOKEN", f.metrics_token)? {
            if v.trim().chars().count() < 16 {
                return Err(ConfigError(
                    "ALLOT_METRICS_TOKEN must be at least 16 characters".into(),
                ));
            }
            c.metrics_token = Some(v.trim().to_owned());
        }
        let smtp_url = pick("ALLOT_SMTP_URL", f.smtp_url)?.map(|u| u.trim().to_owned());
        let smtp_from = pick("ALLOT_SMTP_FROM", f.smtp_from)?.map(|u| u.trim().to_owned());
        if let Some(url) = smtp_url {
            if !(url.starts_with("smtp://") || url.starts_with("smtps://")) {
                return Err(ConfigError(format!(
                    "ALLOT_SMTP_URL {:?} must start with smtps:// (TLS) or smtp:// (add ?tls=required for STARTTLS)",
                    redact_url(&url)
                )));
            }
            let from = smtp_from.ok_or_else(|| {
                ConfigError("ALLOT_SMTP_URL needs ALLOT_SMTP_FROM (the sender, e.g. Allot <allot@example.com>)".into())
            })?;
            c.smtp = Some(Smtp { url, from });
        }
        if let Some(v) = pick("ALLOT_ALERT_EMAIL", f.alert_email)? {
            c.alert_email = parse_alert_email(&v)
                .map_err(|e| ConfigError(format!("ALLOT_ALERT_EMAIL: {e}")))?;
            if !c.alert_email.is_empty() && c.smtp.is_none() {
                return Err(ConfigError(
                    "ALLOT_ALERT_EMAIL needs ALLOT_SMTP_URL and ALLOT_SMTP_FROM".into(),
                ));
            }
        }
        if let Some(v) = pick(
            "ALLOT_TRUST_FORWARDED_FOR",
            f.trust_forwarded_for.map(|b| b.to_string()),
        )? {
            c.trust_forwarded_for = match v.trim().to_ascii_lowercase().as_str() {
                "true" | "1" | "yes" => true,
                "false" | "0" | "no" => false,
                _ => {
                    return Err(ConfigError(format!(
                        "ALLOT_TRUST_FORWARDED_FOR {v:?} must be true or false"
                    )))
                }
            };
        }
        if let Some(v) = pick(
            "ALLOT_RECONCILE_SECONDS",
            f.reconcile_seconds.map(|s| s.to_string()),
        )? {
            c.deploy_tick = Duration::from_secs_f64(hours("ALLOT_RECONCILE_SECONDS", v)?);
        }
        if let Some(v) = pick(
            "ALLOT_SYNC_LEASE_SECONDS",
            f.sync_lease_seconds.map(|s| s.to_string()),
        )? {
            // A sync renews its lease every 20 pages; shorter leases could run out mid-walk.
            c.sync_lease = Duration::from_secs_f64(hours("ALLOT_SYNC_LEASE_SECONDS", v)?.max(10.0));
        }
        if let Some(v) = pick(
            "ALLOT_APP_LIST_HOURS",
            f.app_list_hours.map(|h| h.to_string()),
        )? {
            c.app_list_interval =
                Duration::from_secs_f64(hours("ALLOT_APP_LIST_HOURS", v)? * 3600.0);
        }
        if let Some(v) = pick(
            "ALLOT_DEVICE_INFO_HOURS",
            f.device_info_hours.map(|h| h.to_string()),
        )? {
            c.device_info_interval =
                Duration::from_secs_f64(hours("ALLOT_DEVICE_INFO_HOURS", v)? * 3600.0);
        }
        if let Some(v) = pick(
            "ALLOT_METADATA_MAX_AGE_HOURS",
            f.metadata_max_age_hours.map(|h| h.to_string()),
        )? {
            c.metadata_max_age =
                Duration::from_secs_f64(hours("ALLOT_METADATA_MAX_AGE_HOURS", v)? * 3600.0);
        }
        if let Some(v) = pick("ALLOT_METADATA_LANGUAGE", f.metadata_language)? {
            let tag = v.trim().to_ascii_lowercase();
            let valid = (2..=35).contains(&tag.len())
                && tag.split('-').all(|part| {
                    !part.is_empty()
                        && part.len() <= 8
                        && part.chars().all(|c| c.is_ascii_alphanumeric())
                });
            if !valid {
                return Err(ConfigError(format!(
                    "ALLOT_METADATA_LANGUAGE {v:?} must be a language tag such as en-us or fr-fr"
                )));
            }
            c.metadata_language = tag;
        }
        c.metadata_api = metadata_api(
            pick("ALLOT_METADATA_API_KEY_ID", f.metadata_api_key_id)?,
            pick("ALLOT_METADATA_API_TEAM_ID", f.metadata_api_team_id)?,
            pick("ALLOT_METADATA_API_KEY", f.metadata_api_key)?,
            pick("ALLOT_METADATA_API_URL", f.metadata_api_url)?,
            pick("ALLOT_METADATA_API_STOREFRONTS", f.metadata_api_storefronts)?,
        )?;
        Ok(c)
    }

    /// The database to open.
    pub fn database(&self) -> String {
        self.database_url.clone().unwrap_or_else(|| {
            self.data_dir
                .join("allot.db")
                .to_string_lossy()
                .into_owned()
        })
    }
}

/// The metadata API's settings: the key id, team id and key together or not at all.
fn metadata_api(
    key_id: Option<String>,
    team_id: Option<String>,
    key: Option<String>,
    url: Option<String>,
    storefronts: Option<String>,
) -> Result<Option<MetadataApi>, ConfigError> {
    let (key_id, team_id, key_pem) = match (key_id, team_id, key) {
        (None, None, None) => {
            if url.is_some() {
                return Err(ConfigError(
                    "ALLOT_METADATA_API_URL needs ALLOT_METADATA_API_KEY_ID, ALLOT_METADATA_API_TEAM_ID and ALLOT_METADATA_API_KEY(_FILE)".into(),
                ));
            }
            return Ok(None);
        }
        (Some(a), Some(b), Some(c)) => (a, b, c),
        _ => {
            return Err(ConfigError(
                "ALLOT_METADATA_API_KEY_ID, ALLOT_METADATA_API_TEAM_ID and ALLOT_METADATA_API_KEY (or _FILE, the .p8) go together".into(),
            ))
        }
    };
    let url = match url.map(|u| u.trim().trim_end_matches('/').to_owned()) {
        Some(u) if !(u.starts_with("https://") || u.starts_with("http://")) => {
            return Err(ConfigError(format!(
                "ALLOT_METADATA_API_URL {u:?} is not an http(s) URL"
            )))
        }
        other => other,
    };
    let storefronts = match storefronts {
        Some(list) => {
            let v: Vec<String> = list
                .split(',')
                .map(|s| s.trim().to_ascii_lowercase())
                .filter(|s| !s.is_empty())
                .collect();
            if v.is_empty()
                || v.iter()
                    .any(|s| s.len() != 2 || !s.chars().all(|c| c.is_ascii_alphabetic()))
            {
                return Err(ConfigError(format!(
                    "ALLOT_METADATA_API_STOREFRONTS {list:?} must be two-letter storefronts separated by commas, such as us,gb,de"
                )));
            }
            v
        }
        None => allot_apple_wire::catalog::FALLBACK_STOREFRONTS
            .map(String::from)
            .to_vec(),
    };
    let api = MetadataApi {
        key_id: key_id.trim().to_owned(),
        team_id: team_id.trim().to_owned(),
        key_pem,
        url,
        storefronts,
    };
    api.developer_key()
        .map_err(|e| ConfigError(format!("the metadata API's developer key: {e}")))?;
    Ok(Some(api))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let vars: Vec<(String, String)> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| vars.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone())
    }

    #[test]
    fn environment_overrides_file_overrides_defaults() {
        let dir = std::env::temp_dir().join(format!("allot-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("allot.toml");
        std::fs::write(&file, "listen = \"127.0.0.1:9000\"\napple_url = \"http://127.0.0.1:9100/mdm/v2/\"\ndelta_sync_hours = 6\n").unwrap();
        let c = Config::load(Some(&file), &env(&[("ALLOT_LISTEN", "0.0.0.0:8443")])).unwrap();
        assert_eq!(c.listen.to_string(), "0.0.0.0:8443");
        assert_eq!(c.apple_url, "http://127.0.0.1:9100/mdm/v2/");
        assert_eq!(c.delta_interval, Duration::from_secs(6 * 3600));
        assert_eq!(c.database(), "allot-data/allot.db");
        std::fs::write(dir.join("key"), "0123456789abcdef0123\n").unwrap();
        let c = Config::load(
            None,
            &env(&[(
                "ALLOT_ADMIN_API_KEY_FILE",
                dir.join("key").to_str().unwrap(),
            )]),
        )
        .unwrap();
        assert_eq!(c.admin_api_key.as_deref(), Some("0123456789abcdef0123"));
        std::fs::remove_dir_all(dir).ok();
    }

    #[test]
    fn bad_values_are_named() {
        let err = |vars: &[(&str, &str)]| Config::load(None, &env(vars)).unwrap_err().to_string();
        assert!(err(&[("ALLOT_LISTEN", "eighty")]).contains("ALLOT_LISTEN"));
        assert!(err(&[("ALLOT_DATABASE_URL", "mysql://x")]).contains("ALLOT_DATABASE_URL"));
        assert!(err(&[("ALLOT_APPLE_URL", "ftp://x")]).contains("ALLOT_APPLE_URL"));
        assert!(err(&[("ALLOT_ADMIN_API_KEY", "short")]).contains("ALLOT_ADMIN_API_KEY"));
        assert!(err(&[("ALLOT_CONSOLE_ADMIN_PASSWORD", "letmein")])
            .contains("ALLOT_CONSOLE_ADMIN_PASSWORD"));
        assert!(err(&[("ALLOT_SECRET_KEY", "abc")]).contains("ALLOT_SECRET_KEY"));
        assert!(err(&[("ALLOT_DELTA_SYNC_HOURS", "-1")]).contains("ALLOT_DELTA_SYNC_HOURS"));
        assert!(err(&[("ALLOT_RECLAIM_GRACE_HOURS", "soon")]).contains("ALLOT_RECLAIM_GRACE_HOURS"));
        assert!(
            err(&[("ALLOT_SMTP_URL", "smtp://mail.example:25")]).contains("needs ALLOT_SMTP_FROM")
        );
        assert!(err(&[
            ("ALLOT_SMTP_URL", "mail.example:25"),
            ("ALLOT_SMTP_FROM", "a@b.example")
        ])
        .contains("smtps://"));
        assert!(err(&[("ALLOT_ALERT_EMAIL", "*=ops@x.example")]).contains("needs ALLOT_SMTP_URL"));
        assert!(err(&[("ALLOT_ALERT_LOW_LICENSES", "few")]).contains("ALLOT_ALERT_LOW_LICENSES"));
        assert!(err(&[("ALLOT_METADATA_LANGUAGE", "en us")]).contains("ALLOT_METADATA_LANGUAGE"));
        assert!(err(&[("ALLOT_NANOMDM_URL", "http://mdm:9000")]).contains("go together"));
        assert!(err(&[("ALLOT_CA_FILE", "/nonexistent/corp-ca.pem")]).contains("corp-ca.pem"));
        assert!(err(&[("ALLOT_METADATA_API_KEY_ID", "ABC123DEFG")]).contains("go together"));
        assert!(err(&[
            ("ALLOT_METADATA_API_KEY_ID", "ABC123DEFG"),
            ("ALLOT_METADATA_API_TEAM_ID", "TEAM123456"),
            (
                "ALLOT_METADATA_API_KEY",
                "-----BEGIN PRIVATE KEY-----\nnope\n-----END PRIVATE KEY-----"
            ),
        ])
        .contains(".p8"));
        let dir = std::env::temp_dir().join(format!("allot-config-bad-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("a.toml"), "lisen = \"x\"").unwrap();
        let e = Config::load(Some(&dir.join("a.toml")), &env(&[]))
            .unwrap_err()
            .to_string();
        assert!(e.contains("lisen"), "{e}");
        std::fs::remove_dir_all(dir).ok();
    }

    #[test]
    fn database_passwords_are_not_shown() {
        assert_eq!(
            redact_url("postgres://allot:hunter2@db/allot"),
            "postgres://allot:…@db/allot"
        );
        let c = Config {
            database_url: Some("postgres://a:pw@h/d".into()),
            console_admin_password: Some("console-secret-1".into()),
            ..Default::default()
        };
        assert!(!format!("{c:?}").contains("pw"));
        assert!(!format!("{c:?}").contains("console-secret"));
    }
}
