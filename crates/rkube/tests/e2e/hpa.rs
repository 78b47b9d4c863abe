//! The horizontal-pod-autoscaler controller inside `rkube server`, with `rkube sim-nodes`
//! running pods, driven through kubectl. No metrics server runs yet, so the HPA must say so
//! as upstream's does and leave the Deployment's size alone.

use std::time::Duration;

use crate::harness::Proc;
use crate::harness::{eventually, json, Cluster};

const WAIT: Duration = Duration::from_secs(60);

/// A child `rkube` process killed on drop.
/// Three simulated nodes, Ready.
fn sim_nodes(c: &Cluster) -> Proc {
    crate::harness::sim_nodes(c, "sim-", 3, &[])
}

fn condition(hpa: &serde_json::Value, type_: &str) -> serde_json::Value {
    let conds = hpa["status"]["conditions"].as_array().cloned().unwrap_or_default();
    conds.into_iter().find(|c| c["type"] == type_).unwrap_or_default()
}

#[test]
fn hpa_without_a_metrics_api_reports_failed_get_resource_metric_and_does_not_scale() {
    let c = Cluster::start();
    let _nodes = sim_nodes(&c);
    c.k(&["create", "deployment", "web", "--image=rkube.local/busybox:1.35", "--replicas=2"]);
    c.k(&["set", "resources", "deploy", "web", "--requests=cpu=100m"]);
    c.k(&["autoscale", "deploy", "web", "--cpu-percent=50", "--min=1", "--max=5"]);

    let mut last = serde_json::Value::Null;
    let ok = eventually(WAIT, || {
        last = json(&c.k(&["get", "hpa", "web", "-o", "json"]));
        condition(&last, "ScalingActive")["reason"] == "FailedGetResourceMetric" && last["status"]["currentReplicas"] == 2
    });
    assert!(ok, "the HPA never reported FailedGetResourceMetric: {last:#}");
    let active = condition(&last, "ScalingActive");
    assert_eq!(active["status"], "False", "{last:#}");
    let msg = active["message"].as_str().unwrap_or_default();
    assert!(
        msg.starts_with("the HPA was unable to compute the replica count: failed to get cpu utilization: unable to get metrics for resource cpu: "),
        "{msg}"
    );
    let able = condition(&last, "AbleToScale");
    assert_eq!((able["status"].as_str(), able["reason"].as_str()), (Some("True"), Some("SucceededGetScale")), "{last:#}");
    assert!(last["status"]["lastScaleTime"].is_null(), "nothing was scaled: {last:#}");

    let mut described = String::new();
    let ok = eventually(WAIT, || {
        described = c.k(&["describe", "hpa", "web"]);
        described.contains("FailedGetResourceMetric") && described.contains("FailedComputeMetricsReplicas")
    });
    assert!(ok, "kubectl describe hpa shows no FailedGetResourceMetric event:\n{described}");
    assert!(described.contains("ScalingActive"), "{described}");

    // A further sync period later the Deployment still asks for 2 replicas.
    std::thread::sleep(Duration::from_secs(16));
    let replicas = c.k(&["get", "deploy", "web", "-o", "jsonpath={.spec.replicas}"]);
    assert_eq!(replicas, "2");
    let hpa = json(&c.k(&["get", "hpa", "web", "-o", "json"]));
    assert_eq!(hpa["status"]["currentReplicas"], 2, "{hpa:#}");
    assert_eq!(condition(&hpa, "ScalingActive")["reason"], "FailedGetResourceMetric", "{hpa:#}");
}
