//! Periodic compaction, for every backend: keeps about one interval of history, as
//! kube-apiserver's `--etcd-compaction-interval` (default 5 minutes) does.
//!
//! Every tick the compactor notes the store's current revision and compacts at the
//! revision it noted one tick earlier, so a watcher that is at most one interval behind can
//! always resume. A failed compaction is logged, counted, passed to the failure hook (the
//! server raises it as an Event) and retried after a short delay
//! with the same target; a failure never stops later compactions (k3s#12898 stopped
//! compacting for good after one failure). A target the store no longer has (a restore to
//! an older revision: `FutureRevision`) is dropped.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::{Error, Revision, Store};

/// Compaction settings.
#[derive(Debug, Clone)]
pub struct Config {
    /// Time between compactions and the history kept (default 5 minutes; zero disables).
    pub interval: Duration,
    /// Delay before retrying a failed compaction (default 10 s, at most `interval`).
    pub retry: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Config { interval: Duration::from_secs(300), retry: Duration::from_secs(10) }
    }
}

/// Counters a metrics endpoint reads.
#[derive(Debug, Default)]
pub struct Stats {
    /// Successful compactions.
    pub compactions: AtomicU64,
    /// Failed attempts (each retried).
    pub failures: AtomicU64,
    /// The revision of the last successful compaction.
    pub compacted_revision: AtomicU64,
}

/// Called with each failed compaction attempt.
pub type FailureHook = Arc<dyn Fn(&Error) + Send + Sync>;

/// Compacts a store on a schedule until cancelled.
pub struct Compactor {
    config: Config,
    store: Arc<dyn Store>,
    stats: Arc<Stats>,
    on_failure: Option<FailureHook>,
}

impl Compactor {
    /// A compactor for `store`; does no I/O.
    pub fn new(config: Config, store: Arc<dyn Store>) -> Compactor {
        Compactor { config, store, stats: Arc::default(), on_failure: None }
    }

    /// Calls `hook` with the error of every failed attempt (it must not block).
    pub fn on_failure(mut self, hook: FailureHook) -> Compactor {
        self.on_failure = Some(hook);
        self
    }

    /// The counters, shared with the running compactor.
    pub fn stats(&self) -> Arc<Stats> {
        Arc::clone(&self.stats)
    }

    /// Compacts every interval until `shutdown`; returns at once if the interval is zero.
    pub async fn run(self, shutdown: CancellationToken) {
        if self.config.interval.is_zero() {
            return;
        }
        let retry = self.config.retry.min(self.config.interval).max(Duration::from_millis(10));
        let mut target: Option<Revision> = None;
        let mut next = tokio::time::Instant::now() + self.config.interval;
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep_until(next) => {}
            }
            next += self.config.interval;
            // The revision noted now is compacted one interval later.
            let noted = match self.store.current_revision().await {
                Ok(r) => Some(r),
                Err(e) => {
                    tracing::warn!(error = %e, "cannot read the store revision for compaction");
                    None
                }
            };
            if let Some(up_to) = target {
                self.compact_with_retries(up_to, retry, next, &shutdown).await;
            }
            target = noted.or(target);
        }
    }

    /// Compacts at `up_to`, retrying until it succeeds or the next tick is due.
    async fn compact_with_retries(
        &self,
        up_to: Revision,
        retry: Duration,
        next: tokio::time::Instant,
        shutdown: &CancellationToken,
    ) {
        loop {
            match self.store.compact(up_to).await {
                Ok(()) => {
                    self.stats.compactions.fetch_add(1, Ordering::Relaxed);
                    self.stats.compacted_revision.store(up_to.0 as u64, Ordering::Relaxed);
                    tracing::debug!(revision = %up_to, "compacted the store");
                    return;
                }
                Err(Error::FutureRevision { .. }) => return,
                Err(e) => {
                    self.stats.failures.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(revision = %up_to, error = %e, "compaction failed; retrying");
                    if let Some(hook) = &self.on_failure {
                        hook(&e);
                    }
                }
            }
            if tokio::time::Instant::now() + retry >= next {
                return; // the next tick retries with a newer target
            }
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(retry) => {}
            }
        }
    }
}

/// Parses a Go-style duration as kube-apiserver flags take it: `5m`, `30s`, `1m30s`,
/// `500ms`, `1h`, or `0`.
pub fn parse_duration(text: &str) -> Option<Duration> {
    let text = text.trim();
    if text == "0" {
        return Some(Duration::ZERO);
    }
    let mut total = Duration::ZERO;
    let mut rest = text;
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let digits = rest.find(|c: char| !c.is_ascii_digit() && c != '.').unwrap_or(rest.len());
        let (number, tail) = rest.split_at(digits);
        let number: f64 = number.parse().ok()?;
        let unit = tail.find(|c: char| c.is_ascii_digit()).unwrap_or(tail.len());
        let (unit, tail) = tail.split_at(unit);
        let seconds = match unit {
            "h" => 3600.0,
            "m" => 60.0,
            "s" => 1.0,
            "ms" => 0.001,
            _ => return None,
        };
        total += Duration::from_secs_f64(number * seconds);
        rest = tail;
    }
    Some(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_durations() {
        let cases = [
            ("5m", Some(300_000)),
            ("30s", Some(30_000)),
            ("1m30s", Some(90_000)),
            ("500ms", Some(500)),
            ("1h", Some(3_600_000)),
            ("0", Some(0)),
            ("1.5s", Some(1500)),
            ("", None),
            ("5", None),
            ("5x", None),
            ("m", None),
        ];
        for (text, want) in cases {
            let got = parse_duration(text).map(|d| d.as_millis() as u64);
            assert_eq!(got, want, "{text:?}");
        }
    }
}
