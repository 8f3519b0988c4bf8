//! What the web console stores and reads — accounts, sessions, license history, the license list's
//! filters and orders, who holds an asset, unused licenses — on SQLite and PostgreSQL alike.

use allot_domain::{Claim, Program};
use allot_store::testing::TestDb;
use allot_store::*;

fn token(name: &str, uid: &str, categories: &[&str]) -> NewToken {
    NewToken {
        name: name.into(),
        description: String::new(),
        categories: categories.iter().map(|c| (*c).to_owned()).collect(),
        apple_account: String::new(),
        program: Program::Education,
        uid: uid.into(),
        org_name: "Org".into(),
        location_name: String::new(),
        country: String::new(),
        secret: vec![1],
        notification_secret: None,
        expires_at: 1_000,
        claim: Claim::Ours,
        other_mdm: None,
    }
}

fn asset(adam: &str, total: i64, assigned: i64, platform: &str) -> AssetRow {
    AssetRow {
        adam_id: adam.into(),
        pricing: "STDQ".into(),
        product_type: "App".into(),
        total,
        assigned,
        available: total - assigned,
        retired: 0,
        device_assignable: true,
        revocable: true,
        unlimited: false,
        platforms: vec![platform.into()],
    }
}

#[tokio::test]
async fn accounts_and_sessions() {
    for db in TestDb::both().await {
        let s = &db.store;
        assert_eq!(s.count_accounts().await.unwrap(), 0);
        let id = s
            .insert_account("ada", "hash", "admin", None, 0)
            .await
            .unwrap();
        assert!(matches!(
            s.insert_account("ada", "other", "viewer", None, 0).await,
            Err(StoreError::Conflict(_))
        ));
        let (a, hash) = s.account_by_username("ada").await.unwrap().unwrap();
        assert_eq!(
            (a.id, a.role.as_str(), hash.as_str()),
            (id, "admin", "hash")
        );
        assert!(s.account_by_username("bob").await.unwrap().is_none());
        s.insert_session("h1", id, "csrf1", 100).await.unwrap();
        let (who, csrf) = s.session("h1", 50).await.unwrap().unwrap();
        assert_eq!((who.username.as_str(), csrf.as_str()), ("ada", "csrf1"));
        assert!(s.session("h1", 100).await.unwrap().is_none(), "expired");
        s.delete_session("h1", 0).await.unwrap();
        assert!(s.session("h1", 50).await.unwrap().is_none());
    }
}

#[tokio::test]
async fn license_history_records_changes_only() {
    for db in TestDb::both().await {
        let s = &db.store;
        let t = s.insert_token(&token("A", "1", &[]), 0).await.unwrap().id;
        s.upsert_assets(t, &[asset("10", 5, 1, "iOS")], 1, 0)
            .await
            .unwrap();
        assert_eq!(s.record_license_history(t, 10).await.unwrap(), 1);
        assert_eq!(
            s.record_license_history(t, 20).await.unwrap(),
            0,
            "{}: unchanged",
            db.backend()
        );
        s.upsert_assets(t, &[asset("10", 5, 3, "iOS")], 2, 0)
            .await
            .unwrap();
        assert_eq!(s.record_license_history(t, 30).await.unwrap(), 1);
        assert_eq!(
            s.license_history(t, "10", "STDQ").await.unwrap(),
            vec![(10, 5, 1), (30, 5, 3)]
        );
    }
}

#[tokio::test]
async fn the_license_list_filters_and_sorts() {
    for db in TestDb::both().await {
        let s = &db.store;
        let b = db.backend();
        let t = s
            .insert_token(&token("A", "1", &["Schools", "north"]), 0)
            .await
            .unwrap()
            .id;
        let u = s
            .insert_token(&token("B", "2", &["south"]), 0)
            .await
            .unwrap()
            .id;
        s.upsert_assets(
            t,
            &[asset("10", 100, 95, "iOS"), asset("20", 10, 1, "macOS")],
            1,
            0,
        )
        .await
        .unwrap();
        s.upsert_assets(u, &[asset("30", 50, 5, "iOS")], 1, 0)
            .await
            .unwrap();
        let all = AppFilter {
            limit: 50,
            ..Default::default()
        };
        let ids = |rows: Vec<AppLicense>| rows.into_iter().map(|r| r.adam_id).collect::<Vec<_>>();
        let (rows, n) = s
            .app_licenses(&AppFilter {
                low: true,
                ..all.clone()
            })
            .await
            .unwrap();
        assert_eq!(
            (ids(rows), n),
            (vec!["10".to_owned()], 1),
            "{b}: a tenth or less free"
        );
        let (rows, _) = s
            .app_licenses(&AppFilter {
                platform: Some("macOS".into()),
                ..all.clone()
            })
            .await
            .unwrap();
        assert_eq!(ids(rows), vec!["20"], "{b}");
        let (rows, _) = s
            .app_licenses(&AppFilter {
                category: Some("schools".into()),
                ..all.clone()
            })
            .await
            .unwrap();
        assert_eq!(ids(rows), vec!["10", "20"], "{b}: categories ignore case");
        let (rows, _) = s
            .app_licenses(&AppFilter {
                sort: AppSort::Used,
                ..all.clone()
            })
            .await
            .unwrap();
        assert_eq!(ids(rows), vec!["10", "30", "20"], "{b}");
        let (rows, _) = s
            .app_licenses(&AppFilter {
                sort: AppSort::Available,
                ..all.clone()
            })
            .await
            .unwrap();
        assert_eq!(ids(rows), vec!["10", "20", "30"], "{b}");
    }
}

