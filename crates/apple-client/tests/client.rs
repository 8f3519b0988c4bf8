//! The client against the simulator, over HTTP.

use std::time::Duration;

use allot_apple_client::{
    walk, AppleClient, AppleError, AssignmentsQuery, Bearer, ClientOptions, PageSink, SinkError,
};
use allot_apple_wire::{AssetRef, GetAssignmentsResponse, ManageAssetsRequest};
use serde_json::{json, Value};

const SCENARIO: &str = r#"{
  "settings": { "assignmentsPageSize": 100, "eventDelayMs": 0, "tickMs": 5, "limits": { "maxRequestPerSecond": 0 } },
  "generate": [ { "seed": 3, "assets": 10, "users": 300, "serialNumbers": 300, "assignments": 1000 } ]
}"#;

struct Env {
    sim: allot_apple_sim::RunningSim,
    client: AppleClient,
    token: Bearer,
    uid: String,
    http: reqwest::Client,
}

async fn env(scenario: &str) -> Env {
    let sim = allot_apple_sim::start_local(scenario).await.unwrap();
    let mut opts = ClientOptions::new(&sim.apple_url());
    opts.backoff = Duration::from_millis(20);
    let client = AppleClient::new(opts);
    let (token, uid) = {
        let w = sim.shared.lock().unwrap();
        (Bearer::new(&w.current_token[0]), w.locations[0].uid.clone())
    };
    Env {
        sim,
        client,
        token,
        uid,
        http: reqwest::Client::new(),
    }
}

impl Env {
    async fn control(&self, path: &str, body: Value) {
        let res = self
            .http
            .post(format!("{}/_sim/{path}", self.sim.base_url))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert!(
            res.status().is_success(),
            "{path}: {}",
            res.text().await.unwrap()
        );
    }
    async fn settings(&self, body: Value) {
        let res = self
            .http
            .patch(format!("{}/_sim/settings", self.sim.base_url))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert!(res.status().is_success());
    }
    async fn stats(&self) -> Value {
        self.http
            .get(format!("{}/_sim/stats", self.sim.base_url))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }
}

#[derive(Default)]
struct Collect(Vec<allot_apple_wire::Assignment>);

impl PageSink<GetAssignmentsResponse> for Collect {
    async fn page(&mut self, page: GetAssignmentsResponse) -> Result<(), SinkError> {
        self.0.extend(page.assignments);
        Ok(())
    }
}

async fn walk_all(
    e: &Env,
) -> (
    allot_apple_client::WalkSummary,
    Vec<allot_apple_wire::Assignment>,
) {
    let q = AssignmentsQuery::default();
    let mut sink = Collect::default();
    let summary = walk(
        5,
        |i| e.client.assignments_page(&e.token, &q, i),
        |p| p.assignments.len(),
        &mut sink,
    )
    .await
    .unwrap();
    (summary, sink.0)
}

#[tokio::test]
async fn walks_every_page_in_order() {
    let e = env(SCENARIO).await;
    let (summary, got) = walk_all(&e).await;
    assert_eq!((summary.pages, summary.records), (10, 1000));
    assert!(!summary.changed_during_walk);
    let state: Value = e
        .http
        .get(format!("{}/_sim/state?uId={}", e.sim.base_url, e.uid))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let want: Vec<allot_apple_wire::Assignment> =
        serde_json::from_value(state["locations"][0]["assignments"].clone()).unwrap();
    assert_eq!(got, want);
}

#[tokio::test]
async fn a_walk_notices_a_write_between_pages() {
    let e = env(SCENARIO).await;
    e.control(
        "faults",
        json!({ "kind": "writeAfterPage", "page": 3, "endpoint": "assignments" }),
    )
    .await;
    let (summary, got) = walk_all(&e).await;
    assert!(summary.changed_during_walk);
    assert!(got.len() >= 1000);
    let (again, _) = walk_all(&e).await;
    assert!(
        !again.changed_during_walk,
        "a second walk of still data is clean"
    );
    assert_eq!(again.records, 1001);
}

#[tokio::test]
async fn reads_wait_out_retry_after_and_recover() {
    let e = env(SCENARIO).await;
    e.control(
        "faults",
        json!([{ "kind": "unavailable", "retryAfter": 1, "count": 2, "endpoint": "assets" },
                               { "kind": "rateLimited", "retryAfter": 1, "endpoint": "assets" }]),
    )
    .await;
    let started = std::time::Instant::now();
    let page = e.client.assets_page(&e.token, 0).await.unwrap();
    assert_eq!(page.assets.len(), 10);
    assert!(
        started.elapsed() >= Duration::from_secs(3),
        "three Retry-After: 1 waits were honoured"
    );
    assert_eq!(e.stats().await["requests"]["assets"], 4);
}

#[tokio::test]
async fn writes_are_resent_only_when_apple_refused_them() {
    let e = env(SCENARIO).await;
    let adam = e
        .client
        .assets_page(&e.token, 0)
        .await
        .unwrap()
        .assets
        .into_iter()
        .find(|a| a.device_assignable)
        .unwrap()
        .adam_id;
    let req = ManageAssetsRequest {
        assets: vec![AssetRef::new(&adam, "STDQ")],
        client_user_ids: vec![],
        serial_numbers: vec!["W1".into()],
    };
    // A 503 is a refusal: sent again, and it goes through once.
    e.control(
        "faults",
        json!({ "kind": "unavailable", "retryAfter": 0, "endpoint": "assets/associate" }),
    )
    .await;
    e.client.associate(&e.token, &req).await.unwrap();
    assert_eq!(e.stats().await["requests"]["assets/associate"], 2);
    // A 500 on a write is not replayed: the caller must read back.
    e.control(
        "faults",
        json!({ "kind": "internal", "endpoint": "assets/associate" }),
    )
    .await;
    let err = e.client.associate(&e.token, &req).await.unwrap_err();
    assert!(
        matches!(err, AppleError::ServerError { number: 9603, .. }),
        "{err}"
    );
    assert_eq!(e.stats().await["requests"]["assets/associate"], 3);
}

