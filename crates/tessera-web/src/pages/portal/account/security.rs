//! `/account/security`: second factors and passkeys (rename, remove, add an authenticator
//! app with its recovery codes), linked sign-in providers, and the account's recent
//! security events from the audit trail.

use axum::http::StatusCode;
use tessera_idp::mail::{escape, Locale};

use super::forms::{form_end, form_start, notice, Field};
use super::text::AccountText;
use super::{iso_minute, page, path, Frame};
use crate::pages::Page;

/// One second factor or passkey.
#[derive(Debug, Clone, Copy)]
pub struct FactorItem<'a> {
    pub id: &'a str,
    /// `totp`, `email_otp`, `sms_otp`, `webauthn`.
    pub kind: &'a str,
    pub name: &'a str,
    pub created_at: i64,
    pub last_used_at: Option<i64>,
    pub confirmed: bool,
}

/// One linked identity of an upstream provider.
#[derive(Debug, Clone, Copy)]
pub struct IdentityItem<'a> {
    pub provider: &'a str,
    pub subject: &'a str,
    pub email: Option<&'a str>,
    pub created_at: i64,
    pub last_used_at: i64,
}

/// One audit event about the account.
#[derive(Debug, Clone, Copy)]
pub struct EventItem<'a> {
    pub at: i64,
    pub event: &'a str,
    pub outcome: &'a str,
    pub ip: Option<&'a str>,
}

/// What happened before the page was shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecurityNotice {
    Removed,
    Renamed,
    Added,
    Unlinked,
}

/// Why an action on the page was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecurityError {
    /// The last confirmed factor needs the (right) password.
    LastFactor,
    LastSignInMethod,
    InvalidName,
    NotFound,
}

/// What the security page shows.
#[derive(Debug, Clone, Copy)]
pub struct SecurityView<'a> {
    pub factors: &'a [FactorItem<'a>],
    pub identities: &'a [IdentityItem<'a>],
    pub events: &'a [EventItem<'a>],
    pub notice: Option<SecurityNotice>,
    pub error: Option<SecurityError>,
}

fn kind_label(kind: &str, locale: Locale) -> &str {
    match (kind, locale) {
        ("totp", Locale::En) => "Authenticator app",
        ("totp", Locale::Ko) => "인증 앱",
        ("webauthn", Locale::En) => "Passkey",
        ("webauthn", Locale::Ko) => "패스키",
        ("email_otp", Locale::En) => "Code by e-mail",
        ("email_otp", Locale::Ko) => "이메일 코드",
        ("sms_otp", Locale::En) => "Code by text message",
        ("sms_otp", Locale::Ko) => "문자 메시지 코드",
        (other, _) => other,
    }
}

