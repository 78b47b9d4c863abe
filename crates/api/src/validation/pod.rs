//! Pods, pod templates and pod specs (`pkg/apis/core/validation`: ValidatePodSpec,
//! validateContainers, ValidatePodTemplateSpec). Single containers are in [`super::container`],
//! pod updates in [`super::pod_update`].

use std::collections::{BTreeMap, HashSet};

use serde_json::Value;

use super::container::{container_common, host_port_conflicts, lifecycle, probes};
use super::names::{self, inclusive_range_error};
use super::{arr_of, int_of, meta, str_of, Errors, FieldError, Path};

pub use super::container::{port_num_or_name, protocol};
pub use super::pod_update::pod_update;

const MAX_INT32: i64 = i32::MAX as i64;

/// The volume sources in the order upstream checks them.
const VOLUME_SOURCES: [&str; 30] = [
    "emptyDir",
    "hostPath",
    "gitRepo",
    "gcePersistentDisk",
    "awsElasticBlockStore",
    "secret",
    "nfs",
    "iscsi",
    "glusterfs",
    "flocker",
    "persistentVolumeClaim",
    "rbd",
    "cinder",
    "cephfs",
    "quobyte",
    "downwardAPI",
    "fc",
    "flexVolume",
    "configMap",
    "azureFile",
    "vsphereVolume",
    "photonPersistentDisk",
    "portworxVolume",
    "azureDisk",
    "storageos",
    "projected",
    "scaleIO",
    "csi",
    "ephemeral",
    "image",
];

/// Options that differ between a Pod and a PodSpec embedded in a template.
#[derive(Debug, Clone, Copy)]
pub struct SpecOptions {
    /// The top-level object is a Pod (not a template).
    pub resource_is_pod: bool,
}

/// `validatePodMetadataAndSpec` minus the metadata (done by the caller).
pub fn pod_spec_for_pod(obj: &Value) -> Errors {
    let spec_path = Path::new("spec");
    let spec = &obj["spec"];
    let mut errs = pod_spec(
        spec,
        &spec_path,
        SpecOptions {
            resource_is_pod: true,
        },
    );
    if str_of(spec, "serviceAccountName").is_empty() {
        for (vi, vol) in arr_of(spec, "volumes").iter().enumerate() {
            for (si, src) in arr_of(&vol["projected"], "sources").iter().enumerate() {
                if !src["serviceAccountToken"].is_null() {
                    let p = spec_path
                        .child("volumes")
                        .index(vi)
                        .child("projected")
                        .child("sources")
                        .index(si);
                    errs.push(FieldError::forbidden(
                        &p.child("serviceAccountToken"),
                        "must not be specified when serviceAccountName is not set",
                    ));
                }
            }
        }
    }
    for list in ["containers", "initContainers"] {
        for (i, c) in arr_of(spec, list).iter().enumerate() {
            let image = str_of(c, "image");
            if image.len() != image.trim().len() {
                errs.push(FieldError::invalid(
                    &spec_path.child(list).index(i).child("image"),
                    image,
                    "must not have leading or trailing whitespace",
                ));
            }
        }
    }
    errs
}

/// `ValidatePodTemplateSpec`: template labels and annotations, then the pod spec.
pub fn pod_template_spec(template: &Value, path: &Path) -> Errors {
    let mut errs = meta::labels(&template["metadata"]["labels"], &path.child("labels"));
    errs.extend(meta::annotations(
        &template["metadata"]["annotations"],
        &path.child("annotations"),
    ));
    errs.extend(pod_spec(
        &template["spec"],
        &path.child("spec"),
        SpecOptions {
            resource_is_pod: false,
        },
    ));
    if !arr_of(&template["spec"], "ephemeralContainers").is_empty() {
        errs.push(FieldError::forbidden(
            &path.child("spec").child("ephemeralContainers"),
            "ephemeral containers not allowed in pod template",
        ));
    }
    errs
}

