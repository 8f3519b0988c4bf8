//! `allot users …`, `allot devices …`, `allot collections …`.

use std::path::PathBuf;

use anyhow::{bail, Context};
use clap::Subcommand;
use serde_json::{json, Value};

use super::client::{segment, Client};
use super::output::{self, cell, say, Format};

#[derive(Subcommand)]
pub enum UsersCommand {
    /// Add a user (or update the one with this email).
    Add {
        #[arg(long)]
        name: String,
        #[arg(long)]
        email: Option<String>,
        /// A Managed Apple Account: joining the program then needs no invitation.
        #[arg(long)]
        managed_apple_id: Option<String>,
        /// The person's department (collections' rules can choose by it).
        #[arg(long)]
        department: Option<String>,
    },
    /// List users.
    List {
        #[arg(long)]
        search: Option<String>,
    },
    /// Import users from CSV: name,email,managed_apple_id,department.
    Import { file: PathBuf },
    /// A user and their VPP terms status per location (invited, accepted, retired).
    Show { user: String },
    /// Send the invitation to join the program again (to the user's devices).
    Invite { user: String },
    /// Send every invitation still waiting again.
    InviteAll,
    /// Mark a user (id or email) as gone: their licenses are reclaimed by policy.
    Remove {
        user: String,
        #[arg(long)]
        yes: bool,
    },
}

#[derive(Subcommand)]
pub enum DevicesCommand {
    /// Add a device (or update the one with this serial number).
    Add {
        serial_number: String,
        /// iOS, iPadOS or macOS.
        #[arg(long)]
        platform: String,
        #[arg(long, default_value = "")]
        model: String,
        #[arg(long, default_value = "")]
        name: String,
        /// The primary user (id or email).
        #[arg(long)]
        user: Option<String>,
        /// The MDM's enrollment id (NanoMDM: the UDID), for a device NanoMDM's webhook never
        /// announced.
        #[arg(long)]
        enrollment_id: Option<String>,
    },
    /// List devices.
    List {
        #[arg(long)]
        search: Option<String>,
    },
    /// Import devices from CSV: serial_number,platform,model,name,user_email.
    Import { file: PathBuf },
}

#[derive(Subcommand)]
pub enum CollectionsCommand {
    /// Create a collection of users or of devices: static, or chosen by a rule when rule
    /// options are given.
    Create {
        name: String,
        /// users or devices.
        #[arg(long)]
        kind: String,
        #[arg(long, default_value = "")]
        description: String,
        #[command(flatten)]
        rule: RuleArgs,
    },
    /// Who a rule would choose now, changing nothing.
    Preview {
        /// users or devices.
        #[arg(long)]
        kind: String,
        #[command(flatten)]
        rule: RuleArgs,
    },
    /// Give a collection a rule (its members are rewritten at once), or `--none` to keep today's
    /// members and manage them by hand.
    Rule {
        collection: String,
        #[command(flatten)]
        rule: RuleArgs,
        #[arg(long)]
        none: bool,
    },
    List,
    /// Show a collection and its members.
    Show {
        collection: String,
    },
    /// Add members: users by id or email, devices by id or serial number.
    Add {
        collection: String,
        members: Vec<String>,
    },
    /// Remove members.
    Remove {
        collection: String,
        members: Vec<String>,
    },
    Delete {
        collection: String,
        #[arg(long)]
        yes: bool,
    },
}

/// A membership rule's criteria; every one given must hold, a repeated one matches any value.
#[derive(clap::Args, Default)]
pub struct RuleArgs {
    /// Devices of this platform (iOS, iPadOS, macOS); repeat for several.
    #[arg(long)]
    platform: Vec<String>,
    /// Devices whose model contains this text.
    #[arg(long)]
    model_contains: Option<String>,
    /// Devices running at least this OS version.
    #[arg(long)]
    min_os: Option<String>,
    /// Devices whose primary user is in this users collection (name or id).
    #[arg(long)]
    users_in: Option<String>,
    /// People with an e-mail at this domain; repeat for several.
    #[arg(long)]
    email_domain: Vec<String>,
    /// People of this department; repeat for several.
    #[arg(long)]
    department: Vec<String>,
    /// Devices or people whose name contains this text.
    #[arg(long)]
    name_contains: Option<String>,
}

impl RuleArgs {
    fn given(&self) -> bool {
        !self.platform.is_empty()
            || self.model_contains.is_some()
            || self.min_os.is_some()
            || self.users_in.is_some()
            || !self.email_domain.is_empty()
            || !self.department.is_empty()
            || self.name_contains.is_some()
    }

    /// The rule as the API takes it (a users collection named by its id).
    async fn body(&self, c: &Client) -> anyhow::Result<Value> {
        let users_in = match &self.users_in {
            Some(name) => Some(
                c.get::<Value>(&format!("/api/v1/collections/{}", segment(name)))
                    .await?["id"]
                    .clone(),
            ),
            None => None,
        };
        Ok(json!({
            "platforms": self.platform,
            "modelContains": self.model_contains,
            "minOsVersion": self.min_os,
            "usersInCollection": users_in,
            "emailDomains": self.email_domain,
            "departments": self.department,
            "nameContains": self.name_contains,
        }))
    }
}

