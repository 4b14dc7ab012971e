//! The token engine: every login path ends in [`TokenService::start_session`], every
//! refresh in [`TokenService::refresh`], every ending in [`TokenService::end_session`].
//!
//! - A session is created with its refresh-token family in one place, where the
//!   concurrent-session limit is enforced (so no login path can bypass it).
//! - Refresh tokens rotate on every use. Presenting an already rotated token is theft: the
//!   session and its family are revoked. The one exception is the grace window for a lost
//!   response: the same token, from the same client, within `tokens.refresh_grace_secs` of
//!   its rotation and before its successor was used, gets the *same* successor again (it is
//!   derived, not random), so a family never has two live tokens.
//! - Ending a session puts its `sid` on the revocation feed until its last access token
//!   expires, and announces it on the ephemeral pub/sub channel.

pub mod access;
mod introspection;
pub mod opaque;

pub use self::introspection::{Introspection, IntrospectionDetails};

use std::collections::BTreeMap;
use std::sync::Arc;

use jsonwebtoken::Algorithm;
use serde::Serialize;
use serde_json::json;
use tessera_store::durable::{
    ClientRecord, CreateOutcome, OidcStore, RevocationStore, RevokedKind, RotateOutcome, Rotation,
    SessionLimit, SessionRecord, SessionStore, UserStore,
};
use tessera_store::ephemeral::EphemeralStore;
use tessera_store::StoreError;

use self::access::{AccessClaims, Confirmation, Expectations, Rejected};
use self::opaque::{random_id, RefreshToken, SuccessorKey};
use crate::audit::{AuditEvent, Auditor, RequestContext};
use crate::authz::{Authz, AuthzError, Effective, Situation, MAX_TOKEN_PERMISSIONS};
use crate::clock::Clock;
use crate::config::{Config, OnLimit};
use crate::keys::{parse_alg, KeyRing};

/// The pub/sub channel on which revocations are announced (JSON, one entry per message).
pub const REVOCATIONS_CHANNEL: &str = "revocations";

#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    /// The grant (refresh token) is invalid, expired, revoked or another client's.
    #[error("invalid grant: {0}")]
    InvalidGrant(&'static str),
    #[error("requested scope exceeds the granted scope")]
    InvalidScope,
    #[error("invalid token: {0}")]
    InvalidToken(Rejected),
    #[error("unknown channel {0:?}")]
    UnknownChannel(String),
    #[error("the concurrent-session limit of this channel is reached")]
    SessionLimit,
    /// The roles asked to be active cannot be (not assigned, or a dynamic
    /// separation-of-duty rule).
    #[error("{0}")]
    Roles(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("signing failed: {0}")]
    Signing(String),
}

/// What a login hands to the engine.
#[derive(Debug, Clone)]
pub struct Login<'a> {
    pub subject: &'a str,
    pub client: &'a ClientRecord,
    /// The channel asked for; the client's own channel when `None`.
    pub channel: Option<&'a str>,
    /// Space-separated granted scope.
    pub scope: &'a str,
    /// The user's roles and the terms of some (`UserRecord::roles`, `role_terms`).
    pub roles: &'a [String],
    pub role_terms: &'a BTreeMap<String, serde_json::Value>,
    /// The roles the session asks to activate (dynamic separation of duty); `None`: every
    /// role not in a broken dynamic rule.
    pub active_roles: Option<&'a [String]>,
    /// Authentication methods used (RFC 8176), e.g. `["pwd"]`.
    pub amr: &'a [&'a str],
    pub auth_time: i64,
    /// The provider's browser session this login came through (OIDC flows).
    pub sso_session_id: Option<&'a str>,
    /// The upstream provider of a federated sign-in (the `idp` claim).
    pub idp: Option<&'a str>,
}

/// How an access token reached the provider, which decides the DPoP binding check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Presented<'a> {
    /// `Authorization: Bearer`: the token must not be DPoP-bound.
    Bearer,
    /// `Authorization: DPoP` with a proof (checked, its `ath` included) of the key with
    /// thumbprint `jkt`: the token must be bound to that key.
    Dpop { jkt: &'a str },
    /// Introspection (RFC 7662): the binding is reported, not checked.
    Introspected,
}

/// Tokens handed to a client.
#[derive(Debug)]
pub struct Issued {
    pub access_token: String,
    /// Unix seconds.
    pub access_expires_at: i64,
    pub expires_in: i64,
    pub refresh_token: RefreshToken,
    pub scope: String,
    pub session: SessionRecord,
}

