//! The pod failure back-off of a Job (upstream `backoffRecord` in `backoff_utils.go`): after
//! `n` failures since the last success, no pod is created until `base * 2^(n-1)` (capped)
//! has passed since the last failure.

use std::time::Duration;

use jiff::Timestamp;
use k8s_openapi::api::core::v1::Pod;

/// Upstream `DefaultJobPodFailureBackOff`.
pub const DEFAULT_BACKOFF: Duration = Duration::from_secs(10);
/// Upstream `MaxJobPodFailureBackOff`.
pub const MAX_BACKOFF: Duration = Duration::from_secs(360);

/// Failures since the last success, and when the last of them happened.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Record {
    pub failures_after_last_success: u32,
    pub last_failure: Option<Timestamp>,
}

/// When a pod finished (upstream `getFinishedTime`): the last container exit, else its
/// deletion time, else `now`.
pub fn finished_time(pod: &Pod, now: Timestamp) -> Timestamp {
    let statuses = pod.status.as_ref().into_iter().flat_map(|s| {
        s.container_statuses.iter().flatten().chain(s.init_container_statuses.iter().flatten())
    });
    let exits = statuses.filter_map(|c| c.state.as_ref()?.terminated.as_ref()?.finished_at.as_ref().map(|t| t.0));
    exits.max().or_else(|| pod.metadata.deletion_timestamp.as_ref().map(|t| t.0)).unwrap_or(now)
}

impl Record {
    /// The record after newly finished pods (upstream `newBackoffRecord`): a success resets
    /// the count to the failures that came after it.
    pub fn with(self, succeeded: &[Timestamp], failed: &[Timestamp]) -> Record {
        match succeeded.iter().max() {
            None if failed.is_empty() => self,
            None => Record {
                failures_after_last_success: self.failures_after_last_success + failed.len() as u32,
                last_failure: self.last_failure.into_iter().chain(failed.iter().copied()).max(),
            },
            Some(&last_success) => {
                let after: Vec<Timestamp> = failed.iter().copied().filter(|t| *t > last_success).collect();
                Record { failures_after_last_success: after.len() as u32, last_failure: after.iter().copied().max() }
            }
        }
    }

    /// How long pod creation still waits at `now` (upstream `getRemainingTime`).
    pub fn remaining(&self, now: Timestamp, base: Duration, max: Duration) -> Duration {
        let (n, Some(last)) = (self.failures_after_last_success, self.last_failure) else { return Duration::ZERO };
        if n == 0 {
            return Duration::ZERO;
        }
        let backoff = base.saturating_mul(1u32.checked_shl(n - 1).unwrap_or(u32::MAX)).min(max);
        let elapsed = Duration::try_from(now.duration_since(last)).unwrap_or(Duration::ZERO);
        backoff.saturating_sub(elapsed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: i64) -> Timestamp {
        Timestamp::from_second(s).unwrap()
    }

    #[test]
    fn back_off_doubles_per_failure_and_is_capped() {
        let (base, max) = (Duration::from_secs(10), Duration::from_secs(360));
        let r = Record::default();
        assert_eq!(r.remaining(at(100), base, max), Duration::ZERO);
        let r = r.with(&[], &[at(100)]);
        assert_eq!(r.remaining(at(100), base, max), Duration::from_secs(10));
        assert_eq!(r.remaining(at(104), base, max), Duration::from_secs(6));
        assert_eq!(r.remaining(at(200), base, max), Duration::ZERO);
        let r = r.with(&[], &[at(110)]);
        assert_eq!(r.remaining(at(110), base, max), Duration::from_secs(20));
        let r = r.with(&[], &[at(111), at(112), at(113), at(114), at(115), at(116)]);
        assert_eq!(r.failures_after_last_success, 8);
        assert_eq!(r.remaining(at(116), base, max), max, "capped at 6 minutes");
    }

    #[test]
    fn a_success_resets_the_count_to_later_failures() {
        let r = Record::default().with(&[], &[at(1), at(2)]);
        assert_eq!(r.with(&[at(5)], &[]), Record::default());
        let r2 = r.with(&[at(5)], &[at(4), at(6)]);
        assert_eq!(r2, Record { failures_after_last_success: 1, last_failure: Some(at(6)) });
        assert_eq!(r.with(&[], &[]), r);
    }
}
