//! The `job-controller` (upstream `pkg/controller/job`): runs each Job's pods to completion.
//!
//! A Job keeps `min(parallelism, completions - succeeded)` pods active (all of them, until
//! one succeeds, without `completions`), each created from the template with the
//! `batch.kubernetes.io/job-tracking` finalizer. Finished pods are counted as upstream does
//! since 1.26: their UIDs go to `status.uncountedTerminatedPods` first, then the finalizer is
//! removed, then the counters move to `succeeded`/`failed`, so no pod is counted twice or lost
//! even across restarts. Indexed Jobs give each pod a completion index (annotation, label,
//! `JOB_COMPLETION_INDEX`, hostname) and report `completedIndexes`.
//!
//! A Job ends as 1.31+ upstream ends it: `SuccessCriteriaMet` (or `FailureTarget` for
//! `backoffLimit` and `activeDeadlineSeconds`) first, active pods deleted, then `Complete`
//! (or `Failed`) once no pod terminates any more. Pod creation after failures waits
//! `base * 2^(failures-1)` (10 s doubling up to 6 min upstream; the base is configurable).
//! Pure parts: [`job::indexes`](indexes), [`job::backoff`](backoff), [`job::pods`](pods) and
//! [`want_active`].

pub mod backoff;
pub mod failurepolicy;
pub mod indexes;
pub mod pods;
mod tracking;

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::future::join_all;
use k8s_openapi::api::batch::v1::{Job, JobCondition, JobStatus};
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use rkube_api::selector::LabelSelector;
use rkube_api::ObjectKey;
use serde_json::json;
use tokio_util::sync::CancellationToken;

use crate::claim::claim;
use crate::controller::{controller_ref, key_of, name_of, new_controller_ref, resolve, run_workers, RESYNC_PERIOD};
use crate::error::{is_not_found, message, Error, Result};
use crate::events::{Recorder, NORMAL, WARNING};
use crate::expectations::Expectations;
use crate::informer::{Change, Informer, Informers};
use crate::queue::WorkQueue;
use crate::replicaset::slow_start_batch;
use backoff::Record;
use indexes::Indexes;

/// Upstream `MaxUncountedPods`: finished pods recorded per status write.
const MAX_UNCOUNTED_PODS: usize = 500;
/// Upstream `batch.JobControllerName`: the `spec.managedBy` value this controller serves.
const MANAGED_BY_US: &str = "kubernetes.io/job-controller";
/// Upstream `MaxPodCreateDeletePerSync`.
const MAX_POD_CREATE_DELETE_PER_SYNC: usize = 500;

/// Job controller settings.
#[derive(Debug, Clone, Copy)]
pub struct JobConfig {
    /// First delay before a failed pod is replaced (upstream 10 s; doubles per failure).
    pub pod_failure_backoff: Duration,
    /// Longest such delay (upstream 6 min).
    pub max_pod_failure_backoff: Duration,
}

impl Default for JobConfig {
    fn default() -> Self {
        JobConfig { pod_failure_backoff: backoff::DEFAULT_BACKOFF, max_pod_failure_backoff: backoff::MAX_BACKOFF }
    }
}

pub struct JobController {
    ctx: Arc<Context>,
}

struct Context {
    client: kube::Client,
    config: JobConfig,
    jobs: Arc<Informer<Job>>,
    pods: Arc<Informer<Pod>>,
    expectations: Expectations,
    /// Pod UIDs whose finalizer removal was sent but not yet seen, per Job.
    finalizer_removals: Mutex<HashMap<ObjectKey, HashSet<String>>>,
    backoff: Mutex<HashMap<ObjectKey, Record>>,
    recorder: Recorder,
    queue: WorkQueue<ObjectKey>,
    /// Pods that may hold the tracking finalizer without a live Job to remove it.
    orphans: WorkQueue<ObjectKey>,
}

