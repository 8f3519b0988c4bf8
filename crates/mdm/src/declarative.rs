//! Declarative app management, Allot's side of Apple's declarations protocol (the endpoints a
//! device reaches through NanoMDM's `-dm` forwarding): the declarations a device gets — an
//! activation, a status subscription to `app.managed.list`, and one
//! `com.apple.configuration.app.managed` per app its intents want there — with their server
//! tokens and the declarations token, and the status reports it sends back.

use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};

pub const ACTIVATION: &str = "allot.activation";
pub const SUBSCRIPTIONS: &str = "allot.status-subscriptions";
/// Configurations of apps are `allot.app.<adamId>`.
const APP_PREFIX: &str = "allot.app.";

/// One app a device should have, as its effective intent says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppDeclaration {
    pub adam_id: String,
    /// Required (installed and kept) or Optional (the user installs it from the self-service app).
    pub required: bool,
    /// The license the device holds for it: a device license (`Device`) or the user's (`User`).
    pub device_license: bool,
    pub auto_update: bool,
    pub include_in_backup: bool,
}

impl AppDeclaration {
    fn payload(&self) -> Value {
        json!({
            "AppStoreID": self.adam_id,
            "InstallBehavior": {
                "Install": if self.required { "Required" } else { "Optional" },
                "License": { "Assignment": if self.device_license { "Device" } else { "User" } },
            },
            "UpdateBehavior": {
                "AutomaticAppUpdates": if self.auto_update { "AlwaysOn" } else { "AlwaysOff" },
            },
            "IncludeInBackup": self.include_in_backup,
        })
    }
}

/// A declaration as served: `declaration/{kind}/{identifier}`.
#[derive(Debug, Clone, PartialEq)]
pub struct Declaration {
    /// `activation` or `configuration`: the path segment and the items list it goes in.
    pub kind: &'static str,
    pub identifier: String,
    pub server_token: String,
    body: Value,
}

impl Declaration {
    fn new(kind: &'static str, declaration_type: &str, identifier: String, payload: Value) -> Self {
        // The server token covers the whole content, so it changes whenever anything does.
        let content =
            json!({ "Type": declaration_type, "Identifier": identifier, "Payload": payload });
        let server_token = hex(&Sha256::digest(content.to_string().as_bytes()))[..32].to_owned();
        let mut body = content;
        body["ServerToken"] = Value::String(server_token.clone());
        Self {
            kind,
            identifier,
            server_token,
            body,
        }
    }

    pub fn to_json(&self) -> &Value {
        &self.body
    }
}

/// Everything declared to one device, and its declarations token.
#[derive(Debug, Clone, PartialEq)]
pub struct Declarations {
    pub items: Vec<Declaration>,
    pub token: String,
}

impl Declarations {
    /// The set for these apps (none: the activation and the status subscription alone, so the
    /// device still reports, and drops any app declared before).
    pub fn for_apps(apps: &[AppDeclaration]) -> Self {
        let mut items = vec![Declaration::new(
            "configuration",
            "com.apple.configuration.management.status-subscriptions",
            SUBSCRIPTIONS.into(),
            json!({ "StatusItems": [ { "Name": "app.managed.list" } ] }),
        )];
        for a in apps {
            items.push(Declaration::new(
                "configuration",
                "com.apple.configuration.app.managed",
                format!("{APP_PREFIX}{}", a.adam_id),
                a.payload(),
            ));
        }
        let configurations: Vec<String> = items.iter().map(|d| d.identifier.clone()).collect();
        items.push(Declaration::new(
            "activation",
            "com.apple.activation.simple",
            ACTIVATION.into(),
            json!({ "StandardConfigurations": configurations }),
        ));
        let mut h = Sha256::new();
        for d in &items {
            h.update(d.identifier.as_bytes());
            h.update(b"=");
            h.update(d.server_token.as_bytes());
            h.update(b";");
        }
        let token = hex(&h.finalize())[..32].to_owned();
        Self { items, token }
    }

    /// `tokens`: `SyncTokens` with the declarations token.
    pub fn tokens_json(&self, timestamp: &str) -> Value {
        json!({ "SyncTokens": { "DeclarationsToken": self.token, "Timestamp": timestamp } })
    }

    /// `declaration-items`: every declaration's identifier and server token, by kind.
    pub fn items_json(&self) -> Value {
        let list = |kind: &str| -> Vec<Value> {
            self.items
                .iter()
                .filter(|d| d.kind == kind)
                .map(|d| json!({ "Identifier": d.identifier, "ServerToken": d.server_token }))
                .collect()
        };
        json!({
            "Declarations": {
                "Activations": list("activation"),
                "Configurations": list("configuration"),
                "Assets": [],
                "Management": [],
            },
            "DeclarationsToken": self.token,
        })
    }

