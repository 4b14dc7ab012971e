//! The user's profile: the OpenID Connect standard claims beyond e-mail (OIDC Core §5.1 —
//! names, picture, birthdate, zoneinfo, locale, address, phone number), edited by the user
//! through the JSON API and by the operator through the admin API, released to clients by
//! scope (see [`crate::oidc::claims`]).
//!
//! An edit is a JSON merge patch (RFC 7396) whose members are the claim names: a member
//! set to a value replaces it, `null` removes it, an absent member stays. Every value is
//! checked before anything is stored; one bad member refuses the whole edit. Only the
//! operator vouches for a phone number (`phone_number_verified`); a user who changes their
//! number loses the verification.

use serde_json::{Map, Value};
use tessera_store::durable::UserRecord;

use super::{AccountError, Accounts};
use crate::audit::{AuditEvent, RequestContext};

/// Who edits a profile: what they may set differs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Editor {
    /// The user themselves (first-party JSON API).
    User,
    /// The operator (admin API): may also vouch for the phone number.
    Operator,
}

/// Why a profile edit was refused: the member and a fixed reason.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {reason}")]
pub struct InvalidProfile {
    pub field: String,
    pub reason: &'static str,
}

/// The kind of value a profile member holds.
#[derive(Debug, Clone, Copy)]
enum Kind {
    /// Free text of at most this many characters, on one line.
    Text(usize),
    /// An absolute `https`/`http` URL without credentials.
    Url,
    /// `YYYY-MM-DD`, `0000-MM-DD` (year withheld) or `YYYY` (OIDC Core §5.1).
    Birthdate,
    /// A time zone of the IANA database (`Europe/Paris`).
    Zoneinfo,
    /// A BCP 47 language tag (`en-US`); stored as the user's locale.
    Locale,
    /// E.164 (`+821012345678`), optionally with an RFC 3966 extension (`;ext=123`).
    Phone,
    /// Set by the operator only.
    Verified,
    /// The structured `address` claim (OIDC Core §5.1.1).
    Address,
}

/// The editable members and what each holds. `updated_at` is kept by the provider.
const MEMBERS: &[(&str, Kind)] = &[
    ("name", Kind::Text(256)),
    ("given_name", Kind::Text(128)),
    ("family_name", Kind::Text(128)),
    ("middle_name", Kind::Text(128)),
    ("nickname", Kind::Text(128)),
    ("preferred_username", Kind::Text(128)),
    ("picture", Kind::Url),
    ("website", Kind::Url),
    ("gender", Kind::Text(64)),
    ("birthdate", Kind::Birthdate),
    ("zoneinfo", Kind::Zoneinfo),
    ("locale", Kind::Locale),
    ("phone_number", Kind::Phone),
    ("phone_number_verified", Kind::Verified),
    ("address", Kind::Address),
];

/// Longest URL accepted for `picture` and `website`.
const MAX_URL: usize = 2048;
/// Longest member of an address but `formatted`, and `formatted`.
const MAX_ADDRESS_PART: usize = 256;
const MAX_ADDRESS_FORMATTED: usize = 1024;
/// Longest language tag (RFC 5646 §4.4.1 recommends supporting 35 characters).
const MAX_LOCALE: usize = 35;
const MAX_ZONEINFO: usize = 64;

/// A checked edit, ready to merge into the stored profile.
#[derive(Debug, Clone, Default)]
pub struct ProfilePatch {
    /// Members of the stored profile to set (`Some`) or remove (`None`).
    members: Vec<(String, Option<Value>)>,
    /// `Some(None)` removes the locale.
    locale: Option<Option<String>>,
}

impl ProfilePatch {
    /// Checks a merge patch from `editor`; the first bad member refuses it all.
    pub fn parse(patch: &Map<String, Value>, editor: Editor) -> Result<Self, InvalidProfile> {
        let mut checked = ProfilePatch::default();
        for (name, value) in patch {
            let kind = MEMBERS
                .iter()
                .find(|(member, _)| member == name)
                .map(|(_, kind)| *kind)
                .ok_or_else(|| invalid(name, "is not an editable profile claim"))?;
            if matches!(kind, Kind::Verified) && editor != Editor::Operator {
                return Err(invalid(name, "only the operator can verify a phone number"));
            }
            let value = match value {
                Value::Null => None,
                value => Some(check(name, kind, value)?),
            };
            if matches!(kind, Kind::Locale) {
                checked.locale = Some(value.and_then(|v| v.as_str().map(str::to_owned)));
            } else {
                checked.members.push((name.clone(), value));
            }
        }
        Ok(checked)
    }

    /// The locale change, if the patch has one (`Some(None)`: removed).
    pub fn locale(&self) -> Option<Option<&str>> {
        self.locale.as_ref().map(Option::as_deref)
    }

