//! Token-engine benchmark (run by `bench/tokens.sh`, release build): access-token
//! signatures per second per core and refresh-token rotations per second on SQLite and
//! PostgreSQL, each beside the raw signing rate of the same key measured in the same run,
//! so the ratio is our overhead over the cryptography itself.
//!
//! PostgreSQL is measured when `TESSERA_BENCH_DATABASE_URL` is set (a database the
//! benchmark may create a schema in).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::{Duration, Instant};

use aws_lc_rs::signature::{
    EcdsaKeyPair, Ed25519KeyPair, RsaKeyPair, ECDSA_P256_SHA256_FIXED_SIGNING, RSA_PKCS1_SHA256,
};
use jsonwebtoken::Algorithm;
use tessera_idp::audit::RequestContext;
use tessera_idp::clock::{Clock, SystemClock};
use tessera_idp::secret::Secret;
use tessera_idp::tokens::access::{self, AccessClaims};
use tessera_idp::tokens::Login;
use tessera_idp::{Config, Node};
use tessera_store::durable::ClientRecord;

const MEASURE: Duration = Duration::from_secs(3);

fn rate(mut op: impl FnMut()) -> f64 {
    // Warm up, then count operations for MEASURE.
    for _ in 0..50 {
        op();
    }
    let start = Instant::now();
    let mut n = 0u64;
    while start.elapsed() < MEASURE {
        for _ in 0..20 {
            op();
        }
        n += 20;
    }
    n as f64 / start.elapsed().as_secs_f64()
}

fn raw_sign_rate(alg: Algorithm, der: &[u8]) -> f64 {
    let message = [7u8; 300]; // about the size of a JWT signing input
    let rng = aws_lc_rs::rand::SystemRandom::new();
    match alg {
        Algorithm::ES256 => {
            let key = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, der).unwrap();
            rate(|| {
                key.sign(&rng, &message).unwrap();
            })
        }
        Algorithm::RS256 => {
            let key = RsaKeyPair::from_der(der).unwrap();
            let mut signature = vec![0u8; key.public_modulus_len()];
            rate(|| {
                key.sign(&RSA_PKCS1_SHA256, &rng, &message, &mut signature)
                    .unwrap();
            })
        }
        _ => {
            let key = Ed25519KeyPair::from_pkcs8(der).unwrap();
            rate(|| {
                let _ = key.sign(&message);
            })
        }
    }
}

async fn start(database_url: Option<String>) -> (Node, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let config = Config {
        data_dir: dir.path().to_path_buf(),
        database_url: database_url.map(Secret::new),
        master_key: Some(Secret::new("YmVuY2gtbWFzdGVyLWtleS0tLS0tLS0tLS0tLS0tLS0=")),
        ..Config::default()
    };
    let node = tessera_web::start(config).await.expect("node starts");
    (node, dir)
}

fn client(now: i64) -> ClientRecord {
    ClientRecord {
        client_id: "bench".into(),
        name: "bench".into(),
        secret_hash: None,
        token_endpoint_auth_method: "none".into(),
        channel: "web".into(),
        token_endpoint_auth_signing_alg: None,
        jwks: None,
        jwks_uri: None,
        secret_sealed: None,
        request_object_signing_alg: None,
        grant_types: vec!["refresh_token".into()],
        scopes: vec!["openid".into()],
        redirect_uris: vec![],
        post_logout_redirect_uris: vec![],
        allowed_cors_origins: vec![],
        backchannel_logout_uri: None,
        first_party: true,
        access_token_ttl_secs: None,
        refresh_token_ttl_secs: None,
        mfa_policy: None,
        require_pushed_authorization_requests: false,
        created_at: now,
        updated_at: now,
    }
}

