//! Cells of the workload printers: pods and their controllers, as `printPod`,
//! `printDeployment`, `printJob`, ... in kubernetes `pkg/printers/internalversion`.

use jiff::Timestamp;
use serde_json::{json, Value};

use super::format::{
    array_at, bool_at, container_cells, format_label_selector, format_labels, human_duration,
    int_at, int_or_string, label_selector_string, opt_str_at, seconds_between, since, str_at,
    timestamp_at, NONE, UNKNOWN, UNSET,
};
use super::{age_of, name_of};

/// `podutil.IsRestartableInitContainer`: a sidecar (`restartPolicy: Always`).
fn is_restartable(init: Option<&Value>) -> bool {
    init.is_some_and(|c| str_at(c, "/restartPolicy") == "Always")
}

fn has_condition(obj: &Value, type_: &str, status: &str) -> bool {
    array_at(obj, "/status/conditions")
        .iter()
        .any(|c| str_at(c, "/type") == type_ && str_at(c, "/status") == status)
}

/// The later of `current` and the container's last termination time.
fn later_restart(current: Option<Timestamp>, status: &Value) -> Option<Timestamp> {
    match (
        current,
        timestamp_at(status, "/lastState/terminated/finishedAt"),
    ) {
        (Some(a), Some(b)) => Some(a.max(b)),
        (a, b) => a.or(b),
    }
}

/// Counters `printPod` accumulates over container statuses.
struct PodProgress {
    reason: String,
    ready: i64,
    restarts: i64,
    last_restart: Option<Timestamp>,
}

/// The init-container pass of `printPod`: `Init:N/M`, `Init:<reason>`, `Init:ExitCode:N`.
/// Returns whether the pod is still initializing.
fn scan_init_containers(pod: &Value, p: &mut PodProgress) -> (bool, i64, Option<Timestamp>) {
    let inits = array_at(pod, "/spec/initContainers");
    let find_init = |name: &str| inits.iter().find(|c| str_at(c, "/name") == name);
    let mut sidecar_restarts = 0;
    let mut sidecar_last_restart = None;
    let mut initializing = false;
    for (i, status) in array_at(pod, "/status/initContainerStatuses")
        .iter()
        .enumerate()
    {
        let restartable = is_restartable(find_init(str_at(status, "/name")));
        p.restarts += int_at(status, "/restartCount");
        p.last_restart = later_restart(p.last_restart, status);
        if restartable {
            sidecar_restarts += int_at(status, "/restartCount");
            sidecar_last_restart = later_restart(sidecar_last_restart, status);
        }
        let terminated = status
            .pointer("/state/terminated")
            .filter(|t| t.is_object());
        let waiting_reason = str_at(status, "/state/waiting/reason");
        if terminated.is_some_and(|t| int_at(t, "/exitCode") == 0) {
            continue;
        }
        if restartable && bool_at(status, "/started") {
            if bool_at(status, "/ready") {
                p.ready += 1;
            }
            continue;
        }
        p.reason = if let Some(t) = terminated {
            match str_at(t, "/reason") {
                "" if int_at(t, "/signal") != 0 => format!("Init:Signal:{}", int_at(t, "/signal")),
                "" => format!("Init:ExitCode:{}", int_at(t, "/exitCode")),
                reason => format!("Init:{reason}"),
            }
        } else if !waiting_reason.is_empty() && waiting_reason != "PodInitializing" {
            format!("Init:{waiting_reason}")
        } else {
            format!("Init:{i}/{}", inits.len())
        };
        initializing = true;
        break;
    }
    (initializing, sidecar_restarts, sidecar_last_restart)
}

/// The app-container pass of `printPod`, last container first.
fn scan_containers(pod: &Value, p: &mut PodProgress) {
    let mut has_running = false;
    for status in array_at(pod, "/status/containerStatuses").iter().rev() {
        p.restarts += int_at(status, "/restartCount");
        p.last_restart = later_restart(p.last_restart, status);
        let waiting_reason = str_at(status, "/state/waiting/reason");
        let terminated = status
            .pointer("/state/terminated")
            .filter(|t| t.is_object());
        if !waiting_reason.is_empty() {
            p.reason = waiting_reason.to_owned();
        } else if let Some(t) = terminated {
            p.reason = match str_at(t, "/reason") {
                "" if int_at(t, "/signal") != 0 => format!("Signal:{}", int_at(t, "/signal")),
                "" => format!("ExitCode:{}", int_at(t, "/exitCode")),
                reason => reason.to_owned(),
            };
        } else if bool_at(status, "/ready")
            && status
                .pointer("/state/running")
                .is_some_and(Value::is_object)
        {
            has_running = true;
            p.ready += 1;
        }
    }
    // a pod whose last container completed while another still runs is Running again
    if p.reason == "Completed" && has_running {
        p.reason = if has_condition(pod, "Ready", "True") {
            "Running"
        } else {
            "NotReady"
        }
        .into();
    }
}

