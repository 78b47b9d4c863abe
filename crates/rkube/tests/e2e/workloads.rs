//! DaemonSets and StatefulSets (with PersistentVolumeClaims bound by the local-path
//! provisioner) on simulated nodes, driven through kubectl as a user would.

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

/// `rkube sim-nodes` with `count` Ready nodes named `<prefix>0..`.
fn sim_nodes(c: &Cluster, count: usize, prefix: &str) -> Proc {
    let child = Command::new(rkube_bin())
        .args(["sim-nodes", "--count", &count.to_string(), "--name-prefix", prefix, "--kubeconfig"])
        .arg(c.kubeconfig())
        .env("RKUBE_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start rkube sim-nodes");
    let p = Proc(child);
    let ok = eventually(WAIT, || {
        let out = c.kubectl(&["get", "nodes", "-o", "jsonpath={range .items[*]}{.metadata.name} {.status.conditions[?(@.type==\"Ready\")].status}{\"\\n\"}{end}"]);
        out.stdout.lines().filter(|l| l.starts_with(prefix) && l.ends_with(" True")).count() == count
    });
    assert!(ok, "{count} sim nodes {prefix}* did not become Ready");
    p
}

fn pods(c: &Cluster, ns: &str, selector: &str) -> Vec<serde_json::Value> {
    let out = c.k(&["get", "pods", "-n", ns, "-l", selector, "-o", "json"]);
    json(&out)["items"].as_array().cloned().unwrap_or_default().into_iter().filter(|p| p["metadata"]["deletionTimestamp"].is_null()).collect()
}

/// `node -> image` of the Running pods.
fn running_by_node(c: &Cluster, ns: &str, selector: &str) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = pods(c, ns, selector)
        .iter()
        .filter(|p| p["status"]["phase"] == "Running")
        .map(|p| (p["spec"]["nodeName"].as_str().unwrap_or("").to_owned(), p["spec"]["containers"][0]["image"].as_str().unwrap_or("").to_owned()))
        .collect();
    out.sort();
    out
}

fn dump(c: &Cluster, ns: &str) -> String {
    c.kubectl(&["get", "ds,sts,pods,pvc,pv,controllerrevisions", "-n", ns, "-o", "wide"]).stdout
}

const DS: &str = "apiVersion: apps/v1
kind: DaemonSet
metadata: {name: agent, namespace: default}
spec:
  selector: {matchLabels: {app: agent}}
  template:
    metadata: {labels: {app: agent}}
    spec:
      containers: [{name: agent, image: rkube.local/busybox:1.35}]
";

#[test]
fn daemonset_runs_one_pod_per_eligible_node_and_rolls_out_an_image_change() {
    let c = Cluster::start();
    let _nodes = sim_nodes(&c, 3, "sim-");
    c.k(&["taint", "node", "sim-2", "dedicated=infra:NoSchedule"]);
    c.apply(DS);
    let want = |image: &str, nodes: &[&str]| -> Vec<(String, String)> { nodes.iter().map(|n| (n.to_string(), image.to_string())).collect() };
    let v1 = "rkube.local/busybox:1.35";
    let ok = eventually(WAIT, || running_by_node(&c, "default", "app=agent") == want(v1, &["sim-0", "sim-1"]));
    assert!(ok, "one pod on each untainted node: {}", dump(&c, "default"));
    let r = c.kubectl(&["rollout", "status", "ds/agent", "--timeout=60s"]);
    assert!(r.ok && r.stdout.contains("successfully rolled out"), "rollout status: {}{}", r.stdout, r.stderr);
    let ds = json(&c.k(&["get", "ds", "agent", "-o", "json"]));
    let s = &ds["status"];
    assert_eq!((s["desiredNumberScheduled"].as_i64(), s["currentNumberScheduled"].as_i64(), s["numberReady"].as_i64()), (Some(2), Some(2), Some(2)));
    assert_eq!((s["numberMisscheduled"].as_i64(), s["updatedNumberScheduled"].as_i64()), (Some(0), Some(2)));
    // Each pod is pinned through matchFields, tolerates the node conditions and names its revision.
    let pod = &pods(&c, "default", "app=agent")[0];
    let field = &pod["spec"]["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"][0]["matchFields"][0];
    assert_eq!((field["key"].as_str(), field["values"][0].as_str()), (Some("metadata.name"), pod["spec"]["nodeName"].as_str()));
    let tolerations = pod["spec"]["tolerations"].to_string();
    assert!(tolerations.contains("node.kubernetes.io/unreachable") && tolerations.contains("node.kubernetes.io/unschedulable"), "{tolerations}");
    let hash = pod["metadata"]["labels"]["controller-revision-hash"].as_str().unwrap().to_owned();
    let revisions = c.k(&["get", "controllerrevisions", "-o", "name"]);
    assert!(revisions.contains(&format!("agent-{hash}")), "{revisions}");

    // A node added later gets its pod.
    let _more = sim_nodes(&c, 1, "late-");
    let ok = eventually(WAIT, || running_by_node(&c, "default", "app=agent") == want(v1, &["late-0", "sim-0", "sim-1"]));
    assert!(ok, "the new node gets a pod: {}", dump(&c, "default"));

    // An image change rolls out node by node; rollout status waits for it.
    c.k(&["set", "image", "ds/agent", "agent=rkube.local/busybox:1.36"]);
    let r = c.kubectl(&["rollout", "status", "ds/agent", "--timeout=90s"]);
    assert!(r.ok && r.stdout.contains("successfully rolled out"), "rollout status: {}{}\n{}", r.stdout, r.stderr, dump(&c, "default"));
    let ok = eventually(WAIT, || running_by_node(&c, "default", "app=agent") == want("rkube.local/busybox:1.36", &["late-0", "sim-0", "sim-1"]));
    assert!(ok, "every node runs the new image: {}", dump(&c, "default"));
    assert_eq!(c.k(&["get", "controllerrevisions", "-o", "name"]).lines().count(), 2);

    // Removing the taint's node label match: deleting a node removes its pod.
    c.k(&["delete", "node", "late-0", "--wait=false"]);
    let ok = eventually(WAIT, || pods(&c, "default", "app=agent").iter().all(|p| p["spec"]["nodeName"] != "late-0"));
    assert!(ok, "the removed node's pod is deleted: {}", dump(&c, "default"));
}
