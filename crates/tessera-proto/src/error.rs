//! The OAuth 2.0 error vocabulary: RFC 6749 §4.1.2.1 and §5.2, RFC 6750 §3.1, RFC 7009 §2.2.1
//! and OpenID Connect Core §3.1.2.6 codes, plus extensions. Rendered to HTTP in exactly one
//! place (the idp's error module).

use serde::{Serialize, Serializer};

/// An OAuth error code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OAuthErrorCode {
    InvalidRequest,
    InvalidClient,
    InvalidGrant,
    UnauthorizedClient,
    UnsupportedGrantType,
    InvalidScope,
    AccessDenied,
    UnsupportedResponseType,
    ServerError,
    TemporarilyUnavailable,
    InvalidToken,
    InsufficientScope,
    UnsupportedTokenType,
    LoginRequired,
    ConsentRequired,
    InteractionRequired,
    InvalidRequestUri,
    InvalidRequestObject,
    RequestNotSupported,
    RequestUriNotSupported,
    RegistrationNotSupported,
    /// RFC 8628 §3.5: the user has not yet answered on the verification page.
    AuthorizationPending,
    /// RFC 8628 §3.5: polling faster than the interval; the interval grows by 5 seconds.
    SlowDown,
    /// RFC 8628 §3.5: the device code expired; the device must start again.
    ExpiredToken,
    /// RFC 9449 §5, §7.1: the DPoP proof is missing where required, or invalid.
    InvalidDpopProof,
    /// RFC 9449 §8, §9: retry with the nonce in the `DPoP-Nonce` header.
    UseDpopNonce,
    /// A code defined elsewhere (an extension), written as is.
    Extension(String),
}

impl OAuthErrorCode {
    /// The code as it appears on the wire.
    pub fn as_str(&self) -> &str {
        match self {
            OAuthErrorCode::InvalidRequest => "invalid_request",
            OAuthErrorCode::InvalidClient => "invalid_client",
            OAuthErrorCode::InvalidGrant => "invalid_grant",
            OAuthErrorCode::UnauthorizedClient => "unauthorized_client",
            OAuthErrorCode::UnsupportedGrantType => "unsupported_grant_type",
            OAuthErrorCode::InvalidScope => "invalid_scope",
            OAuthErrorCode::AccessDenied => "access_denied",
            OAuthErrorCode::UnsupportedResponseType => "unsupported_response_type",
            OAuthErrorCode::ServerError => "server_error",
            OAuthErrorCode::TemporarilyUnavailable => "temporarily_unavailable",
            OAuthErrorCode::InvalidToken => "invalid_token",
            OAuthErrorCode::InsufficientScope => "insufficient_scope",
            OAuthErrorCode::UnsupportedTokenType => "unsupported_token_type",
            OAuthErrorCode::LoginRequired => "login_required",
            OAuthErrorCode::ConsentRequired => "consent_required",
            OAuthErrorCode::InteractionRequired => "interaction_required",
            OAuthErrorCode::InvalidRequestUri => "invalid_request_uri",
            OAuthErrorCode::InvalidRequestObject => "invalid_request_object",
            OAuthErrorCode::RequestNotSupported => "request_not_supported",
            OAuthErrorCode::RequestUriNotSupported => "request_uri_not_supported",
            OAuthErrorCode::RegistrationNotSupported => "registration_not_supported",
            OAuthErrorCode::AuthorizationPending => "authorization_pending",
            OAuthErrorCode::SlowDown => "slow_down",
            OAuthErrorCode::ExpiredToken => "expired_token",
            OAuthErrorCode::InvalidDpopProof => "invalid_dpop_proof",
            OAuthErrorCode::UseDpopNonce => "use_dpop_nonce",
            OAuthErrorCode::Extension(code) => code,
        }
    }

