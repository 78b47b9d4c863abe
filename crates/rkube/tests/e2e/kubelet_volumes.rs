//! Volumes on a real kubelet: configMap, secret, downwardAPI, emptyDir (disk and Memory),
//! hostPath and a PVC bound to a hostPath PV, seen from inside a real container.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::harness::{eventually, Cluster};
use crate::kubelet_probes::{cluster, columns, field};

fn log_text(c: &Cluster, pod: &str, container: &str) -> String {
    let uid = field(c, pod, "{.metadata.uid}");
    let path = c.data_dir().join("agent/pods").join(format!("default_{pod}_{uid}")).join(container).join("0.log");
    std::fs::read_to_string(path).unwrap_or_default()
}

#[track_caller]
fn wait_log(c: &Cluster, pod: &str, want: &str) {
    let ok = eventually(Duration::from_secs(60), || log_text(c, pod, "c").contains(want));
    assert!(ok, "{pod} never printed {want:?}; log:\n{}\n{}", log_text(c, pod, "c"), c.kubectl(&["get", "pod", pod, "-o", "yaml"]).stdout);
}

fn volumes_pod(host_dir: &Path) -> String {
    format!(
        r#"
apiVersion: v1
kind: ConfigMap
metadata: {{name: cfg}}
data: {{greeting: hello-from-cm}}
---
apiVersion: v1
kind: Secret
metadata: {{name: sec}}
stringData: {{password: s3cret, other: x}}
---
apiVersion: v1
kind: PersistentVolume
metadata: {{name: pv-e2e}}
spec:
  capacity: {{storage: 1Gi}}
  accessModes: [ReadWriteOnce]
  hostPath: {{path: {pv}, type: DirectoryOrCreate}}
---
apiVersion: v1
kind: PersistentVolumeClaim
metadata: {{name: claim}}
spec:
  accessModes: [ReadWriteOnce]
  resources: {{requests: {{storage: 1Gi}}}}
  volumeName: pv-e2e
---
apiVersion: v1
kind: Pod
metadata: {{name: vols, labels: {{app: vols}}}}
spec:
  containers:
  - name: c
    image: rkube.local/busybox:1.35
    env:
    - name: PASSWORD
      valueFrom: {{secretKeyRef: {{name: sec, key: password}}}}
    command:
    - sh
    - -c
    - |
      echo "secret-env=$PASSWORD"
      echo "podname=$(cat /etc/pod/name)"
      echo "labels=$(cat /etc/pod/labels)"
      echo "secret-file=$(cat /etc/sec/pw) mode=$(stat -L -c %a /etc/sec/pw)"
      grep -q ' /cache tmpfs ' /proc/mounts && echo cache-is-tmpfs
      touch /etc/cfg/x 2>/dev/null || echo cfg-read-only
      echo from-pod > /host/written
      echo from-pod > /pvc/written
      echo scratch > /scratch/f && echo scratch-ok
      while true; do echo "cm=$(cat /etc/cfg/greeting)"; sleep 1; done
    volumeMounts:
    - {{name: cfg, mountPath: /etc/cfg}}
    - {{name: sec, mountPath: /etc/sec}}
    - {{name: pod, mountPath: /etc/pod}}
    - {{name: cache, mountPath: /cache}}
    - {{name: scratch, mountPath: /scratch}}
    - {{name: host, mountPath: /host}}
    - {{name: data, mountPath: /pvc}}
  volumes:
  - name: cfg
    configMap: {{name: cfg}}
  - name: sec
    secret: {{secretName: sec, items: [{{key: password, path: pw, mode: 0400}}]}}
  - name: pod
    downwardAPI:
      items:
      - {{path: name, fieldRef: {{fieldPath: metadata.name}}}}
      - {{path: labels, fieldRef: {{fieldPath: metadata.labels}}}}
  - name: cache
    emptyDir: {{medium: Memory, sizeLimit: 4Mi}}
  - name: scratch
    emptyDir: {{}}
  - name: host
    hostPath: {{path: {host}, type: DirectoryOrCreate}}
  - name: data
    persistentVolumeClaim: {{claimName: claim}}
"#,
        pv = host_dir.join("pv").display(),
        host = host_dir.join("host").display(),
    )
}

