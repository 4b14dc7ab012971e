//! The rules a client must satisfy to be stored (see the registry's module comment), as
//! one pure function from a [`ClientSpec`] to a normalised [`ValidClient`].

use tessera_store::durable::ClientRecord;

use tessera_proto::client_auth::{
    assertion_algs, CLIENT_SECRET_JWT, CLIENT_SECRET_JWT_ALGS, CONFIDENTIAL_AUTH_METHODS, PRIVATE_KEY_JWT,
    PRIVATE_KEY_JWT_ALGS,
};

use super::{ClientSpec, RegistryError, DEFAULT_CHANNEL, DEFAULT_SCOPE, GRANT_TYPES};
use crate::clients::check_jwks;

/// The longest URI accepted (the authorization endpoint accepts no longer parameter).
const MAX_URI_LEN: usize = 2048;
/// The longest client id (client authentication refuses longer ones).
const MAX_CLIENT_ID_LEN: usize = 128;
const MAX_NAME_LEN: usize = 200;
/// Ten years: a sanity bound on token lifetimes.
const MAX_TTL_SECS: i64 = 315_360_000;
/// The longest inline JWK set, serialised.
const MAX_JWKS_LEN: usize = 65_536;
/// Loopback hosts where `http` redirect URIs are allowed (RFC 8252 §7.3, §8.3).
const LOOPBACK: &str = "127.0.0.1, [::1], localhost";

/// A spec that passed validation, normalised (lists without duplicates, origins
/// serialised as browsers send them).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidClient {
    pub name: String,
    pub public: bool,
    pub token_endpoint_auth_method: String,
    pub token_endpoint_auth_signing_alg: Option<String>,
    /// The inline JWK set, compact JSON.
    pub jwks: Option<String>,
    pub jwks_uri: Option<String>,
    pub request_object_signing_alg: Option<String>,
    pub grant_types: Vec<String>,
    pub scopes: Vec<String>,
    pub redirect_uris: Vec<String>,
    pub post_logout_redirect_uris: Vec<String>,
    pub backchannel_logout_uri: Option<String>,
    pub allowed_cors_origins: Vec<String>,
    pub first_party: bool,
    pub channel: String,
    pub access_token_ttl_secs: Option<i64>,
    pub refresh_token_ttl_secs: Option<i64>,
    pub mfa_policy: Option<String>,
    pub require_pushed_authorization_requests: bool,
}

impl ValidClient {
    pub(super) fn into_record(
        self,
        client_id: String,
        secret_hash: Option<String>,
        created_at: i64,
    ) -> ClientRecord {
        ClientRecord {
            client_id,
            name: self.name,
            secret_hash,
            token_endpoint_auth_method: self.token_endpoint_auth_method,
            token_endpoint_auth_signing_alg: self.token_endpoint_auth_signing_alg,
            jwks: self.jwks,
            jwks_uri: self.jwks_uri,
            secret_sealed: None,
            request_object_signing_alg: self.request_object_signing_alg,
            channel: self.channel,
            grant_types: self.grant_types,
            scopes: self.scopes,
            redirect_uris: self.redirect_uris,
            post_logout_redirect_uris: self.post_logout_redirect_uris,
            allowed_cors_origins: self.allowed_cors_origins,
            backchannel_logout_uri: self.backchannel_logout_uri,
            first_party: self.first_party,
            access_token_ttl_secs: self.access_token_ttl_secs,
            refresh_token_ttl_secs: self.refresh_token_ttl_secs,
            mfa_policy: self.mfa_policy,
            require_pushed_authorization_requests: self.require_pushed_authorization_requests,
            created_at,
            updated_at: created_at,
        }
    }
}

