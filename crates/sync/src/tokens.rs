//! A content token's life: added (decoded, checked with Apple, the location claimed unless another
//! MDM holds it), renewed with a new file for the same location, taken over, deleted.

use allot_apple_client::{AppleError, Bearer};
use allot_apple_wire::{
    codes, notification_type, ClientConfigRequest, ClientConfigResponse, ContentToken, MdmInfo,
    TokenError as DecodeError,
};
use allot_domain::{Claim, Program};
use allot_store::{NewToken, StoreError, TokenRow};

use crate::{now_ms, SyncEngine};

#[derive(Debug, Clone)]
pub struct AddToken {
    pub name: String,
    /// The text of the `.vpptoken` file.
    pub token_text: String,
    pub description: String,
    pub categories: Vec<String>,
    pub apple_account: String,
    pub program: Program,
}

/// Why a token operation failed, in words an administrator can act on.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("{0}")]
    Invalid(String),
    #[error("the file is not a content token: {0}")]
    Malformed(#[from] DecodeError),
    #[error("the content token expired on {0}: download a new one from Apple Business Manager or Apple School Manager")]
    Expired(String),
    #[error("a token named {0:?} exists already: choose another name")]
    DuplicateName(String),
    #[error("this location ({location}) is already managed here as token {existing:?}: renew that token instead of adding it again")]
    DuplicateLocation { location: String, existing: String },
    #[error("this file is the token of location {got}, not of {want}, the location of {name:?}: renew a token with the file of its own location")]
    WrongLocation {
        name: String,
        want: String,
        got: String,
    },
    #[error("Apple refused the token: {0}")]
    Rejected(AppleError),
    #[error("Apple could not be reached, try again shortly: {0}")]
    AppleUnavailable(AppleError),
    #[error("no token with id {0}")]
    NotFound(i64),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("a stored token cannot be decrypted: {0}")]
    Secret(#[from] allot_secrets::SecretError),
}

impl TokenError {
    fn from_apple(e: AppleError) -> Self {
        match e {
            AppleError::TokenExpired
            | AppleError::TokenRevoked
            | AppleError::NotAuthorized(_)
            | AppleError::Api(_) => TokenError::Rejected(e),
            other => TokenError::AppleUnavailable(other),
        }
    }
}

fn check_name(name: &str) -> Result<String, TokenError> {
    let name = name.trim();
    if name.is_empty() {
        return Err(TokenError::Invalid("a token needs a name".into()));
    }
    if name.chars().count() > 200 || name.chars().any(char::is_control) {
        return Err(TokenError::Invalid(
            "a token name is at most 200 printable characters".into(),
        ));
    }
    Ok(name.to_owned())
}

fn decode(text: &str) -> Result<ContentToken, TokenError> {
    if text.len() > 64 * 1024 {
        return Err(TokenError::Invalid(
            "a content token file is a few hundred bytes; this one is over 64 KiB".into(),
        ));
    }
    let token = ContentToken::parse(text)?;
    if token.expires_at().timestamp_millis() <= now_ms() {
        return Err(TokenError::Expired(token.exp_date.clone()));
    }
    Ok(token)
}

impl SyncEngine {
    /// Our identity on a location; `metadata` carries the sync serial, which tells a restored
    /// database (older serial) from a current one.
    pub(crate) fn mdm_info(&self, serial: i64) -> MdmInfo {
        let i = &self.inner.instance;
        MdmInfo {
            id: Some(i.id.clone()),
            name: Some(i.name.clone()),
            metadata: Some(format!("Allot {}; sync {serial}", i.version)),
        }
    }

    pub(crate) fn is_ours(&self, info: Option<&MdmInfo>) -> bool {
        info.is_none_or(|m| m.id.as_deref() == Some(self.inner.instance.id.as_str()))
    }

