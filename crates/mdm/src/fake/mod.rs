//! A fake NanoMDM with simulated devices, for tests and the demo (`shared/mdm/mdm-integration.md`
//! §5). Its API behaves as NanoMDM's does — Basic auth, plist validation, duplicate CommandUUIDs
//! refused, unknown ids queued (filekv) or refusing the whole request (SQL backends), `nopush`,
//! the 200/207/500 rule — and its devices check in, answer commands from their queue (or say
//! `NotNow`, or fail with an `ErrorChain`), and report through the webhook, signed, once.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex};

use axum::extract::{Path, RawQuery, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use axum::{Json, Router};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use plist::{Dictionary, Value};
use serde_json::json;

mod declarative;

/// How unknown enrollment ids are treated at enqueue time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnknownIds {
    /// filekv / inmem: queued anyway, push fails for them.
    Queue,
    /// MySQL / PostgreSQL: the whole request fails, nothing is queued.
    Reject,
}

#[derive(Debug, Clone)]
pub struct FakeOptions {
    pub api_key: String,
    pub prefix: String,
    pub user: String,
    pub webhook_url: Option<String>,
    pub hmac_key: Option<Vec<u8>>,
    pub unknown_ids: UnknownIds,
    /// NanoMDM's `-dm`: where devices' declarative-management requests are forwarded (the base
    /// URL, ending with `/`), with `X-Enrollment-ID`.
    pub dm_url: Option<String>,
    /// NanoMDM's `-dm-send-hmac-key`: signs the forwarded requests' bodies.
    pub dm_hmac_key: Option<Vec<u8>>,
}

impl Default for FakeOptions {
    fn default() -> Self {
        Self {
            api_key: "nanomdm-api-key".into(),
            prefix: "/v1".into(),
            user: "nanomdm".into(),
            webhook_url: None,
            hmac_key: None,
            unknown_ids: UnknownIds::Queue,
            dm_url: None,
            dm_hmac_key: None,
        }
    }
}

/// How NanoMDM's pushes to Apple's push service fail (the commands are still queued).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PushFailure {
    /// APNs cannot be reached: a `push_error` per id, as NanoMDM words it.
    Unreachable,
    /// NanoMDM has no push certificate for the topic: one top-level `push_error`.
    NoCertificate,
}

/// A simulated device.
#[derive(Debug, Clone)]
pub struct SimDevice {
    pub udid: String,
    pub serial_number: String,
    /// `iPad13,1`, `iPhone14,2`, `Mac14,2`…
    pub product_name: String,
    pub name: String,
}

/// How a device answers its next commands.
#[derive(Debug, Clone, PartialEq)]
pub enum Behaviour {
    Accept,
    /// `NotNow` this many times (locked, in Setup Assistant…), then accept.
    NotNow(u32),
    /// Installs are acknowledged while still downloading (`State` `Installing`); the app shows
    /// as `Managed` in ManagedApplicationList from then on.
    SlowInstalls,
    /// `Error` with this `ErrorChain` entry for installs.
    FailInstalls {
        code: i64,
        domain: String,
        description: String,
    },
}

#[derive(Debug)]
struct Enrollment {
    device: SimDevice,
    token_updates: i64,
    queue: VecDeque<(String, Vec<u8>)>,
    behaviour: Behaviour,
    /// The command the device last answered NotNow: NanoMDM's reply to a NotNow is the next
    /// command, skipping that one once; after any other answer it comes straight back.
    skip_once: Option<String>,
    /// Bundle id → adamId of managed apps.
    apps: BTreeMap<String, i64>,
    /// Bundle id → the store version (`ExternalVersionIdentifier`) installed, where known.
    versions: HashMap<String, i64>,
    books: HashSet<i64>,
    /// What the device runs (`17.4`; a Mac `15.5`), as its Authenticate and DeviceInformation say.
    os_version: String,
    /// Bundle id → adamId of the apps a declaration manages (declarative app management): no
    /// MDM command may install or remove them, and ManagedApplicationList leaves them out.
    declared: BTreeMap<String, i64>,
    /// Declared apps whose declaration says `AutomaticAppUpdates: AlwaysOn` (bundle id →
    /// the declaration's identifier).
    auto_updated: HashMap<String, String>,
    /// The declarations token the device last synced to.
    dm_token: Option<String>,
    /// Apps removed from the device, by command or by a withdrawn declaration.
    removals: u64,
}

