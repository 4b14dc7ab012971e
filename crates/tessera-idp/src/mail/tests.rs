use super::*;
use crate::secret::Secret;

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
        let message = Outgoing::from_template("Kim <kim@example.org>", verification_email(locale, link, 24));
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
    config.mail.transport = Some(MailTransport::Smtp);
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
    config.mail.transport = Some(MailTransport::Smtp);
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
