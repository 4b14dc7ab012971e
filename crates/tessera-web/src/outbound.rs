//! The domain's outbound HTTP port ([`tessera_idp::outbound::Outbound`]) on reqwest:
//! rustls, no redirects followed, the request's own timeout, and errors without the URL.
//! A response body is read chunk by chunk up to the exchange's limit, never further.

use async_trait::async_trait;
use reqwest::header::{HeaderName, HeaderValue, CONTENT_TYPE};
use tessera_idp::outbound::{Exchange, Outbound, OutboundError, Post};

/// Sends outbound requests over one pooled client.
#[derive(Debug, Clone)]
pub struct HttpClient {
    client: reqwest::Client,
}

impl HttpClient {
    pub fn new() -> Result<HttpClient, OutboundError> {
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|err| OutboundError(err.without_url().to_string()))?;
        Ok(HttpClient { client })
    }
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
        if response
            .content_length()
            .is_some_and(|n| n > exchange.max_response_bytes as u64)
        {
            return Err(OutboundError("the response is larger than allowed".to_owned()));
        }
        let mut answer = axum::http::Response::builder().status(response.status());
        for (name, value) in response.headers() {
            answer = answer.header(name, value);
        }
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(failed)? {
            if body.len() + chunk.len() > exchange.max_response_bytes {
                return Err(OutboundError("the response is larger than allowed".to_owned()));
            }
            body.extend_from_slice(&chunk);
        }
        answer
            .body(body)
            .map_err(|err| OutboundError(format!("unusable response: {err}")))
    }
}
