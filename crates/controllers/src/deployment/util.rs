//! The deployment controller's pure parts (upstream `pkg/controller/deployment/util`):
//! template hashing, revision bookkeeping, rolling-update arithmetic, proportional scaling,
//! and the status and conditions a Deployment reports.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{Deployment, DeploymentCondition, DeploymentStatus, ReplicaSet};
use k8s_openapi::api::core::v1::PodTemplateSpec;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

pub const POD_TEMPLATE_HASH: &str = "pod-template-hash";
pub const REVISION: &str = "deployment.kubernetes.io/revision";
pub const REVISION_HISTORY: &str = "deployment.kubernetes.io/revision-history";
pub const DESIRED_REPLICAS: &str = "deployment.kubernetes.io/desired-replicas";
pub const MAX_REPLICAS: &str = "deployment.kubernetes.io/max-replicas";
const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";
const ROLLBACK_TO: &str = "deprecated.deployment.rollback.to";

pub const PROGRESSING: &str = "Progressing";
pub const AVAILABLE: &str = "Available";
pub const REPLICA_FAILURE: &str = "ReplicaFailure";
pub const NEW_RS_AVAILABLE: &str = "NewReplicaSetAvailable";
pub const RS_UPDATED: &str = "ReplicaSetUpdated";
pub const TIMED_OUT: &str = "ProgressDeadlineExceeded";
pub const PAUSED: &str = "DeploymentPaused";
pub const RESUMED: &str = "DeploymentResumed";
pub const NEW_RS_CREATED: &str = "NewReplicaSetCreated";
pub const FOUND_NEW_RS: &str = "FoundNewReplicaSet";

pub fn replicas(d: &Deployment) -> i32 {
    d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1)
}

pub fn rs_replicas(rs: &ReplicaSet) -> i32 {
    rs.spec.as_ref().and_then(|s| s.replicas).unwrap_or(0)
}

fn rs_status<T: Default>(rs: &ReplicaSet, f: impl Fn(&k8s_openapi::api::apps::v1::ReplicaSetStatus) -> T) -> T {
    rs.status.as_ref().map(f).unwrap_or_default()
}

pub fn rs_available(rs: &ReplicaSet) -> i32 {
    rs_status(rs, |s| s.available_replicas.unwrap_or(0))
}

pub fn rs_actual(rs: &ReplicaSet) -> i32 {
    rs_status(rs, |s| s.replicas)
}

fn rs_ready(rs: &ReplicaSet) -> i32 {
    rs_status(rs, |s| s.ready_replicas.unwrap_or(0))
}

pub fn is_recreate(d: &Deployment) -> bool {
    d.spec.as_ref().and_then(|s| s.strategy.as_ref()).and_then(|s| s.type_.as_deref()) == Some("Recreate")
}

pub fn is_paused(d: &Deployment) -> bool {
    d.spec.as_ref().and_then(|s| s.paused).unwrap_or(false)
}

pub fn progress_deadline_secs(d: &Deployment) -> Option<i64> {
    let secs = d.spec.as_ref()?.progress_deadline_seconds?;
    // upstream: MaxInt32 means "no deadline"
    (secs != i32::MAX).then_some(i64::from(secs))
}

/// FNV-1a, 32 bits.
fn fnv32a(bytes: &[u8], mut hash: u32) -> u32 {
    for b in bytes {
        hash ^= u32::from(*b);
        hash = hash.wrapping_mul(0x0100_0193);
    }
    hash
}

/// The pod-template-hash of a template (upstream `ComputeHash`: FNV-1a of the template,
/// salted with the collision count, written with `SafeEncodeString`'s alphabet). The bytes
/// hashed are the template's JSON rather than Go's object dump, so the value differs from
/// upstream's but is as stable.
pub fn compute_hash(template: &PodTemplateSpec, collision_count: Option<i32>) -> String {
    let json = serde_json::to_vec(template).unwrap_or_default();
    let mut hash = fnv32a(&json, 0x811c_9dc5);
    if let Some(c) = collision_count {
        hash = fnv32a(&c.to_le_bytes(), hash);
    }
    const ALPHANUMS: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    hash.to_string().bytes().map(|b| ALPHANUMS[usize::from(b) % ALPHANUMS.len()] as char).collect()
}

