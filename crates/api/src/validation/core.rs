//! The core group (`pkg/apis/core/validation`): pods, pod templates, replication
//! controllers, services, config maps, secrets, namespaces, nodes and the metadata-only kinds.

use std::collections::HashSet;
use std::net::IpAddr;

use serde_json::Value;

use super::names::{self, go_quote};
use super::pod::{self, port_num_or_name};
use super::{arr_of, int_of, meta, nonnegative, str_of, Errors, FieldError, Path};
use crate::ResourceInfo;

/// upstream's `core.MaxSecretSize`: 1 MiB of data per Secret or ConfigMap.
pub const MAX_SECRET_SIZE: usize = 1024 * 1024;

const SA_NAME_KEY: &str = "kubernetes.io/service-account.name";

pub(super) fn validate(info: &ResourceInfo, new: &Value, old: Option<&Value>) -> Errors {
    let name_fn: names::NameFn = match info.kind {
        "Service" => names::dns1035_name,
        "Namespace" => names::dns_label_name,
        _ => names::dns_subdomain_name,
    };
    let mut errs = meta::object_meta_for(info, new, old, name_fn);
    match info.kind {
        "Pod" => {
            errs.extend(pod::pod_spec_for_pod(new));
            if let Some(old) = old {
                errs.extend(pod::pod_update(new, old));
            }
        }
        "PodTemplate" => errs.extend(pod::pod_template_spec(
            &new["template"],
            &Path::new("template"),
        )),
        "ReplicationController" => errs.extend(replication_controller(new)),
        "Service" => {
            let new = &normalize_cluster_ips(new, old);
            if let Some(old) = old {
                errs.extend(service_update(new, old));
            }
            errs.extend(service(new));
        }
        "ConfigMap" => {
            if let Some(old) = old {
                errs.extend(immutable_data(new, old, &["data", "binaryData"]));
            }
            errs.extend(config_map(new));
        }
        "Secret" => {
            if let Some(old) = old {
                if new["type"] != old["type"] {
                    errs.push(FieldError::immutable(&Path::new("type"), &new["type"]));
                }
                errs.extend(immutable_data(new, old, &["data"]));
            }
            errs.extend(secret(new));
        }
        "Namespace" => {
            for (i, f) in arr_of(&new["spec"], "finalizers").iter().enumerate() {
                let f = f.as_str().unwrap_or_default();
                let p = Path::new("spec").child("finalizers");
                for msg in names::is_qualified_name(f) {
                    errs.push(FieldError::invalid(&p, f, msg));
                }
                if !f.contains('/') && !["kubernetes", "orphan", "foregroundDeletion"].contains(&f)
                {
                    errs.push(FieldError::invalid(
                        &p.index(i),
                        f,
                        "name is neither a standard finalizer name nor is it fully qualified",
                    ));
                }
            }
        }
        _ => {}
    }
    errs
}

/// `ValidateReplicationControllerSpec`.
fn replication_controller(rc: &Value) -> Errors {
    let path = Path::new("spec");
    let spec = &rc["spec"];
    let mut errs = Errors::new();
    nonnegative(&mut errs, spec, "minReadySeconds", &path);
    let selector = &spec["selector"];
    let empty = selector.as_object().is_none_or(|m| m.is_empty());
    if empty {
        errs.push(FieldError::required(&path.child("selector"), ""));
    }
    nonnegative(&mut errs, spec, "replicas", &path);
    let matches = if empty {
        None
    } else {
        Some(meta::selector_matches(
            &serde_json::json!({ "matchLabels": selector }),
            &spec["template"]["metadata"]["labels"],
        ))
    };
    errs.extend(pod::workload_template(
        &spec["template"],
        matches,
        &path.child("template"),
        "ReplicationController",
    ));
    errs
}

/// `immutable: true` freezes the data maps and the flag itself.
fn immutable_data(new: &Value, old: &Value, fields: &[&str]) -> Errors {
    let mut errs = Errors::new();
    if old["immutable"].as_bool() != Some(true) {
        return errs;
    }
    if new["immutable"].as_bool() != Some(true) {
        errs.push(FieldError::forbidden(
            &Path::new("immutable"),
            "field is immutable when `immutable` is set",
        ));
    }
    for f in fields {
        let norm = |v: &Value| {
            if v.as_object().is_some_and(|m| m.is_empty()) {
                Value::Null
            } else {
                v.clone()
            }
        };
        if norm(&new[*f]) != norm(&old[*f]) {
            errs.push(FieldError::forbidden(
                &Path::new(f),
                "field is immutable when `immutable` is set",
            ));
        }
    }
    errs
}

