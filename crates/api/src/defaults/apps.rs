//! apps/v1 defaults: `pkg/apis/apps/v1/defaults.go` (v1.33, StatefulSetAutoDeletePVC GA) and
//! the fields the apps strategies set on create.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{
    ControllerRevision, DaemonSet, DaemonSetStatus, DaemonSetUpdateStrategy, Deployment,
    DeploymentStatus, DeploymentStrategy, ReplicaSet, ReplicaSetStatus, RollingUpdateDaemonSet,
    RollingUpdateDeployment, RollingUpdateStatefulSetStrategy, StatefulSet,
    StatefulSetPersistentVolumeClaimRetentionPolicy, StatefulSetStatus, StatefulSetUpdateStrategy,
};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::core::{persistent_volume_claim, pod_template};
use super::{or_set, or_set_str, Creating, DefaultsError, Target};

pub(super) fn apply(target: Target<'_>) -> Result<(), DefaultsError> {
    match target.kind {
        "Deployment" => target.with(deployment),
        "DaemonSet" => target.with(daemon_set),
        "StatefulSet" => target.with(stateful_set),
        "ReplicaSet" => target.with(replica_set),
        "ControllerRevision" => target.decode_only::<ControllerRevision>(),
        _ => Ok(()),
    }
}

/// SetDefaults_Deployment: replicas 1, RollingUpdate 25%/25%, revisionHistoryLimit 10,
/// progressDeadlineSeconds 600.
fn deployment(d: &mut Deployment, Creating(creating): Creating) {
    let spec = d.spec.get_or_insert_with(Default::default);
    or_set(&mut spec.replicas, 1);
    let strategy = spec
        .strategy
        .get_or_insert_with(DeploymentStrategy::default);
    or_set_str(&mut strategy.type_, "RollingUpdate");
    if strategy.type_.as_deref() == Some("RollingUpdate") {
        let rolling = strategy
            .rolling_update
            .get_or_insert_with(RollingUpdateDeployment::default);
        or_set(
            &mut rolling.max_unavailable,
            IntOrString::String("25%".to_owned()),
        );
        or_set(
            &mut rolling.max_surge,
            IntOrString::String("25%".to_owned()),
        );
    }
    or_set(&mut spec.revision_history_limit, 10);
    or_set(&mut spec.progress_deadline_seconds, 600);
    pod_template(&mut spec.template);
    if creating {
        or_set(&mut d.status, DeploymentStatus::default());
    }
}

/// SetDefaults_DaemonSet: RollingUpdate with maxUnavailable 1 and maxSurge 0,
/// revisionHistoryLimit 10; on create the strategy's template-generation annotation.
fn daemon_set(ds: &mut DaemonSet, Creating(creating): Creating) {
    let spec = ds.spec.get_or_insert_with(Default::default);
    let strategy = spec
        .update_strategy
        .get_or_insert_with(DaemonSetUpdateStrategy::default);
    or_set_str(&mut strategy.type_, "RollingUpdate");
    if strategy.type_.as_deref() == Some("RollingUpdate") {
        let rolling = strategy
            .rolling_update
            .get_or_insert_with(RollingUpdateDaemonSet::default);
        or_set(&mut rolling.max_unavailable, IntOrString::Int(1));
        or_set(&mut rolling.max_surge, IntOrString::Int(0));
    }
    or_set(&mut spec.revision_history_limit, 10);
    pod_template(&mut spec.template);
    if creating {
        // The daemonset strategy's PrepareForCreate starts templateGeneration at 1, and the
        // v1 conversion mirrors it in this annotation (overwriting what the user sent).
        ds.metadata
            .annotations
            .get_or_insert_with(BTreeMap::new)
            .insert(
                "deprecated.daemonset.template.generation".to_owned(),
                "1".to_owned(),
            );
        or_set(&mut ds.status, DaemonSetStatus::default());
    }
}

