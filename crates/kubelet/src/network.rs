//! The pod network of a node: the CNI config containerd uses, and the egress guard.
//!
//! Pods join the bridge `rkube0` through the reference CNI plugins (Debian's
//! `containernetworking-plugins`): `bridge` (gateway on the bridge, masquerade for traffic
//! leaving the pod subnet, hairpin so a pod reaches itself through a Service), `host-local`
//! IPAM over the node's podCIDR with its state under the agent dir, and `portmap` for
//! `hostPort`. containerd brings `lo` up itself, so the conflist has no `loopback` entry.
//!
//! The **egress guard** is DESIGN.md's network-safety rule: the chain `RKUBE-EGRESS-GUARD`,
//! jumped to first from filter `OUTPUT` and `FORWARD`, returns packets that leave through an
//! interface rkube made (`lo`, `rkube0` — pod veths are bridge ports, so bridged and routed
//! pod traffic both leave "out rkube0" —, and any extra link named in [`EgressGuard`]) and
//! REJECTs every other packet towards the cluster or service CIDR. Packets to a ClusterIP are
//! DNATed in `nat PREROUTING/OUTPUT`, before the filter table, so Services keep working; a
//! packet for an unknown cluster address is refused on this machine instead of following the
//! default route out of it. Rules are applied with one `iptables-restore --noflush`
//! transaction computed from the current ruleset (pure, unit-tested), so installing twice
//! leaves one set of rules and there is never a moment without the guard once it is in.
//!
//! Bridge netfilter: kube-proxy's DNAT must see pod-to-pod traffic that crosses `rkube0`,
//! which needs `br_netfilter` (`net.bridge.bridge-nf-call-iptables = 1`). There is no modprobe
//! on these machines (notes/containerd-cri-here.md); the module is built in and the sysctl is
//! 1 by default in every namespace, so [`ensure_bridge_netfilter`] only checks it and sets it
//! to 1 if someone turned it off, failing with a clear message when the module is absent.

use std::ffi::OsString;
use std::io::Write;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::Context;

/// The bridge every pod of the node is attached to.
pub const BRIDGE: &str = "rkube0";
/// The CNI network name (also the host-local state subdirectory).
pub const NETWORK_NAME: &str = "rkube";
/// The conflist file containerd reads (the first in lexical order wins: hence `10-`).
pub const CONFLIST_FILE: &str = "10-rkube.conflist";
/// The guard chain in the filter table.
pub const GUARD_CHAIN: &str = "RKUBE-EGRESS-GUARD";
/// The filter-table chains the guard is hooked into (first rule of each).
const GUARD_HOOKS: [&str; 2] = ["OUTPUT", "FORWARD"];

/// Where host-local keeps its allocations for a node whose rkube data dir is `data_dir`
/// (`<data-dir>/agent/cni/networks`; the network's own state is in `rkube/` below it).
pub fn ipam_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("agent").join("cni").join("networks")
}

/// An IPv4 CIDR, validated (`10.42.0.0/24`); the address is the network address.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cidr {
    pub addr: Ipv4Addr,
    pub prefix: u8,
}

impl std::str::FromStr for Cidr {
    type Err = anyhow::Error;
    fn from_str(s: &str) -> anyhow::Result<Cidr> {
        let (addr, prefix) = s
            .split_once('/')
            .with_context(|| format!("{s:?} is not a CIDR (want a.b.c.d/n)"))?;
        let addr: Ipv4Addr = addr
            .parse()
            .with_context(|| format!("{s:?} is not an IPv4 CIDR"))?;
        let prefix: u8 = prefix
            .parse()
            .ok()
            .filter(|p| *p <= 32)
            .with_context(|| format!("{s:?} has a bad prefix length"))?;
        let mask = if prefix == 0 {
            0
        } else {
            u32::MAX << (32 - prefix)
        };
        Ok(Cidr {
            addr: Ipv4Addr::from(u32::from(addr) & mask),
            prefix,
        })
    }
}

