//! Conversion between served versions that share one storage version.
//!
//! `events.k8s.io/v1` Events are stored as core `v1` Events (one set of events, two APIs).
//! `autoscaling/v1` HorizontalPodAutoscalers are stored as `autoscaling/v2`; as upstream does, what v1 cannot express (metrics other than the CPU
//! utilization target, scaling behavior, status conditions and current metrics) travels in
//! annotations so that a v1 round trip loses nothing.

use serde_json::{json, Map, Value};

use crate::ResourceInfo;

const METRICS: &str = "autoscaling.alpha.kubernetes.io/metrics";
const BEHAVIOR: &str = "autoscaling.alpha.kubernetes.io/behavior";
const CONDITIONS: &str = "autoscaling.alpha.kubernetes.io/conditions";
const CURRENT_METRICS: &str = "autoscaling.alpha.kubernetes.io/current-metrics";

/// Converts an object of `info`'s version into its storage version (a no-op when they agree).
pub fn to_storage(info: &ResourceInfo, obj: Value) -> Value {
    match (info.group, info.version, info.storage_version) {
        ("autoscaling", "v1", Some(("autoscaling", "v2"))) => hpa_v1_to_v2(obj),
        ("events.k8s.io", "v1", Some(("", "v1"))) => rename_event(obj, "v1", EVENT_FIELDS, false),
        _ => obj,
    }
}

/// Converts a stored object into `info`'s version (a no-op when they agree).
pub fn from_storage(info: &ResourceInfo, obj: Value) -> Value {
    match (info.group, info.version, info.storage_version) {
        ("autoscaling", "v1", Some(("autoscaling", "v2"))) => hpa_v2_to_v1(obj),
        ("events.k8s.io", "v1", Some(("", "v1"))) => rename_event(obj, "events.k8s.io/v1", EVENT_FIELDS, true),
        _ => obj,
    }
}

/// events.k8s.io/v1 field ↔ core/v1 field (upstream's events/v1 conversion).
const EVENT_FIELDS: &[(&str, &str)] = &[
    ("regarding", "involvedObject"),
    ("note", "message"),
    ("reportingController", "reportingComponent"),
    ("deprecatedSource", "source"),
    ("deprecatedFirstTimestamp", "firstTimestamp"),
    ("deprecatedLastTimestamp", "lastTimestamp"),
    ("deprecatedCount", "count"),
];

/// Renames the fields that differ between the two Event APIs; `to_events_api` picks the direction.
fn rename_event(mut obj: Value, api_version: &str, fields: &[(&str, &str)], to_events_api: bool) -> Value {
    obj["apiVersion"] = api_version.into();
    if let Some(m) = obj.as_object_mut() {
        for (new_name, core_name) in fields {
            let (from, to) = if to_events_api { (core_name, new_name) } else { (new_name, core_name) };
            if let Some(v) = m.remove(*from) {
                m.insert((*to).to_owned(), v);
            }
        }
    }
    obj
}

fn is_cpu_utilization(m: &Value) -> bool {
    m["type"] == "Resource" && m["resource"]["name"] == "cpu" && m["resource"]["target"]["type"] == "Utilization"
}

fn take_annotation(obj: &mut Value, key: &str) -> Option<Value> {
    let annotations = obj.get_mut("metadata")?.get_mut("annotations")?.as_object_mut()?;
    let raw = annotations.remove(key)?;
    if annotations.is_empty() {
        if let Some(m) = obj["metadata"].as_object_mut() {
            m.remove("annotations");
        }
    }
    serde_json::from_str(raw.as_str()?).ok()
}

fn put_annotation(obj: &mut Value, key: &str, value: &Value) {
    if !obj["metadata"]["annotations"].is_object() {
        obj["metadata"]["annotations"] = json!({});
    }
    obj["metadata"]["annotations"][key] = value.to_string().into();
}

fn hpa_v1_to_v2(mut obj: Value) -> Value {
    obj["apiVersion"] = "autoscaling/v2".into();
    let extra_metrics = take_annotation(&mut obj, METRICS);
    let behavior = take_annotation(&mut obj, BEHAVIOR);
    let conditions = take_annotation(&mut obj, CONDITIONS);
    let current = take_annotation(&mut obj, CURRENT_METRICS);
    let mut metrics: Vec<Value> = Vec::new();
    if let Some(spec) = obj.get_mut("spec").and_then(Value::as_object_mut) {
        if let Some(cpu) = spec.remove("targetCPUUtilizationPercentage") {
            metrics.push(json!({"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": cpu}}}));
        }
        if let Some(Value::Array(extra)) = extra_metrics {
            metrics.extend(extra.into_iter().filter(|m| !is_cpu_utilization(m)));
        }
        if !metrics.is_empty() {
            spec.insert("metrics".into(), Value::Array(metrics));
        }
        if let Some(b) = behavior {
            spec.insert("behavior".into(), b);
        }
    }
    if let Some(status) = obj.get_mut("status").and_then(Value::as_object_mut) {
        let mut current_metrics: Vec<Value> = Vec::new();
        if let Some(cpu) = status.remove("currentCPUUtilizationPercentage") {
            current_metrics.push(json!({"type": "Resource", "resource": {"name": "cpu", "current": {"averageUtilization": cpu}}}));
        }
        if let Some(Value::Array(extra)) = current {
            current_metrics.extend(extra.into_iter().filter(|m| !(m["type"] == "Resource" && m["resource"]["name"] == "cpu")));
        }
        if !current_metrics.is_empty() {
            status.insert("currentMetrics".into(), Value::Array(current_metrics));
        }
        if let Some(c) = conditions {
            status.insert("conditions".into(), c);
        }
    }
    obj
}

