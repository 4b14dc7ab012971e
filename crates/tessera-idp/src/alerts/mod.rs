//! Abnormal-login alerts (R24): the "new sign-in" e-mail with a link that ends that session,
//! and abuse signals ([`abuse`]).
//!
//! **Device recognition.** Every successful sign-in (JSON API and hosted login page) comes
//! with a device id: the one a native client sends (`deviceId` in the login body, or the
//! `X-Device-Id` header), else the browser's `tessera_device` cookie, else a fresh random one
//! (192 bits) that is set as that cookie. The user's *sightings* — a hash of user id and device
//! id, with the client IP's network prefix (/24 for IPv4, /64 for IPv6) — are remembered in
//! the durable store (the newest `alerts.known_devices_per_user`, for
//! `alerts.known_device_retention_days`).
//!
//! **The rule.** A sign-in is *new* when the user has at least one remembered sighting, the
//! device is not among them, and neither is the network prefix. So a known device is never
//! new (wherever it is), an unknown device on a network the user has signed in from before
//! is not new (a second browser at home), and the very first sign-in of a user is not new
//! (there is nothing to compare with). A new sign-in is audited (`login.new_device`) and, at
//! most `alerts.new_sign_in_max_per_hour` times per user and hour, e-mailed to the user with
//! a single-use link that ends exactly that session.

pub mod abuse;
pub mod risk;

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use tessera_store::durable::{DeviceStore, KnownDeviceRecord, OneTimeTokenRecord, UserRecord, UserStore};
use tessera_store::ephemeral::EphemeralStore;
use tessera_store::StoreError;

use self::abuse::AbuseDetector;
use crate::audit::{AuditEvent, Auditor, RequestContext};
use crate::clock::{rfc3339, Clock};
use crate::config::Config;
use crate::mail::{self, Locale, Mailer, Outgoing};
use crate::outbound::Outbound;
use crate::tokens::opaque::{random_b64, sha256_b64};

/// The long-lived cookie that recognises a browser.
pub const DEVICE_COOKIE: &str = "tessera_device";
/// The header a native client may send its device id in (instead of `deviceId`).
pub const DEVICE_ID_HEADER: &str = "x-device-id";
/// Purpose of the single-use tokens of the "end that session" links.
pub const END_SESSION_PURPOSE: &str = "end_session";
/// Longest life of an "end that session" link (shorter when the session ends sooner).
pub const END_LINK_MAX_TTL_SECS: i64 = 7 * 86_400;

/// Shortest and longest device id accepted from a client.
const DEVICE_ID_MIN: usize = 16;
const DEVICE_ID_MAX: usize = 128;
/// Longest link token looked up (ours are 43 characters).
const MAX_LINK_TOKEN: usize = 128;

/// Whether `id` is acceptable as a device id: 16–128 of `A-Z a-z 0-9 - _ .`.
pub fn is_valid_device_id(id: &str) -> bool {
    (DEVICE_ID_MIN..=DEVICE_ID_MAX).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

/// The network prefix of a client address: `a.b.c.0/24` for IPv4 (and IPv4-mapped IPv6),
/// the first four groups `/64` for IPv6, `unknown` when there is no address.
pub fn network_of(ip: Option<&str>) -> String {
    let Some(ip) = ip.and_then(|text| text.trim().parse::<IpAddr>().ok()) else {
        return "unknown".to_owned();
    };
    let ip = match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
        v4 => v4,
    };
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, c, _] = v4.octets();
            format!("{a}.{b}.{c}.0/24")
        }
        IpAddr::V6(v6) => {
            let s = v6.segments();
            let prefix = std::net::Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0);
            format!("{prefix}/64")
        }
    }
}

/// The session a sign-in started, which its e-mail's link may end.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SignInSession {
    /// A token session of the first-party JSON API.
    Token { id: String, expires_at: i64 },
    /// A browser sign-in at the provider (hosted login page).
    Sso { id: String, expires_at: i64 },
}

