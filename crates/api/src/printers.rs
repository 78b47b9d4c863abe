//! Table printing as kube-apiserver does it: the `meta.k8s.io/v1` Table that answers
//! `Accept: application/json;as=Table;v=v1;g=meta.k8s.io`.
//!
//! Columns and cells follow kubernetes `pkg/printers/internalversion/printers.go` of v1.33
//! (its `AddHandlers` and `print*` functions), with the API server's `Wide: true`, so every
//! column, priority 1 included, has a cell. Resources without an upstream printer (roles,
//! cluster roles, limit ranges, custom resource definitions) get upstream's default table
//! (`rest.NewDefaultTableConvertor`): Name and Created At.
//!
//! Where v1.33 differs from the v1.26 recordings in the shared upstream reference, v1.33
//! wins and the column definition says so: jobs gained Status, cron jobs Timezone,
//! persistent volumes and claims VolumeAttributesClass, priority classes PreemptionPolicy,
//! and resource quotas moved Age last.
//!
//! Objects are read as `serde_json::Value` with Go's zero-value rules (an absent field
//! reads as "", 0 or false), so a printer never fails: a malformed object prints
//! placeholders instead.
//!
//! Known gap: quantities (capacity, quota usage) are printed as stored, not re-canonicalised
//! as `resource.Quantity.String()` would.

mod cluster;
mod columns;
mod format;
mod workloads;

use jiff::Timestamp;
use serde::Serialize;
use serde_json::{json, Value};

use crate::resources::ResourceInfo;

/// One entry of a Table's `columnDefinitions`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Column {
    pub name: &'static str,
    /// `string`, `integer`, `boolean` or `date`.
    #[serde(rename = "type")]
    pub type_: &'static str,
    /// `name` for the object-name column, otherwise "".
    pub format: &'static str,
    pub description: &'static str,
    /// 0 for default columns, 1 for the ones kubectl shows only with `-o wide`.
    pub priority: i32,
}

/// The printers upstream registers, by what they print.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Printer {
    Default,
    Pod,
    PodTemplate,
    PodDisruptionBudget,
    ReplicationController,
    ReplicaSet,
    DaemonSet,
    Job,
    CronJob,
    Service,
    Ingress,
    IngressClass,
    StatefulSet,
    Endpoints,
    Node,
    Event,
    Namespace,
    Secret,
    ServiceAccount,
    PersistentVolume,
    PersistentVolumeClaim,
    Deployment,
    HorizontalPodAutoscaler,
    ConfigMap,
    NetworkPolicy,
    RoleBinding,
    ClusterRoleBinding,
    CertificateSigningRequest,
    Lease,
    StorageClass,
    ControllerRevision,
    ResourceQuota,
    PriorityClass,
    VolumeAttachment,
    EndpointSlice,
    CsiNode,
    CsiDriver,
}

