//! Field manager tests. The `upstream_*` tests replay `upstream-reference/05-patches` (one
//! Deployment through create, strategic merge patch, JSON merge patch, JSON patch and
//! server-side apply by two managers on kube-apiserver v1.26.1) and compare managedFields with
//! what upstream recorded.

use serde_json::{json, Value};

use super::*;

const DEPLOYMENT: &str = "io.k8s.api.apps.v1.Deployment";
const NOW: &str = "2030-01-01T00:00:00Z";

fn fixture(name: &str) -> Value {
    let text = match name {
        "01" => include_str!("testdata/01-create.response.json"),
        "02" => include_str!("testdata/02-strategic-merge-patch.response.json"),
        "03" => include_str!("testdata/03-json-merge-patch.response.json"),
        "04" => include_str!("testdata/04-json-patch.response.json"),
        "05" => include_str!("testdata/05-apply-manager-a.response.json"),
        "07" => include_str!("testdata/07-apply-manager-b-force.response.json"),
        "mf01" => include_str!("testdata/managedFields-after-01-create.json"),
        "mf02" => include_str!("testdata/managedFields-after-02-strategic-merge-patch.json"),
        "mf03" => include_str!("testdata/managedFields-after-03-json-merge-patch.json"),
        "mf04" => include_str!("testdata/managedFields-after-04-json-patch.json"),
        "mf05" => include_str!("testdata/managedFields-after-05-apply-manager-a.json"),
        "mf07" => include_str!("testdata/managedFields-after-07-apply-manager-b-force.json"),
        "409" => include_str!("testdata/06-apply-manager-b-conflict.response.json"),
        other => panic!("no fixture {other}"),
    };
    serde_json::from_str(text).expect("fixtures are JSON")
}

fn cx<'a>(manager: &'a str, reset: &'a [&'a [&'a str]]) -> Context<'a> {
    Context {
        defs: crate::schema::definitions(),
        type_name: DEPLOYMENT,
        api_version: "apps/v1",
        kind: "Deployment",
        manager,
        subresource: None,
        now: NOW,
        reset_fields: reset,
    }
}

const MAIN: &[&[&str]] = &[&["status"]];

/// A recorded response without managedFields.
fn object(step: &str) -> Value {
    let mut v = fixture(step);
    v["metadata"]
        .as_object_mut()
        .unwrap()
        .shift_remove("managedFields");
    v
}

/// The object as it was just before step `next`: the response of `step`, with the status and
/// annotations the deployment controller wrote in between (taken from `next`'s response), and
/// the managedFields recorded after `step`.
fn live_before(step: &str, next: &str) -> Value {
    let mut live = object(step);
    let after = object(next);
    live["status"] = after["status"].clone();
    live["metadata"]["annotations"] = after["metadata"]["annotations"].clone();
    live["metadata"]["managedFields"] = fixture(&format!("mf{step}"));
    live
}

fn entry<'v>(managed_fields: &'v Value, manager: &str) -> Option<&'v Value> {
    managed_fields
        .as_array()?
        .iter()
        .find(|e| e["manager"] == manager)
}

fn fields_of<'v>(object: &'v Value, manager: &str) -> &'v Value {
    &entry(&object["metadata"]["managedFields"], manager).unwrap_or_else(|| {
        panic!(
            "no entry for {manager} in {:#}",
            object["metadata"]["managedFields"]
        )
    })["fieldsV1"]
}

#[test]
fn create_records_the_fields_upstream_records_for_a_deployment() {
    let mut new = object("01");
    update(&cx("curl", MAIN), None, &mut new);
    let expected = entry(&fixture("mf01"), "curl").unwrap().clone();
    let got = &new["metadata"]["managedFields"];
    assert_eq!(got.as_array().unwrap().len(), 1);
    assert_eq!(got[0]["fieldsV1"], expected["fieldsV1"]);
    // Byte for byte, key order included.
    assert_eq!(
        got[0]["fieldsV1"].to_string(),
        expected["fieldsV1"].to_string()
    );
    assert_eq!(got[0]["manager"], "curl");
    assert_eq!(got[0]["operation"], "Update");
    assert_eq!(got[0]["apiVersion"], "apps/v1");
    assert_eq!(got[0]["time"], NOW);
    assert_eq!(got[0]["fieldsType"], "FieldsV1");
    assert!(got[0].get("subresource").is_none());
}

