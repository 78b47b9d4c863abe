//! The `cronjob-controller` (upstream `pkg/controller/cronjob`, the v2 controller): creates a
//! Job from each CronJob's `jobTemplate` at every scheduled time, named
//! `<cronjob>-<scheduled time in minutes since the epoch>` (the name is the lock that keeps a
//! time from running twice) and annotated `batch.kubernetes.io/cronjob-scheduled-timestamp`.
//!
//! Only the most recent missed time runs (at most `startingDeadlineSeconds` late), following
//! `concurrencyPolicy` (Allow, Forbid: skip while a Job is active, Replace: delete the active
//! Jobs first); `suspend` stops new runs. `status.active` tracks the running Jobs,
//! `lastScheduleTime` and `lastSuccessfulTime` the last run and success, and finished Jobs
//! beyond `successfulJobsHistoryLimit` / `failedJobsHistoryLimit` are deleted oldest first.
//! Pure parts: [`schedule`], [`decide`], [`most_recent`], [`history_to_delete`], [`job_name`].

pub mod schedule;

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::batch::v1::{CronJob, CronJobStatus, Job};
use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use kube::api::{Api, DeleteParams, PostParams, PropagationPolicy};
use rkube_api::ObjectKey;
use tokio_util::sync::CancellationToken;

use crate::controller::{controller_ref, key_of, new_controller_ref, resolve, run_workers, RESYNC_PERIOD};
use crate::error::{is_not_found, message, status_code, Error, Result};
use crate::events::{Recorder, NORMAL, WARNING};
use crate::informer::{Change, Informer, Informers};
use crate::job::is_finished;
use crate::queue::WorkQueue;
use schedule::Schedule;

/// Upstream `batchv1.CronJobScheduledTimestampAnnotation`.
pub const SCHEDULED_TIMESTAMP_ANNOTATION: &str = "batch.kubernetes.io/cronjob-scheduled-timestamp";
/// Upstream `nextScheduleDelta`: wake a little after the scheduled time.
const NEXT_SCHEDULE_DELTA: Duration = Duration::from_millis(100);
/// More missed times than this are reported as `TooManyMissedTimes`.
const MANY_MISSED: usize = 100;

pub struct CronJobController {
    ctx: Arc<Context>,
}

struct Context {
    client: kube::Client,
    cronjobs: Arc<Informer<CronJob>>,
    jobs: Arc<Informer<Job>>,
    recorder: Recorder,
    queue: WorkQueue<ObjectKey>,
}

/// Upstream `getJobName`: `<cronjob>-<minutes since the epoch>`.
pub fn job_name(cronjob: &str, scheduled: jiff::Timestamp) -> String {
    format!("{cronjob}-{}", scheduled.as_second().div_euclid(60))
}

/// The latest scheduled time in `(earliest, now]` and how many there were (upstream
/// `mostRecentScheduleTime`), where `earliest` is the last schedule time or the creation,
/// moved up to `now - startingDeadlineSeconds` when that is later.
pub fn most_recent(sched: &Schedule, earliest: jiff::Timestamp, now: jiff::Timestamp) -> (Option<jiff::Timestamp>, usize) {
    let Some(first) = sched.next(earliest).filter(|t| *t <= now) else { return (None, 0) };
    let mut count = 1;
    let mut t = first;
    while count <= MANY_MISSED {
        match sched.next(t) {
            Some(n) if n <= now => {
                t = n;
                count += 1;
            }
            _ => return (Some(t), count),
        }
    }
    (sched.prev(now), count)
}

/// Start of a Job for ordering the history (upstream `byJobStartTime`: no start time first,
/// then by start time, then by name).
fn start_key(job: &Job) -> (bool, Option<jiff::Timestamp>, String) {
    let start = job.status.as_ref().and_then(|s| s.start_time.as_ref()).map(|t| t.0);
    (start.is_some(), start, job.metadata.name.clone().unwrap_or_default())
}