/// The RFC 7662 introspection answer.
/// A session as `tessera sessions list --json` and `GET /admin/users/{id}/sessions` show
/// it: never a token.
#[derive(Debug, Clone, Serialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct SessionView {
    pub id: String,
    pub client_id: String,
    pub channel: String,
    pub user_agent: Option<String>,
    pub ip: Option<String>,
    pub created_at: i64,
    pub last_seen_at: i64,
    pub idle_expires_at: i64,
    pub absolute_expires_at: i64,
}

impl From<&SessionRecord> for SessionView {
    fn from(s: &SessionRecord) -> Self {
        SessionView {
            id: s.id.clone(),
            client_id: s.client_id.clone(),
            channel: s.channel.clone(),
            user_agent: s.user_agent.clone(),
            ip: s.ip.clone(),
            created_at: s.created_at,
            last_seen_at: s.last_seen_at,
            idle_expires_at: s.idle_expires_at,
            absolute_expires_at: s.absolute_expires_at,
        }
    }
}

pub struct TokenService {
    config: Arc<Config>,
    issuer: Arc<str>,
    audience: String,
    access_alg: Algorithm,
    keys: Arc<KeyRing>,
    sessions: Arc<dyn SessionStore>,
    revocations: Arc<dyn RevocationStore>,
    sso: Arc<dyn OidcStore>,
    ephemeral: Arc<dyn EphemeralStore>,
    audit: Auditor,
    clock: Arc<dyn Clock>,
    successors: SuccessorKey,
    users: Arc<dyn UserStore>,
    authz: Arc<Authz>,
}

/// What the engine is built from.
pub struct TokenServiceParts {
    pub config: Arc<Config>,
    pub keys: Arc<KeyRing>,
    pub sessions: Arc<dyn SessionStore>,
    pub revocations: Arc<dyn RevocationStore>,
    /// The provider's browser sessions: ending every session of a user ends these too.
    pub sso: Arc<dyn OidcStore>,
    pub ephemeral: Arc<dyn EphemeralStore>,
    pub audit: Auditor,
    pub clock: Arc<dyn Clock>,
    pub successors: SuccessorKey,
    /// The users whose current roles a refresh re-evaluates.
    pub users: Arc<dyn UserStore>,
    pub authz: Arc<Authz>,
}

impl TokenService {
    pub fn new(parts: TokenServiceParts) -> Self {
        let config = parts.config;
        TokenService {
            issuer: config.issuer().into(),
            audience: config.audience(),
            access_alg: parse_alg(&config.tokens.access_token_alg).unwrap_or(Algorithm::ES256),
            config,
            keys: parts.keys,
            sessions: parts.sessions,
            revocations: parts.revocations,
            sso: parts.sso,
            ephemeral: parts.ephemeral,
            audit: parts.audit,
            clock: parts.clock,
            successors: parts.successors,
            users: parts.users,
            authz: parts.authz,
        }
    }

    /// The `aud` of access tokens.
    pub fn audience(&self) -> &str {
        &self.audience
    }

    /// Creates a session for a completed login and issues its first tokens.
    pub async fn start_session(
        &self,
        login: Login<'_>,
        context: &RequestContext,
    ) -> Result<Issued, TokenError> {
        self.start_session_bound(login, None, context).await
    }

