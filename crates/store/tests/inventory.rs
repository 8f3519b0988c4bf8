//! The inventory contract (people, devices, collections) on SQLite and PostgreSQL.

use allot_domain::MembershipRule;
use allot_store::testing::TestDb;
use allot_store::*;

fn person(name: &str, email: Option<&str>) -> NewPerson {
    NewPerson {
        name: name.into(),
        email: email.map(Into::into),
        managed_apple_id: None,
        department: None,
    }
}

fn device(serial: &str, enrollment: Option<&str>) -> NewDevice {
    NewDevice {
        serial_number: serial.into(),
        enrollment_id: enrollment.map(Into::into),
        platform: "iPadOS".into(),
        model: "iPad13,1".into(),
        name: String::new(),
        primary_person_id: None,
        os_version: None,
    }
}

#[tokio::test]
async fn people_are_unique_by_email_and_kept_when_removed() {
    for db in TestDb::both().await {
        let s = &db.store;
        let a = s
            .insert_person(&person("Ada", Some("ada@example.com")), "cu-1", 1)
            .await
            .unwrap();
        assert_eq!(
            (a.client_user_id.as_str(), a.email.as_deref()),
            ("cu-1", Some("ada@example.com"))
        );
        let dup = s
            .insert_person(&person("Ada 2", Some("ada@example.com")), "cu-2", 1)
            .await;
        assert!(
            matches!(dup, Err(StoreError::Conflict(_))),
            "{}",
            db.backend()
        );
        s.insert_person(&person("Bob", None), "cu-3", 1)
            .await
            .unwrap();
        s.insert_person(&person("Cy", None), "cu-4", 1)
            .await
            .unwrap();
        assert_eq!(
            s.person_by_email("ADA@example.com")
                .await
                .unwrap()
                .unwrap()
                .id,
            a.id,
            "emails match without case"
        );
        let (rows, total) = s.people(Some("ad"), None, 10, 0).await.unwrap();
        assert_eq!((rows.len(), total), (1, 1));
        let (rows, total) = s.people(None, None, 2, 1).await.unwrap();
        assert_eq!((rows[0].name.as_str(), total), ("Bob", 3));
        assert!(s.remove_person(a.id, 5).await.unwrap());
        assert!(!s.remove_person(a.id, 6).await.unwrap());
        assert_eq!(s.person(a.id).await.unwrap().unwrap().removed_at, Some(5));
        s.update_person(a.id, &person("Ada L.", None), 7)
            .await
            .unwrap();
        let back = s.person(a.id).await.unwrap().unwrap();
        assert_eq!(
            (back.name.as_str(), back.removed_at, back.email.as_deref()),
            ("Ada L.", None, Some("ada@example.com"))
        );
    }
}

#[tokio::test]
async fn devices_upsert_by_serial_and_unenroll() {
    for db in TestDb::both().await {
        let s = &db.store;
        let p = s
            .insert_person(&person("Ada", None), "cu-1", 1)
            .await
            .unwrap();
        let (d, new) = s
            .upsert_device(
                &NewDevice {
                    primary_person_id: Some(p.id),
                    ..device("SER1", None)
                },
                1,
            )
            .await
            .unwrap();
        assert!(new && d.enrolled);
        // The MDM reports it (re-)enrolling: the enrollment id arrives, the primary user stays.
        assert!(s.set_device_unenrolled(d.id, 2).await.unwrap());
        let (d2, new) = s
            .upsert_device(
                &NewDevice {
                    name: "Ada's iPad".into(),
                    ..device("SER1", Some("UDID-1"))
                },
                3,
            )
            .await
            .unwrap();
        assert!(!new, "{}", db.backend());
        assert_eq!(
            (
                d2.id,
                d2.enrollment_id.as_deref(),
                d2.primary_person_id,
                d2.enrolled,
                d2.unenrolled_at
            ),
            (d.id, Some("UDID-1"), Some(p.id), true, None)
        );
        assert_eq!(d2.name, "Ada's iPad");
        assert_eq!(
            s.device_by_enrollment("UDID-1").await.unwrap().unwrap().id,
            d.id
        );
        let clash = s.upsert_device(&device("SER2", Some("UDID-1")), 4).await;
        assert!(
            matches!(clash, Err(StoreError::Conflict(_))),
            "an enrollment id belongs to one device"
        );
        s.set_primary_person(d.id, None, 5).await.unwrap();
        assert_eq!(
            s.device(d.id).await.unwrap().unwrap().primary_person_id,
            None
        );
        let (rows, total) = s.devices(Some("ser"), 10, 0).await.unwrap();
        assert_eq!((rows.len(), total), (1, 1));
        // Searched by part of its serial number, name or model, whatever the case, through the
        // trigram index (three characters or more) or a scan (fewer); a renamed device is found
        // by its new name only; quotes and wildcards are plain characters.
        let found = |q: &'static str| async move { s.devices(Some(q), 10, 0).await.unwrap().1 };
        for (q, n) in [
            ("IPAD", 1),
            ("ada's", 1),
            ("r1", 1),
            ("se", 1),
            ("\"ip", 0),
            ("%", 0),
            ("_d", 0),
        ] {
            assert_eq!(found(q).await, n, "{q:?} on {}", db.backend());
        }
        s.upsert_device(
            &NewDevice {
                name: "Grace's Mac".into(),
                ..device("SER1", Some("UDID-1"))
            },
            6,
        )
        .await
        .unwrap();
        assert_eq!(
            (found("ada's").await, found("grace").await),
            (0, 1),
            "{}",
            db.backend()
        );
    }
}

