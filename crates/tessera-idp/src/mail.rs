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
        let transport = match config.mail.transport {
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

// ---------------------------------------------------------------------------------------
// Templates
// ---------------------------------------------------------------------------------------

/// The language of a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Locale {
    #[default]
    En,
    Ko,
}

impl Locale {
    /// The best locale for an `Accept-Language` header: the supported language (`ko`,
    /// `ko-KR`, … → Korean; `en`, `*` → English) with the highest q-value, the earlier on
    /// a tie; English when none is acceptable. `q=0` means "not acceptable".
    pub fn from_accept_language(header: &str) -> Locale {
        let mut best: Option<(u16, Locale)> = None;
        for item in header.split(',').take(64) {
            let mut parts = item.split(';');
            let tag = parts.next().unwrap_or_default().trim().to_ascii_lowercase();
            let mut q = 1000u16;
            for param in parts {
                if let Some((name, value)) = param.split_once('=') {
                    if name.trim().eq_ignore_ascii_case("q") {
                        q = parse_qvalue(value.trim()).unwrap_or(0);
                    }
                }
            }
            let primary = tag.split('-').next().unwrap_or_default();
            let locale = match primary {
                "ko" => Locale::Ko,
                "en" | "*" => Locale::En,
                _ => continue,
            };
            if q == 0 {
                continue;
            }
            if best.is_none_or(|(best_q, _)| q > best_q) {
                best = Some((q, locale));
            }
        }
        best.map(|(_, locale)| locale).unwrap_or_default()
    }

    /// The BCP 47 tag (`lang` of the HTML part).
    pub fn tag(self) -> &'static str {
        match self {
            Locale::En => "en",
            Locale::Ko => "ko",
        }
    }
}

/// An RFC 9110 qvalue in thousandths (`0`, `0.5`, `1.000`); `None` when malformed.
fn parse_qvalue(text: &str) -> Option<u16> {
    let (int, frac) = text.split_once('.').unwrap_or((text, ""));
    if frac.len() > 3 || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let frac_value = format!("{frac:0<3}").parse::<u16>().ok()?;
    match int {
        "0" => Some(frac_value),
        "1" if frac_value == 0 => Some(1000),
        _ => None,
    }
}

/// Verification of the e-mail address: `(subject, text, html)`.
pub fn verification_email(locale: Locale, link: &str, ttl_hours: u64) -> (String, String, String) {
    let t = match locale {
        Locale::En => Template {
            locale,
            subject: "Verify your e-mail address".to_owned(),
            before: vec![
                "Hello,".to_owned(),
                "Please confirm that this is your e-mail address by opening the link below.".to_owned(),
            ],
            details: Vec::new(),
            action: Some(Action {
                label: "Verify e-mail address",
                link,
            }),
            after: vec![format!(
                "The link is valid for {}. If you did not create an account, you can ignore this \
                 message.",
                plural(ttl_hours, "hour", "hours")
            )],
        },
        Locale::Ko => Template {
            locale,
            subject: "이메일 주소를 인증해 주세요".to_owned(),
            before: vec![
                "안녕하세요.".to_owned(),
                "아래 링크를 열어 본인의 이메일 주소임을 확인해 주세요.".to_owned(),
            ],
            details: Vec::new(),
            action: Some(Action {
                label: "이메일 주소 인증하기",
                link,
            }),
            after: vec![format!(
                "이 링크는 {ttl_hours}시간 동안 유효합니다. 계정을 만든 적이 없다면 이 메일을 \
                 무시하셔도 됩니다."
            )],
        },
    };
    t.render()
}