    /// [`TokenService::start_session`] for a request that proved possession of the DPoP key
    /// with thumbprint `dpop_jkt` (RFC 9449 §5): the access token is bound to it, and so are
    /// the refresh tokens of a public client (a confidential client's are bound to its
    /// authentication already).
    pub async fn start_session_bound(
        &self,
        login: Login<'_>,
        dpop_jkt: Option<&str>,
        context: &RequestContext,
    ) -> Result<Issued, TokenError> {
        let channel = login.channel.unwrap_or(&login.client.channel);
        if !self.config.channels().iter().any(|c| c == channel) {
            return Err(TokenError::UnknownChannel(channel.to_owned()));
        }
        let now = self.clock.now();
        let amr_class = tessera_proto::acr::of(login.amr);
        let active_roles = match login.active_roles {
            Some(chosen) => {
                let situation = situation(context, channel, amr_class, now);
                let chosen = self
                    .authz
                    .choose_roles(login.roles, login.role_terms, chosen, &situation)
                    .await
                    .map_err(roles_refused)?;
                Some(chosen.join(" "))
            }
            None => None,
        };
        let access_ttl = self.access_ttl(login.client);
        let absolute = now.saturating_add(self.family_ttl(login.client));
        let session = SessionRecord {
            id: random_id(),
            subject: login.subject.to_owned(),
            client_id: login.client.client_id.clone(),
            channel: channel.to_owned(),
            user_agent: context.user_agent.clone(),
            ip: context.ip.clone(),
            scope: login.scope.to_owned(),
            amr: login.amr.join(" "),
            roles: login.roles.join(" "),
            auth_time: login.auth_time,
            created_at: now,
            last_seen_at: now,
            idle_expires_at: now.saturating_add(self.idle_secs()).min(absolute),
            absolute_expires_at: absolute,
            access_expires_at: now.saturating_add(access_ttl),
            revoked_at: None,
            revoke_reason: None,
            sso_session_id: login.sso_session_id.map(str::to_owned),
            active_roles,
            dpop_jkt: dpop_jkt.filter(|_| is_public(login.client)).map(str::to_owned),
            idp: login.idp.map(str::to_owned),
        };
        let refresh = RefreshToken::generate();
        let first = tessera_store::durable::RefreshRecord {
            token_hash: refresh.hash(),
            session_id: session.id.clone(),
            client_id: session.client_id.clone(),
            generation: 0,
            issued_at: now,
            expires_at: absolute,
            rotated_at: None,
            successor_hash: None,
        };
        let revoked = match self
            .sessions
            .create_session(&session, &first, self.limit_for(channel))
            .await?
        {
            CreateOutcome::Created { revoked } => revoked,
            CreateOutcome::LimitReached => {
                self.audit
                    .record(
                        context,
                        AuditEvent::new("session.rejected", "failure")
                            .subject(login.subject)
                            .client(&login.client.client_id)
                            .detail(json!({ "reason": "session_limit", "channel": channel })),
                    )
                    .await;
                return Err(TokenError::SessionLimit);
            }
        };
        for ended in &revoked {
            self.announce_session_revoked(ended, "session_limit", "system", context)
                .await;
        }
        let grants = self
            .grants(&session, login.roles, login.role_terms, now, context)
            .await?;
        let mut claims = self.claims_for(&session, &grants, &session.scope, now, access_ttl);
        claims.cnf = Confirmation::of(dpop_jkt);
        let access_token = access::sign(&self.keys, self.access_alg, &claims).map_err(TokenError::Signing)?;
        self.audit
            .record(
                context,
                AuditEvent::new("session.created", "success")
                    .actor(format!("user:{}", login.subject))
                    .subject(login.subject)
                    .session(&session.id)
                    .client(&session.client_id)
                    .detail(json!({ "channel": channel, "amr": login.amr })),
            )
            .await;
        Ok(Issued {
            access_token,
            access_expires_at: claims.exp,
            expires_in: access_ttl,
            refresh_token: refresh,
            scope: session.scope.clone(),
            session,
        })
    }

    /// Exchanges a refresh token for a new access token and the token's successor.
    /// `scope`, when given, narrows the access token (never the family); `roles`, when
    /// given, are the roles the session activates from now on (checked before anything
    /// changes).
    pub async fn refresh(
        &self,
        presented: &str,
        client: &ClientRecord,
        scope: Option<&str>,
        roles: Option<&[String]>,
        context: &RequestContext,
    ) -> Result<Issued, TokenError> {
        self.refresh_bound(presented, client, scope, roles, None, context)
            .await
    }

