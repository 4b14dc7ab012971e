//! The registry rules, case by case.

use super::*;
use crate::registry::{ClientPatch, ClientView};

fn channels() -> Vec<String> {
    ["web", "mobile", "partner"]
        .iter()
        .map(|s| s.to_string())
        .collect()
}

fn web_app() -> ClientSpec {
    ClientSpec {
        client_name: Some("Web app".into()),
        redirect_uris: vec!["https://app.example/cb".into()],
        ..ClientSpec::default()
    }
}

fn field_of(result: Result<ValidClient, RegistryError>) -> &'static str {
    match result {
        Err(RegistryError::Invalid { field, .. }) => field,
        other => panic!("expected an invalid field, got {other:?}"),
    }
}

fn with_redirect(uri: &str) -> ClientSpec {
    ClientSpec {
        redirect_uris: vec![uri.into()],
        ..web_app()
    }
}

#[test]
fn a_minimal_web_app_gets_the_defaults() {
    let valid = validate(&web_app(), &channels()).unwrap();
    assert_eq!(valid.name, "Web app");
    assert!(!valid.public);
    assert_eq!(valid.token_endpoint_auth_method, "client_secret_basic");
    assert_eq!(valid.grant_types, ["authorization_code"]);
    assert_eq!(valid.scopes, ["openid"]);
    assert_eq!(valid.channel, "web");
    assert!(!valid.first_party);
}

#[test]
fn redirect_uris_must_be_https_loopback_http_or_a_private_use_scheme() {
    for good in [
        "https://app.example/cb",
        "https://app.example:8443/cb?x=1",
        "http://127.0.0.1:4000/cb",
        "http://[::1]/cb",
        "http://localhost:3000/callback",
        "com.example.app:/oauth2redirect",
        "com.example.app://cb",
    ] {
        assert!(
            validate(&with_redirect(good), &channels()).is_ok(),
            "{good} was refused"
        );
    }
    for bad in [
        "http://app.example/cb",
        "http://127.0.0.2/cb",
        "https://app.example/cb#frag",
        "https://*.example.com/cb",
        "https://app.example/*",
        "/cb",
        "app.example/cb",
        "https:app.example/cb",
        "myapp:/cb",
        "javascript:alert(1)",
        "data:text/html,hi",
        "https://user:pw@app.example/cb",
        " https://app.example/cb",
        "",
    ] {
        assert_eq!(
            field_of(validate(&with_redirect(bad), &channels())),
            "redirect_uris",
            "{bad} was accepted"
        );
    }
}

#[test]
fn refusals_name_the_value_and_the_rule() {
    let Err(err) = validate(&with_redirect("http://evil.example/cb"), &channels()) else {
        panic!()
    };
    let text = err.to_string();
    assert!(text.starts_with("invalid redirect_uris:"), "{text}");
    assert!(
        text.contains("http://evil.example/cb") && text.contains("loopback"),
        "{text}"
    );
}

#[test]
fn post_logout_uris_follow_the_redirect_rules() {
    let spec = ClientSpec {
        post_logout_redirect_uris: vec!["https://app.example/bye#x".into()],
        ..web_app()
    };
    assert_eq!(
        field_of(validate(&spec, &channels())),
        "post_logout_redirect_uris"
    );
    let spec = ClientSpec {
        post_logout_redirect_uris: vec!["http://localhost/bye".into()],
        ..web_app()
    };
    assert!(validate(&spec, &channels()).is_ok());
}

#[test]
fn backchannel_logout_is_https_or_loopback_http() {
    let with = |uri: &str| ClientSpec {
        backchannel_logout_uri: Some(uri.into()),
        ..web_app()
    };
    assert!(validate(&with("https://app.example/logout"), &channels()).is_ok());
    assert!(validate(&with("http://127.0.0.1:9000/logout"), &channels()).is_ok());
    for bad in [
        "http://app.example/logout",
        "com.example.app:/logout",
        "https://app.example/l#f",
        "logout",
    ] {
        assert_eq!(
            field_of(validate(&with(bad), &channels())),
            "backchannel_logout_uri",
            "{bad}"
        );
    }
}

