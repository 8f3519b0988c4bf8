//! The storage contract, checked on SQLite and on PostgreSQL alike.

use allot_domain::{Claim, Program};
use allot_store::testing::TestDb;
use allot_store::*;

fn new_token(name: &str, uid: &str) -> NewToken {
    NewToken {
        name: name.into(),
        description: "d".into(),
        categories: vec!["schools".into(), "north".into()],
        apple_account: "admin@example.com".into(),
        program: Program::Education,
        uid: uid.into(),
        org_name: "Org".into(),
        location_name: "Loc".into(),
        country: "US".into(),
        secret: vec![1, 2, 3],
        notification_secret: None,
        expires_at: 1_000,
        claim: Claim::Ours,
        other_mdm: None,
    }
}

fn asset(adam: &str, total: i64, assigned: i64) -> AssetRow {
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
        platforms: vec!["iOS".into()],
    }
}

fn dev(adam: &str, serial: &str) -> AssignmentRow {
    AssignmentRow {
        adam_id: adam.into(),
        pricing: "STDQ".into(),
        holder: Holder::Device(serial.into()),
    }
}

#[tokio::test]
async fn tokens_round_trip_and_names_and_locations_are_unique() {
    for db in TestDb::both().await {
        let s = &db.store;
        let t = s.insert_token(&new_token("A", "1"), 5).await.unwrap();
        assert_eq!(
            (t.name.as_str(), t.program, t.claim, t.categories.len()),
            ("A", Program::Education, Claim::Ours, 2),
            "{}",
            db.backend()
        );
        assert_eq!(t.secret, vec![1, 2, 3]);
        assert!(
            matches!(
                s.insert_token(&new_token("A", "2"), 5).await,
                Err(StoreError::Conflict(_))
            ),
            "{}",
            db.backend()
        );
        assert!(
            matches!(
                s.insert_token(&new_token("B", "1"), 5).await,
                Err(StoreError::Conflict(_))
            ),
            "{}",
            db.backend()
        );
        assert_eq!(s.token_by_uid("1").await.unwrap().unwrap().id, t.id);
        s.set_claim(t.id, Claim::OtherMdm, Some("{\"name\":\"X\"}"), 6)
            .await
            .unwrap();
        s.renew_token(t.id, &[9], 2_000, "Org2", 7).await.unwrap();
        let back = s.token(t.id).await.unwrap().unwrap();
        assert_eq!(
            (
                back.claim,
                back.secret.clone(),
                back.expires_at,
                back.org_name.as_str()
            ),
            (Claim::OtherMdm, vec![9], 2_000, "Org2")
        );
        assert_eq!(s.tokens().await.unwrap().len(), 1);
    }
}

/// Assignments never outlive their token: written after the token is gone, they are refused
/// (SQLite's foreign key; PostgreSQL, whose per-row key check was dropped for speed, locks the
/// token once per write instead) and nothing is left behind.
#[tokio::test]
async fn assignments_of_a_deleted_token_are_refused() {
    for db in TestDb::both().await {
        let s = &db.store;
        let t = s.insert_token(&new_token("A", "1"), 0).await.unwrap().id;
        s.upsert_assignments(t, &[dev("1", "S1")], 1).await.unwrap();
        assert!(s.delete_token(t).await.unwrap());
        assert!(
            s.upsert_assignments(t, &[dev("1", "S2")], 2).await.is_err(),
            "{}",
            db.backend()
        );
        assert_eq!(
            s.add_assignments(t, &[dev("1", "S3")], 2, 0)
                .await
                .unwrap_or(0),
            0,
            "a notification's assignment for a deleted token adds nothing"
        );
        assert_eq!(s.count_assignments(t).await.unwrap(), 0, "{}", db.backend());
    }
}

