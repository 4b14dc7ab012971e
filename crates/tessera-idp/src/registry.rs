//! The client registry: registering, changing and removing OAuth clients, one service layer
//! under both `tessera client …` and the admin API (`/admin/clients`).
//!
//! Every write validates the whole client first and stores nothing invalid: redirect URIs
//! are exact, absolute, fragment-free and wildcard-free (https; http only on a loopback
//! host; a reverse-domain private-use scheme for native apps, RFC 8252 §7.1), CORS entries
//! are origins, grant types are the ones Tessera offers (the password grant only for
//! first-party clients), public clients have no secret and no client-credentials grant.
//! Secrets are generated here, stored as a hash, and handed back once; a `client_secret_jwt`
//! client's secret is also kept sealed with the master key (an HMAC needs the secret
//! itself). A `private_key_jwt` client has no secret: it registers its public keys.

use std::sync::Arc;

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{json, Value};
use tessera_store::durable::{ClientRecord, ClientStore};
use tessera_store::StoreError;

use crate::accounts::{FIRST_PARTY_CLIENT, HOSTED_APPS};
use crate::audit::{AuditEvent, Auditor, RequestContext};
use crate::clients::{needs_sealed_secret, new_client_secret, SecretSeal};
use crate::clock::Clock;
use crate::state::AppState;
use tessera_proto::client_auth::CLIENT_SECRET_JWT;

mod rules;

use rules::generated_client_id;
pub use rules::{validate, ValidClient};

/// The grant types a client may register.
pub const GRANT_TYPES: [&str; 5] = [
    "authorization_code",
    "refresh_token",
    "client_credentials",
    "password",
    tessera_proto::DEVICE_CODE_GRANT,
];
/// The scope an access token needs for the admin API (`/admin/*`); only clients whose
/// registered scopes include it can obtain it, through the client-credentials grant.
pub const ADMIN_SCOPE: &str = "tessera:admin";
/// The channel of a client that names none.
pub const DEFAULT_CHANNEL: &str = "web";
/// The scope of a client that names none.
pub const DEFAULT_SCOPE: &str = "openid";

