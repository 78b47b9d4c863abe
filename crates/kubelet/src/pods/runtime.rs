//! What CRI knows about a pod: its sandboxes and containers, found by upstream's labels
//! (`io.kubernetes.pod.uid`, `io.kubernetes.container.name`), and the calls that change them.
//! Everything the kubelet decides is derived from this state, so a restarted kubelet adopts
//! what is running instead of starting it again.

use std::collections::HashMap;
use std::time::Duration;

use crate::cri::api;
use crate::cri::Cri;

pub const LABEL_POD_NAME: &str = "io.kubernetes.pod.name";
pub const LABEL_POD_NAMESPACE: &str = "io.kubernetes.pod.namespace";
pub const LABEL_POD_UID: &str = "io.kubernetes.pod.uid";
pub const LABEL_CONTAINER_NAME: &str = "io.kubernetes.container.name";
pub const ANNOTATION_RESTART_COUNT: &str = "io.kubernetes.container.restartCount";
/// The grace period a container was started with (read back when stopping it after a restart).
pub const ANNOTATION_GRACE: &str = "io.kubernetes.pod.terminationGracePeriod";
/// The image the container spec named when the container was created (a changed image
/// restarts the container, as upstream's container hash does).
pub const ANNOTATION_IMAGE: &str = "rkube.io/container-image";
/// Label upstream puts on every kubelet-managed object.
pub const LABEL_MANAGED: &str = "io.kubernetes.container.managed-by";

/// Timeout of one CRI call (upstream runtimeRequestTimeout is 2 minutes; pulls excepted).
pub const CALL_TIMEOUT: Duration = Duration::from_secs(120);

/// A pod sandbox as CRI reports it.
#[derive(Debug, Clone)]
pub struct Sandbox {
    pub id: String,
    pub ready: bool,
    pub attempt: u32,
    pub created_at: i64,
    /// The pod IP (from PodSandboxStatus; empty for hostNetwork).
    pub ip: String,
}

/// Container state as CRI reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    Created,
    Running,
    Exited,
    Unknown,
}

/// A container as CRI reports it.
#[derive(Debug, Clone)]
pub struct ContainerInfo {
    pub id: String,
    pub sandbox_id: String,
    pub name: String,
    pub attempt: u32,
    pub state: State,
    pub created_at: i64,
    pub started_at: i64,
    pub finished_at: i64,
    pub exit_code: i32,
    pub reason: String,
    pub message: String,
    pub image: String,
    pub image_ref: String,
    pub restart_count: i32,
    pub grace_secs: Option<i64>,
    /// The spec's image at creation (annotation).
    pub spec_image: Option<String>,
}

/// A pod's sandboxes and containers, newest first.
#[derive(Debug, Clone, Default)]
pub struct PodRuntime {
    pub sandboxes: Vec<Sandbox>,
    pub containers: Vec<ContainerInfo>,
}

impl PodRuntime {
    /// The newest sandbox.
    pub fn sandbox(&self) -> Option<&Sandbox> {
        self.sandboxes.first()
    }

    /// The newest container named `name` (in any sandbox).
    pub fn latest(&self, name: &str) -> Option<&ContainerInfo> {
        self.containers.iter().find(|c| c.name == name)
    }

    /// The newest container named `name` in sandbox `sandbox_id`.
    pub fn latest_in(&self, name: &str, sandbox_id: &str) -> Option<&ContainerInfo> {
        self.containers.iter().find(|c| c.name == name && c.sandbox_id == sandbox_id)
    }

    /// The container before the newest one named `name` (for lastState).
    pub fn previous(&self, name: &str) -> Option<&ContainerInfo> {
        self.containers.iter().filter(|c| c.name == name).nth(1)
    }

    pub fn running(&self) -> impl Iterator<Item = &ContainerInfo> {
        self.containers.iter().filter(|c| matches!(c.state, State::Running | State::Unknown))
    }
}

