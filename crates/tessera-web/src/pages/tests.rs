#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use axum::http::{header, StatusCode};
use axum::response::IntoResponse;

use super::*;

const EVIL: &str = "<script>alert(\"x\")</script>'";

fn hidden_pairs() -> Vec<(&'static str, &'static str)> {
    vec![
        ("client_id", "web-app"),
        ("state", "\"><script>alert(1)</script>"),
        ("x\"><script>", "1"),
    ]
}

fn login(error: Option<LoginError>, hint: Option<&str>, locale: Locale) -> Page {
    let hidden = hidden_pairs();
    login_page(
        locale,
        &LoginView {
            action: "/authorize/login?a=1&b=2",
            csrf: "csrf\"token",
            client_name: EVIL,
            login_hint: hint,
            error,
            hidden: Hidden(&hidden),
            passkey_action: None,
            providers: &[],
        },
    )
}

fn consent(locale: Locale, scopes: &[&str]) -> Page {
    let hidden = hidden_pairs();
    consent_page(
        locale,
        &ConsentView {
            action: "/authorize/consent",
            csrf: "tok",
            client_name: EVIL,
            scopes,
            hidden: Hidden(&hidden),
        },
    )
}

fn logout(locale: Locale, client_name: Option<&str>) -> Page {
    let hidden = hidden_pairs();
    logout_confirm_page(
        locale,
        &LogoutView {
            action: "/logout",
            csrf: "tok",
            client_name,
            hidden: Hidden(&hidden),
        },
    )
}

fn error_kinds() -> Vec<ErrorKind> {
    vec![
        ErrorKind::InvalidClient,
        ErrorKind::InvalidRedirectUri,
        ErrorKind::InvalidRequest(format!("missing response_type {EVIL}")),
        ErrorKind::SessionExpired,
        ErrorKind::ServerError,
        ErrorKind::NotFound,
        ErrorKind::LinkInvalid,
    ]
}

/// Every page in every state, with hostile values wherever the caller supplies text.
fn all_pages(locale: Locale) -> Vec<Page> {
    let mut pages = vec![
        login(None, None, locale),
        login(None, Some(EVIL), locale),
        login(
            Some(LoginError::InvalidCredentials),
            Some("kim@example.org"),
            locale,
        ),
        login(
            Some(LoginError::TooManyAttempts { retry_after_secs: 90 }),
            None,
            locale,
        ),
        login(Some(LoginError::EmailNotVerified), None, locale),
        login(Some(LoginError::AccountDisabled), None, locale),
        login(Some(LoginError::SessionLimit), None, locale),
        consent(
            locale,
            &[
                "openid",
                "profile",
                "email",
                "address",
                "phone",
                "offline_access",
                EVIL,
            ],
        ),
        consent(locale, &[]),
        logout(locale, Some(EVIL)),
        logout(locale, None),
        logged_out_page(locale),
        end_sign_in_page(
            locale,
            &EndSignInView {
                action: "/auth/sign-in/end",
                csrf: "tok",
                when: EVIL,
                hidden: Hidden(&[("token", EVIL)]),
            },
        ),
        sign_in_ended_page(locale),
        sign_in_kept_page(locale),
    ];
    for kind in error_kinds() {
        pages.push(error_page(locale, StatusCode::BAD_REQUEST, kind));
    }
    pages
}

/// The opening tags `<name …>` in `html`.
fn tags<'a>(html: &'a str, name: &str) -> Vec<&'a str> {
    let open = format!("<{name}");
    let mut out = Vec::new();
    let mut rest = html;
    while let Some(start) = rest.find(&open) {
        let after = &rest[start..];
        let next = after.as_bytes().get(open.len()).copied();
        let end = after.find('>').unwrap();
        if matches!(next, Some(b' ' | b'>' | b'\n')) {
            out.push(&after[..=end]);
        }
        rest = &after[end + 1..];
    }
    out
}

/// The value of attribute `name` in `tag`, as written (still escaped).
fn attr<'a>(tag: &'a str, name: &str) -> Option<&'a str> {
    let key = format!(" {name}=\"");
    let start = tag.find(&key)? + key.len();
    let len = tag[start..].find('"').unwrap();
    Some(&tag[start..start + len])
}