/// Why a registry operation failed.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// The client metadata is not acceptable; `field` is its RFC 7591 name.
    #[error("invalid {field}: {reason}")]
    Invalid { field: &'static str, reason: String },
    #[error("no such client")]
    NotFound,
    #[error("client id {0:?} is already registered")]
    Conflict(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl RegistryError {
    fn invalid(field: &'static str, reason: impl Into<String>) -> Self {
        RegistryError::Invalid {
            field,
            reason: reason.into(),
        }
    }
}

/// A client to register, with the names of OAuth 2.0 Dynamic Client Registration (RFC 7591)
/// and Tessera's own fields. Absent fields take their defaults.
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ClientSpec {
    /// Generated from the name when absent.
    #[serde(default)]
    pub client_id: Option<String>,
    #[serde(default)]
    pub client_name: Option<String>,
    #[serde(default)]
    pub redirect_uris: Vec<String>,
    /// Default `["authorization_code"]` (RFC 7591 §2).
    #[serde(default)]
    pub grant_types: Option<Vec<String>>,
    /// Space-separated; default `openid`.
    #[serde(default)]
    pub scope: Option<String>,
    /// `none` for public clients; `client_secret_basic` (default), `client_secret_post`,
    /// `client_secret_jwt` or `private_key_jwt`.
    #[serde(default)]
    pub token_endpoint_auth_method: Option<String>,
    /// The one algorithm its client assertions are signed with (`private_key_jwt`: RS256,
    /// PS256, ES256, EdDSA, …; `client_secret_jwt`: HS256, HS384, HS512); absent: any of them.
    #[serde(default)]
    pub token_endpoint_auth_signing_alg: Option<String>,
    /// `private_key_jwt`: its public keys, a JWK set (`{"keys": [...]}`).
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub jwks: Option<Value>,
    /// `private_key_jwt`: the https URL where it publishes its JWK set.
    #[serde(default)]
    pub jwks_uri: Option<String>,
    /// The algorithm of its request objects (`request`, OpenID Connect Core §6.1): `none`,
    /// an asymmetric algorithm (with `jwks` or `jwks_uri`), or an HMAC (client_secret_jwt
    /// clients). Absent: it sends none, and `request` is refused.
    #[serde(default)]
    pub request_object_signing_alg: Option<String>,
    #[serde(default)]
    pub post_logout_redirect_uris: Vec<String>,
    #[serde(default)]
    pub backchannel_logout_uri: Option<String>,
    #[serde(default)]
    pub allowed_cors_origins: Vec<String>,
    #[serde(default)]
    pub first_party: bool,
    /// Default `web`.
    #[serde(default)]
    pub channel: Option<String>,
    #[serde(default)]
    pub access_token_ttl_secs: Option<i64>,
    #[serde(default)]
    pub refresh_token_ttl_secs: Option<i64>,
    /// `off`, `optional`, `adaptive` or `required`: who must pass a second factor when signing in to
    /// this client; absent follows the deployment's `mfa.policy`.
    #[serde(default)]
    pub mfa_policy: Option<String>,
    /// Its authorization requests must be pushed to `/oauth2/par` first (RFC 9126 §5).
    #[serde(default)]
    pub require_pushed_authorization_requests: bool,
    /// A public client (a browser or native app) keeps no secret.
    #[serde(default)]
    pub public: bool,
}

/// Changes to a client (a JSON merge patch, RFC 7396): absent fields stay, lists are
/// replaced whole, `null` clears `backchannel_logout_uri` and the lifetimes.
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ClientPatch {
    /// Accepted only when it names the client being changed: ids never change.
    #[serde(default)]
    pub client_id: Option<String>,
    #[serde(default)]
    pub client_name: Option<String>,
    #[serde(default)]
    pub redirect_uris: Option<Vec<String>>,
    #[serde(default)]
    pub grant_types: Option<Vec<String>>,
    #[serde(default)]
    pub scope: Option<String>,
    #[serde(default)]
    pub token_endpoint_auth_method: Option<String>,
    /// `null`: any algorithm the method allows.
    #[serde(default, deserialize_with = "nullable")]
    pub token_endpoint_auth_signing_alg: Option<Option<String>>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<Object>)]
    pub jwks: Option<Option<Value>>,
    #[serde(default, deserialize_with = "nullable")]
    pub jwks_uri: Option<Option<String>>,
    /// `null`: the client sends no request objects.
    #[serde(default, deserialize_with = "nullable")]
    pub request_object_signing_alg: Option<Option<String>>,
    #[serde(default)]
    pub post_logout_redirect_uris: Option<Vec<String>>,
    #[serde(default, deserialize_with = "nullable")]
    pub backchannel_logout_uri: Option<Option<String>>,
    #[serde(default)]
    pub allowed_cors_origins: Option<Vec<String>>,
    #[serde(default)]
    pub first_party: Option<bool>,
    #[serde(default)]
    pub channel: Option<String>,
    #[serde(default, deserialize_with = "nullable")]
    pub access_token_ttl_secs: Option<Option<i64>>,
    #[serde(default, deserialize_with = "nullable")]
    pub refresh_token_ttl_secs: Option<Option<i64>>,
    /// `null` follows the deployment's `mfa.policy` again.
    #[serde(default, deserialize_with = "nullable")]
    pub mfa_policy: Option<Option<String>>,
    #[serde(default)]
    pub require_pushed_authorization_requests: Option<bool>,
    /// Accepted only when unchanged: a client does not switch between public and
    /// confidential (delete it and register it again).
    #[serde(default)]
    pub public: Option<bool>,
}

/// A present field, `null` included, is `Some`; an absent one stays `None` (the default).
fn nullable<'de, D, T>(deserializer: D) -> Result<Option<Option<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(deserializer).map(Some)
}

/// A client as the CLI and the admin API show it: never its secret or the secret's hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct ClientView {
    pub client_id: String,
    pub client_name: String,
    pub public: bool,
    pub token_endpoint_auth_method: String,
    pub token_endpoint_auth_signing_alg: Option<String>,
    /// Its public keys (`private_key_jwt`), when registered inline.
    #[schema(value_type = Option<Object>)]
    pub jwks: Option<Value>,
    pub jwks_uri: Option<String>,
    pub request_object_signing_alg: Option<String>,
    pub grant_types: Vec<String>,
    pub scope: String,
    pub redirect_uris: Vec<String>,
    pub post_logout_redirect_uris: Vec<String>,
    pub backchannel_logout_uri: Option<String>,
    pub allowed_cors_origins: Vec<String>,
    pub first_party: bool,
    pub channel: String,
    pub access_token_ttl_secs: Option<i64>,
    pub refresh_token_ttl_secs: Option<i64>,
    /// `null`: the deployment's `mfa.policy`.
    pub mfa_policy: Option<String>,
    /// `/oauth2/authorize` takes only `request_uri`s from `/oauth2/par` (RFC 9126 §5).
    pub require_pushed_authorization_requests: bool,
    pub created_at: i64,
    pub updated_at: i64,
}

