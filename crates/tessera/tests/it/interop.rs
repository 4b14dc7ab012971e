//! Interoperability with JOSE libraries Tessera does not use: Node `jose` and Python
//! `jwcrypto` (tests/interop/) verify access tokens against the node's published JWKS.
//! CI installs both (`.ci/run`) and sets `TESSERA_REQUIRE_INTEROP=1`, which turns a missing
//! tool into a failure; elsewhere a missing tool skips these tests with a message.

use std::path::{Path, PathBuf};
use std::process::Command;

use tessera_testkit::{backend_tests, spawn_with, Backend};

backend_tests!(jose_and_jwcrypto_verify_access_tokens_of_every_algorithm);

fn interop_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/interop")
}

/// The verifiers that can run here, as (name, program, script).
fn verifiers() -> Vec<(&'static str, &'static str, &'static str)> {
    let dir = interop_dir();
    let mut found = Vec::new();
    let required = std::env::var("TESSERA_REQUIRE_INTEROP").is_ok_and(|v| v == "1");
    let node_ok =
        dir.join("node_modules/jose").is_dir() && Command::new("node").arg("--version").output().is_ok();
    let python_ok = Command::new("python3")
        .args(["-c", "import jwcrypto"])
        .output()
        .is_ok_and(|o| o.status.success());
    for (name, ok, program, script) in [
        ("node jose", node_ok, "node", "verify_jwt.mjs"),
        ("python jwcrypto", python_ok, "python3", "verify_jwt.py"),
    ] {
        if ok {
            found.push((name, program, script));
        } else if required {
            panic!("{name} is not installed (run `npm ci` and `pip install -r requirements.txt` in tests/interop)");
        } else {
            eprintln!("skipped: {name} not installed in tests/interop");
        }
    }
    found
}

fn run(program: &str, script: &str, args: &[&str]) -> (bool, String) {
    let output = Command::new(program)
        .current_dir(interop_dir())
        .arg(script)
        .args(args)
        .output()
        .expect("cannot run verifier");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), text)
}

async fn jose_and_jwcrypto_verify_access_tokens_of_every_algorithm(backend: Backend) {
    let verifiers = verifiers();
    if verifiers.is_empty() {
        return;
    }
    for alg in ["ES256", "RS256", "EdDSA"] {
        let Some(node) = spawn_with(backend, |c| c.tokens.access_token_alg = alg.to_owned()).await else {
            return;
        };
        let app = node.create_client("interop", false, "web").await;
        let issued = node.login("user-interop", &app).await.unwrap();
        let jwks = node.at("/.well-known/jwks.json");
        let audience = node.state.tokens.audience().to_owned();
        let token = issued.access_token.as_str();
        let mut tampered = token.to_owned().into_bytes();
        let i = tampered.len() - 3;
        tampered[i] = if tampered[i] == b'Q' { b'R' } else { b'Q' };
        let tampered = String::from_utf8(tampered).unwrap();
        for (name, program, script) in &verifiers {
            let (ok, out) = run(program, script, &[&jwks, token, &node.url, &audience]);
            assert!(ok, "{name} rejected a valid {alg} token: {out}");
            let verified: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
            assert_eq!(verified["header"]["alg"], alg, "{name}");
            assert_eq!(verified["claims"]["sub"], "user-interop", "{name}");
            assert_eq!(verified["claims"]["sid"], issued.session.id.as_str(), "{name}");

            let (ok, out) = run(program, script, &[&jwks, &tampered, &node.url, &audience]);
            assert!(!ok, "{name} accepted a tampered {alg} token: {out}");
            let (ok, out) = run(
                program,
                script,
                &[&jwks, token, "https://evil.example", &audience],
            );
            assert!(!ok, "{name} accepted a token for another issuer: {out}");
        }
    }
}
