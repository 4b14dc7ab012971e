//! Header work on the way through: hop-by-hop fields (RFC 9110 §7.6.1), the identity
//! headers (`X-Auth-*`, removed from every request and set from verified claims only),
//! `X-Forwarded-*` / `Forwarded` (RFC 7239), the request id, and paths we refuse.

use std::net::{IpAddr, SocketAddr};

use http::header::{HeaderName, CONNECTION, FORWARDED, HOST};
use http::{HeaderMap, HeaderValue, Request};
use tessera_verify::Claims;

use crate::config::Cidr;

pub(crate) const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
pub(crate) const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
pub(crate) const X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
pub(crate) const X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");
pub(crate) const X_AUTH_SUBJECT: HeaderName = HeaderName::from_static("x-auth-subject");
pub(crate) const X_AUTH_CLIENT: HeaderName = HeaderName::from_static("x-auth-client");
pub(crate) const X_AUTH_SCOPES: HeaderName = HeaderName::from_static("x-auth-scopes");
pub(crate) const X_AUTH_ROLES: HeaderName = HeaderName::from_static("x-auth-roles");
pub(crate) const X_AUTH_PERMISSIONS: HeaderName = HeaderName::from_static("x-auth-permissions");
pub(crate) const X_AUTH_SESSION: HeaderName = HeaderName::from_static("x-auth-session");
/// Set when the caller authenticated with a partner API key: its key id.
pub(crate) const X_AUTH_API_KEY: HeaderName = HeaderName::from_static("x-auth-api-key");
/// The partner API key a client presents (never forwarded upstream).
pub(crate) const X_API_KEY: HeaderName = HeaderName::from_static("x-api-key");

/// Hop-by-hop fields a proxy must not forward (RFC 9110 §7.6.1), plus `Proxy-Authorization`
/// (credentials for this hop) and `Expect` (the gateway does not relay 100-continue).
const HOP_BY_HOP: [&str; 9] = [
    "connection",
    "proxy-connection",
    "keep-alive",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "proxy-authorization",
    "expect",
];

/// Removes the hop-by-hop fields, and every field the `Connection` header names.
pub(crate) fn strip_hop_by_hop(headers: &mut HeaderMap) {
    let named: Vec<HeaderName> = headers
        .get_all(CONNECTION)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|list| list.split(','))
        .filter_map(|name| HeaderName::from_bytes(name.trim().as_bytes()).ok())
        .collect();
    for name in named {
        headers.remove(name);
    }
    for name in HOP_BY_HOP {
        headers.remove(name);
    }
}

/// Removes every `X-Auth-*` field (names are case-insensitive; `http` keeps them lowercase),
/// so that a caller can never pose as someone else to an upstream.
pub(crate) fn strip_identity(headers: &mut HeaderMap) {
    let spoofed: Vec<HeaderName> = headers
        .keys()
        .filter(|name| name.as_str().starts_with("x-auth-"))
        .cloned()
        .collect();
    for name in spoofed {
        headers.remove(name);
    }
}

