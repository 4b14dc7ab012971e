//! Abnormal-login alerts (R24): the new sign-in e-mail over real SMTP, its "end that
//! session" link (GET shows, POST ends), the device cookie and device ids, and the abuse
//! signals with a real webhook receiver. Client addresses differ by binding the client
//! socket to other `127.x.y.z` addresses.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tessera_store::durable::{AuditQuery, AuditRecord, AuditStore, DeviceStore, UserStore};
use tessera_testkit::{
    backend_tests, link_token, pkce_pair, spawn_with, spawn_with_mail_and, Backend, Browser, Page, TestNode,
};

backend_tests!(
    a_new_device_is_mailed_once_and_its_link_ends_exactly_that_session,
    known_devices_and_networks_do_not_alert,
    new_sign_in_mails_are_rate_limited,
    disabled_alerts_set_no_cookie_and_send_no_mail,
    the_hosted_login_alerts_and_its_link_ends_the_browser_sign_in,
    end_links_refuse_abuse_and_change_nothing,
    abuse_signals_are_raised_once_per_window_with_a_signed_webhook,
    a_webhook_that_is_down_does_not_affect_logins,
);

const PASSWORD: &str = "correct horse battery staple 42";
// The mailer's own deadline for one message (three times the 10 s SMTP timeout): on a
// loaded two-core machine a first delivery to the sink once took longer than 10 s.
const WAIT: Duration = Duration::from_secs(30);
const END: &str = "/auth/sign-in/end";
const REDIRECT: &str = "https://shop.example/cb";

fn client_from(ip: &str) -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .local_address(ip.parse::<IpAddr>().unwrap())
        .build()
        .unwrap()
}

struct LoggedIn {
    status: u16,
    body: Value,
    /// Every `Set-Cookie` header of the response.
    cookies: Vec<String>,
}

impl LoggedIn {
    fn device_cookie(&self) -> Option<&str> {
        self.cookies
            .iter()
            .find(|c| c.starts_with("tessera_device="))
            .map(String::as_str)
    }

    fn tokens(&self) -> (String, String) {
        (
            self.body["accessToken"].as_str().unwrap().to_owned(),
            self.body["refreshToken"].as_str().unwrap().to_owned(),
        )
    }
}

/// `POST /auth/login` from `ip` with `extra` fields in the body and `headers`.
async fn login_from(
    node: &TestNode,
    ip: &str,
    email: &str,
    password: &str,
    extra: Value,
    headers: &[(&str, &str)],
) -> LoggedIn {
    let mut body = json!({ "email": email, "password": password });
    if let Value::Object(fields) = extra {
        for (k, v) in fields {
            body[k] = v;
        }
    }
    let mut request = client_from(ip).post(node.at("/auth/login")).json(&body);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let cookies = response
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .collect();
    let text = response.text().await.unwrap();
    LoggedIn {
        status,
        body: serde_json::from_str(&text).unwrap_or(Value::Null),
        cookies,
    }
}

/// A successful login from `ip` with `deviceId` (when given) and a user agent.
async fn sign_in(node: &TestNode, ip: &str, email: &str, device: Option<&str>, ua: &str) -> LoggedIn {
    let extra = match device {
        Some(id) => json!({ "deviceId": id }),
        None => json!({}),
    };
    let done = login_from(node, ip, email, PASSWORD, extra, &[("user-agent", ua)]).await;
    assert_eq!(done.status, 200, "{}", done.body);
    done
}

async fn audit(node: &TestNode, event: &str) -> Vec<AuditRecord> {
    node.state
        .db
        .audit_records(&AuditQuery {
            event: Some(event.to_owned()),
            ..AuditQuery::default()
        })
        .await
        .unwrap()
}

/// `POST /auth/reissue` with the pair; returns the status.
async fn reissue(node: &TestNode, (access, refresh): &(String, String)) -> u16 {
    node.post_json(
        "/auth/reissue",
        &json!({ "accessToken": access, "refreshToken": refresh }),
        None,
    )
    .await
    .0
}

/// Background mail has had time to arrive.
async fn settle() {
    tokio::time::sleep(Duration::from_millis(800)).await;
}

