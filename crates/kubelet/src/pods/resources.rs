//! Requests, limits and QoS: the pod cgroup path (pkg/kubelet/cm/qos_container_manager), the
//! CRI resources of a container (pkg/kubelet/kuberuntime/kuberuntime_container_linux.go) and
//! the pod's total requests for admission.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Container, Pod, PodSpec};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use rkube_api::quantity::Quantity as Parsed;

use crate::cri::api::LinuxContainerResources;

/// CFS period the kubelet uses (100 ms).
pub const CPU_PERIOD: i64 = 100_000;
/// Smallest cpu.shares (upstream MinShares).
const MIN_SHARES: i64 = 2;

fn get(map: Option<&BTreeMap<String, Quantity>>, name: &str) -> Option<Parsed> {
    map.and_then(|m| m.get(name)).and_then(|q| Parsed::parse(&q.0).ok())
}

/// A container's request of `name` in milli-units (cpu) or units (others); 0 when unset.
pub fn request(container: &Container, name: &str) -> i64 {
    let r = container.resources.as_ref();
    let q = get(r.and_then(|r| r.requests.as_ref()), name).or_else(|| get(r.and_then(|r| r.limits.as_ref()), name));
    amount(q, name)
}

/// A container's limit of `name` (milli-units for cpu), if set.
pub fn limit(container: &Container, name: &str) -> Option<i64> {
    let q = get(container.resources.as_ref().and_then(|r| r.limits.as_ref()), name)?;
    Some(amount(Some(q), name))
}

fn amount(q: Option<Parsed>, name: &str) -> i64 {
    match q {
        None => 0,
        Some(q) if name == "cpu" => q.milli_value().clamp(0, i64::MAX as i128) as i64,
        Some(q) => q.value().clamp(0, i64::MAX as i128) as i64,
    }
}

/// The pod's effective request of `name`: max(sum of containers, largest init container)
/// plus overhead, as the scheduler and the kubelet's admission compute it.
pub fn pod_request(spec: &PodSpec, name: &str) -> i64 {
    let sum: i64 = spec.containers.iter().map(|c| request(c, name)).sum();
    let init = spec.init_containers.iter().flatten().map(|c| request(c, name)).max().unwrap_or(0);
    let overhead = amount(get(spec.overhead.as_ref(), name), name);
    sum.max(init) + overhead
}

/// The pod's QoS class: status.qosClass as the API server set it, else computed.
pub fn qos_class(pod: &Pod) -> String {
    if let Some(q) = pod.status.as_ref().and_then(|s| s.qos_class.clone()) {
        return q;
    }
    let Some(spec) = pod.spec.as_ref() else { return "BestEffort".into() };
    let mut any = false;
    let mut guaranteed = true;
    for c in spec.containers.iter().chain(spec.init_containers.iter().flatten()) {
        for name in ["cpu", "memory"] {
            let r = c.resources.as_ref();
            let req = get(r.and_then(|r| r.requests.as_ref()), name).filter(|q| !q.is_zero());
            let lim = get(r.and_then(|r| r.limits.as_ref()), name).filter(|q| !q.is_zero());
            any |= req.is_some() || lim.is_some();
            match (req, lim) {
                (_, None) => guaranteed = false,
                (Some(req), Some(lim)) if req.milli_value() != lim.milli_value() => guaranteed = false,
                _ => {}
            }
        }
    }
    match (any, guaranteed) {
        (false, _) => "BestEffort".into(),
        (true, true) => "Guaranteed".into(),
        (true, false) => "Burstable".into(),
    }
}

/// The pod's cgroup (cgroupfs driver): `/kubepods/pod<uid>` for Guaranteed,
/// `/kubepods/burstable/pod<uid>`, `/kubepods/besteffort/pod<uid>`.
pub fn cgroup_parent(qos: &str, uid: &str) -> String {
    match qos {
        "Guaranteed" => format!("/kubepods/pod{uid}"),
        "Burstable" => format!("/kubepods/burstable/pod{uid}"),
        _ => format!("/kubepods/besteffort/pod{uid}"),
    }
}

/// cpu.shares for a cpu request in millicores (upstream MilliCPUToShares).
pub fn milli_cpu_to_shares(milli: i64) -> i64 {
    if milli == 0 {
        return MIN_SHARES;
    }
    (milli * 1024 / 1000).max(MIN_SHARES)
}

