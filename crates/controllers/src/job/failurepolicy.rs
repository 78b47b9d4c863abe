//! `spec.podFailurePolicy` (upstream `pod_failure_policy.go`): the first rule that matches a
//! failed pod decides whether the failure fails the Job at once (`FailJob`), is not counted
//! against `backoffLimit` (`Ignore`) or is counted (`Count`, and no match). `FailIndex` needs
//! `backoffLimitPerIndex`, which rkube does not implement yet; such rules count.

use k8s_openapi::api::batch::v1::{PodFailurePolicy, PodFailurePolicyOnExitCodesRequirement};
use k8s_openapi::api::core::v1::{ContainerStatus, Pod};

/// The outcome of matching one failed pod.
#[derive(Debug, PartialEq, Eq)]
pub struct Match {
    /// Set for a `FailJob` rule: the Job's failure message.
    pub fail_job: Option<String>,
    /// Whether the failure counts against `backoffLimit`.
    pub count: bool,
}

fn exit_codes_match(code: i32, req: &PodFailurePolicyOnExitCodesRequirement) -> bool {
    match req.operator.as_str() {
        "In" => req.values.contains(&code),
        "NotIn" => !req.values.contains(&code),
        _ => false,
    }
}

/// The first terminated container (regular, then init) with a non-zero exit code the
/// requirement matches (upstream `matchOnExitCodes`).
fn matching_container<'a>(pod: &'a Pod, req: &PodFailurePolicyOnExitCodesRequirement) -> Option<(&'a ContainerStatus, i32)> {
    let status = pod.status.as_ref()?;
    let lists = [status.container_statuses.as_deref(), status.init_container_statuses.as_deref()];
    lists.into_iter().flatten().find_map(|list| {
        list.iter().find_map(|c| {
            let code = c.state.as_ref()?.terminated.as_ref()?.exit_code;
            let named = req.container_name.as_ref().is_none_or(|n| *n == c.name);
            (named && code != 0 && exit_codes_match(code, req)).then_some((c, code))
        })
    })
}

/// Upstream `matchPodFailurePolicy`.
pub fn match_policy(policy: Option<&PodFailurePolicy>, pod: &Pod) -> Match {
    let counted = Match { fail_job: None, count: true };
    let Some(policy) = policy else { return counted };
    let ns = pod.metadata.namespace.as_deref().unwrap_or_default();
    let name = pod.metadata.name.as_deref().unwrap_or_default();
    for (index, rule) in policy.rules.iter().enumerate() {
        let matched: Option<String> = if let Some(req) = &rule.on_exit_codes {
            matching_container(pod, req).map(|(c, code)| {
                format!("Container {} for pod {ns}/{name} failed with exit code {code} matching {} rule at index {index}", c.name, rule.action)
            })
        } else if let Some(patterns) = &rule.on_pod_conditions {
            let conds = pod.status.as_ref().and_then(|s| s.conditions.as_ref());
            conds.into_iter().flatten().find(|c| patterns.iter().any(|p| p.type_ == c.type_ && p.status == c.status)).map(|c| {
                format!("Pod {ns}/{name} has condition {} matching {} rule at index {index}", c.type_, rule.action)
            })
        } else {
            None
        };
        let Some(message) = matched else { continue };
        match rule.action.as_str() {
            "Ignore" => return Match { fail_job: None, count: false },
            "Count" => return counted,
            "FailJob" => return Match { fail_job: Some(message), count: true },
            _ => {} // FailIndex without backoffLimitPerIndex: upstream falls through too
        }
    }
    counted
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::batch::v1::{PodFailurePolicyOnPodConditionsPattern, PodFailurePolicyRule};
    use k8s_openapi::api::core::v1::{ContainerState, ContainerStateTerminated, PodCondition, PodStatus};

    fn failed(code: i32, condition: Option<&str>) -> Pod {
        let mut p = Pod::default();
        p.metadata.name = Some("p".into());
        p.metadata.namespace = Some("ns".into());
        p.status = Some(PodStatus {
            phase: Some("Failed".into()),
            container_statuses: Some(vec![ContainerStatus {
                name: "main".into(),
                state: Some(ContainerState {
                    terminated: Some(ContainerStateTerminated { exit_code: code, ..Default::default() }),
                    ..Default::default()
                }),
                ..Default::default()
            }]),
            conditions: condition.map(|t| vec![PodCondition { type_: t.into(), status: "True".into(), ..Default::default() }]),
            ..Default::default()
        });
        p
    }

    fn policy() -> PodFailurePolicy {
        PodFailurePolicy {
            rules: vec![
                PodFailurePolicyRule {
                    action: "FailJob".into(),
                    on_exit_codes: Some(PodFailurePolicyOnExitCodesRequirement {
                        container_name: Some("main".into()),
                        operator: "In".into(),
                        values: vec![42],
                    }),
                    on_pod_conditions: None,
                },
                PodFailurePolicyRule {
                    action: "Ignore".into(),
                    on_exit_codes: None,
                    on_pod_conditions: Some(vec![PodFailurePolicyOnPodConditionsPattern {
                        type_: "DisruptionTarget".into(),
                        status: "True".into(),
                    }]),
                },
            ],
        }
    }

    #[test]
    fn the_first_matching_rule_decides() {
        let p = policy();
        let m = match_policy(Some(&p), &failed(42, None));
        assert_eq!(m.fail_job.as_deref(), Some("Container main for pod ns/p failed with exit code 42 matching FailJob rule at index 0"));
        assert_eq!(match_policy(Some(&p), &failed(1, Some("DisruptionTarget"))), Match { fail_job: None, count: false });
        assert_eq!(match_policy(Some(&p), &failed(1, None)), Match { fail_job: None, count: true });
        assert_eq!(match_policy(None, &failed(42, None)), Match { fail_job: None, count: true });
    }
}
