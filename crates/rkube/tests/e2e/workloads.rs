//! DaemonSets and StatefulSets (with PersistentVolumeClaims bound by the local-path
//! provisioner) on simulated nodes, driven through kubectl as a user would.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::harness::Proc;
use crate::harness::{eventually, json, Cluster};

const WAIT: Duration = Duration::from_secs(60);

/// A child `rkube` process killed on drop.
/// `rkube sim-nodes` with `count` Ready nodes named `<prefix>0..`.
fn sim_nodes(c: &Cluster, count: usize, prefix: &str) -> Proc {
    crate::harness::sim_nodes(c, prefix, count, &[])
}

fn pods(c: &Cluster, ns: &str, selector: &str) -> Vec<serde_json::Value> {
    let out = c.k(&["get", "pods", "-n", ns, "-l", selector, "-o", "json"]);
    json(&out)["items"].as_array().cloned().unwrap_or_default().into_iter().filter(|p| p["metadata"]["deletionTimestamp"].is_null()).collect()
}

/// `node -> image` of the Running pods.
fn running_by_node(c: &Cluster, ns: &str, selector: &str) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = pods(c, ns, selector)
        .iter()
        .filter(|p| p["status"]["phase"] == "Running")
        .map(|p| (p["spec"]["nodeName"].as_str().unwrap_or("").to_owned(), p["spec"]["containers"][0]["image"].as_str().unwrap_or("").to_owned()))
        .collect();
    out.sort();
    out
}

fn dump(c: &Cluster, ns: &str) -> String {
    c.kubectl(&["get", "ds,sts,pods,pvc,pv,controllerrevisions", "-n", ns, "-o", "wide"]).stdout
}

const DS: &str = "apiVersion: apps/v1
kind: DaemonSet
metadata: {name: agent, namespace: default}
spec:
  selector: {matchLabels: {app: agent}}
  template:
    metadata: {labels: {app: agent}}
    spec:
      containers: [{name: agent, image: rkube.local/busybox:1.35}]
";

