//! Starting and stopping a node: data directory, master key, stores, migrations, keys,
//! the metrics recorder and background work. Serving HTTP is `tessera-web`'s: it takes a
//! started [`Node`], serves its [`AppState`], and calls [`Node::stop`] after the drain.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use futures_util::StreamExt;
use tessera_store::durable::{ConnectSettings, KeyStore, Maintenance, SqlStore};
use tessera_store::ephemeral::{EphemeralStore, FailoverStore, MemoryStore};
use tessera_store::StoreError;
use tokio::task::JoinHandle;

use crate::accounts::throttle::Throttle;
use crate::accounts::{Accounts, AccountsParts};
use crate::alerts::{Alerts, AlertsParts};
use crate::apikeys::{ApiKeys, ApiKeysParts};
use crate::audit::Auditor;
use crate::authz::Authz;
use crate::clients::{ClientAuth, ClientAuthParts, SecretSeal};
use crate::clock::{Clock, SystemClock};
use crate::cluster::{self, Cluster};
use crate::config::{decode_master_key, Config, ConfigError};
use crate::federation::{Federation, FederationParts};
use crate::keys::{KeyError, KeyRing, MasterKey, RotationPolicy};
use crate::mail::Mailer;
use crate::mfa::{Mfa, MfaParts, SmsSender};
use crate::oidc::{Provider, ProviderParts};
use crate::outbound::Outbound;
use crate::passwords::PasswordHasher;
use crate::state::AppState;
use crate::tokens::opaque::SuccessorKey;
use crate::tokens::{TokenService, TokenServiceParts};

/// The pub/sub channel on which a key rotation is announced to every node.
pub const KEYS_CHANGED_CHANNEL: &str = "keys-changed";

/// Why a node could not start. Each variant renders as one line for the operator.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("cannot use data directory {path}: {reason}")]
    DataDir { path: String, reason: String },
    #[error("cannot open the database at {url}: {reason}")]
    Database { url: String, reason: String },
    #[error("cannot migrate the database: {0}")]
    Migration(String),
    #[error("cannot connect to Redis at {url}: {reason}")]
    Redis { url: String, reason: String },
    #[error("`master_key` (TESSERA_MASTER_KEY) is required when the database is not the embedded default: every node must share it")]
    MasterKeyRequired,
    #[error("cannot read the master key file {path}: {reason}")]
    MasterKeyFile { path: String, reason: String },
    #[error("{0}")]
    Keys(#[from] KeyError),
    #[error("cannot set up password hashing: {0}")]
    Passwords(String),
    #[error("cannot set up e-mail: {0}")]
    Mail(String),
    #[error("cannot set up the outbound HTTP client: {0}")]
    Outbound(String),
    #[error("cannot listen on {addr}: {reason}")]
    Bind { addr: SocketAddr, reason: String },
}

/// Opens the durable store named by the configuration (creating the data directory for the
/// embedded default) and applies pending migrations.
pub async fn open_database(config: &Config) -> Result<SqlStore, StartError> {
    if config.uses_embedded_database() {
        ensure_dir(&config.data_dir)?;
    }
    let url = config.database_url();
    let mut settings = ConnectSettings::new(url.clone());
    settings.max_connections = config.database.max_connections;
    settings.acquire_timeout = Duration::from_secs(config.database.acquire_timeout_secs);
    let db = SqlStore::connect(&settings)
        .await
        .map_err(|e| StartError::Database {
            url: redact_url(&url),
            reason: store_reason(&e),
        })?;
    db.migrate()
        .await
        .map_err(|e| StartError::Migration(store_reason(&e)))?;
    Ok(db)
}

/// Opens the ephemeral store: Redis when configured (with a per-node fallback while Redis
/// is unreachable, so a node also starts without it), otherwise in-process.
pub async fn open_ephemeral(config: &Config) -> Result<Arc<dyn EphemeralStore>, StartError> {
    match &config.redis_url {
        Some(url) => {
            let store = FailoverStore::connect(url.expose())
                .await
                .map_err(|e| StartError::Redis {
                    url: redact_url(url.expose()),
                    reason: store_reason(&e),
                })?;
            Ok(Arc::new(store))
        }
        None => Ok(Arc::new(MemoryStore::new())),
    }
}

