//! Node and pod statistics: the Summary API (`/stats/summary`), the numbers behind
//! `/metrics/resource`, the eviction signals of [`crate::eviction`] and the image filesystem
//! usage of [`crate::imagegc`].
//!
//! There is no cAdvisor: a [`Sampler`] takes a [`RawSample`] every 10 s (cAdvisor's
//! housekeeping interval) from /proc, cgroup v1 ([`host`]), statvfs and CRI (containerd 1.6
//! answers `ListContainerStats` with cumulative cpu, memory working set and the writable
//! layer's bytes and inodes; `ImageFsInfo` with the image filesystem's mount point and use),
//! and [`assemble`] turns it into a [`Summary`] — `usageNanoCores` is the cpu-time delta
//! against the previous sample over the time between them, so requests never wait.
//!
//! Pods' cpu and memory come from the pod cgroup (`/kubepods/[burstable|besteffort/]pod<uid>`),
//! containers' from CRI (the cgroup of the container when CRI has nothing); network from
//! `/proc/<sandbox pid>/net/dev` (the pod's network namespace); volumes from the emptyDir
//! directories; ephemeral storage is writable layers + logs + emptyDirs, as upstream counts it.

pub mod host;
pub mod summary;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use tokio_util::sync::CancellationToken;

use crate::cri::{api, Cri};
use crate::pods::resources::cgroup_parent;
use crate::pods::runtime::{LABEL_CONTAINER_NAME, LABEL_POD_UID};
pub use summary::*;

/// cAdvisor's housekeeping interval: how often the sampler reads everything.
pub const SAMPLE_INTERVAL: Duration = Duration::from_secs(10);
/// Entries a disk-usage walk counts at most (a runaway emptyDir cannot stall a sample).
const MAX_WALK: usize = 200_000;

