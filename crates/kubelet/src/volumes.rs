//! The volume manager: sets up a pod's volumes under
//! `<agent dir>/pods/<uid>/volumes/<plugin>/<name>` (upstream's layout, plugins named
//! `kubernetes.io~empty-dir` and so on), turns volumeMounts into CRI mounts, and removes
//! everything (tmpfs mounts first) when the pod goes.
//!
//! Sources: emptyDir (a directory; medium Memory is a tmpfs sized by sizeLimit, else the
//! node's allocatable memory), hostPath (with its type checks, [`hostpath`]), configMap,
//! secret, downwardAPI and projected (files from [`payload`], written by the [`atomic`]
//! writer, so re-running [`setup`] while the pod runs delivers updates; secret and projected
//! volumes on a tmpfs, as upstream), and
//! persistentVolumeClaim bound to a hostPath or local PersistentVolume (the PV's path).
//!
//! Errors carry upstream's message: `MountVolume.SetUp failed for volume "x" : configmap "y"
//! not found`.

pub mod atomic;
pub mod hostpath;
pub mod payload;
pub mod token;

use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};

use k8s_openapi::api::core::v1::{ConfigMap, Container, PersistentVolume, PersistentVolumeClaim, Pod, Secret, Volume};
use kube::api::Api;
use rkube_api::quantity::Quantity;

use crate::cri::api;
use crate::pods::env::NodeAllocatable;
use atomic::Payload;
use payload::{Downward, DEFAULT_MODE};

pub const PLUGIN_EMPTY_DIR: &str = "kubernetes.io~empty-dir";
pub const PLUGIN_CONFIG_MAP: &str = "kubernetes.io~configmap";
pub const PLUGIN_SECRET: &str = "kubernetes.io~secret";
pub const PLUGIN_DOWNWARD_API: &str = "kubernetes.io~downward-api";
pub const PLUGIN_PROJECTED: &str = "kubernetes.io~projected";

/// What setting volumes up reads besides the pod.
pub struct Host<'a> {
    pub client: &'a kube::Client,
    /// `<agent dir>/pods`.
    pub pods_dir: &'a Path,
    pub allocatable: NodeAllocatable,
    pub host_ip: &'a str,
    pub pod_ips: &'a [String],
}

/// Where one volume is on the host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostVolume {
    pub path: PathBuf,
    /// Upstream mounts API-data volumes (configMap, secret, downwardAPI, projected) read-only.
    pub read_only: bool,
}

/// A pod's volumes by name.
pub type Mounted = BTreeMap<String, HostVolume>;

/// A volume that could not be set up.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("MountVolume.SetUp failed for volume \"{volume}\" : {message}")]
pub struct SetupError {
    pub volume: String,
    pub message: String,
}

/// `<pods dir>/<uid>`: everything the kubelet keeps for the pod besides logs.
pub fn pod_dir(pods_dir: &Path, uid: &str) -> PathBuf {
    pods_dir.join(uid)
}

fn volume_dir(pods_dir: &Path, uid: &str, plugin: &str, name: &str) -> PathBuf {
    pod_dir(pods_dir, uid).join("volumes").join(plugin).join(name)
}

/// Sets up (or refreshes) every volume of the pod.
pub async fn setup(host: &Host<'_>, pod: &Pod) -> Result<Mounted, SetupError> {
    let mut out = Mounted::new();
    for v in pod.spec.iter().flat_map(|s| s.volumes.iter().flatten()) {
        let mounted = setup_one(host, pod, v).await.map_err(|message| SetupError { volume: v.name.clone(), message })?;
        out.insert(v.name.clone(), mounted);
    }
    Ok(out)
}

