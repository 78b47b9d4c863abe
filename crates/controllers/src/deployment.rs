//! The `deployment` controller (upstream `pkg/controller/deployment`): rolls a Deployment's
//! pod template out through ReplicaSets named `<deployment>-<pod-template-hash>`, with the
//! RollingUpdate (maxSurge/maxUnavailable) or Recreate strategy, proportional scaling of a
//! resize mid-rollout, pause/resume, revision annotations (which `kubectl rollout history`
//! and `rollout undo` read), revisionHistoryLimit clean-up, and the status and conditions
//! (`Available`, `Progressing` with progressDeadlineSeconds) that `kubectl rollout status`
//! waits on. The arithmetic lives in [`util`]; this file reads the caches and writes.

pub mod util;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::apps::v1::{Deployment, DeploymentStatus, ReplicaSet, ReplicaSetSpec};
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use rkube_api::selector::LabelSelector;
use rkube_api::ObjectKey;
use serde_json::json;
use tokio_util::sync::CancellationToken;

use crate::claim::claim;
use crate::controller::{controller_ref, key_of, new_controller_ref, resolve, run_workers, RESYNC_PERIOD};
use crate::error::{status_code, Error, Result};
use crate::events::{Recorder, NORMAL, WARNING};
use crate::informer::{Change, Informer, Informers};
use crate::queue::WorkQueue;
use util::*;

pub struct DeploymentController {
    ctx: Arc<Context>,
}

struct Context {
    client: kube::Client,
    deployments: Arc<Informer<Deployment>>,
    replicasets: Arc<Informer<ReplicaSet>>,
    pods: Arc<Informer<Pod>>,
    recorder: Recorder,
    queue: WorkQueue<ObjectKey>,
}

/// One sync's working state: the Deployment (its status updated in memory as the sync goes)
/// and its ReplicaSets as last written.
struct Rollout {
    d: Deployment,
    cached_status: Option<DeploymentStatus>,
    new: Option<ReplicaSet>,
    /// Oldest first.
    old: Vec<ReplicaSet>,
}

impl Rollout {
    fn all(&self) -> Vec<&ReplicaSet> {
        self.old.iter().chain(self.new.iter()).collect()
    }

    fn old_active(&self) -> Vec<&ReplicaSet> {
        self.old.iter().filter(|rs| rs_replicas(rs) > 0).collect()
    }

    fn find_mut(&mut self, name: &str) -> Option<&mut ReplicaSet> {
        let is = |rs: &ReplicaSet| rs.metadata.name.as_deref() == Some(name);
        if self.new.as_ref().is_some_and(is) {
            return self.new.as_mut();
        }
        self.old.iter_mut().find(|rs| is(rs))
    }
}

impl DeploymentController {
    /// Registers the informer handlers (before the informers start).
    pub fn new(informers: &Informers) -> Self {
        let ctx = Arc::new(Context {
            client: informers.client().clone(),
            deployments: informers.get::<Deployment>(),
            replicasets: informers.get::<ReplicaSet>(),
            pods: informers.get::<Pod>(),
            recorder: Recorder::new(informers.client().clone(), "deployment-controller"),
            queue: WorkQueue::default(),
        });
        let queue = ctx.queue.clone();
        ctx.deployments.add_handler(move |change| match change {
            Change::Applied { new, .. } => queue.add(key_of(new.as_ref())),
            Change::Deleted(d) => queue.add(key_of(d.as_ref())),
        });
        let weak = Arc::downgrade(&ctx);
        ctx.replicasets.add_handler(move |change| {
            if let Some(ctx) = weak.upgrade() {
                ctx.replicaset_changed(change);
            }
        });
        let weak = Arc::downgrade(&ctx);
        ctx.pods.add_handler(move |change| {
            // Recreate waits for the old pods to be gone: look again when one is.
            if let (Change::Deleted(pod), Some(ctx)) = (change, weak.upgrade()) {
                let rs = controller_ref(&pod.metadata).and_then(|r| {
                    resolve(r, pod.metadata.namespace.as_deref(), |ns, n| ctx.replicasets.get(ns, n))
                });
                if let Some(d) = rs.and_then(|rs| ctx.owner_of(&rs)).filter(|d| is_recreate(d)) {
                    ctx.queue.add(key_of(d.as_ref()));
                }
            }
        });
        DeploymentController { ctx }
    }

