//! Node registration and heartbeats: the `Node` object (capacity, allocatable, addresses,
//! nodeInfo, conditions) and its `kube-node-lease` Lease, as upstream's kubelet
//! (pkg/kubelet/kubelet_node_status.go, pkg/kubelet/nodelease) writes them.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::Path;
use std::time::Duration;

use anyhow::Context;
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::api::core::v1::{
    DaemonEndpoint, Namespace, Node, NodeAddress, NodeCondition, NodeDaemonEndpoints, NodeSpec, NodeStatus,
    NodeSystemInfo,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta, Time};
use kube::api::{Api, Patch, PatchParams, PostParams};
use tokio_util::sync::CancellationToken;

use crate::cri::Cri;
use crate::eviction::Pressure;
use crate::pods::events::Recorder;

/// Namespace of node leases.
pub const LEASE_NAMESPACE: &str = "kube-node-lease";
/// `nodeLeaseDurationSeconds` upstream.
pub const LEASE_DURATION_SECS: i32 = 40;
/// How often the lease is renewed (upstream: a quarter of the duration, 10 s).
pub const LEASE_RENEW_INTERVAL: Duration = Duration::from_secs(10);
/// How often node status is posted (upstream `nodeStatusUpdateFrequency`).
pub const STATUS_INTERVAL: Duration = Duration::from_secs(10);
/// Pods per node (upstream `maxPods` default).
pub const MAX_PODS: u32 = 110;
/// Upstream's default hard eviction threshold `memory.available<100Mi`, taken from allocatable.
const EVICTION_MEMORY_BYTES: u64 = 100 * 1024 * 1024;

/// Facts about this machine that go into the Node object.
#[derive(Debug, Clone, PartialEq)]
pub struct MachineInfo {
    pub cpus: u32,
    pub memory_bytes: u64,
    pub ephemeral_storage_bytes: u64,
    pub kernel_version: String,
    pub os_image: String,
    pub machine_id: String,
    pub system_uuid: String,
    pub boot_id: String,
    pub architecture: String,
}

impl MachineInfo {
    /// Reads /proc, /etc/os-release and statvfs of `data_dir`.
    pub fn read(data_dir: &Path) -> MachineInfo {
        let read = |p: &str| std::fs::read_to_string(p).map(|s| s.trim().to_owned()).unwrap_or_default();
        let meminfo = read("/proc/meminfo");
        let memory_kib = meminfo
            .lines()
            .find_map(|l| l.strip_prefix("MemTotal:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .unwrap_or(0);
        let os_release = read("/etc/os-release");
        MachineInfo {
            cpus: std::thread::available_parallelism().map(|n| n.get() as u32).unwrap_or(1),
            memory_bytes: memory_kib * 1024,
            ephemeral_storage_bytes: fs_capacity(data_dir),
            kernel_version: read("/proc/sys/kernel/osrelease"),
            os_image: pretty_name(&os_release),
            machine_id: read("/etc/machine-id"),
            system_uuid: read("/sys/class/dmi/id/product_uuid"),
            boot_id: read("/proc/sys/kernel/random/boot_id"),
            architecture: go_arch(std::env::consts::ARCH).to_owned(),
        }
    }

    /// Capacity as the kubelet reports it.
    pub fn capacity(&self) -> BTreeMap<String, Quantity> {
        resources(self.cpus as u64 * 1000, self.memory_bytes, self.ephemeral_storage_bytes)
    }

    /// Allocatable: capacity less upstream's default hard-eviction thresholds
    /// (memory.available<100Mi, nodefs.available<10%); nothing reserved.
    pub fn allocatable(&self) -> BTreeMap<String, Quantity> {
        let (cpu, memory, storage) = self.allocatable_amounts();
        resources(cpu, memory, storage)
    }

    /// Allocatable (cpu in millicores, memory bytes, ephemeral storage bytes).
    pub fn allocatable_amounts(&self) -> (u64, u64, u64) {
        let memory = self.memory_bytes.saturating_sub(EVICTION_MEMORY_BYTES);
        let storage = self.ephemeral_storage_bytes - self.ephemeral_storage_bytes / 10;
        (self.cpus as u64 * 1000, memory, storage)
    }
}

fn resources(cpu_milli: u64, memory: u64, storage: u64) -> BTreeMap<String, Quantity> {
    let cpu = if cpu_milli.is_multiple_of(1000) { (cpu_milli / 1000).to_string() } else { format!("{cpu_milli}m") };
    let memory = if memory.is_multiple_of(1024) { format!("{}Ki", memory / 1024) } else { memory.to_string() };
    [("cpu", cpu), ("memory", memory), ("pods", MAX_PODS.to_string()), ("ephemeral-storage", storage.to_string())]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), Quantity(v)))
        .collect()
}

