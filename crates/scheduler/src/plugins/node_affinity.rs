//! NodeAffinity: `spec.nodeSelector` and required node affinity (all operators, matchFields)
//! filter; preferred node affinity scores by the sum of matching term weights.

use crate::framework::{default_normalize, CycleState, FilterPlugin, Plugin, ScorePlugin, Status};
use crate::node_info::{NodeInfo, PodInfo};
use crate::selectors::{node_selector_term_matches, node_selector_terms_match};

pub const NAME: &str = "NodeAffinity";
/// Upstream `ErrReasonPod`.
pub const ERR_REASON: &str = "node(s) didn't match Pod's node affinity/selector";

pub struct NodeAffinity;

impl Plugin for NodeAffinity {
    fn name(&self) -> &'static str {
        NAME
    }
}

/// Whether the node satisfies the pod's nodeSelector and required node affinity (also
/// used by PodTopologySpread's `nodeAffinityPolicy: Honor`).
pub fn required_matches(pod: &PodInfo, node: &NodeInfo) -> bool {
    let Some(spec) = pod.pod.spec.as_ref() else { return true };
    if let Some(sel) = &spec.node_selector {
        if !sel.iter().all(|(k, v)| node.labels.get(k) == Some(v)) {
            return false;
        }
    }
    let required = spec
        .affinity
        .as_ref()
        .and_then(|a| a.node_affinity.as_ref())
        .and_then(|na| na.required_during_scheduling_ignored_during_execution.as_ref());
    match required {
        Some(ns) => node_selector_terms_match(&ns.node_selector_terms, &node.node, &node.labels),
        None => true,
    }
}

impl FilterPlugin for NodeAffinity {
    fn filter(&self, _state: &CycleState, pod: &PodInfo, node: &NodeInfo) -> Status {
        if required_matches(pod, node) { Status::success() } else { Status::unresolvable(ERR_REASON) }
    }
}

impl ScorePlugin for NodeAffinity {
    fn score(&self, _state: &CycleState, pod: &PodInfo, node: &NodeInfo) -> i64 {
        let preferred = pod
            .pod
            .spec
            .as_ref()
            .and_then(|s| s.affinity.as_ref())
            .and_then(|a| a.node_affinity.as_ref())
            .and_then(|na| na.preferred_during_scheduling_ignored_during_execution.as_ref());
        preferred
            .into_iter()
            .flatten()
            .filter(|t| t.weight != 0 && node_selector_term_matches(&t.preference, &node.node, &node.labels))
            .map(|t| i64::from(t.weight))
            .sum()
    }

    fn normalize(&self, _state: &CycleState, _pod: &PodInfo, scores: &mut [i64]) {
        default_normalize(scores, false);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::node_info::testing::*;
    use k8s_openapi::api::core::v1::{
        Affinity, NodeAffinity as NA, NodeSelector, NodeSelectorRequirement, NodeSelectorTerm, PreferredSchedulingTerm,
    };

    fn term(key: &str, op: &str, values: &[&str]) -> NodeSelectorTerm {
        NodeSelectorTerm {
            match_expressions: Some(vec![NodeSelectorRequirement {
                key: key.into(),
                operator: op.into(),
                values: Some(values.iter().map(|s| s.to_string()).collect()),
            }]),
            match_fields: None,
        }
    }

    #[test]
    fn node_selector_and_required_affinity_filter() {
        let ssd = node("a", "1", "1Gi", &[("disk", "ssd"), ("zone", "z1")]);
        let hdd = node("b", "1", "1Gi", &[("disk", "hdd")]);
        let mut p = pod("p", None, None);
        p.spec.as_mut().unwrap().node_selector = Some([("disk".to_string(), "ssd".to_string())].into());
        let p1 = info(p.clone());
        assert!(NodeAffinity.filter(&CycleState::default(), &p1, &ssd).is_success());
        assert_eq!(NodeAffinity.filter(&CycleState::default(), &p1, &hdd).reasons, [ERR_REASON]);
        p.spec.as_mut().unwrap().node_selector = None;
        p.spec.as_mut().unwrap().affinity = Some(Affinity {
            node_affinity: Some(NA {
                required_during_scheduling_ignored_during_execution: Some(NodeSelector {
                    node_selector_terms: vec![term("zone", "In", &["z1", "z2"]), term("disk", "In", &["nvme"])],
                }),
                ..Default::default()
            }),
            ..Default::default()
        });
        let p2 = info(p);
        assert!(NodeAffinity.filter(&CycleState::default(), &p2, &ssd).is_success());
        assert!(!NodeAffinity.filter(&CycleState::default(), &p2, &hdd).is_success());
    }

    #[test]
    fn preferred_affinity_scores_matching_nodes() {
        let mut p = pod("p", None, None);
        p.spec.as_mut().unwrap().affinity = Some(Affinity {
            node_affinity: Some(NA {
                preferred_during_scheduling_ignored_during_execution: Some(vec![
                    PreferredSchedulingTerm { weight: 10, preference: term("disk", "In", &["ssd"]) },
                    PreferredSchedulingTerm { weight: 30, preference: term("zone", "Exists", &[]) },
                ]),
                ..Default::default()
            }),
            ..Default::default()
        });
        let p = info(p);
        let st = CycleState::default();
        let nodes = [node("a", "1", "1Gi", &[("disk", "ssd"), ("zone", "z")]), node("b", "1", "1Gi", &[("disk", "ssd")]), node("c", "1", "1Gi", &[])];
        let mut scores: Vec<i64> = nodes.iter().map(|n| NodeAffinity.score(&st, &p, n)).collect();
        assert_eq!(scores, [40, 10, 0]);
        NodeAffinity.normalize(&st, &p, &mut scores);
        assert_eq!(scores, [100, 25, 0]);
    }
}