impl JobController {
    /// Registers the informer handlers (before the informers start).
    pub fn new(informers: &Informers, config: JobConfig) -> Self {
        let ctx = Arc::new(Context {
            client: informers.client().clone(),
            config,
            jobs: informers.get::<Job>(),
            pods: informers.get::<Pod>(),
            expectations: Expectations::default(),
            finalizer_removals: Mutex::default(),
            backoff: Mutex::default(),
            recorder: Recorder::new(informers.client().clone(), "job-controller"),
            queue: WorkQueue::default(),
            orphans: WorkQueue::default(),
        });
        let weak = Arc::downgrade(&ctx);
        ctx.jobs.add_handler(move |change| {
            let Some(ctx) = weak.upgrade() else { return };
            match change {
                Change::Applied { new, .. } => ctx.queue.add(key_of(new.as_ref())),
                Change::Deleted(job) => {
                    ctx.queue.add(key_of(job.as_ref()));
                    // Upstream `deleteJob`: pods still holding the finalizer lose it.
                    let uid = job.metadata.uid.as_deref();
                    for pod in ctx.pods.in_namespace(job.metadata.namespace.as_deref().unwrap_or_default()) {
                        if pods::has_finalizer(&pod) && controller_ref(&pod.metadata).map(|r| r.uid.as_str()) == uid {
                            ctx.orphans.add(key_of(pod.as_ref()));
                        }
                    }
                }
            }
        });
        let weak = Arc::downgrade(&ctx);
        ctx.pods.add_handler(move |change| {
            if let Some(ctx) = weak.upgrade() {
                ctx.pod_changed(change);
            }
        });
        JobController { ctx }
    }

    /// Reconciles until `shutdown`, with `workers` concurrent syncs.
    pub async fn run(self, workers: usize, shutdown: CancellationToken) {
        let ctx = self.ctx;
        let (queue, orphans) = (ctx.queue.clone(), ctx.orphans.clone());
        let c = ctx.clone();
        let jobs = run_workers("job", queue, workers, shutdown.clone(), move |key| {
            let ctx = c.clone();
            async move { ctx.sync(&key).await }
        });
        let orphan_pods = run_workers("job-orphan-pods", orphans, 1, shutdown, move |key| {
            let ctx = ctx.clone();
            async move { ctx.sync_orphan_pod(&key).await }
        });
        tokio::join!(jobs, orphan_pods);
    }
}

/// How many pods should be active (upstream `manageJob`): parallelism without completions
/// until one pod succeeded (then whatever runs), else the remaining completions capped by
/// parallelism.
pub fn want_active(completions: Option<i32>, parallelism: i32, succeeded: i32, active: i32) -> i32 {
    match completions {
        None if succeeded > 0 => active,
        None => parallelism,
        Some(c) => (c - succeeded).min(parallelism).max(0),
    }
}

/// Whether the Job is done by its counts (upstream: no active pods, and one success without
/// `completions` or `completions` successes).
pub fn complete(completions: Option<i32>, succeeded: i32, active: i32) -> bool {
    active == 0 && completions.map_or(succeeded > 0, |c| succeeded >= c)
}

fn condition(type_: &str, reason: &str, message: &str, now: jiff::Timestamp) -> JobCondition {
    JobCondition {
        type_: type_.into(),
        status: "True".into(),
        reason: Some(reason.into()),
        message: Some(message.into()),
        last_probe_time: Some(Time(now)),
        last_transition_time: Some(Time(now)),
    }
}

fn has_condition(job: &Job, type_: &str) -> Option<JobCondition> {
    let conds = job.status.as_ref()?.conditions.as_ref()?;
    conds.iter().find(|c| c.type_ == type_ && c.status == "True").cloned()
}

/// Has the True `Complete` condition (upstream `IsJobSucceeded`).
pub fn is_complete(job: &Job) -> bool {
    has_condition(job, "Complete").is_some()
}

/// Complete or Failed (upstream `IsJobFinished`).
pub fn is_finished(job: &Job) -> bool {
    has_condition(job, "Complete").is_some() || has_condition(job, "Failed").is_some()
}

/// Sets the condition `type_` to `status` (upstream `ensureJobConditionStatus`: a new
/// condition is added only as True). Returns whether anything changed.
fn ensure_condition(conds: &mut Vec<JobCondition>, type_: &str, status: &str, reason: &str, msg: &str, now: jiff::Timestamp) -> bool {
    if let Some(c) = conds.iter_mut().find(|c| c.type_ == type_) {
        if c.status == status && c.reason.as_deref() == Some(reason) && c.message.as_deref() == Some(msg) {
            return false;
        }
        if c.status != status {
            c.last_transition_time = Some(Time(now));
        }
        c.status = status.into();
        c.reason = Some(reason.into());
        c.message = Some(msg.into());
        c.last_probe_time = Some(Time(now));
        return true;
    }
    if status != "True" {
        return false;
    }
    conds.push(condition(type_, reason, msg, now));
    true
}