fn printer_of(info: &ResourceInfo) -> Printer {
    use Printer::*;
    match (info.group, info.plural) {
        ("", "pods") => Pod,
        ("", "podtemplates") => PodTemplate,
        ("", "replicationcontrollers") => ReplicationController,
        ("", "services") => Service,
        ("", "endpoints") => Endpoints,
        ("", "nodes") => Node,
        ("", "events") | ("events.k8s.io", "events") => Event,
        ("", "namespaces") => Namespace,
        ("", "secrets") => Secret,
        ("", "serviceaccounts") => ServiceAccount,
        ("", "persistentvolumes") => PersistentVolume,
        ("", "persistentvolumeclaims") => PersistentVolumeClaim,
        ("", "configmaps") => ConfigMap,
        ("", "resourcequotas") => ResourceQuota,
        ("policy", "poddisruptionbudgets") => PodDisruptionBudget,
        ("apps", "replicasets") => ReplicaSet,
        ("apps", "daemonsets") => DaemonSet,
        ("apps", "statefulsets") => StatefulSet,
        ("apps", "deployments") => Deployment,
        ("apps", "controllerrevisions") => ControllerRevision,
        ("batch", "jobs") => Job,
        ("batch", "cronjobs") => CronJob,
        ("networking.k8s.io", "ingresses") => Ingress,
        ("networking.k8s.io", "ingressclasses") => IngressClass,
        ("networking.k8s.io", "networkpolicies") => NetworkPolicy,
        ("autoscaling", "horizontalpodautoscalers") => HorizontalPodAutoscaler,
        ("rbac.authorization.k8s.io", "rolebindings") => RoleBinding,
        ("rbac.authorization.k8s.io", "clusterrolebindings") => ClusterRoleBinding,
        ("certificates.k8s.io", "certificatesigningrequests") => CertificateSigningRequest,
        ("coordination.k8s.io", "leases") => Lease,
        ("scheduling.k8s.io", "priorityclasses") => PriorityClass,
        ("storage.k8s.io", "storageclasses") => StorageClass,
        ("storage.k8s.io", "volumeattachments") => VolumeAttachment,
        ("storage.k8s.io", "csinodes") => CsiNode,
        ("storage.k8s.io", "csidrivers") => CsiDriver,
        ("discovery.k8s.io", "endpointslices") => EndpointSlice,
        // roles, clusterroles, limitranges and CRDs have no printer upstream either
        _ => Default,
    }
}

/// The column definitions kube-apiserver sends for a resource.
pub fn columns(info: &ResourceInfo) -> Vec<Column> {
    use columns as c;
    use Printer::*;
    match printer_of(info) {
        Default => c::default_table(),
        Pod => c::pods(),
        PodTemplate => c::podtemplates(),
        PodDisruptionBudget => c::poddisruptionbudgets(),
        ReplicationController => c::replicationcontrollers(),
        ReplicaSet => c::replicasets(),
        DaemonSet => c::daemonsets(),
        Job => c::jobs(),
        CronJob => c::cronjobs(),
        Service => c::services(),
        Ingress => c::ingresses(),
        IngressClass => c::ingressclasses(),
        StatefulSet => c::statefulsets(),
        Endpoints => c::endpoints(),
        Node => c::nodes(),
        Event => c::events(),
        Namespace => c::namespaces(),
        Secret => c::secrets(),
        ServiceAccount => c::serviceaccounts(),
        PersistentVolume => c::persistentvolumes(),
        PersistentVolumeClaim => c::persistentvolumeclaims(),
        Deployment => c::deployments(),
        HorizontalPodAutoscaler => c::horizontalpodautoscalers(),
        ConfigMap => c::configmaps(),
        NetworkPolicy => c::networkpolicies(),
        RoleBinding => c::rolebindings(),
        ClusterRoleBinding => c::clusterrolebindings(),
        CertificateSigningRequest => c::certificatesigningrequests(),
        Lease => c::leases(),
        StorageClass => c::storageclasses(),
        ControllerRevision => c::controllerrevisions(),
        ResourceQuota => c::resourcequotas(),
        PriorityClass => c::priorityclasses(),
        VolumeAttachment => c::volumeattachments(),
        EndpointSlice => c::endpointslices(),
        CsiNode => c::csinodes(),
        CsiDriver => c::csidrivers(),
    }
}

