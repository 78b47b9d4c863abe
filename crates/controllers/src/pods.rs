//! Pod facts controllers decide on (upstream `podutil` and `controller_utils.go`): active,
//! ready, available, and the order in which a ReplicaSet deletes surplus pods.

use std::cmp::Ordering;
use std::collections::HashMap;
use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

/// Upstream `PodDeletionCost` annotation.
pub const DELETION_COST_ANNOTATION: &str = "controller.kubernetes.io/pod-deletion-cost";

fn phase(pod: &Pod) -> &str {
    pod.status.as_ref().and_then(|s| s.phase.as_deref()).unwrap_or("")
}

/// Not finished and not being deleted (upstream `IsPodActive`).
pub fn is_active(pod: &Pod) -> bool {
    !matches!(phase(pod), "Succeeded" | "Failed") && pod.metadata.deletion_timestamp.is_none()
}

/// Being deleted (`deletionTimestamp` set).
pub fn is_terminating(pod: &Pod) -> bool {
    pod.metadata.deletion_timestamp.is_some()
}

fn ready_condition(pod: &Pod) -> Option<&k8s_openapi::api::core::v1::PodCondition> {
    pod.status.as_ref()?.conditions.as_ref()?.iter().find(|c| c.type_ == "Ready")
}

/// The Ready condition is True.
pub fn is_ready(pod: &Pod) -> bool {
    ready_condition(pod).is_some_and(|c| c.status == "True")
}

/// When the pod last became ready (the Ready condition's lastTransitionTime), if ready.
pub fn ready_since(pod: &Pod) -> Option<jiff::Timestamp> {
    ready_condition(pod).filter(|c| c.status == "True").and_then(|c| c.last_transition_time.as_ref()).map(|t| t.0)
}

/// Ready for at least `min_ready` at `now` (upstream `IsPodAvailable`).
pub fn is_available(pod: &Pod, min_ready: Duration, now: jiff::Timestamp) -> bool {
    if !is_ready(pod) {
        return false;
    }
    if min_ready.is_zero() {
        return true;
    }
    let Some(since) = ready_since(pod) else { return false };
    let min = jiff::SignedDuration::try_from(min_ready).unwrap_or(jiff::SignedDuration::MAX);
    since.checked_add(min).is_ok_and(|t| t <= now)
}

fn phase_rank(pod: &Pod) -> u8 {
    match phase(pod) {
        "Pending" | "" => 0,
        "Unknown" => 1,
        "Running" => 2,
        _ => 3,
    }
}

fn deletion_cost(pod: &Pod) -> i32 {
    pod.metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(DELETION_COST_ANNOTATION))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

fn max_restarts(pod: &Pod) -> i32 {
    pod.status
        .as_ref()
        .and_then(|s| s.container_statuses.as_ref())
        .and_then(|cs| cs.iter().map(|c| c.restart_count).max())
        .unwrap_or(0)
}

/// Upstream `logarithmicRankDiff`: compares the ages' base-2 logarithms (in nanoseconds), so
/// pods of about the same age rank the same.
fn log_rank_diff(t1: jiff::Timestamp, t2: jiff::Timestamp, now: jiff::Timestamp) -> i64 {
    let rank = |t: jiff::Timestamp| {
        let d = now.duration_since(t).as_nanos();
        if d > 0 { (d as f64).log2() as i64 } else { -1 }
    };
    rank(t1) - rank(t2)
}

/// Later (younger) first; a missing time first of all (upstream `afterOrZero` with the
/// logarithmic scale-down comparison).
fn newer_first(a: Option<jiff::Timestamp>, b: Option<jiff::Timestamp>, now: jiff::Timestamp, uids: (&str, &str)) -> Ordering {
    match (a, b) {
        (None, None) => Ordering::Equal,
        (None, Some(_)) => Ordering::Less,
        (Some(_), None) => Ordering::Greater,
        (Some(a), Some(b)) if a == b => Ordering::Equal,
        (Some(a), Some(b)) => match log_rank_diff(a, b, now) {
            0 => uids.0.cmp(uids.1),
            d if d < 0 => Ordering::Less,
            _ => Ordering::Greater,
        },
    }
}

/// The order in which surplus pods are deleted, first to delete first (upstream
/// `ActivePodsWithRanks.Less`): unassigned before assigned; Pending before Unknown before
/// Running; not ready before ready; lower `pod-deletion-cost` first; more pods of the same
/// owner on the node (higher `rank`) first; ready more recently first; more container
/// restarts first; created more recently first.
pub fn deletion_order(a: (&Pod, usize), b: (&Pod, usize), now: jiff::Timestamp) -> Ordering {
    let ((a, rank_a), (b, rank_b)) = (a, b);
    let assigned = |p: &Pod| p.spec.as_ref().and_then(|s| s.node_name.as_deref()).is_some_and(|n| !n.is_empty());
    let uids = (a.metadata.uid.as_deref().unwrap_or(""), b.metadata.uid.as_deref().unwrap_or(""));
    assigned(a)
        .cmp(&assigned(b))
        .then_with(|| phase_rank(a).cmp(&phase_rank(b)))
        .then_with(|| is_ready(a).cmp(&is_ready(b)))
        .then_with(|| deletion_cost(a).cmp(&deletion_cost(b)))
        .then_with(|| rank_b.cmp(&rank_a))
        .then_with(|| {
            if is_ready(a) && is_ready(b) {
                newer_first(ready_since(a), ready_since(b), now, uids)
            } else {
                Ordering::Equal
            }
        })
        .then_with(|| max_restarts(b).cmp(&max_restarts(a)))
        .then_with(|| {
            let created = |p: &Pod| p.metadata.creation_timestamp.as_ref().map(|t: &Time| t.0);
            newer_first(created(a), created(b), now, uids)
        })
}

