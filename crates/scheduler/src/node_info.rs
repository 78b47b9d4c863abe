//! Per-pod and per-node facts the plugins read: requests, ports, affinity terms, and the
//! aggregate of every pod on a node (upstream `framework.PodInfo` / `NodeInfo`).

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use k8s_openapi::api::core::v1::{Container, Node, Pod, PodAffinityTerm};

use crate::quantity;
use crate::selectors::Labels;

/// Default CPU request used for scoring pods without one (upstream `DefaultMilliCPURequest`).
pub const DEFAULT_MILLI_CPU_REQUEST: i64 = 100;
/// Default memory request used for scoring (upstream `DefaultMemoryRequest`, 200 MB).
pub const DEFAULT_MEMORY_REQUEST: i64 = 200 * 1024 * 1024;

/// Amounts of compute resources (upstream `framework.Resource`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Resource {
    pub milli_cpu: i64,
    pub memory: i64,
    pub ephemeral_storage: i64,
    pub allowed_pod_number: i64,
    /// Extended resources, hugepages and the like.
    pub scalar: BTreeMap<String, i64>,
}

/// Whether a resource name is a scalar resource the scheduler counts (extended resources,
/// hugepages, attachable volumes), as `schedutil.IsScalarResourceName`.
fn is_scalar(name: &str) -> bool {
    name.starts_with("hugepages-")
        || name.starts_with("attachable-volumes-")
        || (name.contains('/') && !name.starts_with("kubernetes.io/") && !name.starts_with("requests."))
}

impl Resource {
    /// Adds a ResourceList (`resources.requests`, node allocatable, pod overhead).
    pub fn add_list(&mut self, list: &BTreeMap<String, k8s_openapi::apimachinery::pkg::api::resource::Quantity>) {
        for (name, q) in list {
            match name.as_str() {
                "cpu" => self.milli_cpu += quantity::parse(&q.0, 1000).unwrap_or(0),
                "memory" => self.memory += quantity::parse(&q.0, 1).unwrap_or(0),
                "ephemeral-storage" => self.ephemeral_storage += quantity::parse(&q.0, 1).unwrap_or(0),
                "pods" => self.allowed_pod_number += quantity::parse(&q.0, 1).unwrap_or(0),
                n if is_scalar(n) => *self.scalar.entry(n.to_owned()).or_insert(0) += quantity::parse(&q.0, 1).unwrap_or(0),
                _ => {}
            }
        }
    }

    pub fn add(&mut self, other: &Resource) {
        self.milli_cpu += other.milli_cpu;
        self.memory += other.memory;
        self.ephemeral_storage += other.ephemeral_storage;
        self.allowed_pod_number += other.allowed_pod_number;
        for (k, v) in &other.scalar {
            *self.scalar.entry(k.clone()).or_insert(0) += v;
        }
    }

    pub fn sub(&mut self, other: &Resource) {
        self.milli_cpu -= other.milli_cpu;
        self.memory -= other.memory;
        self.ephemeral_storage -= other.ephemeral_storage;
        self.allowed_pod_number -= other.allowed_pod_number;
        for (k, v) in &other.scalar {
            *self.scalar.entry(k.clone()).or_insert(0) -= v;
        }
    }

    fn set_max(&mut self, other: &Resource) {
        self.milli_cpu = self.milli_cpu.max(other.milli_cpu);
        self.memory = self.memory.max(other.memory);
        self.ephemeral_storage = self.ephemeral_storage.max(other.ephemeral_storage);
        for (k, v) in &other.scalar {
            let e = self.scalar.entry(k.clone()).or_insert(0);
            *e = (*e).max(*v);
        }
    }
}

