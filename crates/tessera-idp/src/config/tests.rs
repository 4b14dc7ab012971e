use tessera_config::check;

use super::*;

fn load_toml(text: &str) -> Result<Config, ConfigError> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tessera.toml");
    std::fs::write(&path, text).unwrap();
    Config::load(Some(&path), Vec::new())
}

fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn no_configuration_at_all_gives_the_embedded_default() {
    let config = Config::load(None, Vec::new()).unwrap();
    assert_eq!(config.listen.to_string(), "127.0.0.1:8080");
    assert_eq!(config.issuer(), "http://127.0.0.1:8080");
    assert!(config.uses_embedded_database());
    assert_eq!(
        config.database_url(),
        "sqlite://./tessera-data/tessera.db?mode=rwc"
    );
}

#[test]
fn unknown_key_is_named() {
    let err = load_toml("lissten = \"127.0.0.1:1\"\n").unwrap_err().to_string();
    assert!(err.contains("lissten"), "{err}");
    let err = load_toml("[keys]\nprepublish = 1\n").unwrap_err().to_string();
    assert!(err.contains("prepublish"), "{err}");
}

#[test]
fn invalid_values_name_the_key() {
    let err = load_toml("listen = \"not an address\"\n")
        .unwrap_err()
        .to_string();
    assert!(err.contains("listen"), "{err}");
    let err = load_toml("issuer = \"http://idp.example.com\"\n")
        .unwrap_err()
        .to_string();
    assert!(err.contains("`issuer`") && err.contains("https"), "{err}");
    let err = load_toml("database_url = \"mysql://x\"\n")
        .unwrap_err()
        .to_string();
    assert!(err.contains("`database_url`"), "{err}");
    let err = load_toml("master_key = \"c2hvcnQ=\"\n").unwrap_err().to_string();
    assert!(err.contains("`master_key`") && err.contains("32 bytes"), "{err}");
    let err = load_toml("[http]\nmax_body_bytes = 10\n")
        .unwrap_err()
        .to_string();
    assert!(err.contains("`http.max_body_bytes`"), "{err}");
    let err = Config::load(None, env(&[("TESSERA_KEYS__RELOAD_SECS", "soon")]))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("TESSERA_KEYS__RELOAD_SECS") && err.contains("keys.reload_secs"),
        "{err}"
    );
}

#[test]
fn postgres_requires_a_master_key_and_errors_name_the_variable() {
    let err = Config::load(
        None,
        env(&[("TESSERA_DATABASE_URL", "postgres://u@127.0.0.1/db")]),
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("`master_key`") && err.contains("required"), "{err}");
    let err = Config::load(None, env(&[("TESSERA_MASTER_KEY", "short")]))
        .unwrap_err()
        .to_string();
    assert!(err.contains("(from TESSERA_MASTER_KEY)"), "{err}");
}

#[test]
fn smtp_credentials_need_tls_unless_local() {
    let load = |url: &str| {
        Config::load(
            None,
            env(&[
                ("TESSERA_MAIL__TRANSPORT", "smtp"),
                ("TESSERA_MAIL__SMTP_URL", url),
            ]),
        )
    };
    let err = load("smtp://user:hunter2@smtp.example.com:587")
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("`mail.smtp_url`") && !err.contains("hunter2"),
        "{err}"
    );
    load("smtp://user:pw@smtp.example.com:587?tls=required").unwrap();
    load("smtps://user:pw@smtp.example.com").unwrap();
    load("smtp://user:pw@127.0.0.1:2525").unwrap();
    load("smtp://relay.internal:25").unwrap();
    assert!(load("http://x").is_err());
    let err = Config::load(None, env(&[("TESSERA_MAIL__TRANSPORT", "smtp")]))
        .unwrap_err()
        .to_string();
    assert!(err.contains("`mail.smtp_url`"), "{err}");
}

