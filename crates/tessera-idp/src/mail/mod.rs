//! E-mail: delivery of the account messages (verification, password reset, notices) and
//! their templates, in English and Korean.
//!
//! [`Mailer`] sends through one transport chosen by `mail.transport`: `file` writes each
//! message as `<id>.eml` into [`Config::mail_dir`] (the embedded default, for development
//! and tests), `smtp` delivers through `mail.smtp_url` (`smtp://`, `smtps://`,
//! `?tls=required|opportunistic`, credentials in the URL) over pooled connections, TLS by
//! rustls. Errors never carry the SMTP credentials.
//!
//! The templates render a plain-text and an HTML part from one description, so the two
//! cannot drift apart. Every interpolated value is HTML-escaped in the HTML part, control
//! characters are removed from the text part, and only the given link (and only an
//! `http(s)` one) ever becomes an `href`.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use lettre::message::header::ContentType;
use lettre::message::{Mailbox, MultiPart};
use lettre::{AsyncFileTransport, AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use crate::config::{Config, MailTransport};

mod locale;
mod templates;

pub use locale::Locale;
pub use templates::{
    account_exists_email, email_change_email, email_change_notice_email, escape, new_sign_in_email,
    password_changed_email, password_reset_email, recovery_code_used_email, sign_in_code_email,
    verification_email,
};

/// Default timeout of connecting to the SMTP server. One whole `send` (connect, greeting,
/// commands, data) gives up after three times the timeout: lettre bounds only the connect
/// of its async transport, so the deadline is what stops a server that stalls later.
pub const SMTP_TIMEOUT: Duration = Duration::from_secs(10);

/// Delivers e-mail. Cheap to clone (the SMTP connection pool is shared).
///
/// The `smtp` transport keeps a connection pool whose clean-up task runs on the Tokio
/// runtime, so [`Mailer::from_config`] must be called inside one for `smtp`.
#[derive(Clone)]
pub struct Mailer {
    from: Mailbox,
    transport: Transport,
    /// Deadline of one whole `send`.
    deadline: Duration,
    /// Texts that must never appear in an error message (the SMTP password, the URL).
    secrets: Arc<Vec<String>>,
}

#[derive(Clone)]
enum Transport {
    File {
        dir: PathBuf,
        transport: AsyncFileTransport<Tokio1Executor>,
    },
    Smtp {
        /// `host:port`, for error messages.
        server: String,
        transport: AsyncSmtpTransport<Tokio1Executor>,
    },
}

/// One message to send. `html`, when given, makes it `multipart/alternative` with `text`
/// as the plain-text alternative.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outgoing {
    /// The recipient: `user@example.com` or `Name <user@example.com>`.
    pub to: String,
    pub subject: String,
    pub text: String,
    pub html: Option<String>,
}

impl Outgoing {
    /// A message to `to` from a rendered template `(subject, text, html)`.
    pub fn from_template(to: impl Into<String>, (subject, text, html): (String, String, String)) -> Self {
        Outgoing {
            to: to.into(),
            subject,
            text,
            html: Some(html),
        }
    }
}

/// Why a message could not be built or delivered. The text never contains SMTP credentials.
#[derive(Debug, thiserror::Error)]
pub enum MailError {
    #[error("invalid configuration: `{key}` {reason}")]
    Config { key: &'static str, reason: String },
    #[error("invalid recipient address: {0}")]
    Recipient(String),
    #[error("cannot build the message: {0}")]
    Build(String),
    #[error("cannot write the message into {dir}: {reason}")]
    File { dir: String, reason: String },
    #[error("SMTP delivery through {server} failed: {reason}")]
    Smtp { server: String, reason: String },
    #[error("SMTP delivery through {server} timed out after {after:?}")]
    Timeout { server: String, after: Duration },
}

impl std::fmt::Debug for Mailer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let transport = match &self.transport {
            Transport::File { dir, .. } => format!("file({})", dir.display()),
            Transport::Smtp { server, .. } => format!("smtp({server})"),
        };
        f.debug_struct("Mailer")
            .field("from", &self.from.to_string())
            .field("transport", &transport)
            .finish()
    }
}

impl Mailer {
    /// The mailer `config.mail` describes, with [`SMTP_TIMEOUT`].
    pub fn from_config(config: &Config) -> Result<Mailer, MailError> {
        Mailer::from_config_with_timeout(config, SMTP_TIMEOUT)
    }

    /// As [`Mailer::from_config`], with `timeout` for connecting; a whole `send` gives up
    /// after three times that.
    pub fn from_config_with_timeout(config: &Config, timeout: Duration) -> Result<Mailer, MailError> {
        let from: Mailbox = config.mail.from.trim().parse().map_err(|e| MailError::Config {
            key: "mail.from",
            reason: format!("is not an e-mail address ({e}), e.g. \"Tessera <no-reply@example.com>\""),
        })?;
        let mut secrets = Vec::new();
        let transport = match config.mail.transport() {
            MailTransport::File => {
                // The directory is created at the first message, so a node that never
                // writes mail to disk (PostgreSQL, SMTP in practice) needs no local disk.
                let dir = config.mail_dir();
                Transport::File {
                    transport: AsyncFileTransport::new(&dir),
                    dir,
                }
            }
            MailTransport::Smtp => {
                let url = config.mail.smtp_url.as_ref().ok_or_else(|| MailError::Config {
                    key: "mail.smtp_url",
                    reason: "is required when mail.transport = \"smtp\"".to_owned(),
                })?;
                let (url, server) = smtp_url(url.expose(), &mut secrets)?;
                if tokio::runtime::Handle::try_current().is_err() {
                    return Err(MailError::Config {
                        key: "mail.transport",
                        reason: "\"smtp\" must be set up inside the Tokio runtime".to_owned(),
                    });
                }
                let builder =
                    AsyncSmtpTransport::<Tokio1Executor>::from_url(&url).map_err(|e| MailError::Config {
                        key: "mail.smtp_url",
                        reason: redact(&format!("is not usable ({e})"), &secrets),
                    })?;
                Transport::Smtp {
                    server,
                    transport: builder.timeout(Some(timeout)).build(),
                }
            }
        };
        Ok(Mailer {
            from,
            transport,
            deadline: timeout.saturating_mul(3),
            secrets: Arc::new(secrets),
        })
    }

