//! The pod manager: watches the pods bound to this node, admits new ones (upstream's
//! resource-fit admission: OutOfcpu, OutOfmemory, OutOfpods), runs one [`worker`] per pod,
//! and removes sandboxes of pods that no longer exist (after a restart, or force-deleted).
//!
//! Modules: [`runtime`] reads and changes CRI state by upstream's labels, [`config`] builds
//! CRI configs, [`env`] the container environment, [`resources`] QoS and CRI resources,
//! [`status`] computes pod status (pure), [`backoff`] is the restart/pull back-off,
//! [`events`] the event recorder, [`pull`] image pulls, [`kill`] pod termination,
//! [`probes`] liveness/readiness/startup probes, and [`worker`] the per-pod sync loop.

pub mod backoff;
pub mod config;
pub mod env;
pub mod events;
pub mod kill;
pub mod probes;
pub mod pull;
pub mod resources;
pub mod runtime;
pub mod status;
pub mod worker;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::Pod;
use kube::api::Api;
use kube::runtime::{watcher, WatchStreamExt};
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

pub use worker::Context;

/// How often sandboxes of unknown pods are looked for.
const ORPHAN_SCAN: Duration = Duration::from_secs(30);

/// A running worker.
struct Handle {
    tx: watch::Sender<Option<Arc<Pod>>>,
    /// (cpu milli, memory bytes) counted against allocatable while the pod is active.
    requests: (i64, i64),
    terminal: bool,
    /// The status written when admission rejected the pod: later pod versions that do not
    /// show it yet (a lagging watch) get it, so the rejected pod never runs.
    rejected: Option<k8s_openapi::api::core::v1::PodStatus>,
}

/// The outcome of admitting a pod against what admitted pods already use.
#[derive(Debug, PartialEq, Eq)]
pub enum Admission {
    Admit,
    Reject { reason: String, message: String },
}

/// Upstream's resource-fit admission (pkg/kubelet/lifecycle/predicate.go): requests of
/// cpu (millicores), memory (bytes) and the pod count against allocatable.
pub fn admit(requested: (i64, i64), used: (i64, i64), pods: usize, allocatable: (i64, i64), max_pods: usize) -> Admission {
    let reject = |reason: &str, resource: &str, requested: i64, used: i64, capacity: i64| Admission::Reject {
        reason: reason.into(),
        message: format!("Node didn't have enough resource: {resource}, requested: {requested}, used: {used}, capacity: {capacity}"),
    };
    if pods + 1 > max_pods {
        return reject("OutOfpods", "pods", 1, pods as i64, max_pods as i64);
    }
    if requested.0 > 0 && requested.0 + used.0 > allocatable.0 {
        return reject("OutOfcpu", "cpu", requested.0, used.0, allocatable.0);
    }
    if requested.1 > 0 && requested.1 + used.1 > allocatable.1 {
        return reject("OutOfmemory", "memory", requested.1, used.1, allocatable.1);
    }
    Admission::Admit
}

fn is_terminal(pod: &Pod) -> bool {
    matches!(pod.status.as_ref().and_then(|s| s.phase.as_deref()), Some("Succeeded") | Some("Failed"))
}

/// Whether the pod was already accepted by a kubelet (a restart must not re-reject it).
fn already_started(pod: &Pod) -> bool {
    let status = pod.status.as_ref();
    status.and_then(|s| s.container_statuses.as_ref()).is_some() || status.and_then(|s| s.start_time.as_ref()).is_some()
}

/// Watches this node's pods and runs their workers until `shutdown`.
pub async fn run(ctx: Arc<Context>, shutdown: CancellationToken) {
    let pods: Api<Pod> = Api::all(ctx.client.clone());
    let config = watcher::Config::default().fields(&format!("spec.nodeName={}", ctx.node_name));
    let mut stream = std::pin::pin!(watcher(pods, config).default_backoff());
    let mut handles: HashMap<String, Handle> = HashMap::new();
    let mut workers: JoinSet<String> = JoinSet::new();
    let mut listing: Option<HashSet<String>> = None;
    let mut synced = false;
    let mut scan = tokio::time::interval(ORPHAN_SCAN);
    scan.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => break,
            Some(done) = workers.join_next(), if !workers.is_empty() => {
                if let Ok(uid) = done {
                    handles.remove(&uid);
                }
            }
            _ = scan.tick(), if synced => {
                let known: HashSet<String> = handles.keys().cloned().collect();
                tokio::spawn(remove_orphans(ctx.clone(), known));
            }
            event = stream.next() => {
                let Some(event) = event else { break };
                match event {
                    Ok(watcher::Event::Init) => listing = Some(HashSet::new()),
                    Ok(watcher::Event::InitApply(pod)) => {
                        if let Some(seen) = listing.as_mut() {
                            seen.insert(pod.metadata.uid.clone().unwrap_or_default());
                        }
                        apply(&ctx, &mut handles, &mut workers, pod, &shutdown).await;
                    }
                    Ok(watcher::Event::InitDone) => {
                        // Pods that vanished while the watch was down are gone.
                        if let Some(seen) = listing.take() {
                            for (uid, h) in handles.iter() {
                                if !seen.contains(uid) {
                                    let _ = h.tx.send(None);
                                }
                            }
                        }
                        if !synced {
                            synced = true;
                            let known: HashSet<String> = handles.keys().cloned().collect();
                            tokio::spawn(remove_orphans(ctx.clone(), known));
                        }
                    }
                    Ok(watcher::Event::Apply(pod)) => apply(&ctx, &mut handles, &mut workers, pod, &shutdown).await,
                    Ok(watcher::Event::Delete(pod)) => {
                        if let Some(h) = handles.get(pod.metadata.uid.as_deref().unwrap_or("")) {
                            let _ = h.tx.send(None);
                        }
                    }
                    Err(e) => tracing::warn!(error = %e, "pod watch failed; retrying"),
                }
            }
        }
    }
    workers.shutdown().await;
}