    /// Reconciles until `shutdown`, with `workers` concurrent syncs.
    pub async fn run(self, workers: usize, shutdown: CancellationToken) {
        let ctx = self.ctx;
        let queue = ctx.queue.clone();
        run_workers("deployment", queue, workers, shutdown, move |key| {
            let ctx = ctx.clone();
            async move { ctx.sync(&key).await }
        })
        .await;
    }
}

impl Context {
    fn owner_of(&self, rs: &ReplicaSet) -> Option<Arc<Deployment>> {
        let r = controller_ref(&rs.metadata)?;
        resolve(r, rs.metadata.namespace.as_deref(), |ns, name| self.deployments.get(ns, name))
    }

    fn replicaset_changed(&self, change: &Change<ReplicaSet>) {
        let (old, new) = match change {
            Change::Applied { old, new } => (old.as_deref(), new.as_ref()),
            Change::Deleted(rs) => (None, rs.as_ref()),
        };
        if let Some(d) = old.and_then(|o| self.owner_of(o)) {
            self.queue.add(key_of(d.as_ref()));
        }
        if let Some(d) = self.owner_of(new) {
            self.queue.add(key_of(d.as_ref()));
            return;
        }
        if controller_ref(&new.metadata).is_none() && matches!(change, Change::Applied { .. }) {
            let empty = BTreeMap::new();
            let labels = new.metadata.labels.as_ref().unwrap_or(&empty);
            for d in self.deployments.in_namespace(new.metadata.namespace.as_deref().unwrap_or_default()) {
                let sel = d.spec.as_ref().map(|s| &s.selector);
                if LabelSelector::from_k8s_opt(sel).is_ok_and(|s| !s.is_empty() && s.matches(labels)) {
                    self.queue.add(key_of(d.as_ref()));
                }
            }
        }
    }

    fn rs_api(&self, d: &Deployment) -> Api<ReplicaSet> {
        Api::namespaced(self.client.clone(), d.metadata.namespace.as_deref().unwrap_or_default())
    }

    fn d_api(&self, d: &Deployment) -> Api<Deployment> {
        Api::namespaced(self.client.clone(), d.metadata.namespace.as_deref().unwrap_or_default())
    }

    /// Upstream `syncDeployment`.
    async fn sync(&self, key: &ObjectKey) -> Result<Option<Duration>> {
        let Some(cached) = self.deployments.get(key.namespace.as_deref(), &key.name) else {
            return Ok(None);
        };
        let d = (*cached).clone();
        let spec = d.spec.clone().unwrap_or_default();
        let Ok(selector) = LabelSelector::from_k8s(&spec.selector) else { return Ok(None) };
        if selector.is_empty() {
            self.recorder.event(&d, WARNING, "SelectingAll", "This deployment is selecting all pods. A non-empty selector is required.".into());
            return Ok(None);
        }
        let deleting = d.metadata.deletion_timestamp.is_some();
        let candidates = self.replicasets.in_namespace(key.namespace.as_deref().unwrap_or_default());
        let claimed = claim(&self.client, &new_controller_ref(&d), deleting, &selector, candidates).await?;
        let mut rss: Vec<ReplicaSet> = claimed.iter().map(|rs| (**rs).clone()).collect();
        rss.sort_by(|a, b| {
            a.metadata.creation_timestamp.cmp(&b.metadata.creation_timestamp).then_with(|| a.metadata.name.cmp(&b.metadata.name))
        });
        let new = find_new(&d, &rss).cloned();
        let old = rss.into_iter().filter(|rs| Some(&rs.metadata.name) != new.as_ref().map(|n| &n.metadata.name)).collect();
        let mut st = Rollout { cached_status: d.status.clone(), d, new, old };
        if deleting {
            return self.sync_status_only(&mut st).await;
        }
        check_paused_conditions(&mut st.d);
        if is_paused(&st.d) {
            return self.sync_scale(&mut st).await;
        }
        let active: Vec<&ReplicaSet> = st.all().into_iter().filter(|rs| rs_replicas(rs) > 0).collect();
        if is_scaling_event(&st.d, &active) {
            return self.sync_scale(&mut st).await;
        }
        if is_recreate(&st.d) {
            self.rollout_recreate(&mut st).await
        } else {
            self.rollout_rolling(&mut st).await
        }
    }

