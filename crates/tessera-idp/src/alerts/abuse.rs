//! Abuse signals: many failed sign-ins for one account from many IPs (a distributed
//! guessing attack), and failures for many accounts from one IP (credential stuffing).
//!
//! Counting is in the ephemeral store, so every node counts together, in fixed windows of
//! `alerts.abuse_window_secs` (numbered from the epoch by the node's clock). For each failure
//! a marker `(subject, window, other side)` is set with `set_if_absent`; only the caller that
//! set it increments the subject's counter, so the counter counts *distinct* IPs (or
//! accounts) atomically across nodes. The increment that reaches the threshold — exactly
//! one per window and subject — raises the signal: an audit event, a count in
//! `tessera_abuse_signals_total{kind}`, and, with `alerts.webhook_url`, a signed JSON POST in
//! the background (three attempts, 1 s then 2 s apart, 5 s timeout each).

use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};
use tessera_store::durable::UserStore;
use tessera_store::ephemeral::EphemeralStore;
use tessera_store::StoreError;

use crate::audit::{AuditEvent, Auditor, RequestContext};
use crate::clock::{rfc3339, Clock};
use crate::config::Config;
use crate::outbound::{is_success, Outbound, Post};
use crate::tokens::opaque::{random_id, sha256_b64};

pub use crate::outbound::{sign, SIGNATURE_HEADER};
/// The header naming the signal's event.
pub const EVENT_HEADER: &str = "x-tessera-event";
/// Delivery attempts of one webhook call, with doubling pauses from one second.
const WEBHOOK_ATTEMPTS: u32 = 3;
const WEBHOOK_TIMEOUT: Duration = Duration::from_secs(5);

/// A kind of abuse signal (the `kind` label of `tessera_abuse_signals_total`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignalKind {
    /// Failures for one account from many distinct IPs.
    DistributedFailures,
    /// Failures for many distinct accounts from one IP.
    ManyAccountsFromIp,
}

impl SignalKind {
    pub const ALL: [SignalKind; 2] = [SignalKind::DistributedFailures, SignalKind::ManyAccountsFromIp];

    /// The metric label.
    pub fn label(self) -> &'static str {
        match self {
            SignalKind::DistributedFailures => "distributed_failures",
            SignalKind::ManyAccountsFromIp => "many_accounts_from_ip",
        }
    }

    /// The audit event (and the webhook's `event`).
    pub fn event(self) -> &'static str {
        match self {
            SignalKind::DistributedFailures => "abuse.distributed_failures",
            SignalKind::ManyAccountsFromIp => "abuse.many_accounts_from_ip",
        }
    }
}

pub struct AbuseDetector {
    config: Arc<Config>,
    issuer: String,
    users: Arc<dyn UserStore>,
    store: Arc<dyn EphemeralStore>,
    audit: Auditor,
    clock: Arc<dyn Clock>,
    outbound: Arc<dyn Outbound>,
}

impl AbuseDetector {
    pub fn new(
        config: Arc<Config>,
        users: Arc<dyn UserStore>,
        store: Arc<dyn EphemeralStore>,
        audit: Auditor,
        clock: Arc<dyn Clock>,
        outbound: Arc<dyn Outbound>,
    ) -> Self {
        AbuseDetector {
            issuer: config.issuer(),
            config,
            users,
            store,
            audit,
            clock,
            outbound,
        }
    }

    /// A password check for `account` (a normalised e-mail, existing or not) failed or was
    /// refused by the throttle. Errors of the ephemeral store are logged, never returned: a
    /// failed login must get its answer regardless.
    pub async fn login_failed(&self, account: &str, context: &RequestContext) {
        if let Err(err) = self.count(account, context).await {
            tracing::warn!(error = %err, "cannot count a failed login for abuse signals");
        }
    }

    /// Whether `account` raised the distributed-failures signal in this window or the
    /// one before (failed sign-ins from many IPs: someone else is guessing its password).
    pub async fn account_signalled(&self, account: &str) -> Result<bool, StoreError> {
        let threshold = self.config.alerts.abuse_ips_per_account;
        if threshold == 0 {
            return Ok(false);
        }
        let window = i64::try_from(self.config.alerts.abuse_window_secs.max(1)).unwrap_or(i64::MAX);
        let number = self.clock.now().div_euclid(window);
        let account_key = sha256_b64(account);
        for n in [number, number - 1] {
            let count = self
                .store
                .get(&format!("abuse:account:{account_key}:{n}:count"))
                .await?
                .and_then(|bytes| String::from_utf8(bytes).ok()?.parse::<u64>().ok())
                .unwrap_or(0);
            if count >= u64::from(threshold) {
                return Ok(true);
            }
        }
        Ok(false)
    }

