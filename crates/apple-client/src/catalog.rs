//! The metadata API for organizations (spec §18.2): what the compatibility checks and automatic
//! updates need (device families, minimum OS, the version's external id, the latest version),
//! asked for with a developer token — an ES256 JWT made here from the organization's Apple
//! developer key and renewed before it expires — and the location's content token as the `itvt`
//! cookie. Apps one region sells alone are looked for in the next storefront; Apple's 429s are
//! waited out.

use std::sync::Mutex;
use std::time::Duration;

use allot_apple_wire::catalog::{CatalogErrors, CatalogResource, CatalogResponse};
use base64::Engine;
use p256::ecdsa::signature::Signer;
use p256::ecdsa::{Signature, SigningKey};
use p256::pkcs8::DecodePrivateKey;

use crate::client::{parse_retry_after, Bearer};

/// Business locations' metadata API; education's is [`EDU_BASE_URL`].
pub const ENT_BASE_URL: &str = "https://api.ent.apple.com/v1";
pub const EDU_BASE_URL: &str = "https://api.edu.apple.com/v1";

/// A developer token lives this long and is renewed this long before it ends.
const TOKEN_LIFETIME_SECS: i64 = 3600;
const TOKEN_RENEW_BEFORE_SECS: i64 = 600;
/// Ids per request.
pub const CATALOG_BATCH: usize = 50;

/// The organization's (or the vendor's) Apple developer key: key id, team id and the `.p8`.
pub struct DeveloperKey {
    key_id: String,
    team_id: String,
    key: SigningKey,
}

impl std::fmt::Debug for DeveloperKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeveloperKey")
            .field("key_id", &self.key_id)
            .field("team_id", &self.team_id)
            .finish_non_exhaustive()
    }
}

impl DeveloperKey {
    /// `pem` is the `.p8` file Apple lets one download once ("-----BEGIN PRIVATE KEY-----").
    pub fn from_p8(key_id: &str, team_id: &str, pem: &str) -> Result<Self, String> {
        let key_id = key_id.trim();
        let team_id = team_id.trim();
        if key_id.is_empty() || !key_id.chars().all(|c| c.is_ascii_alphanumeric()) {
            return Err(format!(
                "the key id {key_id:?} is not an Apple key id (ten letters and digits, shown beside the key in the developer account)"
            ));
        }
        if team_id.is_empty() || !team_id.chars().all(|c| c.is_ascii_alphanumeric()) {
            return Err(format!(
                "the team id {team_id:?} is not an Apple team id (ten letters and digits)"
            ));
        }
        let key = SigningKey::from_pkcs8_pem(pem.trim()).map_err(|_| {
            "the key is not an Apple developer key: expected the .p8 file's PKCS#8 P-256 private key (\"-----BEGIN PRIVATE KEY-----\")".to_owned()
        })?;
        Ok(Self {
            key_id: key_id.to_owned(),
            team_id: team_id.to_owned(),
            key,
        })
    }

    pub fn key_id(&self) -> &str {
        &self.key_id
    }

    /// A developer token valid from `now` (Unix seconds) for `lifetime` seconds.
    pub fn token(&self, now: i64, lifetime: i64) -> String {
        let b64 = |v: &serde_json::Value| {
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .encode(serde_json::to_vec(v).expect("JSON"))
        };
        let header = b64(&serde_json::json!({ "alg": "ES256", "kid": self.key_id, "typ": "JWT" }));
        let claims =
            b64(&serde_json::json!({ "iss": self.team_id, "iat": now, "exp": now + lifetime }));
        let signing_input = format!("{header}.{claims}");
        let sig: Signature = self.key.sign(signing_input.as_bytes());
        let sig = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(sig.to_bytes());
        format!("{signing_input}.{sig}")
    }
}

#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum CatalogApiError {
    #[error("Apple's metadata API refused the developer token or the content token (HTTP 401{}): check the key id, team id and .p8 key of the metadata API, and that the location's token is current", detail_note(.0))]
    Unauthorized(String),
    #[error("Apple's metadata API kept asking to slow down (HTTP 429); it is tried again at the next sync")]
    RateLimited,
    #[error("Apple's metadata API answered HTTP {status}{}", detail_note(.detail))]
    Http { status: u16, detail: String },
    #[error("cannot reach Apple's metadata API: {0}")]
    Transport(String),
    #[error("Apple's metadata API's answer could not be read: {0}")]
    Decode(String),
}

fn detail_note(d: &str) -> String {
    if d.is_empty() {
        String::new()
    } else {
        format!(": {d}")
    }
}

