//! The DaemonSet controller's decisions, pure over cached objects (upstream
//! `pkg/controller/daemon/{daemon_controller,update}.go` and `daemon/util`): which nodes
//! should run a daemon pod, which pods to create and delete, what a rolling update replaces,
//! and the status.

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::api::apps::v1::{DaemonSet, DaemonSetStatus};
use k8s_openapi::api::core::v1::{
    Affinity, Node, NodeAffinity, NodeSelector, NodeSelectorRequirement, NodeSelectorTerm, Pod, PodSpec, Taint, Toleration,
};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use crate::history::CONTROLLER_REVISION_HASH;
use crate::pods;

/// The deprecated label upstream still puts on daemon pods.
pub const POD_TEMPLATE_GENERATION: &str = "pod-template-generation";

/// Upstream `AddOrUpdateDaemonPodTolerations`: daemon pods tolerate the node conditions a
/// DaemonSet must run through (not-ready and unreachable without a time limit; pressure,
/// unschedulable and, for host-network pods, network-unavailable).
pub fn add_default_tolerations(spec: &mut PodSpec) {
    let mut wanted = vec![
        ("node.kubernetes.io/not-ready", "NoExecute"),
        ("node.kubernetes.io/unreachable", "NoExecute"),
        ("node.kubernetes.io/disk-pressure", "NoSchedule"),
        ("node.kubernetes.io/memory-pressure", "NoSchedule"),
        ("node.kubernetes.io/pid-pressure", "NoSchedule"),
        ("node.kubernetes.io/unschedulable", "NoSchedule"),
    ];
    if spec.host_network == Some(true) {
        wanted.push(("node.kubernetes.io/network-unavailable", "NoSchedule"));
    }
    let tolerations = spec.tolerations.get_or_insert_with(Vec::new);
    for (key, effect) in wanted {
        let t = Toleration { key: Some(key.into()), operator: Some("Exists".into()), effect: Some(effect.into()), ..Default::default() };
        // As upstream's AddOrUpdateTolerationInPodSpec: an existing toleration for the same
        // key and effect is replaced (dropping its tolerationSeconds).
        match tolerations.iter_mut().find(|o| o.key.as_deref() == Some(key) && o.effect.as_deref() == Some(effect)) {
            Some(existing) => *existing = t,
            None => tolerations.push(t),
        }
    }
}

/// `Toleration.ToleratesTaint` from k8s.io/api/core/v1.
pub fn tolerates(t: &Toleration, taint: &Taint) -> bool {
    if t.effect.as_deref().is_some_and(|e| !e.is_empty() && e != taint.effect) {
        return false;
    }
    let key = t.key.as_deref().unwrap_or_default();
    if !key.is_empty() && key != taint.key {
        return false;
    }
    match t.operator.as_deref().unwrap_or("Equal") {
        "Exists" => true,
        "Equal" | "" => t.value.as_deref().unwrap_or_default() == taint.value.as_deref().unwrap_or_default(),
        _ => false,
    }
}

fn requirement_matches(r: &NodeSelectorRequirement, value: Option<&String>) -> bool {
    let values = r.values.as_deref().unwrap_or_default();
    match r.operator.as_str() {
        "In" => value.is_some_and(|v| values.contains(v)),
        "NotIn" => value.is_none_or(|v| !values.contains(v)),
        "Exists" => value.is_some(),
        "DoesNotExist" => value.is_none(),
        "Gt" | "Lt" => match (value.and_then(|v| v.parse::<i64>().ok()), values.first().and_then(|b| b.parse::<i64>().ok())) {
            (Some(v), Some(b)) => if r.operator == "Gt" { v > b } else { v < b },
            _ => false,
        },
        _ => false,
    }
}

fn term_matches(term: &NodeSelectorTerm, node: &Node) -> bool {
    let empty = BTreeMap::new();
    let labels = node.metadata.labels.as_ref().unwrap_or(&empty);
    let exprs = term.match_expressions.as_deref().unwrap_or_default();
    let fields = term.match_fields.as_deref().unwrap_or_default();
    if exprs.is_empty() && fields.is_empty() {
        return false;
    }
    exprs.iter().all(|r| requirement_matches(r, labels.get(&r.key)))
        && fields.iter().all(|r| r.key == "metadata.name" && requirement_matches(r, node.metadata.name.as_ref()))
}

