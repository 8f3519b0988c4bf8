//! The server on port 0 with a fresh database, and the simulator it syncs from.
// Each test binary uses its own part of these helpers.
#![allow(dead_code)]

use std::time::{Duration, Instant};

use allot_apple_sim::RunningSim;
use allot_server::{Config, Server};
use allot_store::testing::TestDb;
use serde_json::{json, Value};

pub const ADMIN: &str = "test-admin-key-0123456789";
/// NanoMDM's `-webhook-hmac-key` in tests.
pub const WEBHOOK_KEY: &str = "webhook-hmac-key-0123456789";
/// The console's first account (`admin`) in tests.
pub const CONSOLE_PASSWORD: &str = "console-password-0123";

pub const SCENARIO: &str = r#"{
  "settings": { "assignmentsPageSize": 20, "eventDelayMs": 0, "tickMs": 5, "notificationRetryDelayMs": 50,
                "limits": { "maxRequestPerSecond": 0 } },
  "organizations": [
    { "name": "Acme", "locations": [
      { "name": "Acme HQ", "uId": "4000000000000001",
        "assets": [ { "adamId": "111", "totalCount": 50, "name": "Acme Notes", "bundleId": "com.acme.notes" },
                    { "adamId": "222", "productType": "Book", "totalCount": 5, "name": "Acme Handbook" },
                    { "adamId": "333", "unlimited": true, "name": "Free Reader" } ],
        "users": [ { "clientUserId": "alice", "status": "Associated" } ],
        "assignments": [ { "adamId": "111", "serialNumber": "S1" }, { "adamId": "222", "clientUserId": "alice" } ] },
      { "name": "Acme Branch", "uId": "4000000000000002",
        "mdmInfo": { "id": "other", "name": "Legacy MDM", "metadata": "1" },
        "assets": [ { "adamId": "111", "totalCount": 2 } ] }
    ] } ]
}"#;

pub struct App {
    pub sim: RunningSim,
    pub base: String,
    pub http: reqwest::Client,
    pub db: TestDb,
    data_dir: std::path::PathBuf,
    _server: tokio::task::JoinHandle<()>,
}

pub fn config(
    db: &TestDb,
    data_dir: &std::path::Path,
    apple: &str,
    public: Option<String>,
) -> Config {
    Config {
        data_dir: data_dir.to_owned(),
        database_url: Some(db.url.clone()),
        apple_url: apple.into(),
        admin_api_key: Some(ADMIN.into()),
        console_admin_password: Some(CONSOLE_PASSWORD.into()),
        public_url: public,
        mdm_webhook_hmac_key: Some(WEBHOOK_KEY.into()),
        ..Default::default()
    }
}

impl App {
    pub async fn start(db: TestDb) -> Self {
        Self::start_with(db, |_| {}).await
    }

    /// With a change to the test configuration.
    pub async fn start_with(db: TestDb, change: impl FnOnce(&mut Config)) -> Self {
        let sim = allot_apple_sim::start_local(SCENARIO).await.unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let data_dir =
            std::env::temp_dir().join(format!("allot-api-{}", uuid::Uuid::new_v4().simple()));
        let mut c = config(&db, &data_dir, &sim.apple_url(), Some(base.clone()));
        change(&mut c);
        let server = Server::build(&c).await.unwrap();
        let service = server
            .router
            .clone()
            .into_make_service_with_connect_info::<std::net::SocketAddr>();
        let task = tokio::spawn(async move {
            axum::serve(listener, service).await.unwrap();
        });
        Self {
            sim,
            base,
            http: reqwest::Client::new(),
            db,
            data_dir,
            _server: task,
        }
    }

