//! Interoperability with libraries Tessera does not use (tests/interop/): Node `jose` and
//! Python `jwcrypto` verify access tokens against the node's published JWKS; the relying-party
//! libraries Node `openid-client` and Python Authlib walk the OpenID Connect code flow
//! end to end. CI installs them all (`.ci/run`) and sets `TESSERA_REQUIRE_INTEROP=1`, which
//! turns a missing tool into a failure; elsewhere a missing tool skips these tests with a
//! message.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;
use tessera_store::durable::ClientRecord;
use tessera_testkit::{backend_tests, spawn, spawn_with, Backend};

backend_tests!(
    jose_and_jwcrypto_verify_access_tokens_of_every_algorithm,
    openid_client_and_authlib_complete_the_code_flow,
    openid_client_asking_for_acr_values_gets_the_factor_in_amr,
    openid_client_asking_with_the_claims_parameter_gets_them_in_the_id_token,
    openid_client_completes_the_device_flow_approved_on_the_hosted_page,
    openid_client_completes_a_code_flow_through_pushed_authorization_requests,
    openid_client_authlib_and_jwcrypto_authenticate_with_jwt_assertions,
    openid_client_binds_its_tokens_to_a_dpop_key_through_refresh_and_userinfo,
    jwcrypto_proofs_bind_client_credentials_tokens_and_bad_ones_are_refused,
);

fn interop_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/interop")
}

/// Whether `node` runs here and `tests/interop/node_modules/<package>` is installed.
fn node_has(package: &str) -> bool {
    interop_dir().join("node_modules").join(package).is_dir()
        && Command::new("node")
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success())
}

