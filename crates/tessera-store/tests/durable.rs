//! The durable store's test suite, run against SQLite always and PostgreSQL when
//! `TESSERA_TEST_DATABASE_URL` is set (each test in a schema of its own).

// Helpers shared by the cases are not `#[test]` functions, so clippy.toml's test
// allowances do not reach them.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;

use tessera_store::durable::{
    AuditQuery, AuditRecord, AuditStore, AuthorizationCodeRecord, ClientRecord, ClientStore, ClusterStore,
    CodeRedemption, ConnectSettings, CreateOutcome, DeviceStore, FederatedIdentityRecord, FederationStore,
    KeyStore, KnownDeviceRecord, Maintenance, OidcStore, OneTimeTokenRecord, OutboxRecord, Purged,
    RefreshRecord, RevocationStore, RevokedKind, RotateOutcome, Rotation, SessionLimit, SessionRecord,
    SessionStore, SqlStore, SsoSessionRecord, StoredKey, UserRecord, UserStore, MAX_AUDIT_BATCH,
};
use tessera_store::StoreError;

#[path = "durable/api_keys.rs"]
mod api_keys;
#[path = "durable/mfa.rs"]
mod mfa;
#[path = "durable/rbac.rs"]
mod rbac;
use api_keys::api_keys_are_owned_listed_revoked_once_and_touched_in_batches;
use mfa::{
    passkeys_are_found_by_credential_unique_and_counted_once,
    recovery_codes_are_single_use_and_replaced_as_a_set,
    removing_the_last_factor_voids_the_codes_and_users_take_theirs_along,
    totp_steps_are_accepted_once_and_confirm_the_factor,
};
use rbac::role_graph_changes_commit_only_at_the_version_they_saw;

/// A store on a fresh database, and what keeps that database alive.
struct Fresh {
    store: SqlStore,
    /// For fixtures written with raw SQL, as the schema of their time had it.
    url: String,
    _guard: Guard,
}

enum Guard {
    Sqlite(#[allow(dead_code)] tempfile::TempDir),
    Postgres { base: String, schema: String },
}

impl Drop for Guard {
    fn drop(&mut self) {
        if let Guard::Postgres { base, schema } = self {
            let (base, schema) = (base.clone(), schema.clone());
            std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap();
                rt.block_on(pg_execute(
                    &base,
                    &format!("DROP SCHEMA IF EXISTS {schema} CASCADE"),
                ));
            })
            .join()
            .unwrap();
        }
    }
}

async fn pg_execute(url: &str, sql: &str) {
    use sqlx::{Connection, Executor};
    sqlx::any::install_default_drivers();
    let mut conn = sqlx::AnyConnection::connect(url).await.unwrap();
    conn.execute(sql).await.unwrap();
    conn.close().await.unwrap();
}

async fn fresh(backend: &str, migrate: bool) -> Option<Fresh> {
    let (url, guard) = match backend {
        "sqlite" => {
            let dir = tempfile::tempdir().unwrap();
            let url = format!("sqlite://{}?mode=rwc", dir.path().join("t.db").display());
            (url, Guard::Sqlite(dir))
        }
        _ => {
            let Ok(base) = std::env::var("TESSERA_TEST_DATABASE_URL") else {
                eprintln!("skipped: TESSERA_TEST_DATABASE_URL not set");
                return None;
            };
            static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
            let schema = format!(
                "s_{}_{}_{}",
                std::process::id(),
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap()
                    .subsec_nanos(),
                N.fetch_add(1, std::sync::atomic::Ordering::SeqCst)
            );
            pg_execute(&base, &format!("CREATE SCHEMA {schema}")).await;
            let sep = if base.contains('?') { '&' } else { '?' };
            let url = format!("{base}{sep}options=-c%20search_path%3D{schema}");
            (url, Guard::Postgres { base, schema })
        }
    };
    let store = SqlStore::connect(&ConnectSettings::new(url.clone()))
        .await
        .unwrap();
    if migrate {
        store.migrate().await.unwrap();
    }
    Some(Fresh {
        store,
        url,
        _guard: guard,
    })
}

macro_rules! suite {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() { super::$name("sqlite").await }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() { super::$name("postgres").await }
        }
    )*};
}

suite!(
    federated_identities_are_keyed_by_subject_and_created_with_their_user,
    migrations_apply_from_empty_and_are_idempotent,
    fixture_rows_survive_later_migrations,
    exactly_one_bootstrap_wins,
    rotation_retires_only_the_same_algorithm,
    expired_keys_leave_the_live_set_and_are_pruned,
    duplicate_kid_is_a_conflict,
    client_crud_and_lists_round_trip,
    sessions_are_stored_and_listed_most_recently_seen_first,
    sessions_expire_by_idle_and_absolute_time,
    extending_never_passes_the_absolute_expiry,
    note_access_token_keeps_the_later_expiry,
    a_chain_of_100_rotations,
    concurrent_rotations_of_one_token_rotate_it_once,
    rotation_by_another_client_changes_nothing,
    rotation_needs_a_live_token_and_an_alive_session,
    reject_limit_refuses_and_writes_nothing,
    revoke_oldest_limit_makes_room,
    zero_limits,
    concurrent_creations_never_pass_a_reject_limit,
    concurrent_creations_with_revoke_oldest_leave_one_alive,
    revoking_a_session_twice_and_all_of_a_subject,
    a_session_records_the_roles_it_activates,
    deleting_a_client_ends_its_sessions,
    revocation_feed_dedupes_pages_and_expires,
    audit_filters_and_pages_newest_first,
    audit_after_id_reads_what_came_later,
    audit_batches_commit_whole_in_order,
    alive_sessions_are_counted_across_subjects,
    alive_sessions_are_counted_by_channel,
    alive_sessions_are_paged_most_recently_active_first,
    audit_events_are_counted_per_interval,
    purge_removes_what_ended_and_keeps_what_is_needed,
    users_round_trip_and_a_taken_email_conflicts,
    profiles_merge_atomically_and_go_with_their_user,
    set_password_moves_old_hashes_to_a_bounded_history,
    concurrent_password_changes_lose_no_hash,
    upgrade_password_hash_is_compare_and_set,
    mark_email_verified_needs_the_same_unverified_address,
    change_email_is_compare_and_set_and_conflicts_with_a_taken_address,
    disabling_roles_and_counting_users,
    users_are_listed_in_pages_and_by_email,
    deleting_a_user_removes_history_and_tokens,
    one_time_tokens_are_used_once,
    concurrent_consumers_of_one_token_get_it_once,
    invalidating_tokens_makes_them_unusable,
    purge_removes_expired_and_long_used_one_time_tokens,
    sso_sessions_are_found_by_secret_until_they_end,
    revoking_sso_sessions_once_and_all_of_a_user,
    sessions_of_sso_are_its_alive_token_sessions,
    authorization_codes_are_redeemed_once_and_replays_recognised,
    concurrent_redemptions_of_one_code_redeem_it_once,
    consent_is_granted_replaced_read_and_revoked,
    deleting_a_user_removes_sso_sessions_codes_and_consents,
    purge_removes_old_codes_and_long_ended_sso_sessions,
    heartbeats_count_the_nodes_alive,
    a_lease_has_one_holder_until_it_expires,
    concurrent_lease_takers_get_one_lease,
    outbox_rows_are_claimed_once_and_retried_later,
    concurrent_outbox_claims_never_share_a_row,
    known_devices_are_upserted_bounded_and_purged,
    one_time_tokens_keep_their_session,
    totp_steps_are_accepted_once_and_confirm_the_factor,
    recovery_codes_are_single_use_and_replaced_as_a_set,
    removing_the_last_factor_voids_the_codes_and_users_take_theirs_along,
    passkeys_are_found_by_credential_unique_and_counted_once,
    role_graph_changes_commit_only_at_the_version_they_saw,
    api_keys_are_owned_listed_revoked_once_and_touched_in_batches,
);

async fn heartbeats_count_the_nodes_alive(backend: &str) {
    let Some(db) = fresh(backend, true).await else {
        return;
    };
    let s = &db.store;
    assert_eq!(s.heartbeat("a", 1000, 1000, 985).await.unwrap(), 1);
    assert_eq!(s.heartbeat("b", 1002, 1002, 987).await.unwrap(), 2);
    assert_eq!(s.heartbeat("a", 1000, 1005, 990).await.unwrap(), 2);
    // b went quiet: after 15 s it no longer counts.
    assert_eq!(s.heartbeat("a", 1000, 1020, 1005).await.unwrap(), 1);
    // A node that leaves stops counting at once.
    assert_eq!(s.heartbeat("c", 1020, 1020, 1005).await.unwrap(), 2);
    s.leave("c").await.unwrap();
    assert_eq!(s.heartbeat("a", 1000, 1021, 1006).await.unwrap(), 1);
    // Rows of nodes gone for a day are forgotten (b is back as a new row).
    assert_eq!(
        s.heartbeat("a", 1000, 1002 + 86_401, 1002 + 86_386)
            .await
            .unwrap(),
        1
    );
    assert_eq!(s.heartbeat("b", 1002, 1002 + 86_402, 0).await.unwrap(), 2);
}

async fn a_lease_has_one_holder_until_it_expires(backend: &str) {
    let Some(db) = fresh(backend, true).await else {
        return;
    };
    let s = &db.store;
    assert!(s.acquire_lease("cleanup", "node-a", 100, 130).await.unwrap());
    // Held: another node cannot take it, its holder renews it.
    assert!(!s.acquire_lease("cleanup", "node-b", 110, 140).await.unwrap());
    assert!(s.acquire_lease("cleanup", "node-a", 120, 150).await.unwrap());
    assert!(!s.acquire_lease("cleanup", "node-b", 149, 179).await.unwrap());
    // Another lease is independent.
    assert!(s.acquire_lease("key-rotation", "node-b", 149, 179).await.unwrap());
    // Expired (its holder died): the next taker gets it, and the old holder has lost it.
    assert!(s.acquire_lease("cleanup", "node-b", 150, 180).await.unwrap());
    assert!(!s.acquire_lease("cleanup", "node-a", 151, 181).await.unwrap());
    // Released by someone else: nothing happens; by its holder: free at once.
    s.release_lease("cleanup", "node-a").await.unwrap();
    assert!(!s.acquire_lease("cleanup", "node-c", 152, 182).await.unwrap());
    s.release_lease("cleanup", "node-b").await.unwrap();
    assert!(s.acquire_lease("cleanup", "node-c", 152, 182).await.unwrap());
}

async fn concurrent_lease_takers_get_one_lease(backend: &str) {
    let Some(db) = fresh(backend, true).await else {
        return;
    };
    for round in 0..5 {
        let name = format!("job-{round}");
        let mut tasks = Vec::new();
        for n in 0..10 {
            let store = db.store.clone();
            let name = name.clone();
            tasks.push(tokio::spawn(async move {
                store.acquire_lease(&name, &format!("node-{n}"), 100, 130).await
            }));
        }
        let mut winners = 0;
        for task in tasks {
            // A PostgreSQL serialisation error would be an error, not a win: unwrap shows it.
            if task.await.unwrap().unwrap() {
                winners += 1;
            }
        }
        assert_eq!(winners, 1, "round {round}");
    }
}

fn outbox(id: &str, due: i64) -> OutboxRecord {
    OutboxRecord {
        id: id.to_owned(),
        client_id: "shop".to_owned(),
        uri: "https://shop.example/logout".to_owned(),
        user_id: "u1".to_owned(),
        sso_session_id: format!("sso-{id}"),
        attempts: 0,
        next_attempt_at: due,
        created_at: 100,
        last_error: None,
    }
}

async fn outbox_rows_are_claimed_once_and_retried_later(backend: &str) {
    let Some(db) = fresh(backend, true).await else {
        return;
    };
    let s = &db.store;
    s.enqueue_backchannel(&outbox("one", 100)).await.unwrap();
    s.enqueue_backchannel(&outbox("two", 105)).await.unwrap();
    s.enqueue_backchannel(&outbox("later", 200)).await.unwrap();
    let claimed = s.claim_backchannel(110, 140, 10).await.unwrap();
    let ids: Vec<&str> = claimed.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(ids, ["one", "two"]);
    assert_eq!(claimed[0].next_attempt_at, 140);
    assert_eq!(claimed[0].sso_session_id, "sso-one");
    // Claimed: not handed out again until the claim runs out.
    assert!(s.claim_backchannel(139, 169, 10).await.unwrap().is_empty());
    // A failed attempt is recorded and retried at its time.
    s.retry_backchannel("one", 1, 150, "status 500").await.unwrap();
    s.finish_backchannel("two").await.unwrap();
    let again = s.claim_backchannel(150, 180, 10).await.unwrap();
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].id, "one");
    assert_eq!(again[0].attempts, 1);
    assert_eq!(again[0].last_error.as_deref(), Some("status 500"));
    // The limit holds; finished rows are gone.
    s.finish_backchannel("one").await.unwrap();
    assert_eq!(s.claim_backchannel(1000, 1030, 1).await.unwrap().len(), 1);
    assert!(s.claim_backchannel(1000, 1030, 10).await.unwrap().is_empty());
}

async fn concurrent_outbox_claims_never_share_a_row(backend: &str) {
    let Some(db) = fresh(backend, true).await else {
        return;
    };
    for n in 0..20 {
        db.store
            .enqueue_backchannel(&outbox(&format!("r{n}"), 100))
            .await
            .unwrap();
    }
    let mut tasks = Vec::new();
    for _ in 0..6 {
        let store = db.store.clone();
        tasks.push(tokio::spawn(async move {
            store.claim_backchannel(100, 130, 20).await
        }));
    }
    let mut seen = Vec::new();
    for task in tasks {
        for record in task.await.unwrap().unwrap() {
            seen.push(record.id);
        }
    }
    seen.sort();
    let total = seen.len();
    seen.dedup();
    assert_eq!(seen.len(), total, "a row was claimed twice");
    assert_eq!(total, 20, "every due row was claimed once");
}

