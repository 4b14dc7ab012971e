//! The hosted pages of federated sign-in: the login page's provider buttons, the page where
//! a user proves an existing account before an upstream identity is linked to it, and the
//! page that says why a sign-in at an upstream did not complete. English and Korean.

use axum::http::StatusCode;
use tessera_idp::federation::FederationError;
use tessera_idp::mail::{escape, Locale};

use super::views::{alert, page_title, strong, ERROR_ID};
use super::{document, fill, Hidden, Page};

/// A text of these pages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Key {
    /// `{provider}`
    ContinueWith,
    Or,
    LinkTitle,
    /// `{provider}`, `{email}`
    LinkLede,
    LinkPassword,
    LinkButton,
    LinkWrongPassword,
    FailedTitle,
    Unreachable,
    UpstreamRefused,
    InvalidAnswer,
    Expired,
    EmailUnverified,
    MissingEmail,
    SignupClosed,
    AccountDisabled,
    LinkedElsewhere,
    SecondFactor,
    TryAgain,
}

fn t(locale: Locale, key: Key) -> &'static str {
    match locale {
        Locale::En => match key {
            Key::ContinueWith => "Continue with {provider}",
            Key::Or => "or",
            Key::LinkTitle => "Link your account",
            Key::LinkLede => {
                "An account with {email} already exists. Enter its password to sign in with {provider} from now on."
            }
            Key::LinkPassword => "Password of your account",
            Key::LinkButton => "Link and continue",
            Key::LinkWrongPassword => "The password is incorrect.",
            Key::FailedTitle => "Sign-in did not complete",
            Key::Unreachable => "The other sign-in service could not be reached. Try again in a moment.",
            Key::UpstreamRefused => "The other sign-in service did not sign you in.",
            Key::InvalidAnswer => {
                "The other sign-in service gave an answer that cannot be trusted, so you were not signed in."
            }
            Key::Expired => "This sign-in expired or was already used. Start again from the application.",
            Key::EmailUnverified => {
                "The other sign-in service has not confirmed your e-mail address. Confirm it there, or sign in with your password."
            }
            Key::MissingEmail => "The other sign-in service did not share your e-mail address.",
            Key::SignupClosed => "New accounts cannot be created this way. Ask your administrator.",
            Key::AccountDisabled => "This account is disabled.",
            Key::LinkedElsewhere => "This identity is already linked to another account.",
            Key::SecondFactor => {
                "This account uses a second factor. Sign in with your password and second factor instead."
            }
            Key::TryAgain => "Start again from the application you were signing in to.",
        },
        Locale::Ko => match key {
            Key::ContinueWith => "{provider}(으)로 계속하기",
            Key::Or => "또는",
            Key::LinkTitle => "계정 연결",
            Key::LinkLede => {
                "{email} 계정이 이미 있습니다. 이 계정의 비밀번호를 입력하면 앞으로 {provider}(으)로 로그인할 수 있습니다."
            }
            Key::LinkPassword => "계정 비밀번호",
            Key::LinkButton => "연결하고 계속하기",
            Key::LinkWrongPassword => "비밀번호가 올바르지 않습니다.",
            Key::FailedTitle => "로그인을 완료하지 못했습니다",
            Key::Unreachable => "외부 로그인 서비스에 연결할 수 없습니다. 잠시 후 다시 시도하세요.",
            Key::UpstreamRefused => "외부 로그인 서비스에서 로그인하지 않았습니다.",
            Key::InvalidAnswer => "외부 로그인 서비스의 응답을 신뢰할 수 없어 로그인하지 않았습니다.",
            Key::Expired => "이 로그인은 만료되었거나 이미 사용되었습니다. 애플리케이션에서 다시 시작하세요.",
            Key::EmailUnverified => {
                "외부 로그인 서비스에서 이메일 주소가 확인되지 않았습니다. 그곳에서 확인하거나 비밀번호로 로그인하세요."
            }
            Key::MissingEmail => "외부 로그인 서비스가 이메일 주소를 제공하지 않았습니다.",
            Key::SignupClosed => "이 방법으로는 새 계정을 만들 수 없습니다. 관리자에게 문의하세요.",
            Key::AccountDisabled => "이 계정은 비활성화되었습니다.",
            Key::LinkedElsewhere => "이 외부 계정은 이미 다른 계정에 연결되어 있습니다.",
            Key::SecondFactor => "이 계정은 2단계 인증을 사용합니다. 비밀번호와 2단계 인증으로 로그인하세요.",
            Key::TryAgain => "로그인하려던 애플리케이션에서 다시 시작하세요.",
        },
    }
}

/// A provider's button on the login page: a link to its start endpoint.
#[derive(Debug, Clone, Copy)]
pub struct ProviderLink<'a> {
    pub href: &'a str,
    pub display_name: &'a str,
}

