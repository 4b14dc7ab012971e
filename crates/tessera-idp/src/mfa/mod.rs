//! Second factors (R11): TOTP authenticators and recovery codes — enrolment, listing,
//! renaming and removal by the user, reset by an operator — and the check of a second
//! factor that a sign-in must pass when the user has one.
//!
//! A sign-in that passed the password and must pass a factor gets a [`Challenge`]: a
//! random token, stored only as a hash in the ephemeral store for five minutes, bound to
//! the user and to the flow it continues ([`Purpose`]). [`Mfa::complete`] checks a code
//! under the same throttle as passwords (a wrong code counts as a failed login of the
//! account), uses the token up, and says which factor passed. A TOTP code is accepted once
//! (the store refuses a time step used before, across nodes); a recovery code is used once.

mod codes;
mod passkeys;
mod sign_in;
mod sms;
mod totp;

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::json;
use tessera_store::durable::{MfaFactorRecord, MfaStore, UserRecord};
use tessera_store::ephemeral::EphemeralStore;
use tessera_store::StoreError;

pub use self::passkeys::PasskeyOptions;
pub use self::sign_in::client_policy;
pub use self::sms::SmsSender;
pub use self::totp::{qr_svg, TotpKey};
use crate::accounts::throttle::Throttle;
use crate::audit::{AuditEvent, Auditor, RequestContext};
use crate::clock::Clock;
use crate::config::Config;
use crate::keys::MasterKey;
use crate::mail::Mailer;
use crate::tokens::opaque::{random_id, sha256_b64};

/// The kinds of factor a user can enrol.
pub const TOTP: &str = "totp";
/// A one-time code e-mailed to the account's verified address.
pub const EMAIL_OTP: &str = "email_otp";
/// A one-time code sent by SMS to an enrolled phone number.
pub const SMS_OTP: &str = "sms_otp";
/// A passkey (WebAuthn): a second factor, or a whole sign-in without a password.
pub const WEBAUTHN: &str = "webauthn";
/// The method name of a recovery code (not a factor of its own: codes come with one).
pub const RECOVERY_CODE: &str = "recovery_code";

/// Recovery codes per set.
const RECOVERY_CODES: usize = 10;
/// Factors a user may hold (enrolling ones included).
pub(crate) const MAX_FACTORS: usize = 10;
/// Longest factor name.
const MAX_NAME: usize = 64;

/// Why a second-factor operation was refused.
#[derive(Debug, thiserror::Error)]
pub enum MfaError {
    /// The challenge token is unknown, used, expired, or for another flow.
    #[error("the sign-in to continue is unknown or has expired")]
    InvalidChallenge,
    /// A wrong, reused or malformed code (or a method the user does not have).
    #[error("the code is wrong")]
    InvalidCode,
    /// A WebAuthn answer that does not verify: wrong origin, RP id, challenge, signature or
    /// counter, an unknown or another account's credential, or not WebAuthn at all.
    #[error("the passkey's answer does not verify")]
    InvalidCredential,
    #[error("too many attempts")]
    Throttled { retry_after: u64 },
    #[error("no such factor")]
    NoSuchFactor,
    #[error("{0}")]
    Invalid(&'static str),
    /// Removing the last factor needs a sign-in of the last few minutes.
    #[error("a fresh sign-in is required")]
    FreshSignInRequired,
    #[error("cannot seal or open a factor's secret: {0}")]
    Crypto(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A factor as its owner and operators see it (never its secret).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct FactorView {
    pub id: String,
    /// `totp`.
    pub kind: String,
    pub name: String,
    pub created_at: i64,
    /// `false` until the first correct code; only confirmed factors are asked for.
    pub confirmed: bool,
    pub last_used_at: Option<i64>,
}

impl From<&MfaFactorRecord> for FactorView {
    fn from(record: &MfaFactorRecord) -> Self {
        FactorView {
            id: record.id.clone(),
            kind: record.kind.clone(),
            name: record.name.clone(),
            created_at: record.created_at,
            confirmed: record.confirmed_at.is_some(),
            last_used_at: record.last_used_at,
        }
    }
}

/// A TOTP factor being enrolled: what the user's app needs, shown once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TotpEnrolment {
    pub factor_id: String,
    /// Base32, for typing into an app.
    pub secret: String,
    pub otpauth_uri: String,
    pub qr_svg: String,
}

/// The flow a challenge continues; a token of one flow is refused by the other.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "flow", rename_all = "snake_case")]
pub enum Purpose {
    /// `POST /auth/login` of the first-party client, on this channel, activating these
    /// roles (all but those of a broken dynamic separation-of-duty rule when `None`).
    Login {
        channel: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        roles: Option<Vec<String>>,
    },
    /// The hosted login page of `/oauth2/authorize`.
    Authorize,
}

/// Why a sign-in waits for a second factor.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Demand {
    /// The user's own factors (a user with a factor is always asked for it).
    #[default]
    Factor,
    /// The policy requires a factor and the user has none: an authenticator app is enrolled
    /// now, and its first code passes the sign-in.
    Enrol,
    /// A risky sign-in of a user without a factor (policy `adaptive`): a code e-mailed to
    /// the account's verified address.
    StepUp,
}

/// What the ephemeral store keeps for a pending challenge.
#[derive(Debug, Serialize, Deserialize)]
struct Pending {
    user_id: String,
    purpose: Purpose,
    #[serde(default)]
    demand: Demand,
}

/// A sign-in waiting for its second factor.
#[derive(Clone, PartialEq, Eq)]
pub struct Challenge {
    /// Shown once; single use.
    pub token: String,
    /// The methods the user can pass it with: `totp`, `recovery_code`, …; for
    /// [`Demand::Enrol`] the one method of the factor to enrol (`totp`).
    pub methods: Vec<&'static str>,
    pub demand: Demand,
}

impl std::fmt::Debug for Challenge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Challenge")
            .field("token", &"<redacted>")
            .field("methods", &self.methods)
            .field("demand", &self.demand)
            .finish()
    }
}