    /// The HTTP status a token-endpoint style JSON error carries (RFC 6749 §5.2,
    /// RFC 6750 §3.1).
    pub fn http_status(&self) -> u16 {
        match self {
            OAuthErrorCode::InvalidClient | OAuthErrorCode::InvalidToken => 401,
            OAuthErrorCode::InsufficientScope | OAuthErrorCode::AccessDenied => 403,
            OAuthErrorCode::ServerError => 500,
            OAuthErrorCode::TemporarilyUnavailable => 503,
            _ => 400,
        }
    }
}

impl Serialize for OAuthErrorCode {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

/// The JSON error body of RFC 6749 §5.2. The description is short, fixed text for the
/// client developer — never a cause taken from a database or a library.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OAuthError {
    pub error: OAuthErrorCode,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_description: Option<String>,
}

impl OAuthError {
    pub fn new(error: OAuthErrorCode, description: impl Into<String>) -> Self {
        OAuthError {
            error,
            error_description: Some(description.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_spelled_as_the_rfcs_spell_them() {
        let expected = [
            (OAuthErrorCode::InvalidRequest, "invalid_request"),
            (OAuthErrorCode::InvalidClient, "invalid_client"),
            (OAuthErrorCode::InvalidGrant, "invalid_grant"),
            (OAuthErrorCode::UnauthorizedClient, "unauthorized_client"),
            (OAuthErrorCode::UnsupportedGrantType, "unsupported_grant_type"),
            (OAuthErrorCode::InvalidScope, "invalid_scope"),
            (OAuthErrorCode::AccessDenied, "access_denied"),
            (
                OAuthErrorCode::UnsupportedResponseType,
                "unsupported_response_type",
            ),
            (OAuthErrorCode::ServerError, "server_error"),
            (OAuthErrorCode::TemporarilyUnavailable, "temporarily_unavailable"),
            (OAuthErrorCode::InvalidToken, "invalid_token"),
            (OAuthErrorCode::InsufficientScope, "insufficient_scope"),
            (OAuthErrorCode::UnsupportedTokenType, "unsupported_token_type"),
            (OAuthErrorCode::LoginRequired, "login_required"),
            (OAuthErrorCode::ConsentRequired, "consent_required"),
            (OAuthErrorCode::InteractionRequired, "interaction_required"),
            (OAuthErrorCode::AuthorizationPending, "authorization_pending"),
            (OAuthErrorCode::SlowDown, "slow_down"),
            (OAuthErrorCode::ExpiredToken, "expired_token"),
            (OAuthErrorCode::InvalidDpopProof, "invalid_dpop_proof"),
            (OAuthErrorCode::UseDpopNonce, "use_dpop_nonce"),
        ];
        for (code, text) in expected {
            assert_eq!(code.as_str(), text);
        }
    }

    #[test]
    fn json_body_has_exactly_the_rfc_members() {
        let body =
            serde_json::to_string(&OAuthError::new(OAuthErrorCode::InvalidGrant, "code expired")).unwrap();
        assert_eq!(
            body,
            r#"{"error":"invalid_grant","error_description":"code expired"}"#
        );
        let bare = OAuthError {
            error: OAuthErrorCode::AccessDenied,
            error_description: None,
        };
        assert_eq!(
            serde_json::to_string(&bare).unwrap(),
            r#"{"error":"access_denied"}"#
        );
    }

    #[test]
    fn statuses_follow_rfc_6749_and_6750() {
        assert_eq!(OAuthErrorCode::InvalidClient.http_status(), 401);
        assert_eq!(OAuthErrorCode::InvalidToken.http_status(), 401);
        assert_eq!(OAuthErrorCode::InsufficientScope.http_status(), 403);
        assert_eq!(OAuthErrorCode::InvalidGrant.http_status(), 400);
        assert_eq!(OAuthErrorCode::TemporarilyUnavailable.http_status(), 503);
        // RFC 8628 §3.5: the device grant's answers are plain token-endpoint errors.
        assert_eq!(OAuthErrorCode::AuthorizationPending.http_status(), 400);
        assert_eq!(OAuthErrorCode::SlowDown.http_status(), 400);
        assert_eq!(OAuthErrorCode::ExpiredToken.http_status(), 400);
    }
}
