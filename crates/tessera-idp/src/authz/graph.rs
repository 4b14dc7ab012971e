//! The role graph as data: what a set of assigned roles grants (roles inherit their
//! parents' permissions, transitively; diamonds count once), and the checks a change must
//! pass — no cycle, no unknown parent, no user holding roles a separation-of-duty rule
//! forbids together. Pure: the service feeds it a store snapshot.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use serde::{Deserialize, Serialize};
use tessera_proto::net::Cidr;
use tessera_store::durable::{RbacSnapshot, RoleRecord, SodRecord};

/// Where a permission of a role holds (ABAC): every given part must hold.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Condition {
    /// The caller's address is in one of these ranges (`10.0.0.0/8`, `2001:db8::/32`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub networks: Vec<String>,
    /// The session is on one of these channels.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub channels: Vec<String>,
    /// The sign-in is of this class or stronger (`urn:tessera:acr:mfa`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acr: Option<String>,
}

/// What a condition is checked against: the request that gets the token.
#[derive(Debug, Clone, Copy, Default)]
pub struct Situation<'a> {
    pub ip: Option<IpAddr>,
    pub channel: Option<&'a str>,
    /// The class of the session's sign-in.
    pub acr: Option<&'a str>,
}

impl Condition {
    /// Whether the condition holds in `situation`; an attribute it needs but the situation
    /// lacks fails it.
    pub fn holds(&self, situation: &Situation<'_>) -> bool {
        let network = self.networks.is_empty()
            || situation.ip.is_some_and(|ip| {
                self.networks
                    .iter()
                    .filter_map(|n| Cidr::parse(n).ok())
                    .any(|cidr| cidr.contains(ip))
            });
        let channel = self.channels.is_empty()
            || situation
                .channel
                .is_some_and(|c| self.channels.iter().any(|allowed| allowed == c));
        let acr = self.acr.as_deref().is_none_or(|wanted| {
            situation
                .acr
                .is_some_and(|acr| tessera_proto::acr::satisfies(acr, &[wanted]))
        });
        network && channel && acr
    }
}

/// Whether `role`'s grant of `permission` applies in `situation` (`None`: conditions are
/// not looked at). An unreadable condition holds nowhere.
fn applies(role: &RoleRecord, permission: &str, situation: Option<&Situation<'_>>) -> bool {
    let (Some(situation), Some(condition)) = (situation, role.conditions.get(permission)) else {
        return true;
    };
    serde_json::from_value::<Condition>(condition.clone()).is_ok_and(|c| c.holds(situation))
}

/// Most permissions a token carries; past it the token carries none (and says so in the
/// audit log), so a service fails closed instead of seeing a cut list.
pub const MAX_TOKEN_PERMISSIONS: usize = 256;

/// What assigned roles grant.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Effective {
    /// The assigned roles and every role they inherit from, sorted.
    pub roles: Vec<String>,
    /// Every permission of those roles, sorted.
    pub permissions: Vec<String>,
}

/// The graph of one snapshot, by role name.
pub struct Graph<'a> {
    roles: BTreeMap<&'a str, &'a RoleRecord>,
    sod: &'a [SodRecord],
}

impl<'a> Graph<'a> {
    pub fn new(snapshot: &'a RbacSnapshot) -> Self {
        Graph {
            roles: snapshot.roles.iter().map(|r| (r.name.as_str(), r)).collect(),
            sod: &snapshot.sod,
        }
    }

