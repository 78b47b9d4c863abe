//! The namespaces that exist from the first start, and the finalization of deleted
//! namespaces: everything in a Terminating namespace is deleted, then the namespace.
//! (The controller-manager issue moves finalization into the namespace controller; until
//! then the API server does it so that `kubectl delete namespace` completes.)

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use rkube_api::resources::{self, RESOURCES};
use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;

use crate::handlers::State;
use crate::registry::{ListQuery, Registry, WriteOptions};
use crate::request::ResourcePath;

pub const INITIAL: &[&str] = &["default", "kube-system", "kube-public", "kube-node-lease"];

fn namespaces() -> &'static rkube_api::ResourceInfo {
    resources::find("", "v1", "namespaces").unwrap_or(&RESOURCES[0])
}

/// Creates the initial namespaces that do not exist yet.
pub async fn bootstrap(registry: &Registry) -> Result<(), rkube_store::Error> {
    let info = namespaces();
    for name in INITIAL {
        if registry.store().get(&info.storage_key(None, name)).await?.is_some() {
            continue;
        }
        let ns = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}});
        match registry.create(info, None, ns, &WriteOptions::default()).await {
            Ok(_) => {}
            Err(e) if e.reason == "AlreadyExists" => {}
            Err(e) => tracing::error!(namespace = name, error = %e.message, "creating an initial namespace failed"),
        }
    }
    Ok(())
}

/// Finalizes Terminating namespaces until `shutdown`.
pub async fn run_finalizer(state: Arc<State>, shutdown: CancellationToken) {
    let mut tick = tokio::time::interval(Duration::from_millis(500));
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        let reg = &state.registry;
        let Ok(page) = reg.list(namespaces(), None, &ListQuery { resource_version: Some("0".into()), ..Default::default() }).await else { continue };
        for ns in page.items.iter().filter(|n| !n["metadata"]["deletionTimestamp"].is_null()) {
            if let Some(name) = ns["metadata"]["name"].as_str() {
                finalize(reg, name, ns).await;
            }
        }
    }
}

async fn finalize(reg: &Registry, name: &str, ns: &Value) {
    let mut remaining = 0usize;
    let mut seen = HashSet::new();
    for info in RESOURCES.iter().filter(|r| r.namespaced()) {
        if !seen.insert(info.storage) {
            continue;
        }
        let Ok(page) = reg.list(info, Some(name), &ListQuery { resource_version: Some("0".into()), ..Default::default() }).await else {
            remaining += 1;
            continue;
        };
        for obj in &page.items {
            remaining += 1;
            if !obj["metadata"]["deletionTimestamp"].is_null() {
                continue;
            }
            let rp = ResourcePath {
                info,
                namespace: Some(name.to_owned()),
                name: obj["metadata"]["name"].as_str().map(str::to_owned),
                subresource: None,
            };
            if let Err(e) = reg.delete(&rp, &json!({"propagationPolicy": "Background"}), &WriteOptions::default()).await {
                tracing::debug!(namespace = name, error = %e.message, "deleting namespace content failed; will retry");
            }
        }
    }
    if remaining > 0 {
        return;
    }
    // Empty: drop the `kubernetes` finalizer, which deletes the namespace when nothing else holds it.
    let rp = ResourcePath { info: namespaces(), namespace: None, name: Some(name.to_owned()), subresource: Some("finalize".into()) };
    let mut finalized = ns.clone();
    finalized["spec"]["finalizers"] = json!([]);
    if let Err(e) = reg.finalize_namespace(&rp, finalized).await {
        tracing::debug!(namespace = name, error = %e.message, "finalizing namespace failed; will retry");
    }
}