async fn open_link(node: &TestNode, browser: &mut Browser, token: &str) -> Page {
    browser.get(&node.at(&format!("{END}?token={token}"))).await
}

/// Opens the link and posts its form with `decision`.
async fn use_link(node: &TestNode, browser: &mut Browser, token: &str, decision: &str) -> Page {
    let page = open_link(node, browser, token).await;
    assert_eq!(page.status, 200, "{}", page.body);
    let mut form = page.form_fields();
    form.insert("decision".into(), decision.into());
    browser.post_form(&node.at(END), &form).await
}

fn assert_invalid_link_page(page: &Page) {
    assert_eq!(page.status, 400, "{}", page.body);
    assert!(page.body.contains("This link cannot be used"), "{}", page.body);
}

async fn a_new_device_is_mailed_once_and_its_link_ends_exactly_that_session(backend: Backend) {
    let Some((node, sink)) = spawn_with_mail_and(backend, |_| {}).await else {
        return;
    };
    let user_id = node.create_user("alice@example.com", PASSWORD).await;

    // The very first sign-in: nothing to compare with, no alert; the device is remembered
    // and the cookie carries the id the client sent.
    let first = sign_in(
        &node,
        "127.0.0.1",
        "alice@example.com",
        Some("phone-0123456789ab"),
        "Phone/1",
    )
    .await;
    let cookie = first.device_cookie().expect("a device cookie");
    assert!(
        cookie.starts_with("tessera_device=phone-0123456789ab;"),
        "{cookie}"
    );
    for attribute in [
        "Path=/",
        "HttpOnly",
        "SameSite=Lax",
        &format!("Max-Age={}", 400 * 86_400),
    ] {
        assert!(cookie.contains(attribute), "{cookie} lacks {attribute}");
    }
    assert!(!cookie.contains("Secure"), "http issuer: {cookie}");
    assert_eq!(node.state.db.known_devices(&user_id).await.unwrap().len(), 1);

    // A new device on another /24: exactly one mail, with time, IP and user agent.
    let evil_ua = "Evil<b>Browser</b>/6.6";
    let stranger = sign_in(&node, "127.0.7.9", "alice@example.com", None, evil_ua).await;
    let fresh = stranger.device_cookie().expect("a fresh device cookie");
    let fresh_id = fresh
        .trim_start_matches("tessera_device=")
        .split(';')
        .next()
        .unwrap();
    assert!(
        fresh_id.len() >= 22 && fresh_id != "phone-0123456789ab",
        "{fresh}"
    );
    let messages = sink.wait_for(1, WAIT).await;
    settle().await;
    assert_eq!(sink.messages().len(), 1, "exactly one mail");
    let mail = &messages[0];
    assert_eq!(mail.subject, "New sign-in to your account");
    assert!(mail.envelope_to.contains("alice@example.com"));
    assert!(mail.body.contains("127.0.7.9"), "{}", mail.body);
    assert!(mail.body.contains(evil_ua), "{}", mail.body);
    assert!(mail.body.contains(" UTC"), "{}", mail.body);
    let html = mail.html.as_deref().unwrap();
    assert!(!html.contains("<b>Browser"), "the user agent is escaped: {html}");
    let token = link_token(&mail.body, END).expect("an end-session link");
    // And where every session of the account is listed.
    assert!(mail.body.contains(&node.at("/account/sessions")), "{}", mail.body);
    let new_device = audit(&node, "login.new_device").await;
    assert_eq!(new_device.len(), 1);
    assert_eq!(new_device[0].subject.as_deref(), Some(user_id.as_str()));
    assert_eq!(new_device[0].ip.as_deref(), Some("127.0.7.9"));

    // GET (as a mail scanner would, twice) shows a confirmation and ends nothing.
    let mut scanner = Browser::new();
    for _ in 0..2 {
        let page = open_link(&node, &mut scanner, &token).await;
        assert_eq!(page.status, 200, "{}", page.body);
        assert!(page.body.contains("End this sign-in?"), "{}", page.body);
        assert!(page.body.contains("name=\"csrf\""));
    }
    let sessions_before = node.state.tokens.sessions_of(&user_id).await.unwrap();
    assert_eq!(sessions_before.len(), 2);

    // POST with the CSRF token ends exactly that session.
    let mut owner = Browser::new();
    let done = use_link(&node, &mut owner, &token, "end").await;
    assert_eq!(done.status, 200, "{}", done.body);
    assert!(done.body.contains("The session has ended"), "{}", done.body);
    let alive = node.state.tokens.sessions_of(&user_id).await.unwrap();
    assert_eq!(alive.len(), 1, "{alive:?}");
    assert_eq!(
        alive[0].ip.as_deref(),
        Some("127.0.0.1"),
        "the first session lives"
    );
    assert_eq!(reissue(&node, &stranger.tokens()).await, 401, "its refresh fails");
    assert_eq!(
        reissue(&node, &first.tokens()).await,
        200,
        "the other session lives"
    );
    let revoked = audit(&node, "session.revoked").await;
    assert_eq!(revoked.len(), 1);
    assert_eq!(
        revoked[0].actor.as_deref(),
        Some(format!("user:{user_id}").as_str())
    );
    assert!(revoked[0]
        .detail
        .as_deref()
        .unwrap()
        .contains("ended_from_new_sign_in_email"));

    // Replayed: a clear 400 page, nothing more ends.
    let replay = open_link(&node, &mut owner, &token).await;
    assert_invalid_link_page(&replay);
    let mut form = BTreeMap::new();
    form.insert(
        "csrf".to_owned(),
        owner.cookie("tessera_csrf").unwrap().to_owned(),
    );
    form.insert("token".to_owned(), token.clone());
    form.insert("decision".to_owned(), "end".to_owned());
    assert_invalid_link_page(&owner.post_form(&node.at(END), &form).await);
    assert_eq!(node.state.tokens.sessions_of(&user_id).await.unwrap().len(), 1);
}

