//! The device verification pages (RFC 8628 §3.3): the user code form, the confirmation of
//! what the device asks for, and the answer.

use axum::http::StatusCode;

use super::text::{self, t, Key};
use super::views::{alert, decision_form, page_title, scope_list, strong, ERROR_ID};
use super::{document, fill, Hidden, Page};
use tessera_idp::mail::{escape, Locale};

/// Why an entered user code was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceError {
    /// Unknown, expired or already answered (the page does not say which).
    InvalidCode,
    TooManyAttempts {
        retry_after_secs: u64,
    },
}

impl DeviceError {
    fn status(self) -> StatusCode {
        match self {
            DeviceError::InvalidCode => StatusCode::BAD_REQUEST,
            DeviceError::TooManyAttempts { .. } => StatusCode::TOO_MANY_REQUESTS,
        }
    }

    fn message(self, locale: Locale) -> String {
        match self {
            DeviceError::InvalidCode => escape(t(locale, Key::DeviceInvalidCode)),
            DeviceError::TooManyAttempts { retry_after_secs } => {
                let time = format!(
                    "<span class=\"nowrap\">{}</span>",
                    escape(&text::duration(locale, retry_after_secs))
                );
                fill(t(locale, Key::DeviceTooManyAttempts), &[("time", &time)])
            }
        }
    }
}

/// What the user code form shows.
#[derive(Debug, Clone, Copy)]
pub struct DeviceView<'a> {
    pub action: &'a str,
    pub csrf: &'a str,
    /// Pre-fills the field (from `verification_uri_complete`, or what the user typed).
    pub user_code: Option<&'a str>,
    pub error: Option<DeviceError>,
}

/// The form asking for the code shown on the device: `user_code` and `csrf`, posted to
/// `view.action`. 200, or the status of `view.error` (400, 429).
pub fn device_page(locale: Locale, view: &DeviceView<'_>) -> Page {
    let mut body = format!(
        "<h1 id=\"page-title\">{}</h1>\n<p class=\"lede\">{}</p>\n",
        escape(t(locale, Key::DeviceTitle)),
        escape(t(locale, Key::DeviceLede))
    );
    let mut described_by = String::new();
    if let Some(error) = view.error {
        body.push_str(&alert(&error.message(locale)));
        described_by = format!(" aria-describedby=\"{ERROR_ID}\" aria-invalid=\"true\"");
    }
    let value = view
        .user_code
        .filter(|c| !c.is_empty())
        .map_or_else(String::new, |c| format!(" value=\"{}\"", escape(c)));
    body.push_str(&format!(
        "<form method=\"post\" action=\"{}\">\n",
        escape(view.action)
    ));
    Hidden::default().render(view.csrf, &mut body);
    body.push_str(&format!(
        "<div class=\"field\">\n\
         <label for=\"user_code\">{label}</label>\n\
         <input id=\"user_code\" name=\"user_code\" type=\"text\" autocomplete=\"one-time-code\" \
         autocapitalize=\"characters\" spellcheck=\"false\" maxlength=\"32\" required autofocus\
         {value}{described_by}>\n\
         </div>\n\
         <button type=\"submit\" class=\"button primary\">{button}</button>\n</form>\n",
        label = escape(t(locale, Key::UserCode)),
        button = escape(t(locale, Key::Continue)),
    ));
    let title = page_title(locale, t(locale, Key::DeviceTitle), view.error.is_some());
    Page {
        status: view.error.map_or(StatusCode::OK, DeviceError::status),
        html: document(locale, &title, &body),
    }
}

/// What the confirmation shows.
#[derive(Debug, Clone, Copy)]
pub struct DeviceConfirmView<'a> {
    pub action: &'a str,
    pub csrf: &'a str,
    pub client_name: &'a str,
    pub scopes: &'a [&'a str],
    /// As the device shows it (`XXXX-XXXX`).
    pub user_code: &'a str,
    /// Carries the user code.
    pub hidden: Hidden<'a>,
}

/// Who asks, the code to compare with the device's, what it may do, and the
/// `decision=allow` / `decision=deny` buttons. 200.
pub fn device_confirm_page(locale: Locale, view: &DeviceConfirmView<'_>) -> Page {
    let client = strong(view.client_name);
    let args = [("client", client.as_str())];
    let code = format!("<code class=\"key\">{}</code>", escape(view.user_code));
    let mut body = format!(
        "<h1 id=\"page-title\">{}</h1>\n<p>{}</p>\n",
        fill(t(locale, Key::DeviceConfirmHeading), &args),
        fill(t(locale, Key::DeviceConfirmCode), &[("code", &code)])
    );
    body.push_str(&scope_list(locale, view.scopes, &args));
    body.push_str(&format!(
        "<p class=\"muted\">{}</p>\n",
        escape(t(locale, Key::DeviceConfirmWarning))
    ));
    body.push_str(&decision_form(
        view.action,
        view.csrf,
        view.hidden,
        [
            ("allow", t(locale, Key::Allow), "primary"),
            ("deny", t(locale, Key::Deny), "secondary"),
        ],
    ));
    Page {
        status: StatusCode::OK,
        html: document(locale, t(locale, Key::DeviceTitle), &body),
    }
}

/// The answer was recorded: go back to the device.
pub fn device_done_page(locale: Locale, approved: bool) -> Page {
    let (title, message) = if approved {
        (Key::DeviceApprovedTitle, Key::DeviceApprovedBody)
    } else {
        (Key::DeviceDeniedTitle, Key::DeviceDeniedBody)
    };
    let body = format!(
        "<h1 id=\"page-title\">{}</h1>\n<p>{}</p>\n",
        escape(t(locale, title)),
        escape(t(locale, message))
    );
    Page {
        status: StatusCode::OK,
        html: document(locale, t(locale, title), &body),
    }
}
