//! scheduling.k8s.io/v1 defaults (`pkg/apis/scheduling/v1/defaults.go`).

use k8s_openapi::api::scheduling::v1::PriorityClass;

use super::{or_set_str, DefaultsError, Target};

pub(super) fn apply(target: Target<'_>) -> Result<(), DefaultsError> {
    match target.kind {
        // SetDefaults_PriorityClass: preemptionPolicy PreemptLowerPriority.
        "PriorityClass" => target.with(|pc: &mut PriorityClass, _| {
            or_set_str(&mut pc.preemption_policy, "PreemptLowerPriority");
        }),
        _ => Ok(()),
    }
}
