//! The verification checklist against tokens of a real node.

use std::time::Duration;

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::json;
use tessera_verify::{BuildError, JwkSet, Verifier, VerifyError};

use crate::common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_real_access_token_verifies_with_its_claims() {
    let node = node().await;
    let verifier = builder(&node).discover().await.unwrap();
    let (token, _, sid) = login(&node, "user-42").await;
    let claims = verifier.verify(&token).await.unwrap();
    assert_eq!(claims.subject, "user-42");
    assert!(claims.client_id.starts_with("app-"));
    assert_eq!(claims.scopes, vec!["openid", "profile"]);
    assert_eq!(claims.roles, vec!["member"]);
    assert_eq!(claims.session_id.as_deref(), Some(sid.as_str()));
    assert!(!claims.jti.is_empty());
    assert!(claims.expires_at > now() && claims.issued_at <= now() + 1);
    assert_eq!(claims.raw["iss"], node.url.as_str());
    let status = verifier.status();
    assert!(status.keys_loaded && status.key_count >= 3, "{status:?}");
    assert!(
        status.deny_list_enabled && status.deny_list_age.is_some(),
        "{status:?}"
    );
    assert!(status.is_fresh(Duration::from_secs(60)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn discovery_requires_the_exact_issuer() {
    let node = node().await;
    // A trailing slash is another issuer.
    let err = Verifier::builder(format!("{}/", node.url))
        .audience(node.url.clone())
        .discover()
        .await
        .unwrap_err();
    assert!(matches!(err, BuildError::IssuerMismatch { .. }), "{err}");
    // The same document served from another address names the node, not the proxy.
    let proxy = Proxy::start(&node.url).await;
    let err = Verifier::builder(proxy.url.clone())
        .audience(node.url.clone())
        .discover()
        .await
        .unwrap_err();
    assert!(matches!(err, BuildError::IssuerMismatch { .. }), "{err}");
    // No audience: refused at build time.
    let err = Verifier::builder(node.url.clone()).discover().await.unwrap_err();
    assert!(matches!(err, BuildError::Config(_)), "{err}");
    // HMAC can never be allowed.
    let err = builder(&node)
        .algorithms([Algorithm::ES256, Algorithm::HS256])
        .with_jwks_uri(&node.at(JWKS))
        .await
        .unwrap_err();
    assert!(matches!(err, BuildError::Config(_)), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tampered_tokens_fail_the_signature() {
    let node = node().await;
    let verifier = verifier(&node).await;
    let (token, _, _) = login(&node, "user-1").await;
    let parts: Vec<&str> = token.split('.').collect();
    // Another payload under the original signature.
    let mut claims: serde_json::Value = {
        use base64::Engine;
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(parts[1])
            .unwrap();
        serde_json::from_slice(&bytes).unwrap()
    };
    claims["sub"] = json!("admin");
    let forged = format!("{}.{}.{}", parts[0], b64(claims.to_string().as_bytes()), parts[2]);
    assert_eq!(verifier.verify(&forged).await, Err(VerifyError::Signature));
    // A changed signature.
    let mut signature = parts[2].to_owned();
    let other = if signature[5..6] == *"A" { "B" } else { "A" };
    signature.replace_range(5..6, other);
    let forged = format!("{}.{}.{signature}", parts[0], parts[1]);
    assert_eq!(verifier.verify(&forged).await, Err(VerifyError::Signature));
    // Not three parts, or not base64url.
    for bad in [
        format!("{}.{}", parts[0], parts[1]),
        format!("{token}.{}", parts[2]),
        format!("{}..{}", parts[0], parts[2]),
        format!("{token} "),
        "a".repeat(20_000),
        String::new(),
    ] {
        assert_eq!(
            verifier.verify(&bad).await,
            Err(VerifyError::Malformed),
            "{bad:.40}"
        );
    }
    assert!(verifier.verify(&token).await.is_ok());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lifetime_is_checked_with_explicit_leeway() {
    let node = node().await;
    let lenient = verifier(&node).await; // default leeway 30 s
    let strict = builder(&node)
        .leeway(Duration::ZERO)
        .with_jwks_uri(&node.at(JWKS))
        .await
        .unwrap();

    let mut claims = claims(&node);
    claims["exp"] = json!(now() - 10);
    let recently_expired = sign(&node, &claims);
    assert!(lenient.verify(&recently_expired).await.is_ok());
    assert_eq!(strict.verify(&recently_expired).await, Err(VerifyError::Expired));

    claims["exp"] = json!(now() - 100);
    assert_eq!(
        lenient.verify(&sign(&node, &claims)).await,
        Err(VerifyError::Expired)
    );

    let mut claims = crate::common::claims(&node);
    claims["nbf"] = json!(now() + 10);
    let soon = sign(&node, &claims);
    assert!(lenient.verify(&soon).await.is_ok());
    assert_eq!(strict.verify(&soon).await, Err(VerifyError::NotYetValid));
    claims["nbf"] = json!(now() + 100);
    assert_eq!(
        lenient.verify(&sign(&node, &claims)).await,
        Err(VerifyError::NotYetValid)
    );

    let mut claims = crate::common::claims(&node);
    claims["iat"] = json!(now() + 100);
    assert_eq!(
        lenient.verify(&sign(&node, &claims)).await,
        Err(VerifyError::NotYetValid)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_minted_with_a_short_lifetime_expires_for_the_verifier() {
    let node = tessera_testkit::spawn_with(tessera_testkit::Backend::Sqlite, |config| {
        config.tokens.access_token_ttl_secs = 2;
    })
    .await
    .unwrap();
    let verifier = builder(&node)
        .leeway(Duration::ZERO)
        .with_jwks_uri(&node.at(JWKS))
        .await
        .unwrap();
    // The node's clock is a manual one, frozen at its start: bring it to the present.
    let behind = now() - tessera_idp::clock::Clock::now(node.clock.as_ref());
    node.clock.advance(behind);
    let (token, _, _) = login(&node, "user-1").await;
    let claims = verifier.verify(&token).await.unwrap();
    while now() < claims.expires_at {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(verifier.verify(&token).await, Err(VerifyError::Expired));
    assert_eq!(verifier.verify_uncached(&token).await, Err(VerifyError::Expired));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issuer_and_audience_must_match() {
    let node = node().await;
    let (token, _, _) = login(&node, "user-1").await;

    let other_audience = Verifier::builder(node.url.clone())
        .audience("https://orders.example.com")
        .with_jwks_uri(&node.at(JWKS))
        .await
        .unwrap();
    assert_eq!(other_audience.verify(&token).await, Err(VerifyError::Audience));

    let other_issuer = Verifier::builder("https://id.example.com")
        .audience(node.url.clone())
        .without_revocation_feed()
        .with_jwks_uri(&node.at(JWKS))
        .await
        .unwrap();
    assert_eq!(other_issuer.verify(&token).await, Err(VerifyError::Issuer));

    let verifier = verifier(&node).await;
    let mut claims = claims(&node);
    claims["iss"] = json!(format!("{}/", node.url));
    assert_eq!(
        verifier.verify(&sign(&node, &claims)).await,
        Err(VerifyError::Issuer)
    );
    // `aud` as an array containing ours is fine; without ours it is not.
    let mut claims = crate::common::claims(&node);
    claims["aud"] = json!(["https://other", node.url]);
    assert!(verifier.verify(&sign(&node, &claims)).await.is_ok());
    claims["aud"] = json!(["https://other"]);
    assert_eq!(
        verifier.verify(&sign(&node, &claims)).await,
        Err(VerifyError::Audience)
    );
    // Required claims.
    for name in ["sub", "client_id", "jti", "iat", "exp", "aud"] {
        let mut claims = crate::common::claims(&node);
        claims.as_object_mut().unwrap().remove(name);
        assert_eq!(
            verifier.verify(&sign(&node, &claims)).await,
            Err(VerifyError::Claims(name))
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_header_is_checked_before_any_key_is_used() {
    let node = node().await;
    let verifier = verifier(&node).await;
    let claims = claims(&node);
    let es_kid = node.state.keys.signing_key(Algorithm::ES256).unwrap().kid;

    // alg none: an unsecured JWT, with or without a signature part.
    let header = json!({"alg": "none", "typ": "at+jwt", "kid": es_kid});
    let unsecured = format!(
        "{}.{}",
        b64(header.to_string().as_bytes()),
        b64(claims.to_string().as_bytes())
    );
    assert_eq!(
        verifier.verify(&format!("{unsecured}.")).await,
        Err(VerifyError::Malformed)
    );
    assert_eq!(
        verifier.verify(&format!("{unsecured}.c2ln")).await,
        Err(VerifyError::Malformed)
    );

    // HS256 keyed with the published public key (the classic confusion attack).
    let jwks = node.state.keys.jwks();
    let public = serde_json::to_vec(&jwks.find(&es_kid).unwrap()).unwrap();
    let mut header = Header::new(Algorithm::HS256);
    header.typ = Some("at+jwt".into());
    header.kid = Some(es_kid.clone());
    let hmac = jsonwebtoken::encode(&header, &claims, &EncodingKey::from_secret(&public)).unwrap();
    assert!(matches!(
        verifier.verify(&hmac).await,
        Err(VerifyError::Algorithm(_))
    ));

    // An RS256 signature under the kid of the ES256 key: no such (kid, alg) pair.
    let confused = sign_with(&node, Algorithm::RS256, &claims, |h| h.kid = Some(es_kid.clone()));
    assert_eq!(verifier.verify(&confused).await, Err(VerifyError::UnknownKey));

    // typ: an ID token (`JWT`) or none at all is not an access token.
    for typ in [Some("JWT"), None] {
        let token = sign_with(&node, Algorithm::ES256, &claims, |h| {
            h.typ = typ.map(str::to_owned)
        });
        assert_eq!(verifier.verify(&token).await, Err(VerifyError::Type));
    }
    let long_form = sign_with(&node, Algorithm::ES256, &claims, |h| {
        h.typ = Some("application/at+jwt".into())
    });
    assert!(verifier.verify(&long_form).await.is_ok());

    // crit, and a missing kid.
    let critical = sign_with(&node, Algorithm::ES256, &claims, |h| {
        h.crit = Some(vec!["exp".into()])
    });
    assert_eq!(verifier.verify(&critical).await, Err(VerifyError::CriticalHeader));
    let no_kid = sign_with(&node, Algorithm::ES256, &claims, |h| h.kid = None);
    assert_eq!(verifier.verify(&no_kid).await, Err(VerifyError::UnknownKey));

    // The three algorithms Tessera signs with are accepted by default…
    for alg in [Algorithm::ES256, Algorithm::RS256, Algorithm::EdDSA] {
        let token = sign_with(&node, alg, &claims, |_| {});
        assert!(verifier.verify(&token).await.is_ok(), "{alg:?}");
    }
    // …and a configured subset refuses the others.
    let rs_only = builder(&node)
        .algorithms([Algorithm::RS256])
        .with_jwks_uri(&node.at(JWKS))
        .await
        .unwrap();
    let es = sign(&node, &claims);
    assert!(matches!(
        rs_only.verify(&es).await,
        Err(VerifyError::Algorithm(_))
    ));
    let rs = sign_with(&node, Algorithm::RS256, &claims, |_| {});
    assert!(rs_only.verify(&rs).await.is_ok());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_static_key_set_works_without_the_provider() {
    let node = node().await;
    let jwks: JwkSet = node.state.keys.jwks();
    let verifier = Verifier::builder(node.url.clone())
        .audience(node.url.clone())
        .with_static_jwks(jwks)
        .await
        .unwrap();
    let (token, _, _) = login(&node, "user-1").await;
    drop(node);
    assert!(verifier.verify(&token).await.is_ok());
    let status = verifier.status();
    assert!(status.keys_loaded && !status.deny_list_enabled, "{status:?}");
}
