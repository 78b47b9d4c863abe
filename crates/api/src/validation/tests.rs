//! Validation against upstream's recorded 422 bodies (`testdata/`, copied from
//! `upstream-reference/03-errors`), the objects upstream accepted (the defaulting test data),
//! and per-resource cases.

use std::path::{Path as FsPath, PathBuf};

use serde_json::{json, Value};

use super::*;
use crate::resources::{self, find_kind};

fn read_json(path: &FsPath) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("read {path:?}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("parse {path:?}: {e}"))
}

fn testdata(name: &str) -> PathBuf {
    FsPath::new(env!("CARGO_MANIFEST_DIR"))
        .join("src/validation/testdata")
        .join(name)
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

/// The object as the registry hands it to validation on create: namespaced, with a uid,
/// defaulted.
fn prepared(mut obj: Value) -> Value {
    let info = info_for(&obj);
    if info.namespaced() && obj["metadata"]["namespace"].is_null() {
        obj["metadata"]["namespace"] = "default".into();
    }
    obj["metadata"]["uid"] = "6a3c2e1e-0000-4000-8000-000000000001".into();
    crate::defaults::apply(info, &mut obj).expect("defaults apply");
    obj
}

fn causes(errs: &[FieldError]) -> Value {
    errs.iter()
        .map(|e| json!({"reason": e.reason(), "message": e.message(), "field": e.field}))
        .collect()
}

fn messages(errs: &[FieldError]) -> Vec<String> {
    errs.iter().map(ToString::to_string).collect()
}

fn check(obj: &Value) -> Vec<String> {
    messages(&validate(info_for(obj), obj, None))
}

fn check_update(new: &Value, old: &Value) -> Vec<String> {
    messages(&validate(info_for(new), new, Some(old)))
}

#[test]
fn recorded_create_errors_are_reproduced() {
    for name in [
        "create-pod-duplicate-container-name-and-bad-port",
        "create-deployment-selector-mismatch",
        "create-pod-invalid-name",
    ] {
        let obj = prepared(read_json(&testdata(&format!("{name}.request.json"))));
        let want = read_json(&testdata(&format!("{name}.response.json")));
        let errs = validate(info_for(&obj), &obj, None);
        assert_eq!(causes(&errs), want["details"]["causes"], "{name}");
    }
}

#[test]
fn recorded_pod_command_change_is_forbidden() {
    let old = prepared(json!({
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "immutable-demo"},
        "spec": {"containers": [{"name": "web", "image": "nginx"}]}
    }));
    let patch = read_json(&testdata(
        "patch-pod-container-command-immutable.request.json",
    ));
    let mut new = old.clone();
    new["spec"]["containers"][0]["command"] = patch["spec"]["containers"][0]["command"].clone();
    let errs = validate(info_for(&new), &new, Some(&old));
    let want = &read_json(&testdata(
        "patch-pod-container-command-immutable.response.json",
    ))["details"]["causes"][0];
    assert_eq!(errs.len(), 1, "{errs:?}");
    assert_eq!(errs[0].field, want["field"]);
    assert_eq!(errs[0].reason(), want["reason"]);
    // v1.33 joins the field list with "," (v1.26, recorded, used ", " and "or"); the diff
    // below the first line is go-cmp's rendering of the internal type, ours is a JSON diff.
    let message = errs[0].message();
    assert!(
        message.starts_with("Forbidden: pod updates may not change fields other than `spec.containers[*].image`,`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)\n"),
        "{message}"
    );
    assert!(message.contains("containers[0].command: nil"), "{message}");
    assert!(
        message.contains(r#"containers[0].command: []string{"sleep", "3600"}"#),
        "{message}"
    );
}

#[test]
fn recorded_config_map_over_one_mib_names_the_whole_object() {
    let cm = prepared(json!({
        "apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "over-one-mib"},
        "data": {"big": "x".repeat(1048676)}
    }));
    let errs = validate(info_for(&cm), &cm, None);
    let want = &read_json(&testdata("create-configmap-data-over-1MiB.response.json"))["details"]
        ["causes"][0];
    assert_eq!(errs.len(), 1);
    assert_eq!(errs[0].field, want["field"]);
    assert_eq!(errs[0].reason(), want["reason"]);
    // v1.33 wording (v1.26 said "must have at most 1048576 bytes")
    assert_eq!(
        errs[0].message(),
        "Too long: may not be more than 1048576 bytes"
    );
}

/// Every object upstream accepted (the defaulting captures) validates, on create and as an
/// unchanged update.
#[test]
fn objects_upstream_accepted_are_valid() {
    let dir = FsPath::new(env!("CARGO_MANIFEST_DIR")).join("src/defaults/testdata");
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).expect("testdata exists") {
        let path = entry.expect("dir entry").path();
        if !path.to_string_lossy().ends_with(".response.json") {
            continue;
        }
        let obj = read_json(&path);
        assert_eq!(check(&obj), Vec::<String>::new(), "{path:?}");
        assert_eq!(
            check_update(&obj, &obj),
            Vec::<String>::new(),
            "{path:?} as update"
        );
        n += 1;
    }
    assert!(n >= 25, "only {n} recorded objects");
}

