//! The route table: longest-prefix matching, round-robin over upstreams with passive
//! health, and the per-route policies (authorization, rate limits, CORS).

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use crate::config::{normalize_prefix, parse_upstream, RouteConfig};
use crate::cors::CorsPolicy;
use crate::metrics::{Metrics, RouteMetrics};
use crate::ratelimit::FixedWindow;

/// Milliseconds since the first call, on the monotonic clock (for health deadlines).
/// Whether `path` is `prefix` or lies below it, segment-wise (`prefix` normalised, as
/// routes hold it: `/`, or no trailing `/`).
pub fn prefix_matches(prefix: &str, path: &str) -> bool {
    if prefix == "/" {
        return true;
    }
    match path.strip_prefix(prefix) {
        Some(rest) => rest.is_empty() || rest.starts_with('/'),
        None => false,
    }
}

fn now_ms() -> u64 {
    static START: OnceLock<Instant> = OnceLock::new();
    let start = START.get_or_init(Instant::now);
    u64::try_from(start.elapsed().as_millis()).unwrap_or(u64::MAX)
}

/// One upstream instance of a route.
pub(crate) struct Upstream {
    /// As configured (for logs and the health metric).
    pub url: String,
    /// `host:port`, also sent as `Host`.
    pub authority: String,
    /// Base path without a trailing `/`.
    pub base_path: String,
    /// Skipped until this instant (`now_ms`); 0 when healthy.
    unhealthy_until: AtomicU64,
}

impl Upstream {
    fn healthy(&self, now: u64) -> bool {
        self.unhealthy_until.load(Ordering::Relaxed) <= now
    }

    /// Whether the upstream is currently considered healthy.
    pub fn is_healthy(&self) -> bool {
        self.healthy(now_ms())
    }
}

/// A route, ready to serve.
pub(crate) struct Route {
    pub name: String,
    host: Option<String>,
    prefix: String,
    pub upstreams: Vec<Upstream>,
    next: AtomicUsize,
    pub public: bool,
    pub scopes: Vec<String>,
    pub roles: Vec<String>,
    pub permissions: Vec<String>,
    pub any_permission: Vec<String>,
    pub acr_values: Vec<String>,
    strip_prefix: bool,
    pub timeout: Duration,
    unhealthy_for: Duration,
    /// `false`: verify every token in full.
    pub auth_cache: bool,
    /// Accepts `X-API-Key` besides Bearer tokens.
    pub api_keys: bool,
    pub per_ip: Option<FixedWindow>,
    pub per_subject: Option<FixedWindow>,
    pub per_key: Option<FixedWindow>,
    pub cors: Option<CorsPolicy>,
    pub metrics: RouteMetrics,
}

