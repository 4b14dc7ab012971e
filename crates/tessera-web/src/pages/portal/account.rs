//! The account pages (`/account`): what a signed-in user sees of their own account, and the
//! signed-out pages around it. Pure rendering, like the rest of `pages`.

mod forms;
mod security;
mod signed_out;
mod text;

use axum::http::StatusCode;
use tessera_idp::mail::{escape, Locale};

use self::forms::{error_box, form_end, form_start, notice, rules_list, Field, RULES_ID};
use super::{app_document, NavItem, Shell, SignedInShell};
use crate::pages::Page;
pub use forms::{BrokenRule, FormError, PasswordRules};
pub use security::{
    recovery_codes_page, security_page, totp_enrol_page, EventItem, FactorItem, IdentityItem, SecurityError,
    SecurityNotice, SecurityView, TotpEnrolView,
};
pub use signed_out::{
    forgot_done_page, forgot_page, reset_done_page, reset_page, sign_up_done_page, sign_up_page,
    verified_page, verify_email_page, ResetView, SignUpView,
};
pub use text::AccountText;

/// What every signed-in account page is given.
#[derive(Debug, Clone, Copy)]
pub struct Frame<'a> {
    /// This page's path and query.
    pub here: &'a str,
    /// `None`: a page shown signed out.
    pub signed_in: Option<SignedInShell<'a>>,
}

/// The account pages' paths (also the router's).
pub mod path {
    pub const HOME: &str = "/account";
    pub const CALLBACK: &str = "/account/callback";
    pub const SIGN_OUT: &str = "/account/signout";
    pub const LANGUAGE: &str = "/account/language";
    pub const SESSION_STATUS: &str = "/account/session";
    pub const SESSION_EXTEND: &str = "/account/session/extend";
    pub const SESSIONS: &str = tessera_proto::paths::ACCOUNT_SESSIONS_PAGE;
    pub const SESSIONS_END: &str = "/account/sessions/end";
    pub const SESSIONS_END_OTHERS: &str = "/account/sessions/end-others";
    pub const PASSWORD: &str = "/account/password";
    pub const EMAIL: &str = "/account/email";
    pub const EMAIL_CONFIRM: &str = "/account/email/confirm";
    pub const DELETE: &str = "/account/delete";
    pub const SIGN_UP: &str = "/account/signup";
    pub const VERIFY_EMAIL: &str = "/account/verify-email";
    pub const FORGOT: &str = "/account/password/forgot";
    pub const RESET: &str = "/account/password/reset";
    pub const SECURITY: &str = "/account/security";
    pub const SECURITY_RENAME: &str = "/account/security/rename";
    pub const SECURITY_REMOVE: &str = "/account/security/remove";
    pub const SECURITY_TOTP: &str = "/account/security/totp";
    pub const SECURITY_TOTP_CONFIRM: &str = "/account/security/totp/confirm";
    pub const SECURITY_UNLINK: &str = "/account/security/unlink";
}

fn nav(text: &AccountText) -> [NavItem<'static>; 6] {
    [
        NavItem {
            href: path::HOME,
            label: text.nav_overview,
        },
        NavItem {
            href: path::SESSIONS,
            label: text.nav_sessions,
        },
        NavItem {
            href: path::SECURITY,
            label: text.nav_security,
        },
        NavItem {
            href: path::PASSWORD,
            label: text.nav_password,
        },
        NavItem {
            href: path::EMAIL,
            label: text.nav_email,
        },
        NavItem {
            href: path::DELETE,
            label: text.nav_delete,
        },
    ]
}

fn signed_out_nav(text: &AccountText) -> [NavItem<'static>; 3] {
    [
        NavItem {
            href: path::HOME,
            label: text.nav_sign_in,
        },
        NavItem {
            href: path::SIGN_UP,
            label: text.nav_sign_up,
        },
        NavItem {
            href: path::FORGOT,
            label: text.nav_forgot,
        },
    ]
}

