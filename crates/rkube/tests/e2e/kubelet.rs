//! The kubelet inside `rkube server`: real containerd, runc and CNI, driven by kubectl.

use std::path::PathBuf;
use std::time::Duration;

use crate::harness::{eventually, json, Cluster};

/// A server with its agent, once its node is Ready.
pub(crate) fn cluster() -> Cluster {
    let c = Cluster::start_agent();
    let node = c.node_name();
    let ready = eventually(Duration::from_secs(60), || {
        c.kubectl(&["get", "node", &node, "-o", "jsonpath={.status.conditions[?(@.type==\"Ready\")].status}"]).stdout == "True"
    });
    assert!(ready, "node {node} never became Ready: {}", c.kubectl(&["get", "nodes", "-o", "yaml"]).stdout);
    c
}

fn field(c: &Cluster, pod: &str, path: &str) -> String {
    c.kubectl(&["get", "pod", pod, "-o", &format!("jsonpath={path}")]).stdout
}

/// The STATUS column of `kubectl get pod`, as a user reads it.
fn status_column(c: &Cluster, pod: &str) -> String {
    let out = c.kubectl(&["get", "pod", pod, "--no-headers"]).stdout;
    out.split_whitespace().nth(2).unwrap_or_default().to_owned()
}

#[track_caller]
fn wait_status(c: &Cluster, pod: &str, want: &str) {
    let ok = eventually(Duration::from_secs(60), || status_column(c, pod) == want);
    assert!(ok, "pod {pod} never showed {want}: {}", c.kubectl(&["get", "pod", pod, "-o", "yaml"]).stdout);
}

fn log_file(c: &Cluster, pod: &str, container: &str, attempt: u32) -> PathBuf {
    let uid = field(c, pod, "{.metadata.uid}");
    c.data_dir().join("agent/pods").join(format!("default_{pod}_{uid}")).join(container).join(format!("{attempt}.log"))
}

#[test]
fn kubectl_run_starts_a_real_container_with_a_pod_ip_on_a_ready_node() {
    let c = cluster();
    let node = c.node_name();
    let nodes = c.k(&["get", "nodes", "--no-headers"]);
    assert!(nodes.lines().any(|l| l.starts_with(&node) && l.split_whitespace().nth(1) == Some("Ready")), "{nodes}");
    let info = json(&c.k(&["get", "node", &node, "-o", "json"]));
    assert_eq!(info["status"]["nodeInfo"]["containerRuntimeVersion"].as_str().unwrap_or("").split("://").next(), Some("containerd"));
    assert_ne!(info["status"]["capacity"]["memory"], serde_json::Value::Null);
    assert_eq!(info["status"]["capacity"]["pods"], "110");
    let lease = c.k(&["get", "lease", "-n", "kube-node-lease", &node, "-o", "jsonpath={.spec.holderIdentity}"]);
    assert_eq!(lease, node);

    c.k(&["run", "bb", "--image=rkube.local/busybox:1.35", "--", "sh", "-c", "echo hello; cat /etc/hosts; sleep 3600"]);
    wait_status(&c, "bb", "Running");
    let ready = c.k(&["get", "pod", "bb", "--no-headers"]);
    assert_eq!(ready.split_whitespace().nth(1), Some("1/1"), "{ready}");
    assert!(field(&c, "bb", "{.status.podIP}").starts_with("10.42."), "{}", c.k(&["get", "pod", "bb", "-o", "yaml"]));
    assert!(field(&c, "bb", "{.status.containerStatuses[0].containerID}").starts_with("containerd://"));
    assert_eq!(field(&c, "bb", "{.status.qosClass}"), "BestEffort");
    let log = log_file(&c, "bb", "bb", 0);
    let printed = eventually(Duration::from_secs(10), || std::fs::read_to_string(&log).unwrap_or_default().contains(" stdout F hello"));
    assert!(printed, "no hello in {}", log.display());
    // The kubelet-managed /etc/hosts names the pod.
    let ip = field(&c, "bb", "{.status.podIP}");
    let hosts = eventually(Duration::from_secs(10), || std::fs::read_to_string(&log).unwrap_or_default().contains(&format!(" stdout F {ip}\tbb")));
    assert!(hosts, "no hosts entry for {ip} in {}", std::fs::read_to_string(&log).unwrap_or_default());
    let mut events = String::new();
    let all = eventually(Duration::from_secs(10), || {
        events = c.k(&["get", "events", "--field-selector", "involvedObject.name=bb", "-o", "jsonpath={.items[*].reason}"]);
        ["Pulled", "Created", "Started"].iter().all(|r| events.contains(r))
    });
    assert!(all, "missing Pulled/Created/Started events: {events}");
}

