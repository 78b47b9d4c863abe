use std::io::Read;
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::harness::{eventually, json, Cluster};
use crate::kubectl_write::APP;

fn setup() -> Cluster {
    // API-server semantics only: no controller manager acting on (or adding to) the objects
    let c = Cluster::start_with(&["--disable-controller-manager"]);
    c.k(&["create", "namespace", "dev"]);
    c.apply(APP);
    c
}

#[test]
fn get_prints_upstream_columns_and_formats() {
    let c = setup();
    let out = c.k(&["get", "deploy,svc,cm", "-n", "dev"]);
    assert!(out.contains("NAME                  READY   UP-TO-DATE   AVAILABLE   AGE"), "{out}");
    assert!(out.contains("deployment.apps/web   0/2"), "{out}");
    assert!(out.contains("TYPE        CLUSTER-IP") && out.contains("EXTERNAL-IP   PORT(S)"), "{out}");
    assert!(out.contains("80/TCP"), "{out}");
    assert!(out.contains("DATA") && out.contains("configmap/web-config"), "{out}");

    let wide = c.k(&["get", "deploy", "-n", "dev", "-o", "wide"]);
    assert!(wide.contains("CONTAINERS") && wide.contains("web,sidecar") && wide.contains("app=web"), "{wide}");
    let yaml = c.k(&["get", "deploy", "web", "-n", "dev", "-o", "yaml"]);
    assert!(yaml.contains("kind: Deployment") && yaml.contains("resourceVersion:"), "{yaml}");
    let v = json(&c.k(&["get", "cm", "web-config", "-n", "dev", "-o", "json"]));
    assert_eq!(v["data"]["mode"], "blue");
    assert_eq!(c.k(&["get", "svc", "web", "-n", "dev", "-o", "jsonpath={.spec.ports[0].port}"]), "80");
    let cc = c.k(&["get", "deploy", "-n", "dev", "-o", "custom-columns=NAME:.metadata.name,REPLICAS:.spec.replicas"]);
    assert!(cc.contains("NAME") && cc.contains("web    2"), "{cc}");
    let labels = c.k(&["get", "deploy", "-n", "dev", "--show-labels"]);
    assert!(labels.contains("LABELS") && labels.contains("app=web"), "{labels}");
    let all = c.k(&["get", "ns", "-A"]);
    for ns in ["default", "kube-system", "kube-public", "kube-node-lease", "dev"] {
        assert!(all.contains(ns), "{all}");
    }
    let cms = c.k(&["get", "cm", "-A"]);
    assert!(cms.contains("NAMESPACE") && cms.contains("web-config"), "{cms}");
}

#[test]
fn selectors_and_sorting() {
    let c = setup();
    for (name, tier, size) in [("a", "front", "3"), ("b", "back", "1"), ("c", "db", "2")] {
        c.k(&["create", "configmap", name, "-n", "dev", "--from-literal", &format!("size={size}")]);
        c.k(&["label", "cm", name, "-n", "dev", &format!("tier={tier}")]);
    }
    let names = |args: &[&str]| -> Vec<String> {
        let mut a = vec!["get", "cm", "-n", "dev", "-o", "name"];
        a.extend_from_slice(args);
        c.k(&a).lines().map(|l| l.trim_start_matches("configmap/").to_owned()).collect()
    };
    assert_eq!(names(&["-l", "tier=front"]), ["a"]);
    assert_eq!(names(&["-l", "tier in (front,back)"]), ["a", "b"]);
    assert_eq!(names(&["-l", "tier notin (front,back),tier"]), ["c"]);
    assert_eq!(names(&["-l", "tier!=db,tier"]), ["a", "b"]);
    assert_eq!(names(&["-l", "!tier"]), ["web-config"]);
    assert_eq!(names(&["--field-selector", "metadata.name=b"]), ["b"]);
    assert_eq!(names(&["--field-selector", "metadata.name!=b,metadata.namespace=dev", "-l", "tier"]), ["a", "c"]);
    let sorted = c.k(&["get", "cm", "-n", "dev", "-l", "tier", "--sort-by=.data.size", "-o", "name"]);
    assert_eq!(sorted.lines().collect::<Vec<_>>(), ["configmap/b", "configmap/c", "configmap/a"]);
    let bad = c.kubectl(&["get", "pods", "-n", "dev", "--field-selector", "spec.bogus=x"]);
    assert!(!bad.ok && bad.stderr.contains("spec.bogus") && bad.stderr.contains("BadRequest"), "{}", bad.stderr);
    // per-resource fields: pods by phase and node
    c.apply("apiVersion: v1\nkind: Pod\nmetadata:\n  name: p1\n  namespace: dev\nspec:\n  nodeName: n1\n  containers:\n  - name: c\n    image: busybox\n");
    assert!(c.k(&["get", "pods", "-n", "dev", "--field-selector", "spec.nodeName=n1,status.phase=Pending", "-o", "name"]).contains("pod/p1"));
    assert!(c.k(&["get", "pods", "-n", "dev", "--field-selector", "spec.nodeName=n2", "-o", "name"]).trim().is_empty());
}

