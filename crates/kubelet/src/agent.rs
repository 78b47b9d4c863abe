//! The kubelet as one component: [`Config`], [`Kubelet::new`] and [`Kubelet::run`]. It starts
//! (or connects to) containerd, imports the built-in images, registers the node, writes the
//! CNI config from the node's podCIDR, then runs the heartbeat, the event writer, a Service
//! cache (for service environment variables) and the pod manager until shutdown.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context as _;
use futures::StreamExt;
use k8s_openapi::api::core::v1::Service;
use kube::api::Api;
use kube::runtime::{reflector, watcher, WatchStreamExt};
use tokio_util::sync::CancellationToken;

use crate::containerd::{Containerd, Layout, Options};
use crate::cri::Cri;
use crate::node::{MachineInfo, NodeFacts};
use crate::pods::env::NodeAllocatable;
use crate::pods::events::Recorder;
use crate::{images, network, node, pods, registries, server};

/// The kubelet version reported when the API server's cannot be read.
pub const DEFAULT_KUBELET_VERSION: &str = "v1.33.0+rkube";
/// The default pod CIDR: the first /24 of the default cluster CIDR 10.42.0.0/16.
pub const DEFAULT_POD_CIDR: &str = "10.42.0.0/24";

/// Kubelet settings (the `rkube kubelet` / `rkube agent` flags).
#[derive(Debug, Clone)]
pub struct Config {
    /// Node name (default: the host name).
    pub node_name: String,
    /// rkube's data dir; the kubelet keeps everything under `<data_dir>/agent`.
    pub data_dir: PathBuf,
    /// A CRI socket to use instead of starting containerd.
    pub container_runtime_endpoint: Option<String>,
    /// podCIDR set on the node at registration when it has none; empty: wait for the
    /// controller manager's node IPAM to assign one.
    pub pod_cidr: String,
    /// InternalIP of the node (hostNetwork pods' IP).
    pub node_ip: IpAddr,
    /// Port reported in status.daemonEndpoints.
    pub kubelet_port: u16,
    /// CNI plugin binaries.
    pub cni_bin_dir: PathBuf,
    /// The cluster's pod and service ranges: the egress guard keeps packets for them on
    /// this machine.
    pub cluster_cidr: String,
    pub service_cidr: String,
    /// CA (PEM) whose client certificates the kubelet's HTTPS server accepts (the API
    /// server's kubelet client certificate); without it the server is not started.
    pub client_ca_pem: Option<String>,
    /// Hard eviction thresholds (`--eviction-hard`): they set the pressure conditions.
    pub eviction_hard: Vec<crate::eviction::Threshold>,
    /// `--eviction-pressure-transition-period`.
    pub eviction_pressure_transition_period: Duration,
    /// Image garbage collection thresholds and minimum age.
    pub image_gc: crate::imagegc::Policy,
    /// How often image garbage collection runs (upstream: 5 minutes, fixed).
    pub image_gc_period: Duration,
}

impl Config {
    /// Defaults: host name, pod CIDR 10.42.0.0/24, port 10250, CNI plugins in /usr/lib/cni.
    pub fn new(data_dir: PathBuf, node_ip: IpAddr) -> Config {
        Config {
            node_name: node::hostname(),
            data_dir,
            container_runtime_endpoint: None,
            pod_cidr: DEFAULT_POD_CIDR.into(),
            node_ip,
            kubelet_port: 10250,
            cni_bin_dir: "/usr/lib/cni".into(),
            cluster_cidr: "10.42.0.0/16".into(),
            service_cidr: "10.43.0.0/16".into(),
            client_ca_pem: None,
            eviction_hard: crate::eviction::parse_eviction_hard(crate::eviction::DEFAULT_EVICTION_HARD).expect("the default thresholds parse"),
            eviction_pressure_transition_period: crate::eviction::DEFAULT_TRANSITION_PERIOD,
            image_gc: crate::imagegc::Policy::default(),
            image_gc_period: crate::imagegc::DEFAULT_PERIOD,
        }
    }

    pub fn agent_dir(&self) -> PathBuf {
        self.data_dir.join("agent")
    }
}

/// Where the agent's files live under `<data-dir>/agent`.
pub fn cni_conf_dir(agent_dir: &Path) -> PathBuf {
    agent_dir.join("cni").join("net.d")
}

fn containerd_options(agent_dir: &Path, cni_bin_dir: &Path) -> Options {
    Options { sandbox_image: images::PAUSE_IMAGE.into(), cni_conf_dir: cni_conf_dir(agent_dir), cni_bin_dir: cni_bin_dir.into() }
}

/// The node agent.
pub struct Kubelet {
    config: Config,
    client: kube::Client,
}

impl Kubelet {
    /// No IO happens here.
    pub fn new(config: Config, client: kube::Client) -> Kubelet {
        Kubelet { config, client }
    }

