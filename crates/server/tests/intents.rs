//! Deployments as standing intents, end to end: nothing is spent on devices that cannot run the
//! app, and deleting what deployments use is refused (naming them) or ends them cleanly.

mod fleet;

use fleet::{count, env_on, Env};
use serde_json::json;

const SCENARIO: &str = r#"{
  "settings": { "eventDelayMs": 0, "tickMs": 5, "notificationRetryDelayMs": 50, "limits": { "maxRequestPerSecond": 0 } },
  "organizations": [ { "name": "Acme", "locations": [ { "name": "HQ", "uId": "5000000000000001",
    "assets": [ { "adamId": "634148309", "totalCount": 10, "name": "Logic Pro", "supportedPlatforms": ["macOS"] },
                { "adamId": "777", "totalCount": 10, "name": "Team Chat" },
                { "adamId": "888", "totalCount": 10, "name": "Field Survey", "minimumOSVersion": "17.2" } ] } ] } ]
}"#;

async fn a_macos_only_app_spends_nothing_on_ipads_on(e: Env) {
    e.add_token().await;
    let pads = e.devices("Pads", &["P1", "P2", "P3"]).await;
    let (status, plan) = e
        .call(
            reqwest::Method::POST,
            "/api/v1/deployments/plan",
            Some(json!({ "adamId": "634148309", "collection": "Pads" })),
        )
        .await;
    assert_eq!(status, 200, "{plan}");
    assert_eq!(
        (plan["notCompatible"].as_i64(), plan["claims"].as_i64()),
        (Some(3), Some(0)),
        "{plan}"
    );
    assert!(
        plan["summary"].as_str().unwrap().contains("cannot run it"),
        "{plan}"
    );
    // Still created (the plan said so); every target is not_compatible, and no license moves.
    let path = e
        .deploy(json!({ "adamId": "634148309", "collection": "Pads" }))
        .await;
    let d = e
        .until(&path, "not compatible", |b| count(b, "not_compatible") == 3)
        .await;
    assert!(
        d["targets"][0]["detail"]
            .as_str()
            .unwrap()
            .contains("iPadOS"),
        "{d}"
    );
    assert_eq!(e.assigned("634148309").await, 0);
    assert!(e.mdm.queue(&pads[0]).is_empty(), "no install sent");

    // Deleting the collection or the token a deployment uses: refused, naming it.
    let (status, res) = e
        .call(
            reqwest::Method::DELETE,
            "/api/v1/collections/Pads?confirm=true",
            None,
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
    let chat = e
        .deploy(json!({ "adamId": "777", "collection": "Pads", "tokens": ["HQ"] }))
        .await;
    // Settled (no request to Apple in flight), so ending it with the collection cannot race it.
    e.until(&chat, "chat licensed", |b| count(b, "install_sent") == 3)
        .await;
    let (status, res) = e
        .call(
            reqwest::Method::DELETE,
            "/api/v1/tokens/HQ?confirm=true",
            None,
        )
        .await;
    assert_eq!(status, 409, "{res}");
    assert!(
        res["error"]["message"]
            .as_str()
            .unwrap()
            .contains("deployments 1, 2"),
        "{res}"
    );
    // With then=keep they end with it: nothing is left waiting on what is gone.
    let (status, res) = e
        .call(
            reqwest::Method::DELETE,
            "/api/v1/collections/Pads?confirm=true&then=keep",
            None,
        )
        .await;
    assert_eq!(status, 204, "{res}");
    assert_eq!(e.call(reqwest::Method::GET, &path, None).await.0, 404);
    assert_eq!(e.call(reqwest::Method::GET, &chat, None).await.0, 404);
    let (status, _) = e
        .call(
            reqwest::Method::DELETE,
            "/api/v1/tokens/HQ?confirm=true",
            None,
        )
        .await;
    assert_eq!(status, 204, "no deployment uses it any more");
}

#[tokio::test]
async fn a_macos_only_app_spends_nothing_on_ipads() {
    a_macos_only_app_spends_nothing_on_ipads_on(
        env_on(SCENARIO, allot_store::testing::TestDb::sqlite().await).await,
    )
    .await;
}

#[tokio::test]
async fn a_macos_only_app_spends_nothing_on_ipads_on_postgres() {
    a_macos_only_app_spends_nothing_on_ipads_on(
        env_on(SCENARIO, allot_store::testing::TestDb::postgres().await).await,
    )
    .await;
}

/// A license removed at Apple by someone else (Apple Business Manager, another tool) comes back
/// for a Required target: the target does not keep saying "installed".
async fn a_license_removed_elsewhere_comes_back_on(e: Env) {
    e.add_token().await;
    let cart = e.devices("Cart", &["C1", "C2"]).await;
    let path = e.installed("777", "Cart", &cart).await;
    assert_eq!(e.assigned("777").await, 2);

    // Someone else revokes C1's license at Apple, with the location's own token.
    let res = e
        .http
        .post(format!("{}/mdm/v2/assets/disassociate", e.sim.base_url))
        .bearer_auth(e.location_token().await)
        .json(&json!({ "assets": [{ "adamId": "777" }], "serialNumbers": ["C1"] }))
        .send()
        .await
        .unwrap();
    assert!(res.status().is_success());
    // The next steps notice (Apple's notification updated the local copy), claim it again — a
    // second associate call, as Apple's counts show only for a moment — and send the install
    // again.
    e.until(&path, "the license claimed again", |b| {
        count(b, "install_sent") == 1
    })
    .await;
    let stats = e.sim_stats().await;
    assert_eq!(stats["requests"]["assets/associate"], 2, "{stats}");
    e.drain_all(&cart).await;
    let d = e
        .until(&path, "installed again", |b| count(b, "installed") == 2)
        .await;
    assert_eq!(e.assigned("777").await, 2, "the license came back");
    // Each status carries when the device last confirmed it.
    for t in d["targets"].as_array().unwrap() {
        let at = t["confirmedAt"].as_str().unwrap_or_default();
        assert!(
            chrono::DateTime::parse_from_rfc3339(at).is_ok(),
            "confirmedAt on {t}"
        );
    }
}

#[tokio::test]
async fn a_license_removed_elsewhere_comes_back() {
    a_license_removed_elsewhere_comes_back_on(
        env_on(SCENARIO, allot_store::testing::TestDb::sqlite().await).await,
    )
    .await;
}

#[tokio::test]
async fn a_license_removed_elsewhere_comes_back_on_postgres() {
    a_license_removed_elsewhere_comes_back_on(
        env_on(SCENARIO, allot_store::testing::TestDb::postgres().await).await,
    )
    .await;
}

/// The ledger: a license assigned at Apple outside Allot is an orphan; so is one whose deployment
/// was deleted (its licenses kept); a served license is not listed.
async fn the_ledger_lists_orphans_on(e: Env) {
    e.add_token().await;
    let cart = e.devices("Cart", &["C1"]).await;
    let path = e.installed("777", "Cart", &cart).await;
    let res = e
        .http
        .post(format!("{}/mdm/v2/assets/associate", e.sim.base_url))
        .bearer_auth(e.location_token().await)
        .json(&json!({ "assets": [{ "adamId": "777" }], "serialNumbers": ["OUTSIDE1"] }))
        .send()
        .await
        .unwrap();
    assert!(res.status().is_success());
    e.until_assigned("777", 2, "the assignment made outside Allot")
        .await;
    let diff = e
        .until("/api/v1/ledger/diff?token=HQ", "the orphan", |rows| {
            rows.as_array().is_some_and(|r| r.len() == 1)
        })
        .await;
    assert_eq!(
        (
            diff[0]["kind"].as_str(),
            diff[0]["holder"].as_str(),
            diff[0]["holderKind"].as_str()
        ),
        (Some("orphan"), Some("OUTSIDE1"), Some("device")),
        "{diff}"
    );
    assert!(diff[0]["reason"]
        .as_str()
        .unwrap()
        .contains("no deployment"));
    // Deleted, keeping its licenses: C1's license is served by nothing now.
    let (status, _) = e
        .call(
            reqwest::Method::DELETE,
            &format!("{path}?confirm=true"),
            None,
        )
        .await;
    assert_eq!(status, 204);
    let (_, diff) = e
        .call(reqwest::Method::GET, "/api/v1/ledger/diff", None)
        .await;
    let mut holders: Vec<&str> = diff
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["kind"] == "orphan")
        .map(|r| r["holder"].as_str().unwrap())
        .collect();
    holders.sort();
    assert_eq!(holders, vec!["C1", "OUTSIDE1"], "{diff}");

    // Clean: the dry run lists them and changes nothing; the clean-up revokes exactly those.
    let clean = |dry: bool, confirm: bool| {
        let e = &e;
        async move {
            e.call(
                reqwest::Method::POST,
                &format!("/api/v1/ledger/clean?confirm={confirm}"),
                Some(json!({ "token": "HQ", "dryRun": dry })),
            )
            .await
        }
    };
    let holders_of = |res: &serde_json::Value| {
        let mut h: Vec<String> = res["rows"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["holder"].as_str().unwrap().to_owned())
            .collect();
        h.sort();
        h
    };
    let (status, dry) = clean(true, false).await;
    assert_eq!(status, 200, "{dry}");
    assert_eq!(holders_of(&dry), vec!["C1", "OUTSIDE1"], "{dry}");
    assert_eq!(e.assigned("777").await, 2, "a dry run changes nothing");
    let (status, res) = clean(false, false).await;
    assert_eq!(status, 400, "revoking needs confirm=true: {res}");
    let (status, done) = clean(false, true).await;
    assert_eq!(status, 200, "{done}");
    assert_eq!(holders_of(&done), holders_of(&dry), "{done}");
    assert!(
        done["rows"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["outcome"] == "requested" && r["eventId"].is_string()),
        "{done}"
    );
    e.until_assigned("777", 0, "both revoked at Apple").await;
    e.until("/api/v1/ledger/diff", "nothing left to explain", |rows| {
        rows.as_array().is_some_and(|r| r.is_empty())
    })
    .await;
    let (_, actions) = e
        .call(reqwest::Method::GET, "/api/v1/ledger/actions", None)
        .await;
    assert_eq!(actions.as_array().unwrap().len(), 2, "{actions}");
    assert!(
        actions[0]["actor"]
            .as_str()
            .unwrap()
            .starts_with("API key admin"),
        "{actions}"
    );
}

