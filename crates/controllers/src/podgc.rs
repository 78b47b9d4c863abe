//! The `pod-garbage-collector` controller (upstream `pkg/controller/podgc`): every
//! [`Config::period`] it looks at the pod and node caches and force-deletes
//!
//! - terminated pods (Succeeded or Failed) beyond `--terminated-pod-gc-threshold`, oldest
//!   first;
//! - orphaned pods, bound to a node that no longer exists (after a quarantine and a live read
//!   of the node, so a node being created is not mistaken for a gone one), after marking
//!   them Failed with the `DisruptionTarget` condition (`DeletionByPodGC`);
//! - unscheduled pods that are terminating.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Node, Pod, PodCondition};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{Api, DeleteParams, PostParams};
use rkube_api::ObjectKey;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::error::{is_not_found, Error, Result};
use crate::informer::{Informer, Informers};

/// Pod GC settings.
#[derive(Debug, Clone)]
pub struct Config {
    /// Terminated pods kept (0: none are deleted for this reason).
    pub terminated_pod_gc_threshold: usize,
    /// How often the caches are swept (upstream `gcCheckPeriod`, 20 s).
    pub period: Duration,
    /// How long a pod's node must be missing before the pod counts as orphaned (upstream
    /// `quarantineTime`, 40 s).
    pub quarantine: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Config { terminated_pod_gc_threshold: 12500, period: Duration::from_secs(20), quarantine: Duration::from_secs(40) }
    }
}

fn is_terminated(pod: &Pod) -> bool {
    matches!(pod.status.as_ref().and_then(|s| s.phase.as_deref()), Some("Succeeded" | "Failed"))
}

fn node_of(pod: &Pod) -> Option<&str> {
    pod.spec.as_ref()?.node_name.as_deref().filter(|n| !n.is_empty())
}

fn key(pod: &Pod) -> ObjectKey {
    ObjectKey::new(pod.metadata.namespace.as_deref(), pod.metadata.name.as_deref().unwrap_or_default())
}

/// What one sweep deletes.
#[derive(Debug, Default, PartialEq)]
pub struct Plan {
    /// Terminated pods over the threshold, oldest first.
    pub terminated: Vec<ObjectKey>,
    /// Pods bound to a node that is not in the cache (still to be confirmed).
    pub orphaned: Vec<(ObjectKey, String)>,
    /// Terminating pods that were never scheduled.
    pub unscheduled_terminating: Vec<ObjectKey>,
}

/// Upstream `gcTerminated`, `gcOrphaned` (its candidates) and `gcUnscheduledTerminating`.
pub fn plan(pods: &[Arc<Pod>], node_exists: impl Fn(&str) -> bool, threshold: usize) -> Plan {
    let mut out = Plan::default();
    let mut terminated: Vec<&Pod> = pods.iter().map(|p| p.as_ref()).filter(|p| is_terminated(p) && p.metadata.deletion_timestamp.is_none()).collect();
    if threshold > 0 && terminated.len() > threshold {
        // Oldest first (upstream `byEvictionAndCreationTimestamp`; name breaks ties so the
        // order is stable).
        terminated.sort_by(|a, b| {
            let at = |p: &Pod| p.metadata.creation_timestamp.as_ref().map(|t| t.0);
            at(a).cmp(&at(b)).then_with(|| key(a).to_string().cmp(&key(b).to_string()))
        });
        out.terminated = terminated[..terminated.len() - threshold].iter().map(|p| key(p)).collect();
    }
    for pod in pods {
        match node_of(pod) {
            Some(node) if !node_exists(node) => out.orphaned.push((key(pod), node.to_owned())),
            Some(_) => {}
            None if pod.metadata.deletion_timestamp.is_some() => out.unscheduled_terminating.push(key(pod)),
            None => {}
        }
    }
    out
}

pub struct PodGc {
    client: kube::Client,
    pods: Arc<Informer<Pod>>,
    nodes: Arc<Informer<Node>>,
    config: Config,
}

impl PodGc {
    /// Asks for the pod and node informers (before they start).
    pub fn new(informers: &Informers, config: Config) -> Self {
        PodGc { client: informers.client().clone(), pods: informers.get::<Pod>(), nodes: informers.get::<Node>(), config }
    }

