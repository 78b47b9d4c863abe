//! What a simulated node does with a pod bound to it (pure).

use std::net::Ipv4Addr;

use k8s_openapi::api::core::v1::{
    ContainerState, ContainerStateRunning, ContainerStateTerminated, ContainerStatus, HostIP, Pod, PodCondition, PodIP,
    PodStatus,
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

/// Annotation: seconds a simulated pod's containers run before they exit (without it they
/// run forever). Lets Jobs finish on simulated nodes.
pub const RUN_SECONDS_ANNOTATION: &str = "rkube.io/sim-run-seconds";
/// Annotation: the exit code of a simulated pod's containers when they exit (default 0).
pub const EXIT_CODE_ANNOTATION: &str = "rkube.io/sim-exit-code";

/// How a simulated pod's containers end, from its annotations.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SimExit {
    pub after: std::time::Duration,
    pub exit_code: i32,
    /// Whether the kubelet restarts the containers after this exit (restartPolicy Always, or
    /// OnFailure with a non-zero code), as upstream's kubelet does.
    pub restarts: bool,
}

/// The simulated exit of `pod`, if it has [`RUN_SECONDS_ANNOTATION`] (a non-negative number).
pub fn sim_exit(pod: &Pod) -> Option<SimExit> {
    let annotations = pod.metadata.annotations.as_ref()?;
    let seconds: f64 = annotations.get(RUN_SECONDS_ANNOTATION)?.trim().parse().ok().filter(|s: &f64| *s >= 0.0 && s.is_finite())?;
    let exit_code = annotations.get(EXIT_CODE_ANNOTATION).and_then(|c| c.trim().parse().ok()).unwrap_or(0);
    let policy = pod.spec.as_ref().and_then(|s| s.restart_policy.as_deref()).unwrap_or("Always");
    let restarts = policy == "Always" || (policy == "OnFailure" && exit_code != 0);
    Some(SimExit { after: std::time::Duration::from_secs_f64(seconds), exit_code, restarts })
}

/// The status after every container exited with `exit.exit_code`: a finished pod (phase
/// Succeeded or Failed, not ready) or, when the kubelet restarts the containers, a running
/// pod whose containers count one more restart and remember the exit as `lastState`.
pub fn exited_status(running: &PodStatus, exit: SimExit, now: jiff::Timestamp) -> PodStatus {
    let now = Time(now);
    let mut status = running.clone();
    let reason = if exit.exit_code == 0 { "Completed" } else { "Error" };
    for c in status.container_statuses.iter_mut().flatten() {
        let started_at = c.state.as_ref().and_then(|s| s.running.as_ref()).and_then(|r| r.started_at.clone());
        let terminated = ContainerState {
            terminated: Some(ContainerStateTerminated {
                exit_code: exit.exit_code,
                reason: Some(reason.into()),
                started_at,
                finished_at: Some(now.clone()),
                container_id: c.container_id.clone(),
                ..Default::default()
            }),
            ..Default::default()
        };
        if exit.restarts {
            c.restart_count += 1;
            c.last_state = Some(terminated);
            c.state = Some(ContainerState {
                running: Some(ContainerStateRunning { started_at: Some(now.clone()) }),
                ..Default::default()
            });
        } else {
            c.state = Some(terminated);
            c.ready = false;
            c.started = Some(false);
        }
    }
    if !exit.restarts {
        status.phase = Some(if exit.exit_code == 0 { "Succeeded" } else { "Failed" }.into());
        for c in status.conditions.iter_mut().flatten() {
            if c.type_ == "Ready" || c.type_ == "ContainersReady" {
                c.status = "False".into();
                c.reason = Some("PodCompleted".into());
                c.last_transition_time = Some(now.clone());
            }
        }
    }
    status
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
    fn annotated_pods_exit_as_their_restart_policy_says() {
        let mut p = pod();
        assert_eq!(sim_exit(&p), None);
        p.metadata.annotations = Some([(RUN_SECONDS_ANNOTATION.to_string(), "2".to_string()), (EXIT_CODE_ANNOTATION.to_string(), "3".to_string())].into());
        p.spec.as_mut().unwrap().restart_policy = Some("Never".into());
        let exit = sim_exit(&p).unwrap();
        assert_eq!((exit.after, exit.exit_code, exit.restarts), (std::time::Duration::from_secs(2), 3, false));
        let running = running_status(&p, Ipv4Addr::new(10, 128, 0, 1), Ipv4Addr::new(100, 64, 0, 1), jiff::Timestamp::UNIX_EPOCH);
        let done = exited_status(&running, exit, jiff::Timestamp::UNIX_EPOCH);
        assert_eq!(done.phase.as_deref(), Some("Failed"));
        let c = &done.container_statuses.as_ref().unwrap()[0];
        assert_eq!(c.state.as_ref().unwrap().terminated.as_ref().unwrap().exit_code, 3);
        assert!(!c.ready);
        p.spec.as_mut().unwrap().restart_policy = Some("OnFailure".into());
        let exit = sim_exit(&p).unwrap();
        assert!(exit.restarts);
        let again = exited_status(&running, exit, jiff::Timestamp::UNIX_EPOCH);
        assert_eq!(again.phase.as_deref(), Some("Running"));
        assert_eq!(again.container_statuses.as_ref().unwrap()[0].restart_count, 1);
        p.metadata.annotations.as_mut().unwrap().remove(EXIT_CODE_ANNOTATION);
        let exit = sim_exit(&p).unwrap();
        assert!(!exit.restarts, "OnFailure does not restart a successful exit");
        assert_eq!(exited_status(&running, exit, jiff::Timestamp::UNIX_EPOCH).phase.as_deref(), Some("Succeeded"));
    }

    #[test]
    fn finished_pods_are_left_alone() {
        let mut p = pod();
        p.status = Some(PodStatus { phase: Some("Succeeded".into()), ..Default::default() });
        assert_eq!(next_action(&p), Action::None);
    }
}
