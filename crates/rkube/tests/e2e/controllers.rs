//! The controller manager inside `rkube server` (and `rkube controller-manager` alone), with
//! `rkube sim-nodes` running pods, driven through kubectl as a user would.

use std::process::Command;
use std::time::Duration;

use crate::harness::Proc;
use crate::harness::{eventually, json, Cluster};

const WAIT: Duration = Duration::from_secs(40);

/// A child `rkube` process killed on drop.
fn rkube(c: &Cluster, args: &[&str]) -> Proc {
    crate::harness::rkube_child(c, args)
}

/// Three simulated nodes, Ready.
fn sim_nodes(c: &Cluster) -> Proc {
    let p = rkube(c, &["sim-nodes", "--count", "3", "--name-prefix", "sim-"]);
    let ok = eventually(WAIT, || {
        let out = c.kubectl(&["get", "nodes", "-o", "jsonpath={range .items[*]}{.status.conditions[?(@.type==\"Ready\")].status}{\"\\n\"}{end}"]);
        out.stdout.lines().filter(|l| *l == "True").count() == 3
    });
    assert!(ok, "3 sim nodes did not become Ready");
    p
}

/// Pods of namespace `ns` with label selector `selector`, as JSON items.
fn pods(c: &Cluster, ns: &str, selector: &str) -> Vec<serde_json::Value> {
    let out = c.k(&["get", "pods", "-n", ns, "-l", selector, "-o", "json"]);
    json(&out)["items"].as_array().cloned().unwrap_or_default()
}

fn live(items: &[serde_json::Value]) -> Vec<&serde_json::Value> {
    items.iter().filter(|p| p["metadata"]["deletionTimestamp"].is_null()).collect()
}

fn running(items: &[serde_json::Value]) -> usize {
    live(items).iter().filter(|p| p["status"]["phase"] == "Running").count()
}

fn names(items: &[&serde_json::Value]) -> Vec<String> {
    items.iter().map(|p| p["metadata"]["name"].as_str().unwrap_or_default().to_owned()).collect()
}

#[track_caller]
fn wait_running(c: &Cluster, ns: &str, selector: &str, count: usize) {
    let ok = eventually(WAIT, || {
        let items = pods(c, ns, selector);
        live(&items).len() == count && running(&items) == count
    });
    assert!(ok, "expected {count} Running pods for {selector} in {ns}: {}", c.kubectl(&["get", "pods", "-n", ns, "-o", "wide"]).stdout);
}

fn controller_of(pod: &serde_json::Value) -> Option<String> {
    pod["metadata"]["ownerReferences"]
        .as_array()?
        .iter()
        .find(|r| r["controller"] == true)
        .map(|r| format!("{}/{}", r["kind"].as_str().unwrap_or(""), r["name"].as_str().unwrap_or("")))
}

const RS: &str = "apiVersion: apps/v1
kind: ReplicaSet
metadata: {name: front, namespace: rs}
spec:
  replicas: 3
  selector: {matchLabels: {app: front}}
  template:
    metadata: {labels: {app: front}}
    spec:
      containers: [{name: c, image: rkube.local/busybox:1.35}]
";