/// Checks a whole client against every rule; the first broken rule is the error.
pub fn validate(spec: &ClientSpec, channels: &[String]) -> Result<ValidClient, RegistryError> {
    if let Some(id) = &spec.client_id {
        check_client_id(id)?;
    }
    let name = check_name(spec.client_name.as_deref())?;

    let method = spec.token_endpoint_auth_method.as_deref();
    let public = spec.public || method == Some("none");
    let token_endpoint_auth_method = match (public, method) {
        (true, None | Some("none")) => "none".to_owned(),
        (true, Some(_)) => {
            return Err(RegistryError::invalid(
                "token_endpoint_auth_method",
                "a public client has no secret and authenticates with `none`",
            ))
        }
        (false, None) => CONFIDENTIAL_AUTH_METHODS[0].to_owned(),
        (false, Some(m)) if CONFIDENTIAL_AUTH_METHODS.contains(&m) => m.to_owned(),
        (false, Some(m)) => {
            return Err(RegistryError::invalid(
                "token_endpoint_auth_method",
                format!(
                    "`{m}` is not supported; use {}, or none for a public client",
                    CONFIDENTIAL_AUTH_METHODS.join(", ")
                ),
            ))
        }
    };
    let request_object_signing_alg = check_request_object_alg(spec, &token_endpoint_auth_method)?;
    let signs_with_keys = token_endpoint_auth_method == PRIVATE_KEY_JWT
        || request_object_signing_alg
            .as_deref()
            .is_some_and(|alg| PRIVATE_KEY_JWT_ALGS.contains(&alg));
    let (jwks, jwks_uri) = check_keys(spec, signs_with_keys)?;
    let token_endpoint_auth_signing_alg = match spec.token_endpoint_auth_signing_alg.as_deref() {
        None => None,
        Some(alg) if assertion_algs(&token_endpoint_auth_method).contains(&alg) => Some(alg.to_owned()),
        Some(alg) => {
            let allowed = assertion_algs(&token_endpoint_auth_method);
            return Err(RegistryError::invalid(
                "token_endpoint_auth_signing_alg",
                match allowed.is_empty() {
                    true => format!("`{token_endpoint_auth_method}` sends no signed assertion"),
                    false => format!(
                        "`{alg}` is not allowed for {token_endpoint_auth_method}; use {}",
                        allowed.join(", ")
                    ),
                },
            ));
        }
    };

    let grant_types = match &spec.grant_types {
        None => vec!["authorization_code".to_owned()],
        Some(list) => check_grant_types(list)?,
    };
    let has = |grant: &str| grant_types.iter().any(|g| g == grant);
    if has("password") && !spec.first_party {
        return Err(RegistryError::invalid(
            "grant_types",
            "the password grant is for first-party (legacy) clients only; set first_party",
        ));
    }
    if public && has("client_credentials") {
        return Err(RegistryError::invalid(
            "grant_types",
            "a public client cannot use client_credentials (it has no secret)",
        ));
    }

    let redirect_uris = unique(check_each(&spec.redirect_uris, |u| {
        check_redirect_uri("redirect_uris", u)
    })?);
    if has("authorization_code") && redirect_uris.is_empty() {
        return Err(RegistryError::invalid(
            "redirect_uris",
            "the authorization_code grant needs at least one redirect URI",
        ));
    }
    let post_logout_redirect_uris = unique(check_each(&spec.post_logout_redirect_uris, |u| {
        check_redirect_uri("post_logout_redirect_uris", u)
    })?);
    let backchannel_logout_uri = spec
        .backchannel_logout_uri
        .as_deref()
        .map(check_backchannel_uri)
        .transpose()?;
    let allowed_cors_origins = unique(check_each(&spec.allowed_cors_origins, check_origin)?);
    let scopes = check_scope(spec.scope.as_deref().unwrap_or(DEFAULT_SCOPE))?;

    let channel = spec.channel.clone().unwrap_or_else(|| DEFAULT_CHANNEL.to_owned());
    if !channels.contains(&channel) {
        return Err(RegistryError::invalid(
            "channel",
            format!("unknown channel `{channel}`; configured: {}", channels.join(", ")),
        ));
    }
    let access_token_ttl_secs = check_ttl("access_token_ttl_secs", spec.access_token_ttl_secs)?;
    let refresh_token_ttl_secs = check_ttl("refresh_token_ttl_secs", spec.refresh_token_ttl_secs)?;
    let mfa_policy = match spec.mfa_policy.as_deref() {
        None => None,
        Some(policy) if crate::config::MfaPolicy::parse(policy).is_some() => Some(policy.to_owned()),
        Some(_) => {
            return Err(RegistryError::invalid(
                "mfa_policy",
                "must be off, optional, adaptive or required (or null: the deployment's mfa.policy)",
            ))
        }
    };

    Ok(ValidClient {
        name,
        public,
        token_endpoint_auth_method,
        token_endpoint_auth_signing_alg,
        jwks,
        jwks_uri,
        request_object_signing_alg,
        grant_types,
        scopes,
        redirect_uris,
        post_logout_redirect_uris,
        backchannel_logout_uri,
        allowed_cors_origins,
        first_party: spec.first_party,
        channel,
        access_token_ttl_secs,
        refresh_token_ttl_secs,
        mfa_policy,
        require_pushed_authorization_requests: spec.require_pushed_authorization_requests,
    })
}

