//! NodeName: a pod naming a node (`spec.nodeName`) fits only there.

use crate::framework::{CycleState, FilterPlugin, Plugin, Status};
use crate::node_info::{NodeInfo, PodInfo};

pub const NAME: &str = "NodeName";
pub const ERR_REASON: &str = "node(s) didn't match the requested node name";

pub struct NodeName;

impl Plugin for NodeName {
    fn name(&self) -> &'static str {
        NAME
    }
}

impl FilterPlugin for NodeName {
    fn filter(&self, _state: &CycleState, pod: &PodInfo, node: &NodeInfo) -> Status {
        match pod.pod.spec.as_ref().and_then(|s| s.node_name.as_deref()).filter(|n| !n.is_empty()) {
            Some(wanted) if wanted != node.name => Status::unresolvable(ERR_REASON),
            _ => Status::success(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::node_info::testing::*;

    #[test]
    fn only_the_named_node_fits() {
        let mut p = pod("p", None, None);
        let n = node("a", "1", "1Gi", &[]);
        assert!(NodeName.filter(&CycleState::default(), &info(p.clone()), &n).is_success());
        p.spec.as_mut().unwrap().node_name = Some("b".into());
        assert_eq!(NodeName.filter(&CycleState::default(), &info(p), &n).reasons, [ERR_REASON]);
    }
}
