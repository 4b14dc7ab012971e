//! The OAuth 2.0 / OpenID Connect provider: authorization code flow with PKCE and SSO,
//! consent, the token endpoint's grants (authorization code, client credentials, the legacy
//! password grant for clients that enable it), ID tokens, userinfo, and logout — RP-initiated
//! and back-channel.
//!
//! Browser login at the provider is an *SSO session* (a cookie whose secret is stored as a
//! hash). Each client that obtains tokens through it gets a token session of its own in the
//! token engine, linked to the SSO session; ending the SSO session ends them all and tells
//! every client that registered a back-channel logout URI.

pub mod authorize;
pub mod claims;
pub mod device;
pub mod id_token;
pub mod par;

use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Map, Value};
use tessera_proto::claims::{ClaimsRequest, MalformedClaims};
use tessera_proto::OAuthErrorCode;
use tessera_store::durable::{
    AuthorizationCodeRecord, ClientRecord, ClientStore, ClusterStore, CodeRedemption, OidcStore,
    OutboxRecord, SessionRecord, SsoSessionRecord, UserRecord, UserStore,
};
use tessera_store::ephemeral::EphemeralStore;
use tessera_store::StoreError;

use self::authorize::{is_code_verifier, redirect_with, AuthorizeRequest};
use self::id_token::{IdTokenClaims, LogoutTokenClaims, BACKCHANNEL_LOGOUT_EVENT};
use crate::accounts::throttle::Throttle;
use crate::audit::{AuditEvent, Auditor, RequestContext};
use crate::clock::Clock;
use crate::config::Config;
use crate::error::OAuthFailure;
use crate::keys::KeyRing;
use crate::outbound::{is_success, Outbound, Post};
use crate::tokens::opaque::{hashes_equal, random_b64, random_id, sha256_b64};
use crate::tokens::{Issued, Login, Presented, TokenError, TokenService};

/// Lifetime of an authorization code (single use).
pub const CODE_TTL_SECS: i64 = 60;
/// Lifetime of an ID token.
pub const ID_TOKEN_TTL_SECS: i64 = 3600;
/// Lifetime of a back-channel logout token.
const LOGOUT_TOKEN_TTL_SECS: i64 = 120;
/// Delivery attempts of a back-channel logout, with doubling pauses from one second.
const LOGOUT_ATTEMPTS: i64 = 3;
/// How long one back-channel logout delivery may take.
const BACKCHANNEL_TIMEOUT: Duration = Duration::from_secs(5);
/// Seconds a back-channel delivery is claimed for while one node attempts it; if that node
/// dies, another retries it after this.
const LOGOUT_CLAIM_SECS: i64 = 30;
/// Most back-channel deliveries attempted in one pass of the outbox.
const LOGOUT_BATCH: u32 = 50;

/// What happens after a valid authorization request.
#[derive(Debug)]
pub enum Next {
    /// Show the login page.
    Login,
    /// Show the consent page for this user.
    Consent,
    /// Redirect to the client (a code, or an OAuth error).
    Redirect(String),
}

/// What a browser sign-in granted a client: whose, through which SSO session, how and
/// when they signed in, and the scope.
pub(super) struct BrowserGrant<'a> {
    pub user_id: &'a str,
    pub sso_session_id: &'a str,
    /// Space-separated (RFC 8176).
    pub amr: &'a str,
    pub auth_time: i64,
    pub scope: &'a str,
}

/// The tokens of a grant, ready for the token response.
#[derive(Debug)]
pub struct Granted {
    pub access_token: String,
    pub expires_in: i64,
    pub refresh_token: Option<String>,
    pub id_token: Option<String>,
    pub scope: String,
}

#[derive(Clone)]
pub struct Provider {
    config: Arc<Config>,
    issuer: Arc<str>,
    keys: Arc<KeyRing>,
    clients: Arc<dyn ClientStore>,
    store: Arc<dyn OidcStore>,
    users: Arc<dyn UserStore>,
    tokens: Arc<TokenService>,
    ephemeral: Arc<dyn EphemeralStore>,
    outbox: Arc<dyn ClusterStore>,
    audit: Auditor,
    clock: Arc<dyn Clock>,
    outbound: Arc<dyn Outbound>,
    throttle: Throttle,
}

