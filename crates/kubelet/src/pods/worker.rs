//! One pod worker per pod: a level-triggered loop that reads the pod's CRI state, converges it
//! on the spec (sandbox, init containers in order, containers with restart policy and
//! back-off), writes the status, and on deletion stops everything gracefully and deletes the
//! pod object (pkg/kubelet/pod_workers.go, kuberuntime_manager.go SyncPod/KillPod).

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use k8s_openapi::api::core::v1::{Container, Pod, PodStatus, Service};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::reflector::Store;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::backoff::Backoff;
use super::config::{self, ContainerInputs};
use super::env::{self, EnvSources, NodeAllocatable};
use super::events::Recorder;
use super::probes::Prober;
use super::resources;
use super::runtime::{self, PodRuntime, State};
use super::status::{self, Reason};
use crate::cri::{api, Cri};
use crate::volumes;

/// How often a worker re-reads CRI state (containerd 1.6 has no event stream).
pub const RESYNC: Duration = Duration::from_secs(1);
/// Upstream minimumGracePeriodInSeconds.
pub(super) const MIN_GRACE_SECS: i64 = 2;

/// What every worker shares.
pub struct Context {
    pub client: kube::Client,
    pub cri: Cri,
    pub recorder: Recorder,
    pub node_name: String,
    pub node_ip: String,
    /// Root of the pods' log directories (`<agent dir>/pods`).
    pub pods_dir: PathBuf,
    pub allocatable: NodeAllocatable,
    pub services: Store<Service>,
    /// Restart and image-pull back-off, keyed by pod uid + container or image.
    pub backoff: Mutex<Backoff>,
    /// Mirrors, rewrites and credentials of `<data-dir>/registries.yaml`.
    pub registries: crate::registries::Registries,
}

/// A worker's memory between syncs; everything else is re-read from CRI.
#[derive(Default)]
struct WorkerState {
    reasons: HashMap<String, Reason>,
    last_written: Option<serde_json::Value>,
    /// Containers (by id) whose back-off was already announced with an event.
    announced: HashSet<String>,
    /// Last image pull error per image (for ImagePullBackOff's message).
    pull_errors: HashMap<String, String>,
    /// Container name → when a start that failed may be tried again (upstream pod workers
    /// requeue a failed sync after 10 s).
    retry_at: HashMap<String, tokio::time::Instant>,
    /// The pod's probe tasks (started on the first sync).
    prober: Option<Prober>,
    /// The pod's volumes once set up, and when they were last refreshed.
    volumes: Option<(volumes::Mounted, tokio::time::Instant)>,
}

/// The `retry_at` key of sandbox creation (not a valid container name).
const SANDBOX_KEY: &str = "/sandbox";

/// Upstream's pod worker back-off after a failed sync.
const SYNC_RETRY: Duration = Duration::from_secs(10);

/// Runs the worker of one pod until the pod is gone (deleted and cleaned up) or `shutdown`.
/// `None` on the channel means the pod vanished from the API.
pub async fn run(ctx: Arc<Context>, mut rx: watch::Receiver<Option<Arc<Pod>>>, shutdown: CancellationToken) {
    let mut state = WorkerState::default();
    let mut last: Option<Arc<Pod>> = None;
    let mut tick = tokio::time::interval(RESYNC);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let current = rx.borrow_and_update().clone();
        let done = match (&current, &last) {
            (Some(pod), _) => {
                last = Some(pod.clone());
                sync_pod(&ctx, &mut state, pod).await
            }
            (None, Some(pod)) => {
                // Removed from the API (force deletion): stop what runs, nothing to delete.
                super::kill::kill_pod(&ctx, pod, Some(MIN_GRACE_SECS)).await;
                true
            }
            (None, None) => true,
        };
        if done {
            return;
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            changed = rx.changed() => if changed.is_err() { return },
            _ = tick.tick() => {}
        }
    }
}

fn is_terminal(phase: Option<&str>) -> bool {
    matches!(phase, Some("Succeeded") | Some("Failed"))
}