/// A client of the metadata API: business locations are asked at [`ENT_BASE_URL`], education
/// ones at [`EDU_BASE_URL`], unless one URL is set for both.
pub struct CatalogClient {
    http: reqwest::Client,
    ent_url: String,
    edu_url: String,
    key: DeveloperKey,
    /// The current developer token and when it ends (Unix seconds).
    token: Mutex<Option<(String, i64)>>,
    /// Attempts of one request that Apple answers 429, and the first wait when it gives none.
    rate_attempts: u32,
    rate_backoff: Duration,
}

impl std::fmt::Debug for CatalogClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CatalogClient")
            .field("ent_url", &self.ent_url)
            .field("edu_url", &self.edu_url)
            .field("key", &self.key)
            .finish_non_exhaustive()
    }
}

impl CatalogClient {
    pub fn new(key: DeveloperKey, trust: &allot_trust::Trust) -> Self {
        let http = trust
            .client_builder()
            .timeout(Duration::from_secs(60))
            .user_agent(concat!("Allot/", env!("CARGO_PKG_VERSION")))
            .build()
            .expect("an HTTP client (its certificates were checked when loaded)");
        Self {
            http,
            ent_url: ENT_BASE_URL.to_owned(),
            edu_url: EDU_BASE_URL.to_owned(),
            key,
            token: Mutex::new(None),
            rate_attempts: 5,
            rate_backoff: Duration::from_secs(1),
        }
    }

    /// Shorter waits after a 429 without `Retry-After` (tests).
    pub fn with_rate_backoff(mut self, first: Duration) -> Self {
        self.rate_backoff = first;
        self
    }

    /// One base URL (`…/v1`) for business and education locations alike (`ALLOT_METADATA_API_URL`).
    pub fn with_base_url(mut self, url: &str) -> Self {
        self.ent_url = url.trim_end_matches('/').to_owned();
        self.edu_url = self.ent_url.clone();
        self
    }

    pub fn base_url(&self, education: bool) -> &str {
        if education {
            &self.edu_url
        } else {
            &self.ent_url
        }
    }

    /// The developer token, made again when it is within ten minutes of its end.
    fn developer_token(&self) -> String {
        let now = chrono::Utc::now().timestamp();
        let mut slot = self.token.lock().expect("token lock");
        match slot.as_ref() {
            Some((t, exp)) if *exp - TOKEN_RENEW_BEFORE_SECS > now => t.clone(),
            _ => {
                let t = self.key.token(now, TOKEN_LIFETIME_SECS);
                *slot = Some((t.clone(), now + TOKEN_LIFETIME_SECS));
                t
            }
        }
    }

