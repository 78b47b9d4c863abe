//! The `replicaset` controller (upstream `pkg/controller/replicaset`): keeps
//! `spec.replicas` pods matching each ReplicaSet's selector, adopting orphans and releasing
//! pods that stop matching, and writes its status.
//!
//! Creations and deletions in flight are recorded as expectations so a lagging pod cache never
//! causes a second round; creations go out in slow-start batches (1, 2, 4, ...) that stop at
//! the first failure, which is reported as a `FailedCreate` event and the `ReplicaFailure`
//! condition, and retried with the key's back-off.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use futures::future::join_all;
use k8s_openapi::api::apps::v1::{ReplicaSet, ReplicaSetCondition, ReplicaSetStatus};
use k8s_openapi::api::core::v1::{Pod, PodTemplateSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference, Time};
use kube::api::{Api, DeleteParams, PostParams};
use rkube_api::selector::LabelSelector;
use rkube_api::ObjectKey;
use tokio_util::sync::CancellationToken;

use crate::claim::claim;
use crate::controller::{controller_ref, key_of, name_of, new_controller_ref, resolve, run_workers, RESYNC_PERIOD};
use crate::error::{is_conflict, is_not_found, message, Error, Result};
use crate::events::{Recorder, NORMAL, WARNING};
use crate::expectations::Expectations;
use crate::informer::{Change, Informer, Informers};
use crate::pods;
use crate::queue::WorkQueue;

/// Upstream `BurstReplicas`: at most this many creates or deletes per sync.
pub const BURST_REPLICAS: usize = 500;

pub struct ReplicaSetController {
    ctx: Arc<Context>,
}

struct Context {
    client: kube::Client,
    replicasets: Arc<Informer<ReplicaSet>>,
    pods: Arc<Informer<Pod>>,
    expectations: Expectations,
    recorder: Recorder,
    queue: WorkQueue<ObjectKey>,
}

impl ReplicaSetController {
    /// Registers the informer handlers (before the informers start).
    pub fn new(informers: &Informers) -> Self {
        let ctx = Arc::new(Context {
            client: informers.client().clone(),
            replicasets: informers.get::<ReplicaSet>(),
            pods: informers.get::<Pod>(),
            expectations: Expectations::default(),
            recorder: Recorder::new(informers.client().clone(), "replicaset-controller"),
            queue: WorkQueue::default(),
        });
        let queue = ctx.queue.clone();
        let weak = Arc::downgrade(&ctx);
        ctx.replicasets.add_handler(move |change| match change {
            Change::Applied { new, .. } => queue.add(key_of(new.as_ref())),
            Change::Deleted(rs) => {
                if let Some(ctx) = weak.upgrade() {
                    ctx.expectations.delete(&key_of(rs.as_ref()));
                }
                queue.add(key_of(rs.as_ref()));
            }
        });
        let weak = Arc::downgrade(&ctx);
        ctx.pods.add_handler(move |change| {
            if let Some(ctx) = weak.upgrade() {
                ctx.pod_changed(change);
            }
        });
        ReplicaSetController { ctx }
    }

    /// Reconciles until `shutdown`, with `workers` concurrent syncs.
    pub async fn run(self, workers: usize, shutdown: CancellationToken) {
        let ctx = self.ctx;
        let queue = ctx.queue.clone();
        run_workers("replicaset", queue, workers, shutdown, move |key| {
            let ctx = ctx.clone();
            async move { ctx.sync(&key).await }
        })
        .await;
    }
}

impl Context {
    fn owner_of(&self, pod: &Pod) -> Option<Arc<ReplicaSet>> {
        let r = controller_ref(&pod.metadata)?;
        resolve(r, pod.metadata.namespace.as_deref(), |ns, name| self.replicasets.get(ns, name))
    }

    /// ReplicaSets of the pod's namespace whose selector matches its labels.
    fn matching(&self, pod: &Pod) -> Vec<Arc<ReplicaSet>> {
        let empty = BTreeMap::new();
        let labels = pod.metadata.labels.as_ref().unwrap_or(&empty);
        self.replicasets
            .in_namespace(pod.metadata.namespace.as_deref().unwrap_or_default())
            .into_iter()
            .filter(|rs| {
                let sel = rs.spec.as_ref().map(|s| &s.selector);
                LabelSelector::from_k8s_opt(sel).is_ok_and(|s| !s.is_empty() && s.matches(labels))
            })
            .collect()
    }