pub struct ProviderParts {
    pub config: Arc<Config>,
    pub keys: Arc<KeyRing>,
    pub clients: Arc<dyn ClientStore>,
    pub store: Arc<dyn OidcStore>,
    pub users: Arc<dyn UserStore>,
    pub tokens: Arc<TokenService>,
    /// Shared between nodes: where a code replay is flagged for the winning redemption.
    pub ephemeral: Arc<dyn EphemeralStore>,
    /// Back-channel logout deliveries, durable so that a retry survives this node.
    pub outbox: Arc<dyn ClusterStore>,
    pub audit: Auditor,
    pub clock: Arc<dyn Clock>,
    /// Where back-channel logout tokens are posted.
    pub outbound: Arc<dyn Outbound>,
    /// Counts guesses at the device grant's user codes (with the login counters' rules).
    pub throttle: Throttle,
}

fn redirect_error(
    request: &AuthorizeRequest,
    issuer: &str,
    error: OAuthErrorCode,
    description: &str,
) -> String {
    let mut params = vec![
        ("error", error.as_str()),
        ("error_description", description),
        ("iss", issuer),
    ];
    if let Some(state) = &request.state {
        params.push(("state", state));
    }
    redirect_with(&request.redirect_uri, &params)
}

impl Provider {
    pub fn new(parts: ProviderParts) -> Self {
        Provider {
            issuer: parts.config.issuer().into(),
            config: parts.config,
            keys: parts.keys,
            clients: parts.clients,
            store: parts.store,
            users: parts.users,
            tokens: parts.tokens,
            ephemeral: parts.ephemeral,
            outbox: parts.outbox,
            audit: parts.audit,
            clock: parts.clock,
            outbound: parts.outbound,
            throttle: parts.throttle,
        }
    }

    pub fn clients(&self) -> &Arc<dyn ClientStore> {
        &self.clients
    }

