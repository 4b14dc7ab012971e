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
    /// The request comes within this window of local time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time: Option<TimeWindow>,
}

/// Hours of some days in a time zone: `from` (inclusive) to `to` (exclusive), `HH:MM` on
/// the zone's wall clock — so a window keeps its local hours across daylight-saving
/// changes. `to` before `from` runs past midnight into the next day (`22:00`–`06:00`); a
/// day in `days` is the day the window opens. `to` may be `24:00`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TimeWindow {
    /// An IANA time zone (`Europe/Berlin`, `UTC`).
    pub zone: String,
    pub from: String,
    pub to: String,
    /// `mon` … `sun`; every day when empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub days: Vec<String>,
}

const DAYS: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

/// Minutes since midnight of `HH:MM` (`24:00` too when `end`).
fn minutes(text: &str, end: bool) -> Option<u32> {
    let (h, m) = text.split_once(':')?;
    if h.len() != 2 || m.len() != 2 {
        return None;
    }
    let (h, m): (u32, u32) = (h.parse().ok()?, m.parse().ok()?);
    match (h, m) {
        (24, 0) if end => Some(24 * 60),
        (0..=23, 0..=59) => Some(h * 60 + m),
        _ => None,
    }
}

impl TimeWindow {
    /// Why the window is not well formed, if it is not.
    pub fn problem(&self) -> Option<String> {
        if jiff::tz::TimeZone::get(&self.zone).is_err() {
            return Some(format!("{:?} is not a known time zone", self.zone));
        }
        let (Some(from), Some(to)) = (minutes(&self.from, false), minutes(&self.to, true)) else {
            return Some(format!(
                "the window {:?}-{:?} is not HH:MM-HH:MM",
                self.from, self.to
            ));
        };
        if from == to || (from == 0 && to == 24 * 60 && self.days.is_empty()) {
            return Some("the window is empty or the whole week: leave the time out".to_owned());
        }
        self.days
            .iter()
            .find(|d| !DAYS.contains(&d.as_str()))
            .map(|d| format!("{d:?} is not one of {}", DAYS.join(", ")))
    }

    /// Whether instant `at` (Unix seconds) is inside; a malformed window holds never.
    pub fn contains(&self, at: i64) -> bool {
        let (Ok(zone), Some(from), Some(to)) = (
            jiff::tz::TimeZone::get(&self.zone),
            minutes(&self.from, false),
            minutes(&self.to, true),
        ) else {
            return false;
        };
        let Ok(local) = jiff::Timestamp::from_second(at).map(|t| t.to_zoned_datetime(zone)) else {
            return false;
        };
        let now = u32::from(local.hour().unsigned_abs()) * 60 + u32::from(local.minute().unsigned_abs());
        let day = usize::from(local.weekday().to_monday_zero_offset().unsigned_abs());
        let open_on = |day: usize| self.days.is_empty() || self.days.iter().any(|d| d == DAYS[day % 7]);
        if from < to {
            open_on(day) && from <= now && now < to
        } else {
            // Past midnight: opened today, or opened yesterday and not closed yet.
            (open_on(day) && now >= from) || (open_on(day + 6) && now < to)
        }
    }
}

/// What a condition is checked against: the request that gets the token.
#[derive(Debug, Clone, Copy, Default)]
pub struct Situation<'a> {
    pub ip: Option<IpAddr>,
    pub channel: Option<&'a str>,
    /// The class of the session's sign-in.
    pub acr: Option<&'a str>,
    /// When (Unix seconds).
    pub at: Option<i64>,
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
        let time = self
            .time
            .as_ref()
            .is_none_or(|window| situation.at.is_some_and(|at| window.contains(at)));
        network && channel && acr && time
    }

    /// Whether the condition asks for nothing.
    pub fn is_empty(&self) -> bool {
        self.networks.is_empty() && self.channels.is_empty() && self.acr.is_none() && self.time.is_none()
    }
}

/// The terms of one assignment of a role to a user: until when, and where, it holds.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AssignmentTerms {
    /// Unix seconds; from then on the assignment grants nothing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until: Option<i64>,
    /// Where the assignment holds (as a permission's condition: networks, channels, acr,
    /// time).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub condition: Option<Condition>,
}

impl AssignmentTerms {
    pub fn hold(&self, situation: &Situation<'_>) -> bool {
        self.until
            .is_none_or(|until| situation.at.is_some_and(|at| at < until))
            && self.condition.as_ref().is_none_or(|c| c.holds(situation))
    }
}