#[test]
fn a_configured_smtp_server_is_used_or_the_configuration_refused() {
    use super::MailTransport;
    let url = ("TESSERA_MAIL__SMTP_URL", "smtp://relay.internal:25");
    // A server alone means SMTP (it used to mean .eml files, silently).
    let config = Config::load(None, env(&[url])).unwrap();
    assert_eq!(config.mail.transport(), MailTransport::Smtp);
    let config = Config::load(None, env(&[url, ("TESSERA_MAIL__TRANSPORT", "smtp")])).unwrap();
    assert_eq!(config.mail.transport(), MailTransport::Smtp);
    // A server next to an explicit `file` transport is a contradiction, named by its key.
    let err = Config::load(None, env(&[url, ("TESSERA_MAIL__TRANSPORT", "file")]))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("`mail.smtp_url`") && err.contains("mail.transport"),
        "{err}"
    );
    // Neither: the embedded default.
    let config = Config::load(None, Vec::new()).unwrap();
    assert_eq!(config.mail.transport(), MailTransport::File);
    let config = Config::load(None, env(&[("TESSERA_MAIL__TRANSPORT", "file")])).unwrap();
    assert_eq!(config.mail.transport(), MailTransport::File);
}

#[test]
fn environment_overrides_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tessera.toml");
    std::fs::write(&path, "listen = \"127.0.0.1:9000\"\n[keys]\nreload_secs = 7\n").unwrap();
    let config = Config::load(
        Some(&path),
        env(&[
            ("TESSERA_LISTEN", "127.0.0.1:9001"),
            ("TESSERA_ISSUER", "https://id.example.com/"),
            ("TESSERA_DATABASE_URL", "postgres://u@127.0.0.1/db"),
            (
                "TESSERA_MASTER_KEY",
                "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
            ),
            ("TESSERA_HTTP__SHUTDOWN_GRACE_SECS", "3"),
            ("TESSERA_UNRELATED", "ignored"),
        ]),
    )
    .unwrap();
    assert_eq!(config.listen.port(), 9001);
    assert_eq!(config.issuer(), "https://id.example.com");
    assert_eq!(config.keys.reload_secs, 7);
    assert_eq!(config.http.shutdown_grace_secs, 3);
    assert_eq!(config.database_url(), "postgres://u@127.0.0.1/db");
    assert!(!config.uses_embedded_database());
}

#[test]
fn secrets_are_redacted_in_debug_output() {
    let config = Config::load(
        None,
        env(&[
            ("TESSERA_DATABASE_URL", "postgres://user:hunter2@127.0.0.1/db"),
            (
                "TESSERA_MASTER_KEY",
                "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
            ),
        ]),
    )
    .unwrap();
    let debug = format!("{config:?}");
    assert!(!debug.contains("hunter2"), "{debug}");
    assert!(!debug.contains("AAAAAAAA"), "{debug}");
}

#[test]
fn every_key_is_accepted_and_every_field_is_listed() {
    check::variables_are_prefixed(KEYS, "TESSERA_").unwrap();
    // Each listed path exists in the struct (deny_unknown_fields would reject it).
    check::keys_deserialize::<Config>(KEYS, sample_string).unwrap();
    // Each field of the default serialisation is listed.
    let defaults = toml::Table::try_from(Config::default()).unwrap();
    let listed: Vec<&str> = KEYS.iter().map(|(path, _, _)| *path).collect();
    check::fields_are_listed(&defaults, &listed, &["sessions.channels", "federation.providers"]).unwrap();
}

/// Keys that only the file can set (a list of tables).
const FILE_ONLY: &[&str] = &[
    "federation.providers",
    "federation.providers.id",
    "federation.providers.display_name",
    "federation.providers.kind",
    "federation.providers.issuer",
    "federation.providers.authorization_endpoint",
    "federation.providers.token_endpoint",
    "federation.providers.userinfo_endpoint",
    "federation.providers.emails_endpoint",
    "federation.providers.client_id",
    "federation.providers.client_secret",
    "federation.providers.client_secret_env",
    "federation.providers.scopes",
    "federation.providers.claims",
    "federation.providers.trust_email",
];