    /// The guess counters (the device page's user codes).
    pub fn throttle(&self) -> &Throttle {
        &self.throttle
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The user's alive SSO session behind a cookie secret, if the user is still enabled.
    pub async fn sso_session(
        &self,
        secret: Option<&str>,
    ) -> Result<Option<(SsoSessionRecord, UserRecord)>, StoreError> {
        let Some(secret) = secret.filter(|s| !s.is_empty() && s.len() <= 128) else {
            return Ok(None);
        };
        let now = self.clock.now();
        let Some(sso) = self.store.sso_session_by_secret(&sha256_b64(secret), now).await? else {
            return Ok(None);
        };
        match self.users.user(&sso.user_id).await? {
            Some(user) if user.disabled_at.is_none() => Ok(Some((sso, user))),
            _ => Ok(None),
        }
    }

    /// Starts an SSO session after a successful login; returns it with the cookie secret.
    /// `idp`: the upstream provider of a federated sign-in.
    pub async fn start_sso(
        &self,
        user: &UserRecord,
        amr: &[&str],
        idp: Option<&str>,
        context: &RequestContext,
    ) -> Result<(SsoSessionRecord, String), StoreError> {
        let now = self.clock.now();
        let secret = random_b64(32);
        let sso = SsoSessionRecord {
            id: random_id(),
            secret_hash: sha256_b64(&secret),
            user_id: user.id.clone(),
            auth_time: now,
            amr: amr.join(" "),
            created_at: now,
            last_seen_at: now,
            expires_at: now.saturating_add(self.sso_ttl()),
            revoked_at: None,
            idp: idp.map(str::to_owned),
        };
        self.store.create_sso_session(&sso).await?;
        self.audit
            .record(
                context,
                AuditEvent::new("sso.started", "success")
                    .actor(format!("user:{}", user.id))
                    .subject(&user.id)
                    .session(&sso.id),
            )
            .await;
        Ok((sso, secret))
    }

    /// Seconds an SSO session (and its cookie) lives.
    pub fn sso_ttl(&self) -> i64 {
        i64::try_from(self.config.tokens.refresh_token_ttl_secs).unwrap_or(2_592_000)
    }

    /// Decides what an authorization request needs, given the browser's SSO session.
    /// `fresh` is true right after a login on this request (so `prompt=login` and `max_age`
    /// are satisfied).
    pub async fn decide(
        &self,
        request: &AuthorizeRequest,
        sso: Option<&(SsoSessionRecord, UserRecord)>,
        fresh: bool,
        context: &RequestContext,
    ) -> Result<Next, StoreError> {
        if let Some(to) = &request.continue_to {
            // A sign-in for another hosted page: once signed in, on to it.
            return Ok(match sso {
                Some(_) => Next::Redirect(to.clone()),
                None => Next::Login,
            });
        }
        let now = self.clock.now();
        let needs_login = match sso {
            None => true,
            Some((session, _)) => {
                // A sign-in without the class asked for (`acr_values`: step-up to MFA), or
                // without the second factor the client's policy requires, is done again;
                // right after a login the user gave what they have.
                !fresh
                    && (must_reauthenticate(request.prompt.login, request.max_age, session.auth_time, now)
                        || !request.acr_met_by(&session.amr)
                        || !self.policy_met_by(&request.client, &session.amr))
            }
        };
        // OIDC Core §5.5.1: a request for a given `sub` is answered for that user only.
        let other_user = match (request.requested_subject(), sso) {
            (Some(wanted), Some((_, user))) => wanted != user.id,
            _ => false,
        };
        if other_user && fresh {
            return Ok(Next::Redirect(redirect_error(
                request,
                &self.issuer,
                OAuthErrorCode::LoginRequired,
                "the signed-in user is not the one requested",
            )));
        }
        if needs_login || other_user {
            if request.prompt.none {
                return Ok(Next::Redirect(redirect_error(
                    request,
                    &self.issuer,
                    OAuthErrorCode::LoginRequired,
                    "the user is not signed in",
                )));
            }
            return Ok(Next::Login);
        }
        let Some((session, user)) = sso else {
            return Ok(Next::Login);
        };
        if !self.has_consent(request, &user.id).await? {
            if request.prompt.none {
                return Ok(Next::Redirect(redirect_error(
                    request,
                    &self.issuer,
                    OAuthErrorCode::ConsentRequired,
                    "the user has not consented",
                )));
            }
            return Ok(Next::Consent);
        }
        self.store.touch_sso_session(&session.id, now).await?;
        Ok(Next::Redirect(
            self.issue_code(request, session, user, context).await?,
        ))
    }

    /// Whether a sign-in whose methods are `amr` meets `client`'s second-factor policy:
    /// under `required`, only a sign-in that passed a factor. (An SSO session started at a
    /// client with a laxer policy must not carry a password-only sign-in into this one.)
    pub fn policy_met_by(&self, client: &ClientRecord, amr: &str) -> bool {
        crate::mfa::client_policy(client, self.config.mfa.policy) != crate::config::MfaPolicy::Required
            || amr.split_ascii_whitespace().any(|m| m == "mfa")
    }

    async fn has_consent(&self, request: &AuthorizeRequest, user_id: &str) -> Result<bool, StoreError> {
        if request.client.first_party {
            return Ok(true);
        }
        if request.prompt.consent {
            return Ok(false);
        }
        let granted = self
            .store
            .consent(user_id, &request.client.client_id)
            .await?
            .unwrap_or_default();
        let granted: Vec<&str> = granted.split_ascii_whitespace().collect();
        Ok(request.scope.iter().all(|s| granted.contains(&s.as_str())))
    }

    /// The user's answer on the consent page.
    pub async fn consent_decision(
        &self,
        request: &AuthorizeRequest,
        sso: &(SsoSessionRecord, UserRecord),
        allow: bool,
        context: &RequestContext,
    ) -> Result<String, StoreError> {
        let (session, user) = sso;
        let event = if allow {
            "consent.granted"
        } else {
            "consent.denied"
        };
        self.audit
            .record(
                context,
                AuditEvent::new(event, "success")
                    .actor(format!("user:{}", user.id))
                    .subject(&user.id)
                    .client(&request.client.client_id)
                    .detail(json!({ "scope": request.scope_string() })),
            )
            .await;
        if !allow {
            return Ok(redirect_error(
                request,
                &self.issuer,
                OAuthErrorCode::AccessDenied,
                "the user denied the request",
            ));
        }
        self.store
            .grant_consent(
                &user.id,
                &request.client.client_id,
                &request.scope_string(),
                self.clock.now(),
            )
            .await?;
        self.issue_code(request, session, user, context).await
    }

    async fn issue_code(
        &self,
        request: &AuthorizeRequest,
        sso: &SsoSessionRecord,
        user: &UserRecord,
        context: &RequestContext,
    ) -> Result<String, StoreError> {
        let now = self.clock.now();
        let code = random_b64(32);
        self.store
            .create_authorization_code(&AuthorizationCodeRecord {
                code_hash: sha256_b64(&code),
                client_id: request.client.client_id.clone(),
                user_id: user.id.clone(),
                sso_session_id: sso.id.clone(),
                redirect_uri: request.redirect_uri.clone(),
                scope: request.scope_string(),
                nonce: request.nonce.clone(),
                code_challenge: request.code_challenge.clone(),
                code_challenge_method: request.code_challenge.as_ref().map(|_| "S256".to_owned()),
                auth_time: sso.auth_time,
                amr: sso.amr.clone(),
                created_at: now,
                expires_at: now + CODE_TTL_SECS,
                used_at: None,
                token_session_id: None,
                claims: request.claims.as_ref().map(|c| c.to_text()),
                dpop_jkt: request.dpop_jkt.clone(),
            })
            .await?;
        self.audit
            .record(
                context,
                AuditEvent::new("code.issued", "success")
                    .subject(&user.id)
                    .client(&request.client.client_id),
            )
            .await;
        let mut params = vec![("code", code.as_str()), ("iss", &*self.issuer)];
        if let Some(state) = &request.state {
            params.push(("state", state));
        }
        Ok(redirect_with(&request.redirect_uri, &params))
    }

    /// `grant_type=authorization_code` (RFC 6749 §4.1.3, RFC 7636 §4.6). `dpop_jkt`: the
    /// DPoP key the request proved (RFC 9449), which the tokens are bound to.
    #[allow(clippy::too_many_arguments)]
    pub async fn exchange_code(
        &self,
        client: &ClientRecord,
        code: &str,
        redirect_uri: Option<&str>,
        verifier: Option<&str>,
        dpop_jkt: Option<&str>,
        context: &RequestContext,
    ) -> Result<Granted, OAuthFailure> {
        let invalid = |why: &str| {
            OAuthFailure::new(
                OAuthErrorCode::InvalidGrant,
                "the authorization code is invalid, expired or used",
            )
            .caused_by(why.to_owned())
        };
        let now = self.clock.now();
        let code_hash = sha256_b64(code);
        let record = match self.store.redeem_authorization_code(&code_hash, now).await? {
            CodeRedemption::Redeemed(record) => record,
            CodeRedemption::Replayed(record) => {
                // Someone else has (or had) this code: revoke what it issued (RFC 6749
                // §4.1.2). The winning redemption may not have recorded its session yet, so
                // first flag the replay where the winner looks after recording (below), then
                // read the code again: whichever of the two comes second sees the other.
                self.ephemeral
                    .set(&replay_flag(&code_hash), b"1", Duration::from_secs(600))
                    .await?;
                let session = match self.store.redeem_authorization_code(&code_hash, now).await? {
                    CodeRedemption::Replayed(fresh) => fresh.token_session_id,
                    _ => record.token_session_id.clone(),
                };
                if let Some(session_id) = &session {
                    self.tokens
                        .end_session(session_id, "code_replayed", "system", context)
                        .await
                        .map_err(token_failure)?;
                }
                self.audit
                    .record(
                        context,
                        AuditEvent::new("code.replayed", "failure")
                            .subject(&record.user_id)
                            .client(&record.client_id),
                    )
                    .await;
                return Err(invalid("code replayed"));
            }
            CodeRedemption::Invalid => return Err(invalid("unknown or expired code")),
        };
        if record.client_id != client.client_id {
            return Err(invalid("code issued to another client"));
        }
        if redirect_uri != Some(record.redirect_uri.as_str()) {
            return Err(invalid("redirect_uri does not match the authorization request"));
        }
        match (record.code_challenge.as_deref(), verifier) {
            (Some(challenge), Some(verifier)) if is_code_verifier(verifier) => {
                let computed = sha256_b64(verifier);
                if !hashes_equal(&computed, challenge) {
                    return Err(invalid("PKCE verifier does not match"));
                }
            }
            (Some(_), _) => return Err(invalid("PKCE verifier missing or malformed")),
            // A verifier without a challenge is a downgrade attempt (OAuth 2.1 §4.1.3).
            (None, Some(_)) => return Err(invalid("code_verifier sent for a code without a challenge")),
            (None, None) => {}
        }
        // RFC 9449 §10: a code bound to a key is redeemed only with a proof of that key.
        if record.dpop_jkt.is_some() && record.dpop_jkt.as_deref() != dpop_jkt {
            return Err(invalid(
                "the code is bound to a DPoP key the request did not prove",
            ));
        }
        let grant = BrowserGrant {
            user_id: &record.user_id,
            sso_session_id: &record.sso_session_id,
            amr: &record.amr,
            auth_time: record.auth_time,
            scope: &record.scope,
        };
        let (user, sso, issued) = self
            .start_granted_session(client, &grant, invalid, dpop_jkt, context)
            .await?;
        let amr: Vec<&str> = record.amr.split_ascii_whitespace().collect();
        self.store
            .attach_token_session(&code_hash, &issued.session.id)
            .await?;
        // A replay that came in before the line above could not find this session to revoke
        // it, so it left a flag: honour it.
        if self.ephemeral.get(&replay_flag(&code_hash)).await?.is_some() {
            self.tokens
                .end_session(&issued.session.id, "code_replayed", "system", context)
                .await
                .map_err(token_failure)?;
            return Err(invalid("code replayed while it was being redeemed"));
        }
        let id_token = if record.scope.split_ascii_whitespace().any(|s| s == "openid") {
            let requested = self
                .requested_id_token_claims(&user, &record.scope, record.claims.as_deref())
                .await?;
            Some(self.id_token(
                client,
                &user,
                &sso,
                requested,
                record.nonce.clone(),
                record.auth_time,
                &amr,
                &issued.access_token,
            )?)
        } else {
            None
        };
        Ok(self.granted(client, issued, id_token))
    }

    /// Starts the token session of what a browser sign-in granted `client` (a redeemed
    /// code, an approved device): its user must still be enabled and its SSO session alive
    /// (refused as `invalid` says otherwise). The session starts with the default active
    /// roles; a refresh may choose others.
    pub(super) async fn start_granted_session(
        &self,
        client: &ClientRecord,
        grant: &BrowserGrant<'_>,
        invalid: impl Fn(&str) -> OAuthFailure,
        dpop_jkt: Option<&str>,
        context: &RequestContext,
    ) -> Result<(UserRecord, SsoSessionRecord, Issued), OAuthFailure> {
        let now = self.clock.now();
        let user = self
            .users
            .user(grant.user_id)
            .await?
            .filter(|u| u.disabled_at.is_none())
            .ok_or_else(|| invalid("user gone or disabled"))?;
        let sso = self
            .store
            .sso_session(grant.sso_session_id)
            .await?
            .filter(|s| s.is_alive(now))
            .ok_or_else(|| invalid("the sign-in session ended"))?;
        let amr: Vec<&str> = grant.amr.split_ascii_whitespace().collect();
        let issued = self
            .tokens
            .start_session_bound(
                Login {
                    subject: &user.id,
                    client,
                    channel: None,
                    scope: grant.scope,
                    roles: &user.roles,
                    role_terms: &user.role_terms,
                    active_roles: None,
                    amr: &amr,
                    auth_time: grant.auth_time,
                    sso_session_id: Some(&sso.id),
                    idp: sso.idp.as_deref(),
                },
                dpop_jkt,
                context,
            )
            .await
            .map_err(token_failure)?;
        Ok((user, sso, issued))
    }

    /// `grant_type=password`: only for clients that enable it (legacy first-party apps).
    pub async fn password_grant(
        &self,
        client: &ClientRecord,
        user: &UserRecord,
        scope: Option<&str>,
        dpop_jkt: Option<&str>,
        context: &RequestContext,
    ) -> Result<Granted, OAuthFailure> {
        let scope = allowed_scope(client, scope)?;
        let issued = self
            .tokens
            .start_session_bound(
                Login {
                    subject: &user.id,
                    client,
                    channel: None,
                    scope: &scope,
                    roles: &user.roles,
                    role_terms: &user.role_terms,
                    active_roles: None,
                    amr: &["pwd"],
                    auth_time: self.clock.now(),
                    sso_session_id: None,
                    idp: None,
                },
                dpop_jkt,
                context,
            )
            .await
            .map_err(token_failure)?;
        Ok(self.granted(client, issued, None))
    }

    fn granted(&self, client: &ClientRecord, issued: Issued, id_token: Option<String>) -> Granted {
        let refresh_allowed = client.grant_types.iter().any(|g| g == "refresh_token");
        Granted {
            access_token: issued.access_token,
            expires_in: issued.expires_in,
            refresh_token: refresh_allowed.then(|| issued.refresh_token.secret().to_owned()),
            id_token,
            scope: issued.scope,
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn id_token(
        &self,
        client: &ClientRecord,
        user: &UserRecord,
        sso: &SsoSessionRecord,
        standard: Map<String, Value>,
        nonce: Option<String>,
        auth_time: i64,
        amr: &[&str],
        access_token: &str,
    ) -> Result<String, OAuthFailure> {
        let now = self.clock.now();
        let claims = IdTokenClaims {
            iss: self.issuer.to_string(),
            sub: user.id.clone(),
            aud: client.client_id.clone(),
            exp: now + ID_TOKEN_TTL_SECS,
            iat: now,
            auth_time,
            nonce,
            acr: tessera_proto::acr::of(amr).to_owned(),
            amr: amr.iter().map(|s| s.to_string()).collect(),
            sid: sso.id.clone(),
            idp: sso.idp.clone(),
            at_hash: Some(id_token::at_hash(access_token)),
            standard,
        };
        id_token::sign_id_token(&self.keys, &claims).map_err(|e| {
            OAuthFailure::new(OAuthErrorCode::ServerError, "the ID token could not be issued").caused_by(e)
        })
    }

    /// The standard claims of the ID token issued with a code. The scopes' claims are
    /// userinfo's (OIDC Core §5.4: an access token is issued), except the few relying parties
    /// read from the ID token and Tessera always put there ([`ID_TOKEN_SCOPE_CLAIMS`]:
    /// `email`, `email_verified`, `locale`, `updated_at`, as Keycloak and Google do); and
    /// those the request's `claims` parameter asked for in `id_token` (§5.5). All of them
    /// only as far as the granted scope releases them: the user consented to scopes.
    pub(crate) async fn requested_id_token_claims(
        &self,
        user: &UserRecord,
        scope: &str,
        claims_parameter: Option<&str>,
    ) -> Result<Map<String, Value>, OAuthFailure> {
        let request = match claims_parameter {
            Some(text) => Some(ClaimsRequest::parse(text).map_err(|MalformedClaims(why)| {
                OAuthFailure::new(OAuthErrorCode::ServerError, "the ID token could not be issued")
                    .caused_by(why.to_owned())
            })?),
            None => None,
        };
        let profile = self.users.profile(&user.id).await?;
        let mut released = claims::of_scope(user, &profile, scope);
        released.retain(|name, _| {
            ID_TOKEN_SCOPE_CLAIMS.contains(&name.as_str())
                || request.as_ref().is_some_and(|r| r.id_token.contains_key(name))
        });
        Ok(released)
    }

    /// `GET/POST /oauth2/userinfo`: the claims the access token's scope releases, for a
    /// token `presented` as Bearer or with a DPoP proof.
    pub async fn userinfo(&self, token: &str, presented: Presented<'_>) -> Result<Value, TokenError> {
        let (claims, session) = self
            .tokens
            .verify_presented(token, Some(self.tokens.audience()), presented)
            .await?;
        if session.is_none() || !claims.scope.split_ascii_whitespace().any(|s| s == "openid") {
            return Err(TokenError::InvalidScope);
        }
        let user = self
            .users
            .user(&claims.sub)
            .await?
            .ok_or(TokenError::InvalidToken(crate::tokens::access::Rejected::Revoked))?;
        let profile = self.users.profile(&user.id).await?;
        let mut body = claims::of_scope(&user, &profile, &claims.scope);
        body.insert("sub".to_owned(), Value::from(user.id));
        Ok(Value::Object(body))
    }

    /// Ends an SSO session: every token session that came through it ends too (refresh
    /// tokens at once, access tokens through the revocation feed), and each client with a
    /// back-channel logout URI is told.
    pub async fn end_sso(
        &self,
        sso_id: &str,
        reason: &str,
        actor: &str,
        context: &RequestContext,
    ) -> Result<bool, StoreError> {
        let now = self.clock.now();
        let sessions = self.store.sessions_of_sso(sso_id, now).await?;
        let Some(sso) = self.store.revoke_sso_session(sso_id, now).await? else {
            return Ok(false);
        };
        for session in &sessions {
            if let Err(err) = self.tokens.end_session(&session.id, reason, actor, context).await {
                tracing::warn!(error = %err, session = %session.id, "cannot end a token session of an SSO session");
            }
        }
        self.audit
            .record(
                context,
                AuditEvent::new("sso.ended", "success")
                    .actor(actor)
                    .subject(&sso.user_id)
                    .session(&sso.id)
                    .detail(json!({ "reason": reason, "token_sessions": sessions.len() })),
            )
            .await;
        self.notify_backchannel(&sso, &sessions, context).await;
        Ok(true)
    }

    /// Tells every client of the ending SSO session that has a back-channel logout URI:
    /// each notification goes to the durable outbox first, then this node makes the first
    /// attempt at once; retries (and attempts a dead node never made) are made by the
    /// outbox job of whichever node holds its lease.
    async fn notify_backchannel(
        &self,
        sso: &SsoSessionRecord,
        sessions: &[SessionRecord],
        context: &RequestContext,
    ) {
        let mut notified: Vec<&str> = Vec::new();
        for session in sessions {
            if notified.contains(&session.client_id.as_str()) {
                continue;
            }
            notified.push(&session.client_id);
            let client = match self.clients.client(&session.client_id).await {
                Ok(Some(client)) => client,
                _ => continue,
            };
            let Some(uri) = client.backchannel_logout_uri.clone() else {
                continue;
            };
            let now = self.clock.now();
            let record = OutboxRecord {
                id: random_id(),
                client_id: client.client_id.clone(),
                uri,
                user_id: sso.user_id.clone(),
                sso_session_id: sso.id.clone(),
                attempts: 0,
                // Claimed by this node's first attempt.
                next_attempt_at: now + LOGOUT_CLAIM_SECS,
                created_at: now,
                last_error: None,
            };
            if let Err(err) = self.outbox.enqueue_backchannel(&record).await {
                tracing::warn!(error = %err, "cannot queue a back-channel logout; attempting it once, without retries");
            }
            let this = self.clone();
            let context = context.clone();
            tokio::spawn(async move { this.attempt_backchannel(record, &context).await });
        }
    }

    /// Starts a delivery for every back-channel notification that is due: those whose
    /// node died before finishing (their claim ran out). The outbox job runs this; so can
    /// tests.
    pub async fn deliver_due_backchannel(&self) -> Result<(), StoreError> {
        let now = self.clock.now();
        let due = self
            .outbox
            .claim_backchannel(now, now + LOGOUT_CLAIM_SECS, LOGOUT_BATCH)
            .await?;
        for record in due {
            let this = self.clone();
            tokio::spawn(async move { this.attempt_backchannel(record, &RequestContext::default()).await });
        }
        Ok(())
    }

    /// Delivers a claimed notification: attempts with a freshly signed logout token each
    /// time and doubling pauses from one second, up to [`LOGOUT_ATTEMPTS`] in all. After
    /// each failure the row stays claimed for [`LOGOUT_CLAIM_SECS`] more, so if this node
    /// dies mid-way another node's outbox job finishes the attempts. The outcome is audited.
    async fn attempt_backchannel(&self, mut record: OutboxRecord, context: &RequestContext) {
        let mut pause = Duration::from_secs(1);
        loop {
            let attempt = record.attempts + 1;
            let error = match self.send_logout_token(&record).await {
                Ok(()) => {
                    if let Err(err) = self.outbox.finish_backchannel(&record.id).await {
                        tracing::warn!(error = %err, "cannot remove a delivered back-channel logout from the outbox");
                    }
                    self.audit
                        .record(
                            context,
                            AuditEvent::new("logout.backchannel_delivered", "success")
                                .subject(&record.user_id)
                                .client(&record.client_id)
                                .session(&record.sso_session_id)
                                .detail(json!({ "attempt": attempt })),
                        )
                        .await;
                    return;
                }
                Err(error) => error,
            };
            if attempt >= LOGOUT_ATTEMPTS {
                if let Err(err) = self.outbox.finish_backchannel(&record.id).await {
                    tracing::warn!(error = %err, "cannot remove a failed back-channel logout from the outbox");
                }
                self.audit
                    .record(
                        context,
                        AuditEvent::new("logout.backchannel_failed", "failure")
                            .subject(&record.user_id)
                            .client(&record.client_id)
                            .session(&record.sso_session_id)
                            .detail(json!({ "attempts": attempt, "error": error })),
                    )
                    .await;
                return;
            }
            let claim = self.clock.now() + LOGOUT_CLAIM_SECS;
            if let Err(err) = self
                .outbox
                .retry_backchannel(&record.id, attempt, claim, &error)
                .await
            {
                tracing::warn!(error = %err, "cannot record a back-channel logout attempt");
            }
            record.attempts = attempt;
            tokio::time::sleep(pause).await;
            pause *= 2;
        }
    }

    /// Signs a logout token for the notification and POSTs it; the error, if any, as text.
    async fn send_logout_token(&self, record: &OutboxRecord) -> Result<(), String> {
        let now = self.clock.now();
        let claims = LogoutTokenClaims {
            iss: self.issuer.to_string(),
            aud: record.client_id.clone(),
            iat: now,
            exp: now + LOGOUT_TOKEN_TTL_SECS,
            jti: random_id(),
            sub: record.user_id.clone(),
            sid: record.sso_session_id.clone(),
            events: json!({ BACKCHANNEL_LOGOUT_EVENT: {} }),
        };
        let token = id_token::sign_logout_token(&self.keys, &claims).map_err(|err| {
            tracing::error!(error = %err, "cannot sign a logout token");
            "cannot sign a logout token".to_owned()
        })?;
        let post = Post::form(
            &record.uri,
            &[("logout_token", token.as_str())],
            BACKCHANNEL_TIMEOUT,
        );
        match self.outbound.post(post).await {
            Ok(status) if is_success(status) => Ok(()),
            Ok(status) => Err(format!("status {status}")),
            Err(err) => Err(err.to_string()),
        }
    }

    /// The claims of an `id_token_hint` we issued (expired or not).
    pub fn id_token_hint(&self, token: &str) -> Option<IdTokenClaims> {
        id_token::verify_hint(&self.keys, token, &self.issuer)
    }

    pub fn issuer(&self) -> &str {
        &self.issuer
    }
}

/// The scope a client asks for at the token endpoint, within what it registered.
pub fn allowed_scope(client: &ClientRecord, requested: Option<&str>) -> Result<String, OAuthFailure> {
    let requested = requested.unwrap_or("");
    let mut scope: Vec<&str> = Vec::new();
    for s in requested.split_ascii_whitespace() {
        if !client.scopes.iter().any(|allowed| allowed == s) {
            return Err(OAuthFailure::new(
                OAuthErrorCode::InvalidScope,
                "a requested scope is not allowed for this client",
            ));
        }
        if !scope.contains(&s) {
            scope.push(s);
        }
    }
    Ok(scope.join(" "))
}

/// Whether a signed-in user must sign in again (OIDC Core §3.1.2.1): `prompt=login`, or a
/// sign-in older than `max_age` seconds. `max_age=0` is `prompt=login` — also within the
/// second of the sign-in, where the whole seconds elapsed are still 0.
fn must_reauthenticate(prompt_login: bool, max_age: Option<i64>, auth_time: i64, now: i64) -> bool {
    prompt_login || max_age.is_some_and(|age| age == 0 || now.saturating_sub(auth_time) > age)
}

/// The ephemeral key flagging that the code with this hash was presented again.
fn replay_flag(code_hash: &str) -> String {
    format!("code-replayed:{code_hash}")
}

fn token_failure(err: TokenError) -> OAuthFailure {
    err.into()
}

/// The scope claims an ID token carries without being asked for them (see
/// `Provider::requested_id_token_claims`).
pub const ID_TOKEN_SCOPE_CLAIMS: &[&str] = &["email", "email_verified", "locale", "updated_at"];

#[cfg(test)]
mod tests {
    use super::must_reauthenticate;

    #[test]
    fn max_age_zero_is_prompt_login_even_within_the_second() {
        let signed_in = 1_795_000_000;
        // Found by the openid-client interop test: max_age=0 right after a sign-in was
        // answered with a code, as "0 seconds elapsed" is not greater than 0.
        assert!(must_reauthenticate(false, Some(0), signed_in, signed_in));
        assert!(must_reauthenticate(false, Some(0), signed_in, signed_in + 5));
        assert!(must_reauthenticate(true, None, signed_in, signed_in));
        // Other ages: only a sign-in older than max_age.
        assert!(!must_reauthenticate(false, Some(60), signed_in, signed_in + 60));
        assert!(must_reauthenticate(false, Some(60), signed_in, signed_in + 61));
        assert!(!must_reauthenticate(
            false,
            None,
            signed_in,
            signed_in + 1_000_000
        ));
    }
}