/// One level-triggered pass over the pod. Returns true once the pod is finished for good.
async fn sync_pod(ctx: &Context, state: &mut WorkerState, pod: &Arc<Pod>) -> bool {
    let (ns, name, uid) = config::pod_identity(pod);
    if pod.metadata.deletion_timestamp.is_some() {
        super::kill::kill_pod(ctx, pod, None).await;
        super::kill::delete_from_api(ctx, pod).await;
        return true;
    }
    let rt = match runtime::pod_runtime(&ctx.cri, &uid).await {
        Ok(rt) => rt,
        Err(e) => {
            tracing::warn!(pod = %format!("{ns}/{name}"), error = %e, "reading pod runtime state failed");
            return false;
        }
    };
    let prober = state.prober.get_or_insert_with(|| Prober::start(&ctx.cri, &ctx.recorder, pod));
    let pod_ip = if config::host_network(pod) { ctx.node_ip.clone() } else { rt.sandbox().map(|s| s.ip.clone()).unwrap_or_default() };
    prober.observe(pod, &rt, &pod_ip);
    let api_phase = pod.status.as_ref().and_then(|s| s.phase.as_deref());
    if is_terminal(api_phase) {
        // A finished pod keeps its status; what still runs of it is stopped (upstream kills
        // the sandbox of terminal pods).
        if rt.running().next().is_some() || rt.sandboxes.iter().any(|s| s.ready) {
            super::kill::stop_all(ctx, pod, &rt, grace_secs(pod, None)).await;
        }
        if rt.sandboxes.is_empty() && pod.status.as_ref().and_then(|s| s.container_statuses.as_ref()).is_none() {
            // Rejected at admission: the status is already written.
            return false;
        }
        return false;
    }
    if !ensure_volumes(ctx, state, pod, &pod_ip).await {
        write_status(ctx, state, pod, &rt).await;
        return false;
    }
    let changed = match converge(ctx, state, pod, &rt).await {
        Ok(changed) => changed,
        Err(e) => {
            tracing::debug!(pod = %format!("{ns}/{name}"), error = %e, "pod sync failed");
            true
        }
    };
    let rt = if changed { runtime::pod_runtime(&ctx.cri, &uid).await.unwrap_or(rt) } else { rt };
    write_status(ctx, state, pod, &rt).await;
    false
}

/// How often configMap, secret, downwardAPI and projected volumes are refreshed.
const VOLUME_RESYNC: Duration = Duration::from_secs(10);
/// How soon volumes that failed to set up are tried again.
const VOLUME_RETRY: Duration = Duration::from_secs(2);
/// The `retry_at` key of volume set-up (not a valid container name).
const VOLUMES_KEY: &str = "/volumes";

/// Sets the pod's volumes up before anything starts (upstream WaitForAttachAndMount) and
/// refreshes them while it runs. Returns false while they cannot be set up (FailedMount).
async fn ensure_volumes(ctx: &Context, state: &mut WorkerState, pod: &Pod, pod_ip: &str) -> bool {
    let now = tokio::time::Instant::now();
    if state.volumes.as_ref().is_some_and(|(_, at)| now < *at + VOLUME_RESYNC) {
        return true;
    }
    if state.retry_at.get(VOLUMES_KEY).is_some_and(|t| *t > now) {
        return state.volumes.is_some();
    }
    let pod_ips: Vec<String> = Some(pod_ip.to_owned()).filter(|i| !i.is_empty()).into_iter().collect();
    let host = volumes::Host { client: &ctx.client, pods_dir: &ctx.pods_dir, allocatable: ctx.allocatable, host_ip: &ctx.node_ip, pod_ips: &pod_ips };
    match volumes::setup(&host, pod).await {
        Ok(mounted) => {
            state.volumes = Some((mounted, now));
            state.retry_at.remove(VOLUMES_KEY);
            true
        }
        Err(e) => {
            state.retry_at.insert(VOLUMES_KEY.into(), now + VOLUME_RETRY);
            if state.volumes.is_some() {
                // A refresh that failed keeps what the containers already see (upstream).
                tracing::debug!(pod = %pod_full_name(pod), error = %e, "refreshing volumes failed");
                return true;
            }
            ctx.recorder.pod_event(pod, None, "Warning", "FailedMount", &e.to_string());
            false
        }
    }
}