fn timeout<T>(r: Result<Result<tonic::Response<T>, tonic::Status>, tokio::time::error::Elapsed>) -> anyhow::Result<T> {
    match r {
        Ok(Ok(r)) => Ok(r.into_inner()),
        Ok(Err(s)) => Err(anyhow::anyhow!("{}", s.message())),
        Err(_) => Err(anyhow::anyhow!("container runtime call timed out")),
    }
}

/// Reads a pod's sandboxes and containers.
pub async fn pod_runtime(cri: &Cri, uid: &str) -> anyhow::Result<PodRuntime> {
    let labels: HashMap<String, String> = [(LABEL_POD_UID.to_owned(), uid.to_owned())].into();
    let mut rt = cri.runtime.clone();
    let filter = api::PodSandboxFilter { label_selector: labels.clone(), ..Default::default() };
    let items = timeout(tokio::time::timeout(CALL_TIMEOUT, rt.list_pod_sandbox(api::ListPodSandboxRequest { filter: Some(filter) })).await)?.items;
    let mut sandboxes = Vec::new();
    for s in items {
        let ready = s.state == api::PodSandboxState::SandboxReady as i32;
        let mut ip = String::new();
        if ready {
            let request = api::PodSandboxStatusRequest { pod_sandbox_id: s.id.clone(), verbose: false };
            if let Ok(status) = timeout(tokio::time::timeout(CALL_TIMEOUT, rt.pod_sandbox_status(request)).await) {
                ip = status.status.and_then(|s| s.network).map(|n| n.ip).unwrap_or_default();
            }
        }
        sandboxes.push(Sandbox { id: s.id, ready, attempt: s.metadata.map(|m| m.attempt).unwrap_or(0), created_at: s.created_at, ip });
    }
    sandboxes.sort_by_key(|s| std::cmp::Reverse(s.created_at));
    let filter = api::ContainerFilter { label_selector: labels, ..Default::default() };
    let listed = timeout(tokio::time::timeout(CALL_TIMEOUT, rt.list_containers(api::ListContainersRequest { filter: Some(filter) })).await)?.containers;
    let mut containers = Vec::new();
    for c in listed {
        let request = api::ContainerStatusRequest { container_id: c.id.clone(), verbose: false };
        let Ok(status) = timeout(tokio::time::timeout(CALL_TIMEOUT, rt.container_status(request)).await) else { continue };
        let Some(s) = status.status else { continue };
        containers.push(container_info(c.pod_sandbox_id, s));
    }
    containers.sort_by_key(|c| std::cmp::Reverse(c.created_at));
    Ok(PodRuntime { sandboxes, containers })
}

fn container_info(sandbox_id: String, s: api::ContainerStatus) -> ContainerInfo {
    let state = match api::ContainerState::try_from(s.state) {
        Ok(api::ContainerState::ContainerCreated) => State::Created,
        Ok(api::ContainerState::ContainerRunning) => State::Running,
        Ok(api::ContainerState::ContainerExited) => State::Exited,
        _ => State::Unknown,
    };
    let name = s.labels.get(LABEL_CONTAINER_NAME).cloned().or_else(|| s.metadata.as_ref().map(|m| m.name.clone())).unwrap_or_default();
    ContainerInfo {
        id: s.id,
        sandbox_id,
        name,
        attempt: s.metadata.map(|m| m.attempt).unwrap_or(0),
        state,
        created_at: s.created_at,
        started_at: s.started_at,
        finished_at: s.finished_at,
        exit_code: s.exit_code,
        reason: s.reason,
        message: s.message,
        image: s.image.map(|i| i.image).unwrap_or_default(),
        image_ref: s.image_ref,
        restart_count: s.annotations.get(ANNOTATION_RESTART_COUNT).and_then(|v| v.parse().ok()).unwrap_or(0),
        grace_secs: s.annotations.get(ANNOTATION_GRACE).and_then(|v| v.parse().ok()),
        spec_image: s.annotations.get(ANNOTATION_IMAGE).cloned(),
    }
}