/// Holders are Apple's strings: tabs, backslashes, newlines and quotes survive the bulk write
/// (PostgreSQL's COPY text), and a row Apple lists twice in one write is stored once.
#[tokio::test]
async fn assignments_keep_hostile_holders_and_duplicates_once() {
    for db in TestDb::both().await {
        let s = &db.store;
        let t = s.insert_token(&new_token("A", "1"), 0).await.unwrap().id;
        let odd = [
            "tab\there",
            "back\\slash\\N",
            "line\nbreak\r",
            "quote'\"",
            "ünï",
        ];
        let mut rows: Vec<_> = odd.iter().map(|h| dev("1", h)).collect();
        rows.push(dev("1", odd[0]));
        s.upsert_assignments(t, &rows, 1).await.unwrap();
        s.upsert_assignments(t, &rows, 2).await.unwrap();
        assert_eq!(s.delete_stale_assignments(t, 2).await.unwrap(), 0);
        let mut back: Vec<String> = s
            .assignments(t)
            .await
            .unwrap()
            .into_iter()
            .map(|a| a.holder.id().to_owned())
            .collect();
        back.sort();
        let mut want: Vec<String> = odd.iter().map(|h| h.to_string()).collect();
        want.sort();
        assert_eq!(back, want, "{}", db.backend());
    }
}

#[tokio::test]
async fn a_full_sync_generation_replaces_what_disappeared() {
    for db in TestDb::both().await {
        let s = &db.store;
        let t = s.insert_token(&new_token("A", "1"), 0).await.unwrap().id;
        s.upsert_assets(t, &[asset("1", 5, 2), asset("2", 1, 0)], 1, 0)
            .await
            .unwrap();
        s.upsert_assignments(t, &[dev("1", "S1"), dev("1", "S2")], 1)
            .await
            .unwrap();
        // Generation 2 sees asset 1 only, with S2 and S3.
        s.upsert_assets(t, &[asset("1", 5, 2)], 2, 0).await.unwrap();
        s.upsert_assignments(t, &[dev("1", "S2"), dev("1", "S3")], 2)
            .await
            .unwrap();
        assert_eq!(
            s.delete_stale_assignments(t, 2).await.unwrap(),
            1,
            "{}",
            db.backend()
        );
        assert_eq!(s.delete_stale_assets(t, 2).await.unwrap(), 1);
        assert_eq!(
            s.assignments(t).await.unwrap(),
            vec![dev("1", "S2"), dev("1", "S3")]
        );
        assert_eq!(s.assets(t).await.unwrap().len(), 1);
        assert_eq!(
            s.assignment_counts(t).await.unwrap(),
            vec![("1".into(), "STDQ".into(), 2)]
        );
    }
}

#[tokio::test]
async fn notifications_move_counts_once() {
    for db in TestDb::both().await {
        let s = &db.store;
        let t = s.insert_token(&new_token("A", "1"), 0).await.unwrap().id;
        s.upsert_assets(t, &[asset("1", 3, 0)], 1, 0).await.unwrap();
        assert!(s.add_assignment(t, &dev("1", "S1"), 1).await.unwrap());
        assert!(
            !s.add_assignment(t, &dev("1", "S1"), 1).await.unwrap(),
            "a duplicate changes nothing"
        );
        let a = &s.assets(t).await.unwrap()[0];
        assert_eq!((a.assigned, a.available), (1, 2), "{}", db.backend());
        assert!(s.remove_assignment(t, &dev("1", "S1")).await.unwrap());
        assert!(!s.remove_assignment(t, &dev("1", "S1")).await.unwrap());
        assert!(s.adjust_asset_total(t, "1", "STDQ", 5, 0).await.unwrap());
        assert!(!s.adjust_asset_total(t, "9", "STDQ", 5, 0).await.unwrap());
        let a = &s.assets(t).await.unwrap()[0];
        assert_eq!((a.total, a.assigned, a.available), (8, 0, 8));
        assert!(s
            .mark_notification_seen("n1", t, "ASSET_COUNT", 0)
            .await
            .unwrap());
        assert!(!s
            .mark_notification_seen("n1", t, "ASSET_COUNT", 0)
            .await
            .unwrap());
        s.forget_notification("n1").await.unwrap();
        assert!(
            s.mark_notification_seen("n1", t, "ASSET_COUNT", 0)
                .await
                .unwrap(),
            "{}: forgotten, so seen anew",
            db.backend()
        );
    }
}

