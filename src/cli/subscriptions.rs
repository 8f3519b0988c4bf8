//! `allot subscriptions …`: subscription seats Apple sold into a token's location — enable their
//! management, list them with the renewal forecast, see and change who holds a seat.

use clap::Subcommand;
use serde_json::{json, Value};

use super::client::{segment, Client};
use super::output::{self, cell, Format};

#[derive(Subcommand)]
pub enum SubscriptionsCommand {
    /// Every subscription with its seats (renewing/expiring) and what the period's end will do.
    List {
        /// Only this token (name or id).
        #[arg(long)]
        token: Option<String>,
    },
    /// Tell Apple that Allot manages this token's subscriptions, then read them.
    Enable {
        /// The token (name or id).
        token: String,
    },
    /// Who holds a seat of a subscription.
    Seats {
        /// The subscription's adamId.
        adam_id: i64,
        #[arg(long)]
        token: String,
    },
    /// Give users seats (clientUserIds).
    Assign {
        adam_id: i64,
        #[arg(long)]
        token: String,
        /// A seat that ends with the period instead of renewing.
        #[arg(long)]
        expiring: bool,
        #[arg(required = true)]
        users: Vec<String>,
    },
    /// Take seats back: at the period's end (users keep what was paid for), or `--now`.
    Remove {
        adam_id: i64,
        #[arg(long)]
        token: String,
        #[arg(long)]
        now: bool,
        #[arg(required = true)]
        users: Vec<String>,
    },
}

pub async fn run(cmd: SubscriptionsCommand, c: &Client, format: Format) -> anyhow::Result<()> {
    let v: Value = match cmd {
        SubscriptionsCommand::List { token } => {
            let path = match token {
                Some(t) => format!("/api/v1/subscriptions?token={}", segment(&t)),
                None => "/api/v1/subscriptions".into(),
            };
            let v: Value = c.get(&path).await?;
            if format == Format::Table {
                let rows: Vec<Vec<String>> = v["subscriptions"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|s| {
                        let pair = |k: &str| {
                            format!("{}+{}", cell(&s[k]["renewing"]), cell(&s[k]["expiring"]))
                        };
                        vec![
                            cell(&s["token"]),
                            s["appName"]
                                .as_str()
                                .map(str::to_owned)
                                .unwrap_or_else(|| format!("adamId {}", cell(&s["parentAdamId"]))),
                            cell(&s["adamId"]),
                            cell(&s["status"]),
                            cell(&s["periodEnd"]),
                            pair("total"),
                            pair("assigned"),
                            pair("available"),
                            cell(&s["forecast"]["usersLosingAccess"]),
                            cell(&s["forecast"]["unusedRenewingSeats"]),
                            cell(&s["updatedAt"]),
                        ]
                    })
                    .collect();
                output::table(
                    &[
                        "TOKEN",
                        "APP",
                        "ADAMID",
                        "STATUS",
                        "PERIOD END",
                        "SEATS (R+E)",
                        "ASSIGNED",
                        "FREE",
                        "LOSING ACCESS",
                        "UNUSED RENEWING",
                        "AS OF",
                    ],
                    &rows,
                );
                return Ok(());
            }
            v
        }
        SubscriptionsCommand::Enable { token } => {
            c.post(
                &format!("/api/v1/tokens/{}/subscriptions", segment(&token)),
                Value::Null,
            )
            .await?
        }
        SubscriptionsCommand::Seats { adam_id, token } => {
            let v: Value = c
                .get(&format!(
                    "/api/v1/subscriptions/{adam_id}/seats?token={}",
                    segment(&token)
                ))
                .await?;
            if format == Format::Table {
                let rows: Vec<Vec<String>> = v["seats"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|s| {
                        vec![
                            cell(&s["clientUserId"]),
                            cell(&s["email"]),
                            if s["renewing"] == true {
                                "renews"
                            } else {
                                "ends with the period"
                            }
                            .into(),
                            if s["leaving"] == true {
                                "at the period's end"
                            } else {
                                ""
                            }
                            .into(),
                        ]
                    })
                    .collect();
                output::table(&["USER", "E-MAIL", "SEAT", "LEAVES"], &rows);
                return Ok(());
            }
            v
        }
        SubscriptionsCommand::Assign {
            adam_id,
            token,
            expiring,
            users,
        } => {
            c.post(
                &format!("/api/v1/subscriptions/{adam_id}/seats"),
                json!({ "token": token, "clientUserIds": users, "renewing": !expiring }),
            )
            .await?
        }
        SubscriptionsCommand::Remove {
            adam_id,
            token,
            now,
            users,
        } => {
            c.post(
                &format!("/api/v1/subscriptions/{adam_id}/seats/remove"),
                json!({ "token": token, "clientUserIds": users, "deferred": !now }),
            )
            .await?
        }
    };
    match format {
        Format::Json => output::json(&v),
        Format::Table => {
            if let Some(e) = v["eventId"].as_str() {
                output::write_line(format_args!(
                    "Apple accepted the request (event {e}); the seats change when it ends: see `allot subscriptions seats`"
                ));
            } else {
                output::write_line(format_args!(
                    "Subscriptions managed for this token; {} so far",
                    cell(&v["subscriptions"])
                ));
            }
        }
    }
    Ok(())
}
