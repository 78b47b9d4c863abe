//! policy/v1: no defaulters upstream; only the zero status the strategy prints on create.

use k8s_openapi::api::policy::v1::{PodDisruptionBudget, PodDisruptionBudgetStatus};

use super::{or_set, Creating, DefaultsError, Target};

pub(super) fn apply(target: Target<'_>) -> Result<(), DefaultsError> {
    match target.kind {
        "PodDisruptionBudget" => {
            target.with(|pdb: &mut PodDisruptionBudget, Creating(creating)| {
                // Go prints the four non-omitempty counters of the zero status.
                if creating {
                    or_set(&mut pdb.status, PodDisruptionBudgetStatus::default());
                }
            })
        }
        _ => Ok(()),
    }
}
