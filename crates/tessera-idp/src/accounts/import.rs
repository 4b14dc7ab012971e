//! `tessera user import FILE`: users from the legacy system, one JSON object per line,
//! with their existing password hashes (bcrypt as Spring Security writes it, PBKDF2-SHA256,
//! Argon2). They log in with their old password; that login replaces the hash with
//! Argon2id and the pepper. One bad line never aborts the import.

use std::io::BufRead;

use serde::Deserialize;
use serde_json::json;
use tessera_store::durable::UserRecord;
use tessera_store::StoreError;

use super::{email, validate_roles, AccountError, Accounts};
use crate::audit::{AuditEvent, RequestContext};
use crate::tokens::opaque::random_id;

/// Longest line read (a user record is small; a huge line is an error, not a memory spike).
const MAX_LINE_BYTES: usize = 64 * 1024;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Line {
    email: String,
    password_hash: String,
    #[serde(default)]
    email_verified: bool,
    #[serde(default)]
    roles: Vec<String>,
}

/// What an import did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ImportReport {
    pub imported: u64,
    /// Lines whose e-mail already has an account (left unchanged).
    pub skipped: u64,
    /// `(line number, reason)` of lines that were not imported. Reasons never quote hashes.
    pub rejected: Vec<(u64, String)>,
}

impl Accounts {
    /// Imports every line of `input`.
    pub async fn import_users(
        &self,
        input: impl BufRead,
        context: &RequestContext,
    ) -> Result<ImportReport, AccountError> {
        let mut report = ImportReport::default();
        for (index, line) in input.split(b'\n').enumerate() {
            let number = index as u64 + 1;
            let line = match line {
                Ok(line) => line,
                Err(err) => {
                    report.rejected.push((number, format!("unreadable: {err}")));
                    continue;
                }
            };
            if line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            match self.import_line(&line).await {
                Ok(true) => report.imported += 1,
                Ok(false) => report.skipped += 1,
                Err(Rejection::Line(reason)) => report.rejected.push((number, reason)),
                // The store is down: stop rather than reject every following line.
                Err(Rejection::Store(err)) => return Err(err.into()),
            }
        }
        self.audit()
            .record(
                context,
                AuditEvent::new("user.imported", "success")
                    .actor("operator")
                    .detail(json!({
                        "imported": report.imported,
                        "skipped": report.skipped,
                        "rejected": report.rejected.len(),
                    })),
            )
            .await;
        Ok(report)
    }

    async fn import_line(&self, raw: &[u8]) -> Result<bool, Rejection> {
        if raw.len() > MAX_LINE_BYTES {
            return Err(Rejection::Line(format!(
                "line longer than {MAX_LINE_BYTES} bytes"
            )));
        }
        let line: Line = serde_json::from_slice(raw).map_err(|e| {
            // serde's message names the field and position, never the value.
            Rejection::Line(format!(
                "not a user record: {}",
                e.to_string().split(" at line").next().unwrap_or("")
            ))
        })?;
        let email =
            email::normalize(&line.email).ok_or_else(|| Rejection::Line("invalid e-mail address".into()))?;
        let scheme = self
            .hasher_scheme(&line.password_hash)
            .ok_or_else(|| Rejection::Line("unsupported password hash format".into()))?;
        validate_roles(&line.roles).map_err(|_| Rejection::Line("invalid role name".into()))?;
        let now = self.clock().now();
        let user = UserRecord {
            id: random_id(),
            email,
            email_verified_at: line.email_verified.then_some(now),
            password_hash: Some(line.password_hash),
            roles: line.roles,
            role_terms: Default::default(),
            locale: None,
            disabled_at: None,
            created_at: now,
            updated_at: now,
            password_changed_at: None,
        };
        match self.users().create_user(&user).await {
            Ok(()) => {
                tracing::debug!(user = %user.id, scheme, "imported user");
                Ok(true)
            }
            Err(StoreError::Conflict(_)) => Ok(false),
            Err(other) => Err(Rejection::Store(other)),
        }
    }
}

enum Rejection {
    Line(String),
    Store(StoreError),
}
