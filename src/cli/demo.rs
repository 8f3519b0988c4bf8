//! `allot demo`: the simulated Apple service with a demo organization, the server on SQLite, every
//! location's token added and synced — one command, nothing to set up.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use allot_apple_sim::{Scenario, SimOptions};
use allot_server::{Config, Server};
use allot_sync::{AddToken, SyncKind};
use anyhow::Context;

use super::output::say;

#[derive(clap::Args)]
pub struct DemoArgs {
    /// Where the demo keeps its database and tokens (default: a new folder under the temp dir).
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Address of the Allot server.
    #[arg(long, default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// Address of the simulated Apple service.
    #[arg(long, default_value = "127.0.0.1:9100")]
    sim_listen: SocketAddr,
}

pub async fn run(args: DemoArgs) -> anyhow::Result<()> {
    let data_dir = args
        .data_dir
        .unwrap_or_else(|| std::env::temp_dir().join(format!("allot-demo-{}", std::process::id())));
    std::fs::create_dir_all(&data_dir)
        .with_context(|| format!("creating {}", data_dir.display()))?;
    let sim = allot_apple_sim::start(SimOptions {
        listen: args.sim_listen,
        scenario: Scenario::demo(),
        token_dir: Some(data_dir.join("tokens")),
        public_url: None,
        trust: allot_trust::Trust::system(),
    })
    .await?;
    let locations: Vec<(String, String, allot_domain::Program, bool)> = {
        let w = sim.shared.lock().expect("world lock");
        w.locations
            .iter()
            .enumerate()
            .map(|(i, l)| {
                let program = match l.program {
                    allot_apple_sim::model::Program::Education => allot_domain::Program::Education,
                    allot_apple_sim::model::Program::Business => allot_domain::Program::Business,
                };
                // Locations Apple sold subscriptions into: the demo manages them too.
                let subscriptions = !l.subscriptions.list.is_empty();
                (
                    l.name.clone(),
                    w.current_token[i].clone(),
                    program,
                    subscriptions,
                )
            })
            .collect()
    };
    let admin_key = allot_secrets::random_token("allot_demo_");
    let console_password = demo_console_password(&data_dir)?;
    let webhook_key = allot_secrets::random_token("");
    // The simulated MDM: its devices report to the server's webhook, the server sends it installs.
    let mdm = std::sync::Arc::new(
        allot_mdm::fake::FakeNanoMdm::start(allot_mdm::fake::FakeOptions {
            webhook_url: Some(format!("http://{}/mdm/webhook", args.listen)),
            hmac_key: Some(webhook_key.as_bytes().to_vec()),
            // Declarative management forwarded as NanoMDM's -dm does, signed.
            dm_url: Some(format!("http://{}/mdm/declarative/", args.listen)),
            dm_hmac_key: Some(webhook_key.as_bytes().to_vec()),
            ..Default::default()
        })
        .await?,
    );
    let config = Config {
        listen: args.listen,
        data_dir: data_dir.clone(),
        apple_url: sim.apple_url(),
        public_url: Some(format!("http://{}", args.listen)),
        admin_api_key: Some(admin_key.clone()),
        console_admin_password: Some(console_password.clone()),
        mdm_webhook_hmac_key: Some(webhook_key.clone()),
        dm_hmac_key: Some(webhook_key.clone()),
        nanomdm_url: Some(mdm.base_url.clone()),
        nanomdm_api_key: Some(allot_mdm::fake::FakeOptions::default().api_key),
        deploy_tick: Duration::from_secs(2),
        event_poll: Duration::from_secs(1),
        ..Default::default()
    };
    let server = Server::build(&config).await?;
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    let router = server.router.clone();
    tokio::spawn(async move {
        let service = router.into_make_service_with_connect_info::<std::net::SocketAddr>();
        if let Err(e) = axum::serve(listener, service).await {
            tracing::error!("server stopped: {e}");
        }
    });
    let engine = server.state.engine.clone();
    say!("Adding the demo organization's content tokens…");
    for (name, token, program, subscriptions) in &locations {
        let added = match server.state.store.token_by_name(name).await? {
            Some(t) => t,
            None => {
                engine
                    .add_token(AddToken {
                        name: name.clone(),
                        token_text: token.clone(),
                        description: format!("Demo location {name}"),
                        categories: vec!["demo".into()],
                        apple_account: "content-manager@example.com".into(),
                        program: *program,
                    })
                    .await?
            }
        };
        match engine.sync(added.id, SyncKind::Full, "added").await {
            Ok(o) => say!(
                "  {name:<22} synced: {} assignments",
                o.counts.assignments_added
            ),
            Err(e) => say!("  {name:<22} {e}"),
        }
        if *subscriptions {
            match engine.enable_subscriptions(added.id).await {
                Ok(n) => say!("  {name:<22} {n} subscriptions managed"),
                Err(e) => say!("  {name:<22} subscriptions: {e}"),
            }
        }
    }
    let _schedule = server.start_schedule();
    let _deployments = server.start_deployments();
    let _alerts = server.start_alerts();
    let (udids, enrolled) = fleet(&server, &mdm).await?;
    // Devices check in every few seconds and answer what is queued for them.
    tokio::spawn(async move {
        loop {
            for u in &udids {
                mdm.drain(u).await;
            }
            tokio::time::sleep(Duration::from_secs(2)).await;
        }
    });
    say!("Simulated devices: {enrolled} enrolled through a fake NanoMDM; collections \"Northwind iPhones\", \"Springfield High iPads\" and \"Northwind Staff\" (people)");
    say!("");
    say!("Allot demo is running (data in {})", data_dir.display());
    say!(
        "  Console    http://{}/   user admin, password {console_password}",
        args.listen
    );
    say!(
        "  API        http://{}/api/v1/   (OpenAPI: /api/v1/openapi.json)",
        args.listen
    );
    say!("  API key    {admin_key}");
    say!(
        "  Apple      {} (simulated; control API at {}/_sim/)",
        sim.apple_url(),
        sim.base_url
    );
    say!("Try, in another terminal:");
    say!(
        "  export ALLOT_SERVER=http://{} ALLOT_API_KEY={admin_key}",
        args.listen
    );
    say!("  cargo run --release -- tokens list");
    say!("  cargo run --release -- apps list");
    say!("  cargo run --release -- deployments plan --app 908519492 --collection \"Springfield High iPads\"");
    say!("  cargo run --release -- deployments create --app 908519492 --collection \"Springfield High iPads\"");
    say!("  cargo run --release -- deployments show 1");
    say!("Stop with Ctrl-C.");
    tokio::signal::ctrl_c().await?;
    tokio::time::sleep(Duration::from_millis(50)).await;
    Ok(())
}