#[tokio::test]
async fn devices_say_their_os_version_and_are_asked_again_when_due() {
    for db in TestDb::both().await {
        let s = &db.store;
        // Enrolled with its OS version: known at once, not due.
        let (d, _) = s
            .upsert_device(
                &NewDevice {
                    os_version: Some("17.4".into()),
                    ..device("OS1", Some("UDID-OS1"))
                },
                1_000,
            )
            .await
            .unwrap();
        assert_eq!(
            (d.os_version.as_deref(), d.info_reported_at),
            (Some("17.4"), Some(1_000))
        );
        // Added by an admin: nothing known, due at once.
        s.upsert_device(&device("OS2", Some("UDID-OS2")), 1_000)
            .await
            .unwrap();
        let due = s.devices_due_for_info(1_000, 0, 10).await.unwrap();
        assert_eq!(
            due.iter().map(|(_, e)| e.as_str()).collect::<Vec<_>>(),
            ["UDID-OS2"]
        );
        // Asked: not asked again while the question is outstanding.
        s.mark_device_queries(&["UDID-OS2".into()], "cmd-1", 1_500)
            .await
            .unwrap();
        assert!(s
            .devices_due_for_info(1_000, 1_000, 10)
            .await
            .unwrap()
            .is_empty());
        assert!(s.is_device_query("cmd-1", "UDID-OS2").await.unwrap());
        // Lost: asked again once `lost_before` passes it.
        assert_eq!(
            s.devices_due_for_info(1_000, 2_000, 10)
                .await
                .unwrap()
                .len(),
            1
        );
        // Answered: recorded, the question closed; an import without a version keeps it.
        let os2 = s.device_by_serial("OS2").await.unwrap().unwrap();
        s.record_device_info(os2.id, Some("18.1"), Some("iPad14,1"), 3_000)
            .await
            .unwrap();
        assert!(!s.is_device_query("cmd-1", "UDID-OS2").await.unwrap());
        s.upsert_device(&device("OS2", None), 4_000).await.unwrap();
        let os2 = s.device_by_serial("OS2").await.unwrap().unwrap();
        assert_eq!(
            (
                os2.os_version.as_deref(),
                os2.model.as_str(),
                os2.info_reported_at
            ),
            (Some("18.1"), "iPad13,1", Some(3_000)),
            "the import's model replaces the reported one; the OS version stays"
        );
        assert!(s
            .devices_due_for_info(3_000, 3_000, 10)
            .await
            .unwrap()
            .iter()
            .all(|(id, _)| *id != os2.id));
    }
}

#[tokio::test]
async fn collections_hold_members_once() {
    for db in TestDb::both().await {
        let s = &db.store;
        let c = s
            .insert_collection("Grade 5 iPads", "devices", "", 1)
            .await
            .unwrap();
        assert!(matches!(
            s.insert_collection("Grade 5 iPads", "devices", "", 1).await,
            Err(StoreError::Conflict(_))
        ));
        assert_eq!(s.add_collection_members(c.id, &[3, 1, 2]).await.unwrap(), 3);
        assert_eq!(
            s.add_collection_members(c.id, &[2, 4]).await.unwrap(),
            1,
            "{}",
            db.backend()
        );
        assert_eq!(s.remove_collection_members(c.id, &[1, 9]).await.unwrap(), 1);
        assert_eq!(s.collection_members(c.id).await.unwrap(), vec![2, 3, 4]);
        assert_eq!(s.collections().await.unwrap()[0].members, 3);
        assert!(s.delete_collection(c.id).await.unwrap());
        assert!(s.collections().await.unwrap().is_empty());
    }
}

