//! The `pods/eviction` subresource (upstream `pkg/registry/core/pod/storage/eviction.go`):
//! a policy/v1 Eviction deletes a pod only when the PodDisruptionBudget covering it allows a
//! disruption, which it then records (`disruptionsAllowed` decremented, the pod in
//! `disruptedPods`) with a compare-and-swap on the budget's resourceVersion, so concurrent
//! evictions cannot both spend the last allowed disruption.
//!
//! As upstream: a pod that is finished, pending or already being deleted is deleted without
//! looking at budgets; more than one budget for a pod is a 500; a budget whose status is
//! behind its spec, or that allows no disruption, answers 429 TooManyRequests with a
//! `DisruptionBudget` cause (kubectl drain retries on it); an unready pod may go when the
//! budget is healthy without it or its `unhealthyPodEvictionPolicy` is `AlwaysAllow`.

use std::time::Duration;

use http::StatusCode;
use rkube_api::resources;
use rkube_api::selector::LabelSelector;
use serde_json::{json, Value};

use crate::registry::{ListQuery, Registry, WriteOptions};
use crate::request::ResourcePath;
use crate::status::{ApiError, Result};

/// Upstream `MaxDisruptedPodSize`.
pub const MAX_DISRUPTED_POD_SIZE: usize = 2000;
/// Upstream `EvictionsRetry`: 20 attempts on conflicts.
const RETRIES: usize = 20;
const RETRY_DELAY: Duration = Duration::from_millis(50);

pub const TOO_MANY_REQUESTS_MESSAGE: &str = "Cannot evict pod as it would violate the pod's disruption budget.";

/// Upstream `NewTooManyRequests` with a `DisruptionBudget` cause.
pub fn too_many_requests(cause: String, retry_after_secs: u32) -> ApiError {
    let mut e = ApiError::new(StatusCode::TOO_MANY_REQUESTS, "TooManyRequests", TOO_MANY_REQUESTS_MESSAGE);
    let mut details = json!({"causes": [{"reason": "DisruptionBudget", "message": cause}]});
    if retry_after_secs > 0 {
        details["retryAfterSeconds"] = retry_after_secs.into();
    }
    e.details = Some(Box::new(details));
    e
}

fn phase(pod: &Value) -> &str {
    pod["status"]["phase"].as_str().unwrap_or("")
}

fn is_ready(pod: &Value) -> bool {
    pod["status"]["conditions"].as_array().is_some_and(|cs| cs.iter().any(|c| c["type"] == "Ready" && c["status"] == "True"))
}

/// Upstream `canIgnorePDB`: finished, pending or already terminating pods.
pub fn can_ignore_pdb(pod: &Value) -> bool {
    matches!(phase(pod), "Succeeded" | "Failed" | "Pending") || !pod["metadata"]["deletionTimestamp"].is_null()
}

/// Upstream `shouldEnforceResourceVersion`.
fn should_enforce_resource_version(pod: &Value) -> bool {
    !matches!(phase(pod), "Succeeded" | "Failed") && pod["metadata"]["deletionTimestamp"].is_null()
}

/// Whether the budget covers the pod (upstream `getPodDisruptionBudgets`: an invalid, nil or
/// empty selector covers nothing here).
pub fn covers(pdb: &Value, pod: &Value) -> bool {
    if pdb["metadata"]["namespace"] != pod["metadata"]["namespace"] {
        return false;
    }
    let Ok(sel) = serde_json::from_value::<Option<k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector>>(
        pdb["spec"]["selector"].clone(),
    ) else {
        return false;
    };
    let Ok(sel) = LabelSelector::from_k8s_opt(sel.as_ref()) else { return false };
    let labels = pod["metadata"]["labels"]
        .as_object()
        .map(|m| m.iter().map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_owned())).collect())
        .unwrap_or_default();
    !sel.is_empty() && !sel.is_nothing() && sel.matches(&labels)
}

