//! Containers (`validateContainerCommon` and what it calls): names, images, ports,
//! environment, mounts, probes, lifecycle hooks, security context and resource
//! requirements with quantities.

use std::collections::{BTreeMap, HashSet};

use serde_json::Value;

use super::names::{self, inclusive_range_error};
use super::{arr_of, int_of, nonnegative, str_of, Errors, FieldError, Path};
use crate::quantity::Quantity;

const MAX_INT32: i64 = i32::MAX as i64;

/// `validateContainerCommon`.
pub(super) fn container_common(
    c: &Value,
    volumes: &BTreeMap<String, Value>,
    path: &Path,
) -> Errors {
    let mut errs = Errors::new();
    let name = str_of(c, "name");
    if name.is_empty() {
        errs.push(FieldError::required(&path.child("name"), ""));
    } else {
        for msg in names::is_dns1123_label(name) {
            errs.push(FieldError::invalid(&path.child("name"), name, msg));
        }
    }
    if str_of(c, "image").is_empty() {
        errs.push(FieldError::required(&path.child("image"), ""));
    }
    let tmp = str_of(c, "terminationMessagePolicy");
    match tmp {
        "File" | "FallbackToLogsOnError" => {}
        "" => errs.push(FieldError::required(
            &path.child("terminationMessagePolicy"),
            "",
        )),
        _ => errs.push(FieldError::not_supported(
            &path.child("terminationMessagePolicy"),
            tmp,
            &["File", "FallbackToLogsOnError"],
        )),
    }
    errs.extend(container_ports(arr_of(c, "ports"), &path.child("ports")));
    errs.extend(env(arr_of(c, "env"), &path.child("env")));
    errs.extend(env_from(arr_of(c, "envFrom"), &path.child("envFrom")));
    errs.extend(volume_mounts(
        arr_of(c, "volumeMounts"),
        volumes,
        &path.child("volumeMounts"),
    ));
    let pull = str_of(c, "imagePullPolicy");
    match pull {
        "Always" | "IfNotPresent" | "Never" => {}
        "" => errs.push(FieldError::required(&path.child("imagePullPolicy"), "")),
        _ => errs.push(FieldError::not_supported(
            &path.child("imagePullPolicy"),
            pull,
            &["Always", "IfNotPresent", "Never"],
        )),
    }
    errs.extend(resource_requirements(
        &c["resources"],
        &path.child("resources"),
    ));
    errs.extend(security_context(
        &c["securityContext"],
        &path.child("securityContext"),
    ));
    errs
}

/// `validateContainerPorts`.
fn container_ports(ports: &[Value], path: &Path) -> Errors {
    let mut errs = Errors::new();
    let mut names = HashSet::new();
    for (i, port) in ports.iter().enumerate() {
        let p = path.index(i);
        let name = str_of(port, "name");
        if !name.is_empty() {
            let msgs = names::is_valid_port_name(name);
            if !msgs.is_empty() {
                errs.extend(
                    msgs.into_iter()
                        .map(|m| FieldError::invalid(&p.child("name"), name, m)),
                );
            } else if !names.insert(name) {
                errs.push(FieldError::duplicate(&p.child("name"), name));
            }
        }
        match int_of(port, "containerPort").unwrap_or(0) {
            0 => errs.push(FieldError::required(&p.child("containerPort"), "")),
            n => errs.extend(
                names::is_valid_port_num(n)
                    .into_iter()
                    .map(|m| FieldError::invalid(&p.child("containerPort"), n, m)),
            ),
        }
        let host = int_of(port, "hostPort").unwrap_or(0);
        if host != 0 {
            errs.extend(
                names::is_valid_port_num(host)
                    .into_iter()
                    .map(|m| FieldError::invalid(&p.child("hostPort"), host, m)),
            );
        }
        protocol(&mut errs, str_of(port, "protocol"), &p.child("protocol"));
    }
    errs
}

/// A port protocol: required, one of TCP, UDP, SCTP.
pub fn protocol(errs: &mut Errors, proto: &str, path: &Path) {
    match proto {
        "TCP" | "UDP" | "SCTP" => {}
        "" => errs.push(FieldError::required(path, "")),
        _ => errs.push(FieldError::not_supported(
            path,
            proto,
            &["SCTP", "TCP", "UDP"],
        )),
    }
}

