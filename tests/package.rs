//! The Debian package (`scripts/package --dev`, which `scripts/test` runs before the tests):
//! installed with `dpkg -i` into this machine, its unit file, user, folders and first secrets
//! checked, `allot serve` started from the installed paths as its own user, with its secrets (no
//! systemd runs as PID 1 here) answering `/readyz` and the API with the key the package made, then purged.
//! Needs root, as CI has; elsewhere set ALLOT_SKIP_PACKAGE_TEST=1 to leave it out.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn run(cmd: &str, args: &[&str]) -> (bool, String) {
    let out = Command::new(cmd)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{cmd}: {e}"));
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

fn purge() {
    let (ok, out) = run("dpkg", &["--purge", "allot"]);
    assert!(ok, "dpkg --purge: {out}");
}

/// Stops the server started from the package however the test ends.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The status of a GET (plain HTTP/1.1 on loopback), or None when nothing answers yet.
fn get(port: u16, path: &str, bearer: Option<&str>) -> Option<u16> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    let auth = bearer
        .map(|b| format!("Authorization: Bearer {b}\r\n"))
        .unwrap_or_default();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{auth}Connection: close\r\n\r\n"
    )
    .ok()?;
    let mut answer = String::new();
    s.read_to_string(&mut answer).ok()?;
    answer.split_whitespace().nth(1)?.parse().ok()
}

#[test]
fn the_debian_package_installs_runs_and_purges() {
    if std::env::var("ALLOT_SKIP_PACKAGE_TEST").as_deref() == Ok("1") {
        eprintln!("ALLOT_SKIP_PACKAGE_TEST=1: the package test is left out");
        return;
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let deb = root.join("target/debian/allot-dev.deb");
    assert!(
        deb.exists(),
        "no {}: run scripts/package --dev first (scripts/test does)",
        deb.display()
    );
    let (_, uid) = run("id", &["-u"]);
    assert_eq!(
        uid.trim(),
        "0",
        "installing a package needs root (CI runs as root); set ALLOT_SKIP_PACKAGE_TEST=1 to leave it out"
    );
    // A run that stopped half-way may have left it installed.
    purge();

    let (ok, out) = run("dpkg", &["-i", deb.to_str().unwrap()]);
    assert!(ok, "dpkg -i: {out}");
    assert!(
        out.contains("/etc/allot/allot.env"),
        "says where the secrets are: {out}"
    );

    // The unit runs `allot serve` as its own user, hardened.
    let unit = std::fs::read_to_string("/lib/systemd/system/allot.service").unwrap();
    for line in [
        "User=allot",
        "ExecStart=/usr/bin/allot serve --config /etc/allot/allot.toml",
        "EnvironmentFile=-/etc/allot/allot.env",
        "ProtectSystem=strict",
        "NoNewPrivileges=true",
        "ReadWritePaths=/var/lib/allot",
        "CapabilityBoundingSet=",
    ] {
        assert!(unit.lines().any(|l| l == line), "the unit has {line}");
    }
    let (ok, out) = run(
        "systemd-analyze",
        &["verify", "/lib/systemd/system/allot.service"],
    );
    assert!(
        ok || !out.contains("allot.service:"),
        "systemd-analyze finds the unit wrong: {out}"
    );
    // Its own user, which cannot log in, and a folder only it can read.
    let (ok, passwd) = run("getent", &["passwd", "allot"]);
    assert!(ok, "the allot user exists");
    let fields: Vec<&str> = passwd.trim().split(':').collect();
    assert_eq!(fields[5], "/var/lib/allot", "{passwd}");
    assert_eq!(fields[6], "/usr/sbin/nologin", "{passwd}");
    let (_, stat) = run("stat", &["-c", "%U %a", "/var/lib/allot"]);
    assert_eq!(stat.trim(), "allot 700");
    let (_, stat) = run("stat", &["-c", "%U:%G %a", "/etc/allot/allot.env"]);
    assert_eq!(stat.trim(), "root:allot 640");
    let env = std::fs::read_to_string("/etc/allot/allot.env").unwrap();
    let value = |name: &str| {
        env.lines()
            .find_map(|l| l.strip_prefix(&format!("{name}=")))
            .unwrap_or_else(|| panic!("{name} in allot.env"))
            .to_owned()
    };
    let key = value("ALLOT_ADMIN_API_KEY");
    assert!(key.starts_with("allot_") && key.len() > 40, "a random key");

    // Started as systemd would start it: the installed binary, configuration and secrets.
    let port = free_port();
    let id_of = |field: usize| -> u32 { fields[field].parse().unwrap() };
    let mut cmd = Command::new("/usr/bin/allot");
    std::os::unix::process::CommandExt::uid(&mut cmd, id_of(2));
    std::os::unix::process::CommandExt::gid(&mut cmd, id_of(3));
    cmd.args(["serve", "--config", "/etc/allot/allot.toml"])
        .env_clear()
        .env("ALLOT_ADMIN_API_KEY", &key)
        .env(
            "ALLOT_CONSOLE_ADMIN_PASSWORD",
            value("ALLOT_CONSOLE_ADMIN_PASSWORD"),
        )
        .env("ALLOT_LISTEN", format!("127.0.0.1:{port}"))
        .current_dir("/")
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let server = Server(cmd.spawn().expect("the installed allot starts as its user"));
    let deadline = Instant::now() + Duration::from_secs(60);
    while get(port, "/readyz", None) != Some(200) {
        assert!(
            Instant::now() < deadline,
            "the installed allot did not answer /readyz"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(get(port, "/api/v1/tokens", Some(&key)), Some(200));
    assert_eq!(get(port, "/api/v1/tokens", Some("wrong")), Some(401));
    // Its database and secret key are in its folder, private.
    let (_, files) = run("ls", &["/var/lib/allot"]);
    assert!(
        files.contains("secret.key") && files.contains("allot.db"),
        "{files}"
    );
    drop(server);

    // Removing keeps data and configuration; purging takes them and the user.
    let (ok, out) = run("dpkg", &["-r", "allot"]);
    assert!(ok, "dpkg -r: {out}");
    assert!(!Path::new("/usr/bin/allot").exists());
    assert!(
        Path::new("/var/lib/allot/secret.key").exists(),
        "data kept on remove"
    );
    purge();
    assert!(!Path::new("/var/lib/allot").exists());
    assert!(!Path::new("/etc/allot").exists());
    assert!(!run("getent", &["passwd", "allot"]).0, "the user is gone");
}
