//! batch/v1 defaults: `pkg/apis/batch/v1/defaults.go` (v1.33: JobPodReplacementPolicy on,
//! manualSelector defaulted) and the selector the job strategy generates on create.

use std::collections::BTreeMap;

use k8s_openapi::api::batch::v1::{CronJob, CronJobStatus, Job, JobSpec, JobStatus};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;

use super::core::pod_template;
use super::{or_set, or_set_str, Creating, DefaultsError, Target};

/// The labels the job strategy puts on a Job's pod template; the selector matches the first.
const CONTROLLER_UID: &str = "batch.kubernetes.io/controller-uid";
const LEGACY_CONTROLLER_UID: &str = "controller-uid";
const JOB_NAME: &str = "batch.kubernetes.io/job-name";
const LEGACY_JOB_NAME: &str = "job-name";

pub(super) fn apply(target: Target<'_>) -> Result<(), DefaultsError> {
    match target.kind {
        "Job" => target.with(job),
        "CronJob" => target.with(cron_job),
        _ => Ok(()),
    }
}

/// SetDefaults_Job, with the generated selector of the job strategy in between: upstream
/// defaults on decode, generates the selector in PrepareForCreate and defaults again when
/// it decodes the stored object, which is how the generated template labels reach
/// `metadata.labels`. The same order here gives the same object.
fn job(job: &mut Job, Creating(creating): Creating) {
    let spec = job.spec.get_or_insert_with(JobSpec::default);
    job_spec(spec);
    if spec.manual_selector != Some(true) {
        if let Some(uid) = job.metadata.uid.clone().filter(|uid| !uid.is_empty()) {
            let name = job.metadata.name.clone().unwrap_or_default();
            generate_selector(spec, &name, &uid);
        }
    }
    let template_labels = spec
        .template
        .metadata
        .as_ref()
        .and_then(|m| m.labels.clone());
    if let Some(labels) = template_labels {
        if job.metadata.labels.as_ref().is_none_or(BTreeMap::is_empty) {
            job.metadata.labels = Some(labels);
        }
    }
    if creating {
        or_set(&mut job.status, JobStatus::default());
    }
}

/// The JobSpec part of SetDefaults_Job, shared with nothing else: a CronJob's job template
/// gets only the pod-template defaults, as upstream's generated defaulter does.
fn job_spec(spec: &mut JobSpec) {
    if spec.completions.is_none() && spec.parallelism.is_none() {
        spec.completions = Some(1);
    }
    or_set(&mut spec.parallelism, 1);
    if spec.backoff_limit.is_none() {
        let per_index = spec.backoff_limit_per_index.is_some();
        spec.backoff_limit = Some(if per_index { i32::MAX } else { 6 });
    }
    or_set_str(&mut spec.completion_mode, "NonIndexed");
    or_set(&mut spec.suspend, false);
    let rules = spec
        .pod_failure_policy
        .iter_mut()
        .flat_map(|p| p.rules.iter_mut());
    for pattern in rules.flat_map(|rule| rule.on_pod_conditions.iter_mut().flatten()) {
        if pattern.status.is_empty() {
            pattern.status = "True".to_owned();
        }
    }
    if spec.pod_replacement_policy.is_none() {
        let policy = if spec.pod_failure_policy.is_some() {
            "Failed"
        } else {
            "TerminatingOrFailed"
        };
        spec.pod_replacement_policy = Some(policy.to_owned());
    }
    or_set(&mut spec.manual_selector, false);
    pod_template(&mut spec.template);
}

/// The job strategy's generateSelector: template labels with the job's name and uid (legacy
/// and `batch.kubernetes.io/` forms; labels the user set are kept) and a selector on the uid.
fn generate_selector(spec: &mut JobSpec, name: &str, uid: &str) {
    let labels = spec
        .template
        .metadata
        .get_or_insert_with(Default::default)
        .labels
        .get_or_insert_with(BTreeMap::new);
    for key in [LEGACY_JOB_NAME, JOB_NAME] {
        labels
            .entry(key.to_owned())
            .or_insert_with(|| name.to_owned());
    }
    for key in [LEGACY_CONTROLLER_UID, CONTROLLER_UID] {
        labels
            .entry(key.to_owned())
            .or_insert_with(|| uid.to_owned());
    }
    spec.selector
        .get_or_insert_with(LabelSelector::default)
        .match_labels
        .get_or_insert_with(BTreeMap::new)
        .entry(CONTROLLER_UID.to_owned())
        .or_insert_with(|| uid.to_owned());
}

