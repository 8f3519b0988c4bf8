//! Statuses observed, not remembered: each device is asked for its managed apps periodically, and
//! what it says moves the targets — an app deleted on the device is installed again, a device
//! running an older version than the store's gets the update, and an app an Uninstall removed
//! that came back is removed again.

mod fleet;

use std::time::Duration;

use allot_apple_sim::catalog::external_id;
use fleet::{count, env_with, Env};
use serde_json::{json, Value};

const SCENARIO: &str = r#"{
  "settings": { "eventDelayMs": 0, "tickMs": 5, "notificationRetryDelayMs": 50, "limits": { "maxRequestPerSecond": 0 } },
  "organizations": [ { "name": "Acme", "locations": [ { "name": "HQ", "uId": "5000000000000001",
    "assets": [ { "adamId": "777", "totalCount": 10, "name": "Team Chat", "version": "1.0", "bundleId": "com.example.chat" },
               { "adamId": "888", "totalCount": 10, "name": "Old Game", "bundleId": "com.example.game" } ] } ] } ]
}"#;

fn status_of(d: &Value, label: &str) -> String {
    d["targets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["target"] == label)
        .map(|t| t["status"].as_str().unwrap().to_owned())
        .unwrap_or_default()
}

async fn what_devices_say_moves_the_targets_on(e: Env) {
    let token = e.add_token().await;
    let cart = e.devices("Cart", &["C1", "C2"]).await;
    let bundle = e.bundle_of("777").await;
    e.mdm.set_store_version(777, external_id("1.0"));
    let path = e.installed("777", "Cart", &cart).await;
    assert_eq!(
        e.mdm.app_version(&cart[0], &bundle),
        Some(external_id("1.0"))
    );

    // The user deletes the app on C1: the next app list says so, and it is installed again.
    e.mdm.remove_app_behind(&cart[0], &bundle);
    e.until_answering(&path, &cart, "C1 installed again", |d| {
        e.mdm.installed_apps(&cart[0]).contains(&bundle)
            && status_of(d, "C1") == "installed"
            && count(d, "installed") == 2
    })
    .await;
    let reinstalls = e
        .mdm
        .enqueued()
        .iter()
        .filter(|(ids, bytes)| {
            ids.contains(&cart[0])
                && allot_mdm::commands::parse_command(bytes)
                    .is_some_and(|c| c.1 == "InstallApplication")
        })
        .count();
    assert_eq!(reinstalls, 2, "installed, then installed again");
    assert_eq!(e.assigned("777").await, 2, "no second license");
    // What the device says is kept with its time.
    let device = e
        .until_answering("/api/v1/devices/C1", &cart, "C1's app list", |d| {
            d["apps"]
                .as_array()
                .is_some_and(|a| a.iter().any(|x| x["bundleId"] == bundle.as_str()))
        })
        .await;
    assert!(device["apps"][0]["reportedAt"].is_string(), "{device}");

    // The store publishes 1.1: after the next sync reads it, devices on 1.0 are updated.
    assert_eq!(
        e.sim_post("/_sim/apps/777/version", json!({ "version": "1.1" }))
            .await,
        200
    );
    e.mdm.set_store_version(777, external_id("1.1"));
    let (status, _) = e
        .call(
            reqwest::Method::POST,
            &format!("/api/v1/tokens/{token}/sync"),
            Some(json!({})),
        )
        .await;
    assert!(status == 202 || status == 200, "sync started: {status}");
    e.until_answering(&path, &cart, "both updated", |_| {
        cart.iter()
            .all(|u| e.mdm.app_version(u, &bundle) == Some(external_id("1.1")))
    })
    .await;
    e.until_answering(&path, &cart, "installed again", |d| {
        count(d, "installed") == 2
    })
    .await;

    // An Uninstall: removed; the app comes back on C2 behind Allot's back: removed again.
    let game = e.bundle_of("888").await;
    let old = e.installed("888", "Cart", &cart).await;
    let (status, res) = e
        .call(
            reqwest::Method::POST,
            "/api/v1/deployments",
            Some(json!({ "adamId": "888", "collection": "Cart", "action": "uninstall", "supersede": true })),
        )
        .await;
    assert_eq!(status, 201, "{res}");
    let uninstall = format!("/api/v1/deployments/{}", res["id"]);
    e.until_answering(&uninstall, &cart, "removed", |d| {
        count(d, "license_reclaimed") == 2
    })
    .await;
    assert!(!e.mdm.installed_apps(&cart[1]).contains(&game));
    e.mdm.install_app_behind(&cart[1], &game, 888);
    e.until_answering(&uninstall, &cart, "removed again", |_| {
        !e.mdm.installed_apps(&cart[1]).contains(&game)
    })
    .await;
    let (_, d) = e.call(reqwest::Method::GET, &old, None).await;
    assert_eq!(
        count(&d, "installed"),
        0,
        "the Required one stays superseded: {d}"
    );
}

fn quick_app_lists(c: &mut allot_server::Config) {
    c.app_list_interval = Duration::from_millis(300);
    c.metadata_max_age = Duration::from_millis(1);
}

#[tokio::test]
async fn what_devices_say_moves_the_targets() {
    what_devices_say_moves_the_targets_on(
        env_with(
            SCENARIO,
            allot_store::testing::TestDb::sqlite().await,
            quick_app_lists,
        )
        .await,
    )
    .await;
}

#[tokio::test]
async fn what_devices_say_moves_the_targets_on_postgres() {
    what_devices_say_moves_the_targets_on(
        env_with(
            SCENARIO,
            allot_store::testing::TestDb::postgres().await,
            quick_app_lists,
        )
        .await,
    )
    .await;
}