#[test]
fn fields_v1_round_trips_every_recorded_entry() {
    for step in ["mf01", "mf05", "mf07"] {
        for e in fixture(step).as_array().unwrap() {
            let set = Set::from_fields_v1(&e["fieldsV1"]).unwrap();
            assert_eq!(set.to_fields_v1().to_string(), e["fieldsV1"].to_string());
        }
    }
}

#[test]
fn upstream_patch_steps_record_the_same_managed_fields() {
    // 02: strategic merge patch changes app's image; curl already owned it.
    // 03: JSON merge patch replaces containers: sidecar and app's port are removed.
    // 04: JSON patch adds the sidecar back and a label.
    for (before, step) in [("01", "02"), ("02", "03"), ("03", "04")] {
        let live = live_before(before, step);
        let mut new = object(step);
        new["metadata"]["managedFields"] = live["metadata"]["managedFields"].clone();
        update(&cx("curl", MAIN), Some(&live), &mut new);
        let recorded = fixture(&format!("mf{step}"));
        let expected = entry(&recorded, "curl").unwrap();
        assert_eq!(
            fields_of(&new, "curl"),
            &expected["fieldsV1"],
            "step {step}"
        );
        let controller = fields_of(&new, "kube-controller-manager");
        assert_eq!(
            controller,
            &entry(
                &live["metadata"]["managedFields"],
                "kube-controller-manager"
            )
            .unwrap()["fieldsV1"]
        );
    }
}

fn apply_config(manager_a: bool) -> Value {
    if manager_a {
        json!({"apiVersion": "apps/v1", "kind": "Deployment",
               "metadata": {"name": "patch-demo", "labels": {"owner": "manager-a"}},
               "spec": {"minReadySeconds": 5}})
    } else {
        json!({"apiVersion": "apps/v1", "kind": "Deployment",
               "metadata": {"name": "patch-demo"}, "spec": {"minReadySeconds": 10}})
    }
}

#[test]
fn upstream_apply_by_two_managers_conflicts_then_forces() {
    let live = live_before("04", "05");
    let applied = apply(
        &cx("manager-a", MAIN),
        Some(&live),
        &apply_config(true),
        false,
    )
    .unwrap();
    let expected = fixture("mf05");
    for manager in ["manager-a", "curl"] {
        assert_eq!(
            fields_of(&applied, manager),
            &entry(&expected, manager).unwrap()["fieldsV1"],
            "{manager}"
        );
    }
    assert_eq!(
        applied["metadata"]["labels"],
        object("05")["metadata"]["labels"]
    );
    assert_eq!(applied["spec"], object("05")["spec"]);
    let entries = applied["metadata"]["managedFields"].as_array().unwrap();
    assert_eq!(
        entries[0]["manager"], "manager-a",
        "Apply entries come first"
    );
    assert_eq!(entries[0]["operation"], "Apply");
    assert_eq!(entries[0]["time"], NOW);

    // manager-b wants another minReadySeconds: conflict, with upstream's exact message.
    let err = apply(
        &cx("manager-b", MAIN),
        Some(&applied),
        &apply_config(false),
        false,
    )
    .unwrap_err();
    assert_eq!(err.status_code(), 409);
    assert_eq!(err.to_string(), fixture("409")["message"].as_str().unwrap());
    let Error::Conflicts(conflicts) = &err else {
        panic!("{err:?}")
    };
    let cause = &fixture("409")["details"]["causes"][0];
    assert_eq!(
        format!("conflict with {}", conflicts[0].manager),
        cause["message"].as_str().unwrap()
    );
    assert_eq!(conflicts[0].field, cause["field"].as_str().unwrap());

    // With force, manager-b takes the field.
    let forced = apply(
        &cx("manager-b", MAIN),
        Some(&applied),
        &apply_config(false),
        true,
    )
    .unwrap();
    let expected = fixture("mf07");
    for manager in ["manager-a", "manager-b", "curl"] {
        assert_eq!(
            fields_of(&forced, manager),
            &entry(&expected, manager).unwrap()["fieldsV1"],
            "{manager}"
        );
    }
    assert_eq!(forced["spec"]["minReadySeconds"], 10);
}

