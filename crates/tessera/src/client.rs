//! `tessera client …`: the OAuth client registry from the command line, over the same
//! service layer as the admin API ([`tessera_idp::registry::ClientRegistry`]).

use std::sync::Arc;

use clap::Subcommand;
use tessera_idp::audit::Auditor;
use tessera_idp::clients::SecretSeal;
use tessera_idp::clock::{Clock, SystemClock};
use tessera_idp::node::{master_key_bytes, open_database};
use tessera_idp::registry::{ClientPatch, ClientRegistry, ClientSpec, ClientView, RegistryError};
use tessera_idp::Config;

type CmdResult = Result<(), Box<dyn std::error::Error>>;

#[derive(Subcommand)]
pub(crate) enum ClientCommand {
    /// Register a client. A confidential client's secret is printed once and stored only
    /// as a hash.
    Create {
        /// A human-readable name (the client id is generated from it unless --client-id).
        #[arg(long)]
        name: String,
        #[command(flatten)]
        fields: ClientFields,
        /// The client id (letters, digits, `.`, `_`, `~`, `-`). Default: generated.
        #[arg(long)]
        client_id: Option<String>,
        /// Print the whole client, with its secret, as JSON.
        #[arg(long)]
        json: bool,
    },
    /// List every client (never a secret).
    List {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Show a client (never its secret or the secret's hash).
    Show {
        /// The client id.
        id: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Change a client: only the given fields change; a repeated list flag replaces the
    /// whole list, and one empty value (`--cors-origin ''`) empties it.
    Update {
        /// The client id.
        id: String,
        /// A new name.
        #[arg(long)]
        name: Option<String>,
        #[command(flatten)]
        fields: ClientFields,
        /// Print the changed client as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Delete a client: its secret stops working at once.
    Delete {
        /// The client id.
        id: String,
    },
    /// Give a confidential client a new secret (printed once); the old one stops working.
    RotateSecret {
        /// The client id.
        id: String,
        /// Print `{client_id, client_secret, client_secret_expires_at}` as JSON.
        #[arg(long)]
        json: bool,
    },
}

/// The client fields `client create` and `client update` share.
#[derive(clap::Args)]
pub(crate) struct ClientFields {
    /// A redirect URI, matched exactly (repeatable): https, http on 127.0.0.1/[::1]/localhost,
    /// or a private-use scheme such as com.example.app:/cb.
    #[arg(long = "redirect-uri", value_name = "URI")]
    redirect_uris: Option<Vec<String>>,
    /// Where RP-initiated logout may return (repeatable; same rules as --redirect-uri).
    #[arg(long = "post-logout-redirect-uri", value_name = "URI")]
    post_logout_redirect_uris: Option<Vec<String>>,
    /// authorization_code, refresh_token, client_credentials, password (first-party
    /// only), or urn:ietf:params:oauth:grant-type:device_code (TVs and command-line tools).
    /// Repeatable. Default: authorization_code.
    #[arg(long = "grant", value_name = "GRANT")]
    grants: Option<Vec<String>>,
    /// The scopes the client may request, space-separated. Default: "openid".
    #[arg(long)]
    scope: Option<String>,
    /// A public client (browser or native app): no secret, authenticates with `none`.
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true", value_name = "BOOL")]
    public: Option<bool>,
    /// A first-party client: skips the consent page; may use the password grant.
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true", value_name = "BOOL")]
    first_party: Option<bool>,
    /// The channel its sessions belong to (web, mobile, partner, or a configured one).
    #[arg(long)]
    channel: Option<String>,
    /// A browser origin allowed to call the token endpoints (repeatable), scheme://host[:port].
    #[arg(long = "cors-origin", value_name = "ORIGIN")]
    cors_origins: Option<Vec<String>>,
    /// Where back-channel logout tokens are posted (https; '' clears it on update).
    #[arg(long, value_name = "URI")]
    backchannel_logout_uri: Option<String>,
    /// Access-token lifetime in seconds, or `default`.
    #[arg(long, value_name = "SECS", value_parser = parse_ttl)]
    access_token_ttl: Option<Ttl>,
    /// Refresh-token (session) lifetime in seconds, or `default`.
    #[arg(long, value_name = "SECS", value_parser = parse_ttl)]
    refresh_token_ttl: Option<Ttl>,
    /// Who must pass a second factor signing in to this client: off, optional, adaptive, required,
    /// or `default` (the deployment's mfa.policy).
    #[arg(long, value_name = "POLICY")]
    mfa_policy: Option<String>,
    /// Authorization requests must be pushed to /oauth2/par first (RFC 9126).
    #[arg(long = "require-par", num_args = 0..=1, require_equals = true, default_missing_value = "true", value_name = "BOOL")]
    require_par: Option<bool>,
    /// client_secret_basic (default), client_secret_post, client_secret_jwt or
    /// private_key_jwt (with --jwks or --jwks-uri); `none` for a public client.
    #[arg(long, value_name = "METHOD")]
    auth_method: Option<String>,
    /// The one algorithm its client assertions are signed with (RS256, PS256, ES256, EdDSA,
    /// … for private_key_jwt; HS256, HS384, HS512 for client_secret_jwt), or `default` (any).
    #[arg(long, value_name = "ALG")]
    auth_signing_alg: Option<String>,
    /// private_key_jwt: a file holding its public keys, a JWK set ('' clears it on update).
    #[arg(long, value_name = "FILE")]
    jwks: Option<std::path::PathBuf>,
    /// private_key_jwt: the https URL where it publishes its JWK set ('' clears it on update).
    #[arg(long, value_name = "URI")]
    jwks_uri: Option<String>,
    /// The algorithm of its request objects: none, an asymmetric one (with --jwks or
    /// --jwks-uri), or HS256/HS384/HS512 for a client_secret_jwt client; `default`: it sends
    /// none (`request` is refused).
    #[arg(long, value_name = "ALG")]
    request_object_alg: Option<String>,
}

/// The JWK set in the file `path`; `None` for an empty path (clears the keys on update).
fn read_jwks(path: &std::path::Path) -> Result<Option<serde_json::Value>, Box<dyn std::error::Error>> {
    if path.as_os_str().is_empty() {
        return Ok(None);
    }
    let text =
        std::fs::read_to_string(path).map_err(|e| format!("cannot read --jwks {}: {e}", path.display()))?;
    let document =
        serde_json::from_str(&text).map_err(|e| format!("--jwks {} is not JSON: {e}", path.display()))?;
    Ok(Some(document))
}

/// A lifetime flag: seconds, or `default` (the configured lifetime).
#[derive(Clone, Copy)]
pub(crate) struct Ttl(Option<i64>);

fn parse_ttl(text: &str) -> Result<Ttl, String> {
    if text == "default" {
        return Ok(Ttl(None));
    }
    text.parse::<i64>()
        .map(|secs| Ttl(Some(secs)))
        .map_err(|_| "expected a number of seconds or `default`".to_owned())
}

/// A list flag as given: one empty value means an empty list.
fn list_flag(values: Option<Vec<String>>) -> Option<Vec<String>> {
    values.map(|list| list.into_iter().filter(|v| !v.is_empty()).collect())
}

impl ClientFields {
    fn into_spec(
        self,
        name: String,
        client_id: Option<String>,
    ) -> Result<ClientSpec, Box<dyn std::error::Error>> {
        let jwks = match &self.jwks {
            Some(path) => read_jwks(path)?,
            None => None,
        };
        Ok(ClientSpec {
            client_id,
            client_name: Some(name),
            redirect_uris: list_flag(self.redirect_uris).unwrap_or_default(),
            grant_types: list_flag(self.grants),
            scope: self.scope,
            token_endpoint_auth_method: self.auth_method,
            token_endpoint_auth_signing_alg: self.auth_signing_alg.filter(|a| a != "default"),
            jwks,
            jwks_uri: self.jwks_uri.filter(|u| !u.is_empty()),
            request_object_signing_alg: self.request_object_alg.filter(|a| a != "default"),
            post_logout_redirect_uris: list_flag(self.post_logout_redirect_uris).unwrap_or_default(),
            backchannel_logout_uri: self.backchannel_logout_uri.filter(|u| !u.is_empty()),
            allowed_cors_origins: list_flag(self.cors_origins).unwrap_or_default(),
            first_party: self.first_party.unwrap_or(false),
            channel: self.channel,
            access_token_ttl_secs: self.access_token_ttl.and_then(|t| t.0),
            refresh_token_ttl_secs: self.refresh_token_ttl.and_then(|t| t.0),
            mfa_policy: self.mfa_policy.filter(|p| p != "default"),
            require_pushed_authorization_requests: self.require_par.unwrap_or(false),
            public: self.public.unwrap_or(false),
        })
    }

    fn into_patch(self, name: Option<String>) -> Result<ClientPatch, Box<dyn std::error::Error>> {
        let jwks = match &self.jwks {
            Some(path) => Some(read_jwks(path)?),
            None => None,
        };
        Ok(ClientPatch {
            client_id: None,
            client_name: name,
            redirect_uris: list_flag(self.redirect_uris),
            grant_types: list_flag(self.grants),
            scope: self.scope,
            token_endpoint_auth_method: self.auth_method,
            token_endpoint_auth_signing_alg: self
                .auth_signing_alg
                .map(|a| Some(a).filter(|a| a != "default")),
            jwks,
            jwks_uri: self.jwks_uri.map(|u| Some(u).filter(|u| !u.is_empty())),
            request_object_signing_alg: self
                .request_object_alg
                .map(|a| Some(a).filter(|a| a != "default")),
            post_logout_redirect_uris: list_flag(self.post_logout_redirect_uris),
            backchannel_logout_uri: self
                .backchannel_logout_uri
                .map(|u| Some(u).filter(|u| !u.is_empty())),
            allowed_cors_origins: list_flag(self.cors_origins),
            first_party: self.first_party,
            channel: self.channel,
            access_token_ttl_secs: self.access_token_ttl.map(|t| t.0),
            refresh_token_ttl_secs: self.refresh_token_ttl.map(|t| t.0),
            mfa_policy: self.mfa_policy.map(|p| Some(p).filter(|p| p != "default")),
            require_pushed_authorization_requests: self.require_par,
            public: self.public,
        })
    }
}

/// A registry error for the command line, naming the client it did not find.
fn not_found(id: &str) -> impl FnOnce(RegistryError) -> Box<dyn std::error::Error> + '_ {
    move |err| match err {
        RegistryError::NotFound => format!("no such client {id:?}").into(),
        other => other.into(),
    }
}

/// Prints a client (and a secret just issued): JSON, or one `field value` line per field.
fn print_client(view: &ClientView, secret: Option<&str>, json: bool) -> CmdResult {
    if json {
        println!("{}", serde_json::to_string_pretty(&view.with_secret(secret))?);
    } else {
        for (key, value) in view.fields() {
            println!("{key:<26} {value}");
        }
    }
    Ok(())
}

pub(crate) async fn client(config: Config, command: ClientCommand) -> CmdResult {
    let db = Arc::new(open_database(&config).await?);
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let audit = Auditor::new(db.clone(), clock.clone());
    let secrets = Arc::new(SecretSeal::new(&master_key_bytes(&config)?)?);
    let registry = ClientRegistry::from_parts(db, secrets, clock, audit, config.channels());
    match command {
        ClientCommand::Create {
            name,
            fields,
            client_id,
            json,
        } => {
            let (record, secret) = registry.create(fields.into_spec(name, client_id)?).await?;
            if json {
                print_client(&ClientView::from(&record), secret.as_deref(), true)?;
            } else {
                println!("client_id      {}", record.client_id);
                if let Some(secret) = &secret {
                    println!("client_secret  {secret}");
                }
            }
            if secret.is_some() {
                eprintln!("note: the client secret is shown only this once; store it now");
            }
        }
        ClientCommand::List { json } => {
            let clients = registry.list().await?;
            if json {
                let views: Vec<ClientView> = clients.iter().map(ClientView::from).collect();
                println!("{}", serde_json::to_string_pretty(&views)?);
                return Ok(());
            }
            println!(
                "{:<32}  {:<12}  {:<8}  {:<40}  NAME",
                "CLIENT ID", "TYPE", "CHANNEL", "GRANTS"
            );
            for c in &clients {
                println!(
                    "{:<32}  {:<12}  {:<8}  {:<40}  {}",
                    c.client_id,
                    if !c.is_public() { "confidential" } else { "public" },
                    c.channel,
                    c.grant_types.join(","),
                    c.name
                );
            }
        }
        ClientCommand::Show { id, json } => {
            let record = registry.get(&id).await.map_err(not_found(&id))?;
            print_client(&ClientView::from(&record), None, json)?;
        }
        ClientCommand::Update {
            id,
            name,
            fields,
            json,
        } => {
            let record = registry
                .update(&id, fields.into_patch(name)?)
                .await
                .map_err(not_found(&id))?;
            print_client(&ClientView::from(&record), None, json)?;
        }
        ClientCommand::Delete { id } => {
            registry.delete(&id).await.map_err(not_found(&id))?;
            println!("deleted {id}");
        }
        ClientCommand::RotateSecret { id, json } => {
            let secret = registry.rotate_secret(&id).await.map_err(not_found(&id))?;
            if json {
                let shown = serde_json::json!({
                    "client_id": id, "client_secret": secret, "client_secret_expires_at": 0,
                });
                println!("{}", serde_json::to_string_pretty(&shown)?);
            } else {
                println!("client_secret  {secret}");
            }
            eprintln!("note: the new secret is shown only this once; the old one no longer works");
        }
    }
    Ok(())
}
