//! One location (organizational unit / library): what it owns, who holds its licenses, who
//! manages it.

use std::collections::HashMap;

use allot_apple_wire::{
    AssetRef, Assignment, MdmInfo, ResponseAsset, UnlimitedResponseAsset, PRODUCT_BOOK,
    UNLIMITED_TOTAL,
};
use serde::{Deserialize, Serialize};

use super::{AssignmentStore, Holder, UserTable, VersionLog};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub enum Program {
    #[default]
    Business,
    Education,
}

impl Program {
    /// `defaultPlatform` of client config.
    pub fn default_platform(self) -> &'static str {
        match self {
            Program::Business => "enterprisestore",
            Program::Education => "volumestore",
        }
    }

    pub fn website_url(self) -> &'static str {
        match self {
            Program::Business => "https://business.apple.com",
            Program::Education => "https://school.apple.com",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct AssetRecord {
    pub adam_id: String,
    pub pricing_param: String,
    pub product_type: String,
    /// Licenses owned (ignored when `unlimited`).
    pub total: i64,
    pub assigned: i64,
    pub retired: i64,
    pub device_assignable: bool,
    pub revocable: bool,
    pub unlimited: bool,
    pub platforms: Vec<String>,
}

impl AssetRecord {
    pub fn available(&self) -> i64 {
        if self.unlimited {
            i64::from(UNLIMITED_TOTAL) - self.assigned
        } else {
            self.total - self.assigned
        }
    }

    pub fn is_book(&self) -> bool {
        self.product_type == PRODUCT_BOOK
    }

    pub fn key(&self) -> AssetRef {
        AssetRef::new(&self.adam_id, &self.pricing_param)
    }

    pub fn to_response(&self) -> ResponseAsset {
        let clamp = |v: i64| v.clamp(0, i64::from(i32::MAX)) as i32;
        ResponseAsset {
            adam_id: self.adam_id.clone(),
            pricing_param: self.pricing_param.clone(),
            product_type: self.product_type.clone(),
            assigned_count: clamp(self.assigned),
            available_count: clamp(self.available()),
            retired_count: clamp(self.retired),
            total_count: if self.unlimited {
                UNLIMITED_TOTAL
            } else {
                clamp(self.total)
            },
            device_assignable: self.device_assignable,
            revocable: self.revocable,
            supported_platforms: self.platforms.clone(),
        }
    }

    pub fn to_unlimited_response(&self) -> UnlimitedResponseAsset {
        UnlimitedResponseAsset {
            adam_id: self.adam_id.clone(),
            assigned_count: self.assigned.clamp(0, i64::from(i32::MAX)) as i32,
            device_assignable: self.device_assignable,
            pricing_param: self.pricing_param.clone(),
            product_type: self.product_type.clone(),
            revocable: self.revocable,
            supported_platforms: self.platforms.clone(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NotificationConfig {
    pub url: String,
    pub auth_token: String,
}

#[derive(Debug, Clone)]
pub struct Location {
    pub uid: String,
    pub name: String,
    pub org_name: String,
    pub program: Program,
    pub country: String,
    /// Managed Apple Accounts of this organization end with `@` + this domain.
    pub managed_domain: String,
    pub mdm_info: Option<MdmInfo>,
    pub notification: Option<NotificationConfig>,
    pub notification_types: Vec<String>,
    pub assets: Vec<AssetRecord>,
    asset_index: HashMap<(String, String), u32>,
    pub users: UserTable,
    serials: Vec<String>,
    serial_index: HashMap<String, u32>,
    pub assignments: AssignmentStore,
    pub versions: VersionLog,
    pub subscriptions: super::Subscriptions,
}

impl Location {
    pub fn new(
        uid: String,
        name: String,
        org_name: String,
        program: Program,
        country: String,
        domain: String,
    ) -> Self {
        let versions = VersionLog::new(&uid);
        Self {
            uid,
            name,
            org_name,
            program,
            country,
            managed_domain: domain,
            mdm_info: None,
            notification: None,
            notification_types: Vec::new(),
            assets: Vec::new(),
            asset_index: HashMap::new(),
            users: UserTable::default(),
            serials: Vec::new(),
            serial_index: HashMap::new(),
            assignments: AssignmentStore::default(),
            versions,
            subscriptions: super::Subscriptions::default(),
        }
    }

    pub fn asset_idx(&self, adam_id: &str, pricing: &str) -> Option<u32> {
        self.asset_index
            .get(&(adam_id.to_owned(), pricing.to_owned()))
            .copied()
    }

    /// Adds an asset, or returns the existing one's index.
    pub fn add_asset(&mut self, asset: AssetRecord) -> u32 {
        let key = (asset.adam_id.clone(), asset.pricing_param.clone());
        if let Some(&i) = self.asset_index.get(&key) {
            return i;
        }
        let idx = self.assets.len() as u32;
        self.assets.push(asset);
        self.asset_index.insert(key, idx);
        idx
    }

    pub fn serial_idx(&self, serial: &str) -> Option<u32> {
        self.serial_index.get(serial).copied()
    }

    pub fn intern_serial(&mut self, serial: &str) -> u32 {
        if let Some(&i) = self.serial_index.get(serial) {
            return i;
        }
        let idx = self.serials.len() as u32;
        self.serials.push(serial.to_owned());
        self.serial_index.insert(serial.to_owned(), idx);
        idx
    }

    pub fn serial(&self, idx: u32) -> &str {
        &self.serials[idx as usize]
    }

    /// Records a write: a new `versionId`. Returns the new sequence.
    pub fn write(&mut self) -> u64 {
        self.versions.bump(&self.uid)
    }

    /// Binds one license of `asset` to `holder`. `Ok(false)` when it was already bound
    /// (idempotent success, no count change); `Err(9709)` when none is free.
    pub fn assign(&mut self, asset: u32, holder: Holder, seq: u64) -> Result<bool, i32> {
        if self.assignments.contains(asset, holder) {
            return Ok(false);
        }
        let rec = &mut self.assets[asset as usize];
        if rec.available() <= 0 {
            return Err(allot_apple_wire::codes::NOT_ENOUGH_LICENSES);
        }
        rec.assigned += 1;
        self.assignments.insert(asset, holder, seq);
        Ok(true)
    }

    /// Frees the license `holder` has of `asset`; false if it had none.
    pub fn unassign(&mut self, asset: u32, holder: Holder) -> bool {
        if !self.assignments.remove(asset, holder) {
            return false;
        }
        self.assets[asset as usize].assigned -= 1;
        true
    }

    /// Frees every revocable license of `holder`, returning what was removed.
    pub fn revoke_holder(&mut self, holder: Holder) -> Vec<Assignment> {
        let assets = &self.assets;
        let removed = self
            .assignments
            .remove_where(|r| r.holder == holder && assets[r.asset as usize].revocable);
        for r in &removed {
            self.assets[r.asset as usize].assigned -= 1;
        }
        removed
            .iter()
            .map(|r| self.assignment_view(r.asset, r.holder, false))
            .collect()
    }

    /// The wire form of an assignment.
    pub fn assignment_view(
        &self,
        asset: u32,
        holder: Holder,
        include_user_state: bool,
    ) -> Assignment {
        let a = &self.assets[asset as usize];
        let mut out = Assignment {
            adam_id: a.adam_id.clone(),
            pricing_param: a.pricing_param.clone(),
            client_user_id: None,
            serial_number: None,
            user_status: None,
            id_hash: None,
        };
        match holder {
            Holder::User(u) => {
                let user = self.users.get(u);
                out.client_user_id = Some(user.client_user_id.clone());
                if include_user_state {
                    out.user_status = Some(user.status.to_owned());
                    out.id_hash = user.id_hash();
                }
            }
            Holder::Device(s) => out.serial_number = Some(self.serial(s).to_owned()),
        }
        out
    }

    /// Whether `account` is a Managed Apple Account of this location's organization.
    pub fn is_own_managed_account(&self, account: &str) -> bool {
        account
            .to_lowercase()
            .ends_with(&format!("@{}", self.managed_domain.to_lowercase()))
    }
}
