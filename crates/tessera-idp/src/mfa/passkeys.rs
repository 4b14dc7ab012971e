//! Passkeys (WebAuthn / FIDO2, R11) with `webauthn-rs`: registration by a signed-in user,
//! authentication as the second factor of a password sign-in, and usernameless sign-in with
//! a discoverable credential, which is a whole sign-in on its own (the authenticator
//! verified its user: amr `hwk`/`swk` + `user` + `mfa`).
//!
//! The relying party is the issuer: its host is the RP id and its origin the only origin
//! accepted. An issuer on an IP address cannot have passkeys (WebAuthn refuses IP RP ids),
//! so there the ceremonies answer [`MfaError::Invalid`].
//!
//! Every ceremony's state lives in the ephemeral store for `mfa.challenge_ttl_secs` under
//! the hash of a random token and is taken (read and deleted) before the answer is checked:
//! a challenge is answered once. A use stores the new sign counter by compare-and-swap, so
//! one assertion counts once across nodes, and an assertion whose counter did not move past
//! the stored one (a cloned authenticator) is refused by `webauthn-rs`.

use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use tessera_store::durable::{MfaFactorRecord, UserRecord};
use webauthn_rs::prelude::{
    AuthenticationResult, DiscoverableAuthentication, Passkey, PasskeyAuthentication, PasskeyRegistration,
    PublicKeyCredential, RegisterPublicKeyCredential, Url, Uuid, Webauthn, WebauthnBuilder,
};

use super::{factor_name, Mfa, MfaError, Passed, Purpose, MAX_FACTORS, WEBAUTHN};
use crate::audit::RequestContext;
use crate::config::Config;
use crate::tokens::opaque::{random_b64, random_id, sha256_b64};

/// Longest WebAuthn response accepted (a registration with attestation is a few KiB).
const MAX_RESPONSE: usize = 64 * 1024;

/// The relying party of the issuer `config.issuer()`, or why there is none (the issuer's
/// host is not a domain name).
pub fn relying_party(config: &Config) -> Result<Webauthn, String> {
    let issuer = config.issuer();
    let origin = Url::parse(&issuer).map_err(|e| format!("the issuer {issuer} is not a URL: {e}"))?;
    let Some(rp_id) = origin.domain().map(str::to_owned) else {
        return Err(format!(
            "passkeys need the issuer on a host name; {issuer} has an IP address"
        ));
    };
    let origin = Url::parse(&origin.origin().ascii_serialization()).map_err(|e| e.to_string())?;
    WebauthnBuilder::new(&rp_id, &origin)
        .and_then(|b| {
            b.rp_name(&config.mfa.totp_issuer)
                .timeout(Duration::from_secs(config.mfa.challenge_ttl_secs))
                .build()
        })
        .map_err(|e| format!("passkeys cannot use the issuer {issuer}: {e}"))
}

/// The WebAuthn user handle of `user_id`: 16 bytes derived from it (a user id is random and
/// carries nothing personal), so a discoverable credential names its account.
fn user_handle(user_id: &str) -> Uuid {
    let digest = aws_lc_rs::digest::digest(
        &aws_lc_rs::digest::SHA256,
        format!("tessera-webauthn-user:{user_id}").as_bytes(),
    );
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest.as_ref()[..16]);
    Uuid::from_bytes(bytes)
}

fn credential_id(id: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(id)
}

/// The RFC 8176 methods of a passkey assertion: a hardware-bound key (`hwk`) or a synced
/// one (`swk`), with the authenticator's own check of its user (`user`); user verification
/// is required, so the passkey is two factors by itself (`mfa`).
fn passkey_amr(result: &AuthenticationResult) -> Vec<&'static str> {
    let key = if result.backup_eligible() { "swk" } else { "hwk" };
    vec![key, "user", "mfa"]
}

/// A ceremony's options for `navigator.credentials.create/get` (`{publicKey: …}`) and the
/// single-use token that continues it.
#[derive(Clone)]
pub struct PasskeyOptions {
    pub token: String,
    pub options: Value,
}

impl std::fmt::Debug for PasskeyOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PasskeyOptions")
            .field("token", &"<redacted>")
            .finish()
    }
}

#[derive(Serialize, Deserialize)]
struct Registering {
    user_id: String,
    name: String,
    state: PasskeyRegistration,
}

#[derive(Serialize, Deserialize)]
struct Discovering {
    purpose: Purpose,
    state: DiscoverableAuthentication,
}

fn registration_key(token: &str) -> String {
    format!("webauthn-registration:{}", sha256_b64(token))
}