/// A password-reset link: `(subject, text, html)`.
pub fn password_reset_email(locale: Locale, link: &str, ttl_minutes: u64) -> (String, String, String) {
    let t = match locale {
        Locale::En => Template {
            locale,
            subject: "Reset your password".to_owned(),
            before: vec![
                "Hello,".to_owned(),
                "Someone, hopefully you, asked to reset the password of your account. To choose a new \
                 password, open the link below."
                    .to_owned(),
            ],
            details: Vec::new(),
            action: Some(Action {
                label: "Choose a new password",
                link,
            }),
            after: vec![format!(
                "The link is valid for {} and works once. If you did not ask for this, ignore this \
                 message: your password stays unchanged.",
                plural(ttl_minutes, "minute", "minutes")
            )],
        },
        Locale::Ko => Template {
            locale,
            subject: "비밀번호 재설정 안내".to_owned(),
            before: vec![
                "안녕하세요.".to_owned(),
                "계정의 비밀번호 재설정이 요청되었습니다. 새 비밀번호를 설정하려면 아래 링크를 열어 \
                 주세요."
                    .to_owned(),
            ],
            details: Vec::new(),
            action: Some(Action {
                label: "새 비밀번호 설정하기",
                link,
            }),
            after: vec![format!(
                "이 링크는 {ttl_minutes}분 동안 유효하며 한 번만 사용할 수 있습니다. 직접 요청하지 \
                 않으셨다면 이 메일을 무시하세요. 비밀번호는 바뀌지 않습니다."
            )],
        },
    };
    t.render()
}

/// Sent instead of a verification when someone signs up with an address that already has
/// an account (the sign-up response does not tell them apart): `(subject, text, html)`, with
/// a link to the password-reset page.
pub fn account_exists_email(locale: Locale, reset_link: &str) -> (String, String, String) {
    let t = match locale {
        Locale::En => Template {
            locale,
            subject: "You already have an account".to_owned(),
            before: vec![
                "Hello,".to_owned(),
                "Someone, hopefully you, tried to create an account with this e-mail address, but an \
                 account with this address already exists."
                    .to_owned(),
                "If you forgot your password, you can choose a new one:".to_owned(),
            ],
            details: Vec::new(),
            action: Some(Action {
                label: "Reset your password",
                link: reset_link,
            }),
            after: vec!["If this was not you, you can ignore this message: nothing was changed.".to_owned()],
        },
        Locale::Ko => Template {
            locale,
            subject: "이미 가입된 계정이 있습니다".to_owned(),
            before: vec![
                "안녕하세요.".to_owned(),
                "이 이메일 주소로 새 계정을 만들려는 시도가 있었지만, 이 주소로 가입된 계정이 이미 \
                 있습니다."
                    .to_owned(),
                "비밀번호를 잊으셨다면 아래 링크에서 새 비밀번호를 설정할 수 있습니다.".to_owned(),
            ],
            details: Vec::new(),
            action: Some(Action {
                label: "비밀번호 재설정하기",
                link: reset_link,
            }),
            after: vec![
                "본인이 시도한 것이 아니라면 이 메일을 무시하셔도 됩니다. 아무것도 변경되지 않았습니다."
                    .to_owned(),
            ],
        },
    };
    t.render()
}

/// A notice that the password was changed (no link): `(subject, text, html)`.
pub fn password_changed_email(locale: Locale) -> (String, String, String) {
    let t = match locale {
        Locale::En => Template {
            locale,
            subject: "Your password was changed".to_owned(),
            before: vec![
                "Hello,".to_owned(),
                "The password of your account was just changed.".to_owned(),
                "If this was you, there is nothing else to do. If it was not you, reset your password \
                 right away and contact support."
                    .to_owned(),
            ],
            details: Vec::new(),
            action: None,
            after: Vec::new(),
        },
        Locale::Ko => Template {
            locale,
            subject: "비밀번호가 변경되었습니다".to_owned(),
            before: vec![
                "안녕하세요.".to_owned(),
                "계정의 비밀번호가 방금 변경되었습니다.".to_owned(),
                "본인이 변경하셨다면 따로 하실 일은 없습니다. 본인이 아니라면 즉시 비밀번호를 \
                 재설정하고 고객 지원팀에 연락해 주세요."
                    .to_owned(),
            ],
            details: Vec::new(),
            action: None,
            after: Vec::new(),
        },
    };
    t.render()
}

