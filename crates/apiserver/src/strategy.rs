//! Per-resource behaviour the generic registry consults: which kinds track a generation,
//! what create resets, validation, and the small per-kind preparations upstream's
//! strategies make (pod phase and QoS class, namespace phase and finalizers).

use rkube_api::ResourceInfo;
use serde_json::Value;

use crate::status::Cause;

/// Kinds whose `metadata.generation` upstream sets on create and bumps on spec changes.
pub fn tracks_generation(info: &ResourceInfo) -> bool {
    matches!(
        (info.group, info.kind),
        ("apps", _)
            | ("batch", _)
            | ("", "ReplicationController")
            | ("discovery.k8s.io", "EndpointSlice")
            | ("networking.k8s.io", _)
            | ("policy", "PodDisruptionBudget")
            | ("scheduling.k8s.io", "PriorityClass")
            | ("apiextensions.k8s.io", "CustomResourceDefinition")
    ) && info.kind != "ControllerRevision"
}

/// Drops a client-supplied `status` on create, as each strategy's PrepareForCreate does;
/// defaulting then fills in the initial status upstream writes (pod phase Pending and QoS
/// class, namespace phase Active and its `kubernetes` finalizer, ...).
pub fn prepare_for_create(info: &ResourceInfo, obj: &mut Value) {
    if !info.has_subresource("status") || info.kind == "Node" {
        return;
    }
    if let Some(m) = obj.as_object_mut() {
        m.remove("status");
    }
}

/// Validates `obj` (defaulted) as upstream does for the resource, against the stored `old`
/// object on update; every problem found, as `Invalid` causes.
pub fn validate(info: &ResourceInfo, obj: &Value, old: Option<&Value>) -> Vec<Cause> {
    rkube_api::validation::validate(info, obj, old)
        .into_iter()
        .map(|e| Cause { reason: e.reason(), message: e.message(), field: e.field })
        .collect()
}
