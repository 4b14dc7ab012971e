//! A DPoP key for tests (RFC 9449): makes proofs as a client would, and proofs that no
//! client should send (the header and claims are the caller's to choose).

use aws_lc_rs::digest;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{EcdsaKeyPair, KeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde_json::{json, Value};

/// An ES256 key pair a test client proves possession of.
pub struct DpopKey {
    pair: EcdsaKeyPair,
    rng: SystemRandom,
}

impl Default for DpopKey {
    fn default() -> Self {
        DpopKey::generate()
    }
}

impl DpopKey {
    /// A fresh P-256 key.
    pub fn generate() -> Self {
        let rng = SystemRandom::new();
        let doc =
            EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).expect("key generation");
        let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, doc.as_ref()).expect("pkcs8");
        DpopKey { pair, rng }
    }

    /// The public key as a JWK.
    pub fn jwk(&self) -> Value {
        let point = self.pair.public_key().as_ref();
        json!({
            "kty": "EC",
            "crv": "P-256",
            "x": URL_SAFE_NO_PAD.encode(&point[1..33]),
            "y": URL_SAFE_NO_PAD.encode(&point[33..65]),
        })
    }

    /// Its RFC 7638 SHA-256 thumbprint (computed here, independently of the provider).
    pub fn jkt(&self) -> String {
        let jwk = self.jwk();
        let canonical = format!(
            r#"{{"crv":"P-256","kty":"EC","x":"{}","y":"{}"}}"#,
            jwk["x"].as_str().unwrap_or_default(),
            jwk["y"].as_str().unwrap_or_default()
        );
        URL_SAFE_NO_PAD.encode(digest::digest(&digest::SHA256, canonical.as_bytes()).as_ref())
    }

    /// The standard header of this key's proofs.
    pub fn header(&self) -> Value {
        json!({ "typ": "dpop+jwt", "alg": "ES256", "jwk": self.jwk() })
    }

    /// The standard claims of a proof for `method url`, created now (`iat`), with `ath`
    /// of `access_token` when one is presented.
    pub fn claims(&self, method: &str, url: &str, access_token: Option<&str>) -> Value {
        let mut claims = json!({
            "jti": URL_SAFE_NO_PAD.encode(crate::random_u64().to_be_bytes()) + &URL_SAFE_NO_PAD.encode(crate::random_u64().to_be_bytes()),
            "htm": method,
            "htu": url,
            "iat": now(),
        });
        if let Some(token) = access_token {
            claims["ath"] = Value::from(ath(token));
        }
        claims
    }

    /// A valid proof for `method url` (with `ath` of `access_token`).
    pub fn proof(&self, method: &str, url: &str, access_token: Option<&str>) -> String {
        self.sign(&self.header(), &self.claims(method, url, access_token))
    }

    /// A proof carrying server nonce `nonce`.
    pub fn proof_with_nonce(
        &self,
        method: &str,
        url: &str,
        access_token: Option<&str>,
        nonce: &str,
    ) -> String {
        let mut claims = self.claims(method, url, access_token);
        claims["nonce"] = Value::from(nonce);
        self.sign(&self.header(), &claims)
    }

    /// Signs any header and claims with this key (ES256), as a compact JWS.
    pub fn sign(&self, header: &Value, claims: &Value) -> String {
        let input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let signature = self.pair.sign(&self.rng, input.as_bytes()).expect("signing");
        format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature.as_ref()))
    }
}

/// The `ath` of an access token (base64url of its SHA-256).
pub fn ath(token: &str) -> String {
    URL_SAFE_NO_PAD.encode(digest::digest(&digest::SHA256, token.as_bytes()).as_ref())
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(0))
}
