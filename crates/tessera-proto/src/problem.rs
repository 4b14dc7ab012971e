//! RFC 7807 / RFC 9457 problem details, the error body of Tessera's JSON and admin APIs.

use serde::Serialize;

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
}

impl Problem {
    /// A problem of the given type (`tag` becomes `urn:tessera:problem:<tag>`).
    pub fn new(status: u16, tag: &str, title: impl Into<String>) -> Self {
        Problem {
            kind: format!("urn:tessera:problem:{tag}"),
            title: title.into(),
            status,
            detail: None,
        }
    }

    pub fn with_detail(mut self, detail: impl Into<String>) -> Self {
        self.detail = Some(detail.into());
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
}
