//! Per-key exponential back-off, as client-go's flowcontrol.Backoff that the kubelet uses for
//! container restarts (CrashLoopBackOff) and image pulls (ImagePullBackOff): 10 s doubling to
//! 5 min, forgotten once the event comes more than twice the maximum after the last update
//! (a container that ran 10 minutes starts over at 10 s). Times are wall-clock nanoseconds,
//! the unit of CRI's finishedAt.

use std::collections::HashMap;
use std::time::Duration;

/// Upstream's initial container back-off.
pub const INITIAL: Duration = Duration::from_secs(10);
/// Upstream's maximum container back-off.
pub const MAX: Duration = Duration::from_secs(300);

#[derive(Debug, Clone, Copy)]
struct Entry {
    backoff: Duration,
    last_update: i64,
}

/// Back-off state by key; bounded by the number of containers and images of live pods
/// (entries of removed pods are dropped with [`Backoff::forget_prefix`]).
#[derive(Debug, Clone)]
pub struct Backoff {
    initial: Duration,
    max: Duration,
    entries: HashMap<String, Entry>,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff::new(INITIAL, MAX)
    }
}

fn nanos(d: Duration) -> i64 {
    d.as_nanos().min(i64::MAX as u128) as i64
}

impl Backoff {
    pub fn new(initial: Duration, max: Duration) -> Self {
        Backoff { initial, max, entries: HashMap::new() }
    }

    fn expired(&self, event: i64, last_update: i64) -> bool {
        event.saturating_sub(last_update) > 2 * nanos(self.max)
    }

    /// The current delay for `key` (zero when none).
    pub fn get(&self, key: &str) -> Duration {
        self.entries.get(key).map(|e| e.backoff).unwrap_or_default()
    }

    /// Whether `now` is still within the back-off that started at `event` (upstream
    /// IsInBackOffSince).
    pub fn in_backoff_since(&self, key: &str, event: i64, now: i64) -> bool {
        let Some(e) = self.entries.get(key) else { return false };
        if self.expired(event, e.last_update) {
            return false;
        }
        now.saturating_sub(event) < nanos(e.backoff)
    }

    /// Whether `now` is within the back-off since the last update (IsInBackOffSinceUpdate).
    pub fn in_backoff_since_update(&self, key: &str, now: i64) -> bool {
        let Some(e) = self.entries.get(key) else { return false };
        if self.expired(now, e.last_update) {
            return false;
        }
        now.saturating_sub(e.last_update) < nanos(e.backoff)
    }

    /// Records one more failure at `event` (seen `now`): the delay starts at the initial
    /// value, or doubles up to the maximum.
    pub fn next(&mut self, key: &str, event: i64, now: i64) {
        let fresh = match self.entries.get(key) {
            None => true,
            Some(e) => self.expired(event, e.last_update),
        };
        let backoff = match (fresh, self.entries.get(key)) {
            (false, Some(e)) => (e.backoff * 2).min(self.max),
            _ => self.initial,
        };
        self.entries.insert(key.to_owned(), Entry { backoff, last_update: now });
    }

    /// Drops every key starting with `prefix` (a removed pod's uid).
    pub fn forget_prefix(&mut self, prefix: &str) {
        self.entries.retain(|k, _| !k.starts_with(prefix));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: i64 = 1_000_000_000;

    #[test]
    fn delay_doubles_to_the_maximum_and_resets_after_a_long_run() {
        let mut b = Backoff::default();
        assert!(!b.in_backoff_since("k", 0, 0));
        b.next("k", 0, 0);
        assert_eq!(b.get("k"), Duration::from_secs(10));
        assert!(b.in_backoff_since("k", 0, 9 * S));
        assert!(!b.in_backoff_since("k", 0, 10 * S));
        let mut t = 10 * S;
        let mut delays = Vec::new();
        for _ in 0..7 {
            b.next("k", t, t);
            delays.push(b.get("k").as_secs());
            t += S;
        }
        assert_eq!(delays, [20, 40, 80, 160, 300, 300, 300]);
        // A container that ran more than 10 minutes since the last restart starts over.
        let later = t + 11 * 60 * S;
        assert!(!b.in_backoff_since("k", later, later));
        b.next("k", later, later);
        assert_eq!(b.get("k").as_secs(), 10);
        b.forget_prefix("k");
        assert_eq!(b.get("k"), Duration::ZERO);
    }

    #[test]
    fn since_update_measures_from_the_last_failure() {
        let mut b = Backoff::default();
        b.next("img", 100 * S, 100 * S);
        assert!(b.in_backoff_since_update("img", 105 * S));
        assert!(!b.in_backoff_since_update("img", 111 * S));
    }
}