    pub fn role(&self, name: &str) -> Option<&'a RoleRecord> {
        self.roles.get(name).copied()
    }

    /// The roles `assigned` and all their ancestors. A name with no role defined is kept
    /// (a plain role name, as before roles had permissions) and grants nothing.
    pub fn closure(&self, assigned: &[String]) -> BTreeSet<String> {
        let mut seen = BTreeSet::new();
        let mut stack: Vec<&str> = assigned.iter().map(String::as_str).collect();
        while let Some(name) = stack.pop() {
            if !seen.insert(name.to_owned()) {
                continue;
            }
            if let Some(role) = self.role(name) {
                stack.extend(role.parents.iter().map(String::as_str));
            }
        }
        seen
    }

    /// What `assigned` grants, whatever the conditions (a role's view).
    pub fn effective(&self, assigned: &[String]) -> Effective {
        self.effective_in(assigned, None)
    }

    /// What `assigned` grants in `situation`: a permission with a condition counts only
    /// where it holds (granted unconditionally by another role, it counts anyway). `None`:
    /// conditions are not looked at.
    pub fn effective_in(&self, assigned: &[String], situation: Option<&Situation<'_>>) -> Effective {
        let roles = self.closure(assigned);
        let permissions: BTreeSet<&str> = roles
            .iter()
            .filter_map(|name| self.role(name))
            .flat_map(|role| {
                role.permissions
                    .iter()
                    .filter(move |p| applies(role, p, situation))
                    .map(String::as_str)
            })
            .collect();
        Effective {
            permissions: permissions.into_iter().map(str::to_owned).collect(),
            roles: roles.into_iter().collect(),
        }
    }

    /// Which role of `assigned` (or inherited by them) grants `permission`, if any: the
    /// first by name, for a decision's reason.
    pub fn granted_by(
        &self,
        assigned: &[String],
        permission: &str,
        situation: Option<&Situation<'_>>,
    ) -> Option<String> {
        self.closure(assigned).into_iter().find(|name| {
            self.role(name).is_some_and(|role| {
                role.permissions.iter().any(|p| p == permission) && applies(role, permission, situation)
            })
        })
    }

    /// The first separation-of-duty rule that `assigned` (with inherited roles) breaks: the
    /// rule and the roles of it held.
    pub fn sod_conflict(&self, assigned: &[String]) -> Option<(&'a SodRecord, Vec<String>)> {
        let held = self.closure(assigned);
        self.sod.iter().find_map(|rule| {
            let both: Vec<String> = rule.roles.iter().filter(|r| held.contains(*r)).cloned().collect();
            (both.len() >= 2).then_some((rule, both))
        })
    }
}

