//! The relying-party side of federated sign-in, on the `openidconnect` crate (and its
//! `oauth2` for OAuth 2.0-only providers): discovery, the authorization URL with PKCE S256,
//! `state` and `nonce`, the code exchange, ID token verification against the upstream's
//! JWKS, and the user API of providers without ID tokens.
//!
//! Every request goes through the node's [`Outbound`] client (no HTTP stack of the crate's
//! own), bounded in time and in the size of the answer.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use openidconnect::core::{
    CoreAuthDisplay, CoreAuthenticationFlow, CoreClaimName, CoreClaimType, CoreClient, CoreClientAuthMethod,
    CoreGrantType, CoreJsonWebKey, CoreJweContentEncryptionAlgorithm, CoreJweKeyManagementAlgorithm,
    CoreResponseMode, CoreResponseType, CoreSubjectIdentifierType,
};
use openidconnect::{
    AccessToken, AdditionalProviderMetadata, AsyncHttpClient, AuthUrl, AuthorizationCode,
    ClaimsVerificationError, ClientId, ClientSecret, CsrfToken, HttpRequest, HttpResponse, IssuerUrl, Nonce,
    OAuth2TokenResponse, PkceCodeChallenge, PkceCodeVerifier, ProviderMetadata, RedirectUrl,
    RequestTokenError, Scope, SignatureVerificationError, TokenResponse, TokenUrl,
};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::FederationError;
use crate::config::{ProviderConfig, ProviderKind};
use crate::outbound::{Exchange, Outbound, OutboundError};

/// The discovery document's member that RFC 9207 adds (`iss` in authorization responses).
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
pub struct IssParameter {
    #[serde(default)]
    pub authorization_response_iss_parameter_supported: bool,
}

impl AdditionalProviderMetadata for IssParameter {}

type Metadata = ProviderMetadata<
    IssParameter,
    CoreAuthDisplay,
    CoreClientAuthMethod,
    CoreClaimName,
    CoreClaimType,
    CoreGrantType,
    CoreJweContentEncryptionAlgorithm,
    CoreJweKeyManagementAlgorithm,
    CoreJsonWebKey,
    CoreResponseMode,
    CoreResponseType,
    CoreSubjectIdentifierType,
>;

/// The node's outbound client as the `openidconnect` crate's HTTP client.
struct UpstreamHttp {
    outbound: Arc<dyn Outbound>,
    timeout: Duration,
    max_response_bytes: usize,
}

impl<'c> AsyncHttpClient<'c> for UpstreamHttp {
    type Error = OutboundError;
    type Future = Pin<Box<dyn Future<Output = Result<HttpResponse, OutboundError>> + Send + 'c>>;

    fn call(&'c self, request: HttpRequest) -> Self::Future {
        Box::pin(async move {
            self.outbound
                .exchange(Exchange {
                    request,
                    timeout: self.timeout,
                    max_response_bytes: self.max_response_bytes,
                })
                .await
        })
    }
}

/// Where a sign-in at an upstream begins, and what the callback needs to finish it.
pub struct Authorization {
    pub url: String,
    pub nonce: String,
    pub pkce_verifier: String,
}

/// The upstream's claims about the user (ID token, user info or user API), unmapped.
pub type Claims = Map<String, Value>;

/// Talks to upstream providers; caches their discovery documents and key sets.
pub struct Upstream {
    http: UpstreamHttp,
    cache_secs: i64,
    metadata: Mutex<HashMap<String, (i64, Arc<Metadata>)>>,
}

impl Upstream {
    pub fn new(
        outbound: Arc<dyn Outbound>,
        timeout: Duration,
        max_response_bytes: usize,
        cache_secs: u64,
    ) -> Self {
        Upstream {
            http: UpstreamHttp {
                outbound,
                timeout,
                max_response_bytes,
            },
            cache_secs: i64::try_from(cache_secs).unwrap_or(3600),
            metadata: Mutex::new(HashMap::new()),
        }
    }

    /// Forgets what is cached of `provider` (its configuration changed).
    pub fn forget(&self, provider: &str) {
        if let Ok(mut cache) = self.metadata.lock() {
            cache.remove(provider);
        }
    }