#[test]
fn every_key_is_documented() {
    let docs = include_str!("../../../../docs/configuration.md");
    check::keys_are_documented(docs, KEYS, FILE_ONLY).unwrap();
}

#[test]
fn the_documented_example_file_is_valid() {
    let docs = include_str!("../../../../docs/configuration.md");
    let example = check::example_file(docs).unwrap();
    let config: Config = toml::from_str(example).unwrap();
    config.validate().unwrap();
    assert_eq!(config.issuer(), "https://id.example.com");
}

fn sample_string(path: &str) -> &'static str {
    match path {
        "listen" => "127.0.0.1:1",
        "log.format" => "json",
        "mail.transport" => "file",
        "sessions.on_limit" => "reject",
        "tokens.access_token_alg" => "RS256",
        "mail.from" => "a@b.c",
        "mfa.sms_sender" => "file",
        "mfa.policy" => "required",
        _ => "x",
    }
}

#[test]
fn alert_settings_are_checked_and_named() {
    let config = Config::load(None, Vec::new()).unwrap();
    assert!(config.alerts.new_sign_in_email);
    assert_eq!(config.alerts.new_sign_in_max_per_hour, 3);
    let config = Config::load(
        None,
        env(&[
            ("TESSERA_ALERTS__NEW_SIGN_IN_EMAIL", "false"),
            ("TESSERA_ALERTS__WEBHOOK_URL", "https://hooks.example.com/tessera"),
            ("TESSERA_ALERTS__WEBHOOK_SECRET", "0123456789abcdef0123"),
        ]),
    )
    .unwrap();
    assert!(!config.alerts.new_sign_in_email);
    assert_eq!(
        config.alerts.webhook_url.as_deref(),
        Some("https://hooks.example.com/tessera")
    );
    for (text, key) in [
        ("[alerts]\nwebhook_url = \"ftp://x\"\n", "`alerts.webhook_url`"),
        ("[alerts]\nwebhook_url = \"not a url\"\n", "`alerts.webhook_url`"),
        (
            "[alerts]\nwebhook_secret = \"short\"\n",
            "`alerts.webhook_secret`",
        ),
        (
            "[alerts]\ndevice_cookie_days = 401\n",
            "`alerts.device_cookie_days`",
        ),
        (
            "[alerts]\nnew_sign_in_max_per_hour = 0\n",
            "`alerts.new_sign_in_max_per_hour`",
        ),
        ("[alerts]\nabuse_window_secs = 0\n", "`alerts.abuse_window_secs`"),
    ] {
        let err = load_toml(text).unwrap_err().to_string();
        assert!(err.contains(key), "{text}: {err}");
    }
    let err = load_toml("[alerts]\nwebhook_secret = \"short\"\n")
        .unwrap_err()
        .to_string();
    assert!(!err.contains("short"), "{err}");
}

const OIDC_PROVIDER: &str = r#"
[[federation.providers]]
id = "corp"
display_name = "Corp SSO"
kind = "oidc"
issuer = "https://login.corp.example"
client_id = "tessera"
client_secret = "s3cr3t-value"
scopes = ["email", "profile"]
"#;

const GITHUB_PROVIDER: &str = r#"
[[federation.providers]]
id = "github"
display_name = "GitHub"
kind = "oauth2"
authorization_endpoint = "https://github.com/login/oauth/authorize"
token_endpoint = "https://github.com/login/oauth/access_token"
userinfo_endpoint = "https://api.github.com/user"
emails_endpoint = "https://api.github.com/user/emails"
client_id = "Iv1.abc"
client_secret_env = "GITHUB_SECRET"
scopes = ["read:user", "user:email"]
claims = { subject = "id", name = "login" }
"#;

