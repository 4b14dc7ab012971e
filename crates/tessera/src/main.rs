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
    /// Inspect and end user sessions.
    #[command(subcommand)]
    Sessions(SessionsCommand),
    /// Manage users.
    #[command(subcommand)]
    User(UserCommand),
}

#[derive(Subcommand)]
enum UserCommand {
    /// Create a user (the password policy applies).
    Create {
        #[arg(long)]
        email: String,
        /// The password. Prefer TESSERA_USER_PASSWORD, which stays out of shell history.
        #[arg(long, env = "TESSERA_USER_PASSWORD", hide_env_values = true)]
        password: String,
        /// Mark the e-mail address as verified.
        #[arg(long)]
        verified: bool,
        /// A role to grant (repeatable).
        #[arg(long = "role")]
        roles: Vec<String>,
    },
    /// Show a user (the password hash algorithm, never the hash).
    Show {
        email: String,
        #[arg(long)]
        json: bool,
    },
    /// Disable a user: every session and refresh token ends at once.
    Disable { email: String },
    /// Enable a disabled user (and clear login lockouts).
    Enable { email: String },
    /// Delete a user after ending their sessions.
    Delete { email: String },
    /// Import users from JSON Lines: {email, password_hash, email_verified?, roles?} with
    /// bcrypt ($2a$/$2b$/$2y$), PBKDF2-SHA256 (PHC) or Argon2 (PHC) hashes.
    Import { file: PathBuf },
}

#[derive(Subcommand)]
enum SessionsCommand {
    /// List the alive sessions of a user.
    List {
        /// The user's subject id.
        #[arg(long)]
        subject: String,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// End sessions: one by id, or every session of a user. Their refresh tokens stop
    /// working at once and their access tokens go on the revocation feed.
    Revoke {
        /// End every session of this subject.
        #[arg(long, conflicts_with = "id", required_unless_present = "id")]
        subject: Option<String>,
        /// End this one session.
        #[arg(long)]
        id: Option<String>,
    },
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
            Command::Sessions(SessionsCommand::List { subject, json }) => {
                sessions_list(config, subject, json).await
            }
            Command::Sessions(SessionsCommand::Revoke { subject, id }) => {
                sessions_revoke(config, subject, id).await
            }
            Command::User(command) => user(config, command).await,
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

async fn sessions_list(config: Config, subject: String, json: bool) -> CmdResult {
    let node = Node::start(config).await?;
    let sessions = node.state().tokens.sessions_of(&subject).await?;
    if json {
        let rows: Vec<_> = sessions
            .iter()
            .map(|s| {
                serde_json::json!({
                    "id": s.id, "client_id": s.client_id, "channel": s.channel,
                    "user_agent": s.user_agent, "ip": s.ip, "created_at": s.created_at,
                    "last_seen_at": s.last_seen_at, "idle_expires_at": s.idle_expires_at,
                    "absolute_expires_at": s.absolute_expires_at,
                })
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&rows)?);
        return Ok(());
    }
    println!(
        "{:<24}  {:<16}  {:<8}  {:<15}  {:<11}  {:<11}",
        "ID", "CLIENT", "CHANNEL", "IP", "CREATED", "LAST SEEN"
    );
    for s in &sessions {
        println!(
            "{:<24}  {:<16}  {:<8}  {:<15}  {:<11}  {:<11}",
            s.id,
            s.client_id,
            s.channel,
            s.ip.as_deref().unwrap_or("-"),
            s.created_at,
            s.last_seen_at
        );
    }
    Ok(())
}

async fn sessions_revoke(config: Config, subject: Option<String>, id: Option<String>) -> CmdResult {
    let node = Node::start(config).await?;
    let tokens = &node.state().tokens;
    let context = tessera_idp::audit::RequestContext::default();
    let ended = match (subject, id) {
        (Some(subject), _) => {
            tokens
                .end_sessions_of(&subject, "revoked_by_operator", "operator", &context)
                .await?
        }
        (None, Some(id)) => usize::from(
            tokens
                .end_session(&id, "revoked_by_operator", "operator", &context)
                .await?,
        ),
        (None, None) => 0,
    };
    println!("ended {ended} session(s)");
    Ok(())
}

async fn user(config: Config, command: UserCommand) -> CmdResult {
    let node = Node::start(config).await?;
    let accounts = &node.state().accounts;
    let context = tessera_idp::audit::RequestContext::default();
    match command {
        UserCommand::Create {
            email,
            password,
            verified,
            roles,
        } => {
            let user = accounts
                .create_user(&email, &password, verified, &roles, &context)
                .await?;
            println!("{}  {}", user.id, user.email);
        }
        UserCommand::Show { email, json } => {
            let user = accounts.user_by_email(&email).await?.ok_or("no such user")?;
            let algorithm = user
                .password_hash
                .as_deref()
                .and_then(tessera_idp::passwords::scheme_of)
                .map_or("none", |s| s.name());
            let shown = serde_json::json!({
                "id": user.id,
                "email": user.email,
                "email_verified": user.email_verified_at.is_some(),
                "email_verified_at": user.email_verified_at,
                "password_algorithm": algorithm,
                "roles": user.roles,
                "disabled": user.disabled_at.is_some(),
                "created_at": user.created_at,
                "password_changed_at": user.password_changed_at,
            });
            if json {
                println!("{}", serde_json::to_string_pretty(&shown)?);
            } else {
                for (key, value) in shown.as_object().into_iter().flatten() {
                    println!("{key:<20} {value}");
                }
            }
        }
        UserCommand::Disable { email } => {
            let ended = accounts.disable(&email, &context).await?;
            println!("disabled; ended {ended} session(s)");
        }
        UserCommand::Enable { email } => {
            accounts.enable(&email, &context).await?;
            println!("enabled");
        }
        UserCommand::Delete { email } => {
            accounts.delete(&email, &context).await?;
            println!("deleted");
        }
        UserCommand::Import { file } => {
            let reader = std::io::BufReader::new(
                std::fs::File::open(&file).map_err(|e| format!("cannot read {}: {e}", file.display()))?,
            );
            let report = accounts.import_users(reader, &context).await?;
            for (line, reason) in &report.rejected {
                eprintln!("line {line}: {reason}");
            }
            println!(
                "imported {}, skipped {} (already present), rejected {}",
                report.imported,
                report.skipped,
                report.rejected.len()
            );
        }
    }
    Ok(())
}