#[tokio::test]
async fn rule_based_collections_follow_the_inventory_in_sql() {
    for db in TestDb::both().await {
        let s = &db.store;
        let b = db.backend();
        let mut science = person("Ada Lovelace", Some("ada@school.example"));
        science.department = Some("Science".into());
        let ada = s.insert_person(&science, "cu-1", 1).await.unwrap();
        let bob = s
            .insert_person(&person("Bob", Some("bob@other.example")), "cu-2", 1)
            .await
            .unwrap();
        // A `%` in the domain is matched as itself, not as a wildcard.
        s.insert_person(&person("Cy", Some("cy@school%example")), "cu-3", 1)
            .await
            .unwrap();
        let ipad = |serial: &str, model: &str, os: &str, user: Option<i64>| NewDevice {
            model: model.into(),
            os_version: Some(os.into()),
            primary_person_id: user,
            ..device(serial, None)
        };
        s.upsert_device(&ipad("IPAD1", "iPad Pro", "17.4", Some(ada.id)), 1)
            .await
            .unwrap();
        s.upsert_device(&ipad("IPAD2", "iPad mini", "16.7", Some(bob.id)), 1)
            .await
            .unwrap();
        s.upsert_device(
            &NewDevice {
                platform: "macOS".into(),
                ..ipad("MAC1", "MacBook Air", "15.1", Some(ada.id))
            },
            1,
        )
        .await
        .unwrap();

        let staff = MembershipRule {
            email_domains: vec!["school.example".into()],
            ..Default::default()
        };
        let (n, rows) = s.preview_rule("users", &staff, 10).await.unwrap();
        assert_eq!((n, rows[0].1.as_str()), (1, "Ada Lovelace"), "{b}");
        let staff_c = s
            .insert_collection_with_rule("Staff", "users", "", Some(&staff), 5)
            .await
            .unwrap();
        assert_eq!(
            (staff_c.members, staff_c.rule_evaluated_at),
            (1, Some(5)),
            "{b}: members are written with the collection"
        );

        // Devices whose user is in Staff, on iPadOS 17 or later.
        let rule = MembershipRule {
            platforms: vec!["iPadOS".into()],
            min_os_version: Some("17".into()),
            users_in_collection: Some(staff_c.id),
            ..Default::default()
        };
        let (n, rows) = s.preview_rule("devices", &rule, 10).await.unwrap();
        assert_eq!(n, 1, "{b}");
        assert_eq!(rows[0].1, "IPAD1");
        assert_eq!(rows[0].2, "iPad Pro");
        let ipads = s
            .insert_collection_with_rule("Staff iPads", "devices", "", Some(&rule), 5)
            .await
            .unwrap();
        assert_eq!(ipads.rule.as_ref(), Some(&rule));
        assert_eq!(
            s.collections_reading(staff_c.id).await.unwrap(),
            vec!["Staff iPads".to_string()]
        );

        // The inventory moves: Bob joins the school's domain and updates his iPad to 17.
        s.update_person(
            bob.id,
            &NewPerson {
                email: Some("bob@school.example".into()),
                ..person("Bob", None)
            },
            6,
        )
        .await
        .unwrap();
        s.upsert_device(&ipad("IPAD2", "iPad mini", "17.1", None), 6)
            .await
            .unwrap();
        let changed = s.refresh_rule_collections(7).await.unwrap();
        // Staff gains Bob first (lower id), then Staff iPads gains his iPad in the same pass.
        assert_eq!(changed, vec![(staff_c.id, 1, 0), (ipads.id, 1, 0)], "{b}");
        let (total, members) = s
            .collection_member_page(ipads.id, "devices", 10, 0)
            .await
            .unwrap();
        assert_eq!(total, 2);
        assert_eq!(
            members.iter().map(|m| m.1.as_str()).collect::<Vec<_>>(),
            vec!["IPAD1", "IPAD2"]
        );
        // Nothing moved: nothing changes.
        assert!(s.refresh_rule_collections(8).await.unwrap().is_empty());

        // A narrower rule drops members at once; no rule keeps them, static from now on.
        let pro = MembershipRule {
            model_contains: Some("pro".into()),
            ..Default::default()
        };
        assert_eq!(
            s.set_collection_rule(ipads.id, Some(&pro), 9)
                .await
                .unwrap(),
            (0, 1),
            "{b}"
        );
        s.set_collection_rule(ipads.id, None, 10).await.unwrap();
        let c = s.collection(Some(ipads.id), None).await.unwrap().unwrap();
        assert_eq!((c.rule, c.members), (None, 1));
        assert!(s.refresh_rule_collections(11).await.unwrap().is_empty());

        let by_serial = s
            .devices_by_serials(&["ipad2".into(), "NOPE".into()])
            .await
            .unwrap();
        assert_eq!(by_serial.len(), 1, "{b}");
        assert!(by_serial.contains_key("IPAD2"));

        let science = MembershipRule {
            departments: vec!["science".into()],
            ..Default::default()
        };
        assert_eq!(
            s.preview_rule("users", &science, 10).await.unwrap().0,
            1,
            "{b}"
        );
    }
}

