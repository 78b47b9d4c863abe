//! ResourceQuota: the admission plugin refusing what would exceed a quota (with upstream's
//! messages), the resourcequota controller's usage, `kubectl describe quota`, and a
//! Deployment whose pods the quota refuses.

use std::time::Duration;

use crate::harness::{eventually, json, Cluster};

const WAIT: Duration = Duration::from_secs(60);

fn used(c: &Cluster, ns: &str, quota: &str, resource: &str) -> String {
    let r = c.kubectl(&["get", "quota", quota, "-n", ns, "-o", "json"]);
    if !r.ok {
        return String::new();
    }
    json(&r.stdout)["status"]["used"][resource].as_str().unwrap_or_default().to_owned()
}

fn pod_yaml(ns: &str, name: &str, resources: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Pod\nmetadata: {{name: {name}, namespace: {ns}}}\nspec:\n  containers: [{{name: c, image: rkube.local/busybox:1.35{resources}}}]\n"
    )
}

fn create(c: &Cluster, yaml: &str) -> crate::harness::Run {
    c.kubectl_with(&["create", "-f", "-"], Some(yaml), &[])
}

#[test]
fn quota_refuses_the_third_pod_and_counts_usage() {
    let c = Cluster::start();
    c.k(&["create", "namespace", "q"]);
    c.k(&["create", "quota", "q", "-n", "q", "--hard=pods=2,count/configmaps=5,services=3"]);
    let ok = eventually(WAIT, || used(&c, "q", "q", "pods") == "0");
    assert!(ok, "quota status not computed: {}", c.kubectl(&["get", "quota", "q", "-n", "q", "-o", "yaml"]).stdout);
    // the namespace's own objects are counted (kube-root-ca.crt)
    let ok = eventually(WAIT, || used(&c, "q", "q", "count/configmaps") == "1");
    assert!(ok, "configmaps not counted: {}", c.kubectl(&["get", "quota", "q", "-n", "q", "-o", "yaml"]).stdout);

    for name in ["p1", "p2"] {
        let r = create(&c, &pod_yaml("q", name, ""));
        assert!(r.ok, "{name}: {}", r.stderr);
    }
    let r = create(&c, &pod_yaml("q", "p3", ""));
    assert!(!r.ok, "the third pod was admitted");
    assert!(
        r.stderr.contains("pods \"p3\" is forbidden: exceeded quota: q, requested: pods=1, used: pods=2, limited: pods=2"),
        "stderr: {}",
        r.stderr
    );
    // the same refusal as a Status: 403 Forbidden
    let (code, body) = c.curl("POST", "/api/v1/namespaces/q/pods", Some(&pod_yaml("q", "p4", "")), "application/yaml", true);
    assert_eq!(code, 403, "{body}");
    let body = json(&body);
    assert_eq!((body["reason"].as_str(), body["details"]["name"].as_str()), (Some("Forbidden"), Some("p4")));

    let ok = eventually(WAIT, || {
        let d = c.kubectl(&["describe", "quota", "q", "-n", "q"]).stdout;
        let row = |r: &str| d.lines().find(|l| l.starts_with(r)).map(|l| l.split_whitespace().collect::<Vec<_>>());
        d.contains("Resource") && d.contains("Used") && d.contains("Hard")
            && row("pods ") == Some(vec!["pods", "2", "2"])
            && row("services ") == Some(vec!["services", "0", "3"])
    });
    assert!(ok, "describe: {}", c.kubectl(&["describe", "quota", "q", "-n", "q"]).stdout);

    // Deleting a pod gives its share back.
    c.k(&["delete", "pod", "p1", "-n", "q", "--grace-period=0", "--force"]);
    let ok = eventually(WAIT, || used(&c, "q", "q", "pods") == "1");
    assert!(ok, "usage not replenished: {}", c.kubectl(&["get", "quota", "q", "-n", "q", "-o", "yaml"]).stdout);
    let r = create(&c, &pod_yaml("q", "p3", ""));
    assert!(r.ok, "p3 after a deletion: {}", r.stderr);
}

