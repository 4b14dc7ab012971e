//! The admin console (`/console`) over HTTP, as a browser uses it: signing in through
//! Tessera's own authorization code flow with a second factor, an operator's changes
//! (through the same services as the admin API, audited with the operator as actor), an
//! auditor's read-only view, and the abuse: forged and cross-origin posts, an auditor's
//! writes, a user without a console role or without a second factor, another user's
//! session id, markup in everything shown back, framing.

use std::collections::BTreeMap;

use tessera_store::durable::{AuditQuery, AuditStore as _, KeyStore as _};
use tessera_testkit::{backend_tests, spawn, Backend, Browser, Page, TestClient, TestNode};

use crate::mfa::{enrol, now, pyotp_available, pyotp_code, who, PASSWORD};

backend_tests!(
    an_operator_signs_in_with_a_factor_and_manages_users_clients_and_keys,
    an_auditor_reads_everything_and_changes_nothing,
    forged_foreign_and_unentitled_requests_change_nothing,
    the_console_in_chromium_is_accessible_light_and_keyboard_operable,
);

/// A user with `roles` and a confirmed authenticator app; returns (id, otpauth URI).
async fn staff(node: &TestNode, email: &str, roles: &[&str]) -> (String, String) {
    let roles: Vec<String> = roles.iter().map(|r| (*r).to_owned()).collect();
    let user = node
        .state
        .accounts
        .create_user(email, PASSWORD, true, &roles, &Default::default())
        .await
        .unwrap();
    let (uri, _) = enrol(node, email).await;
    (user.id, uri)
}

fn absolute(node: &TestNode, location: &str) -> String {
    if location.starts_with("http") {
        location.to_owned()
    } else {
        node.at(location)
    }
}

/// Opens the console in `browser` and gives `email`'s password: the redirect to the
/// authorization endpoint, the login page. Returns the page after the password.
async fn password_step(node: &TestNode, browser: &mut Browser, email: &str) -> Page {
    let start = browser.get(&node.at("/console")).await;
    assert_eq!(start.status, 302, "{}", start.body);
    let authorize = absolute(node, start.location.as_deref().unwrap());
    assert!(
        authorize.contains("/oauth2/authorize?") && authorize.contains("client_id=tessera-console"),
        "{authorize}"
    );
    assert!(authorize.contains("code_challenge_method=S256"), "{authorize}");
    let login = browser.get(&authorize).await;
    assert_eq!(login.status, 200, "{}", login.body);
    let mut form = login.form_fields();
    form.insert("username".into(), email.to_owned());
    form.insert("password".into(), PASSWORD.into());
    browser
        .post_form(&node.at("/oauth2/authorize/login"), &form)
        .await
}

/// Signs `email` in to the console in `browser`: the password, the factor page, the
/// callback. Returns what `/console` then answers.
async fn sign_in_as(node: &TestNode, browser: &mut Browser, email: &str, otpauth: Option<&str>) -> Page {
    let mut after = password_step(node, browser, email).await;
    if let Some(uri) = otpauth {
        assert_eq!(after.status, 200, "the factor page: {}", after.body);
        let mut form = after.form_fields();
        form.insert("code".into(), pyotp_code(uri, now(node)));
        after = browser.post_form(&node.at("/oauth2/authorize/mfa"), &form).await;
    }
    assert_eq!(after.status, 303, "{}", after.body);
    let callback = absolute(node, after.location.as_deref().unwrap());
    assert!(callback.starts_with(&node.at("/console/callback?")), "{callback}");
    let landed = browser.get(&callback).await;
    assert_eq!(landed.status, 302, "{}", landed.body);
    assert_eq!(landed.location.as_deref(), Some("/console"));
    assert!(browser.cookie("tessera_console").is_some());
    browser.get(&node.at("/console")).await
}

/// [`sign_in_as`] someone the console lets in: the dashboard.
async fn sign_in(node: &TestNode, browser: &mut Browser, email: &str, otpauth: Option<&str>) -> Page {
    let dashboard = sign_in_as(node, browser, email, otpauth).await;
    assert_eq!(dashboard.status, 200, "{}", dashboard.body);
    dashboard
}

/// Posts `fields` plus the page's CSRF token to `path`.
async fn post(
    node: &TestNode,
    browser: &mut Browser,
    csrf: &str,
    path: &str,
    fields: &[(&str, &str)],
) -> Page {
    let mut form: BTreeMap<String, String> = fields
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    form.insert("csrf".into(), csrf.to_owned());
    browser.post_form(&node.at(path), &form).await
}

