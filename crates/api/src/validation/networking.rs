//! The networking.k8s.io group (`pkg/apis/networking/validation`): Ingresses,
//! IngressClasses and NetworkPolicies.

use serde_json::Value;

use super::names;
use super::pod::{port_num_or_name, protocol};
use super::{arr_of, meta, str_of, Errors, FieldError, Path};
use crate::ResourceInfo;

pub(super) fn validate(info: &ResourceInfo, new: &Value, old: Option<&Value>) -> Errors {
    let mut errs = meta::object_meta_for(info, new, old, names::dns_subdomain_name);
    let spec = &new["spec"];
    let path = Path::new("spec");
    match info.kind {
        "Ingress" => errs.extend(ingress_spec(spec, &path)),
        "IngressClass" => {
            let controller = str_of(spec, "controller");
            if controller.is_empty() {
                errs.push(FieldError::required(&path.child("controller"), ""));
            }
            if let Some(old) = old {
                if controller != str_of(&old["spec"], "controller") {
                    errs.push(FieldError::immutable(
                        &path.child("controller"),
                        &spec["controller"],
                    ));
                }
            }
        }
        "NetworkPolicy" => errs.extend(network_policy_spec(spec, &path)),
        _ => {}
    }
    errs
}

fn backend(b: &Value, path: &Path) -> Errors {
    let mut errs = Errors::new();
    let (svc, res) = (&b["service"], &b["resource"]);
    match (svc.is_null(), res.is_null()) {
        (false, false) => errs.push(FieldError::invalid_go(
            path,
            "networking.IngressBackend{...}",
            "cannot set both resource and service backends",
        )),
        (true, true) => errs.push(FieldError::invalid_go(
            path,
            "networking.IngressBackend{...}",
            "resource or service backend is required",
        )),
        (false, true) => {
            let p = path.child("service");
            let name = str_of(svc, "name");
            for msg in names::dns1035_name(name, false) {
                errs.push(FieldError::invalid(&p.child("name"), name, msg));
            }
            let port = &svc["port"];
            let (pname, pnum) = (str_of(port, "name"), port["number"].as_i64().unwrap_or(0));
            if !pname.is_empty() && pnum != 0 {
                errs.push(FieldError::invalid(
                    &p.child("port"),
                    pname,
                    "cannot set both port name & port number",
                ));
            } else if !pname.is_empty() {
                errs.extend(port_num_or_name(
                    &Value::String(pname.to_owned()),
                    &p.child("port").child("name"),
                ));
            } else if pnum != 0 {
                errs.extend(port_num_or_name(
                    &Value::from(pnum),
                    &p.child("port").child("number"),
                ));
            } else {
                errs.push(FieldError::required(
                    &p.child("port"),
                    "port name or number is required",
                ));
            }
        }
        (true, false) => {}
    }
    errs
}

fn ingress_spec(spec: &Value, path: &Path) -> Errors {
    let mut errs = Errors::new();
    let rules = arr_of(spec, "rules");
    if rules.is_empty() && spec["defaultBackend"].is_null() {
        errs.push(FieldError::invalid_go(
            path,
            "[]networking.IngressRule(nil)",
            "either `defaultBackend` or `rules` must be specified",
        ));
    }
    if !spec["defaultBackend"].is_null() {
        errs.extend(backend(
            &spec["defaultBackend"],
            &path.child("defaultBackend"),
        ));
    }
    for (i, rule) in rules.iter().enumerate() {
        let p = path.child("rules").index(i);
        let host = str_of(rule, "host");
        if !host.is_empty() {
            let h = host.strip_prefix("*.").unwrap_or(host);
            for msg in names::is_dns1123_subdomain(h) {
                errs.push(FieldError::invalid(&p.child("host"), host, msg));
            }
        }
        if rule["http"].is_null() {
            continue;
        }
        let hp = p.child("http");
        let paths = arr_of(&rule["http"], "paths");
        if paths.is_empty() {
            errs.push(FieldError::required(&hp.child("paths"), ""));
        }
        for (j, hpath) in paths.iter().enumerate() {
            let pp = hp.child("paths").index(j);
            let path_type = str_of(hpath, "pathType");
            match path_type {
                "" => errs.push(FieldError::required(
                    &pp.child("pathType"),
                    "pathType must be specified",
                )),
                "Exact" | "Prefix" | "ImplementationSpecific" => {}
                other => errs.push(FieldError::not_supported(
                    &pp.child("pathType"),
                    other,
                    &["Exact", "ImplementationSpecific", "Prefix"],
                )),
            }
            let value = str_of(hpath, "path");
            if path_type != "ImplementationSpecific" && !value.starts_with('/') {
                errs.push(FieldError::invalid(
                    &pp.child("path"),
                    value,
                    "must be an absolute path",
                ));
            }
            errs.extend(backend(&hpath["backend"], &pp.child("backend")));
        }
    }
    errs
}

fn network_policy_spec(spec: &Value, path: &Path) -> Errors {
    let mut errs = meta::label_selector(&spec["podSelector"], &path.child("podSelector"));
    for dir in ["ingress", "egress"] {
        let peers = if dir == "ingress" { "from" } else { "to" };
        for (i, rule) in arr_of(spec, dir).iter().enumerate() {
            let p = path.child(dir).index(i);
            for (j, port) in arr_of(rule, "ports").iter().enumerate() {
                let pp = p.child("ports").index(j);
                if let Some(proto) = port["protocol"].as_str() {
                    protocol(&mut errs, proto, &pp.child("protocol"));
                }
                if !port["port"].is_null() {
                    errs.extend(port_num_or_name(&port["port"], &pp.child("port")));
                }
            }
            for (j, peer) in arr_of(rule, peers).iter().enumerate() {
                let pp = p.child(peers).index(j);
                let n = ["podSelector", "namespaceSelector", "ipBlock"]
                    .iter()
                    .filter(|k| !peer[**k].is_null())
                    .count();
                if n == 0 {
                    errs.push(FieldError::required(&pp, "must specify a peer"));
                }
                for sel in ["podSelector", "namespaceSelector"] {
                    errs.extend(meta::label_selector(&peer[sel], &pp.child(sel)));
                }
            }
        }
    }
    for (i, t) in arr_of(spec, "policyTypes").iter().enumerate() {
        let t = t.as_str().unwrap_or_default();
        if !matches!(t, "Ingress" | "Egress") {
            errs.push(FieldError::not_supported(
                &path.child("policyTypes").index(i),
                t,
                &["Ingress", "Egress"],
            ));
        }
    }
    errs
}
