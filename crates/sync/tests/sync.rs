//! The sync engine against the simulator over HTTP, on SQLite and on PostgreSQL: after every sync
//! the local copy must equal the simulator's state exactly.

use std::collections::BTreeMap;
use std::time::Duration;

use allot_apple_client::{AppleClient, ClientOptions};
use allot_apple_sim::RunningSim;
use allot_domain::{Claim, Program};
use allot_secrets::SecretBox;
use allot_store::testing::TestDb;
use allot_store::{AssignmentRow, Holder};
use allot_sync::{AddToken, Instance, SyncConfig, SyncEngine, SyncError, SyncKind, TokenError};
use serde_json::{json, Value};

const SCENARIO: &str = r#"{
  "settings": { "assignmentsPageSize": 50, "usersPageSize": 40, "assetsPageSize": 5, "eventDelayMs": 0, "tickMs": 5,
                "limits": { "maxRequestPerSecond": 0 } },
  "organizations": [ { "name": "Other Org", "locations": [
      { "name": "Claimed", "uId": "3000000000000001",
        "mdmInfo": { "id": "someone-else", "name": "Legacy MDM", "metadata": "7.2" },
        "assets": [ { "adamId": "555", "totalCount": 3 } ],
        "assignments": [ { "adamId": "555", "serialNumber": "X1" } ] } ] } ],
  "generate": [ { "seed": 11, "assets": 8, "users": 120, "serialNumbers": 150, "assignments": 600 } ]
}"#;

const KEY: &str = "AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=";

struct Env {
    sim: RunningSim,
    http: reqwest::Client,
}

impl Env {
    async fn start(scenario: &str) -> Self {
        let sim = allot_apple_sim::start_local(scenario).await.unwrap();
        Self {
            sim,
            http: reqwest::Client::new(),
        }
    }

    fn engine(&self, db: &TestDb, lease: Duration) -> SyncEngine {
        self.engine_named(db, lease, None)
    }

    /// An engine with the instance name a server keeps in its data folder.
    fn engine_named(&self, db: &TestDb, lease: Duration, owner: Option<&str>) -> SyncEngine {
        self.engine_with(
            db,
            SyncConfig {
                lease,
                lease_owner: owner.map(str::to_owned),
                ..Default::default()
            },
        )
    }

    fn engine_with(&self, db: &TestDb, config: SyncConfig) -> SyncEngine {
        let mut opts = ClientOptions::new(&self.sim.apple_url());
        opts.backoff = Duration::from_millis(10);
        let instance = Instance {
            id: "allot-test-instance".into(),
            name: "Allot".into(),
            version: "test".into(),
            public_url: None,
        };
        SyncEngine::new(
            db.store.clone(),
            AppleClient::new(opts),
            SecretBox::from_base64(KEY).unwrap(),
            instance,
            config,
        )
    }