impl SignInSession {
    /// How it is stored with the link's token.
    fn key(&self) -> String {
        match self {
            SignInSession::Token { id, .. } => format!("session:{id}"),
            SignInSession::Sso { id, .. } => format!("sso:{id}"),
        }
    }

    fn expires_at(&self) -> i64 {
        match self {
            SignInSession::Token { expires_at, .. } | SignInSession::Sso { expires_at, .. } => *expires_at,
        }
    }

    fn id(&self) -> &str {
        match self {
            SignInSession::Token { id, .. } | SignInSession::Sso { id, .. } => id,
        }
    }
}

/// What an "end that session" link ends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LinkTarget {
    Token(String),
    Sso(String),
}

/// A valid "end that session" link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndLink {
    pub user_id: String,
    pub target: LinkTarget,
    /// When the sign-in (and the link) happened.
    pub created_at: i64,
}

impl EndLink {
    fn from_record(record: OneTimeTokenRecord) -> Option<EndLink> {
        let stored = record.session_id?;
        let target = match stored.split_once(':') {
            Some(("session", id)) if !id.is_empty() => LinkTarget::Token(id.to_owned()),
            Some(("sso", id)) if !id.is_empty() => LinkTarget::Sso(id.to_owned()),
            _ => return None,
        };
        Some(EndLink {
            user_id: record.user_id,
            target,
            created_at: record.created_at,
        })
    }
}

pub struct Alerts {
    config: Arc<Config>,
    issuer: Arc<str>,
    users: Arc<dyn UserStore>,
    devices: Arc<dyn DeviceStore>,
    ephemeral: Arc<dyn EphemeralStore>,
    mailer: Mailer,
    audit: Auditor,
    clock: Arc<dyn Clock>,
    abuse: AbuseDetector,
}

pub struct AlertsParts {
    pub config: Arc<Config>,
    pub users: Arc<dyn UserStore>,
    pub devices: Arc<dyn DeviceStore>,
    pub ephemeral: Arc<dyn EphemeralStore>,
    pub mailer: Mailer,
    pub audit: Auditor,
    pub clock: Arc<dyn Clock>,
    /// Where abuse signals are posted to the alerts webhook.
    pub outbound: Arc<dyn Outbound>,
}

impl Alerts {
    pub fn new(parts: AlertsParts) -> Self {
        let abuse = AbuseDetector::new(
            parts.config.clone(),
            parts.users.clone(),
            parts.ephemeral.clone(),
            parts.audit.clone(),
            parts.clock.clone(),
            parts.outbound,
        );
        Alerts {
            issuer: parts.config.issuer().into(),
            config: parts.config,
            users: parts.users,
            devices: parts.devices,
            ephemeral: parts.ephemeral,
            mailer: parts.mailer,
            audit: parts.audit,
            clock: parts.clock,
            abuse,
        }
    }

    /// Whether devices are recognised (and the device cookie set) at all.
    pub fn enabled(&self) -> bool {
        self.config.alerts.new_sign_in_email
    }

    /// Seconds the device cookie lives.
    pub fn device_cookie_max_age(&self) -> u64 {
        self.config.alerts.device_cookie_days.saturating_mul(86_400)
    }

    /// The abuse-signal detector (fed by every failed password check).
    pub fn abuse(&self) -> &AbuseDetector {
        &self.abuse
    }

