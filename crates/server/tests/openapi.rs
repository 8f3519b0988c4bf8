//! The OpenAPI document and the routes cannot drift apart: every route the router serves is
//! documented with its methods and nothing else is; every operation documents the error body;
//! and the document is kept in `docs/openapi.json`, so a change to it shows in review (run with
//! `UPDATE_OPENAPI=1` to write the new one).

use std::collections::BTreeSet;

use allot_server::api::{ApiDoc, ROUTES};
use serde_json::Value;
use utoipa::OpenApi;

fn document() -> Value {
    serde_json::to_value(ApiDoc::openapi()).unwrap()
}

#[test]
fn every_route_is_documented_and_every_documented_route_exists() {
    let doc = document();
    let documented: BTreeSet<(String, String)> = doc["paths"]
        .as_object()
        .unwrap()
        .iter()
        .flat_map(|(path, item)| {
            item.as_object()
                .unwrap()
                .keys()
                .filter(|m| ["get", "post", "put", "delete", "patch"].contains(&m.as_str()))
                .map(move |m| (path.clone(), m.clone()))
        })
        .collect();
    let served: BTreeSet<(String, String)> = ROUTES
        .iter()
        .flat_map(|(path, methods)| methods.iter().map(|m| (path.to_string(), m.to_string())))
        .collect();
    let undocumented: Vec<_> = served.difference(&documented).collect();
    let missing: Vec<_> = documented.difference(&served).collect();
    assert!(
        undocumented.is_empty(),
        "served but not documented: {undocumented:?}"
    );
    assert!(missing.is_empty(), "documented but not served: {missing:?}");
}

#[test]
fn every_operation_documents_its_errors_and_deletes_need_confirmation() {
    let doc = document();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let responses = op["responses"].as_object().unwrap();
            for code in ["400", "401", "422", "500"] {
                assert!(responses.contains_key(code), "{method} {path} lacks {code}");
            }
            for (code, r) in responses.iter().filter(|(c, _)| c.starts_with(['4', '5'])) {
                assert_eq!(
                    r["content"]["application/json"]["schema"]["$ref"],
                    "#/components/schemas/ErrorBody",
                    "{method} {path} {code}"
                );
            }
            // Removing members is undone by adding them again; every other delete is final.
            if method == "delete" && !path.ends_with("/members") {
                let confirm = op["parameters"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .find(|p| p["name"] == "confirm");
                assert!(
                    confirm.is_some_and(|c| c["required"] == true),
                    "DELETE {path} documents ?confirm=true as required"
                );
            }
        }
    }
    let report = &doc["paths"]["/api/v1/reports/licenses"]["get"]["responses"]["200"]["content"];
    assert!(report["text/csv"].is_object() && report["application/json"].is_object());
}

#[test]
fn the_document_matches_the_one_in_docs() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/openapi.json");
    let now = serde_json::to_string_pretty(&document()).unwrap() + "\n";
    if std::env::var_os("UPDATE_OPENAPI").is_some() {
        std::fs::write(&path, &now).unwrap();
        return;
    }
    let kept = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        kept == now,
        "the API changed: review it and run `UPDATE_OPENAPI=1 cargo test -p allot-server --test openapi` to update docs/openapi.json"
    );
}
