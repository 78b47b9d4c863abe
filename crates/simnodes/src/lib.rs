//! Simulated nodes, as KWOK does upstream: registers N `Node` objects with a given capacity,
//! keeps their `coordination.k8s.io` Leases in `kube-node-lease` fresh, and moves the pods
//! bound to them to `Running`/`Ready` without running any container. A pod annotated
//! `rkube.io/sim-run-seconds: "N"` (and optionally `rkube.io/sim-exit-code: "C"`, default 0)
//! has its containers exit with that code N seconds after they start: the pod then ends
//! Succeeded or Failed, or its containers restart as its restartPolicy says (so Jobs can
//! finish and fail on simulated nodes).
//!
//! Modules: [`node`] builds the Node and Lease objects (pure), [`pod`] decides what a bound
//! pod's status becomes (pure), and [`SimNodes`] is the async shell that talks to the API
//! server through kube-rs only.
//!
//! Design for scale (1,000–5,000 nodes from one process): one watch for all pods (filtered
//! to this prefix's nodes on the client side), lease renewals sent in one batch per period
//! with a bounded number of requests in flight, and pod status writes through a bounded
//! worker pool. It is its own crate (not part of the kubelet) because it is a test and
//! benchmark tool that must not pull in the runtime machinery, and it is usable from tests
//! of any component and from `rkube sim-nodes`.

pub mod node;
pub mod pod;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Namespace, Node, Pod, Taint};
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams, Preconditions};
use kube::runtime::{watcher, WatchStreamExt};
use tokio_util::sync::CancellationToken;

pub use node::NodeTemplate;

/// Errors of the simulated nodes.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Registering a node (or its lease) failed.
    #[error("registering node {node}")]
    RegisterFailed {
        node: String,
        #[source]
        source: Box<kube::Error>,
    },
    /// A flag value could not be parsed.
    #[error("invalid {flag} {value:?}: {reason}")]
    InvalidFlag { flag: &'static str, value: String, reason: String },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Settings of one group of simulated nodes.
#[derive(Debug, Clone)]
pub struct Config {
    /// Number of nodes: `<name_prefix>0` .. `<name_prefix>{count-1}`.
    pub count: usize,
    pub name_prefix: String,
    /// Capacity (= allocatable) of each node.
    pub cpu: String,
    pub memory: String,
    pub pods: u32,
    /// Nodes are spread round-robin over `zone-0` .. `zone-{zones-1}` (0 = no zone label).
    pub zones: usize,
    pub labels: BTreeMap<String, String>,
    pub taints: Vec<Taint>,
    /// How often node leases are renewed (kubelet: 10 s).
    pub lease_renew_interval: Duration,
    /// Upper bound on API requests in flight (registration, leases, pod status).
    pub concurrency: usize,
}

impl Default for Config {
    /// 1 node `sim-0` with 4 CPUs, 8Gi and 110 pods, no zones, renewing its lease every 10 s.
    fn default() -> Self {
        Config {
            count: 1,
            name_prefix: "sim-".into(),
            cpu: "4".into(),
            memory: "8Gi".into(),
            pods: 110,
            zones: 0,
            labels: BTreeMap::new(),
            taints: Vec::new(),
            lease_renew_interval: Duration::from_secs(10),
            concurrency: 32,
        }
    }
}

/// Parses `k=v,k2=v2` (the `--labels` flag).
pub fn parse_labels(s: &str) -> Result<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    for item in s.split(',').map(str::trim).filter(|i| !i.is_empty()) {
        let (k, v) = item.split_once('=').ok_or_else(|| Error::InvalidFlag {
            flag: "--labels",
            value: item.into(),
            reason: "expected KEY=VALUE".into(),
        })?;
        out.insert(k.to_owned(), v.to_owned());
    }
    Ok(out)
}

