//! The password policy: length (NIST SP 800-63B §5.1.1.2) and strength (zxcvbn).

use super::hasher::nfkc;
use crate::config::PasswordsConfig;

/// Why a new password is refused. `Display` is one short English sentence for the user;
/// [`PolicyViolation::code`] is the stable machine code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyViolation {
    /// Fewer than `min` characters (Unicode scalar values after NFKC); also an empty password.
    #[error("The password must be at least {min} characters long.")]
    TooShort { min: usize },
    /// More than `max_bytes` bytes of UTF-8.
    #[error("The password must be at most {max_bytes} bytes long.")]
    TooLong { max_bytes: usize },
    /// zxcvbn scores it below the configured minimum; `warning` and `suggestions` are zxcvbn's
    /// English feedback, when it has any.
    #[error("The password is too easy to guess.")]
    TooWeak {
        score: u8,
        warning: Option<String>,
        suggestions: Vec<String>,
    },
    /// It matches one of the user's last `history` passwords (checked by
    /// [`super::is_reused`], not by [`PasswordPolicy::check`]).
    #[error("The password was used recently; choose one you have not used in your last {history}.")]
    Reused { history: usize },
}

impl PolicyViolation {
    /// Stable machine code, e.g. for an API error body.
    pub fn code(&self) -> &'static str {
        match self {
            PolicyViolation::TooShort { .. } => "password_too_short",
            PolicyViolation::TooLong { .. } => "password_too_long",
            PolicyViolation::TooWeak { .. } => "password_too_weak",
            PolicyViolation::Reused { .. } => "password_reused",
        }
    }
}

/// The rules a new password must meet, from `[passwords]` in the configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PasswordPolicy {
    min_length: usize,
    max_bytes: usize,
    min_strength: u8,
    history: usize,
}

impl PasswordPolicy {
    pub fn new(config: &PasswordsConfig) -> Self {
        PasswordPolicy {
            min_length: config.min_length,
            max_bytes: config.max_bytes,
            min_strength: config.min_strength,
            history: config.history,
        }
    }

    /// How many previous passwords may not be reused (for [`PolicyViolation::Reused`]).
    pub fn history(&self) -> usize {
        self.history
    }

    /// Checks a new password. `user_inputs` are the user's own data (e-mail address, name):
    /// passwords built from them are weak. An e-mail address also contributes its local part,
    /// the pieces of that local part, and its domain labels.
    ///
    /// Order: too long (bytes, as typed and after NFKC), too short (characters after NFKC),
    /// too weak. Reuse is not checked here.
    pub fn check(&self, password: &str, user_inputs: &[&str]) -> Result<(), PolicyViolation> {
        // Before normalising, so an oversized input costs nothing more.
        if password.len() > self.max_bytes {
            return Err(PolicyViolation::TooLong {
                max_bytes: self.max_bytes,
            });
        }
        let normalised = nfkc(password);
        if normalised.len() > self.max_bytes {
            return Err(PolicyViolation::TooLong {
                max_bytes: self.max_bytes,
            });
        }
        if normalised.is_empty() || normalised.chars().count() < self.min_length {
            return Err(PolicyViolation::TooShort {
                min: self.min_length.max(1),
            });
        }
        if self.min_strength == 0 {
            return Ok(());
        }
        let inputs = expand_user_inputs(user_inputs);
        let inputs: Vec<&str> = inputs.iter().map(String::as_str).collect();
        let entropy = zxcvbn::zxcvbn(&normalised, &inputs);
        let score = u8::from(entropy.score());
        if score >= self.min_strength {
            return Ok(());
        }
        let feedback = entropy.feedback();
        Err(PolicyViolation::TooWeak {
            score,
            warning: feedback.and_then(|f| f.warning()).map(|w| w.to_string()),
            suggestions: feedback
                .map(|f| f.suggestions().iter().map(ToString::to_string).collect())
                .unwrap_or_default(),
        })
    }
}

