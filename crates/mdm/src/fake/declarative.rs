//! The simulated devices' declarative management, as NanoMDM's `-dm` forwarding carries it: told
//! by a `DeclarativeManagement` command, a device GETs `tokens`, `declaration-items` and each
//! configuration, applies the `com.apple.configuration.app.managed` ones (installing, taking over
//! an app already there, or removing what is no longer declared) and PUTs its `app.managed.list`
//! status — each request with `X-Enrollment-ID`, signed when NanoMDM has `-dm-send-hmac-key`.

use std::collections::BTreeMap;

use serde_json::{json, Value};

use super::{bundle_of, Behaviour, FakeNanoMdm};

/// One app declaration as the device read it.
struct Wanted {
    declaration: String,
    auto_update: bool,
}

impl FakeNanoMdm {
    /// Apps a declaration manages on the device (bundle ids).
    pub fn declared_apps(&self, udid: &str) -> Vec<String> {
        self.state()
            .enrollments
            .get(udid)
            .map(|e| e.declared.keys().cloned().collect())
            .unwrap_or_default()
    }

    /// How many apps the device has had removed (by command or by a withdrawn declaration).
    pub fn removals(&self, udid: &str) -> u64 {
        self.state().enrollments.get(udid).map_or(0, |e| e.removals)
    }

