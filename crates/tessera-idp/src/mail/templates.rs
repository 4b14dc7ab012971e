//! The account messages, in English and Korean, each described once and rendered as a
//! plain-text and an HTML part.

use super::{one_line, Locale};

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

/// The confirmation of a new address, sent to that address: `(subject, text, html)`.
pub fn email_change_email(locale: Locale, link: &str, ttl_hours: u64) -> (String, String, String) {
    let t = match locale {
        Locale::En => Template {
            locale,
            subject: "Confirm your new e-mail address".to_owned(),
            before: vec![
                "Hello,".to_owned(),
                "Someone asked to use this address for their account. Open the link below to \
                 confirm it; the account keeps its old address until you do."
                    .to_owned(),
            ],
            details: Vec::new(),
            action: Some(Action {
                label: "Confirm new address",
                link,
            }),
            after: vec![format!(
                "The link is valid for {}. If you did not ask for this, ignore this message.",
                plural(ttl_hours, "hour", "hours")
            )],
        },
        Locale::Ko => Template {
            locale,
            subject: "새 이메일 주소를 확인해 주세요".to_owned(),
            before: vec![
                "안녕하세요.".to_owned(),
                "계정의 이메일 주소를 이 주소로 바꾸려는 요청이 있었습니다. 아래 링크를 열어 확인해 \
                 주세요. 확인하기 전까지는 기존 주소가 그대로 사용됩니다."
                    .to_owned(),
            ],
            details: Vec::new(),
            action: Some(Action {
                label: "새 주소 확인하기",
                link,
            }),
            after: vec![format!(
                "이 링크는 {ttl_hours}시간 동안 유효합니다. 요청한 적이 없다면 이 메일을 무시하셔도 됩니다."
            )],
        },
    };
    t.render()
}

/// The notice to the old address that a change to `new_address` was asked for:
/// `(subject, text, html)`.
pub fn email_change_notice_email(locale: Locale, new_address: &str) -> (String, String, String) {
    let t = match locale {
        Locale::En => Template {
            locale,
            subject: "A change of your e-mail address was requested".to_owned(),
            before: vec![
                "Hello,".to_owned(),
                "Someone signed in to your account asked to change its e-mail address. The change \
                 takes effect only when the new address is confirmed."
                    .to_owned(),
            ],
            details: vec![("New address", new_address.to_owned())],
            action: None,
            after: vec![
                "If this was not you, change your password right away and contact support.".to_owned(),
            ],
        },
        Locale::Ko => Template {
            locale,
            subject: "이메일 주소 변경이 요청되었습니다".to_owned(),
            before: vec![
                "안녕하세요.".to_owned(),
                "계정에 로그인한 사용자가 이메일 주소 변경을 요청했습니다. 새 주소가 확인되어야 \
                 변경됩니다."
                    .to_owned(),
            ],
            details: vec![("새 주소", new_address.to_owned())],
            action: None,
            after: vec!["본인이 아니라면 즉시 비밀번호를 변경하고 고객 지원팀에 연락해 주세요.".to_owned()],
        },
    };
    t.render()
}

/// A one-time code to sign in (or to confirm the address as a factor), valid `minutes`:
/// `(subject, text, html)`. No link: the code is typed where it was asked for.
pub fn sign_in_code_email(locale: Locale, code: &str, minutes: u64) -> (String, String, String) {
    let t = match locale {
        Locale::En => Template {
            locale,
            subject: format!("Your sign-in code: {code}"),
            before: vec![
                "Hello,".to_owned(),
                format!(
                    "Your verification code is {code}. It works once, for {}.",
                    plural(minutes, "minute", "minutes")
                ),
                "If you did not try to sign in, someone knows your password: change it right away.".to_owned(),
            ],
            details: Vec::new(),
            action: None,
            after: Vec::new(),
        },
        Locale::Ko => Template {
            locale,
            subject: format!("로그인 인증 코드: {code}"),
            before: vec![
                "안녕하세요.".to_owned(),
                format!("인증 코드는 {code}입니다. {minutes}분 동안 한 번만 사용할 수 있습니다."),
                "로그인을 시도하지 않으셨다면 다른 사람이 비밀번호를 알고 있는 것입니다. 즉시 비밀번호를 변경해 주세요."
                    .to_owned(),
            ],
            details: Vec::new(),
            action: None,
            after: Vec::new(),
        },
    };
    t.render()
}

/// A notice that a recovery code was used to sign in, with how many are left (no link):
/// `(subject, text, html)`.
pub fn recovery_code_used_email(locale: Locale, left: u64) -> (String, String, String) {
    let t = match locale {
        Locale::En => Template {
            locale,
            subject: "A recovery code was used to sign in".to_owned(),
            before: vec![
                "Hello,".to_owned(),
                "One of your recovery codes was just used to sign in to your account instead of your \
                 authenticator app."
                    .to_owned(),
                format!(
                    "You have {} left. If this was not you, sign in, create new recovery codes and change \
                     your password right away.",
                    plural(left, "unused code", "unused codes")
                ),
            ],
            details: Vec::new(),
            action: None,
            after: Vec::new(),
        },
        Locale::Ko => Template {
            locale,
            subject: "복구 코드로 로그인했습니다".to_owned(),
            before: vec![
                "안녕하세요.".to_owned(),
                "방금 인증 앱 대신 복구 코드 하나로 계정에 로그인했습니다.".to_owned(),
                format!(
                    "사용하지 않은 복구 코드가 {left}개 남았습니다. 본인이 아니라면 즉시 로그인하여 복구 코드를 \
                     새로 만들고 비밀번호를 변경해 주세요."
                ),
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
    sessions_page: &str,
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
                format!("Every session and device of your account: {sessions_page}"),
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
                format!("계정의 모든 세션과 기기: {sessions_page}"),
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
    use super::*;

    fn all_templates(locale: Locale, link: &str, user: &str) -> Vec<(String, String, String)> {
        vec![
            verification_email(locale, link, 24),
            password_reset_email(locale, link, 30),
            new_sign_in_email(locale, user, user, user, link, link),
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
    fn recovery_code_notices_say_how_many_are_left_and_have_no_link() {
        let (_, text, html) = recovery_code_used_email(Locale::En, 1);
        assert!(text.contains("You have 1 unused code left"), "{text}");
        let (_, text, _) = recovery_code_used_email(Locale::En, 9);
        assert!(text.contains("9 unused codes"), "{text}");
        let (subject, text, html_ko) = recovery_code_used_email(Locale::Ko, 9);
        assert!(subject.contains("복구 코드") && text.contains("9개"), "{text}");
        for part in [&html, &html_ko] {
            assert!(!part.contains("href"), "{part}");
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
            let (_, text, html) = new_sign_in_email(locale, "2025-01-01 <b>", "127.0.0.1", evil, link, link);
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
            "https://id.example.com/account/sessions",
        );
        assert!(
            text.contains("Device: UA    Click https://evil.example\n"),
            "{text}"
        );
        let long = "x".repeat(1000);
        let (_, text, _) = new_sign_in_email(
            Locale::En,
            "now",
            "ip",
            &long,
            "https://a.example/",
            "https://a.example/s",
        );
        assert!(!text.contains(&long));
        assert!(text.contains('…'));
    }
}
