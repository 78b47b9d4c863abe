//! The `node-lifecycle` controller (upstream `pkg/controller/nodelifecycle`) with its
//! taint-based eviction (upstream `pkg/controller/tainteviction`, the NoExecuteTaintManager).
//!
//! - **Node monitor**: a node whose Lease in `kube-node-lease` and Ready heartbeat
//!   (`lastHeartbeatTime`) have not changed for `node_monitor_grace_period` gets its
//!   conditions set to Unknown (`NodeStatusUnknown`, "Kubelet stopped posting node status."),
//!   and its pods marked not Ready (upstream `MarkPodsNotReady`). Changes are timed with this
//!   process's monotonic clock when it observes them, as upstream's probe timestamps, so a
//!   skewed kubelet clock does not matter.
//! - **Taints**: Ready=False gives `node.kubernetes.io/not-ready`, Ready=Unknown
//!   `node.kubernetes.io/unreachable`, each as NoExecute (with timeAdded) and NoSchedule;
//!   they are removed when the node is Ready again.
//! - **Eviction**: a pod on a node with NoExecute taints it does not all tolerate is deleted
//!   at once; one that tolerates them for tolerationSeconds is deleted that long after the
//!   taint was added (the DisruptionTarget condition first, and a `TaintManagerEviction`
//!   event, as upstream).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Node, NodeCondition, Pod, PodCondition, Taint, Toleration};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use rkube_api::ObjectKey;
use serde_json::json;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::controller::{run_workers, RESYNC_PERIOD};
use crate::error::{is_not_found, Error, Result};
use crate::events::{Recorder, NORMAL};
use crate::informer::{Change, Informer, Informers};
use crate::queue::WorkQueue;

pub const NOT_READY: &str = "node.kubernetes.io/not-ready";
pub const UNREACHABLE: &str = "node.kubernetes.io/unreachable";
const LEASE_NAMESPACE: &str = "kube-node-lease";
/// The conditions a kubelet posts and the monitor sets Unknown.
const KUBELET_CONDITIONS: &[&str] = &["Ready", "MemoryPressure", "DiskPressure", "PIDPressure"];

/// The conditions of a node that stopped posting status (upstream `tryUpdateNodeHealth`),
/// or `None` when they already say Unknown.
pub fn unknown_conditions(node: &Node, now: jiff::Timestamp) -> Option<Vec<NodeCondition>> {
    let mut conditions = node.status.as_ref().and_then(|s| s.conditions.clone()).unwrap_or_default();
    let mut changed = false;
    for type_ in KUBELET_CONDITIONS {
        match conditions.iter_mut().find(|c| c.type_ == *type_) {
            Some(c) if c.status == "Unknown" => {}
            Some(c) => {
                c.status = "Unknown".into();
                c.reason = Some("NodeStatusUnknown".into());
                c.message = Some("Kubelet stopped posting node status.".into());
                c.last_transition_time = Some(Time(now));
                changed = true;
            }
            None => {
                conditions.push(NodeCondition {
                    type_: (*type_).into(),
                    status: "Unknown".into(),
                    reason: Some("NodeStatusNeverUpdated".into()),
                    message: Some("Kubelet never posted node status.".into()),
                    last_heartbeat_time: node.metadata.creation_timestamp.clone(),
                    last_transition_time: Some(Time(now)),
                });
                changed = true;
            }
        }
    }
    changed.then_some(conditions)
}

fn ready_status(node: &Node) -> Option<&str> {
    let conditions = node.status.as_ref()?.conditions.as_ref()?;
    conditions.iter().find(|c| c.type_ == "Ready").map(|c| c.status.as_str())
}

fn managed(t: &Taint) -> bool {
    (t.key == NOT_READY || t.key == UNREACHABLE) && (t.effect == "NoExecute" || t.effect == "NoSchedule")
}

/// The node's taints as its Ready condition wants them: the not-ready or unreachable pair,
/// or neither; other taints and the timeAdded of a taint already there are kept.
pub fn desired_taints(node: &Node, now: jiff::Timestamp) -> Vec<Taint> {
    let current = node.spec.as_ref().and_then(|s| s.taints.clone()).unwrap_or_default();
    let key = match ready_status(node) {
        Some("False") => Some(NOT_READY),
        Some("Unknown") => Some(UNREACHABLE),
        _ => None,
    };
    let mut out: Vec<Taint> = current.iter().filter(|t| !managed(t) || Some(t.key.as_str()) == key).cloned().collect();
    if let Some(key) = key {
        for effect in ["NoSchedule", "NoExecute"] {
            if !out.iter().any(|t| t.key == key && t.effect == effect) {
                let time_added = (effect == "NoExecute").then_some(Time(now));
                out.push(Taint { key: key.into(), effect: effect.into(), value: None, time_added });
            }
        }
    }
    out
}