    /// `declaration/{kind}/{identifier}`.
    pub fn get(&self, kind: &str, identifier: &str) -> Option<&Declaration> {
        self.items
            .iter()
            .find(|d| d.kind == kind && d.identifier == identifier)
    }
}

/// The adamId a declaration identifier names, if it is one of Allot's app configurations.
pub fn adam_of(declaration_identifier: &str) -> Option<&str> {
    declaration_identifier
        .strip_prefix(APP_PREFIX)
        .filter(|a| !a.is_empty() && a.bytes().all(|b| b.is_ascii_digit()))
}

/// What a status report says of one declared app (`app.managed.list`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppStatus {
    /// The bundle id.
    pub identifier: String,
    pub removed: bool,
    pub declaration_identifier: Option<String>,
    /// `queued`, `downloading`, `installing`, `managed`, `managed-but-uninstalled`, `failed`, …
    pub state: Option<String>,
    /// Apple's reason codes with their descriptions.
    pub reasons: Vec<(String, Option<String>)>,
    /// The store version installed (`external-version-id`), where the device said.
    pub external_version_id: Option<i64>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum StatusError {
    #[error("the status report is not JSON: {0}")]
    NotJson(String),
    #[error("the status report has no StatusItems")]
    NoStatusItems,
    #[error("app.managed.list: {0}")]
    BadList(String),
}

/// At most this many apps in one report: a device has far fewer; more is not a device talking.
const MAX_APPS: usize = 10_000;

/// Reads a status report; `None` when it says nothing of `app.managed.list` (other items only).
pub fn parse_status(body: &[u8]) -> Result<Option<Vec<AppStatus>>, StatusError> {
    let v: Value = serde_json::from_slice(body).map_err(|e| StatusError::NotJson(e.to_string()))?;
    let items = v.get("StatusItems").ok_or(StatusError::NoStatusItems)?;
    // Status item names are dotted paths, sent as nested dictionaries; a flat key is read too.
    let list = items
        .get("app")
        .and_then(|a| a.get("managed"))
        .and_then(|m| m.get("list"))
        .or_else(|| items.get("app.managed.list"));
    let Some(list) = list else {
        return Ok(None);
    };
    let list = list
        .as_array()
        .ok_or_else(|| StatusError::BadList("not an array".into()))?;
    if list.len() > MAX_APPS {
        return Err(StatusError::BadList(format!(
            "{} apps is more than {MAX_APPS}",
            list.len()
        )));
    }
    list.iter()
        .map(app_status)
        .collect::<Result<_, _>>()
        .map(Some)
}

fn app_status(item: &Value) -> Result<AppStatus, StatusError> {
    let o = item
        .as_object()
        .ok_or_else(|| StatusError::BadList("an item is not a dictionary".into()))?;
    let identifier = text(o, "identifier", 255)
        .ok_or_else(|| StatusError::BadList("an item has no identifier".into()))?;
    let reasons = o
        .get("reasons")
        .and_then(Value::as_array)
        .map(|rs| {
            rs.iter()
                .take(20)
                .filter_map(Value::as_object)
                .filter_map(|r| Some((text(r, "code", 100)?, text(r, "description", 500))))
                .collect()
        })
        .unwrap_or_default();
    Ok(AppStatus {
        identifier,
        removed: o.get("_removed").and_then(Value::as_bool).unwrap_or(false),
        declaration_identifier: text(o, "declaration-identifier", 255),
        state: text(o, "state", 64),
        reasons,
        // A number; some reports carry it as a numeric string.
        external_version_id: o.get("external-version-id").and_then(|v| {
            v.as_i64()
                .or_else(|| v.as_str().and_then(|s| s.trim().parse().ok()))
        }),
    })
}

/// A string the device chose: printable, bounded.
fn text(o: &Map<String, Value>, key: &str, max: usize) -> Option<String> {
    let s = o.get(key)?.as_str()?;
    let s: String = s.chars().filter(|c| !c.is_control()).take(max).collect();
    (!s.trim().is_empty()).then(|| s.trim().to_owned())
}

