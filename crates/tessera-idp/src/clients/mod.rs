//! Client authentication at every endpoint where a client authenticates — token,
//! revocation, introspection, PAR, device authorization (RFC 6749 §2.3): a secret
//! (`client_secret_basic`, `client_secret_post`), a signed JWT assertion (`private_key_jwt`,
//! `client_secret_jwt`; RFC 7523 §2.2, OpenID Connect Core §9, in [`assertion`]), or the
//! `client_id` alone for public clients (`none`) — exactly one method per request, and the
//! one the client registered. The same keys check request objects ([`request_object`]).

mod assertion;
mod jwks;
mod request_object;

use std::collections::BTreeMap;
use std::sync::Arc;

use base64::Engine as _;
use http::{header, HeaderMap};
use tessera_proto::client_auth::{CLIENT_SECRET_JWT, JWT_BEARER_ASSERTION};
use tessera_proto::OAuthErrorCode;
use tessera_store::durable::{ClientRecord, ClientStore};
use tessera_store::ephemeral::EphemeralStore;

use crate::clock::Clock;
use crate::config::Config;
use crate::error::OAuthFailure;
use crate::keys::{KeyError, MasterKey};
use crate::outbound::Outbound;
use crate::tokens::opaque::{hashes_equal, random_b64, sha256_b64, CLIENT_SECRET_PREFIX};

pub use jwks::{check_jwks, JwksError, MAX_JWKS_KEYS};
pub use request_object::{RequestObjectError, MAX_REQUEST_OBJECT_LEN};

/// A new client secret (shown once) and the hash to store.
pub fn new_client_secret() -> (String, String) {
    let secret = format!("{CLIENT_SECRET_PREFIX}{}", random_b64(32));
    let hash = sha256_b64(&secret);
    (secret, hash)
}

/// Seals the secrets of `client_secret_jwt` clients with the master key: an HMAC is
/// checked with the secret itself, so for these clients (and only these) the secret is
/// kept in a form the server can use — AES-256-GCM under the master key, bound to the
/// client id — beside its hash.
pub struct SecretSeal(MasterKey);

impl SecretSeal {
    pub fn new(master: &[u8; 32]) -> Result<SecretSeal, KeyError> {
        MasterKey::new(master).map(SecretSeal)
    }

    fn label(client_id: &str) -> String {
        format!("client-secret:{client_id}")
    }

    /// The sealed form of `secret` (base64url) for the client `client_id`.
    pub fn seal(&self, client_id: &str, secret: &str) -> Result<String, KeyError> {
        let sealed = self.0.seal(&Self::label(client_id), secret.as_bytes())?;
        Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(sealed))
    }

    /// The secret that [`SecretSeal::seal`] sealed for `client_id`.
    pub fn open(&self, client_id: &str, sealed: &str) -> Result<Vec<u8>, KeyError> {
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(sealed)
            .map_err(|_| KeyError::Corrupt {
                kid: Self::label(client_id),
                reason: "not base64url".to_owned(),
            })?;
        self.0.open(&Self::label(client_id), &bytes)
    }
}

/// How a request presented its client.
enum Presented {
    Basic { id: String, secret: String },
    Post { id: String, secret: String },
    Assertion { id: Option<String>, assertion: String },
    IdOnly { id: String },
}

fn invalid_client() -> OAuthFailure {
    OAuthFailure::new(OAuthErrorCode::InvalidClient, "client authentication failed")
}

fn several_methods() -> OAuthFailure {
    OAuthFailure::new(
        OAuthErrorCode::InvalidRequest,
        "use one client authentication method, not several",
    )
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
    match (form.get("client_assertion_type"), form.get("client_assertion")) {
        (None, None) => {}
        (Some(kind), Some(assertion)) => {
            if basic.is_some() || post_secret.is_some() {
                return Err(several_methods());
            }
            // RFC 7521 §4.2: an assertion that is not understood fails authentication.
            if kind != JWT_BEARER_ASSERTION {
                return Err(invalid_client().caused_by(format!("client_assertion_type {kind:?}")));
            }
            return Ok(Presented::Assertion {
                id: post_id.cloned(),
                assertion: assertion.clone(),
            });
        }
        _ => {
            return Err(OAuthFailure::new(
                OAuthErrorCode::InvalidRequest,
                "client_assertion and client_assertion_type go together",
            ))
        }
    }
    match (basic, post_id, post_secret) {
        (Some(_), _, Some(_)) => Err(several_methods()),
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

/// What [`ClientAuth`] is built from.
pub struct ClientAuthParts {
    pub config: Arc<Config>,
    pub clients: Arc<dyn ClientStore>,
    pub ephemeral: Arc<dyn EphemeralStore>,
    pub clock: Arc<dyn Clock>,
    pub outbound: Arc<dyn Outbound>,
    pub secrets: Arc<SecretSeal>,
}

/// Authenticates clients; one per node (it caches the key sets fetched from `jwks_uri`s).
pub struct ClientAuth {
    clients: Arc<dyn ClientStore>,
    secrets: Arc<SecretSeal>,
    assertions: assertion::Assertions,
}

impl ClientAuth {
    pub fn new(parts: ClientAuthParts) -> ClientAuth {
        let issuer = parts.config.issuer();
        ClientAuth {
            clients: parts.clients.clone(),
            secrets: parts.secrets.clone(),
            assertions: assertion::Assertions {
                issuer,
                max_lifetime: i64::try_from(parts.config.client_auth.assertion_max_lifetime_secs)
                    .unwrap_or(i64::MAX),
                leeway: i64::try_from(parts.config.tokens.leeway_secs).unwrap_or(0),
                replay: parts.ephemeral,
                clock: parts.clock.clone(),
                secrets: parts.secrets,
                key_sets: jwks::KeySets::new(&parts.config.client_auth, parts.outbound, parts.clock),
            },
        }
    }

    /// The seal of `client_secret_jwt` secrets (the registry seals them).
    pub fn secrets(&self) -> Arc<SecretSeal> {
        self.secrets.clone()
    }

    /// Authenticates the client of a request to the endpoint at `endpoint` (a path such as
    /// `/oauth2/token`; an assertion may name it as its audience). Public clients (method
    /// `none`) are accepted with their `client_id` alone only when `allow_public` is set.
    pub async fn authenticate(
        &self,
        headers: &HeaderMap,
        form: &BTreeMap<String, String>,
        allow_public: bool,
        endpoint: &str,
    ) -> Result<ClientRecord, OAuthFailure> {
        let presented = presented(headers, form)?;
        let (id, secret, method) = match &presented {
            Presented::Basic { id, secret } => (id, Some(secret), "client_secret_basic"),
            Presented::Post { id, secret } => (id, Some(secret), "client_secret_post"),
            Presented::IdOnly { id } => (id, None, "none"),
            Presented::Assertion { id, assertion } => {
                return self
                    .assertions
                    .authenticate(self.clients.as_ref(), id.as_deref(), assertion, endpoint)
                    .await
            }
        };
        if id.is_empty() || id.len() > 255 {
            return Err(invalid_client());
        }
        let client = self.clients.client(id).await?;
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
            (None, None) if client.is_public() && allow_public => Ok(client),
            (None, None) if client.is_public() => Err(OAuthFailure::new(
                OAuthErrorCode::UnauthorizedClient,
                "public clients may not use this endpoint",
            )),
            _ => Err(invalid_client()),
        }
    }
}

/// Whether a client registered with `method` keeps a secret the server must be able to
/// use (not only compare).
pub fn needs_sealed_secret(method: &str) -> bool {
    method == CLIENT_SECRET_JWT
}