/// Whether the daemon pod (with the default tolerations) may be placed on `node`, and
/// whether one already there may stay (upstream `NodeShouldRunDaemonPod`): node name,
/// nodeSelector and required node affinity must match; an untolerated NoSchedule or
/// NoExecute taint stops new pods, and only an untolerated NoExecute one evicts.
pub fn should_run(spec: &PodSpec, node: &Node) -> (bool, bool) {
    let name = node.metadata.name.as_deref().unwrap_or_default();
    if spec.node_name.as_deref().is_some_and(|n| !n.is_empty() && n != name) {
        return (false, false);
    }
    let empty = BTreeMap::new();
    let labels = node.metadata.labels.as_ref().unwrap_or(&empty);
    if !spec.node_selector.iter().flatten().all(|(k, v)| labels.get(k) == Some(v)) {
        return (false, false);
    }
    let required = spec.affinity.as_ref().and_then(|a| a.node_affinity.as_ref()).and_then(|a| a.required_during_scheduling_ignored_during_execution.as_ref());
    if required.is_some_and(|r| !r.node_selector_terms.iter().any(|t| term_matches(t, node))) {
        return (false, false);
    }
    let mut spec = spec.clone();
    add_default_tolerations(&mut spec);
    let tolerations = spec.tolerations.unwrap_or_default();
    let untolerated = |effect: &str| {
        node.spec.as_ref().and_then(|s| s.taints.as_ref()).into_iter().flatten().any(|taint| taint.effect == effect && !tolerations.iter().any(|t| tolerates(t, taint)))
    };
    match (untolerated("NoSchedule"), untolerated("NoExecute")) {
        (false, false) => (true, true),
        (_, no_execute) => (false, !no_execute),
    }
}

/// Upstream `ReplaceDaemonSetPodNodeNameNodeAffinity`: the pod's required node affinity
/// becomes `metadata.name In [node]` (the scheduler then places it there).
pub fn node_name_affinity(affinity: Option<Affinity>, node: &str) -> Affinity {
    let selector = NodeSelector {
        node_selector_terms: vec![NodeSelectorTerm {
            match_expressions: None,
            match_fields: Some(vec![NodeSelectorRequirement { key: "metadata.name".into(), operator: "In".into(), values: Some(vec![node.into()]) }]),
        }],
    };
    let mut affinity = affinity.unwrap_or_default();
    let mut na = affinity.node_affinity.take().unwrap_or_default();
    na.required_during_scheduling_ignored_during_execution = Some(selector);
    affinity.node_affinity = Some(NodeAffinity { ..na });
    affinity
}

/// The node a daemon pod is for (upstream `GetTargetNodeName`): its `nodeName`, else the
/// node of its `metadata.name` affinity.
pub fn target_node(pod: &Pod) -> Option<String> {
    let spec = pod.spec.as_ref()?;
    if let Some(n) = spec.node_name.as_ref().filter(|n| !n.is_empty()) {
        return Some(n.clone());
    }
    let terms = &spec.affinity.as_ref()?.node_affinity.as_ref()?.required_during_scheduling_ignored_during_execution.as_ref()?.node_selector_terms;
    terms.iter().flat_map(|t| t.match_fields.iter().flatten()).find(|r| r.key == "metadata.name" && r.operator == "In").and_then(|r| r.values.as_ref()?.first().cloned())
}

fn hash_of(pod: &Pod) -> Option<&str> {
    pod.metadata.labels.as_ref()?.get(CONTROLLER_REVISION_HASH).map(String::as_str)
}

/// Whether the pod runs the current template (upstream `IsPodUpdated`: the hash label, or
/// the old `pod-template-generation` label).
pub fn is_updated(pod: &Pod, hash: &str, generation: Option<i64>) -> bool {
    let labels = pod.metadata.labels.as_ref();
    let gen_matches = generation.is_some_and(|g| labels.and_then(|l| l.get(POD_TEMPLATE_GENERATION)) == Some(&g.to_string()));
    hash_of(pod) == Some(hash) || gen_matches
}

/// Oldest first, running before others at equal age (upstream `podByCreationTimestampAndPhase`).
fn sort_oldest_first(pods: &mut [&Pod]) {
    pods.sort_by(|a, b| {
        let created = |p: &Pod| p.metadata.creation_timestamp.as_ref().map(|t| t.0);
        let running = |p: &Pod| p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running");
        created(a).cmp(&created(b)).then_with(|| running(b).cmp(&running(a))).then_with(|| a.metadata.name.cmp(&b.metadata.name))
    });
}

