use serde_json::{json, Value};

use crate::support::*;

async fn event(sim: &TestSim, token: &str, path: &str, body: Value) -> Value {
    let a = sim.post(path, token, body).await;
    let id = a.ok()["eventId"].as_str().unwrap().to_owned();
    assert_eq!(a.body["uId"], HQ);
    sim.wait_event(token, &id).await
}

#[tokio::test]
async fn management_requests_are_validated_before_anything_is_queued() {
    let sim = TestSim::small().await;
    sim.settings(json!({ "limits": { "maxAssets": 2, "maxClientUserIds": 2, "maxSerialNumbers": 2, "maxUsers": 2,
        "maxRevokeClientUserIds": 1, "maxRevokeSerialNumbers": 1 } }))
    .await;
    let t = sim.token(HQ).await;
    let a = |id: &str| json!({ "adamId": id, "pricingParam": "STDQ" });
    let cases = [
        ("assets/associate", json!({ "serialNumbers": ["S"] }), 9718),
        (
            "assets/associate",
            json!({ "assets": [], "serialNumbers": ["S"] }),
            9718,
        ),
        ("assets/associate", json!({ "assets": [a("111")] }), 9719),
        (
            "assets/associate",
            json!({ "assets": [a("111"), a("333"), a("444")], "clientUserIds": ["alice"] }),
            9700,
        ),
        (
            "assets/associate",
            json!({ "assets": [a("111")], "clientUserIds": ["a", "b", "c"] }),
            9701,
        ),
        (
            "assets/associate",
            json!({ "assets": [a("111")], "serialNumbers": ["a", "b", "c"] }),
            9702,
        ),
        (
            "assets/associate",
            json!({ "assets": [a("111"), a("111")], "serialNumbers": ["S"] }),
            9703,
        ),
        (
            "assets/associate",
            json!({ "assets": [a("111")], "clientUserIds": ["x", "x"] }),
            9704,
        ),
        (
            "assets/associate",
            json!({ "assets": [a("111")], "serialNumbers": ["S", "S"] }),
            9705,
        ),
        (
            "assets/associate",
            json!({ "assets": [a("222")], "serialNumbers": ["S"] }),
            9707,
        ),
        (
            "assets/associate",
            json!({ "assets": [a("444")], "serialNumbers": ["S"] }),
            9707,
        ),
        (
            "assets/associate",
            json!({ "assets": [a("999")], "serialNumbers": ["S"] }),
            9602,
        ),
        (
            "assets/associate",
            json!({ "assets": [{ "adamId": "111", "pricingParam": "GOLD" }], "serialNumbers": ["S"] }),
            9602,
        ),
        (
            "assets/disassociate",
            json!({ "assets": [a("222")], "clientUserIds": ["alice"] }),
            9706,
        ),
        ("assets/disassociate", json!({ "assets": [a("111")] }), 9719),
        ("assets/revoke", json!({}), 9719),
        (
            "assets/revoke",
            json!({ "clientUserIds": ["a", "b"] }),
            9701,
        ),
        (
            "assets/revoke",
            json!({ "serialNumbers": ["a", "b"] }),
            9702,
        ),
        ("users/create", json!({ "users": [] }), 9720),
        (
            "users/create",
            json!({ "users": [{ "clientUserId": "a" }, { "clientUserId": "b" }, { "clientUserId": "c" }] }),
            9714,
        ),
        (
            "users/create",
            json!({ "users": [{ "clientUserId": "a" }, { "clientUserId": "a" }] }),
            9715,
        ),
        (
            "users/create",
            json!({ "users": [{ "clientUserId": "a", "email": "not-an-email" }] }),
            9717,
        ),
        (
            "users/update",
            json!({ "users": [{ "clientUserId": "" }] }),
            9602,
        ),
        ("users/retire", json!({}), 9720),
    ];
    for (path, body, number) in cases {
        let res = sim.post(path, &t, body.clone()).await;
        assert_eq!(
            res.error_number(),
            Some(number),
            "{path} {body}: {}",
            res.body
        );
        assert_eq!(res.status, 400);
    }
    let state = sim.control_get("state").await;
    assert_eq!(state["events"], json!([]), "nothing was queued");
    assert_eq!(sim.asset(HQ, "111").await["assignedCount"], 2);
}

