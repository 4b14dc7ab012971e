//! One-time codes by e-mail and by SMS (R11): a factor that sends six digits to the
//! account's own verified address, or to a phone number (sealed at rest like TOTP secrets)
//! through the configured [`SmsSender`] — at enrolment (to prove the channel receives them)
//! and for each sign-in that asks (`POST /auth/mfa/challenge`). A code lives five minutes,
//! works once, is stored only as a hash in the ephemeral store, is never logged, and sending
//! is limited per user; wrong codes count on the login throttle like every other code.

use std::time::Duration;

use serde_json::json;
use tessera_store::durable::{MfaFactorRecord, UserRecord};

use super::sms::{e164, masked as masked_phone};
use super::{Mfa, MfaError, EMAIL_OTP, SMS_OTP};
use crate::audit::{AuditEvent, RequestContext};
use crate::mail::{self, Locale, Outgoing};
use crate::tokens::opaque::{hashes_equal, random_id, sha256_b64};

/// How long an e-mailed code works.
const CODE_TTL: Duration = Duration::from_secs(300);
/// Codes sent to one user per window, and the window.
const MAX_SENDS: u64 = 5;
const SENDS_WINDOW: Duration = Duration::from_secs(900);

/// How a code leaves.
enum Channel {
    Email,
    /// To this E.164 number.
    Sms(String),
}

/// The associated data a phone number is sealed with: its factor's id.
fn phone_label(factor_id: &str) -> String {
    format!("mfa-sms:{factor_id}")
}

/// The code slot of `purpose` for one channel. Enrolment purposes name their factor (one
/// channel each) and keep their plain name.
fn sent_key(purpose: &str, kind: &str) -> String {
    if purpose.starts_with("enrol:") {
        purpose.to_owned()
    } else {
        format!("{purpose}:{kind}")
    }
}

/// Where the hash of the code for `purpose` waits.
fn code_key(purpose: &str) -> String {
    format!("mfa-otp:{purpose}")
}

/// Six uniformly random digits.
fn six_digits() -> Result<String, MfaError> {
    let mut bytes = [0u8; 8];
    aws_lc_rs::rand::fill(&mut bytes).map_err(|_| MfaError::Crypto("no randomness".to_owned()))?;
    // 2^64 is not a multiple of 10^6; the bias is below 10^-13.
    Ok(format!("{:06}", u64::from_le_bytes(bytes) % 1_000_000))
}

/// `a@example.com` → `a***@example.com`: the factor's name, enough to recognise it.
fn masked(email: &str) -> String {
    match email.split_once('@') {
        Some((local, domain)) => {
            let first: String = local.chars().take(1).collect();
            format!("{first}***@{domain}")
        }
        None => "***".to_owned(),
    }
}

impl Mfa {
    /// Enrols the account's verified e-mail address as a factor: a code goes there, and
    /// [`Mfa::confirm_code_factor`] with it activates the factor. Returns the factor's id.
    pub async fn enrol_email(&self, user: &UserRecord, context: &RequestContext) -> Result<String, MfaError> {
        if user.email_verified_at.is_none() {
            return Err(MfaError::Invalid("verify the e-mail address first"));
        }
        let factors = self.store.factors(&user.id).await?;
        if factors
            .iter()
            .any(|f| f.kind == EMAIL_OTP && f.confirmed_at.is_some())
        {
            return Err(MfaError::Invalid("the e-mail address is a factor already"));
        }
        let id = random_id();
        self.add_factor(user, &id, EMAIL_OTP, masked(&user.email), None, context)
            .await?;
        self.send_code(user, &format!("enrol:{id}"), &Channel::Email, context)
            .await?;
        Ok(id)
    }