#[tokio::test]
async fn holders_of_an_asset_with_their_install_status_and_unused_licenses() {
    for db in TestDb::both().await {
        let s = &db.store;
        let b = db.backend();
        let t = s.insert_token(&token("A", "1", &[]), 0).await.unwrap().id;
        s.upsert_assets(t, &[asset("10", 5, 0, "iOS")], 1, 0)
            .await
            .unwrap();
        for serial in ["S1", "S2"] {
            s.add_assignment(
                t,
                &AssignmentRow {
                    adam_id: "10".into(),
                    pricing: "STDQ".into(),
                    holder: Holder::Device(serial.into()),
                },
                1,
            )
            .await
            .unwrap();
        }
        let c = s.insert_collection("C", "devices", "", 0).await.unwrap();
        let d = s
            .insert_deployment(
                &NewDeployment {
                    adam_id: "10".into(),
                    pricing: "STDQ".into(),
                    token_ids: vec![],
                    collection_id: c.id,
                    action: "required".into(),
                    on_shortage: "fail".into(),
                    ..Default::default()
                },
                0,
            )
            .await
            .unwrap();
        s.add_targets(d.id, &[(1, "S1".into())], 0).await.unwrap();
        let mut target = s.targets(d.id).await.unwrap().remove(0);
        target.status = "install_sent".into();
        target.license = Some("device".into());
        target.holder = Some("S1".into());
        s.update_target(&target, 5).await.unwrap();
        let (rows, n) = s
            .asset_assignments(t, "10", "STDQ", None, 10, 0)
            .await
            .unwrap();
        assert_eq!(n, 2, "{b}");
        assert_eq!(rows[0].status.as_deref(), Some("install_sent"), "{b}");
        assert_eq!(rows[1].status, None, "{b}: licensed outside any deployment");
        let (rows, n) = s
            .asset_assignments(t, "10", "STDQ", Some("install_sent"), 10, 0)
            .await
            .unwrap();
        assert_eq!((rows.len(), n), (1, 1), "{b}");
        assert_eq!(s.unused_licenses(4, 10).await.unwrap().len(), 0);
        let unused = s.unused_licenses(5, 10).await.unwrap();
        assert_eq!(
            (unused[0].label.as_str(), unused[0].since),
            ("S1", 5),
            "{b}"
        );
        // User holders by who they are: Allot's person, else Apple's e-mail; devices by serial.
        s.insert_person(
            &NewPerson {
                name: "Dana".into(),
                email: Some("dana@acme.example".into()),
                managed_apple_id: None,
                department: None,
            },
            "guid-dana",
            1,
        )
        .await
        .unwrap();
        s.upsert_users(
            t,
            &[UserRow {
                client_user_id: "guid-apple-only".into(),
                status: "Associated".into(),
                email: Some("eve@acme.example".into()),
                invite_code: None,
                id_hash: None,
            }],
            1,
        )
        .await
        .unwrap();
        for who in ["guid-dana", "guid-apple-only", "guid-nobody"] {
            s.add_assignment(
                t,
                &AssignmentRow {
                    adam_id: "10".into(),
                    pricing: "STDQ".into(),
                    holder: Holder::User(who.into()),
                },
                1,
            )
            .await
            .unwrap();
        }
        let (rows, _) = s
            .asset_assignments(t, "10", "STDQ", None, 10, 0)
            .await
            .unwrap();
        let name = |h: &str| {
            rows.iter()
                .find(|r| r.holder == h)
                .unwrap()
                .holder_name
                .clone()
        };
        assert_eq!(name("S1"), None, "{b}");
        assert_eq!(
            name("guid-dana").as_deref(),
            Some("Dana <dana@acme.example>"),
            "{b}"
        );
        assert_eq!(
            name("guid-apple-only").as_deref(),
            Some("eve@acme.example"),
            "{b}"
        );
        assert_eq!(name("guid-nobody"), None, "{b}");
        // Holders Allot knows carry their id, for their page.
        let id = |h: &str| rows.iter().find(|r| r.holder == h).unwrap().holder_id;
        assert!(id("guid-dana").is_some(), "{b}");
        assert_eq!(id("guid-apple-only"), None, "{b}");
        assert_eq!(id("S1"), None, "{b}: a serial Allot has no device for");
    }
}

