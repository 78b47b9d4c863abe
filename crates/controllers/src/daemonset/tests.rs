use super::*;
use k8s_openapi::api::apps::v1::{DaemonSetSpec, DaemonSetUpdateStrategy, RollingUpdateDaemonSet};
use k8s_openapi::api::core::v1::{NodeSpec, PodCondition, PodStatus};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};

fn t(secs: i64) -> jiff::Timestamp {
    jiff::Timestamp::from_second(1_700_000_000 + secs).unwrap()
}

fn node(name: &str, labels: &[(&str, &str)], taints: &[(&str, &str)]) -> Node {
    Node {
        metadata: ObjectMeta {
            name: Some(name.into()),
            labels: Some(labels.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()),
            ..Default::default()
        },
        spec: Some(NodeSpec {
            taints: Some(taints.iter().map(|(k, e)| Taint { key: k.to_string(), effect: e.to_string(), ..Default::default() }).collect()),
            ..Default::default()
        }),
        status: None,
    }
}

fn pod(name: &str, node: &str, hash: &str, ready: bool, created: i64) -> Pod {
    let mut p = Pod::default();
    p.metadata.name = Some(name.into());
    p.metadata.creation_timestamp = Some(Time(t(created)));
    p.metadata.labels = Some([(CONTROLLER_REVISION_HASH.to_string(), hash.to_string())].into());
    p.spec = Some(PodSpec { affinity: Some(node_name_affinity(None, node)), ..Default::default() });
    p.status = Some(PodStatus {
        phase: Some("Running".into()),
        conditions: Some(vec![PodCondition {
            type_: "Ready".into(),
            status: if ready { "True" } else { "False" }.into(),
            last_transition_time: Some(Time(t(created))),
            ..Default::default()
        }]),
        ..Default::default()
    });
    p
}

fn fit(name: &str) -> NodeFit {
    NodeFit { name: name.into(), should_run: true, should_continue: true }
}

fn by_node<'a>(pods: &[&'a Pod]) -> BTreeMap<String, Vec<&'a Pod>> {
    let mut m: BTreeMap<String, Vec<&Pod>> = BTreeMap::new();
    for p in pods {
        m.entry(target_node(p).unwrap()).or_default().push(p);
    }
    m
}

#[test]
fn default_tolerations_cover_node_conditions_and_replace_same_key_effect() {
    let mut spec = PodSpec {
        tolerations: Some(vec![Toleration {
            key: Some("node.kubernetes.io/not-ready".into()),
            operator: Some("Exists".into()),
            effect: Some("NoExecute".into()),
            toleration_seconds: Some(300),
            ..Default::default()
        }]),
        ..Default::default()
    };
    add_default_tolerations(&mut spec);
    let tols = spec.tolerations.as_ref().unwrap();
    assert_eq!(tols.len(), 6);
    assert!(tols.iter().all(|t| t.toleration_seconds.is_none()));
    assert!(!tols.iter().any(|t| t.key.as_deref() == Some("node.kubernetes.io/network-unavailable")));
    let mut host = PodSpec { host_network: Some(true), ..Default::default() };
    add_default_tolerations(&mut host);
    assert_eq!(host.tolerations.unwrap().len(), 7);
}

#[test]
fn nodes_are_chosen_by_selector_affinity_and_taints() {
    let spec = PodSpec { node_selector: Some([("role".to_string(), "edge".to_string())].into()), ..Default::default() };
    assert_eq!(should_run(&spec, &node("a", &[("role", "edge")], &[])), (true, true));
    assert_eq!(should_run(&spec, &node("b", &[], &[])), (false, false));
    let any = PodSpec::default();
    assert_eq!(should_run(&any, &node("c", &[], &[("dedicated", "NoSchedule")])), (false, true), "NoSchedule keeps a running pod");
    assert_eq!(should_run(&any, &node("d", &[], &[("dedicated", "NoExecute")])), (false, false));
    assert_eq!(should_run(&any, &node("e", &[], &[("node.kubernetes.io/unschedulable", "NoSchedule")])), (true, true), "default toleration");
    assert_eq!(should_run(&any, &node("f", &[], &[("node.kubernetes.io/not-ready", "NoExecute")])), (true, true));
    let tolerant = PodSpec {
        tolerations: Some(vec![Toleration { key: Some("dedicated".into()), operator: Some("Exists".into()), ..Default::default() }]),
        ..Default::default()
    };
    assert_eq!(should_run(&tolerant, &node("d", &[], &[("dedicated", "NoExecute")])), (true, true));
    let pinned = PodSpec { affinity: Some(node_name_affinity(None, "a")), ..Default::default() };
    assert_eq!(should_run(&pinned, &node("a", &[], &[])), (true, true));
    assert_eq!(should_run(&pinned, &node("b", &[], &[])), (false, false));
}

#[test]
fn daemon_pods_target_their_node_through_match_fields() {
    let p = pod("x", "n7", "h", true, 0);
    let term = &p.spec.as_ref().unwrap().affinity.as_ref().unwrap().node_affinity.as_ref().unwrap().required_during_scheduling_ignored_during_execution.as_ref().unwrap().node_selector_terms[0];
    assert_eq!(term.match_fields.as_ref().unwrap()[0].key, "metadata.name");
    assert_eq!(target_node(&p).as_deref(), Some("n7"));
    let mut bound = p.clone();
    bound.spec.as_mut().unwrap().node_name = Some("n8".into());
    assert_eq!(target_node(&bound).as_deref(), Some("n8"));
}