impl std::fmt::Display for Cidr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

/// The CNI conflist for a node with pod CIDR `pod_cidr` (pure).
pub fn cni_conflist(pod_cidr: Cidr, ipam_dir: &Path) -> serde_json::Value {
    serde_json::json!({
        "cniVersion": "1.0.0",
        "name": NETWORK_NAME,
        "plugins": [
            {
                "type": "bridge",
                "bridge": BRIDGE,
                "isGateway": true,
                "ipMasq": true,
                "hairpinMode": true,
                "ipam": {
                    "type": "host-local",
                    "ranges": [[{"subnet": pod_cidr.to_string()}]],
                    "routes": [{"dst": "0.0.0.0/0"}],
                    "dataDir": ipam_dir.display().to_string(),
                },
            },
            {"type": "portmap", "capabilities": {"portMappings": true}},
        ],
    })
}

/// Writes the node's CNI conflist into `conf_dir` (created if missing) for pod CIDR
/// `pod_cidr` (`10.42.0.0/24`); host-local keeps its state in [`ipam_dir`]`(data_dir)`, where
/// `data_dir` is rkube's `--data-dir`. The file is written in place, not renamed into the
/// directory: containerd 1.6 reloads CNI config on a write event only. Unchanged content is
/// not rewritten. Any other `*.conflist`/`*.conf` in `conf_dir` is removed, since containerd
/// uses only the first one in lexical order.
pub fn write_cni_config(conf_dir: &Path, pod_cidr: &str, data_dir: &Path) -> anyhow::Result<()> {
    let cidr: Cidr = pod_cidr.parse().context("invalid pod CIDR")?;
    std::fs::create_dir_all(conf_dir)
        .with_context(|| format!("cannot create {}", conf_dir.display()))?;
    let mut text = serde_json::to_string_pretty(&cni_conflist(cidr, &ipam_dir(data_dir)))
        .expect("json serializes");
    text.push('\n');
    let path = conf_dir.join(CONFLIST_FILE);
    for entry in std::fs::read_dir(conf_dir)
        .with_context(|| format!("cannot read {}", conf_dir.display()))?
    {
        let other = entry?.path();
        let is_cni = matches!(
            other.extension().and_then(|e| e.to_str()),
            Some("conflist" | "conf" | "json")
        );
        if is_cni && other != path {
            std::fs::remove_file(&other)
                .with_context(|| format!("cannot remove {}", other.display()))?;
        }
    }
    if std::fs::read_to_string(&path).is_ok_and(|old| old == text) {
        return Ok(());
    }
    std::fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))
}

/// Runs the network commands (`iptables*`, `sysctl`, `ip`) on the host, or inside a named
/// network namespace through `ip netns exec` (tests).
#[derive(Clone, Debug, Default)]
pub struct NetCommands {
    netns: Option<String>,
}

impl NetCommands {
    /// Commands in rkube's own (the host's) network namespace.
    pub fn host() -> NetCommands {
        NetCommands { netns: None }
    }

    /// Commands inside the network namespace `/run/netns/<name>`.
    pub fn in_netns(name: &str) -> NetCommands {
        NetCommands {
            netns: Some(name.to_owned()),
        }
    }

    /// A command for `program` in this namespace.
    pub fn command(&self, program: &str) -> Command {
        match &self.netns {
            None => Command::new(program),
            Some(ns) => {
                let mut command = Command::new("ip");
                command.args([
                    OsString::from("netns"),
                    "exec".into(),
                    ns.into(),
                    program.into(),
                ]);
                command
            }
        }
    }

