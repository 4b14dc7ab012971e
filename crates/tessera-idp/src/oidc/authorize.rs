//! Authorization requests (RFC 6749 §4.1.1, OIDC Core §3.1.2.1, RFC 7636): parsed and
//! validated in the order that decides *where* an error may go. Until the client and its
//! `redirect_uri` are known good, errors are shown on a page — never redirected
//! (RFC 6749 §4.1.2.1; an open redirector otherwise). After that, errors go back to the
//! client in the redirect.

use std::collections::BTreeMap;

use tessera_proto::claims::{ClaimsRequest, MalformedClaims};
use tessera_proto::OAuthErrorCode;
use tessera_store::durable::{ClientRecord, ClientStore};
use tessera_store::StoreError;

use crate::clients::ClientAuth;
use crate::error::ErrorKind;

/// The `prompt` values we support (OIDC Core §3.1.2.1).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Prompt {
    pub none: bool,
    pub login: bool,
    pub consent: bool,
}

/// A validated authorization request.
#[derive(Debug, Clone)]
pub struct AuthorizeRequest {
    pub client: ClientRecord,
    pub redirect_uri: String,
    pub scope: Vec<String>,
    pub state: Option<String>,
    pub nonce: Option<String>,
    pub code_challenge: Option<String>,
    /// RFC 9449 §10: the thumbprint of the DPoP key the code is bound to.
    pub dpop_jkt: Option<String>,
    pub prompt: Prompt,
    pub max_age: Option<i64>,
    /// `acr_values` (OIDC Core §3.1.2.1), in order of preference; empty when not asked.
    pub acr_values: Vec<String>,
    pub login_hint: Option<String>,
    pub ui_locales: Option<String>,
    /// The `claims` parameter (OIDC Core §5.5), parsed.
    pub claims: Option<ClaimsRequest>,
    /// The request's parameters as received, carried through the login and consent pages.
    pub params: BTreeMap<String, String>,
    /// Not an authorization request but a sign-in for another hosted page (the device
    /// verification page): where the browser goes once signed in, instead of the client.
    pub continue_to: Option<String>,
}

/// The carried parameter that marks a hosted sign-in as one for the device verification
/// page: the user code being verified. Dropped from real authorization requests.
pub const DEVICE_SIGN_IN: &str = "device_user_code";

impl AuthorizeRequest {
    /// A sign-in through the hosted login (with the second factor `client`'s policy asks
    /// for) that continues to the device verification page for `user_code`: nothing is
    /// redirected to the client, and no code is issued.
    pub fn device_sign_in(client: ClientRecord, user_code: &str, ui_locales: Option<String>) -> Self {
        let mut params = BTreeMap::new();
        params.insert("client_id".to_owned(), client.client_id.clone());
        params.insert(DEVICE_SIGN_IN.to_owned(), user_code.to_owned());
        if let Some(locales) = &ui_locales {
            params.insert("ui_locales".to_owned(), locales.clone());
        }
        let continue_to = format!(
            "{}?{}",
            tessera_proto::paths::DEVICE,
            url::form_urlencoded::Serializer::new(String::new())
                .append_pair("user_code", user_code)
                .finish()
        );
        AuthorizeRequest {
            client,
            redirect_uri: String::new(),
            scope: Vec::new(),
            state: None,
            nonce: None,
            code_challenge: None,
            dpop_jkt: None,
            prompt: Prompt::default(),
            max_age: None,
            acr_values: Vec::new(),
            login_hint: None,
            ui_locales,
            claims: None,
            params,
            continue_to: Some(continue_to),
        }
    }

    /// Whether a sign-in whose methods are `amr` (space-separated) meets `acr_values`.
    /// Unknown classes are ignored (OIDC Core: a voluntary claim); a request for the MFA
    /// class is met only by a sign-in with a second factor.
    pub fn acr_met_by(&self, amr: &str) -> bool {
        let known: Vec<&str> = self
            .acr_values
            .iter()
            .map(String::as_str)
            .filter(|v| tessera_proto::acr::SUPPORTED.contains(v))
            .collect();
        let amr: Vec<&str> = amr.split_ascii_whitespace().collect();
        tessera_proto::acr::satisfies(tessera_proto::acr::of(&amr), &known)
    }

    pub fn is_openid(&self) -> bool {
        self.scope.iter().any(|s| s == "openid")
    }

    pub fn scope_string(&self) -> String {
        self.scope.join(" ")
    }

    /// The subject the client asked the ID token to be about (`claims.id_token.sub.value`,
    /// OIDC Core §5.5.1): only that user may be answered.
    pub fn requested_subject(&self) -> Option<&str> {
        self.claims
            .as_ref()?
            .id_token
            .get("sub")?
            .value
            .as_ref()?
            .as_str()
    }
}

