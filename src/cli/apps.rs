//! `allot apps list` (license information) and `allot apps threshold` (an app's own
//! `licenses.low` alert threshold).

use clap::Subcommand;
use serde_json::{json, Value};

use super::client::{segment, Client};
use super::output::{self, cell, say, Format};

#[derive(Subcommand)]
pub enum AppsCommand {
    /// License information for store apps: one row per app per token.
    List {
        /// Only this token (name or id).
        #[arg(long)]
        token: Option<String>,
        /// Part of the name, bundle id or adamId.
        #[arg(long)]
        search: Option<String>,
        /// `app` or `book`.
        #[arg(long = "type")]
        kind: Option<String>,
        /// Rows per request (the list is read to its end).
        #[arg(long, default_value_t = 500)]
        page_size: u32,
    },
    /// Alert (licenses.low) when this app's free licenses fall to N or fewer, over the global
    /// threshold; `--global` goes back to it.
    Threshold {
        adam_id: String,
        #[arg(required_unless_present = "global")]
        licenses: Option<i64>,
        #[arg(long, conflicts_with = "licenses")]
        global: bool,
        /// `STDQ` or `PLUS`.
        #[arg(long, default_value = "STDQ")]
        pricing: String,
    },
}

pub async fn run(cmd: AppsCommand, c: &Client, format: Format) -> anyhow::Result<()> {
    let (token, search, kind, page_size) = match cmd {
        AppsCommand::List {
            token,
            search,
            kind,
            page_size,
        } => (token, search, kind, page_size),
        AppsCommand::Threshold {
            adam_id,
            licenses,
            global: _,
            pricing,
        } => {
            let v = c
                .put(
                    &format!("/api/v1/apps/{}/alert-threshold", segment(&adam_id)),
                    json!({ "pricingParam": pricing, "threshold": licenses }),
                )
                .await?;
            match format {
                Format::Json => output::json(&v),
                Format::Table => say!(
                    "adamId {} ({}): licenses.low at {} free licenses{}",
                    cell(&v["adamId"]),
                    cell(&v["pricingParam"]),
                    cell(&v["threshold"]),
                    if v["own"] == true {
                        ""
                    } else {
                        " (the global threshold)"
                    }
                ),
            }
            return Ok(());
        }
    };
    let mut query = String::new();
    for (k, v) in [("token", &token), ("search", &search), ("type", &kind)] {
        if let Some(v) = v {
            query.push_str(&format!("&{k}={}", segment(v)));
        }
    }
    let mut apps: Vec<Value> = Vec::new();
    loop {
        let page: Value = c
            .get(&format!(
                "/api/v1/apps?limit={page_size}&offset={}{query}",
                apps.len()
            ))
            .await?;
        let got = page["apps"].as_array().cloned().unwrap_or_default();
        let total = page["total"].as_u64().unwrap_or(0) as usize;
        let empty = got.is_empty();
        apps.extend(got);
        if empty || apps.len() >= total {
            break;
        }
    }
    match format {
        Format::Json => output::json(&Value::Array(apps)),
        Format::Table => {
            let rows: Vec<Vec<String>> = apps
                .iter()
                .map(|a| {
                    let or_unlimited = |v: &Value| {
                        if v.is_null() {
                            "unlimited".to_owned()
                        } else {
                            cell(v)
                        }
                    };
                    vec![
                        cell(&a["name"]),
                        cell(&a["token"]),
                        cell(&a["type"]),
                        cell(&a["platforms"]),
                        or_unlimited(&a["total"]),
                        cell(&a["used"]),
                        or_unlimited(&a["available"]),
                    ]
                })
                .collect();
            output::table(
                &[
                    "NAME",
                    "TOKEN",
                    "TYPE",
                    "PLATFORMS",
                    "TOTAL",
                    "USED",
                    "AVAILABLE",
                ],
                &rows,
            );
        }
    }
    Ok(())
}