impl From<&ClientRecord> for ClientView {
    fn from(record: &ClientRecord) -> Self {
        ClientView {
            client_id: record.client_id.clone(),
            client_name: record.name.clone(),
            public: record.is_public(),
            token_endpoint_auth_method: record.token_endpoint_auth_method.clone(),
            token_endpoint_auth_signing_alg: record.token_endpoint_auth_signing_alg.clone(),
            jwks: record
                .jwks
                .as_deref()
                .and_then(|jwks| serde_json::from_str(jwks).ok()),
            jwks_uri: record.jwks_uri.clone(),
            request_object_signing_alg: record.request_object_signing_alg.clone(),
            grant_types: record.grant_types.clone(),
            scope: record.scopes.join(" "),
            redirect_uris: record.redirect_uris.clone(),
            post_logout_redirect_uris: record.post_logout_redirect_uris.clone(),
            backchannel_logout_uri: record.backchannel_logout_uri.clone(),
            allowed_cors_origins: record.allowed_cors_origins.clone(),
            first_party: record.first_party,
            channel: record.channel.clone(),
            access_token_ttl_secs: record.access_token_ttl_secs,
            refresh_token_ttl_secs: record.refresh_token_ttl_secs,
            mfa_policy: record.mfa_policy.clone(),
            require_pushed_authorization_requests: record.require_pushed_authorization_requests,
            created_at: record.created_at,
            updated_at: record.updated_at,
        }
    }
}

impl ClientView {
    /// The view with a secret that was just issued, for the one answer that shows it.
    pub fn with_secret<'a>(&'a self, secret: Option<&'a str>) -> Registered<'a> {
        Registered {
            client: self,
            client_secret_expires_at: secret.map(|_| 0),
            client_secret: secret,
        }
    }

    /// Field names and values in the order of the view, for line-by-line output.
    pub fn fields(&self) -> Vec<(&'static str, Value)> {
        vec![
            ("client_id", json!(self.client_id)),
            ("client_name", json!(self.client_name)),
            ("public", json!(self.public)),
            (
                "token_endpoint_auth_method",
                json!(self.token_endpoint_auth_method),
            ),
            (
                "token_endpoint_auth_signing_alg",
                json!(self.token_endpoint_auth_signing_alg),
            ),
            ("jwks", json!(self.jwks)),
            ("jwks_uri", json!(self.jwks_uri)),
            (
                "request_object_signing_alg",
                json!(self.request_object_signing_alg),
            ),
            ("grant_types", json!(self.grant_types)),
            ("scope", json!(self.scope)),
            ("redirect_uris", json!(self.redirect_uris)),
            ("post_logout_redirect_uris", json!(self.post_logout_redirect_uris)),
            ("backchannel_logout_uri", json!(self.backchannel_logout_uri)),
            ("allowed_cors_origins", json!(self.allowed_cors_origins)),
            ("first_party", json!(self.first_party)),
            ("channel", json!(self.channel)),
            ("access_token_ttl_secs", json!(self.access_token_ttl_secs)),
            ("refresh_token_ttl_secs", json!(self.refresh_token_ttl_secs)),
            ("mfa_policy", json!(self.mfa_policy)),
            (
                "require_pushed_authorization_requests",
                json!(self.require_pushed_authorization_requests),
            ),
            ("created_at", json!(self.created_at)),
            ("updated_at", json!(self.updated_at)),
        ]
    }
}

/// A client with the secret just issued to it (RFC 7591 §3.2.1; a secret that does not
/// expire has `client_secret_expires_at` 0). Without a secret, just the client.
#[derive(Debug, Serialize)]
pub struct Registered<'a> {
    #[serde(flatten)]
    pub client: &'a ClientView,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_secret: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_secret_expires_at: Option<i64>,
}

/// The registry over a client store. Built on demand: `ClientRegistry::new(&state)`.
#[derive(Clone)]
pub struct ClientRegistry {
    clients: Arc<dyn ClientStore>,
    secrets: Arc<SecretSeal>,
    clock: Arc<dyn Clock>,
    audit: Auditor,
    channels: Vec<String>,
    actor: String,
    context: RequestContext,
}

