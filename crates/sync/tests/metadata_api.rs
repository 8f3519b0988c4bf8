//! Apple's metadata API for organizations (§18.2) against the simulator over HTTP, on SQLite and
//! PostgreSQL: a developer token signed with the organization's key, the content token as the
//! `itvt` cookie, the storefront fallback for an app one region sells alone, custom apps, the
//! lookup answering for books and for everything when the API refuses, and 429s waited out.

use std::sync::Arc;
use std::time::Duration;

use allot_apple_client::{AppleClient, CatalogClient, ClientOptions, DeveloperKey};
use allot_apple_sim::RunningSim;
use allot_domain::Program;
use allot_secrets::SecretBox;
use allot_store::testing::TestDb;
use allot_sync::{AddToken, Instance, SyncConfig, SyncEngine, SyncKind};
use p256::ecdsa::SigningKey;
use p256::pkcs8::{EncodePrivateKey, EncodePublicKey, LineEnding};
use serde_json::{json, Value};

const KEY: &str = "AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=";
const KEY_ID: &str = "ABC123DEFG";
const TEAM_ID: &str = "TEAM123456";

/// The organization's developer key (its `.p8`) and the public half Apple holds.
fn developer_key(seed: u8) -> (String, String) {
    let sk = SigningKey::from_bytes(&[seed; 32].into()).unwrap();
    let private = sk.to_pkcs8_pem(LineEnding::LF).unwrap().to_string();
    let public = sk
        .verifying_key()
        .to_public_key_pem(LineEnding::LF)
        .unwrap();
    (private, public)
}

fn scenario(public_key: &str) -> String {
    json!({
      "settings": { "eventDelayMs": 0, "tickMs": 5, "limits": { "maxRequestPerSecond": 0 },
                    "metadataApiPublicKey": public_key, "metadataApiKeyId": KEY_ID,
                    "metadataApiTeamId": TEAM_ID },
      "organizations": [ { "name": "Acme", "locations": [ { "name": "HQ", "uId": "4000000000000001",
        "assets": [
          { "adamId": "800001", "totalCount": 5, "name": "Field Notes", "version": "3.1",
            "minimumOSVersion": "17.2", "supportedPlatforms": ["iOS", "macOS"] },
          { "adamId": "800002", "totalCount": 2, "name": "Tea Timer", "storefronts": ["gb"] },
          { "adamId": "800003", "productType": "Book", "totalCount": 3, "name": "Staff Handbook" },
          { "adamId": "800004", "totalCount": 1, "name": "Acme Inspect", "isB2BCustomApp": true,
            "minimumOSVersion": "18.0" }
        ] } ] } ]
    })
    .to_string()
}

async fn token_of(sim: &RunningSim) -> String {
    let locs: Value = reqwest::get(format!("{}/_sim/locations", sim.base_url))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    locs[0]["token"].as_str().unwrap().to_owned()
}

fn engine(sim: &RunningSim, db: &TestDb, p8: &str) -> SyncEngine {
    let mut opts = ClientOptions::new(&sim.apple_url());
    opts.backoff = Duration::from_millis(10);
    let catalog = CatalogClient::new(
        DeveloperKey::from_p8(KEY_ID, TEAM_ID, p8).unwrap(),
        &allot_trust::Trust::system(),
    )
    .with_base_url(&format!("{}/v1", sim.base_url))
    .with_rate_backoff(Duration::from_millis(20));
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
            catalog: Some(Arc::new(catalog)),
            ..Default::default()
        },
    )
}

fn add(token: &str) -> AddToken {
    AddToken {
        name: "HQ".into(),
        token_text: token.into(),
        description: String::new(),
        categories: vec![],
        apple_account: "vpp@example.com".into(),
        program: Program::Business,
    }
}