fn csrf_of<'a>(frame: &Frame<'a>) -> &'a str {
    frame.signed_in.map(|s| s.csrf).unwrap_or_default()
}

/// One account page: `title` (text) over `body` (HTML), in the account app's frame.
pub(super) fn page(locale: Locale, frame: &Frame<'_>, title: &str, status: StatusCode, body: &str) -> Page {
    let text = AccountText::of(locale);
    let nav = nav(&text);
    let signed_out_nav = signed_out_nav(&text);
    let shell = Shell {
        app_name: text.app_name,
        home: path::HOME,
        here: frame.here,
        nav: if frame.signed_in.is_some() {
            &nav
        } else {
            &signed_out_nav
        },
        nav_label: super::PortalText::of(locale).navigation,
        wide: false,
        signed_in: frame.signed_in,
        language_url: path::LANGUAGE,
    };
    let body = format!("<h1 id=\"page-title\">{}</h1>\n{body}", escape(title));
    app_document(locale, &shell, title, status, &body)
}

/// What the overview shows.
#[derive(Debug, Clone, Copy)]
pub struct HomeView<'a> {
    pub email: &'a str,
    pub email_verified: bool,
    /// Unix seconds.
    pub member_since: i64,
}

/// `GET /account`: who is signed in.
pub fn home_page(locale: Locale, frame: &Frame<'_>, view: &HomeView<'_>) -> Page {
    let text = AccountText::of(locale);
    let verified = if view.email_verified {
        format!(" <span class=\"tag\">{}</span>", escape(text.verified))
    } else {
        format!(" <span class=\"muted\">({})</span>", escape(text.not_verified))
    };
    let body = format!(
        "<dl class=\"facts\">\n<dt>{}</dt>\n<dd>{}{verified}</dd>\n<dt>{}</dt>\n<dd><time datetime=\"{}\">{}</time></dd>\n</dl>\n",
        escape(text.email),
        escape(view.email),
        escape(text.member_since),
        iso_date(view.member_since),
        iso_date(view.member_since),
    );
    page(locale, frame, text.overview_title, StatusCode::OK, &body)
}

/// One session in the list.
#[derive(Debug, Clone, Copy)]
pub struct SessionItem<'a> {
    pub id: &'a str,
    /// The client's name (or id).
    pub application: &'a str,
    pub channel: &'a str,
    /// The user agent the session was started from, as sent.
    pub user_agent: Option<&'a str>,
    pub ip: Option<&'a str>,
    pub created_at: i64,
    pub last_seen_at: i64,
    /// The session of this page.
    pub current: bool,
}

/// What changed before the sessions page was shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionsNotice {
    Ended,
    OthersEnded,
    NoSuchSession,
}

/// At most this many characters of a user agent are shown.
const MAX_AGENT_CHARS: usize = 160;

