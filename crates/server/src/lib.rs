//! `allot serve`: opens the store, loads the secret key, makes the first admin key, starts the
//! sync schedule, and serves the REST API and Apple's notification endpoint.

mod access;
pub mod alerts;
pub mod api;
mod audit;
pub mod auth;
pub mod config;
pub mod console;
mod declarative;
pub mod error;
mod input;
mod mdm_webhook;
mod metrics;
mod notifications;
pub mod roles;

use std::time::Duration;

use allot_apple_client::{AppleClient, ClientOptions};
use allot_secrets::SecretBox;
use allot_store::Store;
use allot_sync::{Instance, SyncConfig, SyncEngine};
use anyhow::Context;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use axum::Router;

pub use config::Config;

#[derive(Clone)]
pub struct AppState {
    pub store: Store,
    pub engine: SyncEngine,
    /// Key of NanoMDM's webhook signature; none turns the webhook off.
    pub mdm_webhook_key: Option<std::sync::Arc<Vec<u8>>>,
    /// Key of the declarations protocol's signature (NanoMDM's `-dm-send-hmac-key`); none: not
    /// checked.
    pub dm_hmac_key: Option<std::sync::Arc<Vec<u8>>>,
    pub executor: allot_deploy::Executor,
    /// Failed console sign-ins per user name.
    pub sign_ins: std::sync::Arc<console::SignInThrottle>,
    /// Alerts and outgoing webhooks.
    pub alerts: alerts::Alerts,
    /// The bearer token `/metrics` asks for (none: metrics are off).
    pub metrics_token: Option<std::sync::Arc<String>>,
}

/// A server ready to serve; tests use it directly.
pub struct Server {
    pub state: AppState,
    pub router: Router,
    /// The admin API key, when this start created it (to print once).
    pub new_admin_key: Option<String>,
    /// True when this start created the secret key file (tell the admin to back it up).
    pub new_secret_key: Option<std::path::PathBuf>,
    /// The console's `admin` password, when this start created the account (to print once).
    pub new_console_password: Option<String>,
    schedule_tick: Duration,
    alert_check: Duration,
    deploy_tick: Duration,
    event_poll: Duration,
}

/// The request size limit: content tokens and API bodies are small.
const BODY_LIMIT: usize = 1024 * 1024;