/// What the budget says about evicting one more pod: the status to write (with the pod in
/// `disruptedPods` at `now`), or the error to answer (upstream `checkAndDecrement`).
pub fn check_and_decrement(pdb: &Value, pod_name: &str, now: &str) -> Result<Value> {
    let name = pdb["metadata"]["name"].as_str().unwrap_or_default();
    let status = &pdb["status"];
    let generation = pdb["metadata"]["generation"].as_i64().unwrap_or(0);
    if status["observedGeneration"].as_i64().unwrap_or(0) < generation {
        return Err(too_many_requests(format!("The disruption budget {name} is still being processed by the server."), 10));
    }
    let allowed = status["disruptionsAllowed"].as_i64().unwrap_or(0);
    if allowed < 0 {
        return Err(forbidden(name, "pdb disruptions allowed is negative"));
    }
    if status["disruptedPods"].as_object().is_some_and(|m| m.len() > MAX_DISRUPTED_POD_SIZE) {
        return Err(forbidden(name, "DisruptedPods map too big - too many evictions not confirmed by PDB controller"));
    }
    if allowed == 0 {
        let (desired, current) = (status["desiredHealthy"].as_i64().unwrap_or(0), status["currentHealthy"].as_i64().unwrap_or(0));
        return Err(too_many_requests(format!("The disruption budget {name} needs {desired} healthy pods and has {current} currently"), 0));
    }
    let mut new = pdb.clone();
    new["status"]["disruptionsAllowed"] = (allowed - 1).into();
    if allowed - 1 == 0 {
        set_insufficient(&mut new["status"], now);
    }
    if !new["status"]["disruptedPods"].is_object() {
        new["status"]["disruptedPods"] = json!({});
    }
    new["status"]["disruptedPods"][pod_name] = now.into();
    Ok(new)
}

/// Upstream `UpdateDisruptionAllowedCondition` once no disruption is left.
fn set_insufficient(status: &mut Value, now: &str) {
    let observed = status["observedGeneration"].clone();
    if !status["conditions"].is_array() {
        status["conditions"] = json!([]);
    }
    let conditions = status["conditions"].as_array_mut().expect("conditions was just made an array");
    let new = |since: Value| {
        json!({"type": "DisruptionAllowed", "status": "False", "reason": "InsufficientPods", "message": "",
               "observedGeneration": observed, "lastTransitionTime": since})
    };
    match conditions.iter_mut().find(|c| c["type"] == "DisruptionAllowed") {
        Some(c) => {
            let since = if c["status"] == "False" { c["lastTransitionTime"].clone() } else { now.into() };
            *c = new(since);
        }
        None => conditions.push(new(now.into())),
    }
}

fn forbidden(pdb: &str, why: &str) -> ApiError {
    let mut e = ApiError::forbidden(format!("poddisruptionbudgets.policy \"{pdb}\" is forbidden: {why}"));
    e.details = Some(Box::new(json!({"name": pdb, "group": "policy", "kind": "poddisruptionbudgets"})));
    e
}

fn success() -> Value {
    json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201})
}

fn now() -> String {
    jiff::Timestamp::now().round(jiff::Unit::Second).map(|t| t.to_string()).unwrap_or_default()
}

/// Upstream `propagateDryRun`: the Eviction's deleteOptions with the request's dryRun.
fn delete_options(eviction: &Value, request_dry_run: bool) -> Result<Value> {
    let mut options = match &eviction["deleteOptions"] {
        Value::Null => json!({}),
        o if o.is_object() => o.clone(),
        _ => return Err(ApiError::bad_request("deleteOptions must be an object")),
    };
    let given = options["dryRun"].as_array().cloned().unwrap_or_default();
    if given.is_empty() {
        if request_dry_run {
            options["dryRun"] = json!(["All"]);
        }
    } else if request_dry_run && given != [json!("All")] {
        return Err(ApiError::bad_request(format!(
            "Non-matching dry-run options in request and content: [All] and {}",
            Value::Array(given)
        )));
    }
    Ok(options)
}

fn is_dry_run(options: &Value) -> bool {
    options["dryRun"].as_array().is_some_and(|d| d.iter().any(|x| x == "All"))
}

fn with_precondition(options: &Value, rv: &Value) -> Value {
    let mut o = options.clone();
    o["preconditions"]["resourceVersion"] = rv.clone();
    o
}

