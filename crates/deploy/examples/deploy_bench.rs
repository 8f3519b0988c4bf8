//! A Required deployment of one device-licensed app to 100,000 devices: Apple calls made against
//! the minimum, time, peak memory; then one reconcile pass over the targets, all already true,
//! which must write nothing. The simulator runs as its own process; no MDM is configured,
//! so this measures the licensing half (installs are one enqueue per 100 devices).
//!
//!     cargo build --release && cargo run --release -p allot-deploy --example deploy_bench [-- DEVICES]

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use allot_apple_client::{AppleClient, ClientOptions};
use allot_deploy::Executor;
use allot_domain::Program;
use allot_secrets::SecretBox;
use allot_store::{NewDeployment, NewDevice, Store};
use allot_sync::{AddToken, Instance, SyncConfig, SyncEngine, SyncKind};

struct Sim(Child);

impl Drop for Sim {
    fn drop(&mut self) {
        let _ = self.0.kill();
    }
}

fn peak_rss_mib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse::<u64>().ok())
        })
        .unwrap_or(0)
        / 1024
}

/// How many requests the simulator served on each of these endpoints.
async fn served<const N: usize>(
    http: &reqwest::Client,
    base: &str,
    endpoints: [&str; N],
) -> [u64; N] {
    let s: serde_json::Value = http
        .get(format!("{base}/_sim/stats"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    endpoints.map(|e| s["requests"][e].as_u64().unwrap_or(0))
}

async fn calls(http: &reqwest::Client, base: &str) -> (u64, u64) {
    let [associate, status] = served(http, base, ["assets/associate", "status"]).await;
    (associate, status)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let n: usize = std::env::args()
        .nth(1)
        .map(|a| a.parse().expect("a number of devices"))
        .unwrap_or(100_000);
    let dir = std::env::temp_dir().join(format!("allot-deploy-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let scenario = dir.join("scenario.json");
    std::fs::write(
        &scenario,
        format!(
            r#"{{ "settings": {{ "eventDelayMs": 0, "eventTasksPerTick": 5000, "limits": {{ "maxRequestPerSecond": 0 }} }},
                "organizations": [ {{ "name": "Bench", "locations": [ {{ "name": "Bench HQ",
                  "assets": [ {{ "adamId": "1000000001", "totalCount": {n}, "name": "Bench App" }} ] }} ] }} ] }}"#
        ),
    )?;
    let exe = std::env::current_exe()?;
    let allot = exe
        .parent()
        .and_then(|p| p.parent())
        .map(|p| p.join("allot"))
        .expect("target/release");
    assert!(
        allot.exists(),
        "build the allot binary first: cargo build --release"
    );
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let _sim = Sim(Command::new(allot)
        .args([
            "sim",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--scenario",
            scenario.to_str().unwrap(),
        ])
        .stdout(Stdio::null())
        .spawn()?);
    let base = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::new();
    let locations: serde_json::Value = loop {
        if let Ok(r) = http.get(format!("{base}/_sim/locations")).send().await {
            break r.json().await?;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let store = Store::connect(&dir.join("bench.db").to_string_lossy()).await?;
    let instance = Instance {
        id: "bench".into(),
        name: "Allot".into(),
        version: "bench".into(),
        public_url: None,
    };
    let engine = SyncEngine::new(
        store.clone(),
        AppleClient::new(ClientOptions::new(&format!("{base}/mdm/v2/"))),
        SecretBox::from_base64("AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=")?,
        instance,
        SyncConfig::default(),
    );
    let t = engine
        .add_token(AddToken {
            name: "bench".into(),
            token_text: locations[0]["token"].as_str().unwrap().into(),
            description: String::new(),
            categories: vec![],
            apple_account: String::new(),
            program: Program::Business,
        })
        .await?;
    engine.sync(t.id, SyncKind::Full, "bench").await?;

    let setup = Instant::now();
    let devices: Vec<NewDevice> = (0..n)
        .map(|i| NewDevice {
            serial_number: format!("BENCH{i:08}"),
            platform: "iPadOS".into(),
            ..Default::default()
        })
        .collect();
    store.upsert_devices(&devices, 0).await?;
    let ids: Vec<i64> = store
        .devices(None, n as i64, 0)
        .await?
        .0
        .iter()
        .map(|d| d.id)
        .collect();
    assert_eq!(ids.len(), n, "every device stored");
    let c = store.insert_collection("Bench", "devices", "", 0).await?;
    store.add_collection_members(c.id, &ids).await?;
    println!(
        "{n} devices and their collection stored in {:.1} s (setup, not measured below)",
        setup.elapsed().as_secs_f64()
    );
    // The peak printed below is the deployment's, not the set-up's ("5" resets VmHWM to what is
    // resident now).
    drop((devices, ids));
    std::fs::write("/proc/self/clear_refs", "5").ok();
    let resident_before = peak_rss_mib();

    let d = store
        .insert_deployment(
            &NewDeployment {
                adam_id: "1000000001".into(),
                pricing: "STDQ".into(),
                token_ids: vec![],
                collection_id: c.id,
                action: "required".into(),
                on_shortage: "fail".into(),
                ..Default::default()
            },
            0,
        )
        .await?;
    let executor = Executor::new(engine, None, Duration::ZERO);
    let started = Instant::now();
    let mut steps = 0;
    loop {
        executor.run(&d).await?;
        steps += 1;
        let counts = store.target_counts(d.id).await?;
        if counts == vec![("license_assigned".to_owned(), n as i64)] {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let secs = started.elapsed().as_secs_f64();
    let (associate, status) = calls(&http, &base).await;
    let limit = 1000;
    println!(
        "licensed {n} devices in {secs:.1} s ({steps} steps): {associate} associate calls (minimum ceil({n} / {limit}) = {}), {status} status polls",
        n.div_ceil(limit)
    );
    // A reconcile pass over targets that are all already true: it re-checks every license
    // against Apple's assignments and must change nothing and write nothing to Apple.
    let pass_started = Instant::now();
    executor.run(&d).await?;
    let pass = pass_started.elapsed().as_secs_f64();
    let (associate_after, _) = calls(&http, &base).await;
    let counts = store.target_counts(d.id).await?;
    assert_eq!(
        counts,
        vec![("license_assigned".to_owned(), n as i64)],
        "a true pass changed targets"
    );
    assert_eq!(associate_after, associate, "a true pass wrote to Apple");
    println!(
        "a pass over {n} targets already true: {pass:.1} s, {} Apple writes, targets unchanged",
        associate_after - associate
    );
    println!(
        "peak resident memory of the deploying process: {} MiB ({resident_before} MiB resident when the deployment began)",
        peak_rss_mib()
    );
    // Deleted with "revoke": every license given back, then the deployment goes.
    assert!(store.end_deployment(d.id, "revoke").await?);
    let started = Instant::now();
    let mut steps = 0;
    while let Some(ending) = store.deployment(d.id).await? {
        executor.run(&ending).await?;
        steps += 1;
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let secs = started.elapsed().as_secs_f64();
    let assigned = store.assets(t.id).await?[0].assigned;
    assert_eq!(assigned, 0, "every license given back");
    println!(
        "revoked {n} licenses in {secs:.1} s ({steps} steps): {} disassociate calls (minimum {})",
        served(&http, &base, ["assets/disassociate"]).await[0],
        n.div_ceil(limit)
    );
    std::fs::remove_dir_all(&dir).ok();
    Ok(())
}
