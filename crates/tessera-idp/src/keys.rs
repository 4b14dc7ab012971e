//! Signing keys: generation, encryption at rest, the published key set (JWKS), the key that
//! signs now, and rotation with a pre-publish and a retire window.
//!
//! The ring is a snapshot of the durable store, reloaded on an interval so that a rotation
//! made by another node or by `tessera keys rotate` is picked up without a restart.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use aws_lc_rs::aead::{Aad, Nonce, RandomizedNonceKey, AES_256_GCM, NONCE_LEN};
use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::signature::{EcdsaKeyPair, Ed25519KeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};
use base64::Engine as _;
use jsonwebtoken::jwk::{Jwk, JwkSet, PublicKeyUse, ThumbprintHash};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header};
use serde::Serialize;
use serde_json::json;
use tessera_store::durable::{KeyStore, StoredKey};
use tessera_store::ephemeral::EphemeralStore;
use tessera_store::StoreError;

use crate::audit::{AuditEvent, Auditor, RequestContext};
use crate::clock::Clock;

/// The algorithms a node holds a key for: ES256 signs access tokens by default, RS256 is
/// what OpenID Connect requires every provider to offer for ID tokens, EdDSA on request.
pub const ALGORITHMS: [Algorithm; 3] = [Algorithm::ES256, Algorithm::RS256, Algorithm::EdDSA];

/// Version byte of the encrypted key format: `1 || nonce (12) || ciphertext || tag (16)`.
const SEALED_V1: u8 = 1;

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(
        "the master key does not decrypt signing key {kid}: TESSERA_MASTER_KEY is not the key \
         this database was created with"
    )]
    WrongMasterKey { kid: String },
    #[error("signing key {kid} is unusable: {reason}")]
    Corrupt { kid: String, reason: String },
    #[error("cryptographic failure: {0}")]
    Crypto(String),
    #[error("unsupported algorithm {0}")]
    UnsupportedAlgorithm(String),
}

/// The key-encryption key (from `master_key`). Seals private keys with AES-256-GCM; the
/// `kid` is bound as associated data so a ciphertext cannot be moved to another row.
pub struct MasterKey(RandomizedNonceKey);

impl MasterKey {
    pub fn new(bytes: &[u8; 32]) -> Result<Self, KeyError> {
        RandomizedNonceKey::new(&AES_256_GCM, bytes)
            .map(MasterKey)
            .map_err(|_| KeyError::Crypto("cannot create AES-256-GCM key".to_owned()))
    }

    /// Seals `plaintext` bound to `kid` (the associated data: a row id, so a ciphertext
    /// cannot be moved to another row).
    pub(crate) fn seal(&self, kid: &str, plaintext: &[u8]) -> Result<Vec<u8>, KeyError> {
        let mut in_out = plaintext.to_vec();
        let nonce = self
            .0
            .seal_in_place_append_tag(Aad::from(kid.as_bytes()), &mut in_out)
            .map_err(|_| KeyError::Crypto("sealing failed".to_owned()))?;
        let mut sealed = Vec::with_capacity(1 + NONCE_LEN + in_out.len());
        sealed.push(SEALED_V1);
        sealed.extend_from_slice(nonce.as_ref());
        sealed.extend_from_slice(&in_out);
        Ok(sealed)
    }

    /// Opens what [`MasterKey::seal`] sealed for `kid`.
    pub(crate) fn open(&self, kid: &str, sealed: &[u8]) -> Result<Vec<u8>, KeyError> {
        let wrong = || KeyError::WrongMasterKey { kid: kid.to_owned() };
        let (&version, rest) = sealed.split_first().ok_or_else(wrong)?;
        if version != SEALED_V1 || rest.len() < NONCE_LEN {
            return Err(KeyError::Corrupt {
                kid: kid.to_owned(),
                reason: "unknown sealed-key format".to_owned(),
            });
        }
        let (nonce, ciphertext) = rest.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| wrong())?;
        let mut in_out = ciphertext.to_vec();
        let plaintext = self
            .0
            .open_in_place(nonce, Aad::from(kid.as_bytes()), &mut in_out)
            .map_err(|_| wrong())?;
        Ok(plaintext.to_vec())
    }
}

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MasterKey(<redacted>)")
    }
}