fn key(kid: &str, alg: &str, activates_at: i64) -> StoredKey {
    StoredKey {
        kid: kid.to_owned(),
        alg: alg.to_owned(),
        encrypted_private_key: vec![1, 2, 3, 0, 255],
        public_jwk: format!(r#"{{"kid":"{kid}"}}"#),
        created_at: activates_at,
        activates_at,
        retires_at: None,
        expires_at: None,
    }
}

async fn migrations_apply_from_empty_and_are_idempotent(backend: &str) {
    let Some(db) = fresh(backend, false).await else {
        return;
    };
    let before = db.store.migration_status().await.unwrap();
    assert!(!before.is_empty());
    assert!(before.iter().all(|(_, _, applied)| !applied));
    db.store.migrate().await.unwrap();
    db.store.migrate().await.unwrap();
    let after = db.store.migration_status().await.unwrap();
    assert!(after.iter().all(|(_, _, applied)| *applied), "{after:?}");
    db.store.ping().await.unwrap();
}

/// Data written under each migration must survive every later one (Hydra's migratest
/// idea): fixtures are inserted right after the migration that created their table.
async fn fixture_rows_survive_later_migrations(backend: &str) {
    let Some(db) = fresh(backend, false).await else {
        return;
    };
    let all = db.store.migration_status().await.unwrap();
    for (version, _, _) in &all {
        db.store.migrate_to(*version).await.unwrap();
        if *version == 1 {
            assert!(db
                .store
                .bootstrap_keys(&[key("fixture-1", "ES256", 100)])
                .await
                .unwrap());
        }
        if *version == 2 {
            // Today's store writes columns later migrations added: raw SQL of the time.
            insert_client_as_of_v2(&db.url, &client("fixture-client")).await;
            insert_session_as_of(&db.url, &session("fixture-sid", "u1", "web", 1_000), 2).await;
            db.store
                .add_revocation(RevokedKind::Token, "fixture-jti", 5_000, 1_000)
                .await
                .unwrap();
            db.store
                .record_audit(&audit(1_000, "fixture", Some("u1")))
                .await
                .unwrap();
        }
        if *version == 3 {
            // Today's store writes the column migration 12 added: raw SQL of the time.
            insert_user_as_of_v3(&db.url, &user("fixture-user", "fixture@example.com", 1_000)).await;
            assert!(db
                .store
                .set_password("fixture-user", "h1", 1_100, 5)
                .await
                .unwrap());
            // Today's store writes the column migration 6 added: raw SQL of the time.
            insert_one_time_token_as_of_v3(
                &db.url,
                &one_time("fixture-ott", "verify_email", "fixture-user", 1_100),
            )
            .await;
        }
        if *version == 4 {
            let store = &db.store;
            // Today's store writes the columns migrations 15, 16 and 18 added: raw SQL of
            // the time.
            insert_sso_as_of_v4(&db.url, &sso("fixture-sso", "fixture-user", 1_200)).await;
            insert_code_as_of_v4(
                &db.url,
                &code("fixture-code", "fixture-user", "fixture-sso", 1_200),
            )
            .await;
            store
                .grant_consent("fixture-user", "fixture-client", "openid profile", 1_200)
                .await
                .unwrap();
            let linked = SessionRecord {
                sso_session_id: Some("fixture-sso".to_owned()),
                ..session("fixture-sid-4", "fixture-user", "web", 1_200)
            };
            insert_session_as_of(&db.url, &linked, 4).await;
        }
    }
    db.store.migrate().await.unwrap();
    let keys = db.store.all_keys().await.unwrap();
    assert_eq!(keys, vec![key("fixture-1", "ES256", 100)]);
    if all.iter().any(|(version, _, _)| *version >= 2) {
        let store = &db.store;
        assert_eq!(
            store.client("fixture-client").await.unwrap(),
            Some(client("fixture-client"))
        );
        assert_eq!(
            store.session("fixture-sid").await.unwrap(),
            Some(session("fixture-sid", "u1", "web", 1_000))
        );
        assert!(store.refresh_token("rt-fixture-sid").await.unwrap().is_some());
        assert!(store
            .is_revoked(RevokedKind::Token, "fixture-jti", 1_000)
            .await
            .unwrap());
        let records = store.audit_records(&AuditQuery::default()).await.unwrap();
        assert_eq!(records.len(), 1);
    }
    if all.iter().any(|(version, _, _)| *version >= 3) {
        let store = &db.store;
        let mut expected = user("fixture-user", "fixture@example.com", 1_000);
        expected.password_hash = Some("h1".to_owned());
        expected.password_changed_at = Some(1_100);
        expected.updated_at = 1_100;
        assert_eq!(store.user("fixture-user").await.unwrap(), Some(expected));
        assert_eq!(store.password_history("fixture-user", 10).await.unwrap(), ["h0"]);
        let token = store
            .consume_one_time_token("fixture-ott", "verify_email", 1_200)
            .await
            .unwrap();
        assert_eq!(
            token,
            Some(OneTimeTokenRecord {
                used_at: Some(1_200),
                ..one_time("fixture-ott", "verify_email", "fixture-user", 1_100)
            })
        );
    }
    if all.iter().any(|(version, _, _)| *version >= 4) {
        let store = &db.store;
        assert_eq!(
            store
                .sso_session_by_secret("secret-fixture-sso", 1_300)
                .await
                .unwrap(),
            Some(sso("fixture-sso", "fixture-user", 1_200))
        );
        assert_eq!(
            store
                .consent("fixture-user", "fixture-client")
                .await
                .unwrap()
                .as_deref(),
            Some("openid profile")
        );
        assert_eq!(
            ids(&store.sessions_of_sso("fixture-sso", 1_300).await.unwrap()),
            ["fixture-sid-4"]
        );
        assert_eq!(
            store
                .redeem_authorization_code("fixture-code", 1_210)
                .await
                .unwrap(),
            CodeRedemption::Redeemed(AuthorizationCodeRecord {
                used_at: Some(1_210),
                ..code("fixture-code", "fixture-user", "fixture-sso", 1_200)
            })
        );
    }
}

/// Inserts a single-use token as migration 3 shaped the table (no `session_id`).
async fn insert_one_time_token_as_of_v3(url: &str, t: &OneTimeTokenRecord) {
    use sqlx::Connection;
    sqlx::any::install_default_drivers();
    let mut conn = sqlx::AnyConnection::connect(url).await.unwrap();
    sqlx::query(
        "INSERT INTO one_time_tokens (token_hash, purpose, user_id, email, created_at, expires_at, used_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(&t.token_hash)
    .bind(&t.purpose)
    .bind(&t.user_id)
    .bind(&t.email)
    .bind(t.created_at)
    .bind(t.expires_at)
    .bind(t.used_at)
    .execute(&mut conn)
    .await
    .unwrap();
    conn.close().await.unwrap();
}

/// Inserts an authorization code as migration 4 shaped the table (no `claims`).
async fn insert_code_as_of_v4(url: &str, c: &AuthorizationCodeRecord) {
    use sqlx::Connection;
    sqlx::any::install_default_drivers();
    let mut conn = sqlx::AnyConnection::connect(url).await.unwrap();
    sqlx::query(
        "INSERT INTO authorization_codes (code_hash, client_id, user_id, sso_session_id, redirect_uri, \
         scope, nonce, code_challenge, code_challenge_method, auth_time, amr, created_at, expires_at, \
         used_at, token_session_id) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)",
    )
    .bind(&c.code_hash)
    .bind(&c.client_id)
    .bind(&c.user_id)
    .bind(&c.sso_session_id)
    .bind(&c.redirect_uri)
    .bind(&c.scope)
    .bind(&c.nonce)
    .bind(&c.code_challenge)
    .bind(&c.code_challenge_method)
    .bind(c.auth_time)
    .bind(&c.amr)
    .bind(c.created_at)
    .bind(c.expires_at)
    .bind(c.used_at)
    .bind(&c.token_session_id)
    .execute(&mut conn)
    .await
    .unwrap();
    conn.close().await.unwrap();
}

/// Inserts `s` and its first token (`rt-<id>`) as migration 2 shaped the tables.
async fn insert_client_as_of_v2(url: &str, c: &ClientRecord) {
    use sqlx::Connection;
    sqlx::any::install_default_drivers();
    let mut conn = sqlx::AnyConnection::connect(url).await.unwrap();
    let json = |list: &[String]| serde_json::to_string(list).unwrap();
    sqlx::query(
        "INSERT INTO clients (client_id, name, secret_hash, token_endpoint_auth_method, channel, \
         grant_types, scopes, redirect_uris, post_logout_redirect_uris, allowed_cors_origins, \
         backchannel_logout_uri, first_party, access_token_ttl_secs, refresh_token_ttl_secs, \
         created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)",
    )
    .bind(&c.client_id)
    .bind(&c.name)
    .bind(&c.secret_hash)
    .bind(&c.token_endpoint_auth_method)
    .bind(&c.channel)
    .bind(json(&c.grant_types))
    .bind(json(&c.scopes))
    .bind(json(&c.redirect_uris))
    .bind(json(&c.post_logout_redirect_uris))
    .bind(json(&c.allowed_cors_origins))
    .bind(&c.backchannel_logout_uri)
    .bind(i64::from(c.first_party))
    .bind(c.access_token_ttl_secs)
    .bind(c.refresh_token_ttl_secs)
    .bind(c.created_at)
    .bind(c.updated_at)
    .execute(&mut conn)
    .await
    .unwrap();
}

/// Inserts a user as migration 3 shaped the table (no `role_terms`).
async fn insert_user_as_of_v3(url: &str, u: &UserRecord) {
    use sqlx::Connection;
    sqlx::any::install_default_drivers();
    let mut conn = sqlx::AnyConnection::connect(url).await.unwrap();
    sqlx::query(
        "INSERT INTO users (id, email, email_verified_at, password_hash, roles, locale, disabled_at, \
         created_at, updated_at, password_changed_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
    )
    .bind(&u.id)
    .bind(&u.email)
    .bind(u.email_verified_at)
    .bind(&u.password_hash)
    .bind(serde_json::to_string(&u.roles).unwrap())
    .bind(&u.locale)
    .bind(u.disabled_at)
    .bind(u.created_at)
    .bind(u.updated_at)
    .bind(u.password_changed_at)
    .execute(&mut conn)
    .await
    .unwrap();
    conn.close().await.unwrap();
}

/// Inserts an SSO session as migration 4 shaped the table (no `idp`, of migration 15).
async fn insert_sso_as_of_v4(url: &str, sso: &SsoSessionRecord) {
    use sqlx::Connection;
    sqlx::any::install_default_drivers();
    let mut conn = sqlx::AnyConnection::connect(url).await.unwrap();
    sqlx::query(
        "INSERT INTO sso_sessions (id, secret_hash, user_id, auth_time, amr, created_at, last_seen_at, \
         expires_at, revoked_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(&sso.id)
    .bind(&sso.secret_hash)
    .bind(&sso.user_id)
    .bind(sso.auth_time)
    .bind(&sso.amr)
    .bind(sso.created_at)
    .bind(sso.last_seen_at)
    .bind(sso.expires_at)
    .bind(sso.revoked_at)
    .execute(&mut conn)
    .await
    .unwrap();
    conn.close().await.unwrap();
}

/// Inserts a session and its first refresh token as migration `version` (2 or 4: with
/// `sso_session_id`; never `active_roles`, of migration 12) shaped the table.
async fn insert_session_as_of(url: &str, s: &SessionRecord, version: i64) {
    use sqlx::Connection;
    sqlx::any::install_default_drivers();
    let mut conn = sqlx::AnyConnection::connect(url).await.unwrap();
    let sso = if version >= 4 { ", sso_session_id" } else { "" };
    let sso_value = if version >= 4 { ", $18" } else { "" };
    let sql = format!(
        "INSERT INTO sessions (id, subject, client_id, channel, user_agent, ip, scope, amr, roles, auth_time, \
         created_at, last_seen_at, idle_expires_at, absolute_expires_at, access_expires_at, revoked_at, \
         revoke_reason{sso}) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17{sso_value})"
    );
    let mut query = sqlx::query(&sql)
        .bind(&s.id)
        .bind(&s.subject)
        .bind(&s.client_id)
        .bind(&s.channel)
        .bind(&s.user_agent)
        .bind(&s.ip)
        .bind(&s.scope)
        .bind(&s.amr)
        .bind(&s.roles)
        .bind(s.auth_time)
        .bind(s.created_at)
        .bind(s.last_seen_at)
        .bind(s.idle_expires_at)
        .bind(s.absolute_expires_at)
        .bind(s.access_expires_at)
        .bind(s.revoked_at)
        .bind(&s.revoke_reason);
    if version >= 4 {
        query = query.bind(&s.sso_session_id);
    }
    query.execute(&mut conn).await.unwrap();
    let t = first_token(s);
    sqlx::query(
        "INSERT INTO refresh_tokens (token_hash, session_id, client_id, generation, issued_at, expires_at, \
         rotated_at, successor_hash) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(&t.token_hash)
    .bind(&t.session_id)
    .bind(&t.client_id)
    .bind(t.generation)
    .bind(t.issued_at)
    .bind(t.expires_at)
    .bind(t.rotated_at)
    .bind(&t.successor_hash)
    .execute(&mut conn)
    .await
    .unwrap();
    conn.close().await.unwrap();
}

async fn exactly_one_bootstrap_wins(backend: &str) {
    let Some(db) = fresh(backend, true).await else {
        return;
    };
    let store: Arc<dyn KeyStore> = Arc::new(db.store.clone());
    let mut tasks = Vec::new();
    for i in 0..8 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            store
                .bootstrap_keys(&[
                    key(&format!("a{i}"), "ES256", 10),
                    key(&format!("b{i}"), "RS256", 10),
                ])
                .await
        }));
    }
    let mut wins = 0;
    for task in tasks {
        // A loser may see the marker row (false) or, on SQLite, a busy database that the
        // caller retries; neither may store keys.
        if let Ok(true) = task.await.unwrap() {
            wins += 1;
        }
    }
    assert_eq!(wins, 1);
    assert_eq!(store.all_keys().await.unwrap().len(), 2);
    assert!(!store.bootstrap_keys(&[key("late", "ES256", 10)]).await.unwrap());
}

async fn rotation_retires_only_the_same_algorithm(backend: &str) {
    let Some(db) = fresh(backend, true).await else {
        return;
    };
    let store = &db.store;
    store
        .bootstrap_keys(&[key("es-1", "ES256", 10), key("rs-1", "RS256", 10)])
        .await
        .unwrap();
    store.rotate_key(&key("es-2", "ES256", 100), 50).await.unwrap();
    let keys = store.all_keys().await.unwrap();
    let by_kid = |kid: &str| keys.iter().find(|k| k.kid == kid).unwrap().clone();
    assert_eq!(by_kid("es-1").retires_at, Some(100));
    assert_eq!(by_kid("es-1").expires_at, Some(150));
    assert_eq!(by_kid("es-2").retires_at, None);
    assert_eq!(by_kid("rs-1").retires_at, None);
    // A second rotation retires es-2 but leaves es-1's schedule alone.
    store.rotate_key(&key("es-3", "ES256", 200), 50).await.unwrap();
    let keys = store.all_keys().await.unwrap();
    let es1 = keys.iter().find(|k| k.kid == "es-1").unwrap();
    let es2 = keys.iter().find(|k| k.kid == "es-2").unwrap();
    assert_eq!((es1.retires_at, es1.expires_at), (Some(100), Some(150)));
    assert_eq!((es2.retires_at, es2.expires_at), (Some(200), Some(250)));
}

async fn expired_keys_leave_the_live_set_and_are_pruned(backend: &str) {
    let Some(db) = fresh(backend, true).await else {
        return;
    };
    let store = &db.store;
    store.bootstrap_keys(&[key("es-1", "ES256", 10)]).await.unwrap();
    store.rotate_key(&key("es-2", "ES256", 100), 50).await.unwrap();
    let live = |now| async move {
        store
            .live_keys(now)
            .await
            .unwrap()
            .into_iter()
            .map(|k| k.kid)
            .collect::<Vec<_>>()
    };
    assert_eq!(live(149).await, ["es-1", "es-2"]);
    assert_eq!(live(150).await, ["es-2"]);
    assert_eq!(store.prune_keys(150).await.unwrap(), 0);
    assert_eq!(store.prune_keys(151).await.unwrap(), 1);
    assert_eq!(store.all_keys().await.unwrap().len(), 1);
}

async fn duplicate_kid_is_a_conflict(backend: &str) {
    let Some(db) = fresh(backend, true).await else {
        return;
    };
    db.store
        .bootstrap_keys(&[key("same", "ES256", 10)])
        .await
        .unwrap();
    let err = db
        .store
        .rotate_key(&key("same", "ES256", 20), 5)
        .await
        .unwrap_err();
    assert!(matches!(err, tessera_store::StoreError::Conflict(_)), "{err:?}");
    // The failed rotation changed nothing (one transaction).
    assert_eq!(db.store.all_keys().await.unwrap()[0].retires_at, None);
}

// ---------------------------------------------------------------------------------------
// Clients, sessions, refresh tokens, revocations, audit, maintenance.
// ---------------------------------------------------------------------------------------

/// Idle and absolute lifetimes and access-token lifetime of the sessions below.
const IDLE: i64 = 1_800;
const ABSOLUTE: i64 = 86_400;
const ACCESS: i64 = 300;

fn client(client_id: &str) -> ClientRecord {
    ClientRecord {
        client_id: client_id.to_owned(),
        name: format!("Client {client_id} — ünïcode"),
        secret_hash: Some("c2VjcmV0LWhhc2g".to_owned()),
        token_endpoint_auth_method: "client_secret_basic".to_owned(),
        channel: "web".to_owned(),
        token_endpoint_auth_signing_alg: None,
        jwks: None,
        jwks_uri: None,
        secret_sealed: None,
        request_object_signing_alg: None,
        grant_types: vec!["authorization_code".to_owned(), "refresh_token".to_owned()],
        scopes: vec![
            "openid".to_owned(),
            "profile".to_owned(),
            "offline_access".to_owned(),
        ],
        redirect_uris: vec![
            "https://app.example/cb".to_owned(),
            "https://app.example/cb?x=\"y\"".to_owned(),
        ],
        post_logout_redirect_uris: vec![],
        allowed_cors_origins: vec!["https://app.example".to_owned()],
        backchannel_logout_uri: None,
        first_party: true,
        access_token_ttl_secs: Some(600),
        refresh_token_ttl_secs: None,
        mfa_policy: None,
        require_pushed_authorization_requests: false,
        created_at: 1_000,
        updated_at: 1_000,
    }
}

fn session(id: &str, subject: &str, channel: &str, created_at: i64) -> SessionRecord {
    SessionRecord {
        id: id.to_owned(),
        subject: subject.to_owned(),
        client_id: "app".to_owned(),
        channel: channel.to_owned(),
        user_agent: Some("test-agent/1".to_owned()),
        ip: Some("192.0.2.1".to_owned()),
        scope: "openid offline_access".to_owned(),
        amr: "pwd otp".to_owned(),
        roles: "member admin".to_owned(),
        active_roles: None,
        dpop_jkt: None,
        auth_time: created_at,
        created_at,
        last_seen_at: created_at,
        idle_expires_at: created_at + IDLE,
        absolute_expires_at: created_at + ABSOLUTE,
        access_expires_at: created_at + ACCESS,
        revoked_at: None,
        revoke_reason: None,
        sso_session_id: None,
        idp: None,
    }
}

fn first_token(s: &SessionRecord) -> RefreshRecord {
    RefreshRecord {
        token_hash: format!("rt-{}", s.id),
        session_id: s.id.clone(),
        client_id: s.client_id.clone(),
        generation: 0,
        issued_at: s.created_at,
        expires_at: s.absolute_expires_at,
        rotated_at: None,
        successor_hash: None,
    }
}

/// Creates `s` with its first token `rt-<id>`; the outcome must be `Created`.
async fn create(store: &SqlStore, s: &SessionRecord, limit: SessionLimit) -> Vec<SessionRecord> {
    match store.create_session(s, &first_token(s), limit).await.unwrap() {
        CreateOutcome::Created { revoked } => revoked,
        CreateOutcome::LimitReached => panic!("limit reached creating {}", s.id),
    }
}

fn rotation(presented: &str, child: &str, now: i64) -> Rotation {
    Rotation {
        presented_hash: presented.to_owned(),
        client_id: "app".to_owned(),
        child_hash: child.to_owned(),
        now,
        idle_secs: IDLE,
        access_expires_at: now + ACCESS,
        ip: None,
        user_agent: None,
    }
}

