//! Every text of the hosted pages, in English and Korean.
//!
//! Texts are plain (not HTML): the renderer escapes them. A text may hold placeholders
//! such as `{client}` or `{time}`, which [`super::fill`] replaces with rendered HTML, so a
//! translation can put the value wherever its grammar wants it.

use tessera_idp::mail::Locale;

/// A text of the pages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Key {
    /// Prefixed to `<title>` when the page shows an error.
    ErrorTitlePrefix,

    LoginTitle,
    /// `{client}`
    LoginLede,
    Email,
    Password,
    SignIn,
    InvalidCredentials,
    /// `{time}`
    TooManyAttempts,
    EmailNotVerified,
    AccountDisabled,
    SessionLimit,

    MfaTitle,
    MfaLede,
    MfaLedeEmail,
    MfaLedeSms,
    MfaCode,
    MfaRecoveryHint,
    MfaInvalidCode,
    MfaExpired,
    PasskeySignIn,
    PasskeyOr,
    PasskeyUse,
    MfaLedePasskey,
    PasskeyRefused,
    EnrolTitle,
    EnrolLede,
    EnrolSecret,
    RecoveryTitle,
    RecoveryLede,
    Continue,
    Verify,

    ConsentTitle,
    /// `{client}`
    ConsentHeading,
    /// `{client}`
    ConsentIntro,
    ConsentNone,
    ConsentTrust,
    Allow,
    Deny,

    DeviceTitle,
    DeviceLede,
    UserCode,
    DeviceInvalidCode,
    /// `{time}`
    DeviceTooManyAttempts,
    /// `{client}`
    DeviceConfirmHeading,
    /// `{code}`
    DeviceConfirmCode,
    DeviceConfirmWarning,
    DeviceApprovedTitle,
    DeviceApprovedBody,
    DeviceDeniedTitle,
    DeviceDeniedBody,

    LogoutTitle,
    /// `{client}`
    LogoutClient,
    LogoutBody,
    SignOut,
    Cancel,

    LoggedOutTitle,
    LoggedOutBody,
    StillSignedInTitle,
    StillSignedInBody,

    EndSignInTitle,
    /// `{time}`
    EndSignInBody,
    EndSignIn,
    KeepSignIn,
    SignInEndedTitle,
    SignInEndedBody,
    SignInKeptTitle,
    SignInKeptBody,
    LinkInvalidTitle,
    LinkInvalidBody,

    InvalidClientTitle,
    InvalidClientBody,
    InvalidRedirectUriTitle,
    InvalidRedirectUriBody,
    InvalidRequestTitle,
    InvalidRequestBody,
    Details,
    SessionExpiredTitle,
    SessionExpiredBody,
    ServerErrorTitle,
    ServerErrorBody,
    NotFoundTitle,
    NotFoundBody,

    ScopeOpenid,
    ScopeProfile,
    ScopeEmail,
    ScopeAddress,
    ScopePhone,
    ScopeOfflineAccess,
}

/// The text of `key` in `locale`.
pub(super) fn t(locale: Locale, key: Key) -> &'static str {
    match locale {
        Locale::En => en(key),
        Locale::Ko => ko(key),
    }
}

