use serde_json::json;

use crate::support::*;

#[tokio::test]
async fn the_control_api_reports_clear_errors() {
    let sim = TestSim::small().await;
    let (s, b) = sim
        .control(
            "locations/42/purchase",
            json!({ "adamId": "1", "count": 1 }),
        )
        .await;
    assert_eq!(s, 404);
    assert!(b["error"].as_str().unwrap().contains("42"));
    let (s, b) = sim
        .control(
            &format!("locations/{HQ}/purchase"),
            json!({ "adamId": "1", "count": 0 }),
        )
        .await;
    assert_eq!(s, 400, "{b}");
    let (s, b) = sim
        .control(
            &format!("locations/{HQ}/purchase"),
            json!({ "adamId": "1", "cnt": 3 }),
        )
        .await;
    assert_eq!(s, 400);
    assert!(b["error"].as_str().unwrap().contains("cnt"), "{b}");
    let (s, _) = sim
        .control(
            &format!("locations/{HQ}/refund"),
            json!({ "adamId": "333", "count": 1 }),
        )
        .await;
    assert_eq!(s, 400, "unlimited assets cannot be refunded");
    let (s, _) = sim
        .control(&format!("locations/{HQ}/users/alice/accept"), json!({}))
        .await;
    assert_eq!(s, 400, "alice has already joined");
    let (s, _) = sim
        .control(&format!("locations/{HQ}/token/burn"), json!({}))
        .await;
    assert_eq!(s, 404);
    let res = sim
        .http
        .patch(format!("{}/_sim/settings", sim.sim.base_url))
        .json(&json!({ "assetsPageSize": 0 }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 400);
    let res = sim
        .http
        .patch(format!("{}/_sim/settings", sim.sim.base_url))
        .json(&json!({ "pageSize": 5 }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 400, "unknown settings are refused");
}

#[tokio::test]
async fn purchases_of_new_assets_appear_in_get_assets() {
    let sim = TestSim::small().await;
    let t = sim.token(BRANCH).await;
    let (s, _) = sim
        .control(
            &format!("locations/{BRANCH}/purchase"),
            json!({ "adamId": "777", "count": 4, "productType": "Book", "name": "New Book" }),
        )
        .await;
    assert_eq!(s, 204);
    let assets = sim.get("assets?productType=Book", &t).await;
    let book = &assets.ok()["assets"][0];
    assert_eq!(
        (
            book["adamId"].as_str(),
            book["totalCount"].as_i64(),
            book["deviceAssignable"].as_bool()
        ),
        (Some("777"), Some(4), Some(false))
    );
}

#[tokio::test]
async fn unknown_paths_are_404_with_a_body() {
    let sim = TestSim::small().await;
    let res = sim.http.get(sim.url("licenses")).send().await.unwrap();
    assert_eq!(res.status().as_u16(), 404);
    assert!(res.json::<serde_json::Value>().await.unwrap()["errorMessage"].is_string());
}
