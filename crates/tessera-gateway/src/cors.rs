//! CORS per route (Fetch standard §3.2): preflights answered by the gateway from the route's
//! policy, and the `Access-Control-*` headers of actual responses set by it (an upstream's
//! own are replaced). `*` is never combined with credentials (validated in the config).

use std::collections::HashSet;

use http::header::{
    ACCESS_CONTROL_ALLOW_CREDENTIALS, ACCESS_CONTROL_ALLOW_HEADERS, ACCESS_CONTROL_ALLOW_METHODS,
    ACCESS_CONTROL_ALLOW_ORIGIN, ACCESS_CONTROL_EXPOSE_HEADERS, ACCESS_CONTROL_MAX_AGE,
    ACCESS_CONTROL_REQUEST_HEADERS, ACCESS_CONTROL_REQUEST_METHOD, ORIGIN, VARY,
};
use http::{HeaderMap, HeaderValue, Method};

use crate::config::CorsConfig;

pub(crate) struct CorsPolicy {
    any_origin: bool,
    origins: HashSet<String>,
    methods: Vec<String>,
    headers: HashSet<String>,
    allow_methods: Option<HeaderValue>,
    allow_headers: Option<HeaderValue>,
    expose_headers: Option<HeaderValue>,
    credentials: bool,
    max_age: HeaderValue,
}

/// Why a preflight was refused (the detail of a 403).
pub(crate) enum Refusal {
    Origin,
    Method,
    Headers,
}

impl Refusal {
    pub fn detail(&self) -> &'static str {
        match self {
            Refusal::Origin => "CORS preflight refused: origin not allowed on this route",
            Refusal::Method => "CORS preflight refused: method not allowed on this route",
            Refusal::Headers => "CORS preflight refused: a requested header is not allowed on this route",
        }
    }
}

impl CorsPolicy {
    pub fn new(config: &CorsConfig) -> CorsPolicy {
        let join = |items: &[String]| {
            (!items.is_empty())
                .then(|| HeaderValue::from_str(&items.join(", ")).ok())
                .flatten()
        };
        let headers: Vec<String> = config
            .allow_headers
            .iter()
            .map(|h| h.to_ascii_lowercase())
            .collect();
        CorsPolicy {
            any_origin: config.allow_origins.iter().any(|o| o == "*") && !config.allow_credentials,
            origins: config
                .allow_origins
                .iter()
                .filter(|o| *o != "*")
                .cloned()
                .collect(),
            methods: config.allow_methods.clone(),
            allow_methods: join(&config.allow_methods),
            allow_headers: join(&headers),
            headers: headers.into_iter().collect(),
            expose_headers: join(&config.expose_headers),
            credentials: config.allow_credentials,
            max_age: HeaderValue::from(config.max_age_secs),
        }
    }

    /// Whether this request is a CORS preflight.
    pub fn is_preflight(method: &Method, headers: &HeaderMap) -> bool {
        method == Method::OPTIONS
            && headers.contains_key(ORIGIN)
            && headers.contains_key(ACCESS_CONTROL_REQUEST_METHOD)
    }

    fn origin_allowed(&self, origin: &HeaderValue) -> bool {
        self.any_origin || origin.to_str().is_ok_and(|origin| self.origins.contains(origin))
    }

    /// The headers of the answer to a preflight, or why it is refused.
    pub fn preflight(&self, request: &HeaderMap) -> Result<HeaderMap, (Refusal, HeaderMap)> {
        let mut out = HeaderMap::new();
        out.append(VARY, HeaderValue::from_static("Origin"));
        out.append(VARY, HeaderValue::from_static("Access-Control-Request-Method"));
        out.append(VARY, HeaderValue::from_static("Access-Control-Request-Headers"));
        let Some(origin) = request.get(ORIGIN) else {
            return Err((Refusal::Origin, out));
        };
        if !self.origin_allowed(origin) {
            return Err((Refusal::Origin, out));
        }
        let method_ok = request
            .get(ACCESS_CONTROL_REQUEST_METHOD)
            .and_then(|m| m.to_str().ok())
            .is_some_and(|m| self.methods.iter().any(|allowed| allowed == m));
        if !method_ok {
            return Err((Refusal::Method, out));
        }
        for value in request.get_all(ACCESS_CONTROL_REQUEST_HEADERS) {
            let Ok(list) = value.to_str() else {
                return Err((Refusal::Headers, out));
            };
            let all_allowed = list
                .split(',')
                .map(str::trim)
                .filter(|h| !h.is_empty())
                .all(|h| self.headers.contains(&h.to_ascii_lowercase()));
            if !all_allowed {
                return Err((Refusal::Headers, out));
            }
        }
        self.allow_origin(origin, &mut out);
        if let Some(methods) = &self.allow_methods {
            out.insert(ACCESS_CONTROL_ALLOW_METHODS, methods.clone());
        }
        if let Some(headers) = &self.allow_headers {
            out.insert(ACCESS_CONTROL_ALLOW_HEADERS, headers.clone());
        }
        out.insert(ACCESS_CONTROL_MAX_AGE, self.max_age.clone());
        Ok(out)
    }

    fn allow_origin(&self, origin: &HeaderValue, out: &mut HeaderMap) {
        if self.any_origin {
            out.insert(ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static("*"));
        } else {
            out.insert(ACCESS_CONTROL_ALLOW_ORIGIN, origin.clone());
        }
        if self.credentials {
            out.insert(ACCESS_CONTROL_ALLOW_CREDENTIALS, HeaderValue::from_static("true"));
        }
    }

    /// Sets the CORS headers of an actual (not preflight) response, replacing any the
    /// upstream sent; error answers of the gateway get them too, so a browser can read them.
    pub fn apply(&self, origin: Option<&HeaderValue>, response: &mut HeaderMap) {
        for name in [
            ACCESS_CONTROL_ALLOW_ORIGIN,
            ACCESS_CONTROL_ALLOW_CREDENTIALS,
            ACCESS_CONTROL_EXPOSE_HEADERS,
            ACCESS_CONTROL_ALLOW_METHODS,
            ACCESS_CONTROL_ALLOW_HEADERS,
            ACCESS_CONTROL_MAX_AGE,
        ] {
            response.remove(name);
        }
        if !self.any_origin {
            response.append(VARY, HeaderValue::from_static("Origin"));
        }
        let Some(origin) = origin else { return };
        if !self.origin_allowed(origin) {
            return;
        }
        self.allow_origin(origin, response);
        if let Some(expose) = &self.expose_headers {
            response.insert(ACCESS_CONTROL_EXPOSE_HEADERS, expose.clone());
        }
    }
}
