//! Recording audit events: one append-only row per event in the durable store, the same
//! event as a structured log line (target `audit`) for log pipelines, and a count in
//! `tessera_audit_events_total{event,outcome}` (see [`crate::telemetry`]). Never a secret.
//!
//! Rows are written by group commit: the events recorded while one write is in flight go
//! to the store together, in one `INSERT` (one transaction), and every [`Auditor::record`]
//! returns only once the batch holding its event is committed. A request therefore answers
//! after its audit row is in the database, as before, so a crash loses no event of an
//! answered request; concurrent requests share the cost of one write instead of queueing
//! for one write each.

use std::sync::{Arc, Mutex};

use serde_json::{json, Value};
use tessera_store::durable::{AuditRecord, AuditStore, MAX_AUDIT_BATCH};
use tokio::sync::{mpsc, oneshot};

use crate::clock::Clock;

/// Who sent a request, as far as this node can tell.
#[derive(Debug, Clone, Default)]
pub struct RequestContext {
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub request_id: Option<String>,
}

/// One event, before it is stamped with time and request facts.
#[derive(Debug, Clone, Default)]
pub struct AuditEvent {
    pub event: &'static str,
    pub outcome: &'static str,
    pub actor: Option<String>,
    pub subject: Option<String>,
    pub session_id: Option<String>,
    pub client_id: Option<String>,
    pub detail: Option<Value>,
}

impl AuditEvent {
    pub fn new(event: &'static str, outcome: &'static str) -> Self {
        AuditEvent {
            event,
            outcome,
            ..AuditEvent::default()
        }
    }

    pub fn actor(mut self, actor: impl Into<String>) -> Self {
        self.actor = Some(actor.into());
        self
    }

    pub fn subject(mut self, subject: impl Into<String>) -> Self {
        self.subject = Some(subject.into());
        self
    }

    pub fn session(mut self, session_id: impl Into<String>) -> Self {
        self.session_id = Some(session_id.into());
        self
    }

    pub fn client(mut self, client_id: impl Into<String>) -> Self {
        self.client_id = Some(client_id.into());
        self
    }

    pub fn detail(mut self, detail: Value) -> Self {
        self.detail = Some(detail);
        self
    }
}

#[derive(Clone)]
pub struct Auditor {
    store: Arc<dyn AuditStore>,
    clock: Arc<dyn Clock>,
    commits: Arc<GroupCommit>,
}

/// An event waiting for its batch, and who to tell once the batch is committed.
type Pending = (AuditRecord, oneshot::Sender<()>);

/// Events queued before the writer takes them; past this, [`Auditor::record`] waits.
const QUEUE_DEPTH: usize = 4 * MAX_AUDIT_BATCH;

/// The queue of the writer task. The task is started by the first event (an [`Auditor`]
/// is built before the runtime serves), and again if the runtime it ran on has ended.
#[derive(Default)]
struct GroupCommit {
    queue: Mutex<Option<mpsc::Sender<Pending>>>,
}

impl GroupCommit {
    /// Events queued and not yet taken by the writer (for tests).
    #[cfg(test)]
    fn queued(&self) -> usize {
        let queue = self.queue.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        queue.as_ref().map_or(0, |s| s.max_capacity() - s.capacity())
    }

    fn sender(&self, store: &Arc<dyn AuditStore>) -> mpsc::Sender<Pending> {
        let mut queue = self.queue.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        match queue.as_ref() {
            Some(sender) if !sender.is_closed() => sender.clone(),
            _ => {
                let (sender, receiver) = mpsc::channel(QUEUE_DEPTH);
                tokio::spawn(write_batches(store.clone(), receiver));
                *queue = Some(sender.clone());
                sender
            }
        }
    }
}

/// The writer: takes whatever has queued (up to [`MAX_AUDIT_BATCH`] events), writes it in
/// one statement, then releases the callers. Events that queue meanwhile form the next batch.
async fn write_batches(store: Arc<dyn AuditStore>, mut receiver: mpsc::Receiver<Pending>) {
    let mut batch: Vec<Pending> = Vec::with_capacity(MAX_AUDIT_BATCH);
    let mut records: Vec<AuditRecord> = Vec::with_capacity(MAX_AUDIT_BATCH);
    while receiver.recv_many(&mut batch, MAX_AUDIT_BATCH).await > 0 {
        records.clear();
        records.extend(batch.iter().map(|(record, _)| record.clone()));
        write(store.as_ref(), &records).await;
        for (_, done) in batch.drain(..) {
            let _ = done.send(());
        }
    }
}

