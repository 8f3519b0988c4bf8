//! From Apple's notification to the count the API shows (#15): licenses bought at the simulator
//! (which sends ASSET_COUNT to the server over HTTP, as Apple does), then the time until
//! `GET /api/v1/apps` shows the new total, 200 times; prints the median, p95 and slowest. The
//! simulator and the server run in this process on SQLite, each over real HTTP on loopback.
//!
//!     cargo build --release -p allot-server --example notify_bench && target/release/examples/notify_bench

use std::time::{Duration, Instant};

#[path = "support/bench_server.rs"]
mod bench_server;
use bench_server::KEY;

use serde_json::{json, Value};

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
    let b = bench_server::start("notify-bench", SCENARIO, UID, true).await?;
    let (sim, http, base, dir) = (&b.sim, &b.http, &b.base, &b.dir);

    let mut expected = total(http, base).await?;
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
        while total(http, base).await? < expected {
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
    std::fs::remove_dir_all(dir).ok();
    Ok(())
}