#[test]
fn compute_quota_requires_requests_and_parallel_creates_cannot_overshoot() {
    let c = Cluster::start();
    c.k(&["create", "namespace", "cq"]);
    c.k(&["create", "quota", "compute", "-n", "cq", "--hard=requests.cpu=1,pods=3"]);
    let ok = eventually(WAIT, || used(&c, "cq", "compute", "requests.cpu") == "0");
    assert!(ok, "quota status not computed: {}", c.kubectl(&["get", "quota", "-n", "cq", "-o", "yaml"]).stdout);
    let r = create(&c, &pod_yaml("cq", "bare", ""));
    assert!(!r.ok);
    assert!(r.stderr.contains("pods \"bare\" is forbidden: failed quota: compute: must specify requests.cpu for: c"), "stderr: {}", r.stderr);

    let small = ", resources: {requests: {cpu: 300m}}";
    // Six creates at once against room for three: exactly three are admitted.
    let results: Vec<bool> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..6).map(|i| {
            let c = &c;
            s.spawn(move || create(c, &pod_yaml("cq", &format!("p{i}"), small)).ok)
        }).collect();
        handles.into_iter().map(|h| h.join().expect("create thread")).collect()
    });
    assert_eq!(results.iter().filter(|ok| **ok).count(), 3, "admitted: {results:?}");
    let pods = json(&c.k(&["get", "pods", "-n", "cq", "-o", "json"]));
    assert_eq!(pods["items"].as_array().unwrap().len(), 3);
    let ok = eventually(WAIT, || used(&c, "cq", "compute", "requests.cpu") == "900m" && used(&c, "cq", "compute", "pods") == "3");
    assert!(ok, "usage: {}", c.kubectl(&["get", "quota", "-n", "cq", "-o", "yaml"]).stdout);
}

#[test]
fn a_deployment_under_quota_reports_replica_failure() {
    let c = Cluster::start();
    c.k(&["create", "namespace", "dq"]);
    c.k(&["create", "quota", "q", "-n", "dq", "--hard=pods=1"]);
    let ok = eventually(WAIT, || used(&c, "dq", "q", "pods") == "0");
    assert!(ok, "quota status not computed");
    c.k(&["create", "deployment", "web", "-n", "dq", "--image=rkube.local/busybox:1.35", "--replicas=3"]);
    let ok = eventually(WAIT, || {
        let d = json(&c.k(&["get", "deploy", "web", "-n", "dq", "-o", "json"]));
        d["status"]["conditions"].as_array().is_some_and(|cs| {
            cs.iter().any(|c| c["type"] == "ReplicaFailure" && c["status"] == "True" && c["reason"] == "FailedCreate"
                && c["message"].as_str().is_some_and(|m| m.contains("exceeded quota: q, requested: pods=1, used: pods=1, limited: pods=1")))
        })
    });
    assert!(ok, "deployment: {}", c.kubectl(&["get", "deploy,rs", "-n", "dq", "-o", "yaml"]).stdout);
    let pods = json(&c.k(&["get", "pods", "-n", "dq", "-o", "json"]));
    assert_eq!(pods["items"].as_array().unwrap().len(), 1, "the quota admits one pod");
    let events = c.k(&["get", "events", "-n", "dq", "-o", "json"]);
    let failed = json(&events)["items"].as_array().unwrap().iter().any(|e| {
        e["reason"] == "FailedCreate"
            && e["message"].as_str().is_some_and(|m| m.starts_with("Error creating: pods \"web-") && m.contains("is forbidden: exceeded quota: q"))
    });
    assert!(failed, "no FailedCreate event: {events}");

    // Raising the quota lets the ReplicaSet finish and clears the condition.
    c.k(&["patch", "quota", "q", "-n", "dq", "--type=merge", "-p", r#"{"spec":{"hard":{"pods":"3"}}}"#]);
    let ok = eventually(WAIT, || {
        let d = json(&c.k(&["get", "deploy", "web", "-n", "dq", "-o", "json"]));
        d["status"]["replicas"] == 3 && !d["status"]["conditions"].as_array().is_some_and(|cs| cs.iter().any(|c| c["type"] == "ReplicaFailure"))
    });
    assert!(ok, "deployment after raising the quota: {}", c.kubectl(&["get", "deploy,rs", "-n", "dq", "-o", "yaml"]).stdout);
}
