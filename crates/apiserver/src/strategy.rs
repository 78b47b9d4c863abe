//! Per-resource behaviour the generic registry consults: which kinds track a generation,
//! what create resets, name rules, and the small per-kind preparations upstream's
//! strategies make (pod phase and QoS class, namespace phase and finalizers).

use rkube_api::ResourceInfo;
use serde_json::{json, Value};

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

/// Clears or initialises `status` on create, as each strategy's PrepareForCreate does.
pub fn prepare_for_create(info: &ResourceInfo, obj: &mut Value) {
    if !info.has_subresource("status") || info.kind == "Node" {
        return;
    }
    let status = match (info.group, info.kind) {
        ("", "Pod") => json!({"phase": "Pending", "qosClass": qos_class(&obj["spec"])}),
        ("", "Namespace") => json!({"phase": "Active"}),
        ("", "PersistentVolume") | ("", "PersistentVolumeClaim") => json!({"phase": "Pending"}),
        ("", "Service") | ("networking.k8s.io", "Ingress") => json!({"loadBalancer": {}}),
        _ => json!({}),
    };
    obj["status"] = status;
    if info.kind == "Namespace" && info.group.is_empty() {
        let fins = obj["spec"]["finalizers"].as_array().cloned().unwrap_or_default();
        if fins.is_empty() {
            obj["spec"]["finalizers"] = json!(["kubernetes"]);
        }
        let name = obj["metadata"]["name"].as_str().unwrap_or_default().to_owned();
        obj["metadata"]["labels"]["kubernetes.io/metadata.name"] = name.into();
    }
}

/// The pod's QoS class from its containers' requests and limits (upstream's GetPodQOS).
pub fn qos_class(spec: &Value) -> &'static str {
    let mut containers: Vec<&Value> = Vec::new();
    for field in ["containers", "initContainers"] {
        if let Some(list) = spec[field].as_array() {
            containers.extend(list);
        }
    }
    let mut any = false;
    let mut guaranteed = true;
    for c in containers {
        let req = c["resources"]["requests"].as_object();
        let lim = c["resources"]["limits"].as_object();
        let has = |m: Option<&serde_json::Map<String, Value>>, k: &str| m.is_some_and(|m| m.contains_key(k));
        if has(req, "cpu") || has(req, "memory") || has(lim, "cpu") || has(lim, "memory") {
            any = true;
        }
        for r in ["cpu", "memory"] {
            let l = lim.and_then(|m| m.get(r));
            let q = req.and_then(|m| m.get(r)).or(l);
            if l.is_none() || q != l {
                guaranteed = false;
            }
        }
    }
    match (any, guaranteed) {
        (false, _) => "BestEffort",
        (true, true) => "Guaranteed",
        (true, false) => "Burstable",
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

    #[test]
    fn qos_classes() {
        assert_eq!(qos_class(&json!({"containers": [{"name": "a"}]})), "BestEffort");
        let g = json!({"containers": [{"resources": {"limits": {"cpu": "1", "memory": "1Gi"}}}]});
        assert_eq!(qos_class(&g), "Guaranteed");
        let b = json!({"containers": [{"resources": {"requests": {"cpu": "1"}}}]});
        assert_eq!(qos_class(&b), "Burstable");
    }
}