/// `printPod`: Name, Ready, Status, Restarts, Age, IP, Node, Nominated Node, Readiness Gates.
pub(super) fn pod(pod: &Value, now: Timestamp) -> Vec<Value> {
    let phase = str_at(pod, "/status/phase");
    let mut reason = match str_at(pod, "/status/reason") {
        "" => phase.to_owned(),
        r => r.to_owned(),
    };
    let gated = array_at(pod, "/status/conditions")
        .iter()
        .any(|c| str_at(c, "/type") == "PodScheduled" && str_at(c, "/reason") == "SchedulingGated");
    if gated {
        reason = "SchedulingGated".to_owned();
    }
    let inits = array_at(pod, "/spec/initContainers");
    let total = array_at(pod, "/spec/containers").len()
        + inits.iter().filter(|c| is_restartable(Some(c))).count();

    let mut p = PodProgress {
        reason,
        ready: 0,
        restarts: 0,
        last_restart: None,
    };
    let (initializing, sidecar_restarts, sidecar_last_restart) = scan_init_containers(pod, &mut p);
    if !initializing || has_condition(pod, "Initialized", "True") {
        p.restarts = sidecar_restarts;
        p.last_restart = sidecar_last_restart;
        scan_containers(pod, &mut p);
    }

    if pod
        .pointer("/metadata/deletionTimestamp")
        .is_some_and(|d| !d.is_null())
    {
        if str_at(pod, "/status/reason") == "NodeLost" {
            p.reason = "Unknown".to_owned();
        } else if phase != "Succeeded" && phase != "Failed" {
            p.reason = "Terminating".to_owned();
        }
    }

    let restarts = match p.last_restart {
        Some(last) if p.restarts != 0 => format!("{} ({} ago)", p.restarts, since(Some(last), now)),
        _ => p.restarts.to_string(),
    };
    let ip = array_at(pod, "/status/podIPs")
        .first()
        .map(|ip| str_at(ip, "/ip"))
        .or_else(|| opt_str_at(pod, "/status/podIP"))
        .filter(|ip| !ip.is_empty())
        .unwrap_or(NONE);
    let or_none = |s: &'static str| -> &str {
        match str_at(pod, s) {
            "" => NONE,
            v => v,
        }
    };
    vec![
        name_of(pod),
        json!(format!("{}/{total}", p.ready)),
        json!(p.reason),
        json!(restarts),
        age_of(pod, now),
        json!(ip),
        json!(or_none("/spec/nodeName")),
        json!(or_none("/status/nominatedNodeName")),
        json!(readiness_gates(pod)),
    ]
}

/// `N/M` readiness gates whose condition is True, or `<none>` without gates.
fn readiness_gates(pod: &Value) -> String {
    let gates = array_at(pod, "/spec/readinessGates");
    if gates.is_empty() {
        return NONE.to_owned();
    }
    let conditions = array_at(pod, "/status/conditions");
    let true_count = gates
        .iter()
        .filter(|g| {
            let wanted = str_at(g, "/conditionType");
            conditions
                .iter()
                .find(|c| str_at(c, "/type") == wanted)
                .is_some_and(|c| str_at(c, "/status") == "True")
        })
        .count();
    format!("{true_count}/{}", gates.len())
}

/// `printPodTemplate`: Name, Containers, Images, Pod Labels.
pub(super) fn pod_template(obj: &Value) -> Vec<Value> {
    let (names, images) = container_cells(array_at(obj, "/template/spec/containers"));
    let labels = format_labels(obj.pointer("/template/metadata/labels"));
    vec![name_of(obj), json!(names), json!(images), json!(labels)]
}

/// `printPodDisruptionBudget`: Name, Min Available, Max Unavailable, Allowed Disruptions, Age.
pub(super) fn pod_disruption_budget(obj: &Value, now: Timestamp) -> Vec<Value> {
    let or_na = |p: &str| {
        obj.pointer(p)
            .filter(|v| !v.is_null())
            .map_or("N/A".into(), int_or_string)
    };
    vec![
        name_of(obj),
        json!(or_na("/spec/minAvailable")),
        json!(or_na("/spec/maxUnavailable")),
        json!(int_at(obj, "/status/disruptionsAllowed")),
        age_of(obj, now),
    ]
}