fn hpa_v2_to_v1(mut obj: Value) -> Value {
    obj["apiVersion"] = "autoscaling/v1".into();
    let mut annotations: Map<String, Value> = Map::new();
    if let Some(spec) = obj.get_mut("spec").and_then(Value::as_object_mut) {
        if let Some(Value::Array(metrics)) = spec.remove("metrics") {
            let (cpu, other): (Vec<Value>, Vec<Value>) = metrics.into_iter().partition(is_cpu_utilization);
            if let Some(c) = cpu.first() {
                spec.insert("targetCPUUtilizationPercentage".into(), c["resource"]["target"]["averageUtilization"].clone());
            }
            if !other.is_empty() {
                annotations.insert(METRICS.into(), Value::Array(other));
            }
        }
        if let Some(b) = spec.remove("behavior") {
            annotations.insert(BEHAVIOR.into(), b);
        }
    }
    if let Some(status) = obj.get_mut("status").and_then(Value::as_object_mut) {
        if let Some(Value::Array(current)) = status.remove("currentMetrics") {
            let (cpu, other): (Vec<Value>, Vec<Value>) =
                current.into_iter().partition(|m| m["type"] == "Resource" && m["resource"]["name"] == "cpu");
            if let Some(u) = cpu.first().map(|c| c["resource"]["current"]["averageUtilization"].clone()).filter(|u| !u.is_null()) {
                status.insert("currentCPUUtilizationPercentage".into(), u);
            }
            if !other.is_empty() {
                annotations.insert(CURRENT_METRICS.into(), Value::Array(other));
            }
        }
        if let Some(c) = status.remove("conditions") {
            annotations.insert(CONDITIONS.into(), c);
        }
    }
    for (k, v) in annotations {
        put_annotation(&mut obj, &k, &v);
    }
    obj
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::find;

    #[test]
    fn hpa_v1_round_trips_through_v2_storage() {
        let v1 = find("autoscaling", "v1", "horizontalpodautoscalers").unwrap();
        let obj = json!({
            "apiVersion": "autoscaling/v1", "kind": "HorizontalPodAutoscaler",
            "metadata": {"name": "h", "namespace": "d"},
            "spec": {"scaleTargetRef": {"kind": "Deployment", "name": "web", "apiVersion": "apps/v1"},
                     "minReplicas": 1, "maxReplicas": 5, "targetCPUUtilizationPercentage": 70},
            "status": {"currentReplicas": 2, "desiredReplicas": 2, "currentCPUUtilizationPercentage": 40},
        });
        let stored = to_storage(v1, obj.clone());
        assert_eq!(stored["apiVersion"], "autoscaling/v2");
        assert_eq!(stored["spec"]["metrics"][0]["resource"]["target"]["averageUtilization"], 70);
        assert!(stored["spec"].get("targetCPUUtilizationPercentage").is_none());
        assert_eq!(stored["status"]["currentMetrics"][0]["resource"]["current"]["averageUtilization"], 40);
        assert_eq!(from_storage(v1, stored), obj);
    }

    #[test]
    fn events_api_events_are_core_events_in_storage() {
        let ev = find("events.k8s.io", "v1", "events").unwrap();
        let obj = json!({
            "apiVersion": "events.k8s.io/v1", "kind": "Event", "metadata": {"name": "e"},
            "regarding": {"kind": "Pod", "name": "p"}, "note": "hello", "reason": "Scheduled",
            "reportingController": "default-scheduler", "type": "Normal", "eventTime": "2026-01-01T00:00:00.000000Z",
        });
        let core = to_storage(ev, obj.clone());
        assert_eq!(core["apiVersion"], "v1");
        assert_eq!(core["involvedObject"]["name"], "p");
        assert_eq!(core["message"], "hello");
        assert_eq!(core["reportingComponent"], "default-scheduler");
        let mut back = from_storage(ev, core);
        assert_eq!(back["note"], "hello");
        // key order may differ; compare as sets of fields
        back.as_object_mut().unwrap().sort_keys();
        let mut want = obj;
        want.as_object_mut().unwrap().sort_keys();
        assert_eq!(back, want);
    }

    #[test]
    fn v2_only_fields_survive_a_v1_round_trip() {
        let v1 = find("autoscaling", "v1", "horizontalpodautoscalers").unwrap();
        let v2obj = json!({
            "apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
            "metadata": {"name": "h"},
            "spec": {"maxReplicas": 3, "metrics": [
                {"type": "Resource", "resource": {"name": "memory", "target": {"type": "AverageValue", "averageValue": "1Gi"}}}
            ], "behavior": {"scaleDown": {"stabilizationWindowSeconds": 60}}},
        });
        let as_v1 = from_storage(v1, v2obj.clone());
        assert!(as_v1["spec"].get("metrics").is_none());
        assert!(as_v1["metadata"]["annotations"][METRICS].is_string());
        assert_eq!(to_storage(v1, as_v1), v2obj);
    }
}
