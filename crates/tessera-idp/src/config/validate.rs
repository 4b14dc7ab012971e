//! The checks at start-up of every value that the types alone do not constrain. Each
//! error names its key.

use base64::Engine as _;

use super::{decode_master_key, Config, ConfigError, MailTransport};

impl Config {
    /// Checks every value that the types alone do not constrain.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if let Some(issuer) = &self.issuer {
            validate_issuer(issuer)?;
        }
        if let Some(url) = &self.database_url {
            tessera_store::durable::Backend::of_url(url.expose()).map_err(|_| ConfigError::Invalid {
                key: "database_url".into(),
                reason: "must start with postgres:// or sqlite:".to_owned(),
            })?;
        }
        if let Some(url) = &self.redis_url {
            let url = url.expose();
            if !(url.starts_with("redis://") || url.starts_with("rediss://")) {
                return Err(ConfigError::Invalid {
                    key: "redis_url".into(),
                    reason: "must start with redis:// or rediss://".to_owned(),
                });
            }
        }
        match &self.master_key {
            Some(key) => {
                decode_master_key(key.expose())?;
            }
            None if !self.uses_embedded_database() => {
                return Err(ConfigError::Invalid {
                    key: "master_key".into(),
                    reason: "is required when the database is not the embedded default: every node must \
                             share it (set TESSERA_MASTER_KEY to base64 of 32 random bytes)"
                        .to_owned(),
                })
            }
            None => {}
        }
        positive(
            "database.max_connections",
            u64::from(self.database.max_connections),
        )?;
        positive(
            "database.acquire_timeout_secs",
            self.database.acquire_timeout_secs,
        )?;
        positive("keys.reload_secs", self.keys.reload_secs)?;
        positive("keys.retire_window_secs", self.keys.retire_window_secs)?;
        positive("http.request_timeout_secs", self.http.request_timeout_secs)?;
        positive("metrics.refresh_secs", self.metrics.refresh_secs)?;
        if self.http.max_body_bytes < 1024 {
            return Err(ConfigError::Invalid {
                key: "http.max_body_bytes".into(),
                reason: "must be at least 1024".to_owned(),
            });
        }
        self.log.validate()?;
        for entry in &self.http.trusted_proxies {
            tessera_proto::net::Cidr::parse(entry).map_err(|reason| ConfigError::Invalid {
                key: "http.trusted_proxies".into(),
                reason,
            })?;
        }
        let rotate_after = self.keys.rotate_after_secs;
        if rotate_after != 0 && (rotate_after < 3600 || rotate_after <= self.keys.prepublish_secs) {
            return Err(ConfigError::Invalid {
                key: "keys.rotate_after_secs".into(),
                reason: "must be 0 (off), or at least 3600 and longer than keys.prepublish_secs".to_owned(),
            });
        }
        let mfa = &self.mfa;
        if !(30..=900).contains(&mfa.challenge_ttl_secs) {
            return Err(ConfigError::invalid(
                "mfa.challenge_ttl_secs",
                "must be between 30 and 900",
            ));
        }
        let issuer = mfa.totp_issuer.trim();
        if issuer.is_empty()
            || issuer.len() > 64
            || issuer.contains(':')
            || issuer.chars().any(char::is_control)
        {
            return Err(ConfigError::invalid(
                "mfa.totp_issuer",
                "must be 1-64 printable characters without `:`",
            ));
        }
        if mfa.sms_sender == crate::config::SmsSenderKind::Webhook {
            let url = mfa.sms_webhook_url.as_deref().ok_or_else(|| {
                ConfigError::invalid(
                    "mfa.sms_webhook_url",
                    "is required when mfa.sms_sender = \"webhook\"",
                )
            })?;
            let parsed = url::Url::parse(url.trim())
                .map_err(|e| ConfigError::invalid("mfa.sms_webhook_url", format!("is not a URL ({e})")))?;
            if !matches!(parsed.scheme(), "http" | "https") || parsed.host().is_none() {
                return Err(ConfigError::invalid(
                    "mfa.sms_webhook_url",
                    "must be an http:// or https:// URL",
                ));
            }
            if mfa
                .sms_webhook_secret
                .as_ref()
                .is_none_or(|s| s.expose().len() < 16)
            {
                return Err(ConfigError::invalid(
                    "mfa.sms_webhook_secret",
                    "is required with the webhook sender: at least 16 characters (32 random bytes recommended)",
                ));
            }
        }
        self.federation.validate()?;
        self.validate_tokens_and_sessions()
    }

    fn validate_tokens_and_sessions(&self) -> Result<(), ConfigError> {
        let invalid = |key: &str, reason: &str| ConfigError::invalid(key, reason);
        if !["ES256", "RS256", "EdDSA"].contains(&self.tokens.access_token_alg.as_str()) {
            return Err(invalid(
                "tokens.access_token_alg",
                "must be ES256, RS256 or EdDSA",
            ));
        }
        positive("tokens.access_token_ttl_secs", self.tokens.access_token_ttl_secs)?;
        positive(
            "tokens.refresh_token_ttl_secs",
            self.tokens.refresh_token_ttl_secs,
        )?;
        positive("sessions.idle_timeout_secs", self.sessions.idle_timeout_secs)?;
        positive(
            "client_auth.assertion_max_lifetime_secs",
            self.client_auth.assertion_max_lifetime_secs,
        )?;
        positive("client_auth.jwks_max_bytes", self.client_auth.jwks_max_bytes)?;
        positive(
            "client_auth.jwks_fetch_timeout_ms",
            self.client_auth.jwks_fetch_timeout_ms,
        )?;
        positive(
            "sessions.cleanup_interval_secs",
            self.sessions.cleanup_interval_secs,
        )?;
        positive(
            "tokens.dpop.nonce_lifetime_secs",
            self.tokens.dpop.nonce_lifetime_secs,
        )?;
        if !(1..=600).contains(&self.tokens.dpop.proof_max_age_secs) {
            return Err(invalid(
                "tokens.dpop.proof_max_age_secs",
                "must be between 1 and 600: a proof is meant for one request, now",
            ));
        }
        if self.tokens.refresh_grace_secs > 60 {
            return Err(invalid(
                "tokens.refresh_grace_secs",
                "must be at most 60: a longer window weakens theft detection",
            ));
        }
        if self.keys.retire_window_secs < self.tokens.access_token_ttl_secs {
            return Err(invalid(
                "keys.retire_window_secs",
                "must be at least tokens.access_token_ttl_secs, or tokens outlive the key that verifies them",
            ));
        }
        if let Some(pepper) = &self.pepper {
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(pepper.expose().trim())
                .map_err(|_| invalid("pepper", "is not base64"))?;
            if bytes.len() < 16 {
                return Err(invalid("pepper", "must be at least 16 bytes (32 recommended)"));
            }
        }
        if self.passwords.min_length < 8 {
            return Err(invalid(
                "passwords.min_length",
                "must be at least 8 (NIST SP 800-63B)",
            ));
        }
        if self.passwords.max_bytes < 64 || self.passwords.max_bytes > 4096 {
            return Err(invalid("passwords.max_bytes", "must be between 64 and 4096"));
        }
        if self.passwords.min_strength > 4 {
            return Err(invalid("passwords.min_strength", "must be 0 to 4"));
        }
        if self.passwords.argon2_memory_kib < 8 * self.passwords.argon2_parallelism.max(1)
            || self.passwords.argon2_iterations == 0
            || self.passwords.argon2_parallelism == 0
        {
            return Err(invalid(
                "passwords.argon2_memory_kib",
                "Argon2 parameters are out of range",
            ));
        }
        positive("login.max_failures", u64::from(self.login.max_failures))?;
        positive("login.window_secs", self.login.window_secs)?;
        positive("login.lockout_secs", self.login.lockout_secs)?;
        if self.login.max_lockout_secs < self.login.lockout_secs {
            return Err(invalid(
                "login.max_lockout_secs",
                "must be at least login.lockout_secs",
            ));
        }
        positive("device.code_ttl_secs", self.device.code_ttl_secs)?;
        positive("device.poll_interval_secs", self.device.poll_interval_secs)?;
        if self.device.poll_interval_secs >= self.device.code_ttl_secs {
            return Err(invalid(
                "device.poll_interval_secs",
                "must be shorter than device.code_ttl_secs",
            ));
        }
        positive(
            "device.max_failures_per_ip",
            u64::from(self.device.max_failures_per_ip),
        )?;
        positive("device.max_failures", u64::from(self.device.max_failures))?;
        self.validate_alerts()?;
        if self.mail.transport == Some(MailTransport::File) && self.mail.smtp_url.is_some() {
            return Err(invalid(
                "mail.smtp_url",
                "is set but mail.transport = \"file\" would never use it: remove mail.transport \
                 (the server is then used) or mail.smtp_url",
            ));
        }
        if self.mail.transport() == MailTransport::Smtp && self.mail.smtp_url.is_none() {
            return Err(invalid(
                "mail.smtp_url",
                "is required when mail.transport = \"smtp\"",
            ));
        }
        if let Some(url) = &self.mail.smtp_url {
            check_smtp_url(url.expose())?;
        }
        if !self.mail.from.contains('@') {
            return Err(invalid(
                "mail.from",
                "must be an e-mail address, e.g. \"Tessera <no-reply@example.com>\"",
            ));
        }
        if let Some(audience) = &self.tokens.audience {
            if audience.trim().is_empty() {
                return Err(invalid("tokens.audience", "must not be empty"));
            }
        }
        for name in self.sessions.channels.keys() {
            let valid = !name.is_empty()
                && name.len() <= 32
                && name
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
            if !valid {
                return Err(ConfigError::Invalid {
                    key: "sessions.channels".into(),
                    reason: format!("channel name {name:?} must be 1-32 of a-z, 0-9, - and _"),
                });
            }
        }
        Ok(())
    }

    fn validate_alerts(&self) -> Result<(), ConfigError> {
        let alerts = &self.alerts;
        positive(
            "alerts.new_sign_in_max_per_hour",
            u64::from(alerts.new_sign_in_max_per_hour),
        )?;
        positive("alerts.device_cookie_days", alerts.device_cookie_days)?;
        if alerts.device_cookie_days > 400 {
            return Err(ConfigError::Invalid {
                key: "alerts.device_cookie_days".into(),
                reason: "must be at most 400 (browsers cap cookie lifetimes there)".to_owned(),
            });
        }
        positive(
            "alerts.known_devices_per_user",
            u64::from(alerts.known_devices_per_user),
        )?;
        positive(
            "alerts.known_device_retention_days",
            alerts.known_device_retention_days,
        )?;
        positive("alerts.abuse_window_secs", alerts.abuse_window_secs)?;
        if let Some(url) = &alerts.webhook_url {
            let parsed = url::Url::parse(url.trim()).map_err(|e| ConfigError::Invalid {
                key: "alerts.webhook_url".into(),
                reason: format!("is not a URL ({e})"),
            })?;
            if !matches!(parsed.scheme(), "http" | "https") || parsed.host().is_none() {
                return Err(ConfigError::Invalid {
                    key: "alerts.webhook_url".into(),
                    reason: "must be an http:// or https:// URL".to_owned(),
                });
            }
        }
        if let Some(secret) = &alerts.webhook_secret {
            if secret.expose().len() < 16 {
                return Err(ConfigError::Invalid {
                    key: "alerts.webhook_secret".into(),
                    reason: "must be at least 16 characters (32 random bytes recommended)".to_owned(),
                });
            }
        }
        Ok(())
    }
}