/// `printReplicationController`: Name, Desired, Current, Ready, Age, Containers, Images,
/// Selector (a plain label map).
pub(super) fn replication_controller(obj: &Value, now: Timestamp) -> Vec<Value> {
    let (names, images) = container_cells(array_at(obj, "/spec/template/spec/containers"));
    vec![
        name_of(obj),
        json!(int_at(obj, "/spec/replicas")),
        json!(int_at(obj, "/status/replicas")),
        json!(int_at(obj, "/status/readyReplicas")),
        age_of(obj, now),
        json!(names),
        json!(images),
        json!(format_labels(obj.pointer("/spec/selector"))),
    ]
}

/// `printReplicaSet`: Name, Desired, Current, Ready, Age, Containers, Images, Selector.
pub(super) fn replica_set(obj: &Value, now: Timestamp) -> Vec<Value> {
    let (names, images) = container_cells(array_at(obj, "/spec/template/spec/containers"));
    vec![
        name_of(obj),
        json!(int_at(obj, "/spec/replicas")),
        json!(int_at(obj, "/status/replicas")),
        json!(int_at(obj, "/status/readyReplicas")),
        age_of(obj, now),
        json!(names),
        json!(images),
        json!(format_label_selector(obj.pointer("/spec/selector"))),
    ]
}

/// `printDaemonSet`: Name, Desired, Current, Ready, Up-to-date, Available, Node Selector,
/// Age, Containers, Images, Selector.
pub(super) fn daemon_set(obj: &Value, now: Timestamp) -> Vec<Value> {
    let (names, images) = container_cells(array_at(obj, "/spec/template/spec/containers"));
    vec![
        name_of(obj),
        json!(int_at(obj, "/status/desiredNumberScheduled")),
        json!(int_at(obj, "/status/currentNumberScheduled")),
        json!(int_at(obj, "/status/numberReady")),
        json!(int_at(obj, "/status/updatedNumberScheduled")),
        json!(int_at(obj, "/status/numberAvailable")),
        json!(format_labels(
            obj.pointer("/spec/template/spec/nodeSelector")
        )),
        age_of(obj, now),
        json!(names),
        json!(images),
        json!(format_label_selector(obj.pointer("/spec/selector"))),
    ]
}

/// `printStatefulSet`: Name, Ready (`ready/desired`), Age, Containers, Images.
pub(super) fn stateful_set(obj: &Value, now: Timestamp) -> Vec<Value> {
    let (names, images) = container_cells(array_at(obj, "/spec/template/spec/containers"));
    let ready = format!(
        "{}/{}",
        int_at(obj, "/status/readyReplicas"),
        int_at(obj, "/spec/replicas")
    );
    vec![
        name_of(obj),
        json!(ready),
        age_of(obj, now),
        json!(names),
        json!(images),
    ]
}

/// `printDeployment`: Name, Ready (`ready/desired`), Up-to-date, Available, Age, Containers,
/// Images, Selector (`<invalid>` for a bad selector, "" for none).
pub(super) fn deployment(obj: &Value, now: Timestamp) -> Vec<Value> {
    let (names, images) = container_cells(array_at(obj, "/spec/template/spec/containers"));
    let ready = format!(
        "{}/{}",
        int_at(obj, "/status/readyReplicas"),
        int_at(obj, "/spec/replicas")
    );
    let selector = label_selector_string(obj.pointer("/spec/selector"))
        .unwrap_or_else(|()| "<invalid>".to_owned());
    vec![
        name_of(obj),
        json!(ready),
        json!(int_at(obj, "/status/updatedReplicas")),
        json!(int_at(obj, "/status/availableReplicas")),
        age_of(obj, now),
        json!(names),
        json!(images),
        json!(selector),
    ]
}

/// `hasJobCondition`: the first condition of the type decides.
fn job_condition(obj: &Value, type_: &str) -> bool {
    array_at(obj, "/status/conditions")
        .iter()
        .find(|c| str_at(c, "/type") == type_)
        .is_some_and(|c| str_at(c, "/status") == "True")
}