#[tokio::test]
async fn replacing_one_assets_assignments_within_a_run() {
    for db in TestDb::both().await {
        let s = &db.store;
        let t = s.insert_token(&new_token("A", "1"), 0).await.unwrap().id;
        let run = s.start_sync_run(t, "full", "manual", 0).await.unwrap();
        s.upsert_assignments(
            t,
            &[dev("1", "S1"), dev("1", "S2"), dev("2", "S1")],
            generation(run, 0),
        )
        .await
        .unwrap();
        // A notification during the run, then a re-read of asset 1 alone (step 1).
        s.add_assignment(t, &dev("1", "S9"), s.current_generation(t).await.unwrap())
            .await
            .unwrap();
        s.upsert_assignments(t, &[dev("1", "S2")], generation(run, 1))
            .await
            .unwrap();
        assert_eq!(
            s.delete_stale_asset_assignments(t, "1", "STDQ", generation(run, 1))
                .await
                .unwrap(),
            1,
            "{}",
            db.backend()
        );
        assert_eq!(
            s.assignments(t).await.unwrap(),
            vec![dev("1", "S2"), dev("1", "S9"), dev("2", "S1")]
        );
    }
}

#[tokio::test]
async fn one_sync_lease_at_a_time() {
    for db in TestDb::both().await {
        let s = &db.store;
        let t = s.insert_token(&new_token("A", "1"), 0).await.unwrap().id;
        assert!(s.try_lease(t, "a", 100, 200).await.unwrap());
        assert!(
            !s.try_lease(t, "b", 150, 250).await.unwrap(),
            "{}: held",
            db.backend()
        );
        assert!(
            s.try_lease(t, "b", 201, 300).await.unwrap(),
            "expired leases can be taken"
        );
        s.release_lease(t, "a").await.unwrap();
        assert!(
            !s.try_lease(t, "c", 250, 300).await.unwrap(),
            "only the owner releases"
        );
        s.release_lease(t, "b").await.unwrap();
        assert!(s.try_lease(t, "c", 250, 300).await.unwrap());
        let run = s.start_sync_run(t, "full", "manual", 250).await.unwrap();
        assert_eq!(
            s.current_generation(t).await.unwrap(),
            generation(run, GENERATION_STEPS - 1)
        );
        assert_eq!(
            s.latest_sync_runs_of(&[t])
                .await
                .unwrap()
                .iter()
                .map(|r| r.id)
                .collect::<Vec<_>>(),
            vec![run]
        );
        // The process holding the lease died: its run is found and marked.
        assert_eq!(s.interrupt_abandoned_runs(301).await.unwrap(), 1);
        assert_eq!(
            s.sync_run(run).await.unwrap().unwrap().status,
            "interrupted"
        );
    }
}

#[tokio::test]
async fn deleting_a_token_removes_everything_synced_from_it() {
    for db in TestDb::both().await {
        let s = &db.store;
        let t = s.insert_token(&new_token("A", "1"), 0).await.unwrap().id;
        let other = s.insert_token(&new_token("B", "2"), 0).await.unwrap().id;
        for id in [t, other] {
            s.upsert_assets(id, &[asset("1", 3, 1)], 1, 0)
                .await
                .unwrap();
            s.upsert_assignments(id, &[dev("1", "S")], 1).await.unwrap();
            s.upsert_users(
                id,
                &[UserRow {
                    client_user_id: "u".into(),
                    status: "Registered".into(),
                    email: None,
                    invite_code: None,
                    id_hash: None,
                }],
                1,
            )
            .await
            .unwrap();
            s.start_sync_run(id, "full", "added", 0).await.unwrap();
        }
        assert!(s.delete_token(t).await.unwrap());
        assert!(s.token(t).await.unwrap().is_none());
        assert!(
            s.assets(t).await.unwrap().is_empty() && s.assignments(t).await.unwrap().is_empty(),
            "{}",
            db.backend()
        );
        assert!(s.users(t).await.unwrap().is_empty());
        assert_eq!(
            s.assignments(other).await.unwrap().len(),
            1,
            "other tokens keep theirs"
        );
    }
}

