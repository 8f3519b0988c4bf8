//! MDM commands a license manager sends, as the XML plists NanoMDM hands to devices verbatim
//! (`shared/mdm/mdm-integration.md` §3, §4). Integers are `<integer>`, never strings.

use plist::{Dictionary, Value};

#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    /// A VPP app: `iTunesStoreID` + `Options.PurchaseMethod` 1. `managed_on_mac` adds
    /// `InstallAsManaged` (macOS needs it to install as managed); `management_flags` is Apple's
    /// bit set (1: removed with the MDM profile, 4: no backup of its data); `removable` is
    /// `Attributes.Removable` (iOS only); `take_over` adds `ChangeManagementState` `Managed`.
    InstallApplication {
        itunes_store_id: i64,
        managed_on_mac: bool,
        management_flags: i64,
        removable: Option<bool>,
        take_over: bool,
    },
    /// Removes a managed app by bundle id (the license is released separately, at Apple).
    RemoveApplication {
        identifier: String,
    },
    /// The Apps and Books invitation.
    InviteToProgram {
        invitation_url: String,
    },
    /// A store book.
    InstallMedia {
        itunes_store_id: i64,
    },
    RemoveMedia {
        itunes_store_id: i64,
    },
    /// Status of managed apps (optionally only these bundle ids).
    ManagedApplicationList {
        identifiers: Vec<String>,
    },
    /// The device's facts (`Queries`: `SerialNumber`, `ProductName`, `OSVersion`, …), to learn a
    /// device whose enrollment webhook was lost.
    DeviceInformation {
        queries: Vec<String>,
    },
    /// Tells a device its declarations changed: `Data` is the JSON of the new `SyncTokens`, so it
    /// fetches them now rather than at its next check-in.
    DeclarativeManagement {
        data: Vec<u8>,
    },
}

impl Command {
    /// A VPP install with the usual options: removed with the MDM profile, nothing else.
    pub fn install_app(itunes_store_id: i64) -> Self {
        Command::InstallApplication {
            itunes_store_id,
            managed_on_mac: false,
            management_flags: 1,
            removable: None,
            take_over: false,
        }
    }

    pub fn request_type(&self) -> &'static str {
        match self {
            Command::InstallApplication { .. } => "InstallApplication",
            Command::RemoveApplication { .. } => "RemoveApplication",
            Command::InviteToProgram { .. } => "InviteToProgram",
            Command::InstallMedia { .. } => "InstallMedia",
            Command::RemoveMedia { .. } => "RemoveMedia",
            Command::ManagedApplicationList { .. } => "ManagedApplicationList",
            Command::DeviceInformation { .. } => "DeviceInformation",
            Command::DeclarativeManagement { .. } => "DeclarativeManagement",
        }
    }

    fn keys(&self) -> Dictionary {
        let mut d = Dictionary::new();
        d.insert(
            "RequestType".into(),
            Value::String(self.request_type().into()),
        );
        match self {
            Command::InstallApplication {
                itunes_store_id,
                managed_on_mac,
                management_flags,
                removable,
                take_over,
            } => {
                d.insert(
                    "iTunesStoreID".into(),
                    Value::Integer((*itunes_store_id).into()),
                );
                let mut options = Dictionary::new();
                options.insert("PurchaseMethod".into(), Value::Integer(1.into()));
                d.insert("Options".into(), Value::Dictionary(options));
                d.insert(
                    "ManagementFlags".into(),
                    Value::Integer((*management_flags).into()),
                );
                if *managed_on_mac {
                    d.insert("InstallAsManaged".into(), Value::Boolean(true));
                }
                if *take_over {
                    d.insert(
                        "ChangeManagementState".into(),
                        Value::String("Managed".into()),
                    );
                }
                if let Some(removable) = removable {
                    let mut attributes = Dictionary::new();
                    attributes.insert("Removable".into(), Value::Boolean(*removable));
                    d.insert("Attributes".into(), Value::Dictionary(attributes));
                }
            }
            Command::RemoveApplication { identifier } => {
                d.insert("Identifier".into(), Value::String(identifier.clone()));
            }
            Command::InviteToProgram { invitation_url } => {
                d.insert(
                    "ProgramID".into(),
                    Value::String("com.apple.cloudvpp".into()),
                );
                d.insert(
                    "InvitationURL".into(),
                    Value::String(invitation_url.clone()),
                );
            }
            Command::InstallMedia { itunes_store_id } => {
                d.insert("MediaType".into(), Value::String("Book".into()));
                d.insert(
                    "iTunesStoreID".into(),
                    Value::Integer((*itunes_store_id).into()),
                );
            }
            Command::RemoveMedia { itunes_store_id } => {
                d.insert("MediaType".into(), Value::String("Book".into()));
                d.insert(
                    "iTunesStoreID".into(),
                    Value::Integer((*itunes_store_id).into()),
                );
            }
            Command::ManagedApplicationList { identifiers } => {
                if !identifiers.is_empty() {
                    d.insert(
                        "Identifiers".into(),
                        Value::Array(identifiers.iter().cloned().map(Value::String).collect()),
                    );
                }
            }
            Command::DeviceInformation { queries } => {
                d.insert(
                    "Queries".into(),
                    Value::Array(queries.iter().cloned().map(Value::String).collect()),
                );
            }
            Command::DeclarativeManagement { data } => {
                d.insert("Data".into(), Value::Data(data.clone()));
            }
        }
        d
    }

    /// The whole command plist: `CommandUUID` and `Command`, as XML starting with `<?xml`.
    pub fn to_plist(&self, command_uuid: &str) -> Vec<u8> {
        let mut top = Dictionary::new();
        top.insert("CommandUUID".into(), Value::String(command_uuid.into()));
        top.insert("Command".into(), Value::Dictionary(self.keys()));
        let mut out = Vec::new();
        plist::to_writer_xml(&mut out, &Value::Dictionary(top)).expect("writing a plist to memory");
        out
    }
}

