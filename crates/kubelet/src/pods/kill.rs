//! Stopping pods (kuberuntime KillPod): preStop hooks, then StopContainer within the grace
//! period, then the sandboxes, cgroups and the pod's files; and the final delete of the pod
//! object once nothing runs.

use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, DeleteParams, Preconditions};

use super::config;
use super::runtime::{self, ContainerInfo, PodRuntime};
use super::worker::{cgroup_parent, grace_secs, pod_dir, Context, MIN_GRACE_SECS};

/// Stops every container (preStop hooks first) and sandbox of the pod.
pub(super) async fn stop_all(ctx: &Context, pod: &Pod, rt: &PodRuntime, grace: i64) {
    let stops = rt.running().map(|c| stop_one(ctx, pod, c, grace));
    futures::future::join_all(stops).await;
    for s in rt.sandboxes.iter().filter(|s| s.ready) {
        let _ = runtime::stop_sandbox(&ctx.cri, &s.id).await;
    }
}

async fn stop_one(ctx: &Context, pod: &Pod, c: &ContainerInfo, grace: i64) {
    let spec = pod.spec.as_ref().and_then(|s| s.containers.iter().chain(s.init_containers.iter().flatten()).find(|x| x.name == c.name));
    let is_init = pod.spec.as_ref().is_some_and(|s| s.init_containers.iter().flatten().any(|x| x.name == c.name));
    ctx.recorder.pod_event(pod, Some((&c.name, is_init)), "Normal", "Killing", &format!("Stopping container {}", c.name));
    let started = tokio::time::Instant::now();
    if let Some(exec) = spec.and_then(|s| s.lifecycle.as_ref()).and_then(|l| l.pre_stop.as_ref()).and_then(|h| h.exec.as_ref()) {
        let command = exec.command.clone().unwrap_or_default();
        match runtime::exec_sync(&ctx.cri, &c.id, command, grace).await {
            Ok((0, _)) => {}
            Ok((code, out)) => {
                let m = format!("PreStopHook failed: command exited with {code}: {out}");
                ctx.recorder.pod_event(pod, Some((&c.name, is_init)), "Warning", "FailedPreStopHook", &m);
            }
            Err(e) => ctx.recorder.pod_event(pod, Some((&c.name, is_init)), "Warning", "FailedPreStopHook", &format!("PreStopHook failed: {e}")),
        }
    }
    let remaining = (grace - started.elapsed().as_secs() as i64).max(MIN_GRACE_SECS);
    if let Err(e) = runtime::stop_container(&ctx.cri, &c.id, remaining).await {
        tracing::warn!(container = %c.id, error = %e, "stopping container failed");
    }
}

/// Stops the pod gracefully, removes its sandboxes, cgroups and logs.
pub async fn kill_pod(ctx: &Context, pod: &Pod, grace_override: Option<i64>) {
    let (ns, name, uid) = config::pod_identity(pod);
    let Ok(rt) = runtime::pod_runtime(&ctx.cri, &uid).await else {
        tracing::warn!(pod = %format!("{ns}/{name}"), "cannot read runtime state to stop the pod");
        return;
    };
    stop_all(ctx, pod, &rt, grace_secs(pod, grace_override)).await;
    for s in &rt.sandboxes {
        if let Err(e) = runtime::remove_sandbox(&ctx.cri, &s.id).await {
            tracing::warn!(pod = %format!("{ns}/{name}"), error = %e, "removing sandbox failed");
        }
    }
    runtime::remove_pod_cgroups(&cgroup_parent(pod));
    crate::volumes::teardown(&ctx.pods_dir, &uid);
    let _ = std::fs::remove_dir_all(config::log_directory(&ctx.pods_dir, pod));
    let _ = std::fs::remove_dir_all(pod_dir(ctx, pod));
    ctx.backoff.lock().expect("back-off lock poisoned").forget_prefix(&uid);
}

/// Deletes the pod object with grace 0 once its containers are gone (upstream status
/// manager's final delete), guarded by its uid.
pub(super) async fn delete_from_api(ctx: &Context, pod: &Pod) {
    let (ns, name, uid) = config::pod_identity(pod);
    let api: Api<Pod> = Api::namespaced(ctx.client.clone(), &ns);
    let params = DeleteParams {
        grace_period_seconds: Some(0),
        preconditions: Some(Preconditions { uid: Some(uid), resource_version: None }),
        ..Default::default()
    };
    match api.delete(&name, &params).await {
        Ok(_) => {}
        Err(kube::Error::Api(s)) if s.code == 404 || s.code == 409 => {}
        Err(e) => tracing::warn!(pod = %format!("{ns}/{name}"), error = %e, "deleting pod failed"),
    }
}
