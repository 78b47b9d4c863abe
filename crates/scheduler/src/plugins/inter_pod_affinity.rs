//! InterPodAffinity: required pod affinity and anti-affinity (of the incoming pod, and the
//! existing pods' anti-affinity towards it) per topology domain; preferred terms score.

use std::collections::HashMap;

use k8s_openapi::api::core::v1::PodAffinityTerm;

use crate::framework::{Code, CycleState, FilterPlugin, Plugin, PreFilterPlugin, PreScorePlugin, ScorePlugin, Snapshot, Status, MAX_NODE_SCORE};
use crate::node_info::{NodeInfo, PodInfo};
use crate::selectors::label_selector_matches;

pub const NAME: &str = "InterPodAffinity";
pub const ERR_AFFINITY: &str = "node(s) didn't match pod affinity rules";
pub const ERR_ANTI_AFFINITY: &str = "node(s) didn't match pod anti-affinity rules";
pub const ERR_EXISTING_ANTI_AFFINITY: &str = "node(s) didn't satisfy existing pods anti-affinity rules";
/// Upstream `hardPodAffinityWeight` default.
const HARD_POD_AFFINITY_WEIGHT: i64 = 1;

type TopologyPair = (String, String);

pub struct InterPodAffinity;

impl Plugin for InterPodAffinity {
    fn name(&self) -> &'static str {
        NAME
    }
}

/// Whether `term` (declared by a pod in `owner_ns`) selects `target`.
pub fn term_matches(term: &PodAffinityTerm, owner_ns: &str, target: &PodInfo) -> bool {
    let namespaces = term.namespaces.as_deref().unwrap_or_default();
    let ns_ok = match &term.namespace_selector {
        // An empty namespaceSelector selects every namespace. Namespace labels are not
        // tracked, so a non-empty one only adds the listed namespaces (documented gap).
        Some(sel) if sel.match_labels.as_ref().is_none_or(|m| m.is_empty()) && sel.match_expressions.as_ref().is_none_or(|m| m.is_empty()) => true,
        Some(_) => namespaces.contains(&target.namespace),
        None if namespaces.is_empty() => owner_ns == target.namespace,
        None => namespaces.contains(&target.namespace),
    };
    ns_ok && label_selector_matches(term.label_selector.as_ref(), &target.labels)
}

#[derive(Default)]
struct PreFilterState {
    existing_anti: HashMap<TopologyPair, i64>,
    affinity: HashMap<TopologyPair, i64>,
    anti_affinity: HashMap<TopologyPair, i64>,
}

fn pair(node: &NodeInfo, key: &str) -> Option<TopologyPair> {
    node.labels.get(key).map(|v| (key.to_owned(), v.clone()))
}

impl PreFilterPlugin for InterPodAffinity {
    fn pre_filter(&self, state: &mut CycleState, pod: &PodInfo, snapshot: &Snapshot) -> Status {
        let mut s = PreFilterState::default();
        let incoming = !pod.required_affinity.is_empty() || !pod.required_anti_affinity.is_empty();
        if !incoming && !snapshot.has_pods_with_affinity() {
            return Status::skip();
        }
        for node in &snapshot.nodes {
            for existing in &node.pods {
                if node.pods_with_affinity > 0 {
                    for term in &existing.required_anti_affinity {
                        if term_matches(term, &existing.namespace, pod) {
                            if let Some(p) = pair(node, &term.topology_key) {
                                *s.existing_anti.entry(p).or_insert(0) += 1;
                            }
                        }
                    }
                }
                for term in &pod.required_affinity {
                    if term_matches(term, &pod.namespace, existing) {
                        if let Some(p) = pair(node, &term.topology_key) {
                            *s.affinity.entry(p).or_insert(0) += 1;
                        }
                    }
                }
                for term in &pod.required_anti_affinity {
                    if term_matches(term, &pod.namespace, existing) {
                        if let Some(p) = pair(node, &term.topology_key) {
                            *s.anti_affinity.entry(p).or_insert(0) += 1;
                        }
                    }
                }
            }
        }
        state.write(NAME, s);
        Status::success()
    }
}