/// `POST pods/<name>/eviction`: the Status to answer with (201), or the error.
pub async fn evict(reg: &Registry, rp: &ResourcePath, eviction: &Value, opts: &WriteOptions) -> Result<Value> {
    let name = rp.name.clone().unwrap_or_default();
    if eviction["metadata"]["name"].as_str().unwrap_or_default() != name {
        return Err(ApiError::bad_request("name in URL does not match name in Eviction object"));
    }
    let options = delete_options(eviction, opts.dry_run)?;
    let opts = WriteOptions { dry_run: is_dry_run(&options), ..opts.clone() };
    let pod_rp = ResourcePath { subresource: None, ..rp.clone() };
    let rv_given = !options["preconditions"]["resourceVersion"].is_null();

    // Pods that already caused their disruption are deleted without a budget check.
    let mut pod = Value::Null;
    for attempt in 0..RETRIES {
        pod = reg.get(&pod_rp).await?;
        if !can_ignore_pdb(&pod) {
            break;
        }
        let o = if should_enforce_resource_version(&pod) && !rv_given {
            with_precondition(&options, &pod["metadata"]["resourceVersion"])
        } else {
            options.clone()
        };
        match add_condition_and_delete(reg, &pod_rp, &o, &opts).await {
            Ok(_) => return Ok(success()),
            Err(e) if e.code == StatusCode::CONFLICT && !rv_given && attempt + 1 < RETRIES => {
                tokio::time::sleep(RETRY_DELAY).await;
            }
            Err(e) => return Err(e),
        }
    }

    let pdb_info = resources::find("policy", "v1", "poddisruptionbudgets").ok_or_else(|| ApiError::internal("poddisruptionbudgets not served"))?;
    let ns = rp.namespace.as_deref();
    let page = reg.list(pdb_info, ns, &ListQuery::default()).await?;
    let pdbs: Vec<Value> = page.items.iter().filter(|p| covers(p, &pod)).map(|p| (**p).clone()).collect();
    if pdbs.len() > 1 {
        return Err(ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "",
            "This pod has more than one PodDisruptionBudget, which the eviction subresource does not support.",
        ));
    }
    let mut precondition_set = false;
    let mut pdb_name = String::new();
    if let Some(pdb) = pdbs.into_iter().next() {
        pdb_name = pdb["metadata"]["name"].as_str().unwrap_or_default().to_owned();
        let always_allow = pdb["spec"]["unhealthyPodEvictionPolicy"] == "AlwaysAllow";
        let healthy_budget = pdb["status"]["currentHealthy"].as_i64().unwrap_or(0) >= pdb["status"]["desiredHealthy"].as_i64().unwrap_or(0)
            && pdb["status"]["desiredHealthy"].as_i64().unwrap_or(0) > 0;
        if !is_ready(&pod) && (always_allow || healthy_budget) {
            // Not counted as healthy: nothing to spend, but the pod must not become ready
            // in between (upstream sets the resourceVersion precondition).
            precondition_set = true;
        } else {
            spend_disruption(reg, pdb, pdb_info, &pod, &opts).await?;
        }
    }
    let o = if precondition_set && !rv_given { with_precondition(&options, &pod["metadata"]["resourceVersion"]) } else { options.clone() };
    match add_condition_and_delete(reg, &pod_rp, &o, &opts).await {
        Ok(_) => Ok(success()),
        Err(e) if e.code == StatusCode::CONFLICT && precondition_set && !rv_given => {
            Err(too_many_requests(format!("The disruption budget {pdb_name} is still being processed by the server."), 10))
        }
        Err(e) => Err(e),
    }
}

