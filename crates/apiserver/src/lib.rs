//! rkube-apiserver: the Kubernetes API server.
//!
//! HTTPS only (rustls), with optional client certificates on the same port as
//! kube-apiserver: a request with a certificate signed by the cluster CA is authenticated as
//! its CN (user) and O (groups); a request without credentials gets 401, except
//! `/healthz`, `/livez`, `/readyz` and `/version`.
//!
//! Modules: [`request`] parses paths, [`discovery`] answers discovery, [`registry`] is the
//! generic registry over the [`rkube_store::Store`], [`watchcache`] serves lists and
//! watches from memory, [`handlers`] is the HTTP glue, [`status`] the error bodies,
//! [`serviceaccount`] issues (TokenRequest) and authenticates service-account tokens.
//! [`storageclass`] is the DefaultStorageClass admission of PersistentVolumeClaims.
//! [`eviction`] serves `pods/eviction` (PodDisruptionBudgets), [`resourcequota`] is the
//! ResourceQuota admission plugin.

pub mod deletion;
pub mod discovery;
pub mod eviction;
pub mod fieldcheck;
pub mod handlers;
pub mod kubelet;
pub mod kubernetes_service;
pub mod limits;
pub mod namespace;
pub mod registry;
pub mod request;
pub mod resourcequota;
pub mod serviceaccount;
pub mod status;
pub mod storageclass;
pub mod strategy;
pub mod tls;
pub mod tolerations;
pub mod watchcache;

use std::net::SocketAddr;
use std::sync::Arc;

use rkube_store::Store;
use serde_json::{json, Value};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

pub use tls::Identity;

/// What the API server needs to start.
#[derive(Clone)]
pub struct Config {
    pub listen: SocketAddr,
    /// PEM of the serving certificate chain and its key.
    pub serving_cert_pem: String,
    pub serving_key_pem: String,
    /// PEM of the CA whose client certificates are accepted.
    pub client_ca_pem: String,
    /// Service ClusterIP range; its first address is the `kubernetes` Service.
    pub service_cidr: (std::net::Ipv4Addr, u8),
    /// The address other machines and pods reach this API server at (the `kubernetes`
    /// Endpoints); the listen address when it is a specific one.
    pub advertise_address: std::net::IpAddr,
    /// In-flight, request and watch time limits.
    pub limits: limits::Config,
    /// PEM of the client certificate and key presented to kubelets (logs, exec,
    /// port-forward, node proxy), as `--kubelet-client-certificate`/`--kubelet-client-key`.
    /// `None`: those subresources answer 503.
    pub kubelet_client_cert_pem: Option<String>,
    pub kubelet_client_key_pem: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("TLS configuration is invalid: {0}")]
    Tls(String),
    #[error("cannot listen on {addr}")]
    Listen { addr: SocketAddr, source: std::io::Error },
    #[error("datastore failed during start-up")]
    Store(#[from] rkube_store::Error),
    #[error("starting a watch cache failed: {0}")]
    WatchCache(String),
}

/// The version `/version` reports: the Kubernetes API the k8s-openapi feature selects.
pub fn version() -> Value {
    json!({
        "major": "1",
        "minor": "33",
        "gitVersion": format!("v1.33.0+rkube-{}", env!("CARGO_PKG_VERSION")),
        "gitCommit": "",
        "gitTreeState": "clean",
        "buildDate": "1970-01-01T00:00:00Z",
        "goVersion": "rust",
        "compiler": "rustc",
        "platform": format!("{}/{}", std::env::consts::OS, if cfg!(target_arch = "x86_64") { "amd64" } else { std::env::consts::ARCH }),
    })
}

/// A running API server.
pub struct Server {
    pub local_addr: SocketAddr,
    pub state: Arc<handlers::State>,
    task: tokio::task::JoinHandle<()>,
}

impl Server {
    /// Binds, bootstraps the initial namespaces and starts serving.
    pub async fn start(config: Config, store: Arc<dyn Store>, shutdown: CancellationToken) -> Result<Server, Error> {
        let acceptor = tls::acceptor(&config)?;
        let listener = TcpListener::bind(config.listen)
            .await
            .map_err(|source| Error::Listen { addr: config.listen, source })?;
        let local_addr = listener.local_addr().map_err(|source| Error::Listen { addr: config.listen, source })?;
        let kubelet = match (&config.kubelet_client_cert_pem, &config.kubelet_client_key_pem) {
            (Some(cert), Some(key)) => Some(kubelet::KubeletClient::new(cert, key)?),
            _ => None,
        };
        let registry = registry::Registry::new(store, registry::Config { service_cidr: config.service_cidr });
        let state = Arc::new(handlers::State {
            registry,
            server_address: local_addr.to_string(),
            ready: std::sync::atomic::AtomicBool::new(false),
            limits: limits::Limits::new(config.limits.clone()),
            snapshot: std::sync::OnceLock::new(),
            metrics: std::sync::OnceLock::new(),
            kubelet,
            service_accounts: std::sync::OnceLock::new(),
            default_toleration_seconds: std::sync::OnceLock::new(),
        });
        let task = tokio::spawn(tls::serve(listener, acceptor, state.clone(), shutdown.clone()));
        namespace::bootstrap(&state.registry).await?;
        let service_ip = std::net::Ipv4Addr::from(u32::from(config.service_cidr.0) + 1);
        kubernetes_service::ensure(&state.registry, service_ip, config.advertise_address, local_addr.port()).await;
        // Start every watch cache before reporting ready, as kube-apiserver does: a watch
        // can then resume from any revision since start-up, whichever server it reaches.
        let mut seen = std::collections::HashSet::new();
        let caches = rkube_api::resources::RESOURCES
            .iter()
            .filter(|info| seen.insert(info.storage))
            .map(|info| state.registry.cache(info));
        for result in futures::future::join_all(caches).await {
            result.map_err(|e| Error::WatchCache(e.message))?;
        }
        state.ready.store(true, std::sync::atomic::Ordering::Release);
        Ok(Server { local_addr, state, task })
    }

    /// Waits until the server has stopped (after the shutdown token fired).
    pub async fn wait(self) {
        let _ = self.task.await;
    }
}
