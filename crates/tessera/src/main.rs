//! `tessera`: the one binary. Parses the command line, reads the configuration, sets up
//! logging, and calls into the crates; the logic lives there.

mod apikey;
mod authz;
mod client;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Parser, Subcommand, ValueEnum};
use tessera_idp::accounts::{UserView, OPERATOR};
use tessera_idp::audit::Auditor;
use tessera_idp::clock::{rfc3339, Clock, SystemClock};
use tessera_idp::config::{LogConfig, LogFormat};
use tessera_idp::keys::{algorithms, list_keys, rotate_keys};
use tessera_idp::node::{open_database, open_ephemeral, open_keys};
use tessera_idp::tokens::SessionView;
use tessera_idp::Config;
use tessera_store::durable::{AuditQuery, AuditRecord, AuditStore};

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
    /// Manage OAuth clients (the registry the admin API serves too).
    #[command(subcommand)]
    Client(Box<client::ClientCommand>),
    /// Run the API gateway: verifies tokens at the edge and forwards the caller's identity
    /// to upstream services. Reads its own file: `tessera gateway --config gateway.toml`.
    Gateway,
    /// Read the audit trail.
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Define roles: their permissions and whom they inherit from.
    #[command(subcommand)]
    Role(authz::RoleCommand),
    /// Separation-of-duty rules: roles no user may hold together.
    #[command(subcommand)]
    Sod(authz::SodCommand),
    /// Authorization decisions.
    #[command(subcommand)]
    Authz(authz::AuthzCommand),
    /// Partner API keys of users and clients: create (shown once), list, revoke.
    #[command(subcommand)]
    Apikey(apikey::ApiKeyCommand),
}

#[derive(Subcommand)]
enum AuditCommand {
    /// Print the newest audit records, oldest of them first; with --follow, keep printing
    /// new records as they are written (until Ctrl-C).
    Tail {
        /// Keep polling (every second) and print new records as they arrive.
        #[arg(long)]
        follow: bool,
        /// One JSON object per line instead of text.
        #[arg(long)]
        json: bool,
        /// Only records about this user (subject id).
        #[arg(long, value_name = "ID", allow_hyphen_values = true)]
        user: Option<String>,
        /// Only this event type, e.g. login.failed.
        #[arg(long = "type", value_name = "EVENT")]
        event: Option<String>,
        /// How many of the newest records to print first (1-1000).
        #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u32).range(1..=1000))]
        limit: u32,
    },
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
    /// A user's second factors.
    #[command(subcommand)]
    Mfa(MfaCommand),
    /// Give a user a role (separation-of-duty rules apply); it shows in their tokens at the
    /// next refresh. Granting a role the user holds replaces its terms.
    Grant {
        email: String,
        role: String,
        /// The assignment holds only in sessions on this channel (repeatable).
        #[arg(long = "channel", value_name = "C")]
        channels: Vec<String>,
        /// The assignment ends then: RFC 3339 (2027-01-31T18:00:00Z) or Unix seconds.
        #[arg(long, value_name = "T", value_parser = tessera_idp::authz::parse_instant)]
        until: Option<i64>,
        /// Where else it holds, as a role permission's condition:
        /// `{"networks":["10.0.0.0/8"],"acr":"urn:tessera:acr:mfa","time":{"zone":"Europe/Berlin","from":"08:00","to":"18:00","days":["mon","tue"]}}`.
        #[arg(long, value_name = "JSON")]
        condition: Option<String>,
    },
    /// Take a role from a user.
    RevokeRole { email: String, role: String },
}

#[derive(Subcommand)]
enum MfaCommand {
    /// List a user's factors (never their secrets).
    List {
        email: String,
        #[arg(long)]
        json: bool,
    },
    /// Remove every factor and recovery code of a user who lost them (the user signs in
    /// with the password alone again, and should enrol anew).
    Reset { email: String },
}

