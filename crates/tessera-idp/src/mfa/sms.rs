//! SMS delivery of one-time codes through a pluggable sender (R11): `file` writes each
//! message as a JSON file (the embedded default, for development and tests — like the mail
//! `file` transport), `webhook` POSTs it as JSON to the deployment's SMS gateway, signed
//! with `X-Tessera-Signature: sha256=<HMAC-SHA256 of the body>`, three attempts with
//! doubling pauses, each bounded by a timeout. The message text is never logged.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use serde_json::json;

use crate::config::{Config, SmsSenderKind};
use crate::outbound::{is_success, sign, Outbound, Post, SIGNATURE_HEADER};
use crate::tokens::opaque::random_id;

/// Attempts of one webhook delivery, and the timeout of each.
const ATTEMPTS: u32 = 3;
const TIMEOUT: Duration = Duration::from_secs(5);

/// Where SMS messages go.
#[derive(Clone)]
pub enum SmsSender {
    File {
        dir: PathBuf,
    },
    Webhook {
        url: String,
        secret: String,
        outbound: Arc<dyn Outbound>,
    },
}

impl SmsSender {
    /// The sender `[mfa]` configures.
    pub fn from_config(config: &Config, outbound: Arc<dyn Outbound>) -> SmsSender {
        match (
            &config.mfa.sms_sender,
            &config.mfa.sms_webhook_url,
            &config.mfa.sms_webhook_secret,
        ) {
            (SmsSenderKind::Webhook, Some(url), Some(secret)) => SmsSender::Webhook {
                url: url.clone(),
                secret: secret.expose().to_owned(),
                outbound,
            },
            // Validation requires both for `webhook`; anything else writes files.
            _ => SmsSender::File {
                dir: config.sms_dir(),
            },
        }
    }

    /// Sends `text` to `to` (E.164) in the background; failures are logged without the text.
    pub fn send_later(&self, to: String, text: String) {
        let sender = self.clone();
        tokio::spawn(async move {
            if let Err(err) = sender.send(&to, &text).await {
                tracing::error!(error = %err, "sending an SMS failed");
            }
        });
    }

    async fn send(&self, to: &str, text: &str) -> Result<(), String> {
        let message = json!({ "to": to, "text": text, "purpose": "one_time_code" });
        match self {
            SmsSender::File { dir } => {
                tokio::fs::create_dir_all(dir)
                    .await
                    .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
                // Written aside, then renamed: a reader never sees half a message.
                let id = random_id();
                let partial = dir.join(format!(".{id}.partial"));
                let path = dir.join(format!("{id}.json"));
                tokio::fs::write(&partial, message.to_string())
                    .await
                    .map_err(|e| format!("cannot write {}: {e}", partial.display()))?;
                tokio::fs::rename(&partial, &path)
                    .await
                    .map_err(|e| format!("cannot write {}: {e}", path.display()))
            }
            SmsSender::Webhook {
                url,
                secret,
                outbound,
            } => {
                let body = message.to_string();
                let signature = sign(secret.as_bytes(), body.as_bytes());
                let mut pause = Duration::from_secs(1);
                let mut last_error = String::new();
                for attempt in 1..=ATTEMPTS {
                    let post = Post {
                        url: url.clone(),
                        content_type: "application/json",
                        headers: vec![(SIGNATURE_HEADER, signature.clone())],
                        body: body.clone().into_bytes(),
                        timeout: TIMEOUT,
                    };
                    match outbound.post(post).await {
                        Ok(status) if is_success(status) => return Ok(()),
                        Ok(status) => last_error = format!("status {status}"),
                        Err(err) => last_error = err.to_string(),
                    }
                    if attempt < ATTEMPTS {
                        tokio::time::sleep(pause).await;
                        pause *= 2;
                    }
                }
                Err(format!(
                    "the SMS webhook did not accept the message: {last_error}"
                ))
            }
        }
    }
}

/// A phone number in E.164 (`+` and 8–15 digits, no leading zero), spaces and dashes
/// removed; `None` otherwise.
pub fn e164(text: &str) -> Option<String> {
    let digits: String = text
        .chars()
        .filter(|c| !matches!(c, ' ' | '-' | '(' | ')'))
        .collect();
    let rest = digits.strip_prefix('+')?;
    let ok =
        (8..=15).contains(&rest.len()) && rest.bytes().all(|b| b.is_ascii_digit()) && !rest.starts_with('0');
    ok.then_some(digits)
}

/// `+821012345678` → `+82********78`: the factor's name.
pub fn masked(phone: &str) -> String {
    let count = phone.chars().count();
    phone
        .chars()
        .enumerate()
        .map(|(i, c)| if i < 3 || i + 2 >= count { c } else { '*' })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phone_numbers_are_e164() {
        assert_eq!(e164("+82 10-1234-5678").as_deref(), Some("+821012345678"));
        assert_eq!(e164("+1 (415) 555-0100").as_deref(), Some("+14155550100"));
        for bad in [
            "01012345678",
            "+0123456789",
            "+12",
            "+1234567890123456",
            "+82a1234567",
            "",
        ] {
            assert_eq!(e164(bad), None, "{bad}");
        }
        assert_eq!(masked("+821012345678"), "+82********78");
    }
}
