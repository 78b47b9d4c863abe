use serde_json::json;

use super::*;

fn info(group: &str, plural: &str) -> &'static ResourceInfo {
    rkube_api::resources::find(group, "v1", plural).unwrap()
}

fn now() -> Timestamp {
    "2026-01-01T00:00:00Z".parse().unwrap()
}

fn opts(v: serde_json::Value) -> DeleteOptions {
    DeleteOptions::from_value(&v).unwrap()
}

fn updated(p: Plan) -> serde_json::Value {
    match p {
        Plan::Update(v) => v,
        other => panic!("expected an update, got {other:?}"),
    }
}

#[test]
fn background_deletes_and_orphan_or_foreground_keep_the_object_with_a_finalizer() {
    let deploy = info("apps", "deployments");
    let obj = json!({"metadata": {"name": "web", "generation": 2}});
    assert_eq!(plan(deploy, &obj, &DeleteOptions::default(), now()), Plan::Delete);
    assert_eq!(plan(deploy, &obj, &opts(json!({"propagationPolicy": "Background"})), now()), Plan::Delete);

    let o = updated(plan(deploy, &obj, &opts(json!({"propagationPolicy": "Orphan"})), now()));
    assert_eq!(o["metadata"]["finalizers"], json!(["orphan"]));
    assert_eq!(o["metadata"]["deletionTimestamp"], "2026-01-01T00:00:00Z");
    assert_eq!(o["metadata"]["deletionGracePeriodSeconds"], 0);
    assert_eq!(o["metadata"]["generation"], 3);

    let f = updated(plan(deploy, &obj, &opts(json!({"propagationPolicy": "Foreground"})), now()));
    assert_eq!(f["metadata"]["finalizers"], json!(["foregroundDeletion"]));

    // the legacy field
    let l = updated(plan(deploy, &obj, &opts(json!({"orphanDependents": true})), now()));
    assert_eq!(l["metadata"]["finalizers"], json!(["orphan"]));
    assert_eq!(plan(deploy, &obj, &opts(json!({"orphanDependents": false})), now()), Plan::Delete);
}

#[test]
fn other_finalizers_are_kept_and_a_second_delete_changes_only_the_policy() {
    let cm = info("", "configmaps");
    let obj = json!({"metadata": {"name": "a", "finalizers": ["example.com/x"]}});
    let first = updated(plan(cm, &obj, &DeleteOptions::default(), now()));
    assert_eq!(first["metadata"]["finalizers"], json!(["example.com/x"]));
    assert!(first["metadata"].get("generation").is_none());
    // again, nothing new to write
    assert_eq!(plan(cm, &first, &DeleteOptions::default(), now()), Plan::Unchanged);
    // switching to foreground replaces the policy finalizer, keeps the deletion time
    let later: Timestamp = "2026-01-01T00:05:00Z".parse().unwrap();
    let fg = updated(plan(cm, &first, &opts(json!({"propagationPolicy": "Foreground"})), later));
    assert_eq!(fg["metadata"]["finalizers"], json!(["example.com/x", "foregroundDeletion"]));
    assert_eq!(fg["metadata"]["deletionTimestamp"], "2026-01-01T00:00:00Z");
    // an object whose finalizer says orphan keeps orphaning without options
    let orphaned = json!({"metadata": {"name": "a", "finalizers": ["orphan"]}});
    assert_eq!(plan(cm, &orphaned, &DeleteOptions::default(), now()), Plan::Update({
        let mut v = orphaned.clone();
        v["metadata"]["deletionTimestamp"] = "2026-01-01T00:00:00Z".into();
        v["metadata"]["deletionGracePeriodSeconds"] = 0.into();
        v
    }));
}

#[test]
fn replication_controllers_orphan_by_default() {
    let rc = info("", "replicationcontrollers");
    let obj = json!({"metadata": {"name": "rc"}});
    let o = updated(plan(rc, &obj, &DeleteOptions::default(), now()));
    assert_eq!(o["metadata"]["finalizers"], json!(["orphan"]));
    assert_eq!(plan(rc, &obj, &opts(json!({"propagationPolicy": "Background"})), now()), Plan::Delete);
}