    /// One declarative sync of the device; false if NanoMDM has no `-dm` URL or the server
    /// did not answer as the protocol wants.
    pub async fn declarative_sync(&self, udid: &str) -> bool {
        let Some(tokens) = self.dm_call(udid, "tokens", None).await else {
            return false;
        };
        let Some(token) = tokens["SyncTokens"]["DeclarationsToken"]
            .as_str()
            .map(str::to_owned)
        else {
            return false;
        };
        let known = self
            .state()
            .enrollments
            .get(udid)
            .and_then(|e| e.dm_token.clone());
        if known.as_deref() == Some(token.as_str()) {
            return true;
        }
        let Some(items) = self.dm_call(udid, "declaration-items", None).await else {
            return false;
        };
        let mut wanted: BTreeMap<i64, Wanted> = BTreeMap::new();
        let configurations = items["Declarations"]["Configurations"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        for c in configurations {
            let Some(id) = c["Identifier"].as_str() else {
                continue;
            };
            let Some(d) = self
                .dm_call(udid, &format!("declaration/configuration/{id}"), None)
                .await
            else {
                return false;
            };
            if d["Type"] == "com.apple.configuration.app.managed" {
                if let Some(adam) = d["Payload"]["AppStoreID"]
                    .as_str()
                    .and_then(|a| a.parse::<i64>().ok())
                {
                    let auto_update =
                        d["Payload"]["UpdateBehavior"]["AutomaticAppUpdates"] == "AlwaysOn";
                    wanted.insert(
                        adam,
                        Wanted {
                            declaration: id.to_owned(),
                            auto_update,
                        },
                    );
                }
            }
        }
        let report = self.apply_declarations(udid, &wanted, &token);
        self.report_status(udid, report).await
    }

    /// The device's own update check: each declared app whose declaration says
    /// `AutomaticAppUpdates: AlwaysOn` and that runs an older version than the store's is
    /// updated, and the device reports the new versions. Returns how many it updated (none if
    /// the report was not taken).
    pub async fn update_declared_apps(&self, udid: &str) -> usize {
        let report: Vec<Value> = {
            let mut s = self.state();
            let versions = s.store_versions.clone();
            let Some(e) = s.enrollments.get_mut(udid) else {
                return 0;
            };
            let mut report = Vec::new();
            for (bundle, adam) in &e.declared {
                let (Some(newest), Some(declaration)) =
                    (versions.get(adam).copied(), e.auto_updated.get(bundle))
                else {
                    continue;
                };
                if e.apps.contains_key(bundle) && e.versions.get(bundle).is_none_or(|v| *v < newest)
                {
                    e.versions.insert(bundle.clone(), newest);
                    report.push(json!({ "identifier": bundle, "state": "managed",
                        "declaration-identifier": declaration,
                        "external-version-id": newest }));
                }
            }
            report
        };
        let updated = report.len();
        if updated == 0 || !self.report_status(udid, report).await {
            return 0;
        }
        updated
    }

    /// PUTs an `app.managed.list` status report; true if the server took it.
    async fn report_status(&self, udid: &str, list: Vec<Value>) -> bool {
        let body =
            json!({ "StatusItems": { "app": { "managed": { "list": list } } }, "Errors": [] });
        self.dm_call(udid, "status", Some(body.to_string().into_bytes()))
            .await
            .is_some()
    }

    /// The device applies its app declarations; returns its `app.managed.list`.
    fn apply_declarations(
        &self,
        udid: &str,
        wanted: &BTreeMap<i64, Wanted>,
        token: &str,
    ) -> Vec<Value> {
        let mut s = self.state();
        let bundles = s.bundle_ids.clone();
        let versions = s.store_versions.clone();
        let Some(e) = s.enrollments.get_mut(udid) else {
            return Vec::new();
        };
        let mut report = Vec::new();
        for (
            adam,
            Wanted {
                declaration,
                auto_update,
            },
        ) in wanted
        {
            let bundle = bundle_of(&bundles, *adam);
            e.declared.insert(bundle.clone(), *adam);
            if *auto_update {
                e.auto_updated.insert(bundle.clone(), declaration.clone());
            } else {
                e.auto_updated.remove(&bundle);
            }
            if let Behaviour::FailInstalls { .. } = e.behaviour {
                report.push(
                    json!({ "identifier": bundle, "declaration-identifier": declaration,
                    "state": "failed", "reasons": [ { "code": "Error.LicenseNotFound",
                    "description": "A license for the app was not available." } ] }),
                );
                continue;
            }
            // An app already there is taken over as it is; a missing one is installed.
            if e.apps.insert(bundle.clone(), *adam).is_none() {
                if let Some(v) = versions.get(adam) {
                    e.versions.insert(bundle.clone(), *v);
                }
            }
            report.push(
                json!({ "identifier": bundle, "declaration-identifier": declaration,
                "state": "managed", "external-version-id": e.versions.get(&bundle) }),
            );
        }
        let withdrawn: Vec<String> = e
            .declared
            .iter()
            .filter(|(_, adam)| !wanted.contains_key(adam))
            .map(|(b, _)| b.clone())
            .collect();
        for bundle in withdrawn {
            e.declared.remove(&bundle);
            e.auto_updated.remove(&bundle);
            if e.apps.remove(&bundle).is_some() {
                e.removals += 1;
            }
            e.versions.remove(&bundle);
            report.push(json!({ "identifier": bundle, "_removed": true }));
        }
        e.dm_token = Some(token.to_owned());
        report
    }

    /// A forwarded request (GET, or PUT with a body) and its JSON answer (`Null` for an empty
    /// one); none unless answered 200.
    async fn dm_call(&self, udid: &str, endpoint: &str, body: Option<Vec<u8>>) -> Option<Value> {
        let opts = &self.shared.0;
        let base = opts.dm_url.as_ref()?;
        let url = format!("{base}{endpoint}");
        let bytes = body.clone().unwrap_or_default();
        let mut req = match body {
            Some(b) => self
                .http
                .put(&url)
                .header("Content-Type", "application/json")
                .body(b),
            None => self.http.get(&url),
        }
        .header("X-Enrollment-ID", udid);
        if let Some(key) = &opts.dm_hmac_key {
            req = req.header("X-Hmac-Signature", crate::webhook::sign(key, &bytes));
        }
        let res = req.send().await.ok()?;
        if res.status() != reqwest::StatusCode::OK {
            return None;
        }
        let text = res.bytes().await.ok()?;
        if text.is_empty() {
            return Some(Value::Null);
        }
        serde_json::from_slice(&text).ok()
    }
}
