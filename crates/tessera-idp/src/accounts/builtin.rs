//! The built-in clients, ensured at start-up: the first-party JSON API's and one per hosted
//! web app (the account pages, the admin console), which sign in through Tessera's own
//! authorization code flow.

use tessera_store::durable::ClientRecord;
use tessera_store::StoreError;

use super::{Accounts, FIRST_PARTY_CLIENT};

/// A web app that Tessera hosts itself (the account pages, the admin console): it signs
/// its users in through Tessera's own authorization code flow as a built-in public client
/// (first party: no consent; PKCE S256, as for every public client), created at start-up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HostedApp {
    /// The client id, e.g. `tessera-account`.
    pub client_id: &'static str,
    /// The client's name (audit, session lists).
    pub client_name: &'static str,
    /// The path every page of the app lives under, e.g. `/account`.
    pub base_path: &'static str,
    /// The client's second-factor policy (`required` for the console); `None` follows the
    /// deployment's `mfa.policy`.
    pub mfa_policy: Option<&'static str>,
}

impl HostedApp {
    /// `{issuer}{base_path}/callback`: the app's one redirect URI.
    pub fn redirect_uri(&self, issuer: &str) -> String {
        format!("{issuer}{}/callback", self.base_path)
    }
}

/// The hosted account pages (`/account`).
pub const ACCOUNT_APP: HostedApp = HostedApp {
    client_id: "tessera-account",
    client_name: "Tessera account",
    base_path: "/account",
    mfa_policy: None,
};

/// The admin console (`/console`): every sign-in to it passes a second factor.
pub const CONSOLE_APP: HostedApp = HostedApp {
    client_id: "tessera-console",
    client_name: "Tessera admin console",
    base_path: "/console",
    mfa_policy: Some("required"),
};

/// Every hosted app: their clients are ensured at start-up.
pub const HOSTED_APPS: [HostedApp; 2] = [ACCOUNT_APP, CONSOLE_APP];

/// A built-in public client of the web channel, first party, with the standard scopes.
fn builtin_public_client(now: i64) -> ClientRecord {
    ClientRecord {
        client_id: String::new(),
        name: String::new(),
        secret_hash: None,
        token_endpoint_auth_method: "none".to_owned(),
        channel: "web".to_owned(),
        token_endpoint_auth_signing_alg: None,
        jwks: None,
        jwks_uri: None,
        secret_sealed: None,
        request_object_signing_alg: None,
        grant_types: Vec::new(),
        scopes: vec!["openid".to_owned(), "profile".to_owned(), "email".to_owned()],
        redirect_uris: Vec::new(),
        post_logout_redirect_uris: Vec::new(),
        allowed_cors_origins: Vec::new(),
        backchannel_logout_uri: None,
        first_party: true,
        access_token_ttl_secs: None,
        refresh_token_ttl_secs: None,
        mfa_policy: None,
        require_pushed_authorization_requests: false,
        created_at: now,
        updated_at: now,
    }
}

impl Accounts {
    /// Makes sure the first-party client exists (at start-up).
    pub async fn ensure_first_party_client(&self) -> Result<ClientRecord, StoreError> {
        let now = self.clock.now();
        self.ensure_builtin_client(ClientRecord {
            client_id: FIRST_PARTY_CLIENT.to_owned(),
            name: "Tessera first-party JSON API".to_owned(),
            grant_types: vec!["refresh_token".to_owned()],
            redirect_uris: Vec::new(),
            ..builtin_public_client(now)
        })
        .await
    }

    /// Makes sure the public client of a hosted web app exists (at start-up) with the
    /// redirect URI of this issuer and the app's second-factor policy: a changed issuer
    /// updates it, and so does a policy changed behind the app's back (the admin API).
    pub async fn ensure_hosted_app_client(&self, app: &HostedApp) -> Result<ClientRecord, StoreError> {
        let now = self.clock.now();
        let client = self
            .ensure_builtin_client(ClientRecord {
                client_id: app.client_id.to_owned(),
                name: app.client_name.to_owned(),
                grant_types: vec!["authorization_code".to_owned(), "refresh_token".to_owned()],
                redirect_uris: vec![app.redirect_uri(&self.issuer)],
                mfa_policy: app.mfa_policy.map(str::to_owned),
                ..builtin_public_client(now)
            })
            .await?;
        let wanted = vec![app.redirect_uri(&self.issuer)];
        let policy = app.mfa_policy.map(str::to_owned);
        if client.redirect_uris == wanted && client.mfa_policy == policy {
            return Ok(client);
        }
        let updated = ClientRecord {
            redirect_uris: wanted,
            mfa_policy: policy,
            updated_at: now,
            ..client
        };
        self.clients.update_client(&updated).await?;
        Ok(updated)
    }

    /// `client` as stored, created from `client` if missing.
    async fn ensure_builtin_client(&self, client: ClientRecord) -> Result<ClientRecord, StoreError> {
        if let Some(existing) = self.clients.client(&client.client_id).await? {
            return Ok(existing);
        }
        match self.clients.create_client(&client).await {
            Ok(()) => Ok(client),
            // Another node created it first.
            Err(StoreError::Conflict(_)) => {
                Ok(self.clients.client(&client.client_id).await?.unwrap_or(client))
            }
            Err(other) => Err(other),
        }
    }
}