    /// Upstream `addPod`/`updatePod`/`deletePod`: observe expectations and enqueue the owner
    /// (or, for an orphan, every ReplicaSet that could adopt it).
    fn pod_changed(&self, change: &Change<Pod>) {
        match change {
            Change::Applied { old, new } => {
                let pod_key = name_of(&new.metadata);
                let owner = self.owner_of(new);
                if pods::is_terminating(new) {
                    if let Some(rs) = &owner {
                        self.expectations.deletion_observed(&key_of(rs.as_ref()), &pod_key);
                        self.queue.add(key_of(rs.as_ref()));
                    }
                    return;
                }
                if let Some(old_owner) = old.as_ref().and_then(|o| self.owner_of(o)) {
                    if owner.as_ref().map(|o| &o.metadata.uid) != Some(&old_owner.metadata.uid) {
                        self.queue.add(key_of(old_owner.as_ref()));
                    }
                }
                match owner {
                    Some(rs) => {
                        if old.is_none() {
                            self.expectations.creation_observed(&key_of(rs.as_ref()));
                        }
                        self.queue.add(key_of(rs.as_ref()));
                    }
                    None if controller_ref(&new.metadata).is_none() => {
                        let labels_changed = old.as_ref().is_none_or(|o| o.metadata.labels != new.metadata.labels);
                        let orphaned = old.as_ref().is_some_and(|o| controller_ref(&o.metadata).is_some());
                        if labels_changed || orphaned {
                            for rs in self.matching(new) {
                                self.queue.add(key_of(rs.as_ref()));
                            }
                        }
                    }
                    None => {}
                }
            }
            Change::Deleted(pod) => {
                if let Some(rs) = self.owner_of(pod) {
                    self.expectations.deletion_observed(&key_of(rs.as_ref()), &name_of(&pod.metadata));
                    self.queue.add(key_of(rs.as_ref()));
                }
            }
        }
    }

    /// Upstream `syncReplicaSet`.
    async fn sync(&self, key: &ObjectKey) -> Result<Option<Duration>> {
        let Some(rs) = self.replicasets.get(key.namespace.as_deref(), &key.name) else {
            self.expectations.delete(key);
            return Ok(None);
        };
        let spec = rs.spec.clone().unwrap_or_default();
        let selector = match LabelSelector::from_k8s(&spec.selector) {
            Ok(s) => s,
            Err(e) => {
                tracing::debug!(object = %key, error = %e, "invalid selector");
                return Ok(None);
            }
        };
        let needs_sync = self.expectations.satisfied(key);
        let namespace = key.namespace.as_deref().unwrap_or_default();
        let active: Vec<Arc<Pod>> = self.pods.in_namespace(namespace).into_iter().filter(|p| pods::is_active(p)).collect();
        let owner = new_controller_ref(rs.as_ref());
        let deleting = rs.metadata.deletion_timestamp.is_some();
        let claimed = claim(&self.client, &owner, deleting, &selector, active).await?;
        let mut manage_error = None;
        if needs_sync && !deleting {
            if let Err(e) = self.manage_replicas(&rs, &claimed).await {
                manage_error = Some(e);
            }
        }
        let now = crate::clock::now();
        let min_ready = Duration::from_secs(spec.min_ready_seconds.unwrap_or(0).max(0) as u64);
        let pod_refs: Vec<&Pod> = claimed.iter().map(|p| p.as_ref()).collect();
        let failure = manage_error.as_ref().map(|e| {
            let reason = if (pod_refs.len() as i32) < spec.replicas.unwrap_or(1) { "FailedCreate" } else { "FailedDelete" };
            (reason, e.to_string())
        });
        let status = calculate_status(&rs, &pod_refs, failure, now);
        self.update_status(&rs, status.clone()).await?;
        if let Some(e) = manage_error {
            return Err(e);
        }
        let ready = status.ready_replicas.unwrap_or(0);
        let available = status.available_replicas.unwrap_or(0);
        if !min_ready.is_zero() && ready != available {
            return Ok(Some(min_ready.min(RESYNC_PERIOD)));
        }
        Ok(Some(RESYNC_PERIOD))
    }