/// The master key: configured, or (embedded default only) read from or generated into
/// `data_dir/master.key`. It seals signing keys and keys the refresh-token successor HMAC.
pub fn master_key_bytes(config: &Config) -> Result<[u8; 32], StartError> {
    Ok(match &config.master_key {
        Some(key) => decode_master_key(key.expose())?,
        None if config.uses_embedded_database() => {
            let path = config.data_dir.join("master.key");
            ensure_dir(&config.data_dir)?;
            load_or_create_master_key_file(&path)?
        }
        None => return Err(StartError::MasterKeyRequired),
    })
}

/// The password pepper: configured, or derived from the master key (HKDF-SHA256 with a
/// purpose label, so it is independent of the key's other uses).
pub fn pepper_bytes(config: &Config, master: &[u8; 32]) -> Result<Vec<u8>, StartError> {
    if let Some(pepper) = &config.pepper {
        return base64::engine::general_purpose::STANDARD
            .decode(pepper.expose().trim())
            .map_err(|_| StartError::Passwords("`pepper` is not base64".to_owned()));
    }
    use aws_lc_rs::hkdf;
    struct Len32;
    impl hkdf::KeyType for Len32 {
        fn len(&self) -> usize {
            32
        }
    }
    let prk = hkdf::Salt::new(hkdf::HKDF_SHA256, b"tessera").extract(master);
    let mut out = vec![0u8; 32];
    prk.expand(&[b"password-pepper-v1"], Len32)
        .and_then(|okm| okm.fill(&mut out))
        .map_err(|_| StartError::Passwords("cannot derive the pepper".to_owned()))?;
    Ok(out)
}

/// Opens the key ring (creating the first keys on a fresh database).
pub async fn open_keys(config: &Config, db: &SqlStore, clock: Arc<dyn Clock>) -> Result<KeyRing, StartError> {
    let store: Arc<dyn KeyStore> = Arc::new(db.clone());
    let policy = RotationPolicy {
        prepublish_secs: secs(config.keys.prepublish_secs),
        retire_window_secs: secs(config.keys.retire_window_secs),
    };
    let master = MasterKey::new(&master_key_bytes(config)?)?;
    Ok(KeyRing::open(store, master, clock, policy).await?)
}

/// A started node: stores open, keys loaded, background work running.
pub struct Node {
    state: AppState,
    background: Vec<JoinHandle<()>>,
}

impl Node {
    /// Starts a node on the system clock, sending its outbound HTTP (back-channel logout,
    /// the alerts webhook) through `outbound`.
    pub async fn start(config: Config, outbound: Arc<dyn Outbound>) -> Result<Node, StartError> {
        Node::start_with_clock(config, Arc::new(SystemClock), outbound).await
    }

