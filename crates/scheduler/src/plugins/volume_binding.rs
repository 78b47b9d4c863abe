//! VolumeBinding (basics): a pod's PersistentVolumeClaims must exist; bound claims pin the
//! pod to nodes matching the PersistentVolume's node affinity (local volumes); unbound
//! claims of an `Immediate` class make the pod unschedulable until the PV controller binds
//! them; unbound `WaitForFirstConsumer` claims need an available matching PV on the node.
//! (Binding such a claim at PreBind is not implemented yet.)

use std::collections::HashMap;
use std::sync::Arc;

use k8s_openapi::api::core::v1::{PersistentVolume, PersistentVolumeClaim};
use k8s_openapi::api::storage::v1::StorageClass;

use crate::framework::{CycleState, FilterPlugin, Plugin, PreFilterPlugin, Snapshot, Status};
use crate::node_info::{NodeInfo, PodInfo};
use crate::quantity;
use crate::selectors::node_selector_terms_match;

pub const NAME: &str = "VolumeBinding";
pub const ERR_NODE_CONFLICT: &str = "node(s) had volume node affinity conflict";
pub const ERR_BIND_CONFLICT: &str = "node(s) didn't find available persistent volumes to bind";
pub const ERR_UNBOUND_IMMEDIATE: &str = "pod has unbound immediate PersistentVolumeClaims";

/// The storage objects the scheduler watches.
#[derive(Debug, Default, Clone)]
pub struct Volumes {
    /// `namespace/name` → claim
    pub claims: HashMap<String, Arc<PersistentVolumeClaim>>,
    pub volumes: HashMap<String, Arc<PersistentVolume>>,
    pub classes: HashMap<String, Arc<StorageClass>>,
}

pub struct VolumeBinding;

impl Plugin for VolumeBinding {
    fn name(&self) -> &'static str {
        NAME
    }
}

#[derive(Default)]
struct PreFilterState {
    bound: Vec<Arc<PersistentVolume>>,
    /// Unbound WaitForFirstConsumer claims and the PVs that could satisfy each.
    to_bind: Vec<Vec<Arc<PersistentVolume>>>,
}

fn claim_request(c: &PersistentVolumeClaim) -> i64 {
    c.spec.as_ref().and_then(|s| s.resources.as_ref()).and_then(|r| r.requests.as_ref()).and_then(|r| r.get("storage")).and_then(|q| quantity::parse(&q.0, 1)).unwrap_or(0)
}

fn candidates(claim: &PersistentVolumeClaim, class: &str, v: &Volumes) -> Vec<Arc<PersistentVolume>> {
    let want = claim_request(claim);
    v.volumes
        .values()
        .filter(|pv| {
            let spec = pv.spec.as_ref();
            let available = spec.is_some_and(|s| s.claim_ref.is_none()) && pv.status.as_ref().and_then(|s| s.phase.as_deref()).is_none_or(|p| p == "Available");
            let same_class = spec.and_then(|s| s.storage_class_name.as_deref()).unwrap_or_default() == class;
            let size = spec.and_then(|s| s.capacity.as_ref()).and_then(|c| c.get("storage")).and_then(|q| quantity::parse(&q.0, 1)).unwrap_or(0);
            available && same_class && size >= want
        })
        .cloned()
        .collect()
}

fn pv_fits(pv: &PersistentVolume, node: &NodeInfo) -> bool {
    match pv.spec.as_ref().and_then(|s| s.node_affinity.as_ref()).and_then(|a| a.required.as_ref()) {
        Some(sel) => node_selector_terms_match(&sel.node_selector_terms, &node.node, &node.labels),
        None => true,
    }
}

impl PreFilterPlugin for VolumeBinding {
    fn pre_filter(&self, state: &mut CycleState, pod: &PodInfo, snapshot: &Snapshot) -> Status {
        let claims: Vec<&str> = pod
            .pod
            .spec
            .as_ref()
            .and_then(|s| s.volumes.as_ref())
            .into_iter()
            .flatten()
            .filter_map(|v| v.persistent_volume_claim.as_ref().map(|c| c.claim_name.as_str()))
            .collect();
        if claims.is_empty() {
            return Status::skip();
        }
        let empty = Volumes::default();
        let v = snapshot.volumes.unwrap_or(&empty);
        let mut s = PreFilterState::default();
        for name in claims {
            let Some(claim) = v.claims.get(&format!("{}/{name}", pod.namespace)) else {
                return Status::unresolvable(format!("persistentvolumeclaim \"{name}\" not found"));
            };
            if claim.metadata.deletion_timestamp.is_some() {
                return Status::unresolvable(format!("persistentvolumeclaim \"{name}\" is being deleted"));
            }
            let spec = claim.spec.as_ref();
            match spec.and_then(|s| s.volume_name.as_deref()).filter(|n| !n.is_empty()) {
                Some(pv_name) => match v.volumes.get(pv_name) {
                    Some(pv) => s.bound.push(pv.clone()),
                    None => return Status::unresolvable(format!("persistentvolume \"{pv_name}\" not found")),
                },
                None => {
                    let class = spec.and_then(|s| s.storage_class_name.clone()).unwrap_or_default();
                    let wait = v.classes.get(&class).and_then(|c| c.volume_binding_mode.as_deref()) == Some("WaitForFirstConsumer");
                    if !wait {
                        return Status::unresolvable(ERR_UNBOUND_IMMEDIATE);
                    }
                    s.to_bind.push(candidates(claim, &class, v));
                }
            }
        }
        state.write(NAME, s);
        Status::success()
    }
}

