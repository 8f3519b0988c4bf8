//! The MDM channel's failures are visible and retried: a push NanoMDM could not deliver (per id,
//! or for every id when it has no push certificate) shows on the target and in the connector's
//! status and is pushed again with backoff until the device checks in; NanoMDM refusing Allot's
//! API key shows on the targets and as the connector failing; a late report for an install that
//! had failed (NanoMDM handing the answered command out again) is not lost; a device whose
//! enrollment webhook was lost is learned from its DeviceInformation.

#[macro_use]
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

/// A Required deployment of 777 to one device whose install fails (its license given back);
/// the device accepts installs again afterwards. Returns its enrollment ids, the deployment's
/// path and the failed command's uuid.
async fn failed_install(
    e: &fleet::Env,
    collection: &str,
    serial: &str,
) -> (Vec<String>, String, String) {
    let udids = e.devices(collection, &[serial]).await;
    e.mdm.set_behaviour(
        &udids[0],
        allot_mdm::fake::Behaviour::FailInstalls {
            code: 12064,
            domain: "MCMDMErrorDomain".into(),
            description: "License not found".into(),
        },
    );
    let path = e
        .deploy(json!({ "adamId": "777", "collection": collection }))
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
    (udids, path, uuid)
}

fn quick_pushes(c: &mut allot_server::Config) {
    c.push_backoff = Duration::from_millis(100);
}

on_both!(
    failed_pushes_are_shown_and_retried_on,
    failed_pushes_are_shown_and_retried,
    failed_pushes_are_shown_and_retried_on_postgres
);

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
    assert_eq!(status["pushFailuresLastHour"], 2, "{status}");
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
    let status = e
        .until("/api/v1/mdm/status", "pushes delivered", |s| {
            s["pushFailures"] == 0
        })
        .await;
    assert_eq!(
        status["pushFailuresLastHour"], 2,
        "the hour's failures are still counted once delivered: {status}"
    );

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

on_both!(
    a_wrong_mdm_api_key_shows_on_the_targets_and_the_connector_on,
    a_wrong_mdm_api_key_shows_on_the_targets_and_the_connector,
    a_wrong_mdm_api_key_shows_on_the_targets_and_the_connector_on_postgres
);

