//! `rkube server --datastore-endpoint`: the API server over a real etcd (Debian's
//! `etcd-server`, started by the test on loopback).

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use rkube_store::etcd::process::{LocalEtcd, LocalEtcdConfig};

use crate::harness::{eventually, json, write_file, Cluster};

/// A real etcd with its data directory; killed and removed on drop.
pub struct Etcd {
    pub etcd: LocalEtcd,
    _dir: tempfile::TempDir,
}

pub fn start_etcd(members: usize) -> Etcd {
    let dir = tempfile::tempdir().expect("temp dir");
    let config = LocalEtcdConfig { members, ..Default::default() };
    let etcd = LocalEtcd::start(dir.path(), config).expect("start etcd");
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    rt.block_on(etcd.wait_ready(Duration::from_secs(60))).expect("etcd ready");
    Etcd { etcd, _dir: dir }
}

fn on_etcd(etcd: &Etcd) -> Cluster {
    Cluster::start_with(&["--datastore-endpoint", &etcd.etcd.endpoints()])
}

#[test]
fn kubectl_apply_get_watch_on_etcd_and_restart_keeps_the_cluster() {
    let etcd = start_etcd(1);
    let mut c = on_etcd(&etcd);
    c.k(&["create", "namespace", "dev"]);
    c.apply(crate::kubectl_write::APP);

    // A watch through kubectl sees a ConfigMap created after it started.
    let mut watch = Command::new("kubectl")
        .args(["get", "cm", "-n", "dev", "-w", "-o", "name"])
        .env("KUBECONFIG", c.kubeconfig())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("kubectl watch");
    let stdout = watch.stdout.take().expect("stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    // `first` shows up in the initial list or as an event; once seen, the watch is live.
    c.k(&["create", "configmap", "first", "-n", "dev"]);
    let mut seen = Vec::new();
    let mut wait_for = |name: &str| {
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        while !seen.iter().any(|l: &String| l == name) {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match rx.recv_timeout(left) {
                Ok(line) => seen.push(line),
                Err(_) => panic!("watch never showed {name}; saw {seen:?}"),
            }
        }
    };
    wait_for("configmap/first");
    c.k(&["create", "configmap", "second", "-n", "dev", "--from-literal=k=v"]);
    wait_for("configmap/second");
    let _ = watch.kill();
    let _ = watch.wait();

    let before = json(&c.k(&["get", "deploy,svc,cm,ns", "-A", "-o", "json"]));
    c.stop(false);
    c.spawn();
    let after = json(&c.k(&["get", "deploy,svc,cm,ns", "-A", "-o", "json"]));
    assert_eq!(before["items"], after["items"], "the cluster changed across a restart");
    let cm = json(&c.k(&["get", "cm", "second", "-n", "dev", "-o", "json"]));
    assert_eq!(cm["data"]["k"], "v");
}

#[test]
fn two_servers_over_one_etcd_see_each_others_writes() {
    let etcd = start_etcd(1);
    let a = on_etcd(&etcd);
    let b = on_etcd(&etcd);
    a.k(&["create", "configmap", "shared", "-n", "default", "--from-literal=v=1"]);

    // Read, listed and watched through the other server.
    let got = json(&b.k(&["get", "cm", "shared", "-n", "default", "-o", "json"]));
    assert_eq!(got["data"]["v"], "1");
    assert!(
        eventually(Duration::from_secs(5), || {
            b.k(&["get", "cm", "-n", "default", "-o", "name"]).lines().any(|l| l == "configmap/shared")
        }),
        "the list through the second server never showed the object"
    );
    let stale = b.k(&["get", "cm", "shared", "-n", "default", "-o", "json"]);
    let (code, _) = a.curl(
        "PATCH",
        "/api/v1/namespaces/default/configmaps/shared",
        Some(r#"{"data":{"v":"2"}}"#),
        "application/merge-patch+json",
        true,
    );
    assert_eq!(code, 200);
    assert!(eventually(Duration::from_secs(5), || {
        json(&b.k(&["get", "cm", "shared", "-n", "default", "-o", "json"]))["data"]["v"] == "2"
    }));

    // An update through B with the resourceVersion read before A's write: 409 Conflict.
    let mut stale = json(&stale);
    stale["data"]["v"] = "stale".into();
    let file = write_file(b.dir.path(), "stale.json", &stale.to_string());
    let r = b.kubectl(&["replace", "-f", file.to_str().unwrap()]);
    assert!(!r.ok, "a stale update succeeded: {}", r.stdout);
    assert!(r.stderr.contains("the object has been modified"), "{}", r.stderr);
    let now = json(&a.k(&["get", "cm", "shared", "-n", "default", "-o", "json"]));
    assert_eq!(now["data"]["v"], "2");

    // A watch through B from the current resourceVersion sees an update made through A.
    let rv = now["metadata"]["resourceVersion"].as_str().unwrap().to_owned();
    let path = format!(
        "/api/v1/namespaces/default/configmaps?watch=1&resourceVersion={rv}&timeoutSeconds=5"
    );
    let watcher = std::thread::spawn({
        let port = b.port;
        let tls = b.data_dir().join("tls");
        move || {
            let out = Command::new("curl")
                .args(["-sS", "-N", "--max-time", "10", "--cacert"])
                .arg(tls.join("ca.crt"))
                .arg("--cert")
                .arg(tls.join("admin.crt"))
                .arg("--key")
                .arg(tls.join("admin.key"))
                .arg(format!("https://127.0.0.1:{port}{path}"))
                .output()
                .expect("curl");
            String::from_utf8_lossy(&out.stdout).into_owned()
        }
    });
    // No need to wait for the watch to start: from `rv` it replays what it missed.
    a.k(&["label", "cm", "shared", "-n", "default", "seen=yes"]);
    let events = watcher.join().expect("watcher");
    assert!(events.contains("\"seen\":\"yes\""), "watch through B missed A's update: {events}");
}

#[test]
fn unreachable_etcd_at_start_is_named_and_retried() {
    let port = rkube_store::etcd::process::free_port().expect("port");
    let endpoint = format!("http://127.0.0.1:{port}");
    let dir = tempfile::tempdir().expect("temp dir");
    let mut child = Command::new(crate::harness::rkube_bin())
        .args(["server", "--disable-agent", "--bind-address", "127.0.0.1", "--https-port", "0"])
        .arg("--data-dir")
        .arg(dir.path())
        .args(["--datastore-endpoint", &endpoint])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("rkube");
    let stderr = child.stderr.take().expect("stderr");
    let mut warnings = 0;
    for line in BufReader::new(stderr).lines().map_while(Result::ok) {
        if line.contains("etcd is unreachable; retrying") {
            assert!(line.contains(&endpoint), "the warning does not name the endpoint: {line}");
            warnings += 1;
            if warnings == 2 {
                break;
            }
        }
    }
    assert_eq!(warnings, 2, "no retry warnings");
    assert!(child.try_wait().expect("status").is_none(), "the server exited instead of retrying");
    let _ = child.kill();
    let _ = child.wait();
}

/// Three etcd members; `rkube server` points at all three; the etcd leader is SIGKILLed
/// during a write loop: writes pause briefly and go on, and no acknowledged write is lost.
#[test]
fn etcd_leader_loss_during_writes_loses_no_acknowledged_write() {
    let mut etcd = start_etcd(3);
    let c = on_etcd(&etcd);
    c.k(&["create", "namespace", "ha"]);
    let tls = c.data_dir().join("tls");
    let script = format!(
        "for i in $(seq 1 400); do code=$(curl -s -o /dev/null -w '%{{http_code}}' --cacert {ca} --cert {crt} --key {key} -H 'Content-Type: application/json' -X POST --data '{{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\",\"metadata\":{{\"name\":\"c'$i'\"}}}}' https://127.0.0.1:{port}/api/v1/namespaces/ha/configmaps); echo \"$code c$i\"; done",
        ca = tls.join("ca.crt").display(),
        crt = tls.join("admin.crt").display(),
        key = tls.join("admin.key").display(),
        port = c.port,
    );
    let mut writer = Command::new("sh").arg("-c").arg(script).stdout(Stdio::piped()).spawn().expect("loop");
    let mut lines = BufReader::new(writer.stdout.take().expect("stdout")).lines();
    let mut results = Vec::new();
    // Kill the leader once the loop is well under way.
    while results.len() < 100 {
        results.push(lines.next().expect("loop output").expect("line"));
    }
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    let leader = rt.block_on(etcd.etcd.leader()).expect("an etcd leader");
    etcd.etcd.kill(leader);
    results.extend(lines.map_while(Result::ok));
    writer.wait().expect("loop");

    let acked: Vec<&str> = results.iter().filter_map(|l| l.strip_prefix("201 ")).collect();
    let after_kill = results[100..].iter().filter(|l| l.starts_with("201 ")).count();
    assert!(after_kill >= 250, "writes did not go on after the leader died: {after_kill} of 300 acknowledged");
    let stored = c.k(&["get", "cm", "-n", "ha", "-o", "name"]);
    for name in acked {
        assert!(stored.lines().any(|l| l == format!("configmap/{name}")), "acknowledged {name} was lost");
    }
}

/// `kill -9` of the server during a create loop on etcd: after a restart every create the
/// client saw acknowledged is there.
#[test]
fn kill_9_during_creates_on_etcd_loses_no_acknowledged_write() {
    let etcd = start_etcd(1);
    let mut c = on_etcd(&etcd);
    c.k(&["create", "namespace", "load"]);
    let tls = c.data_dir().join("tls");
    let script = format!(
        "for i in $(seq 1 10000); do code=$(curl -s -o /dev/null -w '%{{http_code}}' --cacert {ca} --cert {crt} --key {key} -H 'Content-Type: application/json' -X POST --data '{{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\",\"metadata\":{{\"name\":\"c'$i'\"}}}}' https://127.0.0.1:{port}/api/v1/namespaces/load/configmaps); [ \"$code\" = 201 ] && echo c$i; [ \"$code\" = 000 ] && exit 0; done",
        ca = tls.join("ca.crt").display(),
        crt = tls.join("admin.crt").display(),
        key = tls.join("admin.key").display(),
        port = c.port,
    );
    let mut writer = Command::new("sh").arg("-c").arg(script).stdout(Stdio::piped()).spawn().expect("loop");
    let mut lines = BufReader::new(writer.stdout.take().expect("stdout")).lines();
    let mut acked = Vec::new();
    // Kill at a point that depends on the run (how many acknowledgements arrived first).
    let kill_after = 50 + (std::process::id() as usize % 100);
    while acked.len() < kill_after {
        acked.push(lines.next().expect("loop output").expect("line"));
    }
    c.stop(true);
    acked.extend(lines.map_while(Result::ok));
    writer.wait().expect("loop");
    c.spawn();
    let stored = c.k(&["get", "cm", "-n", "load", "-o", "name"]);
    for name in &acked {
        assert!(stored.lines().any(|l| l == format!("configmap/{name}")), "acknowledged {name} was lost");
    }
}
