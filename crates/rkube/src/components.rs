//! `rkube scheduler`, `rkube controller-manager` and `rkube sim-nodes`: flags and wiring for components that talk to an
//! API server through a kubeconfig.

use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::Args;
use tokio_util::sync::CancellationToken;

#[derive(Args, Debug, Clone)]
pub struct SchedulerArgs {
    /// Kubeconfig of the API server to schedule for.
    #[arg(long, value_name = "PATH")]
    pub kubeconfig: PathBuf,
    /// A KubeSchedulerConfiguration file (profiles, plugin weights, leader election).
    #[arg(long, value_name = "PATH")]
    pub config: Option<PathBuf>,
    /// Elect a leader through the kube-system/kube-scheduler Lease before scheduling
    /// (overrides the config file's leaderElection.leaderElect).
    #[arg(long, value_name = "BOOL", num_args = 0..=1, default_missing_value = "true")]
    pub leader_elect: Option<bool>,
}

#[derive(Args, Debug, Clone)]
pub struct ControllerManagerArgs {
    /// Kubeconfig of the API server to reconcile against.
    #[arg(long, value_name = "PATH")]
    pub kubeconfig: PathBuf,
    /// Controllers to run: `*` for all, `foo` to enable, `-foo` to disable (upstream names
    /// such as replicaset-controller or their aliases such as replicaset).
    #[arg(long, value_name = "LIST", default_value = "*")]
    pub controllers: String,
    /// Elect a leader through the kube-system/kube-controller-manager Lease first.
    #[arg(long, value_name = "BOOL", num_args = 0..=1, default_missing_value = "true", default_value_t = true, action = clap::ArgAction::Set)]
    pub leader_elect: bool,
    /// Cluster CA certificate (PEM) to publish as the kube-root-ca.crt ConfigMap in every
    /// namespace (default: the CA of the kubeconfig's cluster).
    #[arg(long, value_name = "PATH")]
    pub root_ca_file: Option<PathBuf>,
    /// First delay before the Job controller replaces a failed pod (doubles per failure, up
    /// to 6 minutes; upstream's fixed 10 s).
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = parse_duration)]
    pub job_pod_failure_backoff: std::time::Duration,
    /// Pod IP range node IPAM hands out a podCIDR per node from.
    #[arg(long, value_name = "CIDR", default_value = "10.42.0.0/16")]
    pub cluster_cidr: String,
    #[command(flatten)]
    pub node_controllers: NodeControllerFlags,
}

/// Flags of the node lifecycle, node IPAM and pod GC controllers (kube-controller-manager's
/// names), shared by `rkube controller-manager` and `rkube server`.
#[derive(Args, Debug, Clone)]
pub struct NodeControllerFlags {
    /// How long a node may stop renewing its Lease and status before it is marked Unknown
    /// and tainted unreachable (Go duration).
    #[arg(long, value_name = "DURATION", default_value = "40s", value_parser = parse_go_duration)]
    pub node_monitor_grace_period: std::time::Duration,
    /// Prefix length of the podCIDR each node gets from the cluster CIDR.
    #[arg(long, value_name = "BITS", default_value_t = 24)]
    pub node_cidr_mask_size: u8,
    /// Terminated pods kept before the oldest are deleted (0: never delete for this reason).
    #[arg(long, value_name = "N", default_value_t = 12500)]
    pub terminated_pod_gc_threshold: usize,
    /// How often the pod GC sweeps (upstream: a fixed 20 s; for tests).
    #[arg(long, value_name = "DURATION", default_value = "20s", value_parser = parse_go_duration, hide = true)]
    pub pod_gc_period: std::time::Duration,
    /// How long a pod's node must be missing before the pod GC deletes the pod (upstream: a
    /// fixed 40 s; for tests).
    #[arg(long, value_name = "DURATION", default_value = "40s", value_parser = parse_go_duration, hide = true)]
    pub pod_gc_quarantine: std::time::Duration,
}

impl NodeControllerFlags {
    /// Copies the flags and the cluster CIDR into the controller manager's config.
    pub fn apply(&self, config: &mut rkube_controllers::Config, cluster_cidr: (std::net::Ipv4Addr, u8)) -> anyhow::Result<()> {
        if self.node_cidr_mask_size < cluster_cidr.1 || self.node_cidr_mask_size > 30 {
            anyhow::bail!("--node-cidr-mask-size {} must be between the cluster CIDR's prefix ({}) and 30", self.node_cidr_mask_size, cluster_cidr.1);
        }
        config.node_monitor_grace_period = self.node_monitor_grace_period;
        config.node_cidr_mask_size = self.node_cidr_mask_size;
        config.terminated_pod_gc_threshold = self.terminated_pod_gc_threshold;
        config.pod_gc_period = self.pod_gc_period;
        config.pod_gc_quarantine = self.pod_gc_quarantine;
        config.cluster_cidr = cluster_cidr;
        Ok(())
    }
}