async fn setup_one(host: &Host<'_>, pod: &Pod, v: &Volume) -> Result<HostVolume, String> {
    let uid = pod.metadata.uid.as_deref().unwrap_or_default();
    let ns = pod.metadata.namespace.as_deref().unwrap_or("default");
    let dir = |plugin: &str| volume_dir(host.pods_dir, uid, plugin, &v.name);
    let downward = Downward { allocatable: host.allocatable, host_ip: host.host_ip, pod_ips: host.pod_ips };
    if let Some(e) = &v.empty_dir {
        let path = dir(PLUGIN_EMPTY_DIR);
        empty_dir(&path, e.medium.as_deref().unwrap_or(""), e.size_limit.as_ref().map(|q| q.0.as_str()), host.allocatable.memory_bytes)?;
        return Ok(HostVolume { path, read_only: false });
    }
    if let Some(h) = &v.host_path {
        let path = PathBuf::from(&h.path);
        hostpath::check_type(&path, h.type_.as_deref().unwrap_or(""))?;
        return Ok(HostVolume { path, read_only: false });
    }
    if let Some(claim) = &v.persistent_volume_claim {
        return Ok(HostVolume { path: claim_path(host.client, ns, &claim.claim_name).await?, read_only: claim.read_only.unwrap_or(false) });
    }
    let (plugin, files) = if let Some(c) = &v.config_map {
        let data = config_map(host.client, ns, &c.name).await?;
        (PLUGIN_CONFIG_MAP, keys_payload("configmap", &c.name, data, c.items.as_deref(), c.default_mode, c.optional)?)
    } else if let Some(s) = &v.secret {
        let name = s.secret_name.clone().unwrap_or_default();
        let data = secret(host.client, ns, &name).await?;
        (PLUGIN_SECRET, keys_payload("secret", &name, data, s.items.as_deref(), s.default_mode, s.optional)?)
    } else if let Some(d) = &v.downward_api {
        (PLUGIN_DOWNWARD_API, payload::downward(pod, d.items.as_deref().unwrap_or_default(), d.default_mode.unwrap_or(DEFAULT_MODE), &downward)?)
    } else if let Some(p) = &v.projected {
        (PLUGIN_PROJECTED, projected(host, pod, p, &dir(PLUGIN_PROJECTED)).await?)
    } else {
        return Err("volume type not supported by rkube".into());
    };
    let path = dir(plugin);
    // Secrets and projected tokens live in memory, never on the node's disk (upstream wraps
    // them in a medium-Memory emptyDir).
    if plugin == PLUGIN_SECRET || plugin == PLUGIN_PROJECTED {
        empty_dir(&path, "Memory", None, host.allocatable.memory_bytes)?;
    }
    atomic::write(&path, &files, &atomic::stamp(crate::clock::now())).map_err(|e| format!("writing {}: {e}", path.display()))?;
    Ok(HostVolume { path, read_only: true })
}

fn keys_payload(
    what: &str,
    name: &str,
    data: Option<BTreeMap<String, Vec<u8>>>,
    items: Option<&[k8s_openapi::api::core::v1::KeyToPath]>,
    default_mode: Option<i32>,
    optional: Option<bool>,
) -> Result<Payload, String> {
    let optional = optional.unwrap_or(false);
    match data {
        Some(data) => payload::from_keys(what, &data, items, default_mode.unwrap_or(DEFAULT_MODE), optional),
        None if optional => Ok(Payload::new()),
        None => Err(format!("{what} {name:?} not found")),
    }
}

async fn projected(host: &Host<'_>, pod: &Pod, p: &k8s_openapi::api::core::v1::ProjectedVolumeSource, dir: &Path) -> Result<Payload, String> {
    let ns = pod.metadata.namespace.as_deref().unwrap_or("default");
    let mode = p.default_mode.unwrap_or(DEFAULT_MODE);
    let mut out = Payload::new();
    for source in p.sources.iter().flatten() {
        let files = if let Some(c) = &source.config_map {
            let data = config_map(host.client, ns, &c.name).await?;
            keys_payload("configmap", &c.name, data, c.items.as_deref(), Some(mode), c.optional)?
        } else if let Some(s) = &source.secret {
            let data = secret(host.client, ns, &s.name).await?;
            keys_payload("secret", &s.name, data, s.items.as_deref(), Some(mode), s.optional)?
        } else if let Some(d) = &source.downward_api {
            let downward = Downward { allocatable: host.allocatable, host_ip: host.host_ip, pod_ips: host.pod_ips };
            payload::downward(pod, d.items.as_deref().unwrap_or_default(), mode, &downward)?
        } else if let Some(t) = &source.service_account_token {
            // The token already written is kept until 80% of its lifetime (upstream's token
            // manager), so a refresh does not ask for a new one every time.
            let current = std::fs::read_to_string(dir.join(&t.path)).ok();
            let now = crate::clock::now().as_second();
            let token = match current.filter(|c| token::still_fresh(c, t.audience.as_deref(), now)) {
                Some(c) => c,
                None => token::request(host.client, pod, t.audience.as_deref(), t.expiration_seconds).await?,
            };
            [(t.path.clone(), atomic::File { data: token.into_bytes(), mode: mode as u32 })].into()
        } else {
            return Err("projected source not supported by rkube".into());
        };
        out.extend(files);
    }
    Ok(out)
}