/// Whether two templates are equal once the pod-template-hash label is ignored (upstream
/// `EqualIgnoreHash`).
pub fn equal_ignore_hash(a: &PodTemplateSpec, b: &PodTemplateSpec) -> bool {
    let strip = |t: &PodTemplateSpec| {
        let mut t = t.clone();
        if let Some(labels) = t.metadata.as_mut().and_then(|m| m.labels.as_mut()) {
            labels.remove(POD_TEMPLATE_HASH);
        }
        let mut v = serde_json::to_value(t).unwrap_or_default();
        if v["metadata"]["labels"].as_object().is_some_and(|l| l.is_empty()) {
            v["metadata"].as_object_mut().map(|m| m.remove("labels"));
        }
        v
    };
    strip(a) == strip(b)
}

/// The ReplicaSet whose template is the Deployment's (the oldest, if several), upstream
/// `FindNewReplicaSet`; `rss` must be sorted oldest first.
pub fn find_new<'a>(d: &Deployment, rss: &'a [ReplicaSet]) -> Option<&'a ReplicaSet> {
    let template = &d.spec.as_ref()?.template;
    rss.iter().find(|rs| rs.spec.as_ref().and_then(|s| s.template.as_ref()).is_some_and(|t| equal_ignore_hash(t, template)))
}

pub fn revision(rs: &ReplicaSet) -> i64 {
    rs.metadata.annotations.as_ref().and_then(|a| a.get(REVISION)).and_then(|v| v.parse().ok()).unwrap_or(0)
}

fn annotation_i32(rs: &ReplicaSet, key: &str) -> Option<i32> {
    rs.metadata.annotations.as_ref()?.get(key)?.parse().ok()
}

pub fn max_revision(rss: &[ReplicaSet]) -> i64 {
    rss.iter().map(revision).max().unwrap_or(0)
}

/// Percent or absolute value against `total` (upstream `GetScaledValueFromIntOrPercent`).
fn scaled(v: Option<&IntOrString>, default: &str, total: i32, round_up: bool) -> i32 {
    match v {
        Some(IntOrString::Int(i)) => *i,
        Some(IntOrString::String(s)) => percent(s, total, round_up),
        None => percent(default, total, round_up),
    }
}

fn percent(s: &str, total: i32, round_up: bool) -> i32 {
    let Some(p) = s.strip_suffix('%').and_then(|p| p.parse::<i64>().ok()) else { return 0 };
    let v = p * i64::from(total);
    (if round_up { (v + 99).div_euclid(100) } else { v.div_euclid(100) }) as i32
}

/// (maxSurge, maxUnavailable) resolved against the desired replicas (upstream
/// `ResolveFenceposts`: surge rounds up, unavailability down, and both 0 means 1
/// unavailable). Recreate has neither.
pub fn fenceposts(d: &Deployment) -> (i32, i32) {
    if is_recreate(d) {
        return (0, 0);
    }
    let ru = d.spec.as_ref().and_then(|s| s.strategy.as_ref()).and_then(|s| s.rolling_update.as_ref());
    let desired = replicas(d);
    let surge = scaled(ru.and_then(|r| r.max_surge.as_ref()), "25%", desired, true);
    let unavailable = scaled(ru.and_then(|r| r.max_unavailable.as_ref()), "25%", desired, false);
    if surge == 0 && unavailable == 0 {
        return (0, 1);
    }
    (surge, unavailable)
}

/// Upstream `MaxUnavailable`: capped at the desired replicas.
pub fn max_unavailable(d: &Deployment) -> i32 {
    if is_recreate(d) || replicas(d) == 0 {
        return 0;
    }
    fenceposts(d).1.min(replicas(d))
}

pub fn max_surge(d: &Deployment) -> i32 {
    if is_recreate(d) { 0 } else { fenceposts(d).0 }
}

/// The size the new ReplicaSet may grow to now (upstream `NewRSNewReplicas`).
pub fn new_rs_new_replicas(d: &Deployment, all: &[&ReplicaSet], new_rs: Option<&ReplicaSet>) -> i32 {
    let current_new = new_rs.map(rs_replicas).unwrap_or(0);
    if is_recreate(d) {
        return replicas(d);
    }
    let current: i32 = all.iter().map(|rs| rs_replicas(rs)).sum();
    let max_total = replicas(d) + max_surge(d);
    if current >= max_total {
        return current_new;
    }
    let up = (max_total - current).min(replicas(d) - current_new);
    current_new + up.max(0)
}

