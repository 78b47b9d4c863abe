use super::*;

fn now() -> jiff::Timestamp {
    jiff::Timestamp::from_second(1_700_000_000).unwrap()
}

fn pod(name: &str, requests: Value, limits: Value) -> Value {
    json!({"metadata": {"name": name, "namespace": "q"}, "spec": {"containers": [
        {"name": "c", "image": "x", "resources": {"requests": requests, "limits": limits}}
    ]}, "status": {"phase": "Running"}})
}

fn quota(name: &str, hard: Value, used: Value) -> Value {
    json!({"metadata": {"name": name, "namespace": "q"}, "spec": {"hard": hard}, "status": {"hard": hard, "used": used}})
}

fn list(pairs: &[(&str, &str)]) -> ResourceList {
    pairs.iter().map(|(k, v)| (k.to_string(), Quantity::parse(v).unwrap())).collect()
}

#[test]
fn a_third_pod_exceeds_a_quota_of_two_with_the_upstream_message() {
    let q = quota("q", json!({"pods": "2"}), json!({"pods": "2"}));
    let p = pod("p3", json!({}), json!({}));
    let e = check_create(&[q], "", "pods", &p, now()).unwrap_err();
    assert_eq!(e, "exceeded quota: q, requested: pods=1, used: pods=2, limited: pods=2");
    let q = quota("q", json!({"pods": "2"}), json!({"pods": "1"}));
    let charges = check_create(&[q], "", "pods", &p, now()).unwrap();
    assert_eq!(charges, vec![(0, list(&[("pods", "2")]))]);
}

#[test]
fn compute_quotas_require_requests_and_sum_them() {
    let q = quota("compute", json!({"requests.cpu": "1", "limits.memory": "1Gi"}), json!({"requests.cpu": "0", "limits.memory": "0"}));
    let bare = pod("bare", json!({}), json!({}));
    let e = check_create(std::slice::from_ref(&q), "", "pods", &bare, now()).unwrap_err();
    assert_eq!(e, "failed quota: compute: must specify limits.memory for: c; requests.cpu for: c");
    // limits default the requests, as the API server's defaulting does
    let limited = pod("l", json!({}), json!({"cpu": "600m", "memory": "512Mi"}));
    let charges = check_create(std::slice::from_ref(&q), "", "pods", &limited, now()).unwrap();
    assert_eq!(charges[0].1, list(&[("requests.cpu", "600m"), ("limits.memory", "512Mi")]));
    let mut q2 = q.clone();
    q2["status"]["used"] = list_to_value(&charges[0].1);
    let e = check_create(&[q2], "", "pods", &limited, now()).unwrap_err();
    assert_eq!(e, "exceeded quota: compute, requested: requests.cpu=600m, used: requests.cpu=600m, limited: requests.cpu=1");
}

#[test]
fn a_quota_without_status_refuses_until_the_controller_has_counted() {
    let mut q = quota("q", json!({"pods": "2"}), json!({}));
    q["status"]["used"] = Value::Null;
    let e = check_create(&[q], "", "pods", &pod("p", json!({}), json!({})), now()).unwrap_err();
    assert_eq!(e, "status unknown for quota: q, resources: pods");
}

#[test]
fn usage_counts_objects_services_and_skips_finished_pods() {
    let p = pod("p", json!({"cpu": "250m", "memory": "64Mi"}), json!({"cpu": "500m"}));
    let u = usage("", "pods", &p, now());
    assert_eq!(u, list(&[("count/pods", "1"), ("pods", "1"), ("cpu", "250m"), ("requests.cpu", "250m"), ("limits.cpu", "500m"), ("memory", "64Mi"), ("requests.memory", "64Mi")]));
    let mut done = p.clone();
    done["status"]["phase"] = "Succeeded".into();
    assert_eq!(usage("", "pods", &done, now()), list(&[("count/pods", "1")]));
    let svc = json!({"spec": {"type": "LoadBalancer", "ports": [{"port": 80}, {"port": 443}]}});
    assert_eq!(
        usage("", "services", &svc, now()),
        list(&[("count/services", "1"), ("services", "1"), ("services.loadbalancers", "1"), ("services.nodeports", "2")])
    );
    assert_eq!(usage("apps", "deployments", &json!({}), now()), list(&[("count/deployments.apps", "1")]));
    assert_eq!(usage("", "configmaps", &json!({}), now()), list(&[("count/configmaps", "1"), ("configmaps", "1")]));
}

#[test]
fn calculate_usage_fills_every_tracked_resource_and_honours_scopes() {
    let mut q = quota("q", json!({"pods": "10", "requests.cpu": "4", "count/deployments.apps": "3"}), json!({}));
    let a = pod("a", json!({"cpu": "1"}), json!({}));
    let b = pod("b", json!({"cpu": "500m"}), json!({}));
    let mut done = pod("c", json!({"cpu": "2"}), json!({}));
    done["status"]["phase"] = "Failed".into();
    let pods = [a.clone(), b, done];
    let used = calculate_usage(&q, "", "pods", pods.iter(), now());
    assert_eq!(used, list(&[("pods", "2"), ("requests.cpu", "1500m")]));
    let used = calculate_usage(&q, "apps", "deployments", std::iter::empty(), now());
    assert_eq!(list_to_value(&used), json!({"count/deployments.apps": "0"}));
    // BestEffort scope: only pods without requests or limits
    q["spec"]["scopes"] = json!(["BestEffort"]);
    q["spec"]["hard"] = json!({"pods": "1"});
    let be = pod("be", json!({}), json!({}));
    let used = calculate_usage(&q, "", "pods", [a, be].iter(), now());
    assert_eq!(used, list(&[("pods", "1")]));
    q["spec"]["scopes"] = json!(["Terminating"]);
    let mut t = pod("t", json!({}), json!({}));
    assert!(!matches(&q, "", "pods", &t, true));
    t["spec"]["activeDeadlineSeconds"] = 30.into();
    assert!(matches(&q, "", "pods", &t, true));
    assert!(!matches(&q, "", "services", &json!({}), true), "scopes apply to pods only");
}
