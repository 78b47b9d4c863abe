//! What a DELETE does to one object, decided as upstream's generic store does
//! (`k8s.io/apiserver/pkg/registry/rest/delete.go` `BeforeDelete`,
//! `registry/generic/registry/store.go` `deletionFinalizersForGarbageCollection`, and the pod
//! strategy's `CheckGracefulDelete`).
//!
//! - `propagationPolicy: Orphan` (or the legacy `orphanDependents: true`) puts the `orphan`
//!   finalizer on the object, `Foreground` puts `foregroundDeletion`, `Background` removes
//!   both; without either, a finalizer already on the object decides, then the resource's
//!   default (orphan for core/v1 ReplicationControllers, background for everything else).
//! - An object with finalizers is not removed: it gets `deletionTimestamp` (now) and
//!   `deletionGracePeriodSeconds: 0` and stays until its finalizers are gone.
//! - Pods are deleted gracefully: the grace period is `gracePeriodSeconds`, else
//!   `spec.terminationGracePeriodSeconds`, and 0 for a pod not bound to a node or already
//!   finished. With a grace period > 0 the pod stays with `deletionTimestamp = now + grace`
//!   until its kubelet deletes it with grace 0; a later delete may only shorten the period.
//!
//! [`plan`] is pure: the registry reads the object, asks for a plan and performs it.

use std::collections::HashMap;

use jiff::{SignedDuration, Timestamp};
use serde_json::{json, Value};

use crate::status::{ApiError, Cause, Result};
use rkube_api::resources::ResourceInfo;

pub const FINALIZER_ORPHAN: &str = "orphan";
pub const FINALIZER_FOREGROUND: &str = "foregroundDeletion";

/// The fields of `metav1.DeleteOptions` that decide a deletion.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeleteOptions {
    pub grace_period_seconds: Option<i64>,
    pub propagation: Option<Propagation>,
    pub orphan_dependents: Option<bool>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Propagation {
    Orphan,
    Background,
    Foreground,
}

impl DeleteOptions {
    /// Reads and validates a DeleteOptions body (JSON already decoded), as upstream's
    /// `ValidateDeleteOptions`: 422 `Invalid` for an unknown policy or for both
    /// `orphanDependents` and `propagationPolicy`.
    pub fn from_value(v: &Value) -> Result<DeleteOptions> {
        let invalid = |cause: Cause| ApiError::invalid("meta.k8s.io", "DeleteOptions", "", vec![cause]);
        let grace_period_seconds = match &v["gracePeriodSeconds"] {
            Value::Null => None,
            g => Some(g.as_i64().ok_or_else(|| {
                ApiError::bad_request(format!("gracePeriodSeconds must be an integer, got {g}"))
            })?),
        };
        let propagation = match &v["propagationPolicy"] {
            Value::Null => None,
            Value::String(s) if s == "Orphan" => Some(Propagation::Orphan),
            Value::String(s) if s == "Background" => Some(Propagation::Background),
            Value::String(s) if s == "Foreground" => Some(Propagation::Foreground),
            other => {
                let shown = other.as_str().map(str::to_owned).unwrap_or_else(|| other.to_string());
                return Err(invalid(Cause {
                    reason: "FieldValueNotSupported",
                    field: "propagationPolicy".into(),
                    message: format!(
                        "Unsupported value: {}: supported values: \"Foreground\", \"Background\", \"Orphan\", \"nil\"",
                        Value::String(shown)
                    ),
                }));
            }
        };
        let orphan_dependents = v["orphanDependents"].as_bool();
        if let (Some(p), Some(_)) = (propagation, orphan_dependents) {
            let name = match p {
                Propagation::Orphan => "Orphan",
                Propagation::Background => "Background",
                Propagation::Foreground => "Foreground",
            };
            return Err(invalid(Cause::invalid(
                "propagationPolicy",
                name,
                "orphanDependents and deletionPropagation cannot be both set",
            )));
        }
        Ok(DeleteOptions { grace_period_seconds, propagation, orphan_dependents })
    }
}