/// Old ReplicaSets' unavailable pods that may go at once (upstream
/// `cleanupUnhealthyReplicas`): `(name, new size)` for each ReplicaSet to shrink, oldest first.
pub fn cleanup_unhealthy(old_sorted: &[&ReplicaSet], max_cleanup: i32) -> Vec<(String, i32)> {
    let mut total = 0;
    let mut out = Vec::new();
    for rs in old_sorted {
        if total >= max_cleanup {
            break;
        }
        let size = rs_replicas(rs);
        let unhealthy = size - rs_available(rs);
        if size == 0 || unhealthy <= 0 {
            continue;
        }
        let down = (max_cleanup - total).min(unhealthy);
        out.push((rs.metadata.name.clone().unwrap_or_default(), size - down));
        total += down;
    }
    out
}

/// How far the old ReplicaSets may shrink now (upstream `reconcileOldReplicaSets`' bound).
pub fn max_scaled_down(d: &Deployment, all: &[&ReplicaSet], new_rs: Option<&ReplicaSet>) -> i32 {
    let all_pods: i32 = all.iter().map(|rs| rs_replicas(rs)).sum();
    let min_available = replicas(d) - max_unavailable(d);
    let new_unavailable = new_rs.map(|rs| rs_replicas(rs) - rs_available(rs)).unwrap_or(0);
    all_pods - min_available - new_unavailable
}

/// Scale-downs of old ReplicaSets that keep availability at or above the minimum (upstream
/// `scaleDownOldReplicaSetsForRollingUpdate`), oldest first.
pub fn rolling_scale_downs(d: &Deployment, all: &[&ReplicaSet], old_sorted: &[&ReplicaSet]) -> Vec<(String, i32)> {
    let min_available = replicas(d) - max_unavailable(d);
    let available: i32 = all.iter().map(|rs| rs_available(rs)).sum();
    if available <= min_available {
        return Vec::new();
    }
    let budget = available - min_available;
    let mut total = 0;
    let mut out = Vec::new();
    for rs in old_sorted {
        if total >= budget {
            break;
        }
        let size = rs_replicas(rs);
        if size == 0 {
            continue;
        }
        let down = size.min(budget - total);
        out.push((rs.metadata.name.clone().unwrap_or_default(), size - down));
        total += down;
    }
    out
}

/// New sizes when a Deployment is resized mid-rollout (upstream `scale`'s proportional
/// branch): the replicas to add or remove are spread over the active ReplicaSets in
/// proportion to their size, the remainder going to the largest. `active` must be the
/// ReplicaSets with replicas > 0.
pub fn proportional_sizes(d: &Deployment, active: &[&ReplicaSet]) -> Vec<(String, i32)> {
    let current: i32 = active.iter().map(|rs| rs_replicas(rs)).sum();
    let allowed = if replicas(d) > 0 { replicas(d) + max_surge(d) } else { 0 };
    let to_add = allowed - current;
    let mut sorted: Vec<&ReplicaSet> = active.to_vec();
    // Largest first; ties: newer first when adding, older first when removing.
    sorted.sort_by(|a, b| {
        rs_replicas(b).cmp(&rs_replicas(a)).then_with(|| {
            let (ta, tb) = (&a.metadata.creation_timestamp, &b.metadata.creation_timestamp);
            if to_add > 0 { tb.cmp(ta) } else { ta.cmp(tb) }
        })
    });
    let mut added = 0;
    let mut sizes: Vec<(String, i32)> = Vec::new();
    for rs in &sorted {
        let size = rs_replicas(rs);
        let mut proportion = 0;
        if to_add != 0 && size != 0 && to_add != added {
            let fraction = replica_set_fraction(rs, d);
            let allowed = to_add - added;
            proportion = if to_add > 0 { fraction.min(allowed) } else { fraction.max(allowed) };
        }
        added += proportion;
        sizes.push((rs.metadata.name.clone().unwrap_or_default(), size + proportion));
    }
    if let Some(first) = sizes.first_mut() {
        first.1 = (first.1 + to_add - added).max(0);
    }
    sizes
}

/// Upstream `getReplicaSetFraction`.
fn replica_set_fraction(rs: &ReplicaSet, d: &Deployment) -> i32 {
    if replicas(d) == 0 {
        return -rs_replicas(rs);
    }
    let deployment_replicas = replicas(d) + max_surge(d);
    let annotated = annotation_i32(rs, MAX_REPLICAS)
        .unwrap_or_else(|| d.status.as_ref().and_then(|s| s.replicas).unwrap_or(0));
    if annotated == 0 {
        return 0;
    }
    let new_size = f64::from(rs_replicas(rs) * deployment_replicas) / f64::from(annotated);
    new_size.round() as i32 - rs_replicas(rs)
}

