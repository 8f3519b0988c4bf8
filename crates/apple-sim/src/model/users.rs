//! Users of one location. A `clientUserId` may have several records: any number of Retired ones
//! and at most one active (Registered or Associated) one (spec §9.1).

use std::collections::HashMap;

use allot_apple_wire::{user_status, ResponseUser};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserRecord {
    pub client_user_id: String,
    pub email: Option<String>,
    pub invite_code: String,
    /// The Apple Account bound to this record (the simulator's stand-in for Apple's identity).
    pub apple_account: Option<String>,
    pub status: &'static str,
    pub modified: u64,
}

impl UserRecord {
    pub fn is_active(&self) -> bool {
        self.status == user_status::REGISTERED || self.status == user_status::ASSOCIATED
    }

    /// `idHash`: base64 of 20 bytes derived from the Apple Account, present once one is bound.
    pub fn id_hash(&self) -> Option<String> {
        self.apple_account.as_deref().map(id_hash)
    }

    pub fn to_response(&self) -> ResponseUser {
        ResponseUser {
            client_user_id: self.client_user_id.clone(),
            email: self.email.clone(),
            // Only while no Apple Account is bound (Apple's examples also show it later; the
            // simulator keeps to the documented rule).
            invite_code: (self.apple_account.is_none()).then(|| self.invite_code.clone()),
            id_hash: self.id_hash(),
            status: self.status.to_owned(),
        }
    }
}

pub fn id_hash(account: &str) -> String {
    use base64::Engine;
    use sha2::{Digest, Sha256};
    let d = Sha256::digest(account.to_lowercase().as_bytes());
    base64::engine::general_purpose::STANDARD.encode(&d[..20])
}

#[derive(Debug, Default, Clone)]
pub struct UserTable {
    records: Vec<UserRecord>,
    by_id: HashMap<String, Vec<u32>>,
}

impl UserTable {
    pub fn records(&self) -> &[UserRecord] {
        &self.records
    }

    pub fn get(&self, idx: u32) -> &UserRecord {
        &self.records[idx as usize]
    }

    pub fn get_mut(&mut self, idx: u32) -> &mut UserRecord {
        &mut self.records[idx as usize]
    }

    pub fn len(&self) -> usize {
        self.records.len()
    }

    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    /// All records of a `clientUserId`, oldest first.
    pub fn all_of(&self, client_user_id: &str) -> &[u32] {
        self.by_id.get(client_user_id).map_or(&[], Vec::as_slice)
    }

    /// The active record of a `clientUserId`.
    pub fn active(&self, client_user_id: &str) -> Option<u32> {
        self.all_of(client_user_id)
            .iter()
            .copied()
            .find(|&i| self.get(i).is_active())
    }

    /// The active record holding an Apple Account.
    pub fn holder_of_account(&self, account: &str) -> Option<u32> {
        let account = account.to_lowercase();
        self.records
            .iter()
            .position(|r| {
                r.is_active()
                    && r.apple_account.as_deref().map(str::to_lowercase) == Some(account.clone())
            })
            .map(|i| i as u32)
    }

    pub fn push(&mut self, record: UserRecord) -> u32 {
        let idx = self.records.len() as u32;
        self.by_id
            .entry(record.client_user_id.clone())
            .or_default()
            .push(idx);
        self.records.push(record);
        idx
    }
}