fn container_requests(c: &Container, non_zero: bool) -> Resource {
    let mut r = Resource::default();
    if let Some(req) = c.resources.as_ref().and_then(|r| r.requests.as_ref()) {
        r.add_list(req);
    }
    if non_zero {
        let req = c.resources.as_ref().and_then(|r| r.requests.as_ref());
        if !req.is_some_and(|m| m.contains_key("cpu")) {
            r.milli_cpu = DEFAULT_MILLI_CPU_REQUEST;
        }
        if !req.is_some_and(|m| m.contains_key("memory")) {
            r.memory = DEFAULT_MEMORY_REQUEST;
        }
    }
    r
}

/// The pod's effective requests, as component-helpers' `PodRequests`: the sum over app
/// containers (plus restartable init containers, i.e. sidecars), raised to the largest
/// init container (plus the sidecars started before it), plus the pod overhead.
/// With `non_zero`, containers without a CPU/memory request count the scoring defaults.
pub fn pod_requests(pod: &Pod, non_zero: bool) -> Resource {
    let Some(spec) = pod.spec.as_ref() else { return Resource::default() };
    let mut total = Resource::default();
    for c in &spec.containers {
        total.add(&container_requests(c, non_zero));
    }
    let mut sidecars = Resource::default();
    let mut init_max = Resource::default();
    for c in spec.init_containers.iter().flatten() {
        let r = container_requests(c, non_zero);
        if c.restart_policy.as_deref() == Some("Always") {
            sidecars.add(&r);
            total.add(&r);
            init_max.set_max(&sidecars);
        } else {
            let mut with_sidecars = sidecars.clone();
            with_sidecars.add(&r);
            init_max.set_max(&with_sidecars);
        }
    }
    total.set_max(&init_max);
    if let Some(overhead) = &spec.overhead {
        total.add_list(overhead);
    }
    total
}

/// A host port a pod uses: (hostIP, protocol, port).
pub type HostPort = (String, String, i32);

/// Facts about one pod, computed once.
#[derive(Debug, Clone)]
pub struct PodInfo {
    pub pod: Arc<Pod>,
    pub namespace: String,
    pub name: String,
    pub uid: String,
    pub labels: Labels,
    pub priority: i32,
    pub requests: Resource,
    /// Requests with the scoring defaults for containers that set none.
    pub non_zero_requests: Resource,
    pub host_ports: Vec<HostPort>,
    pub required_affinity: Vec<PodAffinityTerm>,
    pub required_anti_affinity: Vec<PodAffinityTerm>,
    pub preferred_affinity: Vec<(i32, PodAffinityTerm)>,
    pub preferred_anti_affinity: Vec<(i32, PodAffinityTerm)>,
    pub terminating: bool,
}

impl PodInfo {
    /// `priority` is `spec.priority`, or what the caller resolved from the PriorityClass.
    pub fn new(pod: Arc<Pod>, priority: i32) -> Self {
        let spec = pod.spec.as_ref();
        let mut host_ports = Vec::new();
        for c in spec.map(|s| s.containers.as_slice()).unwrap_or_default() {
            for p in c.ports.iter().flatten() {
                if let Some(hp) = p.host_port.filter(|hp| *hp > 0) {
                    let ip = p.host_ip.clone().filter(|s| !s.is_empty()).unwrap_or_else(|| "0.0.0.0".into());
                    host_ports.push((ip, p.protocol.clone().unwrap_or_else(|| "TCP".into()), hp));
                }
            }
        }
        let affinity = spec.and_then(|s| s.affinity.as_ref());
        let pa = affinity.and_then(|a| a.pod_affinity.as_ref());
        let paa = affinity.and_then(|a| a.pod_anti_affinity.as_ref());
        let weighted = |v: Option<&Vec<k8s_openapi::api::core::v1::WeightedPodAffinityTerm>>| {
            v.into_iter().flatten().map(|w| (w.weight, w.pod_affinity_term.clone())).collect()
        };
        PodInfo {
            namespace: pod.metadata.namespace.clone().unwrap_or_else(|| "default".into()),
            name: pod.metadata.name.clone().unwrap_or_default(),
            uid: pod.metadata.uid.clone().unwrap_or_default(),
            labels: pod.metadata.labels.clone().unwrap_or_default(),
            priority,
            requests: pod_requests(&pod, false),
            non_zero_requests: pod_requests(&pod, true),
            host_ports,
            required_affinity: pa.and_then(|a| a.required_during_scheduling_ignored_during_execution.clone()).unwrap_or_default(),
            required_anti_affinity: paa.and_then(|a| a.required_during_scheduling_ignored_during_execution.clone()).unwrap_or_default(),
            preferred_affinity: weighted(pa.and_then(|a| a.preferred_during_scheduling_ignored_during_execution.as_ref())),
            preferred_anti_affinity: weighted(paa.and_then(|a| a.preferred_during_scheduling_ignored_during_execution.as_ref())),
            terminating: pod.metadata.deletion_timestamp.is_some(),
            pod,
        }
    }

