//! In-process fixed-window rate limits. Each gateway instance counts on its own: with N
//! instances behind a load balancer a client gets up to N times the limit (docs/gateway.md).

use std::collections::HashMap;
use std::sync::Mutex;

/// Keys tracked per window at most; beyond that new keys are let through uncounted (a
/// flood of distinct addresses must not exhaust memory).
const MAX_KEYS: usize = 100_000;

/// `limit` requests per key per window of `window_secs`, windows aligned to the epoch.
pub(crate) struct FixedWindow {
    limit: u64,
    window_secs: u64,
    state: Mutex<Window>,
}

#[derive(Default)]
struct Window {
    index: u64,
    counts: HashMap<String, u64>,
}

impl FixedWindow {
    pub fn new(limit: u64, window_secs: u64) -> FixedWindow {
        FixedWindow {
            limit,
            window_secs: window_secs.max(1),
            state: Mutex::new(Window::default()),
        }
    }

    /// Counts one request of `key`: `Ok` if within the limit, or `Err(seconds)` until the
    /// window ends (for `Retry-After`).
    pub fn check(&self, key: &str) -> Result<(), u64> {
        self.check_at(key, unix_now())
    }

    fn check_at(&self, key: &str, now: u64) -> Result<(), u64> {
        let index = now / self.window_secs;
        let mut state = self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if state.index != index {
            // A new window: every count starts again (and memory is given back).
            state.index = index;
            state.counts = HashMap::new();
        }
        let retry_after = (index + 1) * self.window_secs - now;
        if let Some(count) = state.counts.get_mut(key) {
            if *count >= self.limit {
                return Err(retry_after.max(1));
            }
            *count += 1;
            return Ok(());
        }
        if state.counts.len() < MAX_KEYS {
            state.counts.insert(key.to_owned(), 1);
        }
        Ok(())
    }
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_per_key_and_resets_with_the_window() {
        let limit = FixedWindow::new(2, 10);
        assert_eq!(limit.check_at("a", 100), Ok(()));
        assert_eq!(limit.check_at("a", 101), Ok(()));
        assert_eq!(limit.check_at("a", 103), Err(7));
        assert_eq!(limit.check_at("b", 103), Ok(()));
        assert_eq!(limit.check_at("a", 109), Err(1));
        assert_eq!(limit.check_at("a", 110), Ok(()));
    }
}