    /// `GET /catalog/{storefront}/stoken-authenticated-apps` for up to [`CATALOG_BATCH`] ids, with
    /// every platform and the latest version. Ids the storefront does not sell are absent.
    pub async fn apps(
        &self,
        education: bool,
        token: &Bearer,
        storefront: &str,
        ids: &[String],
        language: &str,
    ) -> Result<Vec<CatalogResource>, CatalogApiError> {
        let q = serde_urlencoded::to_string([
            ("ids", ids.join(",").as_str()),
            ("platform", "iphone"),
            ("additionalPlatforms", "ipad,mac"),
            ("extend[apps]", "latestVersionInfo"),
            ("l", language),
        ])
        .unwrap_or_default();
        let url = format!(
            "{}/catalog/{}/stoken-authenticated-apps?{q}",
            self.base_url(education),
            storefront.to_lowercase()
        );
        let mut wait = self.rate_backoff;
        for attempt in 1..=self.rate_attempts {
            let res = self
                .http
                .get(&url)
                .bearer_auth(self.developer_token())
                .header(reqwest::header::COOKIE, format!("itvt={}", token.0))
                .send()
                .await
                .map_err(|e| CatalogApiError::Transport(allot_trust::error_chain(&e)))?;
            let status = res.status().as_u16();
            let retry_after = res
                .headers()
                .get(reqwest::header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(parse_retry_after);
            let body = res
                .bytes()
                .await
                .map_err(|e| CatalogApiError::Transport(e.to_string()))?;
            match status {
                200 => {
                    return serde_json::from_slice::<CatalogResponse>(&body)
                        .map(|r| r.data)
                        .map_err(|e| CatalogApiError::Decode(e.to_string()))
                }
                429 if attempt < self.rate_attempts => {
                    let pause = retry_after.unwrap_or(wait).min(Duration::from_secs(60));
                    tracing::debug!(storefront, ?pause, "metadata API rate limit");
                    tokio::time::sleep(pause).await;
                    wait = (wait * 2).min(Duration::from_secs(30));
                }
                429 => return Err(CatalogApiError::RateLimited),
                401 | 403 => return Err(CatalogApiError::Unauthorized(error_detail(&body))),
                // A storefront that does not exist or has none of the ids.
                404 => return Ok(Vec::new()),
                _ => {
                    return Err(CatalogApiError::Http {
                        status,
                        detail: error_detail(&body),
                    })
                }
            }
        }
        Err(CatalogApiError::RateLimited)
    }

    /// The ids looked for in each storefront in turn until all are found: an app sold in one
    /// region only is found in that region's storefront. Returns what was found, with the
    /// storefront that answered.
    pub async fn apps_anywhere(
        &self,
        education: bool,
        token: &Bearer,
        storefronts: &[String],
        ids: &[String],
        language: &str,
    ) -> Result<Vec<(String, CatalogResource)>, CatalogApiError> {
        let mut missing: Vec<String> = ids.to_vec();
        let mut found = Vec::new();
        for storefront in storefronts {
            if missing.is_empty() {
                break;
            }
            let mut got = Vec::new();
            for chunk in missing.chunks(CATALOG_BATCH) {
                got.extend(
                    self.apps(education, token, storefront, chunk, language)
                        .await?,
                );
            }
            missing.retain(|id| !got.iter().any(|r| &r.id == id));
            found.extend(got.into_iter().map(|r| (storefront.clone(), r)));
        }
        Ok(found)
    }
}

/// The first error's words from a JSON:API error body, if it is one.
fn error_detail(body: &[u8]) -> String {
    serde_json::from_slice::<CatalogErrors>(body)
        .ok()
        .and_then(|e| e.errors.into_iter().next())
        .map(|e| e.detail.unwrap_or(e.title))
        .unwrap_or_default()
        .chars()
        .take(300)
        .collect()
}

/// The storefronts to try for a location in `country`: its own, then Apple's usual fallbacks.
pub fn storefronts_for(country: &str, fallbacks: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let own = country.trim().to_lowercase();
    for s in std::iter::once(own).chain(fallbacks.iter().map(|s| s.trim().to_lowercase())) {
        if !s.is_empty() && !out.contains(&s) {
            out.push(s);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use p256::ecdsa::signature::Verifier;
    use p256::ecdsa::VerifyingKey;
    use p256::pkcs8::{EncodePrivateKey, LineEnding};

    fn key() -> DeveloperKey {
        let sk = SigningKey::from_bytes(&[7u8; 32].into()).unwrap();
        let pem = sk.to_pkcs8_pem(LineEnding::LF).unwrap();
        DeveloperKey::from_p8("ABC123DEFG", "TEAM123456", &pem).unwrap()
    }

    #[test]
    fn the_developer_token_is_an_es256_jwt_apple_can_verify() {
        let k = key();
        let t = k.token(1_700_000_000, 3600);
        let parts: Vec<&str> = t.split('.').collect();
        assert_eq!(parts.len(), 3);
        let dec = |s: &str| {
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(s)
                .unwrap()
        };
        let header: serde_json::Value = serde_json::from_slice(&dec(parts[0])).unwrap();
        let claims: serde_json::Value = serde_json::from_slice(&dec(parts[1])).unwrap();
        assert_eq!(header["alg"], "ES256");
        assert_eq!(header["kid"], "ABC123DEFG");
        assert_eq!(claims["iss"], "TEAM123456");
        assert_eq!(claims["exp"], 1_700_003_600);
        let sig = Signature::from_slice(&dec(parts[2])).unwrap();
        let vk = VerifyingKey::from(&k.key);
        vk.verify(format!("{}.{}", parts[0], parts[1]).as_bytes(), &sig)
            .unwrap();
    }

    #[test]
    fn bad_keys_are_refused_in_words() {
        let e = DeveloperKey::from_p8("ABC123DEFG", "TEAM123456", "not a key").unwrap_err();
        assert!(e.contains(".p8"), "{e}");
        assert!(DeveloperKey::from_p8("", "TEAM123456", "x")
            .unwrap_err()
            .contains("key id"));
        assert!(DeveloperKey::from_p8("ABC", "a b", "x")
            .unwrap_err()
            .contains("team id"));
    }

    #[test]
    fn the_locations_storefront_comes_first_without_repeats() {
        let fb: Vec<String> = ["us", "gb", "de"].map(String::from).to_vec();
        assert_eq!(storefronts_for("GB", &fb), vec!["gb", "us", "de"]);
        assert_eq!(storefronts_for("", &fb), vec!["us", "gb", "de"]);
    }
}
