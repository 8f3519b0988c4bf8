//! `GET /metrics` in Prometheus's text format, behind its own bearer token
//! (`ALLOT_METRICS_TOKEN`; off without it): what the store says at scrape time (licenses per
//! token, deployment targets by status, sync runs by kind and outcome with their time,
//! notifications applied by type, webhook deliveries by outcome, open alerts, failed pushes) and
//! what this process counted (`allot_telemetry`): HTTP requests by route, method and status;
//! Apple requests by endpoint, status and error number with their latency, the time held back to
//! keep Apple's rate and the Retry-After waits honoured; notifications received by type and
//! outcome; NanoMDM commands and pushes by outcome. Cardinality stays bounded: tokens, routes,
//! endpoints and command types, never apps, devices or people.

use std::fmt::Write;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::AppState;

/// Counts every request by its route's pattern (`/api/v1/deployments/{id}`, not the id).
pub(crate) async fn count_requests(req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|m| m.as_str().to_owned())
        .unwrap_or_else(|| "unmatched".into());
    let method = req.method().to_string();
    let res = next.run(req).await;
    allot_telemetry::count(
        "allot_http_requests_total",
        &[
            ("route", &route),
            ("method", &method),
            ("status", res.status().as_str()),
        ],
    );
    res
}

use allot_telemetry::escape as label;

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
        "allot_http_requests_total" => (
            "counter",
            "HTTP requests this process answered, by route, method and status.",
        ),
        "allot_apple_requests_total" => (
            "counter",
            "Requests to Apple's service, by endpoint, HTTP status and Apple's error number.",
        ),
        "allot_apple_request_seconds" => (
            "histogram",
            "Time of requests to Apple's service, by endpoint.",
        ),
        "allot_apple_pacing_seconds_total" => (
            "counter",
            "Time requests were held back to stay within Apple's published rate.",
        ),
        "allot_apple_retries_total" => (
            "counter",
            "Requests to Apple tried again (refused with 429/503 or failed reads), by endpoint.",
        ),
        "allot_apple_retry_after_seconds_total" => (
            "counter",
            "Time waited because Apple's Retry-After asked for it.",
        ),
        "allot_notifications_received_total" => (
            "counter",
            "Apple notifications received by this process, by type and outcome (applied, duplicate, refused).",
        ),
        "allot_mdm_commands_total" => (
            "counter",
            "Commands sent to NanoMDM, by request type and outcome (queued, refused, failed).",
        ),
        "allot_mdm_pushes_total" => ("counter", "Pushes NanoMDM sent, by outcome."),
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
    allot_telemetry::render(&mut out, &|name| help(name).1);
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
    }
}
