//! The listener: HTTP/1.1 and cleartext HTTP/2 (prior knowledge) on one port, one task
//! per connection, graceful shutdown.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hyper::service::service_fn;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;

use crate::auth::Auth;
use crate::config::{Cidr, GatewayConfig};
use crate::metrics::Metrics;
use crate::proxy::{self, Shared};
use crate::routes::RouteTable;

/// Time allowed for connecting to an upstream (within the route's timeout).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Idle upstream connections are closed after this.
const POOL_IDLE: Duration = Duration::from_secs(90);
/// A client must send its request headers within this.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);

/// Why the gateway could not start or stopped.
#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    #[error("invalid route: {0}")]
    Route(String),
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// A gateway bound to its address, ready to serve.
pub struct Gateway {
    listener: TcpListener,
    shared: Arc<Shared>,
    grace: Duration,
}

impl Gateway {
    /// Binds `config.listen` and prepares everything. The identity provider is asked for
    /// its discovery document and key set now; if it cannot be reached the gateway still
    /// starts, keeps trying in the background, and answers 503 on protected routes (and on
    /// `/readyz`) until it succeeds.
    pub async fn bind(config: GatewayConfig) -> Result<Gateway, GatewayError> {
        config.validate()?;
        let listener = TcpListener::bind(config.listen)
            .await
            .map_err(|source| GatewayError::Bind {
                addr: config.listen,
                source,
            })?;
        let metrics = Arc::new(Metrics::with_api_keys(config.api_keys.metric_keys.clone()));
        let routes = RouteTable::new(&config.routes, &metrics).map_err(GatewayError::Route)?;
        let trusted = config
            .trusted_proxies
            .iter()
            .map(|entry| Cidr::parse(entry))
            .collect::<Result<Vec<_>, _>>()
            .map_err(GatewayError::Route)?;
        let auth = Auth::start(&config).await;
        let shared = Arc::new(Shared {
            routes,
            auth,
            client: upstream_client(),
            unmatched: metrics.route("-"),
            metrics,
            trusted,
            admin_prefix: config.admin_prefix.clone(),
            poll_interval: Duration::from_secs(config.revocation_poll_secs),
        });
        Ok(Gateway {
            listener,
            shared,
            grace: Duration::from_secs(config.shutdown_grace_secs),
        })
    }

    /// The address actually bound (useful with port 0).
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Serves until `shutdown` completes, then stops accepting and waits up to
    /// `shutdown_grace_secs` for requests in flight.
    pub async fn serve(self, shutdown: impl Future<Output = ()> + Send) -> Result<(), GatewayError> {
        let Gateway {
            listener,
            shared,
            grace,
        } = self;
        let upkeep = tokio::spawn(upkeep(Arc::downgrade(&shared.metrics)));
        let mut builder = auto::Builder::new(TokioExecutor::new());
        builder
            .http1()
            .timer(TokioTimer::new())
            .header_read_timeout(HEADER_READ_TIMEOUT)
            .keep_alive(true);
        builder.http2().timer(TokioTimer::new());
        let graceful = GracefulShutdown::new();
        tokio::pin!(shutdown);
        loop {
            let (stream, peer) = tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok(accepted) => accepted,
                    Err(err) => {
                        // Out of file descriptors and the like: wait a little, go on.
                        tracing::warn!(error = %err, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                },
                () = &mut shutdown => break,
            };
            let _ = stream.set_nodelay(true);
            let shared = shared.clone();
            let service = service_fn(move |request| {
                let shared = shared.clone();
                async move { Ok::<_, Infallible>(proxy::handle(shared, request, peer).await) }
            });
            let connection = builder
                .serve_connection(TokioIo::new(stream), service)
                .into_owned();
            let connection = graceful.watch(connection);
            tokio::spawn(async move {
                if let Err(err) = connection.await {
                    tracing::debug!(error = %err, %peer, "connection ended with an error");
                }
            });
        }
        drop(listener);
        upkeep.abort();
        tracing::info!(
            grace_secs = grace.as_secs(),
            "shutting down: waiting for requests in flight"
        );
        tokio::select! {
            () = graceful.shutdown() => {}
            () = tokio::time::sleep(grace) => {
                tracing::warn!("requests still in flight after the grace period; stopping anyway");
            }
        }
        Ok(())
    }
}

/// The pooled upstream client: HTTP/1.1 with keep-alive, no TLS (upstreams sit on the
/// private network).
fn upstream_client() -> proxy::UpstreamClient {
    let mut connector = HttpConnector::new();
    connector.set_nodelay(true);
    connector.set_keepalive(Some(Duration::from_secs(60)));
    connector.set_connect_timeout(Some(CONNECT_TIMEOUT));
    Client::builder(TokioExecutor::new())
        .pool_timer(TokioTimer::new())
        .pool_idle_timeout(POOL_IDLE)
        .build(connector)
}

async fn upkeep(metrics: std::sync::Weak<Metrics>) {
    loop {
        tokio::time::sleep(Duration::from_secs(5)).await;
        let Some(metrics) = metrics.upgrade() else { return };
        metrics.upkeep();
    }
}

/// Binds, logs, and serves until `shutdown` (what `tessera gateway` runs).
pub async fn run(
    config: GatewayConfig,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), GatewayError> {
    let issuer = config.issuer();
    let routes = config.routes.len();
    let gateway = Gateway::bind(config).await?;
    tracing::info!(
        listen = %gateway.local_addr()?,
        %issuer,
        routes,
        "tessera gateway is serving"
    );
    gateway.serve(shutdown).await?;
    tracing::info!("stopped");
    Ok(())
}