    /// The profile after this patch. A new phone number is unverified unless the same
    /// patch verifies it.
    pub fn apply(&self, mut profile: Map<String, Value>) -> Map<String, Value> {
        let number_before = profile.get("phone_number").cloned();
        for (name, value) in &self.members {
            match value {
                Some(value) => profile.insert(name.clone(), value.clone()),
                None => profile.remove(name),
            };
        }
        let verifies = self
            .members
            .iter()
            .any(|(name, _)| name == "phone_number_verified");
        if profile.get("phone_number") != number_before.as_ref() && !verifies {
            profile.remove("phone_number_verified");
        }
        if !profile.contains_key("phone_number") {
            profile.remove("phone_number_verified");
        }
        profile
    }
}

fn invalid(field: &str, reason: &'static str) -> InvalidProfile {
    InvalidProfile {
        field: field.to_owned(),
        reason,
    }
}

/// The value of member `name` of kind `kind`, checked (and normalised where the form is
/// free: an address drops its empty members).
fn check(name: &str, kind: Kind, value: &Value) -> Result<Value, InvalidProfile> {
    if let Kind::Verified = kind {
        return match value {
            Value::Bool(_) => Ok(value.clone()),
            _ => Err(invalid(name, "must be true or false")),
        };
    }
    if let Kind::Address = kind {
        return check_address(value);
    }
    let text = value.as_str().ok_or_else(|| invalid(name, "must be a string"))?;
    if text.trim().is_empty() {
        return Err(invalid(name, "must not be empty (send null to remove it)"));
    }
    let ok = match kind {
        Kind::Text(max) => {
            if text.chars().count() > max {
                return Err(invalid(name, "is too long"));
            }
            !text.chars().any(char::is_control)
        }
        Kind::Url => {
            if text.len() > MAX_URL {
                return Err(invalid(name, "is too long"));
            }
            is_web_url(text)
        }
        Kind::Birthdate => is_birthdate(text),
        Kind::Zoneinfo => {
            let zone = (text.len() <= MAX_ZONEINFO
                && text
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"/_-+".contains(&b)))
            .then(|| jiff::tz::TimeZone::get(text).ok())
            .flatten();
            // The database's own spelling (a lookup ignores case).
            if let Some(name) = zone.as_ref().and_then(|z| z.iana_name()) {
                return Ok(Value::from(name));
            }
            false
        }
        Kind::Locale => is_language_tag(text),
        Kind::Phone => is_e164(text),
        Kind::Verified | Kind::Address => false,
    };
    if !ok {
        return Err(invalid(
            name,
            match kind {
                Kind::Text(_) => "must not contain control characters",
                Kind::Url => "must be an absolute https or http URL without credentials",
                Kind::Birthdate => "must be YYYY-MM-DD, 0000-MM-DD or YYYY",
                Kind::Zoneinfo => "must be a time zone of the IANA database, such as Europe/Paris",
                Kind::Locale => "must be a BCP 47 language tag, such as en-US",
                Kind::Phone => "must be an E.164 number, such as +14155550100 (optionally ;ext=123)",
                Kind::Verified | Kind::Address => "is invalid",
            },
        ));
    }
    Ok(Value::from(text))
}

fn check_address(value: &Value) -> Result<Value, InvalidProfile> {
    let object = value
        .as_object()
        .ok_or_else(|| invalid("address", "must be an object"))?;
    let mut address = Map::new();
    for (member, part) in object {
        let field = format!("address.{member}");
        if !tessera_proto::claims::ADDRESS_MEMBERS.contains(&member.as_str()) {
            return Err(InvalidProfile {
                field,
                reason: "is not a member of an address",
            });
        }
        let text = match part {
            Value::Null => continue,
            Value::String(text) => text,
            _ => {
                return Err(InvalidProfile {
                    field,
                    reason: "must be a string",
                })
            }
        };
        let (max, multiline) = match member.as_str() {
            "formatted" | "street_address" => (MAX_ADDRESS_FORMATTED, true),
            _ => (MAX_ADDRESS_PART, false),
        };
        if text.chars().count() > max {
            return Err(InvalidProfile {
                field,
                reason: "is too long",
            });
        }
        // OIDC Core §5.1.1: the multi-line members separate lines with "\r\n" or "\n".
        if text
            .chars()
            .any(|c| c.is_control() && !(multiline && (c == '\n' || c == '\r')))
        {
            return Err(InvalidProfile {
                field,
                reason: "must not contain control characters",
            });
        }
        if !text.trim().is_empty() {
            address.insert(member.clone(), Value::from(text.as_str()));
        }
    }
    if address.is_empty() {
        return Err(invalid("address", "has no member (send null to remove it)"));
    }
    Ok(Value::Object(address))
}

