//! The `ttl-after-finished-controller` (upstream `pkg/controller/ttlafterfinished`): deletes a
//! finished Job (`Complete` or `Failed`) `spec.ttlSecondsAfterFinished` seconds after it
//! finished, with background propagation so the garbage collector removes its pods.
//!
//! Before deleting, the Job is read fresh from the API server (not the cache) and checked
//! again, as upstream does, so a TTL that a user just changed is honoured; the delete carries
//! a UID precondition so a re-created Job of the same name is never removed.

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::batch::v1::Job;
use kube::api::{Api, DeleteParams, Preconditions, PropagationPolicy};
use rkube_api::ObjectKey;
use tokio_util::sync::CancellationToken;

use crate::controller::{key_of, run_workers};
use crate::error::{is_conflict, is_not_found, Error, Result};
use crate::informer::{Change, Informer, Informers};
use crate::queue::WorkQueue;

pub struct TtlAfterFinishedController {
    ctx: Arc<Context>,
}

struct Context {
    client: kube::Client,
    jobs: Arc<Informer<Job>>,
    queue: WorkQueue<ObjectKey>,
}

/// When the Job finished: the lastTransitionTime of its True `Complete` or `Failed`
/// condition (upstream `jobFinishTime`).
pub fn finish_time(job: &Job) -> Option<jiff::Timestamp> {
    let conds = job.status.as_ref()?.conditions.as_ref()?;
    conds
        .iter()
        .find(|c| (c.type_ == "Complete" || c.type_ == "Failed") && c.status == "True")
        .and_then(|c| c.last_transition_time.as_ref())
        .map(|t| t.0)
}

/// What to do with a Job at `now` (upstream `needsCleanup` and `processTTL`): nothing
/// (`None`), delete it now (`Some(ZERO)`), or look again after the returned time.
pub fn time_left(job: &Job, now: jiff::Timestamp) -> Option<Duration> {
    let ttl = job.spec.as_ref()?.ttl_seconds_after_finished?;
    if job.metadata.deletion_timestamp.is_some() {
        return None;
    }
    let finished = finish_time(job)?;
    let expire = finished.checked_add(jiff::SignedDuration::from_secs(ttl.max(0) as i64)).ok()?;
    Some(Duration::try_from(expire.duration_since(now)).unwrap_or(Duration::ZERO))
}

impl TtlAfterFinishedController {
    /// Registers the informer handlers (before the informers start).
    pub fn new(informers: &Informers) -> Self {
        let ctx = Arc::new(Context {
            client: informers.client().clone(),
            jobs: informers.get::<Job>(),
            queue: WorkQueue::default(),
        });
        let queue = ctx.queue.clone();
        ctx.jobs.add_handler(move |change| {
            if let Change::Applied { new, .. } = change {
                if new.spec.as_ref().is_some_and(|s| s.ttl_seconds_after_finished.is_some()) && finish_time(new).is_some() {
                    queue.add(key_of(new.as_ref()));
                }
            }
        });
        TtlAfterFinishedController { ctx }
    }

    /// Reconciles until `shutdown`, with `workers` concurrent syncs.
    pub async fn run(self, workers: usize, shutdown: CancellationToken) {
        let ctx = self.ctx;
        let queue = ctx.queue.clone();
        run_workers("ttlafterfinished", queue, workers, shutdown, move |key| {
            let ctx = ctx.clone();
            async move { ctx.sync(&key).await }
        })
        .await;
    }
}

impl Context {
    async fn sync(&self, key: &ObjectKey) -> Result<Option<Duration>> {
        let Some(cached) = self.jobs.get(key.namespace.as_deref(), &key.name) else { return Ok(None) };
        match time_left(&cached, crate::clock::now()) {
            None => return Ok(None),
            Some(left) if !left.is_zero() => return Ok(Some(left)),
            Some(_) => {}
        }
        // The TTL may have been changed since the cache saw the Job: check the live object.
        let api: Api<Job> = Api::namespaced(self.client.clone(), key.namespace.as_deref().unwrap_or_default());
        let fresh = match api.get(&key.name).await {
            Ok(j) => j,
            Err(e) if is_not_found(&e) => return Ok(None),
            Err(e) => return Err(Error::api("get", format!("job {key}"), e)),
        };
        match time_left(&fresh, crate::clock::now()) {
            None => return Ok(None),
            Some(left) if !left.is_zero() => return Ok(Some(left)),
            Some(_) => {}
        }
        let dp = DeleteParams {
            propagation_policy: Some(PropagationPolicy::Background),
            preconditions: Some(Preconditions { uid: fresh.metadata.uid.clone(), resource_version: None }),
            ..Default::default()
        };
        tracing::debug!(object = %key, "deleting finished job after its ttl");
        match api.delete(&key.name, &dp).await {
            Ok(_) => Ok(None),
            Err(e) if is_not_found(&e) || is_conflict(&e) => Ok(None),
            Err(e) => Err(Error::api("delete", format!("job {key}"), e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::batch::v1::{JobCondition, JobSpec, JobStatus};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

    fn job(ttl: Option<i32>, finished_at: Option<i64>, type_: &str) -> Job {
        Job {
            spec: Some(JobSpec { ttl_seconds_after_finished: ttl, ..Default::default() }),
            status: Some(JobStatus {
                conditions: finished_at.map(|s| {
                    vec![JobCondition {
                        type_: type_.into(),
                        status: "True".into(),
                        last_transition_time: Some(Time(jiff::Timestamp::from_second(s).unwrap())),
                        ..Default::default()
                    }]
                }),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn finished_jobs_expire_ttl_seconds_after_their_final_condition() {
        let now = jiff::Timestamp::from_second(1000).unwrap();
        assert_eq!(time_left(&job(None, Some(900), "Complete"), now), None, "no ttl: kept");
        assert_eq!(time_left(&job(Some(10), None, "Complete"), now), None, "not finished");
        assert_eq!(time_left(&job(Some(10), Some(995), "SuccessCriteriaMet"), now), None, "interim condition only");
        assert_eq!(time_left(&job(Some(10), Some(995), "Complete"), now), Some(Duration::from_secs(5)));
        assert_eq!(time_left(&job(Some(10), Some(900), "Failed"), now), Some(Duration::ZERO));
        assert_eq!(time_left(&job(Some(0), Some(1000), "Complete"), now), Some(Duration::ZERO));
        let mut deleting = job(Some(0), Some(900), "Complete");
        deleting.metadata.deletion_timestamp = Some(Time(now));
        assert_eq!(time_left(&deleting, now), None);
    }
}
