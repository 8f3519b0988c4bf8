//! The real server, over HTTP, against the simulator; notifications travel from the simulator to
//! the server's endpoint. The main story runs on SQLite and on PostgreSQL.

mod support;

use allot_server::Server;
use allot_store::testing::TestDb;
use serde_json::{json, Value};
use support::*;

fn app_row<'a>(apps: &'a Value, adam: &str) -> &'a Value {
    apps["apps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["adamId"] == adam)
        .unwrap()
}

#[tokio::test]
async fn tokens_sync_and_notifications_end_to_end() {
    for db in TestDb::both().await {
        let backend = db.backend();
        let app = App::start(db).await;
        let (status, t) = app.add("HQ", "4000000000000001").await;
        assert_eq!(status, 201, "{backend}: {t}");
        assert_eq!(
            (
                t["organization"].as_str(),
                t["location"].as_str(),
                t["categories"][0].as_str()
            ),
            (Some("Acme"), Some("Acme HQ"), Some("east"))
        );
        assert!(
            t.get("token").is_none()
                && !t
                    .to_string()
                    .contains(&app.sim_token("4000000000000001").await),
            "the token is never returned"
        );
        let id = t["id"].as_i64().unwrap();
        let s = app.synced(id).await;
        assert_eq!(s["latest"]["kind"], "full");

        let apps = app
            .until("/api/v1/apps?token=HQ", "apps", |b| b["total"] == 3)
            .await;
        let notes = app_row(&apps, "111");
        assert_eq!(
            (
                notes["name"].as_str(),
                notes["total"].as_i64(),
                notes["used"].as_i64(),
                notes["available"].as_i64()
            ),
            (Some("Acme Notes"), Some(50), Some(1), Some(49)),
            "{backend}"
        );
        assert!(notes["iconUrl"].as_str().unwrap().contains("512x512bb.png"));
        // The counts say when Apple confirmed them: the sync just done.
        let synced_at = notes["countsConfirmedAt"].as_str().unwrap().to_owned();
        let run = &s["latest"];
        assert!(
            run["startedAt"].as_str().unwrap() <= synced_at.as_str()
                && synced_at.as_str() <= run["finishedAt"].as_str().unwrap(),
            "{backend}: {synced_at} in {run}"
        );
        assert_eq!(app_row(&apps, "333")["total"], Value::Null, "unlimited");
        assert_eq!(app_row(&apps, "222")["type"], "book");

        // Apple's notifications keep counts current between syncs.
        app.sim_post(
            "/_sim/locations/4000000000000001/purchase",
            json!({ "adamId": "111", "count": 10 }),
        )
        .await;
        let token = app.sim_token("4000000000000001").await;
        let res = app
            .http
            .post(format!("{}/mdm/v2/assets/associate", app.sim.base_url))
            .bearer_auth(&token)
            .json(&json!({ "assets": [{ "adamId": "111" }], "serialNumbers": ["N1", "N2", "N3"] }))
            .send()
            .await
            .unwrap();
        assert!(res.status().is_success());
        let apps = app
            .until("/api/v1/apps?search=notes", "notified counts", |b| {
                b["apps"]
                    .as_array()
                    .is_some_and(|a| !a.is_empty() && a[0]["total"] == 60 && a[0]["used"] == 4)
            })
            .await;
        assert_eq!(app_row(&apps, "111")["available"], 56, "{backend}");
        assert!(
            app_row(&apps, "111")["countsConfirmedAt"].as_str().unwrap() >= synced_at.as_str(),
            "a notification confirms the counts again"
        );
        // The usage chart moved with the notifications, before any sync: its last point is
        // Apple's new counts.
        let history = app
            .db
            .store
            .license_history(id, "111", "STDQ")
            .await
            .unwrap();
        assert_eq!(
            history.last().map(|h| (h.1, h.2)),
            Some((60, 4)),
            "{backend}: {history:?}"
        );

        // A manual sync is full, and finds nothing else to change.
        let (status, started) = app
            .post(&format!("/api/v1/tokens/{id}/sync"), json!({}))
            .await;
        assert_eq!(status, 202);
        let s = app.synced(id).await;
        assert_eq!(s["latest"]["id"], started["runId"]);
        assert_eq!(
            (
                s["latest"]["kind"].as_str(),
                s["latest"]["assignmentsAdded"].as_i64()
            ),
            (Some("full"), Some(0)),
            "{backend}"
        );

        let csv = app
            .http
            .get(format!("{}/api/v1/reports/licenses", app.base))
            .bearer_auth(ADMIN)
            .send()
            .await
            .unwrap();
        assert_eq!(csv.headers()["content-type"], "text/csv; charset=utf-8");
        let csv = csv.text().await.unwrap();
        assert!(
            csv.contains("Acme Notes,111,app,HQ,business,60,4,56,6.7"),
            "{backend}: {csv}"
        );
        assert!(
            csv.contains("Free Reader,333,app,HQ,business,,0,,"),
            "unlimited: no total"
        );
        let (_, list) = app.get("/api/v1/tokens").await;
        assert_eq!(list["tokens"][0]["state"], "healthy", "{backend}");
        assert!(list["tokens"][0]["lastFullSync"].is_string());

        // Deleting needs confirmation, then removes everything.
        let (status, body) = app
            .call(
                reqwest::Method::DELETE,
                &format!("/api/v1/tokens/{id}"),
                Some(ADMIN),
                None,
            )
            .await;
        assert_eq!(status, 400);
        assert!(body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("confirm=true"));
        let (status, _) = app
            .call(
                reqwest::Method::DELETE,
                "/api/v1/tokens/HQ?confirm=true",
                Some(ADMIN),
                None,
            )
            .await;
        assert_eq!(status, 204);
        assert_eq!(app.get("/api/v1/apps").await.1["total"], 0);
        assert_eq!(app.get(&format!("/api/v1/tokens/{id}")).await.0, 404);
    }
}

