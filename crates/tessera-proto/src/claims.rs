//! Standard claims (OIDC Core §5.1) and the scopes that release them (§5.4): the one
//! table the claim release, the profile editor and the discovery document share; and the
//! `claims` request parameter (§5.5).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Claims of the `profile` scope (OIDC Core §5.4).
pub const PROFILE: &[&str] = &[
    "name",
    "family_name",
    "given_name",
    "middle_name",
    "nickname",
    "preferred_username",
    "picture",
    "website",
    "gender",
    "birthdate",
    "zoneinfo",
    "locale",
    "updated_at",
];

/// Claims of the `email` scope.
pub const EMAIL: &[&str] = &["email", "email_verified"];

/// Claims of the `address` scope: one structured claim (OIDC Core §5.1.1).
pub const ADDRESS: &[&str] = &["address"];

/// Claims of the `phone` scope.
pub const PHONE: &[&str] = &["phone_number", "phone_number_verified"];

/// Members of the `address` claim (OIDC Core §5.1.1).
pub const ADDRESS_MEMBERS: &[&str] = &[
    "formatted",
    "street_address",
    "locality",
    "region",
    "postal_code",
    "country",
];

/// The scopes this provider serves, `openid` first.
pub const SCOPES: &[&str] = &["openid", "profile", "email", "address", "phone"];

/// The standard claims `scope` releases (unknown scopes release none).
pub fn of_scope(scope: &str) -> &'static [&'static str] {
    match scope {
        "profile" => PROFILE,
        "email" => EMAIL,
        "address" => ADDRESS,
        "phone" => PHONE,
        _ => &[],
    }
}

/// Every standard claim a user can have released, in scope order.
pub fn user_claims() -> impl Iterator<Item = &'static str> {
    SCOPES.iter().flat_map(|scope| of_scope(scope).iter().copied())
}

/// Most claims one member of a `claims` request may name (a request is also bounded by the
/// length of an authorization parameter).
pub const MAX_REQUESTED_CLAIMS: usize = 64;

/// One requested claim (OIDC Core §5.5.1): `null`, or an object with `essential`, `value`
/// or `values`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ClaimRequest {
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub essential: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub values: Option<Vec<Value>>,
}

impl ClaimRequest {
    /// The values asked for: `value`, or the `values` in order of preference.
    pub fn wanted(&self) -> Vec<&Value> {
        match (&self.value, &self.values) {
            (Some(value), _) => vec![value],
            (None, Some(values)) => values.iter().collect(),
            (None, None) => Vec::new(),
        }
    }
}

/// The `claims` authorization request parameter (OIDC Core §5.5): which claims the client
/// asks for in userinfo and in the ID token. Members other than these two are ignored
/// (the parameter is extensible); so are unknown claims within them (§5.5.1).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ClaimsRequest {
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub userinfo: BTreeMap<String, ClaimRequest>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub id_token: BTreeMap<String, ClaimRequest>,
}

/// Why a `claims` parameter is refused (`invalid_request`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MalformedClaims(pub &'static str);

impl ClaimsRequest {
    /// Parses the parameter's JSON text.
    pub fn parse(text: &str) -> Result<Self, MalformedClaims> {
        let value: Value =
            serde_json::from_str(text).map_err(|_| MalformedClaims("claims is not valid JSON"))?;
        let Value::Object(object) = value else {
            return Err(MalformedClaims("claims must be a JSON object"));
        };
        let mut request = ClaimsRequest::default();
        for (member, into) in [
            ("userinfo", &mut request.userinfo),
            ("id_token", &mut request.id_token),
        ] {
            match object.get(member) {
                None | Some(Value::Null) => {}
                Some(Value::Object(claims)) => {
                    if claims.len() > MAX_REQUESTED_CLAIMS {
                        return Err(MalformedClaims("claims names too many claims"));
                    }
                    for (name, request) in claims {
                        let request = match request {
                            Value::Null => ClaimRequest::default(),
                            Value::Object(_) => serde_json::from_value(request.clone()).map_err(|_| {
                                MalformedClaims(
                                    "a requested claim must be null or {essential, value, values}",
                                )
                            })?,
                            _ => return Err(MalformedClaims("a requested claim must be null or an object")),
                        };
                        into.insert(name.clone(), request);
                    }
                }
                Some(_) => {
                    return Err(MalformedClaims(
                        "claims.userinfo and claims.id_token must be objects",
                    ))
                }
            }
        }
        Ok(request)
    }

    /// The JSON text to carry the request in (with the authorization code).
    pub fn to_text(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_scope_but_openid_releases_claims_and_none_twice() {
        for scope in &SCOPES[1..] {
            assert!(!of_scope(scope).is_empty(), "{scope}");
        }
        let all: Vec<&str> = user_claims().collect();
        let mut unique = all.clone();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(all.len(), unique.len());
        assert!(of_scope("openid").is_empty() && of_scope("offline_access").is_empty());
    }

    #[test]
    fn claims_requests_parse_as_oidc_core_5_5_shows() {
        let request = ClaimsRequest::parse(
            r#"{"userinfo":{"given_name":{"essential":true},"nickname":null,"email":{"essential":true}},
                "id_token":{"auth_time":{"essential":true},"acr":{"values":["urn:mace:incommon:iap:silver"]}},
                "other":{"ignored":true}}"#,
        )
        .unwrap();
        assert!(request.userinfo["given_name"].essential);
        assert_eq!(request.userinfo["nickname"], ClaimRequest::default());
        assert_eq!(
            request.id_token["acr"].wanted(),
            [&Value::from("urn:mace:incommon:iap:silver")]
        );
        let again = ClaimsRequest::parse(&request.to_text()).unwrap();
        assert_eq!(again, request);
        for bad in [
            "",
            "{",
            "[]",
            "\"x\"",
            r#"{"userinfo":[]}"#,
            r#"{"id_token":{"email":true}}"#,
            r#"{"id_token":{"email":{"essential":"yes"}}}"#,
            r#"{"id_token":{"acr":{"values":"x"}}}"#,
        ] {
            assert!(ClaimsRequest::parse(bad).is_err(), "{bad}");
        }
        let many: Vec<String> = (0..=MAX_REQUESTED_CLAIMS)
            .map(|i| format!(r#""c{i}":null"#))
            .collect();
        assert!(ClaimsRequest::parse(&format!(r#"{{"userinfo":{{{}}}}}"#, many.join(","))).is_err());
    }
}
