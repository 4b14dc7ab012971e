//! `tessera`: the one binary. Parses the command line, reads the configuration, sets up
//! logging, and calls into the crates; the logic lives there.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Parser, Subcommand, ValueEnum};
use tessera_idp::clock::{Clock, SystemClock};
use tessera_idp::config::LogFormat;
use tessera_idp::keys::{alg_name, key_status, parse_alg, ALGORITHMS};
use tessera_idp::node::{open_database, open_ephemeral, open_keys, KEYS_CHANGED_CHANNEL};
use tessera_idp::{Config, Node};
use tessera_store::durable::KeyStore;

#[derive(Parser)]
#[command(
    name = "tessera",
    version,
    about = "Tessera identity provider, verifier and gateway"
)]
struct Cli {
    /// TOML configuration file. Without one, defaults and TESSERA_* variables apply.
    #[arg(long, global = true, value_name = "FILE", env = "TESSERA_CONFIG")]
    config: Option<PathBuf>,
    /// Log format; overrides `log.format`.
    #[arg(long, global = true, value_enum)]
    log_format: Option<LogFormatArg>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, ValueEnum)]
enum LogFormatArg {
    Text,
    Json,
}

#[derive(Subcommand)]
enum Command {
    /// Run an identity-provider node (migrates the database first).
    Serve,
    /// Apply pending database migrations and exit.
    Migrate {
        /// Only show which migrations are applied.
        #[arg(long)]
        status: bool,
    },
    /// Manage signing keys.
    #[command(subcommand)]
    Keys(KeysCommand),
}

#[derive(Subcommand)]
enum KeysCommand {
    /// List signing keys with their state (published, active, retired, expired).
    List {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Create a new key (for one algorithm, or all); it is published at once and signs
    /// after `keys.prepublish_secs`; the key it replaces leaves JWKS after
    /// `keys.retire_window_secs` more.
    Rotate {
        /// ES256, RS256 or EdDSA. Default: all three.
        #[arg(long)]
        alg: Option<String>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let mut config = match Config::load(cli.config.as_deref(), std::env::vars()) {
        Ok(config) => config,
        Err(err) => return fail(&err),
    };
    if let Some(format) = cli.log_format {
        config.log.format = match format {
            LogFormatArg::Text => LogFormat::Text,
            LogFormatArg::Json => LogFormat::Json,
        };
    }
    init_logging(&config);
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(err) => return fail(&err),
    };
    let result = runtime.block_on(async move {
        match cli.command {
            Command::Serve => serve(config).await,
            Command::Migrate { status } => migrate(config, status).await,
            Command::Keys(KeysCommand::List { json }) => keys_list(config, json).await,
            Command::Keys(KeysCommand::Rotate { alg }) => keys_rotate(config, alg).await,
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => fail(&*err),
    }
}

type CmdResult = Result<(), Box<dyn std::error::Error>>;

fn fail(err: &dyn std::fmt::Display) -> ExitCode {
    eprintln!("error: {err}");
    ExitCode::FAILURE
}

fn init_logging(config: &Config) {
    let filter = tracing_subscriber::EnvFilter::try_new(&config.log.level)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    match config.log.format {
        LogFormat::Json => builder
            .json()
            .with_current_span(true)
            .with_span_list(false)
            .init(),
        LogFormat::Text => builder.init(),
    }
}

async fn serve(config: Config) -> CmdResult {
    let node = Node::start(config).await?;
    let listener = node.bind().await?;
    let state = node.state();
    tracing::info!(
        listen = %listener.local_addr()?,
        issuer = %state.issuer,
        database = state.db.backend().name(),
        ephemeral = state.ephemeral.kind(),
        "tessera is serving"
    );
    node.serve(listener, shutdown_signal()).await?;
    tracing::info!("stopped");
    Ok(())
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = tokio::signal::ctrl_c() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

async fn migrate(config: Config, status_only: bool) -> CmdResult {
    if status_only {
        let db = tessera_store::durable::SqlStore::connect(&tessera_store::durable::ConnectSettings::new(
            config.database_url(),
        ))
        .await
        .map_err(|e| format!("cannot open the database: {e}"))?;
        for (version, description, applied) in db.migration_status().await? {
            println!(
                "{version:>4}  {}  {description}",
                if applied { "applied" } else { "pending" }
            );
        }
        return Ok(());
    }
    let db = open_database(&config).await?;
    let applied = db.migration_status().await?.iter().filter(|m| m.2).count();
    println!(
        "database is up to date ({applied} migrations applied, {})",
        db.backend().name()
    );
    Ok(())
}

async fn keys_list(config: Config, json: bool) -> CmdResult {
    let db = open_database(&config).await?;
    let now = SystemClock.now();
    let keys = db.all_keys().await?;
    if json {
        let rows: Vec<_> = keys
            .iter()
            .map(|k| {
                serde_json::json!({
                    "kid": k.kid, "alg": k.alg, "status": key_status(k, now),
                    "created_at": k.created_at, "activates_at": k.activates_at,
                    "retires_at": k.retires_at, "expires_at": k.expires_at,
                })
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&rows)?);
        return Ok(());
    }
    println!(
        "{:<44}  {:<6}  {:<9}  {:<11}  {:<11}  {:<11}",
        "KID", "ALG", "STATUS", "ACTIVATES", "RETIRES", "EXPIRES"
    );
    let at = |t: Option<i64>| t.map_or_else(|| "-".to_owned(), |t| t.to_string());
    for k in &keys {
        println!(
            "{:<44}  {:<6}  {:<9}  {:<11}  {:<11}  {:<11}",
            k.kid,
            k.alg,
            key_status(k, now),
            k.activates_at,
            at(k.retires_at),
            at(k.expires_at)
        );
    }
    Ok(())
}

async fn keys_rotate(config: Config, alg: Option<String>) -> CmdResult {
    let algs = match alg {
        Some(name) => vec![parse_alg(&name)
            .ok_or_else(|| format!("unknown algorithm {name:?}: use ES256, RS256 or EdDSA"))?],
        None => ALGORITHMS.to_vec(),
    };
    let db = open_database(&config).await?;
    let ring = open_keys(&config, &db, Arc::new(SystemClock)).await?;
    for alg in algs {
        let key = ring.rotate(alg).await?;
        println!(
            "{}  {}  published now, signs from {} (unix time)",
            key.kid,
            alg_name(alg),
            key.activates_at
        );
    }
    // Nodes sharing Redis reload at once; others within `keys.reload_secs`.
    if config.redis_url.is_some() {
        let ephemeral = open_ephemeral(&config).await?;
        ephemeral.publish(KEYS_CHANGED_CHANNEL, "rotated").await?;
    }
    Ok(())
}
