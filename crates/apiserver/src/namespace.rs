//! The namespaces that exist from the first start. (Deleted namespaces are finalized by the
//! controller manager's namespace controller, as upstream: without it a deleted namespace
//! stays Terminating.)

use rkube_api::resources::{self, RESOURCES};
use serde_json::json;

use crate::registry::{Registry, WriteOptions};

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
