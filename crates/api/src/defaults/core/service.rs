//! Service defaults: SetDefaults_Service, plus the fields the service REST layer fills on
//! create for a single-stack IPv4 cluster (`clusterIPs`, `ipFamilies`, `ipFamilyPolicy`).

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    ClientIPConfig, LoadBalancerStatus, Service, ServiceSpec, ServiceStatus, SessionAffinityConfig,
};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::{or_set, or_set_str, Creating};

/// `v1.DefaultClientIPServiceAffinitySeconds`: three hours.
const CLIENT_IP_AFFINITY_SECS: i32 = 10_800;

pub(super) fn service(svc: &mut Service, Creating(creating): Creating) {
    let spec = svc.spec.get_or_insert_with(ServiceSpec::default);
    defaults(spec);
    cluster_ips(spec);
    ip_families(spec);
    if creating {
        // ServiceStatus holds a plain LoadBalancerStatus struct: upstream prints
        // `status: {loadBalancer: {}}` on every new Service.
        or_set(
            &mut svc.status,
            ServiceStatus {
                load_balancer: Some(LoadBalancerStatus::default()),
                conditions: None,
            },
        );
    }
    if spec.type_.as_deref() == Some("LoadBalancer") {
        let ingress = svc
            .status
            .as_mut()
            .and_then(|s| s.load_balancer.as_mut())
            .and_then(|lb| lb.ingress.as_mut());
        for ing in ingress.into_iter().flatten() {
            if ing.ip.as_deref().is_some_and(|ip| !ip.is_empty()) {
                or_set(&mut ing.ip_mode, "VIP".to_owned());
            }
        }
    }
}

/// SetDefaults_Service, field by field.
fn defaults(spec: &mut ServiceSpec) {
    or_set_str(&mut spec.session_affinity, "None");
    match spec.session_affinity.as_deref() {
        Some("None") => spec.session_affinity_config = None,
        Some("ClientIP") => {
            let timeout = spec
                .session_affinity_config
                .as_ref()
                .and_then(|c| c.client_ip.as_ref())
                .and_then(|c| c.timeout_seconds);
            if timeout.is_none() {
                spec.session_affinity_config = Some(SessionAffinityConfig {
                    client_ip: Some(ClientIPConfig {
                        timeout_seconds: Some(CLIENT_IP_AFFINITY_SECS),
                    }),
                });
            }
        }
        _ => {}
    }
    or_set_str(&mut spec.type_, "ClusterIP");
    for port in spec.ports.iter_mut().flatten() {
        or_set_str(&mut port.protocol, "TCP");
        let unset = match &port.target_port {
            None => true,
            Some(IntOrString::Int(n)) => *n == 0,
            Some(IntOrString::String(s)) => s.is_empty(),
        };
        if unset {
            port.target_port = Some(IntOrString::Int(port.port));
        }
    }
    let service_type = spec.type_.as_deref().unwrap_or("ClusterIP");
    let externally_accessible = matches!(service_type, "LoadBalancer" | "NodePort")
        || (service_type == "ClusterIP"
            && spec
                .external_ips
                .as_ref()
                .is_some_and(|ips| !ips.is_empty()));
    if externally_accessible {
        or_set_str(&mut spec.external_traffic_policy, "Cluster");
    }
    if matches!(service_type, "ClusterIP" | "NodePort" | "LoadBalancer") {
        or_set(&mut spec.internal_traffic_policy, "Cluster".to_owned());
    }
    if service_type == "LoadBalancer" {
        or_set(&mut spec.allocate_load_balancer_node_ports, true);
    }
}

/// The service strategy's NormalizeClusterIPs on create: `clusterIPs` starts with `clusterIP`.
fn cluster_ips(spec: &mut ServiceSpec) {
    if spec.type_.as_deref() == Some("ExternalName") {
        return;
    }
    let cluster_ip = spec.cluster_ip.clone().filter(|ip| !ip.is_empty());
    let cluster_ips_empty = spec.cluster_ips.as_ref().is_none_or(Vec::is_empty);
    match cluster_ip {
        Some(ip) if cluster_ips_empty => spec.cluster_ips = Some(vec![ip]),
        None if !cluster_ips_empty => {
            spec.cluster_ip = spec
                .cluster_ips
                .as_ref()
                .and_then(|ips| ips.first().cloned());
        }
        _ => {}
    }
}

