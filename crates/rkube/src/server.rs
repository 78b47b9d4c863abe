//! `rkube server` and `rkube apiserver`: flags and wiring.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{bail, Context};
use clap::Args;
use tokio_util::sync::CancellationToken;

#[derive(Args, Debug, Clone)]
pub struct ServerArgs {
    /// Directory for the datastore, certificates and kubeconfig
    /// (default: /var/lib/rkube as root, ~/.rkube otherwise).
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Address the API server listens on.
    #[arg(long, value_name = "ADDR", default_value = "0.0.0.0")]
    pub bind_address: IpAddr,
    /// HTTPS port of the API server.
    #[arg(long, value_name = "PORT", default_value_t = 6443)]
    pub https_port: u16,
    /// Where to write the admin kubeconfig (default: <data-dir>/kubeconfig.yaml).
    #[arg(long, value_name = "PATH")]
    pub write_kubeconfig: Option<PathBuf>,
    /// Do not run the agent (kubelet) on this machine: the server is control plane only, and
    /// pods need `rkube agent` nodes elsewhere.
    #[arg(long)]
    pub disable_agent: bool,
    /// Flags of the in-process agent (ignored with --disable-agent).
    #[command(flatten)]
    pub agent: AgentFlags,
    /// Do not run the scheduler inside the server.
    #[arg(long)]
    pub disable_scheduler: bool,
    /// Do not run the controller manager inside the server.
    #[arg(long)]
    pub disable_controller_manager: bool,
    /// Controllers the in-process controller manager runs (`*`, `foo`, `-foo`; upstream names).
    #[arg(long, value_name = "LIST", default_value = "*")]
    pub controllers: String,
    /// First delay before the Job controller replaces a failed pod (doubles per failure, up
    /// to 6 minutes; upstream's fixed 10 s).
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = parse_interval)]
    pub job_pod_failure_backoff: std::time::Duration,
    /// KubeSchedulerConfiguration file for the in-process scheduler.
    #[arg(long, value_name = "PATH")]
    pub scheduler_config: Option<PathBuf>,
    /// ClusterIP range for Services; the first address is the `kubernetes` Service.
    #[arg(long, value_name = "CIDR", default_value = "10.43.0.0/16")]
    pub service_cidr: String,
    /// Pod IP range; each node gets a /24 from it.
    #[arg(long, value_name = "CIDR", default_value = "10.42.0.0/16")]
    pub cluster_cidr: String,
    /// Extra names or IPs for the serving certificate (repeatable).
    #[arg(long = "tls-san", value_name = "NAME")]
    pub tls_san: Vec<String>,
    /// Most non-mutating requests served at once (watches not counted); more get 429.
    #[arg(long, value_name = "N", default_value_t = 400)]
    pub max_requests_inflight: usize,
    /// Most mutating requests served at once; more get 429.
    #[arg(long, value_name = "N", default_value_t = 200)]
    pub max_mutating_requests_inflight: usize,
    /// Seconds a watch without timeoutSeconds lasts at least (at most twice that, at random).
    #[arg(long, value_name = "SECONDS", default_value_t = 1800)]
    pub min_request_timeout: u64,
    #[command(flatten)]
    pub datastore: DatastoreArgs,
    #[command(flatten)]
    pub node_controllers: crate::components::NodeControllerFlags,
    /// tolerationSeconds of the not-ready:NoExecute toleration the DefaultTolerationSeconds
    /// admission plugin adds to every pod that lacks one.
    #[arg(long, value_name = "SECONDS", default_value_t = 300)]
    pub default_not_ready_toleration_seconds: i64,
    /// tolerationSeconds of the unreachable:NoExecute toleration added likewise.
    #[arg(long, value_name = "SECONDS", default_value_t = 300)]
    pub default_unreachable_toleration_seconds: i64,
}

