//! What every handler can reach: configuration, stores, keys and the clock.

use std::sync::Arc;

use tessera_store::durable::{ClientStore, RevocationStore, SqlStore};
use tessera_store::ephemeral::EphemeralStore;

use crate::accounts::Accounts;
use crate::alerts::Alerts;
use crate::apikeys::ApiKeys;
use crate::audit::Auditor;
use crate::authz::Authz;
use crate::clients::ClientAuth;
use crate::clock::Clock;
use crate::cluster::Cluster;
use crate::config::Config;
use crate::federation::Federation;
use crate::keys::KeyRing;
use crate::mfa::Mfa;
use crate::oidc::Provider;
use crate::tokens::TokenService;

#[derive(Clone)]
pub struct AppState {
    pub config: Arc<Config>,
    /// The issuer identifier, computed once from the configuration.
    pub issuer: Arc<str>,
    pub db: SqlStore,
    pub keys: Arc<KeyRing>,
    pub ephemeral: Arc<dyn EphemeralStore>,
    pub clock: Arc<dyn Clock>,
    pub clients: Arc<dyn ClientStore>,
    /// Client authentication at every endpoint where a client authenticates.
    pub client_auth: Arc<ClientAuth>,
    pub revocations: Arc<dyn RevocationStore>,
    pub tokens: Arc<TokenService>,
    pub accounts: Arc<Accounts>,
    pub alerts: Arc<Alerts>,
    pub mfa: Arc<Mfa>,
    /// Roles, permissions and separation of duty (R26).
    pub authz: Arc<Authz>,
    /// Partner API keys (R27).
    pub api_keys: Arc<ApiKeys>,
    pub provider: Arc<Provider>,
    /// DPoP proofs (RFC 9449): replay cache and server nonces.
    pub dpop: Arc<crate::dpop::Dpop>,
    /// Sign-in through upstream providers (R14).
    pub federation: Arc<Federation>,
    pub audit: Auditor,
    /// This node among the others (heartbeat, leases).
    pub cluster: Arc<Cluster>,
}
