//! Licenses coming back, end to end: Uninstall (removed from the device, then given back),
//! Revoke (given back, the app stays), people who leave, Available apps claimed only on request,
//! a device enrolling again, deleting a deployment, and a server that dies mid-deployment.

mod fleet;

use std::time::Duration;

use fleet::{count, env, env_on};
use serde_json::{json, Value};

const SCENARIO: &str = r#"{
  "settings": { "eventDelayMs": 0, "tickMs": 5, "notificationRetryDelayMs": 50, "limits": { "maxRequestPerSecond": 0 } },
  "organizations": [ { "name": "Acme", "managedAppleIdDomain": "acme.example", "locations": [ { "name": "HQ", "uId": "5000000000000001",
    "assets": [ { "adamId": "777", "totalCount": 10, "name": "Team Chat" },
                { "adamId": "555", "totalCount": 5, "name": "Pro Editor", "deviceAssignable": false },
                { "adamId": "999", "totalCount": 5, "name": "Help Desk" } ] } ] } ]
}"#;

#[tokio::test]
async fn uninstall_and_revoke_give_licenses_back_and_deployments_can_be_deleted() {
    uninstall_and_revoke_give_licenses_back_and_deployments_can_be_deleted_on(
        allot_store::testing::TestDb::sqlite().await,
    )
    .await;
}

#[tokio::test]
async fn uninstall_and_revoke_give_licenses_back_and_deployments_can_be_deleted_on_postgres() {
    uninstall_and_revoke_give_licenses_back_and_deployments_can_be_deleted_on(
        allot_store::testing::TestDb::postgres().await,
    )
    .await;
}

async fn uninstall_and_revoke_give_licenses_back_and_deployments_can_be_deleted_on(
    db: allot_store::testing::TestDb,
) {
    let e = env_on(SCENARIO, db).await;
    e.add_token().await;
    let bundle = e.bundle_of("777").await;
    let cart = e.devices("Cart", &["C1", "C2"]).await;
    e.installed("777", "Cart", &cart).await;
    assert_eq!(e.assigned("777").await, 2);
    assert_eq!(e.mdm.installed_apps(&cart[0]), vec![bundle.clone()]);

    // Uninstall contradicts the Required deployment of the same app to the same devices: refused
    // unless asked for, and then it owns those targets.
    let (status, res) = e
        .call(
            reqwest::Method::POST,
            "/api/v1/deployments",
            Some(json!({ "adamId": "777", "collection": "Cart", "action": "uninstall" })),
        )
        .await;
    assert_eq!(status, 409, "{res}");
    assert!(
        res["error"]["message"]
            .as_str()
            .unwrap()
            .contains("deployment 1"),
        "{res}"
    );
    let (status, res) = e
        .call(
            reqwest::Method::POST,
            "/api/v1/deployments",
            Some(json!({ "adamId": "777", "collection": "Cart" })),
        )
        .await;
    assert_eq!(status, 409, "an identical deployment: {res}");
    // Uninstall: RemoveApplication first, the license only once the device removed the app.
    let removal = e
        .deploy(json!({ "adamId": "777", "collection": "Cart", "action": "uninstall", "supersede": true }))
        .await;
    e.until(&removal, "removals sent", |b| count(b, "remove_sent") == 2)
        .await;
    assert_eq!(e.assigned("777").await, 2, "licenses stay until removal");
    let kinds: Vec<String> = e.mdm.queue(&cart[0]).into_iter().map(|q| q.1).collect();
    assert_eq!(kinds, vec!["RemoveApplication"]);
    e.drain_all(&cart).await;
    let d = e
        .until(&removal, "licenses reclaimed", |b| {
            count(b, "license_reclaimed") == 2
        })
        .await;
    assert_eq!(
        d["targets"][0]["detail"],
        "removed; its license was given back"
    );
    assert_eq!(e.assigned("777").await, 0);
    assert!(e.mdm.installed_apps(&cart[0]).is_empty());
    // The Required deployment no longer says "installed": the Uninstall owns its targets.
    let required = e
        .until("/api/v1/deployments/1", "superseded", |b| {
            count(b, "superseded") == 2
        })
        .await;
    assert_eq!(count(&required, "installed"), 0, "{required}");
    let removal_id: i64 = removal.rsplit('/').next().unwrap().parse().unwrap();
    assert_eq!(required["targets"][0]["supersededBy"], removal_id);
    let (_, apps) = e
        .call(reqwest::Method::GET, "/api/v1/apps?search=chat", None)
        .await;
    assert_eq!(apps["apps"][0]["used"], 0, "{apps}");

    // Revoke: the license goes back, the app stays on the device.
    let keep = e.devices("Keep", &["K1"]).await;
    e.installed("777", "Keep", &keep).await;
    let revoke = e
        .deploy(
            json!({ "adamId": "777", "collection": "Keep", "action": "revoke", "supersede": true }),
        )
        .await;
    e.until(&revoke, "revoked", |b| count(b, "license_reclaimed") == 1)
        .await;
    assert_eq!(e.assigned("777").await, 0);
    assert_eq!(e.mdm.installed_apps(&keep[0]), vec![bundle]);
    // Revoking what holds no license says so.
    let empty = e.devices("Empty", &["E1"]).await;
    let nothing = e
        .deploy(json!({ "adamId": "777", "collection": "Empty", "action": "revoke" }))
        .await;
    e.until(&nothing, "nothing to revoke", |b| {
        count(b, "no_license") == 1
    })
    .await;
    assert!(e.mdm.queue(&empty[0]).is_empty());

    // Deleting a finished deployment: only when confirmed.
    let (status, res) = e.call(reqwest::Method::DELETE, &revoke, None).await;
    assert_eq!(status, 400, "{res}");
    assert!(res["error"]["message"]
        .as_str()
        .unwrap()
        .contains("confirm=true"));
    assert_eq!(e.call(reqwest::Method::GET, &revoke, None).await.0, 200);
    let confirmed = format!("{revoke}?confirm=true");
    let (status, _) = e.call(reqwest::Method::DELETE, &confirmed, None).await;
    assert_eq!(status, 204);
    assert_eq!(e.call(reqwest::Method::GET, &revoke, None).await.0, 404);
    assert_eq!(
        e.call(reqwest::Method::DELETE, &confirmed, None).await.0,
        404
    );
}