#[test]
fn a_failing_container_shows_error_then_crash_loop_back_off_with_growing_restarts() {
    let c = cluster();
    c.k(&["run", "crash", "--image=rkube.local/busybox:1.35", "--", "sh", "-c", "echo bye; exit 1"]);
    // One snapshot of the pod in back-off, so every assertion reads the same moment.
    let mut pod = serde_json::Value::Null;
    let looping = eventually(Duration::from_secs(60), || {
        pod = json(&c.k(&["get", "pod", "crash", "-o", "json"]));
        let s = &pod["status"]["containerStatuses"][0];
        s["state"]["waiting"]["reason"] == "CrashLoopBackOff" && s["restartCount"].as_i64().unwrap_or(0) >= 2
    });
    assert!(looping, "{pod:#}");
    let s = &pod["status"]["containerStatuses"][0];
    assert_eq!(s["lastState"]["terminated"]["reason"], "Error");
    assert_eq!(s["lastState"]["terminated"]["exitCode"], 1);
    let message = s["state"]["waiting"]["message"].as_str().unwrap_or_default();
    assert!(message.starts_with("back-off ") && message.contains("restarting failed container=crash pod=crash_default("), "{message}");
    assert_eq!(pod["status"]["phase"], "Running");
    let column = eventually(Duration::from_secs(60), || status_column(&c, "crash") == "CrashLoopBackOff");
    assert!(column, "kubectl never showed CrashLoopBackOff");
    let backoff = eventually(Duration::from_secs(10), || {
        !c.k(&["get", "events", "--field-selector", "involvedObject.name=crash,reason=BackOff", "-o", "name"]).trim().is_empty()
    });
    assert!(backoff, "no BackOff event");

    // restartPolicy Never: one run, then Error for good; a clean exit is Completed.
    c.k(&["run", "once", "--restart=Never", "--image=rkube.local/busybox:1.35", "--", "sh", "-c", "exit 3"]);
    c.k(&["run", "done", "--restart=Never", "--image=rkube.local/busybox:1.35", "--", "true"]);
    wait_status(&c, "once", "Error");
    wait_status(&c, "done", "Completed");
    assert_eq!(field(&c, "once", "{.status.phase}"), "Failed");
    assert_eq!(field(&c, "done", "{.status.phase}"), "Succeeded");
    assert_eq!(field(&c, "once", "{.status.containerStatuses[0].restartCount}"), "0");
}

const BAD_PODS: &str = r#"
apiVersion: v1
kind: Pod
metadata: {name: cfg}
spec:
  containers:
  - name: c
    image: rkube.local/busybox:1.35
    command: [sleep, "3600"]
    env:
    - name: X
      valueFrom: {configMapKeyRef: {name: missing, key: k}}
---
apiVersion: v1
kind: Pod
metadata: {name: nopull}
spec:
  containers:
  - {name: c, image: "rkube.local/nothere:1", imagePullPolicy: Never}
---
apiVersion: v1
kind: Pod
metadata: {name: pullfail}
spec:
  containers:
  - {name: c, image: "127.0.0.1:1/nothere:1"}
---
apiVersion: v1
kind: Pod
metadata: {name: init}
spec:
  initContainers:
  - {name: i, image: rkube.local/busybox:1.35, command: [sh, -c, "sleep 2"]}
  containers:
  - name: c
    image: rkube.local/busybox:1.35
    command: [sh, -c, "echo $(GREETING) from $(POD); sleep 3600"]
    env:
    - {name: GREETING, value: hi}
    - name: POD
      valueFrom: {fieldRef: {fieldPath: metadata.name}}
---
apiVersion: v1
kind: Pod
metadata: {name: host}
spec:
  hostNetwork: true
  containers:
  - {name: c, image: rkube.local/busybox:1.35, command: [sleep, "3600"]}
"#;