    /// Upstream `manageReplicas`: create or delete the difference.
    async fn manage_replicas(&self, rs: &Arc<ReplicaSet>, pods: &[Arc<Pod>]) -> Result<()> {
        let key = key_of(rs.as_ref());
        let wanted = rs.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1).max(0) as usize;
        if pods.len() < wanted {
            let count = (wanted - pods.len()).min(BURST_REPLICAS);
            self.expectations.expect_creations(&key, count);
            let template = rs.spec.as_ref().and_then(|s| s.template.clone()).unwrap_or_default();
            let pod = pod_from_template(&template, &rs.metadata, new_controller_ref(rs.as_ref()));
            let api: Api<Pod> = Api::namespaced(self.client.clone(), key.namespace.as_deref().unwrap_or_default());
            let (created, error) = slow_start_batch(count, |_| {
                let (api, pod, key) = (&api, &pod, &key);
                async move {
                    match api.create(&PostParams::default(), pod).await {
                        Ok(p) => {
                            let name = p.metadata.name.unwrap_or_default();
                            self.recorder.event(rs.as_ref(), NORMAL, "SuccessfulCreate", format!("Created pod: {name}"));
                            Ok(())
                        }
                        Err(e) => {
                            self.recorder.event(rs.as_ref(), WARNING, "FailedCreate", format!("Error creating: {}", message(&e)));
                            Err(Error::api("create", format!("pod for {key}"), e))
                        }
                    }
                }
            })
            .await;
            // Creations that failed or were skipped will never be observed.
            for _ in created..count {
                self.expectations.creation_observed(&key);
            }
            return error.map_or(Ok(()), Err);
        }
        if pods.len() > wanted {
            let count = (pods.len() - wanted).min(BURST_REPLICAS);
            let refs: Vec<&Pod> = pods.iter().map(|p| p.as_ref()).collect();
            let victims = pods::pods_to_delete(&refs, &refs, count, crate::clock::now());
            self.expectations.expect_deletions(&key, victims.iter().map(|p| name_of(&p.metadata)));
            let results = join_all(victims.iter().map(|p| self.delete_pod(rs, &key, p))).await;
            if let Some(e) = results.into_iter().find_map(|r| r.err()) {
                return Err(e);
            }
        }
        Ok(())
    }

    async fn delete_pod(&self, rs: &Arc<ReplicaSet>, key: &ObjectKey, pod: &Pod) -> Result<()> {
        let name = pod.metadata.name.clone().unwrap_or_default();
        let api: Api<Pod> = Api::namespaced(self.client.clone(), key.namespace.as_deref().unwrap_or_default());
        match api.delete(&name, &DeleteParams::default()).await {
            Ok(_) => {
                self.recorder.event(rs.as_ref(), NORMAL, "SuccessfulDelete", format!("Deleted pod: {name}"));
                Ok(())
            }
            Err(e) => {
                self.expectations.deletion_observed(key, &name_of(&pod.metadata));
                if is_not_found(&e) {
                    return Ok(());
                }
                self.recorder.event(rs.as_ref(), WARNING, "FailedDelete", format!("Error deleting: {}", message(&e)));
                Err(Error::api("delete", name_of(&pod.metadata), e))
            }
        }
    }

    /// Writes `status` unless the ReplicaSet already has it; on a conflict, retries once on
    /// a fresh read (upstream `updateReplicaSetStatus`).
    async fn update_status(&self, rs: &ReplicaSet, status: ReplicaSetStatus) -> Result<()> {
        if rs.status.as_ref() == Some(&status) {
            return Ok(());
        }
        let api: Api<ReplicaSet> = Api::namespaced(self.client.clone(), rs.metadata.namespace.as_deref().unwrap_or_default());
        let name = rs.metadata.name.clone().unwrap_or_default();
        let mut updated = rs.clone();
        updated.status = Some(status.clone());
        for attempt in 0..2 {
            match api.replace_status(&name, &PostParams::default(), &updated).await {
                Ok(_) => return Ok(()),
                Err(e) if is_conflict(&e) && attempt == 0 => {
                    updated = api.get(&name).await.map_err(|e| Error::api("get", &name, e))?;
                    updated.status = Some(status.clone());
                }
                Err(e) if is_not_found(&e) => return Ok(()),
                Err(e) => return Err(Error::api("update status of", format!("replicaset {name}"), e)),
            }
        }
        Ok(())
    }
}