    /// Upstream `getNewReplicaSet`: brings an existing new ReplicaSet's annotations up to date,
    /// or (with `create`) creates it.
    async fn sync_new_replicaset(&self, st: &mut Rollout, create: bool) -> Result<()> {
        let new_revision = max_revision(&st.old) + 1;
        let now = crate::clock::now();
        if let Some(existing) = st.new.clone() {
            let mut updated = existing.clone();
            let mut changed = set_new_rs_annotations(&st.d, &mut updated, new_revision, true);
            let min_ready = st.d.spec.as_ref().and_then(|s| s.min_ready_seconds);
            if let Some(spec) = updated.spec.as_mut().filter(|s| s.min_ready_seconds != min_ready) {
                spec.min_ready_seconds = min_ready;
                changed = true;
            }
            if changed {
                let name = existing.metadata.name.clone().unwrap_or_default();
                let written = self.rs_api(&st.d).replace(&name, &PostParams::default(), &updated).await;
                st.new = Some(written.map_err(|e| Error::api("update", format!("replicaset {name}"), e))?);
            }
            let name = existing.metadata.name.clone().unwrap_or_default();
            if progress_deadline_secs(&st.d).is_some() {
                let status = st.d.status.get_or_insert_with(Default::default);
                if condition(status, PROGRESSING).is_none() {
                    let cond = new_condition(PROGRESSING, "True", FOUND_NEW_RS, format!("Found new replica set {name:?}"), now);
                    set_condition(status, cond);
                }
            }
            return self.sync_revision(st).await;
        }
        if !create {
            return Ok(());
        }
        let d = &st.d;
        let spec = d.spec.clone().unwrap_or_default();
        let collision = d.status.as_ref().and_then(|s| s.collision_count);
        let hash = compute_hash(&spec.template, collision);
        let mut template = spec.template.clone();
        let meta = template.metadata.get_or_insert_with(Default::default);
        meta.labels.get_or_insert_with(BTreeMap::new).insert(POD_TEMPLATE_HASH.into(), hash.clone());
        let mut selector = spec.selector.clone();
        selector.match_labels.get_or_insert_with(BTreeMap::new).insert(POD_TEMPLATE_HASH.into(), hash.clone());
        let name = format!("{}-{hash}", d.metadata.name.as_deref().unwrap_or_default());
        let mut rs = ReplicaSet {
            metadata: ObjectMeta {
                name: Some(name.clone()),
                namespace: d.metadata.namespace.clone(),
                labels: meta.labels.clone(),
                owner_references: Some(vec![new_controller_ref(d)]),
                ..Default::default()
            },
            spec: Some(ReplicaSetSpec {
                replicas: Some(0),
                min_ready_seconds: spec.min_ready_seconds,
                selector,
                template: Some(template),
            }),
            status: None,
        };
        let all = st.all();
        let size = new_rs_new_replicas(d, &all, Some(&rs));
        if let Some(s) = rs.spec.as_mut() {
            s.replicas = Some(size);
        }
        set_new_rs_annotations(d, &mut rs, new_revision, false);
        let created = match self.rs_api(d).create(&PostParams::default(), &rs).await {
            Ok(created) => created,
            Err(e) if status_code(&e) == Some(409) => {
                // Already there: ours with this template (a lagging cache), or a hash collision.
                let existing = self.rs_api(d).get(&name).await.map_err(|e| Error::api("get", format!("replicaset {name}"), e))?;
                let ours = controller_ref(&existing.metadata).is_some_and(|r| Some(&r.uid) == d.metadata.uid.as_ref());
                let same = existing.spec.as_ref().and_then(|s| s.template.as_ref()).is_some_and(|t| equal_ignore_hash(t, &spec.template));
                if ours && same {
                    st.new = Some(existing);
                    return self.sync_revision(st).await;
                }
                let status = st.d.status.get_or_insert_with(Default::default);
                status.collision_count = Some(status.collision_count.unwrap_or(0) + 1);
                self.write_status(st, st.d.status.clone().unwrap_or_default()).await?;
                return Err(Error::Failed(format!("hash collision for replicaset {name}; collisionCount raised")));
            }
            Err(e) => {
                self.recorder.event(d, WARNING, "FailedCreate", format!("Failed to create new replica set {name:?}: {}", crate::error::message(&e)));
                return Err(Error::api("create", format!("replicaset {name}"), e));
            }
        };
        if size > 0 {
            self.recorder.event(d, NORMAL, "ScalingReplicaSet", format!("Scaled up replica set {name} from 0 to {size}"));
        }
        if progress_deadline_secs(&st.d).is_some() {
            let cond = new_condition(PROGRESSING, "True", NEW_RS_CREATED, format!("Created new replica set {name:?}"), now);
            set_condition(st.d.status.get_or_insert_with(Default::default), cond);
        }
        st.new = Some(created);
        self.sync_revision(st).await
    }