    /// The discovery document (with its key set) of an OpenID Connect provider: cached,
    /// or fetched when absent, older than the cache time, or `refresh`.
    async fn metadata(
        &self,
        provider: &ProviderConfig,
        now: i64,
        refresh: bool,
    ) -> Result<Arc<Metadata>, FederationError> {
        if !refresh {
            if let Ok(cache) = self.metadata.lock() {
                if let Some((at, metadata)) = cache.get(&provider.id) {
                    if now.saturating_sub(*at) < self.cache_secs {
                        return Ok(metadata.clone());
                    }
                }
            }
        }
        let issuer = provider.issuer.clone().unwrap_or_default();
        let issuer = IssuerUrl::new(issuer).map_err(|e| FederationError::Misconfigured(e.to_string()))?;
        let metadata = Metadata::discover_async(issuer, &self.http)
            .await
            .map_err(|e| match e {
                openidconnect::DiscoveryError::Request(err) => FederationError::Unreachable(err.to_string()),
                other => FederationError::InvalidResponse(format!("discovery: {other}")),
            })?;
        let metadata = Arc::new(metadata);
        if let Ok(mut cache) = self.metadata.lock() {
            cache.insert(provider.id.clone(), (now, metadata.clone()));
        }
        Ok(metadata)
    }

    fn oidc_client(
        provider: &ProviderConfig,
        metadata: &Metadata,
        redirect_uri: &str,
    ) -> Result<
        CoreClient<
            openidconnect::EndpointSet,
            openidconnect::EndpointNotSet,
            openidconnect::EndpointNotSet,
            openidconnect::EndpointNotSet,
            openidconnect::EndpointMaybeSet,
            openidconnect::EndpointMaybeSet,
        >,
        FederationError,
    > {
        let redirect = RedirectUrl::new(redirect_uri.to_owned())
            .map_err(|e| FederationError::Misconfigured(e.to_string()))?;
        Ok(CoreClient::from_provider_metadata(
            metadata.clone(),
            ClientId::new(provider.client_id.clone()),
            provider.secret().map(|s| ClientSecret::new(s.to_owned())),
        )
        .set_redirect_uri(redirect))
    }

    fn oauth2_client(
        provider: &ProviderConfig,
        redirect_uri: &str,
    ) -> Result<
        oauth2::basic::BasicClient<
            oauth2::EndpointSet,
            oauth2::EndpointNotSet,
            oauth2::EndpointNotSet,
            oauth2::EndpointNotSet,
            oauth2::EndpointSet,
        >,
        FederationError,
    > {
        let misconfigured = |e: oauth2::url::ParseError| FederationError::Misconfigured(e.to_string());
        let mut client = oauth2::basic::BasicClient::new(ClientId::new(provider.client_id.clone()))
            .set_auth_uri(
                AuthUrl::new(provider.authorization_endpoint.clone().unwrap_or_default())
                    .map_err(misconfigured)?,
            )
            .set_token_uri(
                TokenUrl::new(provider.token_endpoint.clone().unwrap_or_default()).map_err(misconfigured)?,
            )
            .set_redirect_uri(RedirectUrl::new(redirect_uri.to_owned()).map_err(misconfigured)?)
            // GitHub, Naver and Kakao read the credentials from the form.
            .set_auth_type(oauth2::AuthType::RequestBody);
        if let Some(secret) = provider.secret() {
            client = client.set_client_secret(ClientSecret::new(secret.to_owned()));
        }
        Ok(client)
    }

    /// The authorization URL of a new sign-in at `provider`, with `state`, a fresh nonce
    /// (OpenID Connect) and a PKCE S256 challenge.
    pub async fn authorize(
        &self,
        provider: &ProviderConfig,
        redirect_uri: &str,
        state: &str,
        now: i64,
    ) -> Result<Authorization, FederationError> {
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let state = CsrfToken::new(state.to_owned());
        let scopes = provider
            .scopes
            .iter()
            .filter(|s| *s != "openid")
            .map(|s| Scope::new(s.clone()));
        let (url, nonce) = match provider.kind {
            ProviderKind::Oidc => {
                let metadata = self.metadata(provider, now, false).await?;
                let client = Self::oidc_client(provider, &metadata, redirect_uri)?;
                let (url, _, nonce) = client
                    .authorize_url(
                        CoreAuthenticationFlow::AuthorizationCode,
                        move || state,
                        Nonce::new_random,
                    )
                    .add_scopes(scopes)
                    .set_pkce_challenge(challenge)
                    .url();
                (url, nonce.secret().clone())
            }
            ProviderKind::Oauth2 => {
                let client = Self::oauth2_client(provider, redirect_uri)?;
                let (url, _) = client
                    .authorize_url(move || state)
                    .add_scopes(scopes)
                    .set_pkce_challenge(challenge)
                    .url();
                (url, String::new())
            }
        };
        Ok(Authorization {
            url: url.to_string(),
            nonce,
            pkce_verifier: verifier.secret().clone(),
        })
    }

