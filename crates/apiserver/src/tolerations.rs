//! The `DefaultTolerationSeconds` admission plugin (upstream
//! `plugin/pkg/admission/defaulttolerationseconds`): a created pod that does not already
//! tolerate the `node.kubernetes.io/not-ready` or `node.kubernetes.io/unreachable` NoExecute
//! taints gets a toleration for each, for `--default-not-ready-toleration-seconds` and
//! `--default-unreachable-toleration-seconds` (300 s each), so its pods are evicted from a
//! lost node after that long.

use serde_json::{json, Value};

pub const NOT_READY: &str = "node.kubernetes.io/not-ready";
pub const UNREACHABLE: &str = "node.kubernetes.io/unreachable";

/// The tolerationSeconds the plugin writes (kube-apiserver's flags).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DefaultTolerationSeconds {
    pub not_ready: i64,
    pub unreachable: i64,
}

impl Default for DefaultTolerationSeconds {
    /// 300 s each, as kube-apiserver.
    fn default() -> Self {
        DefaultTolerationSeconds { not_ready: 300, unreachable: 300 }
    }
}

/// Whether `toleration` already covers the NoExecute taint `key` (upstream's check: the key
/// or an empty key, and NoExecute or an empty effect).
fn covers(toleration: &Value, key: &str) -> bool {
    let k = toleration["key"].as_str().unwrap_or_default();
    let effect = toleration["effect"].as_str().unwrap_or_default();
    (k == key || k.is_empty()) && (effect == "NoExecute" || effect.is_empty())
}

/// Adds the default tolerations a pod lacks (the pod is the create request's body).
pub fn admit(pod: &mut Value, seconds: DefaultTolerationSeconds) {
    if !pod.is_object() {
        return;
    }
    if !pod["spec"].is_object() {
        return;
    }
    let existing = pod["spec"]["tolerations"].as_array().cloned().unwrap_or_default();
    let mut tolerations = existing.clone();
    for (key, secs) in [(NOT_READY, seconds.not_ready), (UNREACHABLE, seconds.unreachable)] {
        if !existing.iter().any(|t| covers(t, key)) {
            tolerations.push(json!({"key": key, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": secs}));
        }
    }
    if tolerations.len() != existing.len() {
        pod["spec"]["tolerations"] = Value::Array(tolerations);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn adds_both_tolerations_unless_the_pod_has_them() {
        let mut pod = json!({"spec": {"containers": []}});
        admit(&mut pod, DefaultTolerationSeconds { not_ready: 300, unreachable: 7 });
        assert_eq!(
            pod["spec"]["tolerations"],
            json!([
                {"key": NOT_READY, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300},
                {"key": UNREACHABLE, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 7},
            ])
        );
        let mut own = json!({"spec": {"tolerations": [{"key": UNREACHABLE, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 1}]}});
        admit(&mut own, DefaultTolerationSeconds::default());
        let t = own["spec"]["tolerations"].as_array().unwrap();
        assert_eq!(t.len(), 2);
        assert_eq!(t[0]["tolerationSeconds"], 1);
        assert_eq!(t[1]["key"], NOT_READY);
        // An empty key with Exists tolerates everything: nothing added.
        let mut all = json!({"spec": {"tolerations": [{"operator": "Exists"}]}});
        admit(&mut all, DefaultTolerationSeconds::default());
        assert_eq!(all["spec"]["tolerations"].as_array().unwrap().len(), 1);
        // A NoSchedule toleration of the key does not count.
        let mut ns = json!({"spec": {"tolerations": [{"key": NOT_READY, "operator": "Exists", "effect": "NoSchedule"}]}});
        admit(&mut ns, DefaultTolerationSeconds::default());
        assert_eq!(ns["spec"]["tolerations"].as_array().unwrap().len(), 3);
    }
}