/// A passed second factor.
#[derive(Debug, Clone)]
pub struct Passed {
    pub user: UserRecord,
    pub purpose: Purpose,
    /// `totp`, `email_otp`, `sms_otp`, `recovery_code` or `webauthn`.
    pub method: &'static str,
    /// The RFC 8176 methods of the whole sign-in.
    amr: Vec<&'static str>,
    /// The recovery codes of a factor enrolled during this sign-in, shown once.
    pub recovery_codes: Vec<String>,
}

impl Passed {
    /// The RFC 8176 methods of the whole sign-in: after a password, `pwd` + `otp` (a code)
    /// or `hwk`/`swk` (a passkey) + `mfa`; a usernameless passkey sign-in has no `pwd`.
    pub fn amr(&self) -> &[&'static str] {
        &self.amr
    }
}

pub struct MfaParts {
    pub config: Arc<Config>,
    pub users: Arc<dyn tessera_store::durable::UserStore>,
    pub store: Arc<dyn MfaStore>,
    pub ephemeral: Arc<dyn EphemeralStore>,
    pub master_key: MasterKey,
    pub throttle: Throttle,
    pub mailer: Mailer,
    pub sms: SmsSender,
    pub audit: Auditor,
    pub clock: Arc<dyn Clock>,
}

pub struct Mfa {
    config: Arc<Config>,
    users: Arc<dyn tessera_store::durable::UserStore>,
    store: Arc<dyn MfaStore>,
    ephemeral: Arc<dyn EphemeralStore>,
    master_key: MasterKey,
    throttle: Throttle,
    mailer: Mailer,
    sms: SmsSender,
    audit: Auditor,
    clock: Arc<dyn Clock>,
    /// The issuer as a WebAuthn relying party, or why it cannot be one (an IP address).
    webauthn: Result<webauthn_rs::Webauthn, String>,
}

fn challenge_key(token: &str) -> String {
    format!("mfa-challenge:{}", sha256_b64(token))
}

/// The associated data a TOTP secret is sealed with: its factor's id.
fn sealing_label(factor_id: &str) -> String {
    format!("mfa-totp:{factor_id}")
}

impl Mfa {
    pub fn new(parts: MfaParts) -> Self {
        let webauthn = passkeys::relying_party(&parts.config);
        Mfa {
            webauthn,
            config: parts.config,
            users: parts.users,
            store: parts.store,
            ephemeral: parts.ephemeral,
            master_key: parts.master_key,
            throttle: parts.throttle,
            mailer: parts.mailer,
            sms: parts.sms,
            audit: parts.audit,
            clock: parts.clock,
        }
    }

    /// The factors of `user_id`, oldest first.
    pub async fn factors(&self, user_id: &str) -> Result<Vec<FactorView>, MfaError> {
        Ok(self
            .store
            .factors(user_id)
            .await?
            .iter()
            .map(FactorView::from)
            .collect())
    }

