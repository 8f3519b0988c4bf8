//! Whether a device can run a piece of content, before any license is spent on it. Apple lists an
//! app's `supportedPlatforms` (`iOS`, `macOS`, `tvOS`, `watchOS`, `visionOS`); iPads run iOS apps;
//! a Mac with Apple silicon runs an iOS app whose metadata lists the `mac` device family; books
//! open on iPhone, iPad and Mac.

/// The device platforms (as Allot names them: `iOS`, `iPadOS`, `macOS`, `tvOS`, `watchOS`,
/// `visionOS`) that can run the content; `None` when Apple gave no platforms (nothing is refused
/// on missing data).
pub fn compatible_platforms(
    is_book: bool,
    supported: &[String],
    device_families: &[String],
) -> Option<Vec<&'static str>> {
    if is_book {
        return Some(vec!["iOS", "iPadOS", "macOS"]);
    }
    if supported.is_empty() {
        return None;
    }
    let has = |p: &str| supported.iter().any(|s| s.eq_ignore_ascii_case(p));
    let mut out = Vec::new();
    if has("iOS") {
        out.extend(["iOS", "iPadOS"]);
    }
    if has("macOS") || (has("iOS") && device_families.iter().any(|f| f == "mac")) {
        out.push("macOS");
    }
    for p in ["tvOS", "watchOS", "visionOS"] {
        if has(p) {
            out.push(p);
        }
    }
    Some(out)
}

/// What an app's `minimumOSVersion` asks of a device: the platforms it speaks of (Apple gives the
/// minimum of the app's own kind — iOS for iPhone and iPad apps, macOS for Mac apps), the version,
/// and the system's name for people. `None` for books, an unknown kind or no minimum (nothing is
/// refused on missing data).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MinimumOs {
    pub platforms: &'static [&'static str],
    pub version: crate::os::OsVersion,
    pub system: &'static str,
}

impl MinimumOs {
    pub fn of(is_book: bool, kind: Option<&str>, minimum: Option<&str>) -> Option<Self> {
        if is_book {
            return None;
        }
        let version = crate::os::OsVersion::parse(minimum?)?;
        let (platforms, system): (&'static [&'static str], _) = match kind? {
            "macSoftware" => (&["macOS"], "macOS"),
            "iosSoftware" => (&["iOS", "iPadOS"], "iOS"),
            _ => return None,
        };
        Some(Self {
            platforms,
            version,
            system,
        })
    }

    /// Why a device of `platform` on `os_version` cannot run the app, in words; `None` when it can
    /// or its version is not known.
    pub fn refuses(&self, platform: &str, os_version: Option<&str>) -> Option<String> {
        if !self.platforms.contains(&platform) {
            return None;
        }
        let v = crate::os::OsVersion::parse(os_version?)?;
        (v < self.version).then(|| {
            format!(
                "the app needs {} {} or later and this device runs {platform} {v}",
                self.system, self.version
            )
        })
    }

    /// "iOS 17.2", for messages.
    pub fn label(&self) -> String {
        format!("{} {}", self.system, self.version)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_minimum_os_is_the_app_kinds_own() {
        let m = MinimumOs::of(false, Some("iosSoftware"), Some("17.2")).unwrap();
        assert_eq!(
            m.refuses("iPadOS", Some("16.7.2")).as_deref(),
            Some("the app needs iOS 17.2 or later and this device runs iPadOS 16.7.2")
        );
        assert_eq!(m.refuses("iOS", Some("17.10")), None, "17.10 is after 17.2");
        assert_eq!(m.refuses("iOS", None), None, "unknown: not refused");
        assert_eq!(
            m.refuses("macOS", Some("12.0")),
            None,
            "the iOS minimum says nothing of Macs"
        );
        assert_eq!(MinimumOs::of(true, Some("ebook"), Some("17.0")), None);
        assert_eq!(MinimumOs::of(false, None, Some("17.0")), None);
        let mac = MinimumOs::of(false, Some("macSoftware"), Some("14.0")).unwrap();
        assert!(mac.refuses("macOS", Some("13.6")).is_some());
        assert_eq!(mac.label(), "macOS 14.0");
    }

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn platforms_by_apples_rules() {
        assert_eq!(
            compatible_platforms(false, &s(&["macOS"]), &s(&["mac"])),
            Some(vec!["macOS"]),
            "a macOS-only app is not for iPads"
        );
        assert_eq!(
            compatible_platforms(false, &s(&["iOS"]), &s(&["iphone", "ipad"])),
            Some(vec!["iOS", "iPadOS"])
        );
        assert_eq!(
            compatible_platforms(false, &s(&["iOS"]), &s(&["iphone", "ipad", "mac"])),
            Some(vec!["iOS", "iPadOS", "macOS"]),
            "an iOS app Apple lets run on Apple silicon Macs"
        );
        assert_eq!(compatible_platforms(false, &[], &[]), None);
        assert_eq!(
            compatible_platforms(true, &[], &[]),
            Some(vec!["iOS", "iPadOS", "macOS"])
        );
    }
}