#[test]
fn bad_pods_report_their_reasons_without_blocking_good_ones() {
    let c = cluster();
    c.apply(BAD_PODS);
    wait_status(&c, "cfg", "CreateContainerConfigError");
    assert_eq!(field(&c, "cfg", "{.status.containerStatuses[0].state.waiting.message}"), "configmap \"missing\" not found");
    wait_status(&c, "nopull", "ErrImageNeverPull");
    // A registry that refuses connections (on loopback): ErrImagePull, then back-off.
    let mut pod = serde_json::Value::Null;
    let backing_off = eventually(Duration::from_secs(60), || {
        pod = json(&c.k(&["get", "pod", "pullfail", "-o", "json"]));
        pod["status"]["containerStatuses"][0]["state"]["waiting"]["reason"] == "ImagePullBackOff"
    });
    assert!(backing_off, "{pod:#}");
    let message = pod["status"]["containerStatuses"][0]["state"]["waiting"]["message"].as_str().unwrap_or_default().to_owned();
    assert!(message.starts_with("Back-off pulling image \"127.0.0.1:1/nothere:1\": ErrImagePull: Failed to pull image"), "{message}");
    let failed = eventually(Duration::from_secs(10), || {
        c.k(&["get", "events", "--field-selector", "involvedObject.name=pullfail,reason=Failed", "-o", "jsonpath={.items[*].message}"])
            .contains("Error: ErrImagePull")
    });
    assert!(failed, "no Failed event for the image pull");
    let backoff = eventually(Duration::from_secs(10), || {
        c.k(&["get", "events", "--field-selector", "involvedObject.name=pullfail,reason=BackOff", "-o", "jsonpath={.items[*].message}"])
            .contains("Back-off pulling image \"127.0.0.1:1/nothere:1\"")
    });
    assert!(backoff, "no BackOff event for the image pull");
    wait_status(&c, "init", "Running");
    assert_eq!(field(&c, "init", "{.status.initContainerStatuses[0].state.terminated.reason}"), "Completed");
    let log = log_file(&c, "init", "c", 0);
    let printed = eventually(Duration::from_secs(10), || std::fs::read_to_string(&log).unwrap_or_default().contains("hi from init"));
    assert!(printed, "no expanded greeting in {}", log.display());
    wait_status(&c, "host", "Running");
    let node_ip = c.k(&["get", "node", &c.node_name(), "-o", "jsonpath={.status.addresses[?(@.type==\"InternalIP\")].address}"]);
    assert_eq!(field(&c, "host", "{.status.podIP}"), node_ip);

    // A pod bound directly to the node asking for more CPU than it has is rejected.
    let big = format!(
        "apiVersion: v1\nkind: Pod\nmetadata: {{name: big}}\nspec:\n  nodeName: {}\n  containers:\n  - name: c\n    image: rkube.local/busybox:1.35\n    resources: {{requests: {{cpu: \"1000\"}}}}\n",
        c.node_name()
    );
    c.apply(&big);
    wait_status(&c, "big", "OutOfcpu");
    assert_eq!(field(&c, "big", "{.status.phase}"), "Failed");
    assert_eq!(field(&c, "big", "{.status.containerStatuses}"), "", "a rejected pod must not run");
    assert!(field(&c, "big", "{.status.message}").starts_with("Pod was rejected: Node didn't have enough resource: cpu, requested: 1000000"));
}

const GRACEFUL: &str = r#"
apiVersion: v1
kind: Pod
metadata: {name: graceful}
spec:
  terminationGracePeriodSeconds: 20
  containers:
  - name: c
    image: rkube.local/busybox:1.35
    command: [sh, -c, "trap 'echo got-term; exit 0' TERM; echo started; while true; do sleep 1; done"]
    lifecycle:
      preStop:
        exec: {command: [sh, -c, "echo prestop-ran > /proc/1/fd/1; sleep 1"]}
"#;