#[tokio::test]
async fn another_mdm_duplicates_and_take_over() {
    let app = App::start(TestDb::sqlite().await).await;
    let (status, t) = app.add("Branch", "4000000000000002").await;
    assert_eq!(status, 201);
    assert_eq!(t["claimedBy"], "Legacy MDM");
    let id = t["id"].as_i64().unwrap();
    app.synced(id).await;
    assert_eq!(
        app.get(&format!("/api/v1/tokens/{id}")).await.1["state"],
        "claimed_by_other_mdm"
    );
    let (status, body) = app.add("Branch again", "4000000000000002").await;
    assert_eq!(status, 409);
    assert!(body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("already managed here as token \"Branch\""));
    let (status, _) = app.add("Branch", "4000000000000001").await;
    assert_eq!(status, 409, "duplicate name");
    let (status, _) = app
        .post(&format!("/api/v1/tokens/{id}/takeover"), json!({}))
        .await;
    assert_eq!(status, 400, "needs confirmation");
    let (status, t) = app
        .post(
            &format!("/api/v1/tokens/{id}/takeover?confirm=true"),
            json!({}),
        )
        .await;
    assert_eq!(status, 200, "{t}");
    assert_eq!(t["claimedBy"], Value::Null);
    app.synced(id).await;
    let location = app.sim_location("4000000000000002").await;
    assert_eq!(location["mdmInfo"]["name"], "Allot");
    assert!(location["notification"]["url"]
        .as_str()
        .unwrap()
        .ends_with(&format!("/apple/notifications/{id}")));
}

