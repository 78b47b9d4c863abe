//! Finished-pod accounting with finalizers (upstream `trackJobStatusAndRemoveFinalizers` and
//! its helpers): a finished pod's UID goes to `status.uncountedTerminatedPods`, then its
//! `batch.kubernetes.io/job-tracking` finalizer is removed, then it moves to the counters; the
//! final condition is written once nothing is uncounted and no pod terminates.

use std::collections::HashSet;
use std::sync::Arc;

use k8s_openapi::api::batch::v1::{Job, JobStatus, UncountedTerminatedPods};
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use futures::future::join_all;
use kube::api::{Api, PostParams};

use super::{condition, ensure_condition, failurepolicy, has_condition, nonzero, pods, Context, Sync, MAX_UNCOUNTED_PODS};
use crate::error::{Error, Result};
use crate::events::{NORMAL, WARNING};

impl Context {
    /// Upstream `trackJobStatusAndRemoveFinalizers`: records finished pods as uncounted,
    /// removes their finalizers, moves them to the counters, and finishes the Job.
    pub(super) async fn track_status(&self, s: &mut Sync, mut needs_flush: bool, now: jiff::Timestamp) -> Result<()> {
        let completions = s.completions().unwrap_or(0);
        let mut with_finalizer: HashSet<String> = s
            .pods
            .iter()
            .filter(|p| pods::has_finalizer(p))
            .filter_map(|p| p.metadata.uid.clone())
            .filter(|uid| !s.expected_removals.contains(uid))
            .collect();
        needs_flush |= clean_uncounted(s.status(), &with_finalizer);
        let deleting = s.job.metadata.deletion_timestamp.is_some();
        let failing = s.finished.as_ref().is_some_and(|c| c.type_ != "SuccessCriteriaMet");
        let mut to_remove: Vec<Arc<Pod>> = Vec::new();
        let mut new_indexes: Vec<i32> = Vec::new();
        let mut uncounted = s.job.status.as_ref().and_then(|st| st.uncounted_terminated_pods.clone()).unwrap_or_default();
        let (mut us, mut uf) = (uncounted.succeeded.take().unwrap_or_default(), uncounted.failed.take().unwrap_or_default());
        let mut reached_max = false;
        for pod in &s.pods {
            let uid = pod.metadata.uid.clone().unwrap_or_default();
            if !pods::has_finalizer(pod) || s.expected_removals.contains(&uid) {
                continue;
            }
            let failed = pods::is_failed(pod, &s.job);
            if !(deleting || s.finished.is_some() || pods::succeeded(pod) || failed) {
                continue;
            }
            to_remove.push(pod.clone());
            if pods::succeeded(pod) && !s.uncounted_failed.contains(&uid) {
                if s.indexed() {
                    if let Some(ix) = pods::valid_index(pod, completions).filter(|ix| !s.prev_indexes.contains(*ix)) {
                        new_indexes.push(ix);
                        needs_flush = true;
                    }
                } else if !s.uncounted_succeeded.contains(&uid) {
                    us.push(uid);
                    needs_flush = true;
                }
            } else if (failed || failing) && !s.uncounted_failed.contains(&uid) && (!s.indexed() || pods::valid_index(pod, completions).is_some()) {
                let policy = s.job.spec.as_ref().and_then(|sp| sp.pod_failure_policy.as_ref());
                if failurepolicy::match_policy(policy, pod).count {
                    uf.push(uid);
                    needs_flush = true;
                }
            }
            if new_indexes.len() + us.len() + uf.len() >= MAX_UNCOUNTED_PODS {
                reached_max = true;
                break;
            }
        }
        s.status().uncounted_terminated_pods = Some(UncountedTerminatedPods { succeeded: Some(us).filter(|v| !v.is_empty()), failed: Some(uf).filter(|v| !v.is_empty()) });
        if s.indexed() {
            let text = s.indexes.to_string();
            let total = s.indexes.total() as i32;
            let st = s.status();
            if st.completed_indexes.as_deref().unwrap_or("") != text {
                needs_flush = true;
            }
            st.succeeded = nonzero(total);
            st.completed_indexes = Some(text).filter(|t| !t.is_empty());
        }
        if let Some(f) = s.finished.clone() {
            if (f.type_ == "FailureTarget" || f.type_ == "SuccessCriteriaMet") && has_condition(&s.job, &f.type_).is_none() {
                s.status().conditions.get_or_insert_with(Vec::new).push(f.clone());
                needs_flush = true;
            }
            let final_type = match f.type_.as_str() {
                "FailureTarget" => Some("Failed"),
                "SuccessCriteriaMet" => Some("Complete"),
                _ => None,
            };
            if let Some(t) = final_type {
                s.finished = Some(condition(t, f.reason.as_deref().unwrap_or(""), f.message.as_deref().unwrap_or(""), now));
            }
        }
        if needs_flush {
            self.write_status(s).await?;
            needs_flush = false;
        }
        // Remove finalizers of the recorded pods, then count those that lost it.
        let rm_error = self.remove_finalizers(s, &to_remove).await;
        for (pod, ok) in &rm_error.0 {
            if *ok {
                with_finalizer.remove(pod);
            }
        }
        needs_flush |= clean_uncounted(s.status(), &with_finalizer);
        if let Some(e) = rm_error.1 {
            if needs_flush {
                self.write_status(s).await?;
            }
            return Err(e);
        }
        let finished = !reached_max && self.enact_finished(s, now);
        if needs_flush || finished {
            self.write_status(s).await?;
            if finished {
                self.record_finished(s);
            }
        }
        Ok(())
    }