    /// The methods that can pass a challenge for `user_id`: empty when the user has no
    /// confirmed factor (then no second factor is asked for).
    pub async fn methods(&self, user_id: &str) -> Result<Vec<&'static str>, MfaError> {
        let factors = self.store.factors(user_id).await?;
        let confirmed = |kind: &str| factors.iter().any(|f| f.kind == kind && f.confirmed_at.is_some());
        let mut methods = Vec::new();
        for kind in [WEBAUTHN, TOTP, EMAIL_OTP, SMS_OTP] {
            if confirmed(kind) {
                methods.push(kind);
            }
        }
        if methods.is_empty() {
            return Ok(methods);
        }
        if self.store.recovery_codes_left(user_id).await? > 0 {
            methods.push(RECOVERY_CODE);
        }
        Ok(methods)
    }

    /// Starts enrolling an authenticator app for the sign-in `token` that must enrol one
    /// ([`Demand::Enrol`]); its first code, on [`Mfa::complete`], passes the sign-in.
    pub async fn enrol_totp_for_sign_in(
        &self,
        token: &str,
        name: Option<&str>,
        context: &RequestContext,
    ) -> Result<TotpEnrolment, MfaError> {
        let (_, pending, user) = self.pending_sign_in(token).await?;
        if pending.demand != Demand::Enrol {
            return Err(MfaError::Invalid("this sign-in does not enrol a factor"));
        }
        self.enrol_totp(&user, name, context).await
    }

    /// Starts enrolling a TOTP authenticator named `name`: the factor is stored sealed and
    /// unconfirmed; [`Mfa::confirm_totp`] with its first code activates it.
    pub async fn enrol_totp(
        &self,
        user: &UserRecord,
        name: Option<&str>,
        context: &RequestContext,
    ) -> Result<TotpEnrolment, MfaError> {
        let name = factor_name(name.unwrap_or("Authenticator app"))?;
        let key = TotpKey::generate(&self.config.mfa.totp_issuer, &user.email).map_err(MfaError::Crypto)?;
        let id = random_id();
        let sealed = self
            .master_key
            .seal(&sealing_label(&id), key.bytes())
            .map_err(|e| MfaError::Crypto(e.to_string()))?;
        self.add_factor(user, &id, TOTP, name, Some(sealed), context)
            .await?;
        let uri = key.uri().map_err(MfaError::Crypto)?;
        Ok(TotpEnrolment {
            factor_id: id,
            secret: key.base32(),
            qr_svg: qr_svg(&uri).map_err(MfaError::Crypto)?,
            otpauth_uri: uri,
        })
    }

    /// Confirms an enrolling TOTP factor with a code from the app (the newest unconfirmed
    /// factor when `factor_id` is `None`). The first confirmed factor of the account brings
    /// a set of recovery codes, returned once; later ones return none.
    pub async fn confirm_totp(
        &self,
        user: &UserRecord,
        factor_id: Option<&str>,
        code: &str,
        context: &RequestContext,
    ) -> Result<Vec<String>, MfaError> {
        let factors = self.store.factors(&user.id).await?;
        let had_confirmed = factors.iter().any(|f| f.confirmed_at.is_some());
        let factor = factors
            .iter()
            .rfind(|f| f.kind == TOTP && f.confirmed_at.is_none() && factor_id.is_none_or(|id| f.id == id))
            .ok_or(MfaError::NoSuchFactor)?;
        if !self.accept_totp(factor, code).await? {
            self.enrolment_failed(user, &factor.id, TOTP, context).await;
            return Err(MfaError::InvalidCode);
        }
        self.enrolled(user, &factor.id, TOTP, had_confirmed, context)
            .await
    }

    /// A factor's first code was wrong.
    async fn enrolment_failed(
        &self,
        user: &UserRecord,
        factor_id: &str,
        kind: &str,
        context: &RequestContext,
    ) {
        self.audit
            .record(
                context,
                AuditEvent::new("mfa.enrolment_failed", "failure")
                    .actor(format!("user:{}", user.id))
                    .subject(&user.id)
                    .detail(json!({ "factor": factor_id, "kind": kind })),
            )
            .await;
    }

    /// A factor was confirmed: audited and counted; the account's first factor brings a set
    /// of recovery codes (returned once), later ones none while codes are left.
    async fn enrolled(
        &self,
        user: &UserRecord,
        factor_id: &str,
        kind: &'static str,
        had_confirmed: bool,
        context: &RequestContext,
    ) -> Result<Vec<String>, MfaError> {
        crate::telemetry::mfa_event("enrolled", kind);
        self.audit
            .record(
                context,
                AuditEvent::new("mfa.enrolled", "success")
                    .actor(format!("user:{}", user.id))
                    .subject(&user.id)
                    .detail(json!({ "factor": factor_id, "kind": kind })),
            )
            .await;
        if had_confirmed && self.store.recovery_codes_left(&user.id).await? > 0 {
            return Ok(Vec::new());
        }
        self.new_recovery_codes(user, context).await
    }

    /// A new set of recovery codes (the old set stops working), shown once. Only for an
    /// account with a confirmed factor.
    pub async fn regenerate_recovery_codes(
        &self,
        user: &UserRecord,
        context: &RequestContext,
    ) -> Result<Vec<String>, MfaError> {
        if self.methods(&user.id).await?.is_empty() {
            return Err(MfaError::Invalid(
                "recovery codes come with a confirmed factor; enrol one first",
            ));
        }
        self.new_recovery_codes(user, context).await
    }

    async fn new_recovery_codes(
        &self,
        user: &UserRecord,
        context: &RequestContext,
    ) -> Result<Vec<String>, MfaError> {
        let codes = (0..RECOVERY_CODES)
            .map(|_| recovery_code())
            .collect::<Result<Vec<String>, MfaError>>()?;
        let hashes: Vec<String> = codes
            .iter()
            .map(|c| sha256_b64(&normalize_recovery_code(c)))
            .collect();
        self.store
            .replace_recovery_codes(&user.id, &hashes, self.clock.now())
            .await?;
        self.audit
            .record(
                context,
                AuditEvent::new("mfa.recovery_codes_generated", "success")
                    .actor(format!("user:{}", user.id))
                    .subject(&user.id)
                    .detail(json!({ "count": RECOVERY_CODES })),
            )
            .await;
        Ok(codes)
    }

    /// Renames factor `id` of `user_id`.
    pub async fn rename(&self, user_id: &str, id: &str, name: &str) -> Result<(), MfaError> {
        let name = factor_name(name)?;
        match self.store.rename_factor(id, user_id, &name).await? {
            true => Ok(()),
            false => Err(MfaError::NoSuchFactor),
        }
    }

    /// Removes factor `id` of `user_id`. The last confirmed factor (after which no second
    /// factor protects the account) only with `fresh`: a sign-in of the last few minutes.
    pub async fn remove(
        &self,
        user_id: &str,
        id: &str,
        fresh: bool,
        actor: &str,
        context: &RequestContext,
    ) -> Result<(), MfaError> {
        let factors = self.store.factors(user_id).await?;
        let factor = factors
            .iter()
            .find(|f| f.id == id)
            .ok_or(MfaError::NoSuchFactor)?;
        let confirmed_others = factors
            .iter()
            .filter(|f| f.id != id && f.confirmed_at.is_some())
            .count();
        if factor.confirmed_at.is_some() && confirmed_others == 0 && !fresh {
            return Err(MfaError::FreshSignInRequired);
        }
        if !self.store.delete_factor(id, user_id).await? {
            return Err(MfaError::NoSuchFactor);
        }
        crate::telemetry::mfa_event("removed", method_label(&factor.kind));
        self.audit
            .record(
                context,
                AuditEvent::new("mfa.removed", "success")
                    .actor(actor)
                    .subject(user_id)
                    .detail(json!({ "factor": id, "kind": factor.kind })),
            )
            .await;
        Ok(())
    }

    /// Removes every factor and recovery code of `user_id` (an operator's reset, for a user
    /// who lost them all). Returns how many factors there were.
    pub async fn reset(&self, user_id: &str, actor: &str, context: &RequestContext) -> Result<u64, MfaError> {
        let removed = self.store.reset_factors(user_id).await?;
        self.audit
            .record(
                context,
                AuditEvent::new("mfa.reset", "success")
                    .actor(actor)
                    .subject(user_id)
                    .detail(json!({ "factors": removed })),
            )
            .await;
        Ok(removed)
    }

    /// Stores a new, unconfirmed factor `id` of `kind` for `user` (within the most factors
    /// an account may hold) and audits the start of its enrolment.
    async fn add_factor(
        &self,
        user: &UserRecord,
        id: &str,
        kind: &'static str,
        name: String,
        secret: Option<Vec<u8>>,
        context: &RequestContext,
    ) -> Result<(), MfaError> {
        let record = MfaFactorRecord {
            id: id.to_owned(),
            user_id: user.id.clone(),
            kind: kind.to_owned(),
            name,
            secret,
            created_at: self.clock.now(),
            confirmed_at: None,
            last_used_at: None,
            last_step: None,
            credential_id: None,
            credential: None,
        };
        self.insert_factor(user, record, context).await
    }

    /// Stores factor `record` of `user` (within the most factors an account may hold) and
    /// audits the start of its enrolment.
    async fn insert_factor(
        &self,
        user: &UserRecord,
        record: MfaFactorRecord,
        context: &RequestContext,
    ) -> Result<(), MfaError> {
        if self.store.factors(&user.id).await?.len() >= MAX_FACTORS {
            return Err(MfaError::Invalid(
                "the account has the most factors it may hold; remove one first",
            ));
        }
        self.store.create_factor(&record).await?;
        let (id, kind) = (&record.id, &record.kind);
        self.audit
            .record(
                context,
                AuditEvent::new("mfa.enrolment_started", "success")
                    .actor(format!("user:{}", user.id))
                    .subject(&user.id)
                    .detail(json!({ "factor": id, "kind": kind })),
            )
            .await;
        Ok(())
    }
}

