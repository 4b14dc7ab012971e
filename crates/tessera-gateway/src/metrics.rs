//! Prometheus metrics: one recorder per gateway (not the process-global one, so that
//! several gateways in one process — tests — do not mix their numbers), rendered by
//! `/metrics`. Labels are bounded: route names come from the configuration, reasons and
//! kinds are fixed lists.

use std::time::Duration;

use metrics::{Counter, Histogram};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle, PrometheusRecorder};
use tessera_verify::{Status, VerifyError};

pub(crate) const REQUESTS: &str = "tessera_gateway_requests_total";
pub(crate) const DURATION: &str = "tessera_gateway_request_duration_seconds";
pub(crate) const VERIFY_FAILURES: &str = "tessera_gateway_verification_failures_total";
pub(crate) const FORBIDDEN: &str = "tessera_gateway_authorization_failures_total";
pub(crate) const RATE_LIMITED: &str = "tessera_gateway_rate_limited_total";
pub(crate) const UPSTREAM_ERRORS: &str = "tessera_gateway_upstream_errors_total";
pub(crate) const UPSTREAM_HEALTHY: &str = "tessera_gateway_upstream_healthy";
pub(crate) const JWKS_AGE: &str = "tessera_gateway_jwks_age_seconds";
pub(crate) const DENY_LIST_AGE: &str = "tessera_gateway_deny_list_age_seconds";
pub(crate) const KEYS_LOADED: &str = "tessera_gateway_keys_loaded";
pub(crate) const DENY_LIST_ENTRIES: &str = "tessera_gateway_deny_list_entries";
pub(crate) const AUTH_CACHE_ENTRIES: &str = "tessera_gateway_auth_cache_entries";
pub(crate) const API_KEY_REQUESTS: &str = "tessera_gateway_api_key_requests_total";
pub(crate) const API_KEY_CACHE_ENTRIES: &str = "tessera_gateway_api_key_cache_entries";

/// Latency buckets in seconds (the route timeout defaults to 30 s).
const BUCKETS: [f64; 14] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

pub(crate) struct Metrics {
    recorder: PrometheusRecorder,
    handle: PrometheusHandle,
    /// Key ids with a label of their own in [`API_KEY_REQUESTS`] (`api_keys.metric_keys`).
    metric_keys: Vec<String>,
}

/// The handles of one route, registered once.
pub(crate) struct RouteMetrics {
    /// By status class: 1xx … 5xx.
    requests: [Counter; 5],
    duration: Histogram,
    pub upstream_connect: Counter,
    pub upstream_timeout: Counter,
    pub upstream_io: Counter,
    pub upstream_bad_status: Counter,
    pub limited_ip: Counter,
    pub limited_subject: Counter,
    pub limited_key: Counter,
    pub forbidden_scope: Counter,
    pub forbidden_role: Counter,
    pub forbidden_permission: Counter,
    pub forbidden_acr: Counter,
    /// Requests with an API key: per configured key id, and the rest.
    api_keys: Vec<(String, Counter)>,
    api_key_other: Counter,
}

impl RouteMetrics {
    pub fn observe(&self, status: u16, elapsed: Duration) {
        let class = usize::from((status / 100).clamp(1, 5)) - 1;
        if let Some(counter) = self.requests.get(class) {
            counter.increment(1);
        }
        self.duration.record(elapsed.as_secs_f64());
    }

    /// Counts a request authenticated by API key `key_id`: under its own label if it is a
    /// configured one, else `other` (handles registered at start: no lookup per request).
    pub fn api_key_request(&self, key_id: &str) {
        match self.api_keys.iter().find(|(id, _)| id == key_id) {
            Some((_, counter)) => counter.increment(1),
            None => self.api_key_other.increment(1),
        }
    }
}

impl Metrics {
    #[cfg(test)]
    pub fn new() -> Metrics {
        Metrics::with_api_keys(Vec::new())
    }

    /// A recorder whose API-key metric labels these key ids (and `other`).
    pub fn with_api_keys(metric_keys: Vec<String>) -> Metrics {
        // Fails only for an empty bucket list; then a summary is rendered instead.
        let builder = PrometheusBuilder::new()
            .set_buckets_for_metric(Matcher::Full(DURATION.to_owned()), &BUCKETS)
            .unwrap_or_else(|_| PrometheusBuilder::new());
        let recorder = builder.build_recorder();
        let handle = recorder.handle();
        let metrics = Metrics {
            recorder,
            handle,
            metric_keys,
        };
        metrics.describe();
        metrics
    }

    fn describe(&self) {
        self.with(|| {
            metrics::describe_counter!(REQUESTS, "Requests answered, by route and status class.");
            metrics::describe_histogram!(
                DURATION,
                metrics::Unit::Seconds,
                "Time to the response headers, by route."
            );
            metrics::describe_counter!(
                VERIFY_FAILURES,
                "Requests refused because their token was missing or did not verify, by reason."
            );
            metrics::describe_counter!(
                FORBIDDEN,
                "Verified requests refused for a missing scope or role, by route."
            );
            metrics::describe_counter!(RATE_LIMITED, "Requests refused with 429, by route and key.");
            metrics::describe_counter!(
                UPSTREAM_ERRORS,
                "Upstream failures by route and kind: connect, timeout, io, status (502/503/504 answers)."
            );
            metrics::describe_gauge!(
                UPSTREAM_HEALTHY,
                "1 while an upstream is not skipped by passive health."
            );
            metrics::describe_gauge!(JWKS_AGE, "Seconds since the key set was last fetched.");
            metrics::describe_gauge!(
                DENY_LIST_AGE,
                "Seconds since the revocation feed was last polled successfully."
            );
            metrics::describe_gauge!(KEYS_LOADED, "1 once a key set is loaded.");
            metrics::describe_gauge!(DENY_LIST_ENTRIES, "Revoked sessions and tokens held.");
            metrics::describe_gauge!(AUTH_CACHE_ENTRIES, "Entries of the authentication cache.");
            metrics::describe_counter!(
                API_KEY_REQUESTS,
                "Requests authenticated with an API key, by route and key id (configured ids only; others `other`)."
            );
            metrics::describe_gauge!(API_KEY_CACHE_ENTRIES, "API keys held in memory.");
        });
    }

