//! The official Python client (`pip install kubernetes`, installed by `scripts/deps`) drives
//! rkube unchanged: typed CoreV1Api/AppsV1Api calls, watch, patch, errors, and the dynamic
//! client through discovery.

use std::process::Command;

use crate::harness::Cluster;

#[test]
fn the_official_python_client_works_unchanged() {
    let c = Cluster::start();
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/e2e/python/client.py");
    let out = Command::new("python3")
        .arg(&script)
        .arg(c.kubeconfig())
        .arg("py")
        .output()
        .expect("python3 on the PATH (scripts/deps installs the kubernetes package)");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "python client failed:\n{stdout}\n{stderr}");
    for step in ["namespaces", "configmap patch", "deployment create/scale/list", "errors", "dynamic client", "watch and delete"] {
        assert!(stdout.contains(&format!("ok {step}")), "step {step} missing:\n{stdout}\n{stderr}");
    }
    // what Python wrote is what kubectl reads
    assert_eq!(c.k(&["get", "ns", "py", "-o", "jsonpath={.metadata.name}"]), "py");
}