fn audit(at: i64, event: &str, subject: Option<&str>) -> AuditRecord {
    AuditRecord {
        at,
        event: event.to_owned(),
        actor: subject.map(|s| format!("user:{s}")),
        subject: subject.map(str::to_owned),
        session_id: Some("sid-1".to_owned()),
        client_id: Some("app".to_owned()),
        ip: Some("192.0.2.1".to_owned()),
        user_agent: None,
        outcome: "success".to_owned(),
        request_id: Some(format!("req-{at}")),
        detail: Some(r#"{"reason":"test"}"#.to_owned()),
        ..AuditRecord::default()
    }
}

fn ids(sessions: &[SessionRecord]) -> Vec<&str> {
    sessions.iter().map(|s| s.id.as_str()).collect()
}

async fn client_crud_and_lists_round_trip(backend: &str) {
    let Some(db) = fresh(backend, true).await else {
        return;
    };
    let store = &db.store;
    assert_eq!(store.client("b").await.unwrap(), None);
    let b = client("b");
    let mut a = client("a");
    a.secret_hash = None;
    a.token_endpoint_auth_method = "none".to_owned();
    a.first_party = false;
    a.grant_types = vec![];
    a.backchannel_logout_uri = Some("https://rp.example/bc".to_owned());
    a.access_token_ttl_secs = None;
    a.refresh_token_ttl_secs = Some(3_600);
    store.create_client(&b).await.unwrap();
    store.create_client(&a).await.unwrap();
    assert_eq!(store.client("b").await.unwrap(), Some(b.clone()));
    assert_eq!(store.client("a").await.unwrap(), Some(a.clone()));
    assert_eq!(store.clients().await.unwrap(), vec![a.clone(), b.clone()]);

    let err = store.create_client(&client("b")).await.unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");

    let mut changed = b.clone();
    changed.name = "Renamed".to_owned();
    changed.redirect_uris = vec!["https://new.example/cb".to_owned()];
    changed.scopes = vec![];
    changed.first_party = false;
    changed.token_endpoint_auth_method = "private_key_jwt".to_owned();
    changed.token_endpoint_auth_signing_alg = Some("ES256".to_owned());
    changed.jwks = Some(r#"{"keys":[]}"#.to_owned());
    changed.jwks_uri = Some("https://b.example/jwks".to_owned());
    changed.secret_sealed = Some("AQID".to_owned());
    changed.request_object_signing_alg = Some("none".to_owned());
    changed.created_at = 9_999; // ignored: created_at is kept
    changed.updated_at = 2_000;
    assert!(store.update_client(&changed).await.unwrap());
    let stored = store.client("b").await.unwrap().unwrap();
    assert_eq!(
        stored,
        ClientRecord {
            created_at: 1_000,
            ..changed.clone()
        }
    );
    assert!(!store.update_client(&client("missing")).await.unwrap());

    assert!(store.delete_client("a", 3_000).await.unwrap());
    assert!(!store.delete_client("a", 3_000).await.unwrap());
    assert_eq!(store.client("a").await.unwrap(), None);
    assert_eq!(ids_of_clients(&store.clients().await.unwrap()), ["b"]);
}

fn ids_of_clients(clients: &[ClientRecord]) -> Vec<&str> {
    clients.iter().map(|c| c.client_id.as_str()).collect()
}

async fn sessions_are_stored_and_listed_most_recently_seen_first(backend: &str) {
    let Some(db) = fresh(backend, true).await else {
        return;
    };
    let store = &db.store;
    let s1 = session("s1", "u1", "web", 1_000);
    let mut s2 = session("s2", "u1", "mobile", 1_100);
    s2.user_agent = None;
    s2.ip = None;
    let s3 = session("s3", "u1", "web", 1_200);
    let other = session("o1", "u2", "web", 1_300);
    for s in [&s1, &s2, &s3, &other] {
        assert!(create(store, s, SessionLimit::Unlimited).await.is_empty());
    }
    assert_eq!(store.session("s2").await.unwrap(), Some(s2.clone()));
    assert_eq!(store.session("nope").await.unwrap(), None);
    assert_eq!(
        store.refresh_token("rt-s1").await.unwrap(),
        Some(first_token(&s1))
    );
    assert_eq!(store.refresh_token("nope").await.unwrap(), None);

    assert_eq!(
        ids(&store.alive_sessions("u1", 1_500).await.unwrap()),
        ["s3", "s2", "s1"]
    );
    // Seeing s1 again makes it the most recent.
    let extended = store.extend_session("s1", IDLE, 1_600).await.unwrap().unwrap();
    assert_eq!(extended.last_seen_at, 1_600);
    assert_eq!(extended.idle_expires_at, 1_600 + IDLE);
    assert_eq!(
        ids(&store.alive_sessions("u1", 1_700).await.unwrap()),
        ["s1", "s3", "s2"]
    );
    assert_eq!(ids(&store.alive_sessions("u2", 1_700).await.unwrap()), ["o1"]);
    assert!(store.alive_sessions("nobody", 1_700).await.unwrap().is_empty());

    // A session id or first-token hash that is taken is a conflict and writes nothing.
    let err = store
        .create_session(
            &s1,
            &first_token(&session("fresh", "u1", "web", 1_000)),
            SessionLimit::Unlimited,
        )
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");
    let dup_token = session("s9", "u1", "web", 1_000);
    let err = store
        .create_session(&dup_token, &first_token(&s1), SessionLimit::Reject(10))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");
    assert_eq!(store.session("s9").await.unwrap(), None);
}

async fn sessions_expire_by_idle_and_absolute_time(backend: &str) {
    let Some(db) = fresh(backend, true).await else {
        return;
    };
    let store = &db.store;
    let s = session("s1", "u1", "web", 1_000);
    create(store, &s, SessionLimit::Unlimited).await;
    let idle_end = 1_000 + IDLE;
    assert_eq!(
        ids(&store.alive_sessions("u1", idle_end - 1).await.unwrap()),
        ["s1"]
    );
    assert!(store.alive_sessions("u1", idle_end).await.unwrap().is_empty());
    assert_eq!(store.extend_session("s1", IDLE, idle_end).await.unwrap(), None);
    // Nothing changed on the expired session.
    assert_eq!(store.session("s1").await.unwrap(), Some(s.clone()));

    // Kept alive by activity, it still ends at its absolute expiry.
    let t = session("t1", "u2", "web", 1_000);
    create(store, &t, SessionLimit::Unlimited).await;
    let absolute_end = 1_000 + ABSOLUTE;
    let mut now = 1_000;
    while now + IDLE / 2 < absolute_end {
        now += IDLE / 2;
        assert!(
            store.extend_session("t1", IDLE, now).await.unwrap().is_some(),
            "at {now}"
        );
    }
    assert_eq!(
        ids(&store.alive_sessions("u2", absolute_end - 1).await.unwrap()),
        ["t1"]
    );
    assert!(store.alive_sessions("u2", absolute_end).await.unwrap().is_empty());
    assert_eq!(
        store.extend_session("t1", IDLE, absolute_end).await.unwrap(),
        None
    );
    assert!(!store.session("t1").await.unwrap().unwrap().is_alive(absolute_end));
}

async fn extending_never_passes_the_absolute_expiry(backend: &str) {
    let Some(db) = fresh(backend, true).await else {
        return;
    };
    let store = &db.store;
    let s = session("s1", "u1", "web", 1_000);
    create(store, &s, SessionLimit::Unlimited).await;
    let absolute_end = s.absolute_expires_at;
    let near_end = absolute_end - 10;
    // Walk up to the end in idle-sized steps.
    let mut now = 1_000;
    while now + IDLE - 1 < near_end {
        now += IDLE - 1;
        store.extend_session("s1", IDLE, now).await.unwrap().unwrap();
    }
    let extended = store.extend_session("s1", IDLE, near_end).await.unwrap().unwrap();
    assert_eq!(extended.idle_expires_at, absolute_end);
    assert_eq!(extended.absolute_expires_at, absolute_end);
    assert_eq!(extended.last_seen_at, near_end);
    // A huge idle window changes nothing either (and does not overflow).
    let extended = store
        .extend_session("s1", i64::MAX, near_end + 1)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(extended.idle_expires_at, absolute_end);
    // Rotation clamps the same way.
    let outcome = store
        .rotate_refresh_token(&rotation("rt-s1", "c1", near_end + 2))
        .await
        .unwrap();
    let RotateOutcome::Rotated { session, child } = outcome else {
        panic!("not rotated: {outcome:?}");
    };
    assert_eq!(session.idle_expires_at, absolute_end);
    assert_eq!(child.expires_at, absolute_end);
}

async fn note_access_token_keeps_the_later_expiry(backend: &str) {
    let Some(db) = fresh(backend, true).await else {
        return;
    };
    let store = &db.store;
    let s = session("s1", "u1", "web", 1_000);
    create(store, &s, SessionLimit::Unlimited).await;
    assert!(store.note_access_token("s1", 2_000, 1_100).await.unwrap());
    assert!(store.note_access_token("s1", 1_500, 1_200).await.unwrap());
    assert_eq!(
        store.session("s1").await.unwrap().unwrap().access_expires_at,
        2_000
    );
    assert!(!store.note_access_token("missing", 9_000, 1_200).await.unwrap());
    // Not alive: refused, nothing changed.
    assert!(!store.note_access_token("s1", 9_000, 1_000 + IDLE).await.unwrap());
    store
        .revoke_session("s1", "logout", 1_300)
        .await
        .unwrap()
        .unwrap();
    assert!(!store.note_access_token("s1", 9_000, 1_301).await.unwrap());
    assert_eq!(
        store.session("s1").await.unwrap().unwrap().access_expires_at,
        2_000
    );
}

async fn a_chain_of_100_rotations(backend: &str) {
    let Some(db) = fresh(backend, true).await else {
        return;
    };
    let store = &db.store;
    let s = session("s1", "u1", "web", 1_000);
    create(store, &s, SessionLimit::Unlimited).await;
    let hash = |i: i64| {
        if i == 0 {
            "rt-s1".to_owned()
        } else {
            format!("t{i}")
        }
    };
    for i in 0..100 {
        let now = 1_000 + 10 * (i + 1);
        let mut r = rotation(&hash(i), &hash(i + 1), now);
        r.ip = Some(format!("198.51.100.{}", i % 200));
        let outcome = store.rotate_refresh_token(&r).await.unwrap();
        let RotateOutcome::Rotated { session, child } = outcome else {
            panic!("step {i}: {outcome:?}");
        };
        assert_eq!(child.generation, i + 1);
        assert_eq!(child.token_hash, hash(i + 1));
        assert_eq!(child.session_id, "s1");
        assert_eq!(child.client_id, "app");
        assert_eq!(child.issued_at, now);
        assert_eq!(child.expires_at, s.absolute_expires_at);
        assert_eq!((child.rotated_at, child.successor_hash.as_deref()), (None, None));
        assert_eq!(session.last_seen_at, now);
        assert_eq!(session.idle_expires_at, now + IDLE);
        assert_eq!(session.access_expires_at, now + ACCESS);
        assert_eq!(
            session.ip.as_deref(),
            Some(format!("198.51.100.{}", i % 200).as_str())
        );
        // Not given: kept.
        assert_eq!(session.user_agent.as_deref(), Some("test-agent/1"));
        assert_eq!(store.refresh_token(&child.token_hash).await.unwrap(), Some(child));
    }
    for i in 0..=100 {
        let token = store.refresh_token(&hash(i)).await.unwrap().unwrap();
        assert_eq!(token.generation, i);
        if i < 100 {
            assert_eq!(token.rotated_at, Some(1_000 + 10 * (i + 1)));
            assert_eq!(token.successor_hash, Some(hash(i + 1)));
        } else {
            assert_eq!((token.rotated_at, token.successor_hash), (None, None));
        }
    }
    for i in [0, 1, 50, 98, 99] {
        let outcome = store
            .rotate_refresh_token(&rotation(&hash(i), &format!("again-{i}"), 2_100))
            .await
            .unwrap();
        assert_eq!(outcome, RotateOutcome::NotRotated, "token {i}");
        assert_eq!(store.refresh_token(&format!("again-{i}")).await.unwrap(), None);
    }
    let last = store.refresh_token(&hash(100)).await.unwrap().unwrap();
    assert_eq!(last.rotated_at, None);
}

async fn concurrent_rotations_of_one_token_rotate_it_once(backend: &str) {
    let Some(db) = fresh(backend, true).await else {
        return;
    };
    for round in 0..ROUNDS {
        let s = session(&format!("s{round}"), "u1", "web", 1_000);
        create(&db.store, &s, SessionLimit::Unlimited).await;
        let presented = first_token(&s).token_hash;
        let child_hash = |i: usize| format!("child-{round}-{i}");
        let barrier = Arc::new(tokio::sync::Barrier::new(20));
        let mut tasks = Vec::new();
        for i in 0..20 {
            let store = db.store.clone();
            let barrier = barrier.clone();
            let r = rotation(&presented, &child_hash(i), 1_100);
            tasks.push(tokio::spawn(async move {
                barrier.wait().await;
                store.rotate_refresh_token(&r).await
            }));
        }
        let mut winners = Vec::new();
        for (i, task) in tasks.into_iter().enumerate() {
            match task.await.unwrap().unwrap() {
                RotateOutcome::Rotated { child, .. } => {
                    assert_eq!(child.token_hash, child_hash(i));
                    winners.push(child.token_hash);
                }
                RotateOutcome::NotRotated => {}
            }
        }
        assert_eq!(winners.len(), 1, "round {round}: {winners:?}");
        let mut children = Vec::new();
        for i in 0..20 {
            if let Some(child) = db.store.refresh_token(&child_hash(i)).await.unwrap() {
                assert_eq!(child.generation, 1);
                children.push(child.token_hash);
            }
        }
        assert_eq!(children, winners, "round {round}");
        let parent = db.store.refresh_token(&presented).await.unwrap().unwrap();
        assert_eq!(parent.successor_hash.as_ref(), Some(&winners[0]));
        assert_eq!(parent.rotated_at, Some(1_100));
    }
}

async fn rotation_by_another_client_changes_nothing(backend: &str) {
    let Some(db) = fresh(backend, true).await else {
        return;
    };
    let store = &db.store;
    let s = session("s1", "u1", "web", 1_000);
    create(store, &s, SessionLimit::Unlimited).await;
    let mut r = rotation("rt-s1", "c1", 1_100);
    r.client_id = "intruder".to_owned();
    r.ip = Some("203.0.113.9".to_owned());
    assert_eq!(
        store.rotate_refresh_token(&r).await.unwrap(),
        RotateOutcome::NotRotated
    );
    assert_eq!(store.refresh_token("rt-s1").await.unwrap(), Some(first_token(&s)));
    assert_eq!(store.refresh_token("c1").await.unwrap(), None);
    assert_eq!(store.session("s1").await.unwrap(), Some(s.clone()));
    // Unknown tokens rotate nothing either.
    assert_eq!(
        store
            .rotate_refresh_token(&rotation("unknown", "c2", 1_100))
            .await
            .unwrap(),
        RotateOutcome::NotRotated
    );
    // The rightful client still can.
    let outcome = store
        .rotate_refresh_token(&rotation("rt-s1", "c1", 1_100))
        .await
        .unwrap();
    assert!(matches!(outcome, RotateOutcome::Rotated { .. }), "{outcome:?}");
}

async fn rotation_needs_a_live_token_and_an_alive_session(backend: &str) {
    let Some(db) = fresh(backend, true).await else {
        return;
    };
    let store = &db.store;
    // Revoked session.
    let revoked = session("rev", "u1", "web", 1_000);
    create(store, &revoked, SessionLimit::Unlimited).await;
    store
        .revoke_session("rev", "logout", 1_050)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        store
            .rotate_refresh_token(&rotation("rt-rev", "c-rev", 1_100))
            .await
            .unwrap(),
        RotateOutcome::NotRotated
    );
    assert_eq!(
        store.refresh_token("rt-rev").await.unwrap(),
        Some(first_token(&revoked))
    );
    assert_eq!(store.refresh_token("c-rev").await.unwrap(), None);

    // Idle-expired session: the token itself has not expired, the session has.
    let idle = session("idle", "u1", "mobile", 1_000);
    create(store, &idle, SessionLimit::Unlimited).await;
    let before = store.session("idle").await.unwrap();
    assert_eq!(
        store
            .rotate_refresh_token(&rotation("rt-idle", "c-idle", 1_000 + IDLE))
            .await
            .unwrap(),
        RotateOutcome::NotRotated
    );
    assert_eq!(
        store.refresh_token("rt-idle").await.unwrap(),
        Some(first_token(&idle))
    );
    assert_eq!(store.refresh_token("c-idle").await.unwrap(), None);
    assert_eq!(store.session("idle").await.unwrap(), before);

    // An expired token in an alive session.
    let short = session("short", "u1", "partner", 1_000);
    let mut token = first_token(&short);
    token.expires_at = 1_100;
    store
        .create_session(&short, &token, SessionLimit::Unlimited)
        .await
        .unwrap();
    assert_eq!(
        store
            .rotate_refresh_token(&rotation("rt-short", "c-short", 1_100))
            .await
            .unwrap(),
        RotateOutcome::NotRotated
    );
    assert_eq!(store.refresh_token("rt-short").await.unwrap(), Some(token));

    // A taken child hash fails the whole rotation: the presented token stays unrotated.
    let s = session("s", "u2", "web", 1_000);
    create(store, &s, SessionLimit::Unlimited).await;
    let err = store
        .rotate_refresh_token(&rotation("rt-s", "rt-rev", 1_100))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");
    assert_eq!(store.refresh_token("rt-s").await.unwrap(), Some(first_token(&s)));
    assert_eq!(store.session("s").await.unwrap(), Some(s));
}

async fn reject_limit_refuses_and_writes_nothing(backend: &str) {
    let Some(db) = fresh(backend, true).await else {
        return;
    };
    let store = &db.store;
    create(store, &session("s1", "u1", "web", 1_000), SessionLimit::Reject(1)).await;
    let s2 = session("s2", "u1", "web", 1_100);
    assert_eq!(
        store
            .create_session(&s2, &first_token(&s2), SessionLimit::Reject(1))
            .await
            .unwrap(),
        CreateOutcome::LimitReached
    );
    assert_eq!(store.session("s2").await.unwrap(), None);
    assert_eq!(store.refresh_token("rt-s2").await.unwrap(), None);
    assert_eq!(store.session("s1").await.unwrap().unwrap().revoked_at, None);
    // Other channels and other subjects are counted separately.
    create(
        store,
        &session("m1", "u1", "mobile", 1_100),
        SessionLimit::Reject(1),
    )
    .await;
    create(store, &session("x1", "u2", "web", 1_100), SessionLimit::Reject(1)).await;
    // A limit of 2 admits a second one.
    create(store, &s2, SessionLimit::Reject(2)).await;
    let s3 = session("s3", "u1", "web", 1_200);
    assert_eq!(
        store
            .create_session(&s3, &first_token(&s3), SessionLimit::Reject(2))
            .await
            .unwrap(),
        CreateOutcome::LimitReached
    );
    // Ended sessions do not count: one revoked, then room again.
    store
        .revoke_session("s1", "logout", 1_300)
        .await
        .unwrap()
        .unwrap();
    create(store, &session("s3", "u1", "web", 1_400), SessionLimit::Reject(2)).await;
    // Expired ones neither: at s2/s3's idle expiry (and beyond m1's) everything is free again.
    let later = session("s4", "u1", "web", 1_400 + IDLE);
    create(store, &later, SessionLimit::Reject(1)).await;
    assert_eq!(
        ids(&store.alive_sessions("u1", 1_400 + IDLE).await.unwrap()),
        ["s4"]
    );
}

async fn revoke_oldest_limit_makes_room(backend: &str) {
    let Some(db) = fresh(backend, true).await else {
        return;
    };
    let store = &db.store;
    let s1 = session("s1", "u1", "web", 1_000);
    create(store, &s1, SessionLimit::RevokeOldest(1)).await;
    let revoked = create(
        store,
        &session("s2", "u1", "web", 1_100),
        SessionLimit::RevokeOldest(1),
    )
    .await;
    assert_eq!(ids(&revoked), ["s1"]);
    assert_eq!(revoked[0].revoked_at, Some(1_100));
    assert_eq!(revoked[0].revoke_reason.as_deref(), Some("session_limit"));
    assert_eq!(store.session("s1").await.unwrap(), Some(revoked[0].clone()));
    // s1's access tokens (exp 1_300) are still out there: its sid is on the feed.
    assert!(store.is_revoked(RevokedKind::Session, "s1", 1_100).await.unwrap());
    let feed = store.revocations(0, 0, 1_100).await.unwrap();
    assert_eq!(feed.len(), 1);
    assert_eq!(
        (
            feed[0].kind,
            feed[0].value.as_str(),
            feed[0].expires_at,
            feed[0].revoked_at
        ),
        (RevokedKind::Session, "s1", 1_000 + ACCESS, 1_100)
    );
    assert_eq!(ids(&store.alive_sessions("u1", 1_100).await.unwrap()), ["s2"]);

    // Three alive (s2 plus two more without a limit), a limit of 2: the oldest two go.
    create(store, &session("s3", "u1", "web", 1_200), SessionLimit::Unlimited).await;
    create(store, &session("s4", "u1", "web", 1_300), SessionLimit::Unlimited).await;
    // Another channel is not touched.
    create(
        store,
        &session("m1", "u1", "mobile", 1_000),
        SessionLimit::Unlimited,
    )
    .await;
    // s2's last access token expired at 1_400: no feed entry needed for it.
    let revoked = create(
        store,
        &session("s5", "u1", "web", 1_450),
        SessionLimit::RevokeOldest(2),
    )
    .await;
    assert_eq!(ids(&revoked), ["s2", "s3"]);
    assert!(revoked
        .iter()
        .all(|s| s.revoke_reason.as_deref() == Some("session_limit")));
    assert!(!store.is_revoked(RevokedKind::Session, "s2", 1_450).await.unwrap());
    assert!(store.is_revoked(RevokedKind::Session, "s3", 1_450).await.unwrap());
    assert_eq!(
        ids(&store.alive_sessions("u1", 1_450).await.unwrap()),
        ["s5", "s4", "m1"]
    );
    // Under the limit: nothing revoked.
    assert!(create(
        store,
        &session("m2", "u1", "mobile", 1_500),
        SessionLimit::RevokeOldest(2)
    )
    .await
    .is_empty());
}

async fn zero_limits(backend: &str) {
    let Some(db) = fresh(backend, true).await else {
        return;
    };
    let store = &db.store;
    let s0 = session("s0", "u1", "web", 1_000);
    assert_eq!(
        store
            .create_session(&s0, &first_token(&s0), SessionLimit::Reject(0))
            .await
            .unwrap(),
        CreateOutcome::LimitReached
    );
    assert_eq!(store.session("s0").await.unwrap(), None);
    create(store, &session("s1", "u1", "web", 1_000), SessionLimit::Unlimited).await;
    create(store, &session("s2", "u1", "web", 1_010), SessionLimit::Unlimited).await;
    let revoked = create(
        store,
        &session("s3", "u1", "web", 1_020),
        SessionLimit::RevokeOldest(0),
    )
    .await;
    assert_eq!(ids(&revoked), ["s1", "s2"]);
    assert_eq!(ids(&store.alive_sessions("u1", 1_020).await.unwrap()), ["s3"]);
}

/// Rounds of each concurrency race (a fresh subject each): one round can miss a broken
/// lock by luck; several rarely do.
const ROUNDS: usize = 5;

async fn concurrent_creations_never_pass_a_reject_limit(backend: &str) {
    let Some(db) = fresh(backend, true).await else {
        return;
    };
    for round in 0..ROUNDS {
        let subject = format!("u{round}");
        let barrier = Arc::new(tokio::sync::Barrier::new(10));
        let mut tasks = Vec::new();
        for i in 0..10 {
            let store = db.store.clone();
            let barrier = barrier.clone();
            let s = session(&format!("s{round}-{i}"), &subject, "web", 1_000 + i);
            tasks.push(tokio::spawn(async move {
                barrier.wait().await;
                store
                    .create_session(&s, &first_token(&s), SessionLimit::Reject(1))
                    .await
            }));
        }
        let mut created = 0;
        for task in tasks {
            match task.await.unwrap().unwrap() {
                CreateOutcome::Created { revoked } => {
                    assert!(revoked.is_empty());
                    created += 1;
                }
                CreateOutcome::LimitReached => {}
            }
        }
        assert_eq!(created, 1, "round {round}");
        assert_eq!(db.store.alive_sessions(&subject, 1_100).await.unwrap().len(), 1);
    }
}

async fn concurrent_creations_with_revoke_oldest_leave_one_alive(backend: &str) {
    let Some(db) = fresh(backend, true).await else {
        return;
    };
    for round in 0..ROUNDS {
        let subject = format!("u{round}");
        // The subject's session on another channel stays out of it.
        let other = session(&format!("m{round}"), &subject, "mobile", 900);
        create(&db.store, &other, SessionLimit::Unlimited).await;
        let barrier = Arc::new(tokio::sync::Barrier::new(10));
        let mut tasks = Vec::new();
        for i in 0..10 {
            let store = db.store.clone();
            let barrier = barrier.clone();
            // Same creation time: the order between them is by id.
            let s = session(&format!("s{round}-{i}"), &subject, "web", 1_000);
            tasks.push(tokio::spawn(async move {
                barrier.wait().await;
                store
                    .create_session(&s, &first_token(&s), SessionLimit::RevokeOldest(1))
                    .await
            }));
        }
        let mut revoked = Vec::new();
        for task in tasks {
            match task.await.unwrap().unwrap() {
                CreateOutcome::Created { revoked: r } => revoked.extend(r),
                CreateOutcome::LimitReached => panic!("RevokeOldest never refuses"),
            }
        }
        assert_eq!(revoked.len(), 9, "round {round}: {revoked:?}");
        let alive = db.store.alive_sessions(&subject, 1_000).await.unwrap();
        assert_eq!(alive.len(), 2, "round {round}: {alive:?}");
        assert!(ids(&alive).contains(&other.id.as_str()));
        let mut revoked_ids = revoked.iter().map(|s| s.id.clone()).collect::<Vec<_>>();
        revoked_ids.sort();
        revoked_ids.dedup();
        assert_eq!(revoked_ids.len(), 9);
        for id in &revoked_ids {
            assert!(
                db.store
                    .is_revoked(RevokedKind::Session, id, 1_000)
                    .await
                    .unwrap(),
                "{id}"
            );
        }
    }
    // Exactly one feed entry per revoked session.
    assert_eq!(db.store.revocations(0, 0, 1_000).await.unwrap().len(), 9 * ROUNDS);
}

/// A deleted client's sessions end with it, in the same transaction, and go on the feed;
/// other clients' sessions are untouched.
async fn deleting_a_client_ends_its_sessions(backend: &str) {
    let Some(db) = fresh(backend, true).await else {
        return;
    };
    let store = &db.store;
    store.create_client(&client("app")).await.unwrap();
    store.create_client(&client("other")).await.unwrap();
    create(store, &session("s1", "u1", "web", 1_000), SessionLimit::Unlimited).await;
    create(store, &session("s2", "u2", "web", 1_000), SessionLimit::Unlimited).await;
    let mut elsewhere = session("s3", "u1", "web", 1_000);
    elsewhere.client_id = "other".to_owned();
    create(store, &elsewhere, SessionLimit::Unlimited).await;
    // Already ended: stays as it was.
    create(store, &session("s4", "u3", "web", 1_000), SessionLimit::Unlimited).await;
    store
        .revoke_session("s4", "logout", 1_050)
        .await
        .unwrap()
        .unwrap();
    let feed_before = store.revocations(0, 0, 1_100).await.unwrap().len();

    assert!(store.delete_client("app", 1_100).await.unwrap());
    for id in ["s1", "s2"] {
        let ended = store.session(id).await.unwrap().unwrap();
        assert_eq!(ended.revoked_at, Some(1_100), "{id}");
        assert_eq!(ended.revoke_reason.as_deref(), Some("client_deleted"), "{id}");
    }
    assert_eq!(store.session("s3").await.unwrap().unwrap().revoked_at, None);
    let s4 = store.session("s4").await.unwrap().unwrap();
    assert_eq!(
        (s4.revoked_at, s4.revoke_reason.as_deref()),
        (Some(1_050), Some("logout"))
    );
    let feed: Vec<String> = store
        .revocations(0, 0, 1_100)
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.value)
        .collect();
    assert_eq!(feed.len(), feed_before + 2, "{feed:?}");
    assert!(feed.contains(&"s1".to_owned()) && feed.contains(&"s2".to_owned()));
    // Their refresh tokens no longer rotate (the session is not alive).
    let outcome = store
        .rotate_refresh_token(&rotation("rt-s1", "rt-s1-next", 1_200))
        .await
        .unwrap();
    assert!(!matches!(outcome, RotateOutcome::Rotated { .. }), "{outcome:?}");
    // A client that is not there changes nothing.
    assert!(!store.delete_client("app", 1_250).await.unwrap());
    assert_eq!(store.revocations(0, 0, 1_250).await.unwrap().len(), feed.len());
}

