//! `allot tokens …`.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context};
use clap::Subcommand;
use serde_json::{json, Value};

use super::client::{segment, Client};
use super::output::{self, cell, say, Format};

#[derive(Subcommand)]
pub enum TokensCommand {
    /// Add a content token from its .vpptoken file.
    Add {
        /// The .vpptoken file downloaded from Apple Business Manager or Apple School Manager.
        file: PathBuf,
        #[arg(long)]
        name: String,
        /// `business` or `education`.
        #[arg(long, default_value = "business")]
        program: String,
        #[arg(long, default_value = "")]
        description: String,
        /// May be repeated.
        #[arg(long = "category")]
        categories: Vec<String>,
        /// The Apple Account (email) the token belongs to.
        #[arg(long, default_value = "")]
        apple_account: String,
    },
    /// List tokens with their state.
    List {
        /// Only tokens in this state: healthy, syncing, stale, failing, expiring, expired,
        /// revoked or claimed_by_other_mdm.
        #[arg(long)]
        state: Option<String>,
        /// Only tokens whose name, organization, location or a category holds this.
        #[arg(long)]
        search: Option<String>,
    },
    /// Show one token (by name or id) with its latest sync.
    Show { token: String },
    /// Renew a token with the new .vpptoken file of the same location.
    Renew { token: String, file: PathBuf },
    /// Sync a token now (full unless --delta) and show what changed.
    Sync {
        token: String,
        /// Full sync (the default for a manual sync).
        #[arg(long, conflicts_with = "delta")]
        full: bool,
        /// Only the changes since the last sync.
        #[arg(long)]
        delta: bool,
        /// Start it and return at once.
        #[arg(long)]
        no_wait: bool,
    },
    /// Take over a location another MDM manages.
    Takeover {
        token: String,
        /// Confirm: the other MDM will no longer manage the location.
        #[arg(long)]
        yes: bool,
    },
    /// Delete a token and everything synced from it.
    Delete {
        token: String,
        /// Confirm: this cannot be undone.
        #[arg(long)]
        yes: bool,
    },
}

fn read_token_file(file: &PathBuf) -> anyhow::Result<String> {
    let meta =
        std::fs::metadata(file).with_context(|| format!("cannot read {}", file.display()))?;
    if meta.len() > 64 * 1024 {
        bail!(
            "{} is {} bytes: a content token file is a few hundred bytes",
            file.display(),
            meta.len()
        );
    }
    std::fs::read_to_string(file).with_context(|| format!("{} is not a text file", file.display()))
}

pub async fn run(cmd: TokensCommand, c: &Client, format: Format) -> anyhow::Result<()> {
    match cmd {
        TokensCommand::Add {
            file,
            name,
            program,
            description,
            categories,
            apple_account,
        } => {
            let token = read_token_file(&file)?;
            let body = json!({ "name": name, "token": token, "programType": program, "description": description,
                               "categories": categories, "appleAccount": apple_account });
            let t = c.post("/api/v1/tokens", body).await?;
            match format {
                Format::Json => output::json(&t),
                Format::Table => {
                    say!(
                        "Added token {} (id {}) for {} — {}: {}",
                        t["name"].as_str().unwrap_or(""),
                        t["id"],
                        cell(&t["organization"]),
                        cell(&t["location"]),
                        cell(&t["state"])
                    );
                    if let Some(by) = t["claimedBy"].as_str() {
                        say!("The location is managed by another MDM ({by}). Allot reads it but changes nothing until `allot tokens takeover`.");
                    }
                    say!(
                        "A first full sync has started: `allot tokens show {}` follows it.",
                        t["id"]
                    );
                }
            }
        }
        TokensCommand::List { state, search } => {
            let query: Vec<String> = [("state", &state), ("search", &search)]
                .into_iter()
                .filter_map(|(k, v)| v.as_ref().map(|v| format!("{k}={}", segment(v))))
                .collect();
            let list: Value = c
                .get(&format!("/api/v1/tokens?{}", query.join("&")))
                .await?;
            match format {
                Format::Json => output::json(&list),
                Format::Table => {
                    let rows: Vec<Vec<String>> = list["tokens"]
                        .as_array()
                        .map(|a| a.as_slice())
                        .unwrap_or_default()
                        .iter()
                        .map(|t| {
                            vec![
                                cell(&t["id"]),
                                cell(&t["name"]),
                                cell(&t["organization"]),
                                cell(&t["location"]),
                                cell(&t["programType"]),
                                cell(&t["state"]),
                                cell(&t["expiresAt"]).chars().take(10).collect(),
                                cell(&t["lastDeltaSync"]),
                                cell(&t["lastFullSync"]),
                            ]
                        })
                        .collect();
                    output::table(
                        &[
                            "ID",
                            "NAME",
                            "ORGANIZATION",
                            "LOCATION",
                            "TYPE",
                            "STATE",
                            "EXPIRES",
                            "LAST SYNC",
                            "LAST FULL SYNC",
                        ],
                        &rows,
                    );
                }
            }
        }
        TokensCommand::Show { token } => {
            let t: Value = c
                .get(&format!("/api/v1/tokens/{}", segment(&token)))
                .await?;
            match format {
                Format::Json => output::json(&t),
                Format::Table => {
                    for (label, key) in [
                        ("Name", "name"),
                        ("Id", "id"),
                        ("Organization", "organization"),
                        ("Location", "location"),
                        ("uId", "uId"),
                        ("Program", "programType"),
                        ("State", "state"),
                        ("Last error", "lastError"),
                        ("Managed by", "claimedBy"),
                        ("Expires", "expiresAt"),
                        ("Days to expiry", "daysToExpiry"),
                        ("Apple Account", "appleAccount"),
                        ("Categories", "categories"),
                        ("Last update", "lastUpdate"),
                        ("Last sync", "lastDeltaSync"),
                        ("Last full sync", "lastFullSync"),
                    ] {
                        say!("{label:<16}{}", cell(&t[key]));
                    }
                    if let Some(run) = t.get("latestSync").filter(|r| !r.is_null()) {
                        say!(
                            "Latest sync     {} {} ({}), {}",
                            cell(&run["kind"]),
                            cell(&run["status"]),
                            cell(&run["reason"]),
                            summary(run)
                        );
                    }
                }
            }
        }
        TokensCommand::Renew { token, file } => {
            let text = read_token_file(&file)?;
            let t = c
                .put(
                    &format!("/api/v1/tokens/{}/file", segment(&token)),
                    json!({ "token": text }),
                )
                .await?;
            match format {
                Format::Json => output::json(&t),
                Format::Table => say!(
                    "Renewed {}: expires {}",
                    cell(&t["name"]),
                    cell(&t["expiresAt"])
                ),
            }
        }
        TokensCommand::Sync {
            token,
            full: _,
            delta,
            no_wait,
        } => sync(c, &token, delta, no_wait, format).await?,
        TokensCommand::Takeover { token, yes } => {
            if !yes {
                bail!("taking over stops the other MDM from managing this location: run again with --yes to confirm");
            }
            let t = c
                .post(
                    &format!("/api/v1/tokens/{}/takeover?confirm=true", segment(&token)),
                    json!({}),
                )
                .await?;
            match format {
                Format::Json => output::json(&t),
                Format::Table => say!(
                    "{} is now managed by this Allot; a full sync has started",
                    cell(&t["name"])
                ),
            }
        }
        TokensCommand::Delete { token, yes } => {
            if !yes {
                bail!("deleting removes the token and everything synced from it: run again with --yes to confirm");
            }
            c.delete(&format!("/api/v1/tokens/{}?confirm=true", segment(&token)))
                .await?;
            if format == Format::Table {
                say!("Deleted {token}");
            }
        }
    }
    Ok(())
}

