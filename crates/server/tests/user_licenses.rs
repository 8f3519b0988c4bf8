//! User licenses end to end: registration with Apple, the invitation (InviteToProgram on the
//! user's device, the link in the API), the license only after the user accepts, and every row of
//! the license table — apps that are device-assignable or not, to users or to devices, and books.

mod fleet;

use fleet::{count, env_on, target, Env};
use serde_json::{json, Value};

const SCENARIO: &str = r#"{
  "settings": { "eventDelayMs": 0, "tickMs": 5, "notificationRetryDelayMs": 50, "limits": { "maxRequestPerSecond": 0 } },
  "organizations": [ { "name": "Acme", "managedAppleIdDomain": "acme.example", "locations": [ { "name": "HQ", "uId": "5000000000000001",
    "assets": [ { "adamId": "777", "totalCount": 5, "name": "Team Chat" },
                { "adamId": "555", "totalCount": 5, "name": "Pro Editor", "deviceAssignable": false },
                { "adamId": "444", "totalCount": 5, "name": "Staff Handbook", "productType": "Book" } ] } ] } ]
}"#;

async fn person(e: &Env, name: &str, email: &str, managed: Option<&str>) -> Value {
    let (status, p) = e
        .call(
            reqwest::Method::POST,
            "/api/v1/users",
            Some(json!({ "name": name, "email": email, "managedAppleId": managed })),
        )
        .await;
    assert_eq!(status, 201, "{p}");
    p
}

async fn device_of(e: &Env, serial: &str, user: Option<&str>) {
    let (status, d) = e
        .call(
            reqwest::Method::POST,
            "/api/v1/devices",
            Some(json!({ "serialNumber": serial, "platform": "iPadOS", "user": user })),
        )
        .await;
    assert!(status == 201 || status == 200, "{d}");
}

#[tokio::test]
async fn user_licenses_follow_the_invitation_through_every_row_of_the_license_table() {
    user_licenses_follow_the_invitation_through_every_row_of_the_license_table_on(
        allot_store::testing::TestDb::sqlite().await,
    )
    .await;
}

#[tokio::test]
async fn user_licenses_follow_the_invitation_through_every_row_of_the_license_table_on_postgres() {
    user_licenses_follow_the_invitation_through_every_row_of_the_license_table_on(
        allot_store::testing::TestDb::postgres().await,
    )
    .await;
}

