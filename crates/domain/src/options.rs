//! What a deployment asks of the devices beyond the license, and what happens to members that
//! leave its collection. The defaults are Intune's for store apps: the app goes with the MDM
//! profile, its data may be backed up, the user may delete it, an app the user installed is taken
//! over, and the store's updates are installed.

use serde::{Deserialize, Serialize};

/// InstallApplication's options (Apple's MDM protocol, `ManagementFlags`, `Attributes`,
/// `ChangeManagementState`), and automatic updates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct InstallOptions {
    /// `ManagementFlags` bit 1: the app is removed when the device leaves management.
    pub remove_on_unenroll: bool,
    /// `ManagementFlags` bit 4: the app's data is not backed up.
    pub prevent_backup: bool,
    /// `Attributes.Removable` (iOS 14+): whether the user may delete the app.
    pub removable: bool,
    /// `ChangeManagementState` `Managed`: an app the user already installed becomes managed
    /// (never sent to User Enrollment devices, which refuse it).
    pub take_over: bool,
    /// When the store has a newer version than a device reports, the install is sent again.
    pub auto_update: bool,
    /// Declarative app management on the devices that support it (iOS and iPadOS 17.2+, macOS
    /// 26+): a `com.apple.configuration.app.managed` declaration instead of InstallApplication.
    pub declarative: bool,
}

impl Default for InstallOptions {
    fn default() -> Self {
        Self {
            remove_on_unenroll: true,
            prevent_backup: false,
            removable: true,
            take_over: true,
            auto_update: true,
            declarative: false,
        }
    }
}

impl InstallOptions {
    /// The `ManagementFlags` integer: bit 1 and bit 4 as chosen (0, 1, 4 or 5).
    pub fn management_flags(&self) -> i64 {
        i64::from(self.remove_on_unenroll) | (i64::from(self.prevent_backup) << 2)
    }
}

/// What a deployment does to a member that leaves its collection (or to every target, when the
/// deployment is deleted).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OnLeave {
    /// Nothing: the license and the app stay (Intune's behaviour).
    #[default]
    Keep,
    /// The license goes back to Apple; the app stops working at its next check.
    Revoke,
    /// The app is removed from the device, then the license goes back.
    Uninstall,
}

impl OnLeave {
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s.trim().to_ascii_lowercase().as_str() {
            "keep" => Self::Keep,
            "revoke" => Self::Revoke,
            "uninstall" => Self::Uninstall,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Keep => "keep",
            Self::Revoke => "revoke",
            Self::Uninstall => "uninstall",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn management_flags_are_the_documented_integers() {
        let mut o = InstallOptions::default();
        assert_eq!(o.management_flags(), 1);
        o.prevent_backup = true;
        assert_eq!(o.management_flags(), 5);
        o.remove_on_unenroll = false;
        assert_eq!(o.management_flags(), 4);
        o.prevent_backup = false;
        assert_eq!(o.management_flags(), 0);
    }

    #[test]
    fn options_read_from_partial_json_keep_the_defaults() {
        let o: InstallOptions = serde_json::from_str(r#"{"preventBackup":true}"#).unwrap();
        assert!(o.prevent_backup && o.remove_on_unenroll && o.removable && o.auto_update);
        assert!(serde_json::from_str::<InstallOptions>(r#"{"nope":1}"#).is_err());
        assert_eq!(OnLeave::parse(" Revoke"), Some(OnLeave::Revoke));
        assert_eq!(OnLeave::parse("delete"), None);
    }
}