/// A decrypted signing key with its public half.
#[derive(Clone)]
pub struct SigningKey {
    pub kid: String,
    pub alg: Algorithm,
    /// The private key in the form jsonwebtoken takes (tests sign with it).
    pub encoding: EncodingKey,
    /// The same private key parsed once into aws-lc-rs, so a signature costs a signature
    /// (`jsonwebtoken::encode` re-parses the DER, and for ES256 and EdDSA derives the public
    /// key, on every call; for RSA it checks the key).
    signer: Arc<PreparedSigner>,
    pub decoding: DecodingKey,
    pub public: Jwk,
    pub created_at: i64,
    pub activates_at: i64,
    pub retires_at: Option<i64>,
    pub expires_at: Option<i64>,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey")
            .field("kid", &self.kid)
            .field("alg", &self.alg)
            .field("activates_at", &self.activates_at)
            .field("retires_at", &self.retires_at)
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

/// A private key parsed once, ready to sign.
enum PreparedSigner {
    Es256(EcdsaKeyPair),
    Rs256(aws_lc_rs::signature::RsaKeyPair),
    EdDsa(Ed25519KeyPair),
}

impl PreparedSigner {
    /// Parses the DER that [`KeyRing`] stores: PKCS#8 for ES256 and EdDSA, PKCS#1 for RSA
    /// (the forms jsonwebtoken's `EncodingKey::from_*_der` take).
    fn parse(alg: Algorithm, der: &[u8]) -> Result<PreparedSigner, String> {
        match alg {
            Algorithm::ES256 => EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, der)
                .map(PreparedSigner::Es256)
                .map_err(|e| format!("not a P-256 PKCS#8 key: {e}")),
            Algorithm::RS256 => aws_lc_rs::signature::RsaKeyPair::from_der(der)
                .map(PreparedSigner::Rs256)
                .map_err(|e| format!("not an RSA key: {e}")),
            Algorithm::EdDSA => Ed25519KeyPair::from_pkcs8(der)
                .map(PreparedSigner::EdDsa)
                .map_err(|e| format!("not an Ed25519 PKCS#8 key: {e}")),
            other => Err(format!("unsupported algorithm {other:?}")),
        }
    }

    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, String> {
        let rng = aws_lc_rs::rand::SystemRandom::new();
        match self {
            PreparedSigner::Es256(pair) => pair
                .sign(&rng, message)
                .map(|sig| sig.as_ref().to_vec())
                .map_err(|_| "ES256 signing failed".to_owned()),
            PreparedSigner::Rs256(pair) => {
                let mut signature = vec![0; pair.public_modulus_len()];
                pair.sign(
                    &aws_lc_rs::signature::RSA_PKCS1_SHA256,
                    &rng,
                    message,
                    &mut signature,
                )
                .map_err(|_| "RS256 signing failed".to_owned())?;
                Ok(signature)
            }
            PreparedSigner::EdDsa(pair) => Ok(pair.sign(message).as_ref().to_vec()),
        }
    }
}

impl SigningKey {
    /// A compact JWS (RFC 7515 §7.1) of `claims` under `header`, signed with this key:
    /// `base64url(header) . base64url(claims) . base64url(signature)`, exactly what
    /// `jsonwebtoken::encode` produces, without re-parsing the key. `header.alg` must be
    /// this key's algorithm.
    pub fn sign_jws(&self, header: &Header, claims: &impl Serialize) -> Result<String, String> {
        if header.alg != self.alg {
            return Err(format!(
                "key {} signs {:?}, not {:?}",
                self.kid, self.alg, header.alg
            ));
        }
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let header_json = serde_json::to_vec(header).map_err(|e| e.to_string())?;
        let claims_json = serde_json::to_vec(claims).map_err(|e| e.to_string())?;
        // Room for both parts, two dots and the largest signature we make (RSA-2048: 342).
        let mut jws = String::with_capacity((header_json.len() + claims_json.len()) * 4 / 3 + 360);
        b64.encode_string(&header_json, &mut jws);
        jws.push('.');
        b64.encode_string(&claims_json, &mut jws);
        let signature = self.signer.sign(jws.as_bytes())?;
        jws.push('.');
        b64.encode_string(&signature, &mut jws);
        Ok(jws)
    }

