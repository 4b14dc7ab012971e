//! The second step of a password sign-in: which challenge it must pass (the user's factors,
//! an enrolment under `required`, a risk step-up under `adaptive`), the pending sign-in it
//! continues, and the check of the answer — under the login throttle, single use.

use std::time::Duration;

use serde_json::json;
use tessera_store::durable::{MfaFactorRecord, UserRecord};

use super::{
    challenge_key, method_label, normalize_recovery_code, sealing_label, Challenge, Demand, Mfa, MfaError,
    Passed, Pending, Purpose, TotpKey, EMAIL_OTP, RECOVERY_CODE, SMS_OTP, TOTP, WEBAUTHN,
};
use crate::accounts::throttle::{Attempt, Refusal};
use crate::audit::{AuditEvent, RequestContext};
use crate::config::MfaPolicy;
use crate::mail::{self, Locale, Outgoing};
use crate::tokens::opaque::{random_b64, sha256_b64};

/// The second-factor policy of sign-ins to `client`: its own, else `deployment`'s.
pub fn client_policy(client: &tessera_store::durable::ClientRecord, deployment: MfaPolicy) -> MfaPolicy {
    client
        .mfa_policy
        .as_deref()
        .and_then(MfaPolicy::parse)
        .unwrap_or(deployment)
}

impl Mfa {
    /// A factor's attempt for `user`, admitted by the account's login throttle (a refusal is
    /// audited as a failure of `method`).
    pub(super) async fn admit(
        &self,
        user: &UserRecord,
        method: &str,
        context: &RequestContext,
    ) -> Result<Attempt, MfaError> {
        match self.throttle.admit(&user.email, context.ip.as_deref()).await? {
            Ok(attempt) => Ok(attempt),
            Err(refusal) => {
                self.audit_failure(user, method, "throttled", context).await;
                Err(MfaError::Throttled {
                    retry_after: Refusal::retry_after(refusal),
                })
            }
        }
    }

    /// `user` passed `method`: counted and audited (`detail` says how).
    pub(super) async fn used(
        &self,
        user: &UserRecord,
        method: &'static str,
        detail: serde_json::Value,
        context: &RequestContext,
    ) {
        crate::telemetry::mfa_event("used", method);
        self.audit
            .record(
                context,
                AuditEvent::new("mfa.used", "success")
                    .actor(format!("user:{}", user.id))
                    .subject(&user.id)
                    .detail(detail),
            )
            .await;
    }

    /// The second-factor policy of sign-ins to `client`: its own, else the deployment's.
    pub fn policy_for(&self, client: &tessera_store::durable::ClientRecord) -> MfaPolicy {
        client_policy(client, self.config.mfa.policy)
    }

