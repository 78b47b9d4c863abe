//! Pod status from runtime state, as upstream computes it (pkg/kubelet/kubelet_pods.go
//! generateAPIPodStatus / convertToAPIContainerStatuses / getPhase and
//! pkg/kubelet/status/generate.go): phase, conditions, IPs and container statuses. Pure.

use std::collections::HashMap;

use k8s_openapi::api::core::v1::{
    Container, ContainerState, ContainerStateRunning, ContainerStateTerminated, ContainerStateWaiting, ContainerStatus, HostIP, Pod,
    PodCondition, PodIP, PodStatus,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use super::runtime::{ContainerInfo, PodRuntime, State};

/// Why a container is not running, from the last sync (upstream's reasonCache).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reason {
    pub reason: String,
    pub message: String,
}

/// Everything the status depends on.
pub struct Inputs<'a> {
    pub pod: &'a Pod,
    pub runtime: &'a PodRuntime,
    /// Container name → why its last start failed.
    pub reasons: &'a HashMap<String, Reason>,
    /// Container name → readiness from probes (later task); absent means "ready when running".
    pub readiness: &'a HashMap<String, bool>,
    pub host_ip: &'a str,
    pub qos_class: &'a str,
    pub now: Time,
}

fn time(nanos: i64) -> Option<Time> {
    (nanos > 0).then(|| jiff::Timestamp::from_nanosecond(nanos as i128).ok()).flatten().map(Time)
}

fn terminated(c: &ContainerInfo) -> ContainerState {
    ContainerState {
        terminated: Some(ContainerStateTerminated {
            exit_code: c.exit_code,
            reason: Some(c.reason.clone()).filter(|r| !r.is_empty()),
            message: Some(c.message.clone()).filter(|m| !m.is_empty()),
            started_at: time(c.started_at),
            finished_at: time(c.finished_at),
            container_id: Some(format!("containerd://{}", c.id)),
            signal: None,
        }),
        ..Default::default()
    }
}

fn waiting(reason: &str, message: Option<&str>) -> ContainerState {
    ContainerState {
        waiting: Some(ContainerStateWaiting {
            reason: Some(reason.to_owned()),
            message: message.filter(|m| !m.is_empty()).map(str::to_owned),
        }),
        ..Default::default()
    }
}

/// Whether a container that exited with `exit_code` is restarted under `policy`.
pub fn should_restart(policy: &str, exit_code: i32) -> bool {
    match policy {
        "Never" => false,
        "OnFailure" => exit_code != 0,
        _ => true,
    }
}

fn container_status(inputs: &Inputs, spec: &Container, is_init: bool, default_reason: &str, policy: &str) -> ContainerStatus {
    let rt = inputs.runtime;
    let latest = rt.latest(&spec.name);
    let mut status = ContainerStatus {
        name: spec.name.clone(),
        image: spec.image.clone().unwrap_or_default(),
        image_id: String::new(),
        ready: false,
        started: Some(false),
        restart_count: 0,
        state: Some(waiting(default_reason, None)),
        ..Default::default()
    };
    if let Some(c) = latest {
        status.container_id = Some(format!("containerd://{}", c.id));
        status.image_id = c.image_ref.clone();
        if !c.image.is_empty() {
            status.image = c.image.clone();
        }
        status.restart_count = c.restart_count;
        status.state = Some(match c.state {
            State::Running => {
                status.started = Some(true);
                status.ready = inputs.readiness.get(&spec.name).copied().unwrap_or(true);
                ContainerState { running: Some(ContainerStateRunning { started_at: time(c.started_at) }), ..Default::default() }
            }
            State::Exited => terminated(c),
            State::Created | State::Unknown => waiting(default_reason, None),
        });
        if let Some(prev) = rt.previous(&spec.name).filter(|p| p.state == State::Exited) {
            status.last_state = Some(terminated(prev));
        }
    }
    // A container that failed to (re)start shows why it waits; its last run becomes lastState
    // (upstream: the reasonCache pass of convertToAPIContainerStatuses).
    let exited_ok = latest.is_some_and(|c| c.state == State::Exited && c.exit_code == 0);
    let restartable = match latest {
        Some(c) if c.state == State::Exited => {
            if is_init { !exited_ok } else { should_restart(policy, c.exit_code) }
        }
        _ => true,
    };
    if let (true, Some(r)) = (restartable, inputs.reasons.get(&spec.name)) {
        if latest.is_none_or(|c| c.state != State::Running) {
            if let Some(state) = status.state.take() {
                if state.terminated.is_some() {
                    status.last_state = Some(state);
                }
            }
            status.state = Some(waiting(&r.reason, Some(&r.message)));
        }
    }
    status
}

/// Upstream getPhase over the computed container statuses.
pub fn phase(pod: &Pod, init: &[ContainerStatus], containers: &[ContainerStatus]) -> &'static str {
    let policy = restart_policy(pod);
    let mut pending_init = 0;
    let mut failed_init = 0;
    for s in init {
        let state = s.state.clone().unwrap_or_default();
        if let Some(t) = state.terminated {
            if t.exit_code != 0 {
                failed_init += 1;
            }
        } else if state.waiting.is_some() {
            let last_failed = s.last_state.as_ref().and_then(|l| l.terminated.as_ref()).is_some_and(|t| t.exit_code != 0);
            if last_failed { failed_init += 1 } else { pending_init += 1 }
        } else {
            pending_init += 1;
        }
    }
    let (mut unknown, mut running, mut waiting_n, mut stopped, mut succeeded) = (0, 0, 0, 0, 0);
    for s in containers {
        let state = s.state.clone().unwrap_or_default();
        if state.running.is_some() {
            running += 1;
        } else if let Some(t) = state.terminated {
            stopped += 1;
            if t.exit_code == 0 {
                succeeded += 1;
            }
        } else if state.waiting.is_some() {
            if s.last_state.as_ref().and_then(|l| l.terminated.as_ref()).is_some() {
                stopped += 1;
            } else {
                waiting_n += 1;
            }
        } else {
            unknown += 1;
        }
    }
    if failed_init > 0 && policy == "Never" {
        return "Failed";
    }
    if pending_init > 0 || failed_init > 0 {
        return "Pending";
    }
    if waiting_n > 0 {
        return "Pending";
    }
    if running > 0 && unknown == 0 {
        return "Running";
    }
    if running == 0 && stopped > 0 && unknown == 0 {
        if policy == "Always" {
            return "Running";
        }
        if stopped == succeeded {
            return "Succeeded";
        }
        if policy == "Never" {
            return "Failed";
        }
        return "Running";
    }
    "Pending"
}

