//! Declarative app management, end to end: the fake NanoMDM forwards its devices' declarative
//! check-ins to Allot as NanoMDM's `-dm` does (`X-Enrollment-ID`, signed), devices that support
//! it get their apps by declaration and report by status, the others by commands — never both —
//! and a device that starts supporting it moves over without its app being removed.

#[macro_use]
mod fleet;

use std::time::Duration;

use fleet::{count, env_with, target, Env, DM_HMAC};
use serde_json::{json, Value};

const SCENARIO: &str = r#"{
  "settings": { "eventDelayMs": 0, "tickMs": 5, "notificationRetryDelayMs": 50, "limits": { "maxRequestPerSecond": 0 } },
  "organizations": [ { "name": "Acme", "locations": [ { "name": "HQ", "uId": "5000000000000001",
    "assets": [ { "adamId": "777", "totalCount": 10, "name": "Team Chat", "bundleId": "com.example.chat" } ] } ] } ]
}"#;

fn quick_device_facts(c: &mut allot_server::Config) {
    c.device_info_interval = Duration::from_millis(300);
}

/// The request types NanoMDM queued for a device, in order.
fn commands_to(e: &Env, udid: &str) -> Vec<String> {
    e.mdm
        .enqueued()
        .iter()
        .filter(|(ids, _)| ids.iter().any(|i| i == udid))
        .filter_map(|(_, bytes)| allot_mdm::commands::parse_command(bytes).map(|(_, t, _)| t))
        .collect()
}

on_both!(
    declared_apps_install_and_are_removed_on,
    declared_apps_install_and_are_removed,
    declared_apps_install_and_are_removed_on_postgres
);

async fn declared_apps_install_and_are_removed_on(db: allot_store::testing::TestDb) {
    let e = env_with(SCENARIO, db, |_| {}).await;
    e.add_token().await;
    let bundle = e.bundle_of("777").await;
    e.mdm.set_os_version("UDID-OLD1", "16.7");
    e.mdm.set_store_version(777, 870_001);
    let udids = e.devices("Cart", &["NEW1", "NEW2", "OLD1"]).await;
    let path = e
        .deploy(json!({ "adamId": "777", "collection": "Cart", "declarative": true }))
        .await;
    let d = e
        .until_answering(&path, &udids, "all three installed", |d| {
            count(d, "installed") == 3
        })
        .await;
    assert_eq!(d["options"]["declarative"], true, "{d}");
    for new in ["NEW1", "NEW2"] {
        assert_eq!(target(&d, new)["declarative"], true, "{d}");
        let udid = format!("UDID-{new}");
        let sent = commands_to(&e, &udid);
        assert!(
            sent.contains(&"DeclarativeManagement".to_owned())
                && !sent.contains(&"InstallApplication".to_owned()),
            "{new}: declared, never commanded: {sent:?}"
        );
        assert_eq!(e.mdm.declared_apps(&udid), std::slice::from_ref(&bundle));
        assert!(e.mdm.installed_apps(&udid).contains(&bundle));
        assert!(
            target(&d, new)["confirmedAt"].is_string(),
            "its status report confirmed it"
        );
    }
    // iOS 16.7 cannot: commands, as before.
    assert_eq!(target(&d, "OLD1")["declarative"], false, "{d}");
    assert!(commands_to(&e, "UDID-OLD1").contains(&"InstallApplication".to_owned()));
    assert!(e.mdm.declared_apps("UDID-OLD1").is_empty());
    let version = |d: &Value| d["declaredApps"][0]["externalVersionId"].clone();
    let (_, device) = e
        .call(reqwest::Method::GET, "/api/v1/devices/NEW1", None)
        .await;
    assert_eq!(
        device["declaredApps"][0]["bundleId"],
        bundle.as_str(),
        "{device}"
    );
    assert_eq!(device["declaredApps"][0]["state"], "managed", "{device}");
    assert_eq!(version(&device), 870_001, "{device}");

    // Update: the store publishes a new version; the declaration says AlwaysOn, so the device
    // updates the app itself and its status report says the new version — no command sent.
    e.mdm.set_store_version(777, 870_002);
    assert_eq!(e.mdm.update_declared_apps("UDID-NEW1").await, 1);
    let (_, device) = e
        .call(reqwest::Method::GET, "/api/v1/devices/NEW1", None)
        .await;
    assert_eq!(version(&device), 870_002, "{device}");
    assert!(!commands_to(&e, "UDID-NEW1").contains(&"InstallApplication".to_owned()));
    let (_, d) = e.call(reqwest::Method::GET, &path, None).await;
    assert_eq!(target(&d, "NEW1")["status"], "installed", "{d}");

    // Uninstall: the declarations are withdrawn (the devices remove the apps and say so), the
    // old device gets RemoveApplication; the licenses go back.
    let (status, res) = e
        .call(
            reqwest::Method::POST,
            "/api/v1/deployments",
            Some(json!({ "adamId": "777", "collection": "Cart", "action": "uninstall", "supersede": true })),
        )
        .await;
    assert_eq!(status, 201, "{res}");
    let uninstall = format!("/api/v1/deployments/{}", res["id"]);
    e.until_answering(&uninstall, &udids, "removed everywhere", |d| {
        count(d, "license_reclaimed") + count(d, "uninstalled") == 3
    })
    .await;
    for udid in &udids {
        assert!(!e.mdm.installed_apps(udid).contains(&bundle), "{udid}");
        assert!(e.mdm.declared_apps(udid).is_empty(), "{udid}");
    }
    assert!(commands_to(&e, "UDID-NEW1")
        .iter()
        .all(|c| c != "RemoveApplication"));
    assert!(commands_to(&e, "UDID-OLD1").contains(&"RemoveApplication".to_owned()));
    e.until_assigned("777", 0, "every license given back").await;
}

