//! Scale-out (#15): 1, 2 and 3 `allot serve` processes on one PostgreSQL database, one simulator
//! process as Apple (its per-location rate limit on, 15 requests/s), 300 tokens of modest size all
//! due for a full sync, and one Required deployment per 20 tokens. For each instance count it
//! times the syncs and the licensing and checks, from the database and the simulator, that every
//! due sync succeeded exactly once and that no license was asked of Apple twice; then a run of 3
//! where one instance is killed with SIGKILL a third of the way through, and the others finish its
//! work once its leases run out. Fails (exit 1) when a check does not hold.
//!
//!     cargo build --release -p allot -p allot-server --example scale_bench
//!     target/release/examples/scale_bench postgres://postgres@127.0.0.1:5432 [--tokens 300]
//!
//! The URL names a PostgreSQL server where this may create and drop databases `allot_scale_*`.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use allot_store::sqlx::{self, Row};
use serde_json::{json, Value};

const KEY: &str = "scale-bench-admin-key-0123456789";
const SECRET: &str = "AgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgI=";
/// Sync leases in this bench (the default is ten minutes): a killed instance's tokens are taken
/// over this long after it last renewed them.
const LEASE_SECONDS: u64 = 30;
const DEVICES_PER_DEPLOYMENT: usize = 100;
const TOKENS_PER_DEPLOYMENT: usize = 20;
const ADAM: &str = "900000001";

type Error = Box<dyn std::error::Error>;

struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn arg(name: &str) -> Option<String> {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

fn allot_binary() -> std::path::PathBuf {
    let exe = std::env::current_exe().expect("this example's path");
    let bin = exe
        .parent()
        .and_then(|p| p.parent())
        .map(|p| p.join("allot"))
        .expect("target/release");
    assert!(
        bin.exists(),
        "build the allot binary first: cargo build --release -p allot"
    );
    bin
}

/// 300 locations: each with the deployed app (enough licenses for its deployment) and a few
/// other apps with some assignments, so a full sync reads a few pages.
fn scenario(tokens: usize) -> String {
    let locations: Vec<Value> = (0..tokens)
        .map(|i| {
            let assignments: Vec<Value> = (0..200)
                .map(|k| json!({ "adamId": format!("91000000{}", k % 5), "serialNumber": format!("OLD{i:04}{k:04}") }))
                .collect();
            json!({
                "name": format!("School {i:03}"),
                "uId": format!("43{i:014}"),
                "assets": [
                    { "adamId": ADAM, "totalCount": DEVICES_PER_DEPLOYMENT, "name": "Scale App" },
                    { "adamId": "910000000", "totalCount": 100, "name": "Other 0" },
                    { "adamId": "910000001", "totalCount": 100, "name": "Other 1" },
                    { "adamId": "910000002", "totalCount": 100, "name": "Other 2" },
                    { "adamId": "910000003", "totalCount": 100, "name": "Other 3" },
                    { "adamId": "910000004", "totalCount": 100, "name": "Other 4" }
                ],
                "assignments": assignments
            })
        })
        .collect();
    json!({
        "settings": { "eventDelayMs": 0, "tickMs": 5, "assignmentsPageSize": 100,
                      "limits": { "maxRequestPerSecond": 15 } },
        "organizations": [ { "name": "District", "locations": locations } ]
    })
    .to_string()
}

struct World {
    sim: Proc,
    sim_url: String,
    db_url: String,
    pool: sqlx::PgPool,
    dir: std::path::PathBuf,
    http: reqwest::Client,
}

impl World {
    /// A fresh database and simulator for one run.
    async fn new(pg: &str, name: &str, tokens: usize) -> Result<Self, Error> {
        let admin = sqlx::PgPool::connect(&format!("{pg}/postgres")).await?;
        sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
            .execute(&admin)
            .await?;
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&admin)
            .await?;
        admin.close().await;
        let db_url = format!("{pg}/{name}");
        let dir = std::env::temp_dir().join(format!("allot-scale-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir)?;
        let scenario = dir.join("scenario.json");
        std::fs::write(&scenario, self::scenario(tokens))?;
        let port = free_port();
        let sim = Proc(
            Command::new(allot_binary())
                .args([
                    "sim",
                    "--listen",
                    &format!("127.0.0.1:{port}"),
                    "--scenario",
                ])
                .arg(&scenario)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()?,
        );
        let sim_url = format!("http://127.0.0.1:{port}");
        let http = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(30);
        while http
            .get(format!("{sim_url}/_sim/stats"))
            .send()
            .await
            .is_err()
        {
            if Instant::now() > deadline {
                return Err("the simulator did not start".into());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        // The database is made by the first instance's migrations.
        let pool = loop {
            match sqlx::PgPool::connect(&db_url).await {
                Ok(p) => break p,
                Err(_) if Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(100)).await
                }
                Err(e) => return Err(e.into()),
            }
        };
        Ok(Self {
            sim,
            sim_url,
            db_url,
            pool,
            dir,
            http,
        })
    }

    /// Starts `allot serve` number `n` on `port` and the shared database; its base URL. `public`
    /// is where Apple sends notifications (the first instance's address, standing in for the
    /// load balancer in front of them all).
    fn serve(&self, n: usize, port: u16, public: Option<&str>) -> Result<(Proc, String), Error> {
        let data = self.dir.join(format!("instance-{n}"));
        std::fs::create_dir_all(&data)?;
        let mut cmd = Command::new(allot_binary());
        if let Some(url) = public {
            cmd.env("ALLOT_PUBLIC_URL", url);
        }
        let child = cmd
            .arg("serve")
            .env("ALLOT_LISTEN", format!("127.0.0.1:{port}"))
            .env("ALLOT_DATA_DIR", &data)
            .env("ALLOT_DATABASE_URL", &self.db_url)
            .env("ALLOT_APPLE_URL", format!("{}/mdm/v2/", self.sim_url))
            .env("ALLOT_ADMIN_API_KEY", KEY)
            .env("ALLOT_SECRET_KEY", SECRET)
            .env("ALLOT_RECONCILE_SECONDS", "1")
            .env("ALLOT_SYNC_LEASE_SECONDS", LEASE_SECONDS.to_string())
            .env("ALLOT_METRICS_TOKEN", KEY)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(data.join("log"))?)
            .spawn()?;
        Ok((Proc(child), format!("http://127.0.0.1:{port}")))
    }

    async fn until_up(&self, base: &str) -> Result<(), Error> {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(r) = self.http.get(format!("{base}/readyz")).send().await {
                if r.status().is_success() {
                    return Ok(());
                }
            }
            if Instant::now() > deadline {
                return Err(format!("{base} did not become ready").into());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn api(
        &self,
        base: &str,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
        csv: Option<String>,
    ) -> Result<Value, Error> {
        let mut req = self
            .http
            .request(method, format!("{base}{path}"))
            .bearer_auth(KEY);
        if let Some(b) = body {
            req = req.json(&b);
        }
        if let Some(c) = csv {
            req = req.header("content-type", "text/csv").body(c);
        }
        let res = req.send().await?;
        let status = res.status();
        let v: Value = res.json().await.unwrap_or(Value::Null);
        if !status.is_success() {
            return Err(format!("{path}: {status} {v}").into());
        }
        Ok(v)
    }

    async fn scalar(&self, sql: &str) -> Result<i64, Error> {
        Ok(sqlx::query(sql)
            .fetch_one(&self.pool)
            .await?
            .try_get::<i64, _>(0)?)
    }
}

struct Outcome {
    instances: usize,
    sync_secs: f64,
    deploy_secs: f64,
    targets: i64,
    /// Requests to Apple each instance made (its own metrics); none for a killed one.
    requests_per_instance: Vec<Option<i64>>,
    interrupted: i64,
    /// When an instance was killed (seconds into the run).
    killed_at: Option<f64>,
}

/// One run: set up with one instance, mark every token due, start `instances`, optionally kill
/// one of them a third of the way through the syncs; checks exactly-once and returns the times.
async fn run(pg: &str, tokens: usize, instances: usize, kill: bool) -> Result<Outcome, Error> {
    let name = format!("allot_scale_{instances}{}", if kill { "_kill" } else { "" });
    let w = World::new(pg, &name, tokens).await?;
    let deployments = tokens / TOKENS_PER_DEPLOYMENT;

    // Set-up, not measured: one instance adds the tokens (each syncs once) and the devices.
    // Apple's notifications go to the first instance's address, set-up included.
    let front = free_port();
    let public = format!("http://127.0.0.1:{front}");
    let (setup, base) = w.serve(0, front, Some(&public))?;
    w.until_up(&base).await?;
    let locations: Value = w
        .http
        .get(format!("{}/_sim/locations", w.sim_url))
        .send()
        .await?
        .json()
        .await?;
    for (i, l) in locations
        .as_array()
        .ok_or("no locations")?
        .iter()
        .enumerate()
    {
        w.api(
            &base,
            reqwest::Method::POST,
            "/api/v1/tokens",
            Some(json!({
                "name": format!("school-{i:03}"), "token": l["token"], "programType": "education"
            })),
            None,
        )
        .await?;
    }
    let deadline = Instant::now() + Duration::from_secs(900);
    while w
        .scalar("SELECT COUNT(DISTINCT token_id) FROM sync_runs WHERE status = 'succeeded'")
        .await?
        < tokens as i64
    {
        if Instant::now() > deadline {
            return Err("the first syncs did not finish".into());
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let mut csv = String::from("serial_number,platform\n");
    for j in 0..deployments {
        for k in 0..DEVICES_PER_DEPLOYMENT {
            csv.push_str(&format!("SC{j:02}D{k:04},iPadOS\n"));
        }
    }
    w.api(
        &base,
        reqwest::Method::POST,
        "/api/v1/devices/import",
        None,
        Some(csv),
    )
    .await?;
    for j in 0..deployments {
        let c = format!("carts-{j:02}");
        w.api(
            &base,
            reqwest::Method::POST,
            "/api/v1/collections",
            Some(json!({ "name": c, "kind": "devices" })),
            None,
        )
        .await?;
        let members: Vec<String> = (0..DEVICES_PER_DEPLOYMENT)
            .map(|k| format!("SC{j:02}D{k:04}"))
            .collect();
        w.api(
            &base,
            reqwest::Method::POST,
            &format!("/api/v1/collections/{c}/members"),
            Some(json!({ "members": members })),
            None,
        )
        .await?;
    }
    drop(setup);
    // Its port free again for the first instance.
    tokio::time::sleep(Duration::from_millis(300)).await;
    // Every token due for a full sync, as on the weekly schedule.
    let mark = w
        .scalar("SELECT COALESCE(MAX(id), 0) FROM sync_runs")
        .await?;
    sqlx::query(
        "UPDATE tokens SET full_sync_wanted = TRUE, lease_owner = NULL, lease_until = NULL",
    )
    .execute(&w.pool)
    .await?;
    let associate_before = sim_counts(&w).await?.0;

    let started = Instant::now();
    let mut procs = Vec::new();
    for n in 1..=instances {
        let port = if n == 1 { front } else { free_port() };
        procs.push(w.serve(n, port, Some(&public))?);
    }
    for (_, b) in &procs {
        w.until_up(b).await?;
    }
    // One deployment per 20 tokens, asked of the instances in turn; each draws from the first
    // token of its twenty.
    for j in 0..deployments {
        let (_, b) = &procs[j % procs.len()];
        w.api(
            b,
            reqwest::Method::POST,
            "/api/v1/deployments",
            Some(json!({
                "adamId": ADAM, "collection": format!("carts-{j:02}"),
                "tokens": [format!("school-{:03}", j * TOKENS_PER_DEPLOYMENT)], "onShortage": "fail"
            })),
            None,
        )
        .await?;
    }
    let targets = (deployments * DEVICES_PER_DEPLOYMENT) as i64;
    let (mut sync_secs, mut deploy_secs) = (None, None);
    let mut killed = !kill;
    let mut killed_at = None;
    let deadline = Instant::now() + Duration::from_secs(1200);
    while sync_secs.is_none() || deploy_secs.is_none() {
        let synced = w.scalar(&format!("SELECT COUNT(DISTINCT token_id) FROM sync_runs WHERE id > {mark} AND status = 'succeeded'")).await?;
        if !killed && synced >= tokens as i64 / 3 {
            // SIGKILL: no chance to release a lease or finish a run.
            let (victim, _) = &mut procs[1];
            victim.0.kill()?;
            killed = true;
            killed_at = Some(started.elapsed().as_secs_f64());
            println!(
                "  killed instance 2 (SIGKILL) at {:.1} s, {synced} tokens synced",
                started.elapsed().as_secs_f64()
            );
        }
        if sync_secs.is_none() && synced == tokens as i64 {
            sync_secs = Some(started.elapsed().as_secs_f64());
        }
        let licensed = w
            .scalar("SELECT COUNT(*) FROM deployment_targets WHERE status = 'license_assigned'")
            .await?;
        if deploy_secs.is_none() && licensed == targets {
            deploy_secs = Some(started.elapsed().as_secs_f64());
        }
        if Instant::now() > deadline {
            return Err(format!(
                "not done after 20 minutes: {synced} tokens synced, {licensed} targets licensed"
            )
            .into());
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // Exactly once: every token's due sync succeeded once, never twice.
    let twice = w.scalar(&format!(
        "SELECT COUNT(*) FROM (SELECT token_id FROM sync_runs WHERE id > {mark} AND status = 'succeeded' GROUP BY token_id HAVING COUNT(*) > 1) t"
    )).await?;
    if twice > 0 {
        return Err(format!("{twice} tokens synced twice").into());
    }
    let interrupted = w
        .scalar(&format!(
            "SELECT COUNT(*) FROM sync_runs WHERE id > {mark} AND status <> 'succeeded'"
        ))
        .await?;
    // No Apple write twice: one associate request per deployment (100 devices < 1,000 a request),
    // and Apple holds each device's license once.
    let (associate, repeated) = sim_counts(&w).await?;
    let associate = associate - associate_before;
    if associate != deployments as i64 {
        return Err(format!("{associate} associate requests for {deployments} deployments").into());
    }
    if repeated > 0 {
        return Err(
            format!("Apple was asked {repeated} times for a license it had already given").into(),
        );
    }
    let mut requests_per_instance = Vec::new();
    for (_, b) in &procs {
        requests_per_instance.push(apple_requests(&w, b).await);
    }
    drop(procs);
    drop(w.sim);
    w.pool.close().await;
    std::fs::remove_dir_all(&w.dir).ok();
    Ok(Outcome {
        instances,
        sync_secs: sync_secs.unwrap_or_default(),
        deploy_secs: deploy_secs.unwrap_or_default(),
        targets,
        requests_per_instance,
        interrupted,
        killed_at,
    })
}

/// The simulator's counters: associate requests, and associations of a license already held.
async fn sim_counts(w: &World) -> Result<(i64, i64), Error> {
    let s: Value = w
        .http
        .get(format!("{}/_sim/stats", w.sim_url))
        .send()
        .await?
        .json()
        .await?;
    Ok((
        s["requests"]["assets/associate"].as_i64().unwrap_or(0),
        s["repeatedAssociations"].as_i64().unwrap_or(0),
    ))
}

/// The requests to Apple an instance made, from its metrics (`None` when it does not answer).
async fn apple_requests(w: &World, base: &str) -> Option<i64> {
    let text = w
        .http
        .get(format!("{base}/metrics"))
        .bearer_auth(KEY)
        .send()
        .await
        .ok()?
        .text()
        .await
        .ok()?;
    Some(
        text.lines()
            .filter(|l| l.starts_with("allot_apple_requests_total"))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum::<f64>() as i64,
    )
}

/// One row of the table.
fn row(label: &str, tokens: usize, o: &Outcome) -> String {
    let per_instance: Vec<String> = o
        .requests_per_instance
        .iter()
        .map(|r| r.map_or("killed".to_owned(), |n| n.to_string()))
        .collect();
    format!(
        "| {label} | {:.1} s | {:.0} | {:.1} s | {:.0} | {} | {} |",
        o.sync_secs,
        tokens as f64 / o.sync_secs * 60.0,
        o.deploy_secs,
        o.targets as f64 / o.deploy_secs,
        o.interrupted,
        per_instance.join(" / ")
    )
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    let pg = std::env::args()
        .nth(1)
        .filter(|a| a.starts_with("postgres"))
        .ok_or("usage: scale_bench postgres://user@host:port [--tokens N]")?;
    let pg = pg.trim_end_matches('/').to_owned();
    let tokens: usize =
        arg("--tokens").map_or(300, |v| v.parse().expect("--tokens takes a number"));
    println!("{tokens} tokens, {} deployments of {DEVICES_PER_DEPLOYMENT} devices; Apple's rate limit 15 requests/s per token; sync leases {LEASE_SECONDS} s", tokens / TOKENS_PER_DEPLOYMENT);
    println!("| Instances | All due syncs done | Tokens synced per minute | All targets licensed | Targets licensed per second | Runs not succeeded | Apple requests per instance |");
    println!("| --- | --- | --- | --- | --- | --- | --- |");
    for instances in [1, 2, 3] {
        let o = run(&pg, tokens, instances, false).await?;
        println!("{}", row(&o.instances.to_string(), tokens, &o));
    }
    let o = run(&pg, tokens, 3, true).await?;
    println!(
        "{}",
        row("3, one killed (SIGKILL) a third of the way", tokens, &o)
    );
    if let Some(at) = o.killed_at {
        println!(
            "the killed instance's tokens were synced by the others: everything done {:.1} s after the kill (leases of {LEASE_SECONDS} s)",
            o.sync_secs - at
        );
    }
    println!("every due sync succeeded exactly once and no license was asked of Apple twice, in every run");
    Ok(())
}