impl Server {
    pub async fn build(config: &Config) -> anyhow::Result<Self> {
        std::fs::create_dir_all(&config.data_dir).with_context(|| {
            format!("creating the data directory {}", config.data_dir.display())
        })?;
        let store = Store::connect(&config.database()).await.with_context(|| {
            format!(
                "opening the database {}",
                config::redact_url(&config.database())
            )
        })?;
        restrict_data_files(&config.data_dir)?;
        let (secrets, new_secret_key) = match &config.secret_key {
            Some(k) => (SecretBox::from_base64(k)?, None),
            None => {
                let path = config.data_dir.join("secret.key");
                let (b, created) = SecretBox::load_or_create(&path)?;
                (b, created.then_some(path))
            }
        };
        check_secret_key(&store, &secrets).await?;
        let instance_id = store
            .setting_or_insert("instance_id", &uuid::Uuid::new_v4().to_string())
            .await?;
        // Devices that said their OS before its ordering number existed (migration 0018).
        store.fill_os_version_numbers().await?;
        let new_admin_key = ensure_admin_key(&store, config.admin_api_key.as_deref()).await?;
        let new_console_password =
            console::ensure_admin_account(&store, config.console_admin_password.as_deref()).await?;
        let apple = AppleClient::new(ClientOptions {
            trust: config.trust.clone(),
            ..ClientOptions::new(&config.apple_url)
        });
        let instance = Instance {
            id: instance_id,
            name: "Allot".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            public_url: config.public_url.clone(),
        };
        let sync_config = SyncConfig {
            delta_interval: config.delta_interval,
            full_interval: config.full_interval,
            lease_owner: Some(lease_owner(&config.data_dir)?),
            lease: config.sync_lease,
            metadata_language: config.metadata_language.clone(),
            metadata_max_age: config.metadata_max_age,
            catalog: metadata_api_client(config)?,
            subscription_event_poll: config.event_poll,
            catalog_storefronts: config
                .metadata_api
                .as_ref()
                .map(|m| m.storefronts.clone())
                .unwrap_or_default(),
            ..Default::default()
        };
        let alerts = alerts::Alerts::new(
            store.clone(),
            alerts::outbox::Outbox::new(
                store.clone(),
                secrets.clone(),
                &config.trust,
                config.webhook_retry,
                config
                    .smtp
                    .as_ref()
                    .map(|s| alerts::outbox::Mailer::new(s, &config.trust))
                    .transpose()?,
            )?,
            config.alert_low_licenses,
        );
        // The configuration's e-mail recipients become mailto: endpoints of the outbox.
        store
            .set_email_endpoints(
                &alerts::email_endpoints(&config.alert_email),
                &secrets.seal(b"mailto"),
                allot_sync::now_ms(),
            )
            .await?;
        let engine = SyncEngine::new(store.clone(), apple, secrets, instance, sync_config);
        let mdm_webhook_key = config
            .mdm_webhook_hmac_key
            .as_ref()
            .map(|k| std::sync::Arc::new(k.as_bytes().to_vec()));
        let mdm = match (&config.nanomdm_url, &config.nanomdm_api_key) {
            (Some(url), Some(key)) => Some(allot_mdm::NanoMdm::new(allot_mdm::NanoMdmConfig {
                base_url: url.clone(),
                prefix: config.nanomdm_prefix.clone(),
                user: config.nanomdm_user.clone(),
                api_key: key.clone(),
                trust: config.trust.clone(),
            })),
            _ => None,
        };
        let executor = allot_deploy::Executor::new(engine.clone(), mdm, config.event_poll)
            .with_reclaim_grace(config.reclaim_grace)
            .with_app_list_interval(config.app_list_interval)
            .with_push_backoff(config.push_backoff)
            .with_device_info_interval(config.device_info_interval)
            .with_mdm_backoff(config.mdm_backoff)
            .with_declarative(config.declarative);
        let state = AppState {
            store,
            engine,
            mdm_webhook_key,
            dm_hmac_key: config
                .dm_hmac_key
                .as_ref()
                .map(|k| std::sync::Arc::new(k.as_bytes().to_vec())),
            executor,
            sign_ins: Default::default(),
            alerts,
            metrics_token: config.metrics_token.clone().map(std::sync::Arc::new),
        };
        let router = Router::new()
            .merge(api::router())
            .merge(console::router())
            .route(
                "/apple/notifications/{token_id}",
                post(notifications::receive),
            )
            .route("/mdm/webhook", post(mdm_webhook::receive))
            .merge(declarative::router())
            .route("/health", get(|| async { "ok" }))
            .route("/healthz", get(|| async { "ok" }))
            .route("/readyz", get(readyz))
            .route("/metrics", get(metrics::metrics))
            .layer(DefaultBodyLimit::max(BODY_LIMIT))
            .layer(axum::middleware::from_fn_with_state(
                state.clone(),
                audit::record_changes,
            ))
            .layer(axum::middleware::from_fn(access::per_request))
            .layer(axum::middleware::from_fn(input::refuse_nul_in_uri))
            .route_layer(axum::middleware::from_fn(metrics::count_requests))
            .layer(axum::middleware::from_fn(error::json_error_bodies))
            .layer(axum::middleware::from_fn(security_headers))
            .layer(tower_http::trace::TraceLayer::new_for_http())
            .with_state(state.clone());
        let router = if config.trust_forwarded_for {
            router.layer(axum::Extension(TrustForwardedFor))
        } else {
            router
        };
        Ok(Self {
            state,
            router,
            new_admin_key,
            new_secret_key,
            new_console_password,
            schedule_tick: config.schedule_tick,
            alert_check: config.alert_check,
            deploy_tick: config.deploy_tick,
            event_poll: config.event_poll,
        })
    }

    /// Starts the alert checks and webhook deliveries in the background.
    pub fn start_alerts(&self) -> tokio::task::JoinHandle<()> {
        self.state
            .alerts
            .start(self.state.executor.clone(), self.alert_check)
    }

    /// Keeps the database's query statistics current in the background, at start-up and hourly
    /// (see `Store::optimize`): plans follow the data as it grows.
    pub fn start_maintenance(&self) -> tokio::task::JoinHandle<()> {
        let store = self.state.store.clone();
        tokio::spawn(async move {
            let mut hourly = tokio::time::interval(Duration::from_secs(3_600));
            loop {
                hourly.tick().await;
                if let Err(e) = store.optimize().await {
                    tracing::warn!(error = %e, "refreshing the database's statistics failed");
                }
            }
        })
    }

    /// Starts the sync schedule in the background.
    pub fn start_schedule(&self) -> tokio::task::JoinHandle<()> {
        tokio::spawn(self.state.engine.clone().run_schedule(self.schedule_tick))
    }