    /// Runs until `shutdown`; returns early only on a fatal start-up error. containerd (when
    /// started here) is stopped on return; containers keep running and are adopted next time.
    pub async fn run(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        let agent_dir = self.config.agent_dir();
        std::fs::create_dir_all(&agent_dir).with_context(|| format!("cannot create {}", agent_dir.display()))?;
        // The egress guard goes in before anything can start a pod (DESIGN.md, network safety).
        let guard = network::EgressGuard::new(&self.config.cluster_cidr, &self.config.service_cidr)?;
        network::install_egress_guard(&network::NetCommands::host(), &guard).context("installing the egress guard")?;
        let (containerd, endpoint) = match &self.config.container_runtime_endpoint {
            Some(e) => (None, e.clone()),
            None => {
                let layout = Layout::new(&agent_dir);
                registries::write_hosts(&self.config.data_dir, &layout.certs_d())?;
                let options = containerd_options(&agent_dir, &self.config.cni_bin_dir);
                let c = Containerd::start(layout, &options).await?;
                let socket = c.socket().display().to_string();
                (Some(c), socket)
            }
        };
        let result = self.run_with(&endpoint, shutdown).await;
        if let Some(c) = containerd {
            c.stop(Duration::from_secs(5)).await;
        }
        result
    }

    async fn run_with(&self, endpoint: &str, shutdown: CancellationToken) -> anyhow::Result<()> {
        let agent_dir = self.config.agent_dir();
        let cri = Cri::connect(endpoint).await?;
        import_builtin_images(&cri, &agent_dir).await?;
        // k3s's air-gap directory: every tarball there is imported (and pinned) at start.
        let airgap = agent_dir.join("images");
        if airgap.is_dir() {
            let names = images::import_dir(cri.socket(), &airgap).await?;
            tracing::info!(count = names.len(), dir = %airgap.display(), "imported air-gap images");
        }
        let version = cri.version().await.context("asking the container runtime for its version")?;
        let kubelet_version = match self.client.apiserver_version().await {
            Ok(v) if !v.git_version.is_empty() => v.git_version,
            _ => DEFAULT_KUBELET_VERSION.into(),
        };
        let machine = MachineInfo::read(&self.config.data_dir);
        let (cpu, memory, storage) = machine.allocatable_amounts();
        let facts = NodeFacts {
            name: self.config.node_name.clone(),
            node_ip: self.config.node_ip,
            pod_cidr: self.config.pod_cidr.clone(),
            kubelet_port: self.config.kubelet_port,
            kubelet_version,
            runtime_version: format!("{}://{}", version.runtime_name, version.runtime_version),
            machine,
        };
        let pod_cidr = node::register(&self.client, &facts).await?;
        network::write_cni_config(&cni_conf_dir(&agent_dir), &pod_cidr, &self.config.data_dir)?;
        tracing::info!(node = %facts.name, pod_cidr = %pod_cidr, "node registered");

        let stats = crate::stats::Stats::default();
        let kubelet_metrics = Arc::new(crate::metrics::KubeletMetrics::new(&facts.name));
        let sources = crate::metrics::Sources { stats: stats.clone(), kubelet: kubelet_metrics.clone() };
        match &self.config.client_ca_pem {
            Some(ca) => {
                let config = server::ServerConfig {
                    listen: std::net::SocketAddr::new(std::net::Ipv4Addr::UNSPECIFIED.into(), self.config.kubelet_port),
                    client_ca_pem: ca.clone(),
                    serving_cert_pem: None,
                    serving_key_pem: None,
                };
                server::serve_with(config, cri.clone(), Some(sources), shutdown.clone())
                    .await
                    .context("starting the kubelet's HTTPS server")?;
            }
            None => tracing::warn!("no client CA: the kubelet's HTTPS server (logs, exec, port-forward) is not started"),
        }

        let mut tasks = tokio::task::JoinSet::new();
        let (services, writer) = reflector::store::<Service>();
        let service_stream = reflector(writer, watcher(Api::<Service>::all(self.client.clone()), watcher::Config::default()))
            .default_backoff()
            .touched_objects();
        let token = shutdown.clone();
        tasks.spawn(async move {
            let mut s = std::pin::pin!(service_stream);
            loop {
                tokio::select! {
                    _ = token.cancelled() => return,
                    item = s.next() => if item.is_none() { return },
                }
            }
        });
        let (recorder, events) = Recorder::new(self.client.clone(), &facts.name);
        let ctx = Arc::new(pods::Context {
            client: self.client.clone(),
            cri: cri.clone(),
            recorder,
            node_name: facts.name.clone(),
            node_ip: self.config.node_ip.to_string(),
            pods_dir: agent_dir.join("pods"),
            allocatable: NodeAllocatable { cpu_milli: cpu as i64, memory_bytes: memory as i64, ephemeral_storage_bytes: storage as i64 },
            services,
            backoff: Mutex::new(pods::backoff::Backoff::default()),
            registries: registries::Registries::load(&self.config.data_dir)?,
        });
        let sampler = crate::stats::Sampler {
            cri: cri.clone(),
            node_name: facts.name.clone(),
            paths: crate::stats::Paths { agent_dir: agent_dir.clone(), pods_dir: agent_dir.join("pods") },
            interval: crate::stats::SAMPLE_INTERVAL,
            stats: stats.clone(),
            metrics: Some(kubelet_metrics),
        };
        tasks.spawn(sampler.run(shutdown.clone()));
        let (pressure_tx, pressure) = tokio::sync::watch::channel(crate::eviction::Pressure::default());
        let eviction = crate::eviction::Manager {
            thresholds: self.config.eviction_hard.clone(),
            transition_period: self.config.eviction_pressure_transition_period,
            stats: stats.clone(),
            pressure: pressure_tx,
        };
        tasks.spawn(eviction.run(shutdown.clone()));
        let image_gc = crate::imagegc::ImageGc {
            cri: cri.clone(),
            stats: stats.clone(),
            policy: self.config.image_gc,
            period: self.config.image_gc_period,
            recorder: ctx.recorder.clone(),
            node_name: facts.name.clone(),
        };
        tasks.spawn(image_gc.run(shutdown.clone()));
        tasks.spawn(node::heartbeat(self.client.clone(), cri, facts, pressure, ctx.recorder.clone(), shutdown.clone()));
        tasks.spawn(pods::run(ctx, shutdown.clone()));
        // The event writer ends once every recorder (held by the workers) is dropped.
        tasks.spawn(events);
        shutdown.cancelled().await;
        if tokio::time::timeout(Duration::from_secs(5), async { while tasks.join_next().await.is_some() {} }).await.is_err() {
            tracing::warn!("some kubelet tasks did not stop within 5 s");
        }
        Ok(())
    }
}