/// Parses `k=v:Effect,k:Effect` (the `--taints` flag, kubectl taint syntax).
pub fn parse_taints(s: &str) -> Result<Vec<Taint>> {
    let mut out = Vec::new();
    for item in s.split(',').map(str::trim).filter(|i| !i.is_empty()) {
        let bad = |reason: &str| Error::InvalidFlag { flag: "--taints", value: item.into(), reason: reason.into() };
        let (kv, effect) = item.rsplit_once(':').ok_or_else(|| bad("expected KEY[=VALUE]:EFFECT"))?;
        if !["NoSchedule", "PreferNoSchedule", "NoExecute"].contains(&effect) {
            return Err(bad("effect must be NoSchedule, PreferNoSchedule or NoExecute"));
        }
        let (key, value) = match kv.split_once('=') {
            Some((k, v)) => (k, Some(v.to_owned())),
            None => (kv, None),
        };
        if key.is_empty() {
            return Err(bad("empty key"));
        }
        out.push(Taint { key: key.into(), value, effect: effect.into(), time_added: None });
    }
    Ok(out)
}

/// A group of simulated nodes bound to one API server.
pub struct SimNodes {
    config: Config,
    client: kube::Client,
    registered: Arc<tokio::sync::Notify>,
}

impl SimNodes {
    /// No IO happens here.
    pub fn new(config: Config, client: kube::Client) -> Self {
        SimNodes { config, client, registered: Arc::new(tokio::sync::Notify::new()) }
    }

    /// Notified once every node (with its lease) is registered.
    pub fn registered(&self) -> Arc<tokio::sync::Notify> {
        self.registered.clone()
    }

    /// Registers the nodes, then keeps leases fresh and drives bound pods until `shutdown`
    /// is cancelled. Returns early only if registration fails.
    pub async fn run(self, shutdown: CancellationToken) -> Result<()> {
        let template = Arc::new(NodeTemplate::from_config(&self.config));
        self.register(&template).await?;
        tracing::info!(count = self.config.count, prefix = %self.config.name_prefix, "simulated nodes registered");
        self.registered.notify_one();
        let leases = renew_leases(self.client.clone(), template.clone(), self.config.clone(), shutdown.clone());
        let pods = drive_pods(self.client.clone(), template.clone(), self.config.concurrency, shutdown.clone());
        tokio::join!(leases, pods);
        Ok(())
    }

    async fn register(&self, template: &Arc<NodeTemplate>) -> Result<()> {
        let namespaces: Api<Namespace> = Api::all(self.client.clone());
        let ns = Namespace { metadata: kube::api::ObjectMeta { name: Some(node::LEASE_NAMESPACE.into()), ..Default::default() }, ..Default::default() };
        if let Err(e) = namespaces.create(&PostParams::default(), &ns).await {
            if !is_conflict(&e) {
                return Err(Error::RegisterFailed { node: node::LEASE_NAMESPACE.into(), source: Box::new(e) });
            }
        }
        let nodes: Api<Node> = Api::all(self.client.clone());
        let leases: Api<Lease> = Api::namespaced(self.client.clone(), node::LEASE_NAMESPACE);
        futures::stream::iter(0..template.count)
            .map(|i| {
                let (nodes, leases, template) = (nodes.clone(), leases.clone(), template.clone());
                async move { register_one(&nodes, &leases, &template, i).await }
            })
            .buffer_unordered(self.config.concurrency.max(1))
            .try_collect::<Vec<()>>()
            .await?;
        Ok(())
    }
}

fn is_conflict(e: &kube::Error) -> bool {
    matches!(e, kube::Error::Api(s) if s.code == 409)
}

