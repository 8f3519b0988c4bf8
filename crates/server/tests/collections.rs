//! Rule-based collections end to end: a rule's preview, a deployment on it that follows the
//! inventory (a device enrolled later is licensed at the next pass), members a rule owns refused
//! by hand, and the bulk retry of failed targets once licenses are bought.

mod fleet;

use fleet::{count, env_on, Env};
use serde_json::json;

const SCENARIO: &str = r#"{
  "settings": { "eventDelayMs": 0, "tickMs": 5, "notificationRetryDelayMs": 50, "limits": { "maxRequestPerSecond": 0 } },
  "organizations": [ { "name": "Acme", "locations": [ { "name": "HQ", "uId": "5000000000000001",
    "assets": [ { "adamId": "777", "totalCount": 1, "name": "Team Chat" } ] } ] } ]
}"#;

async fn a_deployment_on_a_rule_follows_the_inventory_on(e: Env) {
    e.add_token().await;
    e.devices("Seed", &["P1"]).await;
    e.devices_of("Macs", &["M1"], "MacBookPro18,1").await;

    let rule = json!({ "platforms": ["ipados"] });
    let (status, preview) = e
        .call(
            reqwest::Method::POST,
            "/api/v1/collections/preview",
            Some(json!({ "kind": "devices", "rule": rule })),
        )
        .await;
    assert_eq!(status, 200, "{preview}");
    assert_eq!(preview["count"], 1, "{preview}");
    assert_eq!(preview["sample"][0]["label"], "P1");
    assert_eq!(preview["description"], "platform iPadOS");
    let (status, bad) = e
        .call(
            reqwest::Method::POST,
            "/api/v1/collections/preview",
            Some(json!({ "kind": "users", "rule": rule })),
        )
        .await;
    assert_eq!(status, 422, "{bad}");
    assert!(
        bad["error"]["message"]
            .as_str()
            .unwrap()
            .contains("choose devices"),
        "{bad}"
    );

    let (status, c) = e
        .call(
            reqwest::Method::POST,
            "/api/v1/collections",
            Some(json!({ "name": "Every iPad", "kind": "devices", "rule": rule })),
        )
        .await;
    assert_eq!(status, 201, "{c}");
    assert_eq!(
        (c["members"].as_i64(), &c["rule"]["platforms"][0]),
        (Some(1), &json!("iPadOS"))
    );
    let (status, refused) = e
        .call(
            reqwest::Method::POST,
            "/api/v1/collections/Every%20iPad/members",
            Some(json!({ "members": ["M1"] })),
        )
        .await;
    assert_eq!(status, 409, "{refused}");
    assert!(refused["error"]["message"]
        .as_str()
        .unwrap()
        .contains("come from its rule"));

    let path = e
        .deploy(json!({ "adamId": "777", "collection": "Every iPad" }))
        .await;
    e.until(&path, "P1 licensed", |b| count(b, "install_sent") == 1)
        .await;

    // A second iPad enrolls: the rule takes it in at the next pass, and with the one license
    // spent its target fails for want of a license.
    e.devices("Later", &["P2"]).await;
    e.until(&path, "P2 joins through the rule", |b| {
        count(b, "failed") == 1
    })
    .await;
    let (_, detail) = e
        .call(
            reqwest::Method::GET,
            "/api/v1/collections/Every%20iPad",
            None,
        )
        .await;
    assert_eq!(detail["members"], 2, "{detail}");

    // A license is bought; the bulk retry starts the failed target again and it is licensed.
    assert_eq!(
        e.sim_post(
            "/_sim/locations/5000000000000001/purchase",
            json!({ "adamId": "777", "count": 1 })
        )
        .await,
        204
    );
    e.until("/api/v1/apps?search=Team", "the purchase counted", |b| {
        b["apps"][0]["available"].as_i64() == Some(1)
    })
    .await;
    let (status, r) = e
        .call(reqwest::Method::POST, &format!("{path}/retry"), None)
        .await;
    assert_eq!((status, r["retried"].as_i64()), (200, Some(1)), "{r}");
    e.until(&path, "P2 licensed after the retry", |b| {
        count(b, "install_sent") == 2 && count(b, "failed") == 0
    })
    .await;
    assert_eq!(e.assigned("777").await, 2);

    // Nothing waits for an invitation here: the bulk resend says so.
    let (status, r) = e
        .call(reqwest::Method::POST, "/api/v1/invitations/resend", None)
        .await;
    assert_eq!((status, r["resent"].as_i64()), (200, Some(0)), "{r}");
}

#[tokio::test]
async fn a_deployment_on_a_rule_follows_the_inventory() {
    a_deployment_on_a_rule_follows_the_inventory_on(
        env_on(SCENARIO, allot_store::testing::TestDb::sqlite().await).await,
    )
    .await;
}

#[tokio::test]
async fn a_deployment_on_a_rule_follows_the_inventory_on_postgres() {
    a_deployment_on_a_rule_follows_the_inventory_on(
        env_on(SCENARIO, allot_store::testing::TestDb::postgres().await).await,
    )
    .await;
}