/// Mount points under `dir` on the host.
fn mounts_under(dir: &Path) -> Vec<String> {
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    info.lines().filter_map(|l| l.split(' ').nth(4)).filter(|p| Path::new(p).starts_with(dir)).map(str::to_owned).collect()
}

#[test]
fn a_pod_sees_its_configmap_secret_downward_api_and_local_volumes_and_configmap_updates() {
    let c = cluster();
    let host_dir = tempfile::tempdir().expect("temp dir");
    c.apply(&volumes_pod(host_dir.path()));
    wait_log(&c, "vols", "cm=hello-from-cm");
    let log = log_text(&c, "vols", "c");
    for want in [
        "secret-env=s3cret",
        "podname=vols",
        "labels=app=\"vols\"",
        "secret-file=s3cret mode=400",
        "cache-is-tmpfs",
        "cfg-read-only",
        "scratch-ok",
    ] {
        assert!(log.contains(want), "no {want:?} in the log:\n{log}");
    }
    assert_eq!(std::fs::read_to_string(host_dir.path().join("host/written")).unwrap_or_default(), "from-pod\n");
    assert_eq!(std::fs::read_to_string(host_dir.path().join("pv/written")).unwrap_or_default(), "from-pod\n");

    // The upstream layout on the host, with the tmpfs mounted there.
    let uid = field(&c, "vols", "{.metadata.uid}");
    let pod_dir: PathBuf = c.data_dir().join("agent/pods").join(&uid);
    let cfg = pod_dir.join("volumes/kubernetes.io~configmap/cfg");
    assert_eq!(std::fs::read_link(cfg.join("greeting")).expect("user-visible symlink"), Path::new("..data/greeting"));
    assert!(pod_dir.join("volumes/kubernetes.io~empty-dir/scratch/f").is_file());
    // Three tmpfs: the Memory emptyDir, the secret volume and the projected service-account
    // volume that admission adds (secrets and tokens never touch the disk).
    let mounts = mounts_under(&pod_dir);
    assert_eq!(mounts.len(), 3, "{mounts:?}");
    assert!(mounts.iter().any(|m| m.contains("kubernetes.io~projected/kube-api-access-")), "{mounts:?}");
    assert!(mounts.iter().any(|m| m.ends_with("kubernetes.io~secret/sec")), "{mounts:?}");

    // An update reaches the running container's file.
    c.k(&["patch", "configmap", "cfg", "-p", r#"{"data":{"greeting":"updated"}}"#]);
    wait_log(&c, "vols", "cm=updated");
    assert_eq!(columns(&c, "vols").2, "0", "an update must not restart the container");

    // Deleting the pod removes its volumes and unmounts the tmpfs; hostPath data stays.
    c.k(&["delete", "pod", "vols", "--grace-period=1"]);
    let gone = eventually(Duration::from_secs(30), || !pod_dir.exists());
    assert!(gone, "{} still exists", pod_dir.display());
    assert!(mounts_under(&pod_dir).is_empty());
    assert!(host_dir.path().join("host/written").is_file());
}

const MISSING: &str = r#"
apiVersion: v1
kind: Pod
metadata: {name: nocm}
spec:
  containers:
  - name: c
    image: rkube.local/busybox:1.35
    command: [sh, -c, "echo got=$(cat /cfg/k); sleep 3600"]
    volumeMounts: [{name: x, mountPath: /cfg}]
  volumes:
  - name: x
    configMap: {name: later}
"#;

#[test]
fn a_missing_configmap_keeps_the_pod_creating_until_it_exists() {
    let c = cluster();
    c.apply(MISSING);
    let want = r#"MountVolume.SetUp failed for volume "x" : configmap "later" not found"#;
    let failed = eventually(Duration::from_secs(60), || {
        let events = c.kubectl(&["get", "events", "--field-selector", "involvedObject.name=nocm,reason=FailedMount", "-o", "jsonpath={.items[*].message}"]);
        events.stdout.contains(want)
    });
    assert!(failed, "no FailedMount event: {}", c.kubectl(&["get", "events", "-o", "yaml"]).stdout);
    assert_eq!(columns(&c, "nocm").1, "ContainerCreating");
    c.k(&["create", "configmap", "later", "--from-literal=k=arrived"]);
    let running = eventually(Duration::from_secs(60), || columns(&c, "nocm").1 == "Running");
    assert!(running, "{}", c.kubectl(&["get", "pod", "nocm", "-o", "yaml"]).stdout);
    wait_log(&c, "nocm", "got=arrived");
}

const TOKEN_PODS: &str = r#"
apiVersion: v1
kind: ServiceAccount
metadata: {name: robot}
---
apiVersion: v1
kind: Pod
metadata: {name: tok}
spec:
  serviceAccountName: robot
  containers:
  - name: c
    image: rkube.local/busybox:1.35
    command:
    - sh
    - -c
    - |
      d=/var/run/secrets/kubernetes.io/serviceaccount
      echo "token=$(cat $d/token)"
      echo "ns=$(cat $d/namespace)"
      echo "ca=$(head -1 $d/ca.crt)"
      sleep 3600
---
apiVersion: v1
kind: Pod
metadata: {name: notok}
spec:
  serviceAccountName: robot
  automountServiceAccountToken: false
  containers:
  - name: c
    image: rkube.local/busybox:1.35
    command: [sh, -c, "ls /var/run/secrets/kubernetes.io/serviceaccount 2>/dev/null || echo no-sa-dir; sleep 3600"]
"#;

/// `kubectl get --raw /api` as the bearer of `token` (no client certificate).
fn api_as(c: &Cluster, token: &str) -> crate::harness::Run {
    let kubeconfig = std::fs::read_to_string(c.kubeconfig()).expect("kubeconfig");
    let server = kubeconfig.lines().find_map(|l| l.trim().strip_prefix("server: ")).expect("server URL").trim().trim_matches('"').to_owned();
    let ca = c.data_dir().join("tls/ca.crt");
    let ca = ca.to_str().expect("utf-8 path");
    c.kubectl_with(&["--kubeconfig=/dev/null", "--server", &server, "--certificate-authority", ca, "--token", token, "get", "--raw", "/api"], None, &[])
}

#[test]
fn the_projected_service_account_token_is_accepted_by_the_api_server_while_its_pod_exists() {
    let c = cluster();
    // The root CA ConfigMap every namespace gets from the controller manager.
    let ca = std::fs::read_to_string(c.data_dir().join("tls/ca.crt")).expect("cluster CA");
    let cm = serde_json::json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "kube-root-ca.crt"}, "data": {"ca.crt": ca}});
    c.apply(&cm.to_string());
    c.apply(TOKEN_PODS);
    // The admission injected the volume; the opt-out pod has none.
    let volumes = field(&c, "tok", "{.spec.volumes[*].name}");
    assert!(volumes.starts_with("kube-api-access-"), "{volumes}");
    assert_eq!(field(&c, "tok", "{.spec.containers[0].volumeMounts[0].mountPath}"), "/var/run/secrets/kubernetes.io/serviceaccount");
    assert_eq!(field(&c, "notok", "{.spec.volumes}"), "");
    wait_log(&c, "tok", "ca=-----BEGIN CERTIFICATE-----");
    wait_log(&c, "notok", "no-sa-dir");
    let log = log_text(&c, "tok", "c");
    assert!(log.contains("ns=default"), "{log}");
    let token = log.lines().find_map(|l| l.split_once(" stdout F token=").map(|(_, t)| t.trim().to_owned())).expect("token line");
    assert_eq!(token.split('.').count(), 3, "a JWT: {token}");

    let ok = api_as(&c, &token);
    assert!(ok.ok && ok.stdout.contains("\"APIVersions\""), "{}{}", ok.stdout, ok.stderr);
    let mut forged = token.clone();
    forged.push('x');
    let bad = api_as(&c, &forged);
    assert!(!bad.ok && bad.stderr.contains("Unauthorized"), "{}{}", bad.stdout, bad.stderr);

    // The token is bound to its pod: once the pod is gone, so is the token's validity.
    c.k(&["delete", "pod", "tok", "--grace-period=1"]);
    let refused = eventually(Duration::from_secs(60), || !api_as(&c, &token).ok);
    assert!(refused, "a token of a deleted pod must be refused");
}
