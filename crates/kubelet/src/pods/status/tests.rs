use super::*;
use crate::pods::runtime::Sandbox;
use k8s_openapi::api::core::v1::PodSpec;
use kube::api::ObjectMeta;

fn pod(policy: &str, init: &[&str], containers: &[&str]) -> Pod {
    let c = |n: &&str| Container { name: n.to_string(), image: Some("img".into()), ..Default::default() };
    Pod {
        metadata: ObjectMeta { name: Some("p".into()), namespace: Some("default".into()), uid: Some("u".into()), ..Default::default() },
        spec: Some(PodSpec {
            restart_policy: Some(policy.into()),
            init_containers: (!init.is_empty()).then(|| init.iter().map(c).collect()),
            containers: containers.iter().map(c).collect(),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn container(name: &str, id: &str, state: State, exit_code: i32, created: i64, restarts: i32) -> ContainerInfo {
    ContainerInfo {
        id: id.into(),
        sandbox_id: "s1".into(),
        name: name.into(),
        attempt: restarts as u32,
        state,
        created_at: created,
        started_at: created,
        finished_at: if state == State::Exited { created + 1 } else { 0 },
        exit_code,
        reason: match (state, exit_code) {
            (State::Exited, 0) => "Completed".into(),
            (State::Exited, _) => "Error".into(),
            _ => String::new(),
        },
        message: String::new(),
        image: "img".into(),
        image_ref: "sha256:abc".into(),
        restart_count: restarts,
        grace_secs: None,
        spec_image: None,
    }
}

fn runtime(containers: Vec<ContainerInfo>) -> PodRuntime {
    let mut containers = containers;
    containers.sort_by_key(|c| std::cmp::Reverse(c.created_at));
    PodRuntime {
        sandboxes: vec![Sandbox { id: "s1".into(), ready: true, attempt: 0, created_at: 1, ip: "10.42.0.9".into() }],
        containers,
    }
}

fn status(pod: &Pod, rt: &PodRuntime, reasons: &[(&str, &str)]) -> PodStatus {
    let reasons: HashMap<String, Reason> =
        reasons.iter().map(|(n, r)| (n.to_string(), Reason { reason: r.to_string(), message: "m".into() })).collect();
    let readiness = HashMap::new();
    pod_status(&Inputs {
        pod,
        runtime: rt,
        reasons: &reasons,
        readiness: &readiness,
        host_ip: "192.0.2.1",
        qos_class: "BestEffort",
        now: Time(jiff::Timestamp::UNIX_EPOCH),
    })
}

fn cond<'a>(s: &'a PodStatus, t: &str) -> &'a PodCondition {
    s.conditions.as_ref().unwrap().iter().find(|c| c.type_ == t).unwrap()
}

#[test]
fn a_pod_without_containers_yet_is_pending_and_creating() {
    let p = pod("Always", &[], &["c"]);
    let s = status(&p, &PodRuntime::default(), &[]);
    assert_eq!(s.phase.as_deref(), Some("Pending"));
    let cs = &s.container_statuses.as_ref().unwrap()[0];
    assert_eq!(cs.state.as_ref().unwrap().waiting.as_ref().unwrap().reason.as_deref(), Some("ContainerCreating"));
    assert_eq!(cond(&s, "PodReadyToStartContainers").status, "False");
    assert_eq!(cond(&s, "Ready").message.as_deref(), Some("containers with unready status: [c]"));
}

#[test]
fn a_running_container_makes_the_pod_running_and_ready_with_its_ip() {
    let p = pod("Always", &[], &["c"]);
    let s = status(&p, &runtime(vec![container("c", "id1", State::Running, 0, 10, 0)]), &[]);
    assert_eq!(s.phase.as_deref(), Some("Running"));
    assert_eq!(s.pod_ip.as_deref(), Some("10.42.0.9"));
    assert_eq!(cond(&s, "Ready").status, "True");
    let cs = &s.container_statuses.as_ref().unwrap()[0];
    assert!(cs.ready);
    assert_eq!(cs.container_id.as_deref(), Some("containerd://id1"));
    assert_eq!(cs.image_id, "sha256:abc");
}

#[test]
fn a_crashing_container_waits_in_crash_loop_with_its_last_run() {
    let p = pod("Always", &[], &["c"]);
    let rt = runtime(vec![container("c", "id2", State::Exited, 1, 20, 2), container("c", "id1", State::Exited, 1, 10, 1)]);
    let s = status(&p, &rt, &[("c", "CrashLoopBackOff")]);
    assert_eq!(s.phase.as_deref(), Some("Running"));
    let cs = &s.container_statuses.as_ref().unwrap()[0];
    assert_eq!(cs.restart_count, 2);
    assert_eq!(cs.state.as_ref().unwrap().waiting.as_ref().unwrap().reason.as_deref(), Some("CrashLoopBackOff"));
    let last = cs.last_state.as_ref().unwrap().terminated.as_ref().unwrap();
    assert_eq!((last.exit_code, last.reason.as_deref()), (1, Some("Error")));
    // Without a sync failure recorded yet, the terminated state shows (kubectl: Error).
    let s = status(&p, &rt, &[]);
    let cs = &s.container_statuses.as_ref().unwrap()[0];
    assert_eq!(cs.state.as_ref().unwrap().terminated.as_ref().unwrap().exit_code, 1);
}

#[test]
fn never_restarting_pods_end_succeeded_or_failed() {
    let p = pod("Never", &[], &["c"]);
    let ok = status(&p, &runtime(vec![container("c", "a", State::Exited, 0, 1, 0)]), &[]);
    assert_eq!(ok.phase.as_deref(), Some("Succeeded"));
    assert_eq!(cond(&ok, "Ready").reason.as_deref(), Some("PodCompleted"));
    let bad = status(&p, &runtime(vec![container("c", "a", State::Exited, 3, 1, 0)]), &[]);
    assert_eq!(bad.phase.as_deref(), Some("Failed"));
    let on_failure = pod("OnFailure", &[], &["c"]);
    let s = status(&on_failure, &runtime(vec![container("c", "a", State::Exited, 3, 1, 0)]), &[]);
    assert_eq!(s.phase.as_deref(), Some("Running"));
}

#[test]
fn init_containers_gate_initialization() {
    let p = pod("Always", &["i"], &["c"]);
    let s = status(&p, &runtime(vec![container("i", "a", State::Running, 0, 1, 0)]), &[]);
    assert_eq!(s.phase.as_deref(), Some("Pending"));
    assert_eq!(cond(&s, "Initialized").message.as_deref(), Some("containers with incomplete status: [i]"));
    let c = &s.container_statuses.as_ref().unwrap()[0];
    assert_eq!(c.state.as_ref().unwrap().waiting.as_ref().unwrap().reason.as_deref(), Some("PodInitializing"));
    let done = status(&p, &runtime(vec![container("i", "a", State::Exited, 0, 1, 0), container("c", "b", State::Running, 0, 2, 0)]), &[]);
    assert_eq!(done.phase.as_deref(), Some("Running"));
    assert_eq!(cond(&done, "Initialized").status, "True");
    let never = pod("Never", &["i"], &["c"]);
    let failed = status(&never, &runtime(vec![container("i", "a", State::Exited, 1, 1, 0)]), &[]);
    assert_eq!(failed.phase.as_deref(), Some("Failed"));
}

#[test]
fn transition_times_are_kept_while_a_condition_holds() {
    let mut p = pod("Always", &[], &["c"]);
    let first = status(&p, &runtime(vec![container("c", "id1", State::Running, 0, 10, 0)]), &[]);
    p.status = Some(first.clone());
    let rt = runtime(vec![container("c", "id1", State::Running, 0, 10, 0)]);
    let reasons = HashMap::new();
    let readiness = HashMap::new();
    let later = pod_status(&Inputs {
        pod: &p,
        runtime: &rt,
        reasons: &reasons,
        readiness: &readiness,
        host_ip: "192.0.2.1",
        qos_class: "BestEffort",
        now: Time(jiff::Timestamp::from_second(500).unwrap()),
    });
    assert_eq!(later, first);
}