fn config_map(cm: &Value) -> Errors {
    let mut errs = Errors::new();
    let mut total = 0;
    let binary = cm["binaryData"].as_object();
    for (k, v) in cm["data"].as_object().into_iter().flatten() {
        let p = Path::new("data").key(k);
        errs.extend(
            names::is_config_map_key(k)
                .into_iter()
                .map(|m| FieldError::invalid(&p, k.as_str(), m)),
        );
        if binary.is_some_and(|b| b.contains_key(k)) {
            errs.push(FieldError::invalid(
                &p,
                k.as_str(),
                "duplicate of key present in binaryData",
            ));
        }
        total += v.as_str().map_or(0, str::len);
    }
    for (k, v) in binary.into_iter().flatten() {
        let p = Path::new("binaryData").key(k);
        errs.extend(
            names::is_config_map_key(k)
                .into_iter()
                .map(|m| FieldError::invalid(&p, k.as_str(), m)),
        );
        total += base64_len(v.as_str().unwrap_or_default());
    }
    if total > MAX_SECRET_SIZE {
        errs.push(FieldError::too_long(&Path::default(), MAX_SECRET_SIZE));
    }
    errs
}

/// The decoded length of a base64 string.
fn base64_len(s: &str) -> usize {
    let pad = s.bytes().rev().take_while(|&c| c == b'=').count();
    (s.len() / 4 * 3).saturating_sub(pad)
        + match s.len() % 4 {
            2 => 1,
            3 => 2,
            _ => 0,
        }
}

fn secret(s: &Value) -> Errors {
    let mut errs = Errors::new();
    let data_path = Path::new("data");
    let data = s["data"].as_object();
    let mut total = 0;
    for (k, v) in data.into_iter().flatten() {
        errs.extend(
            names::is_config_map_key(k)
                .into_iter()
                .map(|m| FieldError::invalid(&data_path.key(k), k.as_str(), m)),
        );
        total += base64_len(v.as_str().unwrap_or_default());
    }
    if total > MAX_SECRET_SIZE {
        errs.push(FieldError::too_long(&data_path, MAX_SECRET_SIZE));
    }
    let has = |k: &str| data.is_some_and(|d| d.contains_key(k));
    let required =
        |errs: &mut Errors, k: &str| errs.push(FieldError::required(&data_path.key(k), ""));
    match str_of(s, "type") {
        "kubernetes.io/service-account-token"
            if str_of(&s["metadata"]["annotations"], SA_NAME_KEY).is_empty() =>
        {
            errs.push(FieldError::required(
                &Path::new("metadata").child("annotations").key(SA_NAME_KEY),
                "",
            ));
        }
        "kubernetes.io/dockercfg" if !has(".dockercfg") => required(&mut errs, ".dockercfg"),
        "kubernetes.io/dockerconfigjson" if !has(".dockerconfigjson") => {
            required(&mut errs, ".dockerconfigjson")
        }
        "kubernetes.io/basic-auth" if !has("username") && !has("password") => {
            required(&mut errs, "username");
            required(&mut errs, "password");
        }
        "kubernetes.io/ssh-auth" if str_of(&s["data"], "ssh-privatekey").is_empty() => {
            required(&mut errs, "ssh-privatekey")
        }
        "kubernetes.io/tls" => {
            for k in ["tls.crt", "tls.key"] {
                if !has(k) {
                    required(&mut errs, k);
                }
            }
        }
        _ => {}
    }
    errs
}

/// The service strategy's NormalizeClusterIPs on update: a changed `clusterIP` with
/// unchanged `clusterIPs` moves into `clusterIPs[0]`.
fn normalize_cluster_ips(new: &Value, old: Option<&Value>) -> Value {
    let mut svc = new.clone();
    let Some(old) = old else { return svc };
    let (ns, os) = (&new["spec"], &old["spec"]);
    let ip = str_of(ns, "clusterIP");
    if !ip.is_empty() && ip != str_of(os, "clusterIP") && ns["clusterIPs"] == os["clusterIPs"] {
        if let Some(ips) = svc["spec"]
            .get_mut("clusterIPs")
            .and_then(Value::as_array_mut)
        {
            if let Some(first) = ips.first_mut() {
                *first = ip.into();
            }
        }
    }
    svc
}

