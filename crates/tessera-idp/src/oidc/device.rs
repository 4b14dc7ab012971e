//! The device authorization grant (RFC 8628): a device without a browser (a TV, a
//! command-line tool) gets a device code and a short user code; the user enters the user
//! code on the hosted `/device` page, signs in and approves; the device polls the token
//! endpoint until then.
//!
//! Everything lives in the shared ephemeral store with a time-to-live, so every node sees
//! the same grant and nothing outlives it:
//!
//! - `device:{hash of the device code}`: the grant (client, scope, user code, expiry);
//! - `device-user:{user code}`: the hash of its device code, for the verification page;
//! - `device-decision:{hash}`: the user's answer, written once (set-if-absent), so a second
//!   answer — a second tab, a replayed form — changes nothing;
//! - `device-poll:{hash}`: present while the device must wait before polling again;
//!   `device-slow:{hash}` counts the seconds `slow_down` added to its interval;
//! - `device-redeemed:{hash}`: the one redemption (set-if-absent).
//!
//! The records outlive the grant's expiry by [`RECORD_GRACE_SECS`], so a late poll is told
//! `expired_token` rather than that the code is unknown.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::json;
use tessera_proto::OAuthErrorCode;
use tessera_store::durable::{ClientRecord, SsoSessionRecord, UserRecord};
use tessera_store::StoreError;

use super::{allowed_scope, BrowserGrant, Granted, Provider};
use crate::audit::{AuditEvent, RequestContext};
use crate::error::OAuthFailure;
use crate::tokens::opaque::{random_b64, sha256_b64};

/// The user code's alphabet: consonants only (no vowels, so no words; no 0/O or 1/I to
/// confuse), as RFC 8628 §6.1 suggests.
pub const USER_CODE_ALPHABET: &[u8; 20] = b"BCDFGHJKLMNPQRSTVWXZ";
/// Characters in a user code (20⁸ ≈ 2.6 × 10¹⁰ codes), shown as `XXXX-XXXX`.
pub const USER_CODE_LEN: usize = 8;
/// Seconds `slow_down` adds to a device's interval (RFC 8628 §3.5).
pub const SLOW_DOWN_SECS: u64 = 5;
/// How long the records are kept after the grant expired, to answer `expired_token`.
const RECORD_GRACE_SECS: u64 = 600;
/// A poll this much earlier than the interval is still on time (network jitter).
const POLL_TOLERANCE: Duration = Duration::from_millis(500);

/// What the device authorization endpoint answers (RFC 8628 §3.2), before the URIs.
#[derive(Debug)]
pub struct DeviceAuthorization {
    pub device_code: String,
    /// Formatted for display: `XXXX-XXXX`.
    pub user_code: String,
    pub expires_in: u64,
    pub interval: u64,
}

/// A grant waiting for the user, as the verification page shows it.
#[derive(Debug, Clone)]
pub struct PendingDevice {
    pub client: ClientRecord,
    pub scope: Vec<String>,
    /// Normalised (upper case, no dash).
    pub user_code: String,
    device_hash: String,
}

impl PendingDevice {
    /// The user code as shown: `XXXX-XXXX`.
    pub fn display_code(&self) -> String {
        display(&self.user_code)
    }
}

#[derive(Debug, Serialize, Deserialize)]
struct DeviceRecord {
    client_id: String,
    scope: String,
    user_code: String,
    expires_at: i64,
    interval: u64,
}

#[derive(Debug, Serialize, Deserialize)]
struct DecisionRecord {
    approved: bool,
    user_id: String,
    sso_session_id: String,
    auth_time: i64,
    amr: String,
}

/// A user code as typed: upper case, without dashes and spaces; `None` unless it has the
/// shape of one of ours (so nothing else reaches the store).
pub fn normalize_user_code(typed: &str) -> Option<String> {
    let code: String = typed
        .chars()
        .filter(|c| *c != '-' && !c.is_whitespace())
        .map(|c| c.to_ascii_uppercase())
        .collect();
    (code.len() == USER_CODE_LEN && code.bytes().all(|b| USER_CODE_ALPHABET.contains(&b))).then_some(code)
}