/// One reading of everything, before rates are computed.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RawSample {
    /// When the sample was taken (nanoseconds since the epoch).
    pub time_ns: i64,
    pub node_name: String,
    pub boot_time: Option<i64>,
    pub node_cpu_ns: Option<u64>,
    pub node_memory: Option<host::CgroupMemory>,
    pub memory_capacity: u64,
    pub interfaces: Vec<host::Interface>,
    pub default_interface: Option<String>,
    pub nodefs: Option<host::Fs>,
    /// The image filesystem and the bytes/inodes the runtime's images use on it.
    pub imagefs: Option<(host::Fs, u64, u64)>,
    pub max_pid: Option<i64>,
    pub processes: Option<i64>,
    pub pods: Vec<RawPod>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct RawPod {
    pub name: String,
    pub namespace: String,
    pub uid: String,
    pub created_ns: i64,
    /// The pod cgroup, when it exists.
    pub cgroup: Option<host::CgroupSample>,
    /// Interfaces of the pod's network namespace (empty for hostNetwork pods: not measured).
    pub interfaces: Vec<host::Interface>,
    /// emptyDir volumes: name, bytes, inodes.
    pub volumes: Vec<(String, u64, u64)>,
    pub containers: Vec<RawContainer>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct RawContainer {
    pub id: String,
    pub name: String,
    pub created_ns: i64,
    pub cpu_ns: Option<u64>,
    pub memory: Option<host::CgroupMemory>,
    /// Writable layer bytes and inodes.
    pub rootfs: Option<(u64, u64)>,
    /// Log files' bytes and inodes.
    pub logs: (u64, u64),
}

/// Cumulative cpu readings of the previous sample: key → (time ns, cpu ns). Keys: `node`,
/// `pod/<uid>`, `container/<id>`.
pub type CpuHistory = HashMap<String, (i64, u64)>;

/// The cpu readings of `raw`, for the next [`assemble`].
pub fn cpu_history(raw: &RawSample) -> CpuHistory {
    let mut h = CpuHistory::new();
    if let Some(cpu) = raw.node_cpu_ns {
        h.insert("node".into(), (raw.time_ns, cpu));
    }
    for p in &raw.pods {
        if let Some(cpu) = pod_cpu(p) {
            h.insert(format!("pod/{}", p.uid), (raw.time_ns, cpu));
        }
        for c in &p.containers {
            if let Some(cpu) = c.cpu_ns {
                h.insert(format!("container/{}", c.id), (raw.time_ns, cpu));
            }
        }
    }
    h
}

/// Average nanocores between the previous reading of `key` and (`time_ns`, `cpu_ns`).
pub fn nano_cores(previous: &CpuHistory, key: &str, time_ns: i64, cpu_ns: u64) -> Option<u64> {
    let (t0, c0) = *previous.get(key)?;
    if time_ns <= t0 || cpu_ns < c0 {
        return None;
    }
    Some(((cpu_ns - c0) as u128 * 1_000_000_000 / (time_ns - t0) as u128) as u64)
}

fn pod_cpu(p: &RawPod) -> Option<u64> {
    p.cgroup.as_ref().and_then(|c| c.cpu_ns).or_else(|| {
        let cpus: Vec<u64> = p.containers.iter().filter_map(|c| c.cpu_ns).collect();
        (!cpus.is_empty()).then(|| cpus.iter().sum())
    })
}

fn time_of(ns: i64) -> Time {
    Time(jiff::Timestamp::from_nanosecond(ns as i128).unwrap_or(jiff::Timestamp::UNIX_EPOCH))
}

fn cpu(previous: &CpuHistory, key: &str, time_ns: i64, cpu_ns: Option<u64>) -> Option<CpuStats> {
    let cpu_ns = cpu_ns?;
    Some(CpuStats {
        time: time_of(time_ns),
        usage_nano_cores: nano_cores(previous, key, time_ns, cpu_ns),
        usage_core_nano_seconds: Some(cpu_ns),
    })
}

fn memory(time_ns: i64, m: &host::CgroupMemory, capacity: Option<u64>) -> MemoryStats {
    MemoryStats {
        time: Some(time_of(time_ns)),
        available_bytes: capacity.map(|c| c.saturating_sub(m.working_set)),
        usage_bytes: Some(m.usage),
        working_set_bytes: Some(m.working_set),
        rss_bytes: Some(m.rss),
        page_faults: Some(m.page_faults),
        major_page_faults: Some(m.major_page_faults),
    }
}

fn interface_stats(i: &host::Interface) -> InterfaceStats {
    InterfaceStats {
        name: i.name.clone(),
        rx_bytes: Some(i.rx_bytes),
        rx_errors: Some(i.rx_errors),
        tx_bytes: Some(i.tx_bytes),
        tx_errors: Some(i.tx_errors),
    }
}

/// Network stats of `interfaces` (loopback left out), `default` first in line.
fn network(time_ns: i64, interfaces: &[host::Interface], default: Option<&str>) -> Option<NetworkStats> {
    let list: Vec<InterfaceStats> = interfaces.iter().filter(|i| i.name != "lo").map(interface_stats).collect();
    let primary = default.and_then(|d| list.iter().find(|i| i.name == d)).or_else(|| list.first())?.clone();
    Some(NetworkStats { time: time_of(time_ns), default: primary, interfaces: list })
}

fn fs_stats(time_ns: i64, fs: &host::Fs, used: u64, inodes_used: u64) -> FsStats {
    FsStats {
        time: Some(time_of(time_ns)),
        available_bytes: Some(fs.available),
        capacity_bytes: Some(fs.capacity),
        used_bytes: Some(used),
        inodes_free: Some(fs.inodes_free),
        inodes: Some(fs.inodes),
        inodes_used: Some(inodes_used),
    }
}

/// The Summary of a raw sample, with cpu rates against `previous`.
pub fn assemble(raw: &RawSample, previous: &CpuHistory) -> Summary {
    let t = raw.time_ns;
    let nodefs = raw.nodefs.map(|fs| fs_stats(t, &fs, fs.used, fs.inodes.saturating_sub(fs.inodes_free)));
    let imagefs = raw.imagefs.map(|(fs, used, inodes)| fs_stats(t, &fs, used, inodes));
    let node = NodeStats {
        node_name: raw.node_name.clone(),
        start_time: time_of(raw.boot_time.unwrap_or(0).saturating_mul(1_000_000_000)),
        cpu: cpu(previous, "node", t, raw.node_cpu_ns),
        memory: raw.node_memory.as_ref().map(|m| memory(t, m, Some(raw.memory_capacity))),
        network: network(t, &raw.interfaces, raw.default_interface.as_deref()),
        fs: nodefs,
        runtime: imagefs.clone().map(|fs| RuntimeStats { image_fs: Some(fs.clone()), container_fs: Some(fs) }),
        rlimit: (raw.max_pid.is_some() || raw.processes.is_some()).then(|| RlimitStats {
            time: time_of(t),
            maxpid: raw.max_pid,
            curproc: raw.processes,
        }),
    };
    let pods = raw.pods.iter().map(|p| pod_stats(raw, p, previous)).collect();
    Summary { node, pods }
}

fn pod_stats(raw: &RawSample, p: &RawPod, previous: &CpuHistory) -> PodStats {
    let t = raw.time_ns;
    let rootfs_fs = raw.imagefs.map(|(fs, _, _)| fs).unwrap_or_default();
    let nodefs = raw.nodefs.unwrap_or_default();
    let containers: Vec<ContainerStats> = p
        .containers
        .iter()
        .map(|c| ContainerStats {
            name: c.name.clone(),
            start_time: time_of(c.created_ns),
            cpu: cpu(previous, &format!("container/{}", c.id), t, c.cpu_ns),
            memory: c.memory.as_ref().map(|m| memory(t, m, None)),
            rootfs: c.rootfs.map(|(bytes, inodes)| fs_stats(t, &rootfs_fs, bytes, inodes)),
            logs: Some(fs_stats(t, &nodefs, c.logs.0, c.logs.1)),
        })
        .collect();
    let pod_memory = p.cgroup.as_ref().and_then(|c| c.memory.clone()).or_else(|| {
        let ms: Vec<&host::CgroupMemory> = p.containers.iter().filter_map(|c| c.memory.as_ref()).collect();
        (!ms.is_empty()).then(|| host::CgroupMemory {
            usage: ms.iter().map(|m| m.usage).sum(),
            working_set: ms.iter().map(|m| m.working_set).sum(),
            rss: ms.iter().map(|m| m.rss).sum(),
            page_faults: ms.iter().map(|m| m.page_faults).sum(),
            major_page_faults: ms.iter().map(|m| m.major_page_faults).sum(),
        })
    });
    let volume: Vec<VolumeStats> =
        p.volumes.iter().map(|(name, bytes, inodes)| VolumeStats { fs: fs_stats(t, &nodefs, *bytes, *inodes), name: name.clone() }).collect();
    let ephemeral_bytes: u64 = p.containers.iter().map(|c| c.rootfs.map(|r| r.0).unwrap_or(0) + c.logs.0).sum::<u64>()
        + p.volumes.iter().map(|v| v.1).sum::<u64>();
    let ephemeral_inodes: u64 = p.containers.iter().map(|c| c.rootfs.map(|r| r.1).unwrap_or(0) + c.logs.1).sum::<u64>()
        + p.volumes.iter().map(|v| v.2).sum::<u64>();
    PodStats {
        pod_ref: PodReference { name: p.name.clone(), namespace: p.namespace.clone(), uid: p.uid.clone() },
        start_time: time_of(p.created_ns),
        containers,
        cpu: cpu(previous, &format!("pod/{}", p.uid), t, pod_cpu(p)),
        memory: pod_memory.as_ref().map(|m| memory(t, m, None)),
        network: network(t, &p.interfaces, Some("eth0")),
        volume,
        ephemeral_storage: Some(fs_stats(t, &nodefs, ephemeral_bytes, ephemeral_inodes)),
        process_stats: p.cgroup.as_ref().and_then(|c| c.processes).map(|n| ProcessStats { process_count: Some(n) }),
    }
}

/// The Summary cut to cpu and memory (`?only_cpu_and_memory=true`, upstream's
/// GetCPUAndMemoryStats): node, pods and containers keep only those.
pub fn only_cpu_and_memory(mut s: Summary) -> Summary {
    s.node.network = None;
    s.node.fs = None;
    s.node.runtime = None;
    s.node.rlimit = None;
    for p in &mut s.pods {
        p.network = None;
        p.volume.clear();
        p.ephemeral_storage = None;
        p.process_stats = None;
        for c in &mut p.containers {
            c.rootfs = None;
            c.logs = None;
        }
    }
    s
}

/// Where the sampler looks besides CRI.
#[derive(Debug, Clone)]
pub struct Paths {
    /// The kubelet's directory: its filesystem is nodefs.
    pub agent_dir: PathBuf,
    /// `<agent>/pods`: pod log directories (`<ns>_<name>_<uid>`) and volumes (`<uid>/volumes`).
    pub pods_dir: PathBuf,
}

fn value(v: &Option<api::UInt64Value>) -> Option<u64> {
    v.as_ref().map(|v| v.value)
}

/// Reads the node and every ready pod (IO: /proc, cgroups, statvfs, CRI).
pub async fn collect(cri: &Cri, node_name: &str, paths: &Paths) -> anyhow::Result<RawSample> {
    let read = |p: &str| std::fs::read_to_string(p).unwrap_or_default();
    let time_ns = crate::clock::now_nanos();
    let root = host::read_cgroup("");
    let node_cpu_ns = root.cpu_ns.or_else(|| host::proc_stat_cpu_ns(&read("/proc/stat"), 100));
    let mut runtime = cri.runtime.clone();
    let mut image = cri.image.clone();
    let imagefs = match image.image_fs_info(api::ImageFsInfoRequest {}).await {
        Ok(r) => r.into_inner().image_filesystems.into_iter().next().and_then(|u| {
            let mount = u.fs_id.map(|f| f.mountpoint)?;
            Some((host::statvfs(Path::new(&mount))?, value(&u.used_bytes).unwrap_or(0), value(&u.inodes_used).unwrap_or(0)))
        }),
        Err(e) => {
            tracing::debug!(error = %e.message(), "ImageFsInfo failed");
            None
        }
    };
    let ready = api::PodSandboxFilter {
        state: Some(api::PodSandboxStateValue { state: api::PodSandboxState::SandboxReady as i32 }),
        ..Default::default()
    };
    let sandboxes = runtime.list_pod_sandbox(api::ListPodSandboxRequest { filter: Some(ready) }).await?.into_inner().items;
    let running = api::ContainerFilter {
        state: Some(api::ContainerStateValue { state: api::ContainerState::ContainerRunning as i32 }),
        ..Default::default()
    };
    let containers = runtime.list_containers(api::ListContainersRequest { filter: Some(running) }).await?.into_inner().containers;
    let stats: HashMap<String, api::ContainerStats> = runtime
        .list_container_stats(api::ListContainerStatsRequest::default())
        .await?
        .into_inner()
        .stats
        .into_iter()
        .filter_map(|s| Some((s.attributes.as_ref()?.id.clone(), s)))
        .collect();
    let mut pods = Vec::new();
    for sandbox in &sandboxes {
        let Some(meta) = &sandbox.metadata else { continue };
        let uid = sandbox.labels.get(LABEL_POD_UID).cloned().unwrap_or_else(|| meta.uid.clone());
        let cgroup_path = ["Guaranteed", "Burstable", "BestEffort"].iter().map(|q| cgroup_parent(q, &uid)).find(|p| host::cgroup_exists(p));
        let pid = sandbox_pid(cri, &sandbox.id).await;
        let host_network = pid.as_ref().is_some_and(|pid| same_netns(pid));
        let interfaces = match (&pid, host_network) {
            (Some(pid), false) => host::interfaces(pid),
            _ => Vec::new(),
        };
        let log_dir = paths.pods_dir.join(format!("{}_{}_{uid}", meta.namespace, meta.name));
        let raw_containers = containers
            .iter()
            .filter(|c| c.pod_sandbox_id == sandbox.id)
            .map(|c| {
                let name = c.labels.get(LABEL_CONTAINER_NAME).cloned().or_else(|| c.metadata.as_ref().map(|m| m.name.clone())).unwrap_or_default();
                let s = stats.get(&c.id);
                let cri_cpu = s.and_then(|s| s.cpu.as_ref()).and_then(|c| value(&c.usage_core_nano_seconds));
                let cri_ws = s.and_then(|s| s.memory.as_ref()).and_then(|m| value(&m.working_set_bytes));
                let cg = cgroup_path.as_ref().map(|p| host::read_cgroup(&format!("{p}/{}", c.id)));
                let mut mem = cg.as_ref().and_then(|g| g.memory.clone());
                match (&mut mem, cri_ws) {
                    (Some(m), Some(ws)) => m.working_set = ws,
                    (None, Some(ws)) => mem = Some(host::CgroupMemory { usage: ws, working_set: ws, ..Default::default() }),
                    _ => {}
                }
                let rootfs = s.and_then(|s| s.writable_layer.as_ref()).map(|w| (value(&w.used_bytes).unwrap_or(0), value(&w.inodes_used).unwrap_or(0)));
                RawContainer {
                    id: c.id.clone(),
                    name: name.clone(),
                    created_ns: c.created_at,
                    cpu_ns: cri_cpu.or_else(|| cg.as_ref().and_then(|g| g.cpu_ns)),
                    memory: mem,
                    rootfs,
                    logs: host::disk_usage(&log_dir.join(&name), MAX_WALK),
                }
            })
            .collect();
        let volumes_dir = crate::volumes::pod_dir(&paths.pods_dir, &uid).join("volumes").join(crate::volumes::PLUGIN_EMPTY_DIR);
        let volumes = std::fs::read_dir(&volumes_dir)
            .map(|entries| {
                entries
                    .flatten()
                    .map(|e| {
                        let (bytes, inodes) = host::disk_usage(&e.path(), MAX_WALK);
                        (e.file_name().to_string_lossy().into_owned(), bytes, inodes)
                    })
                    .collect()
            })
            .unwrap_or_default();
        pods.push(RawPod {
            name: meta.name.clone(),
            namespace: meta.namespace.clone(),
            uid: uid.clone(),
            created_ns: sandbox.created_at,
            cgroup: cgroup_path.map(|p| host::read_cgroup(&p)),
            interfaces,
            volumes,
            containers: raw_containers,
        });
    }
    pods.sort_by(|a, b| (&a.namespace, &a.name).cmp(&(&b.namespace, &b.name)));
    Ok(RawSample {
        time_ns,
        node_name: node_name.to_owned(),
        boot_time: host::boot_time(&read("/proc/stat")),
        node_cpu_ns,
        node_memory: root.memory,
        memory_capacity: host::mem_total(&read("/proc/meminfo")).unwrap_or(0),
        interfaces: host::interfaces("self"),
        default_interface: host::default_route_interface(&read("/proc/net/route")),
        nodefs: host::statvfs(&paths.agent_dir),
        imagefs,
        max_pid: read("/proc/sys/kernel/pid_max").trim().parse().ok(),
        processes: host::proc_count(&read("/proc/loadavg")),
        pods,
    })
}

/// Whether `pid` shares the kubelet's network namespace (a hostNetwork pod).
fn same_netns(pid: &str) -> bool {
    let ours = std::fs::read_link("/proc/self/ns/net");
    let theirs = std::fs::read_link(format!("/proc/{pid}/ns/net"));
    matches!((ours, theirs), (Ok(a), Ok(b)) if a == b)
}

/// The pid of a sandbox's process, from containerd's verbose PodSandboxStatus (`info.pid`).
async fn sandbox_pid(cri: &Cri, id: &str) -> Option<String> {
    let mut runtime = cri.runtime.clone();
    let request = api::PodSandboxStatusRequest { pod_sandbox_id: id.into(), verbose: true };
    let info = runtime.pod_sandbox_status(request).await.ok()?.into_inner().info;
    let parsed: serde_json::Value = serde_json::from_str(info.get("info")?).ok()?;
    parsed.get("pid").and_then(|p| p.as_u64()).filter(|p| *p > 0).map(|p| p.to_string())
}

/// A sample and its Summary.
pub type Latest = Arc<(RawSample, Summary)>;

/// The latest Summary, shared by the server, the eviction manager and image GC.
#[derive(Clone, Default)]
pub struct Stats {
    latest: Arc<Mutex<Option<Latest>>>,
}

impl Stats {
    /// The latest sample and its Summary, if one was taken.
    pub fn latest(&self) -> Option<Latest> {
        self.latest.lock().expect("stats lock is never poisoned").clone()
    }

    fn set(&self, v: Latest) {
        *self.latest.lock().expect("stats lock is never poisoned") = Some(v);
    }
}

/// Takes a sample every `interval` until `shutdown`, publishing each Summary in `stats`
/// (and on `updates`, for the eviction manager).
pub struct Sampler {
    pub cri: Cri,
    pub node_name: String,
    pub paths: Paths,
    pub interval: Duration,
    pub stats: Stats,
    /// Told of every sample (pod start durations).
    pub metrics: Option<Arc<crate::metrics::KubeletMetrics>>,
}

impl Sampler {
    pub async fn run(self, shutdown: CancellationToken) {
        let mut history = CpuHistory::new();
        let mut tick = tokio::time::interval(self.interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tick.tick() => {}
            }
            match collect(&self.cri, &self.node_name, &self.paths).await {
                Ok(raw) => {
                    let summary = assemble(&raw, &history);
                    history = cpu_history(&raw);
                    if let Some(m) = &self.metrics {
                        m.observe_sample(&raw);
                    }
                    self.stats.set(Arc::new((raw, summary)));
                }
                Err(e) => tracing::warn!(error = %format!("{e:#}"), "taking a stats sample failed"),
            }
        }
    }
}

#[cfg(test)]
mod tests;
