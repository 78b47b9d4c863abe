//! Service-account tokens: the `serviceaccounts/<name>/token` subresource (TokenRequest,
//! pkg/registry/core/serviceaccount/storage/token.go) issues JWTs signed with the cluster's
//! service-account key (ES256: the key pki creates is ECDSA P-256), and the bearer-token
//! authenticator (pkg/serviceaccount/jwt.go + legacy/bound validators) accepts them while
//! they are unexpired, carry an API audience, and the service account (and the pod they are
//! bound to) still exist with the same uid. Such requests run as
//! `system:serviceaccount:<ns>:<name>` in groups `system:serviceaccounts`,
//! `system:serviceaccounts:<ns>` and `system:authenticated`.

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine as _;
use ring::rand::SystemRandom;
use ring::signature::{EcdsaKeyPair, KeyPair, UnparsedPublicKey, ECDSA_P256_SHA256_FIXED, ECDSA_P256_SHA256_FIXED_SIGNING};
use serde_json::{json, Value};

use crate::handlers::State;
use crate::request::ResourcePath;
use crate::status::{ApiError, Cause};
use crate::tls::Identity;

/// The issuer and default audience of tokens (kube-apiserver's default `--service-account-issuer`).
pub const ISSUER: &str = "https://kubernetes.default.svc.cluster.local";
/// Upstream's smallest expirationSeconds.
const MIN_EXPIRATION_SECS: i64 = 600;
/// Upstream's default expirationSeconds.
const DEFAULT_EXPIRATION_SECS: i64 = 3600;

/// Signs and verifies service-account JWTs.
pub struct TokenSigner {
    key: EcdsaKeyPair,
    kid: String,
    rng: SystemRandom,
}

impl TokenSigner {
    /// From the PKCS#8 PEM of the service-account signing key.
    pub fn from_pem(pem: &str) -> Result<TokenSigner, String> {
        let der = rustls_pemfile::private_key(&mut pem.as_bytes())
            .map_err(|e| format!("bad service-account key PEM: {e}"))?
            .ok_or("no private key in the service-account key PEM")?;
        let rng = SystemRandom::new();
        let key = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, der.secret_der(), &rng)
            .map_err(|e| format!("the service-account key is not an ECDSA P-256 PKCS#8 key: {e}"))?;
        let digest = ring::digest::digest(&ring::digest::SHA256, key.public_key().as_ref());
        let kid = B64.encode(digest.as_ref());
        Ok(TokenSigner { key, kid, rng })
    }

    /// A compact JWS (ES256) of `claims`.
    pub fn sign(&self, claims: &Value) -> Result<String, String> {
        let header = json!({"alg": "ES256", "kid": self.kid});
        let input = format!("{}.{}", B64.encode(header.to_string()), B64.encode(claims.to_string()));
        let sig = self.key.sign(&self.rng, input.as_bytes()).map_err(|_| "signing failed".to_owned())?;
        Ok(format!("{input}.{}", B64.encode(sig.as_ref())))
    }

    /// The claims of a token whose ES256 signature is ours, or None.
    pub fn verify(&self, token: &str) -> Option<Value> {
        let mut parts = token.split('.');
        let (h, c, s) = (parts.next()?, parts.next()?, parts.next()?);
        if parts.next().is_some() {
            return None;
        }
        let header: Value = serde_json::from_slice(&B64.decode(h).ok()?).ok()?;
        if header["alg"] != "ES256" {
            return None;
        }
        let sig = B64.decode(s).ok()?;
        let public = UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, self.key.public_key().as_ref());
        public.verify(format!("{h}.{c}").as_bytes(), &sig).ok()?;
        serde_json::from_slice(&B64.decode(c).ok()?).ok()
    }
}

fn now_secs() -> i64 {
    jiff::Timestamp::now().as_second()
}

fn path(plural: &str, namespace: &str, name: &str) -> Option<ResourcePath> {
    let info = rkube_api::resources::find("", "v1", plural)?;
    Some(ResourcePath { info, namespace: Some(namespace.to_owned()), name: Some(name.to_owned()), subresource: None })
}

