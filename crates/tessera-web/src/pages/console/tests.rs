//! The console's pages as HTML: what each access level sees, escaping, CSRF on every form.

use super::*;

const XSS: &str = "<script>alert(1)</script>\"'&";

fn frame(access: Access, locale: Locale) -> Frame<'static> {
    Frame {
        locale,
        email: "op\"<b>@example.com",
        access,
        csrf: "csrf-token-1",
        here: "/console/users?q=\"><x>",
        expiry: crate::pages::portal::Expiry {
            idle_expires_at: 2_000,
            absolute_expires_at: 9_000,
            now: 1_000,
            warn_before_secs: 300,
            status_url: SESSION_STATUS,
            extend_url: SESSION_EXTEND,
        },
    }
}

fn user(id: &str) -> UserRow {
    UserRow {
        id: id.to_owned(),
        email: format!("{XSS}@example.com"),
        email_verified: true,
        roles: vec!["tessera:admin".to_owned(), XSS.to_owned()],
        disabled: false,
        created_at: 1_700_000_000,
    }
}

fn detail() -> UserDetail {
    UserDetail {
        user: user("u/1?x"),
        password_algorithm: "argon2id".to_owned(),
        sessions: vec![SessionRow {
            id: "sid-1".to_owned(),
            subject: "u/1?x".to_owned(),
            user_agent: Some(XSS.to_owned()),
            channel: "web".to_owned(),
            ip: Some("203.0.113.9".to_owned()),
            client_id: XSS.to_owned(),
            created_at: 1_700_000_000,
            last_seen_at: 1_700_000_100,
        }],
        factors: vec![FactorRow {
            kind: "totp".to_owned(),
            label: Some(XSS.to_owned()),
            created_at: 1_700_000_000,
        }],
    }
}

fn client() -> ClientRow {
    ClientRow {
        client_id: "shop".to_owned(),
        name: XSS.to_owned(),
        public: false,
        channel: "web".to_owned(),
        grant_types: vec!["authorization_code".to_owned()],
        scope: "openid".to_owned(),
        redirect_uris: vec![format!("https://shop.example/cb?{XSS}")],
        first_party: false,
        created_at: 1_700_000_000,
    }
}

fn every_page(access: Access, locale: Locale) -> Vec<Page> {
    let frame = frame(access, locale);
    let event = EventRow {
        at: 1_700_000_000,
        event: "login.failed".to_owned(),
        outcome: "failure".to_owned(),
        actor: Some(XSS.to_owned()),
        subject: Some(XSS.to_owned()),
        client_id: None,
        ip: Some(XSS.to_owned()),
        detail: Some(format!("{{\"reason\":\"{XSS}\"}}")),
    };
    let filter = AuditFilter {
        user: XSS.to_owned(),
        ..AuditFilter::default()
    };
    vec![
        dashboard_page(
            &frame,
            &DashboardView {
                first_hour: 1_699_999_200,
                succeeded: vec![1, 2, 3],
                failed: vec![0, 1, 0],
                channels: vec![(XSS.to_owned(), 2)],
            },
        ),
        users_page(&frame, XSS, &[user("u1")], Some(XSS)),
        user_page(&frame, &detail(), Some(&Notice::Done(XSS.to_owned()))),
        clients_page(&frame, &[client()], None),
        new_client_page(
            &frame,
            &NewClientForm::default(),
            Some(&Notice::Refused(XSS.to_owned())),
        ),
        client_page(&frame, &client(), Some("s3cr3t"), None),
        keys_page(
            &frame,
            &[KeyRow {
                kid: "kid-1".to_owned(),
                alg: "ES256".to_owned(),
                status: "active".to_owned(),
                created_at: 1,
                activates_at: 1,
                retires_at: None,
                expires_at: None,
            }],
            None,
        ),
        audit_page(&frame, &filter, &[event], Some("42"), None),
        roles_page(
            &frame,
            &[RoleRow {
                name: XSS.to_owned(),
                parents: vec![],
                permissions: vec![XSS.to_owned()],
            }],
        ),
        providers_page(
            &frame,
            &[ProviderRow {
                id: "google".to_owned(),
                name: XSS.to_owned(),
                issuer: "https://accounts.google.com".to_owned(),
            }],
        ),
        sessions_page(&frame, &detail().sessions, Some(XSS), None),
        forbidden_page(&frame),
    ]
}