    /// [`TokenService::refresh`] for a request that proved possession of the DPoP key with
    /// thumbprint `dpop_jkt`: the new access token is bound to it. A session whose refresh
    /// tokens are bound to a key refreshes only with a proof of that key (RFC 9449 §5);
    /// otherwise `invalid_grant`, and nothing changes.
    pub async fn refresh_bound(
        &self,
        presented: &str,
        client: &ClientRecord,
        scope: Option<&str>,
        roles: Option<&[String]>,
        dpop_jkt: Option<&str>,
        context: &RequestContext,
    ) -> Result<Issued, TokenError> {
        let presented =
            RefreshToken::parse(presented).ok_or(TokenError::InvalidGrant("malformed refresh token"))?;
        let presented_hash = presented.hash();
        self.check_refresh_binding(&presented_hash, dpop_jkt).await?;
        // What the request asks beyond a plain refresh is checked before the token rotates,
        // so that a refusal changes nothing.
        let chosen = if scope.is_some() || roles.is_some() {
            let session = self.live_session_of(&presented_hash, client).await?;
            narrow_scope(&session.scope, scope)?;
            match roles {
                Some(roles) => Some(self.choose_at_refresh(&session, roles, context).await?),
                None => None,
            }
        } else {
            None
        };
        let child = self.successors.successor_of(&presented);
        let now = self.clock.now();
        let access_ttl = self.access_ttl(client);
        let rotation = Rotation {
            presented_hash: presented_hash.clone(),
            client_id: client.client_id.clone(),
            child_hash: child.hash(),
            now,
            idle_secs: self.idle_secs(),
            access_expires_at: now.saturating_add(access_ttl),
            ip: context.ip.clone(),
            user_agent: context.user_agent.clone(),
        };
        let session = match self.sessions.rotate_refresh_token(&rotation).await? {
            RotateOutcome::Rotated { session, .. } => {
                self.audit
                    .record(
                        context,
                        AuditEvent::new("token.refreshed", "success")
                            .subject(&session.subject)
                            .session(&session.id)
                            .client(&client.client_id),
                    )
                    .await;
                session
            }
            RotateOutcome::NotRotated => {
                self.not_rotated(&presented_hash, &child, client, now, context)
                    .await?
            }
        };
        let access_scope = narrow_scope(&session.scope, scope)?;
        let mut session = session;
        if let Some(chosen) = chosen {
            let chosen = chosen.join(" ");
            self.sessions.set_active_roles(&session.id, &chosen, now).await?;
            session.active_roles = Some(chosen);
        }
        // Roles are read again: a change of the user's roles shows at the next refresh.
        let (assigned, terms) = match self.users.user(&session.subject).await? {
            Some(user) => (user.roles, user.role_terms),
            None => (
                session
                    .roles
                    .split_ascii_whitespace()
                    .map(str::to_owned)
                    .collect(),
                BTreeMap::new(),
            ),
        };
        let grants = self.grants(&session, &assigned, &terms, now, context).await?;
        let mut claims = self.claims_for(&session, &grants, &access_scope, now, access_ttl);
        claims.cnf = Confirmation::of(dpop_jkt);
        let access_token = access::sign(&self.keys, self.access_alg, &claims).map_err(TokenError::Signing)?;
        Ok(Issued {
            access_token,
            access_expires_at: claims.exp,
            expires_in: access_ttl,
            refresh_token: child,
            scope: access_scope,
            session,
        })
    }

    /// An access token for a client acting on its own behalf (client credentials, RFC 6749
    /// §4.4): `sub` is the client, there is no session and no refresh token. Returns the
    /// token and its lifetime in seconds.
    /// `dpop_jkt`: the DPoP key the request proved, which the token is bound to.
    pub async fn issue_client_token(
        &self,
        client: &ClientRecord,
        scope: &str,
        dpop_jkt: Option<&str>,
        context: &RequestContext,
    ) -> Result<(String, i64), TokenError> {
        let now = self.clock.now();
        let ttl = self.access_ttl(client);
        let claims = AccessClaims {
            iss: self.issuer.to_string(),
            sub: client.client_id.clone(),
            aud: self.audience.clone().into(),
            exp: now.saturating_add(ttl),
            nbf: now,
            iat: now,
            jti: random_id(),
            client_id: client.client_id.clone(),
            scope: scope.to_owned(),
            sid: None,
            roles: Vec::new(),
            permissions: Vec::new(),
            auth_time: None,
            acr: None,
            amr: Vec::new(),
            cnf: Confirmation::of(dpop_jkt),
            idp: None,
        };
        let token = access::sign(&self.keys, self.access_alg, &claims).map_err(TokenError::Signing)?;
        self.audit
            .record(
                context,
                AuditEvent::new("token.issued", "success")
                    .actor(format!("client:{}", client.client_id))
                    .client(&client.client_id)
                    .detail(json!({ "grant_type": "client_credentials", "scope": scope })),
            )
            .await;
        Ok((token, ttl))
    }