fn parse_go_duration(s: &str) -> Result<std::time::Duration, String> {
    rkube_store::compactor::parse_duration(s).ok_or_else(|| format!("invalid duration {s:?}: use a Go duration such as 40s or 1m"))
}

/// Parses an IPv4 CIDR (`10.42.0.0/16`), masking host bits.
pub fn parse_cidr(s: &str) -> anyhow::Result<(std::net::Ipv4Addr, u8)> {
    let (ip, bits) = s.split_once('/').with_context(|| format!("invalid CIDR {s:?}: expected ADDRESS/BITS"))?;
    let ip: std::net::Ipv4Addr = ip.parse().with_context(|| format!("invalid CIDR {s:?}: bad IPv4 address"))?;
    let bits: u8 = bits.parse().with_context(|| format!("invalid CIDR {s:?}: bad prefix length"))?;
    if !(8..=30).contains(&bits) {
        anyhow::bail!("invalid CIDR {s:?}: prefix length must be between 8 and 30");
    }
    let mask = u32::MAX << (32 - bits);
    Ok((std::net::Ipv4Addr::from(u32::from(ip) & mask), bits))
}

#[derive(Args, Debug, Clone)]
pub struct SimNodesArgs {
    /// Kubeconfig of the API server to register the nodes with.
    #[arg(long, value_name = "PATH")]
    pub kubeconfig: PathBuf,
    /// Number of nodes.
    #[arg(long, default_value_t = 1)]
    pub count: usize,
    /// Node names are <prefix>0 .. <prefix>N-1.
    #[arg(long, default_value = "sim-")]
    pub name_prefix: String,
    /// CPU capacity of each node.
    #[arg(long, default_value = "4")]
    pub cpu: String,
    /// Memory capacity of each node.
    #[arg(long, default_value = "8Gi")]
    pub memory: String,
    /// Pod capacity of each node.
    #[arg(long, default_value_t = 110)]
    pub pods: u32,
    /// Spread nodes over zone-0 .. zone-(N-1) (topology.kubernetes.io/zone); 0 = no zone label.
    #[arg(long, default_value_t = 0)]
    pub zones: usize,
    /// Extra node labels: k=v,k2=v2.
    #[arg(long, default_value = "")]
    pub labels: String,
    /// Node taints: k=v:NoSchedule,k2:PreferNoSchedule.
    #[arg(long, default_value = "")]
    pub taints: String,
    /// API requests in flight at once.
    #[arg(long, default_value_t = 32)]
    pub concurrency: usize,
    /// How often each node's Lease is renewed (a kubelet: 10s); keep it well under the
    /// controller manager's --node-monitor-grace-period.
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = parse_go_duration)]
    pub lease_renew_interval: std::time::Duration,
}

/// A kube-rs client for a kubeconfig file.
pub async fn client_from_kubeconfig(path: &Path) -> anyhow::Result<kube::Client> {
    let kc = kube::config::Kubeconfig::read_from(path).with_context(|| format!("reading kubeconfig {}", path.display()))?;
    client_from(kc).await
}

/// A kube-rs client for an in-memory kubeconfig document.
pub async fn client_from_yaml(yaml: &str) -> anyhow::Result<kube::Client> {
    client_from(kube::config::Kubeconfig::from_yaml(yaml).context("parsing the admin kubeconfig")?).await
}

async fn client_from(kc: kube::config::Kubeconfig) -> anyhow::Result<kube::Client> {
    let config = kube::Config::from_custom_kubeconfig(kc, &Default::default()).await.context("loading kubeconfig")?;
    kube::Client::try_from(config).context("building the API client")
}

/// Cancels the token on SIGINT or SIGTERM.
pub fn cancel_on_signal(token: CancellationToken) {
    tokio::spawn(async move {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = async { match term.as_mut() { Some(t) => { t.recv().await; } None => std::future::pending::<()>().await } } => {}
        }
        token.cancel();
    });
}

