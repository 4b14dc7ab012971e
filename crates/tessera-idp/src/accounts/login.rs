//! Password sign-in: the check every password login goes through (under brute-force
//! protection), the first-party login with its second step when the account has a factor,
//! and the legacy `password` grant, which cannot carry one.

use serde_json::json;
use tessera_store::durable::{ClientRecord, UserRecord};

use super::throttle::Refusal;
use super::{email, AccountError, Accounts};
use crate::audit::{AuditEvent, RequestContext};
use crate::mfa::Purpose;
use crate::tokens::{Issued, Login};

impl Accounts {
    /// Checks an e-mail and password under brute-force protection, upgrading an old hash on
    /// success; a disabled or (when required) unverified account is refused only after the
    /// password is proven. Every password login — JSON API, hosted page, password grant —
    /// goes through here.
    pub async fn authenticate(
        &self,
        raw_email: &str,
        password: &str,
        context: &RequestContext,
    ) -> Result<UserRecord, AccountError> {
        // An implausible address cannot have an account (every way in normalises it): it gets
        // the same answer and the same throttling, without a lookup.
        let normalized = email::normalize(raw_email);
        let email = normalized
            .clone()
            .unwrap_or_else(|| raw_email.trim().to_lowercase());
        let attempt = match self.throttle.admit(&email, context.ip.as_deref()).await? {
            Ok(attempt) => attempt,
            Err(refusal) => {
                let reason = match refusal {
                    Refusal::Locked(_) => "locked",
                    Refusal::RetryAfter(_) => "throttled",
                };
                self.audit_login_failure(None, reason, context).await;
                self.alerts.abuse().login_failed(&email, context).await;
                return Err(AccountError::Throttled {
                    retry_after: refusal.retry_after(),
                });
            }
        };
        let user = match &normalized {
            Some(email) => self.users.user_by_email(email).await?,
            None => None,
        };
        let stored = user.as_ref().and_then(|u| u.password_hash.clone());
        let verification = match stored.clone() {
            Some(hash) => Some(self.hasher.verify_async(password.to_owned(), hash).await?),
            None => {
                // Same Argon2 work as a real check: timing does not reveal unknown accounts.
                self.hasher.verify_dummy_async(password.to_owned()).await;
                None
            }
        };
        let (Some(user), Some(verification)) = (user, verification.filter(|v| v.matches)) else {
            let captcha_required = self.throttle.captcha_required(&attempt);
            let locked = self.throttle.failed(&attempt).await?;
            self.audit_login_failure(None, "invalid_credentials", context)
                .await;
            self.alerts.abuse().login_failed(&email, context).await;
            if let Some(secs) = locked {
                self.audit
                    .record(
                        context,
                        AuditEvent::new("login.locked", "failure").detail(json!({ "lockout_secs": secs })),
                    )
                    .await;
            }
            return Err(AccountError::InvalidCredentials { captcha_required });
        };
        self.throttle.succeeded(attempt).await?;
        self.refuse_unusable(&user, context).await?;
        if verification.needs_upgrade {
            if let Some(old) = stored {
                let new = self.hasher.hash_async(password.to_owned()).await?;
                if self
                    .users
                    .upgrade_password_hash(&user.id, &old, &new, self.clock.now())
                    .await?
                {
                    self.audit
                        .record(
                            context,
                            AuditEvent::new("password.upgraded", "success")
                                .subject(&user.id)
                                .detail(json!({ "from": verification.scheme.name() })),
                        )
                        .await;
                }
            }
        }
        crate::telemetry::login("success");
        Ok(user)
    }

    /// `POST /auth/login`: authenticates and starts a session of the first-party client on
    /// `channel` (the client's channel when `None`) with `roles` active (see
    /// [`crate::tokens::Login::active_roles`]), from the device `device` (its id or cookie,
    /// for the risk assessment), unless a second factor must be passed first.
    pub async fn login(
        &self,
        raw_email: &str,
        password: &str,
        channel: Option<&str>,
        roles: Option<&[String]>,
        device: Option<&str>,
        context: &RequestContext,
    ) -> Result<Issued, AccountError> {
        let user = self.authenticate(raw_email, password, context).await?;
        let purpose = Purpose::Login {
            channel: channel.map(str::to_owned),
            roles: roles.map(<[String]>::to_vec),
        };
        let policy = self.mfa.policy_for(&self.first_party().await?);
        let risk = self.alerts.risk(&user, device, context).await;
        if let Some(challenge) = self.mfa.challenge(&user, purpose, policy, &risk, context).await? {
            self.audit
                .record(
                    context,
                    AuditEvent::new("login.mfa_required", "success")
                        .subject(&user.id)
                        .detail(json!({ "methods": challenge.methods })),
                )
                .await;
            return Err(AccountError::MfaRequired(challenge));
        }
        self.start_first_party_session(&user, channel, roles, &["pwd"], context)
            .await
    }

