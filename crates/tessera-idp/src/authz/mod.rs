//! Authorization (R26): roles that hold permissions (the vocabulary of OAuth scopes,
//! `orders:refund`) and inherit their parents', static separation of duty, and what a user's
//! roles grant — decided here, once, and carried in access tokens as `roles` (with inherited
//! ones) and `permissions`.
//!
//! A user's roles are the names in `users.roles` (assigned at creation, by the admin API or
//! the CLI). A name with no role defined grants nothing but still counts as a role. Every
//! change of the graph is checked against a snapshot and stored only if the graph did not
//! move on meanwhile (see the store), retried a few times, audited.

mod graph;

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::Serialize;
use serde_json::json;
use tessera_store::durable::{RbacSnapshot, RbacStore, RoleRecord, SodRecord, UserRecord};
use tessera_store::StoreError;

pub use self::graph::{
    in_force, AssignmentTerms, Condition, Effective, Graph, Situation, TimeWindow, MAX_TOKEN_PERMISSIONS,
};
use crate::audit::{AuditEvent, Auditor, RequestContext};
use crate::clock::Clock;
use crate::tokens::opaque::random_id;

/// Longest permission name and role description.
const MAX_PERMISSION: usize = 128;
const MAX_DESCRIPTION: usize = 256;
/// Most roles, parents or permissions one request may name.
const MAX_LIST: usize = 256;
/// Attempts of a change whose snapshot went stale.
const ATTEMPTS: usize = 5;

#[derive(Debug, thiserror::Error)]
pub enum AuthzError {
    #[error("invalid {field}: {reason}")]
    Invalid { field: &'static str, reason: String },
    #[error("no such role or rule")]
    NotFound,
    #[error("role {0} exists")]
    Exists(String),
    #[error("role {0} is unknown")]
    UnknownRole(String),
    #[error("the parents would make a cycle: {}", .0.join(" -> "))]
    Cycle(Vec<String>),
    #[error("role {role} is still used by {by}")]
    InUse { role: String, by: String },
    #[error("roles {} may not be held together (separation-of-duty rule {rule})", .roles.join(", "))]
    SeparationOfDuty { rule: String, roles: Vec<String> },
    #[error("roles {} may not be active in one session (dynamic separation-of-duty rule {rule})", .roles.join(", "))]
    ActiveTogether { rule: String, roles: Vec<String> },
    #[error("role {0} is not assigned to the user here and now")]
    NotAssigned(String),
    #[error("the role graph kept changing; try again")]
    Busy,
    #[error(transparent)]
    Store(#[from] StoreError),
}

fn invalid(field: &'static str, reason: impl Into<String>) -> AuthzError {
    AuthzError::Invalid {
        field,
        reason: reason.into(),
    }
}

/// A role as the admin API and the CLI show it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct RoleView {
    pub name: String,
    pub description: String,
    /// Granted by this role itself.
    pub permissions: Vec<String>,
    pub parents: Vec<String>,
    /// Where some of `permissions` hold (by permission); the others hold everywhere.
    pub conditions: BTreeMap<String, Condition>,
    /// Granted by this role with everything it inherits (conditions aside).
    pub effective_permissions: Vec<String>,
    pub created_at: i64,
    pub updated_at: i64,
}

/// A separation-of-duty rule as shown.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct SodView {
    pub id: String,
    pub roles: Vec<String>,
    /// The roles may be held together but not be active in one session.
    pub dynamic: bool,
    pub created_at: i64,
}

impl From<&SodRecord> for SodView {
    fn from(rule: &SodRecord) -> Self {
        SodView {
            id: rule.id.clone(),
            roles: rule.roles.clone(),
            dynamic: rule.dynamic,
            created_at: rule.created_at,
        }
    }
}

/// What a role is to be (all of it: a replace).
#[derive(Debug, Clone, Default)]
pub struct RoleSpec {
    pub description: String,
    pub permissions: Vec<String>,
    pub parents: Vec<String>,
    /// Conditions on some of `permissions`.
    pub conditions: BTreeMap<String, Condition>,
}

/// An answer to "may this user do that?", with why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Decision {
    pub allowed: bool,
    pub permission: String,
    /// The role that grants it (assigned or inherited), when allowed.
    pub granted_by: Option<String>,
    /// One sentence.
    pub reason: String,
    /// The user's roles with inherited ones.
    pub roles: Vec<String>,
}

/// `name` as a role name: 1–64 of letters, digits and `- _ : .` (as `users.roles`).
pub fn check_role_name(field: &'static str, name: &str) -> Result<(), AuthzError> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_:.".contains(&b));
    ok.then_some(())
        .ok_or_else(|| invalid(field, format!("{name:?}: 1-64 of letters, digits and - _ : .")))
}