/// Whether `t` tolerates `taint` (upstream `Toleration.ToleratesTaint`).
pub fn tolerates(t: &Toleration, taint: &Taint) -> bool {
    if let Some(effect) = t.effect.as_deref().filter(|e| !e.is_empty()) {
        if effect != taint.effect {
            return false;
        }
    }
    if let Some(key) = t.key.as_deref().filter(|k| !k.is_empty()) {
        if key != taint.key {
            return false;
        }
    }
    match t.operator.as_deref() {
        Some("Exists") => true,
        _ => t.value.as_deref().unwrap_or_default() == taint.value.as_deref().unwrap_or_default(),
    }
}

/// When a pod on a node with these taints is to be evicted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Eviction {
    /// No NoExecute taint, or every one tolerated forever.
    Never,
    /// Some NoExecute taint is not tolerated.
    Now,
    /// Every NoExecute taint is tolerated, the shortest for this long after it was added.
    At(jiff::Timestamp),
}

/// Upstream `processPodOnNode`: the NoExecute taints (with the time each was added) against
/// the pod's tolerations.
pub fn eviction(tolerations: &[Toleration], taints: &[(Taint, jiff::Timestamp)]) -> Eviction {
    let mut at: Option<jiff::Timestamp> = None;
    for (taint, added) in taints.iter().filter(|(t, _)| t.effect == "NoExecute") {
        let matching: Vec<&Toleration> = tolerations.iter().filter(|t| tolerates(t, taint)).collect();
        if matching.is_empty() {
            return Eviction::Now;
        }
        // A matching toleration without tolerationSeconds tolerates the taint forever.
        if matching.iter().any(|t| t.toleration_seconds.is_none()) {
            continue;
        }
        let secs = matching.iter().filter_map(|t| t.toleration_seconds).min().unwrap_or(0).max(0);
        let due = *added + jiff::SignedDuration::from_secs(secs);
        at = Some(at.map_or(due, |a| a.min(due)));
    }
    at.map_or(Eviction::Never, Eviction::At)
}

/// What the monitor last saw of a node's heartbeats, and when (this process's clock).
#[derive(Debug, Clone)]
struct Probe {
    lease_renew: Option<String>,
    heartbeat: Option<String>,
    at: Instant,
}

pub struct NodeLifecycleController {
    ctx: Arc<Context>,
}

struct Context {
    client: kube::Client,
    nodes: Arc<Informer<Node>>,
    leases: Arc<Informer<Lease>>,
    pods: Arc<Informer<Pod>>,
    grace: Duration,
    probes: Mutex<HashMap<String, Probe>>,
    /// When a NoExecute taint without timeAdded was first seen (node/key/effect).
    first_seen: Mutex<HashMap<String, jiff::Timestamp>>,
    recorder: Recorder,
    queue: WorkQueue<ObjectKey>,
}

fn node_key(name: &str) -> ObjectKey {
    ObjectKey::new(None, name)
}

impl NodeLifecycleController {
    /// Registers the informer handlers (before the informers start).
    pub fn new(informers: &Informers, grace: Duration) -> Self {
        let ctx = Arc::new(Context {
            client: informers.client().clone(),
            nodes: informers.get::<Node>(),
            leases: informers.get::<Lease>(),
            pods: informers.get::<Pod>(),
            grace,
            probes: Mutex::new(HashMap::new()),
            first_seen: Mutex::new(HashMap::new()),
            recorder: Recorder::new(informers.client().clone(), "node-controller"),
            queue: WorkQueue::default(),
        });
        let queue = ctx.queue.clone();
        ctx.nodes.add_handler(move |change| match change {
            Change::Applied { new, .. } => queue.add(node_key(new.metadata.name.as_deref().unwrap_or_default())),
            Change::Deleted(n) => queue.add(node_key(n.metadata.name.as_deref().unwrap_or_default())),
        });
        let queue = ctx.queue.clone();
        ctx.leases.add_handler(move |change| {
            if let Change::Applied { new, .. } = change {
                if new.metadata.namespace.as_deref() == Some(LEASE_NAMESPACE) {
                    queue.add(node_key(new.metadata.name.as_deref().unwrap_or_default()));
                }
            }
        });
        let queue = ctx.queue.clone();
        ctx.pods.add_handler(move |change| {
            if let Change::Applied { new, .. } = change {
                if let Some(node) = new.spec.as_ref().and_then(|s| s.node_name.as_deref()) {
                    queue.add(node_key(node));
                }
            }
        });
        NodeLifecycleController { ctx }
    }

