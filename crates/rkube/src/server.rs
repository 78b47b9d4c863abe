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
    /// Do not run the agent (kubelet and kube-proxy) on this machine. The agent arrives with
    /// the kubelet; until then the server never runs one and this flag is accepted for scripts.
    #[arg(long)]
    pub disable_agent: bool,
    /// Do not run the scheduler inside the server.
    #[arg(long)]
    pub disable_scheduler: bool,
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
}

fn default_data_dir() -> PathBuf {
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

pub async fn run(args: ServerArgs, full_server: bool) -> anyhow::Result<()> {
    let started = std::time::Instant::now();
    let run_scheduler = full_server && !args.disable_scheduler;
    // Validate the scheduler config before anything starts, so a bad file fails fast.
    let scheduler_config = match run_scheduler {
        true => Some(crate::components::scheduler_config(args.scheduler_config.as_deref(), None)?),
        false => None,
    };
    let data_dir = args.data_dir.clone().unwrap_or_else(default_data_dir);
    let service_cidr = parse_cidr(&args.service_cidr)?;
    parse_cidr(&args.cluster_cidr)?;
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

    let store = rkube_store::EmbeddedStore::open(&data_dir.join("db"))
        .await
        .with_context(|| format!("cannot open the datastore in {}", data_dir.join("db").display()))?;
    let store: Arc<dyn rkube_store::Store> = Arc::new(store);

    let shutdown = CancellationToken::new();
    let config = rkube_apiserver::Config {
        listen: SocketAddr::new(args.bind_address, args.https_port),
        serving_cert_pem: pki.serving_cert_pem.clone(),
        serving_key_pem: pki.serving_key_pem.clone(),
        client_ca_pem: pki.ca_cert_pem.clone(),
        service_cidr,
    };
    let server = rkube_apiserver::Server::start(config, store, shutdown.clone()).await?;

    let host = if args.bind_address.is_unspecified() { IpAddr::V4(Ipv4Addr::LOCALHOST) } else { args.bind_address };
    let url = format!("https://{}", SocketAddr::new(host, server.local_addr.port()));
    let kubeconfig = args.write_kubeconfig.clone().unwrap_or_else(|| data_dir.join("kubeconfig.yaml"));
    pki.write_kubeconfig(&kubeconfig, &url).context("writing the kubeconfig")?;
    tracing::info!(address = %server.local_addr, elapsed_ms = started.elapsed().as_millis() as u64, "API server ready");
    eprintln!("rkube: API server listening on {url}; admin kubeconfig written to {}", kubeconfig.display());
    eprintln!("rkube: next: export KUBECONFIG={} && kubectl get namespaces", kubeconfig.display());

    let mut components = tokio::task::JoinSet::new();
    if let Some(config) = scheduler_config {
        let client = crate::components::client_from_yaml(&pki.kubeconfig(&url)).await.context("scheduler client")?;
        let token = shutdown.child_token();
        components.spawn(async move {
            if let Err(e) = rkube_scheduler::Scheduler::new(config, client).run(token).await {
                tracing::error!(error = %e, "scheduler stopped");
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
    if tokio::time::timeout(std::time::Duration::from_secs(5), async { while components.join_next().await.is_some() {} }).await.is_err() {
        eprintln!("rkube: some components did not stop within 5 s");
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
