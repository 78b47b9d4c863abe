//! The `disruption` controller (upstream `pkg/controller/disruption`): keeps each
//! PodDisruptionBudget's status — how many matching pods are healthy, how many must be, how
//! many are expected, and so how many voluntary disruptions (evictions) are allowed now.
//!
//! The eviction subresource of the API server reads `disruptionsAllowed` and records each pod
//! it is about to delete in `disruptedPods`; this controller drops an entry once the pod is
//! being deleted or gone, or when it is older than [`DELETION_TIMEOUT`] (the pod was not
//! deleted after all), and looks again when the next entry expires.
//!
//! Expected pods: with an integer `minAvailable`, the matching pods themselves; with a
//! percentage or with `maxUnavailable`, the sum of the scales (`spec.replicas`) of the
//! controllers owning the matching pods (Deployment through its ReplicaSet, ReplicaSet,
//! StatefulSet, ReplicationController), as upstream's finders. Percentages round up.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet, StatefulSet};
use k8s_openapi::api::core::v1::{Pod, ReplicationController};
use k8s_openapi::api::policy::v1::{PodDisruptionBudget, PodDisruptionBudgetStatus};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, OwnerReference, Time};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::api::{Api, PostParams};
use rkube_api::selector::LabelSelector;
use rkube_api::ObjectKey;
use tokio_util::sync::CancellationToken;

use crate::controller::{controller_ref, key_of, resolve, run_workers, RESYNC_PERIOD};
use crate::error::{is_conflict, is_not_found, Error, Result};
use crate::events::{Recorder, NORMAL, WARNING};
use crate::informer::{Change, Informer, Informers};
use crate::pods;
use crate::queue::WorkQueue;

/// Upstream `DeletionTimeout`: how long an entry of `disruptedPods` holds a pod out of the
/// healthy count while its deletion is expected.
pub const DELETION_TIMEOUT: Duration = Duration::from_secs(120);

/// The condition type and its reasons (upstream `policy` constants).
pub const DISRUPTION_ALLOWED: &str = "DisruptionAllowed";
pub const SUFFICIENT_PODS: &str = "SufficientPods";
pub const INSUFFICIENT_PODS: &str = "InsufficientPods";
pub const SYNC_FAILED: &str = "SyncFailed";

pub struct DisruptionController {
    ctx: Arc<Context>,
}

struct Context {
    client: kube::Client,
    pdbs: Arc<Informer<PodDisruptionBudget>>,
    pods: Arc<Informer<Pod>>,
    replicasets: Arc<Informer<ReplicaSet>>,
    deployments: Arc<Informer<Deployment>>,
    statefulsets: Arc<Informer<StatefulSet>>,
    rcs: Arc<Informer<ReplicationController>>,
    recorder: Recorder,
    queue: WorkQueue<ObjectKey>,
}

impl DisruptionController {
    /// Registers the informer handlers (before the informers start).
    pub fn new(informers: &Informers) -> Self {
        let ctx = Arc::new(Context {
            client: informers.client().clone(),
            pdbs: informers.get::<PodDisruptionBudget>(),
            pods: informers.get::<Pod>(),
            replicasets: informers.get::<ReplicaSet>(),
            deployments: informers.get::<Deployment>(),
            statefulsets: informers.get::<StatefulSet>(),
            rcs: informers.get::<ReplicationController>(),
            recorder: Recorder::new(informers.client().clone(), "controllermanager"),
            queue: WorkQueue::default(),
        });
        let queue = ctx.queue.clone();
        ctx.pdbs.add_handler(move |change| match change {
            Change::Applied { new, .. } => queue.add(key_of(new.as_ref())),
            Change::Deleted(pdb) => queue.add(key_of(pdb.as_ref())),
        });
        let weak = Arc::downgrade(&ctx);
        ctx.pods.add_handler(move |change| {
            let Some(ctx) = weak.upgrade() else { return };
            match change {
                Change::Applied { old, new } => {
                    ctx.enqueue_for_pod(new);
                    if let Some(old) = old.as_ref().filter(|o| o.metadata.labels != new.metadata.labels) {
                        ctx.enqueue_for_pod(old);
                    }
                }
                Change::Deleted(pod) => ctx.enqueue_for_pod(pod),
            }
        });
        DisruptionController { ctx }
    }

    /// Reconciles until `shutdown`, with `workers` concurrent syncs.
    pub async fn run(self, workers: usize, shutdown: CancellationToken) {
        let ctx = self.ctx;
        let queue = ctx.queue.clone();
        run_workers("disruption", queue, workers, shutdown, move |key| {
            let ctx = ctx.clone();
            async move { ctx.sync(&key).await }
        })
        .await;
    }
}

