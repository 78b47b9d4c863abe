//! Defaulting against upstream's recorded answers (`testdata/`, copied from
//! `upstream-reference/02-defaulting`: kube-apiserver v1.26.1, `?dryRun=All`), plus decode
//! errors and idempotence.

use std::path::{Path, PathBuf};

use serde_json::{json, Value};

use super::{apply, DefaultsError};
use crate::resources::{self, ResourceInfo};

fn testdata() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src/defaults/testdata")
}

fn read_json(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("read {path:?}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("parse {path:?}: {e}"))
}

fn info_for(obj: &Value) -> &'static ResourceInfo {
    let api_version = obj["apiVersion"].as_str().expect("apiVersion is a string");
    let kind = obj["kind"].as_str().expect("kind is a string");
    let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
    resources::RESOURCES
        .iter()
        .find(|r| r.group == group && r.version == version && r.kind == kind)
        .unwrap_or_else(|| panic!("{api_version} {kind} is not served"))
}

/// Removes the value at a `/`-separated path, if present: `*` matches every list item and `~`
/// stands for a `/` inside a key (label keys).
fn remove(value: &mut Value, path: &str) {
    let mut parts = path.splitn(2, '/');
    let head = parts.next().unwrap_or_default().replace('~', "/");
    let head = head.as_str();
    let rest = parts.next();
    match (value, rest) {
        (Value::Array(items), _) if head == "*" => {
            for item in items {
                if let Some(rest) = rest {
                    remove(item, rest);
                }
            }
        }
        (Value::Object(map), None) => {
            map.shift_remove(head);
        }
        (Value::Object(map), Some(rest)) => {
            if let Some(child) = map.get_mut(head) {
                remove(child, rest);
            }
        }
        _ => {}
    }
}

/// Drops every `"creationTimestamp": null`: Go prints the zero time of embedded template
/// metadata; k8s-openapi omits an unset timestamp.
fn drop_null_timestamps(value: &mut Value) {
    match value {
        Value::Object(map) => {
            if map.get("creationTimestamp") == Some(&Value::Null) {
                map.shift_remove("creationTimestamp");
            }
            map.values_mut().for_each(drop_null_timestamps);
        }
        Value::Array(items) => items.iter_mut().for_each(drop_null_timestamps),
        _ => {}
    }
}

/// Server-set metadata, not defaulting: compared on neither side.
const SERVER_METADATA: &[&str] = &[
    "metadata/uid",
    "metadata/resourceVersion",
    "metadata/creationTimestamp",
    "metadata/generation",
    "metadata/managedFields",
];

/// Fields in upstream's answer set by parts of the API server other than defaulting.
fn upstream_exclusions(name: &str) -> &'static [&'static str] {
    match name {
        // ServiceAccount admission: the token volume, its mounts and the account name;
        // DefaultTolerationSeconds admission: the two NoExecute tolerations;
        // Priority admission: priority and preemptionPolicy.
        "pod" => &[
            "spec/volumes",
            "spec/containers/*/volumeMounts",
            "spec/serviceAccountName",
            "spec/serviceAccount",
            "spec/tolerations",
            "spec/priority",
            "spec/preemptionPolicy",
        ],
        // ClusterIP and NodePort allocation (dry-run placeholders 10.0.0.0 and 32769).
        "service-clusterip" => &["spec/clusterIP", "spec/clusterIPs"],
        "service-nodeport" => &["spec/clusterIP", "spec/clusterIPs", "spec/ports/*/nodePort"],
        // StorageObjectInUseProtection admission.
        "persistentvolume-hostpath" | "persistentvolumeclaim" => &["metadata/finalizers"],
        // v1.26 only: the job-tracking annotation went away with JobTrackingWithFinalizers GA.
        "job" => &["metadata/annotations"],
        // Go prints the nil currentMetrics slice as null; k8s-openapi omits it.
        "horizontalpodautoscaler" => &["status/currentMetrics"],
        // NetworkPolicyStatus was removed from the API after v1.26 (k8s-openapi v1_33 has none).
        "networkpolicy" => &["status"],
        _ => &[],
    }
}