fn is_web_url(text: &str) -> bool {
    match url::Url::parse(text) {
        Ok(url) => {
            matches!(url.scheme(), "https" | "http")
                && url.host().is_some()
                && url.username().is_empty()
                && url.password().is_none()
        }
        Err(_) => false,
    }
}

/// OIDC Core §5.1: ISO 8601 `YYYY-MM-DD`; `0000` as the year when it is withheld; or the
/// year alone. The date must exist (a withheld year allows 29 February).
fn is_birthdate(text: &str) -> bool {
    let digits = |part: &str, len: usize| part.len() == len && part.bytes().all(|b| b.is_ascii_digit());
    let parts: Vec<&str> = text.split('-').collect();
    match parts.as_slice() {
        [year] => digits(year, 4) && *year != "0000",
        [year, month, day] if digits(year, 4) && digits(month, 2) && digits(day, 2) => {
            let (Ok(year), Ok(month), Ok(day)) =
                (year.parse::<i16>(), month.parse::<i8>(), day.parse::<i8>())
            else {
                return false;
            };
            // Year 0000 stands for "not given": check the day in a leap year.
            let year = if year == 0 { 2000 } else { year };
            jiff::civil::Date::new(year, month, day).is_ok()
        }
        _ => false,
    }
}

/// The shape of a BCP 47 tag (RFC 5646 §2.1): a 2–3 or 5–8 letter language, then subtags
/// of 1–8 letters or digits, separated by hyphens.
fn is_language_tag(text: &str) -> bool {
    if text.len() > MAX_LOCALE {
        return false;
    }
    let mut subtags = text.split('-');
    let language_ok = subtags
        .next()
        .is_some_and(|l| matches!(l.len(), 2 | 3 | 5..=8) && l.bytes().all(|b| b.is_ascii_alphabetic()));
    language_ok && subtags.all(|s| (1..=8).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_alphanumeric()))
}

/// E.164: `+`, a country code not starting with 0, at most 15 digits in all; OIDC Core
/// §5.1 recommends RFC 3966's `;ext=` for an extension.
fn is_e164(text: &str) -> bool {
    let (number, extension) = match text.split_once(";ext=") {
        Some((number, extension)) => (number, Some(extension)),
        None => (text, None),
    };
    let Some(digits) = number.strip_prefix('+') else {
        return false;
    };
    (7..=15).contains(&digits.len())
        && digits.bytes().all(|b| b.is_ascii_digit())
        && !digits.starts_with('0')
        && extension.is_none_or(|e| (1..=10).contains(&e.len()) && e.bytes().all(|b| b.is_ascii_digit()))
}

/// A user's profile as the JSON API and the admin API show it: the stored claims, the
/// locale and when the user last changed.
pub fn view(user: &UserRecord, profile: &Map<String, Value>) -> Map<String, Value> {
    let mut view = profile.clone();
    if let Some(locale) = &user.locale {
        view.insert("locale".to_owned(), Value::from(locale.as_str()));
    }
    view.insert("updated_at".to_owned(), Value::from(user.updated_at));
    view
}

impl Accounts {
    /// The user's stored profile claims (empty when none were set).
    pub async fn profile(&self, user_id: &str) -> Result<Map<String, Value>, AccountError> {
        Ok(self.users.profile(user_id).await?)
    }