    /// Removes the tracking finalizer from `pods`, recording the expected removals first.
    /// Returns each pod UID with whether its finalizer is gone, and the first error.
    async fn remove_finalizers(&self, s: &Sync, to_remove: &[Arc<Pod>]) -> (Vec<(String, bool)>, Option<Error>) {
        if to_remove.is_empty() {
            return (Vec::new(), None);
        }
        {
            let mut map = self.finalizer_removals.lock().unwrap_or_else(|e| e.into_inner());
            let set = map.entry(s.key.clone()).or_default();
            set.extend(to_remove.iter().filter_map(|p| p.metadata.uid.clone()));
        }
        let results = join_all(to_remove.iter().map(|p| async move {
            let uid = p.metadata.uid.clone().unwrap_or_default();
            match self.remove_finalizer(p).await {
                Ok(()) => ((uid, true), None),
                Err(e) => {
                    self.removal_observed(&s.key, &uid);
                    ((uid, false), Some(e))
                }
            }
        }))
        .await;
        let mut first = None;
        let mut out = Vec::new();
        for (r, e) in results {
            out.push(r);
            if first.is_none() {
                first = e;
            }
        }
        (out, first)
    }

    /// Upstream `enactJobFinished`: the final condition, once nothing is uncounted and no
    /// pod terminates.
    fn enact_finished(&self, s: &mut Sync, now: jiff::Timestamp) -> bool {
        let Some(f) = s.finished.clone() else { return false };
        let u = s.job.status.as_ref().and_then(|st| st.uncounted_terminated_pods.clone()).unwrap_or_default();
        if !u.succeeded.unwrap_or_default().is_empty() || !u.failed.unwrap_or_default().is_empty() || s.terminating > 0 {
            return false;
        }
        let conds = s.status().conditions.get_or_insert_with(Vec::new);
        ensure_condition(conds, &f.type_, "True", f.reason.as_deref().unwrap_or(""), f.message.as_deref().unwrap_or(""), now);
        if f.type_ == "Complete" {
            s.status().completion_time = Some(Time(now));
        }
        true
    }

    fn record_finished(&self, s: &Sync) {
        let Some(f) = &s.finished else { return };
        if f.type_ == "Complete" {
            if s.completions().is_some_and(|c| s.job.status.as_ref().and_then(|st| st.succeeded).unwrap_or(0) > c) {
                self.recorder.event(&s.job, WARNING, "TooManySucceededPods", "Too many succeeded pods running after completion count reached".into());
            }
            self.recorder.event(&s.job, NORMAL, "Completed", "Job completed".into());
        } else {
            self.recorder.event(&s.job, WARNING, f.reason.as_deref().unwrap_or("Failed"), f.message.clone().unwrap_or_default());
        }
    }

    /// Writes the status (with the resourceVersion read, so a stale view conflicts and the
    /// sync is retried from fresh state) and keeps the returned object.
    async fn write_status(&self, s: &mut Sync) -> Result<()> {
        let api: Api<Job> = Api::namespaced(self.client.clone(), s.key.namespace.as_deref().unwrap_or_default());
        let updated = api
            .replace_status(&s.key.name, &PostParams::default(), &s.job)
            .await
            .map_err(|e| Error::api("update status of", format!("job {}", s.key), e))?;
        s.job = updated;
        self.backoff.lock().unwrap_or_else(|e| e.into_inner()).insert(s.key.clone(), s.new_record);
        Ok(())
    }
}

/// Moves uncounted UIDs whose pods lost the finalizer to the counters (upstream
/// `cleanUncountedPodsWithoutFinalizers`). Returns whether anything moved.
fn clean_uncounted(status: &mut JobStatus, with_finalizer: &HashSet<String>) -> bool {
    let mut u = status.uncounted_terminated_pods.clone().unwrap_or_default();
    let mut changed = false;
    let mut keep = |list: &mut Option<Vec<String>>, counter: &mut Option<i32>| {
        let before = list.as_ref().map_or(0, Vec::len);
        let kept: Vec<String> = list.take().unwrap_or_default().into_iter().filter(|uid| with_finalizer.contains(uid)).collect();
        let moved = (before - kept.len()) as i32;
        if moved > 0 {
            changed = true;
            *counter = nonzero(counter.unwrap_or(0) + moved);
        }
        *list = Some(kept).filter(|k| !k.is_empty());
    };
    keep(&mut u.succeeded, &mut status.succeeded);
    keep(&mut u.failed, &mut status.failed);
    status.uncounted_terminated_pods = Some(u);
    changed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counted_pods_move_from_uncounted_to_the_counters() {
        let mut st = JobStatus {
            succeeded: Some(1),
            uncounted_terminated_pods: Some(UncountedTerminatedPods {
                succeeded: Some(vec!["a".into(), "b".into()]),
                failed: Some(vec!["c".into()]),
            }),
            ..Default::default()
        };
        let with: HashSet<String> = ["b".to_string()].into();
        assert!(clean_uncounted(&mut st, &with));
        assert_eq!((st.succeeded, st.failed), (Some(2), Some(1)));
        let u = st.uncounted_terminated_pods.clone().unwrap();
        assert_eq!((u.succeeded, u.failed), (Some(vec!["b".to_string()]), None));
        assert!(!clean_uncounted(&mut st, &with), "nothing left to move");
    }
}