fn sign_in_key(token: &str) -> String {
    format!("webauthn-sign-in:{}", sha256_b64(token))
}

/// Where the options of a second-factor challenge wait, beside the challenge itself.
fn assertion_key(challenge_key: &str) -> String {
    format!("{challenge_key}:webauthn")
}

/// `response`, or nothing (which no parser takes) when it is longer than any real answer.
fn bounded(response: &str) -> &str {
    if response.len() > MAX_RESPONSE {
        ""
    } else {
        response
    }
}

fn internal(err: impl std::fmt::Display) -> MfaError {
    MfaError::Crypto(err.to_string())
}

impl Mfa {
    /// Whether this node offers passkeys (its issuer is on a host name).
    pub fn passkeys_enabled(&self) -> bool {
        self.webauthn.is_ok()
    }

    /// Why this node offers no passkeys, if it does not (logged when it starts serving).
    pub fn passkeys_unavailable(&self) -> Option<&str> {
        self.webauthn.as_ref().err().map(String::as_str)
    }

    fn relying_party(&self) -> Result<&Webauthn, MfaError> {
        self.webauthn
            .as_ref()
            .map_err(|_| MfaError::Invalid("passkeys need the issuer on a host name, not an IP address"))
    }

    /// Stores `value` under `key` for a ceremony's lifetime.
    async fn keep<T: Serialize>(&self, key: &str, value: &T) -> Result<(), MfaError> {
        let bytes = serde_json::to_vec(value).map_err(internal)?;
        let ttl = Duration::from_secs(self.config.mfa.challenge_ttl_secs);
        Ok(self.ephemeral.set(key, &bytes, ttl).await?)
    }

    /// Reads and deletes what waits under `key`: of two callers, one gets it.
    async fn take<T: for<'de> Deserialize<'de>>(&self, key: &str) -> Result<Option<T>, MfaError> {
        let Some(bytes) = self.ephemeral.get(key).await? else {
            return Ok(None);
        };
        if !self.ephemeral.delete(key).await? {
            return Ok(None);
        }
        Ok(serde_json::from_slice(&bytes).ok())
    }

    /// The confirmed passkeys of `user_id`, with their factors.
    async fn passkeys(&self, user_id: &str) -> Result<Vec<(MfaFactorRecord, Passkey)>, MfaError> {
        Ok(self
            .store
            .factors(user_id)
            .await?
            .into_iter()
            .filter(|f| f.kind == WEBAUTHN && f.confirmed_at.is_some())
            .filter_map(|f| {
                let passkey = serde_json::from_str(f.credential.as_deref()?).ok()?;
                Some((f, passkey))
            })
            .collect())
    }

    /// Starts registering a passkey named `name` for `user`: the options for
    /// `navigator.credentials.create`, asking for a discoverable credential (usernameless
    /// sign-in) with user verification, excluding the user's passkeys already registered.
    pub async fn begin_passkey_registration(
        &self,
        user: &UserRecord,
        name: Option<&str>,
    ) -> Result<PasskeyOptions, MfaError> {
        let webauthn = self.relying_party()?;
        let name = factor_name(name.unwrap_or("Passkey"))?;
        let factors = self.store.factors(&user.id).await?;
        if factors.len() >= MAX_FACTORS {
            return Err(MfaError::Invalid(
                "the account has the most factors it may hold; remove one first",
            ));
        }
        let exclude = self
            .passkeys(&user.id)
            .await?
            .into_iter()
            .map(|(_, passkey)| passkey.cred_id().clone())
            .collect();
        let (creation, state) = webauthn
            .start_passkey_registration(user_handle(&user.id), &user.email, &user.email, Some(exclude))
            .map_err(internal)?;
        let mut options = serde_json::to_value(&creation).map_err(internal)?;
        // A discoverable credential, so that the passkey can also sign in without a name.
        if let Some(selection) = options.pointer_mut("/publicKey/authenticatorSelection") {
            selection["residentKey"] = json!("required");
            selection["requireResidentKey"] = json!(true);
        }
        let token = format!("tsr_{}", random_b64(32));
        self.keep(
            &registration_key(&token),
            &Registering {
                user_id: user.id.clone(),
                name,
                state,
            },
        )
        .await?;
        Ok(PasskeyOptions { token, options })
    }

