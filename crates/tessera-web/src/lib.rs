//! The identity provider's web surface: the router and its middleware, the handlers of the
//! OAuth/OIDC endpoints, the first-party JSON API and the admin API, the hosted pages, the
//! OpenAPI document, CORS, request context extraction, error rendering — and the HTTP
//! server that serves a started [`Node`] with a graceful drain.
//!
//! Everything a request *means* is decided in the domain crate (`tessera-idp`); a handler
//! here parses the request, calls one service of [`AppState`], and renders the answer.
//! This crate also supplies the domain's outbound HTTP client ([`outbound::HttpClient`]).
//! See docs/architecture.md for what may import what.

pub mod error;
pub mod http;
mod metrics;
pub mod outbound;
pub mod pages;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tessera_idp::clock::{Clock, SystemClock};
use tessera_idp::state::AppState;
use tessera_idp::{Config, Node, StartError};
use tokio::net::TcpListener;

pub use http::router;

/// Starts a node on the system clock, with [`outbound::HttpClient`] for its outbound HTTP.
pub async fn start(config: Config) -> Result<Node, StartError> {
    start_with_clock(config, Arc::new(SystemClock)).await
}

/// Starts a node whose notion of time is `clock` (tests move it by hand).
pub async fn start_with_clock(config: Config, clock: Arc<dyn Clock>) -> Result<Node, StartError> {
    let outbound = outbound::HttpClient::new().map_err(|e| StartError::Outbound(e.to_string()))?;
    Node::start_with_clock(config, clock, Arc::new(outbound)).await
}

/// Binds the node's configured listen address.
pub async fn bind(node: &Node) -> Result<TcpListener, StartError> {
    let addr = node.state().config.listen;
    TcpListener::bind(addr).await.map_err(|e| StartError::Bind {
        addr,
        reason: e.to_string(),
    })
}

/// Serves `node` on `listener` until `shutdown` resolves, then stops accepting, lets
/// in-flight requests finish for at most `http.shutdown_grace_secs`, and stops the node.
pub async fn serve(
    node: Node,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let state: AppState = node.state().clone();
    if let Some(reason) = state.mfa.passkeys_unavailable() {
        tracing::info!("passkeys are off: {reason}");
    }
    let grace = Duration::from_secs(state.config.http.shutdown_grace_secs);
    let (stopping_tx, mut stopping_rx) = tokio::sync::watch::channel(false);
    let app = router(state).into_make_service_with_connect_info::<SocketAddr>();
    let server = axum::serve(listener, app).with_graceful_shutdown(async move {
        shutdown.await;
        tracing::info!("shutting down: draining in-flight requests");
        let _ = stopping_tx.send(true);
    });
    let deadline = async move {
        let _ = stopping_rx.wait_for(|stopping| *stopping).await;
        tokio::time::sleep(grace).await;
    };
    let result = tokio::select! {
        result = server => result,
        () = deadline => {
            tracing::warn!(grace_secs = grace.as_secs(), "in-flight requests did not finish within the grace period");
            Ok(())
        }
    };
    node.stop().await;
    result
}