/// Bytes of the filesystem holding `path` (0 when it cannot be read).
fn fs_capacity(path: &Path) -> u64 {
    let Ok(c) = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()) else { return 0 };
    // SAFETY: statvfs(3) writes into a zeroed struct we own, reading a NUL-terminated path.
    unsafe {
        let mut st: libc::statvfs = std::mem::zeroed();
        if libc::statvfs(c.as_ptr(), &mut st) != 0 {
            return 0;
        }
        st.f_blocks as u64 * st.f_frsize as u64
    }
}

/// `PRETTY_NAME` of an os-release file.
fn pretty_name(os_release: &str) -> String {
    os_release
        .lines()
        .find_map(|l| l.strip_prefix("PRETTY_NAME="))
        .map(|v| v.trim_matches('"').to_owned())
        .unwrap_or_else(|| "Linux".into())
}

/// Go's GOARCH name for a Rust target arch.
fn go_arch(arch: &str) -> &str {
    match arch {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        other => other,
    }
}

/// The host name as the kubelet's default node name (lower case, as upstream).
pub fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname").map(|s| s.trim().to_lowercase()).unwrap_or_else(|_| "localhost".into())
}

/// Inputs of the Node object beyond the machine's facts.
#[derive(Debug, Clone)]
pub struct NodeFacts {
    pub name: String,
    pub node_ip: IpAddr,
    pub pod_cidr: String,
    pub kubelet_port: u16,
    pub kubelet_version: String,
    pub runtime_version: String,
    pub machine: MachineInfo,
}

/// One node condition as upstream's setters write it.
fn condition(type_: &str, status: &str, reason: &str, message: &str, now: &Time) -> NodeCondition {
    NodeCondition {
        type_: type_.into(),
        status: status.into(),
        reason: Some(reason.into()),
        message: Some(message.into()),
        last_heartbeat_time: Some(now.clone()),
        last_transition_time: Some(now.clone()),
    }
}

/// The node's conditions; `runtime_problem` is the CRI's "not ready" message, if any, and
/// `pressure` what the eviction thresholds say (upstream's setters in
/// pkg/kubelet/nodestatus/setters.go word them).
pub fn conditions(runtime_problem: Option<&str>, pressure: Pressure, now: &Time) -> Vec<NodeCondition> {
    let ready = match runtime_problem {
        None => condition("Ready", "True", "KubeletReady", "kubelet is posting ready status", now),
        Some(problem) => condition("Ready", "False", "KubeletNotReady", problem, now),
    };
    let memory = match pressure.memory {
        false => condition("MemoryPressure", "False", "KubeletHasSufficientMemory", "kubelet has sufficient memory available", now),
        true => condition("MemoryPressure", "True", "KubeletHasInsufficientMemory", "kubelet has insufficient memory available", now),
    };
    let disk = match pressure.disk {
        false => condition("DiskPressure", "False", "KubeletHasNoDiskPressure", "kubelet has no disk pressure", now),
        true => condition("DiskPressure", "True", "KubeletHasDiskPressure", "kubelet has disk pressure", now),
    };
    let pid = match pressure.pid {
        false => condition("PIDPressure", "False", "KubeletHasSufficientPID", "kubelet has sufficient PID available", now),
        true => condition("PIDPressure", "True", "KubeletHasInsufficientPID", "kubelet has insufficient PID available", now),
    };
    vec![memory, disk, pid, ready]
}