/// Reads `CommandUUID` and `Command.RequestType` back from a command plist.
pub fn parse_command(bytes: &[u8]) -> Option<(String, String, Dictionary)> {
    let top = plist::from_bytes::<Value>(bytes).ok()?.into_dictionary()?;
    let uuid = top.get("CommandUUID")?.as_string()?.to_owned();
    let cmd = top.get("Command")?.as_dictionary()?.clone();
    let request_type = cmd.get("RequestType")?.as_string()?.to_owned();
    Some((uuid, request_type, cmd))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_vpp_install_as_the_device_expects_it() {
        let bytes = Command::install_app(1096834193).to_plist("uuid-1");
        let text = String::from_utf8(bytes.clone()).unwrap();
        assert!(
            text.starts_with("<?xml"),
            "NanoMDM's SQL backends require it"
        );
        assert!(
            text.contains("<key>iTunesStoreID</key>\n\t\t<integer>1096834193</integer>")
                || text.contains("<integer>1096834193</integer>")
        );
        let (uuid, kind, cmd) = parse_command(&bytes).unwrap();
        assert_eq!(
            (uuid.as_str(), kind.as_str()),
            ("uuid-1", "InstallApplication")
        );
        let options = cmd.get("Options").unwrap().as_dictionary().unwrap();
        assert_eq!(
            options.get("PurchaseMethod").unwrap().as_signed_integer(),
            Some(1)
        );
        assert!(cmd.get("InstallAsManaged").is_none());
        assert_eq!(
            cmd.get("ManagementFlags").unwrap().as_signed_integer(),
            Some(1)
        );
        assert!(cmd.get("ChangeManagementState").is_none() && cmd.get("Attributes").is_none());
        let mac = Command::InstallApplication {
            itunes_store_id: 1,
            managed_on_mac: true,
            management_flags: 5,
            removable: Some(false),
            take_over: true,
        }
        .to_plist("u");
        let (_, _, cmd) = parse_command(&mac).unwrap();
        assert_eq!(
            cmd.get("ManagementFlags").unwrap().as_signed_integer(),
            Some(5)
        );
        assert_eq!(
            cmd.get("ChangeManagementState").unwrap().as_string(),
            Some("Managed")
        );
        let attributes = cmd.get("Attributes").unwrap().as_dictionary().unwrap();
        assert_eq!(
            attributes.get("Removable").unwrap().as_boolean(),
            Some(false)
        );
        assert_eq!(
            parse_command(&mac)
                .unwrap()
                .2
                .get("InstallAsManaged")
                .unwrap()
                .as_boolean(),
            Some(true)
        );
    }

    #[test]
    fn the_other_commands() {
        let (_, kind, cmd) = parse_command(
            &Command::InviteToProgram {
                invitation_url: "https://x/?inviteCode=abc".into(),
            }
            .to_plist("u"),
        )
        .unwrap();
        assert_eq!(kind, "InviteToProgram");
        assert_eq!(
            cmd.get("ProgramID").unwrap().as_string(),
            Some("com.apple.cloudvpp")
        );
        let (_, _, cmd) =
            parse_command(&Command::InstallMedia { itunes_store_id: 7 }.to_plist("u")).unwrap();
        assert_eq!(
            (
                cmd.get("MediaType").unwrap().as_string(),
                cmd.get("iTunesStoreID").unwrap().as_signed_integer()
            ),
            (Some("Book"), Some(7))
        );
        let (_, _, cmd) = parse_command(
            &Command::RemoveApplication {
                identifier: "com.x".into(),
            }
            .to_plist("u"),
        )
        .unwrap();
        assert_eq!(cmd.get("Identifier").unwrap().as_string(), Some("com.x"));
        assert!(parse_command(b"not a plist").is_none());
    }
}