    /// Starts the reconcile loop in the background: every deployment takes a pass each
    /// interval, at once when woken (a notification, a device's report), and every `event_poll`
    /// while requests to Apple are in flight.
    pub fn start_deployments(&self) -> tokio::task::JoinHandle<()> {
        let executor = self.state.executor.clone();
        let tick = self.deploy_tick;
        let poll = self.event_poll.max(Duration::from_millis(10));
        tokio::spawn(async move {
            loop {
                if let Err(e) = executor.run_all().await {
                    tracing::warn!(error = %e, "deployment pass failed");
                }
                let pause = match executor.requests_in_flight().await {
                    Ok(true) => tick.min(poll),
                    _ => tick,
                };
                tokio::select! {
                    _ = tokio::time::sleep(pause) => {}
                    _ = executor.woken() => {}
                }
            }
        })
    }
}

/// Ready when the database answers (its migrations ran before the server was built): for load
/// balancers and orchestrators, without credentials.
async fn readyz(
    axum::extract::State(state): axum::extract::State<AppState>,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let backend = state.store.backend();
    match state.store.count_accounts().await {
        Ok(_) => axum::Json(serde_json::json!({ "status": "ready", "database": backend }))
            .into_response(),
        Err(e) => {
            tracing::warn!(error = %e, "readiness: the database does not answer");
            (
                axum::http::StatusCode::SERVICE_UNAVAILABLE,
                axum::Json(serde_json::json!({ "status": "not ready", "database": backend, "error": "the database does not answer" })),
            )
                .into_response()
        }
    }
}

/// The key must be the one the stored secrets were written with: checked once at start-up.
async fn check_secret_key(store: &Store, secrets: &SecretBox) -> anyhow::Result<()> {
    const PROBE: &str = "allot secret key check";
    let sealed = allot_secrets_hex(&secrets.seal(PROBE.as_bytes()));
    let stored = store.setting_or_insert("secret_key_check", &sealed).await?;
    let bytes = from_hex(&stored).context("the stored secret key check is damaged")?;
    match secrets.open(&bytes) {
        Ok(p) if p == PROBE.as_bytes() => Ok(()),
        _ => anyhow::bail!(
            "the secret key does not match this database: start with the key file (or ALLOT_SECRET_KEY) it was created with"
        ),
    }
}

fn allot_secrets_hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn from_hex(s: &str) -> Option<Vec<u8>> {
    (0..s.len())
        .step_by(2)
        .map(|i| s.get(i..i + 2).and_then(|h| u8::from_str_radix(h, 16).ok()))
        .collect()
}

/// With no API key stored, the configured one becomes the admin key, or one is made.
async fn ensure_admin_key(
    store: &Store,
    configured: Option<&str>,
) -> anyhow::Result<Option<String>> {
    let now = allot_sync::now_ms();
    if let Some(k) = configured {
        // A new value replaces (revokes) the key the setting named before: that is rotation.
        let hash = allot_secrets::hash_api_key(k);
        match store.api_key_by_hash(&hash).await? {
            None => {
                store.insert_config_api_key(&hash, now).await?;
            }
            Some(key) if key.revoked_at.is_some() => tracing::warn!(
                "ALLOT_ADMIN_API_KEY names a key that was revoked: it stays revoked; set a new value"
            ),
            Some(_) => {}
        }
        return Ok(None);
    }
    if store.count_api_keys().await? > 0 {
        return Ok(None);
    }
    let key = allot_secrets::random_token("allot_");
    store
        .insert_api_key(
            "admin",
            &allot_secrets::hash_api_key(&key),
            "admin",
            None,
            now,
        )
        .await?;
    Ok(Some(key))
}

/// The data folder and the SQLite files in it (the database holds hashed keys, encrypted tokens
/// and everything synced) are for Allot's own user alone, like `secret.key`. SQLite makes its WAL
/// and shared-memory files with the database file's mode.
#[cfg(unix)]
fn restrict_data_files(dir: &std::path::Path) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let set = |path: &std::path::Path, mode: u32| -> anyhow::Result<()> {
        match std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                Err(e).with_context(|| format!("restricting {}", path.display()))
            }
            _ => Ok(()),
        }
    };
    set(dir, 0o700)?;
    for file in ["allot.db", "allot.db-wal", "allot.db-shm"] {
        set(&dir.join(file), 0o600)?;
    }
    Ok(())
}

#[cfg(not(unix))]
fn restrict_data_files(_dir: &std::path::Path) -> anyhow::Result<()> {
    Ok(())
}

