//! Probes on a real kubelet: a failing liveness probe restarts the container, a failing
//! readiness probe only takes the pod out of READY.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::harness::{eventually, Cluster};

/// A server with its agent, once its node is Ready.
pub fn cluster() -> Cluster {
    let c = Cluster::start_agent();
    let node = c.node_name();
    let ready = eventually(Duration::from_secs(60), || {
        c.kubectl(&["get", "node", &node, "-o", "jsonpath={.status.conditions[?(@.type==\"Ready\")].status}"]).stdout == "True"
    });
    assert!(ready, "node {node} never became Ready: {}", c.kubectl(&["get", "nodes", "-o", "yaml"]).stdout);
    c
}

pub fn field(c: &Cluster, pod: &str, path: &str) -> String {
    c.kubectl(&["get", "pod", pod, "-o", &format!("jsonpath={path}")]).stdout
}

/// `kubectl get pod` columns: (READY, STATUS, RESTARTS).
pub fn columns(c: &Cluster, pod: &str) -> (String, String, String) {
    let out = c.kubectl(&["get", "pod", pod, "--no-headers"]).stdout;
    let cols: Vec<&str> = out.split_whitespace().collect();
    let at = |i: usize| cols.get(i).copied().unwrap_or_default().to_owned();
    (at(1), at(2), at(3))
}

fn events(c: &Cluster, pod: &str, reason: &str) -> Vec<String> {
    let out = c.kubectl(&[
        "get",
        "events",
        "--field-selector",
        &format!("involvedObject.name={pod},reason={reason}"),
        "-o",
        "jsonpath={range .items[*]}{.message}{\"\\n\"}{end}",
    ]);
    out.stdout.lines().map(str::to_owned).collect()
}

const LIVENESS: &str = r#"
apiVersion: v1
kind: Pod
metadata: {name: live}
spec:
  containers:
  - name: c
    image: rkube.local/busybox:1.35
    command: [sh, -c, "trap 'exit 0' TERM; echo up; while true; do sleep 1; done"]
    livenessProbe:
      exec: {command: [sh, -c, "echo sick; exit 1"]}
      periodSeconds: 1
      failureThreshold: 2
"#;

#[test]
fn a_failing_liveness_probe_kills_and_restarts_the_container() {
    let c = cluster();
    c.apply(LIVENESS);
    let restarted = eventually(Duration::from_secs(90), || columns(&c, "live").2.parse::<i32>().unwrap_or(0) >= 2);
    assert!(restarted, "RESTARTS never grew: {}", c.kubectl(&["get", "pod", "live", "-o", "yaml"]).stdout);
    let unhealthy = events(&c, "live", "Unhealthy");
    assert!(unhealthy.iter().any(|m| m == "Liveness probe failed: sick"), "{unhealthy:?}");
    let killing = events(&c, "live", "Killing");
    assert!(killing.iter().any(|m| m == "Container c failed liveness probe, will be restarted"), "{killing:?}");
    // The container was stopped by the kubelet (SIGTERM handled: exit 0), not crashed.
    let last = field(&c, "live", "{.status.containerStatuses[0].lastState.terminated.exitCode}");
    assert_eq!(last, "0");
}

/// An HTTP server on the node's IP whose answer the test controls (0 = not listening
/// content: 503; otherwise that status code).
struct Health {
    code: Arc<AtomicU16>,
    port: u16,
}

impl Health {
    fn start(ip: &str) -> Health {
        let listener = TcpListener::bind((ip, 0)).expect("bind on the node IP");
        let port = listener.local_addr().expect("addr").port();
        let code = Arc::new(AtomicU16::new(503));
        let shared = code.clone();
        // Lives until the test process ends; answers one request per connection.
        std::thread::spawn(move || {
            for mut s in listener.incoming().map_while(Result::ok) {
                let mut buf = [0u8; 2048];
                let n = s.read(&mut buf).unwrap_or(0);
                let request = String::from_utf8_lossy(&buf[..n]).into_owned();
                // The probe's path and header must arrive as configured.
                let code = if request.starts_with("GET /healthz HTTP/1.1") && request.contains("X-Probe: e2e") { shared.load(Ordering::SeqCst) } else { 400 };
                let _ = s.write_all(format!("HTTP/1.1 {code} X\r\nContent-Length: 0\r\nConnection: close\r\n\r\n").as_bytes());
            }
        });
        Health { code, port }
    }
}