fn display(code: &str) -> String {
    match code.get(..4).zip(code.get(4..)) {
        Some((head, tail)) => format!("{head}-{tail}"),
        None => code.to_owned(),
    }
}

/// A fresh user code: each character uniformly from the alphabet (rejection sampling).
fn new_user_code() -> String {
    let mut code = String::with_capacity(USER_CODE_LEN);
    while code.len() < USER_CODE_LEN {
        let mut bytes = [0u8; 16];
        if aws_lc_rs::rand::fill(&mut bytes).is_err() {
            tracing::error!("system randomness unavailable");
        }
        for b in bytes {
            // 240 = 12 × 20: bytes above it would favour the first letters.
            if b < 240 && code.len() < USER_CODE_LEN {
                code.push(char::from(USER_CODE_ALPHABET[usize::from(b % 20)]));
            }
        }
    }
    code
}

fn device_key(hash: &str) -> String {
    format!("device:{hash}")
}
fn user_key(code: &str) -> String {
    format!("device-user:{code}")
}
fn decision_key(hash: &str) -> String {
    format!("device-decision:{hash}")
}
fn poll_key(hash: &str) -> String {
    format!("device-poll:{hash}")
}
fn slow_key(hash: &str) -> String {
    format!("device-slow:{hash}")
}
fn redeemed_key(hash: &str) -> String {
    format!("device-redeemed:{hash}")
}

fn to_json<T: Serialize>(value: &T) -> Result<Vec<u8>, StoreError> {
    serde_json::to_vec(value).map_err(|e| StoreError::Corrupt(e.to_string()))
}

fn from_json<T: for<'de> Deserialize<'de>>(bytes: &[u8]) -> Result<T, StoreError> {
    serde_json::from_slice(bytes).map_err(|e| StoreError::Corrupt(e.to_string()))
}

impl Provider {
    fn record_ttl(&self) -> Duration {
        Duration::from_secs(self.config.device.code_ttl_secs + RECORD_GRACE_SECS)
    }

    /// `POST /oauth2/device_authorization` for an authenticated client allowed the grant.
    pub async fn start_device_authorization(
        &self,
        client: &ClientRecord,
        scope: Option<&str>,
        context: &RequestContext,
    ) -> Result<DeviceAuthorization, OAuthFailure> {
        let scope = allowed_scope(client, scope)?;
        let now = self.clock.now();
        let ttl = self.config.device.code_ttl_secs;
        let device_code = random_b64(32);
        let device_hash = sha256_b64(&device_code);
        // A collision of user codes is rare (2.6 × 10¹⁰ codes); one alive is never reused.
        let mut user_code = None;
        for _ in 0..4 {
            let candidate = new_user_code();
            if self
                .ephemeral
                .set_if_absent(&user_key(&candidate), device_hash.as_bytes(), self.record_ttl())
                .await?
            {
                user_code = Some(candidate);
                break;
            }
        }
        let user_code = user_code.ok_or_else(|| {
            OAuthFailure::new(
                OAuthErrorCode::TemporarilyUnavailable,
                "no user code is free; try again",
            )
        })?;
        let record = DeviceRecord {
            client_id: client.client_id.clone(),
            scope: scope.clone(),
            user_code: user_code.clone(),
            expires_at: now.saturating_add(i64::try_from(ttl).unwrap_or(i64::MAX)),
            interval: self.config.device.poll_interval_secs,
        };
        self.ephemeral
            .set(&device_key(&device_hash), &to_json(&record)?, self.record_ttl())
            .await?;
        self.audit
            .record(
                context,
                AuditEvent::new("device.authorization_started", "success")
                    .client(&client.client_id)
                    .detail(json!({ "scope": scope })),
            )
            .await;
        Ok(DeviceAuthorization {
            device_code,
            user_code: display(&user_code),
            expires_in: ttl,
            interval: record.interval,
        })
    }