async fn known_devices_and_networks_do_not_alert(backend: Backend) {
    let Some((node, sink)) = spawn_with_mail_and(backend, |_| {}).await else {
        return;
    };
    let user_id = node.create_user("bob@example.com", PASSWORD).await;
    sign_in(
        &node,
        "127.0.0.1",
        "bob@example.com",
        Some("laptop-0123456789ab"),
        "L/1",
    )
    .await;
    // The same device from anywhere: known.
    sign_in(
        &node,
        "127.0.9.1",
        "bob@example.com",
        Some("laptop-0123456789ab"),
        "L/1",
    )
    .await;
    // The device id in the header instead of the body, and the cookie of a browser.
    let by_header = login_from(
        &node,
        "127.0.10.1",
        "bob@example.com",
        PASSWORD,
        json!({}),
        &[("x-device-id", "laptop-0123456789ab")],
    )
    .await;
    assert_eq!(by_header.status, 200);
    let by_cookie = login_from(
        &node,
        "127.0.11.1",
        "bob@example.com",
        PASSWORD,
        json!({}),
        &[("cookie", "tessera_device=laptop-0123456789ab")],
    )
    .await;
    assert_eq!(by_cookie.status, 200);
    // A new device on a network this user signed in from (127.0.0.0/24): not new.
    sign_in(
        &node,
        "127.0.0.77",
        "bob@example.com",
        Some("tablet-0123456789ab"),
        "T/1",
    )
    .await;
    assert!(audit(&node, "login.new_device").await.is_empty());
    // A new device on a new /24: new.
    sign_in(
        &node,
        "127.0.12.1",
        "bob@example.com",
        Some("other-0123456789abc"),
        "O/1",
    )
    .await;
    assert_eq!(audit(&node, "login.new_device").await.len(), 1);
    sink.wait_for(1, WAIT).await;
    settle().await;
    assert_eq!(sink.messages().len(), 1);
    // Sightings are bounded and purged with the clean-up pass after the retention period.
    assert!(node.state.db.known_devices(&user_id).await.unwrap().len() <= 20);
    node.clock.advance(401 * 86_400);
    tessera_idp::node::clean_up_once(&node.state).await.unwrap();
    assert!(node.state.db.known_devices(&user_id).await.unwrap().is_empty());

    // A malformed device id the client sends explicitly is refused before any check.
    for (extra, headers) in [
        (json!({ "deviceId": "short" }), vec![]),
        (json!({ "deviceId": "x".repeat(129) }), vec![]),
        (json!({}), vec![("x-device-id", "bad id with spaces")]),
    ] {
        let refused = login_from(&node, "127.0.0.1", "bob@example.com", PASSWORD, extra, &headers).await;
        assert_eq!(refused.status, 400, "{}", refused.body);
        assert_eq!(refused.body["code"], "invalid_request");
    }
    let wrong_type = login_from(
        &node,
        "127.0.0.1",
        "bob@example.com",
        PASSWORD,
        json!({ "deviceId": 42 }),
        &[],
    )
    .await;
    assert_eq!(wrong_type.status, 400);
}