/// The finished Jobs to delete (upstream `cleanupFinishedJobs`): the oldest successful ones
/// beyond `successful_limit` and the oldest failed ones beyond `failed_limit`.
pub fn history_to_delete(jobs: &[Arc<Job>], successful_limit: Option<i32>, failed_limit: Option<i32>) -> Vec<Arc<Job>> {
    let cond = |j: &Job, t: &str| {
        j.status.as_ref().and_then(|s| s.conditions.as_ref()).is_some_and(|cs| cs.iter().any(|c| c.type_ == t && c.status == "True"))
    };
    let mut out = Vec::new();
    for (type_, limit) in [("Complete", successful_limit), ("Failed", failed_limit)] {
        let Some(limit) = limit else { continue };
        let mut finished: Vec<Arc<Job>> = jobs.iter().filter(|j| cond(j, type_)).cloned().collect();
        finished.sort_by_key(|j| start_key(j));
        let surplus = finished.len().saturating_sub(limit.max(0) as usize);
        out.extend(finished.into_iter().take(surplus));
    }
    out
}

/// The Job for the scheduled time (upstream `getJobFromTemplate2`).
pub fn job_from_template(cj: &CronJob, scheduled: jiff::Timestamp, tz: &jiff::tz::TimeZone) -> Job {
    let template = cj.spec.as_ref().map(|s| s.job_template.clone()).unwrap_or_default();
    let meta = template.metadata.unwrap_or_default();
    let mut annotations = meta.annotations.unwrap_or_default();
    let stamp = scheduled.to_zoned(tz.clone()).strftime("%Y-%m-%dT%H:%M:%S%:z").to_string().replace("+00:00", "Z");
    annotations.insert(SCHEDULED_TIMESTAMP_ANNOTATION.into(), stamp);
    let name = cj.metadata.name.clone().unwrap_or_default();
    Job {
        metadata: ObjectMeta {
            name: Some(job_name(&name, scheduled)),
            namespace: cj.metadata.namespace.clone(),
            labels: meta.labels,
            annotations: Some(annotations),
            owner_references: Some(vec![new_controller_ref(cj)]),
            ..Default::default()
        },
        spec: template.spec,
        status: None,
    }
}

/// What a CronJob does at `now` (the pure part of upstream `syncCronJob`).
#[derive(Debug, PartialEq, Eq)]
pub enum Decision {
    /// Nothing due, or the due time already started.
    Wait,
    /// The due time is more than `startingDeadlineSeconds` old.
    Missed(jiff::Timestamp),
    /// `concurrencyPolicy: Forbid` and a Job still runs.
    Forbidden,
    /// Start the Job of `at`, deleting the active Jobs first when `replace`.
    Start { at: jiff::Timestamp, replace: bool },
}

/// Decides for a CronJob that is neither suspended nor deleted, with its Jobs `active`.
/// Also returns how many times were missed (more than [`MANY_MISSED`] is worth an event).
pub fn decide(cj: &CronJob, sched: &Schedule, active: &[ObjectReference], now: jiff::Timestamp) -> (Decision, usize) {
    let spec = cj.spec.clone().unwrap_or_default();
    let created = cj.metadata.creation_timestamp.as_ref().map(|t| t.0).unwrap_or(now);
    let last = cj.status.as_ref().and_then(|s| s.last_schedule_time.as_ref()).map(|t| t.0);
    let mut earliest = last.unwrap_or(created);
    if let Some(deadline) = spec.starting_deadline_seconds {
        earliest = earliest.max(now - jiff::SignedDuration::from_secs(deadline));
    }
    let (scheduled, missed) = most_recent(sched, earliest, now);
    let Some(at) = scheduled else { return (Decision::Wait, missed) };
    if spec.starting_deadline_seconds.is_some_and(|d| at + jiff::SignedDuration::from_secs(d) < now) {
        return (Decision::Missed(at), missed);
    }
    let name = job_name(cj.metadata.name.as_deref().unwrap_or_default(), at);
    if active.iter().any(|r| r.name.as_deref() == Some(&name)) || last == Some(at) {
        return (Decision::Wait, missed);
    }
    let decision = match spec.concurrency_policy.as_deref().unwrap_or("Allow") {
        "Forbid" if !active.is_empty() => Decision::Forbidden,
        "Replace" => Decision::Start { at, replace: !active.is_empty() },
        _ => Decision::Start { at, replace: false },
    };
    (decision, missed)
}

