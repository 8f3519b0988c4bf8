//! Rows of the inventory: people, devices, collections.

use serde::Serialize;

#[derive(Debug, Clone, Default)]
pub struct NewPerson {
    pub name: String,
    pub email: Option<String>,
    pub managed_apple_id: Option<String>,
    /// For collections' rules; `None` keeps what is stored.
    pub department: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PersonRow {
    pub id: i64,
    pub client_user_id: String,
    pub name: String,
    pub email: Option<String>,
    pub managed_apple_id: Option<String>,
    pub department: Option<String>,
    pub removed_at: Option<i64>,
    pub created_at: i64,
}

#[derive(Debug, Clone, Default)]
pub struct NewDevice {
    pub serial_number: String,
    pub enrollment_id: Option<String>,
    /// `iOS`, `iPadOS` or `macOS`.
    pub platform: String,
    pub model: String,
    pub name: String,
    pub primary_person_id: Option<i64>,
    /// The OS version the device reported (its enrollment); none from an admin or an import.
    pub os_version: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DeviceRow {
    pub id: i64,
    pub serial_number: String,
    pub enrollment_id: Option<String>,
    pub platform: String,
    pub model: String,
    pub name: String,
    pub primary_person_id: Option<i64>,
    pub enrolled: bool,
    pub last_seen_at: Option<i64>,
    pub unenrolled_at: Option<i64>,
    /// What the device last said of its OS (`17.4`, `26.0`), from its Authenticate or a
    /// DeviceInformation answer; none until it has said.
    pub os_version: Option<String>,
    /// When it last said so.
    pub info_reported_at: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CollectionRow {
    pub id: i64,
    pub name: String,
    /// `users` or `devices`.
    pub kind: String,
    pub description: String,
    pub members: i64,
    /// A rule-based collection's rule; `None` for static membership.
    pub rule: Option<allot_domain::MembershipRule>,
    /// When the rule's members were last written.
    pub rule_evaluated_at: Option<i64>,
}

/// A bound value of a rule's SQL condition.
#[derive(Debug, Clone)]
pub enum RuleArg {
    Text(String),
    Int(i64),
}

/// A rule as one SQL condition over `people p` or `devices d` (by the collection's kind), its
/// parameters numbered from `$first`. Every criterion is ANDed; a list matches any of its values.
pub fn rule_condition(
    kind: &str,
    rule: &allot_domain::MembershipRule,
    first: usize,
) -> (String, Vec<RuleArg>) {
    let mut args: Vec<RuleArg> = Vec::new();
    // Binds a value and gives its `$n`.
    let mut bind = |a: RuleArg| {
        args.push(a);
        format!("${}", first + args.len() - 1)
    };
    let mut parts: Vec<String> = Vec::new();
    let like = |col: &str, mark: String| format!("LOWER({col}) LIKE {mark} ESCAPE '\\'");
    if kind == "devices" {
        if !rule.platforms.is_empty() {
            let marks: Vec<String> = rule
                .platforms
                .iter()
                .map(|v| bind(RuleArg::Text(v.clone())))
                .collect();
            parts.push(format!("d.platform IN ({})", marks.join(",")));
        }
        if let Some(m) = &rule.model_contains {
            parts.push(like(
                "d.model",
                bind(RuleArg::Text(crate::like_contains(m))),
            ));
        }
        if let Some(v) = rule
            .min_os_version
            .as_deref()
            .and_then(allot_domain::os::OsVersion::parse)
        {
            parts.push(format!(
                "d.os_version_num >= {}",
                bind(RuleArg::Int(v.ordinal()))
            ));
        }
        if let Some(c) = rule.users_in_collection {
            parts.push(format!(
                "d.primary_person_id IN (SELECT um.member_id FROM collection_members um WHERE um.collection_id = {})",
                bind(RuleArg::Int(c))
            ));
        }
        if let Some(n) = &rule.name_contains {
            parts.push(like("d.name", bind(RuleArg::Text(crate::like_contains(n)))));
        }
    } else {
        if !rule.email_domains.is_empty() {
            let ors: Vec<String> = rule
                .email_domains
                .iter()
                .map(|d| {
                    like(
                        "COALESCE(p.email, '')",
                        bind(RuleArg::Text(format!(
                            "%@{}",
                            crate::like_escape(&d.to_lowercase())
                        ))),
                    )
                })
                .collect();
            parts.push(format!("({})", ors.join(" OR ")));
        }
        if !rule.departments.is_empty() {
            let marks: Vec<String> = rule
                .departments
                .iter()
                .map(|v| bind(RuleArg::Text(v.to_lowercase())))
                .collect();
            parts.push(format!("LOWER(p.department) IN ({})", marks.join(",")));
        }
        if let Some(n) = &rule.name_contains {
            parts.push(like("p.name", bind(RuleArg::Text(crate::like_contains(n)))));
        }
    }
    if parts.is_empty() {
        // A rule that normalized() accepted always has a criterion; an empty one chooses no one.
        parts.push("1 = 0".into());
    }
    (parts.join(" AND "), args)
}

#[derive(Debug, Clone)]
pub struct NewDeployment {
    pub adam_id: String,
    pub pricing: String,
    pub token_ids: Vec<i64>,
    pub collection_id: i64,
    pub action: String,
    pub on_shortage: String,
    /// `keep`, `revoke` or `uninstall`: what happens to members that leave the collection.
    pub on_leave: String,
    pub options: allot_domain::InstallOptions,
    /// Who asked for it (an API key's or a console account's name), for the ledger.
    pub created_by: Option<String>,
}

impl Default for NewDeployment {
    fn default() -> Self {
        Self {
            adam_id: String::new(),
            pricing: "STDQ".into(),
            token_ids: Vec::new(),
            collection_id: 0,
            action: "required".into(),
            on_shortage: "fail".into(),
            on_leave: "keep".into(),
            options: Default::default(),
            created_by: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DeploymentRow {
    pub id: i64,
    pub adam_id: String,
    pub pricing: String,
    pub token_ids: Vec<i64>,
    pub collection_id: i64,
    pub action: String,
    pub on_shortage: String,
    pub created_at: i64,
    pub on_leave: String,
    pub options: allot_domain::InstallOptions,
    pub created_by: Option<String>,
    /// Deleted with `then` revoke or uninstall: no longer in force, giving back what it holds.
    pub ending: Option<String>,
}

/// One target of a deployment and where it stands.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct TargetRow {
    pub deployment_id: i64,
    pub member_id: i64,
    /// Serial number or email, for people to read.
    pub label: String,
    pub status: String,
    /// `device` or `user`.
    pub license: Option<String>,
    /// The serial number or clientUserId holding the license.
    pub holder: Option<String>,
    pub enrollment_id: Option<String>,
    pub token_id: Option<i64>,
    pub event_id: Option<String>,
    pub command_uuid: Option<String>,
    /// What went wrong, in words.
    pub detail: Option<String>,
    /// This deployment's claim gave the license (so a failed install gives it back).
    pub claimed: bool,
    /// The deployment that owns this target when it is `superseded`.
    pub superseded_by: Option<i64>,
    /// When Apple (the license) or the device (the install) last confirmed the status.
    pub confirmed_at: Option<i64>,
    /// Delivered by a declaration (declarative app management), not by InstallApplication.
    pub declarative: bool,
}

/// The person a target's user license goes to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PersonFacts {
    pub id: i64,
    pub client_user_id: String,
    pub name: String,
    pub email: Option<String>,
    pub managed_apple_id: Option<String>,
    pub removed: bool,
}

/// A target with what the store knows of its member, for claiming, inviting and installing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberTarget {
    pub target: TargetRow,
    /// The device's serial number (device collections only).
    pub serial_number: Option<String>,
    /// The device's platform (device collections only): `iOS`, `iPadOS` or `macOS`.
    pub platform: Option<String>,
    /// The OS version the device last reported (device collections only).
    pub os_version: Option<String>,
    /// Still managed: the device is enrolled, the person has not left.
    pub active: bool,
    /// Where commands go: the device's enrollment, or every enrolled device of the person.
    pub install_ids: Vec<String>,
    /// The device's primary user, or the person.
    pub person: Option<PersonFacts>,
}

/// One difference between Allot's intents and Apple's assignments (`Store::ledger_diff`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LedgerRow {
    /// `orphan` (at Apple, served by no deployment in force), `leak` (a target that gave up or
    /// was given back, whose license Apple still holds) or `missing` (a target that says it is
    /// licensed, with no license at Apple).
    pub kind: String,
    pub token_id: i64,
    pub token: String,
    pub adam_id: String,
    pub pricing_param: String,
    /// `device` or `user`.
    pub holder_kind: String,
    /// A serial number or a clientUserId.
    pub holder: String,
    /// The person's email, for user licenses of people Allot knows.
    pub email: Option<String>,
    /// When the target last changed (leaks and missing licenses); none for orphans.
    pub since: Option<i64>,
    pub deployment_id: Option<i64>,
    /// Who created that deployment.
    pub created_by: Option<String>,
}

/// What a device last said of one managed app (ManagedApplicationList), and when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DeviceApp {
    pub bundle_id: String,
    /// `Managed`, `Installing`, `ManagedButUninstalled`, …
    pub status: String,
    pub external_version_id: Option<i64>,
    pub reported_at: i64,
}

/// A target served on one device, with what its deployment wants there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceTarget {
    pub target: TargetRow,
    pub action: String,
    pub auto_update: bool,
    pub bundle_id: Option<String>,
    /// The store's current version, from Apple's metadata.
    pub store_version: Option<i64>,
}

