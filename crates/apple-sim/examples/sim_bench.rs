//! Measures how fast the simulator serves a full walk of a large location, and what the
//! scenario costs in memory. Figures go to docs/performance.md.
//!
//!     cargo run --release -p allot-apple-sim --example sim_bench
//!     cargo run --release -p allot-apple-sim --example sim_bench -- --spec 'seed=1,locations=3000,assets=20,users=50,serialNumbers=50,assignments=200'

use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::Arc;
use std::time::Instant;

use allot_apple_sim::{GenerateSpec, Scenario, SimOptions};
use allot_apple_wire::GetAssignmentsResponse;

const DEFAULT_SPEC: &str = "seed=7,assets=500,serialNumbers=200000,users=50000,assignments=1000000";
/// Apple allows at most 5 page requests in flight.
const PARALLEL: usize = 5;

fn memory_kib(key: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(key))
                .map(|l| l.split_whitespace().nth(1).unwrap_or("0").to_owned())
        })
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let spec = args
        .iter()
        .position(|a| a == "--spec")
        .and_then(|i| args.get(i + 1))
        .map_or(DEFAULT_SPEC, String::as_str);
    let before = memory_kib("VmRSS:");
    let started = Instant::now();
    let mut scenario =
        Scenario::parse(r#"{ "settings": { "limits": { "maxRequestPerSecond": 0 } } }"#)
            .map_err(anyhow::Error::msg)?;
    scenario
        .generate
        .push(GenerateSpec::parse_flag(spec).map_err(anyhow::Error::msg)?);
    let sim = allot_apple_sim::start(SimOptions {
        listen: "127.0.0.1:0".parse()?,
        scenario,
        token_dir: None,
        public_url: None,
        trust: allot_trust::Trust::system(),
    })
    .await?;
    let build = started.elapsed();
    let after_build = memory_kib("VmRSS:");
    let (token, locations) = {
        let w = sim.shared.lock().expect("world lock");
        (w.current_token[0].clone(), w.locations.len())
    };
    println!("spec: {spec}");
    println!(
        "locations: {locations}; built in {:.2} s; resident memory of the built world: {} MiB",
        build.as_secs_f64(),
        (after_build - before) / 1024
    );

    let client = reqwest::Client::new();
    let url = sim.apple_url() + "assignments";
    let first: GetAssignmentsResponse = client
        .get(&url)
        .bearer_auth(&token)
        .send()
        .await?
        .json()
        .await?;
    let total_pages = first.page.total_pages;
    if total_pages < 2 {
        println!("the first location has a single page of assignments: nothing to walk");
        println!(
            "peak resident memory (simulator + client): {} MiB",
            memory_kib("VmHWM:") / 1024
        );
        return Ok(());
    }
    let walk = Instant::now();
    let next = Arc::new(AtomicI32::new(1));
    let mut workers = Vec::new();
    for _ in 0..PARALLEL {
        let (client, url, token, next) = (client.clone(), url.clone(), token.clone(), next.clone());
        workers.push(tokio::spawn(async move {
            let mut records = 0usize;
            loop {
                let page = next.fetch_add(1, Ordering::Relaxed);
                if page >= total_pages {
                    return anyhow::Ok(records);
                }
                let res: GetAssignmentsResponse = client
                    .get(format!("{url}?pageIndex={page}"))
                    .bearer_auth(&token)
                    .send()
                    .await?
                    .json()
                    .await?;
                records += res.assignments.len();
            }
        }));
    }
    let mut records = first.assignments.len();
    for w in workers {
        records += w.await??;
    }
    let secs = walk.elapsed().as_secs_f64();
    let pages = f64::from(total_pages - 1);
    println!(
        "walk: {total_pages} pages, {records} assignments; {:.1} pages/s, {:.0} assignments/s ({PARALLEL} in flight, client in the same process)",
        pages / secs,
        (records as f64 - first.assignments.len() as f64) / secs
    );
    println!("Apple's own ceiling at 15 requests/s: 15 pages/s");
    println!(
        "peak resident memory (simulator + client): {} MiB",
        memory_kib("VmHWM:") / 1024
    );
    Ok(())
}
