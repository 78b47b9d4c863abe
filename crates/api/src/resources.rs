//! The table of served resources.
//!
//! Names, short names, categories and subresources match what kube-apiserver v1.33 lists
//! in discovery (`kubectl api-resources`).

/// Whether objects of a resource live in a namespace.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    Namespaced,
    Cluster,
}

/// One served resource at one group-version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResourceInfo {
    /// API group; "" is the legacy core group.
    pub group: &'static str,
    pub version: &'static str,
    pub kind: &'static str,
    /// The URL segment: `pods`.
    pub plural: &'static str,
    pub singular: &'static str,
    pub scope: Scope,
    pub short_names: &'static [&'static str],
    pub categories: &'static [&'static str],
    /// Subresources served besides the main resource: `status`, `scale`.
    pub subresources: &'static [&'static str],
    /// The storage prefix segment, `/registry/<storage>/...`. Several group-versions of one
    /// resource share it (autoscaling/v1 and v2 horizontalpodautoscalers).
    pub storage: &'static str,
    /// The group-version the object is stored in, when it differs from this entry's
    /// (objects are converted on read and write).
    pub storage_version: Option<(&'static str, &'static str)>,
}

impl ResourceInfo {
    /// `v1` for the core group, `apps/v1` otherwise.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.to_owned()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    pub fn namespaced(&self) -> bool {
        self.scope == Scope::Namespaced
    }

    /// The `<group>/<version>` or `<version>` path prefix: `/api/v1` or `/apis/apps/v1`.
    pub fn path_prefix(&self) -> String {
        if self.group.is_empty() {
            format!("/api/{}", self.version)
        } else {
            format!("/apis/{}/{}", self.group, self.version)
        }
    }

    /// Whether a subresource is a "connect" one (`pods/exec`, `pods/log`, `nodes/proxy`):
    /// served by proxying to a kubelet, not by storing anything.
    pub fn is_connect_subresource(name: &str) -> bool {
        CONNECT_SUBRESOURCES.contains(&name)
    }

    pub fn has_subresource(&self, name: &str) -> bool {
        self.subresources.contains(&name)
    }

    /// The store key prefix of the whole resource, ending with `/`.
    pub fn storage_prefix(&self) -> String {
        format!("/registry/{}/", self.storage)
    }

    /// The store key of one object.
    pub fn storage_key(&self, namespace: Option<&str>, name: &str) -> String {
        match namespace {
            Some(ns) if self.namespaced() => format!("/registry/{}/{ns}/{name}", self.storage),
            _ => format!("/registry/{}/{name}", self.storage),
        }
    }
}

use Scope::{Cluster, Namespaced};

const NONE: &[&str] = &[];
/// Subresources the API server answers by proxying to the pod's (or node's) kubelet.
pub const CONNECT_SUBRESOURCES: &[&str] = &["log", "exec", "attach", "portforward", "proxy"];
const ALL: &[&str] = &["all"];
const STATUS: &[&str] = &["status"];
const STATUS_SCALE: &[&str] = &["status", "scale"];

#[allow(clippy::too_many_arguments)] // a table row: one argument per column reads best
const fn r(
    group: &'static str,
    version: &'static str,
    kind: &'static str,
    plural: &'static str,
    singular: &'static str,
    scope: Scope,
    short_names: &'static [&'static str],
    categories: &'static [&'static str],
    subresources: &'static [&'static str],
) -> ResourceInfo {
    ResourceInfo {
        group,
        version,
        kind,
        plural,
        singular,
        scope,
        short_names,
        categories,
        subresources,
        storage: plural,
        storage_version: None,
    }
}