#[tokio::test]
async fn the_ledger_lists_orphans() {
    the_ledger_lists_orphans_on(
        env_on(SCENARIO, allot_store::testing::TestDb::sqlite().await).await,
    )
    .await;
}

#[tokio::test]
async fn the_ledger_lists_orphans_on_postgres() {
    the_ledger_lists_orphans_on(
        env_on(SCENARIO, allot_store::testing::TestDb::postgres().await).await,
    )
    .await;
}

/// Collection membership, both ways: a device added gets the app; one removed is left alone and
/// keeps its license (on_leave keep), and is served again when it comes back.
async fn membership_changes_both_ways_on(e: Env) {
    e.add_token().await;
    let cart = e.devices("Cart", &["C1", "C2"]).await;
    let path = e.installed("777", "Cart", &cart).await;
    let (status, _) = e
        .call(
            reqwest::Method::DELETE,
            "/api/v1/collections/Cart/members",
            Some(json!({ "members": ["C2"] })),
        )
        .await;
    assert_eq!(status, 200);
    let more = e.devices("Cart", &["C3"]).await;
    let d = e
        .until(&path, "C2 left, C3 sent", |b| {
            count(b, "left") == 1 && count(b, "install_sent") == 1
        })
        .await;
    let c2 = d["targets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["target"] == "C2")
        .unwrap()
        .clone();
    assert!(c2["detail"].as_str().unwrap().contains("kept"), "{c2}");
    e.drain_all(&more).await;
    e.until(&path, "C3 installed", |b| count(b, "installed") == 2)
        .await;
    assert_eq!(e.assigned("777").await, 3, "C2 kept its license");
    // C2 comes back: served again, with the license it kept.
    let (status, _) = e
        .call(
            reqwest::Method::POST,
            "/api/v1/collections/Cart/members",
            Some(json!({ "members": ["C2"] })),
        )
        .await;
    assert_eq!(status, 200);
    e.until(&path, "C2 back and sent again", |b| {
        count(b, "left") == 0 && count(b, "install_sent") == 1
    })
    .await;
    e.drain_all(&cart).await;
    e.until(&path, "all installed", |b| count(b, "installed") == 3)
        .await;
    assert_eq!(e.assigned("777").await, 3, "no second license for C2");
}

#[tokio::test]
async fn membership_changes_both_ways() {
    membership_changes_both_ways_on(
        env_on(SCENARIO, allot_store::testing::TestDb::sqlite().await).await,
    )
    .await;
}

#[tokio::test]
async fn membership_changes_both_ways_on_postgres() {
    membership_changes_both_ways_on(
        env_on(SCENARIO, allot_store::testing::TestDb::postgres().await).await,
    )
    .await;
}

/// An app that needs iOS 17.2: an iPad still on 16.7 gets no license (the plan says so, the target
/// says why), the others are licensed.
async fn an_app_needing_a_newer_os_spends_nothing_on_older_devices_on(e: Env) {
    e.add_token().await;
    e.mdm.set_os_version("UDID-OLD1", "16.7");
    let pads = e.devices("Field", &["OLD1", "NEW1", "NEW2"]).await;
    let (status, plan) = e
        .call(
            reqwest::Method::POST,
            "/api/v1/deployments/plan",
            Some(json!({ "adamId": "888", "collection": "Field" })),
        )
        .await;
    assert_eq!(status, 200, "{plan}");
    assert_eq!(
        (plan["notCompatible"].as_i64(), plan["claims"].as_i64()),
        (Some(1), Some(2)),
        "{plan}"
    );
    let path = e
        .deploy(json!({ "adamId": "888", "collection": "Field" }))
        .await;
    let d = e
        .until(&path, "licensed where it runs", |b| {
            count(b, "not_compatible") == 1 && count(b, "install_sent") == 2
        })
        .await;
    let old = d["targets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["status"] == "not_compatible")
        .unwrap();
    assert_eq!(
        old["detail"],
        "the app needs iOS 17.2 or later and this device runs iPadOS 16.7: no license is spent on it"
    );
    assert_eq!(e.assigned("888").await, 2);
    assert!(
        e.mdm.queue(&pads[0]).is_empty(),
        "no install sent to the old iPad"
    );
}

#[tokio::test]
async fn an_app_needing_a_newer_os_spends_nothing_on_older_devices() {
    an_app_needing_a_newer_os_spends_nothing_on_older_devices_on(
        env_on(SCENARIO, allot_store::testing::TestDb::sqlite().await).await,
    )
    .await;
}

#[tokio::test]
async fn an_app_needing_a_newer_os_spends_nothing_on_older_devices_on_postgres() {
    an_app_needing_a_newer_os_spends_nothing_on_older_devices_on(
        env_on(SCENARIO, allot_store::testing::TestDb::postgres().await).await,
    )
    .await;
}