#[test]
fn bound_pods_are_deleted_gracefully_and_unbound_pods_at_once() {
    let pods = info("", "pods");
    let unbound = json!({"metadata": {"name": "p"}, "spec": {"terminationGracePeriodSeconds": 30}});
    assert_eq!(plan(pods, &unbound, &DeleteOptions::default(), now()), Plan::Delete);

    let bound = json!({"metadata": {"name": "p"}, "spec": {"nodeName": "n1", "terminationGracePeriodSeconds": 30}, "status": {"phase": "Running"}});
    let p = updated(plan(pods, &bound, &DeleteOptions::default(), now()));
    assert_eq!(p["metadata"]["deletionTimestamp"], "2026-01-01T00:00:30Z");
    assert_eq!(p["metadata"]["deletionGracePeriodSeconds"], 30);

    let p5 = updated(plan(pods, &bound, &opts(json!({"gracePeriodSeconds": 5})), now()));
    assert_eq!(p5["metadata"]["deletionTimestamp"], "2026-01-01T00:00:05Z");
    assert_eq!(plan(pods, &bound, &opts(json!({"gracePeriodSeconds": 0})), now()), Plan::Delete);
    // negative means 1 s
    let neg = updated(plan(pods, &bound, &opts(json!({"gracePeriodSeconds": -5})), now()));
    assert_eq!(neg["metadata"]["deletionGracePeriodSeconds"], 1);

    // pending: a longer or absent period changes nothing; a shorter one moves the deadline
    assert_eq!(plan(pods, &p, &DeleteOptions::default(), now()), Plan::Unchanged);
    assert_eq!(plan(pods, &p, &opts(json!({"gracePeriodSeconds": 60})), now()), Plan::Unchanged);
    let shorter = updated(plan(pods, &p, &opts(json!({"gracePeriodSeconds": 10})), now()));
    assert_eq!(shorter["metadata"]["deletionTimestamp"], "2026-01-01T00:00:10Z");
    assert_eq!(shorter["metadata"]["deletionGracePeriodSeconds"], 10);
    // the kubelet's final delete
    assert_eq!(plan(pods, &p, &opts(json!({"gracePeriodSeconds": 0})), now()), Plan::Delete);

    // a finished pod goes at once
    let done = json!({"metadata": {"name": "p"}, "spec": {"nodeName": "n1"}, "status": {"phase": "Succeeded"}});
    assert_eq!(plan(pods, &done, &DeleteOptions::default(), now()), Plan::Delete);
}

#[test]
fn a_graceful_pod_with_finalizers_waits_for_them() {
    let pods = info("", "pods");
    let pod = json!({"metadata": {"name": "p", "finalizers": ["x/y"]}, "spec": {}});
    let p = updated(plan(pods, &pod, &opts(json!({"gracePeriodSeconds": 0})), now()));
    assert_eq!(p["metadata"]["deletionGracePeriodSeconds"], 0);
    assert_eq!(p["metadata"]["finalizers"], json!(["x/y"]));
}

#[test]
fn invalid_options_are_rejected_as_upstream() {
    let e = DeleteOptions::from_value(&json!({"propagationPolicy": "Sideways"})).unwrap_err();
    assert_eq!(e.code, http::StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        e.message,
        "DeleteOptions.meta.k8s.io \"\" is invalid: propagationPolicy: Unsupported value: \"Sideways\": supported values: \"Foreground\", \"Background\", \"Orphan\", \"nil\""
    );
    let e = DeleteOptions::from_value(&json!({"propagationPolicy": "Orphan", "orphanDependents": true})).unwrap_err();
    assert_eq!(e.code, http::StatusCode::UNPROCESSABLE_ENTITY);
    assert!(e.message.contains("orphanDependents and deletionPropagation cannot be both set"), "{}", e.message);
    assert!(DeleteOptions::from_value(&json!({"gracePeriodSeconds": "x"})).is_err());
}

#[test]
fn namespaces_terminate() {
    let ns = info("", "namespaces");
    let obj = json!({"metadata": {"name": "dev"}, "spec": {"finalizers": ["kubernetes"]}, "status": {"phase": "Active"}});
    let n = updated(plan(ns, &obj, &opts(json!({"propagationPolicy": "Background"})), now()));
    assert_eq!(n["status"]["phase"], "Terminating");
    assert_eq!(plan(ns, &n, &DeleteOptions::default(), now()), Plan::Unchanged);
}
