//! `allot keys`: API keys for automation — list (with role, scope and last use), create (shown
//! once), change role or scope, revoke. `allot accounts`: console accounts — list, add, change
//! (role, scope, disabled, password). Both for administrators of every location.

use clap::Subcommand;
use serde_json::{json, Value};

use super::client::Client;
use super::output::{self, cell, say, Format};

/// The tokens an account or key works with; none given: every token.
#[derive(clap::Args, Default)]
pub struct ScopeArgs {
    /// A token (name or id) it works with; repeat for several.
    #[arg(long = "token")]
    pub token: Vec<String>,
    /// A token category it works with (every token with it, also later ones); repeat for several.
    #[arg(long = "category")]
    pub category: Vec<String>,
}

impl ScopeArgs {
    /// The request's `scope`: absent when nothing was given (unchanged, or every token on create).
    fn body(&self, every_token: bool) -> Option<Value> {
        if every_token {
            return Some(json!({}));
        }
        (!self.token.is_empty() || !self.category.is_empty())
            .then(|| json!({ "tokens": self.token, "categories": self.category }))
    }
}

/// A scope as the API gives it, in words.
fn scope_words(v: &Value) -> String {
    if v.is_null() {
        return "every token".into();
    }
    let mut parts: Vec<String> = v["tokens"]
        .as_array()
        .into_iter()
        .flatten()
        .map(cell)
        .collect();
    parts.extend(
        v["categories"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|c| format!("category {}", cell(c))),
    );
    parts.join(", ")
}

#[derive(Subcommand)]
pub enum KeysCommand {
    /// Every key with its role, last use and whether it was revoked.
    List,
    /// Make a key; it is printed once.
    Create {
        /// What the key is for (`jamf-sync`, `reporting`).
        name: String,
        /// `admin`, `operator` or `viewer`.
        #[arg(long, default_value = "viewer")]
        role: String,
        #[command(flatten)]
        scope: ScopeArgs,
    },
    /// Change a key's role or the tokens it works with.
    Set {
        id: i64,
        /// `admin`, `operator` or `viewer`.
        #[arg(long)]
        role: Option<String>,
        #[command(flatten)]
        scope: ScopeArgs,
        /// Work with every token again (drops the scope).
        #[arg(long, conflicts_with_all = ["token", "category"])]
        every_token: bool,
    },
    /// Revoke a key by its id: it is refused from now on.
    Revoke {
        id: i64,
        /// Confirm: scripts using the key stop working.
        #[arg(long)]
        yes: bool,
    },
}

