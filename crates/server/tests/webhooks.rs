//! Alerts out as webhooks, end to end: an endpoint registered through the API, a test event and
//! detected alerts (a token claimed by another MDM, a token expiring) delivered signed to a local
//! receiver; a failed delivery retried; a delivery queued by a server that died before sending it
//! sent by the next one; bad endpoints refused in words.

mod support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use allot_server::{Config, Server};
use allot_store::testing::TestDb;
use axum::http::{HeaderMap, StatusCode};
use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::Sha256;
use support::{App, ADMIN};

/// A fixed server key, so a second server on the same database opens the sealed secrets.
const KEY: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";

/// A request the receiver got: its headers and body.
type Got = (HeaderMap, Vec<u8>);

#[derive(Clone, Default)]
struct Receiver {
    got: Arc<Mutex<Vec<Got>>>,
    /// Answers to give, in order; 200 once they run out.
    answers: Arc<Mutex<Vec<u16>>>,
}

impl Receiver {
    async fn start(answers: &[u16]) -> (Self, String) {
        let r = Self::default();
        *r.answers.lock().unwrap() = answers.to_vec();
        let state = r.clone();
        let app = axum::Router::new().route(
            "/hook",
            axum::routing::post(move |headers: HeaderMap, body: axum::body::Bytes| {
                let state = state.clone();
                async move {
                    state.got.lock().unwrap().push((headers, body.to_vec()));
                    let mut a = state.answers.lock().unwrap();
                    let code = if a.is_empty() { 200 } else { a.remove(0) };
                    (StatusCode::from_u16(code).unwrap(), "receiver says hello")
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        (r, url)
    }

    fn bodies(&self) -> Vec<Value> {
        self.got
            .lock()
            .unwrap()
            .iter()
            .map(|(_, b)| serde_json::from_slice(b).unwrap())
            .collect()
    }

    async fn until(&self, what: &str, check: impl Fn(&[Value]) -> bool) -> Vec<Value> {
        for _ in 0..200 {
            let b = self.bodies();
            if check(&b) {
                return b;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("the receiver never got {what}: {:?}", self.bodies());
    }
}

/// Checks `X-Allot-Signature: t=…,v1=…` as a receiver would.
fn verify(secret: &str, headers: &HeaderMap, body: &[u8]) {
    let sig = headers["x-allot-signature"].to_str().unwrap();
    let (t, v1) = sig
        .strip_prefix("t=")
        .and_then(|s| s.split_once(",v1="))
        .unwrap_or_else(|| panic!("{sig}"));
    let age = allot_sync::now_ms() / 1000 - t.parse::<i64>().unwrap();
    assert!((0..60).contains(&age), "signed {age} s ago");
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(format!("{t}.").as_bytes());
    mac.update(body);
    let want: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(
        v1, want,
        "the signature is HMAC-SHA256 of t.body with the endpoint's secret"
    );
}

const METRICS: &str = "metrics-token-0123456789";

fn fast(c: &mut Config) {
    c.secret_key = Some(KEY.into());
    c.metrics_token = Some(METRICS.into());
    c.alert_check = Duration::from_millis(100);
    c.webhook_retry = Duration::from_millis(200);
}

async fn webhooks_on(db: TestDb) {
    let backend = db.backend();
    // This server queues but never delivers (its alert loop never runs): it "dies" after the
    // queue is written.
    let app = App::start_with(db, fast).await;
    let (rx, url) = Receiver::start(&[500]).await;
    // Health and readiness answer without credentials.
    let res = app
        .http
        .get(format!("{}/healthz", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let ready: Value = app
        .http
        .get(format!("{}/readyz", app.base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        (ready["status"].as_str(), ready["database"].as_str()),
        (Some("ready"), Some(backend))
    );

    for (body, words) in [
        (
            json!({ "url": "ftp://x.example/", "events": ["*"] }),
            "http:// or https://",
        ),
        (
            json!({ "url": url, "events": ["token.exploded"] }),
            "unknown event",
        ),
        (json!({ "url": url, "events": [] }), "choose the events"),
        (
            json!({ "url": url, "events": ["*"], "secret": "short" }),
            "at least 16",
        ),
    ] {
        let (status, res) = app.post("/api/v1/webhooks", body).await;
        assert_eq!(status, 422, "{res}");
        assert!(
            res["error"]["message"].as_str().unwrap().contains(words),
            "{res}"
        );
    }
    let (status, hook) = app
        .post(
            "/api/v1/webhooks",
            json!({ "url": url, "events": ["token.claimed", "token.expiring"], "description": "ops" }),
        )
        .await;
    assert_eq!(status, 201, "{backend}: {hook}");
    let secret = hook["secret"].as_str().unwrap().to_owned();
    assert!(secret.starts_with("whsec_"), "{hook}");
    let id = hook["id"].as_i64().unwrap();
    let (_, listed) = app.get("/api/v1/webhooks").await;
    assert!(
        listed["webhooks"][0]["secret"].is_null(),
        "the secret is shown once: {listed}"
    );
    assert_eq!(
        listed["webhooks"][0]["events"],
        json!(["token.claimed", "token.expiring"])
    );

    let (status, sent) = app
        .post(&format!("/api/v1/webhooks/{id}/test"), json!({}))
        .await;
    assert_eq!(status, 202, "{sent}");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        rx.bodies().is_empty(),
        "nothing is sent by a server whose alert loop is not running"
    );
    let (_, log) = app.get(&format!("/api/v1/webhooks/{id}/deliveries")).await;
    assert_eq!(
        (
            log["deliveries"][0]["status"].as_str(),
            log["deliveries"][0]["event"].as_str()
        ),
        (Some("pending"), Some("test")),
        "{log}"
    );

    // The next server on the same database delivers what was queued: refused once (500), then
    // retried and delivered.
    let config = Config {
        secret_key: Some(KEY.into()),
        alert_check: Duration::from_millis(100),
        webhook_retry: Duration::from_millis(200),
        ..support::config(
            &app.db,
            &std::env::temp_dir().join(format!("allot-hooks-{}", uuid::Uuid::new_v4().simple())),
            &app.sim.apple_url(),
            None,
        )
    };
    let second = Server::build(&config).await.unwrap();
    let _alerts = second.start_alerts();
    let got = rx
        .until("the test event twice (refused, then retried)", |b| {
            b.len() >= 2
        })
        .await;
    assert_eq!(got[0]["id"], sent["eventId"]);
    assert_eq!(
        got[1]["id"], got[0]["id"],
        "a retry carries the same event id"
    );
    assert_eq!(got[0]["type"], "test");
    {
        let g = rx.got.lock().unwrap();
        for (headers, body) in g.iter() {
            verify(&secret, headers, body);
            assert_eq!(headers["x-allot-event"], "test");
        }
    }
    let log = app
        .until(
            &format!("/api/v1/webhooks/{id}/deliveries"),
            "delivered",
            |b| b["deliveries"][0]["status"] == "delivered",
        )
        .await;
    assert_eq!(log["deliveries"][0]["attempts"], 2, "{log}");
    assert_eq!(log["deliveries"][0]["lastStatus"], 200, "{log}");

    // Alerts detected: a token another MDM holds, and one that expires in 5 days.
    assert_eq!(app.add("Branch", "4000000000000002").await.0, 201);
    app.sim_post(
        "/_sim/locations/4000000000000001/token/renew",
        json!({ "expiresInDays": 5 }),
    )
    .await;
    assert_eq!(app.add("HQ", "4000000000000001").await.0, 201);
    let got = rx
        .until("token.claimed and token.expiring", |b| {
            b.iter().any(|e| e["type"] == "token.claimed")
                && b.iter().any(|e| e["type"] == "token.expiring")
        })
        .await;
    let claimed = got.iter().find(|e| e["type"] == "token.claimed").unwrap();
    assert_eq!(claimed["data"]["otherMdm"], "Legacy MDM", "{claimed}");
    let expiring = got.iter().find(|e| e["type"] == "token.expiring").unwrap();
    assert!(
        expiring["summary"]
            .as_str()
            .unwrap()
            .contains("expires in 5 days"),
        "{expiring}"
    );
    assert_eq!(expiring["data"]["token"], "HQ");
    // Raised once: later checks find the same episode.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        rx.bodies()
            .iter()
            .filter(|e| e["type"] == "token.expiring")
            .count(),
        1
    );
    // The ledger's orphan (an assignment made outside Allot) is drift, checked every tenth pass.
    let open = app
        .until("/api/v1/alerts?open=true", "ledger drift", |b| {
            b["alerts"]
                .as_array()
                .unwrap()
                .iter()
                .any(|a| a["event"] == "ledger.drift")
        })
        .await;
    // Metrics: refused without the token; with it, every line parses, and the series say what
    // happened above.
    let scrape = |token: &'static str| {
        app.http
            .get(format!("{}/metrics", app.base))
            .bearer_auth(token)
            .send()
    };
    assert_eq!(scrape("not-the-token").await.unwrap().status(), 401);
    let text = scrape(METRICS).await.unwrap().text().await.unwrap();
    let mut series = std::collections::HashMap::new();
    for line in text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
    {
        let (name, value) = line.rsplit_once(' ').unwrap_or_else(|| panic!("{line}"));
        series.insert(
            name.to_owned(),
            value
                .parse::<f64>()
                .unwrap_or_else(|e| panic!("{e}: {line}")),
        );
    }
    assert!(
        series.contains_key("allot_licenses_total{token=\"HQ\"}"),
        "{text}"
    );
    assert!(
        series["allot_alerts_open{event=\"token.claimed\"}"] >= 1.0,
        "{text}"
    );
    assert!(
        series
            ["allot_http_requests_total{route=\"/api/v1/webhooks\",method=\"POST\",status=\"201\"}"]
            >= 1.0,
        "{text}"
    );
    assert!(
        series["allot_sync_runs_total{kind=\"full\",outcome=\"succeeded\"}"] >= 1.0,
        "{text}"
    );
    let drift = open["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["event"] == "ledger.drift")
        .unwrap();
    assert!(drift["data"]["orphans"].as_i64().unwrap() >= 1, "{drift}");
    let events: Vec<&str> = open["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["event"].as_str().unwrap())
        .collect();
    assert!(
        events.contains(&"token.expiring") && events.contains(&"token.claimed"),
        "{open}"
    );
    assert!(!events.contains(&"test"), "test events are not alerts");

    for (q, want) in [("", 400), ("?confirm=true", 204)] {
        let path = format!("/api/v1/webhooks/{id}{q}");
        let (status, _) = app
            .call(reqwest::Method::DELETE, &path, Some(ADMIN), None)
            .await;
        assert_eq!(status, want, "{path}: removing needs ?confirm=true");
    }
    assert_eq!(
        app.get(&format!("/api/v1/webhooks/{id}/deliveries"))
            .await
            .0,
        404
    );
}

#[tokio::test]
async fn webhooks_are_signed_retried_and_survive_a_restart() {
    webhooks_on(TestDb::sqlite().await).await;
}

#[tokio::test]
async fn webhooks_are_signed_retried_and_survive_a_restart_on_postgres() {
    webhooks_on(TestDb::postgres().await).await;
}