/// The grace period for stopping the pod's containers.
pub(super) fn grace_secs(pod: &Pod, r#override: Option<i64>) -> i64 {
    r#override
        .or(pod.metadata.deletion_grace_period_seconds)
        .or_else(|| pod.spec.as_ref().and_then(|s| s.termination_grace_period_seconds))
        .unwrap_or(config::DEFAULT_GRACE_SECS)
        .max(MIN_GRACE_SECS)
}

/// Whether a pod whose sandbox died needs no new one: every container finished and none is
/// to be restarted.
fn pod_done(pod: &Pod, rt: &PodRuntime) -> bool {
    let policy = status::restart_policy(pod);
    let Some(spec) = pod.spec.as_ref() else { return true };
    spec.containers.iter().all(|c| match rt.latest(&c.name) {
        Some(x) => x.state == State::Exited && !status::should_restart(&policy, x.exit_code),
        None => false,
    })
}

/// Converges the runtime on the spec. Returns whether anything was changed.
async fn converge(ctx: &Context, state: &mut WorkerState, pod: &Arc<Pod>, rt: &PodRuntime) -> anyhow::Result<bool> {
    let policy = status::restart_policy(pod);
    let spec = pod.spec.clone().unwrap_or_default();
    let mut rt = rt.clone();
    let mut changed = false;
    if !rt.sandbox().is_some_and(|s| s.ready) {
        if rt.sandbox().is_some() && pod_done(pod, &rt) {
            return Ok(false);
        }
        // A failed sandbox is retried after the pod worker's back-off, not every second.
        if state.retry_at.get(SANDBOX_KEY).is_some_and(|t| *t > tokio::time::Instant::now()) {
            return Ok(false);
        }
        if let Err(e) = create_sandbox(ctx, pod, &rt).await {
            state.retry_at.insert(SANDBOX_KEY.into(), tokio::time::Instant::now() + SYNC_RETRY);
            return Err(e);
        }
        state.retry_at.remove(SANDBOX_KEY);
        rt = runtime::pod_runtime(&ctx.cri, pod.metadata.uid.as_deref().unwrap_or("")).await?;
        changed = true;
    }
    let sandbox = rt.sandbox().cloned().ok_or_else(|| anyhow::anyhow!("sandbox vanished"))?;
    for c in spec.init_containers.iter().flatten() {
        match rt.latest_in(&c.name, &sandbox.id) {
            None => {
                start_container(ctx, state, pod, c, true, &sandbox, &rt).await;
                return Ok(true);
            }
            Some(x) if x.state != State::Exited => return Ok(changed),
            Some(x) if x.exit_code == 0 => continue,
            Some(_) if policy == "Never" => return Ok(changed),
            Some(_) => {
                start_container(ctx, state, pod, c, true, &sandbox, &rt).await;
                return Ok(true);
            }
        }
    }
    for c in &spec.containers {
        let latest = rt.latest_in(&c.name, &sandbox.id).cloned();
        let start = match latest {
            None => true,
            Some(x) => match x.state {
                State::Running if x.spec_image.as_ref().is_some_and(|i| Some(i) != c.image.as_ref()) => {
                    let text = format!("Container {} definition changed, will be restarted", c.name);
                    ctx.recorder.pod_event(pod, Some((&c.name, false)), "Normal", "Killing", &text);
                    let _ = runtime::stop_container(&ctx.cri, &x.id, grace_secs(pod, None)).await;
                    rt = runtime::pod_runtime(&ctx.cri, pod.metadata.uid.as_deref().unwrap_or("")).await?;
                    true
                }
                State::Running => {
                    if kill_unhealthy(ctx, state, pod, c, &x).await {
                        changed = true;
                        rt = runtime::pod_runtime(&ctx.cri, pod.metadata.uid.as_deref().unwrap_or("")).await?;
                        let after = rt.latest_in(&c.name, &sandbox.id);
                        after.is_some_and(|n| n.state == State::Exited && status::should_restart(&policy, n.exit_code))
                    } else {
                        false
                    }
                }
                State::Created | State::Unknown => {
                    let _ = runtime::stop_container(&ctx.cri, &x.id, 0).await;
                    let _ = runtime::remove_container(&ctx.cri, &x.id).await;
                    true
                }
                State::Exited => status::should_restart(&policy, x.exit_code),
            },
        };
        if start {
            start_container(ctx, state, pod, c, false, &sandbox, &rt).await;
            changed = true;
        }
    }
    Ok(changed)
}

