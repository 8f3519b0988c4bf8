//! Alerts by e-mail, end to end: `ALLOT_SMTP_URL`, `ALLOT_SMTP_FROM` and `ALLOT_ALERT_EMAIL` make
//! `mailto:` endpoints of the outbox; an alert (a token another MDM claimed) is mailed through a
//! real SMTP server — Python's aiosmtpd, which `scripts/test` installs in `target/smtp-sink` —
//! into a maildir the test reads, and the delivery log says it was accepted. Over SMTPS with a
//! certificate an organization's own CA signed, the mail goes only once `ALLOT_CA_FILE` names it.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use allot_server::config::Smtp;
use allot_server::{Config, Server};
use allot_store::testing::TestDb;
use support::App;

const KEY: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";

/// aiosmtpd writing what it receives into a maildir; stopped when dropped.
struct Sink {
    child: Child,
    port: u16,
    maildir: PathBuf,
}

impl Drop for Sink {
    fn drop(&mut self) {
        self.child.kill().ok();
        self.child.wait().ok();
        std::fs::remove_dir_all(&self.maildir).ok();
    }
}

impl Sink {
    async fn start() -> Self {
        Self::start_with(&[]).await
    }

    /// Speaking SMTPS with a certificate `ca` signed for 127.0.0.1.
    async fn start_tls(ca: &allot_trust::testing::PrivateCa) -> Self {
        let (cert, key) = ca.issue_pem(&["127.0.0.1"]);
        let dir =
            std::env::temp_dir().join(format!("allot-smtps-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("cert.pem"), cert).unwrap();
        std::fs::write(dir.join("key.pem"), key).unwrap();
        let cert = dir.join("cert.pem").to_string_lossy().into_owned();
        let key = dir.join("key.pem").to_string_lossy().into_owned();
        Self::start_with(&["--smtpscert", &cert, "--smtpskey", &key]).await
    }

    async fn start_with(extra: &[&str]) -> Self {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let python = root.join("target/smtp-sink/bin/python");
        assert!(
            python.exists(),
            "the e-mail test needs aiosmtpd at {}: run scripts/test, which installs it",
            python.display()
        );
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let maildir =
            std::env::temp_dir().join(format!("allot-mail-{}", uuid::Uuid::new_v4().simple()));
        let child = Command::new(python)
            .args(["-m", "aiosmtpd", "-n", "-l", &format!("127.0.0.1:{port}")])
            .args(extra)
            .args(["-c", "aiosmtpd.handlers.Mailbox"])
            .arg(&maildir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("aiosmtpd starts");
        // Owned at once, so a panic below still stops it (Drop).
        let sink = Self {
            child,
            port,
            maildir,
        };
        for _ in 0..100 {
            if tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_ok()
            {
                return sink;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("aiosmtpd did not listen on {port}");
    }

    /// Every message received, as text.
    fn messages(&self) -> Vec<String> {
        let mut out = Vec::new();
        for sub in ["new", "cur"] {
            if let Ok(dir) = std::fs::read_dir(self.maildir.join(sub)) {
                for f in dir.flatten() {
                    out.push(std::fs::read_to_string(f.path()).unwrap_or_default());
                }
            }
        }
        out
    }
}

async fn mailed_on(db: TestDb) {
    let sink = Sink::start().await;
    let app = App::start_with(db, |c| c.secret_key = Some(KEY.into())).await;
    let config = Config {
        secret_key: Some(KEY.into()),
        alert_check: Duration::from_millis(100),
        webhook_retry: Duration::from_millis(200),
        smtp: Some(Smtp {
            url: format!("smtp://127.0.0.1:{}", sink.port),
            from: "Allot <allot@test.example>".into(),
        }),
        alert_email: allot_server::config::parse_alert_email(
            "token.*=IT@school.example;licenses.low=buyer@school.example",
        )
        .unwrap(),
        ..support::config(
            &app.db,
            &std::env::temp_dir().join(format!("allot-mail-srv-{}", uuid::Uuid::new_v4().simple())),
            &app.sim.apple_url(),
            None,
        )
    };
    let server = Server::build(&config).await.unwrap();
    let _alerts = server.start_alerts();
    let (_, hooks) = app.get("/api/v1/webhooks").await;
    let urls: Vec<&str> = hooks["webhooks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["url"].as_str().unwrap())
        .collect();
    assert_eq!(
        urls,
        vec!["mailto:it@school.example", "mailto:buyer@school.example"],
        "{hooks}"
    );

    assert_eq!(app.add("Branch", "4000000000000002").await.0, 201);
    let mut mail = Vec::new();
    for _ in 0..100 {
        mail = sink.messages();
        if !mail.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(mail.len(), 1, "one alert, one message: {mail:?}");
    let m = &mail[0];
    assert!(m.contains("To: it@school.example"), "{m}");
    assert!(m.contains("From: Allot <allot@test.example>"), "{m}");
    assert!(
        m.contains("Subject: [Allot] Legacy MDM has claimed Branch"),
        "{m}"
    );
    assert!(m.contains("token.claimed"), "{m}");
    let id = hooks["webhooks"][0]["id"].as_i64().unwrap();
    let log = app
        .until(
            &format!("/api/v1/webhooks/{id}/deliveries"),
            "the mail accepted",
            |b| b["deliveries"][0]["status"] == "delivered",
        )
        .await;
    assert_eq!(log["deliveries"][0]["lastStatus"], 250, "{log}");
}

#[tokio::test]
async fn alerts_are_mailed_through_smtp() {
    mailed_on(TestDb::sqlite().await).await;
}

#[tokio::test]
async fn alerts_are_mailed_through_smtp_on_postgres() {
    mailed_on(TestDb::postgres().await).await;
}

/// The same alert over SMTPS whose certificate a private CA signed: refused (the delivery keeps
/// the TLS error and waits) until the server trusts `ALLOT_CA_FILE`, then mailed.
#[tokio::test]
async fn smtps_trusts_the_organizations_ca_file() {
    let ca = allot_trust::testing::PrivateCa::new("School District Root CA");
    let sink = Sink::start_tls(&ca).await;
    let app = App::start_with(TestDb::sqlite().await, |c| c.secret_key = Some(KEY.into())).await;
    let server_with = |trust: allot_trust::Trust| Config {
        secret_key: Some(KEY.into()),
        alert_check: Duration::from_millis(100),
        webhook_retry: Duration::from_millis(200),
        smtp: Some(Smtp {
            url: format!("smtps://127.0.0.1:{}", sink.port),
            from: "Allot <allot@test.example>".into(),
        }),
        alert_email: allot_server::config::parse_alert_email("token.*=it@school.example").unwrap(),
        trust,
        ..support::config(
            &app.db,
            &std::env::temp_dir()
                .join(format!("allot-smtps-srv-{}", uuid::Uuid::new_v4().simple())),
            &app.sim.apple_url(),
            None,
        )
    };
    let untrusting = Server::build(&server_with(allot_trust::Trust::system()))
        .await
        .unwrap();
    let alerts = untrusting.start_alerts();
    assert_eq!(app.add("Branch", "4000000000000002").await.0, 201);
    let (_, hooks) = app.get("/api/v1/webhooks").await;
    let id = hooks["webhooks"][0]["id"].as_i64().unwrap();
    let log = app
        .until(
            &format!("/api/v1/webhooks/{id}/deliveries"),
            "a refused attempt",
            |b| b["deliveries"][0]["attempts"].as_i64().unwrap_or(0) >= 1,
        )
        .await;
    assert_eq!(log["deliveries"][0]["status"], "pending", "{log}");
    assert!(
        log["deliveries"][0]["lastError"]
            .as_str()
            .unwrap_or("")
            .to_lowercase()
            .contains("certificate"),
        "{log}"
    );
    assert!(sink.messages().is_empty());
    alerts.abort();

    let trust = allot_trust::Trust::from_pem(ca.pem().as_bytes(), "ca.pem").unwrap();
    let trusting = Server::build(&server_with(trust)).await.unwrap();
    let _alerts = trusting.start_alerts();
    app.until(
        &format!("/api/v1/webhooks/{id}/deliveries"),
        "the mail accepted over TLS",
        |b| b["deliveries"][0]["status"] == "delivered",
    )
    .await;
    let mail = sink.messages();
    assert_eq!(mail.len(), 1, "{mail:?}");
    assert!(
        mail[0].contains("Subject: [Allot] Legacy MDM has claimed Branch"),
        "{}",
        mail[0]
    );
}