/// Builds and imports the pause and busybox images unless the runtime has them.
async fn import_builtin_images(cri: &Cri, agent_dir: &Path) -> anyhow::Result<()> {
    if cri.has_image(images::PAUSE_IMAGE).await.unwrap_or(false) && cri.has_image(images::BUSYBOX_IMAGE).await.unwrap_or(false) {
        return Ok(());
    }
    let dir = agent_dir.join("builtin-images");
    let tarballs = images::build_builtin(&dir, Path::new(images::BUSYBOX_BINARY))?;
    for tarball in &tarballs {
        images::import(cri.socket(), tarball).await.with_context(|| format!("importing {}", tarball.display()))?;
    }
    Ok(())
}

/// Stops and removes every pod sandbox (and so every container) of the containerd rkube runs
/// under `data_dir`, starting that containerd for the purpose when it is not running, then
/// stops it. For tests and uninstall; a running kubelet would recreate its pods.
pub async fn remove_all_pods(data_dir: &Path) -> anyhow::Result<usize> {
    let agent_dir = data_dir.join("agent");
    let layout = Layout::new(&agent_dir);
    if !layout.config().exists() {
        return Ok(0);
    }
    let options = containerd_options(&agent_dir, Path::new("/usr/lib/cni"));
    let containerd = Containerd::start(layout, &options).await?;
    let cri = Cri::connect(&containerd.socket().display().to_string()).await;
    let result = match cri {
        Ok(cri) => {
            let uids: Vec<String> = pods::runtime::all_sandboxes(&cri).await.unwrap_or_default().into_iter().map(|(_, u)| u).collect();
            let removed = pods::runtime::remove_all_sandboxes(&cri).await;
            for uid in uids.iter().filter(|u| !u.is_empty()) {
                for qos in ["Guaranteed", "Burstable", "BestEffort"] {
                    pods::runtime::remove_pod_cgroups(&pods::resources::cgroup_parent(qos, uid));
                }
            }
            removed
        }
        Err(e) => Err(e),
    };
    containerd.stop(Duration::from_secs(5)).await;
    unmount_under(&agent_dir);
    result
}

/// Lazily unmounts whatever is still mounted under `dir` (network namespaces of sandboxes
/// whose set-up failed), deepest first, so the directory can be removed.
fn unmount_under(dir: &Path) {
    let Ok(mounts) = std::fs::read_to_string("/proc/self/mounts") else { return };
    let prefix = format!("{}/", dir.display());
    let mut points: Vec<&str> = mounts.lines().filter_map(|l| l.split_whitespace().nth(1)).filter(|p| p.starts_with(&prefix)).collect();
    points.sort_by_key(|p| std::cmp::Reverse(p.len()));
    for point in points {
        let Ok(c) = std::ffi::CString::new(point) else { continue };
        // SAFETY: umount2(2) with a NUL-terminated path we own; a failure is ignored.
        unsafe { libc::umount2(c.as_ptr(), libc::MNT_DETACH) };
    }
}