/// Where an invalid request's error goes.
#[derive(Debug)]
pub enum AuthorizeError {
    /// The client or redirect URI is not trustworthy: show a page.
    Page(ErrorKind),
    /// Tell the client, at its validated redirect URI.
    Redirect {
        redirect_uri: String,
        state: Option<String>,
        error: OAuthErrorCode,
        description: &'static str,
    },
    /// Tell the client, but nothing trusted says where (a request object refused when the
    /// query names no registered `redirect_uri`): an error page for a browser, the error
    /// itself at the PAR endpoint.
    Unredirectable {
        error: OAuthErrorCode,
        description: &'static str,
    },
    Store(StoreError),
}

impl From<StoreError> for AuthorizeError {
    fn from(err: StoreError) -> Self {
        AuthorizeError::Store(err)
    }
}

/// Parameters of an authorization request from a query string or form body; a parameter
/// present twice is remembered so it can be refused once the redirect URI is known.
pub fn parse_params(raw: &[u8]) -> (BTreeMap<String, String>, bool) {
    let mut params = BTreeMap::new();
    let mut repeated = false;
    for (key, value) in url::form_urlencoded::parse(raw) {
        if value.is_empty() {
            continue;
        }
        if params.insert(key.into_owned(), value.into_owned()).is_some() {
            repeated = true;
        }
    }
    (params, repeated)
}

/// A request object passed by value (`request`; OpenID Connect Core §6.1, RFC 9101 §5)
/// replaced by the parameters it carries, which take precedence over the query's; the
/// result is then validated as any request is. A client that registered no
/// `request_object_signing_alg` gets `request_not_supported`; an object that does not
/// verify (signature, registered algorithm, `iss`, `aud`, `exp`, `nbf`), or whose
/// `client_id` or `response_type` differs from the query's, gets `invalid_request_object`.
/// Errors go to the query's `redirect_uri` when it is registered, to a page otherwise.
pub async fn with_request_object(
    mut params: BTreeMap<String, String>,
    clients: &dyn ClientStore,
    client_auth: &ClientAuth,
) -> Result<BTreeMap<String, String>, AuthorizeError> {
    let Some(jwt) = params.remove("request") else {
        return Ok(params);
    };
    let Some(client_id) = params.get("client_id").cloned() else {
        return Err(AuthorizeError::Page(ErrorKind::InvalidRequest(
            "client_id is missing".to_owned(),
        )));
    };
    if client_id.len() > 255 {
        return Err(AuthorizeError::Page(ErrorKind::InvalidClient));
    }
    let client = clients
        .client(&client_id)
        .await?
        .ok_or(AuthorizeError::Page(ErrorKind::InvalidClient))?;
    let redirect_uri = params
        .get("redirect_uri")
        .filter(|uri| client.redirect_uris.contains(uri))
        .cloned();
    let state = params.get("state").cloned();
    let fail = |error: OAuthErrorCode, description: &'static str| match &redirect_uri {
        Some(uri) => AuthorizeError::Redirect {
            redirect_uri: uri.clone(),
            state: state.clone(),
            error,
            description,
        },
        None => AuthorizeError::Unredirectable { error, description },
    };
    if params.contains_key("request_uri") {
        return Err(fail(
            OAuthErrorCode::InvalidRequest,
            "request and request_uri cannot be sent together",
        ));
    }
    if client.request_object_signing_alg.is_none() {
        return Err(fail(
            OAuthErrorCode::RequestNotSupported,
            "this client registered no request_object_signing_alg",
        ));
    }
    let claims = client_auth.request_object(&client, &jwt).await.map_err(|err| {
        tracing::info!(client_id = %client.client_id, reason = %err, "request object refused");
        fail(
            OAuthErrorCode::InvalidRequestObject,
            "the request object is invalid",
        )
    })?;
    for name in ["client_id", "response_type"] {
        match (claims.get(name), params.get(name)) {
            (None, _) => {}
            (Some(serde_json::Value::String(inner)), Some(outer)) if inner == outer => {}
            (Some(serde_json::Value::String(_)), None) => {}
            (Some(_), _) => {
                return Err(fail(
                    OAuthErrorCode::InvalidRequestObject,
                    "the request object's client_id or response_type differs from the request's",
                ))
            }
        }
    }
    for (name, value) in claims {
        let text = match value {
            serde_json::Value::String(text) => text,
            // Numbers (max_age), booleans, and JSON members such as `claims` as their JSON.
            other => other.to_string(),
        };
        params.insert(name, text);
    }
    Ok(params)
}

/// The longest value accepted for any parameter (a URL is rarely longer; this keeps pages
/// and stored codes small).
const MAX_PARAM_LEN: usize = 2048;

