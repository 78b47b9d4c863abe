use super::*;
use k8s_openapi::api::apps::v1::{DeploymentSpec, DeploymentStrategy, ReplicaSetSpec, ReplicaSetStatus, RollingUpdateDeployment};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

fn deploy(replicas: i32, surge: IntOrString, unavailable: IntOrString) -> Deployment {
    Deployment {
        metadata: ObjectMeta { name: Some("web".into()), generation: Some(1), ..Default::default() },
        spec: Some(DeploymentSpec {
            replicas: Some(replicas),
            strategy: Some(DeploymentStrategy {
                type_: Some("RollingUpdate".into()),
                rolling_update: Some(RollingUpdateDeployment { max_surge: Some(surge), max_unavailable: Some(unavailable) }),
            }),
            progress_deadline_seconds: Some(600),
            ..Default::default()
        }),
        status: None,
    }
}

fn rs(name: &str, replicas: i32, available: i32, created: i64) -> ReplicaSet {
    ReplicaSet {
        metadata: ObjectMeta {
            name: Some(name.into()),
            creation_timestamp: Some(Time(jiff::Timestamp::from_second(created).unwrap())),
            ..Default::default()
        },
        spec: Some(ReplicaSetSpec { replicas: Some(replicas), ..Default::default() }),
        status: Some(ReplicaSetStatus {
            replicas,
            available_replicas: Some(available),
            ready_replicas: Some(available),
            ..Default::default()
        }),
    }
}

fn pct(s: &str) -> IntOrString {
    IntOrString::String(s.into())
}

#[test]
fn fenceposts_round_surge_up_and_unavailability_down() {
    assert_eq!(fenceposts(&deploy(10, pct("25%"), pct("25%"))), (3, 2));
    assert_eq!(fenceposts(&deploy(3, pct("25%"), pct("25%"))), (1, 0));
    assert_eq!(fenceposts(&deploy(3, IntOrString::Int(0), IntOrString::Int(0))), (0, 1), "both zero means one unavailable");
    assert_eq!(max_unavailable(&deploy(2, IntOrString::Int(0), IntOrString::Int(5))), 2, "capped at replicas");
}

#[test]
fn the_new_replicaset_grows_by_at_most_max_surge() {
    let d = deploy(3, IntOrString::Int(1), IntOrString::Int(0));
    let old = rs("old", 3, 3, 0);
    let new = rs("new", 0, 0, 1);
    assert_eq!(new_rs_new_replicas(&d, &[&old, &new], Some(&new)), 1);
    let grown = rs("new", 1, 0, 1);
    assert_eq!(new_rs_new_replicas(&d, &[&old, &grown], Some(&grown)), 1, "no room until an old pod goes");
    let shrunk = rs("old", 2, 2, 0);
    assert_eq!(new_rs_new_replicas(&d, &[&shrunk, &grown], Some(&grown)), 2);
}

#[test]
fn old_replicasets_shrink_only_while_availability_stays_above_the_minimum() {
    let d = deploy(3, IntOrString::Int(1), IntOrString::Int(0));
    let old = rs("old", 3, 3, 0);
    let new = rs("new", 1, 0, 1);
    assert_eq!(max_scaled_down(&d, &[&old, &new], Some(&new)), 0, "the new pod is not available yet");
    let new_ready = rs("new", 1, 1, 1);
    assert_eq!(max_scaled_down(&d, &[&old, &new_ready], Some(&new_ready)), 1);
    assert_eq!(rolling_scale_downs(&d, &[&old, &new_ready], &[&old]), vec![("old".to_string(), 2)]);
    let d = deploy(4, IntOrString::Int(0), IntOrString::Int(2));
    let a = rs("a", 4, 4, 0);
    assert_eq!(rolling_scale_downs(&d, &[&a], &[&a]), vec![("a".to_string(), 2)]);
}

#[test]
fn unhealthy_old_pods_are_cleaned_up_first() {
    let a = rs("a", 3, 1, 0);
    let b = rs("b", 2, 0, 1);
    assert_eq!(cleanup_unhealthy(&[&a, &b], 3), vec![("a".to_string(), 1), ("b".to_string(), 1)]);
}

