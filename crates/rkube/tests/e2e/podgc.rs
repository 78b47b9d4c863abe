//! The pod garbage collector: terminated pods beyond `--terminated-pod-gc-threshold` are
//! deleted, and pods bound to a node that no longer exists are marked and force-deleted.

use std::time::Duration;

use crate::harness::{eventually, Cluster};

/// The sweep period and orphan quarantine are shortened below (upstream: 20 s and 40 s).
const GC_WAIT: Duration = Duration::from_secs(60);

fn pod(c: &Cluster, name: &str, node: Option<&str>) {
    let node = node.map(|n| format!("  nodeName: {n}\n")).unwrap_or_default();
    c.apply(&format!("apiVersion: v1\nkind: Pod\nmetadata: {{name: {name}, namespace: gc}}\nspec:\n{node}  containers: [{{name: c, image: rkube.local/busybox:1.35}}]\n"));
}

fn names(c: &Cluster) -> Vec<String> {
    let out = c.k(&["get", "pods", "-n", "gc", "-o", "jsonpath={.items[*].metadata.name}"]);
    out.split_whitespace().map(str::to_owned).collect()
}

#[test]
fn terminated_pods_over_the_threshold_and_orphans_are_collected() {
    // No scheduler and no nodes: pods stay where the test puts them.
    let c = Cluster::start_with(&["--terminated-pod-gc-threshold", "2", "--disable-scheduler", "--pod-gc-period", "1s", "--pod-gc-quarantine", "2s"]);
    c.k(&["create", "namespace", "gc"]);
    for i in 0..4 {
        pod(&c, &format!("done-{i}"), None);
        c.k(&["patch", "pod", &format!("done-{i}"), "-n", "gc", "--subresource=status", "--type=merge", "-p", r#"{"status":{"phase":"Succeeded"}}"#]);
    }
    pod(&c, "waiting", None);
    pod(&c, "orphan", Some("ghost"));
    let collected = eventually(GC_WAIT, || {
        let n = names(&c);
        n.iter().filter(|p| p.starts_with("done-")).count() == 2 && !n.contains(&"orphan".to_owned())
    });
    assert!(collected, "pods left: {:?}", names(&c));
    // Pods that are neither terminated nor orphaned stay.
    assert!(names(&c).contains(&"waiting".to_owned()));
}