/// Whether `python3` runs here and can import `modules` (comma-separated).
fn python_has(modules: &str) -> bool {
    Command::new("python3")
        .args(["-c", &format!("import {modules}")])
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Of `(name, available, program, script)`, the ones that can run here, as
/// (name, program, script). A missing one is skipped with a message, or fails the test
/// under `TESSERA_REQUIRE_INTEROP=1`.
fn available<const N: usize>(
    tools: [(&'static str, bool, &'static str, &'static str); N],
) -> Vec<(&'static str, &'static str, &'static str)> {
    let mut found = Vec::new();
    let required = std::env::var("TESSERA_REQUIRE_INTEROP").is_ok_and(|v| v == "1");
    for (name, ok, program, script) in tools {
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

/// The verifiers that can run here, as (name, program, script).
fn verifiers() -> Vec<(&'static str, &'static str, &'static str)> {
    available([
        ("node jose", node_has("jose"), "node", "verify_jwt.mjs"),
        (
            "python jwcrypto",
            python_has("jwcrypto"),
            "python3",
            "verify_jwt.py",
        ),
    ])
}

fn run(program: &str, script: &str, args: &[&str]) -> (bool, String) {
    run_with(program, script, args, &[])
}

fn run_with(program: &str, script: &str, args: &[&str], envs: &[(&str, &str)]) -> (bool, String) {
    let output = Command::new(program)
        .current_dir(interop_dir())
        .arg(script)
        .args(args)
        .envs(envs.iter().copied())
        .output()
        .expect("cannot run an interop script");
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

/// The relying parties that can run here, as (name, program, script).
fn relying_parties() -> Vec<(&'static str, &'static str, &'static str)> {
    available([
        (
            "node openid-client",
            node_has("openid-client"),
            "node",
            "rp_openid_client.mjs",
        ),
        (
            "python authlib",
            python_has("authlib, joserfc, requests"),
            "python3",
            "rp_authlib.py",
        ),
    ])
}

/// The JSON lines a relying-party script printed, by step (the last line of each step).
fn steps(out: &str) -> BTreeMap<String, Value> {
    out.lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter_map(|v| Some((v["step"].as_str()?.to_owned(), v)))
        .collect()
}

/// The step a failed run stopped at: its JSON line (`ok: false`).
fn failure(out: &str) -> Value {
    out.lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .find(|v| v["ok"] == false)
        .unwrap_or(Value::Null)
}

const RP_REDIRECT: &str = "https://rp.example/cb";
const RP_PASSWORD: &str = "interop horse battery staple 7";

async fn openid_client_and_authlib_complete_the_code_flow(backend: Backend) {
    let parties = relying_parties();
    if parties.is_empty() {
        return;
    }
    let Some(node) = spawn(backend).await else { return };
    let email = "rp-user@example.com";
    let user_id = node.create_user(email, RP_PASSWORD).await;
    // A confidential first-party client (client_secret_basic) with
    // https://rp.example/cb/logged-out as its post-logout URI.
    let rp = node
        .create_oidc_client("rp-interop", false, RP_REDIRECT, true, None)
        .await;
    // A service client for the client credentials grant, authenticating with
    // client_secret_post (openid-client's default).
    let (cc_secret, cc_hash) = tessera_idp::clients::new_client_secret();
    let now = tessera_idp::clock::Clock::now(node.clock.as_ref());
    node.state
        .clients
        .create_client(&ClientRecord {
            client_id: "rp-service".to_owned(),
            name: "rp service".to_owned(),
            secret_hash: Some(cc_hash),
            token_endpoint_auth_method: "client_secret_post".to_owned(),
            channel: "service".to_owned(),
            token_endpoint_auth_signing_alg: None,
            jwks: None,
            jwks_uri: None,
            secret_sealed: None,
            request_object_signing_alg: None,
            grant_types: vec!["client_credentials".into()],
            scopes: vec!["api:read".into()],
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
        })
        .await
        .expect("cannot create the client credentials client");
    let rp_secret = rp.secret.clone().unwrap();
    let envs = [
        ("ISSUER", node.url.as_str()),
        ("CLIENT_ID", rp.client_id.as_str()),
        ("CLIENT_SECRET", rp_secret.as_str()),
        ("REDIRECT_URI", RP_REDIRECT),
        ("USERNAME", email),
        ("PASSWORD", RP_PASSWORD),
        ("CC_CLIENT_ID", "rp-service"),
        ("CC_CLIENT_SECRET", cc_secret.as_str()),
    ];

    for (name, program, script) in &parties {
        let (ok, out) = run_with(program, script, &[], &envs);
        assert!(ok, "{name} failed the code flow against Tessera:\n{out}");
        eprintln!("{name}:\n{out}");
        let steps = steps(&out);
        assert_eq!(steps["done"]["ok"], true, "{name}: {out}");
        assert_eq!(steps["discovery"]["issuer"], node.url.as_str(), "{name}");
        assert_eq!(steps["login"]["iss"], node.url.as_str(), "{name}: RFC 9207 iss");
        let claims = match *name {
            "node openid-client" => &steps["authorization_code_grant"]["claims"],
            _ => &steps["id_token"]["claims"],
        };
        assert_eq!(claims["sub"], user_id.as_str(), "{name}");
        assert_eq!(claims["aud"], rp.client_id.as_str(), "{name}");
        assert_eq!(claims["iss"], node.url.as_str(), "{name}");
        assert_eq!(claims["email"], email, "{name}");
        assert!(
            claims["at_hash"].is_string() && claims["sid"].is_string(),
            "{name}: {claims}"
        );
        let userinfo = &steps["userinfo"]["userinfo"];
        assert_eq!(userinfo["sub"], user_id.as_str(), "{name}");
        assert_eq!(userinfo["email"], email, "{name}");
        assert_eq!(userinfo["email_verified"], true, "{name}");
        if *name == "node openid-client" {
            assert_eq!(steps["authorization_code_grant"]["id_token_alg"], "RS256");
            assert_eq!(steps["refresh_token_grant"]["rotated"], true);
            assert_eq!(steps["client_credentials_grant"]["scope"], "api:read");
            assert_eq!(
                steps["client_credentials_grant"]["introspection"]["client_id"],
                "rp-service"
            );
            assert_eq!(steps["revocation"]["active_after"], false);
            // The script checked the state it sent came back; here, where it went.
            let location = steps["end_session"]["location"].as_str().unwrap_or_default();
            assert!(
                location.starts_with(&format!("{RP_REDIRECT}/logged-out?state=")),
                "{location}"
            );
            assert_eq!(steps["end_session"]["access_token_active_after"], false);
            assert_eq!(steps["end_session"]["userinfo_after"]["status"], 401);
            assert_eq!(
                steps["client_credentials_grant"]["active_after_revocation"],
                false
            );
            assert_eq!(steps["prompt_none_after_logout"]["error"], "login_required");
            // max_age=0 seconds after a login is prompt=login: this walk found Tessera
            // answering it with a code (fixed in oidc::must_reauthenticate).
            assert_eq!(steps["max_age_zero"]["login_page"], true);
        } else {
            assert_eq!(steps["id_token"]["alg"], "RS256");
            assert_eq!(steps["refresh"]["rotated"], true);
        }

        // The libraries do validate: a wrong nonce, and a tampered ID token signature,
        // make each raise at the step that checks the ID token; a tampered code makes
        // Tessera answer invalid_grant, which each surfaces as an error.
        let (checking_step, exchange_step) = match *name {
            "node openid-client" => ("authorization_code_grant", "authorization_code_grant"),
            _ => ("id_token", "fetch_token"),
        };
        for (flag, step, mentions) in [
            ("--wrong-nonce", checking_step, "nonce"),
            ("--tamper-id-token", checking_step, "signature"),
            ("--tamper-code", exchange_step, "invalid_grant"),
        ] {
            let (ok, out) = run_with(program, script, &[flag], &envs);
            assert!(!ok, "{name} completed the flow despite {flag}:\n{out}");
            eprintln!("{name} {flag}:\n{out}");
            let failed = failure(&out);
            assert_eq!(failed["step"], step, "{name} {flag} failed elsewhere:\n{out}");
            let error = failed.to_string().to_ascii_lowercase();
            assert!(
                error.contains(mentions),
                "{name} {flag}: not a {mentions} error:\n{out}"
            );
        }
    }
}

/// openid-client asks for `acr_values=urn:tessera:acr:mfa` for a user with an
/// authenticator app (the code from pyotp): password, the factor page, and an ID token the
/// library validated whose `acr`/`amr` show the factor.
async fn openid_client_asking_for_acr_values_gets_the_factor_in_amr(backend: Backend) {
    let Some((_, program, script)) = relying_parties()
        .into_iter()
        .find(|(name, ..)| *name == "node openid-client")
    else {
        return;
    };
    if !crate::mfa::pyotp_available() {
        return;
    }
    let Some(node) = spawn(backend).await else { return };
    let email = crate::mfa::who("rp-acr");
    node.create_user(&email, crate::mfa::PASSWORD).await;
    let (otpauth, _) = crate::mfa::enrol(&node, &email).await;
    let code = crate::mfa::pyotp_code(&otpauth, crate::mfa::now(&node));
    let rp = node
        .create_oidc_client("rp-acr", false, RP_REDIRECT, true, None)
        .await;
    let secret = rp.secret.clone().unwrap();
    let envs = [
        ("ISSUER", node.url.as_str()),
        ("CLIENT_ID", rp.client_id.as_str()),
        ("CLIENT_SECRET", secret.as_str()),
        ("REDIRECT_URI", RP_REDIRECT),
        ("USERNAME", email.as_str()),
        ("PASSWORD", crate::mfa::PASSWORD),
        ("CC_CLIENT_ID", "unused"),
        ("CC_CLIENT_SECRET", "unused"),
        ("MFA_CODE", code.as_str()),
    ];
    let (ok, out) = run_with(program, script, &["--acr-mfa"], &envs);
    assert!(ok, "openid-client could not step up:\n{out}");
    let steps = steps(&out);
    assert_eq!(steps["acr_values"]["acr"], "urn:tessera:acr:mfa", "{out}");
    assert_eq!(
        steps["acr_values"]["amr"],
        serde_json::json!(["pwd", "otp", "mfa"]),
        "{out}"
    );
}

/// openid-client with the claims request parameter (OIDC Core §5.5): `email` and `name`
/// asked for in the ID token, which the library validates; `name` is the user's profile
/// claim, outside the granted scope (`openid email`), so it stays out.
async fn openid_client_asking_with_the_claims_parameter_gets_them_in_the_id_token(backend: Backend) {
    let Some((_, program, script)) = relying_parties()
        .into_iter()
        .find(|(name, ..)| *name == "node openid-client")
    else {
        return;
    };
    let Some(node) = spawn(backend).await else { return };
    let email = format!("rp-claims-{}@example.com", tessera_testkit::random_u64());
    let user_id = node.create_user(&email, RP_PASSWORD).await;
    // A name, which the ID token must not carry: `profile` is not granted.
    let patch = serde_json::json!({ "name": "RP Claims" });
    let patch = tessera_idp::accounts::profile::ProfilePatch::parse(
        patch.as_object().unwrap(),
        tessera_idp::accounts::profile::Editor::Operator,
    )
    .unwrap();
    node.state
        .accounts
        .update_profile(&user_id, &patch, "operator", &Default::default())
        .await
        .unwrap();
    let rp = node
        .create_oidc_client("rp-claims", false, RP_REDIRECT, true, None)
        .await;
    let secret = rp.secret.clone().unwrap();
    let envs = [
        ("ISSUER", node.url.as_str()),
        ("CLIENT_ID", rp.client_id.as_str()),
        ("CLIENT_SECRET", secret.as_str()),
        ("REDIRECT_URI", RP_REDIRECT),
        ("USERNAME", email.as_str()),
        ("PASSWORD", RP_PASSWORD),
        ("CC_CLIENT_ID", "unused"),
        ("CC_CLIENT_SECRET", "unused"),
    ];
    let (ok, out) = run_with(program, script, &["--claims"], &envs);
    assert!(ok, "openid-client failed with the claims parameter:\n{out}");
    let steps = steps(&out);
    let id_token = &steps["claims"]["id_token"];
    assert_eq!(id_token["sub"], user_id.as_str(), "{out}");
    assert_eq!(id_token["email"], email.as_str(), "{out}");
    assert!(id_token.get("name").is_none(), "{out}");
    assert_eq!(steps["claims"]["userinfo"]["email"], email.as_str(), "{out}");
}

/// openid-client's device flow (RFC 8628): the library starts it and polls while the
/// script's browser approves on `/device`; with `--nudge` one poll of the script's own makes
/// the library's first poll too early, so it must honour `slow_down` (+5 s) to finish; with
/// `--deny` the library raises `access_denied`.
async fn openid_client_completes_the_device_flow_approved_on_the_hosted_page(backend: Backend) {
    let found = available([(
        "node openid-client",
        node_has("openid-client"),
        "node",
        "rp_device_openid_client.mjs",
    )]);
    let Some((name, program, script)) = found.into_iter().next() else {
        return;
    };
    let Some(node) = spawn_with(backend, |c| c.device.poll_interval_secs = 1).await else {
        return;
    };
    let email = "rp-device@example.com";
    let user_id = node.create_user(email, RP_PASSWORD).await;
    let now = tessera_idp::clock::Clock::now(node.clock.as_ref());
    node.state
        .clients
        .create_client(&ClientRecord {
            client_id: "rp-tv".to_owned(),
            name: "rp TV".to_owned(),
            secret_hash: None,
            token_endpoint_auth_method: "none".to_owned(),
            channel: "web".to_owned(),
            token_endpoint_auth_signing_alg: None,
            jwks: None,
            jwks_uri: None,
            secret_sealed: None,
            request_object_signing_alg: None,
            grant_types: vec![
                "urn:ietf:params:oauth:grant-type:device_code".into(),
                "refresh_token".into(),
            ],
            scopes: vec!["openid".into(), "email".into()],
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
        })
        .await
        .expect("cannot create the device client");
    let envs = [
        ("ISSUER", node.url.as_str()),
        ("CLIENT_ID", "rp-tv"),
        ("USERNAME", email),
        ("PASSWORD", RP_PASSWORD),
    ];

    let (ok, out) = run_with(program, script, &[], &envs);
    assert!(ok, "{name} failed the device flow against Tessera:\n{out}");
    eprintln!("{name}:\n{out}");
    let walked = steps(&out);
    assert_eq!(
        walked["discovery"]["device_authorization_endpoint"],
        node.at("/oauth2/device_authorization").as_str()
    );
    assert_eq!(walked["device_authorization"]["interval"], 1);
    assert_eq!(walked["approve"]["page"], "connected");
    let claims = &walked["poll"]["claims"];
    assert_eq!(claims["sub"], user_id.as_str(), "{out}");
    assert_eq!(claims["iss"], node.url.as_str());
    assert_eq!(claims["email"], email);
    assert_eq!(walked["poll"]["has_refresh_token"], true);
    assert_eq!(walked["userinfo"]["userinfo"]["sub"], user_id.as_str());
    assert_eq!(walked["userinfo"]["userinfo"]["email"], email);

    // slow_down: the library's first poll comes a quarter second after the script's, is
    // told to slow down, and succeeds only because it then waits 1 + 5 s.
    let (ok, out) = run_with(program, script, &["--nudge"], &envs);
    assert!(ok, "{name} did not recover from slow_down:\n{out}");
    eprintln!("{name} --nudge:\n{out}");
    let waited = steps(&out)["poll"]["waited_ms"].as_i64().unwrap_or_default();
    assert!(
        waited >= 6000,
        "the library polled again before 1 + 5 s: {waited} ms\n{out}"
    );

    // Denied: the library raises access_denied from the poll.
    let (ok, out) = run_with(program, script, &["--deny"], &envs);
    assert!(!ok, "{name} got tokens the user denied:\n{out}");
    eprintln!("{name} --deny:\n{out}");
    let failed = failure(&out);
    assert_eq!(failed["step"], "poll", "{out}");
    assert_eq!(failed["oauth_error"], "access_denied", "{out}");
}

/// openid-client's `buildAuthorizationUrlWithPAR` pushes the request (client_secret_basic)
/// to a client that requires PAR; the browser carries only client_id and request_uri; the
/// library validates the callback and the ID token; the used request_uri is refused after.
async fn openid_client_completes_a_code_flow_through_pushed_authorization_requests(backend: Backend) {
    let found = available([(
        "node openid-client",
        node_has("openid-client"),
        "node",
        "rp_par_openid_client.mjs",
    )]);
    let Some((name, program, script)) = found.into_iter().next() else {
        return;
    };
    let Some(node) = spawn(backend).await else { return };
    let email = "rp-par@example.com";
    let user_id = node.create_user(email, RP_PASSWORD).await;
    let rp = node
        .create_oidc_client("rp-par", false, RP_REDIRECT, true, None)
        .await;
    let mut record = node.state.clients.client("rp-par").await.unwrap().unwrap();
    record.require_pushed_authorization_requests = true;
    node.state.clients.update_client(&record).await.unwrap();
    let secret = rp.secret.clone().unwrap();
    let envs = [
        ("ISSUER", node.url.as_str()),
        ("CLIENT_ID", "rp-par"),
        ("CLIENT_SECRET", secret.as_str()),
        ("REDIRECT_URI", RP_REDIRECT),
        ("USERNAME", email),
        ("PASSWORD", RP_PASSWORD),
    ];
    let (ok, out) = run_with(program, script, &[], &envs);
    assert!(ok, "{name} failed the PAR code flow against Tessera:\n{out}");
    eprintln!("{name}:\n{out}");
    let walked = steps(&out);
    assert_eq!(
        walked["discovery"]["pushed_authorization_request_endpoint"],
        node.at("/oauth2/par").as_str()
    );
    assert_eq!(
        walked["discovery"]["require_pushed_authorization_requests"],
        false
    );
    assert_eq!(walked["login"]["iss"], node.url.as_str());
    let claims = &walked["authorization_code_grant"]["claims"];
    assert_eq!(claims["sub"], user_id.as_str(), "{out}");
    assert_eq!(claims["aud"], "rp-par");
    assert_eq!(walked["authorization_code_grant"]["scope"], "openid email");
    assert_eq!(walked["replay"]["used"], true, "{out}");
}

/// A P-256 key pair for a `private_key_jwt` client: PKCS#8 DER (base64) and PEM of the
/// private key, and the public JWK with `kid`.
fn client_key(kid: &str) -> (String, String, Value) {
    use aws_lc_rs::signature::{EcdsaKeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};
    use base64::Engine as _;
    let doc = EcdsaKeyPair::generate_pkcs8(
        &ECDSA_P256_SHA256_FIXED_SIGNING,
        &aws_lc_rs::rand::SystemRandom::new(),
    )
    .unwrap();
    let der = base64::engine::general_purpose::STANDARD.encode(doc.as_ref());
    let lines: Vec<String> = der
        .as_bytes()
        .chunks(64)
        .map(|line| String::from_utf8_lossy(line).into_owned())
        .collect();
    let pem = format!(
        "-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n",
        lines.join("\n")
    );
    let encoding = jsonwebtoken::EncodingKey::from_ec_der(doc.as_ref());
    let mut public =
        jsonwebtoken::jwk::Jwk::from_encoding_key(&encoding, jsonwebtoken::Algorithm::ES256).unwrap();
    public.common.key_id = Some(kid.to_owned());
    (der, pem, serde_json::to_value(public).unwrap())
}

async fn openid_client_authlib_and_jwcrypto_authenticate_with_jwt_assertions(backend: Backend) {
    let tools = available([
        (
            "node openid-client",
            node_has("openid-client"),
            "node",
            "client_auth_openid_client.mjs",
        ),
        (
            "python authlib",
            python_has("authlib, requests"),
            "python3",
            "client_auth_authlib.py",
        ),
        (
            "python jwcrypto",
            python_has("jwcrypto, requests"),
            "python3",
            "client_auth_jwcrypto.py",
        ),
    ]);
    if tools.is_empty() {
        return;
    }
    let Some(node) = spawn(backend).await else { return };
    let registry = tessera_idp::registry::ClientRegistry::new(&node.state);
    let (der, pem, public) = client_key("interop-key");
    let (other_der, other_pem, _) = client_key("interop-key");
    let spec = serde_json::json!({
        "client_id": "jwt-service",
        "client_name": "JWT service",
        "token_endpoint_auth_method": "private_key_jwt",
        "grant_types": ["client_credentials"],
        "jwks": {"keys": [public.clone()]},
    });
    registry
        .create(serde_json::from_value(spec).unwrap())
        .await
        .unwrap();
    let spec = serde_json::json!({
        "client_id": "hmac-service",
        "client_name": "HMAC service",
        "token_endpoint_auth_method": "client_secret_jwt",
        "grant_types": ["client_credentials"],
    });
    let (_, hmac_secret) = registry
        .create(serde_json::from_value(spec).unwrap())
        .await
        .unwrap();
    let hmac_secret = hmac_secret.unwrap();
    let spec = serde_json::json!({
        "client_id": "ro-client",
        "client_name": "Request objects",
        "redirect_uris": [RP_REDIRECT],
        "request_object_signing_alg": "ES256",
        "jwks": {"keys": [public]},
    });
    registry
        .create(serde_json::from_value(spec).unwrap())
        .await
        .unwrap();
    let token_endpoint = node.at("/oauth2/token");
    let envs = [
        ("ISSUER", node.url.as_str()),
        ("TOKEN_ENDPOINT", token_endpoint.as_str()),
        ("CLIENT_ID", "jwt-service"),
        ("KEY_CLIENT_ID", "jwt-service"),
        ("CLIENT_KEY", der.as_str()),
        ("OTHER_KEY", other_der.as_str()),
        ("CLIENT_KID", "interop-key"),
        ("KEY_KID", "interop-key"),
        ("KEY_PEM", pem.as_str()),
        ("OTHER_PEM", other_pem.as_str()),
        ("HMAC_CLIENT_ID", "hmac-service"),
        ("HMAC_SECRET", hmac_secret.as_str()),
        ("RO_CLIENT_ID", "ro-client"),
        ("REDIRECT_URI", RP_REDIRECT),
    ];
    for (name, program, script) in tools {
        let (ok, out) = run_with(program, script, &[], &envs);
        assert!(
            ok,
            "{name} failed JWT client authentication against Tessera:\n{out}"
        );
        eprintln!("{name}:\n{out}");
        let walked = steps(&out);
        match script {
            "client_auth_openid_client.mjs" => {
                assert_eq!(walked["introspection"]["active_after"], false);
                assert_eq!(walked["unregistered_key"]["error"], "invalid_client");
            }
            "client_auth_authlib.py" => {
                assert_eq!(walked["private_key_jwt"]["token_type"], "Bearer");
                assert_eq!(walked["client_secret_jwt"]["token_type"], "Bearer");
                assert_eq!(walked["unregistered_key"]["error"], "invalid_client");
            }
            _ => {
                assert_eq!(walked["accepted"]["status"], 200);
                for refused in [
                    "replayed",
                    "alg_none",
                    "hs256_with_public_key",
                    "wrong_audience",
                    "two_hours",
                ] {
                    assert_eq!(walked[refused]["status"], 401, "{refused}");
                }
                assert_eq!(walked["request_object"]["status"], 200);
                assert_eq!(walked["request_object_tampered"]["status"], 302);
                assert_eq!(walked["request_object_unsigned"]["status"], 302);
            }
        }
    }
}

/// openid-client's DPoP support (RFC 9449) for a public client: `dpop_jkt` on the
/// authorization URL, proofs at the token endpoint, userinfo with `Authorization: DPoP`, a
/// refresh of the bound refresh token; the bound token as Bearer is refused.
async fn openid_client_binds_its_tokens_to_a_dpop_key_through_refresh_and_userinfo(backend: Backend) {
    let found = available([(
        "node openid-client",
        node_has("openid-client") && node_has("jose"),
        "node",
        "rp_dpop_openid_client.mjs",
    )]);
    let Some((name, program, script)) = found.into_iter().next() else {
        return;
    };
    let Some(node) = spawn(backend).await else { return };
    let email = format!("rp-dpop-{}@example.com", tessera_testkit::random_u64());
    let user_id = node.create_user(&email, RP_PASSWORD).await;
    node.create_oidc_client("rp-dpop", true, RP_REDIRECT, true, None)
        .await;
    let envs = [
        ("ISSUER", node.url.as_str()),
        ("CLIENT_ID", "rp-dpop"),
        ("REDIRECT_URI", RP_REDIRECT),
        ("USERNAME", email.as_str()),
        ("PASSWORD", RP_PASSWORD),
    ];
    let (ok, out) = run_with(program, script, &[], &envs);
    assert!(ok, "{name} failed the DPoP code flow against Tessera:\n{out}");
    eprintln!("{name}:\n{out}");
    let walked = steps(&out);
    assert!(walked["discovery"]["dpop_signing_alg_values_supported"]
        .as_array()
        .is_some_and(|algs| algs.iter().any(|a| a == "ES256")));
    let jkt = walked["key"]["jkt"].as_str().unwrap();
    assert_eq!(walked["authorization_code_grant"]["cnf"]["jkt"], jkt);
    assert_eq!(walked["authorization_code_grant"]["sub"], user_id.as_str());
    assert_eq!(walked["userinfo"]["email"], email.as_str());
    // openid-client normalises token_type to lower case.
    for step in ["authorization_code_grant", "refresh_token_grant"] {
        assert_eq!(walked[step]["token_type"], "dpop", "{out}");
    }
    assert_eq!(walked["bearer_refused"]["status"], 401);
}

/// Proofs built with Python jwcrypto (RS256, PS256, ES256, EdDSA keys) bind client
/// credentials tokens to jwcrypto's own RFC 7638 thumbprint; a replay, a jwk with the
/// private key, another URI and HS256 are refused.
async fn jwcrypto_proofs_bind_client_credentials_tokens_and_bad_ones_are_refused(backend: Backend) {
    let found = available([(
        "python jwcrypto",
        python_has("jwcrypto, requests"),
        "python3",
        "dpop_jwcrypto.py",
    )]);
    let Some((name, program, script)) = found.into_iter().next() else {
        return;
    };
    let Some(node) = spawn(backend).await else { return };
    let (client, _) = node
        .admin_token(&format!("dpop-py-{}", tessera_testkit::random_u64()))
        .await;
    let secret = client.secret.clone().unwrap();
    let envs = [
        ("ISSUER", node.url.as_str()),
        ("CLIENT_ID", client.client_id.as_str()),
        ("CLIENT_SECRET", secret.as_str()),
    ];
    let (ok, out) = run_with(program, script, &[], &envs);
    assert!(ok, "{name} proofs against Tessera failed:\n{out}");
    eprintln!("{name}:\n{out}");
    let walked = steps(&out);
    for step in [
        "bound_RS256",
        "bound_PS256",
        "bound_ES256",
        "bound_EdDSA",
        "replayed",
        "private_key_in_jwk",
        "another_uri",
        "hs256",
        "done",
    ] {
        assert_eq!(walked[step]["ok"], true, "{step}: {out}");
    }
}
