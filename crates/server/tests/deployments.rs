//! Deployments executed end to end: the real server, the simulator as Apple, and the fake NanoMDM
//! whose simulated devices enroll and report through the webhook.

use std::time::{Duration, Instant};

use allot_mdm::fake::{Behaviour, FakeNanoMdm, FakeOptions, SimDevice};
use allot_server::{Config, Server};
use allot_store::testing::TestDb;
use serde_json::{json, Value};

const ADMIN: &str = "test-admin-key-0123456789";
const HMAC: &str = "webhook-hmac-key-0123456789";

const SCENARIO: &str = r#"{
  "settings": { "eventDelayMs": 0, "tickMs": 5, "notificationRetryDelayMs": 50, "limits": { "maxRequestPerSecond": 0 } },
  "organizations": [ { "name": "Acme", "locations": [ { "name": "HQ", "uId": "5000000000000001",
    "assets": [ { "adamId": "777", "totalCount": 2, "name": "Two Seats" },
                { "adamId": "888", "totalCount": 1, "name": "Last Seat" },
                { "adamId": "999", "totalCount": 5, "name": "Plenty" } ] } ] } ]
}"#;

struct Env {
    sim: allot_apple_sim::RunningSim,
    mdm: FakeNanoMdm,
    base: String,
    http: reqwest::Client,
    _db: TestDb,
    _dir: std::path::PathBuf,
}

async fn env() -> Env {
    let sim = allot_apple_sim::start_local(SCENARIO).await.unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let mdm = FakeNanoMdm::start(FakeOptions {
        webhook_url: Some(format!("{base}/mdm/webhook")),
        hmac_key: Some(HMAC.as_bytes().to_vec()),
        ..Default::default()
    })
    .await
    .unwrap();
    let db = TestDb::sqlite().await;
    let dir = std::env::temp_dir().join(format!("allot-deploy-{}", uuid::Uuid::new_v4().simple()));
    let config = Config {
        data_dir: dir.clone(),
        database_url: Some(db.url.clone()),
        apple_url: sim.apple_url(),
        public_url: Some(base.clone()),
        admin_api_key: Some(ADMIN.into()),
        mdm_webhook_hmac_key: Some(HMAC.into()),
        nanomdm_url: Some(mdm.base_url.clone()),
        nanomdm_api_key: Some("nanomdm-api-key".into()),
        deploy_tick: Duration::from_millis(50),
        event_poll: Duration::ZERO,
        reclaim_grace: Duration::ZERO,
        ..Default::default()
    };
    let server = Server::build(&config).await.unwrap();
    server.start_deployments();
    let router = server.router.clone();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    Env {
        sim,
        mdm,
        base,
        http: reqwest::Client::new(),
        _db: db,
        _dir: dir,
    }
}

impl Env {
    async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> (u16, Value) {
        let mut req = self
            .http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(ADMIN);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let res = req.send().await.unwrap();
        let status = res.status().as_u16();
        (status, res.json().await.unwrap_or(Value::Null))
    }