/// What token lists read instead of whole rows: briefs, a page by name, and the latest runs'
/// statuses that tell a token's state.
#[tokio::test]
async fn token_lists_read_briefs_pages_and_latest_statuses() {
    for db in TestDb::both().await {
        let s = &db.store;
        let mut ids = Vec::new();
        for (name, uid) in [("Cedar", "1"), ("Ash", "2"), ("Birch", "3")] {
            ids.push(s.insert_token(&new_token(name, uid), 7).await.unwrap().id);
        }
        let briefs = s.token_briefs().await.unwrap();
        let full = s.tokens().await.unwrap();
        assert_eq!(
            briefs,
            full.iter().map(TokenBrief::from).collect::<Vec<_>>(),
            "{}: a brief is its row's",
            db.backend()
        );
        let (page, total) = s.tokens_page(None, 2, 1).await.unwrap();
        let names: Vec<_> = page.iter().map(|t| t.name.as_str()).collect();
        assert_eq!((names, total), (vec!["Birch", "Cedar"], 3));
        let (page, total) = s.tokens_page(Some(&[ids[0], ids[2]]), 10, 0).await.unwrap();
        let names: Vec<_> = page.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(
            (names, total),
            (vec!["Birch", "Cedar"], 2),
            "a scope keeps to its tokens"
        );
        assert_eq!(s.tokens_page(Some(&[]), 10, 0).await.unwrap().1, 0);
        let by_ids: Vec<_> = s
            .tokens_by_ids(&[ids[1], ids[0]])
            .await
            .unwrap()
            .into_iter()
            .map(|t| t.name)
            .collect();
        assert_eq!(by_ids, ["Ash", "Cedar"]);
        // Cedar's last run failed after one that succeeded; Ash's runs; Birch's succeeded.
        for (t, statuses) in [
            (ids[0], &["succeeded", "failed"][..]),
            (ids[1], &["failed", "running"]),
            (ids[2], &["failed", "succeeded"]),
        ] {
            for (k, status) in statuses.iter().enumerate() {
                let run = s
                    .start_sync_run(t, "full", "schedule", k as i64)
                    .await
                    .unwrap();
                if *status != "running" {
                    s.finish_sync_run(run, status, SyncCounts::default(), None, k as i64)
                        .await
                        .unwrap();
                }
            }
        }
        let statuses = s.latest_sync_statuses().await.unwrap();
        assert_eq!(
            statuses,
            [
                (ids[0], "failed".to_owned()),
                (ids[1], "running".to_owned())
            ]
            .into_iter()
            .collect(),
            "{}: only the latest run, and only where it tells the state",
            db.backend()
        );
        let mut latest: Vec<_> = s
            .latest_sync_runs_of(&[ids[0], ids[2]])
            .await
            .unwrap()
            .into_iter()
            .map(|r| (r.token_id, r.status))
            .collect();
        latest.sort();
        assert_eq!(
            latest,
            [
                (ids[0], "failed".to_owned()),
                (ids[2], "succeeded".to_owned())
            ]
        );
    }
}