    /// Reconciles until `shutdown`, with `workers` concurrent syncs.
    pub async fn run(self, workers: usize, shutdown: CancellationToken) {
        let ctx = self.ctx;
        let queue = ctx.queue.clone();
        run_workers("nodelifecycle", queue, workers, shutdown, move |key| {
            let ctx = ctx.clone();
            async move { ctx.sync(&key.name).await }
        })
        .await;
    }
}

impl Context {
    /// Records heartbeats that changed; returns how long ago the last one was seen.
    fn observe(&self, node: &Node) -> Duration {
        let name = node.metadata.name.clone().unwrap_or_default();
        let lease = self.leases.get(Some(LEASE_NAMESPACE), &name);
        let lease_renew = lease.and_then(|l| l.spec.as_ref()?.renew_time.as_ref().map(|t| t.0.to_string()));
        let heartbeat = node
            .status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .and_then(|cs| cs.iter().find(|c| c.type_ == "Ready"))
            .and_then(|c| c.last_heartbeat_time.as_ref().map(|t| t.0.to_string()));
        let now = Instant::now();
        let mut probes = self.probes.lock().unwrap_or_else(|e| e.into_inner());
        let probe = probes.entry(name).or_insert_with(|| Probe { lease_renew: lease_renew.clone(), heartbeat: heartbeat.clone(), at: now });
        if probe.lease_renew != lease_renew || probe.heartbeat != heartbeat {
            *probe = Probe { lease_renew, heartbeat, at: now };
        }
        now.duration_since(probe.at)
    }

    async fn sync(&self, name: &str) -> Result<Option<Duration>> {
        let Some(cached) = self.nodes.get(None, name) else {
            self.probes.lock().unwrap_or_else(|e| e.into_inner()).remove(name);
            return Ok(None);
        };
        let mut node = (*cached).clone();
        let silent = self.observe(&node);
        let now = crate::clock::now();
        let mut next = RESYNC_PERIOD;
        if silent > self.grace {
            if let Some(conditions) = unknown_conditions(&node, now) {
                tracing::info!(node = name, "node stopped posting status; marking it unknown");
                node.status.get_or_insert_with(Default::default).conditions = Some(conditions);
                let api: Api<Node> = Api::all(self.client.clone());
                node = api.replace_status(name, &PostParams::default(), &node).await.map_err(|e| Error::api("update status of", format!("node {name}"), e))?;
            }
        } else {
            // Looked at again when the grace period would run out (every heartbeat also
            // requeues the node and restarts it).
            next = next.min(self.grace - silent + Duration::from_millis(200));
        }
        let taints = desired_taints(&node, now);
        if node.spec.as_ref().and_then(|s| s.taints.clone()).unwrap_or_default() != taints {
            let api: Api<Node> = Api::all(self.client.clone());
            let body = json!({"metadata": {"resourceVersion": node.metadata.resource_version}, "spec": {"taints": taints}});
            node = api.patch(name, &PatchParams::default(), &Patch::Merge(&body)).await.map_err(|e| Error::api("taint", format!("node {name}"), e))?;
        }
        let unknown = ready_status(&node) == Some("Unknown");
        let no_execute = node.spec.iter().flat_map(|s| s.taints.iter().flatten()).any(|t| t.effect == "NoExecute");
        if !unknown && !no_execute {
            // A healthy node: no pod to look at (this keeps a sweep over thousands of
            // healthy nodes cheap).
            return Ok(Some(next));
        }
        let pods: Vec<Arc<Pod>> =
            self.pods.store().state_filter(|p| p.spec.as_ref().and_then(|s| s.node_name.as_deref()) == Some(name) && p.metadata.deletion_timestamp.is_none());
        if unknown {
            self.mark_pods_not_ready(&pods, now).await?;
        }
        if let Some(at) = self.evict(&node, &pods, now).await? {
            let wait = at.duration_since(now).unsigned_abs();
            next = next.min(wait + Duration::from_millis(100));
        }
        Ok(Some(next))
    }