    /// The grant waiting behind a user code the user typed: `None` when it is unknown,
    /// expired or already answered. Throttling guesses is the caller's job (the page).
    pub async fn pending_device(&self, typed: &str) -> Result<Option<PendingDevice>, StoreError> {
        let Some(code) = normalize_user_code(typed) else {
            return Ok(None);
        };
        let Some(hash) = self.ephemeral.get(&user_key(&code)).await? else {
            return Ok(None);
        };
        let device_hash = String::from_utf8_lossy(&hash).into_owned();
        let Some(bytes) = self.ephemeral.get(&device_key(&device_hash)).await? else {
            return Ok(None);
        };
        let record: DeviceRecord = from_json(&bytes)?;
        if record.expires_at <= self.clock.now() || record.user_code != code {
            return Ok(None);
        }
        if self.ephemeral.get(&decision_key(&device_hash)).await?.is_some() {
            return Ok(None);
        }
        let Some(client) = self.clients.client(&record.client_id).await? else {
            return Ok(None);
        };
        Ok(Some(PendingDevice {
            client,
            scope: record.scope.split_ascii_whitespace().map(str::to_owned).collect(),
            user_code: code,
            device_hash,
        }))
    }

    /// The signed-in user's answer on the verification page. `false` when the grant was
    /// answered already (the first answer stands).
    pub async fn decide_device(
        &self,
        pending: &PendingDevice,
        sso: &(SsoSessionRecord, UserRecord),
        approved: bool,
        context: &RequestContext,
    ) -> Result<bool, StoreError> {
        let (session, user) = sso;
        let decision = DecisionRecord {
            approved,
            user_id: user.id.clone(),
            sso_session_id: session.id.clone(),
            auth_time: session.auth_time,
            amr: session.amr.clone(),
        };
        let first = self
            .ephemeral
            .set_if_absent(
                &decision_key(&pending.device_hash),
                &to_json(&decision)?,
                self.record_ttl(),
            )
            .await?;
        if first {
            // The code has done its work: it cannot be entered again.
            self.ephemeral.delete(&user_key(&pending.user_code)).await?;
            self.audit
                .record(
                    context,
                    AuditEvent::new(
                        if approved {
                            "device.approved"
                        } else {
                            "device.denied"
                        },
                        "success",
                    )
                    .actor(format!("user:{}", user.id))
                    .subject(&user.id)
                    .client(&pending.client.client_id)
                    .detail(json!({ "scope": pending.scope.join(" ") })),
                )
                .await;
        }
        Ok(first)
    }