/// Defaults that v1.27–v1.33 add and the v1.26 recording lacks: dropped from our answer.
fn newer_defaults(name: &str, ours: &mut Value) {
    match name {
        "job" => {
            // JobPodReplacementPolicy (beta, on since v1.29) and manualSelector: false.
            remove(ours, "spec/podReplacementPolicy");
            remove(ours, "spec/manualSelector");
            // The batch.kubernetes.io/ labels (v1.27); the selector moved to the prefixed key.
            for labels in ["metadata/labels", "spec/template/metadata/labels"] {
                remove(ours, &format!("{labels}/batch.kubernetes.io~job-name"));
                remove(
                    ours,
                    &format!("{labels}/batch.kubernetes.io~controller-uid"),
                );
            }
            let selector = &mut ours["spec"]["selector"]["matchLabels"];
            if let Some(map) = selector.as_object_mut() {
                if let Some(uid) = map.shift_remove("batch.kubernetes.io/controller-uid") {
                    map.insert("controller-uid".to_owned(), uid);
                }
            }
        }
        // StatefulSetAutoDeletePVC (beta, on since v1.27).
        "statefulset" => remove(ours, "spec/persistentVolumeClaimRetentionPolicy"),
        _ => {}
    }
}

fn recorded_names() -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(testdata())
        .expect("testdata exists")
        .filter_map(|entry| {
            let file = entry.ok()?.file_name().into_string().ok()?;
            file.strip_suffix(".request.json").map(str::to_owned)
        })
        .collect();
    names.sort();
    names
}

/// What the API server has done before calling [`apply`] on create: the namespace from the
/// URL and the uid (the Job selector needs it).
fn request_as_the_server_passes_it(name: &str, response: &Value) -> Value {
    let mut request = read_json(&testdata().join(format!("{name}.request.json")));
    for key in ["namespace", "uid"] {
        if let Some(value) = response["metadata"].get(key) {
            request["metadata"][key] = value.clone();
        }
    }
    request
}

