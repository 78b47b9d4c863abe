//! `rkube snapshot save|restore|ls` against a running server.

use std::collections::BTreeSet;
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::harness::{eventually, json, rkube_bin, Cluster, Run};

fn rkube(args: &[&str]) -> Run {
    let out = Command::new(rkube_bin()).args(args).stdin(Stdio::null()).output().expect("rkube");
    Run {
        ok: out.status.success(),
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// (name, resourceVersion) of every ConfigMap in `ns`.
fn configmaps(c: &Cluster, ns: &str) -> BTreeSet<(String, i64)> {
    let list = json(&c.k(&["get", "cm", "-n", ns, "-o", "json"]));
    list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            let name = i["metadata"]["name"].as_str().unwrap().to_owned();
            let rv = i["metadata"]["resourceVersion"].as_str().unwrap().parse().unwrap();
            (name, rv)
        })
        .collect()
}

#[test]
fn snapshot_during_writes_restores_exactly_the_objects_of_its_revision() {
    let c = Cluster::start();
    c.k(&["create", "namespace", "load"]);
    let tls = c.data_dir().join("tls");
    // A bounded loop of creates (no updates: an object's resourceVersion is its creation).
    let script = format!(
        "for i in $(seq 1 1500); do curl -s -o /dev/null --cacert {ca} --cert {crt} --key {key} -H 'Content-Type: application/json' -X POST --data '{{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\",\"metadata\":{{\"name\":\"c'$i'\"}}}}' https://127.0.0.1:{port}/api/v1/namespaces/load/configmaps || exit 0; done",
        ca = tls.join("ca.crt").display(),
        crt = tls.join("admin.crt").display(),
        key = tls.join("admin.key").display(),
        port = c.port,
    );
    let mut writer = Command::new("sh").arg("-c").arg(script).stdout(Stdio::null()).spawn().expect("loop");
    assert!(eventually(Duration::from_secs(30), || configmaps(&c, "load").len() >= 20));

    let file = c.dir.path().join("snap").join("first");
    let kubeconfig = c.kubeconfig();
    let saved = rkube(&["snapshot", "save", file.to_str().unwrap(), "--kubeconfig", kubeconfig.to_str().unwrap()]);
    assert!(saved.ok, "save failed: {}{}", saved.stdout, saved.stderr);
    let revision: i64 = saved
        .stdout
        .split("revision ")
        .nth(1)
        .and_then(|r| r.split(|ch: char| !ch.is_ascii_digit()).next())
        .and_then(|r| r.parse().ok())
        .unwrap_or_else(|| panic!("no revision in {:?}", saved.stdout));
    let _ = writer.kill();
    let _ = writer.wait();
    let all = configmaps(&c, "load");
    let expected: BTreeSet<_> = all.iter().filter(|(_, rv)| *rv <= revision).cloned().collect();
    assert!(expected.len() >= 20, "{} of {}", expected.len(), all.len());

    // ls shows it with a good checksum.
    let snap_dir = file.parent().unwrap().to_str().unwrap();
    let ls = rkube(&["snapshot", "ls", "--etcd-snapshot-dir", snap_dir]);
    assert!(ls.ok && ls.stdout.lines().any(|l| l.starts_with("first ") && l.ends_with(" ok")), "{}", ls.stdout);

    // A live data dir is refused and left alone.
    let data = c.data_dir();
    let live = rkube(&["snapshot", "restore", file.to_str().unwrap(), "--data-dir", data.to_str().unwrap()]);
    assert!(!live.ok, "restored over a running server");
    assert!(live.stderr.contains("in use"), "{}", live.stderr);
    assert!(!data.join("db.old").exists());
    assert!(c.kubectl(&["get", "ns", "load"]).ok);

    // A truncated copy is refused before anything is touched.
    let bytes = std::fs::read(&file).unwrap();
    let truncated = c.dir.path().join("truncated");
    std::fs::write(&truncated, &bytes[..bytes.len() - 100]).unwrap();
    let fresh = tempfile::tempdir().unwrap();
    let target = fresh.path().join("data");
    let bad = rkube(&["snapshot", "restore", truncated.to_str().unwrap(), "--data-dir", target.to_str().unwrap()]);
    assert!(!bad.ok && bad.stderr.contains("checksum"), "{}", bad.stderr);
    assert!(!target.exists(), "a refused restore created the data dir");

    // Restore into a fresh data dir and start a server from it.
    let good = rkube(&["snapshot", "restore", file.to_str().unwrap(), "--data-dir", target.to_str().unwrap()]);
    assert!(good.ok, "{}{}", good.stdout, good.stderr);
    let restored = Cluster::start_on(fresh, &[]);
    assert_eq!(configmaps(&restored, "load"), expected, "the restored cluster differs from the snapshot");
    // The cluster identity and CA came along: the original's admin kubeconfig works.
    let server = format!("https://127.0.0.1:{}", restored.port);
    let original = c.kubeconfig();
    let r = restored.kubectl_with(
        &["--kubeconfig", original.to_str().unwrap(), "--server", &server, "get", "ns", "kube-system"],
        None,
        &[],
    );
    assert!(r.ok, "the original kubeconfig does not work on the restored cluster: {}", r.stderr);
    let uid = |c: &Cluster| json(&c.k(&["get", "ns", "kube-system", "-o", "json"]))["metadata"]["uid"].clone();
    assert_eq!(uid(&restored), uid(&c));
    assert_eq!(
        std::fs::read(restored.data_dir().join("tls/ca.crt")).unwrap(),
        std::fs::read(c.data_dir().join("tls/ca.crt")).unwrap()
    );
}

