//! Delete options as kubectl sends them: `--cascade=orphan|foreground|background`,
//! `--grace-period`, `--force`, and the raw `propagationPolicy`/`orphanDependents`.

use crate::harness::{json, Cluster};

const DEPLOY: &str = r#"
apiVersion: apps/v1
kind: Deployment
metadata: {name: NAME, namespace: dev}
spec:
  selector: {matchLabels: {app: NAME}}
  template:
    metadata: {labels: {app: NAME}}
    spec: {containers: [{name: c, image: nginx}]}
"#;

#[test]
fn kubectl_cascade_orphan_and_foreground_store_the_finalizer_background_deletes() {
    // API-server semantics only: no controller manager acting on (or adding to) the objects
    let c = Cluster::start_with(&["--disable-controller-manager"]);
    c.k(&["create", "namespace", "dev"]);
    for name in ["web", "fg", "bg"] {
        c.apply(&DEPLOY.replace("NAME", name));
    }
    // no garbage collector removes the finalizers here, so kubectl must not wait for them
    let out = c.k(&["delete", "deploy", "web", "-n", "dev", "--cascade=orphan", "--wait=false"]);
    assert!(out.contains("deployment.apps \"web\" deleted"), "{out}");
    let d = json(&c.k(&["get", "deploy", "web", "-n", "dev", "-o", "json"]));
    assert_eq!(d["metadata"]["finalizers"], serde_json::json!(["orphan"]));
    assert!(d["metadata"]["deletionTimestamp"].is_string(), "{d}");
    assert_eq!(d["metadata"]["deletionGracePeriodSeconds"], 0);
    let yaml = c.k(&["get", "deploy", "web", "-n", "dev", "-o", "yaml"]);
    assert!(yaml.contains("- orphan"), "{yaml}");

    c.k(&["delete", "deploy", "fg", "-n", "dev", "--cascade=foreground", "--wait=false"]);
    let d = json(&c.k(&["get", "deploy", "fg", "-n", "dev", "-o", "json"]));
    assert_eq!(d["metadata"]["finalizers"], serde_json::json!(["foregroundDeletion"]));

    c.k(&["delete", "deploy", "bg", "-n", "dev", "--cascade=background"]);
    assert!(!c.kubectl(&["get", "deploy", "bg", "-n", "dev"]).ok);

    // removing the finalizer completes the pending deletion
    c.k(&["patch", "deploy", "web", "-n", "dev", "--type=json", "-p", r#"[{"op":"remove","path":"/metadata/finalizers"}]"#]);
    assert!(!c.kubectl(&["get", "deploy", "web", "-n", "dev"]).ok, "the deployment is gone once its finalizer is");

    // raw API: the legacy field, a bad policy, both at once
    c.apply(&DEPLOY.replace("NAME", "legacy"));
    let (code, body) = c.curl("DELETE", "/apis/apps/v1/namespaces/dev/deployments/legacy", Some(r#"{"orphanDependents":true}"#), "application/json", true);
    assert_eq!(code, 200, "{body}");
    assert_eq!(json(&body)["metadata"]["finalizers"], serde_json::json!(["orphan"]));
    let (code, body) = c.curl("DELETE", "/apis/apps/v1/namespaces/dev/deployments/fg", Some(r#"{"propagationPolicy":"Sideways"}"#), "application/json", true);
    assert_eq!(code, 422, "{body}");
    assert_eq!(json(&body)["reason"], "Invalid");
    let (code, _) = c.curl("DELETE", "/apis/apps/v1/namespaces/dev/deployments/fg", Some(r#"{"propagationPolicy":"Orphan","orphanDependents":true}"#), "application/json", true);
    assert_eq!(code, 422);
    // as a query parameter
    c.apply(&DEPLOY.replace("NAME", "q"));
    let (code, body) = c.curl("DELETE", "/apis/apps/v1/namespaces/dev/deployments/q?propagationPolicy=Foreground", None, "application/json", true);
    assert_eq!(code, 200, "{body}");
    assert_eq!(json(&body)["metadata"]["finalizers"], serde_json::json!(["foregroundDeletion"]));
}

#[test]
fn bound_pods_are_deleted_gracefully_unbound_pods_at_once() {
    let c = Cluster::start();
    let pod = |name: &str, node: Option<&str>| {
        let node = node.map(|n| format!("nodeName: {n}\n  ")).unwrap_or_default();
        format!("apiVersion: v1\nkind: Pod\nmetadata: {{name: {name}}}\nspec:\n  {node}terminationGracePeriodSeconds: 45\n  containers: [{{name: c, image: busybox}}]\n")
    };
    c.apply(&pod("unbound", None));
    c.k(&["delete", "pod", "unbound", "--wait=false"]);
    assert!(!c.kubectl(&["get", "pod", "unbound"]).ok, "an unbound pod goes at once");

    c.apply(&pod("bound", Some("node-1")));
    c.k(&["delete", "pod", "bound", "--wait=false"]);
    let p = json(&c.k(&["get", "pod", "bound", "-o", "json"]));
    assert_eq!(p["metadata"]["deletionGracePeriodSeconds"], 45, "{p}");
    // both RFC 3339 in UTC with whole seconds: they compare as strings
    let at = p["metadata"]["deletionTimestamp"].as_str().unwrap();
    let created = p["metadata"]["creationTimestamp"].as_str().unwrap();
    assert!(at > created, "deletionTimestamp {at} is now + grace, after creation {created}");
    // kubectl shows it terminating
    assert!(c.k(&["get", "pod", "bound"]).contains("Terminating"));

    // a shorter grace period moves the deadline; --force (grace 0) removes it, as the kubelet does
    c.k(&["delete", "pod", "bound", "--grace-period=5", "--wait=false"]);
    let p = json(&c.k(&["get", "pod", "bound", "-o", "json"]));
    assert_eq!(p["metadata"]["deletionGracePeriodSeconds"], 5);
    let r = c.kubectl(&["delete", "pod", "bound", "--grace-period=0", "--force"]);
    assert!(r.ok, "{}", r.stderr);
    assert!(!c.kubectl(&["get", "pod", "bound"]).ok);
}