fn validate_issuer(issuer: &str) -> Result<(), ConfigError> {
    let invalid = |reason: &str| ConfigError::Invalid {
        key: "issuer".into(),
        reason: reason.to_owned(),
    };
    let url = url::Url::parse(issuer).map_err(|e| invalid(&format!("is not a URL ({e})")))?;
    if url.query().is_some() || url.fragment().is_some() {
        return Err(invalid(
            "must not have a query or fragment (OpenID Connect Discovery §3)",
        ));
    }
    match url.scheme() {
        "https" => Ok(()),
        "http" => match url.host() {
            Some(url::Host::Domain("localhost")) => Ok(()),
            Some(url::Host::Ipv4(ip)) if ip.is_loopback() => Ok(()),
            Some(url::Host::Ipv6(ip)) if ip.is_loopback() => Ok(()),
            _ => Err(invalid(
                "must use https (http is allowed only for a loopback host)",
            )),
        },
        _ => Err(invalid("must be an https URL")),
    }
}

/// An SMTP URL must not send credentials in the clear to another host.
fn check_smtp_url(text: &str) -> Result<(), ConfigError> {
    let invalid = |reason: &str| ConfigError::Invalid {
        key: "mail.smtp_url".into(),
        reason: reason.to_owned(),
    };
    let url = url::Url::parse(text).map_err(|_| invalid("is not a URL"))?;
    if !matches!(url.scheme(), "smtp" | "smtps") {
        return Err(invalid("must start with smtp:// or smtps://"));
    }
    let has_credentials = !url.username().is_empty() || url.password().is_some();
    let tls_required = url.scheme() == "smtps"
        || url
            .query_pairs()
            .any(|(k, v)| k == "tls" && (v == "required" || v == "starttls"));
    // `smtp:` is not a "special" scheme to the URL standard: its host is an opaque string.
    let loopback = match url.host() {
        Some(url::Host::Domain(host)) => {
            host == "localhost"
                || host
                    .trim_start_matches('[')
                    .trim_end_matches(']')
                    .parse::<std::net::IpAddr>()
                    .is_ok_and(|ip| ip.is_loopback())
        }
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    };
    if has_credentials && !tls_required && !loopback {
        return Err(invalid(
            "carries credentials without TLS: use smtps:// or add ?tls=required (STARTTLS)",
        ));
    }
    Ok(())
}

fn positive(key: &'static str, value: u64) -> Result<(), ConfigError> {
    if value == 0 {
        return Err(ConfigError::invalid(key, "must be greater than 0"));
    }
    Ok(())
}