    /// RFC 9207 §2.4: the `iss` of an authorization response must be the provider's issuer,
    /// and must be there when the provider says it sends one.
    pub async fn check_response_issuer(
        &self,
        provider: &ProviderConfig,
        iss: Option<&str>,
        now: i64,
    ) -> Result<(), FederationError> {
        if provider.kind != ProviderKind::Oidc {
            return Ok(());
        }
        let metadata = self.metadata(provider, now, false).await?;
        match iss {
            Some(iss) if iss == metadata.issuer().as_str() => Ok(()),
            Some(_) => Err(FederationError::IssuerMismatch),
            None if metadata
                .additional_metadata()
                .authorization_response_iss_parameter_supported =>
            {
                Err(FederationError::IssuerMismatch)
            }
            None => Ok(()),
        }
    }

    /// Redeems `code` and returns the upstream's claims about the user: the verified ID
    /// token's (with user info for claims it lacks), or the user API's.
    pub async fn redeem(
        &self,
        provider: &ProviderConfig,
        redirect_uri: &str,
        code: &str,
        pkce_verifier: &str,
        nonce: &str,
        now: i64,
    ) -> Result<Claims, FederationError> {
        match provider.kind {
            ProviderKind::Oidc => {
                self.redeem_oidc(provider, redirect_uri, code, pkce_verifier, nonce, now)
                    .await
            }
            ProviderKind::Oauth2 => {
                self.redeem_oauth2(provider, redirect_uri, code, pkce_verifier)
                    .await
            }
        }
    }

    async fn redeem_oidc(
        &self,
        provider: &ProviderConfig,
        redirect_uri: &str,
        code: &str,
        pkce_verifier: &str,
        nonce: &str,
        now: i64,
    ) -> Result<Claims, FederationError> {
        let metadata = self.metadata(provider, now, false).await?;
        let client = Self::oidc_client(provider, &metadata, redirect_uri)?;
        let response = client
            .exchange_code(AuthorizationCode::new(code.to_owned()))
            .map_err(|e| FederationError::Misconfigured(e.to_string()))?
            .set_pkce_verifier(PkceCodeVerifier::new(pkce_verifier.to_owned()))
            .request_async(&self.http)
            .await
            .map_err(token_error)?;
        let id_token = response.id_token().ok_or_else(|| {
            FederationError::InvalidIdToken("the token response has no ID token".to_owned())
        })?;
        let nonce = Nonce::new(nonce.to_owned());
        let verified = match id_token.claims(&client.id_token_verifier(), &nonce) {
            Ok(claims) => Ok(claims.subject().to_string()),
            // A key the cached set lacks: the upstream rotated its keys. Fetch them again, once.
            Err(ClaimsVerificationError::SignatureVerification(
                SignatureVerificationError::NoMatchingKey,
            )) => {
                let fresh = self.metadata(provider, now, true).await?;
                let client = Self::oidc_client(provider, &fresh, redirect_uri)?;
                let verifier = client.id_token_verifier();
                let subject = id_token
                    .claims(&verifier, &nonce)
                    .map(|claims| claims.subject().to_string());
                subject
            }
            Err(other) => Err(other),
        };
        let subject = verified.map_err(|e| match e {
            ClaimsVerificationError::InvalidNonce(_) => FederationError::NonceMismatch,
            ClaimsVerificationError::InvalidIssuer(_) => FederationError::IssuerMismatch,
            other => FederationError::InvalidIdToken(other.to_string()),
        })?;
        // The token verified: its payload is what it claims.
        let mut claims = jwt_payload(&id_token.to_string())?;
        let mapped = &provider.claims;
        let lacks = |claims: &Claims, name: &str| claims.get(name).is_none_or(Value::is_null);
        let userinfo = metadata
            .userinfo_endpoint()
            .map(|u| u.url().to_string())
            .or_else(|| provider.userinfo_endpoint.clone());
        if let Some(url) = userinfo.filter(|_| lacks(&claims, &mapped.email) || lacks(&claims, &mapped.name))
        {
            let info = self.get_json(&url, response.access_token()).await?;
            let Value::Object(info) = info else {
                return Err(FederationError::InvalidResponse(
                    "user info is not a JSON object".to_owned(),
                ));
            };
            // OIDC Core §5.3.4: user info about another subject is not used.
            if info.get("sub").and_then(Value::as_str) != Some(subject.as_str()) {
                return Err(FederationError::InvalidResponse(
                    "user info is about another subject".to_owned(),
                ));
            }
            for (name, value) in info {
                if lacks(&claims, &name) {
                    claims.insert(name, value);
                }
            }
        }
        Ok(claims)
    }

