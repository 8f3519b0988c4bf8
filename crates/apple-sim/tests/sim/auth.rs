use serde_json::json;

use crate::support::*;

#[tokio::test]
async fn credentials_are_checked_with_apples_error_numbers() {
    let sim = TestSim::small().await;
    let url = sim.url("assets");
    let raw = |req: reqwest::RequestBuilder| async move {
        let res = req.send().await.unwrap();
        (
            res.status().as_u16(),
            res.json::<serde_json::Value>().await.unwrap()["errorNumber"].as_i64(),
        )
    };
    assert_eq!(
        raw(sim.http.get(&url)).await,
        (401, Some(9601)),
        "no Authorization header"
    );
    assert_eq!(
        raw(sim.http.get(&url).header("Authorization", "Basic abc")).await,
        (401, Some(9722))
    );
    assert_eq!(
        raw(sim.http.get(&url).header("Authorization", "Bearer")).await,
        (401, Some(9722))
    );
    sim.get("assets", "bm90IGEgdG9rZW4=")
        .await
        .assert_error(9601, 401);
    let token = sim.token(HQ).await;
    sim.get("assets", &token).await.ok();
}

#[tokio::test]
async fn expired_revoked_and_renewed_tokens() {
    let dir = std::env::temp_dir().join(format!("allot-sim-tokens-{}", std::process::id()));
    let sim = TestSim::start_with(SMALL, Some(dir.clone())).await;
    let token = sim.token(HQ).await;
    assert_eq!(
        std::fs::read_to_string(dir.join("Acme-HQ.vpptoken")).unwrap(),
        token,
        "the token file holds the token"
    );

    // Renewing issues a new token; the old one is revoked and the file rewritten.
    let (status, renewed) = sim
        .control(&format!("locations/{HQ}/token/renew"), json!({}))
        .await;
    assert_eq!(status, 200);
    let new = renewed["token"].as_str().unwrap();
    assert_ne!(new, token);
    sim.get("assets", &token).await.assert_error(9625, 401);
    sim.get("assets", new).await.ok();
    assert_eq!(
        std::fs::read_to_string(dir.join("Acme-HQ.vpptoken")).unwrap(),
        new
    );

    sim.control(&format!("locations/{HQ}/token/revoke"), json!({}))
        .await;
    sim.get("assets", new).await.assert_error(9625, 401);

    let school = sim.token(SCHOOL).await;
    sim.control(&format!("locations/{SCHOOL}/token/expire"), json!({}))
        .await;
    sim.get("client/config", &school)
        .await
        .assert_error(9621, 401);

    // The clock: the branch token expires in 10 days.
    let branch = sim.token(BRANCH).await;
    sim.get("assets", &branch).await.ok();
    sim.control("clock/advance", json!({ "seconds": 11 * 86400 }))
        .await;
    sim.get("assets", &branch).await.assert_error(9621, 401);
    std::fs::remove_dir_all(dir).ok();
}

#[tokio::test]
async fn wrong_method_and_content_type() {
    let sim = TestSim::small().await;
    let token = sim.token(HQ).await;
    for (method, path) in [
        (reqwest::Method::DELETE, "assets"),
        (reqwest::Method::POST, "assignments"),
        (reqwest::Method::GET, "assets/associate"),
        (reqwest::Method::PUT, "users/create"),
        (reqwest::Method::POST, "status"),
        (reqwest::Method::POST, "service/config"),
    ] {
        let res = sim
            .http
            .request(method.clone(), sim.url(path))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status().as_u16(), 405, "{method} {path}");
        assert_eq!(
            res.json::<serde_json::Value>().await.unwrap()["errorNumber"],
            9726
        );
    }
    let res = sim
        .http
        .post(sim.url("assets/associate"))
        .bearer_auth(&token)
        .header("Content-Type", "text/plain")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 415);
    assert_eq!(
        res.json::<serde_json::Value>().await.unwrap()["errorNumber"],
        9727
    );
    // Malformed JSON is 9602, not a crash.
    let res = sim
        .http
        .post(sim.url("assets/associate"))
        .bearer_auth(&token)
        .header("Content-Type", "application/json; charset=utf-8")
        .body("{\"assets\": [")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 400);
    assert_eq!(
        res.json::<serde_json::Value>().await.unwrap()["errorNumber"],
        9602
    );
}

#[tokio::test]
async fn errors_can_come_with_http_200_as_apple_has_been_seen_to_send() {
    let sim = TestSim::small().await;
    sim.settings(json!({ "errorsWithHttp200": true })).await;
    let a = sim.get("assets", "bm9wZQ==").await;
    assert_eq!(a.status, 200);
    assert_eq!(a.error_number(), Some(9601));
}

#[tokio::test]
async fn token_expiration_date_always_or_only_in_the_warning_window() {
    let sim = TestSim::small().await;
    let (hq, branch) = (sim.token(HQ).await, sim.token(BRANCH).await);
    let a = sim.get("assets", &hq).await;
    let date = a.ok()["tokenExpirationDate"].as_str().unwrap().to_owned();
    assert!(
        allot_apple_wire::parse_apple_date(&date).is_some(),
        "{date}"
    );
    assert!(date.ends_with("+0000"), "Apple's format: {date}");
    assert_eq!(a.body["uId"], HQ);

    sim.settings(json!({ "tokenExpirationDate": "warningWindow" }))
        .await;
    assert!(
        sim.get("assets", &hq)
            .await
            .ok()
            .get("tokenExpirationDate")
            .is_none(),
        "365 days away"
    );
    assert!(
        sim.get("assets", &branch)
            .await
            .ok()
            .get("tokenExpirationDate")
            .is_some(),
        "10 days away"
    );
}