    async fn get(&self, path: &str) -> Value {
        self.http
            .get(format!("{}/_sim/{path}", self.sim.base_url))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    async fn control(&self, path: &str, body: Value) -> Value {
        let res = self
            .http
            .post(format!("{}/_sim/{path}", self.sim.base_url))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert!(res.status().is_success(), "{path}: {}", res.status());
        res.json().await.unwrap_or(Value::Null)
    }

    async fn settings(&self, body: Value) {
        self.http
            .patch(format!("{}/_sim/settings", self.sim.base_url))
            .json(&body)
            .send()
            .await
            .unwrap();
    }

    /// (uId, token text) of the generated location and of the claimed one.
    async fn tokens(&self) -> (String, String, String) {
        let locs = self.get("locations").await;
        let find = |uid_pred: &dyn Fn(&str) -> bool| {
            let l = locs
                .as_array()
                .unwrap()
                .iter()
                .find(|l| uid_pred(l["uId"].as_str().unwrap()))
                .unwrap();
            (
                l["uId"].as_str().unwrap().to_owned(),
                l["token"].as_str().unwrap().to_owned(),
            )
        };
        let (uid, token) = find(&|u| u != "3000000000000001");
        let (_, claimed) = find(&|u| u == "3000000000000001");
        (uid, token, claimed)
    }

    async fn requests(&self) -> u64 {
        let s = self.get("stats").await;
        s["requests"]
            .as_object()
            .unwrap()
            .values()
            .map(|v| v.as_u64().unwrap())
            .sum()
    }

    /// Associates (or disassociates) through Apple's API, as another tool would.
    async fn apple_post(&self, token: &str, path: &str, body: Value) {
        let res = self
            .http
            .post(format!("{}/mdm/v2/{path}", self.sim.base_url))
            .bearer_auth(token)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert!(res.status().is_success());
        self.control("events/run", json!({})).await;
    }
}

fn add(name: &str, token: &str) -> AddToken {
    AddToken {
        name: name.into(),
        token_text: token.into(),
        description: String::new(),
        categories: vec![],
        apple_account: "vpp@example.com".into(),
        program: Program::Business,
    }
}

/// The local copy of a token equals the simulator's state of its location.
async fn assert_same(env: &Env, engine: &SyncEngine, token_id: i64, uid: &str) {
    let state = env.get(&format!("state?uId={uid}")).await["locations"][0].clone();
    let store = engine.store();
    let mut want: Vec<AssignmentRow> = state["assignments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| AssignmentRow {
            adam_id: a["adamId"].as_str().unwrap().into(),
            pricing: a["pricingParam"].as_str().unwrap().into(),
            holder: match a["serialNumber"].as_str() {
                Some(s) => Holder::Device(s.into()),
                None => Holder::User(a["clientUserId"].as_str().unwrap().into()),
            },
        })
        .collect();
    want.sort();
    let mut got = store.assignments(token_id).await.unwrap();
    got.sort();
    if got != want {
        let (g, w): (std::collections::BTreeSet<_>, std::collections::BTreeSet<_>) =
            (got.iter().collect(), want.iter().collect());
        let missing: Vec<_> = w.difference(&g).take(5).collect();
        let extra: Vec<_> = g.difference(&w).take(5).collect();
        panic!(
            "{}: {} assignments held, {} at Apple; missing {missing:?}; extra {extra:?}",
            store.backend(),
            got.len(),
            want.len()
        );
    }
    let want_assets: BTreeMap<String, (i64, i64, i64)> = state["assets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                a["adamId"].as_str().unwrap().to_owned(),
                (
                    a["totalCount"].as_i64().unwrap(),
                    a["assignedCount"].as_i64().unwrap(),
                    a["availableCount"].as_i64().unwrap(),
                ),
            )
        })
        .collect();
    let got_assets: BTreeMap<String, (i64, i64, i64)> = store
        .assets(token_id)
        .await
        .unwrap()
        .into_iter()
        .map(|a| (a.adam_id, (a.total, a.assigned, a.available)))
        .collect();
    assert_eq!(
        got_assets,
        want_assets,
        "{}: assets and counts",
        store.backend()
    );
    let mut want_users: BTreeMap<String, String> = BTreeMap::new();
    for u in state["users"].as_array().unwrap() {
        let id = u["clientUserId"].as_str().unwrap().to_owned();
        let status = u["status"].as_str().unwrap().to_owned();
        let active = status == "Registered" || status == "Associated";
        if active || !want_users.contains_key(&id) {
            want_users.insert(id, status);
        }
    }
    let got_users: BTreeMap<String, String> = store
        .users(token_id)
        .await
        .unwrap()
        .into_iter()
        .map(|u| (u.client_user_id, u.status))
        .collect();
    assert_eq!(got_users, want_users, "{}: users", store.backend());
}

