//! Test support: a containerd of its own with the builtin images, and pods created straight
//! through CRI with the labels of rkube's conventions, so the kubelet server can be tested
//! before (and without) the pod workers. hostNetwork-style sandboxes: no CNI needed.
//!
//! Everything is removed on drop (sandboxes stopped and removed, then containerd stopped),
//! also when a test fails. Once the kubelet's pod workers run real pods, tests can create
//! pods through the API instead and drop this module.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;

use crate::containerd::{Containerd, Layout, Options};
use crate::cri::{api, Cri};
use crate::server::lookup::{CONTAINER_NAME_LABEL, POD_NAMESPACE_LABEL, POD_NAME_LABEL, POD_UID_LABEL};

/// A containerd under a temporary directory, with the pause and busybox images imported.
pub struct TestRuntime {
    pub cri: Cri,
    containerd: Option<Containerd>,
    sandboxes: std::sync::Mutex<Vec<String>>,
    /// The agent directory (`<dir>/agent`): containerd, pod logs.
    pub agent_dir: PathBuf,
    _dir: tempfile::TempDir,
}

/// A pod sandbox created by [`TestRuntime::pod`].
#[derive(Clone, Debug)]
pub struct TestPod {
    pub namespace: String,
    pub name: String,
    pub uid: String,
    pub sandbox_id: String,
    pub log_directory: PathBuf,
    config: api::PodSandboxConfig,
}

impl TestRuntime {
    /// Starts containerd in a fresh temporary directory and imports the builtin images.
    pub async fn start() -> anyhow::Result<TestRuntime> {
        let dir = tempfile::tempdir()?;
        let agent_dir = dir.path().join("agent");
        let options = Options {
            sandbox_image: crate::images::PAUSE_IMAGE.into(),
            cni_conf_dir: agent_dir.join("cni/net.d"),
            cni_bin_dir: "/usr/lib/cni".into(),
        };
        let containerd = Containerd::start(Layout::new(&agent_dir), &options).await?;
        let tarballs = crate::images::build_builtin(&dir.path().join("images"), Path::new(crate::images::BUSYBOX_BINARY))?;
        for tarball in &tarballs {
            crate::images::import(&containerd.socket(), tarball).await?;
        }
        let cri = Cri::connect(&containerd.socket().display().to_string()).await?;
        Ok(TestRuntime { cri, containerd: Some(containerd), sandboxes: Default::default(), agent_dir, _dir: dir })
    }

    /// Runs a host-network sandbox for pod `namespace/name` with a log directory under
    /// `<agent>/pods/<ns>_<name>_<uid>`.
    pub async fn pod(&self, namespace: &str, name: &str) -> anyhow::Result<TestPod> {
        let uid = format!("{:016x}", ring_random());
        let log_directory = self.agent_dir.join("pods").join(format!("{namespace}_{name}_{uid}"));
        std::fs::create_dir_all(&log_directory)?;
        let labels = HashMap::from([
            (POD_NAME_LABEL.to_owned(), name.to_owned()),
            (POD_NAMESPACE_LABEL.to_owned(), namespace.to_owned()),
            (POD_UID_LABEL.to_owned(), uid.clone()),
        ]);
        let namespaces = api::NamespaceOption {
            network: api::NamespaceMode::Node as i32,
            pid: api::NamespaceMode::Container as i32,
            ipc: api::NamespaceMode::Pod as i32,
            ..Default::default()
        };
        let config = api::PodSandboxConfig {
            metadata: Some(api::PodSandboxMetadata { name: name.into(), uid: uid.clone(), namespace: namespace.into(), attempt: 0 }),
            log_directory: log_directory.display().to_string(),
            labels,
            linux: Some(api::LinuxPodSandboxConfig {
                security_context: Some(api::LinuxSandboxSecurityContext { namespace_options: Some(namespaces), ..Default::default() }),
                ..Default::default()
            }),
            ..Default::default()
        };
        let mut runtime = self.cri.runtime.clone();
        let request = api::RunPodSandboxRequest { config: Some(config.clone()), runtime_handler: String::new() };
        let sandbox_id = runtime.run_pod_sandbox(request).await.context("RunPodSandbox")?.into_inner().pod_sandbox_id;
        self.sandboxes.lock().expect("sandbox list lock is never poisoned").push(sandbox_id.clone());
        Ok(TestPod { namespace: namespace.into(), name: name.into(), uid, sandbox_id, log_directory, config })
    }

