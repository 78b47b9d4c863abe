//! Controller manager settings and the `--controllers` list.

use rkube_api::leader::LeaderElection;

/// Every controller this crate implements: its upstream name (`--controllers`) and the
/// aliases upstream also accepts.
pub const CONTROLLERS: &[(&str, &[&str])] = &[
    ("replicaset-controller", &["replicaset"]),
    ("deployment-controller", &["deployment"]),
    ("garbage-collector-controller", &["garbagecollector", "garbage-collector"]),
    ("serviceaccount-controller", &["serviceaccount"]),
    ("root-ca-certificate-publisher-controller", &["root-ca-cert-publisher", "root-ca-certificate-publisher"]),
    ("endpoints-controller", &["endpoint", "endpoints"]),
    ("endpointslice-controller", &["endpointslice"]),
    ("disruption-controller", &["disruption"]),
    ("resourcequota-controller", &["resourcequota"]),
];

/// Controller manager settings.
#[derive(Debug, Clone)]
pub struct Config {
    /// Canonical names of the controllers to run (see [`parse_controllers`]).
    pub controllers: Vec<&'static str>,
    pub leader_election: LeaderElection,
    /// Identity written into the lease (`<hostname>_<uuid>` upstream).
    pub identity: String,
    /// The cluster CA certificate (PEM) published as `kube-root-ca.crt`; without it the
    /// root-ca-certificate-publisher does not run.
    pub root_ca_pem: Option<String>,
    /// Concurrent syncs per controller (upstream `--concurrent-*-syncs`, default 5).
    pub workers: usize,
    /// Concurrent garbage collector workers (upstream `--concurrent-gc-syncs`, default 20).
    pub gc_workers: usize,
}

impl Default for Config {
    /// Every controller, leader election on `kube-system/kube-controller-manager`.
    fn default() -> Self {
        Config {
            controllers: CONTROLLERS.iter().map(|(name, _)| *name).collect(),
            leader_election: LeaderElection::for_lease("kube-controller-manager"),
            identity: format!("rkube-controller-manager_{}", uuid::Uuid::new_v4()),
            root_ca_pem: None,
            workers: 5,
            gc_workers: 20,
        }
    }
}

impl Config {
    /// Whether the controller with this canonical name runs.
    pub fn enabled(&self, name: &str) -> bool {
        self.controllers.contains(&name)
    }
}

fn canonical(name: &str) -> Option<&'static str> {
    CONTROLLERS.iter().find(|(n, aliases)| *n == name || aliases.contains(&name)).map(|(n, _)| *n)
}

/// Parses upstream's `--controllers` list: `*` enables every controller that is on by
/// default, `foo` enables foo, `-foo` disables foo (names or aliases); returns canonical
/// names in table order, or an error naming the unknown controller.
pub fn parse_controllers(list: &str) -> Result<Vec<&'static str>, String> {
    let mut star = false;
    let mut on = Vec::new();
    let mut off = Vec::new();
    for item in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        if item == "*" {
            star = true;
            continue;
        }
        let (disable, name) = match item.strip_prefix('-') {
            Some(n) => (true, n),
            None => (false, item),
        };
        let Some(c) = canonical(name) else {
            let known: Vec<&str> = CONTROLLERS.iter().map(|(n, _)| *n).collect();
            return Err(format!("{name:?} is not in the list of known controllers: {}", known.join(", ")));
        };
        if disable { off.push(c) } else { on.push(c) }
    }
    Ok(CONTROLLERS
        .iter()
        .map(|(n, _)| *n)
        .filter(|n| !off.contains(n) && (star || on.contains(n)))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn controllers_list_follows_upstream_syntax() {
        let all = parse_controllers("*").unwrap();
        assert_eq!(all.len(), CONTROLLERS.len());
        let some = parse_controllers("*,-deployment,-garbage-collector-controller").unwrap();
        assert!(!some.contains(&"deployment-controller") && !some.contains(&"garbage-collector-controller"));
        assert!(some.contains(&"replicaset-controller"));
        assert_eq!(parse_controllers("replicaset,endpoint").unwrap(), ["replicaset-controller", "endpoints-controller"]);
        assert!(parse_controllers("*,-nope").unwrap_err().contains("nope"));
    }
}