fn nonzero(n: i32) -> Option<i32> {
    (n != 0).then_some(n)
}

/// The state of one sync (upstream `syncJobCtx`).
struct Sync {
    job: Job,
    key: ObjectKey,
    pods: Vec<Arc<Pod>>,
    active: Vec<Arc<Pod>>,
    expected_removals: HashSet<String>,
    uncounted_succeeded: HashSet<String>,
    uncounted_failed: HashSet<String>,
    succeeded: i32,
    failed: i32,
    ready: i32,
    terminating: i32,
    prev_indexes: Indexes,
    indexes: Indexes,
    finished: Option<JobCondition>,
    new_record: Record,
    requeue: Duration,
}

impl Sync {
    fn indexed(&self) -> bool {
        self.spec_str(|s| s.completion_mode.as_deref()) == Some("Indexed")
    }

    fn spec_str<'a>(&'a self, f: impl Fn(&'a k8s_openapi::api::batch::v1::JobSpec) -> Option<&'a str>) -> Option<&'a str> {
        self.job.spec.as_ref().and_then(f)
    }

    fn completions(&self) -> Option<i32> {
        self.job.spec.as_ref().and_then(|s| s.completions)
    }

    fn suspended(&self) -> bool {
        self.job.spec.as_ref().and_then(|s| s.suspend) == Some(true)
    }

    fn status(&mut self) -> &mut JobStatus {
        self.job.status.get_or_insert_with(Default::default)
    }

    /// Pods with the finalizer whose count is not recorded yet (upstream `getValidPodsWithFilter`).
    fn uncounted_pods(&self, uncounted: &HashSet<String>, filter: impl Fn(&Pod) -> bool) -> Vec<&Arc<Pod>> {
        let completions = self.completions().unwrap_or(0);
        self.pods
            .iter()
            .filter(|p| {
                let uid = p.metadata.uid.clone().unwrap_or_default();
                pods::has_finalizer(p) && !uncounted.contains(&uid) && !self.expected_removals.contains(&uid)
            })
            .filter(|p| !self.indexed() || pods::valid_index(p, completions).is_some())
            .filter(|p| filter(p))
            .collect()
    }
}

impl Context {
    fn owner_of(&self, pod: &Pod) -> Option<Arc<Job>> {
        let r = controller_ref(&pod.metadata)?;
        resolve(r, pod.metadata.namespace.as_deref(), |ns, name| self.jobs.get(ns, name))
    }

    fn removal_observed(&self, job: &ObjectKey, uid: &str) {
        if let Some(set) = self.finalizer_removals.lock().unwrap_or_else(|e| e.into_inner()).get_mut(job) {
            set.remove(uid);
        }
    }

    /// Upstream `addPod`/`updatePod`/`deletePod`.
    fn pod_changed(&self, change: &Change<Pod>) {
        let (pod, deleted) = match change {
            Change::Applied { new, .. } => (new, false),
            Change::Deleted(p) => (p, true),
        };
        let uid = pod.metadata.uid.clone().unwrap_or_default();
        let Some(job) = self.owner_of(pod) else {
            if pods::has_finalizer(pod) && !deleted {
                self.orphans.add(key_of(pod.as_ref()));
            }
            return;
        };
        let key = key_of(job.as_ref());
        if !pods::has_finalizer(pod) || deleted {
            self.removal_observed(&key, &uid);
        }
        match change {
            Change::Applied { old: None, .. } if pod.metadata.deletion_timestamp.is_none() => self.expectations.creation_observed(&key),
            _ if deleted || pod.metadata.deletion_timestamp.is_some() => self.expectations.deletion_observed(&key, &name_of(&pod.metadata)),
            _ => {}
        }
        if is_finished(&job) && pods::has_finalizer(pod) && !deleted {
            self.orphans.add(key_of(pod.as_ref()));
        }
        self.queue.add(key);
    }

    /// Upstream `syncOrphanPod`: removes the tracking finalizer from a pod whose Job is gone
    /// or finished.
    async fn sync_orphan_pod(&self, key: &ObjectKey) -> Result<Option<Duration>> {
        let Some(pod) = self.pods.get(key.namespace.as_deref(), &key.name) else { return Ok(None) };
        if !pods::has_finalizer(&pod) {
            return Ok(None);
        }
        if let Some(r) = controller_ref(&pod.metadata) {
            if r.kind != "Job" || r.api_version != "batch/v1" {
                return Ok(None);
            }
            if self.owner_of(&pod).is_some_and(|j| !is_finished(&j)) {
                return Ok(None); // adopted, or still counting
            }
        }
        self.remove_finalizer(&pod).await.map(|_| None)
    }