/// Stops a container, giving it `grace_secs` before SIGKILL.
pub async fn stop_container(cri: &Cri, id: &str, grace_secs: i64) -> anyhow::Result<()> {
    let mut rt = cri.runtime.clone();
    let request = api::StopContainerRequest { container_id: id.into(), timeout: grace_secs };
    let wait = Duration::from_secs(grace_secs.max(0) as u64) + Duration::from_secs(30);
    timeout(tokio::time::timeout(wait, rt.stop_container(request)).await).map(|_| ())
}

pub async fn remove_container(cri: &Cri, id: &str) -> anyhow::Result<()> {
    let mut rt = cri.runtime.clone();
    timeout(tokio::time::timeout(CALL_TIMEOUT, rt.remove_container(api::RemoveContainerRequest { container_id: id.into() })).await).map(|_| ())
}

/// Stops and removes a sandbox (which removes its containers and tears its network down).
pub async fn remove_sandbox(cri: &Cri, id: &str) -> anyhow::Result<()> {
    let mut rt = cri.runtime.clone();
    timeout(tokio::time::timeout(CALL_TIMEOUT, rt.stop_pod_sandbox(api::StopPodSandboxRequest { pod_sandbox_id: id.into() })).await)?;
    timeout(tokio::time::timeout(CALL_TIMEOUT, rt.remove_pod_sandbox(api::RemovePodSandboxRequest { pod_sandbox_id: id.into() })).await).map(|_| ())
}

pub async fn stop_sandbox(cri: &Cri, id: &str) -> anyhow::Result<()> {
    let mut rt = cri.runtime.clone();
    timeout(tokio::time::timeout(CALL_TIMEOUT, rt.stop_pod_sandbox(api::StopPodSandboxRequest { pod_sandbox_id: id.into() })).await).map(|_| ())
}

/// Runs `cmd` in a container, returning (exit code, output). A timeout is an error.
pub async fn exec_sync(cri: &Cri, id: &str, cmd: Vec<String>, timeout_secs: i64) -> anyhow::Result<(i32, String)> {
    let mut rt = cri.runtime.clone();
    let request = api::ExecSyncRequest { container_id: id.into(), cmd, timeout: timeout_secs };
    let wait = Duration::from_secs(timeout_secs.max(1) as u64 + 10);
    let r = timeout(tokio::time::timeout(wait, rt.exec_sync(request)).await)?;
    let mut out = String::from_utf8_lossy(&r.stdout).into_owned();
    out.push_str(&String::from_utf8_lossy(&r.stderr));
    Ok((r.exit_code, out))
}

/// Every pod sandbox CRI knows (with its pod uid label), for orphan cleanup.
pub async fn all_sandboxes(cri: &Cri) -> anyhow::Result<Vec<(String, String)>> {
    let mut rt = cri.runtime.clone();
    let items = timeout(tokio::time::timeout(CALL_TIMEOUT, rt.list_pod_sandbox(api::ListPodSandboxRequest { filter: None })).await)?.items;
    Ok(items.into_iter().map(|s| (s.id, s.labels.get(LABEL_POD_UID).cloned().unwrap_or_default())).collect())
}

/// Stops and removes every sandbox of the runtime (tests' and uninstall's clean-up).
pub async fn remove_all_sandboxes(cri: &Cri) -> anyhow::Result<usize> {
    let sandboxes = all_sandboxes(cri).await?;
    let mut removed = 0;
    for (id, _) in sandboxes {
        if remove_sandbox(cri, &id).await.is_ok() {
            removed += 1;
        }
    }
    Ok(removed)
}

/// Removes the pod's cgroup from every v1 hierarchy (runc creates them; nothing else removes
/// them). Children first; missing directories are fine.
pub fn remove_pod_cgroups(cgroup_parent: &str) {
    let Ok(hierarchies) = std::fs::read_dir("/sys/fs/cgroup") else { return };
    for h in hierarchies.flatten() {
        let dir = h.path().join(cgroup_parent.trim_start_matches('/'));
        if !dir.is_dir() {
            continue;
        }
        if let Ok(children) = std::fs::read_dir(&dir) {
            for c in children.flatten() {
                if c.path().is_dir() {
                    let _ = std::fs::remove_dir(c.path());
                }
            }
        }
        let _ = std::fs::remove_dir(&dir);
    }
}