/// `printJob`: Name, Status, Completions, Duration, Age, Containers, Images, Selector.
pub(super) fn job(obj: &Value, now: Timestamp) -> Vec<Value> {
    let succeeded = int_at(obj, "/status/succeeded");
    let completions = match obj.pointer("/spec/completions").and_then(Value::as_i64) {
        Some(c) => format!("{succeeded}/{c}"),
        None => match int_at(obj, "/spec/parallelism") {
            p if p > 1 => format!("{succeeded}/1 of {p}"),
            _ => format!("{succeeded}/1"),
        },
    };
    let duration = match timestamp_at(obj, "/status/startTime") {
        None => String::new(),
        Some(start) => {
            let end = timestamp_at(obj, "/status/completionTime").unwrap_or(now);
            human_duration(seconds_between(start, end))
        }
    };
    let deleting = obj
        .pointer("/metadata/deletionTimestamp")
        .is_some_and(|d| !d.is_null());
    let status = if job_condition(obj, "Complete") {
        "Complete"
    } else if job_condition(obj, "Failed") {
        "Failed"
    } else if deleting {
        "Terminating"
    } else if job_condition(obj, "Suspended") {
        "Suspended"
    } else if job_condition(obj, "FailureTarget") {
        "FailureTarget"
    } else {
        "Running"
    };
    let (names, images) = container_cells(array_at(obj, "/spec/template/spec/containers"));
    vec![
        name_of(obj),
        json!(status),
        json!(completions),
        json!(duration),
        age_of(obj, now),
        json!(names),
        json!(images),
        json!(format_label_selector(obj.pointer("/spec/selector"))),
    ]
}

/// `printCronJob`: Name, Schedule, Timezone, Suspend, Active, Last Schedule, Age,
/// Containers, Images, Selector.
pub(super) fn cron_job(obj: &Value, now: Timestamp) -> Vec<Value> {
    let last = match timestamp_at(obj, "/status/lastScheduleTime") {
        Some(ts) => since(Some(ts), now),
        None => NONE.to_owned(),
    };
    let suspend = match obj.pointer("/spec/suspend").and_then(Value::as_bool) {
        Some(b) => super::format::print_bool(b),
        None => UNSET,
    };
    let (names, images) = container_cells(array_at(
        obj,
        "/spec/jobTemplate/spec/template/spec/containers",
    ));
    vec![
        name_of(obj),
        json!(str_at(obj, "/spec/schedule")),
        json!(opt_str_at(obj, "/spec/timeZone").unwrap_or(NONE)),
        json!(suspend),
        json!(array_at(obj, "/status/active").len()),
        json!(last),
        age_of(obj, now),
        json!(names),
        json!(images),
        json!(format_label_selector(
            obj.pointer("/spec/jobTemplate/spec/selector")
        )),
    ]
}

/// `printControllerRevision`: Name, Controller (`kind.group/name`), Revision, Age.
pub(super) fn controller_revision(obj: &Value, now: Timestamp) -> Vec<Value> {
    let controller = array_at(obj, "/metadata/ownerReferences")
        .iter()
        .find(|r| bool_at(r, "/controller"))
        .map_or_else(
            || NONE.to_owned(),
            |r| {
                let group = match str_at(r, "/apiVersion").rsplit_once('/') {
                    Some((group, _)) => group,
                    None => "",
                };
                let kind = str_at(r, "/kind");
                let group_kind = if group.is_empty() {
                    kind.to_owned()
                } else {
                    format!("{kind}.{group}")
                };
                if group_kind.is_empty() {
                    str_at(r, "/name").to_owned()
                } else {
                    format!("{}/{}", group_kind.to_lowercase(), str_at(r, "/name"))
                }
            },
        );
    vec![
        name_of(obj),
        json!(controller),
        json!(int_at(obj, "/revision")),
        age_of(obj, now),
    ]
}

/// `printHorizontalPodAutoscaler`: Name, Reference, Targets, MinPods, MaxPods, Replicas,
/// Age. Reads autoscaling/v2 objects; autoscaling/v1 ones are converted first.
pub(super) fn horizontal_pod_autoscaler(obj: &Value, now: Timestamp) -> Vec<Value> {
    let v2;
    let obj = if str_at(obj, "/apiVersion") == "autoscaling/v1" {
        v2 = hpa_v1_to_v2(obj);
        &v2
    } else {
        obj
    };
    let reference = format!(
        "{}/{}",
        str_at(obj, "/spec/scaleTargetRef/kind"),
        str_at(obj, "/spec/scaleTargetRef/name")
    );
    let min_pods = match obj.pointer("/spec/minReplicas").and_then(Value::as_i64) {
        Some(n) => n.to_string(),
        None => UNSET.to_owned(),
    };
    vec![
        name_of(obj),
        json!(reference),
        json!(hpa_metrics(
            array_at(obj, "/spec/metrics"),
            array_at(obj, "/status/currentMetrics")
        )),
        json!(min_pods),
        json!(int_at(obj, "/spec/maxReplicas")),
        json!(int_at(obj, "/status/currentReplicas")),
        age_of(obj, now),
    ]
}