fn env(vars: &[Value], path: &Path) -> Errors {
    let mut errs = Errors::new();
    for (i, ev) in vars.iter().enumerate() {
        let p = path.index(i);
        let name = str_of(ev, "name");
        if name.is_empty() {
            errs.push(FieldError::required(&p.child("name"), ""));
        } else {
            errs.extend(
                names::is_relaxed_env_var_name(name)
                    .into_iter()
                    .map(|m| FieldError::invalid(&p.child("name"), name, m)),
            );
        }
        let from = &ev["valueFrom"];
        if from.is_null() {
            continue;
        }
        let fp = p.child("valueFrom");
        let sources = [
            "fieldRef",
            "resourceFieldRef",
            "configMapKeyRef",
            "secretKeyRef",
        ];
        let n = sources.iter().filter(|s| !from[**s].is_null()).count();
        for s in ["configMapKeyRef", "secretKeyRef"] {
            let r = &from[s];
            if r.is_null() {
                continue;
            }
            let key = str_of(r, "key");
            if key.is_empty() {
                errs.push(FieldError::required(&fp.child(s).child("key"), ""));
            } else {
                errs.extend(
                    names::is_config_map_key(key)
                        .into_iter()
                        .map(|m| FieldError::invalid(&fp.child(s).child("key"), key, m)),
                );
            }
        }
        if n == 0 {
            errs.push(FieldError::invalid(
                &fp,
                "",
                "must specify one of: `fieldRef`, `resourceFieldRef`, `configMapKeyRef` or `secretKeyRef`",
            ));
        } else if !str_of(ev, "value").is_empty() {
            errs.push(FieldError::invalid(
                &fp,
                "",
                "may not be specified when `value` is not empty",
            ));
        } else if n > 1 {
            errs.push(FieldError::invalid(
                &fp,
                "",
                "may not have more than one field specified at a time",
            ));
        }
    }
    errs
}

fn env_from(list: &[Value], path: &Path) -> Errors {
    let mut errs = Errors::new();
    for (i, ev) in list.iter().enumerate() {
        let p = path.index(i);
        let prefix = str_of(ev, "prefix");
        if !prefix.is_empty() {
            errs.extend(
                names::is_relaxed_env_var_name(prefix)
                    .into_iter()
                    .map(|m| FieldError::invalid(&p.child("prefix"), prefix, m)),
            );
        }
        let n = ["configMapRef", "secretRef"]
            .iter()
            .filter(|s| !ev[**s].is_null())
            .count();
        for s in ["configMapRef", "secretRef"] {
            if !ev[s].is_null() && str_of(&ev[s], "name").is_empty() {
                errs.push(FieldError::required(&p.child(s).child("name"), ""));
            }
        }
        if n == 0 {
            errs.push(FieldError::invalid(
                path,
                "",
                "must specify one of: `configMapRef` or `secretRef`",
            ));
        } else if n > 1 {
            errs.push(FieldError::invalid(
                path,
                "",
                "may not have more than one field specified at a time",
            ));
        }
    }
    errs
}

fn volume_mounts(mounts: &[Value], volumes: &BTreeMap<String, Value>, path: &Path) -> Errors {
    let mut errs = Errors::new();
    let mut points = HashSet::new();
    for (i, m) in mounts.iter().enumerate() {
        let p = path.index(i);
        let name = str_of(m, "name");
        if name.is_empty() {
            errs.push(FieldError::required(&p.child("name"), ""));
        }
        if !volumes.contains_key(name) {
            errs.push(FieldError::not_found(&p.child("name"), name));
        }
        let mount_path = str_of(m, "mountPath");
        if mount_path.is_empty() {
            errs.push(FieldError::required(&p.child("mountPath"), ""));
        }
        if !points.insert(mount_path) {
            errs.push(FieldError::invalid(
                &p.child("mountPath"),
                mount_path,
                "must be unique",
            ));
        }
        let sub = str_of(m, "subPath");
        if !sub.is_empty() {
            errs.extend(local_descending_path(sub, &path.child("subPath")));
        }
    }
    errs
}

/// `validateLocalDescendingPath`: relative, without `..` elements.
fn local_descending_path(p: &str, path: &Path) -> Errors {
    let mut errs = Errors::new();
    if p.starts_with('/') {
        errs.push(FieldError::invalid(path, p, "must be a relative path"));
    }
    if p.split(['/', '\\']).any(|e| e == "..") {
        errs.push(FieldError::invalid(path, p, "must not contain '..'"));
    }
    errs
}