/// Kills a container whose liveness or startup probe failed (upstream computePodActions and
/// killContainer); the restart policy then decides on a new one. Returns whether it killed.
async fn kill_unhealthy(ctx: &Context, state: &WorkerState, pod: &Pod, spec: &Container, c: &runtime::ContainerInfo) -> bool {
    let Some(why) = state.prober.as_ref().and_then(|p| p.must_kill(&spec.name, &c.id)) else { return false };
    let policy = status::restart_policy(pod);
    let then = if policy == "Never" { "will not be restarted" } else { "will be restarted" };
    ctx.recorder.pod_event(pod, Some((&spec.name, false)), "Normal", "Killing", &format!("{why}, {then}"));
    // A probe-level terminationGracePeriodSeconds wins over the pod's (upstream).
    let probe_grace = [spec.liveness_probe.as_ref(), spec.startup_probe.as_ref()]
        .into_iter()
        .flatten()
        .find_map(|p| p.termination_grace_period_seconds);
    let grace = probe_grace.unwrap_or_else(|| grace_secs(pod, None)).max(MIN_GRACE_SECS);
    if let Err(e) = runtime::stop_container(&ctx.cri, &c.id, grace).await {
        tracing::warn!(container = %c.id, error = %e, "stopping an unhealthy container failed");
    }
    true
}

pub(super) fn cgroup_parent(pod: &Pod) -> String {
    resources::cgroup_parent(&resources::qos_class(pod), pod.metadata.uid.as_deref().unwrap_or(""))
}

fn sandbox_config(ctx: &Context, pod: &Pod, attempt: u32) -> api::PodSandboxConfig {
    let log_dir = config::log_directory(&ctx.pods_dir, pod);
    config::sandbox_config(pod, attempt, &log_dir, &cgroup_parent(pod))
}

/// Stops what is left of older sandboxes and runs a new one.
async fn create_sandbox(ctx: &Context, pod: &Pod, rt: &PodRuntime) -> anyhow::Result<()> {
    for c in rt.running() {
        let _ = runtime::stop_container(&ctx.cri, &c.id, grace_secs(pod, None)).await;
    }
    for s in &rt.sandboxes {
        let _ = runtime::stop_sandbox(&ctx.cri, &s.id).await;
    }
    // Keep the newest old sandbox (its containers carry restart counts and logs); drop older.
    for s in rt.sandboxes.iter().skip(1) {
        let _ = runtime::remove_sandbox(&ctx.cri, &s.id).await;
    }
    let attempt = rt.sandbox().map(|s| s.attempt + 1).unwrap_or(0);
    let log_dir = config::log_directory(&ctx.pods_dir, pod);
    std::fs::create_dir_all(&log_dir).map_err(|e| anyhow::anyhow!("cannot create {}: {e}", log_dir.display()))?;
    let config = sandbox_config(ctx, pod, attempt);
    let mut client = ctx.cri.runtime.clone();
    let request = api::RunPodSandboxRequest { config: Some(config), runtime_handler: String::new() };
    match tokio::time::timeout(runtime::CALL_TIMEOUT, client.run_pod_sandbox(request)).await {
        Ok(Ok(_)) => Ok(()),
        failed => {
            let message = match failed {
                Ok(Err(s)) => s.message().to_owned(),
                _ => "timed out".to_owned(),
            };
            ctx.recorder.pod_event(pod, None, "Warning", "FailedCreatePodSandBox", &format!("Failed to create pod sandbox: {message}"));
            // A failed RunPodSandbox leaves a NOTREADY sandbox behind.
            if let Ok(after) = runtime::pod_runtime(&ctx.cri, pod.metadata.uid.as_deref().unwrap_or("")).await {
                for s in after.sandboxes.iter().filter(|s| !s.ready && !rt.sandboxes.iter().any(|o| o.id == s.id)) {
                    let _ = runtime::remove_sandbox(&ctx.cri, &s.id).await;
                }
            }
            Err(anyhow::anyhow!("creating the pod sandbox: {message}"))
        }
    }
}