fn has_attr(tag: &str, name: &str) -> bool {
    tag.contains(&format!(" {name}=\""))
        || tag.contains(&format!(" {name}>"))
        || tag.contains(&format!(" {name} "))
}

#[test]
fn locale_prefers_ui_locales_then_accept_language() {
    let cases = [
        (None, None, Locale::En),
        (Some("ko"), None, Locale::Ko),
        (Some("ko-KR en"), Some("en"), Locale::Ko),
        (Some("fr-CA KO-kr en"), None, Locale::Ko),
        (Some("fr de"), Some("ko-KR,ko;q=0.9"), Locale::Ko),
        (Some("en-US ko"), Some("ko"), Locale::En),
        (Some(""), Some("ko"), Locale::Ko),
        (Some("   "), None, Locale::En),
        (None, Some("en-US,en;q=0.9,ko;q=0.8"), Locale::En),
        (None, Some("fr"), Locale::En),
        (Some("kok"), None, Locale::En),
    ];
    for (ui, accept, expected) in cases {
        assert_eq!(locale_for(ui, accept), expected, "{ui:?} {accept:?}");
    }
}

#[test]
fn caller_values_are_escaped_everywhere() {
    for locale in [Locale::En, Locale::Ko] {
        for page in all_pages(locale) {
            let html = &page.html;
            assert!(!html.contains("<script"), "{html}");
            assert!(!html.contains("alert(\""), "{html}");
            assert!(!html.contains("x\">"), "{html}");
        }
    }
    let page = login(None, Some(EVIL), Locale::En);
    assert!(
        page.html
            .contains("&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;&#39;"),
        "{}",
        page.html
    );
    let username = tags(&page.html, "input")
        .into_iter()
        .find(|t| attr(t, "id") == Some("username"))
        .unwrap();
    assert_eq!(
        attr(username, "value"),
        Some("&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;&#39;")
    );
    // Hidden names and values, the CSRF token and the action.
    assert!(page.html.contains(
        "<input type=\"hidden\" name=\"state\" value=\"&quot;&gt;&lt;script&gt;alert(1)&lt;/script&gt;\">"
    ));
    assert!(page
        .html
        .contains("<input type=\"hidden\" name=\"x&quot;&gt;&lt;script&gt;\" value=\"1\">"));
    assert!(page
        .html
        .contains("<input type=\"hidden\" name=\"csrf\" value=\"csrf&quot;token\">"));
    assert!(page.html.contains("action=\"/authorize/login?a=1&amp;b=2\""));
    // Scope names.
    let page = consent(Locale::Ko, &["openid", "<img src=x onerror=alert(1)>"]);
    assert!(page
        .html
        .contains("<code>&lt;img src=x onerror=alert(1)&gt;</code>"));
    assert!(!page.html.contains("<img"));
    // The error detail.
    let page = error_page(
        Locale::En,
        StatusCode::BAD_REQUEST,
        ErrorKind::InvalidRequest("bad \"scope\" <b>".to_owned()),
    );
    assert!(page.html.contains("<code>bad &quot;scope&quot; &lt;b&gt;</code>"));
}

