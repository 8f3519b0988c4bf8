//! `allot deployments …`: plan, create, list, show, delete, and requests for Available apps.

use clap::Subcommand;
use serde_json::json;

use super::client::Client;
use super::output::{self, cell, say, Format};

#[derive(Subcommand)]
pub enum DeploymentsCommand {
    /// Show what deploying an app to a collection would do, changing nothing.
    Plan {
        /// The app's or book's adamId.
        #[arg(long)]
        app: String,
        /// The collection (name or id).
        #[arg(long)]
        collection: String,
        /// Tokens to draw licenses from, in order (default: every token holding the app).
        #[arg(long = "token")]
        tokens: Vec<String>,
        /// required, available, uninstall or revoke.
        #[arg(long, default_value = "required")]
        action: String,
        /// fail or wait, when licenses run out.
        #[arg(long, default_value = "fail")]
        on_shortage: String,
    },
    /// Deploy an app or book to a collection.
    Create {
        #[arg(long)]
        app: String,
        #[arg(long)]
        collection: String,
        #[arg(long = "token")]
        tokens: Vec<String>,
        /// required, available, uninstall or revoke.
        #[arg(long, default_value = "required")]
        action: String,
        /// fail or wait, when licenses run out.
        #[arg(long, default_value = "fail")]
        on_shortage: String,
        /// Only show the plan; change nothing.
        #[arg(long)]
        plan: bool,
        /// Create it even though deployments in force want the opposite for shared targets
        /// (Uninstall and Revoke take those targets over).
        #[arg(long)]
        supersede: bool,
        /// keep, revoke or uninstall: what happens to members that leave the collection.
        #[arg(long, default_value = "keep")]
        on_leave: String,
        #[command(flatten)]
        options: InstallFlags,
    },
    /// Delete a deployment: --then keep (default) leaves the licenses and apps it gave; revoke
    /// gives its licenses back; uninstall removes the app, then gives them back.
    Delete {
        id: i64,
        #[arg(long, default_value = "keep")]
        then: String,
        #[arg(long)]
        yes: bool,
    },
    /// Ask for an app of an Available deployment on behalf of a target (serial number or email).
    Request { id: i64, target: String },
    /// Start a deployment's failed targets again (after buying licenses, fixing a device, …).
    Retry { id: i64 },
    /// Deployments with their targets per status.
    List,
    /// One deployment's targets (optionally only one status).
    Show {
        id: i64,
        #[arg(long)]
        status: Option<String>,
    },
}

/// InstallApplication's options; unset ones take the defaults (as Intune's).
#[derive(clap::Args)]
pub struct InstallFlags {
    /// Keep the app when the device leaves management (default: it is removed).
    #[arg(long)]
    keep_on_unenroll: bool,
    /// Do not back up the app's data.
    #[arg(long)]
    prevent_backup: bool,
    /// The user may not delete the app (iOS 14+).
    #[arg(long)]
    not_removable: bool,
    /// Do not take over an app the user installed themselves.
    #[arg(long)]
    no_take_over: bool,
    /// Do not install the store's updates.
    #[arg(long)]
    no_auto_update: bool,
    /// Declarative app management on the devices that support it (iOS and iPadOS 17.2+,
    /// macOS 26+); the others get MDM commands.
    #[arg(long)]
    declarative: bool,
}

impl InstallFlags {
    fn json(&self) -> serde_json::Value {
        json!({
            "removeOnUnenroll": !self.keep_on_unenroll,
            "preventBackup": self.prevent_backup,
            "removable": !self.not_removable,
            "takeOver": !self.no_take_over,
            "autoUpdate": !self.no_auto_update,
            "declarative": self.declarative,
        })
    }
}

fn statuses(d: &serde_json::Value) -> String {
    d["statuses"]
        .as_object()
        .map(|m| {
            m.iter()
                .map(|(k, v)| format!("{} {v}", allot_domain::labels::label(k)))
                .collect::<Vec<_>>()
                .join(", ")
        })
        .unwrap_or_default()
}

