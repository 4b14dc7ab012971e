//! A user's roles (R26): replaced whole, or one granted or revoked, always checked against
//! the separation-of-duty rules and audited. The new roles take effect at the user's next
//! token (sign-in or refresh); `revoke_sessions` ends the sessions for it to be at once.

use serde_json::json;
use tessera_store::durable::UserRecord;

use super::{validate_roles, AccountError, Accounts};
use crate::audit::{AuditEvent, RequestContext};

impl Accounts {
    /// Replaces the roles of user `user_id` with `roles` for `actor`.
    pub async fn set_roles(
        &self,
        user_id: &str,
        roles: &[String],
        actor: &str,
        context: &RequestContext,
    ) -> Result<UserRecord, AccountError> {
        let mut roles = roles.to_vec();
        roles.sort();
        roles.dedup();
        validate_roles(&roles)?;
        self.authz.check_assignment(&roles).await?;
        let user = self.users.user(user_id).await?.ok_or(AccountError::NoSuchUser)?;
        if !self.users.set_roles(user_id, &roles, self.clock.now()).await? {
            return Err(AccountError::NoSuchUser);
        }
        self.audit
            .record(
                context,
                AuditEvent::new("user.roles_changed", "success")
                    .actor(actor)
                    .subject(user_id)
                    .detail(json!({ "from": user.roles, "to": roles })),
            )
            .await;
        Ok(UserRecord { roles, ..user })
    }

    /// Adds `role` to the roles of `user_id` (nothing changes if it is there).
    pub async fn grant_role(
        &self,
        user_id: &str,
        role: &str,
        actor: &str,
        context: &RequestContext,
    ) -> Result<UserRecord, AccountError> {
        let user = self.users.user(user_id).await?.ok_or(AccountError::NoSuchUser)?;
        let mut roles = user.roles.clone();
        roles.push(role.to_owned());
        self.set_roles(user_id, &roles, actor, context).await
    }

    /// Removes `role` from the roles of `user_id`.
    pub async fn revoke_role(
        &self,
        user_id: &str,
        role: &str,
        actor: &str,
        context: &RequestContext,
    ) -> Result<UserRecord, AccountError> {
        let user = self.users.user(user_id).await?.ok_or(AccountError::NoSuchUser)?;
        if !user.roles.iter().any(|r| r == role) {
            return Err(AccountError::Already("without that role"));
        }
        let roles: Vec<String> = user.roles.into_iter().filter(|r| r != role).collect();
        self.set_roles(user_id, &roles, actor, context).await
    }
}
