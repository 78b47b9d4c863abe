use std::time::Duration;

use crate::harness::{eventually, json, write_file, Cluster};

pub const APP: &str = r#"
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: dev
  labels: {app: web}
spec:
  replicas: 2
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
      - name: web
        image: nginx:1.25
        ports: [{containerPort: 80}]
      - name: sidecar
        image: busybox:1.36
---
apiVersion: v1
kind: Service
metadata:
  name: web
  namespace: dev
spec:
  selector: {app: web}
  ports: [{port: 80, targetPort: 80}]
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: web-config
  namespace: dev
data:
  mode: blue
"#;

#[test]
fn client_side_apply_changes_only_what_changed_and_keeps_other_clients_labels() {
    let c = Cluster::start();
    assert!(c.k(&["create", "namespace", "dev"]).contains("namespace/dev created"));
    let file = write_file(c.dir.path(), "app.yaml", APP);
    let out = c.k(&["apply", "-f", file.to_str().unwrap()]);
    assert!(out.contains("deployment.apps/web created") && out.contains("service/web created") && out.contains("configmap/web-config created"), "{out}");

    // another client labels the deployment
    c.k(&["label", "deployment", "web", "-n", "dev", "owner=ops"]);
    // the user edits the file: new image and new config value
    write_file(c.dir.path(), "app.yaml", &APP.replace("nginx:1.25", "nginx:1.26").replace("mode: blue", "mode: green"));
    let diff = c.kubectl(&["diff", "-f", file.to_str().unwrap()]);
    assert_eq!(diff.code, Some(1), "kubectl diff should report a pending change: {}{}", diff.stdout, diff.stderr);
    assert!(diff.stdout.contains("+      - image: nginx:1.26") || diff.stdout.contains("nginx:1.26"), "{}", diff.stdout);

    let out = c.k(&["apply", "-f", file.to_str().unwrap()]);
    assert!(out.contains("deployment.apps/web configured"), "{out}");
    assert!(out.contains("service/web unchanged"), "{out}");
    assert!(out.contains("configmap/web-config configured"), "{out}");

    let d = json(&c.k(&["get", "deployment", "web", "-n", "dev", "-o", "json"]));
    assert_eq!(d["metadata"]["labels"]["owner"], "ops", "label from another client was lost");
    assert_eq!(d["spec"]["template"]["spec"]["containers"][0]["image"], "nginx:1.26");
    assert_eq!(d["spec"]["template"]["spec"]["containers"][1]["image"], "busybox:1.36");
    assert_eq!(d["metadata"]["generation"], 2);
    // defaults as upstream
    assert_eq!(d["spec"]["strategy"]["rollingUpdate"]["maxSurge"], "25%");
    assert_eq!(d["spec"]["revisionHistoryLimit"], 10);
    assert_eq!(d["spec"]["progressDeadlineSeconds"], 600);
    assert_eq!(d["spec"]["template"]["spec"]["containers"][0]["imagePullPolicy"], "IfNotPresent");
    assert_eq!(d["spec"]["template"]["spec"]["restartPolicy"], "Always");
    let diff = c.kubectl(&["diff", "-f", file.to_str().unwrap()]);
    assert_eq!(diff.code, Some(0), "no change pending after apply: {}", diff.stdout);

    let svc = json(&c.k(&["get", "svc", "web", "-n", "dev", "-o", "json"]));
    assert_eq!(svc["spec"]["type"], "ClusterIP");
    assert_eq!(svc["spec"]["sessionAffinity"], "None");
    assert!(svc["spec"]["clusterIP"].as_str().unwrap_or_default().starts_with("10.43."), "{svc}");
}

