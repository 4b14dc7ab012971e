//! `tessera role|sod|authz …` and `tessera user grant|revoke-role`: the authorization
//! model (R26) from the command line, over the same service layer as the admin API
//! ([`tessera_idp::authz::Authz`]), audited with `operator` as actor.

use clap::Subcommand;
use std::collections::BTreeMap;
use tessera_idp::accounts::{Accounts, OPERATOR};
use tessera_idp::audit::RequestContext;

use tessera_idp::authz::{parse_instant, AssignmentTerms, Condition, RoleSpec, RoleView, Situation};
use tessera_idp::config::Config;

type CmdResult = Result<(), Box<dyn std::error::Error>>;

#[derive(Subcommand)]
pub enum RoleCommand {
    /// Define a role: its permissions and the roles it inherits from.
    Create {
        name: String,
        /// A role whose permissions this one inherits (repeatable).
        #[arg(long = "inherits", value_name = "ROLE")]
        parents: Vec<String>,
        /// A permission it grants, e.g. orders:refund (repeatable).
        #[arg(long = "permission", value_name = "P")]
        permissions: Vec<String>,
        /// Where a permission holds: `P={"networks":["10.0.0.0/8"],"channels":["web"],
        /// "acr":"urn:tessera:acr:mfa"}` (repeatable).
        #[arg(long = "condition", value_name = "P=JSON", value_parser = parse_condition)]
        conditions: Vec<(String, Condition)>,
        #[arg(long, default_value = "")]
        description: String,
    },
    /// Replace what a role grants or inherits (lists given replace the old ones whole).
    Update {
        name: String,
        #[arg(long = "inherits", value_name = "ROLE")]
        parents: Option<Vec<String>>,
        #[arg(long = "permission", value_name = "P")]
        permissions: Option<Vec<String>>,
        /// Replaces the role's conditions (`--condition ''` removes them all).
        #[arg(long = "condition", value_name = "P=JSON", value_parser = parse_condition_or_none)]
        conditions: Option<Vec<Option<(String, Condition)>>>,
        #[arg(long)]
        description: Option<String>,
    },
    /// List the roles with their effective permissions.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Show a role.
    Show {
        name: String,
        #[arg(long)]
        json: bool,
    },
    /// Delete a role (refused while another role inherits from it or a rule names it).
    Delete { name: String },
}

#[derive(Subcommand)]
pub enum SodCommand {
    /// Forbid holding two or more of these roles together (static separation of duty), or
    /// with --dynamic activating them in one session.
    Add {
        #[arg(required = true, num_args = 2..)]
        roles: Vec<String>,
        /// The roles may be held together, but a session activates at most one of them.
        #[arg(long)]
        dynamic: bool,
    },
    /// List the rules.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Remove a rule by id.
    Remove { id: String },
}

#[derive(Subcommand)]
pub enum AuthzCommand {
    /// May this user do that? The decision, the role that grants it, and why.
    Check {
        email: String,
        permission: String,
        /// The caller's address (for network conditions).
        #[arg(long)]
        ip: Option<std::net::IpAddr>,
        /// The session's channel (for channel conditions).
        #[arg(long)]
        channel: Option<String>,
        /// The sign-in's class (for acr conditions).
        #[arg(long)]
        acr: Option<String>,
        /// When: RFC 3339 or Unix seconds (for time windows and expiring assignments);
        /// now when absent.
        #[arg(long, value_name = "T", value_parser = parse_instant)]
        at: Option<i64>,
        #[arg(long)]
        json: bool,
    },
}

fn parse_condition(text: &str) -> Result<(String, Condition), String> {
    let (permission, json) = text
        .split_once('=')
        .ok_or_else(|| "expected PERMISSION={\"networks\": [...], ...}".to_owned())?;
    let condition = serde_json::from_str(json).map_err(|e| format!("the condition of {permission}: {e}"))?;
    Ok((permission.to_owned(), condition))
}

fn parse_condition_or_none(text: &str) -> Result<Option<(String, Condition)>, String> {
    if text.is_empty() {
        return Ok(None);
    }
    parse_condition(text).map(Some)
}

/// A list flag given once empty (`--permission ''`) means an empty list.
fn list(values: Vec<String>) -> Vec<String> {
    values.into_iter().filter(|v| !v.is_empty()).collect()
}

fn print_role(role: &RoleView, json: bool) -> CmdResult {
    if json {
        println!("{}", serde_json::to_string_pretty(role)?);
        return Ok(());
    }
    println!("name                   {}", role.name);
    println!("description            {}", role.description);
    println!("inherits               {}", role.parents.join(" "));
    println!("permissions            {}", role.permissions.join(" "));
    println!("effective_permissions  {}", role.effective_permissions.join(" "));
    for (permission, condition) in &role.conditions {
        println!(
            "condition              {permission} {}",
            serde_json::to_string(condition)?
        );
    }
    Ok(())
}