/// A node as the controller sees it: name, and the [`should_run`] answers.
#[derive(Debug, Clone)]
pub struct NodeFit {
    pub name: String,
    pub should_run: bool,
    pub should_continue: bool,
}

/// What one sync does: nodes to create a pod on, pods (names) to delete.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Plan {
    pub create: Vec<String>,
    pub delete: Vec<String>,
}

fn name(p: &Pod) -> String {
    p.metadata.name.clone().unwrap_or_default()
}

/// Upstream `podsShouldBeOnNode` over every node, plus the pods of nodes that no longer
/// exist: a pod on each node that should run one; none where it may not continue; failed
/// pods deleted (and replaced next round); duplicates deleted (the oldest kept, or with
/// surge the oldest updated and oldest old pod until the updated one is available).
/// `node_pods` holds each node's claimed pods, terminating ones included.
pub fn manage(nodes: &[NodeFit], node_pods: &BTreeMap<String, Vec<&Pod>>, hash: &str, surge: bool, min_ready: Duration, now: jiff::Timestamp) -> Plan {
    let mut plan = Plan::default();
    for node in nodes {
        let pods_here = node_pods.get(&node.name).cloned().unwrap_or_default();
        if node.should_run && pods_here.is_empty() {
            plan.create.push(node.name.clone());
            continue;
        }
        if !node.should_continue {
            plan.delete.extend(pods_here.iter().filter(|p| !pods::is_terminating(p)).map(|p| name(p)));
            continue;
        }
        let mut running: Vec<&Pod> = Vec::new();
        for p in pods_here.iter().filter(|p| !pods::is_terminating(p)) {
            if p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Failed") {
                plan.delete.push(name(p));
            } else {
                running.push(p);
            }
        }
        if running.len() <= 1 {
            continue;
        }
        sort_oldest_first(&mut running);
        if !surge {
            plan.delete.extend(running[1..].iter().map(|p| name(p)));
            continue;
        }
        let (mut oldest_new, mut oldest_old) = (None, None);
        for p in running {
            let slot = if hash_of(p) == Some(hash) { &mut oldest_new } else { &mut oldest_old };
            if slot.is_none() {
                *slot = Some(p);
            } else {
                plan.delete.push(name(p));
            }
        }
        if let (Some(new), Some(old)) = (oldest_new, oldest_old) {
            if !pods::is_ready(old) || pods::is_available(new, min_ready, now) {
                plan.delete.push(name(old));
            }
        }
    }
    let known: std::collections::HashSet<&str> = nodes.iter().map(|n| n.name.as_str()).collect();
    for (node, pods_there) in node_pods {
        if !known.contains(node.as_str()) {
            plan.delete.extend(pods_there.iter().filter(|p| !pods::is_terminating(p)).map(|p| name(p)));
        }
    }
    plan
}

/// Upstream `findUpdatedPodsOnNode`: the node's one updated and one old live pod, or `None`
/// when there are several of either.
fn updated_and_old<'a>(pods_here: &[&'a Pod], hash: &str) -> Option<(Option<&'a Pod>, Option<&'a Pod>)> {
    let (mut new, mut old) = (None, None);
    for p in pods_here.iter().filter(|p| !pods::is_terminating(p)) {
        let slot = if hash_of(p) == Some(hash) { &mut new } else { &mut old };
        if slot.is_some() {
            return None;
        }
        *slot = Some(*p);
    }
    Some((new, old))
}

fn scaled(v: Option<&IntOrString>, total: i32) -> i32 {
    match v {
        Some(IntOrString::Int(i)) => *i,
        Some(IntOrString::String(s)) => {
            let pct: i64 = s.trim_end_matches('%').parse().unwrap_or(0);
            ((pct * i64::from(total) + 99) / 100) as i32
        }
        None => 0,
    }
}

/// `(maxSurge, maxUnavailable)` scaled to the desired node count, rounding up (upstream
/// `updatedDesiredNodeCounts`); both zero means one unavailable.
pub fn surge_and_unavailable(ds: &DaemonSet, desired: i32) -> (i32, i32) {
    let ru = ds.spec.as_ref().and_then(|s| s.update_strategy.as_ref()).and_then(|u| u.rolling_update.as_ref());
    let surge = scaled(ru.and_then(|r| r.max_surge.as_ref()), desired);
    let default = IntOrString::Int(1);
    let unavailable = scaled(Some(ru.and_then(|r| r.max_unavailable.as_ref()).unwrap_or(&default)), desired);
    if surge == 0 && unavailable == 0 { (0, 1) } else { (surge, unavailable) }
}