/// The simulated fleet: devices whose serial numbers match the demo organization's device
/// licenses, enrolled through the fake NanoMDM whose webhook tells the server about them.
async fn fleet(
    server: &Server,
    mdm: &allot_mdm::fake::FakeNanoMdm,
) -> anyhow::Result<(Vec<String>, usize)> {
    use allot_mdm::fake::SimDevice;
    let groups = [
        ("Northwind iPhones", "DMPNW", 40, "iPhone14,2", "iPhone"),
        ("Springfield High iPads", "DMQSP", 60, "iPad13,1", "iPad"),
    ];
    let store = &server.state.store;
    let mut udids = Vec::new();
    for (collection, prefix, n, product, kind) in groups {
        let c = match store
            .insert_collection(collection, "devices", "Demo devices", allot_sync::now_ms())
            .await
        {
            Ok(c) => c.id,
            Err(_) => store
                .collections()
                .await?
                .into_iter()
                .find(|c| c.name == collection)
                .map(|c| c.id)
                .unwrap_or_default(),
        };
        let mut ids = Vec::new();
        for i in 1..=n {
            let serial = format!("{prefix}{i:05}");
            let udid = format!("0000{:04X}-{serial}", i);
            let device = SimDevice {
                udid: udid.clone(),
                serial_number: serial.clone(),
                product_name: product.into(),
                name: format!("{kind} {i}"),
            };
            if mdm.enroll(device).await {
                udids.push(udid);
            }
            if let Some(d) = store.device_by_serial(&serial).await? {
                ids.push(d.id);
            }
        }
        store.add_collection_members(c, &ids).await?;
        if prefix == "DMPNW" {
            staff(server, &ids).await?;
        }
    }
    let enrolled = udids.len();
    Ok((udids, enrolled))
}

/// Northwind's staff: one person per iPhone (its primary user), and a collection of them, for
/// user-licensed deployments and the invitation flow.
async fn staff(server: &Server, phones: &[i64]) -> anyhow::Result<()> {
    let store = &server.state.store;
    let now = allot_sync::now_ms();
    let mut people = Vec::new();
    for (i, device) in phones.iter().enumerate() {
        let email = format!("employee{:02}@northwind.example", i + 1);
        let person = match store.person_by_email(&email).await? {
            Some(p) => p,
            None => {
                store
                    .insert_person(
                        &allot_store::NewPerson {
                            name: format!("Employee {:02}", i + 1),
                            email: Some(email),
                            managed_apple_id: None,
                            department: None,
                        },
                        &uuid_like(i),
                        now,
                    )
                    .await?
            }
        };
        store
            .set_primary_person(*device, Some(person.id), now)
            .await?;
        people.push(person.id);
    }
    let c = match store
        .insert_collection("Northwind Staff", "users", "Demo people", now)
        .await
    {
        Ok(c) => c.id,
        Err(_) => store
            .collection(None, Some("Northwind Staff"))
            .await?
            .map(|c| c.id)
            .unwrap_or_default(),
    };
    store.add_collection_members(c, &people).await?;
    Ok(())
}

/// An opaque clientUserId for a demo person (Apple asks for GUIDs, never emails).
fn uuid_like(i: usize) -> String {
    format!("6f1c2d3e-0000-4000-8000-{:012x}", i + 1)
}

/// The console password of a demo data folder: made on its first run, kept beside the database
/// (readable by its owner only) so a named folder keeps working.
fn demo_console_password(data_dir: &std::path::Path) -> anyhow::Result<String> {
    let path = data_dir.join("demo-console-password");
    if let Ok(p) = std::fs::read_to_string(&path) {
        return Ok(p.trim().to_owned());
    }
    std::fs::create_dir_all(data_dir)?;
    let password = allot_secrets::random_token("");
    let mut f = std::fs::OpenOptions::new();
    f.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut f, 0o600);
    std::io::Write::write_all(&mut f.open(&path)?, password.as_bytes())?;
    Ok(password)
}
