//! The StatefulSet controller's decisions, pure over cached objects (upstream
//! `pkg/controller/statefulset/{stateful_set_control,stateful_set_utils}.go`): pod identity
//! (`<set>-<ordinal>`, its labels, hostname, subdomain and claims), the ordered plan of
//! creations and deletions for one sync, and the status.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{StatefulSet, StatefulSetStatus};
use k8s_openapi::api::core::v1::{PersistentVolumeClaim, PersistentVolumeClaimVolumeSource, Pod, PodTemplateSpec, Volume};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};

use crate::history::CONTROLLER_REVISION_HASH;
use crate::pods;

/// Label with the pod's name (upstream `apps.StatefulSetPodNameLabel`).
pub const POD_NAME_LABEL: &str = "statefulset.kubernetes.io/pod-name";
/// Label with the pod's ordinal (upstream `apps.PodIndexLabel`).
pub const POD_INDEX_LABEL: &str = "apps.kubernetes.io/pod-index";

/// The ordinal of a pod named `<set>-<ordinal>` (upstream `getParentNameAndOrdinal`, which
/// matches `^(.*)-([0-9]+)$`), if it belongs to `set`.
pub fn ordinal_of(set: &str, pod_name: &str) -> Option<i32> {
    let (parent, ord) = pod_name.rsplit_once('-')?;
    if parent != set || ord.is_empty() || !ord.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    ord.parse().ok()
}

/// `<set>-<ordinal>`.
pub fn pod_name(set: &str, ordinal: i32) -> String {
    format!("{set}-{ordinal}")
}

/// `<claim>-<set>-<ordinal>` (upstream `getPersistentVolumeClaimName`).
pub fn claim_name(claim: &str, set: &str, ordinal: i32) -> String {
    format!("{claim}-{set}-{ordinal}")
}

/// `spec.ordinals.start` (0 by default).
pub fn start_ordinal(set: &StatefulSet) -> i32 {
    set.spec.as_ref().and_then(|s| s.ordinals.as_ref()).and_then(|o| o.start).unwrap_or(0).max(0)
}

pub fn replicas(set: &StatefulSet) -> i32 {
    set.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1).max(0)
}

/// The claims of one ordinal, from the volumeClaimTemplates (upstream
/// `getPersistentVolumeClaims`): named `<claim>-<set>-<ordinal>`, labelled with the
/// template's labels and the set's matchLabels; `owner` (for whenDeleted: Delete) as owner.
pub fn claims_for(set: &StatefulSet, ordinal: i32, owner: Option<&OwnerReference>) -> Vec<PersistentVolumeClaim> {
    let name = set.metadata.name.as_deref().unwrap_or_default();
    let spec = set.spec.clone().unwrap_or_default();
    let match_labels = spec.selector.match_labels.clone().unwrap_or_default();
    spec.volume_claim_templates
        .unwrap_or_default()
        .into_iter()
        .map(|template| {
            let claim = template.metadata.name.clone().unwrap_or_default();
            let mut labels = template.metadata.labels.clone().unwrap_or_default();
            labels.extend(match_labels.clone());
            PersistentVolumeClaim {
                metadata: ObjectMeta {
                    name: Some(claim_name(&claim, name, ordinal)),
                    namespace: set.metadata.namespace.clone(),
                    labels: Some(labels),
                    annotations: template.metadata.annotations.clone(),
                    owner_references: owner.map(|o| vec![o.clone()]),
                    ..Default::default()
                },
                spec: template.spec.clone(),
                status: None,
            }
        })
        .collect()
}