pub(super) fn probes(c: &Value, path: &Path, _regular: bool) -> Errors {
    let mut errs = Errors::new();
    for kind in ["livenessProbe", "readinessProbe", "startupProbe"] {
        let probe = &c[kind];
        if probe.is_null() {
            continue;
        }
        let p = path.child(kind);
        errs.extend(handler(
            probe,
            &p,
            &["exec", "httpGet", "tcpSocket", "grpc"],
        ));
        for f in [
            "initialDelaySeconds",
            "timeoutSeconds",
            "periodSeconds",
            "successThreshold",
            "failureThreshold",
        ] {
            nonnegative(&mut errs, probe, f, &p);
        }
        if let Some(t) = int_of(probe, "terminationGracePeriodSeconds") {
            if kind == "readinessProbe" {
                errs.push(FieldError::invalid(
                    &p.child("terminationGracePeriodSeconds"),
                    t,
                    "must not be set for readinessProbes",
                ));
            } else if t <= 0 {
                errs.push(FieldError::invalid(
                    &p.child("terminationGracePeriodSeconds"),
                    t,
                    "must be greater than 0",
                ));
            }
        }
        if kind != "readinessProbe" {
            if let Some(s) = int_of(probe, "successThreshold") {
                if s != 1 {
                    errs.push(FieldError::invalid(
                        &p.child("successThreshold"),
                        s,
                        "must be 1",
                    ));
                }
            }
        }
    }
    errs
}

pub(super) fn lifecycle(lc: &Value, path: &Path) -> Errors {
    let mut errs = Errors::new();
    for hook in ["postStart", "preStop"] {
        if !lc[hook].is_null() {
            errs.extend(handler(
                &lc[hook],
                &path.child(hook),
                &["exec", "httpGet", "tcpSocket", "sleep"],
            ));
        }
    }
    errs
}

/// `validateHandler`: exactly one handler type, each checked.
fn handler(h: &Value, path: &Path, kinds: &[&str]) -> Errors {
    let mut errs = Errors::new();
    let mut n = 0;
    for kind in kinds {
        let v = &h[*kind];
        if v.is_null() {
            continue;
        }
        let p = path.child(kind);
        if n > 0 {
            errs.push(FieldError::forbidden(
                &p,
                "may not specify more than 1 handler type",
            ));
            continue;
        }
        n += 1;
        match *kind {
            "exec" if arr_of(v, "command").is_empty() => {
                errs.push(FieldError::required(&p.child("command"), ""))
            }
            "httpGet" => {
                if str_of(v, "path").is_empty() {
                    errs.push(FieldError::required(&p.child("path"), ""));
                }
                errs.extend(port_num_or_name(&v["port"], &p.child("port")));
                let scheme = str_of(v, "scheme");
                if !matches!(scheme, "HTTP" | "HTTPS") {
                    errs.push(FieldError::not_supported(
                        &p.child("scheme"),
                        scheme,
                        &["HTTP", "HTTPS"],
                    ));
                }
            }
            "tcpSocket" | "grpc" => errs.extend(port_num_or_name(&v["port"], &p.child("port"))),
            _ => {}
        }
    }
    if n == 0 {
        errs.push(FieldError::required(path, "must specify a handler type"));
    }
    errs
}

/// `ValidatePortNumOrName`: a port number in range or an IANA port name.
pub fn port_num_or_name(port: &Value, path: &Path) -> Errors {
    match port {
        Value::String(s) => names::is_valid_port_name(s)
            .into_iter()
            .map(|m| FieldError::invalid(path, s.as_str(), m))
            .collect(),
        v => {
            let n = v.as_i64().unwrap_or(0);
            names::is_valid_port_num(n)
                .into_iter()
                .map(|m| FieldError::invalid(path, n, m))
                .collect()
        }
    }
}

pub(super) fn host_port_conflicts(containers: &[Value], path: &Path) -> Errors {
    let mut errs = Errors::new();
    let mut seen = HashSet::new();
    for (ci, c) in containers.iter().enumerate() {
        for (pi, port) in arr_of(c, "ports").iter().enumerate() {
            let host = int_of(port, "hostPort").unwrap_or(0);
            if host == 0 {
                continue;
            }
            let key = format!(
                "{}/{}/{host}",
                str_of(port, "protocol"),
                str_of(port, "hostIP")
            );
            if !seen.insert(key.clone()) {
                errs.push(FieldError::duplicate(
                    &path.index(ci).child("ports").index(pi).child("hostPort"),
                    key,
                ));
            }
        }
    }
    errs
}

