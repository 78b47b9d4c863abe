use super::*;
use k8s_openapi::api::core::v1::{PodCondition, PodStatus};
use k8s_openapi::api::policy::v1::PodDisruptionBudgetSpec;

fn t(secs: i64) -> jiff::Timestamp {
    jiff::Timestamp::from_second(1_700_000_000 + secs).unwrap()
}

fn pod(name: &str, ready: bool, owner_uid: Option<&str>) -> Pod {
    let mut p = Pod::default();
    p.metadata.name = Some(name.into());
    p.metadata.namespace = Some("default".into());
    p.metadata.labels = Some([("app".to_string(), "web".to_string())].into());
    p.metadata.owner_references = owner_uid.map(|uid| {
        vec![OwnerReference {
            api_version: "apps/v1".into(),
            kind: "ReplicaSet".into(),
            name: format!("rs-{uid}"),
            uid: uid.into(),
            controller: Some(true),
            ..Default::default()
        }]
    });
    p.status = Some(PodStatus {
        phase: Some("Running".into()),
        conditions: Some(vec![PodCondition {
            type_: "Ready".into(),
            status: if ready { "True" } else { "False" }.into(),
            ..Default::default()
        }]),
        ..Default::default()
    });
    p
}

fn pdb(min: Option<IntOrString>, max: Option<IntOrString>) -> PodDisruptionBudget {
    let mut b = PodDisruptionBudget::default();
    b.metadata.name = Some("web".into());
    b.metadata.namespace = Some("default".into());
    b.metadata.generation = Some(1);
    b.spec = Some(PodDisruptionBudgetSpec {
        min_available: min,
        max_unavailable: max,
        selector: Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector {
            match_labels: Some([("app".to_string(), "web".to_string())].into()),
            ..Default::default()
        }),
        ..Default::default()
    });
    b
}

fn scale(n: i32) -> impl Fn(&OwnerReference) -> Option<(String, i32)> {
    move |r| Some((r.uid.clone(), n))
}

#[test]
fn percentages_round_up_as_upstream() {
    assert_eq!(scaled_value(&IntOrString::String("50%".into()), 3, true), Ok(2));
    assert_eq!(scaled_value(&IntOrString::String("50%".into()), 3, false), Ok(1));
    assert_eq!(scaled_value(&IntOrString::String("10%".into()), 1, true), Ok(1));
    assert_eq!(scaled_value(&IntOrString::String("0%".into()), 7, true), Ok(0));
    assert_eq!(scaled_value(&IntOrString::Int(4), 100, true), Ok(4));
    assert!(scaled_value(&IntOrString::String("half".into()), 4, true).is_err());
}

#[test]
fn integer_min_available_counts_the_matching_pods() {
    let (a, b, c) = (pod("a", true, None), pod("b", true, None), pod("c", false, None));
    let p = pdb(Some(IntOrString::Int(2)), None);
    let counts = expected_pod_count(&p, &[&a, &b, &c], |_| None).unwrap();
    assert_eq!((counts.expected, counts.desired_healthy), (3, 2));
    let healthy = count_healthy_pods(&[&a, &b, &c], &BTreeMap::new(), t(0));
    assert_eq!(healthy, 2);
    let s = pdb_status(&p, healthy, counts.desired_healthy, counts.expected, BTreeMap::new(), t(0));
    assert_eq!(s.disruptions_allowed, 0);
    let cond = &s.conditions.as_ref().unwrap()[0];
    assert_eq!((cond.type_.as_str(), cond.status.as_str(), cond.reason.as_str()), ("DisruptionAllowed", "False", "InsufficientPods"));
    assert_eq!(s.observed_generation, Some(1));
}