/// Every resource the API server serves, in discovery order.
pub static RESOURCES: &[ResourceInfo] = &[
    // core/v1
    r("", "v1", "ConfigMap", "configmaps", "configmap", Namespaced, &["cm"], NONE, NONE),
    r("", "v1", "Endpoints", "endpoints", "endpoints", Namespaced, &["ep"], NONE, NONE),
    r("", "v1", "Event", "events", "event", Namespaced, &["ev"], NONE, NONE),
    r("", "v1", "LimitRange", "limitranges", "limitrange", Namespaced, &["limits"], NONE, NONE),
    r("", "v1", "Namespace", "namespaces", "namespace", Cluster, &["ns"], NONE, &["status", "finalize"]),
    r("", "v1", "Node", "nodes", "node", Cluster, &["no"], NONE, &["status", "proxy"]),
    r("", "v1", "PersistentVolumeClaim", "persistentvolumeclaims", "persistentvolumeclaim",
        Namespaced, &["pvc"], NONE, STATUS),
    r("", "v1", "PersistentVolume", "persistentvolumes", "persistentvolume", Cluster, &["pv"],
        NONE, STATUS),
    r("", "v1", "Pod", "pods", "pod", Namespaced, &["po"], ALL,
        &["status", "binding", "eviction", "log", "exec", "attach", "portforward"]),
    r("", "v1", "PodTemplate", "podtemplates", "podtemplate", Namespaced, NONE, NONE, NONE),
    r("", "v1", "ReplicationController", "replicationcontrollers", "replicationcontroller",
        Namespaced, &["rc"], ALL, STATUS_SCALE),
    r("", "v1", "ResourceQuota", "resourcequotas", "resourcequota", Namespaced, &["quota"],
        NONE, STATUS),
    r("", "v1", "Secret", "secrets", "secret", Namespaced, NONE, NONE, NONE),
    r("", "v1", "ServiceAccount", "serviceaccounts", "serviceaccount", Namespaced, &["sa"], NONE,
        &["token"]),
    r("", "v1", "Service", "services", "service", Namespaced, &["svc"], ALL, STATUS),
    // apiextensions.k8s.io/v1
    r("apiextensions.k8s.io", "v1", "CustomResourceDefinition", "customresourcedefinitions",
        "customresourcedefinition", Cluster, &["crd", "crds"], NONE, STATUS),
    // apps/v1
    r("apps", "v1", "ControllerRevision", "controllerrevisions", "controllerrevision", Namespaced,
        NONE, NONE, NONE),
    r("apps", "v1", "DaemonSet", "daemonsets", "daemonset", Namespaced, &["ds"], ALL, STATUS),
    r("apps", "v1", "Deployment", "deployments", "deployment", Namespaced, &["deploy"], ALL,
        STATUS_SCALE),
    r("apps", "v1", "ReplicaSet", "replicasets", "replicaset", Namespaced, &["rs"], ALL,
        STATUS_SCALE),
    r("apps", "v1", "StatefulSet", "statefulsets", "statefulset", Namespaced, &["sts"], ALL,
        STATUS_SCALE),
    // autoscaling: v2 is the storage version, v1 is converted
    r("autoscaling", "v2", "HorizontalPodAutoscaler", "horizontalpodautoscalers",
        "horizontalpodautoscaler", Namespaced, &["hpa"], ALL, STATUS),
    ResourceInfo {
        storage_version: Some(("autoscaling", "v2")),
        ..r("autoscaling", "v1", "HorizontalPodAutoscaler", "horizontalpodautoscalers",
            "horizontalpodautoscaler", Namespaced, &["hpa"], ALL, STATUS)
    },
    // batch/v1
    r("batch", "v1", "CronJob", "cronjobs", "cronjob", Namespaced, &["cj"], ALL, STATUS),
    r("batch", "v1", "Job", "jobs", "job", Namespaced, NONE, ALL, STATUS),
    // certificates.k8s.io/v1
    r("certificates.k8s.io", "v1", "CertificateSigningRequest", "certificatesigningrequests",
        "certificatesigningrequest", Cluster, &["csr"], NONE, &["status", "approval"]),
    // coordination.k8s.io/v1
    r("coordination.k8s.io", "v1", "Lease", "leases", "lease", Namespaced, NONE, NONE, NONE),
    // discovery.k8s.io/v1
    r("discovery.k8s.io", "v1", "EndpointSlice", "endpointslices", "endpointslice", Namespaced,
        NONE, NONE, NONE),
    // events.k8s.io/v1: the same objects as core/v1 events, stored in the core form
    ResourceInfo {
        storage_version: Some(("", "v1")),
        ..r("events.k8s.io", "v1", "Event", "events", "event", Namespaced, &["ev"], NONE, NONE)
    },
    // networking.k8s.io/v1
    r("networking.k8s.io", "v1", "IngressClass", "ingressclasses", "ingressclass", Cluster, NONE,
        NONE, NONE),
    r("networking.k8s.io", "v1", "Ingress", "ingresses", "ingress", Namespaced, &["ing"], NONE,
        STATUS),
    r("networking.k8s.io", "v1", "NetworkPolicy", "networkpolicies", "networkpolicy", Namespaced,
        &["netpol"], NONE, NONE),
    // policy/v1
    r("policy", "v1", "PodDisruptionBudget", "poddisruptionbudgets", "poddisruptionbudget",
        Namespaced, &["pdb"], NONE, STATUS),
    // rbac.authorization.k8s.io/v1
    r("rbac.authorization.k8s.io", "v1", "ClusterRoleBinding", "clusterrolebindings",
        "clusterrolebinding", Cluster, NONE, NONE, NONE),
    r("rbac.authorization.k8s.io", "v1", "ClusterRole", "clusterroles", "clusterrole", Cluster,
        NONE, NONE, NONE),
    r("rbac.authorization.k8s.io", "v1", "RoleBinding", "rolebindings", "rolebinding", Namespaced,
        NONE, NONE, NONE),
    r("rbac.authorization.k8s.io", "v1", "Role", "roles", "role", Namespaced, NONE, NONE, NONE),
    // scheduling.k8s.io/v1
    r("scheduling.k8s.io", "v1", "PriorityClass", "priorityclasses", "priorityclass", Cluster,
        &["pc"], NONE, NONE),
    // storage.k8s.io/v1
    r("storage.k8s.io", "v1", "CSIDriver", "csidrivers", "csidriver", Cluster, NONE, NONE, NONE),
    r("storage.k8s.io", "v1", "CSINode", "csinodes", "csinode", Cluster, NONE, NONE, NONE),
    r("storage.k8s.io", "v1", "StorageClass", "storageclasses", "storageclass", Cluster, &["sc"],
        NONE, NONE),
    r("storage.k8s.io", "v1", "VolumeAttachment", "volumeattachments", "volumeattachment",
        Cluster, NONE, NONE, STATUS),
];

