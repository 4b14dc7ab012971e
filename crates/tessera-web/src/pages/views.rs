//! The pages themselves.

use axum::http::StatusCode;

use super::text::{self, t, Key};
use super::{document, fill, passkey_script, Hidden, Page};
use tessera_idp::error::ErrorKind;
use tessera_idp::mail::{escape, Locale};

/// The id of a page's error message, which its inputs name in `aria-describedby`.
pub(super) const ERROR_ID: &str = "form-error";

/// At most this many characters of an [`ErrorKind::InvalidRequest`] detail are shown.
const MAX_DETAIL_CHARS: usize = 300;

// ---------------------------------------------------------------------------------------
// Login
// ---------------------------------------------------------------------------------------

/// What the login page shows.
#[derive(Debug, Clone, Copy)]
pub struct LoginView<'a> {
    /// Where the form posts.
    pub action: &'a str,
    pub csrf: &'a str,
    /// The application the user signs in to.
    pub client_name: &'a str,
    /// Pre-fills the e-mail address (e.g. OIDC `login_hint`, or what the user typed before).
    pub login_hint: Option<&'a str>,
    /// Why the previous attempt failed.
    pub error: Option<LoginError>,
    pub hidden: Hidden<'a>,
    /// Where the passkey form posts, when the node offers passkeys (the form appears only
    /// where the browser has WebAuthn and runs the page's script).
    pub passkey_action: Option<&'a str>,
    /// A button (link) per upstream provider (federated sign-in).
    pub providers: &'a [super::ProviderLink<'a>],
}

/// Why a sign-in failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoginError {
    InvalidCredentials,
    TooManyAttempts {
        retry_after_secs: u64,
    },
    EmailNotVerified,
    AccountDisabled,
    SessionLimit,
    /// The second factor did not come in time (or its sign-in was used up): start again.
    SignInExpired,
    /// The passkey's answer did not verify.
    PasskeyRefused,
}

impl LoginError {
    /// The status of the login page showing this error.
    pub fn status(self) -> StatusCode {
        match self {
            LoginError::InvalidCredentials => StatusCode::UNAUTHORIZED,
            LoginError::TooManyAttempts { .. } => StatusCode::TOO_MANY_REQUESTS,
            LoginError::EmailNotVerified | LoginError::AccountDisabled | LoginError::SessionLimit => {
                StatusCode::FORBIDDEN
            }
            LoginError::SignInExpired | LoginError::PasskeyRefused => StatusCode::UNAUTHORIZED,
        }
    }

    /// The message, as HTML.
    fn message(self, locale: Locale) -> String {
        match self {
            LoginError::InvalidCredentials => escape(t(locale, Key::InvalidCredentials)),
            LoginError::TooManyAttempts { retry_after_secs } => {
                let time = format!(
                    "<span class=\"nowrap\">{}</span>",
                    escape(&text::duration(locale, retry_after_secs))
                );
                fill(t(locale, Key::TooManyAttempts), &[("time", &time)])
            }
            LoginError::EmailNotVerified => escape(t(locale, Key::EmailNotVerified)),
            LoginError::AccountDisabled => escape(t(locale, Key::AccountDisabled)),
            LoginError::SessionLimit => escape(t(locale, Key::SessionLimit)),
            LoginError::SignInExpired => escape(t(locale, Key::MfaExpired)),
            LoginError::PasskeyRefused => escape(t(locale, Key::PasskeyRefused)),
        }
    }
}