fn is_headless(spec: &Value) -> bool {
    let ips = arr_of(spec, "clusterIPs");
    ips.len() == 1 && ips[0].as_str() == Some("None")
}

/// `ValidateService`.
fn service(svc: &Value) -> Errors {
    let mut errs = Errors::new();
    let path = Path::new("spec");
    let spec = &svc["spec"];
    let typ = str_of(spec, "type");
    let ports = arr_of(spec, "ports");
    let headless = is_headless(spec);
    if ports.is_empty() && !headless && typ != "ExternalName" {
        errs.push(FieldError::required(&path.child("ports"), ""));
    }
    match typ {
        "LoadBalancer" | "NodePort" if headless => errs.push(FieldError::invalid(
            &path.child("clusterIPs").index(0),
            "None",
            format!("may not be set to 'None' for {typ} services"),
        )),
        "ExternalName" => {
            for f in ["clusterIPs", "ipFamilies"] {
                if !arr_of(spec, f).is_empty() {
                    errs.push(FieldError::forbidden(
                        &path.child(f),
                        "may not be set for ExternalName services",
                    ));
                }
            }
            if !spec["ipFamilyPolicy"].is_null() {
                errs.push(FieldError::forbidden(
                    &path.child("ipFamilyPolicy"),
                    "may not be set for ExternalName services",
                ));
            }
            let cname = str_of(spec, "externalName").trim_end_matches('.');
            if cname.is_empty() {
                errs.push(FieldError::required(&path.child("externalName"), ""));
            } else {
                for msg in names::is_dns1123_subdomain(cname) {
                    errs.push(FieldError::invalid(&path.child("externalName"), cname, msg));
                }
            }
        }
        _ => {}
    }
    let mut port_names = HashSet::new();
    for (i, port) in ports.iter().enumerate() {
        errs.extend(service_port(
            port,
            ports.len() > 1,
            &mut port_names,
            &path.child("ports").index(i),
        ));
    }
    errs.extend(meta::labels(&spec["selector"], &path.child("selector")));
    let affinity = str_of(spec, "sessionAffinity");
    match affinity {
        "" => errs.push(FieldError::required(&path.child("sessionAffinity"), "")),
        "ClientIP" => {
            let cfg = &spec["sessionAffinityConfig"];
            let p = path.child("sessionAffinityConfig");
            let detail = "when session affinity type is ClientIP";
            if cfg.is_null() {
                errs.push(FieldError::required(&p, detail));
            } else if cfg["clientIP"].is_null() {
                errs.push(FieldError::required(&p.child("clientIP"), detail));
            } else {
                match int_of(&cfg["clientIP"], "timeoutSeconds") {
                    None => errs.push(FieldError::required(
                        &p.child("clientIP").child("timeoutSeconds"),
                        detail,
                    )),
                    Some(t) if !(1..=86400).contains(&t) => errs.push(FieldError::invalid(
                        &p.child("clientIP").child("timeoutSeconds"),
                        t,
                        "must be greater than 0 and less than 86400",
                    )),
                    Some(_) => {}
                }
            }
        }
        "None" => {
            if !spec["sessionAffinityConfig"].is_null() {
                errs.push(FieldError::forbidden(
                    &path.child("sessionAffinityConfig"),
                    "must not be set when session affinity is None",
                ));
            }
        }
        other => errs.push(FieldError::not_supported(
            &path.child("sessionAffinity"),
            other,
            &["ClientIP", "None"],
        )),
    }
    errs.extend(cluster_ips(spec, typ, &path));
    for (i, ip) in arr_of(spec, "externalIPs").iter().enumerate() {
        let ip = ip.as_str().unwrap_or_default();
        errs.extend(valid_ip(ip, &path.child("externalIPs").index(i)));
    }
    match typ {
        "" => errs.push(FieldError::required(&path.child("type"), "")),
        "ClusterIP" | "NodePort" | "LoadBalancer" | "ExternalName" => {}
        other => errs.push(FieldError::not_supported(
            &path.child("type"),
            other,
            &["ClusterIP", "ExternalName", "LoadBalancer", "NodePort"],
        )),
    }
    if typ == "ClusterIP" {
        for (i, port) in ports.iter().enumerate() {
            if int_of(port, "nodePort").unwrap_or(0) != 0 {
                errs.push(FieldError::forbidden(
                    &path.child("ports").index(i).child("nodePort"),
                    "may not be used when `type` is 'ClusterIP'",
                ));
            }
        }
    }
    let mut node_ports = HashSet::new();
    for (i, port) in ports.iter().enumerate() {
        let np = int_of(port, "nodePort").unwrap_or(0);
        if np != 0 && !node_ports.insert((str_of(port, "protocol"), np)) {
            errs.push(FieldError::duplicate(
                &path.child("ports").index(i).child("nodePort"),
                np,
            ));
        }
    }
    let mut seen = HashSet::new();
    for (i, port) in ports.iter().enumerate() {
        let (proto, num) = (str_of(port, "protocol"), int_of(port, "port").unwrap_or(0));
        if !seen.insert((proto, num)) {
            let mut e = FieldError::duplicate(&path.child("ports").index(i), Value::Null);
            e.go_value = Some(format!(
                "core.ServicePort{{Name:\"\", Protocol:{}, AppProtocol:(*string)(nil), Port:{num}, TargetPort:intstr.IntOrString{{Type:0, IntVal:0, StrVal:\"\"}}, NodePort:0}}",
                go_quote(proto)
            ));
            errs.push(e);
        }
    }
    if !arr_of(spec, "loadBalancerSourceRanges").is_empty() && typ != "LoadBalancer" {
        errs.push(FieldError::forbidden(
            &path.child("LoadBalancerSourceRanges"),
            "may only be used when `type` is 'LoadBalancer'",
        ));
    }
    if !spec["allocateLoadBalancerNodePorts"].is_null() && typ != "LoadBalancer" {
        errs.push(FieldError::forbidden(
            &path.child("allocateLoadBalancerNodePorts"),
            "may only be used when `type` is 'LoadBalancer'",
        ));
    }
    errs.extend(traffic_policies(spec, typ, &path));
    errs
}

