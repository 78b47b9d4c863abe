//! networking.k8s.io/v1 defaults (`pkg/apis/networking/v1/defaults.go`).

use k8s_openapi::api::networking::v1::{
    Ingress, IngressClass, IngressLoadBalancerStatus, IngressStatus, NetworkPolicy,
};

use super::{or_set, or_set_str, Creating, DefaultsError, Target};

pub(super) fn apply(target: Target<'_>) -> Result<(), DefaultsError> {
    match target.kind {
        "NetworkPolicy" => target.with(|np: &mut NetworkPolicy, _| network_policy(np)),
        "IngressClass" => target.with(|ic: &mut IngressClass, _| {
            let parameters = ic.spec.as_mut().and_then(|s| s.parameters.as_mut());
            if let Some(parameters) = parameters {
                or_set(&mut parameters.scope, "Cluster".to_owned());
            }
        }),
        "Ingress" => target.with(|ing: &mut Ingress, Creating(creating)| {
            // IngressStatus holds a plain struct: upstream prints `status: {loadBalancer: {}}`.
            if creating {
                or_set(
                    &mut ing.status,
                    IngressStatus {
                        load_balancer: Some(IngressLoadBalancerStatus::default()),
                    },
                );
            }
        }),
        _ => Ok(()),
    }
}

/// SetDefaults_NetworkPolicy (policyTypes: Ingress, plus Egress when egress rules exist) and
/// SetDefaults_NetworkPolicyPort (protocol TCP).
fn network_policy(np: &mut NetworkPolicy) {
    let spec = np.spec.get_or_insert_with(Default::default);
    if spec.policy_types.as_ref().is_none_or(Vec::is_empty) {
        let mut types = vec!["Ingress".to_owned()];
        if spec.egress.as_ref().is_some_and(|e| !e.is_empty()) {
            types.push("Egress".to_owned());
        }
        spec.policy_types = Some(types);
    }
    let ingress_ports = spec
        .ingress
        .iter_mut()
        .flatten()
        .flat_map(|r| r.ports.iter_mut().flatten());
    for port in ingress_ports {
        or_set_str(&mut port.protocol, "TCP");
    }
    let egress_ports = spec
        .egress
        .iter_mut()
        .flatten()
        .flat_map(|r| r.ports.iter_mut().flatten());
    for port in egress_ports {
        or_set_str(&mut port.protocol, "TCP");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::networking::v1::{
        NetworkPolicyEgressRule, NetworkPolicyPort, NetworkPolicySpec,
    };

    #[test]
    fn egress_rules_add_the_egress_policy_type_and_ports_default_to_tcp() {
        let mut np = NetworkPolicy {
            spec: Some(NetworkPolicySpec {
                egress: Some(vec![NetworkPolicyEgressRule {
                    ports: Some(vec![NetworkPolicyPort::default()]),
                    to: None,
                }]),
                ..Default::default()
            }),
            ..Default::default()
        };
        network_policy(&mut np);
        let spec = np.spec.expect("spec");
        assert_eq!(
            spec.policy_types,
            Some(vec!["Ingress".to_owned(), "Egress".to_owned()])
        );
        let egress = spec.egress.expect("egress");
        let port = &egress[0].ports.as_ref().expect("ports")[0];
        assert_eq!(port.protocol.as_deref(), Some("TCP"));
    }
}