/// The parts of the autoscaling/v1 to v2 conversion the printer reads: the CPU target and
/// current utilization become a `Resource` metric.
fn hpa_v1_to_v2(obj: &Value) -> Value {
    let mut out = obj.clone();
    if let Some(target) = obj
        .pointer("/spec/targetCPUUtilizationPercentage")
        .and_then(Value::as_i64)
    {
        out["spec"]["metrics"] = json!([{"type": "Resource", "resource": {
            "name": "cpu", "target": {"type": "Utilization", "averageUtilization": target}}}]);
    }
    if let Some(current) = obj
        .pointer("/status/currentCPUUtilizationPercentage")
        .and_then(Value::as_i64)
    {
        out["status"]["currentMetrics"] = json!([{"type": "Resource", "resource": {
            "name": "cpu", "current": {"averageUtilization": current}}}]);
    }
    out
}

/// `formatHPAMetrics`: `current/target` per metric, at most two, then ` + N more...`.
fn hpa_metrics(specs: &[Value], statuses: &[Value]) -> String {
    if specs.is_empty() {
        return NONE.to_owned();
    }
    let list: Vec<String> = specs
        .iter()
        .enumerate()
        .map(|(i, spec)| {
            let status = statuses.get(i);
            match str_at(spec, "/type") {
                "External" => value_metric(spec, status, "external"),
                "Object" => value_metric(spec, status, "object"),
                "Pods" => {
                    let current = status
                        .and_then(|s| s.pointer("/pods/current/averageValue"))
                        .map_or(UNKNOWN.to_owned(), quantity);
                    format!(
                        "{current}/{}",
                        quantity_at(spec, "/pods/target/averageValue")
                    )
                }
                "Resource" => resource_metric(spec, status, "resource"),
                "ContainerResource" => resource_metric(spec, status, "containerResource"),
                _ => "<unknown type>".to_owned(),
            }
        })
        .collect();
    if list.len() > 2 {
        return format!("{} + {} more...", list[..2].join(", "), list.len() - 2);
    }
    list.join(", ")
}

fn quantity(v: &Value) -> String {
    int_or_string(v)
}

/// A `resource.Quantity` field; Go's zero quantity prints as `0`.
fn quantity_at(obj: &Value, pointer: &str) -> String {
    obj.pointer(pointer)
        .filter(|v| !v.is_null())
        .map_or("0".to_owned(), quantity)
}

/// External and Object metrics: `current/target (avg)` or `current/target`.
fn value_metric(spec: &Value, status: Option<&Value>, key: &str) -> String {
    let source = status.and_then(|s| s.get(key)).filter(|s| s.is_object());
    if spec
        .pointer(&format!("/{key}/target/averageValue"))
        .is_some_and(|v| !v.is_null())
    {
        let current = source
            .and_then(|s| s.pointer("/current/averageValue"))
            .filter(|v| !v.is_null())
            .map_or(UNKNOWN.to_owned(), quantity);
        let target = quantity_at(spec, &format!("/{key}/target/averageValue"));
        format!("{current}/{target} (avg)")
    } else {
        let current = source.map_or(UNKNOWN.to_owned(), |s| quantity_at(s, "/current/value"));
        format!(
            "{current}/{}",
            quantity_at(spec, &format!("/{key}/target/value"))
        )
    }
}

/// Resource and ContainerResource metrics: `name: current/target`, utilization in `%`.
fn resource_metric(spec: &Value, status: Option<&Value>, key: &str) -> String {
    let name = str_at(spec, &format!("/{key}/name"));
    let source = status.and_then(|s| s.get(key)).filter(|s| s.is_object());
    if spec
        .pointer(&format!("/{key}/target/averageValue"))
        .is_some_and(|v| !v.is_null())
    {
        let current = source.map_or(UNKNOWN.to_owned(), |s| {
            quantity_at(s, "/current/averageValue")
        });
        let target = quantity_at(spec, &format!("/{key}/target/averageValue"));
        return format!("{name}: {current}/{target}");
    }
    let current = source
        .and_then(|s| s.pointer("/current/averageUtilization"))
        .and_then(Value::as_i64)
        .map_or(UNKNOWN.to_owned(), |u| format!("{u}%"));
    let target = spec
        .pointer(&format!("/{key}/target/averageUtilization"))
        .and_then(Value::as_i64)
        .map_or("<auto>".to_owned(), |u| format!("{u}%"));
    format!("{name}: {current}/{target}")
}
