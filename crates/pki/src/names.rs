//! The names the API server's serving certificate must carry, and helpers to find them.

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::error::{Error, Result};

/// DNS names every serving certificate carries, whatever the caller passes: the loopback
/// name and the in-cluster names of the `kubernetes` Service (k3s and kubeadm add the same).
const ALWAYS_DNS: &[&str] = &[
    "localhost",
    "kubernetes",
    "kubernetes.default",
    "kubernetes.default.svc",
];

/// Extra subject alternative names for the serving certificate. The caller builds it from
/// its flags (bind address, service CIDR, cluster domain, `--tls-san`); the certificate then
/// carries these plus `localhost`, `127.0.0.1`, `::1` and the `kubernetes.default.svc` names.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ServingNames {
    pub dns: Vec<String>,
    pub ips: Vec<IpAddr>,
}

impl ServingNames {
    /// The names of a cluster: `kubernetes.default.svc.<cluster_domain>` and the
    /// `kubernetes` Service's IP (see [`first_service_ip`]).
    pub fn for_cluster(service_ip: IpAddr, cluster_domain: &str) -> Self {
        let mut names = ServingNames::default();
        names.add_dns(&format!("kubernetes.default.svc.{cluster_domain}"));
        names.add_ip(service_ip);
        names
    }

    /// Adds an IP address; unspecified addresses (`0.0.0.0`, `::`, a wildcard bind) and
    /// duplicates are skipped.
    pub fn add_ip(&mut self, ip: IpAddr) {
        if !ip.is_unspecified() && !self.ips.contains(&ip) {
            self.ips.push(ip);
        }
    }

    /// Adds several IP addresses, as [`ServingNames::add_ip`] does.
    pub fn add_ips(&mut self, ips: impl IntoIterator<Item = IpAddr>) {
        for ip in ips {
            self.add_ip(ip);
        }
    }

    /// Adds a DNS name (lower-cased, duplicates skipped).
    pub fn add_dns(&mut self, name: &str) {
        let name = name.trim().to_ascii_lowercase();
        if !name.is_empty() && !self.dns.contains(&name) {
            self.dns.push(name);
        }
    }

    /// Every DNS name the certificate must carry, sorted.
    pub fn required_dns(&self) -> BTreeSet<String> {
        let mut out: BTreeSet<String> = ALWAYS_DNS.iter().map(|s| (*s).to_owned()).collect();
        out.extend(self.dns.iter().map(|d| d.to_ascii_lowercase()));
        out
    }

    /// Every IP address the certificate must carry, sorted.
    pub fn required_ips(&self) -> BTreeSet<IpAddr> {
        let mut out: BTreeSet<IpAddr> = [
            IpAddr::V4(Ipv4Addr::LOCALHOST),
            IpAddr::V6(Ipv6Addr::LOCALHOST),
        ]
        .into();
        out.extend(self.ips.iter().copied().filter(|ip| !ip.is_unspecified()));
        out
    }
}

/// The first usable address of a service CIDR, which the `kubernetes` Service takes
/// (`10.43.0.0/16` gives `10.43.0.1`), as kube-apiserver computes it: network address + 1.
pub fn first_service_ip(cidr: &str) -> Result<IpAddr> {
    let invalid = |reason| Error::CidrInvalid {
        cidr: cidr.to_owned(),
        reason,
    };
    let (addr, prefix) = cidr
        .trim()
        .split_once('/')
        .ok_or_else(|| invalid("missing /prefix"))?;
    let addr: IpAddr = addr.parse().map_err(|_| invalid("not an IP address"))?;
    let prefix: u32 = prefix
        .parse()
        .map_err(|_| invalid("prefix is not a number"))?;
    match addr {
        IpAddr::V4(v4) => {
            if prefix >= 32 {
                return Err(invalid(
                    "prefix leaves no address for the kubernetes service",
                ));
            }
            let mask = u32::MAX.checked_shl(32 - prefix).unwrap_or(0);
            Ok(IpAddr::V4(Ipv4Addr::from((u32::from(v4) & mask) + 1)))
        }
        IpAddr::V6(v6) => {
            if prefix >= 128 {
                return Err(invalid(
                    "prefix leaves no address for the kubernetes service",
                ));
            }
            let mask = u128::MAX.checked_shl(128 - prefix).unwrap_or(0);
            Ok(IpAddr::V6(Ipv6Addr::from((u128::from(v6) & mask) + 1)))
        }
    }
}

/// The addresses configured on this host's interfaces (IPv4 from `/proc/net/fib_trie`,
/// IPv6 from `/proc/net/if_inet6`), without link-local IPv6 addresses. A table that cannot
/// be read contributes nothing: the serving certificate then simply lacks those names.
pub fn host_addresses() -> Vec<IpAddr> {
    let mut out: BTreeSet<IpAddr> = BTreeSet::new();
    if let Ok(text) = std::fs::read_to_string("/proc/net/fib_trie") {
        out.extend(parse_fib_trie_local(&text).into_iter().map(IpAddr::V4));
    }
    if let Ok(text) = std::fs::read_to_string("/proc/net/if_inet6") {
        out.extend(parse_if_inet6(&text).into_iter().map(IpAddr::V6));
    }
    out.into_iter().collect()
}