/// The pod of one ordinal from a template (upstream `newStatefulSetPod` +
/// `updateIdentity` + `updateStorage` + `setPodRevision`).
pub fn new_pod(set: &StatefulSet, template: &PodTemplateSpec, ordinal: i32, revision: &str, controller: OwnerReference) -> Pod {
    let set_name = set.metadata.name.clone().unwrap_or_default();
    let name = pod_name(&set_name, ordinal);
    let mut pod = crate::replicaset::pod_from_template(template, &set.metadata, controller);
    pod.metadata.generate_name = None;
    pod.metadata.name = Some(name.clone());
    let labels = pod.metadata.labels.get_or_insert_with(Default::default);
    labels.insert(POD_NAME_LABEL.into(), name.clone());
    labels.insert(POD_INDEX_LABEL.into(), ordinal.to_string());
    labels.insert(CONTROLLER_REVISION_HASH.into(), revision.into());
    let spec = pod.spec.get_or_insert_with(Default::default);
    spec.hostname = Some(name);
    let service = set.spec.as_ref().and_then(|s| s.service_name.clone()).unwrap_or_default();
    spec.subdomain = (!service.is_empty()).then_some(service);
    let templates = set.spec.as_ref().and_then(|s| s.volume_claim_templates.clone()).unwrap_or_default();
    if !templates.is_empty() {
        let volumes = spec.volumes.get_or_insert_with(Vec::new);
        for t in templates {
            let claim = t.metadata.name.clone().unwrap_or_default();
            volumes.retain(|v| v.name != claim);
            volumes.push(Volume {
                name: claim.clone(),
                persistent_volume_claim: Some(PersistentVolumeClaimVolumeSource { claim_name: claim_name(&claim, &set_name, ordinal), read_only: None }),
                ..Default::default()
            });
        }
    }
    pod
}

/// What the plan needs to know about one existing pod.
#[derive(Debug, Clone)]
pub struct PodView {
    pub name: String,
    pub uid: String,
    pub revision: String,
    pub terminating: bool,
    pub finished: bool,
    pub running_ready: bool,
}

impl PodView {
    pub fn of(pod: &Pod) -> PodView {
        let phase = pod.status.as_ref().and_then(|s| s.phase.as_deref()).unwrap_or_default();
        PodView {
            name: pod.metadata.name.clone().unwrap_or_default(),
            uid: pod.metadata.uid.clone().unwrap_or_default(),
            revision: pod.metadata.labels.as_ref().and_then(|l| l.get(CONTROLLER_REVISION_HASH)).cloned().unwrap_or_default(),
            terminating: pods::is_terminating(pod),
            finished: matches!(phase, "Succeeded" | "Failed"),
            running_ready: phase == "Running" && pods::is_ready(pod),
        }
    }

    fn healthy(&self) -> bool {
        self.running_ready && !self.terminating
    }
}

/// One step of a sync.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Create the pod (and its claims) of this ordinal at this revision.
    Create { ordinal: i32, revision: String },
    /// Delete this pod (name, uid).
    Delete { name: String, uid: String },
}

/// A plain (non-controller) owner reference, as the StatefulSet controller puts on claims.
pub fn owner_ref(api_version: &str, kind: &str, meta: &ObjectMeta) -> OwnerReference {
    OwnerReference {
        api_version: api_version.into(),
        kind: kind.into(),
        name: meta.name.clone().unwrap_or_default(),
        uid: meta.uid.clone().unwrap_or_default(),
        controller: None,
        block_owner_deletion: None,
    }
}

/// The owner references a claim should have under the set's
/// persistentVolumeClaimRetentionPolicy (upstream `updateClaimOwnerRefForSetAndPod`):
/// `whenDeleted: Delete` makes the set an owner; `whenScaled: Delete` makes the pod of a
/// scaled-down ordinal the owner, so the garbage collector removes the claim with it.
/// `None` when the references are already right.
pub fn claim_owners(refs: &[OwnerReference], set: &OwnerReference, pod: &OwnerReference, when_deleted: &str, when_scaled: &str, scaled_down: bool) -> Option<Vec<OwnerReference>> {
    let by_set = when_deleted == "Delete" && !(when_scaled == "Delete" && scaled_down);
    let by_pod = when_scaled == "Delete" && scaled_down;
    let mut out: Vec<OwnerReference> = refs.iter().filter(|r| r.uid != set.uid && r.uid != pod.uid).cloned().collect();
    if by_set {
        out.push(set.clone());
    }
    if by_pod {
        out.push(pod.clone());
    }
    let has = |r: &OwnerReference| refs.iter().any(|o| o.uid == r.uid);
    let unchanged = out.len() == refs.len() && out.iter().all(has);
    (!unchanged).then_some(out)
}

/// The inputs of [`plan`].
pub struct PlanInput<'a> {
    pub start: i32,
    pub replicas: i32,
    /// `podManagementPolicy: OrderedReady`.
    pub ordered: bool,
    /// `updateStrategy: RollingUpdate` (otherwise OnDelete).
    pub rolling: bool,
    pub partition: i32,
    pub current_revision: &'a str,
    pub update_revision: &'a str,
    /// Existing pods by ordinal.
    pub pods: &'a BTreeMap<i32, PodView>,
}