    /// Enrols the phone number `phone` (E.164) as an SMS factor: a code goes there, and
    /// [`Mfa::confirm_code_factor`] with it activates the factor. Returns the factor's id.
    pub async fn enrol_sms(
        &self,
        user: &UserRecord,
        phone: &str,
        context: &RequestContext,
    ) -> Result<String, MfaError> {
        let phone = e164(phone).ok_or(MfaError::Invalid(
            "phoneNumber must be in E.164 form, e.g. +821012345678",
        ))?;
        let id = random_id();
        let sealed = self
            .master_key
            .seal(&phone_label(&id), phone.as_bytes())
            .map_err(|e| MfaError::Crypto(e.to_string()))?;
        self.add_factor(user, &id, SMS_OTP, masked_phone(&phone), Some(sealed), context)
            .await?;
        self.send_code(user, &format!("enrol:{id}"), &Channel::Sms(phone), context)
            .await?;
        Ok(id)
    }

    /// The phone number of an SMS factor.
    fn phone_of(&self, factor: &MfaFactorRecord) -> Result<String, MfaError> {
        let sealed = factor
            .secret
            .as_ref()
            .ok_or_else(|| MfaError::Crypto("an SMS factor without a number".to_owned()))?;
        let bytes = self
            .master_key
            .open(&phone_label(&factor.id), sealed)
            .map_err(|e| MfaError::Crypto(e.to_string()))?;
        String::from_utf8(bytes).map_err(|_| MfaError::Crypto("a phone number that is not text".to_owned()))
    }

    /// Confirms the newest enrolling factor of `kind` (`email_otp` or `sms_otp`) with the
    /// code that was sent; the account's first factor brings recovery codes, as with TOTP.
    pub async fn confirm_code_factor(
        &self,
        user: &UserRecord,
        kind: &'static str,
        code: &str,
        context: &RequestContext,
    ) -> Result<Vec<String>, MfaError> {
        let factors = self.store.factors(&user.id).await?;
        let had_confirmed = factors.iter().any(|f| f.confirmed_at.is_some());
        let factor = factors
            .iter()
            .rfind(|f| f.kind == kind && f.confirmed_at.is_none())
            .ok_or(MfaError::NoSuchFactor)?;
        if !self.take_code(&format!("enrol:{}", factor.id), code).await? {
            self.enrolment_failed(user, &factor.id, kind, context).await;
            return Err(MfaError::InvalidCode);
        }
        self.store
            .mark_used(&factor.id, &user.id, self.clock.now())
            .await?;
        self.enrolled(user, &factor.id, kind, had_confirmed, context)
            .await
    }

    /// `POST /auth/mfa/challenge`: sends the code of the user's e-mail or SMS factor for the
    /// pending sign-in `token` (a newer code replaces an older one of the same channel).
    pub async fn send_challenge_code(
        &self,
        token: &str,
        method: &str,
        context: &RequestContext,
    ) -> Result<(), MfaError> {
        let (key, pending, user) = self.pending_sign_in(token).await?;
        let factors = self.store.factors(&user.id).await?;
        let confirmed = |kind: &str| {
            factors
                .iter()
                .find(|f| f.kind == kind && f.confirmed_at.is_some())
        };
        let step_up = pending.demand == super::Demand::StepUp;
        let channel = match (method, confirmed(EMAIL_OTP), confirmed(SMS_OTP)) {
            (EMAIL_OTP, _, _) if step_up => Channel::Email,
            _ if pending.demand != super::Demand::Factor => {
                return Err(MfaError::Invalid("this sign-in is not passed with a sent code"))
            }
            (EMAIL_OTP, Some(_), _) => Channel::Email,
            (SMS_OTP, _, Some(factor)) => Channel::Sms(self.phone_of(factor)?),
            _ => {
                return Err(MfaError::Invalid(
                    "only the email_otp or sms_otp method of this sign-in sends a code",
                ))
            }
        };
        self.send_code(&user, &key, &channel, context).await
    }

    /// Whether `code` is the code sent (by `kind`: e-mail or SMS) for the pending sign-in
    /// under `challenge`, used up if so; the user's factor of that kind records the use. A
    /// risk `step_up` has no factor: the code went to the account's verified address.
    pub(super) async fn check_sent_code(
        &self,
        user_id: &str,
        kind: &str,
        challenge: &str,
        code: &str,
        step_up: bool,
    ) -> Result<bool, MfaError> {
        if step_up {
            return self.take_code(&sent_key(challenge, kind), code).await;
        }
        let factors = self.store.factors(user_id).await?;
        let Some(factor) = factors
            .iter()
            .find(|f| f.kind == kind && f.confirmed_at.is_some())
        else {
            return Ok(false);
        };
        if !self.take_code(&sent_key(challenge, kind), code).await? {
            return Ok(false);
        }
        self.store
            .mark_used(&factor.id, user_id, self.clock.now())
            .await?;
        Ok(true)
    }

