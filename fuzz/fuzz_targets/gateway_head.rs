//! The gateway's request head: the path check and the `Authorization` parsing. The input is
//! a path, a newline, and header lines (`name: value`). Asserted beyond "no panic":
//! - a path the gateway forwards is normalised: no percent-encoded unreserved characters, no
//!   dot or empty segments, no `;` or `\` even once decoded, so an upstream reads the same
//!   path — and every route prefix matches it exactly when it matches the decoded path;
//! - an access token the gateway accepts is the single `Authorization` header's credentials
//!   (scheme `Bearer` or `DPoP`, as reported), non-empty, of b64token characters only.
#![no_main]

use http::header::{HeaderMap, HeaderName, HeaderValue, AUTHORIZATION};
use libfuzzer_sys::fuzz_target;
use tessera_gateway::fuzzing::{access_token, path_is_acceptable, prefix_matches};

const PREFIXES: [&str; 5] = ["/", "/api", "/api/v1", "/admin", "/a-b_c~d"];

fn hex(pair: &[u8]) -> Option<u8> {
    let digit = |b: u8| char::from(b).to_digit(16);
    match pair {
        [high, low] => Some((digit(*high)? * 16 + digit(*low)?) as u8),
        _ => None,
    }
}

fn percent_decode(path: &str) -> Vec<u8> {
    let bytes = path.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            if let Some(byte) = bytes.get(i + 1..i + 3).and_then(hex) {
                out.push(byte);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    out
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (path, head) = text.split_once('\n').unwrap_or((text, ""));

    if path_is_acceptable(path) {
        assert!(path.starts_with('/'));
        let decoded = percent_decode(path);
        for window in path.as_bytes().windows(3) {
            if window[0] == b'%' {
                let byte = hex(&window[1..]).expect("well-formed escapes only");
                assert!(
                    !(byte.is_ascii_alphanumeric() || b"-._~".contains(&byte)),
                    "an encoded unreserved character passed: {path:?}"
                );
            }
        }
        assert!(
            !decoded.iter().any(|b| matches!(b, b'\\' | b';' | 0) || b.is_ascii_control()),
            "{path:?}"
        );
        let segments: Vec<&[u8]> = decoded[1..].split(|b| *b == b'/').collect();
        let last = segments.len() - 1;
        for (n, segment) in segments.iter().enumerate() {
            assert!(*segment != b"." && *segment != b"..", "dot segment in {path:?}");
            assert!(!segment.is_empty() || n == last, "empty segment in {path:?}");
        }
        let decoded = String::from_utf8_lossy(&decoded);
        for prefix in PREFIXES {
            assert_eq!(
                prefix_matches(prefix, path),
                prefix_matches(prefix, &decoded),
                "{prefix} matches {path:?} and its decoded form differently"
            );
        }
    }

    let mut headers = HeaderMap::new();
    for line in head.lines() {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(name.trim().as_bytes()),
            HeaderValue::from_str(value.trim_start()),
        ) else {
            continue;
        };
        headers.append(name, value);
    }
    if let Some((dpop, token)) = access_token(&headers) {
        let all: Vec<_> = headers.get_all(AUTHORIZATION).iter().collect();
        assert_eq!(all.len(), 1, "one Authorization header");
        let value = all[0].to_str().expect("visible ASCII");
        let scheme = if dpop { "dpop " } else { "bearer " };
        assert!(
            value.len() > scheme.len() && value[..scheme.len()].eq_ignore_ascii_case(scheme),
            "{value:?}"
        );
        assert!(!token.is_empty() && value.trim_end_matches(' ').ends_with(token), "{value:?} / {token:?}");
        let body = token.trim_end_matches('=');
        assert!(!body.is_empty());
        assert!(
            body.bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'+' | b'/')),
            "{token:?}"
        );
    }
});