fn pod(spec: Value) -> Value {
    prepared(json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": spec}))
}

#[test]
fn pod_required_fields_and_enums() {
    assert_eq!(
        check(&pod(json!({"containers": []}))),
        ["spec.containers: Required value"]
    );
    assert_eq!(
        check(&pod(json!({"containers": [{"name": "web"}]}))),
        ["spec.containers[0].image: Required value"]
    );
    let bad = pod(json!({
        "restartPolicy": "Sometimes",
        "dnsPolicy": "Cluster",
        "containers": [{"name": "Web_1", "image": "nginx", "imagePullPolicy": "Maybe"}]
    }));
    assert_eq!(
        check(&bad),
        [
            "spec.containers[0].name: Invalid value: \"Web_1\": a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')",
            "spec.containers[0].imagePullPolicy: Unsupported value: \"Maybe\": supported values: \"Always\", \"IfNotPresent\", \"Never\"",
            "spec.restartPolicy: Unsupported value: \"Sometimes\": supported values: \"Always\", \"OnFailure\", \"Never\"",
            "spec.dnsPolicy: Unsupported value: \"Cluster\": supported values: \"ClusterFirstWithHostNet\", \"ClusterFirst\", \"Default\", \"None\"",
        ]
    );
}

#[test]
fn container_names_are_unique_across_init_containers() {
    let p = pod(json!({
        "initContainers": [{"name": "web", "image": "busybox"}],
        "containers": [{"name": "web", "image": "nginx"}]
    }));
    assert_eq!(
        check(&p),
        ["spec.initContainers[0].name: Duplicate value: \"web\""]
    );
}

#[test]
fn ports_volumes_and_mounts() {
    let p = pod(json!({
        "volumes": [{"name": "data", "emptyDir": {}}, {"name": "data", "emptyDir": {}}, {"name": "Bad"}],
        "containers": [{
            "name": "web", "image": "nginx",
            "ports": [{"name": "http-web-server-port", "containerPort": 80}, {"containerPort": 0, "protocol": "ICMP"}],
            "volumeMounts": [{"name": "missing", "mountPath": "/a"}]
        }]
    }));
    assert_eq!(
        check(&p),
        [
            "spec.volumes[1].name: Duplicate value: \"data\"",
            "spec.volumes[2].name: Invalid value: \"Bad\": a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')",
            "spec.containers[0].ports[0].name: Invalid value: \"http-web-server-port\": must be no more than 15 characters",
            "spec.containers[0].ports[1].containerPort: Required value",
            "spec.containers[0].ports[1].protocol: Unsupported value: \"ICMP\": supported values: \"SCTP\", \"TCP\", \"UDP\"",
            "spec.containers[0].volumeMounts[0].name: Not found: \"missing\"",
        ]
    );
}

#[test]
fn resource_requests_may_not_exceed_limits_and_must_parse() {
    let p = pod(json!({"containers": [{
        "name": "web", "image": "nginx",
        "resources": {"limits": {"cpu": "1", "memory": "1Gi"}, "requests": {"cpu": "2", "memory": "1024Mi"}}
    }]}));
    assert_eq!(
        check(&p),
        ["spec.containers[0].resources.requests: Invalid value: \"2\": must be less than or equal to cpu limit of 1"]
    );
    let p = pod(json!({"containers": [{
        "name": "web", "image": "nginx",
        "resources": {"requests": {"cpu": "lots", "memory": "-1", "gpu": "1"}}
    }]}));
    assert_eq!(
        check(&p),
        [
            "spec.containers[0].resources.requests[cpu]: Invalid value: \"lots\": quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'",
            "spec.containers[0].resources.requests[gpu]: Invalid value: \"gpu\": must be a standard resource for containers",
            "spec.containers[0].resources.requests[memory]: Invalid value: \"-1\": must be greater than or equal to 0",
        ]
    );
}

#[test]
fn pod_updates_allow_images_and_deadlines_only() {
    let old = pod(
        json!({"containers": [{"name": "web", "image": "nginx:1.25"}], "activeDeadlineSeconds": 100}),
    );
    let mut new = old.clone();
    new["spec"]["containers"][0]["image"] = "nginx:1.26".into();
    new["spec"]["activeDeadlineSeconds"] = 50.into();
    new["spec"]["tolerations"] =
        json!([{"key": "k", "operator": "Exists", "effect": "NoSchedule"}]);
    assert_eq!(check_update(&new, &old), Vec::<String>::new());

    new["spec"]["activeDeadlineSeconds"] = 200.into();
    assert_eq!(
        check_update(&new, &old),
        ["spec.activeDeadlineSeconds: Invalid value: 200: must be less than or equal to previous value"]
    );

    let mut more = old.clone();
    more["spec"]["containers"]
        .as_array_mut()
        .unwrap()
        .push(json!({"name": "side", "image": "busybox"}));
    let more = prepared(more);
    assert_eq!(
        check_update(&more, &old),
        ["spec.containers: Forbidden: pod updates may not add or remove containers"]
    );

    let mut tol_old = old.clone();
    tol_old["spec"]["tolerations"] =
        json!([{"key": "k", "operator": "Exists", "effect": "NoSchedule"}]);
    let mut tol_new = tol_old.clone();
    tol_new["spec"]["tolerations"] = json!([]);
    assert_eq!(
        check_update(&tol_new, &tol_old),
        ["spec.tolerations: Forbidden: existing toleration can not be modified except its tolerationSeconds"]
    );
}

fn service(spec: Value) -> Value {
    prepared(
        json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"}, "spec": spec}),
    )
}

#[test]
fn service_ports_and_types() {
    assert_eq!(
        check(&service(json!({"ports": [{"port": 70000}]}))),
        [
            "spec.ports[0].port: Invalid value: 70000: must be between 1 and 65535, inclusive",
            "spec.ports[0].targetPort: Invalid value: 70000: must be between 1 and 65535, inclusive",
        ]
    );
    assert_eq!(
        check(&service(json!({"selector": {"app": "web"}}))),
        ["spec.ports: Required value"]
    );
    assert_eq!(
        check(&service(json!({"ports": [{"port": 80}, {"port": 80}]}))),
        [
            "spec.ports[0].name: Required value",
            "spec.ports[1].name: Required value",
            "spec.ports[1]: Duplicate value: core.ServicePort{Name:\"\", Protocol:\"TCP\", AppProtocol:(*string)(nil), Port:80, TargetPort:intstr.IntOrString{Type:0, IntVal:0, StrVal:\"\"}, NodePort:0}",
        ]
    );
    let mut bad_type = service(json!({"ports": [{"port": 80}]}));
    bad_type["spec"]["type"] = "Magic".into();
    let errs = check(&bad_type);
    assert!(
        errs.contains(&"spec.type: Unsupported value: \"Magic\": supported values: \"ClusterIP\", \"ExternalName\", \"LoadBalancer\", \"NodePort\"".to_owned()),
        "{errs:?}"
    );
    let svc = prepared(
        json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "1web"}, "spec": {"ports": [{"port": 80}]}}),
    );
    assert_eq!(
        check(&svc),
        ["metadata.name: Invalid value: \"1web\": a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')"]
    );
}

