use std::collections::HashSet;

use serde_json::{json, Value};

use crate::support::*;

fn ids(v: &Value, list: &str, field: &str) -> Vec<String> {
    v[list]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a[field].as_str().unwrap_or("").to_owned())
        .collect()
}

#[tokio::test]
async fn assets_pages_filters_and_unlimited() {
    let sim = TestSim::small().await;
    sim.settings(json!({ "assetsPageSize": 2 })).await;
    let t = sim.token(HQ).await;
    let p0 = sim.get("assets", &t).await;
    let p0 = p0.ok();
    assert_eq!(
        (
            p0["currentPageIndex"].as_i64(),
            p0["nextPageIndex"].as_i64()
        ),
        (Some(0), Some(1))
    );
    assert_eq!(
        (p0["size"].as_i64(), p0["totalPages"].as_i64()),
        (Some(2), Some(2))
    );
    let p1 = sim.get("assets?pageIndex=1", &t).await;
    let p1 = p1.ok();
    assert!(p1.get("nextPageIndex").is_none(), "absent on the last page");
    assert_eq!(p1["versionId"], p0["versionId"]);
    sim.get("assets?pageIndex=2", &t)
        .await
        .assert_error(9650, 400);
    sim.get("assets?pageIndex=-1", &t)
        .await
        .assert_error(9650, 400);
    sim.get("assets?pageIndex=x", &t)
        .await
        .assert_error(9602, 400);

    let notes = p0["assets"][0].clone();
    assert_eq!(notes["adamId"], "111");
    assert_eq!(notes["pricingParam"], "STDQ");
    assert_eq!(notes["productType"], "App");
    assert_eq!(
        (
            notes["assignedCount"].as_i64(),
            notes["availableCount"].as_i64(),
            notes["totalCount"].as_i64()
        ),
        (Some(2), Some(3), Some(5))
    );
    assert_eq!(notes["supportedPlatforms"], json!(["iOS", "macOS"]));
    let book = p0["assets"][1].clone();
    assert_eq!(
        (
            book["productType"].as_str(),
            book["deviceAssignable"].as_bool(),
            book["revocable"].as_bool()
        ),
        (Some("Book"), Some(false), Some(false))
    );

    sim.settings(json!({ "assetsPageSize": 100 })).await;
    let all = sim.get("assets", &t).await;
    let unlimited = all.ok()["assets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["adamId"] == "333")
        .unwrap()
        .clone();
    assert_eq!(
        unlimited["totalCount"], 2147483647,
        "unlimited when `unlimited` is omitted"
    );
    let split = sim.get("assets?unlimited=true", &t).await;
    assert_eq!(ids(split.ok(), "unlimitedAssets", "adamId"), vec!["333"]);
    assert!(split.body["unlimitedAssets"][0].get("totalCount").is_none());
    assert!(!ids(&split.body, "assets", "adamId").contains(&"333".into()));
    assert!(!ids(
        sim.get("assets?unlimited=false", &t).await.ok(),
        "assets",
        "adamId"
    )
    .contains(&"333".into()));

    assert_eq!(
        ids(
            sim.get("assets?productType=Book", &t).await.ok(),
            "assets",
            "adamId"
        ),
        vec!["222"]
    );
    assert_eq!(
        ids(
            sim.get("assets?deviceAssignable=false&productType=App", &t)
                .await
                .ok(),
            "assets",
            "adamId"
        ),
        vec!["444"]
    );
    assert_eq!(
        ids(
            sim.get(
                "assets?adamId=111&minAssignedCount=2&maxAvailableCount=3",
                &t
            )
            .await
            .ok(),
            "assets",
            "adamId"
        ),
        vec!["111"]
    );
    assert!(ids(
        sim.get("assets?minAvailableCount=4&unlimited=false", &t)
            .await
            .ok(),
        "assets",
        "adamId"
    )
    .is_empty());
    sim.get("assets?revocable=maybe", &t)
        .await
        .assert_error(9602, 400);
    sim.get("assets?productType=Movie", &t)
        .await
        .assert_error(9602, 400);
}

#[tokio::test]
async fn assignments_and_users_filters() {
    let sim = TestSim::small().await;
    let t = sim.token(HQ).await;
    let all = sim.get("assignments", &t).await;
    assert_eq!(all.ok()["assignments"].as_array().unwrap().len(), 3);
    let by_serial = sim.get("assignments?serialNumber=SERIAL1", &t).await;
    assert_eq!(
        by_serial.ok()["assignments"],
        json!([{ "adamId": "111", "pricingParam": "STDQ", "serialNumber": "SERIAL1" }])
    );
    let alice = sim
        .get("assignments?clientUserId=alice&includeUserState=true", &t)
        .await;
    let alice = alice.ok()["assignments"].as_array().unwrap().clone();
    assert_eq!(alice.len(), 2);
    assert!(alice
        .iter()
        .all(|a| a["userStatus"] == "Associated" && a["idHash"].is_string()));
    assert_eq!(
        sim.get("assignments?adamId=222", &t).await.ok()["assignments"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    assert_eq!(
        sim.get("assignments?adamId=999", &t).await.ok()["assignments"],
        json!([]),
        "unknown ids match nothing"
    );

    let users = sim.get("users", &t).await;
    let users = users.ok()["users"].as_array().unwrap().clone();
    assert_eq!(users.len(), 3);
    let bob = users.iter().find(|u| u["clientUserId"] == "bob").unwrap();
    assert_eq!(bob["status"], "Registered");
    assert_eq!(bob["inviteCode"].as_str().unwrap().len(), 32);
    assert!(bob.get("idHash").is_none());
    let alice = users.iter().find(|u| u["clientUserId"] == "alice").unwrap();
    assert!(alice.get("inviteCode").is_none() && alice["idHash"].is_string());
    assert_eq!(
        ids(
            sim.get("users?activeOnly=true", &t).await.ok(),
            "users",
            "clientUserId"
        ),
        vec!["alice", "bob"]
    );
    assert_eq!(
        ids(
            sim.get("users?retiredOnly=true", &t).await.ok(),
            "users",
            "clientUserId"
        ),
        vec!["old"]
    );
    assert_eq!(
        ids(
            sim.get("users?clientUserId=bob", &t).await.ok(),
            "users",
            "clientUserId"
        ),
        vec!["bob"]
    );
}

#[tokio::test]
async fn deltas_since_a_version() {
    let sim = TestSim::small().await;
    let t = sim.token(HQ).await;
    let v0 = sim.get("assignments", &t).await.ok()["versionId"]
        .as_str()
        .unwrap()
        .to_owned();
    let empty = sim
        .get(&format!("assignments?sinceVersionId={v0}"), &t)
        .await;
    assert_eq!(
        empty.ok()["assignments"],
        json!([]),
        "no change, no records"
    );
    assert_eq!(
        (
            empty.body["totalPages"].as_i64(),
            empty.body["currentPageIndex"].as_i64()
        ),
        (Some(1), Some(0))
    );

    let e = sim
        .post(
            "assets/associate",
            &t,
            json!({ "assets": [{ "adamId": "111" }], "serialNumbers": ["NEW1"] }),
        )
        .await;
    sim.wait_event(&t, e.ok()["eventId"].as_str().unwrap())
        .await;
    let e = sim
        .post(
            "users/create",
            &t,
            json!({ "users": [{ "clientUserId": "carol" }] }),
        )
        .await;
    sim.wait_event(&t, e.ok()["eventId"].as_str().unwrap())
        .await;

    let delta = sim
        .get(&format!("assignments?sinceVersionId={v0}"), &t)
        .await;
    assert_eq!(
        delta.ok()["assignments"],
        json!([{ "adamId": "111", "pricingParam": "STDQ", "serialNumber": "NEW1" }])
    );
    let v1 = delta.body["versionId"].as_str().unwrap().to_owned();
    assert_ne!(v1, v0, "a write made a new version");
    assert_eq!(
        ids(
            sim.get(&format!("users?sinceVersionId={v0}"), &t)
                .await
                .ok(),
            "users",
            "clientUserId"
        ),
        vec!["carol"]
    );
    assert_eq!(
        sim.get(&format!("assignments?sinceVersionId={v1}"), &t)
            .await
            .ok()["assignments"],
        json!([])
    );

    sim.get(
        "assignments?sinceVersionId=70e8c740-514c-11eb-bb63-a90b882fcd52",
        &t,
    )
    .await
    .assert_error(9721, 400);
    sim.get("users?sinceVersionId=nope", &t)
        .await
        .assert_error(9721, 400);
    // Another location's version is unknown here.
    let other = sim.get("assignments", &sim.token(SCHOOL).await).await.ok()["versionId"]
        .as_str()
        .unwrap()
        .to_owned();
    sim.get(&format!("assignments?sinceVersionId={other}"), &t)
        .await
        .assert_error(9721, 400);
    // Get Assets ignores sinceVersionId.
    assert_eq!(
        sim.get(&format!("assets?sinceVersionId={v1}"), &t)
            .await
            .ok()["assets"]
            .as_array()
            .unwrap()
            .len(),
        4
    );

    // A disassociation is not in the delta (documented): the count tells a client to re-read.
    let e = sim
        .post(
            "assets/disassociate",
            &t,
            json!({ "assets": [{ "adamId": "111" }], "serialNumbers": ["NEW1"] }),
        )
        .await;
    sim.wait_event(&t, e.ok()["eventId"].as_str().unwrap())
        .await;
    assert_eq!(
        sim.get(&format!("assignments?sinceVersionId={v1}"), &t)
            .await
            .ok()["assignments"],
        json!([])
    );
    assert_eq!(sim.asset(HQ, "111").await["assignedCount"], 2);
}

#[tokio::test]
async fn a_write_between_two_pages_of_a_walk_changes_the_version() {
    let sim = TestSim::start(&SMALL.replace(
        "\"eventDelayMs\": 0",
        "\"eventDelayMs\": 0, \"assignmentsPageSize\": 2",
    ))
    .await;
    let t = sim.token(HQ).await;
    sim.fault(json!({ "kind": "writeAfterPage", "page": 0, "endpoint": "assignments" }))
        .await;
    let p0 = sim.get("assignments", &t).await;
    assert_eq!(p0.ok()["totalPages"], 2);
    let p1 = sim.get("assignments?pageIndex=1", &t).await;
    assert_ne!(
        p1.ok()["versionId"],
        p0.body["versionId"],
        "the walk can tell the data changed"
    );
    assert_eq!(p1.body["totalPages"], 2);
    let seen: HashSet<_> = ids(&p0.body, "assignments", "serialNumber")
        .into_iter()
        .chain(ids(&p1.body, "assignments", "serialNumber"))
        .collect();
    let state = sim.state(HQ).await;
    assert_eq!(
        state["assignments"].as_array().unwrap().len(),
        4,
        "one assignment was added mid-walk"
    );
    assert!(state["assignments"]
        .as_array()
        .unwrap()
        .iter()
        .any(|a| a["serialNumber"]
            .as_str()
            .is_some_and(|s| s.starts_with("SIMWRITE"))));
    assert!(seen.len() <= 4);
}

#[tokio::test]
async fn a_generated_location_walks_to_exactly_its_state() {
    let spec = r#"{ "settings": { "assignmentsPageSize": 1000, "usersPageSize": 300, "limits": { "maxRequestPerSecond": 0 } },
        "generate": [ { "seed": 5, "assets": 12, "users": 400, "serialNumbers": 300, "assignments": 2500 } ] }"#;
    let sim = TestSim::start(spec).await;
    let uid = sim.control_get("locations").await[0]["uId"]
        .as_str()
        .unwrap()
        .to_owned();
    let t = sim.token(&uid).await;
    let mut walked = Vec::new();
    let mut page = 0;
    loop {
        let p = sim.get(&format!("assignments?pageIndex={page}"), &t).await;
        walked.extend(p.ok()["assignments"].as_array().unwrap().clone());
        match p.body["nextPageIndex"].as_i64() {
            Some(n) => page = n,
            None => break,
        }
    }
    assert_eq!(page, 2, "2,500 assignments in pages of 1,000");
    assert_eq!(
        walked,
        *sim.state(&uid).await["assignments"].as_array().unwrap()
    );
    let assets = sim.get("assets", &t).await;
    let sum: i64 = assets.ok()["assets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["assignedCount"].as_i64().unwrap())
        .sum();
    assert_eq!(sum, 2500);
    assert_eq!(
        sim.get("users?pageIndex=1", &t).await.ok()["users"]
            .as_array()
            .unwrap()
            .len(),
        100
    );
}