    /// Generates, stores (as a hash) and sends a code for `purpose` over `channel`, within
    /// the send limit.
    async fn send_code(
        &self,
        user: &UserRecord,
        purpose: &str,
        channel: &Channel,
        context: &RequestContext,
    ) -> Result<(), MfaError> {
        let sends_key = format!("mfa-otp-sends:{}", user.id);
        let sends = self.ephemeral.incr(&sends_key, SENDS_WINDOW).await?;
        if sends > MAX_SENDS {
            let retry_after = self
                .ephemeral
                .ttl(&sends_key)
                .await?
                .map_or(SENDS_WINDOW.as_secs(), |left| left.as_secs().max(1));
            return Err(MfaError::Throttled { retry_after });
        }
        let code = six_digits()?;
        let locale = user
            .locale
            .as_deref()
            .map_or(Locale::En, Locale::from_accept_language);
        let minutes = CODE_TTL.as_secs() / 60;
        // A sign-in's code is kept per channel, so an e-mailed code cannot pass as the SMS one.
        let (kind, key) = match channel {
            Channel::Email => (EMAIL_OTP, sent_key(purpose, EMAIL_OTP)),
            Channel::Sms(_) => (SMS_OTP, sent_key(purpose, SMS_OTP)),
        };
        self.ephemeral
            .set(&code_key(&key), sha256_b64(&code).as_bytes(), CODE_TTL)
            .await?;
        match channel {
            Channel::Email => {
                let message = Outgoing::from_template(
                    user.email.clone(),
                    mail::sign_in_code_email(locale, &code, minutes),
                );
                let mailer = self.mailer.clone();
                tokio::spawn(async move {
                    if let Err(err) = mailer.send(message).await {
                        tracing::error!(error = %err, "sending a sign-in code failed");
                    }
                });
            }
            Channel::Sms(phone) => {
                let text = match locale {
                    Locale::En => format!(
                        "Your {} code is {code}. It works once, for {minutes} minutes.",
                        self.config.mfa.totp_issuer
                    ),
                    Locale::Ko => format!(
                        "{} 인증 코드: {code} ({minutes}분 동안 한 번 사용 가능)",
                        self.config.mfa.totp_issuer
                    ),
                };
                self.sms.send_later(phone.clone(), text);
            }
        }
        self.audit
            .record(
                context,
                AuditEvent::new("mfa.code_sent", "success")
                    .subject(&user.id)
                    .detail(json!({ "method": kind })),
            )
            .await;
        Ok(())
    }

    /// Whether `code` matches the code waiting for `purpose`; a match uses it up (of two
    /// requests with the right code, one gets `true`).
    async fn take_code(&self, purpose: &str, code: &str) -> Result<bool, MfaError> {
        let code = code.trim();
        if code.len() != 6 || !code.bytes().all(|b| b.is_ascii_digit()) {
            return Ok(false);
        }
        let key = code_key(purpose);
        let Some(stored) = self.ephemeral.get(&key).await? else {
            return Ok(false);
        };
        let matches =
            std::str::from_utf8(&stored).is_ok_and(|stored| hashes_equal(stored, &sha256_b64(code)));
        Ok(matches && self.ephemeral.delete(&key).await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_six_digits_and_names_hide_the_address() {
        for _ in 0..100 {
            let code = six_digits().unwrap();
            assert_eq!(code.len(), 6, "{code}");
            assert!(code.bytes().all(|b| b.is_ascii_digit()));
        }
        assert_eq!(masked("kim@example.com"), "k***@example.com");
        assert_eq!(masked("nobody"), "***");
    }
}