async fn new_sign_in_mails_are_rate_limited(backend: Backend) {
    let Some((node, sink)) = spawn_with_mail_and(backend, |config| {
        config.alerts.new_sign_in_max_per_hour = 2;
    })
    .await
    else {
        return;
    };
    node.create_user("carol@example.com", PASSWORD).await;
    sign_in(&node, "127.0.0.1", "carol@example.com", None, "A/1").await;
    for n in 1..=3 {
        sign_in(
            &node,
            &format!("127.0.{}.1", 20 + n),
            "carol@example.com",
            None,
            "B/1",
        )
        .await;
    }
    let audited = audit(&node, "login.new_device").await;
    assert_eq!(audited.len(), 3, "every new sign-in is audited");
    let mailed: Vec<bool> = audited
        .iter()
        .rev()
        .map(|r| r.detail.as_deref().unwrap().contains("\"mailed\":true"))
        .collect();
    assert_eq!(mailed, [true, true, false]);
    sink.wait_for(2, WAIT).await;
    settle().await;
    assert_eq!(sink.messages().len(), 2, "the third is over the hourly limit");
}

async fn disabled_alerts_set_no_cookie_and_send_no_mail(backend: Backend) {
    let Some((node, sink)) = spawn_with_mail_and(backend, |config| {
        config.alerts.new_sign_in_email = false;
    })
    .await
    else {
        return;
    };
    let user_id = node.create_user("dave@example.com", PASSWORD).await;
    for ip in ["127.0.0.1", "127.0.30.1", "127.0.31.1"] {
        let done = sign_in(&node, ip, "dave@example.com", None, "D/1").await;
        assert!(done.device_cookie().is_none(), "{:?}", done.cookies);
    }
    settle().await;
    assert!(sink.messages().is_empty());
    assert!(audit(&node, "login.new_device").await.is_empty());
    assert!(node.state.db.known_devices(&user_id).await.unwrap().is_empty());
}

fn authorize_url(node: &TestNode, client_id: &str) -> String {
    let (_, challenge) = pkce_pair();
    let mut url = reqwest::Url::parse(&node.at("/oauth2/authorize")).unwrap();
    url.query_pairs_mut()
        .append_pair("response_type", "code")
        .append_pair("client_id", client_id)
        .append_pair("redirect_uri", REDIRECT)
        .append_pair("scope", "openid email")
        .append_pair("state", "st")
        .append_pair("code_challenge", &challenge)
        .append_pair("code_challenge_method", "S256");
    url.to_string()
}

/// Signs in on the hosted login page; returns the response to the form post.
async fn hosted_sign_in(node: &TestNode, browser: &mut Browser, url: &str, email: &str) -> Page {
    let page = browser.get(url).await;
    assert_eq!(page.status, 200, "{}", page.body);
    let mut form = page.form_fields();
    form.insert("username".into(), email.into());
    form.insert("password".into(), PASSWORD.into());
    let done = browser
        .post_form(&node.at("/oauth2/authorize/login"), &form)
        .await;
    assert_eq!(done.status, 303, "{}", done.body);
    done
}

