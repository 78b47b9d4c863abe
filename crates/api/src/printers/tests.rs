//! Unit tests of the printers; the replay of the recorded upstream tables is in `replay`.

mod replay;

use jiff::Timestamp;
use serde_json::{json, Value};

use super::*;
use crate::resources::{find, RESOURCES};

fn now() -> Timestamp {
    "2026-11-25T06:00:00Z".parse().expect("valid timestamp")
}

fn info(group: &str, version: &str, plural: &str) -> &'static ResourceInfo {
    find(group, version, plural).expect("served resource")
}

#[test]
fn every_served_resource_has_one_cell_per_column() {
    let obj = json!({"metadata": {"name": "x", "creationTimestamp": "2026-11-25T05:00:00Z"}});
    for r in RESOURCES {
        let cols = columns(r);
        assert!(
            cols[0].name == "Name" || cols[0].name == "Last Seen",
            "{}",
            r.plural
        );
        assert_eq!(
            cells(r, &obj, now()).len(),
            cols.len(),
            "{}/{}",
            r.group,
            r.plural
        );
    }
}

#[test]
fn resources_without_printer_get_name_and_created_at() {
    for (g, p) in [
        ("apiextensions.k8s.io", "customresourcedefinitions"),
        ("rbac.authorization.k8s.io", "roles"),
        ("rbac.authorization.k8s.io", "clusterroles"),
        ("", "limitranges"),
    ] {
        let r = info(g, "v1", p);
        let names: Vec<_> = columns(r).iter().map(|c| (c.name, c.type_)).collect();
        assert_eq!(names, [("Name", "string"), ("Created At", "date")], "{p}");
        let obj = json!({"metadata": {"name": "a", "creationTimestamp": "2026-11-25T05:37:11Z"}});
        assert_eq!(
            cells(r, &obj, now()),
            [json!("a"), json!("2026-11-25T05:37:11Z")]
        );
    }
}

#[test]
fn column_definitions_serialize_with_upstream_keys() {
    let col = columns(info("", "v1", "pods"))[5];
    let v = serde_json::to_value(col).expect("serializable");
    let keys: Vec<_> = v.as_object().expect("object").keys().cloned().collect();
    assert_eq!(keys, ["name", "type", "format", "description", "priority"]);
    assert_eq!(v["name"], "IP");
    assert_eq!(v["priority"], 1);
}

fn pod_cells(pod: Value) -> Vec<Value> {
    cells(info("", "v1", "pods"), &pod, now())
}

fn pod_status(spec: Value, status: Value) -> String {
    let pod = json!({"metadata": {"name": "p"}, "spec": spec, "status": status});
    pod_cells(pod)[2].as_str().expect("string").to_owned()
}