/// Whether the Deployment was resized since its active ReplicaSets were last sized
/// (upstream `isScalingEvent`: a desired-replicas annotation differs from spec.replicas).
pub fn is_scaling_event(d: &Deployment, active: &[&ReplicaSet]) -> bool {
    active.iter().any(|rs| annotation_i32(rs, DESIRED_REPLICAS).is_some_and(|v| v != replicas(d)))
}

/// The desired-replicas and max-replicas annotations (upstream `SetReplicasAnnotations`);
/// `true` when they changed.
pub fn set_replicas_annotations(rs: &mut ReplicaSet, desired: i32, max: i32) -> bool {
    let annotations = rs.metadata.annotations.get_or_insert_with(BTreeMap::new);
    let mut changed = false;
    for (k, v) in [(DESIRED_REPLICAS, desired), (MAX_REPLICAS, max)] {
        if annotations.get(k).map(String::as_str) != Some(v.to_string().as_str()) {
            annotations.insert(k.into(), v.to_string());
            changed = true;
        }
    }
    changed
}

/// Copies the Deployment's annotations to its new ReplicaSet and raises the ReplicaSet's
/// revision to `new_revision` (upstream `SetNewReplicaSetAnnotations`); on a new ReplicaSet
/// also sets the replicas annotations. `true` when anything changed.
pub fn set_new_rs_annotations(d: &Deployment, rs: &mut ReplicaSet, new_revision: i64, exists: bool) -> bool {
    let skip = [LAST_APPLIED, REVISION, REVISION_HISTORY, DESIRED_REPLICAS, MAX_REPLICAS, ROLLBACK_TO];
    let annotations = rs.metadata.annotations.get_or_insert_with(BTreeMap::new);
    let mut changed = false;
    for (k, v) in d.metadata.annotations.iter().flatten() {
        if skip.contains(&k.as_str()) || annotations.get(k) == Some(v) {
            continue;
        }
        annotations.insert(k.clone(), v.clone());
        changed = true;
    }
    let old: i64 = annotations.get(REVISION).and_then(|v| v.parse().ok()).unwrap_or(0);
    if old < new_revision {
        annotations.insert(REVISION.into(), new_revision.to_string());
        changed = true;
    }
    if !exists {
        changed |= set_replicas_annotations(rs, replicas(d), replicas(d) + max_surge(d));
    }
    changed
}

pub fn condition<'a>(status: &'a DeploymentStatus, type_: &str) -> Option<&'a DeploymentCondition> {
    status.conditions.as_ref()?.iter().find(|c| c.type_ == type_)
}

pub fn new_condition(type_: &str, status: &str, reason: &str, message: String, now: jiff::Timestamp) -> DeploymentCondition {
    DeploymentCondition {
        type_: type_.into(),
        status: status.into(),
        reason: Some(reason.into()),
        message: Some(message),
        last_update_time: Some(Time(now)),
        last_transition_time: Some(Time(now)),
    }
}

/// Upstream `SetDeploymentCondition`: the same status and reason leaves the condition as it
/// is; the same status keeps its transition time.
pub fn set_condition(status: &mut DeploymentStatus, mut cond: DeploymentCondition) {
    let conditions = status.conditions.get_or_insert_with(Vec::new);
    if let Some(existing) = conditions.iter().find(|c| c.type_ == cond.type_) {
        if existing.status == cond.status && existing.reason == cond.reason {
            return;
        }
        if existing.status == cond.status {
            cond.last_transition_time = existing.last_transition_time.clone();
        }
    }
    conditions.retain(|c| c.type_ != cond.type_);
    conditions.push(cond);
}

pub fn remove_condition(status: &mut DeploymentStatus, type_: &str) {
    if let Some(c) = status.conditions.as_mut() {
        c.retain(|c| c.type_ != type_);
    }
}