#[tokio::test]
async fn available_apps_are_licensed_only_when_asked_for() {
    let e = env(SCENARIO).await;
    e.add_token().await;
    let shelf = e.devices("Shelf", &["S1", "S2"]).await;
    let path = e
        .deploy(json!({ "adamId": "999", "collection": "Shelf", "action": "available" }))
        .await;
    e.until(&path, "offered", |b| count(b, "available") == 2)
        .await;
    assert_eq!(e.assigned("999").await, 0, "nothing claimed on offer");
    let (status, t) = e
        .call(
            reqwest::Method::POST,
            &format!("{path}/requests"),
            Some(json!({ "target": "S2" })),
        )
        .await;
    assert_eq!(status, 202, "{t}");
    assert_eq!(t["status"], "requested");
    e.until(&path, "the requested install", |b| {
        count(b, "install_sent") == 1
    })
    .await;
    e.drain_all(&shelf).await;
    e.until(&path, "installed", |b| count(b, "installed") == 1)
        .await;
    assert_eq!(e.assigned("999").await, 1);
    assert!(e.mdm.installed_apps(&shelf[0]).is_empty(), "S1 never asked");
    // Asking as a stranger, or of a Required deployment, is refused with the reason.
    let (status, res) = e
        .call(
            reqwest::Method::POST,
            &format!("{path}/requests"),
            Some(json!({ "target": "ZZ9" })),
        )
        .await;
    assert_eq!(status, 404, "{res}");
    let cart = e.devices("Cart", &["C1"]).await;
    let required = e.installed("777", "Cart", &cart).await;
    let (status, res) = e
        .call(
            reqwest::Method::POST,
            &format!("{required}/requests"),
            Some(json!({ "target": "C1" })),
        )
        .await;
    assert_eq!(status, 409, "{res}");
}

