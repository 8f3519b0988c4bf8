use serde_json::{json, Value};

use crate::support::*;

#[tokio::test]
async fn service_config_needs_no_credentials_and_points_at_the_simulator() {
    let sim = TestSim::small().await;
    let res = sim
        .http
        .get(sim.url("service/config"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 200);
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["limits"]["maxAssets"], 25);
    assert_eq!(
        body["limits"]["maxRequestPerSecond"], 0,
        "the scenario turned the rate limit off"
    );
    assert_eq!(
        body["limits"]["maxSerialNumbers"], 1000,
        "other limits keep Apple's defaults"
    );
    assert_eq!(body["urls"]["getAssets"], sim.url("assets"));
    assert!(body["urls"]["invitationEmail"]
        .as_str()
        .unwrap()
        .contains("inviteCode=%25inviteCode%25"));
    let codes: Vec<i64> = body["errorCodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["errorNumber"].as_i64().unwrap())
        .collect();
    for n in [9601, 9646, 9709, 9721, 9729] {
        assert!(codes.contains(&n), "{n} listed");
    }
    // With a Bearer header too.
    sim.get("service/config", &sim.token(HQ).await).await.ok();
}

#[tokio::test]
async fn client_config_describes_the_location_and_echoes_mdm_info() {
    let sim = TestSim::small().await;
    let token = sim.token(SCHOOL).await;
    let c = sim.get("client/config", &token).await;
    let c = c.ok();
    assert_eq!(c["locationName"], "Springfield High");
    assert_eq!(c["countryISO2ACode"], "GB");
    assert_eq!(c["defaultPlatform"], "volumestore");
    assert_eq!(c["websiteURL"], "https://school.apple.com");
    assert_eq!(c["uId"], SCHOOL);
    assert!(c.get("mdmInfo").is_none(), "unclaimed");

    let ours = json!({ "id": "allot-1", "name": "Allot", "metadata": "0.1.0" });
    sim.post("client/config", &token, json!({ "mdmInfo": ours }))
        .await
        .ok();
    assert_eq!(
        sim.get("assets", &token).await.ok()["mdmInfo"],
        ours,
        "echoed on every response"
    );
    assert_eq!(sim.get("users", &token).await.ok()["mdmInfo"], ours);

    // Another MDM takes the location: the echo changes.
    sim.control(
        &format!("locations/{SCHOOL}/claim"),
        json!({ "id": "other", "name": "Other MDM", "metadata": "9" }),
    )
    .await;
    assert_eq!(
        sim.get("assignments", &token).await.ok()["mdmInfo"]["id"],
        "other"
    );
}

#[tokio::test]
async fn client_config_validation() {
    let sim = TestSim::small().await;
    let t = sim.token(HQ).await;
    let cases = [
        (json!({ "notificationUrl": "https://x.example/n" }), 9710),
        (json!({ "notificationAuthToken": "s" }), 9710),
        (
            json!({ "notificationUrl": format!("https://x.example/{}", "a".repeat(600)), "notificationAuthToken": "s" }),
            9711,
        ),
        (
            json!({ "notificationUrl": "https://x.example/n", "notificationAuthToken": "s".repeat(513) }),
            9711,
        ),
        (
            json!({ "notificationUrl": "not a url", "notificationAuthToken": "s" }),
            9712,
        ),
        (
            json!({ "notificationUrl": "http://mdm.example/n", "notificationAuthToken": "s" }),
            9712,
        ),
        (json!({ "mdmInfo": { "id": "x", "name": "y" } }), 9723),
        (
            json!({ "mdmInfo": { "id": "x".repeat(101), "name": "y", "metadata": "z" } }),
            9724,
        ),
        (
            json!({ "mdmInfo": { "id": "x", "name": "y".repeat(101), "metadata": "z" } }),
            9725,
        ),
        (
            json!({ "mdmInfo": { "id": "x", "name": "y", "metadata": "z".repeat(256) } }),
            9713,
        ),
        (
            json!({ "notificationTypes": ["ASSET_COUNT", "EVERYTHING"] }),
            9602,
        ),
        // Nothing listens on port 9 of loopback: the test notification cannot be delivered.
        (
            json!({ "notificationUrl": "http://127.0.0.1:9/n", "notificationAuthToken": "s" }),
            9728,
        ),
    ];
    for (body, number) in cases {
        sim.post("client/config", &t, body.clone())
            .await
            .assert_error(number, 400);
    }
    let c = sim.get("client/config", &t).await;
    assert!(
        c.ok().get("notificationUrl").is_none() && c.body.get("mdmInfo").is_none(),
        "nothing was stored"
    );
}

#[tokio::test]
async fn configuring_notifications_sends_a_test_notification_first() {
    let sim = TestSim::small().await;
    let rx = Receiver::start().await;
    let t = sim.token(HQ).await;
    let c = sim
        .post(
            "client/config",
            &t,
            json!({ "notificationUrl": rx.url, "notificationAuthToken": "secret-123", "notificationTypes": ["TEST_NOTIFICATION", "ASSET_COUNT"] }),
        )
        .await;
    let c = c.ok();
    assert_eq!(c["notificationUrl"], rx.url.as_str());
    assert_eq!(c["subscribedNotificationTypes"], json!(["ASSET_COUNT"]));
    let got = rx.got.lock().unwrap().clone();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].authorization.as_deref(), Some("Bearer secret-123"));
    assert_eq!(got[0].body["notificationType"], "TEST_NOTIFICATION");
    assert_eq!(got[0].body["notification"], json!({}));
    assert_eq!(got[0].body["uId"], HQ);

    // A later POST with only mdmInfo keeps the notification settings.
    sim.post(
        "client/config",
        &t,
        json!({ "mdmInfo": { "id": "a", "name": "b", "metadata": "c" } }),
    )
    .await
    .ok();
    assert_eq!(
        sim.get("client/config", &t).await.ok()["notificationAuthToken"],
        "secret-123"
    );

    // A receiver that refuses: the configuration is rejected and the old one kept.
    *rx.refuse.lock().unwrap() = 1;
    sim.post(
        "client/config",
        &t,
        json!({ "notificationUrl": rx.url, "notificationAuthToken": "new" }),
    )
    .await
    .assert_error(9728, 400);
    assert_eq!(
        sim.get("client/config", &t).await.ok()["notificationAuthToken"],
        "secret-123"
    );
}