/// A header value carrying claim text: bytes outside printable ASCII, `%` and those in
/// `reserved` are percent-encoded (UTF-8), so any claim value fits and list separators stay
/// unambiguous.
fn claim_value(text: &str, reserved: &[u8]) -> Option<HeaderValue> {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if (0x20..0x7f).contains(&byte) && byte != b'%' && !reserved.contains(&byte) {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    HeaderValue::from_str(&out).ok()
}

/// Adds the identity of a verified caller: subject, client, scopes (space-separated, as in
/// OAuth), roles (comma-separated), and the session when the token has one.
pub(crate) fn set_identity(headers: &mut HeaderMap, claims: &Claims) {
    let mut set = |name: HeaderName, value: Option<HeaderValue>| {
        if let Some(value) = value {
            headers.insert(name, value);
        }
    };
    set(X_AUTH_SUBJECT, claim_value(&claims.subject, &[]));
    set(X_AUTH_CLIENT, claim_value(&claims.client_id, &[]));
    let scopes: Vec<String> = claims
        .scopes
        .iter()
        .filter_map(|s| claim_value(s, b" ,").and_then(|v| v.to_str().ok().map(str::to_owned)))
        .collect();
    set(X_AUTH_SCOPES, HeaderValue::from_str(&scopes.join(" ")).ok());
    let roles: Vec<String> = claims
        .roles
        .iter()
        .filter_map(|r| claim_value(r, b" ,").and_then(|v| v.to_str().ok().map(str::to_owned)))
        .collect();
    set(X_AUTH_ROLES, HeaderValue::from_str(&roles.join(",")).ok());
    let permissions: Vec<String> = claims
        .permissions
        .iter()
        .filter_map(|p| claim_value(p, b" ,").and_then(|v| v.to_str().ok().map(str::to_owned)))
        .collect();
    set(
        X_AUTH_PERMISSIONS,
        HeaderValue::from_str(&permissions.join(" ")).ok(),
    );
    if let Some(session) = &claims.session_id {
        set(X_AUTH_SESSION, claim_value(session, &[]));
    }
    if let Some(key_id) = &claims.api_key_id {
        set(X_AUTH_API_KEY, claim_value(key_id, &[]));
    }
}

/// The request id: the caller's `X-Request-Id` when it is a sane token (1–128 of
/// `A-Za-z0-9-_.:/+=`), or a new random one.
pub(crate) fn request_id(headers: &HeaderMap) -> HeaderValue {
    let given = headers.get(REQUEST_ID).filter(|value| {
        let bytes = value.as_bytes();
        !bytes.is_empty()
            && bytes.len() <= 128
            && bytes
                .iter()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.:/+=".contains(b))
    });
    if let Some(value) = given {
        return value.clone();
    }
    let mut bytes = [0u8; 16];
    if aws_lc_rs::rand::fill(&mut bytes).is_err() {
        // Never expected; uniqueness within this process is still kept.
        use std::sync::atomic::{AtomicU64, Ordering};
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        bytes[..8].copy_from_slice(&COUNTER.fetch_add(1, Ordering::Relaxed).to_be_bytes());
        bytes[8..].copy_from_slice(&(nanos as u64).to_be_bytes());
    }
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    HeaderValue::from_str(&hex).unwrap_or_else(|_| HeaderValue::from_static("0"))
}

/// The host the request is for, lowercase and without port: the URI's authority (HTTP/2,
/// absolute-form) or the `Host` header.
pub(crate) fn request_host<B>(request: &Request<B>) -> Option<String> {
    if let Some(host) = request.uri().host() {
        return Some(
            host.trim_start_matches('[')
                .trim_end_matches(']')
                .to_ascii_lowercase(),
        );
    }
    let value = request.headers().get(HOST)?.to_str().ok()?;
    let authority: http::uri::Authority = value.parse().ok()?;
    Some(
        authority
            .host()
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_ascii_lowercase(),
    )
}

/// The `Host` as the client sent it (with port), for `X-Forwarded-Host`.
fn original_host<B>(request: &Request<B>) -> Option<HeaderValue> {
    if let Some(authority) = request.uri().authority() {
        return HeaderValue::from_str(authority.as_str()).ok();
    }
    request.headers().get(HOST).cloned()
}

/// Whether a path is one we forward: routes match the path exactly as sent, so a path that
/// an upstream would read as another one is refused rather than guessed at. Refused, as
/// Spring Security's `StrictHttpFirewall` does and more:
/// - anything not starting with `/`, and control characters;
/// - dot segments (`.`/`..`, also percent-encoded), and empty segments (`//`): an upstream
///   that normalises them, or merges slashes, reaches another route;
/// - encoded `/`, `\`, NUL and `%` (double encoding), and `\` itself;
/// - `;` (path parameters: Tomcat and Spring read `/api;x/..;/admin` as `/admin`);
/// - percent-encoded unreserved characters (`/%61pi` is `/api` to an upstream, but
///   matches no `/api` route here) and malformed escapes.
pub fn path_is_acceptable(path: &str) -> bool {
    let bytes = path.as_bytes();
    if bytes.first() != Some(&b'/') {
        return false;
    }
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' | b';' => return false,
            b if b.is_ascii_control() => return false,
            b'%' => {
                let hex = |b: u8| char::from(b).to_digit(16);
                let (Some(high), Some(low)) = (
                    bytes.get(i + 1).copied().and_then(hex),
                    bytes.get(i + 2).copied().and_then(hex),
                ) else {
                    return false;
                };
                let decoded = (high * 16 + low) as u8;
                let unreserved = decoded.is_ascii_alphanumeric() || b"-._~".contains(&decoded);
                if unreserved || b"/\\%;\0".contains(&decoded) || decoded.is_ascii_control() {
                    return false;
                }
                i += 3;
                continue;
            }
            _ => {}
        }
        i += 1;
    }
    // Segments after the leading `/`: none empty (but a trailing `/` is a path of its own,
    // `/a/`), none a dot segment.
    let segments: Vec<&str> = path[1..].split('/').collect();
    let last = segments.len() - 1;
    !segments
        .iter()
        .enumerate()
        .any(|(n, segment)| *segment == "." || *segment == ".." || (segment.is_empty() && n != last))
}

use tessera_proto::net::{is_trusted, normalize};

