//! The kubelet's stats, metrics, pressure conditions and image garbage collection, through the
//! API server's nodes/proxy and kubectl, on a real containerd.

use std::process::Command;
use std::time::Duration;

use crate::harness::{eventually, json, rkube_bin, Cluster};

fn raw(c: &Cluster, path: &str) -> String {
    let node = c.node_name();
    c.kubectl(&["get", "--raw", &format!("/api/v1/nodes/{node}/proxy/{path}")]).stdout
}

fn wait_node_ready(c: &Cluster) {
    let node = c.node_name();
    let ready = eventually(Duration::from_secs(60), || {
        c.kubectl(&["get", "node", &node, "-o", "jsonpath={.status.conditions[?(@.type==\"Ready\")].status}"]).stdout == "True"
    });
    assert!(ready, "node {node} never became Ready: {}", c.kubectl(&["get", "nodes", "-o", "yaml"]).stdout);
}

fn wait_running(c: &Cluster, pod: &str) {
    let ok = eventually(Duration::from_secs(90), || c.kubectl(&["get", "pod", pod, "-o", "jsonpath={.status.phase}"]).stdout == "Running");
    assert!(ok, "pod {pod} never ran: {}", c.kubectl(&["get", "pod", pod, "-o", "yaml"]).stdout);
}

/// The line of `kubectl describe node` for condition `type_`, split into words.
fn condition_line(describe: &str, type_: &str) -> Vec<String> {
    describe
        .lines()
        .map(str::trim)
        .find(|l| l.starts_with(&format!("{type_} ")))
        .map(|l| l.split_whitespace().map(str::to_owned).collect())
        .unwrap_or_default()
}

