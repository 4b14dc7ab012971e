//! What a hosted app keeps about a browser, in the ephemeral store the nodes share (so any
//! node answers any request): the pending sign-in of a `state`, and the app session behind
//! an app-session cookie. Keys hold only hashes of the browser's values; the values
//! themselves are random handles with no meaning of their own.

use std::time::Duration;

use serde::{de::DeserializeOwned, Deserialize, Serialize};
use tessera_idp::accounts::HostedApp;
use tessera_idp::tokens::opaque::sha256_b64;
use tessera_store::ephemeral::EphemeralStore;
use tessera_store::StoreError;

/// How long a started sign-in may take (the login page, a second factor, a passkey).
pub(super) const SIGN_IN_TTL: Duration = Duration::from_secs(600);

/// An authorization request the app sent the browser on, until its callback.
#[derive(Debug, Serialize, Deserialize)]
pub(super) struct PendingSignIn {
    /// SHA-256 of the sign-in cookie of the browser that started it.
    pub browser: String,
    /// The PKCE code verifier (RFC 7636).
    pub verifier: String,
    pub nonce: String,
    /// The app's page to land on afterwards (already checked to be one).
    pub return_to: String,
}

/// A signed-in browser of the app: the tokens never leave the server.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AppSession {
    pub user_id: String,
    /// The token session the code exchange started: the app session lives only as long.
    pub session_id: String,
    /// The provider's browser sign-in the code came through (ended by signing out).
    pub sso_session_id: String,
    /// The refresh token of the token session, if one was issued.
    pub refresh_token: Option<String>,
    /// The CSRF secret of this app session's forms.
    pub csrf: String,
}

fn pending_key(app: &HostedApp, state: &str) -> String {
    format!("portal:{}:sign-in:{}", app.client_id, sha256_b64(state))
}

fn session_key(app: &HostedApp, handle: &str) -> String {
    format!("portal:{}:session:{}", app.client_id, sha256_b64(handle))
}

pub(crate) async fn put<T: Serialize>(
    store: &dyn EphemeralStore,
    key: &str,
    value: &T,
    ttl: Duration,
) -> Result<(), StoreError> {
    let bytes = serde_json::to_vec(value).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    store.set(key, &bytes, ttl).await
}

async fn fetch<T: DeserializeOwned>(store: &dyn EphemeralStore, key: &str) -> Result<Option<T>, StoreError> {
    Ok(store
        .get(key)
        .await?
        .and_then(|bytes| serde_json::from_slice(&bytes).ok()))
}

pub(super) async fn save_pending(
    store: &dyn EphemeralStore,
    app: &HostedApp,
    state: &str,
    pending: &PendingSignIn,
) -> Result<(), StoreError> {
    put(store, &pending_key(app, state), pending, SIGN_IN_TTL).await
}

/// The pending sign-in of `state`, removed: of two callbacks with one `state` only the
/// first gets it.
pub(super) async fn take_pending(
    store: &dyn EphemeralStore,
    app: &HostedApp,
    state: &str,
) -> Result<Option<PendingSignIn>, StoreError> {
    take(store, &pending_key(app, state)).await
}

/// The value at `key`, removed: of two readers at once only the one whose delete removed
/// it gets it (single use).
pub(crate) async fn take<T: DeserializeOwned>(
    store: &dyn EphemeralStore,
    key: &str,
) -> Result<Option<T>, StoreError> {
    let Some(value) = fetch::<T>(store, key).await? else {
        return Ok(None);
    };
    Ok(store.delete(key).await?.then_some(value))
}

pub(super) async fn save_session(
    store: &dyn EphemeralStore,
    app: &HostedApp,
    handle: &str,
    session: &AppSession,
    ttl: Duration,
) -> Result<(), StoreError> {
    put(store, &session_key(app, handle), session, ttl).await
}

pub(super) async fn load_session(
    store: &dyn EphemeralStore,
    app: &HostedApp,
    handle: &str,
) -> Result<Option<AppSession>, StoreError> {
    fetch(store, &session_key(app, handle)).await
}

pub(super) async fn forget_session(
    store: &dyn EphemeralStore,
    app: &HostedApp,
    handle: &str,
) -> Result<(), StoreError> {
    store.delete(&session_key(app, handle)).await.map(|_| ())
}
