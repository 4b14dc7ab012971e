//! OpenID Connect claims (issue 16): the profile a user keeps (OIDC Core §5.1), edited by
//! the user (`/auth/profile`) and the operator (`/admin/users/{id}/profile`), released by
//! scope from userinfo (§5.4), and userinfo's ways of taking the access token (RFC 6750).

use std::collections::BTreeMap;

use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::{json, Value};
use tessera_store::durable::AuditStore as _;
use tessera_testkit::{
    backend_tests, loopback_ip, pkce_pair, random_u64, spawn, Backend, Browser, TestClient, TestNode,
};

backend_tests!(
    users_edit_their_profile_and_bad_values_change_nothing,
    scopes_release_their_claims_from_userinfo_not_the_id_token,
    operators_edit_profiles_and_only_they_verify_phone_numbers,
    profile_endpoints_refuse_abuse,
    userinfo_takes_the_token_from_the_header_or_the_form_body_only,
    the_claims_parameter_puts_what_it_asks_in_the_id_token_within_the_scope,
    malformed_claims_and_display_are_invalid_requests_at_the_client,
    a_requested_sub_is_answered_for_that_user_only
);

const REDIRECT: &str = "https://claims.example/cb";
const PASSWORD: &str = "correct horse battery staple 42";
const PROFILE: &str = "/auth/profile";
const USERINFO: &str = "/oauth2/userinfo";

fn unique_email(name: &str) -> String {
    format!("{name}-{}@example.com", random_u64())
}