#[test]
fn manage_creates_on_empty_nodes_and_deletes_misplaced_duplicate_and_orphaned_pods() {
    let a = pod("a", "n1", "h", true, 0);
    let dup_old = pod("b-old", "n2", "h", true, 0);
    let dup_new = pod("b-new", "n2", "h", true, 10);
    let evicted = pod("c", "n3", "h", true, 0);
    let gone = pod("d", "n9", "h", true, 0);
    let mut failed = pod("e", "n4", "h", false, 0);
    failed.status.as_mut().unwrap().phase = Some("Failed".into());
    let nodes = vec![fit("n1"), fit("n2"), NodeFit { name: "n3".into(), should_run: false, should_continue: false }, fit("n4"), fit("n5")];
    let plan = manage(&nodes, &by_node(&[&a, &dup_old, &dup_new, &evicted, &gone, &failed]), "h", false, Duration::ZERO, t(100));
    assert_eq!(plan.create, ["n5"]);
    assert_eq!(plan.delete, ["b-new", "c", "e", "d"]);
}

#[test]
fn rolling_update_replaces_at_most_max_unavailable_old_pods() {
    let olds: Vec<Pod> = (1..=4).map(|i| pod(&format!("old{i}"), &format!("n{i}"), "old", true, 0)).collect();
    let refs: Vec<&Pod> = olds.iter().collect();
    let plan = rolling_update(&by_node(&refs), "new", 0, 1, Duration::ZERO, t(100));
    assert_eq!(plan.delete, ["old1"]);
    // One node is already updating (its new pod not yet ready): nothing more is deleted.
    let updating = pod("new1", "n1", "new", false, 50);
    let refs: Vec<&Pod> = vec![&updating, &olds[1], &olds[2], &olds[3]];
    assert!(rolling_update(&by_node(&refs), "new", 0, 1, Duration::ZERO, t(100)).delete.is_empty());
    // An old pod that is not available is replaced regardless.
    let broken = pod("old2", "n2", "old", false, 0);
    let refs: Vec<&Pod> = vec![&updating, &broken, &olds[2]];
    assert_eq!(rolling_update(&by_node(&refs), "new", 0, 1, Duration::ZERO, t(100)).delete, ["old2"]);
}

#[test]
fn rolling_update_with_surge_adds_new_pods_then_deletes_old_ones_when_available() {
    let old1 = pod("old1", "n1", "old", true, 0);
    let old2 = pod("old2", "n2", "old", true, 0);
    let plan = rolling_update(&by_node(&[&old1, &old2]), "new", 1, 0, Duration::ZERO, t(100));
    assert_eq!((plan.create.as_slice(), plan.delete.len()), (["n1".to_string()].as_slice(), 0));
    let new1 = pod("new1", "n1", "new", true, 50);
    let plan = rolling_update(&by_node(&[&old1, &new1, &old2]), "new", 1, 0, Duration::ZERO, t(100));
    assert_eq!(plan.delete, ["old1"]);
    assert_eq!(plan.create, ["n2"]);
    // manage with surge keeps both until the new pod is available
    let unready = pod("new1", "n1", "new", false, 50);
    let plan = manage(&[fit("n1")], &by_node(&[&old1, &unready]), "new", true, Duration::ZERO, t(100));
    assert!(plan.delete.is_empty());
    let plan = manage(&[fit("n1")], &by_node(&[&old1, &new1]), "new", true, Duration::ZERO, t(100));
    assert_eq!(plan.delete, ["old1"]);
}

#[test]
fn max_unavailable_and_surge_scale_with_the_desired_count() {
    let mut ds = DaemonSet::default();
    assert_eq!(surge_and_unavailable(&ds, 10), (0, 1));
    ds.spec = Some(DaemonSetSpec {
        update_strategy: Some(DaemonSetUpdateStrategy {
            type_: Some("RollingUpdate".into()),
            rolling_update: Some(RollingUpdateDaemonSet { max_surge: Some(IntOrString::String("25%".into())), max_unavailable: Some(IntOrString::Int(0)) }),
        }),
        ..Default::default()
    });
    assert_eq!(surge_and_unavailable(&ds, 10), (3, 0));
}

#[test]
fn status_counts_desired_current_ready_updated_and_misscheduled() {
    let mut ds = DaemonSet::default();
    ds.metadata.generation = Some(4);
    let a = pod("a", "n1", "h", true, 0);
    let b = pod("b", "n2", "old", false, 0);
    let c = pod("c", "n3", "h", true, 0);
    let nodes = vec![fit("n1"), fit("n2"), NodeFit { name: "n3".into(), should_run: false, should_continue: true }, fit("n4")];
    let s = status(&ds, &nodes, &by_node(&[&a, &b, &c]), "h", t(100));
    assert_eq!((s.desired_number_scheduled, s.current_number_scheduled, s.number_misscheduled), (3, 2, 1));
    assert_eq!((s.number_ready, s.number_available, s.updated_number_scheduled), (1, Some(1), Some(1)));
    assert_eq!((s.number_unavailable, s.observed_generation), (Some(2), Some(4)));
}
