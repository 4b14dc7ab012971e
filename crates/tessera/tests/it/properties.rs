//! Property tests of the security rules (issue 19), on a real node per backend: proptest
//! draws sequences of operations, the node answers them, and each answer is checked
//! against a small model of the rule.
//!
//! - Refresh rotation: any sequence of presentations of a family's tokens — the latest,
//!   an older one, several at once, within and past the grace window — gets exactly the
//!   answers of the model, and a family never has two live tokens.
//! - Session limits: any sequence of bursts of concurrent logins never passes the
//!   channel's limit, under both `reject` and `revoke_oldest`.
//! - Narrowing: a refresh never gains a scope.
//! - Login throttle: any burst of wrong passwords for one account, spread over one to
//!   three nodes, gets at most `login.max_failures` password checks.

use std::collections::BTreeSet;
use std::sync::Arc;

use proptest::prelude::*;
use proptest::test_runner::{Config as ProptestConfig, TestRunner};
use tessera_idp::tokens::opaque::RefreshToken;
use tessera_store::durable::{ClientRecord, SessionStore};
use tessera_testkit::{spawn_with, Backend, TestNode};

/// Cases per property: each is a fresh session on one node, so a case costs a few
/// milliseconds on SQLite; PostgreSQL gets fewer.
fn cases(backend: Backend) -> u32 {
    match backend {
        Backend::Sqlite => 48,
        Backend::Postgres => 16,
    }
}

/// Runs `property` for proptest's cases on one node of `backend` (set up by `adjust`),
/// on a runtime of its own (proptest's runner is synchronous).
fn on_a_node<S: Strategy>(
    backend: Backend,
    adjust: impl FnOnce(&mut tessera_idp::config::Config),
    strategy: S,
    property: impl Fn(&tokio::runtime::Runtime, &TestNode, S::Value),
) where
    S::Value: std::fmt::Debug,
{
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let Some(node) = runtime.block_on(spawn_with(backend, adjust)) else {
        return;
    };
    let mut runner = TestRunner::new(ProptestConfig {
        cases: cases(backend),
        failure_persistence: None,
        ..ProptestConfig::default()
    });
    let outcome = runner.run(&strategy, |value| {
        property(&runtime, &node, value);
        Ok(())
    });
    runtime.block_on(async move { drop(node) });
    if let Err(failure) = outcome {
        panic!("{failure}");
    }
}

/// One step of a family's life.
#[derive(Debug, Clone)]
enum Step {
    /// Present the token `back` places before the newest one (0: the newest), `copies`
    /// times at once.
    Present { back: usize, copies: usize },
    /// Let more than the grace window pass.
    Wait,
}

fn steps() -> impl Strategy<Value = Vec<Step>> {
    let step = prop_oneof![
        4 => (0usize..3, 1usize..4).prop_map(|(back, copies)| Step::Present { back, copies }),
        1 => Just(Step::Wait),
    ];
    proptest::collection::vec(step, 1..10)
}

/// The model of one family: its tokens, oldest first (index i's successor is i + 1), which
/// have been presented (rotated) and when, and whether the family was ended for reuse.
struct Family {
    tokens: Vec<String>,
    rotated_at: Vec<Option<i64>>,
    ended: bool,
}

/// What the model says a presentation of token `i` at `now` gets: `Some(successor index)`
/// or `None` (refused; a rotated token outside the grace window or after its successor's
/// use ends the family).
fn expected(family: &mut Family, i: usize, now: i64, grace: i64) -> Option<usize> {
    if family.ended {
        return None;
    }
    match family.rotated_at[i] {
        None => {
            family.rotated_at[i] = Some(now);
            Some(i + 1)
        }
        Some(at) => {
            let successor_unused = family.rotated_at.get(i + 1).is_none_or(Option::is_none);
            if now - at <= grace && successor_unused {
                Some(i + 1)
            } else {
                family.ended = true;
                None
            }
        }
    }
}