fn en(key: Key) -> &'static str {
    match key {
        Key::ErrorTitlePrefix => "Error: ",

        Key::LoginTitle => "Sign in",
        Key::LoginLede => "to continue to {client}",
        Key::Email => "E-mail address",
        Key::Password => "Password",
        Key::SignIn => "Sign in",
        Key::InvalidCredentials => "The e-mail address or the password is incorrect.",
        Key::TooManyAttempts => "Too many failed sign-in attempts. Try again in {time}.",
        Key::EmailNotVerified => {
            "Your e-mail address is not verified yet. Open the link in the e-mail we sent you, \
             then sign in."
        }
        Key::AccountDisabled => "This account is disabled. Contact support if you think this is a mistake.",
        Key::SessionLimit => {
            "You are signed in on too many devices. Sign out on another device, then try again."
        }

        Key::MfaTitle => "Two-step verification",
        Key::MfaLede => "Enter the 6-digit code from your authenticator app.",
        Key::MfaLedeEmail => "Enter the 6-digit code we just sent to your e-mail address.",
        Key::MfaLedeSms => "Enter the 6-digit code we just sent to your phone by text message.",
        Key::MfaCode => "Verification code",
        Key::MfaRecoveryHint => "No access to your app? Enter one of your recovery codes instead.",
        Key::MfaInvalidCode => "The code is incorrect, expired or was already used.",
        Key::MfaExpired => "The sign-in took too long. Sign in again.",
        Key::PasskeySignIn => "Sign in with a passkey",
        Key::PasskeyOr => "or",
        Key::PasskeyUse => "Use your passkey",
        Key::MfaLedePasskey => "Confirm with your passkey, or enter a code below.",
        Key::PasskeyRefused => "The passkey could not be verified. Try again, or sign in with your password.",
        Key::EnrolTitle => "Set up two-step verification",
        Key::EnrolLede => "{client} asks for a second step when you sign in. Scan this code with an authenticator app (or type the key into it), then enter the 6-digit code the app shows.",
        Key::EnrolSecret => "Key",
        Key::RecoveryTitle => "Save your recovery codes",
        Key::RecoveryLede => "If you lose your authenticator app, each of these codes signs you in once. Keep them somewhere safe: they are not shown again.",
        Key::Continue => "Continue",
        Key::Verify => "Verify",

        Key::ConsentTitle => "Allow access",
        Key::ConsentHeading => "{client} wants to access your Tessera account",
        Key::ConsentIntro => "If you allow it, {client} will be able to:",
        Key::ConsentNone => "No additional permissions are requested.",
        Key::ConsentTrust => "Allow only if you trust this application.",
        Key::Allow => "Allow",
        Key::Deny => "Deny",

        Key::DeviceTitle => "Connect a device",
        Key::DeviceLede => "Enter the code shown on your TV, console or command line.",
        Key::UserCode => "Code",
        Key::DeviceInvalidCode => "This code is not valid. Check the code on your device; it may have expired.",
        Key::DeviceTooManyAttempts => "Too many wrong codes. Try again in {time}.",
        Key::DeviceConfirmHeading => "{client} on a device wants to access your Tessera account",
        Key::DeviceConfirmCode => "Check that your device shows this code: {code}",
        Key::DeviceConfirmWarning => "Allow only if you started this on a device of your own just now.",
        Key::DeviceApprovedTitle => "Device connected",
        Key::DeviceApprovedBody => "You can go back to your device; it signs in within a few seconds.",
        Key::DeviceDeniedTitle => "Request denied",
        Key::DeviceDeniedBody => "The device was not connected to your account.",

        Key::LogoutTitle => "Sign out of Tessera?",
        Key::LogoutClient => "{client} asked to sign you out.",
        Key::LogoutBody => "You will be signed out of Tessera in this browser.",
        Key::SignOut => "Sign out",
        Key::Cancel => "Cancel",

        Key::LoggedOutTitle => "You have signed out",
        Key::LoggedOutBody => "You can close this window now.",
        Key::StillSignedInTitle => "You are still signed in",
        Key::StillSignedInBody => "You chose not to sign out. Sign out before you leave a shared computer.",

        Key::EndSignInTitle => "End this sign-in?",
        Key::EndSignInBody => {
            "Your account was signed in to at {time} from a device we had not seen before. If it \
             was not you, end that session now, then change your password."
        }
        Key::EndSignIn => "End that session",
        Key::KeepSignIn => "It was me",
        Key::SignInEndedTitle => "The session has ended",
        Key::SignInEndedBody => {
            "That sign-in can no longer use your account. If it was not you, change your password now."
        }
        Key::SignInKeptTitle => "Nothing was changed",
        Key::SignInKeptBody => "The session stays signed in. The link in the e-mail works until it expires.",
        Key::LinkInvalidTitle => "This link cannot be used",
        Key::LinkInvalidBody => "The link is invalid, was already used, or has expired. Nothing was changed.",

        Key::InvalidClientTitle => "Unknown application",
        Key::InvalidClientBody => {
            "The application that sent you here is not registered with Tessera, so the request \
             cannot continue. Contact the application's support."
        }
        Key::InvalidRedirectUriTitle => "Invalid return address",
        Key::InvalidRedirectUriBody => {
            "The application asked to send you back to an address it has not registered. \
             For your safety, Tessera will not go there."
        }
        Key::InvalidRequestTitle => "Invalid request",
        Key::InvalidRequestBody => {
            "The application sent a request that Tessera cannot process. Go back and try again."
        }
        Key::Details => "Details",
        Key::SessionExpiredTitle => "Your session has expired",
        Key::SessionExpiredBody => {
            "For your security, this page has expired. Go back to the application and sign in again."
        }
        Key::ServerErrorTitle => "Something went wrong",
        Key::ServerErrorBody => "Tessera could not complete your request. Try again in a few minutes.",
        Key::NotFoundTitle => "Page not found",
        Key::NotFoundBody => "The address may be mistyped, or the page may have moved.",

        Key::ScopeOpenid => "Confirm who you are with your Tessera account",
        Key::ScopeProfile => "See your basic profile (language and when it last changed)",
        Key::ScopeEmail => "See your e-mail address",
        Key::ScopeAddress => "See your postal address",
        Key::ScopePhone => "See your phone number",
        Key::ScopeOfflineAccess => "Keep access to your account while you are away",
    }
}

