//! Cells of the service, node, configuration, RBAC, storage and event printers, as
//! `printService`, `printNode`, `printEvent`, ... in kubernetes
//! `pkg/printers/internalversion`.

use std::collections::BTreeSet;

use jiff::Timestamp;
use serde_json::{json, Value};

use super::format::{
    access_modes, array_at, bool_at, format_label_selector, format_labels, human_duration, int_at,
    int_or_string, list_with_more, map_len_at, opt_str_at, since, str_at, timestamp_at, NONE,
    UNKNOWN, UNSET,
};
use super::{age_of, name_of};

/// `loadBalancerStatusStringer` with `wide` (the API server always prints wide): the
/// sorted, de-duplicated ingress IPs or hostnames.
fn load_balancer_ingress(ingress: &[Value]) -> String {
    let set: BTreeSet<&str> = ingress
        .iter()
        .filter_map(|i| match str_at(i, "/ip") {
            "" => opt_str_at(i, "/hostname").filter(|h| !h.is_empty()),
            ip => Some(ip),
        })
        .collect();
    set.into_iter().collect::<Vec<_>>().join(",")
}

/// `getServiceExternalIP`.
fn service_external_ip(svc: &Value) -> String {
    let external: Vec<&str> = array_at(svc, "/spec/externalIPs")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    match str_at(svc, "/spec/type") {
        "ClusterIP" | "NodePort" => {
            if external.is_empty() {
                NONE.to_owned()
            } else {
                external.join(",")
            }
        }
        "LoadBalancer" => {
            let lb = load_balancer_ingress(array_at(svc, "/status/loadBalancer/ingress"));
            if !external.is_empty() {
                let mut all: Vec<&str> = if lb.is_empty() {
                    vec![]
                } else {
                    lb.split(',').collect()
                };
                all.extend(external);
                all.join(",")
            } else if lb.is_empty() {
                "<pending>".to_owned()
            } else {
                lb
            }
        }
        "ExternalName" => str_at(svc, "/spec/externalName").to_owned(),
        _ => UNKNOWN.to_owned(),
    }
}