/// Apple's reason codes for app.managed.list, in words an administrator can act on.
pub fn reason_words(code: &str, description: Option<&str>) -> String {
    let words = match code {
        "Error.LicenseNotFound" => "a license for the app was not available to the device",
        "Error.AppStoreDisabled" => "the App Store is disabled on the device",
        "Error.DownloadFailed" => "the download failed",
        "Error.InstallFailed" => "the install failed",
        "Error.DuplicateConfiguredApp" => "another declaration already manages the app",
        "Error.InvalidAppID" => "the App Store could not find the app",
        "Error.NotSupported" => "the app is not supported on this device",
        "Error.UnmanagedAppAlreadyInstalled" => {
            "an unmanaged copy of the app is installed and cannot be taken over"
        }
        "Error.UserRejected" => "the user rejected management of the app",
        "Error.UpdateFailed" => "the update failed",
        "Error.NotAnApp" => "the download is not a valid app",
        "Error.IsSystemApp" => "it is a system app, which cannot be managed",
        "Error.InvalidCodeSignature" => "its code signature does not match",
        _ => "",
    };
    match (words.is_empty(), description) {
        (false, _) => format!("{words} ({code})"),
        (true, Some(d)) => format!("{d} ({code})"),
        (true, None) => code.to_owned(),
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn app(adam: &str) -> AppDeclaration {
        AppDeclaration {
            adam_id: adam.into(),
            required: true,
            device_license: true,
            auto_update: true,
            include_in_backup: true,
        }
    }

    #[test]
    fn declarations_and_tokens_follow_their_content() {
        let none = Declarations::for_apps(&[]);
        let one = Declarations::for_apps(&[app("777")]);
        assert_ne!(none.token, one.token);
        assert_eq!(
            one.token,
            Declarations::for_apps(&[app("777")]).token,
            "stable"
        );
        let config = one.get("configuration", "allot.app.777").unwrap().to_json();
        assert_eq!(config["Type"], "com.apple.configuration.app.managed");
        assert_eq!(config["Payload"]["AppStoreID"], "777");
        assert_eq!(config["Payload"]["InstallBehavior"]["Install"], "Required");
        assert_eq!(
            config["Payload"]["InstallBehavior"]["License"]["Assignment"],
            "Device"
        );
        let activation = one.get("activation", ACTIVATION).unwrap().to_json();
        assert_eq!(
            activation["Payload"]["StandardConfigurations"],
            json!([SUBSCRIPTIONS, "allot.app.777"])
        );
        let items = one.items_json();
        assert_eq!(items["DeclarationsToken"], one.token.as_str());
        assert_eq!(
            items["Declarations"]["Configurations"]
                .as_array()
                .unwrap()
                .len(),
            2
        );
        // A changed option changes that declaration's server token and the set's token.
        let mut manual = app("777");
        manual.auto_update = false;
        let changed = Declarations::for_apps(&[manual]);
        assert_ne!(
            changed
                .get("configuration", "allot.app.777")
                .unwrap()
                .server_token,
            one.get("configuration", "allot.app.777")
                .unwrap()
                .server_token
        );
        assert_ne!(changed.token, one.token);
        assert_eq!(adam_of("allot.app.777"), Some("777"));
        assert_eq!(adam_of("allot.app.x"), None);
    }

    #[test]
    fn status_reports_are_read_nested_or_flat_and_bounded() {
        let nested = br#"{"StatusItems":{"app":{"managed":{"list":[
            {"identifier":"com.example.chat","state":"failed","declaration-identifier":"allot.app.777",
             "reasons":[{"code":"Error.LicenseNotFound","description":"License not found"}]},
            {"identifier":"com.example.game","_removed":true}]}}},"Errors":[]}"#;
        let apps = parse_status(nested).unwrap().unwrap();
        assert_eq!(apps.len(), 2);
        assert_eq!(apps[0].state.as_deref(), Some("failed"));
        assert_eq!(apps[0].reasons[0].0, "Error.LicenseNotFound");
        assert!(apps[1].removed);
        assert_eq!(apps[0].external_version_id, None);
        let flat = br#"{"StatusItems":{"app.managed.list":[{"identifier":"a","state":"managed","external-version-id":871},
            {"identifier":"b","state":"managed","external-version-id":"872"}]},"Errors":[]}"#;
        let flat = parse_status(flat).unwrap().unwrap();
        assert_eq!(flat[0].state.as_deref(), Some("managed"));
        assert_eq!(
            (flat[0].external_version_id, flat[1].external_version_id),
            (Some(871), Some(872))
        );
        let other = br#"{"StatusItems":{"device":{"identifier":{"udid":"X"}}},"Errors":[]}"#;
        assert_eq!(parse_status(other).unwrap(), None);
        assert!(parse_status(b"not json").is_err());
        assert!(parse_status(br#"{"Errors":[]}"#).is_err());
        assert!(parse_status(
            br#"{"StatusItems":{"app":{"managed":{"list":[{"state":"managed"}]}}}}"#
        )
        .is_err());
        assert_eq!(
            reason_words("Error.LicenseNotFound", None),
            "a license for the app was not available to the device (Error.LicenseNotFound)"
        );
        assert_eq!(
            reason_words("Error.Unknown", Some("Odd")),
            "Odd (Error.Unknown)"
        );
    }
}
