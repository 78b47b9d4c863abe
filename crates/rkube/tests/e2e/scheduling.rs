//! The scheduler inside `rkube server` (and `rkube scheduler` alone), with `rkube sim-nodes`
//! providing nodes, driven through kubectl as a user would.

use std::process::Command;
use std::time::Duration;

use crate::harness::Proc;
use crate::harness::{eventually, rkube_bin, write_file, Cluster};

/// A child `rkube` process killed (SIGKILL) on drop.
fn rkube(c: &Cluster, args: &[&str]) -> Proc {
    crate::harness::rkube_child(c, args)
}

/// Starts `rkube sim-nodes` and waits until its nodes are Ready in the API.
fn sim_nodes(c: &Cluster, prefix: &str, count: usize, extra: &[&str]) -> Proc {
    crate::harness::sim_nodes(c, prefix, count, extra)
}

fn pod_yaml(name: &str, cpu: &str, extra_spec: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: {name}\n  labels: {{app: {name}}}\nspec:\n{extra_spec}  containers:\n  - name: c\n    image: busybox\n    resources: {{requests: {{cpu: \"{cpu}\"}}}}\n"
    )
}

fn node_of(c: &Cluster, pod: &str) -> String {
    c.kubectl(&["get", "pod", pod, "-o", "jsonpath={.spec.nodeName}"]).stdout
}

#[track_caller]
fn wait_node(c: &Cluster, pod: &str) -> String {
    let mut node = String::new();
    let ok = eventually(Duration::from_secs(20), || {
        node = node_of(c, pod);
        !node.is_empty()
    });
    assert!(ok, "pod {pod} was not scheduled: {}", c.kubectl(&["describe", "pod", pod]).stdout);
    node
}

#[track_caller]
fn wait_running(c: &Cluster, pod: &str) {
    let ok = eventually(Duration::from_secs(20), || {
        c.kubectl(&["get", "pod", pod, "-o", "jsonpath={.status.phase}/{.status.podIP}"]).stdout.starts_with("Running/10.")
    });
    assert!(ok, "pod {pod} is not Running: {}", c.kubectl(&["get", "pod", pod, "-o", "yaml"]).stdout);
}

/// Waits for the pod's FailedScheduling event and returns its message.
#[track_caller]
fn wait_failed_scheduling(c: &Cluster, pod: &str) -> String {
    let mut msg = String::new();
    let ok = eventually(Duration::from_secs(20), || {
        let sel = format!("involvedObject.name={pod},reason=FailedScheduling");
        msg = c.kubectl(&["get", "events", "--field-selector", &sel, "-o", "jsonpath={.items[-1:].message}"]).stdout;
        !msg.is_empty()
    });
    assert!(ok, "no FailedScheduling event for {pod}");
    msg
}

#[test]
fn pods_land_where_they_fit_and_the_rest_waits_for_a_new_node() {
    let c = Cluster::start();
    let _small = sim_nodes(&c, "small-", 1, &["--cpu", "1"]);
    let _mid = sim_nodes(&c, "mid-", 1, &["--cpu", "2"]);
    let _big = sim_nodes(&c, "big-", 1, &["--cpu", "4"]);
    let _gpu = sim_nodes(&c, "gpu-", 1, &["--cpu", "64", "--taints", "dedicated=gpu:NoSchedule"]);
    c.apply(&pod_yaml("a", "3500m", ""));
    assert_eq!(wait_node(&c, "a"), "big-0");
    c.apply(&pod_yaml("b", "1800m", ""));
    assert_eq!(wait_node(&c, "b"), "mid-0");
    c.apply(&pod_yaml("d", "900m", ""));
    assert_eq!(wait_node(&c, "d"), "small-0");
    wait_running(&c, "a");

    c.apply(&pod_yaml("huge", "3", ""));
    let msg = wait_failed_scheduling(&c, "huge");
    assert_eq!(
        msg,
        "0/4 nodes are available: 1 node(s) had untolerated taint {dedicated: gpu}, 3 Insufficient cpu. \
         preemption: 0/4 nodes are available: 1 Preemption is not helpful for scheduling, 3 No preemption victims found for incoming pod."
    );
    let describe = c.k(&["describe", "pod", "huge"]);
    assert!(describe.contains("FailedScheduling") && describe.contains("default-scheduler"), "{describe}");
    let cond = c.k(&["get", "pod", "huge", "-o", "jsonpath={.status.conditions[?(@.type==\"PodScheduled\")].status}/{.status.conditions[?(@.type==\"PodScheduled\")].reason}"]);
    assert_eq!(cond, "False/Unschedulable");
    assert_eq!(node_of(&c, "huge"), "");

    let _extra = sim_nodes(&c, "extra-", 1, &["--cpu", "4"]);
    assert_eq!(wait_node(&c, "huge"), "extra-0");
    wait_running(&c, "huge");
    let events = c.k(&["get", "events", "--field-selector", "involvedObject.name=huge,reason=Scheduled", "-o", "jsonpath={.items[*].message}"]);
    assert_eq!(events, "Successfully assigned default/huge to extra-0");
}

#[test]
fn selectors_affinity_taints_spreading_ports_and_cordon_behave_as_upstream() {
    let c = Cluster::start();
    let _nodes = sim_nodes(&c, "n-", 3, &["--cpu", "8", "--zones", "3"]);
    let _ssd = sim_nodes(&c, "ssd-", 1, &["--cpu", "8", "--labels", "disk=ssd", "--taints", "dedicated=db:NoSchedule"]);

    // nodeSelector + toleration: only ssd-0 has the label, and it is tainted.
    let tol = "  tolerations: [{key: dedicated, operator: Equal, value: db, effect: NoSchedule}]\n";
    c.apply(&pod_yaml("sel", "100m", &format!("  nodeSelector: {{disk: ssd}}\n{tol}")));
    assert_eq!(wait_node(&c, "sel"), "ssd-0");
    c.apply(&pod_yaml("sel-untolerated", "100m", "  nodeSelector: {disk: ssd}\n"));
    let msg = wait_failed_scheduling(&c, "sel-untolerated");
    assert!(msg.starts_with("0/4 nodes are available: 1 node(s) had untolerated taint {dedicated: db}, 3 node(s) didn't match Pod's node affinity/selector."), "{msg}");

    // Required node affinity with NotIn, and preferred affinity towards zone-2.
    let req = "  affinity:\n    nodeAffinity:\n      requiredDuringSchedulingIgnoredDuringExecution:\n        nodeSelectorTerms:\n        - matchExpressions: [{key: topology.kubernetes.io/zone, operator: NotIn, values: [zone-0, zone-1]}]\n";
    c.apply(&pod_yaml("req", "100m", req));
    assert_eq!(wait_node(&c, "req"), "n-2");
    let pref = "  affinity:\n    nodeAffinity:\n      preferredDuringSchedulingIgnoredDuringExecution:\n      - weight: 100\n        preference: {matchExpressions: [{key: topology.kubernetes.io/zone, operator: In, values: [zone-1]}]}\n";
    c.apply(&pod_yaml("pref", "100m", pref));
    assert_eq!(wait_node(&c, "pref"), "n-1");

    // Anti-affinity on hostname: one replica per untainted node; the fourth stays Pending.
    let anti = "  affinity:\n    podAntiAffinity:\n      requiredDuringSchedulingIgnoredDuringExecution:\n      - labelSelector: {matchLabels: {group: web}}\n        topologyKey: kubernetes.io/hostname\n";
    let mut nodes = Vec::new();
    for i in 0..4 {
        let y = pod_yaml(&format!("web-{i}"), "100m", anti).replace("labels: {app: web-", "labels: {group: web, app: web-");
        c.apply(&y);
        if i < 3 {
            nodes.push(wait_node(&c, &format!("web-{i}")));
        }
    }
    nodes.sort();
    assert_eq!(nodes, ["n-0", "n-1", "n-2"]);
    let msg = wait_failed_scheduling(&c, "web-3");
    assert!(msg.starts_with("0/4 nodes are available: 1 node(s) had untolerated taint {dedicated: db}, 3 node(s) didn't match pod anti-affinity rules."), "{msg}");

    // Topology spread over zones (maxSkew 1): 6 pods → 2 per zone.
    let spread = "  topologySpreadConstraints:\n  - maxSkew: 1\n    topologyKey: topology.kubernetes.io/zone\n    whenUnsatisfiable: DoNotSchedule\n    labelSelector: {matchLabels: {group: spread}}\n";
    for i in 0..6 {
        let y = pod_yaml(&format!("spread-{i}"), "100m", spread).replace("labels: {app: spread-", "labels: {group: spread, app: spread-");
        c.apply(&y);
        wait_node(&c, &format!("spread-{i}"));
    }
    let zones = c.k(&["get", "pods", "-l", "group=spread", "-o", "jsonpath={range .items[*]}{.spec.nodeName}{\"\\n\"}{end}"]);
    for n in ["n-0", "n-1", "n-2"] {
        assert_eq!(zones.lines().filter(|l| *l == n).count(), 2, "{zones}");
    }

    // hostPort conflicts: three pods can take port 8080 (one per untainted node), the fourth cannot.
    let port = |name: &str| format!("apiVersion: v1\nkind: Pod\nmetadata: {{name: {name}}}\nspec:\n  containers:\n  - name: c\n    image: busybox\n    ports: [{{containerPort: 80, hostPort: 8080}}]\n");
    for i in 0..3 {
        c.apply(&port(&format!("port-{i}")));
        wait_node(&c, &format!("port-{i}"));
    }
    c.apply(&port("port-3"));
    let msg = wait_failed_scheduling(&c, "port-3");
    assert!(msg.contains("3 node(s) didn't have free ports for the requested pod ports"), "{msg}");

    // Cordon: new pods avoid the node; uncordon brings it back.
    c.k(&["cordon", "n-0"]);
    c.k(&["cordon", "n-1"]);
    c.apply(&pod_yaml("after-cordon", "100m", ""));
    assert_eq!(wait_node(&c, "after-cordon"), "n-2");
    c.k(&["cordon", "n-2"]);
    c.apply(&pod_yaml("all-cordoned", "100m", ""));
    let msg = wait_failed_scheduling(&c, "all-cordoned");
    assert!(msg.contains("3 node(s) were unschedulable"), "{msg}");
    c.k(&["uncordon", "n-1"]);
    assert_eq!(wait_node(&c, "all-cordoned"), "n-1");
}

#[test]
fn a_high_priority_pod_preempts_a_low_priority_one_when_the_cluster_is_full() {
    let c = Cluster::start();
    let _n = sim_nodes(&c, "p-", 1, &["--cpu", "2"]);
    c.apply(
        "apiVersion: scheduling.k8s.io/v1\nkind: PriorityClass\nmetadata: {name: low}\nvalue: 10\n---\napiVersion: scheduling.k8s.io/v1\nkind: PriorityClass\nmetadata: {name: high}\nvalue: 1000\n",
    );
    c.apply(&pod_yaml("victim", "1500m", "  priorityClassName: low\n"));
    assert_eq!(wait_node(&c, "victim"), "p-0");
    wait_running(&c, "victim");
    c.apply(&pod_yaml("same", "1500m", "  priorityClassName: low\n"));
    let msg = wait_failed_scheduling(&c, "same");
    assert!(msg.ends_with("preemption: 0/1 nodes are available: 1 No preemption victims found for incoming pod."), "{msg}");
    c.apply(&pod_yaml("important", "1500m", "  priorityClassName: high\n"));
    assert_eq!(wait_node(&c, "important"), "p-0");
    let gone = eventually(Duration::from_secs(20), || !c.kubectl(&["get", "pod", "victim"]).ok);
    assert!(gone, "the victim was not deleted");
    let events = c.k(&["get", "events", "--field-selector", "involvedObject.name=victim,reason=Preempted", "-o", "jsonpath={.items[*].message}"]);
    assert!(events.starts_with("Preempted by pod ") && events.ends_with(" on node p-0"), "{events}");
    assert_eq!(node_of(&c, "same"), "", "the equal-priority pod stays pending");
}

#[test]
fn a_pod_for_an_unknown_scheduler_stays_pending_untouched() {
    let c = Cluster::start();
    let _n = sim_nodes(&c, "u-", 1, &[]);
    c.apply(&pod_yaml("mine", "100m", "  schedulerName: my-scheduler\n"));
    c.apply(&pod_yaml("control", "100m", ""));
    wait_node(&c, "control");
    wait_running(&c, "control");
    // The control pod went through the whole cycle; the other one must have been ignored.
    let out = c.k(&["get", "pod", "mine", "-o", "jsonpath={.spec.nodeName}|{.status.conditions}|{.status.phase}"]);
    assert_eq!(out, "||Pending");
    let events = c.k(&["get", "events", "--field-selector", "involvedObject.name=mine", "-o", "name"]);
    assert_eq!(events.trim(), "");
}

#[test]
fn two_schedulers_only_the_leader_binds_and_the_standby_takes_over() {
    let c = Cluster::start_with(&["--disable-scheduler"]);
    let cfg = write_file(
        c.dir.path(),
        "sched.yaml",
        "apiVersion: kubescheduler.config.k8s.io/v1\nkind: KubeSchedulerConfiguration\nleaderElection:\n  leaderElect: true\n  leaseDuration: 4s\n  renewDeadline: 3s\n  retryPeriod: 500ms\n",
    );
    let cfg = cfg.to_str().expect("utf-8 path");
    let _n = sim_nodes(&c, "l-", 2, &[]);
    let mut first = rkube(&c, &["scheduler", "--config", cfg]);
    let holder = || c.kubectl(&["get", "lease", "-n", "kube-system", "kube-scheduler", "-o", "jsonpath={.spec.holderIdentity}"]).stdout;
    assert!(eventually(Duration::from_secs(20), || !holder().is_empty()), "no leader elected");
    let leader = holder();
    let _second = rkube(&c, &["scheduler", "--config", cfg]);
    c.apply(&pod_yaml("one", "100m", ""));
    wait_node(&c, "one");
    let scheduled = c.k(&["get", "events", "--field-selector", "reason=Scheduled", "-o", "jsonpath={.items[*].reportingInstance}"]);
    assert_eq!(scheduled.split_whitespace().collect::<Vec<_>>(), [leader.as_str()], "only the leader binds");

    first.kill();
    let took_over = eventually(Duration::from_secs(15), || {
        let h = holder();
        !h.is_empty() && h != leader
    });
    assert!(took_over, "the standby did not take the lease over");
    c.apply(&pod_yaml("two", "100m", ""));
    wait_node(&c, "two");
    let by = c.k(&["get", "events", "--field-selector", "involvedObject.name=two,reason=Scheduled", "-o", "jsonpath={.items[*].reportingInstance}"]);
    assert_eq!(by, holder());
}

#[test]
fn an_invalid_scheduler_config_fails_at_start_naming_the_field() {
    let dir = tempfile::tempdir().expect("temp dir");
    let kubeconfig = write_file(dir.path(), "kc.yaml", "apiVersion: v1\nkind: Config\nclusters: []\ncontexts: []\nusers: []\n");
    let cfg = write_file(
        dir.path(),
        "bad.yaml",
        "apiVersion: kubescheduler.config.k8s.io/v1\nkind: KubeSchedulerConfiguration\nprofiles:\n- schedulerName: default-scheduler\n  plugins:\n    score:\n      enabled: [{name: NoSuchPlugin}]\n",
    );
    let out = Command::new(rkube_bin()).arg("scheduler").arg("--kubeconfig").arg(&kubeconfig).arg("--config").arg(&cfg).output().expect("run rkube");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "{stderr}");
    assert!(lines[0].contains("profiles[0].plugins.score.enabled[0].name") && lines[0].contains("NoSuchPlugin"), "{stderr}");
}

#[test]
fn a_pod_with_a_claim_bound_to_a_local_volume_lands_on_the_volume_node() {
    let c = Cluster::start();
    let _n = sim_nodes(&c, "v-", 3, &[]);
    c.apply(
        "apiVersion: v1\nkind: PersistentVolume\nmetadata: {name: local-1}\nspec:\n  capacity: {storage: 1Gi}\n  accessModes: [ReadWriteOnce]\n  storageClassName: local\n  local: {path: /mnt/disk1}\n  claimRef: {namespace: default, name: data}\n  nodeAffinity:\n    required:\n      nodeSelectorTerms:\n      - matchExpressions: [{key: kubernetes.io/hostname, operator: In, values: [v-1]}]\n---\napiVersion: v1\nkind: PersistentVolumeClaim\nmetadata: {name: data}\nspec:\n  accessModes: [ReadWriteOnce]\n  storageClassName: local\n  volumeName: local-1\n  resources: {requests: {storage: 1Gi}}\n---\napiVersion: v1\nkind: PersistentVolumeClaim\nmetadata: {name: unbound}\nspec:\n  accessModes: [ReadWriteOnce]\n  storageClassName: immediate\n  resources: {requests: {storage: 1Gi}}\n",
    );
    let vol = |claim: &str| format!("  volumes: [{{name: d, persistentVolumeClaim: {{claimName: {claim}}}}}]\n");
    for i in 0..3 {
        c.apply(&pod_yaml(&format!("db-{i}"), "100m", &vol("data")));
        assert_eq!(wait_node(&c, &format!("db-{i}")), "v-1");
    }
    c.apply(&pod_yaml("waits", "100m", &vol("unbound")));
    assert_eq!(wait_failed_scheduling(&c, "waits"), "0/3 nodes are available: pod has unbound immediate PersistentVolumeClaims. preemption: 0/3 nodes are available: 3 Preemption is not helpful for scheduling.");
}
