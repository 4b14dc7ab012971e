//! A user's roles (R26): replaced whole, or one granted (with terms: an expiry, a
//! condition) or revoked, always checked against the static separation-of-duty rules and
//! audited. The new roles take effect at the user's next token (sign-in or refresh);
//! `revoke_sessions` ends the sessions for it to be at once.

use std::collections::BTreeMap;

use serde_json::{json, Value};
use tessera_store::durable::UserRecord;

use super::{validate_roles, AccountError, Accounts};
use crate::audit::{AuditEvent, RequestContext};
use crate::authz::{check_terms, AssignmentTerms, AuthzError};

/// `terms` checked and as stored: each names one of `roles`; empty terms are no terms.
fn stored_terms(
    roles: &[String],
    terms: &BTreeMap<String, AssignmentTerms>,
) -> Result<BTreeMap<String, Value>, AccountError> {
    let mut stored = BTreeMap::new();
    for (role, terms) in terms {
        if !roles.contains(role) {
            return Err(AuthzError::Invalid {
                field: "terms",
                reason: format!("{role:?} is not one of the roles"),
            }
            .into());
        }
        check_terms(role, terms)?;
        if *terms != AssignmentTerms::default() {
            let value = serde_json::to_value(terms).map_err(|e| AuthzError::Invalid {
                field: "terms",
                reason: e.to_string(),
            })?;
            stored.insert(role.clone(), value);
        }
    }
    Ok(stored)
}

impl Accounts {
    /// Replaces the roles of user `user_id` with `roles`, some with `terms`, for `actor`.
    pub async fn set_roles(
        &self,
        user_id: &str,
        roles: &[String],
        terms: &BTreeMap<String, AssignmentTerms>,
        actor: &str,
        context: &RequestContext,
    ) -> Result<UserRecord, AccountError> {
        let user = self.users.user(user_id).await?.ok_or(AccountError::NoSuchUser)?;
        let stored = stored_terms(roles, terms)?;
        self.store_roles(user, roles.to_vec(), stored, actor, context)
            .await
    }

    /// Adds `role` to the roles of `user_id` on `terms` (a role held already takes the new
    /// terms; the other roles keep theirs).
    pub async fn grant_role(
        &self,
        user_id: &str,
        role: &str,
        terms: AssignmentTerms,
        actor: &str,
        context: &RequestContext,
    ) -> Result<UserRecord, AccountError> {
        let user = self.users.user(user_id).await?.ok_or(AccountError::NoSuchUser)?;
        let mut roles = user.roles.clone();
        roles.push(role.to_owned());
        let mut stored = user.role_terms.clone();
        stored.remove(role);
        stored.extend(stored_terms(&roles, &BTreeMap::from([(role.to_owned(), terms)]))?);
        self.store_roles(user, roles, stored, actor, context).await
    }

    /// Removes `role` (and its terms) from the roles of `user_id`.
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
        let roles: Vec<String> = user.roles.iter().filter(|r| *r != role).cloned().collect();
        let mut stored = user.role_terms.clone();
        stored.remove(role);
        self.store_roles(user, roles, stored, actor, context).await
    }

    async fn store_roles(
        &self,
        user: UserRecord,
        mut roles: Vec<String>,
        terms: BTreeMap<String, Value>,
        actor: &str,
        context: &RequestContext,
    ) -> Result<UserRecord, AccountError> {
        roles.sort();
        roles.dedup();
        validate_roles(&roles)?;
        self.authz.check_assignment(&roles).await?;
        if !self
            .users
            .set_roles(&user.id, &roles, &terms, self.clock.now())
            .await?
        {
            return Err(AccountError::NoSuchUser);
        }
        self.audit
            .record(
                context,
                AuditEvent::new("user.roles_changed", "success")
                    .actor(actor)
                    .subject(&user.id)
                    .detail(json!({ "from": user.roles, "to": roles, "terms": terms })),
            )
            .await;
        Ok(UserRecord {
            roles,
            role_terms: terms,
            ..user
        })
    }
}