#[test]
fn percentages_and_max_unavailable_use_the_controllers_scale() {
    let pods: Vec<Pod> = (0..3).map(|i| pod(&format!("p{i}"), true, Some("rs1"))).collect();
    let refs: Vec<&Pod> = pods.iter().collect();
    // minAvailable 50% of a scale of 5 rounds up to 3
    let c = expected_pod_count(&pdb(Some(IntOrString::String("50%".into())), None), &refs, scale(5)).unwrap();
    assert_eq!((c.expected, c.desired_healthy), (5, 3));
    // maxUnavailable 30% of 5 rounds up to 2: desired 3
    let c = expected_pod_count(&pdb(None, Some(IntOrString::String("30%".into()))), &refs, scale(5)).unwrap();
    assert_eq!((c.expected, c.desired_healthy), (5, 3));
    // maxUnavailable larger than the scale: desired clamps at 0
    let c = expected_pod_count(&pdb(None, Some(IntOrString::Int(9))), &refs, scale(5)).unwrap();
    assert_eq!(c.desired_healthy, 0);
    // a controller that cannot be found fails the sync, as upstream
    let e = expected_pod_count(&pdb(None, Some(IntOrString::Int(1))), &refs, |_| None).unwrap_err();
    assert_eq!(e, "found no controllers for pod \"p0\"");
    // pods without a controller are reported, not counted
    let lone = pod("lone", true, None);
    let c = expected_pod_count(&pdb(None, Some(IntOrString::Int(1))), &[&lone], scale(5)).unwrap();
    assert_eq!((c.expected, c.unmanaged), (0, vec!["lone".to_string()]));
}

#[test]
fn disruptions_allowed_is_healthy_minus_desired_and_sets_sufficient_pods() {
    let p = pdb(Some(IntOrString::Int(2)), None);
    let s = pdb_status(&p, 3, 2, 3, BTreeMap::new(), t(0));
    assert_eq!(s.disruptions_allowed, 1);
    let cond = &s.conditions.as_ref().unwrap()[0];
    assert_eq!((cond.status.as_str(), cond.reason.as_str()), ("True", "SufficientPods"));
    // nothing expected: no disruption allowed even if the arithmetic says so
    assert_eq!(pdb_status(&p, 3, 0, 0, BTreeMap::new(), t(0)).disruptions_allowed, 0);
    // the transition time is kept while the condition's status stays the same
    let mut with = p.clone();
    with.status = Some(s.clone());
    let again = pdb_status(&with, 4, 2, 4, BTreeMap::new(), t(50));
    assert_eq!(again.conditions.as_ref().unwrap()[0].last_transition_time, Time(t(0)));
    let safe = fail_safe_status(&with, "boom", t(60));
    assert_eq!(safe.disruptions_allowed, 0);
    let cond = &safe.conditions.as_ref().unwrap()[0];
    assert_eq!((cond.status.as_str(), cond.reason.as_str(), cond.message.as_str()), ("False", "SyncFailed", "boom"));
}

#[test]
fn disrupted_pods_are_not_healthy_until_their_entry_expires() {
    let (a, b) = (pod("a", true, None), pod("b", true, None));
    let mut p = pdb(Some(IntOrString::Int(1)), None);
    p.status = Some(PodDisruptionBudgetStatus {
        disrupted_pods: Some([("a".to_string(), Time(t(0))), ("gone".to_string(), Time(t(0)))].into()),
        ..Default::default()
    });
    let (map, recheck) = build_disrupted_pod_map(&[&a, &b], &p, t(10));
    assert_eq!(map.keys().collect::<Vec<_>>(), ["a"], "entries of missing pods are dropped");
    assert_eq!(recheck, Some(t(120)));
    assert_eq!(count_healthy_pods(&[&a, &b], &map, t(10)), 1);
    let (map, recheck) = build_disrupted_pod_map(&[&a, &b], &p, t(121));
    assert!(map.is_empty() && recheck.is_none(), "an expired entry is dropped");
    assert_eq!(count_healthy_pods(&[&a, &b], &map, t(121)), 2);
    // a pod being deleted is neither healthy nor kept in the map
    let mut deleting = a.clone();
    deleting.metadata.deletion_timestamp = Some(Time(t(5)));
    let (map, _) = build_disrupted_pod_map(&[&deleting, &b], &p, t(10));
    assert!(map.is_empty());
    assert_eq!(count_healthy_pods(&[&deleting, &b], &map, t(10)), 1);
}

#[test]
fn an_empty_selector_selects_every_pod_and_none_selects_nothing() {
    let a = pod("a", true, None);
    let mut p = pdb(Some(IntOrString::Int(1)), None);
    assert!(selects(&p, &a));
    p.spec.as_mut().unwrap().selector = Some(Default::default());
    assert!(selects(&p, &a));
    p.spec.as_mut().unwrap().selector = None;
    assert!(!selects(&p, &a));
}