async fn a_session_records_the_roles_it_activates(backend: &str) {
    let Some(db) = fresh(backend, true).await else {
        return;
    };
    let store = &db.store;
    let s1 = session("s1", "u1", "web", 1_000);
    create(store, &s1, SessionLimit::Unlimited).await;
    assert_eq!(store.session("s1").await.unwrap().unwrap().active_roles, None);
    assert!(store.set_active_roles("s1", "cashier", 1_100).await.unwrap());
    assert_eq!(
        store
            .session("s1")
            .await
            .unwrap()
            .unwrap()
            .active_roles
            .as_deref(),
        Some("cashier")
    );
    // Not for a session that ended or never was.
    store.revoke_session("s1", "logout", 1_200).await.unwrap();
    assert!(!store.set_active_roles("s1", "auditor", 1_300).await.unwrap());
    assert!(!store.set_active_roles("nobody", "auditor", 1_300).await.unwrap());
    assert_eq!(
        store
            .session("s1")
            .await
            .unwrap()
            .unwrap()
            .active_roles
            .as_deref(),
        Some("cashier")
    );
}

async fn revoking_a_session_twice_and_all_of_a_subject(backend: &str) {
    let Some(db) = fresh(backend, true).await else {
        return;
    };
    let store = &db.store;
    let s1 = session("s1", "u1", "web", 1_000);
    create(store, &s1, SessionLimit::Unlimited).await;
    let revoked = store
        .revoke_session("s1", "logout", 1_100)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        revoked,
        SessionRecord {
            revoked_at: Some(1_100),
            revoke_reason: Some("logout".to_owned()),
            ..s1.clone()
        }
    );
    assert_eq!(store.revoke_session("s1", "again", 1_200).await.unwrap(), None);
    assert_eq!(store.session("s1").await.unwrap(), Some(revoked));
    assert_eq!(
        store.revoke_session("missing", "logout", 1_200).await.unwrap(),
        None
    );
    let seq_after_first = store.latest_revocation_seq().await.unwrap();
    assert!(seq_after_first > 0);
    assert_eq!(store.revocations(0, 0, 1_200).await.unwrap().len(), 1);

    // An idle-expired session is not revoked (nothing written).
    create(store, &session("old", "u1", "mobile", 0), SessionLimit::Unlimited).await;
    assert_eq!(store.revoke_session("old", "logout", IDLE).await.unwrap(), None);
    // Revoking after the last access token expired revokes, without a feed entry.
    create(
        store,
        &session("late", "u1", "partner", 1_000),
        SessionLimit::Unlimited,
    )
    .await;
    let late = store
        .revoke_session("late", "logout", 1_000 + ACCESS)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(late.revoked_at, Some(1_000 + ACCESS));
    assert!(!store
        .is_revoked(RevokedKind::Session, "late", 1_000 + ACCESS)
        .await
        .unwrap());
    assert_eq!(store.latest_revocation_seq().await.unwrap(), seq_after_first);

    // All of a subject: only the alive ones, with feed entries; other subjects untouched.
    for (id, channel) in [("a", "web"), ("b", "mobile"), ("c", "web")] {
        create(store, &session(id, "u2", channel, 2_000), SessionLimit::Unlimited).await;
    }
    create(
        store,
        &session("other", "u3", "web", 2_000),
        SessionLimit::Unlimited,
    )
    .await;
    store.revoke_session("b", "logout", 2_010).await.unwrap().unwrap();
    let revoked = store
        .revoke_sessions_of("u2", "user_disabled", 2_020)
        .await
        .unwrap();
    assert_eq!(ids(&revoked), ["a", "c"]);
    assert!(revoked
        .iter()
        .all(|s| s.revoked_at == Some(2_020) && s.revoke_reason.as_deref() == Some("user_disabled")));
    assert_eq!(
        store
            .session("b")
            .await
            .unwrap()
            .unwrap()
            .revoke_reason
            .as_deref(),
        Some("logout")
    );
    for id in ["a", "b", "c"] {
        assert!(
            store.is_revoked(RevokedKind::Session, id, 2_020).await.unwrap(),
            "{id}"
        );
    }
    assert!(!store
        .is_revoked(RevokedKind::Session, "other", 2_020)
        .await
        .unwrap());
    assert!(store
        .revoke_sessions_of("u2", "again", 2_030)
        .await
        .unwrap()
        .is_empty());
    assert_eq!(ids(&store.alive_sessions("u3", 2_030).await.unwrap()), ["other"]);
    // Their refresh tokens are dead with them.
    assert_eq!(
        store
            .rotate_refresh_token(&rotation("rt-a", "a1", 2_040))
            .await
            .unwrap(),
        RotateOutcome::NotRotated
    );
}

async fn revocation_feed_dedupes_pages_and_expires(backend: &str) {
    let Some(db) = fresh(backend, true).await else {
        return;
    };
    let store = &db.store;
    assert_eq!(store.latest_revocation_seq().await.unwrap(), 0);
    assert!(store.revocations(0, 0, 0).await.unwrap().is_empty());

    let j1 = store
        .add_revocation(RevokedKind::Token, "j1", 2_000, 1_000)
        .await
        .unwrap();
    // Again, with an expiry no later: the same entry.
    assert_eq!(
        store
            .add_revocation(RevokedKind::Token, "j1", 2_000, 1_010)
            .await
            .unwrap(),
        j1
    );
    assert_eq!(
        store
            .add_revocation(RevokedKind::Token, "j1", 1_500, 1_020)
            .await
            .unwrap(),
        j1
    );
    // The same value as another kind is another entry.
    let s1 = store
        .add_revocation(RevokedKind::Session, "j1", 2_000, 1_030)
        .await
        .unwrap();
    assert!(s1 > j1);
    // A later expiry is a new entry.
    let j1_later = store
        .add_revocation(RevokedKind::Token, "j1", 3_000, 1_040)
        .await
        .unwrap();
    assert!(j1_later > s1);
    assert_eq!(
        store
            .add_revocation(RevokedKind::Token, "j1", 2_500, 1_050)
            .await
            .unwrap(),
        j1_later
    );
    let j2 = store
        .add_revocation(RevokedKind::Token, "j2", 1_200, 1_100)
        .await
        .unwrap();
    assert!(j2 > j1_later);
    assert_eq!(store.latest_revocation_seq().await.unwrap(), j2);

    let seqs = |records: Vec<tessera_store::durable::RevocationRecord>| {
        records.into_iter().map(|r| r.seq).collect::<Vec<_>>()
    };
    let all = store.revocations(0, 0, 1_100).await.unwrap();
    assert_eq!(
        all.iter().map(|r| r.seq).collect::<Vec<_>>(),
        [j1, s1, j1_later, j2]
    );
    assert_eq!(
        (
            all[0].kind,
            all[0].value.as_str(),
            all[0].expires_at,
            all[0].revoked_at
        ),
        (RevokedKind::Token, "j1", 2_000, 1_000)
    );
    assert_eq!(all[1].kind, RevokedKind::Session);
    // The cursor: only newer ones...
    assert_eq!(
        seqs(store.revocations(s1, i64::MAX, 1_100).await.unwrap()),
        [j1_later, j2]
    );
    assert!(store.revocations(j2, i64::MAX, 1_100).await.unwrap().is_empty());
    // ...plus those revoked recently, even behind the cursor.
    assert_eq!(
        seqs(store.revocations(j2, 1_030, 1_100).await.unwrap()),
        [s1, j1_later, j2]
    );
    // Expired entries leave the feed: j2 at 1_200, j1 (first) and s1 at 2_000.
    assert_eq!(
        seqs(store.revocations(0, 0, 1_200).await.unwrap()),
        [j1, s1, j1_later]
    );
    assert_eq!(seqs(store.revocations(0, 0, 2_000).await.unwrap()), [j1_later]);
    assert!(store.revocations(0, 0, 3_000).await.unwrap().is_empty());

    assert!(store.is_revoked(RevokedKind::Token, "j2", 1_199).await.unwrap());
    assert!(!store.is_revoked(RevokedKind::Token, "j2", 1_200).await.unwrap());
    assert!(store.is_revoked(RevokedKind::Token, "j1", 2_999).await.unwrap());
    assert!(!store.is_revoked(RevokedKind::Token, "j1", 3_000).await.unwrap());
    assert!(!store.is_revoked(RevokedKind::Session, "j2", 1_100).await.unwrap());
    assert!(!store
        .is_revoked(RevokedKind::Token, "nobody", 1_100)
        .await
        .unwrap());

    // Once the entry expired, revoking again adds a new one.
    let j2_again = store
        .add_revocation(RevokedKind::Token, "j2", 1_300, 1_250)
        .await
        .unwrap();
    assert!(j2_again > j2);
    assert!(store.is_revoked(RevokedKind::Token, "j2", 1_250).await.unwrap());
}