/// Go's time.Duration formatting for whole seconds (`10s`, `1m20s`, `5m0s`).
pub fn go_duration(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        0..=59 => format!("{s}s"),
        _ if s < 3600 => format!("{}m{}s", s / 60, s % 60),
        _ => format!("{}h{}m{}s", s / 3600, (s % 3600) / 60, s % 60),
    }
}

fn pod_full_name(pod: &Pod) -> String {
    let (ns, name, uid) = config::pod_identity(pod);
    format!("{name}_{ns}({uid})")
}

/// Starts one container (new or a restart), honouring back-off; failures become reasons.
async fn start_container(
    ctx: &Context,
    state: &mut WorkerState,
    pod: &Pod,
    spec: &Container,
    is_init: bool,
    sandbox: &runtime::Sandbox,
    rt: &PodRuntime,
) {
    let uid = pod.metadata.uid.clone().unwrap_or_default();
    let name = spec.name.clone();
    let prev = rt.latest(&name);
    if state.retry_at.get(&name).is_some_and(|t| *t > tokio::time::Instant::now()) {
        return;
    }
    let (attempt, restart_count) = prev.map(|p| (p.attempt + 1, p.restart_count + 1)).unwrap_or((0, 0));
    let key = format!("{uid}/{name}");
    if let Some(p) = prev.filter(|p| p.state == State::Exited) {
        let now = crate::clock::now_nanos();
        let mut backoff = ctx.backoff.lock().expect("back-off lock poisoned");
        if backoff.in_backoff_since(&key, p.finished_at, now) {
            let delay = go_duration(backoff.get(&key));
            drop(backoff);
            let message = format!("back-off {delay} restarting failed container={name} pod={}", pod_full_name(pod));
            state.reasons.insert(name.clone(), Reason { reason: "CrashLoopBackOff".into(), message });
            if state.announced.insert(p.id.clone()) {
                let text = format!("Back-off restarting failed container {name} in pod {}", pod_full_name(pod));
                ctx.recorder.pod_event(pod, Some((&name, is_init)), "Warning", "BackOff", &text);
            }
            return;
        }
        backoff.next(&key, p.finished_at, now);
    }
    let image_ref = match super::pull::ensure_image(ctx, &mut state.pull_errors, pod, spec, is_init).await {
        Ok(r) => r,
        Err(reason) => {
            if reason.reason != "ImagePullBackOff" && reason.reason != "ErrImagePull" {
                state.retry_at.insert(name.clone(), tokio::time::Instant::now() + SYNC_RETRY);
            }
            // One BackOff event per back-off period, not one per sync.
            let was = state.reasons.get(&name).map(|r| r.reason.as_str());
            if reason.reason == "ImagePullBackOff" && was != Some("ImagePullBackOff") {
                let image = spec.image.clone().unwrap_or_default();
                ctx.recorder.pod_event(pod, Some((&name, is_init)), "Normal", "BackOff", &format!("Back-off pulling image \"{image}\""));
            }
            state.reasons.insert(name, reason);
            return;
        }
    };
    let fail = |state: &mut WorkerState, reason: &str, message: String| {
        ctx.recorder.pod_event(pod, Some((&name, is_init)), "Warning", "Failed", &format!("Error: {message}"));
        state.reasons.insert(name.clone(), Reason { reason: reason.into(), message });
        state.retry_at.insert(name.clone(), tokio::time::Instant::now() + SYNC_RETRY);
    };
    let services: Vec<Arc<Service>> = ctx.services.state();
    let sources = EnvSources {
        client: &ctx.client,
        services: &services,
        allocatable: ctx.allocatable,
        host_ip: ctx.node_ip.clone(),
        pod_ips: if config::host_network(pod) { vec![ctx.node_ip.clone()] } else { vec![sandbox.ip.clone()].into_iter().filter(|i| !i.is_empty()).collect() },
    };
    let env = match env::container_env(&sources, pod, spec).await {
        Ok(env) => env,
        Err(e) => return fail(state, "CreateContainerConfigError", e.0),
    };
    let (command, args) = env::expand_command(spec, &env);
    let no_volumes = volumes::Mounted::new();
    let mounts = match volumes::container_mounts(spec, state.volumes.as_ref().map(|(v, _)| v).unwrap_or(&no_volumes), &env) {
        Ok(m) => m,
        Err(e) => return fail(state, "CreateContainerConfigError", e),
    };
    let qos = resources::qos_class(pod);
    let inputs = ContainerInputs {
        attempt,
        restart_count,
        image_ref,
        env,
        command,
        args,
        mounts: match etc_hosts_mount(ctx, pod, sandbox) {
            Ok(m) => mounts.into_iter().chain(m).collect(),
            Err(e) => return fail(state, "CreateContainerError", e),
        },
        resources: resources::linux_resources(spec, &qos, ctx.allocatable.memory_bytes),
    };
    let log_dir = config::log_directory(&ctx.pods_dir, pod).join(&name);
    if let Err(e) = std::fs::create_dir_all(&log_dir) {
        return fail(state, "CreateContainerError", format!("cannot create {}: {e}", log_dir.display()));
    }
    let request = api::CreateContainerRequest {
        pod_sandbox_id: sandbox.id.clone(),
        config: Some(config::container_config(pod, spec, inputs)),
        sandbox_config: Some(sandbox_config(ctx, pod, sandbox.attempt)),
    };
    let mut client = ctx.cri.runtime.clone();
    let id = match tokio::time::timeout(runtime::CALL_TIMEOUT, client.create_container(request)).await {
        Ok(Ok(r)) => r.into_inner().container_id,
        Ok(Err(s)) => return fail(state, "CreateContainerError", s.message().to_owned()),
        Err(_) => return fail(state, "CreateContainerError", "context deadline exceeded".into()),
    };
    ctx.recorder.pod_event(pod, Some((&name, is_init)), "Normal", "Created", &format!("Created container: {name}"));
    let request = api::StartContainerRequest { container_id: id.clone() };
    match tokio::time::timeout(runtime::CALL_TIMEOUT, client.start_container(request)).await {
        Ok(Ok(_)) => {}
        Ok(Err(s)) => return fail(state, "RunContainerError", s.message().to_owned()),
        Err(_) => return fail(state, "RunContainerError", "context deadline exceeded".into()),
    }
    ctx.recorder.pod_event(pod, Some((&name, is_init)), "Normal", "Started", &format!("Started container {name}"));
    state.reasons.remove(&name);
    state.retry_at.remove(&name);
    run_post_start(ctx, state, pod, spec, &id).await;
    // Keep the container before this one (for `kubectl logs --previous`); remove older ones.
    for old in rt.containers.iter().filter(|c| c.name == name && c.state == State::Exited).skip(1) {
        let _ = runtime::remove_container(&ctx.cri, &old.id).await;
    }
}

