//! Validation as kube-apiserver does it, seen through kubectl: invalid objects are refused
//! with 422 Invalid naming the field, and pod updates may change only what upstream allows.

use crate::harness::{Cluster, Run};

/// `kubectl create -f -` at `-v=6`, which logs each response's status line.
fn create(c: &Cluster, yaml: &str) -> Run {
    c.kubectl_with(&["create", "-v=6", "-f", "-"], Some(yaml), &[])
}

#[track_caller]
fn assert_refused(r: &Run, what: &str, causes: &[&str]) {
    assert!(!r.ok, "{what} should be refused: {}", r.stdout);
    assert!(r.stderr.contains("422 Unprocessable Entity"), "{what}: no 422 in {}", r.stderr);
    assert!(r.stderr.contains(&format!("The {what} is invalid")), "{}", r.stderr);
    for cause in causes {
        assert!(r.stderr.contains(cause), "{what}: missing {cause:?} in {}", r.stderr);
    }
}

#[test]
fn invalid_objects_are_refused_with_the_field_named() {
    let c = Cluster::start();
    let deployment = r#"
apiVersion: apps/v1
kind: Deployment
metadata: {name: mismatch}
spec:
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: other}}
    spec:
      containers: [{name: web, image: nginx}]
"#;
    assert_refused(
        &create(&c, deployment),
        "Deployment \"mismatch\"",
        &["spec.template.metadata.labels: Invalid value: map[string]string{\"app\":\"other\"}: `selector` does not match template `labels`"],
    );
    let pod = r#"
apiVersion: v1
kind: Pod
metadata: {name: dup}
spec:
  containers:
  - {name: web, image: nginx}
  - {name: web, image: busybox}
"#;
    assert_refused(&create(&c, pod), "Pod \"dup\"", &["spec.containers[1].name: Duplicate value: \"web\""]);
    let service = r#"
apiVersion: v1
kind: Service
metadata: {name: big-port}
spec:
  selector: {app: web}
  ports: [{port: 70000}]
"#;
    assert_refused(
        &create(&c, service),
        "Service \"big-port\"",
        &["spec.ports[0].port: Invalid value: 70000: must be between 1 and 65535, inclusive"],
    );
    // nothing was stored
    for (kind, name) in [("deployment", "mismatch"), ("pod", "dup"), ("service", "big-port")] {
        let r = c.kubectl(&["get", kind, name]);
        assert!(!r.ok && r.stderr.contains("NotFound"), "{kind}/{name}: {}{}", r.stdout, r.stderr);
    }
    // and a valid object still goes through
    let fixed = deployment.replace("app: other", "app: web");
    let r = create(&c, &fixed);
    assert!(r.ok, "{}", r.stderr);
}

#[test]
fn a_pod_image_may_change_but_its_command_may_not() {
    let c = Cluster::start();
    let r = create(&c, "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  containers: [{name: web, image: nginx:1.25}]\n");
    assert!(r.ok, "{}", r.stderr);
    c.k(&["patch", "pod", "p", "-p", r#"{"spec":{"containers":[{"name":"web","image":"nginx:1.26"}]}}"#]);
    assert_eq!(c.k(&["get", "pod", "p", "-o", "jsonpath={.spec.containers[0].image}"]), "nginx:1.26");

    let r = c.kubectl(&["patch", "pod", "p", "-v=6", "-p", r#"{"spec":{"containers":[{"name":"web","command":["sleep","3600"]}]}}"#]);
    assert_refused(
        &r,
        "Pod \"p\"",
        &["spec: Forbidden: pod updates may not change fields other than `spec.containers[*].image`"],
    );
    let command = c.k(&["get", "pod", "p", "-o", "jsonpath={.spec.containers[0].command}"]);
    assert_eq!(command, "", "the command was stored anyway");
}