    /// Runs `program args`, feeding `stdin`; returns stdout, or an error with stderr.
    pub fn run(&self, program: &str, args: &[&str], stdin: Option<&str>) -> anyhow::Result<String> {
        let mut command = self.command(program);
        command
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        command.stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        });
        let mut child = command
            .spawn()
            .with_context(|| format!("cannot run {program}"))?;
        if let Some(input) = stdin {
            let mut pipe = child.stdin.take().expect("stdin is piped");
            pipe.write_all(input.as_bytes())
                .with_context(|| format!("cannot write to {program}"))?;
        }
        let output = child
            .wait_with_output()
            .with_context(|| format!("cannot wait for {program}"))?;
        if !output.status.success() {
            anyhow::bail!(
                "{program} {} failed ({}): {}",
                args.join(" "),
                output.status,
                String::from_utf8_lossy(&output.stderr).trim()
            );
        }
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    }
}

/// What the egress guard protects and which interfaces may carry it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EgressGuard {
    /// Destinations that must never leave the machine (cluster and service CIDRs).
    pub cidrs: Vec<Cidr>,
    /// Out-interfaces allowed to carry them: `lo`, [`BRIDGE`], and links rkube made.
    pub interfaces: Vec<String>,
}

impl EgressGuard {
    /// The guard for `cluster_cidr` and `service_cidr` (`10.42.0.0/16`, `10.43.0.0/16`)
    /// allowing `lo` and `rkube0`.
    pub fn new(cluster_cidr: &str, service_cidr: &str) -> anyhow::Result<EgressGuard> {
        Ok(EgressGuard {
            cidrs: vec![
                cluster_cidr.parse().context("invalid cluster CIDR")?,
                service_cidr.parse().context("invalid service CIDR")?,
            ],
            interfaces: vec!["lo".into(), BRIDGE.into()],
        })
    }

    /// Also allows `interface` (a link rkube itself created, for example to a test host).
    pub fn allow_interface(mut self, interface: &str) -> anyhow::Result<EgressGuard> {
        anyhow::ensure!(
            valid_interface_name(interface),
            "invalid interface name {interface:?}"
        );
        self.interfaces.push(interface.to_owned());
        Ok(self)
    }
}

/// Linux interface names: 1–15 bytes, no '/', ':', whitespace (nothing to escape in rules).
fn valid_interface_name(name: &str) -> bool {
    (1..16).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'@'))
}

/// The positions (1-based) of the jumps to [`GUARD_CHAIN`] in `chain`, from `iptables-save`
/// output of the filter table.
fn guard_jump_positions(saved: &str, chain: &str) -> Vec<usize> {
    let prefix = format!("-A {chain} ");
    let jump = format!("-A {chain} -j {GUARD_CHAIN}");
    saved
        .lines()
        .filter(|line| line.starts_with(&prefix))
        .enumerate()
        .filter(|(_, line)| line.trim_end() == jump)
        .map(|(i, _)| i + 1)
        .collect()
}

/// Whether `iptables-save -t filter` output already has the chain.
fn has_guard_chain(saved: &str) -> bool {
    saved
        .lines()
        .any(|line| line.split_whitespace().next() == Some(&format!(":{GUARD_CHAIN}")))
}

/// Hook rules that keep exactly one jump to the guard, at position 1 of each hook chain.
/// Rules are deleted by specification, not number, so a rule another program adds between
/// our save and restore cannot shift the wrong rule out.
fn hook_rules(saved: &str, out: &mut String) {
    for hook in GUARD_HOOKS {
        let positions = guard_jump_positions(saved, hook);
        if positions == [1] {
            continue;
        }
        for _ in &positions {
            out.push_str(&format!("-D {hook} -j {GUARD_CHAIN}\n"));
        }
        out.push_str(&format!("-I {hook} 1 -j {GUARD_CHAIN}\n"));
    }
}

