use tessera_config::check;

use super::*;

const MINIMAL: &str = r#"
issuer = "https://id.example.com"

[[routes]]
path_prefix = "/orders"
upstreams = ["http://127.0.0.1:9001"]
"#;

fn parse(text: &str) -> Result<GatewayConfig, ConfigError> {
    GatewayConfig::parse(text, Some("gateway.toml"), Vec::new())
}

fn error(text: &str) -> String {
    let err = parse(text).unwrap_err().to_string();
    assert!(!err.contains('\n'), "not one line: {err}");
    err
}

fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn a_minimal_file_gets_the_defaults() {
    let config = parse(MINIMAL).unwrap();
    assert_eq!(config.listen.to_string(), "127.0.0.1:8000");
    assert_eq!(config.issuer(), "https://id.example.com");
    assert_eq!(config.audience(), "https://id.example.com");
    assert_eq!(config.revocation_poll_secs, 5);
    assert_eq!(config.leeway_secs, 30);
    assert!(config.auth_cache.enabled);
    let route = &config.routes[0];
    assert!(!route.public);
    assert_eq!(route.timeout_secs, 30);
    assert_eq!(route.unhealthy_secs, 10);
    assert!(route.auth_cache);
    assert!(!route.strip_prefix);
    assert_eq!(route.display_name(), "/orders");
}

#[test]
fn unknown_keys_are_named_even_inside_routes() {
    let err = error(&format!("{MINIMAL}lissten = 1\n"));
    assert!(err.contains("lissten"), "{err}");
    let err = error(&format!("{MINIMAL}upstream = [\"http://x\"]\n"));
    assert!(err.contains("routes[0]") && err.contains("upstream"), "{err}");
    let err = error(&format!(
        "{MINIMAL}rate_limit = {{ per_ip = 1, per_second = 2 }}\n"
    ));
    assert!(err.contains("routes[0]") && err.contains("per_second"), "{err}");
    let err = error(&format!("{MINIMAL}cors = {{ allow_origin = [\"https://a\"] }}\n"));
    assert!(err.contains("allow_origin"), "{err}");
    let err = error("issuer = \"https://id\"\n[auth_cache]\nsize = 3\n");
    assert!(err.contains("size"), "{err}");
}

