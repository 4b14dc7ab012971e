//! The account pages shown signed out: sign up, the verification and reset links' pages,
//! forgot password, and the pages that follow them.

use axum::http::StatusCode;
use tessera_idp::mail::{escape, Locale};

use super::forms::{error_box, form_end, form_start, Field, FormError, PasswordRules, RULES_ID};
use super::text::AccountText;
use super::{form_status, page, path, Frame};
use crate::pages::portal::account::forms::rules_list;
use crate::pages::Page;

/// What the sign-up page shows.
#[derive(Debug, Clone, Copy)]
pub struct SignUpView<'a> {
    pub csrf: &'a str,
    pub typed_email: Option<&'a str>,
    pub rules: PasswordRules,
    pub error: Option<&'a FormError>,
}

/// `GET /account/signup`: e-mail, password twice, the rules (the broken one marked).
pub fn sign_up_page(locale: Locale, frame: &Frame<'_>, view: &SignUpView<'_>) -> Page {
    let text = AccountText::of(locale);
    let mut body = format!("<p class=\"lede\">{}</p>\n", escape(text.signup_lede));
    body.push_str(&error_box(locale, &text, view.error));
    let wrong_email = matches!(view.error, Some(FormError::InvalidEmail));
    let wrong_password = matches!(view.error, Some(FormError::Password { .. } | FormError::Mismatch));
    body.push_str(&form_start(path::SIGN_UP, view.csrf));
    body.push_str(
        &Field {
            value: view.typed_email,
            invalid: wrong_email,
            autofocus: wrong_email || view.error.is_none(),
            ..Field::new("email", text.email, "email", "email")
        }
        .render(),
    );
    body.push_str(
        &Field {
            invalid: wrong_password,
            autofocus: wrong_password,
            described_by: Some(RULES_ID),
            ..Field::new("password", text.password, "password", "new-password")
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
    body.push_str(&form_end(text.signup_button, "primary"));
    let status = view.error.map_or(StatusCode::OK, form_status);
    page(locale, frame, text.signup_title, status, &body)
}

/// A signed-out page that says one thing, optionally about an address, with a link on.
fn message_page(
    locale: Locale,
    frame: &Frame<'_>,
    title: &str,
    message: &str,
    address: Option<&str>,
    link: Option<(&str, &str)>,
) -> Page {
    let address = address
        .map(|a| format!(" <strong>{}</strong>", escape(a)))
        .unwrap_or_default();
    let mut body = format!(
        "<div class=\"notice\" role=\"status\"><p>{}{address}</p></div>\n",
        escape(message)
    );
    if let Some((href, label)) = link {
        body.push_str(&format!(
            "<p><a href=\"{}\">{}</a></p>\n",
            escape(href),
            escape(label)
        ));
    }
    page(locale, frame, title, StatusCode::OK, &body)
}

/// After a sign-up (the same whether or not the address already had an account).
pub fn sign_up_done_page(locale: Locale, frame: &Frame<'_>, address: &str) -> Page {
    let text = AccountText::of(locale);
    message_page(
        locale,
        frame,
        text.signup_done_title,
        text.signup_done_body,
        Some(address),
        None,
    )
}

/// A page with one button that posts a link's `token` (opening the link changes nothing).
pub(super) struct TokenButton<'a> {
    pub title: &'a str,
    pub lede: &'a str,
    /// Where the form posts.
    pub action: &'a str,
    pub csrf: &'a str,
    pub token: &'a str,
    pub button: &'a str,
}

pub(super) fn token_button_page(locale: Locale, frame: &Frame<'_>, view: &TokenButton<'_>) -> Page {
    let mut body = format!("<p class=\"lede\">{}</p>\n", escape(view.lede));
    body.push_str(&form_start(view.action, view.csrf));
    body.push_str(&format!(
        "<input type=\"hidden\" name=\"token\" value=\"{}\">\n",
        escape(view.token)
    ));
    body.push_str(&form_end(view.button, "primary"));
    page(locale, frame, view.title, StatusCode::OK, &body)
}

/// `GET /account/verify-email?token=…`: the verification link's page.
pub fn verify_email_page(locale: Locale, frame: &Frame<'_>, csrf: &str, token: &str) -> Page {
    let text = AccountText::of(locale);
    token_button_page(
        locale,
        frame,
        &TokenButton {
            title: text.verify_title,
            lede: text.verify_lede,
            action: path::VERIFY_EMAIL,
            csrf,
            token,
            button: text.verify_button,
        },
    )
}

/// After the address was verified.
pub fn verified_page(locale: Locale, frame: &Frame<'_>, address: &str) -> Page {
    let text = AccountText::of(locale);
    message_page(
        locale,
        frame,
        text.verified_title,
        text.verified_body,
        Some(address),
        Some((path::HOME, text.go_to_account)),
    )
}

/// `GET /account/password/forgot`.
pub fn forgot_page(locale: Locale, frame: &Frame<'_>, csrf: &str, error: Option<&FormError>) -> Page {
    let text = AccountText::of(locale);
    let mut body = format!("<p class=\"lede\">{}</p>\n", escape(text.forgot_lede));
    body.push_str(&error_box(locale, &text, error));
    body.push_str(&form_start(path::FORGOT, csrf));
    body.push_str(
        &Field {
            invalid: error.is_some(),
            autofocus: true,
            ..Field::new("email", text.email, "email", "email")
        }
        .render(),
    );
    body.push_str(&form_end(text.forgot_button, "primary"));
    let status = error.map_or(StatusCode::OK, form_status);
    page(locale, frame, text.forgot_title, status, &body)
}

/// After a forgot-password request (the same whether or not the address has an account).
pub fn forgot_done_page(locale: Locale, frame: &Frame<'_>) -> Page {
    let text = AccountText::of(locale);
    message_page(
        locale,
        frame,
        text.forgot_done_title,
        text.forgot_done_body,
        None,
        None,
    )
}

/// What the reset page shows.
#[derive(Debug, Clone, Copy)]
pub struct ResetView<'a> {
    pub csrf: &'a str,
    pub token: &'a str,
    pub rules: PasswordRules,
    pub error: Option<&'a FormError>,
}

/// `GET /account/password/reset?token=…`: the new password twice.
pub fn reset_page(locale: Locale, frame: &Frame<'_>, view: &ResetView<'_>) -> Page {
    let text = AccountText::of(locale);
    let mut body = error_box(locale, &text, view.error);
    body.push_str(&form_start(path::RESET, view.csrf));
    body.push_str(&format!(
        "<input type=\"hidden\" name=\"token\" value=\"{}\">\n",
        escape(view.token)
    ));
    body.push_str(
        &Field {
            invalid: view.error.is_some(),
            autofocus: true,
            described_by: Some(RULES_ID),
            ..Field::new("password", text.new_password, "password", "new-password")
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
    body.push_str(&form_end(text.reset_button, "primary"));
    let status = view.error.map_or(StatusCode::OK, form_status);
    page(locale, frame, text.reset_title, status, &body)
}

/// After the password was reset.
pub fn reset_done_page(locale: Locale, frame: &Frame<'_>) -> Page {
    let text = AccountText::of(locale);
    message_page(
        locale,
        frame,
        text.reset_done_title,
        text.reset_done_body,
        None,
        Some((path::HOME, text.nav_sign_in)),
    )
}