/// The login form: `username`, `password`, `csrf` and the hidden fields, posted to
/// `view.action`. 200, or the status of `view.error` (401, 429, 403). The password is never
/// part of the page; the login hint, when given, pre-fills the e-mail address.
pub fn login_page(locale: Locale, view: &LoginView<'_>) -> Page {
    let mut body = String::with_capacity(2048);
    body.push_str(&format!(
        "<h1 id=\"page-title\">{}</h1>\n",
        escape(t(locale, Key::LoginTitle))
    ));
    if !view.client_name.trim().is_empty() {
        let client = strong(view.client_name);
        body.push_str(&format!(
            "<p class=\"lede\">{}</p>\n",
            fill(t(locale, Key::LoginLede), &[("client", &client)])
        ));
    }
    let mut described_by = String::new();
    let mut invalid = "";
    if let Some(error) = view.error {
        body.push_str(&alert(&error.message(locale)));
        described_by = format!(" aria-describedby=\"{ERROR_ID}\"");
        if error == LoginError::InvalidCredentials {
            invalid = " aria-invalid=\"true\"";
        }
    }
    let hint = view.login_hint.filter(|h| !h.is_empty());
    // Focus where the user types next: the password when the address is already there.
    let (focus_user, focus_password) = if hint.is_some() {
        ("", " autofocus")
    } else {
        (" autofocus", "")
    };
    let value = hint.map_or_else(String::new, |h| format!(" value=\"{}\"", escape(h)));

    body.push_str(&format!(
        "<form method=\"post\" action=\"{}\">\n",
        escape(view.action)
    ));
    view.hidden.render(view.csrf, &mut body);
    body.push_str(&format!(
        "<div class=\"field\">\n\
         <label for=\"username\">{label}</label>\n\
         <input id=\"username\" name=\"username\" type=\"text\" inputmode=\"email\" \
         autocomplete=\"username\" autocapitalize=\"none\" spellcheck=\"false\" required\
         {value}{described_by}{invalid}{focus_user}>\n\
         </div>\n",
        label = escape(t(locale, Key::Email)),
    ));
    body.push_str(&format!(
        "<div class=\"field\">\n\
         <label for=\"password\">{label}</label>\n\
         <input id=\"password\" name=\"password\" type=\"password\" \
         autocomplete=\"current-password\" required{described_by}{invalid}{focus_password}>\n\
         </div>\n",
        label = escape(t(locale, Key::Password)),
    ));
    body.push_str(&format!(
        "<button type=\"submit\" class=\"button primary\">{}</button>\n</form>\n",
        escape(t(locale, Key::SignIn))
    ));
    body.push_str(&super::federation::provider_buttons(locale, view.providers));
    if let Some(action) = view.passkey_action {
        // Shown by passkey.js where WebAuthn exists: it fetches the options (the form's
        // fields, CSRF token included, posted to `…/options`), asks the authenticator, and
        // submits the form with its answer.
        body.push_str(&format!(
            "<form method=\"post\" action=\"{action}\" id=\"passkey-sign-in\" class=\"passkey\" \
             data-options=\"{action}/options\" hidden>\n\
             <p class=\"muted divider\">{or}</p>\n",
            action = escape(action),
            or = escape(t(locale, Key::PasskeyOr)),
        ));
        view.hidden.render(view.csrf, &mut body);
        body.push_str(&format!(
            "<input type=\"hidden\" name=\"passkey_token\" value=\"\">\n\
             <input type=\"hidden\" name=\"credential\" value=\"\">\n\
             <button type=\"submit\" class=\"button\">{}</button>\n</form>\n{}",
            escape(t(locale, Key::PasskeySignIn)),
            passkey_script(),
        ));
    }

    let title = page_title(locale, t(locale, Key::LoginTitle), view.error.is_some());
    Page {
        status: view.error.map_or(StatusCode::OK, LoginError::status),
        html: document(locale, &title, &body),
    }
}

// ---------------------------------------------------------------------------------------
// Second factor
// ---------------------------------------------------------------------------------------

/// What the second-factor page shows.
#[derive(Debug, Clone, Copy)]
pub struct MfaView<'a> {
    /// Where the form posts.
    pub action: &'a str,
    pub csrf: &'a str,
    /// The sign-in waiting for its factor (a hidden field).
    pub mfa_token: &'a str,
    /// `totp` (an authenticator app) or `email_otp` (a code just e-mailed): what the page
    /// asks for, and a hidden field of the form.
    pub method: &'a str,
    pub client_name: &'a str,
    /// Why the previous code was refused.
    pub error: Option<MfaPageError>,
    pub hidden: Hidden<'a>,
    /// The user has a passkey: a button (with the page's script) answers with it, and
    /// the code field stays for the user's other methods and recovery codes.
    pub passkey: bool,
}

/// Why a second factor was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MfaPageError {
    InvalidCode,
    TooManyAttempts { retry_after_secs: u64 },
}