#[test]
fn a_resize_mid_rollout_is_spread_proportionally() {
    let d = deploy(20, IntOrString::Int(3), IntOrString::Int(2));
    let mut a = rs("a", 8, 8, 0);
    let mut b = rs("b", 5, 5, 1);
    // sized for a deployment of 10 (+3 surge)
    set_replicas_annotations(&mut a, 10, 13);
    set_replicas_annotations(&mut b, 10, 13);
    let sizes = proportional_sizes(&d, &[&a, &b]);
    let total: i32 = sizes.iter().map(|(_, s)| s).sum();
    assert_eq!(total, 23);
    let size = |n: &str| sizes.iter().find(|(x, _)| x == n).unwrap().1;
    assert!(size("a") > size("b") && size("b") > 5, "{sizes:?}");
    assert!(is_scaling_event(&d, &[&a, &b]));
}

#[test]
fn template_hashes_ignore_the_hash_label_and_change_with_the_collision_count() {
    let t = PodTemplateSpec {
        metadata: Some(ObjectMeta { labels: Some([("app".to_string(), "web".to_string())].into()), ..Default::default() }),
        spec: None,
    };
    let h = compute_hash(&t, None);
    assert_eq!(h, compute_hash(&t, None));
    assert_ne!(h, compute_hash(&t, Some(1)));
    assert!(h.chars().all(|c| "bcdfghjklmnpqrstvwxz2456789".contains(c)));
    let mut labelled = t.clone();
    labelled.metadata.as_mut().unwrap().labels.as_mut().unwrap().insert(POD_TEMPLATE_HASH.into(), h);
    assert!(equal_ignore_hash(&t, &labelled));
    let mut other = t.clone();
    other.metadata.as_mut().unwrap().labels.as_mut().unwrap().insert("v".into(), "2".into());
    assert!(!equal_ignore_hash(&t, &other));
}

#[test]
fn annotations_carry_the_revision_and_replica_counts() {
    let mut d = deploy(3, IntOrString::Int(1), IntOrString::Int(0));
    d.metadata.annotations = Some([("kubernetes.io/change-cause".to_string(), "v2".to_string())].into());
    let mut r = rs("new", 0, 0, 0);
    assert!(set_new_rs_annotations(&d, &mut r, 2, false));
    let a = r.metadata.annotations.as_ref().unwrap();
    assert_eq!(a[REVISION], "2");
    assert_eq!(a[DESIRED_REPLICAS], "3");
    assert_eq!(a[MAX_REPLICAS], "4");
    assert_eq!(a["kubernetes.io/change-cause"], "v2");
    assert!(!set_new_rs_annotations(&d, &mut r, 2, true), "unchanged the second time");
    assert!(set_new_rs_annotations(&d, &mut r, 5, true));
    assert_eq!(revision(&r), 5);
}

#[test]
fn status_reports_progress_completion_and_timeouts() {
    let t = |s: i64| jiff::Timestamp::from_second(1_700_000_000 + s).unwrap();
    let d = deploy(3, IntOrString::Int(1), IntOrString::Int(0));
    let new = rs("web-abc", 3, 3, 0);
    let mut s = calculate_status(&d, &[&new], Some(&new), t(0));
    assert_eq!((s.replicas, s.updated_replicas, s.available_replicas, s.unavailable_replicas), (Some(3), Some(3), Some(3), Some(0)));
    assert_eq!(condition(&s, AVAILABLE).unwrap().reason.as_deref(), Some("MinimumReplicasAvailable"));
    update_progressing(&d, &mut s, Some("web-abc"), t(0));
    let p = condition(&s, PROGRESSING).unwrap();
    assert_eq!((p.status.as_str(), p.reason.as_deref()), ("True", Some(NEW_RS_AVAILABLE)));
    assert_eq!(p.message.as_deref(), Some("ReplicaSet \"web-abc\" has successfully progressed."));

    // A rollout that stops making progress times out after the deadline.
    let mut stuck = d.clone();
    let mut st = DeploymentStatus::default();
    set_condition(&mut st, new_condition(PROGRESSING, "True", RS_UPDATED, "x".into(), t(0)));
    st.replicas = Some(4);
    st.updated_replicas = Some(1);
    st.available_replicas = Some(3);
    st.ready_replicas = Some(3);
    stuck.status = Some(st);
    let half = rs("web-new", 1, 0, 1);
    let old = rs("web-old", 3, 3, 0);
    let mut s = calculate_status(&stuck, &[&old, &half], Some(&half), t(700));
    update_progressing(&stuck, &mut s, Some("web-new"), t(700));
    assert_eq!(condition(&s, PROGRESSING).unwrap().reason.as_deref(), Some(TIMED_OUT));
    let mut s = calculate_status(&stuck, &[&old, &half], Some(&half), t(100));
    update_progressing(&stuck, &mut s, Some("web-new"), t(100));
    assert_eq!(condition(&s, PROGRESSING).unwrap().reason.as_deref(), Some(RS_UPDATED));
}
