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

/// A deployment of the set-up's app from token `t` to a new devices collection, made at 5.
async fn deployment(s: &Store, t: i64, action: &str) -> DeploymentRow {
    let c = s.insert_collection("C", "devices", "", 0).await.unwrap();
    s.insert_deployment(
        &NewDeployment {
            adam_id: "1".into(),
            pricing: "STDQ".into(),
            token_ids: vec![t],
            collection_id: c.id,
            action: action.into(),
            on_shortage: "fail".into(),
            ..Default::default()
        },
        5,
    )
    .await
    .unwrap()
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
        let d = deployment(s, t, "required").await;
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

/// Releases of one event end together: the targets still releasing take their state, the
/// assignments Apple let go are removed with the counts moved by as many — and a target another
/// step finished already is left as it is, its assignment kept.
#[tokio::test]
async fn releases_end_together_and_once() {
    for db in TestDb::both().await {
        let s = &db.store;
        let b = db.backend();
        let t = setup(s).await;
        let d = deployment(s, t, "revoke").await;
        let members: Vec<(i64, String)> = (1..=3).map(|i| (i, format!("S{i}"))).collect();
        s.add_targets(d.id, &members, 6).await.unwrap();
        let held = |serial: &str| AssignmentRow {
            adam_id: "1".into(),
            pricing: "STDQ".into(),
            holder: Holder::Device(serial.into()),
        };
        let mut items = Vec::new();
        for mut target in s.targets(d.id).await.unwrap() {
            assert!(s.add_assignment(t, &held(&target.label), 1).await.unwrap());
            target.status = "license_releasing".into();
            target.license = Some("device".into());
            target.holder = Some(target.label.clone());
            s.update_target(&target, 7).await.unwrap();
            target.status = "license_reclaimed".into();
            target.detail = Some("given back".into());
            let released = held(&target.label);
            items.push((target, Some(released)));
        }
        // S3 was finished by another step meanwhile (Apple refused: it keeps its license).
        let mut other = items[2].0.clone();
        other.status = "failed".into();
        assert!(s.finish_release(t, &other, None, 8).await.unwrap());
        let before = s.assets(t).await.unwrap()[0].clone();
        assert_eq!(s.finish_releases(t, &items, 9).await.unwrap(), 2, "{b}");
        assert_eq!(
            s.finish_releases(t, &items, 9).await.unwrap(),
            0,
            "{b}: once"
        );
        let after = s.assets(t).await.unwrap()[0].clone();
        assert_eq!(
            (after.assigned, after.available),
            (before.assigned - 2, before.available + 2),
            "{b}: counts moved by the two released"
        );
        let statuses: Vec<(String, String)> = s
            .targets(d.id)
            .await
            .unwrap()
            .into_iter()
            .map(|t| (t.label, t.status))
            .collect();
        assert_eq!(
            statuses,
            [
                ("S1".to_owned(), "license_reclaimed".to_owned()),
                ("S2".to_owned(), "license_reclaimed".to_owned()),
                ("S3".to_owned(), "failed".to_owned())
            ],
            "{b}"
        );
        assert!(s.licenses_held("device", "S1").await.unwrap().is_empty());
        assert_eq!(
            s.licenses_held("device", "S3").await.unwrap(),
            vec![(t, held("S3"))],
            "{b}: the finished one kept its license"
        );
    }
}

#[tokio::test]
async fn targets_move_through_users_releases_reenrolment_and_departures() {
    for db in TestDb::both().await {
        let s = &db.store;
        let b = db.backend();
        let t = setup(s).await;
        let ann = s
            .insert_person(
                &NewPerson {
                    name: "Ann".into(),
                    email: Some("ann@x.example".into()),
                    managed_apple_id: None,
                    department: None,
                },
                "cuid-ann",
                0,
            )
            .await
            .unwrap();
        for (serial, udid) in [("A1", "U-A1"), ("A2", "U-A2")] {
            s.upsert_device(
                &NewDevice {
                    serial_number: serial.into(),
                    enrollment_id: Some(udid.into()),
                    platform: "iOS".into(),
                    primary_person_id: Some(ann.id),
                    ..Default::default()
                },
                0,
            )
            .await
            .unwrap();
        }
        let staff = s.insert_collection("Staff", "users", "", 0).await.unwrap();
        s.add_collection_members(staff.id, &[ann.id]).await.unwrap();
        assert_eq!(
            s.collection(None, Some("Staff"))
                .await
                .unwrap()
                .unwrap()
                .members,
            1
        );
        assert_eq!(
            s.collection(Some(staff.id), None)
                .await
                .unwrap()
                .unwrap()
                .name,
            "Staff"
        );
        let d = s
            .insert_deployment(
                &NewDeployment {
                    adam_id: "1".into(),
                    pricing: "STDQ".into(),
                    token_ids: vec![t],
                    collection_id: staff.id,
                    action: "required".into(),
                    on_shortage: "fail".into(),
                    ..Default::default()
                },
                0,
            )
            .await
            .unwrap();
        assert_eq!(
            s.sync_targets(d.id, staff.id, "users", "keep", 1)
                .await
                .unwrap(),
            1
        );
        let page = s
            .member_targets_page(d.id, "users", &["pending"], 0, 10)
            .await
            .unwrap();
        assert_eq!(page.len(), 1, "{b}");
        assert_eq!(page[0].target.label, "ann@x.example");
        assert_eq!(page[0].install_ids, vec!["U-A1", "U-A2"], "{b}");
        assert_eq!(page[0].person.as_ref().unwrap().client_user_id, "cuid-ann");
        assert!(page[0].active);

        // Sent to both devices; the second one enrolls again, so it goes back to be resent.
        let mut target = s
            .target_by_label(d.id, "ann@x.example")
            .await
            .unwrap()
            .unwrap();
        target.status = "install_sent".into();
        target.license = Some("user".into());
        target.holder = Some("cuid-ann".into());
        target.enrollment_id = Some("U-A1,U-A2".into());
        target.command_uuid = Some("c1".into());
        s.update_target(&target, 2).await.unwrap();
        assert_eq!(
            s.resend_to_enrollment("U-A", 3).await.unwrap(),
            0,
            "{b}: ids match whole"
        );
        assert_eq!(s.resend_to_enrollment("U-A2", 3).await.unwrap(), 1, "{b}");
        let again = s
            .target_by_label(d.id, "ann@x.example")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            (again.status.as_str(), again.command_uuid),
            ("license_assigned", None)
        );

        // A release ends with the assignment gone and the counts moved, once.
        let a = AssignmentRow {
            adam_id: "1".into(),
            pricing: "STDQ".into(),
            holder: Holder::User("cuid-ann".into()),
        };
        assert!(s.add_assignment(t, &a, 1).await.unwrap());
        assert_eq!(
            s.licenses_held("user", "cuid-ann").await.unwrap(),
            vec![(t, a.clone())]
        );
        target.status = "license_releasing".into();
        s.update_target(&target, 4).await.unwrap();
        assert!(!s.delete_deployment(d.id).await.unwrap(), "{b}: in flight");
        target.status = "license_reclaimed".into();
        assert!(s.finish_release(t, &target, Some(&a), 5).await.unwrap());
        assert!(
            !s.finish_release(t, &target, Some(&a), 5).await.unwrap(),
            "{b}: once"
        );
        let asset = &s.assets(t).await.unwrap()[0];
        assert_eq!((asset.assigned, asset.available), (2, 5), "{b}");
        assert!(s
            .licenses_held("user", "cuid-ann")
            .await
            .unwrap()
            .is_empty());

        // Departures: people gone before the cut-off, once.
        assert!(s.remove_person(ann.id, 10).await.unwrap());
        assert!(s.people_to_reclaim(5, 10).await.unwrap().is_empty());
        let gone = s.people_to_reclaim(10, 10).await.unwrap();
        assert_eq!(gone.len(), 1);
        s.mark_person_reclaimed(&gone[0], 11).await.unwrap();
        assert!(s.people_to_reclaim(20, 10).await.unwrap().is_empty(), "{b}");

        // One instance steps the deployment at a time; a dead one's lease runs out.
        assert!(s.try_lease_deployment(d.id, "a", 100, 200).await.unwrap());
        assert!(
            !s.try_lease_deployment(d.id, "b", 150, 250).await.unwrap(),
            "{b}"
        );
        assert!(
            s.try_lease_deployment(d.id, "b", 201, 300).await.unwrap(),
            "{b}: ran out"
        );
        s.release_deployment_lease(d.id, "a").await.unwrap();
        assert!(
            !s.try_lease_deployment(d.id, "a", 202, 300).await.unwrap(),
            "{b}: not a's to release"
        );
        s.release_deployment_lease(d.id, "b").await.unwrap();
        assert!(s.try_lease_deployment(d.id, "a", 203, 300).await.unwrap());

        // Moving every target of one status, then deleting the deployment.
        target.status = "pending".into();
        s.update_target(&target, 12).await.unwrap();
        assert_eq!(
            s.move_targets(d.id, "pending", "available", "offered", 13)
                .await
                .unwrap(),
            1
        );
        assert_eq!(
            s.target_counts(d.id).await.unwrap(),
            vec![("available".to_owned(), 1)]
        );
        assert!(s.delete_deployment(d.id).await.unwrap(), "{b}");
        assert!(s.deployment(d.id).await.unwrap().is_none());
        assert!(s.targets(d.id).await.unwrap().is_empty());
    }
}