impl ClientRegistry {
    /// The registry of a node, acting as `operator` until [`ClientRegistry::acting_as`].
    pub fn new(state: &AppState) -> Self {
        ClientRegistry::from_parts(
            state.clients.clone(),
            state.client_auth.secrets(),
            state.clock.clone(),
            state.audit.clone(),
            state.config.channels(),
        )
    }

    /// A registry from its parts (the CLI needs no running node); `channels` are the ones
    /// clients may name (`Config::channels`), `secrets` seals `client_secret_jwt` secrets.
    pub fn from_parts(
        clients: Arc<dyn ClientStore>,
        secrets: Arc<SecretSeal>,
        clock: Arc<dyn Clock>,
        audit: Auditor,
        channels: Vec<String>,
    ) -> Self {
        ClientRegistry {
            clients,
            secrets,
            clock,
            audit,
            channels,
            actor: "operator".to_owned(),
            context: RequestContext::default(),
        }
    }

    /// Who the audit trail names for the changes made through this registry
    /// (`operator`, `client:<id>`), and the request they came with.
    pub fn acting_as(mut self, actor: impl Into<String>, context: RequestContext) -> Self {
        self.actor = actor.into();
        self.context = context;
        self
    }

    /// Registers a client. Returns it with its secret (clients that authenticate with a
    /// secret only), which is stored only as a hash (and, for `client_secret_jwt`, sealed).
    pub async fn create(&self, spec: ClientSpec) -> Result<(ClientRecord, Option<String>), RegistryError> {
        let valid = validate(&spec, &self.channels)?;
        let (secret, secret_hash) = match uses_secret(&valid.token_endpoint_auth_method) {
            false => (None, None),
            true => {
                let (secret, hash) = new_client_secret();
                (Some(secret), Some(hash))
            }
        };
        let now = self.clock.now();
        let mut record = valid.into_record(String::new(), secret_hash, now);
        let explicit = spec.client_id.is_some();
        let mut attempts = 0;
        loop {
            record.client_id = match &spec.client_id {
                Some(id) => id.clone(),
                None => generated_client_id(&record.name),
            };
            // The seal is bound to the client id: seal again for each id drawn.
            record.secret_sealed = match (&secret, needs_sealed_secret(&record.token_endpoint_auth_method)) {
                (Some(secret), true) => Some(self.seal(&record.client_id, secret)?),
                _ => None,
            };
            match self.clients.create_client(&record).await {
                Ok(()) => break,
                Err(StoreError::Conflict(_)) if explicit => {
                    return Err(RegistryError::Conflict(record.client_id))
                }
                // A generated id collided: draw another.
                Err(StoreError::Conflict(_)) if attempts < 4 => attempts += 1,
                Err(err) => return Err(err.into()),
            }
        }
        self.record(
            AuditEvent::new("client.created", "success")
                .client(&record.client_id)
                .detail(json!({
                    "client_name": record.name,
                    "public": record.is_public(),
                    "token_endpoint_auth_method": record.token_endpoint_auth_method,
                    "grant_types": record.grant_types,
                    "scope": record.scopes.join(" "),
                    "first_party": record.first_party,
                    "channel": record.channel,
                })),
        )
        .await;
        Ok((record, secret))
    }

    /// Every client, ordered by id.
    pub async fn list(&self) -> Result<Vec<ClientRecord>, RegistryError> {
        Ok(self.clients.clients().await?)
    }

    pub async fn get(&self, client_id: &str) -> Result<ClientRecord, RegistryError> {
        if client_id.is_empty() || client_id.len() > 255 {
            return Err(RegistryError::NotFound);
        }
        self.clients
            .client(client_id)
            .await?
            .ok_or(RegistryError::NotFound)
    }