#[test]
fn service_cluster_ip_is_immutable() {
    let mut old = service(json!({"ports": [{"port": 80}]}));
    old["spec"]["clusterIP"] = "10.43.0.20".into();
    old["spec"]["clusterIPs"] = json!(["10.43.0.20"]);
    let mut new = old.clone();
    new["spec"]["clusterIP"] = "10.43.0.21".into();
    new["spec"]["clusterIPs"] = json!(["10.43.0.21"]);
    assert_eq!(
        check_update(&new, &old),
        ["spec.clusterIPs[0]: Invalid value: []string{\"10.43.0.21\"}: may not change once set"]
    );
    let mut only_ip = old.clone();
    only_ip["spec"]["clusterIP"] = "10.43.0.21".into();
    assert_eq!(
        check_update(&only_ip, &old),
        ["spec.clusterIPs[0]: Invalid value: []string{\"10.43.0.21\"}: may not change once set"]
    );
    let mut ports = old.clone();
    ports["spec"]["ports"][0]["port"] = 8080.into();
    assert_eq!(check_update(&ports, &old), Vec::<String>::new());
}

fn workload(kind: &str, spec: Value) -> Value {
    let api_version = if kind == "Job" || kind == "CronJob" {
        "batch/v1"
    } else {
        "apps/v1"
    };
    prepared(
        json!({"apiVersion": api_version, "kind": kind, "metadata": {"name": "w"}, "spec": spec}),
    )
}