    /// Whether this key is in the published set at `now`.
    pub fn is_published(&self, now: i64) -> bool {
        self.expires_at.is_none_or(|expires| expires > now)
    }

    /// Whether this key may sign at `now`.
    pub fn is_active(&self, now: i64) -> bool {
        self.activates_at <= now && self.retires_at.is_none_or(|retires| retires > now)
    }
}

/// The state of the key set shown by `tessera keys list`.
pub fn key_status(key: &StoredKey, now: i64) -> &'static str {
    if key.expires_at.is_some_and(|e| e <= now) {
        "expired"
    } else if key.retires_at.is_some_and(|r| r <= now) {
        "retired"
    } else if key.activates_at > now {
        "published"
    } else {
        "active"
    }
}

/// A signing key as `tessera keys list --json` and `GET /admin/keys` show it: its public
/// facts and timeline, never private material.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct KeyView {
    /// The RFC 7638 thumbprint, as in JWKS and token headers.
    pub kid: String,
    /// `ES256`, `RS256` or `EdDSA`.
    pub alg: String,
    /// `published` (in JWKS, not signing yet), `active`, `retired` (verifies only) or
    /// `expired` (out of JWKS).
    pub status: String,
    pub created_at: i64,
    /// When it starts signing (unix seconds).
    pub activates_at: i64,
    /// When it stops signing, once a successor is created.
    pub retires_at: Option<i64>,
    /// When it leaves JWKS.
    pub expires_at: Option<i64>,
}

impl KeyView {
    /// The view of `key` at `now`.
    pub fn of(key: &StoredKey, now: i64) -> Self {
        KeyView {
            kid: key.kid.clone(),
            alg: key.alg.clone(),
            status: key_status(key, now).to_owned(),
            created_at: key.created_at,
            activates_at: key.activates_at,
            retires_at: key.retires_at,
            expires_at: key.expires_at,
        }
    }
}

/// Every key, expired or not, oldest first, as of `now` (`tessera keys list`, `GET /admin/keys`).
pub async fn list_keys(store: &dyn KeyStore, now: i64) -> Result<Vec<KeyView>, StoreError> {
    Ok(store
        .all_keys()
        .await?
        .iter()
        .map(|key| KeyView::of(key, now))
        .collect())
}

/// The algorithms a rotation request names: one by JOSE name, or all when `None`.
pub fn algorithms(name: Option<&str>) -> Result<Vec<Algorithm>, KeyError> {
    match name {
        None => Ok(ALGORITHMS.to_vec()),
        Some(name) => parse_alg(name)
            .map(|alg| vec![alg])
            .ok_or_else(|| KeyError::UnsupportedAlgorithm(name.to_owned())),
    }
}

/// `tessera keys rotate` and `POST /admin/keys/rotate`: a new key for each of `algs` (see
/// [`KeyRing::rotate`]), each audited as `key.rotated` by `actor`, then announced on
/// [`crate::node::KEYS_CHANGED_CHANNEL`] so that nodes sharing Redis reload at once (others
/// within `keys.reload_secs`). A failed announcement is logged, not returned: the keys are
/// stored, and the periodic reload picks them up.
pub async fn rotate_keys(
    ring: &KeyRing,
    ephemeral: &dyn EphemeralStore,
    audit: &Auditor,
    algs: &[Algorithm],
    actor: &str,
    context: &RequestContext,
) -> Result<Vec<StoredKey>, KeyError> {
    let mut created = Vec::with_capacity(algs.len());
    for alg in algs {
        let key = ring.rotate(*alg).await?;
        audit
            .record(
                context,
                AuditEvent::new("key.rotated", "success")
                    .actor(actor)
                    .detail(json!({ "kid": key.kid, "alg": key.alg, "activates_at": key.activates_at })),
            )
            .await;
        created.push(key);
    }
    if let Err(err) = ephemeral
        .publish(crate::node::KEYS_CHANGED_CHANNEL, "rotated")
        .await
    {
        tracing::warn!(error = %err, "cannot announce the key rotation; other nodes reload within keys.reload_secs");
    }
    Ok(created)
}