fn csrf_of(page: &Page) -> String {
    page.form_fields()
        .get("csrf")
        .cloned()
        .unwrap_or_else(|| panic!("no CSRF field on {}", page.body))
}

/// Whether `client_id` with `secret` is let in at the introspection endpoint.
async fn authenticates(node: &TestNode, client_id: &str, secret: &str) -> bool {
    let client = TestClient {
        client_id: client_id.to_owned(),
        secret: Some(secret.to_owned()),
    };
    let response = node
        .post_form("/oauth2/introspect", &client, &[("token", "anything")])
        .await;
    match response.status().as_u16() {
        200 => true,
        401 => false,
        other => panic!("introspection answered {other}"),
    }
}

async fn events(node: &TestNode, event: &str) -> Vec<tessera_store::durable::AuditRecord> {
    node.state
        .db
        .audit_records(&AuditQuery {
            event: Some(event.to_owned()),
            ..AuditQuery::default()
        })
        .await
        .unwrap()
}

async fn an_operator_signs_in_with_a_factor_and_manages_users_clients_and_keys(backend: Backend) {
    if !pyotp_available() {
        return;
    }
    let Some(node) = spawn(backend).await else { return };
    let operator = who("console-op");
    let (operator_id, uri) = staff(&node, &operator, &["tessera:admin"]).await;
    let target = who("console-target");
    let target_id = node.create_user(&target, PASSWORD).await;
    // Two sessions of the target: one to end from the console, one that stays.
    let app = node.create_client("console-app", true, "mobile").await;
    let ended = node.login(&target_id, &app).await.unwrap();
    let kept = node.login(&target_id, &app).await.unwrap();

    let mut browser = Browser::new();
    let dashboard = sign_in(&node, &mut browser, &operator, Some(&uri)).await;
    assert!(dashboard.body.contains("<svg") && dashboard.body.contains("role=\"img\""));
    // The operator's own sign-in is counted in the chart's table.
    assert!(dashboard.body.contains("<td>1</td>"), "{}", dashboard.body);
    assert!(
        dashboard.body.contains(">mobile</text>"),
        "sessions by channel: {}",
        dashboard.body
    );
    let csrf = csrf_of(&dashboard);

    // Users: the search finds the target; its page lists both sessions.
    let list = browser
        .get(&node.at(&format!("/console/users?q={}", target.replace('@', "%40"))))
        .await;
    assert_eq!(list.status, 200);
    assert!(list.body.contains(&target));
    let user_path = format!("/console/users/{target_id}");
    let page = browser.get(&node.at(&user_path)).await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert_eq!(page.body.matches("name=\"session\"").count(), 2, "{}", page.body);

    // End one session: its refresh token is dead at the token endpoint, the other lives.
    let session_id = node
        .state
        .tokens
        .session_of_access_token(&ended.access_token)
        .unwrap();
    let done = post(
        &node,
        &mut browser,
        &csrf,
        &format!("{user_path}/sessions/end"),
        &[("session", &session_id)],
    )
    .await;
    assert_eq!(done.status, 303, "{}", done.body);
    assert_eq!(done.location.as_deref(), Some(user_path.as_str()));
    let (status, body) = node.refresh(&app, ended.refresh_token.secret()).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant")),
        "{body}"
    );
    let (status, _) = node.refresh(&app, kept.refresh_token.secret()).await;
    assert_eq!(status, 200);
    // The all-sessions page lists it among everyone's; ending it there comes back there.
    let all = browser.get(&node.at("/console/sessions")).await;
    assert_eq!(all.status, 200, "{}", all.body);
    let kept_id = node
        .state
        .tokens
        .session_of_access_token(&kept.access_token)
        .unwrap();
    assert!(all.body.contains(&kept_id) && all.body.contains(&target_id));
    let done = post(
        &node,
        &mut browser,
        &csrf,
        &format!("{user_path}/sessions/end"),
        &[("session", &kept_id), ("return_to", "sessions")],
    )
    .await;
    assert_eq!(done.location.as_deref(), Some("/console/sessions"));
    let (status, _) = node.refresh(&app, kept.refresh_token.secret()).await;
    assert_eq!(status, 400, "ended from the all-sessions page");
    let broken = browser
        .get(&node.at("/console/sessions?cursor=bm90LWEtY3Vyc29y"))
        .await;
    assert_eq!(broken.status, 400);
    let shown = browser.get(&node.at(&user_path)).await;
    assert!(
        shown.body.contains("role=\"status\""),
        "the outcome is shown once: {}",
        shown.body
    );
    assert!(!browser
        .get(&node.at(&user_path))
        .await
        .body
        .contains("role=\"status\""));

    // Disable: audited with the operator as actor; the target's sessions end with it.
    let done = post(&node, &mut browser, &csrf, &format!("{user_path}/disable"), &[]).await;
    assert_eq!(done.status, 303, "{}", done.body);
    let user = node.state.accounts.user(&target_id).await.unwrap().unwrap();
    assert!(user.disabled_at.is_some());
    let disabled = events(&node, "user.disabled").await;
    assert_eq!(
        disabled[0].actor.as_deref(),
        Some(format!("user:{operator_id}").as_str())
    );
    assert_eq!(disabled[0].subject.as_deref(), Some(target_id.as_str()));
    // An operator cannot lock themselves out.
    let own = post(
        &node,
        &mut browser,
        &csrf,
        &format!("/console/users/{operator_id}/disable"),
        &[],
    )
    .await;
    assert_eq!(own.status, 303);
    assert!(node
        .state
        .accounts
        .user(&operator_id)
        .await
        .unwrap()
        .unwrap()
        .disabled_at
        .is_none());

    // Delete needs the address typed.
    let slip = post(
        &node,
        &mut browser,
        &csrf,
        &format!("{user_path}/delete"),
        &[("confirm", "someone@else.example")],
    )
    .await;
    assert_eq!(slip.status, 303);
    assert!(node.state.accounts.user(&target_id).await.unwrap().is_some());
    let gone = post(
        &node,
        &mut browser,
        &csrf,
        &format!("{user_path}/delete"),
        &[("confirm", &target)],
    )
    .await;
    assert_eq!(gone.location.as_deref(), Some("/console/users"));
    assert!(node.state.accounts.user(&target_id).await.unwrap().is_none());
    assert_eq!(
        events(&node, "user.deleted").await[0].actor.as_deref(),
        Some(format!("user:{operator_id}").as_str())
    );

    // Clients: create a confidential one; its secret is shown once and works.
    let created = post(
        &node,
        &mut browser,
        &csrf,
        "/console/clients/new",
        &[
            ("client_id", "console-made"),
            ("name", "Made <here>"),
            ("type", "confidential"),
            (
                "redirect_uris",
                "https://made.example/cb\r\n\r\nhttps://made.example/cb2\r\n",
            ),
            ("scope", "openid email"),
        ],
    )
    .await;
    assert_eq!(created.status, 303, "{}", created.body);
    assert_eq!(created.location.as_deref(), Some("/console/clients/console-made"));
    let shown = browser.get(&node.at("/console/clients/console-made")).await;
    let secret = shown.form_fields().get("secret").cloned();
    let secret = secret.unwrap_or_else(|| {
        // The read-only field has an id, not a name: read its value.
        let start = shown.body.find("id=\"secret\"").expect("the secret is shown");
        let rest = &shown.body[start..];
        let value = rest.split("value=\"").nth(1).unwrap();
        value.split('"').next().unwrap().to_owned()
    });
    assert!(shown.body.contains("Made &lt;here&gt;"));
    let again = browser.get(&node.at("/console/clients/console-made")).await;
    assert!(!again.body.contains(&secret), "a secret is shown once");
    let record = node.state.clients.client("console-made").await.unwrap().unwrap();
    assert_eq!(
        record.redirect_uris,
        ["https://made.example/cb", "https://made.example/cb2"]
    );
    assert!(
        authenticates(&node, "console-made", &secret).await,
        "the secret shown is the client's"
    );
    assert_eq!(
        events(&node, "client.created").await[0].actor.as_deref(),
        Some(format!("user:{operator_id}").as_str())
    );
    // A refused form is shown again with what was typed, and nothing is created.
    let refused = post(
        &node,
        &mut browser,
        &csrf,
        "/console/clients/new",
        &[
            ("client_id", "console-bad"),
            ("name", "Bad"),
            ("type", "confidential"),
            ("redirect_uris", "javascript:alert(1)"),
        ],
    )
    .await;
    assert_eq!(refused.status, 400, "{}", refused.body);
    assert!(refused.body.contains("role=\"alert\"") && refused.body.contains("value=\"console-bad\""));
    assert!(node.state.clients.client("console-bad").await.unwrap().is_none());
    // Edit the redirect URIs; rotate the secret (the old one stops working).
    let edited = post(
        &node,
        &mut browser,
        &csrf,
        "/console/clients/console-made/edit",
        &[("name", "Made"), ("redirect_uris", "https://made.example/only")],
    )
    .await;
    assert_eq!(edited.status, 303);
    let record = node.state.clients.client("console-made").await.unwrap().unwrap();
    assert_eq!(record.redirect_uris, ["https://made.example/only"]);
    let rotated = post(
        &node,
        &mut browser,
        &csrf,
        "/console/clients/console-made/rotate-secret",
        &[],
    )
    .await;
    assert_eq!(rotated.status, 303);
    assert!(
        !authenticates(&node, "console-made", &secret).await,
        "the old secret is dead"
    );
    // The built-in clients are not edited here.
    let builtin = post(
        &node,
        &mut browser,
        &csrf,
        "/console/clients/tessera-console/edit",
        &[("redirect_uris", "https://evil.example/cb")],
    )
    .await;
    assert_eq!(builtin.status, 303);
    let console_client = node
        .state
        .clients
        .client("tessera-console")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(console_client.redirect_uris, [node.at("/console/callback")]);

    // Keys: a rotation adds a key per algorithm, audited with the operator.
    let before = node.state.db.all_keys().await.unwrap().len();
    let rotated = post(&node, &mut browser, &csrf, "/console/keys/rotate", &[]).await;
    assert_eq!(rotated.status, 303);
    assert_eq!(node.state.db.all_keys().await.unwrap().len(), before + 3);
    let keys = browser.get(&node.at("/console/keys")).await;
    assert_eq!(keys.status, 200);
    assert!(keys.body.contains("published"), "{}", keys.body);

    // The audit trail, filtered by event; the next page link keeps the filter.
    let audit = browser.get(&node.at("/console/audit?type=key.rotated")).await;
    assert_eq!(audit.status, 200);
    assert_eq!(
        audit.body.matches("<code>key.rotated</code>").count(),
        3,
        "{}",
        audit.body
    );
    let bad = browser.get(&node.at("/console/audit?since=yesterday")).await;
    assert_eq!(bad.status, 400);
    assert!(bad.body.contains("role=\"alert\""));

    // Roles and providers are listed.
    assert_eq!(browser.get(&node.at("/console/roles")).await.status, 200);
    assert_eq!(browser.get(&node.at("/console/providers")).await.status, 200);

    // Sign-out ends the Tessera session: the console asks for a sign-in again.
    let out = post(&node, &mut browser, &csrf, "/console/sign-out", &[]).await;
    assert_eq!(out.status, 200, "{}", out.body);
    let after = browser.get(&node.at("/console/users")).await;
    assert_eq!(after.status, 302);
    assert!(after.location.as_deref().unwrap().contains("/oauth2/authorize?"));
}