/// The OS a simulated device runs until told otherwise.
fn default_os_version(product_name: &str) -> &'static str {
    if product_name.starts_with("Mac") {
        "15.5"
    } else {
        "17.4"
    }
}

#[derive(Default)]
struct FakeState {
    enrollments: HashMap<String, Enrollment>,
    used_uuids: HashSet<String>,
    /// Every accepted enqueue: ids and the exact plist bytes.
    log: Vec<(Vec<String>, Vec<u8>)>,
    bundle_ids: HashMap<i64, String>,
    /// adamId → the store's current version (`ExternalVersionIdentifier`): what an install gets.
    store_versions: HashMap<i64, i64>,
    /// Webhook deliveries that were not answered 200 (NanoMDM does not retry).
    webhook_failures: u64,
    push_failure: Option<PushFailure>,
    /// Ids of every `/push` call, in order.
    pushes: Vec<Vec<String>>,
    /// An outage: every enqueue and push answers this status (a proxy's 502, NanoMDM's 500).
    outage: Option<u16>,
    /// Enqueue and push calls that reached the fake, answered or not.
    calls: u64,
    /// The OS a device not enrolled yet will report (`set_os_version` before `enroll`).
    os_presets: HashMap<String, String>,
}

type Shared = Arc<(FakeOptions, Mutex<FakeState>)>;

pub struct FakeNanoMdm {
    pub base_url: String,
    shared: Shared,
    http: reqwest::Client,
    _task: tokio::task::JoinHandle<()>,
}

