//! Image pulls as upstream's image manager does them (pkg/kubelet/images): the pull policy,
//! the "already present" and "never pull" cases, pull back-off (ImagePullBackOff) and
//! credentials from imagePullSecrets.

use std::collections::HashMap;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Container, Pod, Secret};
use kube::api::Api;

use super::config;
use super::runtime;
use super::status::Reason;
use super::worker::Context;
use crate::cri::api;

/// Timeout of an image pull.
const PULL_TIMEOUT: Duration = Duration::from_secs(600);

/// Makes sure the container's image is present per its pull policy; returns the reference
/// to create the container from, or the waiting reason.
pub(super) async fn ensure_image(ctx: &Context, pull_errors: &mut HashMap<String, String>, pod: &Pod, spec: &Container, is_init: bool) -> Result<String, Reason> {
    let image = spec.image.clone().unwrap_or_default();
    let target = Some((spec.name.as_str(), is_init));
    if image.is_empty() {
        return Err(Reason { reason: "InvalidImageName".into(), message: "Failed to apply default image tag \"\": couldn't parse image name \"\": invalid reference format".into() });
    }
    let policy = config::pull_policy(spec);
    let mut images = ctx.cri.image.clone();
    let status_request = api::ImageStatusRequest { image: Some(api::ImageSpec { image: image.clone(), ..Default::default() }), verbose: false };
    let present = match tokio::time::timeout(runtime::CALL_TIMEOUT, images.image_status(status_request)).await {
        Ok(Ok(r)) => r.into_inner().image.map(|i| i.id),
        _ => None,
    };
    if let (Some(id), true) = (&present, policy != "Always") {
        ctx.recorder.pod_event(pod, target, "Normal", "Pulled", &format!("Container image \"{image}\" already present on machine"));
        return Ok(id.clone());
    }
    if policy == "Never" {
        let message = format!("Container image \"{image}\" is not present with pull policy of Never");
        ctx.recorder.pod_event(pod, target, "Warning", "ErrImageNeverPull", &message);
        return Err(Reason { reason: "ErrImageNeverPull".into(), message });
    }
    let uid = pod.metadata.uid.clone().unwrap_or_default();
    let key = format!("{uid}/image/{image}");
    let now = crate::clock::now_nanos();
    if ctx.backoff.lock().expect("back-off lock poisoned").in_backoff_since_update(&key, now) {
        let last = pull_errors.get(&image).cloned().unwrap_or_default();
        return Err(Reason { reason: "ImagePullBackOff".into(), message: format!("Back-off pulling image \"{image}\": ErrImagePull: {last}") });
    }
    ctx.recorder.pod_event(pod, target, "Normal", "Pulling", &format!("Pulling image \"{image}\""));
    let auth = pull_auth(ctx, pod, &image).await;
    let started = tokio::time::Instant::now();
    let request = api::PullImageRequest { image: Some(api::ImageSpec { image: image.clone(), ..Default::default() }), auth, sandbox_config: None };
    let result = match tokio::time::timeout(PULL_TIMEOUT, images.pull_image(request)).await {
        Ok(Ok(r)) => Ok(r.into_inner().image_ref),
        Ok(Err(s)) => Err(format!("rpc error: code = {:?} desc = {}", s.code(), s.message())),
        Err(_) => Err("context deadline exceeded".to_owned()),
    };
    match result {
        Ok(image_ref) => {
            pull_errors.remove(&image);
            let took = started.elapsed().as_secs_f64();
            ctx.recorder.pod_event(pod, target, "Normal", "Pulled", &format!("Successfully pulled image \"{image}\" in {took:.3}s ({took:.3}s including waiting)"));
            Ok(image_ref)
        }
        Err(e) => {
            ctx.backoff.lock().expect("back-off lock poisoned").next(&key, now, now);
            let message = format!("Failed to pull image \"{image}\": {e}");
            pull_errors.insert(image.clone(), message.clone());
            ctx.recorder.pod_event(pod, target, "Warning", "Failed", &message);
            ctx.recorder.pod_event(pod, target, "Warning", "Failed", "Error: ErrImagePull");
            Err(Reason { reason: "ErrImagePull".into(), message })
        }
    }
}

/// Registry credentials from the pod's imagePullSecrets.
async fn pull_auth(ctx: &Context, pod: &Pod, image: &str) -> Option<api::AuthConfig> {
    let names: Vec<String> = pod.spec.as_ref()?.image_pull_secrets.iter().flatten().map(|r| r.name.clone()).collect();
    if names.is_empty() {
        return None;
    }
    let ns = pod.metadata.namespace.clone().unwrap_or_else(|| "default".into());
    let secrets: Api<Secret> = Api::namespaced(ctx.client.clone(), &ns);
    let mut configs = Vec::new();
    for n in names {
        if let Ok(Some(s)) = secrets.get_opt(&n).await {
            let data = s.data.unwrap_or_default();
            for key in [".dockerconfigjson", ".dockercfg"] {
                if let Some(v) = data.get(key) {
                    configs.push(v.0.clone());
                }
            }
        }
    }
    config::auth_for(image, &configs)
}

