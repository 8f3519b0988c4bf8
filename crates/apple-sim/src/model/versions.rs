//! `versionId`s: every write to a location moves it to a new sequence number. Each record keeps
//! the sequence of its last change, so "modified since version V" is `modified > seq(V)`.

use std::collections::HashMap;

#[derive(Debug, Clone)]
pub struct VersionLog {
    seq: u64,
    current: String,
    issued: HashMap<String, u64>,
}

impl VersionLog {
    pub fn new(uid: &str) -> Self {
        let mut log = Self {
            seq: 0,
            current: String::new(),
            issued: HashMap::new(),
        };
        log.current = version_id(uid, 0);
        log.issued.insert(log.current.clone(), 0);
        log
    }

    /// The sequence number of the data as it is now.
    pub fn seq(&self) -> u64 {
        self.seq
    }

    pub fn current(&self) -> &str {
        &self.current
    }

    /// Records a write and returns its sequence number.
    pub fn bump(&mut self, uid: &str) -> u64 {
        self.seq += 1;
        self.current = version_id(uid, self.seq);
        self.issued.insert(self.current.clone(), self.seq);
        self.seq
    }

    /// The sequence a `sinceVersionId` stands for, if this location ever issued it.
    pub fn resolve(&self, version_id: &str) -> Option<u64> {
        self.issued.get(version_id).copied()
    }
}

/// A time-based-UUID-looking id, unique per location and sequence. Clients must treat it as
/// opaque, so nothing in it is meant to be parsed.
fn version_id(uid: &str, seq: u64) -> String {
    use sha2::{Digest, Sha256};
    let h = Sha256::digest(format!("{uid}/{seq}").as_bytes());
    format!(
        "{:08x}-{:04x}-11eb-{:04x}-{:02x}{:02x}{:02x}{:02x}{:02x}{:02x}",
        u32::from_be_bytes([h[0], h[1], h[2], h[3]]),
        u16::from_be_bytes([h[4], h[5]]),
        0x8000 | (u16::from_be_bytes([h[6], h[7]]) & 0x3fff),
        h[8],
        h[9],
        h[10],
        h[11],
        h[12],
        h[13]
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_write_issues_a_new_resolvable_version() {
        let mut log = VersionLog::new("1");
        let v0 = log.current().to_owned();
        log.bump("1");
        let v1 = log.current().to_owned();
        assert_ne!(v0, v1);
        assert_eq!(log.resolve(&v0), Some(0));
        assert_eq!(log.resolve(&v1), Some(1));
        assert_eq!(log.resolve("70e8c740-514c-11eb-bb63-a90b882fcd52"), None);
        // Another location never accepts this location's versions.
        assert_ne!(VersionLog::new("2").current(), v0);
    }
}
