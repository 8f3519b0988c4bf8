//! Roles and scopes: every API route and every console page and action walked with a viewer, an
//! operator, an admin and scoped identities — refused (403) exactly when the role table says so,
//! never refused otherwise — then what a scoped operator sees and draws from, accounts disabled
//! and passwords reset.

mod support;

use allot_server::roles::{self, Role};
use allot_store::testing::TestDb;
use axum::http::Method;
use serde_json::{json, Value};
use support::{App, Browser, ADMIN};

/// A path with its parameters filled by values naming nothing, so no request changes anything.
fn sample(path: &str) -> String {
    let mut out = String::new();
    let mut rest = path;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let close = open + rest[open..].find('}').unwrap();
        out.push_str(match &rest[open + 1..close] {
            "format" => "csv",
            "action" => "assign",
            "serial" | "device" => "NO-SUCH-SERIAL",
            _ => "999999",
        });
        rest = &rest[close + 1..];
    }
    out.push_str(rest);
    out
}

struct Identity {
    name: &'static str,
    secret: String,
    role: Role,
    scoped: bool,
}

fn refused(id: &Identity, method: &Method, route: &str) -> bool {
    id.role < roles::required(method, route) || (id.scoped && roles::needs_every_location(route))
}

async fn key(app: &App, name: &'static str, role: Role, scope: Option<Value>) -> Identity {
    let mut body = json!({ "name": name, "role": role.as_str() });
    if let Some(s) = &scope {
        body["scope"] = s.clone();
    }
    let (status, k) = app.post("/api/v1/api-keys", body).await;
    assert_eq!(status, 201, "{k}");
    Identity {
        name,
        secret: k["secret"].as_str().unwrap().to_owned(),
        role,
        scoped: scope.is_some(),
    }
}

async fn setup() -> (App, i64, i64) {
    let app = App::start(TestDb::sqlite().await).await;
    let (status, hq) = app.add("HQ", "4000000000000001").await;
    assert_eq!(status, 201, "{hq}");
    let (status, branch) = app.add("Branch", "4000000000000002").await;
    assert_eq!(status, 201, "{branch}");
    let (hq, branch) = (hq["id"].as_i64().unwrap(), branch["id"].as_i64().unwrap());
    app.synced(hq).await;
    app.synced(branch).await;
    (app, hq, branch)
}

#[tokio::test]
async fn every_api_route_follows_the_role_table() {
    let (app, _, _) = setup().await;
    let ids = [
        key(&app, "viewer", Role::Viewer, None).await,
        key(&app, "operator", Role::Operator, None).await,
        key(&app, "admin", Role::Admin, None).await,
        key(
            &app,
            "scoped-admin",
            Role::Admin,
            Some(json!({ "tokens": ["HQ"] })),
        )
        .await,
    ];
    let mut checked = 0;
    for (route, methods) in allot_server::api::ROUTES {
        for m in *methods {
            let method = Method::from_bytes(m.to_ascii_uppercase().as_bytes()).unwrap();
            let path = sample(route);
            let body = (method != Method::GET && method != Method::DELETE).then(|| json!([]));
            let (status, _) = app.call(method.clone(), &path, None, body.clone()).await;
            assert_eq!(status, 401, "{method} {route} without a key");
            for id in &ids {
                let (status, answer) = app
                    .call(method.clone(), &path, Some(&id.secret), body.clone())
                    .await;
                if refused(id, &method, route) {
                    assert_eq!(status, 403, "{} {method} {route}: {answer}", id.name);
                } else {
                    assert!(
                        status != 403 && status != 401,
                        "{} {method} {route} answered {status}: {answer}",
                        id.name
                    );
                }
                checked += 1;
            }
        }
    }
    assert!(checked > 200, "{checked} requests");
    // Every route the table names is served (no stale entry that protects nothing).
    let console = allot_server::console::ROUTES;
    for (method, route, _) in roles::named_routes() {
        let served = allot_server::api::ROUTES
            .iter()
            .chain(console.iter())
            .any(|(r, ms)| *r == route && ms.iter().any(|m| m.eq_ignore_ascii_case(method)));
        assert!(
            served,
            "the role table names {method} {route}, which no router serves"
        );
    }
}