/// Writes `records` in one transaction; if that fails (one value the database refuses, or
/// the database itself), each record on its own, so one bad row does not lose the others.
async fn write(store: &dyn AuditStore, records: &[AuditRecord]) {
    let Err(err) = store.record_audits(records).await else {
        return;
    };
    tracing::debug!(error = %err, records = records.len(), "audit batch failed; writing one by one");
    for record in records {
        if let Err(err) = store.record_audit(record).await {
            tracing::error!(error = %err, event = %record.event, "cannot write audit record");
        }
    }
}

impl Auditor {
    pub fn new(store: Arc<dyn AuditStore>, clock: Arc<dyn Clock>) -> Self {
        Auditor {
            store,
            clock,
            commits: Arc::default(),
        }
    }

    /// Records `event`, and returns once it is committed (with the other events of its
    /// batch). A failure to write is logged, not returned: the action it describes has
    /// already happened.
    pub async fn record(&self, context: &RequestContext, event: AuditEvent) {
        crate::telemetry::audit_event(event.event, event.outcome);
        let record = AuditRecord {
            id: 0,
            at: self.clock.now(),
            event: event.event.to_owned(),
            actor: event.actor,
            subject: event.subject,
            session_id: event.session_id,
            client_id: event.client_id,
            ip: context.ip.clone(),
            user_agent: context.user_agent.clone(),
            outcome: event.outcome.to_owned(),
            request_id: context.request_id.clone(),
            detail: event.detail.map(|d| d.to_string()),
        };
        tracing::info!(
            target: "audit",
            event = %record.event,
            outcome = %record.outcome,
            actor = record.actor.as_deref().unwrap_or("-"),
            subject = record.subject.as_deref().unwrap_or("-"),
            session_id = record.session_id.as_deref().unwrap_or("-"),
            client_id = record.client_id.as_deref().unwrap_or("-"),
            ip = record.ip.as_deref().unwrap_or("-"),
            detail = record.detail.as_deref().unwrap_or("-"),
            "audit"
        );
        let (done, committed) = oneshot::channel();
        match self.commits.sender(&self.store).send((record, done)).await {
            Ok(()) => {
                // The writer answers after the commit; it only drops the answer if its
                // runtime ends mid-batch, and then this task is ending too.
                let _ = committed.await;
            }
            // The writer's runtime ended between the check and the send: write directly.
            Err(mpsc::error::SendError((record, _))) => write(self.store.as_ref(), &[record]).await,
        }
    }
}

