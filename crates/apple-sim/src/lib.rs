//! `allot sim`: a simulator of Apple's Apps and Books service (v2) over real HTTP, faithful
//! enough that code which works against it works against Apple. See `docs/simulator.md`.

pub mod catalog;
pub mod control_ops;
pub mod events;
pub mod faults;
pub mod generate;
pub mod http;
pub mod icon;
pub mod model;
pub mod notify;
pub mod scenario;
pub mod settings;
pub mod world;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::task::JoinHandle;

pub use generate::GenerateSpec;
pub use scenario::Scenario;
pub use settings::Settings;
pub use world::World;

/// The simulator's state, shared by request handlers, the event ticker and the notifier.
pub type Shared = Arc<Mutex<World>>;

pub struct SimOptions {
    pub listen: SocketAddr,
    pub scenario: Scenario,
    /// Where to write each location's `.vpptoken`.
    pub token_dir: Option<PathBuf>,
    /// The base URL clients reach this simulator at (default `http://<bound address>`).
    pub public_url: Option<String>,
    /// What the notification sender trusts beyond public and platform roots (`--ca-file`).
    pub trust: allot_trust::Trust,
}

/// A running simulator; dropping it stops it.
pub struct RunningSim {
    pub addr: SocketAddr,
    pub base_url: String,
    pub shared: Shared,
    tasks: Vec<JoinHandle<()>>,
}

impl RunningSim {
    /// `…/mdm/v2/`: what a client uses as Apple's base URL.
    pub fn apple_url(&self) -> String {
        format!("{}/mdm/v2/", self.base_url)
    }

    /// Waits until the server stops (it does not by itself).
    pub async fn wait(mut self) {
        if let Some(server) = self.tasks.pop() {
            let _ = server.await;
        }
    }
}

impl Drop for RunningSim {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

/// Builds the world from the scenario, binds, and serves.
pub async fn start(opts: SimOptions) -> anyhow::Result<RunningSim> {
    let mut world = opts
        .scenario
        .build(chrono::Utc::now())
        .map_err(anyhow::Error::msg)?;
    let listener = tokio::net::TcpListener::bind(opts.listen)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", opts.listen))?;
    let addr = listener.local_addr()?;
    let base_url = opts
        .public_url
        .unwrap_or_else(|| format!("http://{addr}"))
        .trim_end_matches('/')
        .to_owned();
    world.base_url = base_url.clone();
    world.token_dir = opts.token_dir;
    world
        .write_token_files()
        .map_err(|e| anyhow::anyhow!("cannot write token files: {e}"))?;
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    world.notifier = Some(tx);
    let notify_client = notify::http_client(&opts.trust);
    world.notify_client = Some(notify_client.clone());
    let shared: Shared = Arc::new(Mutex::new(world));

    let ticker = tokio::spawn(run_events(shared.clone()));
    let sender = tokio::spawn(notify::run_sender(shared.clone(), notify_client, rx));
    let app = http::router(shared.clone());
    let server = tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::error!("simulator server stopped: {e}");
        }
    });
    Ok(RunningSim {
        addr,
        base_url,
        shared,
        tasks: vec![ticker, sender, server],
    })
}

/// A simulator of `scenario` (JSON) on a free loopback port: what tests start.
pub async fn start_local(scenario: &str) -> anyhow::Result<RunningSim> {
    start(SimOptions {
        listen: "127.0.0.1:0".parse().expect("a valid address"),
        scenario: Scenario::parse(scenario).map_err(anyhow::Error::msg)?,
        token_dir: None,
        public_url: None,
        trust: allot_trust::Trust::system(),
    })
    .await
}

/// Advances due events every tick.
async fn run_events(shared: Shared) {
    loop {
        let tick = {
            let mut w = shared.lock().expect("world lock");
            events::tick(&mut w, std::time::Instant::now());
            w.settings.tick_ms
        };
        tokio::time::sleep(Duration::from_millis(tick)).await;
    }
}