    async fn remove_finalizer(&self, pod: &Pod) -> Result<()> {
        let api: Api<Pod> = Api::namespaced(self.client.clone(), pod.metadata.namespace.as_deref().unwrap_or_default());
        let patch = json!({"metadata": {"$deleteFromPrimitiveList/finalizers": [pods::TRACKING_FINALIZER]}});
        let name = pod.metadata.name.clone().unwrap_or_default();
        match api.patch(&name, &PatchParams::default(), &Patch::Strategic(&patch)).await {
            Ok(_) => Ok(()),
            Err(e) if is_not_found(&e) => Ok(()),
            Err(e) => Err(Error::api("remove the tracking finalizer of", name_of(&pod.metadata), e)),
        }
    }

    /// Upstream `syncJob`.
    async fn sync(&self, key: &ObjectKey) -> Result<Option<Duration>> {
        let Some(shared) = self.jobs.get(key.namespace.as_deref(), &key.name) else {
            self.expectations.delete(key);
            self.finalizer_removals.lock().unwrap_or_else(|e| e.into_inner()).remove(key);
            self.backoff.lock().unwrap_or_else(|e| e.into_inner()).remove(key);
            return Ok(None);
        };
        // Upstream `managedByExternalController`: another controller owns this Job's status.
        if shared.spec.as_ref().and_then(|s| s.managed_by.as_deref()).is_some_and(|m| m != MANAGED_BY_US) {
            return Ok(None);
        }
        if is_finished(&shared) {
            self.backoff.lock().unwrap_or_else(|e| e.into_inner()).remove(key);
            return Ok(None);
        }
        let mode = shared.spec.as_ref().and_then(|s| s.completion_mode.as_deref()).unwrap_or("NonIndexed");
        if mode != "NonIndexed" && mode != "Indexed" {
            self.recorder.event(shared.as_ref(), WARNING, "UnknownCompletionMode", "Skipped Job sync because completion mode is unknown".into());
            return Ok(None);
        }
        let satisfied = self.expectations.satisfied(key);
        let mut s = self.gather(&shared, key).await?;
        let now = crate::clock::now();
        if s.job.status.as_ref().and_then(|st| st.start_time.as_ref()).is_none() && !s.suspended() {
            s.status().start_time = Some(Time(now));
        }
        self.decide_failure(&mut s, now);
        if s.indexed() {
            count_indexes(&mut s, now);
        }
        let (active, suspend_changed, manage_error) = self.act(&mut s, satisfied, now).await;
        let needs_flush = suspend_changed
            || Some(active) != s.job.status.as_ref().and_then(|st| st.active).or(Some(0))
            || Some(s.ready) != s.job.status.as_ref().and_then(|st| st.ready)
            || Some(s.terminating) != s.job.status.as_ref().and_then(|st| st.terminating);
        let (ready, terminating) = (s.ready, s.terminating);
        let status = s.status();
        status.active = nonzero(active);
        status.ready = Some(ready);
        status.terminating = Some(terminating);
        self.track_status(&mut s, needs_flush, now).await?;
        match manage_error {
            Some(e) => Err(e),
            None => Ok(Some(s.requeue)),
        }
    }

    /// Deletes the active pods of a finished Job, or manages the pods of a running one.
    /// Returns the active count, whether the Suspended condition changed, and the error.
    async fn act(&self, s: &mut Sync, satisfied: bool, now: jiff::Timestamp) -> (i32, bool, Option<Error>) {
        let mut manage_error = None;
        let mut active = s.active.len() as i32;
        let mut suspend_changed = false;
        if s.finished.is_some() {
            let (deleted_ready, deleted, err) = self.delete_active(s).await;
            if deleted != active || !satisfied {
                s.finished = None; // pods may still hold finalizers or be missing from the cache
            }
            active -= deleted;
            s.terminating += deleted;
            s.ready -= deleted_ready;
            manage_error = err;
        } else {
            let mut managed = false;
            if satisfied && s.job.metadata.deletion_timestamp.is_none() {
                match self.manage(s, now).await {
                    Ok(a) => active = a,
                    Err((a, e)) => {
                        active = a;
                        manage_error = Some(e);
                    }
                }
                managed = true;
            }
            if complete(s.completions(), s.succeeded, active) {
                s.finished = Some(condition("SuccessCriteriaMet", "CompletionsReached", "Reached expected number of succeeded pods", now));
            } else if managed {
                suspend_changed = self.update_suspended(s, now);
            }
        }
        (active, suspend_changed, manage_error)
    }

