//! DPoP-bound tokens (RFC 9449 §7) through the library's API: `verify` refuses a bound
//! token presented as Bearer; `verify_dpop` wants a proof of the bound key for this request,
//! once, with the cache on and off.

use serde_json::json;
use tessera_testkit::DpopKey;
use tessera_verify::dpop::ProofError;
use tessera_verify::{DpopRequest, VerifyError};

use crate::common::*;

const URI: &str = "https://api.example.com/orders/1";

/// `GET URI` with this proof.
fn request(proof: &str) -> DpopRequest<'_> {
    DpopRequest {
        method: "GET",
        uri: URI,
        proof: Some(proof),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bound_tokens_verify_only_with_a_fresh_proof_of_their_key() {
    let node = node().await;
    let verifier = verifier(&node).await;
    let key = DpopKey::generate();
    let mut bound_claims = claims(&node);
    bound_claims["cnf"] = json!({ "jkt": key.jkt() });
    let bound = sign(&node, &bound_claims);

    // As Bearer: refused, cached or not.
    assert_eq!(verifier.verify(&bound).await, Err(VerifyError::DpopBound));
    assert_eq!(
        verifier.verify_uncached(&bound).await,
        Err(VerifyError::DpopBound)
    );

    // With a proof (query ignored), through the cache and without it.
    for fresh in [false, true, false] {
        let proof = key.proof("GET", &format!("{URI}?page=2"), Some(&bound));
        let claims = verifier
            .verify_dpop(&bound, &request(&proof), fresh)
            .await
            .unwrap();
        assert_eq!(claims.dpop_jkt.as_deref(), Some(key.jkt().as_str()));
    }
    // Once only.
    let proof = key.proof("GET", URI, Some(&bound));
    verifier
        .verify_dpop(&bound, &request(&proof), false)
        .await
        .unwrap();
    assert_eq!(
        verifier.verify_dpop(&bound, &request(&proof), false).await,
        Err(VerifyError::DpopProof(ProofError::Replayed))
    );

    let stale = {
        let mut c = key.claims("GET", URI, Some(&bound));
        c["iat"] = json!(now() - 120);
        key.sign(&key.header(), &c)
    };
    let future = {
        let mut c = key.claims("GET", URI, Some(&bound));
        c["iat"] = json!(now() + 120);
        key.sign(&key.header(), &c)
    };
    let cases = [
        (key.proof("POST", URI, Some(&bound)), ProofError::Method),
        (
            key.proof("GET", "https://api.example.com/orders/2", Some(&bound)),
            ProofError::Uri,
        ),
        (
            key.proof("GET", URI, Some("another token")),
            ProofError::AccessTokenHash,
        ),
        (key.proof("GET", URI, None), ProofError::AccessTokenHash),
        (stale, ProofError::Stale),
        (future, ProofError::Future),
    ];
    for (proof, why) in cases {
        assert_eq!(
            verifier.verify_dpop(&bound, &request(&proof), false).await,
            Err(VerifyError::DpopProof(why))
        );
    }
    assert!(matches!(
        verifier
            .verify_dpop(
                &bound,
                &DpopRequest {
                    method: "GET",
                    uri: URI,
                    proof: None
                },
                false
            )
            .await,
        Err(VerifyError::DpopProof(_))
    ));
    // Another key's valid proof: not the bound key.
    let other = DpopKey::generate();
    assert_eq!(
        verifier
            .verify_dpop(&bound, &request(&other.proof("GET", URI, Some(&bound))), false)
            .await,
        Err(VerifyError::DpopBound)
    );
    assert_eq!(
        VerifyError::DpopProof(ProofError::Stale).rfc6750_error(),
        Some("invalid_dpop_proof")
    );

    // An unbound token: Bearer as ever, DPoP refused.
    let plain = sign(&node, &claims(&node));
    verifier.verify(&plain).await.unwrap();
    assert_eq!(
        verifier
            .verify_dpop(&plain, &request(&key.proof("GET", URI, Some(&plain))), false)
            .await,
        Err(VerifyError::NotDpopBound)
    );
}
