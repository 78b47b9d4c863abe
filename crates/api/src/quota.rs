//! ResourceQuota arithmetic shared by the ResourceQuota admission plugin (API server) and the
//! resourcequota controller (upstream `pkg/quota/v1` and its evaluators): what an object is
//! charged for, which quotas match it (scopes), the constraints a pod must meet under a
//! compute quota, and the admission check with upstream's messages.
//!
//! Objects are JSON values as stored. Usage is a map from quota resource names (`pods`,
//! `requests.cpu`, `count/deployments.apps`, ...) to quantities.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{json, Value};

use crate::quantity::Quantity;

/// Quota resource names to quantities (`corev1.ResourceList`).
pub type ResourceList = BTreeMap<String, Quantity>;

/// Core resources quota counts under their own (legacy) name as well as `count/<plural>`.
const LEGACY_COUNTED: &[&str] =
    &["pods", "services", "replicationcontrollers", "resourcequotas", "secrets", "configmaps", "persistentvolumeclaims"];

/// Resources whose quota forces every container to state them (upstream `validationSet`).
const POD_VALIDATION: &[&str] = &["cpu", "memory", "requests.cpu", "requests.memory", "limits.cpu", "limits.memory"];

fn one() -> Quantity {
    Quantity::parse("1").expect("1 is a quantity")
}

fn zero() -> Quantity {
    Quantity::parse("0").expect("0 is a quantity")
}

fn count_of(n: usize) -> Quantity {
    Quantity::parse(&n.to_string()).unwrap_or_else(|_| zero())
}

/// `count/<plural>` for the core group, `count/<plural>.<group>` otherwise.
pub fn object_count_name(group: &str, plural: &str) -> String {
    if group.is_empty() { format!("count/{plural}") } else { format!("count/{plural}.{group}") }
}

/// A `ResourceList` from JSON (`{"pods": "2", "requests.cpu": "500m"}`); unparsable
/// quantities are left out.
pub fn parse_list(v: &Value) -> ResourceList {
    v.as_object()
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| {
                    let q = match v {
                        Value::String(s) => Quantity::parse(s).ok()?,
                        Value::Number(n) => Quantity::parse(&n.to_string()).ok()?,
                        _ => return None,
                    };
                    Some((k.clone(), q))
                })
                .collect()
        })
        .unwrap_or_default()
}

/// JSON of a `ResourceList`, quantities in canonical form.
pub fn list_to_value(list: &ResourceList) -> Value {
    Value::Object(list.iter().map(|(k, q)| (k.clone(), json!(q.to_string()))).collect())
}

/// Upstream `prettyPrint`: `a=1,b=2` sorted by name.
pub fn pretty_print(list: &ResourceList) -> String {
    list.iter().map(|(k, q)| format!("{k}={q}")).collect::<Vec<_>>().join(",")
}

/// `a + b` for every name in either.
pub fn add(a: &ResourceList, b: &ResourceList) -> ResourceList {
    let mut out = a.clone();
    for (k, q) in b {
        let sum = out.get(k).and_then(|x| x.checked_add(q)).unwrap_or(*q);
        out.insert(k.clone(), sum);
    }
    out
}

/// Only the entries named in `names`.
pub fn mask(list: &ResourceList, names: &BTreeSet<String>) -> ResourceList {
    list.iter().filter(|(k, _)| names.contains(*k)).map(|(k, q)| (k.clone(), *q)).collect()
}

/// Whether an object of `group`/`plural` is charged for the quota resource `name` (upstream
/// evaluators' `MatchingResources`).
pub fn handles(group: &str, plural: &str, name: &str) -> bool {
    if name == object_count_name(group, plural) {
        return true;
    }
    if !group.is_empty() {
        return false;
    }
    if name == plural && LEGACY_COUNTED.contains(&plural) {
        return true;
    }
    match plural {
        "pods" => {
            matches!(name, "cpu" | "memory" | "ephemeral-storage" | "limits.cpu" | "limits.memory" | "limits.ephemeral-storage")
                || name.starts_with("requests.")
        }
        "services" => matches!(name, "services.nodeports" | "services.loadbalancers"),
        "persistentvolumeclaims" => name == "requests.storage",
        _ => false,
    }
}

