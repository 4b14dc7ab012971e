//! What a signed-in user does to their own account beyond the password: change the e-mail
//! address (confirmed from the new address, announced to the old one) and delete the
//! account. Both need the current password again.

use tessera_store::durable::OneTimeTokenRecord;
use tessera_store::StoreError;

use super::{email, AccountError, Accounts};
use crate::audit::{AuditEvent, RequestContext};
use crate::mail::{self, Locale, Outgoing};
use crate::tokens::opaque::{random_b64, sha256_b64};

/// The purpose of an e-mail change's confirmation token.
const CHANGE_EMAIL: &str = "change_email";

impl Accounts {
    /// Asks to change the user's address to `raw_new`: after the current password, a
    /// single-use confirmation link (valid `accounts.verification_ttl_secs`) goes to the
    /// new address and a notice to the old one. Nothing changes until the link is used
    /// ([`Accounts::confirm_email_change`]); a newer request voids an older link.
    /// Returns the new address, normalised.
    pub async fn request_email_change(
        &self,
        user_id: &str,
        current_password: &str,
        raw_new: &str,
        locale: Locale,
        context: &RequestContext,
    ) -> Result<String, AccountError> {
        let user = self.users.user(user_id).await?.ok_or(AccountError::NoSuchUser)?;
        let new = email::normalize(raw_new).ok_or(AccountError::InvalidEmail)?;
        self.check_current_password(&user, current_password, context)
            .await?;
        if new == user.email {
            return Err(AccountError::Already("using this address"));
        }
        if self.users.user_by_email(&new).await?.is_some() {
            return Err(AccountError::EmailTaken);
        }
        let now = self.clock.now();
        self.users
            .invalidate_one_time_tokens(&user.id, CHANGE_EMAIL, now)
            .await?;
        let ttl = self.config.accounts.verification_ttl_secs;
        let token = random_b64(32);
        self.users
            .create_one_time_token(&OneTimeTokenRecord {
                token_hash: sha256_b64(&token),
                purpose: CHANGE_EMAIL.to_owned(),
                user_id: user.id.clone(),
                email: new.clone(),
                created_at: now,
                expires_at: now.saturating_add(i64::try_from(ttl).unwrap_or(i64::MAX)),
                used_at: None,
                session_id: None,
            })
            .await?;
        let link = format!("{}/account/email/confirm?token={token}", self.issuer);
        let (subject, text, html) = mail::email_change_email(locale, &link, (ttl / 3600).max(1));
        self.send_later(Outgoing {
            to: new.clone(),
            subject,
            text,
            html: Some(html),
        });
        let (subject, text, html) = mail::email_change_notice_email(locale, &new);
        self.send_later(Outgoing {
            to: user.email.clone(),
            subject,
            text,
            html: Some(html),
        });
        self.audit
            .record(
                context,
                AuditEvent::new("email.change_requested", "success")
                    .actor(format!("user:{}", user.id))
                    .subject(&user.id),
            )
            .await;
        Ok(new)
    }

    /// Uses an e-mail change's confirmation link (once): the account's address becomes the
    /// new one, verified, if the address is still free and the account still has the
    /// address it had (and is enabled). Returns the new address.
    pub async fn confirm_email_change(
        &self,
        token: &str,
        context: &RequestContext,
    ) -> Result<String, AccountError> {
        let now = self.clock.now();
        let used = self
            .users
            .consume_one_time_token(&sha256_b64(token), CHANGE_EMAIL, now)
            .await?
            .ok_or(AccountError::InvalidLink)?;
        let user = self
            .users
            .user(&used.user_id)
            .await?
            .filter(|u| u.disabled_at.is_none())
            .ok_or(AccountError::InvalidLink)?;
        let changed = match self
            .users
            .change_email(&user.id, &user.email, &used.email, now)
            .await
        {
            Ok(changed) => changed,
            // Taken since the request.
            Err(StoreError::Conflict(_)) => {
                self.audit
                    .record(
                        context,
                        AuditEvent::new("email.changed", "failure")
                            .actor(format!("user:{}", user.id))
                            .subject(&user.id)
                            .detail(serde_json::json!({ "reason": "address_taken" })),
                    )
                    .await;
                return Err(AccountError::EmailTaken);
            }
            Err(other) => return Err(other.into()),
        };
        if !changed {
            return Err(AccountError::InvalidLink);
        }
        // Links sent to the old address for it are void now.
        self.users
            .invalidate_one_time_tokens(&user.id, super::VERIFY_EMAIL, now)
            .await?;
        self.audit
            .record(
                context,
                AuditEvent::new("email.changed", "success")
                    .actor(format!("user:{}", user.id))
                    .subject(&user.id),
            )
            .await;
        Ok(used.email)
    }

    /// Deletes the user's own account after the current password: every session ends, the
    /// API keys are revoked, the account is gone (audited with the user as actor).
    pub async fn delete_own_account(
        &self,
        user_id: &str,
        current_password: &str,
        context: &RequestContext,
    ) -> Result<(), AccountError> {
        let user = self.users.user(user_id).await?.ok_or(AccountError::NoSuchUser)?;
        self.check_current_password(&user, current_password, context)
            .await?;
        self.delete_user(&user.id, &format!("user:{}", user.id), context)
            .await
    }
}