async fn stats(sim: &RunningSim) -> Value {
    reqwest::get(format!("{}/_sim/stats", sim.base_url))
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

#[tokio::test]
async fn the_metadata_api_gives_what_compatibility_and_updates_need() {
    let (p8, public) = developer_key(7);
    let sim = allot_apple_sim::start_local(&scenario(&public))
        .await
        .unwrap();
    let token = token_of(&sim).await;
    // Apple asks to slow down once: the sync waits and carries on.
    let fault = json!([{ "kind": "rateLimited", "retryAfter": 1, "endpoint": "catalog" }]);
    reqwest::Client::new()
        .post(format!("{}/_sim/faults", sim.base_url))
        .json(&fault)
        .send()
        .await
        .unwrap();
    for db in TestDb::both().await {
        let engine = engine(&sim, &db, &p8);
        let t = engine.add_token(add(&token)).await.unwrap();
        let out = engine.sync(t.id, SyncKind::Full, "added").await.unwrap();
        assert_eq!(out.warning, None);
        let meta = |id: &'static str| {
            let store = db.store.clone();
            async move { store.metadata(id).await.unwrap().expect(id) }
        };

        let notes = meta("800001").await;
        assert_eq!(notes.name, "Field Notes");
        assert_eq!(
            (notes.source.as_str(), notes.storefront.as_deref()),
            ("metadata-api", Some("us"))
        );
        assert_eq!(notes.minimum_os_version.as_deref(), Some("17.2"));
        assert_eq!(notes.version.as_deref(), Some("3.1"));
        assert_eq!(notes.external_version_id, Some(3_001_000));
        assert_eq!(notes.platforms, vec!["iphone", "ipad", "mac"]);
        assert!(notes.icon_url.unwrap().ends_with("/800001/512x512bb.png"));
        assert!(notes.fetched_at > 0);

        // Sold in the UK alone: found in the next storefront.
        let tea = meta("800002").await;
        assert_eq!(
            (tea.name.as_str(), tea.storefront.as_deref()),
            ("Tea Timer", Some("gb"))
        );
        // The organization's custom app, answered because the cookie is its owner's.
        let inspect = meta("800004").await;
        assert!(inspect.custom_app);
        assert_eq!(inspect.minimum_os_version.as_deref(), Some("18.0"));
        assert_eq!(inspect.source, "metadata-api");
        // Books are not apps: the content metadata lookup names them.
        let book = meta("800003").await;
        assert_eq!(
            (book.name.as_str(), book.source.as_str()),
            ("Staff Handbook", "lookup")
        );
    }
    let s = stats(&sim).await;
    assert_eq!(s["faultsServed"], 1, "{s}");
    // Per database: `us` for the three apps, `gb` for the one still missing, and no storefront
    // more; books never go to the metadata API. Plus the request Apple refused with a 429.
    assert_eq!(s["requests"]["catalog"], 2 * 2 + 1, "{s}");
}

/// A key Apple does not know: the sync still names every app (from the lookup) and says why the
/// metadata API was not used.
#[tokio::test]
async fn a_refused_developer_key_falls_back_to_the_lookup_with_a_warning() {
    let (_, public) = developer_key(7);
    let (other_p8, _) = developer_key(9);
    let sim = allot_apple_sim::start_local(&scenario(&public))
        .await
        .unwrap();
    let token = token_of(&sim).await;
    let db = TestDb::sqlite().await;
    let engine = engine(&sim, &db, &other_p8);
    let t = engine.add_token(add(&token)).await.unwrap();
    let out = engine.sync(t.id, SyncKind::Full, "added").await.unwrap();
    let warning = out.warning.expect("a warning");
    assert!(warning.contains("HTTP 401"), "{warning}");
    assert!(warning.contains("signature does not verify"), "{warning}");
    let notes = db.store.metadata("800001").await.unwrap().unwrap();
    assert_eq!(
        (notes.name.as_str(), notes.source.as_str()),
        ("Field Notes", "lookup")
    );
    assert_eq!(notes.minimum_os_version.as_deref(), Some("17.2"));
}
