//! The kubelet's Prometheus endpoints: `/metrics/resource` (the resource metrics metrics-server
//! scrapes, upstream pkg/kubelet/metrics/collectors/resource_metrics.go: same names, labels,
//! help texts and sample timestamps) and `/metrics` (a few kubelet_* basics and process_*).

use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;
use std::sync::{Arc, Mutex};

use crate::stats::{RawSample, Stats, Summary};

/// Buckets of `kubelet_pod_start_duration_seconds` (upstream's).
pub const POD_START_BUCKETS: [f64; 25] =
    [0.5, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 8.0, 10.0, 20.0, 30.0, 45.0, 60.0, 120.0, 180.0, 240.0, 300.0, 360.0, 480.0, 600.0, 900.0, 1200.0, 1800.0, 2700.0, 3600.0];

/// What the metrics endpoints read: the sampler's latest Summary, and the kubelet's own counters.
#[derive(Clone)]
pub struct Sources {
    pub stats: Stats,
    pub kubelet: Arc<KubeletMetrics>,
}

/// A histogram with fixed buckets.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Histogram {
    /// Cumulative counts, one per bucket of [`POD_START_BUCKETS`].
    pub buckets: Vec<u64>,
    pub count: u64,
    pub sum: f64,
}

impl Histogram {
    pub fn observe(&mut self, v: f64) {
        if self.buckets.is_empty() {
            self.buckets = vec![0; POD_START_BUCKETS.len()];
        }
        for (i, le) in POD_START_BUCKETS.iter().enumerate() {
            if v <= *le {
                self.buckets[i] += 1;
            }
        }
        self.count += 1;
        self.sum += v;
    }
}

/// The kubelet's own metrics (`/metrics`).
#[derive(Debug, Default)]
pub struct KubeletMetrics {
    pub node_name: String,
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    pod_start: Histogram,
    /// Pods whose start was observed (uids), pruned to the pods still running.
    started: HashSet<String>,
}

impl KubeletMetrics {
    pub fn new(node_name: &str) -> KubeletMetrics {
        KubeletMetrics { node_name: node_name.into(), inner: Mutex::default() }
    }

    /// Observes the start of every pod of `raw` seen running for the first time: from its
    /// sandbox's creation to its last container's creation (the kubelet's pod start as the
    /// runtime recorded it).
    pub fn observe_sample(&self, raw: &RawSample) {
        let mut inner = self.inner.lock().expect("metrics lock is never poisoned");
        let running: HashSet<&str> = raw.pods.iter().map(|p| p.uid.as_str()).collect();
        inner.started.retain(|uid| running.contains(uid.as_str()));
        for p in &raw.pods {
            let Some(last) = p.containers.iter().map(|c| c.created_ns).max() else { continue };
            if inner.started.insert(p.uid.clone()) {
                inner.pod_start.observe((last - p.created_ns).max(0) as f64 / 1e9);
            }
        }
    }

    pub fn pod_start(&self) -> Histogram {
        self.inner.lock().expect("metrics lock is never poisoned").pod_start.clone()
    }
}

/// A float as Prometheus and Go's strconv print it.
fn num(v: f64) -> String {
    if v.is_infinite() {
        return if v > 0.0 { "+Inf".into() } else { "-Inf".into() };
    }
    format!("{v}")
}