#[tokio::test]
async fn devices_are_imported_in_batches() {
    for db in TestDb::both().await {
        let s = &db.store;
        let b = db.backend();
        let p = s
            .insert_person(
                &NewPerson {
                    name: "Ada".into(),
                    email: Some("ada@example.com".into()),
                    managed_apple_id: None,
                    department: None,
                },
                "c-ada",
                0,
            )
            .await
            .unwrap();
        let found = s
            .people_by_emails(&["ADA@example.com".into(), "ghost@example.com".into()])
            .await
            .unwrap();
        assert_eq!(found.get("ada@example.com"), Some(&p.id), "{b}");
        assert_eq!(found.len(), 1);
        let many: Vec<NewDevice> = (0..1200)
            .map(|i| NewDevice {
                serial_number: format!("B{i:05}"),
                platform: "iOS".into(),
                name: format!("Phone {i}"),
                primary_person_id: (i == 7).then_some(p.id),
                ..Default::default()
            })
            .collect();
        assert_eq!(s.upsert_devices(&many, 1).await.unwrap(), (1200, 0), "{b}");
        // Again, with a new name for one and no user given: the user stays.
        let mut again = many[..3].to_vec();
        again.extend([NewDevice {
            serial_number: "B00007".into(),
            platform: "iOS".into(),
            name: "Renamed".into(),
            ..Default::default()
        }]);
        assert_eq!(s.upsert_devices(&again, 2).await.unwrap(), (0, 4), "{b}");
        let d = s.device_by_serial("B00007").await.unwrap().unwrap();
        assert_eq!(
            (d.name.as_str(), d.primary_person_id),
            ("Renamed", Some(p.id)),
            "{b}"
        );
        assert_eq!(s.devices(None, 1, 0).await.unwrap().1, 1200);
    }
}

#[tokio::test]
async fn people_are_imported_in_batches() {
    for db in TestDb::both().await {
        let s = &db.store;
        let b = db.backend();
        let person = |name: &str, email: Option<&str>, managed: Option<&str>| NewPerson {
            name: name.into(),
            email: email.map(str::to_owned),
            managed_apple_id: managed.map(str::to_owned),
            department: None,
        };
        let many: Vec<(NewPerson, String)> = (0..700)
            .map(|i| {
                (
                    person(&format!("P{i}"), Some(&format!("p{i}@x.example")), None),
                    format!("cuid-{i}"),
                )
            })
            .chain([(person("No Mail", None, None), "cuid-nomail".into())])
            .collect();
        assert_eq!(s.upsert_people(&many, 1).await.unwrap(), (701, 0), "{b}");
        let again = vec![(
            person("P7 Renamed", Some("p7@x.example"), Some("p7@acme.example")),
            "cuid-unused".to_owned(),
        )];
        assert_eq!(s.upsert_people(&again, 2).await.unwrap(), (0, 1), "{b}");
        let p7 = s.person_by_email("p7@x.example").await.unwrap().unwrap();
        assert_eq!(
            (
                p7.name.as_str(),
                p7.client_user_id.as_str(),
                p7.managed_apple_id.as_deref()
            ),
            ("P7 Renamed", "cuid-7", Some("p7@acme.example")),
            "{b}: the clientUserId never changes"
        );
        assert_eq!(s.people(None, None, 1, 0).await.unwrap().1, 701);
    }
}