#[test]
fn deleting_a_pod_runs_pre_stop_then_stops_the_container_and_removes_the_pod() {
    let c = cluster();
    c.apply(GRACEFUL);
    wait_status(&c, "graceful", "Running");
    let log = log_file(&c, "graceful", "c", 0);
    assert!(eventually(Duration::from_secs(10), || std::fs::read_to_string(&log).unwrap_or_default().contains("started")));
    c.k(&["delete", "pod", "graceful", "--wait=false"]);
    // The log (removed with the pod) shows the hook, then the SIGTERM the container handled.
    let mut text = String::new();
    let seen = eventually(Duration::from_secs(30), || {
        if let Ok(t) = std::fs::read_to_string(&log) {
            text = t;
        }
        text.contains("got-term")
    });
    assert!(seen, "no SIGTERM seen in the log: {text}");
    let hook = text.find("prestop-ran").expect("the preStop hook ran");
    assert!(hook < text.find("got-term").expect("term"), "preStop must run before SIGTERM: {text}");
    let gone = eventually(Duration::from_secs(30), || !c.kubectl(&["get", "pod", "graceful"]).ok);
    assert!(gone, "pod was not removed");
    let killing = eventually(Duration::from_secs(10), || {
        !c.k(&["get", "events", "--field-selector", "involvedObject.name=graceful,reason=Killing", "-o", "name"]).trim().is_empty()
    });
    assert!(killing, "no Killing event");
}

#[test]
fn restarting_the_server_keeps_running_containers() {
    let mut c = cluster();
    c.k(&["run", "keep", "--image=rkube.local/busybox:1.35", "--", "sleep", "3600"]);
    wait_status(&c, "keep", "Running");
    let before = field(&c, "keep", "{.status.containerStatuses[0].containerID}");
    c.stop(true);
    c.spawn();
    let node = c.node_name();
    // The node comes back and the same container is reported again, never restarted.
    let ready = eventually(Duration::from_secs(60), || {
        c.kubectl(&["get", "node", &node, "-o", "jsonpath={.status.conditions[?(@.type==\"Ready\")].status}"]).stdout == "True"
    });
    assert!(ready);
    c.k(&["run", "after", "--image=rkube.local/busybox:1.35", "--", "sleep", "3600"]);
    wait_status(&c, "after", "Running");
    assert_eq!(field(&c, "keep", "{.status.containerStatuses[0].containerID}"), before);
    assert_eq!(field(&c, "keep", "{.status.containerStatuses[0].restartCount}"), "0");
    assert_eq!(status_column(&c, "keep"), "Running");

    // A new image restarts the container (the pod object allows changing only that).
    c.k(&["set", "image", "pod/keep", "keep=rkube.local/pause:1"]);
    let restarted = eventually(Duration::from_secs(60), || {
        field(&c, "keep", "{.status.containerStatuses[0].restartCount}/{.status.containerStatuses[0].image}") == "1/rkube.local/pause:1"
            && status_column(&c, "keep") == "Running"
    });
    assert!(restarted, "{}", c.kubectl(&["get", "pod", "keep", "-o", "yaml"]).stdout);
    assert_ne!(field(&c, "keep", "{.status.containerStatuses[0].containerID}"), before);
}

/// `rkube kubelet` as its own process against a server without an agent; on drop it is
/// killed and every pod sandbox of its containerd removed.
struct Kubelet {
    child: Option<std::process::Child>,
    data_dir: PathBuf,
    node: String,
    kubeconfig: PathBuf,
}

impl Kubelet {
    fn start(c: &Cluster, data_dir: PathBuf) -> Kubelet {
        let mut k = Kubelet { child: None, data_dir, node: format!("e2e-kubelet-{}", c.port), kubeconfig: c.kubeconfig() };
        k.spawn();
        k
    }

    fn spawn(&mut self) {
        let child = std::process::Command::new(crate::harness::rkube_bin())
            .arg("kubelet")
            .arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .arg("--data-dir")
            .arg(&self.data_dir)
            .args(["--node-name", &self.node])
            .env("RKUBE_LOG", "warn")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::inherit())
            .spawn()
            .expect("start rkube kubelet");
        self.child = Some(child);
    }

    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Container ids the node's containerd knows (through ctr on its socket).
    fn containers(&self) -> String {
        let socket = self.data_dir.join("agent/containerd/containerd.sock");
        let out = std::process::Command::new("ctr").arg("--address").arg(socket).args(["-n", "k8s.io", "containers", "ls", "-q"]).output();
        out.map(|o| String::from_utf8_lossy(&o.stdout).into_owned()).unwrap_or_default()
    }
}

impl Drop for Kubelet {
    fn drop(&mut self) {
        self.kill();
        let data_dir = self.data_dir.clone();
        let cleanup = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("tokio runtime");
            runtime.block_on(rkube_kubelet::agent::remove_all_pods(&data_dir))
        });
        if !matches!(cleanup.join(), Ok(Ok(_))) {
            eprintln!("cleaning up the kubelet's pods failed");
        }
    }
}