#[test]
fn the_passkey_forms_load_one_external_script_and_work_as_forms() {
    let hidden = hidden_pairs();
    let page = login_page(
        Locale::Ko,
        &LoginView {
            action: "/oauth2/authorize/login",
            csrf: "csrf-token",
            client_name: "Acme",
            login_hint: None,
            error: None,
            hidden: Hidden(&hidden),
            passkey_action: Some("/oauth2/authorize/passkey"),
            providers: &[],
        },
    );
    let html = &page.html;
    let scripts: Vec<&str> = tags(html, "script");
    assert_eq!(scripts.len(), 1, "{html}");
    assert!(attr(scripts[0], "src").is_some_and(|src| src.starts_with("/assets/passkey.js?v=")));
    assert!(html.contains("<script src=\"/assets/passkey.js?v="));
    assert!(!html.contains("<script>"), "no inline script: {html}");
    // The passkey form: hidden until the script finds WebAuthn, posting the same CSRF token
    // and authorization request as the password form, with its two fields to fill.
    let form = tags(html, "form")
        .into_iter()
        .find(|t| attr(t, "id") == Some("passkey-sign-in"))
        .expect("the passkey form");
    assert_eq!(attr(form, "action"), Some("/oauth2/authorize/passkey"));
    assert_eq!(
        attr(form, "data-options"),
        Some("/oauth2/authorize/passkey/options")
    );
    assert!(form.contains(" hidden"), "{form}");
    assert_eq!(html.matches("name=\"csrf\" value=\"csrf-token\"").count(), 2);
    for field in ["passkey_token", "credential"] {
        assert!(html.contains(&format!("name=\"{field}\" value=\"\"")), "{field}");
    }
    assert!(html.contains("패스키로 로그인"));
    for tag in html.to_ascii_lowercase().split('<').skip(1) {
        let tag = &tag[..tag.find('>').unwrap_or(tag.len())];
        assert!(!tag.contains(" on"), "no inline handler: {tag}");
    }

    let page = mfa_page(
        Locale::En,
        &MfaView {
            action: "/oauth2/authorize/mfa",
            csrf: "csrf-token",
            mfa_token: "tsm_x",
            method: "recovery_code",
            client_name: "Acme",
            error: None,
            hidden: Hidden(&hidden),
            passkey: true,
        },
    );
    let button = tags(&page.html, "button")
        .into_iter()
        .find(|t| attr(t, "id") == Some("passkey-factor"))
        .expect("the passkey button");
    assert_eq!(attr(button, "data-options"), Some("/auth/mfa/challenge"));
    assert!(page.html.contains("Confirm with your passkey"));
    assert_eq!(tags(&page.html, "script").len(), 1);
}

#[test]
fn no_script_and_no_inline_handlers_anywhere() {
    for locale in [Locale::En, Locale::Ko] {
        for page in all_pages(locale) {
            let lower = page.html.to_ascii_lowercase();
            assert!(!lower.contains("<script"), "{}", page.html);
            assert!(!lower.contains("javascript:"), "{}", page.html);
            assert!(!lower.contains(" style="), "{}", page.html);
            // No `on…=` attribute in any tag.
            for tag in lower.split('<').skip(1) {
                let tag = &tag[..tag.find('>').unwrap_or(tag.len())];
                assert!(!tag.contains(" on"), "{tag}");
            }
        }
    }
}

#[test]
fn every_page_is_a_complete_accessible_document() {
    for locale in [Locale::En, Locale::Ko] {
        for page in all_pages(locale) {
            let html = &page.html;
            assert!(html.starts_with("<!DOCTYPE html>\n"), "{html}");
            assert!(
                html.contains(&format!("<html lang=\"{}\">", locale.tag())),
                "{html}"
            );
            assert!(html.contains("<meta charset=\"utf-8\">"));
            assert!(html.contains("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"));
            assert_eq!(tags(html, "main").len(), 1, "{html}");
            assert!(html.contains("</main>"));
            assert_eq!(tags(html, "h1").len(), 1, "{html}");
            assert!(html.contains("<h1 id=\"page-title\">"), "{html}");
            assert!(html.contains(&format!(
                "<link rel=\"stylesheet\" href=\"{STYLESHEET_PATH}?v={CSS_VERSION:016x}\">"
            )));
            assert!(tags(html, "title").len() == 1 && html.contains(" · Tessera</title>"));
            for form in tags(html, "form") {
                assert_eq!(attr(form, "method"), Some("post"), "{form}");
                assert!(attr(form, "action").is_some(), "{form}");
            }
        }
    }
}

