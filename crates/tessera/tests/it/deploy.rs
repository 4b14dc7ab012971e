//! The deployment artifacts in `deploy/kubernetes/` are real configuration, not prose: the
//! TOML files the ConfigMaps are generated from load with the real loaders (with the Secret's
//! variables set to valid values), every Secret variable is one the loader reads, the
//! template's placeholders cannot start a node, the probes and ports of the Deployments match
//! the configured listen addresses and mount paths, kustomize lists every manifest, and the
//! probe paths answer 200 on a node running with the deployed settings.
//!
//! No YAML crate is in the tree, so the manifests are read with a small line reader that
//! understands the subset they use (block mappings, `- ` lists, flow lists on one line).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use tessera_gateway::GatewayConfig;
use tessera_idp::config::Config;
use tessera_testkit::{backend_tests, spawn_with, Backend, Process};

backend_tests!(probe_paths_answer_on_a_node_with_the_deployed_settings);

fn kubernetes_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/kubernetes")
}

fn read(name: &str) -> String {
    let path = kubernetes_dir().join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

/// Valid stand-ins for the Secret's values: the shapes production needs (PostgreSQL, Redis,
/// a 32-byte master key, a 32-byte pepper, SMTP with STARTTLS).
fn dummy_secret_value(name: &str) -> &'static str {
    match name {
        "TESSERA_MASTER_KEY" => "dGVzc2VyYS1kZXBsb3ktdGVzdC1tYXN0ZXIta2V5LTM=",
        "TESSERA_PEPPER" => "dGVzc2VyYS1kZXBsb3ktdGVzdC1wZXBwZXItMzJieXQ=",
        "TESSERA_DATABASE_URL" => "postgres://tessera:pw@postgres.databases.svc.cluster.local:5432/tessera",
        "TESSERA_REDIS_URL" => "redis://redis.databases.svc.cluster.local:6379",
        "TESSERA_MAIL__SMTP_URL" => "smtp://tessera:pw@smtp.example.com:587?tls=required",
        other => panic!("the Secret has {other}, which this test has no valid value for"),
    }
}

// ---- a reader for the YAML subset of our manifests ----------------------------------------

/// One manifest line that holds `key: value`: its indentation (a list item's `- ` counts as
/// indentation, so an item's keys line up), the key and the scalar value without quotes (empty
/// when the line opens a block). Comments and list scalars (`- item`) are not entries.
fn entry(line: &str) -> Option<(usize, String, String)> {
    let trimmed = line.trim_start();
    let mut indent = line.len() - trimmed.len();
    let trimmed = match trimmed.strip_prefix("- ") {
        Some(rest) => {
            indent += 2;
            rest
        }
        None => trimmed,
    };
    if trimmed.starts_with('#') {
        return None;
    }
    let (key, value) = trimmed.split_once(':')?;
    if key.is_empty() || key.contains(char::is_whitespace) || key.contains('"') {
        return None;
    }
    Some((indent, key.to_owned(), unquote(value)))
}

fn unquote(value: &str) -> String {
    let value = value.trim();
    value
        .strip_prefix('"')
        .and_then(|v| v.strip_suffix('"'))
        .unwrap_or(value)
        .to_owned()
}

fn indentation(line: &str) -> usize {
    line.len() - line.trim_start().len()
}

fn is_content(line: &str) -> bool {
    let trimmed = line.trim_start();
    !trimmed.is_empty() && !trimmed.starts_with('#')
}

/// The lines nested under the first `key:` (at any depth).
fn block<'a>(lines: &[&'a str], key: &str) -> Vec<&'a str> {
    let Some(start) = lines
        .iter()
        .position(|line| entry(line).is_some_and(|(_, k, _)| k == key))
    else {
        panic!("no `{key}:` in\n{}", lines.join("\n"));
    };
    let (own, ..) = entry(lines[start]).unwrap();
    lines[start + 1..]
        .iter()
        .copied()
        .filter(|line| is_content(line))
        .take_while(|line| entry(line).map_or(indentation(line), |(indent, ..)| indent) > own)
        .collect()
}

/// Every value of `key` among `lines`, in order.
fn values(lines: &[&str], key: &str) -> Vec<String> {
    lines
        .iter()
        .filter_map(|line| entry(line))
        .filter(|(_, k, _)| k == key)
        .map(|(.., v)| v)
        .collect()
}