#[tokio::test]
async fn adding_a_token_claims_the_location_and_a_full_sync_copies_it_exactly() {
    let env = Env::start(SCENARIO).await;
    let (uid, token, _) = env.tokens().await;
    for db in TestDb::both().await {
        let engine = env.engine(&db, Duration::from_secs(60));
        let t = engine
            .add_token(add("HQ", &format!("{token}\n")))
            .await
            .unwrap();
        assert_eq!(
            (t.uid.as_str(), t.claim, t.org_name.as_str()),
            (uid.as_str(), Claim::Ours, "Generated Organization 11")
        );
        assert!(t.location_name.ends_with("HQ"));
        let state = env.get(&format!("state?uId={uid}")).await;
        assert_eq!(
            state["locations"][0]["mdmInfo"]["id"], "allot-test-instance",
            "the location is claimed"
        );
        let out = engine.sync(t.id, SyncKind::Full, "added").await.unwrap();
        assert_eq!(out.kind, SyncKind::Full);
        assert_eq!(out.counts.assignments_added, 600);
        assert_same(&env, &engine, t.id, &uid).await;
        let t = engine.store().token(t.id).await.unwrap().unwrap();
        assert!(
            t.assignments_version.is_some() && t.last_full_sync_at.is_some() && !t.full_sync_wanted
        );
        let run = engine.store().latest_sync_run(t.id).await.unwrap().unwrap();
        assert_eq!((run.status.as_str(), run.pages), ("succeeded", 12));
        // App names came with it.
        let (apps, total) = engine
            .store()
            .app_licenses(&allot_store::AppFilter {
                limit: 100,
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(total, 8);
        assert!(
            apps.iter()
                .all(|a| a.name.is_some() && a.icon_url.is_some()),
            "{}",
            db.backend()
        );
        // The next test round starts from an unclaimed location.
        env.control(&format!("locations/{uid}/claim"), json!({ "id": "nobody" }))
            .await;
        engine.take_over(t.id).await.unwrap();
    }
}

#[tokio::test]
async fn bad_tokens_get_clear_errors_and_duplicates_are_refused() {
    let env = Env::start(SCENARIO).await;
    let (_, token, claimed) = env.tokens().await;
    let db = TestDb::sqlite().await;
    let engine = env.engine(&db, Duration::from_secs(60));
    let err = engine
        .add_token(add("X", "definitely not a token"))
        .await
        .unwrap_err();
    assert!(matches!(err, TokenError::Malformed(_)), "{err}");
    assert!(err.to_string().contains("not base64"));
    let expired = allot_apple_wire::ContentToken::issue(
        "x",
        chrono::Utc::now() - chrono::Duration::days(1),
        "Org",
    );
    assert!(matches!(
        engine
            .add_token(add("X", expired.as_bearer()))
            .await
            .unwrap_err(),
        TokenError::Expired(_)
    ));
    let unknown = allot_apple_wire::ContentToken::issue(
        "x",
        chrono::Utc::now() + chrono::Duration::days(9),
        "Org",
    );
    let err = engine
        .add_token(add("X", unknown.as_bearer()))
        .await
        .unwrap_err();
    assert!(matches!(err, TokenError::Rejected(_)), "{err}");
    assert!(matches!(
        engine.add_token(add("  ", &token)).await.unwrap_err(),
        TokenError::Invalid(_)
    ));

    let t = engine.add_token(add("HQ", &token)).await.unwrap();
    let err = engine.add_token(add("HQ again", &token)).await.unwrap_err();
    assert!(matches!(err, TokenError::DuplicateLocation { .. }), "{err}");
    assert!(err.to_string().contains("renew"));
    assert!(matches!(
        engine.add_token(add("HQ", &claimed)).await.unwrap_err(),
        TokenError::DuplicateName(_)
    ));
    // Renewing with another location's file is refused; nothing stored is lost.
    let err = engine.renew_token(t.id, &claimed).await.unwrap_err();
    assert!(matches!(err, TokenError::WrongLocation { .. }), "{err}");
    // Both locations are named, not only numbered.
    assert!(
        err.to_string()
            .contains("location Claimed, uId 3000000000000001"),
        "{err}"
    );
    assert_eq!(engine.store().tokens().await.unwrap().len(), 1);
}

#[tokio::test]
async fn another_mdms_location_is_read_but_not_claimed_until_taken_over() {
    let env = Env::start(SCENARIO).await;
    let (_, _, claimed) = env.tokens().await;
    for db in TestDb::both().await {
        let engine = env.engine(&db, Duration::from_secs(60));
        let t = engine.add_token(add("Claimed", &claimed)).await.unwrap();
        assert_eq!(t.claim, Claim::OtherMdm);
        assert!(t.other_mdm.as_deref().unwrap().contains("Legacy MDM"));
        let state = env.get("state?uId=3000000000000001").await;
        assert_eq!(
            state["locations"][0]["mdmInfo"]["id"], "someone-else",
            "not overwritten"
        );
        engine.sync(t.id, SyncKind::Full, "added").await.unwrap();
        assert_same(&env, &engine, t.id, "3000000000000001").await;
        assert_eq!(
            env.get("state?uId=3000000000000001").await["locations"][0]["mdmInfo"]["id"],
            "someone-else",
            "a sync changes nothing there"
        );
        let t = engine.take_over(t.id).await.unwrap();
        assert_eq!(t.claim, Claim::Ours);
        assert_eq!(
            env.get("state?uId=3000000000000001").await["locations"][0]["mdmInfo"]["id"],
            "allot-test-instance"
        );
        // Give it back for the next backend's round.
        env.control(
            "locations/3000000000000001/claim",
            json!({ "id": "someone-else", "name": "Legacy MDM", "metadata": "7.2" }),
        )
        .await;
        // A sync notices the location was taken from us.
        let out = engine.sync(t.id, SyncKind::Delta, "manual").await.unwrap();
        assert!(out.warning.unwrap().contains("another MDM"));
        assert_eq!(
            engine.store().token(t.id).await.unwrap().unwrap().claim,
            Claim::OtherMdm
        );
    }
}

#[tokio::test]
async fn delta_syncs_follow_changes_including_removals_in_few_requests() {
    let env = Env::start(SCENARIO).await;
    let (uid, token, _) = env.tokens().await;
    for db in TestDb::both().await {
        let engine = env.engine(&db, Duration::from_secs(60));
        let t = engine.add_token(add("HQ", &token)).await.unwrap();
        engine.sync(t.id, SyncKind::Full, "added").await.unwrap();

        // Nothing changed: a handful of requests.
        let before = env.requests().await;
        let out = engine
            .sync(t.id, SyncKind::Delta, "schedule")
            .await
            .unwrap();
        let spent = env.requests().await - before;
        assert_eq!(out.kind, SyncKind::Delta);
        assert_eq!(
            out.counts.assignments_added + out.counts.assignments_removed,
            0
        );
        assert!(
            spent <= 6,
            "{}: a no-change delta cost {spent} requests",
            db.backend()
        );

        // Changes at Apple: one new device license, one removed, a user created, a purchase.
        let state = env.get(&format!("state?uId={uid}")).await["locations"][0].clone();
        let device_asset = state["assets"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["deviceAssignable"] == true && a["availableCount"].as_i64().unwrap() > 0)
            .unwrap()["adamId"]
            .as_str()
            .unwrap()
            .to_owned();
        let held = state["assignments"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["serialNumber"].is_string())
            .unwrap()
            .clone();
        env.apple_post(
            &token,
            "assets/associate",
            json!({ "assets": [{ "adamId": device_asset }], "serialNumbers": ["NEWDEVICE"] }),
        )
        .await;
        env.apple_post(&token, "assets/disassociate", json!({ "assets": [{ "adamId": held["adamId"] }], "serialNumbers": [held["serialNumber"]] })).await;
        env.apple_post(
            &token,
            "users/create",
            json!({ "users": [{ "clientUserId": "new-user" }] }),
        )
        .await;
        env.control(
            &format!("locations/{uid}/purchase"),
            json!({ "adamId": device_asset, "count": 7 }),
        )
        .await;
        let out = engine
            .sync(t.id, SyncKind::Delta, "schedule")
            .await
            .unwrap();
        assert_eq!(out.kind, SyncKind::Delta);
        assert_eq!(
            (out.counts.assignments_added, out.counts.assignments_removed),
            (1, 1),
            "{}",
            db.backend()
        );
        assert_same(&env, &engine, t.id, &uid).await;
        // Undo for the next backend's round.
        env.apple_post(
            &token,
            "assets/disassociate",
            json!({ "assets": [{ "adamId": device_asset }], "serialNumbers": ["NEWDEVICE"] }),
        )
        .await;
        env.apple_post(&token, "assets/associate", json!({ "assets": [{ "adamId": held["adamId"] }], "serialNumbers": [held["serialNumber"]] })).await;
        env.apple_post(
            &token,
            "users/retire",
            json!({ "users": [{ "clientUserId": "new-user" }] }),
        )
        .await;
        env.control(&format!("locations/{uid}/claim"), json!({ "id": "nobody" }))
            .await;
    }
}

#[tokio::test]
async fn a_walk_over_data_that_changes_still_ends_exact() {
    let env = Env::start(SCENARIO).await;
    let (uid, token, _) = env.tokens().await;
    for db in TestDb::both().await {
        let engine = env.engine(&db, Duration::from_secs(60));
        let t = engine.add_token(add("HQ", &token)).await.unwrap();
        env.control("faults", json!([{ "kind": "writeAfterPage", "page": 2, "endpoint": "assignments" },
                                     { "kind": "writeAfterPage", "page": 7, "endpoint": "assignments" }])).await;
        engine.sync(t.id, SyncKind::Full, "added").await.unwrap();
        assert_same(&env, &engine, t.id, &uid).await;
        // And a removal between pages, which shifts every later record one place forward.
        let state = env.get(&format!("state?uId={uid}")).await["locations"][0].clone();
        let first = state["assignments"][0].clone();
        let holder = if first["serialNumber"].is_string() {
            json!({ "serialNumbers": [first["serialNumber"]] })
        } else {
            json!({ "clientUserIds": [first["clientUserId"]] })
        };
        let mut body = json!({ "assets": [{ "adamId": first["adamId"] }] });
        body.as_object_mut()
            .unwrap()
            .extend(holder.as_object().unwrap().clone());
        env.settings(json!({ "eventDelayMs": 0 })).await;
        let res = env
            .http
            .post(format!("{}/mdm/v2/assets/disassociate", env.sim.base_url))
            .bearer_auth(&token)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert!(res.status().is_success());
        env.control("events/run", json!({})).await;
        engine.sync(t.id, SyncKind::Full, "manual").await.unwrap();
        assert_same(&env, &engine, t.id, &uid).await;
        env.control(&format!("locations/{uid}/claim"), json!({ "id": "nobody" }))
            .await;
    }
}

#[tokio::test]
async fn a_sync_killed_half_way_is_finished_by_the_next_without_duplicates() {
    let env = Env::start(SCENARIO).await;
    let (uid, token, _) = env.tokens().await;
    for db in TestDb::both().await {
        // The lease outlives the test's steps on a loaded machine, then lapses.
        let lease = Duration::from_secs(6);
        let first = env.engine(&db, lease);
        let t = first.add_token(add("HQ", &token)).await.unwrap();
        env.control(
            "faults",
            json!({ "kind": "slow", "delayMs": 150, "count": 100, "endpoint": "assignments" }),
        )
        .await;
        let task = tokio::spawn({
            let e = first.clone();
            async move { e.sync(t.id, SyncKind::Full, "added").await }
        });
        // Let it store a few pages, then kill it as a crash would.
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        while db.store.count_assignments(t.id).await.unwrap() < 100 {
            assert!(
                std::time::Instant::now() < deadline,
                "the sync did not start"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        task.abort();
        let _ = task.await;
        env.http
            .delete(format!("{}/_sim/faults", env.sim.base_url))
            .send()
            .await
            .unwrap();
        let partial = db.store.count_assignments(t.id).await.unwrap();
        assert!(partial < 600, "killed half-way ({partial})");

        // A restarted process: another lease owner, which must wait for the lease to lapse.
        let second = env.engine(&db, lease);
        assert!(matches!(
            second.sync(t.id, SyncKind::Delta, "schedule").await,
            Err(SyncError::AlreadyRunning)
        ));
        tokio::time::sleep(lease + Duration::from_millis(100)).await;
        assert_eq!(
            second.schedule_once(allot_sync_now()).await.unwrap(),
            1,
            "the schedule sees the interrupted token as due"
        );
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        loop {
            let run = db.store.latest_sync_run(t.id).await.unwrap().unwrap();
            if run.status == "succeeded" {
                assert_eq!(
                    run.kind, "full",
                    "an interrupted full sync is redone in full"
                );
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "the resumed sync did not finish: {run:?}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_same(&env, &second, t.id, &uid).await;
        let runs: Vec<_> = ["interrupted", "succeeded"].to_vec();
        let first_run = db
            .store
            .sync_run(db.store.latest_sync_run(t.id).await.unwrap().unwrap().id - 1)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(first_run.status, runs[0]);
        env.control(&format!("locations/{uid}/claim"), json!({ "id": "nobody" }))
            .await;
    }
}

/// One instance (one lease name) used to accept its own lease again: a manual sync and the
/// schedule's ran side by side, up to three walks of one token against Apple's rate.
#[tokio::test]
async fn one_sync_of_a_token_at_a_time_within_an_instance_and_after_a_restart() {
    let env = Env::start(SCENARIO).await;
    let (uid, token, _) = env.tokens().await;
    for db in TestDb::both().await {
        let lease = Duration::from_secs(60);
        let engine = env.engine_named(&db, lease, Some("allot-instance-a"));
        let t = engine.add_token(add("HQ", &token)).await.unwrap();
        // Slow enough that the walk is still under way when the process "dies".
        env.control(
            "faults",
            json!({ "kind": "slow", "delayMs": 3000, "count": 100, "endpoint": "assignments" }),
        )
        .await;
        let task = tokio::spawn({
            let e = engine.clone();
            async move { e.sync(t.id, SyncKind::Full, "manual").await }
        });
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        while engine.progress(t.id).is_none() {
            assert!(std::time::Instant::now() < deadline, "no sync started");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let run = engine.progress(t.id).unwrap().run_id;
        for _ in 0..3 {
            assert!(matches!(
                engine.start_sync(t.id, SyncKind::Full, "manual").await,
                Err(SyncError::AlreadyRunning)
            ));
        }
        // Make the token due: the schedule must not start another walk either.
        db.store.set_full_sync_wanted(t.id, true).await.unwrap();
        assert_eq!(engine.schedule_once(allot_sync_now()).await.unwrap(), 0);
        // The process dies mid-walk; the same instance restarted takes the token back at once,
        // without waiting a minute for the lease to lapse.
        task.abort();
        let _ = task.await;
        drop(engine);
        let restarted = env.engine_named(&db, lease, Some("allot-instance-a"));
        let other = env.engine_named(&db, lease, Some("allot-instance-b"));
        assert!(matches!(
            other.sync(t.id, SyncKind::Full, "manual").await,
            Err(SyncError::AlreadyRunning)
        ));
        env.http
            .delete(format!("{}/_sim/faults", env.sim.base_url))
            .send()
            .await
            .unwrap();
        assert!(restarted.recover_after_restart().await.unwrap() >= 1);
        assert_eq!(
            db.store.sync_run(run).await.unwrap().unwrap().status,
            "interrupted"
        );
        restarted
            .sync(t.id, SyncKind::Full, "manual")
            .await
            .unwrap();
        assert_same(&env, &restarted, t.id, &uid).await;
        env.control(&format!("locations/{uid}/claim"), json!({ "id": "nobody" }))
            .await;
    }
}

fn allot_sync_now() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

#[tokio::test]
async fn a_database_restored_from_an_older_backup_is_fully_resynced() {
    let env = Env::start(SCENARIO).await;
    let (uid, token, _) = env.tokens().await;
    let db = TestDb::sqlite().await;
    let engine = env.engine(&db, Duration::from_secs(60));
    let t = engine.add_token(add("HQ", &token)).await.unwrap();
    engine.sync(t.id, SyncKind::Full, "added").await.unwrap();
    // A file-level backup of a WAL database takes the WAL with it.
    let backup = std::env::temp_dir().join(format!("allot-backup-{}.db", std::process::id()));
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::copy(
            format!("{}{suffix}", db.url),
            format!("{}{suffix}", backup.display()),
        );
    }
    engine
        .sync(t.id, SyncKind::Delta, "schedule")
        .await
        .unwrap();
    env.apple_post(
        &token,
        "assets/revoke",
        json!({ "serialNumbers": ["G1000000000", "G1000000001", "G1000000002"] }),
    )
    .await;
    engine
        .sync(t.id, SyncKind::Delta, "schedule")
        .await
        .unwrap();

    // The administrator restores yesterday's file.
    let restored = allot_store::Store::connect(&backup.to_string_lossy())
        .await
        .unwrap();
    let mut opts = ClientOptions::new(&env.sim.apple_url());
    opts.backoff = Duration::from_millis(10);
    let instance = Instance {
        id: "allot-test-instance".into(),
        name: "Allot".into(),
        version: "test".into(),
        public_url: None,
    };
    let engine = SyncEngine::new(
        restored,
        AppleClient::new(opts),
        SecretBox::from_base64(KEY).unwrap(),
        instance,
        SyncConfig::default(),
    );
    let out = engine
        .sync(t.id, SyncKind::Delta, "schedule")
        .await
        .unwrap();
    assert_eq!((out.kind, out.reason.as_str()), (SyncKind::Full, "restore"));
    assert_same(&env, &engine, t.id, &uid).await;
    for suffix in ["", "-wal", "-shm"] {
        std::fs::remove_file(format!("{}{suffix}", backup.display())).ok();
    }
}

#[tokio::test]
async fn expired_revoked_and_unknown_versions() {
    let env = Env::start(SCENARIO).await;
    let (uid, token, _) = env.tokens().await;
    let db = TestDb::postgres().await;
    let engine = env.engine(&db, Duration::from_secs(60));
    let t = engine.add_token(add("HQ", &token)).await.unwrap();
    engine.sync(t.id, SyncKind::Full, "added").await.unwrap();
    // Apple forgot our version: the delta becomes a full sync by itself.
    sqlx_free_set_version(&engine, t.id).await;
    let out = engine
        .sync(t.id, SyncKind::Delta, "schedule")
        .await
        .unwrap();
    assert_eq!(
        (out.kind, out.reason.as_str()),
        (SyncKind::Full, "version_expired")
    );
    assert_same(&env, &engine, t.id, &uid).await;

    env.control(&format!("locations/{uid}/token/revoke"), json!({}))
        .await;
    let err = engine
        .sync(t.id, SyncKind::Delta, "manual")
        .await
        .unwrap_err();
    assert!(err.to_string().contains("revoked"), "{err}");
    let row = engine.store().token(t.id).await.unwrap().unwrap();
    assert_eq!(row.auth_error, Some(9625));
    assert!(row.last_error.as_deref().unwrap().contains("revoked"));
    assert_eq!(
        allot_sync::next_due(
            &row,
            Duration::from_secs(60),
            Duration::from_secs(600),
            allot_sync_now()
        ),
        None
    );
    // Renewing with the new file brings it back.
    let renewed = env
        .control(&format!("locations/{uid}/token/renew"), json!({}))
        .await;
    let row = engine
        .renew_token(t.id, renewed["token"].as_str().unwrap())
        .await
        .unwrap();
    assert_eq!(row.auth_error, None);
    engine.sync(t.id, SyncKind::Delta, "manual").await.unwrap();
    assert_same(&env, &engine, t.id, &uid).await;
}

/// Stores a version Apple never issued.
async fn sqlx_free_set_version(engine: &SyncEngine, id: i64) {
    let t = engine.store().token(id).await.unwrap().unwrap();
    engine
        .store()
        .mark_synced(
            id,
            true,
            Some("70e8c740-514c-11eb-bb63-a90b882fcd52"),
            t.users_version.as_deref(),
            t.sync_serial,
            allot_sync_now(),
        )
        .await
        .unwrap();
}

#[tokio::test]
async fn rate_limits_and_outages_slow_a_sync_down_but_do_not_break_it() {
    let env =
        Env::start(&SCENARIO.replace("\"maxRequestPerSecond\": 0", "\"maxRequestPerSecond\": 20"))
            .await;
    let (uid, token, _) = env.tokens().await;
    let db = TestDb::sqlite().await;
    let engine = env.engine(&db, Duration::from_secs(60));
    let t = engine.add_token(add("HQ", &token)).await.unwrap();
    env.control(
        "faults",
        json!([{ "kind": "unavailable", "retryAfter": 1, "count": 2, "endpoint": "assignments" },
                                 { "kind": "rateLimited", "retryAfter": 1, "endpoint": "users" },
                                 { "kind": "internal", "endpoint": "assets" }]),
    )
    .await;
    engine.sync(t.id, SyncKind::Full, "added").await.unwrap();
    assert_same(&env, &engine, t.id, &uid).await;
    let stats = env.get("stats").await;
    assert_eq!(stats["faultsServed"], 4);
}

/// Without the token as the `itvt` cookie Apple's lookup does not name custom (B2B) apps; a
/// synced custom app has its name and icon.
#[tokio::test]
async fn custom_apps_get_their_names_from_the_lookup() {
    let env = Env::start(SCENARIO).await;
    let (uid, token, _) = env.tokens().await;
    env.control(
        &format!("locations/{uid}/purchase"),
        json!({ "adamId": "7700001", "count": 3, "name": "Acme Field Tool", "isB2BCustomApp": true }),
    )
    .await;
    for db in TestDb::both().await {
        let engine = env.engine(&db, Duration::from_secs(60));
        let t = engine.add_token(add("HQ", &token)).await.unwrap();
        engine.sync(t.id, SyncKind::Full, "added").await.unwrap();
        let m = db
            .store
            .metadata("7700001")
            .await
            .unwrap()
            .expect("metadata");
        assert_eq!(m.name, "Acme Field Tool");
        assert!(m.icon_url.is_some_and(|u| u.contains("512x512bb.png")));
        env.control(&format!("locations/{uid}/claim"), json!({ "id": "nobody" }))
            .await;
    }
}

/// Several instances share the due tokens: an instance leases a due token only when one of its
/// slots can run it at once, so the others take the rest (it used to lease every due token and
/// queue them behind its slots, where another instance could not have them and a lease could
/// run out before its sync began).
#[tokio::test]
async fn an_instance_leases_only_the_due_tokens_it_can_run_now() {
    const THREE: &str = r#"{
      "settings": { "eventDelayMs": 0, "tickMs": 5, "limits": { "maxRequestPerSecond": 0 } },
      "generate": [ { "seed": 5, "locations": 3, "assets": 2, "users": 5, "serialNumbers": 5, "assignments": 10 } ]
    }"#;
    let env = Env::start(THREE).await;
    let locations = env.get("locations").await;
    for db in TestDb::both().await {
        let one_slot = |owner: &str| SyncConfig {
            max_concurrent: 1,
            lease_owner: Some(owner.to_owned()),
            ..Default::default()
        };
        let (a, b) = (
            env.engine_with(&db, one_slot("instance-a")),
            env.engine_with(&db, one_slot("instance-b")),
        );
        let mut ids = Vec::new();
        for (i, l) in locations.as_array().unwrap().iter().enumerate() {
            let t = a
                .add_token(add(&format!("School {i}"), l["token"].as_str().unwrap()))
                .await
                .unwrap();
            ids.push(t.id);
        }
        // Slow walks: every token is still syncing when the leases are counted.
        env.control(
            "faults",
            json!({ "kind": "slow", "delayMs": 2000, "count": 100, "endpoint": "assignments" }),
        )
        .await;
        let now = allot_sync_now();
        assert_eq!(a.schedule_once(now).await.unwrap(), 1, "one slot, one sync");
        assert_eq!(
            b.schedule_once(now).await.unwrap(),
            1,
            "the second instance takes a token the first did not lease"
        );
        let mut owners = Vec::new();
        for id in &ids {
            let t = db.store.token(*id).await.unwrap().unwrap();
            if t.lease_until.is_some_and(|u| u > now) {
                owners.push(t.lease_owner.unwrap_or_default());
            }
        }
        owners.sort();
        assert_eq!(
            owners.len(),
            2,
            "the third token waits unleased: {owners:?}"
        );
        assert!(owners[0].starts_with("instance-a/") && owners[1].starts_with("instance-b/"));
        env.http
            .delete(format!("{}/_sim/faults", env.sim.base_url))
            .send()
            .await
            .unwrap();
    }
}
