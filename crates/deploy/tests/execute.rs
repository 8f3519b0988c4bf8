//! The executor stepped by hand against the simulator: a crash between reserving and asking Apple
//! is recovered without leaking a reservation or assigning twice.

use std::time::Duration;

use allot_apple_client::{AppleClient, ClientOptions};
use allot_deploy::Executor;
use allot_domain::Program;
use allot_secrets::SecretBox;
use allot_store::testing::TestDb;
use allot_store::{NewDeployment, NewDevice};
use allot_sync::{AddToken, Instance, SyncConfig, SyncEngine, SyncKind};

const SCENARIO: &str = r#"{ "settings": { "eventDelayMs": 0, "tickMs": 5, "limits": { "maxRequestPerSecond": 0 } },
  "organizations": [ { "name": "Acme", "locations": [ { "name": "HQ", "uId": "6000000000000001",
    "assets": [ { "adamId": "777", "totalCount": 3 } ] } ] } ] }"#;

#[tokio::test]
async fn a_crash_after_reserving_is_recovered_without_leaks_or_double_assignment() {
    for db in TestDb::both().await {
        let sim = allot_apple_sim::start_local(SCENARIO).await.unwrap();
        let store = db.store.clone();
        let instance = Instance {
            id: "test".into(),
            name: "Allot".into(),
            version: "test".into(),
            public_url: None,
        };
        let engine = SyncEngine::new(
            store.clone(),
            AppleClient::new(ClientOptions::new(&sim.apple_url())),
            SecretBox::from_base64("AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=").unwrap(),
            instance,
            SyncConfig::default(),
        );
        let token_text = sim.shared.lock().unwrap().current_token[0].clone();
        let t = engine
            .add_token(AddToken {
                name: "HQ".into(),
                token_text,
                description: String::new(),
                categories: vec![],
                apple_account: String::new(),
                program: Program::Business,
            })
            .await
            .unwrap();
        engine.sync(t.id, SyncKind::Full, "added").await.unwrap();
        let (dev, _) = store
            .upsert_device(
                &NewDevice {
                    serial_number: "C9".into(),
                    platform: "iPadOS".into(),
                    ..Default::default()
                },
                0,
            )
            .await
            .unwrap();
        let c = store
            .insert_collection("Crash", "devices", "", 0)
            .await
            .unwrap();
        store.add_collection_members(c.id, &[dev.id]).await.unwrap();
        let d = store
            .insert_deployment(
                &NewDeployment {
                    adam_id: "777".into(),
                    pricing: "STDQ".into(),
                    token_ids: vec![t.id],
                    collection_id: c.id,
                    action: "required".into(),
                    on_shortage: "fail".into(),
                    ..Default::default()
                },
                0,
            )
            .await
            .unwrap();

        // What a crash leaves: the license reserved and the target marked, Apple never asked.
        store
            .add_targets(d.id, &[(dev.id, "C9".into())], 0)
            .await
            .unwrap();
        let mut target = store.targets(d.id).await.unwrap().remove(0);
        target.license = Some("device".into());
        target.holder = Some("C9".into());
        assert!(store
            .reserve_for_targets(t.id, "777", "STDQ", std::slice::from_ref(&target), 0)
            .await
            .unwrap());
        assert_eq!(
            store.claimable(t.id, "777", "STDQ").await.unwrap(),
            2,
            "{}",
            db.backend()
        );

        // The next steps find out Apple has nothing, release, claim again, and finish.
        let executor = Executor::new(engine.clone(), None, Duration::ZERO);
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            executor.run(&d).await.unwrap();
            if store.targets(d.id).await.unwrap()[0].status == "license_assigned" {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "{:?}",
                store.targets(d.id).await.unwrap()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(
            store.claimable(t.id, "777", "STDQ").await.unwrap(),
            2,
            "{}: one license used, no reservation leaked",
            db.backend()
        );
        let state = sim.shared.lock().unwrap().locations[0].assets[0].assigned;
        assert_eq!(state, 1, "Apple assigned exactly one");
        // Further steps change nothing.
        executor.run(&d).await.unwrap();
        assert_eq!(store.claimable(t.id, "777", "STDQ").await.unwrap(), 2);
    }
}