/// Runs `count` calls in batches of 1, 2, 4, ... (upstream `slowStartBatch`), stopping after
/// a batch with a failure. Returns how many succeeded and the first error.
pub async fn slow_start_batch<F, Fut>(count: usize, call: F) -> (usize, Option<Error>)
where
    F: Fn(usize) -> Fut,
    Fut: std::future::Future<Output = Result<()>>,
{
    let (mut done, mut batch, mut ok) = (0, 1usize, 0);
    while done < count {
        let size = batch.min(count - done);
        let results = join_all((done..done + size).map(&call)).await;
        done += size;
        let mut first_error = None;
        for r in results {
            match r {
                Ok(()) => ok += 1,
                Err(e) => {
                    first_error.get_or_insert(e);
                }
            }
        }
        if first_error.is_some() {
            return (ok, first_error);
        }
        batch *= 2;
    }
    (ok, None)
}

/// A pod from a template (upstream `GetPodFromTemplate`): the template's labels,
/// annotations, finalizers and spec, `generateName: <owner>-`, and the controller reference.
pub fn pod_from_template(template: &PodTemplateSpec, owner: &ObjectMeta, controller: OwnerReference) -> Pod {
    let meta = template.metadata.clone().unwrap_or_default();
    Pod {
        metadata: ObjectMeta {
            generate_name: Some(format!("{}-", owner.name.as_deref().unwrap_or_default())),
            namespace: owner.namespace.clone(),
            labels: meta.labels,
            annotations: meta.annotations,
            finalizers: meta.finalizers,
            owner_references: Some(vec![controller]),
            ..Default::default()
        },
        spec: template.spec.clone(),
        status: None,
    }
}

