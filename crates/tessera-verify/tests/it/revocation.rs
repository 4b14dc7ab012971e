//! The deny-list and the authentication cache.

use std::time::Duration;

use serde_json::json;
use tessera_verify::VerifyError;

use crate::common::*;

const POLL: Duration = Duration::from_millis(200);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ended_session_is_refused_within_one_poll_interval() {
    let node = node().await;
    let verifier = verifier(&node).await;
    let (token, _, sid) = login(&node, "user-1").await;
    let (other, _, _) = login(&node, "user-2").await;
    // Verified and cached.
    assert!(verifier.verify(&token).await.is_ok());
    assert!(verifier.verify(&token).await.is_ok());
    assert_eq!(verifier.status().cache_hits, 1);

    end_session(&node, &sid).await;
    let ended = std::time::Instant::now();
    // The next poll (at most one interval away) brings it; the bound leaves room for a
    // loaded machine.
    assert!(
        eventually(POLL * 10, async || verifier.verify(&token).await
            == Err(VerifyError::Revoked))
        .await,
        "still accepted"
    );
    eprintln!(
        "refused {:?} after the session ended (poll interval {POLL:?})",
        ended.elapsed()
    );
    assert_eq!(verifier.verify_uncached(&token).await, Err(VerifyError::Revoked));
    // The cached result did not hide the revocation, and other sessions go on.
    assert!(verifier.verify(&other).await.is_ok());
    assert!(verifier.status().deny_list_entries >= 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_access_token_is_refused_by_jti() {
    let node = node().await;
    let verifier = verifier(&node).await;
    let client = node.create_client("revoker", false, "web").await;
    let issued = node.login("user-1", &client).await.unwrap();
    assert!(verifier.verify(&issued.access_token).await.is_ok());
    let response = node
        .post_form(
            "/oauth2/revoke",
            &client,
            &[
                ("token", issued.access_token.as_str()),
                ("token_type_hint", "access_token"),
            ],
        )
        .await;
    assert_eq!(response.status(), 200);
    assert!(
        eventually(POLL * 5, async || {
            verifier.verify(&issued.access_token).await == Err(VerifyError::Revoked)
        })
        .await
    );
    // Its session lives on: a new token of it is fine.
    let (status, body) = node.refresh(&client, issued.refresh_token.secret()).await;
    assert_eq!(status, 200, "{body}");
    let fresh = body["access_token"].as_str().unwrap();
    assert!(verifier.verify(fresh).await.is_ok());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_auth_cache_hits_misses_and_never_outlives_exp() {
    let node = node().await;
    let verifier = builder(&node)
        .leeway(Duration::ZERO)
        .with_jwks_uri(&node.at(JWKS))
        .await
        .unwrap();
    let (token, _, _) = login(&node, "user-1").await;

    let first = verifier.verify(&token).await.unwrap();
    let second = verifier.verify(&token).await.unwrap();
    assert_eq!(first, second);
    let status = verifier.status();
    assert_eq!(
        (status.cache_hits, status.cache_misses, status.cache_entries),
        (1, 1, 1)
    );
    // The uncached path does not touch the cache.
    assert!(verifier.verify_uncached(&token).await.is_ok());
    assert_eq!(verifier.status().cache_hits, 1);
    // A failure is not cached.
    assert!(verifier.verify("x.y.z").await.is_err());
    assert_eq!(verifier.status().cache_entries, 1);

    // A token about to expire: cached, then refused once `exp` has passed.
    let mut claims = claims(&node);
    let exp = now() + 1;
    claims["exp"] = json!(exp);
    let short = sign(&node, &claims);
    assert!(verifier.verify(&short).await.is_ok());
    assert!(verifier.verify(&short).await.is_ok());
    while now() < exp {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(verifier.verify(&short).await, Err(VerifyError::Expired));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_withdrawn_key_invalidates_cached_results() {
    let node = node().await;
    let proxy = Proxy::start(&node.url).await;
    let verifier = builder(&node)
        .without_revocation_feed()
        .with_jwks_uri(&proxy.at(JWKS))
        .await
        .unwrap();
    let (token, _, _) = login(&node, "user-1").await;
    assert!(verifier.verify(&token).await.is_ok());
    assert!(verifier.verify(&token).await.is_ok());
    assert_eq!(verifier.status().cache_hits, 1);

    // The provider withdraws the ES256 key (compromised): only the others remain.
    let kid = jsonwebtoken::decode_header(&token).unwrap().kid.unwrap();
    let mut jwks = node.state.keys.jwks();
    jwks.keys
        .retain(|k| k.common.key_id.as_deref() != Some(kid.as_str()));
    proxy.override_jwks(Some(serde_json::to_string(&jwks).unwrap()));
    verifier.refresh_keys().await.unwrap();
    assert_eq!(verifier.verify(&token).await, Err(VerifyError::UnknownKey));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_cache_every_call_verifies() {
    let node = node().await;
    let verifier = builder(&node)
        .auth_cache_capacity(0)
        .with_jwks_uri(&node.at(JWKS))
        .await
        .unwrap();
    let (token, _, _) = login(&node, "user-1").await;
    for _ in 0..3 {
        assert!(verifier.verify(&token).await.is_ok());
    }
    let status = verifier.status();
    assert_eq!((status.cache_hits, status.cache_entries), (0, 0));
}

/// With Redis, a revocation arrives at once, long before the next poll.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_pushes_revocations_at_once() {
    let Ok(redis_url) = std::env::var(tessera_testkit::REDIS_URL_VAR) else {
        eprintln!("skipped: {} not set", tessera_testkit::REDIS_URL_VAR);
        return;
    };
    let url = redis_url.clone();
    let node = tessera_testkit::spawn_with(tessera_testkit::Backend::Sqlite, move |config| {
        config.redis_url = Some(tessera_idp::secret::Secret::new(url));
    })
    .await
    .unwrap();
    let verifier = builder(&node)
        .revocation_poll_interval(Duration::from_secs(600))
        .redis(redis_url)
        .with_jwks_uri(&node.at(JWKS))
        .await
        .unwrap();
    assert!(
        eventually(Duration::from_secs(5), async || verifier
            .status()
            .revocation_channel_connected)
        .await
    );
    let (token, _, sid) = login(&node, "user-1").await;
    assert!(verifier.verify(&token).await.is_ok());
    end_session(&node, &sid).await;
    assert!(
        eventually(Duration::from_secs(2), async || {
            verifier.verify(&token).await == Err(VerifyError::Revoked)
        })
        .await
    );
}