    /// A token that did not rotate: the grace window for a lost response, theft, or plain
    /// invalid.
    async fn not_rotated(
        &self,
        presented_hash: &str,
        child: &RefreshToken,
        client: &ClientRecord,
        now: i64,
        context: &RequestContext,
    ) -> Result<SessionRecord, TokenError> {
        let Some(stored) = self.sessions.refresh_token(presented_hash).await? else {
            return Err(TokenError::InvalidGrant("unknown refresh token"));
        };
        if stored.client_id != client.client_id {
            // Bound to its client (RFC 6749 §6); another client learns nothing more.
            return Err(TokenError::InvalidGrant("unknown refresh token"));
        }
        let Some(rotated_at) = stored.rotated_at else {
            return Err(TokenError::InvalidGrant("refresh token expired or session ended"));
        };
        let session = self.sessions.session(&stored.session_id).await?;
        let grace = i64::try_from(self.config.tokens.refresh_grace_secs).unwrap_or(0);
        if now - rotated_at <= grace && grace > 0 {
            let expected = child.hash();
            let successor_unused = match stored.successor_hash.as_deref() {
                Some(hash) if opaque::hashes_equal(hash, &expected) => self
                    .sessions
                    .refresh_token(hash)
                    .await?
                    .is_some_and(|s| s.rotated_at.is_none() && s.expires_at > now),
                _ => false,
            };
            if let Some(session) = session.as_ref().filter(|s| successor_unused && s.is_alive(now)) {
                let access_expires_at = now.saturating_add(self.access_ttl(client));
                self.sessions
                    .note_access_token(&session.id, access_expires_at, now)
                    .await?;
                self.audit
                    .record(
                        context,
                        AuditEvent::new("token.refreshed", "success")
                            .subject(&session.subject)
                            .session(&session.id)
                            .client(&client.client_id)
                            .detail(json!({ "grace": true })),
                    )
                    .await;
                return Ok(session.clone());
            }
        }
        // A rotated token presented again, outside the grace window or after its successor
        // was used: someone else holds a copy. End the whole family.
        if let Some(session) = session {
            self.audit
                .record(
                    context,
                    AuditEvent::new("token.reuse_detected", "failure")
                        .subject(&session.subject)
                        .session(&session.id)
                        .client(&client.client_id)
                        .detail(json!({ "generation": stored.generation, "rotated_at": rotated_at })),
                )
                .await;
            self.end_session(&session.id, "refresh_token_reuse", "system", context)
                .await?;
        }
        Err(TokenError::InvalidGrant("refresh token already used"))
    }

    /// Verifies an access token presented to this provider as a Bearer token: signature,
    /// issuer, lifetime, that neither its session nor the token itself was revoked, and
    /// that it is not DPoP-bound (a bound token needs a proof: [`Self::verify_presented`]).
    pub async fn verify_access_token(
        &self,
        token: &str,
        audience: Option<&str>,
    ) -> Result<(AccessClaims, Option<SessionRecord>), TokenError> {
        self.verify_presented(token, audience, Presented::Bearer).await
    }

    /// [`Self::verify_access_token`] for a token presented as `presented` says. A bound
    /// token must come with a proof of its key, and a proof with a bound token (RFC 9449
    /// §7.1).
    pub async fn verify_presented(
        &self,
        token: &str,
        audience: Option<&str>,
        presented: Presented<'_>,
    ) -> Result<(AccessClaims, Option<SessionRecord>), TokenError> {
        let now = self.clock.now();
        let expect = Expectations {
            issuer: &self.issuer,
            audience,
            now,
            leeway: i64::try_from(self.config.tokens.leeway_secs).unwrap_or(0),
            check_lifetime: true,
        };
        let claims = access::verify(&self.keys, token, &expect).map_err(TokenError::InvalidToken)?;
        match (claims.cnf.as_ref().map(|c| c.jkt.as_str()), presented) {
            (_, Presented::Introspected) | (None, Presented::Bearer) => {}
            (Some(bound), Presented::Dpop { jkt }) if bound == jkt => {}
            (None, Presented::Dpop { .. }) => return Err(TokenError::InvalidToken(Rejected::NotBound)),
            (Some(_), _) => return Err(TokenError::InvalidToken(Rejected::Unproven)),
        }
        // A user's token lives only as long as its session; a client's has none.
        let session = match &claims.sid {
            Some(sid) => Some(
                self.sessions
                    .session(sid)
                    .await?
                    .filter(|s| s.is_alive(now))
                    .ok_or(TokenError::InvalidToken(Rejected::Revoked))?,
            ),
            None => None,
        };
        if self
            .revocations
            .is_revoked(RevokedKind::Token, &claims.jti, now)
            .await?
        {
            return Err(TokenError::InvalidToken(Rejected::Revoked));
        }
        Ok((claims, session))
    }