/// `GET /account/sessions`: every alive session, this one first, each with a form to end it;
/// one form to end all the others.
pub fn sessions_page(
    locale: Locale,
    frame: &Frame<'_>,
    items: &[SessionItem<'_>],
    notice_of: Option<SessionsNotice>,
) -> Page {
    let text = AccountText::of(locale);
    let csrf = csrf_of(frame);
    let mut body = format!("<p class=\"lede\">{}</p>\n", escape(text.sessions_lede));
    match notice_of {
        Some(SessionsNotice::Ended) => body.push_str(&notice(text.session_ended)),
        Some(SessionsNotice::OthersEnded) => body.push_str(&notice(text.others_ended)),
        Some(SessionsNotice::NoSuchSession) => {
            body.push_str(&crate::pages::views::alert(&escape(text.no_such_session)))
        }
        None => {}
    }
    body.push_str("<ul class=\"items\">\n");
    for item in items {
        let agent: String = item
            .user_agent
            .unwrap_or(text.unknown_device)
            .chars()
            .filter(|c| !c.is_control())
            .take(MAX_AGENT_CHARS)
            .collect();
        let heading = if item.current {
            format!(
                "{} <span class=\"tag\">{}</span>",
                escape(&device_summary(item.user_agent, text.unknown_device)),
                escape(text.this_session)
            )
        } else {
            escape(&device_summary(item.user_agent, text.unknown_device))
        };
        body.push_str(&format!(
            "<li>\n<h2>{heading}</h2>\n<dl>\n\
             <dt>{l_device}</dt><dd>{agent}</dd>\n\
             <dt>{l_app}</dt><dd>{app}</dd>\n\
             <dt>{l_channel}</dt><dd>{channel}</dd>\n\
             <dt>{l_ip}</dt><dd>{ip}</dd>\n\
             <dt>{l_created}</dt><dd>{created}</dd>\n\
             <dt>{l_seen}</dt><dd>{seen}</dd>\n</dl>\n",
            l_device = escape(text.device),
            agent = escape(&agent),
            l_app = escape(text.application),
            app = escape(item.application),
            l_channel = escape(text.channel),
            channel = escape(item.channel),
            l_ip = escape(text.ip),
            ip = escape(item.ip.unwrap_or("–")),
            l_created = escape(text.created),
            created = iso_minute(item.created_at),
            l_seen = escape(text.last_seen),
            seen = iso_minute(item.last_seen_at),
        ));
        if !item.current {
            body.push_str(&form_start(path::SESSIONS_END, csrf));
            body.push_str(&format!(
                "<input type=\"hidden\" name=\"session\" value=\"{}\">\n",
                escape(item.id)
            ));
            body.push_str(&form_end(text.end_session, "secondary"));
        }
        body.push_str("</li>\n");
    }
    body.push_str("</ul>\n");
    if items.iter().any(|i| !i.current) {
        body.push_str("<div class=\"inline\">\n");
        body.push_str(&form_start(path::SESSIONS_END_OTHERS, csrf));
        body.push_str(&form_end(text.end_others, "primary"));
        body.push_str("</div>\n");
    }
    page(locale, frame, text.sessions_title, StatusCode::OK, &body)
}

/// "Chrome on Android": the browser and system a user agent names, when it names known ones.
fn device_summary(user_agent: Option<&str>, unknown: &str) -> String {
    let Some(agent) = user_agent else {
        return unknown.to_owned();
    };
    let browser = [
        ("Edg/", "Edge"),
        ("OPR/", "Opera"),
        ("Firefox/", "Firefox"),
        ("Chrome/", "Chrome"),
        ("Chromium/", "Chromium"),
        ("Safari/", "Safari"),
        ("curl/", "curl"),
    ]
    .iter()
    .find(|(needle, _)| agent.contains(needle))
    .map(|(_, name)| *name);
    let system = [
        ("Android", "Android"),
        ("iPhone", "iOS"),
        ("iPad", "iPadOS"),
        ("Windows", "Windows"),
        ("Mac OS X", "macOS"),
        ("CrOS", "ChromeOS"),
        ("Linux", "Linux"),
    ]
    .iter()
    .find(|(needle, _)| agent.contains(needle))
    .map(|(_, name)| *name);
    match (browser, system) {
        (Some(b), Some(s)) => format!("{b} · {s}"),
        (Some(b), None) => b.to_owned(),
        (None, Some(s)) => s.to_owned(),
        (None, None) => unknown.to_owned(),
    }
}

/// What the password page shows.
#[derive(Debug, Clone)]
pub struct PasswordView<'a> {
    pub rules: PasswordRules,
    pub error: Option<&'a FormError>,
    /// The change went through.
    pub changed: bool,
}