impl FilterPlugin for InterPodAffinity {
    fn filter(&self, state: &CycleState, pod: &PodInfo, node: &NodeInfo) -> Status {
        let Some(s) = state.read::<PreFilterState>(NAME) else { return Status::success() };
        // Upstream checks affinity first, then anti-affinity, then existing pods' anti-affinity.
        if !pod.required_affinity.is_empty() {
            let all = pod.required_affinity.iter().all(|t| pair(node, &t.topology_key).is_some_and(|p| s.affinity.get(&p).copied().unwrap_or(0) > 0));
            if !all {
                // The first pod of a group that selects itself may go anywhere its terms'
                // topology keys exist.
                let self_match = s.affinity.is_empty()
                    && pod.required_affinity.iter().all(|t| term_matches(t, &pod.namespace, pod) && node.labels.contains_key(&t.topology_key));
                if !self_match {
                    return Status { code: Code::UnschedulableAndUnresolvable, reasons: vec![ERR_AFFINITY.into()], plugin: NAME };
                }
            }
        }
        for t in &pod.required_anti_affinity {
            if pair(node, &t.topology_key).is_some_and(|p| s.anti_affinity.get(&p).copied().unwrap_or(0) > 0) {
                return Status::unschedulable(ERR_ANTI_AFFINITY);
            }
        }
        for ((k, v), n) in &s.existing_anti {
            if *n > 0 && node.labels.get(k) == Some(v) {
                return Status::unschedulable(ERR_EXISTING_ANTI_AFFINITY);
            }
        }
        Status::success()
    }
}

struct PreScoreState {
    scores: HashMap<TopologyPair, i64>,
}

impl PreScorePlugin for InterPodAffinity {
    fn pre_score(&self, state: &mut CycleState, pod: &PodInfo, _nodes: &[&NodeInfo], snapshot: &Snapshot) -> Status {
        let incoming = !pod.preferred_affinity.is_empty() || !pod.preferred_anti_affinity.is_empty();
        if !incoming && !snapshot.has_pods_with_affinity() {
            return Status::skip();
        }
        let mut scores: HashMap<TopologyPair, i64> = HashMap::new();
        let mut add = |node: &NodeInfo, key: &str, w: i64| {
            if let Some(p) = pair(node, key) {
                *scores.entry(p).or_insert(0) += w;
            }
        };
        for node in &snapshot.nodes {
            if !incoming && node.pods_with_affinity == 0 {
                continue;
            }
            for existing in &node.pods {
                for (w, t) in &pod.preferred_affinity {
                    if term_matches(t, &pod.namespace, existing) {
                        add(node, &t.topology_key, i64::from(*w));
                    }
                }
                for (w, t) in &pod.preferred_anti_affinity {
                    if term_matches(t, &pod.namespace, existing) {
                        add(node, &t.topology_key, -i64::from(*w));
                    }
                }
                for t in &existing.required_affinity {
                    if term_matches(t, &existing.namespace, pod) {
                        add(node, &t.topology_key, HARD_POD_AFFINITY_WEIGHT);
                    }
                }
                for (w, t) in &existing.preferred_affinity {
                    if term_matches(t, &existing.namespace, pod) {
                        add(node, &t.topology_key, i64::from(*w));
                    }
                }
                for (w, t) in &existing.preferred_anti_affinity {
                    if term_matches(t, &existing.namespace, pod) {
                        add(node, &t.topology_key, -i64::from(*w));
                    }
                }
            }
        }
        state.write(NAME, PreScoreState { scores });
        Status::success()
    }
}

impl ScorePlugin for InterPodAffinity {
    fn score(&self, state: &CycleState, _pod: &PodInfo, node: &NodeInfo) -> i64 {
        let Some(s) = state.read::<PreScoreState>(NAME) else { return 0 };
        s.scores.iter().filter(|((k, v), _)| node.labels.get(k) == Some(v)).map(|(_, w)| *w).sum()
    }