fn summary(run: &Value) -> String {
    if run["status"] == "failed" {
        return format!("error: {}", cell(&run["error"]));
    }
    format!(
        "{} licenses changed, {} assignments added, {} removed, {} users changed",
        cell(&run["assetsChanged"]),
        cell(&run["assignmentsAdded"]),
        cell(&run["assignmentsRemoved"]),
        cell(&run["usersChanged"])
    )
}

/// Starts a sync and follows it with a progress bar until it ends.
async fn sync(
    c: &Client,
    token: &str,
    delta: bool,
    no_wait: bool,
    format: Format,
) -> anyhow::Result<()> {
    let path = format!("/api/v1/tokens/{}/sync", segment(token));
    let kind = if delta { "delta" } else { "full" };
    // One sync of a token at a time: one already under way is followed instead; one that ended
    // between our request and our look is no reason to give up.
    let mut attempts = 0;
    let started = loop {
        attempts += 1;
        match c.post(&path, json!({ "kind": kind })).await {
            Ok(started) => break started,
            Err(e) => {
                let s: Value = c.get(&path).await?;
                if let Some(run_id) = s["running"]["runId"].as_i64() {
                    if format == Format::Table {
                        say!("A sync of {token} is already running (run {run_id}); following it");
                    }
                    break json!({ "runId": run_id });
                }
                if attempts >= 3 || !e.to_string().contains("already running") {
                    return Err(e);
                }
            }
        }
    };
    let run_id = started["runId"].as_i64().unwrap_or_default();
    if no_wait {
        match format {
            Format::Json => output::json(&started),
            Format::Table => say!("Sync {run_id} started"),
        }
        return Ok(());
    }
    let bar = indicatif::ProgressBar::new(0);
    bar.set_style(
        indicatif::ProgressStyle::with_template("{spinner} {msg} [{bar:30}] {pos}/{len} pages")
            .expect("a valid template")
            .progress_chars("=> "),
    );
    if format == Format::Json {
        bar.set_draw_target(indicatif::ProgressDrawTarget::hidden());
    }
    loop {
        let s: Value = c.get(&path).await?;
        if let Some(p) = s
            .get("running")
            .filter(|r| !r.is_null() && r["runId"] == run_id)
        {
            bar.set_length(p["pagesTotal"].as_u64().unwrap_or(0));
            bar.set_position(p["pages"].as_u64().unwrap_or(0));
            bar.set_message(format!("{} sync: {}", cell(&p["kind"]), cell(&p["phase"])));
        } else if let Some(run) = s
            .get("latest")
            .filter(|r| r["id"] == run_id && r["status"] != "running")
        {
            bar.finish_and_clear();
            match format {
                Format::Json => output::json(run),
                Format::Table => say!(
                    "{} sync {}: {}",
                    cell(&run["kind"]),
                    cell(&run["status"]),
                    summary(run)
                ),
            }
            if run["status"] != "succeeded" {
                bail!("the sync did not succeed");
            }
            return Ok(());
        }
        bar.tick();
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}
