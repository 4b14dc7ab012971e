//! The domain's outbound HTTP port ([`tessera_idp::outbound::Outbound`]) on reqwest:
//! rustls, no redirects followed, the request's own timeout, and errors without the URL.

use async_trait::async_trait;
use reqwest::header::{HeaderName, HeaderValue, CONTENT_TYPE};
use tessera_idp::outbound::{Outbound, OutboundError, Post};

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
}