fn value(lines: &[&str], key: &str) -> String {
    values(lines, key)
        .into_iter()
        .next()
        .unwrap_or_else(|| panic!("no `{key}:` in\n{}", lines.join("\n")))
}

/// The `- item` scalars directly among `lines`.
fn items(lines: &[&str]) -> Vec<String> {
    lines
        .iter()
        .filter_map(|line| line.trim_start().strip_prefix("- "))
        .filter(|item| !item.contains(": "))
        .map(unquote)
        .collect()
}

/// A one-line flow list: `["a", "b"]`.
fn flow_list(value: &str) -> Vec<String> {
    value
        .trim()
        .trim_start_matches('[')
        .trim_end_matches(']')
        .split(',')
        .map(unquote)
        .filter(|item| !item.is_empty())
        .collect()
}

/// `- name: N` / `value: V` pairs of an `env:` block.
fn env_pairs(env: &[&str]) -> Vec<(String, String)> {
    values(env, "name")
        .into_iter()
        .zip(values(env, "value"))
        .collect()
}

fn lines(text: &str) -> Vec<&str> {
    text.lines().collect()
}

fn number(text: &str) -> u64 {
    text.parse()
        .unwrap_or_else(|_| panic!("{text:?} is not a number"))
}

/// What the checks need of one Deployment: its main container's port, probes and mounts.
struct Workload {
    replicas: u64,
    container_port: u64,
    port_name: String,
    /// probe kind → (path, port).
    probes: BTreeMap<String, (String, String)>,
    /// volume name → mount path.
    mounts: BTreeMap<String, String>,
    /// volume name → ConfigMap name.
    config_maps: BTreeMap<String, String>,
    secret_refs: Vec<String>,
    env: Vec<(String, String)>,
    args: Vec<String>,
    annotations: BTreeMap<String, String>,
    termination_grace_secs: u64,
    pre_stop_sleep_secs: u64,
}

fn workload(file: &str) -> Workload {
    let text = read(file);
    let all = lines(&text);
    let containers = block(&all, "containers");
    let ports = block(&containers, "ports");
    let probes = ["startupProbe", "livenessProbe", "readinessProbe"]
        .into_iter()
        .map(|kind| {
            let get = block(&block(&containers, kind), "httpGet");
            (kind.to_owned(), (value(&get, "path"), value(&get, "port")))
        })
        .collect();
    let mounts = block(&containers, "volumeMounts");
    let volumes = block(&all, "volumes");
    let mut config_maps = BTreeMap::new();
    let mut current = None;
    for (_, key, val) in volumes.iter().filter_map(|line| entry(line)) {
        match key.as_str() {
            // A volume's `name:` comes first; a configMap's own `name:` follows `configMap:`.
            "name" if current.as_ref().is_some_and(|(_, in_config_map)| *in_config_map) => {
                let (volume, _) = current.take().unwrap();
                config_maps.insert(volume, val);
            }
            "name" => current = Some((val, false)),
            "configMap" => current = current.map(|(volume, _)| (volume, true)),
            _ => {}
        }
    }
    let annotations = block(&block(&all, "template"), "annotations")
        .iter()
        .filter_map(|line| entry(line))
        .map(|(_, k, v)| (k, v))
        .collect();
    let env = if containers
        .iter()
        .any(|line| entry(line).is_some_and(|(_, k, _)| k == "env"))
    {
        env_pairs(&block(&containers, "env"))
    } else {
        Vec::new()
    };
    let secret_refs = if containers
        .iter()
        .any(|line| entry(line).is_some_and(|(_, k, _)| k == "secretRef"))
    {
        values(&block(&containers, "secretRef"), "name")
    } else {
        Vec::new()
    };
    Workload {
        replicas: number(&value(&all, "replicas")),
        container_port: number(&value(&ports, "containerPort")),
        port_name: value(&ports, "name"),
        probes,
        mounts: values(&mounts, "name")
            .into_iter()
            .zip(values(&mounts, "mountPath"))
            .collect(),
        config_maps,
        secret_refs,
        env,
        args: flow_list(&value(&containers, "args")),
        annotations,
        termination_grace_secs: number(&value(&all, "terminationGracePeriodSeconds")),
        pre_stop_sleep_secs: number(&value(&block(&block(&containers, "preStop"), "sleep"), "seconds")),
    }
}