/// Upstream `rollingUpdate`: old pods to delete and nodes to surge a new pod onto, keeping
/// at most `max_unavailable` nodes without an available pod (or, with surge, at most
/// `max_surge` extra pods in flight). Old pods that are not available are replaced at once.
pub fn rolling_update(node_pods: &BTreeMap<String, Vec<&Pod>>, hash: &str, max_surge: i32, max_unavailable: i32, min_ready: Duration, now: jiff::Timestamp) -> Plan {
    let available = |p: &Pod| pods::is_available(p, min_ready, now);
    let mut plan = Plan::default();
    if max_surge == 0 {
        let (mut unavailable, mut allowed, mut candidates) = (0, Vec::new(), Vec::new());
        for pods_here in node_pods.values() {
            match updated_and_old(pods_here, hash) {
                None | Some((None, None)) | Some((Some(_), Some(_))) => unavailable += 1,
                Some((Some(new), None)) => {
                    if !available(new) {
                        unavailable += 1;
                    }
                }
                Some((None, Some(old))) => {
                    if !available(old) {
                        allowed.push(name(old));
                    } else if unavailable < max_unavailable {
                        candidates.push(name(old));
                    }
                }
            }
        }
        let room = (max_unavailable - unavailable).clamp(0, candidates.len() as i32) as usize;
        plan.delete = allowed.into_iter().chain(candidates.into_iter().take(room)).collect();
        return plan;
    }
    let (mut surging, mut allowed, mut candidates) = (0, Vec::new(), Vec::new());
    for (node, pods_here) in node_pods {
        match updated_and_old(pods_here, hash) {
            None => surging += 1,
            Some((_, None)) => {}
            Some((None, Some(old))) => {
                if !available(old) {
                    allowed.push(node.clone());
                } else if surging < max_surge {
                    candidates.push(node.clone());
                }
            }
            Some((Some(new), Some(old))) => {
                if available(new) {
                    plan.delete.push(name(old));
                } else {
                    surging += 1;
                }
            }
        }
    }
    let room = (max_surge - surging).clamp(0, candidates.len() as i32) as usize;
    plan.create = allowed.into_iter().chain(candidates.into_iter().take(room)).collect();
    plan
}

/// Upstream `updateDaemonSetStatus`: counts over the nodes that should run the pod (the
/// oldest pod of each), and misscheduled pods on the others.
pub fn status(ds: &DaemonSet, nodes: &[NodeFit], node_pods: &BTreeMap<String, Vec<&Pod>>, hash: &str, now: jiff::Timestamp) -> DaemonSetStatus {
    let min_ready = Duration::from_secs(ds.spec.as_ref().and_then(|s| s.min_ready_seconds).unwrap_or(0).max(0) as u64);
    let mut s = DaemonSetStatus { observed_generation: ds.metadata.generation, ..Default::default() };
    let (mut ready, mut available, mut updated) = (0, 0, 0);
    for node in nodes {
        let mut here: Vec<&Pod> = node_pods.get(&node.name).cloned().unwrap_or_default();
        if !node.should_run {
            if !here.is_empty() {
                s.number_misscheduled += 1;
            }
            continue;
        }
        s.desired_number_scheduled += 1;
        if here.is_empty() {
            continue;
        }
        s.current_number_scheduled += 1;
        sort_oldest_first(&mut here);
        let pod = here[0];
        if pods::is_ready(pod) {
            ready += 1;
            if pods::is_available(pod, min_ready, now) {
                available += 1;
            }
        }
        if is_updated(pod, hash, ds.metadata.generation) {
            updated += 1;
        }
    }
    s.number_ready = ready;
    s.number_available = Some(available);
    s.number_unavailable = Some(s.desired_number_scheduled - available);
    s.updated_number_scheduled = Some(updated);
    s.collision_count = ds.status.as_ref().and_then(|o| o.collision_count);
    s.conditions = ds.status.as_ref().and_then(|o| o.conditions.clone());
    s
}

#[cfg(test)]
#[path = "tests.rs"]
mod tests;