async fn config_map(client: &kube::Client, ns: &str, name: &str) -> Result<Option<BTreeMap<String, Vec<u8>>>, String> {
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), ns);
    let cm = api.get_opt(name).await.map_err(|e| format!("failed to get configmap {ns}/{name}: {e}"))?;
    Ok(cm.map(|cm| {
        let mut data: BTreeMap<String, Vec<u8>> = cm.data.unwrap_or_default().into_iter().map(|(k, v)| (k, v.into_bytes())).collect();
        data.extend(cm.binary_data.unwrap_or_default().into_iter().map(|(k, v)| (k, v.0)));
        data
    }))
}

async fn secret(client: &kube::Client, ns: &str, name: &str) -> Result<Option<BTreeMap<String, Vec<u8>>>, String> {
    let api: Api<Secret> = Api::namespaced(client.clone(), ns);
    let s = api.get_opt(name).await.map_err(|e| format!("failed to get secret {ns}/{name}: {e}"))?;
    Ok(s.map(|s| {
        let mut data: BTreeMap<String, Vec<u8>> = s.data.unwrap_or_default().into_iter().map(|(k, v)| (k, v.0)).collect();
        data.extend(s.string_data.unwrap_or_default().into_iter().map(|(k, v)| (k, v.into_bytes())));
        data
    }))
}

/// The host path of the PersistentVolume a claim is bound to (hostPath or local PVs).
async fn claim_path(client: &kube::Client, ns: &str, claim: &str) -> Result<PathBuf, String> {
    let pvcs: Api<PersistentVolumeClaim> = Api::namespaced(client.clone(), ns);
    let pvc = pvcs
        .get_opt(claim)
        .await
        .map_err(|e| format!("failed to get persistentvolumeclaim {ns}/{claim}: {e}"))?
        .ok_or_else(|| format!("persistentvolumeclaim {claim:?} not found"))?;
    let pv_name = pvc.spec.and_then(|s| s.volume_name).filter(|n| !n.is_empty()).ok_or_else(|| format!("PVC {ns}/{claim} has non-bound phase (\"Pending\") or empty pvc.Spec.VolumeName (\"\")"))?;
    let pvs: Api<PersistentVolume> = Api::all(client.clone());
    let pv = pvs.get_opt(&pv_name).await.map_err(|e| format!("failed to get persistentvolume {pv_name}: {e}"))?.ok_or_else(|| format!("persistentvolume {pv_name:?} not found"))?;
    let spec = pv.spec.unwrap_or_default();
    if let Some(h) = spec.host_path {
        let path = PathBuf::from(&h.path);
        hostpath::check_type(&path, h.type_.as_deref().unwrap_or(""))?;
        return Ok(path);
    }
    if let Some(l) = spec.local {
        let path = PathBuf::from(&l.path);
        if !path.exists() {
            return Err(format!("path {:?} does not exist", l.path));
        }
        return Ok(path);
    }
    Err(format!("persistentvolume {pv_name} is neither hostPath nor local"))
}

/// Creates an emptyDir; medium Memory mounts a tmpfs of `size_limit` (or `memory_bytes`).
fn empty_dir(path: &Path, medium: &str, size_limit: Option<&str>, memory_bytes: i64) -> Result<(), String> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::create_dir_all(path).map_err(|e| format!("{e}"))?;
    match medium {
        "" => {}
        "Memory" => {
            if !mount_points_under(path).iter().any(|m| m == path) {
                let size = match size_limit {
                    Some(s) => Quantity::parse(s).map_err(|e| format!("invalid sizeLimit {s}: {e}"))?.value() as i64,
                    None => memory_bytes,
                };
                let status = std::process::Command::new("mount")
                    .args(["-t", "tmpfs", "-o", &format!("size={size},mode=0777"), "tmpfs"])
                    .arg(path)
                    .status()
                    .map_err(|e| format!("mount: {e}"))?;
                if !status.success() {
                    return Err(format!("mounting a tmpfs at {} failed: {status}", path.display()));
                }
            }
        }
        other => return Err(format!("unknown storage medium {other:?}")),
    }
    // Upstream makes emptyDirs world-writable.
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o777)).map_err(|e| format!("{e}"))
}

