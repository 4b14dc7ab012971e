//! The pieces every account form is made of: labelled fields, the error announced to
//! screen readers, the password rules with the broken one marked, the CSRF field.

use tessera_idp::mail::{escape, Locale};

use super::text::AccountText;
use crate::pages::text::duration;
use crate::pages::views::ERROR_ID;

/// The configured password rules, shown beside every new-password field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PasswordRules {
    pub min_length: usize,
    pub max_bytes: usize,
    /// zxcvbn's minimum score (0: no strength rule).
    pub min_strength: u8,
    /// 0: no reuse rule.
    pub history: usize,
}

/// Which password rule a new password broke.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BrokenRule {
    TooShort,
    TooLong,
    TooWeak,
    Reused,
}

/// Why a form was not accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FormError {
    /// The current password is wrong.
    WrongPassword,
    TooManyAttempts {
        retry_after_secs: u64,
    },
    /// The new password broke a rule; `hint`: zxcvbn's advice (English), if any.
    Password {
        rule: BrokenRule,
        hint: Option<String>,
    },
    /// The two new passwords differ.
    Mismatch,
    InvalidEmail,
    EmailTaken,
    SameEmail,
    /// The confirmation word of the delete form is missing.
    NotConfirmed,
}

impl FormError {
    /// The message (HTML).
    pub(super) fn message(&self, locale: Locale, text: &AccountText) -> String {
        match self {
            FormError::WrongPassword => escape(text.error_wrong_password),
            FormError::TooManyAttempts { retry_after_secs } => format!(
                "{} <span class=\"nowrap\">{}</span>",
                escape(text.error_too_many),
                escape(&duration(locale, *retry_after_secs))
            ),
            FormError::Password { hint, .. } => {
                let mut html = escape(text.error_password_rules);
                if let (Some(hint), Locale::En) = (hint, locale) {
                    html.push(' ');
                    html.push_str(&escape(hint));
                }
                html
            }
            FormError::Mismatch => escape(text.error_mismatch),
            FormError::InvalidEmail => escape(text.error_invalid_email),
            FormError::EmailTaken => escape(text.error_email_taken),
            FormError::SameEmail => escape(text.error_same_email),
            FormError::NotConfirmed => escape(text.error_not_confirmed),
        }
    }

    fn broken_rule(&self) -> Option<BrokenRule> {
        match self {
            FormError::Password { rule, .. } => Some(*rule),
            _ => None,
        }
    }
}

/// The error box (announced), or nothing.
pub(super) fn error_box(locale: Locale, text: &AccountText, error: Option<&FormError>) -> String {
    error
        .map(|e| crate::pages::views::alert(&e.message(locale, text)))
        .unwrap_or_default()
}

/// A success notice (announced politely).
pub(super) fn notice(message: &str) -> String {
    format!(
        "<div class=\"notice\" role=\"status\"><p>{}</p></div>\n",
        escape(message)
    )
}

/// What a field is.
#[derive(Debug, Clone, Copy)]
pub(super) struct Field<'a> {
    pub name: &'a str,
    /// The element id; `f-{name}` when `None` (a page with one such field).
    pub id: Option<&'a str>,
    pub label: &'a str,
    /// `email`, `password`, `text`.
    pub kind: &'a str,
    pub autocomplete: &'a str,
    pub value: Option<&'a str>,
    /// Marked invalid and described by the error box.
    pub invalid: bool,
    /// The id of a description (the rules) to name in `aria-describedby`.
    pub described_by: Option<&'a str>,
    pub autofocus: bool,
}

impl<'a> Field<'a> {
    pub(super) fn new(name: &'a str, label: &'a str, kind: &'a str, autocomplete: &'a str) -> Self {
        Field {
            name,
            id: None,
            label,
            kind,
            autocomplete,
            value: None,
            invalid: false,
            described_by: None,
            autofocus: false,
        }
    }

    pub(super) fn render(&self) -> String {
        let id = self.id.map_or_else(|| format!("f-{}", self.name), str::to_owned);
        let mut described: Vec<&str> = Vec::new();
        if self.invalid {
            described.push(ERROR_ID);
        }
        if let Some(d) = self.described_by {
            described.push(d);
        }
        let described = if described.is_empty() {
            String::new()
        } else {
            format!(" aria-describedby=\"{}\"", described.join(" "))
        };
        format!(
            "<div class=\"field\">\n<label for=\"{id}\">{label}</label>\n\
             <input id=\"{id}\" name=\"{name}\" type=\"{kind}\" autocomplete=\"{auto}\" required{value}{invalid}{described}{focus}>\n</div>\n",
            id = escape(&id),
            label = escape(self.label),
            name = escape(self.name),
            kind = self.kind,
            auto = self.autocomplete,
            value = self
                .value
                .map(|v| format!(" value=\"{}\"", escape(v)))
                .unwrap_or_default(),
            invalid = if self.invalid { " aria-invalid=\"true\"" } else { "" },
            focus = if self.autofocus { " autofocus" } else { "" },
        )
    }
}

/// The id of the rules list, which the new-password field names.
pub(super) const RULES_ID: &str = "password-rules";

/// The password rules as a list, the broken one marked.
pub(super) fn rules_list(text: &AccountText, rules: &PasswordRules, error: Option<&FormError>) -> String {
    let broken = error.and_then(FormError::broken_rule);
    let mut items: Vec<(BrokenRule, String)> = vec![
        (
            BrokenRule::TooShort,
            text.rule_min_length
                .replace("{n}", &rules.min_length.max(1).to_string()),
        ),
        (
            BrokenRule::TooLong,
            text.rule_max_bytes.replace("{n}", &rules.max_bytes.to_string()),
        ),
    ];
    if rules.min_strength > 0 {
        items.push((BrokenRule::TooWeak, text.rule_strength.to_owned()));
    }
    if rules.history > 0 {
        items.push((
            BrokenRule::Reused,
            text.rule_history.replace("{n}", &rules.history.to_string()),
        ));
    }
    let mut out = format!(
        "<p class=\"muted\" id=\"{RULES_ID}-title\">{}</p>\n<ul class=\"rules\" id=\"{RULES_ID}\" aria-labelledby=\"{RULES_ID}-title\">\n",
        escape(text.rules_title)
    );
    for (rule, label) in items {
        if broken == Some(rule) {
            out.push_str(&format!(
                "<li class=\"broken\">{} <span>({})</span></li>\n",
                escape(&label),
                escape(text.rule_broken)
            ));
        } else {
            out.push_str(&format!("<li>{}</li>\n", escape(&label)));
        }
    }
    out.push_str("</ul>\n");
    out
}

/// `<form method="post">` with its CSRF field.
pub(super) fn form_start(action: &str, csrf: &str) -> String {
    format!(
        "<form method=\"post\" action=\"{}\">\n<input type=\"hidden\" name=\"csrf\" value=\"{}\">\n",
        escape(action),
        escape(csrf)
    )
}

/// A form's submit button and end.
pub(super) fn form_end(label: &str, class: &str) -> String {
    format!(
        "<button type=\"submit\" class=\"button {class}\">{}</button>\n</form>\n",
        escape(label)
    )
}
