//! The provider's protocol failures, before they become HTTP responses (`tessera-web`
//! renders them in one place):
//!
//! - [`OAuthFailure`]: an OAuth error of RFC 6749 §5.2 with a private cause for the log;
//! - [`ErrorKind`]: what an error page explains when the user cannot be sent back to the
//!   client (an unknown client, an unregistered redirect URI, an expired transaction).

use tessera_proto::{OAuthError, OAuthErrorCode};
use tessera_store::StoreError;

use crate::tokens::TokenError;

/// An OAuth protocol error, with the private cause kept for the log.
#[derive(Debug)]
pub struct OAuthFailure {
    pub error: OAuthError,
    cause: Option<String>,
    /// A fresh server nonce for the client's next DPoP proof (`DPoP-Nonce`, RFC 9449 §8).
    pub dpop_nonce: Option<String>,
    /// Refused at a protected resource that takes DPoP-bound tokens: 401 with a
    /// `WWW-Authenticate: DPoP` challenge (RFC 9449 §7.1) instead of a Bearer one.
    pub dpop_challenge: bool,
}

impl OAuthFailure {
    pub fn new(code: OAuthErrorCode, description: &str) -> Self {
        OAuthFailure {
            error: OAuthError::new(code, description),
            cause: None,
            dpop_nonce: None,
            dpop_challenge: false,
        }
    }

    /// Sends `nonce` in `DPoP-Nonce` with the error.
    pub fn with_dpop_nonce(mut self, nonce: Option<String>) -> Self {
        self.dpop_nonce = nonce;
        self
    }

    /// Answers as a protected resource that takes DPoP (RFC 9449 §7.1).
    pub fn at_dpop_resource(mut self) -> Self {
        self.dpop_challenge = true;
        self
    }

    /// Attaches a private cause, logged and never sent.
    pub fn caused_by(mut self, cause: impl std::fmt::Display) -> Self {
        self.cause = Some(cause.to_string());
        self
    }

    /// The private cause, for the log.
    pub fn cause(&self) -> Option<&str> {
        self.cause.as_deref()
    }
}

impl From<StoreError> for OAuthFailure {
    fn from(err: StoreError) -> Self {
        if let StoreError::InvalidInput(_) = err {
            return OAuthFailure::new(
                OAuthErrorCode::InvalidRequest,
                "a parameter contains a character that is not allowed",
            )
            .caused_by(err);
        }
        OAuthFailure::new(
            OAuthErrorCode::TemporarilyUnavailable,
            "the service is temporarily unavailable",
        )
        .caused_by(err)
    }
}

impl From<TokenError> for OAuthFailure {
    fn from(err: TokenError) -> Self {
        match err {
            TokenError::InvalidGrant(why) => OAuthFailure::new(
                OAuthErrorCode::InvalidGrant,
                "the refresh token is invalid, expired or revoked",
            )
            .caused_by(why),
            TokenError::InvalidScope => OAuthFailure::new(
                OAuthErrorCode::InvalidScope,
                "the requested scope exceeds the granted scope",
            ),
            TokenError::InvalidToken(why) => {
                OAuthFailure::new(OAuthErrorCode::InvalidToken, "the access token is invalid").caused_by(why)
            }
            TokenError::UnknownChannel(_) => {
                OAuthFailure::new(OAuthErrorCode::InvalidRequest, "unknown channel")
            }
            TokenError::Roles(why) => OAuthFailure::new(OAuthErrorCode::InvalidRequest, &why),
            TokenError::SessionLimit => OAuthFailure::new(
                OAuthErrorCode::AccessDenied,
                "the limit of concurrent sessions for this channel is reached",
            ),
            TokenError::Store(err) => err.into(),
            TokenError::Signing(cause) => {
                OAuthFailure::new(OAuthErrorCode::ServerError, "the token could not be issued")
                    .caused_by(cause)
            }
        }
    }
}

/// What went wrong, for an error page: the failures after which the user cannot (or must
/// not) be sent back to the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ErrorKind {
    /// The `client_id` is unknown (the user cannot be sent back).
    InvalidClient,
    /// The `redirect_uri` is not registered (the user must not be sent there).
    InvalidRedirectUri,
    /// A malformed request; the detail (short, in English, e.g. "missing response_type") is
    /// shown escaped and cut to 300 characters.
    InvalidRequest(String),
    /// The login or consent transaction expired.
    SessionExpired,
    ServerError,
    NotFound,
    /// A single-use link that is unknown, used, expired or for something else.
    LinkInvalid,
}
