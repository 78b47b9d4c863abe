//! PodDisruptionBudgets: the disruption controller's status, the `pods/eviction` subresource
//! and `kubectl drain`, with `rkube sim-nodes` running pods.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::harness::{eventually, json, rkube_bin, Cluster};

const WAIT: Duration = Duration::from_secs(60);

/// A child `rkube` process killed on drop.
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `count` simulated nodes named `sim-0`, ..., Ready.
fn sim_nodes(c: &Cluster, count: usize) -> Proc {
    let child = Command::new(rkube_bin())
        .args(["sim-nodes", "--count", &count.to_string(), "--name-prefix", "sim-", "--kubeconfig"])
        .arg(c.kubeconfig())
        .env("RKUBE_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start rkube sim-nodes");
    let p = Proc(child);
    let ok = eventually(WAIT, || {
        let out = c.kubectl(&["get", "nodes", "-o", "jsonpath={range .items[*]}{.status.conditions[?(@.type==\"Ready\")].status}{\"\\n\"}{end}"]);
        out.stdout.lines().filter(|l| *l == "True").count() == count
    });
    assert!(ok, "{count} sim nodes did not become Ready");
    p
}

/// Live (not terminating) pods with `selector`, as JSON.
fn live_pods(c: &Cluster, ns: &str, selector: &str) -> Vec<serde_json::Value> {
    let out = c.k(&["get", "pods", "-n", ns, "-l", selector, "-o", "json"]);
    let items = json(&out)["items"].as_array().cloned().unwrap_or_default();
    items.into_iter().filter(|p| p["metadata"]["deletionTimestamp"].is_null()).collect()
}

fn is_ready(p: &serde_json::Value) -> bool {
    p["status"]["conditions"].as_array().is_some_and(|cs| cs.iter().any(|c| c["type"] == "Ready" && c["status"] == "True"))
}

#[track_caller]
fn wait_ready(c: &Cluster, ns: &str, selector: &str, count: usize) {
    let ok = eventually(WAIT, || {
        let pods = live_pods(c, ns, selector);
        pods.len() == count && pods.iter().all(is_ready)
    });
    assert!(ok, "expected {count} ready pods for {selector}: {}", c.kubectl(&["get", "pods", "-n", ns, "-o", "wide"]).stdout);
}

fn pdb_status(c: &Cluster, ns: &str, name: &str) -> serde_json::Value {
    json(&c.k(&["get", "pdb", name, "-n", ns, "-o", "json"]))["status"].clone()
}

fn deployment(name: &str, replicas: u32) -> String {
    format!(
        "apiVersion: apps/v1
kind: Deployment
metadata: {{name: {name}}}
spec:
  replicas: {replicas}
  selector: {{matchLabels: {{app: {name}}}}}
  template:
    metadata: {{labels: {{app: {name}}}}}
    spec:
      containers: [{{name: c, image: rkube.local/busybox:1.35}}]
"
    )
}

#[test]
fn pdb_status_follows_healthy_pods_with_ints_and_percentages() {
    let c = Cluster::start();
    let _nodes = sim_nodes(&c, 2);
    c.apply(&deployment("web", 3));
    wait_ready(&c, "default", "app=web", 3);
    c.k(&["create", "pdb", "web-min", "--selector=app=web", "--min-available=2"]);
    c.k(&["create", "pdb", "web-pct", "--selector=app=web", "--max-unavailable=50%"]);

    // minAvailable 2 of 3 healthy: one disruption allowed.
    let ok = eventually(WAIT, || {
        let s = pdb_status(&c, "default", "web-min");
        (s["currentHealthy"].as_i64(), s["desiredHealthy"].as_i64(), s["expectedPods"].as_i64(), s["disruptionsAllowed"].as_i64())
            == (Some(3), Some(2), Some(3), Some(1))
            && s["observedGeneration"] == 1
    });
    assert!(ok, "web-min status: {}", c.kubectl(&["get", "pdb", "web-min", "-o", "yaml"]).stdout);
    let s = pdb_status(&c, "default", "web-min");
    let cond = &s["conditions"][0];
    assert_eq!((cond["type"].as_str(), cond["status"].as_str(), cond["reason"].as_str()), (Some("DisruptionAllowed"), Some("True"), Some("SufficientPods")));

    // maxUnavailable 50% of the Deployment's 3 replicas rounds up to 2: desired 1, allowed 2.
    let ok = eventually(WAIT, || {
        let s = pdb_status(&c, "default", "web-pct");
        (s["desiredHealthy"].as_i64(), s["expectedPods"].as_i64(), s["disruptionsAllowed"].as_i64()) == (Some(1), Some(3), Some(2))
    });
    assert!(ok, "web-pct status: {}", c.kubectl(&["get", "pdb", "web-pct", "-o", "yaml"]).stdout);

    // The columns kubectl prints.
    let table = c.k(&["get", "pdb"]);
    let header: Vec<&str> = table.lines().next().unwrap().split_whitespace().collect();
    assert_eq!(header, ["NAME", "MIN", "AVAILABLE", "MAX", "UNAVAILABLE", "ALLOWED", "DISRUPTIONS", "AGE"]);
    let row = |name: &str| table.lines().find(|l| l.starts_with(name)).map(|l| l.split_whitespace().take(4).collect::<Vec<_>>());
    assert_eq!(row("web-min ").unwrap(), ["web-min", "2", "N/A", "1"]);
    assert_eq!(row("web-pct ").unwrap(), ["web-pct", "N/A", "50%", "2"]);

    // Raising minAvailable to 3 leaves no disruption: InsufficientPods, new generation observed.
    c.k(&["patch", "pdb", "web-min", "--type=merge", "-p", r#"{"spec":{"minAvailable":3}}"#]);
    let ok = eventually(WAIT, || {
        let s = pdb_status(&c, "default", "web-min");
        s["disruptionsAllowed"] == 0 && s["observedGeneration"] == 2 && s["conditions"][0]["reason"] == "InsufficientPods"
    });
    assert!(ok, "web-min after patch: {}", c.kubectl(&["get", "pdb", "web-min", "-o", "yaml"]).stdout);

    // A PDB selecting nothing expects nothing and allows nothing.
    c.k(&["create", "pdb", "none", "--selector=app=none", "--min-available=0"]);
    let ok = eventually(WAIT, || {
        let s = pdb_status(&c, "default", "none");
        s["expectedPods"] == 0 && s["disruptionsAllowed"] == 0 && s["observedGeneration"] == 1
    });
    assert!(ok, "none status: {}", c.kubectl(&["get", "pdb", "none", "-o", "yaml"]).stdout);
}
