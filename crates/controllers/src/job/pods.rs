//! Pod facts and pod construction of the Job controller (pure): completion indexes, which
//! pods count as failed, the pods a Job creates.

use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{EnvVar, EnvVarSource, ObjectFieldSelector, Pod, PodTemplateSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;

use crate::replicaset::pod_from_template;

/// Upstream `batch.JobTrackingFinalizer`: a pod keeps it until the Job counted it.
pub const TRACKING_FINALIZER: &str = "batch.kubernetes.io/job-tracking";
/// Upstream `batch.JobCompletionIndexAnnotation` (also the label, `PodIndexLabel`).
pub const COMPLETION_INDEX: &str = "batch.kubernetes.io/job-completion-index";
/// Upstream `completionIndexEnvName`.
pub const COMPLETION_INDEX_ENV: &str = "JOB_COMPLETION_INDEX";
/// Upstream `names.MaxGeneratedNameLength` (63 minus the 5 random characters).
const MAX_GENERATED_NAME_LENGTH: usize = 58;

fn phase(pod: &Pod) -> &str {
    pod.status.as_ref().and_then(|s| s.phase.as_deref()).unwrap_or("")
}

pub fn succeeded(pod: &Pod) -> bool {
    phase(pod) == "Succeeded"
}

pub fn has_finalizer(pod: &Pod) -> bool {
    pod.metadata.finalizers.iter().flatten().any(|f| f == TRACKING_FINALIZER)
}

/// Whether the Job replaces pods only once they failed (`podReplacementPolicy: Failed`, the
/// default with a pod failure policy), not already while they terminate.
pub fn only_replace_failed(job: &Job) -> bool {
    let spec = job.spec.as_ref();
    spec.and_then(|s| s.pod_replacement_policy.as_deref()) == Some("Failed")
        || spec.is_some_and(|s| s.pod_failure_policy.is_some())
}

/// Upstream `isPodFailed`: Failed, or (unless only failed pods are replaced) deleted before
/// it succeeded, so pods that never reach a phase still count.
pub fn is_failed(pod: &Pod, job: &Job) -> bool {
    if phase(pod) == "Failed" {
        return true;
    }
    if only_replace_failed(job) {
        return false;
    }
    pod.metadata.deletion_timestamp.is_some() && !succeeded(pod)
}

/// Terminating and not finished (upstream `CountTerminatingPods`).
pub fn is_terminating(pod: &Pod) -> bool {
    pod.metadata.deletion_timestamp.is_some() && !matches!(phase(pod), "Succeeded" | "Failed")
}

/// The pod's completion index (annotation, else label), if valid.
pub fn completion_index(pod: &Pod) -> Option<i32> {
    let from = |m: &Option<std::collections::BTreeMap<String, String>>| m.as_ref()?.get(COMPLETION_INDEX).cloned();
    let text = from(&pod.metadata.annotations).or_else(|| from(&pod.metadata.labels))?;
    text.parse::<i32>().ok().filter(|i| *i >= 0)
}

/// A valid index below `completions`.
pub fn valid_index(pod: &Pod, completions: i32) -> Option<i32> {
    completion_index(pod).filter(|i| *i < completions)
}

/// Upstream `podGenerateNameWithIndex`: `<job>-<index>-`, the job name cut so the name fits.
pub fn generate_name_with_index(job: &str, index: i32) -> String {
    let suffix = format!("-{index}-");
    let room = MAX_GENERATED_NAME_LENGTH.saturating_sub(suffix.len());
    let base: String = job.chars().take(room).collect();
    format!("{base}{suffix}")
}

/// The pod a Job creates (upstream `manageJob`): the template with the tracking finalizer,
/// and for Indexed Jobs the `JOB_COMPLETION_INDEX` variable from the downward API, the index
/// annotation and label, the hostname `<job>-<index>` and the name `<job>-<index>-xxxxx`.
pub fn new_pod(job: &Job, template: &PodTemplateSpec, controller: OwnerReference, index: Option<i32>) -> Pod {
    let mut template = template.clone();
    let meta = template.metadata.get_or_insert_with(Default::default);
    let finalizers = meta.finalizers.get_or_insert_with(Vec::new);
    if !finalizers.iter().any(|f| f == TRACKING_FINALIZER) {
        finalizers.push(TRACKING_FINALIZER.to_owned());
    }
    let name = job.metadata.name.clone().unwrap_or_default();
    if let Some(ix) = index {
        meta.annotations.get_or_insert_with(Default::default).insert(COMPLETION_INDEX.into(), ix.to_string());
        meta.labels.get_or_insert_with(Default::default).insert(COMPLETION_INDEX.into(), ix.to_string());
        if let Some(spec) = template.spec.as_mut() {
            for c in spec.init_containers.iter_mut().flatten().chain(spec.containers.iter_mut()) {
                let env = c.env.get_or_insert_with(Vec::new);
                if !env.iter().any(|e| e.name == COMPLETION_INDEX_ENV) {
                    env.push(EnvVar {
                        name: COMPLETION_INDEX_ENV.into(),
                        value_from: Some(EnvVarSource {
                            field_ref: Some(ObjectFieldSelector {
                                // PodIndexLabel (GA in 1.32): the variable comes from the label.
                                field_path: format!("metadata.labels['{COMPLETION_INDEX}']"),
                                api_version: None,
                            }),
                            ..Default::default()
                        }),
                        value: None,
                    });
                }
            }
            spec.hostname = Some(format!("{name}-{ix}"));
        }
    }
    let mut pod = pod_from_template(&template, &job.metadata, controller);
    if let Some(ix) = index {
        pod.metadata.generate_name = Some(generate_name_with_index(&name, ix));
    }
    pod
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::batch::v1::JobSpec;
    use k8s_openapi::api::core::v1::{Container, PodSpec, PodStatus};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};

    fn job() -> Job {
        Job {
            metadata: ObjectMeta { name: Some("pi".into()), namespace: Some("ns".into()), uid: Some("u".into()), ..Default::default() },
            spec: Some(JobSpec {
                template: PodTemplateSpec {
                    metadata: Some(ObjectMeta { labels: Some([("app".to_string(), "pi".to_string())].into()), ..Default::default() }),
                    spec: Some(PodSpec { containers: vec![Container { name: "c".into(), ..Default::default() }], ..Default::default() }),
                },
                ..Default::default()
            }),
            status: None,
        }
    }

    #[test]
    fn indexed_pods_get_index_env_hostname_and_name() {
        let j = job();
        let owner = crate::controller::new_controller_ref(&j);
        let p = new_pod(&j, &j.spec.as_ref().unwrap().template, owner.clone(), Some(3));
        assert_eq!(p.metadata.generate_name.as_deref(), Some("pi-3-"));
        assert_eq!(p.metadata.annotations.as_ref().unwrap()[COMPLETION_INDEX], "3");
        assert_eq!(p.metadata.labels.as_ref().unwrap()[COMPLETION_INDEX], "3");
        assert_eq!(p.metadata.labels.as_ref().unwrap()["app"], "pi");
        assert_eq!(p.metadata.finalizers.as_deref(), Some(&[TRACKING_FINALIZER.to_string()][..]));
        let spec = p.spec.as_ref().unwrap();
        assert_eq!(spec.hostname.as_deref(), Some("pi-3"));
        let env = &spec.containers[0].env.as_ref().unwrap()[0];
        assert_eq!(env.name, COMPLETION_INDEX_ENV);
        let path = &env.value_from.as_ref().unwrap().field_ref.as_ref().unwrap().field_path;
        assert_eq!(path, "metadata.labels['batch.kubernetes.io/job-completion-index']");
        assert_eq!(completion_index(&p), Some(3));
        let plain = new_pod(&j, &j.spec.as_ref().unwrap().template, owner, None);
        assert_eq!(plain.metadata.generate_name.as_deref(), Some("pi-"));
        assert!(plain.spec.as_ref().unwrap().containers[0].env.is_none());
        assert_eq!(generate_name_with_index(&"x".repeat(80), 12).len(), 58);
    }

    #[test]
    fn deleted_unfinished_pods_count_as_failed_unless_only_failed_pods_are_replaced() {
        let mut j = job();
        let mut p = Pod::default();
        assert!(!is_failed(&p, &j));
        p.metadata.deletion_timestamp = Some(Time(jiff::Timestamp::UNIX_EPOCH));
        assert!(is_failed(&p, &j) && is_terminating(&p));
        j.spec.as_mut().unwrap().pod_replacement_policy = Some("Failed".into());
        assert!(!is_failed(&p, &j));
        p.status = Some(PodStatus { phase: Some("Failed".into()), ..Default::default() });
        assert!(is_failed(&p, &j) && !is_terminating(&p));
    }
}