async fn register_one(nodes: &Api<Node>, leases: &Api<Lease>, template: &NodeTemplate, i: usize) -> Result<()> {
    let name = template.node_name(i);
    let wrap = |e| Error::RegisterFailed { node: name.clone(), source: Box::new(e) };
    let node = template.node(i);
    match nodes.create(&PostParams::default(), &node).await {
        Ok(_) => {}
        Err(e) if is_conflict(&e) => {
            // Re-registration after a restart: refresh labels, taints and spec (as a kubelet does).
            let body = serde_json::json!({"metadata": {"labels": node.metadata.labels}, "spec": node.spec});
            nodes.patch(&name, &PatchParams::default(), &Patch::Merge(&body)).await.map_err(wrap)?;
        }
        Err(e) => return Err(wrap(e)),
    }
    // The API server keeps status out of create (status is a subresource), so set it explicitly.
    let status = serde_json::json!({"status": node.status});
    nodes.patch_status(&name, &PatchParams::default(), &Patch::Merge(&status)).await.map_err(wrap)?;
    let lease = template.lease(i, node::now());
    match leases.create(&PostParams::default(), &lease).await {
        Ok(_) => Ok(()),
        Err(e) if is_conflict(&e) => Ok(()),
        Err(e) => Err(wrap(e)),
    }
}

/// Renews every node's lease once per interval, in one batch with bounded concurrency.
async fn renew_leases(client: kube::Client, template: Arc<NodeTemplate>, config: Config, shutdown: CancellationToken) {
    let leases: Api<Lease> = Api::namespaced(client, node::LEASE_NAMESPACE);
    let mut tick = tokio::time::interval(config.lease_renew_interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await;
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        let now = node::now();
        let failures = futures::stream::iter(0..template.count)
            .map(|i| {
                let leases = leases.clone();
                let name = template.node_name(i);
                let body = serde_json::json!({"spec": {"renewTime": now, "holderIdentity": name}});
                async move { leases.patch(&name, &PatchParams::default(), &Patch::Merge(&body)).await.is_err() }
            })
            .buffer_unordered(config.concurrency.max(1))
            .filter(|failed| futures::future::ready(*failed))
            .count()
            .await;
        if failures > 0 {
            tracing::warn!(failures, "some node leases were not renewed");
        }
    }
}

/// What the pod loop does with one pod.
enum PodWork {
    MarkRunning(Box<Pod>, usize),
    Delete(String, String, String),
}

/// Watches all pods; pods bound to our nodes go Running, terminating ones are deleted.
async fn drive_pods(client: kube::Client, template: Arc<NodeTemplate>, concurrency: usize, shutdown: CancellationToken) {
    let pods: Api<Pod> = Api::all(client.clone());
    let (tx, rx) = tokio::sync::mpsc::channel::<PodWork>(4096);
    let workers = run_pod_workers(client, template.clone(), rx, concurrency);
    let watch = async {
        let mut started: HashSet<String> = HashSet::new();
        let mut stream = std::pin::pin!(watcher(pods, watcher::Config::default()).default_backoff());
        loop {
            let event = tokio::select! {
                _ = shutdown.cancelled() => break,
                e = stream.next() => e,
            };
            let Some(event) = event else { break };
            let pod = match event {
                Ok(watcher::Event::Apply(p)) | Ok(watcher::Event::InitApply(p)) => p,
                Ok(watcher::Event::Delete(p)) => {
                    started.remove(p.metadata.uid.as_deref().unwrap_or_default());
                    continue;
                }
                Ok(_) => continue,
                Err(e) => {
                    tracing::warn!(error = %e, "pod watch failed; retrying");
                    continue;
                }
            };
            let Some(index) = pod.spec.as_ref().and_then(|s| s.node_name.as_deref()).and_then(|n| template.node_index(n)) else {
                continue;
            };
            let uid = pod.metadata.uid.clone().unwrap_or_default();
            let work = match pod::next_action(&pod) {
                pod::Action::None => continue,
                pod::Action::Delete => PodWork::Delete(
                    pod.metadata.namespace.clone().unwrap_or_default(),
                    pod.metadata.name.clone().unwrap_or_default(),
                    uid,
                ),
                pod::Action::Start => {
                    // Our own status write comes back as an event before the watch sees it
                    // applied; do not start a pod twice.
                    if !started.insert(uid) {
                        continue;
                    }
                    PodWork::MarkRunning(Box::new(pod), index)
                }
            };
            if tx.send(work).await.is_err() {
                break;
            }
        }
        drop(tx);
    };
    tokio::join!(watch, workers);
}

