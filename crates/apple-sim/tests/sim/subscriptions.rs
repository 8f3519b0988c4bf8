//! Subscriptions (spec §15) over HTTP: enabling, seats bought through the control API, cursor
//! pages, associate and (deferred) disassociate through events, the period's end, errors
//! 9811–9818 and the two notifications.

use serde_json::{json, Value};

use crate::support::*;

const SCENARIO: &str = r#"{
  "settings": { "eventDelayMs": 0, "tickMs": 5, "notificationRetryDelayMs": 20, "assetsPageSize": 1,
                "assignmentsPageSize": 2, "limits": { "maxRequestPerSecond": 0, "maxSubscriptionClientUserIds": 3 } },
  "organizations": [ { "name": "Acme", "locations": [
    { "name": "HQ", "uId": "5000000000000001",
      "users": [ { "clientUserId": "u1" }, { "clientUserId": "u2" }, { "clientUserId": "u3" },
                 { "clientUserId": "u4" }, { "clientUserId": "gone", "status": "Retired" } ],
      "subscriptions": [ { "parentAdamId": 900, "adamId": 901, "renewing": 3, "expiring": 1 },
                         { "parentAdamId": 900, "adamId": 902, "renewing": 1 } ],
      "subscriptionAssignments": [ { "adamId": 901, "clientUserId": "u1" } ] },
    { "name": "Branch", "uId": "5000000000000002" }
  ] } ]
}"#;
const HQ_UID: &str = "5000000000000001";
const BRANCH_UID: &str = "5000000000000002";

async fn seats(sim: &TestSim, t: &str, query: &str) -> Vec<Value> {
    let mut out = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let q = match &cursor {
            Some(c) => format!("{query}&cursor={c}"),
            None => query.to_owned(),
        };
        let page = sim.get(&format!("subscriptions/assignments?{q}"), t).await;
        let body = page.ok().clone();
        out.extend(body["assignments"].as_array().unwrap().iter().cloned());
        match body.get("nextCursor").and_then(Value::as_str) {
            Some(c) => cursor = Some(c.to_owned()),
            None => return out,
        }
    }
}