#[test]
fn snapshot_endpoint_needs_credentials() {
    let c = Cluster::start();
    let (code, _) = c.curl("GET", "/rkube/v1/snapshot", None, "application/json", false);
    assert_eq!(code, 401);
    let (code, body) = c.curl("POST", "/rkube/v1/snapshot", None, "application/json", true);
    assert_eq!(code, 405, "{body}");
}

#[test]
fn a_snapshot_restored_on_another_machine_serves_its_new_names_and_the_old_node_goes_unknown() {
    // The old machine: one node (simulated; its heartbeats stop with it) and some state.
    let c = Cluster::start_with(&["--node-monitor-grace-period", "5s"]);
    let old_node = crate::namespaces::sim_nodes(&c, "old-host-", 1);
    c.k(&["create", "configmap", "settings", "--from-literal=mode=prod"]);
    let file = c.dir.path().join("snap").join("move");
    let kubeconfig = c.kubeconfig();
    let saved = rkube(&["snapshot", "save", file.to_str().unwrap(), "--kubeconfig", kubeconfig.to_str().unwrap()]);
    assert!(saved.ok, "save failed: {}{}", saved.stdout, saved.stderr);
    drop(old_node);

    // The new machine: a fresh data dir restored from the file; it answers to other names.
    let fresh = tempfile::tempdir().unwrap();
    let target = fresh.path().join("data");
    let restored = rkube(&["snapshot", "restore", file.to_str().unwrap(), "--data-dir", target.to_str().unwrap()]);
    assert!(restored.ok, "{}{}", restored.stdout, restored.stderr);
    assert!(target.join("tls/ca.crt").exists(), "the CA came along");
    assert!(!target.join("tls/serving.crt").exists(), "the old machine's serving certificate came along");
    let new = Cluster::start_on(fresh, &["--tls-san", "new-host.rkube.test", "--tls-san", "127.0.0.2", "--node-monitor-grace-period", "5s"]);
    // Its serving certificate is issued for the new names by the restored CA: curl verifies it
    // under the new host name and the new address (both connected to this loopback server).
    let tls = new.data_dir().join("tls");
    for url_host in ["new-host.rkube.test", "127.0.0.2"] {
        let out = Command::new("curl")
            .args(["-sS", "--connect-to", &format!("{url_host}:{port}:127.0.0.1:{port}", port = new.port)])
            .arg("--cacert")
            .arg(c.data_dir().join("tls/ca.crt"))
            .arg("--cert")
            .arg(tls.join("admin.crt"))
            .arg("--key")
            .arg(tls.join("admin.key"))
            .arg(format!("https://{url_host}:{}/readyz", new.port))
            .output()
            .expect("curl");
        assert_eq!(String::from_utf8_lossy(&out.stdout), "ok", "{url_host}: {}", String::from_utf8_lossy(&out.stderr));
    }
    assert_eq!(new.k(&["get", "configmap", "settings", "-o", "jsonpath={.data.mode}"]), "prod");
    // The old machine's Node came along in the snapshot; nothing renews it any more, so the
    // node lifecycle controller marks it Unknown (NotReady) and taints it unreachable, as
    // upstream does with a node that stopped reporting. It is not deleted.
    let unknown = eventually(Duration::from_secs(60), || {
        crate::namespaces::node_ready(&new).iter().any(|(n, s)| n == "old-host-0" && s == "Unknown")
    });
    assert!(unknown, "the stale node never went Unknown: {:?}", crate::namespaces::node_ready(&new));
    let taints = eventually(Duration::from_secs(30), || {
        new.k(&["get", "node", "old-host-0", "-o", "jsonpath={.spec.taints[*].key}"]).contains("node.kubernetes.io/unreachable")
    });
    assert!(taints, "the stale node has no unreachable taint");
}
