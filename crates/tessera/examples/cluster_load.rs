//! Load generator of `bench/cluster.sh`: logins or refreshes per second through one URL
//! (HAProxy in front of 1–3 nodes), at a fixed concurrency, for a fixed time.
//!
//! ```text
//! cluster_load login   URL EMAIL_PREFIX PASSWORD CONCURRENCY SECONDS
//! cluster_load refresh URL EMAIL_PREFIX PASSWORD CONCURRENCY SECONDS
//! ```
//!
//! Worker `i` uses the account `{EMAIL_PREFIX}{i}@example.com` (one account per worker: the
//! login throttle limits attempts in flight per account). `login` repeats `POST
//! /auth/login`; `refresh` logs in once (not measured) and then chains `POST /auth/reissue`,
//! each request presenting the pair the previous one returned — what wrk with a static
//! script cannot do. Prints one line of JSON: completed and failed requests, the rate, and
//! latency percentiles.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

#[derive(Default)]
struct Tally {
    ok: u64,
    failed: u64,
    latencies: Vec<Duration>,
    first_failure: Option<String>,
}

async fn login(client: &reqwest::Client, url: &str, email: &str, password: &str) -> Result<Value, String> {
    let response = client
        .post(format!("{url}/auth/login"))
        .json(&json!({"email": email, "password": password}))
        .send()
        .await
        .map_err(|e| e.to_string())?;
    let status = response.status();
    let body: Value = response.json().await.map_err(|e| e.to_string())?;
    if status == 200 {
        Ok(body)
    } else {
        Err(format!("login: {status} {body}"))
    }
}

async fn reissue(client: &reqwest::Client, url: &str, pair: &Value) -> Result<Value, String> {
    let response = client
        .post(format!("{url}/auth/reissue"))
        .json(&json!({"accessToken": pair["accessToken"], "refreshToken": pair["refreshToken"]}))
        .send()
        .await
        .map_err(|e| e.to_string())?;
    let status = response.status();
    let body: Value = response.json().await.map_err(|e| e.to_string())?;
    if status == 200 {
        Ok(body)
    } else {
        Err(format!("reissue: {status} {body}"))
    }
}

/// Runs requests from `start` until `until`; a refresh worker logs in before `start`.
async fn worker(
    mode: Arc<str>,
    url: Arc<str>,
    email: String,
    password: Arc<str>,
    (start, until): (Instant, Instant),
) -> Tally {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let mut tally = Tally::default();
    let mut pair = if &*mode == "refresh" {
        match login(&client, &url, &email, &password).await {
            Ok(pair) => Some(pair),
            Err(e) => panic!("{email}: {e}"),
        }
    } else {
        None
    };
    tokio::time::sleep_until(start.into()).await;
    while Instant::now() < until {
        let started = Instant::now();
        let outcome = match &pair {
            Some(current) => reissue(&client, &url, current).await,
            None => login(&client, &url, &email, &password).await,
        };
        match outcome {
            Ok(next) => {
                tally.ok += 1;
                tally.latencies.push(started.elapsed());
                if pair.is_some() {
                    pair = Some(next);
                }
            }
            Err(e) => {
                tally.failed += 1;
                tally.first_failure.get_or_insert(e);
            }
        }
    }
    tally
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i].as_secs_f64() * 1000.0
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() != 7 || !matches!(args[1].as_str(), "login" | "refresh") {
        eprintln!("usage: cluster_load login|refresh URL EMAIL_PREFIX PASSWORD CONCURRENCY SECONDS");
        std::process::exit(2);
    }
    let mode: Arc<str> = args[1].as_str().into();
    let url: Arc<str> = args[2].trim_end_matches('/').into();
    let prefix = &args[3];
    let password: Arc<str> = args[4].as_str().into();
    let concurrency: usize = args[5].parse().expect("CONCURRENCY");
    let seconds: u64 = args[6].parse().expect("SECONDS");

    // The refresh workers log in before the clock starts.
    let start_in = if &*mode == "refresh" {
        Duration::from_secs(3)
    } else {
        Duration::ZERO
    };
    let start = Instant::now() + start_in;
    let until = start + Duration::from_secs(seconds);
    let handles: Vec<_> = (0..concurrency)
        .map(|i| {
            tokio::spawn(worker(
                mode.clone(),
                url.clone(),
                format!("{prefix}{i}@example.com"),
                password.clone(),
                (start, until),
            ))
        })
        .collect();
    let mut total = Tally::default();
    for handle in handles {
        let tally = handle.await.unwrap();
        total.ok += tally.ok;
        total.failed += tally.failed;
        total.latencies.extend(tally.latencies);
        if total.first_failure.is_none() {
            total.first_failure = tally.first_failure;
        }
    }
    // The window is `seconds` long in both modes (refresh workers log in before it); a
    // request started in the window counts even if it ends just after (at most one per
    // worker).
    total.latencies.sort();
    println!(
        "{}",
        json!({
            "mode": &*mode,
            "concurrency": concurrency,
            "seconds": seconds,
            "ok": total.ok,
            "failed": total.failed,
            "per_sec": total.ok as f64 / seconds as f64,
            "p50_ms": percentile(&total.latencies, 0.50),
            "p99_ms": percentile(&total.latencies, 0.99),
            "first_failure": total.first_failure,
        })
    );
}
