//! The apps group (`pkg/apis/apps/validation`): Deployments, ReplicaSets, DaemonSets,
//! StatefulSets, ControllerRevisions.

use serde_json::Value;

use super::names::{self, go_quote};
use super::pod;
use super::{int_of, meta, nonnegative, str_of, Errors, FieldError, Path, IMMUTABLE};
use crate::ResourceInfo;

pub(super) fn validate(info: &ResourceInfo, new: &Value, old: Option<&Value>) -> Errors {
    let mut errs = meta::object_meta_for(info, new, old, names::dns_subdomain_name);
    let spec = &new["spec"];
    let path = Path::new("spec");
    match info.kind {
        "Deployment" => errs.extend(deployment_spec(spec, &path)),
        "ReplicaSet" => errs.extend(replica_set_spec(spec, &path)),
        "DaemonSet" => errs.extend(daemon_set_spec(spec, &path)),
        "StatefulSet" => {
            if let Some(old) = old {
                errs.extend(stateful_set_update(spec, &old["spec"]));
            }
            errs.extend(stateful_set_spec(spec, &path));
        }
        "ControllerRevision" => {
            if new["data"].is_null() {
                errs.push(FieldError::required(
                    &Path::new("data"),
                    "data is mandatory",
                ));
            }
            nonnegative(&mut errs, new, "revision", &Path::default());
            if let Some(old) = old {
                if new["data"] != old["data"] {
                    errs.push(FieldError::invalid_go(
                        &Path::new("data"),
                        "runtime.RawExtension{...}",
                        IMMUTABLE,
                    ));
                }
            }
        }
        _ => {}
    }
    // apps/v1 selectors are immutable (the strategies' ValidateUpdate)
    if let (Some(old), "Deployment" | "ReplicaSet" | "DaemonSet") = (old, info.kind) {
        if spec["selector"] != old["spec"]["selector"] {
            errs.push(FieldError::invalid_go(
                &path.child("selector"),
                meta::go_label_selector(&spec["selector"]),
                IMMUTABLE,
            ));
        }
    }
    errs
}

/// The selector checks shared by the workloads: required, a valid label selector, not
/// empty. Returns whether it matches the template labels (`None` for an empty selector,
/// which selects everything and is not compared).
fn selector(spec: &Value, path: &Path, kind: &str, errs: &mut Errors) -> Option<bool> {
    let sel = &spec["selector"];
    let p = path.child("selector");
    // k8s-openapi turns a missing (required) selector into `{}` while defaulting, so an
    // empty object is taken for the missing selector users most often mean.
    if sel.is_null() || sel.as_object().is_some_and(|m| m.is_empty()) {
        errs.push(FieldError::required(&p, ""));
        // a nil selector selects nothing, so it never matches the template
        return Some(false);
    }
    errs.extend(meta::label_selector(sel, &p));
    if meta::selector_is_empty(sel) {
        errs.push(FieldError::invalid_go(
            &p,
            meta::go_label_selector(sel),
            format!("empty selector is invalid for {kind}"),
        ));
        return None;
    }
    Some(meta::selector_matches(
        sel,
        &spec["template"]["metadata"]["labels"],
    ))
}

fn deployment_spec(spec: &Value, path: &Path) -> Errors {
    let mut errs = Errors::new();
    nonnegative(&mut errs, spec, "replicas", path);
    let matches = selector(spec, path, "deployment", &mut errs);
    errs.extend(pod::workload_template(
        &spec["template"],
        matches,
        &path.child("template"),
        "ReplicaSet",
    ));
    errs.extend(deployment_strategy(
        &spec["strategy"],
        &path.child("strategy"),
    ));
    nonnegative(&mut errs, spec, "minReadySeconds", path);
    nonnegative(&mut errs, spec, "revisionHistoryLimit", path);
    if let Some(pds) = int_of(spec, "progressDeadlineSeconds") {
        nonnegative(&mut errs, spec, "progressDeadlineSeconds", path);
        if pds <= int_of(spec, "minReadySeconds").unwrap_or(0) {
            errs.push(FieldError::invalid(
                &path.child("progressDeadlineSeconds"),
                pds,
                "must be greater than minReadySeconds",
            ));
        }
    }
    errs
}

