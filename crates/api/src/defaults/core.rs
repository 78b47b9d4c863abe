//! core/v1 defaults: `pkg/apis/core/v1/defaults.go`, its generated declarative defaults, and
//! the fields the core registry strategies set on create.
//!
//! The pod-spec defaulter here ([`pod_template`]) is shared by every kind that embeds a pod
//! template (PodTemplate, ReplicationController, the apps and batch workloads).

mod image;
mod pod;
mod service;

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    ConfigMap, Endpoints, Event, LimitRange, LimitRangeItem, Namespace, NamespaceSpec,
    NamespaceStatus, Node, PersistentVolume, PersistentVolumeClaim, PersistentVolumeClaimSpec,
    PersistentVolumeClaimStatus, PersistentVolumeStatus, PodTemplate, ReplicationController,
    ResourceQuota, ResourceQuotaStatus, Secret, ServiceAccount,
};
use k8s_openapi::ByteString;

pub(super) use pod::pod_template;

use super::{or_set, or_set_str, Creating, DefaultsError, Target};

pub(super) fn apply(target: Target<'_>) -> Result<(), DefaultsError> {
    match target.kind {
        "Pod" => target.with(pod::pod),
        "PodTemplate" => target.with(|t: &mut PodTemplate, _| {
            if let Some(template) = t.template.as_mut() {
                pod_template(template);
            }
        }),
        "ReplicationController" => target.with(replication_controller),
        "Service" => target.with(service::service),
        "Namespace" => target.with(namespace),
        "Secret" => target.with(|s: &mut Secret, _| secret(s)),
        "PersistentVolume" => target.with(persistent_volume),
        "PersistentVolumeClaim" => target.with(|pvc: &mut PersistentVolumeClaim, _| {
            persistent_volume_claim(pvc);
        }),
        "Endpoints" => target.with(|e: &mut Endpoints, _| endpoints(e)),
        "LimitRange" => target.with(|lr: &mut LimitRange, _| {
            for item in lr.spec.iter_mut().flat_map(|spec| spec.limits.iter_mut()) {
                limit_range_item(item);
            }
        }),
        "Node" => target.with(|n: &mut Node, _| node(n)),
        "ResourceQuota" => target.with(|rq: &mut ResourceQuota, Creating(creating)| {
            // Go prints the zero ResourceQuotaStatus struct as `status: {}`.
            if creating {
                or_set(&mut rq.status, ResourceQuotaStatus::default());
            }
        }),
        "ConfigMap" => target.decode_only::<ConfigMap>(),
        "ServiceAccount" => target.decode_only::<ServiceAccount>(),
        "Event" => target.decode_only::<Event>(),
        _ => Ok(()),
    }
}

/// SetDefaults_ReplicationController: selector and labels from the template's labels;
/// replicas 1 (declarative default).
fn replication_controller(rc: &mut ReplicationController, _: Creating) {
    let spec = rc.spec.get_or_insert_with(Default::default);
    let template_labels = spec
        .template
        .as_ref()
        .and_then(|t| t.metadata.as_ref())
        .and_then(|m| m.labels.clone());
    if let Some(labels) = template_labels {
        if spec.selector.as_ref().is_none_or(BTreeMap::is_empty) {
            spec.selector = Some(labels.clone());
        }
        if rc.metadata.labels.as_ref().is_none_or(BTreeMap::is_empty) {
            rc.metadata.labels = Some(labels);
        }
    }
    or_set(&mut spec.replicas, 1);
    if let Some(template) = spec.template.as_mut() {
        pod_template(template);
    }
}

/// SetDefaults_Namespace (the `kubernetes.io/metadata.name` label), SetDefaults_NamespaceStatus
/// (phase Active) and, on create, the `kubernetes` finalizer of the namespace strategy.
fn namespace(ns: &mut Namespace, Creating(creating): Creating) {
    if let Some(name) = ns.metadata.name.clone().filter(|n| !n.is_empty()) {
        ns.metadata
            .labels
            .get_or_insert_with(BTreeMap::new)
            .insert("kubernetes.io/metadata.name".to_owned(), name);
    }
    if creating {
        let spec = ns.spec.get_or_insert_with(NamespaceSpec::default);
        let finalizers = spec.finalizers.get_or_insert_with(Vec::new);
        if !finalizers.iter().any(|f| f == "kubernetes") {
            finalizers.push("kubernetes".to_owned());
        }
    }
    let status = ns.status.get_or_insert_with(NamespaceStatus::default);
    or_set_str(&mut status.phase, "Active");
}

