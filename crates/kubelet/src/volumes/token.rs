//! Service-account tokens for projected volumes: the kubelet asks the API server's
//! `serviceaccounts/<name>/token` subresource (TokenRequest) for a token bound to the pod,
//! as upstream's token manager does (pkg/kubelet/token).

use k8s_openapi::api::authentication::v1::{BoundObjectReference, TokenRequest, TokenRequestSpec};
use k8s_openapi::api::core::v1::{Pod, ServiceAccount};
use kube::api::{Api, PostParams};

/// Upstream's default expirationSeconds of a projected token (1 hour).
pub const DEFAULT_EXPIRATION_SECS: i64 = 3600;

/// A token for the pod's service account, bound to the pod.
pub async fn request(client: &kube::Client, pod: &Pod, audience: Option<&str>, expiration_seconds: Option<i64>) -> Result<String, String> {
    let ns = pod.metadata.namespace.as_deref().unwrap_or("default");
    let sa = pod.spec.as_ref().and_then(|s| s.service_account_name.clone()).filter(|s| !s.is_empty()).unwrap_or_else(|| "default".into());
    let request = TokenRequest {
        spec: TokenRequestSpec {
            audiences: audience.filter(|a| !a.is_empty()).map(|a| vec![a.to_owned()]).unwrap_or_default(),
            expiration_seconds: Some(expiration_seconds.unwrap_or(DEFAULT_EXPIRATION_SECS)),
            bound_object_ref: Some(BoundObjectReference {
                api_version: Some("v1".into()),
                kind: Some("Pod".into()),
                name: pod.metadata.name.clone(),
                uid: pod.metadata.uid.clone(),
            }),
        },
        ..Default::default()
    };
    let api: Api<ServiceAccount> = Api::namespaced(client.clone(), ns);
    let answer: TokenRequest = api
        .create_subresource("token", &sa, &PostParams::default(), &request)
        .await
        .map_err(|e| format!("failed to fetch token: {e}"))?;
    answer.status.map(|s| s.token).filter(|t| !t.is_empty()).ok_or_else(|| "failed to fetch token: empty token in the answer".into())
}