/// People found by part of a name or e-mail, whatever the case, through the trigram index (three
/// characters or more) or a scan (fewer), alone or with their standing at Apple; renamed people
/// by their new name only; quotes and wildcards are plain characters. A page of people's Apple
/// records is read at once.
#[tokio::test]
async fn people_are_found_by_part_of_name_or_email_and_apple_status() {
    for db in TestDb::both().await {
        let s = &db.store;
        let b = db.backend();
        let t = s
            .insert_token(
                &NewToken {
                    name: "School".into(),
                    description: String::new(),
                    categories: vec![],
                    apple_account: String::new(),
                    program: allot_domain::Program::Education,
                    uid: "1".into(),
                    org_name: "Org".into(),
                    location_name: String::new(),
                    country: String::new(),
                    secret: vec![1],
                    notification_secret: None,
                    expires_at: 1_000,
                    claim: allot_domain::Claim::Ours,
                    other_mdm: None,
                },
                0,
            )
            .await
            .unwrap()
            .id;
        for (name, email, cu) in [
            ("Ada Lovelace", Some("ada@school.example"), "cu-1"),
            ("Grace Hopper", Some("grace@navy.example"), "cu-2"),
            ("Bob \"Quote\" 50%", None, "cu-3"),
            ("adam smith", Some("smith@school.example"), "cu-4"),
        ] {
            s.insert_person(&person(name, email), cu, 1).await.unwrap();
        }
        let user = |cu: &str, status: &str| UserRow {
            client_user_id: cu.into(),
            status: status.into(),
            email: None,
            invite_code: None,
            id_hash: None,
        };
        s.upsert_users(
            t,
            &[user("cu-1", "Associated"), user("cu-4", "Registered")],
            1,
        )
        .await
        .unwrap();
        let found = |q: Option<&'static str>, status: Option<&'static str>| async move {
            let (rows, total) = s.people(q, status, 10, 0).await.unwrap();
            assert_eq!(rows.len() as i64, total, "{b}: {q:?} {status:?}");
            rows.into_iter().map(|p| p.name).collect::<Vec<_>>()
        };
        assert_eq!(
            found(Some("ADA"), None).await,
            ["Ada Lovelace", "adam smith"],
            "{b}: by name, in name order"
        );
        assert_eq!(
            found(Some("school.ex"), None).await,
            ["Ada Lovelace", "adam smith"],
            "{b}: by e-mail"
        );
        assert_eq!(found(Some("navy"), None).await, ["Grace Hopper"]);
        assert_eq!(
            found(Some("ad"), None).await,
            ["Ada Lovelace", "adam smith"],
            "{b}: a scan"
        );
        assert_eq!(
            found(Some("\"quote\""), None).await,
            ["Bob \"Quote\" 50%"],
            "{b}: quotes"
        );
        assert_eq!(found(Some("50%"), None).await, ["Bob \"Quote\" 50%"]);
        assert_eq!(
            found(Some("%"), None).await.len(),
            1,
            "{b}: % is a character"
        );
        assert_eq!(
            found(Some("lovelace hopper"), None).await,
            Vec::<String>::new()
        );
        assert_eq!(
            found(Some("ada"), Some("Registered")).await,
            ["adam smith"],
            "{b}: search and status"
        );
        assert_eq!(found(None, Some("Associated")).await, ["Ada Lovelace"]);
        assert_eq!(
            found(Some("o"), Some("none")).await,
            ["Bob \"Quote\" 50%", "Grace Hopper"],
            "{b}: no record"
        );
        assert_eq!(found(None, None).await.len(), 4);
        let ada = s
            .people(Some("lovelace"), None, 1, 0)
            .await
            .unwrap()
            .0
            .remove(0);
        s.update_person(ada.id, &person("Ada King", Some("ada@school.example")), 2)
            .await
            .unwrap();
        assert_eq!(
            (
                found(Some("lovelace"), None).await.len(),
                found(Some("king"), None).await.len()
            ),
            (0, 1),
            "{b}: renamed"
        );
        let records: Vec<_> = s
            .apple_user_records_of(&["cu-4".into(), "cu-2".into(), "cu-1".into()])
            .await
            .unwrap()
            .into_iter()
            .map(|(token, u)| (token, u.client_user_id, u.status))
            .collect();
        assert_eq!(
            records,
            [
                (t, "cu-1".to_owned(), "Associated".to_owned()),
                (t, "cu-4".to_owned(), "Registered".to_owned())
            ],
            "{b}: the records of the people asked for"
        );
    }
}
