//! Command-line arguments and dispatch.

mod apps;
mod client;
mod demo;
mod deployments;
mod inventory;
mod keys;
mod ledger;
mod mdm;
mod output;
mod report;
mod sim;
mod subscriptions;
mod tokens;
mod webhooks;

use std::path::PathBuf;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "allot",
    version,
    about = "Manage Apple Apps and Books (VPP) licenses"
)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// How to reach a running `allot serve`.
#[derive(clap::Args, Clone)]
pub struct ServerArgs {
    /// Base URL of the Allot server.
    #[arg(
        long,
        env = "ALLOT_SERVER",
        default_value = "http://127.0.0.1:8080",
        global = true
    )]
    pub server: String,
    /// API key (printed by `allot serve` on first run).
    #[arg(long, env = "ALLOT_API_KEY", hide_env_values = true, global = true)]
    pub api_key: Option<String>,
    /// `table` for people, `json` for scripts.
    #[arg(long, value_enum, default_value = "table", global = true)]
    pub output: output::Format,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server: REST API, Apple notifications, sync schedule.
    Serve {
        /// A TOML configuration file (environment variables override it).
        #[arg(long, env = "ALLOT_CONFIG")]
        config: Option<PathBuf>,
    },
    /// A consistent copy of the SQLite database into FILE, while the server runs (the
    /// configuration as `serve` reads it). Restore: stop the server and put it back.
    Backup {
        file: PathBuf,
        /// A TOML configuration file (environment variables override it).
        #[arg(long, env = "ALLOT_CONFIG")]
        config: Option<PathBuf>,
    },
    /// Serve a simulator of Apple's Apps and Books service (v2) over HTTP.
    Sim(sim::SimArgs),
    /// Run everything: simulated Apple with a demo organization, the server, tokens added and synced.
    Demo(demo::DemoArgs),
    /// Content tokens: add, list, show, renew, sync, take over, delete.
    Tokens {
        #[command(subcommand)]
        command: tokens::TokensCommand,
        #[command(flatten)]
        server: ServerArgs,
    },
    /// Users (people licenses go to): add, list, import CSV, remove.
    Users {
        #[command(subcommand)]
        command: inventory::UsersCommand,
        #[command(flatten)]
        server: ServerArgs,
    },
    /// Devices: add, list, import CSV.
    Devices {
        #[command(subcommand)]
        command: inventory::DevicesCommand,
        #[command(flatten)]
        server: ServerArgs,
    },
    /// Collections of users or devices that deployments target.
    Collections {
        #[command(subcommand)]
        command: inventory::CollectionsCommand,
        #[command(flatten)]
        server: ServerArgs,
    },
    /// Deployments of apps and books to collections.
    Deployments {
        #[command(subcommand)]
        command: deployments::DeploymentsCommand,
        #[command(flatten)]
        server: ServerArgs,
    },
    /// Reports: `allot report licenses --format csv`.
    Report {
        #[command(subcommand)]
        command: report::ReportCommand,
        #[command(flatten)]
        server: ServerArgs,
    },
    /// License information for store apps.
    Apps {
        #[command(subcommand)]
        command: apps::AppsCommand,
        #[command(flatten)]
        server: ServerArgs,
    },
    /// Allot's intents against Apple's assignments: orphans, leaks, missing licenses.
    Ledger {
        #[command(subcommand)]
        command: ledger::LedgerCommand,
        #[command(flatten)]
        server: ServerArgs,
    },
    /// The MDM connector: NanoMDM's last answer or error, pushes that failed.
    Mdm {
        #[command(subcommand)]
        command: mdm::MdmCommand,
        #[command(flatten)]
        server: ServerArgs,
    },
    /// Subscription seats: enable, list with the renewal forecast, seats, assign, remove.
    Subscriptions {
        #[command(subcommand)]
        command: subscriptions::SubscriptionsCommand,
        #[command(flatten)]
        server: ServerArgs,
    },
    /// Endpoints that receive Allot's alerts as signed webhooks.
    Webhooks {
        #[command(subcommand)]
        command: webhooks::WebhooksCommand,
        #[command(flatten)]
        server: ServerArgs,
    },
    /// Alerts raised: tokens expiring, syncs failing, apps low on licenses, …
    Alerts {
        #[command(subcommand)]
        command: webhooks::AlertsCommand,
        #[command(flatten)]
        server: ServerArgs,
    },
    /// Who changed what, when and from where (the audit log).
    Audit {
        #[command(subcommand)]
        command: webhooks::AuditCommand,
        #[command(flatten)]
        server: ServerArgs,
    },
    /// API keys for automation: list, create, change role or scope, revoke.
    Keys {
        #[command(subcommand)]
        command: keys::KeysCommand,
        #[command(flatten)]
        server: ServerArgs,
    },
    /// Console accounts: list, add, change role, scope, state or password.
    Accounts {
        #[command(subcommand)]
        command: keys::AccountsCommand,
        #[command(flatten)]
        server: ServerArgs,
    },
}

