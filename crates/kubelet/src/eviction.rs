//! Node pressure (upstream pkg/kubelet/eviction): hard eviction thresholds in `--eviction-hard`
//! syntax, the signals observed in the latest stats sample, the MemoryPressure / DiskPressure /
//! PIDPressure conditions they raise, and the matching `node.kubernetes.io/*-pressure:NoSchedule`
//! taints.
//!
//! Taints: upstream's node lifecycle controller adds these taints from the conditions
//! (TaintNodeByCondition); rkube's kubelet sets and clears them itself when it posts the
//! conditions, touching only these three keys, so a controller doing the same agrees with it.
//! Pods are not evicted yet: the thresholds only drive conditions and taints.

use std::time::Duration;

use k8s_openapi::api::core::v1::Taint;
use rkube_api::quantity::Quantity;

use crate::stats::Summary;

/// Upstream's default `--eviction-hard` on Linux.
pub const DEFAULT_EVICTION_HARD: &str = "memory.available<100Mi,nodefs.available<10%,nodefs.inodesFree<5%,imagefs.available<15%";
/// Upstream's `--eviction-pressure-transition-period`: how long a condition stays true after
/// its threshold was last met.
pub const DEFAULT_TRANSITION_PERIOD: Duration = Duration::from_secs(300);
/// Upstream's eviction monitoring interval.
pub const MONITORING_INTERVAL: Duration = Duration::from_secs(10);

pub const TAINT_MEMORY_PRESSURE: &str = "node.kubernetes.io/memory-pressure";
pub const TAINT_DISK_PRESSURE: &str = "node.kubernetes.io/disk-pressure";
pub const TAINT_PID_PRESSURE: &str = "node.kubernetes.io/pid-pressure";

/// An eviction signal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    MemoryAvailable,
    NodeFsAvailable,
    NodeFsInodesFree,
    ImageFsAvailable,
    ImageFsInodesFree,
    PidAvailable,
}

impl Signal {
    pub fn name(self) -> &'static str {
        match self {
            Signal::MemoryAvailable => "memory.available",
            Signal::NodeFsAvailable => "nodefs.available",
            Signal::NodeFsInodesFree => "nodefs.inodesFree",
            Signal::ImageFsAvailable => "imagefs.available",
            Signal::ImageFsInodesFree => "imagefs.inodesFree",
            Signal::PidAvailable => "pid.available",
        }
    }

    fn parse(s: &str) -> Option<Signal> {
        [
            Signal::MemoryAvailable,
            Signal::NodeFsAvailable,
            Signal::NodeFsInodesFree,
            Signal::ImageFsAvailable,
            Signal::ImageFsInodesFree,
            Signal::PidAvailable,
        ]
        .into_iter()
        .find(|sig| sig.name() == s)
    }

    /// The node condition the signal raises.
    pub fn condition(self) -> Condition {
        match self {
            Signal::MemoryAvailable => Condition::Memory,
            Signal::PidAvailable => Condition::Pid,
            _ => Condition::Disk,
        }
    }
}

/// A threshold's value: an absolute amount or a percentage of capacity.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Value {
    Amount(i128),
    Percent(f64),
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Threshold {
    pub signal: Signal,
    pub value: Value,
}

/// Parses `--eviction-hard` (`memory.available<100Mi,nodefs.available<10%`), with upstream's
/// messages for the errors. An empty string means no thresholds.
pub fn parse_eviction_hard(s: &str) -> Result<Vec<Threshold>, String> {
    let mut out: Vec<Threshold> = Vec::new();
    for item in s.split(',').map(str::trim).filter(|i| !i.is_empty()) {
        let Some((name, value)) = item.split_once('<') else {
            return Err(format!("invalid eviction threshold syntax {item:?}, expected <signal><operator><value>"));
        };
        let signal = Signal::parse(name.trim()).ok_or_else(|| format!("unsupported eviction signal {:?}", name.trim()))?;
        if out.iter().any(|t| t.signal == signal) {
            return Err(format!("found duplicate eviction threshold for signal {}", signal.name()));
        }
        let value = value.trim();
        let value = match value.strip_suffix('%') {
            Some(p) => {
                let p: f64 = p.parse().map_err(|_| format!("invalid percentage {value:?}"))?;
                if !(0.0..=100.0).contains(&p) {
                    return Err(format!("eviction percentage threshold {} must be >= 0% and <= 100%: {p}%", signal.name()));
                }
                Value::Percent(p)
            }
            None => {
                let q = Quantity::parse(value).map_err(|e| format!("invalid quantity {value:?}: {e}"))?;
                if q.value() < 0 {
                    return Err(format!("eviction threshold {} must be positive: {value}", signal.name()));
                }
                Value::Amount(q.value())
            }
        };
        out.push(Threshold { signal, value });
    }
    Ok(out)
}

/// A signal's observed value: what is available of what capacity.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Observation {
    pub available: i128,
    pub capacity: i128,
}