/// A notice of a new sign-in, with a link that ends that session: `(subject, text, html)`.
/// `when`, `ip` and `user_agent` are shown as given (escaped, on one line, shortened).
pub fn new_sign_in_email(
    locale: Locale,
    when: &str,
    ip: &str,
    user_agent: &str,
    end_session_link: &str,
) -> (String, String, String) {
    let details = |labels: [&'static str; 3]| {
        vec![
            (labels[0], shorten(when, 100)),
            (labels[1], shorten(ip, 100)),
            (labels[2], shorten(user_agent, 200)),
        ]
    };
    let t = match locale {
        Locale::En => Template {
            locale,
            subject: "New sign-in to your account".to_owned(),
            before: vec![
                "Hello,".to_owned(),
                "Your account was just used to sign in:".to_owned(),
            ],
            details: details(["When", "IP address", "Device"]),
            action: Some(Action {
                label: "This wasn't me: end that session",
                link: end_session_link,
            }),
            after: vec![
                "If this was you, there is nothing else to do. If it was not you, end that session with \
                 the link above and change your password."
                    .to_owned(),
            ],
        },
        Locale::Ko => Template {
            locale,
            subject: "새로운 로그인 알림".to_owned(),
            before: vec![
                "안녕하세요.".to_owned(),
                "방금 계정에 새로운 로그인이 있었습니다.".to_owned(),
            ],
            details: details(["시간", "IP 주소", "기기"]),
            action: Some(Action {
                label: "본인이 아닙니다: 해당 세션 종료하기",
                link: end_session_link,
            }),
            after: vec![
                "본인이라면 따로 하실 일은 없습니다. 본인이 아니라면 위 링크로 해당 세션을 종료하고 \
                 비밀번호를 변경해 주세요."
                    .to_owned(),
            ],
        },
    };
    t.render()
}

/// One message described once, rendered as plain text and as HTML.
struct Template<'a> {
    locale: Locale,
    subject: String,
    /// Paragraphs before the details and the action.
    before: Vec<String>,
    /// Labelled values (user-supplied values included).
    details: Vec<(&'static str, String)>,
    action: Option<Action<'a>>,
    /// Paragraphs after the action.
    after: Vec<String>,
}

struct Action<'a> {
    label: &'static str,
    link: &'a str,
}

impl Template<'_> {
    fn render(self) -> (String, String, String) {
        let link = self.action.as_ref().map(|a| one_line(a.link.trim()));

        // Plain text.
        let mut text = String::new();
        for p in &self.before {
            text.push_str(p);
            text.push_str("\n\n");
        }
        if !self.details.is_empty() {
            for (label, value) in &self.details {
                text.push_str(&format!("{label}: {}\n", one_line(value)));
            }
            text.push('\n');
        }
        if let (Some(action), Some(link)) = (&self.action, &link) {
            text.push_str(&format!("{}:\n{link}\n\n", action.label));
        }
        for p in &self.after {
            text.push_str(p);
            text.push_str("\n\n");
        }
        let text = format!("{}\n", text.trim_end());

        // HTML.
        let copy_hint = match self.locale {
            Locale::En => "If the link does not open, copy this address into your browser:",
            Locale::Ko => "링크가 열리지 않으면 아래 주소를 복사해 브라우저에 붙여 넣으세요.",
        };
        let mut html = String::new();
        html.push_str(&format!(
            "<!DOCTYPE html>\n<html lang=\"{}\">\n<head>\n<meta charset=\"utf-8\">\n\
             <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
             <title>{}</title>\n</head>\n\
             <body style=\"margin:0;padding:16px;font-family:sans-serif;font-size:16px;\
             line-height:1.5;color:#1a1a1a;background:#ffffff\">\n\
             <div style=\"max-width:36em;margin:0 auto\">\n",
            self.locale.tag(),
            escape(&self.subject)
        ));
        for p in &self.before {
            html.push_str(&format!("<p>{}</p>\n", escape(p)));
        }
        if !self.details.is_empty() {
            html.push_str("<ul>\n");
            for (label, value) in &self.details {
                html.push_str(&format!(
                    "<li><strong>{}:</strong> {}</li>\n",
                    escape(label),
                    escape(&one_line(value))
                ));
            }
            html.push_str("</ul>\n");
        }
        if let (Some(action), Some(link)) = (&self.action, &link) {
            if is_web_link(link) {
                html.push_str(&format!(
                    "<p><a href=\"{}\" style=\"display:inline-block;padding:10px 16px;\
                     background:#1f4fd1;color:#ffffff;text-decoration:none;border-radius:4px\">{}</a></p>\n\
                     <p>{}<br>\n<span style=\"word-break:break-all\">{}</span></p>\n",
                    escape(link),
                    escape(action.label),
                    escape(copy_hint),
                    escape(link)
                ));
            } else {
                // Not an http(s) link: shown, never made clickable.
                html.push_str(&format!(
                    "<p>{}:<br>\n<span style=\"word-break:break-all\">{}</span></p>\n",
                    escape(action.label),
                    escape(link)
                ));
            }
        }
        for p in &self.after {
            html.push_str(&format!("<p>{}</p>\n", escape(p)));
        }
        html.push_str("</div>\n</body>\n</html>\n");

        (self.subject, text, html)
    }
}