    /// The session an access token of ours was issued in, whether or not it has expired
    /// (signature, issuer, type and key are checked).
    pub fn session_of_access_token(&self, token: &str) -> Result<String, TokenError> {
        let expect = Expectations {
            issuer: &self.issuer,
            audience: None,
            now: self.clock.now(),
            leeway: 0,
            check_lifetime: false,
        };
        access::verify(&self.keys, token, &expect)
            .map_err(TokenError::InvalidToken)?
            .sid
            .ok_or(TokenError::InvalidToken(Rejected::Revoked))
    }

    /// The session a refresh token belongs to, if it is one of ours (in any state).
    pub async fn session_of_refresh_token(&self, token: &str) -> Result<Option<String>, TokenError> {
        let Some(token) = RefreshToken::parse(token) else {
            return Ok(None);
        };
        Ok(self
            .sessions
            .refresh_token(&token.hash())
            .await?
            .map(|r| r.session_id))
    }

    /// Ends a session (its refresh family, and its access tokens through the feed).
    /// Returns whether it was alive.
    pub async fn end_session(
        &self,
        session_id: &str,
        reason: &str,
        actor: &str,
        context: &RequestContext,
    ) -> Result<bool, TokenError> {
        let now = self.clock.now();
        match self.sessions.revoke_session(session_id, reason, now).await? {
            Some(session) => {
                self.announce_session_revoked(&session, reason, actor, context)
                    .await;
                Ok(true)
            }
            None => Ok(false),
        }
    }

    /// Ends every session of `subject` (logout everywhere, password reset, a disabled user).
    pub async fn end_sessions_of(
        &self,
        subject: &str,
        reason: &str,
        actor: &str,
        context: &RequestContext,
    ) -> Result<usize, TokenError> {
        let now = self.clock.now();
        let ended = self.sessions.revoke_sessions_of(subject, reason, now).await?;
        for session in &ended {
            self.announce_session_revoked(session, reason, actor, context)
                .await;
        }
        // And the browser's sign-in at the provider, or its cookie would mint new codes.
        self.end_sso_sessions_of(subject, reason, actor, context).await?;
        Ok(ended.len())
    }

    /// Ends every SSO session (browser sign-in at the provider) of `subject`, leaving its
    /// token sessions alone (a password change keeps the session that made it).
    pub async fn end_sso_sessions_of(
        &self,
        subject: &str,
        reason: &str,
        actor: &str,
        context: &RequestContext,
    ) -> Result<usize, TokenError> {
        let ended = self.sso.revoke_sso_sessions_of(subject, self.clock.now()).await?;
        for sso in &ended {
            self.audit
                .record(
                    context,
                    AuditEvent::new("sso.ended", "success")
                        .actor(actor)
                        .subject(subject)
                        .session(&sso.id)
                        .detail(json!({ "reason": reason })),
                )
                .await;
        }
        Ok(ended.len())
    }

    /// Extends an alive session's idle expiry (never past its absolute expiry).
    pub async fn extend_session(&self, session_id: &str) -> Result<Option<SessionRecord>, TokenError> {
        let now = self.clock.now();
        Ok(self
            .sessions
            .extend_session(session_id, self.idle_secs(), now)
            .await?)
    }

    /// The session `session_id` while it is alive (not ended, neither expiry passed).
    pub async fn alive_session(&self, session_id: &str) -> Result<Option<SessionRecord>, TokenError> {
        let now = self.clock.now();
        Ok(self
            .sessions
            .session(session_id)
            .await?
            .filter(|s| s.is_alive(now)))
    }

    /// Seconds a session lives without activity (`sessions.idle_timeout_secs`).
    pub fn idle_timeout_secs(&self) -> i64 {
        self.idle_secs()
    }

    /// The alive sessions of `subject`.
    pub async fn sessions_of(&self, subject: &str) -> Result<Vec<SessionRecord>, TokenError> {
        Ok(self.sessions.alive_sessions(subject, self.clock.now()).await?)
    }

    async fn announce_session_revoked(
        &self,
        session: &SessionRecord,
        reason: &str,
        actor: &str,
        context: &RequestContext,
    ) {
        if session.access_expires_at > self.clock.now() {
            self.announce(RevokedKind::Session, &session.id, session.access_expires_at)
                .await;
        }
        self.audit
            .record(
                context,
                AuditEvent::new("session.revoked", "success")
                    .actor(actor)
                    .subject(&session.subject)
                    .session(&session.id)
                    .client(&session.client_id)
                    .detail(json!({ "reason": reason })),
            )
            .await;
    }

