//! A small network lab in namespaces the test creates: a "node" with the bridge `rkube0`, a
//! "pod" attached to it by a veth, and an "outside" host behind an uplink veth that answers
//! for cluster and service addresses routed to it — the leak the egress guard must stop.
//! Nothing is done in the host namespace; dropping the lab deletes the namespaces (and with
//! them every link and rule in them).

use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};

use anyhow::Context;

static NEXT: AtomicUsize = AtomicUsize::new(0);

/// The result of one `ping -c1 -W1`.
#[derive(Debug, PartialEq, Eq)]
pub enum Ping {
    /// An echo reply came back.
    Replied,
    /// The send itself failed with EPERM: a local netfilter REJECT/DROP.
    Refused,
    /// No reply (dropped on the way, or an ICMP error ping ignores).
    NoReply,
}

/// Three namespaces wired as node ↔ pod (through `rkube0`) and node ↔ outside (uplink):
///
/// - node: `rkube0` 10.42.0.1/24, `uplink0` 192.0.2.1/24, routes 10.42.0.0/16 and
///   10.43.0.0/16 via 192.0.2.2, ip_forward on;
/// - pod: `eth0` 10.42.0.5/24, default via 10.42.0.1;
/// - outside: `eth0` 192.0.2.2/24, 10.42.1.5 and 10.43.0.9 on `lo`, 10.42.0.0/24 via 192.0.2.1.
pub struct NetnsLab {
    pub node: String,
    pub pod: String,
    pub outside: String,
}

fn ip(netns: Option<&str>, args: &str) -> anyhow::Result<()> {
    let mut command = Command::new("ip");
    if let Some(ns) = netns {
        command.args(["netns", "exec", ns, "ip"]);
    }
    let output = command
        .args(args.split_whitespace())
        .output()
        .context("cannot run ip")?;
    anyhow::ensure!(
        output.status.success(),
        "ip {args}: {}",
        String::from_utf8_lossy(&output.stderr).trim()
    );
    Ok(())
}

impl NetnsLab {
    /// Creates the lab; `tag` makes the namespace names readable (`rkt-<tag>-<pid>-<n>-node`).
    pub fn new(tag: &str) -> anyhow::Result<NetnsLab> {
        let base = format!(
            "rkt-{tag}-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let lab = NetnsLab {
            node: format!("{base}-node"),
            pod: format!("{base}-pod"),
            outside: format!("{base}-out"),
        };
        for ns in [&lab.node, &lab.pod, &lab.outside] {
            ip(None, &format!("netns add {ns}"))?;
        }
        lab.wire()?;
        Ok(lab)
    }

    fn wire(&self) -> anyhow::Result<()> {
        let (node, pod, outside) = (
            Some(self.node.as_str()),
            Some(self.pod.as_str()),
            Some(self.outside.as_str()),
        );
        for ns in [node, pod, outside] {
            ip(ns, "link set lo up")?;
        }
        ip(node, "link add rkube0 type bridge")?;
        ip(node, "addr add 10.42.0.1/24 dev rkube0")?;
        ip(node, "link set rkube0 up")?;
        ip(
            node,
            &format!(
                "link add vethpod type veth peer name eth0 netns {}",
                self.pod
            ),
        )?;
        ip(node, "link set vethpod master rkube0")?;
        ip(node, "link set vethpod up")?;
        ip(pod, "addr add 10.42.0.5/24 dev eth0")?;
        ip(pod, "link set eth0 up")?;
        ip(pod, "route add default via 10.42.0.1")?;
        ip(
            node,
            &format!(
                "link add uplink0 type veth peer name eth0 netns {}",
                self.outside
            ),
        )?;
        ip(node, "addr add 192.0.2.1/24 dev uplink0")?;
        ip(node, "link set uplink0 up")?;
        ip(outside, "addr add 192.0.2.2/24 dev eth0")?;
        ip(outside, "link set eth0 up")?;
        ip(outside, "addr add 10.42.1.5/32 dev lo")?;
        ip(outside, "addr add 10.43.0.9/32 dev lo")?;
        ip(outside, "route add 10.42.0.0/24 via 192.0.2.1")?;
        ip(node, "route add 10.42.0.0/16 via 192.0.2.2 dev uplink0")?;
        ip(node, "route add 10.43.0.0/16 via 192.0.2.2 dev uplink0")?;
        let forward = Command::new("ip")
            .args([
                "netns",
                "exec",
                &self.node,
                "sysctl",
                "-q",
                "-w",
                "net.ipv4.ip_forward=1",
            ])
            .status()
            .context("cannot run sysctl")?;
        anyhow::ensure!(
            forward.success(),
            "cannot enable forwarding in {}",
            self.node
        );
        Ok(())
    }

    /// One `busybox ping -c1 -W1 target` from namespace `netns`.
    pub fn ping(&self, netns: &str, target: &str) -> Ping {
        let output = Command::new("ip")
            .args([
                "netns", "exec", netns, "busybox", "ping", "-c1", "-W1", target,
            ])
            .output()
            .expect("ip netns exec busybox ping runs");
        let stderr = String::from_utf8_lossy(&output.stderr);
        if output.status.success() {
            Ping::Replied
        } else if stderr.contains("Operation not permitted") {
            Ping::Refused
        } else {
            Ping::NoReply
        }
    }
}

impl Drop for NetnsLab {
    fn drop(&mut self) {
        for ns in [&self.pod, &self.outside, &self.node] {
            let _ = ip(None, &format!("netns del {ns}"));
        }
    }
}

/// One empty network namespace (only `lo`, up), deleted on drop.
pub struct Netns {
    pub name: String,
}

impl Netns {
    /// Creates `rkt-<tag>-<pid>-<n>`.
    pub fn new(tag: &str) -> anyhow::Result<Netns> {
        let name = format!(
            "rkt-{tag}-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        ip(None, &format!("netns add {name}"))?;
        let netns = Netns { name };
        ip(Some(&netns.name), "link set lo up")?;
        Ok(netns)
    }

    /// The bind-mounted namespace file (what CNI's `CNI_NETNS` takes).
    pub fn path(&self) -> String {
        format!("/run/netns/{}", self.name)
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = ip(None, &format!("netns del {}", self.name));
    }
}
