//! `allot mdm status`: the MDM connector — NanoMDM's last answer or error, and the devices whose
//! push did not reach them.

use clap::Subcommand;
use serde_json::Value;

use super::client::Client;
use super::output::{self, cell, Format};

#[derive(Subcommand)]
pub enum MdmCommand {
    /// NanoMDM's last answer or error, and devices whose push failed.
    Status,
}

pub async fn run(cmd: MdmCommand, c: &Client, format: Format) -> anyhow::Result<()> {
    let MdmCommand::Status = cmd;
    let s: Value = c.get("/api/v1/mdm/status").await?;
    match format {
        Format::Json => output::json(&s),
        Format::Table => {
            if s["configured"] != true {
                output::write_line(format_args!(
                    "No MDM is configured (ALLOT_NANOMDM_URL): licenses are assigned, installs are left to your MDM"
                ));
                return Ok(());
            }
            output::write_line(format_args!(
                "NanoMDM: {} · last good answer {} · {} failures in a row{}",
                cell(&s["state"]),
                if s["lastSuccessAt"].is_string() {
                    cell(&s["lastSuccessAt"])
                } else {
                    "never (since start)".into()
                },
                cell(&s["consecutiveFailures"]),
                if s["lastError"].is_string() {
                    format!(
                        " · last error {}: {}",
                        cell(&s["lastErrorAt"]),
                        cell(&s["lastError"])
                    )
                } else {
                    String::new()
                }
            ));
            if s["nextAttemptAt"].is_string() {
                output::write_line(format_args!(
                    "nothing is sent to NanoMDM before {} (waits double while it fails, at most 15 minutes)",
                    cell(&s["nextAttemptAt"])
                ));
            }
            if s["pushCertificate"].is_object() {
                output::write_line(format_args!(
                    "push certificate for {} expires {}",
                    cell(&s["pushCertificate"]["topic"]),
                    cell(&s["pushCertificate"]["notAfter"])
                ));
            } else if s["pushCertificateError"].is_string() {
                output::write_line(format_args!(
                    "push certificate: {} (upload it to NanoMDM: PUT /v1/pushcert)",
                    cell(&s["pushCertificateError"])
                ));
            }
            output::write_line(format_args!(
                "last webhook {} · {} commands waiting for their device · {} devices whose last push failed ({} in the last hour)",
                if s["lastWebhookAt"].is_string() {
                    cell(&s["lastWebhookAt"])
                } else {
                    "none since start (check NanoMDM's -webhook-url)".into()
                },
                cell(&s["commandsWaiting"]),
                cell(&s["pushFailures"]),
                cell(&s["pushFailuresLastHour"])
            ));
            let rows: Vec<Vec<String>> = s["devices"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|d| {
                    vec![
                        cell(&d["serialNumber"]),
                        cell(&d["attempts"]),
                        if d["nextAttemptAt"].is_string() {
                            cell(&d["nextAttemptAt"])
                        } else {
                            "gave up".into()
                        },
                        cell(&d["error"]),
                    ]
                })
                .collect();
            if !rows.is_empty() {
                output::table(&["DEVICE", "ATTEMPTS", "NEXT", "ERROR"], &rows);
            }
        }
    }
    Ok(())
}
