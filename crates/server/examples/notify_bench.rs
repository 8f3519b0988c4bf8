//! From Apple's notification to the count the API shows (#15): licenses bought at the simulator
//! (which sends ASSET_COUNT to the server over HTTP, as Apple does), then the time until
//! `GET /api/v1/apps` shows the new total, 200 times; prints the median, p95 and slowest. The
//! simulator and the server run in this process on SQLite, each over real HTTP on loopback.
//!
//!     cargo build --release -p allot-server --example notify_bench && target/release/examples/notify_bench

use std::time::{Duration, Instant};

use allot_server::{Config, Server};
use serde_json::{json, Value};

const KEY: &str = "notify-bench-key-0123456789";
const UID: &str = "4100000000000001";
const SCENARIO: &str = r#"{
  "settings": { "eventDelayMs": 0, "tickMs": 5, "notificationRetryDelayMs": 50,
                "limits": { "maxRequestPerSecond": 0 } },
  "organizations": [ { "name": "Bench", "locations": [ { "name": "HQ", "uId": "4100000000000001",
    "assets": [ { "adamId": "777", "totalCount": 10, "name": "Team Chat" } ] } ] } ]
}"#;
const ROUNDS: usize = 200;

async fn total(http: &reqwest::Client, base: &str) -> Result<i64, Box<dyn std::error::Error>> {
    let apps: Value = http
        .get(format!("{base}/api/v1/apps?search=777"))
        .bearer_auth(KEY)
        .send()
        .await?
        .json()
        .await?;
    Ok(apps["apps"][0]["total"].as_i64().unwrap_or(-1))
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let sim = allot_apple_sim::start_local(SCENARIO).await?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    let dir = std::env::temp_dir().join(format!("allot-notify-bench-{}", std::process::id()));
    let config = Config {
        data_dir: dir.clone(),
        apple_url: sim.apple_url(),
        admin_api_key: Some(KEY.into()),
        public_url: Some(base.clone()),
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
    // The first sync (it registers the notification URL with Apple).
    let deadline = Instant::now() + Duration::from_secs(30);
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

    let mut expected = total(&http, &base).await?;
    let mut times = Vec::with_capacity(ROUNDS);
    for _ in 0..ROUNDS {
        let res = http
            .post(format!("{}/_sim/locations/{UID}/purchase", sim.base_url))
            .json(&json!({ "adamId": "777", "count": 1 }))
            .send()
            .await?;
        let started = Instant::now();
        if !res.status().is_success() {
            return Err(format!("the purchase was refused: {}", res.status()).into());
        }
        expected += 1;
        while total(&http, &base).await? < expected {
            if started.elapsed() > Duration::from_secs(30) {
                return Err("the count never moved".into());
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        times.push(started.elapsed());
    }
    times.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!(
        "notification → count the API shows, {ROUNDS} purchases (ASSET_COUNT), SQLite: median {:.1} ms, p95 {:.1} ms, slowest {:.1} ms",
        ms(times[ROUNDS / 2]),
        ms(times[ROUNDS * 95 / 100]),
        ms(times[ROUNDS - 1])
    );
    std::fs::remove_dir_all(&dir).ok();
    Ok(())
}