fn job_ref(job: &Job) -> ObjectReference {
    ObjectReference {
        api_version: Some("batch/v1".into()),
        kind: Some("Job".into()),
        name: job.metadata.name.clone(),
        namespace: job.metadata.namespace.clone(),
        uid: job.metadata.uid.clone(),
        resource_version: job.metadata.resource_version.clone(),
        ..Default::default()
    }
}

fn rfc1123z(t: jiff::Timestamp) -> String {
    t.strftime("%a, %d %b %Y %H:%M:%S +0000").to_string()
}

impl CronJobController {
    /// Registers the informer handlers (before the informers start).
    pub fn new(informers: &Informers) -> Self {
        let ctx = Arc::new(Context {
            client: informers.client().clone(),
            cronjobs: informers.get::<CronJob>(),
            jobs: informers.get::<Job>(),
            recorder: Recorder::new(informers.client().clone(), "cronjob-controller"),
            queue: WorkQueue::default(),
        });
        let queue = ctx.queue.clone();
        ctx.cronjobs.add_handler(move |change| match change {
            Change::Applied { new, .. } => queue.add(key_of(new.as_ref())),
            Change::Deleted(cj) => queue.add(key_of(cj.as_ref())),
        });
        let weak = Arc::downgrade(&ctx);
        ctx.jobs.add_handler(move |change| {
            let Some(ctx) = weak.upgrade() else { return };
            let job = match change {
                Change::Applied { new, .. } => new,
                Change::Deleted(j) => j,
            };
            if let Some(cj) = ctx.owner_of(job) {
                ctx.queue.add(key_of(cj.as_ref()));
            }
        });
        CronJobController { ctx }
    }

    /// Reconciles until `shutdown`, with `workers` concurrent syncs.
    pub async fn run(self, workers: usize, shutdown: CancellationToken) {
        let ctx = self.ctx;
        let queue = ctx.queue.clone();
        run_workers("cronjob", queue, workers, shutdown, move |key| {
            let ctx = ctx.clone();
            async move { ctx.sync(&key).await }
        })
        .await;
    }
}

impl Context {
    fn owner_of(&self, job: &Job) -> Option<Arc<CronJob>> {
        let r = controller_ref(&job.metadata)?;
        resolve(r, job.metadata.namespace.as_deref(), |ns, name| self.cronjobs.get(ns, name))
    }

    async fn sync(&self, key: &ObjectKey) -> Result<Option<Duration>> {
        let Some(shared) = self.cronjobs.get(key.namespace.as_deref(), &key.name) else { return Ok(None) };
        let uid = shared.metadata.uid.clone();
        let jobs: Vec<Arc<Job>> = self
            .jobs
            .in_namespace(key.namespace.as_deref().unwrap_or_default())
            .into_iter()
            .filter(|j| controller_ref(&j.metadata).is_some_and(|r| Some(&r.uid) == uid.as_ref() && r.kind == "CronJob"))
            .collect();
        let mut cj = shared.as_ref().clone();
        let old_status = cj.status.clone();
        let result = self.sync_cronjob(&mut cj, &jobs).await;
        let (requeue, error) = match result {
            Ok(r) => (r, None),
            Err(e) => (None, Some(e)),
        };
        self.cleanup_history(&mut cj, &jobs).await;
        if cj.status != old_status {
            let api: Api<CronJob> = Api::namespaced(self.client.clone(), key.namespace.as_deref().unwrap_or_default());
            if let Err(e) = api.replace_status(&key.name, &PostParams::default(), &cj).await {
                if !is_not_found(&e) {
                    return Err(Error::api("update status of", format!("cronjob {key}"), e));
                }
            }
        }
        match error {
            Some(e) => Err(e),
            None => Ok(Some(requeue.unwrap_or(RESYNC_PERIOD).min(RESYNC_PERIOD))),
        }
    }