/// The Secret template's variables and placeholder values.
fn secret_template() -> Vec<(String, String)> {
    let text = read("secret.example.yaml");
    let all = lines(&text);
    assert_eq!(value(&block(&all, "metadata"), "name"), "tessera-secrets");
    block(&all, "stringData")
        .iter()
        .filter_map(|line| entry(line))
        .map(|(_, k, v)| (k, v))
        .collect()
}

/// The file a ConfigMap mounted at `volume` provides as `file_name`, per kustomization.yaml.
fn config_file_behind(config_map: &str, file_name: &str) -> PathBuf {
    let text = read("kustomization.yaml");
    let all = lines(&text);
    let generators = block(&all, "configMapGenerator");
    let names = values(&generators, "name");
    let index = names
        .iter()
        .position(|name| name == config_map)
        .unwrap_or_else(|| panic!("kustomization.yaml generates no ConfigMap {config_map} (has {names:?})"));
    // Each generator's `files:` list, in the order of the generators.
    let files: Vec<Vec<String>> = generators
        .iter()
        .enumerate()
        .filter(|(_, line)| entry(line).is_some_and(|(_, k, _)| k == "files"))
        .map(|(at, _)| items(&block(&generators[at..], "files")))
        .collect();
    let source = files[index]
        .iter()
        .find_map(|item| item.strip_prefix(&format!("{file_name}=")))
        .unwrap_or_else(|| {
            panic!(
                "ConfigMap {config_map} has no key {file_name}: {:?}",
                files[index]
            )
        });
    kubernetes_dir().join(source)
}

/// The identity provider's configuration as a node in the Deployment reads it: the mounted
/// file, then the container's variables and the Secret's (with `secret` values).
fn idp_config(
    idp: &Workload,
    secret: &[(String, String)],
) -> Result<Config, tessera_idp::config::ConfigError> {
    let config_path = idp
        .env
        .iter()
        .find(|(name, _)| name == "TESSERA_CONFIG")
        .map(|(_, value)| value.clone())
        .expect("the idp container sets TESSERA_CONFIG");
    let (dir, file_name) = config_path.rsplit_once('/').expect("an absolute path");
    let volume = idp
        .mounts
        .iter()
        .find(|(_, path)| path.as_str() == dir)
        .map(|(volume, _)| volume.clone())
        .unwrap_or_else(|| {
            panic!(
                "TESSERA_CONFIG={config_path} is not in a mounted volume: {:?}",
                idp.mounts
            )
        });
    let config_map = idp
        .config_maps
        .get(&volume)
        .expect("the config volume is a ConfigMap");
    let file = config_file_behind(config_map, file_name);
    let env = idp.env.iter().chain(secret).cloned();
    Config::load(Some(&file), env)
}

fn dummy_secrets() -> Vec<(String, String)> {
    secret_template()
        .into_iter()
        .map(|(name, _)| {
            let value = dummy_secret_value(&name).to_owned();
            (name, value)
        })
        .collect()
}

fn port_of(address: std::net::SocketAddr) -> u64 {
    u64::from(address.port())
}

// ---- the checks ---------------------------------------------------------------------------

#[test]
fn every_secret_variable_is_read_by_the_identity_provider() {
    let secret = secret_template();
    let names: Vec<&str> = secret.iter().map(|(name, _)| name.as_str()).collect();
    for required in [
        "TESSERA_MASTER_KEY",
        "TESSERA_PEPPER",
        "TESSERA_DATABASE_URL",
        "TESSERA_REDIS_URL",
    ] {
        assert!(
            names.contains(&required),
            "the Secret lacks {required}: {names:?}"
        );
    }
    // The loader ignores variables it does not know: a misspelt one would silently not apply.
    for name in &names {
        assert!(
            tessera_idp::config::KEYS.iter().any(|(_, var, _)| var == name),
            "{name} in secret.example.yaml is not a variable tessera reads"
        );
    }
    // Every placeholder says so.
    for (name, value) in &secret {
        assert!(
            value.contains("CHANGE-ME") || name == "TESSERA_REDIS_URL",
            "{name} has no CHANGE-ME placeholder: {value}"
        );
    }
}

