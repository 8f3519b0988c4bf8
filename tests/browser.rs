//! The browser tests (`tests/browser/console.test.mjs`): `allot demo` on free ports, then Node's
//! test runner drives the console in Debian's headless Chromium with playwright-core. `scripts/test`
//! installs both on a fresh machine; screenshots land in `target/screenshots/`.

mod demo;

use std::path::Path;
use std::process::Command;

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
    let demo = demo::Demo::start("browser");
    let shots = root.join("target/screenshots");
    let out = Command::new("node")
        .args(["--test", "--test-reporter=spec", "console.test.mjs"])
        .current_dir(root.join("tests/browser"))
        .env("ALLOT_URL", &demo.api)
        .env("ALLOT_SIM_URL", &demo.sim)
        .env("ALLOT_API_KEY", &demo.key)
        .env("ALLOT_CONSOLE_PASSWORD", &demo.password)
        .env("ALLOT_SCREENSHOTS", &shots)
        .env("CHROMIUM", &chromium)
        .output()
        .expect("node runs");
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "{report}\n--- the demo printed:\n{}",
        demo.printed
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
        "overview",
        "subscriptions",
        "device",
        "ledger",
        "account",
        "collection",
        "collections",
        "user",
        "deployments",
        "alerts",
        "audit",
        "access",
    ] {
        assert!(
            shots.join(format!("{page}.png")).exists(),
            "no screenshot of {page}"
        );
    }
}