/// Upstream `addConditionAndDeletePod`: marks the pod with the `DisruptionTarget` condition
/// (`EvictionByEvictionAPI`) on its latest version, then deletes it; a resourceVersion
/// precondition of the caller is checked against that version and moved to the marked one.
async fn add_condition_and_delete(reg: &Registry, pod_rp: &ResourcePath, options: &Value, opts: &WriteOptions) -> Result<()> {
    let mut options = options.clone();
    if !opts.dry_run {
        let mut pod = reg.get(pod_rp).await?;
        let name = pod_rp.name.as_deref().unwrap_or_default();
        let conflict = |what: &str, want: &str, have: &str| {
            ApiError::conflict("", "pods", name, &format!("Precondition failed: {what} in precondition: {want}, {what} in object meta: {have}"))
        };
        if let (Some(uid), Some(have)) = (options["preconditions"]["uid"].as_str(), pod["metadata"]["uid"].as_str()) {
            if !uid.is_empty() && uid != have {
                return Err(conflict("UID", uid, have));
            }
        }
        let rv_given = options["preconditions"]["resourceVersion"].as_str().filter(|rv| !rv.is_empty()).map(str::to_owned);
        if let (Some(rv), Some(have)) = (rv_given.as_deref(), pod["metadata"]["resourceVersion"].as_str()) {
            if rv != have {
                return Err(conflict("ResourceVersion", rv, have));
            }
        }
        set_disruption_target(&mut pod, &now());
        let status_rp = ResourcePath { subresource: Some("status".into()), ..pod_rp.clone() };
        let updated = reg.update(&status_rp, pod, opts).await?;
        if rv_given.is_some() {
            options["preconditions"]["resourceVersion"] = updated["metadata"]["resourceVersion"].clone();
        }
    }
    reg.delete(pod_rp, &options, opts).await.map(|_| ())
}

/// Upstream `UpdatePodCondition` with `DisruptionTarget` True: the transition time changes
/// only with the status.
fn set_disruption_target(pod: &mut Value, now: &str) {
    let new = json!({"type": "DisruptionTarget", "status": "True", "reason": "EvictionByEvictionAPI",
                     "message": "Eviction API: evicting", "lastProbeTime": null, "lastTransitionTime": now});
    if !pod["status"]["conditions"].is_array() {
        pod["status"]["conditions"] = json!([]);
    }
    let conditions = pod["status"]["conditions"].as_array_mut().expect("conditions was just made an array");
    match conditions.iter_mut().find(|c| c["type"] == "DisruptionTarget") {
        Some(c) => {
            let since = if c["status"] == "True" { c["lastTransitionTime"].clone() } else { now.into() };
            *c = new;
            c["lastTransitionTime"] = since;
        }
        None => conditions.push(new),
    }
}

