//! E-mail over real SMTP: `Mailer` delivers to Python's aiosmtpd (`SmtpSink`), and the
//! messages are read back from its maildir. A missing aiosmtpd skips these tests, unless
//! `TESSERA_REQUIRE_INTEROP=1` (CI).

use std::time::{Duration, Instant};

use tessera_idp::config::MailTransport;
use tessera_idp::mail::{self, Locale, Mailer, Outgoing};
use tessera_idp::secret::Secret;
use tessera_idp::Config;
use tessera_testkit::{free_port, SmtpSink};

// The mailer's own deadline for one message (three times the 10 s SMTP timeout): on a
// loaded two-core machine a first delivery to the sink once took longer than 10 s.
const WAIT: Duration = Duration::from_secs(30);

fn smtp_config(url: &str) -> Config {
    let mut config = Config::default();
    config.mail.transport = Some(MailTransport::Smtp);
    config.mail.smtp_url = Some(Secret::new(url));
    config.mail.from = "Tessera <no-reply@id.example.com>".to_owned();
    config
}

#[tokio::test]
async fn a_verification_email_is_delivered_over_smtp() {
    let Some(sink) = SmtpSink::start() else { return };
    let mailer = Mailer::from_config(&smtp_config(&sink.url())).unwrap();
    let link = "https://id.example.com/verify-email?token=v3r1fy_tok3n&lang=en";
    mailer
        .send(Outgoing::from_template(
            "Alice Example <alice@example.org>",
            mail::verification_email(Locale::En, link, 24),
        ))
        .await
        .unwrap();
    // A second message over the pooled connection.
    mailer
        .send(Outgoing::from_template(
            "alice@example.org",
            mail::password_changed_email(Locale::En),
        ))
        .await
        .unwrap();

    let messages = sink.wait_for(2, WAIT).await;
    assert_eq!(messages.len(), 2, "{messages:#?}");
    let verification = &messages[0];
    assert_eq!(verification.to, "\"Alice Example\" <alice@example.org>");
    assert!(
        verification.envelope_to.contains("alice@example.org"),
        "{verification:#?}"
    );
    assert_eq!(verification.from, "Tessera <no-reply@id.example.com>");
    assert_eq!(verification.subject, "Verify your e-mail address");
    assert!(verification.body.contains(link), "{}", verification.body);
    assert!(verification.body.contains("24 hours"), "{}", verification.body);
    let html = verification.html.as_deref().expect("an HTML alternative");
    assert!(
        html.contains("href=\"https://id.example.com/verify-email?token=v3r1fy_tok3n&amp;lang=en\""),
        "{html}"
    );
    assert!(verification.raw.contains("multipart/alternative"));

    let changed = &messages[1];
    assert_eq!(changed.subject, "Your password was changed");
    assert!(!changed.body.contains("http"), "{}", changed.body);
}

#[tokio::test]
async fn a_korean_subject_and_body_survive_smtp() {
    let Some(sink) = SmtpSink::start() else { return };
    let mailer = Mailer::from_config(&smtp_config(&sink.url())).unwrap();
    let link = "https://id.example.com/verify-email?token=한국어_토큰";
    let locale = Locale::from_accept_language("ko-KR,ko;q=0.9,en-US;q=0.8");
    assert_eq!(locale, Locale::Ko);
    mailer
        .send(Outgoing::from_template(
            "김민수 <minsu@example.kr>",
            mail::verification_email(locale, link, 24),
        ))
        .await
        .unwrap();

    let messages = sink.wait_for(1, WAIT).await;
    let received = &messages[0];
    assert_eq!(received.subject, "이메일 주소를 인증해 주세요");
    assert!(
        received.to.contains("김민수") && received.to.contains("<minsu@example.kr>"),
        "{}",
        received.to
    );
    assert!(received.body.contains(link), "{}", received.body);
    assert!(
        received.body.contains("24시간 동안 유효합니다"),
        "{}",
        received.body
    );
    let html = received.html.as_deref().expect("an HTML alternative");
    assert!(html.contains("<html lang=\"ko\">"), "{html}");
    // Headers on the wire are 7-bit: the Hangul travelled as encoded words.
    let head = received.raw.split("\n\n").next().unwrap_or_default();
    assert!(head.is_ascii(), "{head}");
}

#[tokio::test]
async fn an_unreachable_server_fails_fast_without_showing_the_password() {
    let port = free_port(); // Bound and released: nothing listens there now.
    let mailer = Mailer::from_config(&smtp_config(&format!("smtp://user:hunter2@127.0.0.1:{port}"))).unwrap();
    let started = Instant::now();
    let err = mailer
        .send(Outgoing::from_template(
            "alice@example.org",
            mail::password_reset_email(Locale::En, "https://id.example.com/reset?t=1", 30),
        ))
        .await
        .unwrap_err();
    assert!(
        started.elapsed() < mail::SMTP_TIMEOUT,
        "took {:?}",
        started.elapsed()
    );
    let text = err.to_string();
    assert!(text.contains(&format!("127.0.0.1:{port}")), "{text}");
    assert!(!text.contains("hunter2"), "{text}");
    assert!(!format!("{err:?}").contains("hunter2"), "{err:?}");
    assert!(!format!("{mailer:?}").contains("hunter2"), "{mailer:?}");
}

#[tokio::test]
async fn a_silent_server_times_out() {
    // Accepts connections and never says hello.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    let config = smtp_config(&format!("smtp://user:hunter2@127.0.0.1:{port}"));
    let mailer = Mailer::from_config_with_timeout(&config, Duration::from_millis(500)).unwrap();
    let started = Instant::now();
    let err = mailer
        .send(Outgoing::from_template(
            "alice@example.org",
            mail::password_changed_email(Locale::En),
        ))
        .await
        .unwrap_err();
    let elapsed = started.elapsed();
    assert!(
        elapsed >= Duration::from_millis(400),
        "gave up early: {elapsed:?}"
    );
    assert!(elapsed < Duration::from_secs(5), "took {elapsed:?}");
    assert!(!err.to_string().contains("hunter2"), "{err}");
    server.abort();
}
