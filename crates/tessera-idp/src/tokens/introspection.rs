//! What a client may learn about a token (RFC 7662 introspection) and how it gives one up
//! (RFC 7009 revocation).

use serde::Serialize;
use serde_json::json;
use tessera_store::durable::{ClientRecord, RevokedKind};
use tessera_store::StoreError;

use super::access::{self, Audience, Confirmation, Expectations};
use super::opaque::{self, RefreshToken};
use super::{Presented, TokenError, TokenService};
use crate::audit::{AuditEvent, RequestContext};

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Introspection {
    pub active: bool,
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    pub details: Option<IntrospectionDetails>,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct IntrospectionDetails {
    pub token_type: &'static str,
    pub scope: String,
    pub client_id: String,
    pub sub: String,
    pub exp: i64,
    pub iat: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nbf: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub aud: Option<Audience>,
    pub iss: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jti: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sid: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub roles: Vec<String>,
    /// When the user signed in, how strongly, and with what (as in the access token), so
    /// that a resource server introspecting can require a class as one verifying can.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub auth_time: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub acr: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub amr: Vec<String>,
    /// The DPoP key a bound access token is bound to (RFC 9449 §6.2).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cnf: Option<Confirmation>,
}

impl Introspection {
    pub fn inactive() -> Self {
        Introspection {
            active: false,
            details: None,
        }
    }
}

impl TokenService {
    /// RFC 7662: what `client` may learn about `token`. Access tokens are reported to any
    /// authenticated client (resource servers); refresh tokens only to the client they
    /// belong to.
    pub async fn introspect(
        &self,
        token: &str,
        hint: Option<&str>,
        client: &ClientRecord,
    ) -> Result<Introspection, StoreError> {
        let try_refresh_first = hint == Some("refresh_token") || token.starts_with(opaque::REFRESH_PREFIX);
        if try_refresh_first {
            if let Some(found) = self.introspect_refresh(token, client).await? {
                return Ok(found);
            }
        }
        // Only tokens minted for this deployment's audience: one with another `aud` was not
        // issued by this configuration (a key shared elsewhere, an edited claim set).
        match self
            .verify_presented(token, Some(&self.audience), Presented::Introspected)
            .await
        {
            Ok((claims, _)) => Ok(Introspection {
                active: true,
                details: Some(IntrospectionDetails {
                    // RFC 9449 §6.2: a bound token is of type DPoP.
                    token_type: if claims.cnf.is_some() {
                        tessera_proto::dpop::TOKEN_TYPE
                    } else {
                        "Bearer"
                    },
                    scope: claims.scope,
                    client_id: claims.client_id,
                    sub: claims.sub,
                    exp: claims.exp,
                    iat: claims.iat,
                    nbf: Some(claims.nbf),
                    aud: Some(claims.aud),
                    iss: claims.iss,
                    jti: Some(claims.jti),
                    sid: claims.sid,
                    roles: claims.roles,
                    auth_time: claims.auth_time,
                    acr: claims.acr,
                    amr: claims.amr,
                    cnf: claims.cnf,
                }),
            }),
            Err(TokenError::Store(err)) => Err(err),
            Err(_) => Ok(Introspection::inactive()),
        }
    }

    async fn introspect_refresh(
        &self,
        token: &str,
        client: &ClientRecord,
    ) -> Result<Option<Introspection>, StoreError> {
        let Some(token) = RefreshToken::parse(token) else {
            return Ok(None);
        };
        let now = self.clock.now();
        let Some(stored) = self.sessions.refresh_token(&token.hash()).await? else {
            return Ok(None);
        };
        if stored.client_id != client.client_id || stored.rotated_at.is_some() || stored.expires_at <= now {
            return Ok(Some(Introspection::inactive()));
        }
        let Some(session) = self
            .sessions
            .session(&stored.session_id)
            .await?
            .filter(|s| s.is_alive(now))
        else {
            return Ok(Some(Introspection::inactive()));
        };
        let amr: Vec<String> = session.amr.split_ascii_whitespace().map(str::to_owned).collect();
        Ok(Some(Introspection {
            active: true,
            details: Some(IntrospectionDetails {
                token_type: "refresh_token",
                scope: session.scope,
                client_id: stored.client_id,
                sub: session.subject,
                exp: stored.expires_at,
                iat: stored.issued_at,
                nbf: None,
                aud: None,
                iss: self.issuer.to_string(),
                jti: None,
                roles: session
                    .roles
                    .split_ascii_whitespace()
                    .map(str::to_owned)
                    .collect(),
                sid: Some(session.id),
                auth_time: Some(session.auth_time),
                acr: (!amr.is_empty()).then(|| tessera_proto::acr::of(&amr).to_owned()),
                amr,
                // A public client's refresh tokens bound to its DPoP key (RFC 9449 §5).
                cnf: Confirmation::of(session.dpop_jkt.as_deref()),
            }),
        }))
    }

    /// RFC 7009: revokes `token` if it is one of `client`'s. A refresh token ends its
    /// session; an access token is put on the feed by `jti` until it expires. Tokens that
    /// are unknown or already invalid are not an error (RFC 7009 §2.2).
    pub async fn revoke(
        &self,
        token: &str,
        hint: Option<&str>,
        client: &ClientRecord,
        context: &RequestContext,
    ) -> Result<(), TokenError> {
        let refresh_first = hint != Some("access_token") || token.starts_with(opaque::REFRESH_PREFIX);
        if refresh_first {
            if let Some(refresh) = RefreshToken::parse(token) {
                if let Some(stored) = self.sessions.refresh_token(&refresh.hash()).await? {
                    if stored.client_id != client.client_id {
                        return Err(TokenError::InvalidGrant("token belongs to another client"));
                    }
                    self.end_session(
                        &stored.session_id,
                        "revoked_by_client",
                        &format!("client:{}", client.client_id),
                        context,
                    )
                    .await?;
                    return Ok(());
                }
            }
        }
        let now = self.clock.now();
        let expect = Expectations {
            issuer: &self.issuer,
            audience: None,
            now,
            leeway: 0,
            check_lifetime: true,
        };
        match access::verify(&self.keys, token, &expect) {
            Ok(claims) if claims.client_id != client.client_id => {
                Err(TokenError::InvalidGrant("token belongs to another client"))
            }
            Ok(claims) => {
                self.revocations
                    .add_revocation(RevokedKind::Token, &claims.jti, claims.exp, now)
                    .await?;
                self.announce(RevokedKind::Token, &claims.jti, claims.exp).await;
                self.audit
                    .record(
                        context,
                        AuditEvent::new("token.revoked", "success")
                            .actor(format!("client:{}", client.client_id))
                            .subject(&claims.sub)
                            .session(claims.sid.as_deref().unwrap_or("-"))
                            .client(&claims.client_id)
                            .detail(json!({ "token_type": "access_token" })),
                    )
                    .await;
                Ok(())
            }
            Err(_) => Ok(()),
        }
    }
}
