//! The query strings and pages of the admin API's list endpoints (`GET /admin/users`,
//! `GET /admin/audit`), one way for all: every parameter at most once, an empty one is no
//! filter, an unknown non-empty one is named with the list of known ones; `limit` within the
//! endpoint's [`PageSize`]; one row more than asked tells whether a next page exists.

use std::borrow::Cow;

use serde_json::Value;

use crate::error::ApiError;

/// 400 naming the query parameter.
pub(super) fn invalid(parameter: &str, reason: &str) -> ApiError {
    ApiError::bad_request(format!("{parameter}: {reason}")).extension("parameter", Value::from(parameter))
}

/// The non-empty parameters of `query` (each of `names`, at most once), in order.
pub(super) fn parameters<'a>(
    query: &'a str,
    names: &[&'static str],
) -> Result<Vec<(&'static str, Cow<'a, str>)>, ApiError> {
    let mut seen: Vec<Cow<'a, str>> = Vec::new();
    let mut found = Vec::new();
    for (name, value) in url::form_urlencoded::parse(query.as_bytes()) {
        if seen.contains(&name) {
            return Err(invalid(&name, "is repeated"));
        }
        seen.push(name.clone());
        // An empty field (a form left blank) is no filter, whatever its name.
        if value.is_empty() {
            continue;
        }
        let Some(known) = names.iter().find(|known| **known == name) else {
            return Err(invalid(
                &name,
                &format!("is not a parameter of this endpoint ({})", names.join(", ")),
            ));
        };
        found.push((*known, value));
    }
    Ok(found)
}

/// How many rows a page of an endpoint holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct PageSize {
    /// Without `limit`.
    pub default: u32,
    /// The largest `limit`.
    pub max: u32,
}

impl PageSize {
    /// The `limit` parameter: a whole number from 1 to `max`.
    pub(super) fn parse(self, value: &str) -> Result<u32, ApiError> {
        value
            .parse::<u32>()
            .ok()
            .filter(|n| (1..=self.max).contains(n))
            .ok_or_else(|| invalid("limit", &format!("must be a whole number from 1 to {}", self.max)))
    }
}

/// Cuts `rows`, fetched with `limit + 1`, to `limit`; the cursor of the next page (from the
/// last row kept) when there is one.
pub(super) fn next_page<T>(
    rows: &mut Vec<T>,
    limit: u32,
    cursor: impl FnOnce(&T) -> String,
) -> Option<String> {
    let limit = limit as usize;
    let more = rows.len() > limit;
    rows.truncate(limit);
    more.then(|| rows.last().map(cursor)).flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn detail(err: ApiError) -> String {
        err.problem().detail.clone().unwrap_or_default()
    }

    #[test]
    fn parameters_are_named_once_and_empty_ones_are_no_filter() {
        let found = parameters("a=1&b=&c=x%20y", &["a", "b", "c"]).unwrap();
        assert_eq!(found, vec![("a", Cow::from("1")), ("c", Cow::from("x y"))]);
        assert_eq!(
            detail(parameters("a=1&a=2", &["a"]).unwrap_err()),
            "a: is repeated"
        );
        assert_eq!(
            detail(parameters("z=1", &["a", "b"]).unwrap_err()),
            "z: is not a parameter of this endpoint (a, b)"
        );
        assert!(parameters("", &["a"]).unwrap().is_empty());
        assert!(parameters("z=", &["a"]).unwrap().is_empty());
    }

    #[test]
    fn limits_are_bounded() {
        let size = PageSize { default: 10, max: 20 };
        assert_eq!(size.parse("20").unwrap(), 20);
        for bad in ["0", "21", "-1", "x", "1.5"] {
            assert_eq!(
                detail(size.parse(bad).unwrap_err()),
                "limit: must be a whole number from 1 to 20",
                "{bad}"
            );
        }
    }

    #[test]
    fn one_row_more_than_asked_means_a_next_page() {
        let mut rows = vec![1, 2, 3];
        assert_eq!(next_page(&mut rows, 2, |r| r.to_string()), Some("2".to_owned()));
        assert_eq!(rows, [1, 2]);
        let mut rows = vec![1, 2];
        assert_eq!(next_page(&mut rows, 2, |r| r.to_string()), None);
        assert_eq!(rows, [1, 2]);
        let mut rows: Vec<i32> = Vec::new();
        assert_eq!(next_page(&mut rows, 2, |r| r.to_string()), None);
    }
}
