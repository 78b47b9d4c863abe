//! PodTopologySpread: `topologySpreadConstraints` with `whenUnsatisfiable: DoNotSchedule`
//! filter (maxSkew, minDomains, nodeAffinityPolicy, nodeTaintsPolicy, matchLabelKeys);
//! `ScheduleAnyway` constraints score (upstream weights `log(size + 2)`).

use std::collections::{BTreeMap, HashMap};

use k8s_openapi::api::core::v1::TopologySpreadConstraint;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, LabelSelectorRequirement};

use crate::framework::{Code, CycleState, FilterPlugin, Plugin, PreFilterPlugin, PreScorePlugin, ScorePlugin, Snapshot, Status, MAX_NODE_SCORE};
use crate::node_info::{NodeInfo, PodInfo};
use crate::plugins::node_affinity::required_matches;
use crate::selectors::{label_selector_matches, tolerates};

pub const NAME: &str = "PodTopologySpread";
pub const ERR_CONSTRAINTS: &str = "node(s) didn't match pod topology spread constraints";
pub const ERR_MISSING_LABEL: &str = "node(s) didn't match pod topology spread constraints (missing required label)";

pub struct PodTopologySpread;

impl Plugin for PodTopologySpread {
    fn name(&self) -> &'static str {
        NAME
    }
}

#[derive(Debug, Clone)]
struct Constraint {
    max_skew: i64,
    key: String,
    selector: LabelSelector,
    min_domains: i64,
    honor_affinity: bool,
    honor_taints: bool,
}

fn constraints(pod: &PodInfo, action: &str) -> Vec<Constraint> {
    let list = pod.pod.spec.as_ref().and_then(|s| s.topology_spread_constraints.as_deref()).unwrap_or_default();
    list.iter().filter(|c| c.when_unsatisfiable == action).map(|c| convert(c, pod)).collect()
}

fn convert(c: &TopologySpreadConstraint, pod: &PodInfo) -> Constraint {
    let mut selector = c.label_selector.clone().unwrap_or_default();
    // matchLabelKeys: AND the selector with `key in (pod's value)`.
    for key in c.match_label_keys.iter().flatten() {
        if let Some(v) = pod.labels.get(key) {
            selector.match_expressions.get_or_insert_with(Vec::new).push(LabelSelectorRequirement {
                key: key.clone(),
                operator: "In".into(),
                values: Some(vec![v.clone()]),
            });
        }
    }
    Constraint {
        max_skew: i64::from(c.max_skew),
        key: c.topology_key.clone(),
        selector,
        min_domains: i64::from(c.min_domains.unwrap_or(1)),
        honor_affinity: c.node_affinity_policy.as_deref() != Some("Ignore"),
        honor_taints: c.node_taints_policy.as_deref() == Some("Honor"),
    }
}

/// Whether the node counts for the constraint's domains (its policies and topology key).
fn node_counts(c: &Constraint, pod: &PodInfo, node: &NodeInfo) -> bool {
    if c.honor_affinity && !required_matches(pod, node) {
        return false;
    }
    if c.honor_taints {
        let tols = pod.pod.spec.as_ref().and_then(|s| s.tolerations.as_deref()).unwrap_or_default();
        let blocked = node.taints().iter().any(|t| (t.effect == "NoSchedule" || t.effect == "NoExecute") && !tols.iter().any(|tol| tolerates(tol, t)));
        if blocked {
            return false;
        }
    }
    node.labels.contains_key(&c.key)
}

fn matching_pods(c: &Constraint, pod: &PodInfo, node: &NodeInfo) -> i64 {
    // Fast path: a single matchLabels pair is an index lookup.
    if let Some(ml) = &c.selector.match_labels {
        if ml.len() == 1 && c.selector.match_expressions.as_ref().is_none_or(|e| e.is_empty()) {
            let (k, v) = ml.iter().next().expect("one entry");
            return i64::from(node.count_label(&pod.namespace, k, v));
        }
    }
    node.pods
        .iter()
        .filter(|p| !p.terminating && p.namespace == pod.namespace && label_selector_matches(Some(&c.selector), &p.labels))
        .count() as i64
}