/// The PDB's pod selector (`None` selects nothing).
fn selector_of(pdb: &PodDisruptionBudget) -> Result<LabelSelector, String> {
    LabelSelector::from_k8s_opt(pdb.spec.as_ref().and_then(|s| s.selector.as_ref()))
}

/// Whether the PDB selects the pod (policy/v1: an empty selector selects every pod).
pub fn selects(pdb: &PodDisruptionBudget, pod: &Pod) -> bool {
    let empty = BTreeMap::new();
    let labels = pod.metadata.labels.as_ref().unwrap_or(&empty);
    pdb.metadata.namespace == pod.metadata.namespace && selector_of(pdb).is_ok_and(|s| s.matches(labels))
}

impl Context {
    fn enqueue_for_pod(&self, pod: &Pod) {
        let ns = pod.metadata.namespace.as_deref().unwrap_or_default();
        for pdb in self.pdbs.in_namespace(ns).iter().filter(|p| selects(p, pod)) {
            self.queue.add(key_of(pdb.as_ref()));
        }
    }

    /// The controller owning `pod` and its scale (upstream `finders`): the Deployment of a
    /// ReplicaSet a Deployment controls, else the ReplicaSet, StatefulSet or
    /// ReplicationController. `None` when the owner is not one of those or not cached.
    fn scale_of(&self, r: &OwnerReference, namespace: &str) -> Option<(String, i32)> {
        let ns = Some(namespace);
        if let Some(rs) = resolve(r, ns, |n, name| self.replicasets.get(n, name)) {
            if let Some(dr) = controller_ref(&rs.metadata) {
                let d = resolve(dr, ns, |n, name| self.deployments.get(n, name))?;
                return Some((dr.uid.clone(), d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1)));
            }
            return Some((r.uid.clone(), rs.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1)));
        }
        if let Some(ss) = resolve(r, ns, |n, name| self.statefulsets.get(n, name)) {
            return Some((r.uid.clone(), ss.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1)));
        }
        if let Some(rc) = resolve(r, ns, |n, name| self.rcs.get(n, name)) {
            return Some((r.uid.clone(), rc.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1)));
        }
        None
    }

    /// Upstream `sync` and `trySync`: a failure other than a conflict sets the fail-safe
    /// status (no disruptions allowed, `SyncFailed`).
    async fn sync(&self, key: &ObjectKey) -> Result<Option<Duration>> {
        let Some(pdb) = self.pdbs.get(key.namespace.as_deref(), &key.name) else {
            return Ok(None);
        };
        match self.try_sync(&pdb).await {
            Ok(after) => Ok(after),
            Err(Error::Api { source, .. }) if is_conflict(&source) => Err(Error::Failed("conflict".into())),
            Err(e) => {
                let status = fail_safe_status(&pdb, &e.to_string(), crate::clock::now());
                self.write_status(&pdb, status).await?;
                Err(e)
            }
        }
    }

    async fn try_sync(&self, pdb: &PodDisruptionBudget) -> Result<Option<Duration>> {
        let namespace = pdb.metadata.namespace.as_deref().unwrap_or_default();
        let pods: Vec<Arc<Pod>> = self.pods.in_namespace(namespace).into_iter().filter(|p| selects(pdb, p)).collect();
        let pod_refs: Vec<&Pod> = pods.iter().map(|p| p.as_ref()).collect();
        let counts = expected_pod_count(pdb, &pod_refs, |r| self.scale_of(r, namespace)).map_err(|e| {
            self.recorder.event(pdb, WARNING, "CalculateExpectedPodCountFailed", format!("Failed to calculate the number of expected pods: {e}"));
            Error::Failed(e)
        })?;
        let now = crate::clock::now();
        let (disrupted, recheck) = build_disrupted_pod_map(&pod_refs, pdb, now);
        let healthy = count_healthy_pods(&pod_refs, &disrupted, now);
        let status = pdb_status(pdb, healthy, counts.desired_healthy, counts.expected, disrupted, now);
        if pdb.status.as_ref() != Some(&status) {
            if pods.is_empty() {
                self.recorder.event(pdb, NORMAL, "NoPods", "No matching pods found".into());
            }
            if !counts.unmanaged.is_empty() {
                let sel = pdb.spec.as_ref().and_then(|s| s.selector.as_ref());
                self.recorder.event(pdb, WARNING, "UnmanagedPods", format!(
                    "Pods selected by this PodDisruptionBudget (selector: {sel:?}) were found to be unmanaged. As a result, the status of the PDB cannot be calculated correctly, which may result in undefined behavior. To account for these pods please set \".spec.minAvailable\" field of the PDB to an integer value."
                ));
            }
            self.write_status(pdb, status).await?;
        }
        let recheck = recheck.and_then(|at| Duration::try_from(at.duration_since(now)).ok());
        Ok(Some(recheck.map_or(RESYNC_PERIOD, |r| r.min(RESYNC_PERIOD) + Duration::from_millis(100))))
    }

    /// Writes the status; a conflict is returned (the key is retried on fresh state), as
    /// upstream's `writePdbStatus` does not retry either.
    async fn write_status(&self, pdb: &PodDisruptionBudget, status: PodDisruptionBudgetStatus) -> Result<()> {
        let api: Api<PodDisruptionBudget> = Api::namespaced(self.client.clone(), pdb.metadata.namespace.as_deref().unwrap_or_default());
        let name = pdb.metadata.name.clone().unwrap_or_default();
        let mut updated = pdb.clone();
        updated.status = Some(status);
        match api.replace_status(&name, &PostParams::default(), &updated).await {
            Ok(_) => Ok(()),
            Err(e) if is_not_found(&e) => Ok(()),
            Err(e) => Err(Error::api("update status of", format!("poddisruptionbudget {name}"), e)),
        }
    }
}

