use super::*;
use k8s_openapi::api::apps::v1::StatefulSetSpec;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;

fn view(name: &str, revision: &str, ready: bool) -> PodView {
    PodView { name: name.into(), uid: format!("uid-{name}"), revision: revision.into(), terminating: false, finished: false, running_ready: ready }
}

fn input<'a>(replicas: i32, ordered: bool, pods: &'a BTreeMap<i32, PodView>) -> PlanInput<'a> {
    PlanInput { start: 0, replicas, ordered, rolling: true, partition: 0, current_revision: "web-a", update_revision: "web-a", pods }
}

fn creates(actions: &[Action]) -> Vec<i32> {
    actions.iter().filter_map(|a| if let Action::Create { ordinal, .. } = a { Some(*ordinal) } else { None }).collect()
}

fn deletes(actions: &[Action]) -> Vec<String> {
    actions.iter().filter_map(|a| if let Action::Delete { name, .. } = a { Some(name.clone()) } else { None }).collect()
}

#[test]
fn ordinals_parse_only_for_the_sets_own_pods() {
    assert_eq!(ordinal_of("web", "web-0"), Some(0));
    assert_eq!(ordinal_of("web", "web-12"), Some(12));
    assert_eq!(ordinal_of("my-web", "my-web-3"), Some(3));
    assert_eq!(ordinal_of("web", "my-web-3"), None);
    assert_eq!(ordinal_of("web", "web-"), None);
    assert_eq!(ordinal_of("web", "web-x1"), None);
    assert_eq!(ordinal_of("web", "web-0-1"), None);
    assert_eq!((pod_name("web", 2), claim_name("www", "web", 2)), ("web-2".to_string(), "www-web-2".to_string()));
}

#[test]
fn ordered_ready_creates_one_pod_at_a_time_after_the_previous_is_ready() {
    let none = BTreeMap::new();
    assert_eq!(creates(&plan(&input(3, true, &none))), [0]);
    let starting: BTreeMap<i32, PodView> = [(0, view("web-0", "web-a", false))].into();
    assert!(plan(&input(3, true, &starting)).is_empty(), "web-1 waits for web-0 to be Ready");
    let ready: BTreeMap<i32, PodView> = [(0, view("web-0", "web-a", true))].into();
    assert_eq!(creates(&plan(&input(3, true, &ready))), [1]);
    // A missing middle pod is recreated first.
    let gap: BTreeMap<i32, PodView> = [(0, view("web-0", "web-a", true)), (2, view("web-2", "web-a", true))].into();
    assert_eq!(creates(&plan(&input(3, true, &gap))), [1]);
    // Parallel creates every missing pod at once.
    assert_eq!(creates(&plan(&input(3, false, &none))), [0, 1, 2]);
}

#[test]
fn scale_down_removes_the_highest_ordinal_first_and_waits_for_its_termination() {
    let all: BTreeMap<i32, PodView> = (0..3).map(|i| (i, view(&format!("web-{i}"), "web-a", true))).collect();
    assert_eq!(deletes(&plan(&input(1, true, &all))), ["web-2"]);
    let mut going = all.clone();
    going.get_mut(&2).unwrap().terminating = true;
    assert!(plan(&input(1, true, &going)).is_empty(), "web-1 waits for web-2 to be gone");
    assert_eq!(deletes(&plan(&input(1, false, &all))), ["web-2", "web-1"]);
    // An unhealthy pod below blocks ordered scale-down.
    let mut sick = all.clone();
    sick.get_mut(&0).unwrap().running_ready = false;
    assert!(plan(&input(1, true, &sick)).is_empty());
}

#[test]
fn failed_pods_are_deleted_to_be_recreated() {
    let mut pods: BTreeMap<i32, PodView> = [(0, view("web-0", "web-a", false))].into();
    pods.get_mut(&0).unwrap().finished = true;
    assert_eq!(deletes(&plan(&input(1, true, &pods))), ["web-0"]);
}

#[test]
fn rolling_update_replaces_from_the_top_down_to_the_partition() {
    let old: BTreeMap<i32, PodView> = (0..3).map(|i| (i, view(&format!("web-{i}"), "web-a", true))).collect();
    let mut i = input(3, true, &old);
    i.update_revision = "web-b";
    assert_eq!(deletes(&plan(&i)), ["web-2"]);
    let mut mid = old.clone();
    mid.insert(2, view("web-2", "web-b", false));
    let mut i = input(3, true, &mid);
    i.update_revision = "web-b";
    assert!(plan(&i).is_empty(), "waits for the updated web-2 to be ready");
    mid.get_mut(&2).unwrap().running_ready = true;
    let mut i = input(3, true, &mid);
    i.update_revision = "web-b";
    assert_eq!(deletes(&plan(&i)), ["web-1"]);
    i.partition = 2;
    assert!(plan(&i).is_empty(), "ordinals below the partition keep the current revision");
    i.rolling = false;
    i.partition = 0;
    assert!(plan(&i).is_empty(), "OnDelete never deletes for an update");
    // Recreated pods below the partition get the current revision, above it the update one.
    let gap: BTreeMap<i32, PodView> = [(0, view("web-0", "web-a", true))].into();
    let i = PlanInput { partition: 2, current_revision: "web-a", update_revision: "web-b", ..input(3, true, &gap) };
    assert_eq!(plan(&i), [Action::Create { ordinal: 1, revision: "web-a".into() }]);
}