#[tokio::test]
async fn an_event_is_pending_with_growing_progress_then_complete() {
    let sim = TestSim::small().await;
    // One task per 100 ms: over half a second of PENDING, visible even on a loaded machine.
    sim.settings(json!({ "eventTasksPerTick": 1, "tickMs": 100 }))
        .await;
    let t = sim.token(SCHOOL).await;
    let serials: Vec<String> = (0..6).map(|i| format!("P{i}")).collect();
    let a = sim
        .post(
            "assets/associate",
            &t,
            json!({ "assets": [{ "adamId": "111" }], "serialNumbers": serials }),
        )
        .await;
    let id = a.ok()["eventId"].as_str().unwrap().to_owned();
    let mut seen = Vec::new();
    let last = loop {
        let s = sim.get(&format!("status?eventId={id}"), &t).await;
        let s = s.ok().clone();
        assert_eq!(
            (s["eventType"].as_str(), s["numRequested"].as_i64()),
            (Some("ASSOCIATE"), Some(6))
        );
        if s["eventStatus"] != "PENDING" {
            break s;
        }
        assert!(s["numCompleted"].as_i64().unwrap() < 6);
        seen.push(s["numCompleted"].as_i64().unwrap());
        tokio::time::sleep(std::time::Duration::from_millis(15)).await;
    };
    assert_eq!(
        (last["eventStatus"].as_str(), last["numCompleted"].as_i64()),
        (Some("COMPLETE"), Some(6))
    );
    assert!(last.get("failures").is_none());
    assert!(
        seen.windows(2).all(|w| w[0] <= w[1]),
        "progress only grows: {seen:?}"
    );
    assert!(
        seen.iter().any(|&n| n > 0),
        "progress was visible while pending: {seen:?}"
    );
    assert_eq!(sim.asset(SCHOOL, "111").await["assignedCount"], 6);
}

#[tokio::test]
async fn running_out_of_licenses_fails_only_the_tasks_that_cannot_get_one() {
    let sim = TestSim::small().await;
    let t = sim.token(HQ).await;
    // 111 has 5 licenses, 2 in use: 3 free for 2 assets × (1 user + 3 devices) = 8 tasks.
    let s = event(
        &sim,
        &t,
        "assets/associate",
        json!({ "assets": [{ "adamId": "111", "pricingParam": "STDQ" }, { "adamId": "333" }],
                "clientUserIds": ["ghost"], "serialNumbers": ["D1", "D2", "D3"] }),
    )
    .await;
    assert_eq!(s["eventStatus"], "FAILED");
    assert_eq!(s["numRequested"], 8);
    assert_eq!(s["numCompleted"], 6, "3 devices × 2 assets succeeded");
    let failures = s["failures"].as_array().unwrap();
    let f9609 = failures
        .iter()
        .find(|f| f["errorNumber"] == 9609)
        .expect("unknown user fails with 9609");
    assert_eq!(f9609["errorInfo"]["clientUserIds"], json!(["ghost"]));
    assert_eq!(
        f9609["errorInfo"]["assets"].as_array().unwrap().len(),
        2,
        "one failure naming both assets"
    );
    let a = sim.asset(HQ, "111").await;
    assert_eq!(
        (
            a["assignedCount"].as_i64(),
            a["availableCount"].as_i64(),
            a["totalCount"].as_i64()
        ),
        (Some(5), Some(0), Some(5))
    );

    // Now there are none: every task fails with 9709, and counts never go negative.
    let s = event(
        &sim,
        &t,
        "assets/associate",
        json!({ "assets": [{ "adamId": "111" }], "serialNumbers": ["E1", "E2"] }),
    )
    .await;
    assert_eq!(
        (s["eventStatus"].as_str(), s["numCompleted"].as_i64()),
        (Some("FAILED"), Some(0))
    );
    assert_eq!(s["failures"][0]["errorNumber"], 9709);
    assert_eq!(
        s["failures"][0]["errorInfo"]["serialNumbers"],
        json!(["E1", "E2"])
    );
    let a = sim.asset(HQ, "111").await;
    assert_eq!(
        (a["assignedCount"].as_i64(), a["availableCount"].as_i64()),
        (Some(5), Some(0))
    );

    // Associating an existing pair again is an idempotent success that uses no license.
    let s = event(
        &sim,
        &t,
        "assets/associate",
        json!({ "assets": [{ "adamId": "111" }], "serialNumbers": ["D1"] }),
    )
    .await;
    assert_eq!(s["eventStatus"], "COMPLETE");
    assert_eq!(sim.asset(HQ, "111").await["assignedCount"], 5);
}

