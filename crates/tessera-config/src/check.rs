//! Checks that keep a configuration's key table, its struct and its reference page in
//! step. Each crate calls them from its own tests; they return what is wrong instead of
//! panicking, so the test names the key.

use crate::{set_path, EnvKey, ValueKind};

/// Every dotted leaf path of `table`; a list of tables (`[[routes]]`) contributes the
/// paths of its tables under its own name (`routes.path_prefix`).
pub fn leaf_paths(table: &toml::Table) -> Vec<String> {
    let mut out = Vec::new();
    collect_leaves(table, "", &mut out);
    out.sort();
    out.dedup();
    out
}

fn collect_leaves(table: &toml::Table, prefix: &str, out: &mut Vec<String>) {
    for (key, value) in table {
        let path = if prefix.is_empty() {
            key.clone()
        } else {
            format!("{prefix}.{key}")
        };
        match value {
            toml::Value::Table(inner) => collect_leaves(inner, &path, out),
            toml::Value::Array(items) if items.first().is_some_and(toml::Value::is_table) => {
                for item in items {
                    if let toml::Value::Table(inner) = item {
                        collect_leaves(inner, &path, out);
                    }
                }
            }
            _ => out.push(path),
        }
    }
}

/// A table that sets only `path`, to a value of `kind` (`sample` gives strings and the
/// items of lists).
pub fn table_with(path: &str, kind: ValueKind, sample: &str) -> toml::Table {
    let value = match kind {
        ValueKind::Int => toml::Value::Integer(200),
        ValueKind::Bool => toml::Value::Boolean(true),
        ValueKind::Str => toml::Value::String(sample.to_owned()),
        ValueKind::List => toml::Value::Array(vec![toml::Value::String(sample.to_owned())]),
    };
    let mut table = toml::Table::new();
    set_path(&mut table, path, value);
    table
}

/// Every variable starts with `prefix`, and no path or variable is listed twice.
pub fn variables_are_prefixed(keys: &[EnvKey], prefix: &str) -> Result<(), String> {
    for (index, &(path, var, _)) in keys.iter().enumerate() {
        if !var.starts_with(prefix) {
            return Err(format!("{var} (for `{path}`) does not start with {prefix}"));
        }
        if keys[..index].iter().any(|(p, v, _)| *p == path || *v == var) {
            return Err(format!("`{path}` / {var} is listed twice"));
        }
    }
    Ok(())
}

/// Every leaf path of `serialised` (a configuration that sets the fields to check) is in
/// `listed`, but for paths that start with one of `except`.
pub fn fields_are_listed(serialised: &toml::Table, listed: &[&str], except: &[&str]) -> Result<(), String> {
    let kept = |path: &str| !except.iter().any(|prefix| path.starts_with(prefix));
    match leaf_paths(serialised)
        .into_iter()
        .find(|p| kept(p) && !listed.contains(&p.as_str()))
    {
        Some(path) => Err(format!("`{path}` is a field but is not listed")),
        None => Ok(()),
    }
}

/// Every path of `listed` is a leaf path of `serialised` (a configuration that sets every
/// field).
pub fn listed_are_fields(serialised: &toml::Table, listed: &[&str]) -> Result<(), String> {
    let found = leaf_paths(serialised);
    match listed.iter().find(|p| !found.iter().any(|f| f == *p)) {
        Some(path) => Err(format!("`{path}` is listed but is no field")),
        None => Ok(()),
    }
}

/// Every key of `keys`, set alone to a sample value of its kind (`sample` gives the
/// strings), deserialises into `T`: with `deny_unknown_fields`, a listed path that is no
/// field fails here.
pub fn keys_deserialize<T: serde::de::DeserializeOwned + std::fmt::Debug>(
    keys: &[EnvKey],
    sample: impl Fn(&str) -> &'static str,
) -> Result<(), String> {
    for &(path, _, kind) in keys {
        let table = table_with(path, kind, sample(path));
        toml::Value::Table(table)
            .try_into::<T>()
            .map_err(|e| format!("`{path}`: {}", crate::one_line(&e.to_string())))?;
    }
    Ok(())
}

/// `docs` names every key in backticks and every variable of `keys`.
pub fn keys_are_documented(docs: &str, keys: &[EnvKey], file_only: &[&str]) -> Result<(), String> {
    for &(path, var, _) in keys {
        if !docs.contains(&format!("`{path}`")) {
            return Err(format!("the reference lacks `{path}`"));
        }
        if !docs.contains(var) {
            return Err(format!("the reference lacks {var}"));
        }
    }
    match file_only.iter().find(|path| !docs.contains(&format!("`{path}`"))) {
        Some(path) => Err(format!("the reference lacks `{path}`")),
        None => Ok(()),
    }
}

/// The first ```` ```toml ```` block of `docs`: the reference's example file.
pub fn example_file(docs: &str) -> Option<&str> {
    let start = docs.find("```toml\n")? + "```toml\n".len();
    let end = start + docs[start..].find("```")?;
    Some(&docs[start..end])
}
