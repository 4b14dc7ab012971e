//! The frame of a hosted app's pages (the account pages, the admin console): a header with
//! the app's navigation, the language switch and the sign-out button, the session-expiry
//! warning of a signed-in page (R33), and the document around them. Each app renders its
//! own content into [`app_document`].
//!
//! The expiry warning is plain markup, hidden until `session-expiry.js` (served from this
//! origin) shows it; its "extend" form also works with JavaScript off.

pub mod account;
mod text;

use tessera_idp::mail::{escape, Locale};

use super::{Page, CSS_VERSION, STYLESHEET_PATH};
use axum::http::StatusCode;
pub use text::PortalText;

/// Where the stylesheet of the hosted apps is served (after the pages' own).
pub const PORTAL_STYLESHEET_PATH: &str = "/assets/portal.css";
/// The hosted apps' stylesheet.
pub(crate) const PORTAL_CSS: &str = include_str!("portal.css");
const PORTAL_CSS_VERSION: u64 = super::fnv1a(PORTAL_CSS.as_bytes());

/// Where the session-expiry script is served; relying parties embed it too (docs/pages.md).
pub const EXPIRY_SCRIPT_PATH: &str = "/assets/session-expiry.js";
/// The session-expiry warning's script.
pub(crate) const EXPIRY_JS: &str = include_str!("session-expiry.js");
const EXPIRY_JS_VERSION: u64 = super::fnv1a(EXPIRY_JS.as_bytes());

/// A link of the app's navigation.
#[derive(Debug, Clone, Copy)]
pub struct NavItem<'a> {
    pub href: &'a str,
    pub label: &'a str,
}

/// When the signed-in page's session ends, for the warning.
#[derive(Debug, Clone, Copy)]
pub struct Expiry<'a> {
    /// Unix seconds.
    pub idle_expires_at: i64,
    pub absolute_expires_at: i64,
    /// The server's clock when the page was rendered (the script corrects for the skew).
    pub now: i64,
    /// How long before the expiry the warning shows.
    pub warn_before_secs: i64,
    /// GET: the session's lifetimes as JSON.
    pub status_url: &'a str,
    /// POST (`csrf`): extends the session.
    pub extend_url: &'a str,
}

/// The header of a signed-in page.
#[derive(Debug, Clone, Copy)]
pub struct Shell<'a> {
    /// The app's name in the header (e.g. "Account").
    pub app_name: &'a str,
    /// The app's home.
    pub home: &'a str,
    /// This page (path and query): the language switch and the warning come back here.
    pub here: &'a str,
    pub nav: &'a [NavItem<'a>],
    /// The navigation's accessible name (e.g. "Account sections").
    pub nav_label: &'a str,
    /// A page of wide tables (the console): the content may use the window's width.
    pub wide: bool,
    /// `None` on pages shown signed out (sign-up, reset): no sign-out button, no warning.
    pub signed_in: Option<SignedInShell<'a>>,
    /// The app's `…/language` endpoint.
    pub language_url: &'a str,
}

/// The signed-in parts of the header.
#[derive(Debug, Clone, Copy)]
pub struct SignedInShell<'a> {
    pub csrf: &'a str,
    /// Who is signed in (shown, escaped).
    pub who: &'a str,
    pub sign_out_url: &'a str,
    pub expiry: Expiry<'a>,
}