    /// The From address.
    pub fn from_address(&self) -> &Mailbox {
        &self.from
    }

    /// Builds and delivers `message`.
    pub async fn send(&self, message: Outgoing) -> Result<(), MailError> {
        let email = self.build(message)?;
        match &self.transport {
            Transport::File { dir, transport } => {
                tokio::fs::create_dir_all(dir)
                    .await
                    .map_err(|e| MailError::File {
                        dir: dir.display().to_string(),
                        reason: e.to_string(),
                    })?;
                transport.send(email).await.map_err(|e| MailError::File {
                    dir: dir.display().to_string(),
                    reason: e.to_string(),
                })?;
            }
            Transport::Smtp { server, transport } => {
                match tokio::time::timeout(self.deadline, transport.send(email)).await {
                    Ok(Ok(_response)) => {}
                    Ok(Err(e)) => {
                        return Err(MailError::Smtp {
                            server: server.clone(),
                            reason: redact(&e.to_string(), &self.secrets),
                        })
                    }
                    Err(_elapsed) => {
                        return Err(MailError::Timeout {
                            server: server.clone(),
                            after: self.deadline,
                        })
                    }
                }
            }
        }
        Ok(())
    }

    fn build(&self, message: Outgoing) -> Result<Message, MailError> {
        let to: Mailbox = message
            .to
            .trim()
            .parse()
            .map_err(|e| MailError::Recipient(format!("{e}")))?;
        let builder = Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(one_line(&message.subject))
            .message_id(Some(message_id(self.from.email.domain())));
        let built = match message.html {
            Some(html) => builder.multipart(MultiPart::alternative_plain_html(message.text, html)),
            None => builder.header(ContentType::TEXT_PLAIN).body(message.text),
        };
        built.map_err(|e| MailError::Build(e.to_string()))
    }
}

/// Checks the SMTP URL, notes its password as a secret, and returns the URL for lettre
/// (`tls=starttls` accepted as a synonym of lettre's `tls=required`) and `host:port`.
fn smtp_url(text: &str, secrets: &mut Vec<String>) -> Result<(String, String), MailError> {
    let invalid = |reason: String| MailError::Config {
        key: "mail.smtp_url",
        reason,
    };
    let mut url = url::Url::parse(text.trim()).map_err(|e| invalid(format!("is not a URL ({e})")))?;
    secrets.push(text.to_owned());
    if let Some(password) = url.password() {
        secrets.push(password.to_owned());
        secrets.push(percent_decode(password));
    }
    secrets.retain(|s| !s.is_empty());
    // Longest first, so a secret containing another is replaced whole.
    secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
    let default_port = match url.scheme() {
        "smtps" => 465,
        "smtp" => {
            if url.query_pairs().any(|(k, _)| k == "tls") {
                587
            } else {
                25
            }
        }
        other => {
            return Err(invalid(format!(
                "must be an smtp:// or smtps:// URL, not {other}://"
            )))
        }
    };
    let host = match url.host_str() {
        Some(host) if !host.is_empty() => host.to_owned(),
        _ => return Err(invalid("has no host".to_owned())),
    };
    let mut tls = None;
    for (key, value) in url.query_pairs() {
        if key == "tls" {
            tls = Some(value.into_owned());
        }
    }
    match tls.as_deref() {
        None | Some("required") | Some("opportunistic") => {}
        Some("starttls") => {
            let pairs: Vec<(String, String)> = url
                .query_pairs()
                .map(|(k, v)| {
                    let v = if k == "tls" {
                        "required".to_owned()
                    } else {
                        v.into_owned()
                    };
                    (k.into_owned(), v)
                })
                .collect();
            url.query_pairs_mut().clear().extend_pairs(pairs);
        }
        Some(other) => {
            return Err(invalid(format!(
                "has tls={other}; use tls=required (STARTTLS) or tls=opportunistic, or smtps://"
            )))
        }
    }
    let server = format!("{host}:{}", url.port().unwrap_or(default_port));
    Ok((url.to_string(), server))
}

/// `%XX` sequences of a URL component decoded (lossily, as UTF-8).
fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            let hex = |b: u8| (b as char).to_digit(16);
            if let (Some(hi), Some(lo)) = (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                out.push((hi * 16 + lo) as u8);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// `text` with every secret replaced.
fn redact(text: &str, secrets: &[String]) -> String {
    let mut out = text.to_owned();
    for secret in secrets {
        if !secret.is_empty() {
            out = out.replace(secret.as_str(), "<redacted>");
        }
    }
    out
}

/// A fresh `<random@domain>` Message-ID.
fn message_id(domain: &str) -> String {
    let mut bytes = [0u8; 16];
    if aws_lc_rs::rand::fill(&mut bytes).is_err() {
        // The system RNG failing is fatal elsewhere; a Message-ID needs uniqueness only.
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default();
        bytes = nanos.to_le_bytes();
    }
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!("<{hex}@{domain}>")
}

/// `text` on one line: control characters (CR, LF, tab, …) become spaces.
fn one_line(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

#[cfg(test)]
mod tests;
