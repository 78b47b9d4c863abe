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

/// Whether a token the kubelet wrote is still good to keep: before 80% of its lifetime and
/// for the same audience (the claims are read, not verified: the kubelet wrote the file).
pub fn still_fresh(token: &str, audience: Option<&str>, now_secs: i64) -> bool {
    use base64::Engine as _;
    let Some(payload) = token.split('.').nth(1) else { return false };
    let Ok(bytes) = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload) else { return false };
    let Ok(claims) = serde_json::from_slice::<serde_json::Value>(&bytes) else { return false };
    let (Some(iat), Some(exp)) = (claims["iat"].as_i64(), claims["exp"].as_i64()) else { return false };
    let same_audience = match audience.filter(|a| !a.is_empty()) {
        Some(a) => claims["aud"].as_array().is_some_and(|list| list.iter().any(|x| x == a)),
        None => true,
    };
    same_audience && now_secs < iat + (exp - iat) * 8 / 10
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine as _;

    #[test]
    fn tokens_are_refreshed_at_eighty_percent_of_their_lifetime() {
        let claims = serde_json::json!({"iat": 1000, "exp": 2000, "aud": ["api"]});
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(claims.to_string());
        let token = format!("h.{b64}.s");
        assert!(still_fresh(&token, None, 1500));
        assert!(still_fresh(&token, Some("api"), 1799));
        assert!(!still_fresh(&token, Some("api"), 1800));
        assert!(!still_fresh(&token, Some("vault"), 1500));
        assert!(!still_fresh("garbage", None, 0));
    }
}
