//! Devices learned from NanoMDM's webhook, signed as NanoMDM signs it.

mod support;

use allot_store::testing::TestDb;
use base64::Engine;
use serde_json::{json, Value};
use support::*;

fn raw_payload(pairs: &[(&str, &str)]) -> String {
    let mut d = plist::Dictionary::new();
    for (k, v) in pairs {
        d.insert((*k).into(), plist::Value::String((*v).into()));
    }
    let mut out = Vec::new();
    plist::to_writer_xml(&mut out, &plist::Value::Dictionary(d)).unwrap();
    base64::engine::general_purpose::STANDARD.encode(out)
}

/// NanoMDM's form of a time: RFC 3339 with nanoseconds, `seconds_ago` before now.
fn nano_time(seconds_ago: i64) -> String {
    (chrono::Utc::now() - chrono::Duration::seconds(seconds_ago))
        .to_rfc3339_opts(chrono::SecondsFormat::Nanos, true)
}

fn checkin_at(topic: &str, id: &str, pairs: &[(&str, &str)], seconds_ago: i64) -> String {
    json!({ "topic": topic, "event_id": uuid::Uuid::new_v4().simple().to_string(), "created_at": nano_time(seconds_ago),
            "checkin_event": { "udid": id, "ids": { "id": id, "type": "Device" }, "raw_payload": raw_payload(pairs) } })
    .to_string()
}

fn checkin(topic: &str, id: &str, pairs: &[(&str, &str)]) -> String {
    checkin_at(topic, id, pairs, 0)
}

async fn deliver(app: &App, body: &str, signature: Option<String>) -> (u16, Value) {
    let mut req = app
        .http
        .post(format!("{}/mdm/webhook", app.base))
        .header("content-type", "application/json; charset=utf-8")
        .body(body.to_owned());
    if let Some(s) = signature {
        req = req.header("X-Hmac-Signature", s);
    }
    let res = req.send().await.unwrap();
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(Value::Null))
}

async fn signed(app: &App, body: &str) -> (u16, Value) {
    deliver(
        app,
        body,
        Some(allot_mdm::webhook::sign(
            WEBHOOK_KEY.as_bytes(),
            body.as_bytes(),
        )),
    )
    .await
}