/// The front page judges only the tokens the store says may need attention: every token that
/// `token_health::state` judges in trouble must be among them, at each condition's edge, and the
/// healthy ones must not (or the read would not spare anything).
#[tokio::test]
async fn tokens_needing_attention_hold_every_token_in_trouble() {
    use allot_domain::token_health::{self, expiring_before, stale_before, DAY_MS};
    use allot_domain::TokenState;
    const HOUR: i64 = 3_600_000;
    let now = 1_000 * DAY_MS;
    let delta_ms = 12 * HOUR;
    struct Case {
        name: &'static str,
        created: i64,
        expires: i64,
        claim: Claim,
        auth: Option<i32>,
        syncs: &'static [(bool, i64)],
        runs: &'static [&'static str],
    }
    let base = || Case {
        name: "",
        created: now - 10 * DAY_MS,
        expires: now + 100 * DAY_MS,
        claim: Claim::Ours,
        auth: None,
        syncs: &[(true, -HOUR)],
        runs: &["succeeded"],
    };
    let cases = [
        Case {
            name: "healthy",
            ..base()
        },
        Case {
            name: "expiring at the edge",
            expires: now + 30 * DAY_MS,
            ..base()
        },
        Case {
            name: "expiring after the edge",
            expires: now + 30 * DAY_MS + 1,
            ..base()
        },
        Case {
            name: "expired",
            expires: now - 1,
            ..base()
        },
        Case {
            name: "revoked",
            auth: Some(9625),
            ..base()
        },
        Case {
            name: "expired at Apple",
            auth: Some(9621),
            ..base()
        },
        Case {
            name: "another auth error",
            auth: Some(9600),
            ..base()
        },
        Case {
            name: "other MDM",
            claim: Claim::OtherMdm,
            ..base()
        },
        Case {
            name: "stale",
            syncs: &[(true, -24 * HOUR - 1)],
            ..base()
        },
        Case {
            name: "stale at the edge",
            syncs: &[(true, -24 * HOUR)],
            ..base()
        },
        Case {
            name: "changes recent, full old",
            syncs: &[(true, -20 * DAY_MS), (false, -HOUR)],
            ..base()
        },
        Case {
            name: "never synced, old",
            created: now - 2 * DAY_MS,
            syncs: &[],
            runs: &[],
            ..base()
        },
        Case {
            name: "never synced, new",
            created: now - HOUR,
            syncs: &[],
            runs: &[],
            ..base()
        },
        Case {
            name: "failed last",
            runs: &["succeeded", "failed"],
            ..base()
        },
        Case {
            name: "failed, then succeeded",
            runs: &["failed", "succeeded"],
            ..base()
        },
    ];
    for db in TestDb::both().await {
        let s = &db.store;
        let b = db.backend();
        for (i, c) in cases.iter().enumerate() {
            let t = NewToken {
                expires_at: c.expires,
                claim: c.claim,
                ..new_token(c.name, &i.to_string())
            };
            let id = s.insert_token(&t, c.created).await.unwrap().id;
            for (full, ago) in c.syncs {
                s.mark_synced(id, *full, None, None, 1, now + ago)
                    .await
                    .unwrap();
            }
            // After the syncs: a success clears an authentication error.
            s.set_auth_error(id, c.auth, now).await.unwrap();
            for status in c.runs {
                let run = s.start_sync_run(id, "full", "schedule", now).await.unwrap();
                s.finish_sync_run(run, status, SyncCounts::default(), None, now)
                    .await
                    .unwrap();
            }
        }
        let statuses = s.latest_sync_statuses().await.unwrap();
        let in_trouble: Vec<String> = s
            .token_briefs()
            .await
            .unwrap()
            .into_iter()
            .filter(|t| {
                let judged = token_health::state(&allot_domain::HealthInputs {
                    now,
                    expires_at: t.expires_at,
                    revoked: t.auth_error == Some(9625),
                    expired_at_apple: t.auth_error == Some(9621),
                    claim: t.claim,
                    syncing: false,
                    last_sync_failed: statuses.get(&t.id).map(String::as_str) == Some("failed"),
                    last_success: t.last_delta_sync_at.max(t.last_full_sync_at),
                    created_at: t.created_at,
                    delta_interval_ms: delta_ms,
                });
                !matches!(judged, TokenState::Healthy | TokenState::Syncing)
            })
            .map(|t| t.name)
            .collect();
        let mut needing: Vec<String> = s
            .token_briefs_needing_attention(expiring_before(now), stale_before(now, delta_ms))
            .await
            .unwrap()
            .into_iter()
            .map(|t| t.name)
            .collect();
        needing.sort();
        for name in &in_trouble {
            assert!(
                needing.contains(name),
                "{b}: {name} is in trouble but was left out"
            );
        }
        let mut expected = in_trouble.clone();
        expected.push("another auth error".into());
        expected.sort();
        assert_eq!(
            needing, expected,
            "{b}: in trouble, and no healthy token but the one with an error"
        );
        assert_eq!(in_trouble.len(), 8, "{b}: {in_trouble:?}");
    }
}

