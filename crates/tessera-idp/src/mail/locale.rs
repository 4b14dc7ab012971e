//! The language of a message or a page, chosen from `Accept-Language` (RFC 9110 §12.5.4).

/// The language of a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Locale {
    #[default]
    En,
    Ko,
}

impl Locale {
    /// The best locale for an `Accept-Language` header: the supported language (`ko`,
    /// `ko-KR`, … → Korean; `en`, `*` → English) with the highest q-value, the earlier on
    /// a tie; English when none is acceptable. `q=0` means "not acceptable".
    pub fn from_accept_language(header: &str) -> Locale {
        let mut best: Option<(u16, Locale)> = None;
        for item in header.split(',').take(64) {
            let mut parts = item.split(';');
            let tag = parts.next().unwrap_or_default().trim().to_ascii_lowercase();
            let mut q = 1000u16;
            for param in parts {
                if let Some((name, value)) = param.split_once('=') {
                    if name.trim().eq_ignore_ascii_case("q") {
                        q = parse_qvalue(value.trim()).unwrap_or(0);
                    }
                }
            }
            let primary = tag.split('-').next().unwrap_or_default();
            let locale = match primary {
                "ko" => Locale::Ko,
                "en" | "*" => Locale::En,
                _ => continue,
            };
            if q == 0 {
                continue;
            }
            if best.is_none_or(|(best_q, _)| q > best_q) {
                best = Some((q, locale));
            }
        }
        best.map(|(_, locale)| locale).unwrap_or_default()
    }

    /// The BCP 47 tag (`lang` of the HTML part).
    pub fn tag(self) -> &'static str {
        match self {
            Locale::En => "en",
            Locale::Ko => "ko",
        }
    }
}

/// An RFC 9110 qvalue in thousandths (`0`, `0.5`, `1.000`); `None` when malformed.
fn parse_qvalue(text: &str) -> Option<u16> {
    let (int, frac) = text.split_once('.').unwrap_or((text, ""));
    if frac.len() > 3 || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let frac_value = format!("{frac:0<3}").parse::<u16>().ok()?;
    match int {
        "0" => Some(frac_value),
        "1" if frac_value == 0 => Some(1000),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_language_picks_the_best_supported_language() {
        let cases = [
            ("", Locale::En),
            ("ko", Locale::Ko),
            ("ko-KR", Locale::Ko),
            ("KO-kr,en;q=0.8", Locale::Ko),
            ("en-US,en;q=0.9,ko;q=0.8", Locale::En),
            ("en;q=0.5, ko;q=0.9", Locale::Ko),
            ("fr-FR, ko;q=0.1", Locale::Ko),
            ("fr-FR, de", Locale::En),
            ("ko;q=0, en;q=0.1", Locale::En),
            ("ko;q=0", Locale::En),
            ("ko;q=0.5, *;q=0.8", Locale::En),
            ("*;q=0.5, ko-KR;q=0.6", Locale::Ko),
            ("en, ko", Locale::En),
            ("ko;q=1.0, en", Locale::Ko),
            ("ko;q=banana, en;q=0.1", Locale::En),
            ("kok", Locale::En),
            ("  ko-KR ; q=0.7 ,en;q=0.6", Locale::Ko),
        ];
        for (header, expected) in cases {
            assert_eq!(Locale::from_accept_language(header), expected, "{header:?}");
        }
    }

    #[test]
    fn qvalues_follow_the_grammar() {
        assert_eq!(parse_qvalue("1"), Some(1000));
        assert_eq!(parse_qvalue("1.000"), Some(1000));
        assert_eq!(parse_qvalue("0.8"), Some(800));
        assert_eq!(parse_qvalue("0.125"), Some(125));
        assert_eq!(parse_qvalue("0"), Some(0));
        assert_eq!(parse_qvalue("1.5"), None);
        assert_eq!(parse_qvalue("0.1234"), None);
        assert_eq!(parse_qvalue("2"), None);
    }
}