fn security_context(sc: &Value, path: &Path) -> Errors {
    let mut errs = Errors::new();
    for f in ["runAsUser", "runAsGroup"] {
        if let Some(id) = int_of(sc, f) {
            if !(0..=MAX_INT32).contains(&id) {
                errs.push(FieldError::invalid(
                    &path.child(f),
                    id,
                    inclusive_range_error(0, MAX_INT32),
                ));
            }
        }
    }
    if sc["allowPrivilegeEscalation"].as_bool() == Some(false)
        && sc["privileged"].as_bool() == Some(true)
    {
        errs.push(FieldError::invalid_go(
            path,
            "&core.SecurityContext{...}",
            "cannot set `allowPrivilegeEscalation` to false and `privileged` to true",
        ));
    }
    errs
}

/// A quantity in a resource list: a string (or a bare number) that must parse.
pub fn quantity_of(v: &Value) -> Result<Quantity, String> {
    let s = match v {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        _ => return Err(crate::quantity::QUANTITY_REGEX_ERROR.to_owned()),
    };
    Quantity::parse(&s).map_err(|e| e.to_string())
}

const STANDARD_CONTAINER_RESOURCES: [&str; 3] = ["cpu", "memory", "ephemeral-storage"];

fn is_native(name: &str) -> bool {
    !name.contains('/') || name.contains("kubernetes.io/")
}

fn overcommit_allowed(name: &str) -> bool {
    is_native(name) && !name.starts_with("hugepages-")
}

fn container_resource_name(name: &str, path: &Path) -> Errors {
    let mut errs: Errors = names::is_qualified_name(name)
        .into_iter()
        .map(|m| FieldError::invalid(path, name, m))
        .collect();
    if !errs.is_empty() {
        return errs;
    }
    if !name.contains('/') {
        if !STANDARD_CONTAINER_RESOURCES.contains(&name) && !name.starts_with("hugepages-") {
            errs.push(FieldError::invalid(
                path,
                name,
                "must be a standard resource for containers",
            ));
        }
    } else if !is_native(name) && name.starts_with("requests.") {
        errs.push(FieldError::invalid(
            path,
            name,
            "doesn't follow extended resource name standard",
        ));
    }
    errs
}

/// Checks one resource list (`limits` or `requests`); returns the parsed quantities.
fn resource_list(list: &Value, path: &Path, errs: &mut Errors) -> Vec<(String, Quantity)> {
    let mut out = Vec::new();
    for (name, v) in list.as_object().into_iter().flatten() {
        let p = path.key(name);
        errs.extend(container_resource_name(name, &p));
        match quantity_of(v) {
            Err(msg) => errs.push(FieldError::invalid(&p, v.clone(), msg)),
            Ok(q) => {
                if q.is_negative() {
                    errs.push(FieldError::invalid(&p, q.to_string(), names::IS_NEGATIVE));
                }
                if !is_native(name) && q.milli_value() % 1000 != 0 {
                    errs.push(FieldError::invalid(&p, q.to_string(), "must be an integer"));
                }
                out.push((name.clone(), q));
            }
        }
    }
    out
}

/// `ValidateContainerResourceRequirements`: names, quantities, and requests ≤ limits.
pub fn resource_requirements(res: &Value, path: &Path) -> Errors {
    let mut errs = Errors::new();
    let lim_path = path.child("limits");
    let req_path = path.child("requests");
    let limits = resource_list(&res["limits"], &lim_path, &mut errs);
    let requests = resource_list(&res["requests"], &req_path, &mut errs);
    for (name, q) in &requests {
        match limits.iter().find(|(n, _)| n == name) {
            Some((_, limit)) => {
                if q != limit && !overcommit_allowed(name) {
                    errs.push(FieldError::invalid(
                        &req_path,
                        q.to_string(),
                        format!("must be equal to {name} limit of {limit}"),
                    ));
                } else if q > limit {
                    errs.push(FieldError::invalid(
                        &req_path,
                        q.to_string(),
                        format!("must be less than or equal to {name} limit of {limit}"),
                    ));
                }
            }
            None if !overcommit_allowed(name) => errs.push(FieldError::required(
                &lim_path,
                "Limit must be set for non overcommitable resources",
            )),
            None => {}
        }
    }
    errs
}
