//! A rate-limited work queue with client-go's workqueue semantics: an item is queued at most
//! once however often it is added (de-duplication), is never handed to two workers at once
//! (an item added while being processed is queued again when its worker calls
//! [`WorkQueue::done`]), and failures are retried after a per-item exponential back-off
//! (`base * 2^failures`, capped at `max`) until [`WorkQueue::forget`] resets it.

use std::collections::{HashMap, HashSet, VecDeque};
use std::hash::Hash;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::Notify;
use tokio::time::Instant;

/// Upstream `DefaultControllerRateLimiter`'s per-item part: 5 ms doubling up to 1000 s.
pub const DEFAULT_BASE_DELAY: Duration = Duration::from_millis(5);
pub const DEFAULT_MAX_DELAY: Duration = Duration::from_secs(1000);

struct State<T> {
    queue: VecDeque<T>,
    /// Items waiting to be processed (in `queue`, or re-added while processing).
    dirty: HashSet<T>,
    processing: HashSet<T>,
    failures: HashMap<T, u32>,
    /// Items with a delayed add pending, and when it fires (only the earliest is kept).
    waiting: HashMap<T, Instant>,
    shut_down: bool,
}

/// A de-duplicating, rate-limited queue of keys. Cloning shares the queue.
pub struct WorkQueue<T> {
    state: Arc<Mutex<State<T>>>,
    notify: Arc<Notify>,
    base: Duration,
    max: Duration,
}

impl<T> Clone for WorkQueue<T> {
    fn clone(&self) -> Self {
        WorkQueue { state: self.state.clone(), notify: self.notify.clone(), base: self.base, max: self.max }
    }
}

impl<T: Clone + Eq + Hash + Send + 'static> Default for WorkQueue<T> {
    fn default() -> Self {
        WorkQueue::new(DEFAULT_BASE_DELAY, DEFAULT_MAX_DELAY)
    }
}