/// `GET /account/security`.
pub fn security_page(locale: Locale, frame: &Frame<'_>, view: &SecurityView<'_>) -> Page {
    let text = AccountText::of(locale);
    let csrf = frame.signed_in.map(|s| s.csrf).unwrap_or_default();
    let mut body = String::with_capacity(8192);
    match view.notice {
        Some(SecurityNotice::Removed) => body.push_str(&notice(text.factor_removed)),
        Some(SecurityNotice::Renamed) => body.push_str(&notice(text.factor_renamed)),
        Some(SecurityNotice::Added) => body.push_str(&notice(text.factor_added_notice)),
        Some(SecurityNotice::Unlinked) => body.push_str(&notice(text.identity_unlinked)),
        None => {}
    }
    if let Some(error) = view.error {
        let message = match error {
            SecurityError::LastFactor => text.error_last_factor,
            SecurityError::LastSignInMethod => text.error_last_sign_in,
            SecurityError::InvalidName => text.error_invalid_name,
            SecurityError::NotFound => text.no_such_item,
        };
        body.push_str(&crate::pages::views::alert(&escape(message)));
    }

    body.push_str(&format!(
        "<h2 id=\"factors\">{}</h2>\n",
        escape(text.factors_title)
    ));
    if view.factors.is_empty() {
        body.push_str(&format!("<p>{}</p>\n", escape(text.factors_none)));
    }
    body.push_str("<ul class=\"items\">\n");
    for factor in view.factors {
        let used = factor
            .last_used_at
            .map_or_else(|| text.factor_never_used.to_owned(), iso_minute);
        let pending = if factor.confirmed {
            String::new()
        } else {
            format!(" <span class=\"muted\">({})</span>", escape(text.factor_pending))
        };
        body.push_str(&format!(
            "<li>\n<h3>{name}{pending}</h3>\n<dl>\n<dt>{l_kind}</dt><dd>{kind}</dd>\n\
             <dt>{l_added}</dt><dd>{added}</dd>\n<dt>{l_used}</dt><dd>{used}</dd>\n</dl>\n",
            name = escape(factor.name),
            l_kind = escape(text.factor_kind),
            kind = escape(kind_label(factor.kind, locale)),
            l_added = escape(text.factor_added),
            added = iso_minute(factor.created_at),
            l_used = escape(text.factor_last_used),
            used = escape(&used),
        ));
        let rename_id = format!("rename-{}", factor.id);
        body.push_str(&form_start(path::SECURITY_RENAME, csrf));
        body.push_str(&format!(
            "<input type=\"hidden\" name=\"factor\" value=\"{id}\">\n<div class=\"field\">\n\
             <label for=\"{rid}\">{label}</label>\n<input id=\"{rid}\" name=\"name\" type=\"text\" \
             maxlength=\"64\" required value=\"{name}\">\n</div>\n",
            id = escape(factor.id),
            rid = escape(&rename_id),
            label = escape(text.factor_name),
            name = escape(factor.name),
        ));
        body.push_str(&form_end(text.rename, "secondary"));
        let password_id = format!("remove-{}", factor.id);
        body.push_str(&form_start(path::SECURITY_REMOVE, csrf));
        body.push_str(&format!(
            "<input type=\"hidden\" name=\"factor\" value=\"{}\">\n",
            escape(factor.id)
        ));
        body.push_str(
            &Field {
                id: Some(&password_id),
                ..Field::new(
                    "current_password",
                    text.current_password,
                    "password",
                    "current-password",
                )
            }
            .render(),
        );
        body.push_str(&form_end(text.remove, "danger"));
        body.push_str("</li>\n");
    }
    body.push_str("</ul>\n");
    body.push_str("<div class=\"inline\">\n");
    body.push_str(&form_start(path::SECURITY_TOTP, csrf));
    body.push_str(&form_end(text.add_totp, "primary"));
    body.push_str("</div>\n");

    body.push_str(&format!(
        "<h2 id=\"identities\">{}</h2>\n",
        escape(text.identities_title)
    ));
    if view.identities.is_empty() {
        body.push_str(&format!("<p>{}</p>\n", escape(text.identities_none)));
    } else {
        body.push_str("<ul class=\"items\">\n");
        for identity in view.identities {
            body.push_str(&format!(
                "<li>\n<h3>{provider}</h3>\n<dl>\n<dt>{l_email}</dt><dd>{email}</dd>\n\
                 <dt>{l_added}</dt><dd>{added}</dd>\n<dt>{l_used}</dt><dd>{used}</dd>\n</dl>\n",
                provider = escape(identity.provider),
                l_email = escape(text.email),
                email = escape(identity.email.unwrap_or("–")),
                l_added = escape(text.factor_added),
                added = iso_minute(identity.created_at),
                l_used = escape(text.factor_last_used),
                used = iso_minute(identity.last_used_at),
            ));
            body.push_str(&form_start(path::SECURITY_UNLINK, csrf));
            body.push_str(&format!(
                "<input type=\"hidden\" name=\"provider\" value=\"{}\">\n\
                 <input type=\"hidden\" name=\"subject\" value=\"{}\">\n",
                escape(identity.provider),
                escape(identity.subject)
            ));
            body.push_str(&form_end(text.unlink, "secondary"));
            body.push_str("</li>\n");
        }
        body.push_str("</ul>\n");
    }

    body.push_str(&format!("<h2 id=\"events\">{}</h2>\n", escape(text.events_title)));
    if view.events.is_empty() {
        body.push_str(&format!("<p>{}</p>\n", escape(text.events_none)));
    } else {
        body.push_str(&format!(
            "<div class=\"table\"><table>\n<thead><tr><th scope=\"col\">{}</th><th scope=\"col\">{}</th>\
             <th scope=\"col\">{}</th><th scope=\"col\">{}</th></tr></thead>\n<tbody>\n",
            escape(text.when),
            escape(text.event),
            escape(text.outcome),
            escape(text.ip)
        ));
        for event in view.events {
            body.push_str(&format!(
                "<tr><td>{}</td><td><code>{}</code></td><td>{}</td><td>{}</td></tr>\n",
                iso_minute(event.at),
                escape(event.event),
                escape(event.outcome),
                escape(event.ip.unwrap_or("–"))
            ));
        }
        body.push_str("</tbody>\n</table></div>\n");
    }
    let status = match view.error {
        None => StatusCode::OK,
        Some(SecurityError::NotFound) => StatusCode::NOT_FOUND,
        Some(SecurityError::LastFactor) => StatusCode::FORBIDDEN,
        Some(_) => StatusCode::BAD_REQUEST,
    };
    page(locale, frame, text.security_title, status, &body)
}

