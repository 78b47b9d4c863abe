//! Restarts and crashes lose nothing that was acknowledged.

use std::time::Duration;

use crate::harness::{eventually, json, Cluster};

#[test]
fn restart_keeps_every_object_at_the_same_resource_version() {
    let mut c = Cluster::start();
    c.k(&["create", "namespace", "dev"]);
    c.apply(crate::kubectl_write::APP);
    let before = json(&c.k(&["get", "deploy,svc,cm,ns", "-A", "-o", "json"]));
    c.stop(false);
    c.spawn();
    let after = json(&c.k(&["get", "deploy,svc,cm,ns", "-A", "-o", "json"]));
    let key = |v: &serde_json::Value| -> Vec<(String, String, String)> {
        v["items"].as_array().unwrap().iter().map(|i| (
            i["kind"].as_str().unwrap_or_default().to_owned(),
            i["metadata"]["name"].as_str().unwrap_or_default().to_owned(),
            i["metadata"]["resourceVersion"].as_str().unwrap_or_default().to_owned(),
        )).collect()
    };
    assert_eq!(key(&before), key(&after));
    assert_eq!(before["items"], after["items"]);
}

#[test]
fn kill_9_during_creates_loses_no_acknowledged_write() {
    let mut c = Cluster::start();
    c.k(&["create", "namespace", "load"]);
    let port = c.port;
    let pid = c.pid();
    let tls = c.data_dir().join("tls");
    // a client creating configmaps as fast as it can, printing each acknowledged name
    let script = format!(
        "i=0; while true; do i=$((i+1)); code=$(curl -s -o /dev/null -w '%{{http_code}}' --cacert {ca} --cert {crt} --key {key} -H 'Content-Type: application/json' -X POST --data '{{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\",\"metadata\":{{\"name\":\"c'$i'\"}}}}' https://127.0.0.1:{port}/api/v1/namespaces/load/configmaps); [ \"$code\" = 201 ] && echo c$i; [ \"$code\" = 000 ] && exit 0; done",
        ca = tls.join("ca.crt").display(), crt = tls.join("admin.crt").display(), key = tls.join("admin.key").display(),
    );
    let mut child = std::process::Command::new("sh").arg("-c").arg(script).stdout(std::process::Stdio::piped()).spawn().expect("loop");
    // kill the server once the client has seen enough acknowledgements (or after 30 s)
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    let reader = std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let mut lines = Vec::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while lines.len() < 50 && std::time::Instant::now() < deadline {
        if let Ok(l) = rx.recv_timeout(Duration::from_millis(100)) {
            lines.push(l);
        }
    }
    let _ = std::process::Command::new("kill").args(["-KILL", &pid.to_string()]).status();
    let _ = child.wait();
    let _ = reader.join();
    lines.extend(rx.try_iter());
    c.stop(true);
    let acked = lines;
    assert!(acked.len() > 5, "the loop acknowledged too few creates to mean anything: {}", acked.len());
    c.spawn();
    let stored = c.k(&["get", "cm", "-n", "load", "-o", "name"]);
    for name in &acked {
        assert!(stored.lines().any(|l| l == format!("configmap/{name}")), "acknowledged {name} was lost after kill -9");
    }
}

#[test]
fn startup_on_existing_data_is_quick_enough_to_poll() {
    // not a timing assertion: the server must come back and answer after a restart
    let mut c = Cluster::start();
    c.stop(false);
    c.spawn();
    assert!(eventually(Duration::from_secs(5), || c.kubectl(&["get", "ns", "default"]).ok));
}

/// A tmpfs mounted on a path for one test; lazily unmounted on drop (the server may still
/// hold files there while a failing test unwinds).
struct Tmpfs(std::path::PathBuf);

impl Tmpfs {
    fn mount(path: &std::path::Path, size: &str) -> Tmpfs {
        std::fs::create_dir_all(path).expect("mount point");
        let status = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(path)
            .status()
            .expect("mount on the PATH");
        assert!(status.success(), "mounting a tmpfs needs root");
        Tmpfs(path.to_owned())
    }