/// Hands a pod to its worker, admitting and starting a worker for a new one.
async fn apply(ctx: &Arc<Context>, handles: &mut HashMap<String, Handle>, workers: &mut JoinSet<String>, pod: Pod, shutdown: &CancellationToken) {
    let uid = pod.metadata.uid.clone().unwrap_or_default();
    let terminal = is_terminal(&pod);
    if let Some(h) = handles.get_mut(&uid) {
        let mut pod = pod;
        if let (Some(status), false) = (&h.rejected, terminal) {
            pod.status = Some(status.clone());
        }
        h.terminal = is_terminal(&pod);
        let _ = h.tx.send(Some(Arc::new(pod)));
        return;
    }
    let spec = pod.spec.clone().unwrap_or_default();
    let requests = (resources::pod_request(&spec, "cpu"), resources::pod_request(&spec, "memory"));
    if !terminal && pod.metadata.deletion_timestamp.is_none() && !already_started(&pod) {
        let active: Vec<&Handle> = handles.values().filter(|h| !h.terminal).collect();
        let used = active.iter().fold((0, 0), |acc, h| (acc.0 + h.requests.0, acc.1 + h.requests.1));
        let alloc = (ctx.allocatable.cpu_milli, ctx.allocatable.memory_bytes);
        if let Admission::Reject { reason, message } = admit(requests, used, active.len(), alloc, crate::node::MAX_PODS as usize) {
            tracing::info!(pod = %format!("{}/{}", pod.metadata.namespace.as_deref().unwrap_or(""), pod.metadata.name.as_deref().unwrap_or("")), %reason, "pod rejected");
            // The worker starts from the rejected status, so it never runs the pod.
            let status = worker::reject(ctx, &pod, &reason, &message).await;
            let mut rejected = pod;
            rejected.status = Some(status.clone());
            spawn_worker(ctx, handles, workers, rejected, requests, true, shutdown);
            if let Some(h) = handles.get_mut(&uid) {
                h.rejected = Some(status);
            }
            return;
        }
    }
    spawn_worker(ctx, handles, workers, pod, requests, terminal, shutdown);
}

fn spawn_worker(
    ctx: &Arc<Context>,
    handles: &mut HashMap<String, Handle>,
    workers: &mut JoinSet<String>,
    pod: Pod,
    requests: (i64, i64),
    terminal: bool,
    shutdown: &CancellationToken,
) {
    let uid = pod.metadata.uid.clone().unwrap_or_default();
    let (tx, rx) = watch::channel(Some(Arc::new(pod)));
    handles.insert(uid.clone(), Handle { tx, requests, terminal, rejected: None });
    let (ctx, token) = (ctx.clone(), shutdown.child_token());
    workers.spawn(async move {
        worker::run(ctx, rx, token).await;
        uid
    });
}

/// Stops and removes sandboxes whose pod this kubelet does not know (deleted while it was
/// down, or force-deleted), and their cgroups.
async fn remove_orphans(ctx: Arc<Context>, known: HashSet<String>) {
    let Ok(sandboxes) = runtime::all_sandboxes(&ctx.cri).await else { return };
    for (id, uid) in sandboxes {
        if uid.is_empty() || known.contains(&uid) {
            continue;
        }
        tracing::info!(sandbox = %id, pod_uid = %uid, "removing the sandbox of a pod that no longer exists");
        if let Err(e) = runtime::remove_sandbox(&ctx.cri, &id).await {
            tracing::warn!(sandbox = %id, error = %e, "removing orphaned sandbox failed");
        }
        for qos in ["Guaranteed", "Burstable", "BestEffort"] {
            runtime::remove_pod_cgroups(&resources::cgroup_parent(qos, &uid));
        }
    }
    // Volumes of pods this kubelet no longer runs (their sandboxes are gone already).
    for uid in crate::volumes::pod_dirs(&ctx.pods_dir) {
        if !known.contains(&uid) {
            crate::volumes::teardown(&ctx.pods_dir, &uid);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn admission_rejects_what_does_not_fit_with_upstream_messages() {
        assert_eq!(admit((500, 0), (1000, 0), 1, (2000, 1 << 30), 110), Admission::Admit);
        assert_eq!(
            admit((1500, 0), (1000, 0), 1, (2000, 1 << 30), 110),
            Admission::Reject {
                reason: "OutOfcpu".into(),
                message: "Node didn't have enough resource: cpu, requested: 1500, used: 1000, capacity: 2000".into()
            }
        );
        match admit((0, 2 << 30), (0, 0), 0, (2000, 1 << 30), 110) {
            Admission::Reject { reason, .. } => assert_eq!(reason, "OutOfmemory"),
            other => panic!("{other:?}"),
        }
        match admit((0, 0), (0, 0), 110, (2000, 1 << 30), 110) {
            Admission::Reject { reason, .. } => assert_eq!(reason, "OutOfpods"),
            other => panic!("{other:?}"),
        }
    }
}