#[test]
fn conflicts_with_an_update_manager_name_its_api_version_and_list_every_field() {
    let mut live = object("01");
    update(&cx("kubectl-client-side-apply", MAIN), None, &mut live);
    let config = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "patch-demo"},
        "spec": {"replicas": 3, "template": {"spec": {"containers": [{"name": "app", "image": "nginx:2"}]}}}});
    let err = apply(&cx("ssa", MAIN), Some(&live), &config, false).unwrap_err();
    assert_eq!(
        err.to_string(),
        "Apply failed with 2 conflicts: conflicts with \"kubectl-client-side-apply\" using apps/v1:\n\
         - .spec.replicas\n- .spec.template.spec.containers[name=\"app\"].image"
    );
    let single = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "patch-demo"},
        "spec": {"replicas": 3}});
    let err = apply(&cx("ssa", MAIN), Some(&live), &single, false).unwrap_err();
    assert_eq!(
        err.to_string(),
        "Apply failed with 1 conflict: conflict with \"kubectl-client-side-apply\" using apps/v1: .spec.replicas"
    );
}

#[test]
fn update_by_another_manager_takes_over_changed_fields_only() {
    let mut live = object("01");
    update(&cx("curl", MAIN), None, &mut live);
    live["metadata"]["uid"] = json!("u1");
    let mut new = live.clone();
    new["spec"]["replicas"] = json!(5);
    new["spec"]["template"]["spec"]["containers"][1]["image"] = json!("busybox:2");
    update(&cx("kubectl-edit", MAIN), Some(&live), &mut new);
    let edit = fields_of(&new, "kubectl-edit");
    assert_eq!(
        edit,
        &json!({"f:spec": {"f:replicas": {}, "f:template": {"f:spec": {"f:containers": {
            "k:{\"name\":\"sidecar\"}": {"f:image": {}}}}}}})
    );
    let curl = fields_of(&new, "curl");
    assert!(curl["f:spec"].get("f:replicas").is_none());
    assert!(
        curl["f:spec"]["f:template"]["f:spec"]["f:containers"]["k:{\"name\":\"sidecar\"}"]
            .get("f:image")
            .is_none()
    );
    assert!(
        curl["f:spec"]["f:template"]["f:spec"]["f:containers"]["k:{\"name\":\"app\"}"]
            .get("f:image")
            .is_some()
    );
}

#[test]
fn an_update_entry_emptied_by_others_disappears() {
    let mut live = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"a": "1"}});
    let cm = |manager| Context {
        type_name: "io.k8s.api.core.v1.ConfigMap",
        api_version: "v1",
        kind: "ConfigMap",
        ..cx(manager, &[])
    };
    update(&cm("one"), None, &mut live);
    assert_eq!(
        fields_of(&live, "one"),
        &json!({"f:data": {".": {}, "f:a": {}}})
    );
    live["metadata"]["uid"] = json!("u1");
    let mut new = live.clone();
    new["data"] = json!({"a": "2"});
    update(&cm("two"), Some(&live), &mut new);
    // "one" keeps only the map itself (a member without children is written `{}`).
    assert_eq!(fields_of(&new, "one"), &json!({"f:data": {}}));
    let mut newer = new.clone();
    newer.as_object_mut().unwrap().shift_remove("data");
    update(&cm("two"), Some(&new), &mut newer);
    let entries = newer["metadata"].get("managedFields");
    assert!(entries.is_none(), "both entries emptied: {entries:?}");
}

#[test]
fn request_managed_fields_replace_or_reset_the_live_ones() {
    let mut live = object("01");
    update(&cx("curl", MAIN), None, &mut live);
    live["metadata"]["uid"] = json!("u1");
    // A client rewrites the managedFields (kubectl's client-side to server-side migration).
    let mut new = live.clone();
    let rewritten = json!([{"manager": "kubectl", "operation": "Apply", "apiVersion": "apps/v1",
        "fieldsType": "FieldsV1", "fieldsV1": {"f:spec": {"f:replicas": {}}}}]);
    new["metadata"]["managedFields"] = rewritten.clone();
    update(
        &cx("kubectl-client-side-apply", MAIN),
        Some(&live),
        &mut new,
    );
    assert_eq!(new["metadata"]["managedFields"], rewritten);
    // An empty list resets them, and an existing object without managedFields is not tracked.
    let mut reset = live.clone();
    reset["metadata"]["managedFields"] = json!([]);
    reset["spec"]["replicas"] = json!(2);
    update(&cx("curl", MAIN), Some(&live), &mut reset);
    assert!(reset["metadata"].get("managedFields").is_none());
}