/// The scheduled rotation (`keys.rotate_after_secs`): [`rotate_keys`] for every algorithm
/// whose newest key — as the store has it now, so rotations made by other nodes or by
/// `tessera keys rotate` count — is at least `max_age` seconds old, audited with actor
/// `system`. One call at a time per node (other nodes are kept out by a lease), so one
/// algorithm is never rotated twice for one age. Returns the keys created.
pub async fn rotate_due_keys(
    ring: &KeyRing,
    ephemeral: &dyn EphemeralStore,
    audit: &Auditor,
    max_age: i64,
) -> Result<Vec<StoredKey>, KeyError> {
    let _one_at_a_time = ring.rotating.lock().await;
    ring.reload().await?;
    let now = ring.clock.now();
    let keys = ring.snapshot();
    let due: Vec<Algorithm> = ALGORITHMS
        .into_iter()
        .filter(|alg| {
            let newest = keys.iter().filter(|k| k.alg == *alg).map(|k| k.created_at).max();
            newest.is_none_or(|created| now.saturating_sub(created) >= max_age)
        })
        .collect();
    if due.is_empty() {
        return Ok(Vec::new());
    }
    rotate_keys(ring, ephemeral, audit, &due, "system", &RequestContext::default()).await
}

/// Timing of rotations.
#[derive(Debug, Clone, Copy)]
pub struct RotationPolicy {
    pub prepublish_secs: i64,
    pub retire_window_secs: i64,
}

/// The node's signing keys.
pub struct KeyRing {
    store: Arc<dyn KeyStore>,
    master: MasterKey,
    clock: Arc<dyn Clock>,
    policy: RotationPolicy,
    keys: RwLock<Arc<Vec<SigningKey>>>,
    /// Serialises [`rotate_due_keys`] on this node (other nodes are kept out by a lease).
    rotating: tokio::sync::Mutex<()>,
    /// Serialises [`KeyRing::reload`]: without it, a reload that read the store before a
    /// rotation could finish after the rotation's own reload and put the older key set
    /// back (the new key would then not sign until the next periodic reload).
    reloading: tokio::sync::Mutex<()>,
}

impl KeyRing {
    /// Loads the key set, creating the first keys (one per algorithm, active at once) on a
    /// fresh database. Fails if the master key does not decrypt the stored keys.
    pub async fn open(
        store: Arc<dyn KeyStore>,
        master: MasterKey,
        clock: Arc<dyn Clock>,
        policy: RotationPolicy,
    ) -> Result<KeyRing, KeyError> {
        let ring = KeyRing {
            store,
            master,
            clock,
            policy,
            keys: RwLock::new(Arc::new(Vec::new())),
            rotating: tokio::sync::Mutex::new(()),
            reloading: tokio::sync::Mutex::new(()),
        };
        if ring.store.all_keys().await?.is_empty() {
            let now = ring.clock.now();
            let mut first = Vec::with_capacity(ALGORITHMS.len());
            for alg in ALGORITHMS {
                first.push(ring.generate(alg, now, now)?);
            }
            if ring.store.bootstrap_keys(&first).await? {
                tracing::info!(kids = ?first.iter().map(|k| &k.kid).collect::<Vec<_>>(), "created the first signing keys");
            }
        }
        ring.reload().await?;
        Ok(ring)
    }

    /// Re-reads the key set from the store. Keys already decrypted are reused.
    pub async fn reload(&self) -> Result<(), KeyError> {
        let _in_order = self.reloading.lock().await;
        let stored = self.store.live_keys(self.clock.now()).await?;
        let current = self.snapshot();
        let known: HashMap<&str, &SigningKey> = current.iter().map(|k| (k.kid.as_str(), k)).collect();
        let mut keys = Vec::with_capacity(stored.len());
        for row in &stored {
            let key = match known.get(row.kid.as_str()) {
                Some(existing) => SigningKey {
                    retires_at: row.retires_at,
                    expires_at: row.expires_at,
                    ..(*existing).clone()
                },
                None => self.decrypt(row)?,
            };
            keys.push(key);
        }
        let mut guard = self.keys.write().unwrap_or_else(|poisoned| poisoned.into_inner());
        *guard = Arc::new(keys);
        Ok(())
    }