#[tokio::test]
async fn bad_input_gets_clear_errors_and_loses_nothing() {
    let app = App::start(TestDb::sqlite().await).await;
    let (status, _) = app.add("HQ", "4000000000000001").await;
    assert_eq!(status, 201);
    let cases = [
        (
            json!({ "name": "X", "token": "garbage!", "programType": "business" }),
            422,
            "not a content token",
        ),
        (
            json!({ "name": "X", "token": "e30=", "programType": "business" }),
            422,
            "not a content token",
        ),
        (
            json!({ "name": "X", "token": "x", "programType": "retail" }),
            422,
            "business or education",
        ),
        (
            json!({ "name": "", "token": "x", "programType": "business" }),
            422,
            "needs a name",
        ),
        (
            json!({ "name": "X", "programType": "business" }),
            400,
            "token",
        ),
        (
            json!({ "name": "X", "token": "x", "programType": "business", "colour": "red" }),
            400,
            "colour",
        ),
    ];
    for (body, want, words) in cases {
        let (status, res) = app.post("/api/v1/tokens", body.clone()).await;
        assert_eq!(status, want, "{body}: {res}");
        assert!(
            res["error"]["message"].as_str().unwrap().contains(words),
            "{body}: {res}"
        );
    }
    let res = app
        .http
        .post(format!("{}/api/v1/tokens", app.base))
        .bearer_auth(ADMIN)
        .body("{not json")
        .header("content-type", "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 400);
    assert!(res.json::<Value>().await.unwrap()["error"]["message"].is_string());
    let res = app
        .http
        .post(format!("{}/api/v1/tokens", app.base))
        .bearer_auth(ADMIN)
        .body("{}")
        .header("content-type", "text/plain")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 415);
    let huge =
        json!({ "name": "X", "token": "A".repeat(2 * 1024 * 1024), "programType": "business" });
    let (status, _) = app.post("/api/v1/tokens", huge).await;
    assert_eq!(status, 413);
    let hostile = "<script>alert(1)</script> ' OR 1=1 --";
    let (status, res) = app
        .get(&format!("/api/v1/tokens/{}", urlencode(hostile)))
        .await;
    assert_eq!(status, 404);
    assert!(res["error"]["message"]
        .as_str()
        .unwrap()
        .contains("no token"));
    let (status, _) = app.get("/api/v1/apps?limit=0").await;
    assert_eq!(status, 422);
    let (status, _) = app.get("/api/v1/apps?type=movie").await;
    assert_eq!(status, 422);
    let (status, _) = app
        .post("/api/v1/tokens/HQ/sync", json!({ "kind": "sideways" }))
        .await;
    assert_eq!(status, 422);
    // Nothing stored was lost.
    assert_eq!(
        app.get("/api/v1/tokens").await.1["tokens"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

#[tokio::test]
async fn api_keys_and_roles() {
    let app = App::start(TestDb::sqlite().await).await;
    let (status, body) = app
        .call(reqwest::Method::GET, "/api/v1/tokens", None, None)
        .await;
    assert_eq!(status, 401);
    assert!(body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("Bearer"));
    assert_eq!(
        app.call(reqwest::Method::GET, "/api/v1/tokens", Some("nope"), None)
            .await
            .0,
        401
    );
    app.db
        .store
        .insert_api_key(
            "auditor",
            &allot_server::auth_hash("read-only-key-123456"),
            "read_only",
            None,
            0,
        )
        .await
        .unwrap();
    assert_eq!(
        app.call(
            reqwest::Method::GET,
            "/api/v1/tokens",
            Some("read-only-key-123456"),
            None
        )
        .await
        .0,
        200
    );
    let (status, body) = app
        .call(
            reqwest::Method::POST,
            "/api/v1/tokens",
            Some("read-only-key-123456"),
            Some(json!({})),
        )
        .await;
    assert_eq!(status, 403);
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("is a viewer"),
        "{body}"
    );
    // The OpenAPI document needs no key and lists the endpoints.
    let (status, doc) = app
        .call(reqwest::Method::GET, "/api/v1/openapi.json", None, None)
        .await;
    assert_eq!(status, 200);
    for p in [
        "/api/v1/tokens",
        "/api/v1/tokens/{token}/sync",
        "/api/v1/apps",
    ] {
        assert!(doc["paths"][p].is_object(), "{p} documented");
    }
    assert!(doc["components"]["schemas"]["TokenView"].is_object());
}

#[tokio::test]
async fn the_notification_endpoint_refuses_what_is_not_apples() {
    let app = App::start(TestDb::sqlite().await).await;
    let (_, t) = app.add("HQ", "4000000000000001").await;
    let id = t["id"].as_i64().unwrap();
    app.synced(id).await;
    let url = format!("{}/apple/notifications/{id}", app.base);
    let post = |auth: &str, body: String| {
        app.http
            .post(&url)
            .header("authorization", auth.to_owned())
            .body(body)
            .send()
    };
    assert_eq!(
        post("Bearer wrong", "{}".into())
            .await
            .unwrap()
            .status()
            .as_u16(),
        401
    );
    let secret = format!(
        "Bearer {}",
        app.sim_location("4000000000000001").await["notification"]["authToken"]
            .as_str()
            .unwrap()
    );
    assert_eq!(
        post(&secret, "not json".into())
            .await
            .unwrap()
            .status()
            .as_u16(),
        400
    );
    let wrong_place = json!({ "notificationId": "n1", "notificationType": "ASSET_COUNT", "uId": "999",
        "notification": { "adamId": "111", "pricingParam": "STDQ", "countDelta": 5 } });
    assert_eq!(
        post(&secret, wrong_place.to_string())
            .await
            .unwrap()
            .status()
            .as_u16(),
        400
    );
    let good = json!({ "notificationId": "n2", "notificationType": "ASSET_COUNT", "uId": "4000000000000001",
        "notification": { "adamId": "111", "pricingParam": "STDQ", "countDelta": 5 } });
    let first: Value = post(&secret, good.to_string())
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let again: Value = post(&secret, good.to_string())
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        (first["duplicate"].as_bool(), again["duplicate"].as_bool()),
        (Some(false), Some(true))
    );
    assert_eq!(
        app_row(&app.get("/api/v1/apps").await.1, "111")["total"],
        55,
        "applied once"
    );
    let other = app
        .http
        .post(format!("{}/apple/notifications/9999", app.base))
        .header("authorization", secret.clone())
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(
        other.status().as_u16(),
        401,
        "an unknown token id is not told apart from a wrong secret"
    );
}

#[tokio::test]
async fn first_run_makes_an_admin_key_and_the_secret_key_must_match() {
    let db = TestDb::sqlite().await;
    let dir =
        std::env::temp_dir().join(format!("allot-first-run-{}", uuid::Uuid::new_v4().simple()));
    let mut c = config(&db, &dir, "http://127.0.0.1:9/mdm/v2/", None);
    c.admin_api_key = None;
    let first = Server::build(&c).await.unwrap();
    let key = first
        .new_admin_key
        .clone()
        .expect("a key is made on first run");
    assert!(first.new_secret_key.is_some(), "and the secret key file");
    assert!(dir.join("secret.key").exists());
    assert!(first
        .state
        .store
        .api_key_by_hash(&allot_server::auth_hash(&key))
        .await
        .unwrap()
        .is_some());
    let second = Server::build(&c).await.unwrap();
    assert!(
        second.new_admin_key.is_none() && second.new_secret_key.is_none(),
        "nothing new on the second run"
    );
    let mut wrong = c.clone();
    wrong.secret_key = Some("AgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgI=".into());
    let err = Server::build(&wrong).await.err().unwrap().to_string();
    assert!(err.contains("secret key does not match"), "{err}");
    std::fs::remove_dir_all(dir).ok();
}

#[cfg(unix)]
#[tokio::test]
async fn the_data_folder_and_database_are_private_to_allot() {
    use std::os::unix::fs::PermissionsExt;
    let db = TestDb::sqlite().await;
    let dir = std::env::temp_dir().join(format!("allot-perms-{}", uuid::Uuid::new_v4().simple()));
    let mut c = config(&db, &dir, "http://127.0.0.1:9/mdm/v2/", None);
    c.database_url = None; // SQLite in the data folder, as by default
    let server = Server::build(&c).await.unwrap();
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&dir), 0o700);
    assert_eq!(mode(&dir.join("allot.db")), 0o600);
    assert_eq!(mode(&dir.join("secret.key")), 0o600);
    // Console pages and API answers carry the headers that keep pages from being framed or sniffed.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let router = server.router.clone();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    for path in ["/login", "/api/v1/tokens"] {
        let res = reqwest::get(format!("{base}{path}")).await.unwrap();
        let h = res.headers();
        assert_eq!(h["x-frame-options"], "DENY", "{path}");
        assert_eq!(h["x-content-type-options"], "nosniff", "{path}");
        let csp = h["content-security-policy"].to_str().unwrap();
        assert!(csp.contains("frame-ancestors 'none'") && csp.contains("script-src 'self'"));
    }
    std::fs::remove_dir_all(dir).ok();
}