/// The node flags of `rkube agent` that `rkube server` passes to its in-process agent
/// (the data dir is the server's).
#[derive(Args, Debug, Clone)]
pub struct AgentFlags {
    /// Name of this machine's node (default: the host name).
    #[arg(long, value_name = "NAME")]
    pub node_name: Option<String>,
    /// CRI socket of a container runtime to use instead of starting containerd.
    #[arg(long, value_name = "ENDPOINT")]
    pub container_runtime_endpoint: Option<String>,
    /// Pod CIDR of this node when the Node object has none (default: the first /24 of
    /// --cluster-cidr).
    #[arg(long, value_name = "CIDR")]
    pub pod_cidr: Option<String>,
    /// InternalIP of this node (default: the host's first non-loopback IPv4 address).
    #[arg(long, value_name = "IP")]
    pub node_ip: Option<IpAddr>,
    /// Port of the kubelet's HTTPS server, reported in the node's daemonEndpoints.
    #[arg(long, value_name = "PORT", default_value_t = 10250)]
    pub kubelet_port: u16,
    #[command(flatten)]
    pub resources: crate::agent::NodeResourceArgs,
}

/// Datastore flags, named as k3s's (`--datastore-*`) and kube-apiserver's
/// (`--etcd-compaction-interval`).
#[derive(Args, Debug, Clone)]
pub struct DatastoreArgs {
    /// Use an external etcd instead of the embedded datastore: comma-separated
    /// http(s)://host:port URLs of its members (requests fail over between them).
    #[arg(long, value_name = "URLS")]
    pub datastore_endpoint: Option<String>,
    /// CA certificate (PEM) that signed the etcd members' serving certificates.
    #[arg(long, value_name = "FILE", requires = "datastore_endpoint")]
    pub datastore_cafile: Option<PathBuf>,
    /// Client certificate (PEM) for etcd's client-certificate authentication.
    #[arg(long, value_name = "FILE", requires = "datastore_keyfile")]
    pub datastore_certfile: Option<PathBuf>,
    /// Private key (PEM) of --datastore-certfile.
    #[arg(long, value_name = "FILE", requires = "datastore_certfile")]
    pub datastore_keyfile: Option<PathBuf>,
    /// How often to compact the datastore's history; each compaction keeps one interval of
    /// history (Go duration: 5m, 30s, 1m30s; 0 disables).
    #[arg(long, value_name = "DURATION", default_value = "5m", value_parser = parse_interval)]
    pub etcd_compaction_interval: std::time::Duration,
    /// When to take scheduled snapshots (5-field cron, UTC; k3s's default: twice a day).
    #[arg(long, alias = "snapshot-schedule-cron", value_name = "CRON", default_value = "0 */12 * * *", value_parser = parse_cron)]
    pub etcd_snapshot_schedule_cron: crate::cron::Cron,
    /// How many scheduled snapshots to keep.
    #[arg(long, alias = "snapshot-retention", value_name = "N", default_value_t = 5)]
    pub etcd_snapshot_retention: usize,
    /// Where scheduled snapshots go (default: <data-dir>/snapshots).
    #[arg(long, alias = "snapshot-dir", value_name = "DIR")]
    pub etcd_snapshot_dir: Option<PathBuf>,
    /// Take no scheduled snapshots.
    #[arg(long)]
    pub etcd_disable_snapshots: bool,
    /// Encrypt resources at rest as this EncryptionConfiguration file says
    /// (apiserver.config.k8s.io/v1; providers aescbc, aesgcm, identity).
    #[arg(long, value_name = "FILE")]
    pub encryption_provider_config: Option<PathBuf>,
}

fn parse_cron(s: &str) -> Result<crate::cron::Cron, String> {
    crate::cron::Cron::parse(s)
}

pub(crate) fn parse_interval(s: &str) -> Result<std::time::Duration, String> {
    rkube_store::compactor::parse_duration(s)
        .ok_or_else(|| format!("invalid duration {s:?}: use a Go duration such as 5m, 30s or 1m30s"))
}

