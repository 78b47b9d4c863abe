//! PodDisruptionBudgets: the disruption controller's status, the `pods/eviction` subresource
//! and `kubectl drain`, with `rkube sim-nodes` running pods.

use std::process::Command;
use std::time::Duration;

use crate::harness::Proc;
use crate::harness::{eventually, json, Cluster};

const WAIT: Duration = Duration::from_secs(60);

/// A child `rkube` process killed on drop.
/// `count` simulated nodes named `sim-0`, ..., Ready.
fn sim_nodes(c: &Cluster, count: usize) -> Proc {
    crate::harness::sim_nodes(c, "sim-", count, &[])
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

fn eviction_body(pod: &str) -> String {
    format!(r#"{{"apiVersion":"policy/v1","kind":"Eviction","metadata":{{"name":"{pod}","namespace":"default"}}}}"#)
}

fn evict(c: &Cluster, pod: &str, query: &str) -> (u16, serde_json::Value) {
    let path = format!("/api/v1/namespaces/default/pods/{pod}/eviction{query}");
    let (code, body) = c.curl("POST", &path, Some(&eviction_body(pod)), "application/json", true);
    (code, json(&body))
}

fn pod_exists(c: &Cluster, pod: &str) -> bool {
    let r = c.kubectl(&["get", "pod", pod, "-o", "jsonpath={.metadata.deletionTimestamp}"]);
    r.ok && r.stdout.is_empty()
}

#[test]
fn eviction_honours_the_budget_dry_run_and_refuses_two_budgets() {
    let c = Cluster::start();
    let _nodes = sim_nodes(&c, 2);

    // Discovery lists the subresource as kubectl drain looks for it.
    let (_, v1) = c.curl("GET", "/api/v1", None, "application/json", true);
    let v1 = json(&v1);
    let sub = v1["resources"].as_array().unwrap().iter().find(|r| r["name"] == "pods/eviction").cloned();
    let sub = sub.unwrap_or_else(|| panic!("no pods/eviction in /api/v1"));
    assert_eq!((sub["group"].as_str(), sub["version"].as_str(), sub["kind"].as_str()), (Some("policy"), Some("v1"), Some("Eviction")));
    assert_eq!(sub["verbs"], serde_json::json!(["create"]));

    c.apply(&deployment("web", 2));
    wait_ready(&c, "default", "app=web", 2);
    c.k(&["create", "pdb", "web", "--selector=app=web", "--min-available=2"]);
    let ok = eventually(WAIT, || {
        let s = pdb_status(&c, "default", "web");
        s["observedGeneration"] == 1 && s["currentHealthy"] == 2 && s["disruptionsAllowed"] == 0
    });
    assert!(ok, "pdb status: {}", c.kubectl(&["get", "pdb", "web", "-o", "yaml"]).stdout);
    let pods = live_pods(&c, "default", "app=web");
    let victim = pods[0]["metadata"]["name"].as_str().unwrap().to_owned();

    // No disruption allowed: 429 with the upstream message and cause; the pod stays.
    let (code, body) = evict(&c, &victim, "");
    assert_eq!(code, 429, "{body}");
    assert_eq!(body["reason"], "TooManyRequests");
    assert_eq!(body["message"], "Cannot evict pod as it would violate the pod's disruption budget.");
    assert_eq!(body["details"]["causes"][0]["reason"], "DisruptionBudget");
    assert_eq!(body["details"]["causes"][0]["message"], "The disruption budget web needs 2 healthy pods and has 2 currently");
    assert!(pod_exists(&c, &victim));

    // One disruption allowed: a dry run spends nothing and deletes nothing.
    c.k(&["patch", "pdb", "web", "--type=merge", "-p", r#"{"spec":{"minAvailable":1}}"#]);
    let ok = eventually(WAIT, || {
        let s = pdb_status(&c, "default", "web");
        s["observedGeneration"] == 2 && s["disruptionsAllowed"] == 1
    });
    assert!(ok, "pdb status: {}", c.kubectl(&["get", "pdb", "web", "-o", "yaml"]).stdout);
    let (code, body) = evict(&c, &victim, "?dryRun=All");
    assert_eq!(code, 201, "{body}");
    assert!(pod_exists(&c, &victim));
    assert_eq!(pdb_status(&c, "default", "web")["disruptionsAllowed"], 1);

    // The real eviction deletes the pod, and its replacement restores the budget.
    let (code, body) = evict(&c, &victim, "");
    assert_eq!(code, 201, "{body}");
    assert_eq!(body["status"], "Success");
    let ok = eventually(WAIT, || !pod_exists(&c, &victim));
    assert!(ok, "{victim} was not deleted");
    wait_ready(&c, "default", "app=web", 2);
    let ok = eventually(WAIT, || pdb_status(&c, "default", "web")["disruptionsAllowed"] == 1);
    assert!(ok, "pdb status: {}", c.kubectl(&["get", "pdb", "web", "-o", "yaml"]).stdout);

    // Two budgets for one pod: 500, as upstream.
    c.k(&["create", "pdb", "web2", "--selector=app=web", "--max-unavailable=1"]);
    let pod = live_pods(&c, "default", "app=web")[0]["metadata"]["name"].as_str().unwrap().to_owned();
    let (code, body) = evict(&c, &pod, "");
    assert_eq!(code, 500, "{body}");
    assert_eq!(body["message"], "This pod has more than one PodDisruptionBudget, which the eviction subresource does not support.");
    assert!(pod_exists(&c, &pod));

    // A pod no budget covers is simply deleted, marked as a disruption target first (a
    // finalizer holds it so the mark can be seen).
    c.apply("apiVersion: v1\nkind: Pod\nmetadata: {name: lone, finalizers: [example.com/hold]}\nspec:\n  containers: [{name: c, image: rkube.local/busybox:1.35}]\n");
    let (code, body) = evict(&c, "lone", "");
    assert_eq!(code, 201, "{body}");
    let ok = eventually(WAIT, || !pod_exists(&c, "lone"));
    assert!(ok, "lone was not deleted");
    let lone = json(&c.k(&["get", "pod", "lone", "-o", "json"]));
    let cond = lone["status"]["conditions"].as_array().unwrap().iter().find(|c| c["type"] == "DisruptionTarget").cloned();
    let cond = cond.unwrap_or_else(|| panic!("no DisruptionTarget condition: {lone}"));
    assert_eq!((cond["status"].as_str(), cond["reason"].as_str(), cond["message"].as_str()), (Some("True"), Some("EvictionByEvictionAPI"), Some("Eviction API: evicting")));
    c.k(&["patch", "pod", "lone", "--type=json", "-p", r#"[{"op":"remove","path":"/metadata/finalizers"}]"#]);
    let ok = eventually(WAIT, || !c.kubectl(&["get", "pod", "lone"]).ok);
    assert!(ok, "lone still exists without its finalizer");
}

#[test]
fn kubectl_drain_evicts_one_pod_at_a_time_within_the_budget() {
    let c = Cluster::start();
    let _nodes = sim_nodes(&c, 3);
    // Every pod on sim-0 first.
    c.k(&["cordon", "sim-1"]);
    c.k(&["cordon", "sim-2"]);
    c.apply(&deployment("web", 3));
    wait_ready(&c, "default", "app=web", 3);
    c.k(&["uncordon", "sim-1"]);
    c.k(&["uncordon", "sim-2"]);
    c.k(&["create", "pdb", "web", "--selector=app=web", "--min-available=2"]);
    let ok = eventually(WAIT, || pdb_status(&c, "default", "web")["disruptionsAllowed"] == 1);
    assert!(ok, "pdb status: {}", c.kubectl(&["get", "pdb", "web", "-o", "yaml"]).stdout);

    // Watch the ready pods while draining.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let watcher = {
        let (stop, kubeconfig) = (stop.clone(), c.kubeconfig());
        std::thread::spawn(move || {
            let mut min = usize::MAX;
            while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                let out = Command::new("kubectl")
                    .args(["get", "pods", "-l", "app=web", "-o", "json"])
                    .env("KUBECONFIG", &kubeconfig)
                    .output()
                    .expect("kubectl");
                if let Ok(v) = serde_json::from_slice::<serde_json::Value>(&out.stdout) {
                    let items = v["items"].as_array().cloned().unwrap_or_default();
                    let ready = items.iter().filter(|p| p["metadata"]["deletionTimestamp"].is_null() && is_ready(p)).count();
                    min = min.min(ready);
                }
            }
            min
        })
    };
    let r = c.kubectl(&["drain", "sim-0", "--ignore-daemonsets", "--delete-emptydir-data", "--timeout=150s"]);
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    let min_ready = watcher.join().expect("watcher");
    assert!(r.ok, "drain failed: {}{}\n{}", r.stdout, r.stderr, c.kubectl(&["get", "pods", "-o", "wide"]).stdout);
    assert!(r.stdout.contains("node/sim-0 drained"), "drain output: {}{}", r.stdout, r.stderr);
    // The budget made kubectl wait (429) rather than evict everything at once.
    assert!(
        r.stderr.contains("Cannot evict pod as it would violate the pod's disruption budget."),
        "no eviction was refused: {}{}",
        r.stdout,
        r.stderr
    );
    assert!(min_ready != usize::MAX, "the watcher never read the pods");
    assert!(min_ready >= 2, "ready pods fell to {min_ready} during the drain");
    assert_eq!(c.k(&["get", "node", "sim-0", "-o", "jsonpath={.spec.unschedulable}"]), "true");
    wait_ready(&c, "default", "app=web", 3);
    for p in live_pods(&c, "default", "app=web") {
        assert_ne!(p["spec"]["nodeName"], "sim-0", "a pod is still on the drained node");
    }
}
