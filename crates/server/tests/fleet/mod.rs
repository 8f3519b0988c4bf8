//! A real server with the simulator as Apple and the fake NanoMDM's simulated devices enrolling
//! and reporting through the webhook: the world deployment tests run in.
// Each test binary uses its own part of these helpers.
#![allow(dead_code)]

use std::time::{Duration, Instant};

use allot_mdm::fake::{FakeNanoMdm, FakeOptions, SimDevice};
use allot_server::{Config, Server};
use allot_store::testing::TestDb;
use serde_json::{json, Value};

/// Each flow runs on SQLite and on PostgreSQL: `on_both!(flow, sqlite_name, postgres_name);`
/// (the test file declares `#[macro_use] mod fleet;`).
#[allow(unused_macros)]
macro_rules! on_both {
    ($flow:ident, $sqlite:ident, $postgres:ident) => {
        #[tokio::test]
        async fn $sqlite() {
            $flow(allot_store::testing::TestDb::sqlite().await).await;
        }

        #[tokio::test]
        async fn $postgres() {
            $flow(allot_store::testing::TestDb::postgres().await).await;
        }
    };
}

pub const ADMIN: &str = "test-admin-key-0123456789";
pub const HMAC: &str = "webhook-hmac-key-0123456789";
pub const DM_HMAC: &str = "dm-hmac-key-0123456789";

pub struct Env {
    pub sim: allot_apple_sim::RunningSim,
    pub mdm: FakeNanoMdm,
    pub base: String,
    pub http: reqwest::Client,
    config: Config,
    addr: std::net::SocketAddr,
    /// The server runs on its own runtime, so that a crash can be played by stopping it whole:
    /// its loops, its handlers' background steps, its connections.
    server: Option<tokio::runtime::Runtime>,
    _db: TestDb,
}

impl Drop for Env {
    fn drop(&mut self) {
        if let Some(rt) = self.server.take() {
            rt.shutdown_background();
        }
        // The data folder (the server's key and instance id) goes with the test.
        std::fs::remove_dir_all(&self.config.data_dir).ok();
    }
}

/// Starts the server on its own runtime, listening on `listener`.
fn start_server(config: &Config, listener: std::net::TcpListener) -> tokio::runtime::Runtime {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let config = config.clone();
    rt.spawn(async move {
        let server = Server::build(&config).await.unwrap();
        server.start_deployments();
        let _alerts = server.start_alerts();
        let router = server.router.clone();
        listener.set_nonblocking(true).unwrap();
        let listener = tokio::net::TcpListener::from_std(listener).unwrap();
        axum::serve(listener, router).await.unwrap()
    });
    rt
}

pub async fn env(scenario: &str) -> Env {
    env_on(scenario, TestDb::sqlite().await).await
}

/// The same world on a given database (PostgreSQL runs some of the flows too).
pub async fn env_on(scenario: &str, db: TestDb) -> Env {
    env_with(scenario, db, |_| {}).await
}

/// The same world with some of the server's settings changed.
pub async fn env_with(scenario: &str, db: TestDb, tweak: impl FnOnce(&mut Config)) -> Env {
    let sim = allot_apple_sim::start_local(scenario).await.unwrap();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let base = format!("http://{addr}");
    let mdm = FakeNanoMdm::start(FakeOptions {
        webhook_url: Some(format!("{base}/mdm/webhook")),
        hmac_key: Some(HMAC.as_bytes().to_vec()),
        dm_url: Some(format!("{base}/mdm/declarative/")),
        dm_hmac_key: Some(DM_HMAC.as_bytes().to_vec()),
        ..Default::default()
    })
    .await
    .unwrap();
    let dir = std::env::temp_dir().join(format!("allot-deploy-{}", uuid::Uuid::new_v4().simple()));
    let config = Config {
        data_dir: dir.clone(),
        database_url: Some(db.url.clone()),
        apple_url: sim.apple_url(),
        public_url: Some(base.clone()),
        admin_api_key: Some(ADMIN.into()),
        mdm_webhook_hmac_key: Some(HMAC.into()),
        dm_hmac_key: Some(DM_HMAC.into()),
        nanomdm_url: Some(mdm.base_url.clone()),
        nanomdm_api_key: Some("nanomdm-api-key".into()),
        deploy_tick: Duration::from_millis(50),
        event_poll: Duration::ZERO,
        reclaim_grace: Duration::ZERO,
        mdm_backoff: Duration::from_millis(200),
        ..Default::default()
    };
    let mut config = config;
    tweak(&mut config);
    let server = Some(start_server(&config, listener));
    Env {
        sim,
        mdm,
        base,
        http: reqwest::Client::new(),
        config,
        addr,
        server,
        _db: db,
    }
}

impl Env {
    /// The server dies at once, whatever it was doing, and starts again on the same database
    /// and address.
    pub async fn crash_and_restart(&mut self) {
        if let Some(rt) = self.server.take() {
            rt.shutdown_background();
        }
        // The old listener closes with its runtime; take the address again.
        let deadline = Instant::now() + Duration::from_secs(10);
        let listener = loop {
            match std::net::TcpListener::bind(self.addr) {
                Ok(l) => break l,
                Err(e) if Instant::now() < deadline => {
                    let _ = e;
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Err(e) => panic!("cannot listen on {} again: {e}", self.addr),
            }
        };
        self.server = Some(start_server(&self.config, listener));
        // New connections only: the old ones died with the server.
        self.http = reqwest::Client::new();
    }

    pub async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
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

    pub async fn until(&self, path: &str, what: &str, check: impl Fn(&Value) -> bool) -> Value {
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

    /// Waits for `check`, letting the devices answer whatever is queued for them meanwhile (the
    /// periodic questions among it).
    pub async fn until_answering(
        &self,
        path: &str,
        udids: &[String],
        what: &str,
        check: impl Fn(&Value) -> bool,
    ) -> Value {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let (_, d) = self.call(reqwest::Method::GET, path, None).await;
            if check(&d) {
                return d;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}: {d}"
            );
            for u in udids {
                if !self.mdm.queue(u).is_empty() {
                    self.mdm.check_in(u).await;
                }
            }
            tokio::time::sleep(Duration::from_millis(40)).await;
        }
    }