/// `none`, an asymmetric algorithm (the client then registers keys), or an HMAC for a
/// `client_secret_jwt` client (the only one whose secret the server can use).
fn check_request_object_alg(spec: &ClientSpec, method: &str) -> Result<Option<String>, RegistryError> {
    match spec.request_object_signing_alg.as_deref() {
        None => Ok(None),
        Some(alg) if alg == "none" || PRIVATE_KEY_JWT_ALGS.contains(&alg) => Ok(Some(alg.to_owned())),
        Some(alg) if CLIENT_SECRET_JWT_ALGS.contains(&alg) && method == CLIENT_SECRET_JWT => Ok(Some(alg.to_owned())),
        Some(alg) => Err(RegistryError::invalid(
            "request_object_signing_alg",
            format!(
                "`{alg}` is not allowed; use none, {} (with jwks or jwks_uri), or for a client_secret_jwt client {}",
                PRIVATE_KEY_JWT_ALGS.join(", "),
                CLIENT_SECRET_JWT_ALGS.join(", ")
            ),
        )),
    }
}

/// A client that signs with a key pair (`private_key_jwt`, or an asymmetric
/// `request_object_signing_alg`) registers its public keys — inline (`jwks`) or by URL
/// (`jwks_uri`, https; http only on a loopback host), exactly one of them; no other client
/// registers keys. Returns the inline set as compact JSON and the URI.
fn check_keys(
    spec: &ClientSpec,
    signs_with_keys: bool,
) -> Result<(Option<String>, Option<String>), RegistryError> {
    if !signs_with_keys {
        if spec.jwks.is_some() || spec.jwks_uri.is_some() {
            let field = if spec.jwks.is_some() { "jwks" } else { "jwks_uri" };
            return Err(RegistryError::invalid(
                field,
                "only clients that sign with a key pair (private_key_jwt, or an asymmetric request_object_signing_alg) register keys",
            ));
        }
        return Ok((None, None));
    }
    match (&spec.jwks, &spec.jwks_uri) {
        (Some(_), Some(_)) => Err(RegistryError::invalid(
            "jwks",
            "register keys inline (jwks) or by URL (jwks_uri), not both",
        )),
        (None, None) => Err(RegistryError::invalid(
            "jwks_uri",
            "a client that signs with a key pair needs its public keys: jwks or jwks_uri",
        )),
        (Some(document), None) => {
            let compact = document.to_string();
            if compact.len() > MAX_JWKS_LEN {
                return Err(RegistryError::invalid(
                    "jwks",
                    format!("a JWK set of at most {MAX_JWKS_LEN} bytes"),
                ));
            }
            check_jwks(document).map_err(|e| RegistryError::invalid("jwks", e.0))?;
            Ok((Some(compact), None))
        }
        (None, Some(uri)) => {
            let field = "jwks_uri";
            let url = parse_uri(field, uri)?;
            match url.scheme() {
                "https" => Ok((None, Some(uri.to_owned()))),
                "http" if is_loopback(&url) => Ok((None, Some(uri.to_owned()))),
                _ => Err(RegistryError::invalid(
                    field,
                    format!("`{uri}`: use https (http only on a loopback host: {LOOPBACK})"),
                )),
            }
        }
    }
}

fn check_client_id(id: &str) -> Result<(), RegistryError> {
    let ok = !id.is_empty()
        && id.len() <= MAX_CLIENT_ID_LEN
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._~-".contains(&b));
    match ok {
        true => Ok(()),
        false => Err(RegistryError::invalid(
            "client_id",
            format!("use 1 to {MAX_CLIENT_ID_LEN} letters, digits, `.`, `_`, `~` or `-`"),
        )),
    }
}

