//! RFC 7807 / RFC 9457 problem details, the error body of Tessera's JSON and admin APIs.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::Value;

/// A problem document (`application/problem+json`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    /// A URI reference naming the problem type; `about:blank` when the status says it all.
    #[serde(rename = "type")]
    pub kind: String,
    pub title: String,
    pub status: u16,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// Extension members (RFC 9457 §3.2), e.g. a machine-readable `code`.
    #[serde(flatten)]
    pub extensions: BTreeMap<String, Value>,
}

impl Problem {
    /// A problem of the given type (`tag` becomes `urn:tessera:problem:<tag>`).
    pub fn new(status: u16, tag: &str, title: impl Into<String>) -> Self {
        Problem {
            kind: format!("urn:tessera:problem:{tag}"),
            title: title.into(),
            status,
            detail: None,
            extensions: BTreeMap::new(),
        }
    }

    pub fn with_detail(mut self, detail: impl Into<String>) -> Self {
        self.detail = Some(detail.into());
        self
    }

    /// Adds an extension member; the standard members cannot be overwritten.
    pub fn with_extension(mut self, name: &str, value: Value) -> Self {
        if !matches!(name, "type" | "title" | "status" | "detail" | "instance") {
            self.extensions.insert(name.to_owned(), value);
        }
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serialises_with_rfc_member_names() {
        let body =
            serde_json::to_string(&Problem::new(404, "not-found", "Not Found").with_detail("no such route"))
                .unwrap();
        assert_eq!(
            body,
            r#"{"type":"urn:tessera:problem:not-found","title":"Not Found","status":404,"detail":"no such route"}"#
        );
    }

    #[test]
    fn extensions_sit_beside_the_standard_members_and_cannot_replace_them() {
        let body = serde_json::to_value(
            Problem::new(400, "weak-password", "Weak password")
                .with_extension("code", Value::from("password_too_weak"))
                .with_extension("status", Value::from(200)),
        )
        .unwrap();
        assert_eq!(body["code"], "password_too_weak");
        assert_eq!(body["status"], 400);
    }
}