    /// Upstream `SetDeploymentRevision`: the Deployment's revision annotation follows its new
    /// ReplicaSet's.
    async fn sync_revision(&self, st: &mut Rollout) -> Result<()> {
        let Some(rev) = st.new.as_ref().and_then(|rs| rs.metadata.annotations.as_ref()?.get(REVISION).cloned()) else {
            return Ok(());
        };
        if st.d.metadata.annotations.as_ref().and_then(|a| a.get(REVISION)) == Some(&rev) {
            return Ok(());
        }
        let name = st.d.metadata.name.clone().unwrap_or_default();
        let patch = json!({"metadata": {"annotations": {REVISION: rev}}});
        let written = self.d_api(&st.d).patch(&name, &PatchParams::default(), &Patch::Merge(&patch)).await;
        let written = written.map_err(|e| Error::api("annotate", format!("deployment {name}"), e))?;
        st.d.metadata.annotations = written.metadata.annotations;
        Ok(())
    }

    /// Sets a ReplicaSet's size and replicas annotations (upstream `scaleReplicaSet`);
    /// `true` when the size changed.
    async fn scale(&self, st: &mut Rollout, name: &str, size: i32) -> Result<bool> {
        let (desired, max) = (replicas(&st.d), replicas(&st.d) + max_surge(&st.d));
        let d = st.d.clone();
        let Some(rs) = st.find_mut(name) else { return Ok(false) };
        let from = rs_replicas(rs);
        let mut updated = rs.clone();
        let annotations_changed = set_replicas_annotations(&mut updated, desired, max);
        if from == size && !annotations_changed {
            return Ok(false);
        }
        if let Some(spec) = updated.spec.as_mut() {
            spec.replicas = Some(size);
        }
        let written = self.rs_api(&d).replace(name, &PostParams::default(), &updated).await;
        *rs = written.map_err(|e| Error::api("scale", format!("replicaset {name}"), e))?;
        if from != size {
            let direction = if size > from { "up" } else { "down" };
            self.recorder.event(&d, NORMAL, "ScalingReplicaSet", format!("Scaled {direction} replica set {name} from {from} to {size}"));
        }
        Ok(from != size)
    }

    async fn scale_all(&self, st: &mut Rollout, sizes: Vec<(String, i32)>) -> Result<bool> {
        let mut any = false;
        for (name, size) in sizes {
            any |= self.scale(st, &name, size).await?;
        }
        Ok(any)
    }

    /// Upstream `rolloutRolling`.
    async fn rollout_rolling(&self, st: &mut Rollout) -> Result<Option<Duration>> {
        self.sync_new_replicaset(st, true).await?;
        if let Some(new) = st.new.clone() {
            let (size, want) = (rs_replicas(&new), replicas(&st.d));
            let target = match size.cmp(&want) {
                std::cmp::Ordering::Greater => Some(want),
                std::cmp::Ordering::Less => Some(new_rs_new_replicas(&st.d, &st.all(), Some(&new))),
                std::cmp::Ordering::Equal => None,
            };
            if let Some(target) = target {
                if self.scale(st, new.metadata.name.as_deref().unwrap_or_default(), target).await? {
                    return self.sync_rollout_status(st).await;
                }
            }
        }
        let old_pods: i32 = st.old.iter().map(rs_replicas).sum();
        if old_pods > 0 {
            let max_down = max_scaled_down(&st.d, &st.all(), st.new.as_ref());
            if max_down > 0 {
                let cleanup = cleanup_unhealthy(&st.old_active(), max_down);
                let mut scaled = self.scale_all(st, cleanup).await?;
                let downs = rolling_scale_downs(&st.d, &st.all(), &st.old_active());
                scaled |= self.scale_all(st, downs).await?;
                if scaled {
                    return self.sync_rollout_status(st).await;
                }
            }
        }
        if st.cached_status.as_ref().is_some_and(|s| is_complete(&st.d, s)) {
            self.cleanup(st).await?;
        }
        self.sync_rollout_status(st).await
    }