fn is_web_link(link: &str) -> bool {
    let lower = link.to_ascii_lowercase();
    (lower.starts_with("https://") || lower.starts_with("http://")) && !link.contains(char::is_whitespace)
}

fn plural(n: u64, one: &str, many: &str) -> String {
    if n == 1 {
        format!("1 {one}")
    } else {
        format!("{n} {many}")
    }
}

/// At most `max` characters of `text`, on one line, with `…` when cut.
fn shorten(text: &str, max: usize) -> String {
    let line = one_line(text.trim());
    if line.chars().count() <= max {
        line
    } else {
        let mut cut: String = line.chars().take(max.saturating_sub(1)).collect();
        cut.push('…');
        cut
    }
}

/// HTML-escapes text for element content and quoted attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;
    use crate::secret::Secret;

    #[test]
    fn accept_language_picks_the_best_supported_language() {
        let cases = [
            ("", Locale::En),
            ("ko", Locale::Ko),
            ("ko-KR", Locale::Ko),
            ("KO-kr,en;q=0.8", Locale::Ko),
            ("en-US,en;q=0.9,ko;q=0.8", Locale::En),
            ("en;q=0.5, ko;q=0.9", Locale::Ko),
            ("fr-FR, ko;q=0.1", Locale::Ko),
            ("fr-FR, de", Locale::En),
            ("ko;q=0, en;q=0.1", Locale::En),
            ("ko;q=0", Locale::En),
            ("ko;q=0.5, *;q=0.8", Locale::En),
            ("*;q=0.5, ko-KR;q=0.6", Locale::Ko),
            ("en, ko", Locale::En),
            ("ko;q=1.0, en", Locale::Ko),
            ("ko;q=banana, en;q=0.1", Locale::En),
            ("kok", Locale::En),
            ("  ko-KR ; q=0.7 ,en;q=0.6", Locale::Ko),
        ];
        for (header, expected) in cases {
            assert_eq!(Locale::from_accept_language(header), expected, "{header:?}");
        }
    }

    #[test]
    fn qvalues_follow_the_grammar() {
        assert_eq!(parse_qvalue("1"), Some(1000));
        assert_eq!(parse_qvalue("1.000"), Some(1000));
        assert_eq!(parse_qvalue("0.8"), Some(800));
        assert_eq!(parse_qvalue("0.125"), Some(125));
        assert_eq!(parse_qvalue("0"), Some(0));
        assert_eq!(parse_qvalue("1.5"), None);
        assert_eq!(parse_qvalue("0.1234"), None);
        assert_eq!(parse_qvalue("2"), None);
    }

    fn all_templates(locale: Locale, link: &str, user: &str) -> Vec<(String, String, String)> {
        vec![
            verification_email(locale, link, 24),
            password_reset_email(locale, link, 30),
            new_sign_in_email(locale, user, user, user, link),
            account_exists_email(locale, link),
        ]
    }

    #[test]
    fn templates_carry_the_link_in_both_parts() {
        let link = "https://id.example.com/verify?token=abc&x=1";
        for locale in [Locale::En, Locale::Ko] {
            for (subject, text, html) in all_templates(locale, link, "Firefox") {
                assert!(!subject.is_empty());
                assert!(text.contains(link), "{text}");
                assert!(
                    html.contains("href=\"https://id.example.com/verify?token=abc&amp;x=1\""),
                    "{html}"
                );
                assert!(html.contains(&format!("lang=\"{}\"", locale.tag())));
                assert_eq!(html.matches("href=").count(), 1, "{html}");
                assert!(!html.contains("<img") && !html.contains("<script"), "{html}");
            }
        }
        let (subject, text, html) = verification_email(Locale::Ko, link, 24);
        assert_eq!(subject, "이메일 주소를 인증해 주세요");
        assert!(text.contains("24시간"));
        assert!(html.contains("24시간"));
        let (_, text, _) = verification_email(Locale::En, link, 1);
        assert!(text.contains("1 hour."), "{text}");
        let (_, text, _) = password_reset_email(Locale::En, link, 30);
        assert!(text.contains("30 minutes"), "{text}");
    }

    #[test]
    fn password_changed_has_no_link() {
        for locale in [Locale::En, Locale::Ko] {
            let (subject, text, html) = password_changed_email(locale);
            assert!(!subject.is_empty());
            assert!(!text.contains("http"), "{text}");
            assert!(!html.contains("href"), "{html}");
        }
    }

    #[test]
    fn interpolated_values_are_escaped_and_only_the_link_is_an_href() {
        let evil = "<script>alert('x')</script>\"><a href=\"https://evil.example\">";
        for locale in [Locale::En, Locale::Ko] {
            for (_, _, html) in all_templates(locale, evil, evil) {
                assert!(!html.contains("<script>"), "{html}");
                assert!(
                    html.contains("&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;&quot;&gt;"),
                    "{html}"
                );
                assert!(!html.contains("href=\"https://evil.example\""), "{html}");
                // Not an http(s) link: never clickable.
                assert!(!html.contains("href=\""), "{html}");
            }
            let link = "https://id.example.com/s/end?sid=1";
            let (_, text, html) = new_sign_in_email(locale, "2025-01-01 <b>", "127.0.0.1", evil, link);
            assert!(!html.contains("<script>"), "{html}");
            assert!(html.contains("2025-01-01 &lt;b&gt;"), "{html}");
            assert_eq!(html.matches("href=\"").count(), 1, "{html}");
            assert!(html.contains(&format!("href=\"{link}\"")), "{html}");
            assert!(text.contains(evil), "the text part shows values as they are");
        }
    }

    #[test]
    fn javascript_links_are_not_clickable_and_text_values_stay_on_one_line() {
        let (_, _, html) = verification_email(Locale::En, "javascript:alert(1)", 24);
        assert!(!html.contains("href"), "{html}");
        let (_, text, _) = new_sign_in_email(
            Locale::En,
            "now",
            "10.0.0.1",
            "UA\r\n\r\nClick https://evil.example",
            "https://id.example.com/end",
        );
        assert!(
            text.contains("Device: UA    Click https://evil.example\n"),
            "{text}"
        );
        let long = "x".repeat(1000);
        let (_, text, _) = new_sign_in_email(Locale::En, "now", "ip", &long, "https://a.example/");
        assert!(!text.contains(&long));
        assert!(text.contains('…'));
    }

    fn file_config(dir: &std::path::Path) -> Config {
        let mut config = Config {
            data_dir: dir.to_path_buf(),
            ..Config::default()
        };
        config.mail.from = "Tessera <no-reply@id.example.com>".to_owned();
        config
    }

    /// The decoded body of every text part (quoted-printable or base64), concatenated.
    fn decoded_bodies(eml: &str) -> String {
        let mut out = String::new();
        let lines = eml.split("\r\n");
        let mut encoding = String::new();
        let mut in_headers = true;
        let mut part = String::new();
        let flush = |encoding: &str, part: &mut String, out: &mut String| {
            match encoding {
                "base64" => {
                    use base64::Engine as _;
                    let clean: String = part.chars().filter(|c| !c.is_whitespace()).collect();
                    if let Ok(bytes) = base64::engine::general_purpose::STANDARD.decode(clean) {
                        out.push_str(&String::from_utf8_lossy(&bytes));
                    }
                }
                "quoted-printable" => {
                    let joined = part.replace("=\n", "");
                    let bytes = joined.as_bytes();
                    let mut decoded = Vec::new();
                    let mut i = 0;
                    while i < bytes.len() {
                        if bytes[i] == b'=' && i + 2 < bytes.len() {
                            if let Ok(b) = u8::from_str_radix(&joined[i + 1..i + 3], 16) {
                                decoded.push(b);
                                i += 3;
                                continue;
                            }
                        }
                        decoded.push(bytes[i]);
                        i += 1;
                    }
                    out.push_str(&String::from_utf8_lossy(&decoded));
                }
                _ => out.push_str(part),
            }
            out.push('\n');
            part.clear();
        };
        for line in lines {
            if line.starts_with("--") {
                flush(&encoding, &mut part, &mut out);
                in_headers = true;
                encoding.clear();
                continue;
            }
            if in_headers {
                if line.is_empty() {
                    in_headers = false;
                } else if let Some(value) = line.strip_prefix("Content-Transfer-Encoding: ") {
                    encoding = value.trim().to_ascii_lowercase();
                }
                continue;
            }
            part.push_str(line);
            part.push('\n');
        }
        flush(&encoding, &mut part, &mut out);
        out
    }

    #[tokio::test]
    async fn the_file_transport_writes_a_parseable_eml() {
        let dir = tempfile::tempdir().unwrap();
        let config = file_config(dir.path());
        let mailer = Mailer::from_config(&config).unwrap();
        let link = "https://id.example.com/verify?token=tok_123";
        for locale in [Locale::En, Locale::Ko] {
            let message =
                Outgoing::from_template("Kim <kim@example.org>", verification_email(locale, link, 24));
            mailer.send(message).await.unwrap();
        }
        let mut files: Vec<_> = std::fs::read_dir(config.mail_dir())
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        files.sort();
        assert_eq!(files.len(), 2);
        let mut subjects = Vec::new();
        for path in files {
            assert_eq!(path.extension().unwrap(), "eml");
            let eml = std::fs::read_to_string(&path).unwrap();
            let (head, _) = eml
                .split_once("\r\n\r\n")
                .expect("headers end with an empty line");
            for name in [
                "From: ",
                "To: ",
                "Subject: ",
                "Date: ",
                "Message-ID: ",
                "MIME-Version: 1.0",
            ] {
                assert!(head.contains(name), "{name} missing:\n{head}");
            }
            assert!(head.contains("Content-Type: multipart/alternative"), "{head}");
            assert!(head.contains("kim@example.org"), "{head}");
            assert!(head.contains("@id.example.com>"), "{head}");
            let bodies = decoded_bodies(&eml);
            assert!(bodies.contains(link), "{bodies}");
            assert!(bodies.contains(&format!("href=\"{link}\"")), "{bodies}");
            subjects.push(
                head.lines()
                    .find(|l| l.starts_with("Subject: "))
                    .unwrap()
                    .to_owned(),
            );
        }
        assert!(
            subjects
                .iter()
                .any(|s| s == "Subject: Verify your e-mail address"),
            "{subjects:?}"
        );
        // The Korean subject is an RFC 2047 encoded word.
        assert!(subjects.iter().any(|s| s.contains("=?utf-8?")), "{subjects:?}");
    }

    #[tokio::test]
    async fn a_text_only_message_and_header_injection() {
        let dir = tempfile::tempdir().unwrap();
        let config = file_config(dir.path());
        let mailer = Mailer::from_config(&config).unwrap();
        mailer
            .send(Outgoing {
                to: "a@example.org".to_owned(),
                subject: "Hi\r\nBcc: victim@example.org".to_owned(),
                text: "plain body".to_owned(),
                html: None,
            })
            .await
            .unwrap();
        let path = std::fs::read_dir(config.mail_dir())
            .unwrap()
            .next()
            .unwrap()
            .unwrap()
            .path();
        let eml = std::fs::read_to_string(path).unwrap();
        let (head, body) = eml.split_once("\r\n\r\n").unwrap();
        assert!(!head.to_ascii_lowercase().contains("\r\nbcc:"), "{head}");
        assert!(head.contains("Content-Type: text/plain; charset=utf-8"), "{head}");
        assert!(body.contains("plain body"));

        let err = mailer
            .send(Outgoing {
                to: "not an address\r\nBcc: x@example.org".to_owned(),
                subject: "s".to_owned(),
                text: "t".to_owned(),
                html: None,
            })
            .await
            .unwrap_err();
        assert!(matches!(err, MailError::Recipient(_)), "{err}");
    }

    #[test]
    fn a_bad_from_address_names_the_key() {
        let dir = tempfile::tempdir().unwrap();
        let mut config = file_config(dir.path());
        config.mail.from = "Tessera <not-an-address>".to_owned();
        let err = Mailer::from_config(&config).unwrap_err().to_string();
        assert!(err.contains("`mail.from`"), "{err}");
    }

    #[tokio::test]
    async fn smtp_urls_are_checked_and_their_secrets_kept_out_of_errors() {
        let dir = tempfile::tempdir().unwrap();
        let mut config = file_config(dir.path());
        config.mail.transport = MailTransport::Smtp;
        for url in [
            "http://user:hunter2@mail.example.com",
            "smtp://user:hunter2@mail.example.com?tls=maybe",
            "not a url hunter2",
            "smtp://user:hunter2@:25",
        ] {
            config.mail.smtp_url = Some(Secret::new(url));
            let err = Mailer::from_config(&config).unwrap_err().to_string();
            assert!(err.contains("`mail.smtp_url`"), "{err}");
            assert!(!err.contains("hunter2"), "{err}");
        }
        for url in [
            "smtp://127.0.0.1:2525",
            "smtp://user:hunter2@mail.example.com:587?tls=required",
            "smtp://user:hunter2@mail.example.com:587?tls=starttls",
            "smtp://mail.example.com?tls=opportunistic",
            "smtps://user:hunter2@mail.example.com",
        ] {
            config.mail.smtp_url = Some(Secret::new(url));
            let mailer = Mailer::from_config(&config).unwrap();
            let debug = format!("{mailer:?}");
            assert!(!debug.contains("hunter2"), "{debug}");
            assert!(debug.contains("smtp("), "{debug}");
        }
        config.mail.smtp_url = Some(Secret::new("smtps://mail.example.com"));
        let debug = format!("{:?}", Mailer::from_config(&config).unwrap());
        assert!(debug.contains("mail.example.com:465"), "{debug}");
    }

    #[test]
    fn smtp_outside_a_runtime_is_an_error_not_a_panic() {
        let dir = tempfile::tempdir().unwrap();
        let mut config = file_config(dir.path());
        config.mail.transport = MailTransport::Smtp;
        config.mail.smtp_url = Some(Secret::new("smtp://127.0.0.1:2525"));
        let err = Mailer::from_config(&config).unwrap_err().to_string();
        assert!(err.contains("Tokio"), "{err}");
    }

    #[test]
    fn redaction_replaces_every_secret() {
        let mut secrets = Vec::new();
        smtp_url("smtp://user:p%40ss%2Fword@host:25", &mut secrets).unwrap();
        let text = "failed for smtp://user:p%40ss%2Fword@host:25 with p@ss/word and p%40ss%2Fword";
        let redacted = redact(text, &secrets);
        assert!(
            !redacted.contains("p@ss/word") && !redacted.contains("p%40ss"),
            "{redacted}"
        );
    }
}
