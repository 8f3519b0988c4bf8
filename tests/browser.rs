//! The browser tests (`tests/browser/console.test.mjs`): `allot demo` on free ports, then Node's
//! test runner drives the console in Debian's headless Chromium with playwright-core. `scripts/test`
//! installs both on a fresh machine; screenshots land in `target/screenshots/`.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[test]
fn the_console_in_a_real_browser() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    assert!(
        Path::new(&chromium).exists(),
        "the browser tests need Debian's chromium at {chromium}: run scripts/test, which installs it"
    );
    assert!(
        root.join("tests/browser/node_modules/playwright-core")
            .exists(),
        "the browser tests need playwright-core: run scripts/test (npm ci in tests/browser)"
    );
    let dir = std::env::temp_dir().join(format!("allot-browser-{}", std::process::id()));
    let (api, sim) = (free_port(), free_port());
    let mut demo = Command::new(env!("CARGO_BIN_EXE_allot"))
        .args([
            "demo",
            "--listen",
            &format!("127.0.0.1:{api}"),
            "--sim-listen",
            &format!("127.0.0.1:{sim}"),
            "--data-dir",
            dir.to_str().unwrap(),
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let stdout = demo.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let (mut key, mut password, mut printed) = (None, None, String::new());
    while let Ok(line) = rx.recv_timeout(Duration::from_secs(180)) {
        printed.push_str(&line);
        printed.push('\n');
        if let Some(k) = line.trim().strip_prefix("API key") {
            key = Some(k.trim().to_owned());
        }
        if let Some((_, p)) = line.split_once("user admin, password ") {
            password = Some(p.trim().to_owned());
        }
        if line.contains("Stop with Ctrl-C") {
            break;
        }
    }
    let shots = root.join("target/screenshots");
    let out = Command::new("node")
        .args(["--test", "--test-reporter=spec", "console.test.mjs"])
        .current_dir(root.join("tests/browser"))
        .env("ALLOT_URL", format!("http://127.0.0.1:{api}"))
        .env("ALLOT_SIM_URL", format!("http://127.0.0.1:{sim}"))
        .env("ALLOT_API_KEY", key.unwrap_or_default())
        .env("ALLOT_CONSOLE_PASSWORD", password.unwrap_or_default())
        .env("ALLOT_SCREENSHOTS", &shots)
        .env("CHROMIUM", &chromium)
        .output()
        .expect("node runs");
    let _ = demo.kill();
    let _ = demo.wait();
    std::fs::remove_dir_all(&dir).ok();
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "{report}\n--- the demo printed:\n{printed}"
    );
    for page in [
        "tokens",
        "apps",
        "app",
        "plan",
        "deployment",
        "reports",
        "users",
        "devices",
    ] {
        assert!(
            shots.join(format!("{page}.png")).exists(),
            "no screenshot of {page}"
        );
    }
}