    /// Creates and starts container `name` (attempt `attempt`) of busybox running `command`
    /// in `pod`; `stdin` keeps its standard input open for attach. Returns its id.
    pub async fn container(&self, pod: &TestPod, name: &str, attempt: u32, command: &[&str], stdin: bool) -> anyhow::Result<String> {
        let mut labels = pod.config.labels.clone();
        labels.insert(CONTAINER_NAME_LABEL.to_owned(), name.to_owned());
        let config = api::ContainerConfig {
            metadata: Some(api::ContainerMetadata { name: name.into(), attempt }),
            image: Some(api::ImageSpec { image: crate::images::BUSYBOX_IMAGE.into(), ..Default::default() }),
            command: command.iter().map(|s| (*s).to_owned()).collect(),
            labels,
            annotations: HashMap::from([("io.kubernetes.container.restartCount".to_owned(), attempt.to_string())]),
            log_path: format!("{name}/{attempt}.log"),
            stdin,
            ..Default::default()
        };
        std::fs::create_dir_all(pod.log_directory.join(name))?;
        let mut runtime = self.cri.runtime.clone();
        let request = api::CreateContainerRequest {
            pod_sandbox_id: pod.sandbox_id.clone(),
            config: Some(config),
            sandbox_config: Some(pod.config.clone()),
        };
        let id = runtime.create_container(request).await.context("CreateContainer")?.into_inner().container_id;
        runtime.start_container(api::StartContainerRequest { container_id: id.clone() }).await.context("StartContainer")?;
        Ok(id)
    }

    /// Waits until container `id` has exited (at most `timeout`).
    pub async fn wait_exited(&self, id: &str, timeout: Duration) -> anyhow::Result<()> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let status = crate::server::lookup::status(&self.cri, id).await?;
            if status.is_some_and(|s| s.state == api::ContainerState::ContainerExited as i32) {
                return Ok(());
            }
            anyhow::ensure!(tokio::time::Instant::now() < deadline, "container {id} still runs after {timeout:?}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The containerd socket.
    pub fn socket(&self) -> PathBuf {
        self.cri.socket().to_owned()
    }
}

fn ring_random() -> u64 {
    let mut bytes = [0u8; 8];
    // A unique pod uid; the system RNG failing is not something a test can work around.
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut bytes).expect("system RNG works");
    u64::from_le_bytes(bytes)
}

async fn remove_sandboxes(socket: &Path, ids: &[String]) {
    let Ok(cri) = Cri::connect(&socket.display().to_string()).await else { return };
    let mut runtime = cri.runtime.clone();
    for id in ids {
        let _ = runtime.stop_pod_sandbox(api::StopPodSandboxRequest { pod_sandbox_id: id.clone() }).await;
        let _ = runtime.remove_pod_sandbox(api::RemovePodSandboxRequest { pod_sandbox_id: id.clone() }).await;
    }
}

impl Drop for TestRuntime {
    fn drop(&mut self) {
        let ids = std::mem::take(&mut *self.sandboxes.lock().unwrap_or_else(|e| e.into_inner()));
        let socket = self.socket();
        let containerd = self.containerd.take();
        // Drop may run inside an async test's runtime: do the CRI calls on a thread of their own.
        let cleanup = std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread().enable_all().build() else { return };
            rt.block_on(async move {
                remove_sandboxes(&socket, &ids).await;
                if let Some(c) = containerd {
                    c.stop(Duration::from_secs(5)).await;
                }
            });
        });
        let _ = cleanup.join();
    }
}