/// Opens the datastore the flags select: external etcd (returned twice: as a store and for
/// maintenance calls) or the embedded store in `data_dir`.
async fn open_store(
    args: &DatastoreArgs,
    data_dir: &std::path::Path,
) -> anyhow::Result<(Arc<dyn rkube_store::Store>, Option<rkube_store::EtcdStore>)> {
    if let Some(endpoints) = &args.datastore_endpoint {
        let mut options = rkube_store::EtcdOptions::new(endpoints);
        options.ca_file = args.datastore_cafile.clone();
        options.cert_file = args.datastore_certfile.clone();
        options.key_file = args.datastore_keyfile.clone();
        tracing::info!(endpoints = %endpoints, "connecting to etcd");
        let store = rkube_store::EtcdStore::connect(options)
            .await
            .with_context(|| format!("--datastore-endpoint {endpoints}"))?;
        return Ok((Arc::new(store.clone()), Some(store)));
    }
    let db = data_dir.join("db");
    let store = rkube_store::EmbeddedStore::open(&db)
        .await
        .with_context(|| format!("cannot open the datastore in {}", db.display()))?;
    Ok((Arc::new(store), None))
}

/// The datastore's size on disk: etcd's reported db size, or the embedded store's files.
async fn db_size(etcd: Option<&rkube_store::EtcdStore>, db_dir: &std::path::Path) -> Option<u64> {
    match etcd {
        Some(etcd) => {
            let mut client = etcd.client().clone();
            let status = tokio::time::timeout(std::time::Duration::from_secs(2), client.status()).await;
            status.ok()?.ok().map(|s| s.db_size().max(0) as u64)
        }
        None => {
            let entries = std::fs::read_dir(db_dir).ok()?;
            Some(entries.filter_map(|e| e.ok()?.metadata().ok()).map(|m| m.len()).sum())
        }
    }
}

/// The `/metrics` hook: store latency and watchers, compaction counters, db size.
fn metrics_hook(
    metrics: Arc<rkube_store::metrics::Metrics>,
    compaction: Arc<rkube_store::compactor::Stats>,
    etcd: Option<rkube_store::EtcdStore>,
    db_dir: PathBuf,
) -> rkube_apiserver::handlers::MetricsHook {
    use std::fmt::Write as _;
    use std::sync::atomic::Ordering::Relaxed;
    Arc::new(move || {
        let (metrics, compaction, etcd, db_dir) = (metrics.clone(), compaction.clone(), etcd.clone(), db_dir.clone());
        Box::pin(async move {
            let backend = if etcd.is_some() { "etcd" } else { "embedded" };
            let mut out = String::new();
            metrics.render(&mut out, backend);
            let counters = [
                ("rkube_store_compactions_total", "counter", "Successful datastore compactions.", compaction.compactions.load(Relaxed)),
                ("rkube_store_compaction_failures_total", "counter", "Failed datastore compaction attempts (each is retried).", compaction.failures.load(Relaxed)),
                ("rkube_store_compacted_revision", "gauge", "Revision of the last successful compaction.", compaction.compacted_revision.load(Relaxed)),
            ];
            for (name, kind, help, value) in counters {
                let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}");
            }
            if let Some(size) = db_size(etcd.as_ref(), &db_dir).await {
                let name = "apiserver_storage_size_bytes";
                let _ = writeln!(out, "# HELP {name} Size of the storage database file physically allocated in bytes.");
                let _ = writeln!(out, "# TYPE {name} gauge\n{name}{{storage_cluster_id=\"{backend}\"}} {size}");
            }
            out
        })
    })
}

pub(crate) fn default_data_dir() -> PathBuf {
    let is_root = std::fs::metadata("/proc/self").map(|m| std::os::unix::fs::MetadataExt::uid(&m) == 0).unwrap_or(false);
    if is_root {
        PathBuf::from("/var/lib/rkube")
    } else {
        std::env::var_os("HOME").map(PathBuf::from).unwrap_or_else(|| PathBuf::from(".")).join(".rkube")
    }
}