on_both!(
    a_license_error_reported_by_status_is_reconciled_on,
    a_license_error_reported_by_status_is_reconciled,
    a_license_error_reported_by_status_is_reconciled_on_postgres
);

async fn a_license_error_reported_by_status_is_reconciled_on(db: allot_store::testing::TestDb) {
    let e = env_with(SCENARIO, db, |_| {}).await;
    e.add_token().await;
    e.bundle_of("777").await;
    let udids = e.devices("Broken", &["LIC1"]).await;
    e.mdm.set_behaviour(
        &udids[0],
        allot_mdm::fake::Behaviour::FailInstalls {
            code: 0,
            domain: String::new(),
            description: String::new(),
        },
    );
    let path = e
        .deploy(json!({ "adamId": "777", "collection": "Broken", "declarative": true }))
        .await;
    let d = e
        .until_answering(&path, &udids, "the failure reported by status", |d| {
            count(d, "failed") == 1
        })
        .await;
    let detail = target(&d, "LIC1")["detail"].as_str().unwrap_or_default();
    assert!(
        detail.contains("a license for the app was not available")
            && detail.contains("Error.LicenseNotFound"),
        "{d}"
    );
    // Reconciled as a failed command: the license it claimed went back, the declaration too.
    e.until_assigned("777", 0, "the license given back").await;
    e.until_answering(&path, &udids, "the declaration withdrawn", |_| {
        e.mdm.declared_apps(&udids[0]).is_empty()
    })
    .await;
    assert!(!commands_to(&e, &udids[0]).contains(&"InstallApplication".to_owned()));
}

on_both!(
    a_device_moves_from_commands_to_declarations_on,
    a_device_moves_from_commands_to_declarations,
    a_device_moves_from_commands_to_declarations_on_postgres
);

async fn a_device_moves_from_commands_to_declarations_on(db: allot_store::testing::TestDb) {
    let e = env_with(SCENARIO, db, quick_device_facts).await;
    e.add_token().await;
    let bundle = e.bundle_of("777").await;
    e.mdm.set_os_version("UDID-MOVE1", "17.1");
    let udids = e.devices("Movers", &["MOVE1"]).await;
    let path = e
        .deploy(json!({ "adamId": "777", "collection": "Movers", "declarative": true }))
        .await;
    e.until_answering(&path, &udids, "installed by command", |d| {
        count(d, "installed") == 1 && target(d, "MOVE1")["declarative"] == false
    })
    .await;
    assert!(commands_to(&e, &udids[0]).contains(&"InstallApplication".to_owned()));
    // The device updates to iOS 17.4; the daily DeviceInformation sees it; the app moves under
    // a declaration, taken over where it is.
    e.mdm.set_os_version(&udids[0], "17.4");
    let d = e
        .until_answering(&path, &udids, "managed by declaration", |d| {
            target(d, "MOVE1")["declarative"] == true
                && e.mdm.declared_apps(&udids[0]).contains(&bundle)
        })
        .await;
    assert_eq!(count(&d, "installed"), 1, "{d}");
    assert_eq!(e.mdm.removals(&udids[0]), 0, "the app was never removed");
    assert!(e.mdm.installed_apps(&udids[0]).contains(&bundle));
    let sent = commands_to(&e, &udids[0]);
    assert_eq!(
        sent.iter().filter(|c| *c == "InstallApplication").count(),
        1,
        "one install, by command, before the move: {sent:?}"
    );
}

/// The protocol's edges: the signature NanoMDM adds is required, the device is named, a device
/// Allot does not know gets the activation and subscription alone, and a bad report is a 400.
#[tokio::test]
async fn the_declarations_protocol_checks_who_asks() {
    let e = env_with(
        SCENARIO,
        allot_store::testing::TestDb::sqlite().await,
        |_| {},
    )
    .await;
    let http = reqwest::Client::new();
    let url = |p: &str| format!("{}/mdm/declarative/{p}", e.base);
    let sign = |body: &[u8]| allot_mdm::webhook::sign(DM_HMAC.as_bytes(), body);
    // A GET as NanoMDM forwards it for device UDID-X.
    let get = |p: &str| {
        http.get(url(p))
            .header("X-Enrollment-ID", "UDID-X")
            .header("X-Hmac-Signature", sign(b""))
            .send()
    };
    let res = http
        .get(url("tokens"))
        .header("X-Enrollment-ID", "UDID-X")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401, "unsigned");
    let res = http
        .get(url("tokens"))
        .header("X-Hmac-Signature", sign(b""))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400, "no device named");
    let body: Value = res.json().await.unwrap();
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("X-Enrollment-ID"),
        "{body}"
    );
    let items: Value = get("declaration-items")
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let configs = items["Declarations"]["Configurations"].as_array().unwrap();
    assert_eq!(configs.len(), 1, "{items}");
    assert_eq!(configs[0]["Identifier"], "allot.status-subscriptions");
    let sub: Value = get("declaration/configuration/allot.status-subscriptions")
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        sub["Payload"]["StatusItems"][0]["Name"], "app.managed.list",
        "{sub}"
    );
    let missing = get("declaration/configuration/allot.app.1").await.unwrap();
    assert_eq!(missing.status(), 404);
    for bad in [
        &b"not json"[..],
        br#"{"StatusItems":{"app":{"managed":{"list":"x"}}}}"#,
    ] {
        let res = http
            .put(url("status"))
            .header("X-Enrollment-ID", "UDID-X")
            .header("X-Hmac-Signature", sign(bad))
            .body(bad.to_vec())
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 400, "{}", String::from_utf8_lossy(bad));
    }
}