    /// After a successful sign-in of `user` that started `session`: recognises the device
    /// (`presented`: the client's device id, already checked with [`is_valid_device_id`]),
    /// remembers the sighting and, if the sign-in is new, audits it and e-mails the user in
    /// the background. Returns the device id to set as the device cookie, or `None` when
    /// alerts are off. Never fails the sign-in: store errors are logged.
    pub async fn signed_in(
        &self,
        user: &UserRecord,
        session: &SignInSession,
        presented: Option<&str>,
        context: &RequestContext,
    ) -> Option<String> {
        if !self.enabled() {
            return None;
        }
        let device = match presented.filter(|id| is_valid_device_id(id)) {
            Some(id) => id.to_owned(),
            None => random_b64(24),
        };
        if let Err(err) = self.check_sign_in(user, session, &device, context).await {
            tracing::warn!(error = %err, "cannot check the sign-in for a new device; no alert sent");
        }
        Some(device)
    }

    async fn check_sign_in(
        &self,
        user: &UserRecord,
        session: &SignInSession,
        device: &str,
        context: &RequestContext,
    ) -> Result<(), StoreError> {
        let now = self.clock.now();
        let device_hash = sha256_b64(&format!("{}:{device}", user.id));
        let network = network_of(context.ip.as_deref());
        let known = self.devices.known_devices(&user.id).await?;
        let is_new = !known.is_empty()
            && !known.iter().any(|k| k.device_hash == device_hash)
            && !known.iter().any(|k| k.network == network);
        self.devices
            .remember_device(
                &KnownDeviceRecord {
                    user_id: user.id.clone(),
                    device_hash,
                    network: network.clone(),
                    first_seen_at: now,
                    last_seen_at: now,
                },
                usize::try_from(self.config.alerts.known_devices_per_user).unwrap_or(usize::MAX),
            )
            .await?;
        if !is_new {
            return Ok(());
        }
        // The sign-in is audited even when its mail cannot be prepared.
        let mailed = match self.mail_new_sign_in(user, session, context).await {
            Ok(mailed) => mailed,
            Err(err) => {
                tracing::warn!(error = %err, "cannot prepare the new sign-in e-mail");
                false
            }
        };
        self.audit
            .record(
                context,
                AuditEvent::new("login.new_device", "success")
                    .actor(format!("user:{}", user.id))
                    .subject(&user.id)
                    .session(session.id())
                    .detail(json!({ "network": network, "mailed": mailed })),
            )
            .await;
        Ok(())
    }

    /// Mails the new sign-in notice unless the user's hourly allowance is used up. Returns
    /// whether a message was handed to the background sender.
    async fn mail_new_sign_in(
        &self,
        user: &UserRecord,
        session: &SignInSession,
        context: &RequestContext,
    ) -> Result<bool, StoreError> {
        let sent = self
            .ephemeral
            .incr(
                &format!("alerts:new-sign-in:{}", user.id),
                Duration::from_secs(3600),
            )
            .await?;
        if sent > u64::from(self.config.alerts.new_sign_in_max_per_hour) {
            return Ok(false);
        }
        let now = self.clock.now();
        let token = random_b64(32);
        self.users
            .create_one_time_token(&OneTimeTokenRecord {
                token_hash: sha256_b64(&token),
                purpose: END_SESSION_PURPOSE.to_owned(),
                user_id: user.id.clone(),
                email: user.email.clone(),
                created_at: now,
                expires_at: session
                    .expires_at()
                    .min(now.saturating_add(END_LINK_MAX_TTL_SECS)),
                used_at: None,
                session_id: Some(session.key()),
            })
            .await?;
        let locale = user
            .locale
            .as_deref()
            .map_or(Locale::En, Locale::from_accept_language);
        let link = format!(
            "{}{}?token={token}",
            self.issuer,
            tessera_proto::paths::END_SIGN_IN
        );
        let message = Outgoing::from_template(
            user.email.clone(),
            mail::new_sign_in_email(
                locale,
                &utc_text(now),
                context.ip.as_deref().unwrap_or("-"),
                context.user_agent.as_deref().unwrap_or("-"),
                &link,
                &format!("{}{}", self.issuer, tessera_proto::paths::ACCOUNT_SESSIONS_PAGE),
            ),
        );
        let mailer = self.mailer.clone();
        tokio::spawn(async move {
            if let Err(err) = mailer.send(message).await {
                tracing::error!(error = %err, "sending the new sign-in e-mail failed");
            }
        });
        Ok(true)
    }