#[test]
fn replicaset_keeps_its_replicas_adopts_orphans_and_releases_relabelled_pods() {
    let c = Cluster::start();
    let _nodes = sim_nodes(&c);
    c.k(&["create", "namespace", "rs"]);
    c.apply(RS);
    wait_running(&c, "rs", "app=front", 3);
    let items = pods(&c, "rs", "app=front");
    for p in &items {
        assert_eq!(controller_of(p).as_deref(), Some("ReplicaSet/front"));
        assert!(p["metadata"]["name"].as_str().unwrap().starts_with("front-"));
    }
    let ok = eventually(WAIT, || {
        c.kubectl(&["get", "rs", "front", "-n", "rs", "-o", "jsonpath={.status.readyReplicas}/{.status.availableReplicas}/{.status.observedGeneration}"]).stdout == "3/3/1"
    });
    assert!(ok, "status: {}", c.kubectl(&["get", "rs", "front", "-n", "rs", "-o", "yaml"]).stdout);

    // A deleted pod is replaced.
    let victim = names(&live(&items))[0].clone();
    c.k(&["delete", "pod", "-n", "rs", &victim, "--wait=false"]);
    let ok = eventually(WAIT, || {
        let items = pods(&c, "rs", "app=front");
        let live = live(&items);
        live.len() == 3 && !names(&live).contains(&victim) && running(&items) == 3
    });
    assert!(ok, "pod {victim} was not replaced: {}", c.kubectl(&["get", "pods", "-n", "rs"]).stdout);

    // An orphan matching the selector is adopted, and the surplus deleted.
    c.apply("apiVersion: v1\nkind: Pod\nmetadata: {name: stray, namespace: rs, labels: {app: front}}\nspec:\n  containers: [{name: c, image: rkube.local/busybox:1.35}]\n");
    let ok = eventually(WAIT, || {
        let items = pods(&c, "rs", "app=front");
        let live = live(&items);
        live.len() == 3 && live.iter().all(|p| controller_of(p).as_deref() == Some("ReplicaSet/front"))
    });
    assert!(ok, "orphan not adopted or surplus not deleted: {}", c.kubectl(&["get", "pods", "-n", "rs", "-o", "yaml"]).stdout);

    // A pod relabelled out of the selector is released and replaced.
    let items = pods(&c, "rs", "app=front");
    let moved = names(&live(&items))[0].clone();
    c.k(&["label", "pod", "-n", "rs", &moved, "app=elsewhere", "--overwrite"]);
    let ok = eventually(WAIT, || {
        let released = c.kubectl(&["get", "pod", "-n", "rs", &moved, "-o", "json"]);
        let released_ok = released.ok && controller_of(&json(&released.stdout)).is_none();
        released_ok && live(&pods(&c, "rs", "app=front")).len() == 3
    });
    assert!(ok, "relabelled pod not released/replaced: {}", c.kubectl(&["get", "pods", "-n", "rs", "--show-labels"]).stdout);

    // Scaling.
    c.k(&["scale", "rs", "front", "-n", "rs", "--replicas=5"]);
    wait_running(&c, "rs", "app=front", 5);
    c.k(&["scale", "rs", "front", "-n", "rs", "--replicas=1"]);
    wait_running(&c, "rs", "app=front", 1);
    let events = c.k(&["get", "events", "-n", "rs", "--field-selector", "involvedObject.name=front", "-o", "jsonpath={.items[*].reason}"]);
    assert!(events.contains("SuccessfulCreate") && events.contains("SuccessfulDelete"), "events: {events}");
}

#[test]
fn controller_manager_runs_alone_with_leader_election() {
    let c = Cluster::start_with(&["--disable-controller-manager"]);
    let _nodes = sim_nodes(&c);
    c.k(&["create", "namespace", "rs"]);
    c.apply(RS);
    let _cm = rkube(&c, &["controller-manager", "--controllers", "*,-deployment"]);
    wait_running(&c, "rs", "app=front", 3);
    let holder = c.k(&["get", "lease", "-n", "kube-system", "kube-controller-manager", "-o", "jsonpath={.spec.holderIdentity}"]);
    assert!(holder.starts_with("rkube-controller-manager_"), "lease holder: {holder}");
}

/// `revision=image` of each ReplicaSet of the deployment with label `app=<app>`.
fn replicasets(c: &Cluster, ns: &str, app: &str) -> Vec<serde_json::Value> {
    json(&c.k(&["get", "rs", "-n", ns, "-l", &format!("app={app}"), "-o", "json"]))["items"].as_array().cloned().unwrap_or_default()
}

#[track_caller]
fn rollout_status(c: &Cluster, ns: &str, deploy: &str) {
    let r = c.kubectl(&["rollout", "status", "-n", ns, &format!("deploy/{deploy}"), "--timeout=60s"]);
    assert!(r.ok && r.stdout.contains("successfully rolled out"), "rollout status: {}{}\n{}", r.stdout, r.stderr, c.kubectl(&["get", "deploy,rs,pods", "-n", ns, "-o", "wide"]).stdout);
}

fn image_of(c: &Cluster, ns: &str, deploy: &str) -> String {
    c.k(&["get", "deploy", deploy, "-n", ns, "-o", "jsonpath={.spec.template.spec.containers[0].image}"])
}