/// The signals observable in a Summary (upstream makeSignalObservations).
pub fn observe(s: &Summary) -> Vec<(Signal, Observation)> {
    let mut out = Vec::new();
    let obs = |a: Option<u64>, c: Option<u64>| Some(Observation { available: a? as i128, capacity: c? as i128 });
    if let Some(m) = &s.node.memory {
        let capacity = m.available_bytes.zip(m.working_set_bytes).map(|(a, w)| a + w);
        if let Some(o) = obs(m.available_bytes, capacity) {
            out.push((Signal::MemoryAvailable, o));
        }
    }
    if let Some(fs) = &s.node.fs {
        out.extend(obs(fs.available_bytes, fs.capacity_bytes).map(|o| (Signal::NodeFsAvailable, o)));
        out.extend(obs(fs.inodes_free, fs.inodes).map(|o| (Signal::NodeFsInodesFree, o)));
    }
    if let Some(fs) = s.node.runtime.as_ref().and_then(|r| r.image_fs.as_ref()) {
        out.extend(obs(fs.available_bytes, fs.capacity_bytes).map(|o| (Signal::ImageFsAvailable, o)));
        out.extend(obs(fs.inodes_free, fs.inodes).map(|o| (Signal::ImageFsInodesFree, o)));
    }
    if let Some(r) = &s.node.rlimit {
        if let (Some(max), Some(cur)) = (r.maxpid, r.curproc) {
            out.push((Signal::PidAvailable, Observation { available: (max - cur) as i128, capacity: max as i128 }));
        }
    }
    out
}

/// Whether `t` is met: less is available than the threshold (upstream: threshold > available).
pub fn met(t: &Threshold, o: &Observation) -> bool {
    let threshold = match t.value {
        Value::Amount(a) => a,
        Value::Percent(p) => (o.capacity as f64 * p / 100.0) as i128,
    };
    threshold > o.available
}

/// The node conditions eviction drives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Condition {
    Memory,
    Disk,
    Pid,
}

/// Which pressure conditions are true.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Pressure {
    pub memory: bool,
    pub disk: bool,
    pub pid: bool,
}

/// The conditions whose thresholds are met in `observations`.
pub fn conditions_met(thresholds: &[Threshold], observations: &[(Signal, Observation)]) -> Vec<Condition> {
    let mut out: Vec<Condition> = Vec::new();
    for t in thresholds {
        let hit = observations.iter().any(|(s, o)| *s == t.signal && met(t, o));
        if hit && !out.contains(&t.signal.condition()) {
            out.push(t.signal.condition());
        }
    }
    out
}

/// The pressure conditions with the transition period applied: a condition stays true for
/// `period` after it was last met (`last_met` holds when, in seconds of any monotonic clock).
#[derive(Debug, Clone, Default)]
pub struct Tracker {
    last_met: Vec<(Condition, f64)>,
}

impl Tracker {
    pub fn update(&mut self, met: &[Condition], now_secs: f64, period: Duration) -> Pressure {
        for c in met {
            self.last_met.retain(|(k, _)| k != c);
            self.last_met.push((*c, now_secs));
        }
        let on = |c: Condition| met.contains(&c) || self.last_met.iter().any(|(k, t)| *k == c && now_secs - t < period.as_secs_f64());
        Pressure { memory: on(Condition::Memory), disk: on(Condition::Disk), pid: on(Condition::Pid) }
    }
}

/// The node's taints with the pressure taints made to match `p` (others kept, in order), or
/// None when nothing changes.
pub fn taints(current: &[Taint], p: Pressure) -> Option<Vec<Taint>> {
    let managed = [(TAINT_MEMORY_PRESSURE, p.memory), (TAINT_DISK_PRESSURE, p.disk), (TAINT_PID_PRESSURE, p.pid)];
    let is_managed = |t: &Taint| t.effect == "NoSchedule" && managed.iter().any(|(k, _)| *k == t.key);
    let mut out: Vec<Taint> = current.iter().filter(|t| !is_managed(t)).cloned().collect();
    for (key, on) in managed {
        if on {
            out.push(Taint { key: key.into(), effect: "NoSchedule".into(), value: None, time_added: None });
        }
    }
    let before: Vec<(&str, &str)> = current.iter().map(|t| (t.key.as_str(), t.effect.as_str())).collect();
    let after: Vec<(&str, &str)> = out.iter().map(|t| (t.key.as_str(), t.effect.as_str())).collect();
    let mut b = before.clone();
    let mut a = after.clone();
    b.sort();
    a.sort();
    (a != b).then_some(out)
}

/// Re-evaluates the thresholds against every new stats sample and publishes the pressure.
pub struct Manager {
    pub thresholds: Vec<Threshold>,
    pub transition_period: Duration,
    pub stats: crate::stats::Stats,
    pub pressure: tokio::sync::watch::Sender<Pressure>,
}

