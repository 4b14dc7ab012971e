use serde::{Deserialize, Serialize};

use super::*;

#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
struct Sample {
    name: String,
    port: u16,
    enabled: bool,
    section: Section,
}

#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
struct Section {
    origins: Vec<String>,
    token: Option<Secret>,
}

const KEYS: &[EnvKey] = &[
    ("name", "T_NAME", ValueKind::Str),
    ("port", "T_PORT", ValueKind::Int),
    ("enabled", "T_ENABLED", ValueKind::Bool),
    ("section.origins", "T_SECTION__ORIGINS", ValueKind::List),
    ("section.token", "T_SECTION__TOKEN", ValueKind::Str),
];

fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn load(text: &str, vars: &[(&str, &str)]) -> Result<(Sample, Layers), ConfigError> {
    Layers::read(text, Some("t.toml"), env(vars), KEYS)?.into_config()
}

#[test]
fn the_environment_overrides_the_file_and_is_named() {
    let (config, layers) = load(
        "name = \"file\"\nport = 1\n[section]\norigins = [\"a\"]\n",
        &[
            ("T_PORT", " 8 "),
            ("T_SECTION__ORIGINS", "b, c,,"),
            ("OTHER", "x"),
            ("T_ENABLED", "On"),
        ],
    )
    .unwrap();
    assert_eq!(config.name, "file");
    assert_eq!(config.port, 8);
    assert!(config.enabled);
    assert_eq!(config.section.origins, ["b", "c"]);
    assert_eq!(
        layers.source_name(),
        "t.toml (with T_PORT, T_SECTION__ORIGINS, T_ENABLED)"
    );
}

#[test]
fn bad_values_name_the_key_and_the_source() {
    let err = load("", &[("T_PORT", "eight")]).unwrap_err().to_string();
    assert_eq!(
        err,
        "invalid configuration in T_PORT: `port` expects a whole number, got \"eight\""
    );
    let err = load("", &[("T_ENABLED", "maybe")]).unwrap_err().to_string();
    assert!(err.contains("`enabled` expects true or false"), "{err}");
    let err = load("nmae = 1", &[]).unwrap_err().to_string();
    assert!(
        err.starts_with("invalid configuration in t.toml: unknown field `nmae`"),
        "{err}"
    );
    let err = load("port = [", &[]).unwrap_err().to_string();
    assert!(err.starts_with("invalid configuration in t.toml:"), "{err}");
    assert!(!err.contains('\n'), "{err}");
    let err = load("port = 70000", &[]).unwrap_err().to_string();
    assert!(err.contains("t.toml"), "{err}");
}

#[test]
fn an_invalid_value_from_the_environment_says_so() {
    let (_, layers) = load("", &[("T_NAME", "x")]).unwrap();
    let err = layers
        .attribute(ConfigError::invalid("name", "is wrong"))
        .to_string();
    assert_eq!(err, "invalid configuration: `name` is wrong (from T_NAME)");
    let err = layers
        .attribute(ConfigError::invalid("port", "is wrong"))
        .to_string();
    assert_eq!(err, "invalid configuration: `port` is wrong");
}

#[test]
fn no_file_and_no_environment_are_the_defaults() {
    let layers = Layers::load(None, Vec::new(), KEYS).unwrap();
    assert_eq!(layers.source_name(), "defaults");
    let (config, _) = layers.into_config::<Sample>().unwrap();
    assert_eq!(config.port, 0);
    let missing = Layers::load(Some(Path::new("/nonexistent/t.toml")), Vec::new(), KEYS).unwrap_err();
    assert!(missing
        .to_string()
        .starts_with("cannot read configuration file /nonexistent/t.toml"));
}

#[test]
fn a_file_is_read_from_disk() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.toml");
    std::fs::write(&path, "name = \"disk\"").unwrap();
    let (config, _) = Layers::load(Some(&path), Vec::new(), KEYS)
        .unwrap()
        .into_config::<Sample>()
        .unwrap();
    assert_eq!(config.name, "disk");
}

#[test]
fn secrets_never_show() {
    let (config, _) = load("", &[("T_SECTION__TOKEN", "hunter2")]).unwrap();
    assert_eq!(config.section.token.as_ref().map(Secret::expose), Some("hunter2"));
    assert!(!format!("{config:?}").contains("hunter2"));
    assert!(!toml::to_string(&config).unwrap().contains("hunter2"));
}

#[test]
fn the_checks_find_what_is_out_of_step() {
    let every = Sample {
        section: Section {
            origins: vec!["a".into()],
            token: Some(Secret::new("t")),
        },
        ..Sample::default()
    };
    let table = toml::Table::try_from(&every).unwrap();
    let listed: Vec<&str> = KEYS.iter().map(|k| k.0).collect();
    check::fields_are_listed(&table, &listed, &[]).unwrap();
    let err = check::fields_are_listed(&table, &listed[1..], &[]).unwrap_err();
    assert!(err.contains("`name` is a field"), "{err}");
    assert!(check::fields_are_listed(&table, &listed[1..], &["na"]).is_ok());
    check::listed_are_fields(&table, &listed).unwrap();
    let mut extra = listed.clone();
    extra.push("section.gone");
    assert!(check::listed_are_fields(&table, &extra)
        .unwrap_err()
        .contains("section.gone"));

    check::variables_are_prefixed(KEYS, "T_").unwrap();
    assert!(check::variables_are_prefixed(KEYS, "TESSERA_").is_err());

    let docs = "`name` T_NAME `port` T_PORT `enabled` T_ENABLED `section.origins` T_SECTION__ORIGINS \
                `section.token` T_SECTION__TOKEN\n```toml\nname = \"x\"\n```\n";
    check::keys_are_documented(docs, KEYS, &[]).unwrap();
    assert!(check::keys_are_documented(docs, KEYS, &["routes.x"]).is_err());
    assert!(check::keys_are_documented(&docs.replace("T_PORT", ""), KEYS, &[]).is_err());
    assert_eq!(check::example_file(docs), Some("name = \"x\"\n"));

    check::keys_deserialize::<Sample>(KEYS, |_| "x").unwrap();
    const WRONG: &[EnvKey] = &[("section.gone", "T_GONE", ValueKind::Str)];
    let err = check::keys_deserialize::<Sample>(WRONG, |_| "x").unwrap_err();
    assert!(
        err.contains("`section.gone`") && err.contains("unknown field"),
        "{err}"
    );
}
