//! The key-set cache: unknown kids, rotation, and an outage of the provider.

use std::time::Duration;

use jsonwebtoken::Algorithm;
use tessera_verify::{BuildError, Verifier, VerifyError};

use crate::common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_kids_cause_at_most_one_fetch_per_floor_interval() {
    let node = node().await;
    let proxy = Proxy::start(&node.url).await;
    let floor = Duration::from_secs(2);
    let verifier = builder(&node)
        .jwks_refresh_floor(floor)
        .without_revocation_feed()
        .with_jwks_uri(&proxy.at(JWKS))
        .await
        .unwrap();
    assert_eq!(proxy.count(JWKS), 1, "fetched once at start");
    let started = std::time::Instant::now();

    // A flood of forged tokens, each naming a random kid.
    let claims = claims(&node);
    for i in 0..50 {
        let token = sign_with(&node, Algorithm::ES256, &claims, |h| {
            h.kid = Some(format!("forged-{i}"))
        });
        assert_eq!(verifier.verify(&token).await, Err(VerifyError::UnknownKey));
    }
    assert!(
        started.elapsed() < floor,
        "the flood took longer than the floor interval"
    );
    assert_eq!(
        proxy.count(JWKS),
        2,
        "exactly one extra fetch within the floor interval"
    );

    // Valid tokens are unaffected meanwhile.
    let (token, _, _) = login(&node, "user-1").await;
    assert!(verifier.verify(&token).await.is_ok());
    assert_eq!(proxy.count(JWKS), 2);

    // After the floor interval, the next unknown kid may look again — once.
    tokio::time::sleep(floor + Duration::from_millis(100)).await;
    for i in 0..10 {
        let token = sign_with(&node, Algorithm::ES256, &claims, |h| {
            h.kid = Some(format!("again-{i}"))
        });
        assert_eq!(verifier.verify(&token).await, Err(VerifyError::UnknownKey));
    }
    assert_eq!(proxy.count(JWKS), 3);
    assert_eq!(verifier.status().keys_fetches, 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotated_key_is_picked_up_after_at_most_one_refresh() {
    let node = tessera_testkit::spawn_with(tessera_testkit::Backend::Sqlite, |config| {
        config.keys.prepublish_secs = 5;
    })
    .await
    .unwrap();
    let proxy = Proxy::start(&node.url).await;
    let verifier = builder(&node)
        .without_revocation_feed()
        .with_jwks_uri(&proxy.at(JWKS))
        .await
        .unwrap();
    let (old_token, _, _) = login(&node, "user-1").await;
    let old_kid = jsonwebtoken::decode_header(&old_token).unwrap().kid.unwrap();
    assert!(verifier.verify(&old_token).await.is_ok());
    let fetches = proxy.count(JWKS);

    let rotated = node.state.keys.rotate(Algorithm::ES256).await.unwrap();
    // Past the pre-publish window (still well within the verifier's leeway for `iat`).
    node.clock.advance(6);
    let (new_token, _, _) = login(&node, "user-1").await;
    let new_kid = jsonwebtoken::decode_header(&new_token).unwrap().kid.unwrap();
    assert_eq!(new_kid, rotated.kid);
    assert_ne!(new_kid, old_kid);

    let claims = verifier.verify(&new_token).await.unwrap();
    assert_eq!(claims.subject, "user-1");
    assert_eq!(proxy.count(JWKS), fetches + 1, "one refresh for the new kid");
    // The old key is still published (retire window): its tokens still verify.
    assert!(verifier.verify_uncached(&old_token).await.is_ok());
    assert_eq!(proxy.count(JWKS), fetches + 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_last_good_keys_survive_an_outage_of_the_provider() {
    let node = node().await;
    let proxy = Proxy::start(&node.url).await;
    let verifier = builder(&node)
        .jwks_refresh_floor(Duration::from_millis(300))
        .jwks_refresh_ceiling(Duration::from_millis(300))
        .revocation_feed(proxy.at(FEED))
        .with_jwks_uri(&proxy.at(JWKS))
        .await
        .unwrap();
    let (token, _, _) = login(&node, "user-1").await;
    assert!(verifier.verify(&token).await.is_ok());
    // Background refreshes honour the (clamped) schedule.
    assert!(eventually(Duration::from_secs(3), async || proxy.count(JWKS) >= 3).await);
    assert!(verifier.status().keys_last_error.is_none());

    proxy.stop();
    drop(node);
    assert!(
        eventually(Duration::from_secs(5), async || {
            let status = verifier.status();
            status.keys_refresh_failures >= 2 && status.deny_list_poll_failures >= 2
        })
        .await
    );
    tokio::time::sleep(Duration::from_millis(600)).await;

    // Still verifying, with and without the cache.
    assert!(verifier.verify(&token).await.is_ok());
    assert!(verifier.verify_uncached(&token).await.is_ok());
    let status = verifier.status();
    assert!(status.keys_loaded && status.key_count >= 3, "{status:?}");
    assert!(status.keys_last_error.is_some(), "{status:?}");
    assert!(
        status.keys_age.unwrap() >= Duration::from_millis(600),
        "{status:?}"
    );
    assert!(status.deny_list_last_error.is_some(), "{status:?}");
    assert!(
        status.deny_list_age.unwrap() >= Duration::from_millis(600),
        "{status:?}"
    );
    assert!(!status.is_fresh(Duration::from_millis(500)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_node_does_not_stop_verification() {
    let node = node().await;
    let verifier = verifier(&node).await;
    let (token, _, _) = login(&node, "user-1").await;
    drop(node);
    assert!(verifier.refresh_keys().await.is_err());
    assert!(verifier.poll_revocations().await.is_err());
    assert!(verifier.verify_uncached(&token).await.is_ok());
    assert!(verifier.status().keys_last_error.is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn starting_while_the_provider_is_down() {
    let closed = format!("http://127.0.0.1:{}", tessera_testkit::free_port());
    let err = Verifier::builder(closed.clone())
        .audience(closed.clone())
        .http_client(unpooled())
        .with_jwks_uri(&format!("{closed}{JWKS}"))
        .await
        .unwrap_err();
    assert!(matches!(err, BuildError::Keys(_)), "{err}");

    let verifier = Verifier::builder(closed.clone())
        .audience(closed.clone())
        .http_client(unpooled())
        .start_without_keys()
        .with_jwks_uri(&format!("{closed}{JWKS}"))
        .await
        .unwrap();
    let status = verifier.status();
    assert!(
        !status.keys_loaded && status.keys_last_error.is_some(),
        "{status:?}"
    );
    // A token cannot be judged: not the client's fault.
    let node = node().await;
    let token = sign(&node, &claims(&node));
    let err = verifier.verify(&token).await.unwrap_err();
    assert!(matches!(err, VerifyError::Unavailable(_)), "{err}");
    assert_eq!(err.http_status(), 503);
    assert_eq!(err.rfc6750_error(), None);
}