struct PreFilterState {
    constraints: Vec<Constraint>,
    /// Per constraint: domain value → matching pods.
    counts: Vec<BTreeMap<String, i64>>,
}

impl PreFilterPlugin for PodTopologySpread {
    fn pre_filter(&self, state: &mut CycleState, pod: &PodInfo, snapshot: &Snapshot) -> Status {
        let constraints = constraints(pod, "DoNotSchedule");
        if constraints.is_empty() {
            return Status::skip();
        }
        let mut counts = vec![BTreeMap::new(); constraints.len()];
        for node in &snapshot.nodes {
            // Upstream requires the node to carry every constraint's key.
            if !constraints.iter().all(|c| node.labels.contains_key(&c.key)) {
                continue;
            }
            for (i, c) in constraints.iter().enumerate() {
                if !node_counts(c, pod, node) {
                    continue;
                }
                let n = matching_pods(c, pod, node);
                let value = &node.labels[&c.key];
                // Look up before inserting: most domains already exist, so no allocation.
                match counts[i].get_mut(value) {
                    Some(total) => *total += n,
                    None => {
                        counts[i].insert(value.clone(), n);
                    }
                }
            }
        }
        state.write(NAME, PreFilterState { constraints, counts });
        Status::success()
    }
}

impl FilterPlugin for PodTopologySpread {
    fn filter(&self, state: &CycleState, pod: &PodInfo, node: &NodeInfo) -> Status {
        let Some(s) = state.read::<PreFilterState>(NAME) else { return Status::success() };
        for (c, counts) in s.constraints.iter().zip(&s.counts) {
            let Some(value) = node.labels.get(&c.key) else {
                return Status { code: Code::UnschedulableAndUnresolvable, reasons: vec![ERR_MISSING_LABEL.into()], plugin: NAME };
            };
            let self_match = i64::from(label_selector_matches(Some(&c.selector), &pod.labels));
            let min = if (counts.len() as i64) < c.min_domains { 0 } else { counts.values().copied().min().unwrap_or(0) };
            let skew = counts.get(value).copied().unwrap_or(0) + self_match - min;
            if skew > c.max_skew {
                return Status::unschedulable(ERR_CONSTRAINTS);
            }
        }
        Status::success()
    }
}

struct PreScoreState {
    constraints: Vec<Constraint>,
    counts: Vec<HashMap<String, i64>>,
    weights: Vec<f64>,
}

impl PreScorePlugin for PodTopologySpread {
    fn pre_score(&self, state: &mut CycleState, pod: &PodInfo, nodes: &[&NodeInfo], snapshot: &Snapshot) -> Status {
        let constraints = constraints(pod, "ScheduleAnyway");
        if constraints.is_empty() {
            return Status::skip();
        }
        let mut domains: Vec<HashMap<String, i64>> = vec![HashMap::new(); constraints.len()];
        for node in nodes.iter().filter(|n| constraints.iter().all(|c| n.labels.contains_key(&c.key))) {
            for (i, c) in constraints.iter().enumerate() {
                domains[i].insert(node.labels[&c.key].clone(), 0);
            }
        }
        let weights = domains.iter().map(|d| ((d.len() + 2) as f64).ln()).collect();
        for node in &snapshot.nodes {
            for (i, c) in constraints.iter().enumerate() {
                if !node_counts(c, pod, node) {
                    continue;
                }
                if let Some(n) = domains[i].get_mut(&node.labels[&c.key]) {
                    *n += matching_pods(c, pod, node);
                }
            }
        }
        state.write(NAME, PreScoreState { constraints, counts: domains, weights });
        Status::success()
    }
}

impl ScorePlugin for PodTopologySpread {
    fn score(&self, state: &CycleState, _pod: &PodInfo, node: &NodeInfo) -> i64 {
        let Some(s) = state.read::<PreScoreState>(NAME) else { return 0 };
        if !s.constraints.iter().all(|c| node.labels.contains_key(&c.key)) {
            return -1; // ignored node: scores 0 after normalizing
        }
        let mut score = 0.0;
        for ((c, counts), w) in s.constraints.iter().zip(&s.counts).zip(&s.weights) {
            let n = counts.get(&node.labels[&c.key]).copied().unwrap_or(0);
            score += n as f64 * w + (c.max_skew - 1) as f64;
        }
        score.round() as i64
    }