    /// The challenge a password sign-in of `user` must pass, if any: the user's factors
    /// when there are any (whatever the policy); else, under `required`, the enrolment of an
    /// authenticator app; else, under `adaptive` and with `risk` (the reasons a sign-in looks
    /// risky), a code to the verified address. `None`: the password is enough.
    pub async fn challenge(
        &self,
        user: &UserRecord,
        purpose: Purpose,
        policy: MfaPolicy,
        risk: &[&'static str],
        context: &RequestContext,
    ) -> Result<Option<Challenge>, MfaError> {
        let methods = self.methods(&user.id).await?;
        let (demand, methods) = if !methods.is_empty() {
            (Demand::Factor, methods)
        } else if policy == MfaPolicy::Required {
            (Demand::Enrol, vec![TOTP])
        } else if policy == MfaPolicy::Adaptive && !risk.is_empty() {
            let stepped_up = user.email_verified_at.is_some();
            self.audit
                .record(
                    context,
                    AuditEvent::new("mfa.risk_step_up", if stepped_up { "success" } else { "skipped" })
                        .subject(&user.id)
                        .detail(json!({ "reasons": risk, "method": EMAIL_OTP })),
                )
                .await;
            if !stepped_up {
                // No verified address to send a code to: the password stands alone.
                return Ok(None);
            }
            crate::telemetry::mfa_event("risk_step_up", EMAIL_OTP);
            (Demand::StepUp, vec![EMAIL_OTP])
        } else {
            return Ok(None);
        };
        let token = format!("tsm_{}", random_b64(32));
        let pending = Pending {
            user_id: user.id.clone(),
            purpose,
            demand,
        };
        let value = serde_json::to_vec(&pending).map_err(|e| MfaError::Crypto(e.to_string()))?;
        let ttl = Duration::from_secs(self.config.mfa.challenge_ttl_secs);
        self.ephemeral.set(&challenge_key(&token), &value, ttl).await?;
        Ok(Some(Challenge {
            token,
            methods,
            demand,
        }))
    }

    /// The sign-in waiting under challenge `token`: its store key, what it continues, and
    /// its user — unknown, expired, or of a user since deleted or disabled is
    /// [`MfaError::InvalidChallenge`] (a disabled user's challenge is dropped).
    pub(super) async fn pending_sign_in(
        &self,
        token: &str,
    ) -> Result<(String, Pending, UserRecord), MfaError> {
        let key = challenge_key(token);
        let pending: Pending = match self.ephemeral.get(&key).await? {
            Some(bytes) => serde_json::from_slice(&bytes).map_err(|_| MfaError::InvalidChallenge)?,
            None => return Err(MfaError::InvalidChallenge),
        };
        let Some(user) = self.users.user(&pending.user_id).await? else {
            return Err(MfaError::InvalidChallenge);
        };
        if user.disabled_at.is_some() {
            let _ = self.ephemeral.delete(&key).await;
            return Err(MfaError::InvalidChallenge);
        }
        Ok((key, pending, user))
    }

    /// Checks `code` for the challenge `token` of a flow `accepts`; uses the token up on
    /// success. A wrong code counts against the account's login throttle.
    pub async fn complete(
        &self,
        token: &str,
        accepts: impl Fn(&Purpose) -> bool,
        method: &str,
        code: &str,
        context: &RequestContext,
    ) -> Result<Passed, MfaError> {
        let (key, pending, user) = self.pending_sign_in(token).await?;
        if !accepts(&pending.purpose) {
            return Err(MfaError::InvalidChallenge);
        }
        let attempt = self.admit(&user, method, context).await?;
        let method = match method {
            TOTP => Some(TOTP),
            EMAIL_OTP => Some(EMAIL_OTP),
            SMS_OTP => Some(SMS_OTP),
            RECOVERY_CODE => Some(RECOVERY_CODE),
            WEBAUTHN => Some(WEBAUTHN),
            _ => None,
        };
        // A sign-in that enrols passes with the new app's code; a risk step-up with the
        // e-mailed code; one with the user's factors with any of them.
        let method = match pending.demand {
            Demand::Factor => method,
            Demand::Enrol => method.filter(|m| *m == TOTP),
            Demand::StepUp => method.filter(|m| *m == EMAIL_OTP),
        };
        let otp = || Some(vec!["pwd", "otp", "mfa"]);
        let enrolling = pending.demand == Demand::Enrol;
        let amr = match method {
            Some(TOTP) => self
                .check_totp(&user.id, code, enrolling)
                .await?
                .then(otp)
                .flatten(),
            Some(kind @ (EMAIL_OTP | SMS_OTP)) => self
                .check_sent_code(&user.id, kind, &key, code, pending.demand == Demand::StepUp)
                .await?
                .then(otp)
                .flatten(),
            Some(WEBAUTHN) => self.check_passkey(&user.id, &key, code).await?.map(|methods| {
                ["pwd"]
                    .into_iter()
                    .chain(methods.into_iter().filter(|m| *m != "user"))
                    .collect()
            }),
            Some(_) => {
                let hash = sha256_b64(&normalize_recovery_code(code));
                self.store
                    .use_recovery_code(&user.id, &hash, self.clock.now())
                    .await?
                    .then(otp)
                    .flatten()
            }
            None => None,
        };
        let (Some(amr), Some(method)) = (amr, method) else {
            let locked = self.throttle.failed(&attempt).await?;
            self.audit_failure(&user, method.unwrap_or("unknown"), "invalid_code", context)
                .await;
            if let Some(secs) = locked {
                self.audit
                    .record(
                        context,
                        AuditEvent::new("login.locked", "failure")
                            .subject(&user.id)
                            .detail(json!({ "lockout_secs": secs, "after": "mfa" })),
                    )
                    .await;
            }
            return Err(if method == Some(WEBAUTHN) {
                MfaError::InvalidCredential
            } else {
                MfaError::InvalidCode
            });
        };
        self.throttle.succeeded(attempt).await?;
        // Single use: of two requests that passed a code for one token, one continues.
        if !self.ephemeral.delete(&key).await? {
            return Err(MfaError::InvalidChallenge);
        }
        self.used(&user, method, json!({ "method": method }), context)
            .await;
        if method == RECOVERY_CODE {
            self.recovery_code_used(&user, context).await?;
        }
        let recovery_codes = if enrolling {
            let factor = self.store.factors(&user.id).await?;
            let id = factor
                .iter()
                .rfind(|f| f.kind == TOTP && f.confirmed_at.is_some())
                .map_or_else(String::new, |f| f.id.clone());
            self.enrolled(&user, &id, TOTP, false, context).await?
        } else {
            Vec::new()
        };
        Ok(Passed {
            user,
            purpose: pending.purpose,
            method,
            amr,
            recovery_codes,
        })
    }

    pub(super) async fn audit_failure(
        &self,
        user: &UserRecord,
        method: &str,
        reason: &'static str,
        context: &RequestContext,
    ) {
        crate::telemetry::mfa_event("failed", method_label(method));
        self.audit
            .record(
                context,
                AuditEvent::new("mfa.failed", "failure")
                    .subject(&user.id)
                    .detail(json!({ "method": method, "reason": reason })),
            )
            .await;
    }

    /// A recovery code was used: the user hears of it by e-mail (it may not have been them).
    async fn recovery_code_used(&self, user: &UserRecord, context: &RequestContext) -> Result<(), MfaError> {
        let left = self.store.recovery_codes_left(&user.id).await?;
        self.audit
            .record(
                context,
                AuditEvent::new("mfa.recovery_code_used", "success")
                    .subject(&user.id)
                    .detail(json!({ "left": left })),
            )
            .await;
        let locale = user
            .locale
            .as_deref()
            .map_or(Locale::En, Locale::from_accept_language);
        let message =
            Outgoing::from_template(user.email.clone(), mail::recovery_code_used_email(locale, left));
        let mailer = self.mailer.clone();
        tokio::spawn(async move {
            if let Err(err) = mailer.send(message).await {
                tracing::error!(error = %err, "sending e-mail failed");
            }
        });
        Ok(())
    }

    /// Whether `code` is the current code of one of the user's confirmed TOTP factors (or,
    /// `enrolling`, of one being enrolled, which it confirms), and its step was not used
    /// before (then it is used now).
    async fn check_totp(&self, user_id: &str, code: &str, enrolling: bool) -> Result<bool, MfaError> {
        for factor in self.store.factors(user_id).await? {
            let usable = factor.confirmed_at.is_some() || enrolling;
            if factor.kind == TOTP && usable && self.accept_totp(&factor, code).await? {
                return Ok(true);
            }
        }
        Ok(false)
    }

    pub(super) async fn accept_totp(&self, factor: &MfaFactorRecord, code: &str) -> Result<bool, MfaError> {
        let Some(sealed) = &factor.secret else {
            return Ok(false);
        };
        let bytes = self
            .master_key
            .open(&sealing_label(&factor.id), sealed)
            .map_err(|e| MfaError::Crypto(e.to_string()))?;
        let key = TotpKey::from_bytes(&bytes, &self.config.mfa.totp_issuer, "").map_err(MfaError::Crypto)?;
        let now = self.clock.now();
        match key.matching_step(code, now) {
            Some(step) => Ok(self
                .store
                .accept_step(&factor.id, &factor.user_id, step, now)
                .await?),
            None => Ok(false),
        }
    }
}