#[test]
fn deployment_rolls_out_rolls_back_scales_and_restarts_with_kubectl() {
    let c = Cluster::start();
    let _nodes = sim_nodes(&c);
    c.k(&["create", "deployment", "web", "--image=rkube.local/busybox:1.35", "--replicas=3"]);
    wait_running(&c, "default", "app=web", 3);
    rollout_status(&c, "default", "web");
    let rs1 = replicasets(&c, "default", "web");
    assert_eq!(rs1.len(), 1);
    let rs1_name = rs1[0]["metadata"]["name"].as_str().unwrap().to_owned();
    let hash = rs1[0]["metadata"]["labels"]["pod-template-hash"].as_str().unwrap().to_owned();
    assert_eq!(rs1_name, format!("web-{hash}"));
    assert_eq!(rs1[0]["metadata"]["annotations"]["deployment.kubernetes.io/revision"], "1");
    let d = json(&c.k(&["get", "deploy", "web", "-o", "json"]));
    assert_eq!(d["metadata"]["annotations"]["deployment.kubernetes.io/revision"], "1");
    assert_eq!((d["status"]["replicas"].as_i64(), d["status"]["updatedReplicas"].as_i64(), d["status"]["availableReplicas"].as_i64()), (Some(3), Some(3), Some(3)));
    let conds = d["status"]["conditions"].as_array().unwrap();
    let reason = |t: &str| conds.iter().find(|c| c["type"] == t).map(|c| c["reason"].as_str().unwrap_or("").to_owned());
    assert_eq!(reason("Available").as_deref(), Some("MinimumReplicasAvailable"));
    assert_eq!(reason("Progressing").as_deref(), Some("NewReplicaSetAvailable"));

    // set image: a second ReplicaSet, with never fewer than replicas - maxUnavailable (3 - 0) ready.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let watcher = {
        let (stop, kubeconfig) = (stop.clone(), c.kubeconfig());
        std::thread::spawn(move || {
            let (mut min_ready, mut samples) = (usize::MAX, 0);
            while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                let out = Command::new("kubectl")
                    .env("KUBECONFIG", &kubeconfig)
                    .args(["get", "pods", "-l", "app=web", "-o", "json"])
                    .output()
                    .expect("kubectl");
                if let Ok(v) = serde_json::from_slice::<serde_json::Value>(&out.stdout) {
                    let ready = v["items"].as_array().into_iter().flatten().filter(|p| {
                        p["metadata"]["deletionTimestamp"].is_null()
                            && p["status"]["conditions"].as_array().into_iter().flatten().any(|c| c["type"] == "Ready" && c["status"] == "True")
                    });
                    min_ready = min_ready.min(ready.count());
                    samples += 1;
                }
            }
            (min_ready, samples)
        })
    };
    c.k(&["set", "image", "deploy/web", "busybox=rkube.local/busybox:1.36"]);
    rollout_status(&c, "default", "web");
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    let (min_ready, samples) = watcher.join().unwrap();
    assert!(samples > 0, "the watcher never read the pods");
    assert!(min_ready >= 3, "ready pods fell to {min_ready} during a rollout with maxUnavailable 0");
    let rss = replicasets(&c, "default", "web");
    assert_eq!(rss.len(), 2, "{rss:#?}");
    let new = rss.iter().find(|r| r["metadata"]["name"] != rs1_name.as_str()).unwrap();
    assert_eq!(new["spec"]["replicas"], 3);
    assert_eq!(new["metadata"]["annotations"]["deployment.kubernetes.io/revision"], "2");
    let old = rss.iter().find(|r| r["metadata"]["name"] == rs1_name.as_str()).unwrap();
    assert_eq!(old["spec"]["replicas"], 0);
    let items = pods(&c, "default", "app=web");
    assert!(live(&items).iter().all(|p| p["spec"]["containers"][0]["image"] == "rkube.local/busybox:1.36"));

    let history = c.k(&["rollout", "history", "deploy/web"]);
    let revisions: Vec<&str> = history.lines().filter_map(|l| l.split_whitespace().next()).filter(|w| w.parse::<u32>().is_ok()).collect();
    assert_eq!(revisions, ["1", "2"], "{history}");

    // undo: back to the first template, which becomes revision 3 of the same ReplicaSet.
    c.k(&["rollout", "undo", "deploy/web"]);
    rollout_status(&c, "default", "web");
    assert_eq!(image_of(&c, "default", "web"), "rkube.local/busybox:1.35");
    let rss = replicasets(&c, "default", "web");
    assert_eq!(rss.len(), 2);
    let first = rss.iter().find(|r| r["metadata"]["name"] == rs1_name.as_str()).unwrap();
    assert_eq!((first["spec"]["replicas"].as_i64(), first["metadata"]["annotations"]["deployment.kubernetes.io/revision"].as_str()), (Some(3), Some("3")));

    // scale to 0 and back to 5
    c.k(&["scale", "deploy/web", "--replicas=0"]);
    assert!(eventually(WAIT, || live(&pods(&c, "default", "app=web")).is_empty()), "pods left after scaling to 0");
    c.k(&["scale", "deploy/web", "--replicas=5"]);
    wait_running(&c, "default", "app=web", 5);
    rollout_status(&c, "default", "web");

    // pause: a template change does not roll out until resumed
    c.k(&["rollout", "pause", "deploy/web"]);
    c.k(&["set", "image", "deploy/web", "busybox=rkube.local/busybox:1.37"]);
    let ok = eventually(WAIT, || {
        c.kubectl(&["get", "deploy", "web", "-o", "jsonpath={.status.conditions[?(@.type==\"Progressing\")].reason}"]).stdout == "DeploymentPaused"
    });
    assert!(ok, "no DeploymentPaused condition");
    assert_eq!(replicasets(&c, "default", "web").len(), 2, "a paused deployment created a ReplicaSet");
    c.k(&["rollout", "resume", "deploy/web"]);
    rollout_status(&c, "default", "web");
    assert_eq!(replicasets(&c, "default", "web").len(), 3);

    // restart: a new ReplicaSet with the restartedAt annotation
    c.k(&["rollout", "restart", "deploy/web"]);
    rollout_status(&c, "default", "web");
    let rss = replicasets(&c, "default", "web");
    assert_eq!(rss.len(), 4);
    let items = pods(&c, "default", "app=web");
    let live = live(&items);
    assert_eq!(live.len(), 5);
    assert!(live.iter().all(|p| !p["metadata"]["annotations"]["kubectl.kubernetes.io/restartedAt"].is_null()));
}