/// Rotations per second with `workers` concurrent sessions, each refreshing its own chain.
async fn rotation_rate(node: &Node, workers: usize) -> f64 {
    let state = node.state().clone();
    let now = SystemClock.now();
    let record = match state.clients.client("bench").await.unwrap() {
        Some(existing) => existing,
        None => {
            state.clients.create_client(&client(now)).await.unwrap();
            client(now)
        }
    };
    let context = RequestContext::default();
    let mut tasks = Vec::new();
    let deadline = Instant::now() + MEASURE;
    for w in 0..workers {
        let state = state.clone();
        let record = record.clone();
        let context = context.clone();
        tasks.push(tokio::spawn(async move {
            let subject = format!("bench-user-{w}-{}", tessera_idp::tokens::opaque::random_id());
            let login = Login {
                subject: &subject,
                client: &record,
                channel: None,
                scope: "openid",
                roles: &[],
                role_terms: &Default::default(),
                active_roles: None,
                amr: &["pwd"],
                auth_time: now,
                sso_session_id: None,
                idp: None,
            };
            let mut token = state
                .tokens
                .start_session(login, &context)
                .await
                .unwrap()
                .refresh_token;
            let mut n = 0u64;
            while Instant::now() < deadline {
                let issued = state
                    .tokens
                    .refresh(token.secret(), &record, None, None, &context)
                    .await
                    .unwrap();
                token = issued.refresh_token;
                n += 1;
            }
            n
        }));
    }
    let start = Instant::now();
    let mut total = 0;
    for task in tasks {
        total += task.await.unwrap();
    }
    total as f64 / start.elapsed().as_secs_f64().max(MEASURE.as_secs_f64())
}

#[tokio::main]
async fn main() {
    println!(
        "# Tessera token-engine benchmark ({} cores, release build)",
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    let (node, _dir) = start(None).await;
    let keys = node.state().keys.clone();

    println!("\n## Access-token signatures per second, one core");
    println!(
        "{:<7} {:>14} {:>16} {:>7}",
        "alg", "raw sign/s", "access token/s", "ratio"
    );
    let mut raw_es256 = 0.0;
    for alg in [Algorithm::ES256, Algorithm::RS256, Algorithm::EdDSA] {
        let key = keys.signing_key(alg).unwrap();
        let raw = raw_sign_rate(alg, key.encoding.as_bytes());
        let now = SystemClock.now();
        let claims = AccessClaims {
            iss: "http://127.0.0.1:8080".into(),
            sub: "user-1234567890".into(),
            aud: "http://127.0.0.1:8080".into(),
            exp: now + 900,
            nbf: now,
            iat: now,
            jti: "Sl9aHd8YBxQTdxTbIdxXtw".into(),
            client_id: "shop-web".into(),
            scope: "openid profile email".into(),
            sid: Some("x1Vb3P4dBn2QdN2n3v7YWw".into()),
            roles: vec!["member".into()],
            permissions: Vec::new(),
            auth_time: Some(now),
            acr: Some("urn:tessera:acr:pwd".into()),
            amr: vec!["pwd".into()],
            cnf: None,
            idp: None,
        };
        let ours = rate(|| {
            access::sign(&keys, alg, &claims).unwrap();
        });
        if alg == Algorithm::ES256 {
            raw_es256 = raw;
        }
        println!(
            "{:<7} {:>14.0} {:>16.0} {:>7.2}",
            format!("{alg:?}"),
            raw,
            ours,
            ours / raw
        );
    }

    println!("\n## Refresh-token rotations per second (each includes one ES256 access token)");
    println!(
        "{:<10} {:>8} {:>14} {:>16} {:>7}",
        "store", "workers", "rotations/s", "raw ES256 sign/s", "ratio"
    );
    for workers in [1, 8] {
        let rotations = rotation_rate(&node, workers).await;
        println!(
            "{:<10} {:>8} {:>14.0} {:>16.0} {:>7.3}",
            "sqlite",
            workers,
            rotations,
            raw_es256,
            rotations / raw_es256
        );
    }
    if let Ok(url) = std::env::var("TESSERA_BENCH_DATABASE_URL") {
        let (pg, _pg_dir) = start(Some(url)).await;
        for workers in [1, 8] {
            let rotations = rotation_rate(&pg, workers).await;
            println!(
                "{:<10} {:>8} {:>14.0} {:>16.0} {:>7.3}",
                "postgres",
                workers,
                rotations,
                raw_es256,
                rotations / raw_es256
            );
        }
    } else {
        println!("postgres: skipped (set TESSERA_BENCH_DATABASE_URL)");
    }
}
