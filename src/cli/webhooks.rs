//! `allot webhooks` (endpoints that receive alerts: add, list, remove, test, their deliveries),
//! `allot alerts` (what was raised) and `allot audit` (who changed what).

use clap::Subcommand;
use serde_json::{json, Value};

use super::client::Client;
use super::output::{self, cell, say, Format};

#[derive(Subcommand)]
pub enum WebhooksCommand {
    /// Every endpoint with the events it receives and its deliveries waiting or failed.
    List,
    /// Register an endpoint; its signing secret is printed once.
    Add {
        url: String,
        /// An event to receive (`token.expiring`, `licenses.low`, …); repeat, or `*` for all.
        #[arg(long = "event", required = true)]
        events: Vec<String>,
        /// The signing secret (made for you when absent).
        #[arg(long)]
        secret: Option<String>,
        #[arg(long, default_value = "")]
        description: String,
    },
    /// Remove an endpoint (its waiting deliveries go with it).
    Remove {
        id: i64,
        #[arg(long)]
        yes: bool,
    },
    /// Send a test event to an endpoint.
    Test { id: i64 },
    /// An endpoint's last deliveries, with the receiver's answers.
    Deliveries { id: i64 },
}

#[derive(Subcommand)]
pub enum AlertsCommand {
    /// Alerts raised, newest first.
    List {
        /// Only those whose condition still holds.
        #[arg(long)]
        open: bool,
    },
}

#[derive(Subcommand)]
pub enum AuditCommand {
    /// Changes made through the API and the console, newest first.
    List {
        /// Only this actor (`API key ops`, `console account admin`).
        #[arg(long)]
        actor: Option<String>,
        /// Only paths containing this text.
        #[arg(long)]
        path: Option<String>,
        /// Only changes at or after this time (RFC 3339).
        #[arg(long)]
        since: Option<String>,
        #[arg(long, default_value_t = 100)]
        limit: i64,
    },
}

pub async fn audit(cmd: AuditCommand, c: &Client, format: Format) -> anyhow::Result<()> {
    let AuditCommand::List {
        actor,
        path,
        since,
        limit,
    } = cmd;
    let mut q = vec![format!("limit={limit}")];
    for (k, v) in [("actor", actor), ("path", path), ("since", since)] {
        if let Some(v) = v {
            q.push(format!("{k}={}", super::client::segment(&v)));
        }
    }
    let list: Value = c.get(&format!("/api/v1/audit?{}", q.join("&"))).await?;
    match format {
        Format::Json => output::json(&list),
        Format::Table => {
            let rows: Vec<Vec<String>> = list["entries"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|e| {
                    vec![
                        cell(&e["at"]),
                        cell(&e["actor"]),
                        cell(&e["address"]),
                        format!("{} {}", cell(&e["method"]), cell(&e["path"])),
                        cell(&e["status"]),
                    ]
                })
                .collect();
            output::table(&["AT (UTC)", "WHO", "FROM", "WHAT", "ANSWER"], &rows);
        }
    }
    Ok(())
}

pub async fn run(cmd: WebhooksCommand, c: &Client, format: Format) -> anyhow::Result<()> {
    match cmd {
        WebhooksCommand::List => {
            let list: Value = c.get("/api/v1/webhooks").await?;
            match format {
                Format::Json => output::json(&list),
                Format::Table => {
                    let rows: Vec<Vec<String>> = list["webhooks"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .map(|w| {
                            let events: Vec<String> = w["events"]
                                .as_array()
                                .into_iter()
                                .flatten()
                                .map(cell)
                                .collect();
                            vec![
                                cell(&w["id"]),
                                cell(&w["url"]),
                                events.join(", "),
                                cell(&w["pending"]),
                                cell(&w["failed"]),
                                cell(&w["lastDeliveredAt"]),
                            ]
                        })
                        .collect();
                    output::table(
                        &["ID", "URL", "EVENTS", "WAITING", "FAILED", "LAST DELIVERED"],
                        &rows,
                    );
                }
            }
        }
        WebhooksCommand::Add {
            url,
            events,
            secret,
            description,
        } => {
            let w = c
                .post("/api/v1/webhooks", json!({ "url": url, "events": events, "secret": secret, "description": description }))
                .await?;
            match format {
                Format::Json => output::json(&w),
                Format::Table => {
                    say!("Webhook {} → {}", cell(&w["id"]), cell(&w["url"]));
                    say!("Signing secret (shown once): {}", cell(&w["secret"]));
                }
            }
        }
        WebhooksCommand::Remove { id, yes } => {
            if !yes {
                anyhow::bail!("run again with --yes to remove webhook {id} (its waiting deliveries go with it)");
            }
            c.delete(&format!("/api/v1/webhooks/{id}?confirm=true"))
                .await?;
            say!("Removed webhook {id}");
        }
        WebhooksCommand::Test { id } => {
            let t = c
                .post(&format!("/api/v1/webhooks/{id}/test"), json!({}))
                .await?;
            match format {
                Format::Json => output::json(&t),
                Format::Table => say!(
                    "Test event {} queued (follow it with `allot webhooks deliveries {id}`)",
                    cell(&t["eventId"])
                ),
            }
        }
        WebhooksCommand::Deliveries { id } => {
            let list: Value = c.get(&format!("/api/v1/webhooks/{id}/deliveries")).await?;
            match format {
                Format::Json => output::json(&list),
                Format::Table => {
                    let rows: Vec<Vec<String>> = list["deliveries"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .map(|d| {
                            vec![
                                cell(&d["event"]),
                                cell(&d["status"]),
                                cell(&d["attempts"]),
                                cell(&d["lastStatus"]),
                                cell(&d["lastError"]),
                                cell(&d["summary"]),
                            ]
                        })
                        .collect();
                    output::table(
                        &[
                            "EVENT",
                            "STATUS",
                            "ATTEMPTS",
                            "HTTP",
                            "LAST ERROR",
                            "SUMMARY",
                        ],
                        &rows,
                    );
                }
            }
        }
    }
    Ok(())
}

pub async fn alerts(cmd: AlertsCommand, c: &Client, format: Format) -> anyhow::Result<()> {
    match cmd {
        AlertsCommand::List { open } => {
            let list: Value = c
                .get(&format!(
                    "/api/v1/alerts{}",
                    if open { "?open=true" } else { "" }
                ))
                .await?;
            match format {
                Format::Json => output::json(&list),
                Format::Table => {
                    let rows: Vec<Vec<String>> = list["alerts"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .map(|a| {
                            let state = if a["resolvedAt"].is_string() {
                                format!("over {}", cell(&a["resolvedAt"]))
                            } else {
                                "open".into()
                            };
                            vec![
                                cell(&a["raisedAt"]),
                                cell(&a["event"]),
                                state,
                                cell(&a["summary"]),
                            ]
                        })
                        .collect();
                    output::table(&["RAISED", "EVENT", "STATE", "SUMMARY"], &rows);
                }
            }
        }
    }
    Ok(())
}