    /// Claims a location: our `mdmInfo`, and notifications when a public URL is configured. If
    /// Apple cannot reach the notification URL the claim is made without it (syncs still keep
    /// data current) and the reason is returned.
    pub(crate) async fn claim(
        &self,
        bearer: &Bearer,
        token_id: i64,
        serial: i64,
        notification_secret: Option<&str>,
    ) -> Result<Option<String>, AppleError> {
        let mut req = ClientConfigRequest {
            mdm_info: Some(self.mdm_info(serial)),
            ..Default::default()
        };
        if let (Some(url), Some(secret)) = (self.notification_url(token_id), notification_secret) {
            req.notification_url = Some(url);
            req.notification_auth_token = Some(secret.to_owned());
            req.notification_types = Some(
                [
                    notification_type::ASSET_MANAGEMENT,
                    notification_type::ASSET_COUNT,
                    notification_type::USER_MANAGEMENT,
                    notification_type::USER_ASSOCIATED,
                    notification_type::SUBSCRIPTION_COUNT,
                    notification_type::SUBSCRIPTION_MANAGEMENT,
                ]
                .map(String::from)
                .to_vec(),
            );
        }
        match self.inner.apple.set_client_config(bearer, &req).await {
            Ok(_) => Ok(None),
            Err(AppleError::Api(e))
                if req.notification_url.is_some() && notification_problem(&e) =>
            {
                let warning = format!(
                    "notifications are off: Apple cannot use the notification URL ({})",
                    e.error_message
                );
                let only_identity = ClientConfigRequest {
                    mdm_info: req.mdm_info,
                    ..Default::default()
                };
                self.inner
                    .apple
                    .set_client_config(bearer, &only_identity)
                    .await?;
                Ok(Some(warning))
            }
            Err(e) => Err(e),
        }
    }

    pub(crate) fn bearer(&self, t: &TokenRow) -> Result<Bearer, TokenError> {
        Ok(Bearer::new(&self.inner.secrets.open_string(&t.secret)?))
    }

    pub(crate) fn notification_secret(&self, t: &TokenRow) -> Option<String> {
        t.notification_secret
            .as_ref()
            .and_then(|s| self.inner.secrets.open_string(s).ok())
    }

    /// Adds a token. The caller starts its first (full) sync.
    pub async fn add_token(&self, req: AddToken) -> Result<TokenRow, TokenError> {
        let store = &self.inner.store;
        let name = check_name(&req.name)?;
        let token = decode(&req.token_text)?;
        if store.token_by_name(&name).await?.is_some() {
            return Err(TokenError::DuplicateName(name));
        }
        let bearer = Bearer::new(token.as_bearer());
        let config = self
            .inner
            .apple
            .client_config(&bearer)
            .await
            .map_err(TokenError::from_apple)?;
        let uid = config
            .u_id
            .clone()
            .ok_or_else(|| TokenError::Invalid("Apple's answer names no location (uId)".into()))?;
        if let Some(existing) = store.token_by_uid(&uid).await? {
            return Err(TokenError::DuplicateLocation {
                location: location_label(&config, &uid),
                existing: existing.name,
            });
        }
        let claim = if self.is_ours(config.mdm_info.as_ref()) {
            Claim::Ours
        } else {
            Claim::OtherMdm
        };
        let notification_secret = allot_secrets::random_token("");
        let row = store
            .insert_token(
                &NewToken {
                    name: name.clone(),
                    description: req.description.trim().to_owned(),
                    categories: req
                        .categories
                        .iter()
                        .map(|c| c.trim().to_owned())
                        .filter(|c| !c.is_empty())
                        .collect(),
                    apple_account: req.apple_account.trim().to_owned(),
                    program: req.program,
                    uid,
                    org_name: token.org_name.clone(),
                    location_name: config.location_name.clone().unwrap_or_default(),
                    country: config.country_iso2a_code.clone().unwrap_or_default(),
                    secret: self.inner.secrets.seal(token.as_bearer().as_bytes()),
                    notification_secret: Some(
                        self.inner.secrets.seal(notification_secret.as_bytes()),
                    ),
                    expires_at: token.expires_at().timestamp_millis(),
                    claim,
                    other_mdm: other_mdm_json(claim, &config),
                },
                now_ms(),
            )
            .await
            .map_err(|e| match e {
                StoreError::Conflict(_) => TokenError::DuplicateName(name.clone()),
                e => e.into(),
            })?;
        if claim == Claim::Ours {
            match self
                .claim(&bearer, row.id, 0, Some(&notification_secret))
                .await
            {
                Ok(warning) => {
                    store
                        .set_last_error(row.id, warning.as_deref(), now_ms())
                        .await?
                }
                Err(e) => {
                    store
                        .set_last_error(
                            row.id,
                            Some(&format!("claiming the location failed: {e}")),
                            now_ms(),
                        )
                        .await?
                }
            }
        }
        tracing::info!(token = row.id, name = %row.name, claim = claim.as_str(), "content token added");
        Ok(store.token(row.id).await?.unwrap_or(row))
    }

