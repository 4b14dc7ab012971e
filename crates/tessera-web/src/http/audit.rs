//! `GET /admin/audit`: the audit trail, newest first, for callers of the admin API (a
//! client-credentials token with scope `tessera:admin`, checked as for `/admin/clients`).
//!
//! Parameters, all optional: `user` (the subject), `type` (the event, e.g. `login.failed`),
//! `since` (unix seconds, inclusive), `until` (unix seconds, exclusive), `limit` (1–500,
//! default 100) and `cursor` (the `next_cursor` of the previous page). An unknown, repeated
//! or malformed parameter is a 400 problem document naming it. The answer is
//! `{"events": […], "next_cursor": "…" | null}`; `null` means there is nothing older.

use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde_json::{json, Value};
use tessera_store::durable::{AuditQuery, AuditStore as _};

use super::admin::{admin, no_store, AdminError};
use super::paging::{invalid, next_page, parameters, PageSize};
use crate::error::ApiError;
use tessera_idp::audit::record_json;
use tessera_idp::state::AppState;

/// Records per page when `limit` is not given, and the most one page holds.
const EVENTS_PER_PAGE: PageSize = PageSize {
    default: 100,
    max: 500,
};

/// `GET /admin/audit`
#[utoipa::path(
    get,
    path = "/admin/audit",
    tag = "audit",
    summary = "Read the audit trail",
    operation_id = "listAuditEvents",
    description = "Newest first, one page at a time.",
    params(
        ("user" = Option<String>, Query, description = "Only events about this subject."),
        ("type" = Option<String>, Query, description = "Only this event, e.g. `login.failed`."),
        ("since" = Option<i64>, Query, description = "From this time (unix seconds, inclusive).", minimum = 0),
        ("until" = Option<i64>, Query, description = "Before this time (unix seconds, exclusive).", minimum = 0),
        ("limit" = Option<u32>, Query, description = "Events per page, 1–500 (default 100).", minimum = 1, maximum = 500),
        ("cursor" = Option<String>, Query, description = "The `next_cursor` of the previous page."),
    ),
    responses(
        (status = 200, description = "A page of events", body = super::openapi::AuditPage),
        (status = 400, description = "A parameter is unknown, repeated or malformed"),
    ),
)]
pub async fn list(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Result<Response, AdminError> {
    admin(&state, &headers).await?;
    let (mut query, limit) = parse(query.as_deref().unwrap_or(""))?;
    // One more than asked tells whether an older page exists.
    query.limit = limit + 1;
    let mut records = state.db.audit_records(&query).await?;
    let next_cursor = next_page(&mut records, limit, |r| r.id.to_string());
    let events: Vec<Value> = records.iter().map(record_json).collect();
    Ok(no_store(
        StatusCode::OK,
        json!({ "events": events, "next_cursor": next_cursor }),
    ))
}

/// The query string as a store query and a page size.
fn parse(text: &str) -> Result<(AuditQuery, u32), ApiError> {
    let mut query = AuditQuery::default();
    let mut limit = EVENTS_PER_PAGE.default;
    let names = ["user", "type", "since", "until", "cursor", "limit"];
    for (name, value) in parameters(text, &names)? {
        match name {
            "user" => {
                if value.len() > 255 {
                    return Err(invalid("user", "is longer than 255 bytes"));
                }
                // No subject holds one, and PostgreSQL refuses a NUL byte in text outright.
                if value.chars().any(char::is_control) {
                    return Err(invalid("user", "contains a control character"));
                }
                query.subject = Some(value.into_owned());
            }
            "type" => {
                let valid = value.len() <= 64
                    && value
                        .bytes()
                        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'_');
                if !valid {
                    return Err(invalid(
                        "type",
                        "must be an event name such as login.failed (a-z, 0-9, '.', '_')",
                    ));
                }
                query.event = Some(value.into_owned());
            }
            "since" => query.since = Some(unix_seconds("since", &value)?),
            "until" => query.until = Some(unix_seconds("until", &value)?),
            "cursor" => {
                let id = value
                    .parse::<i64>()
                    .ok()
                    .filter(|id| *id > 0)
                    .ok_or_else(|| invalid("cursor", "must be the next_cursor of a previous page"))?;
                query.before_id = Some(id);
            }
            _ => limit = EVENTS_PER_PAGE.parse(&value)?,
        }
    }
    if let (Some(since), Some(until)) = (query.since, query.until) {
        if since >= until {
            return Err(invalid("until", "must be later than since"));
        }
    }
    Ok((query, limit))
}

fn unix_seconds(parameter: &str, value: &str) -> Result<i64, ApiError> {
    value
        .parse::<i64>()
        .ok()
        .filter(|t| *t >= 0)
        .ok_or_else(|| invalid(parameter, "must be a time in unix seconds"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn detail(text: &str) -> String {
        parse(text)
            .unwrap_err()
            .problem()
            .detail
            .clone()
            .unwrap_or_default()
    }

    #[test]
    fn parameters_become_a_store_query() {
        let (query, limit) = parse("user=u-1&type=login.failed&since=10&until=20&cursor=7&limit=5").unwrap();
        assert_eq!(query.subject.as_deref(), Some("u-1"));
        assert_eq!(query.event.as_deref(), Some("login.failed"));
        assert_eq!(
            (query.since, query.until, query.before_id),
            (Some(10), Some(20), Some(7))
        );
        assert_eq!(limit, 5);
        let (query, limit) = parse("user=&type=").unwrap();
        assert!(query.subject.is_none() && query.event.is_none());
        assert_eq!(limit, EVENTS_PER_PAGE.default);
    }

    #[test]
    fn bad_parameters_are_named() {
        assert!(detail("limit=0").starts_with("limit:"));
        assert!(detail("limit=501").starts_with("limit:"));
        assert!(detail("limit=x").starts_with("limit:"));
        assert!(detail("cursor=-3").starts_with("cursor:"));
        assert!(detail("since=yesterday").starts_with("since:"));
        assert!(detail("since=20&until=10").starts_with("until:"));
        assert!(detail("type=DROP%20TABLE").starts_with("type:"));
        assert!(detail("user=a&user=b").starts_with("user:"));
        assert!(detail("subject=a").starts_with("subject:"));
        assert!(detail("user=a%00b").starts_with("user:"));
    }
}