fn service_port(
    port: &Value,
    require_name: bool,
    names_seen: &mut HashSet<String>,
    path: &Path,
) -> Errors {
    let mut errs = Errors::new();
    let name = str_of(port, "name");
    if require_name && name.is_empty() {
        errs.push(FieldError::required(&path.child("name"), ""));
    } else if !name.is_empty() {
        errs.extend(
            names::is_dns1123_label(name)
                .into_iter()
                .map(|m| FieldError::invalid(&path.child("name"), name, m)),
        );
        if !names_seen.insert(name.to_owned()) {
            errs.push(FieldError::duplicate(&path.child("name"), name));
        }
    }
    let num = int_of(port, "port").unwrap_or(0);
    errs.extend(
        names::is_valid_port_num(num)
            .into_iter()
            .map(|m| FieldError::invalid(&path.child("port"), num, m)),
    );
    pod::protocol(&mut errs, str_of(port, "protocol"), &path.child("protocol"));
    errs.extend(port_num_or_name(
        &port["targetPort"],
        &path.child("targetPort"),
    ));
    if let Some(app) = port["appProtocol"].as_str() {
        errs.extend(
            names::is_qualified_name(app)
                .into_iter()
                .map(|m| FieldError::invalid(&path.child("appProtocol"), app, m)),
        );
    }
    errs
}

fn valid_ip(ip: &str, path: &Path) -> Errors {
    if ip.parse::<IpAddr>().is_ok() {
        Vec::new()
    } else {
        vec![FieldError::invalid(
            path,
            ip,
            "must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)",
        )]
    }
}

