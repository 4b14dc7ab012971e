//! Bodies and the gateway's own answers: RFC 9457 problem JSON.

use bytes::Bytes;
use http::header::{CACHE_CONTROL, CONTENT_TYPE};
use http::{HeaderValue, Response, StatusCode};
use http_body_util::{BodyExt, Full};

pub(crate) type BoxError = Box<dyn std::error::Error + Send + Sync>;
/// The body of every response: the upstream's streamed through, or the gateway's own.
pub(crate) type Body = http_body_util::combinators::UnsyncBoxBody<Bytes, BoxError>;

pub(crate) fn full(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into())
        .map_err(|never| match never {})
        .boxed_unsync()
}

pub(crate) fn empty() -> Body {
    full(Bytes::new())
}

/// A problem JSON answer (RFC 9457) with `Cache-Control: no-store`; `extra` members are
/// added to the object.
pub(crate) fn problem(status: StatusCode, detail: &str, extra: &[(&str, &str)]) -> Response<Body> {
    let mut object = serde_json::Map::new();
    object.insert("type".into(), "about:blank".into());
    object.insert(
        "title".into(),
        status.canonical_reason().unwrap_or("Error").into(),
    );
    object.insert("status".into(), status.as_u16().into());
    object.insert("detail".into(), detail.into());
    for (key, value) in extra {
        object.insert((*key).to_owned(), (*value).into());
    }
    let body = serde_json::Value::Object(object).to_string();
    let mut response = Response::new(full(body));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/problem+json"));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// A small JSON answer of the gateway's own endpoints.
pub(crate) fn json(status: StatusCode, value: &serde_json::Value) -> Response<Body> {
    let mut response = Response::new(full(value.to_string()));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
        .headers_mut()
        .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}