pub fn restart_policy(pod: &Pod) -> String {
    pod.spec.as_ref().and_then(|s| s.restart_policy.clone()).unwrap_or_else(|| "Always".into())
}

fn condition(type_: &str, ok: bool, reason: Option<&str>, message: Option<String>, old: &[PodCondition], now: &Time) -> PodCondition {
    let status = if ok { "True" } else { "False" };
    let last_transition_time = old
        .iter()
        .find(|c| c.type_ == type_ && c.status == status)
        .and_then(|c| c.last_transition_time.clone())
        .or_else(|| Some(now.clone()));
    PodCondition {
        type_: type_.into(),
        status: status.into(),
        reason: reason.map(str::to_owned),
        message,
        last_transition_time,
        last_probe_time: None,
        observed_generation: None,
    }
}

/// The pod status to report.
pub fn pod_status(inputs: &Inputs) -> PodStatus {
    let pod = inputs.pod;
    let spec = pod.spec.clone().unwrap_or_default();
    let old = pod.status.clone().unwrap_or_default();
    let old_conditions = old.conditions.clone().unwrap_or_default();
    let policy = restart_policy(pod);
    let init_specs = spec.init_containers.clone().unwrap_or_default();
    let default_reason = if init_specs.is_empty() { "ContainerCreating" } else { "PodInitializing" };
    let init: Vec<ContainerStatus> = init_specs.iter().map(|c| container_status(inputs, c, true, default_reason, &policy)).collect();
    let containers: Vec<ContainerStatus> =
        spec.containers.iter().map(|c| container_status(inputs, c, false, default_reason, &policy)).collect();
    let mut phase = phase(pod, &init, &containers).to_owned();
    // A terminal phase never changes back (upstream status manager).
    if matches!(old.phase.as_deref(), Some("Succeeded") | Some("Failed")) {
        phase = old.phase.clone().unwrap_or_default();
    }
    let now = &inputs.now;
    let sandbox_ready = inputs.runtime.sandbox().is_some_and(|s| s.ready);
    let incomplete: Vec<&str> = init
        .iter()
        .filter(|s| s.state.as_ref().and_then(|st| st.terminated.as_ref()).is_none_or(|t| t.exit_code != 0))
        .map(|s| s.name.as_str())
        .collect();
    let unready: Vec<&str> = containers.iter().filter(|s| !s.ready).map(|s| s.name.as_str()).collect();
    let completed = phase == "Succeeded";
    let initialized = match (completed, incomplete.is_empty()) {
        (true, _) => condition("Initialized", true, Some("PodCompleted"), None, &old_conditions, now),
        (false, true) => condition("Initialized", true, None, None, &old_conditions, now),
        (false, false) => condition(
            "Initialized",
            false,
            Some("ContainersNotInitialized"),
            Some(format!("containers with incomplete status: [{}]", incomplete.join(" "))),
            &old_conditions,
            now,
        ),
    };
    let ready_condition = |type_: &str| match (completed, unready.is_empty()) {
        (true, _) => condition(type_, false, Some("PodCompleted"), None, &old_conditions, now),
        (false, true) => condition(type_, true, None, None, &old_conditions, now),
        (false, false) => condition(
            type_,
            false,
            Some("ContainersNotReady"),
            Some(format!("containers with unready status: [{}]", unready.join(" "))),
            &old_conditions,
            now,
        ),
    };
    let mut conditions = vec![
        condition("PodReadyToStartContainers", sandbox_ready, None, None, &old_conditions, now),
        initialized,
        ready_condition("Ready"),
        ready_condition("ContainersReady"),
    ];
    let ours = ["PodReadyToStartContainers", "Initialized", "Ready", "ContainersReady"];
    conditions.extend(old_conditions.iter().filter(|c| !ours.contains(&c.type_.as_str())).cloned());
    let pod_ip = if super::config::host_network(pod) {
        Some(inputs.host_ip.to_owned())
    } else {
        inputs.runtime.sandbox().filter(|s| s.ready && !s.ip.is_empty()).map(|s| s.ip.clone()).or_else(|| old.pod_ip.clone())
    };
    PodStatus {
        phase: Some(phase),
        conditions: Some(conditions),
        host_ip: Some(inputs.host_ip.to_owned()),
        host_ips: Some(vec![HostIP { ip: inputs.host_ip.to_owned() }]),
        pod_ips: pod_ip.clone().map(|ip| vec![PodIP { ip }]),
        pod_ip,
        start_time: old.start_time.clone().or_else(|| Some(now.clone())),
        qos_class: Some(inputs.qos_class.to_owned()),
        init_container_statuses: (!init.is_empty()).then_some(init),
        container_statuses: Some(containers),
        nominated_node_name: old.nominated_node_name.clone(),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests;