    /// Starts a node whose notion of time is `clock` (tests move it by hand).
    pub async fn start_with_clock(
        mut config: Config,
        clock: Arc<dyn Clock>,
        outbound: Arc<dyn Outbound>,
    ) -> Result<Node, StartError> {
        config.validate()?;
        // `Config::load` read them already; a configuration built in code reads them here.
        config
            .federation
            .resolve_secrets(&std::env::vars().collect::<Vec<_>>())?;
        if config.metrics.enabled {
            // Once per process; later nodes (tests start many) share the recorder.
            crate::telemetry::install();
        }
        if config.master_key.is_none() && config.uses_embedded_database() {
            tracing::warn!(
                path = %config.data_dir.join("master.key").display(),
                "no master_key configured: using a generated key file; this is for a single development node only"
            );
        }
        let db = open_database(&config).await?;
        let ephemeral = open_ephemeral(&config).await?;
        let keys = Arc::new(open_keys(&config, &db, clock.clone()).await?);
        let master = master_key_bytes(&config)?;
        let successors = SuccessorKey::from_master(&master);
        let hasher = Arc::new(
            PasswordHasher::new(&pepper_bytes(&config, &master)?, &config.passwords)
                .map_err(|e| StartError::Passwords(e.to_string()))?,
        );
        let mailer = Mailer::from_config(&config).map_err(|e| StartError::Mail(e.to_string()))?;
        let config = Arc::new(config);
        let dpop = Arc::new(crate::dpop::Dpop::new(
            config.clone(),
            ephemeral.clone(),
            clock.clone(),
            &master,
        ));
        let shared = Arc::new(db.clone());
        let audit = Auditor::new(shared.clone(), clock.clone());
        let cluster = Arc::new(Cluster::new(shared.clone(), clock.clone()));
        // Count this node in before it serves, so the cluster size is known from the start.
        if let Err(err) = cluster.heartbeat().await {
            tracing::warn!(error = %err, "first heartbeat failed");
        }
        let authz = Arc::new(Authz::new(shared.clone(), audit.clone(), clock.clone()));
        let tokens = Arc::new(TokenService::new(TokenServiceParts {
            config: config.clone(),
            keys: keys.clone(),
            sessions: shared.clone(),
            revocations: shared.clone(),
            sso: shared.clone(),
            ephemeral: ephemeral.clone(),
            audit: audit.clone(),
            clock: clock.clone(),
            successors,
            users: shared.clone(),
            authz: authz.clone(),
        }));
        let alerts = Arc::new(Alerts::new(AlertsParts {
            config: config.clone(),
            users: shared.clone(),
            devices: shared.clone(),
            ephemeral: ephemeral.clone(),
            mailer: mailer.clone(),
            audit: audit.clone(),
            clock: clock.clone(),
            outbound: outbound.clone(),
        }));
        let throttle = Throttle::new(ephemeral.clone(), config.login.clone(), cluster.clone());
        let mfa = Arc::new(Mfa::new(MfaParts {
            config: config.clone(),
            users: shared.clone(),
            store: shared.clone(),
            ephemeral: ephemeral.clone(),
            master_key: MasterKey::new(&master)?,
            throttle: throttle.clone(),
            mailer: mailer.clone(),
            sms: SmsSender::from_config(&config, outbound.clone()),
            audit: audit.clone(),
            clock: clock.clone(),
        }));
        let api_keys = Arc::new(ApiKeys::new(ApiKeysParts {
            store: shared.clone(),
            users: shared.clone(),
            clients: shared.clone(),
            authz: authz.clone(),
            tokens: tokens.clone(),
            audit: audit.clone(),
            clock: clock.clone(),
            issuer: config.issuer().into(),
        }));
        let accounts = Arc::new(Accounts::new(AccountsParts {
            config: config.clone(),
            users: shared.clone(),
            clients: shared.clone(),
            hasher,
            mailer,
            tokens: tokens.clone(),
            throttle: throttle.clone(),
            alerts: alerts.clone(),
            mfa: mfa.clone(),
            authz: authz.clone(),
            api_keys: api_keys.clone(),
            audit: audit.clone(),
            clock: clock.clone(),
        }));
        accounts
            .ensure_first_party_client()
            .await
            .map_err(|e| StartError::Database {
                url: redact_url(&config.database_url()),
                reason: store_reason(&e),
            })?;
        for app in &crate::accounts::HOSTED_APPS {
            accounts
                .ensure_hosted_app_client(app)
                .await
                .map_err(|e| StartError::Database {
                    url: redact_url(&config.database_url()),
                    reason: store_reason(&e),
                })?;
        }
        let provider = Arc::new(Provider::new(ProviderParts {
            config: config.clone(),
            keys: keys.clone(),
            clients: shared.clone(),
            store: shared.clone(),
            users: shared.clone(),
            tokens: tokens.clone(),
            ephemeral: ephemeral.clone(),
            outbox: shared.clone(),
            audit: audit.clone(),
            clock: clock.clone(),
            outbound: outbound.clone(),
            throttle,
        }));
        let client_auth = Arc::new(ClientAuth::new(ClientAuthParts {
            config: config.clone(),
            clients: shared.clone(),
            ephemeral: ephemeral.clone(),
            clock: clock.clone(),
            outbound: outbound.clone(),
            secrets: Arc::new(SecretSeal::new(&master)?),
        }));
        let federation = Arc::new(Federation::new(FederationParts {
            config: config.clone(),
            issuer: config.issuer().into(),
            outbound,
            ephemeral: ephemeral.clone(),
            store: shared.clone(),
            users: shared.clone(),
            audit: audit.clone(),
            clock: clock.clone(),
        }));
        let state = AppState {
            issuer: config.issuer().into(),
            config,
            db,
            keys,
            ephemeral,
            clock,
            clients: shared.clone(),
            client_auth,
            revocations: shared,
            tokens,
            accounts,
            alerts,
            mfa,
            authz,
            api_keys,
            provider,
            dpop,
            federation,
            audit,
            cluster: cluster.clone(),
        };
        let mut background = vec![
            tokio::spawn(reload_keys_periodically(state.clone())),
            tokio::spawn(reload_keys_on_announcement(state.clone())),
            tokio::spawn(cluster::heartbeat_periodically(cluster.clone())),
            tokio::spawn(clean_up_periodically(state.clone())),
            tokio::spawn(deliver_backchannel_periodically(state.clone())),
            tokio::spawn(flush_api_key_uses_periodically(state.clone())),
        ];
        if state.config.keys.rotate_after_secs > 0 {
            background.push(tokio::spawn(rotate_keys_periodically(state.clone())));
        }
        if state.config.metrics.enabled {
            background.push(tokio::spawn(crate::telemetry::refresh_gauges_periodically(
                state.clone(),
            )));
        }
        Ok(Node { state, background })
    }

    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Leaves the cluster (releasing this node's leases at once) and closes the database
    /// pool: the end of a graceful stop, after the last request was answered.
    pub async fn stop(self) {
        if let Err(err) = self.state.api_keys.flush_uses().await {
            tracing::warn!(error = %err, "cannot record the last uses of API keys");
        }
        self.state.cluster.leave(LEASES).await;
        self.state.db.close().await;
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        for task in &self.background {
            task.abort();
        }
    }
}

/// Writes API-key uses in batches: the check endpoint only notes them in memory.
async fn flush_api_key_uses_periodically(state: AppState) {
    let mut interval = tokio::time::interval(API_KEY_USES_FLUSH);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        interval.tick().await;
        if let Err(err) = state.api_keys.flush_uses().await {
            tracing::warn!(error = %err, "cannot record the last uses of API keys; retrying");
        }
    }
}