    /// `namespace/name`.
    pub fn key(&self) -> String {
        format!("{}/{}", self.namespace, self.name)
    }

    pub fn has_affinity(&self) -> bool {
        !(self.required_affinity.is_empty()
            && self.required_anti_affinity.is_empty()
            && self.preferred_affinity.is_empty()
            && self.preferred_anti_affinity.is_empty())
    }
}

/// A node and every pod assigned (or assumed) to it.
#[derive(Debug, Clone)]
pub struct NodeInfo {
    pub name: String,
    pub node: Arc<Node>,
    pub labels: Labels,
    pub pods: Vec<Arc<PodInfo>>,
    /// Sum of the pods' requests.
    pub requested: Resource,
    /// Sum with scoring defaults (upstream `NonZeroRequested`).
    pub non_zero_requested: Resource,
    pub allocatable: Resource,
    pub used_ports: Vec<HostPort>,
    /// Normalized image name → size in bytes, from `status.images`.
    pub images: BTreeMap<String, i64>,
    /// Number of pods with any pod (anti-)affinity, to skip work when zero.
    pub pods_with_affinity: usize,
    /// Non-terminating pods per (namespace, label key, label value), so single-label
    /// selectors (the common spreading case) count without scanning the pods.
    /// namespace → label key → label value → count.
    pub label_counts: HashMap<String, HashMap<String, HashMap<String, u32>>>,
}

/// `nginx` → `nginx:latest`, as upstream's image locality normalization.
pub fn normalize_image(name: &str) -> String {
    let last = name.rsplit('/').next().unwrap_or(name);
    if last.contains(':') || last.contains('@') { name.to_owned() } else { format!("{name}:latest") }
}

impl NodeInfo {
    pub fn new(node: Arc<Node>) -> Self {
        let mut n = NodeInfo {
            name: node.metadata.name.clone().unwrap_or_default(),
            node: node.clone(),
            labels: Labels::new(),
            pods: Vec::new(),
            requested: Resource::default(),
            non_zero_requested: Resource::default(),
            allocatable: Resource::default(),
            used_ports: Vec::new(),
            images: BTreeMap::new(),
            pods_with_affinity: 0,
            label_counts: HashMap::new(),
        };
        n.set_node(node);
        n
    }

    /// Replaces the Node object, keeping the pods.
    pub fn set_node(&mut self, node: Arc<Node>) {
        self.labels = node.metadata.labels.clone().unwrap_or_default();
        let mut alloc = Resource::default();
        if let Some(a) = node.status.as_ref().and_then(|s| s.allocatable.as_ref()) {
            alloc.add_list(a);
        }
        self.allocatable = alloc;
        self.images.clear();
        for image in node.status.as_ref().and_then(|s| s.images.as_ref()).into_iter().flatten() {
            for name in image.names.iter().flatten() {
                self.images.insert(normalize_image(name), image.size_bytes.unwrap_or(0));
            }
        }
        self.node = node;
    }