    async fn until(&self, path: &str, what: &str, check: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let (_, body) = self.call(reqwest::Method::GET, path, None).await;
            if check(&body) {
                return body;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}: {body}"
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    async fn devices(&self, collection: &str, serials: &[&str]) -> Vec<String> {
        let mut udids = Vec::new();
        for s in serials {
            let udid = format!("UDID-{s}");
            assert!(
                self.mdm
                    .enroll(SimDevice {
                        udid: udid.clone(),
                        serial_number: (*s).into(),
                        product_name: "iPad13,1".into(),
                        name: (*s).into()
                    })
                    .await
            );
            udids.push(udid);
        }
        self.call(
            reqwest::Method::POST,
            "/api/v1/collections",
            Some(json!({ "name": collection, "kind": "devices" })),
        )
        .await;
        let (status, _) = self
            .call(
                reqwest::Method::POST,
                &format!("/api/v1/collections/{collection}/members"),
                Some(json!({ "members": serials })),
            )
            .await;
        assert_eq!(status, 200);
        udids
    }

    async fn assigned(&self, adam: &str) -> i64 {
        let state: Value = self
            .http
            .get(format!(
                "{}/_sim/state?uId=5000000000000001",
                self.sim.base_url
            ))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        state["locations"][0]["assets"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["adamId"] == adam)
            .unwrap()["assignedCount"]
            .as_i64()
            .unwrap()
    }
}

fn count(d: &Value, status: &str) -> i64 {
    d["statuses"][status].as_i64().unwrap_or(0)
}

#[tokio::test]
async fn a_required_device_deployment_licenses_installs_and_runs_out_cleanly() {
    let e = env().await;
    let token: Value = e
        .http
        .get(format!("{}/_sim/locations", e.sim.base_url))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let (status, t) = e
        .call(
            reqwest::Method::POST,
            "/api/v1/tokens",
            Some(json!({ "name": "HQ", "token": token[0]["token"], "programType": "business" })),
        )
        .await;
    assert_eq!(status, 201, "{t}");
    e.until(
        &format!("/api/v1/tokens/{}/sync", t["id"]),
        "the first sync",
        |b| b["latest"]["status"] == "succeeded",
    )
    .await;

    let udids = e.devices("Cart", &["C1", "C2", "C3"]).await;
    let (status, d) = e
        .call(
            reqwest::Method::POST,
            "/api/v1/deployments",
            Some(json!({ "adamId": "777", "collection": "Cart" })),
        )
        .await;
    assert_eq!(status, 201, "{d}");
    let path = format!("/api/v1/deployments/{}", d["id"]);
    // Two licenses for three iPads: two installs go out, the third fails cleanly.
    let d = e
        .until(&path, "installs sent", |b| {
            count(b, "install_sent") == 2 && count(b, "failed") == 1
        })
        .await;
    let failed = d["targets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["status"] == "failed")
        .unwrap();
    assert_eq!(failed["detail"], "no license available");
    assert_eq!(e.assigned("777").await, 2, "Apple holds exactly two");
    for u in &udids {
        e.mdm.drain(u).await;
    }
    let d = e
        .until(&path, "installed", |b| count(b, "installed") == 2)
        .await;
    assert_eq!(
        d["targets"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|t| t["license"] == "device")
            .count(),
        3
    );
    let installed: usize = udids.iter().map(|u| e.mdm.installed_apps(u).len()).sum();
    assert_eq!(installed, 2);
    let (_, only_failed) = e
        .call(reqwest::Method::GET, &format!("{path}?status=failed"), None)
        .await;
    assert_eq!(only_failed["targets"].as_array().unwrap().len(), 1);
    let (_, paged) = e
        .call(
            reqwest::Method::GET,
            &format!("{path}?limit=2&offset=1"),
            None,
        )
        .await;
    let labels: Vec<&str> = paged["targets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["target"].as_str().unwrap())
        .collect();
    assert_eq!(labels, vec!["C2", "C3"], "pages by serial number");
    assert_eq!(
        paged["statuses"]["installed"], 2,
        "counts cover every target, not the page"
    );
    assert_eq!(
        e.call(reqwest::Method::GET, &format!("{path}?limit=5000"), None)
            .await
            .0,
        422
    );

    // A device leaves management: its license goes back to Apple (grace period 0 here).
    assert!(e.mdm.check_out(&udids[0]).await);
    let d = e
        .until(&path, "the reclaim", |b| count(b, "license_reclaimed") == 1)
        .await;
    assert_eq!(count(&d, "installed"), 1);
    assert_eq!(
        e.assigned("777").await,
        1,
        "the license is free again at Apple"
    );
    let (_, apps) = e
        .call(reqwest::Method::GET, "/api/v1/apps?search=two", None)
        .await;
    assert_eq!(
        (
            apps["apps"][0]["used"].as_i64(),
            apps["apps"][0]["available"].as_i64()
        ),
        (Some(1), Some(1))
    );

    // Two deployments race for the last license: exactly one gets it.
    e.devices("Left", &["L1"]).await;
    e.devices("Right", &["R1"]).await;
    let (a, b) = tokio::join!(
        e.call(
            reqwest::Method::POST,
            "/api/v1/deployments",
            Some(json!({ "adamId": "888", "collection": "Left" }))
        ),
        e.call(
            reqwest::Method::POST,
            "/api/v1/deployments",
            Some(json!({ "adamId": "888", "collection": "Right" }))
        )
    );
    let ids = [a.1["id"].clone(), b.1["id"].clone()];
    let mut winners = 0;
    for id in &ids {
        let d = e
            .until(
                &format!("/api/v1/deployments/{id}"),
                "the race to settle",
                |b| count(b, "install_sent") + count(b, "failed") == 1,
            )
            .await;
        winners += count(&d, "install_sent");
    }
    assert_eq!(winners, 1);
    assert_eq!(e.assigned("888").await, 1, "never over-assigned");

    // Waiting: a device waits until a license is bought (Apple's ASSET_COUNT tells us).
    e.devices("Queue", &["Q1"]).await;
    let (_, w) = e
        .call(
            reqwest::Method::POST,
            "/api/v1/deployments",
            Some(json!({ "adamId": "888", "collection": "Queue", "onShortage": "wait" })),
        )
        .await;
    let wpath = format!("/api/v1/deployments/{}", w["id"]);
    e.until(&wpath, "waiting", |b| count(b, "waiting_for_license") == 1)
        .await;
    e.http
        .post(format!(
            "{}/_sim/locations/5000000000000001/purchase",
            e.sim.base_url
        ))
        .json(&json!({ "adamId": "888", "count": 1 }))
        .send()
        .await
        .unwrap();
    e.until(&wpath, "the waiting device's install", |b| {
        count(b, "install_sent") == 1
    })
    .await;
    assert_eq!(e.assigned("888").await, 2);

    // A device that refuses the install: failed, with the device's words.
    let udids = e.devices("Broken", &["B1"]).await;
    e.mdm.set_behaviour(
        &udids[0],
        Behaviour::FailInstalls {
            code: 12064,
            domain: "MCMDMErrorDomain".into(),
            description: "License not found".into(),
        },
    );
    let (_, bd) = e
        .call(
            reqwest::Method::POST,
            "/api/v1/deployments",
            Some(json!({ "adamId": "999", "collection": "Broken" })),
        )
        .await;
    let bpath = format!("/api/v1/deployments/{}", bd["id"]);
    e.until(&bpath, "the install", |b| count(b, "install_sent") == 1)
        .await;
    e.mdm.drain(&udids[0]).await;
    let d = e
        .until(&bpath, "the failure", |b| count(b, "failed") == 1)
        .await;
    assert_eq!(
        d["targets"][0]["detail"],
        "the device reported: License not found (MCMDMErrorDomain 12064)"
    );
}

#[tokio::test]
async fn what_this_version_cannot_execute_is_refused_with_the_reason() {
    let e = env().await;
    let token: Value = e
        .http
        .get(format!("{}/_sim/locations", e.sim.base_url))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let (_, t) = e
        .call(
            reqwest::Method::POST,
            "/api/v1/tokens",
            Some(json!({ "name": "HQ", "token": token[0]["token"], "programType": "business" })),
        )
        .await;
    e.until(
        &format!("/api/v1/tokens/{}/sync", t["id"]),
        "the first sync",
        |b| b["latest"]["status"] == "succeeded",
    )
    .await;
    e.call(
        reqwest::Method::POST,
        "/api/v1/collections",
        Some(json!({ "name": "People", "kind": "users" })),
    )
    .await;
    e.devices("Cart", &["C1"]).await;
    let (status, res) = e
        .call(
            reqwest::Method::POST,
            "/api/v1/deployments",
            Some(json!({ "adamId": "777", "collection": "People" })),
        )
        .await;
    assert_eq!(status, 422);
    assert!(
        res["error"]["message"]
            .as_str()
            .unwrap()
            .contains("device licenses only"),
        "{res}"
    );
    let (status, res) = e
        .call(
            reqwest::Method::POST,
            "/api/v1/deployments",
            Some(json!({ "adamId": "777", "collection": "Cart", "action": "uninstall" })),
        )
        .await;
    assert_eq!(status, 422);
    assert!(
        res["error"]["message"]
            .as_str()
            .unwrap()
            .contains("Required"),
        "{res}"
    );
    assert_eq!(
        e.call(reqwest::Method::GET, "/api/v1/deployments", None)
            .await
            .1["deployments"],
        json!([])
    );
}
