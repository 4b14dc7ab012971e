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

/// Attempts of a change whose read of the user's roles went stale.
const ATTEMPTS: usize = 5;

/// A user's roles and terms as they are to be.
type Assignment = (Vec<String>, BTreeMap<String, Value>);

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
        let stored = stored_terms(roles, terms)?;
        self.change_roles(user_id, actor, context, |_| Ok((roles.to_vec(), stored.clone())))
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
        let new_terms = stored_terms(&[role.to_owned()], &BTreeMap::from([(role.to_owned(), terms)]))?;
        self.change_roles(user_id, actor, context, |user| {
            let mut roles = user.roles.clone();
            roles.push(role.to_owned());
            let mut stored = user.role_terms.clone();
            stored.remove(role);
            stored.extend(new_terms.clone());
            Ok((roles, stored))
        })
        .await
    }

    /// Removes `role` (and its terms) from the roles of `user_id`.
    pub async fn revoke_role(
        &self,
        user_id: &str,
        role: &str,
        actor: &str,
        context: &RequestContext,
    ) -> Result<UserRecord, AccountError> {
        self.change_roles(user_id, actor, context, |user| {
            if !user.roles.iter().any(|r| r == role) {
                return Err(AccountError::Already("without that role"));
            }
            let roles = user.roles.iter().filter(|r| *r != role).cloned().collect();
            let mut stored = user.role_terms.clone();
            stored.remove(role);
            Ok((roles, stored))
        })
        .await
    }

    /// Reads the user, asks `change` for their new roles and terms, checks them, and stores
    /// them only if the user's roles are still those read (else reads again, a few times).
    async fn change_roles(
        &self,
        user_id: &str,
        actor: &str,
        context: &RequestContext,
        change: impl Fn(&UserRecord) -> Result<Assignment, AccountError>,
    ) -> Result<UserRecord, AccountError> {
        for _ in 0..ATTEMPTS {
            let user = self.users.user(user_id).await?.ok_or(AccountError::NoSuchUser)?;
            let (mut roles, terms) = change(&user)?;
            roles.sort();
            roles.dedup();
            validate_roles(&roles)?;
            self.authz.check_assignment(&roles).await?;
            let from = (user.roles.as_slice(), &user.role_terms);
            if !self
                .users
                .set_roles(&user.id, from, &roles, &terms, self.clock.now())
                .await?
            {
                continue;
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
            return Ok(UserRecord {
                roles,
                role_terms: terms,
                ..user
            });
        }
        Err(AuthzError::Busy.into())
    }
}
