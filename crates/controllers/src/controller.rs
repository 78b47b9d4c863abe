//! What every controller shares: keys, controller references, and the worker loop that
//! drains a [`WorkQueue`] into a level-triggered reconcile function.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use kube::Resource;
use rkube_api::ObjectKey;
use tokio_util::sync::CancellationToken;

use crate::queue::WorkQueue;
use crate::Result;

/// Every key is reconciled again at least this often, as a safety net.
pub const RESYNC_PERIOD: Duration = Duration::from_secs(300);

/// `namespace/name` of an object.
pub fn key_of<K: Resource>(o: &K) -> ObjectKey {
    let m = o.meta();
    ObjectKey::new(m.namespace.as_deref(), m.name.as_deref().unwrap_or_default())
}

/// The `namespace/name` string of an object (for expectations and logs).
pub fn name_of(meta: &ObjectMeta) -> String {
    format!("{}/{}", meta.namespace.as_deref().unwrap_or_default(), meta.name.as_deref().unwrap_or_default())
}

/// The owner reference with `controller: true`, if any.
pub fn controller_ref(meta: &ObjectMeta) -> Option<&OwnerReference> {
    meta.owner_references.iter().flatten().find(|r| r.controller == Some(true))
}

/// A controller reference to `owner` (`controller` and `blockOwnerDeletion` true), as
/// upstream's `NewControllerRef`.
pub fn new_controller_ref<K: Resource<DynamicType = ()>>(owner: &K) -> OwnerReference {
    OwnerReference {
        api_version: K::api_version(&()).into_owned(),
        kind: K::kind(&()).into_owned(),
        name: owner.meta().name.clone().unwrap_or_default(),
        uid: owner.meta().uid.clone().unwrap_or_default(),
        controller: Some(true),
        block_owner_deletion: Some(true),
    }
}

/// The cached object a controller reference names, if its kind matches and its UID is the
/// referenced one (upstream `resolveControllerRef`).
pub fn resolve<K: Resource<DynamicType = ()>>(
    reference: &OwnerReference,
    namespace: Option<&str>,
    lookup: impl Fn(Option<&str>, &str) -> Option<Arc<K>>,
) -> Option<Arc<K>> {
    if reference.kind != K::kind(&()) {
        return None;
    }
    let owner = lookup(namespace, &reference.name)?;
    (owner.meta().uid.as_deref() == Some(reference.uid.as_str())).then_some(owner)
}

/// Runs `workers` tasks that take keys from `queue` and reconcile them until `shutdown`:
/// success forgets the key's back-off and requeues it after the returned delay (controllers
/// return [`RESYNC_PERIOD`] as a safety net, `None` for an object that is gone); failure
/// requeues it with back-off.
pub async fn run_workers<T, F, Fut>(name: &'static str, queue: WorkQueue<T>, workers: usize, shutdown: CancellationToken, reconcile: F)
where
    T: Clone + Eq + std::hash::Hash + std::fmt::Display + Send + Sync + 'static,
    F: Fn(T) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<Option<Duration>>> + Send,
{
    let reconcile = Arc::new(reconcile);
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..workers.max(1) {
        let (queue, reconcile) = (queue.clone(), reconcile.clone());
        tasks.spawn(async move {
            while let Some(key) = queue.get().await {
                let span = tracing::debug_span!("reconcile", controller = name, object = %key);
                let result = tracing::Instrument::instrument(reconcile(key.clone()), span).await;
                match result {
                    Ok(after) => {
                        queue.forget(&key);
                        if let Some(after) = after {
                            queue.add_after(key.clone(), after);
                        }
                    }
                    Err(e) => {
                        let level_warn = queue.failures(&key) >= 5;
                        if level_warn {
                            tracing::warn!(controller = name, object = %key, error = %e, "reconcile failed");
                        } else {
                            tracing::debug!(controller = name, object = %key, error = %e, "reconcile failed");
                        }
                        queue.add_rate_limited(key.clone());
                    }
                }
                queue.done(&key);
            }
        });
    }
    shutdown.cancelled().await;
    queue.shut_down();
    while tasks.join_next().await.is_some() {}
}