/// One owner per content and target: an Uninstall supersedes an older Required on shared
/// members and hands them back when it goes; devices that cannot run the app are marked.
#[tokio::test]
async fn superseded_and_incompatible_targets() {
    for db in TestDb::both().await {
        let s = &db.store;
        let t = setup(s).await;
        let mut ids = Vec::new();
        for (serial, platform) in [("S1", "iPadOS"), ("S2", "macOS")] {
            let (dv, _) = s
                .upsert_device(
                    &NewDevice {
                        serial_number: serial.into(),
                        enrollment_id: None,
                        platform: platform.into(),
                        model: String::new(),
                        name: String::new(),
                        primary_person_id: None,
                        os_version: None,
                    },
                    0,
                )
                .await
                .unwrap();
            ids.push((dv.id, serial.to_owned()));
        }
        let c = s.insert_collection("C", "devices", "", 0).await.unwrap();
        let deploy = |action: &'static str| NewDeployment {
            adam_id: "1".into(),
            pricing: "STDQ".into(),
            token_ids: vec![t],
            collection_id: c.id,
            action: action.into(),
            on_shortage: "fail".into(),
            ..Default::default()
        };
        let required = s.insert_deployment(&deploy("required"), 1).await.unwrap();
        s.add_targets(required.id, &ids, 1).await.unwrap();
        assert_eq!(s.supersede_targets(required.id, 2).await.unwrap(), (0, 0));
        // The macOS device cannot run an iOS-only app.
        assert_eq!(
            s.mark_incompatible(required.id, Some(&["iOS", "iPadOS"]), None, 2)
                .await
                .unwrap(),
            (1, 0)
        );
        let status = |rows: Vec<TargetRow>, label: &str| {
            rows.into_iter().find(|r| r.label == label).unwrap()
        };
        let mac = status(s.targets(required.id).await.unwrap(), "S2");
        assert_eq!(mac.status, "not_compatible");
        assert!(mac.detail.unwrap().contains("macOS"));
        assert_eq!(
            s.mark_incompatible(required.id, Some(&["iOS", "iPadOS", "macOS"]), None, 3)
                .await
                .unwrap(),
            (0, 1),
            "compatible again: back to pending"
        );
        let uninstall = s.insert_deployment(&deploy("uninstall"), 4).await.unwrap();
        s.add_targets(uninstall.id, &ids, 4).await.unwrap();
        assert_eq!(
            s.supersede_targets(uninstall.id, 5).await.unwrap(),
            (0, 0),
            "it owns them"
        );
        assert_eq!(s.supersede_targets(required.id, 5).await.unwrap(), (2, 0));
        let ipad = status(s.targets(required.id).await.unwrap(), "S1");
        assert_eq!(
            (ipad.status.as_str(), ipad.superseded_by),
            ("superseded", Some(uninstall.id))
        );
        assert!(s.delete_deployment(uninstall.id).await.unwrap());
        assert_eq!(s.supersede_targets(required.id, 6).await.unwrap(), (0, 2));
        assert_eq!(
            status(s.targets(required.id).await.unwrap(), "S1").status,
            "pending"
        );
    }
}

