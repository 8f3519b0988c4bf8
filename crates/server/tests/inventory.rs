//! Users, devices, collections and CSV import over the API.

mod support;

use allot_store::testing::TestDb;
use serde_json::{json, Value};
use support::*;

async fn post_csv(app: &App, path: &str, csv: String) -> (u16, Value) {
    let res = app
        .http
        .post(format!("{}{path}", app.base))
        .bearer_auth(ADMIN)
        .header("content-type", "text/csv")
        .body(csv)
        .send()
        .await
        .unwrap();
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn users_devices_and_collections() {
    for db in TestDb::both().await {
        let backend = db.backend();
        let app = App::start(db).await;
        let (status, ada) = app
            .post(
                "/api/v1/users",
                json!({ "name": "Ada Lovelace", "email": "Ada@Example.com" }),
            )
            .await;
        assert_eq!(status, 201, "{backend}: {ada}");
        assert_eq!(ada["email"], "ada@example.com");
        assert_eq!(
            ada["clientUserId"].as_str().unwrap().len(),
            36,
            "an opaque GUID, not the email"
        );
        let (status, again) = app
            .post(
                "/api/v1/users",
                json!({ "name": "Ada L.", "email": "ada@example.com" }),
            )
            .await;
        assert_eq!(
            (status, again["id"].clone(), again["clientUserId"].clone()),
            (200, ada["id"].clone(), ada["clientUserId"].clone()),
            "same email, same user"
        );
        let (status, body) = app
            .post(
                "/api/v1/users",
                json!({ "name": "X", "email": "not an email" }),
            )
            .await;
        assert_eq!(status, 422, "{body}");

        let (status, ipad) = app.post("/api/v1/devices", json!({ "serialNumber": "dmq1234", "platform": "ipad", "model": "iPad13,1", "user": "ada@example.com" })).await;
        assert_eq!(status, 201, "{body}");
        assert_eq!(
            (
                ipad["serialNumber"].as_str(),
                ipad["platform"].as_str(),
                ipad["primaryUserId"].clone()
            ),
            (Some("DMQ1234"), Some("iPadOS"), ada["id"].clone())
        );
        for (body, words) in [
            (
                json!({ "serialNumber": "DMQ 1234", "platform": "iOS" }),
                "letters and digits",
            ),
            (
                json!({ "serialNumber": "DMQ1", "platform": "watchOS" }),
                "iOS, iPadOS or macOS",
            ),
            (
                json!({ "serialNumber": "DMQ1", "platform": "iOS", "user": "ghost@example.com" }),
                "no user",
            ),
        ] {
            let (status, res) = app.post("/api/v1/devices", body).await;
            assert_eq!(status, 422);
            assert!(
                res["error"]["message"].as_str().unwrap().contains(words),
                "{res}"
            );
        }

        let (status, c) = app
            .post(
                "/api/v1/collections",
                json!({ "name": "Grade 5 iPads", "kind": "devices" }),
            )
            .await;
        assert_eq!(status, 201, "{c}");
        assert_eq!(
            app.post(
                "/api/v1/collections",
                json!({ "name": "Grade 5 iPads", "kind": "devices" })
            )
            .await
            .0,
            409
        );
        assert_eq!(
            app.post(
                "/api/v1/collections",
                json!({ "name": "X", "kind": "groups" })
            )
            .await
            .0,
            422
        );
        let (status, res) = app
            .post(
                "/api/v1/collections/Grade%205%20iPads/members",
                json!({ "members": ["DMQ1234", "NOPE99"] }),
            )
            .await;
        assert_eq!(status, 422);
        assert!(
            res["error"]["message"].as_str().unwrap().contains("NOPE99")
                && res["error"]["message"]
                    .as_str()
                    .unwrap()
                    .contains("nothing was changed")
        );
        let (status, res) = app
            .post(
                "/api/v1/collections/Grade%205%20iPads/members",
                json!({ "members": ["dmq1234", ipad["id"].to_string()] }),
            )
            .await;
        assert_eq!(
            (status, res["changed"].as_i64()),
            (200, Some(1)),
            "{backend}: the same device twice is one member"
        );
        let (_, detail) = app.get("/api/v1/collections/Grade%205%20iPads").await;
        assert_eq!(detail["devices"][0]["serialNumber"], "DMQ1234");
        assert_eq!(detail["members"], 1);
        let (status, _) = app
            .call(
                reqwest::Method::DELETE,
                "/api/v1/collections/Grade%205%20iPads",
                Some(ADMIN),
                None,
            )
            .await;
        assert_eq!(status, 400, "needs confirmation");

        // A removed user is kept (their licenses are reclaimed by policy) and shown as removed;
        // only when confirmed.
        assert_eq!(
            app.call(
                reqwest::Method::DELETE,
                "/api/v1/users/ada@example.com",
                Some(ADMIN),
                None
            )
            .await
            .0,
            400
        );
        assert_eq!(
            app.call(
                reqwest::Method::DELETE,
                "/api/v1/users/ada@example.com?confirm=true",
                Some(ADMIN),
                None
            )
            .await
            .0,
            204
        );
        let (_, users) = app.get("/api/v1/users?search=ada").await;
        assert_eq!(users["users"][0]["removed"], true, "{backend}");
    }
}

#[tokio::test]
async fn csv_imports_report_each_bad_line_and_keep_the_rest() {
    let app = App::start(TestDb::sqlite().await).await;
    let users = "name,email,managed_apple_id\nAda,ada@example.com,\nBob,,\n,nobody@example.com,\nCy,cy@example.com,cy@appleid.example.com\nAda Again,ADA@example.com,\n";
    let (status, report) = post_csv(&app, "/api/v1/users/import", users.into()).await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(
        (report["created"].as_i64(), report["updated"].as_i64()),
        (Some(3), Some(1))
    );
    assert_eq!(
        report["errors"],
        json!([{ "line": 4, "message": "a user needs a name of at most 200 printable characters" }])
    );
    let devices = "serial_number,platform,model,name,user_email\nS1,iPadOS,iPad13,Cart 1,ada@example.com\nS2,iOS,,,\nbad serial,iOS,,,\nS3,tvOS,,,\nS4,macOS,Mac14,,ghost@example.com\nS1,iPadOS,iPad13,Cart 1 renamed,\n";
    let (status, report) = post_csv(&app, "/api/v1/devices/import", devices.into()).await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(
        (report["created"].as_i64(), report["updated"].as_i64()),
        (Some(2), Some(1))
    );
    let lines: Vec<i64> = report["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["line"].as_i64().unwrap())
        .collect();
    assert_eq!(lines, vec![4, 5, 6]);
    let (_, list) = app.get("/api/v1/devices?search=s1").await;
    assert_eq!(list["devices"][0]["name"], "Cart 1 renamed");
    assert!(
        list["devices"][0]["primaryUserId"].is_i64(),
        "an update without a user keeps the primary user"
    );

    let (status, res) = post_csv(
        &app,
        "/api/v1/devices/import",
        "serial,platform\nS9,iOS\n".into(),
    )
    .await;
    assert_eq!(status, 422);
    assert!(res["error"]["message"]
        .as_str()
        .unwrap()
        .contains("unknown column \"serial\""));
    let (status, _) = post_csv(
        &app,
        "/api/v1/devices/import",
        "serial_number,platform\nS9,iOS,extra\n".into(),
    )
    .await;
    assert_eq!(status, 200, "a ragged line is that line's error");

    // Large files are fine: 20,000 devices, over the 1 MiB limit of other requests.
    let mut big = String::from("serial_number,platform,model,name\n");
    for i in 0..20_000 {
        big.push_str(&format!(
            "BULK{i:08},iPadOS,iPad13,Library cart device {i:08}\n"
        ));
    }
    assert!(big.len() > 1024 * 1024);
    let (status, report) = post_csv(&app, "/api/v1/devices/import", big).await;
    assert_eq!(
        (status, report["created"].as_i64()),
        (200, Some(20_000)),
        "{report}"
    );
    assert_eq!(
        app.get("/api/v1/devices?limit=1").await.1["total"],
        20_000 + 2,
        "S1 and S2 before"
    );

    // One serial number on 12,000 lines (more than one chunk): applied in order, the last line
    // wins, and an empty field keeps what an earlier line gave.
    let mut repeats = String::from("serial_number,platform,model,name\n");
    repeats.push_str("REPEAT1,iOS,iPhone15,first\n");
    for i in 1..12_000 {
        repeats.push_str(&format!("REPEAT1,iOS,,name {i}\n"));
    }
    let (status, report) = post_csv(&app, "/api/v1/devices/import", repeats).await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(
        (report["created"].as_i64(), report["updated"].as_i64()),
        (Some(1), Some(11_999)),
        "{report}"
    );
    let (_, list) = app.get("/api/v1/devices?search=repeat1").await;
    assert_eq!(list["total"], 1);
    assert_eq!(
        (
            list["devices"][0]["name"].as_str(),
            list["devices"][0]["model"].as_str()
        ),
        (Some("name 11999"), Some("iPhone15"))
    );
    // A file of bad lines lists the first thousand and counts the rest.
    let mut bad = String::from("serial_number,platform\n");
    for i in 0..1500 {
        bad.push_str(&format!("BAD{i},Windows\n"));
    }
    let (_, report) = post_csv(&app, "/api/v1/devices/import", bad).await;
    assert_eq!(report["errors"].as_array().unwrap().len(), 1000);
    assert_eq!(report["errorsNotListed"], 500);
}

#[tokio::test]
async fn a_deployment_plan_from_synced_licenses() {
    let app = App::start(TestDb::sqlite().await).await;
    let (_, t) = app.add("HQ", "4000000000000001").await;
    app.synced(t["id"].as_i64().unwrap()).await;
    for serial in ["S1", "D2", "D3"] {
        assert_eq!(
            app.post(
                "/api/v1/devices",
                json!({ "serialNumber": serial, "platform": "iPadOS" })
            )
            .await
            .0,
            201
        );
    }
    app.post(
        "/api/v1/collections",
        json!({ "name": "Carts", "kind": "devices" }),
    )
    .await;
    app.post(
        "/api/v1/collections/Carts/members",
        json!({ "members": ["S1", "D2", "D3"] }),
    )
    .await;

    let (status, p) = app
        .post(
            "/api/v1/deployments/plan",
            json!({ "adamId": "111", "collection": "Carts", "onShortage": "wait" }),
        )
        .await;
    assert_eq!(status, 200, "{p}");
    assert_eq!(
        (
            p["licenseType"].as_str(),
            p["targets"].as_i64(),
            p["alreadyLicensed"].as_i64(),
            p["claims"].as_i64()
        ),
        (Some("device"), Some(3), Some(1), Some(2)),
        "S1 already holds a license at Apple"
    );
    assert_eq!(p["tokens"][0]["free"], 49);
    assert_eq!(
        p["summary"],
        "This deployment needs 2 licenses; 49 free on HQ; 1 target is already licensed."
    );
    // A book goes to users: these devices have none.
    let (_, p) = app
        .post(
            "/api/v1/deployments/plan",
            json!({ "adamId": "222", "collection": "Carts" }),
        )
        .await;
    assert_eq!(
        (
            p["needsUser"].as_i64(),
            p["needsUserTargets"].as_array().map(Vec::len)
        ),
        (Some(3), Some(3))
    );
    let (status, _) = app
        .post(
            "/api/v1/deployments/plan",
            json!({ "adamId": "111", "collection": "Nope" }),
        )
        .await;
    assert_eq!(status, 404);
    let (status, res) = app
        .post(
            "/api/v1/deployments/plan",
            json!({ "adamId": "111", "collection": "Carts", "action": "explode" }),
        )
        .await;
    assert_eq!(status, 422);
    assert!(res["error"]["message"]
        .as_str()
        .unwrap()
        .contains("required, available, uninstall or revoke"));
}
