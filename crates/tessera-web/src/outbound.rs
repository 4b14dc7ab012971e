//! The domain's outbound HTTP port ([`tessera_idp::outbound::Outbound`]) on reqwest:
//! rustls, no redirects followed, the request's own timeout, and errors without the URL.
//!
//! Fetches of URLs that clients registered ([`Outbound::get`]) go through clients of their
//! own: no proxy, and a resolver that drops every address the request's
//! [`AddressPolicy`] refuses, so the connection is made only to an address that was
//! checked (a host name that resolves to 169.254.169.254 or 10.0.0.1 gets no connection).
//!
//! A response body is read chunk by chunk up to the request's limit, never further.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use async_trait::async_trait;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use reqwest::header::{HeaderName, HeaderValue, CONTENT_TYPE};
use tessera_idp::outbound::{Exchange, Fetched, Get, Outbound, OutboundError, Post};
use tessera_proto::net::AddressPolicy;

/// Sends outbound requests over pooled clients.
#[derive(Debug, Clone)]
pub struct HttpClient {
    client: reqwest::Client,
    /// For [`Outbound::get`]: `[strict, loopback allowed]`.
    guarded: [reqwest::Client; 2],
}

impl HttpClient {
    pub fn new() -> Result<HttpClient, OutboundError> {
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|err| OutboundError(err.without_url().to_string()))?;
        let guarded = |policy: AddressPolicy| {
            reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .no_proxy()
                .dns_resolver(Arc::new(GuardedResolver(policy)))
                .build()
                .map_err(|err| OutboundError(err.without_url().to_string()))
        };
        Ok(HttpClient {
            client,
            guarded: [
                guarded(AddressPolicy {
                    allow_loopback: false,
                })?,
                guarded(AddressPolicy { allow_loopback: true })?,
            ],
        })
    }
}

/// Resolves with the system resolver and keeps only the addresses the policy allows.
#[derive(Debug)]
struct GuardedResolver(AddressPolicy);

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let policy = self.0;
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let resolved = tokio::net::lookup_host((host.as_str(), 0)).await?;
            let allowed: Vec<SocketAddr> = resolved.filter(|addr| policy.allows(addr.ip())).collect();
            if allowed.is_empty() {
                return Err(Box::new(OutboundError(
                    "the host resolves to no address the provider may connect to".to_owned(),
                )) as Box<dyn std::error::Error + Send + Sync>);
            }
            let addrs: Addrs = Box::new(allowed.into_iter());
            Ok(addrs)
        })
    }
}

fn refused_address() -> OutboundError {
    OutboundError("the address is one the provider may not connect to".to_owned())
}

#[async_trait]
impl Outbound for HttpClient {
    async fn post(&self, post: Post) -> Result<u16, OutboundError> {
        let mut request = self
            .client
            .post(&post.url)
            .timeout(post.timeout)
            .header(CONTENT_TYPE, post.content_type)
            .body(post.body);
        for (name, value) in post.headers {
            let value = HeaderValue::from_str(&value)
                .map_err(|_| OutboundError(format!("the value of header {name} is not allowed")))?;
            request = request.header(HeaderName::from_static(name), value);
        }
        match request.send().await {
            Ok(response) => Ok(response.status().as_u16()),
            Err(err) => Err(OutboundError(err.without_url().to_string())),
        }
    }

    async fn get(&self, get: Get) -> Result<Fetched, OutboundError> {
        let url = url::Url::parse(&get.url).map_err(|_| OutboundError("not a URL".to_owned()))?;
        if !matches!(url.scheme(), "https" | "http") {
            return Err(OutboundError("only http(s) URLs are fetched".to_owned()));
        }
        // An address literal is connected to without resolving: check it here.
        let literal = match url.host() {
            Some(url::Host::Ipv4(ip)) => Some(IpAddr::V4(ip)),
            Some(url::Host::Ipv6(ip)) => Some(IpAddr::V6(ip)),
            Some(url::Host::Domain(_)) => None,
            None => return Err(OutboundError("the URL has no host".to_owned())),
        };
        if literal.is_some_and(|ip| !get.addresses.allows(ip)) {
            return Err(refused_address());
        }
        let client = &self.guarded[usize::from(get.addresses.allow_loopback)];
        let exchange = async {
            let mut response = client
                .get(url)
                .timeout(get.timeout)
                .send()
                .await
                .map_err(|err| OutboundError(err.without_url().to_string()))?;
            let status = response.status().as_u16();
            let too_long = || OutboundError(format!("the body is longer than {} bytes", get.max_bytes));
            let body = read_limited(&mut response, get.max_bytes, too_long).await?;
            Ok(Fetched { status, body })
        };
        tokio::time::timeout(get.timeout, exchange)
            .await
            .map_err(|_| OutboundError("the fetch timed out".to_owned()))?
    }

    async fn exchange(&self, exchange: Exchange) -> Result<axum::http::Response<Vec<u8>>, OutboundError> {
        let failed = |err: reqwest::Error| OutboundError(err.without_url().to_string());
        let (parts, body) = exchange.request.into_parts();
        let mut request = self
            .client
            .request(parts.method, parts.uri.to_string())
            .timeout(exchange.timeout)
            .body(body);
        for (name, value) in &parts.headers {
            request = request.header(name, value);
        }
        let mut response = request.send().await.map_err(failed)?;
        let mut answer = axum::http::Response::builder().status(response.status());
        for (name, value) in response.headers() {
            answer = answer.header(name, value);
        }
        let too_long = || OutboundError("the response is larger than allowed".to_owned());
        let body = read_limited(&mut response, exchange.max_response_bytes, too_long).await?;
        answer
            .body(body)
            .map_err(|err| OutboundError(format!("unusable response: {err}")))
    }
}

/// The body of `response`, refused with `too_long()` as soon as it would exceed `max_bytes`:
/// by its announced length before anything is read, else chunk by chunk.
async fn read_limited(
    response: &mut reqwest::Response,
    max_bytes: usize,
    too_long: impl Fn() -> OutboundError,
) -> Result<Vec<u8>, OutboundError> {
    if response
        .content_length()
        .is_some_and(|length| length > max_bytes as u64)
    {
        return Err(too_long());
    }
    let mut body = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|err| OutboundError(err.without_url().to_string()))?
    {
        if body.len() + chunk.len() > max_bytes {
            return Err(too_long());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}