fn template(labels: Value) -> Value {
    json!({"metadata": {"labels": labels}, "spec": {"containers": [{"name": "web", "image": "nginx"}]}})
}

#[test]
fn statefulset_containers_may_mount_their_volume_claim_templates() {
    let mut t = template(json!({"app": "web"}));
    t["spec"]["containers"][0]["volumeMounts"] = json!([{"name": "www", "mountPath": "/data"}]);
    let mut sts = workload("StatefulSet", json!({"selector": {"matchLabels": {"app": "web"}}, "template": t}));
    assert_eq!(
        check(&sts),
        ["spec.template.spec.containers[0].volumeMounts[0].name: Not found: \"www\""]
    );
    sts["spec"]["volumeClaimTemplates"] = json!([{"metadata": {"name": "www"}, "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}}]);
    assert_eq!(check(&sts), Vec::<String>::new());
}

#[test]
fn workload_selectors_must_match_and_are_immutable() {
    for kind in ["Deployment", "ReplicaSet", "DaemonSet", "StatefulSet"] {
        let w = workload(
            kind,
            json!({"selector": {"matchLabels": {"app": "web"}}, "template": template(json!({"app": "web"}))}),
        );
        assert_eq!(check(&w), Vec::<String>::new(), "{kind}");
        let mut changed = w.clone();
        changed["spec"]["selector"] = json!({"matchLabels": {"app": "other"}});
        changed["spec"]["template"]["metadata"]["labels"] = json!({"app": "other"});
        let want = if kind == "StatefulSet" {
            "spec: Forbidden: updates to statefulset spec for fields other than 'replicas', 'ordinals', 'template', 'updateStrategy', 'revisionHistoryLimit', 'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' are forbidden"
        } else {
            "spec.selector: Invalid value: v1.LabelSelector{MatchLabels:map[string]string{\"app\":\"other\"}, MatchExpressions:[]v1.LabelSelectorRequirement(nil)}: field is immutable"
        };
        assert_eq!(check_update(&changed, &w), [want], "{kind}");
        let mut image = w.clone();
        image["spec"]["template"]["spec"]["containers"][0]["image"] = "nginx:2".into();
        assert_eq!(check_update(&image, &w), Vec::<String>::new(), "{kind}");
    }
    let d = workload(
        "Deployment",
        json!({"template": template(json!({"app": "web"}))}),
    );
    assert_eq!(
        check(&d),
        [
            "spec.selector: Required value",
            "spec.template.metadata.labels: Invalid value: map[string]string{\"app\":\"web\"}: `selector` does not match template `labels`",
        ]
    );
    let mut never = workload(
        "Deployment",
        json!({"selector": {"matchLabels": {"app": "web"}}, "template": template(json!({"app": "web"}))}),
    );
    never["spec"]["template"]["spec"]["restartPolicy"] = "Never".into();
    assert_eq!(
        check(&never),
        ["spec.template.spec.restartPolicy: Unsupported value: \"Never\": supported values: \"Always\""]
    );
    let d = workload(
        "Deployment",
        json!({"selector": {"matchLabels": {"app": "web"}}, "template": {"spec": {"containers": [{"name": "web"}]}}}),
    );
    assert_eq!(
        check(&d),
        [
            "spec.template.metadata.labels: Invalid value: map[string]string(nil): `selector` does not match template `labels`",
            "spec.template.spec.containers[0].image: Required value",
        ]
    );
}

#[test]
fn jobs_keep_selector_and_template() {
    let mut t = template(json!({"app": "batch"}));
    t["spec"]["restartPolicy"] = "Never".into();
    let job = workload("Job", json!({"template": t}));
    assert_eq!(check(&job), Vec::<String>::new(), "{job}");
    let mut image = job.clone();
    image["spec"]["template"]["spec"]["containers"][0]["image"] = "busybox".into();
    assert_eq!(
        check_update(&image, &job),
        ["spec.template: Invalid value: core.PodTemplateSpec{...}: field is immutable"]
    );
    let mut sel = job.clone();
    sel["spec"]["selector"]["matchLabels"]["extra"] = "x".into();
    sel["spec"]["template"]["metadata"]["labels"]["extra"] = "x".into();
    let errs = check_update(&sel, &job);
    assert!(
        errs[0].starts_with(
            "spec.selector: Invalid value: v1.LabelSelector{MatchLabels:map[string]string{"
        ),
        "{errs:?}"
    );
    assert!(errs[0].ends_with("field is immutable"), "{errs:?}");
    let always = workload(
        "Job",
        json!({"template": template(json!({"app": "batch"}))}),
    );
    assert_eq!(
        check(&always),
        ["spec.template.spec.restartPolicy: Unsupported value: \"Always\": supported values: \"OnFailure\", \"Never\""]
    );
}

#[test]
fn immutable_config_maps_and_secrets_keep_their_data() {
    let old = prepared(
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "immutable": true, "data": {"a": "1"}}),
    );
    let mut new = old.clone();
    new["data"]["a"] = "2".into();
    assert_eq!(
        check_update(&new, &old),
        ["data: Forbidden: field is immutable when `immutable` is set"]
    );
    new["immutable"] = false.into();
    new["data"]["a"] = "1".into();
    assert_eq!(
        check_update(&new, &old),
        ["immutable: Forbidden: field is immutable when `immutable` is set"]
    );

    let old = prepared(
        json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"}, "immutable": true, "data": {"a": "MQ=="}}),
    );
    let mut new = old.clone();
    new["data"]["a"] = "Mg==".into();
    new["type"] = "kubernetes.io/tls".into();
    assert_eq!(
        check_update(&new, &old),
        [
            "type: Invalid value: \"kubernetes.io/tls\": field is immutable",
            "data: Forbidden: field is immutable when `immutable` is set",
            "data[tls.crt]: Required value",
            "data[tls.key]: Required value",
        ]
    );
    let bad_key = prepared(
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"a/b": "1"}}),
    );
    assert_eq!(
        check(&bad_key),
        ["data[a/b]: Invalid value: \"a/b\": a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')"]
    );
}