/// The served group-versions in discovery order: the core `v1` first, then groups in the
/// order of [`RESOURCES`]; within a group the preferred (first listed) version first.
pub fn group_versions() -> Vec<(&'static str, &'static str)> {
    let mut out: Vec<(&str, &str)> = Vec::new();
    for r in RESOURCES {
        if !out.contains(&(r.group, r.version)) {
            out.push((r.group, r.version));
        }
    }
    out
}

/// The resources of one group-version.
pub fn resources_of(group: &str, version: &str) -> impl Iterator<Item = &'static ResourceInfo> {
    let (group, version) = (group.to_owned(), version.to_owned());
    RESOURCES.iter().filter(move |r| r.group == group && r.version == version)
}

/// Looks up a resource by group, version and plural.
pub fn find(group: &str, version: &str, plural: &str) -> Option<&'static ResourceInfo> {
    RESOURCES.iter().find(|r| r.group == group && r.version == version && r.plural == plural)
}

/// Looks up the preferred version of a kind in a group.
pub fn find_kind(group: &str, kind: &str) -> Option<&'static ResourceInfo> {
    RESOURCES.iter().find(|r| r.group == group && r.kind == kind)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_resource_is_unique_per_group_version() {
        for (i, a) in RESOURCES.iter().enumerate() {
            for b in &RESOURCES[i + 1..] {
                assert!(
                    !(a.group == b.group && a.version == b.version && a.plural == b.plural),
                    "{}/{} {} listed twice",
                    a.group,
                    a.version,
                    a.plural
                );
            }
        }
    }

    #[test]
    fn storage_keys_follow_the_seed_layout() {
        let pods = find("", "v1", "pods").expect("pods are served");
        assert_eq!(pods.storage_key(Some("default"), "nginx"), "/registry/pods/default/nginx");
        let nodes = find("", "v1", "nodes").expect("nodes are served");
        assert_eq!(nodes.storage_key(None, "n1"), "/registry/nodes/n1");
    }

    #[test]
    fn core_group_comes_first_in_discovery_order() {
        assert_eq!(group_versions()[0], ("", "v1"));
        assert!(group_versions().contains(&("autoscaling", "v1")));
    }
}