#[test]
fn every_input_with_an_id_has_a_label_and_every_visible_input_an_id() {
    for locale in [Locale::En, Locale::Ko] {
        for page in all_pages(locale) {
            let html = &page.html;
            for input in tags(html, "input") {
                let hidden = attr(input, "type") == Some("hidden");
                match attr(input, "id") {
                    Some(id) => {
                        let label = format!("<label for=\"{id}\">");
                        assert_eq!(html.matches(&label).count(), 1, "{input}\n{html}");
                    }
                    None => assert!(hidden, "a visible input without an id: {input}"),
                }
            }
            for label in tags(html, "label") {
                let id = attr(label, "for").unwrap();
                assert!(html.contains(&format!(" id=\"{id}\"")), "{label}");
            }
        }
    }
}

#[test]
fn login_form_fields() {
    let page = login(None, None, Locale::En);
    assert_eq!(page.status, StatusCode::OK);
    let inputs = tags(&page.html, "input");
    let by_id = |id: &str| *inputs.iter().find(|t| attr(t, "id") == Some(id)).unwrap();
    let username = by_id("username");
    assert_eq!(attr(username, "name"), Some("username"));
    assert_eq!(attr(username, "autocomplete"), Some("username"));
    assert!(attr(username, "value").is_none());
    assert!(has_attr(username, "autofocus"));
    let password = by_id("password");
    assert_eq!(attr(password, "name"), Some("password"));
    assert_eq!(attr(password, "type"), Some("password"));
    assert_eq!(attr(password, "autocomplete"), Some("current-password"));
    assert!(attr(password, "value").is_none(), "the password is never echoed");
    assert!(!has_attr(username, "aria-describedby"));
    assert!(!page.html.contains("role=\"alert\""));
    assert!(page
        .html
        .contains("<label for=\"username\">E-mail address</label>"));
    assert!(page
        .html
        .contains("<button type=\"submit\" class=\"button primary\">Sign in</button>"));
    assert!(page.html.contains("<title>Sign in · Tessera</title>"));

    // With a hint, the password gets the focus.
    let page = login(None, Some("kim@example.org"), Locale::En);
    let inputs = tags(&page.html, "input");
    let username = inputs.iter().find(|t| attr(t, "id") == Some("username")).unwrap();
    let password = inputs.iter().find(|t| attr(t, "id") == Some("password")).unwrap();
    assert_eq!(attr(username, "value"), Some("kim@example.org"));
    assert!(!has_attr(username, "autofocus") && has_attr(password, "autofocus"));
}

#[test]
fn login_errors_have_their_status_and_an_alert_the_inputs_point_to() {
    let cases = [
        (
            LoginError::InvalidCredentials,
            StatusCode::UNAUTHORIZED,
            "incorrect",
            "올바르지 않습니다",
        ),
        (
            LoginError::TooManyAttempts { retry_after_secs: 90 },
            StatusCode::TOO_MANY_REQUESTS,
            "Try again in <span class=\"nowrap\">1 minute 30 seconds</span>.",
            "<span class=\"nowrap\">1분 30초</span> 후에 다시 시도하세요.",
        ),
        (
            LoginError::EmailNotVerified,
            StatusCode::FORBIDDEN,
            "not verified",
            "인증되지 않았습니다",
        ),
        (
            LoginError::AccountDisabled,
            StatusCode::FORBIDDEN,
            "disabled",
            "사용이 중지된",
        ),
        (
            LoginError::SessionLimit,
            StatusCode::FORBIDDEN,
            "too many devices",
            "기기가 너무 많습니다",
        ),
    ];
    for (error, status, en, ko) in cases {
        for (locale, text) in [(Locale::En, en), (Locale::Ko, ko)] {
            let page = login(Some(error), None, locale);
            assert_eq!(page.status, status, "{error:?}");
            assert_eq!(error.status(), status);
            let alert = tags(&page.html, "div")
                .into_iter()
                .find(|t| attr(t, "role") == Some("alert"))
                .unwrap();
            let id = attr(alert, "id").unwrap();
            let start = page.html.find(alert).unwrap();
            let end = start + page.html[start..].find("</div>").unwrap();
            assert!(page.html[start..end].contains(text), "{}", &page.html[start..end]);
            for input in tags(&page.html, "input") {
                if attr(input, "type") != Some("hidden") {
                    assert_eq!(attr(input, "aria-describedby"), Some(id), "{input}");
                    assert_eq!(
                        attr(input, "aria-invalid").is_some(),
                        error == LoginError::InvalidCredentials,
                        "{input}"
                    );
                }
            }
            let prefix = if locale == Locale::En {
                "Error: "
            } else {
                "오류: "
            };
            assert!(page.html.contains(&format!("<title>{prefix}")), "{}", page.html);
        }
    }
}