    /// Applies `patch` and stores the result if the whole client is still valid.
    pub async fn update(&self, client_id: &str, patch: ClientPatch) -> Result<ClientRecord, RegistryError> {
        let current = self.get(client_id).await?;
        if patch
            .client_id
            .as_deref()
            .is_some_and(|id| id != current.client_id)
        {
            return Err(RegistryError::invalid(
                "client_id",
                "a client id cannot be changed",
            ));
        }
        let was_public = current.is_public();
        if patch.public.is_some_and(|public| public != was_public) {
            return Err(RegistryError::invalid(
                "public",
                "a client cannot switch between public and confidential; delete it and register it again",
            ));
        }
        let changed = patch.changed_fields();
        let spec = patch.apply(spec_of(&current));
        let valid = validate(&spec, &self.channels)?;
        if valid.public != was_public {
            return Err(RegistryError::invalid(
                "token_endpoint_auth_method",
                "a client cannot switch between public (none) and confidential; delete it and register it again",
            ));
        }
        check_method_change(
            &current.token_endpoint_auth_method,
            &valid.token_endpoint_auth_method,
        )?;
        let keeps_secret = uses_secret(&valid.token_endpoint_auth_method);
        let keeps_seal = needs_sealed_secret(&valid.token_endpoint_auth_method);
        let mut record = valid.into_record(
            current.client_id.clone(),
            current.secret_hash.clone().filter(|_| keeps_secret),
            current.created_at,
        );
        record.secret_sealed = current.secret_sealed.clone().filter(|_| keeps_seal);
        record.updated_at = current.updated_at;
        if record == current {
            return Ok(current);
        }
        record.updated_at = self.clock.now();
        if !self.clients.update_client(&record).await? {
            return Err(RegistryError::NotFound);
        }
        self.record(
            AuditEvent::new("client.updated", "success")
                .client(&record.client_id)
                .detail(json!({ "fields": changed })),
        )
        .await;
        Ok(record)
    }

    /// Deletes a client: its secret stops working at once. The built-in clients (the
    /// first-party JSON API's, the hosted apps') cannot be deleted.
    pub async fn delete(&self, client_id: &str) -> Result<(), RegistryError> {
        if client_id == FIRST_PARTY_CLIENT || HOSTED_APPS.iter().any(|app| app.client_id == client_id) {
            return Err(RegistryError::invalid(
                "client_id",
                "a built-in client cannot be deleted",
            ));
        }
        if client_id.is_empty()
            || client_id.len() > 255
            || !self.clients.delete_client(client_id, self.clock.now()).await?
        {
            return Err(RegistryError::NotFound);
        }
        self.record(AuditEvent::new("client.deleted", "success").client(client_id))
            .await;
        Ok(())
    }

    /// Gives a confidential client a new secret; the old one stops working at once.
    /// Returns the new secret (shown once).
    pub async fn rotate_secret(&self, client_id: &str) -> Result<String, RegistryError> {
        let mut record = self.get(client_id).await?;
        if !uses_secret(&record.token_endpoint_auth_method) {
            return Err(RegistryError::invalid(
                "token_endpoint_auth_method",
                match record.is_public() {
                    true => "a public client has no secret to rotate",
                    false => "a private_key_jwt client has no secret: it rotates its keys (jwks, jwks_uri)",
                },
            ));
        }
        let (secret, hash) = new_client_secret();
        record.secret_hash = Some(hash);
        if needs_sealed_secret(&record.token_endpoint_auth_method) {
            record.secret_sealed = Some(self.seal(client_id, &secret)?);
        }
        record.updated_at = self.clock.now();
        if !self.clients.update_client(&record).await? {
            return Err(RegistryError::NotFound);
        }
        self.record(AuditEvent::new("client.secret_rotated", "success").client(client_id))
            .await;
        Ok(secret)
    }

    fn seal(&self, client_id: &str, secret: &str) -> Result<String, RegistryError> {
        self.secrets
            .seal(client_id, secret)
            .map_err(|e| RegistryError::Store(StoreError::Corrupt(format!("sealing a client secret: {e}"))))
    }

    async fn record(&self, event: AuditEvent) {
        self.audit
            .record(&self.context, event.actor(self.actor.clone()))
            .await;
    }
}