fn phase(obj: &Value) -> &str {
    obj["status"]["phase"].as_str().unwrap_or("")
}

/// Upstream `QuotaV1Pod`: finished pods, and pods whose deletion grace period has passed, no
/// longer use compute quota.
pub fn pod_counts(pod: &Value, now: jiff::Timestamp) -> bool {
    if matches!(phase(pod), "Succeeded" | "Failed") {
        return false;
    }
    let deleted = pod["metadata"]["deletionTimestamp"].as_str().and_then(|t| t.parse::<jiff::Timestamp>().ok());
    if let Some(at) = deleted {
        let grace = pod["metadata"]["deletionGracePeriodSeconds"].as_i64().unwrap_or(0);
        if at.checked_add(jiff::SignedDuration::from_secs(grace)).is_ok_and(|end| now > end) {
            return false;
        }
    }
    true
}

fn containers<'a>(pod: &'a Value, list: &str) -> impl Iterator<Item = &'a Value> {
    pod["spec"][list].as_array().into_iter().flatten()
}

/// A container's requests (defaulted from its limits, as the API server defaults them) and
/// limits.
fn container_resources(c: &Value) -> (ResourceList, ResourceList) {
    let limits = parse_list(&c["resources"]["limits"]);
    let mut requests = parse_list(&c["resources"]["requests"]);
    for (k, q) in &limits {
        requests.entry(k.clone()).or_insert(*q);
    }
    (requests, limits)
}

/// Upstream `PodRequests`/`PodLimits`: the containers' sum, at least each init container's
/// value, plus the pod overhead.
fn pod_resources(pod: &Value) -> (ResourceList, ResourceList) {
    let (mut requests, mut limits) = (ResourceList::new(), ResourceList::new());
    for c in containers(pod, "containers") {
        let (r, l) = container_resources(c);
        requests = add(&requests, &r);
        limits = add(&limits, &l);
    }
    for c in containers(pod, "initContainers") {
        let (r, l) = container_resources(c);
        for (total, init) in [(&mut requests, r), (&mut limits, l)] {
            for (k, q) in init {
                if total.get(&k).is_none_or(|t| *t < q) {
                    total.insert(k, q);
                }
            }
        }
    }
    let overhead = parse_list(&pod["spec"]["overhead"]);
    (add(&requests, &overhead), if limits.is_empty() { limits } else { add(&limits, &overhead) })
}

/// Upstream `podComputeUsageHelper`.
fn compute_usage(requests: &ResourceList, limits: &ResourceList) -> ResourceList {
    let mut out = ResourceList::new();
    out.insert("pods".into(), one());
    for r in ["cpu", "memory", "ephemeral-storage"] {
        if let Some(q) = requests.get(r) {
            out.insert(r.into(), *q);
            out.insert(format!("requests.{r}"), *q);
        }
        if let Some(q) = limits.get(r) {
            out.insert(format!("limits.{r}"), *q);
        }
    }
    for (k, q) in requests.iter().filter(|(k, _)| k.contains('/')) {
        out.insert(format!("requests.{k}"), *q);
    }
    out
}

/// What one object is charged for (upstream evaluators' `Usage`).
pub fn usage(group: &str, plural: &str, obj: &Value, now: jiff::Timestamp) -> ResourceList {
    let mut out = ResourceList::new();
    out.insert(object_count_name(group, plural), one());
    if !group.is_empty() {
        return out;
    }
    match plural {
        "pods" if pod_counts(obj, now) => {
            let (requests, limits) = pod_resources(obj);
            out = add(&out, &compute_usage(&requests, &limits));
        }
        "pods" => {}
        "services" => {
            out.insert("services".into(), one());
            let ports = obj["spec"]["ports"].as_array().map_or(0, Vec::len);
            match obj["spec"]["type"].as_str().unwrap_or("ClusterIP") {
                "NodePort" => {
                    out.insert("services.nodeports".into(), count_of(ports));
                }
                "LoadBalancer" => {
                    out.insert("services.loadbalancers".into(), one());
                    if obj["spec"]["allocateLoadBalancerNodePorts"].as_bool().unwrap_or(true) {
                        out.insert("services.nodeports".into(), count_of(ports));
                    }
                }
                _ => {}
            }
        }
        "persistentvolumeclaims" => {
            out.insert(plural.into(), one());
            if let Some(q) = parse_list(&obj["spec"]["resources"]["requests"]).get("storage") {
                out.insert("requests.storage".into(), *q);
            }
        }
        p if LEGACY_COUNTED.contains(&p) => {
            out.insert(p.into(), one());
        }
        _ => {}
    }
    out
}

