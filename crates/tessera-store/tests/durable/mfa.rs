//! Second factors and recovery codes: single use across concurrent callers, confirmation
//! by the first accepted step, cascades.

use std::sync::Arc;

use tessera_store::durable::{MfaFactorRecord, MfaStore, UserStore};
use tessera_store::StoreError;

use super::{fresh, user};

fn totp(id: &str, user_id: &str, created_at: i64) -> MfaFactorRecord {
    MfaFactorRecord {
        id: id.to_owned(),
        user_id: user_id.to_owned(),
        kind: "totp".to_owned(),
        name: "phone".to_owned(),
        secret: Some(vec![1, 2, 3, 0, 255]),
        created_at,
        confirmed_at: None,
        last_used_at: None,
        last_step: None,
        credential_id: None,
        credential: None,
    }
}

fn passkey(id: &str, user_id: &str, credential_id: &str) -> MfaFactorRecord {
    MfaFactorRecord {
        kind: "webauthn".to_owned(),
        secret: None,
        confirmed_at: Some(1_000),
        credential_id: Some(credential_id.to_owned()),
        credential: Some(format!(r#"{{"id":"{credential_id}","counter":0}}"#)),
        ..totp(id, user_id, 1_000)
    }
}

pub async fn passkeys_are_found_by_credential_unique_and_counted_once(backend: &str) {
    let Some(db) = fresh(backend, true).await else {
        return;
    };
    let s = &db.store;
    for id in ["u1", "u2"] {
        s.create_user(&user(id, &format!("{id}@example.com"), 1_000))
            .await
            .unwrap();
    }
    s.create_factor(&passkey("p1", "u1", "cred-a")).await.unwrap();
    s.create_factor(&passkey("p2", "u1", "cred-b")).await.unwrap();
    // TOTP factors have no credential id; many NULLs do not collide.
    s.create_factor(&totp("t1", "u1", 1_001)).await.unwrap();
    s.create_factor(&totp("t2", "u2", 1_001)).await.unwrap();
    // A credential belongs to one account only.
    let taken = s.create_factor(&passkey("p3", "u2", "cred-a")).await;
    assert!(matches!(taken, Err(StoreError::Conflict(_))), "{taken:?}");
    assert_eq!(s.factors("u2").await.unwrap().len(), 1);

    let found = s.factor_by_credential("cred-b").await.unwrap().unwrap();
    assert_eq!(found, passkey("p2", "u1", "cred-b"));
    assert!(s.factor_by_credential("cred-z").await.unwrap().is_none());

    // Of many nodes verifying one assertion at once, exactly one records it.
    let old = found.credential.clone().unwrap();
    let store = Arc::new(db.store.clone());
    let mut tasks = Vec::new();
    for n in 0..8 {
        let (store, old) = (store.clone(), old.clone());
        tasks.push(tokio::spawn(async move {
            let new = format!(r#"{{"id":"cred-b","counter":{}}}"#, n + 1);
            store.swap_credential("p2", &old, &new, 1_100).await.unwrap()
        }));
    }
    let mut won = 0;
    for task in tasks {
        won += usize::from(task.await.unwrap());
    }
    assert_eq!(won, 1);
    let after = s.factor_by_credential("cred-b").await.unwrap().unwrap();
    assert_ne!(after.credential.as_deref(), Some(old.as_str()));
    assert_eq!(after.last_used_at, Some(1_100));
    assert!(!s.swap_credential("p2", &old, "{}", 1_200).await.unwrap());
    // Deleting the user frees the credential id.
    s.delete_user("u1").await.unwrap();
    assert!(s.factor_by_credential("cred-a").await.unwrap().is_none());
}

pub async fn totp_steps_are_accepted_once_and_confirm_the_factor(backend: &str) {
    let Some(db) = fresh(backend, true).await else {
        return;
    };
    let s = &db.store;
    for id in ["u1", "u2"] {
        s.create_user(&user(id, &format!("{id}@example.com"), 1_000))
            .await
            .unwrap();
    }
    s.create_factor(&totp("f1", "u1", 1_000)).await.unwrap();
    let stored = s.factors("u1").await.unwrap();
    assert_eq!(
        stored,
        vec![totp("f1", "u1", 1_000)],
        "the sealed bytes round-trip"
    );
    assert!(s.factors("u2").await.unwrap().is_empty());
    // Another user cannot use or touch the factor.
    assert!(!s.accept_step("f1", "u2", 10, 1_010).await.unwrap());
    assert!(!s.rename_factor("f1", "u2", "x").await.unwrap());
    assert!(!s.delete_factor("f1", "u2").await.unwrap());
    // The first accepted step confirms it; the same step or an older one never works again.
    assert!(s.accept_step("f1", "u1", 10, 1_010).await.unwrap());
    assert!(!s.accept_step("f1", "u1", 10, 1_011).await.unwrap());
    assert!(!s.accept_step("f1", "u1", 9, 1_011).await.unwrap());
    assert!(s.accept_step("f1", "u1", 11, 1_040).await.unwrap());
    let factor = &s.factors("u1").await.unwrap()[0];
    assert_eq!(
        (factor.confirmed_at, factor.last_used_at, factor.last_step),
        (Some(1_010), Some(1_040), Some(11))
    );
    assert!(s.rename_factor("f1", "u1", "work phone").await.unwrap());
    // A use checked elsewhere (an e-mailed code) confirms and is recorded; not another's.
    let mut email = totp("f9", "u1", 1_000);
    email.kind = "email_otp".into();
    email.secret = None;
    s.create_factor(&email).await.unwrap();
    assert!(!s.mark_used("f9", "u2", 1_050).await.unwrap());
    assert!(s.mark_used("f9", "u1", 1_050).await.unwrap());
    assert!(s.mark_used("f9", "u1", 1_060).await.unwrap());
    let f9 = s
        .factors("u1")
        .await
        .unwrap()
        .into_iter()
        .find(|f| f.id == "f9")
        .unwrap();
    assert_eq!(
        (f9.confirmed_at, f9.last_used_at, f9.secret),
        (Some(1_050), Some(1_060), None)
    );
    assert!(s.delete_factor("f9", "u1").await.unwrap());
    assert_eq!(s.factors("u1").await.unwrap()[0].name, "work phone");
    // Of many nodes presenting one code at once, exactly one succeeds.
    let store = Arc::new(db.store.clone());
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            store.accept_step("f1", "u1", 12, 1_070).await.unwrap()
        }));
    }
    let mut won = 0;
    for task in tasks {
        won += usize::from(task.await.unwrap());
    }
    assert_eq!(won, 1);
}