impl ClientPatch {
    /// The names of the fields this patch sets, for the audit trail.
    fn changed_fields(&self) -> Vec<&'static str> {
        let set = [
            ("client_name", self.client_name.is_some()),
            ("redirect_uris", self.redirect_uris.is_some()),
            ("grant_types", self.grant_types.is_some()),
            ("scope", self.scope.is_some()),
            (
                "token_endpoint_auth_method",
                self.token_endpoint_auth_method.is_some(),
            ),
            (
                "token_endpoint_auth_signing_alg",
                self.token_endpoint_auth_signing_alg.is_some(),
            ),
            ("jwks", self.jwks.is_some()),
            ("jwks_uri", self.jwks_uri.is_some()),
            (
                "request_object_signing_alg",
                self.request_object_signing_alg.is_some(),
            ),
            (
                "post_logout_redirect_uris",
                self.post_logout_redirect_uris.is_some(),
            ),
            ("backchannel_logout_uri", self.backchannel_logout_uri.is_some()),
            ("allowed_cors_origins", self.allowed_cors_origins.is_some()),
            ("first_party", self.first_party.is_some()),
            ("channel", self.channel.is_some()),
            ("access_token_ttl_secs", self.access_token_ttl_secs.is_some()),
            ("refresh_token_ttl_secs", self.refresh_token_ttl_secs.is_some()),
            ("mfa_policy", self.mfa_policy.is_some()),
            (
                "require_pushed_authorization_requests",
                self.require_pushed_authorization_requests.is_some(),
            ),
        ];
        set.iter()
            .filter(|(_, present)| *present)
            .map(|(name, _)| *name)
            .collect()
    }

    fn apply(self, mut spec: ClientSpec) -> ClientSpec {
        fn set<T>(target: &mut T, value: Option<T>) {
            if let Some(value) = value {
                *target = value;
            }
        }
        set(&mut spec.client_name, self.client_name.map(Some));
        set(&mut spec.redirect_uris, self.redirect_uris);
        set(&mut spec.grant_types, self.grant_types.map(Some));
        set(&mut spec.scope, self.scope.map(Some));
        set(
            &mut spec.token_endpoint_auth_method,
            self.token_endpoint_auth_method.map(Some),
        );
        set(
            &mut spec.token_endpoint_auth_signing_alg,
            self.token_endpoint_auth_signing_alg,
        );
        set(&mut spec.jwks, self.jwks);
        set(&mut spec.jwks_uri, self.jwks_uri);
        set(
            &mut spec.request_object_signing_alg,
            self.request_object_signing_alg,
        );
        set(
            &mut spec.post_logout_redirect_uris,
            self.post_logout_redirect_uris,
        );
        set(&mut spec.backchannel_logout_uri, self.backchannel_logout_uri);
        set(&mut spec.allowed_cors_origins, self.allowed_cors_origins);
        set(&mut spec.first_party, self.first_party);
        set(&mut spec.channel, self.channel.map(Some));
        set(&mut spec.access_token_ttl_secs, self.access_token_ttl_secs);
        set(&mut spec.refresh_token_ttl_secs, self.refresh_token_ttl_secs);
        set(&mut spec.mfa_policy, self.mfa_policy);
        set(
            &mut spec.require_pushed_authorization_requests,
            self.require_pushed_authorization_requests,
        );
        spec
    }
}

/// A stored client as the spec that would register it again.
fn spec_of(record: &ClientRecord) -> ClientSpec {
    ClientSpec {
        client_id: Some(record.client_id.clone()),
        client_name: Some(record.name.clone()),
        redirect_uris: record.redirect_uris.clone(),
        grant_types: Some(record.grant_types.clone()),
        scope: Some(record.scopes.join(" ")),
        token_endpoint_auth_method: Some(record.token_endpoint_auth_method.clone()),
        token_endpoint_auth_signing_alg: record.token_endpoint_auth_signing_alg.clone(),
        jwks: record
            .jwks
            .as_deref()
            .and_then(|jwks| serde_json::from_str(jwks).ok()),
        jwks_uri: record.jwks_uri.clone(),
        request_object_signing_alg: record.request_object_signing_alg.clone(),
        post_logout_redirect_uris: record.post_logout_redirect_uris.clone(),
        backchannel_logout_uri: record.backchannel_logout_uri.clone(),
        allowed_cors_origins: record.allowed_cors_origins.clone(),
        first_party: record.first_party,
        channel: Some(record.channel.clone()),
        access_token_ttl_secs: record.access_token_ttl_secs,
        refresh_token_ttl_secs: record.refresh_token_ttl_secs,
        mfa_policy: record.mfa_policy.clone(),
        require_pushed_authorization_requests: record.require_pushed_authorization_requests,
        public: record.is_public(),
    }
}

/// Whether a client registered with `method` authenticates with a secret we issue.
fn uses_secret(method: &str) -> bool {
    ["client_secret_basic", "client_secret_post", CLIENT_SECRET_JWT].contains(&method)
}