pub async fn role(config: Config, command: RoleCommand) -> CmdResult {
    let node = tessera_web::start(config).await?;
    let authz = &node.state().authz;
    let context = RequestContext::default();
    match command {
        RoleCommand::Create {
            name,
            parents,
            permissions,
            conditions,
            description,
        } => {
            let spec = RoleSpec {
                description,
                permissions: list(permissions),
                parents: list(parents),
                conditions: conditions.into_iter().collect(),
            };
            let role = authz.put_role(&name, spec, true, OPERATOR, &context).await?;
            print_role(&role, false)?;
        }
        RoleCommand::Update {
            name,
            parents,
            permissions,
            conditions,
            description,
        } => {
            let current = authz.role(&name).await?;
            let conditions: BTreeMap<String, Condition> = match conditions {
                Some(given) => given.into_iter().flatten().collect(),
                None => current.conditions,
            };
            let spec = RoleSpec {
                description: description.unwrap_or(current.description),
                permissions: permissions.map_or(current.permissions, list),
                parents: parents.map_or(current.parents, list),
                conditions,
            };
            let role = authz.put_role(&name, spec, false, OPERATOR, &context).await?;
            print_role(&role, false)?;
        }
        RoleCommand::List { json } => {
            let roles = authz.roles().await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&roles)?);
            } else if roles.is_empty() {
                println!("no roles");
            } else {
                println!("{:<24} {:<24} PERMISSIONS (EFFECTIVE)", "NAME", "INHERITS");
                for role in roles {
                    println!(
                        "{:<24} {:<24} {}",
                        role.name,
                        role.parents.join(","),
                        role.effective_permissions.join(" ")
                    );
                }
            }
        }
        RoleCommand::Show { name, json } => print_role(&authz.role(&name).await?, json)?,
        RoleCommand::Delete { name } => {
            authz.delete_role(&name, OPERATOR, &context).await?;
            println!("deleted role {name}");
        }
    }
    Ok(())
}

pub async fn sod(config: Config, command: SodCommand) -> CmdResult {
    let node = tessera_web::start(config).await?;
    let authz = &node.state().authz;
    let context = RequestContext::default();
    match command {
        SodCommand::Add { roles, dynamic } => {
            let rule = authz.add_sod(&roles, dynamic, OPERATOR, &context).await?;
            print_rule(&rule);
        }
        SodCommand::List { json } => {
            let rules = authz.sod().await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&rules)?);
            } else if rules.is_empty() {
                println!("no rules");
            } else {
                for rule in &rules {
                    print_rule(rule);
                }
            }
        }
        SodCommand::Remove { id } => {
            authz.remove_sod(&id, OPERATOR, &context).await?;
            println!("removed rule {id}");
        }
    }
    Ok(())
}

fn print_rule(rule: &tessera_idp::authz::SodView) {
    let kind = if rule.dynamic { "dynamic" } else { "static" };
    println!("{}  {kind}  {}", rule.id, rule.roles.join(" "));
}

pub async fn authz(config: Config, command: AuthzCommand) -> CmdResult {
    let node = tessera_web::start(config).await?;
    let AuthzCommand::Check {
        email,
        permission,
        ip,
        channel,
        acr,
        at,
        json,
    } = command;
    let situation = Situation {
        ip,
        channel: channel.as_deref(),
        acr: acr.as_deref(),
        at: Some(at.unwrap_or_else(|| node.state().clock.now())),
    };
    let user = node
        .state()
        .accounts
        .user_by_email(&email)
        .await?
        .ok_or("no such user")?;
    let decision = node.state().authz.decide(&user, &permission, &situation).await?;
    if json {
        println!("{}", serde_json::to_string_pretty(&decision)?);
    } else {
        println!(
            "{}: {}",
            if decision.allowed { "allow" } else { "deny" },
            decision.reason
        );
    }
    Ok(())
}

/// The terms of `tessera user grant`: `--channel`s, `--until`, `--condition`.
pub fn terms(
    channels: Vec<String>,
    until: Option<i64>,
    condition: Option<&str>,
) -> Result<AssignmentTerms, Box<dyn std::error::Error>> {
    let mut condition: Option<Condition> = condition
        .map(serde_json::from_str)
        .transpose()
        .map_err(|e| format!("--condition: {e}"))?;
    if !channels.is_empty() {
        condition.get_or_insert_with(Condition::default).channels = channels;
    }
    Ok(AssignmentTerms { until, condition })
}

/// `tessera user grant EMAIL ROLE` (with `terms`) and `tessera user revoke-role EMAIL ROLE`
/// (`None`).
pub async fn grant_or_revoke(
    accounts: &Accounts,
    email: &str,
    role: &str,
    terms: Option<AssignmentTerms>,
    context: &RequestContext,
) -> CmdResult {
    let user = accounts.user_by_email(email).await?.ok_or("no such user")?;
    let user = match terms {
        Some(terms) => {
            accounts
                .grant_role(&user.id, role, terms, OPERATOR, context)
                .await?
        }
        None => accounts.revoke_role(&user.id, role, OPERATOR, context).await?,
    };
    println!("{}  roles: {}", user.email, user.roles.join(" "));
    for (role, terms) in tessera_idp::authz::read_terms(&user.role_terms) {
        println!("  {role}: {}", serde_json::to_string(&terms)?);
    }
    Ok(())
}
