//! The content token (`.vpptoken`): base64 of a small JSON document (spec §3.1).

use base64::Engine;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// A decoded content token. `raw` is the whole base64 text as downloaded: that, not the inner
/// `token` field, is what goes into `Authorization: Bearer …`.
#[derive(Clone, PartialEq)]
pub struct ContentToken {
    raw: String,
    pub token: String,
    pub exp_date: String,
    pub org_name: String,
    expires_at: DateTime<Utc>,
}

/// Never print the secret: `Debug` shows only the organisation and expiry.
impl std::fmt::Debug for ContentToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ContentToken")
            .field("org_name", &self.org_name)
            .field("exp_date", &self.exp_date)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TokenError {
    #[error("the token is empty")]
    Empty,
    #[error("the token is not base64 text; upload the .vpptoken file exactly as downloaded from Apple Business Manager or Apple School Manager")]
    NotBase64,
    #[error("the token decodes, but not to the JSON document a content token contains")]
    NotJson,
    #[error("the token has no `{0}` field")]
    MissingField(&'static str),
    #[error("the token's expDate `{0}` is not a date")]
    BadDate(String),
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct TokenJson {
    token: Option<String>,
    exp_date: Option<String>,
    org_name: Option<String>,
}

impl ContentToken {
    /// Decodes the text of a `.vpptoken` file. Surrounding whitespace (a trailing newline from an
    /// editor) is ignored; anything else malformed is an error naming what is wrong.
    pub fn parse(text: &str) -> Result<Self, TokenError> {
        let raw = text.trim();
        if raw.is_empty() {
            return Err(TokenError::Empty);
        }
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(raw)
            .map_err(|_| TokenError::NotBase64)?;
        let json: TokenJson = serde_json::from_slice(&bytes).map_err(|_| TokenError::NotJson)?;
        let token = json.token.ok_or(TokenError::MissingField("token"))?;
        let exp_date = json.exp_date.ok_or(TokenError::MissingField("expDate"))?;
        let org_name = json.org_name.ok_or(TokenError::MissingField("orgName"))?;
        let expires_at = crate::parse_apple_date(&exp_date)
            .ok_or_else(|| TokenError::BadDate(exp_date.clone()))?;
        Ok(Self {
            raw: raw.to_owned(),
            token,
            exp_date,
            org_name,
            expires_at,
        })
    }

    /// Builds a token the way Apple issues one (pretty-printed JSON, then base64).
    pub fn issue(token: &str, expires_at: DateTime<Utc>, org_name: &str) -> Self {
        let exp_date = crate::format_apple_date(expires_at);
        let json = serde_json::to_string_pretty(&TokenJson {
            token: Some(token.to_owned()),
            exp_date: Some(exp_date.clone()),
            org_name: Some(org_name.to_owned()),
        })
        .expect("plain strings serialise");
        let raw = base64::engine::general_purpose::STANDARD.encode(json);
        Self {
            raw,
            token: token.to_owned(),
            exp_date,
            org_name: org_name.to_owned(),
            expires_at,
        }
    }

    /// The whole base64 text: the bearer credential. Treat as a secret.
    pub fn as_bearer(&self) -> &str {
        &self.raw
    }

    pub fn expires_at(&self) -> DateTime<Utc> {
        self.expires_at
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const APPLE_EXAMPLE: &str = "ewogICAgInRva2VuIjogIlZGZHdRbVZWTVZSUldGSktVbGRTTlZkc1pHcGpNR3hIVTI1Q2FrMXRhRzlhUjJ3eldqRkdkVk50ZUd0VFJrWjZVMVZhVDJGSFRuUlNiVGxOVVRCS1ExcEdhRTlOUjBaWVRrUXdQUT09IiwKICAgICJleHBEYXRlIjogIjIwMzAtMTEtMDhUMjI6MzM6MjIrMDAwMCIsCiAgICAib3JnTmFtZSI6ICJPUkcxMjM0NSIKfQ==";

    #[test]
    fn decodes_apples_published_example() {
        let t = ContentToken::parse(&format!("{APPLE_EXAMPLE}\n")).unwrap();
        assert_eq!(t.org_name, "ORG12345");
        assert_eq!(t.exp_date, "2030-11-08T22:33:22+0000");
        assert!(t.token.starts_with("VFdwQmVVMVRRWFJKUldSNVdsZGpjMGxH"));
        assert_eq!(t.expires_at().to_rfc3339(), "2030-11-08T22:33:22+00:00");
        assert_eq!(t.as_bearer(), APPLE_EXAMPLE);
    }

    #[test]
    fn issue_round_trips() {
        let at = crate::parse_apple_date("2031-01-02T03:04:05+0000").unwrap();
        let t = ContentToken::issue("abc", at, "Springfield");
        let back = ContentToken::parse(t.as_bearer()).unwrap();
        assert_eq!(back, t);
    }

    #[test]
    fn malformed_tokens_name_the_problem() {
        assert_eq!(ContentToken::parse("  "), Err(TokenError::Empty));
        assert_eq!(
            ContentToken::parse("not base64!"),
            Err(TokenError::NotBase64)
        );
        assert_eq!(ContentToken::parse("aGVsbG8="), Err(TokenError::NotJson));
        use base64::Engine;
        let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
        assert_eq!(
            ContentToken::parse(&b64(r#"{"token":"x","orgName":"o"}"#)),
            Err(TokenError::MissingField("expDate"))
        );
        assert!(matches!(
            ContentToken::parse(&b64(r#"{"token":"x","orgName":"o","expDate":"soon"}"#)),
            Err(TokenError::BadDate(_))
        ));
    }

    #[test]
    fn debug_hides_the_secret() {
        let t = ContentToken::parse(APPLE_EXAMPLE).unwrap();
        let shown = format!("{t:?}");
        assert!(!shown.contains("VFdw"), "{shown}");
        assert!(!shown.contains(APPLE_EXAMPLE));
    }
}
