//! The MDM channel's failures are visible and retried: a push NanoMDM could not deliver (per id,
//! or for every id when it has no push certificate) shows on the target and in the connector's
//! status and is pushed again with backoff until the device checks in; NanoMDM refusing Allot's
//! API key shows on the targets and as the connector failing; a late report for an install that
//! had failed (NanoMDM handing the answered command out again) is not lost; a device whose
//! enrollment webhook was lost is learned from its DeviceInformation.

mod fleet;

use std::time::{Duration, Instant};

use allot_mdm::fake::PushFailure;
use fleet::{count, env_with};
use serde_json::{json, Value};

const SCENARIO: &str = r#"{
  "settings": { "eventDelayMs": 0, "tickMs": 5, "notificationRetryDelayMs": 50, "limits": { "maxRequestPerSecond": 0 } },
  "organizations": [ { "name": "Acme", "locations": [ { "name": "HQ", "uId": "5000000000000001",
    "assets": [ { "adamId": "777", "totalCount": 10, "name": "Team Chat" } ] } ] } ]
}"#;

fn quick_pushes(c: &mut allot_server::Config) {
    c.push_backoff = Duration::from_millis(100);
}

async fn failed_pushes_are_shown_and_retried_on(db: allot_store::testing::TestDb) {
    let e = env_with(SCENARIO, db, quick_pushes).await;
    e.add_token().await;
    let cart = e.devices("Cart", &["P1", "P2"]).await;
    e.mdm.set_push_failure(Some(PushFailure::Unreachable));
    let path = e
        .deploy(json!({ "adamId": "777", "collection": "Cart" }))
        .await;
    let d = e
        .until(&path, "installs queued", |b| count(b, "install_sent") == 2)
        .await;
    let detail = d["targets"][0]["detail"].as_str().unwrap_or_default();
    assert!(
        detail.contains("push to wake the device failed") && detail.contains("no such host"),
        "{d}"
    );
    let status = e
        .until("/api/v1/mdm/status", "the push failures", |s| {
            s["pushFailures"] == 2 && s["commandsWaiting"] == 2
        })
        .await;
    assert!(status["lastWebhookAt"].is_string(), "{status}");
    assert_eq!(
        status["pushCertificate"]["topic"], "com.apple.mgmt.External.fake",
        "{status}"
    );
    assert!(
        status["pushCertificate"]["notAfter"].is_string(),
        "{status}"
    );
    assert_eq!(status["state"], "ok", "NanoMDM itself answered: {status}");
    assert!(
        status["devices"][0]["error"]
            .as_str()
            .unwrap()
            .contains("api.push.apple.com"),
        "{status}"
    );
    // Pushed again, with backoff, while they fail.
    let deadline = Instant::now() + Duration::from_secs(20);
    while !e.mdm.pushes().iter().any(|ids| ids.contains(&cart[0])) {
        assert!(Instant::now() < deadline, "no push retry");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    // Apple's push service is back: the next retry reaches them.
    e.mdm.set_push_failure(None);
    e.until("/api/v1/mdm/status", "pushes delivered", |s| {
        s["pushFailures"] == 0
    })
    .await;

    // No push certificate: one error for every id; the device checking in clears it.
    e.mdm.set_push_failure(Some(PushFailure::NoCertificate));
    let more = e.devices("Cart", &["P3"]).await;
    let status: Value = e
        .until("/api/v1/mdm/status", "P3's push failure", |s| {
            s["pushFailures"] == 1
        })
        .await;
    assert!(
        status["devices"][0]["error"]
            .as_str()
            .unwrap()
            .contains("push cert"),
        "{status}"
    );
    assert!(
        status["pushCertificateError"]
            .as_str()
            .is_some_and(|e| e.contains("push cert")),
        "{status}"
    );
    e.drain_all(&more).await;
    e.until("/api/v1/mdm/status", "cleared by the check-in", |s| {
        s["pushFailures"] == 0
    })
    .await;
    e.drain_all(&cart).await;
    e.until(&path, "installed", |b| count(b, "installed") == 3)
        .await;
}

#[tokio::test]
async fn failed_pushes_are_shown_and_retried() {
    failed_pushes_are_shown_and_retried_on(allot_store::testing::TestDb::sqlite().await).await;
}

#[tokio::test]
async fn failed_pushes_are_shown_and_retried_on_postgres() {
    failed_pushes_are_shown_and_retried_on(allot_store::testing::TestDb::postgres().await).await;
}

#[tokio::test]
async fn a_wrong_mdm_api_key_shows_on_the_targets_and_the_connector() {
    let e = env_with(
        SCENARIO,
        allot_store::testing::TestDb::sqlite().await,
        |c| c.nanomdm_api_key = Some("not-the-key".into()),
    )
    .await;
    e.add_token().await;
    e.devices("Cart", &["K1"]).await;
    let path = e
        .deploy(json!({ "adamId": "777", "collection": "Cart" }))
        .await;
    let d = e
        .until(&path, "the refusal on the target", |b| {
            b["targets"][0]["detail"]
                .as_str()
                .is_some_and(|d| d.contains("API key"))
        })
        .await;
    assert_eq!(count(&d, "license_assigned"), 1, "licensed, not sent: {d}");
    let status = e
        .until("/api/v1/mdm/status", "the connector failing", |s| {
            s["state"] == "failing"
        })
        .await;
    assert!(
        status["lastError"].as_str().unwrap().contains("401"),
        "{status}"
    );
}

/// NanoMDM hands an answered InstallApplication out again after the install had failed and its
/// license had gone back; this time the device installs it: the target is licensed again, not left
/// installed with no license tracked.
#[tokio::test]
async fn a_late_success_after_a_failed_install_licenses_it_again() {
    let e = env_with(
        SCENARIO,
        allot_store::testing::TestDb::sqlite().await,
        quick_pushes,
    )
    .await;
    e.add_token().await;
    let udids = e.devices("Broken", &["B1"]).await;
    e.mdm.set_behaviour(
        &udids[0],
        allot_mdm::fake::Behaviour::FailInstalls {
            code: 12064,
            domain: "MCMDMErrorDomain".into(),
            description: "License not found".into(),
        },
    );
    let path = e
        .deploy(json!({ "adamId": "777", "collection": "Broken" }))
        .await;
    e.until(&path, "the install", |b| count(b, "install_sent") == 1)
        .await;
    let uuid = e.mdm.queue(&udids[0])[0].0.clone();
    e.mdm.drain(&udids[0]).await;
    e.until(&path, "the failure", |b| count(b, "failed") == 1)
        .await;
    e.until_assigned("777", 0, "the failed install's license given back")
        .await;
    e.mdm
        .set_behaviour(&udids[0], allot_mdm::fake::Behaviour::Accept);
    assert!(e.mdm.hand_out_again(&udids[0], &uuid));
    e.mdm.check_in(&udids[0]).await;
    e.until(&path, "licensed again and sent", |b| {
        count(b, "install_sent") == 1
    })
    .await;
    e.until_assigned("777", 1, "the app on the device has its license")
        .await;
    e.drain_all(&udids).await;
    e.until(&path, "installed", |b| count(b, "installed") == 1)
        .await;
}

/// NanoMDM delivers each webhook once: a device whose Authenticate was lost is known only by its
/// enrollment id (TokenUpdate). Allot asks it for its DeviceInformation and learns it.
#[tokio::test]
async fn a_device_whose_enrollment_webhook_was_lost_is_learned() {
    let e = env_with(
        SCENARIO,
        allot_store::testing::TestDb::sqlite().await,
        quick_pushes,
    )
    .await;
    e.add_token().await;
    let udid = "UDID-LOST1".to_owned();
    assert!(
        e.mdm
            .enroll_losing_authenticate(allot_mdm::fake::SimDevice {
                udid: udid.clone(),
                serial_number: "LOST1".into(),
                product_name: "iPad13,1".into(),
                name: "Lost iPad".into(),
            })
            .await
    );
    assert_eq!(
        e.call(reqwest::Method::GET, "/api/v1/devices/LOST1", None)
            .await
            .0,
        404,
        "not known yet"
    );
    let queued = e.mdm.queue(&udid);
    assert_eq!(queued.len(), 1, "{queued:?}");
    assert_eq!(queued[0].1, "DeviceInformation");
    e.mdm.check_in(&udid).await;
    let (status, d) = e
        .call(reqwest::Method::GET, "/api/v1/devices/LOST1", None)
        .await;
    assert_eq!(status, 200, "{d}");
    assert_eq!(
        (d["enrollmentId"].as_str(), d["platform"].as_str()),
        (Some("UDID-LOST1"), Some("iPadOS")),
        "{d}"
    );
    // Known now: a deployment reaches it.
    let (status, _) = e
        .call(
            reqwest::Method::POST,
            "/api/v1/collections",
            Some(json!({ "name": "Found", "kind": "devices" })),
        )
        .await;
    assert_eq!(status, 201);
    e.call(
        reqwest::Method::POST,
        "/api/v1/collections/Found/members",
        Some(json!({ "members": ["LOST1"] })),
    )
    .await;
    let path = e
        .deploy(json!({ "adamId": "777", "collection": "Found" }))
        .await;
    e.until(&path, "the install sent", |b| count(b, "install_sent") == 1)
        .await;

    // Or the admin gives the enrollment id by hand; it is checked, and one device's only.
    for (body, want) in [
        (
            json!({ "serialNumber": "HAND1", "platform": "iPadOS", "enrollmentId": "UDID-HAND1" }),
            201,
        ),
        (
            json!({ "serialNumber": "HAND2", "platform": "iPadOS", "enrollmentId": "not an id" }),
            422,
        ),
        (
            json!({ "serialNumber": "HAND3", "platform": "iPadOS", "enrollmentId": "UDID-LOST1" }),
            409,
        ),
    ] {
        let (status, res) = e
            .call(reqwest::Method::POST, "/api/v1/devices", Some(body.clone()))
            .await;
        assert_eq!(status, want, "{body} → {res}");
    }
}