/// The form for the code of an authenticator app or a recovery code, after the password.
pub fn mfa_page(locale: Locale, view: &MfaView<'_>) -> Page {
    let mut body = String::with_capacity(2048);
    body.push_str(&format!(
        "<h1 id=\"page-title\">{}</h1>\n",
        escape(t(locale, Key::MfaTitle))
    ));
    if !view.client_name.trim().is_empty() {
        let client = strong(view.client_name);
        body.push_str(&format!(
            "<p class=\"lede\">{}</p>\n",
            fill(t(locale, Key::LoginLede), &[("client", &client)])
        ));
    }
    let mut described_by = " aria-describedby=\"code-hint\"".to_owned();
    let mut invalid = "";
    let mut status = StatusCode::OK;
    match view.error {
        Some(MfaPageError::InvalidCode) => {
            body.push_str(&alert(&escape(t(locale, Key::MfaInvalidCode))));
            described_by = format!(" aria-describedby=\"{ERROR_ID} code-hint\"");
            invalid = " aria-invalid=\"true\"";
            status = StatusCode::UNAUTHORIZED;
        }
        Some(MfaPageError::TooManyAttempts { retry_after_secs }) => {
            body.push_str(&alert(
                &LoginError::TooManyAttempts { retry_after_secs }.message(locale),
            ));
            described_by = format!(" aria-describedby=\"{ERROR_ID} code-hint\"");
            status = StatusCode::TOO_MANY_REQUESTS;
        }
        None => {}
    }
    body.push_str(&format!(
        "<form method=\"post\" action=\"{}\">\n",
        escape(view.action)
    ));
    view.hidden.render(view.csrf, &mut body);
    body.push_str(&format!(
        "<input type=\"hidden\" name=\"mfa_token\" value=\"{}\">\n\
         <input type=\"hidden\" name=\"method\" value=\"{}\">\n",
        escape(view.mfa_token),
        escape(view.method)
    ));
    let lede = match view.method {
        _ if view.passkey => Key::MfaLedePasskey,
        "email_otp" => Key::MfaLedeEmail,
        "sms_otp" => Key::MfaLedeSms,
        _ => Key::MfaLede,
    };
    if view.passkey {
        // passkey.js shows the button, fetches the options for this sign-in, and submits
        // the form with the answer in `credential` (and `method` set to `webauthn`).
        body.push_str(&format!(
            "<input type=\"hidden\" name=\"passkey\" value=\"1\">\n\
             <input type=\"hidden\" name=\"credential\" value=\"\">\n\
             <button type=\"button\" class=\"button\" id=\"passkey-factor\" \
             data-options=\"{}\" hidden>{}</button>\n",
            escape(tessera_proto::paths::MFA_CHALLENGE),
            escape(t(locale, Key::PasskeyUse)),
        ));
    }
    body.push_str(&format!(
        "<div class=\"field\">\n\
         <label for=\"code\">{label}</label>\n\
         <p class=\"muted\" id=\"code-hint\">{lede} {hint}</p>\n\
         <input id=\"code\" name=\"code\" type=\"text\" inputmode=\"numeric\" \
         autocomplete=\"one-time-code\" autocapitalize=\"none\" spellcheck=\"false\" maxlength=\"32\" \
         required autofocus{described_by}{invalid}>\n\
         </div>\n",
        label = escape(t(locale, Key::MfaCode)),
        lede = escape(t(locale, lede)),
        hint = escape(t(locale, Key::MfaRecoveryHint)),
    ));
    body.push_str(&format!(
        "<button type=\"submit\" class=\"button primary\">{}</button>\n</form>\n",
        escape(t(locale, Key::Verify))
    ));
    if view.passkey {
        body.push_str(&passkey_script());
    }
    let title = page_title(locale, t(locale, Key::MfaTitle), view.error.is_some());
    Page {
        status,
        html: document(locale, &title, &body),
    }
}

/// What the enrolment page shows (a sign-in to a client that requires a second factor, of
/// a user who has none).
#[derive(Debug, Clone, Copy)]
pub struct EnrolView<'a> {
    pub action: &'a str,
    pub csrf: &'a str,
    pub mfa_token: &'a str,
    pub client_name: &'a str,
    /// The otpauth URI as an SVG QR code (from `qrcode`: paths and rectangles, no script).
    pub qr_svg: &'a str,
    /// The base32 key, for typing.
    pub secret: &'a str,
    pub hidden: Hidden<'a>,
}

