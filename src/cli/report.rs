//! `allot report …`: the exports, printed as the server makes them.

use clap::Subcommand;

use super::client::{segment, Client};
use super::output::say;

#[derive(Subcommand)]
pub enum ReportCommand {
    /// Volume-purchased apps with license counts: name, token, total purchased, used, available, %.
    Licenses {
        /// csv or json.
        #[arg(long, default_value = "csv")]
        format: String,
        /// Only this token (name or id).
        #[arg(long)]
        token: Option<String>,
    },
}

pub async fn run(cmd: ReportCommand, c: &Client) -> anyhow::Result<()> {
    let ReportCommand::Licenses { format, token } = cmd;
    let mut path = format!("/api/v1/reports/licenses?format={}", segment(&format));
    if let Some(t) = token {
        path.push_str(&format!("&token={}", segment(&t)));
    }
    let text = c.get_text(&path).await?;
    say!("{}", text.trim_end());
    Ok(())
}
