//! OS versions as devices report them (`17.4`, `17.4.1`, `26.0`): parsed, so that "17.10" is
//! newer than "17.9", and compared with what a feature or an app needs.

use std::fmt;

/// A version of up to three numbers; missing parts count as 0 (`17` = `17.0.0`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct OsVersion(pub u32, pub u32, pub u32);

impl OsVersion {
    /// `None` for anything that is not 1 to 3 dot-separated numbers (a device chose the text).
    pub fn parse(s: &str) -> Option<Self> {
        let s = s.trim();
        if s.is_empty() || s.len() > 20 {
            return None;
        }
        let mut parts = [0u32; 3];
        for (n, part) in s.split('.').enumerate() {
            if n == 3 || part.is_empty() || !part.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            parts[n] = part.parse().ok()?;
        }
        Some(Self(parts[0], parts[1], parts[2]))
    }
}

impl OsVersion {
    /// One number that orders like the version (`17.4.1` → 17_004_001), for comparing in SQL.
    pub fn ordinal(self) -> i64 {
        i64::from(self.0) * 1_000_000
            + i64::from(self.1.min(999)) * 1_000
            + i64::from(self.2.min(999))
    }
}

impl fmt::Display for OsVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self(a, b, 0) => write!(f, "{a}.{b}"),
            Self(a, b, c) => write!(f, "{a}.{b}.{c}"),
        }
    }
}

/// Whether a device of `platform` (`iOS`, `iPadOS`, `macOS`…) on `os_version` can be managed
/// declaratively for apps (`com.apple.configuration.app.managed`): iOS and iPadOS 17.2 or later,
/// macOS 26 or later. An unknown version is not assumed to support it.
pub fn supports_declarative_apps(platform: &str, os_version: Option<&str>) -> bool {
    let Some(v) = os_version.and_then(OsVersion::parse) else {
        return false;
    };
    match platform {
        "iOS" | "iPadOS" => v >= OsVersion(17, 2, 0),
        "macOS" => v >= OsVersion(26, 0, 0),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_compare_as_numbers() {
        assert!(OsVersion::parse("17.10").unwrap() > OsVersion::parse("17.9").unwrap());
        assert_eq!(OsVersion::parse("17"), Some(OsVersion(17, 0, 0)));
        assert_eq!(OsVersion::parse(" 17.4.1 "), Some(OsVersion(17, 4, 1)));
        assert_eq!(OsVersion::parse("17.4.1").unwrap().to_string(), "17.4.1");
        assert_eq!(OsVersion::parse("26.0").unwrap().to_string(), "26.0");
        for bad in ["", "17.", ".4", "17.4.1.2", "17a", "1\u{0}7", "99999999999"] {
            assert_eq!(OsVersion::parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn declarative_app_management_by_platform_and_version() {
        assert!(supports_declarative_apps("iOS", Some("17.2")));
        assert!(supports_declarative_apps("iPadOS", Some("18.0.1")));
        assert!(!supports_declarative_apps("iOS", Some("17.1.2")));
        assert!(!supports_declarative_apps("macOS", Some("15.4")));
        assert!(supports_declarative_apps("macOS", Some("26.0")));
        assert!(!supports_declarative_apps("iOS", None));
        assert!(!supports_declarative_apps("tvOS", Some("26.0")));
    }
}
