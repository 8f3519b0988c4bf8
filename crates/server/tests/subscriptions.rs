//! Subscriptions through the API, on SQLite and PostgreSQL, with Apple's notifications reaching the
//! server: enabled on a token when the administrator asks, counts moved by SUBSCRIPTION_COUNT
//! without a sync, seats given and taken back at the period's end, the renewal forecast (JSON and
//! CSV), and requests Apple or Allot refuse, in words.

mod support;

use std::time::Duration;

use allot_store::testing::TestDb;
use serde_json::{json, Value};
use support::App;

const HQ: &str = "4000000000000001";

fn sub(body: &Value) -> Option<&Value> {
    body["subscriptions"]
        .as_array()
        .and_then(|a| a.iter().find(|s| s["adamId"] == 901))
}

async fn flow(db: TestDb) {
    let app = App::start_with(db, |c| c.event_poll = Duration::from_millis(50)).await;
    let (status, t) = app.add("HQ", HQ).await;
    assert_eq!(status, 201, "{t}");
    app.synced(t["id"].as_i64().unwrap()).await;
    let (status, list) = app.get("/api/v1/subscriptions").await;
    assert_eq!(
        (status, list["subscriptions"].as_array().unwrap().len()),
        (200, 0)
    );

    // Not enabled yet: no seat can be given, and the answer says what to do.
    let assign = json!({ "token": "HQ", "clientUserIds": ["alice"] });
    let (status, err) = app
        .post("/api/v1/subscriptions/901/seats", assign.clone())
        .await;
    assert_eq!(status, 409, "{err}");
    assert!(err.to_string().contains("enable them first"), "{err}");

    let (status, on) = app
        .post("/api/v1/tokens/HQ/subscriptions", json!(null))
        .await;
    assert_eq!(status, 200, "{on}");
    assert_eq!(
        on,
        json!({ "subscriptionManagement": true, "subscriptions": 0 })
    );

    // Seats bought at Apple: SUBSCRIPTION_COUNT brings them, no sync asked.
    for (renewing, count) in [(true, 4), (false, 2)] {
        app.sim_post(
            &format!("/_sim/locations/{HQ}/purchase"),
            json!({ "adamId": "901", "productType": "Subscription", "parentAdamId": 111,
                    "count": count, "renewing": renewing, "periodEndDate": "2027-03-31" }),
        )
        .await;
    }
    let list = app
        .until("/api/v1/subscriptions?token=HQ", "the seats bought", |b| {
            sub(b).is_some_and(|s| s["total"] == json!({ "renewing": 4, "expiring": 2 }))
        })
        .await;
    let s = sub(&list).unwrap();
    assert_eq!(s["appName"], "Acme Notes");
    assert_eq!(s["token"], "HQ");
    assert_eq!(s["parentAdamId"], 111);

    // Alice gets a renewing seat; then gives it back at the period's end (the default).
    let (status, ev) = app
        .post("/api/v1/subscriptions/901/seats", assign.clone())
        .await;
    assert_eq!(status, 202, "{ev}");
    assert!(ev["eventId"].as_str().is_some_and(|e| !e.is_empty()));
    app.until("/api/v1/subscriptions/901/seats?token=HQ", "alice's seat", |b| {
        b["seats"] == json!([{ "clientUserId": "alice", "email": null, "renewing": true, "leaving": false }])
    })
    .await;
    let (status, _) = app
        .post(
            "/api/v1/subscriptions/901/seats/remove",
            json!({ "token": "HQ", "clientUserIds": ["alice"] }),
        )
        .await;
    assert_eq!(status, 202);
    app.until(
        "/api/v1/subscriptions/901/seats?token=HQ",
        "alice leaving",
        |b| b["seats"][0]["leaving"] == true,
    )
    .await;
    let list = app
        .until("/api/v1/subscriptions", "the counts after the seat", |b| {
            sub(b).is_some_and(|s| s["assigned"]["renewing"] == 1)
        })
        .await;
    let s = sub(&list).unwrap();
    assert_eq!(s["leaving"], 1);
    assert_eq!(
        s["forecast"],
        json!({ "renewingSeats": 4, "expiringSeats": 2, "usersLosingAccess": 1, "unusedRenewingSeats": 4 })
    );

    // The renewal forecast.
    let (status, rows) = app.get("/api/v1/reports/subscriptions?format=json").await;
    assert_eq!(status, 200);
    let r = &rows[0];
    assert_eq!(
        (
            r["app"].as_str(),
            r["periodEnd"].as_str(),
            r["seatsTotal"].as_i64(),
            r["seatsAssigned"].as_i64()
        ),
        (Some("Acme Notes"), Some("2027-03-31"), Some(6), Some(1))
    );
    assert_eq!(
        (
            r["usersLosingAccess"].as_i64(),
            r["unusedRenewingSeats"].as_i64()
        ),
        (Some(1), Some(4))
    );
    let res = app
        .http
        .get(format!("{}/api/v1/reports/subscriptions", app.base))
        .bearer_auth(support::ADMIN)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let csv = res.text().await.unwrap();
    assert!(
        csv.starts_with("token,app,parentAdamId,adamId,status,periodEnd,seatsTotal"),
        "{csv}"
    );
    assert!(
        csv.contains("HQ,Acme Notes,111,901,ACTIVE,2027-03-31,6,1,4,2,1,4,"),
        "{csv}"
    );

    // Refused, in words, and nothing changes.
    for (path, body, want, says) in [
        (
            "/api/v1/subscriptions/901/seats",
            json!({ "token": "HQ", "clientUserIds": [] }),
            422,
            "1 to 1,000",
        ),
        (
            "/api/v1/subscriptions/901/seats",
            json!({ "token": "HQ", "clientUserIds": ["nobody"] }),
            422,
            "9814",
        ),
        (
            "/api/v1/subscriptions/424242/seats",
            json!({ "token": "HQ", "clientUserIds": ["alice"] }),
            422,
            "9813",
        ),
        (
            "/api/v1/subscriptions/901/seats",
            json!({ "token": "Nowhere", "clientUserIds": ["alice"] }),
            404,
            "Nowhere",
        ),
        (
            "/api/v1/subscriptions/901/seats",
            json!({ "token": "HQ", "clientUserIds": ["a\u{7}b"] }),
            422,
            "printable",
        ),
        (
            "/api/v1/subscriptions/901/seats/remove",
            json!({ "token": "HQ", "clientUserIds": ["bob"], "soon": true }),
            400,
            "soon",
        ),
    ] {
        let (status, err) = app.post(path, body).await;
        assert_eq!(status, want, "{path}: {err}");
        assert!(err.to_string().contains(says), "{path}: {err}");
    }
    let (status, err) = app
        .get("/api/v1/subscriptions/not-a-number/seats?token=HQ")
        .await;
    assert!(
        status == 400 || status == 422 || status == 404,
        "{status} {err}"
    );
    let (_, seats) = app.get("/api/v1/subscriptions/901/seats?token=HQ").await;
    assert_eq!(seats["seats"].as_array().unwrap().len(), 1);

    // A standing intent: everyone in "Sales" holds a seat. Dana is not known to Apple at this
    // location: Allot registers her, then gives her a seat.
    let (status, dana) = app
        .post(
            "/api/v1/users",
            json!({ "name": "Dana", "email": "dana@acme.example" }),
        )
        .await;
    assert_eq!(status, 201, "{dana}");
    let dana_id = dana["clientUserId"].as_str().unwrap().to_owned();
    let (status, _) = app
        .post(
            "/api/v1/collections",
            json!({ "name": "Sales", "kind": "users" }),
        )
        .await;
    assert_eq!(status, 201);
    let (status, _) = app
        .post(
            "/api/v1/collections/Sales/members",
            json!({ "members": ["dana@acme.example"] }),
        )
        .await;
    assert_eq!(status, 200);
    let (status, err) = app
        .post(
            "/api/v1/subscriptions/999/intents",
            json!({ "token": "HQ", "collection": "Sales" }),
        )
        .await;
    assert_eq!(status, 422, "{err}");
    assert!(err.to_string().contains("no subscription 999"), "{err}");
    let (status, intent) = app
        .post(
            "/api/v1/subscriptions/901/intents",
            json!({ "token": "HQ", "collection": "Sales" }),
        )
        .await;
    assert_eq!(status, 201, "{intent}");
    assert_eq!(
        (intent["members"].as_i64(), intent["renewing"].as_bool()),
        (Some(1), Some(true))
    );
    let (status, _) = app
        .post(
            "/api/v1/subscriptions/901/intents",
            json!({ "token": "HQ", "collection": "Sales" }),
        )
        .await;
    assert_eq!(status, 409, "one intent per collection and subscription");
    app.until("/api/v1/subscriptions/intents", "Dana seated", |b| {
        b["intents"][0]["seated"] == 1
    })
    .await;
    let (_, seats) = app.get("/api/v1/subscriptions/901/seats?token=HQ").await;
    assert!(
        seats["seats"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["clientUserId"] == dana_id.as_str()
                && s["renewing"] == true
                && s["leaving"] == false),
        "{seats}"
    );

    // Dana leaves Sales: at the next pass (a sync here) her seat goes back at the period's end.
    let res = app
        .call(
            reqwest::Method::DELETE,
            "/api/v1/collections/Sales/members",
            Some(support::ADMIN),
            Some(json!({ "members": ["dana@acme.example"] })),
        )
        .await;
    assert_eq!(res.0, 200, "{}", res.1);
    let (status, _) = app.post("/api/v1/tokens/HQ/sync", json!({})).await;
    assert_eq!(status, 202);
    app.until(
        "/api/v1/subscriptions/901/seats?token=HQ",
        "Dana leaving",
        |b| {
            b["seats"]
                .as_array()
                .unwrap()
                .iter()
                .any(|s| s["clientUserId"] == dana_id.as_str() && s["leaving"] == true)
        },
    )
    .await;
    let id = intent["id"].as_i64().unwrap();
    let res = app
        .call(
            reqwest::Method::DELETE,
            &format!("/api/v1/subscriptions/intents/{id}?confirm=true&then=later"),
            Some(support::ADMIN),
            None,
        )
        .await;
    assert_eq!(res.0, 422);
    let res = app
        .call(
            reqwest::Method::DELETE,
            &format!("/api/v1/subscriptions/intents/{id}"),
            Some(support::ADMIN),
            None,
        )
        .await;
    assert_eq!(res.0, 400, "{}", res.1);
    assert!(res.1.to_string().contains("confirm=true"), "{}", res.1);
    let res = app
        .call(
            reqwest::Method::DELETE,
            &format!("/api/v1/subscriptions/intents/{id}?confirm=true"),
            Some(support::ADMIN),
            None,
        )
        .await;
    assert_eq!(res.0, 204);
    let (_, list) = app.get("/api/v1/subscriptions/intents").await;
    assert_eq!(list["intents"], json!([]));
}

#[tokio::test]
async fn subscriptions_on_sqlite() {
    flow(TestDb::sqlite().await).await;
}

#[tokio::test]
async fn subscriptions_on_postgres() {
    flow(TestDb::postgres().await).await;
}
