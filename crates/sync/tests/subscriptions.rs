//! Subscriptions (§15) against the simulator over HTTP, on SQLite and PostgreSQL: enabled when the
//! administrator asks, read whole at each sync with counts split renewing/expiring, seats given and
//! taken back (deferred to the period's end), and what the period's end leaves.

use std::time::Duration;

use allot_apple_client::{AppleClient, ClientOptions};
use allot_apple_sim::RunningSim;
use allot_domain::Program;
use allot_secrets::SecretBox;
use allot_store::testing::TestDb;
use allot_sync::{
    AddToken, Instance, SeatChange, SubscriptionError, SyncConfig, SyncEngine, SyncKind,
};
use serde_json::{json, Value};

const KEY: &str = "AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=";
const SCENARIO: &str = r#"{
  "settings": { "eventDelayMs": 0, "tickMs": 5, "assetsPageSize": 1, "assignmentsPageSize": 2,
                "limits": { "maxRequestPerSecond": 0 } },
  "organizations": [ { "name": "Acme", "locations": [ { "name": "HQ", "uId": "6000000000000001",
    "assets": [ { "adamId": "900", "totalCount": 5, "name": "Acme Notes" } ],
    "users": [ { "clientUserId": "u1", "status": "Associated" }, { "clientUserId": "u2" },
               { "clientUserId": "u3" }, { "clientUserId": "u4" } ] } ] } ]
}"#;
const UID: &str = "6000000000000001";

fn engine(sim: &RunningSim, db: &TestDb) -> SyncEngine {
    let mut opts = ClientOptions::new(&sim.apple_url());
    opts.backoff = Duration::from_millis(10);
    SyncEngine::new(
        db.store.clone(),
        AppleClient::new(opts),
        SecretBox::from_base64(KEY).unwrap(),
        Instance {
            id: "allot-test-instance".into(),
            name: "Allot".into(),
            version: "test".into(),
            public_url: None,
        },
        SyncConfig {
            subscription_event_poll: Duration::from_millis(20),
            ..Default::default()
        },
    )
}

async fn control(sim: &RunningSim, path: &str, body: Value) -> (u16, Value) {
    let res = reqwest::Client::new()
        .post(format!("{}/_sim/{path}", sim.base_url))
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(Value::Null))
}

