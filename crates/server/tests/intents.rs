//! Deployments as standing intents, end to end: nothing is spent on devices that cannot run the
//! app, and deleting what deployments use is refused (naming them) or ends them cleanly.

mod fleet;

use fleet::{count, env_on, Env};
use serde_json::json;

const SCENARIO: &str = r#"{
  "settings": { "eventDelayMs": 0, "tickMs": 5, "notificationRetryDelayMs": 50, "limits": { "maxRequestPerSecond": 0 } },
  "organizations": [ { "name": "Acme", "locations": [ { "name": "HQ", "uId": "5000000000000001",
    "assets": [ { "adamId": "634148309", "totalCount": 10, "name": "Logic Pro", "supportedPlatforms": ["macOS"] },
                { "adamId": "777", "totalCount": 10, "name": "Team Chat" } ] } ] } ]
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
