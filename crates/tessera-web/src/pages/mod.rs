//! The hosted pages (R33): login, consent, device verification, logout and error pages as HTML, in English and
//! Korean, and their one stylesheet.
//!
//! Pure rendering: the flow code decides what to show and calls a `*_page` function, which
//! returns a [`Page`]; nothing here touches a store or a request. The pages are plain HTML
//! forms that work with JavaScript off; the one script, `passkey.js` (served from this
//! origin), only adds the passkey buttons, which WebAuthn cannot do without. Every
//! interpolated value goes through [`escape`]; the texts come from a table per locale
//! (`text.rs`) whose placeholders are filled with already-escaped HTML.
//!
//! [`Page`]'s response carries a strict Content-Security-Policy (scripts, styles and
//! fetches only from this origin, no inline script, no framing) and `Cache-Control: no-store`: a page can hold a CSRF token
//! and a login hint. There is deliberately no `form-action` directive: Chrome applies it to
//! the redirect after a form post, which must be allowed to go to the client's redirect URI.

mod chart;
pub mod console;
mod device;
mod federation;
pub mod portal;
mod text;
mod views;

#[cfg(test)]
mod tests;

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use tessera_idp::mail::{escape, Locale};

pub use device::{
    device_confirm_page, device_done_page, device_page, DeviceConfirmView, DeviceError, DeviceView,
};
pub use federation::{failed_page, link_page, second_factor_page, LinkView, ProviderLink};
pub use tessera_idp::error::ErrorKind;
pub use views::{
    consent_page, end_sign_in_page, enrol_page, error_page, logged_out_page, login_page, logout_confirm_page,
    mfa_page, recovery_codes_page, sign_in_ended_page, sign_in_kept_page, still_signed_in_page, ConsentView,
    EndSignInView, EnrolView, LoginError, LoginView, LogoutView, MfaPageError, MfaView,
};

/// Where [`stylesheet`] is served.
pub const STYLESHEET_PATH: &str = "/assets/tessera.css";

/// The stylesheet of every page.
const CSS: &str = include_str!("tessera.css");

/// A hash of [`CSS`], appended to its URL so that a changed stylesheet is fetched at once
/// despite its day-long cache lifetime.
const CSS_VERSION: u64 = fnv1a(CSS.as_bytes());

/// Where [`passkey_js`] is served.
pub const PASSKEY_SCRIPT_PATH: &str = "/assets/passkey.js";

/// The script of the passkey buttons.
const PASSKEY_JS: &str = include_str!("passkey.js");

const PASSKEY_JS_VERSION: u64 = fnv1a(PASSKEY_JS.as_bytes());

/// The Content-Security-Policy of every page. No `form-action`: see the module docs.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; connect-src 'self'; \
     style-src 'self'; img-src 'self'; frame-ancestors 'none'; base-uri 'none'";

/// A rendered page and its status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page {
    pub status: StatusCode,
    pub html: String,
}

impl IntoResponse for Page {
    fn into_response(self) -> Response {
        let mut response = (self.status, self.html).into_response();
        let headers = response.headers_mut();
        for (name, value) in [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-store"),
            (header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY),
            (header::X_FRAME_OPTIONS, "DENY"),
            (header::REFERRER_POLICY, "no-referrer"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ] {
            headers.insert(name, HeaderValue::from_static(value));
        }
        response
    }
}

/// The locale of a page: the first supported language of the OpenID Connect `ui_locales`
/// parameter (a space-separated list of BCP 47 tags, in order of preference), else the
/// best of the `Accept-Language` header, else English.
pub fn locale_for(ui_locales: Option<&str>, accept_language: Option<&str>) -> Locale {
    let from_ui = ui_locales.and_then(|list| {
        list.split_ascii_whitespace().take(32).find_map(|tag| {
            let primary = tag.split(['-', '_']).next().unwrap_or_default();
            if primary.eq_ignore_ascii_case("ko") {
                Some(Locale::Ko)
            } else if primary.eq_ignore_ascii_case("en") {
                Some(Locale::En)
            } else {
                None
            }
        })
    });
    from_ui
        .or_else(|| accept_language.map(Locale::from_accept_language))
        .unwrap_or_default()
}

/// Name/value pairs a form carries as `<input type="hidden">` (e.g. the authorization
/// request being continued). Names the page's own fields use (`csrf`, `decision`,
/// `username`, `password`) are left out, so a carried parameter can never stand in for them.
#[derive(Debug, Clone, Copy, Default)]
pub struct Hidden<'a>(pub &'a [(&'a str, &'a str)]);

