use std::collections::HashSet;

use serde_json::json;

use crate::support::*;

#[tokio::test]
async fn asset_management_notifications_carry_at_most_100_assignments() {
    let sim = TestSim::small().await;
    let rx = Receiver::start().await;
    let t = sim.token(SCHOOL).await;
    subscribe(&sim, &t, &rx, ALL_TYPES).await;
    sim.control(
        &format!("locations/{SCHOOL}/purchase"),
        json!({ "adamId": "111", "count": 200 }),
    )
    .await;
    let serials: Vec<String> = (0..150).map(|i| format!("N{i:03}")).collect();
    let id = sim
        .post(
            "assets/associate",
            &t,
            json!({ "assets": [{ "adamId": "111" }], "serialNumbers": serials }),
        )
        .await
        .ok()["eventId"]
        .as_str()
        .unwrap()
        .to_owned();
    sim.wait_event(&t, &id).await;
    sim.notifications_settled().await;
    let notes = rx.of_type("ASSET_MANAGEMENT");
    assert!(
        notes.len() >= 2,
        "150 assignments need at least two notifications"
    );
    let mut serials_seen = HashSet::new();
    for n in &notes {
        let body = &n["notification"];
        assert_eq!(
            (
                body["type"].as_str(),
                body["result"].as_str(),
                body["eventId"].as_str()
            ),
            (Some("ASSOCIATE"), Some("SUCCESS"), Some(id.as_str()))
        );
        let items = body["assignments"].as_array().unwrap();
        assert!(items.len() <= 100);
        serials_seen.extend(
            items
                .iter()
                .map(|a| a["serialNumber"].as_str().unwrap().to_owned()),
        );
        assert_eq!(n["uId"], SCHOOL);
        assert!(n["notificationId"].as_str().unwrap().len() >= 32);
    }
    assert_eq!(serials_seen.len(), 150);
    assert!(rx
        .got
        .lock()
        .unwrap()
        .iter()
        .all(|r| r.authorization.as_deref() == Some("Bearer secret-123")));
    let counts = rx.of_type("ASSET_COUNT");
    assert_eq!(
        counts[0]["notification"],
        json!({ "adamId": "111", "pricingParam": "STDQ", "countDelta": 200 })
    );
}

#[tokio::test]
async fn failures_are_notified_with_one_error_each() {
    let sim = TestSim::small().await;
    let rx = Receiver::start().await;
    let t = sim.token(HQ).await;
    subscribe(&sim, &t, &rx, ALL_TYPES).await;
    let id = sim
        .post(
            "assets/associate",
            &t,
            json!({ "assets": [{ "adamId": "444" }], "clientUserIds": ["alice", "bob", "ghost"] }),
        )
        .await
        .ok()["eventId"]
        .as_str()
        .unwrap()
        .to_owned();
    sim.wait_event(&t, &id).await;
    sim.notifications_settled().await;
    let notes: Vec<_> = rx
        .of_type("ASSET_MANAGEMENT")
        .into_iter()
        .map(|n| n["notification"].clone())
        .collect();
    let ok = notes.iter().find(|n| n["result"] == "SUCCESS").unwrap();
    assert_eq!(ok["assignments"].as_array().unwrap().len(), 2);
    let failed = notes.iter().find(|n| n["result"] == "FAILURE").unwrap();
    assert_eq!(failed["error"]["errorNumber"], 9609);
    assert_eq!(
        failed["assignments"],
        json!([{ "adamId": "444", "pricingParam": "STDQ", "clientUserId": "ghost" }])
    );

    let id = sim
        .post(
            "users/create",
            &t,
            json!({ "users": [{ "clientUserId": "bob" }, { "clientUserId": "new" }] }),
        )
        .await
        .ok()["eventId"]
        .as_str()
        .unwrap()
        .to_owned();
    sim.wait_event(&t, &id).await;
    sim.notifications_settled().await;
    let users: Vec<_> = rx
        .of_type("USER_MANAGEMENT")
        .into_iter()
        .map(|n| n["notification"].clone())
        .collect();
    let ok = users.iter().find(|n| n["result"] == "SUCCESS").unwrap();
    assert_eq!(
        (
            ok["type"].as_str(),
            ok["users"][0]["clientUserId"].as_str(),
            ok["users"][0]["status"].as_str()
        ),
        (Some("CREATE"), Some("new"), Some("Registered"))
    );
    assert!(ok["users"][0]["inviteCode"].is_string());
    let failed = users.iter().find(|n| n["result"] == "FAILURE").unwrap();
    assert_eq!(
        (
            failed["error"]["errorNumber"].as_i64(),
            failed["users"][0]["clientUserId"].as_str()
        ),
        (Some(9716), Some("bob"))
    );
}