#[test]
fn a_kubelet_restarted_after_its_pod_was_deleted_removes_the_leftover_container() {
    let c = Cluster::start();
    let dir = tempfile::tempdir().expect("temp dir");
    let mut kubelet = Kubelet::start(&c, dir.path().join("node"));
    let node = kubelet.node.clone();
    let ready = eventually(Duration::from_secs(60), || {
        c.kubectl(&["get", "node", &node, "-o", "jsonpath={.status.conditions[?(@.type==\"Ready\")].status}"]).stdout == "True"
    });
    assert!(ready, "node {node} never became Ready");
    c.k(&["run", "orphan", "--image=rkube.local/busybox:1.35", "--", "sleep", "3600"]);
    wait_status(&c, "orphan", "Running");
    let id = field(&c, "orphan", "{.status.containerStatuses[0].containerID}").trim_start_matches("containerd://").to_owned();
    assert!(kubelet.containers().contains(&id));

    kubelet.kill();
    c.k(&["delete", "pod", "orphan", "--force", "--grace-period=0"]);
    kubelet.spawn();
    // Once the new containerd answers, the container of the deleted pod must go.
    let socket = kubelet.data_dir.join("agent/containerd/containerd.sock");
    let answering = || {
        std::process::Command::new("ctr").arg("--address").arg(&socket).args(["-n", "k8s.io", "version"]).output().is_ok_and(|o| o.status.success())
    };
    let gone = eventually(Duration::from_secs(60), || answering() && !kubelet.containers().contains(&id));
    assert!(gone, "container {id} of the deleted pod is still there: {}", kubelet.containers());
}

/// With a registry on loopback configured as the mirror of docker.io in registries.yaml,
/// `image: busybox` (tag latest, so pull policy Always) runs from the mirror; an image the
/// mirror lacks fails with the registry's answer and backs off.
#[test]
fn image_busybox_is_pulled_from_a_loopback_mirror_of_docker_io() {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let registry = rt.block_on(rkube_kubelet::testing::registry::Registry::start()).expect("docker-registry on loopback");
    rt.block_on(registry.push_busybox("library/busybox", "latest")).expect("push busybox");
    let mut c = cluster();
    let yaml = format!("mirrors:\n  docker.io:\n    endpoint:\n      - \"{}\"\n", registry.url());
    std::fs::write(c.data_dir().join("registries.yaml"), yaml).expect("registries.yaml");
    // registries.yaml is read when the agent starts.
    c.stop(false);
    c.spawn();
    let node = c.node_name();
    let ready = eventually(Duration::from_secs(60), || {
        c.kubectl(&["get", "node", &node, "-o", "jsonpath={.status.conditions[?(@.type==\"Ready\")].status}"]).stdout == "True"
    });
    assert!(ready, "node not Ready after the restart");

    c.k(&["run", "mirrored", "--image=busybox", "--", "sh", "-c", "echo from-the-mirror; sleep 3600"]);
    wait_status(&c, "mirrored", "Running");
    assert_eq!(field(&c, "mirrored", "{.spec.containers[0].imagePullPolicy}"), "Always");
    assert!(eventually(Duration::from_secs(10), || c.kubectl(&["logs", "mirrored"]).stdout == "from-the-mirror\n"));
    let events = c.k(&["get", "events", "--field-selector", "involvedObject.name=mirrored", "-o", "jsonpath={.items[*].message}"]);
    assert!(events.contains("Successfully pulled image \"busybox\""), "{events}");

    c.k(&["run", "absent", "--image=busybox-that-is-not-there:1"]);
    let mut message = String::new();
    let failed = eventually(Duration::from_secs(60), || {
        message = field(&c, "absent", "{.status.containerStatuses[0].state.waiting.message}");
        let reason = status_column(&c, "absent");
        (reason == "ErrImagePull" || reason == "ImagePullBackOff") && message.contains("not found")
    });
    assert!(failed, "no pull failure naming the registry's answer: {message}");
}

