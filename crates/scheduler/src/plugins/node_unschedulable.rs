//! NodeUnschedulable: cordoned nodes (`spec.unschedulable`) take only pods that tolerate
//! the `node.kubernetes.io/unschedulable:NoSchedule` taint.

use k8s_openapi::api::core::v1::Taint;

use crate::framework::{FilterPlugin, Plugin, Status, CycleState};
use crate::node_info::{NodeInfo, PodInfo};
use crate::selectors::tolerates;

pub const NAME: &str = "NodeUnschedulable";
/// Upstream `ErrReasonUnschedulable`.
pub const ERR_REASON: &str = "node(s) were unschedulable";

pub struct NodeUnschedulable;

impl Plugin for NodeUnschedulable {
    fn name(&self) -> &'static str {
        NAME
    }
}

impl FilterPlugin for NodeUnschedulable {
    fn filter(&self, _state: &CycleState, pod: &PodInfo, node: &NodeInfo) -> Status {
        if !node.unschedulable() {
            return Status::success();
        }
        let taint = Taint { key: "node.kubernetes.io/unschedulable".into(), effect: "NoSchedule".into(), value: None, time_added: None };
        let tolerated = pod.pod.spec.as_ref().and_then(|s| s.tolerations.as_ref()).into_iter().flatten().any(|t| tolerates(t, &taint));
        if tolerated { Status::success() } else { Status::unresolvable(ERR_REASON) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::framework::Code;
    use crate::node_info::testing::*;
    use k8s_openapi::api::core::v1::{NodeSpec, Toleration};
    use std::sync::Arc;

    #[test]
    fn cordoned_nodes_reject_pods_without_the_toleration() {
        let mut n = node("n", "1", "1Gi", &[]);
        let p = info(pod("p", None, None));
        assert!(NodeUnschedulable.filter(&CycleState::default(), &p, &n).is_success());
        let mut node_obj = (*n.node).clone();
        node_obj.spec = Some(NodeSpec { unschedulable: Some(true), ..Default::default() });
        n.set_node(Arc::new(node_obj));
        let s = NodeUnschedulable.filter(&CycleState::default(), &p, &n);
        assert_eq!(s.code, Code::UnschedulableAndUnresolvable);
        assert_eq!(s.reasons, [ERR_REASON]);
        let mut tolerant = pod("t", None, None);
        tolerant.spec.as_mut().unwrap().tolerations = Some(vec![Toleration {
            key: Some("node.kubernetes.io/unschedulable".into()),
            operator: Some("Exists".into()),
            effect: Some("NoSchedule".into()),
            ..Default::default()
        }]);
        assert!(NodeUnschedulable.filter(&CycleState::default(), &info(tolerant), &n).is_success());
    }
}
