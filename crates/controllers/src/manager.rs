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
        if c.enabled("job-controller") {
            let j = crate::job::JobController::new(&informers, c.job);
            let (w, t) = (c.workers, shutdown.clone());
            runs.push(Box::pin(async move { j.run(w, t).await }));
        }
        if c.enabled("cronjob-controller") {
            let cj = crate::cronjob::CronJobController::new(&informers);
            let (w, t) = (c.workers, shutdown.clone());
            runs.push(Box::pin(async move { cj.run(w, t).await }));
        }
        if c.enabled("ttl-after-finished-controller") {
            let ttl = crate::ttlafterfinished::TtlAfterFinishedController::new(&informers);
            let (w, t) = (c.workers, shutdown.clone());
            runs.push(Box::pin(async move { ttl.run(w, t).await }));
        }
        if c.enabled("daemonset-controller") {
            let ds = crate::daemonset::DaemonSetController::new(&informers);
            let (w, t) = (c.workers, shutdown.clone());
            runs.push(Box::pin(async move { ds.run(w, t).await }));
        }
        if c.enabled("statefulset-controller") {
            let sts = crate::statefulset::StatefulSetController::new(&informers);
            let (w, t) = (c.workers, shutdown.clone());
            runs.push(Box::pin(async move { sts.run(w, t).await }));
        }
        if c.enabled("persistentvolume-binder-controller") {
            let b = crate::pvbinder::PersistentVolumeBinder::new(&informers);
            let (w, t) = (c.workers, shutdown.clone());
            runs.push(Box::pin(async move { b.run(w, t).await }));
        }
        if c.enabled("local-path-provisioner") {
            let p = crate::localpath::LocalPathProvisioner::new(&informers, c.local_path.clone());
            let (w, t) = (c.workers, shutdown.clone());
            runs.push(Box::pin(async move { p.run(w, t).await }));
        }
        if c.enabled("namespace-controller") {
            let n = crate::namespace::NamespaceController::new(&informers);
            let (w, t) = (c.workers, shutdown.clone());
            runs.push(Box::pin(async move { n.run(w, t).await }));
        }
        if c.enabled("node-lifecycle-controller") {
            let n = crate::nodelifecycle::NodeLifecycleController::new(&informers, c.node_monitor_grace_period);
            let (w, t) = (c.workers, shutdown.clone());
            runs.push(Box::pin(async move { n.run(w, t).await }));
        }
        if c.enabled("node-ipam-controller") {
            let n = crate::nodeipam::NodeIpamController::new(&informers, c.cluster_cidr, c.node_cidr_mask_size);
            let (w, t) = (c.workers, shutdown.clone());
            runs.push(Box::pin(async move { n.run(w, t).await }));
        }
        if c.enabled("pod-garbage-collector-controller") {
            let config = crate::podgc::Config {
                terminated_pod_gc_threshold: c.terminated_pod_gc_threshold,
                period: c.pod_gc_period,
                quarantine: c.pod_gc_quarantine,
            };
            let gc = crate::podgc::PodGc::new(&informers, config);
            let t = shutdown.clone();
            runs.push(Box::pin(async move { gc.run(t).await }));
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
        if c.enabled("horizontal-pod-autoscaler-controller") {
            let h = crate::hpa::HpaController::new(&informers);
            let (w, t) = (c.workers, shutdown.clone());
            runs.push(Box::pin(async move { h.run(w, t).await }));
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