/// A method or factor kind as a metric label (a fixed set).
fn method_label(method: &str) -> &'static str {
    match method {
        RECOVERY_CODE => RECOVERY_CODE,
        EMAIL_OTP => EMAIL_OTP,
        SMS_OTP => SMS_OTP,
        WEBAUTHN => WEBAUTHN,
        _ => TOTP,
    }
}

/// 1–64 printable characters, trimmed.
fn factor_name(name: &str) -> Result<String, MfaError> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > MAX_NAME || name.chars().any(char::is_control) {
        return Err(MfaError::Invalid("a factor's name is 1-64 printable characters"));
    }
    Ok(name.to_owned())
}

/// A recovery code: 10 characters of a 32-letter alphabet without `l` and `o` (50 bits),
/// shown as `xxxxx-xxxxx`.
fn recovery_code() -> Result<String, MfaError> {
    const ALPHABET: &[u8; 32] = b"abcdefghijkmnpqrstuvwxyz23456789";
    let mut bytes = [0u8; 10];
    aws_lc_rs::rand::fill(&mut bytes).map_err(|_| MfaError::Crypto("no randomness".to_owned()))?;
    let text: String = bytes
        .iter()
        .map(|b| char::from(ALPHABET[usize::from(b % 32)]))
        .collect();
    Ok(format!("{}-{}", &text[..5], &text[5..]))
}