/// zentral's receiver, and many organizations' MDM hosts, have certificates from a private CA:
/// with `--ca-file` naming it the simulator reaches them; without, it answers 9728 as before.
#[tokio::test]
async fn notifications_reach_an_https_receiver_whose_certificate_a_private_ca_signed() {
    use allot_trust::testing::{HttpsReceiver, PrivateCa};
    let ca = PrivateCa::new("Example Corp private CA");
    let rx = HttpsReceiver::start(&ca, &["localhost"]).await;
    let url = rx.url("localhost", "/apple/notifications/hq");
    let config = json!({ "notificationUrl": url, "notificationAuthToken": "secret-123", "notificationTypes": ["ASSET_MANAGEMENT"] });

    let untrusting = TestSim::small().await;
    let t = untrusting.token(HQ).await;
    untrusting
        .post("client/config", &t, config.clone())
        .await
        .assert_error(9728, 400);
    assert!(
        rx.received().is_empty(),
        "no request got past the handshake"
    );

    let trust = allot_trust::Trust::from_pem(ca.pem().as_bytes(), "the test CA").unwrap();
    let sim = TestSim::start_trusting(SMALL, trust).await;
    let t = sim.token(HQ).await;
    let c = sim.post("client/config", &t, config).await;
    assert_eq!(c.ok()["notificationUrl"], url.as_str());
    let test = rx.received();
    assert_eq!(test.len(), 1);
    assert_eq!(test[0].header("authorization"), Some("Bearer secret-123"));
    let body: Value = serde_json::from_slice(&test[0].body).unwrap();
    assert_eq!(body["notificationType"], "TEST_NOTIFICATION");

    // Later notifications go the same way, from the background sender.
    let e = sim
        .post(
            "assets/associate",
            &t,
            json!({ "assets": [{ "adamId": "111", "pricingParam": "STDQ" }], "serialNumbers": ["HTTPS-1"] }),
        )
        .await;
    let event_id = e.ok()["eventId"].as_str().unwrap().to_owned();
    sim.wait_event(&t, &event_id).await;
    let sent = sim.notifications_settled().await;
    assert!(sent.iter().all(|n| n["outcome"] == "delivered"), "{sent:?}");
    let got = rx.received();
    assert_eq!(got.len(), 2);
    let body: Value = serde_json::from_slice(&got[1].body).unwrap();
    assert_eq!(body["notificationType"], "ASSET_MANAGEMENT");
    assert_eq!(body["notification"]["eventId"], event_id.as_str());
}