/// `POST .../serviceaccounts/<name>/token`: a TokenRequest answered with a signed token.
pub async fn token_request(state: &State, rp: &ResourcePath, body: &Value) -> Result<Value, ApiError> {
    let signer = state.service_accounts.get().ok_or_else(ApiError::no_route)?;
    let ns = rp.namespace.clone().unwrap_or_default();
    let name = rp.name.clone().unwrap_or_default();
    let sa = state.registry.get(&path("serviceaccounts", &ns, &name).ok_or_else(ApiError::no_route)?).await?;
    let spec = &body["spec"];
    let expiration = spec["expirationSeconds"].as_i64().unwrap_or(DEFAULT_EXPIRATION_SECS);
    if expiration < MIN_EXPIRATION_SECS {
        let cause = Cause::invalid("spec.expirationSeconds", &expiration.to_string(), "may not specify a duration less than 10 minutes");
        return Err(ApiError::invalid("authentication.k8s.io", "TokenRequest", &name, vec![cause]));
    }
    let audiences: Vec<Value> = match spec["audiences"].as_array() {
        Some(a) if !a.is_empty() => a.clone(),
        _ => vec![ISSUER.into()],
    };
    let now = now_secs();
    let mut private = json!({
        "namespace": ns,
        "serviceaccount": {"name": name, "uid": sa["metadata"]["uid"]},
    });
    let bound = &spec["boundObjectRef"];
    if !bound.is_null() {
        let (kind, bound_name) = (bound["kind"].as_str().unwrap_or(""), bound["name"].as_str().unwrap_or(""));
        let plural = match kind {
            "Pod" => "pods",
            "Secret" => "secrets",
            _ => {
                let cause = Cause::invalid("spec.boundObjectRef.kind", kind, "supported values: \"Pod\", \"Secret\"");
                return Err(ApiError::invalid("authentication.k8s.io", "TokenRequest", &name, vec![cause]));
            }
        };
        let obj = state.registry.get(&path(plural, &ns, bound_name).ok_or_else(ApiError::no_route)?).await?;
        let uid = obj["metadata"]["uid"].as_str().unwrap_or("");
        if bound["uid"].as_str().is_some_and(|u| !u.is_empty() && u != uid) {
            return Err(ApiError::conflict("", plural, bound_name, "the UID in the bound object reference does not match"));
        }
        private[kind.to_lowercase()] = json!({"name": bound_name, "uid": uid});
    }
    let claims = json!({
        "aud": audiences,
        "exp": now + expiration,
        "iat": now,
        "nbf": now,
        "iss": ISSUER,
        "jti": uuid::Uuid::new_v4().to_string(),
        "sub": format!("system:serviceaccount:{ns}:{name}"),
        "kubernetes.io": private,
    });
    let token = signer.sign(&claims).map_err(ApiError::internal)?;
    let expires = jiff::Timestamp::from_second(now + expiration).map(|t| t.to_string()).unwrap_or_default();
    let mut spec_out = spec.clone();
    spec_out["audiences"] = Value::Array(audiences);
    spec_out["expirationSeconds"] = expiration.into();
    Ok(json!({
        "kind": "TokenRequest",
        "apiVersion": "authentication.k8s.io/v1",
        "metadata": {"name": name, "namespace": ns, "creationTimestamp": jiff::Timestamp::from_second(now).map(|t| t.to_string()).unwrap_or_default()},
        "spec": spec_out,
        "status": {"token": token, "expirationTimestamp": expires},
    }))
}

/// The identity of a request bearing a valid service-account token, or None.
pub async fn authenticate(state: &State, token: &str) -> Option<Identity> {
    let claims = state.service_accounts.get()?.verify(token)?;
    let now = now_secs();
    if claims["exp"].as_i64().is_none_or(|e| e <= now) || claims["nbf"].as_i64().is_some_and(|n| n > now + 60) {
        return None;
    }
    if claims["iss"] != ISSUER || !claims["aud"].as_array().is_some_and(|a| a.iter().any(|x| x == ISSUER)) {
        return None;
    }
    let private = &claims["kubernetes.io"];
    let ns = private["namespace"].as_str()?;
    let name = private["serviceaccount"]["name"].as_str()?;
    let sa = state.registry.get(&path("serviceaccounts", ns, name)?).await.ok()?;
    if sa["metadata"]["uid"] != private["serviceaccount"]["uid"] {
        return None;
    }
    for (kind, plural) in [("pod", "pods"), ("secret", "secrets")] {
        let bound = &private[kind];
        if bound.is_null() {
            continue;
        }
        let obj = state.registry.get(&path(plural, ns, bound["name"].as_str()?)?).await.ok()?;
        if obj["metadata"]["uid"] != bound["uid"] {
            return None;
        }
    }
    Some(Identity {
        user: format!("system:serviceaccount:{ns}:{name}"),
        groups: vec!["system:serviceaccounts".into(), format!("system:serviceaccounts:{ns}"), "system:authenticated".into()],
    })
}