fn ko(key: Key) -> &'static str {
    match key {
        Key::ErrorTitlePrefix => "오류: ",

        Key::LoginTitle => "로그인",
        Key::LoginLede => "{client} 서비스를 이용하려면 로그인하세요",
        Key::Email => "이메일 주소",
        Key::Password => "비밀번호",
        Key::SignIn => "로그인",
        Key::InvalidCredentials => "이메일 주소 또는 비밀번호가 올바르지 않습니다.",
        Key::TooManyAttempts => "로그인 실패 횟수가 너무 많습니다. {time} 후에 다시 시도하세요.",
        Key::EmailNotVerified => {
            "이메일 주소가 아직 인증되지 않았습니다. 보내 드린 이메일의 링크를 연 다음 로그인하세요."
        }
        Key::AccountDisabled => "사용이 중지된 계정입니다. 잘못된 경우 고객 지원에 문의하세요.",
        Key::SessionLimit => "로그인된 기기가 너무 많습니다. 다른 기기에서 로그아웃한 다음 다시 시도하세요.",

        Key::MfaTitle => "2단계 인증",
        Key::MfaLede => "인증 앱에 표시된 6자리 코드를 입력하세요.",
        Key::MfaLedeEmail => "방금 이메일로 보낸 6자리 코드를 입력하세요.",
        Key::MfaLedeSms => "방금 문자 메시지로 보낸 6자리 코드를 입력하세요.",
        Key::MfaCode => "인증 코드",
        Key::MfaRecoveryHint => "앱을 사용할 수 없나요? 대신 복구 코드 중 하나를 입력하세요.",
        Key::MfaInvalidCode => "코드가 올바르지 않거나, 만료되었거나, 이미 사용되었습니다.",
        Key::MfaExpired => "로그인 시간이 초과되었습니다. 다시 로그인하세요.",
        Key::PasskeySignIn => "패스키로 로그인",
        Key::PasskeyOr => "또는",
        Key::PasskeyUse => "패스키 사용",
        Key::MfaLedePasskey => "패스키로 확인하거나 아래에 코드를 입력하세요.",
        Key::PasskeyRefused => "패스키를 확인할 수 없습니다. 다시 시도하거나 비밀번호로 로그인하세요.",
        Key::EnrolTitle => "2단계 인증 설정",
        Key::EnrolLede => "{client}은(는) 로그인할 때 2단계 인증을 요구합니다. 인증 앱으로 이 코드를 스캔하거나 키를 입력한 다음, 앱에 표시된 6자리 코드를 입력하세요.",
        Key::EnrolSecret => "키",
        Key::RecoveryTitle => "복구 코드를 저장하세요",
        Key::RecoveryLede => "인증 앱을 잃어버리면 이 코드로 한 번씩 로그인할 수 있습니다. 안전한 곳에 보관하세요. 다시 표시되지 않습니다.",
        Key::Continue => "계속",
        Key::Verify => "확인",

        Key::ConsentTitle => "접근 허용",
        Key::ConsentHeading => "{client}에서 Tessera 계정에 대한 접근을 요청합니다",
        Key::ConsentIntro => "허용하면 {client}에서 다음 작업을 할 수 있습니다.",
        Key::ConsentNone => "추가로 요청하는 권한이 없습니다.",
        Key::ConsentTrust => "신뢰할 수 있는 애플리케이션인 경우에만 허용하세요.",
        Key::Allow => "허용",
        Key::Deny => "거부",

        Key::DeviceTitle => "기기 연결",
        Key::DeviceLede => "TV, 콘솔 또는 명령줄에 표시된 코드를 입력하세요.",
        Key::UserCode => "코드",
        Key::DeviceInvalidCode => "유효하지 않은 코드입니다. 기기에 표시된 코드를 확인하세요. 코드가 만료되었을 수 있습니다.",
        Key::DeviceTooManyAttempts => "잘못된 코드를 너무 많이 입력했습니다. {time} 후에 다시 시도하세요.",
        Key::DeviceConfirmHeading => "기기의 {client}에서 Tessera 계정에 대한 접근을 요청합니다",
        Key::DeviceConfirmCode => "기기에 이 코드가 표시되는지 확인하세요: {code}",
        Key::DeviceConfirmWarning => "방금 본인의 기기에서 시작한 경우에만 허용하세요.",
        Key::DeviceApprovedTitle => "기기가 연결되었습니다",
        Key::DeviceApprovedBody => "기기로 돌아가세요. 몇 초 안에 로그인됩니다.",
        Key::DeviceDeniedTitle => "요청을 거부했습니다",
        Key::DeviceDeniedBody => "기기가 계정에 연결되지 않았습니다.",

        Key::LogoutTitle => "Tessera에서 로그아웃할까요?",
        Key::LogoutClient => "{client}에서 로그아웃을 요청했습니다.",
        Key::LogoutBody => "이 브라우저에서 Tessera 로그인이 종료됩니다.",
        Key::SignOut => "로그아웃",
        Key::Cancel => "취소",

        Key::LoggedOutTitle => "로그아웃되었습니다",
        Key::LoggedOutBody => "이제 이 창을 닫아도 됩니다.",
        Key::StillSignedInTitle => "로그인 상태가 유지됩니다",
        Key::StillSignedInBody => "로그아웃하지 않았습니다. 공용 컴퓨터를 떠나기 전에 로그아웃하세요.",

        Key::EndSignInTitle => "이 로그인을 종료할까요?",
        Key::EndSignInBody => {
            "{time}에 처음 보는 기기에서 계정에 로그인했습니다. 본인이 아니라면 지금 해당 세션을 \
             종료한 다음 비밀번호를 변경하세요."
        }
        Key::EndSignIn => "해당 세션 종료",
        Key::KeepSignIn => "본인이 맞습니다",
        Key::SignInEndedTitle => "세션이 종료되었습니다",
        Key::SignInEndedBody => {
            "해당 로그인은 더 이상 계정을 사용할 수 없습니다. 본인이 아니었다면 지금 비밀번호를 변경하세요."
        }
        Key::SignInKeptTitle => "변경된 내용이 없습니다",
        Key::SignInKeptBody => "세션이 유지됩니다. 이메일의 링크는 만료될 때까지 사용할 수 있습니다.",
        Key::LinkInvalidTitle => "이 링크는 사용할 수 없습니다",
        Key::LinkInvalidBody => {
            "잘못된 링크이거나, 이미 사용했거나, 만료된 링크입니다. 변경된 내용은 없습니다."
        }

        Key::InvalidClientTitle => "알 수 없는 애플리케이션",
        Key::InvalidClientBody => {
            "이 요청을 보낸 애플리케이션이 Tessera에 등록되어 있지 않아 계속할 수 없습니다. \
             해당 애플리케이션의 고객 지원에 문의하세요."
        }
        Key::InvalidRedirectUriTitle => "잘못된 반환 주소",
        Key::InvalidRedirectUriBody => {
            "애플리케이션이 등록되지 않은 주소로 돌아가도록 요청했습니다. \
             안전을 위해 Tessera는 이 주소로 이동하지 않습니다."
        }
        Key::InvalidRequestTitle => "잘못된 요청",
        Key::InvalidRequestBody => {
            "애플리케이션이 Tessera가 처리할 수 없는 요청을 보냈습니다. 돌아가서 다시 시도하세요."
        }
        Key::Details => "자세한 내용",
        Key::SessionExpiredTitle => "세션이 만료되었습니다",
        Key::SessionExpiredBody => {
            "보안을 위해 이 페이지가 만료되었습니다. 애플리케이션으로 돌아가 다시 로그인하세요."
        }
        Key::ServerErrorTitle => "문제가 발생했습니다",
        Key::ServerErrorBody => "요청을 처리하지 못했습니다. 몇 분 후에 다시 시도하세요.",
        Key::NotFoundTitle => "페이지를 찾을 수 없습니다",
        Key::NotFoundBody => "주소가 잘못되었거나 페이지가 이동되었을 수 있습니다.",

        Key::ScopeOpenid => "Tessera 계정으로 본인 확인",
        Key::ScopeProfile => "기본 프로필(언어, 최종 변경 시각) 보기",
        Key::ScopeEmail => "이메일 주소 보기",
        Key::ScopeAddress => "우편 주소 보기",
        Key::ScopePhone => "전화번호 보기",
        Key::ScopeOfflineAccess => "사용하지 않는 동안에도 계정에 계속 접근",
    }
}