pub async fn validate(
    mut params: BTreeMap<String, String>,
    repeated: bool,
    clients: &dyn ClientStore,
) -> Result<AuthorizeRequest, AuthorizeError> {
    let page = |detail: &str| AuthorizeError::Page(ErrorKind::InvalidRequest(detail.to_owned()));
    // Only the device page's own sign-in carries this (see `AuthorizeRequest::device_sign_in`).
    params.remove(DEVICE_SIGN_IN);
    // 1. The client.
    let client_id = params
        .get("client_id")
        .ok_or_else(|| page("client_id is missing"))?;
    if client_id.len() > 255 {
        return Err(AuthorizeError::Page(ErrorKind::InvalidClient));
    }
    let client = clients
        .client(client_id)
        .await?
        .ok_or(AuthorizeError::Page(ErrorKind::InvalidClient))?;
    // 2. The redirect URI: exactly one of the registered ones (no pattern, no prefix).
    let redirect_uri = match params.get("redirect_uri") {
        Some(uri) if client.redirect_uris.iter().any(|r| r == uri) => uri.clone(),
        Some(_) => return Err(AuthorizeError::Page(ErrorKind::InvalidRedirectUri)),
        None => return Err(AuthorizeError::Page(ErrorKind::InvalidRedirectUri)),
    };
    let state = params.get("state").cloned();
    let fail = |error: OAuthErrorCode, description: &'static str| AuthorizeError::Redirect {
        redirect_uri: redirect_uri.clone(),
        state: state.clone(),
        error,
        description,
    };
    // 3. From here on the client hears about its mistakes.
    if repeated {
        return Err(fail(OAuthErrorCode::InvalidRequest, "a parameter is repeated"));
    }
    if params.values().any(|v| v.len() > MAX_PARAM_LEN) {
        return Err(fail(OAuthErrorCode::InvalidRequest, "a parameter is too long"));
    }
    if params.contains_key("request") {
        return Err(fail(
            OAuthErrorCode::RequestNotSupported,
            "request objects are not supported",
        ));
    }
    if params.contains_key("request_uri") {
        return Err(fail(
            OAuthErrorCode::RequestUriNotSupported,
            "request_uri is not supported",
        ));
    }
    match params.get("response_type").map(String::as_str) {
        Some("code") => {}
        Some(_) => {
            return Err(fail(
                OAuthErrorCode::UnsupportedResponseType,
                "only response_type=code is supported",
            ))
        }
        None => return Err(fail(OAuthErrorCode::InvalidRequest, "response_type is missing")),
    }
    if params.get("response_mode").is_some_and(|m| m != "query") {
        return Err(fail(
            OAuthErrorCode::InvalidRequest,
            "only response_mode=query is supported",
        ));
    }
    if !client.grant_types.iter().any(|g| g == "authorization_code") {
        return Err(fail(
            OAuthErrorCode::UnauthorizedClient,
            "the client may not use the authorization code flow",
        ));
    }
    // 4. Scope: within what the client registered.
    let mut scope: Vec<String> = Vec::new();
    for s in params
        .get("scope")
        .map(String::as_str)
        .unwrap_or("")
        .split_ascii_whitespace()
    {
        if !client.scopes.iter().any(|allowed| allowed == s) {
            return Err(fail(
                OAuthErrorCode::InvalidScope,
                "a requested scope is not allowed for this client",
            ));
        }
        if !scope.iter().any(|have| have == s) {
            scope.push(s.to_owned());
        }
    }
    if scope.is_empty() {
        return Err(fail(OAuthErrorCode::InvalidScope, "scope is missing"));
    }
    // 5. PKCE (RFC 7636; OAuth 2.1): S256 only, required for public clients.
    let code_challenge = params.get("code_challenge").cloned();
    match (
        code_challenge.as_deref(),
        params.get("code_challenge_method").map(String::as_str),
    ) {
        (None, None) if client.is_public() => {
            return Err(fail(
                OAuthErrorCode::InvalidRequest,
                "public clients must use PKCE (code_challenge with S256)",
            ))
        }
        (None, None) => {}
        (Some(challenge), Some("S256")) if is_s256_challenge(challenge) => {}
        (Some(_), Some("S256")) => {
            return Err(fail(
                OAuthErrorCode::InvalidRequest,
                "code_challenge must be 43 base64url characters",
            ))
        }
        (Some(_), _) => {
            return Err(fail(
                OAuthErrorCode::InvalidRequest,
                "code_challenge_method must be S256",
            ))
        }
        (None, Some(_)) => return Err(fail(OAuthErrorCode::InvalidRequest, "code_challenge is missing")),
    }
    // 6. `dpop_jkt` (RFC 9449 §10): a SHA-256 JWK thumbprint, 43 base64url characters.
    let dpop_jkt = params.get("dpop_jkt").cloned();
    if dpop_jkt.as_deref().is_some_and(|jkt| !is_s256_challenge(jkt)) {
        return Err(fail(
            OAuthErrorCode::InvalidRequest,
            "dpop_jkt must be a SHA-256 JWK thumbprint (43 base64url characters)",
        ));
    }
    // 7. prompt and max_age.
    let mut prompt = Prompt::default();
    for value in params
        .get("prompt")
        .map(String::as_str)
        .unwrap_or("")
        .split_ascii_whitespace()
    {
        match value {
            "none" => prompt.none = true,
            "login" => prompt.login = true,
            "consent" => prompt.consent = true,
            _ => return Err(fail(OAuthErrorCode::InvalidRequest, "unsupported prompt value")),
        }
    }
    if prompt.none && (prompt.login || prompt.consent) {
        return Err(fail(
            OAuthErrorCode::InvalidRequest,
            "prompt=none cannot be combined with other values",
        ));
    }
    let max_age = match params.get("max_age") {
        None => None,
        Some(text) => match text.parse::<i64>() {
            Ok(age) if age >= 0 => Some(age),
            _ => {
                return Err(fail(
                    OAuthErrorCode::InvalidRequest,
                    "max_age must be a non-negative integer",
                ))
            }
        },
    };
    // 7. display (OIDC Core §3.1.2.1): any of the four is fine, the pages fit every screen.
    if params
        .get("display")
        .is_some_and(|d| !tessera_proto::discovery::DISPLAY_VALUES.contains(&d.as_str()))
    {
        return Err(fail(OAuthErrorCode::InvalidRequest, "unsupported display value"));
    }
    // 8. claims (OIDC Core §5.5). An `acr` asked for there counts as `acr_values` when
    // those are not given (§5.5.1.1). `claims_locales` is accepted and has nothing to
    // choose from: no claim is kept in more than one language (§5.2).
    let claims = match params.get("claims") {
        None => None,
        Some(text) => Some(
            ClaimsRequest::parse(text)
                .map_err(|MalformedClaims(why)| fail(OAuthErrorCode::InvalidRequest, why))?,
        ),
    };
    let mut acr_values: Vec<String> = params
        .get("acr_values")
        .map(|values| values.split_ascii_whitespace().map(str::to_owned).collect())
        .unwrap_or_default();
    if acr_values.is_empty() {
        if let Some(acr) = claims.as_ref().and_then(|c| c.id_token.get("acr")) {
            acr_values = acr
                .wanted()
                .iter()
                .filter_map(|v| v.as_str())
                .map(str::to_owned)
                .collect();
        }
    }
    Ok(AuthorizeRequest {
        redirect_uri: redirect_uri.clone(),
        scope,
        state: state.clone(),
        nonce: params.get("nonce").cloned(),
        code_challenge,
        dpop_jkt,
        prompt,
        max_age,
        acr_values,
        login_hint: params.get("login_hint").cloned(),
        ui_locales: params.get("ui_locales").cloned(),
        claims,
        client,
        params,
        continue_to: None,
    })
}