/// The node events upstream records when a pressure condition changes
/// (`NodeHasDiskPressure`, `NodeHasNoDiskPressure`, ...): (reason, message) per change.
pub fn pressure_events(node: &str, old: &[NodeCondition], new: &[NodeCondition]) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for (type_, on, off) in [
        ("MemoryPressure", "NodeHasInsufficientMemory", "NodeHasSufficientMemory"),
        ("DiskPressure", "NodeHasDiskPressure", "NodeHasNoDiskPressure"),
        ("PIDPressure", "NodeHasInsufficientPID", "NodeHasSufficientPID"),
    ] {
        let status = |list: &[NodeCondition]| list.iter().find(|c| c.type_ == type_).map(|c| c.status.clone());
        let (Some(before), Some(after)) = (status(old), status(new)) else { continue };
        if before != after {
            let reason = if after == "True" { on } else { off };
            out.push((reason.to_owned(), format!("Node {node} status is now: {reason}")));
        }
    }
    out
}

/// Keeps each condition's lastTransitionTime when its status did not change.
pub fn keep_transition_times(new: &mut [NodeCondition], old: &[NodeCondition]) {
    for c in new.iter_mut() {
        if let Some(o) = old.iter().find(|o| o.type_ == c.type_ && o.status == c.status) {
            c.last_transition_time = o.last_transition_time.clone();
        }
    }
}

/// The Node object this kubelet registers.
pub fn node_object(facts: &NodeFacts, now: &Time) -> Node {
    let labels = BTreeMap::from([
        ("kubernetes.io/hostname".to_owned(), facts.name.clone()),
        ("kubernetes.io/os".to_owned(), "linux".to_owned()),
        ("kubernetes.io/arch".to_owned(), facts.machine.architecture.clone()),
        ("beta.kubernetes.io/os".to_owned(), "linux".to_owned()),
        ("beta.kubernetes.io/arch".to_owned(), facts.machine.architecture.clone()),
    ]);
    let annotations = BTreeMap::from([
        ("node.alpha.kubernetes.io/ttl".to_owned(), "0".to_owned()),
        ("volumes.kubernetes.io/controller-managed-attach-detach".to_owned(), "true".to_owned()),
    ]);
    Node {
        metadata: ObjectMeta {
            name: Some(facts.name.clone()),
            labels: Some(labels),
            annotations: Some(annotations),
            ..Default::default()
        },
        // Without a podCIDR of its own the node leaves it to the controller manager's node IPAM.
        spec: Some(NodeSpec {
            pod_cidr: (!facts.pod_cidr.is_empty()).then(|| facts.pod_cidr.clone()),
            pod_cidrs: (!facts.pod_cidr.is_empty()).then(|| vec![facts.pod_cidr.clone()]),
            ..Default::default()
        }),
        status: Some(node_status(facts, None, Pressure::default(), now)),
    }
}

/// The status part of the Node object.
pub fn node_status(facts: &NodeFacts, runtime_problem: Option<&str>, pressure: Pressure, now: &Time) -> NodeStatus {
    let m = &facts.machine;
    NodeStatus {
        capacity: Some(m.capacity()),
        allocatable: Some(m.allocatable()),
        conditions: Some(conditions(runtime_problem, pressure, now)),
        addresses: Some(vec![
            NodeAddress { type_: "InternalIP".into(), address: facts.node_ip.to_string() },
            NodeAddress { type_: "Hostname".into(), address: facts.name.clone() },
        ]),
        daemon_endpoints: Some(NodeDaemonEndpoints {
            kubelet_endpoint: Some(DaemonEndpoint { port: facts.kubelet_port as i32 }),
        }),
        node_info: Some(NodeSystemInfo {
            architecture: m.architecture.clone(),
            boot_id: m.boot_id.clone(),
            container_runtime_version: facts.runtime_version.clone(),
            kernel_version: m.kernel_version.clone(),
            kube_proxy_version: String::new(),
            kubelet_version: facts.kubelet_version.clone(),
            machine_id: m.machine_id.clone(),
            operating_system: "linux".into(),
            os_image: m.os_image.clone(),
            system_uuid: m.system_uuid.clone(),
            swap: None,
        }),
        ..Default::default()
    }
}

fn is_conflict(e: &kube::Error) -> bool {
    matches!(e, kube::Error::Api(s) if s.code == 409)
}