#[test]
fn label_annotate_scale_patch_replace_and_edit() {
    let c = Cluster::start();
    c.k(&["create", "namespace", "dev"]);
    c.apply(APP);
    c.k(&["label", "cm", "web-config", "-n", "dev", "tier=a"]);
    c.k(&["annotate", "cm", "web-config", "-n", "dev", "note=hello"]);
    let cm = json(&c.k(&["get", "cm", "web-config", "-n", "dev", "-o", "json"]));
    assert_eq!(cm["metadata"]["labels"]["tier"], "a");
    assert_eq!(cm["metadata"]["annotations"]["note"], "hello");

    assert!(c.k(&["scale", "deployment", "web", "-n", "dev", "--replicas=5"]).contains("scaled"));
    assert_eq!(c.k(&["get", "deploy", "web", "-n", "dev", "-o", "jsonpath={.spec.replicas}"]), "5");

    // strategic: one container by name, the other kept
    c.k(&["patch", "deploy", "web", "-n", "dev", "--type=strategic", "-p",
          r#"{"spec":{"template":{"spec":{"containers":[{"name":"sidecar","image":"busybox:1.37"}]}}}}"#]);
    let images = c.k(&["get", "deploy", "web", "-n", "dev", "-o", "jsonpath={.spec.template.spec.containers[*].image}"]);
    assert_eq!(images, "nginx:1.25 busybox:1.37");
    c.k(&["patch", "cm", "web-config", "-n", "dev", "--type=merge", "-p", r#"{"data":{"extra":"1"}}"#]);
    c.k(&["patch", "cm", "web-config", "-n", "dev", "--type=json", "-p", r#"[{"op":"replace","path":"/data/mode","value":"red"}]"#]);
    let data = json(&c.k(&["get", "cm", "web-config", "-n", "dev", "-o", "jsonpath={.data}"]));
    assert_eq!(data, serde_json::json!({"mode": "red", "extra": "1"}));

    // replace with a full object
    let mut cm = json(&c.k(&["get", "cm", "web-config", "-n", "dev", "-o", "json"]));
    cm["data"] = serde_json::json!({"only": "this"});
    let r = c.kubectl_with(&["replace", "-f", "-"], Some(&cm.to_string()), &[]);
    assert!(r.ok, "{}", r.stderr);
    assert_eq!(json(&c.k(&["get", "cm", "web-config", "-n", "dev", "-o", "jsonpath={.data}"])), serde_json::json!({"only": "this"}));
    // replace with the old resourceVersion is a conflict
    let r = c.kubectl_with(&["replace", "-f", "-"], Some(&cm.to_string()), &[]);
    assert!(!r.ok && r.stderr.contains("the object has been modified"), "{}", r.stderr);

    // edit with EDITOR set to a script
    let editor = write_file(c.dir.path(), "editor.sh", "#!/bin/sh\nsed -i 's/only: this/only: edited/' \"$1\"\n");
    std::process::Command::new("chmod").arg("+x").arg(&editor).status().expect("chmod");
    let r = c.kubectl_with(&["edit", "cm", "web-config", "-n", "dev"], None, &[("EDITOR", editor.to_str().unwrap())]);
    assert!(r.ok, "{}{}", r.stdout, r.stderr);
    assert_eq!(c.k(&["get", "cm", "web-config", "-n", "dev", "-o", "jsonpath={.data.only}"]), "edited");
}

#[test]
fn delete_all_delete_file_and_finalizers() {
    // API-server semantics only: no controller acting on (or adding to) the objects, but the
    // namespace controller that finalizes a deleted namespace
    let c = Cluster::start_with(&["--controllers", "namespace"]);
    c.k(&["create", "namespace", "dev"]);
    let file = write_file(c.dir.path(), "app.yaml", APP);
    c.k(&["apply", "-f", file.to_str().unwrap()]);
    let out = c.k(&["delete", "-f", file.to_str().unwrap()]);
    assert!(out.contains("deployment.apps \"web\" deleted"), "{out}");
    assert!(c.k(&["get", "deploy,svc,cm", "-n", "dev", "-o", "name"]).trim().is_empty());

    for i in 0..3 {
        c.k(&["create", "configmap", &format!("c{i}"), "-n", "dev", "--from-literal=a=b"]);
    }
    c.k(&["delete", "cm", "--all", "-n", "dev"]);
    assert_eq!(c.k(&["get", "cm", "-n", "dev", "-o", "name"]).trim(), "");

    c.apply("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: held\n  namespace: dev\n  finalizers: [example.com/hold]\n");
    let out = c.k(&["delete", "cm", "held", "-n", "dev", "--wait=false"]);
    assert!(out.contains("deleted"), "{out}");
    let held = json(&c.k(&["get", "cm", "held", "-n", "dev", "-o", "json"]));
    assert!(held["metadata"]["deletionTimestamp"].is_string(), "object with a finalizer must stay, marked: {held}");
    c.k(&["patch", "cm", "held", "-n", "dev", "--type=merge", "-p", r#"{"metadata":{"finalizers":null}}"#]);
    let gone = c.kubectl(&["get", "cm", "held", "-n", "dev"]);
    assert!(!gone.ok && gone.stderr.contains("NotFound") || gone.stderr.contains("not found"), "{}", gone.stderr);

    // deleting the namespace removes its content, then the namespace
    c.k(&["create", "configmap", "last", "-n", "dev", "--from-literal=a=b"]);
    c.k(&["delete", "namespace", "dev", "--timeout=30s"]);
    assert!(eventually(Duration::from_secs(10), || !c.kubectl(&["get", "ns", "dev"]).ok));
}

#[test]
fn describe_prints_sections() {
    let c = Cluster::start();
    c.k(&["create", "namespace", "dev"]);
    c.apply(APP);
    let out = c.k(&["describe", "deployment", "web", "-n", "dev"]);
    for s in ["Name:", "Namespace:", "Selector:", "Replicas:", "StrategyType:", "Pod Template:", "Containers:"] {
        assert!(out.contains(s), "deployment describe lacks {s}:\n{out}");
    }
    c.apply("apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\n  namespace: dev\nspec:\n  containers:\n  - name: c\n    image: busybox\n");
    let out = c.k(&["describe", "pod", "p", "-n", "dev"]);
    for s in ["Name:", "Namespace:", "Status:", "Containers:", "QoS Class:", "BestEffort", "Tolerations:"] {
        assert!(out.contains(s), "pod describe lacks {s}:\n{out}");
    }
    c.apply("apiVersion: v1\nkind: Node\nmetadata:\n  name: n1\n  labels: {kubernetes.io/hostname: n1}\n");
    let out = c.k(&["describe", "node", "n1"]);
    for s in ["Name:", "Labels:", "kubernetes.io/hostname=n1", "CreationTimestamp:"] {
        assert!(out.contains(s), "node describe lacks {s}:\n{out}");
    }
    let out = c.k(&["describe", "namespace", "dev"]);
    for s in ["Name:", "Status:", "Active"] {
        assert!(out.contains(s), "namespace describe lacks {s}:\n{out}");
    }
}

#[test]
fn binding_assigns_a_pod_to_a_node_once() {
    let c = Cluster::start();
    c.apply("apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\n  namespace: default\nspec:\n  containers:\n  - name: c\n    image: busybox\n");
    let binding = r#"{"apiVersion":"v1","kind":"Binding","metadata":{"name":"p"},"target":{"kind":"Node","name":"n1"}}"#;
    let (code, body) = c.curl("POST", "/api/v1/namespaces/default/pods/p/binding", Some(binding), "application/json", true);
    assert_eq!(code, 201, "{body}");
    let pod = json(&c.k(&["get", "pod", "p", "-o", "json"]));
    assert_eq!(pod["spec"]["nodeName"], "n1");
    let scheduled = pod["status"]["conditions"].as_array().unwrap().iter().find(|c| c["type"] == "PodScheduled").cloned().unwrap_or_default();
    assert_eq!(scheduled["status"], "True");
    let (code, body) = c.curl("POST", "/api/v1/namespaces/default/pods/p/binding", Some(&binding.replace("n1", "n2")), "application/json", true);
    assert_eq!(code, 409, "{body}");
    assert!(body.contains("already assigned"), "{body}");
}

#[test]
fn autoscale_v1_objects_read_back_through_v2() {
    let c = Cluster::start();
    c.k(&["create", "namespace", "dev"]);
    c.apply(APP);
    // kubectl autoscale posts autoscaling/v1 (protobuf); kubectl get reads the preferred v2
    c.k(&["autoscale", "deployment", "web", "-n", "dev", "--min=2", "--max=5", "--cpu-percent=70"]);
    let v2 = json(&c.k(&["get", "hpa", "web", "-n", "dev", "-o", "json"]));
    assert_eq!(v2["apiVersion"], "autoscaling/v2");
    assert_eq!(v2["spec"]["metrics"][0]["resource"]["name"], "cpu");
    assert_eq!(v2["spec"]["metrics"][0]["resource"]["target"]["averageUtilization"], 70);
    let v1 = json(&c.k(&["get", "--raw", "/apis/autoscaling/v1/namespaces/dev/horizontalpodautoscalers/web"]));
    assert_eq!(v1["apiVersion"], "autoscaling/v1");
    assert_eq!(v1["spec"]["targetCPUUtilizationPercentage"], 70);
    assert_eq!(v1["spec"]["maxReplicas"], 5);
    let table = c.k(&["get", "hpa", "-n", "dev"]);
    assert!(table.contains("cpu: <unknown>/70%"), "{table}");
}
