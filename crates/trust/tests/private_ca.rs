//! A client built by `Trust` reaches a server whose certificate a private CA signed only when the CA
//! file names that CA; bad CA files are refused with their name.

use allot_trust::testing::{HttpsReceiver, PrivateCa};
use allot_trust::{Trust, TrustError};

fn write(dir: &std::path::Path, name: &str, text: &str) -> std::path::PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

#[tokio::test]
async fn the_ca_file_is_trusted_and_nothing_else_is_added() {
    let ca = PrivateCa::new("Example Corp inspection CA");
    let other = PrivateCa::new("Someone else's CA");
    let receiver = HttpsReceiver::start(&ca, &["localhost"]).await;
    let url = receiver.url("localhost", "/hello");
    let dir = std::env::temp_dir().join(format!("allot-trust-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();

    // Public and platform roots alone do not know the private CA.
    let plain = Trust::system().client_builder().build().unwrap();
    let err = plain.get(&url).send().await.unwrap_err();
    assert!(
        allot_trust::error_chain(&err)
            .to_lowercase()
            .contains("certificate"),
        "{}",
        allot_trust::error_chain(&err)
    );

    // A bundle holding another CA and ours: ours is found among them.
    let bundle = format!("{}{}", other.pem(), ca.pem());
    let trust = Trust::from_ca_file(&write(&dir, "bundle.pem", &bundle)).unwrap();
    assert_eq!(trust.extra_certificates(), 2);
    let client = trust.client_builder().build().unwrap();
    let resp = client.post(&url).body("ping").send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let got = receiver.received();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].path, "/hello");
    assert_eq!(got[0].body, b"ping");

    // Only another CA: still refused.
    let wrong = Trust::from_ca_file(&write(&dir, "other.pem", &other.pem())).unwrap();
    let client = wrong.client_builder().build().unwrap();
    assert!(client.get(&url).send().await.is_err());
    assert_eq!(receiver.received().len(), 1);

    // Bad files, each named in a message a person can act on.
    let missing = dir.join("missing.pem");
    match Trust::from_ca_file(&missing) {
        Err(e @ TrustError::Unreadable { .. }) => assert!(e.to_string().contains("missing.pem")),
        other => panic!("{other:?}"),
    }
    let empty = write(&dir, "empty.pem", "not a certificate at all\n");
    match Trust::from_ca_file(&empty) {
        Err(e @ TrustError::NoCertificate { .. }) => {
            assert!(e.to_string().contains("BEGIN CERTIFICATE"), "{e}")
        }
        other => panic!("{other:?}"),
    }
    let garbage = write(
        &dir,
        "garbage.pem",
        "-----BEGIN CERTIFICATE-----\nAAAAAAAA\n-----END CERTIFICATE-----\n",
    );
    match Trust::from_ca_file(&garbage) {
        Err(e @ TrustError::Invalid { .. }) => assert!(e.to_string().contains("garbage.pem")),
        other => panic!("{other:?}"),
    }
    std::fs::remove_dir_all(&dir).ok();
}