/// Mount points at or under `dir` (from /proc/self/mountinfo), deepest first.
fn mount_points_under(dir: &Path) -> Vec<PathBuf> {
    let text = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let mut out: Vec<PathBuf> = text
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .map(|p| PathBuf::from(p.replace("\\040", " ")))
        .filter(|p| p.starts_with(dir))
        .collect();
    out.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
    out.dedup();
    out
}

/// Unmounts what is mounted under the pod's directory and removes it.
pub fn teardown(pods_dir: &Path, uid: &str) {
    if uid.is_empty() {
        return;
    }
    let dir = pod_dir(pods_dir, uid);
    if !dir.exists() {
        return;
    }
    for m in mount_points_under(&dir) {
        if let Err(e) = std::process::Command::new("umount").arg(&m).status() {
            tracing::warn!(path = %m.display(), error = %e, "unmounting a pod volume failed");
        }
    }
    if !mount_points_under(&dir).is_empty() {
        tracing::warn!(pod_uid = %uid, "pod volumes still mounted; leaving their directory");
        return;
    }
    if let Err(e) = std::fs::remove_dir_all(&dir) {
        tracing::warn!(pod_uid = %uid, error = %e, "removing pod volumes failed");
    }
}

/// Pod uids that have a directory under `pods_dir` (log directories excluded).
pub fn pod_dirs(pods_dir: &Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(pods_dir) else { return Vec::new() };
    entries
        .flatten()
        .filter(|e| e.path().join("volumes").is_dir())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect()
}

fn propagation(mode: Option<&str>) -> Result<api::MountPropagation, String> {
    match mode.unwrap_or("None") {
        "None" => Ok(api::MountPropagation::PropagationPrivate),
        "HostToContainer" => Ok(api::MountPropagation::PropagationHostToContainer),
        "Bidirectional" => Ok(api::MountPropagation::PropagationBidirectional),
        other => Err(format!("invalid mount propagation mode {other:?}")),
    }
}