fn check_name(name: Option<&str>) -> Result<String, RegistryError> {
    let name = name.map(str::trim).unwrap_or("");
    if name.is_empty() {
        return Err(RegistryError::invalid("client_name", "a client needs a name"));
    }
    if name.chars().count() > MAX_NAME_LEN || name.chars().any(char::is_control) {
        return Err(RegistryError::invalid(
            "client_name",
            format!("at most {MAX_NAME_LEN} characters, no control characters"),
        ));
    }
    Ok(name.to_owned())
}

fn check_grant_types(list: &[String]) -> Result<Vec<String>, RegistryError> {
    if list.is_empty() {
        return Err(RegistryError::invalid(
            "grant_types",
            "at least one grant type is needed",
        ));
    }
    let mut grants = Vec::new();
    for grant in list {
        if grant == "implicit" {
            return Err(RegistryError::invalid(
                "grant_types",
                "the implicit grant is not offered (OAuth 2.1 and RFC 9700 drop it); use authorization_code with PKCE",
            ));
        }
        if !GRANT_TYPES.contains(&grant.as_str()) {
            return Err(RegistryError::invalid(
                "grant_types",
                format!("unknown grant type `{grant}`; use {}", GRANT_TYPES.join(", ")),
            ));
        }
        grants.push(grant.clone());
    }
    Ok(unique(grants))
}

/// RFC 6749 §3.3: `scope-token = 1*( %x21 / %x23-5B / %x5D-7E )`, separated by spaces.
fn check_scope(scope: &str) -> Result<Vec<String>, RegistryError> {
    let mut scopes = Vec::new();
    for token in scope.split(' ').filter(|t| !t.is_empty()) {
        let ok = token.len() <= 128
            && token
                .bytes()
                .all(|b| b == 0x21 || (0x23..=0x5B).contains(&b) || (0x5D..=0x7E).contains(&b));
        if !ok {
            return Err(RegistryError::invalid(
                "scope",
                "scope values are space-separated tokens of visible ASCII characters other than `\"` and `\\`",
            ));
        }
        scopes.push(token.to_owned());
    }
    Ok(unique(scopes))
}

fn check_ttl(field: &'static str, ttl: Option<i64>) -> Result<Option<i64>, RegistryError> {
    match ttl {
        Some(secs) if secs <= 0 || secs > MAX_TTL_SECS => Err(RegistryError::invalid(
            field,
            format!("must be between 1 and {MAX_TTL_SECS} seconds"),
        )),
        other => Ok(other),
    }
}

fn check_each(
    list: &[String],
    check: impl Fn(&str) -> Result<String, RegistryError>,
) -> Result<Vec<String>, RegistryError> {
    list.iter().map(|item| check(item)).collect()
}

/// The list without repeats, in first-seen order.
fn unique(list: Vec<String>) -> Vec<String> {
    let mut out: Vec<String> = Vec::with_capacity(list.len());
    for item in list {
        if !out.contains(&item) {
            out.push(item);
        }
    }
    out
}

fn is_loopback(url: &url::Url) -> bool {
    match url.host() {
        Some(url::Host::Ipv4(ip)) => ip == std::net::Ipv4Addr::LOCALHOST,
        Some(url::Host::Ipv6(ip)) => ip == std::net::Ipv6Addr::LOCALHOST,
        Some(url::Host::Domain(domain)) => domain.eq_ignore_ascii_case("localhost"),
        None => false,
    }
}

/// A private-use URI scheme of a native app: a reversed domain name such as
/// `com.example.app` (RFC 8252 §7.1).
fn is_private_use_scheme(scheme: &str) -> bool {
    scheme.contains('.') && scheme.split('.').all(|label| !label.is_empty())
}