#[test]
fn invalid_values_name_the_key() {
    let cases: &[(&str, &str)] = &[
        ("[[routes]]\npath_prefix = \"/\"\nupstreams = [\"http://a\"]\n", "`issuer`"),
        ("issuer = \"ftp://id\"\n", "`issuer`"),
        ("issuer = \"https://id\"\n", "`routes`"),
        ("issuer = \"https://id\"\nrevocation_poll_secs = 0\n[[routes]]\npath_prefix = \"/\"\nupstreams = [\"http://a\"]\n", "`revocation_poll_secs`"),
        ("issuer = \"https://id\"\ntrusted_proxies = [\"10.0.0.0/33\"]\n[[routes]]\npath_prefix = \"/\"\nupstreams = [\"http://a\"]\n", "`trusted_proxies[0]`"),
        ("issuer = \"https://id\"\nadmin_prefix = \"gw/\"\n[[routes]]\npath_prefix = \"/\"\nupstreams = [\"http://a\"]\n", "`admin_prefix`"),
        ("issuer = \"https://id\"\n[auth_cache]\ncapacity = 0\n[[routes]]\npath_prefix = \"/\"\nupstreams = [\"http://a\"]\n", "`auth_cache.capacity`"),
    ];
    for (text, key) in cases {
        let err = error(text);
        assert!(err.contains(key), "{key}: {err}");
    }
    let route_cases: &[(&str, &str)] = &[
        ("path_prefix = \"orders\"\nupstreams = [\"http://a\"]", "`routes[0].path_prefix`"),
        ("path_prefix = \"/a/../b\"\nupstreams = [\"http://a\"]", "`routes[0].path_prefix`"),
        ("path_prefix = \"/a\"\nupstreams = []", "`routes[0].upstreams`"),
        ("path_prefix = \"/a\"\nupstreams = [\"https://a\"]", "`routes[0].upstreams[0]`"),
        ("path_prefix = \"/a\"\nupstreams = [\"http://a\", \"nope\"]", "`routes[0].upstreams[1]`"),
        ("path_prefix = \"/a\"\nupstreams = [\"http://a\"]\npublic = true\nscopes = [\"x\"]", "`routes[0].scopes`"),
        ("path_prefix = \"/a\"\nupstreams = [\"http://a\"]\npublic = true\nrate_limit = { per_subject = 3 }", "`routes[0].rate_limit.per_subject`"),
        ("path_prefix = \"/a\"\nupstreams = [\"http://a\"]\nrate_limit = { window_secs = 3 }", "`routes[0].rate_limit`"),
        ("path_prefix = \"/a\"\nupstreams = [\"http://a\"]\ntimeout_secs = 0", "`routes[0].timeout_secs`"),
        ("path_prefix = \"/a\"\nupstreams = [\"http://a\"]\nhost = \"a.example:80\"", "`routes[0].host`"),
        ("path_prefix = \"/a\"\nupstreams = [\"http://a\"]\ncors = { allow_origins = [\"*\"], allow_credentials = true }", "`routes[0].cors.allow_origins`"),
        ("path_prefix = \"/a\"\nupstreams = [\"http://a\"]\ncors = { allow_origins = [\"https://a.example/path\"] }", "`routes[0].cors.allow_origins`"),
        ("path_prefix = \"/a\"\nupstreams = [\"http://a\"]\ncors = { allow_origins = [\"https://a.example\"], allow_headers = [\"*\"] }", "`routes[0].cors.allow_headers`"),
    ];
    for (route, key) in route_cases {
        let err = error(&format!("issuer = \"https://id\"\n[[routes]]\n{route}\n"));
        assert!(err.contains(key), "{key}: {err}");
    }
    let err = error(
        "issuer = \"https://id\"\n[[routes]]\npath_prefix = \"/a\"\nupstreams = [\"http://a\"]\n\
         [[routes]]\npath_prefix = \"/a/\"\nname = \"other\"\nupstreams = [\"http://b\"]\n",
    );
    assert!(err.contains("`routes[1].path_prefix`"), "{err}");
    let err = GatewayConfig::parse(MINIMAL, None, env(&[("TESSERA_GATEWAY_LEEWAY_SECS", "soon")]))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("TESSERA_GATEWAY_LEEWAY_SECS") && err.contains("leeway_secs"),
        "{err}"
    );
    let err = GatewayConfig::parse(MINIMAL, None, env(&[("TESSERA_GATEWAY_ISSUER", "not a url")]))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("`issuer`") && err.contains("(from TESSERA_GATEWAY_ISSUER)"),
        "{err}"
    );
}

#[test]
fn environment_overrides_the_file() {
    let config = GatewayConfig::parse(
        MINIMAL,
        Some("gateway.toml"),
        env(&[
            ("TESSERA_GATEWAY_LISTEN", "127.0.0.1:9999"),
            ("TESSERA_GATEWAY_ISSUER", "http://127.0.0.1:8080/"),
            ("TESSERA_GATEWAY_AUTH_CACHE__ENABLED", "false"),
            ("TESSERA_LISTEN", "127.0.0.1:1"),
        ]),
    )
    .unwrap();
    assert_eq!(config.listen.port(), 9999);
    assert_eq!(config.issuer(), "http://127.0.0.1:8080");
    assert!(!config.auth_cache.enabled);
}

/// A configuration that sets every key, so its serialisation lists every field.
fn everything() -> GatewayConfig {
    let mut route = RouteConfig::new("/a", &["http://127.0.0.1:1"]);
    route.name = Some("a".into());
    route.host = Some("api.example.com".into());
    route.acr_values = vec!["urn:tessera:acr:mfa".into()];
    route.rate_limit = Some(RateLimitConfig {
        per_subject: Some(1),
        per_ip: Some(1),
        per_key: Some(1),
        window_secs: 1,
    });
    route.api_keys = true;
    route.cors = Some(CorsConfig::new(&["https://app.example.com"]));
    GatewayConfig {
        issuer: Some("https://id.example.com".into()),
        audience: Some("https://api.example.com".into()),
        trusted_proxies: vec!["10.0.0.0/8".into()],
        public_url: Some("https://api.example.com".into()),
        routes: vec![route],
        api_keys: super::ApiKeysConfig {
            client_id: Some("gateway".into()),
            client_secret: Some(tessera_config::Secret::new("tcs_x")),
            check_url: Some("https://id.example.com/oauth2/api-keys/check".into()),
            metric_keys: vec!["q3Jc9n0bQe2sYhW1m7VtKA".into()],
            ..super::ApiKeysConfig::default()
        },
        ..GatewayConfig::default()
    }
}