async fn an_auditor_reads_everything_and_changes_nothing(backend: Backend) {
    if !pyotp_available() {
        return;
    }
    let Some(node) = spawn(backend).await else { return };
    let auditor = who("console-auditor");
    let (_, uri) = staff(&node, &auditor, &["tessera:auditor"]).await;
    let target = who("console-watched");
    let target_id = node.create_user(&target, PASSWORD).await;
    let app = node.create_client("audited-app", true, "web").await;
    let session = node.login(&target_id, &app).await.unwrap();
    let session_id = node
        .state
        .tokens
        .session_of_access_token(&session.access_token)
        .unwrap();

    let mut browser = Browser::new();
    let dashboard = sign_in(&node, &mut browser, &auditor, Some(&uri)).await;
    let csrf = csrf_of(&dashboard);
    for path in [
        "/console/users".to_owned(),
        format!("/console/users/{target_id}"),
        "/console/sessions".to_owned(),
        "/console/clients".to_owned(),
        "/console/clients/audited-app".to_owned(),
        "/console/keys".to_owned(),
        "/console/audit".to_owned(),
        "/console/roles".to_owned(),
        "/console/providers".to_owned(),
    ] {
        let page = browser.get(&node.at(&path)).await;
        assert_eq!(page.status, 200, "{path}: {}", page.body);
        // The only forms that post are the sign-out and the expiry warning's "stay signed in".
        assert_eq!(
            page.body.matches("method=\"post\"").count(),
            2,
            "{path}: {}",
            page.body
        );
        assert!(
            page.body.contains("action=\"/console/sign-out\"")
                && page.body.contains("action=\"/console/session/extend\"")
        );
    }
    assert_eq!(browser.get(&node.at("/console/clients/new")).await.status, 403);
    // Every write is refused, with a valid CSRF token, and changes nothing.
    let keys_before = node.state.db.all_keys().await.unwrap().len();
    for (path, fields) in [
        (format!("/console/users/{target_id}/disable"), vec![]),
        (
            format!("/console/users/{target_id}/delete"),
            vec![("confirm", target.as_str())],
        ),
        (
            format!("/console/users/{target_id}/sessions/end"),
            vec![("session", session_id.as_str())],
        ),
        (format!("/console/users/{target_id}/sessions/end-all"), vec![]),
        (format!("/console/users/{target_id}/mfa/reset"), vec![]),
        (
            "/console/clients/new".to_owned(),
            vec![("client_id", "auditor-made"), ("name", "x")],
        ),
        ("/console/clients/audited-app/rotate-secret".to_owned(), vec![]),
        ("/console/keys/rotate".to_owned(), vec![]),
    ] {
        let refused = post(&node, &mut browser, &csrf, &path, &fields).await;
        assert_eq!(refused.status, 403, "{path}: {}", refused.body);
    }
    let user = node.state.accounts.user(&target_id).await.unwrap().unwrap();
    assert!(user.disabled_at.is_none());
    let (status, _) = node.refresh(&app, session.refresh_token.secret()).await;
    assert_eq!(status, 200, "the session lives on");
    assert!(node.state.clients.client("auditor-made").await.unwrap().is_none());
    assert_eq!(node.state.db.all_keys().await.unwrap().len(), keys_before);
}

