//! What a deployment takes back: members that leave its collection (`onLeave` revoke or
//! uninstall) and deployments deleted with `then` revoke or uninstall — never what another
//! deployment in force still gives the same member. And the install options reach the device.

mod fleet;

use fleet::{count, env_on, target, Env};
use serde_json::json;

const SCENARIO: &str = r#"{
  "settings": { "eventDelayMs": 0, "tickMs": 5, "notificationRetryDelayMs": 50, "limits": { "maxRequestPerSecond": 0 } },
  "organizations": [ { "name": "Acme", "locations": [ { "name": "HQ", "uId": "5000000000000001",
    "assets": [ { "adamId": "777", "totalCount": 10, "name": "Team Chat", "supportedPlatforms": ["iOS", "macOS"] } ] } ] } ]
}"#;

async fn remove_member(e: &Env, collection: &str, serial: &str) {
    let (status, res) = e
        .call(
            reqwest::Method::DELETE,
            &format!("/api/v1/collections/{collection}/members"),
            Some(json!({ "members": [serial] })),
        )
        .await;
    assert_eq!(status, 200, "{res}");
}

/// The InstallApplication plist last queued for a device.
fn last_install(e: &Env, udid: &str) -> allot_mdm::plist::Dictionary {
    e.mdm
        .enqueued()
        .into_iter()
        .rev()
        .filter(|(ids, _)| ids.iter().any(|i| i == udid))
        .filter_map(|(_, bytes)| allot_mdm::commands::parse_command(&bytes))
        .find(|(_, kind, _)| kind == "InstallApplication")
        .map(|(_, _, cmd)| cmd)
        .expect("an install was queued")
}

