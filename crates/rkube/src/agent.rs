//! `rkube kubelet` and `rkube agent`: the node agent against an API server (the kubelet now;
//! kube-proxy joins `agent` with its issue), and the agent `rkube server` runs in-process.

use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use base64::Engine as _;
use clap::Args;
use tokio_util::sync::CancellationToken;

#[derive(Args, Debug, Clone)]
pub struct AgentArgs {
    /// URL of the API server (with --token).
    #[arg(long, value_name = "URL")]
    pub server: Option<String>,
    /// Bearer token for the API server (with --server); the cluster CA is read from
    /// <data-dir>/tls/ca.crt.
    #[arg(long, value_name = "TOKEN", requires = "server")]
    pub token: Option<String>,
    /// Kubeconfig of the API server (instead of --server/--token).
    #[arg(long, value_name = "PATH", conflicts_with = "server")]
    pub kubeconfig: Option<PathBuf>,
    #[command(flatten)]
    pub node: NodeArgs,
}

/// The flags shared by `agent`, `kubelet` and the agent inside `server`.
#[derive(Args, Debug, Clone)]
pub struct NodeArgs {
    /// Name of this node (default: the host name).
    #[arg(long, value_name = "NAME")]
    pub node_name: Option<String>,
    /// Data directory; the agent keeps its files under <data-dir>/agent
    /// (default: /var/lib/rkube as root, ~/.rkube otherwise).
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// CRI socket of a container runtime to use instead of starting containerd.
    #[arg(long, value_name = "ENDPOINT")]
    pub container_runtime_endpoint: Option<String>,
    /// Pod CIDR of this node when the Node object has none (default: the one the controller
    /// manager's node IPAM assigns; `rkube server`'s own agent: the first /24 of --cluster-cidr).
    #[arg(long, value_name = "CIDR")]
    pub pod_cidr: Option<String>,
    /// InternalIP of this node (default: the host's first non-loopback IPv4 address).
    #[arg(long, value_name = "IP")]
    pub node_ip: Option<IpAddr>,
    /// Port of the kubelet's HTTPS server, reported in the node's daemonEndpoints.
    #[arg(long, value_name = "PORT", default_value_t = 10250)]
    pub kubelet_port: u16,
    /// The cluster's pod range: the egress guard keeps its packets on this machine.
    #[arg(long, value_name = "CIDR", default_value = "10.42.0.0/16")]
    pub cluster_cidr: String,
    /// The cluster's Service range: the egress guard keeps its packets on this machine.
    #[arg(long, value_name = "CIDR", default_value = "10.43.0.0/16")]
    pub service_cidr: String,
    /// CA whose client certificates the kubelet's HTTPS server accepts (the API server's)
    /// (default: <data-dir>/tls/ca.crt when it exists).
    #[arg(long, value_name = "FILE")]
    pub client_ca_file: Option<PathBuf>,
    #[command(flatten)]
    pub resources: NodeResourceArgs,
}

/// Node pressure and image garbage collection flags (kubelet's names and defaults), shared
/// by `agent`, `kubelet` and `server`.
#[derive(Args, Debug, Clone)]
pub struct NodeResourceArgs {
    /// Hard eviction thresholds that set the node's pressure conditions and taints
    /// (`memory.available<100Mi,nodefs.available<10%`; signals memory.available,
    /// nodefs.available, nodefs.inodesFree, imagefs.available, imagefs.inodesFree, pid.available).
    #[arg(long, value_name = "THRESHOLDS", default_value = rkube_kubelet::eviction::DEFAULT_EVICTION_HARD)]
    pub eviction_hard: String,
    /// How long a pressure condition stays true after its threshold was last met.
    #[arg(long, value_name = "DURATION", default_value = "5m", value_parser = crate::server::parse_interval)]
    pub eviction_pressure_transition_period: std::time::Duration,
    /// Image filesystem usage (percent) at which image garbage collection starts.
    #[arg(long, value_name = "PERCENT", default_value_t = 85)]
    pub image_gc_high_threshold: u8,
    /// Image filesystem usage (percent) image garbage collection frees down to.
    #[arg(long, value_name = "PERCENT", default_value_t = 80)]
    pub image_gc_low_threshold: u8,
    /// Minimum age of an unused image before it may be garbage-collected.
    #[arg(long, value_name = "DURATION", default_value = "2m", value_parser = crate::server::parse_interval)]
    pub image_minimum_gc_age: std::time::Duration,
    /// How often image garbage collection runs (upstream's fixed 5m).
    #[arg(long, value_name = "DURATION", default_value = "5m", value_parser = crate::server::parse_interval)]
    pub image_gc_period: std::time::Duration,
}

/// The default cluster CIDR, whose addresses (rkube's own bridge) are never the node IP.
const CLUSTER_CIDR: (Ipv4Addr, u8) = (Ipv4Addr::new(10, 42, 0, 0), 16);

