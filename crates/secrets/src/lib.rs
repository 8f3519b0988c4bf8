//! Secrets at rest. Content tokens and notification secrets are encrypted with ChaCha20-Poly1305
//! under a 32-byte key kept outside the database (a key file, or configuration); API keys are
//! random and stored only as SHA-256 hashes. Nothing here logs a secret.

use std::path::{Path, PathBuf};

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use chacha20poly1305::aead::{Aead, AeadCore, KeyInit, OsRng};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use sha2::{Digest, Sha256};

#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("the secret key must be 32 bytes of base64 (44 characters); {0}")]
    BadKey(String),
    #[error("cannot read or write the key file {path}: {error}")]
    KeyFile { path: PathBuf, error: String },
    #[error(
        "a stored secret cannot be decrypted: it was written with another key, or it is damaged"
    )]
    Decrypt,
}

/// Format version of a sealed value: `1 || nonce (12) || ciphertext+tag`.
const VERSION: u8 = 1;

#[derive(Clone)]
pub struct SecretBox {
    cipher: ChaCha20Poly1305,
}

impl std::fmt::Debug for SecretBox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretBox(…)")
    }
}

impl SecretBox {
    /// A key given as base64 text (configuration or environment).
    pub fn from_base64(text: &str) -> Result<Self, SecretError> {
        let bytes = STANDARD
            .decode(text.trim())
            .map_err(|e| SecretError::BadKey(e.to_string()))?;
        if bytes.len() != 32 {
            return Err(SecretError::BadKey(format!(
                "this one has {} bytes",
                bytes.len()
            )));
        }
        Ok(Self {
            cipher: ChaCha20Poly1305::new(Key::from_slice(&bytes)),
        })
    }

    /// Reads the key file, or creates it (mode 0600) with a new random key. The bool says it was
    /// created, so the caller can tell the administrator to back it up.
    pub fn load_or_create(path: &Path) -> Result<(Self, bool), SecretError> {
        let io = |e: std::io::Error| SecretError::KeyFile {
            path: path.to_owned(),
            error: e.to_string(),
        };
        if path.exists() {
            let text = std::fs::read_to_string(path).map_err(io)?;
            return Ok((Self::from_base64(&text)?, false));
        }
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(io)?;
        }
        let key = ChaCha20Poly1305::generate_key(&mut OsRng);
        let text = STANDARD.encode(key);
        write_private(path, text.as_bytes()).map_err(io)?;
        Ok((
            Self {
                cipher: ChaCha20Poly1305::new(&key),
            },
            true,
        ))
    }

    pub fn seal(&self, plain: &[u8]) -> Vec<u8> {
        let nonce = ChaCha20Poly1305::generate_nonce(&mut OsRng);
        let sealed = self
            .cipher
            .encrypt(&nonce, plain)
            .expect("encryption in memory does not fail");
        let mut out = Vec::with_capacity(1 + nonce.len() + sealed.len());
        out.push(VERSION);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&sealed);
        out
    }

    pub fn open(&self, sealed: &[u8]) -> Result<Vec<u8>, SecretError> {
        if sealed.len() < 1 + 12 + 16 || sealed[0] != VERSION {
            return Err(SecretError::Decrypt);
        }
        let nonce = Nonce::from_slice(&sealed[1..13]);
        self.cipher
            .decrypt(nonce, &sealed[13..])
            .map_err(|_| SecretError::Decrypt)
    }

    pub fn open_string(&self, sealed: &[u8]) -> Result<String, SecretError> {
        String::from_utf8(self.open(sealed)?).map_err(|_| SecretError::Decrypt)
    }
}

#[cfg(unix)]
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(bytes)
}

#[cfg(not(unix))]
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    std::fs::write(path, bytes)
}

/// A new random secret as URL-safe text (API keys, notification secrets).
pub fn random_token(prefix: &str) -> String {
    let key = ChaCha20Poly1305::generate_key(&mut OsRng);
    format!("{prefix}{}", URL_SAFE_NO_PAD.encode(key))
}

/// The stored form of an API key. Keys are 256 random bits, so a plain hash suffices.
pub fn hash_api_key(key: &str) -> String {
    Sha256::digest(key.trim().as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The stored form of a console password: argon2id with a random salt, as a PHC string.
pub fn hash_password(password: &str) -> String {
    use argon2::password_hash::{PasswordHasher, SaltString};
    let salt_bytes = ChaCha20Poly1305::generate_key(&mut OsRng);
    let salt = SaltString::encode_b64(&salt_bytes[..16]).expect("16 bytes make a valid salt");
    argon2::Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .expect("argon2 with default parameters hashes any password")
        .to_string()
}

/// Whether `password` matches a stored hash (false for a hash that cannot be read).
pub fn verify_password(password: &str, stored: &str) -> bool {
    use argon2::password_hash::{PasswordHash, PasswordVerifier};
    PasswordHash::new(stored).is_ok_and(|h| {
        argon2::Argon2::default()
            .verify_password(password.as_bytes(), &h)
            .is_ok()
    })
}

/// Compares secrets in constant time.
pub fn same_secret(a: &[u8], b: &[u8]) -> bool {
    use subtle::ConstantTimeEq;
    a.len() == b.len() && bool::from(a.ct_eq(b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_salted_and_verified() {
        let a = hash_password("correct horse");
        let b = hash_password("correct horse");
        assert_ne!(a, b, "a random salt each time");
        assert!(a.starts_with("$argon2id$"));
        assert!(verify_password("correct horse", &a));
        assert!(!verify_password("correct hors", &a));
        assert!(!verify_password("correct horse", "not a hash"));
    }

    #[test]
    fn seal_and_open() {
        let dir = std::env::temp_dir().join(format!("allot-secrets-{}", std::process::id()));
        let path = dir.join("secret.key");
        let (b, created) = SecretBox::load_or_create(&path).unwrap();
        assert!(created);
        let sealed = b.seal(b"content token");
        assert_ne!(&sealed[13..], b"content token");
        let (again, created) = SecretBox::load_or_create(&path).unwrap();
        assert!(!created);
        assert_eq!(again.open(&sealed).unwrap(), b"content token");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(
                std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
                0o600
            );
        }
        let other = SecretBox::from_base64(&STANDARD.encode([7u8; 32])).unwrap();
        assert!(matches!(other.open(&sealed), Err(SecretError::Decrypt)));
        let mut damaged = sealed.clone();
        *damaged.last_mut().unwrap() ^= 1;
        assert!(b.open(&damaged).is_err());
        std::fs::remove_dir_all(dir).ok();
    }

    #[test]
    fn keys_and_hashes() {
        assert!(SecretBox::from_base64("short").is_err());
        let k = random_token("allot_");
        assert!(k.starts_with("allot_") && k.len() > 40);
        assert_ne!(random_token(""), random_token(""));
        assert_eq!(hash_api_key(&k), hash_api_key(&format!("{k}\n")));
        assert_eq!(hash_api_key("x").len(), 64);
        assert!(
            same_secret(b"abc", b"abc")
                && !same_secret(b"abc", b"abd")
                && !same_secret(b"ab", b"abc")
        );
    }
}