#[derive(Subcommand)]
enum SessionsCommand {
    /// List the alive sessions of a user.
    List {
        /// The user's subject id.
        #[arg(long, allow_hyphen_values = true)]
        subject: String,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// End sessions: one by id, or every session of a user. Their refresh tokens stop
    /// working at once and their access tokens go on the revocation feed.
    Revoke {
        /// End every session of this subject.
        #[arg(
            long,
            conflicts_with = "id",
            required_unless_present = "id",
            allow_hyphen_values = true
        )]
        subject: Option<String>,
        /// End this one session.
        #[arg(long, allow_hyphen_values = true)]
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
    // Before any TLS connection (PostgreSQL, Redis, outgoing HTTPS): one rustls provider.
    tessera_store::install_crypto_provider();
    if matches!(cli.command, Command::Gateway) {
        return gateway(cli.config.as_deref(), cli.log_format);
    }
    let mut config = match Config::load(cli.config.as_deref(), std::env::vars()) {
        Ok(config) => config,
        Err(err) => return fail(&err),
    };
    if let Some(format) = cli.log_format {
        config.log.format = format.into();
    }
    init_logging(&config.log);
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
            Command::Role(command) => authz::role(config, command).await,
            Command::Sod(command) => authz::sod(config, command).await,
            Command::Authz(command) => authz::authz(config, command).await,
            Command::Apikey(command) => apikey::apikey(config, command).await,
            Command::Client(command) => client::client(config, *command).await,
            Command::Gateway => {
                Err("the gateway is started before the provider's configuration is read".into())
            }
            Command::Audit(AuditCommand::Tail {
                follow,
                json,
                user,
                event,
                limit,
            }) => audit_tail(config, follow, json, user, event, limit).await,
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

/// `tessera gateway`: its own configuration file and `TESSERA_GATEWAY_*` variables (not the
/// provider's), its own logging; the gateway itself lives in the `tessera-gateway` crate.
fn gateway(file: Option<&std::path::Path>, log_format: Option<LogFormatArg>) -> ExitCode {
    let Some(file) = file else {
        return fail(&"tessera gateway needs --config FILE (see docs/gateway.md)");
    };
    let config = match tessera_gateway::GatewayConfig::load(Some(file), std::env::vars()) {
        Ok(config) => config,
        Err(err) => return fail(&err),
    };
    let mut log = config.log.clone();
    if let Some(format) = log_format {
        log.format = format.into();
    }
    init_logging(&log);
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(err) => return fail(&err),
    };
    match runtime.block_on(tessera_gateway::run(config, shutdown_signal())) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => fail(&err),
    }
}

impl From<LogFormatArg> for LogFormat {
    fn from(format: LogFormatArg) -> Self {
        match format {
            LogFormatArg::Text => LogFormat::Text,
            LogFormatArg::Json => LogFormat::Json,
        }
    }
}

/// Logging to stderr as `[log]` says (the provider's and the gateway's section alike).
fn init_logging(log: &LogConfig) {
    let filter = tracing_subscriber::EnvFilter::try_new(&log.level)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    match log.format {
        LogFormat::Json => builder
            .json()
            .with_current_span(true)
            .with_span_list(false)
            .init(),
        LogFormat::Text => builder.init(),
    }
}

async fn serve(config: Config) -> CmdResult {
    let node = tessera_web::start(config).await?;
    let listener = tessera_web::bind(&node).await?;
    let state = node.state();
    tracing::info!(
        listen = %listener.local_addr()?,
        issuer = %state.issuer,
        database = state.db.backend().name(),
        ephemeral = state.ephemeral.kind(),
        "tessera is serving"
    );
    tessera_web::serve(node, listener, shutdown_signal()).await?;
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
    let keys = list_keys(&db, SystemClock.now()).await?;
    if json {
        println!("{}", serde_json::to_string_pretty(&keys)?);
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
            k.status,
            k.activates_at,
            at(k.retires_at),
            at(k.expires_at)
        );
    }
    Ok(())
}

async fn keys_rotate(config: Config, alg: Option<String>) -> CmdResult {
    let algs = algorithms(alg.as_deref()).map_err(|_| {
        format!(
            "unknown algorithm {:?}: use ES256, RS256 or EdDSA",
            alg.unwrap_or_default()
        )
    })?;
    let db = open_database(&config).await?;
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let ring = open_keys(&config, &db, clock.clone()).await?;
    // Nodes sharing Redis reload at once; others within `keys.reload_secs`.
    let ephemeral = open_ephemeral(&config).await?;
    let audit = Auditor::new(Arc::new(db), clock);
    let context = tessera_idp::audit::RequestContext::default();
    let keys = rotate_keys(&ring, ephemeral.as_ref(), &audit, &algs, OPERATOR, &context).await?;
    for key in keys {
        println!(
            "{}  {}  published now, signs from {} (unix time)",
            key.kid, key.alg, key.activates_at
        );
    }
    Ok(())
}