    /// Finishes the registration `token` of `user` with the browser's answer (the JSON of
    /// a `PublicKeyCredential` from `create`). The passkey is a confirmed factor at once (the
    /// ceremony proved the authenticator); the account's first factor brings recovery codes.
    /// Returns the factor's id and those codes.
    pub async fn finish_passkey_registration(
        &self,
        user: &UserRecord,
        token: &str,
        response: &str,
        context: &RequestContext,
    ) -> Result<(String, Vec<String>), MfaError> {
        let webauthn = self.relying_party()?;
        let registering: Registering = self
            .take(&registration_key(token))
            .await?
            .ok_or(MfaError::InvalidChallenge)?;
        if registering.user_id != user.id {
            return Err(MfaError::InvalidChallenge);
        }
        let id = random_id();
        let passkey = serde_json::from_str::<RegisterPublicKeyCredential>(bounded(response))
            .ok()
            .and_then(|credential| {
                webauthn
                    .finish_passkey_registration(&credential, &registering.state)
                    .inspect_err(|err| tracing::info!(error = %err, "a passkey registration was refused"))
                    .ok()
            });
        let Some(passkey) = passkey else {
            self.enrolment_failed(user, &id, WEBAUTHN, context).await;
            return Err(MfaError::InvalidCredential);
        };
        let had_confirmed = self
            .store
            .factors(&user.id)
            .await?
            .iter()
            .any(|f| f.confirmed_at.is_some());
        let now = self.clock.now();
        let record = MfaFactorRecord {
            id: id.clone(),
            user_id: user.id.clone(),
            kind: WEBAUTHN.to_owned(),
            name: registering.name,
            secret: None,
            created_at: now,
            confirmed_at: Some(now),
            last_used_at: None,
            last_step: None,
            credential_id: Some(credential_id(passkey.cred_id())),
            credential: Some(serde_json::to_string(&passkey).map_err(internal)?),
        };
        match self.insert_factor(user, record, context).await {
            Err(MfaError::Store(tessera_store::StoreError::Conflict(_))) => {
                return Err(MfaError::Invalid("this passkey is registered already"))
            }
            other => other?,
        }
        let codes = self.enrolled(user, &id, WEBAUTHN, had_confirmed, context).await?;
        Ok((id, codes))
    }

    /// The options for `navigator.credentials.get` that answer the second-factor challenge
    /// `token` with one of the user's passkeys; each call replaces the previous options.
    pub async fn passkey_challenge(&self, token: &str) -> Result<Value, MfaError> {
        let webauthn = self.relying_party()?;
        let (key, _, user) = self.pending_sign_in(token).await?;
        let passkeys: Vec<Passkey> = self
            .passkeys(&user.id)
            .await?
            .into_iter()
            .map(|(_, passkey)| passkey)
            .collect();
        if passkeys.is_empty() {
            return Err(MfaError::Invalid("the account has no passkey"));
        }
        let (request, state) = webauthn
            .start_passkey_authentication(&passkeys)
            .map_err(internal)?;
        self.keep(&assertion_key(&key), &state).await?;
        serde_json::to_value(&request).map_err(internal)
    }