fn parse_cidr(s: &str) -> anyhow::Result<(Ipv4Addr, u8)> {
    let (ip, bits) = s.split_once('/').with_context(|| format!("invalid CIDR {s:?}: expected ADDRESS/BITS"))?;
    let ip: Ipv4Addr = ip.parse().with_context(|| format!("invalid CIDR {s:?}: bad IPv4 address"))?;
    let bits: u8 = bits.parse().with_context(|| format!("invalid CIDR {s:?}: bad prefix length"))?;
    if !(8..=30).contains(&bits) {
        bail!("invalid CIDR {s:?}: prefix length must be between 8 and 30");
    }
    let mask = u32::MAX << (32 - bits);
    Ok((Ipv4Addr::from(u32::from(ip) & mask), bits))
}

/// The bind address when it is a specific one, else the host's first non-loopback address.
fn advertise_address(bind: IpAddr) -> IpAddr {
    if !bind.is_unspecified() {
        return bind;
    }
    rkube_pki::host_addresses()
        .into_iter()
        .find(|ip| ip.is_ipv4() && !ip.is_loopback())
        .unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST))
}

pub async fn run(args: ServerArgs, full_server: bool) -> anyhow::Result<()> {
    let started = std::time::Instant::now();
    let run_scheduler = full_server && !args.disable_scheduler;
    // Validate the scheduler config before anything starts, so a bad file fails fast.
    let scheduler_config = match run_scheduler {
        true => Some(crate::components::scheduler_config(args.scheduler_config.as_deref(), None)?),
        false => None,
    };
    let cluster_cidr = parse_cidr(&args.cluster_cidr)?;
    let controllers = match full_server && !args.disable_controller_manager {
        true => {
            let mut config = crate::components::controller_manager_config(&args.controllers, true, None)?;
            config.job.pod_failure_backoff = args.job_pod_failure_backoff;
            args.node_controllers.apply(&mut config, cluster_cidr)?;
            Some(config)
        }
        false => None,
    };
    let data_dir = args.data_dir.clone().unwrap_or_else(default_data_dir);
    let service_cidr = parse_cidr(&args.service_cidr)?;
    let agent_config = match full_server && !args.disable_agent {
        true => {
            let a = &args.agent;
            let node = crate::agent::NodeArgs {
                node_name: a.node_name.clone(),
                data_dir: None,
                container_runtime_endpoint: a.container_runtime_endpoint.clone(),
                pod_cidr: Some(a.pod_cidr.clone().unwrap_or_else(|| format!("{}/24", cluster_cidr.0))),
                node_ip: a.node_ip,
                kubelet_port: a.kubelet_port,
                cluster_cidr: args.cluster_cidr.clone(),
                service_cidr: args.service_cidr.clone(),
                client_ca_file: None,
                resources: a.resources.clone(),
            };
            Some(crate::agent::kubelet_config(&node, &data_dir, Some(cluster_cidr))?)
        }
        false => None,
    };
    std::fs::create_dir_all(&data_dir).with_context(|| format!("cannot create data dir {}", data_dir.display()))?;

    let service_ip = rkube_pki::first_service_ip(&args.service_cidr).context("service CIDR")?;
    let mut names = rkube_pki::ServingNames::for_cluster(service_ip, "cluster.local");
    names.add_ip(args.bind_address);
    names.add_ips(rkube_pki::host_addresses());
    for san in &args.tls_san {
        match san.parse::<IpAddr>() {
            Ok(ip) => names.add_ip(ip),
            Err(_) => names.add_dns(san),
        }
    }
    let pki = rkube_pki::ClusterPki::load_or_create(&data_dir.join("tls"), &names).context("cluster certificates")?;

    let (store, etcd) = open_store(&args.datastore, &data_dir).await?;
    let metered = rkube_store::metrics::MeteredStore::new(store);
    let store_metrics = metered.metrics();
    let store: Arc<dyn rkube_store::Store> = Arc::new(metered);

    let shutdown = CancellationToken::new();
    let compaction = rkube_store::compactor::Config {
        interval: args.datastore.etcd_compaction_interval,
        ..Default::default()
    };
    let (compaction_failed, compaction_failures) = crate::compaction_events::channel();
    let compactor = rkube_store::compactor::Compactor::new(compaction, store.clone()).on_failure(compaction_failed);
    let compaction_stats = compactor.stats();
    tokio::spawn(compactor.run(shutdown.clone()));
    let config = rkube_apiserver::Config {
        listen: SocketAddr::new(args.bind_address, args.https_port),
        serving_cert_pem: pki.serving_cert_pem.clone(),
        serving_key_pem: pki.serving_key_pem.clone(),
        client_ca_pem: pki.ca_cert_pem.clone(),
        service_cidr,
        advertise_address: advertise_address(args.bind_address),
        limits: rkube_apiserver::limits::Config {
            max_requests_inflight: args.max_requests_inflight,
            max_mutating_requests_inflight: args.max_mutating_requests_inflight,
            min_request_timeout: std::time::Duration::from_secs(args.min_request_timeout),
            ..Default::default()
        },
        kubelet_client_cert_pem: Some(pki.kubelet_client_cert_pem.clone()),
        kubelet_client_key_pem: Some(pki.kubelet_client_key_pem.clone()),
    };
    // The API server reads and writes through the encryption layer; compaction and
    // snapshots work on the stored (encrypted) bytes, so a snapshot holds no plain Secret.
    let api_store: Arc<dyn rkube_store::Store> = match &args.datastore.encryption_provider_config {
        Some(path) => {
            let rules = crate::encryption::load(path)?;
            let encrypted = rkube_store::encryption::EncryptedStore::new(store.clone(), rules)
                .map_err(anyhow::Error::msg)
                .with_context(|| format!("--encryption-provider-config {}", path.display()))?;
            Arc::new(encrypted)
        }
        None => store.clone(),
    };
    let server = rkube_apiserver::Server::start(config, api_store, shutdown.clone()).await?;
    let source = if args.datastore.datastore_endpoint.is_some() { "etcd" } else { "embedded" };
    let hook: rkube_apiserver::handlers::SnapshotHook = {
        let (store, data_dir) = (store.clone(), data_dir.clone());
        Arc::new(move || {
            let (store, data_dir) = (store.clone(), data_dir.clone());
            Box::pin(async move {
                crate::snapshot::take(&*store, &data_dir, source).await.map_err(|e| format!("{e:#}"))
            })
        })
    };
    let _ = server.state.snapshot.set(hook);
    match rkube_apiserver::serviceaccount::TokenSigner::from_pem(&pki.sa_private_pem) {
        Ok(signer) => {
            let _ = server.state.service_accounts.set(signer);
        }
        Err(e) => tracing::warn!(error = %e, "service-account tokens disabled"),
    }
    let _ = server.state.default_toleration_seconds.set(rkube_apiserver::tolerations::DefaultTolerationSeconds {
        not_ready: args.default_not_ready_toleration_seconds,
        unreachable: args.default_unreachable_toleration_seconds,
    });
    let _ = server.state.metrics.set(metrics_hook(store_metrics, compaction_stats, etcd, data_dir.join("db")));
    if !args.datastore.etcd_disable_snapshots {
        let schedule = crate::snapshot::Schedule {
            cron: args.datastore.etcd_snapshot_schedule_cron.clone(),
            retention: args.datastore.etcd_snapshot_retention,
            dir: args.datastore.etcd_snapshot_dir.clone().unwrap_or_else(|| data_dir.join("snapshots")),
            data_dir: data_dir.clone(),
            source,
        };
        tokio::spawn(crate::snapshot::run_schedule(schedule, store.clone(), shutdown.clone()));
    }

    let host = if args.bind_address.is_unspecified() { IpAddr::V4(Ipv4Addr::LOCALHOST) } else { args.bind_address };
    let url = format!("https://{}", SocketAddr::new(host, server.local_addr.port()));
    let kubeconfig = args.write_kubeconfig.clone().unwrap_or_else(|| data_dir.join("kubeconfig.yaml"));
    pki.write_kubeconfig(&kubeconfig, &url).context("writing the kubeconfig")?;
    tracing::info!(address = %server.local_addr, elapsed_ms = started.elapsed().as_millis() as u64, "API server ready");
    eprintln!("rkube: API server listening on {url}; admin kubeconfig written to {}", kubeconfig.display());
    eprintln!("rkube: next: export KUBECONFIG={} && kubectl get namespaces", kubeconfig.display());

    let mut components = tokio::task::JoinSet::new();
    {
        let client = crate::components::client_from_yaml(&pki.kubeconfig(&url)).await.context("event client")?;
        components.spawn(crate::compaction_events::run(client, compaction_failures, shutdown.child_token()));
    }
    if let Some(config) = scheduler_config {
        let client = crate::components::client_from_yaml(&pki.kubeconfig(&url)).await.context("scheduler client")?;
        let token = shutdown.child_token();
        components.spawn(async move {
            if let Err(e) = rkube_scheduler::Scheduler::new(config, client).run(token).await {
                tracing::error!(error = %e, "scheduler stopped");
            }
        });
    }
    if let Some(mut config) = controllers {
        config.root_ca_pem = Some(pki.ca_cert_pem.clone());
        // local-path volumes live under the data dir (k3s: <data-dir>/storage).
        config.local_path = rkube_controllers::localpath::LocalPathConfig {
            storage_dir: data_dir.join("storage"),
            node_name: agent_config.as_ref().map(|a| a.node_name.clone()),
        };
        let client = crate::components::client_from_yaml(&pki.kubeconfig(&url)).await.context("controller manager client")?;
        let token = shutdown.child_token();
        components.spawn(async move {
            if let Err(e) = rkube_controllers::ControllerManager::new(config, client).run(token).await {
                tracing::error!(error = %e, "controller manager stopped");
            }
        });
    }

    if let Some(mut config) = agent_config {
        config.client_ca_pem = Some(pki.ca_cert_pem.clone());
        let client = crate::components::client_from_yaml(&pki.kubeconfig(&url)).await.context("agent client")?;
        let token = shutdown.child_token();
        components.spawn(async move {
            if let Err(e) = rkube_kubelet::Kubelet::new(config, client).run(token).await {
                tracing::error!(error = %format!("{e:#}"), "agent stopped");
            }
        });
    }

    let signal = async {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = async { match term.as_mut() { Some(t) => { t.recv().await; } None => std::future::pending::<()>().await } } => {}
        }
    };
    signal.await;
    eprintln!("rkube: shutting down");
    shutdown.cancel();
    // The agent needs up to 5 s for its tasks and 5 s to stop containerd.
    if tokio::time::timeout(std::time::Duration::from_secs(15), async { while components.join_next().await.is_some() {} }).await.is_err() {
        eprintln!("rkube: some components did not stop within 15 s");
    }
    server.wait().await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cidrs_are_parsed_and_masked() {
        assert_eq!(parse_cidr("10.43.0.0/16").unwrap(), (Ipv4Addr::new(10, 43, 0, 0), 16));
        assert_eq!(parse_cidr("10.43.7.9/16").unwrap().0, Ipv4Addr::new(10, 43, 0, 0));
        assert!(parse_cidr("10.43.0.0").is_err());
        assert!(parse_cidr("10.43.0.0/40").is_err());
    }
}