#[test]
fn stats_summary_and_resource_metrics_show_a_running_pods_usage() {
    let c = Cluster::start_agent();
    wait_node_ready(&c);
    let node = c.node_name();
    c.k(&["run", "st", "--image=rkube.local/busybox:1.35", "--", "sh", "-c", "sleep 3600"]);
    wait_running(&c, "st");

    // The pod shows up at the sampler's next pass (every 10 s), with its container's memory.
    let mut summary = serde_json::Value::Null;
    let listed = eventually(Duration::from_secs(60), || {
        summary = json(&raw(&c, "stats/summary"));
        let pods = summary["pods"].as_array().cloned().unwrap_or_default();
        pods.iter().any(|p| {
            p["podRef"]["name"] == "st"
                && p["podRef"]["namespace"] == "default"
                && p["containers"][0]["name"] == "st"
                && p["containers"][0]["memory"]["workingSetBytes"].as_u64().unwrap_or(0) > 0
                && p["containers"][0]["cpu"]["usageCoreNanoSeconds"].as_u64().is_some()
        })
    });
    assert!(listed, "pod st with non-zero memory not in the summary: {summary}");
    let n = &summary["node"];
    assert_eq!(n["nodeName"], node.as_str());
    assert!(n["cpu"]["usageCoreNanoSeconds"].as_u64().unwrap_or(0) > 0, "{n}");
    assert!(n["memory"]["workingSetBytes"].as_u64().unwrap_or(0) > 0, "{n}");
    assert!(n["memory"]["availableBytes"].as_u64().is_some(), "{n}");
    assert!(n["fs"]["capacityBytes"].as_u64().unwrap_or(0) > 0, "{n}");
    assert!(n["runtime"]["imageFs"]["capacityBytes"].as_u64().unwrap_or(0) > 0, "{n}");
    assert!(n["rlimit"]["maxpid"].as_u64().unwrap_or(0) > 0, "{n}");
    // usageNanoCores needs two samples.
    let rate = eventually(Duration::from_secs(60), || json(&raw(&c, "stats/summary"))["node"]["cpu"]["usageNanoCores"].as_u64().is_some());
    assert!(rate, "no usageNanoCores after two samples");

    let metrics = raw(&c, "metrics/resource");
    for line in [
        "container_memory_working_set_bytes{container=\"st\",namespace=\"default\",pod=\"st\"} ",
        "container_cpu_usage_seconds_total{container=\"st\",namespace=\"default\",pod=\"st\"} ",
        "container_start_time_seconds{container=\"st\",namespace=\"default\",pod=\"st\"} ",
        "pod_memory_working_set_bytes{namespace=\"default\",pod=\"st\"} ",
        "node_cpu_usage_seconds_total ",
        "node_memory_working_set_bytes ",
        "\nscrape_error 0\n",
    ] {
        assert!(metrics.contains(line), "no {line:?} in /metrics/resource:\n{metrics}");
    }
    let kubelet = raw(&c, "metrics");
    assert!(kubelet.contains(&format!("kubelet_node_name{{node=\"{node}\"}} 1")), "{kubelet}");
    let running = kubelet.lines().find_map(|l| l.strip_prefix("kubelet_running_pods ")).and_then(|v| v.parse::<u64>().ok());
    assert!(running.unwrap_or(0) >= 1, "{kubelet}");
    assert!(kubelet.contains("kubelet_running_containers{container_state=\"running\"}"), "{kubelet}");
    assert!(kubelet.contains("kubelet_pod_start_duration_seconds_count "), "{kubelet}");

    // Without the API server's client certificate the kubelet answers 401.
    let port = c.k(&["get", "node", &node, "-o", "jsonpath={.status.daemonEndpoints.kubeletEndpoint.Port}"]);
    let out = Command::new("curl")
        .args(["-sk", "-o", "/dev/null", "-w", "%{http_code}", &format!("https://127.0.0.1:{port}/stats/summary")])
        .output()
        .expect("curl");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "401");

    // The four conditions with upstream's reasons (disk thresholds are off in this cluster).
    let describe = c.k(&["describe", "node", &node]);
    for (type_, status, reason) in [
        ("MemoryPressure", "False", "KubeletHasSufficientMemory"),
        ("DiskPressure", "False", "KubeletHasNoDiskPressure"),
        ("PIDPressure", "False", "KubeletHasSufficientPID"),
        ("Ready", "True", "KubeletReady"),
    ] {
        let words = condition_line(&describe, type_);
        assert!(words.get(1).map(String::as_str) == Some(status) && words.iter().any(|w| w == reason), "{type_}: {words:?}\n{describe}");
    }
}