/// The whole document of a hosted app's page.
pub fn app_document(locale: Locale, shell: &Shell<'_>, title: &str, status: StatusCode, body: &str) -> Page {
    let text = PortalText::of(locale);
    let mut header = String::with_capacity(2048);
    header.push_str(&format!(
        "<header class=\"app-header\">\n<p class=\"brand\"><a href=\"{}\">Tessera · {}</a></p>\n",
        escape(shell.home),
        escape(shell.app_name)
    ));
    if !shell.nav.is_empty() {
        header.push_str(&format!(
            "<nav aria-label=\"{}\">\n<ul class=\"app-nav\">\n",
            escape(shell.nav_label)
        ));
        let path = shell.here.split('?').next().unwrap_or_default();
        for item in shell.nav {
            let current = if item.href == path {
                " aria-current=\"page\""
            } else {
                ""
            };
            header.push_str(&format!(
                "<li><a href=\"{}\"{current}>{}</a></li>\n",
                escape(item.href),
                escape(item.label)
            ));
        }
        header.push_str("</ul>\n</nav>\n");
    }
    header.push_str("<div class=\"app-tools\">\n");
    let (other, other_label) = match locale {
        Locale::En => ("ko", "한국어"),
        Locale::Ko => ("en", "English"),
    };
    let mut switch = url::form_urlencoded::Serializer::new(String::new());
    switch
        .append_pair("set", other)
        .append_pair("return_to", shell.here);
    header.push_str(&format!(
        "<a class=\"language\" href=\"{}?{}\" lang=\"{other}\" hreflang=\"{other}\">{}</a>\n",
        escape(shell.language_url),
        escape(&switch.finish()),
        escape(other_label)
    ));
    if let Some(signed) = &shell.signed_in {
        header.push_str(&format!(
            "<span class=\"who\">{}</span>\n<form method=\"post\" action=\"{}\" class=\"sign-out\">\n\
             <input type=\"hidden\" name=\"csrf\" value=\"{}\">\n\
             <button type=\"submit\" class=\"link-button\">{}</button>\n</form>\n",
            escape(signed.who),
            escape(signed.sign_out_url),
            escape(signed.csrf),
            escape(text.sign_out)
        ));
    }
    header.push_str("</div>\n</header>\n");
    let warning = shell
        .signed_in
        .as_ref()
        .map(|signed| expiry_warning(&text, shell.here, signed))
        .unwrap_or_default();
    let script = if shell.signed_in.is_some() {
        format!("<script src=\"{EXPIRY_SCRIPT_PATH}?v={EXPIRY_JS_VERSION:016x}\" defer></script>\n")
    } else {
        String::new()
    };
    let html = format!(
        "<!DOCTYPE html>\n\
         <html lang=\"{lang}\">\n\
         <head>\n\
         <meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <meta name=\"robots\" content=\"noindex, nofollow\">\n\
         <title>{title} · Tessera</title>\n\
         <link rel=\"stylesheet\" href=\"{css}?v={CSS_VERSION:016x}\">\n\
         <link rel=\"stylesheet\" href=\"{portal_css}?v={PORTAL_CSS_VERSION:016x}\">\n\
         {script}\
         </head>\n\
         <body class=\"app{wide}\">\n\
         <a class=\"skip\" href=\"#content\">{skip}</a>\n\
         {header}\
         {warning}\
         <main id=\"content\" aria-labelledby=\"page-title\" tabindex=\"-1\">\n\
         {body}\
         </main>\n\
         </body>\n\
         </html>\n",
        lang = locale.tag(),
        title = escape(title),
        css = STYLESHEET_PATH,
        portal_css = PORTAL_STYLESHEET_PATH,
        skip = escape(text.skip_to_content),
        wide = if shell.wide { " wide" } else { "" },
    );
    Page { status, html }
}

/// The warning's markup: hidden; the script shows the part for the moment.
fn expiry_warning(text: &PortalText, here: &str, signed: &SignedInShell<'_>) -> String {
    let expiry = &signed.expiry;
    format!(
        "<section id=\"session-expiry\" class=\"expiry\" hidden aria-label=\"{label}\" \
         data-idle-expires-at=\"{idle}\" data-absolute-expires-at=\"{absolute}\" data-now=\"{now}\" \
         data-warn-before=\"{warn}\" data-status-url=\"{status_url}\">\n\
         <div class=\"expiry-warning\" role=\"alert\" hidden>\n\
         <p>{warning} <strong class=\"nowrap\" data-remaining></strong></p>\n\
         <form method=\"post\" action=\"{extend_url}\">\n\
         <input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">\n\
         <input type=\"hidden\" name=\"return_to\" value=\"{here}\">\n\
         <button type=\"submit\" class=\"button primary\">{extend}</button>\n\
         </form>\n\
         </div>\n\
         <div class=\"expiry-ended\" role=\"alert\" hidden>\n\
         <p>{ended}</p>\n\
         <a class=\"button primary\" href=\"{here}\">{sign_in}</a>\n\
         </div>\n\
         </section>\n",
        label = escape(text.session),
        idle = expiry.idle_expires_at,
        absolute = expiry.absolute_expires_at,
        now = expiry.now,
        warn = expiry.warn_before_secs,
        status_url = escape(expiry.status_url),
        extend_url = escape(expiry.extend_url),
        csrf = escape(signed.csrf),
        here = escape(here),
        warning = escape(text.expires_in),
        extend = escape(text.extend),
        ended = escape(text.expired),
        sign_in = escape(text.sign_in_again),
    )
}

/// `GET /assets/portal.css`.
pub async fn stylesheet() -> impl axum::response::IntoResponse {
    (
        [
            (axum::http::header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (axum::http::header::CACHE_CONTROL, "public, max-age=86400"),
        ],
        PORTAL_CSS,
    )
}

/// `GET /assets/session-expiry.js`: also embedded by relying parties, so any origin may
/// load it (a script element needs no CORS).
pub async fn expiry_js() -> impl axum::response::IntoResponse {
    (
        [
            (axum::http::header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (axum::http::header::CACHE_CONTROL, "public, max-age=86400"),
        ],
        EXPIRY_JS,
    )
}