/// What a filter's choices read instead of every token: the names containing what is typed (a
/// few, by name, within a scope), the categories once each whatever their case, the labels of
/// given tokens.
#[tokio::test]
async fn token_fields_read_suggestions_categories_and_labels_of_some() {
    for db in TestDb::both().await {
        let s = &db.store;
        let b = db.backend();
        let mut ids = Vec::new();
        for (name, uid, cats) in [
            ("Oak Elementary", "1", &["Schools", "north"][..]),
            ("Oakridge High", "2", &["schools"]),
            ("Cedar_50% Office", "3", &["offices", "North"]),
            ("Birch", "4", &[]),
        ] {
            ids.push(s.insert_token(&token(name, uid, cats), 0).await.unwrap().id);
        }
        let like = |q: &'static str, scope: Option<Vec<i64>>, limit: i64| async move {
            s.token_names_like(q, scope.as_deref(), limit)
                .await
                .unwrap()
        };
        assert_eq!(
            like("oak", None, 10).await,
            ["Oak Elementary", "Oakridge High"],
            "{b}: any case, by name"
        );
        assert_eq!(like("OAK", None, 1).await, ["Oak Elementary"], "{b}: a few");
        assert_eq!(like("", None, 10).await.len(), 4, "{b}: nothing typed: all");
        assert_eq!(
            like("oak", Some(vec![ids[1], ids[3]]), 10).await,
            ["Oakridge High"],
            "{b}: a scope keeps to its tokens"
        );
        assert_eq!(like("oak", Some(vec![]), 10).await, Vec::<String>::new());
        assert_eq!(
            (
                like("_50%", None, 10).await,
                like("%", None, 10).await.len()
            ),
            (vec!["Cedar_50% Office".to_owned()], 1),
            "{b}: wildcards are plain characters"
        );
        let cats = s.token_categories(None).await.unwrap();
        assert_eq!(cats.len(), 3, "{b}: {cats:?} (north once, schools once)");
        assert_eq!(cats[0].to_lowercase(), "north");
        assert_eq!(cats[1], "offices");
        assert_eq!(cats[2].to_lowercase(), "schools");
        assert_eq!(
            s.token_categories(Some(&[ids[1], ids[3]])).await.unwrap(),
            ["schools"],
            "{b}: a scope's categories"
        );
        let labels: Vec<_> = s
            .token_labels_of(&[ids[3], ids[0]])
            .await
            .unwrap()
            .into_iter()
            .map(|t| (t.id, t.name, t.categories))
            .collect();
        assert_eq!(
            labels,
            [
                (ids[3], "Birch".to_owned(), vec![]),
                (
                    ids[0],
                    "Oak Elementary".to_owned(),
                    vec!["Schools".to_owned(), "north".to_owned()]
                )
            ],
            "{b}"
        );
    }
}

/// An app page's "as of" reads its own token's last notification, not every token's.
#[tokio::test]
async fn a_tokens_last_notification_is_its_own() {
    for db in TestDb::both().await {
        let s = &db.store;
        let t = s.insert_token(&token("A", "1", &[]), 0).await.unwrap().id;
        let u = s.insert_token(&token("B", "2", &[]), 0).await.unwrap().id;
        assert_eq!(
            s.last_notification(t).await.unwrap(),
            None,
            "{}",
            db.backend()
        );
        for (id, token, at) in [("n1", t, 10), ("n2", t, 30), ("n3", u, 50), ("n4", t, 20)] {
            assert!(s
                .mark_notification_seen(id, token, "ASSET_COUNT", at)
                .await
                .unwrap());
        }
        assert_eq!(
            (
                s.last_notification(t).await.unwrap(),
                s.last_notification(u).await.unwrap()
            ),
            (Some(30), Some(50)),
            "{}",
            db.backend()
        );
    }
}