/// With `nodefs.available<100%` the node has DiskPressure and the disk-pressure taint; with the
/// image GC thresholds forced, an unused image pulled from a loopback registry is removed
/// while an image in use, a pinned (imported) image and the built-in images stay.
#[test]
fn forced_disk_pressure_taints_the_node_and_image_gc_removes_only_unused_images() {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let registry = rt.block_on(rkube_kubelet::testing::registry::Registry::start()).expect("docker-registry on loopback");
    let layer = rkube_kubelet::images::busybox_image_layer(std::path::Path::new(rkube_kubelet::images::BUSYBOX_BINARY)).expect("busybox layer");
    // Two images with different ids: busybox, plus a file naming the image (a tar stream
    // continues past the first one's end-of-archive blocks).
    let image = |name: &str| {
        let mut extra = rkube_kubelet::images::Tar::default();
        extra.file("etc/image-name", 0o644, name.as_bytes());
        let mut bytes = layer[..layer.len() - 1024].to_vec();
        bytes.extend(extra.finish());
        rkube_kubelet::images::oci_image(bytes, &[], &["sh"])
    };
    rt.block_on(registry.push("library/gcme", "1", &image("gcme"))).expect("push gcme");
    rt.block_on(registry.push("library/inuse", "1", &image("inuse"))).expect("push inuse");
    let mirror = format!("mirrors:\n  docker.io:\n    endpoint:\n      - \"{}\"\n", registry.url());
    let c = Cluster::start_agent_with(
        &[
            "--eviction-hard",
            "nodefs.available<100%",
            "--image-gc-high-threshold",
            "1",
            "--image-gc-low-threshold",
            "0",
            "--image-minimum-gc-age",
            "5s",
            "--image-gc-period",
            "2s",
        ],
        |dir| std::fs::write(dir.join("registries.yaml"), &mirror).expect("registries.yaml"),
    );
    wait_node_ready(&c);
    let node = c.node_name();
    let mut describe = String::new();
    let pressured = eventually(Duration::from_secs(60), || {
        describe = c.k(&["describe", "node", &node]);
        let words = condition_line(&describe, "DiskPressure");
        words.get(1).map(String::as_str) == Some("True") && describe.contains("node.kubernetes.io/disk-pressure:NoSchedule")
    });
    assert!(pressured, "no DiskPressure True with its taint:\n{describe}");
    assert!(condition_line(&describe, "DiskPressure").iter().any(|w| w == "KubeletHasDiskPressure"), "{describe}");
    assert_eq!(condition_line(&describe, "MemoryPressure").get(1).map(String::as_str), Some("False"), "{describe}");
    let taints = c.k(&["get", "node", &node, "-o", "jsonpath={.spec.taints[*].key}"]);
    assert_eq!(taints, "node.kubernetes.io/disk-pressure");

    // A pinned image, imported the way users import air-gapped images.
    let tarball = c.dir.path().join("pinned.tar");
    let mut tiny = rkube_kubelet::images::Tar::default();
    tiny.file("hello.txt", 0o644, b"pinned");
    std::fs::write(&tarball, rkube_kubelet::images::oci_archive("rkube.test/pinned:1", &tiny.finish(), &[], &["sh"])).unwrap();
    let out = Command::new(rkube_bin()).args(["images", "import"]).arg(&tarball).arg("--data-dir").arg(c.data_dir()).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

    // Pods bound straight to the node (the taint keeps the scheduler away).
    for (name, image) in [("inuse", "inuse:1"), ("gc", "gcme:1")] {
        let pod = format!(
            r#"{{"apiVersion": "v1", "kind": "Pod", "metadata": {{"name": "{name}"}},
            "spec": {{"nodeName": "{node}", "terminationGracePeriodSeconds": 1,
            "containers": [{{"name": "c", "image": "{image}", "command": ["sleep", "3600"]}}]}}}}"#
        );
        let r = c.kubectl_with(&["create", "-f", "-"], Some(&pod), &[]);
        assert!(r.ok, "{}", r.stderr);
    }
    wait_running(&c, "inuse");
    wait_running(&c, "gc");
    let socket = c.data_dir().join("agent/containerd/containerd.sock");
    let images = || {
        let out = Command::new("ctr").arg("--address").arg(&socket).args(["-n", "k8s.io", "images", "ls", "-q"]).output().expect("ctr");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    assert!(images().contains("docker.io/library/gcme:1"), "{}", images());

    c.k(&["delete", "pod", "gc", "--wait=true"]);
    let mut left = String::new();
    let collected = eventually(Duration::from_secs(90), || {
        left = images();
        !left.contains("docker.io/library/gcme:1")
    });
    assert!(collected, "the unused image was never collected:\n{left}");
    for kept in ["docker.io/library/inuse:1", "rkube.test/pinned:1", "rkube.local/pause:1", "rkube.local/busybox:1.35"] {
        assert!(left.contains(kept), "{kept} was collected:\n{left}");
    }
    // Usage cannot go below the forced low threshold of 0%: upstream's warning, and the
    // pressure change as a node event.
    let mut reasons = String::new();
    let recorded = eventually(Duration::from_secs(30), || {
        reasons = c.k(&["get", "events", "--field-selector", "involvedObject.kind=Node", "-o", "jsonpath={.items[*].reason}"]);
        reasons.contains("FreeDiskSpaceFailed") && reasons.contains("NodeHasDiskPressure")
    });
    assert!(recorded, "missing node events: {reasons}");
}