    /// Claims the Job's pods and counts them.
    async fn gather(&self, shared: &Arc<Job>, key: &ObjectKey) -> Result<Sync> {
        let job = shared.as_ref().clone();
        let selector = LabelSelector::from_k8s_opt(job.spec.as_ref().and_then(|s| s.selector.as_ref()))
            .map_err(|e| Error::Failed(format!("invalid selector of job {key}: {e}")))?;
        let candidates = self.pods.in_namespace(key.namespace.as_deref().unwrap_or_default());
        let owner = new_controller_ref(&job);
        let deleting = job.metadata.deletion_timestamp.is_some();
        let mut claimed = claim(&self.client, &owner, deleting, &selector, candidates).await?;
        claimed.sort_by_key(|p| (pods::completion_index(p).unwrap_or(i32::MAX), p.metadata.creation_timestamp.as_ref().map(|t| t.0)));
        let active: Vec<Arc<Pod>> = claimed.iter().filter(|p| crate::pods::is_active(p)).cloned().collect();
        let uncounted = job.status.as_ref().and_then(|s| s.uncounted_terminated_pods.clone()).unwrap_or_default();
        let set = |v: Option<Vec<String>>| v.unwrap_or_default().into_iter().collect::<HashSet<_>>();
        let expected_removals = self.finalizer_removals.lock().unwrap_or_else(|e| e.into_inner()).get(key).cloned().unwrap_or_default();
        let old_record = self.backoff.lock().unwrap_or_else(|e| e.into_inner()).get(key).copied().unwrap_or_default();
        let mut s = Sync {
            ready: active.iter().filter(|p| crate::pods::is_ready(p)).count() as i32,
            terminating: claimed.iter().filter(|p| pods::is_terminating(p)).count() as i32,
            job,
            key: key.clone(),
            pods: claimed,
            active,
            expected_removals,
            uncounted_succeeded: set(uncounted.succeeded),
            uncounted_failed: set(uncounted.failed),
            succeeded: 0,
            failed: 0,
            prev_indexes: Indexes::default(),
            indexes: Indexes::default(),
            finished: None,
            new_record: Record::default(),
            requeue: RESYNC_PERIOD,
        };
        let now = crate::clock::now();
        let new_succeeded: Vec<jiff::Timestamp> =
            s.uncounted_pods(&s.uncounted_succeeded, pods::succeeded).iter().map(|p| backoff::finished_time(p, now)).collect();
        let policy = s.job.spec.as_ref().and_then(|sp| sp.pod_failure_policy.as_ref());
        let failed_pods = s.uncounted_pods(&s.uncounted_failed, |p| pods::is_failed(p, &s.job));
        let new_failed: Vec<jiff::Timestamp> = failed_pods.iter().map(|p| backoff::finished_time(p, now)).collect();
        let counted_failed = failed_pods.iter().filter(|p| failurepolicy::match_policy(policy, p).count).count();
        let st = s.job.status.clone().unwrap_or_default();
        s.succeeded = st.succeeded.unwrap_or(0) + new_succeeded.len() as i32 + s.uncounted_succeeded.len() as i32;
        s.failed = st.failed.unwrap_or(0) + counted_failed as i32 + s.uncounted_failed.len() as i32;
        s.new_record = old_record.with(&new_succeeded, &new_failed);
        Ok(s)
    }