    /// The keys as last loaded, published or not.
    pub fn snapshot(&self) -> Arc<Vec<SigningKey>> {
        self.keys
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    /// The key that signs with `alg` now: the most recently activated of the active ones.
    pub fn signing_key(&self, alg: Algorithm) -> Option<SigningKey> {
        self.with_signing_key(alg, SigningKey::clone)
    }

    /// `f` of the key that signs with `alg` now (see [`KeyRing::signing_key`]), without
    /// copying it: the token endpoint's path.
    pub fn with_signing_key<R>(&self, alg: Algorithm, f: impl FnOnce(&SigningKey) -> R) -> Option<R> {
        let now = self.clock.now();
        self.snapshot()
            .iter()
            .filter(|k| k.alg == alg && k.is_active(now))
            .max_by_key(|k| (k.activates_at, k.created_at))
            .map(f)
    }

    /// The published key with this `kid` and algorithm, if any (for verification).
    pub fn verification_key(&self, kid: &str, alg: Algorithm) -> Option<SigningKey> {
        let now = self.clock.now();
        self.snapshot()
            .iter()
            .find(|k| k.kid == kid && k.alg == alg && k.is_published(now))
            .cloned()
    }

    /// The public key set: every key not yet expired, including those pre-published.
    pub fn jwks(&self) -> JwkSet {
        let now = self.clock.now();
        JwkSet {
            keys: self
                .snapshot()
                .iter()
                .filter(|k| k.is_published(now))
                .map(|k| k.public.clone())
                .collect(),
        }
    }

    /// Creates a new key for `alg`, published now and signing after the pre-publish window;
    /// the key it replaces retires then and leaves JWKS a retire window later.
    pub async fn rotate(&self, alg: Algorithm) -> Result<StoredKey, KeyError> {
        let now = self.clock.now();
        let new = self.generate(alg, now, now.saturating_add(self.policy.prepublish_secs))?;
        self.store
            .rotate_key(&new, self.policy.retire_window_secs)
            .await?;
        self.reload().await?;
        Ok(new)
    }

    fn generate(&self, alg: Algorithm, created_at: i64, activates_at: i64) -> Result<StoredKey, KeyError> {
        let (der, encoding) = generate_private_key(alg)?;
        let mut public = Jwk::from_encoding_key(&encoding, alg)
            .map_err(|e| KeyError::Crypto(format!("cannot derive public key: {e}")))?;
        // RFC 7638 thumbprint as the key id: stable, unique, and derived from the key itself.
        let kid = public
            .thumbprint(ThumbprintHash::SHA256)
            .map_err(|e| KeyError::Crypto(format!("cannot compute thumbprint: {e}")))?;
        public.common.key_id = Some(kid.clone());
        public.common.public_key_use = Some(PublicKeyUse::Signature);
        let public_jwk = serde_json::to_string(&public)
            .map_err(|e| KeyError::Crypto(format!("cannot encode JWK: {e}")))?;
        Ok(StoredKey {
            encrypted_private_key: self.master.seal(&kid, &der)?,
            kid,
            alg: alg_name(alg).to_owned(),
            public_jwk,
            created_at,
            activates_at,
            retires_at: None,
            expires_at: None,
        })
    }

    fn decrypt(&self, row: &StoredKey) -> Result<SigningKey, KeyError> {
        let corrupt = |reason: String| KeyError::Corrupt {
            kid: row.kid.clone(),
            reason,
        };
        let alg = parse_alg(&row.alg).ok_or_else(|| corrupt(format!("unknown algorithm {}", row.alg)))?;
        let der = self.master.open(&row.kid, &row.encrypted_private_key)?;
        let encoding = match alg {
            Algorithm::RS256 => EncodingKey::from_rsa_der(&der),
            Algorithm::EdDSA => EncodingKey::from_ed_der(&der),
            _ => EncodingKey::from_ec_der(&der),
        };
        let public: Jwk = serde_json::from_str(&row.public_jwk).map_err(|e| corrupt(e.to_string()))?;
        // The stored public key must be the private key's own: a row edited in the
        // database must not make us publish a key we do not hold.
        let derived = Jwk::from_encoding_key(&encoding, alg).map_err(|e| corrupt(e.to_string()))?;
        if derived.algorithm != public.algorithm {
            return Err(corrupt("public key does not match the private key".to_owned()));
        }
        let decoding = DecodingKey::from_jwk(&public).map_err(|e| corrupt(e.to_string()))?;
        let signer = PreparedSigner::parse(alg, &der).map_err(corrupt)?;
        Ok(SigningKey {
            kid: row.kid.clone(),
            alg,
            encoding,
            signer: Arc::new(signer),
            decoding,
            public,
            created_at: row.created_at,
            activates_at: row.activates_at,
            retires_at: row.retires_at,
            expires_at: row.expires_at,
        })
    }
}

/// A new private key for `alg`: its DER as stored (PKCS#8 for ES256 and EdDSA, PKCS#1 for
/// RSA) and the same key as jsonwebtoken takes it.
fn generate_private_key(alg: Algorithm) -> Result<(Vec<u8>, EncodingKey), KeyError> {
    let crypto = |what: &str| KeyError::Crypto(format!("cannot generate {what} key"));
    let generated = match alg {
        Algorithm::ES256 => {
            let doc = EcdsaKeyPair::generate_pkcs8(
                &ECDSA_P256_SHA256_FIXED_SIGNING,
                &aws_lc_rs::rand::SystemRandom::new(),
            )
            .map_err(|_| crypto("ES256"))?;
            let der = doc.as_ref().to_vec();
            let encoding = EncodingKey::from_ec_der(&der);
            (der, encoding)
        }
        Algorithm::RS256 => {
            let pair = aws_lc_rs::rsa::KeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048)
                .map_err(|_| crypto("RS256"))?;
            let pkcs8: aws_lc_rs::encoding::Pkcs8V1Der<'static> =
                pair.as_der().map_err(|_| crypto("RS256"))?;
            let der = rsa_pkcs1_from_pkcs8(pkcs8.as_ref())?;
            let encoding = EncodingKey::from_rsa_der(&der);
            (der, encoding)
        }
        Algorithm::EdDSA => {
            let pair = Ed25519KeyPair::generate().map_err(|_| crypto("EdDSA"))?;
            let der = pair.to_pkcs8v1().map_err(|_| crypto("EdDSA"))?.as_ref().to_vec();
            let encoding = EncodingKey::from_ed_der(&der);
            (der, encoding)
        }
        other => return Err(KeyError::UnsupportedAlgorithm(format!("{other:?}"))),
    };
    Ok(generated)
}