#[test]
fn daemonset_runs_one_pod_per_eligible_node_and_rolls_out_an_image_change() {
    let c = Cluster::start();
    let _nodes = sim_nodes(&c, 3, "sim-");
    c.k(&["taint", "node", "sim-2", "dedicated=infra:NoSchedule"]);
    c.apply(DS);
    let want = |image: &str, nodes: &[&str]| -> Vec<(String, String)> { nodes.iter().map(|n| (n.to_string(), image.to_string())).collect() };
    let v1 = "rkube.local/busybox:1.35";
    let ok = eventually(WAIT, || running_by_node(&c, "default", "app=agent") == want(v1, &["sim-0", "sim-1"]));
    assert!(ok, "one pod on each untainted node: {}", dump(&c, "default"));
    let r = c.kubectl(&["rollout", "status", "ds/agent", "--timeout=60s"]);
    assert!(r.ok && r.stdout.contains("successfully rolled out"), "rollout status: {}{}", r.stdout, r.stderr);
    let ds = json(&c.k(&["get", "ds", "agent", "-o", "json"]));
    let s = &ds["status"];
    assert_eq!((s["desiredNumberScheduled"].as_i64(), s["currentNumberScheduled"].as_i64(), s["numberReady"].as_i64()), (Some(2), Some(2), Some(2)));
    assert_eq!((s["numberMisscheduled"].as_i64(), s["updatedNumberScheduled"].as_i64()), (Some(0), Some(2)));
    // Each pod is pinned through matchFields, tolerates the node conditions and names its revision.
    let pod = &pods(&c, "default", "app=agent")[0];
    let field = &pod["spec"]["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"][0]["matchFields"][0];
    assert_eq!((field["key"].as_str(), field["values"][0].as_str()), (Some("metadata.name"), pod["spec"]["nodeName"].as_str()));
    let tolerations = pod["spec"]["tolerations"].to_string();
    assert!(tolerations.contains("node.kubernetes.io/unreachable") && tolerations.contains("node.kubernetes.io/unschedulable"), "{tolerations}");
    let hash = pod["metadata"]["labels"]["controller-revision-hash"].as_str().unwrap().to_owned();
    let revisions = c.k(&["get", "controllerrevisions", "-o", "name"]);
    assert!(revisions.contains(&format!("agent-{hash}")), "{revisions}");

    // A node added later gets its pod.
    let _more = sim_nodes(&c, 1, "late-");
    let ok = eventually(WAIT, || running_by_node(&c, "default", "app=agent") == want(v1, &["late-0", "sim-0", "sim-1"]));
    assert!(ok, "the new node gets a pod: {}", dump(&c, "default"));

    // An image change rolls out node by node; rollout status waits for it.
    c.k(&["set", "image", "ds/agent", "agent=rkube.local/busybox:1.36"]);
    let r = c.kubectl(&["rollout", "status", "ds/agent", "--timeout=90s"]);
    assert!(r.ok && r.stdout.contains("successfully rolled out"), "rollout status: {}{}\n{}", r.stdout, r.stderr, dump(&c, "default"));
    let ok = eventually(WAIT, || running_by_node(&c, "default", "app=agent") == want("rkube.local/busybox:1.36", &["late-0", "sim-0", "sim-1"]));
    assert!(ok, "every node runs the new image: {}", dump(&c, "default"));
    assert_eq!(c.k(&["get", "controllerrevisions", "-o", "name"]).lines().count(), 2);

    // kubectl reads the history from the ControllerRevisions and rolls back with one.
    let history = c.k(&["rollout", "history", "ds/agent"]);
    assert!(history.lines().any(|l| l.trim_start().starts_with('1')) && history.lines().any(|l| l.trim_start().starts_with('2')), "{history}");
    let r = c.kubectl(&["rollout", "undo", "ds/agent"]);
    assert!(r.ok, "rollout undo: {}{}", r.stdout, r.stderr);
    let ok = eventually(WAIT, || running_by_node(&c, "default", "app=agent") == want(v1, &["late-0", "sim-0", "sim-1"]));
    assert!(ok, "rolled back to the first image: {}", dump(&c, "default"));
    let r = c.kubectl(&["rollout", "status", "ds/agent", "--timeout=60s"]);
    assert!(r.ok && r.stdout.contains("successfully rolled out"), "rollout status: {}{}", r.stdout, r.stderr);

    // Deleting a node removes its pod.
    c.k(&["delete", "node", "late-0", "--wait=false"]);
    let ok = eventually(WAIT, || pods(&c, "default", "app=agent").iter().all(|p| p["spec"]["nodeName"] != "late-0"));
    assert!(ok, "the removed node's pod is deleted: {}", dump(&c, "default"));
}

/// One watch event: type, pod name, ready, terminating.
type WatchEvent = (String, String, bool, bool);

/// `kubectl get pods -w --output-watch-events -o json` in the background: every event in
/// watch order.
struct PodWatch {
    child: Child,
    events: std::sync::Arc<std::sync::Mutex<Vec<WatchEvent>>>,
}

