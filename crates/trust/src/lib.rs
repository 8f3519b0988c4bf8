//! What Allot's outgoing HTTPS trusts. Every client that leaves the process (Apple's service, its
//! metadata API, NanoMDM, the simulator's notification sender) is built by [`Trust::client_builder`],
//! so none of them trusts less than the others:
//!
//! - the public roots compiled in (Mozilla's, through webpki-roots), as before;
//! - the platform's trust store (`/etc/ssl/certs` on Debian), where an organization that inspects
//!   TLS has usually installed its proxy's CA;
//! - the certificates of `ALLOT_CA_FILE` (PEM, one or more), for when it has not;
//! - the proxies named by `HTTPS_PROXY`, `HTTP_PROXY`, `ALL_PROXY` and `NO_PROXY` (reqwest reads
//!   them when a client is built).

use std::path::{Path, PathBuf};

#[cfg(feature = "testing")]
pub mod testing;

#[derive(Debug, thiserror::Error)]
pub enum TrustError {
    #[error("cannot read the CA file {path}: {reason}")]
    Unreadable { path: String, reason: String },
    #[error(
        "the CA file {path} holds no certificate: it needs one or more PEM blocks \
         beginning \"-----BEGIN CERTIFICATE-----\""
    )]
    NoCertificate { path: String },
    #[error("the CA file {path} holds a certificate that cannot be used: {reason}")]
    Invalid { path: String, reason: String },
}

/// The extra certificates, if any, and where they came from.
#[derive(Clone, Default)]
pub struct Trust {
    extra: Vec<reqwest::Certificate>,
    /// The same certificates as PEM text, for TLS clients other than reqwest (SMTP).
    pem: Vec<u8>,
    source: Option<PathBuf>,
}

impl std::fmt::Debug for Trust {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Trust")
            .field("ca_file", &self.source)
            .field("certificates", &self.extra.len())
            .finish()
    }
}

impl Trust {
    /// The built-in and the platform's roots only.
    pub fn system() -> Self {
        Self::default()
    }

    /// `None` is [`Trust::system`]; a path adds its certificates (checked now, so a bad file stops
    /// start-up with its name rather than failing every request later).
    pub fn from_optional_file(path: Option<&Path>) -> Result<Self, TrustError> {
        match path {
            Some(p) => Self::from_ca_file(p),
            None => Ok(Self::system()),
        }
    }

    pub fn from_ca_file(path: &Path) -> Result<Self, TrustError> {
        let shown = path.display().to_string();
        let pem = std::fs::read(path).map_err(|e| TrustError::Unreadable {
            path: shown.clone(),
            reason: e.to_string(),
        })?;
        let mut trust = Self::from_pem(&pem, &shown)?;
        trust.source = Some(path.to_owned());
        Ok(trust)
    }

    /// Certificates from PEM text; `label` names it in errors.
    pub fn from_pem(pem: &[u8], label: &str) -> Result<Self, TrustError> {
        let extra =
            reqwest::Certificate::from_pem_bundle(pem).map_err(|e| TrustError::Invalid {
                path: label.to_owned(),
                reason: e.to_string(),
            })?;
        if extra.is_empty() {
            return Err(TrustError::NoCertificate {
                path: label.to_owned(),
            });
        }
        let trust = Self {
            extra,
            pem: pem.to_vec(),
            source: None,
        };
        // A block that is PEM but not a certificate rustls accepts fails only when a client is
        // built: find it now.
        trust
            .client_builder()
            .build()
            .map_err(|e| TrustError::Invalid {
                path: label.to_owned(),
                reason: error_chain(&e),
            })?;
        Ok(trust)
    }

    /// How many certificates `ALLOT_CA_FILE` added.
    pub fn extra_certificates(&self) -> usize {
        self.extra.len()
    }

    pub fn ca_file(&self) -> Option<&Path> {
        self.source.as_deref()
    }

    /// The extra certificates as PEM (empty without `ALLOT_CA_FILE`), for the SMTP client.
    pub fn extra_pem(&self) -> &[u8] {
        &self.pem
    }

    /// A client builder that trusts all of the above and honours the proxy variables; callers add
    /// their timeouts and user agent.
    pub fn client_builder(&self) -> reqwest::ClientBuilder {
        let mut b = reqwest::Client::builder()
            .use_rustls_tls()
            .tls_built_in_webpki_certs(true)
            .tls_built_in_native_certs(true);
        for cert in &self.extra {
            b = b.add_root_certificate(cert.clone());
        }
        b
    }
}

/// An error with its causes, which is where reqwest says what was wrong with a certificate.
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}