#[test]
fn waits_read_in_minutes_and_seconds() {
    let cases = [
        (0, "1 second", "1초"),
        (1, "1 second", "1초"),
        (45, "45 seconds", "45초"),
        (60, "1 minute", "1분"),
        (61, "1 minute 1 second", "1분 1초"),
        (150, "2 minutes 30 seconds", "2분 30초"),
        (900, "15 minutes", "15분"),
        (3600, "1 hour", "1시간"),
        (3601, "1 hour 1 minute", "1시간 1분"),
        (7260, "2 hours 1 minute", "2시간 1분"),
    ];
    for (secs, en, ko) in cases {
        assert_eq!(text::duration(Locale::En, secs), en);
        assert_eq!(text::duration(Locale::Ko, secs), ko);
    }
}

#[test]
fn consent_lists_the_scopes_and_posts_a_decision() {
    for locale in [Locale::En, Locale::Ko] {
        let page = consent(
            locale,
            &[
                "openid",
                "profile",
                "email",
                "address",
                "phone",
                "offline_access",
                "read:orders",
                "email",
            ],
        );
        assert_eq!(page.status, StatusCode::OK);
        let html = &page.html;
        let items = tags(html, "li");
        assert_eq!(items.len(), 7, "duplicates are listed once: {html}");
        for scope in ["openid", "profile", "email", "address", "phone", "offline_access"] {
            let description = text::scope(locale, scope).unwrap();
            assert!(
                html.contains(&format!("<li>{}</li>", escape(description))),
                "{scope}: {html}"
            );
        }
        assert!(html.contains("<li><code>read:orders</code></li>"), "{html}");
        let buttons = tags(html, "button");
        assert_eq!(buttons.len(), 2);
        let values: Vec<_> = buttons
            .iter()
            .map(|b| (attr(b, "name"), attr(b, "value")))
            .collect();
        assert_eq!(
            values,
            [
                (Some("decision"), Some("allow")),
                (Some("decision"), Some("deny"))
            ]
        );
        assert!(html.contains("name=\"csrf\" value=\"tok\""));
        assert!(html.contains("name=\"client_id\" value=\"web-app\""));
        assert!(html.contains("&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;&#39;"));
    }
    assert!(consent(Locale::En, &["openid"]).html.contains(">Allow</button>"));
    assert!(consent(Locale::Ko, &["openid"]).html.contains(">허용</button>"));
    assert!(consent(Locale::Ko, &["email"])
        .html
        .contains("<li>이메일 주소 보기</li>"));
    assert!(consent(Locale::En, &[])
        .html
        .contains("No additional permissions"));
}

#[test]
fn logout_confirmation_and_logged_out() {
    let page = logout(Locale::En, Some("Shop"));
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.html.contains(">Sign out of Tessera?</h1>"), "{}", page.html);
    assert!(page.html.contains("<strong>Shop</strong> asked to sign you out."));
    let buttons = tags(&page.html, "button");
    let values: Vec<_> = buttons
        .iter()
        .map(|b| (attr(b, "name"), attr(b, "value")))
        .collect();
    assert_eq!(
        values,
        [
            (Some("decision"), Some("logout")),
            (Some("decision"), Some("cancel"))
        ]
    );
    assert!(page.html.contains(">Sign out</button>") && page.html.contains(">Cancel</button>"));
    let page = logout(Locale::Ko, None);
    assert!(page.html.contains(">Tessera에서 로그아웃할까요?</h1>"));
    assert!(page.html.contains(">로그아웃</button>") && page.html.contains(">취소</button>"));
    assert!(!page.html.contains("<strong>"));

    let page = logged_out_page(Locale::Ko);
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.html.contains("로그아웃되었습니다"));
    assert!(logged_out_page(Locale::En).html.contains("You have signed out"));
}