    /// `grant_type=urn:ietf:params:oauth:grant-type:device_code` (RFC 8628 §3.4, §3.5).
    /// `dpop_jkt`: the DPoP key the polling request proved, which the tokens are bound to.
    pub async fn poll_device(
        &self,
        client: &ClientRecord,
        device_code: &str,
        dpop_jkt: Option<&str>,
        context: &RequestContext,
    ) -> Result<Granted, OAuthFailure> {
        let invalid = |why: &str| {
            OAuthFailure::new(OAuthErrorCode::InvalidGrant, "the device code is invalid or used")
                .caused_by(why.to_owned())
        };
        if device_code.len() > 128 {
            return Err(invalid("device code too long"));
        }
        let hash = sha256_b64(device_code);
        let Some(bytes) = self.ephemeral.get(&device_key(&hash)).await? else {
            return Err(invalid("unknown device code"));
        };
        let record: DeviceRecord = from_json(&bytes)?;
        // Another client's code is unknown to this one (and teaches it nothing).
        if record.client_id != client.client_id {
            return Err(invalid("device code issued to another client"));
        }
        if self.ephemeral.get(&redeemed_key(&hash)).await?.is_some() {
            return Err(invalid("device code already redeemed"));
        }
        if record.expires_at <= self.clock.now() {
            return Err(OAuthFailure::new(
                OAuthErrorCode::ExpiredToken,
                "the device code expired; start again",
            ));
        }
        // 1. The pace (§3.5): a poll within the interval slows the device down for good.
        let slowed = self
            .ephemeral
            .get(&slow_key(&hash))
            .await?
            .and_then(|b| String::from_utf8_lossy(&b).trim().parse::<u64>().ok())
            .unwrap_or(0);
        let interval = Duration::from_secs(record.interval + slowed);
        let gate = interval.saturating_sub(POLL_TOLERANCE);
        if !self.ephemeral.set_if_absent(&poll_key(&hash), b"1", gate).await? {
            let slowed = self
                .ephemeral
                .add(
                    &slow_key(&hash),
                    i64::try_from(SLOW_DOWN_SECS).unwrap_or(5),
                    self.record_ttl(),
                )
                .await?;
            // The new, longer wait starts now.
            let wait = Duration::from_secs(record.interval + u64::try_from(slowed).unwrap_or(0));
            self.ephemeral
                .set(&poll_key(&hash), b"1", wait.saturating_sub(POLL_TOLERANCE))
                .await?;
            return Err(OAuthFailure::new(
                OAuthErrorCode::SlowDown,
                "polling too fast; wait 5 seconds longer between polls",
            ));
        }
        // 2. The user's answer.
        let Some(bytes) = self.ephemeral.get(&decision_key(&hash)).await? else {
            return Err(OAuthFailure::new(
                OAuthErrorCode::AuthorizationPending,
                "the user has not answered yet",
            ));
        };
        let decision: DecisionRecord = from_json(&bytes)?;
        if !decision.approved {
            // RFC 8628 §3.5 `access_denied` is a 400 token-endpoint error; our
            // `AccessDenied` carries 403 (the session limit), hence the literal code.
            return Err(OAuthFailure::new(
                OAuthErrorCode::Extension("access_denied".to_owned()),
                "the user denied the request",
            ));
        }
        // 3. Exactly one redemption, whichever node it reaches.
        if !self
            .ephemeral
            .set_if_absent(&redeemed_key(&hash), b"1", self.record_ttl())
            .await?
        {
            return Err(invalid("device code already redeemed"));
        }
        let grant = BrowserGrant {
            user_id: &decision.user_id,
            sso_session_id: &decision.sso_session_id,
            amr: &decision.amr,
            auth_time: decision.auth_time,
            scope: &record.scope,
        };
        let (user, sso, issued) = self
            .start_granted_session(client, &grant, invalid, dpop_jkt, context)
            .await?;
        let amr: Vec<&str> = decision.amr.split_ascii_whitespace().collect();
        let id_token = if record.scope.split_ascii_whitespace().any(|s| s == "openid") {
            let standard = self.requested_id_token_claims(&user, &record.scope, None).await?;
            Some(self.id_token(
                client,
                &user,
                &sso,
                standard,
                None,
                decision.auth_time,
                &amr,
                &issued.access_token,
            )?)
        } else {
            None
        };
        self.audit
            .record(
                context,
                AuditEvent::new("device.redeemed", "success")
                    .subject(&user.id)
                    .client(&client.client_id)
                    .session(&issued.session.id),
            )
            .await;
        Ok(self.granted(client, issued, id_token))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_codes_use_the_alphabet_and_are_entered_in_any_case_with_or_without_dashes() {
        for _ in 0..200 {
            let code = new_user_code();
            assert_eq!(code.len(), USER_CODE_LEN);
            assert_eq!(normalize_user_code(&code).as_deref(), Some(code.as_str()));
            let shown = display(&code);
            assert_eq!(shown.len(), 9);
            assert_eq!(
                normalize_user_code(&shown.to_ascii_lowercase()).as_deref(),
                Some(code.as_str())
            );
        }
        assert_eq!(normalize_user_code("bcdf-ghjk").as_deref(), Some("BCDFGHJK"));
        assert_eq!(normalize_user_code(" BCDF GHJK ").as_deref(), Some("BCDFGHJK"));
        // Vowels, digits and the wrong length are not codes.
        assert_eq!(normalize_user_code("ABCD-EFGH"), None);
        assert_eq!(normalize_user_code("BCDF-GHJ0"), None);
        assert_eq!(normalize_user_code("BCDF-GHJ"), None);
        assert_eq!(normalize_user_code("BCDF-GHJKL"), None);
    }
}