/// The status a ReplicaSet with these (claimed, active) pods has (upstream
/// `calculateStatus`); `failure` is the reason and message of a failed create or delete.
pub fn calculate_status(rs: &ReplicaSet, pods: &[&Pod], failure: Option<(&str, String)>, now: jiff::Timestamp) -> ReplicaSetStatus {
    let spec = rs.spec.clone().unwrap_or_default();
    let template_labels = spec.template.as_ref().and_then(|t| t.metadata.as_ref()).and_then(|m| m.labels.clone()).unwrap_or_default();
    let min_ready = Duration::from_secs(spec.min_ready_seconds.unwrap_or(0).max(0) as u64);
    let empty = BTreeMap::new();
    let fully_labeled = pods
        .iter()
        .filter(|p| {
            let labels = p.metadata.labels.as_ref().unwrap_or(&empty);
            template_labels.iter().all(|(k, v)| labels.get(k) == Some(v))
        })
        .count();
    let ready = pods.iter().filter(|p| pods::is_ready(p)).count();
    let available = pods.iter().filter(|p| pods::is_available(p, min_ready, now)).count();
    let old = rs.status.clone().unwrap_or_default();
    let mut conditions: Vec<ReplicaSetCondition> = old.conditions.clone().unwrap_or_default();
    let has_failure = conditions.iter().any(|c| c.type_ == "ReplicaFailure");
    match failure {
        Some((reason, message)) if !has_failure => conditions.push(ReplicaSetCondition {
            type_: "ReplicaFailure".into(),
            status: "True".into(),
            reason: Some(reason.into()),
            message: Some(message),
            last_transition_time: Some(Time(now)),
        }),
        Some(_) => {}
        None => conditions.retain(|c| c.type_ != "ReplicaFailure"),
    }
    ReplicaSetStatus {
        replicas: pods.len() as i32,
        fully_labeled_replicas: Some(fully_labeled as i32),
        ready_replicas: Some(ready as i32),
        available_replicas: Some(available as i32),
        observed_generation: rs.metadata.generation,
        conditions: (!conditions.is_empty()).then_some(conditions),
        terminating_replicas: old.terminating_replicas,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::apps::v1::ReplicaSetSpec;
    use k8s_openapi::api::core::v1::{PodCondition, PodStatus};
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn rs(replicas: i32) -> ReplicaSet {
        let labels: BTreeMap<String, String> = [("app".to_string(), "web".to_string())].into();
        ReplicaSet {
            metadata: ObjectMeta { name: Some("web".into()), namespace: Some("ns".into()), generation: Some(3), uid: Some("u1".into()), ..Default::default() },
            spec: Some(ReplicaSetSpec {
                replicas: Some(replicas),
                template: Some(PodTemplateSpec {
                    metadata: Some(ObjectMeta { labels: Some(labels), ..Default::default() }),
                    spec: None,
                }),
                ..Default::default()
            }),
            status: None,
        }
    }

    fn ready_pod(ready: bool) -> Pod {
        let mut p = Pod::default();
        p.metadata.labels = Some([("app".to_string(), "web".to_string())].into());
        p.status = Some(PodStatus {
            phase: Some("Running".into()),
            conditions: Some(vec![PodCondition {
                type_: "Ready".into(),
                status: if ready { "True" } else { "False" }.into(),
                last_transition_time: Some(Time(jiff::Timestamp::UNIX_EPOCH)),
                ..Default::default()
            }]),
            ..Default::default()
        });
        p
    }

    #[test]
    fn pods_from_the_template_carry_its_labels_and_a_controller_reference() {
        let r = rs(1);
        let pod = pod_from_template(r.spec.as_ref().unwrap().template.as_ref().unwrap(), &r.metadata, new_controller_ref(&r));
        assert_eq!(pod.metadata.generate_name.as_deref(), Some("web-"));
        assert_eq!(pod.metadata.namespace.as_deref(), Some("ns"));
        assert_eq!(pod.metadata.labels.as_ref().unwrap()["app"], "web");
        let owner = &pod.metadata.owner_references.as_ref().unwrap()[0];
        assert_eq!((owner.kind.as_str(), owner.api_version.as_str(), owner.uid.as_str()), ("ReplicaSet", "apps/v1", "u1"));
        assert_eq!((owner.controller, owner.block_owner_deletion), (Some(true), Some(true)));
    }

    #[test]
    fn status_counts_ready_and_labeled_pods_and_reports_failures_once() {
        let r = rs(3);
        let (a, b) = (ready_pod(true), ready_pod(false));
        let mut c = ready_pod(true);
        c.metadata.labels = Some(BTreeMap::new());
        let now = jiff::Timestamp::UNIX_EPOCH;
        let s = calculate_status(&r, &[&a, &b, &c], None, now);
        assert_eq!((s.replicas, s.fully_labeled_replicas, s.ready_replicas, s.available_replicas), (3, Some(2), Some(2), Some(2)));
        assert_eq!(s.observed_generation, Some(3));
        assert!(s.conditions.is_none());
        let s = calculate_status(&r, &[&a], Some(("FailedCreate", "quota".into())), now);
        let cond = &s.conditions.as_ref().unwrap()[0];
        assert_eq!((cond.type_.as_str(), cond.reason.as_deref()), ("ReplicaFailure", Some("FailedCreate")));
        let mut failed = r.clone();
        failed.status = Some(s);
        let again = calculate_status(&failed, &[&a], Some(("FailedCreate", "other".into())), now);
        assert_eq!(again.conditions.as_ref().unwrap().len(), 1);
        let healed = calculate_status(&failed, &[&a], None, now);
        assert!(healed.conditions.is_none());
    }

    #[tokio::test]
    async fn slow_start_batches_double_and_stop_at_the_first_failing_batch() {
        let calls = AtomicUsize::new(0);
        let (ok, err) = slow_start_batch(10, |i| {
            calls.fetch_add(1, Ordering::SeqCst);
            async move { if i == 4 { Err(Error::Failed("quota".into())) } else { Ok(()) } }
        })
        .await;
        // batches 1, 2, 4: the third batch (items 3..7) holds the failure, so 7 calls
        assert_eq!(calls.load(Ordering::SeqCst), 7);
        assert_eq!(ok, 6);
        assert!(err.is_some());
        let (ok, err) = slow_start_batch(5, |_| async { Ok(()) }).await;
        assert_eq!((ok, err.is_none()), (5, true));
    }
}