/// An app a device's targets declare (declarative app management).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeclaredApp {
    pub adam_id: String,
    /// `required` or `available`.
    pub action: String,
    pub options: allot_domain::InstallOptions,
    /// `device` or `user`: the license the target holds.
    pub license: Option<String>,
}

/// What a device's status report said of one declared app (`app.managed.list`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DmApp {
    pub bundle_id: String,
    pub declaration_identifier: Option<String>,
    /// Apple's state: `queued`, `downloading`, `installing`, `managed`, `failed`, …
    pub state: String,
    /// The reasons' codes and descriptions, in words (`Error.LicenseNotFound: …`).
    pub reasons: Option<String>,
    /// The store version installed (`external-version-id`), where the device said.
    pub external_version_id: Option<i64>,
    /// The report says the app was removed.
    #[serde(skip)]
    pub removed: bool,
    pub reported_at: i64,
}

/// What `ledger clean` asked Apple to take back, who asked, and Apple's answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LedgerAction {
    pub at: i64,
    pub actor: String,
    /// `orphan` or `leak`: what the diff said of it.
    pub kind: String,
    pub token_id: i64,
    pub adam_id: String,
    pub pricing: String,
    pub holder_kind: String,
    pub holder: String,
    /// Apple's event for the request, when it took it.
    pub event_id: Option<String>,
    /// `requested`, or why not, in words.
    pub outcome: String,
}
