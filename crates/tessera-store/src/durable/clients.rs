//! The client registry: the applications that may ask for tokens.

use async_trait::async_trait;
use sqlx::any::AnyRow;
use sqlx::Row;

use super::revocations::RevokedKind;
use super::sessions::{revoke_alive_sessions, SessionsOf};
use super::SqlStore;
use crate::StoreError;

/// A registered OAuth client. List fields are stored as JSON arrays.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientRecord {
    pub client_id: String,
    pub name: String,
    /// SHA-256 of the client secret (base64url); `None` for a public client.
    pub secret_hash: Option<String>,
    /// `client_secret_basic`, `client_secret_post`, `client_secret_jwt`, `private_key_jwt`
    /// or `none`.
    pub token_endpoint_auth_method: String,
    /// The one algorithm its JWT assertions may use; `None`: any its method allows.
    pub token_endpoint_auth_signing_alg: Option<String>,
    /// Its public keys (a JWKS document, JSON), for `private_key_jwt`.
    pub jwks: Option<String>,
    /// Where its public keys are published, for `private_key_jwt`.
    pub jwks_uri: Option<String>,
    /// For `client_secret_jwt` only: the secret sealed with the master key (base64url), as
    /// an HMAC needs the secret itself. `secret_hash` is kept beside it.
    pub secret_sealed: Option<String>,
    /// The algorithm of its request objects (`none` for unsigned ones); `None`: it sends
    /// none.
    pub request_object_signing_alg: Option<String>,
    /// The channel its sessions belong to (`web`, `mobile`, `partner`, …).
    pub channel: String,
    pub grant_types: Vec<String>,
    /// Scopes the client may request.
    pub scopes: Vec<String>,
    pub redirect_uris: Vec<String>,
    pub post_logout_redirect_uris: Vec<String>,
    pub allowed_cors_origins: Vec<String>,
    pub backchannel_logout_uri: Option<String>,
    /// First-party clients skip the consent page.
    pub first_party: bool,
    /// Per-client access-token lifetime; `None` uses the configured default.
    pub access_token_ttl_secs: Option<i64>,
    /// Per-client refresh-token family lifetime; `None` uses the configured default.
    pub refresh_token_ttl_secs: Option<i64>,
    /// Per-client second-factor policy (`off`, `optional`, `adaptive`, `required`); `None` follows
    /// the deployment's.
    pub mfa_policy: Option<String>,
    /// The client's authorization requests must be pushed (RFC 9126 §5): `/oauth2/authorize`
    /// takes only a `request_uri` from `/oauth2/par`.
    pub require_pushed_authorization_requests: bool,
    pub created_at: i64,
    pub updated_at: i64,
}

impl ClientRecord {
    /// A public client (a browser or native app, method `none`) keeps no credential. Every
    /// other client is confidential, whether it holds a secret or a key pair.
    pub fn is_public(&self) -> bool {
        self.token_endpoint_auth_method == "none"
    }
}

#[async_trait]
pub trait ClientStore: Send + Sync + 'static {
    /// Stores a new client; `StoreError::Conflict` if the id is taken.
    async fn create_client(&self, client: &ClientRecord) -> Result<(), StoreError>;
    async fn client(&self, client_id: &str) -> Result<Option<ClientRecord>, StoreError>;
    /// Every client, ordered by id.
    async fn clients(&self) -> Result<Vec<ClientRecord>, StoreError>;
    /// Replaces a client's stored fields (by `client_id`); `false` if there is none.
    /// `created_at` is kept as first stored.
    async fn update_client(&self, client: &ClientRecord) -> Result<bool, StoreError>;
    /// Deletes a client and, in the same transaction, ends its alive sessions (reason
    /// `client_deleted`; their refresh tokens stop working and their `sid`s go on the
    /// revocation feed, so verifiers reject its access tokens too). `false` if there was
    /// no such client (nothing changed).
    /// Its API keys go too; the live ones are put on the revocation feed first.
    async fn delete_client(&self, client_id: &str, now: i64) -> Result<bool, StoreError>;
}