/// The roles of `assigned` in force in `situation`: those without terms and those whose
/// terms hold (unreadable terms hold nowhere).
pub fn in_force(
    assigned: &[String],
    terms: &BTreeMap<String, serde_json::Value>,
    situation: &Situation<'_>,
) -> Vec<String> {
    assigned
        .iter()
        .filter(|role| {
            terms.get(role.as_str()).is_none_or(|value| {
                serde_json::from_value::<AssignmentTerms>(value.clone()).is_ok_and(|t| t.hold(situation))
            })
        })
        .cloned()
        .collect()
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

    /// The first static separation-of-duty rule that `assigned` (with inherited roles)
    /// breaks: the rule and the roles of it held.
    pub fn sod_conflict(&self, assigned: &[String]) -> Option<(&'a SodRecord, Vec<String>)> {
        self.broken(assigned, false).next()
    }

    /// The first dynamic rule that `active` (with inherited roles) breaks.
    pub fn dsd_conflict(&self, active: &[String]) -> Option<(&'a SodRecord, Vec<String>)> {
        self.broken(active, true).next()
    }

    /// The rules of a kind that `roles` (with inherited ones) break, each with the roles of
    /// it they hold.
    fn broken<'s>(
        &'s self,
        roles: &[String],
        dynamic: bool,
    ) -> impl Iterator<Item = (&'a SodRecord, Vec<String>)> + 's {
        let held = self.closure(roles);
        self.sod
            .iter()
            .filter(move |rule| rule.dynamic == dynamic)
            .filter_map(move |rule| {
                let both: Vec<String> = rule.roles.iter().filter(|r| held.contains(*r)).cloned().collect();
                (both.len() >= 2).then_some((rule, both))
            })
    }

    /// The roles a session has active when it chose none: all of `held` but those that
    /// (themselves or through what they inherit) take part in a dynamic rule `held` breaks
    /// — a session that wants one of them asks for it by name. Least privilege, and the
    /// same answer whatever the order of `held`.
    pub fn default_activation(&self, held: &[String]) -> Vec<String> {
        let broken: Vec<(&SodRecord, Vec<String>)> = self.broken(held, true).collect();
        if broken.is_empty() {
            return held.to_vec();
        }
        let conflicting: BTreeSet<&str> = broken
            .iter()
            .flat_map(|(_, roles)| roles.iter().map(String::as_str))
            .collect();
        held.iter()
            .filter(|role| {
                !self
                    .closure(std::slice::from_ref(role))
                    .iter()
                    .any(|r| conflicting.contains(r.as_str()))
            })
            .cloned()
            .collect()
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
                    dynamic: false,
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
            at: None,
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

    /// Unix seconds of a UTC `YYYY-MM-DDTHH:MM`.
    fn utc(text: &str) -> i64 {
        format!("{text}:00Z")
            .parse::<jiff::Timestamp>()
            .unwrap()
            .as_second()
    }

    fn window(zone: &str, from: &str, to: &str, days: &[&str]) -> TimeWindow {
        TimeWindow {
            zone: zone.to_owned(),
            from: from.to_owned(),
            to: to.to_owned(),
            days: names(days),
        }
    }

    #[test]
    fn a_time_window_runs_past_midnight_on_the_days_it_opens() {
        // Night shift in Seoul (UTC+9, no daylight saving), opening Monday to Friday.
        let night = window(
            "Asia/Seoul",
            "22:00",
            "06:00",
            &["mon", "tue", "wed", "thu", "fri"],
        );
        assert_eq!(night.problem(), None);
        // 2026-12-07 is a Monday.
        for (at, inside) in [
            ("2026-12-07T12:59", false), // Mon 21:59
            ("2026-12-07T13:00", true),  // Mon 22:00
            ("2026-12-07T15:00", true),  // Tue 00:00, opened on Monday
            ("2026-12-07T20:59", true),  // Tue 05:59
            ("2026-12-07T21:00", false), // Tue 06:00: closed
            ("2026-12-11T20:00", true),  // Sat 05:00, opened on Friday
            ("2026-12-12T13:30", false), // Sat 22:30: does not open on Saturday
            ("2026-12-13T20:00", false), // Mon 05:00, Sunday's night did not open
        ] {
            assert_eq!(night.contains(utc(at)), inside, "{at}");
        }
        // Within one day, every day.
        let office = window("UTC", "08:00", "24:00", &[]);
        assert!(office.contains(utc("2026-12-13T23:59")));
        assert!(!office.contains(utc("2026-12-13T07:59")));
    }

    #[test]
    fn a_time_window_keeps_its_local_hours_across_daylight_saving_changes() {
        // Berlin: CET (UTC+1) in winter, CEST (UTC+2) from 2026-03-29 02:00 to 2026-10-25 03:00.
        let night = window("Europe/Berlin", "22:00", "06:00", &[]);
        for (at, inside) in [
            ("2026-03-29T00:30", true),  // 01:30 CET
            ("2026-03-29T03:59", true),  // 05:59 CEST
            ("2026-03-29T04:30", false), // 06:30 CEST (a fixed UTC+1 would say 05:30, inside)
            ("2026-03-29T19:30", false), // 21:30 CEST
            ("2026-03-29T20:00", true),  // 22:00 CEST
            ("2026-10-25T04:59", true),  // 05:59 CET, the night that had an hour more
            ("2026-10-25T05:00", false), // 06:00 CET (a fixed UTC+2 would say 07:00)
            ("2026-10-24T20:00", true),  // 22:00 CEST the evening before
            ("2026-10-24T19:59", false), // 21:59 CEST
        ] {
            assert_eq!(night.contains(utc(at)), inside, "{at}");
        }
    }

    #[test]
    fn malformed_time_windows_are_named_and_hold_never() {
        for (w, why) in [
            (window("Mars/Olympus", "08:00", "18:00", &[]), "time zone"),
            (window("UTC", "8:00", "18:00", &[]), "HH:MM"),
            (window("UTC", "08:00", "25:00", &[]), "HH:MM"),
            (window("UTC", "24:00", "06:00", &[]), "HH:MM"),
            (window("UTC", "08:60", "18:00", &[]), "HH:MM"),
            (window("UTC", "08:00", "08:00", &[]), "empty"),
            (window("UTC", "00:00", "24:00", &[]), "whole week"),
            (window("UTC", "08:00", "18:00", &["monday"]), "not one of"),
        ] {
            let problem = w.problem().unwrap_or_default();
            assert!(problem.contains(why), "{w:?}: {problem}");
        }
        assert!(!window("Mars/Olympus", "00:00", "12:00", &[]).contains(utc("2026-12-07T06:00")));
        let condition = Condition {
            time: Some(window("UTC", "08:00", "18:00", &[])),
            ..Condition::default()
        };
        let at = |t: &str| Situation {
            at: Some(utc(t)),
            ..Situation::default()
        };
        assert!(condition.holds(&at("2026-12-07T09:00")));
        assert!(!condition.holds(&at("2026-12-07T19:00")));
        assert!(!condition.holds(&Situation::default()), "no time, no grant");
    }

    #[test]
    fn assignment_terms_expire_and_hold_only_where_their_condition_does() {
        let terms: BTreeMap<String, serde_json::Value> = [
            ("temp".to_owned(), serde_json::json!({ "until": 2_000 })),
            (
                "web-only".to_owned(),
                serde_json::json!({ "condition": { "channels": ["web"] } }),
            ),
            ("broken".to_owned(), serde_json::json!({ "until": "soon" })),
        ]
        .into();
        let assigned = names(&["always", "broken", "temp", "web-only"]);
        let web = Situation {
            channel: Some("web"),
            at: Some(1_999),
            ..Situation::default()
        };
        assert_eq!(
            in_force(&assigned, &terms, &web),
            names(&["always", "temp", "web-only"])
        );
        let later_on_mobile = Situation {
            channel: Some("mobile"),
            at: Some(2_000),
            ..Situation::default()
        };
        assert_eq!(in_force(&assigned, &terms, &later_on_mobile), names(&["always"]));
    }

    #[test]
    fn dynamic_separation_of_duty_leaves_conflicting_roles_inactive_until_one_is_chosen() {
        let mut s = snapshot(
            vec![
                role("cashier", &["till:open"], &[]),
                role("auditor", &["till:audit"], &[]),
                role("head-cashier", &["till:close"], &["cashier"]),
                role("member", &["orders:read"], &[]),
                role("payer", &[], &[]),
                role("approver", &[], &[]),
            ],
            &[&["auditor", "cashier"], &["approver", "payer"]],
        );
        s.sod[0].dynamic = true;
        let g = Graph::new(&s);
        // Static rules do not count as dynamic ones, nor the other way round.
        assert!(g.sod_conflict(&names(&["auditor", "cashier"])).is_none());
        assert!(g.dsd_conflict(&names(&["approver", "payer"])).is_none());
        // Held together, activated together: refused, inheritance counted.
        let (rule, roles) = g.dsd_conflict(&names(&["auditor", "head-cashier"])).unwrap();
        assert_eq!(
            (rule.id.as_str(), roles),
            ("sod0", names(&["auditor", "cashier"]))
        );
        assert!(g.dsd_conflict(&names(&["head-cashier", "member"])).is_none());
        // Chosen none: the roles in the broken rule stay inactive, the others are active.
        assert_eq!(
            g.default_activation(&names(&["auditor", "head-cashier", "member"])),
            names(&["member"])
        );
        assert_eq!(
            g.default_activation(&names(&["head-cashier", "member"])),
            names(&["head-cashier", "member"])
        );
    }
}