#[test]
fn error_pages_keep_the_status_and_explain() {
    for kind in error_kinds() {
        for status in [
            StatusCode::BAD_REQUEST,
            StatusCode::NOT_FOUND,
            StatusCode::INTERNAL_SERVER_ERROR,
        ] {
            let en = error_page(Locale::En, status, kind.clone());
            let ko = error_page(Locale::Ko, status, kind.clone());
            assert_eq!((en.status, ko.status), (status, status));
            assert!(en.html.contains("<title>Error: "), "{}", en.html);
            assert!(ko.html.contains("<title>오류: "), "{}", ko.html);
        }
    }
    let page = error_page(Locale::Ko, StatusCode::BAD_REQUEST, ErrorKind::InvalidRedirectUri);
    assert!(page.html.contains("잘못된 반환 주소"));
    let page = error_page(Locale::En, StatusCode::GONE, ErrorKind::SessionExpired);
    assert!(page.html.contains("Your session has expired"));
    // A long detail is cut, control characters are dropped.
    let page = error_page(
        Locale::En,
        StatusCode::BAD_REQUEST,
        ErrorKind::InvalidRequest(format!("line\r\nbreak {}", "x".repeat(1000))),
    );
    assert!(page.html.contains("<code>line  break xxx"), "{}", page.html);
    assert!(!page.html.contains(&"x".repeat(400)));
    // An empty detail shows no details box.
    let page = error_page(
        Locale::En,
        StatusCode::BAD_REQUEST,
        ErrorKind::InvalidRequest(" ".to_owned()),
    );
    assert!(!page.html.contains("class=\"detail\""));
}

#[test]
fn reserved_field_names_are_never_taken_from_hidden() {
    let hidden = [
        ("decision", "allow"),
        ("csrf", "attacker"),
        ("password", "x"),
        ("username", "x"),
        ("", "empty"),
        ("nonce", "n-1"),
    ];
    let page = consent_page(
        Locale::En,
        &ConsentView {
            action: "/c",
            csrf: "real",
            client_name: "App",
            scopes: &["openid"],
            hidden: Hidden(&hidden),
        },
    );
    let inputs = tags(&page.html, "input");
    assert_eq!(inputs.len(), 2, "{inputs:?}");
    assert!(page.html.contains("name=\"csrf\" value=\"real\""));
    assert!(page.html.contains("name=\"nonce\" value=\"n-1\""));
    assert!(!page.html.contains("attacker") && !page.html.contains("value=\"allow\">"));
}

#[test]
fn fill_escapes_the_template_and_keeps_unknown_placeholders_as_text() {
    assert_eq!(
        fill("a < {x} & {y} {", &[("x", "<b>X</b>")]),
        "a &lt; <b>X</b> &amp; {y} {"
    );
    assert_eq!(fill("{x}{x}", &[("x", "1")]), "11");
    assert_eq!(fill("no placeholders", &[]), "no placeholders");
}

#[test]
fn texts_exist_in_both_locales() {
    // A missing translation would show up as the English text in the Korean page.
    for (en, ko) in all_pages(Locale::En).iter().zip(all_pages(Locale::Ko).iter()) {
        assert_ne!(en.html, ko.html);
        let hangul = ko.html.chars().any(|c| ('\u{AC00}'..='\u{D7A3}').contains(&c));
        assert!(hangul, "{}", ko.html);
    }
}

#[test]
fn page_responses_carry_the_security_headers() {
    let page = login(
        Some(LoginError::TooManyAttempts { retry_after_secs: 5 }),
        None,
        Locale::En,
    );
    let response = page.into_response();
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    let headers = response.headers();
    let expected = [
        (header::CONTENT_TYPE, "text/html; charset=utf-8"),
        (header::CACHE_CONTROL, "no-store"),
        (
            header::CONTENT_SECURITY_POLICY,
            "default-src 'none'; script-src 'self'; connect-src 'self'; style-src 'self'; img-src 'self'; \
             frame-ancestors 'none'; base-uri 'none'",
        ),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::REFERRER_POLICY, "no-referrer"),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
    ];
    for (name, value) in expected {
        let values: Vec<_> = headers.get_all(&name).iter().collect();
        assert_eq!(values, [value], "{name}");
    }
    assert!(!headers[header::CONTENT_SECURITY_POLICY]
        .to_str()
        .unwrap()
        .contains("form-action"));
}

