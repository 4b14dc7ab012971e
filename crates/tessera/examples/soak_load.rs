//! Load generator of `bench/soak.sh`: a mixed load against a cluster (HAProxy in front of
//! the nodes) and a gateway, for a long time, with every answer classified.
//!
//! ```text
//! soak_load IDP_URL GATEWAY_URL UPSTREAM_PORT EMAIL_PREFIX PASSWORD WORKERS SECONDS WINDOW_SECS REVOCATION_SECS
//! ```
//!
//! It also serves the gateway's upstream on `127.0.0.1:UPSTREAM_PORT` (`200 ok` to anything),
//! so the gateway has a real backend whose answers the generator can tell apart from the
//! gateway's own.
//!
//! Worker `i` signs in as `{EMAIL_PREFIX}{i}@example.com` and then repeats, at random:
//! `api` (GET through the gateway with its access token, 60 %), `refresh` (`POST
//! /auth/reissue`, chaining the pair, 25 %), `signup` (a fresh address, 5 %), `revoke`
//! (`POST /auth/logout`, then a new `login`, 10 %; after a logout the pair is never used
//! again, whatever the answer). A revoked access token is tried at the
//! gateway again after REVOCATION_SECS (the gateway's poll interval plus a margin): it must
//! be refused (`revocation` ok) — accepted is a failure.
//!
//! A session is *lost* when a refresh of a session the worker did not end is refused (4xx):
//! the worker then signs in again. 5xx answers and transport errors are counted per
//! operation with the time they happened (unix ms), so the caller can tell those during a
//! killed node's restart from the rest.
//!
//! Prints one JSON document: per window of WINDOW_SECS and per operation, the count of each
//! outcome and the p50/p99 latency; the list of 5xx/transport-error times; sessions lost.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};

/// What became of one request.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
enum Outcome {
    /// The answer the operation expects.
    Ok,
    /// A 4xx the operation does not expect (a lost session, a refused valid token, …).
    Refused,
    /// A 5xx.
    ServerError,
    /// No answer: connection refused or reset, timeout.
    Transport,
}

impl Outcome {
    fn name(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Refused => "4xx",
            Outcome::ServerError => "5xx",
            Outcome::Transport => "transport",
        }
    }
}

#[derive(Default)]
struct Cell {
    outcomes: BTreeMap<&'static str, u64>,
    latencies_us: Vec<u64>,
}