#[tokio::test]
async fn every_console_page_and_action_follows_the_role_table() {
    let (app, _, _) = setup().await;
    let mut accounts = Vec::new();
    for (name, role, scope) in [
        ("vera", Role::Viewer, None),
        ("otto", Role::Operator, None),
        ("ada", Role::Admin, None),
        ("sam", Role::Admin, Some(json!({ "categories": ["east"] }))),
    ] {
        let mut body =
            json!({ "username": name, "password": "a-long-password-1", "role": role.as_str() });
        if let Some(s) = &scope {
            body["scope"] = s.clone();
        }
        let (status, a) = app.post("/api/v1/console-accounts", body).await;
        assert_eq!(status, 201, "{a}");
        let mut b = Browser::new(&app);
        assert_eq!(b.sign_in(name, "a-long-password-1").await, 303);
        let csrf = b.csrf().await;
        accounts.push((
            Identity {
                name,
                secret: String::new(),
                role,
                scoped: scope.is_some(),
            },
            b,
            csrf,
        ));
    }
    for (route, methods) in allot_server::console::ROUTES {
        if matches!(*route, "/login" | "/logout") || route.starts_with("/console/assets") {
            continue;
        }
        for m in *methods {
            let method = Method::from_bytes(m.to_ascii_uppercase().as_bytes()).unwrap();
            let path = sample(route);
            for (id, b, csrf) in &accounts {
                let (status, html, _) = if method == Method::GET {
                    b.get(&path).await
                } else {
                    // A preview step where a form has one: the only thing a viewer may post.
                    b.post(&path, &[("csrf", csrf), ("step", "preview")]).await
                };
                if refused(id, &method, route) {
                    assert_eq!(status, 403, "{} {method} {route}", id.name);
                    assert!(
                        html.contains(id.name),
                        "the refusal names the account: {html}"
                    );
                } else {
                    assert_ne!(status, 403, "{} {method} {route}: {html}", id.name);
                }
            }
        }
    }
}