    async fn redeem_oauth2(
        &self,
        provider: &ProviderConfig,
        redirect_uri: &str,
        code: &str,
        pkce_verifier: &str,
    ) -> Result<Claims, FederationError> {
        let client = Self::oauth2_client(provider, redirect_uri)?;
        let response = client
            .exchange_code(AuthorizationCode::new(code.to_owned()))
            .set_pkce_verifier(PkceCodeVerifier::new(pkce_verifier.to_owned()))
            .request_async(&self.http)
            .await
            .map_err(token_error)?;
        let url = provider.userinfo_endpoint.clone().unwrap_or_default();
        let Value::Object(mut claims) = self.get_json(&url, response.access_token()).await? else {
            return Err(FederationError::InvalidResponse(
                "the user API did not answer a JSON object".to_owned(),
            ));
        };
        let mapped = &provider.claims;
        // The address list (GitHub `/user/emails`) says which address is verified; the user
        // API's own address is only what the user chose to show.
        if let Some(url) = &provider.emails_endpoint {
            let listed = self.get_json(url, response.access_token()).await?;
            let primary = listed.as_array().and_then(|emails| {
                emails.iter().find(|e| {
                    e.get("primary").and_then(Value::as_bool) == Some(true)
                        && e.get("verified").and_then(Value::as_bool) == Some(true)
                })
            });
            match primary.and_then(|e| e.get("email")).and_then(Value::as_str) {
                Some(email) => {
                    claims.insert(mapped.email.clone(), Value::String(email.to_owned()));
                    claims.insert(mapped.email_verified.clone(), Value::Bool(true));
                }
                None => {
                    claims.insert(mapped.email_verified.clone(), Value::Bool(false));
                }
            }
        }
        Ok(claims)
    }

    /// `GET url` with the access token; the JSON answer of a 2xx.
    async fn get_json(&self, url: &str, token: &AccessToken) -> Result<Value, FederationError> {
        let request = http::Request::get(url)
            .header(http::header::ACCEPT, "application/json")
            .header(http::header::AUTHORIZATION, format!("Bearer {}", token.secret()))
            // GitHub's API refuses requests without one.
            .header(http::header::USER_AGENT, "tessera")
            .body(Vec::new())
            .map_err(|e| FederationError::Misconfigured(e.to_string()))?;
        let response = self
            .http
            .outbound
            .exchange(Exchange {
                request,
                timeout: self.http.timeout,
                max_response_bytes: self.http.max_response_bytes,
            })
            .await
            .map_err(|e| FederationError::Unreachable(e.to_string()))?;
        if !response.status().is_success() {
            return Err(FederationError::InvalidResponse(format!(
                "the user API answered {}",
                response.status().as_u16()
            )));
        }
        serde_json::from_slice(response.body())
            .map_err(|_| FederationError::InvalidResponse("the user API did not answer JSON".to_owned()))
    }
}

fn token_error<RE: std::error::Error + 'static, T: oauth2::ErrorResponse + 'static>(
    err: RequestTokenError<RE, T>,
) -> FederationError {
    match err {
        RequestTokenError::ServerResponse(response) => FederationError::UpstreamError(
            serde_json::to_value(&response)
                .ok()
                .and_then(|v| v.get("error").and_then(Value::as_str).map(str::to_owned))
                .unwrap_or_else(|| "error".to_owned()),
        ),
        RequestTokenError::Request(err) => FederationError::Unreachable(err.to_string()),
        RequestTokenError::Parse(err, _) => {
            FederationError::InvalidResponse(format!("token response: {err}"))
        }
        RequestTokenError::Other(text) => FederationError::InvalidResponse(format!("token response: {text}")),
    }
}

/// The claims of a compact JWT whose signature has been verified.
fn jwt_payload(jwt: &str) -> Result<Claims, FederationError> {
    let invalid = || FederationError::InvalidIdToken("unreadable payload".to_owned());
    let payload = jwt.split('.').nth(1).ok_or_else(invalid)?;
    let bytes = URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .map_err(|_| invalid())?;
    match serde_json::from_slice(&bytes) {
        Ok(Value::Object(claims)) => Ok(claims),
        _ => Err(invalid()),
    }
}