/// Upstream `GetScaledValueFromIntOrPercent`: an integer as is, `N%` of `total` rounded up
/// or down.
pub fn scaled_value(v: &IntOrString, total: i32, round_up: bool) -> Result<i32, String> {
    match v {
        IntOrString::Int(i) => Ok(*i),
        IntOrString::String(s) => {
            let p: i64 = s
                .strip_suffix('%')
                .and_then(|p| p.parse().ok())
                .ok_or_else(|| "invalid value for IntOrString: invalid type: string is not a percentage".to_string())?;
            let v = p * i64::from(total);
            Ok((if round_up { (v + 99).div_euclid(100) } else { v.div_euclid(100) }) as i32)
        }
    }
}

/// What upstream's `getExpectedPodCount` returns.
#[derive(Debug, PartialEq, Eq)]
pub struct ExpectedCounts {
    pub expected: i32,
    pub desired_healthy: i32,
    /// Matching pods without a controller (not counted in a scale-based expectation).
    pub unmanaged: Vec<String>,
}

/// Upstream `getExpectedPodCount` and `getExpectedScale`: `scale_of` names a controller
/// reference's controller (its UID, so two ReplicaSets of one Deployment count once) and
/// scale, or `None` when it is not a known controller (an error, as upstream).
pub fn expected_pod_count(
    pdb: &PodDisruptionBudget,
    pods: &[&Pod],
    scale_of: impl Fn(&OwnerReference) -> Option<(String, i32)>,
) -> Result<ExpectedCounts, String> {
    let spec = pdb.spec.clone().unwrap_or_default();
    let expected_scale = || -> Result<(i32, Vec<String>), String> {
        let mut scales: HashMap<String, i32> = HashMap::new();
        let mut unmanaged = Vec::new();
        for pod in pods {
            let name = pod.metadata.name.clone().unwrap_or_default();
            let Some(r) = controller_ref(&pod.metadata) else {
                unmanaged.push(name);
                continue;
            };
            if scales.contains_key(&r.uid) {
                continue;
            }
            let (uid, scale) = scale_of(r).ok_or_else(|| format!("found no controllers for pod {name:?}"))?;
            scales.insert(uid, scale);
        }
        Ok((scales.values().sum(), unmanaged))
    };
    if let Some(max_unavailable) = &spec.max_unavailable {
        let (expected, unmanaged) = expected_scale()?;
        let max = scaled_value(max_unavailable, expected, true)?;
        return Ok(ExpectedCounts { expected, desired_healthy: (expected - max).max(0), unmanaged });
    }
    match &spec.min_available {
        Some(IntOrString::Int(n)) => Ok(ExpectedCounts { expected: pods.len() as i32, desired_healthy: *n, unmanaged: vec![] }),
        Some(min) => {
            let (expected, unmanaged) = expected_scale()?;
            Ok(ExpectedCounts { expected, desired_healthy: scaled_value(min, expected, true)?, unmanaged })
        }
        None => Ok(ExpectedCounts { expected: 0, desired_healthy: 0, unmanaged: vec![] }),
    }
}

fn expires(t: &Time) -> jiff::Timestamp {
    let timeout = jiff::SignedDuration::try_from(DELETION_TIMEOUT).unwrap_or(jiff::SignedDuration::ZERO);
    t.0.checked_add(timeout).unwrap_or(t.0)
}

