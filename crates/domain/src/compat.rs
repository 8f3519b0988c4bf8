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

#[cfg(test)]
mod tests {
    use super::*;

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
