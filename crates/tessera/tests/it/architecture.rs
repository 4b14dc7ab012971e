//! The crate boundaries of docs/architecture.md, checked against `cargo metadata`: which
//! Tessera crate may import which, no circle, and no HTTP stack in the domain crate.

use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;

use serde_json::Value;

/// Each crate and the Tessera crates its normal dependencies may name (docs/architecture.md).
const ALLOWED: &[(&str, &[&str])] = &[
    ("tessera-proto", &[]),
    ("tessera-config", &[]),
    ("tessera-store", &["tessera-proto"]),
    (
        "tessera-idp",
        &["tessera-proto", "tessera-config", "tessera-store"],
    ),
    ("tessera-web", &["tessera-proto", "tessera-store", "tessera-idp"]),
    // The DPoP proof checks are shared with the provider through the pure wire crate.
    ("tessera-verify", &["tessera-proto"]),
    (
        "tessera-gateway",
        &["tessera-proto", "tessera-config", "tessera-verify"],
    ),
    (
        "tessera-testkit",
        &[
            "tessera-proto",
            "tessera-config",
            "tessera-store",
            "tessera-idp",
            "tessera-web",
        ],
    ),
    (
        "tessera",
        &[
            "tessera-proto",
            "tessera-config",
            "tessera-store",
            "tessera-idp",
            "tessera-web",
            "tessera-verify",
            "tessera-gateway",
        ],
    ),
];

/// What the domain crate must not reach, directly or through anything it uses.
const NOT_IN_THE_DOMAIN: &[&str] = &[
    "axum",
    "axum-core",
    "tower",
    "tower-http",
    "hyper",
    "hyper-util",
    "reqwest",
];

/// Runs `cargo ARGS` in this workspace (offline: everything it reads is local) and
/// returns what it printed.
fn cargo(args: &[&str]) -> String {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let output = Command::new(cargo)
        .args(args)
        .args(["--offline", "--locked"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("cargo runs");
    assert!(
        output.status.success(),
        "cargo {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).expect("cargo prints UTF-8")
}

/// The workspace's packages with the dependencies each declares.
fn metadata() -> Value {
    serde_json::from_str(&cargo(&["metadata", "--format-version", "1", "--no-deps"])).expect("JSON")
}

fn is_normal(dependency: &Value) -> bool {
    dependency["kind"].is_null()
}

/// Workspace crate → the workspace crates its normal dependencies name.
fn workspace_graph(metadata: &Value) -> BTreeMap<String, BTreeSet<String>> {
    let members: BTreeSet<&str> = metadata["workspace_members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|id| id.as_str().unwrap())
        .collect();
    let packages: Vec<&Value> = metadata["packages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| members.contains(p["id"].as_str().unwrap()))
        .collect();
    let names: BTreeSet<&str> = packages.iter().map(|p| p["name"].as_str().unwrap()).collect();
    packages
        .iter()
        .map(|package| {
            let deps = package["dependencies"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|d| is_normal(d))
                .map(|d| d["name"].as_str().unwrap())
                .filter(|name| names.contains(name))
                .map(str::to_owned)
                .collect();
            (package["name"].as_str().unwrap().to_owned(), deps)
        })
        .collect()
}

#[test]
fn crates_import_only_what_the_architecture_allows() {
    let graph = workspace_graph(&metadata());
    for (name, deps) in &graph {
        let allowed = ALLOWED
            .iter()
            .find(|(crate_name, _)| crate_name == name)
            .unwrap_or_else(|| panic!("{name} is not in docs/architecture.md's table (and ALLOWED here)"))
            .1;
        for dep in deps {
            assert!(
                allowed.contains(&dep.as_str()),
                "{name} depends on {dep}, which docs/architecture.md does not allow"
            );
        }
    }
    for (name, _) in ALLOWED {
        assert!(
            graph.contains_key(*name),
            "{name} is listed but is no workspace crate"
        );
    }
}

#[test]
fn the_import_graph_has_no_circle() {
    let graph = workspace_graph(&metadata());
    // Kahn's algorithm: a graph without a circle can be emptied leaf by leaf.
    let mut left = graph.clone();
    while !left.is_empty() {
        let leaves: Vec<String> = left
            .iter()
            .filter(|(_, deps)| deps.iter().all(|d| !left.contains_key(d)))
            .map(|(name, _)| name.clone())
            .collect();
        assert!(
            !leaves.is_empty(),
            "these crates import each other in a circle: {left:?}"
        );
        for leaf in leaves {
            left.remove(&leaf);
        }
    }
}

#[test]
fn the_domain_crate_has_no_http_stack() {
    // What `cargo build -p tessera-idp` compiles for this platform, features as that build
    // resolves them: every package its normal dependencies reach, transitively.
    let tree = cargo(&["tree", "-p", "tessera-idp", "-e", "normal", "--prefix", "none"]);
    let reached: BTreeSet<&str> = tree
        .lines()
        .filter_map(|line| line.split_whitespace().next())
        .collect();
    assert!(reached.contains("tessera-store") && reached.len() > 50, "{tree}");
    for name in NOT_IN_THE_DOMAIN {
        assert!(
            !reached.contains(name),
            "tessera-idp reaches {name}; `cargo tree -e normal -p tessera-idp -i {name}` shows how"
        );
    }
}