#[test]
fn every_key_is_accepted_and_every_field_is_listed() {
    check::variables_are_prefixed(KEYS, "TESSERA_GATEWAY_").unwrap();
    for &(path, var, kind) in KEYS {
        let value = match kind {
            ValueKind::Int => "20",
            ValueKind::Bool => "true",
            ValueKind::Str | ValueKind::List => match path {
                "listen" => "127.0.0.1:1",
                "log.format" => "json",
                "issuer" | "audience" | "api_keys.check_url" | "public_url" => "https://id.example.com",
                "admin_prefix" => "/_gw",
                _ => "x",
            },
        };
        let parsed = GatewayConfig::parse(MINIMAL, None, env(&[(var, value)]));
        assert!(parsed.is_ok(), "{path}: {parsed:?}");
    }
    let table = toml::Table::try_from(everything()).unwrap();
    let mut listed: Vec<&str> = KEYS.iter().map(|(p, _, _)| *p).collect();
    listed.extend(FILE_ONLY_KEYS);
    check::fields_are_listed(&table, &listed, &[]).unwrap();
    check::listed_are_fields(&table, &listed).unwrap();
    // And the whole thing reads back.
    let text = toml::to_string(&everything()).unwrap();
    parse(&text).unwrap();
}

#[test]
fn every_key_is_documented() {
    let docs = include_str!("../../../../docs/gateway.md");
    check::keys_are_documented(docs, KEYS, FILE_ONLY_KEYS).unwrap();
}

#[test]
fn the_documented_example_file_is_valid() {
    let docs = include_str!("../../../../docs/gateway.md");
    let config = parse(check::example_file(docs).unwrap()).unwrap();
    assert!(config.routes.len() >= 3);
}

#[test]
fn api_key_routes_need_client_credentials_and_a_protected_route() {
    let keyed = "issuer = \"https://id.example.com\"\n[[routes]]\npath_prefix = \"/p\"\nupstreams = [\"http://127.0.0.1:1\"]\napi_keys = true\n";
    assert!(error(keyed).contains("api_keys.client_id"), "{}", error(keyed));
    let with_client = keyed.replace(
        "[[routes]]",
        "[api_keys]\nclient_id = \"gw\"\nclient_secret = \"s\"\n[[routes]]",
    );
    let config = parse(&with_client).unwrap();
    assert!(config.routes[0].api_keys);
    assert_eq!(config.api_keys.cache_ttl_secs, 300);
    assert!(error(&format!("{with_client}public = true\n")).contains("api_keys"));
    assert!(error(&format!("{MINIMAL}rate_limit = {{ per_key = 5 }}\n")).contains("rate_limit.per_key"));
    assert!(error(&format!("{with_client}rate_limit = {{ per_key = 0 }}\n")).contains("rate_limit.per_key"));
    assert!(
        error(&with_client.replace("[[routes]]", "cache_ttl_secs = 0\n[[routes]]"))
            .contains("api_keys.cache_ttl_secs")
    );
    assert!(
        error(&with_client.replace("[[routes]]", "metric_keys = [\"a b\"]\n[[routes]]"))
            .contains("api_keys.metric_keys")
    );
    assert!(
        error(&with_client.replace("[[routes]]", "check_url = \"ftp://x\"\n[[routes]]"))
            .contains("api_keys.check_url")
    );
    // The secret never shows in a debug print.
    assert!(!format!("{config:?}").contains("client_secret: Some(Secret(\"s\"))"));
}