    pub async fn devices(&self, collection: &str, serials: &[&str]) -> Vec<String> {
        self.devices_of(collection, serials, "iPad13,1").await
    }

    /// Enrolls devices of one model (`iPad13,1`, `MacBookPro18,1`, …) into a collection.
    pub async fn devices_of(
        &self,
        collection: &str,
        serials: &[&str],
        product: &str,
    ) -> Vec<String> {
        let mut udids = Vec::new();
        for s in serials {
            let udid = format!("UDID-{s}");
            assert!(
                self.mdm
                    .enroll(SimDevice {
                        udid: udid.clone(),
                        serial_number: (*s).into(),
                        product_name: product.into(),
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

    pub async fn assigned(&self, adam: &str) -> i64 {
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

/// A deployment's target by its label (a device's serial number, a user's email).
pub fn target<'a>(d: &'a Value, label: &str) -> &'a Value {
    d["targets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["target"] == label)
        .unwrap_or_else(|| panic!("no target {label} in {d}"))
}

pub fn count(d: &Value, status: &str) -> i64 {
    d["statuses"][status].as_i64().unwrap_or(0)
}

impl Env {
    /// Adds the first location's token and waits for its first sync; returns its id.
    pub async fn add_token(&self) -> Value {
        let token: Value = self
            .http
            .get(format!("{}/_sim/locations", self.sim.base_url))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let (status, t) = self
            .call(
                reqwest::Method::POST,
                "/api/v1/tokens",
                Some(
                    json!({ "name": "HQ", "token": token[0]["token"], "programType": "business" }),
                ),
            )
            .await;
        assert_eq!(status, 201, "{t}");
        self.until(
            &format!("/api/v1/tokens/{}/sync", t["id"]),
            "the first sync",
            |b| b["latest"]["status"] == "succeeded",
        )
        .await;
        t["id"].clone()
    }

    /// Creates a deployment; returns its path.
    pub async fn deploy(&self, body: Value) -> String {
        let (status, d) = self
            .call(reqwest::Method::POST, "/api/v1/deployments", Some(body))
            .await;
        assert_eq!(status, 201, "{d}");
        format!("/api/v1/deployments/{}", d["id"])
    }

    /// A control call to the simulator.
    pub async fn sim_post(&self, path: &str, body: Value) -> u16 {
        self.http
            .post(format!("{}{path}", self.sim.base_url))
            .json(&body)
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
    }

    /// The simulator's request counts (`requests` per endpoint).
    pub async fn sim_stats(&self) -> Value {
        self.http
            .get(format!("{}/_sim/stats", self.sim.base_url))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    /// The simulator's state of the location.
    pub async fn sim_state(&self) -> Value {
        self.http
            .get(format!(
                "{}/_sim/state?uId=5000000000000001",
                self.sim.base_url
            ))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    /// The location's current content token, to act at Apple as someone other than Allot.
    pub async fn location_token(&self) -> String {
        let locations: Value = self
            .http
            .get(format!("{}/_sim/locations", self.sim.base_url))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        locations[0]["token"].as_str().unwrap().to_owned()
    }

    /// A Required deployment of `adam` to `collection`, installed on every device; its path.
    pub async fn installed(&self, adam: &str, collection: &str, udids: &[String]) -> String {
        let path = self
            .deploy(serde_json::json!({ "adamId": adam, "collection": collection }))
            .await;
        let n = udids.len() as i64;
        self.until(&path, "installs sent", |b| count(b, "install_sent") == n)
            .await;
        self.drain_all(udids).await;
        self.until(&path, "installed", |b| count(b, "installed") == n)
            .await;
        path
    }

    /// Delivers every queued command of these devices (each answers per its behaviour).
    pub async fn drain_all(&self, udids: &[String]) {
        for u in udids {
            self.mdm.drain(u).await;
        }
    }

    /// The targets of a deployment as (label, status).
    pub async fn targets(&self, path: &str) -> Vec<(String, String)> {
        let (_, d) = self.call(reqwest::Method::GET, path, None).await;
        d["targets"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| {
                (
                    t["target"].as_str().unwrap().to_owned(),
                    t["status"].as_str().unwrap().to_owned(),
                )
            })
            .collect()
    }

    /// Waits until Apple counts `n` assignments of the asset (its events take their time).
    pub async fn until_assigned(&self, adam: &str, n: i64, what: &str) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let now = self.assigned(adam).await;
            if now == n {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}: {now} assigned, not {n}"
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// The bundle id Allot learned from Apple's metadata, given to the fake devices too.
    pub async fn bundle_of(&self, adam: &str) -> String {
        let apps = self
            .until("/api/v1/apps", "the app's metadata", |b| {
                b["apps"].as_array().is_some_and(|a| {
                    a.iter()
                        .any(|x| x["adamId"] == adam && x["bundleId"].is_string())
                })
            })
            .await;
        let bundle = apps["apps"]
            .as_array()
            .unwrap()
            .iter()
            .find(|x| x["adamId"] == adam)
            .unwrap()["bundleId"]
            .as_str()
            .unwrap()
            .to_owned();
        self.mdm.set_bundle_id(adam.parse().unwrap(), &bundle);
        bundle
    }
}