pub async fn recovery_codes_are_single_use_and_replaced_as_a_set(backend: &str) {
    let Some(db) = fresh(backend, true).await else {
        return;
    };
    let s = &db.store;
    for id in ["u1", "u2"] {
        s.create_user(&user(id, &format!("{id}@example.com"), 1_000))
            .await
            .unwrap();
    }
    let first: Vec<String> = (0..10).map(|i| format!("h{i}")).collect();
    s.replace_recovery_codes("u1", &first, 1_000).await.unwrap();
    s.replace_recovery_codes("u2", &["h0".to_owned()], 1_000)
        .await
        .unwrap();
    assert_eq!(s.recovery_codes_left("u1").await.unwrap(), 10);
    assert!(s.use_recovery_code("u1", "h3", 1_100).await.unwrap());
    assert!(
        !s.use_recovery_code("u1", "h3", 1_101).await.unwrap(),
        "a code works once"
    );
    assert!(!s.use_recovery_code("u1", "nope", 1_101).await.unwrap());
    assert_eq!(s.recovery_codes_left("u1").await.unwrap(), 9);
    // u2's code of the same hash is its own.
    assert!(s.use_recovery_code("u2", "h0", 1_102).await.unwrap());
    assert!(s.use_recovery_code("u1", "h0", 1_102).await.unwrap());
    // A new set voids the old one, used codes included.
    let second: Vec<String> = (0..10).map(|i| format!("n{i}")).collect();
    s.replace_recovery_codes("u1", &second, 1_200).await.unwrap();
    assert!(!s.use_recovery_code("u1", "h5", 1_201).await.unwrap());
    assert_eq!(s.recovery_codes_left("u1").await.unwrap(), 10);
    // Concurrent use of one code: one winner.
    let store = Arc::new(db.store.clone());
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            store.use_recovery_code("u1", "n1", 1_300).await.unwrap()
        }));
    }
    let mut won = 0;
    for task in tasks {
        won += usize::from(task.await.unwrap());
    }
    assert_eq!(won, 1);
}

pub async fn removing_the_last_factor_voids_the_codes_and_users_take_theirs_along(backend: &str) {
    let Some(db) = fresh(backend, true).await else {
        return;
    };
    let s = &db.store;
    s.create_user(&user("u1", "u1@example.com", 1_000)).await.unwrap();
    s.create_factor(&totp("f1", "u1", 1_000)).await.unwrap();
    s.create_factor(&totp("f2", "u1", 1_001)).await.unwrap();
    assert!(s.accept_step("f1", "u1", 1, 1_010).await.unwrap());
    assert!(s.accept_step("f2", "u1", 1, 1_010).await.unwrap());
    s.replace_recovery_codes("u1", &["a".to_owned(), "b".to_owned()], 1_010)
        .await
        .unwrap();
    // One confirmed factor is left: the codes stay.
    assert!(s.delete_factor("f1", "u1").await.unwrap());
    assert_eq!(s.recovery_codes_left("u1").await.unwrap(), 2);
    assert!(!s.delete_factor("f1", "u1").await.unwrap());
    // The last one: the codes go with it.
    assert!(s.delete_factor("f2", "u1").await.unwrap());
    assert_eq!(s.recovery_codes_left("u1").await.unwrap(), 0);
    // An operator's reset removes everything.
    s.create_factor(&totp("f3", "u1", 1_100)).await.unwrap();
    s.replace_recovery_codes("u1", &["c".to_owned()], 1_100)
        .await
        .unwrap();
    assert_eq!(s.reset_factors("u1").await.unwrap(), 1);
    assert!(s.factors("u1").await.unwrap().is_empty());
    assert_eq!(s.recovery_codes_left("u1").await.unwrap(), 0);
    // Deleting the user deletes its factors and codes.
    s.create_factor(&totp("f4", "u1", 1_200)).await.unwrap();
    s.replace_recovery_codes("u1", &["d".to_owned()], 1_200)
        .await
        .unwrap();
    assert!(s.delete_user("u1").await.unwrap());
    assert!(s.factors("u1").await.unwrap().is_empty());
    assert_eq!(s.recovery_codes_left("u1").await.unwrap(), 0);
}
