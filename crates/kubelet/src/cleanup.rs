//! `rkube killall`: takes down everything one node's agent set up, like k3s-killall.sh, but
//! scoped to one data dir so other containerds (and other rkube nodes' runtimes) on the
//! machine are left alone. Idempotent: running it twice, or on a clean machine, is fine.
//!
//! In order: every pod sandbox is stopped and removed through CRI if the node's containerd
//! answers (this also runs the CNI DEL of each pod); shims still serving that containerd
//! (found by their `-address <socket>` argument) are killed with their containers; that
//! containerd is stopped (the process whose command line names its config file); mounts under
//! the data dir are detached; then the network: the `rkube0` bridge, the egress guard, the
//! iptables rules the bridge and portmap plugins made for the `rkube` network (identified by
//! their `name: "rkube"` comments; shared `CNI-HOSTPORT-*` chains only once no other network
//! uses them), host-local's allocations, and containerd's CNI result cache for our sandboxes.

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;

use crate::containerd::Layout;
use crate::cri::{api, Cri};
use crate::network::{self, NetCommands, BRIDGE, NETWORK_NAME};

/// What killall works on.
#[derive(Clone, Debug)]
pub struct Cleanup {
    /// rkube's `--data-dir` (the agent's files are under `<data_dir>/agent`).
    pub data_dir: PathBuf,
    /// Where the network pieces live: the host, or a test's network namespace.
    pub net: NetCommands,
    /// How long containerd gets to exit on SIGTERM before SIGKILL.
    pub grace: Duration,
}

/// What killall did (for the CLI to print).
#[derive(Debug, Default)]
pub struct Report {
    pub sandboxes_removed: usize,
    pub processes_killed: usize,
    pub containerd_stopped: bool,
    pub unmounted: usize,
}

impl Cleanup {
    /// Killall for the node whose data dir is `data_dir`, on the host network.
    pub fn new(data_dir: &Path) -> Cleanup {
        Cleanup {
            data_dir: data_dir.to_owned(),
            net: NetCommands::host(),
            grace: Duration::from_secs(10),
        }
    }

    fn layout(&self) -> Layout {
        Layout::new(&self.data_dir.join("agent"))
    }

    /// Runs every step; a failing step does not stop the later ones, and the first error is
    /// returned at the end.
    pub async fn run(&self) -> anyhow::Result<Report> {
        let mut report = Report::default();
        let mut errors: Vec<anyhow::Error> = Vec::new();
        let layout = self.layout();
        // Sandbox ids before anything disappears: for the CNI result cache below.
        let sandbox_ids = task_ids(&layout);
        match remove_sandboxes(&layout.socket()).await {
            Ok(n) => report.sandboxes_removed = n,
            Err(e) => errors.push(e),
        }
        report.processes_killed = kill_shims(&layout.socket());
        match stop_containerd(&layout.config(), self.grace).await {
            Ok(stopped) => report.containerd_stopped = stopped,
            Err(e) => errors.push(e),
        }
        match unmount_under(&self.data_dir) {
            Ok(n) => report.unmounted = n,
            Err(e) => errors.push(e),
        }
        if let Err(e) = self.clean_network(&sandbox_ids) {
            errors.push(e);
        }
        match errors.into_iter().next() {
            Some(e) => Err(e),
            None => Ok(report),
        }
    }

    /// The network part alone: bridge, guard, CNI iptables rules, IPAM and result cache.
    pub fn clean_network(&self, sandbox_ids: &BTreeSet<String>) -> anyhow::Result<()> {
        let links = self.net.run("ip", &["-o", "link", "show"], None)?;
        if links
            .lines()
            .any(|l| l.split(':').nth(1).map(str::trim) == Some(BRIDGE))
        {
            self.net.run("ip", &["link", "delete", BRIDGE], None)?;
        }
        network::remove_egress_guard(&self.net)?;
        let saved = self.net.run("iptables-save", &["-t", "nat"], None)?;
        if let Some(text) = cni_nat_cleanup(&saved, NETWORK_NAME) {
            self.net
                .run("iptables-restore", &["--noflush", "-w", "5"], Some(&text))
                .with_context(|| format!("cannot remove CNI rules:\n{text}"))?;
        }
        let ipam = network::ipam_dir(&self.data_dir).join(NETWORK_NAME);
        if ipam.exists() {
            std::fs::remove_dir_all(&ipam)
                .with_context(|| format!("cannot remove {}", ipam.display()))?;
        }
        // containerd's libcni cache: /var/lib/cni/results/<network>-<sandbox id>-<ifname>.
        if let Ok(entries) = std::fs::read_dir("/var/lib/cni/results") {
            for entry in entries.flatten() {
                let name = entry.file_name().to_string_lossy().into_owned();
                let ours = name
                    .strip_prefix(&format!("{NETWORK_NAME}-"))
                    .is_some_and(|rest| {
                        sandbox_ids
                            .iter()
                            .any(|id| rest.starts_with(&format!("{id}-")))
                    });
                if ours {
                    let _ = std::fs::remove_file(entry.path());
                }
            }
        }
        Ok(())
    }
}