/// SetDefaults_StatefulSet: OrderedReady, RollingUpdate with partition 0, PVC retention
/// Retain/Retain, replicas 1, revisionHistoryLimit 10; claim templates get PVC defaults.
fn stateful_set(sts: &mut StatefulSet, Creating(creating): Creating) {
    let spec = sts.spec.get_or_insert_with(Default::default);
    or_set_str(&mut spec.pod_management_policy, "OrderedReady");
    let strategy = spec
        .update_strategy
        .get_or_insert_with(StatefulSetUpdateStrategy::default);
    if strategy.type_.as_deref().is_none_or(str::is_empty) {
        strategy.type_ = Some("RollingUpdate".to_owned());
        or_set(
            &mut strategy.rolling_update,
            RollingUpdateStatefulSetStrategy::default(),
        );
    }
    if strategy.type_.as_deref() == Some("RollingUpdate") {
        if let Some(rolling) = strategy.rolling_update.as_mut() {
            or_set(&mut rolling.partition, 0);
        }
    }
    let retention = spec
        .persistent_volume_claim_retention_policy
        .get_or_insert_with(StatefulSetPersistentVolumeClaimRetentionPolicy::default);
    or_set_str(&mut retention.when_deleted, "Retain");
    or_set_str(&mut retention.when_scaled, "Retain");
    or_set(&mut spec.replicas, 1);
    or_set(&mut spec.revision_history_limit, 10);
    pod_template(&mut spec.template);
    for claim in spec.volume_claim_templates.iter_mut().flatten() {
        persistent_volume_claim(claim);
    }
    if creating {
        // Go prints the non-omitempty counters of the zero status.
        or_set(
            &mut sts.status,
            StatefulSetStatus {
                available_replicas: Some(0),
                ..StatefulSetStatus::default()
            },
        );
    }
}

/// SetDefaults_ReplicaSet: replicas 1.
fn replica_set(rs: &mut ReplicaSet, Creating(creating): Creating) {
    let spec = rs.spec.get_or_insert_with(Default::default);
    or_set(&mut spec.replicas, 1);
    if let Some(template) = spec.template.as_mut() {
        pod_template(template);
    }
    if creating {
        or_set(&mut rs.status, ReplicaSetStatus::default());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::apps::v1::{DeploymentSpec, StatefulSetSpec};

    #[test]
    fn recreate_deployments_get_no_rolling_update_parameters() {
        let mut d = Deployment {
            spec: Some(DeploymentSpec {
                strategy: Some(DeploymentStrategy {
                    type_: Some("Recreate".into()),
                    rolling_update: None,
                }),
                ..Default::default()
            }),
            ..Default::default()
        };
        deployment(&mut d, Creating(false));
        let spec = d.spec.expect("spec");
        assert_eq!(spec.strategy.expect("strategy").rolling_update, None);
        assert_eq!(spec.revision_history_limit, Some(10));
        assert!(d.status.is_none());
    }

    #[test]
    fn explicit_rolling_update_values_are_kept() {
        let mut d = Deployment {
            spec: Some(DeploymentSpec {
                strategy: Some(DeploymentStrategy {
                    type_: None,
                    rolling_update: Some(RollingUpdateDeployment {
                        max_surge: Some(IntOrString::Int(2)),
                        ..Default::default()
                    }),
                }),
                ..Default::default()
            }),
            ..Default::default()
        };
        deployment(&mut d, Creating(true));
        let rolling = d
            .spec
            .expect("spec")
            .strategy
            .expect("strategy")
            .rolling_update
            .expect("ru");
        assert_eq!(rolling.max_surge, Some(IntOrString::Int(2)));
        assert_eq!(
            rolling.max_unavailable,
            Some(IntOrString::String("25%".into()))
        );
    }

    #[test]
    fn on_delete_statefulsets_get_no_partition() {
        let mut sts = StatefulSet {
            spec: Some(StatefulSetSpec {
                update_strategy: Some(StatefulSetUpdateStrategy {
                    type_: Some("OnDelete".into()),
                    rolling_update: None,
                }),
                volume_claim_templates: Some(vec![Default::default()]),
                ..Default::default()
            }),
            ..Default::default()
        };
        stateful_set(&mut sts, Creating(true));
        let spec = sts.spec.expect("spec");
        assert_eq!(spec.update_strategy.expect("strategy").rolling_update, None);
        let claim = &spec.volume_claim_templates.expect("templates")[0];
        assert_eq!(
            claim.status.as_ref().and_then(|s| s.phase.as_deref()),
            Some("Pending")
        );
        assert_eq!(
            claim.spec.as_ref().and_then(|s| s.volume_mode.as_deref()),
            Some("Filesystem")
        );
        let retention = spec
            .persistent_volume_claim_retention_policy
            .expect("retention");
        assert_eq!(retention.when_deleted.as_deref(), Some("Retain"));
        assert_eq!(retention.when_scaled.as_deref(), Some("Retain"));
    }
}