/// Where pods see their service-account credentials.
pub const MOUNT_PATH: &str = "/var/run/secrets/kubernetes.io/serviceaccount";

/// The ServiceAccount admission plugin (plugin/pkg/admission/serviceaccount): defaults
/// `serviceAccountName` to `default` and, unless automountServiceAccountToken is false on the
/// pod (or else on its ServiceAccount), adds the projected `kube-api-access-*` volume (token,
/// kube-root-ca.crt's ca.crt, namespace) mounted read-only at [`MOUNT_PATH`] in every
/// container. Until every namespace has its ServiceAccounts (controller manager), a pod whose
/// ServiceAccount does not exist is admitted without the volume instead of refused.
pub async fn admit_pod(state: &State, ns: &str, mut pod: Value) -> Value {
    if pod["metadata"]["annotations"]["kubernetes.io/config.mirror"].is_string() {
        return pod;
    }
    let sa_name = pod["spec"]["serviceAccountName"].as_str().filter(|s| !s.is_empty()).unwrap_or("default").to_owned();
    pod["spec"]["serviceAccountName"] = sa_name.clone().into();
    if pod["spec"]["serviceAccount"].as_str().is_none_or(str::is_empty) {
        pod["spec"]["serviceAccount"] = sa_name.clone().into();
    }
    let Some(sa_path) = path("serviceaccounts", ns, &sa_name) else { return pod };
    let Ok(sa) = state.registry.get(&sa_path).await else { return pod };
    let automount = pod["spec"]["automountServiceAccountToken"].as_bool().or(sa["automountServiceAccountToken"].as_bool()).unwrap_or(true);
    if !automount {
        return pod;
    }
    let containers = ["initContainers", "containers", "ephemeralContainers"];
    let mounted = |c: &Value| c["volumeMounts"].as_array().is_some_and(|m| m.iter().any(|m| m["mountPath"] == MOUNT_PATH));
    let volume = format!("kube-api-access-{}", suffix());
    let mut added = false;
    for list in containers {
        let Some(items) = pod["spec"][list].as_array_mut() else { continue };
        for c in items.iter_mut().filter(|c| !mounted(c)) {
            let mount = json!({"name": volume, "readOnly": true, "mountPath": MOUNT_PATH});
            match c["volumeMounts"].as_array_mut() {
                Some(m) => m.push(mount),
                None => c["volumeMounts"] = json!([mount]),
            }
            added = true;
        }
    }
    if added {
        let v = json!({"name": volume, "projected": {"defaultMode": 420, "sources": [
            {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}},
            {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
            {"downwardAPI": {"items": [{"path": "namespace", "fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.namespace"}}]}},
        ]}});
        match pod["spec"]["volumes"].as_array_mut() {
            Some(vs) => vs.push(v),
            None => pod["spec"]["volumes"] = json!([v]),
        }
    }
    pod
}

/// Five characters of upstream's utilrand alphabet.
fn suffix() -> String {
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    uuid::Uuid::new_v4().as_bytes()[..5].iter().map(|b| ALPHABET[*b as usize % ALPHABET.len()] as char).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_verify_only_with_their_signature() {
        let key = rcgen_free_key();
        let signer = TokenSigner::from_pem(&key).unwrap();
        let token = signer.sign(&json!({"sub": "x"})).unwrap();
        assert_eq!(signer.verify(&token).unwrap()["sub"], "x");
        let mut parts: Vec<String> = token.split('.').map(str::to_owned).collect();
        parts[1] = B64.encode(json!({"sub": "admin"}).to_string());
        assert!(signer.verify(&parts.join(".")).is_none(), "a changed payload must fail");
        let other = TokenSigner::from_pem(&rcgen_free_key()).unwrap();
        assert!(other.verify(&token).is_none(), "another key must fail");
        assert!(signer.verify("a.b").is_none());
    }

    /// A fresh PKCS#8 P-256 key in PEM, made with ring.
    fn rcgen_free_key() -> String {
        let rng = SystemRandom::new();
        let doc = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
        let b64 = base64::engine::general_purpose::STANDARD.encode(doc.as_ref());
        format!("-----BEGIN PRIVATE KEY-----\n{b64}\n-----END PRIVATE KEY-----\n")
    }
}
