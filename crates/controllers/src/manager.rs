//! The controller manager: leader election, the shared informers, and the enabled
//! controllers, started once the caches have synced (upstream `kube-controller-manager`).

use rkube_api::leader::run_while_leading;
use tokio_util::sync::CancellationToken;

use crate::informer::Informers;
use crate::{Config, Error, Result};

pub struct ControllerManager {
    config: Config,
    client: kube::Client,
}

impl ControllerManager {
    /// No IO happens here.
    pub fn new(config: Config, client: kube::Client) -> Self {
        ControllerManager { config, client }
    }

    /// Runs the controllers until `shutdown` (with leader election: once leading). Returns
    /// early only when leadership is lost.
    pub async fn run(self, shutdown: CancellationToken) -> Result<()> {
        let (client, c) = (self.client.clone(), &self.config);
        match run_while_leading(client, &c.leader_election, &c.identity, &shutdown, |work| self.run_controllers(work)).await {
            true => Ok(()),
            false => Err(Error::LeaderElectionLost),
        }
    }

    async fn run_controllers(&self, shutdown: CancellationToken) {
        let informers = Informers::new(self.client.clone());
        let c = &self.config;
        let mut runs: Vec<futures::future::BoxFuture<'static, ()>> = Vec::new();
        // Controllers register their handlers first, so the first list reaches them all.
        if c.enabled("replicaset-controller") {
            let rs = crate::replicaset::ReplicaSetController::new(&informers);
            let (w, t) = (c.workers, shutdown.clone());
            runs.push(Box::pin(async move { rs.run(w, t).await }));
        }
        if c.enabled("deployment-controller") {
            let d = crate::deployment::DeploymentController::new(&informers);
            let (w, t) = (c.workers, shutdown.clone());
            runs.push(Box::pin(async move { d.run(w, t).await }));
        }
        if c.enabled("garbage-collector-controller") {
            let gc = crate::garbagecollector::GarbageCollector::new(&informers);
            let (w, t) = (c.gc_workers, shutdown.clone());
            runs.push(Box::pin(async move { gc.run(w, t).await }));
        }
        if c.enabled("serviceaccount-controller") {
            let sa = crate::serviceaccount::ServiceAccountController::new(&informers);
            let (w, t) = (c.workers, shutdown.clone());
            runs.push(Box::pin(async move { sa.run(w, t).await }));
        }
        match (&c.root_ca_pem, c.enabled("root-ca-certificate-publisher-controller")) {
            (Some(pem), true) => {
                let publisher = crate::rootcacertpublisher::RootCaCertPublisher::new(&informers, pem.clone());
                let (w, t) = (c.workers, shutdown.clone());
                runs.push(Box::pin(async move { publisher.run(w, t).await }));
            }
            (None, true) => tracing::warn!("no cluster CA given: root-ca-certificate-publisher not started"),
            _ => {}
        }
        if c.enabled("endpoints-controller") {
            let e = crate::endpoint::EndpointController::new(&informers);
            let (w, t) = (c.workers, shutdown.clone());
            runs.push(Box::pin(async move { e.run(w, t).await }));
        }
        if c.enabled("endpointslice-controller") {
            let e = crate::endpointslice::EndpointSliceController::new(&informers);
            let (w, t) = (c.workers, shutdown.clone());
            runs.push(Box::pin(async move { e.run(w, t).await }));
        }
        if c.enabled("disruption-controller") {
            let d = crate::disruption::DisruptionController::new(&informers);
            let (w, t) = (c.workers, shutdown.clone());
            runs.push(Box::pin(async move { d.run(w, t).await }));
        }
        if c.enabled("resourcequota-controller") {
            let q = crate::resourcequota::ResourceQuotaController::new(&informers);
            let (w, t) = (c.workers, shutdown.clone());
            runs.push(Box::pin(async move { q.run(w, t).await }));
        }
        let watches = informers.start(&shutdown);
        // As upstream's WaitForCacheSync: no controller acts on a half-filled cache (an empty
        // pod cache would make every ReplicaSet create its replicas again).
        let mut tasks = tokio::task::JoinSet::new();
        tokio::select! {
            _ = shutdown.cancelled() => {}
            _ = informers.wait_synced() => {
                tracing::info!("controller caches synced");
                for run in runs {
                    tasks.spawn(run);
                }
            }
        }
        shutdown.cancelled().await;
        while tasks.join_next().await.is_some() {}
        for w in watches {
            w.abort();
        }
    }
}