impl PodWatch {
    fn start(c: &Cluster, ns: &str, selector: &str) -> PodWatch {
        let mut child = Command::new("kubectl")
            .args(["--kubeconfig"])
            .arg(c.kubeconfig())
            .args(["get", "pods", "-n", ns, "-l", selector, "-w", "--output-watch-events", "-o", "json"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start kubectl get -w");
        let stdout = child.stdout.take().expect("stdout");
        let events = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let sink = events.clone();
        std::thread::spawn(move || {
            for ev in serde_json::Deserializer::from_reader(stdout).into_iter::<serde_json::Value>().map_while(Result::ok) {
                let o = &ev["object"];
                let ready = o["status"]["conditions"].as_array().is_some_and(|cs| cs.iter().any(|c| c["type"] == "Ready" && c["status"] == "True"));
                let name = o["metadata"]["name"].as_str().unwrap_or_default().to_owned();
                let kind = ev["type"].as_str().unwrap_or_default().to_owned();
                sink.lock().unwrap().push((kind, name, ready, !o["metadata"]["deletionTimestamp"].is_null()));
            }
        });
        PodWatch { child, events }
    }

    fn events(&self) -> Vec<WatchEvent> {
        self.events.lock().unwrap().clone()
    }

    /// Index of the first event for `name` matching `f`.
    fn first(&self, name: &str, f: impl Fn(&str, bool, bool) -> bool) -> Option<usize> {
        self.events().iter().position(|(kind, n, ready, terminating)| n == name && f(kind, *ready, *terminating))
    }
}

impl Drop for PodWatch {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn sts_pods(c: &Cluster) -> Vec<String> {
    let mut names: Vec<String> = pods(c, "default", "app=web").iter().filter(|p| p["status"]["phase"] == "Running").map(|p| p["metadata"]["name"].as_str().unwrap_or("").to_owned()).collect();
    names.sort();
    names
}

const STS: &str = "apiVersion: v1
kind: Service
metadata: {name: web, namespace: default}
spec:
  clusterIP: None
  selector: {app: web}
  ports: [{port: 80}]
---
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: web, namespace: default}
spec:
  serviceName: web
  replicas: 3
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers: [{name: web, image: rkube.local/busybox:1.35}]
";

#[test]
fn statefulset_creates_in_order_scales_down_from_the_top_and_rolls_out() {
    let c = Cluster::start();
    let _nodes = sim_nodes(&c, 3, "sim-");
    let watch = PodWatch::start(&c, "default", "app=web");
    c.apply(STS);
    let ok = eventually(WAIT, || sts_pods(&c) == ["web-0", "web-1", "web-2"]);
    assert!(ok, "web-0..2 Running: {}", dump(&c, "default"));
    let r = c.kubectl(&["rollout", "status", "sts/web", "--timeout=60s"]);
    assert!(r.ok && r.stdout.contains("roll out complete"), "rollout status: {}{}", r.stdout, r.stderr);
    // OrderedReady: each pod is created only once the previous one is Ready.
    let ready0 = watch.first("web-0", |_, ready, _| ready).expect("web-0 became ready");
    let added1 = watch.first("web-1", |kind, _, _| kind == "ADDED").expect("web-1 added");
    let ready1 = watch.first("web-1", |_, ready, _| ready).expect("web-1 became ready");
    let added2 = watch.first("web-2", |kind, _, _| kind == "ADDED").expect("web-2 added");
    assert!(ready0 < added1 && ready1 < added2, "creation order: {:?}", watch.events());

    let pod = json(&c.k(&["get", "pod", "web-1", "-o", "json"]));
    let labels = &pod["metadata"]["labels"];
    assert_eq!((labels["statefulset.kubernetes.io/pod-name"].as_str(), labels["apps.kubernetes.io/pod-index"].as_str()), (Some("web-1"), Some("1")));
    assert_eq!((pod["spec"]["hostname"].as_str(), pod["spec"]["subdomain"].as_str()), (Some("web-1"), Some("web")));
    let sts = json(&c.k(&["get", "sts", "web", "-o", "json"]));
    let s = &sts["status"];
    assert_eq!((s["replicas"].as_i64(), s["readyReplicas"].as_i64(), s["currentReplicas"].as_i64(), s["updatedReplicas"].as_i64()), (Some(3), Some(3), Some(3), Some(3)));
    let revision = s["updateRevision"].as_str().unwrap().to_owned();
    assert_eq!(s["currentRevision"].as_str(), Some(revision.as_str()));
    assert_eq!(labels["controller-revision-hash"].as_str(), Some(revision.as_str()));
    assert!(c.k(&["get", "controllerrevisions", "-o", "name"]).contains(&revision));

    // An image change replaces pods from the highest ordinal down; rollout status waits.
    c.k(&["set", "image", "sts/web", "web=rkube.local/busybox:1.36"]);
    let r = c.kubectl(&["rollout", "status", "sts/web", "--timeout=90s"]);
    assert!(r.ok, "rollout status: {}{}\n{}", r.stdout, r.stderr, dump(&c, "default"));
    let ok = eventually(WAIT, || {
        let s = json(&c.k(&["get", "sts", "web", "-o", "json"]))["status"].clone();
        s["updatedReplicas"] == 3 && s["currentRevision"] == s["updateRevision"] && s["currentRevision"] != revision.as_str()
    });
    assert!(ok, "the update revision becomes current: {}", dump(&c, "default"));
    let images: Vec<String> = pods(&c, "default", "app=web").iter().map(|p| p["spec"]["containers"][0]["image"].as_str().unwrap_or("").to_owned()).collect();
    assert_eq!(images, vec!["rkube.local/busybox:1.36".to_string(); 3]);
    let history = c.k(&["rollout", "history", "sts/web"]);
    assert!(history.lines().any(|l| l.trim_start().starts_with('2')), "{history}");
    let gone2 = watch.first("web-2", |_, _, terminating| terminating).expect("web-2 replaced");
    let gone0 = watch.first("web-0", |_, _, terminating| terminating).expect("web-0 replaced");
    assert!(gone2 < gone0, "the update goes from the top down");

    // Scale to 1: web-2 goes first, then web-1.
    let before = watch.events().len();
    c.k(&["scale", "sts/web", "--replicas=1"]);
    let ok = eventually(WAIT, || sts_pods(&c) == ["web-0"] && pods(&c, "default", "app=web").len() == 1);
    assert!(ok, "scaled to web-0: {}", dump(&c, "default"));
    let later: Vec<_> = watch.events().into_iter().skip(before).collect();
    let first_deleting = later.iter().find(|(_, _, _, terminating)| *terminating).map(|e| e.1.clone());
    assert_eq!(first_deleting.as_deref(), Some("web-2"), "{later:?}");
    let web2_gone = later.iter().position(|(k, n, _, _)| k == "DELETED" && n == "web-2").expect("web-2 deleted");
    let web1_deleting = later.iter().position(|(_, n, _, t)| n == "web-1" && *t).expect("web-1 deleted");
    assert!(web2_gone < web1_deleting, "web-1 waits for web-2 to be gone: {later:?}");
}

const STS_WITH_CLAIMS: &str = "apiVersion: apps/v1
kind: StatefulSet
metadata: {name: web, namespace: default}
spec:
  serviceName: web
  replicas: 3
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
      - name: web
        image: rkube.local/busybox:1.35
        volumeMounts: [{name: www, mountPath: /data}]
  volumeClaimTemplates:
  - metadata: {name: www}
    spec:
      accessModes: [ReadWriteOnce]
      resources: {requests: {storage: 1Gi}}
";

/// `name -> (phase, volumeName, uid)` of the claims.
fn claims(c: &Cluster) -> Vec<(String, String, String, String)> {
    let items = json(&c.k(&["get", "pvc", "-o", "json"]))["items"].as_array().cloned().unwrap_or_default();
    let mut out: Vec<_> = items
        .iter()
        .map(|p| {
            let s = |v: &serde_json::Value| v.as_str().unwrap_or("").to_owned();
            (s(&p["metadata"]["name"]), s(&p["status"]["phase"]), s(&p["spec"]["volumeName"]), s(&p["metadata"]["uid"]))
        })
        .collect();
    out.sort();
    out
}

#[test]
fn statefulset_claims_are_provisioned_bound_and_kept_across_pod_deletion_and_scale_down() {
    let c = Cluster::start();
    let _nodes = sim_nodes(&c, 3, "sim-");
    let ok = eventually(WAIT, || c.kubectl(&["get", "storageclass", "local-path"]).stdout.contains("(default)"));
    assert!(ok, "the default local-path class exists: {}", c.kubectl(&["get", "sc"]).stdout);
    let sc = json(&c.k(&["get", "sc", "local-path", "-o", "json"]));
    assert_eq!((sc["provisioner"].as_str(), sc["reclaimPolicy"].as_str()), (Some("rancher.io/local-path"), Some("Delete")));

    c.apply(STS_WITH_CLAIMS);
    let ok = eventually(WAIT, || sts_pods(&c) == ["web-0", "web-1", "web-2"]);
    assert!(ok, "web-0..2 Running: {}", dump(&c, "default"));
    let bound = claims(&c);
    let names: Vec<&str> = bound.iter().map(|c| c.0.as_str()).collect();
    assert_eq!(names, ["www-web-0", "www-web-1", "www-web-2"]);
    assert!(bound.iter().all(|c| c.1 == "Bound" && c.2.starts_with("pvc-")), "{bound:?}");
    let pvc = json(&c.k(&["get", "pvc", "www-web-1", "-o", "json"]));
    assert_eq!(pvc["spec"]["storageClassName"], "local-path", "DefaultStorageClass admission");
    assert_eq!(pvc["metadata"]["annotations"]["pv.kubernetes.io/bind-completed"], "yes");
    assert_eq!(pvc["status"]["capacity"]["storage"], "1Gi");
    let pv = json(&c.k(&["get", "pv", bound[1].2.as_str(), "-o", "json"]));
    assert_eq!((pv["status"]["phase"].as_str(), pv["spec"]["claimRef"]["name"].as_str()), (Some("Bound"), Some("www-web-1")));
    let path = pv["spec"]["hostPath"]["path"].as_str().unwrap_or_default().to_owned();
    assert_eq!(path, c.data_dir().join("storage").join(&bound[1].2).display().to_string());
    // The pod runs on its volume's node.
    let volume_node = pv["spec"]["nodeAffinity"]["required"]["nodeSelectorTerms"][0]["matchExpressions"][0]["values"][0].as_str().unwrap_or_default().to_owned();
    let pod = json(&c.k(&["get", "pod", "web-1", "-o", "json"]));
    assert_eq!(pod["spec"]["nodeName"].as_str(), Some(volume_node.as_str()));
    assert_eq!(pod["spec"]["volumes"][0]["persistentVolumeClaim"]["claimName"], "www-web-1");

    // A deleted pod comes back with the same claim.
    let old_uid = pod["metadata"]["uid"].as_str().unwrap().to_owned();
    c.k(&["delete", "pod", "web-1", "--wait=false"]);
    let ok = eventually(WAIT, || {
        let p = json(&c.kubectl(&["get", "pod", "web-1", "-o", "json"]).stdout);
        p["metadata"]["uid"].as_str().is_some_and(|u| u != old_uid) && p["status"]["phase"] == "Running"
    });
    assert!(ok, "web-1 recreated: {}", dump(&c, "default"));
    let pod = json(&c.k(&["get", "pod", "web-1", "-o", "json"]));
    assert_eq!(pod["spec"]["volumes"][0]["persistentVolumeClaim"]["claimName"], "www-web-1");
    assert_eq!(claims(&c), bound, "the claims are unchanged");

    // Scale to 1: the claims stay, Bound.
    c.k(&["scale", "sts/web", "--replicas=1"]);
    let ok = eventually(WAIT, || sts_pods(&c) == ["web-0"] && pods(&c, "default", "app=web").len() == 1);
    assert!(ok, "scaled to web-0: {}", dump(&c, "default"));
    assert_eq!(claims(&c), bound, "claims are retained on scale-down");

    // Deleting an unused claim releases its volume, which the provisioner deletes (Delete policy).
    c.k(&["delete", "pvc", "www-web-2"]);
    let gone = bound[2].2.clone();
    let ok = eventually(WAIT, || !c.kubectl(&["get", "pv", "-o", "name"]).stdout.contains(&gone));
    assert!(ok, "the released volume is deleted: {}", c.kubectl(&["get", "pv"]).stdout);
}

const STATIC: &str = "apiVersion: v1
kind: PersistentVolume
metadata: {name: big}
spec:
  storageClassName: manual
  capacity: {storage: 10Gi}
  accessModes: [ReadWriteOnce]
  hostPath: {path: /tmp/rkube-e2e-unused-big}
---
apiVersion: v1
kind: PersistentVolume
metadata: {name: small}
spec:
  storageClassName: manual
  capacity: {storage: 1Gi}
  accessModes: [ReadWriteOnce]
  persistentVolumeReclaimPolicy: Retain
  hostPath: {path: /tmp/rkube-e2e-unused-small}
";

const CLAIM: &str = "apiVersion: v1
kind: PersistentVolumeClaim
metadata: {name: data, namespace: default}
spec:
  storageClassName: manual
  accessModes: [ReadWriteOnce]
  resources: {requests: {storage: 500Mi}}
";

#[test]
fn claims_bind_the_smallest_fitting_volume_and_release_it_when_deleted() {
    let c = Cluster::start();
    c.apply(STATIC);
    let phase = |kind: &str, name: &str| c.kubectl(&["get", kind, name, "-o", "jsonpath={.status.phase}"]).stdout;
    let ok = eventually(WAIT, || phase("pv", "big") == "Available" && phase("pv", "small") == "Available");
    assert!(ok, "new volumes are Available: {}", c.kubectl(&["get", "pv"]).stdout);
    c.apply(CLAIM);
    let ok = eventually(WAIT, || phase("pvc", "data") == "Bound");
    assert!(ok, "the claim binds: {}", c.kubectl(&["get", "pv,pvc"]).stdout);
    assert_eq!(c.k(&["get", "pvc", "data", "-o", "jsonpath={.spec.volumeName}"]), "small");
    assert_eq!(phase("pv", "small"), "Bound");
    assert_eq!(phase("pv", "big"), "Available");
    assert_eq!(c.k(&["get", "pv", "small", "-o", "jsonpath={.metadata.annotations.pv\\.kubernetes\\.io/bound-by-controller}"]), "yes");
    c.k(&["delete", "pvc", "data"]);
    let ok = eventually(WAIT, || phase("pv", "small") == "Released");
    assert!(ok, "the retained volume is Released: {}", c.kubectl(&["get", "pv"]).stdout);
}

const STS_REAL: &str = "apiVersion: apps/v1
kind: StatefulSet
metadata: {name: db, namespace: default}
spec:
  serviceName: db
  replicas: 1
  selector: {matchLabels: {app: db}}
  template:
    metadata: {labels: {app: db}}
    spec:
      terminationGracePeriodSeconds: 1
      containers:
      - name: db
        image: rkube.local/busybox:1.35
        command: [sh, -c, 'if [ -f /data/msg ]; then echo found: $(cat /data/msg); else echo stored-by-first-pod > /data/msg; echo created; fi; sleep 3600']
        volumeMounts: [{name: data, mountPath: /data}]
  volumeClaimTemplates:
  - metadata: {name: data}
    spec:
      accessModes: [ReadWriteOnce]
      resources: {requests: {storage: 64Mi}}
";

#[test]
fn statefulset_pod_finds_its_data_again_after_being_replaced_on_a_real_kubelet() {
    let c = crate::kubelet_probes::cluster();
    c.apply(STS_REAL);
    let logs = |c: &Cluster| c.kubectl(&["logs", "db-0"]).stdout;
    let ok = eventually(Duration::from_secs(90), || logs(&c).contains("created"));
    assert!(ok, "db-0 stored its data: {}\n{}", logs(&c), dump(&c, "default"));
    let volume = c.k(&["get", "pvc", "data-db-0", "-o", "jsonpath={.spec.volumeName}"]);
    let dir = c.data_dir().join("storage").join(&volume);
    assert_eq!(std::fs::read_to_string(dir.join("msg")).unwrap_or_default(), "stored-by-first-pod\n", "the volume is {}", dir.display());
    let uid = c.k(&["get", "pod", "db-0", "-o", "jsonpath={.metadata.uid}"]);
    c.k(&["delete", "pod", "db-0"]);
    let ok = eventually(Duration::from_secs(90), || {
        c.kubectl(&["get", "pod", "db-0", "-o", "jsonpath={.metadata.uid}"]).stdout != uid && logs(&c).contains("found: stored-by-first-pod")
    });
    assert!(ok, "the new db-0 reads the first pod's data: {}\n{}", logs(&c), dump(&c, "default"));

    // Deleting the set and its claim deletes the volume and, on this machine, its directory.
    c.k(&["delete", "sts", "db"]);
    let ok = eventually(Duration::from_secs(60), || c.kubectl(&["get", "pod", "db-0"]).stdout.is_empty());
    assert!(ok, "db-0 is gone: {}", dump(&c, "default"));
    c.k(&["delete", "pvc", "data-db-0"]);
    let ok = eventually(Duration::from_secs(60), || !dir.exists() && !c.kubectl(&["get", "pv", "-o", "name"]).stdout.contains(&volume));
    assert!(ok, "the volume and its directory are deleted: {}", c.kubectl(&["get", "pv"]).stdout);
}

const STS_DELETE_CLAIMS: &str = "apiVersion: apps/v1
kind: StatefulSet
metadata: {name: cache, namespace: default}
spec:
  serviceName: cache
  replicas: 2
  podManagementPolicy: Parallel
  persistentVolumeClaimRetentionPolicy: {whenDeleted: Delete, whenScaled: Delete}
  selector: {matchLabels: {app: cache}}
  template:
    metadata: {labels: {app: cache}}
    spec:
      containers: [{name: cache, image: rkube.local/busybox:1.35}]
  volumeClaimTemplates:
  - metadata: {name: data}
    spec:
      accessModes: [ReadWriteOnce]
      resources: {requests: {storage: 1Gi}}
";

#[test]
fn statefulset_claims_go_with_scale_down_and_deletion_when_the_retention_policy_says_delete() {
    let c = Cluster::start();
    let _nodes = sim_nodes(&c, 2, "sim-");
    c.apply(STS_DELETE_CLAIMS);
    let bound = |c: &Cluster| claims(c).iter().filter(|x| x.1 == "Bound").map(|x| x.0.clone()).collect::<Vec<_>>();
    let ok = eventually(WAIT, || bound(&c) == ["data-cache-0", "data-cache-1"] && running_by_node(&c, "default", "app=cache").len() == 2);
    assert!(ok, "both claims bound, both pods running: {}", dump(&c, "default"));
    let owners = c.k(&["get", "pvc", "data-cache-0", "-o", "jsonpath={.metadata.ownerReferences[*].kind}"]);
    assert_eq!(owners, "StatefulSet");
    c.k(&["scale", "sts/cache", "--replicas=1"]);
    let ok = eventually(WAIT, || claims(&c).iter().map(|x| x.0.as_str()).collect::<Vec<_>>() == ["data-cache-0"]);
    assert!(ok, "the scaled-down ordinal's claim is deleted with its pod: {}", dump(&c, "default"));
    c.k(&["delete", "sts", "cache"]);
    let ok = eventually(WAIT, || claims(&c).is_empty());
    assert!(ok, "the set's claims are deleted with it: {}", dump(&c, "default"));
}

#[test]
fn a_claim_created_before_any_default_class_gets_the_default_class_later() {
    let c = Cluster::start_with(&["--controllers", "*,-local-path-provisioner"]);
    c.apply("apiVersion: v1
kind: PersistentVolumeClaim
metadata: {name: early, namespace: default}
spec:
  accessModes: [ReadWriteOnce]
  resources: {requests: {storage: 1Gi}}
");
    assert_eq!(c.k(&["get", "pvc", "early", "-o", "jsonpath={.spec.storageClassName}"]), "", "no default class yet");
    assert!(c.k(&["get", "storageclass", "-o", "name"]).is_empty(), "the local-path provisioner is disabled, so is its class");
    c.apply("apiVersion: storage.k8s.io/v1
kind: StorageClass
metadata:
  name: standard
  annotations: {storageclass.kubernetes.io/is-default-class: \"true\"}
provisioner: kubernetes.io/no-provisioner
---
apiVersion: v1
kind: PersistentVolume
metadata: {name: disk}
spec:
  storageClassName: standard
  capacity: {storage: 2Gi}
  accessModes: [ReadWriteOnce]
  hostPath: {path: /tmp/rkube-e2e-unused-disk}
");
    let ok = eventually(WAIT, || c.kubectl(&["get", "pvc", "early", "-o", "jsonpath={.spec.storageClassName} {.status.phase} {.spec.volumeName}"]).stdout == "standard Bound disk");
    assert!(ok, "the claim gets the default class and binds: {}", c.kubectl(&["get", "pv,pvc", "-o", "wide"]).stdout);
}