#[test]
fn metadata_labels_annotations_finalizers_and_owners() {
    let mut cm =
        prepared(json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}}));
    cm["metadata"]["labels"] = json!({"bad key": "v", "ok": "-bad"});
    cm["metadata"]["finalizers"] = json!(["custom", "example.com/f"]);
    cm["metadata"]["ownerReferences"] =
        json!([{"apiVersion": "v1", "kind": "Pod", "name": "p", "uid": ""}]);
    assert_eq!(
        check(&cm),
        [
            "metadata.labels: Invalid value: \"bad key\": name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')",
            "metadata.labels: Invalid value: \"-bad\": a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')",
            "metadata.ownerReferences.uid: Invalid value: \"\": uid must not be empty",
            "metadata.finalizers[0]: Invalid value: \"custom\": name is neither a standard finalizer name nor is it fully qualified",
        ]
    );
    let mut big =
        prepared(json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}}));
    big["metadata"]["annotations"] = json!({"a": "x".repeat(256 * 1024)});
    assert_eq!(
        check(&big),
        ["metadata.annotations: Too long: may not be more than 262144 bytes"]
    );
    let mut gen = prepared(
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"generateName": "Web-", "name": "Web-abcde"}}),
    );
    gen["metadata"]["namespace"] = "default".into();
    let errs = check(&gen);
    assert!(
        errs[0].starts_with(
            "metadata.generateName: Invalid value: \"Web-\": a lowercase RFC 1123 subdomain"
        ),
        "{errs:?}"
    );
    assert!(
        errs[1].starts_with("metadata.name: Invalid value: \"Web-abcde\""),
        "{errs:?}"
    );
}

