//! CORS: browser apps call the token, userinfo, revocation and introspection endpoints
//! from the origins their client registered (`allowed_cors_origins`); discovery and JWKS are
//! public documents any origin may read. Credentials (cookies) are never allowed
//! cross-origin, so no answer is ever `*` together with credentials.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::http::{header, HeaderName, HeaderValue, Method};
use tessera_store::durable::ClientStore;
use tower_http::cors::{AllowOrigin, Any, CorsLayer};

/// How long the set of registered origins is cached.
const CACHE_FOR: Duration = Duration::from_secs(30);

/// For `/.well-known/*`: any origin, GET only, no credentials.
pub fn public() -> CorsLayer {
    CorsLayer::new()
        .allow_origin(Any)
        .allow_methods([Method::GET])
        .max_age(Duration::from_secs(3600))
}

/// For the client-facing endpoints: the origins registered by any client.
pub fn registered(clients: Arc<dyn ClientStore>) -> CorsLayer {
    let origins = Arc::new(RegisteredOrigins {
        clients,
        cache: Mutex::new(None),
    });
    CorsLayer::new()
        .allow_origin(AllowOrigin::async_predicate(
            move |origin: HeaderValue, _parts| {
                let origins = origins.clone();
                async move { origins.allows(&origin).await }
            },
        ))
        .allow_methods([Method::GET, Method::POST])
        // DPoP (RFC 9449) from a browser: the proof header in, the nonce and challenge out.
        .allow_headers([
            header::AUTHORIZATION,
            header::CONTENT_TYPE,
            HeaderName::from_static(tessera_proto::dpop::HEADER),
        ])
        .expose_headers([
            HeaderName::from_static(tessera_proto::dpop::NONCE_HEADER),
            header::WWW_AUTHENTICATE,
        ])
        .max_age(Duration::from_secs(600))
}

struct RegisteredOrigins {
    clients: Arc<dyn ClientStore>,
    cache: Mutex<Option<(Instant, Arc<HashSet<String>>)>>,
}

impl RegisteredOrigins {
    async fn allows(&self, origin: &HeaderValue) -> bool {
        let Ok(origin) = origin.to_str() else { return false };
        let cached = self.cache.lock().ok().and_then(|guard| {
            guard
                .as_ref()
                .filter(|(at, _)| at.elapsed() < CACHE_FOR)
                .map(|(_, set)| set.clone())
        });
        let set = match cached {
            Some(set) => set,
            None => {
                let set: HashSet<String> = match self.clients.clients().await {
                    Ok(clients) => clients.into_iter().flat_map(|c| c.allowed_cors_origins).collect(),
                    Err(err) => {
                        tracing::warn!(error = %err, "cannot load CORS origins");
                        return false;
                    }
                };
                let set = Arc::new(set);
                if let Ok(mut guard) = self.cache.lock() {
                    *guard = Some((Instant::now(), set.clone()));
                }
                set
            }
        };
        set.contains(origin)
    }
}