#[tokio::test]
async fn the_stylesheet_is_css_and_cacheable() {
    let response = stylesheet().await.into_response();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.headers()[header::CONTENT_TYPE],
        "text/css; charset=utf-8"
    );
    assert_eq!(response.headers()[header::CACHE_CONTROL], "public, max-age=86400");
    let body = axum::body::to_bytes(response.into_body(), 1 << 20).await.unwrap();
    assert_eq!(body, CSS.as_bytes());
    // Focus stays visible, and nothing is loaded from elsewhere.
    assert!(CSS.contains(":focus-visible"));
    assert!(!CSS.contains("url(") && !CSS.contains("@import"));
    assert_eq!(STYLESHEET_PATH, "/assets/tessera.css");
    assert_ne!(CSS_VERSION, fnv1a(b""));
}

/// Writes every page (and the stylesheet at its path) into `$TESSERA_PAGES_DIR`, for
/// looking at them in a browser: `TESSERA_PAGES_DIR=/tmp/pages/site cargo test -p tessera-idp
/// pages::tests::write_samples -- --ignored`, then serve the directory over HTTP.
#[test]
#[ignore = "writes files; run by hand"]
fn write_samples() {
    let dir = std::path::PathBuf::from(std::env::var("TESSERA_PAGES_DIR").unwrap());
    let assets = dir.join(STYLESHEET_PATH.trim_start_matches('/'));
    std::fs::create_dir_all(assets.parent().unwrap()).unwrap();
    std::fs::write(&assets, CSS).unwrap();
    let hidden = [("client_id", "shop"), ("state", "af0ifjsldkj")];
    for locale in [Locale::En, Locale::Ko] {
        let tag = locale.tag();
        let login_view = |error, login_hint| LoginView {
            action: "/authorize/login",
            csrf: "csrf-token",
            client_name: "Acme Shop",
            login_hint,
            error,
            hidden: Hidden(&hidden),
            passkey_action: None,
            providers: &[],
        };
        let pages = [
            ("login", login_page(locale, &login_view(None, None))),
            (
                "login-error",
                login_page(
                    locale,
                    &login_view(
                        Some(LoginError::InvalidCredentials),
                        Some("kim.minji@example.org"),
                    ),
                ),
            ),
            (
                "login-throttled",
                login_page(
                    locale,
                    &login_view(
                        Some(LoginError::TooManyAttempts {
                            retry_after_secs: 270,
                        }),
                        None,
                    ),
                ),
            ),
            (
                "consent",
                consent_page(
                    locale,
                    &ConsentView {
                        action: "/authorize/consent",
                        csrf: "csrf-token",
                        client_name: "Acme Shop",
                        scopes: &[
                            "openid",
                            "profile",
                            "email",
                            "address",
                            "phone",
                            "offline_access",
                            "https://api.acme.example/scopes/orders.read",
                        ],
                        hidden: Hidden(&hidden),
                    },
                ),
            ),
            (
                "logout",
                logout_confirm_page(
                    locale,
                    &LogoutView {
                        action: "/logout/confirm",
                        csrf: "csrf-token",
                        client_name: Some("Acme Shop"),
                        hidden: Hidden(&hidden),
                    },
                ),
            ),
            ("logged-out", logged_out_page(locale)),
            (
                "error",
                error_page(
                    locale,
                    StatusCode::BAD_REQUEST,
                    ErrorKind::InvalidRequest("unsupported response_type \"token id_token\"".to_owned()),
                ),
            ),
        ];
        for (name, page) in pages {
            std::fs::write(dir.join(format!("{name}-{tag}.html")), page.html).unwrap();
        }
    }
}