/// A device on an OS older than the app's minimum is marked, in words, and comes back when it
/// says a newer version; a device whose version is unknown, or whose platform the minimum does not
/// speak of, is left alone.
#[tokio::test]
async fn devices_below_the_minimum_os_are_not_compatible() {
    for db in TestDb::both().await {
        let s = &db.store;
        let t = setup(s).await;
        let mut ids = Vec::new();
        for (serial, platform, os) in [
            ("OLD", "iPadOS", Some("16.7.2")),
            ("NEW", "iOS", Some("17.10")),
            ("UNKNOWN", "iOS", None),
            ("MAC", "macOS", Some("12.0")),
        ] {
            let (dv, _) = s
                .upsert_device(
                    &NewDevice {
                        serial_number: serial.into(),
                        enrollment_id: None,
                        platform: platform.into(),
                        model: String::new(),
                        name: String::new(),
                        primary_person_id: None,
                        os_version: os.map(str::to_owned),
                    },
                    0,
                )
                .await
                .unwrap();
            ids.push((dv.id, serial.to_owned()));
        }
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
                    ..Default::default()
                },
                1,
            )
            .await
            .unwrap();
        s.add_targets(d.id, &ids, 1).await.unwrap();
        let min = allot_domain::compat::MinimumOs::of(false, Some("iosSoftware"), Some("17.2"));
        let platforms: &[&str] = &["iOS", "iPadOS", "macOS"];
        assert_eq!(
            s.mark_incompatible(d.id, Some(platforms), min.as_ref(), 2)
                .await
                .unwrap(),
            (1, 0)
        );
        let find = |rows: Vec<TargetRow>, label: &str| {
            rows.into_iter().find(|r| r.label == label).unwrap()
        };
        let old = find(s.targets(d.id).await.unwrap(), "OLD");
        assert_eq!(old.status, "not_compatible");
        assert_eq!(
            old.detail.as_deref(),
            Some("the app needs iOS 17.2 or later and this device runs iPadOS 16.7.2: no license is spent on it")
        );
        for label in ["NEW", "UNKNOWN", "MAC"] {
            assert_eq!(
                find(s.targets(d.id).await.unwrap(), label).status,
                "pending",
                "{label}"
            );
        }
        // Marking again changes nothing; the device updates and is compatible again.
        assert_eq!(
            s.mark_incompatible(d.id, Some(platforms), min.as_ref(), 3)
                .await
                .unwrap(),
            (0, 0)
        );
        s.record_device_info(ids[0].0, Some("17.3"), None, 4)
            .await
            .unwrap();
        assert_eq!(
            s.mark_incompatible(d.id, Some(platforms), min.as_ref(), 5)
                .await
                .unwrap(),
            (0, 1)
        );
        // Without platforms from Apple, the minimum alone still applies.
        s.record_device_info(ids[1].0, Some("15.0"), None, 6)
            .await
            .unwrap();
        assert_eq!(
            s.mark_incompatible(d.id, None, min.as_ref(), 7)
                .await
                .unwrap(),
            (1, 0)
        );
        // What deployments want for one device, for its page.
        let wanted = s.targets_of_member("devices", ids[1].0).await.unwrap();
        assert_eq!(wanted.len(), 1);
        assert_eq!(
            (wanted[0].0, wanted[0].1.as_str(), wanted[0].3.as_str()),
            (d.id, "required", "not_compatible")
        );
        assert!(s
            .targets_of_member("users", ids[1].0)
            .await
            .unwrap()
            .is_empty());
    }
}