/// Adds the DeleteOptions given as query parameters (`?gracePeriodSeconds=0`,
/// `?propagationPolicy=Orphan`, `?orphanDependents=true`) to a body's, the body winning, as
/// upstream decodes query parameters into DeleteOptions when the body leaves them unset.
pub fn with_query(mut options: Value, query: &HashMap<String, String>) -> Result<Value> {
    if !options.is_object() {
        return Err(ApiError::bad_request("DeleteOptions must be a JSON object"));
    }
    if let Some(g) = query.get("gracePeriodSeconds").filter(|g| !g.is_empty()) {
        if options["gracePeriodSeconds"].is_null() {
            let g: i64 = g
                .parse()
                .map_err(|_| ApiError::bad_request(format!("invalid gracePeriodSeconds {g:?}")))?;
            options["gracePeriodSeconds"] = g.into();
        }
    }
    if let Some(p) = query.get("propagationPolicy").filter(|p| !p.is_empty()) {
        if options["propagationPolicy"].is_null() {
            options["propagationPolicy"] = p.clone().into();
        }
    }
    if let Some(o) = query.get("orphanDependents").filter(|o| !o.is_empty()) {
        if options["orphanDependents"].is_null() {
            let o: bool = o
                .parse()
                .map_err(|_| ApiError::bad_request(format!("invalid orphanDependents {o:?}")))?;
            options["orphanDependents"] = o.into();
        }
    }
    Ok(options)
}

/// What to do with the object.
#[derive(Debug, Clone, PartialEq)]
pub enum Plan {
    /// Remove it from the store now.
    Delete,
    /// Write this new version (deletion pending: finalizers or a grace period).
    Update(Value),
    /// Nothing to write: a deletion is already pending as asked.
    Unchanged,
}

/// Decides what a DELETE with `options` does to `old`, at time `now`.
pub fn plan(info: &ResourceInfo, old: &Value, options: &DeleteOptions, now: Timestamp) -> Plan {
    let mut new = old.clone();
    let mut options = options.clone();
    if options.grace_period_seconds.is_some_and(|g| g < 0) {
        options.grace_period_seconds = Some(1);
    }
    let graceful = if is_pod(info) {
        match before_delete_pod(&mut new, &mut options, now) {
            Graceful::Pending => return Plan::Unchanged,
            Graceful::No => false,
            Graceful::Yes => true,
        }
    } else {
        false
    };
    let finalizers = gc_finalizers(info, &new, &options);
    if let Some(f) = &finalizers {
        new["metadata"]["finalizers"] = json!(f);
    }
    let remaining = strings(&new["metadata"]["finalizers"]);
    let is_namespace = info.group.is_empty() && info.kind == "Namespace";
    if !remaining.is_empty() || is_namespace {
        if new["metadata"]["deletionTimestamp"].is_null() {
            mark_deleting(&mut new, now, 0);
        }
        if is_namespace {
            new["status"]["phase"] = "Terminating".into();
        }
        return if new == *old { Plan::Unchanged } else { Plan::Update(new) };
    }
    if !graceful || new["metadata"]["deletionGracePeriodSeconds"].as_i64().unwrap_or(0) == 0 {
        return Plan::Delete;
    }
    Plan::Update(new)
}

enum Graceful {
    No,
    Yes,
    Pending,
}

fn is_pod(info: &ResourceInfo) -> bool {
    info.group.is_empty() && info.kind == "Pod"
}