/// The pod's directory for kubelet-managed files (`<agent dir>/kubelet/pods/<uid>`).
pub(super) fn pod_dir(ctx: &Context, pod: &Pod) -> PathBuf {
    let agent_dir = ctx.pods_dir.parent().map(PathBuf::from).unwrap_or_default();
    agent_dir.join("kubelet").join("pods").join(pod.metadata.uid.as_deref().unwrap_or(""))
}

/// Writes the managed hosts file and returns its mount (none for hostNetwork pods, which see
/// the host's, as upstream). containerd would otherwise copy the host's /etc/hosts.
fn etc_hosts_mount(ctx: &Context, pod: &Pod, sandbox: &runtime::Sandbox) -> Result<Option<api::Mount>, String> {
    if config::host_network(pod) {
        return Ok(None);
    }
    let dir = pod_dir(ctx, pod);
    std::fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let path = dir.join("etc-hosts");
    std::fs::write(&path, config::hosts_file(pod, &sandbox.ip)).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    Ok(Some(api::Mount { container_path: "/etc/hosts".into(), host_path: path.display().to_string(), ..Default::default() }))
}

/// Runs the postStart exec hook; a failure kills the container (upstream
/// FailedPostStartHook).
async fn run_post_start(ctx: &Context, state: &mut WorkerState, pod: &Pod, spec: &Container, id: &str) {
    let Some(exec) = spec.lifecycle.as_ref().and_then(|l| l.post_start.as_ref()).and_then(|h| h.exec.as_ref()) else { return };
    let command = exec.command.clone().unwrap_or_default();
    let result = runtime::exec_sync(&ctx.cri, id, command, grace_secs(pod, None)).await;
    let message = match result {
        Ok((0, _)) => return,
        Ok((code, out)) => format!("command {:?} exited with {code}: {out}", exec.command.clone().unwrap_or_default().join(" ")),
        Err(e) => e.to_string(),
    };
    ctx.recorder.pod_event(pod, Some((&spec.name, false)), "Warning", "FailedPostStartHook", &format!("PostStartHook failed: {message}"));
    let _ = runtime::stop_container(&ctx.cri, id, grace_secs(pod, None)).await;
    state.reasons.insert(spec.name.clone(), Reason { reason: "PostStartHookError".into(), message });
}