async fn import(c: &Client, path: &str, file: &PathBuf, format: Format) -> anyhow::Result<()> {
    let body = std::fs::read(file).with_context(|| format!("cannot read {}", file.display()))?;
    let report = c.post_raw(path, "text/csv", body).await?;
    match format {
        Format::Json => output::json(&report),
        Format::Table => {
            say!(
                "{} created, {} updated, {} not imported",
                cell(&report["created"]),
                cell(&report["updated"]),
                report["errors"].as_array().map_or(0, Vec::len)
            );
            for e in report["errors"]
                .as_array()
                .map(Vec::as_slice)
                .unwrap_or_default()
            {
                say!("  line {}: {}", cell(&e["line"]), cell(&e["message"]));
            }
        }
    }
    Ok(())
}

fn rows(list: &Value, key: &str, cols: &[&str]) -> Vec<Vec<String>> {
    list[key]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .map(|r| cols.iter().map(|c| cell(&r[*c])).collect())
        .collect()
}

pub async fn users(cmd: UsersCommand, c: &Client, format: Format) -> anyhow::Result<()> {
    match cmd {
        UsersCommand::Add {
            name,
            email,
            managed_apple_id,
            department,
        } => {
            let u = c
                .post(
                    "/api/v1/users",
                    json!({ "name": name, "email": email, "managedAppleId": managed_apple_id, "department": department }),
                )
                .await?;
            match format {
                Format::Json => output::json(&u),
                Format::Table => say!("User {} (id {})", cell(&u["name"]), cell(&u["id"])),
            }
        }
        UsersCommand::List { search } => {
            let q = search
                .map(|s| format!("&search={}", segment(&s)))
                .unwrap_or_default();
            let list: Value = c.get(&format!("/api/v1/users?limit=1000{q}")).await?;
            match format {
                Format::Json => output::json(&list),
                Format::Table => output::table(
                    &["ID", "NAME", "EMAIL", "MANAGED APPLE ACCOUNT", "REMOVED"],
                    &rows(
                        &list,
                        "users",
                        &["id", "name", "email", "managedAppleId", "removed"],
                    ),
                ),
            }
        }
        UsersCommand::Import { file } => import(c, "/api/v1/users/import", &file, format).await?,
        UsersCommand::Show { user } => {
            let u: Value = c.get(&format!("/api/v1/users/{}", segment(&user))).await?;
            match format {
                Format::Json => output::json(&u),
                Format::Table => {
                    say!(
                        "{} <{}> clientUserId {}",
                        cell(&u["name"]),
                        cell(&u["email"]),
                        cell(&u["clientUserId"])
                    );
                    let mut program = rows(
                        &u,
                        "program",
                        &["token", "terms", "appleStatus", "invitationUrl"],
                    );
                    for r in &mut program {
                        r[1] = allot_domain::labels::label(&r[1]).to_owned();
                    }
                    output::table(
                        &["TOKEN", "VPP TERMS", "APPLE STATUS", "INVITATION"],
                        &program,
                    );
                }
            }
        }
        UsersCommand::Invite { user } => {
            c.post(
                &format!("/api/v1/users/{}/invitation", segment(&user)),
                json!({}),
            )
            .await?;
            say!("The invitation goes out again to {user}'s devices");
        }
        UsersCommand::InviteAll => {
            let r = c.post("/api/v1/invitations/resend", json!({})).await?;
            match format {
                Format::Json => output::json(&r),
                Format::Table => say!("{} waiting invitation(s) go out again", cell(&r["resent"])),
            }
        }
        UsersCommand::Remove { user, yes } => {
            if !yes {
                bail!("removing a user reclaims their licenses: run again with --yes to confirm");
            }
            c.delete(&format!("/api/v1/users/{}?confirm=true", segment(&user)))
                .await?;
            say!("Removed {user}");
        }
    }
    Ok(())
}

pub async fn devices(cmd: DevicesCommand, c: &Client, format: Format) -> anyhow::Result<()> {
    match cmd {
        DevicesCommand::Add {
            serial_number,
            platform,
            model,
            name,
            user,
            enrollment_id,
        } => {
            let d = c
                .post("/api/v1/devices", json!({ "serialNumber": serial_number, "platform": platform, "model": model, "name": name, "user": user, "enrollmentId": enrollment_id }))
                .await?;
            match format {
                Format::Json => output::json(&d),
                Format::Table => say!(
                    "Device {} (id {})",
                    cell(&d["serialNumber"]),
                    cell(&d["id"])
                ),
            }
        }
        DevicesCommand::List { search } => {
            let q = search
                .map(|s| format!("&search={}", segment(&s)))
                .unwrap_or_default();
            let list: Value = c.get(&format!("/api/v1/devices?limit=1000{q}")).await?;
            match format {
                Format::Json => output::json(&list),
                Format::Table => output::table(
                    &[
                        "ID", "SERIAL", "PLATFORM", "OS", "MODEL", "NAME", "USER", "ENROLLED",
                    ],
                    &rows(
                        &list,
                        "devices",
                        &[
                            "id",
                            "serialNumber",
                            "platform",
                            "osVersion",
                            "model",
                            "name",
                            "primaryUserId",
                            "enrolled",
                        ],
                    ),
                ),
            }
        }
        DevicesCommand::Import { file } => {
            import(c, "/api/v1/devices/import", &file, format).await?
        }
    }
    Ok(())
}

