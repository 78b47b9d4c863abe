use super::*;
use k8s_openapi::api::core::v1::{Container, ContainerPort, PodCondition, PodSpec, PodStatus, ServiceSpec};

pub(crate) fn service(target: IntOrString, publish: bool) -> Service {
    Service {
        metadata: ObjectMeta { name: Some("web".into()), namespace: Some("ns".into()), ..Default::default() },
        spec: Some(ServiceSpec {
            selector: Some([("app".to_string(), "web".to_string())].into()),
            ports: Some(vec![ServicePort { name: Some("http".into()), port: 80, target_port: Some(target), protocol: Some("TCP".into()), ..Default::default() }]),
            publish_not_ready_addresses: Some(publish),
            ..Default::default()
        }),
        status: None,
    }
}

pub(crate) fn pod(name: &str, ip: &str, ready: bool, container_port: i32) -> Arc<Pod> {
    Arc::new(Pod {
        metadata: ObjectMeta {
            name: Some(name.into()),
            namespace: Some("ns".into()),
            uid: Some(format!("uid-{name}")),
            labels: Some([("app".to_string(), "web".to_string())].into()),
            ..Default::default()
        },
        spec: Some(PodSpec {
            node_name: Some("n1".into()),
            containers: vec![Container {
                name: "c".into(),
                ports: Some(vec![ContainerPort { name: Some("http".into()), container_port, protocol: Some("TCP".into()), ..Default::default() }]),
                ..Default::default()
            }],
            ..Default::default()
        }),
        status: Some(PodStatus {
            phase: Some("Running".into()),
            pod_ip: (!ip.is_empty()).then(|| ip.into()),
            conditions: Some(vec![PodCondition { type_: "Ready".into(), status: if ready { "True" } else { "False" }.into(), ..Default::default() }]),
            ..Default::default()
        }),
    })
}

#[test]
fn ready_and_not_ready_pods_are_listed_apart_with_named_ports_resolved_per_pod() {
    let svc = service(IntOrString::String("http".into()), false);
    let pods = vec![pod("b", "10.0.0.2", false, 8080), pod("a", "10.0.0.1", true, 8080), pod("c", "10.0.0.3", true, 9090), pod("noip", "", true, 8080)];
    let eps = service_endpoints(&svc, &pods, false);
    assert_eq!(eps.len(), 3, "a pod without an IP has no endpoint");
    let subsets = subsets(&eps);
    assert_eq!(subsets.len(), 2, "two port sets: 8080 and 9090");
    let s8080 = &subsets[0];
    assert_eq!(s8080.ports.as_ref().unwrap()[0].port, 8080);
    assert_eq!(s8080.ports.as_ref().unwrap()[0].name.as_deref(), Some("http"));
    let ips = |a: &Option<Vec<EndpointAddress>>| a.iter().flatten().map(|a| a.ip.clone()).collect::<Vec<_>>();
    assert_eq!(ips(&s8080.addresses), ["10.0.0.1"]);
    assert_eq!(ips(&s8080.not_ready_addresses), ["10.0.0.2"]);
    assert_eq!(s8080.addresses.as_ref().unwrap()[0].target_ref.as_ref().unwrap().name.as_deref(), Some("a"));
    assert_eq!(s8080.addresses.as_ref().unwrap()[0].node_name.as_deref(), Some("n1"));
    assert_eq!(subsets[1].ports.as_ref().unwrap()[0].port, 9090);
}

#[test]
fn publish_not_ready_addresses_counts_every_pod_ready_and_terminating_pods_leave() {
    let svc = service(IntOrString::Int(8080), true);
    let eps = service_endpoints(&svc, &[pod("a", "10.0.0.1", false, 1)], true);
    assert!(eps[0].ready);
    assert_eq!(eps[0].ports[0].port, 8080);
    let mut p = (*pod("a", "10.0.0.1", true, 1)).clone();
    p.metadata.deletion_timestamp = Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(jiff::Timestamp::UNIX_EPOCH));
    let svc = service(IntOrString::Int(8080), false);
    assert!(service_endpoints(&svc, &[Arc::new(p.clone())], false).is_empty());
    let kept = service_endpoints(&svc, &[Arc::new(p)], true);
    assert!(kept[0].terminating && !kept[0].ready);
}

#[test]
fn an_unresolvable_named_port_drops_the_pod() {
    let svc = service(IntOrString::String("metrics".into()), false);
    assert!(service_endpoints(&svc, &[pod("a", "10.0.0.1", true, 8080)], false).is_empty());
}
