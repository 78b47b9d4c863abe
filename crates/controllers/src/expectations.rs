//! Creations and deletions a controller has asked for and not yet seen in its cache
//! (upstream `UIDTrackingControllerExpectations`): until they are observed, or expire after
//! five minutes, the controller does not act on a count that would double them.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use std::time::Duration;

use rkube_api::ObjectKey;
use tokio::time::Instant;

/// Upstream `ExpectationsTimeout`.
pub const EXPECTATIONS_TIMEOUT: Duration = Duration::from_secs(300);

struct Record {
    adds: i64,
    /// Keys (`namespace/name`) of the pods whose deletion is awaited.
    deletes: HashSet<String>,
    set_at: Instant,
}

#[derive(Default)]
pub struct Expectations {
    records: Mutex<HashMap<ObjectKey, Record>>,
}

impl Expectations {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<ObjectKey, Record>> {
        self.records.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether the controller may act: nothing awaited, or the record expired.
    pub fn satisfied(&self, key: &ObjectKey) -> bool {
        match self.lock().get(key) {
            None => true,
            Some(r) => (r.adds <= 0 && r.deletes.is_empty()) || r.set_at.elapsed() > EXPECTATIONS_TIMEOUT,
        }
    }

    /// Awaits `count` creations (replacing any earlier record).
    pub fn expect_creations(&self, key: &ObjectKey, count: usize) {
        let record = Record { adds: count as i64, deletes: HashSet::new(), set_at: Instant::now() };
        self.lock().insert(key.clone(), record);
    }

    /// Awaits the deletion of these pods (replacing any earlier record).
    pub fn expect_deletions(&self, key: &ObjectKey, pods: impl IntoIterator<Item = String>) {
        let record = Record { adds: 0, deletes: pods.into_iter().collect(), set_at: Instant::now() };
        self.lock().insert(key.clone(), record);
    }

    /// Awaits `adds` creations and the deletion of `pods` at once (upstream
    /// `SetExpectations` with both counts), replacing any earlier record.
    pub fn expect(&self, key: &ObjectKey, adds: usize, pods: impl IntoIterator<Item = String>) {
        let record = Record { adds: adds as i64, deletes: pods.into_iter().collect(), set_at: Instant::now() };
        self.lock().insert(key.clone(), record);
    }

    /// One creation seen (or given up on).
    pub fn creation_observed(&self, key: &ObjectKey) {
        if let Some(r) = self.lock().get_mut(key) {
            r.adds -= 1;
        }
    }

    /// The deletion of `pod` seen (or given up on); idempotent.
    pub fn deletion_observed(&self, key: &ObjectKey, pod: &str) {
        if let Some(r) = self.lock().get_mut(key) {
            r.deletes.remove(pod);
        }
    }

    /// Forgets the controller's record (its object was deleted).
    pub fn delete(&self, key: &ObjectKey) {
        self.lock().remove(key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn expectations_are_satisfied_when_observed_or_expired() {
        let e = Expectations::default();
        let k = ObjectKey::new(Some("ns"), "rs");
        assert!(e.satisfied(&k));
        e.expect_creations(&k, 2);
        assert!(!e.satisfied(&k));
        e.creation_observed(&k);
        assert!(!e.satisfied(&k));
        e.creation_observed(&k);
        assert!(e.satisfied(&k));
        e.expect_deletions(&k, ["ns/a".to_string()]);
        e.deletion_observed(&k, "ns/b");
        assert!(!e.satisfied(&k));
        e.deletion_observed(&k, "ns/a");
        e.deletion_observed(&k, "ns/a");
        assert!(e.satisfied(&k));
        e.expect_creations(&k, 1);
        tokio::time::advance(EXPECTATIONS_TIMEOUT + Duration::from_secs(1)).await;
        assert!(e.satisfied(&k));
    }
}
