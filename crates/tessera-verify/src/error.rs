//! Errors: why a token is refused (for logs — a client only ever learns `invalid_token`),
//! and why a verifier could not be built.

/// Why a presented token was not accepted.
///
/// Every variant but [`VerifyError::Unavailable`] is a problem with the token and maps to
/// the RFC 6750 error `invalid_token` (HTTP 401); the variant itself is the reason, meant for
/// logs and metrics, never for the client.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum VerifyError {
    /// Not a compact JWS of three parts with a parseable header (this includes `alg: none`
    /// and unknown algorithms, which do not parse), or too long.
    #[error("not a compact JWS with a parseable header")]
    Malformed,
    /// The header carries `crit`; no critical extension is understood.
    #[error("the header carries `crit`")]
    CriticalHeader,
    /// The algorithm is not in the allow-list (HMAC never is).
    #[error("algorithm {0} not allowed")]
    Algorithm(String),
    /// `typ` is not `at+jwt` (an ID token or another JWT presented as an access token).
    #[error("`typ` is not at+jwt")]
    Type,
    /// No `kid`, or no key with this `kid` and algorithm, even after a refresh.
    #[error("no published key has this kid and algorithm")]
    UnknownKey,
    /// The signature does not verify.
    #[error("signature invalid")]
    Signature,
    /// A required claim is missing or has the wrong type.
    #[error("claim `{0}` missing or invalid")]
    Claims(&'static str),
    /// `iss` is not exactly the expected issuer.
    #[error("issuer mismatch")]
    Issuer,
    /// `aud` does not contain the required audience.
    #[error("audience mismatch")]
    Audience,
    /// `exp` has passed (beyond the leeway).
    #[error("expired")]
    Expired,
    /// `nbf` or `iat` lies in the future (beyond the leeway).
    #[error("not yet valid")]
    NotYetValid,
    /// The session (`sid`) or the token (`jti`) is on the deny-list.
    #[error("revoked")]
    Revoked,
    /// Introspection answered `active: false` (or it is not an access token), or the
    /// provider does not know the API key (unknown, tampered, expired, revoked).
    #[error("inactive")]
    Inactive,
    /// An API key used from an address outside its allow-list.
    #[error("address not allowed for this API key")]
    AddressNotAllowed,
    /// The token is DPoP-bound (`cnf.jkt`) and was presented as a plain Bearer token, or
    /// with a proof of another key (RFC 9449 §7.1).
    #[error("bound to a DPoP key the request did not prove")]
    DpopBound,
    /// Presented with the DPoP scheme, but not bound to a key.
    #[error("not DPoP-bound, yet presented as DPoP")]
    NotDpopBound,
    /// The DPoP proof is missing or fails a check of RFC 9449 §4.3 (answered
    /// `invalid_dpop_proof`).
    #[error("DPoP proof refused: {0}")]
    DpopProof(tessera_proto::dpop::ProofError),
    /// The token could not be judged: no key set was ever loaded, or the introspection
    /// endpoint is unreachable. Not the client's fault: HTTP 503, no `WWW-Authenticate`.
    #[error("authentication unavailable: {0}")]
    Unavailable(String),
}

impl VerifyError {
    /// The RFC 6750 §3.1 error code: `invalid_token` for every token problem, `None` when
    /// the token could not be judged at all ([`VerifyError::Unavailable`]).
    pub fn rfc6750_error(&self) -> Option<&'static str> {
        match self {
            VerifyError::Unavailable(_) => None,
            VerifyError::DpopProof(_) => Some(tessera_proto::dpop::INVALID_DPOP_PROOF),
            _ => Some("invalid_token"),
        }
    }

    /// The HTTP status to answer with: 401, or 503 for [`VerifyError::Unavailable`].
    pub fn http_status(&self) -> u16 {
        match self {
            VerifyError::Unavailable(_) => 503,
            _ => 401,
        }
    }
}

/// Why a [`Verifier`](crate::Verifier) or [`Introspector`](crate::Introspector) could not be
/// built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BuildError {
    #[error("invalid URL {url:?}: {reason}")]
    InvalidUrl { url: String, reason: String },
    #[error("invalid configuration: {0}")]
    Config(String),
    #[error("discovery failed: {0}")]
    Discovery(String),
    #[error("the discovery document names issuer {found:?}, expected exactly {expected:?}")]
    IssuerMismatch { expected: String, found: String },
    #[error("the initial key set could not be loaded: {0}")]
    Keys(String),
    #[error("cannot build the HTTP client: {0}")]
    Http(String),
}