impl Route {
    fn new(config: &RouteConfig, metrics: &Metrics) -> Result<Route, String> {
        let name = config.display_name();
        let upstreams = config
            .upstreams
            .iter()
            .map(|text| {
                parse_upstream(text).map(|url| Upstream {
                    url: text.clone(),
                    authority: url.authority,
                    base_path: url.base_path,
                    unhealthy_until: AtomicU64::new(0),
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let limits = config.rate_limit.as_ref();
        let window = limits.map_or(60, |l| l.window_secs);
        Ok(Route {
            metrics: metrics.route(&name),
            name,
            host: config.host.as_deref().map(str::to_ascii_lowercase),
            prefix: normalize_prefix(&config.path_prefix),
            upstreams,
            next: AtomicUsize::new(0),
            public: config.public,
            scopes: config.scopes.clone(),
            roles: config.roles.clone(),
            permissions: config.permissions.clone(),
            any_permission: config.any_permission.clone(),
            acr_values: config.acr_values.clone(),
            strip_prefix: config.strip_prefix,
            timeout: Duration::from_secs(config.timeout_secs),
            unhealthy_for: Duration::from_secs(config.unhealthy_secs),
            auth_cache: config.auth_cache,
            api_keys: config.api_keys,
            per_ip: limits.and_then(|l| l.per_ip).map(|n| FixedWindow::new(n, window)),
            per_subject: limits
                .and_then(|l| l.per_subject)
                .map(|n| FixedWindow::new(n, window)),
            per_key: limits
                .and_then(|l| l.per_key)
                .map(|n| FixedWindow::new(n, window)),
            cors: config.cors.as_ref().map(CorsPolicy::new),
        })
    }

    /// Whether `path` is the prefix or lies below it, segment-wise: `/api` matches `/api`
    /// and `/api/x`, not `/apix`.
    fn matches_path(&self, path: &str) -> bool {
        prefix_matches(&self.prefix, path)
    }

    /// The path to request from the upstream (its base path, then the request's path with
    /// the prefix removed when `strip_prefix`).
    pub fn upstream_path(&self, upstream: &Upstream, path: &str) -> String {
        let rest = if self.strip_prefix && self.prefix != "/" {
            path.get(self.prefix.len()..).unwrap_or("")
        } else {
            path
        };
        let rest = if rest.is_empty() { "/" } else { rest };
        format!("{}{rest}", upstream.base_path)
    }

    /// The next upstream round-robin, skipping unhealthy ones and those in `tried`. When
    /// every untried upstream is unhealthy, the next untried one is used anyway (better a
    /// try than a certain failure). `None` when all were tried.
    pub fn pick(&self, tried: &[usize]) -> Option<usize> {
        let count = self.upstreams.len();
        let start = self.next.fetch_add(1, Ordering::Relaxed);
        let now = now_ms();
        let candidates = (0..count)
            .map(|i| (start.wrapping_add(i)) % count)
            .filter(|i| !tried.contains(i));
        let mut fallback = None;
        for index in candidates {
            if self.upstreams[index].healthy(now) {
                return Some(index);
            }
            fallback.get_or_insert(index);
        }
        fallback
    }

    /// Passive health: skip `index` for `unhealthy_secs`.
    pub fn mark_unhealthy(&self, index: usize, why: &str) {
        let Some(upstream) = self.upstreams.get(index) else {
            return;
        };
        if self.unhealthy_for.is_zero() {
            return;
        }
        let now = now_ms();
        let until = now.saturating_add(u64::try_from(self.unhealthy_for.as_millis()).unwrap_or(u64::MAX));
        let before = upstream.unhealthy_until.swap(until, Ordering::Relaxed);
        if before <= now {
            tracing::warn!(
                route = %self.name,
                upstream = %upstream.url,
                reason = why,
                skip_secs = self.unhealthy_for.as_secs(),
                "upstream marked unhealthy"
            );
        }
    }
}

/// Every route, in matching order.
pub(crate) struct RouteTable {
    routes: Vec<Route>,
}

impl RouteTable {
    pub fn new(configs: &[RouteConfig], metrics: &Metrics) -> Result<RouteTable, String> {
        let mut routes = configs
            .iter()
            .map(|c| Route::new(c, metrics))
            .collect::<Result<Vec<_>, _>>()?;
        // Longest prefix first; at equal length a route for a host before one for any host.
        routes.sort_by(|a, b| {
            b.prefix
                .len()
                .cmp(&a.prefix.len())
                .then_with(|| b.host.is_some().cmp(&a.host.is_some()))
        });
        Ok(RouteTable { routes })
    }

    /// The route for `host` (lowercase, no port) and `path`.
    pub fn find(&self, host: Option<&str>, path: &str) -> Option<&Route> {
        self.routes.iter().find(|route| {
            let host_ok = match &route.host {
                None => true,
                Some(wanted) => host == Some(wanted.as_str()),
            };
            host_ok && route.matches_path(path)
        })
    }

    pub fn iter(&self) -> impl Iterator<Item = &Route> {
        self.routes.iter()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;

    fn table(routes: &[(&str, Option<&str>, bool)]) -> RouteTable {
        let configs: Vec<RouteConfig> = routes
            .iter()
            .map(|(prefix, host, strip)| {
                let mut route = RouteConfig::new(prefix, &["http://127.0.0.1:1/base"]);
                route.host = host.map(str::to_owned);
                route.strip_prefix = *strip;
                route.name = Some(format!("{}{prefix}", host.unwrap_or("")));
                route
            })
            .collect();
        RouteTable::new(&configs, &Metrics::new()).unwrap()
    }

    #[test]
    fn longest_prefix_wins_segment_wise_and_host_routes_first() {
        let t = table(&[
            ("/", None, false),
            ("/api", None, false),
            ("/api/admin/", None, false),
            ("/api", Some("partner.example.com"), false),
        ]);
        let name = |host: Option<&str>, path: &str| t.find(host, path).map(|r| r.name.clone());
        assert_eq!(name(None, "/api/x").as_deref(), Some("/api"));
        assert_eq!(name(None, "/api").as_deref(), Some("/api"));
        assert_eq!(name(None, "/apix").as_deref(), Some("/"));
        assert_eq!(name(None, "/api/admin").as_deref(), Some("/api/admin/"));
        assert_eq!(name(None, "/api/admin/users").as_deref(), Some("/api/admin/"));
        assert_eq!(name(None, "/api/administrators").as_deref(), Some("/api"));
        assert_eq!(
            name(Some("partner.example.com"), "/api/x").as_deref(),
            Some("partner.example.com/api")
        );
        assert_eq!(name(Some("other.example.com"), "/api/x").as_deref(), Some("/api"));
        let only = table(&[("/api", None, false)]);
        assert!(only.find(None, "/other").is_none());
    }

    #[test]
    fn upstream_paths() {
        let t = table(&[("/orders", None, true), ("/keep", None, false)]);
        let strip = t.find(None, "/orders/1").unwrap();
        let up = &strip.upstreams[0];
        assert_eq!(strip.upstream_path(up, "/orders/1"), "/base/1");
        assert_eq!(strip.upstream_path(up, "/orders"), "/base/");
        let keep = t.find(None, "/keep/1").unwrap();
        assert_eq!(keep.upstream_path(&keep.upstreams[0], "/keep/1"), "/base/keep/1");
    }

    #[test]
    fn round_robin_skips_unhealthy_upstreams() {
        let mut config = RouteConfig::new(
            "/",
            &["http://127.0.0.1:1", "http://127.0.0.1:2", "http://127.0.0.1:3"],
        );
        config.unhealthy_secs = 60;
        let route = Route::new(&config, &Metrics::new()).unwrap();
        let picks: Vec<usize> = (0..6).map(|_| route.pick(&[]).unwrap()).collect();
        assert_eq!(picks, vec![0, 1, 2, 0, 1, 2]);
        route.mark_unhealthy(1, "test");
        let picks: Vec<usize> = (0..4).map(|_| route.pick(&[]).unwrap()).collect();
        assert!(!picks.contains(&1), "{picks:?}");
        assert_eq!(
            route.pick(&[0, 2]),
            Some(1),
            "unhealthy is still better than nothing"
        );
        assert_eq!(route.pick(&[0, 1, 2]), None);
    }
}