/// `name` as a permission: an OAuth scope token (RFC 6749 §3.3: printable ASCII without
/// space, `"` and `\`), at most 128 characters.
pub fn check_permission(name: &str) -> Result<(), AuthzError> {
    let ok = !name.is_empty()
        && name.len() <= MAX_PERMISSION
        && name
            .bytes()
            .all(|b| b == 0x21 || (0x23..=0x5b).contains(&b) || (0x5d..=0x7e).contains(&b));
    ok.then_some(()).ok_or_else(|| {
        invalid(
            "permissions",
            format!("{name:?}: 1-128 printable characters without space, quote or backslash"),
        )
    })
}

/// Conditions name permissions of the role, and their parts are well formed.
fn check_conditions(
    conditions: &BTreeMap<String, Condition>,
    permissions: &[String],
) -> Result<(), AuthzError> {
    for (permission, condition) in conditions {
        if !permissions.contains(permission) {
            return Err(invalid(
                "conditions",
                format!("{permission:?} is not a permission of the role"),
            ));
        }
        check_condition(
            "conditions",
            &format!("the condition of {permission:?}"),
            condition,
        )?;
    }
    Ok(())
}

/// A condition's parts are well formed and it asks for something.
fn check_condition(field: &'static str, what: &str, condition: &Condition) -> Result<(), AuthzError> {
    if condition.is_empty() {
        return Err(invalid(field, format!("{what} is empty")));
    }
    if condition.networks.len() > MAX_LIST || condition.channels.len() > MAX_LIST {
        return Err(invalid(
            field,
            format!("at most {MAX_LIST} networks and channels"),
        ));
    }
    for network in &condition.networks {
        tessera_proto::net::Cidr::parse(network).map_err(|e| invalid(field, e))?;
    }
    if let Some(channel) = condition.channels.iter().find(|c| c.is_empty() || c.len() > 64) {
        return Err(invalid(field, format!("{channel:?} is not a channel name")));
    }
    if let Some(acr) = &condition.acr {
        if !tessera_proto::acr::SUPPORTED.contains(&acr.as_str()) {
            return Err(invalid(
                field,
                format!(
                    "acr {acr:?} is not one of {}",
                    tessera_proto::acr::SUPPORTED.join(", ")
                ),
            ));
        }
    }
    if let Some(problem) = condition.time.as_ref().and_then(|w| w.problem()) {
        return Err(invalid(field, format!("{what}: {problem}")));
    }
    Ok(())
}

/// An instant given as RFC 3339 (`2027-01-31T18:00:00Z`, `2027-01-31T19:00:00+01:00`) or
/// Unix seconds, as Unix seconds.
pub fn parse_instant(text: &str) -> Result<i64, String> {
    if let Ok(seconds) = text.parse::<i64>() {
        return Ok(seconds);
    }
    text.parse::<jiff::Timestamp>()
        .map(|t| t.as_second())
        .map_err(|_| format!("{text:?} is not an RFC 3339 time (2027-01-31T18:00:00Z) nor Unix seconds"))
}

/// A user's stored assignment terms, read; one unreadable is left out (it holds nowhere,
/// see [`in_force`]).
pub fn read_terms(stored: &BTreeMap<String, serde_json::Value>) -> BTreeMap<String, AssignmentTerms> {
    stored
        .iter()
        .filter_map(|(role, value)| Some((role.clone(), serde_json::from_value(value.clone()).ok()?)))
        .collect()
}

/// The terms of an assignment are well formed.
pub fn check_terms(role: &str, terms: &AssignmentTerms) -> Result<(), AuthzError> {
    if terms.until.is_some_and(|until| until <= 0) {
        return Err(invalid("terms", format!("the expiry of {role:?} is not a time")));
    }
    match &terms.condition {
        Some(condition) => check_condition("terms", &format!("the condition of {role:?}"), condition),
        None => Ok(()),
    }
}

/// Sorted, distinct, each checked, at most [`MAX_LIST`].
fn tidy(
    field: &'static str,
    list: &[String],
    check: impl Fn(&str) -> Result<(), AuthzError>,
) -> Result<Vec<String>, AuthzError> {
    if list.len() > MAX_LIST {
        return Err(invalid(field, format!("at most {MAX_LIST}")));
    }
    let mut out: Vec<String> = list.iter().map(|s| s.trim().to_owned()).collect();
    for item in &out {
        check(item)?;
    }
    out.sort();
    out.dedup();
    Ok(out)
}