/// What the enrolment page shows.
#[derive(Debug, Clone, Copy)]
pub struct TotpEnrolView<'a> {
    pub factor_id: &'a str,
    /// The otpauth URI as an SVG QR code (the qrcode crate's output, never caller text).
    pub qr_svg: &'a str,
    pub secret: &'a str,
    pub wrong_code: bool,
}

/// `POST /account/security/totp`: the QR code and key of a new authenticator, and a field
/// for its first code.
pub fn totp_enrol_page(locale: Locale, frame: &Frame<'_>, view: &TotpEnrolView<'_>) -> Page {
    let text = AccountText::of(locale);
    let csrf = frame.signed_in.map(|s| s.csrf).unwrap_or_default();
    let mut body = format!("<p class=\"lede\">{}</p>\n", escape(text.enrol_lede));
    if view.wrong_code {
        body.push_str(&crate::pages::views::alert(&escape(text.error_wrong_code)));
    }
    let svg = view.qr_svg.trim_start_matches(|c| c != '<');
    let svg = svg.strip_prefix("<?xml").map_or(svg, |rest| {
        rest.split_once("?>")
            .map_or(rest, |(_, after)| after.trim_start())
    });
    // After a wrong code the key is not shown again (it is stored sealed): the app that
    // scanned it gives the next code.
    if !svg.is_empty() {
        body.push_str(&format!(
            "<figure class=\"qr\" role=\"img\" aria-label=\"{}\">{svg}</figure>\n<p>{}: <code class=\"key\">{}</code></p>\n",
            escape(text.enrol_title),
            escape(text.enrol_key),
            escape(view.secret)
        ));
    }
    body.push_str(&form_start(path::SECURITY_TOTP_CONFIRM, csrf));
    body.push_str(&format!(
        "<input type=\"hidden\" name=\"factor\" value=\"{}\">\n<div class=\"field\">\n\
         <label for=\"f-code\">{}</label>\n<input id=\"f-code\" name=\"code\" type=\"text\" inputmode=\"numeric\" \
         autocomplete=\"one-time-code\" maxlength=\"32\" required autofocus{}>\n</div>\n",
        escape(view.factor_id),
        escape(text.enrol_code),
        if view.wrong_code {
            " aria-invalid=\"true\" aria-describedby=\"form-error\""
        } else {
            ""
        }
    ));
    body.push_str(&form_end(text.enrol_confirm, "primary"));
    let status = if view.wrong_code {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    };
    page(locale, frame, text.enrol_title, status, &body)
}

/// The recovery codes of the account's first factor, shown once.
pub fn recovery_codes_page(locale: Locale, frame: &Frame<'_>, codes: &[String]) -> Page {
    let text = AccountText::of(locale);
    let mut body = format!(
        "<p class=\"lede\">{}</p>\n<ul class=\"codes\">\n",
        escape(text.recovery_lede)
    );
    for code in codes {
        body.push_str(&format!("<li><code>{}</code></li>\n", escape(code)));
    }
    body.push_str(&format!(
        "</ul>\n<p><a class=\"button primary\" href=\"{}\">{}</a></p>\n",
        path::SECURITY,
        escape(text.back_to_security)
    ));
    page(locale, frame, text.recovery_title, StatusCode::OK, &body)
}