    /// Whether `response` answers the passkey options of the challenge under `key` with a
    /// passkey of `user_id` (the options are used up either way); on success the new sign
    /// counter is stored, and the methods of the assertion returned.
    pub(super) async fn check_passkey(
        &self,
        user_id: &str,
        key: &str,
        response: &str,
    ) -> Result<Option<Vec<&'static str>>, MfaError> {
        let webauthn = self.relying_party()?;
        let Some(state) = self.take::<PasskeyAuthentication>(&assertion_key(key)).await? else {
            return Ok(None);
        };
        let Ok(credential) = serde_json::from_str::<PublicKeyCredential>(bounded(response)) else {
            return Ok(None);
        };
        let result = match webauthn.finish_passkey_authentication(&credential, &state) {
            Ok(result) => result,
            Err(err) => {
                tracing::info!(error = %err, "a passkey assertion was refused");
                return Ok(None);
            }
        };
        Ok(self
            .record_passkey_use(Some(user_id), &result)
            .await?
            .map(|_| passkey_amr(&result)))
    }

    /// Stores the counter of a verified assertion on its passkey (of `user_id`, when given),
    /// by compare-and-swap; `None` when the passkey is gone or another node recorded this
    /// assertion first.
    async fn record_passkey_use(
        &self,
        user_id: Option<&str>,
        result: &AuthenticationResult,
    ) -> Result<Option<MfaFactorRecord>, MfaError> {
        let Some(factor) = self
            .store
            .factor_by_credential(&credential_id(result.cred_id()))
            .await?
        else {
            return Ok(None);
        };
        let Some(old) = factor.credential.clone() else {
            return Ok(None);
        };
        if user_id.is_some_and(|id| id != factor.user_id) || factor.confirmed_at.is_none() {
            return Ok(None);
        }
        let mut passkey: Passkey = serde_json::from_str(&old).map_err(internal)?;
        passkey.update_credential(result);
        let new = serde_json::to_string(&passkey).map_err(internal)?;
        let swapped = self
            .store
            .swap_credential(&factor.id, &old, &new, self.clock.now())
            .await?;
        Ok(swapped.then_some(factor))
    }

    /// Starts a usernameless sign-in for the flow `purpose`: options for
    /// `navigator.credentials.get` without a list of credentials (the authenticator offers
    /// its discoverable ones) and the token to finish with.
    pub async fn begin_passkey_sign_in(&self, purpose: Purpose) -> Result<PasskeyOptions, MfaError> {
        let webauthn = self.relying_party()?;
        let (request, state) = webauthn.start_discoverable_authentication().map_err(internal)?;
        let mut options = serde_json::to_value(&request).map_err(internal)?;
        // A button press, not the autofill ("conditional") mediation webauthn-rs sets.
        if let Some(object) = options.as_object_mut() {
            object.remove("mediation");
        }
        let token = format!("tpk_{}", random_b64(32));
        self.keep(&sign_in_key(&token), &Discovering { purpose, state })
            .await?;
        Ok(PasskeyOptions { token, options })
    }

    /// Finishes the usernameless sign-in `token` of a flow `accepts` with the browser's
    /// answer: the credential names its account, the assertion must verify against that
    /// account's passkey, and a refusal counts on the account's login throttle.
    pub async fn finish_passkey_sign_in(
        &self,
        token: &str,
        accepts: impl Fn(&Purpose) -> bool,
        response: &str,
        context: &RequestContext,
    ) -> Result<Passed, MfaError> {
        let webauthn = self.relying_party()?;
        let discovering: Discovering = self
            .take(&sign_in_key(token))
            .await?
            .ok_or(MfaError::InvalidChallenge)?;
        if !accepts(&discovering.purpose) {
            return Err(MfaError::InvalidChallenge);
        }
        let unknown = || {
            crate::telemetry::mfa_event("failed", WEBAUTHN);
            MfaError::InvalidCredential
        };
        let credential: PublicKeyCredential =
            serde_json::from_str(bounded(response)).map_err(|_| unknown())?;
        let (handle, raw_id) = webauthn
            .identify_discoverable_authentication(&credential)
            .map_err(|_| unknown())?;
        let Some(factor) = self.store.factor_by_credential(&credential_id(raw_id)).await? else {
            return Err(unknown());
        };
        let user = match self.users.user(&factor.user_id).await? {
            Some(user) if user_handle(&user.id) == handle && user.disabled_at.is_none() => user,
            _ => return Err(unknown()),
        };
        let attempt = self.admit(&user, WEBAUTHN, context).await?;
        let passkey: Option<Passkey> = factor
            .credential
            .as_deref()
            .and_then(|c| serde_json::from_str(c).ok());
        let verified = passkey.and_then(|passkey| {
            webauthn
                .finish_discoverable_authentication_v2(&credential, discovering.state, &passkey)
                .inspect_err(|err| tracing::info!(error = %err, "a passkey sign-in was refused"))
                .ok()
        });
        let recorded = match &verified {
            Some(result) => self.record_passkey_use(Some(&user.id), result).await?,
            None => None,
        };
        let (Some(result), Some(_)) = (verified, recorded) else {
            self.throttle.failed(&attempt).await?;
            self.audit_failure(&user, WEBAUTHN, "invalid_credential", context)
                .await;
            return Err(MfaError::InvalidCredential);
        };
        self.throttle.succeeded(attempt).await?;
        let detail = json!({ "method": WEBAUTHN, "factor": factor.id, "usernameless": true });
        self.used(&user, WEBAUTHN, detail, context).await;
        Ok(Passed {
            user,
            purpose: discovering.purpose,
            method: WEBAUTHN,
            amr: passkey_amr(&result),
            recovery_codes: Vec::new(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_handles_are_stable_and_distinct() {
        assert_eq!(user_handle("u1"), user_handle("u1"));
        assert_ne!(user_handle("u1"), user_handle("u2"));
    }

    #[test]
    fn the_relying_party_is_the_issuers_host() {
        let mut config = Config {
            issuer: Some("https://id.example.com/".to_owned()),
            ..Config::default()
        };
        let webauthn = relying_party(&config).unwrap();
        assert_eq!(
            webauthn.get_allowed_origins(),
            &[Url::parse("https://id.example.com").unwrap()]
        );
        config.issuer = Some("http://127.0.0.1:8080".to_owned());
        let refused = relying_party(&config).unwrap_err();
        assert!(refused.contains("IP address"), "{refused}");
    }
}