fn deployment_strategy(strategy: &Value, path: &Path) -> Errors {
    let mut errs = Errors::new();
    match str_of(strategy, "type") {
        "Recreate" => {
            if !strategy["rollingUpdate"].is_null() {
                errs.push(FieldError::forbidden(
                    &path.child("rollingUpdate"),
                    "may not be specified when strategy `type` is 'Recreate'",
                ));
            }
        }
        "RollingUpdate" => {
            let ru = &strategy["rollingUpdate"];
            let p = path.child("rollingUpdate");
            if ru.is_null() {
                errs.push(FieldError::required(
                    &p,
                    "this should be defaulted and never be nil",
                ));
            } else {
                errs.extend(rolling_update(ru, &p, true));
            }
        }
        other => errs.push(FieldError::not_supported(
            &path.child("type"),
            other,
            &["Recreate", "RollingUpdate"],
        )),
    }
    errs
}

/// How Go's `%#v` prints an `intstr.IntOrString`.
fn go_int_or_string(v: &Value) -> String {
    match v {
        Value::String(s) => format!(
            "intstr.IntOrString{{Type:1, IntVal:0, StrVal:{}}}",
            go_quote(s)
        ),
        v => format!(
            "intstr.IntOrString{{Type:0, IntVal:{}, StrVal:\"\"}}",
            v.as_i64().unwrap_or(0)
        ),
    }
}

/// The value of an int-or-percent (percent as its number), or `None` when malformed.
fn int_or_percent(v: &Value) -> Option<i64> {
    match v {
        Value::String(s) => s.strip_suffix('%').and_then(|n| n.parse().ok()),
        v => v.as_i64(),
    }
}

/// `ValidatePositiveIntOrPercent` and `IsNotMoreThan100Percent` for maxUnavailable and
/// maxSurge; for Deployments both may not be zero.
fn rolling_update(ru: &Value, path: &Path, deployment: bool) -> Errors {
    let mut errs = Errors::new();
    for f in ["maxUnavailable", "maxSurge"] {
        let v = &ru[f];
        let p = path.child(f);
        match v {
            Value::Null => {}
            Value::String(s) => {
                let ok = s.len() > 1
                    && s.ends_with('%')
                    && s[..s.len() - 1].bytes().all(|c| c.is_ascii_digit());
                if !ok {
                    errs.push(FieldError::invalid_go(
                        &p,
                        go_int_or_string(v),
                        names::regex_error(
                            "a valid percent string must be a numeric string followed by an ending '%'",
                            "[0-9]+%",
                            &["1%", "93%"],
                        ),
                    ));
                }
            }
            v => {
                let n = v.as_i64().unwrap_or(0);
                if n < 0 {
                    errs.push(FieldError::invalid(&p, n, names::IS_NEGATIVE));
                }
            }
        }
    }
    let (mu, ms) = (&ru["maxUnavailable"], &ru["maxSurge"]);
    if deployment && int_or_percent(mu) == Some(0) && int_or_percent(ms) == Some(0) {
        errs.push(FieldError::invalid_go(
            &path.child("maxUnavailable"),
            go_int_or_string(mu),
            "may not be 0 when `maxSurge` is 0",
        ));
    }
    if mu.is_string() && int_or_percent(mu).is_some_and(|n| n > 100) {
        errs.push(FieldError::invalid_go(
            &path.child("maxUnavailable"),
            go_int_or_string(mu),
            "must not be greater than 100%",
        ));
    }
    errs
}

fn replica_set_spec(spec: &Value, path: &Path) -> Errors {
    let mut errs = Errors::new();
    nonnegative(&mut errs, spec, "replicas", path);
    nonnegative(&mut errs, spec, "minReadySeconds", path);
    // upstream's ReplicaSet validation shares the Deployment wording
    let matches = selector(spec, path, "deployment", &mut errs);
    errs.extend(pod::workload_template(
        &spec["template"],
        matches,
        &path.child("template"),
        "ReplicaSet",
    ));
    errs
}

fn daemon_set_spec(spec: &Value, path: &Path) -> Errors {
    let mut errs = Errors::new();
    let matches = selector(spec, path, "daemonset", &mut errs);
    errs.extend(pod::workload_template(
        &spec["template"],
        matches,
        &path.child("template"),
        "DaemonSet",
    ));
    nonnegative(&mut errs, spec, "minReadySeconds", path);
    nonnegative(&mut errs, spec, "templateGeneration", path);
    let strategy = &spec["updateStrategy"];
    let p = path.child("updateStrategy");
    match str_of(strategy, "type") {
        "OnDelete" => {}
        "RollingUpdate" => {
            let ru = &strategy["rollingUpdate"];
            if ru.is_null() {
                errs.push(FieldError::required(&p.child("rollingUpdate"), ""));
            } else {
                errs.extend(rolling_update(ru, &p.child("rollingUpdate"), false));
                if int_or_percent(&ru["maxUnavailable"]) == Some(0)
                    && int_or_percent(&ru["maxSurge"]).is_none_or(|n| n == 0)
                {
                    errs.push(FieldError::invalid_go(
                        &p.child("rollingUpdate").child("maxUnavailable"),
                        go_int_or_string(&ru["maxUnavailable"]),
                        "may not be 0 when `maxSurge` is 0",
                    ));
                }
            }
        }
        other => errs.push(FieldError::not_supported(
            &p,
            other,
            &["OnDelete", "RollingUpdate"],
        )),
    }
    nonnegative(&mut errs, spec, "revisionHistoryLimit", path);
    errs
}

