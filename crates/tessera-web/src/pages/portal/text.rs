//! The texts of the hosted apps' frame, in English and Korean (plain text: escaped by the
//! renderer).

use tessera_idp::mail::Locale;

/// The frame's texts in one language.
#[derive(Debug, Clone, Copy)]
pub struct PortalText {
    pub navigation: &'static str,
    pub skip_to_content: &'static str,
    pub sign_out: &'static str,
    pub session: &'static str,
    /// Followed by the remaining time (m:ss).
    pub expires_in: &'static str,
    pub extend: &'static str,
    pub expired: &'static str,
    pub sign_in_again: &'static str,
}

const EN: PortalText = PortalText {
    navigation: "Account sections",
    skip_to_content: "Skip to content",
    sign_out: "Sign out",
    session: "Your session",
    expires_in: "Your session expires soon because you have been inactive. Time left:",
    extend: "Stay signed in",
    expired: "Your session has expired. Sign in again to continue where you were.",
    sign_in_again: "Sign in again",
};

const KO: PortalText = PortalText {
    navigation: "계정 메뉴",
    skip_to_content: "본문으로 건너뛰기",
    sign_out: "로그아웃",
    session: "로그인 세션",
    expires_in: "한동안 활동이 없어 곧 로그아웃됩니다. 남은 시간:",
    extend: "로그인 유지",
    expired: "세션이 만료되었습니다. 다시 로그인하면 보던 페이지로 돌아갑니다.",
    sign_in_again: "다시 로그인",
};

impl PortalText {
    pub fn of(locale: Locale) -> PortalText {
        match locale {
            Locale::En => EN,
            Locale::Ko => KO,
        }
    }
}
