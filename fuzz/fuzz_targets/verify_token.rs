//! The verifier's JWS/JWT checklist (`tessera-verify`): any bytes as an access token, against
//! a fixed ES256 key set (`fuzz/jwks.json`; the seeds in `corpus/verify_token` are tokens
//! signed with its private key, which is not kept). Asserted beyond "no panic":
//! - a token that verifies has exactly what the checklist allows: our issuer, our audience
//!   (alone or in an array), a lifetime not over, the claims read from its own payload;
//! - the cached and the uncached verification agree on every token, also after a valid
//!   token was cached (an auth cache keyed on part of a token would let a forgery through).
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use tessera_verify::Verifier;

const ISSUER: &str = "https://id.fuzz.example";
const AUDIENCE: &str = "https://api.fuzz.example";
const VALID: &str = include_str!("../corpus/verify_token/valid");

struct Fixture {
    runtime: tokio::runtime::Runtime,
    verifier: Verifier,
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .expect("a runtime");
        let jwks: jsonwebtoken::jwk::JwkSet =
            serde_json::from_str(include_str!("../jwks.json")).expect("fuzz/jwks.json");
        let verifier = runtime
            .block_on(
                Verifier::builder(ISSUER)
                    .audience(AUDIENCE)
                    .without_revocation_feed()
                    .with_static_jwks(jwks),
            )
            .expect("a verifier");
        // The cache holds a valid token from the start.
        runtime.block_on(verifier.verify(VALID)).expect("the valid seed verifies");
        Fixture { runtime, verifier }
    })
}

fn payload(token: &str) -> Value {
    use base64::Engine;
    let part = token.split('.').nth(1).expect("a verified token has a payload");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(part)
        .expect("a verified token's payload is base64url");
    serde_json::from_slice(&bytes).expect("a verified token's payload is JSON")
}

fuzz_target!(|data: &[u8]| {
    let Ok(token) = std::str::from_utf8(data) else {
        return;
    };
    let fixture = fixture();
    let cached = fixture.runtime.block_on(fixture.verifier.verify(token));
    let uncached = fixture.runtime.block_on(fixture.verifier.verify_uncached(token));
    assert_eq!(
        cached.as_ref().map(|c| &c.raw).ok(),
        uncached.as_ref().map(|c| &c.raw).ok(),
        "cache and full verification disagree on {token:?}"
    );
    let Ok(claims) = uncached else {
        return;
    };
    assert_eq!(token.split('.').count(), 3, "a JWS in compact form");
    let raw = payload(token);
    assert_eq!(claims.raw, raw, "the claims are the token's own payload");
    assert_eq!(raw["iss"], ISSUER);
    let audience_ok = match &raw["aud"] {
        Value::String(aud) => aud == AUDIENCE,
        Value::Array(list) => list.iter().any(|a| a == AUDIENCE),
        _ => false,
    };
    assert!(audience_ok, "audience: {}", raw["aud"]);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after 1970")
        .as_secs() as i64;
    assert!(claims.expires_at > now - 60, "expired: {}", claims.expires_at);
    assert_eq!(raw["sub"], claims.subject.as_str());
    assert_eq!(raw["client_id"], claims.client_id.as_str());
});