#[test]
fn a_failing_readiness_probe_takes_the_pod_out_of_ready_without_restarts() {
    let c = cluster();
    let node_ip = c.k(&["get", "node", &c.node_name(), "-o", "jsonpath={.status.addresses[?(@.type==\"InternalIP\")].address}"]);
    let health = Health::start(&node_ip);
    // hostNetwork: the probe goes to the node's IP, where the test's server listens.
    let pod = format!(
        r#"
apiVersion: v1
kind: Pod
metadata: {{name: ready}}
spec:
  hostNetwork: true
  containers:
  - name: c
    image: rkube.local/busybox:1.35
    command: [sleep, "3600"]
    ports: [{{name: health, containerPort: {port}}}]
    readinessProbe:
      httpGet: {{path: /healthz, port: health, httpHeaders: [{{name: X-Probe, value: e2e}}]}}
      periodSeconds: 1
    startupProbe:
      tcpSocket: {{port: {port}}}
      periodSeconds: 1
"#,
        port = health.port
    );
    c.apply(&pod);
    let unready = eventually(Duration::from_secs(60), || {
        columns(&c, "ready") == ("0/1".into(), "Running".into(), "0".into()) && !events(&c, "ready", "Unhealthy").is_empty()
    });
    assert!(unready, "{}", c.kubectl(&["get", "pod", "ready", "-o", "yaml"]).stdout);
    assert_eq!(field(&c, "ready", "{.status.containerStatuses[0].started}"), "true");
    let unhealthy = events(&c, "ready", "Unhealthy");
    assert!(unhealthy.iter().any(|m| m == "Readiness probe failed: HTTP probe failed with statuscode: 503"), "{unhealthy:?}");
    assert_eq!(field(&c, "ready", "{.status.conditions[?(@.type==\"Ready\")].status}"), "False");

    health.code.store(200, Ordering::SeqCst);
    let ready = eventually(Duration::from_secs(30), || columns(&c, "ready").0 == "1/1");
    assert!(ready, "{}", c.kubectl(&["get", "pod", "ready", "-o", "yaml"]).stdout);
    assert_eq!(field(&c, "ready", "{.status.conditions[?(@.type==\"ContainersReady\")].status}"), "True");

    health.code.store(500, Ordering::SeqCst);
    let again = eventually(Duration::from_secs(30), || columns(&c, "ready").0 == "0/1");
    assert!(again, "{}", c.kubectl(&["get", "pod", "ready", "-o", "yaml"]).stdout);
    assert_eq!(columns(&c, "ready").2, "0", "readiness failures never restart the container");
    assert!(events(&c, "ready", "Killing").is_empty());
}

const STARTUP: &str = r#"
apiVersion: v1
kind: Pod
metadata: {name: slow}
spec:
  containers:
  - name: c
    image: rkube.local/busybox:1.35
    command: [sh, -c, "trap 'exit 0' TERM; while true; do sleep 1; done"]
    startupProbe:
      exec: {command: [sh, -c, "echo not-yet; exit 1"]}
      periodSeconds: 1
      failureThreshold: 4
    livenessProbe:
      exec: {command: [sh, -c, "exit 1"]}
      periodSeconds: 1
      failureThreshold: 1
"#;

#[test]
fn a_startup_probe_holds_liveness_back_and_its_failure_restarts_the_container() {
    let c = cluster();
    c.apply(STARTUP);
    // Running but not started (and so not ready) while the startup probe fails.
    let pending = eventually(Duration::from_secs(60), || {
        !field(&c, "slow", "{.status.containerStatuses[0].state.running.startedAt}").is_empty()
            && field(&c, "slow", "{.status.containerStatuses[0].started}") == "false"
            && columns(&c, "slow").0 == "0/1"
    });
    assert!(pending, "{}", c.kubectl(&["get", "pod", "slow", "-o", "yaml"]).stdout);
    let killed = eventually(Duration::from_secs(60), || {
        events(&c, "slow", "Killing").iter().any(|m| m == "Container c failed startup probe, will be restarted")
    });
    assert!(killed, "{:?}", events(&c, "slow", "Killing"));
    let unhealthy = events(&c, "slow", "Unhealthy");
    assert!(unhealthy.iter().any(|m| m == "Startup probe failed: not-yet"), "{unhealthy:?}");
    assert!(!unhealthy.iter().any(|m| m.starts_with("Liveness")), "liveness must wait for startup: {unhealthy:?}");
    let restarted = eventually(Duration::from_secs(60), || columns(&c, "slow").2.parse::<i32>().unwrap_or(0) >= 1);
    assert!(restarted, "{}", c.kubectl(&["get", "pod", "slow", "-o", "yaml"]).stdout);
}