/// The client's address: the peer, or — when the peer is a trusted proxy — the right-most
/// address of `X-Forwarded-For` that is not a trusted proxy.
pub(crate) fn client_ip(peer: SocketAddr, headers: &HeaderMap, trusted: &[Cidr]) -> IpAddr {
    let values = headers
        .get_all(X_FORWARDED_FOR)
        .iter()
        .filter_map(|v| v.to_str().ok());
    tessera_proto::net::client_ip(peer.ip(), values, trusted)
}

/// Sets `X-Forwarded-For`, `X-Forwarded-Proto`, `X-Forwarded-Host` and `Forwarded` on the
/// upstream request. A trusted proxy's values are extended; anyone else's are replaced.
pub(crate) fn set_forwarded<B>(
    request: &Request<B>,
    upstream_headers: &mut HeaderMap,
    peer: SocketAddr,
    trusted: &[Cidr],
) {
    let peer_ip = normalize(peer.ip());
    let from_trusted = is_trusted(peer_ip, trusted);
    let incoming = request.headers();
    let host = original_host(request);
    let proto = incoming
        .get(X_FORWARDED_PROTO)
        .filter(|_| from_trusted)
        .and_then(|v| v.to_str().ok())
        .map(|p| p.trim().to_ascii_lowercase())
        .filter(|p| p == "http" || p == "https")
        .unwrap_or_else(|| "http".to_owned());

    let previous_xff: Vec<String> = if from_trusted {
        incoming
            .get_all(X_FORWARDED_FOR)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .map(str::to_owned)
            .collect()
    } else {
        Vec::new()
    };
    let mut xff = previous_xff.join(", ");
    if !xff.is_empty() {
        xff.push_str(", ");
    }
    xff.push_str(&peer_ip.to_string());

    let forwarded_host = if from_trusted {
        incoming.get(X_FORWARDED_HOST).cloned().or(host.clone())
    } else {
        host.clone()
    };

    let for_value = match peer_ip {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => format!("\"[{v6}]\""),
    };
    let mut element = format!("for={for_value};proto={proto}");
    if let Some(host) = host.as_ref().and_then(|h| h.to_str().ok()) {
        let clean: String = host
            .chars()
            .filter(|c| c.is_ascii_graphic() && *c != '"' && *c != '\\')
            .collect();
        element.push_str(&format!(";host=\"{clean}\""));
    }
    let previous_forwarded: Vec<String> = if from_trusted {
        incoming
            .get_all(FORWARDED)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .map(str::to_owned)
            .collect()
    } else {
        Vec::new()
    };
    let mut forwarded = previous_forwarded.join(", ");
    if !forwarded.is_empty() {
        forwarded.push_str(", ");
    }
    forwarded.push_str(&element);

    for name in [
        X_FORWARDED_FOR,
        X_FORWARDED_PROTO,
        X_FORWARDED_HOST,
        FORWARDED,
        HeaderName::from_static("x-real-ip"),
    ] {
        upstream_headers.remove(name);
    }
    if let Ok(value) = HeaderValue::from_str(&xff) {
        upstream_headers.insert(X_FORWARDED_FOR, value);
    }
    if let Ok(value) = HeaderValue::from_str(&proto) {
        upstream_headers.insert(X_FORWARDED_PROTO, value);
    }
    if let Some(value) = forwarded_host {
        upstream_headers.insert(X_FORWARDED_HOST, value);
    }
    if let Ok(value) = HeaderValue::from_str(&forwarded) {
        upstream_headers.insert(FORWARDED, value);
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;

    #[test]
    fn hop_by_hop_and_connection_named_fields_go() {
        let mut headers = HeaderMap::new();
        headers.insert("connection", HeaderValue::from_static("keep-alive, X-Secret-Hop"));
        headers.insert("x-secret-hop", HeaderValue::from_static("1"));
        headers.insert("keep-alive", HeaderValue::from_static("timeout=5"));
        headers.insert("te", HeaderValue::from_static("trailers"));
        headers.insert("upgrade", HeaderValue::from_static("websocket"));
        headers.insert("proxy-authorization", HeaderValue::from_static("Basic x"));
        headers.insert("x-kept", HeaderValue::from_static("1"));
        strip_hop_by_hop(&mut headers);
        let names: Vec<&str> = headers.keys().map(|k| k.as_str()).collect();
        assert_eq!(names, vec!["x-kept"]);
    }

    #[test]
    fn identity_headers_are_stripped_and_encoded() {
        let mut headers = HeaderMap::new();
        headers.insert("X-Auth-Subject", HeaderValue::from_static("admin"));
        headers.insert("x-AUTH-roles", HeaderValue::from_static("admin"));
        headers.insert("x-authority", HeaderValue::from_static("kept"));
        strip_identity(&mut headers);
        assert_eq!(headers.len(), 1);
        let claims = Claims {
            subject: "user 1%é".into(),
            client_id: "web".into(),
            scopes: vec!["openid".into(), "orders:read".into()],
            roles: vec!["member".into(), "a,b".into()],
            permissions: vec!["orders:read".into()],
            session_id: None,
            jti: "j".into(),
            expires_at: 0,
            issued_at: 0,
            acr: None,
            amr: Vec::new(),
            auth_time: None,
            api_key_id: None,
            dpop_jkt: None,
            raw: serde_json::Value::Null,
        };
        set_identity(&mut headers, &claims);
        assert_eq!(headers["x-auth-subject"], "user 1%25%C3%A9");
        assert_eq!(headers["x-auth-scopes"], "openid orders:read");
        assert_eq!(headers["x-auth-roles"], "member,a%2Cb");
        assert_eq!(headers["x-auth-permissions"], "orders:read");
        assert!(headers.get("x-auth-session").is_none());
    }

    #[test]
    fn ambiguous_paths_are_refused() {
        for path in [
            "/a/b",
            "/",
            "/a/",
            "/a.b/c..d",
            "/a/%20b",
            "/%E2%82%AC",
            "/a/%3A",
            "/a-b_c~d",
        ] {
            assert!(path_is_acceptable(path), "{path}");
        }
        for path in [
            "/a/../b",
            "/a/./b",
            "/..",
            "/a/%2e%2E/b",
            "/a/.%2e",
            "/a%2fb",
            "/a\\b",
            "*",
            "",
            "a/b",
            "/a/%2E",
            // Unreserved characters percent-encoded: the same path to an upstream.
            "/%61pi/orders",
            "/a/%41",
            "/a/%7e",
            // Path parameters and their encodings (Tomcat: `..;` is `..`).
            "/api;x/orders",
            "/api/..;/admin",
            "/api/%3b/x",
            // Empty segments: merged by nginx and many frameworks.
            "//admin",
            "/api//x",
            // Double encoding, NUL, control characters, malformed escapes.
            "/a/%252e%252e/b",
            "/a/%00",
            "/a/%0a",
            "/a/\tb",
            "/a/%",
            "/a/%4",
            "/a/%zz",
            "/a/%5C",
        ] {
            assert!(!path_is_acceptable(path), "{path}");
        }
    }

    #[test]
    fn client_ip_believes_trusted_proxies_only() {
        let trusted = vec![Cidr::parse("10.0.0.0/8").unwrap()];
        let mut headers = HeaderMap::new();
        headers.insert(
            X_FORWARDED_FOR,
            HeaderValue::from_static("6.6.6.6, 203.0.113.7, 10.0.0.9"),
        );
        let lb: SocketAddr = "10.0.0.2:5000".parse().unwrap();
        let outsider: SocketAddr = "198.51.100.1:5000".parse().unwrap();
        assert_eq!(client_ip(lb, &headers, &trusted).to_string(), "203.0.113.7");
        assert_eq!(
            client_ip(outsider, &headers, &trusted).to_string(),
            "198.51.100.1"
        );
        assert_eq!(client_ip(lb, &HeaderMap::new(), &trusted).to_string(), "10.0.0.2");
    }

    #[test]
    fn forwarded_headers_are_replaced_for_untrusted_peers() {
        let request = Request::builder()
            .uri("/x")
            .header(HOST, "api.example.com:8443")
            .header(X_FORWARDED_FOR, "1.2.3.4")
            .header(X_FORWARDED_PROTO, "https")
            .body(())
            .unwrap();
        let mut out = request.headers().clone();
        let peer: SocketAddr = "198.51.100.1:5000".parse().unwrap();
        set_forwarded(&request, &mut out, peer, &[]);
        assert_eq!(out[X_FORWARDED_FOR], "198.51.100.1");
        assert_eq!(out[X_FORWARDED_PROTO], "http");
        assert_eq!(out[X_FORWARDED_HOST], "api.example.com:8443");
        assert_eq!(
            out[FORWARDED],
            "for=198.51.100.1;proto=http;host=\"api.example.com:8443\""
        );
        let trusted = vec![Cidr::parse("198.51.100.0/24").unwrap()];
        let mut out = request.headers().clone();
        set_forwarded(&request, &mut out, peer, &trusted);
        assert_eq!(out[X_FORWARDED_FOR], "1.2.3.4, 198.51.100.1");
        assert_eq!(out[X_FORWARDED_PROTO], "https");
    }

    #[test]
    fn request_ids_pass_through_or_are_made() {
        let mut headers = HeaderMap::new();
        headers.insert(REQUEST_ID, HeaderValue::from_static("abc-123"));
        assert_eq!(request_id(&headers), "abc-123");
        headers.insert(REQUEST_ID, HeaderValue::from_static("bad id with spaces"));
        let made = request_id(&headers);
        assert_eq!(made.len(), 32);
        assert_ne!(made, request_id(&HeaderMap::new()));
    }
}