impl<T: Clone + Eq + Hash + Send + 'static> WorkQueue<T> {
    pub fn new(base: Duration, max: Duration) -> Self {
        let state = State {
            queue: VecDeque::new(),
            dirty: HashSet::new(),
            processing: HashSet::new(),
            failures: HashMap::new(),
            waiting: HashMap::new(),
            shut_down: false,
        };
        WorkQueue { state: Arc::new(Mutex::new(state)), notify: Arc::new(Notify::new()), base, max }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State<T>> {
        // A panic while holding this lock leaves the sets consistent (every critical section
        // is a few set operations), so a poisoned lock is still usable.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queues `item` unless it is already queued; an item being processed is queued again
    /// once its worker is done.
    pub fn add(&self, item: T) {
        let mut s = self.lock();
        if s.shut_down || s.dirty.contains(&item) {
            return;
        }
        s.dirty.insert(item.clone());
        if s.processing.contains(&item) {
            return;
        }
        s.queue.push_back(item);
        drop(s);
        self.notify.notify_one();
    }

    /// Queues `item` after `delay` (at once for a zero delay). Of several delayed adds of
    /// one item only the earliest is kept.
    pub fn add_after(&self, item: T, delay: Duration) {
        if delay.is_zero() {
            return self.add(item);
        }
        let at = Instant::now() + delay;
        {
            let mut s = self.lock();
            if s.shut_down || s.waiting.get(&item).is_some_and(|t| *t <= at) {
                return;
            }
            s.waiting.insert(item.clone(), at);
        }
        let queue = self.clone();
        tokio::spawn(async move {
            tokio::time::sleep_until(at).await;
            let due = {
                let mut s = queue.lock();
                match s.waiting.get(&item) {
                    Some(t) if *t == at => {
                        s.waiting.remove(&item);
                        true
                    }
                    _ => false, // superseded by an earlier delayed add
                }
            };
            if due {
                queue.add(item);
            }
        });
    }

    /// Queues `item` after its next back-off delay (and counts the failure).
    pub fn add_rate_limited(&self, item: T) {
        let delay = {
            let mut s = self.lock();
            let failures = s.failures.entry(item.clone()).or_insert(0);
            let delay = backoff(self.base, self.max, *failures);
            *failures += 1;
            delay
        };
        self.add_after(item, delay);
    }

    /// Resets `item`'s back-off.
    pub fn forget(&self, item: &T) {
        self.lock().failures.remove(item);
    }

    /// How many failures `item` has had since it was last forgotten.
    pub fn failures(&self, item: &T) -> u32 {
        self.lock().failures.get(item).copied().unwrap_or(0)
    }

    /// Waits for the next item; `None` once the queue is shut down.
    pub async fn get(&self) -> Option<T> {
        loop {
            let notified = self.notify.notified();
            {
                let mut s = self.lock();
                if s.shut_down {
                    return None;
                }
                if let Some(item) = s.queue.pop_front() {
                    s.dirty.remove(&item);
                    s.processing.insert(item.clone());
                    if !s.queue.is_empty() {
                        self.notify.notify_one();
                    }
                    return Some(item);
                }
            }
            notified.await;
        }
    }

    /// Marks `item` processed; queues it again if it was added meanwhile.
    pub fn done(&self, item: &T) {
        let mut s = self.lock();
        s.processing.remove(item);
        if s.dirty.contains(item) {
            s.queue.push_back(item.clone());
            drop(s);
            self.notify.notify_one();
        }
    }

    /// Items queued and not yet handed out.
    pub fn len(&self) -> usize {
        self.lock().queue.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Wakes every waiting worker with `None`; later adds are ignored.
    pub fn shut_down(&self) {
        self.lock().shut_down = true;
        self.notify.notify_waiters();
        self.notify.notify_one();
    }
}

/// `base * 2^failures`, capped at `max` (upstream `ItemExponentialFailureRateLimiter`).
pub fn backoff(base: Duration, max: Duration, failures: u32) -> Duration {
    let factor = 2u32.checked_pow(failures.min(31)).unwrap_or(u32::MAX);
    base.checked_mul(factor).unwrap_or(max).min(max)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn an_item_added_twice_is_handed_out_once() {
        let q = WorkQueue::<&str>::default();
        q.add("a");
        q.add("a");
        q.add("b");
        assert_eq!(q.len(), 2);
        assert_eq!(q.get().await, Some("a"));
        assert_eq!(q.get().await, Some("b"));
        assert!(q.is_empty());
    }

    #[tokio::test]
    async fn an_item_added_while_processing_comes_back_after_done() {
        let q = WorkQueue::<&str>::default();
        q.add("a");
        let item = q.get().await.unwrap();
        q.add("a");
        assert!(q.is_empty(), "not handed to a second worker while processing");
        q.done(&item);
        assert_eq!(q.get().await, Some("a"));
    }

    #[test]
    fn backoff_doubles_per_failure_up_to_the_cap() {
        let (b, m) = (Duration::from_millis(5), Duration::from_secs(1));
        assert_eq!(backoff(b, m, 0), Duration::from_millis(5));
        assert_eq!(backoff(b, m, 3), Duration::from_millis(40));
        assert_eq!(backoff(b, m, 20), m);
        assert_eq!(backoff(b, m, 1000), m);
    }

    #[tokio::test(start_paused = true)]
    async fn failures_are_retried_after_a_growing_delay_until_forgotten() {
        let q = WorkQueue::<&str>::new(Duration::from_secs(1), Duration::from_secs(60));
        let start = Instant::now();
        q.add_rate_limited("a");
        q.add_rate_limited("a"); // second failure: a later delay, the earlier add wins
        assert_eq!(q.get().await, Some("a"));
        assert_eq!(start.elapsed(), Duration::from_secs(1));
        q.done(&"a");
        assert_eq!(q.failures(&"a"), 2);
        q.add_rate_limited("a");
        assert_eq!(q.get().await, Some("a"));
        assert_eq!(start.elapsed(), Duration::from_secs(5));
        q.forget(&"a");
        assert_eq!(q.failures(&"a"), 0);
    }

    #[tokio::test]
    async fn shut_down_releases_waiting_workers() {
        let q = WorkQueue::<&str>::default();
        let q2 = q.clone();
        let worker = tokio::spawn(async move { q2.get().await });
        tokio::task::yield_now().await;
        q.shut_down();
        assert_eq!(worker.await.unwrap(), None);
    }
}
