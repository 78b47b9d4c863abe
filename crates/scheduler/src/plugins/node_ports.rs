//! NodePorts: a pod's hostPorts must be free on the node (same protocol and port, and the
//! same hostIP or either side 0.0.0.0, as upstream `HostPortInfo.CheckConflict`).

use crate::framework::{CycleState, FilterPlugin, Plugin, Status};
use crate::node_info::{HostPort, NodeInfo, PodInfo};

pub const NAME: &str = "NodePorts";
pub const ERR_REASON: &str = "node(s) didn't have free ports for the requested pod ports";

pub struct NodePorts;

impl Plugin for NodePorts {
    fn name(&self) -> &'static str {
        NAME
    }
}

fn conflicts(a: &HostPort, b: &HostPort) -> bool {
    a.1 == b.1 && a.2 == b.2 && (a.0 == b.0 || a.0 == "0.0.0.0" || b.0 == "0.0.0.0")
}

impl FilterPlugin for NodePorts {
    fn filter(&self, _state: &CycleState, pod: &PodInfo, node: &NodeInfo) -> Status {
        if pod.host_ports.iter().any(|want| node.used_ports.iter().any(|used| conflicts(want, used))) {
            Status::unschedulable(ERR_REASON)
        } else {
            Status::success()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::framework::Code;
    use crate::node_info::testing::*;
    use k8s_openapi::api::core::v1::{ContainerPort, Pod};

    fn with_port(name: &str, ip: Option<&str>, port: i32, proto: &str) -> Pod {
        let mut p = pod(name, None, None);
        p.spec.as_mut().unwrap().containers[0].ports = Some(vec![ContainerPort {
            container_port: 80,
            host_port: Some(port),
            host_ip: ip.map(Into::into),
            protocol: Some(proto.into()),
            ..Default::default()
        }]);
        p
    }

    #[test]
    fn host_port_conflicts_follow_ip_and_protocol() {
        let mut n = node("n", "1", "1Gi", &[]);
        n.add_pod(info(with_port("a", Some("10.0.0.1"), 8080, "TCP")));
        let s = NodePorts.filter(&CycleState::default(), &info(with_port("b", None, 8080, "TCP")), &n);
        assert_eq!(s.code, Code::Unschedulable);
        assert_eq!(s.reasons, [ERR_REASON]);
        assert!(NodePorts.filter(&CycleState::default(), &info(with_port("c", Some("10.0.0.2"), 8080, "TCP")), &n).is_success());
        assert!(NodePorts.filter(&CycleState::default(), &info(with_port("d", None, 8080, "UDP")), &n).is_success());
        assert!(NodePorts.filter(&CycleState::default(), &info(with_port("e", None, 8081, "TCP")), &n).is_success());
    }
}