/// Keys have names, a list with their last use, and can be revoked; a new ALLOT_ADMIN_API_KEY
/// revokes the key the setting named before.
#[tokio::test]
async fn api_keys_are_listed_revoked_and_rotated() {
    for db in TestDb::both().await {
        let dir =
            std::env::temp_dir().join(format!("allot-keys-{}", uuid::Uuid::new_v4().simple()));
        let serve = |key: &'static str| {
            let mut c = config(&db, &dir, "http://127.0.0.1:9/mdm/v2/", None);
            c.admin_api_key = Some(key.into());
            async move {
                let server = Server::build(&c).await.unwrap();
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
                let base = format!("http://{}", listener.local_addr().unwrap());
                let router = server.router.clone();
                let task =
                    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
                (base, task)
            }
        };
        let http = reqwest::Client::new();
        let status = |base: &str, key: &str| {
            let req = http.get(format!("{base}/api/v1/tokens")).bearer_auth(key);
            async move { req.send().await.unwrap().status().as_u16() }
        };
        let (base, first) = serve("first-admin-key-0123456").await;
        let res = http
            .post(format!("{base}/api/v1/api-keys"))
            .bearer_auth("first-admin-key-0123456")
            .json(&json!({ "name": "reporting", "role": "read_only" }))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status().as_u16(), 201);
        let made: Value = res.json().await.unwrap();
        let secret = made["secret"].as_str().unwrap().to_owned();
        assert_eq!(status(&base, &secret).await, 200);
        let list: Value = http
            .get(format!("{base}/api/v1/api-keys"))
            .bearer_auth("first-admin-key-0123456")
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let reporting = list["keys"]
            .as_array()
            .unwrap()
            .iter()
            .find(|k| k["name"] == "reporting")
            .unwrap()
            .clone();
        assert!(reporting["lastUsedAt"].is_string(), "{reporting}");
        assert!(
            !list.to_string().contains(&secret),
            "secrets are never listed"
        );
        let revoke = format!("{base}/api/v1/api-keys/{}", reporting["id"]);
        let res = http
            .delete(&revoke)
            .bearer_auth("first-admin-key-0123456")
            .send()
            .await
            .unwrap();
        assert_eq!(res.status().as_u16(), 400, "needs ?confirm=true");
        let res = http
            .delete(format!("{revoke}?confirm=true"))
            .bearer_auth("first-admin-key-0123456")
            .send()
            .await
            .unwrap();
        assert_eq!(res.status().as_u16(), 204);
        assert_eq!(
            status(&base, &secret).await,
            401,
            "a revoked key is refused"
        );
        first.abort();

        // Rotation: the server started with a new ALLOT_ADMIN_API_KEY.
        let (base, second) = serve("second-admin-key-0123456").await;
        assert_eq!(status(&base, "second-admin-key-0123456").await, 200);
        assert_eq!(
            status(&base, "first-admin-key-0123456").await,
            401,
            "the old admin key stopped working"
        );
        second.abort();
        std::fs::remove_dir_all(&dir).ok();
    }
}