    /// The link behind `token` if it could be used now (the confirmation page).
    pub async fn peek_end_link(&self, token: &str) -> Result<Option<EndLink>, StoreError> {
        if token.is_empty() || token.len() > MAX_LINK_TOKEN {
            return Ok(None);
        }
        Ok(self
            .users
            .peek_one_time_token(&sha256_b64(token), END_SESSION_PURPOSE, self.clock.now())
            .await?
            .and_then(EndLink::from_record))
    }

    /// Uses the link behind `token` up (exactly one of concurrent posts gets it).
    pub async fn consume_end_link(&self, token: &str) -> Result<Option<EndLink>, StoreError> {
        if token.is_empty() || token.len() > MAX_LINK_TOKEN {
            return Ok(None);
        }
        Ok(self
            .users
            .consume_one_time_token(&sha256_b64(token), END_SESSION_PURPOSE, self.clock.now())
            .await?
            .and_then(EndLink::from_record))
    }

    /// The clean-up pass: forgets sightings older than the retention period.
    pub async fn purge_known_devices(&self) -> Result<u64, StoreError> {
        let retention = i64::try_from(
            self.config
                .alerts
                .known_device_retention_days
                .saturating_mul(86_400),
        )
        .unwrap_or(i64::MAX);
        self.devices
            .purge_known_devices(self.clock.now().saturating_sub(retention))
            .await
    }
}

/// A time as the e-mail shows it: `2026-05-01 09:45:30 UTC`.
pub fn utc_text(secs: i64) -> String {
    rfc3339(secs).replace('T', " ").replace('Z', " UTC")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn networks_are_slash_24_and_slash_64() {
        assert_eq!(network_of(Some("203.0.113.77")), "203.0.113.0/24");
        assert_eq!(network_of(Some("::ffff:203.0.113.77")), "203.0.113.0/24");
        assert_eq!(network_of(Some("2001:db8:1:2:3:4:5:6")), "2001:db8:1:2::/64");
        assert_eq!(network_of(Some("not an ip")), "unknown");
        assert_eq!(network_of(None), "unknown");
    }

    #[test]
    fn device_ids_are_checked() {
        assert!(is_valid_device_id("0123456789abcdef"));
        assert!(is_valid_device_id(&"a".repeat(128)));
        assert!(is_valid_device_id("ios.A1B2-c3d4_e5f6"));
        assert!(!is_valid_device_id("short"));
        assert!(!is_valid_device_id(&"a".repeat(129)));
        assert!(!is_valid_device_id("0123456789abcdef;x=1"));
        assert!(!is_valid_device_id("0123456789 abcdef"));
    }

    #[test]
    fn link_records_name_their_session() {
        let record = |session_id: Option<&str>| OneTimeTokenRecord {
            token_hash: "h".into(),
            purpose: END_SESSION_PURPOSE.into(),
            user_id: "u1".into(),
            email: "u1@example.com".into(),
            created_at: 10,
            expires_at: 20,
            used_at: None,
            session_id: session_id.map(str::to_owned),
        };
        assert_eq!(
            EndLink::from_record(record(Some("session:s1"))).map(|l| l.target),
            Some(LinkTarget::Token("s1".into()))
        );
        assert_eq!(
            EndLink::from_record(record(Some("sso:x"))).map(|l| l.target),
            Some(LinkTarget::Sso("x".into()))
        );
        for bad in [None, Some("session:"), Some("other:s1"), Some("s1")] {
            assert_eq!(EndLink::from_record(record(bad)), None, "{bad:?}");
        }
    }

    #[test]
    fn times_are_shown_in_utc() {
        assert_eq!(utc_text(1_777_628_730), "2026-05-01 09:45:30 UTC");
    }
}