impl Manager {
    pub async fn run(self, shutdown: tokio_util::sync::CancellationToken) {
        let start = tokio::time::Instant::now();
        let mut tracker = Tracker::default();
        let mut tick = tokio::time::interval(MONITORING_INTERVAL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tick.tick() => {}
            }
            let Some(latest) = self.stats.latest() else { continue };
            let met = conditions_met(&self.thresholds, &observe(&latest.1));
            let p = tracker.update(&met, start.elapsed().as_secs_f64(), self.transition_period);
            self.pressure.send_if_modified(|current| {
                let changed = *current != p;
                if changed {
                    tracing::info!(?p, "node pressure changed");
                }
                *current = p;
                changed
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::{FsStats, MemoryStats, NodeStats, RlimitStats, RuntimeStats};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

    fn summary(mem_available: u64, fs_available: u64, image_available: u64, procs: i64) -> Summary {
        let t = Time(jiff::Timestamp::UNIX_EPOCH);
        let fs = |a: u64| FsStats { available_bytes: Some(a), capacity_bytes: Some(1000), inodes_free: Some(90), inodes: Some(100), ..Default::default() };
        Summary {
            node: NodeStats {
                node_name: "n".into(),
                start_time: t.clone(),
                cpu: None,
                memory: Some(MemoryStats { available_bytes: Some(mem_available), working_set_bytes: Some(1 << 30), ..Default::default() }),
                network: None,
                fs: Some(fs(fs_available)),
                runtime: Some(RuntimeStats { image_fs: Some(fs(image_available)), container_fs: None }),
                rlimit: Some(RlimitStats { time: t, maxpid: Some(1000), curproc: Some(procs) }),
            },
            pods: vec![],
        }
    }

    #[test]
    fn eviction_hard_parses_upstream_syntax_and_rejects_nonsense() {
        let t = parse_eviction_hard(DEFAULT_EVICTION_HARD).unwrap();
        assert_eq!(t.len(), 4);
        assert_eq!(t[0], Threshold { signal: Signal::MemoryAvailable, value: Value::Amount(100 * 1024 * 1024) });
        assert_eq!(t[1], Threshold { signal: Signal::NodeFsAvailable, value: Value::Percent(10.0) });
        assert_eq!(parse_eviction_hard("pid.available<1k").unwrap()[0].value, Value::Amount(1000));
        assert_eq!(parse_eviction_hard("").unwrap(), vec![]);
        assert!(parse_eviction_hard("memory.free<1Gi").unwrap_err().contains("unsupported eviction signal"));
        assert!(parse_eviction_hard("memory.available>1Gi").is_err());
        assert!(parse_eviction_hard("nodefs.available<101%").is_err());
        assert!(parse_eviction_hard("memory.available<lots").is_err());
        assert!(parse_eviction_hard("memory.available<1Gi,memory.available<2Gi").unwrap_err().contains("duplicate"));
    }

    #[test]
    fn thresholds_raise_the_matching_conditions() {
        let defaults = parse_eviction_hard(DEFAULT_EVICTION_HARD).unwrap();
        let healthy = observe(&summary(1 << 30, 500, 500, 10));
        assert_eq!(conditions_met(&defaults, &healthy), vec![]);
        // 50 MiB of memory left is under 100Mi.
        assert_eq!(conditions_met(&defaults, &observe(&summary(50 << 20, 500, 500, 10))), vec![Condition::Memory]);
        // 9% of nodefs, or 14% of imagefs, is disk pressure.
        assert_eq!(conditions_met(&defaults, &observe(&summary(1 << 30, 90, 500, 10))), vec![Condition::Disk]);
        assert_eq!(conditions_met(&defaults, &observe(&summary(1 << 30, 500, 140, 10))), vec![Condition::Disk]);
        // nodefs.available<100% is met on any disk that is not empty: how tests force it.
        let forced = parse_eviction_hard("nodefs.available<100%").unwrap();
        assert_eq!(conditions_met(&forced, &healthy), vec![Condition::Disk]);
        let pids = parse_eviction_hard("pid.available<100").unwrap();
        assert_eq!(conditions_met(&pids, &observe(&summary(1 << 30, 500, 500, 950))), vec![Condition::Pid]);
        assert_eq!(conditions_met(&pids, &healthy), vec![]);
    }

    #[test]
    fn conditions_stay_for_the_transition_period() {
        let mut t = Tracker::default();
        let period = Duration::from_secs(300);
        assert_eq!(t.update(&[Condition::Disk], 0.0, period), Pressure { disk: true, ..Default::default() });
        assert!(t.update(&[], 299.0, period).disk);
        assert!(!t.update(&[], 301.0, period).disk);
        assert!(t.update(&[Condition::Memory], 400.0, Duration::ZERO).memory);
        assert!(!t.update(&[], 400.5, Duration::ZERO).memory);
    }

    #[test]
    fn pressure_taints_are_added_and_removed_leaving_others() {
        let other = Taint { key: "dedicated".into(), effect: "NoSchedule".into(), value: Some("gpu".into()), time_added: None };
        let on = Pressure { disk: true, ..Default::default() };
        let tainted = taints(std::slice::from_ref(&other), on).unwrap();
        assert_eq!(tainted.iter().map(|t| t.key.as_str()).collect::<Vec<_>>(), ["dedicated", TAINT_DISK_PRESSURE]);
        assert_eq!(taints(&tainted, on), None);
        let cleared = taints(&tainted, Pressure::default()).unwrap();
        assert_eq!(cleared, vec![other.clone()]);
        assert_eq!(taints(&[other], Pressure::default()), None);
    }
}