/// `GET /account/password`: current password, new password twice, the rules.
pub fn password_page(locale: Locale, frame: &Frame<'_>, view: &PasswordView<'_>) -> Page {
    let text = AccountText::of(locale);
    let mut body = String::new();
    if view.changed {
        body.push_str(&notice(text.password_changed));
    }
    body.push_str(&error_box(locale, &text, view.error));
    let wrong_current = matches!(view.error, Some(FormError::WrongPassword));
    let wrong_new = matches!(view.error, Some(FormError::Password { .. } | FormError::Mismatch));
    body.push_str(&form_start(path::PASSWORD, csrf_of(frame)));
    body.push_str(
        &Field {
            invalid: wrong_current,
            autofocus: wrong_current || view.error.is_none(),
            ..Field::new(
                "current_password",
                text.current_password,
                "password",
                "current-password",
            )
        }
        .render(),
    );
    body.push_str(
        &Field {
            invalid: wrong_new,
            autofocus: wrong_new,
            described_by: Some(RULES_ID),
            ..Field::new("new_password", text.new_password, "password", "new-password")
        }
        .render(),
    );
    body.push_str(
        &Field {
            invalid: matches!(view.error, Some(FormError::Mismatch)),
            ..Field::new(
                "repeat_password",
                text.repeat_password,
                "password",
                "new-password",
            )
        }
        .render(),
    );
    body.push_str(&rules_list(&text, &view.rules, view.error));
    body.push_str(&form_end(text.change_password, "primary"));
    let status = view.error.map_or(StatusCode::OK, form_status);
    page(locale, frame, text.password_title, status, &body)
}

/// The status of a page that shows `error`.
pub(super) fn form_status(error: &FormError) -> StatusCode {
    match error {
        FormError::WrongPassword => StatusCode::UNAUTHORIZED,
        FormError::TooManyAttempts { .. } => StatusCode::TOO_MANY_REQUESTS,
        FormError::EmailTaken => StatusCode::CONFLICT,
        _ => StatusCode::BAD_REQUEST,
    }
}

/// What the e-mail page shows.
#[derive(Debug, Clone, Copy)]
pub struct EmailView<'a> {
    pub current: &'a str,
    /// What the user typed (shown back after an error).
    pub typed: Option<&'a str>,
    pub error: Option<&'a FormError>,
    /// The address a confirmation link went to.
    pub sent_to: Option<&'a str>,
}

/// `GET /account/email`: the new address and the current password.
pub fn email_page(locale: Locale, frame: &Frame<'_>, view: &EmailView<'_>) -> Page {
    let text = AccountText::of(locale);
    let mut body = format!(
        "<p class=\"lede\">{}</p>\n<p>{}: <strong>{}</strong></p>\n",
        escape(text.email_lede),
        escape(text.current_email),
        escape(view.current)
    );
    if let Some(to) = view.sent_to {
        body.push_str(&format!(
            "<div class=\"notice\" role=\"status\"><p>{} <strong>{}</strong></p></div>\n",
            escape(text.confirmation_sent),
            escape(to)
        ));
    }
    body.push_str(&error_box(locale, &text, view.error));
    let wrong_address = matches!(
        view.error,
        Some(FormError::InvalidEmail | FormError::EmailTaken | FormError::SameEmail)
    );
    let wrong_password = matches!(view.error, Some(FormError::WrongPassword));
    body.push_str(&form_start(path::EMAIL, csrf_of(frame)));
    body.push_str(
        &Field {
            value: view.typed,
            invalid: wrong_address,
            autofocus: wrong_address || view.error.is_none(),
            ..Field::new("new_email", text.new_email, "email", "email")
        }
        .render(),
    );
    body.push_str(
        &Field {
            invalid: wrong_password,
            autofocus: wrong_password,
            ..Field::new(
                "current_password",
                text.current_password,
                "password",
                "current-password",
            )
        }
        .render(),
    );
    body.push_str(&form_end(text.send_confirmation, "primary"));
    let status = view.error.map_or(StatusCode::OK, form_status);
    page(locale, frame, text.email_title, status, &body)
}

/// `GET /account/email/confirm?token=…`: a button (a mail scanner's GET changes nothing).
/// Shown signed in or not: the link itself is the proof.
pub fn email_confirm_page(locale: Locale, frame: &Frame<'_>, csrf: &str, token: &str) -> Page {
    let text = AccountText::of(locale);
    signed_out::token_button_page(
        locale,
        frame,
        &signed_out::TokenButton {
            title: text.confirm_email_title,
            lede: text.confirm_email_lede,
            action: path::EMAIL_CONFIRM,
            csrf,
            token,
            button: text.confirm_email,
        },
    )
}