#[test]
fn the_unedited_secret_template_cannot_start_a_node() {
    let idp = workload("idp-deployment.yaml");
    let err = idp_config(&idp, &secret_template()).expect_err("the placeholders must be refused");
    assert!(err.to_string().contains("master_key"), "{err}");
}

#[test]
fn the_idp_configuration_loads_and_matches_its_deployment() {
    let idp = workload("idp-deployment.yaml");
    let config = idp_config(&idp, &dummy_secrets()).unwrap_or_else(|e| panic!("{e}"));

    // Production shape: PostgreSQL, Redis, explicit master key and pepper, https issuer, SMTP.
    assert!(!config.uses_embedded_database());
    assert!(config.database_url().starts_with("postgres://"));
    assert!(config.redis_url.is_some() && config.master_key.is_some() && config.pepper.is_some());
    assert!(config.issuer().starts_with("https://"), "{}", config.issuer());
    assert_eq!(config.mail.transport(), tessera_idp::config::MailTransport::Smtp);
    assert_eq!(config.log.format, tessera_idp::config::LogFormat::Json);
    assert!(
        config.listen.ip().is_unspecified(),
        "a pod must listen on all addresses: {}",
        config.listen
    );

    // The container port is the listen port, and every probe uses it.
    assert_eq!(idp.container_port, port_of(config.listen));
    for (kind, (path, port)) in &idp.probes {
        assert!(
            port == &idp.port_name || port == &idp.container_port.to_string(),
            "{kind} probes port {port}, the node listens on {} ({})",
            idp.port_name,
            idp.container_port
        );
        let expected = if kind == "readinessProbe" {
            "/readyz"
        } else {
            "/healthz"
        };
        assert_eq!(path, expected, "{kind}");
    }
    assert_eq!(
        idp.annotations["prometheus.io/port"],
        idp.container_port.to_string()
    );
    assert_eq!(idp.annotations["prometheus.io/path"], "/metrics");
    assert!(config.metrics.enabled);

    // data_dir is a mounted (writable) volume: the root filesystem is read-only.
    assert!(
        idp.mounts.values().any(|path| Path::new(path) == config.data_dir),
        "data_dir {} is not mounted: {:?}",
        config.data_dir.display(),
        idp.mounts
    );
    assert_eq!(idp.secret_refs, ["tessera-secrets"]);
    assert_eq!(idp.args, ["serve"]);

    // SIGTERM comes after the preStop pause; the drain must end before the kubelet kills.
    assert!(
        idp.pre_stop_sleep_secs + config.http.shutdown_grace_secs < idp.termination_grace_secs,
        "preStop {} s + shutdown_grace_secs {} s must be below terminationGracePeriodSeconds {} s",
        idp.pre_stop_sleep_secs,
        config.http.shutdown_grace_secs,
        idp.termination_grace_secs
    );

    // docs/deployment.md: every node's pool, the migration and a few CLI commands fit in
    // PostgreSQL's default max_connections (100), with room for one more node during a rollout.
    let rollout_nodes = idp.replicas + 1;
    assert!(
        rollout_nodes * u64::from(config.database.max_connections) + 10 <= 100,
        "{rollout_nodes} nodes x {} connections exceed PostgreSQL's default max_connections",
        config.database.max_connections
    );
}

#[test]
fn the_migration_init_container_reads_the_same_configuration() {
    let text = read("idp-deployment.yaml");
    let all = lines(&text);
    let init = block(&all, "initContainers");
    assert_eq!(flow_list(&value(&init, "args")), ["migrate"]);
    let idp = workload("idp-deployment.yaml");
    assert_eq!(env_pairs(&block(&init, "env")), idp.env);
    assert_eq!(values(&block(&init, "secretRef"), "name"), idp.secret_refs);
    assert_eq!(value(&init, "image"), value(&block(&all, "containers"), "image"));
    let mounts = block(&init, "volumeMounts");
    let init_mounts: BTreeMap<String, String> = values(&mounts, "name")
        .into_iter()
        .zip(values(&mounts, "mountPath"))
        .collect();
    assert_eq!(init_mounts.get("config"), idp.mounts.get("config"));
}

