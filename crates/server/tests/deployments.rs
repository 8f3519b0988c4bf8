//! Deployments executed end to end: the real server, the simulator as Apple, and the fake NanoMDM
//! whose simulated devices enroll and report through the webhook.

mod fleet;

use allot_mdm::fake::Behaviour;
use allot_store::testing::TestDb;
use fleet::{count, env, env_on};
use serde_json::json;

const SCENARIO: &str = r#"{
  "settings": { "eventDelayMs": 0, "tickMs": 5, "notificationRetryDelayMs": 50, "limits": { "maxRequestPerSecond": 0 } },
  "organizations": [ { "name": "Acme", "locations": [ { "name": "HQ", "uId": "5000000000000001",
    "assets": [ { "adamId": "777", "totalCount": 2, "name": "Two Seats" },
                { "adamId": "888", "totalCount": 1, "name": "Last Seat" },
                { "adamId": "999", "totalCount": 5, "name": "Plenty" } ] } ] } ]
}"#;

#[tokio::test]
async fn a_required_device_deployment_licenses_installs_and_runs_out_cleanly() {
    a_required_device_deployment_licenses_installs_and_runs_out_cleanly_on(TestDb::sqlite().await)
        .await;
}

/// Racing claims and guarded transitions matter most where several instances share PostgreSQL.
#[tokio::test]
async fn a_required_device_deployment_licenses_installs_and_runs_out_cleanly_on_postgres() {
    a_required_device_deployment_licenses_installs_and_runs_out_cleanly_on(
        TestDb::postgres().await,
    )
    .await;
}

