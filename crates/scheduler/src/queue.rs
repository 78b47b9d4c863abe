//! The scheduling queue (upstream `PriorityQueue`): an active heap ordered by PrioritySort
//! (priority, then arrival), a back-off queue with exponential per-pod back-off, and an
//! unschedulable set that cluster events move back (node added or changed, pod deleted,
//! …). A pod whose attempt overlapped with such an event goes to back-off instead of the
//! unschedulable set, so the event is not lost. Time comes from `tokio::time`.

use std::cmp::{Ordering, Reverse};
use std::collections::{BTreeSet, BinaryHeap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use crate::node_info::PodInfo;

/// A pod waiting in (or popped from) the queue.
#[derive(Debug, Clone)]
pub struct QueuedPod {
    pub info: Arc<PodInfo>,
    pub attempts: u32,
    /// When the pod first entered the queue (for latency metrics).
    pub initial_attempt: Instant,
    seq: u64,
    last_failure: Option<Instant>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Where {
    Active,
    Backoff,
    Unschedulable,
    InFlight,
}

struct Slot {
    pod: QueuedPod,
    at: Where,
    /// Bumped on every move so stale heap entries are skipped.
    generation: u64,
    /// The pod changed while it was being scheduled.
    updated_in_flight: bool,
}

#[derive(PartialEq, Eq)]
struct HeapEntry {
    priority: i32,
    seq: Reverse<u64>,
    uid: String,
    generation: u64,
}

impl Ord for HeapEntry {
    fn cmp(&self, o: &Self) -> Ordering {
        (self.priority, self.seq).cmp(&(o.priority, o.seq))
    }
}
impl PartialOrd for HeapEntry {
    fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}

/// Queue settings.
#[derive(Debug, Clone)]
pub struct QueueConfig {
    pub initial_backoff: Duration,
    pub max_backoff: Duration,
    pub max_in_unschedulable: Duration,
}

pub struct SchedulingQueue {
    config: QueueConfig,
    slots: HashMap<String, Slot>,
    active: BinaryHeap<HeapEntry>,
    backoff: BTreeSet<(Instant, u64, String)>,
    next_seq: u64,
    next_generation: u64,
    /// Scheduling cycle counter and the cycle of the last move request.
    cycle: u64,
    move_request_cycle: u64,
    /// Cycle each in-flight pod was popped in.
    popped_cycle: HashMap<String, u64>,
}

impl SchedulingQueue {
    pub fn new(config: QueueConfig) -> Self {
        SchedulingQueue {
            config,
            slots: HashMap::new(),
            active: BinaryHeap::new(),
            backoff: BTreeSet::new(),
            next_seq: 0,
            next_generation: 0,
            cycle: 0,
            move_request_cycle: 0,
            popped_cycle: HashMap::new(),
        }
    }

    pub fn len(&self) -> usize {
        self.slots.len()
    }
    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }
    pub fn has_active(&self) -> bool {
        !self.active.is_empty()
    }
    /// Uids of every queued pod (not the ones in flight).
    pub fn queued_uids(&self) -> Vec<String> {
        self.slots.iter().filter(|(_, s)| s.at != Where::InFlight).map(|(u, _)| u.clone()).collect()
    }

    pub fn contains(&self, uid: &str) -> bool {
        self.slots.contains_key(uid)
    }

    fn place(&mut self, uid: &str, at: Where, now: Instant) {
        self.next_generation += 1;
        let generation = self.next_generation;
        let Some(slot) = self.slots.get_mut(uid) else { return };
        slot.at = at;
        slot.generation = generation;
        match at {
            Where::Active => self.active.push(HeapEntry {
                priority: slot.pod.info.priority,
                seq: Reverse(slot.pod.seq),
                uid: uid.to_owned(),
                generation,
            }),
            Where::Backoff => {
                let until = slot.pod.last_failure.unwrap_or(now) + backoff_for(&self.config, slot.pod.attempts);
                self.backoff.insert((until, generation, uid.to_owned()));
            }
            Where::Unschedulable | Where::InFlight => {}
        }
    }

    /// Adds a new pending pod, or updates a queued one (an unschedulable pod that changed
    /// is retried).
    pub fn add_or_update(&mut self, info: Arc<PodInfo>, now: Instant) {
        let uid = info.uid.clone();
        if let Some(slot) = self.slots.get_mut(&uid) {
            // Only a change to what scheduling reads (spec, labels) is worth a retry; our
            // own status write comes back as an update too (upstream `isPodUpdated`).
            let changed = slot.pod.info.pod.spec != info.pod.spec || slot.pod.info.labels != info.labels;
            slot.pod.info = info;
            if !changed {
                return;
            }
            match slot.at {
                Where::InFlight => slot.updated_in_flight = true,
                Where::Unschedulable => self.place(&uid, self.backoff_or_active(&uid, now), now),
                Where::Active | Where::Backoff => {}
            }
            return;
        }
        self.next_seq += 1;
        let pod = QueuedPod { info, attempts: 0, initial_attempt: now, seq: self.next_seq, last_failure: None };
        self.slots.insert(uid.clone(), Slot { pod, at: Where::Active, generation: 0, updated_in_flight: false });
        self.place(&uid, Where::Active, now);
    }

    pub fn delete(&mut self, uid: &str) {
        self.slots.remove(uid);
        self.popped_cycle.remove(uid);
    }

    /// Pops the highest-priority active pod and marks it in flight.
    pub fn pop(&mut self) -> Option<QueuedPod> {
        while let Some(e) = self.active.pop() {
            let Some(slot) = self.slots.get_mut(&e.uid) else { continue };
            if slot.at != Where::Active || slot.generation != e.generation {
                continue;
            }
            slot.at = Where::InFlight;
            slot.updated_in_flight = false;
            slot.pod.attempts += 1;
            self.cycle += 1;
            self.popped_cycle.insert(e.uid.clone(), self.cycle);
            return Some(slot.pod.clone());
        }
        None
    }

    /// The pod was scheduled (assumed and sent to binding): it leaves the queue.
    pub fn done(&mut self, uid: &str) {
        self.delete(uid);
    }

    /// The attempt failed: unschedulable, unless an event arrived meanwhile or the pod
    /// changed, in which case it is retried after its back-off.
    pub fn requeue_unschedulable(&mut self, uid: &str, now: Instant) {
        let popped = self.popped_cycle.remove(uid).unwrap_or(0);
        let Some(slot) = self.slots.get_mut(uid) else { return };
        slot.pod.last_failure = Some(now);
        let retry = self.move_request_cycle >= popped || slot.updated_in_flight;
        self.place(uid, if retry { Where::Backoff } else { Where::Unschedulable }, now);
    }

    /// An error (API failure, binding conflict): retried after back-off.
    pub fn requeue_backoff(&mut self, info: Arc<PodInfo>, attempts: u32, now: Instant) {
        let uid = info.uid.clone();
        self.popped_cycle.remove(&uid);
        if !self.slots.contains_key(&uid) {
            self.next_seq += 1;
            let pod = QueuedPod { info, attempts, initial_attempt: now, seq: self.next_seq, last_failure: Some(now) };
            self.slots.insert(uid.clone(), Slot { pod, at: Where::Backoff, generation: 0, updated_in_flight: false });
        } else if let Some(slot) = self.slots.get_mut(&uid) {
            slot.pod.last_failure = Some(now);
        }
        self.place(&uid, Where::Backoff, now);
    }

    fn backoff_or_active(&self, uid: &str, now: Instant) -> Where {
        let slot = &self.slots[uid];
        match slot.pod.last_failure {
            Some(t) if t + backoff_for(&self.config, slot.pod.attempts) > now => Where::Backoff,
            _ => Where::Active,
        }
    }

    /// A cluster event that may make unschedulable pods schedulable: move them all.
    pub fn move_all_to_active_or_backoff(&mut self, now: Instant) {
        self.move_request_cycle = self.cycle;
        let uids: Vec<String> = self.slots.iter().filter(|(_, s)| s.at == Where::Unschedulable).map(|(u, _)| u.clone()).collect();
        for uid in uids {
            let to = self.backoff_or_active(&uid, now);
            self.place(&uid, to, now);
        }
    }

    /// Moves pods whose back-off expired to active, and pods unschedulable for too long back.
    pub fn flush(&mut self, now: Instant) {
        while let Some((until, generation, uid)) = self.backoff.first().cloned() {
            if until > now {
                break;
            }
            self.backoff.pop_first();
            if self.slots.get(&uid).is_some_and(|s| s.at == Where::Backoff && s.generation == generation) {
                self.place(&uid, Where::Active, now);
            }
        }
        let max = self.config.max_in_unschedulable;
        let stale: Vec<String> = self
            .slots
            .iter()
            .filter(|(_, s)| s.at == Where::Unschedulable && s.pod.last_failure.is_some_and(|t| t + max <= now))
            .map(|(u, _)| u.clone())
            .collect();
        for uid in stale {
            self.place(&uid, Where::Active, now);
        }
    }

    /// When the next back-off expires, if any.
    pub fn next_backoff_expiry(&self) -> Option<Instant> {
        self.backoff.first().map(|(t, ..)| *t)
    }

    /// Pods pending in the unschedulable set (for tests and metrics).
    pub fn unschedulable_count(&self) -> usize {
        self.slots.values().filter(|s| s.at == Where::Unschedulable).count()
    }
}

fn backoff_for(config: &QueueConfig, attempts: u32) -> Duration {
    let shift = attempts.saturating_sub(1).min(16);
    (config.initial_backoff * (1u32 << shift)).min(config.max_backoff)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::node_info::testing::*;

    fn queue() -> SchedulingQueue {
        SchedulingQueue::new(QueueConfig {
            initial_backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(10),
            max_in_unschedulable: Duration::from_secs(300),
        })
    }

    fn prio(name: &str, p: i32) -> Arc<PodInfo> {
        let mut pod = pod(name, None, None);
        pod.spec.as_mut().unwrap().priority = Some(p);
        info(pod)
    }

    #[tokio::test(start_paused = true)]
    async fn pops_by_priority_then_arrival() {
        let mut q = queue();
        let now = Instant::now();
        q.add_or_update(prio("a", 0), now);
        q.add_or_update(prio("b", 10), now);
        q.add_or_update(prio("c", 0), now);
        let order: Vec<String> = std::iter::from_fn(|| q.pop()).map(|p| p.info.name.clone()).collect();
        assert_eq!(order, ["b", "a", "c"]);
    }

    #[tokio::test(start_paused = true)]
    async fn unschedulable_pods_wait_for_an_event_then_back_off() {
        let mut q = queue();
        let t0 = Instant::now();
        q.add_or_update(prio("a", 0), t0);
        let p = q.pop().unwrap();
        q.requeue_unschedulable(&p.info.uid, t0);
        // An event before the attempt started counts: the first attempt was popped in
        // cycle 1 and no event came since; so it is unschedulable.
        assert_eq!(q.unschedulable_count(), 1);
        q.flush(t0 + Duration::from_secs(60));
        assert!(q.pop().is_none(), "no event: stays unschedulable");
        q.move_all_to_active_or_backoff(t0 + Duration::from_millis(500));
        assert!(q.pop().is_none(), "still backing off (1 s)");
        q.flush(t0 + Duration::from_secs(2));
        assert_eq!(q.pop().unwrap().attempts, 2);
    }

    #[tokio::test(start_paused = true)]
    async fn an_event_during_the_attempt_sends_the_pod_to_backoff() {
        let mut q = queue();
        let t0 = Instant::now();
        q.add_or_update(prio("a", 0), t0);
        let p = q.pop().unwrap();
        q.move_all_to_active_or_backoff(t0);
        q.requeue_unschedulable(&p.info.uid, t0);
        assert_eq!(q.unschedulable_count(), 0);
        q.flush(t0 + Duration::from_secs(1));
        assert!(q.pop().is_some());
    }

    #[tokio::test(start_paused = true)]
    async fn status_only_updates_do_not_retry_an_unschedulable_pod() {
        let mut q = queue();
        let t0 = Instant::now();
        let p = prio("a", 0);
        q.add_or_update(p.clone(), t0);
        q.pop().unwrap();
        q.requeue_unschedulable(&p.uid, t0);
        let mut with_status = (*p.pod).clone();
        with_status.status = Some(Default::default());
        q.add_or_update(info(with_status.clone()), t0);
        q.flush(t0 + Duration::from_secs(20));
        assert!(q.pop().is_none());
        with_status.spec.as_mut().unwrap().node_selector = Some(Default::default());
        q.add_or_update(info(with_status), t0 + Duration::from_secs(20));
        assert!(q.pop().is_some(), "a spec change retries the pod");
    }

    #[tokio::test(start_paused = true)]
    async fn backoff_doubles_up_to_the_maximum() {
        let c = queue().config;
        assert_eq!(backoff_for(&c, 1), Duration::from_secs(1));
        assert_eq!(backoff_for(&c, 3), Duration::from_secs(4));
        assert_eq!(backoff_for(&c, 9), Duration::from_secs(10));
    }

    #[tokio::test(start_paused = true)]
    async fn long_unschedulable_pods_are_retried() {
        let mut q = queue();
        let t0 = Instant::now();
        q.add_or_update(prio("a", 0), t0);
        let p = q.pop().unwrap();
        q.requeue_unschedulable(&p.info.uid, t0);
        q.flush(t0 + Duration::from_secs(301));
        assert!(q.pop().is_some());
    }
}