#[derive(Default)]
struct Record {
    /// (window, operation) → counts and latencies.
    cells: BTreeMap<(u64, &'static str), Cell>,
    /// (unix ms, operation, outcome, detail) of every 5xx and transport error.
    failures: Vec<(u64, &'static str, &'static str, String)>,
    /// (unix ms, detail) of every refused refresh of a live session.
    sessions_lost: Vec<(u64, String)>,
    /// Revoked tokens the gateway still accepted after the poll interval.
    revocations_late: u64,
    /// (unix ms, operation, detail) of the first unexpected 4xx answers.
    refusals: Vec<(u64, &'static str, String)>,
}

struct Run {
    idp: String,
    gateway: String,
    started: Instant,
    window: Duration,
    revocation_delay: Duration,
    record: Mutex<Record>,
}

fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

impl Run {
    fn note(&self, op: &'static str, outcome: Outcome, started: Instant, detail: impl FnOnce() -> String) {
        let window = started.duration_since(self.started).as_secs() / self.window.as_secs().max(1);
        let mut record = self.record.lock().unwrap();
        let cell = record.cells.entry((window, op)).or_default();
        *cell.outcomes.entry(outcome.name()).or_default() += 1;
        if outcome == Outcome::Ok {
            cell.latencies_us.push(started.elapsed().as_micros() as u64);
        }
        if matches!(outcome, Outcome::ServerError | Outcome::Transport) && record.failures.len() < 10_000 {
            record.failures.push((unix_ms(), op, outcome.name(), detail()));
        } else if outcome == Outcome::Refused && record.refusals.len() < 50 {
            record.refusals.push((unix_ms(), op, detail()));
        }
    }

    /// Sends `request`, classifies the answer against `expected`, returns the body when
    /// it was expected.
    async fn call(&self, op: &'static str, request: reqwest::RequestBuilder, expected: u16) -> Option<Value> {
        match self.call_keeping(op, request, expected).await {
            Answer::Expected(body) => Some(body),
            Answer::Refused | Answer::None => None,
        }
    }

    async fn call_keeping(
        &self,
        op: &'static str,
        request: reqwest::RequestBuilder,
        expected: u16,
    ) -> Answer {
        let started = Instant::now();
        match request.send().await {
            Err(err) => {
                self.note(op, Outcome::Transport, started, || err.to_string());
                Answer::None
            }
            Ok(response) => {
                let status = response.status().as_u16();
                let text = response.text().await.unwrap_or_default();
                let outcome = match status {
                    s if s == expected => Outcome::Ok,
                    s if s >= 500 => Outcome::ServerError,
                    _ => Outcome::Refused,
                };
                self.note(op, outcome, started, || format!("{status} {}", truncate(&text)));
                match outcome {
                    Outcome::Ok => Answer::Expected(serde_json::from_str(&text).unwrap_or(Value::Null)),
                    Outcome::Refused => {
                        if op == "refresh" {
                            let mut record = self.record.lock().unwrap();
                            record
                                .sessions_lost
                                .push((unix_ms(), format!("{status} {}", truncate(&text))));
                        }
                        Answer::Refused
                    }
                    Outcome::ServerError | Outcome::Transport => Answer::None,
                }
            }
        }
    }
}

enum Answer {
    Expected(Value),
    Refused,
    None,
}

fn truncate(text: &str) -> String {
    text.chars().take(200).collect()
}

struct Worker {
    run: Arc<Run>,
    client: reqwest::Client,
    email: String,
    password: Arc<str>,
    pair: Option<Value>,
    signups: u64,
    id: usize,
    rng: u64,
}

impl Worker {
    fn random(&mut self) -> u64 {
        // xorshift64*: enough to mix the operations; not for anything secret.
        self.rng ^= self.rng >> 12;
        self.rng ^= self.rng << 25;
        self.rng ^= self.rng >> 27;
        self.rng.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    async fn login(&mut self) {
        let request = self
            .client
            .post(format!("{}/auth/login", self.run.idp))
            .json(&json!({"email": self.email, "password": &*self.password}));
        self.pair = self.run.call("login", request, 200).await;
    }

    async fn step(&mut self) {
        let Some(pair) = self.pair.clone() else {
            self.login().await;
            if self.pair.is_none() {
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            return;
        };
        let access = pair["accessToken"].as_str().unwrap_or_default().to_owned();
        match self.random() % 100 {
            0..=59 => {
                let request = self
                    .client
                    .get(format!("{}/api/orders", self.run.gateway))
                    .bearer_auth(&access);
                self.run.call("api", request, 200).await;
            }
            60..=84 => {
                let request = self
                    .client
                    .post(format!("{}/auth/reissue", self.run.idp))
                    .json(&json!({"accessToken": pair["accessToken"], "refreshToken": pair["refreshToken"]}));
                match self.run.call_keeping("refresh", request, 200).await {
                    Answer::Expected(next) => self.pair = Some(next),
                    // Lost (counted): sign in again.
                    Answer::Refused => self.pair = None,
                    // Unanswered: it may have rotated, and the grace window lets the same
                    // pair be presented again.
                    Answer::None => {}
                }
            }
            85..=89 => {
                self.signups += 1;
                let email = format!(
                    "soak-signup-{}-{}-{}@example.com",
                    self.id,
                    self.signups,
                    unix_ms()
                );
                let request = self
                    .client
                    .post(format!("{}/auth/signup", self.run.idp))
                    .json(&json!({"email": email, "password": &*self.password}));
                self.run.call("signup", request, 201).await;
            }
            _ => {
                let request = self
                    .client
                    .post(format!("{}/auth/logout", self.run.idp))
                    .bearer_auth(&access);
                let ended = self.run.call("revoke", request, 204).await.is_some();
                // Any other answer may still have ended the session: a node that logged the
                // session out and died before answering gets the request retried by HAProxy
                // on another node, which then finds the token revoked (401). The pair is
                // not used again either way, so such a logout never reads as a lost session.
                self.pair = None;
                if ended {
                    let run = Arc::clone(&self.run);
                    let client = self.client.clone();
                    tokio::spawn(async move {
                        tokio::time::sleep(run.revocation_delay).await;
                        let started = Instant::now();
                        let request = client
                            .get(format!("{}/api/orders", run.gateway))
                            .bearer_auth(&access);
                        match request.send().await {
                            Ok(response) if response.status() == 401 => {
                                run.note("revocation", Outcome::Ok, started, String::new);
                            }
                            Ok(response) if response.status().is_success() => {
                                run.note("revocation", Outcome::Refused, started, String::new);
                                run.record.lock().unwrap().revocations_late += 1;
                            }
                            Ok(response) => {
                                let status = response.status();
                                let outcome = if status.is_server_error() {
                                    Outcome::ServerError
                                } else {
                                    Outcome::Refused
                                };
                                run.note("revocation", outcome, started, || status.to_string());
                            }
                            Err(err) => {
                                run.note("revocation", Outcome::Transport, started, || err.to_string())
                            }
                        }
                    });
                }
            }
        }
    }
}

fn percentile(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i] as f64 / 1000.0
}

/// The gateway's upstream: `200 ok` to anything.
async fn upstream(port: u16) {
    let app = axum::Router::new().fallback(|| async { "ok\n" });
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await.unwrap();
    axum::serve(listener, app).await.unwrap();
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() != 10 {
        eprintln!(
            "usage: soak_load IDP_URL GATEWAY_URL UPSTREAM_PORT EMAIL_PREFIX PASSWORD WORKERS SECONDS \
             WINDOW_SECS REVOCATION_SECS"
        );
        std::process::exit(2);
    }
    let number = |i: usize| -> u64 {
        args[i]
            .parse()
            .unwrap_or_else(|_| panic!("argument {i} is a number"))
    };
    let upstream_port = u16::try_from(number(3)).unwrap();
    let (workers, seconds, window, revocation) = (number(6) as usize, number(7), number(8), number(9));
    tokio::spawn(upstream(upstream_port));
    let run = Arc::new(Run {
        idp: args[1].clone(),
        gateway: args[2].clone(),
        started: Instant::now(),
        window: Duration::from_secs(window),
        revocation_delay: Duration::from_secs(revocation),
        record: Mutex::new(Record::default()),
    });
    let until = run.started + Duration::from_secs(seconds);
    let password: Arc<str> = args[5].clone().into();
    let mut tasks = Vec::new();
    for id in 0..workers {
        let mut worker = Worker {
            run: Arc::clone(&run),
            client: reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .pool_idle_timeout(Duration::from_secs(30))
                .build()
                .unwrap(),
            email: format!("{}{id}@example.com", args[4]),
            password: Arc::clone(&password),
            pair: None,
            signups: 0,
            id,
            rng: 0x9E37_79B9_7F4A_7C15 ^ (id as u64 + 1).wrapping_mul(0xD1B5_4A32_D192_ED03),
        };
        tasks.push(tokio::spawn(async move {
            while Instant::now() < until {
                worker.step().await;
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    // The last revocation checks.
    tokio::time::sleep(Duration::from_secs(revocation + 1)).await;

    let record = run.record.lock().unwrap();
    let mut windows: BTreeMap<u64, BTreeMap<&str, Value>> = BTreeMap::new();
    let mut totals: BTreeMap<&str, BTreeMap<&str, u64>> = BTreeMap::new();
    for ((window, op), cell) in &record.cells {
        let mut sorted = cell.latencies_us.clone();
        sorted.sort_unstable();
        windows.entry(*window).or_default().insert(
            op,
            json!({
                "outcomes": cell.outcomes,
                "p50_ms": percentile(&sorted, 0.5),
                "p99_ms": percentile(&sorted, 0.99),
            }),
        );
        let total = totals.entry(op).or_default();
        for (outcome, count) in &cell.outcomes {
            *total.entry(outcome).or_default() += count;
        }
    }
    let failures: Vec<Value> = record
        .failures
        .iter()
        .map(|(at, op, outcome, detail)| json!({"at_ms": at, "op": op, "outcome": outcome, "detail": detail}))
        .collect();
    let lost: Vec<Value> = record
        .sessions_lost
        .iter()
        .map(|(at, detail)| json!({"at_ms": at, "detail": detail}))
        .collect();
    let refusals: Vec<Value> = record
        .refusals
        .iter()
        .map(|(at, op, detail)| json!({"at_ms": at, "op": op, "detail": detail}))
        .collect();
    let report = json!({
        "refusals": refusals,
        "started_at_ms": unix_ms() - run.started.elapsed().as_millis() as u64,
        "window_secs": window,
        "workers": workers,
        "totals": totals,
        "windows": windows,
        "failures": failures,
        "sessions_lost": lost,
        "revocations_late": record.revocations_late,
    });
    println!("{report}");
}