async fn user_licenses_follow_the_invitation_through_every_row_of_the_license_table_on(
    db: allot_store::testing::TestDb,
) {
    let e = env_on(SCENARIO, db).await;
    e.add_token().await;
    // Ann has a Managed Apple Account of the organisation: she joins without an invitation.
    person(&e, "Ann", "ann@acme.example", Some("ann@acme.example")).await;
    let bob = person(&e, "Bob", "bob@mail.example", None).await;
    device_of(&e, "A1", Some("ann@acme.example")).await;
    device_of(&e, "B1", Some("bob@mail.example")).await;
    device_of(&e, "N1", None).await;
    let udids = e.devices("Cart", &["A1", "B1", "N1"]).await;
    e.call(
        reqwest::Method::POST,
        "/api/v1/collections",
        Some(json!({ "name": "Staff", "kind": "users" })),
    )
    .await;
    let (status, _) = e
        .call(
            reqwest::Method::POST,
            "/api/v1/collections/Staff/members",
            Some(json!({ "members": ["ann@acme.example", "bob@mail.example"] })),
        )
        .await;
    assert_eq!(status, 200);

    // Row 1: a device-assignable app to users → user licenses.
    let chat = e
        .deploy(json!({ "adamId": "777", "collection": "Staff" }))
        .await;
    let d = e
        .until(&chat, "Ann's install and Bob's invitation", |b| {
            count(b, "install_sent") == 1 && count(b, "invitation_pending") == 1
        })
        .await;
    let bob_target = target(&d, "bob@mail.example");
    assert_eq!(bob_target["license"], "user");
    assert!(
        bob_target["detail"]
            .as_str()
            .unwrap()
            .contains("inviteCode="),
        "the invitation link is there to email: {bob_target}"
    );
    let bob_queue: Vec<String> = e.mdm.queue(&udids[1]).into_iter().map(|q| q.1).collect();
    assert_eq!(
        bob_queue,
        vec!["InviteToProgram"],
        "no install before Bob joins"
    );
    let (_, who) = e
        .call(reqwest::Method::GET, "/api/v1/users/bob@mail.example", None)
        .await;
    assert_eq!(who["program"][0]["terms"], "invited", "{who}");
    assert!(who["program"][0]["invitationUrl"].as_str().is_some());
    let (_, ann) = e
        .call(reqwest::Method::GET, "/api/v1/users/ann@acme.example", None)
        .await;
    assert_eq!(ann["program"][0]["terms"], "accepted", "{ann}");
    assert_eq!(e.assigned("777").await, 1, "only Ann holds a license yet");
    e.drain_all(&udids).await;
    e.until(&chat, "Ann's install", |b| count(b, "installed") == 1)
        .await;

    // Bob accepts (Apple notifies USER_ASSOCIATED): his license and install follow.
    let accept = format!(
        "/_sim/locations/5000000000000001/users/{}/accept",
        bob["clientUserId"].as_str().unwrap()
    );
    assert_eq!(e.sim_post(&accept, json!({})).await, 204);
    e.until(&chat, "Bob's install", |b| count(b, "install_sent") == 1)
        .await;
    e.drain_all(&udids).await;
    e.until(&chat, "both installed", |b| count(b, "installed") == 2)
        .await;
    assert_eq!(e.assigned("777").await, 2);
    let (_, who) = e
        .call(reqwest::Method::GET, "/api/v1/users/bob@mail.example", None)
        .await;
    assert_eq!(who["program"][0]["terms"], "accepted", "{who}");

    // Rows 4 and 5: an app that is not device-assignable, to devices → the primary user's
    // license; a device without a user cannot have it.
    let editor = e
        .deploy(json!({ "adamId": "555", "collection": "Cart" }))
        .await;
    let d = e
        .until(&editor, "user licenses for the devices' users", |b| {
            count(b, "install_sent") == 2 && count(b, "needs_user") == 1
        })
        .await;
    assert_eq!(target(&d, "N1")["status"], "needs_user");
    assert!(target(&d, "N1")["detail"]
        .as_str()
        .unwrap()
        .contains("no primary user"));
    assert_eq!(target(&d, "A1")["license"], "user");
    e.drain_all(&udids).await;
    e.until(&editor, "installed", |b| count(b, "installed") == 2)
        .await;
    assert_eq!(e.assigned("555").await, 2);

    // Row 2: the same app to the users: they hold its licenses already, nothing more is claimed.
    let again = e
        .deploy(json!({ "adamId": "555", "collection": "Staff" }))
        .await;
    e.until(&again, "installs", |b| count(b, "install_sent") == 2)
        .await;
    assert_eq!(e.assigned("555").await, 2, "no second license per person");

    // Books are user-licensed, installed with InstallMedia.
    e.drain_all(&udids).await;
    let book = e
        .deploy(json!({ "adamId": "444", "collection": "Cart" }))
        .await;
    e.until(&book, "book installs", |b| {
        count(b, "install_sent") == 2 && count(b, "needs_user") == 1
    })
    .await;
    let kinds: Vec<String> = e.mdm.queue(&udids[0]).into_iter().map(|q| q.1).collect();
    assert_eq!(kinds, vec!["InstallMedia"]);
    e.drain_all(&udids).await;
    e.until(&book, "books installed", |b| count(b, "installed") == 2)
        .await;
    assert_eq!(e.assigned("444").await, 2);
}
