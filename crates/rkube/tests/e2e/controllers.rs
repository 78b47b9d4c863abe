//! The controller manager inside `rkube server` (and `rkube controller-manager` alone), with
//! `rkube sim-nodes` running pods, driven through kubectl as a user would.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::harness::{eventually, json, rkube_bin, Cluster};

const WAIT: Duration = Duration::from_secs(40);

/// A child `rkube` process killed on drop.
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn rkube(c: &Cluster, args: &[&str]) -> Proc {
    let child = Command::new(rkube_bin())
        .args(args)
        .arg("--kubeconfig")
        .arg(c.kubeconfig())
        .env("RKUBE_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start rkube");
    Proc(child)
}

/// Three simulated nodes, Ready.
fn sim_nodes(c: &Cluster) -> Proc {
    let p = rkube(c, &["sim-nodes", "--count", "3", "--name-prefix", "sim-"]);
    let ok = eventually(WAIT, || {
        let out = c.kubectl(&["get", "nodes", "-o", "jsonpath={range .items[*]}{.status.conditions[?(@.type==\"Ready\")].status}{\"\\n\"}{end}"]);
        out.stdout.lines().filter(|l| *l == "True").count() == 3
    });
    assert!(ok, "3 sim nodes did not become Ready");
    p
}

/// Pods of namespace `ns` with label selector `selector`, as JSON items.
fn pods(c: &Cluster, ns: &str, selector: &str) -> Vec<serde_json::Value> {
    let out = c.k(&["get", "pods", "-n", ns, "-l", selector, "-o", "json"]);
    json(&out)["items"].as_array().cloned().unwrap_or_default()
}

fn live(items: &[serde_json::Value]) -> Vec<&serde_json::Value> {
    items.iter().filter(|p| p["metadata"]["deletionTimestamp"].is_null()).collect()
}

fn running(items: &[serde_json::Value]) -> usize {
    live(items).iter().filter(|p| p["status"]["phase"] == "Running").count()
}

fn names(items: &[&serde_json::Value]) -> Vec<String> {
    items.iter().map(|p| p["metadata"]["name"].as_str().unwrap_or_default().to_owned()).collect()
}

#[track_caller]
fn wait_running(c: &Cluster, ns: &str, selector: &str, count: usize) {
    let ok = eventually(WAIT, || {
        let items = pods(c, ns, selector);
        live(&items).len() == count && running(&items) == count
    });
    assert!(ok, "expected {count} Running pods for {selector} in {ns}: {}", c.kubectl(&["get", "pods", "-n", ns, "-o", "wide"]).stdout);
}

fn controller_of(pod: &serde_json::Value) -> Option<String> {
    pod["metadata"]["ownerReferences"]
        .as_array()?
        .iter()
        .find(|r| r["controller"] == true)
        .map(|r| format!("{}/{}", r["kind"].as_str().unwrap_or(""), r["name"].as_str().unwrap_or("")))
}

const RS: &str = "apiVersion: apps/v1
kind: ReplicaSet
metadata: {name: front, namespace: rs}
spec:
  replicas: 3
  selector: {matchLabels: {app: front}}
  template:
    metadata: {labels: {app: front}}
    spec:
      containers: [{name: c, image: rkube.local/busybox:1.35}]
";

#[test]
fn replicaset_keeps_its_replicas_adopts_orphans_and_releases_relabelled_pods() {
    let c = Cluster::start();
    let _nodes = sim_nodes(&c);
    c.k(&["create", "namespace", "rs"]);
    c.apply(RS);
    wait_running(&c, "rs", "app=front", 3);
    let items = pods(&c, "rs", "app=front");
    for p in &items {
        assert_eq!(controller_of(p).as_deref(), Some("ReplicaSet/front"));
        assert!(p["metadata"]["name"].as_str().unwrap().starts_with("front-"));
    }
    let ok = eventually(WAIT, || {
        c.kubectl(&["get", "rs", "front", "-n", "rs", "-o", "jsonpath={.status.readyReplicas}/{.status.availableReplicas}/{.status.observedGeneration}"]).stdout == "3/3/1"
    });
    assert!(ok, "status: {}", c.kubectl(&["get", "rs", "front", "-n", "rs", "-o", "yaml"]).stdout);

    // A deleted pod is replaced.
    let victim = names(&live(&items))[0].clone();
    c.k(&["delete", "pod", "-n", "rs", &victim, "--wait=false"]);
    let ok = eventually(WAIT, || {
        let items = pods(&c, "rs", "app=front");
        let live = live(&items);
        live.len() == 3 && !names(&live).contains(&victim) && running(&items) == 3
    });
    assert!(ok, "pod {victim} was not replaced: {}", c.kubectl(&["get", "pods", "-n", "rs"]).stdout);

    // An orphan matching the selector is adopted, and the surplus deleted.
    c.apply("apiVersion: v1\nkind: Pod\nmetadata: {name: stray, namespace: rs, labels: {app: front}}\nspec:\n  containers: [{name: c, image: rkube.local/busybox:1.35}]\n");
    let ok = eventually(WAIT, || {
        let items = pods(&c, "rs", "app=front");
        let live = live(&items);
        live.len() == 3 && live.iter().all(|p| controller_of(p).as_deref() == Some("ReplicaSet/front"))
    });
    assert!(ok, "orphan not adopted or surplus not deleted: {}", c.kubectl(&["get", "pods", "-n", "rs", "-o", "yaml"]).stdout);

    // A pod relabelled out of the selector is released and replaced.
    let items = pods(&c, "rs", "app=front");
    let moved = names(&live(&items))[0].clone();
    c.k(&["label", "pod", "-n", "rs", &moved, "app=elsewhere", "--overwrite"]);
    let ok = eventually(WAIT, || {
        let released = c.kubectl(&["get", "pod", "-n", "rs", &moved, "-o", "json"]);
        let released_ok = released.ok && controller_of(&json(&released.stdout)).is_none();
        released_ok && live(&pods(&c, "rs", "app=front")).len() == 3
    });
    assert!(ok, "relabelled pod not released/replaced: {}", c.kubectl(&["get", "pods", "-n", "rs", "--show-labels"]).stdout);

    // Scaling.
    c.k(&["scale", "rs", "front", "-n", "rs", "--replicas=5"]);
    wait_running(&c, "rs", "app=front", 5);
    c.k(&["scale", "rs", "front", "-n", "rs", "--replicas=1"]);
    wait_running(&c, "rs", "app=front", 1);
    let events = c.k(&["get", "events", "-n", "rs", "--field-selector", "involvedObject.name=front", "-o", "jsonpath={.items[*].reason}"]);
    assert!(events.contains("SuccessfulCreate") && events.contains("SuccessfulDelete"), "events: {events}");
}

#[test]
fn controller_manager_runs_alone_with_leader_election() {
    let c = Cluster::start_with(&["--disable-controller-manager"]);
    let _nodes = sim_nodes(&c);
    c.k(&["create", "namespace", "rs"]);
    c.apply(RS);
    let _cm = rkube(&c, &["controller-manager", "--controllers", "*,-deployment"]);
    wait_running(&c, "rs", "app=front", 3);
    let holder = c.k(&["get", "lease", "-n", "kube-system", "kube-controller-manager", "-o", "jsonpath={.spec.holderIdentity}"]);
    assert!(holder.starts_with("rkube-controller-manager_"), "lease holder: {holder}");
}