    /// Upstream `syncCronJob`: updates `cj.status` in place; returns when to look again.
    async fn sync_cronjob(&self, cj: &mut CronJob, jobs: &[Arc<Job>]) -> Result<Option<Duration>> {
        let now = crate::clock::now();
        let status = cj.status.get_or_insert_with(CronJobStatus::default);
        let mut active = status.active.take().unwrap_or_default();
        let children: HashSet<String> = jobs.iter().filter_map(|j| j.metadata.uid.clone()).collect();
        for j in jobs {
            let uid = j.metadata.uid.clone();
            let listed = active.iter().any(|r| r.uid == uid);
            let name = j.metadata.name.clone().unwrap_or_default();
            if !listed && !is_finished(j) {
                // Our cached CronJob may predate the status write that listed this Job: look
                // at the live one first, as upstream does.
                let api: Api<CronJob> = Api::namespaced(self.client.clone(), cj.metadata.namespace.as_deref().unwrap_or_default());
                let name_cj = cj.metadata.name.clone().unwrap_or_default();
                let fresh = api.get(&name_cj).await.map_err(|e| Error::api("get", format!("cronjob {name_cj}"), e))?;
                let fresh_active = fresh.status.and_then(|s| s.active).unwrap_or_default();
                if fresh_active.iter().any(|r| r.uid == uid) {
                    let status = cj.status.get_or_insert_with(Default::default);
                    status.active = Some(active).filter(|a| !a.is_empty());
                    return Err(Error::Failed(format!("cronjob {name_cj}: cache behind the API server; retrying")));
                }
                self.recorder.event(cj, WARNING, "UnexpectedJob", format!("Saw a job that the controller did not create or forgot: {name}"));
            } else if listed && is_finished(j) {
                let cond = if crate::job::is_complete(j) { "Complete" } else { "Failed" };
                active.retain(|r| r.uid != uid);
                self.recorder.event(cj, NORMAL, "SawCompletedJob", format!("Saw completed job: {name}, condition: {cond}"));
            }
            if crate::job::is_complete(j) {
                let done = j.status.as_ref().and_then(|s| s.completion_time.clone());
                let status = cj.status.get_or_insert_with(Default::default);
                if done.is_some() && status.last_successful_time.as_ref().is_none_or(|t| done.as_ref().is_some_and(|d| d.0 > t.0)) {
                    status.last_successful_time = done;
                }
            }
        }
        // Active Jobs the cache does not hold: ask the API server before dropping them.
        let api: Api<Job> = Api::namespaced(self.client.clone(), cj.metadata.namespace.as_deref().unwrap_or_default());
        let mut missing = Vec::new();
        for r in active.iter().filter(|r| r.uid.as_ref().is_none_or(|u| !children.contains(u))) {
            let name = r.name.clone().unwrap_or_default();
            match api.get(&name).await {
                Err(e) if is_not_found(&e) => {
                    self.recorder.event(cj, NORMAL, "MissingJob", format!("Active job went missing: {name}"));
                    missing.push(r.uid.clone());
                }
                Err(e) => {
                    cj.status.get_or_insert_with(Default::default).active = Some(active).filter(|a| !a.is_empty());
                    return Err(Error::api("get", format!("job {name}"), e));
                }
                Ok(_) => {}
            }
        }
        active.retain(|r| !missing.contains(&r.uid));
        let result = self.schedule(cj, &mut active, now).await;
        cj.status.get_or_insert_with(Default::default).active = Some(active).filter(|a| !a.is_empty());
        result
    }