async fn sessions_list(config: Config, subject: String, json: bool) -> CmdResult {
    let node = tessera_web::start(config).await?;
    let sessions = node.state().tokens.sessions_of(&subject).await?;
    if json {
        let rows: Vec<SessionView> = sessions.iter().map(SessionView::from).collect();
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
    let node = tessera_web::start(config).await?;
    let tokens = &node.state().tokens;
    let context = tessera_idp::audit::RequestContext::default();
    let ended = match (subject, id) {
        (Some(subject), _) => {
            tokens
                .end_sessions_of(&subject, "revoked_by_operator", OPERATOR, &context)
                .await?
        }
        (None, Some(id)) => usize::from(
            tokens
                .end_session(&id, "revoked_by_operator", OPERATOR, &context)
                .await?,
        ),
        (None, None) => 0,
    };
    println!("ended {ended} session(s)");
    Ok(())
}

async fn user(config: Config, command: UserCommand) -> CmdResult {
    let node = tessera_web::start(config).await?;
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
            let shown = serde_json::to_value(UserView::from(&user))?;
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
        UserCommand::Mfa(MfaCommand::List { email, json }) => {
            let user = accounts.user_by_email(&email).await?.ok_or("no such user")?;
            let factors = node.state().mfa.factors(&user.id).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&factors)?);
            } else if factors.is_empty() {
                println!("no factors");
            } else {
                println!(
                    "{:<24} {:<6} {:<10} {:<12} NAME",
                    "ID", "KIND", "CONFIRMED", "LAST USED"
                );
                for factor in factors {
                    let used = factor.last_used_at.map_or("-".to_owned(), |t| t.to_string());
                    println!(
                        "{:<24} {:<6} {:<10} {:<12} {}",
                        factor.id,
                        factor.kind,
                        if factor.confirmed { "yes" } else { "no" },
                        used,
                        factor.name
                    );
                }
            }
        }
        UserCommand::Mfa(MfaCommand::Reset { email }) => {
            let user = accounts.user_by_email(&email).await?.ok_or("no such user")?;
            let removed = node
                .state()
                .mfa
                .reset(&user.id, tessera_idp::accounts::OPERATOR, &context)
                .await?;
            println!("removed {removed} factor(s) and the recovery codes");
        }
        UserCommand::Grant {
            email,
            role,
            channels,
            until,
            condition,
        } => {
            let terms = authz::terms(channels, until, condition.as_deref())?;
            authz::grant_or_revoke(accounts, &email, &role, Some(terms), &context).await?;
        }
        UserCommand::RevokeRole { email, role } => {
            authz::grant_or_revoke(accounts, &email, &role, None, &context).await?;
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

/// `tessera audit tail`: the newest `limit` records matching the filters, printed oldest
/// first; with `follow`, every record written after them, polled each second until Ctrl-C.
async fn audit_tail(
    config: Config,
    follow: bool,
    json: bool,
    user: Option<String>,
    event: Option<String>,
    limit: u32,
) -> CmdResult {
    let db = open_database(&config).await?;
    let filters = AuditQuery {
        subject: user,
        event,
        ..AuditQuery::default()
    };
    let mut newest = db
        .audit_records(&AuditQuery {
            limit,
            ..filters.clone()
        })
        .await?;
    newest.reverse();
    print_audit(&newest, json)?;
    if !follow {
        return Ok(());
    }
    // Everything written from here on is after the newest id seen (ids only grow). Before
    // any record matched, start from the newest of all, so old records are not replayed.
    let mut last_seen = match newest.last() {
        Some(record) => record.id,
        None => db
            .audit_records(&AuditQuery {
                limit: 1,
                ..AuditQuery::default()
            })
            .await?
            .first()
            .map_or(0, |r| r.id),
    };
    let stop = shutdown_signal();
    tokio::pin!(stop);
    let mut interval = tokio::time::interval(std::time::Duration::from_secs(1));
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = &mut stop => return Ok(()),
            _ = interval.tick() => {}
        }
        let arrived = audit_after(&db, &filters, last_seen).await?;
        if let Some(record) = arrived.last() {
            last_seen = record.id;
        }
        print_audit(&arrived, json)?;
    }
}

/// Every record matching `filters` with an id above `after`, oldest first (paging back
/// from the newest when more arrived than one query returns).
async fn audit_after(
    db: &tessera_store::durable::SqlStore,
    filters: &AuditQuery,
    after: i64,
) -> Result<Vec<AuditRecord>, Box<dyn std::error::Error>> {
    const PAGE: u32 = 1000;
    let mut all = Vec::new();
    let mut before = None;
    loop {
        let page = db
            .audit_records(&AuditQuery {
                after_id: Some(after),
                before_id: before,
                limit: PAGE,
                ..filters.clone()
            })
            .await?;
        let full = page.len() == PAGE as usize;
        before = page.last().map(|r| r.id);
        all.extend(page);
        if !full {
            break;
        }
    }
    all.reverse();
    Ok(all)
}

/// Prints records: one JSON object per line, or one line of text each.
fn print_audit(records: &[AuditRecord], json: bool) -> CmdResult {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    for record in records {
        if json {
            writeln!(out, "{}", tessera_idp::audit::record_json(record))?;
        } else {
            let mut line = format!(
                "{}  {:>6}  {:<28}  {:<7}",
                rfc3339(record.at),
                record.id,
                record.event,
                record.outcome
            );
            let fields = [
                ("actor", &record.actor),
                ("subject", &record.subject),
                ("client", &record.client_id),
                ("session", &record.session_id),
                ("ip", &record.ip),
                ("detail", &record.detail),
            ];
            for (name, value) in fields {
                if let Some(value) = value {
                    line.push_str(&format!("  {name}={value}"));
                }
            }
            writeln!(out, "{line}")?;
        }
    }
    out.flush()?;
    Ok(())
}