async fn the_hosted_login_alerts_and_its_link_ends_the_browser_sign_in(backend: Backend) {
    let Some((node, sink)) = spawn_with_mail_and(backend, |_| {}).await else {
        return;
    };
    let user_id = node.create_user("erin@example.com", PASSWORD).await;
    node.create_oidc_client("shop-web", false, REDIRECT, true, None)
        .await;
    let url = authorize_url(&node, "shop-web");

    let mut home = Browser::new();
    let done = hosted_sign_in(&node, &mut home, &url, "erin@example.com").await;
    let cookie = done
        .headers
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap())
        .find(|c| c.starts_with("tessera_device="))
        .expect("the hosted login sets the device cookie")
        .to_owned();
    assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax") && cookie.contains("Path=/"));
    // The same browser again: known.
    home.forget_cookies();
    let device = cookie
        .trim_start_matches("tessera_device=")
        .split(';')
        .next()
        .unwrap();
    let mut same = Browser::from_address("127.0.40.1".parse().unwrap());
    let page = same.get(&url).await;
    let mut form = page.form_fields();
    form.insert("username".into(), "erin@example.com".into());
    form.insert("password".into(), PASSWORD.into());
    same.set_cookie("tessera_device", device);
    let again = same.post_form(&node.at("/oauth2/authorize/login"), &form).await;
    assert_eq!(again.status, 303, "{}", again.body);
    assert!(audit(&node, "login.new_device").await.is_empty());

    // Another browser on another network: alerted.
    let mut stranger = Browser::from_address("127.0.41.1".parse().unwrap());
    hosted_sign_in(&node, &mut stranger, &url, "erin@example.com").await;
    assert!(stranger.cookie("tessera_sso").is_some());
    let mail = sink.wait_for(1, WAIT).await.remove(0);
    assert!(mail.body.contains("127.0.41.1"), "{}", mail.body);
    let token = link_token(&mail.body, END).unwrap();

    // Ending it ends the stranger's browser sign-in: the authorization request asks them to
    // sign in again, while the other browser's sign-in lives on.
    let mut owner = Browser::new();
    let ended = use_link(&node, &mut owner, &token, "end").await;
    assert_eq!(ended.status, 200, "{}", ended.body);
    let asked = stranger.get(&url).await;
    assert_eq!(asked.status, 200);
    assert!(
        asked.body.contains("name=\"password\""),
        "signed out: {}",
        asked.body
    );
    let still = same.get(&url).await;
    assert_eq!(still.status, 302, "{}", still.body);
    let sso_ended = audit(&node, "sso.ended").await;
    assert_eq!(sso_ended.len(), 1);
    assert_eq!(sso_ended[0].subject.as_deref(), Some(user_id.as_str()));
}