const CLIENT_COLUMNS: &str =
    "client_id, name, secret_hash, token_endpoint_auth_method, channel, grant_types, \
     scopes, redirect_uris, post_logout_redirect_uris, allowed_cors_origins, backchannel_logout_uri, \
     first_party, access_token_ttl_secs, refresh_token_ttl_secs, mfa_policy, require_pushed_authorization_requests, \
     token_endpoint_auth_signing_alg, jwks, jwks_uri, secret_sealed, request_object_signing_alg, \
     created_at, updated_at";

fn to_json(list: &[String]) -> Result<String, StoreError> {
    serde_json::to_string(list).map_err(|e| StoreError::Corrupt(format!("client list field: {e}")))
}

fn list_column(row: &AnyRow, column: &str) -> Result<Vec<String>, StoreError> {
    let text: String = row.try_get(column)?;
    serde_json::from_str(&text).map_err(|e| StoreError::Corrupt(format!("clients.{column}: {e}")))
}

fn client_from_row(row: &AnyRow) -> Result<ClientRecord, StoreError> {
    Ok(ClientRecord {
        client_id: row.try_get("client_id")?,
        name: row.try_get("name")?,
        secret_hash: row.try_get("secret_hash")?,
        token_endpoint_auth_method: row.try_get("token_endpoint_auth_method")?,
        token_endpoint_auth_signing_alg: row.try_get("token_endpoint_auth_signing_alg")?,
        jwks: row.try_get("jwks")?,
        jwks_uri: row.try_get("jwks_uri")?,
        secret_sealed: row.try_get("secret_sealed")?,
        request_object_signing_alg: row.try_get("request_object_signing_alg")?,
        channel: row.try_get("channel")?,
        grant_types: list_column(row, "grant_types")?,
        scopes: list_column(row, "scopes")?,
        redirect_uris: list_column(row, "redirect_uris")?,
        post_logout_redirect_uris: list_column(row, "post_logout_redirect_uris")?,
        allowed_cors_origins: list_column(row, "allowed_cors_origins")?,
        backchannel_logout_uri: row.try_get("backchannel_logout_uri")?,
        first_party: row.try_get::<i64, _>("first_party")? != 0,
        access_token_ttl_secs: row.try_get("access_token_ttl_secs")?,
        refresh_token_ttl_secs: row.try_get("refresh_token_ttl_secs")?,
        mfa_policy: row.try_get("mfa_policy")?,
        require_pushed_authorization_requests: row
            .try_get::<i64, _>("require_pushed_authorization_requests")?
            != 0,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

#[async_trait]
impl ClientStore for SqlStore {
    async fn create_client(&self, client: &ClientRecord) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO clients (client_id, name, secret_hash, token_endpoint_auth_method, channel, \
             grant_types, scopes, redirect_uris, post_logout_redirect_uris, allowed_cors_origins, \
             backchannel_logout_uri, first_party, access_token_ttl_secs, refresh_token_ttl_secs, \
             created_at, updated_at, mfa_policy, require_pushed_authorization_requests, \
             token_endpoint_auth_signing_alg, jwks, jwks_uri, secret_sealed, request_object_signing_alg) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, \
             $19, $20, $21, $22, $23)",
        )
        .bind(&client.client_id)
        .bind(&client.name)
        .bind(&client.secret_hash)
        .bind(&client.token_endpoint_auth_method)
        .bind(&client.channel)
        .bind(to_json(&client.grant_types)?)
        .bind(to_json(&client.scopes)?)
        .bind(to_json(&client.redirect_uris)?)
        .bind(to_json(&client.post_logout_redirect_uris)?)
        .bind(to_json(&client.allowed_cors_origins)?)
        .bind(&client.backchannel_logout_uri)
        .bind(i64::from(client.first_party))
        .bind(client.access_token_ttl_secs)
        .bind(client.refresh_token_ttl_secs)
        .bind(client.created_at)
        .bind(client.updated_at)
        .bind(&client.mfa_policy)
        .bind(i64::from(client.require_pushed_authorization_requests))
        .bind(&client.token_endpoint_auth_signing_alg)
        .bind(&client.jwks)
        .bind(&client.jwks_uri)
        .bind(&client.secret_sealed)
        .bind(&client.request_object_signing_alg)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn client(&self, client_id: &str) -> Result<Option<ClientRecord>, StoreError> {
        let sql = format!("SELECT {CLIENT_COLUMNS} FROM clients WHERE client_id = $1");
        let row = sqlx::query(&sql)
            .bind(client_id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(client_from_row).transpose()
    }

    async fn clients(&self) -> Result<Vec<ClientRecord>, StoreError> {
        let sql = format!("SELECT {CLIENT_COLUMNS} FROM clients ORDER BY client_id");
        let rows = sqlx::query(&sql).fetch_all(&self.pool).await?;
        rows.iter().map(client_from_row).collect()
    }

    async fn update_client(&self, client: &ClientRecord) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE clients SET name = $2, secret_hash = $3, token_endpoint_auth_method = $4, channel = $5, \
             grant_types = $6, scopes = $7, redirect_uris = $8, post_logout_redirect_uris = $9, \
             allowed_cors_origins = $10, backchannel_logout_uri = $11, first_party = $12, \
             access_token_ttl_secs = $13, refresh_token_ttl_secs = $14, updated_at = $15, \
             mfa_policy = $16, require_pushed_authorization_requests = $17, \
             token_endpoint_auth_signing_alg = $18, jwks = $19, jwks_uri = $20, secret_sealed = $21, \
             request_object_signing_alg = $22 WHERE client_id = $1",
        )
        .bind(&client.client_id)
        .bind(&client.name)
        .bind(&client.secret_hash)
        .bind(&client.token_endpoint_auth_method)
        .bind(&client.channel)
        .bind(to_json(&client.grant_types)?)
        .bind(to_json(&client.scopes)?)
        .bind(to_json(&client.redirect_uris)?)
        .bind(to_json(&client.post_logout_redirect_uris)?)
        .bind(to_json(&client.allowed_cors_origins)?)
        .bind(&client.backchannel_logout_uri)
        .bind(i64::from(client.first_party))
        .bind(client.access_token_ttl_secs)
        .bind(client.refresh_token_ttl_secs)
        .bind(client.updated_at)
        .bind(&client.mfa_policy)
        .bind(i64::from(client.require_pushed_authorization_requests))
        .bind(&client.token_endpoint_auth_signing_alg)
        .bind(&client.jwks)
        .bind(&client.jwks_uri)
        .bind(&client.secret_sealed)
        .bind(&client.request_object_signing_alg)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() > 0)
    }

    async fn delete_client(&self, client_id: &str, now: i64) -> Result<bool, StoreError> {
        let mut tx = self.pool.begin().await?;
        // Its API keys go with the row (ON DELETE CASCADE): first their feed entries, so
        // that verifiers which cached them refuse them within their poll interval.
        sqlx::query(
            "INSERT INTO revocations (kind, value, expires_at, revoked_at) \
             SELECT $3, k.id, k.expires_at, $2 FROM api_keys k \
             WHERE k.client_id = $1 AND k.revoked_at IS NULL AND k.expires_at > $2",
        )
        .bind(client_id)
        .bind(now)
        .bind(RevokedKind::ApiKey.as_str())
        .execute(&mut *tx)
        .await?;
        let done = sqlx::query("DELETE FROM clients WHERE client_id = $1")
            .bind(client_id)
            .execute(&mut *tx)
            .await?;
        if done.rows_affected() == 0 {
            // Dropping the transaction rolls the (empty) insert back.
            return Ok(false);
        }
        revoke_alive_sessions(&mut tx, SessionsOf::Client(client_id), "client_deleted", now).await?;
        tx.commit().await?;
        Ok(true)
    }
}