/// A verified user and an access token of theirs (first-party JSON API login).
async fn user_with_token(node: &TestNode, name: &str) -> (String, String, String) {
    let email = unique_email(name);
    let id = node.create_user(&email, PASSWORD).await;
    let (status, _, body) = node
        .post_json(
            "/auth/login",
            &json!({ "email": email, "password": PASSWORD }),
            None,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let token = body["accessToken"].as_str().unwrap().to_owned();
    (id, email, token)
}

async fn patch(node: &TestNode, path: &str, token: &str, body: &Value) -> (u16, Value) {
    let response = node
        .client
        .patch(node.at(path))
        .bearer_auth(token)
        .json(body)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// An authorization request of `client` for `scope` with `extra` parameters.
fn authorize_url(
    node: &TestNode,
    client: &TestClient,
    challenge: &str,
    scope: &str,
    extra: &[(&str, &str)],
) -> String {
    let mut url = reqwest::Url::parse(&node.at("/oauth2/authorize")).unwrap();
    url.query_pairs_mut()
        .append_pair("response_type", "code")
        .append_pair("client_id", &client.client_id)
        .append_pair("redirect_uri", REDIRECT)
        .append_pair("scope", scope)
        .append_pair("nonce", "n-1")
        .append_pair("code_challenge", challenge)
        .append_pair("code_challenge_method", "S256");
    for (name, value) in extra {
        url.query_pairs_mut().append_pair(name, value);
    }
    url.to_string()
}

/// Signs `email` in through the hosted login and redeems the code for `scope`.
async fn code_flow(node: &TestNode, client: &TestClient, email: &str, scope: &str) -> Value {
    code_flow_with(node, client, email, scope, &[]).await.1
}

/// [`code_flow`] with `extra` request parameters; also hands back the signed-in browser.
async fn code_flow_with(
    node: &TestNode,
    client: &TestClient,
    email: &str,
    scope: &str,
    extra: &[(&str, &str)],
) -> (Browser, Value) {
    let (verifier, challenge) = pkce_pair();
    let url = authorize_url(node, client, &challenge, scope, extra);
    let mut browser = Browser::from_address(loopback_ip());
    let page = browser.get(&url).await;
    assert_eq!(page.status, 200, "{}", page.body);
    let mut form = page.form_fields();
    form.insert("username".into(), email.into());
    form.insert("password".into(), PASSWORD.into());
    let done = browser
        .post_form(&node.at("/oauth2/authorize/login"), &form)
        .await;
    assert_eq!(done.status, 303, "{}", done.body);
    let params: BTreeMap<String, String> = done.location_params();
    (browser, redeem(node, client, &params["code"], &verifier).await)
}

async fn redeem(node: &TestNode, client: &TestClient, code: &str, verifier: &str) -> Value {
    let response = node
        .post_form(
            "/oauth2/token",
            client,
            &[
                ("grant_type", "authorization_code"),
                ("code", code),
                ("redirect_uri", REDIRECT),
                ("code_verifier", verifier),
            ],
        )
        .await;
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

async fn id_token_claims(node: &TestNode, token: &str, audience: &str) -> Value {
    let jwks: JwkSet = node.get("/.well-known/jwks.json").await.json().await.unwrap();
    let header = jsonwebtoken::decode_header(token).unwrap();
    let key = DecodingKey::from_jwk(jwks.find(header.kid.as_deref().unwrap()).unwrap()).unwrap();
    let mut validation = Validation::new(header.alg);
    assert_eq!(header.alg, Algorithm::RS256);
    validation.set_audience(&[audience]);
    validation.set_issuer(&[&node.url]);
    jsonwebtoken::decode::<Value>(token, &key, &validation)
        .unwrap()
        .claims
}

fn full_profile() -> Value {
    json!({
        "name": "Jane Q. Doe",
        "given_name": "Jane",
        "family_name": "Doe",
        "middle_name": "Quinn",
        "nickname": "JJ",
        "preferred_username": "jane.d",
        "picture": "https://cdn.example/jane.png",
        "website": "https://jane.example/",
        "gender": "female",
        "birthdate": "0000-02-29",
        "zoneinfo": "asia/seoul",
        "locale": "ko-KR",
        "phone_number": "+821012345678",
        "address": {
            "street_address": "1 Main St\nApt 2",
            "locality": "Seoul",
            "postal_code": "04524",
            "country": "KR"
        }
    })
}

async fn users_edit_their_profile_and_bad_values_change_nothing(backend: Backend) {
    let Some(node) = spawn(backend).await else { return };
    let (id, _, token) = user_with_token(&node, "jane").await;

    // A new user has no profile claims but when they last changed.
    let (status, empty) = node.get_bearer(PROFILE, &token).await;
    assert_eq!(status, 200, "{empty}");
    assert_eq!(
        empty.as_object().unwrap().keys().collect::<Vec<_>>(),
        ["updated_at"]
    );

    let (status, saved) = patch(&node, PROFILE, &token, &full_profile()).await;
    assert_eq!(status, 200, "{saved}");
    // Stored as checked: the zone in the database's spelling, the number unverified.
    assert_eq!(saved["zoneinfo"], "Asia/Seoul");
    assert_eq!(saved["address"]["locality"], "Seoul");
    assert_eq!(saved["locale"], "ko-KR");
    assert!(saved.get("phone_number_verified").is_none());
    let (_, shown) = node.get_bearer(PROFILE, &token).await;
    assert_eq!(shown, saved);

    // Each bad value is refused with the member named, and nothing changes.
    for (bad, field) in [
        (json!({ "picture": "javascript:alert(1)" }), "picture"),
        (json!({ "website": "https://user:pw@evil.example/" }), "website"),
        (json!({ "birthdate": "1990-02-30" }), "birthdate"),
        (json!({ "zoneinfo": "Mars/Olympus_Mons" }), "zoneinfo"),
        (json!({ "locale": "not a tag" }), "locale"),
        (json!({ "phone_number": "010-1234-5678" }), "phone_number"),
        (json!({ "phone_number_verified": true }), "phone_number_verified"),
        (json!({ "name": "x".repeat(257) }), "name"),
        (json!({ "nickname": "tab\there" }), "nickname"),
        (json!({ "address": { "country": 7 } }), "address.country"),
        (json!({ "address": "1 Main St" }), "address"),
        (json!({ "email": "other@example.com" }), "email"),
        (json!({ "sub": "someone-else" }), "sub"),
        // One bad member refuses the good ones beside it.
        (json!({ "name": "Changed", "gender": ["a"] }), "gender"),
    ] {
        let (status, body) = patch(&node, PROFILE, &token, &bad).await;
        assert_eq!(status, 400, "{bad} → {body}");
        assert_eq!(body["code"], "invalid_profile", "{body}");
        assert_eq!(body["field"], field, "{body}");
    }
    let (_, after) = node.get_bearer(PROFILE, &token).await;
    assert_eq!(after, saved, "a refused patch changed the profile");

    // Markup is data: stored and returned as a JSON string, byte for byte.
    let markup = "<script>alert('x')</script>\"&";
    let (status, body) = patch(&node, PROFILE, &token, &json!({ "nickname": markup })).await;
    assert_eq!((status, body["nickname"].as_str()), (200, Some(markup)));
    let response = node
        .client
        .get(node.at(PROFILE))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert!(response.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("application/json"));

    // null removes; absent members stay; the locale moves the user's record too.
    let (status, body) = patch(
        &node,
        PROFILE,
        &token,
        &json!({ "nickname": null, "address": null, "locale": "en" }),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert!(body.get("nickname").is_none() && body.get("address").is_none());
    assert_eq!(body["name"], "Jane Q. Doe");
    let user = node.state.accounts.user(&id).await.unwrap().unwrap();
    assert_eq!(user.locale.as_deref(), Some("en"));
    assert_eq!(body["updated_at"], user.updated_at);
}

async fn scopes_release_their_claims_from_userinfo_not_the_id_token(backend: Backend) {
    let Some(node) = spawn(backend).await else { return };
    let (id, email, token) = user_with_token(&node, "scoped").await;
    let (status, _) = patch(&node, PROFILE, &token, &full_profile()).await;
    assert_eq!(status, 200);
    let app = node
        .create_oidc_client("claims-app", false, REDIRECT, true, None)
        .await;

    // Every scope: userinfo has each scope's claims; the ID token only e-mail, locale and
    // updated_at, as before (an access token was issued, OIDC Core §5.4).
    let tokens = code_flow(&node, &app, &email, "openid profile email address phone").await;
    let claims = id_token_claims(&node, tokens["id_token"].as_str().unwrap(), "claims-app").await;
    assert_eq!(claims["sub"], id.as_str());
    assert_eq!(claims["email"], email.as_str());
    assert_eq!(claims["email_verified"], true);
    assert!(claims.get("updated_at").is_some(), "{claims}");
    for claim in [
        "name",
        "given_name",
        "address",
        "phone_number",
        "birthdate",
        "picture",
    ] {
        assert!(claims.get(claim).is_none(), "{claim} in the ID token: {claims}");
    }
    let access = tokens["access_token"].as_str().unwrap();
    let (status, info) = node.get_bearer(USERINFO, access).await;
    assert_eq!(status, 200, "{info}");
    let mut expected = full_profile();
    let object = expected.as_object_mut().unwrap();
    object.insert("zoneinfo".into(), json!("Asia/Seoul"));
    object.insert("sub".into(), json!(id));
    object.insert("email".into(), json!(email));
    object.insert("email_verified".into(), json!(true));
    object.insert("phone_number_verified".into(), json!(false));
    object.insert("updated_at".into(), info["updated_at"].clone());
    assert_eq!(info, expected);
    assert!(info["updated_at"].as_i64().unwrap() > 0);

    // Fewer scopes, fewer claims: `openid phone` releases the number only.
    let tokens = code_flow(&node, &app, &email, "openid phone").await;
    let (_, info) = node
        .get_bearer(USERINFO, tokens["access_token"].as_str().unwrap())
        .await;
    assert_eq!(
        info,
        json!({ "sub": id, "phone_number": "+821012345678", "phone_number_verified": false })
    );

    // Discovery advertises exactly the scopes and claims served.
    let (_, metadata) = node.get_json("/.well-known/openid-configuration").await;
    assert_eq!(
        metadata["scopes_supported"],
        json!(["openid", "profile", "email", "address", "phone"])
    );
    let supported: Vec<&str> = metadata["claims_supported"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap())
        .collect();
    for claim in expected.as_object().unwrap().keys() {
        assert!(
            supported.contains(&claim.as_str()),
            "{claim} is served but not advertised"
        );
    }
}

async fn operators_edit_profiles_and_only_they_verify_phone_numbers(backend: Backend) {
    let Some(node) = spawn(backend).await else { return };
    let (id, _, user_token) = user_with_token(&node, "operated").await;
    let (_, admin) = node.admin_token("profile-admin").await;
    let path = format!("/admin/users/{id}/profile");

    let (status, body) = patch(
        &node,
        &path,
        &admin,
        &json!({ "name": "Ops Set", "phone_number": "+14155550100", "phone_number_verified": true }),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["phone_number_verified"], true);
    let (status, shown) = node.get_bearer(&path, &admin).await;
    assert_eq!((status, &shown), (200, &body));
    // The user sees the operator's edit.
    let (_, own) = node.get_bearer(PROFILE, &user_token).await;
    assert_eq!(own, body);

    // The user changing the number loses the verification; keeping it keeps it.
    let (_, kept) = patch(&node, PROFILE, &user_token, &json!({ "nickname": "n" })).await;
    assert_eq!(kept["phone_number_verified"], true);
    let (_, changed) = patch(
        &node,
        PROFILE,
        &user_token,
        &json!({ "phone_number": "+14155550199" }),
    )
    .await;
    assert!(changed.get("phone_number_verified").is_none(), "{changed}");

    // The operator's patch is checked as the user's.
    let (status, body) = patch(&node, &path, &admin, &json!({ "birthdate": "19900101" })).await;
    assert_eq!(
        (status, body["field"].as_str()),
        (400, Some("birthdate")),
        "{body}"
    );
    // Unknown user: 404 for both.
    let (status, _) = node.get_bearer("/admin/users/nobody/profile", &admin).await;
    assert_eq!(status, 404);
    let (status, _) = patch(
        &node,
        "/admin/users/nobody/profile",
        &admin,
        &json!({ "name": "x" }),
    )
    .await;
    assert_eq!(status, 404);

    // A user's token is no admin token: they cannot edit another user's profile.
    let (other_id, _, other_token) = user_with_token(&node, "intruder").await;
    let (status, _) = patch(&node, &path, &other_token, &json!({ "name": "pwned" })).await;
    assert!(matches!(status, 401 | 403), "{status}");
    let (_, after) = node.get_bearer(&path, &admin).await;
    assert_eq!(after["name"], "Ops Set");
    let (_, theirs) = node.get_bearer(PROFILE, &other_token).await;
    assert!(theirs.get("name").is_none());
    assert_ne!(other_id, id);

    // Audited with the names of the claims changed, never their values.
    let events = node
        .state
        .db
        .audit_records(&tessera_store::durable::AuditQuery {
            event: Some("user.profile_updated".into()),
            subject: Some(id.clone()),
            limit: 100,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(events.len(), 3, "{events:?}");
    let text = format!("{events:?}");
    assert!(
        text.contains("phone_number") && !text.contains("+1415555"),
        "{text}"
    );
}

async fn profile_endpoints_refuse_abuse(backend: Backend) {
    let Some(node) = spawn(backend).await else { return };
    let (_, _, token) = user_with_token(&node, "abuser").await;

    // No token, a forged token, a client-credentials token.
    let response = node.client.get(node.at(PROFILE)).send().await.unwrap();
    assert_eq!(response.status(), 401);
    let (status, _) = patch(&node, PROFILE, "not.a.token", &json!({ "name": "x" })).await;
    assert_eq!(status, 401);
    let mut forged = token.clone();
    forged.pop();
    forged.push(if token.ends_with('A') { 'B' } else { 'A' });
    let (status, _) = patch(&node, PROFILE, &forged, &json!({ "name": "x" })).await;
    assert_eq!(status, 401);

    // Not JSON, not an object, malformed.
    let send = |content_type: &'static str, body: &'static str| {
        node.client
            .patch(node.at(PROFILE))
            .bearer_auth(&token)
            .header("content-type", content_type)
            .body(body)
            .send()
    };
    assert_eq!(send("text/plain", "name=x").await.unwrap().status(), 415);
    assert_eq!(send("application/json", "[1,2]").await.unwrap().status(), 400);
    assert_eq!(
        send("application/json", "{\"name\":").await.unwrap().status(),
        400
    );
    assert_eq!(send("application/json", "null").await.unwrap().status(), 400);

    // Oversized: refused before it is read.
    let huge = format!("{{\"name\":\"{}\"}}", "x".repeat(2 * 1024 * 1024));
    let response = node
        .client
        .patch(node.at(PROFILE))
        .bearer_auth(&token)
        .header("content-type", "application/json")
        .body(huge)
        .send()
        .await;
    if let Ok(response) = response {
        assert_eq!(response.status(), 413);
    }
    let (_, profile) = node.get_bearer(PROFILE, &token).await;
    assert!(profile.get("name").is_none(), "{profile}");

    // A deleted user's token edits nothing.
    let (victim, _, victim_token) = user_with_token(&node, "deleted").await;
    node.state
        .accounts
        .delete_user(&victim, "operator", &Default::default())
        .await
        .unwrap();
    let (status, _) = patch(&node, PROFILE, &victim_token, &json!({ "name": "ghost" })).await;
    assert_eq!(status, 401);
}

async fn userinfo_takes_the_token_from_the_header_or_the_form_body_only(backend: Backend) {
    let Some(node) = spawn(backend).await else { return };
    let (id, email, token) = user_with_token(&node, "bodytoken").await;
    patch(&node, PROFILE, &token, &json!({ "name": "Body Token" })).await;
    let app = node
        .create_oidc_client("userinfo-app", false, REDIRECT, true, None)
        .await;
    let tokens = code_flow(&node, &app, &email, "openid profile").await;
    let access = tokens["access_token"].as_str().unwrap();

    // RFC 6750 §2.2: the form body's access_token, on POST.
    let response = node
        .client
        .post(node.at(USERINFO))
        .form(&[("access_token", access)])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let info: Value = response.json().await.unwrap();
    assert_eq!(
        (info["sub"].as_str(), info["name"].as_str()),
        (Some(id.as_str()), Some("Body Token"))
    );
    // The header, on POST and GET, as before.
    let response = node
        .client
        .post(node.at(USERINFO))
        .bearer_auth(access)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(node.get_bearer(USERINFO, access).await.0, 200);

    // Never the query string, with or without a header.
    let query = format!("{}?access_token={access}", node.at(USERINFO));
    for response in [
        node.client.get(&query).send().await.unwrap(),
        node.client.post(&query).send().await.unwrap(),
        node.client.get(&query).bearer_auth(access).send().await.unwrap(),
    ] {
        assert_eq!(response.status(), 400);
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"], "invalid_request", "{body}");
    }
    // Two methods at once (RFC 6750 §2), or the token twice in the body.
    let response = node
        .client
        .post(node.at(USERINFO))
        .bearer_auth(access)
        .form(&[("access_token", access)])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let response = node
        .client
        .post(node.at(USERINFO))
        .form(&[("access_token", access), ("access_token", access)])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    // A body token that is tampered, or a JSON body: 401 as for a bad header.
    let mut tampered = access.to_owned();
    tampered.insert(10, 'x');
    let response = node
        .client
        .post(node.at(USERINFO))
        .form(&[("access_token", tampered.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    assert!(response.headers().contains_key("www-authenticate"));
    let response = node
        .client
        .post(node.at(USERINFO))
        .json(&json!({ "access_token": access }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    // A revoked token in the body is refused like one in the header.
    node.post_form("/oauth2/revoke", &app, &[("token", access)]).await;
    let response = node
        .client
        .post(node.at(USERINFO))
        .form(&[("access_token", access)])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
}

async fn the_claims_parameter_puts_what_it_asks_in_the_id_token_within_the_scope(backend: Backend) {
    let Some(node) = spawn(backend).await else { return };
    let (id, email, token) = user_with_token(&node, "asked").await;
    patch(&node, PROFILE, &token, &full_profile()).await;
    let app = node
        .create_oidc_client("claims-param-app", false, REDIRECT, true, None)
        .await;
    // OIDC Core §5.5's example shape, with extras a provider must accept: display,
    // claims_locales, an unknown parameter, an unknown claim, an unknown member.
    let claims = json!({
        "id_token": {
            "email": { "essential": true },
            "name": null,
            "given_name": { "essential": false },
            "phone_number": null,
            "auth_time": { "essential": true },
            "x_unknown": null
        },
        "userinfo": { "nickname": null, "address": { "essential": true } },
        "x_member": { "ignored": true }
    })
    .to_string();
    let (_, tokens) = code_flow_with(
        &node,
        &app,
        &email,
        "openid profile email",
        &[
            ("claims", &claims),
            ("display", "popup"),
            ("claims_locales", "ko-KR en"),
            ("x_unknown_parameter", "ignored"),
        ],
    )
    .await;
    let id_token = id_token_claims(&node, tokens["id_token"].as_str().unwrap(), "claims-param-app").await;
    assert_eq!(id_token["sub"], id.as_str());
    assert_eq!(id_token["email"], email.as_str());
    assert_eq!(id_token["name"], "Jane Q. Doe");
    assert_eq!(id_token["given_name"], "Jane");
    assert!(id_token["auth_time"].is_i64());
    // email_verified comes with the email scope anyway (as locale and updated_at with
    // profile); asked for but outside the granted scope (phone), not a claim we keep, or
    // neither asked for nor one of those: left out.
    assert_eq!(id_token["email_verified"], true);
    for absent in ["phone_number", "x_unknown", "nickname", "address"] {
        assert!(id_token.get(absent).is_none(), "{absent}: {id_token}");
    }
    // Userinfo releases the scope's claims, as without the parameter; nothing outside it.
    let (_, info) = node
        .get_bearer(USERINFO, tokens["access_token"].as_str().unwrap())
        .await;
    assert_eq!(info["nickname"], "JJ");
    assert!(info.get("address").is_none(), "{info}");

    // Through PAR (RFC 9126) the parameter arrives as well.
    let (verifier, challenge) = pkce_pair();
    let pushed = node
        .post_form(
            "/oauth2/par",
            &app,
            &[
                ("response_type", "code"),
                ("redirect_uri", REDIRECT),
                ("scope", "openid email"),
                ("code_challenge", &challenge),
                ("code_challenge_method", "S256"),
                ("claims", r#"{"id_token":{"email":null}}"#),
            ],
        )
        .await;
    assert_eq!(pushed.status(), 201);
    let pushed: Value = pushed.json().await.unwrap();
    let mut url = reqwest::Url::parse(&node.at("/oauth2/authorize")).unwrap();
    url.query_pairs_mut()
        .append_pair("client_id", &app.client_id)
        .append_pair("request_uri", pushed["request_uri"].as_str().unwrap());
    let mut browser = Browser::from_address(loopback_ip());
    let page = browser.get(url.as_str()).await;
    let mut form = page.form_fields();
    form.insert("username".into(), email.clone());
    form.insert("password".into(), PASSWORD.into());
    let done = browser
        .post_form(&node.at("/oauth2/authorize/login"), &form)
        .await;
    assert_eq!(done.status, 303, "{}", done.body);
    let tokens = redeem(&node, &app, &done.location_params()["code"], &verifier).await;
    let id_token = id_token_claims(&node, tokens["id_token"].as_str().unwrap(), "claims-param-app").await;
    assert_eq!(id_token["email"], email.as_str());
    assert!(id_token.get("name").is_none(), "{id_token}");

    let (_, metadata) = node.get_json("/.well-known/openid-configuration").await;
    assert_eq!(metadata["claims_parameter_supported"], true);
    assert_eq!(
        metadata["display_values_supported"],
        json!(["page", "popup", "touch", "wap"])
    );
}

async fn malformed_claims_and_display_are_invalid_requests_at_the_client(backend: Backend) {
    let Some(node) = spawn(backend).await else { return };
    let app = node
        .create_oidc_client("claims-bad-app", false, REDIRECT, true, None)
        .await;
    let (_, challenge) = pkce_pair();
    let huge = format!(r#"{{"userinfo":{{"name":{{"value":"{}"}}}}}}"#, "x".repeat(4096));
    let many = format!(
        r#"{{"id_token":{{{}}}}}"#,
        (0..65)
            .map(|i| format!(r#""c{i}":null"#))
            .collect::<Vec<_>>()
            .join(",")
    );
    for (name, value) in [
        ("claims", "{"),
        ("claims", "[]"),
        ("claims", "\"id_token\""),
        ("claims", r#"{"id_token":[]}"#),
        ("claims", r#"{"id_token":{"email":true}}"#),
        ("claims", r#"{"id_token":{"email":{"essential":"yes"}}}"#),
        ("claims", huge.as_str()),
        ("claims", many.as_str()),
        ("display", "tv"),
        ("display", "page popup"),
    ] {
        let mut browser = Browser::from_address(loopback_ip());
        let page = browser
            .get(&authorize_url(
                &node,
                &app,
                &challenge,
                "openid",
                &[(name, value)],
            ))
            .await;
        assert_eq!(page.status, 302, "{name}={value}: {}", page.body);
        let params = page.location_params();
        assert_eq!(params["error"], "invalid_request", "{name}={value}");
        assert!(!params.contains_key("code"));
    }
    // Every display value is accepted.
    for display in ["page", "popup", "touch", "wap"] {
        let mut browser = Browser::from_address(loopback_ip());
        let page = browser
            .get(&authorize_url(
                &node,
                &app,
                &challenge,
                "openid",
                &[("display", display)],
            ))
            .await;
        assert_eq!(page.status, 200, "display={display}");
        assert!(page.body.contains("name=\"password\""));
    }
}

async fn a_requested_sub_is_answered_for_that_user_only(backend: Backend) {
    let Some(node) = spawn(backend).await else { return };
    let (id, email, _) = user_with_token(&node, "subject").await;
    let app = node
        .create_oidc_client("claims-sub-app", false, REDIRECT, true, None)
        .await;
    let (mut browser, _) = code_flow_with(&node, &app, &email, "openid", &[]).await;
    let (_, challenge) = pkce_pair();
    let other = r#"{"id_token":{"sub":{"value":"someone-else"}}}"#;
    // Signed in as another user: prompt=none says login_required; without it, the login page.
    let page = browser
        .get(&authorize_url(
            &node,
            &app,
            &challenge,
            "openid",
            &[("claims", other), ("prompt", "none")],
        ))
        .await;
    assert_eq!(page.status, 302, "{}", page.body);
    assert_eq!(page.location_params()["error"], "login_required");
    let page = browser
        .get(&authorize_url(
            &node,
            &app,
            &challenge,
            "openid",
            &[("claims", other)],
        ))
        .await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains("name=\"password\""));
    // Signing in there as the same (wrong) user does not get a code either.
    let mut form = page.form_fields();
    form.insert("username".into(), email.clone());
    form.insert("password".into(), PASSWORD.into());
    let done = browser
        .post_form(&node.at("/oauth2/authorize/login"), &form)
        .await;
    assert_eq!(done.location_params()["error"], "login_required", "{}", done.body);
    // The right sub: a code at once from the SSO session.
    let mine = json!({ "id_token": { "sub": { "value": id } } }).to_string();
    let page = browser
        .get(&authorize_url(
            &node,
            &app,
            &challenge,
            "openid",
            &[("claims", &mine), ("prompt", "none")],
        ))
        .await;
    assert_eq!(page.status, 302);
    assert!(page.location_params().contains_key("code"), "{:?}", page.location);
}
