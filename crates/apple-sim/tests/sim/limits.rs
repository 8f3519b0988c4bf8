use std::time::Instant;

use serde_json::json;

use crate::support::*;

#[tokio::test]
async fn requests_beyond_the_per_second_limit_get_9646_and_retry_after() {
    let sim = TestSim::small().await;
    sim.settings(json!({ "limits": { "maxRequestPerSecond": 5 } }))
        .await;
    let t = sim.token(HQ).await;
    let mut limited = None;
    for _ in 0..30 {
        let a = sim.get("assets", &t).await;
        if a.status == 429 {
            limited = Some(a);
            break;
        }
    }
    let a = limited.expect("the sixth request within a second is refused");
    a.assert_error(9646, 429);
    assert_eq!(a.headers.get("retry-after").unwrap(), "1");
    // Other locations have budgets of their own.
    sim.get("assets", &sim.token(SCHOOL).await).await.ok();
    // After the window, requests go through again.
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    sim.get("assets", &t).await.ok();
    assert!(
        sim.control_get("stats").await["rateLimited"]
            .as_i64()
            .unwrap()
            >= 1
    );

    sim.settings(json!({ "limits": { "maxRequestPerSecond": 0 } }))
        .await;
    for _ in 0..30 {
        sim.get("users", &t).await.ok();
    }
}

#[tokio::test]
async fn injected_outages_answer_with_retry_after() {
    let sim = TestSim::small().await;
    let t = sim.token(HQ).await;
    sim.fault(json!([
        { "kind": "unavailable", "retryAfter": 7, "endpoint": "assets" },
        { "kind": "rateLimited", "retryAfter": 3, "endpoint": "assignments", "count": 2 },
        { "kind": "internal", "endpoint": "users" },
        { "kind": "maintenance", "endpoint": "status" },
        { "kind": "gone", "endpoint": "client/config" }
    ]))
    .await;
    let a = sim.get("assets", &t).await;
    a.assert_error(9729, 503);
    assert_eq!(a.headers.get("retry-after").unwrap(), "7");
    sim.get("assets", &t).await.ok();
    for _ in 0..2 {
        let a = sim.get("assignments", &t).await;
        a.assert_error(9646, 429);
        assert_eq!(a.headers.get("retry-after").unwrap(), "3");
    }
    sim.get("assignments", &t).await.ok();
    sim.get("users", &t).await.assert_error(9603, 500);
    sim.get("status?eventId=x", &t)
        .await
        .assert_error(9644, 503);
    sim.get("client/config", &t).await.assert_error(9634, 410);
    sim.get("client/config", &t).await.ok();
    assert_eq!(sim.control_get("faults").await, json!([]));
}

#[tokio::test]
async fn slow_answers_and_bad_fault_requests() {
    let sim = TestSim::small().await;
    let t = sim.token(HQ).await;
    sim.fault(json!({ "kind": "slow", "delayMs": 300, "endpoint": "users" }))
        .await;
    let started = Instant::now();
    sim.get("users", &t).await.ok();
    assert!(started.elapsed().as_millis() >= 300);
    let (status, body) = sim.control("faults", json!({ "kind": "meteor" })).await;
    assert_eq!(status, 400);
    assert!(body["error"].as_str().unwrap().contains("meteor"), "{body}");
}