impl FakeNanoMdm {
    pub async fn start(opts: FakeOptions) -> std::io::Result<Self> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let base_url = format!("http://{}", listener.local_addr()?);
        let prefix = opts.prefix.clone();
        let shared: Shared = Arc::new((opts, Mutex::default()));
        let app = Router::new()
            .route(&format!("{prefix}/enqueue/{{ids}}"), any(enqueue))
            .route(&format!("{prefix}/push/{{ids}}"), any(push))
            .route(&format!("{prefix}/pushcert"), get(push_cert))
            .route(
                "/version",
                get(|| async { Json(json!({ "version": "v0.9.0-fake" })) }),
            )
            .with_state(shared.clone());
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(Self {
            base_url,
            shared,
            http: reqwest::Client::new(),
            _task: task,
        })
    }

    fn state(&self) -> std::sync::MutexGuard<'_, FakeState> {
        self.shared.1.lock().expect("fake state lock")
    }

    /// The bundle id a device reports for an app it installs.
    pub fn set_bundle_id(&self, adam_id: i64, bundle_id: &str) {
        self.state()
            .bundle_ids
            .insert(adam_id, bundle_id.to_owned());
    }

    /// The store publishes a version of an app: installs from now on get it.
    pub fn set_store_version(&self, adam_id: i64, external_version_id: i64) {
        self.state()
            .store_versions
            .insert(adam_id, external_version_id);
    }

    /// The user deletes an app (or another tool removes it), without the MDM's knowledge.
    pub fn remove_app_behind(&self, udid: &str, bundle_id: &str) {
        if let Some(e) = self.state().enrollments.get_mut(udid) {
            e.apps.remove(bundle_id);
            e.versions.remove(bundle_id);
        }
    }

    /// An app appears on the device outside Allot (installed again by the user or another tool).
    pub fn install_app_behind(&self, udid: &str, bundle_id: &str, adam_id: i64) {
        if let Some(e) = self.state().enrollments.get_mut(udid) {
            e.apps.insert(bundle_id.to_owned(), adam_id);
        }
    }

    /// The version of an app a device runs (`ExternalVersionIdentifier`), where known.
    pub fn app_version(&self, udid: &str, bundle_id: &str) -> Option<i64> {
        self.state()
            .enrollments
            .get(udid)
            .and_then(|e| e.versions.get(bundle_id).copied())
    }

    /// The device updates its OS: its next DeviceInformation answer says so.
    pub fn set_os_version(&self, udid: &str, version: &str) {
        let mut s = self.state();
        match s.enrollments.get_mut(udid) {
            Some(e) => e.os_version = version.to_owned(),
            // Not enrolled yet: it will enroll running this version.
            None => {
                s.os_presets.insert(udid.to_owned(), version.to_owned());
            }
        }
    }

    pub fn set_behaviour(&self, udid: &str, b: Behaviour) {
        if let Some(e) = self.state().enrollments.get_mut(udid) {
            e.behaviour = b;
        }
    }

    /// Enrolls (or re-enrolls) a device: Authenticate, which clears its queue, then the first
    /// TokenUpdate. Returns whether both webhooks were answered 200.
    pub async fn enroll(&self, device: SimDevice) -> bool {
        self.enroll_with(device, true).await
    }

    /// Enrolls a device whose Authenticate webhook is lost (NanoMDM makes one attempt): only its
    /// TokenUpdate reaches the server, with the enrollment id and no serial number.
    pub async fn enroll_losing_authenticate(&self, device: SimDevice) -> bool {
        self.enroll_with(device, false).await
    }

    async fn enroll_with(&self, device: SimDevice, deliver_authenticate: bool) -> bool {
        let udid = device.udid.clone();
        let os_version = {
            let s = self.state();
            s.enrollments
                .get(&udid)
                .map(|e| e.os_version.clone())
                .or_else(|| s.os_presets.get(&udid).cloned())
                .unwrap_or_else(|| default_os_version(&device.product_name).to_owned())
        };
        let auth = checkin_plist(&[
            ("MessageType", "Authenticate"),
            ("UDID", &udid),
            ("SerialNumber", &device.serial_number),
            ("ProductName", &device.product_name),
            ("DeviceName", &device.name),
            ("OSVersion", &os_version),
            ("Topic", "com.apple.mgmt.External.fake"),
        ]);
        {
            let mut s = self.state();
            let e = s
                .enrollments
                .entry(udid.clone())
                .or_insert_with(|| Enrollment {
                    device: device.clone(),
                    token_updates: 0,
                    queue: VecDeque::new(),
                    skip_once: None,
                    behaviour: Behaviour::Accept,
                    apps: BTreeMap::new(),
                    versions: HashMap::new(),
                    books: HashSet::new(),
                    os_version: os_version.clone(),
                    declared: BTreeMap::new(),
                    auto_updated: HashMap::new(),
                    dm_token: None,
                    removals: 0,
                });
            e.device = device;
            e.dm_token = None;
            e.queue.clear();
            e.skip_once = None;
            e.token_updates = 0;
        }
        let a = !deliver_authenticate
            || self.webhook(json!({ "topic": "mdm.Authenticate", "checkin_event": checkin_event(&udid, &auth, None) })).await;
        let tally = {
            let mut s = self.state();
            let e = s.enrollments.get_mut(&udid).expect("just enrolled");
            e.token_updates += 1;
            e.token_updates
        };
        let update = checkin_plist(&[
            ("MessageType", "TokenUpdate"),
            ("UDID", &udid),
            ("Topic", "com.apple.mgmt.External.fake"),
        ]);
        let t = self.webhook(json!({ "topic": "mdm.TokenUpdate", "checkin_event": checkin_event(&udid, &update, Some(tally)) })).await;
        a && t
    }

    /// The device's MDM profile is removed: CheckOut.
    pub async fn check_out(&self, udid: &str) -> bool {
        let p = checkin_plist(&[
            ("MessageType", "CheckOut"),
            ("UDID", udid),
            ("Topic", "com.apple.mgmt.External.fake"),
        ]);
        self.webhook(
            json!({ "topic": "mdm.CheckOut", "checkin_event": checkin_event(udid, &p, None) }),
        )
        .await
    }

    /// One device connection: answers the next queued command (or reports `Idle`). Returns the
    /// status reported and the command's uuid.
    pub async fn check_in(&self, udid: &str) -> Option<(String, Option<String>)> {
        let mut declarative = false;
        let (status, uuid, report) = {
            let mut s = self.state();
            let bundles = s.bundle_ids.clone();
            let versions = s.store_versions.clone();
            let e = s.enrollments.get_mut(udid)?;
            // The reply to a NotNow skips the NotNow'd command once, if another is queued; a
            // later session (nothing else queued) gets it again.
            let skip = e.skip_once.take();
            let at = e
                .queue
                .iter()
                .position(|(u, _)| Some(u) != skip.as_ref())
                .or(if e.queue.is_empty() { None } else { Some(0) });
            match at.and_then(|i| e.queue.get(i).cloned().map(|c| (i, c))) {
                None => (
                    "Idle".to_owned(),
                    None,
                    report_plist(udid, "Idle", None, Dictionary::new()),
                ),
                Some((i, (uuid, bytes))) => {
                    declarative = crate::commands::parse_command(&bytes)
                        .is_some_and(|(_, t, _)| t == "DeclarativeManagement");
                    let (status, keys) = answer(e, &bytes, &bundles, &versions);
                    if status == "NotNow" {
                        e.skip_once = Some(uuid.clone());
                    } else {
                        e.queue.remove(i);
                    }
                    (
                        status.clone(),
                        Some(uuid.clone()),
                        report_plist(udid, &status, Some(&uuid), keys),
                    )
                }
            }
        };
        let mut ack = json!({ "udid": udid, "ids": { "id": udid, "type": "Device" }, "status": status, "raw_payload": STANDARD.encode(&report) });
        if let Some(u) = &uuid {
            ack["command_uuid"] = json!(u);
        }
        self.webhook(json!({ "topic": "mdm.Connect", "acknowledge_event": ack }))
            .await;
        if status == "Acknowledged" && declarative {
            // Told its declarations changed: the device fetches and applies them now.
            self.declarative_sync(udid).await;
        }
        Some((status, uuid))
    }

    /// Checks in while commands are queued, until the device says `NotNow`; returns the statuses.
    pub async fn drain(&self, udid: &str) -> Vec<String> {
        let mut seen = Vec::new();
        while !self.queue(udid).is_empty() {
            match self.check_in(udid).await {
                Some((status, Some(_))) if status != "NotNow" => seen.push(status),
                _ => break,
            }
        }
        seen
    }

    /// Queued commands of a device: (uuid, RequestType).
    pub fn queue(&self, udid: &str) -> Vec<(String, String)> {
        let s = self.state();
        s.enrollments
            .get(udid)
            .map(|e| {
                e.queue
                    .iter()
                    .map(|(u, b)| {
                        (
                            u.clone(),
                            crate::commands::parse_command(b)
                                .map(|c| c.1)
                                .unwrap_or_default(),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Bundle ids of the apps a device manages.
    pub fn installed_apps(&self, udid: &str) -> Vec<String> {
        self.state()
            .enrollments
            .get(udid)
            .map(|e| e.apps.keys().cloned().collect())
            .unwrap_or_default()
    }

    /// Every accepted enqueue: ids and the exact plist bytes.
    pub fn enqueued(&self) -> Vec<(Vec<String>, Vec<u8>)> {
        self.state().log.clone()
    }

    pub fn webhook_failures(&self) -> u64 {
        self.state().webhook_failures
    }

    /// Hands an answered command out again at the device's next check-in, as NanoMDM's file and
    /// in-memory queues can. False if the command was never queued for it.
    pub fn hand_out_again(&self, udid: &str, command_uuid: &str) -> bool {
        let mut s = self.state();
        let Some(bytes) = s
            .log
            .iter()
            .filter(|(ids, _)| ids.iter().any(|i| i == udid))
            .map(|(_, b)| b.clone())
            .find(|b| crate::commands::parse_command(b).is_some_and(|(u, _, _)| u == command_uuid))
        else {
            return false;
        };
        match s.enrollments.get_mut(udid) {
            Some(e) => {
                e.queue.push_front((command_uuid.to_owned(), bytes));
                true
            }
            None => false,
        }
    }

    /// From now on, pushes fail this way (none: they work again).
    /// NanoMDM (or the proxy in front of it) answers every enqueue and push with this status
    /// until `None`.
    pub fn set_outage(&self, status: Option<u16>) {
        self.state().outage = status;
    }

    /// Enqueue and push calls made so far, refused ones included.
    pub fn calls(&self) -> u64 {
        self.state().calls
    }

    pub fn set_push_failure(&self, failure: Option<PushFailure>) {
        self.state().push_failure = failure;
    }

    /// The ids of every `/push` call so far.
    pub fn pushes(&self) -> Vec<Vec<String>> {
        self.state().pushes.clone()
    }

    /// One attempt, as NanoMDM: anything but 200 is counted and dropped.
    async fn webhook(&self, mut event: serde_json::Value) -> bool {
        let opts = &self.shared.0;
        let Some(url) = &opts.webhook_url else {
            return true;
        };
        event["event_id"] = json!(format!("{:016x}", rand_u64()));
        event["created_at"] =
            json!(chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true));
        let body = serde_json::to_vec(&event).expect("serialisable");
        let mut req = self
            .http
            .post(url)
            .header(header::CONTENT_TYPE, "application/json; charset=utf-8");
        if let Some(key) = &opts.hmac_key {
            req = req.header("X-Hmac-Signature", crate::webhook::sign(key, &body));
        }
        let ok = req
            .body(body)
            .send()
            .await
            .is_ok_and(|r| r.status() == StatusCode::OK);
        if !ok {
            self.state().webhook_failures += 1;
        }
        ok
    }
}

fn rand_u64() -> u64 {
    let u = uuid::Uuid::new_v4();
    u.as_u64_pair().0
}

fn checkin_plist(pairs: &[(&str, &str)]) -> Vec<u8> {
    let mut d = Dictionary::new();
    for (k, v) in pairs {
        d.insert((*k).into(), Value::String((*v).into()));
    }
    let mut out = Vec::new();
    plist::to_writer_xml(&mut out, &Value::Dictionary(d)).expect("plist to memory");
    out
}

fn checkin_event(udid: &str, raw: &[u8], tally: Option<i64>) -> serde_json::Value {
    let mut e = json!({ "udid": udid, "ids": { "id": udid, "type": "Device" }, "raw_payload": STANDARD.encode(raw) });
    if let Some(t) = tally {
        e["token_update_tally"] = json!(t);
    }
    e
}

fn report_plist(udid: &str, status: &str, uuid: Option<&str>, mut keys: Dictionary) -> Vec<u8> {
    keys.insert("UDID".into(), Value::String(udid.into()));
    keys.insert("Status".into(), Value::String(status.into()));
    if let Some(u) = uuid {
        keys.insert("CommandUUID".into(), Value::String(u.into()));
    }
    let mut out = Vec::new();
    plist::to_writer_xml(&mut out, &Value::Dictionary(keys)).expect("plist to memory");
    out
}

/// The device's answer to a command: its status and response keys.
fn answer(
    e: &mut Enrollment,
    bytes: &[u8],
    bundles: &HashMap<i64, String>,
    store_versions: &HashMap<i64, i64>,
) -> (String, Dictionary) {
    let mut keys = Dictionary::new();
    let Some((_, request_type, cmd)) = crate::commands::parse_command(bytes) else {
        return ("CommandFormatError".into(), keys);
    };
    if let Behaviour::NotNow(n) = &mut e.behaviour {
        if *n > 0 {
            *n -= 1;
            return ("NotNow".into(), keys);
        }
    }
    let adam = cmd.get("iTunesStoreID").and_then(Value::as_signed_integer);
    let commanded_bundle = match request_type.as_str() {
        "InstallApplication" => adam.map(|a| bundle_of(bundles, a)),
        "RemoveApplication" => cmd
            .get("Identifier")
            .and_then(Value::as_string)
            .map(str::to_owned),
        _ => None,
    };
    if commanded_bundle.is_some_and(|b| e.declared.contains_key(&b)) {
        // Apple refuses a command for an app a declaration manages.
        keys.insert(
            "ErrorChain".into(),
            Value::Array(vec![Value::Dictionary(error_entry(
                12_100,
                "MCMDMErrorDomain",
                "The app is managed by a declaration (declarative app management)",
            ))]),
        );
        return ("Error".into(), keys);
    }
    match request_type.as_str() {
        "InstallApplication" => {
            if let Behaviour::FailInstalls {
                code,
                domain,
                description,
            } = &e.behaviour
            {
                keys.insert(
                    "ErrorChain".into(),
                    Value::Array(vec![Value::Dictionary(error_entry(
                        *code,
                        domain,
                        description,
                    ))]),
                );
                return ("Error".into(), keys);
            }
            let adam = adam.unwrap_or_default();
            let bundle = bundle_of(bundles, adam);
            e.apps.insert(bundle.clone(), adam);
            match store_versions.get(&adam) {
                Some(v) => e.versions.insert(bundle.clone(), *v),
                None => e.versions.remove(&bundle),
            };
            keys.insert("Identifier".into(), Value::String(bundle));
            let state = if e.behaviour == Behaviour::SlowInstalls {
                "Installing"
            } else {
                "Managed"
            };
            keys.insert("State".into(), Value::String(state.into()));
        }
        "RemoveApplication" => {
            if let Some(id) = cmd.get("Identifier").and_then(Value::as_string) {
                if e.apps.remove(id).is_some() {
                    e.removals += 1;
                }
                e.versions.remove(id);
            }
        }
        "InstallMedia" => {
            e.books.insert(adam.unwrap_or_default());
            keys.insert("State".into(), Value::String("Installed".into()));
            keys.insert("MediaType".into(), Value::String("Book".into()));
        }
        "RemoveMedia" => {
            e.books.remove(&adam.unwrap_or_default());
        }
        "DeviceInformation" => {
            let mut answers = Dictionary::new();
            let wanted: Vec<&str> = cmd
                .get("Queries")
                .and_then(Value::as_array)
                .map(|a| a.iter().filter_map(Value::as_string).collect())
                .unwrap_or_default();
            for (key, value) in [
                ("SerialNumber", e.device.serial_number.as_str()),
                ("ProductName", e.device.product_name.as_str()),
                ("Model", e.device.product_name.as_str()),
                ("DeviceName", e.device.name.as_str()),
                ("OSVersion", e.os_version.as_str()),
                ("UDID", e.device.udid.as_str()),
            ] {
                if wanted.contains(&key) {
                    answers.insert(key.into(), Value::String(value.into()));
                }
            }
            keys.insert("QueryResponses".into(), Value::Dictionary(answers));
        }
        "InviteToProgram" => {
            keys.insert(
                "InvitationResult".into(),
                Value::String("Acknowledged".into()),
            );
        }
        "ManagedApplicationList" => {
            let only: Option<Vec<&str>> = cmd
                .get("Identifiers")
                .and_then(Value::as_array)
                .map(|a| a.iter().filter_map(Value::as_string).collect());
            let mut list = Dictionary::new();
            for bundle in e.apps.keys() {
                if only.as_ref().is_some_and(|o| !o.contains(&bundle.as_str()))
                    || e.declared.contains_key(bundle)
                {
                    // Apps a declaration manages are not listed (their status reports say).
                    continue;
                }
                let mut entry = Dictionary::new();
                entry.insert("Status".into(), Value::String("Managed".into()));
                if let Some(v) = e.versions.get(bundle) {
                    entry.insert(
                        "ExternalVersionIdentifier".into(),
                        Value::Integer((*v).into()),
                    );
                }
                list.insert(bundle.clone(), Value::Dictionary(entry));
            }
            keys.insert("ManagedApplicationList".into(), Value::Dictionary(list));
        }
        _ => {}
    }
    ("Acknowledged".into(), keys)
}

/// The bundle id a device reports for an app.
fn bundle_of(bundles: &HashMap<i64, String>, adam: i64) -> String {
    bundles
        .get(&adam)
        .cloned()
        .unwrap_or_else(|| format!("com.example.app{adam}"))
}

/// One `ErrorChain` entry.
fn error_entry(code: i64, domain: &str, description: &str) -> Dictionary {
    let mut err = Dictionary::new();
    err.insert("ErrorCode".into(), Value::Integer(code.into()));
    err.insert("ErrorDomain".into(), Value::String(domain.into()));
    err.insert(
        "LocalizedDescription".into(),
        Value::String(description.into()),
    );
    err.insert(
        "USEnglishDescription".into(),
        Value::String(description.into()),
    );
    err
}

fn authorized(opts: &FakeOptions, headers: &HeaderMap) -> bool {
    let expected = format!(
        "Basic {}",
        STANDARD.encode(format!("{}:{}", opts.user, opts.api_key))
    );
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        == Some(expected.as_str())
}

/// Counts the call; during an outage, its answer.
fn outage(shared: &Shared) -> Option<Response> {
    let mut s = shared.1.lock().expect("fake state lock");
    s.calls += 1;
    let status = StatusCode::from_u16(s.outage?).unwrap_or(StatusCode::BAD_GATEWAY);
    Some((status, "fake outage\n").into_response())
}

fn unauthorized() -> Response {
    (
        StatusCode::UNAUTHORIZED,
        [(header::WWW_AUTHENTICATE, "Basic realm=\"nanomdm\"")],
        "Unauthorized\n",
    )
        .into_response()
}

/// NanoMDM's status rule: 200 if nothing failed, 207 if some ids failed, 500 if all did or a
/// top-level error happened.
fn respond(body: serde_json::Value, ids: usize, failed: usize) -> Response {
    let top = body.get("command_error").is_some() || body.get("push_error").is_some();
    let status = if top || (ids > 0 && failed == ids) {
        StatusCode::INTERNAL_SERVER_ERROR
    } else if failed > 0 {
        StatusCode::MULTI_STATUS
    } else {
        StatusCode::OK
    };
    (status, Json(body)).into_response()
}

fn split_ids(ids: &str) -> Vec<String> {
    ids.split(',')
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

async fn enqueue(
    State(shared): State<Shared>,
    Path(ids): Path<String>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let opts = &shared.0;
    if let Some(refused) = outage(&shared) {
        return refused;
    }
    if !authorized(opts, &headers) {
        return unauthorized();
    }
    let ids = split_ids(&ids);
    let nopush = q.as_deref().is_some_and(|q| {
        q.split('&')
            .any(|p| p.strip_prefix("nopush=").is_some_and(|v| !v.is_empty()))
    });
    let Ok(value) = plist::from_bytes::<Value>(&body) else {
        return respond(
            json!({ "command_error": "decoding command: parse error: not a plist" }),
            0,
            0,
        );
    };
    let Some((uuid, request_type, _)) = value
        .into_dictionary()
        .and_then(|_| crate::commands::parse_command(&body))
    else {
        return respond(
            json!({ "command_error": "decoding command: invalid command" }),
            0,
            0,
        );
    };
    let mut s = shared.1.lock().expect("fake state lock");
    if !s.used_uuids.insert(uuid.clone()) {
        return respond(
            json!({ "command_error": format!("command already exists: {uuid}"), "command_uuid": uuid, "request_type": request_type }),
            0,
            0,
        );
    }
    let unknown: Vec<&String> = ids
        .iter()
        .filter(|i| !s.enrollments.contains_key(*i))
        .collect();
    if !unknown.is_empty() && opts.unknown_ids == UnknownIds::Reject {
        s.used_uuids.remove(&uuid);
        return respond(
            json!({ "command_error": format!("storing command: foreign key violation for id {}", unknown[0]) }),
            0,
            0,
        );
    }
    let mut status = serde_json::Map::new();
    let mut failed = 0;
    for id in &ids {
        // filekv also "queues" for ids it has never seen; their Authenticate would clear it anyway.
        if let Some(e) = s.enrollments.get_mut(id) {
            e.queue.push_back((uuid.clone(), body.to_vec()));
        }
        if !nopush && s.push_failure == Some(PushFailure::Unreachable) {
            failed += 1;
            status.insert(id.clone(), json!({ "push_error": UNREACHABLE }));
        } else if !nopush && s.push_failure == Some(PushFailure::NoCertificate) {
            failed += 1;
        } else if !nopush {
            let (result, ok) = push_to(&s, id);
            failed += usize::from(!ok);
            status.insert(id.clone(), result);
        }
    }
    s.log.push((ids.clone(), body.to_vec()));
    let mut out = json!({ "command_uuid": uuid, "request_type": request_type });
    if !nopush && s.push_failure == Some(PushFailure::NoCertificate) {
        out["push_error"] = json!(NO_CERTIFICATE);
    }
    if !status.is_empty() {
        out["status"] = serde_json::Value::Object(status);
    }
    if nopush {
        out["no_push"] = json!(true);
    }
    respond(out, ids.len(), failed)
}

/// The push certificate: a year left, or none when pushes fail for want of one.
async fn push_cert(
    State(shared): State<Shared>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
) -> Response {
    if !authorized(&shared.0, &headers) {
        return unauthorized();
    }
    let topic = q
        .as_deref()
        .and_then(|q| q.split('&').find_map(|p| p.strip_prefix("topic=")))
        .unwrap_or_default()
        .to_owned();
    if shared.1.lock().expect("fake state lock").push_failure == Some(PushFailure::NoCertificate) {
        return (
            StatusCode::INTERNAL_SERVER_ERROR,
            "retrieving push cert: no rows in result set\n",
        )
            .into_response();
    }
    let not_after = (chrono::Utc::now() + chrono::Duration::days(365))
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    Json(json!({ "topic": topic, "not_after": not_after })).into_response()
}

/// NanoMDM's words when Apple's push service cannot be reached, and when it has no certificate.
const UNREACHABLE: &str = "Post \"https://api.push.apple.com/3/device/0f1e\": dial tcp: lookup api.push.apple.com: no such host";
const NO_CERTIFICATE: &str =
    "retrieving push cert for topic com.apple.mgmt.External.test: no push certificate";

async fn push(
    State(shared): State<Shared>,
    Path(ids): Path<String>,
    headers: HeaderMap,
) -> Response {
    if let Some(refused) = outage(&shared) {
        return refused;
    }
    if !authorized(&shared.0, &headers) {
        return unauthorized();
    }
    let ids = split_ids(&ids);
    let mut s = shared.1.lock().expect("fake state lock");
    s.pushes.push(ids.clone());
    match s.push_failure {
        Some(PushFailure::NoCertificate) => {
            return respond(
                json!({ "push_error": NO_CERTIFICATE }),
                ids.len(),
                ids.len(),
            )
        }
        Some(PushFailure::Unreachable) => {
            let status: serde_json::Map<String, serde_json::Value> = ids
                .iter()
                .map(|id| (id.clone(), json!({ "push_error": UNREACHABLE })))
                .collect();
            return respond(json!({ "status": status }), ids.len(), ids.len());
        }
        None => {}
    }
    let mut status = serde_json::Map::new();
    let mut failed = 0;
    for id in &ids {
        let (result, ok) = push_to(&s, id);
        failed += usize::from(!ok);
        status.insert(id.clone(), result);
    }
    respond(json!({ "status": status }), ids.len(), failed)
}

/// One id's push result as NanoMDM words it: pushed when the device sent its push token
/// (TokenUpdate), "push data missing" otherwise. True if pushed.
fn push_to(s: &FakeState, id: &str) -> (serde_json::Value, bool) {
    if s.enrollments.get(id).is_some_and(|e| e.token_updates > 0) {
        let push_id = uuid::Uuid::new_v4().to_string().to_uppercase();
        (json!({ "push_result": push_id }), true)
    } else {
        (json!({ "push_error": "push data missing for id" }), false)
    }
}

/// What a hostile device can send: a binary plist whose arrays each reference the previous one
/// twice, `levels` + 1 objects that expand to 2^levels leaves (for tests of the webhook's limits).
pub fn shared_reference_bomb(levels: u8) -> Vec<u8> {
    let mut out = b"bplist00".to_vec();
    let mut offsets = vec![out.len()];
    out.extend_from_slice(&[0x54, b'l', b'e', b'a', b'f']); // object 0: the string "leaf"
    for i in 1..=levels {
        offsets.push(out.len());
        out.extend_from_slice(&[0xA2, i - 1, i - 1]); // object i: [object i-1, object i-1]
    }
    let table = out.len();
    for o in &offsets {
        out.extend_from_slice(&(*o as u16).to_be_bytes());
    }
    let mut trailer = [0u8; 32];
    trailer[6] = 2; // bytes per offset
    trailer[7] = 1; // bytes per object reference
    trailer[8..16].copy_from_slice(&(offsets.len() as u64).to_be_bytes());
    trailer[16..24].copy_from_slice(&u64::from(levels).to_be_bytes());
    trailer[24..32].copy_from_slice(&(table as u64).to_be_bytes());
    out.extend_from_slice(&trailer);
    out
}