pub async fn collections(
    cmd: CollectionsCommand,
    c: &Client,
    format: Format,
) -> anyhow::Result<()> {
    let out = |v: &Value, line: String| match format {
        Format::Json => output::json(v),
        Format::Table => say!("{line}"),
    };
    match cmd {
        CollectionsCommand::Create {
            name,
            kind,
            description,
            rule,
        } => {
            let rule = if rule.given() {
                rule.body(c).await?
            } else {
                Value::Null
            };
            let col = c
                .post(
                    "/api/v1/collections",
                    json!({ "name": name, "kind": kind, "description": description, "rule": rule }),
                )
                .await?;
            out(
                &col,
                format!(
                    "Collection {} of {} (id {})",
                    cell(&col["name"]),
                    cell(&col["kind"]),
                    cell(&col["id"])
                ),
            );
        }
        CollectionsCommand::Preview { kind, rule } => {
            let p = c
                .post(
                    "/api/v1/collections/preview",
                    json!({ "kind": kind, "rule": rule.body(c).await? }),
                )
                .await?;
            match format {
                Format::Json => output::json(&p),
                Format::Table => {
                    say!(
                        "{} match now: {}",
                        cell(&p["count"]),
                        cell(&p["description"])
                    );
                    output::table(
                        &["ID", "WHO", "DETAIL"],
                        &rows(&p, "sample", &["id", "label", "detail"]),
                    );
                }
            }
        }
        CollectionsCommand::Rule {
            collection,
            rule,
            none,
        } => {
            if none == rule.given() {
                bail!(
                    "give the rule's criteria (--platform, --email-domain, …) or --none, not both"
                );
            }
            let body = if none {
                Value::Null
            } else {
                rule.body(c).await?
            };
            let r = c
                .put(
                    &format!("/api/v1/collections/{}/rule", segment(&collection)),
                    json!({ "rule": body }),
                )
                .await?;
            out(
                &r,
                format!(
                    "{} joined, {} left; {} members",
                    cell(&r["added"]),
                    cell(&r["removed"]),
                    cell(&r["collection"]["members"])
                ),
            );
        }
        CollectionsCommand::List => {
            let list: Value = c.get("/api/v1/collections").await?;
            match format {
                Format::Json => output::json(&list),
                Format::Table => {
                    let mut lines = rows(&list, "collections", &["id", "name", "kind", "members"]);
                    for (line, c) in lines
                        .iter_mut()
                        .zip(list["collections"].as_array().into_iter().flatten())
                    {
                        line.push(if c["rule"].is_null() {
                            "by hand".into()
                        } else {
                            "rule".into()
                        });
                    }
                    output::table(&["ID", "NAME", "KIND", "MEMBERS", "MEMBERSHIP"], &lines)
                }
            }
        }
        CollectionsCommand::Show { collection } => {
            let col: Value = c
                .get(&format!("/api/v1/collections/{}", segment(&collection)))
                .await?;
            match format {
                Format::Json => output::json(&col),
                Format::Table => {
                    say!(
                        "{} ({}), {} members",
                        cell(&col["name"]),
                        cell(&col["kind"]),
                        cell(&col["members"])
                    );
                    if col["kind"] == "users" {
                        output::table(
                            &["ID", "NAME", "EMAIL"],
                            &rows(&col, "users", &["id", "name", "email"]),
                        );
                    } else {
                        output::table(
                            &["ID", "SERIAL", "PLATFORM", "NAME"],
                            &rows(&col, "devices", &["id", "serialNumber", "platform", "name"]),
                        );
                    }
                }
            }
        }
        CollectionsCommand::Add {
            collection,
            members,
        } => {
            let r = c
                .post(
                    &format!("/api/v1/collections/{}/members", segment(&collection)),
                    json!({ "members": members }),
                )
                .await?;
            out(&r, format!("{} added", cell(&r["changed"])));
        }
        CollectionsCommand::Remove {
            collection,
            members,
        } => {
            let r = c
                .delete_json(
                    &format!("/api/v1/collections/{}/members", segment(&collection)),
                    json!({ "members": members }),
                )
                .await?;
            out(&r, format!("{} removed", cell(&r["changed"])));
        }
        CollectionsCommand::Delete { collection, yes } => {
            if !yes {
                bail!("run again with --yes to delete the collection");
            }
            c.delete(&format!(
                "/api/v1/collections/{}?confirm=true",
                segment(&collection)
            ))
            .await?;
            say!("Deleted {collection}");
        }
    }
    Ok(())
}