pub async fn run(cmd: DeploymentsCommand, c: &Client, format: Format) -> anyhow::Result<()> {
    let (app, collection, tokens, action, on_shortage) = match cmd {
        DeploymentsCommand::Plan {
            app,
            collection,
            tokens,
            action,
            on_shortage,
        } => (app, collection, tokens, action, on_shortage),
        DeploymentsCommand::Create {
            app,
            collection,
            tokens,
            action,
            on_shortage,
            plan: true,
            ..
        } => (app, collection, tokens, action, on_shortage),
        DeploymentsCommand::Create {
            app,
            collection,
            tokens,
            action,
            on_shortage,
            plan: false,
            supersede,
            on_leave,
            options,
        } => {
            let d = c.post("/api/v1/deployments", json!({ "adamId": app, "collection": collection, "tokens": tokens, "action": action, "onShortage": on_shortage, "supersede": supersede, "onLeave": on_leave, "options": options.json() })).await?;
            match format {
                Format::Json => output::json(&d),
                Format::Table => say!(
                    "Deployment {} started: follow it with `allot deployments show {}`",
                    cell(&d["id"]),
                    cell(&d["id"])
                ),
            }
            return Ok(());
        }
        DeploymentsCommand::Delete { id, then, yes } => {
            if !yes {
                anyhow::bail!("run again with --yes to delete deployment {id}");
            }
            let then = super::client::segment(&then);
            match c
                .delete(&format!("/api/v1/deployments/{id}?confirm=true&then={then}"))
                .await?
            {
                serde_json::Value::Null => say!("Deleted deployment {id}"),
                _ => say!(
                    "Deployment {id} is ending: it gives back what it holds, then it goes (follow it with `allot deployments show {id}`)"
                ),
            }
            return Ok(());
        }
        DeploymentsCommand::Retry { id } => {
            let r = c
                .post(&format!("/api/v1/deployments/{id}/retry"), json!({}))
                .await?;
            match format {
                Format::Json => output::json(&r),
                Format::Table => say!("{} failed target(s) start again", cell(&r["retried"])),
            }
            return Ok(());
        }
        DeploymentsCommand::Request { id, target } => {
            let t = c
                .post(
                    &format!("/api/v1/deployments/{id}/requests"),
                    json!({ "target": target }),
                )
                .await?;
            match format {
                Format::Json => output::json(&t),
                Format::Table => say!("{}: {}", cell(&t["target"]), output::words(&t["status"])),
            }
            return Ok(());
        }
        DeploymentsCommand::List => {
            let list: serde_json::Value = c.get("/api/v1/deployments").await?;
            match format {
                Format::Json => output::json(&list),
                Format::Table => {
                    // Names, not ids: the apps' from their metadata, the collections' from the list.
                    let collections: serde_json::Value = c.get("/api/v1/collections").await?;
                    let collection = |id: &serde_json::Value| {
                        collections["collections"]
                            .as_array()
                            .into_iter()
                            .flatten()
                            .find(|x| &x["id"] == id)
                            .map(|x| cell(&x["name"]))
                            .unwrap_or_else(|| format!("collection {}", cell(id)))
                    };
                    let mut apps = std::collections::HashMap::new();
                    for d in list["deployments"].as_array().into_iter().flatten() {
                        let adam = cell(&d["adamId"]);
                        if let std::collections::hash_map::Entry::Vacant(slot) =
                            apps.entry(adam.clone())
                        {
                            let name = c
                                .get::<serde_json::Value>(&format!(
                                    "/api/v1/apps/{}/metadata",
                                    super::client::segment(&adam)
                                ))
                                .await
                                .ok()
                                .and_then(|m| m["name"].as_str().map(str::to_owned))
                                .unwrap_or_else(|| format!("adamId {adam}"));
                            slot.insert(name);
                        }
                    }
                    let rows: Vec<Vec<String>> = list["deployments"]
                        .as_array()
                        .map(Vec::as_slice)
                        .unwrap_or_default()
                        .iter()
                        .map(|d| {
                            vec![
                                cell(&d["id"]),
                                apps[&cell(&d["adamId"])].clone(),
                                collection(&d["collectionId"]),
                                if d["ending"].is_string() {
                                    format!("{} (ending)", cell(&d["action"]))
                                } else {
                                    cell(&d["action"])
                                },
                                statuses(d),
                            ]
                        })
                        .collect();
                    output::table(&["ID", "APP", "COLLECTION", "ACTION", "TARGETS"], &rows);
                }
            }
            return Ok(());
        }
        DeploymentsCommand::Show { id, status } => {
            let q = status
                .map(|s| format!("?status={}", super::client::segment(&s)))
                .unwrap_or_default();
            let d: serde_json::Value = c.get(&format!("/api/v1/deployments/{id}{q}")).await?;
            match format {
                Format::Json => output::json(&d),
                Format::Table => {
                    say!(
                        "Deployment {} of app {}: {}",
                        cell(&d["id"]),
                        cell(&d["adamId"]),
                        statuses(&d)
                    );
                    say!(
                        "{} · when a member leaves: {} · created {} by {}",
                        cell(&d["action"]),
                        cell(&d["onLeave"]),
                        cell(&d["createdAt"]),
                        cell(&d["createdBy"])
                    );
                    if d["ending"].is_string() {
                        say!(
                            "Deleted with --then {}: no longer in force; it gives back what it holds, then it goes",
                            cell(&d["ending"])
                        );
                    }
                    let rows: Vec<Vec<String>> = d["targets"]
                        .as_array()
                        .map(Vec::as_slice)
                        .unwrap_or_default()
                        .iter()
                        .map(|t| {
                            vec![
                                cell(&t["target"]),
                                output::words(&t["status"]),
                                cell(&t["license"]),
                                if t["confirmedAt"].is_string() {
                                    cell(&t["confirmedAt"])
                                } else {
                                    "not yet".into()
                                },
                                cell(&t["detail"]),
                            ]
                        })
                        .collect();
                    output::table(
                        &["TARGET", "STATUS", "LICENSE", "CONFIRMED", "DETAIL"],
                        &rows,
                    );
                }
            }
            return Ok(());
        }
    };
    let p = c
        .post("/api/v1/deployments/plan", json!({ "adamId": app, "collection": collection, "tokens": tokens, "action": action, "onShortage": on_shortage }))
        .await?;
    match format {
        Format::Json => output::json(&p),
        Format::Table => {
            say!("{}", cell(&p["summary"]));
            say!(
                "{} targets, {} licenses",
                cell(&p["targets"]),
                cell(&p["licenseType"])
            );
            for o in p["overlaps"].as_array().into_iter().flatten() {
                say!(
                    "Overlaps deployment {} ({}{}): {} shared targets, owned by {}",
                    cell(&o["deploymentId"]),
                    cell(&o["action"]),
                    if o["contradicts"] == true {
                        ", contradicts this one"
                    } else {
                        ""
                    },
                    cell(&o["sharedTargets"]),
                    if o["owner"] == "new" {
                        "this deployment".to_owned()
                    } else {
                        format!("deployment {}", cell(&o["deploymentId"]))
                    }
                );
            }
            let rows: Vec<Vec<String>> = p["tokens"]
                .as_array()
                .map(Vec::as_slice)
                .unwrap_or_default()
                .iter()
                .map(|t| vec![cell(&t["token"]), cell(&t["free"]), cell(&t["claims"])])
                .collect();
            output::table(&["TOKEN", "FREE", "WILL CLAIM"], &rows);
            if let Some(devices) = p["needsUserTargets"].as_array().filter(|a| !a.is_empty()) {
                say!(
                    "Need a user: {}",
                    devices.iter().map(cell).collect::<Vec<_>>().join(", ")
                );
            }
        }
    }
    Ok(())
}