/// A S256 challenge is BASE64URL(SHA-256(verifier)): exactly 43 characters.
fn is_s256_challenge(challenge: &str) -> bool {
    challenge.len() == 43
        && challenge
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// A code verifier per RFC 7636 §4.1: 43–128 unreserved characters.
pub fn is_code_verifier(verifier: &str) -> bool {
    (43..=128).contains(&verifier.len())
        && verifier
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b))
}

/// Appends parameters to a validated redirect URI (keeping its own query, RFC 6749 §3.1.2).
pub fn redirect_with(redirect_uri: &str, params: &[(&str, &str)]) -> String {
    match url::Url::parse(redirect_uri) {
        Ok(mut url) => {
            {
                let mut query = url.query_pairs_mut();
                for (key, value) in params {
                    query.append_pair(key, value);
                }
            }
            url.to_string()
        }
        // Registered URIs are validated at registration; this is not reached.
        Err(_) => redirect_uri.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeated_parameters_are_noticed_and_empty_ones_dropped() {
        let (params, repeated) = parse_params(b"a=1&b=&a=2");
        assert!(repeated);
        assert!(!params.contains_key("b"));
        let (_, repeated) = parse_params(b"a=1&b=2");
        assert!(!repeated);
    }

    #[test]
    fn redirects_keep_the_registered_query_and_encode_values() {
        assert_eq!(
            redirect_with("https://app.example/cb?x=1", &[("code", "a b"), ("state", "s&t")]),
            "https://app.example/cb?x=1&code=a+b&state=s%26t"
        );
    }

    #[test]
    fn verifiers_and_challenges_have_their_rfc_shapes() {
        assert!(is_code_verifier(&"a".repeat(43)));
        assert!(!is_code_verifier(&"a".repeat(42)));
        assert!(!is_code_verifier(&format!("{}/", "a".repeat(43))));
        assert!(is_s256_challenge("E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"));
        assert!(!is_s256_challenge("E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-c"));
    }
}
