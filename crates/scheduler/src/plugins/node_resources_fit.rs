//! NodeResourcesFit: requests (pod count, cpu, memory, ephemeral storage, extended
//! resources) must fit in the node's allocatable minus what its pods request; scores with
//! the LeastAllocated (default) or MostAllocated strategy over weighted resources.

use crate::framework::{CycleState, FilterPlugin, Plugin, ScorePlugin, Status, MAX_NODE_SCORE};
use crate::node_info::{NodeInfo, PodInfo, Resource};

pub const NAME: &str = "NodeResourcesFit";

/// Scoring strategy (`NodeResourcesFitArgs.scoringStrategy.type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Strategy {
    LeastAllocated,
    MostAllocated,
}

/// The plugin with its scoring arguments.
#[derive(Debug, Clone)]
pub struct NodeResourcesFit {
    pub strategy: Strategy,
    /// (resource name, weight); upstream default cpu:1, memory:1.
    pub resources: Vec<(String, i64)>,
}

impl Default for NodeResourcesFit {
    fn default() -> Self {
        NodeResourcesFit { strategy: Strategy::LeastAllocated, resources: vec![("cpu".into(), 1), ("memory".into(), 1)] }
    }
}

impl Plugin for NodeResourcesFit {
    fn name(&self) -> &'static str {
        NAME
    }
}

/// Reasons the pod does not fit, in upstream order (`fitsRequest`).
pub fn insufficient(pod: &Resource, node: &NodeInfo) -> Vec<String> {
    let mut reasons = Vec::new();
    if node.requested.allowed_pod_number + 1 > node.allocatable.allowed_pod_number {
        reasons.push("Too many pods".to_owned());
    }
    let (a, r) = (&node.allocatable, &node.requested);
    if pod.milli_cpu > 0 && a.milli_cpu < pod.milli_cpu + r.milli_cpu {
        reasons.push("Insufficient cpu".to_owned());
    }
    if pod.memory > 0 && a.memory < pod.memory + r.memory {
        reasons.push("Insufficient memory".to_owned());
    }
    if pod.ephemeral_storage > 0 && a.ephemeral_storage < pod.ephemeral_storage + r.ephemeral_storage {
        reasons.push("Insufficient ephemeral-storage".to_owned());
    }
    for (name, want) in &pod.scalar {
        if *want > 0 && a.scalar.get(name).copied().unwrap_or(0) < want + r.scalar.get(name).copied().unwrap_or(0) {
            reasons.push(format!("Insufficient {name}"));
        }
    }
    reasons
}

impl FilterPlugin for NodeResourcesFit {
    fn filter(&self, _state: &CycleState, pod: &PodInfo, node: &NodeInfo) -> Status {
        let reasons = insufficient(&pod.requests, node);
        if reasons.is_empty() {
            Status::success()
        } else {
            Status { code: crate::framework::Code::Unschedulable, reasons, plugin: NAME }
        }
    }
}

/// (requested incl. the pod, allocatable) of one resource. CPU and memory use the
/// non-zero (scoring-default) requests unless `use_requested`, as upstream.
pub fn requested_and_allocatable(name: &str, pod: &PodInfo, node: &NodeInfo, use_requested: bool) -> (i64, i64) {
    let (node_req, pod_req) = if use_requested {
        (&node.requested, &pod.requests)
    } else {
        (&node.non_zero_requested, &pod.non_zero_requests)
    };
    match name {
        "cpu" => (node_req.milli_cpu + pod_req.milli_cpu, node.allocatable.milli_cpu),
        "memory" => (node_req.memory + pod_req.memory, node.allocatable.memory),
        "ephemeral-storage" => (node.requested.ephemeral_storage + pod.requests.ephemeral_storage, node.allocatable.ephemeral_storage),
        other => (
            node.requested.scalar.get(other).copied().unwrap_or(0) + pod.requests.scalar.get(other).copied().unwrap_or(0),
            node.allocatable.scalar.get(other).copied().unwrap_or(0),
        ),
    }
}

impl ScorePlugin for NodeResourcesFit {
    fn score(&self, _state: &CycleState, pod: &PodInfo, node: &NodeInfo) -> i64 {
        let (mut total, mut weights) = (0i64, 0i64);
        for (name, weight) in &self.resources {
            let (requested, capacity) = requested_and_allocatable(name, pod, node, false);
            if capacity == 0 {
                continue;
            }
            let s = match self.strategy {
                Strategy::LeastAllocated if requested > capacity => 0,
                Strategy::LeastAllocated => (capacity - requested) * MAX_NODE_SCORE / capacity,
                Strategy::MostAllocated => requested.min(capacity) * MAX_NODE_SCORE / capacity,
            };
            total += s * weight;
            weights += weight;
        }
        if weights == 0 { 0 } else { total / weights }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::framework::Code;
    use crate::node_info::testing::*;

    #[test]
    fn filter_reports_each_insufficient_resource() {
        let mut n = node("n", "2", "2Gi", &[]);
        n.add_pod(info(pod("a", Some("1500m"), Some("1Gi"))));
        let fits = info(pod("b", Some("500m"), Some("1Gi")));
        assert!(NodeResourcesFit::default().filter(&CycleState::default(), &fits, &n).is_success());
        let big = info(pod("c", Some("1"), Some("2Gi")));
        let s = NodeResourcesFit::default().filter(&CycleState::default(), &big, &n);
        assert_eq!(s.code, Code::Unschedulable);
        assert_eq!(s.reasons, ["Insufficient cpu", "Insufficient memory"]);
    }

    #[test]
    fn filter_counts_pods_and_extended_resources() {
        let mut n = node("n", "100", "100Gi", &[]);
        for i in 0..110 {
            n.add_pod(info(pod(&format!("p{i}"), None, None)));
        }
        let s = NodeResourcesFit::default().filter(&CycleState::default(), &info(pod("x", None, None)), &n);
        assert_eq!(s.reasons, ["Too many pods"]);
        let mut gpu = pod("g", None, None);
        gpu.spec.as_mut().unwrap().containers[0].resources.as_mut().unwrap().requests.as_mut().unwrap()
            .insert("example.com/gpu".into(), k8s_openapi::apimachinery::pkg::api::resource::Quantity("1".into()));
        let n2 = node("m", "1", "1Gi", &[]);
        let s = NodeResourcesFit::default().filter(&CycleState::default(), &info(gpu), &n2);
        assert_eq!(s.reasons, ["Insufficient example.com/gpu"]);
    }

    #[test]
    fn least_allocated_prefers_emptier_nodes_and_most_allocated_the_opposite() {
        let empty = node("a", "4", "8Gi", &[]);
        let mut busy = node("b", "4", "8Gi", &[]);
        busy.add_pod(info(pod("x", Some("2"), Some("4Gi"))));
        let p = info(pod("p", Some("1"), Some("2Gi")));
        let least = NodeResourcesFit::default();
        let st = CycleState::default();
        // (4000-1000)*100/4000 = 75 for cpu and memory
        assert_eq!(least.score(&st, &p, &empty), 75);
        assert_eq!(least.score(&st, &p, &busy), 25);
        let most = NodeResourcesFit { strategy: Strategy::MostAllocated, ..Default::default() };
        assert!(most.score(&st, &p, &busy) > most.score(&st, &p, &empty));
    }
}