#[test]
fn recorded_upstream_defaults_are_reproduced() {
    let names = recorded_names();
    assert_eq!(names.len(), 28, "every recorded kind is checked: {names:?}");
    let mut failures = Vec::new();
    for name in &names {
        let mut expected = read_json(&testdata().join(format!("{name}.response.json")));
        let mut ours = request_as_the_server_passes_it(name, &expected);
        apply(info_for(&ours), &mut ours).unwrap_or_else(|e| panic!("{name}: {e}"));
        for path in SERVER_METADATA {
            remove(&mut ours, path);
            remove(&mut expected, path);
        }
        for path in upstream_exclusions(name) {
            remove(&mut expected, path);
        }
        drop_null_timestamps(&mut expected);
        newer_defaults(name, &mut ours);
        if ours != expected {
            failures.push(format!(
                "{name}:\n ours:     {}\n upstream: {}",
                serde_json::to_string(&ours).unwrap_or_default(),
                serde_json::to_string(&expected).unwrap_or_default()
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} kinds differ:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn defaulting_is_idempotent() {
    for name in recorded_names() {
        let expected = read_json(&testdata().join(format!("{name}.response.json")));
        let mut once = request_as_the_server_passes_it(&name, &expected);
        let info = info_for(&once);
        apply(info, &mut once).unwrap_or_else(|e| panic!("{name}: {e}"));
        let mut twice = once.clone();
        apply(info, &mut twice).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(once, twice, "{name}: a second pass changed the object");
    }
}

#[test]
fn the_removal_helper_reaches_label_keys_with_slashes() {
    let mut value =
        json!({"metadata": {"labels": {"batch.kubernetes.io/job-name": "pi", "job-name": "pi"}}});
    remove(&mut value, "metadata/labels/batch.kubernetes.io~job-name");
    assert_eq!(value, json!({"metadata": {"labels": {"job-name": "pi"}}}));
}

fn pod_info() -> &'static ResourceInfo {
    resources::find("", "v1", "pods").expect("pods are served")
}

#[test]
fn a_string_where_an_int_belongs_is_a_decode_error_with_its_path() {
    let mut body = json!({
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "web"},
        "spec": {"containers": [{"name": "web", "image": "nginx", "ports": [{"containerPort": "80"}]}]}
    });
    let err = apply(pod_info(), &mut body).expect_err("containerPort must be an integer");
    match &err {
        DefaultsError::Decode { kind, path, .. } => {
            assert_eq!(*kind, "Pod");
            assert_eq!(path, "spec.containers[0].ports[0].containerPort");
        }
        other => panic!("unexpected error {other:?}"),
    }
    let message = err.to_string();
    assert!(
        message.starts_with("Pod in version \"v1\" cannot be handled as a Pod: spec.containers[0]"),
        "{message}"
    );
}

#[test]
fn a_body_of_another_kind_is_rejected() {
    let mut body = json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"}});
    assert!(matches!(
        apply(pod_info(), &mut body),
        Err(DefaultsError::Decode { .. })
    ));
}

#[test]
fn unknown_fields_are_dropped_and_type_meta_is_kept() {
    let mut body = json!({
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "web", "bogus": 1},
        "spec": {"replica": 3, "containers": [{"name": "web", "image": "nginx:1.25", "bogus": true}]}
    });
    apply(pod_info(), &mut body).expect("a valid pod");
    assert_eq!(body["apiVersion"], "v1");
    assert_eq!(body["kind"], "Pod");
    assert_eq!(body["metadata"].get("bogus"), None);
    assert_eq!(body["spec"].get("replica"), None);
    assert_eq!(body["spec"]["containers"][0].get("bogus"), None);
    assert_eq!(
        body["spec"]["containers"][0]["imagePullPolicy"],
        "IfNotPresent"
    );
}

#[test]
fn custom_resources_are_left_alone() {
    let info = ResourceInfo {
        group: "example.com",
        kind: "Widget",
        ..*resources::find("", "v1", "configmaps").expect("configmaps are served")
    };
    let mut body = json!({"apiVersion": "example.com/v1", "kind": "Widget", "spec": {"size": "x"}});
    let before = body.clone();
    apply(&info, &mut body).expect("no decoding for custom resources");
    assert_eq!(body, before);
}

#[test]
fn updates_with_a_status_get_no_create_time_fields() {
    let mut body = json!({
        "apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "team-a"},
        "spec": {"finalizers": []}, "status": {"phase": "Terminating"}
    });
    let info = resources::find("", "v1", "namespaces").expect("namespaces are served");
    apply(info, &mut body).expect("a valid namespace");
    assert_eq!(
        body["spec"]["finalizers"],
        json!([]),
        "finalize must not re-add kubernetes"
    );
    assert_eq!(body["status"]["phase"], "Terminating");
    assert_eq!(
        body["metadata"]["labels"]["kubernetes.io/metadata.name"],
        "team-a"
    );
}

#[test]
fn replication_controllers_take_selector_and_labels_from_the_template() {
    let mut body = json!({
        "apiVersion": "v1", "kind": "ReplicationController", "metadata": {"name": "rc"},
        "spec": {"template": {"metadata": {"labels": {"app": "web"}},
                 "spec": {"containers": [{"name": "web", "image": "nginx"}]}}}
    });
    let info = resources::find("", "v1", "replicationcontrollers").expect("rcs are served");
    apply(info, &mut body).expect("a valid rc");
    assert_eq!(body["spec"]["selector"], json!({"app": "web"}));
    assert_eq!(body["metadata"]["labels"], json!({"app": "web"}));
    assert_eq!(body["spec"]["replicas"], 1);
    assert_eq!(
        body["spec"]["template"]["spec"]["dnsPolicy"],
        "ClusterFirst"
    );
}

#[test]
fn secret_string_data_is_merged_into_data() {
    let mut body = json!({
        "apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"},
        "data": {"a": "b2xk", "b": "Yg=="}, "stringData": {"a": "new"}
    });
    let info = resources::find("", "v1", "secrets").expect("secrets are served");
    apply(info, &mut body).expect("a valid secret");
    assert_eq!(body["data"], json!({"a": "bmV3", "b": "Yg=="}));
    assert_eq!(body.get("stringData"), None);
    assert_eq!(body["type"], "Opaque");
}
