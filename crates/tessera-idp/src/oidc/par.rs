//! Pushed authorization requests (RFC 9126): an authenticated client posts its
//! authorization request to `/oauth2/par`, where it is validated as `/oauth2/authorize`
//! would validate it, and gets a `request_uri` to send the browser with instead of the
//! parameters. The request lives in the shared ephemeral store for [`PAR_TTL_SECS`], under a
//! hash of the `request_uri`'s random part, and is taken once: the first authorization
//! request that presents it (with the client's own `client_id`) removes it.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::json;
use tessera_store::durable::ClientRecord;
use tessera_store::StoreError;

use super::Provider;
use crate::audit::{AuditEvent, RequestContext};
use crate::tokens::opaque::{random_b64, sha256_b64};

/// What every `request_uri` of ours starts with (RFC 9126 §2.2).
pub const REQUEST_URI_PREFIX: &str = "urn:ietf:params:oauth:request_uri:";
/// Seconds a pushed request can be used (`expires_in`).
pub const PAR_TTL_SECS: u64 = 60;

#[derive(Debug, Serialize, Deserialize)]
struct PushedRecord {
    client_id: String,
    expires_at: i64,
    params: BTreeMap<String, String>,
}

/// What presenting a `request_uri` found.
#[derive(Debug)]
pub enum Pushed {
    /// The request's parameters; it is gone from the store now.
    Taken(BTreeMap<String, String>),
    /// Unknown, expired, or used already.
    Unknown,
    /// Pushed by another client than the `client_id` presented (left in place).
    OtherClient,
}

fn pushed_key(request_uri: &str) -> String {
    format!("par:{}", sha256_b64(request_uri))
}

impl Provider {
    /// Stores an authorization request `client` pushed, validated already; returns its
    /// `request_uri`.
    pub async fn push_request(
        &self,
        client: &ClientRecord,
        params: BTreeMap<String, String>,
        context: &RequestContext,
    ) -> Result<String, StoreError> {
        let request_uri = format!("{REQUEST_URI_PREFIX}{}", random_b64(32));
        let record = PushedRecord {
            client_id: client.client_id.clone(),
            expires_at: self
                .clock
                .now()
                .saturating_add(i64::try_from(PAR_TTL_SECS).unwrap_or(60)),
            params,
        };
        let bytes = serde_json::to_vec(&record).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        self.ephemeral
            .set(
                &pushed_key(&request_uri),
                &bytes,
                Duration::from_secs(PAR_TTL_SECS),
            )
            .await?;
        self.audit
            .record(
                context,
                AuditEvent::new("par.pushed", "success")
                    .client(&client.client_id)
                    .detail(json!({ "scope": record.params.get("scope") })),
            )
            .await;
        Ok(request_uri)
    }

    /// Takes the request pushed under `request_uri` for `client_id`, once.
    pub async fn take_pushed(&self, client_id: &str, request_uri: &str) -> Result<Pushed, StoreError> {
        if !request_uri.starts_with(REQUEST_URI_PREFIX) || request_uri.len() > 128 {
            return Ok(Pushed::Unknown);
        }
        let key = pushed_key(request_uri);
        let Some(bytes) = self.ephemeral.get(&key).await? else {
            return Ok(Pushed::Unknown);
        };
        let record: PushedRecord =
            serde_json::from_slice(&bytes).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        if record.client_id != client_id {
            return Ok(Pushed::OtherClient);
        }
        // Of two presentations at once, only the one whose delete removed it goes on.
        if !self.ephemeral.delete(&key).await? || record.expires_at <= self.clock.now() {
            return Ok(Pushed::Unknown);
        }
        Ok(Pushed::Taken(record.params))
    }
}