#[test]
fn rbac_and_networking_rules() {
    let role = prepared(json!({
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role", "metadata": {"name": "system:r"},
        "rules": [{"resources": ["pods"]}]
    }));
    assert_eq!(
        check(&role),
        [
            "rules[0].verbs: Required value: verbs must contain at least one value",
            "rules[0].apiGroups: Required value: resource rules must supply at least one api group",
        ]
    );
    let binding = prepared(json!({
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding", "metadata": {"name": "b"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "r"},
        "subjects": [{"kind": "User", "name": "alice", "apiGroup": "rbac.authorization.k8s.io"}]
    }));
    assert_eq!(check(&binding), Vec::<String>::new());
    let mut changed = binding.clone();
    changed["roleRef"]["name"] = "other".into();
    assert_eq!(
        check_update(&changed, &binding),
        ["roleRef: Invalid value: rbac.RoleRef{APIGroup:\"rbac.authorization.k8s.io\", Kind:\"Role\", Name:\"other\"}: cannot change roleRef"]
    );
    let ing = prepared(json!({
        "apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "metadata": {"name": "i"},
        "spec": {"rules": [{"http": {"paths": [{"path": "/", "pathType": "Sideways", "backend": {"service": {"name": "web", "port": {"number": 70000}}}}]}}]}
    }));
    assert_eq!(
        check(&ing),
        [
            "spec.rules[0].http.paths[0].pathType: Unsupported value: \"Sideways\": supported values: \"Exact\", \"ImplementationSpecific\", \"Prefix\"",
            "spec.rules[0].http.paths[0].backend.service.port.number: Invalid value: 70000: must be between 1 and 65535, inclusive",
        ]
    );
}

#[test]
fn messages_render_like_field_error_body() {
    let p = Path::new("spec").child("ports").index(0).child("port");
    assert_eq!(
        FieldError::invalid(&p, 70000, "x").message(),
        "Invalid value: 70000: x"
    );
    assert_eq!(FieldError::required(&p, "").message(), "Required value");
    assert_eq!(
        FieldError::required(&p, "why").message(),
        "Required value: why"
    );
    assert_eq!(
        FieldError::duplicate(&p, "web").message(),
        "Duplicate value: \"web\""
    );
    assert_eq!(FieldError::forbidden(&p, "no").message(), "Forbidden: no");
    assert_eq!(
        FieldError::too_long(&p, 63).message(),
        "Too long: may not be more than 63 bytes"
    );
    assert_eq!(
        FieldError::too_many(&p, 5, 3).message(),
        "Too many: 5: must have at most 3 items"
    );
    assert_eq!(
        FieldError::not_supported(&p, "x", &["a", "b"]).message(),
        "Unsupported value: \"x\": supported values: \"a\", \"b\""
    );
    assert_eq!(
        FieldError::invalid(&p, "a\"b\n", "d").message(),
        "Invalid value: \"a\\\"b\\n\": d"
    );
    assert_eq!(
        FieldError::invalid_omitted(&p, "d").message(),
        "Invalid value: d"
    );
    assert_eq!(
        FieldError::invalid(&p, Value::Null, "d").message(),
        "Invalid value: null: d"
    );
    assert_eq!(
        FieldError::invalid(&p, true, "d").reason(),
        "FieldValueInvalid"
    );
    assert_eq!(Path::new("data").key("a.b").to_string(), "data[a.b]");
    assert_eq!(Path::default().to_string(), "[]");
    assert!(find_kind("", "Pod").is_some());
}
