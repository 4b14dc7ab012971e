//! Prometheus metrics (R19): one recorder per process, rendered by the node's own
//! `GET /metrics` (text format 0.0.4), and the few functions the rest of the provider calls to
//! count what happened.
//!
//! - Counters of authentication events are kept where the events are decided: the
//!   [`crate::audit::Auditor`] counts every audit event (and from them lockouts and refresh
//!   reuse), password logins count their outcome, token endpoints their grant.
//! - HTTP requests are counted by a middleware layer, labelled with the matched route
//!   *template* (`/admin/clients/{id}`), never the raw path, or `unmatched`.
//! - Gauges (readiness, Redis, active sessions, signing-key age) are refreshed every
//!   `metrics.refresh_secs` by a background task of the node, and readiness also by each
//!   `GET /readyz`.
//!
//! Every label value comes from a fixed set (routes, methods, status codes, outcomes, grant
//! types, event names, algorithms): never a user id, an e-mail address, a token or a path
//! that was not routed. [`METRICS`] lists every series; the documentation, the Grafana
//! dashboard and the alert rules are checked against it.

use std::sync::OnceLock;
use std::time::Duration;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use tessera_store::durable::SessionStore;

use crate::keys::{alg_name, ALGORITHMS};
use crate::state::AppState;

pub const HTTP_REQUESTS: &str = "tessera_http_requests_total";
pub const HTTP_DURATION: &str = "tessera_http_request_duration_seconds";
pub const LOGINS: &str = "tessera_logins_total";
pub const TOKENS_ISSUED: &str = "tessera_tokens_issued_total";
pub const REFRESH_REUSE: &str = "tessera_refresh_reuse_detected_total";
pub const LOCKOUTS: &str = "tessera_lockouts_total";
pub const PASSWORD_HASH_DURATION: &str = "tessera_password_hash_duration_seconds";
pub const STORE_ERRORS: &str = "tessera_store_errors_total";
pub const STORE_LATENCY: &str = "tessera_store_round_trip_seconds";
pub const REDIS_UP: &str = "tessera_redis_up";
pub const READY: &str = "tessera_ready";
pub const SIGNING_KEY_AGE: &str = "tessera_signing_key_age_seconds";
pub const ACTIVE_SESSIONS: &str = "tessera_active_sessions";
pub const AUDIT_EVENTS: &str = "tessera_audit_events_total";
pub const ABUSE_SIGNALS: &str = "tessera_abuse_signals_total";
pub const MFA_EVENTS: &str = "tessera_mfa_events_total";

/// What kind of series a metric is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Counter,
    Gauge,
    Histogram,
}

/// Every metric of the identity provider: name, kind, labels, help text.
pub const METRICS: &[(&str, Kind, &[&str], &str)] = &[
    (
        HTTP_REQUESTS,
        Kind::Counter,
        &["route", "method", "status"],
        "HTTP requests answered, by route template, method and status code.",
    ),
    (
        HTTP_DURATION,
        Kind::Histogram,
        &["route"],
        "Time to answer an HTTP request, by route template.",
    ),
    (
        LOGINS,
        Kind::Counter,
        &["outcome"],
        "Password logins by outcome: success, invalid_credentials, throttled, locked, email_not_verified, disabled.",
    ),
    (
        TOKENS_ISSUED,
        Kind::Counter,
        &["grant_type"],
        "Token responses issued, by grant: login, refresh_token, authorization_code, client_credentials, password.",
    ),
    (
        REFRESH_REUSE,
        Kind::Counter,
        &[],
        "Rotated refresh tokens presented again (theft detected; the session was ended).",
    ),
    (
        LOCKOUTS,
        Kind::Counter,
        &[],
        "Accounts locked after too many failed logins.",
    ),
    (
        PASSWORD_HASH_DURATION,
        Kind::Histogram,
        &[],
        "Time of one password hash or verification.",
    ),
    (
        STORE_ERRORS,
        Kind::Counter,
        &["store"],
        "Failed operations on a backing store: database or redis.",
    ),
    (
        STORE_LATENCY,
        Kind::Histogram,
        &["store"],
        "Round trip of a ping to a backing store (database or redis), at every readiness check and gauge refresh.",
    ),
    (
        REDIS_UP,
        Kind::Gauge,
        &[],
        "1 when Redis answered the last check, 0 when not (only when Redis is configured).",
    ),
    (
        READY,
        Kind::Gauge,
        &[],
        "1 when the node was ready at the last check (database, signing keys, ephemeral store), 0 when not.",
    ),
    (
        SIGNING_KEY_AGE,
        Kind::Gauge,
        &["alg"],
        "Seconds since the signing key now active for an algorithm was created.",
    ),
    (
        ACTIVE_SESSIONS,
        Kind::Gauge,
        &[],
        "Sessions alive at the last count (all users, all nodes: one database).",
    ),
    (
        AUDIT_EVENTS,
        Kind::Counter,
        &["event", "outcome"],
        "Audit events recorded by this node, by event type and outcome.",
    ),
    (
        ABUSE_SIGNALS,
        Kind::Counter,
        &["kind"],
        "Abuse signals raised: distributed_failures (one account, many IPs), many_accounts_from_ip.",
    ),
    (
        MFA_EVENTS,
        Kind::Counter,
        &["event", "method"],
        "Second-factor events: enrolled, used, failed, removed; by method: totp, email_otp, sms_otp, recovery_code.",
    ),
];

