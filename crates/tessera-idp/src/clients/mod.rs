//! Client authentication at the token, revocation and introspection endpoints
//! (RFC 6749 §2.3.1): `client_secret_basic`, `client_secret_post`, or `none` for public
//! clients — exactly one method per request, and the one the client registered.

use std::collections::BTreeMap;

use base64::Engine as _;
use http::{header, HeaderMap};
use tessera_proto::OAuthErrorCode;
use tessera_store::durable::{ClientRecord, ClientStore};

use crate::error::OAuthFailure;
use crate::tokens::opaque::{hashes_equal, random_b64, sha256_b64, CLIENT_SECRET_PREFIX};

/// A new client secret (shown once) and the hash to store.
pub fn new_client_secret() -> (String, String) {
    let secret = format!("{CLIENT_SECRET_PREFIX}{}", random_b64(32));
    let hash = sha256_b64(&secret);
    (secret, hash)
}

/// How a request presented its client.
enum Presented {
    Basic { id: String, secret: String },
    Post { id: String, secret: String },
    IdOnly { id: String },
}

fn invalid_client() -> OAuthFailure {
    OAuthFailure::new(OAuthErrorCode::InvalidClient, "client authentication failed")
}

fn presented(headers: &HeaderMap, form: &BTreeMap<String, String>) -> Result<Presented, OAuthFailure> {
    let mut authorizations = headers.get_all(header::AUTHORIZATION).iter();
    let basic = match (authorizations.next(), authorizations.next()) {
        (None, _) => None,
        (Some(_), Some(_)) => {
            return Err(OAuthFailure::new(
                OAuthErrorCode::InvalidRequest,
                "more than one Authorization header",
            ))
        }
        (Some(value), None) => Some(parse_basic(value.to_str().map_err(|_| invalid_client())?)?),
    };
    let post_id = form.get("client_id");
    let post_secret = form.get("client_secret");
    match (basic, post_id, post_secret) {
        (Some(_), _, Some(_)) => Err(OAuthFailure::new(
            OAuthErrorCode::InvalidRequest,
            "use one client authentication method, not several",
        )),
        (Some((id, _)), Some(form_id), None) if *form_id != id => Err(OAuthFailure::new(
            OAuthErrorCode::InvalidRequest,
            "client_id does not match the authenticated client",
        )),
        (Some((id, secret)), _, None) => Ok(Presented::Basic { id, secret }),
        (None, Some(id), Some(secret)) => Ok(Presented::Post {
            id: id.clone(),
            secret: secret.clone(),
        }),
        (None, Some(id), None) => Ok(Presented::IdOnly { id: id.clone() }),
        (None, None, _) => Err(invalid_client()),
    }
}

/// `Basic base64(urlencode(id) ":" urlencode(secret))` (RFC 6749 §2.3.1).
fn parse_basic(value: &str) -> Result<(String, String), OAuthFailure> {
    let (scheme, encoded) = value.split_once(' ').ok_or_else(invalid_client)?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return Err(invalid_client());
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .map_err(|_| invalid_client())?;
    let decoded = String::from_utf8(decoded).map_err(|_| invalid_client())?;
    let (id, secret) = decoded.split_once(':').ok_or_else(invalid_client)?;
    let unescape = |s: &str| -> Result<String, OAuthFailure> {
        url::form_urlencoded::parse(format!("x={s}").as_bytes())
            .next()
            .map(|(_, v)| v.into_owned())
            .ok_or_else(invalid_client)
    };
    Ok((unescape(id)?, unescape(secret)?))
}

/// Authenticates the client of a request. Public clients (method `none`) are accepted with
/// their `client_id` alone only when `allow_public` is set.
pub async fn authenticate(
    clients: &dyn ClientStore,
    headers: &HeaderMap,
    form: &BTreeMap<String, String>,
    allow_public: bool,
) -> Result<ClientRecord, OAuthFailure> {
    let presented = presented(headers, form)?;
    let (id, secret, method) = match &presented {
        Presented::Basic { id, secret } => (id, Some(secret), "client_secret_basic"),
        Presented::Post { id, secret } => (id, Some(secret), "client_secret_post"),
        Presented::IdOnly { id } => (id, None, "none"),
    };
    if id.is_empty() || id.len() > 255 {
        return Err(invalid_client());
    }
    let client = clients.client(id).await?;
    // Hash even when the client is unknown, so timing does not tell which ids exist.
    let presented_hash = secret.map(|s| sha256_b64(s));
    let Some(client) = client else {
        return Err(invalid_client());
    };
    if client.token_endpoint_auth_method != method {
        return Err(invalid_client().caused_by(format!(
            "client {} registered {} but used {method}",
            client.client_id, client.token_endpoint_auth_method
        )));
    }
    match (presented_hash, client.secret_hash.as_deref()) {
        (Some(given), Some(stored)) if hashes_equal(&given, stored) => Ok(client),
        (None, None) if allow_public => Ok(client),
        (None, None) => Err(OAuthFailure::new(
            OAuthErrorCode::UnauthorizedClient,
            "public clients may not use this endpoint",
        )),
        _ => Err(invalid_client()),
    }
}
