//! The verified identity handed to the service.

use serde_json::Value;

use crate::error::VerifyError;

/// What a verified access token says about its caller.
#[derive(Debug, Clone, PartialEq)]
pub struct Claims {
    /// `sub`: the user id (or the client id, for a client-credentials token).
    pub subject: String,
    /// `client_id`: the client the token was issued to.
    pub client_id: String,
    /// `scope`, split on spaces.
    pub scopes: Vec<String>,
    /// `roles` (RFC 9068 §2.2.3.1): the user's roles with the ones they inherit.
    pub roles: Vec<String>,
    /// `permissions`: what those roles grant, flattened by the identity provider.
    pub permissions: Vec<String>,
    /// `sid`: the session; absent for client-credentials tokens.
    pub session_id: Option<String>,
    /// `jti` (empty for an introspection answer that has none).
    pub jti: String,
    /// `exp`, unix seconds (`i64::MAX` for an introspection answer without `exp`).
    pub expires_at: i64,
    /// `iat`, unix seconds (0 for an introspection answer without `iat`).
    pub issued_at: i64,
    /// `acr`: the authentication context class of the user's sign-in
    /// (`urn:tessera:acr:pwd` or `urn:tessera:acr:mfa`); absent for client tokens.
    pub acr: Option<String>,
    /// `amr`: the sign-in's methods (RFC 8176: `pwd`, `otp`, `mfa`).
    pub amr: Vec<String>,
    /// `auth_time`: when the user signed in, unix seconds.
    pub auth_time: Option<i64>,
    /// The key id when the caller authenticated with a partner API key
    /// ([`ApiKeys`](crate::ApiKeys)), not a token; `None` for tokens.
    pub api_key_id: Option<String>,
    /// `cnf.jkt` (RFC 9449 §6.1): the thumbprint of the DPoP key the token is bound to. A
    /// bound token is accepted only with a proof of that key
    /// ([`Verifier::verify_dpop`](crate::Verifier::verify_dpop)).
    pub dpop_jkt: Option<String>,
    /// Every claim as sent.
    pub raw: Value,
}

impl Claims {
    /// Whether the token grants `scope`.
    pub fn has_scope(&self, scope: &str) -> bool {
        self.scopes.iter().any(|s| s == scope)
    }

    /// Whether the caller holds `role`.
    pub fn has_role(&self, role: &str) -> bool {
        self.roles.iter().any(|r| r == role)
    }

    /// Whether the caller's roles grant `permission` (`orders:refund`).
    pub fn has_permission(&self, permission: &str) -> bool {
        self.permissions.iter().any(|p| p == permission)
    }

    /// Whether the sign-in used method `amr` (`mfa`, `otp`, `pwd`).
    pub fn has_amr(&self, amr: &str) -> bool {
        self.amr.iter().any(|m| m == amr)
    }

    /// Whether the sign-in's `acr` is one of `acr_values` — or stronger: a sign-in with a
    /// second factor (`urn:tessera:acr:mfa`) meets a requirement of the password class.
    /// `true` when `acr_values` is empty.
    pub fn meets_acr(&self, acr_values: &[&str]) -> bool {
        const PASSWORD: &str = "urn:tessera:acr:pwd";
        const MFA: &str = "urn:tessera:acr:mfa";
        let Some(acr) = self.acr.as_deref() else {
            return acr_values.is_empty();
        };
        acr_values.is_empty()
            || acr_values
                .iter()
                .any(|wanted| *wanted == acr || (acr == MFA && *wanted == PASSWORD))
    }
}

/// The registered claims of a JWT access token, read from the verified payload.
pub(crate) struct Registered {
    pub iss: String,
    pub aud: Vec<String>,
    pub exp: i64,
    pub nbf: Option<i64>,
    pub iat: i64,
    pub claims: Claims,
}

/// A NumericDate (RFC 7519 §2): seconds, possibly fractional; fractions are dropped.
pub(crate) fn numeric_date(value: Option<&Value>) -> Option<i64> {
    let value = value?;
    if let Some(n) = value.as_i64() {
        return Some(n);
    }
    let float = value.as_f64()?;
    // Saturating float-to-int conversion; NaN cannot come out of JSON.
    float.is_finite().then_some(float.floor() as i64)
}

fn string(raw: &Value, name: &'static str) -> Result<String, VerifyError> {
    raw.get(name)
        .and_then(Value::as_str)
        .map(str::to_owned)
        .ok_or(VerifyError::Claims(name))
}

fn optional_string(raw: &Value, name: &'static str) -> Result<Option<String>, VerifyError> {
    match raw.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(VerifyError::Claims(name)),
    }
}