/// The events of `tessera_mfa_events_total{event}`.
pub const MFA_EVENT_NAMES: &[&str] = &["enrolled", "used", "failed", "removed", "risk_step_up"];
/// The methods of `tessera_mfa_events_total{method}`.
pub const MFA_METHODS: &[&str] = &["totp", "email_otp", "sms_otp", "recovery_code", "webauthn"];

/// The outcomes of a password login (`tessera_logins_total{outcome}`).
pub const LOGIN_OUTCOMES: &[&str] = &[
    "success",
    "invalid_credentials",
    "throttled",
    "locked",
    "email_not_verified",
    "disabled",
];

/// The grants of `tessera_tokens_issued_total{grant_type}`.
pub const GRANT_TYPES: &[&str] = &[
    "login",
    "refresh_token",
    "authorization_code",
    "client_credentials",
    "password",
    "device_code",
];

/// Buckets of request latency, in seconds.
const HTTP_BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];
/// Buckets of one Argon2id run, in seconds (the OWASP parameters take tens of milliseconds).
const HASH_BUCKETS: &[f64] = &[0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5];
/// From a local socket's fraction of a millisecond to the 2 s check timeout.
const STORE_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0,
];

/// How long one gauge check may take before it counts as failed.
const CHECK_TIMEOUT: Duration = Duration::from_secs(2);

static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// Installs the process's Prometheus recorder, once: later calls (every node a test starts
/// in one process) return the same handle. `None` when another recorder was installed
/// globally first (nothing of ours can be rendered then; `/metrics` answers 503).
pub fn install() -> Option<&'static PrometheusHandle> {
    HANDLE
        .get_or_init(|| {
            let builder = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Full(HTTP_DURATION.to_owned()), HTTP_BUCKETS)
                .and_then(|b| {
                    b.set_buckets_for_metric(Matcher::Full(PASSWORD_HASH_DURATION.to_owned()), HASH_BUCKETS)
                })
                .and_then(|b| b.set_buckets_for_metric(Matcher::Full(STORE_LATENCY.to_owned()), STORE_BUCKETS));
            let installed = builder.and_then(PrometheusBuilder::install_recorder);
            match installed {
                Ok(handle) => {
                    describe_and_register();
                    Some(handle)
                }
                Err(err) => {
                    tracing::warn!(error = %err, "cannot install the metrics recorder; /metrics will answer 503");
                    None
                }
            }
        })
        .as_ref()
}

/// The recorder's handle, if [`install`] succeeded in this process.
pub fn handle() -> Option<&'static PrometheusHandle> {
    HANDLE.get().and_then(Option::as_ref)
}

