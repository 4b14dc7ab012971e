//! The process-wide rustls crypto provider, for the TLS connections to PostgreSQL and Redis.
//!
//! sqlx names its provider (aws-lc-rs) itself, but the redis crate builds its TLS config with
//! `rustls::ClientConfig::builder()`, which uses the process default provider. rustls picks
//! one on its own only while exactly one provider feature (`aws-lc-rs`, `ring`) is enabled
//! in the whole dependency tree, and panics at the first `rediss://` connection otherwise.
//! So every connect in this crate, and the binary at start, installs aws-lc-rs — the
//! provider every other crate here (reqwest, lettre, jsonwebtoken) uses — first, and
//! a dependency that later enables `ring` changes nothing.

/// Installs aws-lc-rs as the process default rustls provider, unless one is installed
/// already (by this call earlier, or by the embedding program, whose choice is kept).
pub fn install_crypto_provider() {
    if rustls::crypto::CryptoProvider::get_default().is_none() {
        // Err means another thread installed one in between: that one stays, as it should.
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn installs_aws_lc_rs_once_and_keeps_it() {
        install_crypto_provider();
        install_crypto_provider();
        let installed = rustls::crypto::CryptoProvider::get_default();
        let suites = |p: &rustls::crypto::CryptoProvider| {
            p.cipher_suites.iter().map(|s| s.suite()).collect::<Vec<_>>()
        };
        let expected = rustls::crypto::aws_lc_rs::default_provider();
        assert!(
            installed.is_some_and(
                |p| suites(p) == suites(&expected) && p.kx_groups.len() == expected.kx_groups.len()
            ),
            "aws-lc-rs must be the process default provider"
        );
    }
}
