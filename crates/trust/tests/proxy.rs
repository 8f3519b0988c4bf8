//! `HTTPS_PROXY` is honoured: a request to a name only the proxy can reach goes through it, and the
//! server behind it (a TLS-inspecting proxy's certificate, say) is trusted through the CA file.
//! Alone in its test binary: reqwest reads the proxy variables once per process.

use allot_trust::testing::{ConnectProxy, HttpsReceiver, PrivateCa};
use allot_trust::Trust;

#[tokio::test]
async fn requests_go_through_the_proxy_the_environment_names() {
    let ca = PrivateCa::new("Example Corp inspection CA");
    let receiver = HttpsReceiver::start(&ca, &["apple.invalid"]).await;
    let proxy = ConnectProxy::start(receiver.addr).await;
    std::env::set_var("HTTPS_PROXY", format!("http://{}", proxy.addr));
    std::env::remove_var("NO_PROXY");
    std::env::remove_var("no_proxy");

    let dir = std::env::temp_dir().join(format!("allot-proxy-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let ca_file = dir.join("ca.pem");
    std::fs::write(&ca_file, ca.pem()).unwrap();
    let client = Trust::from_ca_file(&ca_file)
        .unwrap()
        .client_builder()
        .build()
        .unwrap();

    // `.invalid` never resolves (RFC 6761): only the proxy can have taken it there.
    let resp = client
        .get("https://apple.invalid/mdm/v2/service/config")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(proxy.asked(), vec!["apple.invalid:443".to_owned()]);
    let got = receiver.received();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].path, "/mdm/v2/service/config");
    std::fs::remove_dir_all(&dir).ok();
}