async fn reload_keys_periodically(state: AppState) {
    let mut interval = tokio::time::interval(Duration::from_secs(state.config.keys.reload_secs));
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    interval.tick().await;
    loop {
        interval.tick().await;
        if let Err(err) = state.keys.reload().await {
            // The last loaded key set stays in use.
            tracing::warn!(error = %err, "reloading signing keys failed");
        }
    }
}

async fn reload_keys_on_announcement(state: AppState) {
    loop {
        match state.ephemeral.subscribe(KEYS_CHANGED_CHANNEL).await {
            Ok(mut messages) => {
                while messages.next().await.is_some() {
                    if let Err(err) = state.keys.reload().await {
                        tracing::warn!(error = %err, "reloading signing keys failed");
                    }
                }
            }
            Err(err) => tracing::debug!(error = %err, "cannot subscribe to key announcements"),
        }
        // The subscription ended (Redis restarted); the periodic reload covers the gap.
        tokio::time::sleep(Duration::from_secs(5)).await;
    }
}

/// The leases of the background jobs that run on one node at a time.
const CLEANUP_LEASE: &str = "cleanup";
const KEY_ROTATION_LEASE: &str = "key-rotation";
const BACKCHANNEL_LEASE: &str = "backchannel-logout";
const LEASES: &[&str] = &[CLEANUP_LEASE, KEY_ROTATION_LEASE, BACKCHANNEL_LEASE];

/// Deletes what has expired — refresh tokens, ended sessions past retention, feed entries,
/// old audit records, keys long out of JWKS — so no table grows without bound. One node at
/// a time (a lease).
async fn clean_up_periodically(state: AppState) {
    let every = Duration::from_secs(state.config.sessions.cleanup_interval_secs);
    let cluster = state.cluster.clone();
    cluster::run_leased(cluster, CLEANUP_LEASE, every, || async {
        if let Err(err) = clean_up_once(&state).await {
            tracing::warn!(error = %err, "clean-up pass failed; the next one will retry");
        }
    })
    .await;
}

/// Seconds between checks of whether a signing key is due for rotation.
const KEY_ROTATION_CHECK_SECS: u64 = 60;
/// How often recorded API-key uses are written (one transaction per flush).
const API_KEY_USES_FLUSH: Duration = Duration::from_secs(10);

/// Rotates each algorithm's signing key once it is `keys.rotate_after_secs` old (one node
/// at a time, under a lease), and tells the other nodes to reload.
async fn rotate_keys_periodically(state: AppState) {
    let every = Duration::from_secs(KEY_ROTATION_CHECK_SECS);
    let cluster = state.cluster.clone();
    cluster::run_leased(cluster, KEY_ROTATION_LEASE, every, || async {
        if let Err(err) = rotate_due_keys(&state).await {
            tracing::warn!(error = %err, "scheduled key rotation failed; the next check retries");
        }
    })
    .await;
}

