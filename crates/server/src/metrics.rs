//! `GET /metrics` in Prometheus's text format, behind its own bearer token
//! (`ALLOT_METRICS_TOKEN`; off without it): what the store says at scrape time (licenses per
//! token, deployment targets by status, sync runs by kind and outcome with their time,
//! notifications applied by type, webhook deliveries by outcome, open alerts, failed pushes) and
//! this process's HTTP requests by route, method and status. Cardinality stays bounded: tokens
//! and routes, never apps, devices or people.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::AppState;

/// Requests served by this process: (route, method, status) → count.
static REQUESTS: Mutex<BTreeMap<(String, String, u16), u64>> = Mutex::new(BTreeMap::new());

/// Counts every request by its route's pattern (`/api/v1/deployments/{id}`, not the id).
pub(crate) async fn count_requests(req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|m| m.as_str().to_owned())
        .unwrap_or_else(|| "unmatched".into());
    let method = req.method().to_string();
    let res = next.run(req).await;
    let key = (route, method, res.status().as_u16());
    *REQUESTS
        .lock()
        .expect("metrics lock")
        .entry(key)
        .or_default() += 1;
    res
}

/// A label value in the exposition format: backslash, quote and newline escaped.
fn label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn help(name: &str) -> (&'static str, &'static str) {
    match name {
        "allot_licenses_total" => (
            "gauge",
            "Licenses bought, per token (apps with counts; unlimited ones aside).",
        ),
        "allot_licenses_assigned" => ("gauge", "Licenses assigned, per token."),
        "allot_licenses_available" => ("gauge", "Licenses free, per token."),
        "allot_deployment_targets" => ("gauge", "Deployment targets by status."),
        "allot_sync_runs_total" => ("counter", "Finished sync runs by kind and outcome."),
        "allot_sync_run_seconds_total" => (
            "counter",
            "Time spent in finished sync runs, by kind and outcome.",
        ),
        "allot_notifications_applied_total" => ("counter", "Apple notifications applied, by type."),
        "allot_webhook_deliveries" => (
            "gauge",
            "Alert deliveries (webhooks and e-mail) by outcome.",
        ),
        "allot_alerts_open" => ("gauge", "Alerts whose condition still holds, by event."),
        "allot_push_failures" => ("gauge", "Devices whose last push failed."),
        _ => ("gauge", ""),
    }
}

/// The exposition text of the samples and the request counters.
pub(crate) fn render(samples: &[allot_store::MetricSample]) -> String {
    let mut out = String::new();
    let mut last = "";
    for (name, labels, value) in samples {
        if *name != last {
            let (kind, text) = help(name);
            let _ = writeln!(out, "# HELP {name} {text}\n# TYPE {name} {kind}");
            last = name;
        }
        let labels: Vec<String> = labels
            .iter()
            .map(|(k, v)| format!("{k}=\"{}\"", label(v)))
            .collect();
        let labels = if labels.is_empty() {
            String::new()
        } else {
            format!("{{{}}}", labels.join(","))
        };
        let _ = writeln!(out, "{name}{labels} {value}");
    }
    let _ = writeln!(
        out,
        "# HELP allot_http_requests_total HTTP requests this process answered, by route, method and status.\n# TYPE allot_http_requests_total counter"
    );
    for ((route, method, status), n) in REQUESTS.lock().expect("metrics lock").iter() {
        let _ = writeln!(
            out,
            "allot_http_requests_total{{route=\"{}\",method=\"{method}\",status=\"{status}\"}} {n}",
            label(route)
        );
    }
    out
}

pub(crate) async fn metrics(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let Some(token) = state.metrics_token.as_deref() else {
        return (
            StatusCode::NOT_FOUND,
            "metrics are off: set ALLOT_METRICS_TOKEN to turn them on\n",
        )
            .into_response();
    };
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    if !allot_secrets::same_secret(given.as_bytes(), token.as_bytes()) {
        return (
            StatusCode::UNAUTHORIZED,
            "send ALLOT_METRICS_TOKEN as `Authorization: Bearer <token>`\n",
        )
            .into_response();
    }
    match state.store.metric_samples().await {
        Ok(samples) => (
            [(
                header::CONTENT_TYPE,
                "text/plain; version=0.0.4; charset=utf-8",
            )],
            render(&samples),
        )
            .into_response(),
        Err(e) => {
            tracing::warn!(error = %e, "metrics: the database does not answer");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                "the database does not answer\n",
            )
                .into_response()
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn samples_render_in_the_exposition_format() {
        let text = super::render(&[
            (
                "allot_licenses_total",
                vec![("token", "North \"HQ\"".into())],
                50.0,
            ),
            (
                "allot_licenses_total",
                vec![("token", "Retail".into())],
                20.0,
            ),
            ("allot_push_failures", Vec::new(), 0.0),
        ]);
        assert!(text.contains("# TYPE allot_licenses_total gauge\n"));
        assert_eq!(text.matches("# TYPE allot_licenses_total").count(), 1);
        assert!(
            text.contains("allot_licenses_total{token=\"North \\\"HQ\\\"\"} 50\n"),
            "{text}"
        );
        assert!(text.contains("allot_push_failures 0\n"));
        assert!(text.contains("# TYPE allot_http_requests_total counter"));
    }
}