/// Upstream `buildDisruptedPodMap`: the entries of `disruptedPods` still pending (pod
/// present, not yet being deleted, entry younger than [`DELETION_TIMEOUT`]) and when the
/// first of them expires.
pub fn build_disrupted_pod_map(
    pods: &[&Pod],
    pdb: &PodDisruptionBudget,
    now: jiff::Timestamp,
) -> (BTreeMap<String, Time>, Option<jiff::Timestamp>) {
    let mut result = BTreeMap::new();
    let mut recheck: Option<jiff::Timestamp> = None;
    let Some(disrupted) = pdb.status.as_ref().and_then(|s| s.disrupted_pods.as_ref()) else {
        return (result, None);
    };
    for pod in pods.iter().filter(|p| p.metadata.deletion_timestamp.is_none()) {
        let name = pod.metadata.name.clone().unwrap_or_default();
        let Some(at) = disrupted.get(&name) else { continue };
        let expected = expires(at);
        if expected >= now {
            recheck = Some(recheck.map_or(expected, |r| r.min(expected)));
            result.insert(name, at.clone());
        }
    }
    (result, recheck)
}

/// Upstream `countHealthyPods`: ready pods that are neither being deleted nor about to be.
pub fn count_healthy_pods(pods: &[&Pod], disrupted: &BTreeMap<String, Time>, now: jiff::Timestamp) -> i32 {
    pods.iter()
        .filter(|p| p.metadata.deletion_timestamp.is_none())
        .filter(|p| p.metadata.name.as_ref().and_then(|n| disrupted.get(n)).is_none_or(|t| expires(t) <= now))
        .filter(|p| pods::is_ready(p))
        .count() as i32
}

/// Upstream `apimeta.SetStatusCondition`: replaces the condition of the same type, keeping
/// its lastTransitionTime unless the status changes.
fn set_condition(conditions: &mut Vec<Condition>, mut c: Condition) {
    match conditions.iter_mut().find(|x| x.type_ == c.type_) {
        Some(existing) => {
            if existing.status == c.status {
                c.last_transition_time = existing.last_transition_time.clone();
            }
            *existing = c;
        }
        None => conditions.push(c),
    }
}

/// Upstream `UpdateDisruptionAllowedCondition`: `SufficientPods` (True) when a disruption is
/// allowed, else `InsufficientPods` (False).
pub fn update_disruption_allowed_condition(status: &mut PodDisruptionBudgetStatus, now: jiff::Timestamp) {
    let allowed = status.disruptions_allowed > 0;
    let mut conditions = status.conditions.take().unwrap_or_default();
    set_condition(&mut conditions, Condition {
        type_: DISRUPTION_ALLOWED.into(),
        status: if allowed { "True" } else { "False" }.into(),
        reason: if allowed { SUFFICIENT_PODS } else { INSUFFICIENT_PODS }.into(),
        message: String::new(),
        observed_generation: status.observed_generation,
        last_transition_time: Time(now),
    });
    status.conditions = Some(conditions);
}

/// Upstream `updatePdbStatus`: the status to write (no disruptions while nothing is
/// expected, so a PDB whose first pods just appeared is safe).
pub fn pdb_status(
    pdb: &PodDisruptionBudget,
    current_healthy: i32,
    desired_healthy: i32,
    expected: i32,
    disrupted: BTreeMap<String, Time>,
    now: jiff::Timestamp,
) -> PodDisruptionBudgetStatus {
    let mut allowed = current_healthy - desired_healthy;
    if expected <= 0 || allowed <= 0 {
        allowed = 0;
    }
    let mut status = PodDisruptionBudgetStatus {
        current_healthy,
        desired_healthy,
        expected_pods: expected,
        disruptions_allowed: allowed,
        disrupted_pods: Some(disrupted).filter(|d| !d.is_empty()),
        observed_generation: pdb.metadata.generation,
        conditions: pdb.status.as_ref().and_then(|s| s.conditions.clone()),
    };
    update_disruption_allowed_condition(&mut status, now);
    status
}

/// Upstream `failSafe`: no disruptions allowed, `DisruptionAllowed` False with `SyncFailed`
/// and the error.
pub fn fail_safe_status(pdb: &PodDisruptionBudget, error: &str, now: jiff::Timestamp) -> PodDisruptionBudgetStatus {
    let mut status = pdb.status.clone().unwrap_or_default();
    status.disruptions_allowed = 0;
    let mut conditions = status.conditions.take().unwrap_or_default();
    set_condition(&mut conditions, Condition {
        type_: DISRUPTION_ALLOWED.into(),
        status: "False".into(),
        reason: SYNC_FAILED.into(),
        message: error.into(),
        observed_generation: status.observed_generation,
        last_transition_time: Time(now),
    });
    status.conditions = Some(conditions);
    status
}

#[cfg(test)]
mod tests;
