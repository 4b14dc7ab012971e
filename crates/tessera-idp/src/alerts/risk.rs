//! Risk-based step-up (R25): what makes a password sign-in look risky, from what Tessera
//! already knows — the user's remembered sightings (device and network, see the module
//! above) and the abuse signals — with no external service.
//!
//! - `new_device_and_network`: the device and its network are both new for a user who has
//!   sightings (the rule of the new sign-in e-mail);
//! - `unusual_hour`: the user has at least [`MIN_SIGHTINGS`] sightings and none of their
//!   first or last times is within [`USUAL_HOURS`] hours (UTC, around the clock) of now;
//! - `abuse_signals`: the account was locked for failed sign-ins in the last day, or raised
//!   the distributed-failures signal in this window or the one before.
//!
//! Under `mfa.policy = "adaptive"`, a user without a factor whose sign-in has a reason
//! passes an e-mailed code first ([`crate::mfa::Demand::StepUp`]); the reasons are audited.
//! The device and hour reasons need device recognition (`alerts.new_sign_in_email`).

use tessera_store::durable::UserRecord;
use tessera_store::StoreError;

use super::{is_valid_device_id, network_of, Alerts};
use crate::audit::RequestContext;
use crate::tokens::opaque::sha256_b64;

pub const NEW_DEVICE_AND_NETWORK: &str = "new_device_and_network";
pub const UNUSUAL_HOUR: &str = "unusual_hour";
pub const ABUSE_SIGNALS: &str = "abuse_signals";

/// Sightings a user needs before an hour can be unusual for them.
pub const MIN_SIGHTINGS: usize = 3;
/// How many hours from a usual one an hour is still usual.
pub const USUAL_HOURS: i64 = 3;

/// Hours between `a` and `b` (0–23) around the clock: 0–12.
fn hours_apart(a: i64, b: i64) -> i64 {
    let d = (a - b).rem_euclid(24);
    d.min(24 - d)
}

fn hour_of(unix: i64) -> i64 {
    unix.div_euclid(3600).rem_euclid(24)
}

impl Alerts {
    /// Why the sign-in of `user` with the device `presented` (its cookie or device id) from
    /// `context` looks risky; empty when it does not. A store error is logged and counts as
    /// no reason: the password sign-in goes on as without this check.
    pub async fn risk(
        &self,
        user: &UserRecord,
        presented: Option<&str>,
        context: &RequestContext,
    ) -> Vec<&'static str> {
        match self.assess(user, presented, context).await {
            Ok(reasons) => reasons,
            Err(err) => {
                tracing::warn!(error = %err, "cannot assess the sign-in's risk");
                Vec::new()
            }
        }
    }

    async fn assess(
        &self,
        user: &UserRecord,
        presented: Option<&str>,
        context: &RequestContext,
    ) -> Result<Vec<&'static str>, StoreError> {
        let mut reasons = Vec::new();
        if self.enabled() {
            let known = self.devices.known_devices(&user.id).await?;
            let device = presented
                .filter(|id| is_valid_device_id(id))
                .map(|id| sha256_b64(&format!("{}:{id}", user.id)));
            let network = network_of(context.ip.as_deref());
            let new_device = !device.is_some_and(|d| known.iter().any(|k| k.device_hash == d));
            if !known.is_empty() && new_device && !known.iter().any(|k| k.network == network) {
                reasons.push(NEW_DEVICE_AND_NETWORK);
            }
            let now = hour_of(self.clock.now());
            let usual = known
                .iter()
                .flat_map(|k| [k.first_seen_at, k.last_seen_at])
                .any(|at| hours_apart(hour_of(at), now) <= USUAL_HOURS);
            if known.len() >= MIN_SIGHTINGS && !usual {
                reasons.push(UNUSUAL_HOUR);
            }
        }
        let locked_lately = self
            .ephemeral
            .get(&crate::accounts::throttle::lockouts_key(&user.email))
            .await?
            .is_some();
        if locked_lately || self.abuse.account_signalled(&user.email).await? {
            reasons.push(ABUSE_SIGNALS);
        }
        Ok(reasons)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hours_wrap_around_midnight() {
        assert_eq!(hours_apart(23, 1), 2);
        assert_eq!(hours_apart(1, 23), 2);
        assert_eq!(hours_apart(12, 0), 12);
        assert_eq!(hours_apart(5, 5), 0);
        assert_eq!(hour_of(3600 * 25), 1);
    }
}
