//! Node IPAM: every node without a podCIDR gets its own range of the cluster CIDR; ranges of
//! deleted nodes are reused, a restarted controller manager rebuilds the table from the nodes,
//! and an exhausted cluster CIDR is reported with a CIDRNotAvailable event.

use crate::harness::{eventually, Cluster};
use crate::namespaces::WAIT;

fn node(c: &Cluster, name: &str) {
    c.apply(&format!("apiVersion: v1\nkind: Node\nmetadata:\n  name: {name}\n  labels: {{kubernetes.io/hostname: {name}}}\n"));
}

fn all(c: &Cluster) -> String {
    c.k(&["get", "nodes", "-o", "jsonpath={..podCIDR}"])
}

fn pod_cidr(c: &Cluster, name: &str) -> String {
    c.kubectl(&["get", "node", name, "-o", "jsonpath={.spec.podCIDR}"]).stdout
}

#[track_caller]
fn wait_cidr(c: &Cluster, name: &str) -> String {
    assert!(eventually(WAIT, || !pod_cidr(c, name).is_empty()), "node {name} got no podCIDR");
    pod_cidr(c, name)
}

#[test]
fn nodes_get_distinct_pod_cidrs_from_the_cluster_cidr() {
    let mut c = Cluster::start_with(&["--cluster-cidr", "10.99.0.0/22"]);
    for n in ["n1", "n2", "n3"] {
        node(&c, n);
    }
    assert!(eventually(WAIT, || all(&c).split_whitespace().count() == 3), "podCIDRs: {}", all(&c));
    let mut cidrs: Vec<String> = all(&c).split_whitespace().map(str::to_owned).collect();
    cidrs.sort();
    assert_eq!(cidrs, ["10.99.0.0/24", "10.99.1.0/24", "10.99.2.0/24"]);
    assert_eq!(c.k(&["get", "node", "n1", "-o", "jsonpath={.spec.podCIDRs[0]}"]), pod_cidr(&c, "n1"));

    // A deleted node's range is handed out again.
    let freed = pod_cidr(&c, "n2");
    c.k(&["delete", "node", "n2"]);
    node(&c, "n4");
    assert_eq!(wait_cidr(&c, "n4"), freed);

    // After a restart the table is rebuilt from the nodes: the last free range, then none.
    c.stop(false);
    c.spawn();
    node(&c, "n5");
    assert_eq!(wait_cidr(&c, "n5"), "10.99.3.0/24");
    node(&c, "n6");
    let reported = eventually(WAIT, || {
        c.k(&["get", "events", "-n", "default", "--field-selector", "involvedObject.name=n6", "-o", "jsonpath={.items[*].reason}"]).contains("CIDRNotAvailable")
    });
    assert!(reported, "no CIDRNotAvailable event for n6: {}", c.k(&["get", "events", "-A"]));
    assert_eq!(pod_cidr(&c, "n6"), "");
    // Freeing a range lets the waiting node have it.
    c.k(&["delete", "node", "n1"]);
    let n6 = wait_cidr(&c, "n6");
    let mut cidrs: Vec<String> = all(&c).split_whitespace().map(str::to_owned).collect();
    cidrs.sort();
    cidrs.dedup();
    assert_eq!(cidrs.len(), 4, "duplicate podCIDRs: {}", all(&c));
    assert!(n6.starts_with("10.99."), "{n6}");
}
