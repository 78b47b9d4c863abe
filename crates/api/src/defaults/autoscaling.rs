//! autoscaling defaults: v2 (`pkg/apis/autoscaling/v2/defaults.go`, the storage version) and
//! v1 (`pkg/apis/autoscaling/v1/defaults.go`).

use k8s_openapi::api::autoscaling::{v1, v2};

use super::{or_set, Creating, DefaultsError, Target};

/// `autoscaling.DefaultCPUUtilization`.
const DEFAULT_CPU_UTILIZATION: i32 = 80;

pub(super) fn apply(target: Target<'_>) -> Result<(), DefaultsError> {
    match (target.kind, target.version) {
        ("HorizontalPodAutoscaler", "v2") => target.with(hpa_v2),
        ("HorizontalPodAutoscaler", "v1") => target.with(hpa_v1),
        _ => Ok(()),
    }
}

/// SetDefaults_HorizontalPodAutoscaler (v2): minReplicas 1, a CPU utilization target of 80%
/// when no metric is given, and complete scaling rules when a behavior is given.
fn hpa_v2(hpa: &mut v2::HorizontalPodAutoscaler, Creating(creating): Creating) {
    let spec = hpa.spec.get_or_insert_with(Default::default);
    or_set(&mut spec.min_replicas, 1);
    if spec.metrics.as_ref().is_none_or(Vec::is_empty) {
        spec.metrics = Some(vec![v2::MetricSpec {
            type_: "Resource".to_owned(),
            resource: Some(v2::ResourceMetricSource {
                name: "cpu".to_owned(),
                target: v2::MetricTarget {
                    type_: "Utilization".to_owned(),
                    average_utilization: Some(DEFAULT_CPU_UTILIZATION),
                    ..Default::default()
                },
            }),
            ..Default::default()
        }]);
    }
    if let Some(behavior) = spec.behavior.as_mut() {
        behavior.scale_up = Some(scaling_rules(behavior.scale_up.take(), scale_up_defaults()));
        behavior.scale_down = Some(scaling_rules(
            behavior.scale_down.take(),
            scale_down_defaults(),
        ));
    }
    if creating {
        or_set(
            &mut hpa.status,
            v2::HorizontalPodAutoscalerStatus::default(),
        );
    }
}

fn policy(type_: &str, value: i32, period_seconds: i32) -> v2::HPAScalingPolicy {
    v2::HPAScalingPolicy {
        type_: type_.to_owned(),
        value,
        period_seconds,
    }
}

/// Upstream's scale-up rules: no stabilization, the larger of 4 pods or 100% per 15 s.
fn scale_up_defaults() -> v2::HPAScalingRules {
    v2::HPAScalingRules {
        stabilization_window_seconds: Some(0),
        select_policy: Some("Max".to_owned()),
        policies: Some(vec![policy("Pods", 4, 15), policy("Percent", 100, 15)]),
        tolerance: None,
    }
}

/// Upstream's scale-down rules: 100% per 15 s; the stabilization window stays unset (the
/// controller's command-line default applies).
fn scale_down_defaults() -> v2::HPAScalingRules {
    v2::HPAScalingRules {
        stabilization_window_seconds: None,
        select_policy: Some("Max".to_owned()),
        policies: Some(vec![policy("Percent", 100, 15)]),
        tolerance: None,
    }
}

/// copyHPAScalingRules: the given fields over the defaults.
fn scaling_rules(
    given: Option<v2::HPAScalingRules>,
    mut rules: v2::HPAScalingRules,
) -> v2::HPAScalingRules {
    if let Some(given) = given {
        if given.select_policy.is_some() {
            rules.select_policy = given.select_policy;
        }
        if given.stabilization_window_seconds.is_some() {
            rules.stabilization_window_seconds = given.stabilization_window_seconds;
        }
        if given.policies.is_some() {
            rules.policies = given.policies;
        }
        if given.tolerance.is_some() {
            rules.tolerance = given.tolerance;
        }
    }
    rules
}

/// SetDefaults_HorizontalPodAutoscaler (v1): minReplicas 1.
fn hpa_v1(hpa: &mut v1::HorizontalPodAutoscaler, Creating(creating): Creating) {
    let spec = hpa.spec.get_or_insert_with(Default::default);
    or_set(&mut spec.min_replicas, 1);
    if creating {
        or_set(
            &mut hpa.status,
            v1::HorizontalPodAutoscalerStatus::default(),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_partial_behavior_is_completed_from_the_defaults() {
        let mut hpa = v2::HorizontalPodAutoscaler {
            spec: Some(v2::HorizontalPodAutoscalerSpec {
                behavior: Some(v2::HorizontalPodAutoscalerBehavior {
                    scale_down: Some(v2::HPAScalingRules {
                        stabilization_window_seconds: Some(60),
                        ..Default::default()
                    }),
                    scale_up: None,
                }),
                metrics: Some(vec![v2::MetricSpec {
                    type_: "Pods".into(),
                    ..Default::default()
                }]),
                ..Default::default()
            }),
            ..Default::default()
        };
        hpa_v2(&mut hpa, Creating(false));
        let spec = hpa.spec.expect("spec");
        assert_eq!(
            spec.metrics.expect("metrics")[0].type_,
            "Pods",
            "given metrics are kept"
        );
        let behavior = spec.behavior.expect("behavior");
        let down = behavior.scale_down.expect("scale down");
        assert_eq!(down.stabilization_window_seconds, Some(60));
        assert_eq!(down.select_policy.as_deref(), Some("Max"));
        assert_eq!(down.policies, Some(vec![policy("Percent", 100, 15)]));
        assert_eq!(behavior.scale_up, Some(scale_up_defaults()));
    }
}
