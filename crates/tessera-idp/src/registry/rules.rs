//! The rules a client must satisfy to be stored (see the registry's module comment), as
//! one pure function from a [`ClientSpec`] to a normalised [`ValidClient`].

use tessera_store::durable::ClientRecord;

use tessera_proto::client_auth::{assertion_algs, CONFIDENTIAL_AUTH_METHODS, PRIVATE_KEY_JWT};

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
    let (jwks, jwks_uri) = check_keys(spec, &token_endpoint_auth_method)?;
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

/// A `private_key_jwt` client registers its public keys — inline (`jwks`) or by URL
/// (`jwks_uri`, https; http only on a loopback host), exactly one of them; no other client
/// registers keys. Returns the inline set as compact JSON and the URI.
fn check_keys(spec: &ClientSpec, method: &str) -> Result<(Option<String>, Option<String>), RegistryError> {
    if method != PRIVATE_KEY_JWT {
        if spec.jwks.is_some() || spec.jwks_uri.is_some() {
            let field = if spec.jwks.is_some() { "jwks" } else { "jwks_uri" };
            return Err(RegistryError::invalid(
                field,
                format!("only private_key_jwt clients register keys (this one uses {method})"),
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
            "a private_key_jwt client needs its public keys: jwks or jwks_uri",
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
mod tests {
    use super::*;
    use crate::registry::{ClientPatch, ClientView};

    fn channels() -> Vec<String> {
        ["web", "mobile", "partner"]
            .iter()
            .map(|s| s.to_string())
            .collect()
    }

    fn web_app() -> ClientSpec {
        ClientSpec {
            client_name: Some("Web app".into()),
            redirect_uris: vec!["https://app.example/cb".into()],
            ..ClientSpec::default()
        }
    }

    fn field_of(result: Result<ValidClient, RegistryError>) -> &'static str {
        match result {
            Err(RegistryError::Invalid { field, .. }) => field,
            other => panic!("expected an invalid field, got {other:?}"),
        }
    }

    fn with_redirect(uri: &str) -> ClientSpec {
        ClientSpec {
            redirect_uris: vec![uri.into()],
            ..web_app()
        }
    }

    #[test]
    fn a_minimal_web_app_gets_the_defaults() {
        let valid = validate(&web_app(), &channels()).unwrap();
        assert_eq!(valid.name, "Web app");
        assert!(!valid.public);
        assert_eq!(valid.token_endpoint_auth_method, "client_secret_basic");
        assert_eq!(valid.grant_types, ["authorization_code"]);
        assert_eq!(valid.scopes, ["openid"]);
        assert_eq!(valid.channel, "web");
        assert!(!valid.first_party);
    }

    #[test]
    fn redirect_uris_must_be_https_loopback_http_or_a_private_use_scheme() {
        for good in [
            "https://app.example/cb",
            "https://app.example:8443/cb?x=1",
            "http://127.0.0.1:4000/cb",
            "http://[::1]/cb",
            "http://localhost:3000/callback",
            "com.example.app:/oauth2redirect",
            "com.example.app://cb",
        ] {
            assert!(
                validate(&with_redirect(good), &channels()).is_ok(),
                "{good} was refused"
            );
        }
        for bad in [
            "http://app.example/cb",
            "http://127.0.0.2/cb",
            "https://app.example/cb#frag",
            "https://*.example.com/cb",
            "https://app.example/*",
            "/cb",
            "app.example/cb",
            "https:app.example/cb",
            "myapp:/cb",
            "javascript:alert(1)",
            "data:text/html,hi",
            "https://user:pw@app.example/cb",
            " https://app.example/cb",
            "",
        ] {
            assert_eq!(
                field_of(validate(&with_redirect(bad), &channels())),
                "redirect_uris",
                "{bad} was accepted"
            );
        }
    }

    #[test]
    fn refusals_name_the_value_and_the_rule() {
        let Err(err) = validate(&with_redirect("http://evil.example/cb"), &channels()) else {
            panic!()
        };
        let text = err.to_string();
        assert!(text.starts_with("invalid redirect_uris:"), "{text}");
        assert!(
            text.contains("http://evil.example/cb") && text.contains("loopback"),
            "{text}"
        );
    }

    #[test]
    fn post_logout_uris_follow_the_redirect_rules() {
        let spec = ClientSpec {
            post_logout_redirect_uris: vec!["https://app.example/bye#x".into()],
            ..web_app()
        };
        assert_eq!(
            field_of(validate(&spec, &channels())),
            "post_logout_redirect_uris"
        );
        let spec = ClientSpec {
            post_logout_redirect_uris: vec!["http://localhost/bye".into()],
            ..web_app()
        };
        assert!(validate(&spec, &channels()).is_ok());
    }

    #[test]
    fn backchannel_logout_is_https_or_loopback_http() {
        let with = |uri: &str| ClientSpec {
            backchannel_logout_uri: Some(uri.into()),
            ..web_app()
        };
        assert!(validate(&with("https://app.example/logout"), &channels()).is_ok());
        assert!(validate(&with("http://127.0.0.1:9000/logout"), &channels()).is_ok());
        for bad in [
            "http://app.example/logout",
            "com.example.app:/logout",
            "https://app.example/l#f",
            "logout",
        ] {
            assert_eq!(
                field_of(validate(&with(bad), &channels())),
                "backchannel_logout_uri",
                "{bad}"
            );
        }
    }

    #[test]
    fn cors_entries_are_origins_stored_as_browsers_send_them() {
        let with = |origin: &str| ClientSpec {
            allowed_cors_origins: vec![origin.into()],
            ..web_app()
        };
        let valid = validate(&with("https://App.Example:443/"), &channels()).unwrap();
        assert_eq!(valid.allowed_cors_origins, ["https://app.example"]);
        let valid = validate(&with("http://localhost:3000"), &channels()).unwrap();
        assert_eq!(valid.allowed_cors_origins, ["http://localhost:3000"]);
        for bad in [
            "*",
            "https://*.example.com",
            "https://app.example/path",
            "https://app.example?x=1",
            "http://app.example",
            "app.example",
            "ftp://app.example",
        ] {
            assert_eq!(
                field_of(validate(&with(bad), &channels())),
                "allowed_cors_origins",
                "{bad}"
            );
        }
    }

    #[test]
    fn grant_types_are_known_and_the_password_grant_is_first_party_only() {
        let with = |grants: &[&str], first_party: bool| ClientSpec {
            grant_types: Some(grants.iter().map(|g| g.to_string()).collect()),
            first_party,
            ..web_app()
        };
        assert_eq!(
            field_of(validate(&with(&["implicit"], false), &channels())),
            "grant_types"
        );
        assert_eq!(
            field_of(validate(&with(&["device_code"], false), &channels())),
            "grant_types"
        );
        assert_eq!(field_of(validate(&with(&[], false), &channels())), "grant_types");
        assert_eq!(
            field_of(validate(&with(&["password"], false), &channels())),
            "grant_types"
        );
        let valid = validate(
            &with(&["password", "refresh_token", "password"], true),
            &channels(),
        )
        .unwrap();
        assert_eq!(valid.grant_types, ["password", "refresh_token"]);
    }

    #[test]
    fn the_authorization_code_grant_needs_a_redirect_uri() {
        let spec = ClientSpec {
            redirect_uris: vec![],
            ..web_app()
        };
        assert_eq!(field_of(validate(&spec, &channels())), "redirect_uris");
        let service = ClientSpec {
            client_name: Some("Batch job".into()),
            grant_types: Some(vec!["client_credentials".into()]),
            ..ClientSpec::default()
        };
        assert!(validate(&service, &channels()).is_ok());
    }

    #[test]
    fn public_clients_authenticate_with_none_and_never_use_client_credentials() {
        let public = ClientSpec {
            public: true,
            ..web_app()
        };
        let valid = validate(&public, &channels()).unwrap();
        assert!(valid.public);
        assert_eq!(valid.token_endpoint_auth_method, "none");
        // `none` alone makes a client public (RFC 7591).
        let by_method = ClientSpec {
            token_endpoint_auth_method: Some("none".into()),
            ..web_app()
        };
        assert!(validate(&by_method, &channels()).unwrap().public);
        let with_secret_method = ClientSpec {
            token_endpoint_auth_method: Some("client_secret_post".into()),
            ..public.clone()
        };
        assert_eq!(
            field_of(validate(&with_secret_method, &channels())),
            "token_endpoint_auth_method"
        );
        let machine = ClientSpec {
            grant_types: Some(vec!["client_credentials".into()]),
            ..public
        };
        assert_eq!(field_of(validate(&machine, &channels())), "grant_types");
    }

    #[test]
    fn device_clients_need_no_redirect_uri_and_may_be_public() {
        let tv = ClientSpec {
            client_name: Some("Living-room TV".into()),
            public: true,
            grant_types: Some(vec![
                tessera_proto::DEVICE_CODE_GRANT.into(),
                "refresh_token".into(),
            ]),
            ..ClientSpec::default()
        };
        let valid = validate(&tv, &channels()).unwrap();
        assert_eq!(
            valid.grant_types,
            [tessera_proto::DEVICE_CODE_GRANT, "refresh_token"]
        );
        // Only the registered URN: a shortened name is not a grant type.
        let short = ClientSpec {
            grant_types: Some(vec!["device_code".into()]),
            ..tv
        };
        assert_eq!(field_of(validate(&short, &channels())), "grant_types");
    }

    #[test]
    fn confidential_clients_use_basic_or_post() {
        let with = |method: &str| ClientSpec {
            token_endpoint_auth_method: Some(method.into()),
            ..web_app()
        };
        assert_eq!(
            validate(&with("client_secret_post"), &channels())
                .unwrap()
                .token_endpoint_auth_method,
            "client_secret_post"
        );
        assert_eq!(
            field_of(validate(&with("private_key_jwt"), &channels())),
            "jwks_uri",
            "private_key_jwt without keys"
        );
        assert_eq!(
            field_of(validate(&with("basic"), &channels())),
            "token_endpoint_auth_method"
        );
    }

    fn ec_key() -> serde_json::Value {
        serde_json::json!({
            "kty": "EC", "crv": "P-256", "kid": "k1", "use": "sig",
            "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU",
            "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"
        })
    }

    fn key_client(jwks: Option<serde_json::Value>, jwks_uri: Option<&str>) -> ClientSpec {
        ClientSpec {
            token_endpoint_auth_method: Some("private_key_jwt".into()),
            jwks,
            jwks_uri: jwks_uri.map(str::to_owned),
            ..web_app()
        }
    }

    #[test]
    fn private_key_jwt_clients_register_public_signature_keys_inline_or_by_https_url() {
        let valid = validate(
            &key_client(Some(serde_json::json!({"keys": [ec_key()]})), None),
            &channels(),
        )
        .unwrap();
        assert_eq!(valid.token_endpoint_auth_method, "private_key_jwt");
        assert!(valid.jwks.as_deref().unwrap().contains("\"kid\":\"k1\""));
        let valid = validate(&key_client(None, Some("https://app.example/jwks")), &channels()).unwrap();
        assert_eq!(valid.jwks_uri.as_deref(), Some("https://app.example/jwks"));
        assert!(validate(&key_client(None, Some("http://127.0.0.1:9000/jwks")), &channels()).is_ok());

        let mut private = ec_key();
        private["d"] = "jpsQnnGQmL-YBIffH1136cspYG6-0iY7X1fCE9-E9LI".into();
        let mut encryption = ec_key();
        encryption["use"] = "enc".into();
        let mut twice = vec![ec_key(), ec_key()];
        twice[1]["x"] = ec_key()["x"].clone();
        for (bad, why) in [
            (serde_json::json!({"keys": []}), "empty"),
            (serde_json::json!([ec_key()]), "not an object"),
            (serde_json::json!({"keys": [private]}), "private key"),
            (
                serde_json::json!({"keys": [{"kty": "oct", "k": "c2VjcmV0"}]}),
                "symmetric",
            ),
            (serde_json::json!({"keys": [encryption]}), "encryption key"),
            (serde_json::json!({"keys": twice}), "duplicate kid"),
            (
                serde_json::json!({"keys": [{"kty": "EC", "crv": "P-256", "x": "AA", "y": "AA"}]}),
                "not a point",
            ),
            (serde_json::json!({"keys": vec![ec_key(); 21]}), "too many"),
        ] {
            assert_eq!(
                field_of(validate(&key_client(Some(bad), None), &channels())),
                "jwks",
                "{why}"
            );
        }
        assert_eq!(
            field_of(validate(
                &key_client(
                    Some(serde_json::json!({"keys": [ec_key()]})),
                    Some("https://a.example/j")
                ),
                &channels()
            )),
            "jwks"
        );
        for bad in [
            "http://app.example/jwks",
            "https://app.example/jwks#f",
            "file:///etc/passwd",
        ] {
            assert_eq!(
                field_of(validate(&key_client(None, Some(bad)), &channels())),
                "jwks_uri",
                "{bad}"
            );
        }
        // Keys are for private_key_jwt only.
        let spec = ClientSpec {
            jwks_uri: Some("https://app.example/jwks".into()),
            ..web_app()
        };
        assert_eq!(field_of(validate(&spec, &channels())), "jwks_uri");
    }

    #[test]
    fn assertion_algorithms_fit_the_method() {
        let with = |method: &str, alg: &str| ClientSpec {
            token_endpoint_auth_method: Some(method.into()),
            token_endpoint_auth_signing_alg: Some(alg.into()),
            jwks_uri: (method == "private_key_jwt").then(|| "https://app.example/jwks".to_owned()),
            ..web_app()
        };
        assert!(validate(&with("private_key_jwt", "ES256"), &channels()).is_ok());
        assert!(validate(&with("client_secret_jwt", "HS512"), &channels()).is_ok());
        for (method, alg) in [
            ("private_key_jwt", "HS256"),
            ("private_key_jwt", "none"),
            ("client_secret_jwt", "RS256"),
            ("client_secret_jwt", "none"),
            ("client_secret_basic", "HS256"),
        ] {
            assert_eq!(
                field_of(validate(&with(method, alg), &channels())),
                "token_endpoint_auth_signing_alg",
                "{method} {alg}"
            );
        }
    }

    #[test]
    fn scopes_are_tokens_and_ttls_positive_and_channels_configured() {
        let valid = validate(
            &ClientSpec {
                scope: Some("openid  profile email openid tessera:admin".into()),
                ..web_app()
            },
            &channels(),
        )
        .unwrap();
        assert_eq!(valid.scopes, ["openid", "profile", "email", "tessera:admin"]);
        for bad in ["openid \"quoted\"", "back\\slash", "tab\tseparated", "é"] {
            let spec = ClientSpec {
                scope: Some(bad.into()),
                ..web_app()
            };
            assert_eq!(field_of(validate(&spec, &channels())), "scope", "{bad}");
        }
        for ttl in [0, -5, MAX_TTL_SECS + 1] {
            let spec = ClientSpec {
                access_token_ttl_secs: Some(ttl),
                ..web_app()
            };
            assert_eq!(field_of(validate(&spec, &channels())), "access_token_ttl_secs");
            let spec = ClientSpec {
                refresh_token_ttl_secs: Some(ttl),
                mfa_policy: None,
                ..web_app()
            };
            assert_eq!(field_of(validate(&spec, &channels())), "refresh_token_ttl_secs");
        }
        let spec = ClientSpec {
            channel: Some("kiosk".into()),
            ..web_app()
        };
        assert_eq!(field_of(validate(&spec, &channels())), "channel");
        let spec = ClientSpec {
            channel: Some("partner".into()),
            ..web_app()
        };
        assert_eq!(validate(&spec, &channels()).unwrap().channel, "partner");
    }

    #[test]
    fn names_and_ids_are_checked() {
        let spec = ClientSpec {
            client_name: Some("   ".into()),
            ..web_app()
        };
        assert_eq!(field_of(validate(&spec, &channels())), "client_name");
        for bad in ["", "has space", "a:b", "ünï", &"x".repeat(129)] {
            let spec = ClientSpec {
                client_id: Some(bad.to_owned()),
                ..web_app()
            };
            assert_eq!(field_of(validate(&spec, &channels())), "client_id", "{bad}");
        }
    }

    #[test]
    fn generated_ids_are_readable_and_distinct() {
        let a = generated_client_id("Billing Portal (EU)!");
        let b = generated_client_id("Billing Portal (EU)!");
        assert!(a.starts_with("billing-portal-eu-"), "{a}");
        assert_eq!(a.len(), "billing-portal-eu-".len() + 8, "{a}");
        assert_ne!(a, b);
        assert!(generated_client_id("日本").starts_with("client-"));
        assert!(check_client_id(&generated_client_id(&"long name ".repeat(20))).is_ok());
    }

    #[test]
    fn specs_and_patches_parse_from_json_and_refuse_unknown_fields() {
        let spec: ClientSpec =
            serde_json::from_str(r#"{"client_name":"x","redirect_uris":["https://a.example/cb"]}"#).unwrap();
        assert!(validate(&spec, &channels()).is_ok());
        assert!(serde_json::from_str::<ClientSpec>(r#"{"client_name":"x","redirect_uri":"y"}"#).is_err());
        let patch: ClientPatch =
            serde_json::from_str(r#"{"backchannel_logout_uri":null,"access_token_ttl_secs":60}"#).unwrap();
        assert_eq!(patch.backchannel_logout_uri, Some(None));
        assert_eq!(patch.access_token_ttl_secs, Some(Some(60)));
        assert_eq!(patch.refresh_token_ttl_secs, None);
        assert_eq!(
            patch.changed_fields(),
            ["backchannel_logout_uri", "access_token_ttl_secs"]
        );
    }

    #[test]
    fn the_view_never_shows_the_hash() {
        let record = validate(&web_app(), &channels()).unwrap().into_record(
            "web-app".into(),
            Some("HASH-VALUE".into()),
            1,
        );
        let view = ClientView::from(&record);
        let shown = serde_json::to_string(&view.with_secret(None)).unwrap();
        assert!(
            !shown.contains("HASH-VALUE") && !shown.contains("client_secret\""),
            "{shown}"
        );
        // Fields in the view's order, the id first.
        assert!(
            shown.starts_with("{\"client_id\":\"web-app\",\"client_name\""),
            "{shown}"
        );
        let names: Vec<&str> = view.fields().iter().map(|(name, _)| *name).collect();
        let serialized = serde_json::to_value(&view).unwrap();
        assert_eq!(names.len(), serialized.as_object().unwrap().len());
        assert!(names.iter().all(|n| serialized.get(*n).is_some()));
        let shown = serde_json::to_value(view.with_secret(Some("tcs_secret"))).unwrap();
        assert_eq!(shown["client_secret"], "tcs_secret");
        assert_eq!(shown["client_secret_expires_at"], 0);
        assert_eq!(shown["scope"], "openid");
    }
}