/// Verifies and decrements the budget, retrying on conflicts with a fresh read.
async fn spend_disruption(
    reg: &Registry,
    mut pdb: Value,
    info: &'static resources::ResourceInfo,
    pod: &Value,
    opts: &WriteOptions,
) -> Result<()> {
    let pod_name = pod["metadata"]["name"].as_str().unwrap_or_default();
    let pdb_rp = ResourcePath {
        info,
        namespace: pdb["metadata"]["namespace"].as_str().map(str::to_owned),
        name: pdb["metadata"]["name"].as_str().map(str::to_owned),
        subresource: Some("status".into()),
    };
    for attempt in 0..RETRIES {
        if attempt > 0 {
            tokio::time::sleep(RETRY_DELAY).await;
            pdb = reg.get(&ResourcePath { subresource: None, ..pdb_rp.clone() }).await?;
        }
        let updated = check_and_decrement(&pdb, pod_name, &now())?;
        if opts.dry_run {
            return Ok(());
        }
        // The resourceVersion read makes this a compare-and-swap.
        match reg.update(&pdb_rp, updated, opts).await {
            Ok(_) => return Ok(()),
            Err(e) if e.code == StatusCode::CONFLICT => continue,
            Err(e) => return Err(e),
        }
    }
    let name = pdb_rp.name.unwrap_or_default();
    Err(ApiError::timeout(format!("couldn't update PodDisruptionBudget {name:?} due to conflicts")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pdb(allowed: i64, generation: i64, observed: i64) -> Value {
        json!({
            "metadata": {"name": "web", "namespace": "default", "generation": generation, "resourceVersion": "7"},
            "spec": {"minAvailable": 2, "selector": {"matchLabels": {"app": "web"}}},
            "status": {"disruptionsAllowed": allowed, "observedGeneration": observed, "currentHealthy": 2, "desiredHealthy": 2,
                       "expectedPods": 3, "conditions": [{"type": "DisruptionAllowed", "status": "True", "reason": "SufficientPods",
                       "message": "", "lastTransitionTime": "2024-01-01T00:00:00Z", "observedGeneration": observed}]}
        })
    }

    #[test]
    fn a_budget_with_no_disruption_left_refuses_with_429_and_a_disruption_budget_cause() {
        let e = check_and_decrement(&pdb(0, 1, 1), "p", "2024-01-02T00:00:00Z").unwrap_err();
        assert_eq!(e.code, StatusCode::TOO_MANY_REQUESTS);
        let body = e.body();
        assert_eq!(body["reason"], "TooManyRequests");
        assert_eq!(body["message"], "Cannot evict pod as it would violate the pod's disruption budget.");
        assert_eq!(body["details"]["causes"][0]["reason"], "DisruptionBudget");
        assert_eq!(body["details"]["causes"][0]["message"], "The disruption budget web needs 2 healthy pods and has 2 currently");
        assert!(body["details"]["retryAfterSeconds"].is_null());
        // a status behind the spec: retry later
        let e = check_and_decrement(&pdb(3, 2, 1), "p", "2024-01-02T00:00:00Z").unwrap_err();
        assert_eq!(e.code, StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(e.body()["details"]["retryAfterSeconds"], 10);
        let e = check_and_decrement(&pdb(-1, 1, 1), "p", "t").unwrap_err();
        assert_eq!(e.code, StatusCode::FORBIDDEN);
    }

    #[test]
    fn spending_the_last_disruption_records_the_pod_and_flips_the_condition() {
        let new = check_and_decrement(&pdb(1, 1, 1), "web-1", "2024-01-02T00:00:00Z").unwrap();
        assert_eq!(new["status"]["disruptionsAllowed"], 0);
        assert_eq!(new["status"]["disruptedPods"]["web-1"], "2024-01-02T00:00:00Z");
        let c = &new["status"]["conditions"][0];
        assert_eq!((c["status"].as_str(), c["reason"].as_str()), (Some("False"), Some("InsufficientPods")));
        assert_eq!(c["lastTransitionTime"], "2024-01-02T00:00:00Z");
        assert_eq!(new["metadata"]["resourceVersion"], "7", "the write is a compare-and-swap on the read version");
        let new = check_and_decrement(&pdb(2, 1, 1), "web-1", "t").unwrap();
        assert_eq!((new["status"]["disruptionsAllowed"].as_i64(), new["status"]["conditions"][0]["status"].as_str()), (Some(1), Some("True")));
    }

    #[test]
    fn terminal_pending_and_terminating_pods_skip_the_budget() {
        let pod = |phase: &str| json!({"metadata": {"name": "p"}, "status": {"phase": phase}});
        assert!(can_ignore_pdb(&pod("Succeeded")) && can_ignore_pdb(&pod("Failed")) && can_ignore_pdb(&pod("Pending")));
        assert!(!can_ignore_pdb(&pod("Running")));
        let mut t = pod("Running");
        t["metadata"]["deletionTimestamp"] = "2024-01-01T00:00:00Z".into();
        assert!(can_ignore_pdb(&t));
    }

    #[test]
    fn budgets_cover_pods_of_their_namespace_through_a_non_empty_selector() {
        let p = pdb(1, 1, 1);
        let pod = |ns: &str, app: &str| json!({"metadata": {"name": "x", "namespace": ns, "labels": {"app": app}}});
        assert!(covers(&p, &pod("default", "web")));
        assert!(!covers(&p, &pod("default", "db")));
        assert!(!covers(&p, &pod("other", "web")));
        let mut empty = p.clone();
        empty["spec"]["selector"] = json!({});
        assert!(!covers(&empty, &pod("default", "web")));
    }

    #[test]
    fn dry_run_of_the_request_and_of_the_delete_options_must_agree() {
        let e = json!({"deleteOptions": {"gracePeriodSeconds": 0}});
        assert_eq!(delete_options(&e, true).unwrap()["dryRun"], json!(["All"]));
        assert!(delete_options(&json!({}), false).unwrap()["dryRun"].is_null());
        assert!(delete_options(&json!({"deleteOptions": {"dryRun": ["Nope"]}}), true).is_err());
    }
}
