//! Federated sign-in (R14): users sign in at an upstream OpenID Connect or OAuth 2.0
//! provider, and Tessera stays the one identity provider its relying parties talk to.
//!
//! A sign-in is a *flow*: [`Federation::start`] keeps its state, nonce and PKCE verifier
//! in the ephemeral store (any node may receive the callback) and returns the upstream's
//! authorization URL; [`Federation::finish`] consumes that flow once, checks the callback
//! (RFC 9207 `iss`, the upstream's error), redeems the code and reads who the user is; then
//! [`Federation::resolve`] finds the linked account, creates one, or asks the user to prove
//! the existing account that has the same address — accounts are linked by (provider,
//! upstream subject), never by e-mail alone.

pub mod upstream;

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use tessera_store::durable::{FederatedIdentityRecord, FederationStore, UserRecord, UserStore};
use tessera_store::ephemeral::EphemeralStore;
use tessera_store::StoreError;

use self::upstream::{Claims, Upstream};
use crate::accounts::email;
use crate::audit::{AuditEvent, Auditor, RequestContext};
use crate::clock::Clock;
use crate::config::{Config, ProviderConfig};
use crate::outbound::Outbound;
use crate::tokens::opaque::{random_b64, random_id, sha256_b64};

/// The `amr` of a federated sign-in (RFC 8176 has no value for it; `fed` is the one in use,
/// e.g. by Microsoft Entra ID).
pub const AMR_FEDERATED: &str = "fed";

/// Why a federated sign-in did not complete. The reason goes to the audit trail; the user
/// sees a page in their language that says what happened without the detail.
#[derive(Debug, thiserror::Error)]
pub enum FederationError {
    #[error("no such provider")]
    UnknownProvider,
    #[error("unknown, expired, replayed or foreign state")]
    InvalidState,
    #[error("the upstream answered error `{0}`")]
    UpstreamError(String),
    #[error("the upstream could not be reached: {0}")]
    Unreachable(String),
    #[error("the upstream's answer is unusable: {0}")]
    InvalidResponse(String),
    #[error("the issuer of the response is not the provider's (RFC 9207)")]
    IssuerMismatch,
    #[error("the ID token's nonce is not this sign-in's")]
    NonceMismatch,
    #[error("the ID token is invalid: {0}")]
    InvalidIdToken(String),
    #[error("the upstream did not give `{0}`")]
    MissingClaim(String),
    #[error("the upstream did not confirm the e-mail address")]
    EmailUnverified,
    #[error("signing up through this provider is turned off")]
    SignupClosed,
    #[error("the account is disabled")]
    AccountDisabled,
    #[error("the identity is linked to another account")]
    LinkedElsewhere,
    #[error("it is the last way to sign in to the account")]
    LastSignInMethod,
    #[error("the provider is misconfigured: {0}")]
    Misconfigured(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl FederationError {
    /// A short fixed name for the audit trail and metrics.
    pub fn reason(&self) -> &'static str {
        match self {
            FederationError::UnknownProvider => "unknown_provider",
            FederationError::InvalidState => "invalid_state",
            FederationError::UpstreamError(_) => "upstream_error",
            FederationError::Unreachable(_) => "unreachable",
            FederationError::InvalidResponse(_) => "invalid_response",
            FederationError::IssuerMismatch => "issuer_mismatch",
            FederationError::NonceMismatch => "nonce_mismatch",
            FederationError::InvalidIdToken(_) => "invalid_id_token",
            FederationError::MissingClaim(_) => "missing_claim",
            FederationError::EmailUnverified => "email_unverified",
            FederationError::SignupClosed => "signup_closed",
            FederationError::AccountDisabled => "account_disabled",
            FederationError::LinkedElsewhere => "linked_elsewhere",
            FederationError::LastSignInMethod => "last_sign_in_method",
            FederationError::Misconfigured(_) => "misconfigured",
            FederationError::Store(_) => "store",
        }
    }
}

/// A provider as the login page shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderButton {
    pub id: String,
    pub display_name: String,
}

