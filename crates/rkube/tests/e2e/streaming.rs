//! Logs, exec, attach, port-forward and cp with the real kubectl, through the API server's
//! connect subresources to a kubelet server in this test process, on a real containerd.
//!
//! Until the kubelet's pod workers land, the test makes the pods itself: CRI sandboxes and
//! containers with rkube's labels ([`rkube_kubelet::testpod`]), and Node and Pod objects
//! that point at them (status written through the status subresource). Once pods run for
//! real, `KubeletNode` and `bind_pod` can give way to `kubectl run`.

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use rkube_kubelet::testpod::{TestPod, TestRuntime};
use tokio_util::sync::CancellationToken;

use crate::harness::{eventually, Cluster};

/// containerd + CRI pods + the kubelet server, all removed on drop.
struct KubeletNode {
    runtime: Option<TestRuntime>,
    shutdown: CancellationToken,
    port: u16,
    tokio: tokio::runtime::Runtime,
}

impl KubeletNode {
    fn start(c: &Cluster) -> KubeletNode {
        let tokio = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("tokio runtime");
        let shutdown = CancellationToken::new();
        let ca = std::fs::read_to_string(c.data_dir().join("tls/ca.crt")).expect("cluster CA");
        let (runtime, addr) = tokio.block_on(async {
            let runtime = TestRuntime::start().await.expect("containerd starts");
            let config = rkube_kubelet::server::ServerConfig {
                listen: "127.0.0.1:0".parse().expect("address"),
                client_ca_pem: ca,
                serving_cert_pem: None,
                serving_key_pem: None,
            };
            let addr = rkube_kubelet::server::serve(config, runtime.cri.clone(), shutdown.clone()).await.expect("kubelet server");
            (runtime, addr)
        });
        KubeletNode { runtime: Some(runtime), shutdown, port: addr.port(), tokio }
    }

    fn runtime(&self) -> &TestRuntime {
        self.runtime.as_ref().expect("runtime lives until drop")
    }

    fn pod(&self, name: &str) -> TestPod {
        self.tokio.block_on(self.runtime().pod("default", name)).expect("sandbox runs")
    }

    fn container(&self, pod: &TestPod, name: &str, attempt: u32, command: &[&str]) -> String {
        self.tokio.block_on(self.runtime().container(pod, name, attempt, command, false)).expect("container starts")
    }

    fn wait_exited(&self, id: &str) {
        self.tokio.block_on(self.runtime().wait_exited(id, Duration::from_secs(20))).expect("container exits");
    }
}

impl Drop for KubeletNode {
    fn drop(&mut self) {
        self.shutdown.cancel();
        let runtime = self.runtime.take();
        self.tokio.block_on(async move { drop(runtime) });
    }
}

/// Registers Node `node1` whose kubelet is the test's server.
fn register_node(c: &Cluster, port: u16) {
    c.apply("apiVersion: v1\nkind: Node\nmetadata:\n  name: node1\n");
    let status = format!(
        r#"{{"status":{{"addresses":[{{"type":"InternalIP","address":"127.0.0.1"}},{{"type":"Hostname","address":"node1"}}],"daemonEndpoints":{{"kubeletEndpoint":{{"Port":{port}}}}}}}}}"#
    );
    c.k(&["patch", "node", "node1", "--subresource=status", "--type=merge", "-p", &status]);
}