fn stateful_set_spec(spec: &Value, path: &Path) -> Errors {
    let mut errs = Errors::new();
    match str_of(spec, "podManagementPolicy") {
        "" => errs.push(FieldError::required(&path.child("podManagementPolicy"), "")),
        "OrderedReady" | "Parallel" => {}
        other => errs.push(FieldError::invalid(
            &path.child("podManagementPolicy"),
            other,
            "must be 'OrderedReady' or 'Parallel'",
        )),
    }
    let strategy = &spec["updateStrategy"];
    match str_of(strategy, "type") {
        "" => errs.push(FieldError::required(&path.child("updateStrategy"), "")),
        "OnDelete" if !strategy["rollingUpdate"].is_null() => errs.push(FieldError::invalid(
            &path.child("updateStrategy").child("rollingUpdate"),
            strategy["rollingUpdate"].clone(),
            "only allowed for updateStrategy 'RollingUpdate'",
        )),
        "OnDelete" => {}
        "RollingUpdate" => {
            let ru = &strategy["rollingUpdate"];
            nonnegative(
                &mut errs,
                ru,
                "partition",
                &path.child("updateStrategy").child("rollingUpdate"),
            );
        }
        _ => errs.push(FieldError::invalid(
            &path.child("updateStrategy"),
            strategy.clone(),
            "must be 'RollingUpdate' or 'OnDelete'",
        )),
    }
    let retention = &spec["persistentVolumeClaimRetentionPolicy"];
    for f in ["whenDeleted", "whenScaled"] {
        if let Some(v) = retention[f].as_str() {
            if !matches!(v, "Retain" | "Delete") {
                errs.push(FieldError::not_supported(
                    &path.child("persistentVolumeClaimRetentionPolicy").child(f),
                    v,
                    &["Retain", "Delete"],
                ));
            }
        }
    }
    nonnegative(&mut errs, spec, "replicas", path);
    nonnegative(&mut errs, spec, "minReadySeconds", path);
    nonnegative(
        &mut errs,
        &spec["ordinals"],
        "start",
        &path.child("ordinals"),
    );
    let matches = selector(spec, path, "statefulset", &mut errs);
    // Containers may mount the volumeClaimTemplates: the controller adds them to each pod as
    // claim volumes, so the template is checked with them (upstream checks the union).
    let mut template = spec["template"].clone();
    if let (Some(claims), false) = (spec["volumeClaimTemplates"].as_array(), template.is_null()) {
        let mut volumes = template["spec"]["volumes"].as_array().cloned().unwrap_or_default();
        for name in claims.iter().filter_map(|c| c["metadata"]["name"].as_str()) {
            if !volumes.iter().any(|v| v["name"] == name) {
                volumes.push(serde_json::json!({"name": name, "persistentVolumeClaim": {"claimName": name}}));
            }
        }
        if !volumes.is_empty() {
            template["spec"]["volumes"] = Value::Array(volumes);
        }
    }
    errs.extend(pod::workload_template(
        &template,
        matches,
        &path.child("template"),
        "StatefulSet",
    ));
    errs
}

/// Only replicas, ordinals, template, updateStrategy, revisionHistoryLimit, the PVC
/// retention policy and minReadySeconds may change.
fn stateful_set_update(new: &Value, old: &Value) -> Errors {
    const MUTABLE: [&str; 7] = [
        "replicas",
        "ordinals",
        "template",
        "updateStrategy",
        "revisionHistoryLimit",
        "persistentVolumeClaimRetentionPolicy",
        "minReadySeconds",
    ];
    let strip = |v: &Value| {
        let mut v = v.clone();
        if let Some(m) = v.as_object_mut() {
            for f in MUTABLE {
                m.remove(f);
            }
        }
        v
    };
    if strip(new) == strip(old) {
        return Errors::new();
    }
    vec![FieldError::forbidden(
        &Path::new("spec"),
        "updates to statefulset spec for fields other than 'replicas', 'ordinals', 'template', 'updateStrategy', 'revisionHistoryLimit', 'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' are forbidden",
    )]
}
