//! The account pages' sign-in (`/account`): a hosted app that signs its users in through
//! Tessera's own authorization code flow (PKCE, state, nonce), redeems the code in-process,
//! and keeps only an opaque handle in the browser. Walked with the testkit's cookie-keeping
//! browser, as a person would: redirects, the login form, the callback.

use std::collections::BTreeMap;

use tessera_testkit::{backend_tests, spawn, spawn_with, Backend, Browser, Page, TestNode};

backend_tests!(
    signing_in_goes_through_the_authorization_code_flow_and_back_to_the_page,
    the_callback_refuses_a_replayed_or_foreign_state,
    an_ended_or_expired_session_sends_the_user_to_sign_in_again,
    signing_out_needs_the_csrf_token_and_ends_the_tessera_session,
    return_to_and_the_language_switch_stay_on_the_account_pages,
    the_account_client_follows_the_issuer,
    relying_parties_read_the_session_lifetimes_with_a_token,
);

const EMAIL: &str = "account-user@example.com";
pub(crate) const PASSWORD: &str = "account horse battery staple 9";

/// The absolute URL of a `Location` (ours are paths).
pub(crate) fn absolute(node: &TestNode, location: &str) -> String {
    if location.starts_with("http") {
        location.to_owned()
    } else {
        node.at(location)
    }
}

/// The value of `Set-Cookie: name=…` in a response, whole (with its attributes).
pub(crate) fn set_cookie(page: &Page, name: &str) -> Option<String> {
    page.headers
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|c| c.starts_with(&format!("{name}=")))
        .map(str::to_owned)
}

fn query_of(location: &str) -> BTreeMap<String, String> {
    let url = reqwest::Url::parse(&format!("http://x{}", location.trim_start_matches("http://x"))).unwrap();
    url.query_pairs()
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

/// Opens `path` of the account pages signed out, signs in on the hosted login page and
/// returns the callback's answer (a redirect back to the page) and the callback URL.
pub(crate) async fn sign_in_at(
    node: &TestNode,
    browser: &mut Browser,
    path: &str,
    email: &str,
    password: &str,
) -> (Page, String) {
    let start = browser.get(&node.at(path)).await;
    assert_eq!(start.status, 302, "{}", start.body);
    let authorize = start.location.clone().unwrap();
    assert!(authorize.starts_with("/oauth2/authorize?"), "{authorize}");
    let login = browser.get(&absolute(node, &authorize)).await;
    assert_eq!(login.status, 200, "{}", login.body);
    let mut form = login.form_fields();
    form.insert("username".into(), email.into());
    form.insert("password".into(), password.into());
    let done = browser
        .post_form(&node.at("/oauth2/authorize/login"), &form)
        .await;
    assert_eq!(done.status, 303, "{}", done.body);
    let callback = absolute(node, done.location.as_deref().unwrap());
    assert!(callback.starts_with(&node.at("/account/callback?")), "{callback}");
    let back = browser.get(&callback).await;
    (back, callback)
}

/// The CSRF token of a signed-in account page.
pub(crate) fn csrf_of(page: &Page) -> String {
    page.form_fields()
        .get("csrf")
        .cloned()
        .expect("the page has a CSRF field")
}

async fn signing_in_goes_through_the_authorization_code_flow_and_back_to_the_page(backend: Backend) {
    let Some(node) = spawn(backend).await else { return };
    let user_id = node.create_user(EMAIL, PASSWORD).await;
    let mut browser = Browser::new();

    // Signed out: to the authorization endpoint, as the built-in public client, with PKCE
    // S256, a state and a nonce, and a sign-in cookie binding them to this browser.
    let start = browser.get(&node.at("/account?from=test")).await;
    assert_eq!(start.status, 302);
    let location = start.location.clone().unwrap();
    let params = query_of(&location);
    assert_eq!(params["client_id"], "tessera-account");
    assert_eq!(params["response_type"], "code");
    assert_eq!(params["redirect_uri"], node.at("/account/callback"));
    assert_eq!(params["code_challenge_method"], "S256");
    assert_eq!(params["code_challenge"].len(), 43);
    assert!(
        params["state"].len() >= 32 && params["nonce"].len() >= 32,
        "{params:?}"
    );
    assert!(
        !params.contains_key("prompt"),
        "a first sign-in does not force a login"
    );
    let sign_in = set_cookie(&start, "tessera_account_sign_in").expect("a sign-in cookie");
    assert!(
        sign_in.contains("HttpOnly") && sign_in.contains("SameSite=Lax") && sign_in.contains("Path=/account"),
        "{sign_in}"
    );
    // The client exists, first party (no consent page), public, with the one redirect URI.
    let client = node
        .state
        .clients
        .client("tessera-account")
        .await
        .unwrap()
        .unwrap();
    assert!(client.first_party);
    assert_eq!(client.token_endpoint_auth_method, "none");
    assert_eq!(client.redirect_uris, vec![node.at("/account/callback")]);

    browser.forget_cookies();
    let (back, _) = sign_in_at(&node, &mut browser, "/account?from=test", EMAIL, PASSWORD).await;
    assert_eq!(back.status, 302, "{}", back.body);
    assert_eq!(
        back.location.as_deref(),
        Some("/account?from=test"),
        "back to the page"
    );
    let cookie = set_cookie(&back, "tessera_account").expect("an app-session cookie");
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax") && cookie.contains("Path=/account"),
        "{cookie}"
    );
    assert!(!cookie.contains("Secure"), "the test issuer is http: {cookie}");
    let handle = browser.cookie("tessera_account").unwrap().to_owned();
    assert!(handle.len() >= 43, "a random handle, not a token: {handle}");
    assert!(!handle.contains('.'), "not a JWT: {handle}");

    let home = browser.get(&node.at("/account")).await;
    assert_eq!(home.status, 200, "{}", home.body);
    assert!(home.body.contains(EMAIL), "{}", home.body);
    let csp = home.headers["content-security-policy"].to_str().unwrap();
    assert!(
        csp.contains("frame-ancestors 'none'") && csp.contains("script-src 'self'"),
        "{csp}"
    );
    assert!(!csp.contains("unsafe-inline"), "{csp}");
    assert_eq!(home.headers["x-frame-options"], "DENY");
    assert!(!home.body.contains("<script>"), "no inline script");
    // The session behind it is a token session of the account client, of this user.
    let sessions = node.state.tokens.sessions_of(&user_id).await.unwrap();
    assert_eq!(sessions.len(), 1, "{sessions:?}");
    assert_eq!(sessions[0].client_id, "tessera-account");
    assert!(sessions[0].sso_session_id.is_some());
}

