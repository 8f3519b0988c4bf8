//! A Required deployment of one device-licensed app to 100,000 devices through the whole server
//! (#15): its reconcile loop, Apple's ASSET_MANAGEMENT notifications over HTTP, the status polls
//! at Apple's 30 s interval only for what notifications have not told. Prints the time until every
//! target is licensed, the associate calls against the minimum, the status polls, and at a rate
//! limit the time against the floor the rate sets. SQLite; the simulator runs in this process.
//!
//!     cargo build --release -p allot-server --example deploy_notify_bench
//!     target/release/examples/deploy_notify_bench [--rate 15] [--notifications off] [--devices N]

use std::time::{Duration, Instant};

#[path = "support/bench_server.rs"]
mod bench_server;

use allot_store::{NewDeployment, NewDevice};
use serde_json::Value;

const UID: &str = "4200000000000001";

fn arg(name: &str) -> Option<String> {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}

async fn calls(
    http: &reqwest::Client,
    sim: &str,
) -> Result<(u64, u64), Box<dyn std::error::Error>> {
    let s: Value = http
        .get(format!("{sim}/_sim/stats"))
        .send()
        .await?
        .json()
        .await?;
    Ok((
        s["requests"]["assets/associate"].as_u64().unwrap_or(0),
        s["requests"]["status"].as_u64().unwrap_or(0),
    ))
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let n: usize =
        arg("--devices").map_or(100_000, |v| v.parse().expect("--devices takes a number"));
    let rate: u32 = arg("--rate").map_or(0, |v| v.parse().expect("--rate takes a number"));
    let notifications = arg("--notifications").as_deref() != Some("off");
    let scenario = format!(
        r#"{{ "settings": {{ "eventDelayMs": 0, "eventTasksPerTick": 5000, "tickMs": 5, "notificationRetryDelayMs": 50,
              "limits": {{ "maxRequestPerSecond": {rate} }} }},
            "organizations": [ {{ "name": "Bench", "locations": [ {{ "name": "HQ", "uId": "{UID}",
              "assets": [ {{ "adamId": "1000000001", "totalCount": {n}, "name": "Bench App" }} ] }} ] }} ] }}"#
    );
    let b = bench_server::start("deploy-notify-bench", &scenario, UID, notifications).await?;
    let (sim, server, http, dir) = (&b.sim, &b.server, &b.http, &b.dir);

    let store = server.state.store.clone();
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
    let c = store.insert_collection("Bench", "devices", "", 0).await?;
    store.add_collection_members(c.id, &ids).await?;

    let (associate0, status0) = calls(http, &sim.base_url).await?;
    let _loop = server.start_deployments();
    let started = Instant::now();
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
    server.state.executor.wake();
    loop {
        let counts = store.target_counts(d.id).await?;
        if counts == vec![("license_assigned".to_owned(), n as i64)] {
            break;
        }
        if std::env::var_os("BENCH_VERBOSE").is_some() {
            let failed = store.targets_page(d.id, Some("failed"), 1, 0).await?;
            eprintln!(
                "{:.1} s: {counts:?} {:?}",
                started.elapsed().as_secs_f64(),
                failed.first().map(|t| &t.detail)
            );
        }
        if started.elapsed() > Duration::from_secs(600) {
            return Err(format!("not licensed after 10 minutes: {counts:?}").into());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let secs = started.elapsed().as_secs_f64();
    let (associate, status) = calls(http, &sim.base_url).await?;
    let (associate, status) = (associate - associate0, status - status0);
    println!(
        "licensed {n} devices in {secs:.1} s (notifications {}, rate {}): {associate} associate calls (minimum {}), {status} status polls",
        if notifications { "on" } else { "off" },
        if rate == 0 { "off".to_owned() } else { format!("{rate}/s") },
        n.div_ceil(1000)
    );
    if rate > 0 {
        let floor = (associate + status) as f64 / f64::from(rate);
        println!(
            "  rate floor for those {} calls at {rate}/s: {floor:.1} s; this took {:.2} × the floor",
            associate + status,
            secs / floor
        );
    }
    std::fs::remove_dir_all(dir).ok();
    Ok(())
}
