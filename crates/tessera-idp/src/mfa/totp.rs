//! TOTP (RFC 6238) as every authenticator app speaks it: HMAC-SHA-1, 6 digits, 30-second
//! steps, one step of clock skew either way; 160-bit secrets (RFC 4226 §4). The arithmetic
//! is `totp-rs`'s; this module fixes the parameters, makes the enrolment URI and its QR code,
//! and returns the matched time step so the store can refuse a second use of it.

use totp_rs::{Algorithm, Builder, Secret, Totp};

/// Bytes of a new secret.
const SECRET_BYTES: usize = 20;

/// A TOTP key with the labels an authenticator app shows.
pub struct TotpKey {
    totp: Totp,
}

impl TotpKey {
    /// A new random key for `account` (the user's e-mail), labelled with `issuer`.
    pub fn generate(issuer: &str, account: &str) -> Result<TotpKey, String> {
        let mut bytes = [0u8; SECRET_BYTES];
        aws_lc_rs::rand::fill(&mut bytes).map_err(|_| "no randomness".to_owned())?;
        TotpKey::from_bytes(&bytes, issuer, account)
    }

    /// The key of stored `bytes`.
    pub fn from_bytes(bytes: &[u8], issuer: &str, account: &str) -> Result<TotpKey, String> {
        let totp = Builder::new()
            .with_algorithm(Algorithm::SHA1)
            .with_digits(6)
            .with_skew(1)
            .with_step_duration(30)
            .with_secret(Secret::new(bytes.to_vec().into_boxed_slice()))
            .with_issuer(Some(issuer))
            .with_account_name(account)
            .build()
            .map_err(|e| e.to_string())?;
        Ok(TotpKey { totp })
    }

    /// The raw secret, to seal and store.
    pub fn bytes(&self) -> &[u8] {
        self.totp.secret().as_bytes()
    }

    /// The secret as people type it into an app: base32 without padding.
    pub fn base32(&self) -> String {
        self.totp.secret().to_base32()
    }

    /// The `otpauth://totp/…` URI an app reads from a QR code.
    pub fn uri(&self) -> Result<String, String> {
        self.totp.to_url().map_err(|e| e.to_string())
    }

    /// The time step whose code `code` is, within one step of `now` (unix seconds); `None`
    /// for a wrong or malformed code. The caller must refuse a step used before.
    pub fn matching_step(&self, code: &str, now: i64) -> Option<i64> {
        let code = code.trim();
        if code.len() != 6 || !code.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let now = u64::try_from(now).ok()?;
        self.totp
            .check(code, now)
            .and_then(|step| i64::try_from(step).ok())
    }

    /// The code of `now` (for tests of this module and the operator's tools).
    pub fn code_at(&self, now: i64) -> String {
        self.totp.generate(u64::try_from(now).unwrap_or(0)).to_string()
    }
}

/// `text` as a QR code in SVG (no script, no external reference: safe to inline).
pub fn qr_svg(text: &str) -> Result<String, String> {
    let code = qrcode::QrCode::new(text.as_bytes()).map_err(|e| e.to_string())?;
    Ok(code
        .render::<qrcode::render::svg::Color<'_>>()
        .min_dimensions(200, 200)
        .quiet_zone(true)
        .build())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 6238 Appendix B, SHA-1: the 20-byte ASCII key "12345678901234567890" (8-digit
    /// codes there; these are their last 6 digits, as HOTP truncation gives).
    #[test]
    fn rfc_6238_vectors() {
        let key = TotpKey::from_bytes(b"12345678901234567890", "Tessera", "a@example.com").unwrap();
        for (time, code) in [
            (59, "287082"),
            (1_111_111_109, "081804"),
            (1_111_111_111, "050471"),
            (1_234_567_890, "005924"),
            (2_000_000_000, "279037"),
        ] {
            assert_eq!(key.code_at(time), code, "at {time}");
            assert_eq!(key.matching_step(code, time), Some(time / 30));
        }
    }

    #[test]
    fn one_step_of_skew_and_no_more() {
        let key = TotpKey::generate("Tessera", "a@example.com").unwrap();
        let now = 1_800_000_015;
        let code = key.code_at(now);
        assert_eq!(key.matching_step(&code, now + 30), Some(now / 30));
        assert_eq!(key.matching_step(&code, now - 30), Some(now / 30));
        assert_eq!(key.matching_step(&code, now + 60), None);
        for bad in ["", "12345", "1234567", "12a456", " 12345 6"] {
            assert_eq!(key.matching_step(bad, now), None, "{bad:?}");
        }
    }

    #[test]
    fn the_uri_and_the_qr_code_carry_the_secret_and_the_labels() {
        let key = TotpKey::generate("Tessera Example", "kim@example.com").unwrap();
        let uri = key.uri().unwrap();
        assert!(
            uri.starts_with("otpauth://totp/Tessera%20Example:kim%40example.com?"),
            "{uri}"
        );
        assert!(uri.contains(&format!("secret={}", key.base32())), "{uri}");
        assert!(uri.contains("issuer=Tessera%20Example"), "{uri}");
        assert_eq!(key.bytes().len(), 20);
        let svg = qr_svg(&uri).unwrap();
        assert!(svg.contains("<svg") && !svg.contains("<script"), "{svg}");
    }
}