#[tokio::test]
async fn a_scoped_operator_sees_and_draws_from_its_tokens_only() {
    let (app, hq, branch) = setup().await;
    let op = key(
        &app,
        "school",
        Role::Operator,
        Some(json!({ "tokens": ["HQ"] })),
    )
    .await;
    let as_op = |method: Method, path: &str, body: Option<Value>| {
        let secret = op.secret.clone();
        let path = path.to_owned();
        let app = &app;
        async move { app.call(method, &path, Some(&secret), body).await }
    };
    let (_, tokens) = as_op(Method::GET, "/api/v1/tokens", None).await;
    let names: Vec<&str> = tokens["tokens"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["HQ"]);
    assert_eq!(
        as_op(Method::GET, &format!("/api/v1/tokens/{branch}"), None)
            .await
            .0,
        404
    );
    assert_eq!(
        as_op(Method::GET, "/api/v1/tokens/Branch/sync", None)
            .await
            .0,
        404
    );
    let (_, apps) = as_op(Method::GET, "/api/v1/apps", None).await;
    let apps = apps["apps"].as_array().unwrap();
    assert!(
        !apps.is_empty() && apps.iter().all(|a| a["token"] == "HQ"),
        "{apps:?}"
    );
    let (_, all_apps) = app.get("/api/v1/apps").await;
    assert!(
        all_apps["apps"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["token"] == "Branch"),
        "the admin sees both"
    );
    let (_, report) = as_op(Method::GET, "/api/v1/reports/licenses?format=json", None).await;
    assert!(
        report
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["token"] == "HQ"),
        "{report}"
    );

    // A deployment the admin made over every token is not the school's.
    let (status, _) = app
        .post(
            "/api/v1/collections",
            json!({ "name": "Carts", "kind": "devices" }),
        )
        .await;
    assert_eq!(status, 201);
    let (status, everywhere) = app
        .post(
            "/api/v1/deployments",
            json!({ "adamId": "111", "collection": "Carts" }),
        )
        .await;
    assert_eq!(status, 201, "{everywhere}");
    let everywhere = everywhere["id"].as_i64().unwrap();
    let (_, list) = as_op(Method::GET, "/api/v1/deployments", None).await;
    assert!(list["deployments"].as_array().unwrap().is_empty(), "{list}");
    assert_eq!(
        as_op(
            Method::GET,
            &format!("/api/v1/deployments/{everywhere}"),
            None
        )
        .await
        .0,
        404
    );
    // Its plans name only its tokens, and a deployment it makes draws from them alone.
    let plan = json!({ "adamId": "111", "collection": "Carts", "tokens": ["Branch"] });
    assert_eq!(
        as_op(Method::POST, "/api/v1/deployments/plan", Some(plan))
            .await
            .0,
        404
    );
    let (status, _) = as_op(
        Method::POST,
        "/api/v1/collections",
        Some(json!({ "name": "Lab", "kind": "devices" })),
    )
    .await;
    assert_eq!(status, 201, "an operator manages collections");
    let (status, mine) = as_op(
        Method::POST,
        "/api/v1/deployments",
        Some(json!({ "adamId": "111", "collection": "Lab" })),
    )
    .await;
    assert_eq!(status, 201, "{mine}");
    assert_eq!(mine["tokenIds"], json!([hq]), "{mine}");
    // The audit log has the deployment's options, as the operator chose them.
    let (_, audit) = app.get("/api/v1/audit?path=/api/v1/deployments").await;
    let want = format!(
        "deployment {}: required adamId 111 (STDQ) to collection \"Lab\", tokens HQ, when short fail, on leave keep",
        mine["id"]
    );
    assert!(
        audit["entries"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["detail"] == want.as_str() && e["actor"] == "API key school"),
        "{want}: {audit}"
    );
    let (_, list) = as_op(Method::GET, "/api/v1/deployments", None).await;
    assert_eq!(list["deployments"].as_array().unwrap().len(), 1, "{list}");
    // An app none of its tokens holds cannot be deployed by it.
    let (status, body) = as_op(
        Method::POST,
        "/api/v1/deployments/plan",
        Some(json!({ "adamId": "4242", "collection": "Carts" })),
    )
    .await;
    assert_eq!(status, 422, "{body}");

    // The console shows the same: its tokens, its apps.
    let (status, a) = app
        .post(
            "/api/v1/console-accounts",
            json!({ "username": "head", "password": "a-long-password-1", "role": "operator",
                    "scope": { "tokens": [hq.to_string()] } }),
        )
        .await;
    assert_eq!(status, 201, "{a}");
    assert_eq!(a["scope"]["tokens"], json!(["HQ"]));
    let mut b = Browser::new(&app);
    assert_eq!(b.sign_in("head", "a-long-password-1").await, 303);
    let (_, page, _) = b.get("/tokens").await;
    assert!(page.contains("HQ") && !page.contains("Branch"), "{page}");
    let (_, page, _) = b.get("/apps").await;
    assert!(!page.contains("Branch"), "{page}");
    // The token field's suggestions keep to the scope too.
    let (status, names, _) = b.get("/tokens/names?q=").await;
    assert_eq!(status, 200);
    assert_eq!(names, r#"<option value="HQ">"#);
    assert_eq!(b.get("/tokens/names?q=bran").await.1, "");
    let (status, _, _) = b.get(&format!("/apps/{branch}/111?pricing=STDQ")).await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn accounts_are_disabled_and_keys_cannot_lower_themselves() {
    let (app, _, _) = setup().await;
    let (_, a) = app
        .post(
            "/api/v1/console-accounts",
            json!({ "username": "temp", "password": "a-long-password-1", "role": "operator" }),
        )
        .await;
    let id = a["id"].as_i64().unwrap();
    let mut b = Browser::new(&app);
    assert_eq!(b.sign_in("temp", "a-long-password-1").await, 303);
    assert_eq!(b.get("/tokens").await.0, 200);
    let (status, changed) = app
        .call(
            Method::PUT,
            &format!("/api/v1/console-accounts/{id}"),
            Some(ADMIN),
            Some(json!({ "disabled": true })),
        )
        .await;
    assert_eq!(status, 200, "{changed}");
    assert!(changed["disabledAt"].is_string());
    // Its session ended, and it cannot sign in again.
    assert_eq!(b.get("/tokens").await.0, 303);
    let mut again = Browser::new(&app);
    assert_eq!(again.sign_in("temp", "a-long-password-1").await, 403);
    // Enabled with a new password: the old one no longer works.
    let (status, _) = app
        .call(
            Method::PUT,
            &format!("/api/v1/console-accounts/{id}"),
            Some(ADMIN),
            Some(json!({ "disabled": false, "password": "another-password-2" })),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(again.sign_in("temp", "a-long-password-1").await, 401);
    assert_eq!(again.sign_in("temp", "another-password-2").await, 303);
    let (_, list) = app.get("/api/v1/console-accounts").await;
    let temp = list["accounts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["username"] == "temp")
        .unwrap()
        .clone();
    assert!(temp["lastSignInAt"].is_string(), "{temp}");

    // The admin key cannot make itself a viewer; another key's role changes.
    let (_, keys) = app.get("/api/v1/api-keys").await;
    let own = keys["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["fromConfig"] == true)
        .unwrap()["id"]
        .as_i64()
        .unwrap();
    let (status, body) = app
        .call(
            Method::PUT,
            &format!("/api/v1/api-keys/{own}"),
            Some(ADMIN),
            Some(json!({ "role": "viewer" })),
        )
        .await;
    assert_eq!(status, 422, "{body}");
    let other = key(&app, "reporting", Role::Viewer, None).await;
    let (_, keys) = app.get("/api/v1/api-keys").await;
    let other_id = keys["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["name"] == other.name)
        .unwrap()["id"]
        .as_i64()
        .unwrap();
    let (status, k) = app
        .call(
            Method::PUT,
            &format!("/api/v1/api-keys/{other_id}"),
            Some(ADMIN),
            Some(json!({ "role": "operator", "scope": { "tokens": ["HQ"] } })),
        )
        .await;
    assert_eq!(status, 200, "{k}");
    assert_eq!(
        (k["role"].as_str(), k["scope"]["tokens"][0].as_str()),
        (Some("operator"), Some("HQ"))
    );
    let (status, _) = app
        .call(
            Method::POST,
            "/api/v1/tokens/HQ/sync",
            Some(&other.secret),
            None,
        )
        .await;
    assert_eq!(status, 202, "an operator syncs");
    let (status, body) = app
        .call(
            Method::PUT,
            &format!("/api/v1/api-keys/{other_id}"),
            Some(ADMIN),
            Some(json!({ "scope": { "tokens": ["Nowhere"] } })),
        )
        .await;
    assert_eq!(status, 422);
    assert!(body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("Nowhere"));
}
