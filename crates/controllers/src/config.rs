//! Controller manager settings and the `--controllers` list.

use rkube_api::leader::LeaderElection;

/// Every controller this crate implements: its upstream name (`--controllers`) and the
/// aliases upstream also accepts.
pub const CONTROLLERS: &[(&str, &[&str])] = &[
    ("replicaset-controller", &["replicaset"]),
    ("deployment-controller", &["deployment"]),
    ("garbage-collector-controller", &["garbagecollector", "garbage-collector"]),
    ("serviceaccount-controller", &["serviceaccount"]),
    ("root-ca-certificate-publisher-controller", &["root-ca-cert-publisher", "root-ca-certificate-publisher"]),
    ("endpoints-controller", &["endpoint", "endpoints"]),
    ("endpointslice-controller", &["endpointslice"]),
    ("job-controller", &["job"]),
    ("cronjob-controller", &["cronjob"]),
    ("ttl-after-finished-controller", &["ttl-after-finished", "ttlafterfinished"]),
    ("daemonset-controller", &["daemonset"]),
    ("statefulset-controller", &["statefulset"]),
    ("persistentvolume-binder-controller", &["persistentvolume-binder"]),
    ("local-path-provisioner", &["local-path", "local-storage"]),
    ("namespace-controller", &["namespace"]),
    ("node-lifecycle-controller", &["nodelifecycle", "node-lifecycle"]),
    ("node-ipam-controller", &["nodeipam", "node-ipam"]),
    ("pod-garbage-collector-controller", &["podgc", "pod-garbage-collector"]),
    ("disruption-controller", &["disruption"]),
    ("resourcequota-controller", &["resourcequota"]),
    ("horizontal-pod-autoscaler-controller", &["horizontalpodautoscaling"]),
];

/// Controller manager settings.
#[derive(Debug, Clone)]
pub struct Config {
    /// Canonical names of the controllers to run (see [`parse_controllers`]).
    pub controllers: Vec<&'static str>,
    pub leader_election: LeaderElection,
    /// Identity written into the lease (`<hostname>_<uuid>` upstream).
    pub identity: String,
    /// The cluster CA certificate (PEM) published as `kube-root-ca.crt`; without it the
    /// root-ca-certificate-publisher does not run.
    pub root_ca_pem: Option<String>,
    /// Concurrent syncs per controller (upstream `--concurrent-*-syncs`, default 5).
    pub workers: usize,
    /// Concurrent garbage collector workers (upstream `--concurrent-gc-syncs`, default 20).
    pub gc_workers: usize,
    /// Job controller settings (pod failure back-off).
    pub job: crate::job::JobConfig,
    /// Where the local-path provisioner puts volumes, and this machine's node.
    pub local_path: crate::localpath::LocalPathConfig,
    /// How long a node may go without renewing its Lease or Ready heartbeat before it is
    /// marked Unknown (upstream `--node-monitor-grace-period`, default 40 s).
    pub node_monitor_grace_period: std::time::Duration,
    /// The pod range node IPAM gives each node a /`node_cidr_mask_size` of (upstream
    /// `--cluster-cidr`, rkube's default 10.42.0.0/16).
    pub cluster_cidr: (std::net::Ipv4Addr, u8),
    /// Prefix length of each node's podCIDR (upstream `--node-cidr-mask-size`, default 24).
    pub node_cidr_mask_size: u8,
    /// Terminated pods kept before the pod GC deletes the oldest (upstream
    /// `--terminated-pod-gc-threshold`, default 12500; 0 disables that part).
    pub terminated_pod_gc_threshold: usize,
    /// How often the pod GC sweeps (upstream's fixed 20 s) and how long a pod's node must be
    /// missing before the pod is an orphan (upstream's 40 s quarantine); shortened in tests.
    pub pod_gc_period: std::time::Duration,
    pub pod_gc_quarantine: std::time::Duration,
}

impl Default for Config {
    /// Every controller, leader election on `kube-system/kube-controller-manager`.
    fn default() -> Self {
        Config {
            controllers: CONTROLLERS.iter().map(|(name, _)| *name).collect(),
            leader_election: LeaderElection::for_lease("kube-controller-manager"),
            identity: format!("rkube-controller-manager_{}", uuid::Uuid::new_v4()),
            root_ca_pem: None,
            workers: 5,
            gc_workers: 20,
            job: Default::default(),
            local_path: Default::default(),
            node_monitor_grace_period: std::time::Duration::from_secs(40),
            cluster_cidr: (std::net::Ipv4Addr::new(10, 42, 0, 0), 16),
            node_cidr_mask_size: 24,
            terminated_pod_gc_threshold: 12500,
            pod_gc_period: std::time::Duration::from_secs(20),
            pod_gc_quarantine: std::time::Duration::from_secs(40),
        }
    }
}

impl Config {
    /// Whether the controller with this canonical name runs.
    pub fn enabled(&self, name: &str) -> bool {
        self.controllers.contains(&name)
    }
}

fn canonical(name: &str) -> Option<&'static str> {
    CONTROLLERS.iter().find(|(n, aliases)| *n == name || aliases.contains(&name)).map(|(n, _)| *n)
}

/// Parses upstream's `--controllers` list: `*` enables every controller that is on by
/// default, `foo` enables foo, `-foo` disables foo (names or aliases); returns canonical
/// names in table order, or an error naming the unknown controller.
pub fn parse_controllers(list: &str) -> Result<Vec<&'static str>, String> {
    let mut star = false;
    let mut on = Vec::new();
    let mut off = Vec::new();
    for item in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        if item == "*" {
            star = true;
            continue;
        }
        let (disable, name) = match item.strip_prefix('-') {
            Some(n) => (true, n),
            None => (false, item),
        };
        let Some(c) = canonical(name) else {
            let known: Vec<&str> = CONTROLLERS.iter().map(|(n, _)| *n).collect();
            return Err(format!("{name:?} is not in the list of known controllers: {}", known.join(", ")));
        };
        if disable { off.push(c) } else { on.push(c) }
    }
    Ok(CONTROLLERS
        .iter()
        .map(|(n, _)| *n)
        .filter(|n| !off.contains(n) && (star || on.contains(n)))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn controllers_list_follows_upstream_syntax() {
        let all = parse_controllers("*").unwrap();
        assert_eq!(all.len(), CONTROLLERS.len());
        let some = parse_controllers("*,-deployment,-garbage-collector-controller").unwrap();
        assert!(!some.contains(&"deployment-controller") && !some.contains(&"garbage-collector-controller"));
        assert!(some.contains(&"replicaset-controller"));
        assert_eq!(parse_controllers("replicaset,endpoint").unwrap(), ["replicaset-controller", "endpoints-controller"]);
        assert!(parse_controllers("*,-nope").unwrap_err().contains("nope"));
    }
}