/// The JOSE name of an algorithm.
pub fn alg_name(alg: Algorithm) -> &'static str {
    match alg {
        Algorithm::ES256 => "ES256",
        Algorithm::RS256 => "RS256",
        Algorithm::EdDSA => "EdDSA",
        Algorithm::ES384 => "ES384",
        Algorithm::RS384 => "RS384",
        Algorithm::RS512 => "RS512",
        Algorithm::PS256 => "PS256",
        Algorithm::PS384 => "PS384",
        Algorithm::PS512 => "PS512",
        Algorithm::HS256 => "HS256",
        Algorithm::HS384 => "HS384",
        Algorithm::HS512 => "HS512",
        _ => "unsupported",
    }
}

/// One of [`ALGORITHMS`] by its JOSE name.
pub fn parse_alg(name: &str) -> Option<Algorithm> {
    ALGORITHMS.into_iter().find(|alg| alg_name(*alg) == name)
}

/// jsonwebtoken's RSA signer takes a PKCS#1 `RSAPrivateKey`; aws-lc-rs exports PKCS#8,
/// which wraps exactly that structure.
fn rsa_pkcs1_from_pkcs8(pkcs8: &[u8]) -> Result<Vec<u8>, KeyError> {
    let info = pkcs8::PrivateKeyInfoRef::try_from(pkcs8)
        .map_err(|e| KeyError::Crypto(format!("cannot parse PKCS#8: {e}")))?;
    Ok(info.private_key.as_bytes().to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_keys_open_only_with_the_same_master_key_and_kid() {
        let master = MasterKey::new(&[7; 32]).unwrap();
        let sealed = master.seal("kid-1", b"private").unwrap();
        assert_eq!(master.open("kid-1", &sealed).unwrap(), b"private");
        assert!(matches!(
            master.open("kid-2", &sealed),
            Err(KeyError::WrongMasterKey { .. })
        ));
        let other = MasterKey::new(&[8; 32]).unwrap();
        assert!(matches!(
            other.open("kid-1", &sealed),
            Err(KeyError::WrongMasterKey { .. })
        ));
        let mut tampered = sealed.clone();
        let last = tampered.len() - 1;
        tampered[last] ^= 1;
        assert!(master.open("kid-1", &tampered).is_err());
    }

    /// A key as [`KeyRing`] holds it after decrypting a row, for `alg`.
    fn fresh_key(alg: Algorithm) -> SigningKey {
        let (der, encoding) = generate_private_key(alg).unwrap();
        let mut public = Jwk::from_encoding_key(&encoding, alg).unwrap();
        public.common.key_id = Some("k1".into());
        SigningKey {
            kid: "k1".into(),
            alg,
            decoding: DecodingKey::from_jwk(&public).unwrap(),
            signer: Arc::new(PreparedSigner::parse(alg, &der).unwrap()),
            encoding,
            public,
            created_at: 0,
            activates_at: 0,
            retires_at: None,
            expires_at: None,
        }
    }

    #[test]
    fn the_prepared_signer_makes_what_jsonwebtoken_makes_and_verifies() {
        let claims = json!({ "iss": "https://idp.example", "sub": "u1", "exp": 4_000_000_000_i64 });
        for alg in ALGORITHMS {
            let key = fresh_key(alg);
            let mut header = Header::new(alg);
            header.typ = Some("at+jwt".into());
            header.kid = Some(key.kid.clone());
            let ours = key.sign_jws(&header, &claims).unwrap();
            let theirs = jsonwebtoken::encode(&header, &claims, &key.encoding).unwrap();
            // Header and claims are the same bytes; RS256 (PKCS#1 v1.5) and EdDSA signatures
            // are deterministic, so for them the whole token is.
            let (ours_signed, _) = ours.rsplit_once('.').unwrap();
            let (theirs_signed, _) = theirs.rsplit_once('.').unwrap();
            assert_eq!(ours_signed, theirs_signed, "{alg:?}");
            if alg != Algorithm::ES256 {
                assert_eq!(ours, theirs, "{alg:?}");
            }
            let mut validation = jsonwebtoken::Validation::new(alg);
            validation.validate_aud = false;
            let decoded = jsonwebtoken::decode::<serde_json::Value>(&ours, &key.decoding, &validation)
                .unwrap_or_else(|e| panic!("{alg:?}: {e}"));
            assert_eq!(decoded.claims, claims);
            // A flipped signature byte does not verify.
            let mut tampered = ours.into_bytes();
            let last = tampered.len() - 2;
            tampered[last] = if tampered[last] == b'A' { b'B' } else { b'A' };
            let tampered = String::from_utf8(tampered).unwrap();
            assert!(
                jsonwebtoken::decode::<serde_json::Value>(&tampered, &key.decoding, &validation).is_err()
            );
        }
    }

    #[test]
    fn a_key_signs_only_its_own_algorithm() {
        let key = fresh_key(Algorithm::ES256);
        let err = key
            .sign_jws(&Header::new(Algorithm::RS256), &json!({}))
            .unwrap_err();
        assert!(err.contains("signs ES256"), "{err}");
        assert!(PreparedSigner::parse(Algorithm::RS256, b"not a key").is_err());
        assert!(PreparedSigner::parse(Algorithm::HS256, b"secret").is_err());
    }

    #[test]
    fn status_follows_the_key_life() {
        let key = StoredKey {
            kid: "k".into(),
            alg: "ES256".into(),
            encrypted_private_key: vec![],
            public_jwk: "{}".into(),
            created_at: 0,
            activates_at: 10,
            retires_at: Some(20),
            expires_at: Some(30),
        };
        assert_eq!(key_status(&key, 5), "published");
        assert_eq!(key_status(&key, 10), "active");
        assert_eq!(key_status(&key, 20), "retired");
        assert_eq!(key_status(&key, 30), "expired");
    }
}