    /// Replaces a token's file with a newer one for the same location; all data stays.
    pub async fn renew_token(&self, id: i64, token_text: &str) -> Result<TokenRow, TokenError> {
        let store = &self.inner.store;
        let row = store.token(id).await?.ok_or(TokenError::NotFound(id))?;
        let token = decode(token_text)?;
        let bearer = Bearer::new(token.as_bearer());
        let config = self
            .inner
            .apple
            .client_config(&bearer)
            .await
            .map_err(TokenError::from_apple)?;
        let uid = config.u_id.clone().unwrap_or_default();
        if uid != row.uid {
            // Locations by name (with the uId, which tells two of one name apart).
            let want = if row.location_name.is_empty() {
                format!("uId {}", row.uid)
            } else {
                format!("{}, uId {}", row.location_name, row.uid)
            };
            return Err(TokenError::WrongLocation {
                name: row.name,
                want,
                got: location_label(&config, &uid),
            });
        }
        store
            .renew_token(
                id,
                &self.inner.secrets.seal(token.as_bearer().as_bytes()),
                token.expires_at().timestamp_millis(),
                &token.org_name,
                now_ms(),
            )
            .await?;
        let claim = if self.is_ours(config.mdm_info.as_ref()) {
            Claim::Ours
        } else {
            Claim::OtherMdm
        };
        store
            .set_claim(
                id,
                claim,
                other_mdm_json(claim, &config).as_deref(),
                now_ms(),
            )
            .await?;
        tracing::info!(token = id, "content token renewed");
        store.token(id).await?.ok_or(TokenError::NotFound(id))
    }

    /// Explicit take-over of a location another MDM holds: our `mdmInfo` replaces theirs.
    pub async fn take_over(&self, id: i64) -> Result<TokenRow, TokenError> {
        let store = &self.inner.store;
        let row = store.token(id).await?.ok_or(TokenError::NotFound(id))?;
        let bearer = self.bearer(&row)?;
        let secret = self.notification_secret(&row);
        let warning = self
            .claim(&bearer, id, row.sync_serial, secret.as_deref())
            .await
            .map_err(TokenError::from_apple)?;
        store.set_claim(id, Claim::Ours, None, now_ms()).await?;
        store
            .set_last_error(id, warning.as_deref(), now_ms())
            .await?;
        store.set_full_sync_wanted(id, true).await?;
        tracing::warn!(token = id, "location taken over from another MDM");
        store.token(id).await?.ok_or(TokenError::NotFound(id))
    }

    /// Deletes a token and everything synced from it. Apple is not told: the location stays
    /// as it is there, for another MDM (or this one, later) to manage.
    pub async fn delete_token(&self, id: i64) -> Result<(), TokenError> {
        if !self.inner.store.delete_token(id).await? {
            return Err(TokenError::NotFound(id));
        }
        tracing::info!(token = id, "content token deleted");
        Ok(())
    }
}

/// Errors about the notification settings, as opposed to the identity.
fn notification_problem(e: &allot_apple_wire::ErrorResponse) -> bool {
    matches!(
        e.error_number,
        codes::NOTIFICATION_URL_AND_TOKEN
            | codes::NOTIFICATION_TOO_LONG
            | codes::NOTIFICATION_URL_INVALID
            | codes::NOTIFICATION_URL_UNREACHABLE
    )
}

fn location_label(config: &ClientConfigResponse, uid: &str) -> String {
    match &config.location_name {
        Some(n) if !n.is_empty() => format!("{n}, uId {uid}"),
        _ => format!("uId {uid}"),
    }
}

pub(crate) fn other_mdm_json(claim: Claim, config: &ClientConfigResponse) -> Option<String> {
    (claim == Claim::OtherMdm).then(|| serde_json::to_string(&config.mdm_info).unwrap_or_default())
}