/// Upstream `updateStatefulSet`: what to do this sync, in order. OrderedReady stops at the
/// first step and waits for every lower ordinal to be Running and Ready before creating the
/// next, deletes from the highest ordinal down one at a time (waiting for termination), and
/// blocks scale-down on unhealthy pods other than the first one; Parallel does it all at
/// once. Then a rolling update deletes the highest pod at or above the partition that is
/// not at the update revision, once every pod above it is healthy.
pub fn plan(input: &PlanInput) -> Vec<Action> {
    let (start, end) = (input.start, input.start + input.replicas);
    let revision_for = |ord: i32| {
        if input.rolling && ord < start + input.partition { input.current_revision } else { input.update_revision }.to_string()
    };
    let condemned: Vec<(&i32, &PodView)> = input.pods.iter().filter(|(o, _)| **o < start || **o >= end).rev().collect();
    let first_unhealthy = (start..end)
        .filter_map(|o| input.pods.get(&o))
        .chain(condemned.iter().map(|(_, p)| *p))
        .find(|p| !p.healthy())
        .map(|p| p.name.clone());
    let mut actions = Vec::new();
    for ord in start..end {
        match input.pods.get(&ord) {
            None => {
                actions.push(Action::Create { ordinal: ord, revision: revision_for(ord) });
                if input.ordered {
                    return actions;
                }
            }
            Some(p) if p.finished && !p.terminating => {
                actions.push(Action::Delete { name: p.name.clone(), uid: p.uid.clone() });
                if input.ordered {
                    return actions;
                }
            }
            Some(p) if !p.healthy() && input.ordered => return actions,
            Some(_) => {}
        }
    }
    for (_, p) in &condemned {
        if p.terminating {
            if input.ordered {
                return actions;
            }
            continue;
        }
        if input.ordered && !p.running_ready && first_unhealthy.as_deref() != Some(p.name.as_str()) {
            return actions;
        }
        actions.push(Action::Delete { name: p.name.clone(), uid: p.uid.clone() });
        if input.ordered {
            return actions;
        }
    }
    if !input.rolling || !actions.is_empty() {
        return actions;
    }
    for ord in (start + input.partition.max(0)..end).rev() {
        let Some(p) = input.pods.get(&ord) else { return actions };
        if p.revision != input.update_revision && !p.terminating {
            actions.push(Action::Delete { name: p.name.clone(), uid: p.uid.clone() });
            return actions;
        }
        if !p.healthy() {
            return actions;
        }
    }
    actions
}

/// Upstream `computeReplicaStatus` + `completeRollingUpdate`: counts over the set's pods;
/// once a rolling update has every pod updated and ready, the update revision becomes the
/// current one.
pub fn status(set: &StatefulSet, pods: &[&Pod], current_revision: &str, update_revision: &str, now: jiff::Timestamp) -> StatefulSetStatus {
    let spec = set.spec.clone().unwrap_or_default();
    let min_ready = std::time::Duration::from_secs(spec.min_ready_seconds.unwrap_or(0).max(0) as u64);
    let mut s = StatefulSetStatus {
        observed_generation: set.metadata.generation,
        current_revision: Some(current_revision.into()),
        update_revision: Some(update_revision.into()),
        collision_count: set.status.as_ref().and_then(|o| o.collision_count),
        conditions: set.status.as_ref().and_then(|o| o.conditions.clone()),
        ..Default::default()
    };
    let (mut ready, mut available, mut current, mut updated) = (0, 0, 0, 0);
    for p in pods {
        let view = PodView::of(p);
        s.replicas += 1;
        if view.running_ready {
            ready += 1;
            if pods::is_available(p, min_ready, now) {
                available += 1;
            }
        }
        if !view.terminating {
            if view.revision == current_revision {
                current += 1;
            }
            if view.revision == update_revision {
                updated += 1;
            }
        }
    }
    s.ready_replicas = Some(ready);
    s.available_replicas = Some(available);
    s.current_replicas = Some(current);
    s.updated_replicas = Some(updated);
    let rolling = spec.update_strategy.as_ref().and_then(|u| u.type_.as_deref()).unwrap_or("RollingUpdate") == "RollingUpdate";
    if rolling && updated == s.replicas && ready == s.replicas {
        s.current_replicas = Some(updated);
        s.current_revision = Some(update_revision.into());
    }
    s
}

#[cfg(test)]
#[path = "tests.rs"]
mod tests;