    /// Sweeps every period until `shutdown`.
    pub async fn run(self, shutdown: CancellationToken) {
        let mut tick = tokio::time::interval(self.config.period);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // node name → when this controller first saw pods bound to it while it was missing.
        let mut missing_since: HashMap<String, Instant> = HashMap::new();
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tick.tick() => {}
            }
            if let Err(e) = self.sweep(&mut missing_since).await {
                tracing::warn!(error = %e, "pod garbage collection failed");
            }
        }
    }

    async fn sweep(&self, missing_since: &mut HashMap<String, Instant>) -> Result<()> {
        let pods = self.pods.store().state();
        let plan = plan(&pods, |n| self.nodes.get(None, n).is_some(), self.config.terminated_pod_gc_threshold);
        for k in &plan.terminated {
            tracing::debug!(pod = %k, "deleting terminated pod over the threshold");
            self.force_delete(k).await?;
        }
        let now = Instant::now();
        missing_since.retain(|node, _| plan.orphaned.iter().any(|(_, n)| n == node));
        let nodes: Api<Node> = Api::all(self.client.clone());
        let mut confirmed: HashMap<String, bool> = HashMap::new();
        for (k, node) in &plan.orphaned {
            let since = *missing_since.entry(node.clone()).or_insert(now);
            if now.duration_since(since) < self.config.quarantine {
                continue;
            }
            let gone = match confirmed.get(node) {
                Some(g) => *g,
                None => {
                    let g = match nodes.get(node).await {
                        Ok(_) => false,
                        Err(e) if is_not_found(&e) => true,
                        Err(e) => return Err(Error::api("get", format!("node {node}"), e)),
                    };
                    confirmed.insert(node.clone(), g);
                    g
                }
            };
            if gone {
                tracing::debug!(pod = %k, node = %node, "deleting pod bound to a node that no longer exists");
                self.mark_failed(k).await?;
                self.force_delete(k).await?;
            }
        }
        for k in &plan.unscheduled_terminating {
            tracing::debug!(pod = %k, "deleting unscheduled terminating pod");
            self.force_delete(k).await?;
        }
        Ok(())
    }

    /// Upstream `markFailedAndDeletePodWithCondition`'s status part for orphans.
    async fn mark_failed(&self, k: &ObjectKey) -> Result<()> {
        let Some(pod) = self.pods.get(k.namespace.as_deref(), &k.name) else { return Ok(()) };
        let mut updated = (*pod).clone();
        let status = updated.status.get_or_insert_with(Default::default);
        if !is_terminated(&pod) {
            status.phase = Some("Failed".into());
        }
        let conditions = status.conditions.get_or_insert_with(Vec::new);
        conditions.retain(|c| c.type_ != "DisruptionTarget");
        conditions.push(PodCondition {
            type_: "DisruptionTarget".into(),
            status: "True".into(),
            reason: Some("DeletionByPodGC".into()),
            message: Some("PodGC: node no longer exists".into()),
            last_transition_time: Some(Time(crate::clock::now())),
            ..Default::default()
        });
        let api: Api<Pod> = Api::namespaced(self.client.clone(), k.namespace.as_deref().unwrap_or_default());
        match api.replace_status(&k.name, &PostParams::default(), &updated).await {
            Ok(_) => Ok(()),
            Err(e) if is_not_found(&e) => Ok(()),
            Err(e) => Err(Error::api("mark failed", format!("pod {k}"), e)),
        }
    }

    async fn force_delete(&self, k: &ObjectKey) -> Result<()> {
        let api: Api<Pod> = Api::namespaced(self.client.clone(), k.namespace.as_deref().unwrap_or_default());
        match api.delete(&k.name, &DeleteParams { grace_period_seconds: Some(0), ..Default::default() }).await {
            Ok(_) => Ok(()),
            Err(e) if is_not_found(&e) => Ok(()),
            Err(e) => Err(Error::api("delete", format!("pod {k}"), e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{PodSpec, PodStatus};

    fn pod(name: &str, secs: i64, phase: &str, node: Option<&str>, deleting: bool) -> Arc<Pod> {
        let at = |s: i64| Time(jiff::Timestamp::UNIX_EPOCH + jiff::SignedDuration::from_secs(s));
        let mut p = Pod::default();
        p.metadata.name = Some(name.into());
        p.metadata.namespace = Some("ns".into());
        p.metadata.creation_timestamp = Some(at(secs));
        p.metadata.deletion_timestamp = deleting.then(|| at(secs + 1));
        p.spec = Some(PodSpec { node_name: node.map(str::to_owned), ..Default::default() });
        p.status = Some(PodStatus { phase: Some(phase.into()), ..Default::default() });
        Arc::new(p)
    }

    fn names(keys: &[ObjectKey]) -> Vec<&str> {
        keys.iter().map(|k| k.name.as_str()).collect()
    }

    #[test]
    fn terminated_pods_over_the_threshold_go_oldest_first() {
        let pods = [
            pod("new", 30, "Succeeded", Some("n1"), false),
            pod("old", 10, "Failed", Some("n1"), false),
            pod("mid", 20, "Succeeded", Some("n1"), false),
            pod("running", 5, "Running", Some("n1"), false),
        ];
        let exists = |n: &str| n == "n1";
        assert_eq!(names(&plan(&pods, exists, 1).terminated), ["old", "mid"]);
        assert_eq!(names(&plan(&pods, exists, 3).terminated), Vec::<&str>::new());
        assert_eq!(names(&plan(&pods, exists, 0).terminated), Vec::<&str>::new());
    }

    #[test]
    fn orphans_and_unscheduled_terminating_pods_are_found() {
        let pods = [
            pod("on-ghost", 1, "Running", Some("ghost"), false),
            pod("on-n1", 1, "Running", Some("n1"), false),
            pod("pending", 1, "Pending", None, false),
            pod("pending-deleted", 1, "Pending", None, true),
        ];
        let p = plan(&pods, |n| n == "n1", 100);
        assert_eq!(p.orphaned, [(ObjectKey::new(Some("ns"), "on-ghost"), "ghost".to_owned())]);
        assert_eq!(names(&p.unscheduled_terminating), ["pending-deleted"]);
    }
}
