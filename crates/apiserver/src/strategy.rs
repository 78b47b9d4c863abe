//! Per-resource behaviour the generic registry consults: which kinds track a generation,
//! what create resets, name rules, and the small per-kind preparations upstream's
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

const SUBDOMAIN_MSG: &str = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";
const LABEL_MSG: &str = "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')";
const DNS1035_MSG: &str = "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')";

fn is_label(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= 63
        && b.iter().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
        && b[0] != b'-'
        && b[b.len() - 1] != b'-'
}

pub fn is_subdomain(s: &str) -> bool {
    s.len() <= 253 && s.split('.').all(is_label)
}

/// Validates `obj` (defaulted) as upstream does for the resource, against the stored `old`
/// object on update; every problem found, as `Invalid` causes.
pub fn validate(info: &ResourceInfo, obj: &Value, old: Option<&Value>) -> Vec<Cause> {
    rkube_api::validation::validate(info, obj, old)
        .into_iter()
        .map(|e| Cause { reason: e.reason(), message: e.message(), field: e.field })
        .collect()
}

/// Validates an object name the way upstream does for the resource; every problem found.
pub fn validate_name(info: &ResourceInfo, name: &str, field: &str) -> Vec<Cause> {
    let mut causes = Vec::new();
    match (info.group, info.kind) {
        ("", "Namespace") => {
            if !is_label(name) {
                causes.push(Cause::invalid(field, name, LABEL_MSG));
            }
        }
        ("", "Service") => {
            if !(is_label(name) && name.as_bytes()[0].is_ascii_lowercase()) {
                causes.push(Cause::invalid(field, name, DNS1035_MSG));
            }
        }
        ("rbac.authorization.k8s.io", _) => {
            if name == "." || name == ".." {
                causes.push(Cause::invalid(field, name, &format!("may not be '{name}'")));
            }
            for bad in ["/", "%"] {
                if name.contains(bad) {
                    causes.push(Cause::invalid(field, name, &format!("may not contain '{bad}'")));
                }
            }
        }
        _ => {
            if !is_subdomain(name) {
                let msg = if name.len() > 253 { "must be no more than 253 characters" } else { SUBDOMAIN_MSG };
                causes.push(Cause::invalid(field, name, msg));
            }
        }
    }
    causes
}

#[cfg(test)]
mod tests {
    use super::*;
    use rkube_api::resources::find;

    #[test]
    fn names_follow_the_resource_rules() {
        let pods = find("", "v1", "pods").unwrap();
        assert!(validate_name(pods, "web-1.a", "metadata.name").is_empty());
        assert_eq!(validate_name(pods, "Bad_Name", "metadata.name").len(), 1);
        let svc = find("", "v1", "services").unwrap();
        assert_eq!(validate_name(svc, "1web", "metadata.name").len(), 1);
        let ns = find("", "v1", "namespaces").unwrap();
        assert_eq!(validate_name(ns, "a.b", "metadata.name").len(), 1);
        let roles = find("rbac.authorization.k8s.io", "v1", "clusterroles").unwrap();
        assert!(validate_name(roles, "system:controller:x", "metadata.name").is_empty());
    }
}
