//! `tessera apikey create|list|revoke`: partner API keys (R27) from the command line, over
//! the same service layer as the admin API ([`tessera_idp::apikeys::ApiKeys`]), audited with
//! `operator` as actor.

use clap::{Args, Subcommand};
use tessera_idp::accounts::OPERATOR;
use tessera_idp::apikeys::{ApiKeySpec, ApiKeyView, Grantor};
use tessera_idp::audit::RequestContext;
use tessera_idp::config::Config;
use tessera_idp::state::AppState;
use tessera_store::durable::ApiKeyOwner;

type CmdResult = Result<(), Box<dyn std::error::Error>>;

/// Whose keys: a user by e-mail, or a confidential client by id.
#[derive(Args)]
#[group(required = true, multiple = false)]
pub struct Owner {
    /// The user (e-mail address) the key acts for.
    #[arg(long, value_name = "EMAIL")]
    user: Option<String>,
    /// The confidential client the key acts for.
    #[arg(long, value_name = "CLIENT_ID")]
    client: Option<String>,
}

#[derive(Subcommand)]
pub enum ApiKeyCommand {
    /// Create a key and print it once (only its hash is kept).
    Create {
        #[command(flatten)]
        owner: Owner,
        /// What the key is for ("billing export").
        #[arg(long)]
        name: String,
        /// An OAuth scope it carries (repeatable; a client's key: scopes registered for it).
        #[arg(long = "scope", value_name = "S")]
        scopes: Vec<String>,
        /// A permission it carries, granted by the user's roles (repeatable; users only).
        #[arg(long = "permission", value_name = "P")]
        permissions: Vec<String>,
        /// Days until it expires (default 90, at most 730).
        #[arg(long = "expires-in-days", value_name = "DAYS")]
        expires_in_days: Option<u32>,
        /// An address or CIDR range it may be used from (repeatable; default: any).
        #[arg(long = "allow-ip", value_name = "CIDR")]
        allowed_ips: Vec<String>,
        #[arg(long)]
        json: bool,
    },
    /// List an account's keys: prefix, name, status, last use, expiry (never a secret).
    List {
        #[command(flatten)]
        owner: Owner,
        #[arg(long)]
        json: bool,
    },
    /// Revoke a key by id (the part after `tsk_`, as listed): verifiers refuse it within
    /// their revocation poll interval.
    Revoke { id: String },
}

async fn owner(state: &AppState, owner: Owner) -> Result<ApiKeyOwner, Box<dyn std::error::Error>> {
    match (owner.user, owner.client) {
        (Some(email), _) => {
            let user = state
                .accounts
                .user_by_email(&email)
                .await?
                .ok_or_else(|| format!("no user {email}"))?;
            Ok(ApiKeyOwner::User(user.id))
        }
        (None, Some(client)) => Ok(ApiKeyOwner::Client(client)),
        (None, None) => Err("give --user or --client".into()),
    }
}

fn when(at: Option<i64>) -> String {
    at.map_or_else(|| "-".to_owned(), |at| at.to_string())
}

fn print_key(key: &ApiKeyView) {
    println!("id            {}", key.id);
    println!("prefix        {}", key.prefix);
    println!("name          {}", key.name);
    println!("owner         {} {}", key.owner_type, key.owner_id);
    println!("scopes        {}", key.scopes.join(" "));
    println!("permissions   {}", key.permissions.join(" "));
    println!("allowed_ips   {}", key.allowed_ips.join(" "));
    println!("status        {}", key.status);
    println!("expires_at    {}", key.expires_at);
    println!("last_used_at  {}", when(key.last_used_at));
}

pub async fn apikey(config: Config, command: ApiKeyCommand) -> CmdResult {
    let node = tessera_web::start(config).await?;
    let state = node.state();
    let context = RequestContext::default();
    match command {
        ApiKeyCommand::Create {
            owner: who,
            name,
            scopes,
            permissions,
            expires_in_days,
            allowed_ips,
            json,
        } => {
            let owner = owner(state, who).await?;
            let expires_at = expires_in_days.map(|days| {
                state
                    .clock
                    .now()
                    .saturating_add(i64::from(days).saturating_mul(86_400))
            });
            let spec = ApiKeySpec {
                name,
                scopes,
                permissions,
                expires_at,
                allowed_ips,
            };
            let created = state
                .api_keys
                .create(&owner, spec, Grantor::Operator, OPERATOR, &context)
                .await?;
            if json {
                let mut value = serde_json::to_value(&created.view)?;
                value["api_key"] = serde_json::Value::from(created.key.secret());
                println!("{}", serde_json::to_string_pretty(&value)?);
            } else {
                println!("api_key       {}", created.key.secret());
                print_key(&created.view);
                eprintln!("the key is shown this once: store it now");
            }
        }
        ApiKeyCommand::List { owner: who, json } => {
            let owner = owner(state, who).await?;
            let keys = state.api_keys.list(&owner).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&keys)?);
            } else if keys.is_empty() {
                println!("no API keys");
            } else {
                println!(
                    "{:<27} {:<24} {:<8} {:<12} {:<12} SCOPES/PERMISSIONS",
                    "PREFIX", "NAME", "STATUS", "LAST_USED", "EXPIRES"
                );
                for key in keys {
                    let mut grants = key.scopes.clone();
                    grants.extend(key.permissions.iter().cloned());
                    println!(
                        "{:<27} {:<24} {:<8} {:<12} {:<12} {}",
                        key.prefix,
                        key.name,
                        key.status,
                        when(key.last_used_at),
                        key.expires_at,
                        grants.join(" ")
                    );
                }
            }
        }
        ApiKeyCommand::Revoke { id } => {
            let id = id
                .strip_prefix(tessera_idp::apikeys::API_KEY_PREFIX)
                .unwrap_or(&id);
            let key = state.api_keys.revoke(id, None, OPERATOR, &context).await?;
            println!("revoked API key {} ({})", key.prefix, key.name);
        }
    }
    node.stop().await;
    Ok(())
}