    /// The interim failure condition: backoffLimit, activeDeadlineSeconds (upstream order).
    fn decide_failure(&self, s: &mut Sync, now: jiff::Timestamp) {
        s.finished = has_condition(&s.job, "SuccessCriteriaMet");
        if s.finished.is_some() {
            return;
        }
        if let Some(target) = has_condition(&s.job, "FailureTarget") {
            s.finished = Some(condition("Failed", target.reason.as_deref().unwrap_or(""), target.message.as_deref().unwrap_or(""), now));
            return;
        }
        let spec = s.job.spec.clone().unwrap_or_default();
        let policy = spec.pod_failure_policy.as_ref();
        let fail_job = s.pods.iter().filter(|p| pods::is_failed(p, &s.job)).find_map(|p| failurepolicy::match_policy(policy, p).fail_job);
        if let Some(message) = fail_job {
            s.finished = Some(condition("FailureTarget", "PodFailurePolicy", &message, now));
            return;
        }
        let limit = spec.backoff_limit.unwrap_or(6);
        if s.failed > limit || past_backoff_limit_on_failure(&spec, &s.pods, limit) {
            s.finished = Some(condition("FailureTarget", "BackoffLimitExceeded", "Job has reached the specified backoff limit", now));
            return;
        }
        let start = s.job.status.as_ref().and_then(|st| st.start_time.as_ref()).map(|t| t.0);
        if let (Some(deadline), Some(start), false) = (spec.active_deadline_seconds, start, s.suspended()) {
            let elapsed = now.duration_since(start);
            let allowed = jiff::SignedDuration::from_secs(deadline);
            if elapsed >= allowed {
                s.finished = Some(condition("FailureTarget", "DeadlineExceeded", "Job was active longer than specified deadline", now));
            } else {
                let left = Duration::try_from(allowed - elapsed).unwrap_or(Duration::ZERO);
                s.requeue = s.requeue.min(left);
            }
        }
    }

    /// Suspended / resumed condition and events; resuming restarts the deadline clock.
    fn update_suspended(&self, s: &mut Sync, now: jiff::Timestamp) -> bool {
        let suspended = s.suspended();
        let conds = s.status().conditions.get_or_insert_with(Vec::new);
        let changed = if suspended {
            ensure_condition(conds, "Suspended", "True", "JobSuspended", "Job suspended", now)
        } else {
            ensure_condition(conds, "Suspended", "False", "JobResumed", "Job resumed", now)
        };
        if conds.is_empty() {
            s.status().conditions = None;
        }
        if changed {
            if suspended {
                self.recorder.event(&s.job, NORMAL, "Suspended", "Job suspended".into());
            } else {
                self.recorder.event(&s.job, NORMAL, "Resumed", "Job resumed".into());
                s.status().start_time = Some(Time(now));
            }
        }
        changed
    }

    /// Upstream `manageJob`: deletes surplus pods or creates missing ones (after the
    /// failure back-off). Returns the active count afterwards.
    async fn manage(&self, s: &mut Sync, now: jiff::Timestamp) -> std::result::Result<i32, (i32, Error)> {
        let mut active = s.active.len() as i32;
        let spec = s.job.spec.clone().unwrap_or_default();
        if s.suspended() {
            let victims: Vec<Arc<Pod>> = s.active.clone();
            let (ready, removed, err) = self.delete_job_pods(s, &victims).await;
            s.ready -= ready;
            s.terminating += removed;
            active -= removed;
            return err.map_or(Ok(active), |e| Err((active, e)));
        }
        let want = want_active(s.completions(), spec.parallelism.unwrap_or(1), s.succeeded, active);
        let victims = pods_for_removal(s, (active - want).max(0) as usize, now);
        if !victims.is_empty() {
            let (ready, removed, err) = self.delete_job_pods(s, &victims).await;
            s.ready -= ready;
            s.terminating += removed;
            active -= removed;
            return err.map_or(Ok(active), |e| Err((active, e)));
        }
        let replacing = if pods::only_replace_failed(&s.job) { s.terminating } else { 0 };
        let diff = want - replacing - active;
        if diff <= 0 {
            return Ok(active);
        }
        let wait = s.new_record.remaining(now, self.config.pod_failure_backoff, self.config.max_pod_failure_backoff);
        if !wait.is_zero() {
            s.requeue = s.requeue.min(wait);
            return Ok(active);
        }
        let mut count = (diff as usize).min(MAX_POD_CREATE_DELETE_PER_SYNC);
        let mut indexes: Vec<Option<i32>> = vec![None; count];
        if s.indexed() {
            let completions = s.completions().unwrap_or(0);
            let busy: BTreeSet<i32> = s.active.iter().filter_map(|p| pods::valid_index(p, completions)).collect();
            indexes = s.indexes.first_pending(&busy, count, completions).into_iter().map(Some).collect();
            count = indexes.len();
        }
        self.expectations.expect_creations(&s.key, count);
        let api: Api<Pod> = Api::namespaced(self.client.clone(), s.key.namespace.as_deref().unwrap_or_default());
        let owner = new_controller_ref(&s.job);
        let job = &s.job;
        let (created, error) = slow_start_batch(count, |i| {
            let pod = pods::new_pod(job, &spec.template, owner.clone(), indexes[i]);
            let api = &api;
            async move {
                match api.create(&PostParams::default(), &pod).await {
                    Ok(p) => {
                        let name = p.metadata.name.unwrap_or_default();
                        self.recorder.event(job, NORMAL, "SuccessfulCreate", format!("Created pod: {name}"));
                        Ok(())
                    }
                    Err(e) => {
                        self.recorder.event(job, WARNING, "FailedCreate", format!("Error creating: {}", message(&e)));
                        Err(Error::api("create", format!("pod for job {}", name_of(&job.metadata)), e))
                    }
                }
            }
        })
        .await;
        for _ in created..count {
            self.expectations.creation_observed(&s.key);
        }
        active += created as i32;
        error.map_or(Ok(active), |e| Err((active, e)))
    }

