//! Accounts: signup with e-mail verification, password login (throttled, with transparent
//! upgrade of old hashes), password reset and change, and the operator's actions (create,
//! disable, enable, delete, import). Every successful login ends in the token engine.

mod builtin;
pub mod email;
pub mod import;
mod login;
mod own;
pub mod profile;
mod roles;
pub mod throttle;

use std::collections::BTreeMap;
use std::sync::Arc;

use tessera_store::durable::{ClientRecord, ClientStore, OneTimeTokenRecord, UserRecord, UserStore};
use tessera_store::StoreError;
use tokio::sync::Semaphore;

use self::throttle::Throttle;
use crate::alerts::Alerts;
use crate::audit::{AuditEvent, Auditor, RequestContext};
use crate::authz::{AssignmentTerms, Authz, AuthzError};
use crate::clock::Clock;
use crate::config::Config;
use crate::mail::{self, Locale, Mailer, Outgoing};
use crate::mfa::{Challenge, Mfa, MfaError};
use crate::passwords::{self, PasswordError, PasswordHasher, PasswordPolicy, PolicyViolation};
use crate::tokens::opaque::{random_b64, random_id, sha256_b64};
use crate::tokens::{Issued, TokenError, TokenService};

pub use self::builtin::{HostedApp, ACCOUNT_APP, CONSOLE_APP, HOSTED_APPS};

/// The client of the first-party JSON API (`/auth/login`, `/auth/reissue`), created at
/// start-up if missing.
pub const FIRST_PARTY_CLIENT: &str = "tessera-first-party";

/// The audit actor of the command line's operator actions.
pub const OPERATOR: &str = "operator";

const VERIFY_EMAIL: &str = "verify_email";
const RESET_PASSWORD: &str = "reset_password";