async fn members_leaving_give_back_on(e: Env) {
    e.add_token().await;
    let cart = e.devices("Cart", &["C1", "C2", "C3"]).await;
    let bundle = e.bundle_of("777").await;
    let path = e
        .deploy(
            json!({ "adamId": "777", "collection": "Cart", "onLeave": "uninstall",
                        "options": { "preventBackup": true, "removable": false } }),
        )
        .await;
    e.until(&path, "installs sent", |b| count(b, "install_sent") == 3)
        .await;
    // The options reach the device: ManagementFlags 1|4, Removable false, take-over.
    let cmd = last_install(&e, &cart[0]);
    assert_eq!(
        cmd.get("ManagementFlags").unwrap().as_signed_integer(),
        Some(5)
    );
    assert_eq!(
        cmd.get("Attributes")
            .and_then(|a| a.as_dictionary())
            .and_then(|a| a.get("Removable"))
            .and_then(|r| r.as_boolean()),
        Some(false)
    );
    assert_eq!(
        cmd.get("ChangeManagementState").unwrap().as_string(),
        Some("Managed")
    );
    e.drain_all(&cart).await;
    e.until(&path, "installed", |b| count(b, "installed") == 3)
        .await;
    // A Mac in the collection gets InstallAsManaged and no Attributes (iOS only).
    let mac = e.devices_of("Cart", &["M1"], "MacBookPro18,1").await;
    e.until(&path, "the Mac's install sent", |b| {
        count(b, "install_sent") == 1
    })
    .await;
    let cmd = last_install(&e, &mac[0]);
    assert_eq!(
        cmd.get("InstallAsManaged").and_then(|v| v.as_boolean()),
        Some(true)
    );
    assert!(cmd.get("Attributes").is_none(), "{cmd:?}");
    remove_member(&e, "Cart", "M1").await;
    e.until(&path, "the Mac left", |b| {
        target(b, "M1")["status"] == "remove_sent"
    })
    .await;
    e.drain_all(&mac).await;
    e.until(&path, "the Mac's license back", |b| {
        target(b, "M1")["status"] == "left"
    })
    .await;
    let (_, d) = e.call(reqwest::Method::GET, &path, None).await;
    assert_eq!(d["onLeave"], "uninstall", "{d}");
    assert_eq!(d["options"]["preventBackup"], true, "{d}");
    assert!(
        d["createdBy"]
            .as_str()
            .unwrap()
            .starts_with("API key admin"),
        "{d}"
    );

    // C3 is also in a second collection whose deployment (same app) wants it.
    e.devices("Lab", &["C3"]).await;
    let lab = e
        .deploy(json!({ "adamId": "777", "collection": "Lab" }))
        .await;
    e.until(&lab, "C3 superseded by the older deployment", |b| {
        count(b, "superseded") == 1
    })
    .await;

    // C1 leaves: the app is removed from it, then its license goes back; it ends `left`.
    remove_member(&e, "Cart", "C1").await;
    e.until(&path, "the removal sent to C1", |b| {
        target(b, "C1")["status"] == "remove_sent"
    })
    .await;
    e.drain_all(&cart[..1]).await;
    let d = e
        .until(&path, "C1 gave its license back", |b| {
            target(b, "C1")["status"] == "left"
        })
        .await;
    assert!(
        target(&d, "C1")["detail"]
            .as_str()
            .unwrap()
            .contains("given back"),
        "{d}"
    );
    assert!(!e.mdm.installed_apps(&cart[0]).contains(&bundle));
    e.until_assigned("777", 2, "C1's license given back").await;

    // C3 leaves Cart, but Lab still wants the app there: nothing is taken away, and Lab owns it.
    remove_member(&e, "Cart", "C3").await;
    let d = e
        .until(&path, "C3 left", |b| target(b, "C3")["status"] == "left")
        .await;
    assert!(
        target(&d, "C3")["detail"]
            .as_str()
            .unwrap()
            .contains("another deployment"),
        "{d}"
    );
    e.until(&lab, "Lab owns C3 now", |b| {
        count(b, "superseded") == 0 && count(b, "installed") + count(b, "install_sent") == 1
    })
    .await;
    assert!(e.mdm.installed_apps(&cart[2]).contains(&bundle));
    assert_eq!(e.assigned("777").await, 2, "C2 and C3 keep theirs");

    // Cart's deployment deleted with then=revoke: C2's license goes back, C3's stays (Lab).
    let (status, res) = e
        .call(
            reqwest::Method::DELETE,
            &format!("{path}?confirm=true&then=revoke"),
            None,
        )
        .await;
    assert!(status == 202 || status == 404, "{status} {res}");
    if status == 202 {
        assert_eq!(res["ending"], "revoke", "{res}");
    }
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while e.call(reqwest::Method::GET, &path, None).await.0 != 404 {
        assert!(
            std::time::Instant::now() < deadline,
            "the ended deployment never went"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    e.until_assigned("777", 1, "C2's license given back").await;
    let (_, diff) = e
        .call(reqwest::Method::GET, "/api/v1/ledger/diff", None)
        .await;
    assert_eq!(
        diff.as_array().unwrap().len(),
        0,
        "nothing unexplained: {diff}"
    );

    // Lab deleted with then=uninstall: C3's app is removed, then its license given back.
    let (status, _) = e
        .call(
            reqwest::Method::DELETE,
            &format!("{lab}?confirm=true&then=uninstall"),
            None,
        )
        .await;
    assert_eq!(status, 202);
    e.until(&lab, "the removal sent to C3", |b| {
        count(b, "remove_sent") == 1
    })
    .await;
    e.drain_all(&cart[2..]).await;
    e.until_assigned("777", 0, "C3's license given back").await;
    assert!(!e.mdm.installed_apps(&cart[2]).contains(&bundle));
}

#[tokio::test]
async fn members_leaving_give_back() {
    members_leaving_give_back_on(
        env_on(SCENARIO, allot_store::testing::TestDb::sqlite().await).await,
    )
    .await;
}

#[tokio::test]
async fn members_leaving_give_back_on_postgres() {
    members_leaving_give_back_on(
        env_on(SCENARIO, allot_store::testing::TestDb::postgres().await).await,
    )
    .await;
}

/// A server killed in the middle of a reconcile pass — licenses being claimed again for targets
/// whose licenses were removed at Apple, and given back for members that left — converges after
/// the restart, exactly: no request replayed, no license twice, none kept that should go.
async fn a_server_killed_mid_reconcile_converges_on(db: allot_store::testing::TestDb) {
    // Apple takes a while with each event, so the server dies while requests are in flight.
    let slow = SCENARIO.replace("\"eventDelayMs\": 0", "\"eventDelayMs\": 2500");
    let mut e = fleet::env_on(&slow, db).await;
    e.add_token().await;
    let serials: Vec<String> = (1..=8).map(|i| format!("L{i}")).collect();
    let refs: Vec<&str> = serials.iter().map(String::as_str).collect();
    let lab = e.devices("Lab", &refs).await;
    let path = e
        .deploy(json!({ "adamId": "777", "collection": "Lab", "onLeave": "revoke" }))
        .await;
    e.until(&path, "installs sent", |b| count(b, "install_sent") == 8)
        .await;
    e.drain_all(&lab).await;
    e.until(&path, "installed", |b| count(b, "installed") == 8)
        .await;
    e.until_assigned("777", 8, "eight licensed").await;

    // Someone revokes L1–L3 at Apple; L7 and L8 leave the collection.
    let res = e
        .http
        .post(format!("{}/mdm/v2/assets/disassociate", e.sim.base_url))
        .bearer_auth(e.location_token().await)
        .json(&json!({ "assets": [{ "adamId": "777" }], "serialNumbers": ["L1", "L2", "L3"] }))
        .send()
        .await
        .unwrap();
    assert!(res.status().is_success());
    e.until_assigned("777", 5, "the outside revoke").await;
    let (status, _) = e
        .call(
            reqwest::Method::DELETE,
            "/api/v1/collections/Lab/members",
            Some(json!({ "members": ["L7", "L8"] })),
        )
        .await;
    assert_eq!(status, 200);
    // Killed while requests to Apple are in flight (which of them depends on the pace of the
    // passes: the re-claim may start before the members leave).
    e.until(&path, "requests in flight", |b| {
        count(b, "license_requested") + count(b, "license_releasing") > 0
    })
    .await;
    e.crash_and_restart().await;

    e.until(&path, "re-installs sent after the restart", |b| {
        count(b, "install_sent") == 3 && count(b, "left") == 2
    })
    .await;
    e.drain_all(&lab).await;
    e.until(&path, "converged", |b| {
        count(b, "installed") == 6 && count(b, "left") == 2
    })
    .await;
    // Apple ends with six; if it does not, say what every target and Apple said (this wait has
    // failed rarely, with L7 and L8 `left` but still licensed at Apple).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while e.assigned("777").await != 6 {
        if std::time::Instant::now() > deadline {
            let (_, d) = e.call(reqwest::Method::GET, &path, None).await;
            panic!(
                "six licensed expected, Apple has {}: targets {} — simulator {}",
                e.assigned("777").await,
                d["targets"],
                e.sim_stats().await
            );
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    let stats = e.sim_stats().await;
    // The first claim and the re-claim; the outside revoke and ours. A request whose answer the
    // crash lost (killed between Apple's acceptance and the event id being stored) is read back
    // first, and asked once more only if Apple does not show it yet (it is still processing it:
    // asking twice is idempotent there) — never more, and the counts above are exact either way.
    let calls = |k: &str| stats["requests"][k].as_i64().unwrap_or_default();
    assert!(
        (2..=3).contains(&calls("assets/associate")),
        "at most one request asked again after a read-back: {stats}"
    );
    assert!(
        (2..=3).contains(&calls("assets/disassociate")),
        "at most one request asked again after a read-back: {stats}"
    );
}

#[tokio::test]
async fn a_server_killed_mid_reconcile_converges() {
    a_server_killed_mid_reconcile_converges_on(allot_store::testing::TestDb::sqlite().await).await;
}

#[tokio::test]
async fn a_server_killed_mid_reconcile_converges_on_postgres() {
    a_server_killed_mid_reconcile_converges_on(allot_store::testing::TestDb::postgres().await)
        .await;
}

/// Deleting a collection or a token that deployments use, with `then=revoke`: the deployments
/// give their licenses back first, then the collection (or the token) goes.
async fn deletes_that_give_back_first_on(db: allot_store::testing::TestDb) {
    let e = fleet::env_on(SCENARIO, db).await;
    e.add_token().await;
    let shelf = e.devices("Shelf", &["S1", "S2"]).await;
    let path = e.installed("777", "Shelf", &shelf).await;
    let (status, res) = e
        .call(
            reqwest::Method::DELETE,
            "/api/v1/collections/Shelf?confirm=true&then=revoke",
            None,
        )
        .await;
    assert_eq!(status, 202, "{res}");
    e.until_assigned("777", 0, "Shelf's licenses given back")
        .await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while e
        .call(reqwest::Method::GET, "/api/v1/collections/Shelf", None)
        .await
        .0
        != 404
    {
        assert!(
            std::time::Instant::now() < deadline,
            "the collection never went"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(e.call(reqwest::Method::GET, &path, None).await.0, 404);

    // The token, with a deployment drawing from it: its licenses go back, then the token.
    let desk = e.devices("Desk", &["S1"]).await;
    e.installed("777", "Desk", &desk).await;
    let (status, res) = e
        .call(
            reqwest::Method::DELETE,
            "/api/v1/tokens/HQ?confirm=true&then=uninstall",
            None,
        )
        .await;
    assert_eq!(status, 202, "{res}");
    e.until("/api/v1/deployments", "the removal sent", |b| {
        b["deployments"][0]["statuses"]["remove_sent"] == 1
    })
    .await;
    e.drain_all(&desk).await;
    e.until_assigned("777", 0, "Desk's license given back")
        .await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while e
        .call(reqwest::Method::GET, "/api/v1/tokens/HQ", None)
        .await
        .0
        != 404
    {
        assert!(std::time::Instant::now() < deadline, "the token never went");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn deletes_that_give_back_first() {
    deletes_that_give_back_first_on(allot_store::testing::TestDb::sqlite().await).await;
}

#[tokio::test]
async fn deletes_that_give_back_first_on_postgres() {
    deletes_that_give_back_first_on(allot_store::testing::TestDb::postgres().await).await;
}