#[test]
fn the_gateway_configuration_loads_and_matches_its_deployment() {
    let gateway = workload("gateway-deployment.yaml");
    assert_eq!(gateway.args[0], "gateway");
    let config_path = gateway
        .args
        .iter()
        .skip_while(|arg| arg.as_str() != "--config")
        .nth(1)
        .expect("the gateway is started with --config FILE")
        .clone();
    let (dir, file_name) = config_path.rsplit_once('/').expect("an absolute path");
    let volume = gateway
        .mounts
        .iter()
        .find(|(_, path)| path.as_str() == dir)
        .map(|(volume, _)| volume.clone())
        .unwrap_or_else(|| panic!("--config {config_path} is not in a mounted volume"));
    let file = config_file_behind(&gateway.config_maps[&volume], file_name);
    let config = GatewayConfig::load(Some(&file), gateway.env.clone()).unwrap_or_else(|e| panic!("{e}"));

    assert!(config.listen.ip().is_unspecified(), "{}", config.listen);
    assert_eq!(gateway.container_port, port_of(config.listen));
    for (kind, (path, port)) in &gateway.probes {
        assert_eq!(port, &gateway.port_name, "{kind}");
        let endpoint = if kind == "readinessProbe" {
            "/readyz"
        } else {
            "/healthz"
        };
        assert_eq!(path, &format!("{}{endpoint}", config.admin_prefix), "{kind}");
    }
    assert_eq!(
        gateway.annotations["prometheus.io/path"],
        format!("{}/metrics", config.admin_prefix)
    );
    assert_eq!(
        gateway.annotations["prometheus.io/port"],
        gateway.container_port.to_string()
    );
    assert!(gateway.replicas >= 2);
    assert!(gateway.pre_stop_sleep_secs + config.shutdown_grace_secs < gateway.termination_grace_secs);

    // The gateway trusts the identity provider that is deployed next to it.
    let idp =
        idp_config(&workload("idp-deployment.yaml"), &dummy_secrets()).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(config.issuer(), idp.issuer());
    assert_eq!(config.audience(), idp.audience());
}

#[test]
fn kustomization_lists_every_manifest() {
    let text = read("kustomization.yaml");
    let all = lines(&text);
    let mut listed = items(&block(&all, "resources"));
    listed.sort();
    let mut present: Vec<String> = std::fs::read_dir(kubernetes_dir())
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.ends_with(".yaml") && name != "kustomization.yaml")
        .collect();
    present.sort();
    assert_eq!(listed, present);
    // Each Deployment mounts a generated ConfigMap whose file exists.
    for (file, key) in [
        ("idp-deployment.yaml", "tessera.toml"),
        ("gateway-deployment.yaml", "gateway.toml"),
    ] {
        let workload = workload(file);
        assert_eq!(workload.config_maps.len(), 1, "{file}");
        for config_map in workload.config_maps.values() {
            assert!(
                config_file_behind(config_map, key).is_file(),
                "{file}: {config_map}"
            );
        }
    }
}

/// A node started with the deployed settings (everything but the addresses and secrets,
/// which the test backend provides) answers every path the Deployment probes and scrapes.
async fn probe_paths_answer_on_a_node_with_the_deployed_settings(backend: Backend) {
    let idp = workload("idp-deployment.yaml");
    let deployed = idp_config(&idp, &dummy_secrets()).unwrap_or_else(|e| panic!("{e}"));
    let Some(node) = spawn_with(backend, |config| {
        config.database = deployed.database.clone();
        config.keys = deployed.keys.clone();
        config.tokens = deployed.tokens.clone();
        config.sessions = deployed.sessions.clone();
        config.audit = deployed.audit.clone();
        config.accounts = deployed.accounts.clone();
        config.passwords = deployed.passwords.clone();
        config.login = deployed.login.clone();
        config.http = deployed.http.clone();
        config.metrics = deployed.metrics.clone();
    })
    .await
    else {
        return;
    };
    for (kind, (path, _)) in &idp.probes {
        let (status, body) = node.get_json(path).await;
        assert_eq!(status, 200, "{kind} {path}: {body}");
        if kind == "readinessProbe" {
            let word = body["status"].as_str().unwrap_or_default();
            assert!(word == "ready" || word == "degraded", "{body}");
        }
    }
    let metrics = node.get(&idp.annotations["prometheus.io/path"]).await;
    assert_eq!(metrics.status(), 200);
    assert!(metrics.text().await.unwrap().contains("tessera_ready"));
}

