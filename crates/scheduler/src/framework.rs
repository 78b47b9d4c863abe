//! The scheduling framework: one trait per upstream extension point, the per-cycle
//! [`CycleState`], plugin [`Status`]es, and the node [`Snapshot`] the plugins read.
//!
//! Plugins are synchronous and pure over the snapshot and the cycle state (STYLE §8); the
//! binding cycle (permit, pre-bind, bind) is the async shell in `scheduler.rs`.

use std::any::Any;
use std::collections::HashMap;
use std::sync::Arc;

use crate::node_info::{NodeInfo, PodInfo};

/// Upper bound of a node score (upstream `MaxNodeScore`).
pub const MAX_NODE_SCORE: i64 = 100;

/// A plugin's verdict (upstream `framework.Code`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Code {
    Success,
    /// The node does not fit now; preemption may help.
    Unschedulable,
    /// The node does not fit and preemption cannot help.
    UnschedulableAndUnresolvable,
    /// The plugin has nothing to do for this pod (PreFilter/PreScore).
    Skip,
    Error,
}

/// A code and the reasons shown to the user (`Insufficient cpu`, …).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Status {
    pub code: Code,
    pub reasons: Vec<String>,
    /// The plugin that returned it.
    pub plugin: &'static str,
}

impl Status {
    pub fn success() -> Self {
        Status { code: Code::Success, reasons: Vec::new(), plugin: "" }
    }
    pub fn skip() -> Self {
        Status { code: Code::Skip, reasons: Vec::new(), plugin: "" }
    }
    pub fn new(code: Code, reason: impl Into<String>) -> Self {
        Status { code, reasons: vec![reason.into()], plugin: "" }
    }
    pub fn unschedulable(reason: impl Into<String>) -> Self {
        Status::new(Code::Unschedulable, reason)
    }
    pub fn unresolvable(reason: impl Into<String>) -> Self {
        Status::new(Code::UnschedulableAndUnresolvable, reason)
    }
    pub fn is_success(&self) -> bool {
        self.code == Code::Success
    }
    pub fn is_rejected(&self) -> bool {
        matches!(self.code, Code::Unschedulable | Code::UnschedulableAndUnresolvable)
    }
    pub fn message(&self) -> String {
        self.reasons.join(", ")
    }
}

/// Data plugins keep for one scheduling cycle, keyed by plugin name.
#[derive(Default)]
pub struct CycleState {
    data: HashMap<&'static str, Box<dyn Any + Send + Sync>>,
}

impl CycleState {
    pub fn write<T: Any + Send + Sync>(&mut self, key: &'static str, value: T) {
        self.data.insert(key, Box::new(value));
    }
    pub fn read<T: Any>(&self, key: &'static str) -> Option<&T> {
        self.data.get(key).and_then(|b| b.downcast_ref())
    }
}

/// The nodes of the cluster as one scheduling cycle sees them.
pub struct Snapshot<'a> {
    pub nodes: Vec<&'a NodeInfo>,
    /// Claims, volumes and storage classes (VolumeBinding); `None` = none known.
    pub volumes: Option<&'a crate::plugins::volume_binding::Volumes>,
}

impl<'a> Snapshot<'a> {
    pub fn new(nodes: Vec<&'a NodeInfo>) -> Self {
        Snapshot { nodes, volumes: None }
    }
    /// Number of pods with (anti-)affinity anywhere, to skip the affinity work when zero.
    pub fn has_pods_with_affinity(&self) -> bool {
        self.nodes.iter().any(|n| n.pods_with_affinity > 0)
    }
}

/// A plugin has a name (the upstream plugin name, used in configs and events).
pub trait Plugin: Send + Sync {
    fn name(&self) -> &'static str;
}

/// Upstream `QueueSortPlugin`: orders the active queue.
pub trait QueueSortPlugin: Plugin {
    fn less(&self, a: &PodInfo, a_time: u64, b: &PodInfo, b_time: u64) -> bool;
}

/// Upstream `PreFilterPlugin`: computes cycle state over the whole snapshot, or rejects the
/// pod outright.
pub trait PreFilterPlugin: Plugin {
    fn pre_filter(&self, state: &mut CycleState, pod: &PodInfo, snapshot: &Snapshot) -> Status;
}

/// Upstream `FilterPlugin`: does the pod fit on this node?
pub trait FilterPlugin: Plugin {
    fn filter(&self, state: &CycleState, pod: &PodInfo, node: &NodeInfo) -> Status;
}

/// Upstream `PreScorePlugin`: cycle state for scoring, over the feasible nodes.
pub trait PreScorePlugin: Plugin {
    fn pre_score(&self, state: &mut CycleState, pod: &PodInfo, nodes: &[&NodeInfo], snapshot: &Snapshot) -> Status;
}

/// Upstream `ScorePlugin` with its `ScoreExtensions.NormalizeScore`.
pub trait ScorePlugin: Plugin {
    fn score(&self, state: &CycleState, pod: &PodInfo, node: &NodeInfo) -> i64;
    /// Maps raw scores into 0..=MAX_NODE_SCORE; the default keeps them.
    fn normalize(&self, _state: &CycleState, _pod: &PodInfo, _scores: &mut [i64]) {}
}

/// Upstream `ReservePlugin`: claim (and on failure release) state before binding.
pub trait ReservePlugin: Plugin {
    fn reserve(&self, state: &mut CycleState, pod: &PodInfo, node: &str) -> Status;
    fn unreserve(&self, state: &mut CycleState, pod: &PodInfo, node: &str);
}

/// Upstream `PermitPlugin`: approve, deny or ask to wait before binding.
pub trait PermitPlugin: Plugin {
    fn permit(&self, state: &CycleState, pod: &PodInfo, node: &str) -> Status;
}

/// Upstream `PreBindPlugin` and `BindPlugin` are async and live in the binding cycle; the
/// default binder posts a `Binding` to `pods/binding`.
pub trait PreBindPlugin: Plugin {
    fn pre_bind(&self, pod: &PodInfo, node: &str) -> Status;
}

/// Upstream `DefaultNormalizeScore`: scale to 0..=max, optionally reversed.
pub fn default_normalize(scores: &mut [i64], reverse: bool) {
    let max = scores.iter().copied().max().unwrap_or(0);
    if max == 0 {
        if reverse {
            scores.iter_mut().for_each(|s| *s = MAX_NODE_SCORE);
        }
        return;
    }
    for s in scores.iter_mut() {
        let v = MAX_NODE_SCORE * *s / max;
        *s = if reverse { MAX_NODE_SCORE - v } else { v };
    }
}

/// A score plugin with its weight in a profile.
#[derive(Clone)]
pub struct WeightedScore {
    pub plugin: Arc<dyn ScorePlugin>,
    pub weight: i64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_normalize_scales_and_reverses() {
        let mut s = vec![0, 5, 10];
        default_normalize(&mut s, false);
        assert_eq!(s, [0, 50, 100]);
        let mut s = vec![0, 5, 10];
        default_normalize(&mut s, true);
        assert_eq!(s, [100, 50, 0]);
        let mut s = vec![0, 0];
        default_normalize(&mut s, true);
        assert_eq!(s, [100, 100]);
    }
}