/// The IP family fields the service REST layer sets, for a single-stack IPv4 cluster: a
/// headless service without a selector gets `RequireDualStack` (it takes every cluster
/// family), every other service `SingleStack`; the families follow the given cluster IPs, or
/// the cluster's single family, IPv4.
fn ip_families(spec: &mut ServiceSpec) {
    if spec.type_.as_deref() == Some("ExternalName") {
        return;
    }
    let headless = spec.cluster_ip.as_deref() == Some("None");
    if spec.ip_family_policy.as_deref().is_none_or(str::is_empty) {
        let selectorless = spec.selector.as_ref().is_none_or(BTreeMap::is_empty);
        let policy = if headless && selectorless {
            "RequireDualStack"
        } else {
            "SingleStack"
        };
        spec.ip_family_policy = Some(policy.to_owned());
    }
    if spec.ip_families.as_ref().is_none_or(Vec::is_empty) {
        let from_ips: Vec<String> = spec
            .cluster_ips
            .iter()
            .flatten()
            .filter(|ip| ip.as_str() != "None" && !ip.is_empty())
            .map(|ip| if ip.contains(':') { "IPv6" } else { "IPv4" }.to_owned())
            .collect();
        spec.ip_families = Some(if from_ips.is_empty() {
            vec!["IPv4".to_owned()]
        } else {
            from_ips
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::ServicePort;

    fn spec_with_port(port: i32) -> ServiceSpec {
        ServiceSpec {
            ports: Some(vec![ServicePort {
                port,
                ..Default::default()
            }]),
            selector: Some([("app".to_owned(), "web".to_owned())].into()),
            ..Default::default()
        }
    }

    #[test]
    fn load_balancer_gets_external_policy_and_node_port_allocation() {
        let mut svc = Service {
            spec: Some(ServiceSpec {
                type_: Some("LoadBalancer".into()),
                ..spec_with_port(443)
            }),
            ..Default::default()
        };
        service(&mut svc, Creating(true));
        let spec = svc.spec.expect("spec");
        assert_eq!(spec.external_traffic_policy.as_deref(), Some("Cluster"));
        assert_eq!(spec.allocate_load_balancer_node_ports, Some(true));
        assert_eq!(
            spec.ports.expect("ports")[0].target_port,
            Some(IntOrString::Int(443))
        );
    }

    #[test]
    fn client_ip_affinity_gets_a_three_hour_timeout() {
        let mut spec = ServiceSpec {
            session_affinity: Some("ClientIP".into()),
            ..spec_with_port(80)
        };
        defaults(&mut spec);
        let timeout = spec
            .session_affinity_config
            .and_then(|c| c.client_ip)
            .and_then(|c| c.timeout_seconds);
        assert_eq!(timeout, Some(10_800));
    }

    #[test]
    fn named_target_ports_are_kept() {
        let mut spec = spec_with_port(80);
        spec.ports.as_mut().expect("ports")[0].target_port =
            Some(IntOrString::String("http".into()));
        defaults(&mut spec);
        assert_eq!(
            spec.ports.expect("ports")[0].target_port,
            Some(IntOrString::String("http".into()))
        );
    }

    #[test]
    fn external_name_services_get_no_cluster_fields() {
        let mut svc = Service {
            spec: Some(ServiceSpec {
                type_: Some("ExternalName".into()),
                external_name: Some("example.com".into()),
                ..Default::default()
            }),
            ..Default::default()
        };
        service(&mut svc, Creating(true));
        let spec = svc.spec.expect("spec");
        assert_eq!(spec.ip_families, None);
        assert_eq!(spec.ip_family_policy, None);
        assert_eq!(spec.internal_traffic_policy, None);
        assert_eq!(spec.session_affinity.as_deref(), Some("None"));
    }

    #[test]
    fn selectorless_headless_services_require_dual_stack() {
        let mut spec = ServiceSpec {
            cluster_ip: Some("None".into()),
            ..Default::default()
        };
        cluster_ips(&mut spec);
        ip_families(&mut spec);
        assert_eq!(spec.ip_family_policy.as_deref(), Some("RequireDualStack"));
        assert_eq!(spec.ip_families, Some(vec!["IPv4".to_owned()]));
        assert_eq!(spec.cluster_ips, Some(vec!["None".to_owned()]));
    }

    #[test]
    fn families_follow_given_cluster_ips() {
        let mut spec = ServiceSpec {
            cluster_ip: Some("fd00::10".into()),
            ..spec_with_port(80)
        };
        cluster_ips(&mut spec);
        ip_families(&mut spec);
        assert_eq!(spec.ip_families, Some(vec!["IPv6".to_owned()]));
        assert_eq!(spec.ip_family_policy.as_deref(), Some("SingleStack"));
    }
}
