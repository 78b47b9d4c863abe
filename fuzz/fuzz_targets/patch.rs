//! The three patch engines (JSON merge, strategic merge, JSON patch) over a Deployment; the
//! first byte picks the engine, the rest is the patch document.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rkube_apiserver::registry::{apply_patch, PatchType};
use serde_json::{json, Value};

fuzz_target!(|data: &[u8]| {
    let Some((&which, body)) = data.split_first() else { return };
    let Ok(patch) = serde_json::from_slice::<Value>(body) else { return };
    let target = json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "labels": {"a": "b"}, "finalizers": ["x", "y"]},
        "spec": {"replicas": 1, "template": {"spec": {"containers": [
            {"name": "a", "image": "i", "ports": [{"containerPort": 80}]}, {"name": "b"}]}}}
    });
    let kind = match which % 3 {
        0 => PatchType::Merge,
        1 => PatchType::Strategic,
        _ => PatchType::Json,
    };
    let _ = apply_patch(kind, &target, &patch, "io.k8s.api.apps.v1.Deployment");
});