#[test]
fn cors_entries_are_origins_stored_as_browsers_send_them() {
    let with = |origin: &str| ClientSpec {
        allowed_cors_origins: vec![origin.into()],
        ..web_app()
    };
    let valid = validate(&with("https://App.Example:443/"), &channels()).unwrap();
    assert_eq!(valid.allowed_cors_origins, ["https://app.example"]);
    let valid = validate(&with("http://localhost:3000"), &channels()).unwrap();
    assert_eq!(valid.allowed_cors_origins, ["http://localhost:3000"]);
    for bad in [
        "*",
        "https://*.example.com",
        "https://app.example/path",
        "https://app.example?x=1",
        "http://app.example",
        "app.example",
        "ftp://app.example",
    ] {
        assert_eq!(
            field_of(validate(&with(bad), &channels())),
            "allowed_cors_origins",
            "{bad}"
        );
    }
}

#[test]
fn grant_types_are_known_and_the_password_grant_is_first_party_only() {
    let with = |grants: &[&str], first_party: bool| ClientSpec {
        grant_types: Some(grants.iter().map(|g| g.to_string()).collect()),
        first_party,
        ..web_app()
    };
    assert_eq!(
        field_of(validate(&with(&["implicit"], false), &channels())),
        "grant_types"
    );
    assert_eq!(
        field_of(validate(&with(&["device_code"], false), &channels())),
        "grant_types"
    );
    assert_eq!(field_of(validate(&with(&[], false), &channels())), "grant_types");
    assert_eq!(
        field_of(validate(&with(&["password"], false), &channels())),
        "grant_types"
    );
    let valid = validate(
        &with(&["password", "refresh_token", "password"], true),
        &channels(),
    )
    .unwrap();
    assert_eq!(valid.grant_types, ["password", "refresh_token"]);
}

#[test]
fn the_authorization_code_grant_needs_a_redirect_uri() {
    let spec = ClientSpec {
        redirect_uris: vec![],
        ..web_app()
    };
    assert_eq!(field_of(validate(&spec, &channels())), "redirect_uris");
    let service = ClientSpec {
        client_name: Some("Batch job".into()),
        grant_types: Some(vec!["client_credentials".into()]),
        ..ClientSpec::default()
    };
    assert!(validate(&service, &channels()).is_ok());
}

#[test]
fn public_clients_authenticate_with_none_and_never_use_client_credentials() {
    let public = ClientSpec {
        public: true,
        ..web_app()
    };
    let valid = validate(&public, &channels()).unwrap();
    assert!(valid.public);
    assert_eq!(valid.token_endpoint_auth_method, "none");
    // `none` alone makes a client public (RFC 7591).
    let by_method = ClientSpec {
        token_endpoint_auth_method: Some("none".into()),
        ..web_app()
    };
    assert!(validate(&by_method, &channels()).unwrap().public);
    let with_secret_method = ClientSpec {
        token_endpoint_auth_method: Some("client_secret_post".into()),
        ..public.clone()
    };
    assert_eq!(
        field_of(validate(&with_secret_method, &channels())),
        "token_endpoint_auth_method"
    );
    let machine = ClientSpec {
        grant_types: Some(vec!["client_credentials".into()]),
        ..public
    };
    assert_eq!(field_of(validate(&machine, &channels())), "grant_types");
}

