//! DPoP (RFC 9449) at the HTTP surface: the `DPoP` header of a token request, the
//! `Authorization: DPoP` scheme of a protected resource, and the `DPoP-Nonce` a response
//! hands out when nonces are required. The checks themselves are `tessera_idp::dpop`'s.

use axum::http::{header, HeaderMap, HeaderValue};
use axum::response::Response;
use tessera_proto::dpop::{self as proto, Proof};
use tessera_proto::OAuthErrorCode;

use crate::error::OAuthReply;
use tessera_idp::error::OAuthFailure;
use tessera_idp::state::AppState;
use tessera_idp::tokens::Presented;

/// The proof of a request to the token endpoint (`POST paths::TOKEN`), if it carries one.
pub async fn token_request_proof(state: &AppState, headers: &HeaderMap) -> Result<Option<Proof>, OAuthReply> {
    let proof = proof_header(state, headers, false)?;
    state
        .dpop
        .check(proof, "POST", tessera_proto::paths::TOKEN, None)
        .await
        .map_err(|err| err.into_failure(state.dpop.current_nonce()).into())
}

/// An access token presented to one of the provider's protected resources.
pub struct PresentedToken<'a> {
    pub token: &'a str,
    /// The key the request's proof proved (`Authorization: DPoP`), `None` for Bearer.
    jkt: Option<String>,
}

impl PresentedToken<'_> {
    /// Whether it came with the `DPoP` scheme (and a valid proof).
    pub fn is_dpop(&self) -> bool {
        self.jkt.is_some()
    }

    /// How the token was presented, for `TokenService::verify_presented`.
    pub fn presented(&self) -> Presented<'_> {
        match &self.jkt {
            Some(jkt) => Presented::Dpop { jkt },
            None => Presented::Bearer,
        }
    }
}

/// The access token of a request to the protected resource `method path`: exactly one
/// `Authorization` header, `Bearer <token>` (RFC 6750 §2.1) or `DPoP <token>` with a proof
/// whose `ath` is the token's hash (RFC 9449 §7.1). Missing or malformed credentials get
/// the Bearer challenge (RFC 6750 §3); a failed DPoP presentation gets the DPoP one.
pub async fn presented_token<'a>(
    state: &AppState,
    headers: &'a HeaderMap,
    method: &str,
    path: &str,
) -> Result<PresentedToken<'a>, OAuthReply> {
    let refuse = |description: &str| -> OAuthReply {
        OAuthFailure::new(OAuthErrorCode::InvalidToken, description).into()
    };
    let mut values = headers.get_all(header::AUTHORIZATION).iter();
    let value = match (values.next(), values.next()) {
        (Some(value), None) => value,
        (None, _) => return Err(refuse("an access token is required")),
        (Some(_), Some(_)) => return Err(refuse("more than one Authorization header")),
    };
    let text = value
        .to_str()
        .map_err(|_| refuse("the Authorization header is malformed"))?;
    let Some((scheme, token)) = text.split_once(' ').map(|(s, t)| (s, t.trim())) else {
        return Err(refuse("an access token is required"));
    };
    if token.is_empty() {
        return Err(refuse("an access token is required"));
    }
    if scheme.eq_ignore_ascii_case("bearer") {
        return Ok(PresentedToken { token, jkt: None });
    }
    if !scheme.eq_ignore_ascii_case(proto::TOKEN_TYPE) {
        return Err(refuse("the Authorization scheme must be Bearer or DPoP"));
    }
    let proof = proof_header(state, headers, true)?.ok_or_else(|| {
        OAuthFailure::new(OAuthErrorCode::InvalidDpopProof, "a DPoP proof is required").at_dpop_resource()
    })?;
    let proof = state
        .dpop
        .check(Some(proof), method, path, Some(token))
        .await
        .map_err(|err| err.into_failure(state.dpop.current_nonce()).at_dpop_resource())?;
    Ok(PresentedToken {
        token,
        jkt: proof.map(|p| p.jkt),
    })
}

/// Adds the current `DPoP-Nonce` to a response when nonces are required, so the client's
/// next proof can carry it without a failed round trip (RFC 9449 §8.2).
pub fn offer_nonce(state: &AppState, mut response: Response) -> Response {
    if let Some(nonce) = state
        .dpop
        .current_nonce()
        .and_then(|n| HeaderValue::from_str(&n).ok())
    {
        response.headers_mut().insert(proto::NONCE_HEADER, nonce);
    }
    response
}

/// The request's one `DPoP` header, if any (two are refused: RFC 9449 §4.3 step 1).
fn proof_header<'a>(
    state: &AppState,
    headers: &'a HeaderMap,
    at_resource: bool,
) -> Result<Option<&'a str>, OAuthReply> {
    proto::single_proof(headers.get_all(proto::HEADER).iter().map(HeaderValue::as_bytes)).map_err(|why| {
        let failure = OAuthFailure::new(OAuthErrorCode::InvalidDpopProof, "the DPoP proof is invalid")
            .caused_by(why)
            .with_dpop_nonce(state.dpop.current_nonce());
        if at_resource {
            failure.at_dpop_resource().into()
        } else {
            failure.into()
        }
    })
}