/// A started sign-in: where to send the browser, and the state to bind to it (a cookie).
#[derive(Debug)]
pub struct Started {
    pub url: String,
    pub state: String,
}

/// What the flow keeps between the redirect and the callback.
#[derive(Debug, Serialize, Deserialize)]
struct Flow {
    provider: String,
    nonce: String,
    pkce_verifier: String,
    return_to: String,
}

/// Who the upstream says the user is, mapped by the provider's claim names.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UpstreamUser {
    pub provider: String,
    pub subject: String,
    /// Normalised; `None` when the upstream gave none (or nothing plausible).
    pub email: Option<String>,
    pub email_verified: bool,
    pub name: Option<String>,
}

/// A completed callback: the user, and the Tessera URL the sign-in continues at.
#[derive(Debug)]
pub struct Finished {
    pub identity: UpstreamUser,
    pub return_to: String,
}

/// What a verified upstream identity leads to.
#[derive(Debug)]
pub enum Resolution {
    /// A linked account (or a new one, or one linked because the provider is trusted).
    SignIn(UserRecord),
    /// An account with the upstream's address exists: its owner must prove it (on the
    /// confirmation page, with `token`) before the identity is linked.
    ConfirmLink { token: String, user: UserRecord },
}

/// A link waiting for its confirmation.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PendingLink {
    pub identity: UpstreamUser,
    pub user_id: String,
    pub return_to: String,
}

/// The federation service of a node.
pub struct Federation {
    config: Arc<Config>,
    issuer: Arc<str>,
    providers: RwLock<Arc<Vec<ProviderConfig>>>,
    upstream: Upstream,
    ephemeral: Arc<dyn EphemeralStore>,
    store: Arc<dyn FederationStore>,
    users: Arc<dyn UserStore>,
    audit: Auditor,
    clock: Arc<dyn Clock>,
}

pub struct FederationParts {
    pub config: Arc<Config>,
    pub issuer: Arc<str>,
    pub outbound: Arc<dyn Outbound>,
    pub ephemeral: Arc<dyn EphemeralStore>,
    pub store: Arc<dyn FederationStore>,
    pub users: Arc<dyn UserStore>,
    pub audit: Auditor,
    pub clock: Arc<dyn Clock>,
}

fn flow_key(state: &str) -> String {
    format!("federation:flow:{}", sha256_b64(state))
}

fn link_key(token: &str) -> String {
    format!("federation:link:{}", sha256_b64(token))
}

/// Longest `state` or link token accepted (ours are 43 characters).
const MAX_TOKEN_LEN: usize = 128;

impl Federation {
    pub fn new(parts: FederationParts) -> Self {
        let federation = &parts.config.federation;
        Federation {
            upstream: Upstream::new(
                parts.outbound,
                Duration::from_secs(federation.http_timeout_secs),
                federation.max_response_bytes,
                federation.metadata_cache_secs,
            ),
            providers: RwLock::new(Arc::new(federation.providers.clone())),
            config: parts.config,
            issuer: parts.issuer,
            ephemeral: parts.ephemeral,
            store: parts.store,
            users: parts.users,
            audit: parts.audit,
            clock: parts.clock,
        }
    }

