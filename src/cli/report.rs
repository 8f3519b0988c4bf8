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
    /// Licenses assigned by deployments but not installed for at least N days.
    Unused {
        #[arg(long, default_value_t = 7)]
        days: i64,
        /// csv or json.
        #[arg(long, default_value = "csv")]
        format: String,
    },
    /// Every token, soonest expiry first.
    Expiry {
        /// csv or json.
        #[arg(long, default_value = "csv")]
        format: String,
    },
    /// Subscription renewal forecast: seats renewing and expiring, users losing access, unused
    /// seats that will renew.
    Subscriptions {
        /// csv or json.
        #[arg(long, default_value = "csv")]
        format: String,
    },
}

pub async fn run(cmd: ReportCommand, c: &Client) -> anyhow::Result<()> {
    let path = match cmd {
        ReportCommand::Licenses { format, token } => {
            let mut path = format!("/api/v1/reports/licenses?format={}", segment(&format));
            if let Some(t) = token {
                path.push_str(&format!("&token={}", segment(&t)));
            }
            path
        }
        ReportCommand::Unused { days, format } => format!(
            "/api/v1/reports/unused-licenses?days={days}&format={}",
            segment(&format)
        ),
        ReportCommand::Expiry { format } => {
            format!("/api/v1/reports/token-expiry?format={}", segment(&format))
        }
        ReportCommand::Subscriptions { format } => {
            format!("/api/v1/reports/subscriptions?format={}", segment(&format))
        }
    };
    let text = c.get_text(&path).await?;
    say!("{}", text.trim_end());
    Ok(())
}