/// A container over its memory limit is OOMKilled, and `kubectl describe pod` shows the
/// limits, the QoS class and the upstream event sequence.
#[test]
fn a_container_over_its_memory_limit_is_oom_killed_and_describe_shows_limits_qos_and_events() {
    let c = cluster();
    let pod = r#"{"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "hog"},
        "spec": {"restartPolicy": "Never", "containers": [{"name": "hog", "image": "rkube.local/busybox:1.35",
        "command": ["sh", "-c", "echo start; s=aaaaaaaaaaaaaaaa; while true; do s=\"$s$s\"; done"],
        "resources": {"limits": {"memory": "16Mi"}}}]}}"#;
    let r = c.kubectl_with(&["create", "-f", "-"], Some(pod), &[]);
    assert!(r.ok, "{}", r.stderr);
    wait_status(&c, "hog", "OOMKilled");
    assert_eq!(field(&c, "hog", "{.status.containerStatuses[0].state.terminated.exitCode}"), "137");
    assert_eq!(field(&c, "hog", "{.status.phase}"), "Failed");
    let mut describe = String::new();
    let complete = eventually(Duration::from_secs(10), || {
        describe = c.k(&["describe", "pod", "hog"]);
        ["Scheduled", "Pulled", "Created", "Started"].iter().all(|e| describe.contains(&format!("  {e} ")))
    });
    assert!(complete, "{describe}");
    let has = |want: &str| describe.lines().any(|l| l.split_whitespace().collect::<Vec<_>>().join(" ") == want);
    assert!(has("QoS Class: Burstable"), "{describe}");
    assert!(has("Limits:") && has("memory: 16Mi"), "{describe}");
    assert!(has("Reason: OOMKilled"), "{describe}");
}

/// The seed's deployment flow on real containers: a Deployment of 3 becomes 3 running
/// containers behind a Service's endpoints, and a deleted pod is replaced.
#[test]
fn a_deployment_runs_real_containers_behind_a_service() {
    let c = cluster();
    c.k(&["create", "deployment", "web", "--image=rkube.local/busybox:1.35", "--replicas=3", "--", "sh", "-c", "mkdir -p /www && hostname > /www/index.html && exec httpd -f -p 80 -h /www"]);
    let r = c.kubectl(&["rollout", "status", "deploy/web", "--timeout=120s"]);
    assert!(r.ok, "{}{}", r.stdout, r.stderr);
    let ready = c.k(&["get", "deploy", "web", "-o", "jsonpath={.status.readyReplicas}"]);
    assert_eq!(ready, "3");
    c.k(&["expose", "deploy", "web", "--port=80"]);
    let mut ips = Vec::new();
    let listed = eventually(Duration::from_secs(20), || {
        ips = c.k(&["get", "endpoints", "web", "-o", "jsonpath={.subsets[*].addresses[*].ip}"]).split_whitespace().map(str::to_owned).collect();
        ips.len() == 3
    });
    assert!(listed, "endpoints: {ips:?}");
    // Each endpoint answers with its own pod's name, from the host over the pod bridge.
    let pods = c.k(&["get", "pods", "-l", "app=web", "-o", "jsonpath={.items[*].metadata.name}"]);
    for ip in &ips {
        let out = std::process::Command::new("curl").args(["-sS", "--max-time", "5", &format!("http://{ip}:80/")]).output().expect("curl");
        let name = String::from_utf8_lossy(&out.stdout).trim().to_owned();
        assert!(!name.is_empty() && pods.split_whitespace().any(|p| p == name), "{ip} answered {name:?}; pods {pods}");
    }
    // Pod to pod on the node: the first pod fetches from every endpoint over the bridge.
    let first = pods.split_whitespace().next().expect("a pod").to_owned();
    for ip in &ips {
        // (busybox-static's wget crashes in glibc's resolver; nc speaks the HTTP/1.0 itself)
        let request = format!("printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 5 {ip} 80");
        let fetched = c.k(&["exec", &first, "--", "sh", "-c", &request]);
        let body = fetched.trim().lines().last().unwrap_or_default().trim();
        assert!(pods.split_whitespace().any(|p| p == body), "{first} fetched {fetched:?} from {ip}; pods {pods}");
    }
    let victim = first;
    c.k(&["delete", "pod", &victim, "--wait=false"]);
    let replaced = eventually(Duration::from_secs(90), || {
        let now = c.k(&["get", "pods", "-l", "app=web", "--field-selector=status.phase=Running", "-o", "jsonpath={.items[*].metadata.name}"]);
        now.split_whitespace().count() == 3 && !now.split_whitespace().any(|p| p == victim)
    });
    assert!(replaced, "{}", c.k(&["get", "pods", "-o", "wide"]));
}
