//! Full and no-change delta sync of a generated 1,000,000-assignment location. The simulator
//! runs as its own process (`target/release/allot sim`), so the peak memory printed is the sync's.
//!
//!     cargo build --release && cargo run --release -p allot-sync --example sync_bench -- [--rate 15] [--postgres URL]

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use allot_apple_client::{AppleClient, ClientOptions};
use allot_domain::Program;
use allot_secrets::SecretBox;
use allot_store::Store;
use allot_sync::{AddToken, Instance, SyncConfig, SyncEngine, SyncKind};

const SPEC: &str = "seed=7,assets=500,serialNumbers=200000,users=50000,assignments=1000000";

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

struct Sim(Child);

impl Drop for Sim {
    fn drop(&mut self) {
        let _ = self.0.kill();
    }
}

async fn requests(http: &reqwest::Client, base: &str) -> u64 {
    let s: serde_json::Value = http
        .get(format!("{base}/_sim/stats"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    s["requests"]
        .as_object()
        .unwrap()
        .iter()
        .filter(|(k, _)| *k != "lookup")
        .map(|(_, v)| v.as_u64().unwrap())
        .sum()
}

#[tokio::main]
async fn main() -> anyhow_free::Result {
    let args: Vec<String> = std::env::args().collect();
    let arg = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .cloned()
    };
    let rate: i32 = arg("--rate")
        .map(|r| r.parse().expect("--rate takes a number"))
        .unwrap_or(0);
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
    let dir = std::env::temp_dir().join(format!("allot-sync-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let _sim = Sim(Command::new(allot)
        .args([
            "sim",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--generate",
            SPEC,
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
    http.patch(format!("{base}/_sim/settings"))
        .json(&serde_json::json!({ "limits": { "maxRequestPerSecond": rate } }))
        .send()
        .await?;
    let token = locations[0]["token"].as_str().unwrap().to_owned();

    let store = match arg("--postgres") {
        Some(url) => Store::connect(&url).await?,
        None => Store::connect(&dir.join("bench.db").to_string_lossy()).await?,
    };
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
            token_text: token,
            description: String::new(),
            categories: vec![],
            apple_account: String::new(),
            program: Program::Business,
        })
        .await?;
    println!(
        "spec: {SPEC}; rate limit: {}; database: {}",
        if rate == 0 {
            "off".to_owned()
        } else {
            format!("{rate}/s")
        },
        store.backend()
    );

    let r0 = requests(&http, &base).await;
    let started = Instant::now();
    let full = engine.sync(t.id, SyncKind::Full, "bench").await?;
    let secs = started.elapsed().as_secs_f64();
    let made = requests(&http, &base).await - r0;
    let held = store.count_assignments(t.id).await?;
    println!("full sync: {secs:.1} s, {made} requests to the Apple service, {held} assignments stored, {} added", full.counts.assignments_added);
    if rate > 0 {
        let floor = made as f64 / f64::from(rate);
        println!("  rate floor for {made} requests at {rate}/s: {floor:.1} s; this sync took {:.1}% of it", secs / floor * 100.0);
    }
    println!(
        "  peak resident memory of the syncing process: {} MiB",
        peak_rss_mib()
    );

    let r1 = requests(&http, &base).await;
    let started = Instant::now();
    let delta = engine.sync(t.id, SyncKind::Delta, "bench").await?;
    println!(
        "no-change delta sync: {:.2} s, {} requests, {} assignments changed",
        started.elapsed().as_secs_f64(),
        requests(&http, &base).await - r1,
        delta.counts.assignments_added + delta.counts.assignments_removed
    );
    drop(store);
    std::fs::remove_dir_all(&dir).ok();
    Ok(())
}

mod anyhow_free {
    pub type Result = std::result::Result<(), Box<dyn std::error::Error>>;
}