    /// Applies a checked edit to the profile of `user_id`, for `actor` (audited with the
    /// names of the members changed, never their values). Returns the user and the new
    /// profile.
    pub async fn update_profile(
        &self,
        user_id: &str,
        patch: &ProfilePatch,
        actor: &str,
        context: &RequestContext,
    ) -> Result<(UserRecord, Map<String, Value>), AccountError> {
        let now = self.clock.now();
        let profile = self
            .users
            .update_profile(user_id, patch.locale(), now, &|current| patch.apply(current))
            .await?
            .ok_or(AccountError::NoSuchUser)?;
        let user = self.users.user(user_id).await?.ok_or(AccountError::NoSuchUser)?;
        let mut changed: Vec<&str> = patch.members.iter().map(|(name, _)| name.as_str()).collect();
        if patch.locale.is_some() {
            changed.push("locale");
        }
        self.audit
            .record(
                context,
                AuditEvent::new("user.profile_updated", "success")
                    .actor(actor)
                    .subject(user_id)
                    .detail(serde_json::json!({ "claims": changed })),
            )
            .await;
        Ok((user, profile))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(patch: Value, editor: Editor) -> Result<ProfilePatch, InvalidProfile> {
        ProfilePatch::parse(patch.as_object().unwrap(), editor)
    }

    fn refused(patch: Value) -> InvalidProfile {
        parse(patch, Editor::User).unwrap_err()
    }

    #[test]
    fn values_are_checked_by_kind() {
        assert!(parse(
            json!({
                "name": "Jane Doe", "given_name": "Jane", "picture": "https://cdn.example/j.png",
                "website": "http://jane.example", "birthdate": "0000-02-29", "zoneinfo": "Asia/Seoul",
                "locale": "ko-KR", "phone_number": "+821012345678;ext=12", "gender": "female",
                "address": { "street_address": "1 Main St\nApt 2", "country": "KR", "region": null },
            }),
            Editor::User
        )
        .is_ok());
        assert_eq!(
            refused(json!({ "picture": "javascript:alert(1)" })).field,
            "picture"
        );
        assert_eq!(
            refused(json!({ "website": "https://u:p@x.example" })).field,
            "website"
        );
        for date in [
            "1990-02-30",
            "1990-13-01",
            "90-01-01",
            "1990/01/01",
            "0000",
            "1990-1-1",
        ] {
            assert_eq!(refused(json!({ "birthdate": date })).field, "birthdate", "{date}");
        }
        for date in ["1990-02-28", "1992", "2000-02-29"] {
            assert!(
                parse(json!({ "birthdate": date }), Editor::User).is_ok(),
                "{date}"
            );
        }
        for zone in ["Mars/Olympus", "../etc/passwd", "Europe/Paris\n"] {
            assert_eq!(refused(json!({ "zoneinfo": zone })).field, "zoneinfo", "{zone}");
        }
        for tag in ["en_US", "e", "en--US", "toolongsubtag-x", "<b>"] {
            assert_eq!(refused(json!({ "locale": tag })).field, "locale", "{tag}");
        }
        for number in [
            "+0123456789",
            "4155550100",
            "+1 415 555 0100",
            "+1234567890123456",
            "+14155550100;ext=",
        ] {
            assert_eq!(
                refused(json!({ "phone_number": number })).field,
                "phone_number",
                "{number}"
            );
        }
        assert_eq!(refused(json!({ "name": "a".repeat(257) })).reason, "is too long");
        assert_eq!(refused(json!({ "name": "a\u{0}b" })).field, "name");
        assert_eq!(refused(json!({ "name": 5 })).reason, "must be a string");
        assert_eq!(refused(json!({ "name": " " })).field, "name");
        assert_eq!(refused(json!({ "email": "x@example.com" })).field, "email");
        assert_eq!(refused(json!({ "updated_at": 1 })).field, "updated_at");
        assert_eq!(
            refused(json!({ "address": { "planet": "Earth" } })).field,
            "address.planet"
        );
        assert_eq!(
            refused(json!({ "address": { "locality": "a\nb" } })).field,
            "address.locality"
        );
        assert_eq!(refused(json!({ "address": {} })).field, "address");
    }

    #[test]
    fn markup_is_data() {
        // Stored as given; JSON encoding escapes it on the way out.
        let patch = parse(json!({ "name": "<script>alert(1)</script>" }), Editor::User).unwrap();
        let profile = patch.apply(Map::new());
        assert_eq!(profile["name"], "<script>alert(1)</script>");
    }

    #[test]
    fn only_the_operator_verifies_and_a_new_number_is_unverified() {
        assert_eq!(
            refused(json!({ "phone_number_verified": true })).field,
            "phone_number_verified"
        );
        let verified = parse(
            json!({ "phone_number": "+14155550100", "phone_number_verified": true }),
            Editor::Operator,
        )
        .unwrap()
        .apply(Map::new());
        assert_eq!(verified["phone_number_verified"], true);
        // The same number again keeps the verification; another number loses it.
        let same = parse(
            json!({ "phone_number": "+14155550100", "name": "J" }),
            Editor::User,
        )
        .unwrap()
        .apply(verified.clone());
        assert_eq!(same["phone_number_verified"], true);
        let other = parse(json!({ "phone_number": "+14155550199" }), Editor::User)
            .unwrap()
            .apply(verified.clone());
        assert!(!other.contains_key("phone_number_verified"));
        let removed = parse(json!({ "phone_number": null }), Editor::User)
            .unwrap()
            .apply(verified);
        assert!(removed.is_empty());
    }

    #[test]
    fn null_removes_and_absent_keeps() {
        let profile = parse(json!({ "name": "A", "nickname": "B" }), Editor::User)
            .unwrap()
            .apply(Map::new());
        let profile = parse(json!({ "nickname": null }), Editor::User)
            .unwrap()
            .apply(profile);
        assert_eq!(Value::Object(profile), json!({ "name": "A" }));
        let patch = parse(json!({ "locale": null }), Editor::User).unwrap();
        assert_eq!(patch.locale(), Some(None));
    }
}