    /// Tells verifiers at once (pub/sub) of a revocation the durable feed already has (an
    /// API key's, say, which its own store transaction put there).
    pub async fn announce_revocation(&self, kind: RevokedKind, value: &str, expires_at: i64) {
        self.announce(kind, value, expires_at).await;
    }

    /// Tells verifiers at once (pub/sub); the durable feed already has the entry.
    async fn announce(&self, kind: RevokedKind, value: &str, expires_at: i64) {
        let message = json!({ "kind": kind.as_str(), "value": value, "exp": expires_at }).to_string();
        if let Err(err) = self.ephemeral.publish(REVOCATIONS_CHANNEL, &message).await {
            tracing::warn!(error = %err, "cannot announce a revocation; verifiers will see it at their next poll");
        }
    }

    /// The alive session of `client` that the refresh token with `presented_hash` belongs
    /// to (the rotation checks the token itself again).
    async fn live_session_of(
        &self,
        presented_hash: &str,
        client: &ClientRecord,
    ) -> Result<SessionRecord, TokenError> {
        let now = self.clock.now();
        let stored = self
            .sessions
            .refresh_token(presented_hash)
            .await?
            .ok_or(TokenError::InvalidGrant("unknown refresh token"))?;
        self.sessions
            .session(&stored.session_id)
            .await?
            .filter(|s| {
                s.is_alive(now) && s.client_id == client.client_id && stored.client_id == client.client_id
            })
            .ok_or(TokenError::InvalidGrant(
                "the session ended or is another client's",
            ))
    }

    /// Refuses a refresh of a session whose refresh tokens are bound to a DPoP key other than
    /// the one the request proved (or when it proved none). Read before the rotation, so a
    /// refusal changes nothing; a token that is unknown is left to the rotation to refuse.
    async fn check_refresh_binding(
        &self,
        presented_hash: &str,
        dpop_jkt: Option<&str>,
    ) -> Result<(), TokenError> {
        let Some(stored) = self.sessions.refresh_token(presented_hash).await? else {
            return Ok(());
        };
        let Some(session) = self.sessions.session(&stored.session_id).await? else {
            return Ok(());
        };
        match session.dpop_jkt.as_deref() {
            Some(bound) if dpop_jkt != Some(bound) => Err(TokenError::InvalidGrant(
                "the refresh token is bound to a DPoP key the request did not prove",
            )),
            _ => Ok(()),
        }
    }

    /// Checks the roles a refresh of `session` asks to activate against its user.
    async fn choose_at_refresh(
        &self,
        session: &SessionRecord,
        roles: &[String],
        context: &RequestContext,
    ) -> Result<Vec<String>, TokenError> {
        let user = self
            .users
            .user(&session.subject)
            .await?
            .ok_or(TokenError::InvalidGrant("the user is gone"))?;
        let amr: Vec<&str> = session.amr.split_ascii_whitespace().collect();
        let situation = situation(
            context,
            &session.channel,
            tessera_proto::acr::of(&amr),
            self.clock.now(),
        );
        self.authz
            .choose_roles(&user.roles, &user.role_terms, roles, &situation)
            .await
            .map_err(roles_refused)
    }

    /// What the roles `assigned` to the user of `session` (some on `terms`) grant now, with
    /// the session's choice of active roles; past the token's limit of permissions, none
    /// (audited).
    async fn grants(
        &self,
        session: &SessionRecord,
        assigned: &[String],
        terms: &BTreeMap<String, serde_json::Value>,
        now: i64,
        context: &RequestContext,
    ) -> Result<Effective, StoreError> {
        // Terms and conditions are checked against this request: its address and time, the
        // session's channel, and how the session's user signed in.
        let amr: Vec<&str> = session.amr.split_ascii_whitespace().collect();
        let situation = situation(context, &session.channel, tessera_proto::acr::of(&amr), now);
        let chosen: Option<Vec<String>> = session
            .active_roles
            .as_deref()
            .map(|roles| roles.split_ascii_whitespace().map(str::to_owned).collect());
        let mut grants = self
            .authz
            .session_grants(assigned, terms, chosen.as_deref(), &situation)
            .await?;
        if grants.permissions.len() > MAX_TOKEN_PERMISSIONS {
            self.audit
                .record(
                    context,
                    AuditEvent::new("token.permissions_overflow", "failure")
                        .subject(&session.subject)
                        .session(&session.id)
                        .detail(json!({ "permissions": grants.permissions.len(), "limit": MAX_TOKEN_PERMISSIONS })),
                )
                .await;
            grants.permissions.clear();
        }
        Ok(grants)
    }

