//! Plans from real store contents, on SQLite and PostgreSQL.

use allot_deploy::{plan_deployment, Action, PlanRequest};
use allot_domain::{Claim, OnShortage, Program};
use allot_store::testing::TestDb;
use allot_store::*;

async fn token(s: &Store, name: &str, uid: &str) -> TokenRow {
    s.insert_token(
        &NewToken {
            name: name.into(),
            description: String::new(),
            categories: vec![],
            apple_account: String::new(),
            program: Program::Education,
            uid: uid.into(),
            org_name: "Org".into(),
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
    .unwrap()
}

fn asset(adam: &str, kind: &str, device: bool, total: i64, assigned: i64) -> AssetRow {
    AssetRow {
        adam_id: adam.into(),
        pricing: "STDQ".into(),
        product_type: kind.into(),
        total,
        assigned,
        available: total - assigned,
        retired: 0,
        device_assignable: device,
        revocable: kind == "App",
        unlimited: false,
        platforms: vec!["iOS".into()],
    }
}

struct World {
    a: TokenRow,
    b: TokenRow,
    devices: CollectionRow,
    users: CollectionRow,
}

/// Token A: app 1 (device-assignable, 2 free), app 2 (user-only, 10 free), book 3.
/// Token B: app 1 with 3 free. Five iPads, three with a user; one already holds app 1.
async fn world(s: &Store) -> World {
    let a = token(s, "A", "1").await;
    let b = token(s, "B", "2").await;
    s.upsert_assets(
        a.id,
        &[
            asset("1", "App", true, 3, 1),
            asset("2", "App", false, 10, 0),
            asset("3", "Book", false, 5, 0),
        ],
        1,
        0,
    )
    .await
    .unwrap();
    s.upsert_assets(b.id, &[asset("1", "App", true, 3, 0)], 1, 0)
        .await
        .unwrap();
    let devices = s
        .insert_collection("iPads", "devices", "", 0)
        .await
        .unwrap();
    let users = s
        .insert_collection("Teachers", "users", "", 0)
        .await
        .unwrap();
    let mut people = Vec::new();
    for i in 0..3 {
        people.push(
            s.insert_person(
                &NewPerson {
                    name: format!("P{i}"),
                    email: Some(format!("p{i}@x.example")),
                    managed_apple_id: None,
                    department: None,
                },
                &format!("cu-{i}"),
                0,
            )
            .await
            .unwrap(),
        );
    }
    let mut ids = Vec::new();
    for i in 0..5 {
        let primary = people.get(i).map(|p| p.id);
        let (d, _) = s
            .upsert_device(
                &NewDevice {
                    serial_number: format!("S{i}"),
                    enrollment_id: None,
                    platform: "iPadOS".into(),
                    model: String::new(),
                    name: String::new(),
                    primary_person_id: primary,
                    os_version: None,
                },
                0,
            )
            .await
            .unwrap();
        ids.push(d.id);
    }
    s.add_collection_members(devices.id, &ids).await.unwrap();
    s.add_collection_members(users.id, &people.iter().map(|p| p.id).collect::<Vec<_>>())
        .await
        .unwrap();
    s.upsert_assignments(
        a.id,
        &[AssignmentRow {
            adam_id: "1".into(),
            pricing: "STDQ".into(),
            holder: Holder::Device("S0".into()),
        }],
        1,
    )
    .await
    .unwrap();
    World {
        a,
        b,
        devices,
        users,
    }
}

fn req(
    adam: &str,
    tokens: Vec<TokenRow>,
    collection: &CollectionRow,
    action: Action,
    on_shortage: OnShortage,
) -> PlanRequest {
    PlanRequest {
        adam_id: adam.into(),
        pricing: "STDQ".into(),
        tokens,
        collection: collection.clone(),
        action,
        on_shortage,
    }
}

#[tokio::test]
async fn plans_follow_the_license_rule_and_the_token_order() {
    for db in TestDb::both().await {
        let s = &db.store;
        let w = world(s).await;
        // Device-assignable app to devices: device licenses; S0 has one; 2 free on A then 3 on B.
        let p = plan_deployment(
            s,
            &req(
                "1",
                vec![w.a.clone(), w.b.clone()],
                &w.devices,
                Action::Required,
                OnShortage::Fail,
            ),
        )
        .await
        .unwrap();
        assert_eq!(
            (
                p.license_type.as_str(),
                p.targets,
                p.already_licensed,
                p.needed,
                p.claims
            ),
            ("device", 5, 1, 4, 4),
            "{}",
            db.backend()
        );
        assert_eq!((p.tokens[0].claims, p.tokens[1].claims), (2, 2));
        // Only token A: 2 claims; the other 2 wait or fail.
        let p = plan_deployment(
            s,
            &req(
                "1",
                vec![w.a.clone()],
                &w.devices,
                Action::Required,
                OnShortage::Wait,
            ),
        )
        .await
        .unwrap();
        assert_eq!((p.claims, p.waiting, p.failing), (2, 2, 0));
        assert!(
            p.summary.contains("needs 4 licenses; 2 free on A")
                && p.summary.contains("2 targets will wait"),
            "{}",
            p.summary
        );
        let p = plan_deployment(
            s,
            &req(
                "1",
                vec![w.a.clone()],
                &w.devices,
                Action::Required,
                OnShortage::Fail,
            ),
        )
        .await
        .unwrap();
        assert_eq!((p.claims, p.failing), (2, 2));
        // User-only app to devices: the primary user's license; two iPads have no user.
        let p = plan_deployment(
            s,
            &req("2", vec![], &w.devices, Action::Required, OnShortage::Fail),
        )
        .await
        .unwrap();
        assert_eq!(
            (p.license_type.as_str(), p.claims, p.needs_user),
            ("user", 3, 2)
        );
        assert_eq!(p.needs_user_targets, vec!["S3", "S4"]);
        // A book is user-licensed even to devices; to users, every user.
        let p = plan_deployment(
            s,
            &req("3", vec![], &w.devices, Action::Required, OnShortage::Fail),
        )
        .await
        .unwrap();
        assert_eq!(
            (p.license_type.as_str(), p.claims, p.needs_user),
            ("user", 3, 2)
        );
        let p = plan_deployment(
            s,
            &req("1", vec![], &w.users, Action::Required, OnShortage::Fail),
        )
        .await
        .unwrap();
        assert_eq!(
            (p.license_type.as_str(), p.targets, p.claims),
            ("user", 3, 3),
            "device-assignable app to users: user licenses"
        );
        assert_eq!(p.tokens.len(), 2, "every token holding the app, by name");
        // Uninstall: what comes back.
        let p = plan_deployment(
            s,
            &req(
                "1",
                vec![w.a.clone()],
                &w.devices,
                Action::Uninstall,
                OnShortage::Fail,
            ),
        )
        .await
        .unwrap();
        assert_eq!((p.reclaims, p.claims), (1, 0));
    }
}

#[tokio::test]
async fn plans_refuse_what_cannot_be() {
    let db = TestDb::sqlite().await;
    let s = &db.store;
    let w = world(s).await;
    let err = plan_deployment(
        s,
        &req(
            "999",
            vec![],
            &w.devices,
            Action::Required,
            OnShortage::Fail,
        ),
    )
    .await
    .unwrap_err();
    assert!(
        err.to_string().contains("no usable token holds app 999"),
        "{err}"
    );
    // A token another MDM holds is never drawn from, and refused when named.
    s.set_claim(w.b.id, Claim::OtherMdm, None, 0).await.unwrap();
    let p = plan_deployment(
        s,
        &req("1", vec![], &w.devices, Action::Required, OnShortage::Fail),
    )
    .await
    .unwrap();
    assert_eq!(
        p.tokens
            .iter()
            .map(|t| t.token.as_str())
            .collect::<Vec<_>>(),
        vec!["A"]
    );
    let b = s.token(w.b.id).await.unwrap().unwrap();
    let err = plan_deployment(
        s,
        &req("1", vec![b], &w.devices, Action::Required, OnShortage::Fail),
    )
    .await
    .unwrap_err();
    assert!(err.to_string().contains("managed by another MDM"), "{err}");
    s.set_claim(w.b.id, Claim::Ours, None, 0).await.unwrap();
    s.set_auth_error(w.b.id, Some(9625), 0).await.unwrap();
    let b = s.token(w.b.id).await.unwrap().unwrap();
    assert!(plan_deployment(
        s,
        &req("1", vec![b], &w.devices, Action::Required, OnShortage::Fail)
    )
    .await
    .unwrap_err()
    .to_string()
    .contains("revoked"));
    let err = plan_deployment(
        s,
        &req(
            "2",
            vec![w.b.clone()],
            &w.devices,
            Action::Required,
            OnShortage::Fail,
        ),
    )
    .await
    .unwrap_err();
    assert!(
        err.to_string()
            .contains("token \"B\" holds no licenses of app 2"),
        "{err}"
    );
    let err = plan_deployment(
        s,
        &req("3", vec![], &w.users, Action::Uninstall, OnShortage::Fail),
    )
    .await
    .unwrap_err();
    assert!(
        err.to_string()
            .contains("book licenses cannot be taken back"),
        "{err}"
    );
    // Unenrolled devices and removed people are not targets.
    let (d, _) = s
        .upsert_device(
            &NewDevice {
                serial_number: "S9".into(),
                platform: "iOS".into(),
                ..Default::default()
            },
            0,
        )
        .await
        .unwrap();
    s.add_collection_members(w.devices.id, &[d.id])
        .await
        .unwrap();
    s.set_device_unenrolled(d.id, 1).await.unwrap();
    let p = plan_deployment(
        s,
        &req("1", vec![], &w.devices, Action::Required, OnShortage::Fail),
    )
    .await
    .unwrap();
    assert_eq!(p.targets, 5);
}
