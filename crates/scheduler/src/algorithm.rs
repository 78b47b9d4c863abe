//! One scheduling attempt over a snapshot (pure): PreFilter, Filter (stopping once enough
//! feasible nodes are found, round-robin over the nodes as upstream), PreScore, Score,
//! NormalizeScore, weighted sum, and host selection; or a [`FitError`] that renders the
//! upstream `0/N nodes are available: ...` message.

use std::collections::BTreeMap;

use crate::config::Profile;
use crate::framework::{Code, CycleState, Snapshot, Status};
use crate::node_info::{NodeInfo, PodInfo};

/// Upstream `minFeasibleNodesToFind`.
const MIN_FEASIBLE_NODES_TO_FIND: usize = 100;
/// Upstream `minFeasibleNodesPercentageToFind`.
const MIN_FEASIBLE_NODES_PERCENTAGE: usize = 5;

/// Why a pod fits nowhere.
#[derive(Debug, Clone, Default)]
pub struct FitError {
    pub num_all_nodes: usize,
    /// Status per rejected node, by node name.
    pub node_statuses: BTreeMap<String, Status>,
    /// A PreFilter rejection applies to every node.
    pub pre_filter_msg: Option<String>,
    pub post_filter_msg: Option<String>,
}

/// Renders `<count> <reason>` pairs sorted as strings, as upstream's `sortReasonsHistogram`.
pub fn reasons_histogram<'a>(reasons: impl Iterator<Item = &'a str>) -> String {
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for r in reasons {
        *counts.entry(r).or_insert(0) += 1;
    }
    let mut items: Vec<String> = counts.into_iter().map(|(r, n)| format!("{n} {r}")).collect();
    items.sort();
    items.join(", ")
}

impl FitError {
    /// Upstream `FitError.Error()`.
    pub fn message(&self) -> String {
        let mut msg = format!("0/{} nodes are available:", self.num_all_nodes);
        match &self.pre_filter_msg {
            Some(pre) => msg.push_str(&format!(" {pre}.")),
            None => {
                let h = reasons_histogram(self.node_statuses.values().flat_map(|s| s.reasons.iter().map(String::as_str)));
                if !h.is_empty() {
                    msg.push_str(&format!(" {h}."));
                }
            }
        }
        if let Some(post) = &self.post_filter_msg {
            msg.push_str(&format!(" {post}"));
        }
        msg
    }
}

/// The outcome of a successful attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placement {
    pub node: String,
    pub evaluated_nodes: usize,
    pub feasible_nodes: usize,
}

/// Upstream `numFeasibleNodesToFind`.
pub fn num_feasible_nodes_to_find(num_all: usize, percentage: u32) -> usize {
    if num_all < MIN_FEASIBLE_NODES_TO_FIND {
        return num_all;
    }
    let mut pct = percentage as usize;
    if pct == 0 {
        pct = 50usize.saturating_sub(num_all / 125).max(MIN_FEASIBLE_NODES_PERCENTAGE);
    }
    if pct >= 100 {
        return num_all;
    }
    (num_all * pct / 100).max(MIN_FEASIBLE_NODES_TO_FIND)
}

/// Runs the PreFilter plugins; `Err` carries a rejection for every node.
pub fn run_pre_filter(profile: &Profile, state: &mut CycleState, pod: &PodInfo, snapshot: &Snapshot) -> Result<(), Status> {
    for p in &profile.pre_filter {
        let mut s = p.pre_filter(state, pod, snapshot);
        if s.code == Code::Success || s.code == Code::Skip {
            continue;
        }
        s.plugin = p.name();
        return Err(s);
    }
    Ok(())
}

/// Runs the Filter plugins on one node, stopping at the first rejection (as upstream).
pub fn run_filters(profile: &Profile, state: &CycleState, pod: &PodInfo, node: &NodeInfo) -> Status {
    for p in &profile.filter {
        let mut s = p.filter(state, pod, node);
        if !s.is_success() {
            s.plugin = p.name();
            return s;
        }
    }
    Status::success()
}

/// A tiny deterministic RNG (xorshift64*) for tie-breaking; seeded by the caller.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed.max(1))
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
}

/// Mutable state carried between attempts.
pub struct AlgorithmState {
    pub next_start_node_index: usize,
    pub rng: Rng,
}

/// Schedules one pod: the chosen node, or why none fits (before PostFilter).
pub fn schedule_pod(
    profile: &Profile,
    global_percentage: u32,
    pod: &PodInfo,
    snapshot: &Snapshot,
    algo: &mut AlgorithmState,
) -> Result<Placement, FitError> {
    let all = snapshot.nodes.len();
    let mut fit_error = FitError { num_all_nodes: all, ..Default::default() };
    if all == 0 {
        return Err(fit_error);
    }
    let mut state = CycleState::default();
    if let Err(s) = run_pre_filter(profile, &mut state, pod, snapshot) {
        fit_error.pre_filter_msg = Some(s.message());
        for n in &snapshot.nodes {
            fit_error.node_statuses.insert(n.name.clone(), s.clone());
        }
        return Err(fit_error);
    }
    let to_find = num_feasible_nodes_to_find(all, profile.percentage_of_nodes_to_score.unwrap_or(global_percentage));
    let mut feasible: Vec<&NodeInfo> = Vec::with_capacity(to_find.min(all));
    let start = algo.next_start_node_index % all;
    let mut processed = 0;
    for i in 0..all {
        let node = snapshot.nodes[(start + i) % all];
        processed += 1;
        let s = run_filters(profile, &state, pod, node);
        if s.is_success() {
            feasible.push(node);
            if feasible.len() >= to_find {
                break;
            }
        } else {
            fit_error.node_statuses.insert(node.name.clone(), s);
        }
    }
    algo.next_start_node_index = (start + processed) % all;
    if feasible.is_empty() {
        return Err(fit_error);
    }
    let placement = |node: &NodeInfo| Placement { node: node.name.clone(), evaluated_nodes: processed, feasible_nodes: feasible.len() };
    if feasible.len() == 1 {
        return Ok(placement(feasible[0]));
    }
    let totals = score_nodes(profile, &mut state, pod, &feasible, snapshot);
    // Highest total wins; ties are broken uniformly at random (reservoir sampling, as upstream).
    let mut best = 0;
    let mut ties = 1u64;
    for i in 1..totals.len() {
        if totals[i] > totals[best] {
            best = i;
            ties = 1;
        } else if totals[i] == totals[best] {
            ties += 1;
            if algo.rng.next_u64().is_multiple_of(ties) {
                best = i;
            }
        }
    }
    Ok(placement(feasible[best]))
}