/// HELP lines for every metric, and a zero for each counter series of a fixed label set,
/// so that `rate()` and `increase()` see the first event.
fn describe_and_register() {
    for &(name, kind, _, help) in METRICS {
        match kind {
            Kind::Counter => metrics::describe_counter!(name, help),
            Kind::Gauge => metrics::describe_gauge!(name, help),
            Kind::Histogram => metrics::describe_histogram!(name, metrics::Unit::Seconds, help),
        }
    }
    for outcome in LOGIN_OUTCOMES {
        metrics::counter!(LOGINS, "outcome" => *outcome).increment(0);
    }
    for grant in GRANT_TYPES {
        metrics::counter!(TOKENS_ISSUED, "grant_type" => *grant).increment(0);
    }
    metrics::counter!(REFRESH_REUSE).increment(0);
    metrics::counter!(LOCKOUTS).increment(0);
    for store in ["database", "redis"] {
        metrics::counter!(STORE_ERRORS, "store" => store).increment(0);
    }
    for event in MFA_EVENT_NAMES {
        for method in MFA_METHODS {
            metrics::counter!(MFA_EVENTS, "event" => *event, "method" => *method).increment(0);
        }
    }
    for kind in crate::alerts::abuse::SignalKind::ALL {
        metrics::counter!(ABUSE_SIGNALS, "kind" => kind.label()).increment(0);
    }
}

/// The Prometheus text exposition of everything recorded in this process.
pub fn render() -> Option<String> {
    let handle = handle()?;
    handle.run_upkeep();
    Some(handle.render())
}

/// A password login ended with `outcome` (one of [`LOGIN_OUTCOMES`]).
pub fn login(outcome: &'static str) {
    metrics::counter!(LOGINS, "outcome" => outcome).increment(1);
}

/// A token response was issued for `grant_type` (one of [`GRANT_TYPES`]).
pub fn token_issued(grant_type: &'static str) {
    metrics::counter!(TOKENS_ISSUED, "grant_type" => grant_type).increment(1);
}

/// An abuse signal of `kind` (a [`crate::alerts::abuse::SignalKind`] label) was raised.
pub fn abuse_signal(kind: &'static str) {
    metrics::counter!(ABUSE_SIGNALS, "kind" => kind).increment(1);
}

/// A second-factor `event` (one of [`MFA_EVENT_NAMES`]) with `method` (one of [`MFA_METHODS`]).
pub fn mfa_event(event: &'static str, method: &'static str) {
    metrics::counter!(MFA_EVENTS, "event" => event, "method" => method).increment(1);
}

/// One password hash or verification took `elapsed`.
pub fn password_hash(elapsed: Duration) {
    metrics::histogram!(PASSWORD_HASH_DURATION).record(elapsed.as_secs_f64());
}

/// An audit event was recorded. Event names and outcomes are `&'static str` literals of
/// the code, so their set is fixed.
pub fn audit_event(event: &'static str, outcome: &'static str) {
    metrics::counter!(AUDIT_EVENTS, "event" => event, "outcome" => outcome).increment(1);
    match event {
        "login.locked" => metrics::counter!(LOCKOUTS).increment(1),
        "token.reuse_detected" => metrics::counter!(REFRESH_REUSE).increment(1),
        _ => {}
    }
}

/// What a readiness check found (see `GET /readyz`).
#[derive(Debug, Clone, Copy)]
pub struct Readiness {
    pub database: bool,
    pub keys: bool,
    /// Whether the ephemeral store is Redis (else in-process, always up).
    pub redis: bool,
    /// Whether Redis answers (when it is configured); without it the node is degraded.
    pub redis_up: bool,
    /// How long the database took to answer the check's ping (when it answered).
    pub database_round_trip: Option<Duration>,
    /// How long Redis took to answer the check's ping (when it is in use and answered).
    pub redis_round_trip: Option<Duration>,
}

impl Readiness {
    /// Whether the node can serve: the database answers and signing keys are loaded. A
    /// node without Redis still serves (degraded, on per-node state).
    pub fn ready(&self) -> bool {
        self.database && self.keys
    }

    /// Ready, but Redis is unreachable: shared short-lived state is per node for now.
    pub fn degraded(&self) -> bool {
        self.redis && !self.redis_up
    }
}