/// The host's first non-loopback IPv4 address outside `cluster_cidr` (the pod bridge has an
/// address there), 127.0.0.1 when it has none.
pub fn default_node_ip(cluster_cidr: (Ipv4Addr, u8)) -> IpAddr {
    let mask = u32::MAX << (32 - cluster_cidr.1.clamp(1, 32));
    let in_cluster = |ip: &Ipv4Addr| u32::from(*ip) & mask == u32::from(cluster_cidr.0) & mask;
    rkube_pki::host_addresses()
        .into_iter()
        .find(|ip| matches!(ip, IpAddr::V4(v4) if !v4.is_loopback() && !in_cluster(v4)))
        .unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST))
}

/// The kubelet config for these flags, validated.
pub fn kubelet_config(args: &NodeArgs, data_dir: &Path, cluster_cidr: Option<(Ipv4Addr, u8)>) -> anyhow::Result<rkube_kubelet::Config> {
    let node_ip = args.node_ip.unwrap_or_else(|| default_node_ip(cluster_cidr.unwrap_or(CLUSTER_CIDR)));
    let mut config = rkube_kubelet::Config::new(data_dir.to_path_buf(), node_ip);
    if let Some(name) = &args.node_name {
        if name.is_empty() || name.len() > 253 || !name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.') {
            bail!("invalid --node-name {name:?}: must be a lower-case DNS subdomain");
        }
        config.node_name = name.clone();
    }
    if let Some(cidr) = &args.pod_cidr {
        let (ip, bits) = cidr.split_once('/').with_context(|| format!("invalid --pod-cidr {cidr:?}: expected ADDRESS/BITS"))?;
        ip.parse::<Ipv4Addr>().with_context(|| format!("invalid --pod-cidr {cidr:?}: bad IPv4 address"))?;
        let bits: u8 = bits.parse().with_context(|| format!("invalid --pod-cidr {cidr:?}: bad prefix length"))?;
        if !(8..=30).contains(&bits) {
            bail!("invalid --pod-cidr {cidr:?}: prefix length must be between 8 and 30");
        }
        config.pod_cidr = cidr.clone();
    } else {
        // A joining agent takes the podCIDR node IPAM gives its node, so no two nodes share one.
        config.pod_cidr = String::new();
    }
    config.container_runtime_endpoint = args.container_runtime_endpoint.clone();
    config.kubelet_port = args.kubelet_port;
    config.cluster_cidr = args.cluster_cidr.clone();
    config.service_cidr = args.service_cidr.clone();
    let r = &args.resources;
    config.eviction_hard = rkube_kubelet::eviction::parse_eviction_hard(&r.eviction_hard).map_err(|e| anyhow::anyhow!("invalid --eviction-hard: {e}"))?;
    config.eviction_pressure_transition_period = r.eviction_pressure_transition_period;
    config.image_gc = rkube_kubelet::imagegc::Policy {
        high_threshold_percent: r.image_gc_high_threshold,
        low_threshold_percent: r.image_gc_low_threshold,
        min_age: r.image_minimum_gc_age,
    };
    config.image_gc.validate().map_err(|e| anyhow::anyhow!(e))?;
    if r.image_gc_period.is_zero() {
        bail!("invalid --image-gc-period: must be more than 0");
    }
    config.image_gc_period = r.image_gc_period;
    let ca = args.client_ca_file.clone().unwrap_or_else(|| data_dir.join("tls").join("ca.crt"));
    config.client_ca_pem = match std::fs::read_to_string(&ca) {
        Ok(pem) => Some(pem),
        Err(_) if args.client_ca_file.is_none() => None,
        Err(e) => bail!("cannot read --client-ca-file {}: {e}", ca.display()),
    };
    Ok(config)
}

async fn client(args: &AgentArgs, data_dir: &Path) -> anyhow::Result<kube::Client> {
    if let Some(path) = &args.kubeconfig {
        return crate::components::client_from_kubeconfig(path).await;
    }
    let (Some(server), Some(token)) = (&args.server, &args.token) else {
        bail!("give --kubeconfig, or --server and --token");
    };
    let ca = data_dir.join("tls").join("ca.crt");
    let ca_pem = std::fs::read(&ca).with_context(|| format!("--server/--token need the cluster CA at {} (or use --kubeconfig)", ca.display()))?;
    let ca_data = base64::engine::general_purpose::STANDARD.encode(ca_pem);
    let yaml = format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: rkube\n  cluster:\n    server: {server:?}\n    certificate-authority-data: {ca_data}\nusers:\n- name: agent\n  user:\n    token: {token:?}\ncontexts:\n- name: rkube\n  context: {{cluster: rkube, user: agent}}\ncurrent-context: rkube\n"
    );
    crate::components::client_from_yaml(&yaml).await
}

/// `rkube agent` / `rkube kubelet`: runs the kubelet until SIGINT/SIGTERM.
pub async fn run(args: AgentArgs) -> anyhow::Result<()> {
    let data_dir = args.node.data_dir.clone().unwrap_or_else(crate::server::default_data_dir);
    let config = kubelet_config(&args.node, &data_dir, None)?;
    let client = client(&args, &data_dir).await?;
    let shutdown = CancellationToken::new();
    crate::components::cancel_on_signal(shutdown.clone());
    eprintln!("rkube: kubelet starting for node {}", config.node_name);
    rkube_kubelet::Kubelet::new(config, client).run(shutdown).await
}