/// A claim that is a string array (or absent).
pub(crate) fn string_list(raw: &Value, name: &'static str) -> Result<Vec<String>, VerifyError> {
    match raw.get(name) {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(items)) => items
            .iter()
            .map(|item| item.as_str().map(str::to_owned).ok_or(VerifyError::Claims(name)))
            .collect(),
        Some(_) => Err(VerifyError::Claims(name)),
    }
}

/// `scope` as a list (RFC 9068 §2.2.3: space-separated).
pub(crate) fn scopes(raw: &Value) -> Result<Vec<String>, VerifyError> {
    Ok(optional_string(raw, "scope")?
        .map(|s| s.split_ascii_whitespace().map(str::to_owned).collect())
        .unwrap_or_default())
}

/// `aud`: one string or an array of strings (RFC 7519 §4.1.3).
pub(crate) fn audiences(raw: &Value) -> Result<Vec<String>, VerifyError> {
    match raw.get("aud") {
        Some(Value::String(aud)) => Ok(vec![aud.clone()]),
        Some(Value::Array(_)) => string_list(raw, "aud"),
        _ => Err(VerifyError::Claims("aud")),
    }
}

/// Reads the claims RFC 9068 §2.2 requires (`iss`, `exp`, `aud`, `sub`, `client_id`, `iat`,
/// `jti`) and those Tessera adds (`scope`, `sid`, `roles`).
pub(crate) fn read(raw: Value) -> Result<Registered, VerifyError> {
    if !raw.is_object() {
        return Err(VerifyError::Claims("payload"));
    }
    let iss = string(&raw, "iss")?;
    let aud = audiences(&raw)?;
    let exp = numeric_date(raw.get("exp")).ok_or(VerifyError::Claims("exp"))?;
    let nbf = match raw.get("nbf") {
        None => None,
        Some(value) => Some(numeric_date(Some(value)).ok_or(VerifyError::Claims("nbf"))?),
    };
    let iat = numeric_date(raw.get("iat")).ok_or(VerifyError::Claims("iat"))?;
    let claims = Claims {
        subject: string(&raw, "sub")?,
        client_id: string(&raw, "client_id")?,
        scopes: scopes(&raw)?,
        roles: string_list(&raw, "roles")?,
        permissions: string_list(&raw, "permissions")?,
        session_id: optional_string(&raw, "sid")?,
        jti: string(&raw, "jti")?,
        expires_at: exp,
        issued_at: iat,
        acr: optional_string(&raw, "acr")?,
        amr: string_list(&raw, "amr")?,
        auth_time: match raw.get("auth_time") {
            None | Some(Value::Null) => None,
            value => Some(numeric_date(value).ok_or(VerifyError::Claims("auth_time"))?),
        },
        api_key_id: None,
        dpop_jkt: match raw.get("cnf") {
            None => None,
            Some(cnf) => Some(
                cnf.get("jkt")
                    .and_then(Value::as_str)
                    .filter(|jkt| !jkt.is_empty())
                    .ok_or(VerifyError::Claims("cnf"))?
                    .to_owned(),
            ),
        },
        raw,
    };
    Ok(Registered {
        iss,
        aud,
        exp,
        nbf,
        iat,
        claims,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn full() -> Value {
        json!({
            "iss": "https://id", "sub": "u1", "aud": ["a", "b"], "exp": 20, "nbf": 10, "iat": 10.7,
            "jti": "j", "client_id": "c", "scope": "openid  orders:read", "sid": "s", "roles": ["admin"]
        })
    }

    #[test]
    fn reads_every_claim() {
        let read = read(full()).unwrap();
        assert_eq!(read.aud, vec!["a", "b"]);
        assert_eq!(read.iat, 10);
        assert_eq!(read.claims.scopes, vec!["openid", "orders:read"]);
        assert_eq!(read.claims.session_id.as_deref(), Some("s"));
        assert!(read.claims.has_role("admin"));
        assert!(read.claims.has_scope("orders:read"));
        assert!(!read.claims.has_scope("orders"));
    }

    #[test]
    fn refuses_missing_or_mistyped_claims() {
        for (name, value) in [
            ("sub", json!(null)),
            ("aud", json!(3)),
            ("aud", json!([1])),
            ("exp", json!("soon")),
            ("roles", json!("admin")),
            ("sid", json!(5)),
            ("scope", json!(["a"])),
            ("nbf", json!("x")),
        ] {
            let mut raw = full();
            if value.is_null() {
                raw.as_object_mut().unwrap().remove(name);
            } else {
                raw[name] = value;
            }
            assert_eq!(read(raw).err(), Some(VerifyError::Claims(name)), "{name}");
        }
        assert!(read(json!([1])).is_err());
    }
}
