//! Request objects passed by value (`request`, OpenID Connect Core §6.1, RFC 9101): a JWT
//! whose claims are authorization request parameters, signed with the algorithm the client
//! registered (`request_object_signing_alg`) and its registered keys — its key pair
//! (`jwks`, `jwks_uri`) for an asymmetric algorithm, its secret for an HMAC — or unsigned
//! (`none`) only when the client registered exactly that.

use serde_json::{Map, Value};
use tessera_proto::client_auth::{CLIENT_SECRET_JWT_ALGS, PRIVATE_KEY_JWT_ALGS};
use tessera_store::durable::ClientRecord;

use super::assertion::header_alg_or_none;
use super::ClientAuth;

/// The longest request object accepted.
pub const MAX_REQUEST_OBJECT_LEN: usize = 16 * 1024;

/// Why a request object was refused (for the log; the client hears
/// `invalid_request_object`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct RequestObjectError(pub String);

fn refuse(reason: impl std::fmt::Display) -> RequestObjectError {
    RequestObjectError(reason.to_string())
}

/// The claims that describe the JWT itself, not the request.
const JWT_CLAIMS: [&str; 6] = ["iss", "aud", "exp", "iat", "nbf", "jti"];

impl ClientAuth {
    /// The parameters of `client`'s request object `jwt`, once its signature (or its
    /// registered absence) and its `iss`, `aud`, `exp` and `nbf` are checked.
    pub async fn request_object(
        &self,
        client: &ClientRecord,
        jwt: &str,
    ) -> Result<Map<String, Value>, RequestObjectError> {
        let registered = client
            .request_object_signing_alg
            .as_deref()
            .ok_or_else(|| refuse("the client registered no request_object_signing_alg"))?;
        if jwt.len() > MAX_REQUEST_OBJECT_LEN {
            return Err(refuse("request object too long"));
        }
        let alg = header_alg_or_none(jwt).map_err(|_| refuse("request object header"))?;
        if alg != registered {
            return Err(refuse(format!(
                "request object signed with {alg}; client {} registered {registered}",
                client.client_id
            )));
        }
        let claims: Map<String, Value> = if alg == "none" {
            let mut parts = jwt.split('.');
            let (_, payload, signature) = (parts.next(), parts.next(), parts.next());
            if signature != Some("") || parts.next().is_some() {
                return Err(refuse("an unsigned request object has an empty signature"));
            }
            use base64::Engine as _;
            let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(payload.unwrap_or_default())
                .map_err(|_| refuse("request object payload is not base64url"))?;
            serde_json::from_slice(&bytes)
                .map_err(|_| refuse("request object payload is not a JSON object"))?
        } else if PRIVATE_KEY_JWT_ALGS.contains(&alg.as_str())
            || CLIENT_SECRET_JWT_ALGS.contains(&alg.as_str())
        {
            let header = jsonwebtoken::decode_header(jwt)
                .map_err(|e| refuse(format!("request object header: {e}")))?;
            self.assertions
                .verify_signed::<Map<String, Value>>(client, jwt, &header)
                .await
                .map_err(|e| refuse(e.cause().unwrap_or("request object signature")))?
        } else {
            return Err(refuse(format!("request object algorithm {alg}")));
        };
        self.check_request_claims(client, &claims)?;
        Ok(claims
            .into_iter()
            .filter(|(name, _)| !JWT_CLAIMS.contains(&name.as_str()))
            .collect())
    }

    fn check_request_claims(
        &self,
        client: &ClientRecord,
        claims: &Map<String, Value>,
    ) -> Result<(), RequestObjectError> {
        let now = self.assertions.clock.now();
        let leeway = self.assertions.leeway;
        // RFC 9101 §4: iss is the client, aud names this provider (its issuer identifier).
        match claims.get("iss") {
            None => {}
            Some(Value::String(iss)) if *iss == client.client_id => {}
            Some(_) => return Err(refuse("request object iss is not the client")),
        }
        let issuer = self.assertions.issuer.as_str();
        let names_us = |aud: &Value| match aud {
            Value::String(one) => one == issuer,
            Value::Array(list) => list.iter().any(|a| a.as_str() == Some(issuer)),
            _ => false,
        };
        if claims.get("aud").is_some_and(|aud| !names_us(aud)) {
            return Err(refuse("request object aud does not name this provider"));
        }
        let number = |name: &str| {
            claims.get(name).map(|v| {
                v.as_i64()
                    .ok_or_else(|| refuse(format!("request object {name} is not a number")))
            })
        };
        if let Some(exp) = number("exp").transpose()? {
            if exp + leeway <= now {
                return Err(refuse("request object expired"));
            }
        }
        if let Some(nbf) = number("nbf").transpose()? {
            if nbf > now + leeway {
                return Err(refuse("request object not yet valid"));
            }
        }
        for nested in ["request", "request_uri"] {
            if claims.contains_key(nested) {
                return Err(refuse(format!("a request object cannot carry {nested}")));
            }
        }
        Ok(())
    }
}