    /// The scheduling half of `syncCronJob`: maybe starts the Job of the most recent time.
    async fn schedule(&self, cj: &mut CronJob, active: &mut Vec<ObjectReference>, now: jiff::Timestamp) -> Result<Option<Duration>> {
        if cj.metadata.deletion_timestamp.is_some() {
            return Ok(None);
        }
        let spec = cj.spec.clone().unwrap_or_default();
        let sched = match Schedule::parse(&spec.schedule, spec.time_zone.as_deref()) {
            Ok(s) => s,
            Err(e) if spec.time_zone.is_some() && e.contains("location") => {
                let tz = spec.time_zone.as_deref().unwrap_or_default();
                self.recorder.event(cj, WARNING, "UnknownTimeZone", format!("invalid timeZone: {tz:?}: {e}"));
                return Ok(None);
            }
            Err(e) => {
                self.recorder.event(cj, WARNING, "UnparseableSchedule", format!("unparseable schedule: {:?} : {e}", spec.schedule));
                return Ok(None);
            }
        };
        if spec.suspend == Some(true) {
            return Ok(None);
        }
        // When to look again: just after the next scheduled time (upstream
        // `nextScheduleTimeDuration`).
        let wake = sched.next(now).map(|n| Duration::try_from(n.duration_since(now)).unwrap_or(Duration::ZERO) + NEXT_SCHEDULE_DELTA);
        let (decision, missed) = decide(cj, &sched, active, now);
        if missed > MANY_MISSED {
            self.recorder.event(cj, WARNING, "TooManyMissedTimes", "too many missed start times. Set or decrease .spec.startingDeadlineSeconds or check clock skew".into());
        }
        let (scheduled, replace) = match decision {
            Decision::Wait => return Ok(wake),
            Decision::Missed(t) => {
                self.recorder.event(cj, WARNING, "MissSchedule", format!("Missed scheduled time to start a job: {}", rfc1123z(t)));
                return Ok(wake);
            }
            Decision::Forbidden => {
                self.recorder.event(cj, NORMAL, "JobAlreadyActive", "Not starting job because prior execution is running and concurrency policy is Forbid".into());
                return Ok(wake);
            }
            Decision::Start { at, replace } => (at, replace),
        };
        let name = job_name(cj.metadata.name.as_deref().unwrap_or_default(), scheduled);
        let api: Api<Job> = Api::namespaced(self.client.clone(), cj.metadata.namespace.as_deref().unwrap_or_default());
        if replace {
            for r in std::mem::take(active) {
                let job_name = r.name.clone().unwrap_or_default();
                self.delete_job(cj, &api, &job_name).await?;
            }
        }
        // The annotation is in spec.timeZone (which the schedule then uses), else UTC even for
        // a `TZ=` schedule, as upstream writes it.
        let zone = if spec.time_zone.is_some() { sched.time_zone().clone() } else { jiff::tz::TimeZone::UTC };
        let job = job_from_template(cj, scheduled, &zone);
        let created = match api.create(&PostParams::default(), &job).await {
            Ok(j) => {
                self.recorder.event(cj, NORMAL, "SuccessfulCreate", format!("Created job {name}"));
                j
            }
            Err(e) if status_code(&e) == Some(409) => {
                // Created before but not recorded (a restart between create and status write).
                let existing = api.get(&name).await.map_err(|e| Error::api("get", format!("job {name}"), e))?;
                let ours = controller_ref(&existing.metadata).is_some_and(|r| Some(&r.uid) == cj.metadata.uid.as_ref());
                if !ours || active.iter().any(|r| r.uid == existing.metadata.uid) {
                    return Ok(wake);
                }
                existing
            }
            Err(e) => {
                self.recorder.event(cj, WARNING, "FailedCreate", format!("Error creating job: {}", message(&e)));
                return Err(Error::api("create", format!("job {name}"), e));
            }
        };
        active.push(job_ref(&created));
        cj.status.get_or_insert_with(Default::default).last_schedule_time = Some(Time(scheduled));
        Ok(wake)
    }

