//! The Node and Lease objects of simulated nodes (pure).

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::api::core::v1::{
    Node, NodeAddress, NodeCondition, NodeSpec, NodeStatus, NodeSystemInfo, Taint,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta, Time};

use crate::Config;

/// Namespace of node leases (upstream `kube-node-lease`).
pub const LEASE_NAMESPACE: &str = "kube-node-lease";
/// Lease duration a kubelet writes (40 s, `nodeLeaseDurationSeconds`).
pub const LEASE_DURATION_SECS: i32 = 40;

/// The wall clock, in one place.
pub fn now() -> jiff::Timestamp {
    jiff::Timestamp::now()
}

/// Everything needed to build node `i` of a group.
#[derive(Debug, Clone)]
pub struct NodeTemplate {
    pub count: usize,
    pub prefix: String,
    pub cpu: String,
    pub memory: String,
    pub pods: u32,
    pub zones: usize,
    pub labels: BTreeMap<String, String>,
    pub taints: Vec<Taint>,
}

impl NodeTemplate {
    pub fn from_config(c: &Config) -> Self {
        NodeTemplate {
            count: c.count,
            prefix: c.name_prefix.clone(),
            cpu: c.cpu.clone(),
            memory: c.memory.clone(),
            pods: c.pods,
            zones: c.zones,
            labels: c.labels.clone(),
            taints: c.taints.clone(),
        }
    }

    pub fn node_name(&self, i: usize) -> String {
        format!("{}{i}", self.prefix)
    }

    /// The index of a node of this group, from its name.
    pub fn node_index(&self, name: &str) -> Option<usize> {
        let i: usize = name.strip_prefix(&self.prefix)?.parse().ok()?;
        (i < self.count && self.node_name(i) == name).then_some(i)
    }