fn counts(list: &Value, adam: i64) -> Value {
    list["subscriptions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["adamId"] == adam)
        .unwrap()["counts"]
        .clone()
}

#[tokio::test]
async fn seats_are_listed_by_cursor_given_and_taken_back() {
    let sim = TestSim::start(SCENARIO).await;
    let rx = Receiver::start().await;
    let t = sim.token(HQ_UID).await;
    subscribe(
        &sim,
        &t,
        &rx,
        &["SUBSCRIPTION_MANAGEMENT", "SUBSCRIPTION_COUNT"],
    )
    .await;

    // One subscription per page (assetsPageSize 1): two pages, then no cursor.
    let first = sim.get("subscriptions", &t).await.ok().clone();
    assert_eq!(first["subscriptions"].as_array().unwrap().len(), 1);
    let cursor = first["nextCursor"].as_str().unwrap().to_owned();
    let second = sim
        .get(&format!("subscriptions?cursor={cursor}"), &t)
        .await
        .ok()
        .clone();
    assert!(second.get("nextCursor").is_none());
    assert_eq!(second["subscriptions"][0]["adamId"], 902);
    assert_eq!(first["subscriptions"][0]["parentAdamId"], 900);
    assert_eq!(first["subscriptions"][0]["status"], "ACTIVE");
    assert!(
        first["subscriptions"][0]["periodEndDate"]
            .as_str()
            .unwrap()
            .len()
            == 10
    );
    assert_eq!(
        first["subscriptions"][0]["counts"],
        json!({ "assigned": { "renewing": 1, "expiring": 0 }, "available": { "renewing": 2, "expiring": 1 },
                "total": { "renewing": 3, "expiring": 1 } })
    );
    sim.get("subscriptions?cursor=not-a-cursor", &t)
        .await
        .assert_error(9812, 400);

    // Two users on renewing seats, one on the expiring seat.
    let e = sim
        .post(
            "subscriptions/associate",
            &t,
            json!({ "adamIds": [901], "clientUserIds": ["u2", "u3"], "renewing": true }),
        )
        .await;
    let id = e.ok()["eventId"].as_str().unwrap().to_owned();
    let status = sim.wait_event(&t, &id).await;
    assert_eq!(
        (status["eventStatus"].as_str(), status["eventType"].as_str()),
        (Some("COMPLETE"), Some("ASSOCIATE"))
    );
    let e = sim
        .post(
            "subscriptions/associate",
            &t,
            json!({ "adamIds": [901], "clientUserIds": ["u4"], "renewing": false }),
        )
        .await;
    sim.wait_event(&t, e.ok()["eventId"].as_str().unwrap())
        .await;
    let all = seats(&sim, &t, "adamId=901").await;
    assert_eq!(all.len(), 4, "{all:?}");
    assert!(all.contains(&json!({ "adamId": 901, "clientUserId": "u4", "renewing": false })));
    let list = sim.get("subscriptions", &t).await.ok().clone();
    assert_eq!(
        counts(&list, 901)["available"],
        json!({ "renewing": 0, "expiring": 0 })
    );
    // No seat left: the event fails for the user, with 9709.
    let e = sim
        .post(
            "subscriptions/associate",
            &t,
            json!({ "adamIds": [902], "clientUserIds": ["u1", "u2"] }),
        )
        .await;
    let status = sim
        .wait_event(&t, e.ok()["eventId"].as_str().unwrap())
        .await;
    assert_eq!(status["eventStatus"], "FAILED");
    assert_eq!(status["numCompleted"], 1);

    // u2 leaves at the period's end; u3 now.
    let e = sim
        .post(
            "subscriptions/disassociate",
            &t,
            json!({ "adamIds": [901], "clientUserIds": ["u2"], "deferred": true }),
        )
        .await;
    sim.wait_event(&t, e.ok()["eventId"].as_str().unwrap())
        .await;
    let e = sim
        .post(
            "subscriptions/disassociate",
            &t,
            json!({ "adamIds": [901], "clientUserIds": ["u3"] }),
        )
        .await;
    sim.wait_event(&t, e.ok()["eventId"].as_str().unwrap())
        .await;
    let holders: Vec<String> = seats(&sim, &t, "adamId=901")
        .await
        .iter()
        .map(|s| s["clientUserId"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(holders, vec!["u1", "u2", "u4"]);

    // The period ends: the expiring seat and u4 on it go, and so does u2.
    let (status, ended) = sim
        .control(
            &format!("locations/{HQ_UID}/subscriptions/901/end-period"),
            json!({}),
        )
        .await;
    assert_eq!((status, ended["seatsEnded"].as_i64()), (200, Some(2)));
    let holders = seats(&sim, &t, "adamId=901").await;
    assert_eq!(holders.len(), 1);
    let list = sim.get("subscriptions", &t).await.ok().clone();
    assert_eq!(
        counts(&list, 901),
        json!({ "assigned": { "renewing": 1, "expiring": 0 }, "available": { "renewing": 2, "expiring": 0 },
                "total": { "renewing": 3, "expiring": 0 } })
    );

    // The notifications: each event's seats, the deferred removal at the period's end, counts.
    sim.notifications_settled().await;
    let managed = rx.of_type("SUBSCRIPTION_MANAGEMENT");
    let ended = managed
        .iter()
        .find(|n| {
            n["notification"]["type"] == "DISASSOCIATE" && n["notification"]["eventId"].is_null()
        })
        .expect("the period's end");
    let mut gone: Vec<&str> = ended["notification"]["assignments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["clientUserId"].as_str().unwrap())
        .collect();
    gone.sort();
    assert_eq!(gone, vec!["u2", "u4"]);
    assert!(managed
        .iter()
        .any(|n| n["notification"]["result"] == "FAILURE"
            && n["notification"]["error"]["errorNumber"] == 9709));
    let count = rx.of_type("SUBSCRIPTION_COUNT");
    assert_eq!(
        count.last().unwrap()["notification"],
        json!({ "parentAdamId": 900, "adamId": 901,
                "counts": { "available": { "renewing": 2, "expiring": 0 }, "total": { "renewing": 3, "expiring": 0 } } })
    );
}

#[tokio::test]
async fn requests_apple_refuses_change_nothing() {
    let sim = TestSim::start(SCENARIO).await;
    let t = sim.token(HQ_UID).await;
    for (path, body, number) in [
        (
            "subscriptions/associate",
            json!({ "adamIds": [], "clientUserIds": ["u1"] }),
            9811,
        ),
        (
            "subscriptions/associate",
            json!({ "adamIds": [901], "clientUserIds": ["u1", "u1"] }),
            9811,
        ),
        (
            "subscriptions/associate",
            json!({ "adamIds": [12345], "clientUserIds": ["u1"] }),
            9813,
        ),
        (
            "subscriptions/associate",
            json!({ "adamIds": [901], "clientUserIds": ["nobody"] }),
            9814,
        ),
        (
            "subscriptions/associate",
            json!({ "adamIds": [901], "clientUserIds": ["gone"] }),
            9814,
        ),
        (
            "subscriptions/disassociate",
            json!({ "adamIds": [901], "clientUserIds": ["u2"] }),
            9815,
        ),
        (
            "subscriptions/associate",
            json!({ "adamIds": [901], "clientUserIds": ["u1", "u2", "u3", "u4"] }),
            9816,
        ),
        ("subscriptions/disable", json!({}), 9818),
    ] {
        sim.post(path, &t, body.clone())
            .await
            .assert_error(number, 400);
    }
    assert_eq!(seats(&sim, &t, "adamId=901").await.len(), 1);

    // A location without subscriptions: Apple sells none into it until the MDM enables them.
    let b = sim.token(BRANCH_UID).await;
    let buy =
        json!({ "adamId": "950", "productType": "Subscription", "parentAdamId": 900, "count": 5 });
    let (status, err) = sim
        .control(&format!("locations/{BRANCH_UID}/purchase"), buy.clone())
        .await;
    assert_eq!(status, 400);
    assert!(err.to_string().contains("subscriptions/enable"), "{err}");
    let on = sim.post("subscriptions/enable", &b, json!(null)).await;
    assert_eq!(on.ok()["subscriptionManagement"], true);
    assert_eq!(on.body["uId"], BRANCH_UID);
    let (status, _) = sim
        .control(&format!("locations/{BRANCH_UID}/purchase"), buy)
        .await;
    assert_eq!(status, 204);
    let list = sim.get("subscriptions", &b).await.ok().clone();
    assert_eq!(
        counts(&list, 950)["total"],
        json!({ "renewing": 5, "expiring": 0 })
    );
    // Subscriptions exist now: they cannot be disabled.
    sim.post("subscriptions/disable", &b, json!(null))
        .await
        .assert_error(9818, 400);
}