/// The cells of one object's row, one per column of [`columns`], typed as upstream types
/// them (JSON strings, integers and booleans). `now` is the instant ages are measured to.
pub fn cells(info: &ResourceInfo, obj: &Value, now: Timestamp) -> Vec<Value> {
    use Printer::*;
    match printer_of(info) {
        Default => default_cells(obj),
        Pod => workloads::pod(obj, now),
        PodTemplate => workloads::pod_template(obj),
        PodDisruptionBudget => workloads::pod_disruption_budget(obj, now),
        ReplicationController => workloads::replication_controller(obj, now),
        ReplicaSet => workloads::replica_set(obj, now),
        DaemonSet => workloads::daemon_set(obj, now),
        Job => workloads::job(obj, now),
        CronJob => workloads::cron_job(obj, now),
        StatefulSet => workloads::stateful_set(obj, now),
        Deployment => workloads::deployment(obj, now),
        ControllerRevision => workloads::controller_revision(obj, now),
        HorizontalPodAutoscaler => workloads::horizontal_pod_autoscaler(obj, now),
        Service => cluster::service(obj, now),
        Ingress => cluster::ingress(obj, now),
        IngressClass => cluster::ingress_class(obj, now),
        Endpoints => cluster::endpoints(obj, now),
        EndpointSlice => cluster::endpoint_slice(obj, now),
        NetworkPolicy => cluster::network_policy(obj, now),
        Node => cluster::node(obj, now),
        Event if info.group == "events.k8s.io" => cluster::event(&cluster::core_event(obj), now),
        Event => cluster::event(obj, now),
        Namespace => cluster::namespace(obj, now),
        Secret => cluster::secret(obj, now),
        ServiceAccount => cluster::service_account(obj, now),
        ConfigMap => cluster::config_map(obj, now),
        PersistentVolume => cluster::persistent_volume(obj, now),
        PersistentVolumeClaim => cluster::persistent_volume_claim(obj, now),
        RoleBinding | ClusterRoleBinding => cluster::role_binding(obj, now),
        CertificateSigningRequest => cluster::certificate_signing_request(obj, now),
        Lease => cluster::lease(obj, now),
        StorageClass => cluster::storage_class(obj, now),
        ResourceQuota => cluster::resource_quota(obj, now),
        PriorityClass => cluster::priority_class(obj, now),
        VolumeAttachment => cluster::volume_attachment(obj, now),
        CsiNode => cluster::csi_node(obj, now),
        CsiDriver => cluster::csi_driver(obj, now),
    }
}

/// The row `conditions` upstream attaches: a `Completed` condition for pods that
/// succeeded or failed (`podSuccessConditions` / `podFailedConditions`), none otherwise.
pub fn row_conditions(info: &ResourceInfo, obj: &Value) -> Option<Value> {
    if printer_of(info) != Printer::Pod {
        return None;
    }
    let (reason, message) = match format::str_at(obj, "/status/phase") {
        "Succeeded" => ("Succeeded", "The pod has completed successfully."),
        "Failed" => ("Failed", "The pod failed."),
        _ => return None,
    };
    Some(json!([{"type": "Completed", "status": "True", "reason": reason, "message": message}]))
}

/// A whole `meta.k8s.io/v1` Table body for `objs`: `metadata` is empty (the server adds
/// `resourceVersion`, `continue` and `remainingItemCount`) and rows carry `cells` and, for
/// finished pods, `conditions`, but no `object` (the server adds it per `includeObject`).
pub fn table(info: &ResourceInfo, objs: &[Value], now: Timestamp) -> Value {
    let rows: Vec<Value> = objs
        .iter()
        .map(|obj| {
            let mut row = serde_json::Map::new();
            row.insert("cells".into(), Value::Array(cells(info, obj, now)));
            if let Some(conditions) = row_conditions(info, obj) {
                row.insert("conditions".into(), conditions);
            }
            Value::Object(row)
        })
        .collect();
    json!({
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": {},
        "columnDefinitions": columns(info),
        "rows": rows,
    })
}

/// `rest.NewDefaultTableConvertor`: the name and the creation time in RFC 3339 (UTC,
/// seconds); Go's zero time when the object has none.
fn default_cells(obj: &Value) -> Vec<Value> {
    let created = match format::timestamp_at(obj, "/metadata/creationTimestamp") {
        Some(ts) => ts.strftime("%Y-%m-%dT%H:%M:%SZ").to_string(),
        None => "0001-01-01T00:00:00Z".to_owned(),
    };
    vec![json!(format::str_at(obj, "/metadata/name")), json!(created)]
}

/// The object's name and its age, the cells almost every printer has.
fn name_of(obj: &Value) -> Value {
    json!(format::str_at(obj, "/metadata/name"))
}

fn age_of(obj: &Value, now: Timestamp) -> Value {
    json!(format::since(
        format::timestamp_at(obj, "/metadata/creationTimestamp"),
        now
    ))
}

#[cfg(test)]
mod tests;