pub struct Authz {
    store: Arc<dyn RbacStore>,
    audit: Auditor,
    clock: Arc<dyn Clock>,
    /// The graph as last read: every token issued and refreshed needs it, and it changes
    /// rarely, so only its version is read again (a change on any node bumps it).
    cached: std::sync::Mutex<Option<Arc<RbacSnapshot>>>,
}

impl Authz {
    pub fn new(store: Arc<dyn RbacStore>, audit: Auditor, clock: Arc<dyn Clock>) -> Self {
        Authz {
            store,
            audit,
            clock,
            cached: std::sync::Mutex::new(None),
        }
    }

    /// The current graph: the cached one while its version is the store's, else read anew.
    async fn snapshot(&self) -> Result<Arc<RbacSnapshot>, StoreError> {
        let version = self.store.rbac_version().await?;
        let cached = self
            .cached
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone();
        if let Some(snapshot) = cached.filter(|s| s.version == version) {
            return Ok(snapshot);
        }
        let fresh = Arc::new(self.store.rbac().await?);
        *self
            .cached
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = Some(fresh.clone());
        Ok(fresh)
    }

    fn view(snapshot: &RbacSnapshot, role: &RoleRecord) -> RoleView {
        RoleView {
            name: role.name.clone(),
            description: role.description.clone(),
            permissions: role.permissions.clone(),
            parents: role.parents.clone(),
            conditions: serde_json::from_value(role.conditions.clone()).unwrap_or_default(),
            effective_permissions: Graph::new(snapshot)
                .effective(std::slice::from_ref(&role.name))
                .permissions,
            created_at: role.created_at,
            updated_at: role.updated_at,
        }
    }

    /// Every role, by name.
    pub async fn roles(&self) -> Result<Vec<RoleView>, AuthzError> {
        let snapshot = self.snapshot().await?;
        Ok(snapshot.roles.iter().map(|r| Self::view(&snapshot, r)).collect())
    }

    pub async fn role(&self, name: &str) -> Result<RoleView, AuthzError> {
        let snapshot = self.snapshot().await?;
        let role = snapshot
            .roles
            .iter()
            .find(|r| r.name == name)
            .ok_or(AuthzError::NotFound)?;
        Ok(Self::view(&snapshot, role))
    }

    /// Creates role `name` (`create`: refused if it exists) or replaces it (`!create`:
    /// refused if it does not). Parents must exist and make no cycle; the role's own
    /// effective permissions fit in a token.
    pub async fn put_role(
        &self,
        name: &str,
        spec: RoleSpec,
        create: bool,
        actor: &str,
        context: &RequestContext,
    ) -> Result<RoleView, AuthzError> {
        check_role_name("name", name)?;
        if spec.description.chars().count() > MAX_DESCRIPTION
            || spec.description.chars().any(char::is_control)
        {
            return Err(invalid("description", "at most 256 printable characters"));
        }
        let permissions = tidy("permissions", &spec.permissions, check_permission)?;
        let parents = tidy("parents", &spec.parents, |p| check_role_name("parents", p))?;
        check_conditions(&spec.conditions, &permissions)?;
        let conditions =
            serde_json::to_value(&spec.conditions).map_err(|e| invalid("conditions", e.to_string()))?;
        for _ in 0..ATTEMPTS {
            let snapshot = self.snapshot().await?;
            let existing = snapshot.roles.iter().find(|r| r.name == name);
            match (existing, create) {
                (Some(_), true) => return Err(AuthzError::Exists(name.to_owned())),
                (None, false) => return Err(AuthzError::NotFound),
                _ => {}
            }
            if let Some(unknown) = parents
                .iter()
                .find(|p| !snapshot.roles.iter().any(|r| &r.name == *p))
            {
                return Err(AuthzError::UnknownRole(unknown.clone()));
            }
            let now = self.clock.now();
            let record = RoleRecord {
                name: name.to_owned(),
                description: spec.description.trim().to_owned(),
                permissions: permissions.clone(),
                parents: parents.clone(),
                conditions: conditions.clone(),
                created_at: existing.map_or(now, |r| r.created_at),
                updated_at: now,
            };
            if let Some(path) = graph::cycle_through(&snapshot, &record) {
                return Err(AuthzError::Cycle(path));
            }
            let mut next = (*snapshot).clone();
            next.roles.retain(|r| r.name != name);
            next.roles.push(record.clone());
            let effective = Graph::new(&next).effective(std::slice::from_ref(&record.name));
            if effective.permissions.len() > MAX_TOKEN_PERMISSIONS {
                return Err(invalid(
                    "permissions",
                    format!(
                        "the role would grant {} permissions with its parents; a token carries at most {MAX_TOKEN_PERMISSIONS}",
                        effective.permissions.len()
                    ),
                ));
            }
            if self.store.put_role(&record, snapshot.version).await? {
                self.audit
                    .record(
                        context,
                        AuditEvent::new(if create { "role.created" } else { "role.updated" }, "success")
                            .actor(actor)
                            .detail(json!({ "role": name, "permissions": record.permissions, "parents": record.parents })),
                    )
                    .await;
                return Ok(Self::view(&next, &record));
            }
        }
        Err(AuthzError::Busy)
    }

