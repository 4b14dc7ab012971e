//! Outbound HTTP: what the provider sends to other systems — back-channel logout tokens to
//! relying parties, abuse signals to the alerts webhook — the documents it fetches from
//! URLs clients registered (a `jwks_uri`), and the exchanges of federated sign-in with
//! upstream identity providers (discovery, keys, tokens, user info). The domain decides what to send
//! and when to retry; the client that sends it is handed to the node at start-up
//! (`tessera-web` has one on reqwest), so this crate carries no HTTP stack of its own.

use std::time::Duration;

use async_trait::async_trait;

/// One POST request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Post {
    pub url: String,
    /// The `Content-Type` of `body`.
    pub content_type: &'static str,
    /// Further headers (names in lower case).
    pub headers: Vec<(&'static str, String)>,
    pub body: Vec<u8>,
    /// The whole exchange gives up after this.
    pub timeout: Duration,
}

impl Post {
    /// `application/x-www-form-urlencoded` of `fields`.
    pub fn form(url: &str, fields: &[(&str, &str)], timeout: Duration) -> Post {
        let body = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(fields)
            .finish();
        Post {
            url: url.to_owned(),
            content_type: "application/x-www-form-urlencoded",
            headers: Vec::new(),
            body: body.into_bytes(),
            timeout,
        }
    }

    /// `application/json` of `value`.
    pub fn json(url: &str, value: &serde_json::Value, timeout: Duration) -> Post {
        Post {
            url: url.to_owned(),
            content_type: "application/json",
            headers: Vec::new(),
            body: value.to_string().into_bytes(),
            timeout,
        }
    }

    pub fn header(mut self, name: &'static str, value: impl Into<String>) -> Post {
        self.headers.push((name, value.into()));
        self
    }
}

/// One GET of a URL a client registered: bounded in time and size, and only to the
/// addresses `addresses` allows (checked on every address the host name resolves to, at
/// connection time, so a DNS answer cannot steer the fetch inside the network).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Get {
    pub url: String,
    /// The whole exchange, body included, gives up after this.
    pub timeout: Duration,
    /// A longer body is refused (not truncated).
    pub max_bytes: usize,
    pub addresses: tessera_proto::net::AddressPolicy,
}

/// The answer to a [`Get`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fetched {
    pub status: u16,
    pub body: Vec<u8>,
}

/// One request of a protocol exchange with another server (an upstream identity
/// provider), of any method: it gives up after `timeout`, and an answer larger than
/// `max_response_bytes` is refused rather than read.
#[derive(Debug)]
pub struct Exchange {
    pub request: http::Request<Vec<u8>>,
    pub timeout: Duration,
    pub max_response_bytes: usize,
}

/// Why a request got no answer. The text never carries the URL (it may hold a secret).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct OutboundError(pub String);

/// Sends outbound requests. Redirects are never followed: a receiver answers itself.
#[async_trait]
pub trait Outbound: Send + Sync {
    /// Sends `post`; the response's status code, whatever it is.
    async fn post(&self, post: Post) -> Result<u16, OutboundError>;

    /// Fetches `get`: its status and body, or an error when the address is not allowed,
    /// the time runs out or the body is longer than allowed.
    async fn get(&self, get: Get) -> Result<Fetched, OutboundError>;

    /// Sends `exchange.request`; the whole response, whatever its status.
    async fn exchange(&self, exchange: Exchange) -> Result<http::Response<Vec<u8>>, OutboundError>;
}

/// The header carrying a webhook body's signature: `sha256=<hex HMAC-SHA256>`.
pub const SIGNATURE_HEADER: &str = "x-tessera-signature";

/// `sha256=` and the lower-case hex HMAC-SHA256 of `body` under `secret`.
pub fn sign(secret: &[u8], body: &[u8]) -> String {
    let key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, secret);
    let tag = aws_lc_rs::hmac::sign(&key, body);
    let hex: String = tag.as_ref().iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256={hex}")
}

/// Whether `status` is a 2xx.
pub fn is_success(status: u16) -> bool {
    (200..300).contains(&status)
}