/// SetDefaults_Secret (type Opaque) and the v1 → internal conversion that merges `stringData`
/// into `data` (stringData wins) and drops it.
fn secret(s: &mut Secret) {
    or_set_str(&mut s.type_, "Opaque");
    if let Some(string_data) = s.string_data.take() {
        let data = s.data.get_or_insert_with(BTreeMap::new);
        for (key, value) in string_data {
            data.insert(key, ByteString(value.into_bytes()));
        }
    }
}

/// SetDefaults_PersistentVolume and its volume sources.
fn persistent_volume(pv: &mut PersistentVolume, _: Creating) {
    let status = pv
        .status
        .get_or_insert_with(PersistentVolumeStatus::default);
    or_set_str(&mut status.phase, "Pending");
    let spec = pv.spec.get_or_insert_with(Default::default);
    or_set_str(&mut spec.persistent_volume_reclaim_policy, "Retain");
    or_set_str(&mut spec.volume_mode, "Filesystem");
    if let Some(host_path) = spec.host_path.as_mut() {
        or_set(&mut host_path.type_, String::new());
    }
    if let Some(rbd) = spec.rbd.as_mut() {
        or_set_str(&mut rbd.pool, "rbd");
        or_set_str(&mut rbd.user, "admin");
        or_set_str(&mut rbd.keyring, "/etc/ceph/keyring");
    }
    if let Some(iscsi) = spec.iscsi.as_mut() {
        or_set_str(&mut iscsi.iscsi_interface, "default");
    }
    if let Some(disk) = spec.azure_disk.as_mut() {
        pod::azure_disk(disk);
    }
    if let Some(scale_io) = spec.scale_io.as_mut() {
        or_set_str(&mut scale_io.storage_mode, "ThinProvisioned");
        or_set_str(&mut scale_io.fs_type, "xfs");
    }
}

/// SetDefaults_PersistentVolumeClaim (status phase Pending) and its spec.
pub(super) fn persistent_volume_claim(pvc: &mut PersistentVolumeClaim) {
    let status = pvc
        .status
        .get_or_insert_with(PersistentVolumeClaimStatus::default);
    or_set_str(&mut status.phase, "Pending");
    persistent_volume_claim_spec(pvc.spec.get_or_insert_with(Default::default));
}

/// SetDefaults_PersistentVolumeClaimSpec: volumeMode Filesystem.
pub(super) fn persistent_volume_claim_spec(spec: &mut PersistentVolumeClaimSpec) {
    or_set_str(&mut spec.volume_mode, "Filesystem");
}

/// SetDefaults_Endpoints: port protocol TCP.
fn endpoints(e: &mut Endpoints) {
    for subset in e.subsets.iter_mut().flatten() {
        for port in subset.ports.iter_mut().flatten() {
            or_set_str(&mut port.protocol, "TCP");
        }
    }
}

/// SetDefaults_LimitRangeItem: for containers, the default limit falls back to max, the
/// default request to the default limit and then to min.
fn limit_range_item(item: &mut LimitRangeItem) {
    if item.type_ != "Container" {
        return;
    }
    let default = item.default.get_or_insert_with(BTreeMap::new);
    for (key, value) in item.max.iter().flatten() {
        default.entry(key.clone()).or_insert_with(|| value.clone());
    }
    let default = default.clone();
    let default_request = item.default_request.get_or_insert_with(BTreeMap::new);
    for (key, value) in default.iter().chain(item.min.iter().flatten()) {
        default_request
            .entry(key.clone())
            .or_insert_with(|| value.clone());
    }
    // Go omits empty maps; keep the printed object identical.
    if item.default.as_ref().is_some_and(BTreeMap::is_empty) {
        item.default = None;
    }
    if item
        .default_request
        .as_ref()
        .is_some_and(BTreeMap::is_empty)
    {
        item.default_request = None;
    }
}

/// SetDefaults_NodeStatus: allocatable defaults to capacity.
fn node(n: &mut Node) {
    if let Some(status) = n.status.as_mut() {
        if status.allocatable.is_none() && status.capacity.is_some() {
            status.allocatable = status.capacity.clone();
        }
    }
}