/// `ValidateServiceClusterIPsRelatedFields`.
fn cluster_ips(spec: &Value, typ: &str, path: &Path) -> Errors {
    let mut errs = Errors::new();
    if typ == "ExternalName" {
        return errs;
    }
    let ips_path = path.child("clusterIPs");
    let ip = str_of(spec, "clusterIP");
    let ips = arr_of(spec, "clusterIPs");
    if !ip.is_empty() {
        if ips.is_empty() {
            errs.push(FieldError::required(&ips_path, ""));
        } else if ips[0].as_str() != Some(ip) {
            errs.push(FieldError::invalid(
                &ips_path,
                Value::Array(ips.to_vec()),
                "first value must match `clusterIP`",
            ));
        }
    } else if !ips.is_empty() {
        errs.push(FieldError::invalid(
            &ips_path,
            Value::Array(ips.to_vec()),
            "must be empty when `clusterIP` is not specified",
        ));
    }
    let mut seen = HashSet::new();
    for (i, fam) in arr_of(spec, "ipFamilies").iter().enumerate() {
        let fam = fam.as_str().unwrap_or_default();
        let p = path.child("ipFamilies").index(i);
        if !matches!(fam, "IPv4" | "IPv6") {
            errs.push(FieldError::not_supported(&p, fam, &["IPv4", "IPv6"]));
        }
        if !seen.insert(fam) {
            errs.push(FieldError::duplicate(&p, fam));
        }
    }
    if let Some(policy) = spec["ipFamilyPolicy"].as_str() {
        if !matches!(
            policy,
            "SingleStack" | "PreferDualStack" | "RequireDualStack"
        ) {
            errs.push(FieldError::not_supported(
                &path.child("ipFamilyPolicy"),
                policy,
                &["PreferDualStack", "RequireDualStack", "SingleStack"],
            ));
        }
    }
    for (i, v) in ips.iter().enumerate() {
        let v = v.as_str().unwrap_or_default();
        if i == 0 && v == "None" {
            if ips.len() > 1 {
                errs.push(FieldError::invalid(
                    &ips_path,
                    Value::Array(ips.to_vec()),
                    "'None' must be the first and only value",
                ));
            }
            continue;
        }
        errs.extend(valid_ip(v, &ips_path.index(i)));
    }
    if ips.len() > 2 {
        errs.push(FieldError::invalid(
            &ips_path,
            Value::Array(ips.to_vec()),
            "may only hold up to 2 values",
        ));
    }
    errs
}

fn traffic_policies(spec: &Value, typ: &str, path: &Path) -> Errors {
    let mut errs = Errors::new();
    let external = matches!(typ, "NodePort" | "LoadBalancer")
        || (typ == "ClusterIP" && !arr_of(spec, "externalIPs").is_empty());
    let etp = str_of(spec, "externalTrafficPolicy");
    if !external {
        if !etp.is_empty() {
            errs.push(FieldError::invalid(
                &path.child("externalTrafficPolicy"),
                etp,
                "may only be set for externally-accessible services",
            ));
        }
    } else if etp.is_empty() {
        errs.push(FieldError::required(
            &path.child("externalTrafficPolicy"),
            "",
        ));
    } else if !matches!(etp, "Cluster" | "Local") {
        errs.push(FieldError::not_supported(
            &path.child("externalTrafficPolicy"),
            etp,
            &["Cluster", "Local"],
        ));
    }
    match spec["internalTrafficPolicy"].as_str() {
        None if matches!(typ, "NodePort" | "LoadBalancer" | "ClusterIP") => errs.push(
            FieldError::required(&path.child("internalTrafficPolicy"), ""),
        ),
        Some(p) if !matches!(p, "Cluster" | "Local") => errs.push(FieldError::not_supported(
            &path.child("internalTrafficPolicy"),
            p,
            &["Cluster", "Local"],
        )),
        _ => {}
    }
    errs
}

/// `ValidateServiceUpdate`'s own checks: the primary cluster IP (and family) may not change.
fn service_update(new: &Value, old: &Value) -> Errors {
    let mut errs = Errors::new();
    let (ns, os) = (&new["spec"], &old["spec"]);
    if str_of(ns, "type") == "ExternalName" || str_of(os, "type") == "ExternalName" {
        return errs;
    }
    if is_headless(ns) && is_headless(os) {
        return errs;
    }
    let (new_ips, old_ips) = (arr_of(ns, "clusterIPs"), arr_of(os, "clusterIPs"));
    // A body without cluster IPs keeps the allocated ones (the registry copies them back).
    if new_ips.is_empty() && str_of(ns, "clusterIP").is_empty() {
        return errs;
    }
    let path = Path::new("spec").child("clusterIPs");
    if new_ips.len() == old_ips.len() {
        for (i, ip) in old_ips.iter().enumerate() {
            if *ip != new_ips[i] {
                errs.push(FieldError::invalid(
                    &path.index(i),
                    Value::Array(new_ips.to_vec()),
                    "may not change once set",
                ));
            }
        }
    } else if !old_ips.is_empty() && !new_ips.is_empty() && new_ips[0] != old_ips[0] {
        errs.push(FieldError::invalid(
            &path.index(0),
            Value::Array(new_ips.to_vec()),
            "may not change once set",
        ));
    }
    errs
}