async fn a_wrong_mdm_api_key_shows_on_the_targets_and_the_connector_on(
    db: allot_store::testing::TestDb,
) {
    let e = env_with(SCENARIO, db, |c| {
        c.nanomdm_api_key = Some("not-the-key".into())
    })
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

// NanoMDM hands an answered InstallApplication out again after the install had failed and its
// license had gone back; this time the device installs it: the target is licensed again, not left
// installed with no license tracked.
on_both!(
    a_late_success_after_a_failed_install_licenses_it_again_on,
    a_late_success_after_a_failed_install_licenses_it_again,
    a_late_success_after_a_failed_install_licenses_it_again_on_postgres
);

async fn a_late_success_after_a_failed_install_licenses_it_again_on(
    db: allot_store::testing::TestDb,
) {
    let e = env_with(SCENARIO, db, quick_pushes).await;
    e.add_token().await;
    let (udids, path, uuid) = failed_install(&e, "Broken", "B1").await;
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

// NanoMDM delivers each webhook once: a device whose Authenticate was lost is known only by its
// enrollment id (TokenUpdate). Allot asks it for its DeviceInformation and learns it.
on_both!(
    a_device_whose_enrollment_webhook_was_lost_is_learned_on,
    a_device_whose_enrollment_webhook_was_lost_is_learned,
    a_device_whose_enrollment_webhook_was_lost_is_learned_on_postgres
);

async fn a_device_whose_enrollment_webhook_was_lost_is_learned_on(
    db: allot_store::testing::TestDb,
) {
    let e = env_with(SCENARIO, db, quick_pushes).await;
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

// NanoMDM down (a proxy answering 502): the targets and the connector say so, Allot backs off
// instead of calling it every pass, and everything goes out once it is back.
on_both!(
    an_mdm_outage_is_backed_off_and_recovered_on,
    an_mdm_outage_is_backed_off_and_recovered,
    an_mdm_outage_is_backed_off_and_recovered_on_postgres
);

async fn an_mdm_outage_is_backed_off_and_recovered_on(db: allot_store::testing::TestDb) {
    let e = env_with(SCENARIO, db, |c| {
        c.mdm_backoff = Duration::from_millis(400);
    })
    .await;
    e.add_token().await;
    let udids = e.devices("Cart", &["O1"]).await;
    e.mdm.set_outage(Some(502));
    let path = e
        .deploy(json!({ "adamId": "777", "collection": "Cart" }))
        .await;
    let d = e
        .until(&path, "the outage on the target", |b| {
            b["targets"][0]["detail"]
                .as_str()
                .is_some_and(|d| d.contains("NanoMDM answered HTTP 502 Bad Gateway: fake outage"))
        })
        .await;
    assert_eq!(count(&d, "license_assigned"), 1, "licensed, not sent: {d}");
    let status = e
        .until("/api/v1/mdm/status", "the connector failing", |s| {
            s["state"] == "failing" && s["nextAttemptAt"].is_string()
        })
        .await;
    assert!(
        status["nextAttemptAt"].as_str() >= status["lastErrorAt"].as_str(),
        "{status}"
    );
    // The loop passes every 50 ms; with waits of 0.4 s, 0.8 s, 1.6 s… NanoMDM is called a few
    // times in 1.5 s, not thirty.
    let before = e.mdm.calls();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let during = e.mdm.calls() - before;
    assert!(
        (1..=4).contains(&during),
        "{during} calls to NanoMDM while it was down"
    );
    e.mdm.set_outage(None);
    e.until_answering(&path, &udids, "installed once NanoMDM is back", |b| {
        count(b, "installed") == 1
    })
    .await;
    let status = e
        .until("/api/v1/mdm/status", "the connector well again", |s| {
            s["state"] == "ok"
        })
        .await;
    assert!(status["nextAttemptAt"].is_null(), "{status}");
}

// A device's OS version comes with its enrollment and is asked again periodically
// (DeviceInformation), so an update on the device shows in Allot.
on_both!(
    device_os_versions_are_learned_and_refreshed_on,
    device_os_versions_are_learned_and_refreshed,
    device_os_versions_are_learned_and_refreshed_on_postgres
);

async fn device_os_versions_are_learned_and_refreshed_on(db: allot_store::testing::TestDb) {
    let e = env_with(SCENARIO, db, |c| {
        c.device_info_interval = Duration::from_millis(300);
    })
    .await;
    let ipads = e.devices("Cart", &["F1"]).await;
    e.devices_of("Macs", &["M1"], "Mac14,2").await;
    for (serial, want) in [("F1", "17.4"), ("M1", "15.5")] {
        let (status, d) = e
            .call(
                reqwest::Method::GET,
                &format!("/api/v1/devices/{serial}"),
                None,
            )
            .await;
        assert_eq!(status, 200, "{d}");
        assert_eq!(d["osVersion"], want, "from its Authenticate: {d}");
        assert!(d["osVersionReportedAt"].is_string(), "{d}");
    }
    e.mdm.set_os_version(&ipads[0], "18.1");
    let d = e
        .until_answering("/api/v1/devices/F1", &ipads, "the update seen", |d| {
            d["osVersion"] == "18.1"
        })
        .await;
    assert_eq!(d["model"], "iPad13,1", "{d}");
    // The device list says it too.
    let (_, list) = e
        .call(reqwest::Method::GET, "/api/v1/devices?search=F1", None)
        .await;
    assert_eq!(list["devices"][0]["osVersion"], "18.1", "{list}");
}

// NanoMDM hands an old InstallApplication out again after the app's intent became an Uninstall
// (the Required deployment superseded, its target no longer waiting for that command): the app
// lands on the device, and Allot asks the device for its apps at once and removes it again,
// without waiting for the daily question.
on_both!(
    a_late_install_under_an_uninstall_is_removed_again_on,
    a_late_install_under_an_uninstall_is_removed_again,
    a_late_install_under_an_uninstall_is_removed_again_on_postgres
);

async fn a_late_install_under_an_uninstall_is_removed_again_on(db: allot_store::testing::TestDb) {
    let e = env_with(SCENARIO, db, quick_pushes).await;
    e.add_token().await;
    let bundle = e.bundle_of("777").await;
    let (udids, required, old_install) = failed_install(&e, "Shared", "L1").await;
    let (status, res) = e
        .call(
            reqwest::Method::POST,
            "/api/v1/deployments",
            Some(json!({ "adamId": "777", "collection": "Shared", "action": "uninstall", "supersede": true })),
        )
        .await;
    assert_eq!(status, 201, "{res}");
    let uninstall = format!("/api/v1/deployments/{}", res["id"]);
    e.until_answering(&uninstall, &udids, "the removal done", |d| {
        count(d, "uninstalled") + count(d, "license_reclaimed") == 1
    })
    .await;
    assert!(!e.mdm.installed_apps(&udids[0]).contains(&bundle));
    // The old install comes back from NanoMDM's queue and this time succeeds.
    assert!(e.mdm.hand_out_again(&udids[0], &old_install));
    e.mdm.drain(&udids[0]).await;
    assert!(
        e.mdm.installed_apps(&udids[0]).contains(&bundle),
        "the late install landed"
    );
    let d = e
        .until_answering(&uninstall, &udids, "removed again", |_| {
            !e.mdm.installed_apps(&udids[0]).contains(&bundle)
        })
        .await;
    assert_eq!(count(&d, "failed"), 0, "{d}");
    let (_, r) = e.call(reqwest::Method::GET, &required, None).await;
    assert_eq!(
        count(&r, "installed"),
        0,
        "the Required one stays superseded: {r}"
    );
}