async fn forged_foreign_and_unentitled_requests_change_nothing(backend: Backend) {
    if !pyotp_available() {
        return;
    }
    let Some(node) = spawn(backend).await else { return };
    let operator = who("console-op2");
    let (_, uri) = staff(&node, &operator, &["tessera:admin"]).await;
    let target = who("console-victim");
    let target_id = node.create_user(&target, PASSWORD).await;
    let other = who("console-other");
    let other_id = node.create_user(&other, PASSWORD).await;
    // A user agent and a client name full of markup, shown back on the console's pages.
    let xss = "<script>alert(1)</script><img src=x onerror=alert(2)>";
    let mut client = node.create_client("xss-app", true, "web").await;
    let mut record = node.state.clients.client("xss-app").await.unwrap().unwrap();
    record.name = xss.to_owned();
    node.state.clients.update_client(&record).await.unwrap();
    client.client_id = record.client_id.clone();
    let login = tessera_idp::tokens::Login {
        subject: &target_id,
        client: &record,
        channel: None,
        scope: "openid",
        roles: &[],
        role_terms: &Default::default(),
        active_roles: None,
        amr: &["pwd"],
        auth_time: now(&node),
        sso_session_id: None,
        idp: None,
    };
    let context = tessera_idp::audit::RequestContext {
        ip: Some("198.51.100.7".into()),
        user_agent: Some(xss.into()),
        request_id: None,
    };
    node.state.tokens.start_session(login, &context).await.unwrap();
    let others = node.login(&other_id, &client).await.unwrap();
    let others_session = node
        .state
        .tokens
        .session_of_access_token(&others.access_token)
        .unwrap();

    let mut browser = Browser::new();
    let dashboard = sign_in(&node, &mut browser, &operator, Some(&uri)).await;
    let csrf = csrf_of(&dashboard);
    // Framing is refused, and the strict CSP applies.
    assert_eq!(dashboard.headers["x-frame-options"], "DENY");
    let csp = dashboard.headers["content-security-policy"].to_str().unwrap();
    assert!(
        csp.contains("frame-ancestors 'none'") && csp.contains("script-src 'self'"),
        "{csp}"
    );
    assert_eq!(dashboard.headers["cache-control"], "no-store");

    // Markup shown back stays text.
    for path in [
        format!("/console/users/{target_id}"),
        "/console/clients".to_owned(),
        "/console/clients/xss-app".to_owned(),
    ] {
        let page = browser.get(&node.at(&path)).await;
        assert_eq!(page.status, 200, "{path}");
        assert!(
            !page.body.contains("<script>alert") && !page.body.contains("<img src=x"),
            "{path}: {}",
            page.body
        );
        assert!(
            page.body.contains("&lt;script&gt;alert(1)"),
            "{path}: {}",
            page.body
        );
    }

    // A forged CSRF token, none, or a post from another origin: 403, nothing changes.
    let disable = node.at(&format!("/console/users/{target_id}/disable"));
    for token in ["forged", ""] {
        let refused = post(
            &node,
            &mut browser,
            token,
            &format!("/console/users/{target_id}/disable"),
            &[],
        )
        .await;
        assert_eq!(refused.status, 403, "{token:?}");
    }
    let cookies = format!("tessera_console={}", browser.cookie("tessera_console").unwrap());
    let foreign = reqwest::Client::new()
        .post(&disable)
        .header("cookie", &cookies)
        .header("origin", "https://evil.example")
        .form(&[("csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(foreign.status(), 403);
    let cross_site = reqwest::Client::new()
        .post(&disable)
        .header("cookie", &cookies)
        .header("sec-fetch-site", "cross-site")
        .form(&[("csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(cross_site.status(), 403);
    assert!(node
        .state
        .accounts
        .user(&target_id)
        .await
        .unwrap()
        .unwrap()
        .disabled_at
        .is_none());

    // Another user's session id through this user's page: refused, the session lives.
    let wrong = post(
        &node,
        &mut browser,
        &csrf,
        &format!("/console/users/{target_id}/sessions/end"),
        &[("session", &others_session)],
    )
    .await;
    assert_eq!(wrong.status, 303);
    let (status, _) = node.refresh(&client, others.refresh_token.secret()).await;
    assert_eq!(status, 200);

    // A stolen or made-up cookie is no session: back to sign-in.
    let mut stranger = Browser::new();
    stranger.set_cookie("tessera_console", "made-up-handle");
    let page = stranger.get(&node.at("/console/users")).await;
    assert_eq!(page.status, 302);
    let mut from_account = Browser::new();
    from_account.set_cookie("tessera_account", browser.cookie("tessera_console").unwrap());
    assert_eq!(
        from_account.get(&node.at("/console")).await.status,
        302,
        "one app's cookie is not another's"
    );

    // An open redirect through the callback's return path is not possible: a made-up
    // state is refused with a page, not a redirect.
    let forged_callback = browser
        .get(&node.at("/console/callback?code=x&state=made-up"))
        .await;
    assert_eq!(forged_callback.status, 400);
    assert!(forged_callback.location.is_none());

    // Losing the role takes the console away at the next request.
    let user = node
        .state
        .accounts
        .user_by_email(&operator)
        .await
        .unwrap()
        .unwrap();
    node.state
        .accounts
        .set_roles(
            &user.id,
            &["member".to_owned()],
            &BTreeMap::new(),
            "operator",
            &Default::default(),
        )
        .await
        .unwrap();
    assert_eq!(browser.get(&node.at("/console")).await.status, 403);

    // A user without a console role gets a 403 page after signing in.
    let plain = who("console-plain");
    let (_, plain_uri) = staff(&node, &plain, &["member"]).await;
    let mut browser = Browser::new();
    let page = sign_in_as(&node, &mut browser, &plain, Some(&plain_uri)).await;
    assert_eq!(page.status, 403, "{}", page.body);
    assert!(!page.body.contains(&target), "nothing of the console is shown");

    // An operator without a factor is asked to enrol one before the console opens.
    let fresh = who("console-nofactor");
    node.state
        .accounts
        .create_user(
            &fresh,
            PASSWORD,
            true,
            &["tessera:admin".to_owned()],
            &Default::default(),
        )
        .await
        .unwrap();
    let mut browser = Browser::new();
    let enrol_page = password_step(&node, &mut browser, &fresh).await;
    assert_eq!(enrol_page.status, 200, "{}", enrol_page.body);
    assert!(
        enrol_page.body.contains("otpauth://") || enrol_page.body.contains("name=\"code\""),
        "{}",
        enrol_page.body
    );
    assert!(
        browser.cookie("tessera_sso").is_none(),
        "no sign-in without the factor"
    );
}

/// The whole browser run; it takes well under a minute when nothing hangs.
const SCRIPT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(300);

fn interop_dir() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/interop")
}

/// What is missing to run the browser and axe, if anything.
fn missing_browser_tools() -> Option<String> {
    let mut missing = Vec::new();
    if !std::path::Path::new("/usr/bin/chromium").is_file() {
        missing.push("/usr/bin/chromium");
    }
    for module in ["playwright-core", "axe-core"] {
        if !interop_dir().join("node_modules").join(module).is_dir() {
            missing.push(module);
        }
    }
    (!missing.is_empty()).then(|| missing.join(", "))
}

async fn the_console_in_chromium_is_accessible_light_and_keyboard_operable(backend: Backend) {
    let required = std::env::var("TESSERA_REQUIRE_INTEROP").is_ok_and(|v| v == "1");
    if let Some(missing) = missing_browser_tools() {
        assert!(
            !required,
            "the console's browser test needs {missing}: `npm ci` in tests/interop, Debian chromium"
        );
        eprintln!("skipped: the console in Chromium ({missing} not installed)");
        return;
    }
    if !pyotp_available() {
        return;
    }
    let Some(node) = spawn(backend).await else { return };
    let operator = who("console-browser-op");
    let (_, operator_uri) = staff(&node, &operator, &["tessera:admin"]).await;
    let auditor = who("console-browser-auditor");
    let (_, auditor_uri) = staff(&node, &auditor, &["tessera:auditor"]).await;
    let target = who("console-browser-target");
    let target_id = node.create_user(&target, PASSWORD).await;
    let app = node.create_client("console-browser-app", false, "partner").await;
    node.login(&target_id, &app).await.unwrap();

    let mut operator_browser = Browser::new();
    sign_in(&node, &mut operator_browser, &operator, Some(&operator_uri)).await;
    let mut auditor_browser = Browser::new();
    sign_in(&node, &mut auditor_browser, &auditor, Some(&auditor_uri)).await;
    // Something in the audit trail and a second page of it.
    let user_path = format!("/console/users/{target_id}");
    let pages = [
        "/console".to_owned(),
        "/console/users".to_owned(),
        user_path.clone(),
        "/console/sessions".to_owned(),
        "/console/clients".to_owned(),
        "/console/clients/console-browser-app".to_owned(),
        "/console/keys".to_owned(),
        "/console/audit".to_owned(),
        "/console/roles".to_owned(),
        "/console/providers".to_owned(),
    ];
    let backend_name = match backend {
        Backend::Sqlite => "sqlite",
        Backend::Postgres => "postgres",
    };
    let shots = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("console-screenshots")
        .join(backend_name);
    let mut command = tokio::process::Command::new("node");
    command
        .arg(interop_dir().join("console_pages.mjs"))
        .current_dir(interop_dir())
        .env("ISSUER", node.at(""))
        .env(
            "OPERATOR_COOKIE",
            operator_browser.cookie("tessera_console").unwrap(),
        )
        .env(
            "AUDITOR_COOKIE",
            auditor_browser.cookie("tessera_console").unwrap(),
        )
        .env("USER_PATH", &user_path)
        .env("PAGES", pages.join(" "))
        .env("SCREENSHOT_DIR", &shots)
        .kill_on_drop(true);
    let output = tokio::time::timeout(SCRIPT_TIMEOUT, command.output())
        .await
        .expect("the browser run hung")
        .expect("node runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "console_pages.mjs failed:\n{stdout}\n{stderr}"
    );
    let summary: serde_json::Value = serde_json::from_str(stdout.lines().last().unwrap_or_default())
        .unwrap_or_else(|_| panic!("no summary from console_pages.mjs:\n{stdout}\n{stderr}"));
    assert_eq!(summary["ok"], true, "{summary}");
    // The page weights, for the record (each was checked under 50 KB by the script).
    println!(
        "console page weights (bytes transferred, HTML + CSS): {}",
        summary["weights"]
    );
    for name in [
        "console-dashboard-en-desktop.png",
        "console-users-ko-mobile.png",
        "console-user-disabled-en-desktop.png",
    ] {
        let bytes = std::fs::read(shots.join(name)).unwrap_or_default();
        assert!(bytes.starts_with(b"\x89PNG"), "{name} was not written");
    }
    // The operator's click went through the service layer: the user is disabled, audited.
    let user = node.state.accounts.user(&target_id).await.unwrap().unwrap();
    assert!(
        user.disabled_at.is_some(),
        "the keyboard-only disable took effect"
    );
}