/// The emergency key-rotation Job (signing-key compromise runbook) runs in the nodes' image
/// with their Secret, and the loader accepts its overrides.
#[test]
fn the_emergency_key_rotation_job_is_a_valid_command() {
    let text = read("ops/emergency-key-rotation.yaml");
    let all = lines(&text);
    let containers = block(&all, "containers");
    assert_eq!(flow_list(&value(&containers, "args")), ["keys", "rotate"]);
    assert_eq!(
        values(&block(&containers, "secretRef"), "name"),
        ["tessera-secrets"]
    );
    let kustomization = read("kustomization.yaml");
    let images = block(&lines(&kustomization), "images");
    assert_eq!(
        value(&containers, "image"),
        format!("{}:{}", value(&images, "newName"), value(&images, "newTag")),
        "the Job's image is not the one the kustomization deploys"
    );
    let env = env_pairs(&block(&containers, "env"));
    let config = Config::load(None, env.into_iter().chain(dummy_secrets())).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(config.keys.prepublish_secs, 0);
    assert_eq!(config.keys.retire_window_secs, 1);
}

/// What the Job does, done with the real binary next to a running node: the node's key set
/// holds only the new keys within seconds, and `keys list` shows the old ones expired.
#[tokio::test]
async fn the_emergency_key_rotation_replaces_every_published_key_at_once() {
    let text = read("ops/emergency-key-rotation.yaml");
    let job_env = env_pairs(&block(&block(&lines(&text), "containers"), "env"));
    let dir = tempfile::tempdir().unwrap();
    let binary = Path::new(env!("CARGO_BIN_EXE_tessera"));
    let data_dir = dir.path().join("data").display().to_string();
    let master_key = dummy_secret_value("TESSERA_MASTER_KEY").to_owned();
    let limit = Duration::from_secs(60);

    let mut node = Process::serve_in(
        binary,
        dir.path(),
        &[
            ("TESSERA_DATA_DIR", data_dir.clone()),
            ("TESSERA_MASTER_KEY", master_key.clone()),
            ("TESSERA_KEYS__RELOAD_SECS", "1".to_owned()),
        ],
    );
    node.wait_ready(limit).await;
    let jwks_url = format!("{}/.well-known/jwks.json", node.url);
    let published = || async {
        let jwks: serde_json::Value = reqwest::get(&jwks_url).await.unwrap().json().await.unwrap();
        let mut kids: Vec<String> = jwks["keys"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| k["kid"].as_str().unwrap().to_owned())
            .collect();
        kids.sort();
        kids
    };
    let old_kids = published().await;
    assert_eq!(old_kids.len(), 3);

    let base = vec![
        ("TESSERA_DATA_DIR".to_owned(), data_dir),
        ("TESSERA_MASTER_KEY".to_owned(), master_key),
    ];
    let with_job_env: Vec<(String, String)> = base.iter().cloned().chain(job_env).collect();
    let rotated = Process::run_in(binary, dir.path(), &["keys", "rotate"], &with_job_env, limit).await;
    assert!(rotated.status.success(), "{}", rotated.stderr);
    let mut new_kids: Vec<String> = rotated
        .stdout
        .lines()
        .map(|line| line.split_whitespace().next().unwrap().to_owned())
        .collect();
    new_kids.sort();
    assert_eq!(new_kids.len(), 3, "{}", rotated.stdout);

    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let now = published().await;
        if now == new_kids {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the node still publishes {now:?}, expected only {new_kids:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    let list = Process::run_in(binary, dir.path(), &["keys", "list", "--json"], &base, limit).await;
    assert!(list.status.success(), "{}", list.stderr);
    let list: serde_json::Value = serde_json::from_str(&list.stdout).unwrap();
    for key in list.as_array().unwrap() {
        let kid = key["kid"].as_str().unwrap().to_owned();
        let expected = if old_kids.contains(&kid) {
            "expired"
        } else {
            "active"
        };
        assert_eq!(key["status"], expected, "{key}");
    }
    node.signal("TERM");
    let status = node.wait_exit(limit).await.expect("the node did not stop");
    assert!(status.success(), "{}", node.stderr());
}