#[test]
fn pods_get_identity_claims_and_revision() {
    let set = StatefulSet {
        metadata: ObjectMeta { name: Some("web".into()), namespace: Some("ns".into()), ..Default::default() },
        spec: Some(StatefulSetSpec {
            service_name: Some("nginx".into()),
            selector: LabelSelector { match_labels: Some([("app".to_string(), "web".to_string())].into()), ..Default::default() },
            volume_claim_templates: Some(vec![PersistentVolumeClaim {
                metadata: ObjectMeta { name: Some("www".into()), ..Default::default() },
                ..Default::default()
            }]),
            ..Default::default()
        }),
        status: None,
    };
    let template = PodTemplateSpec { metadata: Some(ObjectMeta { labels: Some([("app".to_string(), "web".to_string())].into()), ..Default::default() }), spec: None };
    let pod = new_pod(&set, &template, 1, "web-abc", OwnerReference::default());
    let labels = pod.metadata.labels.as_ref().unwrap();
    assert_eq!(pod.metadata.name.as_deref(), Some("web-1"));
    assert_eq!((labels[POD_NAME_LABEL].as_str(), labels[POD_INDEX_LABEL].as_str(), labels[CONTROLLER_REVISION_HASH].as_str()), ("web-1", "1", "web-abc"));
    let spec = pod.spec.as_ref().unwrap();
    assert_eq!((spec.hostname.as_deref(), spec.subdomain.as_deref()), (Some("web-1"), Some("nginx")));
    let vol = &spec.volumes.as_ref().unwrap()[0];
    assert_eq!((vol.name.as_str(), vol.persistent_volume_claim.as_ref().unwrap().claim_name.as_str()), ("www", "www-web-1"));
    let claims = claims_for(&set, 1, None);
    assert_eq!(claims[0].metadata.name.as_deref(), Some("www-web-1"));
    assert_eq!(claims[0].metadata.labels.as_ref().unwrap()["app"], "web");
}

#[test]
fn status_completes_a_rolling_update_once_every_pod_is_updated_and_ready() {
    let mk = |name: &str, rev: &str| {
        let mut p = Pod::default();
        p.metadata.name = Some(name.into());
        p.metadata.labels = Some([(CONTROLLER_REVISION_HASH.to_string(), rev.to_string())].into());
        p.status = Some(k8s_openapi::api::core::v1::PodStatus {
            phase: Some("Running".into()),
            conditions: Some(vec![k8s_openapi::api::core::v1::PodCondition { type_: "Ready".into(), status: "True".into(), ..Default::default() }]),
            ..Default::default()
        });
        p
    };
    let set = StatefulSet { metadata: ObjectMeta { generation: Some(2), ..Default::default() }, ..Default::default() };
    let (a, b) = (mk("web-0", "web-a"), mk("web-1", "web-b"));
    let s = status(&set, &[&a, &b], "web-a", "web-b", jiff::Timestamp::UNIX_EPOCH);
    assert_eq!((s.replicas, s.ready_replicas, s.current_replicas, s.updated_replicas), (2, Some(2), Some(1), Some(1)));
    assert_eq!(s.current_revision.as_deref(), Some("web-a"));
    let b0 = mk("web-0", "web-b");
    let s = status(&set, &[&b0, &b], "web-a", "web-b", jiff::Timestamp::UNIX_EPOCH);
    assert_eq!((s.current_revision.as_deref(), s.current_replicas, s.observed_generation), (Some("web-b"), Some(2), Some(2)));
}

#[test]
fn retention_policy_decides_who_owns_the_claims() {
    let r = |uid: &str| OwnerReference { uid: uid.into(), ..Default::default() };
    let (set, pod) = (r("set"), r("pod"));
    assert!(claim_owners(&[], &set, &pod, "Retain", "Retain", true).is_none());
    assert_eq!(claim_owners(&[], &set, &pod, "Delete", "Retain", false).unwrap(), std::slice::from_ref(&set));
    assert!(claim_owners(std::slice::from_ref(&set), &set, &pod, "Delete", "Retain", true).is_none());
    assert_eq!(claim_owners(std::slice::from_ref(&set), &set, &pod, "Delete", "Delete", true).unwrap(), std::slice::from_ref(&pod));
    assert!(claim_owners(&[], &set, &pod, "Retain", "Delete", false).is_none());
    assert_eq!(claim_owners(std::slice::from_ref(&pod), &set, &pod, "Retain", "Retain", false).unwrap(), Vec::<OwnerReference>::new());
    let other = r("other");
    assert_eq!(claim_owners(std::slice::from_ref(&other), &set, &pod, "Retain", "Delete", true).unwrap(), [other, pod]);
}