/// Runs one store check within [`CHECK_TIMEOUT`]: whether it answered, and how long it took.
async fn timed<E>(check: impl std::future::Future<Output = Result<(), E>>) -> (bool, Duration) {
    let started = std::time::Instant::now();
    let answer = tokio::time::timeout(CHECK_TIMEOUT, check).await;
    (matches!(answer, Ok(Ok(()))), started.elapsed())
}

/// Checks what readiness depends on: the database answers and every algorithm has an
/// active signing key; and whether Redis (when configured) answers.
pub async fn check_readiness(state: &AppState) -> Readiness {
    let ((database, database_took), (_, ephemeral_took)) = tokio::join!(
        timed(state.db.ping()),
        // Lets the ephemeral store notice an outage (or the end of one) now.
        timed(state.ephemeral.ping()),
    );
    let now = state.clock.now();
    let keys = state.keys.snapshot();
    let redis = state.ephemeral.kind() == "redis";
    let redis_up = !state.ephemeral.degraded();
    Readiness {
        database,
        database_round_trip: database.then_some(database_took),
        redis_round_trip: (redis && redis_up).then_some(ephemeral_took),
        keys: ALGORITHMS
            .iter()
            .all(|alg| keys.iter().any(|k| k.alg == *alg && k.is_active(now))),
        redis,
        redis_up,
    }
}

/// Sets `tessera_ready` and, when Redis is the ephemeral store, `tessera_redis_up`; observes
/// the round trips the check measured.
pub fn record_readiness(readiness: &Readiness) {
    metrics::gauge!(READY).set(f64::from(u8::from(readiness.ready())));
    if readiness.redis {
        metrics::gauge!(REDIS_UP).set(f64::from(u8::from(readiness.redis_up)));
    }
    if let Some(elapsed) = readiness.database_round_trip {
        metrics::histogram!(STORE_LATENCY, "store" => "database").record(elapsed.as_secs_f64());
    }
    if let Some(elapsed) = readiness.redis_round_trip {
        metrics::histogram!(STORE_LATENCY, "store" => "redis").record(elapsed.as_secs_f64());
    }
}

/// Refreshes every gauge from the node's stores and key ring: readiness and Redis, the
/// count of alive sessions, the age of each active signing key.
pub async fn refresh_gauges(state: &AppState) {
    let readiness = check_readiness(state).await;
    record_readiness(&readiness);
    let now = state.clock.now();
    match tokio::time::timeout(CHECK_TIMEOUT, state.db.count_alive_sessions(now)).await {
        Ok(Ok(count)) => metrics::gauge!(ACTIVE_SESSIONS).set(count as f64),
        Ok(Err(err)) => tracing::debug!(error = %err, "cannot count alive sessions"),
        Err(_) => tracing::debug!("counting alive sessions timed out"),
    }
    for alg in ALGORITHMS {
        if let Some(key) = state.keys.signing_key(alg) {
            let age = now.saturating_sub(key.created_at).max(0);
            metrics::gauge!(SIGNING_KEY_AGE, "alg" => alg_name(alg)).set(age as f64);
        }
    }
}