/// Ids of the tasks (sandboxes and containers) containerd's runc v2 runtime has state for.
fn task_ids(layout: &Layout) -> BTreeSet<String> {
    let dir = layout
        .state()
        .join("io.containerd.runtime.v2.task")
        .join("k8s.io");
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// Stops and removes every pod sandbox through CRI (containers go with their sandbox);
/// nothing to do when no containerd answers on `socket`.
async fn remove_sandboxes(socket: &Path) -> anyhow::Result<usize> {
    if !socket.exists() {
        return Ok(0);
    }
    let Ok(cri) = Cri::connect(&socket.display().to_string()).await else {
        return Ok(0);
    };
    let mut runtime = cri.runtime.clone();
    let Ok(listed) = tokio::time::timeout(
        Duration::from_secs(10),
        runtime.list_pod_sandbox(api::ListPodSandboxRequest { filter: None }),
    )
    .await
    else {
        return Ok(0);
    };
    let Ok(listed) = listed else {
        return Ok(0);
    };
    let mut removed = 0;
    for sandbox in listed.into_inner().items {
        let id = sandbox.id;
        runtime
            .stop_pod_sandbox(api::StopPodSandboxRequest {
                pod_sandbox_id: id.clone(),
            })
            .await
            .with_context(|| format!("cannot stop pod sandbox {id}"))?;
        runtime
            .remove_pod_sandbox(api::RemovePodSandboxRequest {
                pod_sandbox_id: id.clone(),
            })
            .await
            .with_context(|| format!("cannot remove pod sandbox {id}"))?;
        removed += 1;
    }
    Ok(removed)
}

/// One process from /proc: pid, parent, argv.
struct Process {
    pid: i32,
    ppid: i32,
    argv: Vec<String>,
}

fn processes() -> Vec<Process> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter_map(|pid| {
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
            // stat: "pid (comm) state ppid ..."; comm may hold spaces and parentheses.
            let ppid = stat
                .rsplit_once(')')?
                .1
                .split_whitespace()
                .nth(1)?
                .parse()
                .ok()?;
            let argv = cmdline
                .split(|&b| b == 0)
                .filter(|a| !a.is_empty())
                .map(|a| String::from_utf8_lossy(a).into_owned())
                .collect();
            Some(Process { pid, ppid, argv })
        })
        .collect()
}

fn signal(pid: i32, signal: libc::c_int) {
    // SAFETY: kill(2) takes plain integers; a stale pid at worst yields ESRCH.
    unsafe { libc::kill(pid, signal) };
}

/// Whether `argv` is a containerd shim serving the containerd at `socket`.
fn is_shim_of(argv: &[String], socket: &str) -> bool {
    let is_shim = argv.first().is_some_and(|a| {
        a.rsplit('/')
            .next()
            .unwrap_or(a)
            .starts_with("containerd-shim")
    });
    is_shim
        && argv
            .windows(2)
            .any(|w| w[0] == "-address" && w[1] == socket)
}

/// Kills the shims of the containerd at `socket` and every process below them (the
/// containers), children first; returns how many processes were signalled.
fn kill_shims(socket: &Path) -> usize {
    let socket = socket.display().to_string();
    let all = processes();
    let mut children: HashMap<i32, Vec<i32>> = HashMap::new();
    for p in &all {
        children.entry(p.ppid).or_default().push(p.pid);
    }
    let mut killed = 0;
    for shim in all.iter().filter(|p| is_shim_of(&p.argv, &socket)) {
        let mut below = Vec::new();
        let mut stack = vec![shim.pid];
        while let Some(pid) = stack.pop() {
            for &child in children.get(&pid).map(Vec::as_slice).unwrap_or_default() {
                below.push(child);
                stack.push(child);
            }
        }
        for &pid in below.iter().rev() {
            signal(pid, libc::SIGKILL);
            killed += 1;
        }
        signal(shim.pid, libc::SIGKILL);
        killed += 1;
    }
    killed
}

