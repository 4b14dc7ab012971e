//! Partner API keys: owned by a user or a client, listed newest first, revoked once (and on
//! the revocation feed in the same step), a per-owner quota of live keys, batched last-use
//! times that never go backwards, and keys that go with their owner.

use tessera_store::durable::{
    ApiKeyOwner, ApiKeyRecord, ApiKeyStore, ClientStore, RevocationStore, RevokedKind, UserStore,
};

use super::{client, fresh, user};

fn key(id: &str, owner: ApiKeyOwner, created_at: i64) -> ApiKeyRecord {
    ApiKeyRecord {
        id: id.to_owned(),
        owner,
        name: format!("key {id} — ünïcode"),
        secret_hash: format!("hash-of-{id}"),
        scopes: vec!["orders:read".to_owned()],
        permissions: vec!["orders:export".to_owned(), "orders:read".to_owned()],
        allowed_ips: vec!["10.0.0.0/8".to_owned()],
        created_at,
        expires_at: created_at + 1_000,
        last_used_at: None,
        revoked_at: None,
    }
}

pub async fn api_keys_are_owned_listed_revoked_once_and_touched_in_batches(backend: &str) {
    let Some(db) = fresh(backend, true).await else {
        return;
    };
    let s = &db.store;
    s.create_user(&user("u1", "u1@example.com", 1)).await.unwrap();
    s.create_user(&user("u2", "u2@example.com", 1)).await.unwrap();
    s.create_client(&client("partner")).await.unwrap();
    let alice = ApiKeyOwner::User("u1".to_owned());
    let partner = ApiKeyOwner::Client("partner".to_owned());

    assert!(s
        .create_api_key(&key("k1", alice.clone(), 100), 2, 100)
        .await
        .unwrap());
    assert!(s
        .create_api_key(&key("k2", alice.clone(), 200), 2, 200)
        .await
        .unwrap());
    // The quota counts live keys of that owner only.
    assert!(!s
        .create_api_key(&key("k3", alice.clone(), 300), 2, 300)
        .await
        .unwrap());
    assert!(s
        .create_api_key(&key("p1", partner.clone(), 300), 2, 300)
        .await
        .unwrap());
    assert!(s.api_key("k3").await.unwrap().is_none());
    // A taken id is a conflict.
    let taken = s.create_api_key(&key("k1", partner.clone(), 300), 5, 300).await;
    assert!(
        matches!(taken, Err(tessera_store::StoreError::Conflict(_))),
        "{taken:?}"
    );

    let listed = s.api_keys_of(&alice).await.unwrap();
    assert_eq!(
        listed,
        vec![key("k2", alice.clone(), 200), key("k1", alice.clone(), 100)]
    );
    assert_eq!(
        s.api_keys_of(&partner).await.unwrap(),
        vec![key("p1", partner.clone(), 300)]
    );
    assert_eq!(
        s.api_key("p1").await.unwrap(),
        Some(key("p1", partner.clone(), 300))
    );

    // Revoked once; the feed has it until the key's expiry.
    let seq = s.latest_revocation_seq().await.unwrap();
    assert!(s.revoke_api_key("k1", 500).await.unwrap());
    assert!(!s.revoke_api_key("k1", 501).await.unwrap());
    assert!(!s.revoke_api_key("nope", 501).await.unwrap());
    let feed = s.revocations(seq, i64::MAX, 500).await.unwrap();
    assert_eq!(feed.len(), 1);
    assert_eq!(
        (feed[0].kind, feed[0].value.as_str(), feed[0].expires_at),
        (RevokedKind::ApiKey, "k1", 1_100)
    );
    assert!(s.is_revoked(RevokedKind::ApiKey, "k1", 1_099).await.unwrap());
    assert!(!s.is_revoked(RevokedKind::ApiKey, "k1", 1_100).await.unwrap());
    let k1 = s.api_key("k1").await.unwrap().unwrap();
    assert_eq!(k1.revoked_at, Some(500));
    assert!(!k1.is_live(500));
    // Revocation freed a place under the quota.
    assert!(s
        .create_api_key(&key("k3", alice.clone(), 600), 2, 600)
        .await
        .unwrap());
    // An expired key is no revocation entry.
    assert!(s.revoke_api_key("k2", 5_000).await.unwrap());
    assert!(!s.is_revoked(RevokedKind::ApiKey, "k2", 5_000).await.unwrap());

    // Batched uses: later times win, earlier ones do not move it back, unknown ids pass.
    s.touch_api_keys(&[
        ("k3".to_owned(), 700),
        ("p1".to_owned(), 650),
        ("ghost".to_owned(), 1),
    ])
    .await
    .unwrap();
    s.touch_api_keys(&[("k3".to_owned(), 690)]).await.unwrap();
    s.touch_api_keys(&[]).await.unwrap();
    assert_eq!(s.api_key("k3").await.unwrap().unwrap().last_used_at, Some(700));
    assert_eq!(s.api_key("p1").await.unwrap().unwrap().last_used_at, Some(650));

    // Keys go with their owner.
    assert!(s.delete_user("u1").await.unwrap());
    assert!(s.api_keys_of(&alice).await.unwrap().is_empty());
    assert!(s.delete_client("partner", 800).await.unwrap());
    assert!(s.api_key("p1").await.unwrap().is_none());
    // A client's keys reach the feed with its deletion (a user's: the domain revokes them).
    assert!(s.is_revoked(RevokedKind::ApiKey, "p1", 800).await.unwrap());
    assert!(!s.delete_client("partner", 900).await.unwrap());
}