    pub fn add_pod(&mut self, pod: Arc<PodInfo>) {
        self.requested.add(&pod.requests);
        self.requested.allowed_pod_number += 1;
        self.non_zero_requested.add(&pod.non_zero_requests);
        self.used_ports.extend(pod.host_ports.iter().cloned());
        if pod.has_affinity() {
            self.pods_with_affinity += 1;
        }
        if !pod.terminating {
            let ns = self.label_counts.entry(pod.namespace.clone()).or_default();
            for (k, v) in &pod.labels {
                *ns.entry(k.clone()).or_default().entry(v.clone()).or_insert(0) += 1;
            }
        }
        self.pods.push(pod);
    }

    /// Removes the pod with this uid; returns whether it was there.
    pub fn remove_pod(&mut self, uid: &str) -> bool {
        let Some(i) = self.pods.iter().position(|p| p.uid == uid) else { return false };
        let pod = self.pods.swap_remove(i);
        self.requested.sub(&pod.requests);
        self.requested.allowed_pod_number -= 1;
        self.non_zero_requested.sub(&pod.non_zero_requests);
        for hp in &pod.host_ports {
            if let Some(j) = self.used_ports.iter().position(|u| u == hp) {
                self.used_ports.swap_remove(j);
            }
        }
        if pod.has_affinity() {
            self.pods_with_affinity -= 1;
        }
        if !pod.terminating {
            if let Some(ns) = self.label_counts.get_mut(&pod.namespace) {
                for (k, v) in &pod.labels {
                    if let Some(n) = ns.get_mut(k).and_then(|values| values.get_mut(v)) {
                        *n = n.saturating_sub(1);
                    }
                }
            }
        }
        true
    }

    /// Non-terminating pods in `namespace` carrying `key=value`.
    pub fn count_label(&self, namespace: &str, key: &str, value: &str) -> u32 {
        self.label_counts.get(namespace).and_then(|ns| ns.get(key)).and_then(|values| values.get(value)).copied().unwrap_or(0)
    }

    pub fn unschedulable(&self) -> bool {
        self.node.spec.as_ref().and_then(|s| s.unschedulable).unwrap_or(false)
    }

    pub fn taints(&self) -> &[k8s_openapi::api::core::v1::Taint] {
        self.node.spec.as_ref().and_then(|s| s.taints.as_deref()).unwrap_or_default()
    }
}

#[cfg(test)]
pub(crate) mod testing {
    //! Builders for plugin tests.
    use super::*;
    use k8s_openapi::api::core::v1::{NodeSpec, NodeStatus, PodSpec, ResourceRequirements};
    use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
    use kube::api::ObjectMeta;

    pub fn node(name: &str, cpu: &str, memory: &str, labels: &[(&str, &str)]) -> NodeInfo {
        let mut l: Labels = labels.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        l.insert("kubernetes.io/hostname".into(), name.into());
        let alloc = [("cpu", cpu), ("memory", memory), ("pods", "110")]
            .into_iter()
            .map(|(k, v)| (k.to_string(), Quantity(v.to_string())))
            .collect();
        NodeInfo::new(Arc::new(Node {
            metadata: ObjectMeta { name: Some(name.into()), labels: Some(l), ..Default::default() },
            spec: Some(NodeSpec::default()),
            status: Some(NodeStatus { allocatable: Some(alloc), ..Default::default() }),
        }))
    }

    pub fn container(cpu: Option<&str>, memory: Option<&str>) -> Container {
        let mut req = BTreeMap::new();
        if let Some(c) = cpu {
            req.insert("cpu".to_string(), Quantity(c.into()));
        }
        if let Some(m) = memory {
            req.insert("memory".to_string(), Quantity(m.into()));
        }
        Container {
            name: "c".into(),
            image: Some("busybox".into()),
            resources: Some(ResourceRequirements { requests: Some(req), ..Default::default() }),
            ..Default::default()
        }
    }