#[tokio::test]
async fn errors_are_found_in_the_body_whatever_the_status() {
    let e = env(SCENARIO).await;
    e.settings(json!({ "errorsWithHttp200": true })).await;
    let err = e
        .client
        .status(&e.token, "no-such-event")
        .await
        .unwrap_err();
    assert_eq!(err.error_number(), Some(9708));
    e.control(&format!("locations/{}/token/expire", e.uid), json!({}))
        .await;
    let err = e.client.assets_page(&e.token, 0).await.unwrap_err();
    assert!(matches!(err, AppleError::TokenExpired), "{err}");
    assert!(err.to_string().contains("download a new token"));
    e.control(&format!("locations/{}/token/revoke", e.uid), json!({}))
        .await;
    assert!(matches!(
        e.client.assets_page(&e.token, 0).await.unwrap_err(),
        AppleError::TokenRevoked
    ));
}

#[tokio::test]
async fn requests_are_paced_to_the_published_rate() {
    let e =
        env(&SCENARIO.replace("\"maxRequestPerSecond\": 0", "\"maxRequestPerSecond\": 8")).await;
    let (summary, _) = walk_all(&e).await;
    assert_eq!(summary.records, 1000);
    let stats = e.stats().await;
    assert_eq!(stats["rateLimited"], 0, "no request was refused: {stats}");
}

#[tokio::test]
async fn service_config_and_metadata() {
    let e = env(SCENARIO).await;
    assert_eq!(e.client.request_limit("maxSerialNumbers").await, 1000);
    let assets = e.client.assets_page(&e.token, 0).await.unwrap().assets;
    let ids: Vec<String> = assets.iter().take(3).map(|a| a.adam_id.clone()).collect();
    // Both of Apple's documented answer forms parse, over HTTP.
    for form in ["template", "sizes"] {
        e.settings(json!({ "lookupForm": form })).await;
        let meta = e
            .client
            .lookup(&ids, "enterprisestore", "US", "en-us", Some(&e.token))
            .await
            .unwrap();
        assert_eq!(meta.results.len(), 3, "{form}");
        for m in meta.results.values() {
            assert!(!m.name.is_empty() && ids.contains(&m.id), "{form}: {m:?}");
            let icon = m.artwork.as_ref().and_then(|a| a.icon_url(512)).unwrap();
            assert!(icon.ends_with("512x512bb.png"), "{form}: {icon}");
            assert!(m.minimum_os_version.is_some());
        }
    }
}

const CUSTOM_APPS: &str = r#"{
  "settings": { "eventDelayMs": 0, "limits": { "maxRequestPerSecond": 0 } },
  "organizations": [
    { "name": "Acme", "locations": [
      { "name": "Acme HQ", "assets": [
          { "adamId": "100", "totalCount": 5, "name": "Public App" },
          { "adamId": "200", "totalCount": 5, "name": "Acme Field Tool", "isB2BCustomApp": true },
          { "adamId": "300", "totalCount": 5, "name": "Retired Reader", "removedFromSale": true } ] },
      { "name": "Acme Branch", "assets": [ { "adamId": "100", "totalCount": 1 } ] }
    ] } ]
}"#;

/// Apple names custom apps and apps no longer sold only to a location that owns them, when the
/// request carries its token as the `itvt` cookie (spec §18.1).
#[tokio::test]
async fn custom_apps_are_named_only_with_an_owners_cookie() {
    let e = env(CUSTOM_APPS).await;
    let branch = Bearer::new(&e.sim.shared.lock().unwrap().current_token[1]);
    let ids: Vec<String> = ["100", "200", "300"].map(String::from).to_vec();
    async fn names(e: &Env, ids: &[String], cookie: Option<&Bearer>) -> Vec<(String, bool)> {
        let res = e
            .client
            .lookup(ids, "enterprisestore", "US", "en-us", cookie)
            .await
            .unwrap();
        res.results
            .values()
            .map(|m| (m.name.clone(), m.is_b2b_custom_app))
            .collect()
    }
    let public = vec![("Public App".to_owned(), false)];
    assert_eq!(names(&e, &ids, None).await, public);
    assert_eq!(
        names(&e, &ids, Some(&branch)).await,
        public,
        "not the branch's apps"
    );
    assert_eq!(
        names(&e, &ids, Some(&e.token)).await,
        vec![
            ("Public App".to_owned(), false),
            ("Acme Field Tool".to_owned(), true),
            ("Retired Reader".to_owned(), false)
        ]
    );
    // A purchase through the control API can make a custom app too.
    e.control(
        &format!("locations/{}/purchase", e.uid),
        json!({ "adamId": "400", "count": 2, "name": "Acme Kiosk", "isB2BCustomApp": true }),
    )
    .await;
    let four = ["400".to_owned()];
    let res = e
        .client
        .lookup(&four, "enterprisestore", "US", "en-us", None)
        .await
        .unwrap();
    assert!(res.results.is_empty());
    let res = e
        .client
        .lookup(&four, "enterprisestore", "US", "en-us", Some(&e.token))
        .await
        .unwrap();
    assert!(res.results["400"].is_b2b_custom_app);
}