fn configmap_cx(manager: &str) -> Context<'_> {
    Context {
        type_name: "io.k8s.api.core.v1.ConfigMap",
        api_version: "v1",
        kind: "ConfigMap",
        ..cx(manager, &[])
    }
}

fn cm(data: Value) -> Value {
    json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "namespace": "d"}, "data": data})
}

#[test]
fn apply_creates_a_missing_object_and_owns_exactly_its_configuration() {
    let created = apply(&configmap_cx("m"), None, &cm(json!({"a": "1"})), false).unwrap();
    assert_eq!(created["data"], json!({"a": "1"}));
    assert_eq!(created["metadata"]["name"], "c");
    let entries = created["metadata"]["managedFields"].as_array().unwrap();
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0]["operation"], "Apply");
    assert_eq!(entries[0]["fieldsV1"], json!({"f:data": {"f:a": {}}}));
}

#[test]
fn fields_omitted_from_the_next_apply_are_removed_unless_someone_else_owns_them() {
    let first = apply(
        &configmap_cx("m"),
        None,
        &cm(json!({"a": "1", "b": "2", "c": "3"})),
        false,
    )
    .unwrap();
    // Another applier shares "c" (same value: no conflict).
    let shared = apply(
        &configmap_cx("other"),
        Some(&first),
        &cm(json!({"c": "3"})),
        false,
    )
    .unwrap();
    assert_eq!(fields_of(&shared, "other"), &json!({"f:data": {"f:c": {}}}));
    let second = apply(
        &configmap_cx("m"),
        Some(&shared),
        &cm(json!({"a": "1"})),
        false,
    )
    .unwrap();
    assert_eq!(second["data"], json!({"a": "1", "c": "3"}));
    assert_eq!(fields_of(&second, "m"), &json!({"f:data": {"f:a": {}}}));
}

#[test]
fn an_unchanged_apply_returns_the_live_object() {
    let first = apply(&configmap_cx("m"), None, &cm(json!({"a": "1"})), false).unwrap();
    let mut live = first.clone();
    live["metadata"]["resourceVersion"] = json!("7");
    let again = apply(
        &Context {
            now: "2031-01-01T00:00:00Z",
            ..configmap_cx("m")
        },
        Some(&live),
        &cm(json!({"a": "1"})),
        false,
    )
    .unwrap();
    assert_eq!(again, live, "no change, not even the time");
}

#[test]
fn apply_merges_list_map_items_by_key_and_keeps_others() {
    let mut live = object("01");
    update(&cx("curl", MAIN), None, &mut live);
    let config = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "patch-demo"},
        "spec": {"template": {"spec": {"containers": [
            {"name": "sidecar", "image": "busybox:1.36"},
            {"name": "extra", "image": "x:1", "ports": [{"containerPort": 8080}]}]}}}});
    let out = apply(&cx("m", MAIN), Some(&live), &config, false).unwrap();
    let containers = out["spec"]["template"]["spec"]["containers"]
        .as_array()
        .unwrap();
    let names: Vec<&str> = containers
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["app", "sidecar", "extra"]);
    assert_eq!(
        containers[0]["ports"],
        json!([{"containerPort": 80, "protocol": "TCP"}])
    );
    let mine = fields_of(&out, "m");
    let list = &mine["f:spec"]["f:template"]["f:spec"]["f:containers"];
    assert_eq!(
        list["k:{\"name\":\"sidecar\"}"],
        json!({".": {}, "f:image": {}, "f:name": {}})
    );
    // The port's protocol key is defaulted in the key, as upstream's schema default does.
    assert_eq!(
        list["k:{\"name\":\"extra\"}"]["f:ports"],
        json!({"k:{\"containerPort\":8080,\"protocol\":\"TCP\"}": {".": {}, "f:containerPort": {}}})
    );
}