/// The local (`/32 host LOCAL`) addresses in the text of `/proc/net/fib_trie`.
pub fn parse_fib_trie_local(text: &str) -> Vec<Ipv4Addr> {
    let mut out = BTreeSet::new();
    let mut last: Option<Ipv4Addr> = None;
    for line in text.lines() {
        let line = line.trim();
        if let Some(rest) = line.strip_prefix("|--") {
            last = rest.trim().parse().ok();
        } else if line.starts_with("/32 host LOCAL") {
            if let Some(ip) = last {
                out.insert(ip);
            }
        }
    }
    out.into_iter().collect()
}

/// The non-link-local addresses in the text of `/proc/net/if_inet6`
/// (`<32 hex digits> <ifindex> <prefix> <scope> <flags> <name>` per line).
pub fn parse_if_inet6(text: &str) -> Vec<Ipv6Addr> {
    let mut out = BTreeSet::new();
    for line in text.lines() {
        let Some(hex) = line.split_whitespace().next() else {
            continue;
        };
        let Ok(bits) = u128::from_str_radix(hex, 16) else {
            continue;
        };
        if hex.len() != 32 {
            continue;
        }
        let ip = Ipv6Addr::from(bits);
        let link_local = ip.segments()[0] & 0xffc0 == 0xfe80;
        if !link_local && !ip.is_unspecified() {
            out.insert(ip);
        }
    }
    out.into_iter().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_service_ip_is_the_network_address_plus_one() {
        assert_eq!(
            first_service_ip("10.43.0.0/16").expect("valid"),
            "10.43.0.1".parse::<IpAddr>().expect("ip")
        );
        assert_eq!(
            first_service_ip("10.0.0.7/24").expect("valid"),
            "10.0.0.1".parse::<IpAddr>().expect("ip")
        );
        assert_eq!(
            first_service_ip("fd00:43::/112").expect("valid"),
            "fd00:43::1".parse::<IpAddr>().expect("ip")
        );
    }

    #[test]
    fn first_service_ip_rejects_malformed_and_tiny_cidrs() {
        for bad in [
            "10.43.0.0",
            "10.43.0.0/x",
            "nonsense/16",
            "10.43.0.1/32",
            "::1/128",
        ] {
            assert!(first_service_ip(bad).is_err(), "{bad} should be rejected");
        }
    }

    #[test]
    fn serving_names_always_include_loopback_and_kubernetes_names() {
        let mut names =
            ServingNames::for_cluster("10.43.0.1".parse().expect("ip"), "cluster.local");
        names.add_ip("0.0.0.0".parse().expect("ip"));
        names.add_ip("192.168.5.5".parse().expect("ip"));
        names.add_ip("192.168.5.5".parse().expect("ip"));
        let dns = names.required_dns();
        for want in [
            "localhost",
            "kubernetes",
            "kubernetes.default",
            "kubernetes.default.svc",
            "kubernetes.default.svc.cluster.local",
        ] {
            assert!(dns.contains(want), "missing {want}");
        }
        let ips: Vec<String> = names
            .required_ips()
            .iter()
            .map(|ip| ip.to_string())
            .collect();
        assert_eq!(ips, ["10.43.0.1", "127.0.0.1", "192.168.5.5", "::1"]);
    }

    #[test]
    fn fib_trie_yields_host_local_addresses_once() {
        let text =
            "Main:\n  +-- 0.0.0.0/0 3 0 5\n     |-- 0.0.0.0\n        /0 universe UNICAST\n     \
            +-- 127.0.0.0/8 2 0 2\n        |-- 127.0.0.1\n           /32 host LOCAL\n     \
            |-- 10.1.2.3\n        /32 host LOCAL\n     |-- 10.1.2.0\n        /24 link UNICAST\n\
            Local:\n     |-- 10.1.2.3\n        /32 host LOCAL\n";
        let ips: Vec<String> = parse_fib_trie_local(text)
            .iter()
            .map(|ip| ip.to_string())
            .collect();
        assert_eq!(ips, ["10.1.2.3", "127.0.0.1"]);
    }

    #[test]
    fn if_inet6_skips_link_local_addresses() {
        let text = "00000000000000000000000000000001 01 80 10 80       lo\n\
            fe800000000000000250569fffe8a1b2 02 40 20 80     eth0\n\
            fd000000000000000000000000000042 02 40 00 80     eth0\n";
        let ips: Vec<String> = parse_if_inet6(text)
            .iter()
            .map(|ip| ip.to_string())
            .collect();
        assert_eq!(ips, ["::1", "fd00::42"]);
    }
}