/// An audit record as JSON, the one shape of `GET /admin/audit` and `tessera audit tail
/// --json`: every column, `at` in unix seconds, `detail` as the JSON object it was recorded
/// as (or `null`).
pub fn record_json(record: &AuditRecord) -> Value {
    let detail = record
        .detail
        .as_deref()
        .map(|text| serde_json::from_str(text).unwrap_or_else(|_| Value::from(text)));
    json!({
        "id": record.id,
        "at": record.at,
        "event": record.event,
        "outcome": record.outcome,
        "actor": record.actor,
        "subject": record.subject,
        "session_id": record.session_id,
        "client_id": record.client_id,
        "ip": record.ip,
        "user_agent": record.user_agent,
        "request_id": record.request_id,
        "detail": detail,
    })
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use async_trait::async_trait;
    use tessera_store::durable::{AuditQuery, ConnectSettings, SqlStore};
    use tessera_store::StoreError;
    use tokio::sync::Semaphore;

    use super::*;
    use crate::clock::SystemClock;

    /// The real SQLite store, with the batches it was given counted and the first one held
    /// until the test lets it go.
    struct Observed {
        inner: SqlStore,
        batches: AtomicUsize,
        first: Semaphore,
    }

    #[async_trait]
    impl AuditStore for Observed {
        async fn record_audit(&self, record: &AuditRecord) -> Result<i64, StoreError> {
            self.inner.record_audit(record).await
        }
        async fn record_audits(&self, records: &[AuditRecord]) -> Result<(), StoreError> {
            if self.batches.fetch_add(1, Ordering::SeqCst) == 0 {
                let _ = self.first.acquire().await;
            }
            self.inner.record_audits(records).await
        }
        async fn audit_records(&self, query: &AuditQuery) -> Result<Vec<AuditRecord>, StoreError> {
            self.inner.audit_records(query).await
        }
        async fn count_audit_events(
            &self,
            event: &str,
            since: i64,
            until: i64,
            bucket: i64,
        ) -> Result<Vec<u64>, StoreError> {
            self.inner.count_audit_events(event, since, until, bucket).await
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn events_recorded_meanwhile_share_one_commit_and_none_returns_before_it() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}?mode=rwc", dir.path().join("a.db").display());
        let inner = SqlStore::connect(&ConnectSettings::new(url)).await.unwrap();
        inner.migrate().await.unwrap();
        let store = Arc::new(Observed {
            inner,
            batches: AtomicUsize::new(0),
            first: Semaphore::new(0),
        });
        let auditor = Auditor::new(store.clone(), Arc::new(SystemClock));
        let context = RequestContext::default();
        let record = |n: usize| {
            let auditor = auditor.clone();
            let context = context.clone();
            tokio::spawn(async move {
                auditor
                    .record(
                        &context,
                        AuditEvent::new("token.issued", "success").actor(format!("client:c{n}")),
                    )
                    .await;
            })
        };
        // The first event's write is held; 99 more queue behind it.
        let first = record(0);
        while store.batches.load(Ordering::SeqCst) == 0 {
            tokio::task::yield_now().await;
        }
        let rest: Vec<_> = (1..100).map(record).collect();
        while auditor.commits.queued() < 99 {
            tokio::task::yield_now().await;
        }
        // Nobody has been answered: nothing is committed yet.
        assert!(!first.is_finished() && rest.iter().all(|task| !task.is_finished()));
        let stored = store.audit_records(&AuditQuery::default()).await.unwrap();
        assert!(stored.is_empty());
        store.first.add_permits(1);
        first.await.unwrap();
        for task in rest {
            task.await.unwrap();
        }
        // Every answered event is in the database; the 99 went in one more batch.
        let stored = store
            .audit_records(&AuditQuery {
                limit: 1000,
                ..AuditQuery::default()
            })
            .await
            .unwrap();
        assert_eq!(stored.len(), 100);
        assert_eq!(store.batches.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn a_batch_the_database_refuses_is_written_one_by_one() {
        // A store whose batches always fail: each event still lands on its own.
        struct NoBatches(SqlStore);
        #[async_trait]
        impl AuditStore for NoBatches {
            async fn record_audit(&self, record: &AuditRecord) -> Result<i64, StoreError> {
                self.0.record_audit(record).await
            }
            async fn record_audits(&self, _: &[AuditRecord]) -> Result<(), StoreError> {
                Err(StoreError::InvalidInput("refused".to_owned()))
            }
            async fn audit_records(&self, query: &AuditQuery) -> Result<Vec<AuditRecord>, StoreError> {
                self.0.audit_records(query).await
            }
            async fn count_audit_events(
                &self,
                event: &str,
                since: i64,
                until: i64,
                bucket: i64,
            ) -> Result<Vec<u64>, StoreError> {
                self.0.count_audit_events(event, since, until, bucket).await
            }
        }
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}?mode=rwc", dir.path().join("a.db").display());
        let inner = SqlStore::connect(&ConnectSettings::new(url)).await.unwrap();
        inner.migrate().await.unwrap();
        let store = Arc::new(NoBatches(inner));
        let auditor = Auditor::new(store.clone(), Arc::new(SystemClock));
        let context = RequestContext::default();
        let tasks: Vec<_> = (0..20)
            .map(|_| {
                let (auditor, context) = (auditor.clone(), context.clone());
                tokio::spawn(async move {
                    auditor
                        .record(&context, AuditEvent::new("login.failed", "failure"))
                        .await
                })
            })
            .collect();
        for task in tasks {
            task.await.unwrap();
        }
        let stored = store.audit_records(&AuditQuery::default()).await.unwrap();
        assert_eq!(stored.len(), 20);
    }
}
