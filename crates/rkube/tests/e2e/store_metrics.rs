//! Store metrics on `/metrics` and the server's periodic compaction.

use std::time::Duration;

use crate::harness::{eventually, Cluster};

/// The value of the first sample line starting with `prefix`.
fn sample(text: &str, prefix: &str) -> Option<f64> {
    text.lines().find(|l| l.starts_with(prefix))?.rsplit(' ').next()?.parse().ok()
}

#[test]
fn metrics_show_store_latency_size_and_compactions() {
    let c = Cluster::start_with(&["--etcd-compaction-interval", "1s"]);
    c.k(&["create", "configmap", "m", "-n", "default"]);
    let text = c.k(&["get", "--raw", "/metrics"]);
    let creates = sample(&text, "etcd_request_duration_seconds_count{operation=\"create\",type=\"embedded\"}");
    assert!(creates.is_some_and(|n| n >= 1.0), "{text}");
    assert!(sample(&text, "apiserver_storage_size_bytes").is_some_and(|n| n > 0.0), "{text}");
    assert!(sample(&text, "rkube_store_watchers").is_some_and(|n| n >= 1.0), "the watch cache's store watches: {text}");
    // Compaction runs on its own, every interval, and shows in the metrics.
    assert!(eventually(Duration::from_secs(20), || {
        let text = c.k(&["get", "--raw", "/metrics"]);
        sample(&text, "rkube_store_compactions_total").is_some_and(|n| n >= 2.0)
            && sample(&text, "rkube_store_compacted_revision").is_some_and(|n| n > 0.0)
    }));
    let (code, _) = c.curl("GET", "/metrics", None, "text/plain", false);
    assert_eq!(code, 401, "metrics need credentials");
}
