//! Input an attacker or a broken client sends gets a 4xx with a reason, the same on SQLite and
//! PostgreSQL (which cannot store a NUL), and loses nothing already stored.

mod support;

use allot_store::testing::TestDb;
use reqwest::Method;
use serde_json::{json, Value};
use support::*;

async fn raw(app: &App, method: Method, path: &str, body: Option<(&str, String)>) -> (u16, Value) {
    let mut req = app
        .http
        .request(method, format!("{}{path}", app.base))
        .bearer_auth(ADMIN);
    if let Some((kind, b)) = body {
        req = req.header("content-type", kind).body(b);
    }
    let res = req.send().await.unwrap();
    let status = res.status().as_u16();
    let text = res.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

fn message(v: &Value) -> &str {
    v["error"]["message"].as_str().unwrap_or_default()
}

#[tokio::test]
async fn nul_characters_and_out_of_range_values_are_refused_on_both_backends() {
    for db in TestDb::both().await {
        let app = App::start(db).await;
        let (_, d) = app
            .post(
                "/api/v1/devices",
                json!({ "serialNumber": "GOOD1", "platform": "iOS", "name": "Cart 1" }),
            )
            .await;
        assert_eq!(d["serialNumber"], "GOOD1");
        // In a JSON body, wherever it is.
        for body in [
            json!({ "serialNumber": "NUL1", "platform": "iOS", "name": "a\u{0}b" }),
            json!({ "serialNumber": "NUL2", "platform": "iOS", "model": "\u{0}" }),
            json!({ "name": "Ann\u{0}", "email": "ann@example.com" }),
        ] {
            let path = if body.get("serialNumber").is_some() {
                "/api/v1/devices"
            } else {
                "/api/v1/users"
            };
            let (status, res) = app.post(path, body).await;
            assert_eq!(status, 400, "{res}");
            assert!(message(&res).contains("NUL"), "{res}");
        }
        // In a path or a query string.
        for path in [
            "/api/v1/tokens/%00",
            "/api/v1/devices?search=%00",
            "/api/v1/users?search=a%00b",
            "/api/v1/apps?search=%00",
            "/api/v1/reports/licenses?token=%00",
        ] {
            let (status, res) = app.get(path).await;
            assert_eq!(status, 400, "{path}: {res}");
            assert!(message(&res).contains("NUL"), "{path}: {res}");
        }
        // In a CSV import: that line is refused, the others imported.
        let csv = "serial_number,platform,name\nCSV1,iOS,one\nCSV2,iOS,t\u{0}wo\nCSV3,iOS,three\n";
        let (status, report) = raw(
            &app,
            Method::POST,
            "/api/v1/devices/import",
            Some(("text/csv", csv.into())),
        )
        .await;
        assert_eq!(status, 200, "{report}");
        assert_eq!(report["created"], 2, "{report}");
        assert_eq!(report["errors"][0]["line"], 3, "{report}");
        // A device name with a control character, or too long, is refused with its field.
        let (status, res) = app
            .post(
                "/api/v1/devices",
                json!({ "serialNumber": "LONG1", "platform": "iOS", "name": "x".repeat(201) }),
            )
            .await;
        assert_eq!(status, 422, "{res}");
        assert!(message(&res).contains("name"));
        // `%` and `_` in a search are letters, not wildcards.
        assert_eq!(app.get("/api/v1/devices?search=%25").await.1["total"], 0);
        assert_eq!(app.get("/api/v1/devices?search=_").await.1["total"], 0);
        assert_eq!(app.get("/api/v1/devices?search=csv").await.1["total"], 2);
        // Nothing stored before was lost.
        assert_eq!(app.get("/api/v1/devices").await.1["total"], 3);
    }
}

#[tokio::test]
async fn notifications_with_hostile_values_are_refused_or_kept_in_range() {
    for db in TestDb::both().await {
        let app = App::start(db).await;
        let (_, t) = app.add("HQ", "4000000000000001").await;
        let id = t["id"].as_i64().unwrap();
        app.synced(id).await;
        let secret = app.sim_location("4000000000000001").await["notification"]["authToken"]
            .as_str()
            .unwrap()
            .to_owned();
        let send = |body: Value| {
            let req = app
                .http
                .post(format!("{}/apple/notifications/{id}", app.base))
                .bearer_auth(&secret)
                .body(body.to_string());
            async move {
                let res = req.send().await.unwrap();
                let status = res.status().as_u16();
                (status, res.json::<Value>().await.unwrap_or(Value::Null))
            }
        };
        let count = |id: &str, delta: i64| {
            json!({ "notificationId": id, "notificationType": "ASSET_COUNT", "uId": "4000000000000001",
                    "notification": { "adamId": "111", "pricingParam": "STDQ", "countDelta": delta } })
        };
        let (status, res) = send(count(&"n".repeat(500_000), 1)).await;
        assert_eq!(status, 400, "a 500 kB notificationId: {res}");
        let (status, res) = send(count("bad\u{0}id", 1)).await;
        assert_eq!(status, 400, "{res}");
        for (n, delta) in [("max", i64::MAX), ("min", i64::MIN + 1)] {
            let (status, res) = send(count(n, delta)).await;
            assert_eq!(status, 200, "{res}");
        }
        let (status, _) = send(count("big-refund", -1_000_000)).await;
        assert_eq!(status, 200);
        let apps = app.get("/api/v1/apps").await.1;
        let row = apps["apps"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["adamId"] == "111")
            .unwrap()
            .clone();
        assert!(
            row["total"].as_i64().unwrap() >= 0 && row["available"].as_i64().unwrap() >= 0,
            "counts never go negative: {row}"
        );
    }
}

/// A request (method, path, content type and body) and the status it must get.
type Case<'a> = (Method, &'a str, Option<(&'a str, String)>, u16);

#[tokio::test]
async fn every_error_has_the_json_envelope() {
    let app = App::start(TestDb::sqlite().await).await;
    let big = "x".repeat(2 << 20);
    let cases: Vec<Case> = vec![
        (Method::GET, "/api/v1/no-such-thing", None, 404),
        (Method::GET, "/nowhere/at/all", None, 404),
        (Method::PUT, "/api/v1/apps", None, 405),
        (Method::GET, "/api/v1/devices?limit=many", None, 422),
        (Method::GET, "/api/v1/deployments/abc", None, 400),
        (
            Method::POST,
            "/apple/notifications/abc",
            Some(("application/json", "{}".into())),
            400,
        ),
        (
            Method::POST,
            "/mdm/webhook",
            Some(("application/json", big.clone())),
            413,
        ),
        (
            Method::POST,
            "/api/v1/devices",
            Some(("text/plain", "{}".into())),
            415,
        ),
        (
            Method::POST,
            "/api/v1/devices",
            Some(("application/json", big)),
            413,
        ),
    ];
    for (method, path, body, want) in cases {
        let (status, res) = raw(&app, method.clone(), path, body).await;
        assert_eq!(status, want, "{method} {path}: {res}");
        assert!(
            res["error"]["code"].is_string() && !message(&res).is_empty(),
            "{method} {path}: {res}"
        );
    }
}
