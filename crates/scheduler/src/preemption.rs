//! DefaultPreemption (PostFilter, pure): find nodes where evicting lower-priority pods lets
//! the pod fit, keep as few victims as possible (reprieve the most important first), and
//! pick the candidate as upstream does (lowest highest-victim priority, then lowest priority
//! sum, then fewest victims).

use std::sync::Arc;

use crate::algorithm::{reasons_histogram, run_filters, run_pre_filter, FitError};
use crate::config::Profile;
use crate::framework::{Code, CycleState, Snapshot};
use crate::node_info::{NodeInfo, PodInfo};

/// Upstream's per-node reasons when no candidate is found.
pub const NO_VICTIMS: &str = "No preemption victims found for incoming pod";
pub const NOT_HELPFUL: &str = "Preemption is not helpful for scheduling";
/// Cap on candidate nodes evaluated (upstream `minCandidateNodesAbsolute`).
const MAX_CANDIDATES: usize = 100;

/// The node to nominate and the pods to evict there.
#[derive(Debug, Clone)]
pub struct Candidate {
    pub node: String,
    pub victims: Vec<Arc<PodInfo>>,
}

/// Whether the pod may preempt at all (`preemptionPolicy: Never` may not), or why not.
pub fn eligible(pod: &PodInfo) -> Result<(), String> {
    if pod.pod.spec.as_ref().and_then(|s| s.preemption_policy.as_deref()) == Some("Never") {
        return Err("not eligible due to preemptionPolicy=Never.".into());
    }
    Ok(())
}

fn fits_on(profile: &Profile, pod: &PodInfo, snapshot: &Snapshot, index: usize, candidate: &NodeInfo) -> bool {
    let mut nodes = snapshot.nodes.clone();
    nodes[index] = candidate;
    let view = Snapshot { nodes, volumes: snapshot.volumes };
    let mut state = CycleState::default();
    run_pre_filter(profile, &mut state, pod, &view).is_ok() && run_filters(profile, &state, pod, candidate).is_success()
}

/// Victims on one node, or `None` if evicting every lower-priority pod does not help.
fn select_victims(profile: &Profile, pod: &PodInfo, snapshot: &Snapshot, index: usize) -> Option<Vec<Arc<PodInfo>>> {
    let node = snapshot.nodes[index];
    let mut trial = node.clone();
    let mut lower: Vec<Arc<PodInfo>> = node.pods.iter().filter(|p| p.priority < pod.priority).cloned().collect();
    if lower.is_empty() {
        return None;
    }
    for p in &lower {
        trial.remove_pod(&p.uid);
    }
    if !fits_on(profile, pod, snapshot, index, &trial) {
        return None;
    }
    // Reprieve the most important pods first.
    lower.sort_by_key(|p| std::cmp::Reverse(p.priority));
    let mut victims = Vec::new();
    for p in lower {
        trial.add_pod(p.clone());
        if !fits_on(profile, pod, snapshot, index, &trial) {
            trial.remove_pod(&p.uid);
            victims.push(p);
        }
    }
    (!victims.is_empty()).then_some(victims)
}

/// Finds the best candidate, or the `preemption: ...` message explaining why there is none.
pub fn preempt(profile: &Profile, pod: &PodInfo, snapshot: &Snapshot, fit_error: &FitError) -> Result<Candidate, String> {
    eligible(pod)?;
    // Upstream `PodEligibleToPreemptOthers`: while victims on the nominated node are still
    // terminating, wait for them instead of preempting again.
    if let Some(nominated) = pod.pod.status.as_ref().and_then(|s| s.nominated_node_name.as_deref()).filter(|n| !n.is_empty()) {
        let waiting = snapshot.nodes.iter().find(|n| n.name == nominated).is_some_and(|n| n.pods.iter().any(|p| p.terminating && p.priority < pod.priority));
        if waiting {
            return Err("not eligible due to a terminating pod on the nominated node.".into());
        }
    }
    let mut candidates = Vec::new();
    let mut reasons: Vec<&str> = Vec::new();
    for (i, node) in snapshot.nodes.iter().enumerate() {
        let status = fit_error.node_statuses.get(&node.name);
        let helpful = fit_error.pre_filter_msg.is_none() && status.is_none_or(|s| s.code == Code::Unschedulable);
        if !helpful {
            reasons.push(NOT_HELPFUL);
            continue;
        }
        if candidates.len() >= MAX_CANDIDATES {
            continue;
        }
        match select_victims(profile, pod, snapshot, i) {
            Some(victims) => candidates.push(Candidate { node: node.name.clone(), victims }),
            None => reasons.push(NO_VICTIMS),
        }
    }
    if candidates.is_empty() {
        return Err(format!("0/{} nodes are available: {}.", snapshot.nodes.len(), reasons_histogram(reasons.into_iter())));
    }
    candidates.sort_by_key(|c| {
        let highest = c.victims.iter().map(|v| v.priority).max().unwrap_or(i32::MIN);
        let sum: i64 = c.victims.iter().map(|v| i64::from(v.priority) + i64::from(i32::MAX) + 1).sum();
        (highest, sum, c.victims.len())
    });
    Ok(candidates.swap_remove(0))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::algorithm::{schedule_pod, AlgorithmState, Rng};
    use crate::config::Config;
    use crate::node_info::testing::*;

    fn prio(mut p: k8s_openapi::api::core::v1::Pod, priority: i32) -> Arc<PodInfo> {
        p.spec.as_mut().unwrap().priority = Some(priority);
        info(p)
    }

    #[test]
    fn high_priority_pod_evicts_the_cheapest_victims() {
        let c = Config::default();
        let profile = c.profile("").unwrap();
        let mut a = node("a", "2", "4Gi", &[]);
        a.add_pod(prio(pod("low-a", Some("2"), None), 100));
        let mut b = node("b", "2", "4Gi", &[]);
        b.add_pod(prio(pod("low-b1", Some("1"), None), 10));
        b.add_pod(prio(pod("low-b2", Some("1"), None), 10));
        let snap = Snapshot::new(vec![&a, &b]);
        let hi = prio(pod("hi", Some("1"), None), 1000);
        let mut algo = AlgorithmState { next_start_node_index: 0, rng: Rng::new(1) };
        let fe = schedule_pod(profile, 0, &hi, &snap, &mut algo).unwrap_err();
        let c = preempt(profile, &hi, &snap, &fe).unwrap();
        assert_eq!(c.node, "b");
        assert_eq!(c.victims.len(), 1, "only one of the two 1-CPU pods must go");
    }

    #[test]
    fn equal_priority_pods_are_not_victims() {
        let c = Config::default();
        let profile = c.profile("").unwrap();
        let mut a = node("a", "1", "4Gi", &[]);
        a.add_pod(prio(pod("x", Some("1"), None), 0));
        let snap = Snapshot::new(vec![&a]);
        let p = prio(pod("p", Some("1"), None), 0);
        let mut algo = AlgorithmState { next_start_node_index: 0, rng: Rng::new(1) };
        let fe = schedule_pod(profile, 0, &p, &snap, &mut algo).unwrap_err();
        assert_eq!(preempt(profile, &p, &snap, &fe).unwrap_err(), "0/1 nodes are available: 1 No preemption victims found for incoming pod.");
        let mut never = (*p.pod).clone();
        never.spec.as_mut().unwrap().preemption_policy = Some("Never".into());
        assert!(preempt(profile, &prio(never, 5), &snap, &fe).unwrap_err().contains("preemptionPolicy=Never"));
    }
}