#[test]
fn pod_status_covers_init_waiting_terminated_and_deletion() {
    let one_init = json!({"initContainers": [{"name": "i"}], "containers": [{"name": "c"}]});
    let waiting = |reason: &str| json!({"name": "i", "state": {"waiting": {"reason": reason}}});
    assert_eq!(
        pod_status(
            one_init.clone(),
            json!({"phase": "Pending", "initContainerStatuses": [waiting("PodInitializing")]})
        ),
        "Init:0/1"
    );
    assert_eq!(
        pod_status(
            one_init.clone(),
            json!({"phase": "Pending", "initContainerStatuses": [waiting("CrashLoopBackOff")]})
        ),
        "Init:CrashLoopBackOff"
    );
    let failed_init = json!({"name": "i", "state": {"terminated": {"exitCode": 3}}});
    assert_eq!(
        pod_status(
            one_init.clone(),
            json!({"phase": "Pending", "initContainerStatuses": [failed_init]})
        ),
        "Init:ExitCode:3"
    );
    let done_init =
        json!({"name": "i", "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}});
    let app_waiting = json!({"name": "c", "state": {"waiting": {"reason": "PodInitializing"}}});
    assert_eq!(
        pod_status(
            one_init,
            json!({"phase": "Pending", "initContainerStatuses": [done_init], "containerStatuses": [app_waiting]})
        ),
        "PodInitializing"
    );
    let containers = json!({"containers": [{"name": "c"}]});
    let crash = json!({"name": "c", "restartCount": 4, "state": {"waiting": {"reason": "CrashLoopBackOff"}}});
    assert_eq!(
        pod_status(
            containers.clone(),
            json!({"phase": "Running", "containerStatuses": [crash]})
        ),
        "CrashLoopBackOff"
    );
    let completed =
        json!({"name": "c", "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}});
    assert_eq!(
        pod_status(
            containers.clone(),
            json!({"phase": "Succeeded", "containerStatuses": [completed]})
        ),
        "Completed"
    );
    let gated = json!({"phase": "Pending", "conditions": [{"type": "PodScheduled", "status": "False", "reason": "SchedulingGated"}]});
    assert_eq!(pod_status(containers.clone(), gated), "SchedulingGated");
    assert_eq!(
        pod_status(
            containers.clone(),
            json!({"phase": "Running", "reason": "Evicted"})
        ),
        "Evicted"
    );

    let deleting = json!({"metadata": {"name": "p", "deletionTimestamp": "2026-11-25T05:59:00Z"},
        "spec": containers, "status": {"phase": "Running"}});
    assert_eq!(pod_cells(deleting.clone())[2], "Terminating");
    let mut lost = deleting;
    lost["status"]["reason"] = json!("NodeLost");
    assert_eq!(pod_cells(lost)[2], "Unknown");
}

#[test]
fn pod_ready_restarts_and_wide_cells() {
    let pod = json!({
        "metadata": {"name": "web", "creationTimestamp": "2026-11-25T05:55:00Z"},
        "spec": {"nodeName": "n1", "containers": [{"name": "a"}, {"name": "b"}],
                 "initContainers": [{"name": "side", "restartPolicy": "Always"}],
                 "readinessGates": [{"conditionType": "x/ok"}]},
        "status": {"phase": "Running", "podIPs": [{"ip": "10.42.0.5"}],
            "conditions": [{"type": "Initialized", "status": "True"}, {"type": "x/ok", "status": "True"}],
            "initContainerStatuses": [{"name": "side", "started": true, "ready": true, "restartCount": 1,
                "state": {"running": {}}}],
            "containerStatuses": [
                {"name": "a", "ready": true, "restartCount": 2, "state": {"running": {}},
                 "lastState": {"terminated": {"exitCode": 1, "finishedAt": "2026-11-25T05:57:00Z"}}},
                {"name": "b", "ready": false, "state": {"running": {}}}]}
    });
    let c = pod_cells(pod);
    assert_eq!(c[0], "web");
    assert_eq!(c[1], "2/3");
    assert_eq!(c[2], "Running");
    assert_eq!(c[3], "3 (3m ago)");
    assert_eq!(c[4], "5m");
    assert_eq!(
        &c[5..],
        [
            json!("10.42.0.5"),
            json!("n1"),
            json!("<none>"),
            json!("1/1")
        ]
    );
}

#[test]
fn finished_pods_carry_a_completed_row_condition() {
    let pods = info("", "v1", "pods");
    let ok = json!({"metadata": {"name": "a"}, "status": {"phase": "Succeeded"}});
    let t = table(pods, &[ok, json!({"metadata": {"name": "b"}})], now());
    assert_eq!(t["kind"], "Table");
    assert_eq!(t["rows"][0]["conditions"][0]["reason"], "Succeeded");
    assert!(t["rows"][1].get("conditions").is_none());
    assert!(t["rows"][0].get("object").is_none());
    assert_eq!(t["columnDefinitions"].as_array().map(Vec::len), Some(9));
}

#[test]
fn service_cells_cover_every_type() {
    let svc = |spec: Value, status: Value| {
        let obj = json!({"metadata": {"name": "s"}, "spec": spec, "status": status});
        cells(info("", "v1", "services"), &obj, now())
    };
    let lb = svc(
        json!({"type": "LoadBalancer", "clusterIP": "10.43.0.9",
               "ports": [{"port": 80, "protocol": "TCP", "nodePort": 30080}, {"port": 53, "protocol": "UDP"}]}),
        json!({}),
    );
    assert_eq!(
        &lb[1..5],
        [
            json!("LoadBalancer"),
            json!("10.43.0.9"),
            json!("<pending>"),
            json!("80:30080/TCP,53/UDP")
        ]
    );
    let lb = svc(
        json!({"type": "LoadBalancer", "externalIPs": ["1.2.3.4"]}),
        json!({"loadBalancer": {"ingress": [{"ip": "5.6.7.8"}, {"hostname": "lb.example"}]}}),
    );
    assert_eq!(lb[3], "5.6.7.8,lb.example,1.2.3.4");
    let ext = svc(
        json!({"type": "ExternalName", "externalName": "example.com"}),
        json!({}),
    );
    assert_eq!(
        &ext[2..5],
        [json!("<none>"), json!("example.com"), json!("<none>")]
    );
    assert_eq!(ext[6], "<none>");
}

#[test]
fn node_status_roles_and_addresses() {
    let node = json!({
        "metadata": {"name": "n1", "labels": {"node-role.kubernetes.io/control-plane": "",
            "node-role.kubernetes.io/master": "", "kubernetes.io/role": "edge"}},
        "spec": {"unschedulable": true},
        "status": {"conditions": [{"type": "MemoryPressure", "status": "False"}, {"type": "Ready", "status": "True"}],
            "addresses": [{"type": "InternalIP", "address": "192.168.1.2"}],
            "nodeInfo": {"kubeletVersion": "v1.33.0", "osImage": "Debian"}}
    });
    let c = cells(info("", "v1", "nodes"), &node, now());
    assert_eq!(c[1], "Ready,SchedulingDisabled");
    assert_eq!(c[2], "control-plane,edge,master");
    assert_eq!(c[3], "<unknown>");
    assert_eq!(
        &c[4..],
        [
            json!("v1.33.0"),
            json!("192.168.1.2"),
            json!("<none>"),
            json!("Debian"),
            json!("<unknown>"),
            json!("<unknown>")
        ]
    );
    let not_ready = json!({"metadata": {"name": "n"}, "status": {"conditions": [{"type": "Ready", "status": "Unknown"}]}});
    assert_eq!(
        cells(info("", "v1", "nodes"), &not_ready, now())[1],
        "NotReady"
    );
}

#[test]
fn deployment_and_job_cells() {
    let d = json!({"metadata": {"name": "web"}, "spec": {"replicas": 3,
        "selector": {"matchLabels": {"app": "web"}}, "template": {"spec": {"containers": [
            {"name": "a", "image": "nginx"}, {"name": "b", "image": "busybox"}]}}},
        "status": {"readyReplicas": 2, "updatedReplicas": 3, "availableReplicas": 2}});
    let c = cells(info("apps", "v1", "deployments"), &d, now());
    assert_eq!(
        c,
        [
            json!("web"),
            json!("2/3"),
            json!(3),
            json!(2),
            json!("<unknown>"),
            json!("a,b"),
            json!("nginx,busybox"),
            json!("app=web")
        ]
    );

    let job = json!({"metadata": {"name": "pi"}, "spec": {"parallelism": 2},
        "status": {"succeeded": 1, "startTime": "2026-11-25T05:00:00Z", "completionTime": "2026-11-25T05:02:05Z",
            "conditions": [{"type": "Complete", "status": "True"}]}});
    let c = cells(info("batch", "v1", "jobs"), &job, now());
    assert_eq!(
        &c[1..4],
        [json!("Complete"), json!("1/1 of 2"), json!("2m5s")]
    );
}

#[test]
fn core_and_events_k8s_io_events_print_alike() {
    let core = json!({"metadata": {"name": "e1"}, "type": "Warning", "reason": "BackOff",
        "involvedObject": {"kind": "Pod", "name": "web", "fieldPath": "spec.containers{a}"},
        "source": {"component": "kubelet", "host": "n1"}, "message": " Back-off \n",
        "firstTimestamp": "2026-11-25T05:00:00Z", "lastTimestamp": "2026-11-25T05:58:00Z", "count": 7});
    let c = cells(info("", "v1", "events"), &core, now());
    assert_eq!(
        c,
        [
            json!("2m"),
            json!("Warning"),
            json!("BackOff"),
            json!("pod/web"),
            json!("spec.containers{a}"),
            json!("kubelet, n1"),
            json!("Back-off"),
            json!("60m"),
            json!(7),
            json!("e1")
        ]
    );
    let new = json!({"metadata": {"name": "e1"}, "type": "Warning", "reason": "BackOff",
        "regarding": {"kind": "Pod", "name": "web", "fieldPath": "spec.containers{a}"},
        "reportingController": "kubelet", "reportingInstance": "n1", "note": " Back-off \n",
        "eventTime": "2026-11-25T05:00:00.000000Z",
        "series": {"count": 7, "lastObservedTime": "2026-11-25T05:58:00.000000Z"}});
    assert_eq!(cells(info("events.k8s.io", "v1", "events"), &new, now()), c);
}

#[test]
fn hpa_targets_follow_v1_33_format() {
    let hpa = json!({"metadata": {"name": "h"}, "spec": {"scaleTargetRef": {"kind": "Deployment", "name": "web"},
        "maxReplicas": 5, "metrics": [
            {"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 80}}},
            {"type": "Pods", "pods": {"metric": {"name": "qps"}, "target": {"type": "AverageValue", "averageValue": "10"}}},
            {"type": "Resource", "resource": {"name": "memory", "target": {"type": "AverageValue", "averageValue": "1Gi"}}}]},
        "status": {"currentReplicas": 2, "currentMetrics": [
            {"type": "Resource", "resource": {"name": "cpu", "current": {"averageUtilization": 50}}}]}});
    let c = cells(
        info("autoscaling", "v2", "horizontalpodautoscalers"),
        &hpa,
        now(),
    );
    assert_eq!(
        &c[1..6],
        [
            json!("Deployment/web"),
            json!("cpu: 50%/80%, <unknown>/10 + 1 more..."),
            json!("<unset>"),
            json!(5),
            json!(2)
        ]
    );
    let v1 = json!({"apiVersion": "autoscaling/v1", "metadata": {"name": "h"}, "spec": {
        "scaleTargetRef": {"kind": "Deployment", "name": "web"}, "minReplicas": 1, "maxReplicas": 3,
        "targetCPUUtilizationPercentage": 70}});
    assert_eq!(
        cells(
            info("autoscaling", "v1", "horizontalpodautoscalers"),
            &v1,
            now()
        )[2],
        "cpu: <unknown>/70%"
    );
}

#[test]
fn storage_and_quota_cells() {
    let sc = json!({"metadata": {"name": "local", "annotations": {"storageclass.kubernetes.io/is-default-class": "true"}},
        "provisioner": "rancher.io/local-path"});
    let c = cells(info("storage.k8s.io", "v1", "storageclasses"), &sc, now());
    assert_eq!(
        &c[..5],
        [
            json!("local (default)"),
            json!("rancher.io/local-path"),
            json!("Delete"),
            json!("Immediate"),
            json!(false)
        ]
    );
    let quota = json!({"metadata": {"name": "q"}, "status": {
        "hard": {"pods": "10", "limits.cpu": "2", "requests.cpu": "1"},
        "used": {"pods": "3", "requests.cpu": "500m"}}});
    let c = cells(info("", "v1", "resourcequotas"), &quota, now());
    assert_eq!(
        &c[1..3],
        [
            json!("pods: 3/10, requests.cpu: 500m/1"),
            json!("limits.cpu: 0/2")
        ]
    );
}

#[test]
fn controller_revision_names_its_controller_with_group() {
    let cr = json!({"metadata": {"name": "agent-1", "ownerReferences": [
        {"apiVersion": "apps/v1", "kind": "DaemonSet", "name": "agent", "controller": true}]}, "revision": 2});
    let c = cells(info("apps", "v1", "controllerrevisions"), &cr, now());
    assert_eq!(&c[1..3], [json!("daemonset.apps/agent"), json!(2)]);
}
