//! The files of configMap, secret, downwardAPI and projected volumes, as upstream builds them
//! (pkg/volume/{configmap,secret,downwardapi,projected}): every key or only `items`, with
//! `defaultMode` (0644 unless set) and per-item `mode`; `optional` objects and keys.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Container, DownwardAPIVolumeFile, KeyToPath, Pod};

use super::atomic::{File, Payload};
use crate::pods::env::{self, NodeAllocatable};

/// Upstream's default file mode of these volumes (configMap, secret, downwardAPI, projected).
pub const DEFAULT_MODE: i32 = 0o644;

/// Files from an object's keys (upstream makePayload): all keys, or the `items` mapping;
/// a missing key is an error unless `optional`. `what` is `configmap` or `secret`.
pub fn from_keys(what: &str, data: &BTreeMap<String, Vec<u8>>, items: Option<&[KeyToPath]>, default_mode: i32, optional: bool) -> Result<Payload, String> {
    let mut out = Payload::new();
    let Some(items) = items.filter(|i| !i.is_empty()) else {
        for (k, v) in data {
            out.insert(k.clone(), File { data: v.clone(), mode: default_mode as u32 });
        }
        return Ok(out);
    };
    for item in items {
        let Some(v) = data.get(&item.key) else {
            if optional {
                continue;
            }
            return Err(format!("{what} references non-existent {} key: {}", if what == "configmap" { "config" } else { "secret" }, item.key));
        };
        out.insert(item.path.clone(), File { data: v.clone(), mode: item.mode.unwrap_or(default_mode) as u32 });
    }
    Ok(out)
}

/// Go's `%q` for the downward API's label and annotation files.
fn go_quote(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => out.push_str(&format!("\\x{:02x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Upstream fieldpath.FormatMap: `key="value"` lines in key order.
pub fn format_map(m: &BTreeMap<String, String>) -> String {
    m.iter().map(|(k, v)| format!("{k}={}", go_quote(v))).collect::<Vec<_>>().join("\n")
}

/// What downward API files read besides the pod.
pub struct Downward<'a> {
    pub allocatable: NodeAllocatable,
    pub host_ip: &'a str,
    pub pod_ips: &'a [String],
}

/// Files of downwardAPI items (fieldRef and resourceFieldRef).
pub fn downward(pod: &Pod, items: &[DownwardAPIVolumeFile], default_mode: i32, d: &Downward) -> Result<Payload, String> {
    let mut out = Payload::new();
    for item in items {
        let value = if let Some(f) = &item.field_ref {
            match f.field_path.as_str() {
                "metadata.labels" => format_map(&pod.metadata.labels.clone().unwrap_or_default()),
                "metadata.annotations" => format_map(&pod.metadata.annotations.clone().unwrap_or_default()),
                path => env::field_ref(pod, path, d.host_ip, d.pod_ips).map_err(|e| e.0)?,
            }
        } else if let Some(r) = &item.resource_field_ref {
            let name = r.container_name.clone().unwrap_or_default();
            let container: &Container = pod
                .spec
                .iter()
                .flat_map(|s| s.containers.iter().chain(s.init_containers.iter().flatten()))
                .find(|c| c.name == name)
                .ok_or_else(|| format!("container {name:?} not found"))?;
            env::resource_field_ref(container, &r.resource, r.divisor.as_ref().map(|q| q.0.as_str()), &d.allocatable).map_err(|e| e.0)?
        } else {
            continue;
        };
        out.insert(item.path.clone(), File { data: value.into_bytes(), mode: item.mode.unwrap_or(default_mode) as u32 });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{ObjectFieldSelector, PodSpec};
    use kube::api::ObjectMeta;

    fn data() -> BTreeMap<String, Vec<u8>> {
        [("a".to_string(), b"1".to_vec()), ("b".to_string(), b"2".to_vec())].into()
    }

    #[test]
    fn keys_map_to_files_with_modes() {
        let all = from_keys("configmap", &data(), None, DEFAULT_MODE, false).unwrap();
        assert_eq!(all.len(), 2);
        assert_eq!(all["a"].mode, 0o644);
        let items = [KeyToPath { key: "b".into(), path: "dir/bee".into(), mode: Some(0o400) }];
        let some = from_keys("secret", &data(), Some(&items), 0o600, false).unwrap();
        assert_eq!(some.keys().collect::<Vec<_>>(), ["dir/bee"]);
        assert_eq!(some["dir/bee"].mode, 0o400);
        let missing = [KeyToPath { key: "z".into(), path: "z".into(), mode: None }];
        assert_eq!(from_keys("configmap", &data(), Some(&missing), 0o644, false).unwrap_err(), "configmap references non-existent config key: z");
        assert_eq!(from_keys("secret", &data(), Some(&missing), 0o644, false).unwrap_err(), "secret references non-existent secret key: z");
        assert!(from_keys("secret", &data(), Some(&missing), 0o644, true).unwrap().is_empty());
    }

    #[test]
    fn downward_files_format_maps_like_upstream() {
        let pod = Pod {
            metadata: ObjectMeta {
                name: Some("p".into()),
                namespace: Some("ns".into()),
                labels: Some([("b".to_string(), "x\"y".to_string()), ("a".to_string(), "1".to_string())].into()),
                ..Default::default()
            },
            spec: Some(PodSpec::default()),
            ..Default::default()
        };
        let item = |path: &str, field: &str| DownwardAPIVolumeFile {
            path: path.into(),
            field_ref: Some(ObjectFieldSelector { field_path: field.into(), api_version: None }),
            ..Default::default()
        };
        let d = Downward { allocatable: NodeAllocatable::default(), host_ip: "1.2.3.4", pod_ips: &[] };
        let files = downward(&pod, &[item("name", "metadata.name"), item("labels", "metadata.labels"), item("one", "metadata.labels['a']")], 0o644, &d).unwrap();
        assert_eq!(files["name"].data, b"p");
        assert_eq!(String::from_utf8_lossy(&files["labels"].data), "a=\"1\"\nb=\"x\\\"y\"");
        assert_eq!(files["one"].data, b"1");
    }
}
