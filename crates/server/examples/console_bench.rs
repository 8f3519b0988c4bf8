//! How fast the console's pages are for a large organization: 3,000 tokens, 50,000 apps and
//! books (one row per app per token), 1,000,000 assignments, 500,000 devices and 50,000 people,
//! on SQLite (or PostgreSQL). Each page is fetched over HTTP, signed in, 20 times (`FETCHES`);
//! the median, the p95 and the largest time are printed with the page's size. Before the pages, a
//! rule-based collection over the 500,000 devices is previewed, created and re-evaluated (as
//! every reconcile pass does), each timed.
//!
//!     cargo run --release -p allot-server --example console_bench [-- postgres://… | bench.db]
//!
//! Given a database that an earlier run filled (a SQLite file's path, or PostgreSQL), the set-up
//! is skipped and its pages are measured as they are; `PAGES=/users,/` measures only those.

use std::time::{Duration, Instant};

use allot_domain::{Claim, Program};
use allot_server::{Config, Server};
use allot_store::{AssetRow, AssignmentRow, Holder, MetadataRow, NewToken, Store};

const TOKENS: usize = 3_000;
const APPS: usize = 50_000;
const ASSIGNMENTS: usize = 1_000_000;
/// App rows holding the assignments, 500 each.
const HELD: usize = ASSIGNMENTS / 500;
const PASSWORD: &str = "console-bench-password";
const DEVICES: usize = 500_000;
const PEOPLE: usize = 50_000;

/// 50,000 people in 20 departments, and 500,000 devices (a fifth of them iPads, one in ten with a
/// user), written as imports write them.
async fn inventory(store: &Store) -> Result<(), Box<dyn std::error::Error>> {
    let now = allot_sync::now_ms();
    let people: Vec<(allot_store::NewPerson, String)> = (0..PEOPLE)
        .map(|i| {
            (
                allot_store::NewPerson {
                    name: format!("Person {i:05}"),
                    email: Some(format!("p{i}@d{}.example", i % 5)),
                    managed_apple_id: None,
                    department: Some(format!("Department {}", i % 20)),
                },
                format!("cu-{i}"),
            )
        })
        .collect();
    store.upsert_people(&people, now).await?;
    let first_person = store.people(None, None, 1, 0).await?.0[0].id;
    let devices: Vec<allot_store::NewDevice> = (0..DEVICES)
        .map(|i| allot_store::NewDevice {
            serial_number: format!("DEV{i:07}"),
            enrollment_id: Some(format!("UDID-{i}")),
            platform: ["iOS", "iOS", "iPadOS", "macOS", "iOS"][i % 5].into(),
            model: [
                "iPhone15,2",
                "iPhone14,7",
                "iPad13,1",
                "MacBookAir10,1",
                "iPhone16,1",
            ][i % 5]
                .into(),
            name: format!("Device {i}"),
            primary_person_id: (i % 10 == 0).then(|| first_person + (i / 10 % PEOPLE) as i64),
            os_version: Some(["17.4", "16.7", "17.2", "15.1", "18.0"][i % 5].into()),
        })
        .collect();
    for chunk in devices.chunks(5_000) {
        store.upsert_devices(chunk, now).await?;
    }
    Ok(())
}

/// A rule over the devices: previewed, created (its members written), re-evaluated with nothing
/// changed (a reconcile pass), and after 1,000 devices changed model.
async fn rule_figures(store: &Store) -> Result<i64, Box<dyn std::error::Error>> {
    let rule = allot_domain::MembershipRule {
        platforms: vec!["iPadOS".into()],
        model_contains: Some("ipad".into()),
        ..Default::default()
    };
    let t = Instant::now();
    let (n, _) = store.preview_rule("devices", &rule, 50).await?;
    println!(
        "rule preview (platform and model over {DEVICES} devices): {n} match, {:.0} ms",
        t.elapsed().as_secs_f64() * 1000.0
    );
    let t = Instant::now();
    let c = store
        .insert_collection_with_rule(
            "Every iPad",
            "devices",
            "",
            Some(&rule),
            allot_sync::now_ms(),
        )
        .await?;
    println!(
        "rule collection created: {} members written in {:.0} ms",
        c.members,
        t.elapsed().as_secs_f64() * 1000.0
    );
    let t = Instant::now();
    let changed = store.refresh_rule_collections(allot_sync::now_ms()).await?;
    println!(
        "a reconcile pass right after the inventory changed (evaluated again, nothing moved: {changed:?}): {:.0} ms",
        t.elapsed().as_secs_f64() * 1000.0
    );
    // Two minutes on with the inventory quiet: the pass finds nothing changed since and skips it.
    let later = allot_sync::now_ms() + 120_000;
    store.set_collection_rule(c.id, Some(&rule), later).await?;
    let t = Instant::now();
    let changed = store.refresh_rule_collections(later + 1_000).await?;
    println!(
        "a reconcile pass with the inventory quiet since the last evaluation ({changed:?}): {:.1} ms",
        t.elapsed().as_secs_f64() * 1000.0
    );
    let moved: Vec<allot_store::NewDevice> = (0..1_000)
        .map(|k| allot_store::NewDevice {
            serial_number: format!("DEV{:07}", k * 5 + 2),
            platform: "macOS".into(),
            model: "MacBookAir10,1".into(),
            ..Default::default()
        })
        .collect();
    store.upsert_devices(&moved, later + 2_000).await?;
    let t = Instant::now();
    let changed = store.refresh_rule_collections(later + 3_000).await?;
    println!(
        "re-evaluated after 1,000 devices changed ({changed:?}): {:.0} ms",
        t.elapsed().as_secs_f64() * 1000.0
    );
    Ok(c.id)
}