    fn with<T>(&self, f: impl FnOnce() -> T) -> T {
        metrics::with_local_recorder(&self.recorder, f)
    }

    /// Registers the handles of route `name`.
    pub fn route(&self, name: &str) -> RouteMetrics {
        let route = name.to_owned();
        self.with(|| {
            let requests = ["1xx", "2xx", "3xx", "4xx", "5xx"]
                .map(|class| metrics::counter!(REQUESTS, "route" => route.clone(), "status" => class));
            let upstream = |kind: &'static str| metrics::counter!(UPSTREAM_ERRORS, "route" => route.clone(), "kind" => kind);
            let limited = |key: &'static str| metrics::counter!(RATE_LIMITED, "route" => route.clone(), "key" => key);
            let forbidden = |missing: &'static str| metrics::counter!(FORBIDDEN, "route" => route.clone(), "missing" => missing);
            let api_key = |key_id: &str| metrics::counter!(API_KEY_REQUESTS, "route" => route.clone(), "key_id" => key_id.to_owned());
            RouteMetrics {
                requests,
                duration: metrics::histogram!(DURATION, "route" => route.clone()),
                upstream_connect: upstream("connect"),
                upstream_timeout: upstream("timeout"),
                upstream_io: upstream("io"),
                upstream_bad_status: upstream("status"),
                limited_ip: limited("ip"),
                limited_subject: limited("subject"),
                limited_key: limited("api_key"),
                forbidden_scope: forbidden("scope"),
                forbidden_role: forbidden("role"),
                forbidden_permission: forbidden("permission"),
                forbidden_acr: forbidden("acr"),
                api_keys: self.metric_keys.iter().map(|id| (id.clone(), api_key(id))).collect(),
                api_key_other: api_key("other"),
            }
        })
    }

    /// Counts a refused token (`reason` is one of a fixed list).
    pub fn verification_failure(&self, reason: &'static str) {
        self.with(|| metrics::counter!(VERIFY_FAILURES, "reason" => reason).increment(1));
    }

    /// Renders the text exposition, after setting the gauges that are read, not counted.
    pub fn render(
        &self,
        status: Option<&Status>,
        api_keys_cached: Option<usize>,
        upstreams: &[(String, String, bool)],
    ) -> String {
        self.with(|| {
            if let Some(cached) = api_keys_cached {
                metrics::gauge!(API_KEY_CACHE_ENTRIES).set(cached as f64);
            }
            if let Some(status) = status {
                metrics::gauge!(KEYS_LOADED).set(if status.keys_loaded { 1.0 } else { 0.0 });
                if let Some(age) = status.keys_age {
                    metrics::gauge!(JWKS_AGE).set(age.as_secs_f64());
                }
                if let Some(age) = status.deny_list_age {
                    metrics::gauge!(DENY_LIST_AGE).set(age.as_secs_f64());
                }
                metrics::gauge!(DENY_LIST_ENTRIES).set(status.deny_list_entries as f64);
                metrics::gauge!(AUTH_CACHE_ENTRIES).set(status.cache_entries as f64);
            } else {
                metrics::gauge!(KEYS_LOADED).set(0.0);
            }
            for (route, upstream, healthy) in upstreams {
                metrics::gauge!(UPSTREAM_HEALTHY, "route" => route.clone(), "upstream" => upstream.clone())
                    .set(if *healthy { 1.0 } else { 0.0 });
            }
        });
        self.handle.render()
    }

    /// Drains histogram samples into their buckets (run periodically, so memory stays flat
    /// between scrapes).
    pub fn upkeep(&self) {
        self.handle.run_upkeep();
    }
}

/// The metric label of a refused token.
pub(crate) fn verify_reason(err: &VerifyError) -> &'static str {
    match err {
        VerifyError::Malformed => "malformed",
        VerifyError::CriticalHeader => "critical_header",
        VerifyError::Algorithm(_) => "algorithm",
        VerifyError::Type => "type",
        VerifyError::UnknownKey => "unknown_key",
        VerifyError::Signature => "signature",
        VerifyError::Claims(_) => "claims",
        VerifyError::Issuer => "issuer",
        VerifyError::Audience => "audience",
        VerifyError::Expired => "expired",
        VerifyError::NotYetValid => "not_yet_valid",
        VerifyError::Revoked => "revoked",
        VerifyError::Inactive => "inactive",
        VerifyError::AddressNotAllowed => "address_not_allowed",
        VerifyError::Unavailable(_) => "unavailable",
        VerifyError::DpopBound => "dpop_bound",
        VerifyError::NotDpopBound => "not_dpop_bound",
        VerifyError::DpopProof(_) => "dpop_proof",
        _ => "other",
    }
}