    /// The configured providers, in configuration order.
    pub fn providers(&self) -> Arc<Vec<ProviderConfig>> {
        match self.providers.read() {
            Ok(providers) => providers.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// The providers, in configuration order, for the login page.
    pub fn buttons(&self) -> Vec<ProviderButton> {
        self.providers()
            .iter()
            .map(|p| ProviderButton {
                id: p.id.clone(),
                display_name: p.display_name.clone(),
            })
            .collect()
    }

    fn provider(&self, id: &str) -> Result<ProviderConfig, FederationError> {
        self.providers()
            .iter()
            .find(|p| p.id == id)
            .cloned()
            .ok_or(FederationError::UnknownProvider)
    }

    /// Where the upstream sends the browser back: this node's callback for `id`.
    pub fn redirect_uri(&self, id: &str) -> String {
        format!(
            "{}{}",
            self.issuer,
            tessera_proto::paths::FEDERATION_CALLBACK.replace("{id}", id)
        )
    }

    fn flow_ttl(&self) -> Duration {
        Duration::from_secs(self.config.federation.flow_ttl_secs)
    }

    /// Starts a sign-in at provider `id` that continues at `return_to` (a Tessera URL the
    /// caller validated).
    pub async fn start(
        &self,
        id: &str,
        return_to: &str,
        context: &RequestContext,
    ) -> Result<Started, FederationError> {
        let provider = self.provider(id)?;
        let state = random_b64(32);
        let authorization = match self
            .upstream
            .authorize(&provider, &self.redirect_uri(id), &state, self.clock.now())
            .await
        {
            Ok(authorization) => authorization,
            Err(err) => {
                self.audit_failure(id, &err, context).await;
                return Err(err);
            }
        };
        let flow = Flow {
            provider: provider.id.clone(),
            nonce: authorization.nonce,
            pkce_verifier: authorization.pkce_verifier,
            return_to: return_to.to_owned(),
        };
        let value = serde_json::to_vec(&flow).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        self.ephemeral
            .set(&flow_key(&state), &value, self.flow_ttl())
            .await?;
        Ok(Started {
            url: authorization.url,
            state,
        })
    }

    /// Completes the callback of provider `id` (its query parameters); `bound_state` is the
    /// state the browser carries (its cookie), which must be the callback's. Each failure
    /// is audited; none leaves anything behind.
    pub async fn finish(
        &self,
        id: &str,
        params: &BTreeMap<String, String>,
        bound_state: Option<&str>,
        context: &RequestContext,
    ) -> Result<Finished, FederationError> {
        let result = self.finish_inner(id, params, bound_state).await;
        if let Err(err) = &result {
            self.audit_failure(id, err, context).await;
        }
        result
    }

    async fn finish_inner(
        &self,
        id: &str,
        params: &BTreeMap<String, String>,
        bound_state: Option<&str>,
    ) -> Result<Finished, FederationError> {
        let provider = self.provider(id)?;
        let state = params
            .get("state")
            .filter(|s| !s.is_empty() && s.len() <= MAX_TOKEN_LEN)
            .ok_or(FederationError::InvalidState)?;
        // Login CSRF: the callback must come back to the browser that started the flow.
        if bound_state != Some(state.as_str()) {
            return Err(FederationError::InvalidState);
        }
        let flow = self.take_flow(state).await?;
        if flow.provider != provider.id {
            return Err(FederationError::InvalidState);
        }
        let now = self.clock.now();
        // RFC 9207 before anything else: an error response may come from a mixed-up issuer.
        self.upstream
            .check_response_issuer(&provider, params.get("iss").map(String::as_str), now)
            .await?;
        if let Some(error) = params.get("error") {
            let error: String = error
                .chars()
                .filter(|c| c.is_ascii_alphanumeric() || *c == '_')
                .take(64)
                .collect();
            return Err(FederationError::UpstreamError(error));
        }
        let code = params
            .get("code")
            .filter(|c| !c.is_empty() && c.len() <= 2048)
            .ok_or_else(|| FederationError::InvalidResponse("the callback has no code".to_owned()))?;
        let claims = self
            .upstream
            .redeem(
                &provider,
                &self.redirect_uri(id),
                code,
                &flow.pkce_verifier,
                &flow.nonce,
                now,
            )
            .await?;
        Ok(Finished {
            identity: map_claims(&provider, &claims)?,
            return_to: flow.return_to,
        })
    }

    /// The flow of `state`, once: a second callback with the same state finds nothing.
    async fn take_flow(&self, state: &str) -> Result<Flow, FederationError> {
        let key = flow_key(state);
        let Some(value) = self.ephemeral.get(&key).await? else {
            return Err(FederationError::InvalidState);
        };
        // Whoever deletes the key owns the flow; a concurrent replay loses here.
        if !self.ephemeral.delete(&key).await? {
            return Err(FederationError::InvalidState);
        }
        serde_json::from_slice(&value).map_err(|_| FederationError::InvalidState)
    }

    /// What `identity` signs in to: its linked account; else a new account (when signup is
    /// allowed and no account has its address); else, for an existing account with the
    /// same address, a link the account's owner must confirm — unless the provider is
    /// trusted for e-mail and the upstream verified it.
    pub async fn resolve(
        &self,
        identity: &UpstreamUser,
        return_to: &str,
        context: &RequestContext,
    ) -> Result<Resolution, FederationError> {
        let result = self.resolve_inner(identity, return_to, context).await;
        if let Err(err) = &result {
            self.audit_failure(&identity.provider, err, context).await;
        }
        result
    }

    async fn resolve_inner(
        &self,
        identity: &UpstreamUser,
        return_to: &str,
        context: &RequestContext,
    ) -> Result<Resolution, FederationError> {
        let provider = self.provider(&identity.provider)?;
        let now = self.clock.now();
        if let Some(linked) = self
            .store
            .federated_identity(&identity.provider, &identity.subject)
            .await?
        {
            let user = self
                .users
                .user(&linked.user_id)
                .await?
                .ok_or(FederationError::AccountDisabled)?;
            if user.disabled_at.is_some() {
                return Err(FederationError::AccountDisabled);
            }
            self.store
                .touch_identity(
                    &identity.provider,
                    &identity.subject,
                    identity.email.as_deref(),
                    now,
                )
                .await?;
            self.audit_event("federation.signed_in", &user.id, identity, context)
                .await;
            return Ok(Resolution::SignIn(user));
        }
        let email = identity
            .email
            .clone()
            .ok_or_else(|| FederationError::MissingClaim(provider.claims.email.clone()))?;
        if let Some(existing) = self.users.user_by_email(&email).await? {
            if existing.disabled_at.is_some() {
                return Err(FederationError::AccountDisabled);
            }
            if provider.trust_email && identity.email_verified {
                self.link(identity, &existing.id, context).await?;
                return Ok(Resolution::SignIn(existing));
            }
            let token = random_b64(32);
            let pending = PendingLink {
                identity: identity.clone(),
                user_id: existing.id.clone(),
                return_to: return_to.to_owned(),
            };
            let value = serde_json::to_vec(&pending).map_err(|e| StoreError::Corrupt(e.to_string()))?;
            self.ephemeral
                .set(&link_key(&token), &value, self.flow_ttl())
                .await?;
            return Ok(Resolution::ConfirmLink {
                token,
                user: existing,
            });
        }
        if !self.config.federation.allow_signup {
            return Err(FederationError::SignupClosed);
        }
        if !identity.email_verified {
            // An address nobody confirmed would block its owner's own signup later.
            return Err(FederationError::EmailUnverified);
        }
        let user = UserRecord {
            id: random_id(),
            email,
            email_verified_at: Some(now),
            password_hash: None,
            roles: Vec::new(),
            role_terms: Default::default(),
            locale: None,
            disabled_at: None,
            created_at: now,
            updated_at: now,
            password_changed_at: None,
        };
        let record = self.identity_record(identity, &user.id, now);
        match self.store.create_user_with_identity(&user, &record).await {
            Ok(()) => {}
            // A concurrent first sign-in of the same identity (or a signup with the address)
            // won: nothing of this one was kept. Going round again finds what it made.
            Err(StoreError::Conflict(_)) => return Err(FederationError::LinkedElsewhere),
            Err(other) => return Err(other.into()),
        }
        self.audit_event("federation.account_created", &user.id, identity, context)
            .await;
        Ok(Resolution::SignIn(user))
    }

    fn identity_record(&self, identity: &UpstreamUser, user_id: &str, now: i64) -> FederatedIdentityRecord {
        FederatedIdentityRecord {
            provider: identity.provider.clone(),
            subject: identity.subject.clone(),
            user_id: user_id.to_owned(),
            email: identity.email.clone(),
            created_at: now,
            last_used_at: now,
        }
    }

    async fn link(
        &self,
        identity: &UpstreamUser,
        user_id: &str,
        context: &RequestContext,
    ) -> Result<(), FederationError> {
        let record = self.identity_record(identity, user_id, self.clock.now());
        match self.store.link_identity(&record).await {
            Ok(()) => {}
            Err(StoreError::Conflict(_)) => return Err(FederationError::LinkedElsewhere),
            Err(other) => return Err(other.into()),
        }
        self.audit_event("federation.linked", user_id, identity, context)
            .await;
        Ok(())
    }

    /// The link waiting behind `token`, without using it up (the confirmation page).
    pub async fn pending_link(&self, token: &str) -> Result<Option<PendingLink>, FederationError> {
        if token.is_empty() || token.len() > MAX_TOKEN_LEN {
            return Ok(None);
        }
        Ok(self
            .ephemeral
            .get(&link_key(token))
            .await?
            .and_then(|value| serde_json::from_slice(&value).ok()))
    }

    /// Links the identity waiting behind `token` to `user_id`, who has just proved the
    /// account; the token is used up. `None` if it is unknown, expired, used, or for
    /// another account.
    pub async fn confirm_link(
        &self,
        token: &str,
        user_id: &str,
        context: &RequestContext,
    ) -> Result<Option<PendingLink>, FederationError> {
        let Some(pending) = self.pending_link(token).await? else {
            return Ok(None);
        };
        if pending.user_id != user_id || !self.ephemeral.delete(&link_key(token)).await? {
            return Ok(None);
        }
        self.link(&pending.identity, user_id, context).await?;
        Ok(Some(pending))
    }

    /// The identities linked to `user_id`.
    pub async fn identities(&self, user_id: &str) -> Result<Vec<FederatedIdentityRecord>, FederationError> {
        Ok(self.store.federated_identities(user_id).await?)
    }

    /// Removes a linked identity of `user`, unless it is the last way to sign in (no
    /// password and no other identity). Whether there was one.
    pub async fn unlink(
        &self,
        user: &UserRecord,
        provider: &str,
        subject: &str,
        context: &RequestContext,
    ) -> Result<bool, FederationError> {
        let identities = self.store.federated_identities(&user.id).await?;
        if !identities
            .iter()
            .any(|i| i.provider == provider && i.subject == subject)
        {
            return Ok(false);
        }
        if user.password_hash.is_none() && identities.len() <= 1 {
            return Err(FederationError::LastSignInMethod);
        }
        let removed = self.store.unlink_identity(&user.id, provider, subject).await?;
        if removed {
            self.audit
                .record(
                    context,
                    AuditEvent::new("federation.unlinked", "success")
                        .actor(format!("user:{}", user.id))
                        .subject(&user.id)
                        .detail(json!({ "provider": provider })),
                )
                .await;
        }
        Ok(removed)
    }

    async fn audit_event(
        &self,
        event: &'static str,
        user_id: &str,
        identity: &UpstreamUser,
        context: &RequestContext,
    ) {
        self.audit
            .record(
                context,
                AuditEvent::new(event, "success")
                    .actor(format!("user:{user_id}"))
                    .subject(user_id)
                    .detail(json!({ "provider": identity.provider })),
            )
            .await;
    }

    async fn audit_failure(&self, provider: &str, err: &FederationError, context: &RequestContext) {
        tracing::info!(provider, error = %err, "federated sign-in failed");
        // The id comes from the URL: only a configured one is written down.
        let provider = if self.provider(provider).is_ok() {
            provider
        } else {
            "-"
        };
        self.audit
            .record(
                context,
                AuditEvent::new("federation.failed", "failure")
                    .detail(json!({ "provider": provider, "reason": err.reason() })),
            )
            .await;
    }
}

/// The user the upstream's `claims` describe, read with `provider`'s claim names.
pub fn map_claims(provider: &ProviderConfig, claims: &Claims) -> Result<UpstreamUser, FederationError> {
    let mapped = &provider.claims;
    let text = |name: &str| match claim(claims, name) {
        Some(Value::String(s)) if !s.is_empty() => Some(s.clone()),
        Some(Value::Number(n)) => Some(n.to_string()),
        _ => None,
    };
    let subject = text(&mapped.subject)
        .filter(|s| s.len() <= 255)
        .ok_or_else(|| FederationError::MissingClaim(mapped.subject.clone()))?;
    let email = text(&mapped.email).and_then(|e| email::normalize(&e));
    let email_verified = match claim(claims, &mapped.email_verified) {
        Some(Value::Bool(b)) => *b,
        Some(Value::String(s)) => s.eq_ignore_ascii_case("true"),
        _ => false,
    };
    Ok(UpstreamUser {
        provider: provider.id.clone(),
        subject,
        email,
        email_verified,
        name: text(&mapped.name).map(|n| n.chars().take(128).collect()),
    })
}

/// The claim `name`; a dotted name that is no claim of its own walks into objects
/// (`response.id` of Naver's user API, `kakao_account.email` of Kakao's).
fn claim<'a>(claims: &'a Claims, name: &str) -> Option<&'a Value> {
    if let Some(value) = claims.get(name) {
        return Some(value);
    }
    let mut parts = name.split('.');
    let mut value = claims.get(parts.next()?)?;
    for part in parts {
        value = value.as_object()?.get(part)?;
    }
    Some(value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{ClaimMapping, ProviderKind};

    fn provider(claims: ClaimMapping) -> ProviderConfig {
        ProviderConfig {
            id: "gh".into(),
            display_name: "GitHub".into(),
            kind: ProviderKind::Oauth2,
            issuer: None,
            authorization_endpoint: None,
            token_endpoint: None,
            userinfo_endpoint: None,
            emails_endpoint: None,
            client_id: "c".into(),
            client_secret: None,
            client_secret_env: None,
            scopes: Vec::new(),
            claims,
            trust_email: false,
            secret_from_env: None,
        }
    }

    fn claims(value: Value) -> Claims {
        match value {
            Value::Object(map) => map,
            _ => Claims::new(),
        }
    }

    #[test]
    fn claims_are_read_by_the_mapped_names() {
        let github = provider(ClaimMapping {
            subject: "id".into(),
            name: "login".into(),
            ..ClaimMapping::default()
        });
        let user = map_claims(
            &github,
            &claims(json!({"id": 583231, "login": "octocat", "email": " Octo@Example.COM ", "email_verified": true})),
        )
        .unwrap();
        assert_eq!(user.subject, "583231");
        assert_eq!(user.email.as_deref(), Some("octo@example.com"));
        assert!(user.email_verified);
        assert_eq!(user.name.as_deref(), Some("octocat"));
    }

    #[test]
    fn a_missing_subject_is_refused_and_an_unstated_verification_is_false() {
        let oidc = provider(ClaimMapping::default());
        assert!(matches!(
            map_claims(&oidc, &claims(json!({"email": "a@b.c"}))),
            Err(FederationError::MissingClaim(name)) if name == "sub"
        ));
        let user = map_claims(&oidc, &claims(json!({"sub": "x", "email": "not an address"}))).unwrap();
        assert_eq!(user.email, None);
        assert!(!user.email_verified);
        let user = map_claims(&oidc, &claims(json!({"sub": "x", "email_verified": "TRUE"}))).unwrap();
        assert!(user.email_verified);
    }

    #[test]
    fn dotted_names_reach_into_nested_user_apis() {
        let kakao = provider(ClaimMapping {
            subject: "id".into(),
            email: "kakao_account.email".into(),
            email_verified: "kakao_account.is_email_verified".into(),
            name: "kakao_account.profile.nickname".into(),
        });
        let user = map_claims(
            &kakao,
            &claims(json!({"id": 123, "kakao_account": {"email": "k@example.kr", "is_email_verified": true, "profile": {"nickname": "라이언"}}})),
        )
        .unwrap();
        assert_eq!(
            (user.subject.as_str(), user.email.as_deref()),
            ("123", Some("k@example.kr"))
        );
        assert!(user.email_verified);
        assert_eq!(user.name.as_deref(), Some("라이언"));
    }
}