/// Creates the Node (or refreshes labels and an empty podCIDR of an existing one), posts its
/// status and makes sure the lease namespace exists. Returns the node's podCIDR.
pub async fn register(client: &kube::Client, facts: &NodeFacts) -> anyhow::Result<String> {
    let nodes: Api<Node> = Api::all(client.clone());
    let now = Time(crate::clock::now());
    let node = node_object(facts, &now);
    let name = facts.name.as_str();
    let existing = match nodes.create(&PostParams::default(), &node).await {
        Ok(created) => created,
        Err(e) if is_conflict(&e) => {
            let current = nodes.get(name).await.with_context(|| format!("reading node {name}"))?;
            let mut body = serde_json::json!({"metadata": {"labels": node.metadata.labels, "annotations": node.metadata.annotations}});
            if current.spec.as_ref().and_then(|s| s.pod_cidr.as_deref()).unwrap_or("").is_empty() && !facts.pod_cidr.is_empty() {
                body["spec"] = serde_json::json!({"podCIDR": facts.pod_cidr, "podCIDRs": [facts.pod_cidr]});
            }
            nodes.patch(name, &PatchParams::default(), &Patch::Merge(&body)).await.with_context(|| format!("updating node {name}"))?
        }
        Err(e) => return Err(e).with_context(|| format!("registering node {name}")),
    };
    let status = serde_json::json!({"status": node.status});
    nodes.patch_status(name, &PatchParams::default(), &Patch::Merge(&status)).await.with_context(|| format!("posting status of node {name}"))?;
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let ns = Namespace { metadata: ObjectMeta { name: Some(LEASE_NAMESPACE.into()), ..Default::default() }, ..Default::default() };
    if let Err(e) = namespaces.create(&PostParams::default(), &ns).await {
        if !is_conflict(&e) {
            return Err(e).context("creating namespace kube-node-lease");
        }
    }
    if let Some(cidr) = existing.spec.and_then(|s| s.pod_cidr).filter(|c| !c.is_empty()) {
        return Ok(cidr);
    }
    if !facts.pod_cidr.is_empty() {
        return Ok(facts.pod_cidr.clone());
    }
    wait_for_pod_cidr(&nodes, name).await
}

/// Waits until node IPAM (the controller manager) has given the node a podCIDR, as a kubelet
/// without `--pod-cidr` does before it can configure pod networking.
async fn wait_for_pod_cidr(nodes: &Api<Node>, name: &str) -> anyhow::Result<String> {
    tracing::info!(node = name, "waiting for the controller manager to assign a podCIDR");
    loop {
        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
        match nodes.get(name).await {
            Ok(node) => {
                if let Some(cidr) = node.spec.and_then(|s| s.pod_cidr).filter(|c| !c.is_empty()) {
                    return Ok(cidr);
                }
            }
            Err(e) => tracing::debug!(node = name, error = %e, "reading the node failed; retrying"),
        }
    }
}

/// The lease object for `node` renewed at `now`.
pub fn lease(node: &str, now: jiff::Timestamp) -> Lease {
    Lease {
        metadata: ObjectMeta { name: Some(node.into()), namespace: Some(LEASE_NAMESPACE.into()), ..Default::default() },
        spec: Some(LeaseSpec {
            holder_identity: Some(node.into()),
            lease_duration_seconds: Some(LEASE_DURATION_SECS),
            renew_time: Some(MicroTime(now)),
            ..Default::default()
        }),
    }
}

/// Renews the lease every 10 s and posts node status every 10 s (and at once when the
/// pressure conditions change) until `shutdown`.
pub async fn heartbeat(
    client: kube::Client,
    cri: Cri,
    facts: NodeFacts,
    mut pressure: tokio::sync::watch::Receiver<Pressure>,
    recorder: Recorder,
    shutdown: CancellationToken,
) {
    let leases: Api<Lease> = Api::namespaced(client.clone(), LEASE_NAMESPACE);
    let nodes: Api<Node> = Api::all(client);
    let mut tick = tokio::time::interval(LEASE_RENEW_INTERVAL.min(STATUS_INTERVAL));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut watching = true;
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tick.tick() => renew_lease(&leases, &facts.name).await,
            changed = pressure.changed(), if watching => watching = changed.is_ok(),
        }
        let current = *pressure.borrow_and_update();
        post_status(&nodes, &cri, &facts, current, &recorder).await;
    }
}