async fn end_links_refuse_abuse_and_change_nothing(backend: Backend) {
    let Some((node, sink)) = spawn_with_mail_and(backend, |config| {
        config.sessions.idle_timeout_secs = 20 * 86_400;
    })
    .await
    else {
        return;
    };
    let alice = node.create_user("frank@example.com", PASSWORD).await;
    let bob = node.create_user("grace@example.com", PASSWORD).await;
    sign_in(&node, "127.0.0.1", "frank@example.com", None, "F/1").await;
    sign_in(&node, "127.0.0.1", "grace@example.com", None, "G/1").await;
    sign_in(&node, "127.0.50.1", "frank@example.com", None, "F/2").await;
    sign_in(&node, "127.0.51.1", "grace@example.com", None, "G/2").await;
    let messages = sink.wait_for(2, WAIT).await;
    let token_for = |email: &str| {
        let mail = messages.iter().find(|m| m.envelope_to.contains(email)).unwrap();
        link_token(&mail.body, END).unwrap()
    };
    let alice_token = token_for("frank@example.com");
    let bob_token = token_for("grace@example.com");
    let alive = |user: String| {
        let node = &node;
        async move { node.state.tokens.sessions_of(&user).await.unwrap().len() }
    };
    assert_eq!(alive(alice.clone()).await, 2);
    assert_eq!(alive(bob.clone()).await, 2);

    let mut browser = Browser::new();
    // Missing, repeated, tampered, oversized and other-purpose tokens: a 400 page.
    assert_invalid_link_page(&browser.get(&node.at(END)).await);
    assert_invalid_link_page(
        &browser
            .get(&node.at(&format!("{END}?token={alice_token}&token={alice_token}")))
            .await,
    );
    let mut tampered = alice_token.clone();
    let last = tampered.pop().unwrap();
    tampered.push(if last == 'A' { 'B' } else { 'A' });
    assert_invalid_link_page(&open_link(&node, &mut browser, &tampered).await);
    assert_invalid_link_page(&open_link(&node, &mut browser, &"a".repeat(10_000)).await);
    node.post_json(
        "/auth/password/forgot",
        &json!({ "email": "frank@example.com" }),
        None,
    )
    .await;
    let reset = sink.wait_for(3, WAIT).await;
    let reset_mail = reset
        .iter()
        .find(|m| m.body.contains("/auth/password/reset"))
        .expect("a reset mail");
    let reset_token = link_token(&reset_mail.body, "/auth/password/reset").unwrap();
    assert_invalid_link_page(&open_link(&node, &mut browser, &reset_token).await);
    let now = tessera_idp::clock::Clock::now(node.clock.as_ref());
    assert!(
        node.state
            .db
            .peek_one_time_token(
                &tessera_idp::tokens::opaque::sha256_b64(&reset_token),
                "reset_password",
                now
            )
            .await
            .unwrap()
            .is_some(),
        "the reset link still works"
    );

    // A post without the CSRF cookie (a cross-site form): 403, nothing ended.
    let page = open_link(&node, &mut browser, &alice_token).await;
    let mut form = page.form_fields();
    form.insert("decision".into(), "end".into());
    let mut forger = Browser::new();
    let forged = forger.post_form(&node.at(END), &form).await;
    assert_eq!(forged.status, 403, "{}", forged.body);
    let mut no_field = form.clone();
    no_field.remove("csrf");
    assert_eq!(browser.post_form(&node.at(END), &no_field).await.status, 403);
    assert_eq!(alive(alice.clone()).await, 2);

    // "It was me": nothing changes, and the link keeps working.
    let kept = use_link(&node, &mut browser, &alice_token, "keep").await;
    assert_eq!(kept.status, 200);
    assert!(kept.body.contains("Nothing was changed"), "{}", kept.body);
    assert_eq!(alive(alice.clone()).await, 2);

    // Bob's link ends Bob's new session only, whatever else the form names.
    let page = open_link(&node, &mut browser, &bob_token).await;
    let mut form = page.form_fields();
    form.insert("decision".into(), "end".into());
    let alice_sessions = node.state.tokens.sessions_of(&alice).await.unwrap();
    form.insert("session".into(), alice_sessions[0].id.clone());
    form.insert("session_id".into(), alice_sessions[1].id.clone());
    assert_eq!(browser.post_form(&node.at(END), &form).await.status, 200);
    assert_eq!(alive(bob.clone()).await, 1);
    assert_eq!(alive(alice.clone()).await, 2);

    // Expired: seven days later the link is refused (the session itself lives on).
    node.clock.advance(7 * 86_400 + 1);
    assert_invalid_link_page(&open_link(&node, &mut browser, &alice_token).await);
    let mut form = BTreeMap::new();
    form.insert(
        "csrf".to_owned(),
        browser.cookie("tessera_csrf").unwrap().to_owned(),
    );
    form.insert("token".to_owned(), alice_token.clone());
    form.insert("decision".to_owned(), "end".to_owned());
    assert_invalid_link_page(&browser.post_form(&node.at(END), &form).await);
    assert_eq!(alive(alice).await, 2);
}

/// One request the receiver got: lower-case header names and values, and the body.
type Received = (BTreeMap<String, String>, String);

/// A tiny HTTP receiver on 127.0.0.1: records each request's headers and body and answers
/// `status`.
struct Receiver {
    url: String,
    requests: Arc<Mutex<Vec<Received>>>,
}