    async fn count(&self, account: &str, context: &RequestContext) -> Result<(), StoreError> {
        let Some(ip) = context.ip.as_deref() else {
            return Ok(());
        };
        let settings = &self.config.alerts;
        let window = settings.abuse_window_secs.max(1);
        let window_i64 = i64::try_from(window).unwrap_or(i64::MAX);
        let number = self.clock.now().div_euclid(window_i64);
        // Keys outlive their window a little, whatever the store's clock says.
        let ttl = Duration::from_secs(window.saturating_mul(2));
        let account_key = sha256_b64(account);
        let checks = [
            (
                SignalKind::DistributedFailures,
                settings.abuse_ips_per_account,
                format!("abuse:account:{account_key}:{number}"),
                ip,
            ),
            (
                SignalKind::ManyAccountsFromIp,
                settings.abuse_accounts_per_ip,
                format!("abuse:ip:{ip}:{number}"),
                account_key.as_str(),
            ),
        ];
        for (kind, threshold, subject, other) in checks {
            if threshold == 0 {
                continue;
            }
            if !self
                .store
                .set_if_absent(&format!("{subject}:seen:{other}"), b"1", ttl)
                .await?
            {
                continue;
            }
            let distinct = self.store.incr(&format!("{subject}:count"), ttl).await?;
            if distinct == u64::from(threshold) {
                let window_start = number.saturating_mul(window_i64);
                self.raise(kind, account, ip, distinct, window_start, context)
                    .await;
            }
        }
        Ok(())
    }

    async fn raise(
        &self,
        kind: SignalKind,
        account: &str,
        ip: &str,
        distinct: u64,
        window_start: i64,
        context: &RequestContext,
    ) {
        crate::telemetry::abuse_signal(kind.label());
        let settings = &self.config.alerts;
        let mut detail = json!({
            "window_secs": settings.abuse_window_secs,
            "window_start": window_start,
        });
        let mut event = AuditEvent::new(kind.event(), "failure").actor("system");
        let mut payload = json!({
            "id": random_id(),
            "event": kind.event(),
            "kind": kind.label(),
            "issuer": self.issuer,
            "at": self.clock.now(),
            "time": rfc3339(self.clock.now()),
            "window_secs": settings.abuse_window_secs,
            "window_start": window_start,
        });
        match kind {
            SignalKind::DistributedFailures => {
                detail["distinct_ips"] = Value::from(distinct);
                detail["threshold"] = Value::from(settings.abuse_ips_per_account);
                payload["distinct_ips"] = Value::from(distinct);
                payload["threshold"] = Value::from(settings.abuse_ips_per_account);
                // The account by its user id when it exists; an e-mail address is not sent.
                let user_id = match self.users.user_by_email(account).await {
                    Ok(user) => user.map(|u| u.id),
                    Err(err) => {
                        tracing::warn!(error = %err, "cannot look up the account of an abuse signal");
                        None
                    }
                };
                detail["account_exists"] = Value::from(user_id.is_some());
                payload["account_exists"] = Value::from(user_id.is_some());
                payload["user_id"] = user_id.clone().map_or(Value::Null, Value::from);
                if let Some(id) = user_id {
                    event = event.subject(id);
                }
            }
            SignalKind::ManyAccountsFromIp => {
                detail["distinct_accounts"] = Value::from(distinct);
                detail["threshold"] = Value::from(settings.abuse_accounts_per_ip);
                detail["ip"] = Value::from(ip);
                payload["distinct_accounts"] = Value::from(distinct);
                payload["threshold"] = Value::from(settings.abuse_accounts_per_ip);
                payload["ip"] = Value::from(ip);
            }
        }
        self.audit.record(context, event.detail(detail)).await;
        if let Some(url) = settings.webhook_url.clone() {
            self.post_later(url, kind, payload, context);
        }
    }

    /// POSTs `payload` to the webhook in the background, retrying with back-off.
    fn post_later(&self, url: String, kind: SignalKind, payload: Value, context: &RequestContext) {
        let body = payload.to_string();
        let signature = self
            .config
            .alerts
            .webhook_secret
            .as_ref()
            .map(|secret| sign(secret.expose().as_bytes(), body.as_bytes()));
        let outbound = self.outbound.clone();
        let audit = self.audit.clone();
        let context = context.clone();
        tokio::spawn(async move {
            let mut pause = Duration::from_secs(1);
            let mut last_error = String::new();
            for attempt in 1..=WEBHOOK_ATTEMPTS {
                let mut post = Post {
                    url: url.clone(),
                    content_type: "application/json",
                    headers: vec![(EVENT_HEADER, kind.event().to_owned())],
                    body: body.clone().into_bytes(),
                    timeout: WEBHOOK_TIMEOUT,
                };
                if let Some(signature) = &signature {
                    post = post.header(SIGNATURE_HEADER, signature.as_str());
                }
                match outbound.post(post).await {
                    Ok(status) if is_success(status) => return,
                    Ok(status) => last_error = format!("status {status}"),
                    Err(err) => last_error = err.to_string(),
                }
                if attempt < WEBHOOK_ATTEMPTS {
                    tokio::time::sleep(pause).await;
                    pause *= 2;
                }
            }
            tracing::warn!(error = %last_error, event = kind.event(), "the alerts webhook did not accept a signal");
            audit
                .record(
                    &context,
                    AuditEvent::new("abuse.webhook_failed", "failure")
                        .actor("system")
                        .detail(json!({
                            "event": kind.event(),
                            "attempts": WEBHOOK_ATTEMPTS,
                            "error": last_error,
                        })),
                )
                .await;
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_match_a_known_vector() {
        // RFC 4231 test case 2.
        assert_eq!(
            sign(b"Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn labels_and_events_are_fixed() {
        let labels: Vec<&str> = SignalKind::ALL.iter().map(|k| k.label()).collect();
        assert_eq!(labels, ["distributed_failures", "many_accounts_from_ip"]);
        for kind in SignalKind::ALL {
            assert!(kind.event().starts_with("abuse."));
        }
    }
}