/// The checks every registered URI passes; returns the parsed URI.
fn parse_uri(field: &'static str, uri: &str) -> Result<url::Url, RegistryError> {
    let fail = |reason: &str| Err(RegistryError::invalid(field, format!("`{uri}`: {reason}")));
    if uri.is_empty() {
        return Err(RegistryError::invalid(field, "an empty URI"));
    }
    if uri.len() > MAX_URI_LEN {
        return Err(RegistryError::invalid(
            field,
            format!("a URI longer than {MAX_URI_LEN} characters"),
        ));
    }
    if uri.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return fail("contains whitespace or control characters");
    }
    if uri.contains('*') {
        return fail("wildcards are not allowed; register every URI exactly");
    }
    if uri.contains('#') {
        return fail("must not have a fragment");
    }
    let Ok(url) = url::Url::parse(uri) else {
        return fail("not an absolute URI");
    };
    if !url.username().is_empty() || url.password().is_some() {
        return fail("must not contain credentials");
    }
    if matches!(url.scheme(), "http" | "https") {
        let prefix = format!("{}://", url.scheme());
        if !uri
            .get(..prefix.len())
            .is_some_and(|p| p.eq_ignore_ascii_case(&prefix))
            || url.host().is_none()
        {
            return fail("not an absolute URI with a host");
        }
    }
    Ok(url)
}

/// A redirect or post-logout redirect URI (compared exactly at use, so stored as given).
fn check_redirect_uri(field: &'static str, uri: &str) -> Result<String, RegistryError> {
    let url = parse_uri(field, uri)?;
    match url.scheme() {
        "https" => {}
        "http" if is_loopback(&url) => {}
        "http" => {
            return Err(RegistryError::invalid(
                field,
                format!("`{uri}`: http is allowed only for loopback hosts ({LOOPBACK}); use https"),
            ))
        }
        scheme if is_private_use_scheme(scheme) => {}
        _ => {
            return Err(RegistryError::invalid(
                field,
                format!(
                    "`{uri}`: use https, http on a loopback host ({LOOPBACK}), or a reverse-domain private-use scheme such as com.example.app:/callback"
                ),
            ))
        }
    }
    Ok(uri.to_owned())
}

fn check_backchannel_uri(uri: &str) -> Result<String, RegistryError> {
    let field = "backchannel_logout_uri";
    let url = parse_uri(field, uri)?;
    match url.scheme() {
        "https" => Ok(uri.to_owned()),
        "http" if is_loopback(&url) => Ok(uri.to_owned()),
        _ => Err(RegistryError::invalid(
            field,
            format!("`{uri}`: use https (http only on a loopback host: {LOOPBACK})"),
        )),
    }
}

/// A CORS origin, `scheme://host[:port]`; stored as browsers serialise it in `Origin`.
fn check_origin(origin: &str) -> Result<String, RegistryError> {
    let field = "allowed_cors_origins";
    if origin.trim() == "*" {
        return Err(RegistryError::invalid(
            field,
            "`*` is not allowed; list each origin",
        ));
    }
    let url = parse_uri(field, origin)?;
    let fail = |reason: &str| Err(RegistryError::invalid(field, format!("`{origin}`: {reason}")));
    if !matches!(url.scheme(), "http" | "https") {
        return fail("an origin is https://host[:port]");
    }
    if url.scheme() == "http" && !is_loopback(&url) {
        return fail(&format!(
            "http is allowed only for loopback hosts ({LOOPBACK}); use https"
        ));
    }
    if url.path() != "/" || url.query().is_some() {
        return fail("an origin has no path or query: scheme://host[:port]");
    }
    Ok(url.origin().ascii_serialization())
}

/// A readable id: the name's slug and eight random characters (`billing-portal-k3x9q2mz`).
pub(super) fn generated_client_id(name: &str) -> String {
    let mut slug = String::new();
    for c in name.chars().flat_map(char::to_lowercase) {
        if c.is_ascii_alphanumeric() {
            slug.push(c);
        } else if !slug.is_empty() && !slug.ends_with('-') {
            slug.push('-');
        }
        if slug.len() >= 24 {
            break;
        }
    }
    let slug = slug.trim_end_matches('-');
    let slug = if slug.is_empty() { "client" } else { slug };
    // 32 symbols without look-alikes (no 0/o, 1/l): 5 bits per character, unbiased.
    const ALPHABET: &[u8; 32] = b"abcdefghijkmnpqrstuvwxyz23456789";
    let mut bytes = [0u8; 8];
    if aws_lc_rs::rand::fill(&mut bytes).is_err() {
        tracing::error!("system randomness unavailable");
    }
    let suffix: String = bytes
        .iter()
        .map(|b| char::from(ALPHABET[usize::from(b & 31)]))
        .collect();
    format!("{slug}-{suffix}")
}

#[cfg(test)]
mod tests;