/// The template checks shared by ReplicaSets, Deployments, DaemonSets, StatefulSets and
/// ReplicationControllers: the selector matches the template labels, the template is a
/// valid pod template, and the restart policy is `Always`.
pub fn workload_template(
    template: &Value,
    selector_matches: Option<bool>,
    path: &Path,
    kind: &str,
) -> Errors {
    let mut errs = Errors::new();
    if template.is_null() {
        errs.push(FieldError::required(path, ""));
        return errs;
    }
    let labels = &template["metadata"]["labels"];
    if selector_matches == Some(false) {
        errs.push(FieldError::invalid_go(
            &path.child("metadata").child("labels"),
            meta::go_string_map(labels),
            "`selector` does not match template `labels`",
        ));
    }
    errs.extend(pod_template_spec(template, path));
    let restart = str_of(&template["spec"], "restartPolicy");
    if restart != "Always" {
        errs.push(FieldError::not_supported(
            &path.child("spec").child("restartPolicy"),
            restart,
            &["Always"],
        ));
    }
    if !template["spec"]["activeDeadlineSeconds"].is_null() {
        errs.push(FieldError::forbidden(
            &path.child("spec").child("activeDeadlineSeconds"),
            format!("activeDeadlineSeconds in {kind} is not Supported"),
        ));
    }
    errs
}

/// `ValidatePodSpec`.
pub fn pod_spec(spec: &Value, path: &Path, opts: SpecOptions) -> Errors {
    let mut errs = Errors::new();
    if spec["terminationGracePeriodSeconds"].is_null() {
        errs.push(FieldError::required(
            &path.child("terminationGracePeriodSeconds"),
            "",
        ));
    }
    let volumes = volumes(arr_of(spec, "volumes"), &path.child("volumes"), &mut errs);
    errs.extend(containers(spec, &volumes, &path.child("containers")));
    errs.extend(init_containers(
        spec,
        &volumes,
        &path.child("initContainers"),
    ));
    errs.extend(host_network_deps(spec, path, opts));
    let restart = str_of(spec, "restartPolicy");
    match restart {
        "Always" | "OnFailure" | "Never" => {}
        "" => errs.push(FieldError::required(&path.child("restartPolicy"), "")),
        _ => errs.push(FieldError::not_supported(
            &path.child("restartPolicy"),
            restart,
            &["Always", "OnFailure", "Never"],
        )),
    }
    let dns = str_of(spec, "dnsPolicy");
    match dns {
        "ClusterFirstWithHostNet" | "ClusterFirst" | "Default" | "None" => {}
        "" => errs.push(FieldError::required(&path.child("dnsPolicy"), "")),
        _ => errs.push(FieldError::not_supported(
            &path.child("dnsPolicy"),
            dns,
            &["ClusterFirstWithHostNet", "ClusterFirst", "Default", "None"],
        )),
    }
    errs.extend(meta::labels(
        &spec["nodeSelector"],
        &path.child("nodeSelector"),
    ));
    if dns == "None" && spec["dnsConfig"].is_null() {
        errs.push(FieldError::required(
            &path.child("dnsConfig"),
            "must provide `dnsConfig` when `dnsPolicy` is None",
        ));
    }
    let sa = str_of(spec, "serviceAccountName");
    if !sa.is_empty() {
        for msg in names::dns_subdomain_name(sa, false) {
            errs.push(FieldError::invalid(
                &path.child("serviceAccountName"),
                sa,
                msg,
            ));
        }
    }
    let node = str_of(spec, "nodeName");
    if !node.is_empty() {
        for msg in names::dns_subdomain_name(node, false) {
            errs.push(FieldError::invalid(&path.child("nodeName"), node, msg));
        }
    }
    if let Some(ads) = int_of(spec, "activeDeadlineSeconds") {
        if !(1..=MAX_INT32).contains(&ads) {
            errs.push(FieldError::invalid(
                &path.child("activeDeadlineSeconds"),
                ads,
                inclusive_range_error(1, MAX_INT32),
            ));
        }
    }
    for f in ["hostname", "subdomain"] {
        let v = str_of(spec, f);
        if !v.is_empty() {
            for msg in names::is_dns1123_label(v) {
                errs.push(FieldError::invalid(&path.child(f), v, msg));
            }
        }
    }
    errs.extend(tolerations(
        arr_of(spec, "tolerations"),
        &path.child("tolerations"),
    ));
    let pc = str_of(spec, "priorityClassName");
    if !pc.is_empty() {
        for msg in names::dns_subdomain_name(pc, false) {
            errs.push(FieldError::invalid(
                &path.child("priorityClassName"),
                pc,
                msg,
            ));
        }
    }
    if let Some(p) = spec["preemptionPolicy"].as_str() {
        if !matches!(p, "PreemptLowerPriority" | "Never") {
            errs.push(FieldError::not_supported(
                &path.child("preemptionPolicy"),
                p,
                &["PreemptLowerPriority", "Never"],
            ));
        }
    }
    if let Some(os) = spec["os"]["name"].as_str() {
        if !matches!(os, "linux" | "windows") {
            errs.push(FieldError::not_supported(
                &path.child("os").child("name"),
                os,
                &["linux", "windows"],
            ));
        }
    }
    errs
}