/// The inputs, plus for an e-mail address its local part, the local part's pieces (split at
/// `.`, `_`, `-`, `+`) and its domain labels other than the last, each of 3 characters or more.
fn expand_user_inputs(user_inputs: &[&str]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut push = |s: &str| {
        let s = nfkc(s.trim()).to_lowercase();
        if s.chars().count() >= 3 && !out.contains(&s) {
            out.push(s);
        }
    };
    for input in user_inputs {
        push(input);
        if let Some((local, domain)) = input.rsplit_once('@') {
            push(local);
            for piece in local.split(['.', '_', '-', '+']) {
                push(piece);
            }
            let labels: Vec<&str> = domain.split('.').collect();
            if let Some((_, rest)) = labels.split_last() {
                for label in rest {
                    push(label);
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> PasswordPolicy {
        PasswordPolicy::new(&PasswordsConfig::default())
    }

    const ALICE: &[&str] = &["alice@example.com"];

    #[test]
    fn too_short_counts_characters_after_nfkc() {
        let policy = policy();
        let err = policy.check("", ALICE).unwrap_err();
        assert_eq!(err, PolicyViolation::TooShort { min: 8 });
        assert_eq!(err.code(), "password_too_short");
        assert_eq!(
            err.to_string(),
            "The password must be at least 8 characters long."
        );
        assert_eq!(
            policy.check("Xq7#vL2", ALICE),
            Err(PolicyViolation::TooShort { min: 8 })
        );
        // Seven "é" written decomposed are 14 scalar values but 7 characters after NFKC.
        let decomposed = "e\u{301}".repeat(7);
        assert_eq!(decomposed.chars().count(), 14);
        assert_eq!(
            policy.check(&decomposed, ALICE),
            Err(PolicyViolation::TooShort { min: 8 })
        );
        // Eight multi-byte characters are long enough.
        assert!(!matches!(
            policy.check("日本語の秘密鍵だよ", ALICE),
            Err(PolicyViolation::TooShort { .. })
        ));
    }

    #[test]
    fn too_long_counts_bytes() {
        let policy = policy();
        let long = "Zq9!".repeat(64) + "x";
        assert_eq!(long.len(), 257);
        let err = policy.check(&long, ALICE).unwrap_err();
        assert_eq!(err, PolicyViolation::TooLong { max_bytes: 256 });
        assert_eq!(err.code(), "password_too_long");
        assert_eq!(err.to_string(), "The password must be at most 256 bytes long.");
        // 86 three-byte characters are 258 bytes, though only 86 characters.
        assert_eq!(
            policy.check(&"語".repeat(86), ALICE),
            Err(PolicyViolation::TooLong { max_bytes: 256 })
        );
        // NFKC can expand: U+FDFA is one character of 3 bytes but 18 characters after NFKC.
        let expands = "\u{fdfa}".repeat(10);
        assert!(expands.len() <= 256);
        assert_eq!(
            policy.check(&expands, ALICE),
            Err(PolicyViolation::TooLong { max_bytes: 256 })
        );
    }

    #[test]
    fn weak_passwords_are_refused_with_feedback() {
        let policy = policy();
        for password in [
            "password",
            "qwertyuiop",
            "alice2024",
            "Alice2024",
            "alice@example.com",
        ] {
            let err = policy.check(password, ALICE).unwrap_err();
            let PolicyViolation::TooWeak { score, .. } = &err else {
                panic!("{password}: {err:?}");
            };
            assert!(*score < 3, "{password}: {score}");
            assert_eq!(err.code(), "password_too_weak");
            assert_eq!(err.to_string(), "The password is too easy to guess.");
        }
        let Err(PolicyViolation::TooWeak {
            warning, suggestions, ..
        }) = policy.check("password", &[])
        else {
            panic!("\"password\" accepted");
        };
        assert!(warning.is_some() || !suggestions.is_empty());
    }

    #[test]
    fn the_email_makes_a_password_weak() {
        // An uncommon word is strong enough on its own, but not when it is the user's address.
        let policy = policy();
        assert_eq!(policy.check("kwyjibo2024", &[]), Ok(()));
        let known = policy.check("kwyjibo2024", &["kwyjibo@example.com"]);
        assert!(matches!(known, Err(PolicyViolation::TooWeak { .. })), "{known:?}");
        assert_eq!(policy.check("alice@example.com", &[]), Ok(()));
        assert!(policy.check("alice@example.com", ALICE).is_err());
    }

    #[test]
    fn strong_passphrases_pass() {
        let policy = policy();
        for password in [
            "vivid ostrich quantum lantern 47",
            "T7#mq9!Lp2vX@w4z",
            "cr\u{e8}me-br\u{fb}l\u{e9}e-octopus-harbour-91",
        ] {
            assert_eq!(policy.check(password, ALICE), Ok(()), "{password}");
        }
    }

    #[test]
    fn min_strength_zero_checks_length_only() {
        let policy = PasswordPolicy::new(&PasswordsConfig {
            min_strength: 0,
            ..PasswordsConfig::default()
        });
        assert_eq!(policy.check("password", ALICE), Ok(()));
        assert_eq!(
            policy.check("passwor", ALICE),
            Err(PolicyViolation::TooShort { min: 8 })
        );
    }

    #[test]
    fn reused_has_its_code_and_sentence() {
        let err = PolicyViolation::Reused {
            history: policy().history(),
        };
        assert_eq!(err.code(), "password_reused");
        assert_eq!(
            err.to_string(),
            "The password was used recently; choose one you have not used in your last 5."
        );
    }

    #[test]
    fn user_inputs_are_expanded() {
        let inputs = expand_user_inputs(&["Alice.Wonder+idp@Mail.Example.com", "Al"]);
        assert_eq!(
            inputs,
            [
                "alice.wonder+idp@mail.example.com",
                "alice.wonder+idp",
                "alice",
                "wonder",
                "idp",
                "mail",
                "example"
            ]
        );
    }
}