/// The CRI mounts of a container's volumeMounts (readOnly, subPath or subPathExpr expanded
/// from the container's environment `env`, mountPropagation).
pub fn container_mounts(container: &Container, volumes: &Mounted, env: &[(String, String)]) -> Result<Vec<api::Mount>, String> {
    let mut out = Vec::new();
    for m in container.volume_mounts.iter().flatten() {
        let v = volumes.get(&m.name).ok_or_else(|| format!("cannot find volume {:?} to mount into container {:?}", m.name, container.name))?;
        let mut host_path = v.path.clone();
        let sub = match m.sub_path_expr.as_deref().filter(|s| !s.is_empty()) {
            Some(expr) => {
                let lookup = |name: &str| env.iter().rev().find(|(k, _)| k == name).map(|(_, v)| v.clone());
                Some(crate::pods::env::expand(expr, &lookup))
            }
            None => m.sub_path.clone(),
        };
        if let Some(sub) = sub.as_deref().filter(|s| !s.is_empty()) {
            let rel = Path::new(sub);
            if rel.is_absolute() || rel.components().any(|c| matches!(c, Component::ParentDir)) {
                return Err(format!("subPath {sub:?} must be a relative path without '..'"));
            }
            host_path = host_path.join(rel);
            // Upstream creates a missing subPath directory in writable volumes.
            if !host_path.exists() && !v.read_only {
                std::fs::create_dir_all(&host_path).map_err(|e| format!("creating subPath {}: {e}", host_path.display()))?;
            }
            // A subPath must stay inside its volume even through symlinks.
            let real = host_path.canonicalize().map_err(|e| format!("subPath {}: {e}", host_path.display()))?;
            let base = v.path.canonicalize().map_err(|e| format!("volume {}: {e}", v.path.display()))?;
            if !real.starts_with(&base) {
                return Err(format!("subPath {sub:?} escapes its volume"));
            }
            host_path = real;
        }
        out.push(api::Mount {
            container_path: m.mount_path.clone(),
            host_path: host_path.display().to_string(),
            readonly: m.read_only.unwrap_or(false) || v.read_only,
            selinux_relabel: false,
            propagation: propagation(m.mount_propagation.as_deref())? as i32,
            ..Default::default()
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::VolumeMount;

    #[test]
    fn volume_mounts_become_cri_mounts() {
        let tmp = tempfile::tempdir().unwrap();
        let data = tmp.path().join("data");
        std::fs::create_dir_all(data.join("sub")).unwrap();
        std::os::unix::fs::symlink("/etc", data.join("escape")).unwrap();
        let volumes: Mounted = [
            ("data".to_string(), HostVolume { path: data.clone(), read_only: false }),
            ("cfg".to_string(), HostVolume { path: tmp.path().join("cfg"), read_only: true }),
        ]
        .into();
        let mount = |name: &str, path: &str, sub: Option<&str>, ro: Option<bool>| VolumeMount {
            name: name.into(),
            mount_path: path.into(),
            sub_path: sub.map(str::to_owned),
            read_only: ro,
            ..Default::default()
        };
        let c = Container {
            name: "c".into(),
            volume_mounts: Some(vec![mount("data", "/d", None, None), mount("cfg", "/etc/cfg", None, Some(false)), mount("data", "/s", Some("sub"), Some(true)), mount("data", "/n", Some("new/dir"), None)]),
            ..Default::default()
        };
        let m = container_mounts(&c, &volumes, &[]).unwrap();
        assert_eq!((m[0].host_path.as_str(), m[0].readonly), (data.to_str().unwrap(), false));
        assert!(m[1].readonly, "API data volumes are read-only");
        assert!(m[2].readonly && m[2].host_path.ends_with("/data/sub"));
        assert_eq!(m[0].propagation, api::MountPropagation::PropagationPrivate as i32);
        assert!(data.join("new/dir").is_dir(), "a missing subPath is created");
        for bad in ["../x", "/abs", "escape"] {
            let c = Container { name: "c".into(), volume_mounts: Some(vec![mount("data", "/x", Some(bad), None)]), ..Default::default() };
            assert!(container_mounts(&c, &volumes, &[]).is_err(), "{bad}");
        }
        let c = Container { name: "c".into(), volume_mounts: Some(vec![mount("nope", "/x", None, None)]), ..Default::default() };
        assert!(container_mounts(&c, &volumes, &[]).is_err());
        let expr = VolumeMount { name: "data".into(), mount_path: "/e".into(), sub_path_expr: Some("pods/$(POD)".into()), ..Default::default() };
        let c = Container { name: "c".into(), volume_mounts: Some(vec![expr]), ..Default::default() };
        let m = container_mounts(&c, &volumes, &[("POD".into(), "web-1".into())]).unwrap();
        assert!(m[0].host_path.ends_with("/data/pods/web-1"), "{}", m[0].host_path);
    }

    #[test]
    fn setup_errors_print_like_upstream() {
        let e = SetupError { volume: "x".into(), message: keys_payload("configmap", "y", None, None, None, None).unwrap_err() };
        assert_eq!(e.to_string(), "MountVolume.SetUp failed for volume \"x\" : configmap \"y\" not found");
        assert!(keys_payload("secret", "y", None, None, None, Some(true)).unwrap().is_empty());
    }

    #[test]
    fn memory_empty_dirs_are_tmpfs_and_teardown_unmounts_them() {
        struct Unmount(PathBuf);
        impl Drop for Unmount {
            fn drop(&mut self) {
                teardown(&self.0, "u1");
            }
        }
        let tmp = tempfile::tempdir().unwrap();
        let _guard = Unmount(tmp.path().to_path_buf());
        let path = volume_dir(tmp.path(), "u1", PLUGIN_EMPTY_DIR, "m");
        empty_dir(&path, "Memory", Some("1Mi"), 1 << 30).unwrap();
        let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
        let line = info.lines().find(|l| l.split(' ').nth(4) == Some(path.to_str().unwrap())).expect("tmpfs mounted");
        assert!(line.contains("tmpfs") && line.contains("size=1024k"), "{line}");
        // Setting up again does not stack another mount.
        empty_dir(&path, "Memory", Some("1Mi"), 1 << 30).unwrap();
        assert_eq!(mount_points_under(&path).len(), 1);
        assert_eq!(pod_dirs(tmp.path()), ["u1"]);
        teardown(tmp.path(), "u1");
        assert!(mount_points_under(tmp.path()).is_empty());
        assert!(!tmp.path().join("u1").exists());
    }
}