/// The description of a standard scope; `None` for any other scope (shown as its name).
pub(super) fn scope(locale: Locale, scope: &str) -> Option<&'static str> {
    let key = match scope {
        "openid" => Key::ScopeOpenid,
        "profile" => Key::ScopeProfile,
        "email" => Key::ScopeEmail,
        "address" => Key::ScopeAddress,
        "phone" => Key::ScopePhone,
        "offline_access" => Key::ScopeOfflineAccess,
        _ => return None,
    };
    Some(t(locale, key))
}

/// A wait in words: "1 minute 30 seconds", "1분 30초". Hours drop the seconds, rounding the
/// minutes up, so the text never promises less than the wait. Zero reads as one second.
pub(super) fn duration(locale: Locale, secs: u64) -> String {
    let secs = secs.max(1);
    let (hours, minutes, seconds) = if secs >= 3600 {
        let minutes = secs.div_ceil(60);
        (minutes / 60, minutes % 60, 0)
    } else {
        (0, secs / 60, secs % 60)
    };
    let mut parts = Vec::with_capacity(3);
    for (value, unit) in [
        (hours, Unit::Hour),
        (minutes, Unit::Minute),
        (seconds, Unit::Second),
    ] {
        if value > 0 {
            parts.push(unit.format(locale, value));
        }
    }
    parts.join(" ")
}

#[derive(Clone, Copy)]
enum Unit {
    Hour,
    Minute,
    Second,
}

impl Unit {
    fn format(self, locale: Locale, value: u64) -> String {
        match locale {
            Locale::Ko => {
                let unit = match self {
                    Unit::Hour => "시간",
                    Unit::Minute => "분",
                    Unit::Second => "초",
                };
                format!("{value}{unit}")
            }
            Locale::En => {
                let unit = match (self, value == 1) {
                    (Unit::Hour, true) => "hour",
                    (Unit::Hour, false) => "hours",
                    (Unit::Minute, true) => "minute",
                    (Unit::Minute, false) => "minutes",
                    (Unit::Second, true) => "second",
                    (Unit::Second, false) => "seconds",
                };
                format!("{value} {unit}")
            }
        }
    }
}