/// Loads the scheduler config (file over defaults), validating it before any IO.
pub fn scheduler_config(path: Option<&Path>, leader_elect: Option<bool>) -> anyhow::Result<rkube_scheduler::Config> {
    let mut config = match path {
        Some(p) => rkube_scheduler::Config::from_file(p)?,
        None => rkube_scheduler::Config::default(),
    };
    if let Some(le) = leader_elect {
        config.leader_election.enabled = le;
    }
    Ok(config)
}

pub async fn run_scheduler(args: SchedulerArgs) -> anyhow::Result<()> {
    let config = scheduler_config(args.config.as_deref(), args.leader_elect)?;
    let client = client_from_kubeconfig(&args.kubeconfig).await?;
    let shutdown = CancellationToken::new();
    cancel_on_signal(shutdown.clone());
    eprintln!("rkube: scheduler started ({} profile(s))", config.profiles.len());
    rkube_scheduler::Scheduler::new(config, client).run(shutdown).await?;
    Ok(())
}

/// The controller manager's config from its flags (validated before any IO).
pub fn controller_manager_config(controllers: &str, leader_elect: bool, root_ca_pem: Option<String>) -> anyhow::Result<rkube_controllers::Config> {
    let mut config = rkube_controllers::Config {
        controllers: rkube_controllers::parse_controllers(controllers).map_err(anyhow::Error::msg).context("--controllers")?,
        root_ca_pem,
        ..Default::default()
    };
    config.leader_election.enabled = leader_elect;
    Ok(config)
}

/// The CA certificate (PEM) of the kubeconfig's current cluster, if it embeds one.
fn kubeconfig_ca(path: &Path) -> Option<String> {
    use base64::Engine as _;
    let kc = kube::config::Kubeconfig::read_from(path).ok()?;
    let context = kc.current_context.as_deref()?;
    let cluster_name = kc.contexts.iter().find(|c| c.name == context)?.context.as_ref()?.cluster.clone();
    let cluster = kc.clusters.iter().find(|c| c.name == cluster_name)?.cluster.as_ref()?;
    if let Some(data) = &cluster.certificate_authority_data {
        let pem = base64::engine::general_purpose::STANDARD.decode(data.trim()).ok()?;
        return String::from_utf8(pem).ok();
    }
    std::fs::read_to_string(cluster.certificate_authority.as_ref()?).ok()
}

pub async fn run_controller_manager(args: ControllerManagerArgs) -> anyhow::Result<()> {
    let root_ca = match &args.root_ca_file {
        Some(p) => Some(std::fs::read_to_string(p).with_context(|| format!("--root-ca-file {}", p.display()))?),
        None => kubeconfig_ca(&args.kubeconfig),
    };
    let mut config = controller_manager_config(&args.controllers, args.leader_elect, root_ca)?;
    config.job.pod_failure_backoff = args.job_pod_failure_backoff;
    let cluster_cidr = parse_cidr(&args.cluster_cidr).context("--cluster-cidr")?;
    args.node_controllers.apply(&mut config, cluster_cidr)?;
    let client = client_from_kubeconfig(&args.kubeconfig).await?;
    let shutdown = CancellationToken::new();
    cancel_on_signal(shutdown.clone());
    eprintln!("rkube: controller manager started ({} controller(s))", config.controllers.len());
    rkube_controllers::ControllerManager::new(config, client).run(shutdown).await?;
    Ok(())
}

pub async fn run_sim_nodes(args: SimNodesArgs) -> anyhow::Result<()> {
    let config = rkube_simnodes::Config {
        count: args.count,
        name_prefix: args.name_prefix,
        cpu: args.cpu,
        memory: args.memory,
        pods: args.pods,
        zones: args.zones,
        labels: rkube_simnodes::parse_labels(&args.labels)?,
        taints: rkube_simnodes::parse_taints(&args.taints)?,
        concurrency: args.concurrency,
        lease_renew_interval: args.lease_renew_interval,
    };
    let client = client_from_kubeconfig(&args.kubeconfig).await?;
    let shutdown = CancellationToken::new();
    cancel_on_signal(shutdown.clone());
    let count = config.count;
    let nodes = rkube_simnodes::SimNodes::new(config, client);
    let ready = nodes.registered();
    tokio::spawn(async move {
        ready.notified().await;
        eprintln!("rkube: {count} simulated node(s) registered");
    });
    nodes.run(shutdown).await?;
    Ok(())
}

fn parse_duration(s: &str) -> Result<std::time::Duration, String> {
    rkube_store::compactor::parse_duration(s).ok_or_else(|| format!("invalid duration {s:?}: use a Go duration such as 10s or 1m"))
}