/// Whether replacing (or adding) `role` makes a cycle: the path from `role` back to itself
/// through parents, when there is one.
pub fn cycle_through(snapshot: &RbacSnapshot, role: &RoleRecord) -> Option<Vec<String>> {
    let mut parents: BTreeMap<&str, &[String]> = snapshot
        .roles
        .iter()
        .map(|r| (r.name.as_str(), r.parents.as_slice()))
        .collect();
    parents.insert(role.name.as_str(), role.parents.as_slice());
    // Depth-first from the role's parents, keeping the path; the graph is small.
    fn walk<'a>(
        name: &'a str,
        target: &str,
        parents: &BTreeMap<&'a str, &'a [String]>,
        path: &mut Vec<&'a str>,
        done: &mut BTreeSet<&'a str>,
    ) -> bool {
        if name == target {
            return true;
        }
        if !done.insert(name) {
            return false;
        }
        path.push(name);
        for parent in parents.get(name).copied().unwrap_or_default() {
            if walk(parent.as_str(), target, parents, path, done) {
                return true;
            }
        }
        path.pop();
        false
    }
    let mut done = BTreeSet::new();
    for parent in &role.parents {
        let mut path = vec![role.name.as_str()];
        if walk(parent.as_str(), &role.name, &parents, &mut path, &mut done) {
            path.push(role.name.as_str());
            return Some(path.into_iter().map(str::to_owned).collect());
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn role(name: &str, permissions: &[&str], parents: &[&str]) -> RoleRecord {
        RoleRecord {
            name: name.to_owned(),
            description: String::new(),
            permissions: permissions.iter().map(|p| (*p).to_owned()).collect(),
            parents: parents.iter().map(|p| (*p).to_owned()).collect(),
            conditions: serde_json::json!({}),
            created_at: 0,
            updated_at: 0,
        }
    }

    fn snapshot(roles: Vec<RoleRecord>, sod: &[&[&str]]) -> RbacSnapshot {
        RbacSnapshot {
            version: 1,
            roles,
            sod: sod
                .iter()
                .enumerate()
                .map(|(i, roles)| SodRecord {
                    id: format!("sod{i}"),
                    roles: roles.iter().map(|r| (*r).to_owned()).collect(),
                    created_at: 0,
                })
                .collect(),
        }
    }

    fn names(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn a_diamond_grants_each_permission_once() {
        // admin -> (billing, support) -> member
        let s = snapshot(
            vec![
                role("member", &["orders:read"], &[]),
                role("billing", &["orders:refund"], &["member"]),
                role("support", &["tickets:write"], &["member"]),
                role("admin", &["users:write"], &["billing", "support"]),
            ],
            &[],
        );
        let effective = Graph::new(&s).effective(&names(&["admin"]));
        assert_eq!(effective.roles, names(&["admin", "billing", "member", "support"]));
        assert_eq!(
            effective.permissions,
            names(&["orders:read", "orders:refund", "tickets:write", "users:write"])
        );
        assert_eq!(
            Graph::new(&s)
                .granted_by(&names(&["admin"]), "orders:read", None)
                .as_deref(),
            Some("member")
        );
        assert_eq!(
            Graph::new(&s).granted_by(&names(&["support"]), "orders:refund", None),
            None
        );
    }

    #[test]
    fn ten_levels_deep_inherit_the_root() {
        let mut roles = vec![role("r0", &["root:perm"], &[])];
        for i in 1..=10 {
            roles.push(role(&format!("r{i}"), &[], &[&format!("r{}", i - 1)]));
        }
        let s = snapshot(roles, &[]);
        let effective = Graph::new(&s).effective(&names(&["r10"]));
        assert_eq!(effective.roles.len(), 11);
        assert_eq!(effective.permissions, names(&["root:perm"]));
    }

    #[test]
    fn undefined_role_names_are_kept_and_grant_nothing() {
        let s = snapshot(vec![role("a", &["x:y"], &[])], &[]);
        let effective = Graph::new(&s).effective(&names(&["a", "legacy-role"]));
        assert_eq!(effective.roles, names(&["a", "legacy-role"]));
        assert_eq!(effective.permissions, names(&["x:y"]));
    }

    #[test]
    fn conditions_leave_a_permission_out_where_they_fail() {
        let mut clerk = role("clerk", &["orders:read", "orders:refund"], &[]);
        clerk.conditions = serde_json::json!({
            "orders:refund": {
                "networks": ["10.0.0.0/8", "2001:db8::/32"],
                "channels": ["web"],
                "acr": "urn:tessera:acr:mfa"
            }
        });
        let s = snapshot(vec![clerk, role("refunder", &["orders:refund"], &[])], &[]);
        let g = Graph::new(&s);
        let office = Situation {
            ip: Some("10.1.2.3".parse().unwrap()),
            channel: Some("web"),
            acr: Some("urn:tessera:acr:mfa"),
        };
        let grants =
            |situation: &Situation<'_>| g.effective_in(&names(&["clerk"]), Some(situation)).permissions;
        assert_eq!(grants(&office), names(&["orders:read", "orders:refund"]));
        let v6 = Situation {
            ip: Some("2001:db8::7".parse().unwrap()),
            ..office
        };
        assert_eq!(grants(&v6), names(&["orders:read", "orders:refund"]));
        let mapped = Situation {
            ip: Some("::ffff:10.9.9.9".parse().unwrap()),
            ..office
        };
        assert_eq!(
            grants(&mapped),
            names(&["orders:read", "orders:refund"]),
            "IPv4-mapped is IPv4"
        );
        for elsewhere in [
            Situation {
                ip: Some("192.0.2.1".parse().unwrap()),
                ..office
            },
            Situation { ip: None, ..office },
            Situation {
                channel: Some("mobile"),
                ..office
            },
            Situation {
                acr: Some("urn:tessera:acr:pwd"),
                ..office
            },
            Situation { acr: None, ..office },
        ] {
            assert_eq!(grants(&elsewhere), names(&["orders:read"]), "{elsewhere:?}");
        }
        // Granted unconditionally by another role, it counts anyway; a role's view
        // ignores conditions.
        let nowhere = Situation::default();
        let both = g.effective_in(&names(&["clerk", "refunder"]), Some(&nowhere));
        assert_eq!(both.permissions, names(&["orders:read", "orders:refund"]));
        assert_eq!(
            g.effective(&names(&["clerk"])).permissions,
            names(&["orders:read", "orders:refund"])
        );
        assert_eq!(
            g.granted_by(&names(&["clerk", "refunder"]), "orders:refund", Some(&nowhere))
                .as_deref(),
            Some("refunder")
        );
    }

    #[test]
    fn cycles_are_found_with_their_path() {
        let s = snapshot(
            vec![
                role("a", &[], &["b"]),
                role("b", &[], &["c"]),
                role("c", &[], &[]),
            ],
            &[],
        );
        assert_eq!(
            cycle_through(&s, &role("c", &[], &["a"])),
            Some(names(&["c", "a", "b", "c"]))
        );
        assert_eq!(
            cycle_through(&s, &role("c", &[], &["c"])),
            Some(names(&["c", "c"]))
        );
        assert_eq!(cycle_through(&s, &role("d", &[], &["a", "c"])), None);
        assert_eq!(cycle_through(&s, &role("c", &[], &[])), None);
    }

    #[test]
    fn separation_of_duty_counts_inherited_roles() {
        let s = snapshot(
            vec![
                role("payer", &[], &[]),
                role("approver", &[], &[]),
                role("manager", &[], &["approver"]),
            ],
            &[&["approver", "payer"]],
        );
        let g = Graph::new(&s);
        assert!(g.sod_conflict(&names(&["payer"])).is_none());
        let (rule, held) = g.sod_conflict(&names(&["payer", "manager"])).unwrap();
        assert_eq!(rule.id, "sod0");
        assert_eq!(held, names(&["approver", "payer"]));
    }
}