    async fn delete_pod(&self, job: &Job, pod: &Pod) -> std::result::Result<(), kube::Error> {
        let api: Api<Pod> = Api::namespaced(self.client.clone(), pod.metadata.namespace.as_deref().unwrap_or_default());
        let name = pod.metadata.name.clone().unwrap_or_default();
        match api.delete(&name, &DeleteParams::default()).await {
            Ok(_) => {
                self.recorder.event(job, NORMAL, "SuccessfulDelete", format!("Deleted pod: {name}"));
                Ok(())
            }
            Err(e) => {
                if !is_not_found(&e) {
                    self.recorder.event(job, WARNING, "FailedDelete", format!("Error deleting: {}", message(&e)));
                }
                Err(e)
            }
        }
    }

    /// Upstream `deleteJobPods`: surplus pods lose the finalizer first (they are not
    /// counted), then are deleted. Returns (ready deleted, deleted, first error).
    async fn delete_job_pods(&self, s: &Sync, victims: &[Arc<Pod>]) -> (i32, i32, Option<Error>) {
        self.expectations.expect_deletions(&s.key, victims.iter().map(|p| name_of(&p.metadata)));
        let results = join_all(victims.iter().map(|p| async move {
            let r = match self.remove_finalizer(p).await {
                Ok(()) => self.delete_pod(&s.job, p).await.map_err(|e| (is_not_found(&e), Error::api("delete", name_of(&p.metadata), e))),
                Err(e) => Err((false, e)),
            };
            if r.is_err() {
                self.expectations.deletion_observed(&s.key, &name_of(&p.metadata));
            }
            (crate::pods::is_ready(p), r)
        }))
        .await;
        tally(results)
    }

    /// Upstream `deleteActivePods` (the Job failed or met its success criteria): deletes
    /// keeping the finalizers, which the status tracking removes.
    async fn delete_active(&self, s: &Sync) -> (i32, i32, Option<Error>) {
        let results = join_all(s.active.iter().map(|p| async move {
            let r = self.delete_pod(&s.job, p).await.map_err(|e| (is_not_found(&e), Error::api("delete", name_of(&p.metadata), e)));
            (crate::pods::is_ready(p), r)
        }))
        .await;
        tally(results)
    }

}

/// Indexed Jobs: the succeeded indexes (recorded ones and those of succeeded pods), and a
/// success policy met by them.
fn count_indexes(s: &mut Sync, now: jiff::Timestamp) {
    let completions = s.completions().unwrap_or(0);
    let prev = Indexes::parse(s.job.status.as_ref().and_then(|st| st.completed_indexes.as_deref()).unwrap_or(""), completions);
    let mut all = prev.clone();
    // Upstream `calculateSucceededIndexes`: pods not counted yet (with the finalizer).
    for p in s.pods.iter().filter(|p| pods::succeeded(p) && pods::has_finalizer(p)) {
        if let Some(ix) = pods::valid_index(p, completions) {
            all.insert(ix);
        }
    }
    s.succeeded = all.total() as i32;
    if s.finished.is_none() {
        let policy = s.job.spec.as_ref().and_then(|sp| sp.success_policy.as_ref());
        if let Some(msg) = indexes::match_success_policy(policy, completions, &all) {
            s.finished = Some(condition("SuccessCriteriaMet", "SuccessPolicy", &msg, now));
        }
    }
    (s.prev_indexes, s.indexes) = (prev, all);
}

/// One pod deletion: whether the pod was ready, and the error (with whether it was "not
/// found", which counts as deleted).
type Deletion = (bool, std::result::Result<(), (bool, Error)>);