/// SetDefaults_CronJob: Allow, not suspended, keep 3 successful and 1 failed job; the job
/// template's pod spec gets the pod-template defaults.
fn cron_job(cj: &mut CronJob, Creating(creating): Creating) {
    let spec = cj.spec.get_or_insert_with(Default::default);
    or_set_str(&mut spec.concurrency_policy, "Allow");
    or_set(&mut spec.suspend, false);
    or_set(&mut spec.successful_jobs_history_limit, 3);
    or_set(&mut spec.failed_jobs_history_limit, 1);
    // JobTemplateSpec's metadata is a plain Go struct, printed as `metadata: {}`.
    or_set(&mut spec.job_template.metadata, Default::default());
    if let Some(job_spec) = spec.job_template.spec.as_mut() {
        pod_template(&mut job_spec.template);
    }
    if creating {
        or_set(&mut cj.status, CronJobStatus::default());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::batch::v1::{
        PodFailurePolicy, PodFailurePolicyOnPodConditionsPattern, PodFailurePolicyRule,
    };
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    fn named_job(uid: Option<&str>) -> Job {
        Job {
            metadata: ObjectMeta {
                name: Some("pi".into()),
                uid: uid.map(str::to_owned),
                ..Default::default()
            },
            spec: Some(JobSpec::default()),
            ..Default::default()
        }
    }

    #[test]
    fn generated_selector_uses_the_uid_and_labels_reach_the_job() {
        let mut j = named_job(Some("u-1"));
        job(&mut j, Creating(true));
        let spec = j.spec.as_ref().expect("spec");
        let selector = spec
            .selector
            .as_ref()
            .and_then(|s| s.match_labels.clone())
            .expect("selector");
        assert_eq!(
            selector,
            [(CONTROLLER_UID.to_owned(), "u-1".to_owned())].into()
        );
        let labels = j.metadata.labels.clone().expect("job labels");
        assert_eq!(labels[LEGACY_JOB_NAME], "pi");
        assert_eq!(labels[JOB_NAME], "pi");
        assert_eq!(labels[LEGACY_CONTROLLER_UID], "u-1");
        assert_eq!(labels[CONTROLLER_UID], "u-1");
    }

    #[test]
    fn manual_selector_or_missing_uid_generates_nothing() {
        let mut manual = named_job(Some("u-1"));
        manual.spec.as_mut().expect("spec").manual_selector = Some(true);
        job(&mut manual, Creating(true));
        assert_eq!(manual.spec.expect("spec").selector, None);
        let mut no_uid = named_job(None);
        job(&mut no_uid, Creating(true));
        assert_eq!(no_uid.spec.expect("spec").selector, None);
    }

    #[test]
    fn parallel_jobs_keep_completions_unset() {
        let mut spec = JobSpec {
            parallelism: Some(3),
            ..Default::default()
        };
        job_spec(&mut spec);
        assert_eq!((spec.completions, spec.parallelism), (None, Some(3)));
        assert_eq!(
            spec.pod_replacement_policy.as_deref(),
            Some("TerminatingOrFailed")
        );
    }

    #[test]
    fn pod_failure_policy_changes_replacement_policy_and_condition_status() {
        let mut spec = JobSpec {
            backoff_limit_per_index: Some(1),
            pod_failure_policy: Some(PodFailurePolicy {
                rules: vec![PodFailurePolicyRule {
                    action: "Ignore".into(),
                    on_pod_conditions: Some(vec![PodFailurePolicyOnPodConditionsPattern {
                        type_: "DisruptionTarget".into(),
                        ..Default::default()
                    }]),
                    ..Default::default()
                }],
            }),
            ..Default::default()
        };
        job_spec(&mut spec);
        assert_eq!(spec.pod_replacement_policy.as_deref(), Some("Failed"));
        assert_eq!(spec.backoff_limit, Some(i32::MAX));
        let rule = &spec.pod_failure_policy.expect("policy").rules[0];
        assert_eq!(
            rule.on_pod_conditions.as_ref().expect("conditions")[0].status,
            "True"
        );
    }
}