#[test]
fn recreate_deployments_keep_their_revision_history_limit_and_report_progress_deadlines() {
    let c = Cluster::start();
    let _nodes = sim_nodes(&c);
    c.apply(
        "apiVersion: apps/v1
kind: Deployment
metadata: {name: db, namespace: default}
spec:
  replicas: 2
  revisionHistoryLimit: 1
  strategy: {type: Recreate}
  selector: {matchLabels: {app: db}}
  template:
    metadata: {labels: {app: db}}
    spec:
      containers: [{name: db, image: rkube.local/busybox:1.35}]
",
    );
    rollout_status(&c, "default", "db");
    for v in ["1.36", "1.37", "1.38"] {
        c.k(&["set", "image", "deploy/db", &format!("db=rkube.local/busybox:{v}")]);
        rollout_status(&c, "default", "db");
    }
    let ok = eventually(WAIT, || replicasets(&c, "default", "db").len() == 2);
    assert!(ok, "revisionHistoryLimit 1 should leave the new and one old ReplicaSet: {}", c.kubectl(&["get", "rs"]).stdout);
    wait_running(&c, "default", "app=db", 2);

    // Pods that can never be scheduled: the rollout times out.
    c.apply(
        "apiVersion: apps/v1
kind: Deployment
metadata: {name: stuck, namespace: default}
spec:
  replicas: 1
  progressDeadlineSeconds: 2
  selector: {matchLabels: {app: stuck}}
  template:
    metadata: {labels: {app: stuck}}
    spec:
      nodeSelector: {nowhere: \"true\"}
      containers: [{name: c, image: rkube.local/busybox:1.35}]
",
    );
    let ok = eventually(WAIT, || {
        c.kubectl(&["get", "deploy", "stuck", "-o", "jsonpath={.status.conditions[?(@.type==\"Progressing\")].reason}"]).stdout == "ProgressDeadlineExceeded"
    });
    assert!(ok, "no ProgressDeadlineExceeded: {}", c.kubectl(&["get", "deploy", "stuck", "-o", "yaml"]).stdout);
    let r = c.kubectl(&["rollout", "status", "deploy/stuck", "--timeout=20s"]);
    assert!(!r.ok && r.stderr.contains("exceeded its progress deadline"), "{}{}", r.stdout, r.stderr);
}

fn create_web(c: &Cluster) {
    c.k(&["create", "deployment", "web", "--image=rkube.local/busybox:1.35", "--replicas=3"]);
    wait_running(c, "default", "app=web", 3);
    rollout_status(c, "default", "web");
}

#[test]
fn deleting_a_deployment_cascades_in_the_background_foreground_or_not_at_all() {
    let c = Cluster::start();
    let _nodes = sim_nodes(&c);

    // background (kubectl's default): the deployment goes at once, then its RS and pods
    create_web(&c);
    c.k(&["delete", "deploy", "web"]);
    let ok = eventually(WAIT, || replicasets(&c, "default", "web").is_empty() && pods(&c, "default", "app=web").is_empty());
    assert!(ok, "background deletion left: {}", c.kubectl(&["get", "rs,pods", "-o", "wide"]).stdout);

    // foreground: the deployment is gone only after its ReplicaSet and pods
    create_web(&c);
    let r = c.kubectl(&["delete", "deploy", "web", "--cascade=foreground", "--timeout=60s"]);
    assert!(r.ok, "{}{}", r.stdout, r.stderr);
    assert!(!c.kubectl(&["get", "deploy", "web"]).ok, "deployment still there");
    assert!(replicasets(&c, "default", "web").is_empty(), "ReplicaSet outlived its deployment");
    assert!(pods(&c, "default", "app=web").is_empty(), "pods outlived their deployment: {}", c.kubectl(&["get", "pods"]).stdout);

    // orphan: the ReplicaSet and pods stay, the ReplicaSet without its owner reference
    create_web(&c);
    let r = c.kubectl(&["delete", "deploy", "web", "--cascade=orphan", "--timeout=60s"]);
    assert!(r.ok, "{}{}", r.stdout, r.stderr);
    assert!(!c.kubectl(&["get", "deploy", "web"]).ok, "deployment still there");
    let rss = replicasets(&c, "default", "web");
    assert_eq!(rss.len(), 1);
    assert!(rss[0]["metadata"]["ownerReferences"].as_array().is_none_or(|r| r.is_empty()), "{:#}", rss[0]["metadata"]);
    assert!(rss[0]["metadata"]["finalizers"].as_array().is_none_or(|r| r.is_empty()));
    let items = pods(&c, "default", "app=web");
    assert_eq!(live(&items).len(), 3);
    assert!(live(&items).iter().all(|p| controller_of(p).is_some_and(|c| c.starts_with("ReplicaSet/web-"))));
    // a ReplicaSet whose owner is gone is collected when its pods' owner goes
    let rs_name = rss[0]["metadata"]["name"].as_str().unwrap().to_owned();
    c.k(&["delete", "rs", &rs_name]);
    assert!(eventually(WAIT, || pods(&c, "default", "app=web").is_empty()), "pods of a deleted ReplicaSet remain");
}

#[test]
fn every_namespace_gets_the_default_service_account_and_the_root_ca() {
    let c = Cluster::start();
    c.k(&["create", "namespace", "dev"]);
    let ca = std::fs::read_to_string(c.data_dir().join("tls/ca.crt")).expect("cluster CA");
    let has_both = |ns: &str| {
        c.kubectl(&["get", "serviceaccount", "default", "-n", ns]).ok
            && c.kubectl(&["get", "configmap", "kube-root-ca.crt", "-n", ns, "-o", "jsonpath={.data.ca\\.crt}"]).stdout.trim() == ca.trim()
    };
    for ns in ["dev", "default", "kube-system"] {
        assert!(eventually(WAIT, || has_both(ns)), "namespace {ns} lacks the default ServiceAccount or kube-root-ca.crt");
    }
    // deleted or edited, they come back as they were
    c.k(&["delete", "serviceaccount", "default", "-n", "dev"]);
    c.k(&["patch", "configmap", "kube-root-ca.crt", "-n", "dev", "--type=merge", "-p", "{\"data\":{\"ca.crt\":\"tampered\"}}"]);
    assert!(eventually(WAIT, || has_both("dev")), "not restored");
    c.k(&["delete", "configmap", "kube-root-ca.crt", "-n", "dev"]);
    assert!(eventually(WAIT, || has_both("dev")), "not recreated");
}

/// A pod bound to a node no kubelet runs, so the test alone writes its status.
fn ghost_pod(c: &Cluster, name: &str, port: u16) {
    c.apply(&format!(
        "apiVersion: v1\nkind: Pod\nmetadata: {{name: {name}, namespace: ep, labels: {{app: api}}}}\nspec:\n  nodeName: ghost\n  containers: [{{name: c, image: rkube.local/busybox:1.35, ports: [{{name: http, containerPort: {port}}}]}}]\n"
    ));
}

fn set_status(c: &Cluster, name: &str, ip: &str, ready: bool) {
    let status = if ready { "True" } else { "False" };
    let patch = format!("{{\"status\":{{\"phase\":\"Running\",\"podIP\":\"{ip}\",\"podIPs\":[{{\"ip\":\"{ip}\"}}],\"conditions\":[{{\"type\":\"Ready\",\"status\":\"{status}\"}}]}}}}");
    c.k(&["patch", "pod", name, "-n", "ep", "--subresource=status", "--type=merge", "-p", &patch]);
}

/// (ready IPs, not-ready IPs, ports) of the Endpoints `api`.
fn endpoints(c: &Cluster) -> (Vec<String>, Vec<String>, Vec<i64>) {
    let r = c.kubectl(&["get", "endpoints", "api", "-n", "ep", "-o", "json"]);
    if !r.ok {
        return Default::default();
    }
    let v = json(&r.stdout);
    let (mut ready, mut not_ready, mut ports) = (Vec::new(), Vec::new(), Vec::new());
    for s in v["subsets"].as_array().into_iter().flatten() {
        ready.extend(s["addresses"].as_array().into_iter().flatten().map(|a| a["ip"].as_str().unwrap_or("").to_owned()));
        not_ready.extend(s["notReadyAddresses"].as_array().into_iter().flatten().map(|a| a["ip"].as_str().unwrap_or("").to_owned()));
        ports.extend(s["ports"].as_array().into_iter().flatten().filter_map(|p| p["port"].as_i64()));
    }
    ready.sort();
    not_ready.sort();
    ports.sort();
    (ready, not_ready, ports)
}

/// (ip, ready, port) of every endpoint in the service's EndpointSlices.
fn slice_endpoints(c: &Cluster) -> Vec<(String, bool, i64)> {
    let v = json(&c.k(&["get", "endpointslices", "-n", "ep", "-l", "kubernetes.io/service-name=api", "-o", "json"]));
    let mut out = Vec::new();
    for s in v["items"].as_array().into_iter().flatten() {
        assert_eq!(s["metadata"]["labels"]["endpointslice.kubernetes.io/managed-by"], "endpointslice-controller.k8s.io");
        let port = s["ports"][0]["port"].as_i64().unwrap_or(0);
        for e in s["endpoints"].as_array().into_iter().flatten() {
            out.push((e["addresses"][0].as_str().unwrap_or("").to_owned(), e["conditions"]["ready"] == true, port));
        }
    }
    out.sort();
    out
}

#[test]
fn endpoints_and_endpointslices_follow_pod_readiness() {
    // The pods are bound to a node that does not exist: the pod GC would collect them as
    // orphans after its 40 s quarantine.
    let c = Cluster::start_with(&["--controllers", "*,-pod-garbage-collector"]);
    c.k(&["create", "namespace", "ep"]);
    c.apply("apiVersion: v1\nkind: Service\nmetadata: {name: api, namespace: ep}\nspec:\n  selector: {app: api}\n  ports: [{name: web, port: 80, targetPort: http}]\n");
    ghost_pod(&c, "a", 8080);
    ghost_pod(&c, "b", 8080);
    ghost_pod(&c, "c", 9090);
    set_status(&c, "a", "10.42.9.1", true);
    set_status(&c, "b", "10.42.9.2", false);
    set_status(&c, "c", "10.42.9.3", true);
    let want = (vec!["10.42.9.1".to_string(), "10.42.9.3".to_string()], vec!["10.42.9.2".to_string()], vec![8080, 9090]);
    assert!(eventually(WAIT, || endpoints(&c) == want), "endpoints: {:?}", endpoints(&c));
    let want_slices = vec![("10.42.9.1".to_string(), true, 8080), ("10.42.9.2".to_string(), false, 8080), ("10.42.9.3".to_string(), true, 9090)];
    assert!(eventually(WAIT, || slice_endpoints(&c) == want_slices), "slices: {:?}", slice_endpoints(&c));
    let v = json(&c.k(&["get", "endpoints", "api", "-n", "ep", "-o", "json"]));
    let target = &v["subsets"][0]["addresses"][0]["targetRef"];
    assert_eq!((target["kind"].as_str(), target["name"].as_str()), (Some("Pod"), Some("a")));
    assert_eq!(v["subsets"][0]["addresses"][0]["nodeName"], "ghost");

    // readiness flips are followed
    set_status(&c, "b", "10.42.9.2", true);
    set_status(&c, "a", "10.42.9.1", false);
    let want = (vec!["10.42.9.2".to_string(), "10.42.9.3".to_string()], vec!["10.42.9.1".to_string()], vec![8080, 9090]);
    assert!(eventually(WAIT, || endpoints(&c) == want), "endpoints: {:?}", endpoints(&c));
    assert!(eventually(WAIT, || slice_endpoints(&c).iter().filter(|e| e.1).count() == 2 && !slice_endpoints(&c)[0].1), "slices: {:?}", slice_endpoints(&c));

    // publishNotReadyAddresses lists every pod as ready
    c.k(&["patch", "svc", "api", "-n", "ep", "--type=merge", "-p", "{\"spec\":{\"publishNotReadyAddresses\":true}}"]);
    assert!(eventually(WAIT, || endpoints(&c).0.len() == 3 && endpoints(&c).1.is_empty()), "endpoints: {:?}", endpoints(&c));

    // a deleted pod leaves; kubectl prints both kinds
    c.k(&["delete", "pod", "c", "-n", "ep", "--grace-period=0", "--force"]);
    assert!(eventually(WAIT, || endpoints(&c).0.len() == 2 && slice_endpoints(&c).len() == 2), "endpoints: {:?}", endpoints(&c));
    let table = c.k(&["get", "endpoints,endpointslices", "-n", "ep"]);
    assert!(table.contains("10.42.9.1:8080") || table.contains("10.42.9.2:8080"), "{table}");
    assert!(table.contains("IPv4"), "{table}");

    // the Service's deletion takes its Endpoints and EndpointSlices along
    c.k(&["delete", "svc", "api", "-n", "ep"]);
    assert!(eventually(WAIT, || !c.kubectl(&["get", "endpoints", "api", "-n", "ep"]).ok), "endpoints outlived the service");
    assert!(eventually(WAIT, || slice_endpoints(&c).is_empty() && c.k(&["get", "endpointslices", "-n", "ep", "-o", "name"]).trim().is_empty()), "slices outlived the service");
}

#[test]
fn a_service_over_a_deployment_lists_its_running_pods() {
    let c = Cluster::start();
    let _nodes = sim_nodes(&c);
    create_web(&c);
    c.k(&["expose", "deploy/web", "--port=80", "--target-port=8080"]);
    let ok = eventually(WAIT, || {
        let v = json(&c.k(&["get", "endpoints", "web", "-o", "json"]));
        v["subsets"][0]["addresses"].as_array().map(|a| a.len()) == Some(3) && v["subsets"][0]["ports"][0]["port"] == 8080
    });
    assert!(ok, "{}", c.kubectl(&["get", "endpoints,endpointslices,pods", "-o", "wide"]).stdout);
    c.k(&["scale", "deploy/web", "--replicas=1"]);
    let ok = eventually(WAIT, || json(&c.k(&["get", "endpoints", "web", "-o", "json"]))["subsets"][0]["addresses"].as_array().map(|a| a.len()) == Some(1));
    assert!(ok, "{}", c.kubectl(&["get", "endpoints", "web", "-o", "yaml"]).stdout);
}

#[test]
fn a_deployment_whose_selector_does_not_match_its_template_is_refused() {
    let c = Cluster::start();
    let r = c.kubectl_with(
        &["apply", "-f", "-"],
        Some("apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: bad}\nspec:\n  selector: {matchLabels: {app: a}}\n  template:\n    metadata: {labels: {app: b}}\n    spec:\n      containers: [{name: c, image: rkube.local/busybox:1.35}]\n"),
        &[],
    );
    assert!(!r.ok && r.stderr.contains("`selector` does not match template `labels`"), "{}{}", r.stdout, r.stderr);
    assert!(replicasets(&c, "default", "a").is_empty() && replicasets(&c, "default", "b").is_empty());
}
