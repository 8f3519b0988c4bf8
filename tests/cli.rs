//! The `allot` binary as an administrator uses it: against a real server and simulator.

use std::process::Command;

use allot_server::{Config, Server};
use allot_store::testing::TestDb;
use serde_json::Value;

const KEY: &str = "cli-test-admin-key-0123456789";

const SCENARIO: &str = r#"{
  "settings": { "eventDelayMs": 0, "limits": { "maxRequestPerSecond": 0 } },
  "organizations": [ { "name": "Acme", "locations": [
    { "name": "Acme HQ", "assets": [ { "adamId": "111", "totalCount": 8, "name": "Acme Notes" },
                                     { "adamId": "222", "productType": "Book", "totalCount": 2, "name": "Acme Handbook" } ],
      "assignments": [ { "adamId": "111", "serialNumber": "S1" } ] } ] } ]
}"#;

struct Env {
    base: String,
    dir: std::path::PathBuf,
    _sim: allot_apple_sim::RunningSim,
    _db: TestDb,
    _server: tokio::task::JoinHandle<()>,
}

async fn env() -> Env {
    let sim = allot_apple_sim::start_local(SCENARIO).await.unwrap();
    let db = TestDb::sqlite().await;
    let dir = std::env::temp_dir().join(format!("allot-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let config = Config {
        data_dir: dir.clone(),
        database_url: Some(db.url.clone()),
        apple_url: sim.apple_url(),
        admin_api_key: Some(KEY.into()),
        ..Default::default()
    };
    let server = Server::build(&config).await.unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let task = tokio::spawn(async move { axum::serve(listener, server.router).await.unwrap() });
    let token = {
        let w = sim.shared.lock().unwrap();
        w.current_token[0].clone()
    };
    std::fs::write(dir.join("hq.vpptoken"), token).unwrap();
    std::fs::write(dir.join("junk.vpptoken"), "this is not a token").unwrap();
    Env {
        base,
        dir,
        _sim: sim,
        _db: db,
        _server: task,
    }
}

/// Runs the binary off the async runtime's threads; returns (success, stdout, stderr).
async fn allot(env: &Env, args: &[&str]) -> (bool, String, String) {
    allot_with(env, args, &[]).await
}

/// The same with more environment variables (a password the CLI reads from its environment).
async fn allot_with(env: &Env, args: &[&str], vars: &[(&str, &str)]) -> (bool, String, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_allot"));
    cmd.args(args)
        .env("ALLOT_SERVER", &env.base)
        .env("ALLOT_API_KEY", KEY)
        .env_remove("ALLOT_LOG")
        .envs(vars.iter().copied());
    let out = tokio::task::spawn_blocking(move || cmd.output().unwrap())
        .await
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_and_apps_from_the_command_line() {
    let e = env().await;
    let file = e.dir.join("hq.vpptoken");
    let (ok, out, err) = allot(
        &e,
        &[
            "tokens",
            "add",
            file.to_str().unwrap(),
            "--name",
            "HQ",
            "--category",
            "east",
        ],
    )
    .await;
    assert!(ok, "{err}");
    assert!(
        out.contains("Added token HQ") && out.contains("Acme"),
        "{out}"
    );

    // A sync follows to its end and says what changed.
    let (ok, out, err) = allot(&e, &["tokens", "sync", "HQ"]).await;
    assert!(ok, "{err}");
    assert!(out.contains("full sync succeeded"), "{out}");

    let (ok, out, _) = allot(&e, &["tokens", "list"]).await;
    assert!(
        ok && out.lines().next().unwrap().starts_with("ID")
            && out.contains("HQ")
            && out.contains("healthy"),
        "{out}"
    );
    let (ok, out, _) = allot(
        &e,
        &["tokens", "list", "--state", "healthy", "--search", "h q"],
    )
    .await;
    assert!(ok && !out.contains("HQ"), "no name holds \"h q\": {out}");
    let (ok, out, _) = allot(
        &e,
        &["tokens", "list", "--state", "healthy", "--search", "hq"],
    )
    .await;
    assert!(ok && out.contains("HQ"), "{out}");
    let (ok, _, err) = allot(&e, &["tokens", "list", "--state", "sad"]).await;
    assert!(!ok && err.contains("claimed_by_other_mdm"), "{err}");
    let (ok, out, _) = allot(&e, &["tokens", "show", "HQ", "--output", "json"]).await;
    assert!(ok);
    let shown: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(shown["categories"][0], "east");
    assert_eq!(shown["latestSync"]["status"], "succeeded");

    let (ok, out, _) = allot(&e, &["apps", "list", "--token", "HQ"]).await;
    assert!(ok, "{out}");
    let notes = out
        .lines()
        .find(|l| l.starts_with("Acme Notes"))
        .expect("a row per app");
    assert!(
        notes
            .split_whitespace()
            .collect::<Vec<_>>()
            .ends_with(&["8", "1", "7"]),
        "total, used, available: {notes}"
    );
    let (ok, out, _) = allot(&e, &["apps", "list", "--type", "book", "--output", "json"]).await;
    assert!(ok);
    let books: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(books.as_array().unwrap().len(), 1);
    assert_eq!(books[0]["name"], "Acme Handbook");
    // A book's own alert threshold, then the global one again.
    let book_id = books[0]["adamId"].as_str().unwrap().to_owned();
    let (ok, out, err) = allot(&e, &["apps", "threshold", &book_id, "3"]).await;
    assert!(
        ok && out.contains("licenses.low at 3 free licenses"),
        "{out}{err}"
    );
    let (ok, out, err) = allot(&e, &["apps", "threshold", &book_id, "--global"]).await;
    assert!(ok && out.contains("(the global threshold)"), "{out}{err}");
    let (ok, _, err) = allot(&e, &["apps", "threshold", "4242", "3"]).await;
    assert!(!ok && err.contains("no token holds adamId 4242"), "{err}");

    // The licenses report, as CSV and JSON.
    let (ok, out, err) = allot(&e, &["report", "licenses", "--format", "csv"]).await;
    assert!(ok, "{err}");
    let mut lines = out.lines();
    assert_eq!(
        lines.next(),
        Some("name,adamId,type,token,programType,totalPurchased,used,available,percentUsed,pricingParam")
    );
    assert!(
        out.contains("Acme Notes,111,app,HQ,business,8,1,7,12.5,STDQ"),
        "{out}"
    );
    let (ok, out, _) = allot(
        &e,
        &["report", "licenses", "--format", "json", "--token", "HQ"],
    )
    .await;
    let rows: Value = serde_json::from_str(&out).unwrap();
    assert!(ok && rows.as_array().unwrap().len() == 2);
    let (ok, out, err) = allot(&e, &["report", "expiry"]).await;
    assert!(
        ok && out.starts_with("token,organization,location,programType,expiresAt,daysLeft")
            && out.contains("HQ"),
        "{out}{err}"
    );
    let (ok, out, err) = allot(&e, &["report", "unused", "--days", "0", "--format", "json"]).await;
    assert!(ok && out.trim() == "[]", "nothing deployed yet: {out}{err}");
    let (ok, _, err) = allot(&e, &["report", "unused", "--days=-3"]).await;
    assert!(!ok && err.contains("days"), "{err}");
    let (ok, _, err) = allot(&e, &["report", "licenses", "--format", "xml"]).await;
    assert!(!ok && err.contains("csv or json"), "{err}");

    // Clear errors for what a person gets wrong.
    let junk = e.dir.join("junk.vpptoken");
    let (ok, _, err) = allot(
        &e,
        &["tokens", "add", junk.to_str().unwrap(), "--name", "Junk"],
    )
    .await;
    assert!(!ok && err.contains("not a content token"), "{err}");
    let (ok, _, err) = allot(&e, &["tokens", "add", "/no/such/file", "--name", "X"]).await;
    assert!(!ok && err.contains("cannot read /no/such/file"), "{err}");
    let (ok, _, err) = allot(&e, &["tokens", "delete", "HQ"]).await;
    assert!(!ok && err.contains("--yes"), "{err}");
    let (ok, _, err) = allot(&e, &["tokens", "show", "Nope"]).await;
    assert!(!ok && err.contains("no token"), "{err}");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_allot"));
    cmd.args(["tokens", "list"])
        .env("ALLOT_SERVER", &e.base)
        .env_remove("ALLOT_API_KEY");
    let out = tokio::task::spawn_blocking(move || cmd.output().unwrap())
        .await
        .unwrap();
    assert!(!out.status.success() && String::from_utf8_lossy(&out.stderr).contains("no API key"));

    // Inventory: users, devices, a collection.
    let users_csv = e.dir.join("users.csv");
    std::fs::write(
        &users_csv,
        "name,email\nAda,ada@example.com\n,broken@example.com\n",
    )
    .unwrap();
    let (ok, out, err) = allot(&e, &["users", "import", users_csv.to_str().unwrap()]).await;
    assert!(
        ok && out.contains("1 created, 0 updated, 1 not imported") && out.contains("line 3"),
        "{out}{err}"
    );
    let (ok, _, err) = allot(
        &e,
        &[
            "devices",
            "add",
            "dmq1",
            "--platform",
            "ipados",
            "--user",
            "ada@example.com",
        ],
    )
    .await;
    assert!(ok, "{err}");
    let (ok, _, err) = allot(&e, &["collections", "create", "Carts", "--kind", "devices"]).await;
    assert!(ok, "{err}");
    let (ok, out, err) = allot(&e, &["collections", "add", "Carts", "DMQ1"]).await;
    assert!(ok && out.contains("1 added"), "{err}");
    let (ok, out, _) = allot(&e, &["collections", "show", "Carts"]).await;
    assert!(
        ok && out.contains("DMQ1") && out.contains("iPadOS"),
        "{out}"
    );
    let (ok, out, err) = allot(
        &e,
        &[
            "deployments",
            "plan",
            "--app",
            "111",
            "--collection",
            "Carts",
        ],
    )
    .await;
    assert!(
        ok && out.contains("needs 1 license; 7 free on HQ"),
        "{out}{err}"
    );
    // --plan shows the plan and creates nothing.
    let (ok, out, err) = allot(
        &e,
        &[
            "deployments",
            "create",
            "--app",
            "111",
            "--collection",
            "Carts",
            "--plan",
        ],
    )
    .await;
    assert!(ok && out.contains("needs 1 license"), "{out}{err}");
    let (_, out, _) = allot(&e, &["deployments", "list", "--output", "json"]).await;
    assert!(out.contains("\"deployments\": []"), "{out}");
    let (ok, out, err) = allot(
        &e,
        &[
            "deployments",
            "create",
            "--app",
            "111",
            "--collection",
            "Carts",
            "--action",
            "revoke",
            "--output",
            "json",
        ],
    )
    .await;
    assert!(ok, "{err}");
    let id = serde_json::from_str::<serde_json::Value>(&out).unwrap()["id"].to_string();
    let (_, out, _) = allot(&e, &["deployments", "list"]).await;
    assert!(out.contains("revoke"), "{out}");
    assert!(
        out.contains("Acme Notes") && out.contains("Carts"),
        "names, not ids: {out}"
    );
    let (ok, _, err) = allot(&e, &["deployments", "delete", &id]).await;
    assert!(!ok && err.contains("--yes"), "{err}");
    let (ok, out, err) = allot(&e, &["deployments", "delete", &id, "--yes"]).await;
    assert!(ok && out.contains("Deleted deployment"), "{out}{err}");
    let (ok, out, err) = allot(&e, &["users", "show", "ada@example.com"]).await;
    assert!(ok && out.contains("VPP TERMS"), "{out}{err}");
    let (ok, _, err) = allot(&e, &["collections", "add", "Carts", "GHOST"]).await;
    assert!(!ok && err.contains("GHOST"), "{err}");

    // A rule: previewed, then a collection that follows it; its members cannot be added by hand.
    let (ok, out, err) = allot(
        &e,
        &[
            "collections",
            "preview",
            "--kind",
            "devices",
            "--platform",
            "ipados",
        ],
    )
    .await;
    assert!(
        ok && out.contains("1 match now: platform iPadOS") && out.contains("DMQ1"),
        "{out}{err}"
    );
    let (ok, _, err) = allot(
        &e,
        &[
            "collections",
            "create",
            "iPads",
            "--kind",
            "devices",
            "--platform",
            "iPadOS",
        ],
    )
    .await;
    assert!(ok, "{err}");
    let (ok, out, _) = allot(&e, &["collections", "list"]).await;
    assert!(ok && out.contains("iPads") && out.contains("rule"), "{out}");
    let (ok, _, err) = allot(&e, &["collections", "add", "iPads", "DMQ1"]).await;
    assert!(!ok && err.contains("come from its rule"), "{err}");
    let (ok, out, err) = allot(&e, &["collections", "rule", "iPads", "--none"]).await;
    assert!(ok && out.contains("1 members"), "{out}{err}");
    let (ok, out, err) = allot(&e, &["users", "invite-all"]).await;
    assert!(ok && out.contains("0 waiting invitation"), "{out}{err}");

    // Webhooks: an endpoint with its secret printed once, a test event queued, its deliveries.
    let (ok, _, err) = allot(
        &e,
        &[
            "webhooks",
            "add",
            "http://127.0.0.1:9/hook",
            "--event",
            "nonsense",
        ],
    )
    .await;
    assert!(!ok && err.contains("unknown event"), "{err}");
    let (ok, out, err) = allot(
        &e,
        &[
            "webhooks",
            "add",
            "http://127.0.0.1:9/hook",
            "--event",
            "licenses.low",
            "--event",
            "token.expiring",
        ],
    )
    .await;
    assert!(
        ok && out.contains("Signing secret (shown once): whsec_"),
        "{out}{err}"
    );
    let (ok, out, _) = allot(&e, &["webhooks", "list"]).await;
    assert!(
        ok && out.contains("licenses.low, token.expiring") && !out.contains("whsec_"),
        "{out}"
    );
    let (ok, out, err) = allot(&e, &["webhooks", "test", "1"]).await;
    assert!(ok && out.contains("queued"), "{out}{err}");
    let (ok, out, _) = allot(&e, &["webhooks", "deliveries", "1"]).await;
    assert!(
        ok && out.contains("test") && out.contains("pending"),
        "{out}"
    );
    let (ok, out, err) = allot(&e, &["alerts", "list"]).await;
    assert!(ok && out.contains("RAISED"), "{out}{err}");
    let (ok, _, err) = allot(&e, &["webhooks", "remove", "1"]).await;
    assert!(!ok && err.contains("--yes"), "{err}");
    let (ok, out, err) = allot(&e, &["webhooks", "remove", "1", "--yes"]).await;
    assert!(ok && out.contains("Removed webhook 1"), "{out}{err}");
    // A backup of the running server's SQLite database: consistent, opened as a store, holding
    // the token; never over an existing file.
    let backup = e.dir.join("backup.db");
    let run_backup = || {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_allot"));
        cmd.args(["backup", backup.to_str().unwrap()])
            .env("ALLOT_DATABASE_URL", format!("sqlite://{}", e._db.url))
            .env("ALLOT_DATA_DIR", &e.dir)
            .env_remove("ALLOT_LOG");
        cmd.output().unwrap()
    };
    let out = run_backup();
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success()
            && said.contains("Backed up the database")
            && said.contains("secret key"),
        "{said}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let copy = allot_store::Store::connect(backup.to_str().unwrap())
        .await
        .unwrap();
    assert!(
        copy.tokens().await.unwrap().iter().any(|t| t.name == "HQ"),
        "the backup holds the token"
    );
    let again = run_backup();
    assert!(
        !again.status.success()
            && String::from_utf8_lossy(&again.stderr).contains("exists already")
    );

    // The audit log has what this test changed, by the key's name.
    let (ok, out, err) = allot(&e, &["audit", "list", "--path", "/api/v1/webhooks"]).await;
    assert!(
        ok && out.contains("DELETE /api/v1/webhooks/1")
            && out.contains("POST /api/v1/webhooks")
            && out.contains("API key"),
        "{out}{err}"
    );

    let (ok, out, err) = allot(&e, &["ledger", "diff", "--token", "HQ"]).await;
    assert!(
        ok && (out.contains("Orphan (no deployment serves it)") || out.contains("No differences")),
        "{out}{err}"
    );
    // Subscriptions: none here yet; the table and the forecast's CSV header still say what they hold.
    let (ok, out, err) = allot(&e, &["subscriptions", "list"]).await;
    assert!(
        ok && out.contains("PERIOD END") && out.contains("UNUSED RENEWING"),
        "{out}{err}"
    );
    let (ok, out, err) = allot(&e, &["report", "subscriptions"]).await;
    assert!(
        ok && out.starts_with("token,app,parentAdamId,adamId,status,periodEnd"),
        "{out}{err}"
    );
    let (ok, _, err) = allot(
        &e,
        &["subscriptions", "assign", "901", "--token", "HQ", "someone"],
    )
    .await;
    assert!(!ok && err.contains("enable them first"), "{err}");
    // API keys: made (shown once), listed with their use, revoked only when confirmed.
    let (ok, out, err) = allot(&e, &["keys", "create", "reporting"]).await;
    assert!(ok && out.contains("shown only now"), "{out}{err}");
    let (ok, out, err) = allot(&e, &["keys", "list"]).await;
    assert!(
        ok && out.contains("reporting") && out.contains("viewer") && out.contains("every token"),
        "{out}{err}"
    );
    let (ok, out, err) = allot(
        &e,
        &["keys", "set", "2", "--role", "operator", "--token", "HQ"],
    )
    .await;
    assert!(ok && out.contains("operator, HQ"), "{out}{err}");
    let (ok, _, err) = allot(&e, &["keys", "set", "2", "--role", "owner"]).await;
    assert!(!ok && err.contains("admin, operator or viewer"), "{err}");
    let (ok, _, err) = allot(&e, &["keys", "revoke", "2"]).await;
    assert!(!ok && err.contains("--yes"), "{err}");
    // Console accounts: the password comes from the environment, never the command line.
    let (ok, _, err) = allot(&e, &["accounts", "add", "ops", "--role", "operator"]).await;
    assert!(!ok && err.contains("ALLOT_NEW_PASSWORD"), "{err}");
    let (ok, out, err) = allot_with(
        &e,
        &[
            "accounts",
            "add",
            "ops",
            "--role",
            "operator",
            "--category",
            "east",
        ],
        &[("ALLOT_NEW_PASSWORD", "a-long-password-1")],
    )
    .await;
    assert!(ok && out.contains("operator, category east"), "{out}{err}");
    let (ok, out, err) = allot(&e, &["accounts", "list"]).await;
    assert!(
        ok && out.contains("ops") && out.contains("active"),
        "{out}{err}"
    );
    let id = out
        .lines()
        .find(|l| l.contains(" ops "))
        .and_then(|l| l.split_whitespace().next())
        .unwrap()
        .to_owned();
    let (ok, out, err) = allot(&e, &["accounts", "set", &id, "--disable", "--every-token"]).await;
    assert!(ok && out.contains("every token, disabled"), "{out}{err}");

    let (ok, out, err) = allot(&e, &["tokens", "delete", "HQ", "--yes"]).await;
    assert!(ok && out.contains("Deleted HQ"), "{err}");
    let (_, out, _) = allot(&e, &["apps", "list", "--output", "json"]).await;
    assert_eq!(out.trim(), "[]");
    std::fs::remove_dir_all(&e.dir).ok();
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The README's first command: everything starts, tokens sync, devices enroll, and the printed
/// key works.
#[test]
fn the_demo_runs_in_one_command() {
    use std::io::{BufRead, BufReader};
    let dir = std::env::temp_dir().join(format!("allot-demo-test-{}", std::process::id()));
    let (api, sim) = (free_port(), free_port());
    let mut child = Command::new(env!("CARGO_BIN_EXE_allot"))
        .args([
            "demo",
            "--listen",
            &format!("127.0.0.1:{api}"),
            "--sim-listen",
            &format!("127.0.0.1:{sim}"),
            "--data-dir",
            dir.to_str().unwrap(),
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut key = None;
    let mut console_password: Option<String> = None;
    let mut printed = String::new();
    let (tx, rx) = std::sync::mpsc::channel();
    let stdout = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    while let Ok(line) = rx.recv_timeout(std::time::Duration::from_secs(120)) {
        printed.push_str(&line);
        printed.push('\n');
        if let Some(k) = line.trim().strip_prefix("API key") {
            key = Some(k.trim().to_owned());
        }
        if let Some((_, p)) = line.split_once("user admin, password ") {
            console_password = Some(p.trim().to_owned());
        }
        if line.contains("Stop with Ctrl-C") {
            break;
        }
    }
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_allot"))
            .args(args)
            .env("ALLOT_SERVER", format!("http://127.0.0.1:{api}"))
            .env("ALLOT_API_KEY", key.clone().unwrap_or_default())
            .output()
            .unwrap()
    };
    let tokens = run(&["tokens", "list", "--output", "json"]);
    // The printed console sign-in works (and a wrong password does not).
    let sign_in = |password: &str| {
        use std::io::{Read, Write};
        let mut s = std::net::TcpStream::connect(("127.0.0.1", api)).unwrap();
        let body = format!("username=admin&password={password}");
        write!(
            s,
            "POST /login HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
        .unwrap();
        let mut answer = String::new();
        s.read_to_string(&mut answer).unwrap();
        answer.lines().next().unwrap_or_default().to_owned()
    };
    let signed_in = sign_in(console_password.as_deref().unwrap_or("none"));
    let refused = sign_in("wrong-password");
    let plan = run(&[
        "deployments",
        "plan",
        "--app",
        "908519492",
        "--collection",
        "Springfield High iPads",
    ]);
    // Licenses of Swift Playgrounds in use at Springfield High, as Allot shows them.
    let used = || {
        let apps: Value = serde_json::from_slice(
            &run(&[
                "apps",
                "list",
                "--token",
                "Springfield High",
                "--output",
                "json",
            ])
            .stdout,
        )
        .unwrap_or(Value::Null);
        apps.as_array()
            .and_then(|a| a.iter().find(|a| a["adamId"] == "908519492"))
            .and_then(|a| a["used"].as_i64())
            .unwrap_or(-1)
    };
    let used_before = used();
    // Deploy it: the 18 unlicensed iPads get licenses, all 60 get the app as the fleet checks in.
    let created = run(&[
        "deployments",
        "create",
        "--app",
        "908519492",
        "--collection",
        "Springfield High iPads",
        "--output",
        "json",
    ]);
    let id = serde_json::from_slice::<Value>(&created.stdout)
        .ok()
        .and_then(|d| d["id"].as_i64())
        .unwrap_or_default();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let mut shown = Value::Null;
    while std::time::Instant::now() < deadline {
        shown = serde_json::from_slice(
            &run(&["deployments", "show", &id.to_string(), "--output", "json"]).stdout,
        )
        .unwrap_or(Value::Null);
        if shown["statuses"]["installed"].as_i64() == Some(60) {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(500));
    }
    let used_after = used();
    let _ = child.kill();
    let _ = child.wait();
    std::fs::remove_dir_all(&dir).ok();
    assert!(
        printed.contains("100 enrolled through a fake NanoMDM"),
        "{printed}"
    );
    assert!(signed_in.contains(" 303 "), "{signed_in}\n{printed}");
    assert!(refused.contains(" 401 "), "{refused}");
    let tokens: Value = serde_json::from_slice(&tokens.stdout).unwrap_or(Value::Null);
    let states: Vec<&str> = tokens["tokens"]
        .as_array()
        .map(|t| t.iter().filter_map(|t| t["state"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(states.len(), 4, "{printed}");
    assert!(
        states.contains(&"expiring")
            && states.contains(&"claimed_by_other_mdm")
            && states.contains(&"healthy"),
        "{states:?}"
    );
    assert_eq!(shown["statuses"]["installed"], 60, "{shown}");
    // Every target names the token its license is on; 42 were licensed before, so Apple's count
    // of used licenses went up by the 18 claimed, not by 60.
    let on_token = shown["targets"]
        .as_array()
        .map(|t| t.iter().filter(|t| t["tokenId"].is_i64()).count())
        .unwrap_or_default();
    assert_eq!(on_token, 60, "{shown}");
    assert_eq!(
        used_after - used_before,
        18,
        "licenses claimed for the 18 unlicensed iPads only"
    );
    let plan = String::from_utf8_lossy(&plan.stdout);
    assert!(
        plan.contains(
            "needs 18 licenses; 18 free on Springfield High; 42 targets are already licensed"
        ),
        "{plan}"
    );
}

/// A value typed by anyone (here a user name at the sign-in page) cannot write a line of its own
/// into the log, nor colour it, when the log goes to a file.
#[test]
fn logged_values_cannot_forge_log_lines() {
    for format in ["text", "json"] {
        forged_lines_refused(format);
    }
}

/// A hostile user name at the sign-in page, logged as `format` (`ALLOT_LOG_FORMAT`).
fn forged_lines_refused(format: &str) {
    let dir = std::env::temp_dir().join(format!("allot-log-{format}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let port = free_port();
    let log = std::fs::File::create(dir.join("allot.log")).unwrap();
    let mut server = Command::new(env!("CARGO_BIN_EXE_allot"))
        .args(["serve"])
        .env("ALLOT_LISTEN", format!("127.0.0.1:{port}"))
        .env("ALLOT_DATA_DIR", dir.join("data"))
        .env("ALLOT_APPLE_URL", "http://127.0.0.1:9/mdm/v2/")
        .env("ALLOT_CONSOLE_ADMIN_PASSWORD", "console-password-0123")
        .env("ALLOT_ADMIN_API_KEY", "log-test-admin-key-0123")
        .env_remove("ALLOT_LOG")
        .env("ALLOT_LOG_FORMAT", format)
        .stdout(std::process::Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap();
    let base = format!("http://127.0.0.1:{port}");
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let http = reqwest::Client::new();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while http.get(format!("{base}/health")).send().await.is_err() {
            assert!(
                std::time::Instant::now() < deadline,
                "the server did not start"
            );
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        let res = http
            .post(format!("{base}/login"))
            .form(&[
                (
                    "username",
                    "mallory\n2026-12-01T00:00:00Z  INFO forged: admin signed in \x1b[31m",
                ),
                ("password", "wrong"),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(res.status().as_u16(), 401);
    });
    server.kill().unwrap();
    server.wait().unwrap();
    let text = std::fs::read_to_string(dir.join("allot.log")).unwrap();
    assert!(text.contains("sign-in refused"), "{text}");
    assert!(
        !text.lines().any(|l| l.starts_with("2026-12-01T00:00:00Z")),
        "a forged line: {text}"
    );
    assert!(
        !text.contains('\x1b'),
        "escape codes in a log file: {text:?}"
    );
    if format == "json" {
        // One JSON object a line; the hostile name is a field's value, whole.
        let events: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
            .collect();
        let refused = events
            .iter()
            .find(|e| e["message"] == "console sign-in refused")
            .expect("the refusal is logged");
        assert!(
            refused["username"]
                .as_str()
                .unwrap()
                .starts_with("mallory\n2026-12-01"),
            "{refused}"
        );
        assert_eq!(refused["level"], "INFO");
    }
    std::fs::remove_dir_all(dir).ok();
}