async fn run_pod_workers(client: kube::Client, template: Arc<NodeTemplate>, rx: tokio::sync::mpsc::Receiver<PodWork>, concurrency: usize) {
    let mut next_ip: HashMap<usize, u32> = HashMap::new();
    tokio_stream_from(rx)
        .map(|work| {
            let ip = match &work {
                PodWork::MarkRunning(_, index) => {
                    let c = next_ip.entry(*index).or_insert(0);
                    *c += 1;
                    template.pod_ip(*index, *c)
                }
                PodWork::Delete(..) => std::net::Ipv4Addr::UNSPECIFIED,
            };
            let client = client.clone();
            let template = template.clone();
            async move {
                match work {
                    PodWork::MarkRunning(p, index) => {
                        let api: Api<Pod> = Api::namespaced(client, p.metadata.namespace.as_deref().unwrap_or("default"));
                        let status = pod::running_status(&p, ip, template.node_ip(index), node::now());
                        let body = serde_json::json!({"status": status});
                        let name = p.metadata.name.clone().unwrap_or_default();
                        if let Err(e) = api.patch_status(&name, &PatchParams::default(), &Patch::Merge(&body)).await {
                            tracing::debug!(pod = %name, error = %e, "pod status update failed");
                            return;
                        }
                        if let Some(exit) = pod::sim_exit(&p) {
                            tokio::spawn(run_to_exit(api, name, status, exit));
                        }
                    }
                    PodWork::Delete(ns, name, uid) => {
                        let api: Api<Pod> = Api::namespaced(client, &ns);
                        let dp = DeleteParams {
                            grace_period_seconds: Some(0),
                            preconditions: Some(Preconditions { uid: Some(uid), resource_version: None }),
                            ..Default::default()
                        };
                        if let Err(e) = api.delete(&name, &dp).await {
                            tracing::debug!(pod = %format!("{ns}/{name}"), error = %e, "pod delete failed");
                        }
                    }
                }
            }
        })
        .buffer_unordered(concurrency.max(1))
        .for_each(|_| async {})
        .await;
}

/// Lets a started pod's containers exit as its annotations say: once for a pod that ends,
/// again after every restart otherwise, until the pod is gone or a status write fails.
async fn run_to_exit(api: Api<Pod>, name: String, mut status: k8s_openapi::api::core::v1::PodStatus, exit: pod::SimExit) {
    loop {
        tokio::time::sleep(exit.after).await;
        status = pod::exited_status(&status, exit, node::now());
        let body = serde_json::json!({"status": status});
        if let Err(e) = api.patch_status(&name, &PatchParams::default(), &Patch::Merge(&body)).await {
            tracing::debug!(pod = %name, error = %e, "pod exit not recorded");
            return;
        }
        if !exit.restarts {
            return;
        }
    }
}

fn tokio_stream_from<T>(mut rx: tokio::sync::mpsc::Receiver<T>) -> impl futures::Stream<Item = T> {
    futures::stream::poll_fn(move |cx| rx.poll_recv(cx))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_and_taints_parse_like_kubectl() {
        let l = parse_labels("a=b, c=d").unwrap();
        assert_eq!(l.get("c").map(String::as_str), Some("d"));
        assert!(parse_labels("novalue").is_err());
        let t = parse_taints("dedicated=gpu:NoSchedule,spot:PreferNoSchedule").unwrap();
        assert_eq!(t[0].key, "dedicated");
        assert_eq!(t[0].value.as_deref(), Some("gpu"));
        assert_eq!(t[1].value, None);
        assert_eq!(t[1].effect, "PreferNoSchedule");
        assert!(parse_taints("a=b:Sometimes").is_err());
        assert!(parse_taints("a=b").is_err());
    }
}
