//! What the server benchmarks share: the simulator and the server in this process, each over HTTP
//! on loopback, on SQLite in a temporary folder, with one location's token added and synced once.
// Each benchmark reads its own part of what this returns.
#![allow(dead_code)]

use std::time::{Duration, Instant};

use allot_server::{Config, Server};
use serde_json::{json, Value};

pub const KEY: &str = "bench-admin-key-0123456789";

pub struct BenchServer {
    pub sim: allot_apple_sim::RunningSim,
    pub server: Server,
    pub base: String,
    pub http: reqwest::Client,
    pub token_id: i64,
    pub dir: std::path::PathBuf,
}

/// Starts both on `scenario`, adds the token of location `uid` and waits for its first sync
/// (which registers the notification URL with the simulator when `notifications`).
pub async fn start(
    name: &str,
    scenario: &str,
    uid: &str,
    notifications: bool,
) -> Result<BenchServer, Box<dyn std::error::Error>> {
    let sim = allot_apple_sim::start_local(scenario).await?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    let dir = std::env::temp_dir().join(format!("allot-{name}-{}", std::process::id()));
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
        .and_then(|l| l.iter().find(|l| l["uId"] == uid))
        .and_then(|l| l["token"].as_str())
        .ok_or("the simulator has no such location")?
        .to_owned();
    let added: Value = http
        .post(format!("{base}/api/v1/tokens"))
        .bearer_auth(KEY)
        .json(&json!({ "name": "HQ", "token": token, "programType": "business" }))
        .send()
        .await?
        .json()
        .await?;
    let token_id = added["id"].as_i64().ok_or("the token was not added")?;
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let s: Value = http
            .get(format!("{base}/api/v1/tokens/{token_id}/sync"))
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
    Ok(BenchServer {
        sim,
        server,
        base,
        http,
        token_id,
        dir,
    })
}
