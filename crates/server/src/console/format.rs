//! How the console writes times, counts and links.

use chrono_tz::Tz;

tokio::task_local! {
    /// The time zone of the page being made (the `allot_tz` cookie: the account's setting, or
    /// the browser's own); UTC when none.
    static TIME_ZONE: Tz;
}

/// Makes a page with times in `tz`.
pub(crate) async fn in_time_zone<F: std::future::Future>(tz: Tz, page: F) -> F::Output {
    TIME_ZONE.scope(tz, page).await
}

/// A time zone by its IANA name (`Europe/Paris`), if it is one.
pub(crate) fn time_zone(name: &str) -> Option<Tz> {
    name.trim().parse::<Tz>().ok()
}

/// A time for people, in the page's time zone: `2026-11-21 09:05 CET`.
pub(crate) fn time(ms: i64) -> String {
    let tz = TIME_ZONE.try_with(|tz| *tz).unwrap_or(Tz::UTC);
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.with_timezone(&tz).format("%Y-%m-%d %H:%M %Z").to_string())
        .unwrap_or_default()
}

/// The page's time zone's name, for the header.
pub(crate) fn time_zone_name() -> &'static str {
    TIME_ZONE.try_with(|tz| tz.name()).unwrap_or("UTC")
}

/// The page of one app (or book) of one token; the pricing only when it is not the standard one.
pub(crate) fn app_link(token_id: i64, adam_id: &str, pricing: &str) -> String {
    let pricing = if pricing == "STDQ" {
        String::new()
    } else {
        format!("?pricing={}", query_escape(pricing))
    };
    format!("/apps/{token_id}/{}{pricing}", query_escape(adam_id))
}

/// How long ago, roughly: `just now`, `5 min ago`, `3 h ago`, `2 days ago`.
pub(crate) fn ago(ms: i64, now: i64) -> String {
    let s = (now - ms).max(0) / 1000;
    match s {
        0..=59 => "just now".into(),
        60..=3599 => format!("{} min ago", s / 60),
        3600..=172_799 => format!("{} h ago", s / 3600),
        _ => format!("{} days ago", s / 86_400),
    }
}

/// A time to come, in words: "in 40 s", "in 3 min".
pub(crate) fn from_now(ms: i64, now: i64) -> String {
    let s = (ms - now).max(0) / 1000;
    match s {
        0..=59 => format!("in {s} s"),
        60..=3599 => format!("in {} min", s / 60),
        3600..=172_799 => format!("in {} h", s / 3600),
        _ => format!("in {} days", s / 86_400),
    }
}

/// A value for a URL query.
pub(crate) fn query_escape(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            b' ' => "+".into(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// A query string of the non-empty pairs.
pub(crate) fn query(pairs: &[(&str, &str)]) -> String {
    let parts: Vec<String> = pairs
        .iter()
        .filter(|(_, v)| !v.is_empty())
        .map(|(k, v)| format!("{k}={}", query_escape(v)))
        .collect();
    if parts.is_empty() {
        String::new()
    } else {
        format!("?{}", parts.join("&"))
    }
}

/// Percent of `part` in `whole`, 0–100.
pub(crate) fn percent(part: i64, whole: i64) -> i64 {
    if whole <= 0 {
        0
    } else {
        (part * 100 / whole).clamp(0, 100)
    }
}

/// Pages of a list: where this page starts, and the links around it.
pub(crate) struct Pager {
    pub from: i64,
    pub to: i64,
    pub total: i64,
    pub prev: Option<String>,
    pub next: Option<String>,
}

impl Pager {
    /// `link(page)` makes the URL of a page (numbered from 1).
    pub fn new(page: i64, per_page: i64, total: i64, link: impl Fn(i64) -> String) -> Self {
        let from = (page - 1) * per_page;
        Self {
            from: if total == 0 { 0 } else { from + 1 },
            to: (from + per_page).min(total),
            total,
            prev: (page > 1).then(|| link(page - 1)),
            next: (from + per_page < total).then(|| link(page + 1)),
        }
    }
}

/// The page number asked for (1 if none or nonsense).
pub(crate) fn page_number(p: Option<i64>) -> i64 {
    p.unwrap_or(1).clamp(1, 1_000_000)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_and_pages() {
        assert_eq!(
            query(&[("search", "a b&c"), ("token", "")]),
            "?search=a+b%26c"
        );
        assert_eq!(query(&[]), "");
        let p = Pager::new(2, 50, 120, |n| format!("/apps?page={n}"));
        assert_eq!((p.from, p.to), (51, 100));
        assert_eq!(p.prev.as_deref(), Some("/apps?page=1"));
        assert_eq!(p.next.as_deref(), Some("/apps?page=3"));
        let last = Pager::new(3, 50, 120, |n| n.to_string());
        assert_eq!((last.from, last.to, last.next), (101, 120, None));
        assert_eq!(Pager::new(1, 50, 0, |n| n.to_string()).from, 0);
        assert_eq!(percent(1, 3), 33);
        assert_eq!(ago(0, 7_200_000), "2 h ago");
    }

    #[tokio::test]
    async fn times_are_written_in_the_page_s_time_zone() {
        // 2026-01-15 08:05 UTC.
        let ms = 1_768_464_300_000;
        assert_eq!(time(ms), "2026-01-15 08:05 UTC");
        let paris = time_zone("Europe/Paris").unwrap();
        assert_eq!(
            in_time_zone(paris, async { time(ms) }).await,
            "2026-01-15 09:05 CET"
        );
        let la = time_zone("America/Los_Angeles").unwrap();
        assert_eq!(
            in_time_zone(la, async { (time(ms), time_zone_name()) }).await,
            ("2026-01-15 00:05 PST".to_string(), "America/Los_Angeles")
        );
        assert!(time_zone("Mars/Olympus").is_none());
    }
}