fn token(i: usize) -> NewToken {
    NewToken {
        name: format!("Location {i:04}"),
        description: String::new(),
        categories: vec![format!("region-{}", i % 12), "bench".into()],
        apple_account: String::new(),
        program: if i.is_multiple_of(3) {
            Program::Education
        } else {
            Program::Business
        },
        uid: format!("7{i:09}"),
        org_name: format!("District {}", i / 100),
        location_name: format!("Location {i:04}"),
        country: "US".into(),
        secret: vec![0; 48],
        notification_secret: None,
        expires_at: allot_sync::now_ms() + (i as i64 % 365) * 86_400_000,
        claim: Claim::Ours,
        other_mdm: None,
    }
}

async fn fill(store: &Store) -> Result<Vec<(i64, String)>, Box<dyn std::error::Error>> {
    let now = allot_sync::now_ms();
    let per_token = APPS / TOKENS + 1;
    let mut apps = Vec::with_capacity(APPS);
    let mut metadata = Vec::new();
    for i in 0..TOKENS {
        let t = store.insert_token(&token(i), now).await?;
        // Each token has synced (a full sync, then changes); one in a hundred failed last.
        for (kind, status) in [
            ("full", "succeeded"),
            ("delta", if i % 100 == 7 { "failed" } else { "succeeded" }),
        ] {
            let run = store.start_sync_run(t.id, kind, "schedule", now).await?;
            store
                .finish_sync_run(run, status, Default::default(), None, now)
                .await?;
        }
        let first = apps.len();
        let rows: Vec<AssetRow> = (0..per_token)
            .take(APPS - first.min(APPS))
            .map(|k| {
                let adam = format!("{}", 1_500_000_000 + (i * 7 + k) % 20_000);
                // The first HELD rows get 500 assignments each below.
                let assigned = if first + k < HELD {
                    500
                } else {
                    ((i + k) % 40) as i64
                };
                let total = assigned + 2 + ((i + k) % 300) as i64;
                AssetRow {
                    adam_id: adam,
                    pricing: "STDQ".into(),
                    product_type: if k.is_multiple_of(9) { "Book" } else { "App" }.into(),
                    total,
                    assigned,
                    available: total - assigned,
                    retired: 0,
                    device_assignable: !k.is_multiple_of(9),
                    revocable: true,
                    unlimited: false,
                    platforms: vec![if k.is_multiple_of(5) { "macOS" } else { "iOS" }.into()],
                }
            })
            .collect();
        store.upsert_assets(t.id, &rows, 1, now).await?;
        apps.extend(rows.into_iter().map(|a| (t.id, a.adam_id)));
    }
    for k in 0..20_000 {
        metadata.push(MetadataRow {
            adam_id: format!("{}", 1_500_000_000 + k),
            name: format!("Bench App {k:05}"),
            bundle_id: Some(format!("com.bench.app{k}")),
            icon_url: None,
            platforms: vec!["iOS".into()],
            version: Some("1.0".into()),
            kind: None,
            artist: None,
            genre: None,
            device_licensing: true,
            ..Default::default()
        });
    }
    for chunk in metadata.chunks(1000) {
        store.upsert_metadata(chunk, now).await?;
    }
    // 1,000,000 assignments over the first HELD app rows (500 each), as a sync writes them.
    let held: Vec<&(i64, String)> = apps.iter().take(HELD).collect();
    for (n, (token_id, adam)) in held.iter().enumerate() {
        let rows: Vec<AssignmentRow> = (0..500)
            .map(|h| AssignmentRow {
                adam_id: adam.clone(),
                pricing: "STDQ".into(),
                holder: Holder::Device(format!("SER{n:05}{h:04}")),
            })
            .collect();
        store.upsert_assignments(*token_id, &rows, 1).await?;
    }
    // One history point per asset, as a sync leaves it.
    let mut done = std::collections::BTreeSet::new();
    for (token_id, _) in &apps {
        if done.insert(*token_id) {
            store.record_license_history(*token_id, now).await?;
        }
    }
    Ok(apps)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // A database given by its path or URL is kept, with the server's key beside it in a folder
    // of its own; without one, everything goes in a temporary folder removed at the end.
    let kept = std::env::args().nth(1);
    let dir = match &kept {
        Some(_) => std::env::temp_dir().join("allot-console-bench-kept"),
        None => std::env::temp_dir().join(format!("allot-console-bench-{}", std::process::id())),
    };
    std::fs::create_dir_all(&dir)?;
    let url = kept
        .clone()
        .unwrap_or_else(|| dir.join("bench.db").to_string_lossy().into_owned());
    let started = Instant::now();
    let store = Store::connect(&url).await?;
    // A database kept from an earlier run (its path given) is measured as it is: the pages of a
    // change can be timed again in seconds rather than after another set-up.
    let (busy_token, busy_app, rule_collection) = if store.token_labels().await?.len() >= TOKENS {
        let busy = store.tokens_page(None, 1, 0).await?.0[0].id;
        let app = store.assets(busy).await?[0].adam_id.clone();
        let rule = store.collections().await?[0].id;
        println!("measuring the database kept at {url} (no set-up)");
        (busy, app, rule)
    } else {
        let apps = fill(&store).await?;
        inventory(&store).await?;
        println!(
            "{TOKENS} tokens, {} app rows, {ASSIGNMENTS} assignments, {DEVICES} devices, {PEOPLE} people stored in {:.1} s (set-up, not measured below)",
            apps.len(),
            started.elapsed().as_secs_f64()
        );
        let (busy, app) = apps[0].clone();
        (busy, app, rule_figures(&store).await?)
    };
    // What the server's maintenance does as it starts (statistics; on PostgreSQL without
    // autovacuum, the vacuum it would do), before the pages are measured.
    store.optimize().await?;
    drop(store);
    let config = Config {
        data_dir: dir.clone(),
        database_url: Some(url.clone()),
        apple_url: "http://127.0.0.1:9/mdm/v2/".into(),
        console_admin_password: Some(PASSWORD.into()),
        ..Default::default()
    };
    let server = Server::build(&config).await?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    let router = server.router.clone();
    tokio::spawn(async move { axum::serve(listener, router).await });
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()?;
    let res = http
        .post(format!("{base}/login"))
        .form(&[("username", "admin"), ("password", PASSWORD)])
        .send()
        .await?;
    let cookie = res.headers()["set-cookie"]
        .to_str()?
        .split(';')
        .next()
        .unwrap_or_default()
        .to_owned();
    let pages = [
        "/tokens".to_owned(),
        "/tokens/rows".into(),
        "/apps".into(),
        "/apps?page=500".into(),
        "/apps?search=bench+app+0123".into(),
        "/apps?sort=used".into(),
        "/apps?low=true&platform=macOS".into(),
        "/apps?category=region-3&type=book".into(),
        format!("/apps/{busy_token}/{busy_app}"),
        format!("/apps/{busy_token}/{busy_app}?page=10"),
        "/reports".into(),
        "/deployments".into(),
        "/".into(),
        "/collections".into(),
        format!("/collections/{rule_collection}"),
        format!("/collections/{rule_collection}?page=500"),
        "/devices".into(),
        "/devices?search=DEV04".into(),
        "/devices/DEV0000010".into(),
        "/users".into(),
        "/users?search=person+0420".into(),
        "/account".into(),
    ];
    // 20 fetches a page: enough for a p95 (the 19th of 20), which #15's aim is stated in.
    let fetches: usize = std::env::var("FETCHES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20);
    // `PAGES=/users,/devices` measures only these pages (with any query) or these exact URLs.
    let only: Vec<String> = std::env::var("PAGES")
        .map(|v| v.split(',').map(str::to_owned).collect())
        .unwrap_or_default();
    let pages: Vec<String> = pages
        .into_iter()
        .filter(|p| {
            only.is_empty()
                || only
                    .iter()
                    .any(|o| p == o || p.split('?').next() == Some(o.as_str()))
        })
        .collect();
    println!("{fetches} fetches a page");
    println!("| Page | Median | p95 | Slowest | Size |");
    println!("| --- | --- | --- | --- | --- |");
    for page in &pages {
        let mut times = Vec::new();
        let mut size = 0;
        for _ in 0..fetches {
            let t = Instant::now();
            let res = http
                .get(format!("{base}{page}"))
                .header("cookie", &cookie)
                .send()
                .await?;
            assert_eq!(res.status(), 200, "{page}");
            size = res.bytes().await?.len();
            times.push(t.elapsed());
        }
        times.sort();
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        println!(
            "| `{page}` | {:.0} ms | {:.0} ms | {:.0} ms | {} KiB |",
            ms(times[times.len() / 2]),
            ms(times[(times.len() * 95).div_ceil(100).saturating_sub(1)]),
            ms(times[times.len() - 1]),
            size / 1024
        );
    }
    if kept.is_none() {
        std::fs::remove_dir_all(&dir).ok();
    }
    Ok(())
}