    /// A fake InternalIP from 100.64.0.0/10 (shared address space, never routed here).
    pub fn node_ip(&self, i: usize) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(Ipv4Addr::new(100, 64, 0, 1)) + i as u32)
    }

    /// Node `i` owns the fake pod range 10.128.0.0/9 + i*256 (a /24 per node).
    pub fn pod_cidr(&self, i: usize) -> String {
        format!("{}/24", Ipv4Addr::from(u32::from(Ipv4Addr::new(10, 128, 0, 0)) + (i as u32) * 256))
    }

    /// The `n`th pod IP on node `i` (cycling through .1 – .254).
    pub fn pod_ip(&self, i: usize, n: u32) -> Ipv4Addr {
        let base = u32::from(Ipv4Addr::new(10, 128, 0, 0)) + (i as u32) * 256;
        Ipv4Addr::from(base + 1 + (n.saturating_sub(1) % 254))
    }

    pub fn node(&self, i: usize) -> Node {
        let name = self.node_name(i);
        let mut labels = self.labels.clone();
        labels.insert("kubernetes.io/hostname".into(), name.clone());
        labels.insert("kubernetes.io/os".into(), "linux".into());
        labels.insert("kubernetes.io/arch".into(), "amd64".into());
        labels.insert("beta.kubernetes.io/os".into(), "linux".into());
        labels.insert("beta.kubernetes.io/arch".into(), "amd64".into());
        labels.insert("type".into(), "sim".into());
        if self.zones > 0 {
            labels.insert("topology.kubernetes.io/zone".into(), format!("zone-{}", i % self.zones));
        }
        let resources: BTreeMap<String, Quantity> = [
            ("cpu", self.cpu.clone()),
            ("memory", self.memory.clone()),
            ("pods", self.pods.to_string()),
            ("ephemeral-storage", "100Gi".to_owned()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), Quantity(v)))
        .collect();
        let now = Time(now());
        let condition = |type_: &str, status: &str, reason: &str, message: &str| NodeCondition {
            type_: type_.into(),
            status: status.into(),
            reason: Some(reason.into()),
            message: Some(message.into()),
            last_heartbeat_time: Some(now.clone()),
            last_transition_time: Some(now.clone()),
        };
        Node {
            metadata: ObjectMeta {
                name: Some(name.clone()),
                labels: Some(labels),
                annotations: Some(BTreeMap::from([("rkube.io/simulated".to_owned(), "true".to_owned())])),
                ..Default::default()
            },
            spec: Some(NodeSpec {
                pod_cidr: Some(self.pod_cidr(i)),
                pod_cidrs: Some(vec![self.pod_cidr(i)]),
                taints: (!self.taints.is_empty()).then(|| self.taints.clone()),
                ..Default::default()
            }),
            status: Some(NodeStatus {
                capacity: Some(resources.clone()),
                allocatable: Some(resources),
                conditions: Some(vec![
                    condition("MemoryPressure", "False", "KubeletHasSufficientMemory", "kubelet has sufficient memory available"),
                    condition("DiskPressure", "False", "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
                    condition("PIDPressure", "False", "KubeletHasSufficientPID", "kubelet has sufficient PID available"),
                    condition("Ready", "True", "KubeletReady", "kubelet is posting ready status"),
                ]),
                addresses: Some(vec![
                    NodeAddress { type_: "InternalIP".into(), address: self.node_ip(i).to_string() },
                    NodeAddress { type_: "Hostname".into(), address: name },
                ]),
                node_info: Some(NodeSystemInfo {
                    architecture: "amd64".into(),
                    boot_id: format!("sim-boot-{i}"),
                    container_runtime_version: "sim://1.0.0".into(),
                    kernel_version: "6.1.0-sim".into(),
                    kube_proxy_version: String::new(),
                    kubelet_version: "v1.33.0-rkube-sim".into(),
                    machine_id: format!("sim-machine-{i}"),
                    operating_system: "linux".into(),
                    os_image: "rkube simulated node".into(),
                    system_uuid: format!("sim-uuid-{i}"),
                    swap: None,
                }),
                ..Default::default()
            }),
        }
    }

    pub fn lease(&self, i: usize, now: jiff::Timestamp) -> Lease {
        let name = self.node_name(i);
        Lease {
            metadata: ObjectMeta {
                name: Some(name.clone()),
                namespace: Some(LEASE_NAMESPACE.into()),
                ..Default::default()
            },
            spec: Some(LeaseSpec {
                holder_identity: Some(name),
                lease_duration_seconds: Some(LEASE_DURATION_SECS),
                renew_time: Some(MicroTime(now)),
                ..Default::default()
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn template() -> NodeTemplate {
        let config = Config { count: 5, zones: 3, ..Default::default() };
        NodeTemplate::from_config(&config)
    }

    #[test]
    fn nodes_get_hostname_and_zone_labels_spread_round_robin() {
        let t = template();
        let zones: Vec<String> = (0..5)
            .map(|i| t.node(i).metadata.labels.unwrap()["topology.kubernetes.io/zone"].clone())
            .collect();
        assert_eq!(zones, ["zone-0", "zone-1", "zone-2", "zone-0", "zone-1"]);
        let n = t.node(3);
        assert_eq!(n.metadata.labels.as_ref().unwrap()["kubernetes.io/hostname"], "sim-3");
        let status = n.status.unwrap();
        assert_eq!(status.allocatable.unwrap()["cpu"].0, "4");
        assert!(status.conditions.unwrap().iter().any(|c| c.type_ == "Ready" && c.status == "True"));
    }

    #[test]
    fn node_index_only_accepts_own_names() {
        let t = template();
        assert_eq!(t.node_index("sim-4"), Some(4));
        assert_eq!(t.node_index("sim-5"), None);
        assert_eq!(t.node_index("sim-04"), None);
        assert_eq!(t.node_index("other-1"), None);
    }

    #[test]
    fn pod_ips_stay_inside_the_node_range() {
        let t = template();
        assert_eq!(t.pod_cidr(1), "10.128.1.0/24");
        assert_eq!(t.pod_ip(1, 1), Ipv4Addr::new(10, 128, 1, 1));
        assert_eq!(t.pod_ip(1, 255), Ipv4Addr::new(10, 128, 1, 1));
        assert_eq!(t.pod_ip(1, 254), Ipv4Addr::new(10, 128, 1, 254));
    }
}