    /// Starts a session of the first-party client for `user`, who signed in with `amr`.
    async fn start_first_party_session(
        &self,
        user: &UserRecord,
        channel: Option<&str>,
        roles: Option<&[String]>,
        amr: &[&str],
        context: &RequestContext,
    ) -> Result<Issued, AccountError> {
        let client = self.first_party().await?;
        let issued = self
            .tokens
            .start_session(
                Login {
                    subject: &user.id,
                    client: &client,
                    channel,
                    scope: "openid profile email",
                    roles: &user.roles,
                    role_terms: &user.role_terms,
                    active_roles: roles,
                    amr,
                    auth_time: self.clock.now(),
                    sso_session_id: None,
                    idp: None,
                },
                context,
            )
            .await?;
        self.audit
            .record(
                context,
                AuditEvent::new("login.succeeded", "success")
                    .actor(format!("user:{}", user.id))
                    .subject(&user.id)
                    .session(&issued.session.id)
                    .client(&client.client_id)
                    .detail(json!({ "amr": amr })),
            )
            .await;
        Ok(issued)
    }

    /// Records a refused password login: `reason` is one of `invalid_credentials`,
    /// `throttled`, `locked`, `disabled`, `email_not_verified` (also its metrics outcome).
    async fn audit_login_failure(
        &self,
        user_id: Option<&str>,
        reason: &'static str,
        context: &RequestContext,
    ) {
        crate::telemetry::login(reason);
        let mut event = AuditEvent::new("login.failed", "failure").detail(json!({ "reason": reason }));
        if let Some(id) = user_id {
            event = event.subject(id);
        }
        self.audit.record(context, event).await;
    }

    /// `POST /auth/mfa/verify`: passes the second factor of a first-party login that
    /// answered `mfa_required` (or `mfa_enrolment_required`), and starts its session (amr
    /// `pwd otp mfa`). With it, the recovery codes of a factor enrolled during the sign-in.
    pub async fn login_with_factor(
        &self,
        mfa_token: &str,
        method: &str,
        code: &str,
        context: &RequestContext,
    ) -> Result<(Issued, Vec<String>), AccountError> {
        let passed = self
            .mfa
            .complete(
                mfa_token,
                |purpose| matches!(purpose, Purpose::Login { .. }),
                method,
                code,
                context,
            )
            .await?;
        let Purpose::Login { channel, roles } = &passed.purpose else {
            return Err(crate::mfa::MfaError::InvalidChallenge.into());
        };
        let issued = self
            .start_first_party_session(
                &passed.user,
                channel.as_deref(),
                roles.as_deref(),
                passed.amr(),
                context,
            )
            .await?;
        Ok((issued, passed.recovery_codes))
    }

    /// `POST /auth/passkey/login`: a usernameless sign-in with a passkey (started by
    /// [`crate::mfa::Mfa::begin_passkey_sign_in`] for a first-party login), and its session.
    /// A disabled or (when required) unverified account is refused as for a password.
    pub async fn login_with_passkey(
        &self,
        passkey_token: &str,
        response: &str,
        context: &RequestContext,
    ) -> Result<Issued, AccountError> {
        let passed = self
            .mfa
            .finish_passkey_sign_in(
                passkey_token,
                |purpose| matches!(purpose, Purpose::Login { .. }),
                response,
                context,
            )
            .await?;
        self.admit_passkey_user(&passed.user, context).await?;
        let Purpose::Login { channel, roles } = &passed.purpose else {
            return Err(crate::mfa::MfaError::InvalidChallenge.into());
        };
        self.start_first_party_session(
            &passed.user,
            channel.as_deref(),
            roles.as_deref(),
            passed.amr(),
            context,
        )
        .await
    }

    /// A sign-in without a password (a passkey) refused as a password sign-in would be after
    /// its password; counted as a successful login otherwise.
    pub async fn admit_passkey_user(
        &self,
        user: &UserRecord,
        context: &RequestContext,
    ) -> Result<(), AccountError> {
        self.refuse_unusable(user, context).await?;
        crate::telemetry::login("success");
        Ok(())
    }

    /// What every sign-in refuses once the user is proven: a disabled account, or an
    /// unverified address where verification is required (audited as a failed login).
    async fn refuse_unusable(&self, user: &UserRecord, context: &RequestContext) -> Result<(), AccountError> {
        if user.disabled_at.is_some() {
            self.audit_login_failure(Some(&user.id), "disabled", context)
                .await;
            return Err(AccountError::Disabled);
        }
        if self.config.accounts.require_verified_email && user.email_verified_at.is_none() {
            self.audit_login_failure(Some(&user.id), "email_not_verified", context)
                .await;
            return Err(AccountError::EmailNotVerified);
        }
        Ok(())
    }

    /// The password check of the legacy `password` grant: as [`Accounts::authenticate`],
    /// but an account with a second factor, or any account where `client`'s policy requires
    /// one, is refused (the grant has no way to ask for it;
    /// such users sign in through the authorization code flow).
    pub async fn authenticate_without_factor(
        &self,
        raw_email: &str,
        password: &str,
        client: &ClientRecord,
        context: &RequestContext,
    ) -> Result<UserRecord, AccountError> {
        let user = self.authenticate(raw_email, password, context).await?;
        let methods = self.mfa.methods(&user.id).await?;
        let required = self.mfa.policy_for(client) == crate::config::MfaPolicy::Required;
        if !methods.is_empty() || required {
            self.audit
                .record(
                    context,
                    AuditEvent::new("login.failed", "failure")
                        .subject(&user.id)
                        .detail(json!({ "reason": "mfa_required", "grant": "password" })),
                )
                .await;
            return Err(AccountError::MfaRequiredElsewhere);
        }
        Ok(user)
    }
}