#[test]
fn chunked_lists_return_everything_in_pages() {
    let c = setup();
    for i in 0..10 {
        c.k(&["create", "configmap", &format!("chunk-{i}"), "-n", "dev", "--from-literal=a=b"]);
    }
    let r = c.kubectl(&["get", "cm", "-n", "dev", "-l", "!x", "--chunk-size=2", "-o", "name", "-v=6"]);
    assert!(r.ok, "{}", r.stderr);
    let names: Vec<&str> = r.stdout.lines().filter(|l| l.contains("chunk-")).collect();
    assert_eq!(names.len(), 10, "{}", r.stdout);
    let pages = r.stderr.matches("limit=2").count();
    assert!(pages >= 5, "expected at least 5 paged requests, saw {pages}:\n{}", r.stderr);
    assert!(r.stderr.contains("continue="), "no continue token was used:\n{}", r.stderr);
}

#[test]
fn watch_prints_changes_made_by_another_client() {
    let c = setup();
    let mut child = Command::new("kubectl")
        .args(["get", "cm", "web-config", "-n", "dev", "-w", "--request-timeout=0"])
        .env("KUBECONFIG", c.kubeconfig())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("kubectl -w");
    std::thread::sleep(Duration::from_millis(800));
    c.k(&["label", "cm", "web-config", "-n", "dev", "changed=yes"]);
    c.k(&["patch", "cm", "web-config", "-n", "dev", "--type=merge", "-p", r#"{"data":{"new":"x"}}"#]);
    let mut stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        let mut all = String::new();
        while let Ok(n) = stdout.read(&mut buf) {
            if n == 0 {
                break;
            }
            all.push_str(&String::from_utf8_lossy(&buf[..n]));
            let _ = tx.send(all.clone());
        }
    });
    let mut seen = String::new();
    let ok = eventually(Duration::from_secs(10), || {
        while let Ok(s) = rx.try_recv() {
            seen = s;
        }
        seen.lines().filter(|l| l.starts_with("web-config")).count() >= 3
    });
    let _ = child.kill();
    let _ = child.wait();
    assert!(ok, "kubectl -w did not print the initial row and two changes:\n{seen}");
    let rows: Vec<&str> = seen.lines().filter(|l| l.starts_with("web-config")).collect();
    assert!(rows[2].contains("web-config   2"), "the last change (2 data keys) was not shown: {rows:?}");
}

#[test]
fn the_kubernetes_service_points_at_the_api_server() {
    let c = Cluster::start();
    let svc = c.k(&["get", "svc", "kubernetes", "-n", "default"]);
    assert!(svc.contains("10.43.0.1") && svc.contains("443/TCP"), "{svc}");
    let ep = c.k(&["get", "endpoints", "kubernetes", "-n", "default"]);
    assert!(ep.contains(&format!("127.0.0.1:{}", c.port)), "{ep}");
    // a Service created later never gets the reserved first address
    c.apply("apiVersion: v1\nkind: Service\nmetadata:\n  name: other\n  namespace: default\nspec:\n  ports: [{port: 80}]\n");
    let ip = c.k(&["get", "svc", "other", "-o", "jsonpath={.spec.clusterIP}"]);
    assert!(ip.starts_with("10.43.") && ip != "10.43.0.1", "{ip}");
}

#[test]
fn events_written_through_either_api_show_in_describe() {
    let c = Cluster::start();
    c.apply("apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\n  namespace: default\nspec:\n  containers:\n  - name: c\n    image: busybox\n");
    let uid = c.k(&["get", "pod", "p", "-o", "jsonpath={.metadata.uid}"]);
    let now = "2026-11-25T08:00:00.000000Z";
    c.apply(&format!("apiVersion: events.k8s.io/v1\nkind: Event\nmetadata:\n  name: p.1\n  namespace: default\neventTime: \"{now}\"\nregarding: {{kind: Pod, name: p, namespace: default, uid: {uid}, apiVersion: v1}}\nreason: Scheduled\nnote: Successfully assigned default/p to n1\ntype: Normal\naction: Binding\nreportingController: default-scheduler\nreportingInstance: default-scheduler-x\n"));
    c.apply(&format!("apiVersion: v1\nkind: Event\nmetadata:\n  name: p.2\n  namespace: default\ninvolvedObject: {{kind: Pod, name: p, namespace: default, uid: {uid}, apiVersion: v1}}\nreason: Pulled\nmessage: Container image pulled\ntype: Normal\nfirstTimestamp: \"2026-11-25T08:00:01Z\"\nlastTimestamp: \"2026-11-25T08:00:01Z\"\ncount: 1\nsource: {{component: kubelet}}\n"));
    let out = c.k(&["describe", "pod", "p"]);
    assert!(out.contains("Successfully assigned default/p to n1"), "{out}");
    assert!(out.contains("Container image pulled"), "{out}");
    // the core event is visible through events.k8s.io with the new field names
    let ev = json(&c.k(&["get", "--raw", "/apis/events.k8s.io/v1/namespaces/default/events/p.2"]));
    assert_eq!(ev["note"], "Container image pulled");
    assert_eq!(ev["regarding"]["name"], "p");
    assert_eq!(ev["deprecatedCount"], 1);
}