#[test]
fn nothing_shown_back_is_markup() {
    for locale in [Locale::En, Locale::Ko] {
        for access in [Access::Operator, Access::Auditor] {
            for page in every_page(access, locale) {
                // The frame's one script, from this origin; nothing else.
                assert_eq!(page.html.matches("<script").count(), 1, "{}", page.html);
                assert!(page.html.contains("<script src=\"/assets/session-expiry.js?v="));
                assert!(!page.html.contains("<script>"), "{}", page.html);
                assert!(!page.html.contains("<b>"), "{}", page.html);
                assert!(!page.html.contains("\"><x>"), "{}", page.html);
            }
        }
    }
}

#[test]
fn every_post_form_carries_the_csrf_token() {
    for page in every_page(Access::Operator, Locale::En) {
        let posts = page.html.matches("method=\"post\"").count();
        let tokens = page
            .html
            .matches("<input type=\"hidden\" name=\"csrf\" value=\"csrf-token-1\">")
            .count();
        assert!(posts >= 1, "every page has at least the sign-out form");
        assert_eq!(posts, tokens, "{}", page.html);
    }
}

#[test]
fn an_auditor_sees_no_form_that_changes_anything() {
    for page in every_page(Access::Auditor, Locale::En) {
        // Only sign-out and the expiry warning's "stay signed in" post.
        assert_eq!(page.html.matches("method=\"post\"").count(), 2, "{}", page.html);
        assert!(page.html.contains("action=\"/console/sign-out\""));
        assert!(page.html.contains("action=\"/console/session/extend\""));
        assert!(page.html.contains("read-only") || page.html.contains("only an operator"));
    }
    let operator = user_page(&frame(Access::Operator, Locale::En), &detail(), None);
    for action in [
        "/disable",
        "/sessions/end",
        "/sessions/end-all",
        "/mfa/reset",
        "/delete",
    ] {
        assert!(
            operator
                .html
                .contains(&format!("action=\"/console/users/u%2F1%3Fx{action}\"")),
            "{action}: {}",
            operator.html
        );
    }
}

#[test]
fn pages_are_in_the_language_asked_for_and_mark_the_current_section() {
    let ko = every_page(Access::Operator, Locale::Ko);
    assert!(ko[0].html.contains("<html lang=\"ko\">"));
    assert!(ko[0].html.contains("대시보드"));
    assert!(
        ko[0].html.contains("lang=\"en\" hreflang=\"en\">English</a>"),
        "{}",
        ko[0].html
    );
    let en = every_page(Access::Operator, Locale::En);
    assert!(
        en[1]
            .html
            .contains("<a href=\"/console/users\" aria-current=\"page\">Users</a>"),
        "{}",
        en[1].html
    );
    assert_eq!(en[1].html.matches("aria-current").count(), 1);
    assert_eq!(en.last().unwrap().status, StatusCode::FORBIDDEN);
}

#[test]
fn a_secret_is_shown_only_on_the_page_that_made_it() {
    let frame = frame(Access::Operator, Locale::En);
    assert!(client_page(&frame, &client(), Some("s3cr3t"), None)
        .html
        .contains("value=\"s3cr3t\""));
    assert!(!client_page(&frame, &client(), None, None).html.contains("s3cr3t"));
}

#[test]
fn paths_and_queries_are_percent_encoded() {
    assert_eq!(percent("a b/c?d&e=é"), "a%20b%2Fc%3Fd%26e%3D%C3%A9");
    assert_eq!(percent("Az09-._~"), "Az09-._~");
    let filter = AuditFilter {
        user: "u 1".to_owned(),
        event: "login.failed".to_owned(),
        since: String::new(),
        until: "2026-01-01T00:00".to_owned(),
    };
    assert_eq!(
        filter.query(),
        "user=u%201&type=login.failed&until=2026-01-01T00%3A00"
    );
}
