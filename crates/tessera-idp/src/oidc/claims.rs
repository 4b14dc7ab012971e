//! Which of a user's claims a client receives (OIDC Core §5.4): the scope names the
//! standard claims; they are returned from userinfo, as every Tessera response type issues
//! an access token.

use serde_json::{Map, Value};
use tessera_store::durable::UserRecord;

/// The value of standard claim `name` for the user, if they have one.
pub fn value_of(user: &UserRecord, profile: &Map<String, Value>, name: &str) -> Option<Value> {
    match name {
        "email" => Some(Value::from(user.email.as_str())),
        "email_verified" => Some(Value::from(user.email_verified_at.is_some())),
        "locale" => user.locale.as_deref().map(Value::from),
        "updated_at" => Some(Value::from(user.updated_at)),
        // Only a number can be verified; an unverified number says so.
        "phone_number_verified" => profile.get("phone_number").map(|_| {
            profile
                .get("phone_number_verified")
                .cloned()
                .unwrap_or(Value::Bool(false))
        }),
        other => profile.get(other).cloned(),
    }
}

/// The standard claims `scope` (space-separated) releases, as far as the user has them.
pub fn of_scope(user: &UserRecord, profile: &Map<String, Value>, scope: &str) -> Map<String, Value> {
    let mut claims = Map::new();
    for s in scope.split_ascii_whitespace() {
        for name in tessera_proto::claims::of_scope(s) {
            if let Some(value) = value_of(user, profile, name) {
                claims.insert((*name).to_owned(), value);
            }
        }
    }
    claims
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn user() -> UserRecord {
        UserRecord {
            id: "u1".into(),
            email: "jane@example.com".into(),
            email_verified_at: Some(1),
            password_hash: None,
            roles: Vec::new(),
            role_terms: Default::default(),
            locale: Some("ko-KR".into()),
            disabled_at: None,
            created_at: 1,
            updated_at: 7,
            password_changed_at: None,
        }
    }

    #[test]
    fn each_scope_releases_its_claims_only() {
        let profile = json!({
            "name": "Jane", "address": { "country": "KR" }, "phone_number": "+821012345678",
        });
        let profile = profile.as_object().unwrap();
        assert_eq!(
            Value::Object(of_scope(&user(), profile, "openid profile")),
            json!({ "name": "Jane", "locale": "ko-KR", "updated_at": 7 })
        );
        assert_eq!(
            Value::Object(of_scope(&user(), profile, "address phone")),
            json!({ "address": { "country": "KR" }, "phone_number": "+821012345678", "phone_number_verified": false })
        );
        assert_eq!(
            Value::Object(of_scope(&user(), profile, "email")),
            json!({ "email": "jane@example.com", "email_verified": true })
        );
        assert!(of_scope(&user(), &Map::new(), "openid address phone").is_empty());
    }
}