/// Computes the status and writes it through `pods/status` when it changed.
async fn write_status(ctx: &Context, state: &mut WorkerState, pod: &Pod, rt: &PodRuntime) {
    let readiness = state.prober.as_ref().map(Prober::readiness).unwrap_or_default();
    let qos = resources::qos_class(pod);
    let mut status = status::pod_status(&status::Inputs {
        pod,
        runtime: rt,
        reasons: &state.reasons,
        readiness: &readiness,
        host_ip: &ctx.node_ip,
        qos_class: &qos,
        now: Time(crate::clock::now()),
    });
    // A container with a startup probe has not `started` until that probe succeeded.
    if let Some(prober) = state.prober.as_ref() {
        for s in status.container_statuses.iter_mut().flatten() {
            if let (Some(started), true) = (prober.started(&s.name), s.started == Some(true)) {
                s.started = Some(started);
            }
        }
    }
    put_status(ctx, state, pod, status).await;
}

async fn put_status(ctx: &Context, state: &mut WorkerState, pod: &Pod, status: PodStatus) {
    let Ok(value) = serde_json::to_value(&status) else { return };
    let current = pod.status.as_ref().and_then(|s| serde_json::to_value(s).ok());
    if state.last_written.as_ref() == Some(&value) || (state.last_written.is_none() && current.as_ref() == Some(&value)) {
        return;
    }
    let (ns, name, _) = config::pod_identity(pod);
    let api: Api<Pod> = Api::namespaced(ctx.client.clone(), &ns);
    let patch: json_patch::Patch = match serde_json::from_value(serde_json::json!([{"op": "add", "path": "/status", "value": value}])) {
        Ok(p) => p,
        Err(_) => return,
    };
    match api.patch_status(&name, &PatchParams::default(), &Patch::<()>::Json(patch)).await {
        Ok(_) => state.last_written = Some(value),
        Err(e) => tracing::debug!(pod = %format!("{ns}/{name}"), error = %e, "pod status not written"),
    }
}

/// Writes a rejection status (phase Failed with reason and message), as upstream's admission,
/// and returns it.
pub async fn reject(ctx: &Context, pod: &Pod, reason: &str, message: &str) -> PodStatus {
    ctx.recorder.pod_event(pod, None, "Warning", reason, message);
    let old = pod.status.clone().unwrap_or_default();
    let status = PodStatus {
        phase: Some("Failed".into()),
        reason: Some(reason.into()),
        message: Some(format!("Pod was rejected: {message}")),
        conditions: old.conditions,
        start_time: old.start_time.or_else(|| Some(Time(crate::clock::now()))),
        qos_class: Some(resources::qos_class(pod)),
        host_ip: Some(ctx.node_ip.clone()),
        ..Default::default()
    };
    put_status(ctx, &mut WorkerState::default(), pod, status.clone()).await;
    status
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_print_like_go() {
        assert_eq!(go_duration(Duration::from_secs(10)), "10s");
        assert_eq!(go_duration(Duration::from_secs(80)), "1m20s");
        assert_eq!(go_duration(Duration::from_secs(300)), "5m0s");
    }
}