    /// Upstream `deleteJob`: background deletion and a `SuccessfulDelete` event.
    async fn delete_job(&self, cj: &CronJob, api: &Api<Job>, name: &str) -> Result<()> {
        let dp = DeleteParams { propagation_policy: Some(PropagationPolicy::Background), ..Default::default() };
        match api.delete(name, &dp).await {
            Ok(_) => {
                self.recorder.event(cj, NORMAL, "SuccessfulDelete", format!("Deleted job {name}"));
                Ok(())
            }
            Err(e) if is_not_found(&e) => Ok(()),
            Err(e) => {
                self.recorder.event(cj, WARNING, "FailedDelete", format!("Deleted job: {}", message(&e)));
                Err(Error::api("delete", format!("job {name}"), e))
            }
        }
    }

    /// Upstream `cleanupFinishedJobs`: deletes finished Jobs beyond the history limits.
    async fn cleanup_history(&self, cj: &mut CronJob, jobs: &[Arc<Job>]) {
        let spec = cj.spec.clone().unwrap_or_default();
        let victims = history_to_delete(jobs, spec.successful_jobs_history_limit, spec.failed_jobs_history_limit);
        let api: Api<Job> = Api::namespaced(self.client.clone(), cj.metadata.namespace.as_deref().unwrap_or_default());
        for j in victims {
            let name = j.metadata.name.clone().unwrap_or_default();
            if self.delete_job(cj, &api, &name).await.is_ok() {
                if let Some(active) = cj.status.as_mut().and_then(|s| s.active.as_mut()) {
                    active.retain(|r| r.uid != j.metadata.uid);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::batch::v1::{CronJobSpec, JobCondition, JobStatus, JobTemplateSpec};

    fn ts(s: &str) -> jiff::Timestamp {
        s.parse().unwrap()
    }

    #[test]
    fn jobs_are_named_by_their_scheduled_minute() {
        assert_eq!(job_name("hello", ts("2024-01-01T00:00:00Z")), "hello-28401120");
        assert_eq!(job_name("hello", ts("2024-01-01T00:01:00Z")), "hello-28401121");
    }

    #[test]
    fn only_the_most_recent_missed_time_runs() {
        let every_minute = Schedule::parse("* * * * *", None).unwrap();
        let (t, n) = most_recent(&every_minute, ts("2024-01-01T00:00:00Z"), ts("2024-01-01T00:00:59Z"));
        assert_eq!((t, n), (None, 0));
        let (t, n) = most_recent(&every_minute, ts("2024-01-01T00:00:00Z"), ts("2024-01-01T00:03:10Z"));
        assert_eq!((t.unwrap().to_string().as_str(), n), ("2024-01-01T00:03:00Z", 3));
        let (t, n) = most_recent(&every_minute, ts("2024-01-01T00:00:00Z"), ts("2024-01-02T00:00:30Z"));
        assert_eq!(t.unwrap().to_string(), "2024-01-02T00:00:00Z");
        assert!(n > MANY_MISSED);
    }

    fn cronjob(policy: &str, deadline: Option<i64>, last: Option<&str>) -> CronJob {
        CronJob {
            metadata: ObjectMeta { name: Some("c".into()), creation_timestamp: Some(Time(ts("2024-01-01T00:00:00Z"))), ..Default::default() },
            spec: Some(CronJobSpec {
                schedule: "*/5 * * * *".into(),
                concurrency_policy: Some(policy.into()),
                starting_deadline_seconds: deadline,
                ..Default::default()
            }),
            status: Some(CronJobStatus { last_schedule_time: last.map(|l| Time(ts(l))), ..Default::default() }),
        }
    }

    #[test]
    fn decisions_follow_the_concurrency_policy_and_the_starting_deadline() {
        let sched = Schedule::parse("*/5 * * * *", None).unwrap();
        let now = ts("2024-01-01T00:11:00Z");
        let running = vec![ObjectReference { name: Some("c-28401125".into()), ..Default::default() }];
        let at = ts("2024-01-01T00:10:00Z");
        assert_eq!(decide(&cronjob("Allow", None, None), &sched, &[], ts("2024-01-01T00:04:00Z")).0, Decision::Wait, "nothing due yet");
        assert_eq!(decide(&cronjob("Allow", None, None), &sched, &running, now), (Decision::Start { at, replace: false }, 2));
        assert_eq!(decide(&cronjob("Forbid", None, None), &sched, &running, now).0, Decision::Forbidden);
        assert_eq!(decide(&cronjob("Forbid", None, None), &sched, &[], now).0, Decision::Start { at, replace: false });
        assert_eq!(decide(&cronjob("Replace", None, None), &sched, &running, now).0, Decision::Start { at, replace: true });
        assert_eq!(decide(&cronjob("Allow", None, Some("2024-01-01T00:10:00Z")), &sched, &[], now).0, Decision::Wait, "already started");
        // 00:10 is 60 s late: a 30 s starting deadline skips it, a 90 s one does not.
        assert_eq!(decide(&cronjob("Allow", Some(30), None), &sched, &[], now).0, Decision::Wait);
        assert_eq!(decide(&cronjob("Allow", Some(90), None), &sched, &[], now).0, Decision::Start { at, replace: false });
    }

    fn finished(name: &str, start: i64, type_: &str) -> Arc<Job> {
        Arc::new(Job {
            metadata: ObjectMeta { name: Some(name.into()), ..Default::default() },
            spec: None,
            status: Some(JobStatus {
                start_time: Some(Time(jiff::Timestamp::from_second(start).unwrap())),
                conditions: Some(vec![JobCondition { type_: type_.into(), status: "True".into(), ..Default::default() }]),
                ..Default::default()
            }),
        })
    }

    #[test]
    fn history_keeps_the_newest_finished_jobs() {
        let jobs = vec![
            finished("c", 300, "Complete"),
            finished("a", 100, "Complete"),
            finished("b", 200, "Complete"),
            finished("f1", 150, "Failed"),
            finished("f2", 250, "Failed"),
            Arc::new(Job { metadata: ObjectMeta { name: Some("running".into()), ..Default::default() }, ..Default::default() }),
        ];
        let names = |v: Vec<Arc<Job>>| v.iter().map(|j| j.metadata.name.clone().unwrap()).collect::<Vec<_>>();
        assert_eq!(names(history_to_delete(&jobs, Some(1), Some(1))), ["a", "b", "f1"]);
        assert_eq!(names(history_to_delete(&jobs, Some(3), Some(0))), ["f1", "f2"]);
        assert!(history_to_delete(&jobs, None, None).is_empty(), "no limits: keep everything");
    }

    #[test]
    fn jobs_from_the_template_carry_the_scheduled_time_and_owner() {
        let cj = CronJob {
            metadata: ObjectMeta { name: Some("hello".into()), namespace: Some("ns".into()), uid: Some("cu".into()), ..Default::default() },
            spec: Some(CronJobSpec {
                schedule: "* * * * *".into(),
                job_template: JobTemplateSpec {
                    metadata: Some(ObjectMeta { labels: Some([("app".to_string(), "x".to_string())].into()), ..Default::default() }),
                    spec: Some(Default::default()),
                },
                ..Default::default()
            }),
            status: None,
        };
        let j = job_from_template(&cj, ts("2024-01-01T00:01:00Z"), &jiff::tz::TimeZone::UTC);
        assert_eq!(j.metadata.name.as_deref(), Some("hello-28401121"));
        assert_eq!(j.metadata.annotations.as_ref().unwrap()[SCHEDULED_TIMESTAMP_ANNOTATION], "2024-01-01T00:01:00Z");
        assert_eq!(j.metadata.labels.as_ref().unwrap()["app"], "x");
        let owner = &j.metadata.owner_references.as_ref().unwrap()[0];
        assert_eq!((owner.kind.as_str(), owner.uid.as_str(), owner.controller), ("CronJob", "cu", Some(true)));
        let berlin = jiff::tz::TimeZone::get("Europe/Berlin").unwrap();
        let j = job_from_template(&cj, ts("2024-01-01T00:01:00Z"), &berlin);
        assert_eq!(j.metadata.annotations.as_ref().unwrap()[SCHEDULED_TIMESTAMP_ANNOTATION], "2024-01-01T01:01:00+01:00");
    }
}