async fn the_callback_refuses_a_replayed_or_foreign_state(backend: Backend) {
    let Some(node) = spawn(backend).await else { return };
    let user_id = node.create_user(EMAIL, PASSWORD).await;

    // A callback URL carried to another browser (login CSRF, a stolen code) is refused,
    // and the code it carried is not redeemed by it.
    let mut victim = Browser::new();
    let start = victim.get(&node.at("/account")).await;
    let login = victim
        .get(&absolute(&node, start.location.as_deref().unwrap()))
        .await;
    let mut form = login.form_fields();
    form.insert("username".into(), EMAIL.into());
    form.insert("password".into(), PASSWORD.into());
    let done = victim.post_form(&node.at("/oauth2/authorize/login"), &form).await;
    let callback = absolute(&node, done.location.as_deref().unwrap());
    let mut attacker = Browser::new();
    let foreign = attacker.get(&callback).await;
    assert_eq!(foreign.status, 400, "{}", foreign.body);
    assert!(set_cookie(&foreign, "tessera_account").is_none());
    assert!(node.state.tokens.sessions_of(&user_id).await.unwrap().is_empty());
    // The state is used up by that attempt: the real browser must start again too.
    let late = victim.get(&callback).await;
    assert_eq!(late.status, 400, "{}", late.body);

    // A fresh sign-in works once; its callback replayed is refused.
    let mut browser = Browser::new();
    let (back, callback) = sign_in_at(&node, &mut browser, "/account", EMAIL, PASSWORD).await;
    assert_eq!(back.status, 302, "{}", back.body);
    let replay = browser.get(&callback).await;
    assert_eq!(replay.status, 400, "{}", replay.body);

    // Made-up and malformed callbacks: 400 pages, nothing set.
    for query in [
        "",
        "?state=made-up&code=x",
        "?code=x",
        "?state=&code=",
        "?error=access_denied&state=made-up",
    ] {
        let page = browser.get(&node.at(&format!("/account/callback{query}"))).await;
        assert_eq!(page.status, 400, "{query}: {}", page.body);
        assert!(page.headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html"));
        assert!(set_cookie(&page, "tessera_account").is_none(), "{query}");
    }

    // A right state with a wrong code: refused, and the state is spent.
    let mut other = Browser::new();
    let start = other.get(&node.at("/account")).await;
    let state = query_of(start.location.as_deref().unwrap())["state"].clone();
    let wrong = other
        .get(&node.at(&format!("/account/callback?state={state}&code=not-a-code")))
        .await;
    assert_eq!(wrong.status, 400, "{}", wrong.body);
    // An `iss` of another issuer (RFC 9207 mix-up) is refused before the code is used.
    let start = other.get(&node.at("/account")).await;
    let state = query_of(start.location.as_deref().unwrap())["state"].clone();
    let mixed = other
        .get(&node.at(&format!(
            "/account/callback?state={state}&code=x&iss=https%3A%2F%2Fevil.example"
        )))
        .await;
    assert_eq!(mixed.status, 400, "{}", mixed.body);
}

async fn an_ended_or_expired_session_sends_the_user_to_sign_in_again(backend: Backend) {
    let Some(node) = spawn_with(backend, |config| {
        config.sessions.idle_timeout_secs = 600;
    })
    .await
    else {
        return;
    };
    let user_id = node.create_user(EMAIL, PASSWORD).await;
    let mut browser = Browser::new();
    let (back, _) = sign_in_at(&node, &mut browser, "/account?page=2", EMAIL, PASSWORD).await;
    assert_eq!(back.status, 302);
    assert_eq!(browser.get(&node.at("/account")).await.status, 200);

    // Activity pushes the idle expiry out: two page views 400 s apart stay signed in.
    node.clock.advance(400);
    assert_eq!(browser.get(&node.at("/account")).await.status, 200);
    node.clock.advance(400);
    assert_eq!(browser.get(&node.at("/account")).await.status, 200);
    // The status poll is no activity: it does not extend.
    let before = node.state.tokens.sessions_of(&user_id).await.unwrap()[0].idle_expires_at;
    node.clock.advance(100);
    let status = browser.get(&node.at("/account/session")).await;
    assert_eq!(status.status, 200, "{}", status.body);
    let body: serde_json::Value = serde_json::from_str(&status.body).unwrap();
    assert_eq!(body["idleExpiresAt"], before);
    assert_eq!(body["warnBeforeSecs"], 300);
    assert_eq!(
        node.state.tokens.sessions_of(&user_id).await.unwrap()[0].idle_expires_at,
        before
    );

    // Idle past the timeout: back to sign-in with prompt=login, and after it, to the page.
    node.clock.advance(600);
    let status = browser.get(&node.at("/account/session")).await;
    assert_eq!(status.status, 401, "{}", status.body);
    let expired = browser.get(&node.at("/account?page=3")).await;
    assert_eq!(expired.status, 302);
    let params = query_of(expired.location.as_deref().unwrap());
    assert_eq!(
        params.get("prompt").map(String::as_str),
        Some("login"),
        "{params:?}"
    );
    let cleared = set_cookie(&expired, "tessera_account").expect("the cookie is cleared");
    assert!(cleared.contains("Max-Age=0"), "{cleared}");
    let login = browser
        .get(&absolute(&node, expired.location.as_deref().unwrap()))
        .await;
    assert_eq!(
        login.status, 200,
        "prompt=login shows the login page: {}",
        login.body
    );
    let mut form = login.form_fields();
    form.insert("username".into(), EMAIL.into());
    form.insert("password".into(), PASSWORD.into());
    let done = browser
        .post_form(&node.at("/oauth2/authorize/login"), &form)
        .await;
    let back = browser
        .get(&absolute(&node, done.location.as_deref().unwrap()))
        .await;
    assert_eq!(back.location.as_deref(), Some("/account?page=3"), "{}", back.body);
    assert_eq!(browser.get(&node.at("/account")).await.status, 200);

    // A session ended elsewhere (the JSON API, an operator) ends the app session too.
    node.state
        .tokens
        .end_sessions_of(&user_id, "test", "operator", &Default::default())
        .await
        .unwrap();
    let ended = browser.get(&node.at("/account")).await;
    assert_eq!(ended.status, 302);
    assert_eq!(query_of(ended.location.as_deref().unwrap())["prompt"], "login");

    // A disabled user is out at once.
    browser.forget_cookies();
    let (back, _) = sign_in_at(&node, &mut browser, "/account", EMAIL, PASSWORD).await;
    assert_eq!(back.status, 302);
    node.state
        .accounts
        .disable_user(&user_id, "operator", &Default::default())
        .await
        .unwrap();
    let page = browser.get(&node.at("/account")).await;
    assert_eq!(page.status, 302, "{}", page.body);
    // A made-up cookie is nobody: sent to sign in, and the cookie is cleared.
    let mut forger = Browser::new();
    forger.set_cookie("tessera_account", "made-up-handle");
    let forged = forger.get(&node.at("/account")).await;
    assert_eq!(forged.status, 302);
    assert!(set_cookie(&forged, "tessera_account")
        .unwrap()
        .contains("Max-Age=0"));
}

async fn signing_out_needs_the_csrf_token_and_ends_the_tessera_session(backend: Backend) {
    let Some(node) = spawn(backend).await else { return };
    let user_id = node.create_user(EMAIL, PASSWORD).await;
    let mut browser = Browser::new();
    sign_in_at(&node, &mut browser, "/account", EMAIL, PASSWORD).await;
    let home = browser.get(&node.at("/account")).await;
    let csrf = csrf_of(&home);
    let signout = node.at("/account/signout");

    // No token, a wrong token, a token from another origin: 403, still signed in.
    let mut wrong = BTreeMap::new();
    assert_eq!(browser.post_form(&signout, &wrong).await.status, 403);
    wrong.insert("csrf".to_owned(), "x".repeat(csrf.len()));
    assert_eq!(browser.post_form(&signout, &wrong).await.status, 403);
    let cross = node
        .client
        .post(&signout)
        .header(
            "cookie",
            format!("tessera_account={}", browser.cookie("tessera_account").unwrap()),
        )
        .header("origin", "https://evil.example")
        .form(&[("csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(cross.status(), 403);
    let cross_site = node
        .client
        .post(&signout)
        .header(
            "cookie",
            format!("tessera_account={}", browser.cookie("tessera_account").unwrap()),
        )
        .header("sec-fetch-site", "cross-site")
        .form(&[("csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(cross_site.status(), 403);
    // Another user's CSRF token does not work with this cookie.
    let other_email = "other-account@example.com";
    node.create_user(other_email, PASSWORD).await;
    let mut other = Browser::new();
    sign_in_at(&node, &mut other, "/account", other_email, PASSWORD).await;
    let other_csrf = csrf_of(&other.get(&node.at("/account")).await);
    let mut theirs = BTreeMap::new();
    theirs.insert("csrf".to_owned(), other_csrf);
    assert_eq!(browser.post_form(&signout, &theirs).await.status, 403);
    assert_eq!(node.state.tokens.sessions_of(&user_id).await.unwrap().len(), 1);
    assert_eq!(browser.get(&node.at("/account")).await.status, 200);

    let mut right = BTreeMap::new();
    right.insert("csrf".to_owned(), csrf);
    let out = browser.post_form(&signout, &right).await;
    assert_eq!(out.status, 200, "{}", out.body);
    assert!(set_cookie(&out, "tessera_account").unwrap().contains("Max-Age=0"));
    assert!(node.state.tokens.sessions_of(&user_id).await.unwrap().is_empty());
    // The provider's sign-in ended too: the authorization request shows the login page.
    let again = browser.get(&node.at("/account")).await;
    let login = browser
        .get(&absolute(&node, again.location.as_deref().unwrap()))
        .await;
    assert_eq!(login.status, 200);
    assert!(login.body.contains("name=\"password\""), "{}", login.body);
    // The other user is still signed in.
    assert_eq!(other.get(&node.at("/account")).await.status, 200);
}

async fn return_to_and_the_language_switch_stay_on_the_account_pages(backend: Backend) {
    let Some(node) = spawn(backend).await else { return };
    let mut browser = Browser::new();
    for (target, expected) in [
        ("https://evil.example/", "/account"),
        ("//evil.example/account", "/account"),
        ("/account/../oauth2/authorize", "/account"),
        ("/oauth2/authorize", "/account"),
        ("/account?x=1", "/account?x=1"),
    ] {
        let url = format!(
            "{}?set=ko&return_to={}",
            node.at("/account/language"),
            url_encode(target)
        );
        let page = browser.get(&url).await;
        assert_eq!(page.status, 302);
        assert_eq!(page.location.as_deref(), Some(expected), "{target}");
        let cookie = set_cookie(&page, "tessera_lang").unwrap();
        assert!(cookie.starts_with("tessera_lang=ko;"), "{cookie}");
    }
    // The remembered language reaches the login page through ui_locales.
    let start = browser.get(&node.at("/account")).await;
    assert_eq!(query_of(start.location.as_deref().unwrap())["ui_locales"], "ko");
    let login = browser
        .get(&absolute(&node, start.location.as_deref().unwrap()))
        .await;
    assert!(login.body.contains("lang=\"ko\""), "{}", login.body);
    // An unknown language is English, and nothing else can be stored in the cookie.
    let page = browser
        .get(&node.at("/account/language?set=%3Cscript%3E&return_to=/account"))
        .await;
    assert!(set_cookie(&page, "tessera_lang")
        .unwrap()
        .starts_with("tessera_lang=en;"));
}

fn url_encode(text: &str) -> String {
    url::form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

async fn the_account_client_follows_the_issuer(backend: Backend) {
    let Some(node) = spawn(backend).await else { return };
    // A redirect URI of another issuer (the configuration changed): set right at start.
    let mut client = node
        .state
        .clients
        .client("tessera-account")
        .await
        .unwrap()
        .unwrap();
    client.redirect_uris = vec!["https://old-issuer.example/account/callback".to_owned()];
    node.state.clients.update_client(&client).await.unwrap();
    let ensured = node
        .state
        .accounts
        .ensure_hosted_app_client(&tessera_idp::accounts::ACCOUNT_APP)
        .await
        .unwrap();
    assert_eq!(ensured.redirect_uris, vec![node.at("/account/callback")]);
    let stored = node
        .state
        .clients
        .client("tessera-account")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.redirect_uris, vec![node.at("/account/callback")]);
    assert!(stored.first_party && stored.secret_hash.is_none());
    assert_eq!(stored.grant_types, vec!["authorization_code", "refresh_token"]);
}

async fn relying_parties_read_the_session_lifetimes_with_a_token(backend: Backend) {
    let Some(node) = spawn(backend).await else { return };
    node.create_user(EMAIL, PASSWORD).await;
    let login = node
        .client
        .post(node.at("/auth/login"))
        .json(&serde_json::json!({ "email": EMAIL, "password": PASSWORD }))
        .send()
        .await
        .unwrap();
    let tokens: serde_json::Value = login.json().await.unwrap();
    let bearer = tokens["accessToken"].as_str().unwrap();
    let (status, status_body) = node.get_bearer("/auth/session", bearer).await;
    assert_eq!(status, 200, "{status_body}");
    let now = tessera_idp::clock::Clock::now(node.clock.as_ref());
    assert_eq!(status_body["now"], now);
    assert_eq!(status_body["warnBeforeSecs"], 300);
    let idle = status_body["idleExpiresAt"].as_i64().unwrap();
    assert!(idle > now && status_body["absoluteExpiresAt"].as_i64().unwrap() >= idle);
    // Reading is no activity; extending moves the idle expiry and answers the same shape.
    node.clock.advance(60);
    let (_, again) = node.get_bearer("/auth/session", bearer).await;
    assert_eq!(again["idleExpiresAt"], idle);
    let extended: serde_json::Value = node
        .client
        .post(node.at("/auth/session/extend"))
        .bearer_auth(bearer)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(extended["idleExpiresAt"], idle + 60, "{extended}");
    assert_eq!(extended["warnBeforeSecs"], 300);
    // No token, a made-up one: 401.
    assert_eq!(node.get("/auth/session").await.status(), 401);
    let (status, _) = node.get_bearer("/auth/session", "made.up.token").await;
    assert_eq!(status, 401);
    // The script itself is served from this origin, cacheable, as JavaScript.
    let script = node.get("/assets/session-expiry.js").await;
    assert_eq!(script.status(), 200);
    assert!(script.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/javascript"));
    assert!(script.text().await.unwrap().contains("TesseraSessionExpiry"));
}