#[tokio::test]
async fn disassociate_and_revoke_free_licenses() {
    let sim = TestSim::small().await;
    let t = sim.token(HQ).await;
    let s = event(
        &sim,
        &t,
        "assets/disassociate",
        json!({ "assets": [{ "adamId": "111" }], "serialNumbers": ["SERIAL1", "NEVER"] }),
    )
    .await;
    assert_eq!(
        s["eventStatus"], "COMPLETE",
        "a pair that was not assigned is an idempotent success"
    );
    assert_eq!(sim.asset(HQ, "111").await["assignedCount"], 1);

    // Revoke takes every revocable license of alice (the app) and leaves the book.
    let s = event(
        &sim,
        &t,
        "assets/revoke",
        json!({ "clientUserIds": ["alice"] }),
    )
    .await;
    assert_eq!(
        (s["eventType"].as_str(), s["eventStatus"].as_str()),
        (Some("REVOKE"), Some("COMPLETE"))
    );
    let left = sim.get("assignments?clientUserId=alice", &t).await;
    assert_eq!(
        left.ok()["assignments"],
        json!([{ "adamId": "222", "pricingParam": "STDQ", "clientUserId": "alice" }])
    );
    assert_eq!(sim.asset(HQ, "111").await["assignedCount"], 0);
    let s = event(
        &sim,
        &t,
        "assets/revoke",
        json!({ "clientUserIds": ["nobody"] }),
    )
    .await;
    assert_eq!(s["failures"][0]["errorNumber"], 9609);
}