    fn resize(&self, size: &str) {
        let status = std::process::Command::new("mount")
            .args(["-o", &format!("remount,size={size}")])
            .arg(&self.0)
            .status()
            .expect("mount on the PATH");
        assert!(status.success(), "remount {size}");
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

#[test]
fn a_full_disk_fails_writes_with_a_500_and_writes_resume_once_space_returns() {
    // The data dir on a 40 MiB file system: the store preallocates its log in 16 MiB steps,
    // so a few dozen 300 KB ConfigMaps fill it.
    let dir = tempfile::tempdir().expect("temp dir");
    let disk = Tmpfs::mount(&dir.path().join("data"), "40m");
    // Compaction every second: on the full disk it fails (no room for a new log), is
    // retried, and is raised as an Event once the Event can be written.
    let mut c = Cluster::start_on(dir, &["--disable-controller-manager", "--etcd-compaction-interval", "1s"]);
    let body = |name: &str| {
        serde_json::json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": {"k": "x".repeat(300_000)}})
            .to_string()
    };
    let path = "/api/v1/namespaces/default/configmaps";
    let mut acknowledged = Vec::new();
    let mut refusal = None;
    for i in 0..200 {
        let name = format!("c{i}");
        let (code, answer) = c.curl("POST", path, Some(&body(&name)), "application/json", true);
        match code {
            201 => acknowledged.push(name),
            _ => {
                refusal = Some((code, answer));
                break;
            }
        }
    }
    let (code, answer) = refusal.expect("the disk never filled up");
    assert_eq!(code, 500, "{answer}");
    let status = json(&answer);
    assert_eq!(status["kind"], "Status");
    assert_eq!(status["reason"], "InternalError");
    assert!(status["message"].as_str().unwrap_or_default().contains("no space left"), "{answer}");
    assert!(!acknowledged.is_empty());
    // Reads keep working on the full disk.
    let names = |c: &Cluster| -> Vec<String> {
        let list = json(&c.k(&["get", "configmaps", "-o", "json"]));
        let mut names: Vec<String> = list["items"]
            .as_array()
            .expect("items")
            .iter()
            .filter_map(|i| i["metadata"]["name"].as_str().map(str::to_owned))
            .filter(|n| n.starts_with('c') && n[1..].parse::<u32>().is_ok())
            .collect();
        names.sort();
        names
    };
    let mut expected = acknowledged.clone();
    expected.sort();
    assert_eq!(names(&c), expected);

    // Space returns: writes work again without a restart, and nothing was lost.
    disk.resize("512m");
    assert!(
        eventually(Duration::from_secs(20), || c.curl("POST", path, Some(&body("after")), "application/json", true).0 == 201),
        "writes did not resume once space returned"
    );
    assert_eq!(names(&c), expected);
    let (_, metrics) = c.curl("GET", "/metrics", None, "application/json", true);
    let failures: f64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("rkube_store_compaction_failures_total "))
        .and_then(|v| v.trim().parse().ok())
        .expect("compaction failure metric");
    assert!(failures >= 1.0, "no failed compaction counted while the disk was full");
    assert!(
        eventually(Duration::from_secs(30), || {
            let events = c.k(&["get", "events", "-n", "kube-system", "--field-selector", "reason=CompactionFailed", "-o", "json"]);
            json(&events)["items"].as_array().is_some_and(|items| {
                items.iter().any(|e| e["type"] == "Warning" && e["message"].as_str().unwrap_or_default().contains("no space left"))
            })
        }),
        "no CompactionFailed event"
    );
    c.stop(false);
    c.spawn();
    assert_eq!(names(&c), expected, "after a restart");
    c.k(&["get", "configmap", "after"]);
    c.stop(false);
    drop(disk); // before the cluster's temp dir goes
}