fn is_best_effort(pod: &Value) -> bool {
    containers(pod, "containers").chain(containers(pod, "initContainers")).all(|c| {
        let (r, l) = container_resources(c);
        !["cpu", "memory"].iter().any(|k| r.contains_key(*k) || l.contains_key(*k))
    })
}

/// The quota's scope selectors as (scopeName, operator, values) (upstream
/// `getScopeSelectorsFromQuota`).
fn scope_selectors(quota: &Value) -> Vec<(String, String, Vec<String>)> {
    let mut out: Vec<(String, String, Vec<String>)> = quota["spec"]["scopes"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|s| s.as_str())
        .map(|s| (s.to_owned(), "Exists".to_owned(), vec![]))
        .collect();
    for e in quota["spec"]["scopeSelector"]["matchExpressions"].as_array().into_iter().flatten() {
        let values = e["values"].as_array().into_iter().flatten().filter_map(|v| v.as_str().map(str::to_owned)).collect();
        out.push((e["scopeName"].as_str().unwrap_or("").into(), e["operator"].as_str().unwrap_or("").into(), values));
    }
    out
}

/// Whether a pod is in one scope (upstream `podMatchesScopeFunc`).
fn pod_in_scope(pod: &Value, scope: &str, operator: &str, values: &[String]) -> bool {
    let terminating = pod["spec"]["activeDeadlineSeconds"].as_i64().is_some_and(|s| s >= 0);
    match scope {
        "Terminating" => terminating,
        "NotTerminating" => !terminating,
        "BestEffort" => is_best_effort(pod),
        "NotBestEffort" => !is_best_effort(pod),
        "PriorityClass" => {
            let class = pod["spec"]["priorityClassName"].as_str().filter(|c| !c.is_empty());
            match operator {
                "Exists" => class.is_some(),
                "DoesNotExist" => class.is_none(),
                "In" => class.is_some_and(|c| values.iter().any(|v| v == c)),
                "NotIn" => class.is_none_or(|c| !values.iter().any(|v| v == c)),
                _ => false,
            }
        }
        _ => false,
    }
}

/// Whether `quota` (by its `status.hard`, or `spec.hard` when `use_spec`) covers the object:
/// some hard resource is charged for it, and the object is in every scope (only pods have
/// scopes) — upstream `Matches`.
pub fn matches(quota: &Value, group: &str, plural: &str, obj: &Value, use_spec: bool) -> bool {
    let hard = if use_spec { &quota["spec"]["hard"] } else { &quota["status"]["hard"] };
    let handled = hard.as_object().is_some_and(|h| h.keys().any(|k| handles(group, plural, k)));
    handled
        && scope_selectors(quota).iter().all(|(s, op, vals)| group.is_empty() && plural == "pods" && pod_in_scope(obj, s, op, vals))
}

/// Upstream pod evaluator `Constraints`: each container (and init container) must state
/// every compute resource among `required` that a quota tracks (`must specify requests.cpu
/// for: c`).
pub fn pod_constraints(required: &BTreeSet<String>, pod: &Value) -> Result<(), String> {
    let required: BTreeSet<&str> = required.iter().map(String::as_str).filter(|r| POD_VALIDATION.contains(r)).collect();
    let mut missing: BTreeMap<&str, BTreeSet<String>> = BTreeMap::new();
    for c in containers(pod, "containers").chain(containers(pod, "initContainers")) {
        let (r, l) = container_resources(c);
        let have = compute_usage(&r, &l);
        for need in required.iter().filter(|n| !have.contains_key(**n)) {
            missing.entry(need).or_default().insert(c["name"].as_str().unwrap_or("").to_owned());
        }
    }
    if missing.is_empty() {
        return Ok(());
    }
    let parts: Vec<String> = missing.iter().map(|(r, names)| format!("{r} for: {}", names.iter().cloned().collect::<Vec<_>>().join(","))).collect();
    Err(format!("must specify {}", parts.join("; ")))
}

