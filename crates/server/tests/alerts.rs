//! Alerts raised by what happens, end to end: a deployment that uses up an app's licenses raises
//! `licenses.low` (resolved once licenses are bought), and `deployment.finished` once nothing of
//! it moves, on both databases; the metrics count what the deployment asked of Apple and NanoMDM
//! and the notifications Apple sent.

#[macro_use]
mod fleet;

use std::time::Duration;

use fleet::{env_with, Env};
use serde_json::{json, Value};

const SCENARIO: &str = r#"{
  "settings": { "eventDelayMs": 0, "tickMs": 5, "notificationRetryDelayMs": 50, "limits": { "maxRequestPerSecond": 0 } },
  "organizations": [ { "name": "Acme", "locations": [ { "name": "HQ", "uId": "5000000000000001",
    "assets": [ { "adamId": "777", "totalCount": 4, "name": "Team Chat" } ] } ] } ]
}"#;

const METRICS: &str = "metrics-token-0123456789";

/// The scraped series: `name{labels}` → value.
async fn scrape(e: &Env) -> std::collections::HashMap<String, f64> {
    let text = e
        .http
        .get(format!("{}/metrics", e.base))
        .bearer_auth(METRICS)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| {
            let (name, value) = l.rsplit_once(' ').unwrap_or_else(|| panic!("{l}"));
            (
                name.to_owned(),
                value.parse().unwrap_or_else(|e| panic!("{e}: {l}")),
            )
        })
        .collect()
}

fn alert<'a>(alerts: &'a Value, event: &str) -> Option<&'a Value> {
    alerts["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["event"] == event)
}