impl FilterPlugin for VolumeBinding {
    fn filter(&self, state: &CycleState, _pod: &PodInfo, node: &NodeInfo) -> Status {
        let Some(s) = state.read::<PreFilterState>(NAME) else { return Status::success() };
        if !s.bound.iter().all(|pv| pv_fits(pv, node)) {
            return Status::unresolvable(ERR_NODE_CONFLICT);
        }
        if !s.to_bind.iter().all(|c| c.iter().any(|pv| pv_fits(pv, node))) {
            return Status::unresolvable(ERR_BIND_CONFLICT);
        }
        Status::success()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::framework::Code;
    use crate::node_info::testing::*;
    use k8s_openapi::api::core::v1::{
        NodeSelector, NodeSelectorRequirement, NodeSelectorTerm, PersistentVolumeClaimSpec, PersistentVolumeClaimVolumeSource,
        PersistentVolumeSpec, Volume, VolumeNodeAffinity,
    };
    use kube::api::ObjectMeta;

    fn local_pv(name: &str, host: &str) -> PersistentVolume {
        PersistentVolume {
            metadata: ObjectMeta { name: Some(name.into()), ..Default::default() },
            spec: Some(PersistentVolumeSpec {
                node_affinity: Some(VolumeNodeAffinity {
                    required: Some(NodeSelector {
                        node_selector_terms: vec![NodeSelectorTerm {
                            match_expressions: Some(vec![NodeSelectorRequirement {
                                key: "kubernetes.io/hostname".into(),
                                operator: "In".into(),
                                values: Some(vec![host.into()]),
                            }]),
                            match_fields: None,
                        }],
                    }),
                }),
                ..Default::default()
            }),
            status: None,
        }
    }

    fn claim(name: &str, volume: Option<&str>) -> PersistentVolumeClaim {
        PersistentVolumeClaim {
            metadata: ObjectMeta { name: Some(name.into()), namespace: Some("default".into()), ..Default::default() },
            spec: Some(PersistentVolumeClaimSpec { volume_name: volume.map(Into::into), ..Default::default() }),
            status: None,
        }
    }

    fn pod_with_claim(claim: &str) -> std::sync::Arc<PodInfo> {
        let mut p = pod("p", None, None);
        p.spec.as_mut().unwrap().volumes = Some(vec![Volume {
            name: "data".into(),
            persistent_volume_claim: Some(PersistentVolumeClaimVolumeSource { claim_name: claim.into(), read_only: None }),
            ..Default::default()
        }]);
        info(p)
    }

    #[test]
    fn bound_local_volumes_pin_the_pod_to_their_node() {
        let mut v = Volumes::default();
        v.volumes.insert("pv1".into(), Arc::new(local_pv("pv1", "a")));
        v.claims.insert("default/data".into(), Arc::new(claim("data", Some("pv1"))));
        v.claims.insert("default/pending".into(), Arc::new(claim("pending", None)));
        let (a, b) = (node("a", "1", "1Gi", &[]), node("b", "1", "1Gi", &[]));
        let mut snap = Snapshot::new(vec![&a, &b]);
        snap.volumes = Some(&v);
        let p = pod_with_claim("data");
        let mut st = CycleState::default();
        assert!(VolumeBinding.pre_filter(&mut st, &p, &snap).is_success());
        assert!(VolumeBinding.filter(&st, &p, &a).is_success());
        assert_eq!(VolumeBinding.filter(&st, &p, &b).reasons, [ERR_NODE_CONFLICT]);
        let s = VolumeBinding.pre_filter(&mut CycleState::default(), &pod_with_claim("pending"), &snap);
        assert_eq!((s.code, s.reasons[0].as_str()), (Code::UnschedulableAndUnresolvable, ERR_UNBOUND_IMMEDIATE));
        let s = VolumeBinding.pre_filter(&mut CycleState::default(), &pod_with_claim("missing"), &snap);
        assert_eq!(s.reasons, ["persistentvolumeclaim \"missing\" not found"]);
    }
}