/// Field names of the pages' forms, never taken from [`Hidden`].
const RESERVED_FIELDS: [&str; 7] = [
    "csrf",
    "decision",
    "username",
    "password",
    "mfa_token",
    "code",
    "method",
];

impl Hidden<'_> {
    /// The `csrf` field and the hidden fields.
    fn render(self, csrf: &str, out: &mut String) {
        out.push_str(&format!(
            "<input type=\"hidden\" name=\"csrf\" value=\"{}\">\n",
            escape(csrf)
        ));
        for (name, value) in self.0 {
            if name.is_empty() || RESERVED_FIELDS.contains(name) {
                tracing::warn!(field = %name, "hidden field left out of a page: its name is reserved");
                continue;
            }
            out.push_str(&format!(
                "<input type=\"hidden\" name=\"{}\" value=\"{}\">\n",
                escape(name),
                escape(value)
            ));
        }
    }
}

/// `GET /assets/tessera.css`.
pub async fn stylesheet() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=86400"),
        ],
        CSS,
    )
}

/// `GET /assets/passkey.js`.
pub async fn passkey_js() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=86400"),
        ],
        PASSKEY_JS,
    )
}

/// The `<script>` element of the passkey buttons.
fn passkey_script() -> String {
    format!("<script src=\"{PASSKEY_SCRIPT_PATH}?v={PASSKEY_JS_VERSION:016x}\" defer></script>\n")
}

/// The whole document around `body` (HTML), titled `title` (text).
fn document(locale: Locale, title: &str, body: &str) -> String {
    format!(
        "<!DOCTYPE html>\n\
         <html lang=\"{lang}\">\n\
         <head>\n\
         <meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <meta name=\"robots\" content=\"noindex, nofollow\">\n\
         <title>{title} · Tessera</title>\n\
         <link rel=\"stylesheet\" href=\"{css}?v={CSS_VERSION:016x}\">\n\
         </head>\n\
         <body>\n\
         <main aria-labelledby=\"page-title\">\n\
         <p class=\"brand\">Tessera</p>\n\
         {body}\
         </main>\n\
         </body>\n\
         </html>\n",
        lang = locale.tag(),
        title = escape(title),
        css = STYLESHEET_PATH,
    )
}

/// `template` (text) as HTML, its `{name}` placeholders replaced by the HTML in `args`.
/// The literal text is escaped; an unknown placeholder stays as (escaped) text.
fn fill(template: &str, args: &[(&str, &str)]) -> String {
    let mut out = String::with_capacity(template.len() + 64);
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        out.push_str(&escape(&rest[..open]));
        let after = &rest[open + 1..];
        let Some(close) = after.find('}') else {
            out.push_str(&escape(&rest[open..]));
            return out;
        };
        let name = &after[..close];
        match args.iter().find(|(n, _)| *n == name) {
            Some((_, html)) => out.push_str(html),
            None => out.push_str(&escape(&rest[open..open + close + 2])),
        }
        rest = &after[close + 1..];
    }
    out.push_str(&escape(rest));
    out
}

/// FNV-1a, 64 bits: a compile-time fingerprint, not a security measure.
const fn fnv1a(bytes: &[u8]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    let mut i = 0;
    while i < bytes.len() {
        hash ^= bytes[i] as u64;
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
        i += 1;
    }
    hash
}