fn rotation_property(backend: Backend) {
    const GRACE: i64 = 10;
    on_a_node(
        backend,
        |c| c.tokens.refresh_grace_secs = GRACE as u64,
        steps(),
        |runtime, node, steps| {
            runtime.block_on(async {
                let client = node.create_client(&unique("prop-rotation"), false, "web").await;
                let record: ClientRecord = node
                    .state
                    .clients
                    .client(&client.client_id)
                    .await
                    .unwrap()
                    .unwrap();
                let first = node.login(&unique("prop-user"), &client).await.unwrap();
                let session = first.session.id.clone();
                let mut family = Family {
                    tokens: vec![first.refresh_token.secret().to_owned()],
                    rotated_at: vec![None],
                    ended: false,
                };
                for step in &steps {
                    let now = tessera_idp::clock::Clock::now(node.clock.as_ref());
                    let (back, copies) = match *step {
                        Step::Wait => {
                            node.clock.advance(GRACE + 1);
                            continue;
                        }
                        Step::Present { back, copies } => (back, copies),
                    };
                    let i = family.tokens.len().saturating_sub(1 + back);
                    let presented = family.tokens[i].clone();
                    let answers = futures_util::future::join_all((0..copies).map(|_| {
                        let (tokens, record, presented) =
                            (node.state.tokens.clone(), record.clone(), presented.clone());
                        async move {
                            tokens
                                .refresh(&presented, &record, None, None, &Default::default())
                                .await
                                .map(|issued| issued.refresh_token.secret().to_owned())
                        }
                    }))
                    .await;
                    let want = expected(&mut family, i, now, GRACE);
                    let got: BTreeSet<Option<String>> = answers.into_iter().map(Result::ok).collect();
                    match want {
                        Some(next) => {
                            // Every copy gets the one successor: the same token, derived.
                            assert_eq!(got.len(), 1, "{steps:?}: copies of token {i} got {got:?}");
                            let successor = got.into_iter().next().flatten().unwrap_or_else(|| {
                                panic!("{steps:?}: token {i} was refused, the model grants it")
                            });
                            if next == family.tokens.len() {
                                family.tokens.push(successor);
                                family.rotated_at.push(None);
                            } else {
                                assert_eq!(successor, family.tokens[next], "{steps:?}: a second successor");
                            }
                        }
                        None => assert_eq!(
                            got,
                            BTreeSet::from([None]),
                            "{steps:?}: token {i} must be refused"
                        ),
                    }
                    // At most one live token, and none once the family ended.
                    let mut live = 0;
                    for token in &family.tokens {
                        let hash = RefreshToken::parse(token).unwrap().hash();
                        let stored = node.state.db.refresh_token(&hash).await.unwrap().unwrap();
                        live += usize::from(stored.rotated_at.is_none());
                    }
                    let alive = node
                        .state
                        .db
                        .session(&session)
                        .await
                        .unwrap()
                        .is_some_and(|s| s.is_alive(tessera_idp::clock::Clock::now(node.clock.as_ref())));
                    assert!(live <= 1, "{steps:?}: {live} live tokens");
                    assert_eq!(alive, !family.ended, "{steps:?}: session alive = {alive}");
                }
            });
        },
    );
}

#[test]
fn refresh_rotation_follows_its_model_sqlite() {
    rotation_property(Backend::Sqlite);
}

#[test]
fn refresh_rotation_follows_its_model_postgres() {
    rotation_property(Backend::Postgres);
}

/// Bursts of concurrent logins of one user on a channel limited to `LIMIT` sessions.
fn limit_property(backend: Backend, on_limit: tessera_idp::config::OnLimit) {
    const LIMIT: u32 = 3;
    on_a_node(
        backend,
        |c| {
            c.sessions.channels.insert(
                "mobile".into(),
                tessera_idp::config::ChannelPolicy {
                    max_sessions: LIMIT,
                    on_limit,
                },
            );
        },
        proptest::collection::vec(1usize..6, 1..5),
        |runtime, node, bursts| {
            runtime.block_on(async {
                let client = Arc::new(node.create_client(&unique("prop-limit"), false, "mobile").await);
                let subject = unique("prop-limited");
                let mut attempts = 0usize;
                let mut created = 0usize;
                for &burst in &bursts {
                    let answers = futures_util::future::join_all((0..burst).map(|_| {
                        let (client, subject) = (client.clone(), subject.clone());
                        async move { node.login(&subject, &client).await }
                    }))
                    .await;
                    attempts += burst;
                    created += answers.iter().filter(|a| a.is_ok()).count();
                    let alive = node.state.tokens.sessions_of(&subject).await.unwrap().len();
                    let limit = LIMIT as usize;
                    assert!(alive <= limit, "{bursts:?}: {alive} alive sessions");
                    match on_limit {
                        // Refused past the limit: exactly the first LIMIT were made.
                        tessera_idp::config::OnLimit::Reject => {
                            assert_eq!(created, attempts.min(limit), "{bursts:?}");
                            assert_eq!(alive, created, "{bursts:?}");
                        }
                        // The newest wins: every login is made, the oldest give way.
                        tessera_idp::config::OnLimit::RevokeOldest => {
                            assert_eq!(created, attempts, "{bursts:?}");
                            assert_eq!(alive, attempts.min(limit), "{bursts:?}");
                        }
                    }
                }
            });
        },
    );
}

#[test]
fn session_limits_hold_under_concurrent_logins_sqlite() {
    limit_property(Backend::Sqlite, tessera_idp::config::OnLimit::Reject);
    limit_property(Backend::Sqlite, tessera_idp::config::OnLimit::RevokeOldest);
}

#[test]
fn session_limits_hold_under_concurrent_logins_postgres() {
    limit_property(Backend::Postgres, tessera_idp::config::OnLimit::Reject);
    limit_property(Backend::Postgres, tessera_idp::config::OnLimit::RevokeOldest);
}