/// The `iptables-restore --noflush` input that installs `guard` over the current filter
/// table `saved` (pure). Declaring the chain flushes it, so the rules are replaced, not added.
pub fn guard_restore(guard: &EgressGuard, saved: &str) -> String {
    let mut out = String::from("*filter\n");
    out.push_str(&format!(":{GUARD_CHAIN} - [0:0]\n"));
    for interface in &guard.interfaces {
        out.push_str(&format!("-A {GUARD_CHAIN} -o {interface} -j RETURN\n"));
    }
    for cidr in &guard.cidrs {
        out.push_str(&format!(
            "-A {GUARD_CHAIN} -d {cidr} -m comment --comment \"rkube egress guard: cluster traffic stays on this machine\" -j REJECT --reject-with icmp-port-unreachable\n"
        ));
    }
    hook_rules(saved, &mut out);
    out.push_str("COMMIT\n");
    out
}

/// The `iptables-restore --noflush` input that removes the guard from `saved`, or `None`
/// when there is nothing to remove (pure).
pub fn guard_removal(saved: &str) -> Option<String> {
    let mut out = String::from("*filter\n");
    let mut any = false;
    for hook in GUARD_HOOKS {
        for _ in guard_jump_positions(saved, hook) {
            out.push_str(&format!("-D {hook} -j {GUARD_CHAIN}\n"));
            any = true;
        }
    }
    if has_guard_chain(saved) {
        out.push_str(&format!("-F {GUARD_CHAIN}\n-X {GUARD_CHAIN}\n"));
        any = true;
    }
    out.push_str("COMMIT\n");
    any.then_some(out)
}

fn save_filter(commands: &NetCommands) -> anyhow::Result<String> {
    commands.run("iptables-save", &["-t", "filter"], None)
}

fn restore(commands: &NetCommands, text: &str) -> anyhow::Result<()> {
    commands
        .run("iptables-restore", &["--noflush", "-w", "5"], Some(text))
        .map(drop)
        .with_context(|| format!("cannot apply iptables rules:\n{text}"))
}

/// Installs (or refreshes) the egress guard in the namespace of `commands`; idempotent. Call
/// it before the first pod starts, and again whenever it may have been flushed. Blocking
/// (runs `iptables-save`/`iptables-restore`); also checks bridge netfilter.
pub fn install_egress_guard(commands: &NetCommands, guard: &EgressGuard) -> anyhow::Result<()> {
    anyhow::ensure!(
        !guard.cidrs.is_empty(),
        "the egress guard needs at least one CIDR"
    );
    for interface in &guard.interfaces {
        anyhow::ensure!(
            valid_interface_name(interface),
            "invalid interface name {interface:?}"
        );
    }
    ensure_bridge_netfilter(commands)?;
    // A second try covers a hook rule another program removed between save and restore.
    let saved = save_filter(commands)?;
    if restore(commands, &guard_restore(guard, &saved)).is_ok() {
        return Ok(());
    }
    let saved = save_filter(commands)?;
    restore(commands, &guard_restore(guard, &saved))
}

/// Removes the egress guard (hooks and chain) from the namespace of `commands`; idempotent.
pub fn remove_egress_guard(commands: &NetCommands) -> anyhow::Result<()> {
    let saved = save_filter(commands)?;
    match guard_removal(&saved) {
        Some(text) => restore(commands, &text),
        None => Ok(()),
    }
}

/// Makes sure bridged pod traffic goes through iptables (`br_netfilter`), so kube-proxy's
/// DNAT applies between pods on one bridge and the guard sees forwarded pod traffic.
pub fn ensure_bridge_netfilter(commands: &NetCommands) -> anyhow::Result<()> {
    const KEY: &str = "net.bridge.bridge-nf-call-iptables";
    let value = commands.run("sysctl", &["-n", KEY], None).with_context(|| {
        format!("{KEY} is missing: the kernel lacks br_netfilter (load it; rkube does not run modprobe)")
    })?;
    if value.trim() != "1" {
        commands.run("sysctl", &["-q", "-w", &format!("{KEY}=1")], None)?;
    }
    Ok(())
}

#[cfg(test)]
#[path = "network_tests.rs"]
mod tests;