/// A change of method that needs a credential the client does not have is refused: a
/// `private_key_jwt` client has no secret to switch to, and a secret kept only as a hash
/// cannot be sealed for `client_secret_jwt`. (Moving the other way drops what is no
/// longer used.) Such a client is registered again, or gets a new secret after a change
/// to `client_secret_basic`.
fn check_method_change(from: &str, to: &str) -> Result<(), RegistryError> {
    let gains_secret = !uses_secret(from) && uses_secret(to);
    let gains_seal = !needs_sealed_secret(from) && needs_sealed_secret(to);
    if from != to && (gains_secret || gains_seal) {
        return Err(RegistryError::invalid(
            "token_endpoint_auth_method",
            format!("a client cannot switch from {from} to {to}: it has no usable secret for it; delete it and register it again"),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn channels() -> Vec<String> {
        ["web", "mobile", "partner"]
            .iter()
            .map(|s| s.to_string())
            .collect()
    }

    fn web_app() -> ClientSpec {
        ClientSpec {
            client_name: Some("Web app".into()),
            redirect_uris: vec!["https://app.example/cb".into()],
            ..ClientSpec::default()
        }
    }

    async fn registry() -> (ClientRegistry, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}?mode=rwc", dir.path().join("t.db").display());
        let db =
            tessera_store::durable::SqlStore::connect(&tessera_store::durable::ConnectSettings::new(url))
                .await
                .unwrap();
        db.migrate().await.unwrap();
        let db = Arc::new(db);
        let clock: Arc<dyn Clock> = Arc::new(crate::clock::ManualClock::new(1_000));
        let audit = Auditor::new(db.clone(), clock.clone());
        let secrets = Arc::new(SecretSeal::new(&[7; 32]).unwrap());
        (
            ClientRegistry::from_parts(db, secrets, clock, audit, channels()),
            dir,
        )
    }

    #[tokio::test]
    async fn create_update_rotate_and_delete_keep_the_rules() {
        let (registry, _dir) = registry().await;
        let (created, secret) = registry.create(web_app()).await.unwrap();
        let secret = secret.unwrap();
        assert_eq!(
            created.secret_hash.as_deref(),
            Some(crate::tokens::opaque::sha256_b64(&secret).as_str())
        );
        assert!(created.client_id.starts_with("web-app-"));

        // An invalid change stores nothing.
        let patch = ClientPatch {
            redirect_uris: Some(vec!["http://app.example/cb".into()]),
            ..ClientPatch::default()
        };
        assert!(matches!(
            registry.update(&created.client_id, patch).await,
            Err(RegistryError::Invalid {
                field: "redirect_uris",
                ..
            })
        ));
        assert_eq!(registry.get(&created.client_id).await.unwrap(), created);

        let patch: ClientPatch = serde_json::from_str(r#"{"public":true}"#).unwrap();
        assert!(matches!(
            registry.update(&created.client_id, patch).await,
            Err(RegistryError::Invalid { field: "public", .. })
        ));
        let patch: ClientPatch = serde_json::from_str(r#"{"token_endpoint_auth_method":"none"}"#).unwrap();
        assert!(matches!(
            registry.update(&created.client_id, patch).await,
            Err(RegistryError::Invalid {
                field: "token_endpoint_auth_method",
                ..
            })
        ));

        let patch: ClientPatch = serde_json::from_str(
            r#"{"client_name":"Renamed","scope":"openid email","access_token_ttl_secs":120}"#,
        )
        .unwrap();
        let updated = registry.update(&created.client_id, patch).await.unwrap();
        assert_eq!(updated.name, "Renamed");
        assert_eq!(updated.scopes, ["openid", "email"]);
        assert_eq!(updated.access_token_ttl_secs, Some(120));
        assert_eq!(updated.secret_hash, created.secret_hash);
        assert_eq!(updated.redirect_uris, created.redirect_uris);
        let patch: ClientPatch = serde_json::from_str(r#"{"access_token_ttl_secs":null}"#).unwrap();
        assert_eq!(
            registry
                .update(&created.client_id, patch)
                .await
                .unwrap()
                .access_token_ttl_secs,
            None
        );

        let rotated = registry.rotate_secret(&created.client_id).await.unwrap();
        assert_ne!(rotated, secret);
        let stored = registry.get(&created.client_id).await.unwrap();
        assert_eq!(
            stored.secret_hash,
            Some(crate::tokens::opaque::sha256_b64(&rotated))
        );

        let explicit = ClientSpec {
            client_id: Some(created.client_id.clone()),
            ..web_app()
        };
        assert!(matches!(
            registry.create(explicit).await,
            Err(RegistryError::Conflict(_))
        ));

        registry.delete(&created.client_id).await.unwrap();
        assert!(matches!(
            registry.get(&created.client_id).await,
            Err(RegistryError::NotFound)
        ));
        assert!(matches!(
            registry.delete(&created.client_id).await,
            Err(RegistryError::NotFound)
        ));
        assert!(matches!(
            registry.rotate_secret(&created.client_id).await,
            Err(RegistryError::NotFound)
        ));
    }

    #[tokio::test]
    async fn client_secret_jwt_secrets_are_sealed_and_methods_change_only_with_a_usable_credential() {
        let (registry, _dir) = registry().await;
        let spec = ClientSpec {
            token_endpoint_auth_method: Some("client_secret_jwt".into()),
            ..web_app()
        };
        let (created, secret) = registry.create(spec).await.unwrap();
        let secret = secret.unwrap();
        let sealed = created.secret_sealed.clone().unwrap();
        assert!(!sealed.contains(&secret));
        let seal = SecretSeal::new(&[7; 32]).unwrap();
        assert_eq!(seal.open(&created.client_id, &sealed).unwrap(), secret.as_bytes());
        // Bound to the client: a sealed secret copied to another row does not open.
        assert!(seal.open("another-client", &sealed).is_err());
        assert!(SecretSeal::new(&[8; 32])
            .unwrap()
            .open(&created.client_id, &sealed)
            .is_err());

        let rotated = registry.rotate_secret(&created.client_id).await.unwrap();
        let stored = registry.get(&created.client_id).await.unwrap();
        assert_eq!(
            seal.open(&created.client_id, stored.secret_sealed.as_deref().unwrap())
                .unwrap(),
            rotated.as_bytes()
        );

        // To client_secret_basic: the sealed copy goes, the hash stays.
        let patch: ClientPatch =
            serde_json::from_str(r#"{"token_endpoint_auth_method":"client_secret_basic"}"#).unwrap();
        let basic = registry.update(&created.client_id, patch).await.unwrap();
        assert_eq!(basic.secret_sealed, None);
        assert_eq!(basic.secret_hash, stored.secret_hash);
        // Back: a hash cannot be sealed.
        let patch: ClientPatch =
            serde_json::from_str(r#"{"token_endpoint_auth_method":"client_secret_jwt"}"#).unwrap();
        assert!(matches!(
            registry.update(&created.client_id, patch).await,
            Err(RegistryError::Invalid {
                field: "token_endpoint_auth_method",
                ..
            })
        ));
        // To private_key_jwt: the secret goes; there is none to rotate or switch back to.
        let patch: ClientPatch = serde_json::from_str(
            r#"{"token_endpoint_auth_method":"private_key_jwt","jwks_uri":"https://app.example/jwks"}"#,
        )
        .unwrap();
        let keyed = registry.update(&created.client_id, patch).await.unwrap();
        assert_eq!(
            (keyed.secret_hash.as_deref(), keyed.secret_sealed.as_deref()),
            (None, None)
        );
        assert!(!keyed.is_public() && !ClientView::from(&keyed).public);
        assert!(matches!(
            registry.rotate_secret(&created.client_id).await,
            Err(RegistryError::Invalid { .. })
        ));
        let patch: ClientPatch =
            serde_json::from_str(r#"{"token_endpoint_auth_method":"client_secret_post","jwks_uri":null}"#)
                .unwrap();
        assert!(matches!(
            registry.update(&created.client_id, patch).await,
            Err(RegistryError::Invalid {
                field: "token_endpoint_auth_method",
                ..
            })
        ));
    }

    #[tokio::test]
    async fn public_clients_get_no_secret_and_none_to_rotate() {
        let (registry, _dir) = registry().await;
        let spec = ClientSpec {
            client_id: Some("spa".into()),
            public: true,
            ..web_app()
        };
        let (created, secret) = registry.create(spec).await.unwrap();
        assert!(secret.is_none());
        assert!(created.secret_hash.is_none());
        assert!(matches!(
            registry.rotate_secret("spa").await,
            Err(RegistryError::Invalid { .. })
        ));
        assert_eq!(registry.list().await.unwrap().len(), 1);
    }
}