/// Refreshes the gauges now and every `metrics.refresh_secs`, for as long as the node runs.
pub async fn refresh_gauges_periodically(state: AppState) {
    let mut interval = tokio::time::interval(Duration::from_secs(state.config.metrics.refresh_secs));
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        interval.tick().await;
        refresh_gauges(&state).await;
        if let Some(handle) = handle() {
            handle.run_upkeep();
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    /// Crate names that look like metric names (`log.level = "info,tessera_idp=debug"`).
    const CRATES: &[&str] = &[
        "tessera_idp",
        "tessera_store",
        "tessera_proto",
        "tessera_verify",
        "tessera_gateway",
        "tessera_testkit",
    ];

    /// Metric names (`tessera_…`, the gateway's included) in `text`, with histogram
    /// suffixes removed.
    fn metric_names(text: &str) -> BTreeSet<String> {
        let bytes = text.as_bytes();
        let is_word = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
        let mut names = BTreeSet::new();
        let mut start = 0;
        while start < bytes.len() {
            let rest = &bytes[start..];
            let at_word_start = start == 0 || !is_word(bytes[start - 1]);
            if at_word_start && rest.starts_with(b"tessera_") {
                let len = rest.iter().take_while(|b| is_word(**b)).count();
                // ASCII from `start` (a `t`) for `len` bytes: char boundaries.
                let name = &text[start..start + len];
                let base = ["_bucket", "_sum", "_count"]
                    .iter()
                    .find_map(|suffix| {
                        name.strip_suffix(suffix)
                            .filter(|base| METRICS.iter().any(|m| m.0 == *base && m.1 == Kind::Histogram))
                    })
                    .unwrap_or(name);
                if !CRATES.contains(&base) {
                    names.insert(base.to_owned());
                }
                start += len;
            } else {
                start += 1;
            }
        }
        names
    }

    fn is_ours(name: &str) -> bool {
        METRICS.iter().any(|m| m.0 == name)
    }

    /// Whether the gateway crate emits `name` (it is another process with its own registry
    /// and tests): its source quotes every metric name it registers.
    fn gateway_emits(name: &str) -> bool {
        fn sources(dir: &std::path::Path, out: &mut String) {
            for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
                let path = entry.path();
                if path.is_dir() {
                    sources(&path, out);
                } else if path.extension().is_some_and(|e| e == "rs") {
                    out.push_str(&std::fs::read_to_string(&path).unwrap_or_default());
                }
            }
        }
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../tessera-gateway/src");
        let mut text = String::new();
        sources(&dir, &mut text);
        if text.is_empty() {
            // No gateway crate in this tree: accept its documented names.
            return name.starts_with("tessera_gateway_");
        }
        text.contains(&format!("\"{name}\""))
    }

    fn is_emitted(name: &str) -> bool {
        is_ours(name) || (name.starts_with("tessera_gateway_") && gateway_emits(name))
    }

    #[test]
    fn names_are_prefixed_and_labels_are_bounded() {
        for &(name, _, labels, help) in METRICS {
            assert!(name.starts_with("tessera_"), "{name}");
            assert!(!help.is_empty());
            for label in labels {
                assert!(
                    [
                        "route",
                        "method",
                        "status",
                        "outcome",
                        "grant_type",
                        "store",
                        "alg",
                        "event",
                        "kind"
                    ]
                    .contains(label),
                    "{name}: label {label} is not one of the bounded labels"
                );
            }
        }
    }

    #[test]
    fn the_alert_rules_and_the_dashboard_use_only_emitted_metrics() {
        let rules = include_str!("../../../deploy/observability/prometheus-alerts.yml");
        let dashboard = include_str!("../../../deploy/observability/grafana-dashboard.json");
        let parsed: serde_json::Value = serde_json::from_str(dashboard).unwrap();
        assert!(parsed["panels"].as_array().is_some_and(|p| !p.is_empty()));
        for (file, text) in [
            ("prometheus-alerts.yml", rules),
            ("grafana-dashboard.json", dashboard),
        ] {
            let names = metric_names(text);
            assert!(!names.is_empty(), "{file} names no metric");
            for name in names {
                assert!(is_emitted(&name), "{file} uses {name}, which nothing emits");
            }
        }
        // Each alert the issue asks for is there.
        for metric in [LOGINS, REFRESH_REUSE, READY, REDIS_UP, SIGNING_KEY_AGE] {
            assert!(rules.contains(metric), "no alert on {metric}");
        }
        assert!(
            rules.contains("tessera_gateway_jwks_age_seconds"),
            "no alert on gateways' key sets"
        );
    }

    #[test]
    fn every_metric_is_documented() {
        let docs = include_str!("../../../docs/operations.md");
        for &(name, _, labels, _) in METRICS {
            assert!(
                docs.contains(&format!("`{name}`")),
                "docs/operations.md lacks `{name}`"
            );
            for label in labels {
                assert!(
                    docs.contains(&format!("`{label}`")),
                    "docs/operations.md lacks label `{label}`"
                );
            }
        }
        for name in metric_names(docs) {
            assert!(
                is_emitted(&name),
                "docs/operations.md names {name}, which nothing emits"
            );
        }
    }
}