impl Cli {
    /// Servers log at info; client commands stay quiet unless asked.
    pub fn default_log(&self) -> &'static str {
        match self.command {
            Command::Serve { .. } | Command::Sim(_) => "info",
            Command::Demo(_) => "warn",
            _ => "warn",
        }
    }
}

pub async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Serve { config } => {
            let config = allot_server::Config::load(config.as_deref(), &|k| std::env::var(k).ok())?;
            allot_server::serve(config).await
        }
        Command::Backup { file, config } => {
            let config = allot_server::Config::load(config.as_deref(), &|k| std::env::var(k).ok())?;
            let store = allot_store::Store::connect(&config.database()).await?;
            store.backup_into(&file).await?;
            let size = std::fs::metadata(&file).map(|m| m.len()).unwrap_or(0);
            output::say!(
                "Backed up the database to {} ({size} bytes). Keep the secret key with it (ALLOT_SECRET_KEY or {}): the content tokens in it are encrypted with that key.",
                file.display(),
                config.data_dir.join("secret.key").display()
            );
            Ok(())
        }
        Command::Sim(args) => sim::run(args).await,
        Command::Demo(args) => demo::run(args).await,
        Command::Ledger { command, server } => {
            ledger::run(command, &client::Client::new(&server)?, server.output).await
        }
        Command::Mdm { command, server } => {
            mdm::run(command, &client::Client::new(&server)?, server.output).await
        }
        Command::Subscriptions { command, server } => {
            subscriptions::run(command, &client::Client::new(&server)?, server.output).await
        }
        Command::Webhooks { command, server } => {
            webhooks::run(command, &client::Client::new(&server)?, server.output).await
        }
        Command::Alerts { command, server } => {
            webhooks::alerts(command, &client::Client::new(&server)?, server.output).await
        }
        Command::Audit { command, server } => {
            webhooks::audit(command, &client::Client::new(&server)?, server.output).await
        }
        Command::Keys { command, server } => {
            keys::run(command, &client::Client::new(&server)?, server.output).await
        }
        Command::Accounts { command, server } => {
            keys::accounts(command, &client::Client::new(&server)?, server.output).await
        }
        Command::Tokens { command, server } => {
            tokens::run(command, &client::Client::new(&server)?, server.output).await
        }
        Command::Users { command, server } => {
            inventory::users(command, &client::Client::new(&server)?, server.output).await
        }
        Command::Devices { command, server } => {
            inventory::devices(command, &client::Client::new(&server)?, server.output).await
        }
        Command::Collections { command, server } => {
            inventory::collections(command, &client::Client::new(&server)?, server.output).await
        }
        Command::Deployments { command, server } => {
            deployments::run(command, &client::Client::new(&server)?, server.output).await
        }
        Command::Report { command, server } => {
            report::run(command, &client::Client::new(&server)?).await
        }
        Command::Apps { command, server } => {
            apps::run(command, &client::Client::new(&server)?, server.output).await
        }
    }
}