async fn audit_filters_and_pages_newest_first(backend: &str) {
    let Some(db) = fresh(backend, true).await else {
        return;
    };
    let store = &db.store;
    assert!(store
        .audit_records(&AuditQuery::default())
        .await
        .unwrap()
        .is_empty());
    // 30 records: at = 1000 + 10i, subjects alternate u0/u1/none, events alternate.
    let mut written = Vec::new();
    for i in 0..30_i64 {
        let subject = match i % 3 {
            0 => Some("u0"),
            1 => Some("u1"),
            _ => None,
        };
        let event = if i % 2 == 0 {
            "token.refreshed"
        } else {
            "session.revoked"
        };
        let mut record = audit(1_000 + 10 * i, event, subject);
        if i == 7 {
            record.actor = None;
            record.session_id = None;
            record.detail = None;
            record.user_agent = Some("ua".to_owned());
        }
        let id = store.record_audit(&record).await.unwrap();
        if let Some(last) = written.last() {
            assert!(id > *last);
        }
        written.push(id);
    }
    let stored_at = |records: &[AuditRecord]| records.iter().map(|r| r.at).collect::<Vec<_>>();
    let query = |f: fn(&mut AuditQuery)| {
        let mut q = AuditQuery::default();
        f(&mut q);
        q
    };

    let all = store.audit_records(&AuditQuery::default()).await.unwrap();
    assert_eq!(all.len(), 30);
    assert_eq!(all[0].id, written[29]);
    assert!(all.windows(2).all(|w| w[0].id > w[1].id));
    let seventh = all.iter().find(|r| r.id == written[7]).unwrap();
    let mut expected = audit(1_070, "session.revoked", Some("u1"));
    expected.id = written[7];
    expected.actor = None;
    expected.session_id = None;
    expected.detail = None;
    expected.user_agent = Some("ua".to_owned());
    assert_eq!(seventh, &expected);

    let u1 = store
        .audit_records(&query(|q| q.subject = Some("u1".to_owned())))
        .await
        .unwrap();
    assert_eq!(u1.len(), 10);
    assert!(u1.iter().all(|r| r.subject.as_deref() == Some("u1")));
    let revoked = store
        .audit_records(&query(|q| q.event = Some("session.revoked".to_owned())))
        .await
        .unwrap();
    assert_eq!(revoked.len(), 15);
    // Both: i ≡ 1 (mod 3) and odd → i ∈ {1, 7, 13, 19, 25}.
    let both = store
        .audit_records(&query(|q| {
            q.subject = Some("u1".to_owned());
            q.event = Some("session.revoked".to_owned());
        }))
        .await
        .unwrap();
    assert_eq!(stored_at(&both), [1_250, 1_190, 1_130, 1_070, 1_010]);
    // Time window: since inclusive, until exclusive.
    let window = store
        .audit_records(&query(|q| {
            q.since = Some(1_100);
            q.until = Some(1_150);
        }))
        .await
        .unwrap();
    assert_eq!(stored_at(&window), [1_140, 1_130, 1_120, 1_110, 1_100]);
    let since_and_subject = store
        .audit_records(&query(|q| {
            q.subject = Some("u0".to_owned());
            q.since = Some(1_200);
        }))
        .await
        .unwrap();
    assert_eq!(stored_at(&since_and_subject), [1_270, 1_240, 1_210]);
    assert!(store
        .audit_records(&query(|q| q.subject = Some("nobody".to_owned())))
        .await
        .unwrap()
        .is_empty());

    // Paging with before_id.
    let mut pages = Vec::new();
    let mut before = None;
    loop {
        let page = store
            .audit_records(&AuditQuery {
                before_id: before,
                limit: 7,
                ..AuditQuery::default()
            })
            .await
            .unwrap();
        if page.is_empty() {
            break;
        }
        assert!(page.len() <= 7);
        before = page.last().map(|r| r.id);
        pages.push(page);
    }
    assert_eq!(pages.iter().map(Vec::len).collect::<Vec<_>>(), [7, 7, 7, 7, 2]);
    let paged = pages.concat();
    assert_eq!(paged, all);
    // Paging combines with filters.
    let page = store
        .audit_records(&AuditQuery {
            subject: Some("u1".to_owned()),
            before_id: Some(written[19]),
            limit: 2,
            ..AuditQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(stored_at(&page), [1_160, 1_130]);

    // Limits: 0 means 100, beyond 1000 means 1000.
    for i in 0..1_000 {
        store.record_audit(&audit(5_000 + i, "bulk", None)).await.unwrap();
    }
    assert_eq!(
        store.audit_records(&AuditQuery::default()).await.unwrap().len(),
        100
    );
    let capped = store.audit_records(&query(|q| q.limit = u32::MAX)).await.unwrap();
    assert_eq!(capped.len(), 1_000);
    assert!(capped.iter().all(|r| r.event == "bulk"));
    assert_eq!(
        store
            .audit_records(&query(|q| q.limit = 1_001))
            .await
            .unwrap()
            .len(),
        1_000
    );
    assert_eq!(
        store.audit_records(&query(|q| q.limit = 3)).await.unwrap().len(),
        3
    );
}

async fn audit_batches_commit_whole_in_order(backend: &str) {
    let Some(db) = fresh(backend, true).await else {
        return;
    };
    let store = &db.store;
    store.record_audits(&[]).await.unwrap();
    let first = store.record_audit(&audit(100, "before", None)).await.unwrap();
    let batch: Vec<AuditRecord> = (0..MAX_AUDIT_BATCH as i64)
        .map(|i| {
            let mut record = audit(1_000 + i, "token.issued", Some("u1"));
            if i == 3 {
                // NULLs and text that needs escaping go through the same binds.
                record.actor = None;
                record.detail = Some(r#"{"scope":"a 'quoted' $1 scope"}"#.to_owned());
            }
            record
        })
        .collect();
    store.record_audits(&batch).await.unwrap();
    let stored = store
        .audit_records(&AuditQuery {
            after_id: Some(first),
            limit: 1000,
            ..AuditQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(stored.len(), MAX_AUDIT_BATCH);
    // Newest first; ids increase in the order of the batch.
    let mut oldest_first = stored.clone();
    oldest_first.reverse();
    for (written, read) in batch.iter().zip(&oldest_first) {
        assert_eq!(
            AuditRecord {
                id: read.id,
                ..written.clone()
            },
            *read
        );
    }
    assert!(oldest_first.windows(2).all(|w| w[0].id < w[1].id));

    // Past the limit: refused whole, nothing written.
    let too_many: Vec<AuditRecord> = (0..=MAX_AUDIT_BATCH as i64)
        .map(|i| audit(5_000 + i, "too.many", None))
        .collect();
    assert!(matches!(
        store.record_audits(&too_many).await,
        Err(StoreError::InvalidInput(_))
    ));
    // A batch with one row the database refuses (a NUL in text, on PostgreSQL) commits
    // none of its rows; on SQLite the NUL is stored and the batch commits.
    let mut bad = vec![audit(6_000, "mixed", None), audit(6_001, "mixed", None)];
    bad[1].detail = Some("nul \u{0} here".to_owned());
    let outcome = store.record_audits(&bad).await;
    let mixed = store
        .audit_records(&AuditQuery {
            event: Some("mixed".to_owned()),
            ..AuditQuery::default()
        })
        .await
        .unwrap();
    match outcome {
        Ok(()) => assert_eq!(mixed.len(), 2),
        Err(_) => assert!(mixed.is_empty(), "a failed batch wrote {} rows", mixed.len()),
    }
    let too_many_stored = store
        .audit_records(&AuditQuery {
            event: Some("too.many".to_owned()),
            ..AuditQuery::default()
        })
        .await
        .unwrap();
    assert!(too_many_stored.is_empty());
}

async fn audit_after_id_reads_what_came_later(backend: &str) {
    let Some(db) = fresh(backend, true).await else {
        return;
    };
    let store = &db.store;
    let mut ids = Vec::new();
    for i in 0..10_i64 {
        let event = if i % 2 == 0 {
            "login.failed"
        } else {
            "login.succeeded"
        };
        ids.push(
            store
                .record_audit(&audit(2_000 + i, event, Some("u1")))
                .await
                .unwrap(),
        );
    }
    let after = |after_id: i64, limit: u32| AuditQuery {
        after_id: Some(after_id),
        limit,
        ..AuditQuery::default()
    };
    // Newest first, only what came after the given id.
    let later = store.audit_records(&after(ids[6], 0)).await.unwrap();
    assert_eq!(
        later.iter().map(|r| r.id).collect::<Vec<_>>(),
        [ids[9], ids[8], ids[7]]
    );
    assert!(store.audit_records(&after(ids[9], 0)).await.unwrap().is_empty());
    // With a limit, the newest of them; `before_id` pages back down to `after_id`.
    let first = store.audit_records(&after(ids[2], 3)).await.unwrap();
    assert_eq!(
        first.iter().map(|r| r.at).collect::<Vec<_>>(),
        [2_009, 2_008, 2_007]
    );
    let rest = store
        .audit_records(&AuditQuery {
            after_id: Some(ids[2]),
            before_id: Some(ids[7]),
            ..AuditQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(
        rest.iter().map(|r| r.at).collect::<Vec<_>>(),
        [2_006, 2_005, 2_004, 2_003]
    );
    // Combined with the other filters.
    let failed = store
        .audit_records(&AuditQuery {
            after_id: Some(ids[3]),
            event: Some("login.failed".to_owned()),
            subject: Some("u1".to_owned()),
            ..AuditQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(
        failed.iter().map(|r| r.at).collect::<Vec<_>>(),
        [2_008, 2_006, 2_004]
    );
}

async fn alive_sessions_are_counted_across_subjects(backend: &str) {
    let Some(db) = fresh(backend, true).await else {
        return;
    };
    let store = &db.store;
    assert_eq!(store.count_alive_sessions(1_000).await.unwrap(), 0);
    create(store, &session("a1", "u1", "web", 1_000), SessionLimit::Unlimited).await;
    create(
        store,
        &session("a2", "u1", "mobile", 1_000),
        SessionLimit::Unlimited,
    )
    .await;
    create(store, &session("b1", "u2", "web", 1_100), SessionLimit::Unlimited).await;
    create(store, &session("c1", "u3", "web", 1_200), SessionLimit::Unlimited).await;
    // Not yet created is not counted; then all four.
    assert_eq!(store.count_alive_sessions(1_050).await.unwrap(), 4);
    // A revoked session no longer counts.
    assert!(store
        .revoke_session("a2", "logout", 1_300)
        .await
        .unwrap()
        .is_some());
    assert_eq!(store.count_alive_sessions(1_300).await.unwrap(), 3);
    // Idle expiry: a1 (created 1000) ends at 1000 + IDLE, b1 100 s later.
    assert_eq!(store.count_alive_sessions(1_000 + IDLE - 1).await.unwrap(), 3);
    assert_eq!(store.count_alive_sessions(1_000 + IDLE).await.unwrap(), 2);
    assert_eq!(store.count_alive_sessions(1_100 + IDLE).await.unwrap(), 1);
    // Extended, c1 lives on; nothing is alive past its absolute expiry.
    assert!(store
        .extend_session("c1", IDLE, 1_200 + IDLE - 1)
        .await
        .unwrap()
        .is_some());
    assert_eq!(store.count_alive_sessions(1_200 + IDLE).await.unwrap(), 1);
    assert_eq!(store.count_alive_sessions(1_200 + ABSOLUTE).await.unwrap(), 0);
}

async fn alive_sessions_are_counted_by_channel(backend: &str) {
    let Some(db) = fresh(backend, true).await else {
        return;
    };
    let store = &db.store;
    assert!(store
        .count_alive_sessions_by_channel(1_000)
        .await
        .unwrap()
        .is_empty());
    create(store, &session("a1", "u1", "web", 1_000), SessionLimit::Unlimited).await;
    create(
        store,
        &session("a2", "u1", "mobile", 1_000),
        SessionLimit::Unlimited,
    )
    .await;
    create(store, &session("b1", "u2", "web", 1_100), SessionLimit::Unlimited).await;
    create(
        store,
        &session("c1", "u3", "partner", 1_200),
        SessionLimit::Unlimited,
    )
    .await;
    let counted = |pairs: &[(&str, u64)]| -> Vec<(String, u64)> {
        pairs.iter().map(|(c, n)| ((*c).to_owned(), *n)).collect()
    };
    assert_eq!(
        store.count_alive_sessions_by_channel(1_250).await.unwrap(),
        counted(&[("mobile", 1), ("partner", 1), ("web", 2)])
    );
    // Revoked and idle-expired sessions leave their channel's count; an empty channel goes.
    store.revoke_session("a2", "logout", 1_300).await.unwrap();
    assert_eq!(
        store.count_alive_sessions_by_channel(1_000 + IDLE).await.unwrap(),
        counted(&[("partner", 1), ("web", 1)])
    );
}

async fn alive_sessions_are_paged_most_recently_active_first(backend: &str) {
    let Some(db) = fresh(backend, true).await else {
        return;
    };
    let store = &db.store;
    for (id, subject, at) in [
        ("s1", "u1", 1_000),
        ("s2", "u2", 1_010),
        ("s3", "u1", 1_020),
        ("s4", "u3", 1_020),
        ("s5", "u4", 1_030),
    ] {
        create(store, &session(id, subject, "web", at), SessionLimit::Unlimited).await;
    }
    // s1 is used later than the others: it comes first; a revoked one never shows.
    assert!(store.extend_session("s1", IDLE, 1_100).await.unwrap().is_some());
    store.revoke_session("s2", "logout", 1_100).await.unwrap();
    let ids = |sessions: &[SessionRecord]| sessions.iter().map(|s| s.id.clone()).collect::<Vec<_>>();
    let first = store.alive_sessions_page(1_100, None, 2).await.unwrap();
    assert_eq!(ids(&first), ["s1", "s5"]);
    let last = first.last().unwrap();
    let second = store
        .alive_sessions_page(1_100, Some((last.idle_expires_at, &last.id)), 2)
        .await
        .unwrap();
    // s3 and s4 share an idle expiry: the id decides, and neither is skipped or repeated.
    assert_eq!(ids(&second), ["s4", "s3"]);
    let last = second.last().unwrap();
    let rest = store
        .alive_sessions_page(1_100, Some((last.idle_expires_at, &last.id)), 2)
        .await
        .unwrap();
    assert!(rest.is_empty());
    // Past their idle expiry only the extended one is alive.
    assert_eq!(
        ids(&store.alive_sessions_page(1_030 + IDLE, None, 10).await.unwrap()),
        ["s1"]
    );
}

async fn audit_events_are_counted_per_interval(backend: &str) {
    let Some(db) = fresh(backend, true).await else {
        return;
    };
    let store = &db.store;
    // Three of the event in the first hour, none in the second, one in the third; another
    // event and one outside the window do not count.
    for (at, event) in [
        (9_999, "login.failed"),
        (10_000, "login.failed"),
        (10_001, "login.failed"),
        (13_599, "login.failed"),
        (13_000, "login.succeeded"),
        (17_200, "login.failed"),
        (20_800, "login.failed"),
    ] {
        store.record_audit(&audit(at, event, Some("u1"))).await.unwrap();
    }
    assert_eq!(
        store
            .count_audit_events("login.failed", 10_000, 20_800, 3_600)
            .await
            .unwrap(),
        [3, 0, 1]
    );
    // A window that is not a whole number of intervals ends with a shorter one.
    assert_eq!(
        store
            .count_audit_events("login.failed", 10_000, 17_201, 3_600)
            .await
            .unwrap(),
        [3, 0, 1]
    );
    assert_eq!(
        store
            .count_audit_events("nothing.happened", 10_000, 20_800, 3_600)
            .await
            .unwrap(),
        [0, 0, 0]
    );
    // Nonsense windows are refused rather than answered.
    for (since, until, bucket) in [(10_000, 10_000, 60), (10_000, 20_000, 0), (0, 10_000_000, 1)] {
        assert!(matches!(
            store
                .count_audit_events("login.failed", since, until, bucket)
                .await,
            Err(StoreError::InvalidInput(_))
        ));
    }
}

async fn purge_removes_what_ended_and_keeps_what_is_needed(backend: &str) {
    let Some(db) = fresh(backend, true).await else {
        return;
    };
    let store = &db.store;
    // The pass runs at NOW, keeping ended sessions for RETENTION (so: ended after 9_000).
    const NOW: i64 = 10_000;
    const RETENTION: i64 = 1_000;
    // A: alive, rotated once; both tokens must stay (the old one detects reuse).
    create(store, &session("A", "u1", "web", 9_000), SessionLimit::Unlimited).await;
    let outcome = store
        .rotate_refresh_token(&rotation("rt-A", "A1", 9_100))
        .await
        .unwrap();
    assert!(matches!(outcome, RotateOutcome::Rotated { .. }));
    // E: alive, but its token expired.
    let e = session("E", "u1", "mobile", 9_000);
    let mut e_token = first_token(&e);
    e_token.expires_at = 9_999;
    store
        .create_session(&e, &e_token, SessionLimit::Unlimited)
        .await
        .unwrap();
    // B: revoked recently (kept), C: revoked long ago (deleted).
    create(store, &session("B", "u2", "web", 9_000), SessionLimit::Unlimited).await;
    create(store, &session("C", "u3", "web", 7_900), SessionLimit::Unlimited).await;
    // D: idle-expired long ago (deleted), F: idle-expired recently (kept).
    create(store, &session("D", "u4", "web", 4_000), SessionLimit::Unlimited).await;
    create(store, &session("F", "u5", "web", 7_800), SessionLimit::Unlimited).await;
    store.revoke_session("C", "logout", 8_000).await.unwrap().unwrap(); // feed entry, exp 8_200
    store.revoke_session("B", "logout", 9_800).await.unwrap().unwrap(); // no entry (exp 9_300)
    store
        .add_revocation(RevokedKind::Token, "x1", 9_000, 8_000)
        .await
        .unwrap();
    store
        .add_revocation(RevokedKind::Token, "x2", NOW, 8_000)
        .await
        .unwrap();
    let x3 = store
        .add_revocation(RevokedKind::Token, "x3", NOW + 1, 8_000)
        .await
        .unwrap();
    // The newest entry has expired too; its row stays so the seq never goes backwards.
    let x4 = store
        .add_revocation(RevokedKind::Token, "x4", NOW - 1, 8_000)
        .await
        .unwrap();
    for at in [9_000, 9_499, 9_500, 9_501] {
        store.record_audit(&audit(at, "login", Some("u1"))).await.unwrap();
    }

    let purged = store.purge_expired(NOW, RETENTION, 500).await.unwrap();
    assert_eq!(
        purged,
        Purged {
            refresh_tokens: 5, // E's, B's, C's, D's, F's
            sessions: 2,       // C, D
            revocations: 3,    // C's sid, x1, x2
            audit_records: 2,  // at 9_000 and 9_499
            one_time_tokens: 0,
            authorization_codes: 0,
            sso_sessions: 0,
        }
    );
    for id in ["A", "B", "E", "F"] {
        assert!(store.session(id).await.unwrap().is_some(), "{id}");
    }
    for id in ["C", "D"] {
        assert_eq!(store.session(id).await.unwrap(), None, "{id}");
    }
    let old = store.refresh_token("rt-A").await.unwrap().unwrap();
    assert_eq!(old.successor_hash.as_deref(), Some("A1"));
    assert!(store.refresh_token("A1").await.unwrap().is_some());
    for hash in ["rt-E", "rt-B", "rt-C", "rt-D", "rt-F"] {
        assert_eq!(store.refresh_token(hash).await.unwrap(), None, "{hash}");
    }
    assert_eq!(store.latest_revocation_seq().await.unwrap(), x4);
    let feed = store.revocations(0, 0, NOW).await.unwrap();
    assert_eq!(feed.iter().map(|r| r.seq).collect::<Vec<_>>(), [x3]);
    let audit_left = store.audit_records(&AuditQuery::default()).await.unwrap();
    assert_eq!(
        audit_left.iter().map(|r| r.at).collect::<Vec<_>>(),
        [9_501, 9_500]
    );

    // A second pass finds nothing more.
    assert_eq!(
        store.purge_expired(NOW, RETENTION, 500).await.unwrap(),
        Purged::default()
    );
    // Later, the recently ended sessions go too, and A's family expires with A.
    let much_later = 9_000 + ABSOLUTE + RETENTION;
    let purged = store.purge_expired(much_later, RETENTION, 500).await.unwrap();
    assert_eq!((purged.refresh_tokens, purged.sessions), (2, 4));
    // New sessions still work after their lock rows were cleaned.
    create(
        store,
        &session("G", "u1", "web", much_later),
        SessionLimit::Reject(1),
    )
    .await;
    let g2 = session("G2", "u1", "web", much_later);
    assert_eq!(
        store
            .create_session(&g2, &first_token(&g2), SessionLimit::Reject(1))
            .await
            .unwrap(),
        CreateOutcome::LimitReached
    );
}

// ---------------------------------------------------------------------------------------
// Users, password history, single-use tokens.
// ---------------------------------------------------------------------------------------

/// Lifetime of the single-use tokens below.
const OTT_TTL: i64 = 3_600;

/// A user with password hash `h0`, unverified, enabled, role `member`.
fn user(id: &str, email: &str, created_at: i64) -> UserRecord {
    UserRecord {
        id: id.to_owned(),
        email: email.to_owned(),
        email_verified_at: None,
        password_hash: Some("h0".to_owned()),
        roles: vec!["member".to_owned()],
        role_terms: Default::default(),
        locale: Some("ko".to_owned()),
        disabled_at: None,
        created_at,
        updated_at: created_at,
        password_changed_at: Some(created_at),
    }
}

/// An unused token for `user_id`, sent to `<user_id>@example.com`, valid for `OTT_TTL`.
fn one_time(token_hash: &str, purpose: &str, user_id: &str, created_at: i64) -> OneTimeTokenRecord {
    OneTimeTokenRecord {
        token_hash: token_hash.to_owned(),
        purpose: purpose.to_owned(),
        user_id: user_id.to_owned(),
        email: format!("{user_id}@example.com"),
        created_at,
        expires_at: created_at + OTT_TTL,
        used_at: None,
        session_id: None,
    }
}

async fn profiles_merge_atomically_and_go_with_their_user(backend: &str) {
    let Some(db) = fresh(backend, true).await else {
        return;
    };
    let store = Arc::new(db.store.clone());
    store
        .create_user(&user("p1", "p1@example.com", 1_000))
        .await
        .unwrap();
    assert!(store.profile("p1").await.unwrap().is_empty());
    // Unknown user: nothing is written, no row appears.
    let set_name = |mut p: serde_json::Map<String, serde_json::Value>| {
        p.insert("name".into(), "N".into());
        p
    };
    assert_eq!(
        store
            .update_profile("nobody", None, 1_001, &set_name)
            .await
            .unwrap(),
        None
    );
    assert!(store.profile("nobody").await.unwrap().is_empty());

    // Concurrent edits of different members: each merges into the one before, none is lost.
    let mut tasks = Vec::new();
    for i in 0..8 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let member = format!("m{i}");
            store
                .update_profile("p1", None, 1_002, &move |mut p| {
                    p.insert(member.clone(), serde_json::Value::from(i));
                    p
                })
                .await
                .unwrap()
                .unwrap()
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    let profile = store.profile("p1").await.unwrap();
    assert_eq!(profile.len(), 8, "{profile:?}");
    // The locale lives on the user; updated_at moves.
    let after = store
        .update_profile("p1", Some(Some("ko-KR")), 1_005, &set_name)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(after["name"], "N");
    let u = store.user("p1").await.unwrap().unwrap();
    assert_eq!((u.locale.as_deref(), u.updated_at), (Some("ko-KR"), 1_005));
    store
        .update_profile("p1", Some(None), 1_006, &|p| p)
        .await
        .unwrap();
    assert_eq!(store.user("p1").await.unwrap().unwrap().locale, None);
    // Deleting the user deletes the profile.
    assert!(store.delete_user("p1").await.unwrap());
    store
        .create_user(&user("p1", "p1@example.com", 2_000))
        .await
        .unwrap();
    assert!(store.profile("p1").await.unwrap().is_empty());
}

async fn users_round_trip_and_a_taken_email_conflicts(backend: &str) {
    let Some(db) = fresh(backend, true).await else {
        return;
    };
    let store = &db.store;
    let mut u1 = user("u1", "jürgen@example.com", 1_000);
    u1.roles = vec!["member".to_owned(), "admin \"quoted\"".to_owned()];
    u1.email_verified_at = Some(1_001);
    store.create_user(&u1).await.unwrap();
    // A user without a password, roles or locale.
    let u2 = UserRecord {
        password_hash: None,
        password_changed_at: None,
        roles: vec![],
        locale: None,
        ..user("u2", "two@example.com", 1_000)
    };
    store.create_user(&u2).await.unwrap();

    assert_eq!(store.user("u1").await.unwrap(), Some(u1.clone()));
    assert_eq!(store.user("u2").await.unwrap(), Some(u2.clone()));
    assert_eq!(store.user("nobody").await.unwrap(), None);
    assert_eq!(store.user_by_email("jürgen@example.com").await.unwrap(), Some(u1));
    assert_eq!(store.user_by_email("two@example.com").await.unwrap(), Some(u2));
    assert_eq!(store.user_by_email("TWO@example.com").await.unwrap(), None);

    let err = store
        .create_user(&user("u3", "two@example.com", 1_000))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");
    let err = store
        .create_user(&user("u1", "other@example.com", 1_000))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");
    assert_eq!(store.user("u3").await.unwrap(), None);
    assert_eq!(store.count_users().await.unwrap(), 2);
}

async fn set_password_moves_old_hashes_to_a_bounded_history(backend: &str) {
    let Some(db) = fresh(backend, true).await else {
        return;
    };
    let store = &db.store;
    store
        .create_user(&user("u1", "u1@example.com", 1_000))
        .await
        .unwrap();
    store
        .create_user(&user("u2", "u2@example.com", 1_000))
        .await
        .unwrap();
    assert!(store.password_history("u1", 10).await.unwrap().is_empty());
    // Seven changes; the last three in the same second (the tie-breaker orders them).
    for (i, now) in [
        (1, 1_100),
        (2, 1_200),
        (3, 1_300),
        (4, 1_400),
        (5, 1_500),
        (6, 1_500),
        (7, 1_500),
    ] {
        assert!(store.set_password("u1", &format!("h{i}"), now, 5).await.unwrap());
    }
    assert_eq!(
        store.password_history("u1", 10).await.unwrap(),
        ["h6", "h5", "h4", "h3", "h2"]
    );
    assert_eq!(store.password_history("u1", 2).await.unwrap(), ["h6", "h5"]);
    let u1 = store.user("u1").await.unwrap().unwrap();
    assert_eq!(u1.password_hash.as_deref(), Some("h7"));
    assert_eq!((u1.password_changed_at, u1.updated_at), (Some(1_500), 1_500));
    // Another user's history is their own.
    assert!(store.set_password("u2", "x1", 1_600, 5).await.unwrap());
    assert_eq!(store.password_history("u2", 10).await.unwrap(), ["h0"]);
    assert_eq!(store.password_history("u1", 10).await.unwrap().len(), 5);
    // A smaller bound trims at the next change; zero keeps nothing.
    assert!(store.set_password("u1", "h8", 1_700, 2).await.unwrap());
    assert_eq!(store.password_history("u1", 10).await.unwrap(), ["h7", "h6"]);
    assert!(store.set_password("u1", "h9", 1_800, 0).await.unwrap());
    assert!(store.password_history("u1", 10).await.unwrap().is_empty());
    // A user without a password gets one; there is nothing to remember.
    let u3 = UserRecord {
        password_hash: None,
        password_changed_at: None,
        ..user("u3", "u3@example.com", 1_000)
    };
    store.create_user(&u3).await.unwrap();
    assert!(store.set_password("u3", "first", 1_900, 5).await.unwrap());
    assert!(store.password_history("u3", 10).await.unwrap().is_empty());
    assert_eq!(
        store.user("u3").await.unwrap().unwrap().password_hash.as_deref(),
        Some("first")
    );
    // An unknown user: false, and no history appears.
    assert!(!store.set_password("nobody", "h", 2_000, 5).await.unwrap());
    assert!(store.password_history("nobody", 10).await.unwrap().is_empty());
}

/// Concurrent changes of one user's password are serialised: each replaced hash reaches
/// the history exactly once and none is lost.
async fn concurrent_password_changes_lose_no_hash(backend: &str) {
    let Some(db) = fresh(backend, true).await else {
        return;
    };
    db.store
        .create_user(&user("u1", "u1@example.com", 1_000))
        .await
        .unwrap();
    const N: usize = 10;
    let barrier = Arc::new(tokio::sync::Barrier::new(N));
    let mut tasks = Vec::new();
    for i in 0..N {
        let store = db.store.clone();
        let barrier = barrier.clone();
        tasks.push(tokio::spawn(async move {
            barrier.wait().await;
            store.set_password("u1", &format!("c{i}"), 1_100, 100).await
        }));
    }
    for task in tasks {
        assert!(task.await.unwrap().unwrap());
    }
    let current = db.store.user("u1").await.unwrap().unwrap().password_hash.unwrap();
    let mut history = db.store.password_history("u1", 100).await.unwrap();
    history.push(current);
    history.sort();
    let mut expected = (0..N).map(|i| format!("c{i}")).collect::<Vec<_>>();
    expected.push("h0".to_owned());
    expected.sort();
    assert_eq!(history, expected);
}

async fn upgrade_password_hash_is_compare_and_set(backend: &str) {
    let Some(db) = fresh(backend, true).await else {
        return;
    };
    let store = &db.store;
    store
        .create_user(&user("u1", "u1@example.com", 1_000))
        .await
        .unwrap();
    assert!(store
        .upgrade_password_hash("u1", "h0", "h0-rehashed", 1_100)
        .await
        .unwrap());
    let u1 = store.user("u1").await.unwrap().unwrap();
    assert_eq!(u1.password_hash.as_deref(), Some("h0-rehashed"));
    // Not a change of password: no history, password_changed_at as it was.
    assert_eq!((u1.password_changed_at, u1.updated_at), (Some(1_000), 1_100));
    assert!(store.password_history("u1", 10).await.unwrap().is_empty());
    // The password changed meanwhile: a stale upgrade must not undo it.
    assert!(store.set_password("u1", "h1", 1_200, 5).await.unwrap());
    assert!(!store
        .upgrade_password_hash("u1", "h0-rehashed", "h0-again", 1_300)
        .await
        .unwrap());
    let u1 = store.user("u1").await.unwrap().unwrap();
    assert_eq!(u1.password_hash.as_deref(), Some("h1"));
    assert_eq!(u1.updated_at, 1_200);
    assert_eq!(store.password_history("u1", 10).await.unwrap(), ["h0-rehashed"]);
    assert!(!store
        .upgrade_password_hash("nobody", "h0", "x", 1_300)
        .await
        .unwrap());
    // A user without a password has nothing to upgrade.
    let u2 = UserRecord {
        password_hash: None,
        ..user("u2", "u2@example.com", 1_000)
    };
    store.create_user(&u2).await.unwrap();
    assert!(!store.upgrade_password_hash("u2", "", "x", 1_300).await.unwrap());
    assert_eq!(store.user("u2").await.unwrap(), Some(u2));
}

async fn mark_email_verified_needs_the_same_unverified_address(backend: &str) {
    let Some(db) = fresh(backend, true).await else {
        return;
    };
    let store = &db.store;
    store
        .create_user(&user("u1", "u1@example.com", 1_000))
        .await
        .unwrap();
    assert!(!store
        .mark_email_verified("u1", "old@example.com", 1_100)
        .await
        .unwrap());
    assert_eq!(store.user("u1").await.unwrap().unwrap().email_verified_at, None);
    assert!(store
        .mark_email_verified("u1", "u1@example.com", 1_200)
        .await
        .unwrap());
    // Once verified it stays verified as of the first time.
    assert!(!store
        .mark_email_verified("u1", "u1@example.com", 1_300)
        .await
        .unwrap());
    let u1 = store.user("u1").await.unwrap().unwrap();
    assert_eq!((u1.email_verified_at, u1.updated_at), (Some(1_200), 1_200));
    assert!(!store
        .mark_email_verified("nobody", "u1@example.com", 1_300)
        .await
        .unwrap());
}

async fn change_email_is_compare_and_set_and_conflicts_with_a_taken_address(backend: &str) {
    let Some(db) = fresh(backend, true).await else {
        return;
    };
    let store = &db.store;
    store
        .create_user(&user("u1", "u1@example.com", 1_000))
        .await
        .unwrap();
    store
        .create_user(&user("u2", "u2@example.com", 1_000))
        .await
        .unwrap();
    // Not the current address: nothing changes.
    assert!(!store
        .change_email("u1", "old@example.com", "new@example.com", 1_100)
        .await
        .unwrap());
    // Taken by another user: a conflict, nothing changes.
    assert!(matches!(
        store
            .change_email("u1", "u1@example.com", "u2@example.com", 1_100)
            .await,
        Err(tessera_store::StoreError::Conflict(_))
    ));
    assert_eq!(store.user("u1").await.unwrap().unwrap().email, "u1@example.com");
    assert!(store
        .change_email("u1", "u1@example.com", "new@example.com", 1_200)
        .await
        .unwrap());
    let u1 = store.user("u1").await.unwrap().unwrap();
    assert_eq!(
        (u1.email.as_str(), u1.email_verified_at, u1.updated_at),
        ("new@example.com", Some(1_200), 1_200)
    );
    assert_eq!(
        store.user_by_email("new@example.com").await.unwrap().unwrap().id,
        "u1"
    );
    assert!(store.user_by_email("u1@example.com").await.unwrap().is_none());
    // The old address is free again.
    assert!(store
        .change_email("u2", "u2@example.com", "u1@example.com", 1_300)
        .await
        .unwrap());
    assert!(!store
        .change_email("nobody", "x@example.com", "y@example.com", 1_300)
        .await
        .unwrap());
}

async fn disabling_roles_and_counting_users(backend: &str) {
    let Some(db) = fresh(backend, true).await else {
        return;
    };
    let store = &db.store;
    assert_eq!(store.count_users().await.unwrap(), 0);
    for i in 0..3 {
        store
            .create_user(&user(&format!("u{i}"), &format!("u{i}@example.com"), 1_000))
            .await
            .unwrap();
    }
    assert_eq!(store.count_users().await.unwrap(), 3);

    assert!(store.set_disabled("u1", Some(1_100), 1_100).await.unwrap());
    let u1 = store.user("u1").await.unwrap().unwrap();
    assert_eq!((u1.disabled_at, u1.updated_at), (Some(1_100), 1_100));
    assert!(store.set_disabled("u1", None, 1_200).await.unwrap());
    let u1 = store.user("u1").await.unwrap().unwrap();
    assert_eq!((u1.disabled_at, u1.updated_at), (None, 1_200));
    assert!(!store.set_disabled("nobody", Some(1_100), 1_100).await.unwrap());

    let roles = vec!["admin".to_owned(), "support".to_owned()];
    let terms: std::collections::BTreeMap<String, serde_json::Value> = [(
        "support".to_owned(),
        serde_json::json!({ "until": 9_000, "condition": { "channels": ["web"] } }),
    )]
    .into();
    let none = std::collections::BTreeMap::new();
    let member = vec!["member".to_owned()];
    assert!(store
        .set_roles("u2", (&member, &none), &roles, &terms, 1_300)
        .await
        .unwrap());
    let u2 = store.user("u2").await.unwrap().unwrap();
    assert_eq!(
        (u2.roles, u2.role_terms, u2.updated_at),
        (roles.clone(), terms.clone(), 1_300)
    );
    // Compare-and-set: a change from what the roles no longer are changes nothing.
    assert!(!store
        .set_roles("u2", (&member, &none), &member, &none, 1_350)
        .await
        .unwrap());
    assert!(!store
        .set_roles("u2", (&roles, &none), &member, &none, 1_350)
        .await
        .unwrap());
    assert_eq!(store.user("u2").await.unwrap().unwrap().roles, roles);
    assert!(store
        .set_roles("u2", (&roles, &terms), &[], &none, 1_400)
        .await
        .unwrap());
    let u2 = store.user("u2").await.unwrap().unwrap();
    assert!(u2.roles.is_empty() && u2.role_terms.is_empty());
    assert!(!store
        .set_roles("nobody", (&[], &none), &[], &none, 1_400)
        .await
        .unwrap());
    // Others untouched.
    assert_eq!(
        store.user("u0").await.unwrap(),
        Some(user("u0", "u0@example.com", 1_000))
    );
    assert_eq!(store.count_users().await.unwrap(), 3);
}

async fn users_are_listed_in_pages_and_by_email(backend: &str) {
    let Some(db) = fresh(backend, true).await else {
        return;
    };
    let store = &db.store;
    assert!(store.list_users(None, None, 10).await.unwrap().is_empty());
    for i in 0..5 {
        store
            .create_user(&user(&format!("u{i}"), &format!("u{i}@example.com"), 1_000))
            .await
            .unwrap();
    }
    let ids = |users: Vec<UserRecord>| users.into_iter().map(|u| u.id).collect::<Vec<_>>();
    // Pages follow the id order; each starts after the last id of the one before.
    assert_eq!(ids(store.list_users(None, None, 2).await.unwrap()), ["u0", "u1"]);
    assert_eq!(
        ids(store.list_users(None, Some("u1"), 2).await.unwrap()),
        ["u2", "u3"]
    );
    assert_eq!(ids(store.list_users(None, Some("u3"), 2).await.unwrap()), ["u4"]);
    assert!(store.list_users(None, Some("u4"), 2).await.unwrap().is_empty());
    assert_eq!(store.list_users(None, None, 100).await.unwrap().len(), 5);
    // Whole rows come back.
    assert_eq!(
        store.list_users(Some("u3@example.com"), None, 10).await.unwrap(),
        vec![user("u3", "u3@example.com", 1_000)]
    );
    assert!(store
        .list_users(Some("u3@example.com"), Some("u3"), 10)
        .await
        .unwrap()
        .is_empty());
    assert!(store
        .list_users(Some("nobody@example.com"), None, 10)
        .await
        .unwrap()
        .is_empty());
    // A limit of 0 is one.
    assert_eq!(store.list_users(None, None, 0).await.unwrap().len(), 1);
}

async fn deleting_a_user_removes_history_and_tokens(backend: &str) {
    let Some(db) = fresh(backend, true).await else {
        return;
    };
    let store = &db.store;
    for id in ["u1", "u2"] {
        store
            .create_user(&user(id, &format!("{id}@example.com"), 1_000))
            .await
            .unwrap();
        assert!(store.set_password(id, "h1", 1_100, 5).await.unwrap());
        store
            .create_one_time_token(&one_time(&format!("t-{id}"), "reset_password", id, 1_100))
            .await
            .unwrap();
    }
    assert!(store.delete_user("u1").await.unwrap());
    assert!(!store.delete_user("u1").await.unwrap());
    assert_eq!(store.user("u1").await.unwrap(), None);
    assert_eq!(store.user_by_email("u1@example.com").await.unwrap(), None);
    assert!(store.password_history("u1", 10).await.unwrap().is_empty());
    assert_eq!(
        store
            .consume_one_time_token("t-u1", "reset_password", 1_200)
            .await
            .unwrap(),
        None
    );
    assert_eq!(store.count_users().await.unwrap(), 1);
    // The other user keeps everything.
    assert_eq!(store.password_history("u2", 10).await.unwrap(), ["h0"]);
    assert!(store
        .consume_one_time_token("t-u2", "reset_password", 1_200)
        .await
        .unwrap()
        .is_some());
    // The address is free again, and the new account starts with nothing.
    store
        .create_user(&user("u1b", "u1@example.com", 2_000))
        .await
        .unwrap();
    assert!(store.password_history("u1b", 10).await.unwrap().is_empty());
}

async fn one_time_tokens_are_used_once(backend: &str) {
    let Some(db) = fresh(backend, true).await else {
        return;
    };
    let store = &db.store;
    store
        .create_user(&user("u1", "u1@example.com", 1_000))
        .await
        .unwrap();
    let t1 = one_time("t1", "verify_email", "u1", 1_000);
    store.create_one_time_token(&t1).await.unwrap();
    let err = store.create_one_time_token(&t1).await.unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");

    // Peeking shows a usable token without using it; wrong purpose or expiry shows nothing.
    assert_eq!(
        store
            .peek_one_time_token("t1", "verify_email", 1_050)
            .await
            .unwrap(),
        Some(t1.clone())
    );
    assert_eq!(
        store
            .peek_one_time_token("t1", "verify_email", 1_050)
            .await
            .unwrap(),
        Some(t1.clone())
    );
    assert_eq!(
        store
            .peek_one_time_token("t1", "reset_password", 1_050)
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        store
            .peek_one_time_token("t1", "verify_email", 1_000 + OTT_TTL)
            .await
            .unwrap(),
        None
    );

    // Wrong purpose, unknown hash: nothing, and the token stays usable.
    assert_eq!(
        store
            .consume_one_time_token("t1", "reset_password", 1_100)
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        store
            .consume_one_time_token("t0", "verify_email", 1_100)
            .await
            .unwrap(),
        None
    );
    let used = store
        .consume_one_time_token("t1", "verify_email", 1_100)
        .await
        .unwrap();
    assert_eq!(
        used,
        Some(OneTimeTokenRecord {
            used_at: Some(1_100),
            ..t1.clone()
        })
    );
    assert_eq!(
        store
            .consume_one_time_token("t1", "verify_email", 1_101)
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        store
            .peek_one_time_token("t1", "verify_email", 1_101)
            .await
            .unwrap(),
        None
    );

    // Expired: usable until the second before `expires_at`, not at it.
    store
        .create_one_time_token(&one_time("t2", "reset_password", "u1", 1_000))
        .await
        .unwrap();
    store
        .create_one_time_token(&one_time("t3", "reset_password", "u1", 1_000))
        .await
        .unwrap();
    let expiry = 1_000 + OTT_TTL;
    assert_eq!(
        store
            .consume_one_time_token("t2", "reset_password", expiry)
            .await
            .unwrap(),
        None
    );
    assert!(store
        .consume_one_time_token("t3", "reset_password", expiry - 1)
        .await
        .unwrap()
        .is_some());
}

async fn concurrent_consumers_of_one_token_get_it_once(backend: &str) {
    let Some(db) = fresh(backend, true).await else {
        return;
    };
    db.store
        .create_user(&user("u1", "u1@example.com", 1_000))
        .await
        .unwrap();
    for round in 0..ROUNDS {
        let hash = format!("t{round}");
        db.store
            .create_one_time_token(&one_time(&hash, "reset_password", "u1", 1_000))
            .await
            .unwrap();
        let barrier = Arc::new(tokio::sync::Barrier::new(20));
        let mut tasks = Vec::new();
        for i in 0..20 {
            let store = db.store.clone();
            let barrier = barrier.clone();
            let hash = hash.clone();
            tasks.push(tokio::spawn(async move {
                barrier.wait().await;
                store
                    .consume_one_time_token(&hash, "reset_password", 1_100 + i)
                    .await
            }));
        }
        let mut winners = Vec::new();
        for task in tasks {
            if let Some(token) = task.await.unwrap().unwrap() {
                winners.push(token);
            }
        }
        assert_eq!(winners.len(), 1, "round {round}: {winners:?}");
        assert_eq!(winners[0].token_hash, hash);
        assert!(winners[0].used_at.is_some());
    }
}

async fn invalidating_tokens_makes_them_unusable(backend: &str) {
    let Some(db) = fresh(backend, true).await else {
        return;
    };
    let store = &db.store;
    for id in ["u1", "u2"] {
        store
            .create_user(&user(id, &format!("{id}@example.com"), 1_000))
            .await
            .unwrap();
    }
    for (hash, purpose, id) in [
        ("r1", "reset_password", "u1"),
        ("r2", "reset_password", "u1"),
        ("r3", "reset_password", "u1"),
        ("v1", "verify_email", "u1"),
        ("r4", "reset_password", "u2"),
    ] {
        store
            .create_one_time_token(&one_time(hash, purpose, id, 1_000))
            .await
            .unwrap();
    }
    assert!(store
        .consume_one_time_token("r3", "reset_password", 1_050)
        .await
        .unwrap()
        .is_some());
    // r1 and r2 (r3 is used already); not u1's verification, not u2's reset.
    assert_eq!(
        store
            .invalidate_one_time_tokens("u1", "reset_password", 1_100)
            .await
            .unwrap(),
        2
    );
    assert_eq!(
        store
            .invalidate_one_time_tokens("u1", "reset_password", 1_200)
            .await
            .unwrap(),
        0
    );
    for hash in ["r1", "r2", "r3"] {
        assert_eq!(
            store
                .consume_one_time_token(hash, "reset_password", 1_300)
                .await
                .unwrap(),
            None,
            "{hash}"
        );
    }
    assert!(store
        .consume_one_time_token("v1", "verify_email", 1_300)
        .await
        .unwrap()
        .is_some());
    assert!(store
        .consume_one_time_token("r4", "reset_password", 1_300)
        .await
        .unwrap()
        .is_some());
    assert_eq!(
        store
            .invalidate_one_time_tokens("nobody", "reset_password", 1_300)
            .await
            .unwrap(),
        0
    );
}

async fn purge_removes_expired_and_long_used_one_time_tokens(backend: &str) {
    let Some(db) = fresh(backend, true).await else {
        return;
    };
    let store = &db.store;
    const NOW: i64 = 100_000;
    const DAY: i64 = 86_400;
    store
        .create_user(&user("u1", "u1@example.com", 1_000))
        .await
        .unwrap();
    let token = |hash: &str, expires_at: i64, used_at: Option<i64>| OneTimeTokenRecord {
        expires_at,
        used_at,
        ..one_time(hash, "reset_password", "u1", 1_000)
    };
    let tokens = [
        token("expired", NOW, None),                          // purged: expired at NOW
        token("expired-used", NOW - 10, Some(NOW - 20)),      // purged: expired
        token("live", NOW + 1, None),                         // kept
        token("used-long-ago", NOW + 1, Some(NOW - DAY - 1)), // purged: used over a day ago
        token("used-a-day-ago", NOW + 1, Some(NOW - DAY)),    // kept: exactly a day
        token("used-recently", NOW + 1, Some(NOW - 5)),       // kept
    ];
    for t in &tokens {
        store.create_one_time_token(t).await.unwrap();
    }
    let purged = store.purge_expired(NOW, 1_000, 1_000).await.unwrap();
    assert_eq!(
        purged,
        Purged {
            one_time_tokens: 3,
            ..Purged::default()
        }
    );
    assert_eq!(
        store.purge_expired(NOW, 1_000, 1_000).await.unwrap(),
        Purged::default()
    );
    // What is left: the live one is still usable; the used ones stay used.
    assert!(store
        .consume_one_time_token("live", "reset_password", NOW)
        .await
        .unwrap()
        .is_some());
    for hash in [
        "expired",
        "expired-used",
        "used-long-ago",
        "used-a-day-ago",
        "used-recently",
    ] {
        assert_eq!(
            store
                .consume_one_time_token(hash, "reset_password", NOW)
                .await
                .unwrap(),
            None,
            "{hash}"
        );
    }
    // A day after their use (or at their expiry) the rest go too.
    let purged = store.purge_expired(NOW + DAY, 1_000, 1_000).await.unwrap();
    assert_eq!(purged.one_time_tokens, 3);
    assert_eq!(
        store.user("u1").await.unwrap().map(|u| u.id).as_deref(),
        Some("u1")
    );
}

// ---------------------------------------------------------------------------------------
// OIDC: SSO sessions, authorization codes, consent.
// ---------------------------------------------------------------------------------------

/// Lifetimes of the SSO sessions and authorization codes below.
const SSO_TTL: i64 = 10_000;
const CODE_TTL: i64 = 60;

/// An alive SSO session of `user_id` whose cookie secret hashes to `secret-<id>`.
fn sso(id: &str, user_id: &str, created_at: i64) -> SsoSessionRecord {
    SsoSessionRecord {
        id: id.to_owned(),
        secret_hash: format!("secret-{id}"),
        user_id: user_id.to_owned(),
        auth_time: created_at - 5,
        amr: "pwd otp".to_owned(),
        created_at,
        last_seen_at: created_at,
        expires_at: created_at + SSO_TTL,
        revoked_at: None,
        idp: None,
    }
}

/// An unused code with a nonce and an S256 challenge, valid for `CODE_TTL`.
fn code(code_hash: &str, user_id: &str, sso_session_id: &str, created_at: i64) -> AuthorizationCodeRecord {
    AuthorizationCodeRecord {
        code_hash: code_hash.to_owned(),
        client_id: "app".to_owned(),
        user_id: user_id.to_owned(),
        sso_session_id: sso_session_id.to_owned(),
        redirect_uri: "https://app.example/cb?x=\"ü\"".to_owned(),
        scope: "openid profile offline_access".to_owned(),
        nonce: Some("n-0S6_WzA2Mj".to_owned()),
        code_challenge: Some("E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM".to_owned()),
        code_challenge_method: Some("S256".to_owned()),
        auth_time: created_at - 5,
        amr: "pwd".to_owned(),
        created_at,
        expires_at: created_at + CODE_TTL,
        used_at: None,
        token_session_id: None,
        claims: None,
        dpop_jkt: None,
    }
}

async fn users(store: &SqlStore, ids: &[&str]) {
    for id in ids {
        store
            .create_user(&user(id, &format!("{id}@example.com"), 500))
            .await
            .unwrap();
    }
}

fn sso_ids(sessions: &[SsoSessionRecord]) -> Vec<&str> {
    sessions.iter().map(|s| s.id.as_str()).collect()
}

async fn sso_sessions_are_found_by_secret_until_they_end(backend: &str) {
    let Some(db) = fresh(backend, true).await else {
        return;
    };
    let store = &db.store;
    users(store, &["u1", "u2"]).await;
    let s1 = sso("s1", "u1", 1_000);
    store.create_sso_session(&s1).await.unwrap();
    assert_eq!(store.sso_session("s1").await.unwrap(), Some(s1.clone()));
    assert_eq!(store.sso_session("nope").await.unwrap(), None);

    // A taken id or secret is a conflict; an unknown user is refused, but not as a conflict.
    let err = store
        .create_sso_session(&SsoSessionRecord {
            secret_hash: "other".to_owned(),
            ..sso("s1", "u2", 1_000)
        })
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");
    let err = store
        .create_sso_session(&SsoSessionRecord {
            secret_hash: s1.secret_hash.clone(),
            ..sso("s2", "u2", 1_000)
        })
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");
    let err = store
        .create_sso_session(&sso("s3", "nobody", 1_000))
        .await
        .unwrap_err();
    assert!(!matches!(err, StoreError::Conflict(_)), "{err:?}");
    assert_eq!(store.sso_session("s2").await.unwrap(), None);
    assert_eq!(store.sso_session("s3").await.unwrap(), None);

    // By secret: only the right hash, only while alive (until the second before expiry).
    let end = s1.expires_at;
    assert_eq!(
        store.sso_session_by_secret("secret-s1", 1_000).await.unwrap(),
        Some(s1.clone())
    );
    assert_eq!(store.sso_session_by_secret("s1", 1_000).await.unwrap(), None);
    assert_eq!(
        store.sso_session_by_secret("secret-nope", 1_000).await.unwrap(),
        None
    );
    assert!(store
        .sso_session_by_secret("secret-s1", end - 1)
        .await
        .unwrap()
        .is_some());
    assert_eq!(store.sso_session_by_secret("secret-s1", end).await.unwrap(), None);

    // Touching moves last_seen_at of an alive session only; it does not extend it.
    assert!(store.touch_sso_session("s1", 1_500).await.unwrap());
    let touched = SsoSessionRecord {
        last_seen_at: 1_500,
        ..s1.clone()
    };
    assert_eq!(store.sso_session("s1").await.unwrap(), Some(touched.clone()));
    assert!(!store.touch_sso_session("s1", end).await.unwrap());
    assert!(!store.touch_sso_session("nope", 1_500).await.unwrap());
    assert_eq!(store.sso_session("s1").await.unwrap(), Some(touched.clone()));
    assert!(!touched.is_alive(end));
    assert!(touched.is_alive(end - 1));

    // An expired session cannot be revoked (nothing written), nor found.
    assert_eq!(store.revoke_sso_session("s1", end).await.unwrap(), None);
    assert_eq!(store.sso_session("s1").await.unwrap(), Some(touched));
}

async fn revoking_sso_sessions_once_and_all_of_a_user(backend: &str) {
    let Some(db) = fresh(backend, true).await else {
        return;
    };
    let store = &db.store;
    users(store, &["u1", "u2"]).await;
    for s in [
        sso("a", "u1", 1_000),
        sso("b", "u1", 1_100),
        sso("c", "u1", 900),
        sso("old", "u1", 1_000 - SSO_TTL),
        sso("other", "u2", 1_000),
    ] {
        store.create_sso_session(&s).await.unwrap();
    }
    let revoked = store.revoke_sso_session("a", 1_200).await.unwrap();
    assert_eq!(
        revoked,
        Some(SsoSessionRecord {
            revoked_at: Some(1_200),
            ..sso("a", "u1", 1_000)
        })
    );
    assert_eq!(store.revoke_sso_session("a", 1_300).await.unwrap(), None);
    assert_eq!(store.sso_session("a").await.unwrap(), revoked);
    assert_eq!(
        store.sso_session_by_secret("secret-a", 1_300).await.unwrap(),
        None
    );
    assert!(!store.touch_sso_session("a", 1_300).await.unwrap());
    assert_eq!(store.revoke_sso_session("nope", 1_300).await.unwrap(), None);

    // All of a user: the alive ones (not a, revoked; not old, expired), oldest first.
    let revoked = store.revoke_sso_sessions_of("u1", 1_400).await.unwrap();
    assert_eq!(sso_ids(&revoked), ["c", "b"]);
    assert!(revoked.iter().all(|s| s.revoked_at == Some(1_400)));
    assert_eq!(
        store.sso_session("a").await.unwrap().unwrap().revoked_at,
        Some(1_200)
    );
    assert_eq!(store.sso_session("old").await.unwrap().unwrap().revoked_at, None);
    assert!(store
        .revoke_sso_sessions_of("u1", 1_500)
        .await
        .unwrap()
        .is_empty());
    assert!(store
        .revoke_sso_sessions_of("nobody", 1_500)
        .await
        .unwrap()
        .is_empty());
    // The other user's session is untouched.
    assert_eq!(
        store.sso_session_by_secret("secret-other", 1_500).await.unwrap(),
        Some(sso("other", "u2", 1_000))
    );
}

async fn sessions_of_sso_are_its_alive_token_sessions(backend: &str) {
    let Some(db) = fresh(backend, true).await else {
        return;
    };
    let store = &db.store;
    users(store, &["u1"]).await;
    store.create_sso_session(&sso("a", "u1", 900)).await.unwrap();
    store.create_sso_session(&sso("b", "u1", 900)).await.unwrap();
    let linked = |id: &str, sso_id: Option<&str>, created_at: i64| SessionRecord {
        sso_session_id: sso_id.map(str::to_owned),
        ..session(id, "u1", "web", created_at)
    };
    let t1 = linked("t1", Some("a"), 1_000);
    let t2 = linked("t2", Some("a"), 1_100);
    let revoked = linked("t3", Some("a"), 1_050);
    let elsewhere = linked("t4", Some("b"), 1_000);
    let unlinked = linked("t5", None, 1_000);
    let idle_expired = linked("t6", Some("a"), 1_100 - IDLE);
    for s in [&t2, &t1, &revoked, &elsewhere, &unlinked, &idle_expired] {
        create(store, s, SessionLimit::Unlimited).await;
    }
    assert_eq!(store.session("t1").await.unwrap(), Some(t1.clone()));
    assert_eq!(store.session("t5").await.unwrap(), Some(unlinked.clone()));
    let revoked = store
        .revoke_session("t3", "logout", 1_150)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(revoked.sso_session_id.as_deref(), Some("a"));

    assert_eq!(
        store.sessions_of_sso("a", 1_200).await.unwrap(),
        vec![t1.clone(), t2.clone()]
    );
    assert_eq!(store.sessions_of_sso("b", 1_200).await.unwrap(), vec![elsewhere]);
    assert!(store.sessions_of_sso("nope", 1_200).await.unwrap().is_empty());
    // t1 idles out first; t2 stays while kept alive, and its link survives rotation.
    assert_eq!(
        ids(&store.sessions_of_sso("a", 1_000 + IDLE).await.unwrap()),
        ["t2"]
    );
    let outcome = store
        .rotate_refresh_token(&rotation("rt-t2", "t2-1", 1_000 + IDLE))
        .await
        .unwrap();
    let RotateOutcome::Rotated { session, .. } = outcome else {
        panic!("not rotated: {outcome:?}");
    };
    assert_eq!(session.sso_session_id.as_deref(), Some("a"));
    // Ending the SSO session does not end token sessions by itself: the caller does.
    let later = 1_000 + IDLE + 100;
    store.revoke_sso_session("a", later).await.unwrap().unwrap();
    assert_eq!(ids(&store.sessions_of_sso("a", later).await.unwrap()), ["t2"]);
    assert_eq!(
        ids(&store.revoke_sessions_of("u1", "logout", later).await.unwrap()),
        ["t2"]
    );
    assert!(store.sessions_of_sso("a", later).await.unwrap().is_empty());
}

async fn authorization_codes_are_redeemed_once_and_replays_recognised(backend: &str) {
    let Some(db) = fresh(backend, true).await else {
        return;
    };
    let store = &db.store;
    users(store, &["u1"]).await;
    store.create_sso_session(&sso("s1", "u1", 900)).await.unwrap();
    // With a claims request, which comes back as written.
    let c1 = AuthorizationCodeRecord {
        claims: Some(r#"{"id_token":{"email":null}}"#.to_owned()),
        ..code("c1", "u1", "s1", 1_000)
    };
    store.create_authorization_code(&c1).await.unwrap();
    let err = store.create_authorization_code(&c1).await.unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");
    let err = store
        .create_authorization_code(&code("c0", "nobody", "s1", 1_000))
        .await
        .unwrap_err();
    assert!(!matches!(err, StoreError::Conflict(_)), "{err:?}");

    assert_eq!(
        store.redeem_authorization_code("unknown", 1_010).await.unwrap(),
        CodeRedemption::Invalid
    );
    let redeemed = AuthorizationCodeRecord {
        used_at: Some(1_010),
        ..c1.clone()
    };
    assert_eq!(
        store.redeem_authorization_code("c1", 1_010).await.unwrap(),
        CodeRedemption::Redeemed(redeemed.clone())
    );
    // Attached once; a second attachment changes nothing.
    store.attach_token_session("c1", "ts1").await.unwrap();
    store.attach_token_session("c1", "ts2").await.unwrap();
    let replayed = AuthorizationCodeRecord {
        token_session_id: Some("ts1".to_owned()),
        dpop_jkt: None,
        ..redeemed
    };
    assert_eq!(
        store.redeem_authorization_code("c1", 1_020).await.unwrap(),
        CodeRedemption::Replayed(replayed.clone())
    );
    // Long after its expiry a replay is still recognised (what it issued must be revoked).
    assert_eq!(
        store
            .redeem_authorization_code("c1", 1_000 + 10 * CODE_TTL)
            .await
            .unwrap(),
        CodeRedemption::Replayed(replayed)
    );

    // Expired unused: invalid at `expires_at` (and stays unused, so never a replay).
    let c2 = code("c2", "u1", "s1", 1_000);
    store.create_authorization_code(&c2).await.unwrap();
    for now in [c2.expires_at, c2.expires_at + 1] {
        assert_eq!(
            store.redeem_authorization_code("c2", now).await.unwrap(),
            CodeRedemption::Invalid
        );
    }
    // Redeemed the second before expiry, replayed after it.
    let c3 = AuthorizationCodeRecord {
        nonce: None,
        code_challenge: None,
        code_challenge_method: None,
        ..code("c3", "u1", "s1", 1_000)
    };
    store.create_authorization_code(&c3).await.unwrap();
    let at = c3.expires_at - 1;
    let CodeRedemption::Redeemed(r3) = store.redeem_authorization_code("c3", at).await.unwrap() else {
        panic!("c3 not redeemed");
    };
    assert_eq!(
        r3,
        AuthorizationCodeRecord {
            used_at: Some(at),
            ..c3.clone()
        }
    );
    assert_eq!(
        store
            .redeem_authorization_code("c3", c3.expires_at + 100)
            .await
            .unwrap(),
        CodeRedemption::Replayed(r3)
    );
    // A token session cannot be attached to an unredeemed code (nor an unknown one).
    let c4 = code("c4", "u1", "s1", 1_000);
    store.create_authorization_code(&c4).await.unwrap();
    store.attach_token_session("c4", "ts4").await.unwrap();
    store.attach_token_session("unknown", "ts4").await.unwrap();
    assert_eq!(
        store.redeem_authorization_code("c4", 1_030).await.unwrap(),
        CodeRedemption::Redeemed(AuthorizationCodeRecord {
            used_at: Some(1_030),
            ..c4
        })
    );
}

async fn concurrent_redemptions_of_one_code_redeem_it_once(backend: &str) {
    let Some(db) = fresh(backend, true).await else {
        return;
    };
    users(&db.store, &["u1"]).await;
    db.store.create_sso_session(&sso("s1", "u1", 900)).await.unwrap();
    for round in 0..ROUNDS {
        let hash = format!("c{round}");
        db.store
            .create_authorization_code(&code(&hash, "u1", "s1", 1_000))
            .await
            .unwrap();
        let barrier = Arc::new(tokio::sync::Barrier::new(20));
        let mut tasks = Vec::new();
        for i in 0..20 {
            let store = db.store.clone();
            let barrier = barrier.clone();
            let hash = hash.clone();
            tasks.push(tokio::spawn(async move {
                barrier.wait().await;
                store.redeem_authorization_code(&hash, 1_010 + i).await
            }));
        }
        let (mut redeemed, mut replayed) = (Vec::new(), 0);
        for task in tasks {
            match task.await.unwrap().unwrap() {
                CodeRedemption::Redeemed(record) => redeemed.push(record),
                CodeRedemption::Replayed(record) => {
                    assert!(record.used_at.is_some());
                    replayed += 1;
                }
                CodeRedemption::Invalid => panic!("round {round}: a live code read as invalid"),
            }
        }
        assert_eq!((redeemed.len(), replayed), (1, 19), "round {round}: {redeemed:?}");
        assert_eq!(redeemed[0].code_hash, hash);
        // What the winner saw is what is stored.
        assert_eq!(
            db.store.redeem_authorization_code(&hash, 1_100).await.unwrap(),
            CodeRedemption::Replayed(redeemed[0].clone())
        );
    }
}

async fn consent_is_granted_replaced_read_and_revoked(backend: &str) {
    let Some(db) = fresh(backend, true).await else {
        return;
    };
    let store = &db.store;
    users(store, &["u1", "u2"]).await;
    assert_eq!(store.consent("u1", "app").await.unwrap(), None);
    store.grant_consent("u1", "app", "openid", 1_000).await.unwrap();
    assert_eq!(
        store.consent("u1", "app").await.unwrap().as_deref(),
        Some("openid")
    );
    // Granting again replaces (a narrower scope too).
    store
        .grant_consent("u1", "app", "openid profile email", 1_100)
        .await
        .unwrap();
    assert_eq!(
        store.consent("u1", "app").await.unwrap().as_deref(),
        Some("openid profile email")
    );
    store
        .grant_consent("u1", "app", "openid email", 1_200)
        .await
        .unwrap();
    assert_eq!(
        store.consent("u1", "app").await.unwrap().as_deref(),
        Some("openid email")
    );
    // Per user and per client.
    store.grant_consent("u1", "other", "openid", 1_200).await.unwrap();
    store.grant_consent("u2", "app", "profile", 1_200).await.unwrap();
    assert_eq!(
        store.consent("u2", "app").await.unwrap().as_deref(),
        Some("profile")
    );
    assert_eq!(store.consent("u2", "other").await.unwrap(), None);
    // Consent is for a known user only.
    assert!(store
        .grant_consent("nobody", "app", "openid", 1_200)
        .await
        .is_err());
    assert_eq!(store.consent("nobody", "app").await.unwrap(), None);

    assert!(store.revoke_consent("u1", "app").await.unwrap());
    assert!(!store.revoke_consent("u1", "app").await.unwrap());
    assert!(!store.revoke_consent("nobody", "app").await.unwrap());
    assert_eq!(store.consent("u1", "app").await.unwrap(), None);
    assert_eq!(
        store.consent("u1", "other").await.unwrap().as_deref(),
        Some("openid")
    );
    assert_eq!(
        store.consent("u2", "app").await.unwrap().as_deref(),
        Some("profile")
    );
    // And may be given again.
    store.grant_consent("u1", "app", "openid", 1_300).await.unwrap();
    assert_eq!(
        store.consent("u1", "app").await.unwrap().as_deref(),
        Some("openid")
    );
}

async fn deleting_a_user_removes_sso_sessions_codes_and_consents(backend: &str) {
    let Some(db) = fresh(backend, true).await else {
        return;
    };
    let store = &db.store;
    users(store, &["u1", "u2"]).await;
    for id in ["u1", "u2"] {
        let sso_id = format!("sso-{id}");
        store.create_sso_session(&sso(&sso_id, id, 1_000)).await.unwrap();
        for n in 0..2 {
            let mut c = code(&format!("code-{id}-{n}"), id, &sso_id, 1_000);
            if n == 1 {
                c.used_at = Some(1_010);
            }
            store.create_authorization_code(&c).await.unwrap();
        }
        store.grant_consent(id, "app", "openid", 1_000).await.unwrap();
    }
    assert!(store.delete_user("u1").await.unwrap());
    assert_eq!(store.sso_session("sso-u1").await.unwrap(), None);
    assert_eq!(
        store.sso_session_by_secret("secret-sso-u1", 1_020).await.unwrap(),
        None
    );
    for hash in ["code-u1-0", "code-u1-1"] {
        assert_eq!(
            store.redeem_authorization_code(hash, 1_020).await.unwrap(),
            CodeRedemption::Invalid,
            "{hash}"
        );
    }
    assert_eq!(store.consent("u1", "app").await.unwrap(), None);
    // The other user keeps everything.
    assert!(store
        .sso_session_by_secret("secret-sso-u2", 1_020)
        .await
        .unwrap()
        .is_some());
    assert!(matches!(
        store.redeem_authorization_code("code-u2-0", 1_020).await.unwrap(),
        CodeRedemption::Redeemed(_)
    ));
    assert!(matches!(
        store.redeem_authorization_code("code-u2-1", 1_020).await.unwrap(),
        CodeRedemption::Replayed(_)
    ));
    assert_eq!(
        store.consent("u2", "app").await.unwrap().as_deref(),
        Some("openid")
    );
    // A new account under the same id starts with nothing.
    store
        .create_user(&user("u1", "u1-again@example.com", 2_000))
        .await
        .unwrap();
    assert_eq!(store.consent("u1", "app").await.unwrap(), None);
    assert_eq!(store.sso_session("sso-u1").await.unwrap(), None);
}

async fn purge_removes_old_codes_and_long_ended_sso_sessions(backend: &str) {
    let Some(db) = fresh(backend, true).await else {
        return;
    };
    let store = &db.store;
    const NOW: i64 = 200_000;
    const RETENTION: i64 = 1_000;
    const DAY: i64 = 86_400;
    users(store, &["u1"]).await;
    let sso_ending = |id: &str, expires_at: i64, revoked_at: Option<i64>| SsoSessionRecord {
        expires_at,
        revoked_at,
        ..sso(id, "u1", 1_000)
    };
    let ssos = [
        sso_ending("alive", NOW + 10, None),                                 // kept
        sso_ending("revoked-recently", NOW + 10, Some(NOW - 10)),            // kept
        sso_ending("revoked-long-ago", NOW + 10, Some(NOW - RETENTION - 1)), // purged
        sso_ending("revoked-at-bound", NOW + 10, Some(NOW - RETENTION)),     // purged (as sessions)
        sso_ending("expired-recently", NOW - 10, None),                      // kept
        sso_ending("expired-long-ago", NOW - RETENTION - 1, None),           // purged
    ];
    for s in &ssos {
        store.create_sso_session(s).await.unwrap();
    }
    let code_ending = |hash: &str, expires_at: i64, used_at: Option<i64>| AuthorizationCodeRecord {
        expires_at,
        used_at,
        ..code(hash, "u1", "alive", 1_000)
    };
    let codes = [
        code_ending("old-unused", NOW - DAY - 1, None), // purged
        code_ending("old-used", NOW - DAY - 1, Some(NOW - DAY - 30)), // purged
        code_ending("a-day-ago-used", NOW - DAY, Some(NOW - DAY - 30)), // kept: exactly a day
        code_ending("recent-used", NOW - 5, Some(NOW - 30)), // kept
        code_ending("live", NOW + 10, None),            // kept
    ];
    for c in &codes {
        store.create_authorization_code(c).await.unwrap();
    }
    let purged = store.purge_expired(NOW, RETENTION, 1_000).await.unwrap();
    assert_eq!(
        purged,
        Purged {
            authorization_codes: 2,
            sso_sessions: 3,
            ..Purged::default()
        }
    );
    assert_eq!(
        store.purge_expired(NOW, RETENTION, 1_000).await.unwrap(),
        Purged::default()
    );
    for id in ["alive", "revoked-recently", "expired-recently"] {
        assert!(store.sso_session(id).await.unwrap().is_some(), "{id}");
    }
    for id in ["revoked-long-ago", "revoked-at-bound", "expired-long-ago"] {
        assert_eq!(store.sso_session(id).await.unwrap(), None, "{id}");
    }
    assert_eq!(
        store.sso_session_by_secret("secret-alive", NOW).await.unwrap(),
        Some(ssos[0].clone())
    );
    // Used codes still there are still recognised as replays; purged ones are gone.
    for hash in ["a-day-ago-used", "recent-used"] {
        assert!(
            matches!(
                store.redeem_authorization_code(hash, NOW).await.unwrap(),
                CodeRedemption::Replayed(_)
            ),
            "{hash}"
        );
    }
    assert_eq!(
        store.redeem_authorization_code("old-used", NOW).await.unwrap(),
        CodeRedemption::Invalid
    );
    assert!(matches!(
        store.redeem_authorization_code("live", NOW).await.unwrap(),
        CodeRedemption::Redeemed(_)
    ));
    // Later the rest goes: every code a day after its expiry, every SSO session once it
    // has been over for the retention.
    let purged = store
        .purge_expired(NOW + 10 + DAY + 1, RETENTION, 1_000)
        .await
        .unwrap();
    assert_eq!((purged.authorization_codes, purged.sso_sessions), (3, 3));
    assert_eq!(
        store.user("u1").await.unwrap().map(|u| u.id).as_deref(),
        Some("u1")
    );
}

fn sighting(user_id: &str, device: &str, network: &str, at: i64) -> KnownDeviceRecord {
    KnownDeviceRecord {
        user_id: user_id.to_owned(),
        device_hash: device.to_owned(),
        network: network.to_owned(),
        first_seen_at: at,
        last_seen_at: at,
    }
}

async fn known_devices_are_upserted_bounded_and_purged(backend: &str) {
    let Some(db) = fresh(backend, true).await else {
        return;
    };
    let store = &db.store;
    for id in ["u1", "u2"] {
        store
            .create_user(&user(id, &format!("{id}@example.com"), 1_000))
            .await
            .unwrap();
    }
    assert!(store.known_devices("u1").await.unwrap().is_empty());
    assert_eq!(
        store
            .remember_device(&sighting("u1", "d1", "10.0.0.0/24", 1_000), 3)
            .await
            .unwrap(),
        0
    );
    // Seen again: first_seen_at stays, last_seen_at moves forward (never back).
    store
        .remember_device(&sighting("u1", "d1", "10.0.0.0/24", 1_100), 3)
        .await
        .unwrap();
    store
        .remember_device(&sighting("u1", "d1", "10.0.0.0/24", 1_050), 3)
        .await
        .unwrap();
    assert_eq!(
        store.known_devices("u1").await.unwrap(),
        vec![KnownDeviceRecord {
            last_seen_at: 1_100,
            ..sighting("u1", "d1", "10.0.0.0/24", 1_000)
        }]
    );
    // The same device on another network is another row; another user's rows are apart.
    store
        .remember_device(&sighting("u1", "d1", "10.0.1.0/24", 1_200), 3)
        .await
        .unwrap();
    store
        .remember_device(&sighting("u1", "d2", "10.0.1.0/24", 1_300), 3)
        .await
        .unwrap();
    store
        .remember_device(&sighting("u2", "d9", "10.9.9.0/24", 1_000), 3)
        .await
        .unwrap();
    // A fourth row for u1 drops its least recently seen one.
    assert_eq!(
        store
            .remember_device(&sighting("u1", "d3", "10.0.2.0/24", 1_400), 3)
            .await
            .unwrap(),
        1
    );
    let kept: Vec<(String, String)> = store
        .known_devices("u1")
        .await
        .unwrap()
        .into_iter()
        .map(|d| (d.device_hash, d.network))
        .collect();
    assert_eq!(
        kept,
        [
            ("d3".to_owned(), "10.0.2.0/24".to_owned()),
            ("d2".to_owned(), "10.0.1.0/24".to_owned()),
            ("d1".to_owned(), "10.0.1.0/24".to_owned()),
        ]
    );
    assert_eq!(store.known_devices("u2").await.unwrap().len(), 1);
    // Purge: rows last seen before the cut go, on every user.
    assert_eq!(store.purge_known_devices(1_250).await.unwrap(), 2);
    assert_eq!(store.known_devices("u1").await.unwrap().len(), 2);
    assert!(store.known_devices("u2").await.unwrap().is_empty());
    // Deleting the user deletes the rest.
    assert!(store.delete_user("u1").await.unwrap());
    assert!(store.known_devices("u1").await.unwrap().is_empty());
}

async fn one_time_tokens_keep_their_session(backend: &str) {
    let Some(db) = fresh(backend, true).await else {
        return;
    };
    let store = &db.store;
    store
        .create_user(&user("u1", "u1@example.com", 1_000))
        .await
        .unwrap();
    let token = OneTimeTokenRecord {
        session_id: Some("session:s1".to_owned()),
        ..one_time("h1", "end_session", "u1", 1_000)
    };
    store.create_one_time_token(&token).await.unwrap();
    assert_eq!(
        store
            .peek_one_time_token("h1", "end_session", 1_001)
            .await
            .unwrap(),
        Some(token.clone())
    );
    assert_eq!(
        store
            .peek_one_time_token("h1", "reset_password", 1_001)
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        store
            .consume_one_time_token("h1", "end_session", 1_002)
            .await
            .unwrap(),
        Some(OneTimeTokenRecord {
            used_at: Some(1_002),
            ..token
        })
    );
}

fn identity(provider: &str, subject: &str, user_id: &str, at: i64) -> FederatedIdentityRecord {
    FederatedIdentityRecord {
        provider: provider.to_owned(),
        subject: subject.to_owned(),
        user_id: user_id.to_owned(),
        email: Some(format!("{subject}@upstream.example")),
        created_at: at,
        last_used_at: at,
    }
}

async fn federated_identities_are_keyed_by_subject_and_created_with_their_user(backend: &str) {
    let Some(db) = fresh(backend, true).await else {
        return;
    };
    let store = &db.store;
    let first = user("fed-u1", "fed-u1@example.com", 1_000);
    store
        .create_user_with_identity(&first, &identity("corp", "s1", "fed-u1", 1_000))
        .await
        .unwrap();
    assert_eq!(
        store.federated_identity("corp", "s1").await.unwrap(),
        Some(identity("corp", "s1", "fed-u1", 1_000))
    );
    assert_eq!(store.federated_identity("other", "s1").await.unwrap(), None);
    // The same (provider, subject) for a second new user: neither the user nor the link.
    let second = user("fed-u2", "fed-u2@example.com", 1_000);
    let taken = store
        .create_user_with_identity(&second, &identity("corp", "s1", "fed-u2", 1_000))
        .await;
    assert!(matches!(taken, Err(StoreError::Conflict(_))), "{taken:?}");
    assert_eq!(
        store.user("fed-u2").await.unwrap(),
        None,
        "half a user was left behind"
    );
    // An address taken by another account: no identity either.
    let same_email = user("fed-u3", "fed-u1@example.com", 1_000);
    let taken = store
        .create_user_with_identity(&same_email, &identity("corp", "s3", "fed-u3", 1_000))
        .await;
    assert!(matches!(taken, Err(StoreError::Conflict(_))), "{taken:?}");
    assert_eq!(store.federated_identity("corp", "s3").await.unwrap(), None);
    // Links to an existing account; a second link of the same identity is a conflict.
    store
        .link_identity(&identity("gh", "42", "fed-u1", 1_100))
        .await
        .unwrap();
    assert!(matches!(
        store.link_identity(&identity("gh", "42", "fed-u1", 1_100)).await,
        Err(StoreError::Conflict(_))
    ));
    store.touch_identity("gh", "42", None, 1_500).await.unwrap();
    let listed = store.federated_identities("fed-u1").await.unwrap();
    assert_eq!(listed.len(), 2);
    assert_eq!(listed[1].last_used_at, 1_500);
    assert_eq!(listed[1].email.as_deref(), Some("42@upstream.example"));
    // Unlinking only the caller's own, once.
    assert!(!store.unlink_identity("fed-u2", "gh", "42").await.unwrap());
    assert!(store.unlink_identity("fed-u1", "gh", "42").await.unwrap());
    assert!(!store.unlink_identity("fed-u1", "gh", "42").await.unwrap());
    // Identities go with their account.
    store.delete_user("fed-u1").await.unwrap();
    assert_eq!(store.federated_identity("corp", "s1").await.unwrap(), None);
}