    /// Upstream `rolloutRecreate`: old pods all gone before the new ReplicaSet grows.
    async fn rollout_recreate(&self, st: &mut Rollout) -> Result<Option<Duration>> {
        self.sync_new_replicaset(st, false).await?;
        let downs = st.old_active().iter().map(|rs| (rs.metadata.name.clone().unwrap_or_default(), 0)).collect();
        if self.scale_all(st, downs).await? || self.old_pods_running(st) {
            return self.sync_rollout_status(st).await;
        }
        if st.new.is_none() {
            self.sync_new_replicaset(st, true).await?;
        }
        if let Some(name) = st.new.as_ref().and_then(|n| n.metadata.name.clone()) {
            self.scale(st, &name, replicas(&st.d)).await?;
        }
        if st.cached_status.as_ref().is_some_and(|s| is_complete(&st.d, s)) {
            self.cleanup(st).await?;
        }
        self.sync_rollout_status(st).await
    }

    /// Upstream `oldPodsRunning`.
    fn old_pods_running(&self, st: &Rollout) -> bool {
        if st.old.iter().map(rs_actual).sum::<i32>() > 0 {
            return true;
        }
        let old_uids: Vec<&str> = st.old.iter().filter_map(|rs| rs.metadata.uid.as_deref()).collect();
        self.pods.in_namespace(st.d.metadata.namespace.as_deref().unwrap_or_default()).iter().any(|p| {
            let phase = p.status.as_ref().and_then(|s| s.phase.as_deref()).unwrap_or("");
            !matches!(phase, "Succeeded" | "Failed")
                && controller_ref(&p.metadata).is_some_and(|r| old_uids.contains(&r.uid.as_str()))
        })
    }

    /// Upstream `sync`: resize without rolling out (paused, or a scaling event).
    async fn sync_scale(&self, st: &mut Rollout) -> Result<Option<Duration>> {
        self.sync_new_replicaset(st, false).await?;
        let want = replicas(&st.d);
        let active: Vec<&ReplicaSet> = st.all().into_iter().filter(|rs| rs_replicas(rs) > 0).collect();
        let active_or_latest = match active.len() {
            0 => st.new.as_ref().or(st.old.last()),
            1 => Some(active[0]),
            _ => None,
        };
        if let Some(rs) = active_or_latest {
            let name = rs.metadata.name.clone().unwrap_or_default();
            if rs_replicas(rs) != want {
                self.scale(st, &name, want).await?;
            }
        } else if st.new.as_ref().is_some_and(|n| {
            rs_replicas(n) == want && rs_available(n) == want
        }) {
            let downs = st.old_active().iter().map(|rs| (rs.metadata.name.clone().unwrap_or_default(), 0)).collect();
            self.scale_all(st, downs).await?;
        } else if !is_recreate(&st.d) {
            let sizes = proportional_sizes(&st.d, &active);
            self.scale_all(st, sizes).await?;
        }
        if is_paused(&st.d) {
            self.cleanup(st).await?;
        }
        self.sync_status_only(st).await
    }

    /// Upstream `syncDeploymentStatus`: counts and Available, no Progressing update.
    async fn sync_status_only(&self, st: &mut Rollout) -> Result<Option<Duration>> {
        let status = calculate_status(&st.d, &st.all(), st.new.as_ref(), crate::clock::now());
        self.write_status(st, status).await?;
        Ok(Some(RESYNC_PERIOD))
    }

