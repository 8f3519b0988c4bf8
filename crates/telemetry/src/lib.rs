//! In-process counters and latency histograms, kept by the crates that see the events (the Apple
//! client, the NanoMDM client, the server's notification and HTTP handlers) and rendered by the
//! server's `/metrics` in Prometheus's text format. Labels are chosen by the callers from bounded
//! sets (endpoints, statuses, error numbers, command types): never an app, a device or a person.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;

/// A series: its name and label pairs.
type Key = (&'static str, Vec<(&'static str, String)>);

/// The upper bounds (seconds) of the latency histograms' buckets.
pub const BUCKETS: [f64; 10] = [0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0];

#[derive(Default, Clone)]
struct Histogram {
    /// Observations at or below each bucket's bound (not cumulative; summed when rendered).
    buckets: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
}

static COUNTERS: Mutex<BTreeMap<Key, f64>> = Mutex::new(BTreeMap::new());
static HISTOGRAMS: Mutex<BTreeMap<Key, Histogram>> = Mutex::new(BTreeMap::new());

fn key(name: &'static str, labels: &[(&'static str, &str)]) -> Key {
    (
        name,
        labels.iter().map(|(k, v)| (*k, (*v).to_owned())).collect(),
    )
}

/// Adds one to a counter.
pub fn count(name: &'static str, labels: &[(&'static str, &str)]) {
    add(name, labels, 1.0);
}

/// Adds `value` to a counter (seconds waited, bytes, …).
pub fn add(name: &'static str, labels: &[(&'static str, &str)], value: f64) {
    *COUNTERS
        .lock()
        .expect("telemetry lock")
        .entry(key(name, labels))
        .or_default() += value;
}

/// Records one duration (seconds) in a histogram.
pub fn observe(name: &'static str, labels: &[(&'static str, &str)], seconds: f64) {
    let mut all = HISTOGRAMS.lock().expect("telemetry lock");
    let h = all.entry(key(name, labels)).or_default();
    if let Some(i) = BUCKETS.iter().position(|b| seconds <= *b) {
        h.buckets[i] += 1;
    }
    h.count += 1;
    h.sum += seconds;
}

/// A counter's value now (tests).
pub fn value(name: &str, labels: &[(&str, &str)]) -> f64 {
    COUNTERS
        .lock()
        .expect("telemetry lock")
        .iter()
        .filter(|((n, l), _)| {
            *n == name
                && labels
                    .iter()
                    .all(|(k, v)| l.iter().any(|(lk, lv)| lk == k && lv == v))
        })
        .map(|(_, v)| *v)
        .sum()
}

/// A label value in the exposition format: backslash, quote and newline escaped.
pub fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn labels(l: &[(&'static str, String)], extra: Option<(&str, String)>) -> String {
    let mut parts: Vec<String> = l
        .iter()
        .map(|(k, v)| format!("{k}=\"{}\"", escape(v)))
        .collect();
    if let Some((k, v)) = extra {
        parts.push(format!("{k}=\"{v}\""));
    }
    if parts.is_empty() {
        String::new()
    } else {
        format!("{{{}}}", parts.join(","))
    }
}

/// Every series in the exposition format; `help` gives each name's help text.
pub fn render(out: &mut String, help: &dyn Fn(&str) -> &'static str) {
    let counters = COUNTERS.lock().expect("telemetry lock").clone();
    let mut last = "";
    for ((name, l), v) in &counters {
        if *name != last {
            let _ = writeln!(out, "# HELP {name} {}\n# TYPE {name} counter", help(name));
            last = name;
        }
        let _ = writeln!(out, "{name}{} {v}", labels(l, None));
    }
    let histograms = HISTOGRAMS.lock().expect("telemetry lock").clone();
    last = "";
    for ((name, l), h) in &histograms {
        if *name != last {
            let _ = writeln!(out, "# HELP {name} {}\n# TYPE {name} histogram", help(name));
            last = name;
        }
        let mut cumulative = 0;
        for (bound, n) in BUCKETS.iter().zip(h.buckets) {
            cumulative += n;
            let _ = writeln!(
                out,
                "{name}_bucket{} {cumulative}",
                labels(l, Some(("le", bound.to_string())))
            );
        }
        let _ = writeln!(
            out,
            "{name}_bucket{} {}",
            labels(l, Some(("le", "+Inf".into()))),
            h.count
        );
        let _ = writeln!(out, "{name}_sum{} {}", labels(l, None), h.sum);
        let _ = writeln!(out, "{name}_count{} {}", labels(l, None), h.count);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_and_histograms_render_in_the_exposition_format() {
        count(
            "t_requests_total",
            &[("endpoint", "assets"), ("status", "200")],
        );
        count(
            "t_requests_total",
            &[("endpoint", "assets"), ("status", "200")],
        );
        add("t_wait_seconds_total", &[], 1.5);
        observe("t_request_seconds", &[("endpoint", "assets")], 0.07);
        observe("t_request_seconds", &[("endpoint", "assets")], 99.0);
        assert_eq!(value("t_requests_total", &[("endpoint", "assets")]), 2.0);
        let mut out = String::new();
        render(&mut out, &|_| "test");
        assert!(out.contains("# TYPE t_requests_total counter\nt_requests_total{endpoint=\"assets\",status=\"200\"} 2\n"), "{out}");
        assert!(out.contains("t_wait_seconds_total 1.5\n"), "{out}");
        assert!(
            out.contains("t_request_seconds_bucket{endpoint=\"assets\",le=\"0.05\"} 0\n"),
            "{out}"
        );
        assert!(
            out.contains("t_request_seconds_bucket{endpoint=\"assets\",le=\"0.1\"} 1\n"),
            "{out}"
        );
        assert!(
            out.contains("t_request_seconds_bucket{endpoint=\"assets\",le=\"+Inf\"} 2\n"),
            "{out}"
        );
        assert!(
            out.contains("t_request_seconds_count{endpoint=\"assets\"} 2\n"),
            "{out}"
        );
    }
}