#[test]
fn device_clients_need_no_redirect_uri_and_may_be_public() {
    let tv = ClientSpec {
        client_name: Some("Living-room TV".into()),
        public: true,
        grant_types: Some(vec![
            tessera_proto::DEVICE_CODE_GRANT.into(),
            "refresh_token".into(),
        ]),
        ..ClientSpec::default()
    };
    let valid = validate(&tv, &channels()).unwrap();
    assert_eq!(
        valid.grant_types,
        [tessera_proto::DEVICE_CODE_GRANT, "refresh_token"]
    );
    // Only the registered URN: a shortened name is not a grant type.
    let short = ClientSpec {
        grant_types: Some(vec!["device_code".into()]),
        ..tv
    };
    assert_eq!(field_of(validate(&short, &channels())), "grant_types");
}

#[test]
fn confidential_clients_use_basic_or_post() {
    let with = |method: &str| ClientSpec {
        token_endpoint_auth_method: Some(method.into()),
        ..web_app()
    };
    assert_eq!(
        validate(&with("client_secret_post"), &channels())
            .unwrap()
            .token_endpoint_auth_method,
        "client_secret_post"
    );
    assert_eq!(
        field_of(validate(&with("private_key_jwt"), &channels())),
        "jwks_uri",
        "private_key_jwt without keys"
    );
    assert_eq!(
        field_of(validate(&with("basic"), &channels())),
        "token_endpoint_auth_method"
    );
}

fn ec_key() -> serde_json::Value {
    serde_json::json!({
        "kty": "EC", "crv": "P-256", "kid": "k1", "use": "sig",
        "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU",
        "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"
    })
}

fn key_client(jwks: Option<serde_json::Value>, jwks_uri: Option<&str>) -> ClientSpec {
    ClientSpec {
        token_endpoint_auth_method: Some("private_key_jwt".into()),
        jwks,
        jwks_uri: jwks_uri.map(str::to_owned),
        ..web_app()
    }
}

#[test]
fn private_key_jwt_clients_register_public_signature_keys_inline_or_by_https_url() {
    let valid = validate(
        &key_client(Some(serde_json::json!({"keys": [ec_key()]})), None),
        &channels(),
    )
    .unwrap();
    assert_eq!(valid.token_endpoint_auth_method, "private_key_jwt");
    assert!(valid.jwks.as_deref().unwrap().contains("\"kid\":\"k1\""));
    let valid = validate(&key_client(None, Some("https://app.example/jwks")), &channels()).unwrap();
    assert_eq!(valid.jwks_uri.as_deref(), Some("https://app.example/jwks"));
    assert!(validate(&key_client(None, Some("http://127.0.0.1:9000/jwks")), &channels()).is_ok());

    let mut private = ec_key();
    private["d"] = "jpsQnnGQmL-YBIffH1136cspYG6-0iY7X1fCE9-E9LI".into();
    let mut encryption = ec_key();
    encryption["use"] = "enc".into();
    let mut twice = vec![ec_key(), ec_key()];
    twice[1]["x"] = ec_key()["x"].clone();
    for (bad, why) in [
        (serde_json::json!({"keys": []}), "empty"),
        (serde_json::json!([ec_key()]), "not an object"),
        (serde_json::json!({"keys": [private]}), "private key"),
        (
            serde_json::json!({"keys": [{"kty": "oct", "k": "c2VjcmV0"}]}),
            "symmetric",
        ),
        (serde_json::json!({"keys": [encryption]}), "encryption key"),
        (serde_json::json!({"keys": twice}), "duplicate kid"),
        (
            serde_json::json!({"keys": [{"kty": "EC", "crv": "P-256", "x": "AA", "y": "AA"}]}),
            "not a point",
        ),
        (serde_json::json!({"keys": vec![ec_key(); 21]}), "too many"),
    ] {
        assert_eq!(
            field_of(validate(&key_client(Some(bad), None), &channels())),
            "jwks",
            "{why}"
        );
    }
    assert_eq!(
        field_of(validate(
            &key_client(
                Some(serde_json::json!({"keys": [ec_key()]})),
                Some("https://a.example/j")
            ),
            &channels()
        )),
        "jwks"
    );
    for bad in [
        "http://app.example/jwks",
        "https://app.example/jwks#f",
        "file:///etc/passwd",
    ] {
        assert_eq!(
            field_of(validate(&key_client(None, Some(bad)), &channels())),
            "jwks_uri",
            "{bad}"
        );
    }
    // Keys are for private_key_jwt only.
    let spec = ClientSpec {
        jwks_uri: Some("https://app.example/jwks".into()),
        ..web_app()
    };
    assert_eq!(field_of(validate(&spec, &channels())), "jwks_uri");
}