    /// Upstream `syncRolloutStatus`; requeues for the progress deadline.
    async fn sync_rollout_status(&self, st: &mut Rollout) -> Result<Option<Duration>> {
        let now = crate::clock::now();
        let mut status = calculate_status(&st.d, &st.all(), st.new.as_ref(), now);
        let new_name = st.new.as_ref().and_then(|n| n.metadata.name.clone());
        update_progressing(&st.d, &mut status, new_name.as_deref(), now);
        let failure = st.all().into_iter().find_map(|rs| {
            rs.status.as_ref()?.conditions.as_ref()?.iter().find(|c| c.type_ == "ReplicaFailure").cloned()
        });
        match failure {
            Some(c) => set_condition(
                &mut status,
                new_condition(REPLICA_FAILURE, &c.status, c.reason.as_deref().unwrap_or(""), c.message.clone().unwrap_or_default(), now),
            ),
            None => remove_condition(&mut status, REPLICA_FAILURE),
        }
        let deadline = if is_complete(&st.d, &status) { None } else { progress_deadline(&st.d, &status) };
        self.write_status(st, status).await?;
        let after = deadline
            .map(|t| Duration::try_from(t.duration_since(now)).unwrap_or_default() + Duration::from_secs(1))
            .map_or(RESYNC_PERIOD, |d| d.min(RESYNC_PERIOD));
        Ok(Some(after))
    }

    /// Writes the status unless the cached Deployment already has it.
    async fn write_status(&self, st: &Rollout, status: DeploymentStatus) -> Result<()> {
        if st.cached_status.as_ref() == Some(&status) {
            return Ok(());
        }
        let name = st.d.metadata.name.clone().unwrap_or_default();
        let patch = json!({"status": status});
        match self.d_api(&st.d).patch_status(&name, &PatchParams::default(), &Patch::Merge(&patch)).await {
            Ok(_) => Ok(()),
            Err(e) if crate::error::is_not_found(&e) => Ok(()),
            Err(e) => Err(Error::api("update status of", format!("deployment {name}"), e)),
        }
    }

    /// Upstream `cleanupDeployment`: deletes the oldest empty ReplicaSets beyond
    /// revisionHistoryLimit.
    async fn cleanup(&self, st: &mut Rollout) -> Result<()> {
        let Some(limit) = st.d.spec.as_ref().and_then(|s| s.revision_history_limit) else { return Ok(()) };
        let mut cleanable: Vec<&ReplicaSet> = st.old.iter().filter(|rs| rs.metadata.deletion_timestamp.is_none()).collect();
        let diff = cleanable.len() as i64 - i64::from(limit.max(0));
        if diff <= 0 {
            return Ok(());
        }
        cleanable.sort_by(|a, b| revision(a).cmp(&revision(b)).then_with(|| a.metadata.creation_timestamp.cmp(&b.metadata.creation_timestamp)));
        let mut deleted = Vec::new();
        for rs in cleanable.into_iter().take(diff as usize) {
            let observed = rs.status.as_ref().and_then(|s| s.observed_generation).unwrap_or(0);
            if rs_actual(rs) != 0 || rs_replicas(rs) != 0 || rs.metadata.generation.unwrap_or(0) > observed {
                continue;
            }
            let name = rs.metadata.name.clone().unwrap_or_default();
            match self.rs_api(&st.d).delete(&name, &DeleteParams::default()).await {
                Ok(_) => deleted.push(name),
                Err(e) if crate::error::is_not_found(&e) => deleted.push(name),
                Err(e) => return Err(Error::api("delete", format!("replicaset {name}"), e)),
            }
        }
        st.old.retain(|rs| !deleted.contains(rs.metadata.name.as_ref().unwrap_or(&String::new())));
        Ok(())
    }
}

/// Upstream `checkPausedConditions`: Progressing Unknown `DeploymentPaused` while paused,
/// `DeploymentResumed` after.
fn check_paused_conditions(d: &mut Deployment) {
    if progress_deadline_secs(d).is_none() {
        return;
    }
    let paused = is_paused(d);
    let status = d.status.get_or_insert_with(Default::default);
    let reason = condition(status, PROGRESSING).and_then(|c| c.reason.clone());
    if reason.as_deref() == Some(TIMED_OUT) {
        return;
    }
    let now = crate::clock::now();
    let paused_exists = reason.as_deref() == Some(PAUSED);
    if paused && !paused_exists {
        set_condition(status, new_condition(PROGRESSING, "Unknown", PAUSED, "Deployment is paused".into(), now));
    } else if !paused && paused_exists {
        set_condition(status, new_condition(PROGRESSING, "Unknown", RESUMED, "Deployment is resumed".into(), now));
    }
}
