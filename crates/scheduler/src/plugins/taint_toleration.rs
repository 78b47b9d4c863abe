//! TaintToleration: NoSchedule and NoExecute taints must be tolerated; PreferNoSchedule
//! taints that are not tolerated lower the score.

use crate::framework::{default_normalize, CycleState, FilterPlugin, Plugin, ScorePlugin, Status};
use crate::node_info::{NodeInfo, PodInfo};
use crate::selectors::tolerates;

pub const NAME: &str = "TaintToleration";

pub struct TaintToleration;

impl Plugin for TaintToleration {
    fn name(&self) -> &'static str {
        NAME
    }
}

fn tolerations(pod: &PodInfo) -> &[k8s_openapi::api::core::v1::Toleration] {
    pod.pod.spec.as_ref().and_then(|s| s.tolerations.as_deref()).unwrap_or_default()
}

impl FilterPlugin for TaintToleration {
    fn filter(&self, _state: &CycleState, pod: &PodInfo, node: &NodeInfo) -> Status {
        let tols = tolerations(pod);
        let untolerated = node
            .taints()
            .iter()
            .filter(|t| t.effect == "NoSchedule" || t.effect == "NoExecute")
            .find(|t| !tols.iter().any(|tol| tolerates(tol, t)));
        match untolerated {
            // Upstream: "node(s) had untolerated taint {%s: %s}".
            Some(t) => Status::unresolvable(format!(
                "node(s) had untolerated taint {{{}: {}}}",
                t.key,
                t.value.as_deref().unwrap_or_default()
            )),
            None => Status::success(),
        }
    }
}

impl ScorePlugin for TaintToleration {
    fn score(&self, _state: &CycleState, pod: &PodInfo, node: &NodeInfo) -> i64 {
        let tols: Vec<_> = tolerations(pod)
            .iter()
            .filter(|t| t.effect.as_deref().is_none_or(|e| e.is_empty() || e == "PreferNoSchedule"))
            .collect();
        node.taints()
            .iter()
            .filter(|t| t.effect == "PreferNoSchedule" && !tols.iter().any(|tol| tolerates(tol, t)))
            .count() as i64
    }

    fn normalize(&self, _state: &CycleState, _pod: &PodInfo, scores: &mut [i64]) {
        default_normalize(scores, true);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::framework::Code;
    use crate::node_info::testing::*;
    use k8s_openapi::api::core::v1::{NodeSpec, Taint, Toleration};
    use std::sync::Arc;

    fn tainted(name: &str, taints: &[(&str, &str, &str)]) -> NodeInfo {
        let mut n = node(name, "1", "1Gi", &[]);
        let mut obj = (*n.node).clone();
        obj.spec = Some(NodeSpec {
            taints: Some(taints.iter().map(|(k, v, e)| Taint { key: k.to_string(), value: Some(v.to_string()), effect: e.to_string(), time_added: None }).collect()),
            ..Default::default()
        });
        n.set_node(Arc::new(obj));
        n
    }

    #[test]
    fn untolerated_no_schedule_taints_reject_with_the_upstream_message() {
        let n = tainted("n", &[("dedicated", "gpu", "NoSchedule")]);
        let p = pod("p", None, None);
        let s = TaintToleration.filter(&CycleState::default(), &info(p.clone()), &n);
        assert_eq!(s.code, Code::UnschedulableAndUnresolvable);
        assert_eq!(s.reasons, ["node(s) had untolerated taint {dedicated: gpu}"]);
        let mut tolerant = p;
        tolerant.spec.as_mut().unwrap().tolerations = Some(vec![Toleration {
            key: Some("dedicated".into()),
            operator: Some("Equal".into()),
            value: Some("gpu".into()),
            effect: Some("NoSchedule".into()),
            toleration_seconds: None,
        }]);
        assert!(TaintToleration.filter(&CycleState::default(), &info(tolerant), &n).is_success());
        let soft = tainted("s", &[("spot", "true", "PreferNoSchedule")]);
        assert!(TaintToleration.filter(&CycleState::default(), &info(pod("q", None, None)), &soft).is_success());
    }

    #[test]
    fn prefer_no_schedule_taints_lower_the_score() {
        let p = info(pod("p", None, None));
        let st = CycleState::default();
        let nodes = [tainted("a", &[]), tainted("b", &[("spot", "true", "PreferNoSchedule")])];
        let mut scores: Vec<i64> = nodes.iter().map(|n| TaintToleration.score(&st, &p, n)).collect();
        TaintToleration.normalize(&st, &p, &mut scores);
        assert_eq!(scores, [100, 0]);
    }
}