#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    #[error("not a valid e-mail address")]
    InvalidEmail,
    #[error("{0}")]
    Policy(PolicyViolation),
    /// Wrong password or unknown account: the same answer for both.
    #[error("invalid credentials")]
    InvalidCredentials { captcha_required: bool },
    #[error("too many attempts")]
    Throttled { retry_after: u64 },
    #[error("the e-mail address is not verified")]
    EmailNotVerified,
    #[error("the account is disabled")]
    Disabled,
    /// A verification or reset token that is unknown, used or expired.
    #[error("the link is invalid or has expired")]
    InvalidLink,
    #[error("no such user")]
    NoSuchUser,
    #[error("a user with this e-mail exists")]
    EmailTaken,
    /// The action would change nothing (disabling a user who is already disabled).
    #[error("the user is already {0}")]
    Already(&'static str),
    #[error("invalid role name {0:?}: 1-64 of letters, digits and - _ : .")]
    InvalidRole(String),
    #[error(transparent)]
    InvalidProfile(#[from] profile::InvalidProfile),
    #[error(transparent)]
    Token(#[from] TokenError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("password hashing failed: {0}")]
    Password(#[from] PasswordError),
    /// The password was right and the account has a second factor: the sign-in goes on
    /// with the challenge (no tokens yet).
    #[error("a second factor is required")]
    MfaRequired(Challenge),
    /// The account has a second factor and this way of signing in cannot ask for it.
    #[error("this account signs in with a second factor")]
    MfaRequiredElsewhere,
    #[error(transparent)]
    Mfa(#[from] MfaError),
    #[error(transparent)]
    Authz(#[from] AuthzError),
}

/// What signup, reset and change are handed.
pub struct Accounts {
    config: Arc<Config>,
    issuer: Arc<str>,
    users: Arc<dyn UserStore>,
    clients: Arc<dyn ClientStore>,
    hasher: Arc<PasswordHasher>,
    policy: PasswordPolicy,
    mailer: Mailer,
    tokens: Arc<TokenService>,
    throttle: Throttle,
    alerts: Arc<Alerts>,
    mfa: Arc<Mfa>,
    authz: Arc<Authz>,
    api_keys: Arc<crate::apikeys::ApiKeys>,
    audit: Auditor,
    clock: Arc<dyn Clock>,
    /// Work done after the request that caused it was answered (see `forgot_password`).
    background: Semaphore,
}

/// How many answered requests may do their work at once; more wait their turn.
const BACKGROUND_PERMITS: usize = 16;

pub struct AccountsParts {
    pub config: Arc<Config>,
    pub users: Arc<dyn UserStore>,
    pub clients: Arc<dyn ClientStore>,
    pub hasher: Arc<PasswordHasher>,
    pub mailer: Mailer,
    pub tokens: Arc<TokenService>,
    pub throttle: Throttle,
    /// Told of every failed password check (abuse signals).
    pub alerts: Arc<Alerts>,
    /// Asked at every password sign-in whether a second factor must follow.
    pub mfa: Arc<Mfa>,
    /// Checks role assignments against separation-of-duty rules.
    pub authz: Arc<Authz>,
    /// A disabled or deleted user's API keys are revoked with their sessions.
    pub api_keys: Arc<crate::apikeys::ApiKeys>,
    pub audit: Auditor,
    pub clock: Arc<dyn Clock>,
}

impl Accounts {
    pub fn new(parts: AccountsParts) -> Self {
        Accounts {
            issuer: parts.config.issuer().into(),
            policy: PasswordPolicy::new(&parts.config.passwords),
            config: parts.config,
            users: parts.users,
            clients: parts.clients,
            hasher: parts.hasher,
            mailer: parts.mailer,
            tokens: parts.tokens,
            throttle: parts.throttle,
            alerts: parts.alerts,
            mfa: parts.mfa,
            authz: parts.authz,
            api_keys: parts.api_keys,
            audit: parts.audit,
            clock: parts.clock,
            background: Semaphore::new(BACKGROUND_PERMITS),
        }
    }

    async fn first_party(&self) -> Result<ClientRecord, AccountError> {
        Ok(self.ensure_first_party_client().await?)
    }

    /// Checks a new password against the policy and the user's history.
    async fn acceptable_password(
        &self,
        email: &str,
        password: &str,
        user_id: Option<&str>,
    ) -> Result<(), AccountError> {
        self.policy
            .check(password, &[email, email::local_part(email)])
            .map_err(AccountError::Policy)?;
        if let Some(id) = user_id {
            let mut previous = self
                .users
                .password_history(id, self.config.passwords.history)
                .await?;
            if let Some(current) = self.users.user(id).await?.and_then(|u| u.password_hash) {
                previous.insert(0, current);
            }
            previous.truncate(self.config.passwords.history);
            if passwords::is_reused(&self.hasher, password, &previous).await? {
                return Err(AccountError::Policy(PolicyViolation::Reused {
                    history: self.config.passwords.history,
                }));
            }
        }
        Ok(())
    }

    /// `POST /auth/signup`. An address that already has an account gets a notice by e-mail
    /// instead of a second account, and the caller the same answer either way.
    pub async fn signup(
        &self,
        raw_email: &str,
        password: &str,
        locale: Locale,
        context: &RequestContext,
    ) -> Result<String, AccountError> {
        let email = email::normalize(raw_email).ok_or(AccountError::InvalidEmail)?;
        self.acceptable_password(&email, password, None).await?;
        let now = self.clock.now();
        let hash = self.hasher.hash_async(password.to_owned()).await?;
        let user = UserRecord {
            id: random_id(),
            email: email.clone(),
            email_verified_at: None,
            password_hash: Some(hash),
            roles: Vec::new(),
            role_terms: Default::default(),
            locale: Some(locale.tag().to_owned()),
            disabled_at: None,
            created_at: now,
            updated_at: now,
            password_changed_at: Some(now),
        };
        match self.users.create_user(&user).await {
            Ok(()) => {
                self.send_verification(&user, locale).await?;
                self.audit
                    .record(
                        context,
                        AuditEvent::new("user.signed_up", "success")
                            .actor(format!("user:{}", user.id))
                            .subject(&user.id),
                    )
                    .await;
            }
            Err(StoreError::Conflict(_)) => {
                let (subject, text, html) =
                    mail::account_exists_email(locale, &format!("{}/auth/password/forgot", self.issuer));
                self.send_later(Outgoing {
                    to: email.clone(),
                    subject,
                    text,
                    html: Some(html),
                });
            }
            Err(other) => return Err(other.into()),
        }
        Ok(email)
    }

    /// A new single-use link token for `purpose`, replacing any unused older one (only the
    /// newest link works). Stored as its hash; the token itself goes into the e-mail.
    async fn issue_link_token(
        &self,
        user: &UserRecord,
        purpose: &str,
        ttl_secs: u64,
    ) -> Result<String, AccountError> {
        let now = self.clock.now();
        self.users
            .invalidate_one_time_tokens(&user.id, purpose, now)
            .await?;
        let token = random_b64(32);
        self.users
            .create_one_time_token(&OneTimeTokenRecord {
                token_hash: sha256_b64(&token),
                purpose: purpose.to_owned(),
                user_id: user.id.clone(),
                email: user.email.clone(),
                created_at: now,
                expires_at: now.saturating_add(i64::try_from(ttl_secs).unwrap_or(i64::MAX)),
                used_at: None,
                session_id: None,
            })
            .await?;
        Ok(token)
    }

    /// Creates a verification token for the user's current address and mails the link.
    async fn send_verification(&self, user: &UserRecord, locale: Locale) -> Result<(), AccountError> {
        let token = self
            .issue_link_token(user, VERIFY_EMAIL, self.config.accounts.verification_ttl_secs)
            .await?;
        let link = format!("{}/auth/verify-email?token={token}", self.issuer);
        let (subject, text, html) =
            mail::verification_email(locale, &link, self.config.accounts.verification_ttl_secs / 3600);
        self.send_later(Outgoing {
            to: user.email.clone(),
            subject,
            text,
            html: Some(html),
        });
        Ok(())
    }

    /// Sends in the background: the caller's answer (and its timing) must not depend on
    /// whether mail went out, nor on whether the address has an account.
    fn send_later(&self, message: Outgoing) {
        let mailer = self.mailer.clone();
        tokio::spawn(async move {
            if let Err(err) = mailer.send(message).await {
                tracing::error!(error = %err, "sending e-mail failed");
            }
        });
    }

    /// `GET /auth/verify-email?token=…`: single use; the address must not have changed since.
    pub async fn verify_email(&self, token: &str, context: &RequestContext) -> Result<String, AccountError> {
        let now = self.clock.now();
        let used = self
            .users
            .consume_one_time_token(&sha256_b64(token), VERIFY_EMAIL, now)
            .await?
            .ok_or(AccountError::InvalidLink)?;
        if !self
            .users
            .mark_email_verified(&used.user_id, &used.email, now)
            .await?
        {
            // Already verified, or the address changed after the link was sent.
            let current = self.users.user(&used.user_id).await?;
            if !current.is_some_and(|u| u.email == used.email && u.email_verified_at.is_some()) {
                return Err(AccountError::InvalidLink);
            }
        }
        self.audit
            .record(
                context,
                AuditEvent::new("email.verified", "success")
                    .actor(format!("user:{}", used.user_id))
                    .subject(&used.user_id),
            )
            .await;
        Ok(used.email)
    }

    /// `POST /auth/reissue`: a new pair from a refresh token of the first-party client. The
    /// access token sent along must be ours and belong to the same session (it may have
    /// expired: that is why the client reissues).
    pub async fn reissue(
        &self,
        access_token: &str,
        refresh_token: &str,
        roles: Option<&[String]>,
        context: &RequestContext,
    ) -> Result<Issued, AccountError> {
        let client = self.first_party().await?;
        let sid = self.tokens.session_of_access_token(access_token)?;
        let owner = self.tokens.session_of_refresh_token(refresh_token).await?;
        if owner.as_deref() != Some(sid.as_str()) {
            return Err(AccountError::Token(TokenError::InvalidGrant(
                "access and refresh token of different sessions",
            )));
        }
        Ok(self
            .tokens
            .refresh(refresh_token, &client, None, roles, context)
            .await?)
    }

    /// `POST /auth/password/forgot`: mails a reset link if the account exists and is
    /// enabled. The caller always gets the same answer, and gets it before the address is
    /// even looked up: a known address costs database writes, an audit row and a mail that
    /// an unknown one does not, and an answer that waited for them would tell by its timing
    /// which addresses have accounts. The work runs after the answer, a bounded number at a
    /// time; a failure there is logged (the user asks again, as for a lost mail).
    pub fn forgot_password(
        self: &Arc<Self>,
        raw_email: &str,
        fallback_locale: Locale,
        context: &RequestContext,
    ) {
        let Some(email) = email::normalize(raw_email) else {
            return;
        };
        let accounts = Arc::clone(self);
        let context = context.clone();
        tokio::spawn(async move {
            let Ok(_permit) = accounts.background.acquire().await else {
                return;
            };
            if let Err(err) = accounts.send_reset_link(&email, fallback_locale, &context).await {
                tracing::error!(error = %err, "password reset request failed");
            }
        });
    }

    /// The work of a forgot-password request, after it was answered.
    async fn send_reset_link(
        &self,
        email: &str,
        fallback_locale: Locale,
        context: &RequestContext,
    ) -> Result<(), AccountError> {
        let Some(user) = self.users.user_by_email(email).await? else {
            return Ok(());
        };
        if user.disabled_at.is_some() {
            return Ok(());
        }
        let token = self
            .issue_link_token(&user, RESET_PASSWORD, self.config.accounts.reset_ttl_secs)
            .await?;
        let locale = user
            .locale
            .as_deref()
            .map_or(fallback_locale, Locale::from_accept_language);
        let link = format!("{}/auth/password/reset?token={token}", self.issuer);
        let (subject, text, html) =
            mail::password_reset_email(locale, &link, self.config.accounts.reset_ttl_secs / 60);
        self.send_later(Outgoing {
            to: user.email.clone(),
            subject,
            text,
            html: Some(html),
        });
        self.audit
            .record(
                context,
                AuditEvent::new("password.reset_requested", "success").subject(&user.id),
            )
            .await;
        Ok(())
    }

    /// `POST /auth/password/reset`: sets the password and ends every session of the user.
    /// The link is used up only once the new password is acceptable, so a rejected
    /// password can be corrected with the same link.
    pub async fn reset_password(
        &self,
        token: &str,
        password: &str,
        context: &RequestContext,
    ) -> Result<String, AccountError> {
        let now = self.clock.now();
        let hash = sha256_b64(token);
        let pending = self
            .users
            .peek_one_time_token(&hash, RESET_PASSWORD, now)
            .await?
            .ok_or(AccountError::InvalidLink)?;
        let user = self
            .users
            .user(&pending.user_id)
            .await?
            .ok_or(AccountError::InvalidLink)?;
        self.acceptable_password(&user.email, password, Some(&user.id))
            .await?;
        // Exactly one of concurrent resets with this link gets past here.
        self.users
            .consume_one_time_token(&hash, RESET_PASSWORD, now)
            .await?
            .ok_or(AccountError::InvalidLink)?;
        self.set_password(&user, password, "password.reset", context)
            .await?;
        // Whoever knew the old password is out.
        self.tokens
            .end_sessions_of(&user.id, "password_reset", &format!("user:{}", user.id), context)
            .await?;
        self.throttle.clear(&user.email).await?;
        Ok(user.email)
    }

    /// `POST /auth/password/change` for a signed-in user: the current password must be
    /// right; every other session of the user ends.
    pub async fn change_password(
        &self,
        user_id: &str,
        current_session: &str,
        current: &str,
        new: &str,
        context: &RequestContext,
    ) -> Result<(), AccountError> {
        let user = self.users.user(user_id).await?.ok_or(AccountError::NoSuchUser)?;
        self.check_current_password(&user, current, context).await?;
        self.acceptable_password(&user.email, new, Some(&user.id)).await?;
        self.set_password(&user, new, "password.changed", context).await?;
        // Every browser sign-in ends (whoever knew the old password); of the token sessions
        // only the one that made the change survives.
        self.tokens
            .end_sso_sessions_of(
                &user.id,
                "password_changed",
                &format!("user:{}", user.id),
                context,
            )
            .await?;
        for session in self.tokens.sessions_of(&user.id).await? {
            if session.id != current_session {
                self.tokens
                    .end_session(
                        &session.id,
                        "password_changed",
                        &format!("user:{}", user.id),
                        context,
                    )
                    .await?;
            }
        }
        Ok(())
    }

    /// Re-authentication of a signed-in user before a sensitive change: `password` must be
    /// the account's, counted by the same throttle as a login (a stolen session cannot
    /// guess it faster than a login could).
    pub async fn check_current_password(
        &self,
        user: &UserRecord,
        password: &str,
        context: &RequestContext,
    ) -> Result<(), AccountError> {
        let attempt = match self.throttle.admit(&user.email, context.ip.as_deref()).await? {
            Ok(attempt) => attempt,
            Err(refusal) => {
                return Err(AccountError::Throttled {
                    retry_after: refusal.retry_after(),
                })
            }
        };
        let stored = user
            .password_hash
            .clone()
            .ok_or(AccountError::InvalidCredentials {
                captcha_required: false,
            })?;
        if !self
            .hasher
            .verify_async(password.to_owned(), stored)
            .await?
            .matches
        {
            let captcha_required = self.throttle.captcha_required(&attempt);
            self.throttle.failed(&attempt).await?;
            return Err(AccountError::InvalidCredentials { captcha_required });
        }
        self.throttle.succeeded(attempt).await?;
        Ok(())
    }

    async fn set_password(
        &self,
        user: &UserRecord,
        password: &str,
        event: &'static str,
        context: &RequestContext,
    ) -> Result<(), AccountError> {
        let now = self.clock.now();
        let hash = self.hasher.hash_async(password.to_owned()).await?;
        self.users
            .set_password(&user.id, &hash, now, self.config.passwords.history)
            .await?;
        self.users
            .invalidate_one_time_tokens(&user.id, RESET_PASSWORD, now)
            .await?;
        self.audit
            .record(
                context,
                AuditEvent::new(event, "success")
                    .actor(format!("user:{}", user.id))
                    .subject(&user.id),
            )
            .await;
        let locale = user
            .locale
            .as_deref()
            .map_or(Locale::En, Locale::from_accept_language);
        let (subject, text, html) = mail::password_changed_email(locale);
        self.send_later(Outgoing {
            to: user.email.clone(),
            subject,
            text,
            html: Some(html),
        });
        Ok(())
    }

    /// The user behind a verified access token.
    pub async fn user(&self, id: &str) -> Result<Option<UserRecord>, AccountError> {
        Ok(self.users.user(id).await?)
    }

    pub async fn user_by_email(&self, raw_email: &str) -> Result<Option<UserRecord>, AccountError> {
        let email = email::normalize(raw_email).ok_or(AccountError::InvalidEmail)?;
        Ok(self.users.user_by_email(&email).await?)
    }

    /// `tessera user create`: an operator creates a user (policy applies).
    pub async fn create_user(
        &self,
        raw_email: &str,
        password: &str,
        verified: bool,
        roles: &[String],
        context: &RequestContext,
    ) -> Result<UserRecord, AccountError> {
        self.create_user_as(raw_email, password, verified, roles, OPERATOR, context)
            .await
    }

    /// Creates a user for `actor` (`operator` for the CLI, `client:<id>` for the admin API).
    pub async fn create_user_as(
        &self,
        raw_email: &str,
        password: &str,
        verified: bool,
        roles: &[String],
        actor: &str,
        context: &RequestContext,
    ) -> Result<UserRecord, AccountError> {
        let email = email::normalize(raw_email).ok_or(AccountError::InvalidEmail)?;
        validate_roles(roles)?;
        self.authz.check_assignment(roles).await?;
        self.acceptable_password(&email, password, None).await?;
        let now = self.clock.now();
        let user = UserRecord {
            id: random_id(),
            email,
            email_verified_at: verified.then_some(now),
            password_hash: Some(self.hasher.hash_async(password.to_owned()).await?),
            roles: roles.to_vec(),
            role_terms: Default::default(),
            locale: None,
            disabled_at: None,
            created_at: now,
            updated_at: now,
            password_changed_at: Some(now),
        };
        match self.users.create_user(&user).await {
            Ok(()) => {}
            Err(StoreError::Conflict(_)) => return Err(AccountError::EmailTaken),
            Err(other) => return Err(other.into()),
        }
        self.audit
            .record(
                context,
                AuditEvent::new("user.created", "success")
                    .actor(actor)
                    .subject(&user.id),
            )
            .await;
        Ok(user)
    }

    /// One page of users in id order, after the user `after_id`; with `email`, only the user
    /// with that address (normalised as at signup).
    pub async fn list_users(
        &self,
        email: Option<&str>,
        after_id: Option<&str>,
        limit: u32,
    ) -> Result<Vec<UserRecord>, AccountError> {
        let email = email
            .map(|raw| email::normalize(raw).ok_or(AccountError::InvalidEmail))
            .transpose()?;
        Ok(self.users.list_users(email.as_deref(), after_id, limit).await?)
    }

    async fn id_of(&self, raw_email: &str) -> Result<String, AccountError> {
        Ok(self
            .user_by_email(raw_email)
            .await?
            .ok_or(AccountError::NoSuchUser)?
            .id)
    }

    /// `tessera user disable`: see [`Accounts::disable_user`].
    pub async fn disable(&self, raw_email: &str, context: &RequestContext) -> Result<usize, AccountError> {
        let id = self.id_of(raw_email).await?;
        self.disable_user(&id, OPERATOR, context).await
    }

    /// Disables a user: their sessions and refresh tokens end at once. Returns how many
    /// sessions ended. A user who is already disabled stays as they are
    /// ([`AccountError::Already`]).
    pub async fn disable_user(
        &self,
        id: &str,
        actor: &str,
        context: &RequestContext,
    ) -> Result<usize, AccountError> {
        let user = self.users.user(id).await?.ok_or(AccountError::NoSuchUser)?;
        if user.disabled_at.is_some() {
            return Err(AccountError::Already("disabled"));
        }
        let now = self.clock.now();
        if !self.users.set_disabled(&user.id, Some(now), now).await? {
            return Err(AccountError::NoSuchUser);
        }
        let ended = self
            .tokens
            .end_sessions_of(&user.id, "user_disabled", actor, context)
            .await?;
        self.revoke_api_keys(&user.id, actor, context).await?;
        self.audit
            .record(
                context,
                AuditEvent::new("user.disabled", "success")
                    .actor(actor)
                    .subject(&user.id),
            )
            .await;
        Ok(ended)
    }

    /// `tessera user enable`: see [`Accounts::enable_user`].
    pub async fn enable(&self, raw_email: &str, context: &RequestContext) -> Result<(), AccountError> {
        let id = self.id_of(raw_email).await?;
        self.enable_user(&id, OPERATOR, context).await
    }

    /// Enables a user and clears their login lockouts (also what an operator does for a
    /// locked-out user who was never disabled).
    pub async fn enable_user(
        &self,
        id: &str,
        actor: &str,
        context: &RequestContext,
    ) -> Result<(), AccountError> {
        let user = self.users.user(id).await?.ok_or(AccountError::NoSuchUser)?;
        if user.disabled_at.is_some() && !self.users.set_disabled(&user.id, None, self.clock.now()).await? {
            return Err(AccountError::NoSuchUser);
        }
        self.throttle.clear(&user.email).await?;
        self.audit
            .record(
                context,
                AuditEvent::new("user.enabled", "success")
                    .actor(actor)
                    .subject(&user.id),
            )
            .await;
        Ok(())
    }

    /// `tessera user delete`: see [`Accounts::delete_user`].
    pub async fn delete(&self, raw_email: &str, context: &RequestContext) -> Result<(), AccountError> {
        let id = self.id_of(raw_email).await?;
        self.delete_user(&id, OPERATOR, context).await
    }

    /// Deletes a user after ending their sessions (so they reach the revocation feed).
    pub async fn delete_user(
        &self,
        id: &str,
        actor: &str,
        context: &RequestContext,
    ) -> Result<(), AccountError> {
        let user = self.users.user(id).await?.ok_or(AccountError::NoSuchUser)?;
        self.tokens
            .end_sessions_of(&user.id, "user_deleted", actor, context)
            .await?;
        self.revoke_api_keys(&user.id, actor, context).await?;
        if !self.users.delete_user(&user.id).await? {
            return Err(AccountError::NoSuchUser);
        }
        self.audit
            .record(
                context,
                AuditEvent::new("user.deleted", "success")
                    .actor(actor)
                    .subject(&user.id),
            )
            .await;
        Ok(())
    }

    /// Puts the user's live API keys on the revocation feed (disabling, deleting).
    async fn revoke_api_keys(
        &self,
        user_id: &str,
        actor: &str,
        context: &RequestContext,
    ) -> Result<(), AccountError> {
        let owner = crate::apikeys::ApiKeyOwner::User(user_id.to_owned());
        match self.api_keys.revoke_all_of(&owner, actor, context).await {
            Ok(_) | Err(crate::apikeys::ApiKeyError::NotFound | crate::apikeys::ApiKeyError::NoSuchOwner) => {
                Ok(())
            }
            Err(crate::apikeys::ApiKeyError::Store(err)) => Err(err.into()),
            Err(other) => {
                tracing::warn!(error = %other, "cannot revoke the user's API keys");
                Ok(())
            }
        }
    }

    /// The name of a stored hash's scheme if this node can verify it (imports).
    pub(crate) fn hasher_scheme(&self, stored: &str) -> Option<&'static str> {
        self.hasher.scheme_for(stored).ok().map(|s| s.name())
    }

    pub(crate) fn users(&self) -> &Arc<dyn UserStore> {
        &self.users
    }

    pub(crate) fn clock(&self) -> &Arc<dyn Clock> {
        &self.clock
    }

    pub(crate) fn audit(&self) -> &Auditor {
        &self.audit
    }
}

/// A user as the CLI and the admin API show them: the password hash's algorithm, never
/// the hash.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct UserView {
    pub id: String,
    pub email: String,
    pub email_verified: bool,
    pub email_verified_at: Option<i64>,
    /// `argon2id`, `bcrypt`, `pbkdf2-sha256`, or `none` (no password).
    pub password_algorithm: String,
    pub roles: Vec<String>,
    /// The terms of some of `roles` (expiry, condition), by role.
    pub role_terms: BTreeMap<String, AssignmentTerms>,
    pub disabled: bool,
    pub disabled_at: Option<i64>,
    pub created_at: i64,
    pub updated_at: i64,
    pub password_changed_at: Option<i64>,
}

impl From<&UserRecord> for UserView {
    fn from(user: &UserRecord) -> Self {
        let algorithm = user
            .password_hash
            .as_deref()
            .and_then(passwords::scheme_of)
            .map_or("none", |s| s.name());
        UserView {
            id: user.id.clone(),
            email: user.email.clone(),
            email_verified: user.email_verified_at.is_some(),
            email_verified_at: user.email_verified_at,
            password_algorithm: algorithm.to_owned(),
            roles: user.roles.clone(),
            role_terms: crate::authz::read_terms(&user.role_terms),
            disabled: user.disabled_at.is_some(),
            disabled_at: user.disabled_at,
            created_at: user.created_at,
            updated_at: user.updated_at,
            password_changed_at: user.password_changed_at,
        }
    }
}

/// Role names are identifiers: they travel space-separated in sessions and as JSON strings
/// in tokens.
pub fn validate_roles(roles: &[String]) -> Result<(), AccountError> {
    let bad = roles.iter().find(|r| {
        r.is_empty()
            || r.len() > 64
            || !r
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_:.".contains(&b))
    });
    match bad {
        Some(role) => Err(AccountError::InvalidRole(role.clone())),
        None => Ok(()),
    }
}