    pub fn pod(name: &str, cpu: Option<&str>, memory: Option<&str>) -> Pod {
        Pod {
            metadata: ObjectMeta {
                name: Some(name.into()),
                namespace: Some("default".into()),
                uid: Some(format!("uid-{name}")),
                ..Default::default()
            },
            spec: Some(PodSpec { containers: vec![container(cpu, memory)], ..Default::default() }),
            status: None,
        }
    }

    pub fn info(pod: Pod) -> Arc<PodInfo> {
        let prio = pod.spec.as_ref().and_then(|s| s.priority).unwrap_or(0);
        Arc::new(PodInfo::new(Arc::new(pod), prio))
    }

    pub fn with_labels(mut pod: Pod, labels: &[(&str, &str)]) -> Pod {
        pod.metadata.labels = Some(labels.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect());
        pod
    }
}

#[cfg(test)]
mod tests {
    use super::testing::*;
    use super::*;
    use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

    #[test]
    fn requests_take_the_max_of_init_containers_and_add_overhead() {
        let mut p = pod("p", Some("500m"), Some("1Gi"));
        let spec = p.spec.as_mut().unwrap();
        spec.init_containers = Some(vec![container(Some("2"), Some("100Mi")), container(Some("100m"), None)]);
        spec.overhead = Some([("cpu".to_string(), Quantity("250m".into()))].into());
        let r = pod_requests(&p, false);
        assert_eq!(r.milli_cpu, 2250);
        assert_eq!(r.memory, 1 << 30);
    }

    #[test]
    fn sidecar_init_containers_add_to_the_app_containers() {
        let mut p = pod("p", Some("500m"), None);
        let mut sidecar = container(Some("200m"), None);
        sidecar.restart_policy = Some("Always".into());
        p.spec.as_mut().unwrap().init_containers = Some(vec![sidecar, container(Some("600m"), None)]);
        // app 500m + sidecar 200m = 700m; init 600m + sidecar 200m = 800m
        assert_eq!(pod_requests(&p, false).milli_cpu, 800);
    }

    #[test]
    fn non_zero_requests_use_scoring_defaults() {
        let p = pod("p", None, None);
        let r = pod_requests(&p, true);
        assert_eq!((r.milli_cpu, r.memory), (DEFAULT_MILLI_CPU_REQUEST, DEFAULT_MEMORY_REQUEST));
        assert_eq!(pod_requests(&p, false).milli_cpu, 0);
    }

    #[test]
    fn node_info_adds_and_removes_pods() {
        let mut n = node("n", "4", "8Gi", &[]);
        assert_eq!(n.allocatable.milli_cpu, 4000);
        assert_eq!(n.allocatable.allowed_pod_number, 110);
        n.add_pod(info(pod("a", Some("1"), Some("1Gi"))));
        n.add_pod(info(pod("b", Some("500m"), None)));
        assert_eq!(n.requested.milli_cpu, 1500);
        assert_eq!(n.requested.allowed_pod_number, 2);
        let labelled = info(with_labels(pod("l", None, None), &[("app", "web")]));
        n.add_pod(labelled.clone());
        assert_eq!(n.count_label("default", "app", "web"), 1);
        n.remove_pod(&labelled.uid);
        assert_eq!(n.count_label("default", "app", "web"), 0);
        assert!(n.remove_pod("uid-a"));
        assert!(!n.remove_pod("uid-a"));
        assert_eq!(n.requested.milli_cpu, 500);
        assert_eq!(n.requested.memory, 0);
    }

    #[test]
    fn image_names_are_normalized() {
        assert_eq!(normalize_image("nginx"), "nginx:latest");
        assert_eq!(normalize_image("nginx:1.25"), "nginx:1.25");
        assert_eq!(normalize_image("localhost:5000/app"), "localhost:5000/app:latest");
    }
}