fn escape(v: &str) -> String {
    v.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

fn labels(pairs: &[(&str, &str)]) -> String {
    if pairs.is_empty() {
        return String::new();
    }
    let inner: Vec<String> = pairs.iter().map(|(k, v)| format!("{k}=\"{}\"", escape(v))).collect();
    format!("{{{}}}", inner.join(","))
}

fn header(out: &mut String, name: &str, help: &str, kind: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

fn millis(t: &k8s_openapi::apimachinery::pkg::apis::meta::v1::Time) -> i64 {
    t.0.as_millisecond()
}

/// `/metrics/resource` from the latest Summary (`None`: the scrape failed, `scrape_error 1`).
pub fn resource_metrics(summary: Option<&Summary>) -> String {
    let mut out = String::new();
    let mut node_cpu = Vec::new();
    let mut node_mem = Vec::new();
    let mut start = Vec::new();
    let mut c_cpu = Vec::new();
    let mut c_mem = Vec::new();
    let mut p_cpu = Vec::new();
    let mut p_mem = Vec::new();
    if let Some(s) = summary {
        if let Some(cpu) = &s.node.cpu {
            if let Some(v) = cpu.usage_core_nano_seconds {
                node_cpu.push(format!("node_cpu_usage_seconds_total {} {}", num(v as f64 / 1e9), millis(&cpu.time)));
            }
        }
        if let Some(m) = &s.node.memory {
            if let (Some(v), Some(t)) = (m.working_set_bytes, &m.time) {
                node_mem.push(format!("node_memory_working_set_bytes {} {}", num(v as f64), millis(t)));
            }
        }
        for pod in &s.pods {
            let (name, ns) = (pod.pod_ref.name.as_str(), pod.pod_ref.namespace.as_str());
            for c in &pod.containers {
                let l = labels(&[("container", &c.name), ("namespace", ns), ("pod", name)]);
                if c.start_time.0.as_second() > 0 {
                    start.push(format!("container_start_time_seconds{l} {}", num(c.start_time.0.as_nanosecond() as f64 / 1e9)));
                }
                if let Some(cpu) = &c.cpu {
                    if let Some(v) = cpu.usage_core_nano_seconds {
                        c_cpu.push(format!("container_cpu_usage_seconds_total{l} {} {}", num(v as f64 / 1e9), millis(&cpu.time)));
                    }
                }
                if let Some(m) = &c.memory {
                    if let (Some(v), Some(t)) = (m.working_set_bytes, &m.time) {
                        c_mem.push(format!("container_memory_working_set_bytes{l} {} {}", num(v as f64), millis(t)));
                    }
                }
            }
            let l = labels(&[("namespace", ns), ("pod", name)]);
            if let Some(cpu) = &pod.cpu {
                if let Some(v) = cpu.usage_core_nano_seconds {
                    p_cpu.push(format!("pod_cpu_usage_seconds_total{l} {} {}", num(v as f64 / 1e9), millis(&cpu.time)));
                }
            }
            if let Some(m) = &pod.memory {
                if let (Some(v), Some(t)) = (m.working_set_bytes, &m.time) {
                    p_mem.push(format!("pod_memory_working_set_bytes{l} {} {}", num(v as f64), millis(t)));
                }
            }
        }
    }
    // Families in name order, as the Prometheus client library writes them.
    let families: [(&str, &str, &str, &Vec<String>); 7] = [
        ("container_cpu_usage_seconds_total", "[STABLE] Cumulative cpu time consumed by the container in core-seconds", "counter", &c_cpu),
        ("container_memory_working_set_bytes", "[STABLE] Current working set of the container in bytes", "gauge", &c_mem),
        ("container_start_time_seconds", "[STABLE] Start time of the container since unix epoch in seconds", "gauge", &start),
        ("node_cpu_usage_seconds_total", "[STABLE] Cumulative cpu time consumed by the node in core-seconds", "counter", &node_cpu),
        ("node_memory_working_set_bytes", "[STABLE] Current working set of the node in bytes", "gauge", &node_mem),
        ("pod_cpu_usage_seconds_total", "[STABLE] Cumulative cpu time consumed by the pod in core-seconds", "counter", &p_cpu),
        ("pod_memory_working_set_bytes", "[STABLE] Current working set of the pod in bytes", "gauge", &p_mem),
    ];
    let error = if summary.is_some() { "0" } else { "1" };
    for (name, help, kind, lines) in families {
        if lines.is_empty() {
            continue;
        }
        header(&mut out, name, help, kind);
        for l in lines {
            out.push_str(l);
            out.push('\n');
        }
    }
    header(&mut out, "resource_scrape_error", "[STABLE] 1 if there was an error while getting container metrics, 0 otherwise", "gauge");
    let _ = writeln!(out, "resource_scrape_error {error}");
    header(&mut out, "scrape_error", "[ALPHA] (Deprecated since 1.29.0) 1 if there was an error while getting container metrics, 0 otherwise", "gauge");
    let _ = writeln!(out, "scrape_error {error}");
    out
}

/// Containers by CRI state name, as `kubelet_running_containers{container_state}` counts them.
pub type ContainerStates = HashMap<&'static str, u64>;

/// The process' own numbers from `/proc/self/stat` text: (cpu seconds, resident bytes,
/// start time seconds since boot), with `ticks` per second and `page` bytes.
pub fn process_stat(stat: &str, ticks: f64, page: u64) -> Option<(f64, u64, f64)> {
    // The command may hold spaces and parentheses: fields start after the last ')'.
    let rest = &stat[stat.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    // rest[0] is field 3 (state); utime 14, stime 15, starttime 22, rss 24.
    let field = |n: usize| f.get(n - 3).and_then(|v| v.parse::<u64>().ok());
    let cpu = (field(14)? + field(15)?) as f64 / ticks;
    Some((cpu, field(24)? * page, field(22)? as f64 / ticks))
}

/// `/metrics`: kubelet_node_name, running pods and containers, the pod start histogram and
/// process metrics.
pub fn kubelet_metrics(m: &KubeletMetrics, running_pods: Option<u64>, containers: Option<&ContainerStates>, boot_time: Option<i64>) -> String {
    let mut out = String::new();
    header(&mut out, "kubelet_node_name", "[ALPHA] The node's name. The count is always 1.", "gauge");
    let _ = writeln!(out, "kubelet_node_name{} 1", labels(&[("node", &m.node_name)]));
    let h = m.pod_start();
    header(&mut out, "kubelet_pod_start_duration_seconds", "[ALPHA] Duration in seconds from kubelet seeing a pod for the first time to the pod starting to run", "histogram");
    for (i, le) in POD_START_BUCKETS.iter().enumerate() {
        let _ = writeln!(out, "kubelet_pod_start_duration_seconds_bucket{} {}", labels(&[("le", &num(*le))]), h.buckets.get(i).copied().unwrap_or(0));
    }
    let _ = writeln!(out, "kubelet_pod_start_duration_seconds_bucket{{le=\"+Inf\"}} {}", h.count);
    let _ = writeln!(out, "kubelet_pod_start_duration_seconds_sum {}", num(h.sum));
    let _ = writeln!(out, "kubelet_pod_start_duration_seconds_count {}", h.count);
    if let Some(states) = containers {
        header(&mut out, "kubelet_running_containers", "[ALPHA] Number of containers currently running", "gauge");
        let mut names: Vec<&&str> = states.keys().collect();
        names.sort();
        for state in names {
            let _ = writeln!(out, "kubelet_running_containers{} {}", labels(&[("container_state", state)]), states[*state]);
        }
    }
    if let Some(pods) = running_pods {
        header(&mut out, "kubelet_running_pods", "[ALPHA] Number of pods that have a running pod sandbox", "gauge");
        let _ = writeln!(out, "kubelet_running_pods {pods}");
    }
    // SAFETY: sysconf(3) only reads a configuration value.
    let (ticks, page) = unsafe { (libc::sysconf(libc::_SC_CLK_TCK), libc::sysconf(libc::_SC_PAGESIZE)) };
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    if let Some((cpu, rss, start)) = process_stat(&stat, ticks.max(1) as f64, page.max(1) as u64) {
        header(&mut out, "process_cpu_seconds_total", "Total user and system CPU time spent in seconds.", "counter");
        let _ = writeln!(out, "process_cpu_seconds_total {}", num(cpu));
        header(&mut out, "process_resident_memory_bytes", "Resident memory size in bytes.", "gauge");
        let _ = writeln!(out, "process_resident_memory_bytes {rss}");
        if let Some(boot) = boot_time {
            header(&mut out, "process_start_time_seconds", "Start time of the process since unix epoch in seconds.", "gauge");
            let _ = writeln!(out, "process_start_time_seconds {}", num(boot as f64 + start));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::{assemble, CpuHistory, RawContainer, RawPod, RawSample};

    fn sample() -> RawSample {
        RawSample {
            time_ns: 1_700_000_000_000_000_000,
            node_name: "n1".into(),
            node_cpu_ns: Some(2_500_000_000),
            node_memory: Some(crate::stats::host::CgroupMemory { usage: 10, working_set: 8, ..Default::default() }),
            pods: vec![RawPod {
                name: "web".into(),
                namespace: "default".into(),
                uid: "u1".into(),
                created_ns: 1_699_999_990_000_000_000,
                containers: vec![RawContainer {
                    id: "c1".into(),
                    name: "app".into(),
                    created_ns: 1_699_999_991_500_000_000,
                    cpu_ns: Some(1_000_000),
                    memory: Some(crate::stats::host::CgroupMemory { usage: 4096, working_set: 2048, ..Default::default() }),
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        }
    }

    #[test]
    fn resource_metrics_have_upstreams_names_labels_and_timestamps() {
        let text = resource_metrics(Some(&assemble(&sample(), &CpuHistory::new())));
        assert!(text.contains("# TYPE node_cpu_usage_seconds_total counter\nnode_cpu_usage_seconds_total 2.5 1700000000000\n"), "{text}");
        assert!(text.contains("node_memory_working_set_bytes 8 1700000000000\n"), "{text}");
        assert!(text.contains("container_cpu_usage_seconds_total{container=\"app\",namespace=\"default\",pod=\"web\"} 0.001 1700000000000\n"), "{text}");
        assert!(text.contains("container_memory_working_set_bytes{container=\"app\",namespace=\"default\",pod=\"web\"} 2048 1700000000000\n"), "{text}");
        assert!(text.contains("container_start_time_seconds{container=\"app\",namespace=\"default\",pod=\"web\"} 1699999991.5\n"), "{text}");
        assert!(text.contains("pod_cpu_usage_seconds_total{namespace=\"default\",pod=\"web\"} 0.001 1700000000000\n"), "{text}");
        assert!(text.contains("pod_memory_working_set_bytes{namespace=\"default\",pod=\"web\"} 2048 1700000000000\n"), "{text}");
        assert!(text.contains("\nscrape_error 0\n") && text.contains("resource_scrape_error 0\n"), "{text}");
        let failed = resource_metrics(None);
        assert!(failed.contains("\nscrape_error 1\n") && !failed.contains("node_cpu"), "{failed}");
    }

    #[test]
    fn pod_starts_are_observed_once_per_pod() {
        let m = KubeletMetrics::new("n1");
        m.observe_sample(&sample());
        m.observe_sample(&sample());
        let h = m.pod_start();
        assert_eq!((h.count, h.sum), (1, 1.5));
        // 1.5 s falls in the le=2 bucket, not le=1.
        assert_eq!((h.buckets[1], h.buckets[2]), (0, 1));
        let text = kubelet_metrics(&m, Some(1), Some(&ContainerStates::from([("running", 2), ("exited", 1)])), Some(0));
        assert!(text.contains("kubelet_node_name{node=\"n1\"} 1\n"), "{text}");
        assert!(text.contains("kubelet_pod_start_duration_seconds_bucket{le=\"2\"} 1\n"), "{text}");
        assert!(text.contains("kubelet_pod_start_duration_seconds_count 1\n"), "{text}");
        assert!(text.contains("kubelet_running_containers{container_state=\"exited\"} 1\nkubelet_running_containers{container_state=\"running\"} 2\n"), "{text}");
        assert!(text.contains("kubelet_running_pods 1\n"), "{text}");
        assert!(text.contains("process_resident_memory_bytes "), "{text}");
    }

    #[test]
    fn process_stat_parses_past_the_command() {
        let stat = "42 (my (odd) cmd) S 1 2 3 4 5 6 7 8 9 10 150 50 0 0 20 0 1 0 500 1000 30 18446744073709551615";
        assert_eq!(process_stat(stat, 100.0, 4096), Some((2.0, 30 * 4096, 5.0)));
    }
}