/// A recovery code as typed: case, spaces and dashes do not matter.
fn normalize_recovery_code(code: &str) -> String {
    code.chars()
        .filter(|c| !c.is_whitespace() && *c != '-')
        .flat_map(char::to_lowercase)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recovery_codes_are_long_distinct_and_forgiving_to_type() {
        let codes: Vec<String> = (0..200).map(|_| recovery_code().unwrap()).collect();
        let distinct: std::collections::BTreeSet<&String> = codes.iter().collect();
        assert_eq!(distinct.len(), codes.len());
        for code in &codes {
            assert_eq!(code.len(), 11, "{code}");
            assert_eq!(&code[5..6], "-");
        }
        assert_eq!(normalize_recovery_code(" AbCde-fGh23 "), "abcdefgh23");
        assert_eq!(normalize_recovery_code("abcde fgh23"), "abcdefgh23");
    }

    #[test]
    fn factor_names_are_bounded() {
        assert_eq!(factor_name("  phone ").unwrap(), "phone");
        assert!(factor_name("").is_err());
        assert!(factor_name(&"x".repeat(65)).is_err());
        assert!(factor_name("a\nb").is_err());
    }

    #[test]
    fn challenges_of_one_flow_are_not_of_another() {
        let login = Purpose::Login {
            channel: Some("web".into()),
            roles: Some(vec!["cashier".into()]),
        };
        let text = serde_json::to_string(&Pending {
            user_id: "u".into(),
            purpose: login.clone(),
            demand: Demand::Factor,
        })
        .unwrap();
        let back: Pending = serde_json::from_str(&text).unwrap();
        assert_eq!(back.purpose, login);
        assert_ne!(back.purpose, Purpose::Authorize);
    }
}