    /// Deletes role `name`; refused while another role inherits from it or a
    /// separation-of-duty rule names it. Users keep the name (which then grants nothing).
    pub async fn delete_role(
        &self,
        name: &str,
        actor: &str,
        context: &RequestContext,
    ) -> Result<(), AuthzError> {
        for _ in 0..ATTEMPTS {
            let snapshot = self.snapshot().await?;
            if !snapshot.roles.iter().any(|r| r.name == name) {
                return Err(AuthzError::NotFound);
            }
            if let Some(child) = snapshot
                .roles
                .iter()
                .find(|r| r.parents.iter().any(|p| p == name))
            {
                return Err(AuthzError::InUse {
                    role: name.to_owned(),
                    by: format!("role {} (a parent of it)", child.name),
                });
            }
            if let Some(rule) = snapshot.sod.iter().find(|s| s.roles.iter().any(|r| r == name)) {
                return Err(AuthzError::InUse {
                    role: name.to_owned(),
                    by: format!("separation-of-duty rule {}", rule.id),
                });
            }
            if self.store.delete_role(name, snapshot.version).await? {
                self.audit
                    .record(
                        context,
                        AuditEvent::new("role.deleted", "success")
                            .actor(actor)
                            .detail(json!({ "role": name })),
                    )
                    .await;
                return Ok(());
            }
        }
        Err(AuthzError::Busy)
    }

    pub async fn sod(&self) -> Result<Vec<SodView>, AuthzError> {
        Ok(self.snapshot().await?.sod.iter().map(SodView::from).collect())
    }

    /// Adds a rule that no user may hold two or more of `roles` (defined roles) together
    /// (static), or activate them in one session (`dynamic`). Users who already hold them
    /// keep their roles until they are next changed; the answer does not list them (see the
    /// note in docs/authz.md).
    pub async fn add_sod(
        &self,
        roles: &[String],
        dynamic: bool,
        actor: &str,
        context: &RequestContext,
    ) -> Result<SodView, AuthzError> {
        let roles = tidy("roles", roles, |r| check_role_name("roles", r))?;
        if roles.len() < 2 {
            return Err(invalid("roles", "a rule names at least two distinct roles"));
        }
        for _ in 0..ATTEMPTS {
            let snapshot = self.snapshot().await?;
            if let Some(unknown) = roles
                .iter()
                .find(|r| !snapshot.roles.iter().any(|d| &d.name == *r))
            {
                return Err(AuthzError::UnknownRole(unknown.clone()));
            }
            let rule = SodRecord {
                id: random_id(),
                roles: roles.clone(),
                dynamic,
                created_at: self.clock.now(),
            };
            if self.store.put_sod(&rule, snapshot.version).await? {
                self.audit
                    .record(
                        context,
                        AuditEvent::new("sod.created", "success")
                            .actor(actor)
                            .detail(json!({ "rule": rule.id, "roles": rule.roles, "dynamic": dynamic })),
                    )
                    .await;
                return Ok(SodView::from(&rule));
            }
        }
        Err(AuthzError::Busy)
    }

    pub async fn remove_sod(
        &self,
        id: &str,
        actor: &str,
        context: &RequestContext,
    ) -> Result<(), AuthzError> {
        for _ in 0..ATTEMPTS {
            let snapshot = self.snapshot().await?;
            if !snapshot.sod.iter().any(|s| s.id == id) {
                return Err(AuthzError::NotFound);
            }
            if self.store.delete_sod(id, snapshot.version).await? {
                self.audit
                    .record(
                        context,
                        AuditEvent::new("sod.deleted", "success")
                            .actor(actor)
                            .detail(json!({ "rule": id })),
                    )
                    .await;
                return Ok(());
            }
        }
        Err(AuthzError::Busy)
    }