#[test]
fn federation_providers_load_with_their_defaults() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tessera.toml");
    std::fs::write(&path, format!("{OIDC_PROVIDER}{GITHUB_PROVIDER}")).unwrap();
    let config = Config::load(Some(&path), env(&[("GITHUB_SECRET", "from-the-env")])).unwrap();
    let [corp, github] = &config.federation.providers[..] else {
        panic!("two providers expected: {:?}", config.federation.providers)
    };
    assert_eq!(corp.kind, ProviderKind::Oidc);
    assert_eq!(corp.claims, ClaimMapping::default());
    assert!(!corp.trust_email);
    assert_eq!(corp.secret(), Some("s3cr3t-value"));
    assert_eq!(github.kind, ProviderKind::Oauth2);
    assert_eq!(github.claims.subject, "id");
    assert_eq!(github.claims.email, "email");
    assert_eq!(github.secret(), Some("from-the-env"));
    assert!(config.federation.allow_signup);
    assert!(!format!("{config:?}").contains("s3cr3t-value"));
}

#[test]
fn federation_mistakes_are_refused_naming_the_key() {
    let cases: &[(String, &str)] = &[
        (
            OIDC_PROVIDER.replace("\"corp\"", "\"Corp!\""),
            "`federation.providers[0].id`",
        ),
        (
            format!("{OIDC_PROVIDER}{OIDC_PROVIDER}"),
            "`federation.providers[1].id`",
        ),
        (
            OIDC_PROVIDER.replace("display_name = \"Corp SSO\"", "display_name = \" \""),
            "`federation.providers[0].display_name`",
        ),
        (
            OIDC_PROVIDER.replace("issuer = \"https://login.corp.example\"\n", ""),
            "`federation.providers[0].issuer`",
        ),
        (
            OIDC_PROVIDER.replace("https://login.corp.example", "http://login.corp.example"),
            "`federation.providers[0].issuer`",
        ),
        (
            OIDC_PROVIDER.replace("https://login.corp.example", "https://login.corp.example/?x=1"),
            "`federation.providers[0].issuer`",
        ),
        (
            OIDC_PROVIDER.replace("client_secret = \"s3cr3t-value\"\n", ""),
            "`federation.providers[0].client_secret`",
        ),
        (
            OIDC_PROVIDER.replace("client_id = \"tessera\"", "client_id = \"\""),
            "`federation.providers[0].client_id`",
        ),
        (
            format!("{OIDC_PROVIDER}token_endpoint = \"https://x.example/t\"\n"),
            "`federation.providers[0].token_endpoint`",
        ),
        (
            OIDC_PROVIDER.replace("\"email\", \"profile\"", "\"a b\""),
            "`federation.providers[0].scopes`",
        ),
        (
            format!("{OIDC_PROVIDER}claims = {{ subject = \"\" }}\n"),
            "`federation.providers[0].claims.subject`",
        ),
        (
            GITHUB_PROVIDER.replace(
                "token_endpoint = \"https://github.com/login/oauth/access_token\"\n",
                "",
            ),
            "`federation.providers[0].token_endpoint`",
        ),
        (
            GITHUB_PROVIDER.replace(
                "client_secret_env = \"GITHUB_SECRET\"",
                "client_secret_env = \"NOT_SET_ANYWHERE\"",
            ),
            "`federation.providers[0].client_secret_env`",
        ),
        (
            "[federation]\nflow_ttl_secs = 0\n".to_owned(),
            "`federation.flow_ttl_secs`",
        ),
        (
            "[federation]\nmax_response_bytes = 10\n".to_owned(),
            "`federation.max_response_bytes`",
        ),
    ];
    for (text, key) in cases {
        let err = load_toml(text).unwrap_err().to_string();
        assert!(err.contains(key), "{text}: {err}");
        assert!(!err.contains("s3cr3t-value"), "{err}");
    }
    // An unknown key inside a provider is refused too.
    let err = load_toml(&format!("{OIDC_PROVIDER}colour = \"blue\"\n"))
        .unwrap_err()
        .to_string();
    assert!(err.contains("colour"), "{err}");
}