/// `BeforeDelete` with the pod strategy's `CheckGracefulDelete`.
fn before_delete_pod(pod: &mut Value, options: &mut DeleteOptions, now: Timestamp) -> Graceful {
    let meta = &pod["metadata"];
    if let Some(ts) = meta["deletionTimestamp"].as_str() {
        let current = meta["deletionGracePeriodSeconds"].as_i64().unwrap_or(0);
        if current <= 0 {
            // a deletion that got its grace period 0 written but not its delete: finish it
            return Graceful::No;
        }
        let Some(period) = options.grace_period_seconds else {
            return Graceful::Pending;
        };
        if period >= current {
            return Graceful::Pending;
        }
        // only a shorter grace period may be given: move the deadline earlier
        let at = ts.parse::<Timestamp>().unwrap_or(now);
        let at = at
            .checked_sub(SignedDuration::from_secs(current))
            .and_then(|t| t.checked_add(SignedDuration::from_secs(period)))
            .unwrap_or(now);
        pod["metadata"]["deletionTimestamp"] = format_time(at).into();
        pod["metadata"]["deletionGracePeriodSeconds"] = period.into();
        return Graceful::Yes;
    }
    let mut period = options
        .grace_period_seconds
        .or_else(|| pod["spec"]["terminationGracePeriodSeconds"].as_i64())
        .unwrap_or(0);
    let unbound = pod["spec"]["nodeName"].as_str().unwrap_or_default().is_empty();
    let finished = matches!(pod["status"]["phase"].as_str(), Some("Failed" | "Succeeded"));
    if unbound || finished {
        period = 0;
    }
    options.grace_period_seconds = Some(period);
    mark_deleting(pod, now, period);
    Graceful::Yes
}

/// Sets `deletionTimestamp` (now + grace) and `deletionGracePeriodSeconds`, and bumps a
/// tracked generation, as upstream does on the first deletion write.
fn mark_deleting(obj: &mut Value, now: Timestamp, grace: i64) {
    let at = now.checked_add(SignedDuration::from_secs(grace.max(0))).unwrap_or(now);
    obj["metadata"]["deletionTimestamp"] = format_time(at).into();
    obj["metadata"]["deletionGracePeriodSeconds"] = grace.into();
    if let Some(g) = obj["metadata"]["generation"].as_i64().filter(|g| *g > 0) {
        obj["metadata"]["generation"] = (g + 1).into();
    }
}

fn format_time(t: Timestamp) -> String {
    t.round(jiff::Unit::Second).unwrap_or(t).to_string()
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| a.iter().filter_map(Value::as_str).map(str::to_owned).collect())
        .unwrap_or_default()
}

/// Core/v1 ReplicationControllers orphan by default (for backward compatibility), every
/// other resource deletes its dependents in the background.
fn orphans_by_default(info: &ResourceInfo) -> bool {
    info.group.is_empty() && info.version == "v1" && info.kind == "ReplicationController"
}

/// The finalizer list after applying the deletion's propagation, or `None` when unchanged.
fn gc_finalizers(info: &ResourceInfo, obj: &Value, options: &DeleteOptions) -> Option<Vec<String>> {
    let current = strings(&obj["metadata"]["finalizers"]);
    let has = |f: &str| current.iter().any(|c| c == f);
    let orphan = match (options.orphan_dependents, options.propagation) {
        (Some(o), _) => o,
        (None, Some(p)) => p == Propagation::Orphan,
        (None, None) if has(FINALIZER_ORPHAN) => true,
        (None, None) if has(FINALIZER_FOREGROUND) => false,
        (None, None) => orphans_by_default(info),
    };
    let foreground = match (options.orphan_dependents, options.propagation) {
        (Some(_), _) => false,
        (None, Some(p)) => p == Propagation::Foreground,
        (None, None) => has(FINALIZER_FOREGROUND) && !has(FINALIZER_ORPHAN),
    };
    let mut next: Vec<String> = current
        .iter()
        .filter(|f| *f != FINALIZER_ORPHAN && *f != FINALIZER_FOREGROUND)
        .cloned()
        .collect();
    if orphan {
        next.push(FINALIZER_ORPHAN.into());
    }
    if foreground {
        next.push(FINALIZER_FOREGROUND.into());
    }
    let same = {
        let mut a = current.clone();
        let mut b = next.clone();
        a.sort();
        a.dedup();
        b.sort();
        b.dedup();
        a == b
    };
    (!same).then_some(next)
}

#[cfg(test)]
mod tests;