    fn claims_for(
        &self,
        session: &SessionRecord,
        grants: &Effective,
        scope: &str,
        now: i64,
        ttl: i64,
    ) -> AccessClaims {
        let amr: Vec<String> = session.amr.split_ascii_whitespace().map(str::to_owned).collect();
        AccessClaims {
            iss: self.issuer.to_string(),
            sub: session.subject.clone(),
            aud: self.audience.clone().into(),
            exp: now.saturating_add(ttl),
            nbf: now,
            iat: now,
            jti: random_id(),
            client_id: session.client_id.clone(),
            scope: scope.to_owned(),
            sid: Some(session.id.clone()),
            roles: grants.roles.clone(),
            permissions: grants.permissions.clone(),
            auth_time: Some(session.auth_time),
            acr: Some(tessera_proto::acr::of(&amr).to_owned()),
            amr,
            cnf: None,
            idp: session.idp.clone(),
        }
    }

    fn access_ttl(&self, client: &ClientRecord) -> i64 {
        client
            .access_token_ttl_secs
            .unwrap_or_else(|| i64::try_from(self.config.tokens.access_token_ttl_secs).unwrap_or(900))
    }

    fn family_ttl(&self, client: &ClientRecord) -> i64 {
        client
            .refresh_token_ttl_secs
            .unwrap_or_else(|| i64::try_from(self.config.tokens.refresh_token_ttl_secs).unwrap_or(2_592_000))
    }

    fn idle_secs(&self) -> i64 {
        i64::try_from(self.config.sessions.idle_timeout_secs).unwrap_or(1800)
    }

    fn limit_for(&self, channel: &str) -> SessionLimit {
        let policy = self.config.channel_policy(channel);
        match (policy.max_sessions, policy.on_limit) {
            (0, _) => SessionLimit::Unlimited,
            (n, OnLimit::RevokeOldest) => SessionLimit::RevokeOldest(n),
            (n, OnLimit::Reject) => SessionLimit::Reject(n),
        }
    }
}

/// A client that cannot keep a secret: its refresh tokens are bound to its DPoP key.
fn is_public(client: &ClientRecord) -> bool {
    client.token_endpoint_auth_method == "none"
}

/// What conditions and assignment terms are checked against: the request (its address),
/// the session's channel and sign-in class, and the time.
fn situation<'a>(context: &RequestContext, channel: &'a str, acr: &'a str, now: i64) -> Situation<'a> {
    Situation {
        ip: context.ip.as_deref().and_then(|ip| ip.parse().ok()),
        channel: Some(channel),
        acr: Some(acr),
        at: Some(now),
    }
}

/// A refused choice of active roles, as the token endpoint says it.
fn roles_refused(err: AuthzError) -> TokenError {
    match err {
        AuthzError::Store(err) => TokenError::Store(err),
        other => TokenError::Roles(other.to_string()),
    }
}

/// The scope of a refreshed access token: the requested one if it is within the granted
/// one (RFC 6749 §6), otherwise `invalid_scope`.
fn narrow_scope(granted: &str, requested: Option<&str>) -> Result<String, TokenError> {
    let Some(requested) = requested.map(str::trim).filter(|r| !r.is_empty()) else {
        return Ok(granted.to_owned());
    };
    let granted: Vec<&str> = granted.split_ascii_whitespace().collect();
    let mut narrowed: Vec<&str> = Vec::new();
    for scope in requested.split_ascii_whitespace() {
        if !granted.contains(&scope) {
            return Err(TokenError::InvalidScope);
        }
        if !narrowed.contains(&scope) {
            narrowed.push(scope);
        }
    }
    Ok(narrowed.join(" "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scope_narrows_but_never_widens() {
        assert_eq!(narrow_scope("openid email", None).unwrap(), "openid email");
        assert_eq!(narrow_scope("openid email", Some("  ")).unwrap(), "openid email");
        assert_eq!(
            narrow_scope("openid email", Some("email email")).unwrap(),
            "email"
        );
        assert!(matches!(
            narrow_scope("openid", Some("openid admin")),
            Err(TokenError::InvalidScope)
        ));
    }
}
