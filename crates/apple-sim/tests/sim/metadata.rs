use serde_json::Value;

use crate::support::*;

#[tokio::test]
async fn the_lookup_gives_names_bundle_ids_platforms_versions_and_icons() {
    let sim = TestSim::small().await;
    let config: Value = sim
        .http
        .get(sim.url("service/config"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let lookup = config["urls"]["contentMetadataLookup"]
        .as_str()
        .unwrap()
        .to_owned();
    let res: Value = sim
        .http
        .get(format!("{lookup}?version=2&id=111,222,999&p=mdm-lockup&caller=MDM&platform=enterprisestore&cc=us"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(res["isAuthenticated"], false);
    let results = res["results"].as_object().unwrap();
    assert_eq!(results.len(), 2, "unknown ids are absent");
    let notes = &results["111"];
    assert_eq!(
        (notes["name"].as_str(), notes["bundleId"].as_str()),
        (Some("Acme Notes"), Some("com.acme.notes"))
    );
    assert_eq!(
        notes["deviceFamilies"],
        serde_json::json!(["iphone", "ipad", "mac"])
    );
    assert_eq!(notes["offers"][0]["version"]["display"], "1.0");
    assert_eq!(notes["isVppDeviceBasedLicensingEnabled"], true);
    assert_eq!(results["222"]["kind"], "ebook");
    let template = notes["artwork"]["url"].as_str().unwrap();
    assert!(template.contains("{w}x{h}bb.{f}"), "{template}");
    let icon = sim
        .http
        .get(
            template
                .replace("{w}", "128")
                .replace("{h}", "128")
                .replace("{f}", "png"),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(icon.status().as_u16(), 200);
    assert_eq!(icon.headers()["content-type"], "image/png");
    assert!(icon.bytes().await.unwrap().starts_with(b"\x89PNG"));
    let missing = sim
        .http
        .get(format!("{}/artwork/999/64x64bb.png", sim.sim.base_url))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status().as_u16(), 404);
}