#[test]
fn apply_checks_kind_version_and_managed_fields() {
    let mut wrong = cm(json!({}));
    wrong["apiVersion"] = json!("apps/v1");
    let err = apply(&configmap_cx("m"), None, &wrong, false).unwrap_err();
    assert_eq!(
        err,
        Error::BadRequest("invalid object type: apps/v1, Kind=ConfigMap".into())
    );
    let mut with_fields = cm(json!({}));
    with_fields["metadata"]["managedFields"] = json!([]);
    let err = apply(&configmap_cx("m"), None, &with_fields, false).unwrap_err();
    assert_eq!(err.status_code(), 400);
    assert_eq!(err.to_string(), "metadata.managedFields must be nil");
    let dup = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "x"},
        "spec": {"template": {"spec": {"containers": [{"name": "a"}, {"name": "a"}]}}}});
    let err = apply(&cx("m", MAIN), None, &dup, false).unwrap_err();
    assert_eq!(err.status_code(), 500);
    assert!(
        err.to_string()
            .contains(".spec.template.spec.containers: duplicate entries for key [name=\"a\"]"),
        "{err}"
    );
}

#[test]
fn kubectl_takes_over_fields_its_last_applied_configuration_set() {
    let last = r#"{"apiVersion":"v1","data":{"a":"1"},"kind":"ConfigMap","metadata":{"annotations":{},"name":"c","namespace":"d"}}"#;
    let mut live = cm(json!({"a": "1"}));
    live["metadata"]["annotations"] = json!({LAST_APPLIED_ANNOTATION: last});
    update(&configmap_cx("kubectl-client-side-apply"), None, &mut live);
    live["metadata"]["uid"] = json!("u1");
    let config = cm(json!({"a": "2"}));
    // Another manager conflicts...
    assert!(matches!(
        apply(&configmap_cx("x"), Some(&live), &config, false),
        Err(Error::Conflicts(_))
    ));
    // ...kubectl does not, and rewrites the annotation.
    let out = apply(&configmap_cx("kubectl"), Some(&live), &config, false).unwrap();
    assert_eq!(out["data"]["a"], "2");
    assert_eq!(fields_of(&out, "kubectl"), &json!({"f:data": {"f:a": {}}}));
    assert_eq!(
        out["metadata"]["annotations"][LAST_APPLIED_ANNOTATION],
        "{\"apiVersion\":\"v1\",\"data\":{\"a\":\"2\"},\"kind\":\"ConfigMap\",\"metadata\":{\"name\":\"c\",\"namespace\":\"d\"}}\n"
    );
}

#[test]
fn update_managers_beyond_ten_merge_into_ancient_changes() {
    let mut live = cm(json!({"k0": "v"}));
    update(&configmap_cx("m0"), None, &mut live);
    live["metadata"]["uid"] = json!("u");
    for i in 1..=11 {
        let mut new = live.clone();
        new["data"][format!("k{i}")] = json!("v");
        let time = format!("2030-01-01T00:00:{i:02}Z");
        update(
            &Context {
                now: &time,
                ..configmap_cx(&format!("m{i}"))
            },
            Some(&live),
            &mut new,
        );
        live = new;
    }
    let entries = live["metadata"]["managedFields"].as_array().unwrap();
    assert_eq!(entries.len(), 10);
    let ancient = entry(&live["metadata"]["managedFields"], "ancient-changes").unwrap();
    assert_eq!(
        ancient["fieldsV1"],
        json!({"f:data": {".": {}, "f:k0": {}, "f:k1": {}, "f:k2": {}}})
    );
}

#[test]
fn user_agent_prefix_is_the_default_manager() {
    assert_eq!(
        manager_from_user_agent("kubectl/v1.32.0 (linux/amd64) kubernetes/abc"),
        "kubectl"
    );
    assert_eq!(manager_from_user_agent("curl/7.88.1"), "curl");
    assert_eq!(manager_from_user_agent(&"x".repeat(300)).len(), 128);
}

#[test]
fn set_items_and_atomic_lists_are_owned_as_upstream_encodes_them() {
    let node = "io.k8s.api.core.v1.Node";
    let c = Context {
        type_name: node,
        api_version: "v1",
        kind: "Node",
        ..cx("m", &[])
    };
    let n = json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": "n"},
        "spec": {"podCIDRs": ["10.0.0.0/24"], "taints": [{"key": "k", "effect": "NoSchedule"}]}});
    let out = apply(&c, None, &n, false).unwrap();
    assert_eq!(
        fields_of(&out, "m"),
        &json!({"f:spec": {"f:podCIDRs": {"v:\"10.0.0.0/24\"": {}}, "f:taints": {}}})
    );
}
