//! Recording audit events: one append-only row per event in the durable store, the same
//! event as a structured log line (target `audit`) for log pipelines, and a count in
//! `tessera_audit_events_total{event,outcome}` (see [`crate::telemetry`]). Never a secret.

use std::sync::Arc;

use serde_json::{json, Value};
use tessera_store::durable::{AuditRecord, AuditStore};

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
}

impl Auditor {
    pub fn new(store: Arc<dyn AuditStore>, clock: Arc<dyn Clock>) -> Self {
        Auditor { store, clock }
    }

    /// Records `event`. A failure to write is logged, not returned: the action it describes
    /// has already happened.
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
        if let Err(err) = self.store.record_audit(&record).await {
            tracing::error!(error = %err, event = %record.event, "cannot write audit record");
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