async fn alerts_follow_a_deployment_on(db: allot_store::testing::TestDb) {
    let e: Env = env_with(SCENARIO, db, |c| {
        c.alert_check = Duration::from_millis(100);
        c.alert_low_licenses = 1;
        c.metrics_token = Some(METRICS.into());
    })
    .await;
    e.add_token().await;
    let udids = e.devices("Carts", &["C1", "C2", "C3"]).await;
    let path = e.installed("777", "Carts", &udids).await;
    let id = path.rsplit('/').next().unwrap().to_owned();

    // Three of four licenses used: one free, at the threshold.
    let open = e
        .until("/api/v1/alerts?open=true", "licenses.low", |b| {
            alert(b, "licenses.low").is_some()
        })
        .await;
    let low = alert(&open, "licenses.low").unwrap();
    assert_eq!(
        (
            low["data"]["available"].as_i64(),
            low["data"]["total"].as_i64()
        ),
        (Some(1), Some(4)),
        "{low}"
    );
    assert!(
        low["summary"]
            .as_str()
            .unwrap()
            .contains("Team Chat has 1 of 4 licenses free on HQ"),
        "{low}"
    );
    // Every target installed: the deployment settled, nothing failed.
    let all = e
        .until("/api/v1/alerts", "deployment.finished", |b| {
            alert(b, "deployment.finished").is_some()
        })
        .await;
    let done = alert(&all, "deployment.finished").unwrap();
    assert_eq!(done["data"]["deploymentId"].to_string(), id, "{done}");
    assert_eq!(done["data"]["failed"], 0, "{done}");
    assert_eq!(done["data"]["statuses"]["installed"], 3, "{done}");
    assert!(
        done["summary"]
            .as_str()
            .unwrap()
            .ends_with("settled: nothing failed"),
        "{done}"
    );

    // Licenses bought (Apple's ASSET_COUNT notification): the low alert is resolved.
    assert_eq!(
        e.sim_post(
            "/_sim/locations/5000000000000001/purchase",
            json!({ "adamId": "777", "count": 10 })
        )
        .await,
        204
    );
    e.until("/api/v1/alerts", "licenses.low resolved", |b| {
        alert(b, "licenses.low").is_some_and(|a| a["resolvedAt"].is_string())
    })
    .await;
    // The app's own threshold, over the global one: 11 free is low for this app now.
    let (status, set) = e
        .call(
            reqwest::Method::PUT,
            "/api/v1/apps/777/alert-threshold",
            Some(json!({ "threshold": 11 })),
        )
        .await;
    assert_eq!(status, 200, "{set}");
    assert_eq!(
        (set["threshold"].as_i64(), set["own"].as_bool()),
        (Some(11), Some(true))
    );
    let open = e
        .until(
            "/api/v1/alerts?open=true",
            "licenses.low at the app's threshold",
            |b| alert(b, "licenses.low").is_some(),
        )
        .await;
    assert_eq!(
        alert(&open, "licenses.low").unwrap()["data"]["threshold"],
        11,
        "{open}"
    );
    let (status, body) = e
        .call(
            reqwest::Method::PUT,
            "/api/v1/apps/4242/alert-threshold",
            Some(json!({ "threshold": 3 })),
        )
        .await;
    assert_eq!(status, 404, "an app no token holds: {body}");
    let (status, _) = e
        .call(
            reqwest::Method::PUT,
            "/api/v1/apps/777/alert-threshold",
            Some(json!({ "threshold": -1 })),
        )
        .await;
    assert_eq!(status, 422);
    // Back to the global threshold (1): resolved again.
    let (status, set) = e
        .call(
            reqwest::Method::PUT,
            "/api/v1/apps/777/alert-threshold",
            Some(json!({ "threshold": null })),
        )
        .await;
    assert_eq!((status, set["threshold"].as_i64()), (200, Some(1)), "{set}");
    e.until("/api/v1/alerts?open=true", "no low alert open", |b| {
        alert(b, "licenses.low").is_none()
    })
    .await;

    // What it took, counted: Apple's requests by endpoint and status with their time, the
    // commands NanoMDM queued and pushed, Apple's notifications applied.
    let m = scrape(&e).await;
    let at_least = |series: &str, n: f64| {
        assert!(
            m.get(series).copied().unwrap_or(0.0) >= n,
            "{series} ≥ {n}: {:?}",
            m.iter()
                .filter(|(k, _)| k.starts_with(series.split('{').next().unwrap()))
                .collect::<Vec<_>>()
        );
    };
    at_least(
        "allot_apple_requests_total{endpoint=\"assets/associate\",status=\"200\",error=\"\"}",
        1.0,
    );
    at_least(
        "allot_apple_requests_total{endpoint=\"client/config\",status=\"200\",error=\"\"}",
        1.0,
    );
    at_least(
        "allot_apple_request_seconds_count{endpoint=\"assignments\"}",
        1.0,
    );
    at_least(
        "allot_apple_request_seconds_bucket{endpoint=\"assignments\",le=\"+Inf\"}",
        1.0,
    );
    at_least(
        "allot_mdm_commands_total{command=\"InstallApplication\",outcome=\"queued\"}",
        3.0,
    );
    at_least("allot_mdm_pushes_total{outcome=\"sent\"}", 1.0);
    at_least(
        "allot_notifications_received_total{type=\"ASSET_COUNT\",outcome=\"applied\"}",
        1.0,
    );

    // Checked again and again, each episode is raised once: two crossings of licenses.low
    // (the global threshold, then the app's own), one deployment.finished.
    tokio::time::sleep(Duration::from_millis(400)).await;
    let (_, all) = e.call(reqwest::Method::GET, "/api/v1/alerts", None).await;
    for (event, episodes) in [("licenses.low", 2), ("deployment.finished", 1)] {
        let n = all["alerts"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|a| a["event"] == event)
            .count();
        assert_eq!(n, episodes, "{event}: {all}");
    }
}

on_both!(
    alerts_follow_a_deployment_on,
    licenses_low_and_deployment_finished_are_raised_on_sqlite,
    licenses_low_and_deployment_finished_are_raised_on_postgres
);