/// Sums the results of pod deletions: (ready deleted, deleted, first error); a pod that was
/// already gone counts as deleted.
fn tally(results: Vec<Deletion>) -> (i32, i32, Option<Error>) {
    let (mut ready, mut deleted, mut first) = (0, 0, None);
    for (was_ready, r) in results {
        match r {
            Ok(()) | Err((true, _)) => {
                deleted += 1;
                ready += was_ready as i32;
            }
            Err((false, e)) => {
                first.get_or_insert(e);
            }
        }
    }
    (ready, deleted, first)
}


/// Upstream `pastBackoffLimitOnFailure`: with restartPolicy OnFailure, container restarts of
/// running and pending pods count against the limit.
fn past_backoff_limit_on_failure(spec: &k8s_openapi::api::batch::v1::JobSpec, pods: &[Arc<Pod>], limit: i32) -> bool {
    if spec.template.spec.as_ref().and_then(|s| s.restart_policy.as_deref()) != Some("OnFailure") {
        return false;
    }
    let restarts: i32 = pods
        .iter()
        .filter_map(|p| p.status.as_ref())
        .filter(|st| matches!(st.phase.as_deref(), Some("Running") | Some("Pending")))
        .flat_map(|st| st.container_statuses.iter().flatten().chain(st.init_container_statuses.iter().flatten()))
        .map(|c| c.restart_count)
        .sum();
    if limit == 0 { restarts > 0 } else { restarts >= limit }
}

/// Upstream `activePodsForRemoval`: for Indexed Jobs, pods with a duplicate or invalid index
/// first; then the least advanced pods.
fn pods_for_removal(s: &Sync, at_least: usize, now: jiff::Timestamp) -> Vec<Arc<Pod>> {
    let mut remove: Vec<Arc<Pod>> = Vec::new();
    let mut left: Vec<Arc<Pod>> = Vec::new();
    if s.indexed() {
        let completions = s.completions().unwrap_or(0);
        let mut seen = BTreeSet::new();
        for p in &s.active {
            match pods::valid_index(p, completions) {
                Some(ix) if seen.insert(ix) => left.push(p.clone()),
                _ => remove.push(p.clone()),
            }
        }
    } else {
        left = s.active.clone();
    }
    if remove.len() < at_least {
        let refs: Vec<&Pod> = left.iter().map(|p| p.as_ref()).collect();
        let chosen = crate::pods::pods_to_delete(&refs, &refs, at_least - remove.len(), now);
        let names: HashSet<String> = chosen.iter().map(|p| name_of(&p.metadata)).collect();
        remove.extend(left.iter().filter(|p| names.contains(&name_of(&p.metadata))).cloned());
    }
    remove.truncate(MAX_POD_CREATE_DELETE_PER_SYNC);
    remove
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn active_pods_are_parallelism_capped_by_remaining_completions() {
        assert_eq!(want_active(Some(5), 2, 0, 0), 2);
        assert_eq!(want_active(Some(5), 2, 4, 1), 1);
        assert_eq!(want_active(Some(5), 2, 5, 0), 0);
        assert_eq!(want_active(Some(5), 2, 7, 0), 0);
        assert_eq!(want_active(None, 3, 0, 1), 3, "work queue: parallelism until a success");
        assert_eq!(want_active(None, 3, 1, 2), 2, "then whatever runs keeps running");
        assert!(complete(Some(5), 5, 0));
        assert!(!complete(Some(5), 5, 1));
        assert!(!complete(Some(5), 4, 0));
        assert!(complete(None, 1, 0));
        assert!(!complete(None, 0, 0));
        assert!(complete(Some(0), 0, 0), "zero completions: done at once");
    }

    #[test]
    fn conditions_are_added_only_as_true_and_updated_in_place() {
        let now = jiff::Timestamp::UNIX_EPOCH;
        let mut conds = Vec::new();
        assert!(!ensure_condition(&mut conds, "Suspended", "False", "JobResumed", "Job resumed", now));
        assert!(ensure_condition(&mut conds, "Suspended", "True", "JobSuspended", "Job suspended", now));
        assert!(!ensure_condition(&mut conds, "Suspended", "True", "JobSuspended", "Job suspended", now));
        assert!(ensure_condition(&mut conds, "Suspended", "False", "JobResumed", "Job resumed", now));
        assert_eq!((conds.len(), conds[0].status.as_str()), (1, "False"));
    }
}