    pub async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        key: Option<&str>,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut req = self.http.request(method, format!("{}{path}", self.base));
        if let Some(k) = key {
            req = req.bearer_auth(k);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let res = req.send().await.unwrap();
        let status = res.status().as_u16();
        let text = res.text().await.unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    pub async fn get(&self, path: &str) -> (u16, Value) {
        self.call(reqwest::Method::GET, path, Some(ADMIN), None)
            .await
    }

    /// The simulator's state of one location (`/_sim/state?uId=`).
    pub async fn sim_location(&self, uid: &str) -> Value {
        let state: Value = self
            .http
            .get(format!("{}/_sim/state?uId={uid}", self.sim.base_url))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        state["locations"][0].clone()
    }

    pub async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        self.call(reqwest::Method::POST, path, Some(ADMIN), Some(body))
            .await
    }

    pub async fn sim_token(&self, uid: &str) -> String {
        let locs: Value = self
            .http
            .get(format!("{}/_sim/locations", self.sim.base_url))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        locs.as_array()
            .unwrap()
            .iter()
            .find(|l| l["uId"] == uid)
            .unwrap()["token"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    pub async fn sim_post(&self, path: &str, body: Value) {
        let res = self
            .http
            .post(format!("{}{path}", self.sim.base_url))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert!(res.status().is_success(), "{path}");
    }

    pub async fn add(&self, name: &str, uid: &str) -> (u16, Value) {
        let token = self.sim_token(uid).await;
        self.post("/api/v1/tokens", json!({ "name": name, "token": token, "programType": "business", "categories": ["east"] })).await
    }

    /// Polls until `check` holds for GET `path`.
    pub async fn until(&self, path: &str, what: &str, check: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let (status, body) = self.get(path).await;
            if status == 200 && check(&body) {
                return body;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}: {body}"
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    pub async fn synced(&self, id: i64) -> Value {
        self.until(&format!("/api/v1/tokens/{id}/sync"), "the sync", |b| {
            b["running"].is_null() && b["latest"]["status"] == "succeeded"
        })
        .await
    }
}

impl Drop for App {
    fn drop(&mut self) {
        std::fs::remove_dir_all(&self.data_dir).ok();
    }
}

/// A browser without JavaScript: a session cookie, forms, redirects not followed.
pub struct Browser {
    http: reqwest::Client,
    base: String,
    pub cookie: Option<String>,
}

impl Browser {
    pub fn new(app: &App) -> Self {
        Self {
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            base: app.base.clone(),
            cookie: None,
        }
    }

    pub fn req(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        let r = self.http.request(method, format!("{}{path}", self.base));
        match &self.cookie {
            Some(c) => r.header("cookie", c),
            None => r,
        }
    }

    pub async fn get(&self, path: &str) -> (u16, String, Option<String>) {
        let res = self.req(reqwest::Method::GET, path).send().await.unwrap();
        let status = res.status().as_u16();
        let location = res
            .headers()
            .get("location")
            .map(|l| l.to_str().unwrap().to_owned());
        (status, res.text().await.unwrap(), location)
    }

    pub async fn post(&self, path: &str, form: &[(&str, &str)]) -> (u16, String, Option<String>) {
        let res = self
            .req(reqwest::Method::POST, path)
            .form(form)
            .send()
            .await
            .unwrap();
        let status = res.status().as_u16();
        let location = res
            .headers()
            .get("location")
            .map(|l| l.to_str().unwrap().to_owned());
        (status, res.text().await.unwrap(), location)
    }

    pub async fn sign_in(&mut self, user: &str, password: &str) -> u16 {
        let res = self
            .req(reqwest::Method::POST, "/login")
            .form(&[
                ("username", user),
                ("password", password),
                ("next", "/apps"),
            ])
            .send()
            .await
            .unwrap();
        if let Some(c) = res.headers().get("set-cookie") {
            let c = c.to_str().unwrap();
            assert!(
                c.contains("HttpOnly") && c.contains("SameSite=Strict"),
                "{c}"
            );
            self.cookie = Some(c.split(';').next().unwrap().to_owned());
        }
        res.status().as_u16()
    }

    /// The CSRF token in a page's forms.
    pub async fn csrf(&self) -> String {
        let (_, html, _) = self.get("/tokens").await;
        let at = html.find("name=\"csrf\" value=\"").expect("a form") + 19;
        html[at..at + html[at..].find('"').unwrap()].to_owned()
    }
}