    /// Upstream `MarkPodsNotReady`: the Ready condition of every pod on the node goes False.
    async fn mark_pods_not_ready(&self, pods: &[Arc<Pod>], now: jiff::Timestamp) -> Result<()> {
        for pod in pods {
            let mut updated = (**pod).clone();
            let Some(status) = updated.status.as_mut() else { continue };
            let conditions = status.conditions.get_or_insert_with(Vec::new);
            let Some(ready) = conditions.iter_mut().find(|c| c.type_ == "Ready") else { continue };
            if ready.status == "False" {
                continue;
            }
            ready.status = "False".into();
            ready.last_transition_time = Some(Time(now));
            let (ns, name) = (pod.metadata.namespace.clone().unwrap_or_default(), pod.metadata.name.clone().unwrap_or_default());
            let api: Api<Pod> = Api::namespaced(self.client.clone(), &ns);
            match api.replace_status(&name, &PostParams::default(), &updated).await {
                Ok(_) => {}
                Err(e) if is_not_found(&e) => {}
                Err(e) => return Err(Error::api("mark not ready", format!("pod {ns}/{name}"), e)),
            }
        }
        Ok(())
    }

    /// Deletes the pods due for eviction; returns the next time one falls due.
    async fn evict(&self, node: &Node, pods: &[Arc<Pod>], now: jiff::Timestamp) -> Result<Option<jiff::Timestamp>> {
        let name = node.metadata.name.clone().unwrap_or_default();
        let taints: Vec<(Taint, jiff::Timestamp)> = {
            let mut seen = self.first_seen.lock().unwrap_or_else(|e| e.into_inner());
            seen.retain(|k, _| !k.starts_with(&format!("{name}/")) || node.spec.iter().flat_map(|s| s.taints.iter().flatten()).any(|t| *k == format!("{name}/{}/{}", t.key, t.effect)));
            node.spec
                .iter()
                .flat_map(|s| s.taints.iter().flatten())
                .filter(|t| t.effect == "NoExecute")
                .map(|t| {
                    let added = match &t.time_added {
                        Some(Time(at)) => *at,
                        None => *seen.entry(format!("{name}/{}/{}", t.key, t.effect)).or_insert(now),
                    };
                    (t.clone(), added)
                })
                .collect()
        };
        if taints.is_empty() {
            return Ok(None);
        }
        let mut next: Option<jiff::Timestamp> = None;
        for pod in pods {
            let tolerations = pod.spec.as_ref().and_then(|s| s.tolerations.clone()).unwrap_or_default();
            match eviction(&tolerations, &taints) {
                Eviction::Never => {}
                Eviction::At(at) if at > now => next = Some(next.map_or(at, |n| n.min(at))),
                Eviction::Now | Eviction::At(_) => self.evict_pod(pod, now).await?,
            }
        }
        Ok(next)
    }