/// The enrolment form: the QR code and key of a new authenticator, and its first code,
/// posted like the factor form (method `totp`).
pub fn enrol_page(locale: Locale, view: &EnrolView<'_>) -> Page {
    let mut body = String::with_capacity(8192);
    body.push_str(&format!(
        "<h1 id=\"page-title\">{}</h1>\n",
        escape(t(locale, Key::EnrolTitle))
    ));
    let client = strong(view.client_name);
    body.push_str(&format!(
        "<p class=\"lede\">{}</p>\n",
        fill(t(locale, Key::EnrolLede), &[("client", &client)])
    ));
    // The SVG is the qrcode crate's output for the otpauth URI, never caller text.
    let svg = view.qr_svg.trim_start_matches(|c| c != '<');
    let svg = svg.strip_prefix("<?xml").map_or(svg, |rest| {
        rest.split_once("?>")
            .map_or(rest, |(_, after)| after.trim_start())
    });
    body.push_str(&format!(
        "<figure class=\"qr\" role=\"img\" aria-label=\"{label}\">{svg}</figure>\n\
         <p>{key_label}: <code class=\"key\">{key}</code></p>\n",
        label = escape(t(locale, Key::EnrolTitle)),
        key_label = escape(t(locale, Key::EnrolSecret)),
        key = escape(view.secret),
    ));
    body.push_str(&format!(
        "<form method=\"post\" action=\"{}\">\n",
        escape(view.action)
    ));
    view.hidden.render(view.csrf, &mut body);
    body.push_str(&format!(
        "<input type=\"hidden\" name=\"mfa_token\" value=\"{}\">\n\
         <input type=\"hidden\" name=\"method\" value=\"totp\">\n\
         <div class=\"field\">\n\
         <label for=\"code\">{label}</label>\n\
         <input id=\"code\" name=\"code\" type=\"text\" inputmode=\"numeric\" \
         autocomplete=\"one-time-code\" autocapitalize=\"none\" spellcheck=\"false\" maxlength=\"32\" \
         required autofocus>\n\
         </div>\n\
         <button type=\"submit\" class=\"button primary\">{verify}</button>\n</form>\n",
        escape(view.mfa_token),
        label = escape(t(locale, Key::MfaCode)),
        verify = escape(t(locale, Key::Verify)),
    ));
    Page {
        status: StatusCode::OK,
        html: document(locale, t(locale, Key::EnrolTitle), &body),
    }
}

/// The recovery codes of a factor just enrolled, shown once, and a link on (`continue_to`,
/// a path of this node).
pub fn recovery_codes_page(locale: Locale, codes: &[String], continue_to: &str) -> Page {
    let mut body = String::with_capacity(2048);
    body.push_str(&format!(
        "<h1 id=\"page-title\">{}</h1>\n<p class=\"lede\">{}</p>\n<ul class=\"codes\">\n",
        escape(t(locale, Key::RecoveryTitle)),
        escape(t(locale, Key::RecoveryLede)),
    ));
    for code in codes {
        body.push_str(&format!("<li><code>{}</code></li>\n", escape(code)));
    }
    body.push_str(&format!(
        "</ul>\n<p><a class=\"button primary\" href=\"{}\">{}</a></p>\n",
        escape(continue_to),
        escape(t(locale, Key::Continue)),
    ));
    Page {
        status: StatusCode::OK,
        html: document(locale, t(locale, Key::RecoveryTitle), &body),
    }
}

// ---------------------------------------------------------------------------------------
// Consent
// ---------------------------------------------------------------------------------------

/// What the consent page shows.
#[derive(Debug, Clone, Copy)]
pub struct ConsentView<'a> {
    pub action: &'a str,
    pub csrf: &'a str,
    pub client_name: &'a str,
    /// The requested scopes, in order.
    pub scopes: &'a [&'a str],
    pub hidden: Hidden<'a>,
}

/// The consent form: each requested scope with a description (a scope without one is
/// shown by its name), then `decision=allow` and `decision=deny` buttons posting `csrf` and
/// the hidden fields to `view.action`. 200.
pub fn consent_page(locale: Locale, view: &ConsentView<'_>) -> Page {
    let client = strong(view.client_name);
    let args = [("client", client.as_str())];
    let mut body = String::with_capacity(2048);
    body.push_str(&format!(
        "<h1 id=\"page-title\">{}</h1>\n",
        fill(t(locale, Key::ConsentHeading), &args)
    ));
    body.push_str(&scope_list(locale, view.scopes, &args));
    body.push_str(&format!(
        "<p class=\"muted\">{}</p>\n",
        escape(t(locale, Key::ConsentTrust))
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
        html: document(locale, t(locale, Key::ConsentTitle), &body),
    }
}

// ---------------------------------------------------------------------------------------
// Logout
// ---------------------------------------------------------------------------------------

/// What the logout confirmation shows.
#[derive(Debug, Clone, Copy)]
pub struct LogoutView<'a> {
    pub action: &'a str,
    pub csrf: &'a str,
    /// The application that asked for the logout, when known.
    pub client_name: Option<&'a str>,
    pub hidden: Hidden<'a>,
}