#[tokio::test]
async fn people_who_leave_give_their_licenses_back() {
    let e = env(SCENARIO).await;
    e.add_token().await;
    let (_, pat) = e
        .call(
            reqwest::Method::POST,
            "/api/v1/users",
            Some(json!({ "name": "Pat", "email": "pat@acme.example", "managedAppleId": "pat@acme.example" })),
        )
        .await;
    e.call(
        reqwest::Method::POST,
        "/api/v1/devices",
        Some(json!({ "serialNumber": "P1", "platform": "iOS", "user": "pat@acme.example" })),
    )
    .await;
    let udids = e.devices("Phones", &["P1"]).await;
    // 555 is user-licensed only: Pat's license.
    let path = e.installed("555", "Phones", &udids).await;
    assert_eq!(e.assigned("555").await, 1);
    let (status, _) = e
        .call(
            reqwest::Method::DELETE,
            "/api/v1/users/pat@acme.example?confirm=true",
            None,
        )
        .await;
    assert_eq!(status, 204);
    let d = e
        .until(&path, "the reclaim", |b| count(b, "license_reclaimed") == 1)
        .await;
    assert_eq!(
        d["targets"][0]["detail"],
        "the person left; their license was given back"
    );
    e.until_assigned("555", 0, "Apple to revoke the leaver's license")
        .await;
    // Apple retires the user on its own time.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let state = e.sim_state().await;
        let users: Vec<Value> = state["locations"][0]["users"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|u| u["clientUserId"] == pat["clientUserId"])
            .cloned()
            .collect();
        assert_eq!(users.len(), 1, "{state}");
        if users[0]["status"] == "Retired" {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "Pat was not retired: {state}"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let (_, pat_now) = e
        .call(reqwest::Method::GET, "/api/v1/users/pat@acme.example", None)
        .await;
    assert_eq!(pat_now["program"][0]["terms"], "retired", "{pat_now}");
}

#[tokio::test]
async fn a_device_enrolling_again_gets_its_install_again() {
    let e = env(SCENARIO).await;
    e.add_token().await;
    let udids = e.devices("Cart", &["R1"]).await;
    let path = e
        .deploy(json!({ "adamId": "777", "collection": "Cart" }))
        .await;
    e.until(&path, "install sent", |b| count(b, "install_sent") == 1)
        .await;
    let first = e.mdm.queue(&udids[0]);
    // Enrolling again wipes NanoMDM's queue of the device.
    assert!(
        e.mdm
            .enroll(allot_mdm::fake::SimDevice {
                udid: udids[0].clone(),
                serial_number: "R1".into(),
                product_name: "iPad13,1".into(),
                name: "R1".into(),
            })
            .await
    );
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while e.mdm.queue(&udids[0]).is_empty() || e.mdm.queue(&udids[0]) == first {
        assert!(
            std::time::Instant::now() < deadline,
            "the install was not sent again"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    e.drain_all(&udids).await;
    e.until(&path, "installed", |b| count(b, "installed") == 1)
        .await;
    assert_eq!(e.assigned("777").await, 1, "one license, not two");
}

#[tokio::test]
async fn a_server_that_dies_mid_deployment_finishes_it_without_duplicates() {
    a_server_that_dies_mid_deployment_finishes_it_without_duplicates_on(
        allot_store::testing::TestDb::sqlite().await,
    )
    .await;
}

#[tokio::test]
async fn a_server_that_dies_mid_deployment_finishes_it_without_duplicates_on_postgres() {
    a_server_that_dies_mid_deployment_finishes_it_without_duplicates_on(
        allot_store::testing::TestDb::postgres().await,
    )
    .await;
}

async fn a_server_that_dies_mid_deployment_finishes_it_without_duplicates_on(
    db: allot_store::testing::TestDb,
) {
    // Apple takes a while with each event, so the server dies while licenses are requested.
    let slow = SCENARIO.replace("\"eventDelayMs\": 0", "\"eventDelayMs\": 1500");
    let mut e = env_on(&slow, db).await;
    e.add_token().await;
    let serials: Vec<String> = (1..=30).map(|i| format!("M{i:02}")).collect();
    let refs: Vec<&str> = serials.iter().map(String::as_str).collect();
    let udids = e.devices("Lab", &refs).await;
    let path = e
        .deploy(json!({ "adamId": "777", "collection": "Lab", "onShortage": "wait" }))
        .await;
    e.until(&path, "licenses requested", |b| {
        count(b, "license_requested") + count(b, "waiting_for_license") == 30
    })
    .await;
    e.crash_and_restart().await;
    e.until(&path, "installs after the restart", |b| {
        count(b, "install_sent") == 10
    })
    .await;
    e.drain_all(&udids).await;
    let d = e
        .until(&path, "installed", |b| count(b, "installed") == 10)
        .await;
    assert_eq!(count(&d, "waiting_for_license"), 20, "{d}");
    assert_eq!(e.assigned("777").await, 10, "never more than bought");
    let stats = e.sim_stats().await;
    assert_eq!(
        stats["requests"]["assets/associate"], 1,
        "the request in flight was followed, not sent again: {stats}"
    );
    let installs: usize = udids
        .iter()
        .map(|u| {
            e.mdm
                .enqueued()
                .iter()
                .filter(|(ids, _)| ids.contains(u))
                .count()
        })
        .sum();
    assert_eq!(installs, 10, "one install per licensed device");
}