pub async fn run(cmd: KeysCommand, c: &Client, format: Format) -> anyhow::Result<()> {
    match cmd {
        KeysCommand::List => {
            let list: Value = c.get("/api/v1/api-keys").await?;
            match format {
                Format::Json => output::json(&list),
                Format::Table => {
                    let rows: Vec<Vec<String>> = list["keys"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .map(|k| {
                            vec![
                                cell(&k["id"]),
                                cell(&k["name"]),
                                cell(&k["role"]),
                                scope_words(&k["scope"]),
                                cell(&k["lastUsedAt"]),
                                if k["revokedAt"].is_string() {
                                    format!("revoked {}", cell(&k["revokedAt"]))
                                } else {
                                    "active".into()
                                },
                            ]
                        })
                        .collect();
                    output::table(
                        &["ID", "NAME", "ROLE", "TOKENS", "LAST USED", "STATE"],
                        &rows,
                    );
                }
            }
        }
        KeysCommand::Create { name, role, scope } => {
            let mut body = json!({ "name": name, "role": role });
            if let Some(s) = scope.body(false) {
                body["scope"] = s;
            }
            let k = c.post("/api/v1/api-keys", body).await?;
            match format {
                Format::Json => output::json(&k),
                Format::Table => say!(
                    "API key {} ({}, {}) — shown only now:\n  {}",
                    cell(&k["id"]),
                    cell(&k["name"]),
                    cell(&k["role"]),
                    cell(&k["secret"])
                ),
            }
        }
        KeysCommand::Set {
            id,
            role,
            scope,
            every_token,
        } => {
            let mut body = json!({});
            if let Some(r) = role {
                body["role"] = json!(r);
            }
            if let Some(s) = scope.body(every_token) {
                body["scope"] = s;
            }
            let k = c.put(&format!("/api/v1/api-keys/{id}"), body).await?;
            match format {
                Format::Json => output::json(&k),
                Format::Table => say!(
                    "API key {} ({}): {}, {}",
                    cell(&k["id"]),
                    cell(&k["name"]),
                    cell(&k["role"]),
                    scope_words(&k["scope"])
                ),
            }
        }
        KeysCommand::Revoke { id, yes } => {
            if !yes {
                anyhow::bail!(
                    "scripts using key {id} will stop working: run again with --yes to confirm"
                );
            }
            c.delete(&format!("/api/v1/api-keys/{id}?confirm=true"))
                .await?;
            say!("Revoked API key {id}");
        }
    }
    Ok(())
}

#[derive(Subcommand)]
pub enum AccountsCommand {
    /// Every console account with its role, tokens, state and last sign-in.
    List,
    /// Add an account (the password is read from ALLOT_NEW_PASSWORD, never from the command line).
    Add {
        username: String,
        /// `admin`, `operator` or `viewer`.
        #[arg(long, default_value = "viewer")]
        role: String,
        #[command(flatten)]
        scope: ScopeArgs,
    },
    /// Change an account's role, tokens or state; a new password from ALLOT_NEW_PASSWORD.
    Set {
        id: i64,
        #[arg(long)]
        role: Option<String>,
        #[command(flatten)]
        scope: ScopeArgs,
        /// Work with every token again (drops the scope).
        #[arg(long, conflicts_with_all = ["token", "category"])]
        every_token: bool,
        /// It cannot sign in, and its sessions end.
        #[arg(long, conflicts_with = "enable")]
        disable: bool,
        #[arg(long)]
        enable: bool,
        /// Set the password in ALLOT_NEW_PASSWORD (its sessions end).
        #[arg(long)]
        new_password: bool,
    },
}

fn new_password() -> anyhow::Result<String> {
    std::env::var("ALLOT_NEW_PASSWORD").map_err(|_| {
        anyhow::anyhow!("put the password in ALLOT_NEW_PASSWORD (it is not taken from the command line, where others could read it)")
    })
}

fn print_account(a: &Value, format: Format) {
    match format {
        Format::Json => output::json(a),
        Format::Table => say!(
            "Console account {} ({}): {}, {}{}",
            cell(&a["id"]),
            cell(&a["username"]),
            cell(&a["role"]),
            scope_words(&a["scope"]),
            if a["disabledAt"].is_string() {
                ", disabled"
            } else {
                ""
            }
        ),
    }
}

pub async fn accounts(cmd: AccountsCommand, c: &Client, format: Format) -> anyhow::Result<()> {
    match cmd {
        AccountsCommand::List => {
            let list: Value = c.get("/api/v1/console-accounts").await?;
            match format {
                Format::Json => output::json(&list),
                Format::Table => {
                    let rows: Vec<Vec<String>> = list["accounts"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .map(|a| {
                            vec![
                                cell(&a["id"]),
                                cell(&a["username"]),
                                cell(&a["role"]),
                                scope_words(&a["scope"]),
                                cell(&a["lastSignInAt"]),
                                if a["disabledAt"].is_string() {
                                    "disabled".into()
                                } else {
                                    "active".into()
                                },
                            ]
                        })
                        .collect();
                    output::table(
                        &["ID", "USER", "ROLE", "TOKENS", "LAST SIGN-IN", "STATE"],
                        &rows,
                    );
                }
            }
        }
        AccountsCommand::Add {
            username,
            role,
            scope,
        } => {
            let mut body =
                json!({ "username": username, "password": new_password()?, "role": role });
            if let Some(s) = scope.body(false) {
                body["scope"] = s;
            }
            let a = c.post("/api/v1/console-accounts", body).await?;
            print_account(&a, format);
        }
        AccountsCommand::Set {
            id,
            role,
            scope,
            every_token,
            disable,
            enable,
            new_password: set_password,
        } => {
            let mut body = json!({});
            if let Some(r) = role {
                body["role"] = json!(r);
            }
            if let Some(s) = scope.body(every_token) {
                body["scope"] = s;
            }
            if disable || enable {
                body["disabled"] = json!(disable);
            }
            if set_password {
                body["password"] = json!(new_password()?);
            }
            let a = c
                .put(&format!("/api/v1/console-accounts/{id}"), body)
                .await?;
            print_account(&a, format);
        }
    }
    Ok(())
}
