//! The account pages' forms over HTTP, and their abuse: CSRF and cross-origin posts on every
//! form, another user's session id, markup in values shown back, the e-mail change that
//! takes effect only from the new address, deletion that needs the password.

use std::collections::BTreeMap;
use std::time::Duration;

use tessera_store::durable::{AuditQuery, AuditStore};
use tessera_testkit::{
    backend_tests, link_token, spawn, spawn_with_mail_and, Backend, Browser, SmtpSink, TestNode,
};

use crate::account::{csrf_of, set_cookie, sign_in_at, PASSWORD};

backend_tests!(
    every_signed_in_form_refuses_a_missing_wrong_or_foreign_token,
    every_signed_out_form_needs_its_csrf_cookie_and_this_origin,
    another_users_session_cannot_be_ended_and_user_agents_stay_text,
    the_email_change_takes_effect_only_from_the_new_address,
    deleting_the_account_needs_the_password_and_ends_everything,
    the_password_pages_mark_the_broken_rule,
    the_security_page_enrols_renames_and_removes_a_factor,
);

const EMAIL: &str = "forms-user@example.com";

fn form(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

/// The newest mail to `to` whose text contains `needle`, waiting for it.
async fn mail_to(sink: &SmtpSink, to: &str, needle: &str) -> tessera_testkit::ReceivedMail {
    for _ in 0..200 {
        if let Some(mail) = sink
            .messages()
            .into_iter()
            .rev()
            .find(|m| m.to.contains(to) && m.body.contains(needle))
        {
            return mail;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("no mail to {to} containing {needle:?}; log:\n{}", sink.log());
}

async fn signed_in(node: &TestNode, email: &str) -> (Browser, String) {
    let mut browser = Browser::new();
    let (back, _) = sign_in_at(node, &mut browser, "/account", email, PASSWORD).await;
    assert_eq!(back.status, 302, "{}", back.body);
    let home = browser.get(&node.at("/account")).await;
    assert_eq!(home.status, 200);
    let csrf = csrf_of(&home);
    (browser, csrf)
}

/// Posts `fields` to `path` with the browser's account cookie and extra headers.
async fn post_with(
    node: &TestNode,
    browser: &Browser,
    path: &str,
    fields: &BTreeMap<String, String>,
    headers: &[(&str, &str)],
) -> u16 {
    let mut request = node.client.post(node.at(path)).form(fields);
    let mut cookies = Vec::new();
    for name in ["tessera_account", "tessera_csrf"] {
        if let Some(value) = browser.cookie(name) {
            cookies.push(format!("{name}={value}"));
        }
    }
    if !cookies.is_empty() {
        request = request.header("cookie", cookies.join("; "));
    }
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    request.send().await.unwrap().status().as_u16()
}

/// A session of `email` from another device, through the first-party JSON API.
async fn json_login(node: &TestNode, email: &str, user_agent: &str) -> serde_json::Value {
    let response = node
        .client
        .post(node.at("/auth/login"))
        .header("user-agent", user_agent)
        .json(&serde_json::json!({ "email": email, "password": PASSWORD }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

async fn every_signed_in_form_refuses_a_missing_wrong_or_foreign_token(backend: Backend) {
    let Some(node) = spawn(backend).await else { return };
    let user_id = node.create_user(EMAIL, PASSWORD).await;
    node.create_user("forms-other@example.com", PASSWORD).await;
    let (browser, csrf) = signed_in(&node, EMAIL).await;
    let (_, other_csrf) = signed_in(&node, "forms-other@example.com").await;
    json_login(&node, EMAIL, "second device").await;
    let sessions = node.state.tokens.sessions_of(&user_id).await.unwrap();
    let other_session = sessions
        .iter()
        .find(|s| s.client_id != "tessera-account")
        .unwrap()
        .id
        .clone();
    let actions: Vec<(&str, BTreeMap<String, String>)> = vec![
        ("/account/signout", form(&[])),
        ("/account/sessions/end", form(&[("session", &other_session)])),
        ("/account/sessions/end-others", form(&[])),
        (
            "/account/password",
            form(&[
                ("current_password", PASSWORD),
                ("new_password", "a whole new passphrase 42"),
                ("repeat_password", "a whole new passphrase 42"),
            ]),
        ),
        (
            "/account/email",
            form(&[
                ("new_email", "forms-new@example.com"),
                ("current_password", PASSWORD),
            ]),
        ),
        (
            "/account/delete",
            form(&[("current_password", PASSWORD), ("confirm", "yes")]),
        ),
        ("/account/security/totp", form(&[])),
        (
            "/account/security/rename",
            form(&[("factor", "x"), ("name", "y")]),
        ),
        ("/account/security/remove", form(&[("factor", "x")])),
        (
            "/account/security/totp/confirm",
            form(&[("factor", "x"), ("code", "123456")]),
        ),
        (
            "/account/security/unlink",
            form(&[("provider", "x"), ("subject", "y")]),
        ),
        ("/account/session/extend", form(&[])),
    ];
    for (path, fields) in &actions {
        // No token, a wrong one, another user's, a right one from another origin or site.
        let mut none = fields.clone();
        none.remove("csrf");
        assert_eq!(
            post_with(&node, &browser, path, &none, &[]).await,
            403,
            "{path}: no token"
        );
        let mut wrong = fields.clone();
        wrong.insert("csrf".into(), "x".repeat(csrf.len()));
        assert_eq!(
            post_with(&node, &browser, path, &wrong, &[]).await,
            403,
            "{path}: wrong token"
        );
        let mut theirs = fields.clone();
        theirs.insert("csrf".into(), other_csrf.clone());
        assert_eq!(
            post_with(&node, &browser, path, &theirs, &[]).await,
            403,
            "{path}: another user's token"
        );
        let mut right = fields.clone();
        right.insert("csrf".into(), csrf.clone());
        let evil = [("origin", "https://evil.example")];
        assert_eq!(
            post_with(&node, &browser, path, &right, &evil).await,
            403,
            "{path}: Origin"
        );
        let site = [("sec-fetch-site", "cross-site")];
        assert_eq!(
            post_with(&node, &browser, path, &right, &site).await,
            403,
            "{path}: Sec-Fetch-Site"
        );
        // A body that is not a form, or repeats a field.
        let repeated = node
            .client
            .post(node.at(path))
            .header(
                "cookie",
                format!("tessera_account={}", browser.cookie("tessera_account").unwrap()),
            )
            .header("content-type", "application/x-www-form-urlencoded")
            .body(format!("csrf={csrf}&csrf={csrf}"))
            .send()
            .await
            .unwrap();
        assert_eq!(repeated.status(), 400, "{path}: repeated field");
    }
    // Nothing happened.
    let user = node.state.accounts.user(&user_id).await.unwrap().unwrap();
    assert_eq!(user.email, EMAIL);
    assert_eq!(node.state.tokens.sessions_of(&user_id).await.unwrap().len(), 2);
    assert!(node.state.mfa.factors(&user_id).await.unwrap().is_empty());
    let mut browser = browser;
    assert_eq!(
        browser.get(&node.at("/account")).await.status,
        200,
        "still signed in"
    );
}

async fn every_signed_out_form_needs_its_csrf_cookie_and_this_origin(backend: Backend) {
    let Some(node) = spawn(backend).await else { return };
    let mut browser = Browser::new();
    for (page, post) in [
        ("/account/signup", "/account/signup"),
        ("/account/password/forgot", "/account/password/forgot"),
        ("/account/verify-email?token=abc", "/account/verify-email"),
        ("/account/password/reset?token=abc", "/account/password/reset"),
        ("/account/email/confirm?token=abc", "/account/email/confirm"),
    ] {
        let shown = browser.get(&node.at(page)).await;
        assert_eq!(shown.status, 200, "{page}: {}", shown.body);
        let csp = shown.headers["content-security-policy"]
            .to_str()
            .unwrap()
            .to_owned();
        assert!(csp.contains("frame-ancestors 'none'"), "{page}: {csp}");
        let cookie = set_cookie(&shown, "tessera_csrf").expect("a CSRF cookie");
        assert!(
            cookie.contains("Path=/account") && cookie.contains("HttpOnly"),
            "{cookie}"
        );
        let mut fields = shown.form_fields();
        fields.insert("email".into(), "signed-out@example.com".into());
        fields.insert("password".into(), PASSWORD.into());
        fields.insert("repeat_password".into(), PASSWORD.into());
        // Without the cookie, with a wrong token, from another origin: 403.
        let no_cookie = node
            .client
            .post(node.at(post))
            .form(&fields)
            .send()
            .await
            .unwrap();
        assert_eq!(no_cookie.status(), 403, "{post}: no cookie");
        let mut wrong = fields.clone();
        wrong.insert("csrf".into(), "forged".into());
        assert_eq!(
            post_with(&node, &browser, post, &wrong, &[]).await,
            403,
            "{post}: wrong token"
        );
        let evil = [("origin", "https://evil.example")];
        assert_eq!(
            post_with(&node, &browser, post, &fields, &evil).await,
            403,
            "{post}: Origin"
        );
    }
    assert!(node
        .state
        .accounts
        .user_by_email("signed-out@example.com")
        .await
        .unwrap()
        .is_none());
    // Links without a token, or with an oversized one: the link-invalid page.
    for page in [
        "/account/verify-email",
        "/account/password/reset",
        "/account/email/confirm",
    ] {
        assert_eq!(browser.get(&node.at(page)).await.status, 400, "{page}");
        let long = format!("{page}?token={}", "a".repeat(300));
        assert_eq!(browser.get(&node.at(&long)).await.status, 400, "{page}");
    }
    // A made-up link token, posted properly: 400, nothing verified.
    let shown = browser.get(&node.at("/account/verify-email?token=made-up")).await;
    let done = browser
        .post_form(&node.at("/account/verify-email"), &shown.form_fields())
        .await;
    assert_eq!(done.status, 400, "{}", done.body);
}

async fn another_users_session_cannot_be_ended_and_user_agents_stay_text(backend: Backend) {
    let Some(node) = spawn(backend).await else { return };
    let user_id = node.create_user(EMAIL, PASSWORD).await;
    let victim_id = node.create_user("forms-victim@example.com", PASSWORD).await;
    let (mut browser, csrf) = signed_in(&node, EMAIL).await;
    let agent = "<script>alert(1)</script><img src=x onerror=alert(2)>";
    let mine = json_login(&node, EMAIL, agent).await;
    json_login(&node, "forms-victim@example.com", "victim").await;
    let victim_session = node.state.tokens.sessions_of(&victim_id).await.unwrap()[0]
        .id
        .clone();

    let list = browser.get(&node.at("/account/sessions")).await;
    assert_eq!(list.status, 200);
    assert!(
        list.body.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
        "{}",
        list.body
    );
    assert!(
        !list.body.contains("<script>alert"),
        "markup from a user agent is text"
    );
    assert!(!list.body.contains("<img src=x"));
    assert!(
        !list.body.contains(&victim_session),
        "another user's session is not listed"
    );

    // Another user's session, this one, an ended one, a made-up one: 404, nothing ends.
    let current = node
        .state
        .tokens
        .sessions_of(&user_id)
        .await
        .unwrap()
        .into_iter()
        .find(|s| s.client_id == "tessera-account")
        .unwrap()
        .id;
    for id in [victim_session.as_str(), current.as_str(), "made-up", ""] {
        let page = browser
            .post_form(
                &node.at("/account/sessions/end"),
                &form(&[("csrf", &csrf), ("session", id)]),
            )
            .await;
        assert_eq!(page.status, 404, "{id}: {}", page.body);
    }
    assert_eq!(node.state.tokens.sessions_of(&victim_id).await.unwrap().len(), 1);
    assert_eq!(node.state.tokens.sessions_of(&user_id).await.unwrap().len(), 2);

    // Ending my other session: its refresh token fails at once.
    let other = node
        .state
        .tokens
        .sessions_of(&user_id)
        .await
        .unwrap()
        .into_iter()
        .find(|s| s.id != current)
        .unwrap()
        .id;
    let ended = browser
        .post_form(
            &node.at("/account/sessions/end"),
            &form(&[("csrf", &csrf), ("session", &other)]),
        )
        .await;
    assert_eq!(ended.status, 303, "{}", ended.body);
    assert_eq!(ended.location.as_deref(), Some("/account/sessions?done=ended"));
    let refresh = node
        .client
        .post(node.at("/oauth2/token"))
        .form(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", mine["refreshToken"].as_str().unwrap()),
            ("client_id", "tessera-first-party"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(refresh.status(), 400);
    let body: serde_json::Value = refresh.json().await.unwrap();
    assert_eq!(body["error"], "invalid_grant");
    let ended_by = node
        .state
        .db
        .audit_records(&AuditQuery {
            event: Some("session.revoked".into()),
            subject: Some(user_id.clone()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(
        ended_by[0].actor.as_deref(),
        Some(format!("user:{user_id}").as_str())
    );

    // All others: two more devices end, this page stays signed in.
    json_login(&node, EMAIL, "a").await;
    json_login(&node, EMAIL, "b").await;
    let all = browser
        .post_form(
            &node.at("/account/sessions/end-others"),
            &form(&[("csrf", &csrf)]),
        )
        .await;
    assert_eq!(all.status, 303);
    let left = node.state.tokens.sessions_of(&user_id).await.unwrap();
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].id, current);
    assert_eq!(browser.get(&node.at("/account/sessions")).await.status, 200);
}

async fn the_email_change_takes_effect_only_from_the_new_address(backend: Backend) {
    let Some((node, sink)) = spawn_with_mail_and(backend, |_| {}).await else {
        return;
    };
    let user_id = node.create_user(EMAIL, PASSWORD).await;
    let (mut browser, csrf) = signed_in(&node, EMAIL).await;
    let new = "forms-changed@example.com";

    // Wrong password, a malformed address, the same address: refused, nothing sent.
    for (address, password, status) in [
        (new, "wrong password", 401),
        ("not an address", PASSWORD, 400),
        (EMAIL, PASSWORD, 400),
    ] {
        let page = browser
            .post_form(
                &node.at("/account/email"),
                &form(&[
                    ("csrf", &csrf),
                    ("new_email", address),
                    ("current_password", password),
                ]),
            )
            .await;
        assert_eq!(page.status, status, "{address}: {}", page.body);
        assert!(page.body.contains("role=\"alert\""));
    }
    let sent = browser
        .post_form(
            &node.at("/account/email"),
            &form(&[
                ("csrf", &csrf),
                ("new_email", new),
                ("current_password", PASSWORD),
            ]),
        )
        .await;
    assert_eq!(sent.status, 200, "{}", sent.body);
    assert!(sent.body.contains(new));
    let to_new = mail_to(&sink, new, "/account/email/confirm").await;
    let notice = mail_to(&sink, EMAIL, new).await;
    assert!(notice.body.contains(new), "{}", notice.body);
    assert!(!notice.body.contains("token="), "the notice carries no link");
    let token = link_token(&to_new.body, "/account/email/confirm").expect("a confirmation link");
    // Not yet.
    assert_eq!(
        node.state.accounts.user(&user_id).await.unwrap().unwrap().email,
        EMAIL
    );

    // Opening the link (a mail scanner) changes nothing; the button does.
    let mut mailbox = Browser::new();
    let page = mailbox
        .get(&node.at(&format!("/account/email/confirm?token={token}")))
        .await;
    assert_eq!(page.status, 200);
    assert_eq!(
        node.state.accounts.user(&user_id).await.unwrap().unwrap().email,
        EMAIL
    );
    let done = mailbox
        .post_form(&node.at("/account/email/confirm"), &page.form_fields())
        .await;
    assert_eq!(done.status, 200, "{}", done.body);
    let user = node.state.accounts.user(&user_id).await.unwrap().unwrap();
    assert_eq!(user.email, new);
    assert!(user.email_verified_at.is_some());
    // Single use.
    let again = mailbox
        .post_form(&node.at("/account/email/confirm"), &page.form_fields())
        .await;
    assert_eq!(again.status, 400);
    let audit = node
        .state
        .db
        .audit_records(&AuditQuery {
            subject: Some(user_id.clone()),
            ..Default::default()
        })
        .await
        .unwrap();
    let events: Vec<&str> = audit.iter().map(|r| r.event.as_str()).collect();
    assert!(
        events.contains(&"email.change_requested") && events.contains(&"email.changed"),
        "{events:?}"
    );
    // The new address signs in; the old one does not.
    let mut fresh = Browser::new();
    let (back, _) = sign_in_at(&node, &mut fresh, "/account", new, PASSWORD).await;
    assert_eq!(back.status, 302);

    // Through the JSON API, and an address taken between request and confirmation.
    let tokens = json_login(&node, new, "api").await;
    let bearer = tokens["accessToken"].as_str().unwrap();
    let taken = "forms-taken@example.com";
    let wrong = node
        .client
        .post(node.at("/auth/email"))
        .bearer_auth(bearer)
        .json(&serde_json::json!({ "email": taken, "currentPassword": "nope" }))
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 401);
    let asked = node
        .client
        .post(node.at("/auth/email"))
        .bearer_auth(bearer)
        .json(&serde_json::json!({ "email": taken, "currentPassword": PASSWORD }))
        .send()
        .await
        .unwrap();
    assert_eq!(asked.status(), 202);
    let link = mail_to(&sink, taken, "/account/email/confirm").await;
    let token = link_token(&link.body, "/account/email/confirm").unwrap();
    node.create_user(taken, PASSWORD).await;
    let conflict = node
        .client
        .post(node.at("/auth/email/confirm"))
        .json(&serde_json::json!({ "token": token }))
        .send()
        .await
        .unwrap();
    assert_eq!(conflict.status(), 409);
    assert_eq!(
        node.state.accounts.user(&user_id).await.unwrap().unwrap().email,
        new
    );
    let unknown = node
        .client
        .post(node.at("/auth/email/confirm"))
        .json(&serde_json::json!({ "token": "made-up" }))
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), 400);
    // Unauthenticated: 401.
    let anonymous = node
        .client
        .post(node.at("/auth/email"))
        .json(&serde_json::json!({ "email": "x@example.com", "currentPassword": PASSWORD }))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), 401);
}

async fn deleting_the_account_needs_the_password_and_ends_everything(backend: Backend) {
    let Some(node) = spawn(backend).await else { return };
    let user_id = node.create_user(EMAIL, PASSWORD).await;
    let (mut browser, csrf) = signed_in(&node, EMAIL).await;
    let other = json_login(&node, EMAIL, "other").await;
    let wrong = browser
        .post_form(
            &node.at("/account/delete"),
            &form(&[("csrf", &csrf), ("current_password", "wrong"), ("confirm", "yes")]),
        )
        .await;
    assert_eq!(wrong.status, 401, "{}", wrong.body);
    let unconfirmed = browser
        .post_form(
            &node.at("/account/delete"),
            &form(&[("csrf", &csrf), ("current_password", PASSWORD)]),
        )
        .await;
    assert_eq!(unconfirmed.status, 400, "{}", unconfirmed.body);
    assert!(node.state.accounts.user(&user_id).await.unwrap().is_some());

    let deleted = browser
        .post_form(
            &node.at("/account/delete"),
            &form(&[
                ("csrf", &csrf),
                ("current_password", PASSWORD),
                ("confirm", "yes"),
            ]),
        )
        .await;
    assert_eq!(deleted.status, 200, "{}", deleted.body);
    assert!(set_cookie(&deleted, "tessera_account")
        .unwrap()
        .contains("Max-Age=0"));
    assert!(node.state.accounts.user(&user_id).await.unwrap().is_none());
    assert!(node.state.tokens.sessions_of(&user_id).await.unwrap().is_empty());
    let refresh = node
        .client
        .post(node.at("/oauth2/token"))
        .form(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", other["refreshToken"].as_str().unwrap()),
            ("client_id", "tessera-first-party"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(refresh.status(), 400);
    let audit = node
        .state
        .db
        .audit_records(&AuditQuery {
            event: Some("user.deleted".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(audit.len(), 1);
    assert_eq!(
        audit[0].actor.as_deref(),
        Some(format!("user:{user_id}").as_str())
    );
    assert_eq!(browser.get(&node.at("/account")).await.status, 302);
}

async fn the_password_pages_mark_the_broken_rule(backend: Backend) {
    let Some(node) = spawn(backend).await else { return };
    node.create_user(EMAIL, PASSWORD).await;
    let (mut browser, csrf) = signed_in(&node, EMAIL).await;
    let page = browser.get(&node.at("/account/password")).await;
    assert!(page.body.contains("id=\"password-rules\""));
    assert_eq!(page.body.matches("class=\"broken\"").count(), 0);
    for (new, repeat, status) in [
        ("short", "short", 400),
        (PASSWORD, PASSWORD, 400),
        ("a whole new passphrase 42", "a different one", 400),
    ] {
        let refused = browser
            .post_form(
                &node.at("/account/password"),
                &form(&[
                    ("csrf", &csrf),
                    ("current_password", PASSWORD),
                    ("new_password", new),
                    ("repeat_password", repeat),
                ]),
            )
            .await;
        assert_eq!(refused.status, status, "{new}: {}", refused.body);
        assert!(refused.body.contains("role=\"alert\""));
        if new == repeat {
            assert_eq!(
                refused.body.matches("class=\"broken\"").count(),
                1,
                "{new}: {}",
                refused.body
            );
        }
    }
    let changed = browser
        .post_form(
            &node.at("/account/password"),
            &form(&[
                ("csrf", &csrf),
                ("current_password", PASSWORD),
                ("new_password", "a whole new passphrase 42"),
                ("repeat_password", "a whole new passphrase 42"),
            ]),
        )
        .await;
    assert_eq!(changed.status, 303, "{}", changed.body);
    assert_eq!(
        browser.get(&node.at("/account/password?changed=1")).await.status,
        200,
        "this session stays"
    );
    // The sign-up page marks the rule too, and keeps the typed address.
    let mut visitor = Browser::new();
    let shown = visitor.get(&node.at("/account/signup")).await;
    let mut fields = shown.form_fields();
    fields.insert("email".into(), "<b>new</b>@example.com".into());
    fields.insert("password".into(), "short".into());
    fields.insert("repeat_password".into(), "short".into());
    let refused = visitor.post_form(&node.at("/account/signup"), &fields).await;
    assert_eq!(refused.status, 400, "{}", refused.body);
    // The answer is a fresh form (with a fresh CSRF token).
    let mut fields = refused.form_fields();
    fields.insert("email".into(), "signup-rule@example.com".into());
    fields.insert("password".into(), "short".into());
    fields.insert("repeat_password".into(), "short".into());
    let refused = visitor.post_form(&node.at("/account/signup"), &fields).await;
    assert_eq!(refused.status, 400);
    assert_eq!(
        refused.body.matches("class=\"broken\"").count(),
        1,
        "{}",
        refused.body
    );
    assert!(refused.body.contains("value=\"signup-rule@example.com\""));
}

/// The text between `start` and the next `end` in `body`.
fn between<'a>(body: &'a str, start: &str, end: &str) -> &'a str {
    let from = body
        .find(start)
        .map(|i| i + start.len())
        .unwrap_or_else(|| panic!("no {start} in {body}"));
    let rest = &body[from..];
    &rest[..rest.find(end).unwrap()]
}

async fn the_security_page_enrols_renames_and_removes_a_factor(backend: Backend) {
    let Some(node) = spawn(backend).await else { return };
    let user_id = node.create_user(EMAIL, PASSWORD).await;
    let (mut browser, csrf) = signed_in(&node, EMAIL).await;
    let page = browser.get(&node.at("/account/security")).await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains("No second factor yet"), "{}", page.body);

    // Enrol: the QR code and key; a wrong code leaves it unconfirmed; the right one
    // confirms it and shows the recovery codes once.
    let enrol = browser
        .post_form(&node.at("/account/security/totp"), &form(&[("csrf", &csrf)]))
        .await;
    assert_eq!(enrol.status, 200, "{}", enrol.body);
    assert!(enrol.body.contains("<svg"), "a QR code");
    let secret = between(&enrol.body, "<code class=\"key\">", "</code>").to_owned();
    let factor = enrol.form_fields()["factor"].clone();
    let wrong = browser
        .post_form(
            &node.at("/account/security/totp/confirm"),
            &form(&[("csrf", &csrf), ("factor", &factor), ("code", "000000")]),
        )
        .await;
    assert_eq!(wrong.status, 400, "{}", wrong.body);
    assert!(wrong.body.contains("role=\"alert\""));
    assert!(!wrong.body.contains(&secret), "the key is shown once");
    let uri = format!("otpauth://totp/Tessera:{EMAIL}?secret={secret}&issuer=Tessera");
    let now = tessera_idp::clock::Clock::now(node.clock.as_ref());
    let code = crate::mfa::pyotp_code(&uri, now);
    let confirmed = browser
        .post_form(
            &node.at("/account/security/totp/confirm"),
            &form(&[("csrf", &csrf), ("factor", &factor), ("code", &code)]),
        )
        .await;
    assert_eq!(confirmed.status, 200, "{}", confirmed.body);
    assert_eq!(
        confirmed.body.matches("<li><code>").count(),
        10,
        "{}",
        confirmed.body
    );
    let factors = node.state.mfa.factors(&user_id).await.unwrap();
    assert_eq!(factors.len(), 1);
    assert!(factors[0].confirmed);

    // Rename (markup stays text), then the last factor goes only with the password.
    let renamed = browser
        .post_form(
            &node.at("/account/security/rename"),
            &form(&[("csrf", &csrf), ("factor", &factor), ("name", "<b>phone</b>")]),
        )
        .await;
    assert_eq!(renamed.status, 303, "{}", renamed.body);
    let page = browser.get(&node.at("/account/security?done=renamed")).await;
    assert!(page.body.contains("&lt;b&gt;phone&lt;/b&gt;") && !page.body.contains("<b>phone"));
    for password in ["", "wrong password"] {
        let refused = browser
            .post_form(
                &node.at("/account/security/remove"),
                &form(&[
                    ("csrf", &csrf),
                    ("factor", &factor),
                    ("current_password", password),
                ]),
            )
            .await;
        assert_eq!(refused.status, 403, "{password:?}: {}", refused.body);
    }
    assert_eq!(node.state.mfa.factors(&user_id).await.unwrap().len(), 1);
    // Another user's factor is not this user's to touch.
    let other_id = node.create_user("forms-factor@example.com", PASSWORD).await;
    let other = node.state.accounts.user(&other_id).await.unwrap().unwrap();
    let theirs = node
        .state
        .mfa
        .enrol_totp(&other, None, &Default::default())
        .await
        .unwrap();
    for path in ["/account/security/remove", "/account/security/rename"] {
        let refused = browser
            .post_form(
                &node.at(path),
                &form(&[
                    ("csrf", &csrf),
                    ("factor", &theirs.factor_id),
                    ("current_password", PASSWORD),
                    ("name", "mine now"),
                ]),
            )
            .await;
        assert_eq!(refused.status, 404, "{path}: {}", refused.body);
    }
    assert_eq!(
        node.state.mfa.factors(&other_id).await.unwrap()[0].name,
        "Authenticator app"
    );
    let removed = browser
        .post_form(
            &node.at("/account/security/remove"),
            &form(&[
                ("csrf", &csrf),
                ("factor", &factor),
                ("current_password", PASSWORD),
            ]),
        )
        .await;
    assert_eq!(removed.status, 303, "{}", removed.body);
    assert!(node.state.mfa.factors(&user_id).await.unwrap().is_empty());
    // The recent events show what happened.
    let page = browser.get(&node.at("/account/security?done=removed")).await;
    assert!(page.body.contains("mfa.removed"), "{}", page.body);
    // Unlinking an identity the user does not have: 404.
    let unlink = browser
        .post_form(
            &node.at("/account/security/unlink"),
            &form(&[("csrf", &csrf), ("provider", "google"), ("subject", "someone")]),
        )
        .await;
    assert_eq!(unlink.status, 404, "{}", unlink.body);
}