async fn renew_lease(leases: &Api<Lease>, name: &str) {
    let now = crate::clock::now();
    let body = serde_json::json!({"spec": {"renewTime": MicroTime(now), "holderIdentity": name, "leaseDurationSeconds": LEASE_DURATION_SECS}});
    let result = match leases.patch(name, &PatchParams::default(), &Patch::Merge(&body)).await {
        Err(kube::Error::Api(s)) if s.code == 404 => leases.create(&PostParams::default(), &lease(name, now)).await.map(|_| ()),
        other => other.map(|_| ()),
    };
    if let Err(e) = result {
        tracing::warn!(node = %name, error = %e, "node lease not renewed");
    }
}

/// The runtime's "not ready" message as upstream words it, or None when CRI says ready.
async fn runtime_problem(cri: &Cri) -> Option<String> {
    let mut runtime = cri.runtime.clone();
    let request = crate::cri::api::StatusRequest { verbose: false };
    let status = match tokio::time::timeout(Duration::from_secs(5), runtime.status(request)).await {
        Ok(Ok(r)) => r.into_inner().status,
        Ok(Err(e)) => return Some(format!("container runtime is down: {}", e.message())),
        Err(_) => return Some("container runtime is down: status timed out".into()),
    };
    let conditions = status.map(|s| s.conditions).unwrap_or_default();
    let bad: Vec<String> = conditions
        .iter()
        .filter(|c| !c.status)
        .map(|c| format!("{}=false reason:{} message:{}", c.r#type, c.reason, c.message))
        .collect();
    let network = conditions.iter().any(|c| c.r#type == "NetworkReady" && !c.status);
    match bad.is_empty() {
        true => None,
        false if network => Some(format!("container runtime network not ready: {}", bad.join(", "))),
        false => Some(format!("container runtime not ready: {}", bad.join(", "))),
    }
}

async fn post_status(nodes: &Api<Node>, cri: &Cri, facts: &NodeFacts, pressure: Pressure, recorder: &Recorder) {
    let now = Time(crate::clock::now());
    let problem = runtime_problem(cri).await;
    let mut status = node_status(facts, problem.as_deref(), pressure, &now);
    let current = nodes.get_status(&facts.name).await.ok();
    if let Some(current) = &current {
        let old = current.status.as_ref().and_then(|s| s.conditions.clone()).unwrap_or_default();
        if let Some(new) = status.conditions.as_mut() {
            keep_transition_times(new, &old);
            for (reason, message) in pressure_events(&facts.name, &old, new) {
                recorder.node_event(&facts.name, "Normal", &reason, &message);
            }
        }
    }
    let body = serde_json::json!({"status": status});
    let posted = match nodes.patch_status(&facts.name, &PatchParams::default(), &Patch::Merge(&body)).await {
        Ok(node) => Some(node),
        Err(e) => {
            tracing::warn!(node = %facts.name, error = %e, "node status not posted");
            current
        }
    };
    // The pressure taints follow the conditions (see crate::eviction); a conflicting write
    // (resourceVersion changed) is retried at the next heartbeat.
    if let Some(current) = posted {
        let taints = current.spec.as_ref().and_then(|s| s.taints.clone()).unwrap_or_default();
        if let Some(new) = crate::eviction::taints(&taints, pressure) {
            let body = serde_json::json!({
                "metadata": {"resourceVersion": current.metadata.resource_version},
                "spec": {"taints": new},
            });
            if let Err(e) = nodes.patch(&facts.name, &PatchParams::default(), &Patch::Merge(&body)).await {
                tracing::debug!(node = %facts.name, error = %e, "pressure taints not updated");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts() -> NodeFacts {
        NodeFacts {
            name: "n1".into(),
            node_ip: "192.0.2.10".parse().unwrap(),
            pod_cidr: "10.42.0.0/24".into(),
            kubelet_port: 10250,
            kubelet_version: "v1.33.0+rkube".into(),
            runtime_version: "containerd://1.6.20".into(),
            machine: MachineInfo {
                cpus: 2,
                memory_bytes: 4 * 1024 * 1024 * 1024,
                ephemeral_storage_bytes: 1000,
                kernel_version: "6.1.0".into(),
                os_image: "Debian GNU/Linux 12 (bookworm)".into(),
                machine_id: "m".into(),
                system_uuid: "u".into(),
                boot_id: "b".into(),
                architecture: "amd64".into(),
            },
        }
    }

    #[test]
    fn node_reports_capacity_allocatable_and_ready() {
        let node = node_object(&facts(), &Time(jiff::Timestamp::UNIX_EPOCH));
        let status = node.status.unwrap();
        let cap = status.capacity.unwrap();
        assert_eq!(cap["cpu"].0, "2");
        assert_eq!(cap["memory"].0, "4194304Ki");
        assert_eq!(cap["pods"].0, "110");
        let alloc = status.allocatable.unwrap();
        assert_eq!(alloc["memory"].0, "4091904Ki");
        assert_eq!(alloc["ephemeral-storage"].0, "900");
        let ready = status.conditions.unwrap().into_iter().find(|c| c.type_ == "Ready").unwrap();
        assert_eq!((ready.status.as_str(), ready.reason.as_deref()), ("True", Some("KubeletReady")));
        assert_eq!(node.spec.unwrap().pod_cidr.as_deref(), Some("10.42.0.0/24"));
        assert_eq!(status.daemon_endpoints.unwrap().kubelet_endpoint.unwrap().port, 10250);
        assert_eq!(status.node_info.unwrap().container_runtime_version, "containerd://1.6.20");
    }

    #[test]
    fn runtime_problem_makes_the_node_not_ready_and_transitions_are_kept() {
        let t0 = Time(jiff::Timestamp::UNIX_EPOCH);
        let t1 = Time(jiff::Timestamp::from_second(100).unwrap());
        let old = conditions(None, Pressure::default(), &t0);
        let mut new = conditions(Some("container runtime network not ready: x"), Pressure::default(), &t1);
        keep_transition_times(&mut new, &old);
        let ready = new.iter().find(|c| c.type_ == "Ready").unwrap();
        assert_eq!((ready.status.as_str(), ready.reason.as_deref()), ("False", Some("KubeletNotReady")));
        assert_eq!(ready.last_transition_time, Some(t1.clone()));
        let memory = new.iter().find(|c| c.type_ == "MemoryPressure").unwrap();
        assert_eq!(memory.last_transition_time, Some(t0));
        assert_eq!(memory.last_heartbeat_time, Some(t1));
    }

    #[test]
    fn pressure_sets_upstreams_reasons_and_changes_are_events() {
        let t = Time(jiff::Timestamp::UNIX_EPOCH);
        let calm = conditions(None, Pressure::default(), &t);
        let disk = conditions(None, Pressure { disk: true, ..Default::default() }, &t);
        let find = |list: &[NodeCondition], type_: &str| {
            let c = list.iter().find(|c| c.type_ == type_).unwrap().clone();
            (c.status, c.reason.unwrap(), c.message.unwrap())
        };
        assert_eq!(find(&disk, "DiskPressure"), ("True".into(), "KubeletHasDiskPressure".into(), "kubelet has disk pressure".into()));
        let all = conditions(None, Pressure { memory: true, disk: true, pid: true }, &t);
        assert_eq!(find(&all, "MemoryPressure").1, "KubeletHasInsufficientMemory");
        assert_eq!(find(&all, "PIDPressure").1, "KubeletHasInsufficientPID");
        assert_eq!(find(&calm, "MemoryPressure").1, "KubeletHasSufficientMemory");
        assert_eq!(
            pressure_events("n1", &calm, &disk),
            vec![("NodeHasDiskPressure".to_owned(), "Node n1 status is now: NodeHasDiskPressure".to_owned())]
        );
        assert_eq!(pressure_events("n1", &disk, &calm)[0].0, "NodeHasNoDiskPressure");
        assert!(pressure_events("n1", &calm, &calm).is_empty());
    }

    #[test]
    fn machine_facts_are_read_from_this_host() {
        let m = MachineInfo::read(Path::new("/"));
        assert!(m.cpus >= 1);
        assert!(m.memory_bytes > 0);
        assert!(m.ephemeral_storage_bytes > 0);
        assert!(!m.kernel_version.is_empty());
        assert_eq!(pretty_name("NAME=x\nPRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\n"), "Debian GNU/Linux 12 (bookworm)");
    }
}