/// The address a request comes from: the peer's, or with `ALLOT_TRUST_FORWARDED_FOR` the last
/// address in `X-Forwarded-For` (set by the reverse proxy in front); "unknown" when the server
/// was started without connection info (tests).
pub struct ClientAddress(pub String);

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for ClientAddress {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        _state: &S,
    ) -> Result<Self, Self::Rejection> {
        let trust = parts.extensions.get::<TrustForwardedFor>().is_some();
        let forwarded = trust
            .then(|| parts.headers.get("x-forwarded-for"))
            .flatten()
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.rsplit(',').next())
            .map(|a| a.trim().to_owned())
            .filter(|a| a.parse::<std::net::IpAddr>().is_ok());
        let peer = parts
            .extensions
            .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
            .map(|c| c.0.ip().to_string());
        Ok(ClientAddress(
            forwarded.or(peer).unwrap_or_else(|| "unknown".into()),
        ))
    }
}

/// Marks requests whose `X-Forwarded-For` comes from our own reverse proxy.
#[derive(Clone, Copy)]
struct TrustForwardedFor;

/// Console pages may run only their own script and be framed by no one; no response is sniffed
/// into another type. (Inline `style` attributes draw the usage bars; icons come from Apple.)
async fn security_headers(
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::http::header::{
        HeaderValue, CONTENT_SECURITY_POLICY, X_CONTENT_TYPE_OPTIONS, X_FRAME_OPTIONS,
    };
    let mut res = next.run(req).await;
    let h = res.headers_mut();
    h.insert(
        CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src * data:; \
             frame-ancestors 'none'; form-action 'self'; base-uri 'none'; object-src 'none'",
        ),
    );
    h.insert(X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    res
}

/// This instance's lease name, kept in its data folder: instances sharing a database each have
/// their own, and a restarted instance takes back at once the work it held when it died.
fn lease_owner(data_dir: &std::path::Path) -> anyhow::Result<String> {
    let path = data_dir.join("instance-id");
    if let Ok(id) = std::fs::read_to_string(&path) {
        if !id.trim().is_empty() {
            return Ok(id.trim().to_owned());
        }
    }
    let id = format!("allot-{}", uuid::Uuid::new_v4().simple());
    std::fs::write(&path, &id).with_context(|| format!("writing {}", path.display()))?;
    Ok(id)
}

/// The stored form of an API key (for tools that provision keys).
pub fn auth_hash(key: &str) -> String {
    allot_secrets::hash_api_key(key)
}

/// Runs `allot serve` until Ctrl-C.
pub async fn serve(config: Config) -> anyhow::Result<()> {
    let server = Server::build(&config).await?;
    if let Some(path) = &server.new_secret_key {
        tracing::warn!("created the secret key {}: back it up — without it the stored content tokens cannot be read", path.display());
    }
    if let Some(key) = &server.new_admin_key {
        // Printed once, to the terminal, not to the log.
        println!("Admin API key (shown only now; keep it safe):\n  {key}");
    }
    if let Some(password) = &server.new_console_password {
        println!("Console sign-in (shown only now): user admin, password {password}");
    }
    let interrupted = server.state.engine.recover_after_restart().await?;
    if interrupted > 0 {
        tracing::info!(
            interrupted,
            "syncs stopped by a previous shutdown will run again"
        );
    }
    let _schedule = server.start_schedule();
    let _deployments = server.start_deployments();
    let _alerts = server.start_alerts();
    let _maintenance = server.start_maintenance();
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    tracing::info!(listen = %config.listen, database = server.state.store.backend(), "Allot is serving");
    println!(
        "Allot console at http://{0}/ — API at http://{0}/api/v1/ (OpenAPI: /api/v1/openapi.json)",
        listener.local_addr()?
    );
    axum::serve(
        listener,
        server
            .router
            .into_make_service_with_connect_info::<std::net::SocketAddr>(),
    )
    .with_graceful_shutdown(async {
        let _ = tokio::signal::ctrl_c().await;
    })
    .await?;
    Ok(())
}

/// Apple's metadata API for organizations, when a developer key is configured.
fn metadata_api_client(
    config: &Config,
) -> anyhow::Result<Option<std::sync::Arc<allot_apple_client::CatalogClient>>> {
    let Some(api) = &config.metadata_api else {
        return Ok(None);
    };
    let key = api
        .developer_key()
        .map_err(|e| anyhow::anyhow!("the metadata API's developer key: {e}"))?;
    let mut client = allot_apple_client::CatalogClient::new(key, &config.trust);
    if let Some(url) = &api.url {
        client = client.with_base_url(url);
    }
    Ok(Some(std::sync::Arc::new(client)))
}