/// "Sign out of Tessera?", with `decision=logout` and `decision=cancel` buttons posting
/// `csrf` and the hidden fields to `view.action`. 200.
pub fn logout_confirm_page(locale: Locale, view: &LogoutView<'_>) -> Page {
    let mut body = String::with_capacity(1024);
    body.push_str(&format!(
        "<h1 id=\"page-title\">{}</h1>\n",
        escape(t(locale, Key::LogoutTitle))
    ));
    if let Some(name) = view.client_name.filter(|n| !n.trim().is_empty()) {
        let client = strong(name);
        body.push_str(&format!(
            "<p>{}</p>\n",
            fill(t(locale, Key::LogoutClient), &[("client", &client)])
        ));
    }
    body.push_str(&format!(
        "<p class=\"muted\">{}</p>\n",
        escape(t(locale, Key::LogoutBody))
    ));
    body.push_str(&decision_form(
        view.action,
        view.csrf,
        view.hidden,
        [
            ("logout", t(locale, Key::SignOut), "primary"),
            ("cancel", t(locale, Key::Cancel), "secondary"),
        ],
    ));
    Page {
        status: StatusCode::OK,
        html: document(locale, t(locale, Key::LogoutTitle), &body),
    }
}

/// "You have signed out". 200.
pub fn logged_out_page(locale: Locale) -> Page {
    let body = format!(
        "<h1 id=\"page-title\">{}</h1>\n<p>{}</p>\n",
        escape(t(locale, Key::LoggedOutTitle)),
        escape(t(locale, Key::LoggedOutBody))
    );
    Page {
        status: StatusCode::OK,
        html: document(locale, t(locale, Key::LoggedOutTitle), &body),
    }
}

/// After the user declined to sign out: says plainly that they are still signed in.
pub fn still_signed_in_page(locale: Locale) -> Page {
    let body = format!(
        "<h1 id=\"page-title\">{}</h1>\n<p>{}</p>\n",
        escape(t(locale, Key::StillSignedInTitle)),
        escape(t(locale, Key::StillSignedInBody))
    );
    Page {
        status: StatusCode::OK,
        html: document(locale, t(locale, Key::StillSignedInTitle), &body),
    }
}

// ---------------------------------------------------------------------------------------
// Ending a sign-in from the new sign-in e-mail
// ---------------------------------------------------------------------------------------

/// What the "end this sign-in?" confirmation shows.
#[derive(Debug, Clone, Copy)]
pub struct EndSignInView<'a> {
    pub action: &'a str,
    pub csrf: &'a str,
    /// When the sign-in happened, as shown (e.g. `2026-11-21 09:46 UTC`).
    pub when: &'a str,
    /// The fields the form carries (the link's token).
    pub hidden: Hidden<'a>,
}

/// "End this sign-in?", with `decision=end` and `decision=keep` buttons posting `csrf`
/// and the hidden fields to `view.action`. 200. Opening the link only shows this page: mail
/// scanners fetch links, so nothing ends without the user's post.
pub fn end_sign_in_page(locale: Locale, view: &EndSignInView<'_>) -> Page {
    let when = format!("<span class=\"nowrap\">{}</span>", escape(view.when));
    let mut body = format!(
        "<h1 id=\"page-title\">{}</h1>\n<p>{}</p>\n",
        escape(t(locale, Key::EndSignInTitle)),
        fill(t(locale, Key::EndSignInBody), &[("time", &when)])
    );
    body.push_str(&decision_form(
        view.action,
        view.csrf,
        view.hidden,
        [
            ("end", t(locale, Key::EndSignIn), "primary"),
            ("keep", t(locale, Key::KeepSignIn), "secondary"),
        ],
    ));
    Page {
        status: StatusCode::OK,
        html: document(locale, t(locale, Key::EndSignInTitle), &body),
    }
}

/// After the session was ended from the link. 200.
pub fn sign_in_ended_page(locale: Locale) -> Page {
    simple_page(locale, Key::SignInEndedTitle, Key::SignInEndedBody)
}

/// After the user said the sign-in was theirs: nothing changed. 200.
pub fn sign_in_kept_page(locale: Locale) -> Page {
    simple_page(locale, Key::SignInKeptTitle, Key::SignInKeptBody)
}