#[tokio::test]
async fn only_subscribed_types_are_sent() {
    let sim = TestSim::small().await;
    let rx = Receiver::start().await;
    let t = sim.token(HQ).await;
    subscribe(&sim, &t, &rx, &["USER_ASSOCIATED"]).await;
    let id = sim
        .post(
            "assets/associate",
            &t,
            json!({ "assets": [{ "adamId": "111" }], "serialNumbers": ["Q"] }),
        )
        .await
        .ok()["eventId"]
        .as_str()
        .unwrap()
        .to_owned();
    sim.wait_event(&t, &id).await;
    sim.control(
        &format!("locations/{HQ}/purchase"),
        json!({ "adamId": "111", "count": 1 }),
    )
    .await;
    let (status, _) = sim
        .control(
            &format!("locations/{HQ}/users/bob/accept"),
            json!({ "appleAccount": "bob@icloud.example" }),
        )
        .await;
    assert_eq!(status, 204);
    sim.notifications_settled().await;
    let types: Vec<_> = rx
        .bodies()
        .iter()
        .map(|b| b["notificationType"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(types, vec!["TEST_NOTIFICATION", "USER_ASSOCIATED"]);
    let assoc = &rx.of_type("USER_ASSOCIATED")[0]["notification"]["associatedUsers"][0];
    assert_eq!(
        (assoc["clientUserId"].as_str(), assoc["status"].as_str()),
        (Some("bob"), Some("Associated"))
    );
    assert!(assoc["idHash"].is_string());
    assert!(assoc.get("eventId").is_none());
}

#[tokio::test]
async fn deliveries_are_retried_up_to_three_times() {
    let sim = TestSim::small().await;
    let rx = Receiver::start().await;
    let t = sim.token(HQ).await;
    subscribe(&sim, &t, &rx, &["ASSET_COUNT"]).await;
    *rx.refuse.lock().unwrap() = 2;
    sim.control(
        &format!("locations/{HQ}/purchase"),
        json!({ "adamId": "111", "count": 3 }),
    )
    .await;
    let log = sim.notifications_settled().await;
    let last = log.last().unwrap();
    assert_eq!(
        (last["outcome"].as_str(), last["attempts"].as_i64()),
        (Some("delivered"), Some(3))
    );
    let counts = rx.of_type("ASSET_COUNT");
    assert_eq!(counts.len(), 3, "two refused attempts, then delivered");
    assert!(counts
        .iter()
        .all(|c| c["notificationId"] == counts[0]["notificationId"]));

    *rx.refuse.lock().unwrap() = 3;
    sim.control(
        &format!("locations/{HQ}/refund"),
        json!({ "adamId": "111", "count": 1 }),
    )
    .await;
    let log = sim.notifications_settled().await;
    assert_eq!(
        log.last().unwrap()["outcome"],
        "failed",
        "Apple gives up after three attempts"
    );
    assert_eq!(rx.of_type("ASSET_COUNT").len(), 6);
    assert_eq!(
        rx.of_type("ASSET_COUNT")[5]["notification"]["countDelta"],
        -1
    );
}

#[tokio::test]
async fn dropped_and_duplicated_notifications() {
    let sim = TestSim::small().await;
    let rx = Receiver::start().await;
    let t = sim.token(HQ).await;
    subscribe(&sim, &t, &rx, &["ASSET_COUNT"]).await;
    sim.fault(json!([{ "kind": "dropNotification" }, { "kind": "duplicateNotification" }]))
        .await;
    sim.control(
        &format!("locations/{HQ}/purchase"),
        json!({ "adamId": "111", "count": 1 }),
    )
    .await;
    sim.control(
        &format!("locations/{HQ}/purchase"),
        json!({ "adamId": "111", "count": 2 }),
    )
    .await;
    let log = sim.notifications_settled().await;
    assert_eq!(log[0]["outcome"], "dropped");
    let counts = rx.of_type("ASSET_COUNT");
    assert_eq!(counts.len(), 2, "the second purchase arrives twice");
    assert_eq!(
        counts[0], counts[1],
        "same notificationId: a receiver can de-duplicate"
    );
    assert_eq!(counts[0]["notification"]["countDelta"], 2);
}

#[tokio::test]
async fn transfers_and_refunds_change_counts_at_both_ends() {
    let sim = TestSim::small().await;
    let rx = Receiver::start().await;
    subscribe(&sim, &sim.token(HQ).await, &rx, &["ASSET_COUNT"]).await;
    subscribe(&sim, &sim.token(SCHOOL).await, &rx, &["ASSET_COUNT"]).await;
    let (s, body) = sim
        .control(
            "transfer",
            json!({ "fromUId": HQ, "toUId": SCHOOL, "adamId": "111", "count": 4 }),
        )
        .await;
    assert_eq!(s, 400, "only 3 are free: {body}");
    assert!(body["error"].as_str().unwrap().contains("free"));
    let (s, _) = sim
        .control(
            "transfer",
            json!({ "fromUId": HQ, "toUId": SCHOOL, "adamId": "111", "count": 2 }),
        )
        .await;
    assert_eq!(s, 204);
    sim.notifications_settled().await;
    let hq = sim.asset(HQ, "111").await;
    assert_eq!(
        (hq["totalCount"].as_i64(), hq["availableCount"].as_i64()),
        (Some(3), Some(1))
    );
    assert_eq!(sim.asset(SCHOOL, "111").await["totalCount"], 12);
    let deltas: Vec<_> = rx
        .of_type("ASSET_COUNT")
        .iter()
        .map(|n| {
            (
                n["uId"].as_str().unwrap().to_owned(),
                n["notification"]["countDelta"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(deltas, vec![(HQ.to_owned(), -2), (SCHOOL.to_owned(), 2)]);
}

#[tokio::test]
async fn the_invitation_page_lets_a_user_join() {
    let sim = TestSim::small().await;
    let rx = Receiver::start().await;
    let t = sim.token(HQ).await;
    subscribe(&sim, &t, &rx, &["USER_ASSOCIATED"]).await;
    let code = sim.get("users?clientUserId=bob", &t).await.ok()["users"][0]["inviteCode"]
        .as_str()
        .unwrap()
        .to_owned();
    let template = sim
        .http
        .get(sim.url("service/config"))
        .send()
        .await
        .unwrap()
        .json::<serde_json::Value>()
        .await
        .unwrap()["urls"]["invitationEmail"]
        .as_str()
        .unwrap()
        .to_owned();
    let url = template.replace("%25inviteCode%25", &code);
    let page = sim
        .http
        .get(&url)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("Acme"), "{page}");
    let res = sim
        .http
        .post(&url)
        .form(&[
            ("inviteCode", code.as_str()),
            ("appleAccount", "bob@icloud.example"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 200);
    assert_eq!(
        sim.get("users?clientUserId=bob", &t).await.ok()["users"][0]["status"],
        "Associated"
    );
    sim.notifications_settled().await;
    assert_eq!(rx.of_type("USER_ASSOCIATED").len(), 1);
    // The code is spent.
    assert_eq!(
        sim.http.get(&url).send().await.unwrap().status().as_u16(),
        404
    );
}
