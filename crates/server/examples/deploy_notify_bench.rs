//! A Required deployment of one device-licensed app to 100,000 devices through the whole server
//! (#15): its reconcile loop, Apple's ASSET_MANAGEMENT notifications over HTTP, the status polls
//! at Apple's 30 s interval only for what notifications have not told. Prints the time until every
//! target is licensed, the associate calls against the minimum, the status polls, and at a rate
//! limit the time against the floor the rate sets. SQLite; the simulator runs in this process.
//!
//!     cargo build --release -p allot-server --example deploy_notify_bench
//!     target/release/examples/deploy_notify_bench [--rate 15] [--notifications off] [--devices N]

use std::time::{Duration, Instant};

use allot_server::{Config, Server};
use allot_store::{NewDeployment, NewDevice};
use serde_json::{json, Value};

const KEY: &str = "deploy-bench-key-0123456789";
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
    let sim = allot_apple_sim::start_local(&format!(
        r#"{{ "settings": {{ "eventDelayMs": 0, "eventTasksPerTick": 5000, "tickMs": 5, "notificationRetryDelayMs": 50,
              "limits": {{ "maxRequestPerSecond": {rate} }} }},
            "organizations": [ {{ "name": "Bench", "locations": [ {{ "name": "HQ", "uId": "{UID}",
              "assets": [ {{ "adamId": "1000000001", "totalCount": {n}, "name": "Bench App" }} ] }} ] }} ] }}"#
    ))
    .await?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    let dir =
        std::env::temp_dir().join(format!("allot-deploy-notify-bench-{}", std::process::id()));
    let config = Config {
        data_dir: dir.clone(),
        apple_url: sim.apple_url(),
        admin_api_key: Some(KEY.into()),
        // Without a public URL Apple has nowhere to send notifications.
        public_url: notifications.then(|| base.clone()),
        ..Default::default()
    };
    let server = Server::build(&config).await?;
    let router = server
        .router
        .clone()
        .into_make_service_with_connect_info::<std::net::SocketAddr>();
    tokio::spawn(async move { axum::serve(listener, router).await });
    let http = reqwest::Client::new();
    let locations: Value = http
        .get(format!("{}/_sim/locations", sim.base_url))
        .send()
        .await?
        .json()
        .await?;
    let token = locations
        .as_array()
        .and_then(|l| l.iter().find(|l| l["uId"] == UID))
        .and_then(|l| l["token"].as_str())
        .ok_or("the simulator has no HQ")?
        .to_owned();
    let added: Value = http
        .post(format!("{base}/api/v1/tokens"))
        .bearer_auth(KEY)
        .json(&json!({ "name": "HQ", "token": token, "programType": "business" }))
        .send()
        .await?
        .json()
        .await?;
    let id = added["id"].as_i64().ok_or("the token was not added")?;
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let s: Value = http
            .get(format!("{base}/api/v1/tokens/{id}/sync"))
            .bearer_auth(KEY)
            .send()
            .await?
            .json()
            .await?;
        if s["running"].is_null() && s["latest"]["status"] == "succeeded" {
            break;
        }
        if Instant::now() > deadline {
            return Err("the first sync did not finish".into());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

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

    let (associate0, status0) = calls(&http, &sim.base_url).await?;
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
    let (associate, status) = calls(&http, &sim.base_url).await?;
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
    std::fs::remove_dir_all(&dir).ok();
    Ok(())
}