/// A refresh asking for any scope gets a subset of the session's, never more.
fn narrowing_property(backend: Backend) {
    const WORDS: [&str; 6] = [
        "openid",
        "profile",
        "email",
        "orders:read",
        "admin",
        "tessera:admin",
    ];
    let requested = proptest::collection::vec(proptest::sample::select(&WORDS[..]), 0..5);
    on_a_node(
        backend,
        |_| {},
        requested,
        |runtime, node, requested| {
            runtime.block_on(async {
                let client = node.create_client(&unique("prop-scope"), false, "web").await;
                let record = node
                    .state
                    .clients
                    .client(&client.client_id)
                    .await
                    .unwrap()
                    .unwrap();
                let issued = node.login(&unique("prop-scoped"), &client).await.unwrap();
                let granted: BTreeSet<&str> = issued.scope.split_ascii_whitespace().collect();
                let asked = requested.join(" ");
                let answer = node
                    .state
                    .tokens
                    .refresh(
                        issued.refresh_token.secret(),
                        &record,
                        Some(&asked),
                        None,
                        &Default::default(),
                    )
                    .await;
                let within = requested.iter().all(|s| granted.contains(s));
                match answer {
                    Ok(refreshed) => {
                        assert!(within, "{requested:?} is wider than {granted:?} and was granted");
                        let got: BTreeSet<&str> = refreshed.scope.split_ascii_whitespace().collect();
                        assert!(got.is_subset(&granted), "{got:?} is not within {granted:?}");
                    }
                    Err(err) => assert!(!within, "{requested:?} is within {granted:?} but refused: {err}"),
                }
            });
        },
    );
}

#[test]
fn a_refresh_never_gains_a_scope_sqlite() {
    narrowing_property(Backend::Sqlite);
}

#[test]
fn a_refresh_never_gains_a_scope_postgres() {
    narrowing_property(Backend::Postgres);
}

/// Bursts of wrong passwords for one account from many addresses (the per-IP limit stays
/// out of it), spread over `nodes` nodes at once: a wrong password is answered 401 only
/// when it was checked, so at most `max_failures` 401s, the rest 429; and past the limit
/// the right password is refused too (the account is locked).
fn throttle_property(backend: Backend) {
    const MAX_FAILURES: u32 = 4;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let Some(node) = runtime.block_on(spawn_with(backend, |c| {
        c.login.max_failures = MAX_FAILURES;
    })) else {
        return;
    };
    // Nodes count together through Redis; without it (SQLite's in-process store) there is
    // one node.
    let mut urls = vec![node.url.clone()];
    let mut servers = Vec::new();
    if node.config.redis_url.is_some() {
        for _ in 0..2 {
            let (url, server) = runtime.block_on(node.peer());
            urls.push(url);
            servers.push(server);
        }
    }
    let mut runner = TestRunner::new(ProptestConfig {
        cases: cases(backend) / 4,
        failure_persistence: None,
        ..ProptestConfig::default()
    });
    let strategy = (1..=urls.len(), 1usize..12);
    let outcome = runner.run(&strategy, |(nodes, burst)| {
        runtime.block_on(async {
            let email = format!("{}@example.com", unique("prop-throttle"));
            node.create_user(&email, crate::mfa::PASSWORD).await;
            let attempts = (0..burst).map(|i| {
                let url = urls[i % nodes].clone();
                let email = email.clone();
                async move {
                    let client = reqwest::Client::builder()
                        .local_address(tessera_testkit::loopback_ip())
                        .build()
                        .unwrap();
                    client
                        .post(format!("{url}/auth/login"))
                        .json(&serde_json::json!({ "email": email, "password": "not the password" }))
                        .send()
                        .await
                        .unwrap()
                        .status()
                        .as_u16()
                }
            });
            let statuses = futures_util::future::join_all(attempts).await;
            let checked = statuses.iter().filter(|s| **s == 401).count();
            assert!(
                statuses.iter().all(|s| *s == 401 || *s == 429),
                "{nodes} nodes, {burst} attempts: {statuses:?}"
            );
            assert!(
                checked <= MAX_FAILURES as usize,
                "{nodes} nodes, {burst} attempts: {checked} passwords checked: {statuses:?}"
            );
            assert_eq!(checked, burst.min(MAX_FAILURES as usize), "{statuses:?}");
            let client = reqwest::Client::builder()
                .local_address(tessera_testkit::loopback_ip())
                .build()
                .unwrap();
            let right = client
                .post(format!("{}/auth/login", urls[0]))
                .json(&serde_json::json!({ "email": email, "password": crate::mfa::PASSWORD }))
                .send()
                .await
                .unwrap()
                .status()
                .as_u16();
            let locked = burst >= MAX_FAILURES as usize;
            assert_eq!(
                right,
                if locked { 429 } else { 200 },
                "{nodes} nodes, {burst} attempts"
            );
        });
        Ok(())
    });
    for server in servers {
        server.abort();
    }
    runtime.block_on(async move { drop(node) });
    if let Err(failure) = outcome {
        panic!("{failure}");
    }
}

#[test]
fn a_burst_of_wrong_passwords_gets_at_most_the_limit_of_checks_sqlite() {
    throttle_property(Backend::Sqlite);
}

#[test]
fn a_burst_of_wrong_passwords_gets_at_most_the_limit_of_checks_across_nodes_postgres() {
    throttle_property(Backend::Postgres);
}

/// A name no other case or run uses.
fn unique(prefix: &str) -> String {
    format!("{prefix}-{}", tessera_idp::tokens::opaque::random_id())
}
