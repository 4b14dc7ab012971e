//! Roles and separation-of-duty rules: whole-graph snapshots, and changes that commit only
//! while the graph is at the version their checks saw (one winner among racing changes).

use std::sync::Arc;

use tessera_store::durable::{RbacStore, RoleRecord, SodRecord};

use super::fresh;

fn role(name: &str, permissions: &[&str], parents: &[&str], at: i64) -> RoleRecord {
    RoleRecord {
        name: name.to_owned(),
        description: format!("the {name} role — ünïcode"),
        permissions: permissions.iter().map(|p| (*p).to_owned()).collect(),
        parents: parents.iter().map(|p| (*p).to_owned()).collect(),
        conditions: serde_json::json!({ "x:y": { "networks": ["10.0.0.0/8"] } }),
        created_at: at,
        updated_at: at,
    }
}

pub async fn role_graph_changes_commit_only_at_the_version_they_saw(backend: &str) {
    let Some(db) = fresh(backend, true).await else {
        return;
    };
    let s = &db.store;
    let empty = s.rbac().await.unwrap();
    assert_eq!((empty.version, empty.roles.len(), empty.sod.len()), (0, 0, 0));

    assert!(s
        .put_role(&role("member", &["orders:read"], &[], 1_000), 0)
        .await
        .unwrap());
    assert!(s
        .put_role(&role("billing", &["orders:refund"], &["member"], 1_001), 1)
        .await
        .unwrap());
    // A change checked against version 1 comes too late.
    assert!(!s.put_role(&role("stale", &[], &[], 1_002), 1).await.unwrap());
    let snapshot = s.rbac().await.unwrap();
    assert_eq!(snapshot.version, 2);
    assert_eq!(s.rbac_version().await.unwrap(), 2);
    assert_eq!(
        snapshot.roles,
        vec![
            role("billing", &["orders:refund"], &["member"], 1_001),
            role("member", &["orders:read"], &[], 1_000)
        ]
    );

    // Replacing keeps created_at.
    let mut changed = role("member", &["orders:read", "orders:list"], &[], 9_999);
    changed.updated_at = 2_000;
    assert!(s.put_role(&changed, 2).await.unwrap());
    let member = s
        .rbac()
        .await
        .unwrap()
        .roles
        .into_iter()
        .find(|r| r.name == "member")
        .unwrap();
    assert_eq!((member.created_at, member.updated_at), (1_000, 2_000));
    assert_eq!(member.permissions, vec!["orders:read", "orders:list"]);

    let rule = SodRecord {
        id: "sod-1".to_owned(),
        roles: vec!["billing".to_owned(), "member".to_owned()],
        dynamic: true,
        created_at: 2_100,
    };
    assert!(s.put_sod(&rule, 3).await.unwrap());
    assert!(!s.delete_sod("sod-1", 3).await.unwrap(), "stale");
    assert_eq!(s.rbac().await.unwrap().sod, vec![rule]);
    assert!(s.delete_sod("sod-1", 4).await.unwrap());
    assert!(s.delete_role("billing", 5).await.unwrap());

    // Of many changes racing from one snapshot, exactly one commits.
    let version = s.rbac().await.unwrap().version;
    let store = Arc::new(db.store.clone());
    let mut tasks = Vec::new();
    for n in 0..8 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            store
                .put_role(&role(&format!("racer-{n}"), &[], &["member"], 3_000), version)
                .await
                .unwrap()
        }));
    }
    let mut won = 0;
    for task in tasks {
        won += usize::from(task.await.unwrap());
    }
    assert_eq!(won, 1);
    let after = s.rbac().await.unwrap();
    assert_eq!(after.version, version + 1);
    assert_eq!(after.roles.len(), 2);
}