/// The `count` pods to delete from `pods` (upstream `getPodsToDelete`): ranked by how many
/// of `related` pods share their node, then ordered by [`deletion_order`].
pub fn pods_to_delete<'a>(pods: &[&'a Pod], related: &[&Pod], count: usize, now: jiff::Timestamp) -> Vec<&'a Pod> {
    if count >= pods.len() {
        return pods.to_vec();
    }
    let mut on_node: HashMap<&str, usize> = HashMap::new();
    for p in related.iter().filter(|p| is_active(p)) {
        if let Some(node) = p.spec.as_ref().and_then(|s| s.node_name.as_deref()).filter(|n| !n.is_empty()) {
            *on_node.entry(node).or_default() += 1;
        }
    }
    let mut ranked: Vec<(&'a Pod, usize)> = pods
        .iter()
        .map(|p| {
            let node = p.spec.as_ref().and_then(|s| s.node_name.as_deref()).unwrap_or("");
            (*p, if node.is_empty() { 0 } else { on_node.get(node).copied().unwrap_or(0) })
        })
        .collect();
    ranked.sort_by(|a, b| deletion_order(*a, *b, now));
    ranked.into_iter().take(count).map(|(p, _)| p).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{PodCondition, PodSpec, PodStatus};

    fn t(secs: i64) -> jiff::Timestamp {
        jiff::Timestamp::from_second(1_700_000_000 + secs).unwrap()
    }

    fn pod(name: &str, node: &str, phase: &str, ready_at: Option<i64>, created: i64) -> Pod {
        let mut p = Pod::default();
        p.metadata.name = Some(name.into());
        p.metadata.uid = Some(format!("uid-{name}"));
        p.metadata.creation_timestamp = Some(Time(t(created)));
        p.spec = Some(PodSpec { node_name: (!node.is_empty()).then(|| node.into()), ..Default::default() });
        let conditions = ready_at.map(|at| {
            vec![PodCondition {
                type_: "Ready".into(),
                status: "True".into(),
                last_transition_time: Some(Time(t(at))),
                ..Default::default()
            }]
        });
        p.status = Some(PodStatus { phase: Some(phase.into()), conditions, ..Default::default() });
        p
    }

    fn names(pods: &[&Pod]) -> Vec<String> {
        pods.iter().map(|p| p.metadata.name.clone().unwrap()).collect()
    }

    #[test]
    fn scale_down_deletes_unassigned_then_pending_then_unready_pods_first() {
        let unassigned = pod("unassigned", "", "Pending", None, 0);
        let pending = pod("pending", "n1", "Pending", None, 0);
        let unknown = pod("unknown", "n1", "Unknown", None, 0);
        let unready = pod("unready", "n1", "Running", None, 0);
        let ready = pod("ready", "n1", "Running", Some(10), 0);
        let all = [&ready, &unready, &unknown, &pending, &unassigned];
        let order = pods_to_delete(&all, &all, 4, t(1000));
        assert_eq!(names(&order), ["unassigned", "pending", "unknown", "unready"]);
    }

    #[test]
    fn doubled_up_pods_and_recently_ready_pods_go_first() {
        let a = pod("alone", "n1", "Running", Some(0), 0);
        let b1 = pod("b1", "n2", "Running", Some(0), 0);
        let b2 = pod("b2", "n2", "Running", Some(0), 0);
        let all = [&a, &b1, &b2];
        let order = pods_to_delete(&all, &all, 1, t(100_000));
        assert_ne!(names(&order), ["alone"], "a pod sharing its node goes before a lone one");
        let old = pod("old", "n1", "Running", Some(0), 0);
        let young = pod("young", "n2", "Running", Some(90_000), 0);
        let order = pods_to_delete(&[&old, &young], &[], 1, t(100_000));
        assert_eq!(names(&order), ["young"]);
    }

    #[test]
    fn deletion_cost_overrides_readiness_age() {
        let mut cheap = pod("cheap", "n1", "Running", Some(0), 0);
        cheap.metadata.annotations = Some([(DELETION_COST_ANNOTATION.to_string(), "-5".to_string())].into());
        let young = pod("young", "n2", "Running", Some(90_000), 0);
        let order = pods_to_delete(&[&young, &cheap], &[], 1, t(100_000));
        assert_eq!(names(&order), ["cheap"]);
    }

    #[test]
    fn availability_needs_min_ready_seconds_of_readiness() {
        let p = pod("p", "n1", "Running", Some(0), 0);
        assert!(is_available(&p, Duration::ZERO, t(0)));
        assert!(!is_available(&p, Duration::from_secs(10), t(5)));
        assert!(is_available(&p, Duration::from_secs(10), t(10)));
        let unready = pod("u", "n1", "Running", None, 0);
        assert!(!is_available(&unready, Duration::ZERO, t(0)));
    }
}
