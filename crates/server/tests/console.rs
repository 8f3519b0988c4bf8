//! The console over HTTP: signing in and out, every page for a signed-in viewer, the read-only
//! role and CSRF on every action, uploads and bad input answered with a page a person can act on.
//! (The browser tests in `tests/browser/` drive the same pages in Chromium.)

mod support;

use allot_store::testing::TestDb;
use support::{App, Browser, CONSOLE_PASSWORD};

#[tokio::test]
async fn signing_in_and_every_page() {
    let app = App::start(TestDb::sqlite().await).await;
    let token = app.sim_token("4000000000000001").await;
    let (status, _) = app
        .post(
            "/api/v1/tokens",
            serde_json::json!({ "name": "HQ", "token": token, "programType": "business", "categories": ["east"] }),
        )
        .await;
    assert_eq!(status, 201);
    // The first sync, with the apps' names.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while !app
        .get("/api/v1/apps?search=acme")
        .await
        .1
        .to_string()
        .contains("Acme Notes")
    {
        assert!(
            std::time::Instant::now() < deadline,
            "the first sync did not finish"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let mut b = Browser::new(&app);
    // Not signed in: every page leads to the sign-in page, and back after.
    let (status, _, to) = b.get("/apps?search=notes").await;
    assert_eq!(
        (status, to.as_deref()),
        (303, Some("/login?next=%2Fapps%3Fsearch%3Dnotes"))
    );
    assert_eq!(b.sign_in("admin", "wrong password").await, 401);
    assert_eq!(b.sign_in("nobody", CONSOLE_PASSWORD).await, 401);
    assert_eq!(b.sign_in("admin", CONSOLE_PASSWORD).await, 303);
    for (path, expect) in [
        ("/tokens", "HQ"),
        ("/tokens/rows", "next: delta sync in"),
        ("/tokens/rows", "HQ"),
        ("/tokens?search=acme&state=healthy", "1–1 of 1"),
        ("/tokens?search=nowhere", "No tokens to show"),
        ("/apps", "Acme Notes"),
        // The token field asks for names as it is used; categories are in the page.
        ("/apps", r#"data-suggest="/tokens/names""#),
        ("/apps", r#"<option value="east">"#),
        ("/tokens/names?q=h", r#"<option value="HQ">"#),
        ("/apps?search=handbook&type=book", "Acme Handbook"),
        ("/apps?low=true&sort=available", "of"),
        ("/deployments", "No deployments yet"),
        ("/users", "Users"),
        ("/devices", "Devices"),
        ("/reports", "Tokens by expiry date"),
        ("/subscriptions", "No subscriptions yet"),
        ("/", "All clear"),
    ] {
        let (status, html, _) = b.get(path).await;
        assert_eq!(status, 200, "{path}: {html}");
        assert!(html.contains(expect), "{path} lacks {expect:?}");
    }
    // The app page, its chart once a sync has recorded counts, and the licenses export.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let html = loop {
        let (status, html, _) = b.get("/apps/1/111").await;
        assert_eq!(status, 200, "{html}");
        if html.contains("usage-chart") {
            break html;
        }
        assert!(std::time::Instant::now() < deadline, "no chart: {html}");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    assert!(
        html.contains("Show the plan"),
        "admins may deploy from here"
    );
    // What Apple's metadata says of the app, with its source and age, on the page and in the API.
    assert!(
        html.contains("Version 1.0 (external id 1000000) · iOS 15.0 or later · iPhone, iPad · from Apple&#39;s content metadata lookup · checked with Apple just now"),
        "{html}"
    );
    let (status, meta) = app.get("/api/v1/apps/111/metadata").await;
    assert_eq!(status, 200, "{meta}");
    assert_eq!(meta["minimumOSVersion"], "15.0");
    assert_eq!(meta["latestVersion"], "1.0");
    assert_eq!(meta["externalVersionId"], 1_000_000);
    assert_eq!(
        meta["deviceFamilies"],
        serde_json::json!(["iphone", "ipad"])
    );
    assert_eq!(meta["source"], "lookup");
    assert_eq!(meta["customApp"], false);
    let (status, err) = app.get("/api/v1/apps/424242/metadata").await;
    assert_eq!(status, 404);
    assert!(err.to_string().contains("424242"), "{err}");
    // The same app bought at a second pricing: two rows, told apart by their pricing.
    app.sim_post(
        "/_sim/locations/4000000000000001/purchase",
        serde_json::json!({ "adamId": "111", "pricingParam": "PLUS", "count": 4 }),
    )
    .await;
    app.until("/api/v1/apps?search=111", "the PLUS licenses", |b| {
        b["apps"]
            .as_array()
            .is_some_and(|a| a.iter().any(|r| r["pricingParam"] == "PLUS"))
    })
    .await;
    let (status, html, _) = b.get("/apps?search=acme%20notes").await;
    assert_eq!(status, 200);
    assert!(
        html.contains("STDQ pricing") && html.contains("PLUS pricing"),
        "{html}"
    );
    let (status, csv, _) = b.get("/reports/licenses.csv").await;
    assert_eq!(status, 200);
    assert!(csv.starts_with("name,adamId,type,token"), "{csv}");
    assert!(
        csv.lines().next().unwrap().ends_with(",pricingParam"),
        "{csv}"
    );
    assert!(csv.contains("Acme Notes"));
    assert!(
        csv.lines()
            .any(|l| l.starts_with("Acme Notes,111,") && l.ends_with(",PLUS")),
        "{csv}"
    );
    // The ledger: S1's license (assigned outside Allot) is an orphan; cleaning it up shows the
    // list first and changes nothing, then revokes it at Apple and records who asked.
    let (status, html, _) = b.get("/ledger?kind=orphan").await;
    assert_eq!(status, 200, "{html}");
    assert!(
        html.contains("S1 (device)") && html.contains("Acme Notes"),
        "{html}"
    );
    // Statuses read as words (one table for the console, the CLI and the CSV).
    assert!(
        html.contains("Orphan (no deployment serves it)") && !html.contains(">orphan<"),
        "{html}"
    );
    let csrf = b.csrf().await;
    let (status, html, _) = b
        .post("/ledger/clean", &[("csrf", &csrf), ("kind", "orphan")])
        .await;
    assert_eq!(status, 200, "{html}");
    assert!(
        html.contains("will be given back") && html.contains("S1 (device)"),
        "{html}"
    );
    let assigned = |l: &serde_json::Value| {
        l["assets"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["adamId"] == "111")
            .unwrap()["assignedCount"]
            .as_i64()
            .unwrap()
    };
    assert_eq!(assigned(&app.sim_location("4000000000000001").await), 1);
    let (status, _, to) = b
        .post(
            "/ledger/clean",
            &[("csrf", &csrf), ("kind", "orphan"), ("confirm", "true")],
        )
        .await;
    assert_eq!(status, 303);
    let to = to.unwrap();
    assert!(to.starts_with("/ledger?notice=Asked+Apple"), "{to}");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while assigned(&app.sim_location("4000000000000001").await) != 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "S1's license was not revoked"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let (_, html, _) = b.get("/ledger").await;
    assert!(
        html.contains("console account admin") && html.contains("requested"),
        "{html}"
    );
    // A device's primary user and enrollment id, set from the Devices page.
    let (status, _) = app
        .post(
            "/api/v1/devices",
            serde_json::json!({ "serialNumber": "DEV1", "platform": "iPadOS" }),
        )
        .await;
    assert_eq!(status, 201);
    let (status, dana) = app
        .post(
            "/api/v1/users",
            serde_json::json!({ "name": "Dana", "email": "dana@acme.example" }),
        )
        .await;
    assert_eq!(status, 201);
    // Her page, from the users list: who she is, and that no location knows her yet.
    let dana_page = format!("/users/{}", dana["id"]);
    let (_, html, _) = b.get("/users?search=dana").await;
    assert!(html.contains(&format!("href=\"{dana_page}\"")), "{html}");
    let (status, html, _) = b.get(&dana_page).await;
    assert_eq!(status, 200, "{html}");
    assert!(
        html.contains("dana@acme.example")
            && html.contains(dana["clientUserId"].as_str().unwrap())
            && html.contains("No location knows this person yet")
            && html.contains("No deployment targets this person"),
        "{html}"
    );
    let (status, _, _) = b.get("/users/999999").await;
    assert_eq!(status, 404);
    // Users filtered by their VPP terms status: Dana is not known to Apple yet.
    for (terms, dana) in [
        ("none", true),
        ("accepted", false),
        ("invited", false),
        ("", true),
    ] {
        let (status, html, _) = b.get(&format!("/users?terms={terms}")).await;
        assert_eq!(status, 200, "{html}");
        assert_eq!(html.contains("dana@acme.example"), dana, "terms={terms}");
    }
    let (status, html, _) = b.get("/users?terms=happy").await;
    assert_eq!(status, 422);
    assert!(
        html.contains("must be invited, accepted, retired or none"),
        "{html}"
    );
    let (_, html, _) = b.get("/devices").await;
    assert!(html.contains("device-links"), "admins get the form");
    for (form, want) in [
        (vec![("serial", "NOPE"), ("user", "dana@acme.example")], 404),
        (
            vec![("serial", "DEV1"), ("enrollment_id", "not an id")],
            422,
        ),
        (vec![("serial", "DEV1")], 422),
        (
            vec![
                ("serial", "dev1"),
                ("user", "dana@acme.example"),
                ("enrollment_id", "UDID-DEV1"),
            ],
            303,
        ),
    ] {
        let mut form = form;
        form.push(("csrf", &csrf));
        let (status, html, _) = b.post("/devices/links", &form).await;
        assert_eq!(status, want, "{form:?}: {html}");
    }
    let (_, device) = app.get("/api/v1/devices/DEV1").await;
    assert_eq!(device["enrollmentId"], "UDID-DEV1", "{device}");
    assert!(device["primaryUserId"].is_i64(), "{device}");
    // The device's page, from the devices list: its user (linked to her page), what it runs.
    let (_, html, _) = b.get("/devices").await;
    assert!(html.contains("href=\"/devices/DEV1\""), "{html}");
    let (status, html, _) = b.get("/devices/dev1").await;
    assert_eq!(status, 200, "{html}");
    assert!(
        html.contains(&format!(
            "<a href=\"/users/{}\">Dana</a>",
            device["primaryUserId"]
        )) && html.contains("iPadOS (version not known yet)")
            && html.contains("No deployment targets this device"),
        "{html}"
    );
    let (status, _, _) = b.get("/devices/NOPE").await;
    assert_eq!(status, 404);
    // Bad input: a page that says what is wrong, never a 500.
    for (path, status) in [
        ("/apps/1/999999", 404),
        ("/apps/77/111", 404),
        ("/apps?platform=amiga", 422),
        ("/tokens?state=sad", 422),
        ("/apps?sort=colour", 422),
        ("/deployments/12345", 404),
        ("/deployments/1?status=done", 404),
        ("/reports/licenses.xml", 404),
    ] {
        let (got, html, _) = b.get(path).await;
        assert_eq!(got, status, "{path}: {html}");
        assert!(html.contains("class=\"error\""), "{path}");
        // The admin signed in is not told the page is read-only.
        assert!(!html.contains("read-only"), "{path}: {html}");
    }
    // The front page says when something is wrong, and where to deal with it.
    app.sim_post(
        "/_sim/locations/4000000000000001/token/revoke",
        serde_json::json!({}),
    )
    .await;
    let (status, _) = app
        .post("/api/v1/tokens/HQ/sync", serde_json::json!({}))
        .await;
    assert_eq!(status, 202);
    app.until("/api/v1/tokens/HQ", "the revoked token", |t| {
        t["state"] == "revoked"
    })
    .await;
    let (status, html, _) = b.get("/").await;
    assert_eq!(status, 200);
    assert!(
        html.contains("Tokens that need you")
            && html.contains("revoked")
            && !html.contains("All clear"),
        "{html}"
    );
    // Collections: a rule previewed (nothing saved), then created; its page shows the rule and
    // who it chose; pasted members are refused on it; unknown serials are named.
    let csrf = b.csrf().await;
    let rule_form = |step: &'static str| {
        vec![
            ("csrf", csrf.clone()),
            ("name", "Every iPad".to_string()),
            ("kind", "devices".to_string()),
            ("membership", "rule".to_string()),
            ("platform", "iPadOS".to_string()),
            ("platform", "iOS".to_string()),
            ("step", step.to_string()),
        ]
    };
    let as_refs = |v: &Vec<(&'static str, String)>| -> Vec<(&'static str, String)> { v.clone() };
    let res = b
        .req(reqwest::Method::POST, "/collections")
        .form(&as_refs(&rule_form("preview")))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 200);
    let html = res.text().await.unwrap();
    assert!(
        html.contains("id=\"rule-preview\"") && html.contains("platform iPadOS or iOS"),
        "{html}"
    );
    assert!(
        !b.get("/collections")
            .await
            .1
            .contains("data-collection=\"Every iPad\""),
        "a preview saves nothing"
    );
    let res = b
        .req(reqwest::Method::POST, "/collections")
        .form(&as_refs(&rule_form("create")))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 303);
    let to = res.headers()["location"].to_str().unwrap().to_owned();
    let (status, html, _) = b.get(&to).await;
    assert_eq!(status, 200);
    assert!(
        html.contains("chosen by a rule") && html.contains("platform iPadOS or iOS"),
        "{html}"
    );
    let id = to
        .trim_start_matches("/collections/")
        .split('?')
        .next()
        .unwrap()
        .to_owned();
    let (status, html, _) = b
        .post(
            &format!("/collections/{id}/members"),
            &[("csrf", &csrf), ("op", "add"), ("members", "C02X")],
        )
        .await;
    assert_eq!(status, 409, "{html}");
    assert!(html.contains("come from its rule"), "{html}");
    let (_, static_c) = app
        .post(
            "/api/v1/collections",
            serde_json::json!({ "name": "Cart", "kind": "devices" }),
        )
        .await;
    let (status, html, _) = b
        .post(
            &format!("/collections/{}/members", static_c["id"]),
            &[
                ("csrf", &csrf),
                ("op", "add"),
                ("members", "serial_number\nGHOST1, GHOST2"),
            ],
        )
        .await;
    assert_eq!(status, 422);
    assert!(html.contains("GHOST1") && html.contains("GHOST2"), "{html}");
    let (status, html, _) = b
        .post(
            "/collections/add-devices",
            &[("csrf", &csrf), ("collection", "Cart")],
        )
        .await;
    assert_eq!(status, 422);
    assert!(html.contains("tick the devices"), "{html}");
    let (status, _, to) = b.post("/users/invitations", &[("csrf", &csrf)]).await;
    assert_eq!(
        (
            status,
            to.as_deref()
                .map(|t| t.starts_with("/users?notice=No+invitation"))
        ),
        (303, Some(true))
    );

    // Alerts: an endpoint added from the console shows its secret once; a bad URL is refused in
    // words; the test event is queued and listed on the endpoint's page.
    let (status, html, _) = b
        .post(
            "/alerts/webhooks",
            &[
                ("csrf", &csrf),
                ("url", "gopher://x.example/"),
                ("all", "true"),
            ],
        )
        .await;
    assert_eq!(status, 422);
    assert!(html.contains("http:// or https://"), "{html}");
    let (status, html, _) = b
        .post(
            "/alerts/webhooks",
            &[
                ("csrf", &csrf),
                ("url", "http://127.0.0.1:9/hook"),
                ("event", "licenses.low"),
                ("event", "token.expiring"),
            ],
        )
        .await;
    assert_eq!(status, 200, "{html}");
    assert!(
        html.contains("id=\"new-secret\"") && html.contains("whsec_"),
        "{html}"
    );
    assert!(html.contains("Low on licenses, Token expiring"), "{html}");
    assert!(
        !b.get("/alerts").await.1.contains("whsec_"),
        "the secret is shown once"
    );
    let (status, _, to) = b.post("/alerts/webhooks/1/test", &[("csrf", &csrf)]).await;
    assert_eq!(
        (
            status,
            to.as_deref()
                .map(|t| t.starts_with("/alerts/webhooks/1?notice="))
        ),
        (303, Some(true))
    );
    let html = b.get("/alerts/webhooks/1").await.1;
    assert!(
        html.contains("Test event") && html.contains("data-status=\"pending\""),
        "{html}"
    );

    // The audit log: the console's changes with the account's name, the API's with the key's;
    // previews and reads are not changes; no secret appears; the page and its CSV.
    let (_, audit) = app.get("/api/v1/audit?limit=1000").await;
    let entries = audit["entries"].as_array().unwrap();
    let has = |actor: &str, method: &str, path: &str, status: i64| {
        entries.iter().any(|e| {
            e["actor"].as_str().unwrap().starts_with(actor)
                && e["method"] == method
                && e["path"] == path
                && e["status"] == status
        })
    };
    assert!(
        has("console account admin", "POST", "/collections", 303),
        "{audit}"
    );
    assert!(
        has(
            "console account admin",
            "POST",
            "/collections/add-devices",
            422
        ),
        "{audit}"
    );
    assert!(
        has("console account admin", "POST", "/alerts/webhooks", 200),
        "{audit}"
    );
    assert!(
        has("API key ", "POST", "/api/v1/collections", 201),
        "{audit}"
    );
    assert!(
        !entries.iter().any(|e| e["method"] == "GET"),
        "reads are not changes: {audit}"
    );
    assert_eq!(
        entries
            .iter()
            .filter(|e| e["path"] == "/collections" && e["status"] == 200)
            .count(),
        0,
        "a preview is not a change: {audit}"
    );
    let text = audit.to_string();
    assert!(
        !text.contains("whsec_")
            && !text.contains(support::CONSOLE_PASSWORD)
            && !text.contains(support::ADMIN),
        "no secret in the audit log"
    );
    let (status, html, _) = b.get("/audit?actor=console+account+admin").await;
    assert_eq!(status, 200);
    assert!(
        html.contains("<code>POST /collections</code>") && !html.contains("<td>API key "),
        "{html}"
    );
    let (status, csv, _) = b.get("/audit.csv").await;
    assert_eq!(status, 200);
    assert!(
        csv.starts_with("at,actor,address,method,path,status"),
        "{csv}"
    );

    // Time zone: UTC without a cookie; the account's choice is saved and sent as the cookie;
    // a name that is not a zone is refused.
    assert!(b
        .get("/account")
        .await
        .1
        .contains("<strong id=\"current-zone\">UTC</strong>"));
    let (status, html, _) = b
        .post(
            "/account",
            &[("csrf", &csrf), ("time_zone", "Mars/Olympus")],
        )
        .await;
    assert_eq!(status, 422, "{html}");
    let res = b
        .req(reqwest::Method::POST, "/account")
        .form(&[("csrf", csrf.as_str()), ("time_zone", "Asia/Tokyo")])
        .send()
        .await
        .unwrap();
    let cookie = res.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(cookie.starts_with("allot_tz=Asia/Tokyo;"), "{cookie}");
    let session = b.cookie.clone().unwrap();
    b.cookie = Some(format!("{session}; allot_tz=Asia/Tokyo"));
    let html = b.get("/account").await.1;
    assert!(
        html.contains("<strong id=\"current-zone\">Asia/Tokyo</strong>")
            && html.contains(" JST</span>"),
        "{html}"
    );
    b.cookie = Some(session);

    // Signing out ends the session.
    let csrf = b.csrf().await;
    let (status, _, to) = b.post("/logout", &[("csrf", &csrf)]).await;
    assert_eq!((status, to.as_deref()), (303, Some("/login")));
    assert_eq!(b.get("/tokens").await.0, 303);
}

#[tokio::test]
async fn a_read_only_account_changes_nothing_and_forms_need_their_token() {
    let app = App::start(TestDb::sqlite().await).await;
    let (status, res) = app
        .post(
            "/api/v1/console-accounts",
            serde_json::json!({ "username": "auditor", "password": "read-only-password-1" }),
        )
        .await;
    assert_eq!(status, 201, "{res}");
    assert_eq!(res["role"], "viewer");
    let (status, _) = app
        .post(
            "/api/v1/console-accounts",
            serde_json::json!({ "username": "auditor", "password": "another-password-2" }),
        )
        .await;
    assert_eq!(status, 409);
    let (status, _) = app
        .post(
            "/api/v1/console-accounts",
            serde_json::json!({ "username": "x", "password": "short" }),
        )
        .await;
    assert_eq!(status, 422);
    let token = app.sim_token("4000000000000001").await;
    app.post(
        "/api/v1/tokens",
        serde_json::json!({ "name": "HQ", "token": token, "programType": "business" }),
    )
    .await;

    let mut ro = Browser::new(&app);
    assert_eq!(ro.sign_in("auditor", "read-only-password-1").await, 303);
    let (_, html, _) = ro.get("/tokens").await;
    assert!(html.contains("· viewer"));
    assert!(!html.contains("Add a token"), "no actions shown");
    let csrf = ro.csrf().await;
    for path in [
        "/tokens/1/sync",
        "/tokens/1/delete",
        "/tokens/1/takeover",
        "/deployments/1/delete",
        "/users/1/invite",
        "/ledger/clean",
        "/devices/links",
        "/collections",
        "/collections/1/members",
        "/collections/1/rule",
        "/collections/1/delete",
        "/collections/add-devices",
        "/deployments/1/retry",
        "/users/invitations",
        "/alerts/webhooks",
        "/alerts/webhooks/1/test",
        "/alerts/webhooks/1/delete",
    ] {
        let (status, html, _) = ro.post(path, &[("csrf", &csrf)]).await;
        assert_eq!(status, 403, "{path}");
        assert!(
            html.contains("auditor is a viewer account"),
            "{path}: {html}"
        );
    }
    // A plan only reads: a read-only account may ask for one, as a read-only API key may.
    let (status, html, _) = ro
        .post(
            "/deployments/plan",
            &[("csrf", &csrf), ("adam_id", "111"), ("collection", "x")],
        )
        .await;
    assert_eq!(status, 404, "no collection x: {html}");
    assert!(!html.contains("viewer account"));
    let (status, _, _) = ro
        .post(
            "/deployments/plan",
            &[("csrf", "forged"), ("adam_id", "111"), ("collection", "x")],
        )
        .await;
    assert_eq!(status, 403, "still only from our own form");
    // The plan speaks of what the action does: claims for Required, none for Revoke.
    let (status, _) = app
        .post(
            "/api/v1/collections",
            serde_json::json!({ "name": "Carts", "kind": "devices" }),
        )
        .await;
    assert_eq!(status, 201);
    for (action, button, claims) in [
        ("required", "Confirm and install", true),
        ("revoke", "Confirm and take the licenses back", false),
    ] {
        let (status, html, _) = ro
            .post(
                "/deployments/plan",
                &[
                    ("csrf", &csrf),
                    ("adam_id", "111"),
                    ("collection", "Carts"),
                    ("action", action),
                ],
            )
            .await;
        assert_eq!(status, 200, "{html}");
        assert!(html.contains(button), "{action}: {html}");
        assert_eq!(html.contains("To claim"), claims, "{action}: {html}");
    }
    let (_, tokens) = app.get("/api/v1/tokens").await;
    assert_eq!(tokens["tokens"].as_array().unwrap().len(), 1, "still there");

    // An admin's form without its CSRF token is refused too.
    let mut admin = Browser::new(&app);
    admin.sign_in("admin", CONSOLE_PASSWORD).await;
    let (status, html, _) = admin.post("/tokens/1/delete", &[("csrf", "forged")]).await;
    assert_eq!(status, 403);
    assert!(html.contains("expired"), "{html}");
    // With it, the action happens.
    let csrf = admin.csrf().await;
    let (status, _, to) = admin.post("/tokens/1/sync", &[("csrf", &csrf)]).await;
    assert!(status == 303 || status == 409, "{status}");
    if status == 303 {
        assert!(to.unwrap().starts_with("/tokens?notice="));
    }
    // A corrupt upload is a clear error, and nothing is added.
    let form = reqwest::multipart::Form::new()
        .text("csrf", csrf.clone())
        .text("name", "Broken")
        .text("program", "business")
        .part(
            "file",
            reqwest::multipart::Part::bytes(b"not a token".to_vec()).file_name("x.vpptoken"),
        );
    let res = admin
        .req(reqwest::Method::POST, "/tokens")
        .multipart(form)
        .send()
        .await
        .unwrap();
    let status = res.status().as_u16();
    let html = res.text().await.unwrap();
    assert!((400..500).contains(&status), "{status}: {html}");
    assert!(html.contains("class=\"error\""));
    // A file over the upload limit is a 413 page that says so.
    let form = reqwest::multipart::Form::new()
        .text("csrf", csrf.clone())
        .text("name", "Huge")
        .part(
            "file",
            reqwest::multipart::Part::bytes(vec![b'a'; 300 * 1024]).file_name("x.vpptoken"),
        );
    let res = admin
        .req(reqwest::Method::POST, "/tokens")
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 413);
    assert!(res.text().await.unwrap().contains("too large"));
    let (_, tokens) = app.get("/api/v1/tokens").await;
    assert_eq!(tokens["tokens"].as_array().unwrap().len(), 1);
    // Sign-in never redirects off-site.
    let res = admin
        .req(reqwest::Method::POST, "/login")
        .form(&[
            ("username", "admin"),
            ("password", CONSOLE_PASSWORD),
            ("next", "//evil.example/"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.headers()["location"], "/tokens");
    // Guessing is slowed down: after five failures, even the right password waits.
    let mut guesser = Browser::new(&app);
    for _ in 0..5 {
        assert_eq!(guesser.sign_in("auditor", "a wrong guess").await, 401);
    }
    assert_eq!(
        guesser.sign_in("auditor", "read-only-password-1").await,
        429
    );
    assert_eq!(
        guesser.sign_in("admin", CONSOLE_PASSWORD).await,
        303,
        "other names are not held up"
    );
}

/// Someone guessing `admin` from one address neither locks out the real admin at another nor
/// clears the count by flooding junk names; known and unknown names answer alike.
#[tokio::test]
async fn the_sign_in_throttle_cannot_be_flushed_or_turned_on_the_admin() {
    let app = App::start_with(TestDb::sqlite().await, |c| c.trust_forwarded_for = true).await;
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let sign_in = |from: &'static str, user: String, password: &'static str| {
        let req = http
            .post(format!("{}/login", app.base))
            .header("x-forwarded-for", format!("198.51.100.7, {from}"))
            .form(&[("username", user), ("password", password.to_owned())]);
        async move { req.send().await.unwrap().status().as_u16() }
    };
    for _ in 0..5 {
        assert_eq!(
            sign_in("203.0.113.9", "admin".into(), "wrong-password").await,
            401
        );
    }
    assert_eq!(
        sign_in("203.0.113.9", "admin".into(), CONSOLE_PASSWORD).await,
        429,
        "the guesser's address waits, even with the right password"
    );
    // Junk names from that address stop at its own limit instead of clearing the table.
    for i in 0..30 {
        sign_in("203.0.113.9", format!("junk{i}"), "x").await;
    }
    assert_eq!(
        sign_in("203.0.113.9", "admin".into(), CONSOLE_PASSWORD).await,
        429
    );
    // The real admin, elsewhere, signs in.
    assert_eq!(
        sign_in("192.0.2.44", "admin".into(), CONSOLE_PASSWORD).await,
        303
    );
    // An unknown name is refused with the same answer as a wrong password.
    assert_eq!(
        sign_in("192.0.2.45", "nobody".into(), "whatever").await,
        401
    );
}
