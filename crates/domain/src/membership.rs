//! Rule-based collection membership: what a rule may say, checked before it is stored, and said in
//! words. The store turns a rule into one SQL condition (so a rule over 500,000 devices is one
//! set-based statement); every criterion given must hold, and a list criterion holds when any of
//! its values does.

use serde::{Deserialize, Serialize};

use crate::CollectionKind;

/// The most values a list criterion may hold (each becomes a bound parameter).
pub const MAX_VALUES: usize = 100;
/// The longest text a criterion may hold.
pub const MAX_TEXT: usize = 200;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct MembershipRule {
    /// Devices: their platform is one of these (`iOS`, `iPadOS`, `macOS`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub platforms: Vec<String>,
    /// Devices: their model contains this text (any case), e.g. `iPad` or `MacBook Air`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model_contains: Option<String>,
    /// Devices: they run at least this OS version (as they last reported it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_os_version: Option<String>,
    /// Devices: their primary user is a member of this users collection (by id).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub users_in_collection: Option<i64>,
    /// People: their e-mail address is at one of these domains (`school.example`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub email_domains: Vec<String>,
    /// People: their department is one of these (any case).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub departments: Vec<String>,
    /// Devices and people: the name contains this text (any case).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name_contains: Option<String>,
}

impl MembershipRule {
    /// Trims the rule's texts, drops empty ones, and checks it fits a collection of `kind`;
    /// the error says what to change.
    pub fn normalized(mut self, kind: CollectionKind) -> Result<Self, String> {
        let clean_list = |v: Vec<String>, what: &str| -> Result<Vec<String>, String> {
            let mut out: Vec<String> = Vec::new();
            for s in v.iter().map(|s| s.trim()).filter(|s| !s.is_empty()) {
                check_text(what, s)?;
                if !out.iter().any(|o| o.eq_ignore_ascii_case(s)) {
                    out.push(s.to_owned());
                }
            }
            if out.len() > MAX_VALUES {
                return Err(format!("{what} may list at most {MAX_VALUES} values"));
            }
            Ok(out)
        };
        let clean_text = |v: Option<String>, what: &str| -> Result<Option<String>, String> {
            match v.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
                Some(s) => check_text(what, s).map(|_| Some(s.to_owned())),
                None => Ok(None),
            }
        };
        self.platforms = clean_list(self.platforms, "platforms")?
            .into_iter()
            .map(|p| {
                ["iOS", "iPadOS", "macOS"]
                    .iter()
                    .find(|k| k.eq_ignore_ascii_case(&p))
                    .map(|k| (*k).to_owned())
                    .ok_or_else(|| format!("platform {p:?} must be iOS, iPadOS or macOS"))
            })
            .collect::<Result<_, _>>()?;
        self.model_contains = clean_text(self.model_contains, "modelContains")?;
        self.min_os_version = clean_text(self.min_os_version, "minOsVersion")?;
        if let Some(v) = &self.min_os_version {
            if crate::os::OsVersion::parse(v).is_none() {
                return Err(format!(
                    "minOsVersion {v:?} is not a version such as 17.2 or 15"
                ));
            }
        }
        self.email_domains = clean_list(self.email_domains, "emailDomains")?
            .into_iter()
            .map(|d| d.trim_start_matches('@').to_ascii_lowercase())
            .collect();
        if let Some(d) = self
            .email_domains
            .iter()
            .find(|d| d.is_empty() || d.contains('@') || d.contains(char::is_whitespace))
        {
            return Err(format!(
                "email domain {d:?} should look like school.example"
            ));
        }
        self.departments = clean_list(self.departments, "departments")?;
        self.name_contains = clean_text(self.name_contains, "nameContains")?;

        let device_only = !self.platforms.is_empty()
            || self.model_contains.is_some()
            || self.min_os_version.is_some()
            || self.users_in_collection.is_some();
        let people_only = !self.email_domains.is_empty() || !self.departments.is_empty();
        match kind {
            CollectionKind::Users if device_only => {
                return Err("a collection of users can be chosen by e-mail domain, department or name; platforms, models, OS versions and users' collections choose devices".into());
            }
            CollectionKind::Devices if people_only => {
                return Err("a collection of devices can be chosen by platform, model, OS version, name or its users' collection; e-mail domains and departments choose users".into());
            }
            _ => {}
        }
        if !device_only && !people_only && self.name_contains.is_none() {
            return Err("a rule needs at least one criterion (a rule that chooses everyone is a mistake more often than not)".into());
        }
        Ok(self)
    }

    /// The rule in words, for pages and the CLI: "platform iPadOS · model contains “iPad”".
    pub fn describe(&self, collection_name: impl Fn(i64) -> String) -> String {
        let mut parts = Vec::new();
        if !self.platforms.is_empty() {
            parts.push(format!("platform {}", self.platforms.join(" or ")));
        }
        if let Some(m) = &self.model_contains {
            parts.push(format!("model contains “{m}”"));
        }
        if let Some(v) = &self.min_os_version {
            parts.push(format!("OS {v} or later"));
        }
        if let Some(c) = self.users_in_collection {
            parts.push(format!("used by a member of {}", collection_name(c)));
        }
        if !self.email_domains.is_empty() {
            let d: Vec<String> = self.email_domains.iter().map(|d| format!("@{d}")).collect();
            parts.push(format!("e-mail at {}", d.join(" or ")));
        }
        if !self.departments.is_empty() {
            parts.push(format!("department {}", self.departments.join(" or ")));
        }
        if let Some(n) = &self.name_contains {
            parts.push(format!("name contains “{n}”"));
        }
        parts.join(" · ")
    }
}

fn check_text(what: &str, s: &str) -> Result<(), String> {
    if s.chars().count() > MAX_TEXT || s.contains(char::is_control) {
        return Err(format!(
            "{what} takes printable text of at most {MAX_TEXT} characters"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rule_is_cleaned_and_checked_against_its_collection_kind() {
        let r = MembershipRule {
            platforms: vec!["ipados".into(), " iPadOS ".into(), "".into()],
            model_contains: Some("  ".into()),
            ..Default::default()
        }
        .normalized(CollectionKind::Devices)
        .unwrap();
        assert_eq!(r.platforms, vec!["iPadOS".to_string()]);
        assert_eq!(r.model_contains, None);

        let users = MembershipRule {
            email_domains: vec!["@School.Example".into()],
            ..Default::default()
        }
        .normalized(CollectionKind::Users)
        .unwrap();
        assert_eq!(users.email_domains, vec!["school.example".to_string()]);
        assert_eq!(
            users.describe(|_| String::new()),
            "e-mail at @school.example"
        );

        let err = MembershipRule {
            platforms: vec!["iOS".into()],
            ..Default::default()
        }
        .normalized(CollectionKind::Users)
        .unwrap_err();
        assert!(err.contains("choose devices"), "{err}");
        let err = MembershipRule {
            platforms: vec!["Android".into()],
            ..Default::default()
        }
        .normalized(CollectionKind::Devices)
        .unwrap_err();
        assert!(err.contains("iOS, iPadOS or macOS"), "{err}");
        let err = MembershipRule::default()
            .normalized(CollectionKind::Devices)
            .unwrap_err();
        assert!(err.contains("at least one criterion"), "{err}");
        let err = MembershipRule {
            min_os_version: Some("seventeen".into()),
            ..Default::default()
        }
        .normalized(CollectionKind::Devices)
        .unwrap_err();
        assert!(err.contains("not a version"), "{err}");
    }
}
