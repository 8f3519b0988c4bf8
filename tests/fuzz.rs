//! The API against its own OpenAPI document: schemathesis (from PyPI; `scripts/test` installs it
//! in `target/schemathesis`) sends generated requests to every operation of `allot demo` — a
//! fixed number per operation and a fixed seed, so the run is bounded and repeatable — and fails
//! on a 5xx, a status code or content type the document does not list, a body that does not match
//! its schema, a route that answers without a key, or a method answered that should be 405.

mod demo;

use std::path::Path;
use std::process::Command;

#[test]
fn the_api_holds_to_its_openapi_document_under_fuzzing() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let st = std::env::var("SCHEMATHESIS").unwrap_or_else(|_| {
        root.join("target/schemathesis/bin/schemathesis")
            .to_string_lossy()
            .into_owned()
    });
    assert!(
        Path::new(&st).exists(),
        "the fuzz test needs schemathesis at {st}: run scripts/test, which installs it"
    );
    let demo = demo::Demo::start("fuzz");
    let work = std::env::temp_dir().join(format!("allot-fuzz-work-{}", std::process::id()));
    std::fs::create_dir_all(&work).unwrap();
    let out = Command::new(&st)
        .args([
            "run",
            &format!("{}/api/v1/openapi.json", demo.api),
            "--header",
            &format!("Authorization: Bearer {}", demo.key),
            "--checks",
            "not_a_server_error,status_code_conformance,content_type_conformance,\
             response_schema_conformance,ignored_auth,unsupported_method",
            "--max-examples",
            "20",
            "--seed",
            "11",
            "--phases",
            "examples,coverage,fuzzing",
            // One worker: with two, hypothesis parses lambda sources from two threads at once and
            // CPython 3.11's `ast` can fail with "AST constructor recursion depth mismatch" — an
            // error inside the tool, not a finding, seen once in this project's runs.
            "--workers",
            "1",
            "--request-timeout",
            "30",
        ])
        .current_dir(&work)
        .output()
        .expect("schemathesis runs");
    std::fs::remove_dir_all(&work).ok();
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "schemathesis found failures:\n{report}{}\n--- the demo printed:\n{}",
        String::from_utf8_lossy(&out.stderr),
        demo.printed
    );
    // The summary, so the log shows how much was tried.
    for line in report.lines().filter(|l| l.contains("generated")) {
        println!("{}", line.trim());
    }
}
