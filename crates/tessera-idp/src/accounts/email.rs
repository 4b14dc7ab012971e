//! E-mail addresses as account identifiers: one normal form, so `Alice@Example.com `,
//! `alice@example.com` and a decomposed `é` are the same account.

use unicode_normalization::UnicodeNormalization;

/// Longest address accepted (RFC 5321 §4.5.3.1.3 path limit).
const MAX_EMAIL_BYTES: usize = 254;

/// The normal form of an address: trimmed, NFC, lower-case. `None` if it is not a plausible
/// address (one `@`, non-empty parts, a dot-free or dotted domain without spaces or controls).
pub fn normalize(raw: &str) -> Option<String> {
    let email: String = raw.trim().nfc().collect::<String>().to_lowercase();
    if email.is_empty() || email.len() > MAX_EMAIL_BYTES {
        return None;
    }
    let (local, domain) = email.split_once('@')?;
    let plausible = !local.is_empty()
        && local.len() <= 64
        && !domain.is_empty()
        && !domain.contains('@')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !domain.contains("..")
        && !email
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || matches!(c, '<' | '>' | '"' | ',' | ';'));
    plausible.then_some(email)
}

/// The local part (for the password policy's "user inputs").
pub fn local_part(email: &str) -> &str {
    email.split_once('@').map_or(email, |(local, _)| local)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn case_space_and_unicode_forms_are_one_address() {
        assert_eq!(normalize("  Alice@Example.COM ").unwrap(), "alice@example.com");
        // "é" composed (U+00E9) and decomposed (e + U+0301) normalise alike.
        assert_eq!(
            normalize("jos\u{e9}@example.com"),
            normalize("jose\u{301}@example.com")
        );
    }

    #[test]
    fn implausible_addresses_are_refused() {
        for bad in [
            "",
            "alice",
            "@example.com",
            "alice@",
            "a@b@c",
            "alice@.example.com",
            "alice@example..com",
            "al ice@example.com",
            "alice@exa\u{0}mple.com",
            "<alice@example.com>",
            "alice@example.com,bob@x.y",
            "' OR 1=1 --@x",
        ] {
            assert!(normalize(bad).is_none(), "{bad:?} accepted");
        }
        assert!(normalize(&format!("{}@example.com", "a".repeat(65))).is_none());
        assert!(normalize("o'brien+tag@example.co.kr").is_some());
    }
}