/// CFS quota for a cpu limit in millicores over `period` (upstream MilliCPUToQuota; min 1 ms).
pub fn milli_cpu_to_quota(milli: i64, period: i64) -> i64 {
    if milli == 0 {
        return 0;
    }
    (milli * period / 1000).max(1000)
}

/// The CRI resources of a container: shares from the cpu request, quota from the cpu limit,
/// memory limit, and the OOM score adjustment of its QoS class.
pub fn linux_resources(container: &Container, qos: &str, memory_capacity: i64) -> LinuxContainerResources {
    let cpu_request = request(container, "cpu");
    let cpu_limit = limit(container, "cpu");
    let memory_request = request(container, "memory");
    LinuxContainerResources {
        cpu_shares: milli_cpu_to_shares(cpu_request),
        cpu_period: cpu_limit.map(|_| CPU_PERIOD).unwrap_or(0),
        cpu_quota: cpu_limit.map(|l| milli_cpu_to_quota(l, CPU_PERIOD)).unwrap_or(0),
        memory_limit_in_bytes: limit(container, "memory").unwrap_or(0),
        oom_score_adj: oom_score_adj(qos, memory_request, memory_capacity),
        ..Default::default()
    }
}

/// Upstream's OOM score policy (pkg/kubelet/qos/policy.go).
pub fn oom_score_adj(qos: &str, memory_request: i64, memory_capacity: i64) -> i64 {
    match qos {
        "Guaranteed" => -997,
        "BestEffort" => 1000,
        _ if memory_capacity <= 0 => 999,
        _ => (1000 - (1000 * memory_request) / memory_capacity).clamp(2, 999),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::ResourceRequirements;

    fn container(requests: &[(&str, &str)], limits: &[(&str, &str)]) -> Container {
        let map = |kv: &[(&str, &str)]| {
            (!kv.is_empty()).then(|| kv.iter().map(|(k, v)| (k.to_string(), Quantity(v.to_string()))).collect())
        };
        Container {
            name: "c".into(),
            resources: Some(ResourceRequirements { requests: map(requests), limits: map(limits), ..Default::default() }),
            ..Default::default()
        }
    }

    #[test]
    fn cri_resources_follow_upstream_conversions() {
        let c = container(&[("cpu", "250m"), ("memory", "64Mi")], &[("cpu", "500m"), ("memory", "128Mi")]);
        let r = linux_resources(&c, "Burstable", 1 << 30);
        assert_eq!(r.cpu_shares, 256);
        assert_eq!((r.cpu_period, r.cpu_quota), (100_000, 50_000));
        assert_eq!(r.memory_limit_in_bytes, 128 << 20);
        assert_eq!(r.oom_score_adj, 938);
        let none = linux_resources(&container(&[], &[]), "BestEffort", 1 << 30);
        assert_eq!((none.cpu_shares, none.cpu_quota, none.memory_limit_in_bytes, none.oom_score_adj), (2, 0, 0, 1000));
    }

    #[test]
    fn pod_requests_take_the_larger_of_containers_and_init_containers() {
        let spec = PodSpec {
            containers: vec![container(&[("cpu", "100m")], &[]), container(&[("cpu", "200m")], &[])],
            init_containers: Some(vec![container(&[("cpu", "1")], &[])]),
            ..Default::default()
        };
        assert_eq!(pod_request(&spec, "cpu"), 1000);
        assert_eq!(pod_request(&spec, "memory"), 0);
    }

    #[test]
    fn qos_and_cgroup_parent() {
        let pod = |c: Container| Pod { spec: Some(PodSpec { containers: vec![c], ..Default::default() }), ..Default::default() };
        assert_eq!(qos_class(&pod(container(&[], &[]))), "BestEffort");
        assert_eq!(qos_class(&pod(container(&[("cpu", "1")], &[]))), "Burstable");
        assert_eq!(qos_class(&pod(container(&[("cpu", "1"), ("memory", "1Gi")], &[("cpu", "1000m"), ("memory", "1Gi")]))), "Guaranteed");
        assert_eq!(cgroup_parent("Burstable", "u1"), "/kubepods/burstable/podu1");
        assert_eq!(cgroup_parent("Guaranteed", "u1"), "/kubepods/podu1");
    }
}