/// Stops the containerd started with `-c <config>`: SIGTERM, then SIGKILL after `grace`.
/// Returns whether one was running.
async fn stop_containerd(config: &Path, grace: Duration) -> anyhow::Result<bool> {
    let config = config.display().to_string();
    let is_ours = |p: &Process| {
        p.argv
            .first()
            .is_some_and(|a| a.rsplit('/').next() == Some("containerd"))
            && p.argv
                .windows(2)
                .any(|w| (w[0] == "-c" || w[0] == "--config") && w[1] == config)
    };
    let pids: Vec<i32> = processes()
        .iter()
        .filter(|p| is_ours(p))
        .map(|p| p.pid)
        .collect();
    if pids.is_empty() {
        return Ok(false);
    }
    for &pid in &pids {
        signal(pid, libc::SIGTERM);
    }
    let deadline = tokio::time::Instant::now() + grace;
    let alive = |pid: i32| {
        Path::new(&format!("/proc/{pid}")).exists()
            && processes().iter().any(|p| p.pid == pid && is_ours(p))
    };
    while pids.iter().any(|&pid| alive(pid)) {
        if tokio::time::Instant::now() > deadline {
            for &pid in &pids {
                signal(pid, libc::SIGKILL);
            }
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(true)
}

/// Mount points under `dir` from /proc/self/mountinfo, deepest first (pure over the text).
fn mounts_under(mountinfo: &str, dir: &Path) -> Vec<PathBuf> {
    let mut found: Vec<PathBuf> = mountinfo
        .lines()
        .filter_map(|line| line.split(' ').nth(4))
        .map(unescape_mount_path)
        .map(PathBuf::from)
        .filter(|p| p.starts_with(dir) && p != dir)
        .collect();
    found.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
    found.dedup();
    found
}

/// mountinfo escapes space, tab, newline and backslash as `\ooo`.
fn unescape_mount_path(raw: &str) -> String {
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\' && i + 4 <= bytes.len() {
            if let Ok(value) = u8::from_str_radix(&raw[i + 1..i + 4], 8) {
                out.push(value);
                i += 4;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Lazily unmounts everything mounted under `dir` (rootfs overlays, netns and shm mounts).
fn unmount_under(dir: &Path) -> anyhow::Result<usize> {
    let Ok(dir) = dir.canonicalize() else {
        return Ok(0);
    };
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo")
        .context("cannot read /proc/self/mountinfo")?;
    let mut count = 0;
    for mount in mounts_under(&mountinfo, &dir) {
        let status = std::process::Command::new("umount")
            .arg("-l")
            .arg(&mount)
            .status()
            .context("cannot run umount")?;
        if status.success() {
            count += 1;
        }
    }
    Ok(count)
}

/// The `iptables-restore --noflush` input that removes the nat rules the CNI bridge and
/// portmap plugins made for `network` (pure): rules whose comment names the network, the
/// per-container `CNI-*` chains they jump to, and the shared `CNI-HOSTPORT-*` chains once no
/// other network has a port mapping left in them. `None` when there is nothing to do.
pub fn cni_nat_cleanup(saved: &str, network: &str) -> Option<String> {
    let marker = format!("name: \\\"{network}\\\"");
    let rules: Vec<&str> = saved.lines().filter(|l| l.starts_with("-A ")).collect();
    let chains: BTreeSet<&str> = saved
        .lines()
        .filter_map(|l| l.strip_prefix(':')?.split_whitespace().next())
        .collect();
    let target = |rule: &str| -> Option<String> {
        let mut words = rule.split_whitespace();
        while let Some(w) = words.next() {
            if w == "-j" || w == "-g" {
                return words.next().map(str::to_owned);
            }
        }
        None
    };
    let ours: Vec<&str> = rules
        .iter()
        .copied()
        .filter(|r| r.contains(&marker))
        .collect();
    let dropped_chains: BTreeSet<String> = ours
        .iter()
        .filter_map(|r| target(r))
        .filter(|t| {
            t.starts_with("CNI-") && !t.starts_with("CNI-HOSTPORT-") && chains.contains(t.as_str())
        })
        .collect();
    let chain_of = |rule: &str| {
        rule.split_whitespace()
            .nth(1)
            .unwrap_or_default()
            .to_owned()
    };
    // Rules left in CNI-HOSTPORT-DNAT after ours go: another network still maps ports.
    let hostport_in_use = rules.iter().any(|r| {
        chain_of(r) == "CNI-HOSTPORT-DNAT"
            && !r.contains(&marker)
            && !dropped_chains.contains(&target(r).unwrap_or_default())
    });
    let shared: BTreeSet<String> = if hostport_in_use {
        BTreeSet::new()
    } else {
        chains
            .iter()
            .filter(|c| c.starts_with("CNI-HOSTPORT-"))
            .map(|c| (*c).to_owned())
            .collect()
    };
    let removed_chains: BTreeSet<&String> = dropped_chains.iter().chain(shared.iter()).collect();
    let mut out = String::from("*nat\n");
    let mut any = false;
    for rule in &rules {
        let chain = chain_of(rule);
        if removed_chains.iter().any(|c| **c == chain) {
            continue; // flushed with its chain below
        }
        let jumps_to_removed =
            target(rule).is_some_and(|t| removed_chains.iter().any(|c| **c == t));
        if rule.contains(&marker) || jumps_to_removed {
            out.push_str(&format!("-D {}\n", &rule[3..]));
            any = true;
        }
    }
    for chain in &removed_chains {
        out.push_str(&format!("-F {chain}\n"));
    }
    for chain in &removed_chains {
        out.push_str(&format!("-X {chain}\n"));
        any = true;
    }
    out.push_str("COMMIT\n");
    any.then_some(out)
}

#[cfg(test)]
#[path = "cleanup_tests.rs"]
mod tests;