async fn receiver(status: u16) -> Receiver {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hooks/tessera", listener.local_addr().unwrap());
    let requests = Arc::new(Mutex::new(Vec::new()));
    let seen = requests.clone();
    tokio::spawn(async move {
        loop {
            let Ok((mut stream, _)) = listener.accept().await else {
                return;
            };
            let seen = seen.clone();
            tokio::spawn(async move {
                let mut data = Vec::new();
                let mut buf = [0u8; 4096];
                let (head, body) = loop {
                    let n = stream.read(&mut buf).await.unwrap_or(0);
                    if n == 0 {
                        return;
                    }
                    data.extend_from_slice(&buf[..n]);
                    let text = String::from_utf8_lossy(&data).into_owned();
                    if let Some((head, body)) = text.split_once("\r\n\r\n") {
                        let length = head
                            .lines()
                            .find_map(|l| {
                                let (name, value) = l.split_once(':')?;
                                name.eq_ignore_ascii_case("content-length")
                                    .then(|| value.trim().parse::<usize>().ok())?
                            })
                            .unwrap_or(0);
                        if body.len() >= length {
                            break (head.to_owned(), body.to_owned());
                        }
                    }
                };
                let headers = head
                    .lines()
                    .skip(1)
                    .filter_map(|l| l.split_once(':'))
                    .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
                    .collect();
                seen.lock().unwrap().push((headers, body));
                let reply = format!("HTTP/1.1 {status} X\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
                let _ = stream.write_all(reply.as_bytes()).await;
            });
        }
    });
    Receiver { url, requests }
}

impl Receiver {
    async fn wait_for(&self, n: usize) -> Vec<Received> {
        let deadline = Instant::now() + WAIT;
        loop {
            let got = self.requests.lock().unwrap().clone();
            if got.len() >= n || Instant::now() > deadline {
                return got;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// `tessera_abuse_signals_total{kind}` as this process counts it.
async fn signals(node: &TestNode, kind: &str) -> u64 {
    let text = node.get("/metrics").await.text().await.unwrap();
    let prefix = format!("tessera_abuse_signals_total{{kind=\"{kind}\"}} ");
    text.lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .map_or(0, |v| v.trim().parse::<f64>().unwrap() as u64)
}

/// An independent HMAC-SHA256 (jsonwebtoken's HS256) as the receiver would check it.
fn expected_signature(secret: &str, body: &str) -> String {
    use base64::Engine as _;
    let b64 = jsonwebtoken::crypto::sign(
        body.as_bytes(),
        &jsonwebtoken::EncodingKey::from_secret(secret.as_bytes()),
        jsonwebtoken::Algorithm::HS256,
    )
    .unwrap();
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(b64)
        .unwrap();
    format!(
        "sha256={}",
        bytes.iter().map(|b| format!("{b:02x}")).collect::<String>()
    )
}

/// A number that differs between runs: the shared Redis keeps abuse counters of earlier
/// runs for a window, so each run uses its own accounts, addresses and windows.
fn run_unique() -> u64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    (nanos / 1_000) as u64
}

async fn fail_from(node: &TestNode, ip: &str, email: &str) {
    let done = login_from(node, ip, email, "wrong password!!", json!({}), &[]).await;
    assert!(matches!(done.status, 401 | 429), "{}: {}", done.status, done.body);
}

async fn abuse_signals_are_raised_once_per_window_with_a_signed_webhook(backend: Backend) {
    const SECRET: &str = "webhook-secret-0123456789";
    let hook = receiver(200).await;
    let url = hook.url.clone();
    let Some(node) = spawn_with(backend, move |config| {
        config.alerts.abuse_ips_per_account = 3;
        config.alerts.abuse_accounts_per_ip = 3;
        config.alerts.webhook_url = Some(url);
        config.alerts.webhook_secret = Some(tessera_idp::secret::Secret::new(SECRET));
    })
    .await
    else {
        return;
    };
    let unique = run_unique();
    let heidi = format!("heidi-{unique}@example.com");
    let user_id = node.create_user(&heidi, PASSWORD).await;
    // A window of this run's own (and addresses of its own) in the shared Redis.
    node.clock
        .advance(i64::try_from(unique % 50_000 + 1).unwrap() * 900);
    let net = 64 + unique % 180;
    let distributed_before = signals(&node, "distributed_failures").await;
    let many_before = signals(&node, "many_accounts_from_ip").await;

    // One account from three IPs (one of them twice): the third distinct IP raises it.
    fail_from(&node, &format!("127.{net}.60.1"), &heidi).await;
    fail_from(&node, &format!("127.{net}.60.1"), &heidi).await;
    fail_from(&node, &format!("127.{net}.60.2"), &heidi).await;
    assert!(audit(&node, "abuse.distributed_failures").await.is_empty());
    fail_from(&node, &format!("127.{net}.60.3"), &heidi).await;
    // A fourth IP in the same window (by now refused by the lockout: still counted) raises
    // nothing more.
    fail_from(&node, &format!("127.{net}.60.4"), &heidi).await;
    let raised = audit(&node, "abuse.distributed_failures").await;
    assert_eq!(raised.len(), 1);
    assert_eq!(raised[0].subject.as_deref(), Some(user_id.as_str()));
    assert!(raised[0]
        .detail
        .as_deref()
        .unwrap()
        .contains("\"distinct_ips\":3"));
    assert!(signals(&node, "distributed_failures").await > distributed_before);

    // Many accounts (existing or not) from one IP.
    let stuffer = format!("127.{net}.61.1");
    for n in 1..=4 {
        fail_from(&node, &stuffer, &format!("x{n}-{unique}@example.com")).await;
    }
    let raised = audit(&node, "abuse.many_accounts_from_ip").await;
    assert_eq!(raised.len(), 1);
    assert_eq!(raised[0].ip.as_deref(), Some(stuffer.as_str()));
    assert!(raised[0]
        .detail
        .as_deref()
        .unwrap()
        .contains("\"distinct_accounts\":3"));
    assert!(signals(&node, "many_accounts_from_ip").await > many_before);

    // The webhook got each signal once, signed; no password, no address.
    let requests = hook.wait_for(2).await;
    assert_eq!(requests.len(), 2, "{requests:?}");
    for (headers, body) in &requests {
        assert_eq!(headers["content-type"], "application/json");
        assert_eq!(
            headers["x-tessera-signature"],
            expected_signature(SECRET, body),
            "{body}"
        );
        assert!(
            !body.contains("wrong password") && !body.contains("@example.com"),
            "{body}"
        );
        let payload: Value = serde_json::from_str(body).unwrap();
        assert_eq!(headers["x-tessera-event"], payload["event"].as_str().unwrap());
        assert_eq!(payload["issuer"], node.url.as_str());
    }
    let distributed = requests
        .iter()
        .map(|(_, b)| serde_json::from_str::<Value>(b).unwrap())
        .find(|p| p["kind"] == "distributed_failures")
        .unwrap();
    assert_eq!(distributed["user_id"], user_id.as_str());
    assert_eq!(distributed["distinct_ips"], 3);
    let many = requests
        .iter()
        .map(|(_, b)| serde_json::from_str::<Value>(b).unwrap())
        .find(|p| p["kind"] == "many_accounts_from_ip")
        .unwrap();
    assert_eq!(many["ip"], stuffer.as_str());

    // The next window counts afresh and raises again, once.
    node.clock.advance(900);
    for n in 1..=4 {
        fail_from(&node, &format!("127.{net}.62.{n}"), &heidi).await;
    }
    assert_eq!(audit(&node, "abuse.distributed_failures").await.len(), 2);
    assert_eq!(hook.wait_for(3).await.len(), 3);
}

async fn a_webhook_that_is_down_does_not_affect_logins(backend: Backend) {
    // A port nothing listens on any more.
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap()
    };
    let Some(node) = spawn_with(backend, move |config| {
        config.alerts.abuse_ips_per_account = 2;
        config.alerts.webhook_url = Some(format!("http://{closed}/hook"));
    })
    .await
    else {
        return;
    };
    let unique = run_unique();
    let ivan = format!("ivan-{unique}@example.com");
    node.create_user(&ivan, PASSWORD).await;
    let started = Instant::now();
    fail_from(&node, "127.0.70.1", &ivan).await;
    fail_from(&node, "127.0.70.2", &ivan).await;
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "failed logins wait for nobody: {:?}",
        started.elapsed()
    );
    assert_eq!(audit(&node, "abuse.distributed_failures").await.len(), 1);
    let ok = sign_in(&node, "127.0.70.3", &ivan, None, "I/1").await;
    assert!(ok.body["accessToken"].is_string());
    // After its retries (1 s, 2 s) the failed delivery is audited.
    let deadline = Instant::now() + WAIT;
    while audit(&node, "abuse.webhook_failed").await.is_empty() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let failed = audit(&node, "abuse.webhook_failed").await;
    assert_eq!(failed.len(), 1);
    assert!(failed[0].detail.as_deref().unwrap().contains("\"attempts\":3"));
}