/// Deep pages are found in each sort's index (migration 0036): paging through any sort, with or
/// without "low on licenses", gives every row once, in the sort's order, with its token's name.
#[tokio::test]
async fn license_list_pages_give_every_row_once_in_every_sort() {
    for db in TestDb::both().await {
        let s = &db.store;
        // Token names out of id order, so an order by token name is not an order by id.
        let mut tokens = Vec::new();
        for (name, uid) in [("Cedar", "1"), ("Ash", "2"), ("Birch", "3")] {
            tokens.push(s.insert_token(&new_token(name, uid), 0).await.unwrap().id);
        }
        for (i, t) in tokens.iter().enumerate() {
            let i = i as i64;
            let mut rows: Vec<AssetRow> = (0..7)
                .map(|n| asset(&format!("{}", 100 + n), 10 + n % 3, (n + i) % 4 * 3))
                .collect();
            rows.push(AssetRow {
                unlimited: true,
                ..asset("200", 0, 4)
            });
            s.upsert_assets(*t, &rows, 1, 0).await.unwrap();
        }
        // Two apps share a name; the others' names are out of adamId order.
        let meta = |id: i64, name: &str| MetadataRow {
            adam_id: id.to_string(),
            name: name.into(),
            ..Default::default()
        };
        let mut named: Vec<MetadataRow> = (0..7)
            .map(|n| meta(100 + n, &format!("App {}", 9 - n)))
            .collect();
        named.push(meta(200, "App 9"));
        s.upsert_metadata(&named, 0).await.unwrap();
        let all = AppFilter {
            limit: 1000,
            ..Default::default()
        };
        let (every, total) = s.app_licenses(&all).await.unwrap();
        assert_eq!((every.len(), total), (24, 24), "{}", db.backend());
        let low_rule = |a: &AppLicense| !a.unlimited && a.available * 10 <= a.total;
        for sort in ["name", "token", "total", "used", "available"] {
            for low in [false, true] {
                let sort = AppSort::parse(sort).unwrap();
                let (whole, total) = s
                    .app_licenses(&AppFilter {
                        sort,
                        low,
                        ..all.clone()
                    })
                    .await
                    .unwrap();
                let key = |a: &AppLicense| (a.token_id, a.adam_id.clone());
                let mut want: Vec<&AppLicense> =
                    every.iter().filter(|a| !low || low_rule(a)).collect();
                let name = |a: &AppLicense| a.name.clone().unwrap_or_default().to_lowercase();
                want.sort_by_key(|a| {
                    let tie = (name(a), a.token_name.clone(), a.adam_id.clone());
                    match sort {
                        AppSort::Name => (0, 0, tie.0.clone(), tie),
                        AppSort::Token => (0, 0, a.token_name.clone(), tie),
                        AppSort::Total => (-a.total, 0, String::new(), tie),
                        AppSort::Used => (-a.assigned, 0, String::new(), tie),
                        AppSort::Available => (a.unlimited as i64, a.available, String::new(), tie),
                    }
                });
                let want: Vec<_> = want.into_iter().map(key).collect();
                let got: Vec<_> = whole.iter().map(key).collect();
                assert_eq!(got, want, "{} sorted by {sort:?}, low {low}", db.backend());
                assert_eq!(total, want.len() as i64);
                // Page by page, three rows at a time, as the console's pager does.
                let mut paged = Vec::new();
                for offset in (0..total).step_by(3) {
                    let (page, page_total) = s
                        .app_licenses(&AppFilter {
                            sort,
                            low,
                            limit: 3,
                            offset,
                            ..all.clone()
                        })
                        .await
                        .unwrap();
                    assert_eq!(page_total, total);
                    paged.extend(page.iter().map(key));
                }
                assert_eq!(paged, want, "{} pages of {sort:?}, low {low}", db.backend());
            }
        }
        assert!(every.iter().all(|a| ["Cedar", "Ash", "Birch"]
            [tokens.iter().position(|t| *t == a.token_id).unwrap()]
            == a.token_name));
        assert!(
            every.iter().all(|a| a.confirmed_at.is_none()),
            "never synced: not confirmed"
        );
    }
}