    /// Upstream `addConditionAndDeletePod`: the DisruptionTarget condition, then the delete.
    async fn evict_pod(&self, pod: &Pod, now: jiff::Timestamp) -> Result<()> {
        let (ns, name) = (pod.metadata.namespace.clone().unwrap_or_default(), pod.metadata.name.clone().unwrap_or_default());
        let api: Api<Pod> = Api::namespaced(self.client.clone(), &ns);
        self.recorder.event(pod, NORMAL, "TaintManagerEviction", format!("Marking for deletion Pod {ns}/{name}"));
        let mut updated = pod.clone();
        if let Some(status) = updated.status.as_mut() {
            let conditions = status.conditions.get_or_insert_with(Vec::new);
            conditions.retain(|c| c.type_ != "DisruptionTarget");
            conditions.push(PodCondition {
                type_: "DisruptionTarget".into(),
                status: "True".into(),
                reason: Some("DeletionByTaintManager".into()),
                message: Some("Taint manager: deleting due to NoExecute taint".into()),
                last_transition_time: Some(Time(now)),
                ..Default::default()
            });
            if let Err(e) = api.replace_status(&name, &PostParams::default(), &updated).await {
                if is_not_found(&e) {
                    return Ok(());
                }
                tracing::debug!(pod = %format!("{ns}/{name}"), error = %e, "setting DisruptionTarget failed");
            }
        }
        tracing::debug!(pod = %format!("{ns}/{name}"), "evicting pod from a NoExecute-tainted node");
        match api.delete(&name, &DeleteParams::default()).await {
            Ok(_) => Ok(()),
            Err(e) if is_not_found(&e) => Ok(()),
            Err(e) => Err(Error::api("evict", format!("pod {ns}/{name}"), e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{NodeSpec, NodeStatus};

    fn t0() -> jiff::Timestamp {
        jiff::Timestamp::UNIX_EPOCH + jiff::SignedDuration::from_secs(1000)
    }

    fn node(ready: &str, taints: Vec<Taint>) -> Node {
        Node {
            spec: Some(NodeSpec { taints: Some(taints), ..Default::default() }),
            status: Some(NodeStatus {
                conditions: Some(vec![NodeCondition { type_: "Ready".into(), status: ready.into(), reason: Some("KubeletReady".into()), ..Default::default() }]),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn taint(key: &str, effect: &str) -> Taint {
        Taint { key: key.into(), effect: effect.into(), value: None, time_added: None }
    }

    fn toleration(key: &str, seconds: Option<i64>) -> Toleration {
        Toleration { key: Some(key.into()), operator: Some("Exists".into()), effect: Some("NoExecute".into()), toleration_seconds: seconds, value: None }
    }

    #[test]
    fn a_silent_node_gets_unknown_conditions_once() {
        let n = node("True", vec![]);
        let cs = unknown_conditions(&n, t0()).unwrap();
        let ready = cs.iter().find(|c| c.type_ == "Ready").unwrap();
        assert_eq!((ready.status.as_str(), ready.reason.as_deref()), ("Unknown", Some("NodeStatusUnknown")));
        assert_eq!(ready.message.as_deref(), Some("Kubelet stopped posting node status."));
        let never = cs.iter().find(|c| c.type_ == "DiskPressure").unwrap();
        assert_eq!((never.status.as_str(), never.reason.as_deref()), ("Unknown", Some("NodeStatusNeverUpdated")));
        let mut again = n.clone();
        again.status.as_mut().unwrap().conditions = Some(cs);
        assert!(unknown_conditions(&again, t0()).is_none());
    }

    #[test]
    fn taints_follow_the_ready_condition_and_keep_foreign_ones() {
        let foreign = taint("dedicated", "NoSchedule");
        let unknown = desired_taints(&node("Unknown", vec![foreign.clone()]), t0());
        let keys: Vec<(&str, &str)> = unknown.iter().map(|t| (t.key.as_str(), t.effect.as_str())).collect();
        assert_eq!(keys, [("dedicated", "NoSchedule"), (UNREACHABLE, "NoSchedule"), (UNREACHABLE, "NoExecute")]);
        assert_eq!(unknown[2].time_added, Some(Time(t0())));
        assert_eq!(unknown[1].time_added, None);
        // Stable: a second pass keeps the first timeAdded.
        let later = t0() + jiff::SignedDuration::from_secs(60);
        assert_eq!(desired_taints(&node("Unknown", unknown.clone()), later), unknown);
        // Ready=False swaps unreachable for not-ready; Ready=True drops them.
        let not_ready = desired_taints(&node("False", unknown.clone()), later);
        assert!(not_ready.iter().any(|t| t.key == NOT_READY && t.effect == "NoExecute") && !not_ready.iter().any(|t| t.key == UNREACHABLE));
        assert_eq!(desired_taints(&node("True", unknown), later), [foreign]);
    }

    #[test]
    fn eviction_time_is_the_shortest_toleration_after_the_taint() {
        let taints = [(taint(UNREACHABLE, "NoExecute"), t0()), (taint(UNREACHABLE, "NoSchedule"), t0())];
        assert_eq!(eviction(&[], &taints), Eviction::Now);
        assert_eq!(eviction(&[toleration(NOT_READY, Some(5))], &taints), Eviction::Now);
        assert_eq!(eviction(&[toleration(UNREACHABLE, Some(300))], &taints), Eviction::At(t0() + jiff::SignedDuration::from_secs(300)));
        let both = [toleration(UNREACHABLE, Some(300)), toleration(UNREACHABLE, Some(5))];
        assert_eq!(eviction(&both, &taints), Eviction::At(t0() + jiff::SignedDuration::from_secs(5)));
        assert_eq!(eviction(&[toleration(UNREACHABLE, None)], &taints), Eviction::Never);
        let everything = Toleration { operator: Some("Exists".into()), ..Default::default() };
        assert_eq!(eviction(&[everything], &taints), Eviction::Never);
        assert_eq!(eviction(&[], &[(taint(UNREACHABLE, "NoSchedule"), t0())]), Eviction::Never);
        let equal = Toleration { key: Some("k".into()), operator: Some("Equal".into()), value: Some("v".into()), ..Default::default() };
        let kv = Taint { key: "k".into(), value: Some("v".into()), effect: "NoExecute".into(), time_added: None };
        assert!(tolerates(&equal, &kv));
        assert!(!tolerates(&equal, &Taint { value: Some("w".into()), ..kv }));
    }
}