/// The login page's section of provider buttons (plain links: no script).
pub(super) fn provider_buttons(locale: Locale, providers: &[ProviderLink<'_>]) -> String {
    if providers.is_empty() {
        return String::new();
    }
    let mut out = format!(
        "<div class=\"federation\">\n<p class=\"muted divider\">{}</p>\n",
        escape(t(locale, Key::Or))
    );
    for provider in providers {
        out.push_str(&format!(
            "<a class=\"button secondary\" href=\"{}\">{}</a>\n",
            escape(provider.href),
            fill(
                t(locale, Key::ContinueWith),
                &[("provider", &escape(provider.display_name))]
            )
        ));
    }
    out.push_str("</div>\n");
    out
}

/// What the link confirmation page shows.
pub struct LinkView<'a> {
    pub action: &'a str,
    pub csrf: &'a str,
    pub token: &'a str,
    pub provider: &'a str,
    pub email: &'a str,
    pub wrong_password: bool,
}

/// "An account with this address exists: prove it to link."
pub fn link_page(locale: Locale, view: &LinkView<'_>) -> Page {
    let mut body = format!(
        "<h1 id=\"page-title\">{}</h1>\n<p class=\"lede\">{}</p>\n",
        escape(t(locale, Key::LinkTitle)),
        fill(
            t(locale, Key::LinkLede),
            &[
                ("provider", &strong(view.provider)),
                ("email", &strong(view.email))
            ]
        )
    );
    let mut described_by = String::new();
    if view.wrong_password {
        body.push_str(&alert(t(locale, Key::LinkWrongPassword)));
        described_by = format!(" aria-describedby=\"{ERROR_ID}\" aria-invalid=\"true\"");
    }
    body.push_str(&format!(
        "<form method=\"post\" action=\"{action}\">\n",
        action = escape(view.action)
    ));
    Hidden(&[("link_token", view.token)]).render(view.csrf, &mut body);
    body.push_str(&format!(
        "<div class=\"field\">\n\
         <label for=\"password\">{label}</label>\n\
         <input id=\"password\" name=\"password\" type=\"password\" autocomplete=\"current-password\" \
         required autofocus{described_by}>\n\
         </div>\n\
         <button type=\"submit\" class=\"button primary\">{button}</button>\n</form>\n",
        label = escape(t(locale, Key::LinkPassword)),
        button = escape(t(locale, Key::LinkButton)),
    ));
    let title = page_title(locale, t(locale, Key::LinkTitle), view.wrong_password);
    Page {
        status: if view.wrong_password {
            StatusCode::UNAUTHORIZED
        } else {
            StatusCode::OK
        },
        html: document(locale, &title, &body),
    }
}

/// Why a federated sign-in failed, for the user: a page and its status.
pub fn failed_page(locale: Locale, err: &FederationError) -> Page {
    let (status, message) = match err {
        FederationError::Unreachable(_) => (StatusCode::BAD_GATEWAY, Key::Unreachable),
        FederationError::UpstreamError(_) => (StatusCode::BAD_REQUEST, Key::UpstreamRefused),
        FederationError::InvalidResponse(_)
        | FederationError::IssuerMismatch
        | FederationError::NonceMismatch
        | FederationError::InvalidIdToken(_) => (StatusCode::BAD_GATEWAY, Key::InvalidAnswer),
        FederationError::InvalidState | FederationError::UnknownProvider => {
            (StatusCode::BAD_REQUEST, Key::Expired)
        }
        FederationError::EmailUnverified => (StatusCode::FORBIDDEN, Key::EmailUnverified),
        FederationError::MissingClaim(_) => (StatusCode::BAD_GATEWAY, Key::MissingEmail),
        FederationError::SignupClosed => (StatusCode::FORBIDDEN, Key::SignupClosed),
        FederationError::AccountDisabled => (StatusCode::FORBIDDEN, Key::AccountDisabled),
        FederationError::LinkedElsewhere | FederationError::LastSignInMethod => {
            (StatusCode::CONFLICT, Key::LinkedElsewhere)
        }
        FederationError::Misconfigured(_) | FederationError::Store(_) => {
            (StatusCode::SERVICE_UNAVAILABLE, Key::Unreachable)
        }
    };
    message_page(locale, status, message)
}

/// The page for a linked account that uses a second factor (not yet asked after an
/// upstream sign-in: the user signs in with the password and the factor instead).
pub fn second_factor_page(locale: Locale) -> Page {
    message_page(locale, StatusCode::FORBIDDEN, Key::SecondFactor)
}

fn message_page(locale: Locale, status: StatusCode, message: Key) -> Page {
    let body = format!(
        "<h1 id=\"page-title\">{}</h1>\n<p>{}</p>\n<p class=\"muted\">{}</p>\n",
        escape(t(locale, Key::FailedTitle)),
        escape(t(locale, message)),
        escape(t(locale, Key::TryAgain)),
    );
    Page {
        status,
        html: document(
            locale,
            &page_title(locale, t(locale, Key::FailedTitle), true),
            &body,
        ),
    }
}