/// One scheduled-rotation check (also run by tests): rotates, audits and announces every
/// algorithm whose newest key is at least `keys.rotate_after_secs` old (see
/// [`crate::keys::rotate_due_keys`]). Returns how many keys were created.
pub async fn rotate_due_keys(state: &AppState) -> Result<usize, KeyError> {
    let max_age = secs(state.config.keys.rotate_after_secs);
    let created =
        crate::keys::rotate_due_keys(&state.keys, state.ephemeral.as_ref(), &state.audit, max_age).await?;
    for key in &created {
        tracing::info!(kid = %key.kid, alg = %key.alg, "rotated a signing key on schedule");
    }
    Ok(created.len())
}

/// Delivers back-channel logout notifications that are due (first attempts that failed on
/// any node, and those whose node died before trying), one node at a time.
async fn deliver_backchannel_periodically(state: AppState) {
    let cluster = state.cluster.clone();
    let every = Duration::from_secs(1);
    cluster::run_leased(cluster, BACKCHANNEL_LEASE, every, || async {
        if let Err(err) = state.provider.deliver_due_backchannel().await {
            tracing::warn!(error = %err, "back-channel logout delivery pass failed; the next one retries");
        }
    })
    .await;
}

/// One clean-up pass (also run by tests).
pub async fn clean_up_once(state: &AppState) -> Result<(), StoreError> {
    let now = state.clock.now();
    let purged = state
        .db
        .purge_expired(
            now,
            secs(state.config.sessions.retention_secs),
            secs(state.config.audit.retention_secs),
        )
        .await?;
    // Keys leave JWKS at their expiry; keep the rows a day longer for `keys list`.
    let keys = state.db.prune_keys(now - 86_400).await?;
    let known_devices = state.alerts.purge_known_devices().await?;
    if purged != Default::default() || keys > 0 || known_devices > 0 {
        tracing::info!(
            refresh_tokens = purged.refresh_tokens,
            sessions = purged.sessions,
            revocations = purged.revocations,
            audit_records = purged.audit_records,
            one_time_tokens = purged.one_time_tokens,
            authorization_codes = purged.authorization_codes,
            sso_sessions = purged.sso_sessions,
            keys,
            known_devices,
            "cleaned up expired rows"
        );
    }
    Ok(())
}

fn ensure_dir(path: &Path) -> Result<(), StartError> {
    std::fs::create_dir_all(path).map_err(|e| StartError::DataDir {
        path: path.display().to_string(),
        reason: e.to_string(),
    })
}

fn load_or_create_master_key_file(path: &PathBuf) -> Result<[u8; 32], StartError> {
    let file_error = |reason: String| StartError::MasterKeyFile {
        path: path.display().to_string(),
        reason,
    };
    match std::fs::read_to_string(path) {
        Ok(text) => decode_master_key(&text).map_err(|e| file_error(e.to_string())),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
            let mut bytes = [0u8; 32];
            aws_lc_rs::rand::fill(&mut bytes).map_err(|_| file_error("no randomness".to_owned()))?;
            let text = base64::engine::general_purpose::STANDARD.encode(bytes);
            write_private_file(path, text.as_bytes()).map_err(|e| file_error(e.to_string()))?;
            Ok(bytes)
        }
        Err(err) => Err(file_error(err.to_string())),
    }
}

/// Creates `path` readable by its owner only; fails if it already exists (two processes
/// racing to create a key must not overwrite each other's).
fn write_private_file(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    file.write_all(contents)?;
    file.sync_all()
}

/// A database or Redis URL with its password removed, for error messages.
pub fn redact_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) => {
            if parsed.password().is_some() {
                let _ = parsed.set_password(Some("***"));
            }
            parsed.to_string()
        }
        Err(_) => "<unparseable url>".to_owned(),
    }
}

fn store_reason(err: &StoreError) -> String {
    match err {
        StoreError::Unavailable(reason)
        | StoreError::Migration(reason)
        | StoreError::UnsupportedUrl(reason) => reason.clone(),
        other => other.to_string(),
    }
}

fn secs(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_removed_from_urls() {
        assert_eq!(
            redact_url("postgres://app:hunter2@db:5432/idp"),
            "postgres://app:***@db:5432/idp"
        );
        assert_eq!(redact_url("redis://127.0.0.1:6379"), "redis://127.0.0.1:6379");
    }
}
