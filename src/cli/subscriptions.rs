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
    /// A standing intent: every person of a users collection holds a seat (people who join get
    /// one, people who leave give theirs back at the period's end).
    Intend {
        adam_id: i64,
        #[arg(long)]
        token: String,
        #[arg(long)]
        collection: String,
        /// Seats that end with the period instead of renewing.
        #[arg(long)]
        expiring: bool,
    },
    /// The standing intents, with how many of their people hold a seat.
    Intents,
    /// End a standing intent; its seats stay, or go back at the period's end with
    /// `--remove-seats`.
    Forget {
        id: i64,
        #[arg(long)]
        remove_seats: bool,
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
        SubscriptionsCommand::Intend {
            adam_id,
            token,
            collection,
            expiring,
        } => {
            c.post(
                &format!("/api/v1/subscriptions/{adam_id}/intents"),
                json!({ "token": token, "collection": collection, "renewing": !expiring }),
            )
            .await?
        }
        SubscriptionsCommand::Intents => {
            let v: Value = c.get("/api/v1/subscriptions/intents").await?;
            if format == Format::Table {
                let rows: Vec<Vec<String>> = v["intents"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|i| {
                        vec![
                            cell(&i["id"]),
                            cell(&i["token"]),
                            cell(&i["adamId"]),
                            cell(&i["collection"]),
                            if i["renewing"] == true {
                                "renewing"
                            } else {
                                "expiring"
                            }
                            .into(),
                            cell(&i["members"]),
                            cell(&i["seated"]),
                            cell(&i["waiting"]),
                            cell(&i["notRegistered"]),
                        ]
                    })
                    .collect();
                output::table(
                    &[
                        "ID",
                        "TOKEN",
                        "ADAMID",
                        "COLLECTION",
                        "SEATS",
                        "PEOPLE",
                        "SEATED",
                        "WAITING",
                        "REGISTERING",
                    ],
                    &rows,
                );
                return Ok(());
            }
            v
        }
        SubscriptionsCommand::Forget { id, remove_seats } => {
            let then = if remove_seats { "remove" } else { "keep" };
            c.delete(&format!(
                "/api/v1/subscriptions/intents/{id}?confirm=true&then={then}"
            ))
            .await?;
            json!({ "ended": id })
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
            if let Some(id) = v["ended"].as_i64() {
                output::write_line(format_args!("Intent {id} ended"));
            } else if v["collection"].is_string() {
                output::write_line(format_args!(
                    "Intent {}: the {} people of {} hold a seat ({} now, {} waiting for a free seat, {} being registered with Apple)",
                    cell(&v["id"]),
                    cell(&v["members"]),
                    cell(&v["collection"]),
                    cell(&v["seated"]),
                    cell(&v["waiting"]),
                    cell(&v["notRegistered"])
                ));
            } else if let Some(e) = v["eventId"].as_str() {
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