/// The token list for thousands of tokens: a page at a time by name, those in a state, those
/// matching a search, with how many match; a state that does not exist is refused, naming those
/// that do.
#[tokio::test]
async fn the_token_list_pages_filters_and_searches() {
    let app = App::start(TestDb::sqlite().await).await;
    let (status, cedar) = app.add("Cedar", "4000000000000001").await;
    assert_eq!(status, 201, "{cedar}");
    app.synced(cedar["id"].as_i64().unwrap()).await;
    // The simulator's second location is held by another MDM.
    let (status, branch) = app.add("Ash Branch", "4000000000000002").await;
    assert_eq!(status, 201, "{branch}");
    let names = |v: &serde_json::Value| -> Vec<String> {
        v["tokens"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["name"].as_str().unwrap().to_owned())
            .collect()
    };
    let (status, all) = app.get("/api/v1/tokens").await;
    assert_eq!(status, 200, "{all}");
    let ash_cedar = vec!["Ash Branch".to_owned(), "Cedar".into()];
    assert_eq!((names(&all), all["total"].as_i64()), (ash_cedar, Some(2)));
    let (_, page) = app.get("/api/v1/tokens?limit=1&offset=1").await;
    assert_eq!(
        (names(&page), page["total"].as_i64()),
        (vec!["Cedar".to_owned()], Some(2))
    );
    let (_, found) = app.get("/api/v1/tokens?search=BRANCH").await;
    assert_eq!(
        (names(&found), found["total"].as_i64()),
        (vec!["Ash Branch".to_owned()], Some(1))
    );
    let (_, held) = app.get("/api/v1/tokens?state=claimed_by_other_mdm").await;
    assert_eq!(
        (names(&held), held["total"].as_i64()),
        (vec!["Ash Branch".to_owned()], Some(1))
    );
    let (_, healthy) = app.get("/api/v1/tokens?state=healthy&limit=1").await;
    assert_eq!(
        (names(&healthy), healthy["total"].as_i64()),
        (vec!["Cedar".to_owned()], Some(1))
    );
    let (_, failing) = app.get("/api/v1/tokens?state=failing").await;
    assert_eq!(failing["total"].as_i64(), Some(0));
    let (status, bad) = app.get("/api/v1/tokens?state=sad").await;
    assert_eq!(status, 422);
    assert!(bad.to_string().contains("claimed_by_other_mdm"), "{bad}");
    assert_eq!(app.get("/api/v1/tokens?limit=0").await.0, 422);
    assert_eq!(app.get("/api/v1/tokens?offset=-1").await.0, 422);
}