#[tokio::test]
async fn users_lifecycle_with_apples_asynchronous_errors() {
    let sim = TestSim::small().await;
    let t = sim.token(HQ).await;
    let s = event(
        &sim,
        &t,
        "users/create",
        json!({ "users": [
            { "clientUserId": "dave", "email": "dave@acme.example" },
            { "clientUserId": "erin", "managedAppleId": "erin@appleid.acme.example" },
            { "clientUserId": "bob" },
            { "clientUserId": "frank", "managedAppleId": "frank@appleid.other.example" },
            { "clientUserId": "gina", "managedAppleId": "erin@appleid.acme.example" }
        ] }),
    )
    .await;
    assert_eq!(
        (
            s["eventType"].as_str(),
            s["eventStatus"].as_str(),
            s["numCompleted"].as_i64()
        ),
        (Some("CREATE"), Some("FAILED"), Some(2))
    );
    let by = |n: i64| {
        s["failures"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["errorNumber"] == n)
            .unwrap()["errorInfo"]["clientUserIds"]
            .clone()
    };
    assert_eq!(by(9716), json!(["bob"]), "bob is already active");
    assert_eq!(
        by(9635),
        json!(["frank"]),
        "another organization's Managed Apple Account"
    );
    assert_eq!(by(9641), json!(["gina"]), "erin already holds that account");
    let users = sim.get("users?activeOnly=true", &t).await;
    let users = users.ok()["users"].as_array().unwrap().clone();
    let find = |c: &str| users.iter().find(|u| u["clientUserId"] == c).cloned();
    assert_eq!(find("dave").unwrap()["status"], "Registered");
    assert_eq!(
        find("erin").unwrap()["status"],
        "Associated",
        "a same-organization Managed Apple Account associates at once"
    );
    assert!(find("frank").is_none());

    // Update, then retire: the user's app license goes back, the book stays bound.
    let s = event(&sim, &t, "users/update", json!({ "users": [{ "clientUserId": "dave", "email": "d@acme.example" }, { "clientUserId": "zed" }] })).await;
    assert_eq!(s["failures"][0]["errorNumber"], 9609);
    assert_eq!(
        sim.get("users?clientUserId=dave", &t).await.ok()["users"][0]["email"],
        "d@acme.example"
    );
    let s = event(
        &sim,
        &t,
        "users/retire",
        json!({ "users": [{ "clientUserId": "alice" }] }),
    )
    .await;
    assert_eq!(s["eventStatus"], "COMPLETE");
    assert_eq!(
        sim.get("users?clientUserId=alice", &t).await.ok()["users"][0]["status"],
        "Retired"
    );
    assert_eq!(
        sim.asset(HQ, "111").await["assignedCount"],
        1,
        "alice's app license was released"
    );
    let kept = sim
        .get(
            "assignments?clientUserId=alice&excludeInactiveUsers=false",
            &t,
        )
        .await;
    assert_eq!(
        kept.ok()["assignments"].as_array().unwrap().len(),
        1,
        "the book stays"
    );
    assert_eq!(
        sim.get(
            "assignments?clientUserId=alice&excludeInactiveUsers=true",
            &t
        )
        .await
        .ok()["assignments"],
        json!([])
    );

    // Associating to a retired user fails per user; re-creating a never-associated retired user
    // brings the same record back.
    let s = event(
        &sim,
        &t,
        "assets/associate",
        json!({ "assets": [{ "adamId": "111" }], "clientUserIds": ["alice"] }),
    )
    .await;
    assert_eq!(s["failures"][0]["errorNumber"], 9609);
    event(
        &sim,
        &t,
        "users/create",
        json!({ "users": [{ "clientUserId": "old" }] }),
    )
    .await;
    let olds = sim.get("users?clientUserId=old", &t).await;
    assert_eq!(olds.ok()["users"].as_array().unwrap().len(), 1);
    assert_eq!(olds.body["users"][0]["status"], "Registered");
    // Alice had an Apple Account: re-creating her makes a second record.
    event(
        &sim,
        &t,
        "users/create",
        json!({ "users": [{ "clientUserId": "alice" }] }),
    )
    .await;
    let alices = sim.get("users?clientUserId=alice", &t).await;
    let statuses: Vec<_> = alices.ok()["users"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["status"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(statuses, vec!["Retired", "Registered"]);
}

#[tokio::test]
async fn status_of_unknown_or_foreign_events_is_9708() {
    let sim = TestSim::small().await;
    let t = sim.token(HQ).await;
    sim.get("status?eventId=954910a8-3d9c-4fde-948d-253e5aef431a", &t)
        .await
        .assert_error(9708, 400);
    sim.get("status", &t).await.assert_error(9602, 400);
    let id = sim
        .post(
            "users/create",
            &t,
            json!({ "users": [{ "clientUserId": "z" }] }),
        )
        .await
        .ok()["eventId"]
        .as_str()
        .unwrap()
        .to_owned();
    sim.get(&format!("status?eventId={id}"), &sim.token(SCHOOL).await)
        .await
        .assert_error(9708, 400);
}

#[tokio::test]
async fn injected_task_failures_and_held_events() {
    let sim = TestSim::small().await;
    let t = sim.token(HQ).await;
    sim.fault(json!({ "kind": "taskFailure", "errorNumber": 9644, "count": 1 }))
        .await;
    let s = event(
        &sim,
        &t,
        "assets/associate",
        json!({ "assets": [{ "adamId": "111" }], "serialNumbers": ["M1", "M2"] }),
    )
    .await;
    assert_eq!(
        (s["eventStatus"].as_str(), s["numCompleted"].as_i64()),
        (Some("FAILED"), Some(1))
    );
    assert_eq!(s["failures"][0]["errorNumber"], 9644);

    // Events held back (long delay) run when the control API says so.
    sim.settings(json!({ "eventDelayMs": 3_600_000 })).await;
    let id = sim
        .post(
            "users/create",
            &t,
            json!({ "users": [{ "clientUserId": "held" }] }),
        )
        .await
        .ok()["eventId"]
        .as_str()
        .unwrap()
        .to_owned();
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    assert_eq!(
        sim.get(&format!("status?eventId={id}"), &t).await.ok()["eventStatus"],
        "PENDING"
    );
    let (status, ran) = sim.control("events/run", json!({})).await;
    assert_eq!((status, ran["ran"].as_i64()), (200, Some(1)));
    assert_eq!(
        sim.get(&format!("status?eventId={id}"), &t).await.ok()["eventStatus"],
        "COMPLETE"
    );
}
