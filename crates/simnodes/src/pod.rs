//! What a simulated node does with a pod bound to it (pure).

use std::net::Ipv4Addr;

use k8s_openapi::api::core::v1::{
    ContainerState, ContainerStateRunning, ContainerStatus, HostIP, Pod, PodCondition, PodIP, PodStatus,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

/// The next step for a pod bound to a simulated node.
#[derive(Debug, PartialEq, Eq)]
pub enum Action {
    None,
    /// Not yet running: write a Running status.
    Start,
    /// Terminating (deletionTimestamp set): delete it with grace 0, as a kubelet does once
    /// its containers stopped.
    Delete,
}

pub fn next_action(pod: &Pod) -> Action {
    if pod.metadata.deletion_timestamp.is_some() {
        return Action::Delete;
    }
    let status = pod.status.as_ref();
    let phase = status.and_then(|s| s.phase.as_deref()).unwrap_or("Pending");
    if phase == "Succeeded" || phase == "Failed" {
        return Action::None;
    }
    let ready = status
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"));
    if phase == "Running" && ready { Action::None } else { Action::Start }
}

/// The status a kubelet reports once every container runs and is ready.
pub fn running_status(pod: &Pod, pod_ip: Ipv4Addr, host_ip: Ipv4Addr, now: jiff::Timestamp) -> PodStatus {
    let now = Time(now);
    let condition = |t: &str| PodCondition {
        type_: t.into(),
        status: "True".into(),
        last_transition_time: Some(now.clone()),
        ..Default::default()
    };
    let spec = pod.spec.as_ref();
    let container_statuses = spec
        .map(|s| &s.containers)
        .into_iter()
        .flatten()
        .map(|c| ContainerStatus {
            name: c.name.clone(),
            image: c.image.clone().unwrap_or_default(),
            image_id: format!("sim://{}", c.image.clone().unwrap_or_default()),
            container_id: Some(format!("sim://{}-{}", pod.metadata.uid.as_deref().unwrap_or(""), c.name)),
            ready: true,
            started: Some(true),
            restart_count: 0,
            state: Some(ContainerState {
                running: Some(ContainerStateRunning { started_at: Some(now.clone()) }),
                ..Default::default()
            }),
            ..Default::default()
        })
        .collect();
    PodStatus {
        phase: Some("Running".into()),
        conditions: Some(vec![
            condition("PodReadyToStartContainers"),
            condition("Initialized"),
            condition("Ready"),
            condition("ContainersReady"),
            condition("PodScheduled"),
        ]),
        host_ip: Some(host_ip.to_string()),
        host_ips: Some(vec![HostIP { ip: host_ip.to_string() }]),
        pod_ip: Some(pod_ip.to_string()),
        pod_ips: Some(vec![PodIP { ip: pod_ip.to_string() }]),
        start_time: Some(now),
        container_statuses: Some(container_statuses),
        qos_class: pod.status.as_ref().and_then(|s| s.qos_class.clone()),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{Container, PodSpec};

    fn pod() -> Pod {
        Pod {
            spec: Some(PodSpec {
                node_name: Some("sim-0".into()),
                containers: vec![Container { name: "c".into(), image: Some("busybox".into()), ..Default::default() }],
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn pending_pods_start_and_running_ready_pods_are_left_alone() {
        let mut p = pod();
        assert_eq!(next_action(&p), Action::Start);
        p.status = Some(running_status(&p, Ipv4Addr::new(10, 128, 0, 1), Ipv4Addr::new(100, 64, 0, 1), jiff::Timestamp::UNIX_EPOCH));
        assert_eq!(next_action(&p), Action::None);
        let status = p.status.as_ref().unwrap();
        assert_eq!(status.pod_ip.as_deref(), Some("10.128.0.1"));
        assert!(status.container_statuses.as_ref().unwrap()[0].ready);
        p.metadata.deletion_timestamp = Some(Time(jiff::Timestamp::UNIX_EPOCH));
        assert_eq!(next_action(&p), Action::Delete);
    }

    #[test]
    fn finished_pods_are_left_alone() {
        let mut p = pod();
        p.status = Some(PodStatus { phase: Some("Succeeded".into()), ..Default::default() });
        assert_eq!(next_action(&p), Action::None);
    }
}