#[tokio::test]
async fn license_listing_joins_metadata_and_filters() {
    for db in TestDb::both().await {
        let s = &db.store;
        let t = s.insert_token(&new_token("A", "1"), 0).await.unwrap().id;
        let u = s.insert_token(&new_token("B", "2"), 0).await.unwrap().id;
        s.upsert_assets(t, &[asset("10", 5, 1), asset("20", 2, 2)], 1, 0)
            .await
            .unwrap();
        s.upsert_assets(u, &[asset("10", 1, 0)], 1, 0)
            .await
            .unwrap();
        let meta = |id: &str, name: &str| MetadataRow {
            adam_id: id.into(),
            name: name.into(),
            bundle_id: Some(format!("com.x.{id}")),
            icon_url: None,
            platforms: vec![],
            version: None,
            kind: None,
            artist: None,
            genre: None,
            device_licensing: true,
            ..Default::default()
        };
        s.upsert_metadata(&[meta("10", "Zebra Notes"), meta("20", "Alpha Math")], 0)
            .await
            .unwrap();
        let all = AppFilter {
            limit: 50,
            ..Default::default()
        };
        let (rows, total) = s.app_licenses(&all).await.unwrap();
        assert_eq!(
            total,
            3,
            "{}: the same app under two tokens is two rows",
            db.backend()
        );
        assert_eq!(
            rows[0].name.as_deref(),
            Some("Alpha Math"),
            "sorted by name"
        );
        // A renamed app moves in the list; a scope keeps to its tokens.
        s.upsert_metadata(&[meta("20", "Zulu Math")], 0)
            .await
            .unwrap();
        let (rows, _) = s.app_licenses(&all).await.unwrap();
        let names: Vec<_> = rows
            .iter()
            .map(|r| r.name.clone().unwrap_or_default())
            .collect();
        assert_eq!(
            names,
            ["Zebra Notes", "Zebra Notes", "Zulu Math"],
            "{}",
            db.backend()
        );
        let (rows, total) = s
            .app_licenses(&AppFilter {
                tokens_in: Some(vec![u]),
                ..all.clone()
            })
            .await
            .unwrap();
        assert_eq!((total, rows[0].token_name.as_str()), (1, "B"));
        let (_, total) = s
            .app_licenses(&AppFilter {
                tokens_in: Some(vec![]),
                ..all.clone()
            })
            .await
            .unwrap();
        assert_eq!(total, 0, "a scope of no token sees nothing");
        // The search follows the new name, and reads the bundle id and the adamId too.
        for (q, want) in [
            ("alpha", 0),
            ("zulu m", 1),
            ("com.x.20", 1),
            ("20", 1),
            ("zebra", 2),
        ] {
            let (_, total) = s
                .app_licenses(&AppFilter {
                    search: Some(q.into()),
                    ..all.clone()
                })
                .await
                .unwrap();
            assert_eq!(total, want, "{q:?} on {}", db.backend());
        }
        let (rows, total) = s
            .app_licenses(&AppFilter {
                search: Some("zebra".into()),
                token_id: Some(u),
                ..all.clone()
            })
            .await
            .unwrap();
        assert_eq!((total, rows[0].token_name.as_str()), (1, "B"));
        let (_, total) = s
            .app_licenses(&AppFilter {
                search: Some("com.x.2".into()),
                ..all.clone()
            })
            .await
            .unwrap();
        assert_eq!(total, 1);
        let (rows, total) = s
            .app_licenses(&AppFilter {
                limit: 1,
                offset: 1,
                ..all
            })
            .await
            .unwrap();
        assert_eq!((rows.len(), total), (1, 3));
    }
}

#[tokio::test]
async fn settings_and_api_keys() {
    for db in TestDb::both().await {
        let s = &db.store;
        assert_eq!(s.setting_or_insert("instance_id", "x").await.unwrap(), "x");
        assert_eq!(
            s.setting_or_insert("instance_id", "y").await.unwrap(),
            "x",
            "{}: first value stays",
            db.backend()
        );
        let id = s
            .insert_api_key("admin", "hash1", "admin", None, 0)
            .await
            .unwrap();
        assert_eq!(s.api_key_by_hash("hash1").await.unwrap().unwrap().id, id);
        assert!(s.api_key_by_hash("nope").await.unwrap().is_none());
        assert_eq!(s.count_api_keys().await.unwrap(), 1);
    }
}