/// The status the ReplicaSets give (upstream `calculateStatus`), with the Available
/// condition; other conditions are carried over from the Deployment.
pub fn calculate_status(d: &Deployment, all: &[&ReplicaSet], new_rs: Option<&ReplicaSet>, now: jiff::Timestamp) -> DeploymentStatus {
    let available: i32 = all.iter().map(|rs| rs_available(rs)).sum();
    let total: i32 = all.iter().map(|rs| rs_replicas(rs)).sum();
    let old = d.status.clone().unwrap_or_default();
    let mut status = DeploymentStatus {
        observed_generation: d.metadata.generation,
        replicas: Some(all.iter().map(|rs| rs_actual(rs)).sum()),
        updated_replicas: Some(new_rs.map(rs_actual).unwrap_or(0)),
        ready_replicas: Some(all.iter().map(|rs| rs_ready(rs)).sum()),
        available_replicas: Some(available),
        unavailable_replicas: Some((total - available).max(0)),
        collision_count: old.collision_count,
        conditions: old.conditions.clone(),
        terminating_replicas: None,
    };
    let cond = if available >= replicas(d) - max_unavailable(d) {
        new_condition(AVAILABLE, "True", "MinimumReplicasAvailable", "Deployment has minimum availability.".into(), now)
    } else {
        new_condition(AVAILABLE, "False", "MinimumReplicasUnavailable", "Deployment does not have minimum availability.".into(), now)
    };
    set_condition(&mut status, cond);
    status
}

/// Upstream `DeploymentComplete`.
pub fn is_complete(d: &Deployment, s: &DeploymentStatus) -> bool {
    let want = replicas(d);
    s.updated_replicas == Some(want)
        && s.replicas == Some(want)
        && s.available_replicas == Some(want)
        && s.observed_generation >= d.metadata.generation
}

/// Upstream `DeploymentProgressing`: more updated, ready or available pods, or fewer old ones.
pub fn is_progressing(d: &Deployment, new: &DeploymentStatus) -> bool {
    let old = d.status.clone().unwrap_or_default();
    let n = |v: Option<i32>| v.unwrap_or(0);
    let old_old = n(old.replicas) - n(old.updated_replicas);
    let new_old = n(new.replicas) - n(new.updated_replicas);
    n(new.updated_replicas) > n(old.updated_replicas)
        || new_old < old_old
        || n(new.ready_replicas) > n(old.ready_replicas)
        || n(new.available_replicas) > n(old.available_replicas)
}

/// When the progress deadline of the current Progressing condition passes, if it is running.
pub fn progress_deadline(d: &Deployment, status: &DeploymentStatus) -> Option<jiff::Timestamp> {
    let secs = progress_deadline_secs(d)?;
    let cond = condition(status, PROGRESSING)?;
    if matches!(cond.reason.as_deref(), Some(NEW_RS_AVAILABLE | TIMED_OUT)) {
        return None;
    }
    cond.last_update_time.as_ref()?.0.checked_add(jiff::SignedDuration::from_secs(secs)).ok()
}

/// Upstream `DeploymentTimedOut`.
pub fn is_timed_out(d: &Deployment, status: &DeploymentStatus, now: jiff::Timestamp) -> bool {
    if condition(status, PROGRESSING).and_then(|c| c.reason.as_deref()) == Some(TIMED_OUT) {
        return true;
    }
    progress_deadline(d, status).is_some_and(|deadline| now > deadline)
}

/// The Progressing condition after this sync (upstream `syncRolloutStatus`); `new_status`
/// already has the Available condition.
pub fn update_progressing(d: &Deployment, new_status: &mut DeploymentStatus, new_rs: Option<&str>, now: jiff::Timestamp) {
    if progress_deadline_secs(d).is_none() {
        remove_condition(new_status, PROGRESSING);
        return;
    }
    let current = condition(new_status, PROGRESSING).cloned();
    let complete_already = new_status.replicas == new_status.updated_replicas
        && current.as_ref().and_then(|c| c.reason.as_deref()) == Some(NEW_RS_AVAILABLE);
    if complete_already {
        return;
    }
    let rs_text = |s: &str| match new_rs {
        Some(name) => format!("ReplicaSet {name:?} {s}"),
        None => format!("Deployment {:?} {s}", d.metadata.name.as_deref().unwrap_or_default()),
    };
    if is_complete(d, new_status) {
        set_condition(new_status, new_condition(PROGRESSING, "True", NEW_RS_AVAILABLE, rs_text("has successfully progressed."), now));
    } else if is_progressing(d, new_status) {
        let mut cond = new_condition(PROGRESSING, "True", RS_UPDATED, rs_text("is progressing."), now);
        if let Some(c) = current.filter(|c| c.status == "True") {
            cond.last_transition_time = c.last_transition_time;
        }
        remove_condition(new_status, PROGRESSING);
        set_condition(new_status, cond);
    } else if is_timed_out(d, new_status, now) {
        set_condition(new_status, new_condition(PROGRESSING, "False", TIMED_OUT, rs_text("has timed out progressing."), now));
    }
}

#[cfg(test)]
mod tests;