#[test]
fn request_object_algorithms_need_the_matching_credential() {
    let with = |method: Option<&str>, alg: &str, jwks_uri: Option<&str>| ClientSpec {
        token_endpoint_auth_method: method.map(str::to_owned),
        request_object_signing_alg: Some(alg.into()),
        jwks_uri: jwks_uri.map(str::to_owned),
        ..web_app()
    };
    let valid = validate(&with(None, "none", None), &channels()).unwrap();
    assert_eq!(valid.request_object_signing_alg.as_deref(), Some("none"));
    // A secret client with an asymmetric request algorithm registers keys for it.
    let valid = validate(
        &with(None, "ES256", Some("https://app.example/jwks")),
        &channels(),
    )
    .unwrap();
    assert_eq!(valid.jwks_uri.as_deref(), Some("https://app.example/jwks"));
    assert_eq!(
        field_of(validate(&with(None, "ES256", None), &channels())),
        "jwks_uri"
    );
    assert!(validate(&with(Some("client_secret_jwt"), "HS256", None), &channels()).is_ok());
    for (method, alg) in [
        (None, "HS256"),
        (Some("client_secret_post"), "HS512"),
        (None, "RSA-OAEP"),
        (None, "None"),
    ] {
        assert_eq!(
            field_of(validate(&with(method, alg, None), &channels())),
            "request_object_signing_alg",
            "{method:?} {alg}"
        );
    }
}

#[test]
fn assertion_algorithms_fit_the_method() {
    let with = |method: &str, alg: &str| ClientSpec {
        token_endpoint_auth_method: Some(method.into()),
        token_endpoint_auth_signing_alg: Some(alg.into()),
        jwks_uri: (method == "private_key_jwt").then(|| "https://app.example/jwks".to_owned()),
        ..web_app()
    };
    assert!(validate(&with("private_key_jwt", "ES256"), &channels()).is_ok());
    assert!(validate(&with("client_secret_jwt", "HS512"), &channels()).is_ok());
    for (method, alg) in [
        ("private_key_jwt", "HS256"),
        ("private_key_jwt", "none"),
        ("client_secret_jwt", "RS256"),
        ("client_secret_jwt", "none"),
        ("client_secret_basic", "HS256"),
    ] {
        assert_eq!(
            field_of(validate(&with(method, alg), &channels())),
            "token_endpoint_auth_signing_alg",
            "{method} {alg}"
        );
    }
}

#[test]
fn scopes_are_tokens_and_ttls_positive_and_channels_configured() {
    let valid = validate(
        &ClientSpec {
            scope: Some("openid  profile email openid tessera:admin".into()),
            ..web_app()
        },
        &channels(),
    )
    .unwrap();
    assert_eq!(valid.scopes, ["openid", "profile", "email", "tessera:admin"]);
    for bad in ["openid \"quoted\"", "back\\slash", "tab\tseparated", "é"] {
        let spec = ClientSpec {
            scope: Some(bad.into()),
            ..web_app()
        };
        assert_eq!(field_of(validate(&spec, &channels())), "scope", "{bad}");
    }
    for ttl in [0, -5, MAX_TTL_SECS + 1] {
        let spec = ClientSpec {
            access_token_ttl_secs: Some(ttl),
            ..web_app()
        };
        assert_eq!(field_of(validate(&spec, &channels())), "access_token_ttl_secs");
        let spec = ClientSpec {
            refresh_token_ttl_secs: Some(ttl),
            mfa_policy: None,
            ..web_app()
        };
        assert_eq!(field_of(validate(&spec, &channels())), "refresh_token_ttl_secs");
    }
    let spec = ClientSpec {
        channel: Some("kiosk".into()),
        ..web_app()
    };
    assert_eq!(field_of(validate(&spec, &channels())), "channel");
    let spec = ClientSpec {
        channel: Some("partner".into()),
        ..web_app()
    };
    assert_eq!(validate(&spec, &channels()).unwrap().channel, "partner");
}

