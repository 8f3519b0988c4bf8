//! A simulator on port 0 with a small scenario, an HTTP client that speaks to it as an MDM
//! would, and a notification receiver that records (or refuses) what Apple sends.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use allot_apple_sim::{RunningSim, Scenario, SimOptions};
use axum::http::{HeaderMap, StatusCode};
use serde_json::{json, Value};

/// Two organizations: a Business one with an app, a book and an unlimited app; an Education one.
pub const SMALL: &str = r#"{
  "settings": { "eventDelayMs": 0, "tickMs": 5, "notificationRetryDelayMs": 20, "limits": { "maxRequestPerSecond": 0 } },
  "organizations": [
    { "name": "Acme", "managedAppleIdDomain": "appleid.acme.example", "locations": [
      { "name": "Acme HQ", "uId": "1000000000000001",
        "assets": [
          { "adamId": "111", "totalCount": 5, "name": "Acme Notes", "bundleId": "com.acme.notes", "supportedPlatforms": ["iOS", "macOS"] },
          { "adamId": "222", "productType": "Book", "totalCount": 3, "name": "Acme Handbook" },
          { "adamId": "333", "unlimited": true, "name": "Free Reader" },
          { "adamId": "444", "totalCount": 2, "deviceAssignable": false, "name": "User Only App" }
        ],
        "users": [
          { "clientUserId": "alice", "email": "alice@acme.example", "status": "Associated" },
          { "clientUserId": "bob", "email": "bob@acme.example" },
          { "clientUserId": "old", "status": "Retired" }
        ],
        "assignments": [
          { "adamId": "111", "serialNumber": "SERIAL1" },
          { "adamId": "111", "clientUserId": "alice" },
          { "adamId": "222", "clientUserId": "alice" }
        ] },
      { "name": "Acme Branch", "uId": "1000000000000002", "tokenExpiresInDays": 10,
        "assets": [ { "adamId": "111", "totalCount": 1 } ] }
    ] },
    { "name": "Springfield Schools", "program": "Education", "country": "GB", "locations": [
      { "name": "Springfield High", "uId": "1000000000000003", "assets": [ { "adamId": "111", "totalCount": 10 } ] }
    ] }
  ]
}"#;

pub const HQ: &str = "1000000000000001";
pub const BRANCH: &str = "1000000000000002";
pub const SCHOOL: &str = "1000000000000003";

pub struct TestSim {
    pub sim: RunningSim,
    pub http: reqwest::Client,
}

pub struct Answer {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
}

impl Answer {
    pub fn error_number(&self) -> Option<i64> {
        self.body.get("errorNumber").and_then(Value::as_i64)
    }

    /// Asserts an Apple error: its number and HTTP status.
    #[track_caller]
    pub fn assert_error(&self, number: i64, status: u16) {
        assert_eq!(self.error_number(), Some(number), "body: {}", self.body);
        assert_eq!(self.status, status, "body: {}", self.body);
    }

    #[track_caller]
    pub fn ok(&self) -> &Value {
        assert_eq!(self.status, 200, "body: {}", self.body);
        assert!(self.error_number().is_none(), "body: {}", self.body);
        &self.body
    }
}

impl TestSim {
    pub async fn start(scenario: &str) -> Self {
        Self::start_with(scenario, None).await
    }

    pub async fn start_with(scenario: &str, token_dir: Option<std::path::PathBuf>) -> Self {
        Self::start_opts(scenario, token_dir, allot_trust::Trust::system()).await
    }

    /// A simulator whose notification sender also trusts `trust`'s certificates (`--ca-file`).
    pub async fn start_trusting(scenario: &str, trust: allot_trust::Trust) -> Self {
        Self::start_opts(scenario, None, trust).await
    }

    async fn start_opts(
        scenario: &str,
        token_dir: Option<std::path::PathBuf>,
        trust: allot_trust::Trust,
    ) -> Self {
        let sim = allot_apple_sim::start(SimOptions {
            listen: "127.0.0.1:0".parse().unwrap(),
            scenario: Scenario::parse(scenario).unwrap(),
            token_dir,
            public_url: None,
            trust,
        })
        .await
        .unwrap();
        Self {
            sim,
            http: reqwest::Client::new(),
        }
    }

    pub async fn small() -> Self {
        Self::start(SMALL).await
    }

    /// The current content token of a location, from the control API.
    pub async fn token(&self, uid: &str) -> String {
        let locs = self.control_get("locations").await;
        locs.as_array()
            .unwrap()
            .iter()
            .find(|l| l["uId"] == uid)
            .expect("location")["token"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}/mdm/v2/{path}", self.sim.base_url)
    }

    async fn answer(res: reqwest::Response) -> Answer {
        let status = res.status().as_u16();
        let headers = res.headers().clone();
        let text = res.text().await.unwrap();
        let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
        Answer {
            status,
            headers,
            body,
        }
    }

    pub async fn get(&self, path: &str, token: &str) -> Answer {
        Self::answer(
            self.http
                .get(self.url(path))
                .bearer_auth(token)
                .send()
                .await
                .unwrap(),
        )
        .await
    }