async fn a_required_device_deployment_licenses_installs_and_runs_out_cleanly_on(db: TestDb) {
    let e = env_on(SCENARIO, db).await;
    e.add_token().await;

    let udids = e.devices("Cart", &["C1", "C2", "C3"]).await;
    let (status, d) = e
        .call(
            reqwest::Method::POST,
            "/api/v1/deployments",
            Some(json!({ "adamId": "777", "collection": "Cart" })),
        )
        .await;
    assert_eq!(status, 201, "{d}");
    let path = format!("/api/v1/deployments/{}", d["id"]);
    // Two licenses for three iPads: two installs go out, the third fails cleanly.
    let d = e
        .until(&path, "installs sent", |b| {
            count(b, "install_sent") == 2 && count(b, "failed") == 1
        })
        .await;
    let failed = d["targets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["status"] == "failed")
        .unwrap();
    assert_eq!(failed["detail"], "no license available");
    assert_eq!(e.assigned("777").await, 2, "Apple holds exactly two");
    for u in &udids {
        e.mdm.drain(u).await;
    }
    let d = e
        .until(&path, "installed", |b| count(b, "installed") == 2)
        .await;
    assert_eq!(
        d["targets"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|t| t["license"] == "device")
            .count(),
        3
    );
    let installed: usize = udids.iter().map(|u| e.mdm.installed_apps(u).len()).sum();
    assert_eq!(installed, 2);
    let (_, only_failed) = e
        .call(reqwest::Method::GET, &format!("{path}?status=failed"), None)
        .await;
    assert_eq!(only_failed["targets"].as_array().unwrap().len(), 1);
    let (_, paged) = e
        .call(
            reqwest::Method::GET,
            &format!("{path}?limit=2&offset=1"),
            None,
        )
        .await;
    let labels: Vec<&str> = paged["targets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["target"].as_str().unwrap())
        .collect();
    assert_eq!(labels, vec!["C2", "C3"], "pages by serial number");
    assert_eq!(
        paged["statuses"]["installed"], 2,
        "counts cover every target, not the page"
    );
    assert_eq!(
        e.call(reqwest::Method::GET, &format!("{path}?limit=5000"), None)
            .await
            .0,
        422
    );

    // A device leaves management: its license goes back to Apple (grace period 0 here).
    assert!(e.mdm.check_out(&udids[0]).await);
    let d = e
        .until(&path, "the reclaim", |b| count(b, "license_reclaimed") == 1)
        .await;
    assert_eq!(count(&d, "installed"), 1);
    // Apple works through the revoke on its own time.
    e.until_assigned("777", 1, "the license free again at Apple")
        .await;
    let (_, apps) = e
        .call(reqwest::Method::GET, "/api/v1/apps?search=two", None)
        .await;
    assert_eq!(
        (
            apps["apps"][0]["used"].as_i64(),
            apps["apps"][0]["available"].as_i64()
        ),
        (Some(1), Some(1))
    );

    // Two deployments race for the last license: exactly one gets it.
    e.devices("Left", &["L1"]).await;
    e.devices("Right", &["R1"]).await;
    let (a, b) = tokio::join!(
        e.call(
            reqwest::Method::POST,
            "/api/v1/deployments",
            Some(json!({ "adamId": "888", "collection": "Left" }))
        ),
        e.call(
            reqwest::Method::POST,
            "/api/v1/deployments",
            Some(json!({ "adamId": "888", "collection": "Right" }))
        )
    );
    let ids = [a.1["id"].clone(), b.1["id"].clone()];
    let mut winners = 0;
    for id in &ids {
        let d = e
            .until(
                &format!("/api/v1/deployments/{id}"),
                "the race to settle",
                |b| count(b, "install_sent") + count(b, "failed") == 1,
            )
            .await;
        winners += count(&d, "install_sent");
    }
    assert_eq!(winners, 1);
    assert_eq!(e.assigned("888").await, 1, "never over-assigned");

    // Waiting: a device waits until a license is bought (Apple's ASSET_COUNT tells us).
    e.devices("Queue", &["Q1"]).await;
    let (_, w) = e
        .call(
            reqwest::Method::POST,
            "/api/v1/deployments",
            Some(json!({ "adamId": "888", "collection": "Queue", "onShortage": "wait" })),
        )
        .await;
    let wpath = format!("/api/v1/deployments/{}", w["id"]);
    e.until(&wpath, "waiting", |b| count(b, "waiting_for_license") == 1)
        .await;
    e.http
        .post(format!(
            "{}/_sim/locations/5000000000000001/purchase",
            e.sim.base_url
        ))
        .json(&json!({ "adamId": "888", "count": 1 }))
        .send()
        .await
        .unwrap();
    e.until(&wpath, "the waiting device's install", |b| {
        count(b, "install_sent") == 1
    })
    .await;
    assert_eq!(e.assigned("888").await, 2);

    // A device that refuses the install: failed, with the device's words.
    let udids = e.devices("Broken", &["B1"]).await;
    e.mdm.set_behaviour(
        &udids[0],
        Behaviour::FailInstalls {
            code: 12064,
            domain: "MCMDMErrorDomain".into(),
            description: "License not found".into(),
        },
    );
    let (_, bd) = e
        .call(
            reqwest::Method::POST,
            "/api/v1/deployments",
            Some(json!({ "adamId": "999", "collection": "Broken" })),
        )
        .await;
    let bpath = format!("/api/v1/deployments/{}", bd["id"]);
    e.until(&bpath, "the install", |b| count(b, "install_sent") == 1)
        .await;
    e.mdm.drain(&udids[0]).await;
    let d = e
        .until(&bpath, "the failure", |b| count(b, "failed") == 1)
        .await;
    assert_eq!(
        d["targets"][0]["detail"],
        "install failed: the device reported: License not found (MCMDMErrorDomain 12064); its license was given back",
        "{d}"
    );
    assert_eq!(
        e.assigned("999").await,
        0,
        "a failed install does not keep the license it claimed"
    );
}

#[tokio::test]
async fn deployments_that_cannot_run_are_refused_with_the_reason() {
    let e = env(SCENARIO).await;
    e.add_token().await;
    e.devices("Cart", &["C1"]).await;
    for (body, words) in [
        (
            json!({ "adamId": "424242", "collection": "Cart" }),
            "424242",
        ),
        (
            json!({ "adamId": "777", "collection": "Cart", "action": "sideload" }),
            "must be required, available, uninstall or revoke",
        ),
        (
            json!({ "adamId": "777", "collection": "Cart", "onShortage": "later" }),
            "must be fail or wait",
        ),
        (
            json!({ "adamId": "777", "collection": "Nowhere" }),
            "Nowhere",
        ),
    ] {
        let (status, res) = e
            .call(
                reqwest::Method::POST,
                "/api/v1/deployments",
                Some(body.clone()),
            )
            .await;
        assert!(status == 422 || status == 404, "{body}: {status} {res}");
        assert!(
            res["error"]["message"].as_str().unwrap().contains(words),
            "{body}: {res}"
        );
    }
    assert_eq!(
        e.call(reqwest::Method::GET, "/api/v1/deployments", None)
            .await
            .1["deployments"],
        json!([])
    );
    let (status, res) = e
        .call(
            reqwest::Method::GET,
            "/api/v1/deployments/1?status=done",
            None,
        )
        .await;
    assert_eq!(status, 422, "{res}");
    assert!(res["error"]["message"]
        .as_str()
        .unwrap()
        .contains("not a target status"));
    let (status, _) = e
        .call(
            reqwest::Method::DELETE,
            "/api/v1/deployments/77?confirm=true",
            None,
        )
        .await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn installs_still_running_are_confirmed_with_managed_application_list() {
    let e = env(SCENARIO).await;
    e.add_token().await;
    let bundle = e.bundle_of("999").await;
    let udids = e.devices("Slow", &["W1"]).await;
    e.mdm.set_behaviour(&udids[0], Behaviour::SlowInstalls);
    let path = e
        .deploy(json!({ "adamId": "999", "collection": "Slow" }))
        .await;
    e.until(&path, "the install", |b| count(b, "install_sent") == 1)
        .await;
    e.mdm.drain(&udids[0]).await;
    let d = e
        .until(&path, "installing", |b| count(b, "installing") == 1)
        .await;
    assert_eq!(
        d["targets"][0]["detail"],
        "the device is installing (Installing)"
    );
    // The next step asks the device what it manages, once, and its answer settles it.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let asked = loop {
        let q: Vec<String> = e.mdm.queue(&udids[0]).into_iter().map(|q| q.1).collect();
        if !q.is_empty() {
            break q;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no ManagedApplicationList"
        );
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    };
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(
        e.mdm.queue(&udids[0]).len(),
        1,
        "one question at a time: {asked:?}"
    );
    assert_eq!(asked, vec!["ManagedApplicationList"]);
    e.mdm.drain(&udids[0]).await;
    e.until(&path, "installed", |b| count(b, "installed") == 1)
        .await;
    assert_eq!(e.mdm.installed_apps(&udids[0]), vec![bundle]);
}

/// Apple's ASSET_MANAGEMENT notifications end the claims: with the status poll an hour away, every
/// target is still licensed at once, no status is polled, and the licenses are counted once
/// (assigned, not also reserved), so a deployment that fails on shortage fails none of them.
#[tokio::test]
async fn notifications_end_claims_without_polling_and_count_licenses_once() {
    for db in TestDb::both().await {
        let e = fleet::env_with(SCENARIO, db, |c| {
            c.event_poll = std::time::Duration::from_secs(3600)
        })
        .await;
        e.add_token().await;
        e.devices("Lab", &["L1", "L2", "L3", "L4", "L5"]).await;
        let (status, d) = e
            .call(
                reqwest::Method::POST,
                "/api/v1/deployments",
                Some(json!({ "adamId": "999", "collection": "Lab", "onShortage": "fail" })),
            )
            .await;
        assert_eq!(status, 201, "{d}");
        let path = format!("/api/v1/deployments/{}", d["id"]);
        let d = e
            .until(&path, "licensed by notifications", |b| {
                [
                    "license_assigned",
                    "install_sent",
                    "installing",
                    "installed",
                ]
                .iter()
                .map(|s| count(b, s))
                .sum::<i64>()
                    == 5
            })
            .await;
        assert!(
            d["targets"]
                .as_array()
                .unwrap()
                .iter()
                .all(|t| t["license"] == "device" && t["status"] != "failed"),
            "{d}"
        );
        assert_eq!(e.assigned("999").await, 5, "Apple holds five");
        let stats: serde_json::Value = e
            .http
            .get(format!("{}/_sim/stats", e.sim.base_url))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(
            stats["requests"]["status"].as_u64().unwrap_or(0),
            0,
            "no event status was polled: {stats}"
        );
        let (_, apps) = e
            .call(reqwest::Method::GET, "/api/v1/apps?search=Plenty", None)
            .await;
        let app = &apps["apps"][0];
        assert_eq!(
            (
                app["total"].as_i64(),
                app["used"].as_i64(),
                app["available"].as_i64()
            ),
            (Some(5), Some(5), Some(0)),
            "{apps}"
        );
    }
}
