//! `allot demo` on free ports for the tests that drive it from outside (the browser, the fuzzer):
//! started, waited for until it prints its sign-in and key, and stopped when dropped.
// Each test binary uses its own part of it.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub struct Demo {
    pub api: String,
    pub sim: String,
    pub key: String,
    pub password: String,
    /// What the demo printed, for failure messages.
    pub printed: String,
    child: Child,
    dir: std::path::PathBuf,
}

impl Demo {
    pub fn start(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("allot-{name}-{}", std::process::id()));
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
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        let stdout = child.stdout.take().unwrap();
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
        Demo {
            api: format!("http://127.0.0.1:{api}"),
            sim: format!("http://127.0.0.1:{sim}"),
            key: key.unwrap_or_default(),
            password: password.unwrap_or_default(),
            printed,
            child,
            dir,
        }
    }
}

impl Drop for Demo {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        std::fs::remove_dir_all(&self.dir).ok();
    }
}