    pub async fn post(&self, path: &str, token: &str, body: Value) -> Answer {
        Self::answer(
            self.http
                .post(self.url(path))
                .bearer_auth(token)
                .json(&body)
                .send()
                .await
                .unwrap(),
        )
        .await
    }

    pub async fn control_get(&self, path: &str) -> Value {
        let res = self
            .http
            .get(format!("{}/_sim/{path}", self.sim.base_url))
            .send()
            .await
            .unwrap();
        assert!(
            res.status().is_success(),
            "control GET {path}: {}",
            res.status()
        );
        res.json().await.unwrap()
    }

    /// POSTs to the control API and returns (status, body).
    pub async fn control(&self, path: &str, body: Value) -> (u16, Value) {
        let res = self
            .http
            .post(format!("{}/_sim/{path}", self.sim.base_url))
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = res.status().as_u16();
        let text = res.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    pub async fn settings(&self, patch: Value) {
        let res = self
            .http
            .patch(format!("{}/_sim/settings", self.sim.base_url))
            .json(&patch)
            .send()
            .await
            .unwrap();
        assert!(
            res.status().is_success(),
            "settings: {}",
            res.text().await.unwrap()
        );
    }

    pub async fn fault(&self, fault: Value) {
        let (status, body) = self.control("faults", fault).await;
        assert_eq!(status, 204, "{body}");
    }

    /// One location's dump from `/_sim/state`.
    pub async fn state(&self, uid: &str) -> Value {
        self.control_get(&format!("state?uId={uid}")).await["locations"][0].clone()
    }

    pub async fn asset(&self, uid: &str, adam_id: &str) -> Value {
        let s = self.state(uid).await;
        s["assets"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["adamId"] == adam_id)
            .unwrap()
            .clone()
    }

    /// Polls an event until it leaves PENDING.
    pub async fn wait_event(&self, token: &str, event_id: &str) -> Value {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let s = self.get(&format!("status?eventId={event_id}"), token).await;
            let body = s.ok().clone();
            if body["eventStatus"] != "PENDING" {
                return body;
            }
            assert!(Instant::now() < deadline, "event {event_id} still pending");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Waits until no notification is waiting for delivery.
    pub async fn notifications_settled(&self) -> Vec<Value> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let n = self.control_get("notifications").await;
            if n["pending"] == 0 {
                return n["notifications"].as_array().unwrap().clone();
            }
            assert!(Instant::now() < deadline, "notifications still pending");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

/// What a receiver got: the Authorization header and the JSON body.
#[derive(Clone, Debug)]
pub struct Received {
    pub authorization: Option<String>,
    pub body: Value,
}

/// An HTTP endpoint standing in for the MDM's notification URL.
pub struct Receiver {
    pub url: String,
    pub got: Arc<Mutex<Vec<Received>>>,
    /// Answer 500 to this many requests before accepting.
    pub refuse: Arc<Mutex<u32>>,
    _task: tokio::task::JoinHandle<()>,
}

impl Receiver {
    pub async fn start() -> Self {
        let got: Arc<Mutex<Vec<Received>>> = Arc::default();
        let refuse: Arc<Mutex<u32>> = Arc::default();
        let (g, r) = (got.clone(), refuse.clone());
        let app = axum::Router::new().route(
            "/apple/notify",
            axum::routing::post(move |headers: HeaderMap, body: axum::body::Bytes| {
                let (g, r) = (g.clone(), r.clone());
                async move {
                    let mut left = r.lock().unwrap();
                    let body: Value = serde_json::from_slice(&body).unwrap_or(json!(null));
                    let authorization = headers
                        .get("authorization")
                        .map(|v| v.to_str().unwrap().to_owned());
                    g.lock().unwrap().push(Received {
                        authorization,
                        body,
                    });
                    if *left > 0 {
                        *left -= 1;
                        StatusCode::INTERNAL_SERVER_ERROR
                    } else {
                        StatusCode::OK
                    }
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/apple/notify", listener.local_addr().unwrap());
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Self {
            url,
            got,
            refuse,
            _task: task,
        }
    }

    pub fn bodies(&self) -> Vec<Value> {
        self.got
            .lock()
            .unwrap()
            .iter()
            .map(|r| r.body.clone())
            .collect()
    }

    /// Bodies of one notification type.
    pub fn of_type(&self, t: &str) -> Vec<Value> {
        self.bodies()
            .into_iter()
            .filter(|b| b["notificationType"] == t)
            .collect()
    }
}

/// Subscribes a location to notifications at the receiver.
pub async fn subscribe(sim: &TestSim, token: &str, rx: &Receiver, types: &[&str]) {
    sim.post(
        "client/config",
        token,
        json!({ "notificationUrl": rx.url, "notificationAuthToken": "secret-123", "notificationTypes": types }),
    )
    .await
    .ok();
}

/// All asset types of the small scenario's notifications.
pub const ALL_TYPES: &[&str] = &[
    "ASSET_MANAGEMENT",
    "ASSET_COUNT",
    "USER_MANAGEMENT",
    "USER_ASSOCIATED",
];