/// After the new address was confirmed.
pub fn email_changed_page(locale: Locale, frame: &Frame<'_>, address: &str) -> Page {
    let text = AccountText::of(locale);
    let body = format!(
        "<div class=\"notice\" role=\"status\"><p>{} <strong>{}</strong></p></div>\n<p><a href=\"{}\">{}</a></p>\n",
        escape(text.email_changed),
        escape(address),
        path::HOME,
        escape(text.nav_overview)
    );
    page(locale, frame, text.email_changed_title, StatusCode::OK, &body)
}

/// `GET /account/delete`: the current password and a confirmation box.
pub fn delete_page(locale: Locale, frame: &Frame<'_>, error: Option<&FormError>) -> Page {
    let text = AccountText::of(locale);
    let mut body = format!("<p class=\"lede\">{}</p>\n", escape(text.delete_lede));
    body.push_str(&error_box(locale, &text, error));
    let wrong_password = matches!(error, Some(FormError::WrongPassword));
    body.push_str(&form_start(path::DELETE, csrf_of(frame)));
    body.push_str(
        &Field {
            invalid: wrong_password,
            autofocus: true,
            ..Field::new(
                "current_password",
                text.current_password,
                "password",
                "current-password",
            )
        }
        .render(),
    );
    let unconfirmed = matches!(error, Some(FormError::NotConfirmed));
    body.push_str(&format!(
        "<div class=\"field check\">\n<input id=\"f-confirm\" name=\"confirm\" type=\"checkbox\" value=\"yes\" required{}>\n\
         <label for=\"f-confirm\">{}</label>\n</div>\n",
        if unconfirmed {
            " aria-invalid=\"true\" aria-describedby=\"form-error\""
        } else {
            ""
        },
        escape(text.delete_confirm)
    ));
    body.push_str(&form_end(text.delete_button, "danger"));
    let status = error.map_or(StatusCode::OK, form_status);
    page(locale, frame, text.delete_title, status, &body)
}

/// After the account was deleted (signed out).
pub fn deleted_page(locale: Locale, frame: &Frame<'_>) -> Page {
    let text = AccountText::of(locale);
    let body = format!("<p>{}</p>\n", escape(text.deleted_body));
    page(locale, frame, text.deleted_title, StatusCode::OK, &body)
}

/// `YYYY-MM-DD` (UTC) of Unix seconds.
pub(crate) fn iso_date(secs: i64) -> String {
    let (y, m, d, _, _) = civil(secs);
    format!("{y:04}-{m:02}-{d:02}")
}

/// `YYYY-MM-DD HH:MM UTC` of Unix seconds.
pub(crate) fn iso_minute(secs: i64) -> String {
    let (y, m, d, hh, mm) = civil(secs);
    format!("{y:04}-{m:02}-{d:02} {hh:02}:{mm:02} UTC")
}

/// The UTC calendar date and time of Unix seconds (Howard Hinnant's `civil_from_days`).
fn civil(secs: i64) -> (i64, u32, u32, u32, u32) {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    let hh = rem / 3600;
    let mm = (rem % 3600) / 60;
    (
        y,
        u32::try_from(m).unwrap_or(1),
        u32::try_from(d).unwrap_or(1),
        u32::try_from(hh).unwrap_or(0),
        u32::try_from(mm).unwrap_or(0),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_are_utc_calendar_dates() {
        assert_eq!(iso_date(0), "1970-01-01");
        assert_eq!(iso_minute(951_782_400), "2000-02-29 00:00 UTC");
        assert_eq!(iso_minute(1_798_761_599), "2026-12-31 23:59 UTC");
        assert_eq!(iso_date(-86_400), "1969-12-31");
    }
}
