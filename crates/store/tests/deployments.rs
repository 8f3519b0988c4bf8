//! Deployment storage and the reservation that keeps racing claims from over-assigning, on both
//! backends.

use allot_domain::{Claim, Program};
use allot_store::testing::TestDb;
use allot_store::*;

async fn setup(s: &Store) -> i64 {
    let t = s
        .insert_token(
            &NewToken {
                name: "A".into(),
                description: String::new(),
                categories: vec![],
                apple_account: String::new(),
                program: Program::Business,
                uid: "1".into(),
                org_name: "O".into(),
                location_name: String::new(),
                country: String::new(),
                secret: vec![0],
                notification_secret: None,
                expires_at: i64::MAX,
                claim: Claim::Ours,
                other_mdm: None,
            },
            0,
        )
        .await
        .unwrap();
    let asset = AssetRow {
        adam_id: "1".into(),
        pricing: "STDQ".into(),
        product_type: "App".into(),
        total: 7,
        assigned: 2,
        available: 5,
        retired: 0,
        device_assignable: true,
        revocable: true,
        unlimited: false,
        platforms: vec![],
    };
    s.upsert_assets(t.id, &[asset], 1, 0).await.unwrap();
    t.id
}

#[tokio::test]
async fn racing_reservations_never_exceed_the_free_licenses() {
    for db in TestDb::both().await {
        let s = db.store.clone();
        let t = setup(&s).await;
        let mut tasks = Vec::new();
        for _ in 0..20 {
            let s = s.clone();
            tasks.push(tokio::spawn(async move {
                s.reserve_licenses(t, "1", "STDQ", 1).await.unwrap()
            }));
        }
        let mut won = 0;
        for task in tasks {
            won += usize::from(task.await.unwrap());
        }
        assert_eq!(won, 5, "{}", db.backend());
        assert_eq!(s.claimable(t, "1", "STDQ").await.unwrap(), 0);
        assert!(!s.reserve_licenses(t, "1", "STDQ", 1).await.unwrap());
        s.release_licenses(t, "1", "STDQ", 2).await.unwrap();
        assert_eq!(s.claimable(t, "1", "STDQ").await.unwrap(), 2);
        assert!(
            !s.reserve_licenses(t, "1", "STDQ", 3).await.unwrap(),
            "all or nothing"
        );
        s.release_licenses(t, "1", "STDQ", 99).await.unwrap();
        assert_eq!(
            s.claimable(t, "1", "STDQ").await.unwrap(),
            5,
            "never below zero reserved"
        );
        assert_eq!(s.claimable(t, "9", "STDQ").await.unwrap(), 0);
    }
}

#[tokio::test]
async fn deployments_and_their_targets() {
    for db in TestDb::both().await {
        let s = &db.store;
        let t = setup(s).await;
        let c = s.insert_collection("C", "devices", "", 0).await.unwrap();
        let d = s
            .insert_deployment(
                &NewDeployment {
                    adam_id: "1".into(),
                    pricing: "STDQ".into(),
                    token_ids: vec![t],
                    collection_id: c.id,
                    action: "required".into(),
                    on_shortage: "fail".into(),
                },
                5,
            )
            .await
            .unwrap();
        assert_eq!((d.token_ids.clone(), d.created_at), (vec![t], 5));
        assert_eq!(
            s.add_targets(d.id, &[(1, "S1".into()), (2, "S2".into())], 6)
                .await
                .unwrap(),
            2
        );
        assert_eq!(
            s.add_targets(d.id, &[(2, "S2".into()), (3, "S3".into())], 6)
                .await
                .unwrap(),
            1,
            "{}",
            db.backend()
        );
        let mut target = s.targets(d.id).await.unwrap().remove(0);
        assert_eq!(
            (target.label.as_str(), target.status.as_str()),
            ("S1", "pending")
        );
        target.status = "install_sent".into();
        target.command_uuid = Some("cmd-1".into());
        target.license = Some("device".into());
        s.update_target(&target, 7).await.unwrap();
        assert_eq!(
            s.targets_by_command("cmd-1").await.unwrap(),
            vec![target.clone()]
        );
        // A step that read the target as pending must not overwrite what another step did.
        let mut stale = target.clone();
        stale.status = "failed".into();
        assert!(
            !s.update_target_from(&stale, &["pending", "waiting_for_license"], 8)
                .await
                .unwrap(),
            "{}",
            db.backend()
        );
        assert!(s
            .update_target_from(&stale, &["install_sent"], 8)
            .await
            .unwrap());
        assert_eq!(
            s.targets_by_command("cmd-1").await.unwrap()[0].status,
            "failed"
        );
        assert_eq!(s.deployments().await.unwrap().len(), 1);
        assert_eq!(s.deployment(d.id).await.unwrap().unwrap(), d);
    }
}