/// People by their standing with Apple: accepted (Associated), invited (Registered), or not known
/// to any location yet.
#[tokio::test]
async fn people_by_vpp_terms_status() {
    for db in TestDb::both().await {
        let s = &db.store;
        let t = setup(s).await;
        for (name, cuid) in [("Ann", "cu-ann"), ("Ben", "cu-ben"), ("Cat", "cu-cat")] {
            s.insert_person(
                &NewPerson {
                    name: name.into(),
                    email: None,
                    managed_apple_id: None,
                    department: None,
                },
                cuid,
                1,
            )
            .await
            .unwrap();
        }
        let user = |cuid: &str, status: &str| UserRow {
            client_user_id: cuid.into(),
            status: status.into(),
            email: None,
            invite_code: None,
            id_hash: None,
        };
        s.upsert_users(
            t,
            &[user("cu-ann", "Associated"), user("cu-ben", "Registered")],
            0,
        )
        .await
        .unwrap();
        let names = |rows: Vec<PersonRow>| rows.into_iter().map(|p| p.name).collect::<Vec<_>>();
        for (status, want) in [
            (Some("Associated"), vec!["Ann"]),
            (Some("Registered"), vec!["Ben"]),
            (Some("none"), vec!["Cat"]),
            (Some("Retired"), vec![]),
            (None, vec!["Ann", "Ben", "Cat"]),
        ] {
            let (rows, total) = s.people(None, status, 10, 0).await.unwrap();
            assert_eq!(total as usize, want.len(), "{status:?}");
            assert_eq!(names(rows), want, "{status:?}");
        }
    }
}