/// `ValidateVolumes`: returns the names of the valid volumes (what mounts may refer to).
fn volumes(list: &[Value], path: &Path, errs: &mut Errors) -> BTreeMap<String, Value> {
    let mut valid = BTreeMap::new();
    for (i, vol) in list.iter().enumerate() {
        let p = path.index(i);
        let name = str_of(vol, "name");
        let mut el = volume_source(vol, &p);
        if name.is_empty() {
            el.push(FieldError::required(&p.child("name"), ""));
        } else {
            for msg in names::is_dns1123_label(name) {
                el.push(FieldError::invalid(&p.child("name"), name, msg));
            }
        }
        if valid.contains_key(name) {
            el.push(FieldError::duplicate(&p.child("name"), name));
        }
        if el.is_empty() {
            valid.insert(name.to_owned(), vol.clone());
        } else {
            errs.extend(el);
        }
    }
    valid
}

fn volume_source(vol: &Value, path: &Path) -> Errors {
    let mut errs = Errors::new();
    let mut count = 0;
    for src in VOLUME_SOURCES {
        let v = &vol[src];
        if v.is_null() {
            continue;
        }
        if count > 0 {
            errs.push(FieldError::forbidden(
                &path.child(src),
                "may not specify more than 1 volume type",
            ));
            continue;
        }
        count += 1;
        let p = path.child(src);
        let required = match src {
            "hostPath" => Some("path"),
            "secret" => Some("secretName"),
            "persistentVolumeClaim" => Some("claimName"),
            "nfs" => Some("server"),
            "gitRepo" => Some("repository"),
            _ => None,
        };
        if let Some(f) = required {
            if str_of(v, f).is_empty() {
                errs.push(FieldError::required(&p.child(f), ""));
            }
        }
        if src == "configMap" && str_of(v, "name").is_empty() {
            errs.push(FieldError::required(&p.child("name"), ""));
        }
        if let Some(mode) = int_of(v, "defaultMode") {
            if !(0..=0o777).contains(&mode) {
                errs.push(FieldError::invalid(
                    &p.child("defaultMode"),
                    mode,
                    "must be a number between 0 and 0777 (octal), both inclusive",
                ));
            }
        }
    }
    if count == 0 {
        errs.push(FieldError::required(path, "must specify a volume type"));
    }
    errs
}

/// `validateContainers`.
fn containers(spec: &Value, volumes: &BTreeMap<String, Value>, path: &Path) -> Errors {
    let list = arr_of(spec, "containers");
    let mut errs = Errors::new();
    if list.is_empty() {
        errs.push(FieldError::required(path, ""));
        return errs;
    }
    let mut names = HashSet::new();
    for (i, c) in list.iter().enumerate() {
        let p = path.index(i);
        errs.extend(container_common(c, volumes, &p));
        let name = str_of(c, "name");
        if !names.insert(name) {
            errs.push(FieldError::duplicate(&p.child("name"), name));
        }
        if !c["lifecycle"].is_null() {
            errs.extend(lifecycle(&c["lifecycle"], &p.child("lifecycle")));
        }
        errs.extend(probes(c, &p, true));
        if !c["restartPolicy"].is_null() {
            errs.push(FieldError::forbidden(
                &p.child("restartPolicy"),
                "may not be set for non-init containers",
            ));
        }
    }
    errs.extend(host_port_conflicts(list, path));
    errs
}