/// `makePortString`: `80/TCP`, `80:30080/TCP`, comma-joined.
fn service_ports(ports: &[Value]) -> String {
    ports
        .iter()
        .map(|p| {
            let (port, proto, node_port) = (
                int_at(p, "/port"),
                str_at(p, "/protocol"),
                int_at(p, "/nodePort"),
            );
            if node_port > 0 {
                format!("{port}:{node_port}/{proto}")
            } else {
                format!("{port}/{proto}")
            }
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// `printService`: Name, Type, Cluster-IP, External-IP, Port(s), Age, Selector.
pub(super) fn service(svc: &Value, now: Timestamp) -> Vec<Value> {
    // v1 `clusterIP` becomes the first `clusterIPs` entry in conversion
    let cluster_ip = array_at(svc, "/spec/clusterIPs")
        .first()
        .and_then(Value::as_str)
        .or_else(|| opt_str_at(svc, "/spec/clusterIP").filter(|ip| !ip.is_empty()))
        .unwrap_or(NONE);
    let ports = match service_ports(array_at(svc, "/spec/ports")) {
        p if p.is_empty() => NONE.to_owned(),
        p => p,
    };
    vec![
        name_of(svc),
        json!(str_at(svc, "/spec/type")),
        json!(cluster_ip),
        json!(service_external_ip(svc)),
        json!(ports),
        age_of(svc, now),
        json!(format_labels(svc.pointer("/spec/selector"))),
    ]
}

/// `printIngress`: Name, Class, Hosts, Address, Ports, Age.
pub(super) fn ingress(obj: &Value, now: Timestamp) -> Vec<Value> {
    let rules = array_at(obj, "/spec/rules");
    // formatHosts: the first three hosts, then how many rules are left
    let mut hosts: Vec<&str> = Vec::new();
    let mut more = false;
    for rule in rules {
        if hosts.len() == 3 {
            more = true;
        }
        let host = str_at(rule, "/host");
        if !more && !host.is_empty() {
            hosts.push(host);
        }
    }
    let hosts = if hosts.is_empty() {
        "*".to_owned()
    } else if more {
        format!("{} + {} more...", hosts.join(","), rules.len() - 3)
    } else {
        hosts.join(",")
    };
    let ports = if array_at(obj, "/spec/tls").is_empty() {
        "80"
    } else {
        "80, 443"
    };
    vec![
        name_of(obj),
        json!(opt_str_at(obj, "/spec/ingressClassName").unwrap_or(NONE)),
        json!(hosts),
        json!(load_balancer_ingress(array_at(
            obj,
            "/status/loadBalancer/ingress"
        ))),
        json!(ports),
        age_of(obj, now),
    ]
}

/// `printIngressClass`: Name, Controller, Parameters (`Kind.group/name`), Age.
pub(super) fn ingress_class(obj: &Value, now: Timestamp) -> Vec<Value> {
    let parameters = match obj.pointer("/spec/parameters").filter(|p| p.is_object()) {
        None => NONE.to_owned(),
        Some(p) => {
            let mut s = str_at(p, "/kind").to_owned();
            if let Some(group) = opt_str_at(p, "/apiGroup") {
                s = format!("{s}.{group}");
            }
            format!("{s}/{}", str_at(p, "/name"))
        }
    };
    vec![
        name_of(obj),
        json!(str_at(obj, "/spec/controller")),
        json!(parameters),
        age_of(obj, now),
    ]
}

/// `printEndpoints` with `formatEndpoints`: up to three `ip:port`, then ` + N more...`.
pub(super) fn endpoints(obj: &Value, now: Timestamp) -> Vec<Value> {
    let subsets = array_at(obj, "/subsets");
    let text = if subsets.is_empty() {
        NONE.to_owned()
    } else {
        let mut list: Vec<String> = Vec::new();
        let mut count = 0;
        for ss in subsets {
            let addresses = array_at(ss, "/addresses");
            let ports = array_at(ss, "/ports");
            if ports.is_empty() {
                // headless services may have no ports
                count += addresses.len();
                list.extend(addresses.iter().map(|a| str_at(a, "/ip").to_owned()));
                continue;
            }
            for port in ports {
                count += addresses.len();
                for a in addresses {
                    let ip = str_at(a, "/ip");
                    let port = int_at(port, "/port");
                    list.push(if ip.contains(':') {
                        format!("[{ip}]:{port}")
                    } else {
                        format!("{ip}:{port}")
                    });
                }
            }
        }
        if list.len() > 3 {
            format!("{} + {} more...", list[..3].join(","), count - 3)
        } else {
            list.join(",")
        }
    };
    vec![name_of(obj), json!(text), age_of(obj, now)]
}

/// `printEndpointSlice`: Name, AddressType, Ports, Endpoints, Age.
pub(super) fn endpoint_slice(obj: &Value, now: Timestamp) -> Vec<Value> {
    let ports: Vec<String> = array_at(obj, "/ports")
        .iter()
        .map(|p| match p.get("port").and_then(Value::as_i64) {
            Some(n) => n.to_string(),
            None => opt_str_at(p, "/name").unwrap_or("*").to_owned(),
        })
        .collect();
    let addresses: Vec<String> = array_at(obj, "/endpoints")
        .iter()
        .flat_map(|e| array_at(e, "/addresses").iter())
        .map(|a| a.as_str().unwrap_or("").to_owned())
        .collect();
    vec![
        name_of(obj),
        json!(str_at(obj, "/addressType")),
        json!(list_with_more(&ports, 3)),
        json!(list_with_more(&addresses, 3)),
        age_of(obj, now),
    ]
}

/// `printNetworkPolicy`: Name, Pod-Selector, Age.
pub(super) fn network_policy(obj: &Value, now: Timestamp) -> Vec<Value> {
    vec![
        name_of(obj),
        json!(format_label_selector(obj.pointer("/spec/podSelector"))),
        age_of(obj, now),
    ]
}

/// `findNodeRoles`: `node-role.kubernetes.io/<role>` keys and `kubernetes.io/role` values,
/// sorted and de-duplicated.
fn node_roles(node: &Value) -> String {
    let mut roles = BTreeSet::new();
    if let Some(labels) = node.pointer("/metadata/labels").and_then(Value::as_object) {
        for (k, v) in labels {
            if let Some(role) = k.strip_prefix("node-role.kubernetes.io/") {
                if !role.is_empty() {
                    roles.insert(role.to_owned());
                }
            } else if k == "kubernetes.io/role" {
                if let Some(v) = v.as_str().filter(|v| !v.is_empty()) {
                    roles.insert(v.to_owned());
                }
            }
        }
    }
    if roles.is_empty() {
        NONE.to_owned()
    } else {
        roles.into_iter().collect::<Vec<_>>().join(",")
    }
}

/// `printNode`: Name, Status, Roles, Age, Version, Internal-IP, External-IP, OS-Image,
/// Kernel-Version, Container-Runtime.
pub(super) fn node(node: &Value, now: Timestamp) -> Vec<Value> {
    // the last Ready condition wins, as upstream's map does
    let ready = array_at(node, "/status/conditions")
        .iter()
        .rfind(|c| str_at(c, "/type") == "Ready");
    let mut status = vec![match ready {
        Some(c) if str_at(c, "/status") == "True" => "Ready",
        Some(_) => "NotReady",
        None => "Unknown",
    }];
    if bool_at(node, "/spec/unschedulable") {
        status.push("SchedulingDisabled");
    }
    let address = |type_: &str| {
        array_at(node, "/status/addresses")
            .iter()
            .find(|a| str_at(a, "/type") == type_)
            .map_or(NONE, |a| str_at(a, "/address"))
    };
    let info = |field: &str| match str_at(node, &format!("/status/nodeInfo/{field}")) {
        "" => UNKNOWN,
        v => v,
    };
    vec![
        name_of(node),
        json!(status.join(",")),
        json!(node_roles(node)),
        age_of(node, now),
        json!(str_at(node, "/status/nodeInfo/kubeletVersion")),
        json!(address("InternalIP")),
        json!(address("ExternalIP")),
        json!(info("osImage")),
        json!(info("kernelVersion")),
        json!(info("containerRuntimeVersion")),
    ]
}

/// The events.k8s.io/v1 to core/v1 event field mapping upstream's conversion applies
/// before printing.
pub(super) fn core_event(ev: &Value) -> Value {
    let mut out = json!({
        "metadata": ev.get("metadata").cloned().unwrap_or(Value::Null),
        "involvedObject": ev.get("regarding").cloned().unwrap_or(Value::Null),
        "message": ev.get("note").cloned().unwrap_or(Value::Null),
        "source": ev.get("deprecatedSource").cloned().unwrap_or(Value::Null),
        "firstTimestamp": ev.get("deprecatedFirstTimestamp").cloned().unwrap_or(Value::Null),
        "lastTimestamp": ev.get("deprecatedLastTimestamp").cloned().unwrap_or(Value::Null),
        "count": ev.get("deprecatedCount").cloned().unwrap_or(Value::Null),
    });
    for key in [
        "type",
        "reason",
        "eventTime",
        "series",
        "reportingController",
        "reportingInstance",
    ] {
        out[key] = ev.get(key).cloned().unwrap_or(Value::Null);
    }
    out
}

/// `printEvent`: Last Seen, Type, Reason, Object, Subobject, Source, Message, First Seen,
/// Count, Name.
pub(super) fn event(ev: &Value, now: Timestamp) -> Vec<Value> {
    let first = match timestamp_at(ev, "/firstTimestamp") {
        Some(ts) => since(Some(ts), now),
        None => since(timestamp_at(ev, "/eventTime"), now),
    };
    let mut last = match timestamp_at(ev, "/lastTimestamp") {
        Some(ts) => since(Some(ts), now),
        None => first.clone(),
    };
    let mut count = int_at(ev, "/count");
    if ev.get("series").is_some_and(Value::is_object) {
        last = since(timestamp_at(ev, "/series/lastObservedTime"), now);
        count = int_at(ev, "/series/count");
    } else if count == 0 {
        // singleton events of the new API carry no count
        count = 1;
    }
    let kind = str_at(ev, "/involvedObject/kind").to_lowercase();
    let target = match str_at(ev, "/involvedObject/name") {
        "" => kind,
        name => format!("{kind}/{name}"),
    };
    let component = non_empty(
        str_at(ev, "/source/component"),
        str_at(ev, "/reportingController"),
    );
    let host = non_empty(str_at(ev, "/source/host"), str_at(ev, "/reportingInstance"));
    let source = if host.is_empty() {
        component.to_owned()
    } else {
        format!("{component}, {host}")
    };
    vec![
        json!(last),
        json!(str_at(ev, "/type")),
        json!(str_at(ev, "/reason")),
        json!(target),
        json!(str_at(ev, "/involvedObject/fieldPath")),
        json!(source),
        json!(str_at(ev, "/message").trim()),
        json!(first),
        json!(count),
        name_of(ev),
    ]
}

fn non_empty<'a>(a: &'a str, b: &'a str) -> &'a str {
    if a.is_empty() {
        b
    } else {
        a
    }
}

/// `printNamespace`: Name, Status, Age.
pub(super) fn namespace(obj: &Value, now: Timestamp) -> Vec<Value> {
    vec![
        name_of(obj),
        json!(str_at(obj, "/status/phase")),
        age_of(obj, now),
    ]
}

/// `printSecret`: Name, Type, Data (key count; `stringData` merges into `data`), Age.
pub(super) fn secret(obj: &Value, now: Timestamp) -> Vec<Value> {
    let mut keys: BTreeSet<&str> = BTreeSet::new();
    for field in ["data", "stringData"] {
        if let Some(map) = obj.get(field).and_then(Value::as_object) {
            keys.extend(map.keys().map(String::as_str));
        }
    }
    vec![
        name_of(obj),
        json!(str_at(obj, "/type")),
        json!(keys.len()),
        age_of(obj, now),
    ]
}

/// `printServiceAccount`: Name, Secrets (count), Age.
pub(super) fn service_account(obj: &Value, now: Timestamp) -> Vec<Value> {
    vec![
        name_of(obj),
        json!(array_at(obj, "/secrets").len()),
        age_of(obj, now),
    ]
}

/// `printConfigMap`: Name, Data (keys of `data` plus `binaryData`), Age.
pub(super) fn config_map(obj: &Value, now: Timestamp) -> Vec<Value> {
    let count = map_len_at(obj, "/data") + map_len_at(obj, "/binaryData");
    vec![name_of(obj), json!(count), age_of(obj, now)]
}

/// A `resource.Quantity` in a map; Go's zero quantity prints as `0`.
fn quantity_in(obj: &Value, map: &str, key: &str) -> String {
    obj.pointer(map)
        .and_then(|m| m.get(key))
        .map_or("0".to_owned(), int_or_string)
}

fn deleting(obj: &Value) -> bool {
    obj.pointer("/metadata/deletionTimestamp")
        .is_some_and(|d| !d.is_null())
}

fn opt_or<'a>(obj: &'a Value, pointer: &str, default: &'a str) -> &'a str {
    opt_str_at(obj, pointer).unwrap_or(default)
}

/// `printPersistentVolume`: Name, Capacity, Access Modes, Reclaim Policy, Status, Claim,
/// StorageClass, VolumeAttributesClass, Reason, Age, VolumeMode.
pub(super) fn persistent_volume(pv: &Value, now: Timestamp) -> Vec<Value> {
    let claim = match pv.pointer("/spec/claimRef").filter(|c| c.is_object()) {
        Some(c) => format!("{}/{}", str_at(c, "/namespace"), str_at(c, "/name")),
        None => String::new(),
    };
    let phase = if deleting(pv) {
        "Terminating"
    } else {
        str_at(pv, "/status/phase")
    };
    // helper.GetPersistentVolumeClass: the beta annotation wins over the field
    let class = opt_str_at(
        pv,
        "/metadata/annotations/volume.beta.kubernetes.io~1storage-class",
    )
    .unwrap_or(str_at(pv, "/spec/storageClassName"));
    vec![
        name_of(pv),
        json!(quantity_in(pv, "/spec/capacity", "storage")),
        json!(access_modes(array_at(pv, "/spec/accessModes"))),
        json!(str_at(pv, "/spec/persistentVolumeReclaimPolicy")),
        json!(phase),
        json!(claim),
        json!(class),
        json!(opt_or(pv, "/spec/volumeAttributesClassName", UNSET)),
        json!(str_at(pv, "/status/reason")),
        age_of(pv, now),
        json!(opt_or(pv, "/spec/volumeMode", UNSET)),
    ]
}

/// `printPersistentVolumeClaim`: Name, Status, Volume, Capacity, Access Modes, StorageClass,
/// VolumeAttributesClass, Age, VolumeMode. Capacity and modes only once bound.
pub(super) fn persistent_volume_claim(pvc: &Value, now: Timestamp) -> Vec<Value> {
    let phase = if deleting(pvc) {
        "Terminating"
    } else {
        str_at(pvc, "/status/phase")
    };
    let volume = str_at(pvc, "/spec/volumeName");
    let (capacity, modes) = if volume.is_empty() {
        (String::new(), String::new())
    } else {
        (
            quantity_in(pvc, "/status/capacity", "storage"),
            access_modes(array_at(pvc, "/status/accessModes")),
        )
    };
    // helper.GetPersistentVolumeClaimClass: the beta annotation wins over the field
    let class = opt_str_at(
        pvc,
        "/metadata/annotations/volume.beta.kubernetes.io~1storage-class",
    )
    .unwrap_or(str_at(pvc, "/spec/storageClassName"));
    vec![
        name_of(pvc),
        json!(phase),
        json!(volume),
        json!(capacity),
        json!(modes),
        json!(class),
        json!(opt_or(pvc, "/spec/volumeAttributesClassName", UNSET)),
        age_of(pvc, now),
        json!(opt_or(pvc, "/spec/volumeMode", UNSET)),
    ]
}

/// `printRoleBinding` / `printClusterRoleBinding`: Name, Role (`Kind/name`), Age, Users,
/// Groups, ServiceAccounts (`namespace/name`), each `, `-joined.
pub(super) fn role_binding(obj: &Value, now: Timestamp) -> Vec<Value> {
    let role = format!(
        "{}/{}",
        str_at(obj, "/roleRef/kind"),
        str_at(obj, "/roleRef/name")
    );
    let (mut users, mut groups, mut sas) = (Vec::new(), Vec::new(), Vec::new());
    for s in array_at(obj, "/subjects") {
        match str_at(s, "/kind") {
            "User" => users.push(str_at(s, "/name").to_owned()),
            "Group" => groups.push(str_at(s, "/name").to_owned()),
            "ServiceAccount" => sas.push(format!(
                "{}/{}",
                str_at(s, "/namespace"),
                str_at(s, "/name")
            )),
            _ => {}
        }
    }
    vec![
        name_of(obj),
        json!(role),
        age_of(obj, now),
        json!(users.join(", ")),
        json!(groups.join(", ")),
        json!(sas.join(", ")),
    ]
}

/// `printCertificateSigningRequest`: Name, Age, SignerName, Requestor, RequestedDuration,
/// Condition (`extractCSRStatus`).
pub(super) fn certificate_signing_request(csr: &Value, now: Timestamp) -> Vec<Value> {
    let conditions = array_at(csr, "/status/conditions");
    let has = |t: &str| conditions.iter().any(|c| str_at(c, "/type") == t);
    let mut status = if has("Denied") {
        "Denied".to_owned()
    } else if has("Approved") {
        "Approved".to_owned()
    } else {
        "Pending".to_owned()
    };
    if has("Failed") {
        status.push_str(",Failed");
    }
    if !str_at(csr, "/status/certificate").is_empty() {
        status.push_str(",Issued");
    }
    let signer = match str_at(csr, "/spec/signerName") {
        "" => NONE,
        s => s,
    };
    let duration = match csr
        .pointer("/spec/expirationSeconds")
        .and_then(Value::as_i64)
    {
        Some(secs) => human_duration(secs),
        None => NONE.to_owned(),
    };
    vec![
        name_of(csr),
        age_of(csr, now),
        json!(signer),
        json!(str_at(csr, "/spec/username")),
        json!(duration),
        json!(status),
    ]
}

/// `printLease`: Name, Holder, Age.
pub(super) fn lease(obj: &Value, now: Timestamp) -> Vec<Value> {
    vec![
        name_of(obj),
        json!(str_at(obj, "/spec/holderIdentity")),
        age_of(obj, now),
    ]
}

/// `printStorageClass`: Name (` (default)` for the default class), Provisioner,
/// ReclaimPolicy, VolumeBindingMode, AllowVolumeExpansion, Age.
pub(super) fn storage_class(obj: &Value, now: Timestamp) -> Vec<Value> {
    let annotation = |key: &str| {
        obj.pointer("/metadata/annotations")
            .and_then(|a| a.get(key))
            .and_then(Value::as_str)
    };
    let is_default = annotation("storageclass.kubernetes.io/is-default-class") == Some("true")
        || annotation("storageclass.beta.kubernetes.io/is-default-class") == Some("true");
    let mut name = str_at(obj, "/metadata/name").to_owned();
    if is_default {
        name.push_str(" (default)");
    }
    vec![
        json!(name),
        json!(str_at(obj, "/provisioner")),
        json!(opt_or(obj, "/reclaimPolicy", "Delete")),
        json!(opt_or(obj, "/volumeBindingMode", "Immediate")),
        json!(bool_at(obj, "/allowVolumeExpansion")),
        age_of(obj, now),
    ]
}

/// `printResourceQuota`: Name, Request, Limit (`resource: used/hard` sorted by resource;
/// `limits.*` in Limit), Age.
pub(super) fn resource_quota(obj: &Value, now: Timestamp) -> Vec<Value> {
    let mut resources: Vec<&String> = obj
        .pointer("/status/hard")
        .and_then(Value::as_object)
        .map(|m| m.keys().collect())
        .unwrap_or_default();
    resources.sort();
    let (mut request, mut limit) = (Vec::new(), Vec::new());
    for r in resources {
        let text = format!(
            "{r}: {}/{}",
            quantity_in(obj, "/status/used", r),
            quantity_in(obj, "/status/hard", r)
        );
        let pieces: Vec<&str> = r.split('.').collect();
        if pieces.len() > 1 && pieces[0] == "limits" {
            limit.push(text);
        } else {
            request.push(text);
        }
    }
    vec![
        name_of(obj),
        json!(request.join(", ")),
        json!(limit.join(", ")),
        age_of(obj, now),
    ]
}

/// `printPriorityClass`: Name, Value, Global-Default, Age, PreemptionPolicy.
pub(super) fn priority_class(obj: &Value, now: Timestamp) -> Vec<Value> {
    vec![
        name_of(obj),
        json!(int_at(obj, "/value")),
        json!(bool_at(obj, "/globalDefault")),
        age_of(obj, now),
        json!(str_at(obj, "/preemptionPolicy")),
    ]
}

/// `printVolumeAttachment`: Name, Attacher, PV, Node, Attached, Age.
pub(super) fn volume_attachment(obj: &Value, now: Timestamp) -> Vec<Value> {
    vec![
        name_of(obj),
        json!(str_at(obj, "/spec/attacher")),
        json!(str_at(obj, "/spec/source/persistentVolumeName")),
        json!(str_at(obj, "/spec/nodeName")),
        json!(bool_at(obj, "/status/attached")),
        age_of(obj, now),
    ]
}

/// `printCSINode`: Name, Drivers (count), Age.
pub(super) fn csi_node(obj: &Value, now: Timestamp) -> Vec<Value> {
    vec![
        name_of(obj),
        json!(array_at(obj, "/spec/drivers").len()),
        age_of(obj, now),
    ]
}

/// `printCSIDriver`: Name, AttachRequired (default true), PodInfoOnMount, StorageCapacity,
/// TokenRequests (audiences), RequiresRepublish, Modes, Age.
pub(super) fn csi_driver(obj: &Value, now: Timestamp) -> Vec<Value> {
    let flag = |p: &str, default: bool| obj.pointer(p).and_then(Value::as_bool).unwrap_or(default);
    let tokens = match obj.pointer("/spec/tokenRequests").and_then(Value::as_array) {
        Some(list) => list
            .iter()
            .map(|t| str_at(t, "/audience"))
            .collect::<Vec<_>>()
            .join(","),
        None => UNSET.to_owned(),
    };
    let modes: Vec<&str> = array_at(obj, "/spec/volumeLifecycleModes")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    let modes = if modes.is_empty() {
        NONE.to_owned()
    } else {
        modes.join(",")
    };
    vec![
        name_of(obj),
        json!(flag("/spec/attachRequired", true)),
        json!(flag("/spec/podInfoOnMount", false)),
        json!(flag("/spec/storageCapacity", false)),
        json!(tokens),
        json!(flag("/spec/requiresRepublish", false)),
        json!(modes),
        age_of(obj, now),
    ]
}