/// Creates Pod `name` on node1 with `containers`, reported Running (each container running,
/// `restarts` of them restarted once).
fn bind_pod(c: &Cluster, name: &str, containers: &[&str], restarted: &[&str]) {
    let specs: String = containers.iter().map(|n| format!("  - name: {n}\n    image: rkube.local/busybox:1.35\n")).collect();
    c.apply(&format!("apiVersion: v1\nkind: Pod\nmetadata:\n  name: {name}\n  namespace: default\nspec:\n  nodeName: node1\n  containers:\n{specs}"));
    let statuses: Vec<String> = containers
        .iter()
        .map(|n| {
            let last = if restarted.contains(n) { r#","lastState":{"terminated":{"exitCode":1,"reason":"Error"}},"restartCount":1"# } else { r#","restartCount":0"# };
            format!(r#"{{"name":"{n}","image":"rkube.local/busybox:1.35","imageID":"","ready":true,"state":{{"running":{{}}}}{last}}}"#)
        })
        .collect();
    let status = format!(r#"{{"status":{{"phase":"Running","containerStatuses":[{}]}}}}"#, statuses.join(","));
    c.k(&["patch", "pod", name, "--subresource=status", "--type=merge", "-p", &status]);
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").expect("ephemeral port").local_addr().expect("addr").port()
}

/// A kubectl left running (logs -f, port-forward, attach), killed on drop.
struct Background(Child);

impl Background {
    fn spawn(c: &Cluster, args: &[&str]) -> Background {
        let child = Command::new("kubectl")
            .args(args)
            .env("KUBECONFIG", c.kubeconfig())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("kubectl on the PATH");
        Background(child)
    }

    /// Reads stdout lines until one contains `needle` (panics after 20 s or at EOF).
    fn wait_for(&mut self, needle: &str) -> String {
        let stdout = self.0.stdout.take().expect("stdout piped");
        let (tx, rx) = std::sync::mpsc::channel();
        let needle_owned = needle.to_owned();
        std::thread::spawn(move || {
            let mut reader = BufReader::new(stdout);
            let mut seen = String::new();
            let mut line = String::new();
            while reader.read_line(&mut line).unwrap_or(0) > 0 {
                seen.push_str(&line);
                if line.contains(&needle_owned) {
                    let _ = tx.send(Ok((seen.clone(), reader)));
                    return;
                }
                line.clear();
            }
            let _ = tx.send(Err(seen));
        });
        match rx.recv_timeout(Duration::from_secs(20)) {
            Ok(Ok((seen, reader))) => {
                self.0.stdout = Some(reader.into_inner());
                seen
            }
            Ok(Err(seen)) => {
                let mut err = String::new();
                let _ = self.0.stderr.take().map(|mut e| e.read_to_string(&mut err));
                panic!("kubectl ended before printing {needle:?}: {seen}{err}")
            }
            Err(_) => panic!("kubectl did not print {needle:?} within 20 s"),
        }
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn kubectl_logs_exec_attach_port_forward_and_cp_reach_containers_through_the_kubelet() {
    let c = Cluster::start();
    let node = KubeletNode::start(&c);
    register_node(&c, node.port);

    // bb: one failed run, then a running one that prints "late" when /tmp/go appears
    let bb = node.pod("bb");
    let first = node.container(&bb, "bb", 0, &["sh", "-c", "echo first-run; exit 1"]);
    node.wait_exited(&first);
    let script = "echo hello; echo from-bb; while [ ! -e /tmp/go ]; do sleep 0.1; done; echo late; exec sleep 3600";
    node.container(&bb, "bb", 1, &["sh", "-c", script]);
    bind_pod(&c, "bb", &["bb"], &["bb"]);

    // logs, --tail, --previous, --timestamps
    assert!(eventually(Duration::from_secs(10), || c.kubectl(&["logs", "bb"]).stdout == "hello\nfrom-bb\n"), "{}", c.kubectl(&["logs", "bb"]).stderr);
    assert_eq!(c.k(&["logs", "bb", "--tail=1"]), "from-bb\n");
    assert_eq!(c.k(&["logs", "bb", "--previous"]), "first-run\n");
    assert_eq!(c.k(&["logs", "bb", "-c", "bb", "--limit-bytes=3"]), "hel");
    let stamped = c.k(&["logs", "bb", "--timestamps"]);
    assert!(stamped.lines().all(|l| l.split_once(' ').is_some_and(|(t, _)| t.contains('T') && t.ends_with('Z'))), "{stamped}");

    // logs -f streams what the container writes later
    let mut follow = Background::spawn(&c, &["logs", "-f", "bb"]);
    follow.wait_for("from-bb");
    c.k(&["exec", "bb", "--", "touch", "/tmp/go"]);
    follow.wait_for("late");
    drop(follow);

    // exec: output, exit codes, stdin
    let hostname = std::fs::read_to_string("/proc/sys/kernel/hostname").expect("hostname");
    assert_eq!(c.k(&["exec", "bb", "--", "hostname"]).trim(), hostname.trim(), "a host-network pod has the node's name");
    let r = c.kubectl(&["exec", "bb", "--", "sh", "-c", "echo out; echo err >&2; exit 3"]);
    assert_eq!((r.code, r.stdout.as_str()), (Some(3), "out\n"), "{}", r.stderr);
    assert!(r.stderr.contains("err"), "{}", r.stderr);
    let r = c.kubectl_with(&["exec", "-i", "bb", "--", "cat"], Some("piped through stdin\n"), &[]);
    assert!(r.ok, "{}", r.stderr);
    assert_eq!(r.stdout, "piped through stdin\n");

    // cp both ways (tar over exec with stdin)
    let local = c.dir.path().join("in.txt");
    std::fs::write(&local, "copied in\n").expect("write");
    c.k(&["cp", local.to_str().expect("utf8"), "bb:/tmp/in.txt"]);
    assert_eq!(c.k(&["exec", "bb", "--", "cat", "/tmp/in.txt"]), "copied in\n");
    c.k(&["exec", "bb", "--", "sh", "-c", "echo made in the pod > /tmp/out.txt"]);
    let back = c.dir.path().join("out.txt");
    c.k(&["cp", "bb:/tmp/out.txt", back.to_str().expect("utf8")]);
    assert_eq!(std::fs::read_to_string(&back).expect("copied out"), "made in the pod\n");

    // port-forward to an httpd in a (host-network) pod
    let web = node.pod("web");
    let httpd_port = free_port();
    let serve = format!("mkdir -p /www && echo hello from httpd > /www/index.html && exec httpd -f -p 127.0.0.1:{httpd_port} -h /www");
    node.container(&web, "web", 0, &["sh", "-c", &serve]);
    bind_pod(&c, "web", &["web"], &[]);
    let local_port = free_port();
    let mut forward = Background::spawn(&c, &["port-forward", "pod/web", &format!("{local_port}:{httpd_port}")]);
    forward.wait_for("Forwarding from");
    let url = format!("http://127.0.0.1:{local_port}/index.html");
    let fetch = || Command::new("curl").args(["-sS", "--max-time", "5", &url]).output().map(|o| String::from_utf8_lossy(&o.stdout).into_owned()).unwrap_or_default();
    assert!(eventually(Duration::from_secs(10), || fetch() == "hello from httpd\n"), "{}", fetch());
    assert_eq!(fetch(), "hello from httpd\n", "a second connection through the same forward");
    drop(forward);

    // attach shows what the container prints
    let tick = node.pod("tick");
    node.container(&tick, "tick", 0, &["sh", "-c", "while true; do echo tick; sleep 0.2; done"]);
    bind_pod(&c, "tick", &["tick"], &[]);
    let mut attach = Background::spawn(&c, &["attach", "tick"]);
    attach.wait_for("tick");
    drop(attach);

    // nodes/proxy reaches the kubelet
    assert_eq!(c.k(&["get", "--raw", "/api/v1/nodes/node1/proxy/healthz"]), "ok");
    let pods = c.k(&["get", "--raw", "/api/v1/nodes/node1/proxy/pods"]);
    assert!(pods.contains("\"PodList\"") && pods.contains("\"bb\""), "{pods}");
}

#[test]
fn connect_subresource_errors_read_as_upstream() {
    let c = Cluster::start();
    let node = KubeletNode::start(&c);
    register_node(&c, node.port);
    // bound to the node, but no container exists in the runtime yet
    c.apply("apiVersion: v1\nkind: Pod\nmetadata:\n  name: pending\nspec:\n  nodeName: node1\n  containers:\n  - name: app\n    image: x\n");
    let r = c.kubectl(&["logs", "pending"]);
    assert!(!r.ok);
    assert!(r.stderr.contains(r#"(BadRequest): container "app" in pod "pending" is waiting to start: ContainerCreating"#), "{}", r.stderr);
    c.k(&["patch", "pod", "pending", "--subresource=status", "--type=merge", "-p",
        r#"{"status":{"containerStatuses":[{"name":"app","image":"x","imageID":"","ready":false,"restartCount":0,"state":{"waiting":{"reason":"ImagePullBackOff"}}}]}}"#]);
    let r = c.kubectl(&["logs", "pending"]);
    assert!(r.stderr.contains(r#"container "app" in pod "pending" is waiting to start: trying and failing to pull image"#), "{}", r.stderr);
    let r = c.kubectl(&["logs", "pending", "-c", "nope"]);
    assert!(r.stderr.contains("container nope is not valid for pod pending"), "{}", r.stderr);
    // not yet on a node: exec says so
    c.apply("apiVersion: v1\nkind: Pod\nmetadata:\n  name: unbound\nspec:\n  containers:\n  - name: app\n    image: x\n");
    let r = c.kubectl(&["exec", "unbound", "--", "true"]);
    assert!(!r.ok && r.stderr.contains("pod unbound does not have a host assigned"), "{}", r.stderr);
    // discovery lists the subresources with upstream's verbs
    let v1 = crate::harness::json(&c.k(&["get", "--raw", "/api/v1"]));
    let verbs = |name: &str| -> Vec<String> {
        v1["resources"].as_array().expect("resources").iter().find(|r| r["name"] == name).map(|r| serde_json::from_value(r["verbs"].clone()).expect("verbs")).unwrap_or_default()
    };
    assert_eq!(verbs("pods/log"), ["get"]);
    assert_eq!(verbs("pods/exec"), ["create", "get"]);
    assert_eq!(verbs("pods/portforward"), ["create", "get"]);
    assert_eq!(verbs("nodes/proxy"), ["create", "delete", "get", "patch", "update"]);
}

/// The issue's acceptance with the real agent: `kubectl run`, then logs, logs -f, exec (the
/// pod's own hostname), exec -i, port-forward to an httpd in a pod on the CNI bridge, and the
/// egress guard first in the host's OUTPUT and FORWARD chains.
#[test]
fn kubectl_run_then_logs_exec_and_port_forward_through_the_real_agent() {
    let c = crate::kubelet::cluster();
    c.k(&["run", "bb", "--image=rkube.local/busybox:1.35", "--", "sh", "-c", "echo hello; while [ ! -e /tmp/go ]; do sleep 0.1; done; echo late; exec sleep 3600"]);
    let running = eventually(Duration::from_secs(60), || c.kubectl(&["get", "pod", "bb", "-o", "jsonpath={.status.phase}"]).stdout == "Running");
    assert!(running, "{}", c.k(&["get", "pod", "bb", "-o", "yaml"]));
    assert!(eventually(Duration::from_secs(10), || c.kubectl(&["logs", "bb"]).stdout == "hello\n"), "{}", c.kubectl(&["logs", "bb"]).stderr);
    let mut follow = Background::spawn(&c, &["logs", "-f", "bb"]);
    follow.wait_for("hello");
    assert_eq!(c.k(&["exec", "bb", "--", "hostname"]).trim(), "bb");
    c.k(&["exec", "bb", "--", "touch", "/tmp/go"]);
    follow.wait_for("late");
    drop(follow);
    let r = c.kubectl_with(&["exec", "-i", "bb", "--", "cat"], Some("through stdin\n"), &[]);
    assert_eq!((r.ok, r.stdout.as_str()), (true, "through stdin\n"), "{}", r.stderr);

    // An httpd on the pod network, reached by port-forward and from the host by pod IP.
    c.k(&["run", "web", "--image=rkube.local/busybox:1.35", "--", "sh", "-c", "mkdir -p /www && echo served-from-the-pod > /www/index.html && exec httpd -f -p 80 -h /www"]);
    let running = eventually(Duration::from_secs(60), || c.kubectl(&["get", "pod", "web", "-o", "jsonpath={.status.phase}"]).stdout == "Running");
    assert!(running, "{}", c.k(&["get", "pod", "web", "-o", "yaml"]));
    let local = free_port();
    let mut forward = Background::spawn(&c, &["port-forward", "pod/web", &format!("{local}:80")]);
    forward.wait_for("Forwarding from");
    let fetch = |url: &str| {
        let out = Command::new("curl").args(["-sS", "--max-time", "5", url]).output().expect("curl");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let served = eventually(Duration::from_secs(10), || fetch(&format!("http://127.0.0.1:{local}/")) == "served-from-the-pod\n");
    assert!(served, "port-forward did not reach the pod's httpd");
    drop(forward);
    let ip = c.k(&["get", "pod", "web", "-o", "jsonpath={.status.podIP}"]);
    assert!(ip.starts_with("10.42.0."), "{ip}");
    assert_eq!(fetch(&format!("http://{ip}:80/")), "served-from-the-pod\n", "host to pod over rkube0");

    // The egress guard is the first rule of OUTPUT and FORWARD.
    for chain in ["OUTPUT", "FORWARD"] {
        let out = Command::new("iptables").args(["-w", "-S", chain]).output().expect("iptables");
        let rules = String::from_utf8_lossy(&out.stdout).into_owned();
        let first = rules.lines().find(|l| l.starts_with("-A ")).unwrap_or_default().to_owned();
        assert_eq!(first, format!("-A {chain} -j RKUBE-EGRESS-GUARD"), "{rules}");
    }
}