/// `validateInitContainers`: names unique across regular and init containers.
fn init_containers(spec: &Value, volumes: &BTreeMap<String, Value>, path: &Path) -> Errors {
    let mut errs = Errors::new();
    let mut names: HashSet<&str> = arr_of(spec, "containers")
        .iter()
        .map(|c| str_of(c, "name"))
        .collect();
    for (i, c) in arr_of(spec, "initContainers").iter().enumerate() {
        let p = path.index(i);
        errs.extend(container_common(c, volumes, &p));
        let restart = c["restartPolicy"].as_str();
        if let Some(r) = restart {
            if r != "Always" {
                errs.push(FieldError::not_supported(
                    &p.child("restartPolicy"),
                    r,
                    &["Always"],
                ));
            }
        }
        let name = str_of(c, "name");
        if names.contains(name) {
            errs.push(FieldError::duplicate(&p.child("name"), name));
        } else if !name.is_empty() {
            names.insert(name);
        }
        errs.extend(host_port_conflicts(std::slice::from_ref(c), path));
        if restart == Some("Always") {
            if !c["lifecycle"].is_null() {
                errs.extend(lifecycle(&c["lifecycle"], &p.child("lifecycle")));
            }
            errs.extend(probes(c, &p, true));
        } else {
            for f in [
                "lifecycle",
                "livenessProbe",
                "readinessProbe",
                "startupProbe",
            ] {
                if !c[f].is_null() {
                    errs.push(FieldError::forbidden(
                        &p.child(f),
                        "may not be set for init containers without restartPolicy=Always",
                    ));
                }
            }
        }
    }
    errs
}

fn host_network_deps(spec: &Value, path: &Path, opts: SpecOptions) -> Errors {
    let mut errs = Errors::new();
    if spec["hostNetwork"].as_bool() != Some(true) {
        return errs;
    }
    for (i, c) in arr_of(spec, "containers").iter().enumerate() {
        for (j, port) in arr_of(c, "ports").iter().enumerate() {
            let (hp, cp) = (
                int_of(port, "hostPort").unwrap_or(0),
                int_of(port, "containerPort").unwrap_or(0),
            );
            if (opts.resource_is_pod || hp != 0) && hp != cp {
                errs.push(FieldError::invalid(
                    &path
                        .child("containers")
                        .index(i)
                        .child("ports")
                        .index(j)
                        .child("hostPort"),
                    hp,
                    "must match `containerPort` when `hostNetwork` is true",
                ));
            }
        }
    }
    errs
}

/// `ValidateTolerations`.
pub(super) fn tolerations(list: &[Value], path: &Path) -> Errors {
    let mut errs = Errors::new();
    for (i, t) in list.iter().enumerate() {
        let p = path.index(i);
        let (key, op, value, effect) = (
            str_of(t, "key"),
            str_of(t, "operator"),
            str_of(t, "value"),
            str_of(t, "effect"),
        );
        if !key.is_empty() {
            errs.extend(meta::label_name(key, &p.child("key")));
        }
        if key.is_empty() && op != "Exists" {
            errs.push(FieldError::invalid(
                &p.child("operator"),
                op,
                "operator must be Exists when `key` is empty, which means \"match all values and all keys\"",
            ));
        }
        if !t["tolerationSeconds"].is_null() && effect != "NoExecute" {
            errs.push(FieldError::invalid(
                &p.child("effect"),
                effect,
                "effect must be 'NoExecute' when `tolerationSeconds` is set",
            ));
        }
        match op {
            "Equal" | "" => {
                let msgs = names::is_valid_label_value(value);
                if !msgs.is_empty() {
                    errs.push(FieldError::invalid(
                        &p.child("operator"),
                        value,
                        msgs.join(";"),
                    ));
                }
            }
            "Exists" if !value.is_empty() => errs.push(FieldError::invalid(
                &p.child("operator"),
                value,
                "value must be empty when `operator` is 'Exists'",
            )),
            "Exists" => {}
            _ => errs.push(FieldError::not_supported(
                &p.child("operator"),
                op,
                &["Equal", "Exists"],
            )),
        }
        if !effect.is_empty() && !matches!(effect, "NoSchedule" | "PreferNoSchedule" | "NoExecute")
        {
            errs.push(FieldError::not_supported(
                &p.child("effect"),
                effect,
                &["NoSchedule", "PreferNoSchedule", "NoExecute"],
            ));
        }
    }
    errs
}