#[test]
fn names_and_ids_are_checked() {
    let spec = ClientSpec {
        client_name: Some("   ".into()),
        ..web_app()
    };
    assert_eq!(field_of(validate(&spec, &channels())), "client_name");
    for bad in ["", "has space", "a:b", "ünï", &"x".repeat(129)] {
        let spec = ClientSpec {
            client_id: Some(bad.to_owned()),
            ..web_app()
        };
        assert_eq!(field_of(validate(&spec, &channels())), "client_id", "{bad}");
    }
}

#[test]
fn generated_ids_are_readable_and_distinct() {
    let a = generated_client_id("Billing Portal (EU)!");
    let b = generated_client_id("Billing Portal (EU)!");
    assert!(a.starts_with("billing-portal-eu-"), "{a}");
    assert_eq!(a.len(), "billing-portal-eu-".len() + 8, "{a}");
    assert_ne!(a, b);
    assert!(generated_client_id("日本").starts_with("client-"));
    assert!(check_client_id(&generated_client_id(&"long name ".repeat(20))).is_ok());
}

#[test]
fn specs_and_patches_parse_from_json_and_refuse_unknown_fields() {
    let spec: ClientSpec =
        serde_json::from_str(r#"{"client_name":"x","redirect_uris":["https://a.example/cb"]}"#).unwrap();
    assert!(validate(&spec, &channels()).is_ok());
    assert!(serde_json::from_str::<ClientSpec>(r#"{"client_name":"x","redirect_uri":"y"}"#).is_err());
    let patch: ClientPatch =
        serde_json::from_str(r#"{"backchannel_logout_uri":null,"access_token_ttl_secs":60}"#).unwrap();
    assert_eq!(patch.backchannel_logout_uri, Some(None));
    assert_eq!(patch.access_token_ttl_secs, Some(Some(60)));
    assert_eq!(patch.refresh_token_ttl_secs, None);
    assert_eq!(
        patch.changed_fields(),
        ["backchannel_logout_uri", "access_token_ttl_secs"]
    );
}

#[test]
fn the_view_never_shows_the_hash() {
    let record = validate(&web_app(), &channels()).unwrap().into_record(
        "web-app".into(),
        Some("HASH-VALUE".into()),
        1,
    );
    let view = ClientView::from(&record);
    let shown = serde_json::to_string(&view.with_secret(None)).unwrap();
    assert!(
        !shown.contains("HASH-VALUE") && !shown.contains("client_secret\""),
        "{shown}"
    );
    // Fields in the view's order, the id first.
    assert!(
        shown.starts_with("{\"client_id\":\"web-app\",\"client_name\""),
        "{shown}"
    );
    let names: Vec<&str> = view.fields().iter().map(|(name, _)| *name).collect();
    let serialized = serde_json::to_value(&view).unwrap();
    assert_eq!(names.len(), serialized.as_object().unwrap().len());
    assert!(names.iter().all(|n| serialized.get(*n).is_some()));
    let shown = serde_json::to_value(view.with_secret(Some("tcs_secret"))).unwrap();
    assert_eq!(shown["client_secret"], "tcs_secret");
    assert_eq!(shown["client_secret_expires_at"], 0);
    assert_eq!(shown["scope"], "openid");
}