/// Polls the store until `check` holds (a seat event is followed in the background).
async fn until<T>(what: &str, mut f: impl AsyncFnMut() -> Option<T>) -> T {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(std::time::Instant::now() < deadline, "{what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn subscriptions_are_enabled_synced_and_their_seats_managed() {
    for db in TestDb::both().await {
        let sim = allot_apple_sim::start_local(SCENARIO).await.unwrap();
        let locs: Value = reqwest::get(format!("{}/_sim/locations", sim.base_url))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let token = locs[0]["token"].as_str().unwrap().to_owned();
        let engine = engine(&sim, &db);
        let t = engine
            .add_token(AddToken {
                name: "HQ".into(),
                token_text: token,
                description: String::new(),
                categories: vec![],
                apple_account: "vpp@example.com".into(),
                program: Program::Business,
            })
            .await
            .unwrap();
        engine.sync(t.id, SyncKind::Full, "added").await.unwrap();
        let store = db.store.clone();
        assert!(store.subscription_management(t.id).await.unwrap().is_none());
        // Seats cannot be managed before the administrator enables subscriptions.
        let err = engine
            .change_seats(
                t.id,
                901,
                &["u1".into()],
                SeatChange::Assign { renewing: true },
            )
            .await
            .unwrap_err();
        assert!(matches!(err, SubscriptionError::NotEnabled(_)), "{err}");

        // Enabled: Apple now sells seats into the location.
        assert_eq!(engine.enable_subscriptions(t.id).await.unwrap(), 0);
        for (renewing, count) in [(true, 3), (false, 2)] {
            let (status, body) = control(
                &sim,
                &format!("locations/{UID}/purchase"),
                json!({ "adamId": "901", "productType": "Subscription", "parentAdamId": 900,
                        "count": count, "renewing": renewing, "periodEndDate": "2027-01-31" }),
            )
            .await;
            assert_eq!(status, 204, "{body}");
        }
        engine
            .sync(t.id, SyncKind::Delta, "schedule")
            .await
            .unwrap();
        let subs = store.subscriptions(Some(t.id)).await.unwrap();
        assert_eq!(subs.len(), 1);
        let s = &subs[0];
        assert_eq!(
            (
                s.parent_adam_id,
                s.adam_id,
                s.status.as_str(),
                s.period_end.as_deref()
            ),
            (900, 901, "ACTIVE", Some("2027-01-31"))
        );
        assert_eq!(
            (
                s.total_renewing,
                s.total_expiring,
                s.available_renewing,
                s.available_expiring
            ),
            (3, 2, 3, 2)
        );

        // Two renewing seats and one that ends with the period.
        engine
            .change_seats(
                t.id,
                901,
                &["u1".into(), "u2".into()],
                SeatChange::Assign { renewing: true },
            )
            .await
            .unwrap();
        engine
            .change_seats(
                t.id,
                901,
                &["u3".into()],
                SeatChange::Assign { renewing: false },
            )
            .await
            .unwrap();
        let seats = until("three seats", async || {
            let s = store.subscription_seats(t.id, 901).await.unwrap();
            let c = store.subscriptions(Some(t.id)).await.unwrap();
            (s.len() == 3 && c[0].assigned_renewing == 2 && c[0].assigned_expiring == 1)
                .then_some(s)
        })
        .await;
        assert_eq!(
            seats
                .iter()
                .map(|s| (s.client_user_id.as_str(), s.renewing))
                .collect::<Vec<_>>(),
            vec![("u1", true), ("u2", true), ("u3", false)]
        );
        // A user Apple does not know: refused at once, in Apple's words.
        let err = engine
            .change_seats(
                t.id,
                901,
                &["stranger".into()],
                SeatChange::Assign { renewing: true },
            )
            .await
            .unwrap_err();
        assert!(err.to_string().contains("9814"), "{err}");

        // u2 keeps the seat until the period ends; u1's goes now.
        engine
            .change_seats(
                t.id,
                901,
                &["u2".into()],
                SeatChange::Remove { deferred: true },
            )
            .await
            .unwrap();
        engine
            .change_seats(
                t.id,
                901,
                &["u1".into()],
                SeatChange::Remove { deferred: false },
            )
            .await
            .unwrap();
        until("u2 leaving, u1 gone", async || {
            let s = store.subscription_seats(t.id, 901).await.unwrap();
            (s.len() == 2 && s.iter().any(|x| x.client_user_id == "u2" && x.leaving)).then_some(())
        })
        .await;
        // A later full read keeps what we know and Apple does not list: u2 is leaving.
        engine.sync(t.id, SyncKind::Full, "manual").await.unwrap();
        let s = store.subscription_seats(t.id, 901).await.unwrap();
        assert!(
            s.iter().any(|x| x.client_user_id == "u2" && x.leaving),
            "{s:?}"
        );

        // The period ends: the expiring seat (u3) and u2 go; three renewing seats stay, all free.
        let (status, _) = control(
            &sim,
            &format!("locations/{UID}/subscriptions/901/end-period"),
            json!({}),
        )
        .await;
        assert_eq!(status, 200);
        engine
            .sync(t.id, SyncKind::Delta, "schedule")
            .await
            .unwrap();
        assert!(store
            .subscription_seats(t.id, 901)
            .await
            .unwrap()
            .is_empty());
        let s = &store.subscriptions(Some(t.id)).await.unwrap()[0];
        assert_eq!(
            (
                s.total_renewing,
                s.total_expiring,
                s.available_renewing,
                s.period_end.as_deref()
            ),
            (3, 0, 3, Some("2027-02-28"))
        );
    }
}