/// Weighted, normalized total score per feasible node.
pub fn score_nodes(profile: &Profile, state: &mut CycleState, pod: &PodInfo, nodes: &[&NodeInfo], snapshot: &Snapshot) -> Vec<i64> {
    let mut skipped: Vec<&'static str> = Vec::new();
    for p in &profile.pre_score {
        if p.pre_score(state, pod, nodes, snapshot).code == Code::Skip {
            skipped.push(p.name());
        }
    }
    let mut totals = vec![0i64; nodes.len()];
    let mut scores = vec![0i64; nodes.len()];
    for ws in &profile.score {
        if skipped.contains(&ws.plugin.name()) {
            continue;
        }
        for (i, n) in nodes.iter().enumerate() {
            scores[i] = ws.plugin.score(state, pod, n);
        }
        ws.plugin.normalize(state, pod, &mut scores);
        for (t, s) in totals.iter_mut().zip(&scores) {
            *t += s * ws.weight;
        }
    }
    totals
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::node_info::testing::*;
    use k8s_openapi::api::core::v1::{NodeSpec, Taint};
    use std::sync::Arc;

    fn algo() -> AlgorithmState {
        AlgorithmState { next_start_node_index: 0, rng: Rng::new(7) }
    }

    #[test]
    fn feasible_node_count_is_adaptive_as_upstream() {
        assert_eq!(num_feasible_nodes_to_find(50, 0), 50);
        assert_eq!(num_feasible_nodes_to_find(1000, 0), 420);
        assert_eq!(num_feasible_nodes_to_find(5000, 0), 500);
        assert_eq!(num_feasible_nodes_to_find(5000, 100), 5000);
        assert_eq!(num_feasible_nodes_to_find(200, 10), 100);
    }

    #[test]
    fn pods_go_where_they_fit_and_prefer_the_emptier_node() {
        let c = Config::default();
        let profile = c.profile("").unwrap();
        let small = node("small", "1", "4Gi", &[]);
        let mut busy = node("busy", "8", "16Gi", &[]);
        busy.add_pod(info(pod("x", Some("6"), Some("8Gi"))));
        let big = node("big", "8", "16Gi", &[]);
        let snap = Snapshot::new(vec![&small, &busy, &big]);
        let p = info(pod("p", Some("2"), Some("1Gi")));
        let placed = schedule_pod(profile, 0, &p, &snap, &mut algo()).unwrap();
        assert_eq!(placed.node, "big");
        assert_eq!(placed.feasible_nodes, 2);
    }

    #[test]
    fn fit_error_message_matches_upstream_format() {
        let c = Config::default();
        let profile = c.profile("").unwrap();
        let mut gpu = node("gpu", "64", "64Gi", &[]);
        let mut obj = (*gpu.node).clone();
        obj.spec = Some(NodeSpec {
            taints: Some(vec![Taint { key: "dedicated".into(), value: Some("gpu".into()), effect: "NoSchedule".into(), time_added: None }]),
            ..Default::default()
        });
        gpu.set_node(Arc::new(obj));
        let a = node("a", "1", "4Gi", &[]);
        let b = node("b", "2", "4Gi", &[]);
        let snap = Snapshot::new(vec![&gpu, &a, &b]);
        let p = info(pod("p", Some("4"), None));
        let mut e = schedule_pod(profile, 0, &p, &snap, &mut algo()).unwrap_err();
        assert_eq!(e.message(), "0/3 nodes are available: 1 node(s) had untolerated taint {dedicated: gpu}, 2 Insufficient cpu.");
        e.post_filter_msg = Some("preemption: 0/3 nodes are available: 1 Preemption is not helpful for scheduling, 2 No preemption victims found for incoming pod.".into());
        assert_eq!(
            e.message(),
            "0/3 nodes are available: 1 node(s) had untolerated taint {dedicated: gpu}, 2 Insufficient cpu. preemption: 0/3 nodes are available: 1 Preemption is not helpful for scheduling, 2 No preemption victims found for incoming pod."
        );
    }

    #[test]
    fn round_robin_start_moves_across_attempts() {
        let c = Config::default();
        let profile = c.profile("").unwrap();
        let nodes: Vec<NodeInfo> = (0..3).map(|i| node(&format!("n{i}"), "1", "1Gi", &[])).collect();
        let snap = Snapshot::new(nodes.iter().collect());
        let mut a = algo();
        schedule_pod(profile, 0, &info(pod("p", None, None)), &snap, &mut a).unwrap();
        assert_eq!(a.next_start_node_index, 0); // all 3 processed: wraps to 0
    }
}