#[tokio::test]
async fn devices_enroll_and_leave_through_the_webhook() {
    let app = App::start(TestDb::sqlite().await).await;
    let udid = "00008020-000915083C80012E";
    let auth = checkin(
        "mdm.Authenticate",
        udid,
        &[
            ("MessageType", "Authenticate"),
            ("UDID", udid),
            ("SerialNumber", "dmpxq1a2b3c4"),
            ("ProductName", "iPad13,1"),
            ("DeviceName", "Cart 3 iPad"),
        ],
    );

    assert_eq!(deliver(&app, &auth, None).await.0, 401, "unsigned");
    assert_eq!(
        deliver(
            &app,
            &auth,
            Some(allot_mdm::webhook::sign(
                b"wrong-key-wrong-key",
                auth.as_bytes()
            ))
        )
        .await
        .0,
        401
    );
    let (status, res) = signed(&app, &auth).await;
    assert_eq!(status, 200, "{res}");
    assert_eq!(res["created"], true);
    let (_, list) = app.get("/api/v1/devices?search=DMPXQ").await;
    let d = &list["devices"][0];
    assert_eq!(
        (
            d["serialNumber"].as_str(),
            d["platform"].as_str(),
            d["name"].as_str(),
            d["enrollmentId"].as_str(),
            d["enrolled"].as_bool()
        ),
        (
            Some("DMPXQ1A2B3C4"),
            Some("iPadOS"),
            Some("Cart 3 iPad"),
            Some(udid),
            Some(true)
        )
    );

    let (status, _) = signed(
        &app,
        &checkin(
            "mdm.CheckOut",
            udid,
            &[("MessageType", "CheckOut"), ("UDID", udid)],
        ),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(
        app.get("/api/v1/devices?search=DMPXQ").await.1["devices"][0]["enrolled"],
        false,
        "checked out"
    );
    // Re-enrolling: the same device, enrolled again.
    let again = checkin(
        "mdm.Authenticate",
        udid,
        &[
            ("MessageType", "Authenticate"),
            ("UDID", udid),
            ("SerialNumber", "dmpxq1a2b3c4"),
            ("ProductName", "iPad13,1"),
            ("DeviceName", "Cart 3 iPad"),
        ],
    );
    let (_, res) = signed(&app, &again).await;
    assert_eq!(res["created"], false);
    assert_eq!(
        app.get("/api/v1/devices?search=DMPXQ").await.1["devices"][0]["enrolled"],
        true
    );

    // User Enrollment has no serial number: nothing to record, but no error for NanoMDM.
    let (status, res) = signed(
        &app,
        &checkin(
            "mdm.Authenticate",
            "ENROLL-XYZ",
            &[("MessageType", "Authenticate")],
        ),
    )
    .await;
    assert_eq!((status, res["device"].clone()), (200, Value::Null));
    // Topics Allot does not use are acknowledged, bad bodies refused with the reason.
    let (status, _) = signed(
        &app,
        &json!({ "topic": "mdm.GetBootstrapToken", "checkin_event": {} }).to_string(),
    )
    .await;
    assert_eq!(status, 200);
    let (status, res) = signed(&app, "{\"topic\": 7}").await;
    assert_eq!(status, 400);
    assert!(res["error"]["message"]
        .as_str()
        .unwrap()
        .contains("not NanoMDM's event JSON"));
    assert_eq!(app.get("/api/v1/devices").await.1["total"], 1);
}

/// A signed webhook is still a device's words: NanoMDM relays whatever the device sent.
#[tokio::test]
async fn hostile_plists_are_refused_and_the_server_stays_up() {
    let app = App::start(TestDb::sqlite().await).await;
    let envelope = |raw: &[u8]| {
        json!({ "topic": "mdm.Authenticate", "event_id": uuid::Uuid::new_v4().to_string(), "created_at": nano_time(0),
                "checkin_event": { "udid": "U-HOSTILE", "ids": { "id": "U-HOSTILE", "type": "Device" },
                                   "raw_payload": base64::engine::general_purpose::STANDARD.encode(raw) } })
        .to_string()
    };
    // A few hundred bytes that expand to 2^36 leaves (refused for its depth), or 2^30 leaves
    // within the depth (refused for its count).
    for (levels, limit) in [(36, "levels"), (30, "objects")] {
        let bomb = allot_mdm::fake::shared_reference_bomb(levels);
        let (status, res) = signed(&app, &envelope(&bomb)).await;
        assert_eq!(status, 400, "{res}");
        let message = res["error"]["message"].as_str().unwrap();
        assert!(
            message.contains("refused") && message.contains(limit),
            "{res}"
        );
    }
    // 4,000 levels deep overflowed the stack.
    let deep = format!(
        r#"<?xml version="1.0"?><plist version="1.0">{}<string>x</string>{}</plist>"#,
        "<array>".repeat(4000),
        "</array>".repeat(4000)
    );
    let (status, res) = signed(&app, &envelope(deep.as_bytes())).await;
    assert_eq!(status, 400, "{res}");
    assert!(res["error"]["message"].as_str().unwrap().contains("levels"));
    // The same device with an ordinary plist is learned afterwards.
    let ok = checkin(
        "mdm.Authenticate",
        "U-HOSTILE",
        &[("SerialNumber", "HOSTILE1"), ("ProductName", "iPad13,1")],
    );
    assert_eq!(signed(&app, &ok).await.0, 200);
    assert_eq!(app.get("/api/v1/devices").await.1["total"], 1);
}

/// What a device reports about itself follows the API's rules; a signed body is applied once;
/// an event older than one applied to the device does not undo it.
#[tokio::test]
async fn webhook_input_is_checked_replays_refused_and_late_events_ignored() {
    for db in TestDb::both().await {
        let app = App::start(db).await;
        let long_serial = "A".repeat(10_000);
        for serial in ["<SCRIPT>", long_serial.as_str(), "AB\u{0}CD"] {
            let body = checkin("mdm.Authenticate", "U-1", &[("SerialNumber", serial)]);
            let (status, res) = signed(&app, &body).await;
            assert_eq!(status, 400, "{serial:.20}: {res}");
            assert!(res["error"]["message"]
                .as_str()
                .unwrap()
                .contains("serial number"));
        }
        let long_id = "E".repeat(100_000);
        let body = checkin("mdm.Authenticate", &long_id, &[("SerialNumber", "OK1")]);
        let (status, res) = signed(&app, &body).await;
        assert_eq!(status, 400, "{res}");
        assert!(res["error"]["message"]
            .as_str()
            .unwrap()
            .contains("enrollment id"));
        // A device name with control characters is stored without them.
        let enroll = checkin(
            "mdm.Authenticate",
            "U-2",
            &[
                ("SerialNumber", "good1"),
                ("DeviceName", "Lab\u{1b}[31m\niPad"),
            ],
        );
        assert_eq!(signed(&app, &enroll).await.0, 200);
        let (_, list) = app.get("/api/v1/devices").await;
        assert_eq!(list["total"], 1, "nothing hostile was stored: {list}");
        assert_eq!(list["devices"][0]["name"], "Lab[31miPad");

        // The same signed CheckOut three times: applied once, then refused.
        let checkout = checkin("mdm.CheckOut", "U-2", &[("MessageType", "CheckOut")]);
        assert_eq!(signed(&app, &checkout).await.0, 200);
        let enrolled =
            || async { app.get("/api/v1/devices").await.1["devices"][0]["enrolled"].clone() };
        assert_eq!(enrolled().await, false);
        let back = checkin_at("mdm.Authenticate", "U-2", &[("SerialNumber", "good1")], 0);
        assert_eq!(signed(&app, &back).await.0, 200);
        for _ in 0..2 {
            let (status, res) = signed(&app, &checkout).await;
            assert_eq!(status, 409, "{res}");
        }
        assert_eq!(
            enrolled().await,
            true,
            "a replayed CheckOut unenrolled the device"
        );
        // A CheckOut NanoMDM received before that Authenticate, delivered late: not applied.
        let late = checkin_at("mdm.CheckOut", "U-2", &[("MessageType", "CheckOut")], 60);
        let (status, res) = signed(&app, &late).await;
        assert_eq!(
            (status, res["stale"].clone()),
            (200, Value::Bool(true)),
            "{res}"
        );
        assert_eq!(enrolled().await, true);
        // An event older than the replay window is refused.
        let ancient = checkin_at("mdm.CheckOut", "U-2", &[], 8 * 86_400);
        assert_eq!(signed(&app, &ancient).await.0, 400);
    }
}

/// An event that could not be applied is not remembered as applied: sent again, it is tried
/// again (and refused for its own reason, not as a replay).
#[tokio::test]
async fn an_event_that_failed_is_not_taken_for_a_replay() {
    let app = App::start(TestDb::sqlite().await).await;
    let first = checkin("mdm.Authenticate", "U-SAME", &[("SerialNumber", "ONE1")]);
    assert_eq!(signed(&app, &first).await.0, 200);
    // Another serial number claiming the same enrollment: refused.
    let clash = checkin("mdm.Authenticate", "U-SAME", &[("SerialNumber", "TWO2")]);
    for _ in 0..2 {
        let (status, res) = signed(&app, &clash).await;
        assert_eq!(status, 409, "{res}");
        assert!(
            res["error"]["message"]
                .as_str()
                .unwrap()
                .contains("belongs to another device"),
            "{res}"
        );
    }
}
