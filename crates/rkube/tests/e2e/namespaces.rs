//! Namespace deletion through the controller manager's namespace controller: `kubectl delete
//! namespace` removes everything in it, showing Terminating with upstream's conditions while
//! content (held by a finalizer) remains; without the controller manager a deleted namespace
//! stays Terminating and refuses new content.

use std::time::Duration;

pub use crate::harness::{node_ready, Proc};
use crate::harness::{eventually, json, Cluster};

pub const WAIT: Duration = Duration::from_secs(60);

/// A child `rkube` process killed on drop.
/// `rkube <args> --kubeconfig <cluster's>` as a child process.
/// The Ready status of every node, by name.
/// `count` simulated nodes `<prefix>0..`, waited for until Ready.
pub fn sim_nodes(c: &Cluster, prefix: &str, count: usize) -> Proc {
    crate::harness::sim_nodes(c, prefix, count, &[])
}

const APP: &str = r#"
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: dev}
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers: [{name: web, image: rkube.local/busybox:1.35}]
---
apiVersion: v1
kind: Service
metadata: {name: web, namespace: dev}
spec:
  selector: {app: web}
  ports: [{port: 80}]
---
apiVersion: v1
kind: ConfigMap
metadata: {name: settings, namespace: dev}
data: {mode: blue}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: held, namespace: dev, finalizers: [example.com/hold]}
"#;

fn condition(ns: &serde_json::Value, type_: &str) -> (String, String, String) {
    let c = ns["status"]["conditions"].as_array().and_then(|cs| cs.iter().find(|c| c["type"] == type_)).cloned().unwrap_or_default();
    let s = |k: &str| c[k].as_str().unwrap_or_default().to_owned();
    (s("status"), s("reason"), s("message"))
}

#[test]
fn deleting_a_namespace_removes_its_content_then_the_namespace() {
    let c = Cluster::start();
    let _nodes = sim_nodes(&c, "sim-", 2);
    c.k(&["create", "namespace", "dev"]);
    c.apply(APP);
    let running = || c.k(&["get", "pods", "-n", "dev", "-l", "app=web", "-o", "jsonpath={.items[*].status.phase}"]);
    assert!(eventually(WAIT, || running().split_whitespace().filter(|p| *p == "Running").count() == 2), "pods never ran: {}", running());

    let out = c.k(&["delete", "namespace", "dev", "--wait=false"]);
    assert!(out.contains("namespace \"dev\" deleted"), "{out}");
    // Everything without a finalizer goes; the held ConfigMap keeps the namespace Terminating.
    let gone = || c.k(&["get", "deploy,rs,pods,svc,cm", "-n", "dev", "-o", "name"]);
    assert!(eventually(WAIT, || gone().trim() == "configmap/held"), "content left: {}", gone());
    let reported = eventually(WAIT, || {
        let ns = json(&c.k(&["get", "ns", "dev", "-o", "json"]));
        ns["status"]["phase"] == "Terminating"
            && condition(&ns, "NamespaceFinalizersRemaining")
                == ("True".into(), "SomeFinalizersRemain".into(), "Some content in the namespace has finalizers remaining: example.com/hold in 1 resource instances".into())
            && condition(&ns, "NamespaceContentRemaining")
                == ("True".into(), "SomeResourcesRemain".into(), "Some resources are remaining: configmaps. has 1 resource instances".into())
            && condition(&ns, "NamespaceDeletionDiscoveryFailure").1 == "ResourcesDiscovered"
    });
    assert!(reported, "conditions: {}", c.k(&["get", "ns", "dev", "-o", "jsonpath={.status}"]));
    assert!(c.k(&["get", "ns", "dev"]).contains("Terminating"));
    let describe = c.k(&["describe", "ns", "dev"]);
    assert!(describe.contains("NamespaceFinalizersRemaining"), "{describe}");

    // Nothing new gets in meanwhile.
    let refused = c.kubectl(&["create", "configmap", "late", "-n", "dev"]);
    assert!(!refused.ok && refused.stderr.contains("configmaps \"late\" is forbidden: unable to create new content in namespace dev because it is being terminated"), "{}", refused.stderr);

    // Releasing the finalizer lets the namespace go.
    c.k(&["patch", "cm", "held", "-n", "dev", "--type=merge", "-p", r#"{"metadata":{"finalizers":null}}"#]);
    assert!(eventually(WAIT, || !c.kubectl(&["get", "ns", "dev"]).ok), "namespace dev is still there: {}", c.kubectl(&["get", "ns", "dev", "-o", "yaml"]).stdout);
    // A namespace of that name can be made again, empty.
    c.k(&["create", "namespace", "dev"]);
    assert_eq!(c.k(&["get", "deploy,svc,cm", "-n", "dev", "-l", "app=web", "-o", "name"]).trim(), "");
}

#[test]
fn without_the_controller_manager_a_deleted_namespace_stays_terminating() {
    let c = Cluster::start_with(&["--disable-controller-manager"]);
    c.k(&["create", "namespace", "dev"]);
    c.k(&["create", "configmap", "c", "-n", "dev", "--from-literal=a=b"]);
    c.k(&["delete", "namespace", "dev", "--wait=false"]);
    let ns = json(&c.k(&["get", "ns", "dev", "-o", "json"]));
    assert_eq!(ns["status"]["phase"], "Terminating");
    assert_eq!(ns["spec"]["finalizers"], serde_json::json!(["kubernetes"]));
    let refused = c.kubectl(&["create", "configmap", "d", "-n", "dev"]);
    assert!(!refused.ok && refused.stderr.contains("because it is being terminated"), "{}", refused.stderr);
    let (code, body) = c.curl("POST", "/api/v1/namespaces/dev/configmaps", Some(r#"{"metadata":{"name":"e"}}"#), "application/json", true);
    let status = json(&body);
    assert_eq!((code, status["reason"].as_str()), (403, Some("Forbidden")), "{body}");
    assert_eq!(status["details"]["causes"][0]["reason"], "NamespaceTerminating", "{body}");
    // Nobody finalizes it: the content and the namespace stay (checked after the controller
    // manager would long have acted).
    std::thread::sleep(Duration::from_secs(3));
    assert!(c.k(&["get", "ns", "dev"]).contains("Terminating"));
    assert!(c.kubectl(&["get", "cm", "c", "-n", "dev"]).ok);
}