fn simple_page(locale: Locale, title: Key, message: Key) -> Page {
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

// ---------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------

/// A page explaining `kind`, with `status`.
///
/// Note: the router turns a non-JSON `503` (and `413`) into problem JSON on its way out
/// (`http::problem_for_bare_errors`); use `500` for [`ErrorKind::ServerError`].
pub fn error_page(locale: Locale, status: StatusCode, kind: ErrorKind) -> Page {
    let (title, message) = match &kind {
        ErrorKind::InvalidClient => (Key::InvalidClientTitle, Key::InvalidClientBody),
        ErrorKind::InvalidRedirectUri => (Key::InvalidRedirectUriTitle, Key::InvalidRedirectUriBody),
        ErrorKind::InvalidRequest(_) => (Key::InvalidRequestTitle, Key::InvalidRequestBody),
        ErrorKind::SessionExpired => (Key::SessionExpiredTitle, Key::SessionExpiredBody),
        ErrorKind::ServerError => (Key::ServerErrorTitle, Key::ServerErrorBody),
        ErrorKind::NotFound => (Key::NotFoundTitle, Key::NotFoundBody),
        ErrorKind::LinkInvalid => (Key::LinkInvalidTitle, Key::LinkInvalidBody),
    };
    let mut body = format!(
        "<h1 id=\"page-title\">{}</h1>\n<p>{}</p>\n",
        escape(t(locale, title)),
        escape(t(locale, message))
    );
    if let ErrorKind::InvalidRequest(detail) = &kind {
        let detail: String = detail
            .chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .take(MAX_DETAIL_CHARS)
            .collect();
        let detail = detail.trim();
        if !detail.is_empty() {
            body.push_str(&format!(
                "<p class=\"detail\"><strong>{}</strong><code>{}</code></p>\n",
                escape(t(locale, Key::Details)),
                escape(detail)
            ));
        }
    }
    Page {
        status,
        html: document(locale, &page_title(locale, t(locale, title), true), &body),
    }
}

// ---------------------------------------------------------------------------------------
// Pieces
// ---------------------------------------------------------------------------------------

/// A page title (text), marked as an error when `error`.
pub(super) fn page_title(locale: Locale, title: &str, error: bool) -> String {
    if error {
        format!("{}{title}", t(locale, Key::ErrorTitlePrefix))
    } else {
        title.to_owned()
    }
}

/// What the scopes asked for allow, each with its description (a scope without one is
/// shown by its name), introduced with `args`' `{client}`; or that nothing more is asked.
pub(super) fn scope_list(locale: Locale, scopes: &[&str], args: &[(&str, &str)]) -> String {
    let mut seen: Vec<&str> = Vec::with_capacity(scopes.len());
    for scope in scopes {
        if !scope.is_empty() && !seen.contains(scope) {
            seen.push(scope);
        }
    }
    if seen.is_empty() {
        return format!("<p>{}</p>\n", escape(t(locale, Key::ConsentNone)));
    }
    let mut out = format!(
        "<p id=\"scopes-intro\">{}</p>\n<ul class=\"scopes\" aria-labelledby=\"scopes-intro\">\n",
        fill(t(locale, Key::ConsentIntro), args)
    );
    for scope in seen {
        let item = match text::scope(locale, scope) {
            Some(description) => escape(description),
            None => format!("<code>{}</code>", escape(scope)),
        };
        out.push_str(&format!("<li>{item}</li>\n"));
    }
    out.push_str("</ul>\n");
    out
}

/// `text` escaped, in `<strong>`.
pub(super) fn strong(text: &str) -> String {
    format!("<strong>{}</strong>", escape(text))
}

/// The error message (HTML), announced by screen readers.
pub(super) fn alert(message: &str) -> String {
    format!("<div class=\"alert\" role=\"alert\" id=\"{ERROR_ID}\"><p>{message}</p></div>\n")
}

/// A form posting `csrf`, the hidden fields and `decision`: one submit button per
/// `(value, label, class)`.
pub(super) fn decision_form(
    action: &str,
    csrf: &str,
    hidden: Hidden<'_>,
    buttons: [(&str, &str, &str); 2],
) -> String {
    let mut out = format!("<form method=\"post\" action=\"{}\">\n", escape(action));
    hidden.render(csrf, &mut out);
    out.push_str("<div class=\"actions\">\n");
    for (value, label, class) in buttons {
        out.push_str(&format!(
            "<button type=\"submit\" name=\"decision\" value=\"{}\" class=\"button {class}\">{}</button>\n",
            escape(value),
            escape(label)
        ));
    }
    out.push_str("</div>\n</form>\n");
    out
}