    /// What a session of a user assigned `assigned` (with `terms`) is granted in
    /// `situation`, from one read of the graph. Its active roles are, of the assignments in
    /// force there, those `chosen` (the session's choice, cut to what is still in force),
    /// or every one but those in a broken dynamic rule when nothing was chosen; a choice
    /// that a dynamic rule added since forbids loses the conflicting roles likewise.
    pub async fn session_grants(
        &self,
        assigned: &[String],
        terms: &BTreeMap<String, serde_json::Value>,
        chosen: Option<&[String]>,
        situation: &Situation<'_>,
    ) -> Result<Effective, StoreError> {
        let snapshot = self.snapshot().await?;
        let graph = Graph::new(&snapshot);
        let held = in_force(assigned, terms, situation);
        let candidates: Vec<String> = match chosen {
            Some(chosen) => held.into_iter().filter(|r| chosen.contains(r)).collect(),
            None => held,
        };
        Ok(graph.effective_in(&graph.default_activation(&candidates), Some(situation)))
    }

    /// Checks a session's request to activate `chosen`: each must be assigned and in force
    /// in `situation`, and together they may break no dynamic separation-of-duty rule.
    /// Returns them sorted and distinct.
    pub async fn choose_roles(
        &self,
        assigned: &[String],
        terms: &BTreeMap<String, serde_json::Value>,
        chosen: &[String],
        situation: &Situation<'_>,
    ) -> Result<Vec<String>, AuthzError> {
        let chosen = tidy("roles", chosen, |r| check_role_name("roles", r))?;
        let held = in_force(assigned, terms, situation);
        if let Some(missing) = chosen.iter().find(|r| !held.contains(r)) {
            return Err(AuthzError::NotAssigned(missing.clone()));
        }
        let snapshot = self.snapshot().await?;
        match Graph::new(&snapshot).dsd_conflict(&chosen) {
            Some((rule, roles)) => Err(AuthzError::ActiveTogether {
                rule: rule.id.clone(),
                roles,
            }),
            None => Ok(chosen),
        }
    }

    /// What `active` (roles as given, no activation rule applied) grant now, in `situation`.
    pub async fn effective(
        &self,
        active: &[String],
        situation: &Situation<'_>,
    ) -> Result<Effective, StoreError> {
        let snapshot = self.snapshot().await?;
        Ok(Graph::new(&snapshot).effective_in(active, Some(situation)))
    }

    /// Refuses an assignment of `roles` that breaks a (static) separation-of-duty rule.
    pub async fn check_assignment(&self, roles: &[String]) -> Result<(), AuthzError> {
        let snapshot = self.snapshot().await?;
        match Graph::new(&snapshot).sod_conflict(roles) {
            Some((rule, held)) => Err(AuthzError::SeparationOfDuty {
                rule: rule.id.clone(),
                roles: held,
            }),
            None => Ok(()),
        }
    }

    /// May `user` do `permission` in `situation`, and why.
    pub async fn decide(
        &self,
        user: &UserRecord,
        permission: &str,
        situation: &Situation<'_>,
    ) -> Result<Decision, AuthzError> {
        check_permission(permission)?;
        let snapshot = self.snapshot().await?;
        let graph = Graph::new(&snapshot);
        // The assignments in force here; whether their roles are active is the session's
        // choice (dynamic separation of duty), said in the reason.
        let held = in_force(&user.roles, &user.role_terms, situation);
        let effective = graph.effective(&held);
        let granted_by = graph.granted_by(&held, permission, Some(situation));
        let unconditionally = graph.granted_by(&user.roles, permission, None);
        let inactive_by_default = granted_by.as_ref().is_some_and(|_| {
            graph
                .granted_by(&graph.default_activation(&held), permission, Some(situation))
                .is_none()
        });
        let mut reason = match (&granted_by, user.disabled_at.is_some()) {
            (_, true) => "the user is disabled: no token is issued to them".to_owned(),
            (Some(role), false) if held.contains(role) => format!("role {role} grants {permission}"),
            (Some(role), false) => format!("role {role}, inherited, grants {permission}"),
            (None, false) if unconditionally.is_some() => format!(
                "role {} grants {permission}, but its condition or its assignment's terms do not hold here",
                unconditionally.as_deref().unwrap_or_default()
            ),
            (None, false) => format!("no role of the user grants {permission}"),
        };
        if inactive_by_default && user.disabled_at.is_none() {
            reason.push_str(
                "; a dynamic separation-of-duty rule keeps it out of a session that does not ask for the role",
            );
        }
        Ok(Decision {
            allowed: granted_by.is_some() && user.disabled_at.is_none(),
            permission: permission.to_owned(),
            granted_by,
            reason,
            roles: effective.roles,
        })
    }
}
