use super::*;
use k8s_openapi::api::core::v1::{
    NodeSelector, NodeSelectorRequirement, NodeSelectorTerm, PersistentVolumeClaimSpec, PersistentVolumeSpec, VolumeResourceRequirements,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity as Q;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

fn pv(name: &str, class: &str, size: &str, modes: &[&str], node: Option<&str>) -> Arc<PersistentVolume> {
    Arc::new(PersistentVolume {
        metadata: ObjectMeta { name: Some(name.into()), ..Default::default() },
        spec: Some(PersistentVolumeSpec {
            storage_class_name: Some(class.into()),
            capacity: Some([("storage".to_string(), Q(size.into()))].into()),
            access_modes: Some(modes.iter().map(|m| m.to_string()).collect()),
            node_affinity: node.map(|n| VolumeNodeAffinity {
                required: Some(NodeSelector {
                    node_selector_terms: vec![NodeSelectorTerm {
                        match_expressions: Some(vec![NodeSelectorRequirement { key: "kubernetes.io/hostname".into(), operator: "In".into(), values: Some(vec![n.into()]) }]),
                        match_fields: None,
                    }],
                }),
            }),
            ..Default::default()
        }),
        status: None,
    })
}

fn claim(class: &str, size: &str, modes: &[&str]) -> PersistentVolumeClaim {
    PersistentVolumeClaim {
        metadata: ObjectMeta { name: Some("data".into()), namespace: Some("ns".into()), uid: Some("c1".into()), ..Default::default() },
        spec: Some(PersistentVolumeClaimSpec {
            storage_class_name: Some(class.into()),
            access_modes: Some(modes.iter().map(|m| m.to_string()).collect()),
            resources: Some(VolumeResourceRequirements { requests: Some([("storage".to_string(), Q(size.into()))].into()), ..Default::default() }),
            ..Default::default()
        }),
        status: None,
    }
}

fn node(name: &str) -> Node {
    Node {
        metadata: ObjectMeta { name: Some(name.into()), labels: Some([("kubernetes.io/hostname".to_string(), name.to_string())].into()), ..Default::default() },
        ..Default::default()
    }
}

fn name(pv: Option<&PersistentVolume>) -> Option<&str> {
    pv.and_then(|p| p.metadata.name.as_deref())
}

#[test]
fn the_smallest_volume_that_fits_class_modes_and_size_wins() {
    let volumes = vec![
        pv("big", "fast", "10Gi", &["ReadWriteOnce"], None),
        pv("small", "fast", "1Gi", &["ReadWriteOnce", "ReadOnlyMany"], None),
        pv("tiny", "fast", "100Mi", &["ReadWriteOnce"], None),
        pv("other-class", "slow", "1Gi", &["ReadWriteOnce"], None),
        pv("rox", "fast", "2Gi", &["ReadOnlyMany"], None),
    ];
    assert_eq!(name(best_match(&claim("fast", "500Mi", &["ReadWriteOnce"]), &volumes, None)), Some("small"));
    assert_eq!(name(best_match(&claim("fast", "2Gi", &["ReadWriteOnce"]), &volumes, None)), Some("big"));
    assert_eq!(name(best_match(&claim("fast", "2Gi", &["ReadOnlyMany"]), &volumes, None)), Some("rox"));
    assert_eq!(name(best_match(&claim("fast", "20Gi", &["ReadWriteOnce"]), &volumes, None)), None);
    assert_eq!(name(best_match(&claim("", "1Gi", &["ReadWriteOnce"]), &volumes, None)), None, "class \"\" binds only class-less volumes");
}

#[test]
fn bound_and_pre_bound_volumes_and_node_affinity_are_respected() {
    let mut taken = pv("taken", "fast", "1Gi", &["ReadWriteOnce"], None).as_ref().clone();
    taken.spec.as_mut().unwrap().claim_ref = Some(ObjectReference { name: Some("other".into()), namespace: Some("ns".into()), uid: Some("x".into()), ..Default::default() });
    let mut mine = pv("mine", "fast", "5Gi", &["ReadWriteOnce"], None).as_ref().clone();
    mine.spec.as_mut().unwrap().claim_ref = Some(ObjectReference { name: Some("data".into()), namespace: Some("ns".into()), ..Default::default() });
    let c = claim("fast", "1Gi", &["ReadWriteOnce"]);
    assert_eq!(name(best_match(&c, &[Arc::new(taken.clone())], None)), None);
    assert_eq!(name(best_match(&c, &[Arc::new(taken), Arc::new(mine), pv("free", "fast", "1Gi", &["ReadWriteOnce"], None)], None)), Some("mine"));
    let local = vec![pv("on-a", "local", "1Gi", &["ReadWriteOnce"], Some("a")), pv("on-b", "local", "2Gi", &["ReadWriteOnce"], Some("b"))];
    let c = claim("local", "1Gi", &["ReadWriteOnce"]);
    assert_eq!(name(best_match(&c, &local, Some(&node("b")))), Some("on-b"));
    assert_eq!(name(best_match(&c, &local, None)), Some("on-a"));
}

#[test]
fn volume_phase_follows_its_claim() {
    let free = pv("v", "fast", "1Gi", &["ReadWriteOnce"], None);
    assert_eq!(volume_phase(&free, None), "Available");
    let mut bound = free.as_ref().clone();
    bound.spec.as_mut().unwrap().claim_ref = Some(ObjectReference { name: Some("data".into()), namespace: Some("ns".into()), uid: Some("c1".into()), ..Default::default() });
    let mut c = claim("fast", "1Gi", &["ReadWriteOnce"]);
    c.spec.as_mut().unwrap().volume_name = Some("v".into());
    assert_eq!(volume_phase(&bound, Some(&c)), "Bound");
    assert_eq!(volume_phase(&bound, None), "Released");
    let mut recreated = c.clone();
    recreated.metadata.uid = Some("c2".into());
    assert_eq!(volume_phase(&bound, Some(&recreated)), "Released", "a new claim of the same name is another claim");
}