/// Upstream `CheckRequest` for a create: the new `status.used` of each quota the object is
/// charged to (by index into `quotas`), or why the request is forbidden (the message after
/// `<resource> "<name>" is forbidden: `).
pub fn check_create(
    quotas: &[Value],
    group: &str,
    plural: &str,
    obj: &Value,
    now: jiff::Timestamp,
) -> Result<Vec<(usize, ResourceList)>, String> {
    let mut interesting = Vec::new();
    for (i, quota) in quotas.iter().enumerate() {
        if !matches(quota, group, plural, obj, false) {
            continue;
        }
        let name = quota["metadata"]["name"].as_str().unwrap_or("");
        let hard = parse_list(&quota["status"]["hard"]);
        let restricted: BTreeSet<String> = hard.keys().filter(|k| handles(group, plural, k)).cloned().collect();
        if group.is_empty() && plural == "pods" {
            pod_constraints(&restricted, obj).map_err(|e| format!("failed quota: {name}: {e}"))?;
        }
        let used = quota["status"]["used"].as_object();
        if restricted.iter().any(|r| used.is_none_or(|u| !u.contains_key(r))) {
            let names: Vec<&str> = restricted.iter().map(String::as_str).collect();
            return Err(format!("status unknown for quota: {name}, resources: {}", names.join(",")));
        }
        interesting.push(i);
    }
    if interesting.is_empty() {
        return Ok(vec![]);
    }
    let input: ResourceList = usage(group, plural, obj, now).into_iter().filter(|(_, q)| !q.is_zero()).collect();
    if let Some((k, _)) = input.iter().find(|(_, q)| q.is_negative()) {
        return Err(format!("quota usage is negative for resource(s): {k}"));
    }
    let mut charges = Vec::new();
    for i in interesting {
        let quota = &quotas[i];
        let hard = parse_list(&quota["status"]["hard"]);
        let used = parse_list(&quota["status"]["used"]);
        let requested = mask(&input, &hard.keys().cloned().collect());
        if requested.is_empty() {
            continue;
        }
        let new_used = add(&used, &requested);
        let exceeded: BTreeSet<String> =
            requested.keys().filter(|k| hard.get(*k).is_some_and(|h| new_used.get(*k).is_some_and(|n| n > h))).cloned().collect();
        if !exceeded.is_empty() {
            let name = quota["metadata"]["name"].as_str().unwrap_or("");
            return Err(format!(
                "exceeded quota: {name}, requested: {}, used: {}, limited: {}",
                pretty_print(&mask(&requested, &exceeded)),
                pretty_print(&mask(&used, &exceeded)),
                pretty_print(&mask(&hard, &exceeded)),
            ));
        }
        charges.push((i, new_used));
    }
    Ok(charges)
}

/// The usage a quota tracks, summed over `objects` of `group`/`plural` (upstream
/// `CalculateUsage` for one evaluator): every hard resource this kind is charged for gets an
/// entry, zero when nothing uses it.
pub fn calculate_usage<'a>(
    quota: &Value,
    group: &str,
    plural: &str,
    objects: impl Iterator<Item = &'a Value>,
    now: jiff::Timestamp,
) -> ResourceList {
    let hard: BTreeSet<String> = quota["spec"]["hard"].as_object().map(|h| h.keys().cloned().collect()).unwrap_or_default();
    let tracked: BTreeSet<String> = hard.iter().filter(|k| handles(group, plural, k)).cloned().collect();
    if tracked.is_empty() {
        return ResourceList::new();
    }
    let mut used: ResourceList = tracked.iter().map(|k| (k.clone(), zero())).collect();
    for obj in objects.filter(|o| matches(quota, group, plural, o, true)) {
        used = add(&used, &mask(&usage(group, plural, obj, now), &tracked));
    }
    used
}

#[cfg(test)]
mod tests;