    fn normalize(&self, state: &CycleState, _pod: &PodInfo, scores: &mut [i64]) {
        if state.read::<PreScoreState>(NAME).is_none() {
            return;
        }
        let valid = scores.iter().copied().filter(|s| *s >= 0);
        let (min, max) = valid.fold((i64::MAX, 0i64), |(lo, hi), s| (lo.min(s), hi.max(s)));
        for s in scores.iter_mut() {
            *s = if *s < 0 {
                0
            } else if max == 0 {
                MAX_NODE_SCORE
            } else {
                MAX_NODE_SCORE * (max + min - *s) / max
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::node_info::testing::*;
    use k8s_openapi::api::core::v1::Pod;

    fn spread(name: &str, when: &str, max_skew: i32, min_domains: Option<i32>) -> Pod {
        let mut p = with_labels(pod(name, None, None), &[("app", "web")]);
        p.spec.as_mut().unwrap().topology_spread_constraints = Some(vec![TopologySpreadConstraint {
            max_skew,
            topology_key: "zone".into(),
            when_unsatisfiable: when.into(),
            label_selector: Some(LabelSelector { match_labels: Some([("app".to_string(), "web".to_string())].into()), match_expressions: None }),
            min_domains,
            ..Default::default()
        }]);
        p
    }

    fn filter_all(p: &PodInfo, nodes: &[&NodeInfo]) -> Vec<bool> {
        let snap = Snapshot::new(nodes.to_vec());
        let mut st = CycleState::default();
        PodTopologySpread.pre_filter(&mut st, p, &snap);
        nodes.iter().map(|n| PodTopologySpread.filter(&st, p, n).is_success()).collect()
    }

    #[test]
    fn max_skew_one_keeps_zones_even() {
        let mut a = node("a", "1", "1Gi", &[("zone", "z1")]);
        let b = node("b", "1", "1Gi", &[("zone", "z2")]);
        let nolabel = node("c", "1", "1Gi", &[]);
        a.add_pod(info(spread("w1", "DoNotSchedule", 1, None)));
        let p = info(spread("w2", "DoNotSchedule", 1, None));
        assert_eq!(filter_all(&p, &[&a, &b]), [false, true]);
        let snap = Snapshot::new(vec![&a, &b, &nolabel]);
        let mut st = CycleState::default();
        PodTopologySpread.pre_filter(&mut st, &p, &snap);
        assert_eq!(PodTopologySpread.filter(&st, &p, &nolabel).reasons, [ERR_MISSING_LABEL]);
        assert_eq!(PodTopologySpread.filter(&st, &p, &a).reasons, [ERR_CONSTRAINTS]);
    }

    #[test]
    fn min_domains_treats_missing_domains_as_empty() {
        let mut a = node("a", "1", "1Gi", &[("zone", "z1")]);
        a.add_pod(info(spread("w1", "DoNotSchedule", 1, None)));
        // one domain, minDomains 2 → global minimum 0 → skew 2 > 1
        assert_eq!(filter_all(&info(spread("w2", "DoNotSchedule", 1, Some(2))), &[&a]), [false]);
        assert_eq!(filter_all(&info(spread("w3", "DoNotSchedule", 1, None)), &[&a]), [true]);
    }

    #[test]
    fn schedule_anyway_scores_emptier_domains_higher() {
        let mut a = node("a", "1", "1Gi", &[("zone", "z1")]);
        let b = node("b", "1", "1Gi", &[("zone", "z2")]);
        a.add_pod(info(spread("w1", "ScheduleAnyway", 1, None)));
        let p = info(spread("w2", "ScheduleAnyway", 1, None));
        let snap = Snapshot::new(vec![&a, &b]);
        let mut st = CycleState::default();
        PodTopologySpread.pre_score(&mut st, &p, &snap.nodes, &snap);
        let mut scores = vec![PodTopologySpread.score(&st, &p, &a), PodTopologySpread.score(&st, &p, &b)];
        PodTopologySpread.normalize(&st, &p, &mut scores);
        assert!(scores[1] > scores[0], "{scores:?}");
        assert_eq!(scores[1], 100);
    }
}
