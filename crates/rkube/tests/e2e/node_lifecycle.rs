//! Node lifecycle with simulated nodes: a node whose heartbeats stop goes NotReady (Unknown)
//! with the unreachable taints, its pods are marked not ready and evicted after their
//! (admission-defaulted, here shortened) tolerationSeconds, and their Deployment recreates them
//! on the nodes that are left.

use crate::harness::{eventually, json, Cluster};
use crate::harness::sim_nodes as sim_nodes_with;
use crate::namespaces::{node_ready, WAIT};

/// Leases renewed well within the shortened 5 s grace period.
const RENEW: &[&str] = &["--lease-renew-interval", "1s"];

const APP: &str = r#"
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: nl}
spec:
  replicas: 3
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers: [{name: web, image: rkube.local/busybox:1.35}]
---
apiVersion: v1
kind: Pod
metadata: {name: patient, namespace: nl}
spec:
  tolerations: [{key: node.kubernetes.io/unreachable, operator: Exists, effect: NoExecute, tolerationSeconds: 3600}]
  containers: [{name: c, image: rkube.local/busybox:1.35}]
"#;

/// (name, node, phase, ready, terminating) of every pod in `nl`.
fn pods(c: &Cluster) -> Vec<(String, String, String, String, bool)> {
    let items = json(&c.k(&["get", "pods", "-n", "nl", "-o", "json"]))["items"].as_array().cloned().unwrap_or_default();
    items
        .iter()
        .map(|p| {
            let ready = p["status"]["conditions"].as_array().and_then(|cs| cs.iter().find(|c| c["type"] == "Ready")).map(|c| c["status"].as_str().unwrap_or_default().to_owned());
            (
                p["metadata"]["name"].as_str().unwrap_or_default().to_owned(),
                p["spec"]["nodeName"].as_str().unwrap_or_default().to_owned(),
                p["status"]["phase"].as_str().unwrap_or_default().to_owned(),
                ready.unwrap_or_default(),
                !p["metadata"]["deletionTimestamp"].is_null(),
            )
        })
        .collect()
}

#[test]
fn a_lost_node_is_tainted_and_its_pods_move_to_the_other_nodes() {
    let c = Cluster::start_with(&["--node-monitor-grace-period", "5s", "--default-unreachable-toleration-seconds", "6"]);
    // Only the node that will be lost exists at first, so every pod lands on it.
    let lost = sim_nodes_with(&c, "lost-", 1, RENEW);
    c.k(&["create", "namespace", "nl"]);
    c.apply(APP);
    let on_lost_running = || pods(&c).iter().filter(|p| p.1 == "lost-0" && p.2 == "Running").count();
    assert!(eventually(WAIT, || on_lost_running() == 4), "pods did not run on lost-0: {:?}", pods(&c));
    // DefaultTolerationSeconds admission: the configured unreachable and the default not-ready seconds.
    let web = pods(&c).into_iter().find(|p| p.0.starts_with("web-")).unwrap().0;
    let tolerations = json(&c.k(&["get", "pod", &web, "-n", "nl", "-o", "jsonpath={.spec.tolerations}"]));
    let seconds = |key: &str| tolerations.as_array().unwrap().iter().find(|t| t["key"] == key).map(|t| t["tolerationSeconds"].clone());
    assert_eq!(seconds("node.kubernetes.io/unreachable"), Some(serde_json::json!(6)), "{tolerations}");
    assert_eq!(seconds("node.kubernetes.io/not-ready"), Some(serde_json::json!(300)), "{tolerations}");

    let _others = sim_nodes_with(&c, "sim-", 2, RENEW);
    drop(lost); // its heartbeats stop

    let unknown = eventually(WAIT, || node_ready(&c).iter().any(|(n, s)| n == "lost-0" && s == "Unknown"));
    assert!(unknown, "lost-0 never went Unknown: {:?}", node_ready(&c));
    let node = json(&c.k(&["get", "node", "lost-0", "-o", "json"]));
    let ready = node["status"]["conditions"].as_array().unwrap().iter().find(|c| c["type"] == "Ready").unwrap().clone();
    assert_eq!(ready["reason"], "NodeStatusUnknown");
    assert_eq!(ready["message"], "Kubelet stopped posting node status.");
    assert!(c.k(&["get", "nodes"]).lines().any(|l| l.starts_with("lost-0") && l.contains("NotReady")));
    let tainted = eventually(WAIT, || {
        let taints = c.k(&["get", "node", "lost-0", "-o", "jsonpath={range .spec.taints[*]}{.key}:{.effect}{\"\\n\"}{end}"]);
        taints.contains("node.kubernetes.io/unreachable:NoExecute") && taints.contains("node.kubernetes.io/unreachable:NoSchedule")
    });
    assert!(tainted, "lost-0 lacks the unreachable taints: {}", c.k(&["get", "node", "lost-0", "-o", "jsonpath={.spec.taints}"]));

    // The pod that tolerates the taint for an hour stays, marked not ready.
    let patient_not_ready = eventually(WAIT, || pods(&c).iter().any(|p| p.0 == "patient" && p.3 == "False" && !p.4));
    assert!(patient_not_ready, "patient was not marked NotReady: {:?}", pods(&c));
    // The Deployment's pods are evicted after 6 s and recreated on the other nodes.
    let moved = eventually(WAIT, || {
        let ps = pods(&c);
        let live_web: Vec<_> = ps.iter().filter(|p| p.0.starts_with("web-") && !p.4).collect();
        live_web.len() == 3 && live_web.iter().all(|p| p.1.starts_with("sim-") && p.2 == "Running")
            && ps.iter().filter(|p| p.0.starts_with("web-") && p.1 == "lost-0").all(|p| p.4)
    });
    assert!(moved, "web pods did not move off lost-0: {:?}", pods(&c));
    // Nobody confirms the deletion on a lost node: the evicted pods stay Terminating there.
    let evicted = pods(&c).into_iter().find(|p| p.0.starts_with("web-") && p.1 == "lost-0" && p.4).expect("an evicted web pod on lost-0");
    let reason = c.k(&["get", "pod", &evicted.0, "-n", "nl", "-o", "jsonpath={.status.conditions[?(@.type==\"DisruptionTarget\")].reason}"]);
    assert_eq!(reason, "DeletionByTaintManager");
    assert!(pods(&c).iter().any(|p| p.0 == "patient" && !p.4), "patient was evicted: {:?}", pods(&c));
    // The nodes that kept renewing stayed Ready throughout.
    let healthy: Vec<_> = node_ready(&c).into_iter().filter(|(n, _)| n.starts_with("sim-")).collect();
    assert_eq!(healthy, [("sim-0".to_owned(), "True".to_owned()), ("sim-1".to_owned(), "True".to_owned())]);

    // The node comes back (its simulator re-registers and posts Ready): the taints go.
    let _back = sim_nodes_with(&c, "lost-", 1, RENEW);
    let untainted = eventually(WAIT, || {
        !c.k(&["get", "node", "lost-0", "-o", "jsonpath={.spec.taints}"]).contains("node.kubernetes.io/unreachable")
    });
    assert!(untainted, "lost-0 kept its taints: {}", c.k(&["get", "node", "lost-0", "-o", "jsonpath={.spec.taints}"]));
}