    fn normalize(&self, state: &CycleState, _pod: &PodInfo, scores: &mut [i64]) {
        if state.read::<PreScoreState>(NAME).is_none() {
            return;
        }
        let (min, max) = (scores.iter().copied().min().unwrap_or(0), scores.iter().copied().max().unwrap_or(0));
        let diff = max - min;
        for s in scores.iter_mut() {
            *s = if diff > 0 { MAX_NODE_SCORE * (*s - min) / diff } else { 0 };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::node_info::testing::*;
    use k8s_openapi::api::core::v1::{Affinity, Pod, PodAffinity, PodAntiAffinity, WeightedPodAffinityTerm};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;

    fn term(app: &str, key: &str) -> PodAffinityTerm {
        PodAffinityTerm {
            label_selector: Some(LabelSelector { match_labels: Some([("app".to_string(), app.to_string())].into()), match_expressions: None }),
            topology_key: key.into(),
            ..Default::default()
        }
    }

    fn with_anti(name: &str, app: &str) -> Pod {
        let mut p = with_labels(pod(name, None, None), &[("app", app)]);
        p.spec.as_mut().unwrap().affinity = Some(Affinity {
            pod_anti_affinity: Some(PodAntiAffinity {
                required_during_scheduling_ignored_during_execution: Some(vec![term(app, "kubernetes.io/hostname")]),
                ..Default::default()
            }),
            ..Default::default()
        });
        p
    }

    fn run(pod: &PodInfo, nodes: &[&NodeInfo]) -> Vec<Status> {
        let snap = Snapshot::new(nodes.to_vec());
        let mut st = CycleState::default();
        InterPodAffinity.pre_filter(&mut st, pod, &snap);
        nodes.iter().map(|n| InterPodAffinity.filter(&st, pod, n)).collect()
    }

    #[test]
    fn anti_affinity_on_hostname_allows_one_replica_per_node() {
        let mut a = node("a", "1", "1Gi", &[]);
        let b = node("b", "1", "1Gi", &[]);
        a.add_pod(info(with_anti("web-1", "web")));
        let st = run(&info(with_anti("web-2", "web")), &[&a, &b]);
        assert_eq!(st[0].reasons, [ERR_ANTI_AFFINITY]);
        assert!(st[1].is_success());
        // A pod without anti-affinity of its own is still kept off by the existing pod's rule.
        let plain = info(with_labels(pod("web-3", None, None), &[("app", "web")]));
        let st = run(&plain, &[&a, &b]);
        assert_eq!(st[0].reasons, [ERR_EXISTING_ANTI_AFFINITY]);
        assert!(st[1].is_success());
    }

    #[test]
    fn required_affinity_follows_the_matching_pods_zone() {
        let mut a = node("a", "1", "1Gi", &[("zone", "z1")]);
        let b = node("b", "1", "1Gi", &[("zone", "z2")]);
        let c = node("c", "1", "1Gi", &[("zone", "z1")]);
        a.add_pod(info(with_labels(pod("db", None, None), &[("app", "db")])));
        let mut p = with_labels(pod("web", None, None), &[("app", "web")]);
        p.spec.as_mut().unwrap().affinity = Some(Affinity {
            pod_affinity: Some(PodAffinity { required_during_scheduling_ignored_during_execution: Some(vec![term("db", "zone")]), ..Default::default() }),
            ..Default::default()
        });
        let st = run(&info(p.clone()), &[&a, &b, &c]);
        assert!(st[0].is_success());
        assert_eq!((st[1].code, st[1].reasons[0].as_str()), (Code::UnschedulableAndUnresolvable, ERR_AFFINITY));
        assert!(st[2].is_success());
        // With no matching pod anywhere, a pod that does not match its own term cannot go anywhere.
        let empty = node("d", "1", "1Gi", &[("zone", "z1")]);
        assert!(!run(&info(p), &[&empty])[0].is_success());
    }

    #[test]
    fn preferred_affinity_scores_the_domain_with_matching_pods() {
        let mut a = node("a", "1", "1Gi", &[("zone", "z1")]);
        let b = node("b", "1", "1Gi", &[("zone", "z2")]);
        a.add_pod(info(with_labels(pod("cache", None, None), &[("app", "cache")])));
        let mut p = pod("web", None, None);
        p.spec.as_mut().unwrap().affinity = Some(Affinity {
            pod_affinity: Some(PodAffinity {
                preferred_during_scheduling_ignored_during_execution: Some(vec![WeightedPodAffinityTerm { weight: 5, pod_affinity_term: term("cache", "zone") }]),
                ..Default::default()
            }),
            ..Default::default()
        });
        let p = info(p);
        let snap = Snapshot::new(vec![&a, &b]);
        let mut st = CycleState::default();
        InterPodAffinity.pre_score(&mut st, &p, &snap.nodes, &snap);
        let mut scores = vec![InterPodAffinity.score(&st, &p, &a), InterPodAffinity.score(&st, &p, &b)];
        InterPodAffinity.normalize(&st, &p, &mut scores);
        assert_eq!(scores, [100, 0]);
    }
}