#[tokio::test]
async fn marking_syncs_moves_the_right_times() {
    for db in TestDb::both().await {
        let s = &db.store;
        let t = s.insert_token(&new_token("A", "1"), 0).await.unwrap().id;
        s.set_full_sync_wanted(t, true).await.unwrap();
        s.set_last_error(t, Some("boom"), 1).await.unwrap();
        s.mark_synced(t, true, Some("va"), Some("vu"), 1, 10)
            .await
            .unwrap();
        let r = s.token(t).await.unwrap().unwrap();
        assert_eq!(
            (
                r.last_full_sync_at,
                r.last_delta_sync_at,
                r.full_sync_wanted
            ),
            (Some(10), Some(10), false),
            "{}",
            db.backend()
        );
        assert_eq!(
            (
                r.assignments_version.as_deref(),
                r.sync_serial,
                r.last_error
            ),
            (Some("va"), 1, None)
        );
        s.set_full_sync_wanted(t, true).await.unwrap();
        s.mark_synced(t, false, Some("vb"), Some("vu"), 2, 20)
            .await
            .unwrap();
        let r = s.token(t).await.unwrap().unwrap();
        assert_eq!(
            (
                r.last_full_sync_at,
                r.last_delta_sync_at,
                r.full_sync_wanted
            ),
            (Some(10), Some(20), true),
            "{}: a delta leaves a wanted full sync wanted",
            db.backend()
        );
    }
}

/// The query planner's statistics: a database gathers them for tables that lack them or changed
/// much when it is opened, and the hourly `optimize` keeps them (SQLite's `PRAGMA optimize`;
/// PostgreSQL's `ANALYZE` where autovacuum has not, which may be turned off).
#[tokio::test]
async fn the_planners_statistics_are_gathered() {
    for db in TestDb::both().await {
        let people: Vec<(NewPerson, String)> = (0..2_000)
            .map(|i| {
                (
                    NewPerson {
                        name: format!("Person {i:04}"),
                        email: Some(format!("p{i}@example.com")),
                        managed_apple_id: None,
                        department: None,
                    },
                    format!("cu-{i}"),
                )
            })
            .collect();
        db.store.upsert_people(&people, 1).await.unwrap();
        let store = allot_store::testing::reopen(&db).await.unwrap();
        store.optimize().await.unwrap();
        if db.backend() == "sqlite" {
            let pool = allot_store::sqlx::SqlitePool::connect(&db.url)
                .await
                .unwrap();
            let rows: i64 = allot_store::sqlx::query_scalar(
                "SELECT COUNT(*) FROM sqlite_stat1 WHERE tbl = 'people'",
            )
            .fetch_one(&pool)
            .await
            .unwrap();
            assert!(rows > 0, "the people table has statistics");
        } else {
            let pool = allot_store::sqlx::PgPool::connect(&db.url).await.unwrap();
            // PostgreSQL publishes a connection's counts of changes up to ten seconds after they
            // commit (when it idles): optimize until it sees them.
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
            let analyzed = loop {
                let analyzed: Option<String> = allot_store::sqlx::query_scalar(
                    "SELECT relname::text FROM pg_stat_user_tables WHERE relname = 'people' \
                     AND schemaname = ANY (current_schemas(false)) \
                     AND (last_analyze IS NOT NULL OR last_autoanalyze IS NOT NULL)",
                )
                .fetch_optional(&pool)
                .await
                .unwrap();
                if analyzed.is_some() || std::time::Instant::now() > deadline {
                    break analyzed;
                }
                tokio::time::sleep(std::time::Duration::from_millis(200)).await;
                store.optimize().await.unwrap();
            };
            assert!(analyzed.is_some(), "the people table has statistics");
        }
    }
}
